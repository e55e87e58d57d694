// The forwarding modes, as testpmd defines them (app/test-pmd/{iofwd,macfwd,
// macswap,txonly,rxonly,flowgen}.c), each compiled on its own.
#include "streams.hpp"

#include <x86intrin.h>

#include <cstring>

#include "vireo/offload/tcp_segment.hpp"

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

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

uint16_t fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

// Flow f's addresses and ports. txonly varies the source address over
// --flows; flowgen varies the destination address and both UDP ports, so a
// device's RSS spreads the flows.
struct FlowFields {
    uint32_t src, dst;
    uint16_t sport, dport;
};

template <Mode M>
FlowFields flow(uint32_t f) {
    if constexpr (M == Mode::FlowGen)
        return {kSrcIp, 0xc6130000 + (f & 0xffff),  // 198.19.x.y
                static_cast<uint16_t>(1024 + (f >> 16 << 4) + (f & 0xf)),
                static_cast<uint16_t>(1024 + ((f >> 4) & 0xfff))};
    else
        return {kSrcIp + f, kDstIp, 9, 9};
}

// Writes flow f into a copy of the stream's header: addresses, ports and the
// IPv4 checksum (RFC 791; RFC 1624's arithmetic: base sum plus the new words).
template <Mode M>
void write_header(uint8_t* h, const Stream& s, uint32_t f) {
    std::memcpy(h, s.header.data(), kHeaderLen);
    if (f == 0 && M != Mode::FlowGen) return;  // the template is flow 0's
    const FlowFields x = flow<M>(f);
    uint8_t* ip = h + 14;
    put32(ip + 12, x.src);
    put32(ip + 16, x.dst);
    put16(ip + 10, static_cast<uint16_t>(
                       ~fold(s.ip_sum_base + (x.src >> 16) + (x.src & 0xffff) + (x.dst >> 16) + (x.dst & 0xffff))));
    put16(ip + 20, x.sport);
    put16(ip + 22, x.dport);
}

// One frame, one segment per --txpkts length; only the headers are written
// (as testpmd does: the payload is whatever the buffer held).
template <Mode M>
Packet* make_frame(Stream& s, Packet* first, Packet** more) {
    const uint32_t f = s.next_flow;
    if (++s.next_flow == s.flows) s.next_flow = 0;
    if (s.segments.size() == 1) {
        write_header<M>(first->append(static_cast<uint16_t>(s.frame_len)), s, f);
        return first;
    }
    uint8_t h[kHeaderLen];
    write_header<M>(h, s, f);
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
    if (!s.tx->ready()) return;  // link down: nothing allocated, nothing counted as dropped
    Packet* b[kMaxBurst];
    const uint32_t segs = static_cast<uint32_t>(s.segments.size());
    const uint16_t n = s.burst;
    if (segs == 1) {
        if (!s.pool->alloc_bulk(b, n)) {
            bump(s.alloc_fails);
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
                bump(s.alloc_fails);
                return;
            }
            make_frame<M>(s, b[i], extra);
        }
    }
    if (s.capture_tx != nullptr) [[unlikely]]
        s.capture_tx->offer(b, n, s.tx_port, s.txq, CaptureDirection::Tx);
    const uint16_t sent = s.tx->tx_burst(s.txq, b, n);
    bump(s.sent, sent);
    if (sent < n) {
        PacketPool::free_bulk(b + sent, n - sent);
        bump(s.fwd_drops, n - sent);
    }
}

