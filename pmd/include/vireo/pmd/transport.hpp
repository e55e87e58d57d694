// vireo: the control path of a virtio device, whatever carries it (vhost-user,
// VFIO or uio virtio-pci, the kernel's vhost-net and vhost-vdpa, virtio-mmio): features,
// status, queue setup, notification, config, reset, and for a device that can
// go away, its connection. The data path never calls through it per packet: a queue
// takes its Doorbell once and rings it at most once per burst.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "vireo/base/address.hpp"
#include "vireo/iova/iova_policy.hpp"
#include "vireo/pmd/virtio_features.hpp"

namespace vireo {

class DmaMemory;

// Tells the device a queue has work: an eventfd write (vhost-user), an MMIO
// store (virtio-pci, virtio-mmio mapped), or a 32-bit pwrite at a register's
// offset in a VFIO device fd (virtio-mmio whose registers cannot be mapped).
// Plain data: copied into each queue.
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
    static Doorbell pwrite32(int fd, uint64_t offset) {
        Doorbell d;
        d.fd_ = fd;
        d.offset_ = static_cast<int64_t>(offset);
        return d;
    }
    void ring(uint32_t value) const noexcept {
        if (reg16_ != nullptr) {
            *reg16_ = static_cast<uint16_t>(value);
        } else if (reg_ != nullptr) {
            *reg_ = value;
        } else if (offset_ >= 0) {
            ssize_t r = ::pwrite(fd_, &value, sizeof value, offset_);  // the kernel makes it one 32-bit store
            (void)r;
        } else if (fd_ >= 0) {
            uint64_t one = 1;
            ssize_t r =
                ::write(fd_, &one, sizeof one);  // EAGAIN: the counter is already non-zero, the device will look
            (void)r;
        }
    }

private:
    int fd_ = -1;
    int64_t offset_ = -1;  // pwrite32: the register's offset in fd_
    volatile uint32_t* reg_ = nullptr;
    volatile uint16_t* reg16_ = nullptr;
};

// Where a virtqueue lives, for the transport to program.
struct QueueAreas {
    uint16_t index;
    uint16_t size;
    bool packed;
    Iova desc_iova, driver_iova, device_iova;  // what the device is given
    const void* desc_va;
    const void* driver_va;
    const void* device_va;
};

// virtio-net config space (virtio 1.2 section 5.1.4), the fields vireo reads,
// and what the transport adds about the device behind it.
struct NetConfig {
    uint8_t mac[6];
    uint16_t status;               // virtio::kNetStatus* (link up: kNetStatusLinkUp)
    uint16_t max_virtqueue_pairs;  // 1 without VIRTIO_NET_F_MQ
    uint16_t mtu;
    // With VIRTIO_NET_F_SPEED_DUPLEX (5.1.4.2); the "unknown" values otherwise.
    uint32_t speed_mbps = kSpeedUnknown;
    uint8_t duplex = kDuplexUnknown;  // 0 half, 1 full
    static constexpr uint32_t kSpeedUnknown = 0xffffffff;
    static constexpr uint8_t kDuplexUnknown = 0xff;
    // Whether a device processes the control queue. Not over vhost-user: the
    // back end never sees it (QEMU handles it in its own device model), so
    // queue pairs are switched with SET_VRING_ENABLE there.
    bool control_queue_processed = true;
    // With VIRTIO_NET_F_RSS or HASH_REPORT (5.1.4): the device's limits.
    uint8_t rss_max_key_size = 0;
    uint16_t rss_max_indirection_table_length = 0;
    uint32_t supported_hash_types = 0;  // virtio::kHashType* bits
};

// What a transport did as its device's IOMMU: vhost-user, vhost-net and
// vhost-vdpa translate through a device IOTLB that vireo fills.
struct DeviceIotlbCounters {
    uint64_t updates = 0;          // mappings written before the device started (each region, each device)
    uint64_t misses_answered = 0;  // the device asked for an address of ours: mapped
    uint64_t misses_refused = 0;   // it asked for an address that is not ours: left unmapped
    uint64_t access_failures = 0;  // it was refused an access its mapping did not allow
};

