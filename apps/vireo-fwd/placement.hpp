// Where vireo-fwd's polling threads and memory go (hwloc): the cores asked
// for, or cores on the NUMA node of the first device that has one, avoiding
// CPUs that another process's polling thread holds (cpu_claims.hpp) and
// otherwise leaving the lowest-numbered CPUs to the main (statistics) thread
// and the system.
#pragma once

#include <string>
#include <vector>

#include "cpu_claims.hpp"

namespace vireo::fwd {

struct Placement {
    std::vector<unsigned> cores;        // one per polling thread (OS CPU numbers)
    int numa_node = -1;                 // where memory is bound, -1: not bound
    std::string note;                   // how it was chosen, for the summary
    std::vector<std::string> warnings;  // a chosen CPU shared with another process's poller
};

class Topology {
public:
    Topology();
    ~Topology();
    Topology(const Topology&) = delete;
    Topology& operator=(const Topology&) = delete;

    // Throws UsageError when a listed core does not exist or too many are asked for.
    Placement place(const std::vector<unsigned>& cores, unsigned nb_cores, int device_node,
                    const std::vector<CpuClaim>& claims = {});
    // Binds the calling thread to one CPU.
    void bind_thread(unsigned cpu);
    // Binds the calling thread's future allocations (DMA memory) to a NUMA node.
    void bind_memory(int node);
    void unbind_memory();
    std::string describe() const;  // e.g. "2 CPUs, 1 NUMA node"

private:
    struct Impl;
    Impl* impl_;
};

}  // namespace vireo::fwd
