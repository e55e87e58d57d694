// Ring: semantics, and concurrent runs of millions of values checked for loss
// and duplication.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "vireo/base/error.hpp"
#include "vireo/mempool/ring.hpp"

namespace vireo {
namespace {

TEST(Ring, BulkIsAllOrNothingBurstIsBestEffort) {
    Ring<uint64_t> r(8, RingSync::Single, RingSync::Single);
    uint64_t in[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, out[10] = {};
    EXPECT_EQ(r.enqueue_bulk(in, 10), 0u);
    EXPECT_EQ(r.enqueue_bulk(in, 5), 5u);
    EXPECT_EQ(r.enqueue_bulk(in + 5, 5), 0u);
    EXPECT_EQ(r.enqueue_burst(in + 5, 5), 3u);
    EXPECT_EQ(r.count(), 8u);
    EXPECT_EQ(r.free_count(), 0u);
    EXPECT_EQ(r.dequeue_bulk(out, 9), 0u);
    EXPECT_EQ(r.dequeue_burst(out, 10), 8u);
    for (uint64_t i = 0; i < 8; i++) EXPECT_EQ(out[i], i);
    EXPECT_TRUE(r.empty());
    EXPECT_EQ(r.dequeue_burst(out, 1), 0u);
}

TEST(Ring, WrapsAroundManyTimes) {
    Ring<uint32_t> r(16, RingSync::Multi, RingSync::Multi);
    uint32_t next_in = 0, next_out = 0, buf[7];
    for (int round = 0; round < 100000; round++) {
        uint32_t n = 1 + round % 7;
        for (uint32_t i = 0; i < n; i++) buf[i] = next_in + i;
        next_in += r.enqueue_burst(buf, n);
        uint32_t got = r.dequeue_burst(buf, 1 + (round * 3) % 7);
        for (uint32_t i = 0; i < got; i++) ASSERT_EQ(buf[i], next_out++);
    }
}

TEST(Ring, RejectsBadSizes) {
    EXPECT_THROW(Ring<void*>(0), Error);
    EXPECT_THROW(Ring<void*>(1), Error);
    EXPECT_THROW(Ring<void*>(1000), Error);
    EXPECT_THROW(Ring<void*>(0x80000001u), Error);
}

// producers x consumers threads move `total` distinct values through a small
// ring in bursts; every value must arrive exactly once and, per producer, in order.
void run_concurrent(RingSync ps, RingSync cs, int producers, int consumers, uint32_t total, uint32_t burst) {
    Ring<uint32_t> ring(256, ps, cs);
    std::vector<std::atomic<uint8_t>> seen(total);
    std::atomic<uint32_t> consumed{0};
    std::atomic<bool> order_ok{true};
    const uint32_t per_producer = total / producers;
    std::vector<std::thread> th;
    for (int p = 0; p < producers; p++)
        th.emplace_back([&, p] {
            uint32_t base = p * per_producer, i = 0, buf[64];
            while (i < per_producer) {
                uint32_t n = std::min(burst, per_producer - i);
                for (uint32_t k = 0; k < n; k++) buf[k] = base + i + k;
                uint32_t done = (i & 1) ? ring.enqueue_burst(buf, n) : ring.enqueue_bulk(buf, n);
                i += done;
                if (done == 0) std::this_thread::yield();
            }
        });
    for (int c = 0; c < consumers; c++)
        th.emplace_back([&] {
            std::vector<uint32_t> last(producers, ~0u);
            uint32_t buf[64];
            while (consumed.load(std::memory_order_relaxed) < per_producer * producers) {
                uint32_t n = ring.dequeue_burst(buf, burst);
                if (n == 0) {
                    std::this_thread::yield();
                    continue;
                }
                for (uint32_t k = 0; k < n; k++) {
                    uint32_t v = buf[k];
                    seen[v].fetch_add(1, std::memory_order_relaxed);
                    uint32_t p = v / per_producer;
                    if (last[p] != ~0u && v <= last[p])
                        order_ok = false;  // one consumer sees a producer's values in order
                    last[p] = v;
                }
                consumed.fetch_add(n, std::memory_order_relaxed);
            }
        });
    for (auto& t : th) t.join();
    EXPECT_TRUE(order_ok.load());
    EXPECT_TRUE(ring.empty());
    uint32_t lost = 0, dup = 0;
    for (uint32_t v = 0; v < per_producer * producers; v++) {
        lost += seen[v] == 0;
        dup += seen[v] > 1;
    }
    EXPECT_EQ(lost, 0u);
    EXPECT_EQ(dup, 0u);
}

TEST(RingConcurrent, SpScFourMillion) { run_concurrent(RingSync::Single, RingSync::Single, 1, 1, 4'000'000, 32); }
TEST(RingConcurrent, MpMcTwoByTwoFourMillion) { run_concurrent(RingSync::Multi, RingSync::Multi, 2, 2, 4'000'000, 32); }
TEST(RingConcurrent, MpScOddBursts) { run_concurrent(RingSync::Multi, RingSync::Single, 3, 1, 2'000'001, 7); }
TEST(RingConcurrent, SpMcSingleValues) { run_concurrent(RingSync::Single, RingSync::Multi, 1, 2, 1'000'000, 1); }

}  // namespace
}  // namespace vireo
