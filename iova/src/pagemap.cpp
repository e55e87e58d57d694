// /proc/self/pagemap reader (kernel Documentation/admin-guide/mm/pagemap.rst).
#include "vireo/iova/pagemap.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "vireo/base/error.hpp"

namespace vireo {
namespace {

constexpr uint64_t kPresent = uint64_t{1} << 63;
constexpr uint64_t kPfnMask = (uint64_t{1} << 55) - 1;
constexpr size_t kBasePage = 4096;

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

private:
    int fd_;
};

int open_pagemap() {
    int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw_sys_error("cannot open /proc/self/pagemap", errno,
                        "PA mode needs procfs and root (CAP_SYS_ADMIN); otherwise use VA mode behind an IOMMU");
    return fd;
}

uint64_t read_entry(int fd, uintptr_t va) {
    uint64_t e = 0;
    off_t off = static_cast<off_t>(va / kBasePage * sizeof(e));
    ssize_t n = ::pread(fd, &e, sizeof(e), off);
    if (n != static_cast<ssize_t>(sizeof(e))) throw_sys_error("cannot read /proc/self/pagemap", n < 0 ? errno : EIO);
    return e;
}

Pa entry_to_phys(uint64_t e, uintptr_t va) {
    if (!(e & kPresent))
        throw Error("page at VA 0x" + std::to_string(va) +
                    " is not present in /proc/self/pagemap: the region was not populated (mmap with "
                    "MAP_POPULATE and mlock it before asking for physical addresses)");
    uint64_t pfn = e & kPfnMask;
    if (pfn == 0)
        throw Error(
            "physical frame numbers read as 0 from /proc/self/pagemap: this process lacks "
            "CAP_SYS_ADMIN; run as root for PA mode, or use VA mode (--iova-mode=va) with a "
            "device that offers VIRTIO_F_ACCESS_PLATFORM behind an IOMMU",
            EPERM);
    return Pa{pfn * kBasePage + (va % kBasePage)};
}

}  // namespace

std::vector<Pa> physical_pages(const void* va, size_t len, size_t page_size) {
    auto base = reinterpret_cast<uintptr_t>(va);
    if (page_size < kBasePage || (page_size & (page_size - 1)) != 0 || base % page_size != 0)
        throw Error("physical_pages: VA must be aligned to a power-of-two page size >= 4096");
    Fd fd(open_pagemap());
    size_t pages = (len + page_size - 1) / page_size;
    std::vector<Pa> out(pages);
    if (page_size == kBasePage) {
        // One pread for a whole batch of consecutive 4 KiB entries.
        constexpr size_t kBatch = 512;
        uint64_t buf[kBatch];
        for (size_t i = 0; i < pages; i += kBatch) {
            size_t n = std::min(kBatch, pages - i);
            off_t off = static_cast<off_t>((base / kBasePage + i) * sizeof(uint64_t));
            ssize_t got = ::pread(fd.get(), buf, n * sizeof(uint64_t), off);
            if (got != static_cast<ssize_t>(n * sizeof(uint64_t)))
                throw_sys_error("cannot read /proc/self/pagemap", got < 0 ? errno : EIO);
            for (size_t j = 0; j < n; j++) out[i + j] = entry_to_phys(buf[j], base + (i + j) * kBasePage);
        }
    } else {
        for (size_t i = 0; i < pages; i++) {
            uintptr_t p = base + i * page_size;
            out[i] = entry_to_phys(read_entry(fd.get(), p), p);
        }
    }
    return out;
}

Pa virt_to_phys(const void* va) {
    Fd fd(open_pagemap());
    auto p = reinterpret_cast<uintptr_t>(va);
    return entry_to_phys(read_entry(fd.get(), p), p);
}

bool physical_addresses_readable() noexcept {
    try {
        volatile uint64_t probe = 1;  // on a present, written stack page
        probe = probe + 1;
        return virt_to_phys(const_cast<uint64_t*>(&probe)).value != 0;
    } catch (const Error&) {
        return false;
    }
}

}  // namespace vireo
