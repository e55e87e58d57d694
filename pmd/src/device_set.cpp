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
    // Devices in window mode reach only their own windows: they take no part
    // in choosing the mode of the process's memory.
    std::vector<DeviceDmaFacts> facts;
    std::vector<size_t> direct;  // indexes of the devices that share it
    std::vector<DmaPlan> plans(devices.size());
    for (const std::string& d : devices) {
        ProbedDevice p;
        p.device = d;
        p.spec = parse_device_string(d);
        s.transports_.push_back(open_transport(p.spec));
        Transport& t = *s.transports_.back();
        DeviceDmaFacts f = dma_facts_of(t, p.spec);
        p.dma = {t.device_features(),
                 virtio::has(t.device_features(), virtio::feature::kAccessPlatform),
                 f.traits.iommu,
                 {}};
        const size_t i = s.devices_.size();
        const ArrangementChoice a = choose_dma_arrangement(p.spec.dma, confidential_guest());
        p.spec.dma = a.arrangement;  // open_port() then applies what was chosen here
        if (a.arrangement == DmaArrangement::Window) {
            if (!f.forced) f.forced = forced;
            plans[i] = plan_window_dma(f, t.describe());
            if (!plans[i].ok) throw Error(plans[i].error);
        } else {
            facts.push_back(f);
            direct.push_back(i);
        }
        s.devices_.push_back(std::move(p));
    }
    ProcessDmaPlan plan = plan_process_dma(facts, forced);
    if (!plan.ok) {
        const size_t i = direct[plan.device];
        const DmaReport& r = s.devices_[i].dma;
        throw Error(s.transports_[i]->describe() + " (VIRTIO_F_ACCESS_PLATFORM, bit 33, " +
                    (r.access_platform ? "offered" : "not offered") + "; IOMMU " + std::string(to_string(r.iommu)) +
                    ") cannot be used: " + plan.error);
    }
    s.mode_ = plan.mode;
    s.pa_source_ = plan.pa_source;
    for (size_t k = 0; k < direct.size(); k++) plans[direct[k]] = plan.devices[k];
    for (size_t i = 0; i < s.devices_.size(); i++) s.devices_[i].dma.plan = plans[i];
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
    // The mode probe() chose is this device's, not its solo preference (a
    // window has its own memory and keeps its own row).
    if (!spec.iova && spec.dma != DmaArrangement::Window) spec.iova = mode_;
    return std::make_unique<NetPort>(std::move(transports_[i]), spec, mem, pool, static_cast<uint16_t>(i));
}

}  // namespace vireo
