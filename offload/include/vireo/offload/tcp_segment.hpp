// TCP segmentation in software: what a virtio-net device does for a frame
// sent with HOST_TSO4/6 (virtio 1.2 section 5.1.6.2), for the devices that do
// not offer it, and for an application that received one large segment
// (GUEST_TSO4/6, pkt::kRxGsoTcp4/6) and must send it where large segments
// cannot go.
//
// The input is one TCP segment of up to 64 KiB in a packet chain: Ethernet
// (one VLAN tag at most), IPv4 without options or with them, or IPv6 (with
// extension headers counted in l3_len), then TCP, all three headers in the
// first segment, their lengths in l2_len/l3_len/l4_len (tcp_headers() fills
// them from the frame). Each output frame gets a copy of the headers with
//   IPv4: total length, identification + i, header checksum recomputed;
//   IPv6: payload length;
//   TCP:  sequence number + offset; FIN and PSH only on the last, CWR only on
//         the first;
// and its checksum either complete or as a pseudo-header sum for the device
// to finish (pkt::kTxTcpCsum set, the NEEDS_CSUM convention).
#pragma once

#include <cstdint>

#include "vireo/mempool/packet.hpp"

namespace vireo {

class PacketPool;

// Fills l2_len, l3_len and l4_len of an Ethernet + IPv4/IPv6 + TCP frame from
// its first segment; returns the IP version (4 or 6), or 0 when the frame is
// not TCP over IP or a header does not fit in the first segment.
int tcp_headers(Packet& p) noexcept;

// A frame received with its checksum still to do (pkt::kRxL4CsumPartial:
// the kernel, or a guest, left it to the device, NEEDS_CSUM) and sent on must
// ask the next device, or vireo's Tx, to finish it, or it arrives with a
// pseudo-header sum where the checksum belongs and the receiver drops it.
// Fills l2_len/l3_len/l4_len of a TCP or UDP over IPv4/IPv6 frame and returns
// the Tx flags that ask for that (kTxTcpCsum or kTxUdpCsum, with kTxIpv4 or
// kTxIpv6); 0 when the frame is neither (it is left as it is).
uint32_t tx_checksum_flags(Packet& p) noexcept;

enum class SegmentChecksum : uint8_t {
    Complete,  // every checksum computed here
    Partial,   // TCP field = pseudo-header sum, pkt::kTxTcpCsum set (the device or complete_checksum finishes it)
};

// How many frames tcp_segment() makes of p (0: not a valid large segment).
uint32_t tcp_segment_count(const Packet& p) noexcept;

// Cuts p into at most `max` single-segment frames of at most p.tso_segsz
// payload bytes each, fresh from `pool`, into out[]. Returns how many; 0 when
// p is not a valid TCP segment (headers as above, tso_segsz > 0), needs more
// than `max` frames, a frame would not fit the pool's data room, or the pool
// ran out (nothing is kept then). p itself is left as it was.
uint16_t tcp_segment(const Packet& p, PacketPool& pool, Packet** out, uint16_t max, SegmentChecksum how) noexcept;

// The TCP checksum field of a large segment handed to a device with
// HOST_TSO (5.1.6.2): the pseudo-header sum over the segment's whole TCP
// length, as Linux and DPDK's virtio driver give it, and a valid IPv4 header
// checksum. Also returns the virtio gso_type (1 TCPV4, 4 TCPV6), or 0 when
// the headers are not what the offload flags say.
uint8_t tcp_prepare_tso(Packet& p) noexcept;

}  // namespace vireo
