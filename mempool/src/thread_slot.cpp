#include "vireo/mempool/thread_slot.hpp"

#include <bitset>
#include <mutex>

namespace vireo::detail {

__thread uint32_t t_thread_slot_plus_one = 0;

namespace {

std::mutex g_lock;
std::bitset<kMaxThreadSlots> g_used;

// Gives the slot back when its thread exits.
struct SlotReleaser {
    ~SlotReleaser() {
        uint32_t s = t_thread_slot_plus_one;
        if (s == 0 || s - 1 >= kMaxThreadSlots) return;
        std::lock_guard<std::mutex> g(g_lock);
        g_used.reset(s - 1);
        t_thread_slot_plus_one = 0;
    }
};
thread_local SlotReleaser t_releaser;

}  // namespace

uint32_t assign_thread_slot() noexcept {
    (void)&t_releaser;  // odr-use: constructs the releaser for this thread
    std::lock_guard<std::mutex> g(g_lock);
    for (uint32_t i = 0; i < kMaxThreadSlots; i++) {
        if (!g_used.test(i)) {
            g_used.set(i);
            t_thread_slot_plus_one = i + 1;
            return i;
        }
    }
    t_thread_slot_plus_one = kNoThreadSlot + 1;  // remembered: this thread goes without caches
    return kNoThreadSlot;
}

}  // namespace vireo::detail
