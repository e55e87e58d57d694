// Test helper: TCP segments as bytes, built and checked independently of
// vireo's own segmentation code (tcp_segment.hpp), and moved in and out of
// packet chains.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "packet_chain.hpp"
#include "vireo/mempool/packet_pool.hpp"

namespace vireo::test {

struct TcpFrameSpec {
    int version = 4;         // 4 or 6
    uint32_t payload = 0;    // TCP payload bytes
    uint32_t seq = 1000;     // sequence number of the first payload byte
    uint8_t flags = 0x18;    // PSH|ACK
    bool vlan = false;       // one 802.1Q tag
    uint32_t stream_at = 0;  // payload byte k is pattern(stream_at + k)
    uint16_t ip_id = 0x100;
};

inline uint8_t pattern(uint32_t k) { return static_cast<uint8_t>(k * 7 + (k >> 8) + 3); }

// Ethernet [+ VLAN] + IPv4 (20) or IPv6 (40) + TCP with a 12-byte timestamp
// option (32) + payload; IP lengths and both checksums valid.
std::vector<uint8_t> tcp_frame(const TcpFrameSpec& s);
// The header lengths of tcp_frame(s).
inline uint32_t l2_of(const TcpFrameSpec& s) { return s.vlan ? 18 : 14; }
inline uint32_t l3_of(const TcpFrameSpec& s) { return s.version == 4 ? 20 : 40; }
inline constexpr uint32_t kTcpHdr = 32;

// "" when the IPv4 header checksum (if any), the IP length field and the TCP
// checksum of the frame are right; else what is wrong.
std::string check_tcp_frame(const std::vector<uint8_t>& f);

// "" when n frames are what cutting tcp_frame(s) at mss must give: lengths,
// checksums, sequence numbers, flags (FIN and PSH on the last only, CWR on the
// first only), IPv4 identifications and every payload byte. partial: each
// TCP checksum field must hold the pseudo-header sum (NEEDS_CSUM) instead.
std::string check_segments(const TcpFrameSpec& s, const std::vector<std::vector<uint8_t>>& frames, uint32_t mss,
                           bool partial);

// tcp_frame(s) as a chain flagged for TSO (pkt::kTxTcpSeg) at `mss`.
Packet* large_segment(PacketPool& pool, const TcpFrameSpec& s, uint16_t mss);

}  // namespace vireo::test
