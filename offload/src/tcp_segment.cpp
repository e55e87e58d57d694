// TCP segmentation in software (tcp_segment.hpp). Off the fast path: only
// frames flagged pkt::kTxTcpSeg, or large received segments, come here.
#include "vireo/offload/tcp_segment.hpp"

#include <algorithm>
#include <cstring>

#include "vireo/mempool/packet_pool.hpp"

namespace vireo {
namespace {

constexpr uint8_t kIpProtoTcp = 6;
constexpr uint8_t kIpProtoUdp = 17;
constexpr uint8_t kTcpFin = 0x01, kTcpPsh = 0x08, kTcpCwr = 0x80;

uint16_t get16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) noexcept { return uint32_t{get16(p)} << 16 | get16(p + 2); }
void put16(uint8_t* p, uint16_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) noexcept {
    put16(p, static_cast<uint16_t>(v >> 16));
    put16(p + 2, static_cast<uint16_t>(v));
}

// RFC 1071 sum of n bytes as big-endian 16-bit words (n even, except at the end).
uint64_t add_bytes(uint64_t sum, const uint8_t* d, size_t n) noexcept {
    size_t i = 0;
    for (; i + 1 < n; i += 2) sum += get16(d + i);
    if (i < n) sum += uint32_t{d[i]} << 8;
    return sum;
}
uint16_t fold(uint64_t sum) noexcept {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

struct Headers {
    int version = 0;  // 4 or 6; 0: not TCP (or, when asked for, UDP) over IP
    uint8_t proto = 0;
    uint16_t l2 = 0, l3 = 0, l4 = 0;
    uint32_t total() const noexcept { return uint32_t{l2} + l3 + l4; }
};

// Ethernet (up to two VLAN tags), IPv4 or IPv6 (hop-by-hop, routing and
// destination options skipped; a fragment header is not a TCP segment), TCP
// (or UDP with `udp`).
Headers parse(const Packet& p, bool udp = false) noexcept {
    Headers h;
    const uint8_t* d = p.data();
    const uint32_t n = p.data_len;
    uint32_t l2 = 14;
    if (n < l2) return {};
    uint16_t type = get16(d + 12);
    for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88a8); tags++) {
        if (n < l2 + 4) return {};
        type = get16(d + l2 + 2);
        l2 += 4;
    }
    uint32_t l3 = 0;
    uint8_t proto = 0;
    const uint8_t* ip = d + l2;
    if (type == 0x0800) {
        if (n < l2 + 20 || ip[0] >> 4 != 4) return {};
        l3 = (ip[0] & 0xfu) * 4;
        if (l3 < 20 || n < l2 + l3) return {};
        if (get16(ip + 6) & 0x3fff) return {};  // a fragment
        proto = ip[9];
        h.version = 4;
    } else if (type == 0x86dd) {
        if (n < l2 + 40 || ip[0] >> 4 != 6) return {};
        proto = ip[6];
        l3 = 40;
        while (proto == 0 || proto == 43 || proto == 60) {
            if (n < l2 + l3 + 8) return {};
            proto = ip[l3];
            l3 += (ip[l3 + 1] + 1u) * 8;
        }
        h.version = 6;
    } else {
        return {};
    }
    uint32_t l4 = 0;
    if (proto == kIpProtoUdp && udp) {
        l4 = 8;
        if (n < l2 + l3 + l4 || l3 > 0xffff) return {};
    } else {
        if (proto != kIpProtoTcp || n < l2 + l3 + 20) return {};
        l4 = (d[l2 + l3 + 12] >> 4) * 4u;
        if (l4 < 20 || n < l2 + l3 + l4 || l3 > 0xffff) return {};
    }
    h.proto = proto;
    h.l2 = static_cast<uint16_t>(l2);
    h.l3 = static_cast<uint16_t>(l3);
    h.l4 = static_cast<uint16_t>(l4);
    return h;
}

// The TCP pseudo-header (RFC 793 / RFC 8200 section 8.1) for tcp_len bytes of TCP.
uint64_t pseudo_header(const uint8_t* ip, int version, uint32_t tcp_len) noexcept {
    uint64_t s = kIpProtoTcp;
    s += tcp_len >> 16;
    s += tcp_len & 0xffff;
    if (version == 4) return add_bytes(s, ip + 12, 8);  // source and destination
    return add_bytes(s, ip + 8, 32);
}

void set_ipv4_checksum(uint8_t* ip, uint16_t l3) noexcept {
    put16(ip + 10, 0);
    put16(ip + 10, static_cast<uint16_t>(~fold(add_bytes(0, ip, l3))));
}

}  // namespace

int tcp_headers(Packet& p) noexcept {
    const Headers h = parse(p);
    if (h.version == 0) return 0;
    p.l2_len = static_cast<uint8_t>(h.l2);
    p.l3_len = h.l3;
    p.l4_len = static_cast<uint8_t>(h.l4);
    return h.version;
}

