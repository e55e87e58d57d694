// VfioDeviceFd: one VFIO device fd's regions and interrupts, any bus.
#include "transport/vfio_device_fd.hpp"

#include <linux/vfio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "vireo/base/error.hpp"

namespace vireo {

bool VfioRegionInfo::mappable() const noexcept { return (flags & VFIO_REGION_INFO_FLAG_MMAP) != 0 && size != 0; }

int make_eventfd(const std::string& what) {
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) throw_sys_error(what + ": eventfd", errno);
    return fd;
}

VfioDeviceFd::VfioDeviceFd(std::string name, int fd) : name_(std::move(name)), fd_(fd) {
    vfio_device_info info{};
    info.argsz = sizeof info;
    if (::ioctl(fd_, VFIO_DEVICE_GET_INFO, &info) < 0) {
        const int e = errno;
        ::close(fd_);
        throw_sys_error("VFIO_DEVICE_GET_INFO(" + name_ + ")", e);
    }
    flags_ = info.flags;
    num_regions_ = info.num_regions;
    num_irqs_ = info.num_irqs;
}

VfioDeviceFd::~VfioDeviceFd() {
    if (fd_ >= 0) ::close(fd_);
}

VfioRegionInfo VfioDeviceFd::region_info(uint32_t index) const {
    vfio_region_info r{};
    r.argsz = sizeof r;
    r.index = index;
    if (::ioctl(fd_, VFIO_DEVICE_GET_REGION_INFO, &r) < 0)
        throw_sys_error("VFIO_DEVICE_GET_REGION_INFO(" + name_ + ", region " + std::to_string(index) + ")", errno);
    return {index, r.flags, r.size, r.offset};
}

void* VfioDeviceFd::map_region(const VfioRegionInfo& r, const std::string& what) const {
    void* p = ::mmap(nullptr, r.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, static_cast<off_t>(r.offset));
    if (p == MAP_FAILED) throw_sys_error(name_ + ": mmap of " + what, errno);
    return p;
}

void VfioDeviceFd::read_at(uint64_t offset, void* buf, size_t len, const std::string& what) const {
    const ssize_t n = ::pread(fd_, buf, len, static_cast<off_t>(offset));
    if (n != static_cast<ssize_t>(len)) throw_sys_error(name_ + ": " + what + " read", n < 0 ? errno : EIO);
}

void VfioDeviceFd::write_at(uint64_t offset, const void* buf, size_t len, const std::string& what) const {
    const ssize_t n = ::pwrite(fd_, buf, len, static_cast<off_t>(offset));
    if (n != static_cast<ssize_t>(len)) throw_sys_error(name_ + ": " + what + " write", n < 0 ? errno : EIO);
}

VfioIrqInfo VfioDeviceFd::irq_info(uint32_t index) const {
    vfio_irq_info i{};
    i.argsz = sizeof i;
    i.index = index;
    if (::ioctl(fd_, VFIO_DEVICE_GET_IRQ_INFO, &i) < 0)
        throw_sys_error("VFIO_DEVICE_GET_IRQ_INFO(" + name_ + ", index " + std::to_string(index) + ")", errno);
    return {index, i.flags, i.count};
}

void VfioDeviceFd::set_irq_eventfds(uint32_t index, uint32_t start, const std::vector<int>& fds) const {
    std::vector<uint8_t> buf(sizeof(vfio_irq_set) + fds.size() * sizeof(int));
    auto* s = reinterpret_cast<vfio_irq_set*>(buf.data());
    s->argsz = static_cast<uint32_t>(buf.size());
    s->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    s->index = index;
    s->start = start;
    s->count = static_cast<uint32_t>(fds.size());
    if (!fds.empty()) std::memcpy(s->data, fds.data(), fds.size() * sizeof(int));
    if (::ioctl(fd_, VFIO_DEVICE_SET_IRQS, s) < 0)
        throw_sys_error("VFIO_DEVICE_SET_IRQS(" + name_ + ", index " + std::to_string(index) + ")", errno);
}

void VfioDeviceFd::disable_irqs(uint32_t index) const {
    vfio_irq_set s{};
    s.argsz = sizeof s;
    s.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    s.index = index;
    s.start = 0;
    s.count = 0;
    ::ioctl(fd_, VFIO_DEVICE_SET_IRQS, &s);
}

void VfioDeviceFd::unmask_irq(uint32_t index) const noexcept {
    vfio_irq_set s{};
    s.argsz = sizeof s;
    s.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK;
    s.index = index;
    s.start = 0;
    s.count = 1;
    ::ioctl(fd_, VFIO_DEVICE_SET_IRQS, &s);
}

}  // namespace vireo
