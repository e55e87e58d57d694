// vireo: finding virtio-net PCI devices and what IOVA mode each would get.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vireo/pmd/transport.hpp"

namespace vireo {

struct PciNetDevice {
    std::string bdf;         // 0000:00:10.0
    uint16_t device_id = 0;  // 0x1041 modern, 0x1000 transitional
    std::string driver;      // bound driver ("" = none)
    int iommu_group = -1;
    bool noiommu_group = false;
    int numa_node = -1;  // -1: the platform does not say
    // Filled when the device is bound to vfio-pci or uio_pci_generic and could be opened:
    bool probed = false;
    DmaReport dma;     // its bit 33, IOMMU, and what vireo would do with it on its own
    std::string note;  // why it was not probed, or the plan's error
};

// Every virtio-net PCI function under sysfs (vendor 0x1af4, device 0x1041 or
// 0x1000), sorted by address. With probe, each one bound to vfio-pci (opened
// through the process's VFIO container) or uio_pci_generic is opened to read
// its features; a device another process holds is listed with a note instead.
std::vector<PciNetDevice> list_virtio_net_pci(bool probe = true, const std::string& sysfs = "/sys");

// A table for humans: address, driver, group, NUMA node, bit 33, mode.
std::string format_device_list(const std::vector<PciNetDevice>& devices);

}  // namespace vireo
