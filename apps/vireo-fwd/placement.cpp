// hwloc placement for vireo-fwd.
#include "placement.hpp"

#include <hwloc.h>

#include <algorithm>

#include "options.hpp"

namespace vireo::fwd {

struct Topology::Impl {
    hwloc_topology_t topo;
};

Topology::Topology() : impl_(new Impl) {
    hwloc_topology_init(&impl_->topo);
    hwloc_topology_load(impl_->topo);
}

Topology::~Topology() {
    hwloc_topology_destroy(impl_->topo);
    delete impl_;
}

std::string Topology::describe() const {
    const int pus = hwloc_get_nbobjs_by_type(impl_->topo, HWLOC_OBJ_PU);
    const int nodes = std::max(1, hwloc_get_nbobjs_by_type(impl_->topo, HWLOC_OBJ_NUMANODE));
    return std::to_string(pus) + " CPUs, " + std::to_string(nodes) + " NUMA node" + (nodes > 1 ? "s" : "");
}

Placement Topology::place(const std::vector<unsigned>& cores, unsigned nb_cores, int device_node,
                          const std::vector<CpuClaim>& claims) {
    auto claim_of = [&](unsigned cpu) -> const CpuClaim* {
        for (const CpuClaim& c : claims)
            if (c.cpu == cpu) return &c;
        return nullptr;
    };
    hwloc_topology_t t = impl_->topo;
    std::vector<unsigned> all;
    for (hwloc_obj_t pu = nullptr; (pu = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_PU, pu)) != nullptr;)
        all.push_back(pu->os_index);
    std::sort(all.begin(), all.end());
    const std::string have = all.empty() ? "none" : std::to_string(all.front()) + "-" + std::to_string(all.back());
    Placement p;
    if (!cores.empty()) {
        for (unsigned c : cores)
            if (std::find(all.begin(), all.end(), c) == all.end())
                throw UsageError{"--cores: CPU " + std::to_string(c) + " does not exist (this machine has CPUs " +
                                 have + ")"};
        p.cores = cores;
        p.note = "cores as given";
    } else {
        std::vector<unsigned> near = all;
        hwloc_obj_t node =
            device_node >= 0 ? hwloc_get_numanode_obj_by_os_index(t, static_cast<unsigned>(device_node)) : nullptr;
        if (node != nullptr && node->cpuset != nullptr) {
            near.clear();
            for (unsigned c : all)
                if (hwloc_bitmap_isset(node->cpuset, c)) near.push_back(c);
            p.numa_node = device_node;
        }
        if (nb_cores > near.size())
            throw UsageError{"--nb-cores=" + std::to_string(nb_cores) + " but only " + std::to_string(near.size()) +
                             " CPUs are " + (p.numa_node >= 0 ? "on the devices' NUMA node" : "available") + " (CPUs " +
                             have + ")"};
        // CPUs no other poller holds first, then the highest-numbered: CPU 0
        // usually carries interrupts and housekeeping.
        std::stable_partition(near.begin(), near.end(), [&](unsigned c) { return claim_of(c) != nullptr; });
        p.cores.assign(near.end() - nb_cores, near.end());
        std::sort(p.cores.begin(), p.cores.end());
        p.note = p.numa_node >= 0 ? "automatic, NUMA node " + std::to_string(p.numa_node) + " of the devices"
                                  : "automatic (no device NUMA node known)";
        std::string avoided;
        for (const CpuClaim& c : claims)
            if (std::find(p.cores.begin(), p.cores.end(), c.cpu) == p.cores.end() &&
                avoided.find("CPU " + std::to_string(c.cpu) + " ") == std::string::npos)
                avoided += (avoided.empty() ? "" : ", ") + std::string("CPU ") + std::to_string(c.cpu) + " (" +
                           fwd::describe(c) + ")";
        if (!avoided.empty()) p.note += "; avoided " + avoided;
    }
    for (unsigned c : p.cores)
        if (const CpuClaim* k = claim_of(c))
            p.warnings.push_back("CPU " + std::to_string(c) + " is also polled by " + fwd::describe(*k) +
                                 ": two pollers on one CPU each wait a scheduler slice for the other (thousands "
                                 "instead of millions of packets/s); give vireo-fwd another CPU with --cores");
    if (p.numa_node < 0 && device_node >= 0) p.numa_node = device_node;
    return p;
}

void Topology::bind_thread(unsigned cpu) {
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    hwloc_bitmap_only(set, cpu);
    hwloc_set_cpubind(impl_->topo, set, HWLOC_CPUBIND_THREAD);
    hwloc_bitmap_free(set);
}

void Topology::bind_memory(int node) {
    hwloc_obj_t n = hwloc_get_numanode_obj_by_os_index(impl_->topo, static_cast<unsigned>(node));
    if (n == nullptr) return;
    hwloc_set_membind(impl_->topo, n->nodeset, HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET);
}

void Topology::unbind_memory() {
    hwloc_set_membind(impl_->topo, hwloc_topology_get_topology_nodeset(impl_->topo), HWLOC_MEMBIND_DEFAULT,
                      HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET);
}

}  // namespace vireo::fwd
