// The vhost-user transport: vireo is the front end (the "driver" side) and a
// vhost-user back end (DPDK's vhost, OVS-DPDK, QEMU's helpers) is the device.
//
// Mapping of the virtio control path onto the protocol:
//   device features     GET_FEATURES (minus VHOST_USER_F_PROTOCOL_FEATURES)
//   set features        SET_FEATURES (plus that bit when protocol features are on)
//   DRIVER_OK           SET_MEM_TABLE, IOTLB updates (ACCESS_PLATFORM), then per
//                       queue SET_VRING_CALL/ERR/NUM/BASE/ADDR/KICK, then SET_VRING_ENABLE
//   reset               SET_VRING_ENABLE 0 and GET_VRING_BASE on each started queue (the
//                       back end stops it), IOTLB invalidations (ACCESS_PLATFORM)
//   config              emulated: MAC (given or random, locally administered), link
//                       status (up while connected), max pairs (GET_QUEUE_NUM), MTU
//   connection          lost when the socket hangs up; reconnect() accepts the next back
//                       end (server=1) or connects again with back-off (client mode)
// Addresses: with ACCESS_PLATFORM negotiated, ring and buffer addresses are IOVAs
// (= VA) and we answer for the IOMMU with IOTLB updates; without it, rings are
// given as our VAs and buffers as the guest-physical addresses of the memory table.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "transport/iotlb.hpp"
#include "transport/queue_eventfds.hpp"
#include "transport/vhost_user/backend_channel.hpp"
#include "transport/vhost_user/socket.hpp"
#include "vireo/iova/dma_memory.hpp"
#include "vireo/pmd/transport.hpp"

namespace vireo {

struct VhostUserOptions {
    std::string path;
    bool server = false;          // we listen, the back end connects
    int timeout_ms = 5000;        // the first connect or accept
    int reply_timeout_ms = 5000;  // each answer of the back end
    std::array<uint8_t, 6> mac{};
    bool mac_given = false;
    uint16_t mtu = 1500;
};

class VhostUserTransport final : public Transport, private TransportConnection {
public:
    explicit VhostUserTransport(const VhostUserOptions& opts);
    // Over a connection made elsewhere (the fuzz targets, tests): no listener, no reconnect.
    VhostUserTransport(const VhostUserOptions& opts, vhost::Connection connected);
    ~VhostUserTransport() override;

    std::string describe() const override { return "vhost-user:" + opts_.path; }
    virtio::Features device_features() override { return device_features_; }
    void set_features(const virtio::Features& features) override;
    std::string queue_reset_unavailable() const override;
    void set_status(uint8_t status) override;
    uint8_t status() override { return status_; }
    void reset() override;
    uint16_t max_queue_size(uint16_t) override { return 0; }
    void setup_queue(const QueueAreas& q) override;
    Doorbell doorbell(uint16_t index) override { return fds_.doorbell(index); }
    NetConfig net_config() override;
    DmaTraits dma_traits() const override;
    void attach_memory(DmaMemory& mem, const DmaPlan&) override { mem_ = &mem; }
    TransportConnection* connection() override { return can_reconnect() ? this : nullptr; }
    // The queue's call eventfd (SET_VRING_CALL): the back end writes it when the ring asks for a notification.
    int used_notify_fd(uint16_t index) const override { return fds_.call(index); }
    std::optional<DeviceIotlbCounters> iotlb_counters() const override;

    bool connected();

private:
    // TransportConnection.
    int fd() const override { return conn_.fd(); }
    std::string down_reason() const override;
    void disconnect() override;
    bool reconnect(int stop_fd) override;
    bool can_reconnect() const { return !opts_.path.empty(); }

    void handshake();
    void start_device();
    void send_mem_table();
    void send_iotlb(uint8_t type, const iotlb::Entry& e);
    bool answer_iotlb_miss(Iova iova);
    void backend_broken(const std::string& why);

    DmaMemory* mem_ = nullptr;  // set by attach_memory() before the device starts
    VhostUserOptions opts_;
    std::unique_ptr<vhost::Listener> listener_;  // server mode
    // Held for every exchange on the front-end socket: the back-end channel's
    // thread sends IOTLB updates on it while the control path may be talking.
    mutable std::mutex conn_lock_;
    vhost::Connection conn_;
    std::string broken_;  // why the back end was disconnected by us (guarded by conn_lock_)
    virtio::Features device_features_;
    uint64_t protocol_features_ = 0;
    virtio::Features features_;
    bool protocol_ = false;
    uint16_t max_pairs_ = 1;
    uint8_t status_ = 0;
    std::vector<QueueAreas> queues_;
    QueueEventfds fds_;
    bool started_ = false;
    std::unique_ptr<vhost::BackendChannel> backend_;  // exists while the device runs with BACKEND_REQ
    // As the device's IOMMU (ACCESS_PLATFORM): read by stats readers on other threads.
    std::atomic<uint64_t> iotlb_updates_{0}, misses_answered_{0}, misses_refused_{0};
};

}  // namespace vireo
