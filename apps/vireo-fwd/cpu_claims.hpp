// CPUs that another process's busy-polling thread is pinned to: an OVS PMD
// thread (other_config:pmd-cpu-mask), a DPDK lcore, another vireo-fwd. A
// polling thread that shares such a CPU does not run at half speed: each
// poller holds the CPU for a scheduler slice while the other's rings fill or
// run dry, so a ring pair moves one ring's worth of frames per slice (measured
// against OVS: 3.9 thousand packets/s instead of 8-9 million; docs/vhost-user.md).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace vireo::fwd {

struct CpuClaim {
    unsigned cpu;
    pid_t pid;
    std::string process;  // comm of the process
    std::string thread;   // comm of the thread
};

// User threads of other processes pinned to exactly one CPU that poll: over
// 50 ms they stay runnable and never block (cpu_claims.cpp says why this and
// not their share of CPU time). Reads /proc; never throws.
std::vector<CpuClaim> busy_pinned_threads();

// "ovs-vswitchd thread pmd-c01/id:9 (pid 1234)"
std::string describe(const CpuClaim& c);

}  // namespace vireo::fwd
