#include "support/tcp_frames.hpp"

#include <algorithm>
#include <cstring>

namespace vireo::test {
namespace {

void put16(std::vector<uint8_t>& f, size_t at, uint32_t v) {
    f[at] = static_cast<uint8_t>(v >> 8);
    f[at + 1] = static_cast<uint8_t>(v);
}
uint32_t get16(const std::vector<uint8_t>& f, size_t at) { return uint32_t{f[at]} << 8 | f[at + 1]; }

// Plain RFC 1071, one byte at a time.
uint32_t sum(const uint8_t* d, size_t n, uint32_t s = 0) {
    for (size_t i = 0; i < n; i++) s += (i % 2 == 0) ? uint32_t{d[i]} << 8 : d[i];
    return s;
}
uint16_t finish(uint32_t s) {
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(~s);
}

uint16_t tcp_checksum_of(const std::vector<uint8_t>& f, size_t l2, size_t l3, int version) {
    const size_t tcp_len = f.size() - l2 - l3;
    uint32_t s = 6 + static_cast<uint32_t>(tcp_len >> 16) + static_cast<uint32_t>(tcp_len & 0xffff);
    if (version == 4)
        s = sum(f.data() + l2 + 12, 8, s);
    else
        s = sum(f.data() + l2 + 8, 32, s);
    return finish(sum(f.data() + l2 + l3, tcp_len, s));
}

}  // namespace

std::vector<uint8_t> tcp_frame(const TcpFrameSpec& s) {
    const size_t l2 = l2_of(s), l3 = l3_of(s);
    std::vector<uint8_t> f(l2 + l3 + kTcpHdr + s.payload, 0);
    const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x02}, src[6] = {0x02, 0, 0, 0, 0, 0x01};
    std::memcpy(f.data(), dst, 6);
    std::memcpy(f.data() + 6, src, 6);
    if (s.vlan) {
        put16(f, 12, 0x8100);
        put16(f, 14, 42);
    }
    put16(f, l2 - 2, s.version == 4 ? 0x0800 : 0x86dd);
    const size_t tcp_len = kTcpHdr + s.payload;
    if (s.version == 4) {
        f[l2] = 0x45;
        put16(f, l2 + 2, static_cast<uint32_t>(std::min<size_t>(l3 + tcp_len, 0xffff)));
        put16(f, l2 + 4, s.ip_id);
        put16(f, l2 + 6, 0x4000);  // DF
        f[l2 + 8] = 64;
        f[l2 + 9] = 6;
        const uint8_t a[8] = {10, 0, 0, 1, 10, 0, 0, 2};
        std::memcpy(f.data() + l2 + 12, a, 8);
        put16(f, l2 + 10, finish(sum(f.data() + l2, 20)));
    } else {
        f[l2] = 0x60;
        put16(f, l2 + 4, static_cast<uint32_t>(std::min<size_t>(tcp_len, 0xffff)));
        f[l2 + 6] = 6;
        f[l2 + 7] = 64;
        for (int i = 0; i < 16; i++) {
            f[l2 + 8 + i] = static_cast<uint8_t>(0x20 + i);
            f[l2 + 24 + i] = static_cast<uint8_t>(0x40 + i);
        }
    }
    const size_t t = l2 + l3;
    put16(f, t, 40000);
    put16(f, t + 2, 80);
    put16(f, t + 4, s.seq >> 16);
    put16(f, t + 6, s.seq & 0xffff);
    put16(f, t + 10, 1);
    f[t + 12] = (kTcpHdr / 4) << 4;
    f[t + 13] = s.flags;
    put16(f, t + 14, 65000);
    f[t + 20] = 1;  // NOP, NOP, timestamp (kind 8, length 10)
    f[t + 21] = 1;
    f[t + 22] = 8;
    f[t + 23] = 10;
    f[t + 27] = 9;
    for (uint32_t k = 0; k < s.payload; k++) f[t + kTcpHdr + k] = pattern(s.stream_at + k);
    put16(f, t + 16, tcp_checksum_of(f, l2, l3, s.version));
    return f;
}

