// vireo: a bounded lock-free ring of trivially copyable values, in the spirit
// of DPDK's rte_ring.
//
// Producer and consumer each have a head (claimed) and a tail (published)
// index. A producer claims slots by moving prod.head (a CAS when there are
// several producers), copies its values, waits for earlier producers to
// publish, then publishes with a release store of prod.tail. Consumers mirror
// this on cons.head / cons.tail. Indices are free-running 32-bit counters;
// slot = index & mask. Single- or multi-producer/consumer is fixed at creation
// and costs one predictable branch per burst, not per element.
#pragma once

#include <sched.h>
#include <algorithm>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <type_traits>

#include "vireo/base/cpu.hpp"
#include "vireo/base/error.hpp"

namespace vireo {

enum class RingSync : uint8_t { Single, Multi };

namespace detail {
// Copies a burst of small values. Unrolled by four like DPDK's ring copies: a
// plain loop is turned into memcpy and then "rep movs", whose start-up cost
// dominates a 32-value burst. Pointers and size_t indices: a 32-bit "idx + i"
// may wrap, which would make the compiler gather and scatter.
template <class T>
inline void copy_burst(T* dst, const T* src, size_t n) noexcept {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        dst[i] = src[i];
        dst[i + 1] = src[i + 1];
        dst[i + 2] = src[i + 2];
        dst[i + 3] = src[i + 3];
    }
    switch (n - i) {  // 0 to 3 left
    case 3: dst[i + 2] = src[i + 2]; [[fallthrough]];
    case 2: dst[i + 1] = src[i + 1]; [[fallthrough]];
    case 1: dst[i] = src[i]; break;
    default: break;
    }
}
}  // namespace detail

template <class T>
class Ring {
    static_assert(std::is_trivially_copyable_v<T>, "Ring holds trivially copyable values (pointers, indices)");

public:
    // size: a power of two from 2 to 2^31; the ring holds `size` values.
    explicit Ring(uint32_t size, RingSync producers = RingSync::Multi, RingSync consumers = RingSync::Multi)
        : mask_(size - 1), capacity_(size), sp_(producers == RingSync::Single), sc_(consumers == RingSync::Single) {
        if (size < 2 || size > (uint32_t{1} << 31) || (size & (size - 1)) != 0)
            throw Error("Ring size " + std::to_string(size) + " is not a power of two between 2 and 2^31");
        slots_ = static_cast<T*>(::operator new (sizeof(T) * size, std::align_val_t{64}));
    }
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;
    ~Ring() { ::operator delete (slots_, std::align_val_t{64}); }

    uint32_t capacity() const noexcept { return capacity_; }
    // Exact when quiescent; a snapshot otherwise.
    uint32_t count() const noexcept {
        uint32_t c = prod_.tail.load(std::memory_order_acquire) - cons_.tail.load(std::memory_order_acquire);
        return std::min(c, capacity_);
    }
    uint32_t free_count() const noexcept { return capacity_ - count(); }
    bool empty() const noexcept { return count() == 0; }

    // All n values or none: returns n or 0.
    uint32_t enqueue_bulk(const T* v, uint32_t n) noexcept { return enqueue<true>(v, n); }
    // As many as fit, up to n: returns how many.
    uint32_t enqueue_burst(const T* v, uint32_t n) noexcept { return enqueue<false>(v, n); }
    uint32_t dequeue_bulk(T* v, uint32_t n) noexcept { return dequeue<true>(v, n); }
    uint32_t dequeue_burst(T* v, uint32_t n) noexcept { return dequeue<false>(v, n); }
    bool enqueue(const T& v) noexcept { return enqueue<true>(&v, 1) == 1; }
    bool dequeue(T& v) noexcept { return dequeue<true>(&v, 1) == 1; }

private:
    struct alignas(64) HeadTail {
        std::atomic<uint32_t> head{0};
        std::atomic<uint32_t> tail{0};
    };

