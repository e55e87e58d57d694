// RSS and hash reports (issue 18, part 2) against a fake transport whose
// control queue a device thread serves: what RSS_CONFIG / HASH_CONFIG carry,
// byte by byte (virtio 1.2 5.1.6.5.7.1, 5.1.6.5.6.4), when they go out, what
// is refused, and the 20-byte header both ways. QEMU's device steering by
// them is the VM suite's part (tests/vm/guest-rss.sh).
#include <gtest/gtest.h>

#include <cstring>

#include "support/ctrl_rig.hpp"
#include "support/error_of.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

using namespace virtio::feature;

constexpr virtio::Features kBase = virtio::bit(kVersion1) | virtio::bit(kNetMrgRxbuf) | virtio::bit(kNetCtrlVq) |
                                   virtio::bit(kNetMq) | virtio::bit(kNetGuestCsum);
constexpr virtio::Features kRss = kBase | virtio::bit(kNetRss) | virtio::bit(kNetHashReport);

uint16_t le16(const std::vector<uint8_t>& d, size_t at) { return static_cast<uint16_t>(d[at] | d[at + 1] << 8); }
uint32_t le32(const std::vector<uint8_t>& d, size_t at) { return le16(d, at) | uint32_t{le16(d, at + 2)} << 16; }

// An RSS_CONFIG command's fields.
struct RssCommand {
    uint32_t hash_types;
    std::vector<uint16_t> table;
    uint16_t unclassified, max_tx_vq;
    std::vector<uint8_t> key;
};
RssCommand parse_rss(const Command& c) {
    EXPECT_EQ(c.cls, virtio::kNetCtrlClassMq);
    EXPECT_EQ(c.cmd, virtio::kNetCtrlMqRssConfig);
    const std::vector<uint8_t>& d = c.data;
    RssCommand r{};
    r.hash_types = le32(d, 0);
    const size_t n = le16(d, 4) + 1u;
    r.unclassified = le16(d, 6);
    for (size_t i = 0; i < n; i++) r.table.push_back(le16(d, 8 + 2 * i));
    r.max_tx_vq = le16(d, 8 + 2 * n);
    const size_t klen = d.at(10 + 2 * n);
    r.key.assign(d.begin() + 11 + 2 * n, d.end());
    EXPECT_EQ(r.key.size(), klen);
    return r;
}

TEST(NetPortRss, DefaultSpreadGoesOutAtStartInsteadOfVqPairsSet) {
    CtrlRig r(kRss, "vhost-user:/fake,ring=64,queues=4", 4);
    EXPECT_TRUE(virtio::has(r.port->features(), kNetRss));
    EXPECT_FALSE(virtio::has(r.port->features(), kNetHashReport)) << "hash_report is opt-in";
    r.port->start();
    const std::vector<Command> c = r.commands();
    ASSERT_EQ(c.size(), 1u) << "RSS_CONFIG only: it sets the queue pairs too";
    const RssCommand rss = parse_rss(c[0]);
    EXPECT_EQ(rss.hash_types, 0x3fu);  // IPv4/IPv6 x (IP, TCP, UDP)
    ASSERT_EQ(rss.table.size(), 128u);
    for (size_t i = 0; i < 128; i++) ASSERT_EQ(rss.table[i], i % 4);
    EXPECT_EQ(rss.unclassified, 0);
    EXPECT_EQ(rss.max_tx_vq, 4);
    ASSERT_EQ(rss.key.size(), 40u);
    EXPECT_EQ(rss.key[0], 0x6d);
    EXPECT_EQ(rss.key[39], 0xfa);
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

TEST(NetPortRss, WithoutRssTheQueuePairsAreSetAsBefore) {
    CtrlRig r(kBase, "vhost-user:/fake,ring=64,queues=2", 2);
    r.port->start();
    const std::vector<Command> c = r.commands();
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].cmd, virtio::kNetCtrlMqVqPairsSet);
    EXPECT_NE(error_of([&] { r.port->set_rss({}); }).find("VIRTIO_NET_F_HASH_REPORT"), std::string::npos);
    r.port->stop();
}

TEST(NetPortRss, SetRssLiveAndAgainAfterARestart) {
    CtrlRig r(kRss, "vhost-user:/fake,ring=64,queues=4,rss_types=tcp", 4);
    r.port->start();
    EXPECT_EQ(parse_rss(r.commands().at(0)).hash_types, virtio::kHashTypeTcpv4 | virtio::kHashTypeTcpv6);
    RssConfig want;
    want.hash_types = virtio::kHashTypeUdpv4;
    want.key = std::vector<uint8_t>(20, 0xab);
    want.table = {3, 3, 1, 0, 2, 2, 2, 2};
    r.port->set_rss(want);
    ASSERT_EQ(r.commands().size(), 2u);
    const RssCommand live = parse_rss(r.commands()[1]);
    EXPECT_EQ(live.hash_types, virtio::kHashTypeUdpv4);
    EXPECT_EQ(live.table, want.table);
    EXPECT_EQ(live.key, want.key);
    EXPECT_EQ(live.max_tx_vq, 4);
    EXPECT_EQ(r.port->rss_config().table, want.table);
    r.port->stop();
    r.port->start();
    ASSERT_EQ(r.commands().size(), 3u);
    EXPECT_EQ(parse_rss(r.commands()[2]).table, want.table) << "a reset forgot it: sent again";
    r.port->stop();
}

