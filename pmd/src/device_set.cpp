// DeviceSet: probe every device, then choose the process's IOVA mode with the
// one rule in iova/ (decide_process_iova_mode).
#include "vireo/pmd/device_set.hpp"

#include <filesystem>

#include "pci/virtio_pci_transport.hpp"
#include "vhost_user/transport.hpp"
#include "vireo/base/error.hpp"
#include "vireo/iova/pagemap.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

std::unique_ptr<Transport> open_transport(const DeviceSpec& spec) {
    if (spec.kind == DeviceSpec::Kind::Pci) {
        std::error_code ec;
        if (!std::filesystem::exists("/sys/bus/pci/devices/" + spec.path, ec))
            throw Error("pci:" + spec.path +
                        ": no such PCI device (lspci -D lists them; vireo-fwd --list shows the "
                        "virtio-net ones)");
        try {
            return std::make_unique<VirtioPciTransport>(vfio_container()->open_device(spec.path));
        } catch (const Error& e) {
            const std::string w = e.what();
            if (w.find(spec.path) != std::string::npos) throw;
            throw Error("pci:" + spec.path + ": " + w, e.sys_errno());
        }
    }
    VhostUserOptions vo;
    vo.path = spec.path;
    vo.server = spec.server;
    vo.timeout_ms = spec.timeout_ms;
    vo.reply_timeout_ms = spec.reply_timeout_ms;
    vo.mac = spec.mac;
    vo.mac_given = spec.mac_given;
    vo.mtu = spec.mtu;
    return std::make_unique<VhostUserTransport>(vo);
}

IovaInputs iova_inputs_of(Transport& t, const DeviceSpec& spec) {
    using virtio::feature::kAccessPlatform;
    IovaInputs in;
    in.access_platform_offered =
        virtio::has(t.device_features(), kAccessPlatform) && virtio::has(spec.wanted_features, kAccessPlatform);
    in.iommu = t.iommu();
    // Over vhost-user we publish the guest-physical layout ourselves.
    in.physical_addresses_available = in.iommu == IommuKind::VhostIotlb || physical_addresses_readable();
    // User space reaches 2^47 (4-level paging); a narrower IOMMU cannot map IOVA = VA.
    in.iommu_covers_va = t.iommu_max_iova() >= (uint64_t{1} << 47) - 1;
    in.forced = spec.iova;
    return in;
}

DeviceSet::DeviceSet(DeviceSet&&) noexcept = default;
DeviceSet& DeviceSet::operator=(DeviceSet&&) noexcept = default;
DeviceSet::~DeviceSet() = default;

DeviceSet DeviceSet::probe(const std::vector<std::string>& devices, std::optional<IovaMode> forced) {
    if (devices.empty()) throw Error("no devices to open: give at least one device string");
    DeviceSet s;
    std::vector<IovaInputs> inputs;
    for (const std::string& d : devices) {
        ProbedDevice p;
        p.device = d;
        p.spec = parse_device_string(d);
        s.transports_.push_back(open_transport(p.spec));
        Transport& t = *s.transports_.back();
        p.device_features = t.device_features();
        p.access_platform = virtio::has(p.device_features, virtio::feature::kAccessPlatform);
        p.iommu = t.iommu();
        inputs.push_back(iova_inputs_of(t, p.spec));
        s.devices_.push_back(std::move(p));
    }
    ProcessIovaDecision pd = decide_process_iova_mode(inputs, forced);
    if (!pd.ok) {
        const ProbedDevice& p = s.devices_[pd.device];
        throw Error(s.transports_[pd.device]->describe() + " (VIRTIO_F_ACCESS_PLATFORM, bit 33, " +
                    (p.access_platform ? "offered" : "not offered") + "; IOMMU " + std::string(to_string(p.iommu)) +
                    ") cannot be used: " + pd.error);
    }
    s.mode_ = pd.mode;
    // PA over vhost-user is a layout we publish; PA over VFIO is the real one.
    bool vhost = false, pci = false;
    for (size_t i = 0; i < s.devices_.size(); i++) {
        s.devices_[i].decision = pd.devices[i];
        (s.devices_[i].spec.kind == DeviceSpec::Kind::Pci ? pci : vhost) = true;
    }
    if (s.mode_ == IovaMode::PA && vhost && pci)
        throw Error(
            "IOVA mode pa cannot serve vhost-user and PCI devices in one process (vhost-user needs a "
            "published guest-physical layout, PCI the real physical addresses): give the PCI devices "
            "iommu_platform=on and the vhost-user back ends iommu-support=1, then use --iova-mode=va");
    return s;
}

DmaMemoryOptions DeviceSet::memory_options() const {
    DmaMemoryOptions o;
    o.mode = mode_;
    bool pci = false;
    for (const auto& d : devices_) pci |= d.spec.kind == DeviceSpec::Kind::Pci;
    o.pa_source = pci ? PaSource::Pagemap : PaSource::Linear;
    return o;
}

std::unique_ptr<NetPort> DeviceSet::open_port(size_t i, DmaMemory& mem, PacketPool& pool) {
    if (i >= transports_.size()) throw Error("DeviceSet::open_port: no device " + std::to_string(i));
    if (transports_[i] == nullptr) throw Error(devices_[i].device + ": its port was opened already");
    if (pool.mode() != mem.mode()) throw Error("the packet pool's IOVA mode differs from the DMA memory's");
    DeviceSpec spec = devices_[i].spec;
    if (!spec.iova) spec.iova = mode_;  // the mode probe() chose is this device's, not its solo preference
    return std::make_unique<NetPort>(std::move(transports_[i]), spec, mem, pool, static_cast<uint16_t>(i));
}

}  // namespace vireo
