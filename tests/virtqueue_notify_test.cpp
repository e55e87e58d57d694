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

// The other direction (Rx interrupt mode): a driver that sleeps when its
// reap comes back empty. Armed, the next completion must notify it (a lost
// wake-up would leave frames in the ring while it sleeps); disarmed, the
// device must not notify. Random completion sizes, IN_ORDER batches, both
// suppression styles (flags and EVENT_IDX), many laps.
template <class K>
void sleeping_driver(bool event_idx) {
    SCOPED_TRACE(std::string(K::name()) + (event_idx ? " event_idx" : ""));
    DmaMemory mem(pa_memory(16 << 20));
    PacketPool pool(mem, {.count = 1024, .data_room = 256, .cache_size = 0});
    typename K::Queue q(mem, {.size = 256, .event_idx = event_idx});
    auto dev = make_device<K>(mem, q, event_idx);
    dev.set_notify(DevNotify::Never);  // this test is about the driver's side only
    std::mt19937 rng(11);
    bool asleep = false;
    uint64_t done = 0, sleeps = 0, refused = 0, wakeups = 0, lost = 0, needless = 0;
    std::deque<DevBuffer> held;
    VqUsed used[64];
    Packet* pk[64];
    // The device: takes what is posted, completes up to `most` of it, and
    // says whether the driver asked to be notified of that.
    auto device_step = [&](size_t most) {
        dev.take(1 << 16, held);
        const size_t k = std::min(held.size(), most);
        if (k == 0) return;
        std::vector<DevBuffer> c(held.begin(), held.begin() + static_cast<long>(k));
        held.erase(held.begin(), held.begin() + static_cast<long>(k));
        for (DevBuffer& b : c) b.written = 64;
        bool notify;
        if constexpr (K::packed) {
            const uint16_t pos = dev.next_used();
            const bool wrap = dev.used_wrap();
            dev.complete(c, K::in_order && rng() % 2 == 0);
            notify = dev.driver_wants_notification(pos, wrap);
        } else {
            const uint16_t old = dev.used_idx();
            dev.complete(c, K::in_order && rng() % 2 == 0);
            notify = dev.driver_wants_notification(old);
        }
        if (notify && !asleep) needless++;
        if (!notify && asleep) lost++;
        if (notify && asleep) {
            wakeups++;
            asleep = false;
            q.disable_used_notify();
        }
    };
    while (done < 100000 && lost == 0) {
        if (!asleep) {
            const uint16_t r = q.reap(used, 64);
            for (uint16_t i = 0; i < r; i++) PacketPool::free(static_cast<Packet*>(used[i].cookie));
            done += r;
            const uint16_t want = std::min<uint16_t>(q.free_descs(), 64);
            if (want != 0 && pool.alloc_bulk(pk, want)) {
                VqBuf b[64];
                for (uint16_t i = 0; i < want; i++) b[i] = {pk[i]->buf_iova, 256, true, pk[i]};
                q.add_burst(b, want);
                q.publish();
            }
            if (r == 0 && rng() % 2 == 0) {  // idle: try to sleep
                // The race: the device completes between the empty reap and the arming.
                if (rng() % 3 == 0) device_step(1 + rng() % 8);
                if (q.enable_used_notify()) {
                    asleep = true;
                    sleeps++;
                } else {
                    q.disable_used_notify();  // frames came meanwhile: poll on
                    refused++;
                }
            }
        }
        device_step(rng() % 4 == 0 ? 0 : 1 + rng() % 40);
    }
    EXPECT_EQ(lost, 0u) << "a completion while the driver slept did not notify it";
    EXPECT_EQ(needless, 0u) << "notified a driver that was polling";
    EXPECT_GT(sleeps, 200u);
    EXPECT_GT(refused, 0u) << "the re-check after arming never found work (the race was not exercised)";
    EXPECT_EQ(wakeups, sleeps);
    q.reset([](void* c) { PacketPool::free(static_cast<Packet*>(c)); });
    EXPECT_EQ(pool.in_use(), 0u);
}

TEST(VirtqueueNotify, SleepingDriverIsWokenByTheNextCompletionOnlySplit) {
    for (bool e : {false, true}) {
        sleeping_driver<VqKind<false, false>>(e);
        sleeping_driver<VqKind<false, true>>(e);
    }
}
TEST(VirtqueueNotify, SleepingDriverIsWokenByTheNextCompletionOnlyPacked) {
    for (bool e : {false, true}) {
        sleeping_driver<VqKind<true, false>>(e);
        sleeping_driver<VqKind<true, true>>(e);
    }
}

}  // namespace
}  // namespace vireo::test
