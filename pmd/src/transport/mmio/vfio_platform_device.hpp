// vireo: a virtio-mmio device bound to vfio-platform. Its first memory region
// holds the registers: mmapped when VFIO allows it (a region of whole pages),
// else read and written through the device fd, one access per register (QEMU's
// microvm slots are 0x200 bytes, so there every QueueNotify is a pwrite). Its
// first interrupt is the device's line, level-triggered: VFIO masks it when it
// fires (AUTOMASKED) and irq_handled() unmasks it. DMA goes through the
// process's VFIO container: an IOMMU group, or no-IOMMU mode.
#pragma once

#include <memory>
#include <string>

#include "transport/mmio/mmio_device.hpp"
#include "transport/vfio_device_fd.hpp"
#include "vireo/iova/vfio.hpp"

namespace vireo {

class VfioPlatformDevice final : public MmioDevice {
public:
    VfioPlatformDevice(std::shared_ptr<VfioContainer> container, std::string name, int fd);
    VfioPlatformDevice(const VfioPlatformDevice&) = delete;
    VfioPlatformDevice& operator=(const VfioPlatformDevice&) = delete;
    ~VfioPlatformDevice() override;

    const std::string& name() const noexcept override { return dev_.name(); }
    const char* access() const noexcept override { return "vfio-platform"; }
    uint32_t read32(uint32_t offset) const override;
    void write32(uint32_t offset, uint32_t value) const override;
    void read_bytes(uint32_t offset, void* out, uint32_t len) const override;
    Doorbell notify_doorbell() const override;
    int irq_fd() const noexcept override { return irq_efd_; }
    void irq_handled() noexcept override;
    IommuKind iommu() const override { return container_->iommu(); }
    uint64_t max_iova() const override { return container_->info().max_iova(); }
    void attach_memory(DmaMemory& mem, const DmaPlan& plan) override { container_->attach(mem, plan); }

    bool mapped() const noexcept { return regs_ != nullptr; }

private:
    std::shared_ptr<VfioContainer> container_;
    VfioDeviceFd dev_;
    VfioRegionInfo region_;
    void* map_ = nullptr;  // the region, when mappable
    volatile uint8_t* regs_ = nullptr;
    int irq_efd_ = -1;
    bool automasked_ = false;
};

std::unique_ptr<VfioPlatformDevice> open_vfio_platform_device(const std::string& name, const std::string& bind_hint);

}  // namespace vireo
