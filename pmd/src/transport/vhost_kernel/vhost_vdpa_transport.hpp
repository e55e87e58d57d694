// The vhost-vdpa transport: a vDPA device (a SmartNIC's virtio data path, or
// the kernel's vdpa_sim_net) through /dev/vhost-vdpa-N. The control path is
// virtio's own, carried by ioctls: the device's features, status byte and
// config space are the real device's, its rings are ours, and every address it
// is given goes through the IOTLB vireo programs (there is no memory table):
//   open        VHOST_SET_OWNER, VHOST_VDPA_GET_DEVICE_ID (net only), backend
//               features (IOTLB_MSG_V2, IOTLB_BATCH), GET_FEATURES, GET_IOVA_RANGE,
//               GET_VRING_NUM, GET_CONFIG_SIZE
//   status      VHOST_VDPA_SET_STATUS / GET_STATUS (0 resets the device)
//   DRIVER_OK   the memory mapped (VHOST_IOTLB_UPDATE, batched), per ring
//               NUM/BASE/ADDR/KICK/CALL and VHOST_VDPA_SET_VRING_ENABLE, the
//               config eventfd, then the status
//   config      VHOST_VDPA_GET_CONFIG (virtio_net_config, 5.1.4)
// Addresses: a vDPA device always translates (the IOVA policy's vDPA row):
// IOVA = VA when the device's IOVA range holds our virtual addresses, else
// IOVAs vireo lays out inside the range; a device that does not offer
// ACCESS_PLATFORM is refused. With dma=window only the window is mapped.
#pragma once

#include "transport/vhost_kernel/vhost_uapi.hpp"

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "transport/queue_eventfds.hpp"
#include "transport/vhost_kernel/vhost_device.hpp"
#include "vireo/pmd/transport.hpp"

namespace vireo {

class VhostVdpaTransport final : public Transport {
public:
    explicit VhostVdpaTransport(const std::string& path);
    ~VhostVdpaTransport() override;

    std::string describe() const override { return "vhost-vdpa:" + dev_.path(); }
    virtio::Features device_features() override { return device_features_; }
    void set_features(const virtio::Features& features) override;
    void set_status(uint8_t status) override;
    uint8_t status() override;
    void reset() override;
    uint16_t max_queue_size(uint16_t) override { return max_ring_; }
    void setup_queue(const QueueAreas& q) override;
    Doorbell doorbell(uint16_t index) override { return fds_.doorbell(index); }
    NetConfig net_config() override;
    DmaTraits dma_traits() const override;
    void attach_memory(DmaMemory& mem, const DmaPlan&) override;
    int config_event_fd() const override { return config_fd_; }
    bool poll_config_change() override;
    int used_notify_fd(uint16_t index) const override { return fds_.call(index); }
    std::optional<DeviceIotlbCounters> iotlb_counters() const override;

    // The device's IOVA range (VHOST_VDPA_GET_IOVA_RANGE), inclusive.
    vhost_vdpa_iova_range iova_range() const noexcept { return range_; }

private:
    void map_memory();
    void unmap_memory();
    void start_rings();
    void write_status(uint8_t s);

    vhost_kernel::VhostDevice dev_;
    virtio::Features device_features_;
    virtio::Features features_;
    uint64_t backend_features_ = 0;
    vhost_vdpa_iova_range range_{};
    uint16_t max_ring_ = 0;
    uint32_t config_size_ = 0;
    int config_fd_ = -1;
    DmaMemory* mem_ = nullptr;
    size_t region_listener_ = 0;
    bool listening_ = false;
    std::vector<bool> mapped_;  // per region of mem_
    uint64_t updates_ = 0;
    std::vector<QueueAreas> queues_;
    QueueEventfds fds_;
};

// Throws, saying what to do, when pinning `unmapped` would pass RLIMIT_MEMLOCK.
void check_memlock(std::span<const iotlb::Entry> unmapped, const std::string& device);

// Whether [iova, iova + size) lies inside the device's IOVA range: "" when it
// does, else the error (naming the device and the fix).
std::string vdpa_range_error(const vhost_vdpa_iova_range& range, Iova iova, uint64_t size, const std::string& device);

}  // namespace vireo
