#include "vireo/pmd/queue_gate.hpp"

#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "vireo/base/cpu.hpp"

namespace vireo::detail {
namespace {

long membarrier(int cmd) { return ::syscall(__NR_membarrier, cmd, 0, 0); }

enum class Barrier { Expedited, Global, Mprotect };

Barrier choose() {
    const long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
        return Barrier::Expedited;
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL)) return Barrier::Global;
    return Barrier::Mprotect;
}

// Without membarrier (old kernels, seccomp): changing a page's protection
// makes the kernel interrupt every CPU running this process to flush its
// TLB, which serialises each of them (the fallback folly uses).
void mprotect_barrier() {
    static void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        return;
    }
    *static_cast<volatile char*>(page) = 1;
    ::mprotect(page, 4096, PROT_READ);
    ::mprotect(page, 4096, PROT_READ | PROT_WRITE);
}

void heavy_barrier() {
    static const Barrier b = choose();
    std::atomic_thread_fence(std::memory_order_seq_cst);
    switch (b) {
    case Barrier::Expedited:
        if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return;
        break;
    case Barrier::Global:
        if (membarrier(MEMBARRIER_CMD_GLOBAL) == 0) return;
        break;
    case Barrier::Mprotect: break;
    }
    mprotect_barrier();
}

}  // namespace

void quiesce(const QueueGate* gates, size_t n) {
    heavy_barrier();
    for (size_t i = 0; i < n; i++)
        for (unsigned spins = 0; gates[i].busy.load(std::memory_order_acquire) != 0; spins++) {
            if (spins < 1024)
                cpu_relax();
            else
                std::this_thread::yield();  // a preempted poller: let it finish its burst
        }
}

}  // namespace vireo::detail
