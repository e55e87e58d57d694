// vireo: Packet, the packet buffer (DPDK's rte_mbuf, reduced to what a
// virtio-net PMD and its users need).
//
// Layout of one pool object:
//   [ Packet: 64 bytes of metadata ][ headroom (>= 128) | data room ]
//                                   ^ buf_va / buf_iova
// The metadata fills exactly one cache line. buf_iova is computed once, when
// the pool is created, in the pool's IOVA mode; the data path never translates.
// The headroom holds the virtio-net header (virtio 1.2 section 5.1.6) in front
// of the frame so that header and frame go out in one descriptor.
#pragma once

#include <cstdint>
#include <type_traits>

#include "vireo/base/address.hpp"

namespace vireo {

class PacketPool;

// Offload flags (Packet::ol_flags).
namespace pkt {
inline constexpr uint32_t kRxL4CsumGood = 1u << 0;     // device verified the L4 checksum (DATA_VALID)
inline constexpr uint32_t kRxL4CsumPartial = 1u << 1;  // checksum left to compute (NEEDS_CSUM): the field holds
                                                       // the pseudo-header sum; complete_checksum() finishes it
inline constexpr uint32_t kRxRssHash = 1u << 2;        // rss_hash and rss_type valid (HASH_REPORT)
inline constexpr uint32_t kRxDeviceHeader = 1u << 3;   // the bytes in front of data hold the device's
                                                       // virtio-net header (nonzero): Tx overwrites it unread
// GUEST_TSO4/6 (5.1.6.4): one large TCP segment the device did not cut (a
// peer's TSO, or coalesced): tso_segsz holds the MSS it would be cut at,
// l2_len/l3_len/l4_len its header lengths. tcp_segment() cuts it.
inline constexpr uint32_t kRxGsoTcp4 = 1u << 4;
inline constexpr uint32_t kRxGsoTcp6 = 1u << 5;
inline constexpr uint32_t kTxTcpCsum = 1u << 8;  // compute the TCP checksum (device offload)
inline constexpr uint32_t kTxUdpCsum = 1u << 9;  // compute the UDP checksum (device offload)
inline constexpr uint32_t kTxIpv4 = 1u << 10;
inline constexpr uint32_t kTxIpv6 = 1u << 11;
// TCP segmentation (HOST_TSO4/6, 5.1.6.2): the frame is one TCP segment of up
// to 64 KiB to be cut into tso_segsz-byte payloads; with kTxIpv4 or kTxIpv6
// and l2_len/l3_len/l4_len set, as with DPDK's RTE_MBUF_F_TX_TCP_SEG. The
// device cuts it when it offers HOST_TSO for that IP version, vireo does
// otherwise (tcp_segment.hpp); the TCP checksum field may hold anything.
inline constexpr uint32_t kTxTcpSeg = 1u << 12;
}  // namespace pkt

struct alignas(64) Packet {
    uint8_t* buf_va;   // start of the buffer (headroom starts here)
    Iova buf_iova;     // IOVA of buf_va in the pool's mode
    Packet* next;      // next segment of the chain, nullptr for the last
    PacketPool* pool;  // where this segment returns
    uint32_t pkt_len;  // bytes in the whole chain (meaningful in the first segment)
    uint32_t rss_hash;
    uint32_t ol_flags;   // pkt::k* bits
    uint16_t tso_segsz;  // kTxTcpSeg: payload bytes per segment; kRxGsoTcp4/6: the device's MSS
    uint16_t rss_type;   // kRxRssHash: what rss_hash was computed over (virtio's hash_report, 5.1.6.4.3.4)
    uint16_t data_off;   // data starts at buf_va + data_off
    uint16_t data_len;   // bytes of data in this segment
    uint16_t buf_len;    // headroom + data room
    uint16_t nb_segs;    // segments in the chain (first segment)
    uint16_t port;       // input port
    uint16_t queue;      // input queue
    uint8_t l2_len;      // Tx checksum offload: header lengths
    uint8_t l4_len;
    uint16_t l3_len;

    uint8_t* data() noexcept { return buf_va + data_off; }
    const uint8_t* data() const noexcept { return buf_va + data_off; }
    Iova data_iova() const noexcept { return buf_iova + data_off; }
    uint16_t headroom() const noexcept { return data_off; }
    uint16_t tailroom() const noexcept { return static_cast<uint16_t>(buf_len - data_off - data_len); }

    // Grows the data at the front by n bytes (into the headroom); nullptr if it does not fit.
    uint8_t* prepend(uint16_t n) noexcept {
        if (n > data_off) return nullptr;
        data_off = static_cast<uint16_t>(data_off - n);
        data_len = static_cast<uint16_t>(data_len + n);
        pkt_len += n;
        return data();
    }
    // Grows the data at the end by n bytes; nullptr if the tailroom is short.
    uint8_t* append(uint16_t n) noexcept {
        if (n > tailroom()) return nullptr;
        uint8_t* p = data() + data_len;
        data_len = static_cast<uint16_t>(data_len + n);
        pkt_len += n;
        return p;
    }
    // Drops n bytes from the front; false if the segment is shorter.
    bool adj(uint16_t n) noexcept {
        if (n > data_len) return false;
        data_off = static_cast<uint16_t>(data_off + n);
        data_len = static_cast<uint16_t>(data_len - n);
        pkt_len -= n;
        return true;
    }
    // Resets the metadata for a fresh single-segment packet (pool fields stay).
    void reset(uint16_t headroom) noexcept {
        next = nullptr;
        pkt_len = 0;
        rss_hash = 0;
        rss_type = 0;
        ol_flags = 0;
        tso_segsz = 0;
        data_off = headroom;
        data_len = 0;
        nb_segs = 1;
        port = 0xffff;
        queue = 0;
        l2_len = l4_len = 0;
        l3_len = 0;
    }
};

static_assert(sizeof(Packet) == 64, "Packet metadata must fill exactly one cache line");
static_assert(std::is_trivially_default_constructible_v<Packet> && std::is_trivially_copyable_v<Packet>,
              "Packet stays a plain struct: typed addresses cost nothing");

}  // namespace vireo
