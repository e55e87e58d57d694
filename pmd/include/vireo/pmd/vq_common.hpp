// vireo: what the split and packed virtqueue engines share: buffer segments,
// completions, memory-ordering policies and the fault record.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "vireo/base/address.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace vireo {

// One buffer of a chain: an IOVA range the device reads or (device_writes) writes.
struct VqSeg {
    Iova iova;
    uint32_t len;
    bool device_writes;
    bool indirect = false;  // the buffer is an indirect descriptor table (2.7.5.3, 2.8.19)
};

// A one-descriptor chain for the burst calls (the common case of a PMD).
struct VqBuf {
    Iova iova;
    uint32_t len;
    bool device_writes;
    void* cookie;
};

// The used length of a chain the device only reads is neither trusted nor
// checked: the driver reads nothing through it, and real devices leave stale
// values there (DPDK's vhost keeps the posted length in packed Tx descriptors,
// and with IN_ORDER batches that length belongs to another buffer). It is
// reported as 0.
inline constexpr uint32_t kAnyLength = ~uint32_t{0};

// One completed chain: its cookie and the bytes the device wrote into it.
struct VqUsed {
    void* cookie;
    uint32_t len;
};

struct VqConfig {
    uint16_t size = 256;             // descriptors (split: power of two; packed: any, <= 32768)
    uint16_t index = 0;              // virtqueue number, for NOTIFICATION_DATA
    bool event_idx = false;          // VIRTIO_F_EVENT_IDX negotiated
    bool notification_data = false;  // VIRTIO_F_NOTIFICATION_DATA negotiated
    uint16_t indirect_max = 0;       // VIRTIO_F_INDIRECT_DESC: descriptors per indirect table (0: none)
};

// Memory ordering between driver and device (virtio 1.2 section 6,
// VIRTIO_F_ORDER_PLATFORM). Without ORDER_PLATFORM the device is another CPU
// of a coherent system: SMP-class fences (compiler barriers on x86). With it,
// the device is real hardware: the platform's DMA-class fences.
struct SmpOrdering {
    static void release() noexcept { std::atomic_thread_fence(std::memory_order_release); }
    static void acquire() noexcept { std::atomic_thread_fence(std::memory_order_acquire); }
#if defined(__x86_64__)
    // A locked add to the stack orders earlier stores before later loads on
    // write-back memory, like mfence at a fraction of its cost (what Linux's
    // smp_mb() and DPDK's rte_smp_mb() use).
    static void full() noexcept { asm volatile("lock; addl $0,-128(%%rsp)" ::: "memory", "cc"); }
#else
    static void full() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
#endif
    static constexpr std::string_view name = "smp";
};

struct PlatformOrdering {
#if defined(__x86_64__)
    static void release() noexcept { _mm_sfence(); }
    static void acquire() noexcept { _mm_lfence(); }
    static void full() noexcept { _mm_mfence(); }
#else
    static void release() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
    static void acquire() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
    static void full() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
#endif
    static constexpr std::string_view name = "platform";
};

// What a device did wrong. The first fault stops the queue: reap() returns no
// more entries until reset(), which hands every in-flight cookie back.
enum class VqFault : uint8_t {
    None,
    UsedIdOutOfRange,         // used id >= queue size
    UsedIdNotInFlight,        // used id names no chain we posted (or one already completed: reuse)
    UsedLenTooLong,           // used length larger than the chain's device-writable bytes
    UsedIdxTooFarAhead,       // split: used idx advanced by more chains than are in flight
    PackedFlagsInconsistent,  // packed: a used descriptor whose wrap bits do not match the ring's
    UsedWithNothingInFlight,  // packed: a used descriptor where no buffer is outstanding
};

std::string_view to_string(VqFault f) noexcept;

struct VqStats {
    uint64_t faults = 0;            // device misbehaviours seen (each stops the queue until reset)
    uint64_t kicks = 0;             // kick_needed() answers of true
    uint64_t kicks_suppressed = 0;  // publishes the device asked us not to signal
};

// Reads and writes of ring fields shared with the device.
template <class T>
inline T load_acquire(const T& v) noexcept {
    return std::atomic_ref<T>(const_cast<T&>(v)).load(std::memory_order_acquire);
}
template <class T>
inline void store_release(T& v, T x) noexcept {
    std::atomic_ref<T>(v).store(x, std::memory_order_release);
}
template <class T>
inline T load_relaxed(const T& v) noexcept {
    return std::atomic_ref<T>(const_cast<T&>(v)).load(std::memory_order_relaxed);
}
template <class T>
inline void store_relaxed(T& v, T x) noexcept {
    std::atomic_ref<T>(v).store(x, std::memory_order_relaxed);
}

}  // namespace vireo