    // Claims up to n slots on `self` bounded by `other.tail`; `avail` computes
    // how many of the slots between are usable. Returns the claimed count.
    template <bool Fixed, class Avail>
    static uint32_t claim(HeadTail& self, const HeadTail& other, bool single, uint32_t n, uint32_t& old_head,
                          Avail avail) noexcept {
        // Acquire on our head orders the following load of the other side's
        // tail after it, so the computed room never exceeds the capacity.
        old_head = self.head.load(std::memory_order_acquire);
        for (;;) {
            uint32_t room = avail(old_head, other.tail.load(std::memory_order_acquire));
            uint32_t take = n <= room ? n : (Fixed ? 0 : room);
            if (take == 0) return 0;
            if (single) {
                self.head.store(old_head + take, std::memory_order_relaxed);
                return take;
            }
            if (self.head.compare_exchange_weak(old_head, old_head + take, std::memory_order_acquire,
                                                std::memory_order_acquire))
                return take;
        }
    }

    static void publish(HeadTail& self, bool single, uint32_t old_head, uint32_t n) noexcept {
        // Earlier claimants publish first, in claim order. The wait acquires
        // their release: our own release then carries their slot accesses
        // too, so the other side, acquiring our tail, also sees theirs done.
        // (Relaxed, as DPDK's rte_ring waits, it is a data race in C++'s
        // model: a consumer that published behind another consumer would let
        // a producer overwrite slots the first had not been ordered to have
        // read; ThreadSanitizer reported it in RingConcurrent.MpMc. On x86
        // an acquire load is the same mov.)
        if (!single)
            for (uint32_t spins = 0; self.tail.load(std::memory_order_acquire) != old_head; spins++) {
                // An earlier claimant preempted between its claim and its
                // publish holds everyone behind it until it runs again. With
                // more runnable threads than CPUs (a control thread beside the
                // pollers, or a test), spinning for a whole time slice only
                // delays it: after a short spin, hand over the CPU.
                if (spins < kSpinsBeforeYield)
                    cpu_relax();
                else
                    sched_yield();
            }
        self.tail.store(old_head + n, std::memory_order_release);
    }
    static constexpr uint32_t kSpinsBeforeYield = 1024;

    // Slot copies through local pointers, in one run unless the burst wraps.
    static void copy(T* dst, const T* src, size_t n) noexcept { detail::copy_burst(dst, src, n); }
    void copy_in(T* const slots, uint32_t idx, const T* v, uint32_t n) const noexcept {
        const size_t first = std::min<size_t>(n, capacity_ - idx);
        copy(slots + idx, v, first);
        if (first < n) copy(slots, v + first, n - first);
    }
    void copy_out(T* v, const T* const slots, uint32_t idx, uint32_t n) const noexcept {
        const size_t first = std::min<size_t>(n, capacity_ - idx);
        copy(v, slots + idx, first);
        if (first < n) copy(v + first, slots, n - first);
    }

    template <bool Fixed>
    uint32_t enqueue(const T* v, uint32_t n) noexcept {
        uint32_t head;
        const uint32_t cap = capacity_;
        n = claim<Fixed>(prod_, cons_, sp_, n, head,
                         [cap](uint32_t h, uint32_t cons_tail) { return cap + cons_tail - h; });
        if (n == 0) return 0;
        copy_in(slots_, head & mask_, v, n);
        publish(prod_, sp_, head, n);
        return n;
    }

    template <bool Fixed>
    uint32_t dequeue(T* v, uint32_t n) noexcept {
        uint32_t head;
        n = claim<Fixed>(cons_, prod_, sc_, n, head, [](uint32_t h, uint32_t prod_tail) { return prod_tail - h; });
        if (n == 0) return 0;
        copy_out(v, slots_, head & mask_, n);
        publish(cons_, sc_, head, n);
        return n;
    }

    HeadTail prod_;
    HeadTail cons_;
    T* slots_ = nullptr;
    const uint32_t mask_;
    const uint32_t capacity_;
    const bool sp_;
    const bool sc_;
};

}  // namespace vireo
