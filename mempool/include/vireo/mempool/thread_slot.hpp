// vireo: a small index per thread, for per-thread caches (DPDK's lcore id).
//
// Assigned on a thread's first use, released when the thread exits and then
// reused; at most kMaxThreadSlots threads hold one at a time. A thread beyond
// that gets kNoThreadSlot and simply goes without caches.
#pragma once

#include <cstdint>

namespace vireo {

inline constexpr uint32_t kMaxThreadSlots = 128;
inline constexpr uint32_t kNoThreadSlot = kMaxThreadSlots;

namespace detail {
// __thread: no TLS wrapper call on the hot path (plain initial-exec access).
extern __thread uint32_t t_thread_slot_plus_one;
uint32_t assign_thread_slot() noexcept;
}  // namespace detail

inline uint32_t thread_slot() noexcept {
    uint32_t s = detail::t_thread_slot_plus_one;
    return s != 0 ? s - 1 : detail::assign_thread_slot();
}

}  // namespace vireo
