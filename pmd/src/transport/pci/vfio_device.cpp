// VfioDevice: a vfio-pci device's regions, config space, IRQs and reset.
#include <linux/vfio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "transport/pci/vfio_device.hpp"
#include "vireo/base/error.hpp"

namespace vireo {

bool VfioRegionInfo::mappable() const noexcept { return (flags & VFIO_REGION_INFO_FLAG_MMAP) != 0 && size != 0; }

VfioDevice::VfioDevice(std::shared_ptr<VfioContainer> container, std::string bdf, int fd)
    : container_(std::move(container)), bdf_(std::move(bdf)), fd_(fd) {
    vfio_device_info info{};
    info.argsz = sizeof info;
    if (::ioctl(fd_, VFIO_DEVICE_GET_INFO, &info) < 0) {
        const int e = errno;
        ::close(fd_);
        throw_sys_error("VFIO_DEVICE_GET_INFO(" + bdf_ + ")", e);
    }
    if (!(info.flags & VFIO_DEVICE_FLAGS_PCI)) {
        ::close(fd_);
        throw Error("VFIO device " + bdf_ + " is not a PCI device");
    }
    num_regions_ = info.num_regions;
    num_irqs_ = info.num_irqs;
    can_reset_ = (info.flags & VFIO_DEVICE_FLAGS_RESET) != 0;
    if (num_regions_ <= VFIO_PCI_CONFIG_REGION_INDEX) {
        ::close(fd_);
        throw Error("VFIO device " + bdf_ + " has no PCI config region");
    }
    config_offset_ = region_info(VFIO_PCI_CONFIG_REGION_INDEX).offset;
}

VfioDevice::~VfioDevice() {
    unwire_irqs();
    if (irq_efd_ >= 0) ::close(irq_efd_);
    for (int fd : vector_efds_) ::close(fd);
    if (fd_ >= 0) ::close(fd_);
}

VfioRegionInfo VfioDevice::region_info(uint32_t index) const {
    vfio_region_info r{};
    r.argsz = sizeof r;
    r.index = index;
    if (::ioctl(fd_, VFIO_DEVICE_GET_REGION_INFO, &r) < 0)
        throw_sys_error("VFIO_DEVICE_GET_REGION_INFO(" + bdf_ + ", region " + std::to_string(index) + ")", errno);
    return {index, r.flags, r.size, r.offset};
}

PciMappedBar VfioDevice::map_bar(uint32_t bar) const {
    if (bar > VFIO_PCI_BAR5_REGION_INDEX) throw Error(bdf_ + ": BAR " + std::to_string(bar) + " does not exist");
    VfioRegionInfo r = region_info(VFIO_PCI_BAR0_REGION_INDEX + bar);
    if (r.size == 0) throw Error(bdf_ + ": BAR " + std::to_string(bar) + " is empty");
    if (!r.mappable())
        throw Error(bdf_ + ": BAR " + std::to_string(bar) + " cannot be mmapped (an I/O BAR, or vfio-pci refused it)");
    void* p = ::mmap(nullptr, r.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, static_cast<off_t>(r.offset));
    if (p == MAP_FAILED) throw_sys_error(bdf_ + ": mmap of BAR " + std::to_string(bar), errno);
    return PciMappedBar(p, r.size);
}

void VfioDevice::config_read(uint32_t offset, void* buf, size_t len) const {
    const ssize_t n = ::pread(fd_, buf, len, static_cast<off_t>(config_offset_ + offset));
    if (n != static_cast<ssize_t>(len))
        throw_sys_error(bdf_ + ": config space read at " + std::to_string(offset), n < 0 ? errno : EIO);
}

void VfioDevice::config_write(uint32_t offset, const void* buf, size_t len) const {
    const ssize_t n = ::pwrite(fd_, buf, len, static_cast<off_t>(config_offset_ + offset));
    if (n != static_cast<ssize_t>(len))
        throw_sys_error(bdf_ + ": config space write at " + std::to_string(offset), n < 0 ? errno : EIO);
}

bool VfioDevice::reset() const {
    if (!can_reset_) return false;
    if (::ioctl(fd_, VFIO_DEVICE_RESET) < 0) throw_sys_error("VFIO_DEVICE_RESET(" + bdf_ + ")", errno);
    return true;
}

VfioIrqInfo VfioDevice::irq_info(uint32_t index) const {
    vfio_irq_info i{};
    i.argsz = sizeof i;
    i.index = index;
    if (::ioctl(fd_, VFIO_DEVICE_GET_IRQ_INFO, &i) < 0)
        throw_sys_error("VFIO_DEVICE_GET_IRQ_INFO(" + bdf_ + ", index " + std::to_string(index) + ")", errno);
    return {index, i.flags, i.count};
}

void VfioDevice::set_irq_eventfds(uint32_t index, uint32_t start, const std::vector<int>& fds) const {
    std::vector<uint8_t> buf(sizeof(vfio_irq_set) + fds.size() * sizeof(int));
    auto* s = reinterpret_cast<vfio_irq_set*>(buf.data());
    s->argsz = static_cast<uint32_t>(buf.size());
    s->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    s->index = index;
    s->start = start;
    s->count = static_cast<uint32_t>(fds.size());
    if (!fds.empty()) std::memcpy(s->data, fds.data(), fds.size() * sizeof(int));
    if (::ioctl(fd_, VFIO_DEVICE_SET_IRQS, s) < 0)
        throw_sys_error("VFIO_DEVICE_SET_IRQS(" + bdf_ + ", index " + std::to_string(index) + ")", errno);
}

void VfioDevice::disable_irqs(uint32_t index) const {
    vfio_irq_set s{};
    s.argsz = sizeof s;
    s.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    s.index = index;
    s.start = 0;
    s.count = 0;
    ::ioctl(fd_, VFIO_DEVICE_SET_IRQS, &s);
}

ConfigIrq VfioDevice::wire_config_irq(uint16_t msix_vectors) {
    if (msix_vectors > 0 && num_irqs_ > VFIO_PCI_MSIX_IRQ_INDEX) {
        const uint32_t table = irq_info(VFIO_PCI_MSIX_IRQ_INDEX).count;
        const uint32_t n = std::min<uint32_t>(table, msix_vectors);
        if (n > 0) {
            while (vector_efds_.size() < n) {
                const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
                if (fd < 0) throw_sys_error(bdf_ + ": eventfd", errno);
                vector_efds_.push_back(fd);
            }
            set_irq_eventfds(VFIO_PCI_MSIX_IRQ_INDEX, 0, vector_efds_);
            return irq_ = ConfigIrq::Msix;
        }
    }
    if (num_irqs_ > VFIO_PCI_INTX_IRQ_INDEX && irq_info(VFIO_PCI_INTX_IRQ_INDEX).count > 0) {
        if (irq_efd_ < 0) {
            irq_efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (irq_efd_ < 0) throw_sys_error(bdf_ + ": eventfd", errno);
        }
        set_irq_eventfds(VFIO_PCI_INTX_IRQ_INDEX, 0, {irq_efd_});
        irq_ = ConfigIrq::Intx;
    }
    return irq_;
}

bool VfioDevice::take_irq() {
    uint64_t n = 0;
    const int fd = irq_fd();
    return fd >= 0 && ::read(fd, &n, sizeof n) == sizeof n;
}

// VFIO masks a level-triggered INTx when it fires; the driver unmasks it once
// the device has deasserted the line.
void VfioDevice::unmask_intx() {
    if (irq_ != ConfigIrq::Intx) return;
    vfio_irq_set s{};
    s.argsz = sizeof s;
    s.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK;
    s.index = VFIO_PCI_INTX_IRQ_INDEX;
    s.count = 1;
    ::ioctl(fd_, VFIO_DEVICE_SET_IRQS, &s);
}

void VfioDevice::unwire_irqs() {
    if (irq_ == ConfigIrq::Msix) disable_irqs(VFIO_PCI_MSIX_IRQ_INDEX);
    if (irq_ == ConfigIrq::Intx) disable_irqs(VFIO_PCI_INTX_IRQ_INDEX);
    irq_ = ConfigIrq::None;
}

std::unique_ptr<VfioDevice> open_vfio_device(const std::string& bdf) {
    std::shared_ptr<VfioContainer> c = vfio_container();
    const int fd = c->open_device_fd(bdf);
    return std::make_unique<VfioDevice>(std::move(c), bdf, fd);
}

}  // namespace vireo
