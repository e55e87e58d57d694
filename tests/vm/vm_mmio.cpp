// vireo-vm-check mmio-cost: one register access through each way into a virtio-mmio device.
#include <chrono>
#include <cstdio>

#include "transport/mmio/mmio_device.hpp"
#include "transport/mmio/virtio_mmio_regs.hpp"
#include "transport/mmio/virtio_mmio_transport.hpp"
#include "vm_ctrl.hpp"

namespace vm {

void report_mmio_cost(const std::string& name, uint64_t count) {
    using Clock = std::chrono::steady_clock;
    vireo::VirtioMmioTransport t(vireo::open_mmio_device(name));
    const vireo::MmioDevice& d = t.device();
    const vireo::Doorbell bell = t.doorbell(0);  // queue 0 is not set up: the device ignores the notification
    const auto t0 = Clock::now();
    for (uint64_t i = 0; i < count; i++) bell.ring(0);
    const auto t1 = Clock::now();
    uint32_t sink = 0;
    for (uint64_t i = 0; i < count; i++) sink |= d.read32(vireo::virtio_mmio::kStatus);
    const auto t2 = Clock::now();
    const double notify_ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / double(count);
    const double read_ns = std::chrono::duration<double, std::nano>(t2 - t1).count() / double(count);
    std::printf("INFO mmio cost %s through %s: QueueNotify %.0f ns, register read %.0f ns (%llu of each; status %u)\n",
                name.c_str(), d.access(), notify_ns, read_ns, static_cast<unsigned long long>(count), sink);
    check(count > 0 && notify_ns > 0 && read_ns > 0, "mmio cost measured through " + std::string(d.access()));
}

}  // namespace vm
