// vireo: the VFIO container, the IOMMU side of VFIO, as an RAII object over
// the kernel's uapi (linux/vfio.h, Documentation/driver-api/vfio.rst).
//
//   container (/dev/vfio/vfio)  one per process: the IOMMU context and its DMA maps
//     group   (/dev/vfio/N)     the unit of isolation; joins the container
//       device (fd from group)  regions, IRQs, reset: pmd/src/transport/pci/vfio_device.hpp
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
#include <optional>
#include <string>
#include <vector>

#include "vireo/base/address.hpp"
#include "vireo/iova/iova_mode.hpp"
#include "vireo/iova/iova_policy.hpp"

namespace vireo {

class DmaMemory;

// A device as VFIO finds it: its bus in sysfs, its name there (what
// VFIO_GROUP_GET_DEVICE_FD takes), the VFIO driver it must be bound to, and
// the commands that bind it (for the error; empty: vfio-pci's).
struct VfioDeviceName {
    std::string bus;     // "pci" or "platform"
    std::string name;    // "0000:00:10.0", "LNRO0005:00"
    std::string driver;  // "vfio-pci", "vfio-platform"
    std::string bind_hint;
};

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

// The process's IOMMU context. Create it through vfio_container() so that
// every device shares it (one container, several groups).
class VfioContainer {
public:
    // Opens /dev/vfio/vfio and checks VFIO_API_VERSION. The IOMMU type is set
    // when the first group joins (type1 v2, or no-IOMMU for noiommu groups).
    VfioContainer();
    VfioContainer(const VfioContainer&) = delete;
    VfioContainer& operator=(const VfioContainer&) = delete;
    ~VfioContainer();  // detaches memories, unmaps all DMA, closes groups

    // The device fd of a PCI address (e.g. "0000:00:10.0") or of another
    // bus's device, joining its group (VFIO_GROUP_GET_DEVICE_FD). Throws with
    // the fix when the device is not bound to its VFIO driver. The device side
    // lives in pmd/src/transport/vfio_device_fd.hpp.
    int open_device_fd(const std::string& bdf) { return open_device_fd(VfioDeviceName{"pci", bdf, "vfio-pci", ""}); }
    int open_device_fd(const VfioDeviceName& d);

    // None until a group has joined.
    IommuKind iommu() const noexcept { return iommu_; }
    const VfioIommuInfo& info() const noexcept { return info_; }

    // One mapping; checks page size and address range first and says what to change.
    void map_dma(Iova iova, const void* va, size_t len);
    void unmap_dma(Iova iova, size_t len);
    size_t mapping_count() const noexcept { return maps_.size(); }
    // Every DMA mapping made, as (iova, length): what devices in this container can reach.
    std::vector<std::pair<Iova, size_t>> mappings() const {
        std::vector<std::pair<Iova, size_t>> out;
        for (const Mapping& m : maps_) out.emplace_back(m.iova, m.len);
        return out;
    }

    // Gives a device's IOMMU what its DMA plan (iova_policy.hpp) says, for
    // every region of mem, now and as regions are added: IOVA = VA in VA mode,
    // IOVA = PA 1:1 when plan.map_identity_pa, nothing otherwise (no IOMMU
    // translates: VFIO no-IOMMU). A second attach of the same memory does
    // nothing. The memory must outlive the container or be detached first.
    void attach(DmaMemory& mem, const DmaPlan& plan);
    void detach(DmaMemory& mem);

private:
    struct Group {
        int number;
        int fd;
    };
    struct Mapping {
        Iova iova;
        size_t len;
    };
    struct Attached {
        DmaMemory* mem;
        std::optional<size_t> listener;  // none: the plan maps nothing
    };
    void join_group(int number, bool noiommu);
    void set_iommu(bool noiommu);
    void read_iommu_info();
    void map_region(const DmaMemory& mem, size_t index);  // IOVA-contiguous runs, as mem's IovaMap translates
    void check_fits(Iova iova, const void* va, size_t len) const;

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

// The IOMMU group of a PCI (or `bus`) device from sysfs, and whether it is a VFIO
// no-IOMMU group (/dev/vfio/noiommu-N); -1 when the device has none.
struct VfioGroupOf {
    int number = -1;
    bool noiommu = false;
};
VfioGroupOf vfio_group_of(const std::string& bdf, const std::string& sysfs = "/sys", const std::string& bus = "pci");

}  // namespace vireo
