// Answers the device IOTLB misses of the kernel's vhost devices (vhost-net
// with VIRTIO_F_ACCESS_PLATFORM, vhost-vdpa) as their IOMMU: the kernel writes
// VHOST_IOTLB_MISS on a device's fd when a ring or buffer access finds no
// mapping, and the ring waits until the answer (VHOST_IOTLB_UPDATE) arrives.
// The answer is the region that holds the address (transport/iotlb.hpp, the
// same lookup vhost-user's back-end channel answers with); an address outside
// our memory is never mapped and is counted. One thread for all the devices of
// a port; destroying the loop ends it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "common/wait.hpp"
#include "transport/iotlb.hpp"
#include "transport/vhost_kernel/vhost_device.hpp"

namespace vireo::vhost_kernel {

struct IotlbCounters {
    uint64_t misses_answered = 0;
    uint64_t misses_refused = 0;   // not our memory: left unmapped
    uint64_t access_failures = 0;  // VHOST_IOTLB_ACCESS_FAIL: the device was refused an access
};

class IotlbLoop {
public:
    using Lookup = std::function<std::optional<iotlb::Entry>(Iova)>;
    IotlbLoop(std::vector<VhostDevice*> devices, Lookup lookup);
    ~IotlbLoop();
    IotlbLoop(const IotlbLoop&) = delete;
    IotlbLoop& operator=(const IotlbLoop&) = delete;

    IotlbCounters counters() const;

    // One round without the thread (tests): handles what each fd holds now.
    void handle_pending();

private:
    void run();

    std::vector<VhostDevice*> devices_;
    Lookup lookup_;
    std::atomic<uint64_t> answered_{0}, refused_{0}, failed_{0};
    detail::StopSignal stop_;
    std::thread thread_;
};

}  // namespace vireo::vhost_kernel