// A device that can go away and come back (vhost-user), through
// Transport::connection(); nullptr for one that is always there (PCI).
class TransportConnection {
public:
    virtual ~TransportConnection() = default;
    // Reports POLLHUP/POLLRDHUP once the device has gone.
    virtual int fd() const = 0;
    // Why the connection went down, for the link status.
    virtual std::string down_reason() const = 0;
    // Drops the connection (the device sees it close).
    virtual void disconnect() = 0;
    // Waits until the device is back (server: the next back end connects;
    // client: connects again, backing off) and redoes the transport's own
    // handshake. False when stop_fd became readable (or the process cancelled
    // its waits) first; throws Error when a peer came but the handshake
    // failed (the caller disconnects and tries again).
    virtual bool reconnect(int stop_fd) = 0;
};

// The control path of one virtio device. Generic virtio except net_config().
class Transport {
public:
    virtual ~Transport() = default;
    virtual std::string describe() const = 0;
    // Every feature word the transport carries (virtio_features.hpp): 128 bits
    // through PCI's and MMIO's select registers, 64 over vhost-user and vhost.
    virtual virtio::Features device_features() = 0;
    // Sends the accepted features; throws a clear error when the device refuses them.
    virtual void set_features(const virtio::Features& features) = 0;
    virtual void set_status(uint8_t status) = 0;
    virtual uint8_t status() = 0;
    virtual void reset() = 0;
    virtual uint16_t max_queue_size(uint16_t index) = 0;  // 0: any size up to 32768
    virtual void setup_queue(const QueueAreas& q) = 0;
    // Per-queue reset (VIRTIO_F_RING_RESET, virtio 1.2 2.6.1): "" when this
    // transport can reset one queue, else why not (for the port's errors).
    virtual std::string queue_reset_unavailable() const;
    // Resets queue `index` alone (RING_RESET negotiated) and returns once the
    // device no longer uses it and has forgotten its state; setup_queue() then
    // enables it again, with other parameters if wanted. Throws on a timeout.
    virtual void reset_queue(uint16_t index);
    virtual Doorbell doorbell(uint16_t index) = 0;
    virtual NetConfig net_config() = 0;
    // How the device reaches memory: the facts the IOVA policy decides from
    // (vireo/iova/iova_policy.hpp).
    virtual DmaTraits dma_traits() const = 0;
    // The memory descriptors will point into, before the device starts, and
    // the device's DMA plan (decide_dma): VFIO maps into the IOMMU what the
    // plan says; vhost-user sends the memory as its memory table.
    virtual void attach_memory(DmaMemory& mem, const DmaPlan& plan) = 0;
    // An eventfd that becomes readable when the device signals a configuration
    // change (link status), or -1; poll_config_change() consumes the event.
    virtual int config_event_fd() const { return -1; }
    virtual bool poll_config_change() { return false; }
    // An fd that becomes readable when the device signals a used buffer on
    // queue `index` (once the queue asked for it), or -1 when the transport
    // cannot deliver that (vhost-user: the queue's call eventfd).
    virtual int used_notify_fd(uint16_t index) const {
        (void)index;
        return -1;
    }
    // The connection of a device that can go away, or nullptr (not supported).
    virtual TransportConnection* connection() { return nullptr; }
    // Its device IOTLB's counters while vireo is that device's IOMMU (ACCESS_PLATFORM over a vhost
    // transport), else nothing.
    virtual std::optional<DeviceIotlbCounters> iotlb_counters() const { return std::nullopt; }
};

// What vireo found about a device's DMA, for reports (DeviceSet, PCI discovery).
struct DmaReport {
    virtio::Features device_features;
    bool access_platform = false;  // bit 33 offered
    IommuKind iommu = IommuKind::None;
    DmaPlan plan;  // in the process's mode (DeviceSet) or on its own (discovery)
};

struct DeviceSpec;
// Opens the transport a device string names (vhost-user, PCI, vhost-net, vhost-vdpa, MMIO); no memory needed yet.
std::unique_ptr<Transport> open_transport(const DeviceSpec& spec);
// The IOVA policy's facts about an opened device: its bit 33 (offered, and
// allowed by the device string) and its transport's traits.
DeviceDmaFacts dma_facts_of(Transport& t, const DeviceSpec& spec);
// The user's keys for its DMA: the device string's iova= and dma=, and the
// process's defaults (vireo-fwd --iova-mode=, --dma=) where it is silent.
DmaKeys dma_keys_of(const DeviceSpec& spec, std::optional<IovaMode> process_iova = std::nullopt,
                    std::optional<DmaArrangement> process_dma = std::nullopt);

}  // namespace vireo
