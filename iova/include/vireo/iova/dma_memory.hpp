// vireo: DmaMemory, the few large DMA regions of a process and their IovaMap.
//
// Pools and rings are carved from here with allocate(), which always returns
// an IOVA-contiguous chunk (in PA mode it skips physical discontinuities).
// Regions are added on demand, at most IovaMap::kMaxRegions (vhost-user's
// limit); nothing is freed before the DmaMemory itself goes away, because what
// lives here (packet pools, virtqueues) lives as long as the ports using it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "vireo/iova/dma_region.hpp"
#include "vireo/iova/iova_map.hpp"

namespace vireo {

struct DmaMemoryOptions {
    IovaMode mode = IovaMode::VA;
    PaSource pa_source = PaSource::Pagemap;
    uint64_t linear_base = uint64_t{1} << 32;  // first guest-physical address for PaSource::Linear
    size_t region_size = size_t{64} << 20;     // each region's length (a larger request gets its own)
    size_t max_regions = IovaMap::kMaxRegions;
    DmaRegionOptions region;  // backing, name; its length is ignored
};

struct DmaChunk {
    uint8_t* va = nullptr;
    Iova iova = kBadIova;
    size_t len = 0;
};

class DmaMemory {
public:
    // Creates the first region at once so that a missing permission or an
    // impossible backing is reported here, not at the first allocation.
    explicit DmaMemory(const DmaMemoryOptions& opts);
    DmaMemory(const DmaMemory&) = delete;
    DmaMemory& operator=(const DmaMemory&) = delete;

    // An IOVA-contiguous chunk of `size` bytes aligned to `align` (a power of
    // two, in both VA and IOVA). Throws vireo::Error when no region can hold it.
    DmaChunk allocate(size_t size, size_t align = 64);

    IovaMode mode() const noexcept { return map_.mode(); }
    PaSource pa_source() const noexcept { return opts_.pa_source; }
    const DmaMemoryOptions& options() const noexcept { return opts_; }
    const IovaMap& map() const noexcept { return map_; }
    size_t region_count() const noexcept { return regions_.size(); }
    const DmaRegion& region(size_t i) const noexcept { return *regions_[i]; }
    // IOVA at which region i starts (its guest-physical base in Linear mode).
    Iova region_iova(size_t i) const noexcept { return map_.iova(regions_[i]->va()); }
    size_t bytes_allocated() const noexcept { return allocated_; }

    // Calls fn(index) for each region already there, at once, and for every
    // region added later, before any chunk of it is handed out (VFIO maps
    // regions into its IOMMU this way). A throwing listener fails the
    // allocation that added the region. Returns an id for remove_region_listener.
    size_t add_region_listener(std::function<void(size_t index)> fn);
    void remove_region_listener(size_t id) noexcept;

private:
    void add_region(size_t min_len);
    bool try_place(size_t region_index, size_t size, size_t align, DmaChunk& out) noexcept;

    DmaMemoryOptions opts_;
    IovaMap map_;
    std::vector<std::unique_ptr<DmaRegion>> regions_;
    std::vector<size_t> cursor_;  // bump offset per region
    uint64_t next_linear_ = 0;
    size_t allocated_ = 0;
    std::vector<std::pair<size_t, std::function<void(size_t)>>> listeners_;
    size_t next_listener_ = 0;
};

}  // namespace vireo
