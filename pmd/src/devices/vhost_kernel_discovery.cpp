// The kernel's vhost devices and the DMA decision each would get: vDPA
// devices through their vhost-vdpa node (opened: features and IOVA range are
// the device's), vhost-net through /dev/vhost-net (its features; the tap does
// not matter to the decision).
#include "vireo/pmd/vhost_kernel_discovery.hpp"

#include <algorithm>
#include <filesystem>

#include "transport/vhost_kernel/vhost_net_transport.hpp"
#include "transport/vhost_kernel/vhost_vdpa_transport.hpp"
#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/iova/pagemap.hpp"
#include "vireo/pmd/device_string.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {
namespace {

namespace fs = std::filesystem;
using virtio::feature::kAccessPlatform;

void decide(KernelVhostDevice& d, const virtio::Features& features, const DeviceDmaFacts& facts,
            const DeviceSpec& spec) {
    d.dma = {features, virtio::has(features, kAccessPlatform), facts.traits.iommu,
             decide_dma(facts, dma_keys_of(spec), std::nullopt, confidential_guest(), d.device)};
    d.probed = true;
    if (!d.dma.plan.ok) d.note = d.dma.plan.error;
}

}  // namespace

std::vector<KernelVhostDevice> list_kernel_vhost(const std::string& sysfs, const std::string& dev) {
    std::vector<KernelVhostDevice> out;
    std::error_code ec;
    std::vector<fs::path> vdpa;
    for (const auto& e : fs::directory_iterator(fs::path(sysfs) / "bus/vdpa/devices", ec)) vdpa.push_back(e.path());
    std::sort(vdpa.begin(), vdpa.end());
    for (const fs::path& p : vdpa) {
        KernelVhostDevice d;
        std::string node;
        for (const auto& c : fs::directory_iterator(p, ec))
            if (c.path().filename().string().rfind("vhost-vdpa-", 0) == 0) node = c.path().filename().string();
        d.detail = "vDPA device " + p.filename().string();
        if (node.empty()) {
            std::error_code ec2;
            const std::string driver = fs::read_symlink(p / "driver", ec2).filename().string();
            d.device = "vdpa:" + p.filename().string();
            d.note = "bound to " + (driver.empty() ? std::string("no driver") : driver) +
                     ", not vhost_vdpa: modprobe vhost_vdpa, then echo " + p.filename().string() +
                     " > /sys/bus/vdpa/drivers/" + (driver.empty() ? "vhost_vdpa/bind" : driver + "/unbind") +
                     (driver.empty() ? "" : " and bind it to vhost_vdpa");
            out.push_back(std::move(d));
            continue;
        }
        d.device = "vhost-vdpa:" + (fs::path(dev) / node).string();
        try {
            const DeviceSpec spec = parse_device_string(d.device);
            VhostVdpaTransport t(spec.path);
            const vhost_vdpa_iova_range r = t.iova_range();
            d.detail += ", IOVA range " + hex(r.first) + ".." + hex(r.last);
            decide(d, t.device_features(), dma_facts_of(t, spec), spec);
        } catch (const Error& e) {
            d.note = e.what();
        }
        out.push_back(std::move(d));
    }
    const std::string net = (fs::path(dev) / "vhost-net").string();
    if (fs::exists(net, ec)) {
        KernelVhostDevice d;
        d.device = "vhost-net:tap=NAME";
        d.detail = net;
        try {
            vhost_kernel::VhostDevice v(net, "vhost_net");
            v.set_owner();
            const virtio::Features f = v.features();
            const DeviceSpec spec = parse_device_string("vhost-net:tap=NAME");
            DeviceDmaFacts facts;
            facts.access_platform_offered = virtio::has(f, kAccessPlatform);
            facts.traits = VhostNetTransport::traits();
            facts.pagemap_readable = physical_addresses_readable();
            decide(d, f, facts, spec);
        } catch (const Error& e) {
            d.note = e.what();
        }
        out.push_back(std::move(d));
    }
    return out;
}

std::string format_kernel_vhost_list(const std::vector<KernelVhostDevice>& devices) {
    std::string s = "kernel vhost device                    bit33  iommu         iova  why\n";
    char line[512];
    for (const auto& d : devices) {
        std::snprintf(line, sizeof line, "%-38s %-5s  %-12s  %-4s  %s\n", d.device.c_str(),
                      d.probed ? (d.dma.access_platform ? "yes" : "no") : "?",
                      d.probed ? std::string(to_string(d.dma.iommu)).c_str() : "?",
                      d.probed && d.dma.plan.ok ? std::string(to_string(d.dma.plan.mode)).c_str() : "-",
                      d.probed && d.dma.plan.ok ? d.dma.plan.why.c_str() : "");
        s += line;
        s += "                                       " + d.detail + "\n";
        if (!d.note.empty()) s += "                                       " + d.note + "\n";
    }
    if (devices.empty()) s += "(no vDPA device bound to vhost_vdpa, no /dev/vhost-net)\n";
    return s;
}

}  // namespace vireo
