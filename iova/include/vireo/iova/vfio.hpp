// vireo: VFIO from userspace, as RAII objects over the kernel's uapi
// (linux/vfio.h, Documentation/driver-api/vfio.rst).
//
//   container (/dev/vfio/vfio)  one per process: the IOMMU context and its DMA maps
//     group   (/dev/vfio/N)     the unit of isolation; joins the container
//       device (fd from group)  regions (BARs, config space), IRQs, reset
//
// DMA: VfioContainer::attach(mem) maps every region of a DmaMemory into the
// IOMMU as the memory's IovaMap says (iova = va in VA mode; iova = pa, run by
// physically contiguous run, in PA mode) and keeps doing so for regions added
// later. In no-IOMMU mode nothing is mapped: the device sees physical addresses.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vireo/iova/iova_mode.hpp"

namespace vireo {

class DmaMemory;
class VfioContainer;

struct VfioIovaRange {
    uint64_t start, last;  // inclusive
};

// What the IOMMU accepts (VFIO_IOMMU_GET_INFO and its capability chain).
struct VfioIommuInfo {
    uint64_t page_sizes = 0;            // bitmap: bit n set = 2^n-byte pages supported
    std::vector<VfioIovaRange> ranges;  // usable IOVA ranges (empty: the kernel did not say)
    uint32_t dma_avail = 0;             // mappings still allowed (0: the kernel did not say)
    // Highest usable IOVA, from the ranges (the address width, e.g. 2^39 - 1 for a 39-bit vIOMMU).
    uint64_t max_iova() const noexcept;
    uint64_t min_page_size() const noexcept { return page_sizes & (~page_sizes + 1); }
};

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

// The process's IOMMU context. Create it through vfio_container() so that
// every device shares it (one container, several groups).
class VfioContainer : public std::enable_shared_from_this<VfioContainer> {
public:
    // Opens /dev/vfio/vfio and checks VFIO_API_VERSION. The IOMMU type is set
    // when the first group joins (type1 v2, or no-IOMMU for noiommu groups).
    VfioContainer();
    VfioContainer(const VfioContainer&) = delete;
    VfioContainer& operator=(const VfioContainer&) = delete;
    ~VfioContainer();  // detaches memories, unmaps all DMA, closes groups

    // Opens the device at a PCI address (e.g. "0000:00:10.0"), joining its group.
    // Throws with the fix when the device is not bound to vfio-pci.
    std::unique_ptr<VfioDevice> open_device(const std::string& bdf);

    // None until a group has joined.
    IommuKind iommu() const noexcept { return iommu_; }
    const VfioIommuInfo& info() const noexcept { return info_; }

    // One mapping; checks page size and address range first and says what to change.
    void map_dma(uint64_t iova, const void* va, size_t len);
    void unmap_dma(uint64_t iova, size_t len);
    size_t mapping_count() const noexcept { return maps_.size(); }

    // Maps every region of mem as its IovaMap translates it, now and as regions
    // are added. A second attach of the same memory does nothing. The memory
    // must outlive the container or be detached first.
    void attach(DmaMemory& mem);
    void detach(DmaMemory& mem);

private:
    struct Group {
        int number;
        int fd;
    };
    struct Mapping {
        uint64_t iova;
        size_t len;
    };
    struct Attached {
        DmaMemory* mem;
        size_t listener;
    };
    void join_group(int number, bool noiommu);
    void set_iommu(bool noiommu);
    void read_iommu_info();
    void map_region(const DmaMemory& mem, size_t index);
    void check_fits(uint64_t iova, const void* va, size_t len) const;

    int fd_ = -1;
    IommuKind iommu_ = IommuKind::None;
    VfioIommuInfo info_;
    std::vector<Group> groups_;
    std::vector<Mapping> maps_;
    std::vector<Attached> attached_;
};

// The process-wide container, created on first use and shared by every VFIO
// device; it goes away with the last device holding it.
std::shared_ptr<VfioContainer> vfio_container();

// The IOMMU group of a PCI device from sysfs, and whether it is a VFIO
// no-IOMMU group (/dev/vfio/noiommu-N); -1 when the device has none.
struct VfioGroupOf {
    int number = -1;
    bool noiommu = false;
};
VfioGroupOf vfio_group_of(const std::string& bdf, const std::string& sysfs = "/sys");

}  // namespace vireo
