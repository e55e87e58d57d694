// Test helpers: the four driver queue kinds paired with the matching test
// device, and a PA-mode packet pool whose IOVAs are never VAs.
#pragma once

#include <type_traits>

#include "device_model.hpp"
#include "vireo/mempool/packet_pool.hpp"
#include "vireo/pmd/packed_queue.hpp"
#include "vireo/pmd/split_queue.hpp"

namespace vireo::test {

// I: the instruction set the queue's kernels may use (tests of a level the
// CPU lacks skip, saying so).
template <bool Packed, bool InOrder, Isa I = Isa::Baseline>
struct VqKind {
    static constexpr bool packed = Packed;
    static constexpr bool in_order = InOrder;
    static constexpr Isa isa = I;
    using Queue = std::conditional_t<Packed, PackedQueue<InOrder, SmpOrdering, I>, SplitQueue<InOrder>>;
    using Device = std::conditional_t<Packed, PackedDevice, SplitDevice>;
    static const char* name() {
        return Packed ? (InOrder ? "packed+in_order" : "packed") : (InOrder ? "split+in_order" : "split");
    }
    static bool runs_here() { return cpu_isa() >= I; }
};

template <class K>
typename K::Device make_device(const DmaMemory& mem, typename K::Queue& q, bool event_idx) {
    return typename K::Device(mem.map(), q.size(), q.desc_iova(), q.driver_iova(), q.device_iova(), event_idx);
}

// Guest-physical layout that is not the VA: a descriptor carrying a VA would
// not translate in the device and the test would see it.
inline DmaMemoryOptions pa_memory(size_t region = 64 << 20) {
    DmaMemoryOptions o;
    o.mode = IovaMode::PA;
    o.pa_source = PaSource::Linear;
    o.linear_base = uint64_t{3} << 32;
    o.region_size = region;
    return o;
}

}  // namespace vireo::test
