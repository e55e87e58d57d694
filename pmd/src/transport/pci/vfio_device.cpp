// VfioDevice: a vfio-pci device's BARs, config space, IRQs and reset.
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "transport/pci/vfio_device.hpp"
#include "vireo/base/error.hpp"

namespace vireo {

VfioDevice::VfioDevice(std::shared_ptr<VfioContainer> container, std::string name, int fd)
    : container_(std::move(container)), dev_(std::move(name), fd) {
    if (!(dev_.flags() & VFIO_DEVICE_FLAGS_PCI)) throw Error("VFIO device " + bdf() + " is not a PCI device");
    if (dev_.num_regions() <= VFIO_PCI_CONFIG_REGION_INDEX)
        throw Error("VFIO device " + bdf() + " has no PCI config region");
    config_offset_ = region_info(VFIO_PCI_CONFIG_REGION_INDEX).offset;
}

VfioDevice::~VfioDevice() {
    unwire_irqs();
    if (irq_efd_ >= 0) ::close(irq_efd_);
    for (int fd : vector_efds_) ::close(fd);
}

bool VfioDevice::can_reset() const noexcept { return (dev_.flags() & VFIO_DEVICE_FLAGS_RESET) != 0; }

PciMappedBar VfioDevice::map_bar(uint32_t bar) const {
    if (bar > VFIO_PCI_BAR5_REGION_INDEX) throw Error(bdf() + ": BAR " + std::to_string(bar) + " does not exist");
    VfioRegionInfo r = region_info(VFIO_PCI_BAR0_REGION_INDEX + bar);
    if (r.size == 0) throw Error(bdf() + ": BAR " + std::to_string(bar) + " is empty");
    if (!r.mappable())
        throw Error(bdf() + ": BAR " + std::to_string(bar) + " cannot be mmapped (an I/O BAR, or vfio-pci refused it)");
    return PciMappedBar(dev_.map_region(r, "BAR " + std::to_string(bar)), r.size);
}

void VfioDevice::config_read(uint32_t offset, void* buf, size_t len) const {
    dev_.read_at(config_offset_ + offset, buf, len, "config space at " + std::to_string(offset));
}

void VfioDevice::config_write(uint32_t offset, const void* buf, size_t len) const {
    dev_.write_at(config_offset_ + offset, buf, len, "config space at " + std::to_string(offset));
}

bool VfioDevice::reset() const {
    if (!can_reset()) return false;
    if (::ioctl(dev_.fd(), VFIO_DEVICE_RESET) < 0) throw_sys_error("VFIO_DEVICE_RESET(" + bdf() + ")", errno);
    return true;
}

ConfigIrq VfioDevice::wire_config_irq(uint16_t msix_vectors) {
    if (msix_vectors > 0 && num_irqs() > VFIO_PCI_MSIX_IRQ_INDEX) {
        const uint32_t table = irq_info(VFIO_PCI_MSIX_IRQ_INDEX).count;
        const uint32_t n = std::min<uint32_t>(table, msix_vectors);
        if (n > 0) {
            while (vector_efds_.size() < n) vector_efds_.push_back(make_eventfd(bdf()));
            dev_.set_irq_eventfds(VFIO_PCI_MSIX_IRQ_INDEX, 0, vector_efds_);
            return irq_ = ConfigIrq::Msix;
        }
    }
    if (num_irqs() > VFIO_PCI_INTX_IRQ_INDEX && irq_info(VFIO_PCI_INTX_IRQ_INDEX).count > 0) {
        if (irq_efd_ < 0) irq_efd_ = make_eventfd(bdf());
        dev_.set_irq_eventfds(VFIO_PCI_INTX_IRQ_INDEX, 0, {irq_efd_});
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
    if (irq_ == ConfigIrq::Intx) dev_.unmask_irq(VFIO_PCI_INTX_IRQ_INDEX);
}

void VfioDevice::unwire_irqs() {
    if (irq_ == ConfigIrq::Msix) dev_.disable_irqs(VFIO_PCI_MSIX_IRQ_INDEX);
    if (irq_ == ConfigIrq::Intx) dev_.disable_irqs(VFIO_PCI_INTX_IRQ_INDEX);
    irq_ = ConfigIrq::None;
}

std::unique_ptr<VfioDevice> open_vfio_device(const std::string& bdf) {
    std::shared_ptr<VfioContainer> c = vfio_container();
    const int fd = c->open_device_fd(bdf);
    return std::make_unique<VfioDevice>(std::move(c), bdf, fd);
}

}  // namespace vireo
