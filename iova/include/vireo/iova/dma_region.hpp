// vireo: DmaRegion, memory a device may read and write.
//
// One region is one file descriptor mapped once, shared (MAP_SHARED) so that a
// vhost-user back end can map the same fd, populated and mlocked so its pages
// never move. Regions are few and large: vhost-user back ends accept at most 8
// memory regions (QEMU's docs/interop/vhost-user.rst, VHOST_USER_SET_MEM_TABLE).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vireo {

// Where a region's pages come from.
enum class DmaBacking : uint8_t {
    Auto,           // memfd hugetlb 2 MiB, then memfd 4 KiB when no hugepage is free
    MemfdHuge2M,    // memfd_create(MFD_HUGETLB | MFD_HUGE_2MB)
    MemfdHuge1G,    // memfd_create(MFD_HUGETLB | MFD_HUGE_1GB)
    HugetlbfsFile,  // a file on a mounted hugetlbfs (DmaRegionOptions::hugetlbfs_dir), unlinked at once
    Memfd4K,        // memfd_create with ordinary 4 KiB pages
};

struct DmaRegionOptions {
    size_t length = 0;  // rounded up to the page size
    DmaBacking backing = DmaBacking::Auto;
    std::string hugetlbfs_dir;   // for HugetlbfsFile; empty: first hugetlbfs in /proc/mounts
    std::string name = "vireo";  // shows in /proc/PID/maps
    bool lock = true;            // mlock (needs RLIMIT_MEMLOCK or root)
};

class DmaRegion {
public:
    // Creates, maps, populates and locks. Throws vireo::Error with the cause and
    // the fix (e.g. "reserve hugepages: echo 64 > /proc/sys/vm/nr_hugepages").
    static DmaRegion create(const DmaRegionOptions& opts);

    DmaRegion() = default;
    DmaRegion(DmaRegion&& o) noexcept;
    DmaRegion& operator=(DmaRegion&& o) noexcept;
    DmaRegion(const DmaRegion&) = delete;
    DmaRegion& operator=(const DmaRegion&) = delete;
    ~DmaRegion();

    int fd() const noexcept { return fd_; }
    uint8_t* va() const noexcept { return va_; }
    size_t length() const noexcept { return len_; }
    size_t page_size() const noexcept { return page_size_; }
    DmaBacking backing() const noexcept { return backing_; }
    bool valid() const noexcept { return va_ != nullptr; }
    bool contains(const void* p, size_t n = 1) const noexcept {
        auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(va_);
        return a >= b && n <= len_ && a - b <= len_ - n;
    }

private:
    void release() noexcept;

    int fd_ = -1;
    uint8_t* va_ = nullptr;
    size_t len_ = 0;
    size_t page_size_ = 0;
    DmaBacking backing_ = DmaBacking::Auto;
};

const char* to_string(DmaBacking b) noexcept;

}  // namespace vireo
