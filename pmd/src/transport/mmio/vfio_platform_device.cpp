// VfioPlatformDevice: a virtio-mmio device through vfio-platform.
#include "transport/mmio/vfio_platform_device.hpp"

#include <linux/vfio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <utility>

#include "transport/mmio/virtio_mmio_regs.hpp"
#include "vireo/base/error.hpp"

namespace vireo {

VfioPlatformDevice::VfioPlatformDevice(std::shared_ptr<VfioContainer> container, std::string name, int fd)
    : container_(std::move(container)), dev_(std::move(name), fd) {
    const std::string what = "mmio:" + dev_.name();
    if (!(dev_.flags() & VFIO_DEVICE_FLAGS_PLATFORM)) throw Error(what + ": VFIO says it is not a platform device");
    if (dev_.num_regions() < 1) throw Error(what + ": vfio-platform shows no memory region");
    region_ = dev_.region_info(0);
    if (region_.size < virtio_mmio::kMinRegionSize)
        throw Error(what + ": its register region is " + std::to_string(region_.size) + " bytes, less than the " +
                    std::to_string(virtio_mmio::kMinRegionSize) + " of a virtio-mmio device");
    const uint32_t rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    if ((region_.flags & rw) != rw) throw Error(what + ": vfio-platform does not let its registers be written");
    // The line first, then the mapping: nothing that can fail comes after it
    // (the destructor does not run for a constructor that throws).
    if (dev_.num_irqs() >= 1) {
        const VfioIrqInfo irq = dev_.irq_info(0);
        if (irq.count >= 1 && (irq.flags & VFIO_IRQ_INFO_EVENTFD)) {
            irq_efd_ = make_eventfd(what);
            automasked_ = (irq.flags & VFIO_IRQ_INFO_AUTOMASKED) != 0;
        }
    }
    try {
        if (irq_efd_ >= 0) dev_.set_irq_eventfds(0, 0, {irq_efd_});
        if (region_.mappable()) {
            map_ = dev_.map_region(region_, "the registers");
            regs_ = static_cast<volatile uint8_t*>(map_);
        }
    } catch (...) {
        if (irq_efd_ >= 0) ::close(irq_efd_);
        throw;
    }
}

VfioPlatformDevice::~VfioPlatformDevice() {
    if (irq_efd_ >= 0) {
        dev_.disable_irqs(0);
        ::close(irq_efd_);
    }
    if (map_ != nullptr) ::munmap(map_, region_.size);
}

uint32_t VfioPlatformDevice::read32(uint32_t offset) const {
    if (regs_ != nullptr) return *reinterpret_cast<volatile uint32_t*>(regs_ + offset);
    uint32_t v = 0;
    dev_.read_at(region_.offset + offset, &v, 4, "register " + std::to_string(offset));
    return v;
}

void VfioPlatformDevice::write32(uint32_t offset, uint32_t value) const {
    if (regs_ != nullptr) {
        *reinterpret_cast<volatile uint32_t*>(regs_ + offset) = value;
        return;
    }
    dev_.write_at(region_.offset + offset, &value, 4, "register " + std::to_string(offset));
}

void VfioPlatformDevice::read_bytes(uint32_t offset, void* out, uint32_t len) const {
    auto* o = static_cast<uint8_t*>(out);
    if (regs_ != nullptr) {
        for (uint32_t i = 0; i < len; i++) o[i] = regs_[offset + i];
        return;
    }
    for (uint32_t i = 0; i < len; i++)  // one byte per access: what the config space allows at any offset
        dev_.read_at(region_.offset + offset + i, o + i, 1, "configuration byte " + std::to_string(offset + i));
}

Doorbell VfioPlatformDevice::notify_doorbell() const {
    if (regs_ != nullptr)
        return Doorbell::mmio32(reinterpret_cast<volatile uint32_t*>(regs_ + virtio_mmio::kQueueNotify));
    return Doorbell::pwrite32(dev_.fd(), region_.offset + virtio_mmio::kQueueNotify);
}

void VfioPlatformDevice::irq_handled() noexcept {
    if (automasked_) dev_.unmask_irq(0);
}

std::unique_ptr<VfioPlatformDevice> open_vfio_platform_device(const std::string& name, const std::string& bind_hint) {
    std::shared_ptr<VfioContainer> c = vfio_container();
    const int fd = c->open_device_fd(VfioDeviceName{"platform", name, "vfio-platform", bind_hint});
    return std::make_unique<VfioPlatformDevice>(std::move(c), name, fd);
}

}  // namespace vireo
