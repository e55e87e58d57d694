// DeviceSet: probe every device, then let the IOVA policy (iova_policy.hpp)
// choose the process's mode; this file only applies its plan.
#include "vireo/pmd/device_set.hpp"

#include "vireo/base/error.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

DeviceSet::DeviceSet(DeviceSet&&) noexcept = default;
DeviceSet& DeviceSet::operator=(DeviceSet&&) noexcept = default;
DeviceSet::~DeviceSet() = default;

DeviceSet DeviceSet::probe(const std::vector<std::string>& devices, std::optional<IovaMode> forced) {
    if (devices.empty()) throw Error("no devices to open: give at least one device string");
    DeviceSet s;
    std::vector<DeviceDmaFacts> facts;
    for (const std::string& d : devices) {
        ProbedDevice p;
        p.device = d;
        p.spec = parse_device_string(d);
        s.transports_.push_back(open_transport(p.spec));
        Transport& t = *s.transports_.back();
        facts.push_back(dma_facts_of(t, p.spec));
        p.dma = {t.device_features(),
                 virtio::has(t.device_features(), virtio::feature::kAccessPlatform),
                 facts.back().traits.iommu,
                 {}};
        s.devices_.push_back(std::move(p));
    }
    ProcessDmaPlan plan = plan_process_dma(facts, forced);
    if (!plan.ok) {
        const DmaReport& r = s.devices_[plan.device].dma;
        throw Error(s.transports_[plan.device]->describe() + " (VIRTIO_F_ACCESS_PLATFORM, bit 33, " +
                    (r.access_platform ? "offered" : "not offered") + "; IOMMU " + std::string(to_string(r.iommu)) +
                    ") cannot be used: " + plan.error);
    }
    s.mode_ = plan.mode;
    s.pa_source_ = plan.pa_source;
    for (size_t i = 0; i < s.devices_.size(); i++) s.devices_[i].dma.plan = plan.devices[i];
    return s;
}

DmaMemoryOptions DeviceSet::memory_options() const {
    DmaMemoryOptions o;
    o.mode = mode_;
    o.pa_source = pa_source_;
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
