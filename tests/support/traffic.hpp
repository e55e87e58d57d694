// Test helper: verified traffic through a NetPort and a forwarding peer.
// Every frame carries [dst mac][src mac][0x88b5][seq 8][len 4][queue 2]
// [pattern ...][checksum 4]; frames larger than the pool's data room go out as
// segment chains. The receiver gathers segments and checks length, queue,
// sequence (per queue), pattern and checksum.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "vireo/pmd/net_port.hpp"

namespace vireo::test {

struct TrafficOptions {
    uint64_t per_queue = 100000;             // frames to send on each queue
    std::function<uint32_t(uint64_t)> size;  // frame length for a sequence number (>= 34)
    uint32_t window = 96;                    // frames in flight per queue
    bool lossless = true;                    // false: gaps allowed (full speed), order still checked
    bool macswap = false;                    // the peer swaps MAC addresses
    std::chrono::milliseconds limit{60000};
};

struct TrafficResult {
    uint64_t sent = 0, received = 0, bad = 0, misordered = 0, segmented = 0;
    std::string first_problem;
    bool complete() const { return bad == 0 && misordered == 0; }
};

TrafficResult run_traffic(NetPort& port, PacketPool& pool, const TrafficOptions& o);

}  // namespace vireo::test
