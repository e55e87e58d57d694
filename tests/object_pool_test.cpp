// ObjectPool: exhaustion, in-use accounting, per-thread caches under threads.
#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "vireo/base/error.hpp"
#include "vireo/mempool/object_pool.hpp"

namespace vireo {
namespace {

DmaMemoryOptions va_memory() {
    DmaMemoryOptions o;
    o.mode = IovaMode::VA;
    o.region_size = 16 << 20;
    o.region.backing = DmaBacking::Memfd4K;
    return o;
}

TEST(ObjectPool, ExhaustionFailsCleanlyAndInUseReturnsToZero) {
    DmaMemory mem(va_memory());
    for (uint32_t cache : {0u, 32u}) {
        ObjectPool pool(mem, {.count = 100, .object_size = 200, .align = 64, .cache_size = cache});
        EXPECT_EQ(pool.in_use(), 0u);
        std::vector<void*> all(100);
        ASSERT_TRUE(pool.get_bulk(all.data(), 64));
        ASSERT_TRUE(pool.get_bulk(all.data() + 64, 36));
        EXPECT_EQ(pool.in_use(), 100u);
        void* extra[4];
        EXPECT_FALSE(pool.get_bulk(extra, 4));
        EXPECT_EQ(pool.get(), nullptr);
        std::set<void*> distinct(all.begin(), all.end());
        EXPECT_EQ(distinct.size(), 100u);
        for (void* p : all) EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
        pool.put_bulk(all.data(), 50);
        EXPECT_EQ(pool.in_use(), 50u);
        for (int i = 50; i < 100; i++) pool.put(all[i]);
        EXPECT_EQ(pool.in_use(), 0u);
        pool.flush_thread_cache();
        EXPECT_EQ(pool.in_use(), 0u);
        EXPECT_EQ(pool.available(), 100u);
    }
}

TEST(ObjectPool, InitSeesEveryObjectWithItsIova) {
    DmaMemory mem(va_memory());
    std::vector<uint32_t> seen;
    ObjectPool pool(mem, {.count = 33, .object_size = 100, .align = 128, .cache_size = 0},
                    [&](void* obj, Iova iova, uint32_t i) {
                        EXPECT_EQ(iova, mem.map().iova(obj));
                        seen.push_back(i);
                    });
    ASSERT_EQ(seen.size(), 33u);
    for (uint32_t i = 0; i < 33; i++) EXPECT_EQ(seen[i], i);
}

TEST(ObjectPool, BadInputGivesOneClearError) {
    DmaMemory mem(va_memory());
    EXPECT_THROW(ObjectPool(mem, {.count = 0, .object_size = 64}), Error);
    EXPECT_THROW(ObjectPool(mem, {.count = 10, .object_size = 0}), Error);
    EXPECT_THROW(ObjectPool(mem, {.count = 10, .object_size = 64, .align = 48}), Error);
    EXPECT_THROW(ObjectPool(mem, {.count = 10, .object_size = 64, .align = 64, .cache_size = 100000}), Error);
    EXPECT_THROW(ObjectPool(mem, {.count = 2'000'000'000, .object_size = 64}), Error);
    // More objects than the memory can hold: the DmaMemory error, not a crash.
    EXPECT_THROW(ObjectPool(mem, {.count = 1'000'000, .object_size = 4096}), Error);
}

// Two threads exchange objects through caches and the shared ring; at the end
// every object is back and none was handed out twice at once.
TEST(ObjectPool, ThreadsWithCachesNeverShareAnObject) {
    DmaMemory mem(va_memory());
    constexpr uint32_t kCount = 4096;
    ObjectPool pool(mem, {.count = kCount, .object_size = 64, .align = 64, .cache_size = 64});
    std::atomic<bool> corrupt{false};
    auto worker = [&](uint64_t tag) {
        void* objs[48];
        for (int it = 0; it < 200000; it++) {
            uint32_t n = 1 + it % 48;
            if (!pool.get_bulk(objs, n)) continue;
            for (uint32_t i = 0; i < n; i++) *static_cast<uint64_t*>(objs[i]) = tag;
            for (uint32_t i = 0; i < n; i++)
                if (*static_cast<uint64_t*>(objs[i]) != tag) corrupt = true;  // another thread holds it too
            pool.put_bulk(objs, n);
        }
        pool.flush_thread_cache();
    };
    std::thread a(worker, 0xaaaa), b(worker, 0xbbbb);
    a.join();
    b.join();
    EXPECT_FALSE(corrupt.load());
    EXPECT_EQ(pool.in_use(), 0u);
    // Both threads flushed their caches: the shared ring holds every object again.
    std::vector<void*> all(kCount);
    EXPECT_TRUE(pool.get_bulk(all.data(), kCount));
    pool.put_bulk(all.data(), kCount);
    EXPECT_EQ(pool.in_use(), 0u);
}

}  // namespace
}  // namespace vireo
