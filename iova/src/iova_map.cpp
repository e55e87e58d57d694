// IovaMap: per-region page tables plus a sorted list of IOVA-contiguous runs.
#include "vireo/iova/iova_map.hpp"

#include <algorithm>
#include <bit>
#include <string>

#include "vireo/base/error.hpp"
#include "vireo/iova/pagemap.hpp"

namespace vireo {
namespace {

void check_geometry(const void* va, size_t len, size_t page_size) {
    if (va == nullptr || len == 0) throw Error("IovaMap: empty region");
    if (!std::has_single_bit(page_size) || page_size < 4096)
        throw Error("IovaMap: page size " + std::to_string(page_size) + " is not a power of two >= 4096");
    if (reinterpret_cast<uintptr_t>(va) % page_size != 0 || len % page_size != 0)
        throw Error("IovaMap: region is not aligned to its page size");
}

}  // namespace

void IovaMap::add(const DmaRegion& r) {
    if (!r.valid()) throw Error("IovaMap: region is not mapped");
    if (mode_ == IovaMode::VA) {
        add_linear(r.va(), r.length(), r.page_size(), Iova{reinterpret_cast<uintptr_t>(r.va())});  // IOVA = VA
        return;
    }
    // PA mode: the device is given physical addresses, so here (and only here)
    // a page's Pa becomes its Iova.
    const std::vector<Pa> pas = physical_pages(r.va(), r.length(), r.page_size());
    std::vector<Iova> iovas;
    iovas.reserve(pas.size());
    for (Pa pa : pas) iovas.push_back(Iova{pa.value});
    add_pages(r.va(), r.length(), r.page_size(), std::move(iovas));
}

void IovaMap::add_linear(const void* va, size_t len, size_t page_size, Iova base) {
    check_geometry(va, len, page_size);
    const uint64_t iova_base = base.value;
    if (iova_base % page_size != 0) throw Error("IovaMap: linear IOVA base is not page aligned");
    if (iova_base + len < iova_base) throw Error("IovaMap: linear IOVA range wraps around");
    Region r{};
    r.va = reinterpret_cast<uintptr_t>(va);
    r.len = len;
    r.page_shift = static_cast<uint32_t>(std::countr_zero(page_size));
    r.linear = true;
    r.iova_base = iova_base;
    insert(std::move(r));
}

void IovaMap::add_pages(const void* va, size_t len, size_t page_size, std::vector<Iova> page_iovas) {
    check_geometry(va, len, page_size);
    const size_t pages = len / page_size;
    if (page_iovas.size() != pages)
        throw Error("IovaMap: page table has " + std::to_string(page_iovas.size()) + " entries for " +
                    std::to_string(pages) + " pages");
    Region r{};
    r.va = reinterpret_cast<uintptr_t>(va);
    r.len = len;
    r.page_shift = static_cast<uint32_t>(std::countr_zero(page_size));
    r.linear = false;
    r.page_iova.reserve(pages);
    for (Iova a : page_iovas) r.page_iova.push_back(a.value);
    for (uint64_t a : r.page_iova)
        if (a % page_size != 0) throw Error("IovaMap: a page's IOVA is not aligned to the page size");
    // run_last[i]: last page of the contiguous run holding page i (one backward pass).
    r.run_last.resize(pages);
    for (size_t i = pages; i-- > 0;) {
        bool joins_next = i + 1 < pages && r.page_iova[i + 1] == r.page_iova[i] + page_size;
        r.run_last[i] = joins_next ? r.run_last[i + 1] : static_cast<uint32_t>(i);
    }
    // A fully contiguous table becomes a linear region: the fast path.
    if (r.run_last[0] == pages - 1) {
        r.linear = true;
        r.iova_base = r.page_iova[0];
        r.page_iova.clear();
        r.run_last.clear();
    }
    insert(std::move(r));
}

void IovaMap::insert(Region r) {
    if (regions_.size() >= kMaxRegions)
        throw Error("IovaMap: more than " + std::to_string(kMaxRegions) +
                    " regions (vhost-user's limit): use fewer, larger DMA regions");
    for (const Region& o : regions_)
        if (r.va < o.va + o.len && o.va < r.va + r.len) throw Error("IovaMap: region overlaps one already registered");
    auto it =
        std::lower_bound(regions_.begin(), regions_.end(), r.va, [](const Region& a, uintptr_t v) { return a.va < v; });
    regions_.insert(it, std::move(r));
    try {
        rebuild_runs();
    } catch (...) {
        regions_.erase(std::find_if(regions_.begin(), regions_.end(), [&](const Region& x) { return x.va == r.va; }));
        rebuild_runs();
        throw;
    }
}

void IovaMap::remove(const void* va) {
    auto v = reinterpret_cast<uintptr_t>(va);
    auto it = std::find_if(regions_.begin(), regions_.end(), [&](const Region& r) { return r.va == v; });
    if (it == regions_.end()) throw Error("IovaMap: no region starts at that address");
    regions_.erase(it);
    rebuild_runs();
}

void IovaMap::rebuild_runs() {
    std::vector<Run> runs;
    for (const Region& r : regions_) {
        if (r.linear) {
            runs.push_back({r.iova_base, r.len, r.va});
            continue;
        }
        const size_t page = size_t{1} << r.page_shift;
        for (size_t i = 0; i < r.page_iova.size(); i = r.run_last[i] + 1) {
            size_t n = r.run_last[i] - i + 1;
            runs.push_back({r.page_iova[i], n * page, r.va + i * page});
        }
    }
    std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.iova < b.iova; });
    for (size_t i = 1; i < runs.size(); i++)
        if (runs[i - 1].iova + runs[i - 1].len > runs[i].iova)
            throw Error("IovaMap: two regions claim overlapping IOVA ranges");
    runs_ = std::move(runs);
}

