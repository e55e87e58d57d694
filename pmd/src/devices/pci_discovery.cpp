// Discovery of virtio-net PCI functions through sysfs (and their driver, vfio-pci
// or uio_pci_generic, for features).
#include "vireo/pmd/pci_discovery.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "transport/pci/virtio_pci_caps.hpp"
#include "transport/pci/virtio_pci_transport.hpp"
#include "vireo/base/error.hpp"
#include "vireo/iova/vfio.hpp"
#include "vireo/pmd/device_string.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {
namespace {

namespace fs = std::filesystem;

long read_number(const fs::path& p, int base) {
    std::ifstream f(p);
    std::string s;
    if (!f || !std::getline(f, s)) return -1;
    try {
        return std::stol(s, nullptr, base);
    } catch (...) {
        return -1;
    }
}

}  // namespace

std::vector<PciNetDevice> list_virtio_net_pci(bool probe, const std::string& sysfs) {
    std::vector<PciNetDevice> out;
    std::error_code ec;
    const fs::path root = fs::path(sysfs) / "bus/pci/devices";
    for (const auto& e : fs::directory_iterator(root, ec)) {
        const long vendor = read_number(e.path() / "vendor", 16);
        const long device = read_number(e.path() / "device", 16);
        if (vendor != virtio_pci::kVendorId ||
            (device != virtio_pci::kDeviceIdNetModern && device != virtio_pci::kDeviceIdNetTransitional))
            continue;
        PciNetDevice d;
        d.bdf = e.path().filename().string();
        d.device_id = static_cast<uint16_t>(device);
        std::error_code ec2;
        d.driver = fs::read_symlink(e.path() / "driver", ec2).filename().string();
        VfioGroupOf g = vfio_group_of(d.bdf, sysfs);
        d.iommu_group = g.number;
        d.noiommu_group = g.noiommu;
        d.numa_node = static_cast<int>(read_number(e.path() / "numa_node", 10));
        out.push_back(std::move(d));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.bdf < b.bdf; });
    if (!probe) return out;
    for (PciNetDevice& d : out) {
        if (d.driver != "vfio-pci" && d.driver != "uio_pci_generic") {
            d.note = "bound to " + (d.driver.empty() ? std::string("no driver") : d.driver) +
                     ", not vfio-pci or uio_pci_generic (pci:" + d.bdf + " as a device string says how to bind it)";
            continue;
        }
        try {
            DeviceSpec spec = parse_device_string("pci:" + d.bdf);
            std::unique_ptr<Transport> t = open_transport(spec);
            const DeviceDmaFacts facts = dma_facts_of(*t, spec);
            const virtio::Features f = t->device_features();
            d.dma = {f, virtio::has(f, virtio::feature::kAccessPlatform), facts.traits.iommu,
                     decide_dma(facts, dma_keys_of(spec), std::nullopt, confidential_guest(), "pci:" + d.bdf)};
            d.probed = true;
            if (!d.dma.plan.ok) d.note = d.dma.plan.error;
        } catch (const Error& err) {
            d.note = err.what();
        }
    }
    return out;
}

std::string format_device_list(const std::vector<PciNetDevice>& devices) {
    std::string s = "address       id    driver           group       numa  bit33  iommu         iova\n";
    char line[256];
    for (const auto& d : devices) {
        // The group as /dev/vfio names it: N, noiommu-N, or - without an IOMMU group.
        const std::string group = d.iommu_group < 0 ? "-"
                                  : d.noiommu_group ? "noiommu-" + std::to_string(d.iommu_group)
                                                    : std::to_string(d.iommu_group);
        std::snprintf(line, sizeof line, "%-13s %04x  %-15s  %-10s  %4d  %-5s  %-12s  %s\n", d.bdf.c_str(), d.device_id,
                      d.driver.empty() ? "-" : d.driver.c_str(), group.c_str(), d.numa_node,
                      d.probed ? (d.dma.access_platform ? "yes" : "no") : "?",
                      d.probed ? std::string(to_string(d.dma.iommu)).c_str() : "?",
                      d.probed && d.dma.plan.ok ? std::string(to_string(d.dma.plan.mode)).c_str() : "-");
        s += line;
        if (!d.note.empty()) s += "              " + d.note + "\n";
    }
    if (devices.empty()) s += "(no virtio-net PCI devices)\n";
    return s;
}

}  // namespace vireo
