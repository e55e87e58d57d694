// Test helper: large TCP segments (TSO) sent from one port and collected on
// another, through any back end (dpdk-testpmd's vhost, OVS-DPDK), and the
// checks of what arrives. Built on tcp_frames.hpp, independent of vireo's
// own segmentation except where a test cuts a received segment to check it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tcp_frames.hpp"
#include "vireo/pmd/net_port.hpp"

namespace vireo::test {

// Twelve segments of one TCP stream: IPv4 and IPv6 in turn, 20-64 KB of
// payload, one with a VLAN tag, FIN|PSH on the last.
std::vector<TcpFrameSpec> tso_stream();

// Sends each spec's segment (flagged for TSO at `mss`) from `a`, one per
// poll of `b`, and collects what `b` receives until `expect` frames arrived
// or 20 s passed.
std::vector<Packet*> send_and_collect(NetPort& a, NetPort& b, PacketPool& pool, const std::vector<TcpFrameSpec>& specs,
                                      uint16_t mss, size_t expect);

// "" when `p` is tcp_frame(s) received whole as one large segment of
// segment size `mss` (the GSO flag for its IP version), and cutting it
// (vireo's tcp_segment, checksums completed) gives exactly the segments
// check_segments expects; else what is wrong.
std::string check_large_segment(Packet& p, const TcpFrameSpec& s, uint32_t mss, PacketPool& pool);

}  // namespace vireo::test
