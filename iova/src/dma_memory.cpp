// DmaMemory: a bump allocator over few large regions that never hands out a
// chunk crossing an IOVA discontinuity.
#include "vireo/iova/dma_memory.hpp"

#include <algorithm>
#include <bit>
#include <string>

#include "vireo/base/error.hpp"

namespace vireo {
namespace {

uintptr_t align_up(uintptr_t v, size_t a) { return (v + a - 1) & ~(uintptr_t{a} - 1); }

}  // namespace

DmaMemory::DmaMemory(const DmaMemoryOptions& opts) : opts_(opts), map_(opts.mode) {
    if (opts_.region_size == 0) throw Error("DmaMemory: region_size is 0: give each region at least one page");
    if (opts_.max_regions == 0 || opts_.max_regions > IovaMap::kMaxRegions)
        throw Error("DmaMemory: max_regions must be 1.." + std::to_string(IovaMap::kMaxRegions) +
                    " (vhost-user back ends accept at most 8 memory regions)");
    next_linear_ = opts_.linear_base;
    add_region(opts_.region_size);
}

void DmaMemory::add_region(size_t min_len) {
    DmaRegionOptions ro = opts_.region;
    ro.length = std::max(opts_.region_size, min_len);
    auto r = std::make_unique<DmaRegion>(DmaRegion::create(ro));
    if (mode() == IovaMode::PA && opts_.pa_source == PaSource::Linear) {
        uint64_t base = align_up(next_linear_, r->page_size());
        map_.add_linear(r->va(), r->length(), r->page_size(), Iova{base});  // the guest-physical layout we publish
        next_linear_ = base + r->length();
    } else {
        map_.add(*r);  // VA: iova = va; PA: pagemap (throws with the fix when not root)
    }
    regions_.push_back(std::move(r));
    cursor_.push_back(0);
    try {
        for (auto& [id, fn] : listeners_) fn(regions_.size() - 1);
    } catch (...) {  // a region some listener could not take is never handed out
        map_.remove(regions_.back()->va());
        regions_.pop_back();
        cursor_.pop_back();
        throw;
    }
}

size_t DmaMemory::add_region_listener(std::function<void(size_t)> fn) {
    for (size_t i = 0; i < regions_.size(); i++) fn(i);
    listeners_.emplace_back(next_listener_, std::move(fn));
    return next_listener_++;
}

void DmaMemory::remove_region_listener(size_t id) noexcept {
    std::erase_if(listeners_, [id](const auto& l) { return l.first == id; });
}

bool DmaMemory::try_place(size_t i, size_t size, size_t align, DmaChunk& out) noexcept {
    const DmaRegion& r = *regions_[i];
    const uintptr_t begin = reinterpret_cast<uintptr_t>(r.va());
    const uintptr_t end = begin + r.length();
    uintptr_t p = align_up(begin + cursor_[i], align);
    while (p < end && size <= end - p) {
        const auto* vp = reinterpret_cast<const uint8_t*>(p);
        if (!map_.contiguous(vp, size)) {
            p = align_up(reinterpret_cast<uintptr_t>(map_.run_end(vp)), align);
            continue;
        }
        Iova iova = map_.iova(vp);
        if (iova.value % align != 0) {  // only when align exceeds the page size in PA mode
            p += align;
            continue;
        }
        out = {reinterpret_cast<uint8_t*>(p), iova, size};
        cursor_[i] = p + size - begin;
        allocated_ += size;
        return true;
    }
    return false;
}

DmaChunk DmaMemory::allocate(size_t size, size_t align) {
    if (size == 0) throw Error("DmaMemory::allocate: size is 0");
    if (!std::has_single_bit(align)) throw Error("DmaMemory::allocate: alignment must be a power of two");
    DmaChunk c;
    for (size_t i = 0; i < regions_.size(); i++)
        if (try_place(i, size, align, c)) return c;
    if (regions_.size() >= opts_.max_regions)
        throw Error("DMA memory is full (" + std::to_string(regions_.size()) + " regions, " +
                    std::to_string(allocated_) + " bytes allocated) and cannot hold " + std::to_string(size) +
                    " more contiguous bytes: give DmaMemoryOptions a larger region_size");
    add_region(size + align);
    if (!try_place(regions_.size() - 1, size, align, c))
        throw Error("no " + std::to_string(size) +
                    " IOVA-contiguous bytes in a fresh region: physical pages are too scattered; use "
                    "hugepages (DmaBacking::MemfdHuge2M) or smaller objects");
    return c;
}

}  // namespace vireo
