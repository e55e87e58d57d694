// Notifications: the driver kicks a device that sleeps until kicked exactly
// when that device is asleep (never more), and never misses one (a missed kick
// would stall the run; a watchdog turns a stall into a failure).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "support/vq_kinds.hpp"

namespace vireo::test {
namespace {

template <class K>
void sleeping_device_single_thread(bool event_idx) {
    SCOPED_TRACE(std::string(K::name()) + (event_idx ? " event_idx" : ""));
    DmaMemory mem(pa_memory(16 << 20));
    PacketPool pool(mem, {.count = 1024, .data_room = 256, .cache_size = 0});
    typename K::Queue q(mem, {.size = 256, .event_idx = event_idx});
    auto dev = make_device<K>(mem, q, event_idx);
    std::mt19937 rng(5);
    bool awake = dev.arm_and_recheck();  // starts asleep, notifications armed
    uint64_t kicks = 0, needless = 0, sleeps = awake ? 0 : 1, done = 0, idle = 0;
    constexpr uint64_t kTotal = 200000;
    std::deque<DevBuffer> held;
    VqUsed used[64];
    Packet* pk[32];
    while (done < kTotal) {
        uint32_t n = 1 + rng() % 32;
        if (pool.alloc_bulk(pk, n)) {
            uint32_t i = 0;
            for (; i < n && q.add1(pk[i]->buf_iova, 64, false, pk[i]); i++) {
            }
            PacketPool::free_bulk(pk + i, n - i);
            q.publish();
            if (q.kick_needed()) {
                kicks++;
                if (awake) needless++;
                awake = true;
            }
        }
        if (awake) {
            dev.set_notify(DevNotify::Never);  // busy: no kicks please
            dev.take(rng() % 3 == 0 ? 1 << 16 : 1 + rng() % 48, held);
            std::vector<DevBuffer> c(held.begin(), held.end());
            held.clear();
            dev.complete(c);
            if (!dev.arm_and_recheck()) {  // re-armed and nothing left: sleep
                awake = false;
                sleeps++;
            } else {
                dev.set_notify(DevNotify::Never);  // work remains: stay awake, notifications off
            }
        }
        uint16_t r = q.reap(used, 64);
        for (uint16_t i = 0; i < r; i++) PacketPool::free(static_cast<Packet*>(used[i].cookie));
        done += r;
        idle = r ? 0 : idle + 1;
        ASSERT_LT(idle, 10000u) << "stalled: a kick was missed";
    }
    EXPECT_EQ(needless, 0u) << "kicked a device that was awake and had said so";
    EXPECT_GT(kicks, 0u);
    EXPECT_LE(kicks, sleeps) << "more kicks than the device slept";
    EXPECT_EQ(q.stats().kicks, kicks);
    q.reset([](void* c) { PacketPool::free(static_cast<Packet*>(c)); });
    EXPECT_EQ(pool.in_use(), 0u);
}

TEST(VirtqueueNotify, SleepingDeviceKickedExactlyWhenAsleep) {
    for (bool eidx : {false, true}) {
        sleeping_device_single_thread<VqKind<false, false>>(eidx);
        sleeping_device_single_thread<VqKind<false, true>>(eidx);
        sleeping_device_single_thread<VqKind<true, false>>(eidx);
        sleeping_device_single_thread<VqKind<true, true>>(eidx);
    }
}

// Driver and device on two threads. The device sleeps on a doorbell until
// kicked; the lost-kick race (publish vs. re-arm) is real here. A missed kick
// leaves both sides waiting: the watchdog fails the test.
template <class K>
void sleeping_device_two_threads(bool event_idx) {
    SCOPED_TRACE(std::string(K::name()) + (event_idx ? " event_idx" : ""));
    DmaMemory mem(pa_memory(16 << 20));
    PacketPool pool(mem, {.count = 1024, .data_room = 256, .cache_size = 0});
    typename K::Queue q(mem, {.size = 128, .event_idx = event_idx});
    auto dev = make_device<K>(mem, q, event_idx);
    constexpr uint64_t kTotal = 200000;
    std::atomic<uint64_t> doorbell{0}, completed{0};
    std::atomic<bool> stop{false};
    dev.arm_and_recheck();
    std::thread device([&] {
        uint64_t seen = 0;
        std::deque<DevBuffer> held;
        while (!stop.load(std::memory_order_relaxed)) {
            while (doorbell.load(std::memory_order_acquire) == seen && !stop.load(std::memory_order_relaxed))
                std::this_thread::yield();  // asleep until kicked
            seen = doorbell.load(std::memory_order_acquire);
            for (;;) {  // awake: work until nothing is left, then re-arm and re-check
                dev.set_notify(DevNotify::Never);
                while (dev.take(64, held) != 0) {
                    std::vector<DevBuffer> c(held.begin(), held.end());
                    held.clear();
                    dev.complete(c);
                }
                if (!dev.arm_and_recheck()) break;
            }
        }
    });
    VqUsed used[64];
    uint64_t posted = 0, done = 0, kicks = 0;
    auto last = std::chrono::steady_clock::now();
    while (done < kTotal) {
        Packet* p = posted < kTotal ? pool.alloc() : nullptr;
        if (p != nullptr) {
            if (q.add1(p->buf_iova, 64, false, p)) {
                posted++;
                q.publish();
                if (q.kick_needed()) {
                    kicks++;
                    doorbell.fetch_add(1, std::memory_order_release);
                }
            } else {
                PacketPool::free(p);
            }
        }
        uint16_t r = q.reap(used, 64);
        for (uint16_t i = 0; i < r; i++) PacketPool::free(static_cast<Packet*>(used[i].cookie));
        done += r;
        auto now = std::chrono::steady_clock::now();
        if (r != 0) last = now;
        if (now - last > std::chrono::seconds(20)) break;
    }
    stop = true;
    doorbell.fetch_add(1);
    device.join();
    ASSERT_EQ(done, kTotal) << "stalled after " << done << " completions: a kick was lost";
    EXPECT_FALSE(dev.bad());
    // How many kicks were needed depends on scheduling (a starved device
    // thread sleeps through every packet); suppression itself is checked
    // deterministically by the single-thread test above.
    ::testing::Test::RecordProperty("kicks", static_cast<int>(kicks));
    q.reset([](void* c) { PacketPool::free(static_cast<Packet*>(c)); });
    EXPECT_EQ(pool.in_use(), 0u);
}

TEST(VirtqueueNotify, NoLostKickAcrossThreadsSplit) {
    sleeping_device_two_threads<VqKind<false, false>>(false);
    sleeping_device_two_threads<VqKind<false, true>>(true);
}
TEST(VirtqueueNotify, NoLostKickAcrossThreadsPacked) {
    sleeping_device_two_threads<VqKind<true, false>>(false);
    sleeping_device_two_threads<VqKind<true, true>>(true);
}

}  // namespace
}  // namespace vireo::test
