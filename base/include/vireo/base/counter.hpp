// A counter with one writer and readers on other threads: a queue's
// statistics, written by the thread that polls it and sampled by a
// statistics thread. Plain loads and stores of it would be a data race in
// C++'s memory model even though x86 never tears an aligned 64-bit store
// (ThreadSanitizer reported exactly that in vireo-fwd). The one writer's
// relaxed atomic load and store compile to the same movs, with no lock
// prefix, and make every read whole by the language's rules as well as the
// CPU's. Two writers would need fetch_add; a counter here never has them.
#pragma once

#include <atomic>
#include <cstdint>

namespace vireo {

// counter += n, by the counter's one writer.
inline void bump(uint64_t& counter, uint64_t n = 1) noexcept {
    std::atomic_ref<uint64_t> c(counter);
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// The counter's value, whole, from any thread.
inline uint64_t read_counter(const uint64_t& counter) noexcept {
    return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(counter)).load(std::memory_order_relaxed);
}

}  // namespace vireo