std::string check_tcp_frame(const std::vector<uint8_t>& f) {
    if (f.size() < 14 + 20 + 20) return "short frame";
    size_t l2 = 14;
    uint32_t type = get16(f, 12);
    if (type == 0x8100) {
        type = get16(f, 16);
        l2 = 18;
    }
    if (type == 0x0800) {
        const size_t l3 = (f[l2] & 0xf) * 4u;
        if (finish(sum(f.data() + l2, l3)) != 0) return "bad IPv4 header checksum";
        if (get16(f, l2 + 2) != f.size() - l2) return "IPv4 total length " + std::to_string(get16(f, l2 + 2));
        if (tcp_checksum_of(f, l2, l3, 4) != 0) return "bad TCP checksum (IPv4)";
        return "";
    }
    if (type == 0x86dd) {
        if (get16(f, l2 + 4) != f.size() - l2 - 40) return "IPv6 payload length " + std::to_string(get16(f, l2 + 4));
        if (tcp_checksum_of(f, l2, 40, 6) != 0) return "bad TCP checksum (IPv6)";
        return "";
    }
    return "not IP";
}

std::string check_segments(const TcpFrameSpec& s, const std::vector<std::vector<uint8_t>>& frames, uint32_t mss,
                           bool partial) {
    const uint32_t count = s.payload == 0 ? 1 : (s.payload + mss - 1) / mss;
    if (frames.size() != count) return std::to_string(frames.size()) + " frames, not " + std::to_string(count);
    const size_t l2 = l2_of(s), l3 = l3_of(s), hdrs = l2 + l3 + kTcpHdr;
    for (uint32_t i = 0; i < count; i++) {
        std::vector<uint8_t> f = frames[i];
        const std::string at = "segment " + std::to_string(i) + ": ";
        const uint32_t chunk = std::min(mss, s.payload - i * mss);
        if (f.size() != hdrs + chunk) return at + "length " + std::to_string(f.size());
        if (partial) {
            const size_t tcp_len = f.size() - l2 - l3;
            uint32_t ph = 6 + static_cast<uint32_t>(tcp_len);
            ph = s.version == 4 ? sum(f.data() + l2 + 12, 8, ph) : sum(f.data() + l2 + 8, 32, ph);
            if (static_cast<uint16_t>(~finish(ph)) != get16(f, l2 + l3 + 16))
                return at + "the checksum field does not hold the pseudo-header sum";
            put16(f, l2 + l3 + 16, 0);
            put16(f, l2 + l3 + 16, tcp_checksum_of(f, l2, l3, s.version));
        }
        if (std::string e = check_tcp_frame(f); !e.empty()) return at + e;
        const uint32_t seq = get16(f, l2 + l3 + 4) << 16 | get16(f, l2 + l3 + 6);
        if (seq != s.seq + i * mss) return at + "sequence number " + std::to_string(seq);
        uint8_t flags = s.flags;
        if (i + 1 < count) flags &= static_cast<uint8_t>(~0x09);  // FIN, PSH
        if (i != 0) flags &= static_cast<uint8_t>(~0x80);         // CWR
        if (f[l2 + l3 + 13] != flags) return at + "TCP flags " + std::to_string(f[l2 + l3 + 13]);
        if (s.version == 4 && get16(f, l2 + 4) != ((s.ip_id + i) & 0xffff)) return at + "IPv4 identification";
        for (uint32_t k = 0; k < chunk; k++)
            if (f[hdrs + k] != pattern(s.stream_at + i * mss + k)) return at + "payload byte " + std::to_string(k);
    }
    return "";
}

Packet* large_segment(PacketPool& pool, const TcpFrameSpec& s, uint16_t mss) {
    Packet* p = to_chain(pool, tcp_frame(s), pool.data_room());
    if (p == nullptr) return nullptr;
    p->ol_flags = pkt::kTxTcpSeg | (s.version == 4 ? pkt::kTxIpv4 : pkt::kTxIpv6);
    p->l2_len = static_cast<uint8_t>(l2_of(s));
    p->l3_len = static_cast<uint16_t>(l3_of(s));
    p->l4_len = kTcpHdr;
    p->tso_segsz = mss;
    return p;
}

}  // namespace vireo::test
