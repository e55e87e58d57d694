// RSS against QEMU's device (virtio 1.2 5.1.6.5.7, 5.1.6.4.3): QEMU hashes
// each frame the tap gives it (virtio_net_process_rss: Toeplitz over the
// fields hash_types name), reports the hash with HASH_REPORT and puts the
// frame on receive queue indirection_table[hash & mask]. The expected values
// are computed here, from the frame's bytes and the key, independently of
// QEMU and of vireo.
#include "vm_rss.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "vireo/pmd/virtio_spec.hpp"
#include "vm_ctrl.hpp"

using namespace vireo;

namespace vm {
namespace {

// vmlab_tap.py's frames: after the L4 header (or the IP header for
// protocol 253) "VRSS", a le32 flow id, a u8 round, zero padding.
constexpr uint8_t kMagic[4] = {'V', 'R', 'S', 'S'};
constexpr int kFlows = 52;  // vmlab_tap.FLOWS

uint32_t be(const uint8_t* p, int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

// The Toeplitz hash (Microsoft's RSS specification): for every input bit
// set, XOR in the 32 key bits that start at that bit's position.
uint32_t toeplitz(const std::vector<uint8_t>& key, const std::vector<uint8_t>& in) {
    uint32_t result = 0;
    uint32_t window = be(key.data(), 4);
    for (size_t i = 0; i < in.size(); i++) {
        for (int b = 7; b >= 0; b--) {
            if (in[i] >> b & 1) result ^= window;
            const size_t next = i + 4;  // the key bit that shifts in
            const uint8_t kbit = next < key.size() ? (key[next] >> b & 1) : 0;
            window = window << 1 | kbit;
        }
    }
    return result;
}

struct Seen {
    uint32_t flow;
    uint8_t round;
    uint16_t queue;
    bool hashed;
    uint32_t hash;
    uint16_t type;
    uint16_t want_type;
    std::vector<uint8_t> input;  // what the hash covers, per want_type
};

// One of the host's frames: the hash input and type the device should use
// with `types`; false for anything else (the host's own traffic).
bool parse(const Packet* p, uint32_t types, Seen& s) {
    const uint8_t* d = p->data();
    const uint32_t n = p->data_len;
    if (n < 14) return false;
    const uint16_t et = static_cast<uint16_t>(be(d + 12, 2));
    const uint8_t* ip = d + 14;
    uint32_t l3 = 0;
    uint8_t proto = 0;
    bool v4 = false;
    if (et == 0x0800 && n >= 34) {
        v4 = true;
        l3 = (ip[0] & 0xf) * 4u;
        proto = ip[9];
    } else if (et == 0x86dd && n >= 54) {
        l3 = 40;
        proto = ip[6];
    } else {
        return false;
    }
    const uint32_t l4 = proto == 6 ? 20 : proto == 17 ? 8 : 0;
    const uint8_t* m = ip + l3 + l4;
    if (14 + l3 + l4 + 9 > n || std::memcmp(m, kMagic, 4) != 0) return false;
    s.flow = m[4] | m[5] << 8 | m[6] << 16 | uint32_t{m[7]} << 24;
    s.round = m[8];
    const uint8_t* addrs = v4 ? ip + 12 : ip + 8;
    const size_t alen = v4 ? 8 : 32;
    s.input.assign(addrs, addrs + alen);
    const bool tcp = proto == 6, udp = proto == 17;
    const uint32_t t4 = v4 ? virtio::kHashTypeTcpv4 : virtio::kHashTypeTcpv6;
    const uint32_t u4 = v4 ? virtio::kHashTypeUdpv4 : virtio::kHashTypeUdpv6;
    const uint32_t i4 = v4 ? virtio::kHashTypeIpv4 : virtio::kHashTypeIpv6;
    if ((tcp && (types & t4)) || (udp && (types & u4))) {
        s.input.insert(s.input.end(), ip + l3, ip + l3 + 4);  // source and destination ports
        s.want_type = tcp ? (v4 ? virtio::kHashReportTcpv4 : virtio::kHashReportTcpv6)
                          : (v4 ? virtio::kHashReportUdpv4 : virtio::kHashReportUdpv6);
    } else if (types & i4) {
        s.want_type = v4 ? virtio::kHashReportIpv4 : virtio::kHashReportIpv6;
    } else {
        s.want_type = virtio::kHashReportNone;
        s.input.clear();
    }
    s.queue = p->queue;
    s.hashed = (p->ol_flags & pkt::kRxRssHash) != 0;
    s.hash = p->rss_hash;
    s.type = p->rss_type;
    return true;
}

// Collects the host's frames (one per flow; repeats must agree) until every
// flow came or `seconds` passed.
std::map<uint32_t, Seen> collect(NetPort& port, uint32_t types, int seconds, int round, uint64_t& repeats_differ) {
    std::printf("READY rss%d\n", round);
    std::fflush(stdout);
    std::map<uint32_t, Seen> seen;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (seen.size() < kFlows && std::chrono::steady_clock::now() < end) {
        for (uint16_t q = 0; q < port.queue_pairs(); q++) {
            Packet* in[32];
            const uint16_t n = port.rx_burst(q, in, 32);
            for (uint16_t i = 0; i < n; i++) {
                Seen s;
                if (parse(in[i], types, s) && s.round == round) {
                    auto [it, fresh] = seen.emplace(s.flow, s);
                    if (!fresh && (it->second.queue != s.queue || it->second.hash != s.hash)) repeats_differ++;
                }
            }
            PacketPool::free_bulk(in, n);
        }
    }
    return seen;
}

void check_round(NetPort& port, const std::map<uint32_t, Seen>& seen, const std::string& name, uint16_t fixed_queue) {
    const RssConfig c = port.rss_config();
    check(seen.size() == kFlows, name + ": every flow arrived",
          std::to_string(seen.size()) + " of " + std::to_string(kFlows));
    uint64_t bad_hash = 0, bad_type = 0, bad_queue = 0, hashed = 0;
    std::map<uint16_t, int> per_queue;
    std::string first;
    for (const auto& [flow, s] : seen) {
        per_queue[s.queue]++;
        const bool want_hash = s.want_type != virtio::kHashReportNone;
        const uint32_t h = want_hash ? toeplitz(c.key, s.input) : 0;
        const uint16_t q = want_hash ? c.table[h & (c.table.size() - 1)] : 0;  // unclassified: queue 0
        hashed += want_hash;
        if (s.hashed != want_hash || (want_hash && s.type != s.want_type)) {
            bad_type++;
            if (first.empty())
                first = "flow " + std::to_string(flow) + ": report " + std::to_string(s.type) + ", want " +
                        std::to_string(s.want_type);
        } else if (want_hash && s.hash != h) {
            bad_hash++;
            if (first.empty()) {
                char b[96];
                std::snprintf(b, sizeof b, "flow %u: hash %08x, Toeplitz says %08x", flow, s.hash, h);
                first = b;
            }
        }
        if (s.queue != q) {
            bad_queue++;
            if (first.empty())
                first = "flow " + std::to_string(flow) + " on queue " + std::to_string(s.queue) + ", table says " +
                        std::to_string(q);
        }
        if (fixed_queue != 0xffff && want_hash && s.queue != fixed_queue) bad_queue++;
    }
    std::string spread;
    for (const auto& [q, n] : per_queue) spread += " q" + std::to_string(q) + "=" + std::to_string(n);
    std::printf("%s: %llu of %zu flows hashed; per queue:%s\n", name.c_str(), static_cast<unsigned long long>(hashed),
                seen.size(), spread.c_str());
    check(bad_type == 0, name + ": the reported hash type is the one the frame and hash_types call for", first);
    check(bad_hash == 0, name + ": every reported hash equals the Toeplitz hash of the flow", first);
    check(bad_queue == 0, name + ": every frame on the queue the indirection table names", first);
}

}  // namespace

void check_rss(NetPort& port, PacketPool&, int seconds) {
    check(virtio::has(port.features(), virtio::feature::kNetRss), "RSS negotiated");
    check(virtio::has(port.features(), virtio::feature::kNetHashReport), "HASH_REPORT negotiated");
    uint64_t differ = 0;
    const RssConfig def = port.rss_config();
    auto first = collect(port, def.hash_types, seconds, 1, differ);
    check_round(port, first, "default RSS", 0xffff);
    std::map<uint16_t, int> queues;
    for (const auto& [f, s] : first) queues[s.queue]++;
    check(queues.size() == port.queue_pairs(), "the default table spreads the flows over every queue pair",
          std::to_string(queues.size()) + " of " + std::to_string(port.queue_pairs()) + " queues got frames");
    const uint16_t last = static_cast<uint16_t>(port.queue_pairs() - 1);
    RssConfig tcp_only;
    tcp_only.hash_types = virtio::kHashTypeTcpv4 | virtio::kHashTypeTcpv6;
    tcp_only.table.assign(16, last);
    port.set_rss(tcp_only);
    auto second = collect(port, tcp_only.hash_types, seconds, 2, differ);
    check_round(port, second, "TCP only, every entry on queue " + std::to_string(last), last);
    check(differ == 0, "repeated frames of a flow took the same queue with the same hash",
          std::to_string(differ) + " differed");
}

}  // namespace vm
