// Choosing the way into a virtio-mmio platform device from the driver it is
// bound to, and the facts checked before any register is touched.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "transport/mmio/devmem_device.hpp"
#include "transport/mmio/mmio_device.hpp"
#include "transport/mmio/vfio_platform_device.hpp"
#include "vireo/base/error.hpp"

namespace vireo {
namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

bool folder_has_entries(const std::string& path) {
    std::error_code ec;
    fs::directory_iterator it(path, ec);
    return !ec && it != fs::directory_iterator();
}

}  // namespace

DmaCoherence mmio_dma_coherence(const std::string& device_dir, bool x86) {
    if (x86) return {true, "x86 snoops device DMA: coherent"};
    std::error_code ec;
    if (fs::exists(device_dir + "/of_node/dma-coherent", ec)) return {true, "its device-tree node says dma-coherent"};
    if (fs::exists(device_dir + "/of_node", ec))
        return {false,
                "its device-tree node lacks dma-coherent: the device's DMA does not snoop the CPU caches, and vireo "
                "does no cache maintenance (its rings would be read stale); give the node dma-coherent if the "
                "platform is coherent (QEMU's arm virt machine is), or use the kernel's virtio_mmio driver"};
    return {false,
            "vireo cannot tell whether its DMA is coherent (no device-tree node; an ACPI _CCA is not visible from "
            "sysfs) and does no cache maintenance: use the kernel's virtio_mmio driver on this platform"};
}

IomemRange iomem_range_of(const std::string& iomem_text, const std::string& name) {
    std::istringstream in(iomem_text);
    for (std::string line; std::getline(in, line);) {
        const auto sep = line.find(" : ");
        if (sep == std::string::npos || line.substr(sep + 3) != name) continue;
        unsigned long long s = 0, e = 0;
        if (std::sscanf(line.c_str(), " %llx-%llx", &s, &e) == 2) return {s, e};
    }
    return {};
}

std::string mmio_binding_advice(const std::string& name, const std::string& driver, const std::string& sysfs) {
    const std::string dev = "/sys/bus/platform/devices/" + name;
    const bool iommu = folder_has_entries(sysfs + "/kernel/iommu_groups");
    std::string s = "mmio:" + name + " is bound to " + (driver.empty() ? std::string("no driver") : driver) +
                    ", not to one vireo drives from user space (vfio-platform, or none for /dev/mem). As root, hand "
                    "it over" +
                    (driver.empty() ? "" : " (the kernel's own use of it ends)") + " with one of:\n";
    const std::string unbind = driver.empty() ? "" : "    echo " + name + " > " + dev + "/driver/unbind\n";
    s += "  vfio-platform (interrupts for link changes and --sleep-when-idle; " +
         std::string(iommu ? "behind the IOMMU"
                           : "no IOMMU here: vfio needs enable_unsafe_noiommu_mode=1, "
                             "CONFIG_VFIO_NOIOMMU") +
         "; vfio-platform is built for ARM only unless the kernel was configured otherwise, and a device "
         "without a reset method needs reset_required=0):\n    modprobe vfio-platform reset_required=0\n    echo "
         "vfio-platform > " +
         dev + "/driver_override\n" + unbind + "    echo " + name + " > /sys/bus/platform/drivers_probe\n";
    s += "  no driver at all (vireo maps the registers from /dev/mem, polls instead of interrupts; every device on "
         "the same 4 KiB page must be unbound too):\n" +
         (unbind.empty() ? std::string("    (already unbound)\n") : unbind);
    s += "(vireo-fwd --list shows every virtio-mmio device and its driver)";
    return s;
}

std::unique_ptr<MmioDevice> open_mmio_device(const std::string& name, const std::string& sysfs,
                                             const std::string& iomem) {
    const std::string dir = sysfs + "/bus/platform/devices/" + name;
    std::error_code ec;
    if (!fs::exists(dir, ec))
        throw Error("mmio:" + name + ": no such platform device (" + dir +
                    " is missing; vireo-fwd --list shows the virtio-mmio ones)");
#if defined(__x86_64__) || defined(__i386__)
    constexpr bool kX86 = true;
#else
    constexpr bool kX86 = false;
#endif
    const DmaCoherence coherence = mmio_dma_coherence(dir, kX86);
    if (!coherence.coherent) throw Error("mmio:" + name + ": " + coherence.why);
    const std::string driver = fs::read_symlink(dir + "/driver", ec).filename().string();
    if (driver == "vfio-platform")
        return open_vfio_platform_device(
            name,
            "without an IOMMU, VFIO gives a platform device a group only in no-IOMMU mode: load vfio with "
            "enable_unsafe_noiommu_mode=1 (a kernel built with CONFIG_VFIO_NOIOMMU) before binding it to "
            "vfio-platform, or leave it unbound for /dev/mem");
    if (!driver.empty()) throw Error(mmio_binding_advice(name, driver, sysfs));
    if (fs::exists(dir + "/iommu_group", ec))
        throw Error("mmio:" + name +
                    " sits behind an IOMMU (it has an iommu_group), so physical addresses from /dev/mem would not "
                    "reach memory: bind it to vfio-platform, which programs that IOMMU");
    const std::string text = read_file(iomem);
    const IomemRange r = iomem_range_of(text, name);
    if (r.start == 0 && r.end == 0)
        throw Error("mmio:" + name + ": " + iomem +
                    " shows no address for it (only root sees real addresses there; run as root)");
    return std::make_unique<DevMemDevice>(name, r, dir, text);
}

}  // namespace vireo
