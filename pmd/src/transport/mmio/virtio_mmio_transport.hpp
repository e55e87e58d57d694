// The virtio-mmio transport, version 2 (virtio 1.2 section 4.2), over a
// platform device (vfio-platform or /dev/mem, mmio_device.hpp): the same
// Transport as virtio-pci's, so a NetPort does over MMIO what it does over PCI.
//
// Mapping of the control path:
//   identity      MagicValue, Version (2; version 1 refused with the fix), DeviceID (1: net)
//   features      DeviceFeaturesSel/DeviceFeatures, DriverFeaturesSel/DriverFeatures (4.2.2)
//   status        Status; reset = write 0, wait until it reads 0
//   queues        QueueSel, QueueNumMax (0: absent), QueueNum, the three
//                 addresses as Low/High halves, QueueReady (4.2.3.2)
//   notify        QueueNotify, one register for every queue: the queue's index
//   config        from 0x100, read under ConfigGeneration (2.5.1, 4.2.2)
//   interrupts    one line for everything: InterruptStatus says config change
//                 (bit 1) and/or used buffers (bit 0, any queue), InterruptACK
//                 clears it (4.2.3.4). A small thread waits on the line, acks,
//                 unmasks and fans it out: config_event_fd(), and each Rx
//                 queue's used_notify_fd(). Without a line (/dev/mem) a timer
//                 makes config_event_fd() readable every 100 ms and
//                 poll_config_change() reads InterruptStatus itself.
// Bits 64 and up: QEMU answers any feature select above 1 with bits 32..63,
// so only the two words are read.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "transport/mmio/mmio_device.hpp"
#include "vireo/pmd/transport.hpp"

namespace vireo {

class VirtioMmioTransport final : public Transport {
public:
    // Checks the identity registers, resets the device, starts the interrupt
    // thread (or the polling timer).
    explicit VirtioMmioTransport(std::unique_ptr<MmioDevice> dev);
    ~VirtioMmioTransport() override;  // stops the thread, resets the device: no DMA after this

    std::string describe() const override { return "mmio:" + dev_->name(); }
    virtio::Features device_features() override;
    void set_features(const virtio::Features& features) override;
    void set_status(uint8_t status) override;
    uint8_t status() override;
    void reset() override;
    uint16_t max_queue_size(uint16_t index) override;
    void setup_queue(const QueueAreas& q) override;
    Doorbell doorbell(uint16_t index) override;
    NetConfig net_config() override;
    DmaTraits dma_traits() const override;
    void attach_memory(DmaMemory& mem, const DmaPlan& plan) override { dev_->attach_memory(mem, plan); }
    int config_event_fd() const override { return config_fd_; }
    bool poll_config_change() override;
    int used_notify_fd(uint16_t index) const override;

    const MmioDevice& device() const noexcept { return *dev_; }
    uint64_t interrupts() const noexcept { return interrupts_.load(std::memory_order_relaxed); }

private:
    void read_config(void* out, uint32_t offset, uint32_t len);
    void irq_loop();

    std::unique_ptr<MmioDevice> dev_;
    virtio::Features features_;
    int config_fd_ = -1;  // eventfd (interrupt thread) or timerfd (polling)
    bool polled_ = false;
    int stop_fd_ = -1;
    mutable std::mutex rx_mu_;
    std::vector<int> rx_fds_;  // by Rx queue index / 2: signalled on a used-buffer interrupt
    std::atomic<uint64_t> interrupts_{0};
    std::thread irq_thread_;
};

}  // namespace vireo
