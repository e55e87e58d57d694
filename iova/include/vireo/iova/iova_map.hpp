// vireo: IovaMap, translation between process VA and device IOVA.
//
// Every DMA region is registered here once, at setup; lookups afterwards are
// lock-free reads. va -> iova is O(1) within a region's page table (regions are
// few: a binary search over at most kMaxRegions). iova -> va searches the
// sorted list of IOVA-contiguous runs. In PA mode a region's pages need not be
// physically contiguous: the map records where contiguity breaks so that
// allocators never place an object across a break (run_end()).
//
// Threading: add/remove are setup-time calls and must not race with lookups.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "vireo/base/address.hpp"
#include "vireo/iova/dma_region.hpp"
#include "vireo/iova/iova_mode.hpp"

namespace vireo {

class IovaMap {
public:
    static constexpr size_t kMaxRegions = 8;

    explicit IovaMap(IovaMode mode) : mode_(mode) {}
    IovaMode mode() const noexcept { return mode_; }

    // Registers a region with the translation the mode implies: VA -> iova = va;
    // PA -> physical addresses read from /proc/self/pagemap (needs root).
    void add(const DmaRegion& r);
    // PA mode with a layout we publish ourselves (vhost-user guest-physical
    // addresses): iova = iova_base + offset. Runs may not overlap.
    void add_linear(const void* va, size_t len, size_t page_size, Iova iova_base);
    // PA mode with an explicit page table (one IOVA per page); used by the
    // pagemap path and by tests that need contiguity breaks.
    void add_pages(const void* va, size_t len, size_t page_size, std::vector<Iova> page_iovas);
    // Forgets the region that starts at va.
    void remove(const void* va);

    // IOVA of a byte inside a registered region; kBadIova otherwise.
    Iova iova(const void* va) const noexcept;
    // VA of [iova, iova + len) when that range lies in one IOVA-contiguous run
    // of one region; nullptr otherwise (never a partial translation).
    void* va(Iova iova, size_t len = 1) const noexcept;
    // True when [va, va + len) is inside one region and IOVA-contiguous.
    bool contiguous(const void* va, size_t len) const noexcept;
    // First address past the IOVA-contiguous run that contains va (nullptr if
    // va is not registered).
    const uint8_t* run_end(const void* va) const noexcept;

    struct Region {
        uintptr_t va;
        size_t len;
        uint32_t page_shift;
        bool linear;                      // iova = iova_base + offset
        uint64_t iova_base;               // linear regions
        std::vector<uint64_t> page_iova;  // paged regions: one per page
        std::vector<uint32_t> run_last;   // paged regions: last page index of the run holding page i
    };
    std::span<const Region> regions() const noexcept { return regions_; }

private:
    struct Run {
        uint64_t iova;
        uint64_t len;
        uintptr_t va;
    };
    const Region* find(uintptr_t va) const noexcept;
    void insert(Region r);
    void rebuild_runs();

    IovaMode mode_;
    std::vector<Region> regions_;  // sorted by va
    std::vector<Run> runs_;        // sorted by iova
};

}  // namespace vireo