const IovaMap::Region* IovaMap::find(uintptr_t va) const noexcept {
    // regions_ is sorted by va and holds at most kMaxRegions entries.
    auto it =
        std::upper_bound(regions_.begin(), regions_.end(), va, [](uintptr_t v, const Region& r) { return v < r.va; });
    if (it == regions_.begin()) return nullptr;
    --it;
    return va - it->va < it->len ? &*it : nullptr;
}

Iova IovaMap::iova(const void* p) const noexcept {
    auto va = reinterpret_cast<uintptr_t>(p);
    const Region* r = find(va);
    if (r == nullptr) return kBadIova;
    uintptr_t off = va - r->va;
    if (r->linear) return Iova{r->iova_base + off};
    uintptr_t mask = (uintptr_t{1} << r->page_shift) - 1;
    return Iova{r->page_iova[off >> r->page_shift] + (off & mask)};
}

void* IovaMap::va(Iova at, size_t len) const noexcept {
    if (len == 0) len = 1;
    const uint64_t iova = at.value;
    auto it = std::upper_bound(runs_.begin(), runs_.end(), iova, [](uint64_t v, const Run& r) { return v < r.iova; });
    if (it == runs_.begin()) return nullptr;
    --it;
    uint64_t off = iova - it->iova;
    if (off >= it->len || len > it->len - off) return nullptr;
    return reinterpret_cast<void*>(it->va + off);
}

const uint8_t* IovaMap::run_end(const void* p) const noexcept {
    auto va = reinterpret_cast<uintptr_t>(p);
    const Region* r = find(va);
    if (r == nullptr) return nullptr;
    if (r->linear) return reinterpret_cast<const uint8_t*>(r->va + r->len);
    size_t last = r->run_last[(va - r->va) >> r->page_shift];
    return reinterpret_cast<const uint8_t*>(r->va + ((last + 1) << r->page_shift));
}

bool IovaMap::contiguous(const void* p, size_t len) const noexcept {
    if (len == 0) return find(reinterpret_cast<uintptr_t>(p)) != nullptr;
    const uint8_t* end = run_end(p);
    return end != nullptr && static_cast<size_t>(end - static_cast<const uint8_t*>(p)) >= len;
}

}  // namespace vireo
