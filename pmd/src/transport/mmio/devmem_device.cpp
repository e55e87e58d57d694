// DevMemDevice: a virtio-mmio device's registers mapped from /dev/mem.
#include "transport/mmio/devmem_device.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "transport/mmio/virtio_mmio_regs.hpp"
#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/iova/dma_memory.hpp"

namespace vireo {
namespace {

// The /proc/iomem lines that touch [first, last]: who else holds the page.
std::string iomem_lines_within(const std::string& iomem_text, uint64_t first, uint64_t last) {
    std::istringstream in(iomem_text);
    std::string out;
    for (std::string line; std::getline(in, line);) {
        unsigned long long s = 0, e = 0;
        if (std::sscanf(line.c_str(), " %llx-%llx", &s, &e) == 2 && s <= last && e >= first)
            out += "\n    " + line.substr(line.find_first_not_of(' '));
    }
    return out;
}

}  // namespace

DevMemDevice::DevMemDevice(std::string name, const IomemRange& phys, const std::string& dev_dir,
                           const std::string& iomem_text, const std::string& devmem)
    : name_(std::move(name)) {
    const std::string what = "mmio:" + name_;
    if (phys.end < phys.start || phys.end - phys.start + 1 < virtio_mmio::kMinRegionSize)
        throw Error(what + ": its register region " + hex(phys.start) + ".." + hex(phys.end) + " is smaller than the " +
                    std::to_string(virtio_mmio::kMinRegionSize) + " bytes of a virtio-mmio device");
    lock_fd_ = ::open(dev_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock_fd_ < 0) throw_sys_error(what + ": open " + dev_dir, errno);
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) < 0) {
        const int e = errno;
        ::close(lock_fd_);
        if (e == EWOULDBLOCK)
            throw Error(what + " is driven by another process through /dev/mem: one driver per device");
        throw_sys_error(what + ": flock " + dev_dir, e);
    }
    const int fd = ::open(devmem.c_str(), O_RDWR | O_SYNC | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        ::close(lock_fd_);
        throw_sys_error(what + ": open " + devmem, e,
                        "it needs root (CAP_SYS_RAWIO); or bind the device to vfio-platform");
    }
    const long page = ::sysconf(_SC_PAGESIZE);
    const uint64_t first = phys.start & ~uint64_t(page - 1);
    map_len_ = ((phys.start + virtio_mmio::kMinRegionSize - first) + page - 1) & ~uint64_t(page - 1);
    map_ = ::mmap(nullptr, map_len_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(first));
    const int e = errno;
    ::close(fd);
    if (map_ == MAP_FAILED) {
        map_ = nullptr;
        ::close(lock_fd_);
        std::string why = what + ": mmap of " + devmem + " at " + hex(first) + " (" + std::to_string(map_len_) +
                          " bytes) failed: " + std::strerror(e);
        if (e == EPERM)
            why +=
                ". The kernel (IO_STRICT_DEVMEM) refuses a page while any driver holds a region on it; "
                "/proc/iomem shows on this page:" +
                iomem_lines_within(iomem_text, first, first + map_len_ - 1) +
                "\nUnbind every device listed there, or bind this one to vfio-platform instead";
        throw Error(why, e);
    }
    regs_ = static_cast<volatile uint8_t*>(map_) + (phys.start - first);
}

DevMemDevice::~DevMemDevice() {
    if (map_ != nullptr) ::munmap(map_, map_len_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

void DevMemDevice::read_bytes(uint32_t offset, void* out, uint32_t len) const {
    auto* o = static_cast<uint8_t*>(out);
    for (uint32_t i = 0; i < len; i++) o[i] = regs_[offset + i];
}

Doorbell DevMemDevice::notify_doorbell() const { return Doorbell::mmio32(reg(virtio_mmio::kQueueNotify)); }

void DevMemDevice::attach_memory(DmaMemory& mem, const DmaPlan& plan) {
    if (mem.mode() != IovaMode::PA || plan.mode != IovaMode::PA)
        throw Error("mmio:" + name_ +
                    " is reached through /dev/mem, with no IOMMU: its descriptors must carry physical addresses, "
                    "but the DMA memory is in IOVA mode va; run with --iova-mode=pa");
}

}  // namespace vireo
