// The vhost-net transport: the exception path to the kernel's own stack. The
// device is the kernel's vhost-net (one /dev/vhost-net per queue pair, its
// rings served by a kernel thread) in front of a tap interface: what vireo
// sends comes out of the tap into the kernel, what the kernel sends through
// the tap arrives on vireo's Rx. DPDK's replacement for KNI is the same thing
// (virtio-user with the vhost-kernel back end).
//
// Mapping of the virtio control path (docs/vhost-kernel.md):
//   device features  vhost-net's (VHOST_GET_FEATURES: rings, VERSION_1, MRG_RXBUF,
//                    ACCESS_PLATFORM) plus what the tap does for itself: CSUM,
//                    GUEST_CSUM, HOST/GUEST_TSO4/6 (the virtio-net header goes
//                    through to the tap, TUNSETVNETHDRSZ 12), MAC (ours), STATUS
//                    (the tap's link), MTU (the tap's), MQ (queues=N taps queues)
//   set features     vhost-net's part to each /dev/vhost-net; GUEST_* to the tap (TUNSETOFFLOAD)
//   DRIVER_OK        per pair: memory table, IOTLB (ACCESS_PLATFORM), rings,
//                    kick/call/err eventfds, VHOST_NET_SET_BACKEND to its tap queue
//   reset            VHOST_NET_SET_BACKEND -1 on every ring (the kernel stops it),
//                    VHOST_GET_VRING_BASE, the IOTLB emptied
//   config           MAC (given or random, locally administered), link = the tap
//                    is up and has carrier (netlink events in the tap's namespace)
// Addresses: the IOVA policy's vhost row, as over vhost-user: with
// ACCESS_PLATFORM, rings and buffers are IOVAs the kernel translates through its
// device IOTLB, which vireo fills (and answers the misses of); without it, rings
// are our VAs and buffers the guest-physical addresses of the memory table.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "transport/queue_eventfds.hpp"
#include "transport/vhost_kernel/iotlb_loop.hpp"
#include "transport/vhost_kernel/tap.hpp"
#include "transport/vhost_kernel/vhost_device.hpp"
#include "vireo/pmd/transport.hpp"

namespace vireo {

struct VhostNetOptions {
    std::string tap;
    uint16_t queues = 1;
    std::string vhost_path = "/dev/vhost-net";
    std::array<uint8_t, 6> mac{};
    bool mac_given = false;
};

class VhostNetTransport final : public Transport {
public:
    explicit VhostNetTransport(const VhostNetOptions& opts);
    ~VhostNetTransport() override;

    std::string describe() const override { return "vhost-net:tap=" + opts_.tap; }
    virtio::Features device_features() override { return device_features_; }
    void set_features(const virtio::Features& features) override;
    void set_status(uint8_t status) override;
    uint8_t status() override { return status_; }
    void reset() override;
    uint16_t max_queue_size(uint16_t) override { return 0; }
    void setup_queue(const QueueAreas& q) override;
    Doorbell doorbell(uint16_t index) override { return fds_.doorbell(index); }
    NetConfig net_config() override;
    DmaTraits dma_traits() const override { return traits(); }
    // Every vhost-net device's: the same kernel code behind each.
    static DmaTraits traits();
    void attach_memory(DmaMemory& mem, const DmaPlan&) override { mem_ = &mem; }
    int config_event_fd() const override { return tap_.link_event_fd(); }
    bool poll_config_change() override { return tap_.link_changed(); }
    int used_notify_fd(uint16_t index) const override { return fds_.call(index); }
    std::optional<DeviceIotlbCounters> iotlb_counters() const override;

private:
    void start_device();
    void stop_device();

    VhostNetOptions opts_;
    vhost_kernel::Tap tap_;
    std::vector<std::unique_ptr<vhost_kernel::VhostDevice>> vhost_;  // one per queue pair
    virtio::Features vhost_offered_;                                 // what vhost-net offers
    virtio::Features device_features_;
    virtio::Features features_;
    uint8_t status_ = 0;
    DmaMemory* mem_ = nullptr;
    std::vector<QueueAreas> queues_;
    QueueEventfds fds_;
    bool started_ = false;
    uint64_t iotlb_updates_ = 0;                      // written at start (every region, on every device)
    std::unique_ptr<vhost_kernel::IotlbLoop> iotlb_;  // while started with ACCESS_PLATFORM
    vhost_kernel::IotlbCounters iotlb_before_{};      // of loops that ended
};

}  // namespace vireo
