// vireo: finding virtio-mmio devices (microVMs: QEMU microvm, Firecracker; arm
// boards) and what each would get (vireo-fwd --list): platform devices whose
// modalias says virtio-mmio (ACPI LNRO0005, device tree virtio,mmio, or the
// kernel command line's virtio-mmio.N) or that the virtio-mmio driver holds.
#pragma once

#include <string>
#include <vector>

#include "vireo/pmd/transport.hpp"

namespace vireo {

struct MmioNetDevice {
    std::string name;     // as /sys/bus/platform/devices names it: "LNRO0005:00"
    std::string driver;   // bound driver ("" = none)
    std::string address;  // its registers' physical address (/proc/iomem; "?" when unreadable)
    std::string kind;     // "net", "virtio device type N", "empty slot", or "?" (not read)
    bool probed = false;  // bound to vfio-platform or to nothing, and opened
    DmaReport dma;        // its bit 33, IOMMU, and what vireo would do with it on its own
    std::string access;   // "vfio-platform" or "/dev/mem", when probed
    std::string note;     // why it was not probed, or the plan's error
};

// Every virtio-mmio platform device, sorted by name. With probe, each one
// bound to vfio-platform or to nothing is opened (which resets it) to read its
// type and features.
std::vector<MmioNetDevice> list_virtio_mmio(bool probe = true, const std::string& sysfs = "/sys",
                                            const std::string& iomem = "/proc/iomem");

// A table for humans: device, address, driver, type, access, bit 33, IOMMU, mode.
std::string format_mmio_list(const std::vector<MmioNetDevice>& devices);

}  // namespace vireo
