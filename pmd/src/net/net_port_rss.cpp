// NetPort: receive-side scaling and hash reports through the control queue
// (virtio 1.2 5.1.6.5.7 RSS_CONFIG, 5.1.6.5.6.4 HASH_CONFIG).
#include <algorithm>
#include <bit>

#include "datapath/queue_pair.hpp"
#include "net/net_port_filters.hpp"
#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

using namespace virtio::feature;

namespace {

// The Toeplitz key of Microsoft's RSS verification suite, the usual default
// (Linux drivers, DPDK's tests, QEMU's): any key works, this one lets a
// reader check a hash against published values.
constexpr uint8_t kDefaultKey[40] = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
                                     0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
                                     0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};
constexpr uint32_t kDefaultTypes = virtio::kHashTypeIpv4 | virtio::kHashTypeTcpv4 | virtio::kHashTypeUdpv4 |
                                   virtio::kHashTypeIpv6 | virtio::kHashTypeTcpv6 | virtio::kHashTypeUdpv6;
constexpr uint16_t kDefaultTableLength = 128;

void le16(std::vector<uint8_t>& v, uint16_t x) {
    v.push_back(static_cast<uint8_t>(x));
    v.push_back(static_cast<uint8_t>(x >> 8));
}
void le32(std::vector<uint8_t>& v, uint32_t x) {
    le16(v, static_cast<uint16_t>(x));
    le16(v, static_cast<uint16_t>(x >> 16));
}

}  // namespace

RssConfig NetPort::rss_config() const {
    RssConfig c = filters_->rss.value_or(RssConfig{});
    if (c.hash_types == 0) c.hash_types = spec_.rss_types.value_or(kDefaultTypes) & config_.supported_hash_types;
    if (c.key.empty())
        c.key.assign(kDefaultKey, kDefaultKey + std::min<size_t>(sizeof kDefaultKey, config_.rss_max_key_size));
    if (c.table.empty()) {
        const uint16_t most = config_.rss_max_indirection_table_length;
        const uint16_t n = most == 0 ? 1 : std::bit_floor(std::min(most, kDefaultTableLength));
        for (uint16_t i = 0; i < n; i++) c.table.push_back(static_cast<uint16_t>(i % spec_.queues));
    }
    return c;
}

void NetPort::set_rss(const RssConfig& want) {
    const bool rss = virtio::has(features_, kNetRss);
    if (!rss) require_ctrl(kNetHashReport, "set_rss");
    const std::string what = describe() + ": set_rss: ";
    if (want.hash_types & ~config_.supported_hash_types)
        throw Error(what + "hash types " + hex(want.hash_types) + " but the device supports only " +
                    hex(config_.supported_hash_types));
    if (want.key.size() > config_.rss_max_key_size)
        throw Error(what + "a " + std::to_string(want.key.size()) + "-byte key but the device takes at most " +
                    std::to_string(config_.rss_max_key_size));
    if (!want.table.empty()) {
        if (!rss) throw Error(what + "an indirection table needs VIRTIO_NET_F_RSS (HASH_REPORT alone only hashes)");
        if (!std::has_single_bit(want.table.size()) || want.table.size() > config_.rss_max_indirection_table_length)
            throw Error(what + "the indirection table has " + std::to_string(want.table.size()) +
                        " entries: give a power of two up to " +
                        std::to_string(config_.rss_max_indirection_table_length));
        for (uint16_t q : want.table)
            if (q >= spec_.queues)
                throw Error(what + "the indirection table names queue " + std::to_string(q) + " but the port has " +
                            std::to_string(spec_.queues) + " queue pairs");
    }
    filters_->rss = want;
    send_rss();
}

// RSS_CONFIG also says how many queue pairs the driver uses (max_tx_vq), so
// with RSS it replaces VQ_PAIRS_SET at bring-up.
void NetPort::send_rss() {
    const RssConfig c = rss_config();
    std::vector<uint8_t> d;
    le32(d, c.hash_types);
    if (virtio::has(features_, kNetRss)) {
        le16(d, static_cast<uint16_t>(c.table.size() - 1));  // indirection_table_mask
        le16(d, 0);                                          // unclassified_queue: queue pair 0
        for (uint16_t q : c.table) le16(d, q);
        le16(d, spec_.queues);  // max_tx_vq
    } else {
        for (int i = 0; i < 4; i++) le16(d, 0);  // reserved
    }
    d.push_back(static_cast<uint8_t>(c.key.size()));
    d.insert(d.end(), c.key.begin(), c.key.end());
    const bool rss = virtio::has(features_, kNetRss);
    ctrl_command(virtio::kNetCtrlClassMq, rss ? virtio::kNetCtrlMqRssConfig : virtio::kNetCtrlMqHashConfig, d.data(),
                 static_cast<uint16_t>(d.size()),
                 rss ? "RSS_CONFIG (" + std::to_string(c.table.size()) + " entries)" : std::string("HASH_CONFIG"));
}

}  // namespace vireo
