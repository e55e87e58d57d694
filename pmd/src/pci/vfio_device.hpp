// vireo: a PCI device bound to vfio-pci, the device side of VFIO: its
// regions (BARs, config space), IRQs and reset (linux/vfio.h). The IOMMU side,
// the container, is iova/'s (vireo/iova/vfio.hpp).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vireo/iova/vfio.hpp"

namespace vireo {

// One BAR mapped into the process; unmapped when destroyed.
class VfioMappedBar {
public:
    VfioMappedBar() = default;
    VfioMappedBar(void* base, size_t len) : base_(base), len_(len) {}
    VfioMappedBar(VfioMappedBar&& o) noexcept;
    VfioMappedBar& operator=(VfioMappedBar&& o) noexcept;
    VfioMappedBar(const VfioMappedBar&) = delete;
    VfioMappedBar& operator=(const VfioMappedBar&) = delete;
    ~VfioMappedBar();
    uint8_t* base() const noexcept { return static_cast<uint8_t*>(base_); }
    size_t size() const noexcept { return len_; }

private:
    void* base_ = nullptr;
    size_t len_ = 0;
};

struct VfioRegionInfo {
    uint32_t index = 0;
    uint32_t flags = 0;  // VFIO_REGION_INFO_FLAG_READ/WRITE/MMAP
    uint64_t size = 0;
    uint64_t offset = 0;  // of the region within the device fd
    bool mappable() const noexcept;
};

struct VfioIrqInfo {
    uint32_t index = 0;
    uint32_t flags = 0;
    uint32_t count = 0;
};

// A PCI device bound to vfio-pci. Keeps its container (and so the group and
// the DMA maps) alive.
class VfioDevice {
public:
    VfioDevice(std::shared_ptr<VfioContainer> container, std::string bdf, int fd);
    VfioDevice(const VfioDevice&) = delete;
    VfioDevice& operator=(const VfioDevice&) = delete;
    ~VfioDevice();

    const std::string& bdf() const noexcept { return bdf_; }
    int fd() const noexcept { return fd_; }
    VfioContainer& container() const noexcept { return *container_; }
    uint32_t num_regions() const noexcept { return num_regions_; }
    uint32_t num_irqs() const noexcept { return num_irqs_; }
    bool can_reset() const noexcept { return can_reset_; }

    VfioRegionInfo region_info(uint32_t index) const;
    // Maps a whole BAR (0..5); throws when it is empty or not mappable.
    VfioMappedBar map_bar(uint32_t bar) const;

    // PCI configuration space (VFIO_PCI_CONFIG_REGION_INDEX), little-endian.
    void config_read(uint32_t offset, void* buf, size_t len) const;
    void config_write(uint32_t offset, const void* buf, size_t len) const;
    uint8_t config_read8(uint32_t offset) const;
    uint16_t config_read16(uint32_t offset) const;
    uint32_t config_read32(uint32_t offset) const;
    void config_write16(uint32_t offset, uint16_t v) const;
    // Sets Memory Space and Bus Master in the command register (PCI 3.0 6.2.2).
    void enable_bus_master() const;
    // VFIO_DEVICE_RESET (function-level or equivalent); false when unsupported.
    bool reset() const;

    VfioIrqInfo irq_info(uint32_t index) const;
    // Routes vectors [start, start + fds.size()) of an IRQ index (VFIO_PCI_MSIX_IRQ_INDEX,
    // VFIO_PCI_INTX_IRQ_INDEX...) to eventfds.
    void set_irq_eventfds(uint32_t index, uint32_t start, const std::vector<int>& fds) const;
    void disable_irqs(uint32_t index) const;

private:
    std::shared_ptr<VfioContainer> container_;
    std::string bdf_;
    int fd_ = -1;
    uint32_t num_regions_ = 0, num_irqs_ = 0;
    bool can_reset_ = false;
    uint64_t config_offset_ = 0;
};

// Opens the device through the process's container (vfio_container()).
std::unique_ptr<VfioDevice> open_vfio_device(const std::string& bdf);

}  // namespace vireo
