// vireo: the kernel's vhost devices a port could use, and the IOVA policy's
// row each would get (vireo-fwd --list): every vDPA device bound to
// vhost_vdpa (/sys/bus/vdpa/devices/NAME/vhost-vdpa-N), and /dev/vhost-net.
#pragma once

#include <string>
#include <vector>

#include "vireo/pmd/transport.hpp"

namespace vireo {

struct KernelVhostDevice {
    std::string device;  // as a device string: "vhost-vdpa:/dev/vhost-vdpa-0", "vhost-net:tap=NAME"
    std::string detail;  // vDPA: its name and IOVA range; vhost-net: the node
    bool probed = false;
    DmaReport dma;     // its bit 33, its IOMMU, and the plan it would get on its own
    std::string note;  // why it was not probed, or the plan's error
};

std::vector<KernelVhostDevice> list_kernel_vhost(const std::string& sysfs = "/sys", const std::string& dev = "/dev");

// A table for humans: device, bit 33, IOMMU, mode and why.
std::string format_kernel_vhost_list(const std::vector<KernelVhostDevice>& devices);

}  // namespace vireo
