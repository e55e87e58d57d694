// vireo: the control path of a virtio device, whatever carries it (vhost-user,
// VFIO virtio-pci): features, status, queue setup, notification, config,
// reset, and for a device that can go away, its connection. The data path never calls through it per packet: a queue
// takes its Doorbell once and rings it at most once per burst.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <string>

#include "vireo/iova/iova_mode.hpp"

namespace vireo {

class DmaMemory;

// Tells the device a queue has work: an eventfd write (vhost-user) or an MMIO
// store (virtio-pci). Plain data: copied into each queue.
class Doorbell {
public:
    static Doorbell eventfd(int fd) {
        Doorbell d;
        d.fd_ = fd;
        return d;
    }
    static Doorbell mmio32(volatile uint32_t* reg) {
        Doorbell d;
        d.reg_ = reg;
        return d;
    }
    // virtio-pci without NOTIFICATION_DATA: a 16-bit store of the queue index (4.1.5.2).
    static Doorbell mmio16(volatile uint16_t* reg) {
        Doorbell d;
        d.reg16_ = reg;
        return d;
    }
    void ring(uint32_t value) const noexcept {
        if (reg16_ != nullptr) {
            *reg16_ = static_cast<uint16_t>(value);
        } else if (reg_ != nullptr) {
            *reg_ = value;
        } else if (fd_ >= 0) {
            uint64_t one = 1;
            ssize_t r =
                ::write(fd_, &one, sizeof one);  // EAGAIN: the counter is already non-zero, the device will look
            (void)r;
        }
    }

private:
    int fd_ = -1;
    volatile uint32_t* reg_ = nullptr;
    volatile uint16_t* reg16_ = nullptr;
};

// Where a virtqueue lives, for the transport to program.
struct QueueAreas {
    uint16_t index;
    uint16_t size;
    bool packed;
    uint64_t desc_iova, driver_iova, device_iova;
    const void* desc_va;
    const void* driver_va;
    const void* device_va;
};

// virtio-net config space (virtio 1.2 section 5.1.4), the fields vireo reads.
struct NetConfig {
    uint8_t mac[6];
    uint16_t status;  // bit 0: link up
    uint16_t max_virtqueue_pairs;
    uint16_t mtu;
};

class Transport {
public:
    virtual ~Transport() = default;
    virtual std::string describe() const = 0;
    virtual uint64_t device_features() = 0;
    // Sends the accepted features; throws a clear error when the device refuses them.
    virtual void set_features(uint64_t features) = 0;
    virtual void set_status(uint8_t status) = 0;
    virtual uint8_t status() = 0;
    virtual void reset() = 0;
    virtual uint16_t max_queue_pairs() = 0;
    virtual uint16_t max_queue_size(uint16_t index) = 0;  // 0: any size up to 32768
    virtual void setup_queue(const QueueAreas& q) = 0;
    virtual Doorbell doorbell(uint16_t index) = 0;
    virtual NetConfig net_config() = 0;
    // The IOMMU arrangement behind this device, for decide_iova_mode().
    virtual IommuKind iommu() const = 0;
    // The highest IOVA that IOMMU can map (its address width).
    virtual uint64_t iommu_max_iova() const { return ~uint64_t{0}; }
    // True while the device is reachable (a vhost-user back end may go away).
    virtual bool connected() = 0;
    // Whether a device processes the virtio-net control queue. Not over
    // vhost-user: there the back end never sees it (QEMU handles it in its own
    // device model), so queue pairs are switched with SET_VRING_ENABLE.
    virtual bool control_queue_device() const { return true; }
    // The memory descriptors will point into, before the device starts (VFIO
    // maps it into the IOMMU; vhost-user sends it as the memory table).
    virtual void attach_memory(DmaMemory& mem) = 0;
    // How to make the device offer VIRTIO_F_ACCESS_PLATFORM, for error messages.
    virtual std::string access_platform_hint() const = 0;
    // An eventfd that becomes readable when the device signals a configuration
    // change (link status), or -1; poll_config_change() consumes the event.
    virtual int config_event_fd() const { return -1; }
    virtual bool poll_config_change() { return false; }

    // --- The connection, for a device that can go away and come back
    // (vhost-user). The defaults describe one that is always there (PCI).
    // A descriptor that reports POLLHUP/POLLRDHUP once the device has gone, or -1.
    virtual int connection_fd() const { return -1; }
    // Why the connection went down, for the link status ("the back end closed the connection").
    virtual std::string link_down_reason() const { return {}; }
    // Whether reconnect() can bring the device back.
    virtual bool can_reconnect() const { return false; }
    // Drops the connection (the device sees it close).
    virtual void disconnect() {}
    // Waits until the device is back (server: the next back end connects;
    // client: connects again, backing off) and redoes the transport's own
    // handshake. False when stop_fd became readable (or the process cancelled
    // its waits) first; throws Error when a peer came but the handshake
    // failed (the caller disconnects and tries again).
    virtual bool reconnect(int stop_fd) {
        (void)stop_fd;
        return false;
    }
};

}  // namespace vireo