// Ethernet addresses byte by byte (the compiler merges the accesses). Not
// memcpy: g++ 12 with -fsanitize=address at -O3 reports a false
// -Warray-bounds on a memcpy into a packet's data here.
inline uint64_t load48(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 0; i < 6; i++) v |= uint64_t{p[i]} << (8 * i);
    return v;
}
inline void store48(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 6; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void set_macs(uint8_t* frame, const uint8_t* dst, const uint8_t* src) {
    store48(frame, load48(dst));
    store48(frame + 6, load48(src));
}
inline void swap_macs(uint8_t* frame) {
    const uint64_t d = load48(frame), s = load48(frame + 6);
    store48(frame, s);
    store48(frame + 6, d);
}

// What the Rx device left undone goes on undone, flagged: a large TCP
// segment (GUEST_TSO4/6) is sent as one, the Tx port hands it to its device
// (HOST_TSO) or cuts it (tcp_segment.hpp), and unflagged it would reach a peer
// that never asked for 64 KiB frames; a checksum left to do (NEEDS_CSUM, as
// the kernel's stack sends through a tap) is finished by the Tx device or by
// vireo, and unflagged it would arrive wrong.
void carry_offloads(Packet** b, uint16_t n) {
    for (uint16_t i = 0; i < n; i++) {
        const uint32_t f = b[i]->ol_flags;
        if (!(f & (pkt::kRxGsoTcp4 | pkt::kRxGsoTcp6 | pkt::kRxL4CsumPartial))) [[likely]]
            continue;  // one test per frame on the common path
        if (f & (pkt::kRxGsoTcp4 | pkt::kRxGsoTcp6))
            b[i]->ol_flags = f | pkt::kTxTcpSeg | ((f & pkt::kRxGsoTcp4) ? pkt::kTxIpv4 : pkt::kTxIpv6);
        else
            b[i]->ol_flags = f | tx_checksum_flags(*b[i]);
    }
}

// One call of a stream: whether it was busy in testpmd's sense (stream_function).
template <Mode M>
bool forward_once(Stream& s) {
    if constexpr (M == Mode::TxOnly || M == Mode::FlowGen) {
        generate<M>(s);
        return true;
    } else {
        Packet* b[kMaxBurst];
        const uint16_t n = s.rx->rx_burst(s.rxq, b, s.burst);
        if (n == 0) return false;
        bump(s.received, n);
        if (s.capture_rx != nullptr) [[unlikely]]
            s.capture_rx->offer(b, n, s.rx_port, s.rxq, CaptureDirection::Rx);
        if constexpr (M == Mode::RxOnly) {
            PacketPool::free_bulk(b, n);
        } else {
            if constexpr (M == Mode::Mac) {
                for (uint16_t i = 0; i < n; i++) set_macs(b[i]->data(), s.dst_mac.data(), s.src_mac.data());
            } else if constexpr (M == Mode::MacSwap) {
                for (uint16_t i = 0; i < n; i++) swap_macs(b[i]->data());
            }
            if (s.rx_offloads) carry_offloads(b, n);
            if (s.capture_tx != nullptr) [[unlikely]]
                s.capture_tx->offer(b, n, s.tx_port, s.txq, CaptureDirection::Tx);
            const uint16_t sent = s.tx->tx_burst(s.txq, b, n);
            if (sent < n) {
                PacketPool::free_bulk(b + sent, n - sent);
                bump(s.fwd_drops, n - sent);
            }
        }
        return true;
    }
}

template <Mode M, bool RecordCycles>
void forward(Stream& s) {
    if constexpr (RecordCycles) {
        const uint64_t start = __rdtsc();
        if (forward_once<M>(s)) bump(s.busy_cycles, __rdtsc() - start);
    } else {
        forward_once<M>(s);
    }
}

template <bool R>
void (*function_of(Mode m))(Stream&) {
    switch (m) {
    case Mode::Io: return forward<Mode::Io, R>;
    case Mode::Mac: return forward<Mode::Mac, R>;
    case Mode::MacSwap: return forward<Mode::MacSwap, R>;
    case Mode::TxOnly: return forward<Mode::TxOnly, R>;
    case Mode::RxOnly: return forward<Mode::RxOnly, R>;
    case Mode::FlowGen: return forward<Mode::FlowGen, R>;
    }
    return nullptr;
}

}  // namespace

void (*stream_function(Mode m, bool record_cycles))(Stream&) {
    return record_cycles ? function_of<true>(m) : function_of<false>(m);
}

void send_first_bursts(Stream& s, uint32_t bursts) {
    const uint32_t flows = s.flows;
    s.flows = 1;  // flow 0's template: the same frames whatever the mode
    for (uint32_t b = 0; b < bursts; b++) {
        s.next_flow = 0;
        generate<Mode::TxOnly>(s);
    }
    s.flows = flows;
    bump(s.first_bursts);
}

void LoopKeeper::start(std::vector<Stream*>& mine) {
    const auto now = std::chrono::steady_clock::now();
    seen.assign(mine.size(), 0);
    quiet_since.assign(mine.size(), now);
    for (size_t i = 0; i < mine.size(); i++) {
        send_first_bursts(*mine[i], bursts);
        seen[i] = mine[i]->received;
    }
}

void LoopKeeper::check(std::vector<Stream*>& mine) {
    const auto now = std::chrono::steady_clock::now();
    for (size_t i = 0; i < mine.size(); i++) {
        Stream& s = *mine[i];
        if (s.received != seen[i] || !s.rx->ready() || !s.tx->ready()) {
            seen[i] = s.received;
            quiet_since[i] = now;
            continue;
        }
        if (now - quiet_since[i] < std::chrono::milliseconds(kLoopSilenceMs)) continue;
        send_first_bursts(s, bursts);
        quiet_since[i] = now;
    }
}

void prepare_headers(Stream& s) {
    uint8_t* h = s.header.data();
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
    put32(ip + 12, 0);
    put32(ip + 16, 0);
    uint32_t base = 0;
    for (int i = 0; i < 20; i += 2) base += get16(ip + i);  // addresses and checksum are zero here
    s.ip_sum_base = base;
    put32(ip + 12, kSrcIp);
    put32(ip + 16, kDstIp);
    put16(ip + 10,
          static_cast<uint16_t>(~fold(base + (kSrcIp >> 16) + (kSrcIp & 0xffff) + (kDstIp >> 16) + (kDstIp & 0xffff))));
    uint8_t* udp = ip + 20;
    put16(udp, 9);
    put16(udp + 2, 9);
    put16(udp + 4, static_cast<uint16_t>(s.frame_len - 34));
    put16(udp + 6, 0);  // no UDP checksum (allowed over IPv4)
}

}  // namespace vireo::fwd
