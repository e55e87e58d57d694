// DeviceSet: probe every device, then let the DMA decision (decide_process_dma,
// iova_policy.hpp) choose the shared memory's mode and each device's plan;
// this file only collects the facts and hands each port its plan.
#include "vireo/pmd/device_set.hpp"

#include "vireo/base/error.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

DeviceSet::DeviceSet(DeviceSet&&) noexcept = default;
DeviceSet& DeviceSet::operator=(DeviceSet&&) noexcept = default;
DeviceSet::~DeviceSet() = default;

DeviceSet DeviceSet::probe(const std::vector<std::string>& devices, std::optional<IovaMode> forced,
                           std::optional<DmaArrangement> dma) {
    if (devices.empty()) throw Error("no devices to open: give at least one device string");
    DeviceSet s;
    std::vector<DeviceDmaFacts> facts;
    std::vector<std::string> names;
    for (const std::string& d : devices) {
        ProbedDevice p;
        p.device = d;
        p.spec = parse_device_string(d);
        s.transports_.push_back(open_transport(p.spec));
        Transport& t = *s.transports_.back();
        facts.push_back(dma_facts_of(t, p.spec));
        names.push_back(t.describe());
        s.keys_.push_back(dma_keys_of(p.spec, forced, dma));
        p.dma = {t.device_features(),
                 virtio::has(t.device_features(), virtio::feature::kAccessPlatform),
                 facts.back().traits.iommu,
                 {}};
        s.devices_.push_back(std::move(p));
    }
    ProcessDma plan = decide_process_dma(facts, s.keys_, confidential_guest(), names);
    if (!plan.ok) throw Error(plan.error);
    s.memory_ = plan.memory;
    for (size_t i = 0; i < s.devices_.size(); i++) s.devices_[i].dma.plan = plan.devices[i];
    return s;
}

DmaMemoryOptions DeviceSet::memory_options() const {
    DmaMemoryOptions o;
    o.mode = memory_.mode;
    o.pa_source = memory_.pa_source;
    return o;
}

std::unique_ptr<NetPort> DeviceSet::open_port(size_t i, DmaMemory& mem, PacketPool& pool) {
    if (i >= transports_.size()) throw Error("DeviceSet::open_port: no device " + std::to_string(i));
    if (transports_[i] == nullptr) throw Error(devices_[i].device + ": its port was opened already");
    if (pool.mode() != mem.mode()) throw Error("the packet pool's IOVA mode differs from the DMA memory's");
    // The plan probe() made: the port applies it (and decides again only if the device's offer changes).
    return std::make_unique<NetPort>(std::move(transports_[i]), devices_[i].spec, mem, pool, static_cast<uint16_t>(i),
                                     devices_[i].dma.plan, keys_[i]);
}

}  // namespace vireo
