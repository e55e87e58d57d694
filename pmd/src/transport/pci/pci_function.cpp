// PciFunction's shared parts, and choosing the kernel driver's way in.
#include "transport/pci/pci_function.hpp"

#include <sys/mman.h>

#include <filesystem>
#include <utility>

#include "transport/pci/uio_device.hpp"
#include "transport/pci/vfio_device.hpp"
#include "vireo/base/error.hpp"

namespace vireo {
namespace {

namespace fs = std::filesystem;

bool folder_has_entries(const std::string& path) {
    std::error_code ec;
    fs::directory_iterator it(path, ec);
    return !ec && it != fs::directory_iterator();
}

std::string bind_lines(const std::string& bdf, const std::string& driver, const std::string& to) {
    const std::string dev = "/sys/bus/pci/devices/" + bdf;
    std::string s = "    echo " + to + " > " + dev + "/driver_override\n";
    if (!driver.empty()) s += "    echo " + bdf + " > " + dev + "/driver/unbind\n";
    s += "    echo " + bdf + " > /sys/bus/pci/drivers_probe\n";
    return s;
}

}  // namespace

PciMappedBar::PciMappedBar(PciMappedBar&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)), len_(std::exchange(o.len_, 0)) {}

PciMappedBar& PciMappedBar::operator=(PciMappedBar&& o) noexcept {
    if (this != &o) {
        if (base_ != nullptr) ::munmap(base_, len_);
        base_ = std::exchange(o.base_, nullptr);
        len_ = std::exchange(o.len_, 0);
    }
    return *this;
}

PciMappedBar::~PciMappedBar() {
    if (base_ != nullptr) ::munmap(base_, len_);
}

uint8_t PciFunction::config_read8(uint32_t offset) const {
    uint8_t v;
    config_read(offset, &v, 1);
    return v;
}

uint16_t PciFunction::config_read16(uint32_t offset) const {
    uint16_t v;
    config_read(offset, &v, 2);
    return v;
}

uint32_t PciFunction::config_read32(uint32_t offset) const {
    uint32_t v;
    config_read(offset, &v, 4);
    return v;
}

void PciFunction::config_write16(uint32_t offset, uint16_t v) const { config_write(offset, &v, 2); }

void PciFunction::enable_bus_master() const {
    constexpr uint32_t kCommand = 0x04;
    constexpr uint16_t kMemorySpace = 1u << 1, kBusMaster = 1u << 2;
    const uint16_t cmd = config_read16(kCommand);
    if ((cmd & (kMemorySpace | kBusMaster)) != (kMemorySpace | kBusMaster))
        config_write16(kCommand, cmd | kMemorySpace | kBusMaster);
}

std::string pci_binding_advice(const std::string& bdf, const std::string& driver, const std::string& sysfs) {
    // An IOMMU the kernel uses puts every device in a group; without one the
    // folder is empty (or absent).
    const bool iommu = folder_has_entries(sysfs + "/kernel/iommu_groups");
    const bool noiommu_vfio = fs::exists(sysfs + "/module/vfio/parameters/enable_unsafe_noiommu_mode");
    std::string s = "pci:" + bdf + " is bound to " + (driver.empty() ? std::string("no driver") : driver) +
                    ", not to one vireo drives from user space (vfio-pci or uio_pci_generic). As root, bind it" +
                    (driver.empty() ? "" : " (the kernel's own use of it ends)") + " with one of:\n";
    const std::string vfio_iommu =
        "  vfio-pci behind the IOMMU (safe; IOVA = VA when the device offers bit 33)" +
        std::string(iommu ? "" : " [this machine shows no IOMMU: " + sysfs + "/kernel/iommu_groups is empty]") +
        ":\n    modprobe vfio-pci\n" + bind_lines(bdf, driver, "vfio-pci");
    const std::string vfio_noiommu =
        "  vfio-pci without an IOMMU (unsafe: the device reaches all memory; needs a kernel built with "
        "CONFIG_VFIO_NOIOMMU" +
        std::string(noiommu_vfio ? ", which this one is"
                                 : "; Debian's is not, and this one shows no "
                                   "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode") +
        "):\n    modprobe vfio enable_unsafe_noiommu_mode=1\n    modprobe vfio-pci\n" +
        bind_lines(bdf, driver, "vfio-pci");
    const std::string uio =
        "  uio_pci_generic (no IOMMU: physical addresses, hugepages, --iova-mode=pa):\n"
        "    modprobe uio_pci_generic\n" +
        bind_lines(bdf, driver, "uio_pci_generic");
    if (iommu)
        s += vfio_iommu + vfio_noiommu + uio;
    else
        s += uio + vfio_noiommu + vfio_iommu;
    s += "(vireo-fwd --list shows every virtio-net device and its driver)";
    return s;
}

std::unique_ptr<PciFunction> open_pci_function(const std::string& bdf, const std::string& sysfs) {
    const std::string dir = sysfs + "/bus/pci/devices/" + bdf;
    std::error_code ec;
    if (!fs::exists(dir, ec))
        throw Error("pci:" + bdf +
                    ": no such PCI device (lspci -D lists them; vireo-fwd --list shows the "
                    "virtio-net ones)");
    const std::string driver = fs::read_symlink(dir + "/driver", ec).filename().string();
    if (driver == "vfio-pci") return open_vfio_device(bdf);
    if (driver == "uio_pci_generic") return std::make_unique<UioDevice>(bdf, sysfs);
    throw Error(pci_binding_advice(bdf, driver, sysfs));
}

}  // namespace vireo
