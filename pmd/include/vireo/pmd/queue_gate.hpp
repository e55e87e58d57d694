// vireo: taking a queue away from the data path without slowing it down.
//
// A port's control path (a reconnect, stop(), one queue pair's reset) must
// reset rings that polling threads use. Each queue direction has a gate: a
// burst marks itself busy, then reads the gate's "open" flag; the control
// path clears the flags of the gates it takes, runs
// one heavy barrier (membarrier(2): a full fence on every running thread of
// the process, so each thread either has its busy mark visible or will see
// the flag cleared) and waits until no gate is busy. The data path pays two
// plain stores and one load per burst, on lines it already owns: the
// asymmetric fence pattern of RCU implementations, not a lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace vireo::detail {

struct alignas(64) QueueGate {
    std::atomic<uint32_t> busy{0};
    std::atomic<bool> open{false};  // set by the control path only

    bool enter() noexcept {
        busy.store(1, std::memory_order_relaxed);
        std::atomic_signal_fence(std::memory_order_seq_cst);    // the CPU side is quiesce()'s barrier
        if (open.load(std::memory_order_acquire)) return true;  // acquire: the queues set up before it opened
        busy.store(0, std::memory_order_relaxed);
        return false;
    }
    void leave() noexcept { busy.store(0, std::memory_order_release); }
};

// After each gate's open was set false: returns once no burst runs on any of
// the gates and none can start. Control path only (a system call, then a spin).
void quiesce(const QueueGate* gates, size_t n);

}  // namespace vireo::detail
