// The vhost-user transport: vireo is the front end (the "driver" side) and a
// vhost-user back end (DPDK's vhost, OVS-DPDK, QEMU's helpers) is the device.
//
// Mapping of the virtio control path onto the protocol:
//   device features     GET_FEATURES (minus VHOST_USER_F_PROTOCOL_FEATURES)
//   set features        SET_FEATURES (plus that bit when protocol features are on)
//   DRIVER_OK           SET_MEM_TABLE, IOTLB updates (ACCESS_PLATFORM), then per
//                       queue SET_VRING_NUM/BASE/ADDR/KICK/CALL and SET_VRING_ENABLE
//   reset               GET_VRING_BASE on each started queue (the back end stops it),
//                       and IOTLB invalidations for every region (ACCESS_PLATFORM)
//   config              emulated: MAC (given or random, locally administered), link
//                       status (up while connected), max pairs (GET_QUEUE_NUM), MTU
// Addresses: with ACCESS_PLATFORM negotiated, ring and buffer addresses are IOVAs
// (= VA) and we answer for the IOMMU with IOTLB updates; without it, rings are
// given as our VAs and buffers as the guest-physical addresses of the memory table.
#pragma once

#include <array>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vhost_user_conn.hpp"
#include "vireo/iova/dma_memory.hpp"
#include "vireo/pmd/transport.hpp"

namespace vireo {

struct VhostUserOptions {
    std::string path;
    bool server = false;  // we listen, the back end connects (reconnect-capable)
    int timeout_ms = 5000;
    std::array<uint8_t, 6> mac{};
    bool mac_given = false;
    uint16_t mtu = 1500;
};

class VhostUserTransport final : public Transport {
public:
    explicit VhostUserTransport(const VhostUserOptions& opts);
    ~VhostUserTransport() override;

    std::string describe() const override { return "vhost-user:" + opts_.path; }
    uint64_t device_features() override { return device_features_; }
    void set_features(uint64_t features) override;
    void set_status(uint8_t status) override;
    uint8_t status() override { return status_; }
    void reset() override;
    uint16_t max_queue_pairs() override { return max_pairs_; }
    uint16_t max_queue_size(uint16_t) override { return 0; }
    void setup_queue(const QueueAreas& q) override;
    Doorbell doorbell(uint16_t index) override;
    NetConfig net_config() override;
    IommuKind iommu() const override { return IommuKind::VhostIotlb; }
    bool connected() override;
    bool control_queue_device() const override { return false; }
    void attach_memory(DmaMemory& mem) override { mem_ = &mem; }
    std::string access_platform_hint() const override {
        return "start the back end with IOMMU support (DPDK: iommu-support=1 on the vhost vdev)";
    }

    // Server mode: waits for the back end to come (back); renegotiation is the port's job.
    void reconnect();

private:
    void handshake();
    void start_device();
    void send_mem_table();
    void send_iotlb_updates();
    void backend_channel_loop();
    void stop_backend_channel();
    void close_connection();

    DmaMemory* mem_ = nullptr;  // set by attach_memory() before the device starts
    VhostUserOptions opts_;
    int listen_fd_ = -1;
    vhost::Connection conn_;
    std::mutex conn_lock_;  // the back-end channel thread answers IOTLB misses on the same connection
    uint64_t device_features_ = 0;
    uint64_t protocol_features_ = 0;
    uint64_t features_ = 0;
    bool protocol_ = false;
    uint16_t max_pairs_ = 1;
    uint8_t status_ = 0;
    std::vector<QueueAreas> queues_;
    std::vector<int> kick_fds_, call_fds_, err_fds_;
    bool started_ = false;
    int backend_fd_ = -1;  // our end of the back-end request channel
    std::thread backend_thread_;
    std::atomic<bool> backend_stop_{false};
};

}  // namespace vireo
