// vireo: the device side of VFIO, whatever the bus (linux/vfio.h): one
// device fd, its regions (read, written or mmapped at the offsets the kernel
// gives) and its interrupts (eventfds per IRQ index). vfio-pci
// (pci/vfio_device.hpp) and vfio-platform (mmio/vfio_platform_device.hpp) use
// it; the IOMMU side, the container, is iova/'s (vireo/iova/vfio.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vireo {

struct VfioRegionInfo {
    uint32_t index = 0;
    uint32_t flags = 0;  // VFIO_REGION_INFO_FLAG_READ/WRITE/MMAP
    uint64_t size = 0;
    uint64_t offset = 0;  // of the region within the device fd
    bool mappable() const noexcept;
};

struct VfioIrqInfo {
    uint32_t index = 0;
    uint32_t flags = 0;  // VFIO_IRQ_INFO_EVENTFD, MASKABLE, AUTOMASKED, NORESIZE
    uint32_t count = 0;
};

class VfioDeviceFd {
public:
    // Takes `fd` (from VfioContainer::open_device_fd); `name` is for errors.
    // Reads VFIO_DEVICE_GET_INFO; closes the fd and throws when that fails.
    VfioDeviceFd(std::string name, int fd);
    VfioDeviceFd(const VfioDeviceFd&) = delete;
    VfioDeviceFd& operator=(const VfioDeviceFd&) = delete;
    ~VfioDeviceFd();

    const std::string& name() const noexcept { return name_; }
    int fd() const noexcept { return fd_; }
    uint32_t flags() const noexcept { return flags_; }  // VFIO_DEVICE_FLAGS_PCI / PLATFORM / RESET ...
    uint32_t num_regions() const noexcept { return num_regions_; }
    uint32_t num_irqs() const noexcept { return num_irqs_; }

    VfioRegionInfo region_info(uint32_t index) const;
    // mmap of a whole region (it must be mappable); the caller munmaps.
    void* map_region(const VfioRegionInfo& r, const std::string& what) const;
    // Exactly `len` bytes at `offset` of the fd (a region's offset plus the
    // field's); the kernel makes each aligned 4-, 2- or 1-byte piece one access.
    void read_at(uint64_t offset, void* buf, size_t len, const std::string& what) const;
    void write_at(uint64_t offset, const void* buf, size_t len, const std::string& what) const;

    VfioIrqInfo irq_info(uint32_t index) const;
    // Routes vectors [start, start + fds.size()) of an IRQ index to eventfds.
    void set_irq_eventfds(uint32_t index, uint32_t start, const std::vector<int>& fds) const;
    void disable_irqs(uint32_t index) const;
    // A level-triggered line VFIO masked when it fired (AUTOMASKED): let it fire again.
    void unmask_irq(uint32_t index) const noexcept;

private:
    std::string name_;
    int fd_ = -1;
    uint32_t flags_ = 0, num_regions_ = 0, num_irqs_ = 0;
};

// A new non-blocking eventfd; throws naming `what` when the kernel refuses.
int make_eventfd(const std::string& what);

}  // namespace vireo
