// The device is untrusted: every malicious write of the issue, for split and
// packed, with and without IN_ORDER. Each case asserts: no crash (ASan runs
// this suite too), the valid completions before the bad entry are delivered,
// the fault is counted and named, the queue stops, and reset() hands back
// every other buffer exactly once: no leak, no double free.
#include <gtest/gtest.h>

#include <map>

#include "support/vq_kinds.hpp"

namespace vireo::test {
namespace {

constexpr uint16_t kSize = 16;
constexpr uint32_t kRoom = 100;  // device-writable bytes per buffer

template <class K>
struct Bench {
    DmaMemory mem{pa_memory(8 << 20)};
    PacketPool pool{mem, {.count = 64, .data_room = 256, .cache_size = 0}};
    typename K::Queue q{mem, {.size = kSize}};
    typename K::Device dev = make_device<K>(mem, q, false);
    std::map<void*, int> returned;  // cookie -> times handed back
    std::vector<Packet*> posted;
    std::deque<DevBuffer> taken;

    // Posts n Rx buffers (or, with read_only, Tx buffers); with two_desc,
    // each as a 2-descriptor chain.
    void post(int n, bool two_desc = false, bool read_only = false) {
        for (int i = 0; i < n; i++) {
            Packet* p = pool.alloc();
            VqSeg s[2] = {{p->buf_iova, 40, !read_only}, {p->buf_iova + 40, kRoom - 40, !read_only}};
            bool ok = two_desc ? q.add(s, 2, p) : q.add1(p->buf_iova, kRoom, !read_only, p);
            ASSERT_TRUE(ok);
            posted.push_back(p);
        }
        q.publish();
        dev.take(1 << 16, taken);
    }
    // The device completes the first n taken buffers properly.
    void complete_ok(size_t n) {
        std::vector<DevBuffer> c(taken.begin(), taken.begin() + static_cast<long>(n));
        taken.erase(taken.begin(), taken.begin() + static_cast<long>(n));
        for (auto& b : c) b.written = 10;
        dev.complete(c);
    }
    uint16_t reap_all() {
        VqUsed u[64];
        uint16_t n = q.reap(u, 64);
        for (uint16_t i = 0; i < n; i++) {
            EXPECT_LE(u[i].len, kRoom);
            returned[u[i].cookie]++;
        }
        return n;
    }
    // After the fault: stopped, counted, everything back exactly once.
    void expect_fault_then_clean(VqFault want) {
        EXPECT_EQ(q.fault(), want) << "got: " << to_string(q.fault());
        EXPECT_TRUE(q.needs_reset());
        EXPECT_EQ(q.stats().faults, 1u);
        EXPECT_EQ(reap_all(), 0) << "a stopped queue must hand out nothing";
        q.reset([&](void* c) { returned[c]++; });
        EXPECT_FALSE(q.needs_reset());
        for (Packet* p : posted) {
            EXPECT_EQ(returned[p], 1) << "buffer returned " << returned[p] << " times";
            PacketPool::free(p);
        }
        EXPECT_EQ(pool.in_use(), 0u);
        EXPECT_EQ(q.free_descs(), kSize);
    }
};

template <class T>
class Untrusted : public ::testing::Test {
protected:
    void SetUp() override {
        if (!T::runs_here()) GTEST_SKIP() << "this CPU lacks the instruction set of " << T::name() << "'s kernels";
    }
};
using Kinds = ::testing::Types<VqKind<false, false>, VqKind<false, true>, VqKind<true, false>, VqKind<true, true>,
                               VqKind<true, false, Isa::Avx512>, VqKind<true, true, Isa::Avx512>>;
TYPED_TEST_SUITE(Untrusted, Kinds);

// Writes a used entry for buffer `id` with length len at the device's next
// used position (split: used ring slot + idx bump; packed: used descriptor).
template <class K>
void write_used(Bench<K>& b, uint32_t id, uint32_t len) {
    if constexpr (K::packed) {
        const uint16_t w = b.dev.used_wrap() ? (1 << 7 | 1 << 15) : 0;
        b.dev.write_used_raw(static_cast<uint16_t>(id), len, w);
    } else {
        b.dev.write_used_raw(b.dev.used_idx(), id, len);
        b.dev.set_used_idx_raw(static_cast<uint16_t>(b.dev.used_idx() + 1));
    }
}

TYPED_TEST(Untrusted, UsedIdOutOfRange) {
    Bench<TypeParam> b;
    b.post(4);
    b.complete_ok(1);
    write_used(b, kSize + 3, 0);
    EXPECT_EQ(b.reap_all(), 1);
    b.expect_fault_then_clean(VqFault::UsedIdOutOfRange);
}

TYPED_TEST(Untrusted, UsedIdNotInFlight) {
    Bench<TypeParam> b;
    b.post(4, /*two_desc=*/true);  // heads at even positions; odd ids are no chain's head
    b.complete_ok(1);
    write_used(b, 5, 0);
    EXPECT_EQ(b.reap_all(), 1);
    b.expect_fault_then_clean(VqFault::UsedIdNotInFlight);
}

TYPED_TEST(Untrusted, ChainIdReused) {
    Bench<TypeParam> b;
    b.post(4);
    const uint16_t first = b.taken.front().id;
    b.complete_ok(1);
    EXPECT_EQ(b.reap_all(), 1);
    write_used(b, first, 0);  // the same buffer completed a second time
    EXPECT_EQ(b.reap_all(), 0);
    b.expect_fault_then_clean(VqFault::UsedIdNotInFlight);
}

TYPED_TEST(Untrusted, UsedLengthLargerThanPosted) {
    Bench<TypeParam> b;
    b.post(4);
    b.complete_ok(1);
    write_used(b, b.taken.front().id, kRoom + 1);
    EXPECT_EQ(b.reap_all(), 1);
    b.expect_fault_then_clean(VqFault::UsedLenTooLong);
}

// A read-only (Tx) buffer: the driver never reads through its used length,
// so whatever the device leaves there (DPDK's vhost leaves the posted length,
// or with IN_ORDER batches another buffer's) is ignored and reported as 0.
TYPED_TEST(Untrusted, ReadOnlyChainLengthIsIgnored) {
    Bench<TypeParam> b;
    b.post(4, false, /*read_only=*/true);
    std::vector<DevBuffer> two{b.taken[0], b.taken[1]};
    two[0].written = kRoom;
    two[1].written = 0xfffffff0u;  // absurd, and harmless: nothing is read through it
    b.dev.complete(two);
    b.taken.erase(b.taken.begin(), b.taken.begin() + 2);
    VqUsed u[4];
    ASSERT_EQ(b.q.reap(u, 4), 2);
    for (int i = 0; i < 2; i++) {
        EXPECT_EQ(u[i].len, 0u);
        b.returned[u[i].cookie]++;
    }
    EXPECT_EQ(b.q.fault(), VqFault::None);
    write_used(b, kSize + 2, 0);  // ids stay checked on read-only chains
    EXPECT_EQ(b.reap_all(), 0);
    b.expect_fault_then_clean(VqFault::UsedIdOutOfRange);
}

TYPED_TEST(Untrusted, UsedIndexFarAheadOrFlagsInconsistent) {
    Bench<TypeParam> b;
    b.post(4);
    if constexpr (TypeParam::packed) {
        // AVAIL = !wrap, USED = wrap: no legal state of a posted descriptor.
        const uint16_t flags = b.dev.used_wrap() ? (1 << 15) : (1 << 7);
        b.dev.write_used_raw(b.taken.front().id, 0, flags);
        EXPECT_EQ(b.reap_all(), 0);
        b.expect_fault_then_clean(VqFault::PackedFlagsInconsistent);
    } else {
        b.dev.set_used_idx_raw(static_cast<uint16_t>(kSize + 1));  // more than the ring, more than in flight
        EXPECT_EQ(b.reap_all(), 0);
        b.expect_fault_then_clean(VqFault::UsedIdxTooFarAhead);
    }
}

TYPED_TEST(Untrusted, UsedWithNothingInFlight) {
    Bench<TypeParam> b;
    b.post(2);
    b.complete_ok(2);
    EXPECT_EQ(b.reap_all(), 2);
    write_used(b, 0, 0);  // claims a completion when nothing is outstanding
    EXPECT_EQ(b.reap_all(), 0);
    b.expect_fault_then_clean(TypeParam::packed ? VqFault::UsedWithNothingInFlight : VqFault::UsedIdxTooFarAhead);
}

TYPED_TEST(Untrusted, ResetAfterFaultRestoresService) {
    Bench<TypeParam> b;
    b.post(3);
    write_used(b, kSize + 1, 0);
    EXPECT_EQ(b.reap_all(), 0);
    b.expect_fault_then_clean(VqFault::UsedIdOutOfRange);
    // A fresh device on the reset queue: traffic flows again.
    b.dev = make_device<TypeParam>(b.mem, b.q, false);
    b.posted.clear();
    b.returned.clear();
    b.taken.clear();
    b.post(5);
    b.complete_ok(5);
    EXPECT_EQ(b.reap_all(), 5);
    EXPECT_EQ(b.q.fault(), VqFault::None);
    for (Packet* p : b.posted) PacketPool::free(p);
}

}  // namespace
}  // namespace vireo::test
