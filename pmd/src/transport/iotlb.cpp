#include "transport/iotlb.hpp"

#include "vireo/iova/dma_memory.hpp"

namespace vireo::iotlb {

Entry entry_of_region(const DmaMemory& mem, size_t region) {
    const DmaRegion& r = mem.region(region);
    return {mem.region_iova(region), r.length(), reinterpret_cast<uintptr_t>(r.va())};
}

std::optional<Entry> entry_for(const DmaMemory& mem, Iova iova) {
    for (size_t i = 0; i < mem.region_count(); i++) {
        const Iova base = mem.region_iova(i);
        if (iova < base || iova - base >= mem.region(i).length()) continue;
        return entry_of_region(mem, i);
    }
    return std::nullopt;
}

}  // namespace vireo::iotlb
