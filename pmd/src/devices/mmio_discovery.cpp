// Discovery of virtio-mmio platform devices through sysfs, and (for those
// vireo can open) their type, features and DMA decision.
#include "vireo/pmd/mmio_discovery.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "transport/mmio/mmio_device.hpp"
#include "transport/mmio/virtio_mmio_transport.hpp"
#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/pmd/device_string.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {
namespace {

namespace fs = std::filesystem;

std::string first_line(const fs::path& p) {
    std::ifstream f(p);
    std::string s;
    std::getline(f, s);
    return s;
}

bool is_virtio_mmio(const fs::path& dir, const std::string& driver) {
    const std::string alias = first_line(dir / "modalias");
    const std::string name = dir.filename().string();
    return driver == "virtio-mmio" || alias.rfind("acpi:LNRO0005:", 0) == 0 ||
           alias.find("Cvirtio,mmio") != std::string::npos || name.rfind("virtio-mmio.", 0) == 0;
}

// A device the kernel's virtio_mmio holds has a virtioN child; its device id says the type.
std::string kernel_virtio_kind(const fs::path& dir) {
    std::error_code ec;
    for (const auto& c : fs::directory_iterator(dir, ec)) {
        const std::string n = c.path().filename().string();
        if (n.rfind("virtio", 0) != 0 || n.rfind("virtio-", 0) == 0) continue;
        const std::string id = first_line(c.path() / "device");
        if (id.empty()) continue;
        const long type = std::strtol(id.c_str(), nullptr, 16);
        return type == 1 ? "net (" + n + ")" : "virtio device type " + std::to_string(type) + " (" + n + ")";
    }
    return "?";
}

}  // namespace

std::vector<MmioNetDevice> list_virtio_mmio(bool probe, const std::string& sysfs, const std::string& iomem) {
    std::vector<MmioNetDevice> out;
    std::error_code ec;
    std::stringstream iomem_text;
    iomem_text << std::ifstream(iomem).rdbuf();
    for (const auto& e : fs::directory_iterator(fs::path(sysfs) / "bus/platform/devices", ec)) {
        std::error_code ec2;
        const std::string driver = fs::read_symlink(e.path() / "driver", ec2).filename().string();
        if (!is_virtio_mmio(e.path(), driver)) continue;
        MmioNetDevice d;
        d.name = e.path().filename().string();
        d.driver = driver;
        const IomemRange r = iomem_range_of(iomem_text.str(), d.name);
        d.address = r.start != 0 ? hex(r.start) : "?";
        d.kind = driver == "virtio-mmio" ? kernel_virtio_kind(e.path()) : "?";
        out.push_back(std::move(d));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    if (!probe) return out;
    for (MmioNetDevice& d : out) {
        if (!d.driver.empty() && d.driver != "vfio-platform") {
            d.note = "held by " + d.driver + " (mmio:" + d.name + " as a device string says how to hand it over)";
            continue;
        }
        try {
            const DeviceSpec spec = parse_device_string("mmio:" + d.name);
            VirtioMmioTransport t(open_mmio_device(d.name, sysfs, iomem));
            d.kind = "net";
            d.access = t.device().access();
            const DeviceDmaFacts facts = dma_facts_of(t, spec);
            const virtio::Features f = t.device_features();
            d.dma = {f, virtio::has(f, virtio::feature::kAccessPlatform), facts.traits.iommu,
                     decide_dma(facts, dma_keys_of(spec), std::nullopt, confidential_guest(), "mmio:" + d.name)};
            d.probed = true;
            if (!d.dma.plan.ok) d.note = d.dma.plan.error;
        } catch (const Error& err) {
            d.note = err.what();
        }
    }
    return out;
}

std::string format_mmio_list(const std::vector<MmioNetDevice>& devices) {
    std::string s =
        "mmio device      address       driver          type           access         bit33  iommu         iova\n";
    char line[512];
    for (const auto& d : devices) {
        std::snprintf(line, sizeof line, "%-16s %-13s %-15s %-14s %-14s %-5s  %-12s  %s\n", d.name.c_str(),
                      d.address.c_str(), d.driver.empty() ? "-" : d.driver.c_str(), d.kind.c_str(),
                      d.access.empty() ? "-" : d.access.c_str(),
                      d.probed ? (d.dma.access_platform ? "yes" : "no") : "?",
                      d.probed ? std::string(to_string(d.dma.iommu)).c_str() : "?",
                      d.probed && d.dma.plan.ok ? std::string(to_string(d.dma.plan.mode)).c_str() : "-");
        s += line;
        if (!d.note.empty()) s += "                 " + d.note + "\n";
    }
    if (devices.empty()) s += "(no virtio-mmio devices)\n";
    return s;
}

}  // namespace vireo
