#include "support/tso_traffic.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "vireo/offload/tcp_segment.hpp"

namespace vireo::test {

std::vector<TcpFrameSpec> tso_stream() {
    std::vector<TcpFrameSpec> v;
    uint32_t at = 0;
    for (int i = 0; i < 12; i++) {
        TcpFrameSpec s;
        s.version = i % 2 == 0 ? 4 : 6;
        s.payload = i % 3 == 0 ? 64000 : 20000 + 3331u * i;
        s.seq = 5000 + at;
        s.stream_at = at;
        s.ip_id = static_cast<uint16_t>(100 * i);
        s.flags = i == 11 ? 0x19 : 0x10;  // FIN|PSH on the last
        s.vlan = i == 4;
        at += s.payload;
        v.push_back(s);
    }
    return v;
}

std::vector<Packet*> send_and_collect(NetPort& a, NetPort& b, PacketPool& pool, const std::vector<TcpFrameSpec>& specs,
                                      uint16_t mss, size_t expect) {
    std::vector<Packet*> got;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    size_t next = 0;
    while (got.size() < expect && std::chrono::steady_clock::now() < end) {
        // At most kWindow segments on their way: a 64 KB segment fills 32 of b's 2 KB Rx buffers, and a back end
        // that finds b's ring short of them drops it (OVS counts a tx drop). Sending on only as segments arrive
        // keeps b's ring able to take what is in flight however late this thread gets to refill it.
        constexpr size_t kWindow = 4;
        const size_t per_segment = std::max<size_t>(1, expect / specs.size());  // frames a segment arrives as
        if (next < specs.size() && next < got.size() / per_segment + kWindow) {
            Packet* p = large_segment(pool, specs[next], mss);
            if (p != nullptr && a.tx_burst(0, &p, 1) == 1)
                next++;
            else
                PacketPool::free(p);
        }
        Packet* in[32];
        const uint16_t n = b.rx_burst(0, in, 32);
        got.insert(got.end(), in, in + n);
        // Paced: the back end's mempool holds the 32 mbufs a 64 KB segment
        // takes many times over, but not for a whole ring.
        if (n == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return got;
}

std::string check_large_segment(Packet& p, const TcpFrameSpec& s, uint32_t mss, PacketPool& pool) {
    if (p.pkt_len != tcp_frame(s).size())
        return "length " + std::to_string(p.pkt_len) + ", sent " + std::to_string(tcp_frame(s).size());
    if ((p.ol_flags & (s.version == 4 ? pkt::kRxGsoTcp4 : pkt::kRxGsoTcp6)) == 0)
        return "not flagged as a large TCP segment";
    if (p.tso_segsz != mss) return "segment size " + std::to_string(p.tso_segsz) + ", expected " + std::to_string(mss);
    Packet* segs[64];
    const uint16_t n = tcp_segment(p, pool, segs, 64, SegmentChecksum::Complete);
    std::vector<std::vector<uint8_t>> frames;
    for (uint16_t j = 0; j < n; j++) frames.push_back(flatten(segs[j]));
    PacketPool::free_bulk(segs, n);
    return check_segments(s, frames, mss, false);
}

}  // namespace vireo::test
