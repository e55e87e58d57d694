// vireo: a virtio-mmio device bound to no driver, reached through /dev/mem:
// the page holding its registers is mapped (O_SYNC: uncached). The kernel
// allows that (CONFIG_IO_STRICT_DEVMEM) only while no driver holds any region
// on that page, so every device sharing the page must be unbound too. There
// is no interrupt: the transport polls InterruptStatus. No IOMMU either: the
// device sees physical addresses. One process per device: an exclusive flock
// on the device's sysfs folder.
#pragma once

#include <string>

#include "transport/mmio/mmio_device.hpp"

namespace vireo {

class DevMemDevice final : public MmioDevice {
public:
    // `phys`: the registers' physical address range (from /proc/iomem);
    // `dev_dir`: the device's sysfs folder (locked); `devmem`: /dev/mem.
    DevMemDevice(std::string name, const IomemRange& phys, const std::string& dev_dir, const std::string& iomem_text,
                 const std::string& devmem = "/dev/mem");
    DevMemDevice(const DevMemDevice&) = delete;
    DevMemDevice& operator=(const DevMemDevice&) = delete;
    ~DevMemDevice() override;

    const std::string& name() const noexcept override { return name_; }
    const char* access() const noexcept override { return "/dev/mem"; }
    uint32_t read32(uint32_t offset) const override { return *reg(offset); }
    void write32(uint32_t offset, uint32_t value) const override { *reg(offset) = value; }
    void read_bytes(uint32_t offset, void* out, uint32_t len) const override;
    Doorbell notify_doorbell() const override;
    int irq_fd() const noexcept override { return -1; }
    void irq_handled() noexcept override {}
    IommuKind iommu() const override { return IommuKind::None; }
    uint64_t max_iova() const override { return ~uint64_t{0}; }
    // Nothing to map; refuses memory that is not in PA mode.
    void attach_memory(DmaMemory& mem, const DmaPlan& plan) override;

private:
    volatile uint32_t* reg(uint32_t offset) const noexcept {
        return reinterpret_cast<volatile uint32_t*>(regs_ + offset);
    }

    std::string name_;
    int lock_fd_ = -1;
    void* map_ = nullptr;
    size_t map_len_ = 0;
    volatile uint8_t* regs_ = nullptr;
};

}  // namespace vireo
