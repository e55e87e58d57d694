// The forwarding modes, as testpmd defines them (app/test-pmd/{iofwd,macfwd,
// macswap,txonly,rxonly,flowgen}.c), each compiled on its own.
#include "streams.hpp"

#include <cstring>

namespace vireo::fwd {
namespace {

// Ethernet + IPv4 + UDP header of generated frames (42 bytes), testpmd's
// txonly addresses: 198.18.0.1 -> 198.18.0.2, UDP 9 -> 9.
constexpr uint32_t kHeaderLen = 42;
constexpr uint32_t kSrcIp = 0xc6120001, kDstIp = 0xc6120002;

void put16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
    put16(p, static_cast<uint16_t>(v >> 16));
    put16(p + 2, static_cast<uint16_t>(v));
}

// RFC 791 header checksum over the 20-byte IPv4 header.
uint16_t ip_checksum(const uint8_t* ip) {
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2) sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

// The header for flow f of a stream. txonly varies the source address over
// --flows; flowgen varies destination address and both UDP ports, so a
// device's RSS spreads the flows.
template <Mode M>
void build_header(uint8_t* h, const Stream& s, uint32_t f) {
    std::memcpy(h, s.dst_mac.data(), 6);
    std::memcpy(h + 6, s.src_mac.data(), 6);
    put16(h + 12, 0x0800);
    uint8_t* ip = h + 14;
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, static_cast<uint16_t>(s.frame_len - 14));
    put32(ip + 4, 0);  // id, flags, fragment offset
    ip[8] = 64;        // TTL
    ip[9] = 17;        // UDP
    put16(ip + 10, 0);
    uint32_t src = kSrcIp, dst = kDstIp;
    uint16_t sport = 9, dport = 9;
    if constexpr (M == Mode::FlowGen) {
        dst = 0xc6130000 + (f & 0xffff);  // 198.19.x.y
        sport = static_cast<uint16_t>(1024 + (f >> 16 << 4) + (f & 0xf));
        dport = static_cast<uint16_t>(1024 + ((f >> 4) & 0xfff));
    } else {
        src = kSrcIp + f;
    }
    put32(ip + 12, src);
    put32(ip + 16, dst);
    put16(ip + 10, ip_checksum(ip));
    uint8_t* udp = ip + 20;
    put16(udp, sport);
    put16(udp + 2, dport);
    put16(udp + 4, static_cast<uint16_t>(s.frame_len - 34));
    put16(udp + 6, 0);  // no UDP checksum (allowed over IPv4)
}

// One frame, one segment per --txpkts length; only the headers are written
// (as testpmd does: the payload is whatever the buffer held).
template <Mode M>
Packet* make_frame(Stream& s, Packet* first, Packet** more) {
    uint8_t h[kHeaderLen];
    build_header<M>(h, s, s.next_flow);
    if (++s.next_flow == s.flows) s.next_flow = 0;
    if (s.segments.size() == 1) {
        std::memcpy(first->append(static_cast<uint16_t>(s.frame_len)), h, kHeaderLen);
        return first;
    }
    Packet* tail = first;
    uint32_t copied = 0;
    for (size_t i = 0; i < s.segments.size(); i++) {
        Packet* seg = i == 0 ? first : more[i - 1];
        uint8_t* d = seg->append(s.segments[i]);
        const uint32_t n = std::min<uint32_t>(s.segments[i], kHeaderLen - std::min(copied, kHeaderLen));
        std::memcpy(d, h + copied, n);
        copied += n;
        if (i > 0) {
            tail->next = seg;
            tail = seg;
            first->nb_segs++;
            first->pkt_len += seg->data_len;
        }
    }
    return first;
}

template <Mode M>
void generate(Stream& s) {
    Packet* b[kMaxBurst];
    const uint32_t segs = static_cast<uint32_t>(s.segments.size());
    const uint16_t n = s.burst;
    if (segs == 1) {
        if (!s.pool->alloc_bulk(b, n)) {
            s.alloc_fails++;
            return;
        }
        for (uint16_t i = 0; i < n; i++) make_frame<M>(s, b[i], nullptr);
    } else {
        Packet* extra[kMaxSegments];
        for (uint16_t i = 0; i < n; i++) {
            const bool head = s.pool->alloc_bulk(&b[i], 1);
            if (!head || !s.pool->alloc_bulk(extra, segs - 1)) {
                if (head) PacketPool::free(b[i]);
                PacketPool::free_bulk(b, i);
                s.alloc_fails++;
                return;
            }
            make_frame<M>(s, b[i], extra);
        }
    }
    const uint16_t sent = s.tx->tx_burst(s.txq, b, n);
    if (sent < n) {
        PacketPool::free_bulk(b + sent, n - sent);
        s.fwd_drops += n - sent;
    }
}

template <Mode M>
void forward(Stream& s) {
    if constexpr (M == Mode::TxOnly || M == Mode::FlowGen) {
        generate<M>(s);
    } else {
        Packet* b[kMaxBurst];
        const uint16_t n = s.rx->rx_burst(s.rxq, b, s.burst);
        if (n == 0) return;
        if constexpr (M == Mode::RxOnly) {
            PacketPool::free_bulk(b, n);
            return;
        } else {
            if constexpr (M == Mode::Mac) {
                for (uint16_t i = 0; i < n; i++) {
                    uint8_t* d = b[i]->data();
                    std::memcpy(d, s.dst_mac.data(), 6);
                    std::memcpy(d + 6, s.src_mac.data(), 6);
                }
            } else if constexpr (M == Mode::MacSwap) {
                for (uint16_t i = 0; i < n; i++) {
                    uint8_t* d = b[i]->data();
                    uint8_t t[6];
                    std::memcpy(t, d, 6);
                    std::memcpy(d, d + 6, 6);
                    std::memcpy(d + 6, t, 6);
                }
            }
            const uint16_t sent = s.tx->tx_burst(s.txq, b, n);
            if (sent < n) {
                PacketPool::free_bulk(b + sent, n - sent);
                s.fwd_drops += n - sent;
            }
        }
    }
}

}  // namespace

void (*stream_function(Mode m))(Stream&) {
    switch (m) {
    case Mode::Io: return forward<Mode::Io>;
    case Mode::Mac: return forward<Mode::Mac>;
    case Mode::MacSwap: return forward<Mode::MacSwap>;
    case Mode::TxOnly: return forward<Mode::TxOnly>;
    case Mode::RxOnly: return forward<Mode::RxOnly>;
    case Mode::FlowGen: return forward<Mode::FlowGen>;
    }
    return nullptr;
}

void send_first_burst(Stream& s) { generate<Mode::TxOnly>(s); }

}  // namespace vireo::fwd
