// The virtio-net control virtqueue (virtio 1.2 section 5.1.6.5): one command
// at a time, {class, command} + data + a device-written ack, sent and waited
// for on the control path, when the transport has a device behind the
// control queue (NetConfig::control_queue_processed): queue pairs, RSS,
// filters, announcements.
#pragma once

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "datapath/queue_pair.hpp"
#include "vireo/base/error.hpp"
#include "vireo/iova/dma_memory.hpp"
#include "vireo/pmd/transport.hpp"
#include "vireo/pmd/virtio_spec.hpp"
#include "vireo/pmd/vq_common.hpp"
#include "vq/vq_areas.hpp"

namespace vireo {

template <class Q>
class NetControlQueue final : public detail::ControlQueueBase {
public:
    static constexpr uint16_t kSize = 64;
    // One buffer: {class, command} at 0, data at 8, the ack after the data
    // room (RSS_CONFIG with a 512-entry table and a 255-byte key fits).
    static constexpr uint16_t kDataMax = 1536;
    static constexpr uint16_t kAckAt = 8 + kDataMax;

    NetControlQueue(DmaMemory& mem, uint16_t index, bool event_idx, bool notification_data)
        : q_(mem, {kSize, index, event_idx, notification_data}), buf_(mem.allocate(kAckAt + 64, 64)), index_(index) {}

    void setup(Transport& t, const DmaMemory& mem) override {
        t.setup_queue(areas_of(q_, mem, index_));
        bell_ = t.doorbell(index_);
    }
    void reset() override {
        q_.reset([](void*) {});
    }

    // Sends one command and waits for the device's ack. Throws when the device
    // does not answer, answers with an error, or breaks the ring's rules.
    void command(uint8_t cls, uint8_t cmd, const void* data, uint16_t len, const std::string& what) override {
        constexpr int timeout_ms = 2000;
        if (len > kDataMax)
            throw Error(what + ": " + std::to_string(len) + " bytes of command data, over the control queue's " +
                        std::to_string(kDataMax));
        uint8_t* b = buf_.va;
        b[0] = cls;
        b[1] = cmd;
        if (len != 0) std::memcpy(b + 8, data, len);  // ANNOUNCE_ACK has no data (and data may be null)
        b[kAckAt] = 0xff;                             // the device overwrites it with its ack
        // A command without data (ANNOUNCE_ACK) has no data descriptor: a
        // zero-length one is invalid (QEMU marks the device broken, 2.7.4).
        const VqSeg with_data[3] = {{buf_.iova, 2, false}, {buf_.iova + 8, len, false}, {buf_.iova + kAckAt, 1, true}};
        const VqSeg without_data[2] = {{buf_.iova, 2, false}, {buf_.iova + kAckAt, 1, true}};
        if (!(len != 0 ? q_.add(with_data, 3, this) : q_.add(without_data, 2, this)))
            throw Error("control queue full while sending " + what);
        q_.publish();
        if (q_.kick_needed()) bell_.ring(q_.notification_value());
        const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        VqUsed u;
        while (q_.reap(&u, 1) == 0) {
            if (q_.needs_reset())
                throw Error("the device broke the control queue's rules (" + std::string(to_string(q_.fault())) +
                            ") while answering " + what);
            if (std::chrono::steady_clock::now() > end) {
                reset();
                throw Error("the device did not answer " + what + " on the control queue within " +
                            std::to_string(timeout_ms) + " ms");
            }
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
        const uint8_t ack = std::atomic_ref<uint8_t>(b[kAckAt]).load(std::memory_order_acquire);
        if (u.len < 1 || ack != virtio::kNetCtrlOk)
            throw Error("the device refused " + what + " (ack " + std::to_string(ack) + ")");
    }

private:
    Q q_;
    DmaChunk buf_;
    uint16_t index_;
    Doorbell bell_;
};

}  // namespace vireo
