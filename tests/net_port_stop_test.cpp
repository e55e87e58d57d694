// A clean stop loses nothing: NetPort::stop() lets the device complete what
// tx_burst() accepted before it resets the device (a reset discards whatever
// is still in a Tx ring), within the device string's stop_timeout_ms, and
// counts what the device never completed. Played with the spec-written test
// device, split and packed, direct and through the DMA window (issue 27: the
// VM suite's reflector lost its last 28 frames this way).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "support/port_rig.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

using namespace virtio::feature;

constexpr uint16_t kFrames = 40;

struct Layout {
    bool packed, window;
};

std::string name_of(const testing::TestParamInfo<Layout>& i) {
    return std::string(i.param.packed ? "Packed" : "Split") + (i.param.window ? "Window" : "Direct");
}

class CleanStop : public testing::TestWithParam<Layout> {
protected:
    std::unique_ptr<Rig> rig(const std::string& keys) {
        const Layout l = GetParam();
        const virtio::Features offered =
            virtio::bit(kVersion1) | (l.packed ? virtio::bit(kRingPacked) : virtio::Features{});
        auto r = std::make_unique<Rig>(offered, "vhost-user:/fake,ring=64" + std::string(l.packed ? ",packed=1" : "") +
                                                    (l.window ? ",dma=window" : "") + keys);
        r->port->start();
        EXPECT_EQ(virtio::has(r->t->accepted, kRingPacked), l.packed);
        EXPECT_EQ(r->port->window() != nullptr, l.window);
        return r;
    }
    // kFrames numbered 60-byte frames, all accepted by tx_burst.
    static void send_numbered(Rig& r) {
        Packet* p[kFrames];
        for (uint16_t i = 0; i < kFrames; i++) {
            p[i] = r.pool.alloc();
            ASSERT_NE(p[i], nullptr);
            uint8_t* d = p[i]->append(60);
            for (int k = 0; k < 60; k++) d[k] = static_cast<uint8_t>(i + k);
        }
        ASSERT_EQ(r.port->tx_burst(0, p, kFrames), kFrames);
    }
    // The frame numbers a device reads from the Tx ring, in order, taking
    // chains (and completing them) only until the port resets it.
    template <class Device>
    static std::vector<int> device_takes(Rig& r, int resets_before) {
        const IovaMap& map = r.port->window() != nullptr ? r.port->window()->map() : r.mem.map();
        const QueueAreas& a = r.t->areas.at(1);
        Device dev(map, a.size, a.desc_iova, a.driver_iova, a.device_iova, false);
        std::vector<int> seen;
        while (seen.size() < kFrames && r.t->resets.load() == resets_before) {
            std::deque<DevBuffer> got;
            if (dev.take(4, got) == 0) continue;
            for (const DevBuffer& b : got) {
                const DevSeg& s = b.segs.back();
                seen.push_back(s.len >= 60 ? s.va[s.len - 60] : -1);  // the frame's first byte: its number
            }
            dev.complete({got.begin(), got.end()});
        }
        return seen;
    }
};

// The device works only once the stop has begun (the gate closed: the port is
// no longer ready), and slowly: the stop must wait for it, then reset.
TEST_P(CleanStop, EveryAcceptedFrameReachesTheDeviceBeforeTheReset) {
    auto r = rig(",stop_timeout_ms=60000");
    send_numbered(*r);
    const int resets = r->t->resets.load();
    std::vector<int> seen;
    std::thread device([&] {
        while (r->port->ready()) std::this_thread::yield();  // the event: stop() closed the gate
        // A slow device: a stop that does not wait has reset it long before this.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        seen = GetParam().packed ? device_takes<PackedDevice>(*r, resets) : device_takes<SplitDevice>(*r, resets);
    });
    const StopReport rep = r->port->stop();
    device.join();
    ASSERT_EQ(seen.size(), size_t{kFrames}) << "frames the device got before the reset";
    for (int i = 0; i < kFrames; i++) EXPECT_EQ(seen[i], i) << "frame " << i;
    EXPECT_EQ(rep.tx_in_flight, kFrames);
    EXPECT_EQ(rep.tx_undelivered, 0u);
    EXPECT_FALSE(rep.timed_out);
    EXPECT_EQ(r->port->tx_stats(0).undelivered, 0u);
    EXPECT_EQ(r->port->tx_stats(0).packets, kFrames);
    EXPECT_EQ(r->pool.in_use(), 0u);
}

// A device that never completes: the stop gives up at its bound, and says
// how many frames the reset discarded; every buffer still comes back.
TEST_P(CleanStop, WhatTheDeviceNeverSentIsCountedAtTheBound) {
    auto r = rig(",stop_timeout_ms=50");
    send_numbered(*r);
    const StopReport rep = r->port->stop();
    EXPECT_EQ(rep.tx_in_flight, kFrames);
    EXPECT_EQ(rep.tx_undelivered, kFrames);
    EXPECT_TRUE(rep.timed_out);
    EXPECT_GE(rep.waited_ms, 50.0);
    EXPECT_EQ(r->port->tx_stats(0).undelivered, kFrames);
    EXPECT_EQ(r->pool.in_use(), 0u);
    // Started again and stopped with nothing in flight: nothing more is counted, nothing waited for.
    r->port->start();
    const StopReport again = r->port->stop();
    EXPECT_EQ(again.tx_in_flight, 0u);
    EXPECT_EQ(again.tx_undelivered, 0u);
    EXPECT_FALSE(again.timed_out);
    EXPECT_EQ(r->port->tx_stats(0).undelivered, kFrames);
}

// stop_timeout_ms=0: the old behaviour on request, a reset at once, counted.
TEST_P(CleanStop, ZeroBoundResetsAtOnceAndCounts) {
    auto r = rig(",stop_timeout_ms=0");
    send_numbered(*r);
    const StopReport rep = r->port->stop();
    EXPECT_EQ(rep.tx_in_flight, kFrames);
    EXPECT_EQ(rep.tx_undelivered, kFrames);
    EXPECT_TRUE(rep.timed_out);
    EXPECT_EQ(rep.waited_ms, 0.0) << "a zero bound does not wait";
    EXPECT_EQ(r->pool.in_use(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Layouts, CleanStop,
                         testing::Values(Layout{false, false}, Layout{true, false}, Layout{false, true},
                                         Layout{true, true}),
                         name_of);

}  // namespace
}  // namespace vireo::test