uint32_t tx_checksum_flags(Packet& p) noexcept {
    const Headers h = parse(p, true);
    if (h.version == 0) return 0;
    p.l2_len = static_cast<uint8_t>(h.l2);
    p.l3_len = h.l3;
    p.l4_len = static_cast<uint8_t>(h.l4);
    return (h.proto == kIpProtoTcp ? pkt::kTxTcpCsum : pkt::kTxUdpCsum) |
           (h.version == 4 ? pkt::kTxIpv4 : pkt::kTxIpv6);
}

uint32_t tcp_segment_count(const Packet& p) noexcept {
    const Headers h = parse(p);
    if (h.version == 0 || p.tso_segsz == 0 || p.pkt_len < h.total()) return 0;
    const uint32_t payload = p.pkt_len - h.total();
    return payload == 0 ? 1 : (payload + p.tso_segsz - 1) / p.tso_segsz;
}

uint16_t tcp_segment(const Packet& p, PacketPool& pool, Packet** out, uint16_t max, SegmentChecksum how) noexcept {
    const Headers h = parse(p);
    const uint32_t count = tcp_segment_count(p);
    if (count == 0 || count > max) return 0;
    const uint32_t hdrs = h.total(), mss = p.tso_segsz, payload = p.pkt_len - hdrs;
    if (hdrs + std::min(mss, payload) > pool.data_room()) return 0;
    if (!pool.alloc_bulk(out, count)) return 0;

    const uint8_t* src = p.data();
    const uint8_t* tcp0 = src + h.l2 + h.l3;
    const uint32_t seq0 = get32(tcp0 + 4);
    const uint8_t flags0 = tcp0[13];
    const uint16_t id0 = h.version == 4 ? get16(src + h.l2 + 4) : 0;
    // The payload cursor: segment s of the chain, offset `at` in it.
    const Packet* s = &p;
    uint32_t at = hdrs;
    for (uint32_t i = 0; i < count; i++) {
        const uint32_t chunk = std::min(mss, payload - i * mss);
        Packet* o = out[i];
        uint8_t* d = o->append(static_cast<uint16_t>(hdrs + chunk));
        std::memcpy(d, src, hdrs);
        for (uint32_t done = 0; done < chunk;) {
            while (at >= s->data_len) {  // the chain holds pkt_len bytes: s never runs out here
                at -= s->data_len;
                s = s->next;
            }
            const uint32_t k = std::min(chunk - done, s->data_len - at);
            std::memcpy(d + hdrs + done, s->data() + at, k);
            done += k;
            at += k;
        }
        uint8_t* ip = d + h.l2;
        uint8_t* tcp = ip + h.l3;
        const uint32_t tcp_len = h.l4 + chunk;
        if (h.version == 4) {
            put16(ip + 2, static_cast<uint16_t>(h.l3 + tcp_len));
            put16(ip + 4, static_cast<uint16_t>(id0 + i));
            set_ipv4_checksum(ip, h.l3);
        } else {
            put16(ip + 4, static_cast<uint16_t>(h.l3 - 40 + tcp_len));
        }
        put32(tcp + 4, seq0 + i * mss);
        uint8_t f = flags0;
        if (i + 1 < count) f &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
        if (i != 0) f &= static_cast<uint8_t>(~kTcpCwr);
        tcp[13] = f;
        const uint64_t ph = pseudo_header(ip, h.version, tcp_len);
        o->ol_flags = h.version == 4 ? pkt::kTxIpv4 : pkt::kTxIpv6;
        o->l2_len = static_cast<uint8_t>(h.l2);
        o->l3_len = h.l3;
        o->l4_len = static_cast<uint8_t>(h.l4);
        o->port = p.port;
        if (how == SegmentChecksum::Partial) {
            put16(tcp + 16, fold(ph));
            o->ol_flags |= pkt::kTxTcpCsum;
        } else {
            put16(tcp + 16, 0);
            put16(tcp + 16, static_cast<uint16_t>(~fold(add_bytes(ph, tcp, tcp_len))));
        }
    }
    return static_cast<uint16_t>(count);
}

uint8_t tcp_prepare_tso(Packet& p) noexcept {
    const int v = tcp_headers(p);
    if (v == 0 || p.tso_segsz == 0 || p.pkt_len < uint32_t{p.l2_len} + p.l3_len + p.l4_len) return 0;
    uint8_t* ip = p.data() + p.l2_len;
    if (v == 4) set_ipv4_checksum(ip, p.l3_len);
    put16(ip + p.l3_len + 16, fold(pseudo_header(ip, v, p.pkt_len - p.l2_len - p.l3_len)));
    p.ol_flags = (p.ol_flags & ~(pkt::kTxIpv4 | pkt::kTxIpv6)) | (v == 4 ? pkt::kTxIpv4 : pkt::kTxIpv6);
    return v == 4 ? 1 : 4;  // VIRTIO_NET_HDR_GSO_TCPV4 / TCPV6 (5.1.6)
}

}  // namespace vireo
