// Typed addresses (vireo/base/address.hpp): an IOVA, a physical address and a
// virtual address (a pointer) do not convert into one another where they cross
// an interface, and the types cost nothing. Most of this file is compile-time:
// a static_assert that fails is the bug.
#include <gtest/gtest.h>

#include <cstdint>
#include <type_traits>
#include <utility>

#include "vireo/base/address.hpp"
#include "vireo/iova/dma_memory.hpp"
#include "vireo/iova/iova_map.hpp"
#include "vireo/iova/pagemap.hpp"
#include "vireo/mempool/object_pool.hpp"
#include "vireo/mempool/packet.hpp"
#include "vireo/pmd/packed_queue.hpp"
#include "vireo/pmd/split_queue.hpp"
#include "vireo/pmd/transport.hpp"
#include "vireo/pmd/vq_common.hpp"

namespace vireo {
namespace {

// Zero cost: one integer, in one register, nothing run to make, copy or destroy one.
static_assert(sizeof(Iova) == 8 && alignof(Iova) == 8 && sizeof(Pa) == 8);
static_assert(std::is_trivially_copyable_v<Iova> && std::is_trivially_copyable_v<Pa>);
static_assert(std::is_trivially_default_constructible_v<Iova> && std::is_standard_layout_v<Iova>);
static_assert(sizeof(Packet) == 64 && std::is_trivially_default_constructible_v<Packet>);
static_assert(sizeof(VqBuf) == 24 && sizeof(VqSeg) == 16);

// No conversion happens unless it is written out as Iova{n} or a.value.
static_assert(!std::is_convertible_v<uint64_t, Iova>);
static_assert(!std::is_convertible_v<Iova, uint64_t>);
static_assert(!std::is_assignable_v<Iova&, uint64_t>);
static_assert(std::is_constructible_v<Iova, uint64_t>);  // explicit: Iova{n}
static_assert(!std::is_convertible_v<Pa, Iova> && !std::is_constructible_v<Iova, Pa>);
static_assert(!std::is_convertible_v<Iova, Pa> && !std::is_constructible_v<Pa, Iova>);
static_assert(!std::is_constructible_v<Iova, const void*> && !std::is_constructible_v<Iova, uint8_t*>);
static_assert(!std::is_constructible_v<const void*, Iova>);

// Arithmetic: an offset moves an address, two addresses of one kind give a
// distance, and addresses of two kinds neither subtract nor compare.
template <class A, class B>
concept Addable = requires(A a, B b) {
    a + b;
};
template <class A, class B>
concept Subtractable = requires(A a, B b) {
    a - b;
};
template <class A, class B>
concept Comparable = requires(A a, B b) {
    a == b;
    a < b;
};
static_assert(Addable<Iova, uint64_t> && std::is_same_v<decltype(Iova{} + 1u), Iova>);
static_assert(!Addable<Iova, Iova> && !Addable<uint64_t, Iova> && !Addable<Iova, Pa>);
static_assert(std::is_same_v<decltype(Iova{} - Iova{}), uint64_t>);
static_assert(!Subtractable<Iova, Pa> && !Subtractable<uint64_t, Iova>);
static_assert(Comparable<Iova, Iova> && !Comparable<Iova, uint64_t> && !Comparable<Iova, Pa>);

// The interfaces: a VA, a physical address or a bare integer where an IOVA belongs does not compile.
template <class A>
concept VqBufFrom = requires(A a, void* cookie) {
    VqBuf{a, 64u, false, cookie};
};
static_assert(VqBufFrom<Iova>);
static_assert(!VqBufFrom<uint64_t> && !VqBufFrom<uint8_t*> && !VqBufFrom<const void*> && !VqBufFrom<Pa>);

template <class A>
concept VqSegFrom = requires(A a) {
    VqSeg{a, 64u, false};
};
static_assert(VqSegFrom<Iova> && !VqSegFrom<uint64_t> && !VqSegFrom<uint8_t*> && !VqSegFrom<Pa>);

template <class Q, class A>
concept Add1Takes = requires(Q& q, A a, void* cookie) {
    q.add1(a, 64u, false, cookie);
};
static_assert(Add1Takes<SplitQueue<false>, Iova> && Add1Takes<PackedQueue<true>, Iova>);
static_assert(!Add1Takes<SplitQueue<false>, uint64_t> && !Add1Takes<SplitQueue<true>, uint8_t*>);
static_assert(!Add1Takes<PackedQueue<false>, uint64_t> && !Add1Takes<PackedQueue<true>, const void*>);

template <class A>
concept MapVaTakes = requires(const IovaMap& m, A a) {
    m.va(a, 1);
};
static_assert(MapVaTakes<Iova> && !MapVaTakes<uint64_t> && !MapVaTakes<Pa> && !MapVaTakes<const void*>);
static_assert(std::is_same_v<decltype(std::declval<const IovaMap&>().iova(nullptr)), Iova>);
static_assert(std::is_same_v<decltype(std::declval<const DmaMemory&>().region_iova(0)), Iova>);
static_assert(std::is_same_v<decltype(DmaChunk{}.iova), Iova>);
static_assert(std::is_same_v<decltype(virt_to_phys(nullptr)), Pa>);  // a Pa, which no IOVA parameter takes

template <class A>
concept LinearBase = requires(IovaMap& m, A a) {
    m.add_linear(nullptr, 4096, 4096, a);
};
static_assert(LinearBase<Iova> && !LinearBase<uint64_t> && !LinearBase<Pa>);

static_assert(std::is_same_v<decltype(std::declval<const Packet&>().data_iova()), Iova>);
static_assert(std::is_same_v<decltype(Packet::buf_iova), Iova>);
static_assert(!std::is_assignable_v<decltype((std::declval<Packet&>().buf_iova)), uint8_t*>);
static_assert(std::is_same_v<decltype(QueueAreas::desc_iova), Iova> &&
              std::is_same_v<decltype(QueueAreas::driver_iova), Iova> &&
              std::is_same_v<decltype(QueueAreas::device_iova), Iova>);
static_assert(!std::is_assignable_v<decltype((std::declval<QueueAreas&>().desc_iova)), const void*>);
static_assert(std::is_invocable_v<ObjectPool::InitFn, void*, Iova, uint32_t>);
static_assert(!std::is_invocable_v<ObjectPool::InitFn, void*, uint64_t, uint32_t>);

TEST(Address, ArithmeticIsThatOfTheNumber) {
    constexpr Iova a{0x1000};
    static_assert((a + 0x20).value == 0x1020 && (a - 0x10).value == 0xff0);
    static_assert((a + 0x20) - a == 0x20);
    static_assert(a < a + 1 && a == Iova{0x1000} && a != kBadIova);
    Iova b = a;
    b += 8;
    EXPECT_EQ(b.value, 0x1008u);
    EXPECT_EQ(kBadIova.value, ~uint64_t{0});
    EXPECT_EQ(DmaChunk{}.iova, kBadIova);
    EXPECT_EQ(Iova{}.value, 0u);  // value-initialised: zero, like the integer
}

}  // namespace
}  // namespace vireo
