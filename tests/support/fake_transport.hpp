// Test helper: a Transport with nothing behind it but memory, for driving a
// NetPort against the device model (tests/support/device_model.hpp): it
// records the accepted features and where each queue lives.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "vireo/pmd/transport.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {

class FakeTransport : public Transport {
public:
    explicit FakeTransport(virtio::Features offered) : offered_(offered) {}
    std::string describe() const override { return "fake"; }
    virtio::Features device_features() override { return offered_; }
    void set_offered(virtio::Features f) { offered_ = f; }  // a back end that comes back with another offer
    void set_features(const virtio::Features& f) override { accepted = f; }
    void set_status(uint8_t s) override { status_ = refuse_features ? (s & ~virtio::status::kFeaturesOk) : s; }
    uint8_t status() override { return status_; }
    // A device stops touching the rings when reset (virtio 1.2 2.1.2: the
    // driver waits until the device reads back 0): reset() waits for a
    // device model's access in progress, which holds device_access.
    void reset() override {
        std::lock_guard<std::mutex> g(device_access);
        status_ = 0;
        resets++;
    }
    uint16_t max_queue_size(uint16_t) override { return max_queue; }
    // Per-queue reset: recorded, with on_queue_reset called inside it (the
    // port's other queues must keep working meanwhile).
    std::string queue_reset_unavailable() const override { return queue_reset ? "" : "fake: no queue_reset field"; }
    void reset_queue(uint16_t index) override {
        {
            std::lock_guard<std::mutex> g(lock);
            queue_resets.push_back(index);
        }
        if (on_queue_reset) on_queue_reset(index);
    }
    void setup_queue(const QueueAreas& q) override {
        std::lock_guard<std::mutex> g(lock);
        if (q.index >= areas.size()) areas.resize(q.index + 1), resets_at_setup.resize(q.index + 1);
        areas[q.index] = q;
        resets_at_setup[q.index] = resets;
        setups++;
    }
    // Where queue `index` lives; and, read together, the setups so far and
    // how many resets had happened when it was set up (while resets is still
    // that, the ring is live).
    bool area(uint16_t index, QueueAreas* out, int* setups_now = nullptr, int* resets_then = nullptr) {
        std::lock_guard<std::mutex> g(lock);
        if (index >= areas.size() || areas[index].size == 0) return false;
        *out = areas[index];
        if (setups_now != nullptr) *setups_now = setups;
        if (resets_then != nullptr) *resets_then = resets_at_setup[index];
        return true;
    }
    Doorbell doorbell(uint16_t) override { return Doorbell::eventfd(efd_); }
    NetConfig net_config() override {
        NetConfig c{{2, 0, 0, 0, 0, 9}, net_status, max_pairs, 1500, speed_mbps, duplex, control_queue_processed};
        c.rss_max_key_size = rss_max_key_size;
        c.rss_max_indirection_table_length = rss_max_table;
        c.supported_hash_types = supported_hash_types;
        return c;
    }
    bool poll_config_change() override { return config_changed.exchange(false); }
    DmaTraits dma_traits() const override {
        return {IommuKind::VhostIotlb, ~uint64_t{0}, PaSource::Linear, "fake: offer bit 33"};
    }
    void attach_memory(DmaMemory&, const DmaPlan&) override { attached++; }
    ~FakeTransport() override { ::close(efd_); }

    virtio::Features accepted;
    int attached = 0;
    bool refuse_features = false;
    uint16_t max_pairs = 1;
    uint16_t max_queue = 0;  // what max_queue_size() says of every queue (0: no limit)
    // What net_config() reports; config_changed makes poll_config_change() say so once.
    uint16_t net_status = 1;
    uint32_t speed_mbps = NetConfig::kSpeedUnknown;
    uint8_t duplex = NetConfig::kDuplexUnknown;
    uint8_t rss_max_key_size = 40;  // QEMU's limits (with RSS or HASH_REPORT offered)
    uint16_t rss_max_table = 128;
    uint32_t supported_hash_types = 0x3f;  // IPv4, TCPv4, UDPv4, IPv6, TCPv6, UDPv6
    bool control_queue_processed = true;
    bool queue_reset = true;  // the transport can reset one queue
    std::vector<uint16_t> queue_resets;
    std::function<void(uint16_t)> on_queue_reset;
    std::atomic<bool> config_changed{false};
    std::atomic<int> resets{0};  // reset() calls: a device model must stop touching the rings
    std::atomic<int> setups{0};  // setup_queue() calls: a device model starts over when it changes
    std::vector<QueueAreas> areas;
    std::vector<int> resets_at_setup;
    std::mutex lock;
    std::mutex device_access;  // a device model's thread holds it while it touches a ring

private:
    virtio::Features offered_;
    uint8_t status_ = 0;
    int efd_ = ::eventfd(0, EFD_NONBLOCK);
};

}  // namespace vireo::test
