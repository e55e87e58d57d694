// Test helper: verified traffic through a NetPort and a forwarding peer, or
// from one port to another through a switch.
// Every frame carries [dst mac][src mac][0x88b5][seq 8][len 4][queue 2]
// [pattern ...][checksum 4]; frames larger than the pool's data room go out as
// segment chains. The receiver gathers segments and checks length, queue,
// sequence (per queue), pattern and checksum.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "vireo/pmd/net_port.hpp"

namespace vireo::test {

struct TrafficOptions {
    uint64_t per_queue = 100000;             // frames to send on each queue
    std::function<uint32_t(uint64_t)> size;  // frame length for a sequence number (>= 34)
    uint32_t window = 96;                    // frames in flight per queue
    bool lossless = true;                    // false: gaps allowed (full speed), order still checked
    bool macswap = false;                    // the peer swaps MAC addresses
    bool any_rx_queue = false;               // a switch chooses the Rx queue: order is checked per sending queue
    std::chrono::milliseconds limit{60000};
};

struct TrafficResult {
    uint64_t sent = 0, received = 0, bad = 0, misordered = 0, segmented = 0;
    std::string first_problem;
    bool complete() const { return bad == 0 && misordered == 0; }
};

TrafficResult run_traffic(NetPort& port, PacketPool& pool, const TrafficOptions& o);
// Frames sent on tx, received and checked on rx (a switch between them).
TrafficResult run_traffic(NetPort& tx, NetPort& rx, PacketPool& pool, const TrafficOptions& o);

// Sends single probe frames (EtherType kProbeEtherType) on tx until one
// arrives on rx, then drains what is still on its way: a path through a
// switch that is still enabling a port, or QEMU's hub right after both ends
// started, may lose or reorder the first frames. True within ms.
inline constexpr uint16_t kProbeEtherType = 0x88b6;
bool wait_path(NetPort& tx, NetPort& rx, PacketPool& pool, int ms);

// Traffic in the background for tests that break the path under it: frames
// of `size` bytes go out on tx queue 0 as fast as it takes them and are
// checked on rx (length, pattern, checksum, rising sequence; losses allowed).
class BackgroundTraffic {
public:
    BackgroundTraffic(NetPort& tx, NetPort& rx, PacketPool& pool, uint32_t size = 128, int cpu = 0);
    ~BackgroundTraffic();
    void stop();
    uint64_t sent() const { return sent_.load(); }
    uint64_t received() const { return received_.load(); }
    uint64_t bad() const { return bad_.load(); }
    uint64_t misordered() const { return misordered_.load(); }
    std::string first_problem() const;
    // Waits until n more frames arrived than when called: true within ms.
    bool wait_flow(uint64_t n, int ms) const;

private:
    void run(int cpu);
    NetPort& tx_;
    NetPort& rx_;
    PacketPool& pool_;
    uint32_t size_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> sent_{0}, received_{0}, bad_{0}, misordered_{0};
    mutable std::mutex lock_;
    std::string problem_;
    std::thread thread_;
};

}  // namespace vireo::test