TEST(NetPortRss, BadConfigurationsAreRefusedWithTheLimit) {
    CtrlRig r(kRss, "vhost-user:/fake,ring=64,queues=2", 2);
    auto refused = [&](const RssConfig& c) { return error_of([&] { r.port->set_rss(c); }); };
    EXPECT_NE(refused({0, {}, {0, 1, 0}}).find("power of two up to 128"), std::string::npos);
    EXPECT_NE(refused({0, {}, std::vector<uint16_t>(256, 0)}).find("power of two up to 128"), std::string::npos);
    EXPECT_NE(refused({0, {}, {0, 2}}).find("names queue 2 but the port has 2 queue pairs"), std::string::npos);
    EXPECT_NE(refused({0, std::vector<uint8_t>(41, 1), {}}).find("takes at most 40"), std::string::npos);
    EXPECT_NE(refused({virtio::kHashTypeIpEx, {}, {}}).find("supports only"), std::string::npos);
    EXPECT_TRUE(r.commands().empty());
    // The device string's types against what the device supports, at open.
    auto open_error = [](uint32_t supported) {
        return error_of([&] {
            auto tr = std::make_unique<FakeTransport>(kRss);
            tr->supported_hash_types = supported;
            DmaMemory mem(fake_pa_memory());
            PacketPool pool(mem, {.count = 64, .cache_size = 0});
            NetPort p(std::move(tr), parse_device_string("vhost-user:/fake,rss_types=ip+udp"), mem, pool, 0);
        });
    };
    EXPECT_NE(open_error(virtio::kHashTypeIpv4 | virtio::kHashTypeIpv6).find("rss_types"), std::string::npos);
    EXPECT_EQ(open_error(0x3f), "(no error)");
    EXPECT_NE(error_of([] { parse_device_string("vhost-user:/x,rss_types=ip+sctp"); }).find("'sctp'"),
              std::string::npos);
}

TEST(NetPortRss, HashReportWithoutRssSendsHashConfig) {
    CtrlRig r(kBase | virtio::bit(kNetHashReport), "vhost-user:/fake,ring=64,hash_report=1,rss_types=ip");
    r.port->start();
    const std::vector<Command> c = r.commands();
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].cmd, virtio::kNetCtrlMqHashConfig);
    const std::vector<uint8_t>& d = c[0].data;
    ASSERT_EQ(d.size(), 4u + 8 + 1 + 40);
    EXPECT_EQ(le32(d, 0), virtio::kHashTypeIpv4 | virtio::kHashTypeIpv6);
    for (size_t i = 4; i < 12; i++) EXPECT_EQ(d[i], 0) << "reserved";
    EXPECT_EQ(d[12], 40);
    EXPECT_NE(error_of([&] { r.port->set_rss({0, {}, {0}}); }).find("needs VIRTIO_NET_F_RSS"), std::string::npos);
    r.port->stop();
}

// HASH_REPORT makes the header 20 bytes both ways (5.1.6): Rx reads
// hash_value and hash_report from it, Tx writes 20 zero bytes.
TEST(NetPortRss, TheHashReachesThePacket) {
    CtrlRig r(kRss, "vhost-user:/fake,ring=64,hash_report=1");
    r.port->start();
    ASSERT_TRUE(virtio::has(r.port->features(), kNetHashReport));
    SplitDevice rxd = r.queue(0);
    std::deque<DevBuffer> bufs;
    ASSERT_EQ(rxd.take(2, bufs), 2u);
    virtio::NetHdrHash h{};
    h.hdr.num_buffers = 1;
    h.hash_value = 0x12345678;
    h.hash_report = virtio::kHashReportTcpv4;
    std::memcpy(bufs[0].segs[0].va, &h, sizeof h);
    std::memset(bufs[0].segs[0].va + 20, 0x5a, 60);
    bufs[0].written = 80;
    h.hash_report = virtio::kHashReportNone;  // not hashed (e.g. not IP)
    std::memcpy(bufs[1].segs[0].va, &h, sizeof h);
    bufs[1].written = 80;
    rxd.complete({bufs.begin(), bufs.end()});
    Packet* out[4];
    ASSERT_EQ(r.port->rx_burst(0, out, 4), 2);
    EXPECT_EQ(out[0]->pkt_len, 60u);
    EXPECT_EQ(out[0]->data()[0], 0x5a) << "the frame starts after 20 bytes";
    EXPECT_TRUE(out[0]->ol_flags & pkt::kRxRssHash);
    EXPECT_EQ(out[0]->rss_hash, 0x12345678u);
    EXPECT_EQ(out[0]->rss_type, virtio::kHashReportTcpv4);
    EXPECT_FALSE(out[1]->ol_flags & pkt::kRxRssHash);
    // Sent back as received: the device reads a 20-byte zero header, then the frame.
    SplitDevice txd = r.queue(1);
    ASSERT_EQ(r.port->tx_burst(0, out, 1), 1);
    std::deque<DevBuffer> sent;
    ASSERT_EQ(txd.take(4, sent), 1u);
    ASSERT_EQ(sent[0].segs[0].len, 80u);
    for (int i = 0; i < 20; i++) EXPECT_EQ(sent[0].segs[0].va[i], 0) << i;
    EXPECT_EQ(sent[0].segs[0].va[20], 0x5a);
    PacketPool::free(out[1]);
    txd.complete({sent.begin(), sent.end()});
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

}  // namespace
}  // namespace vireo::test
