// Opening a transport from a device string, and the facts the IOVA policy
// needs about it. Below NetPort, DeviceSet and PCI discovery, which all use it.
#include "transport/mmio/virtio_mmio_transport.hpp"
#include "transport/pci/virtio_pci_transport.hpp"
#include "transport/vhost_kernel/vhost_net_transport.hpp"
#include "transport/vhost_kernel/vhost_vdpa_transport.hpp"
#include "transport/vhost_user/transport.hpp"
#include "vireo/base/error.hpp"
#include "vireo/iova/pagemap.hpp"
#include "vireo/pmd/device_string.hpp"
#include "vireo/pmd/transport.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

std::string Transport::queue_reset_unavailable() const {
    return describe() + " has no per-queue reset (virtio-pci has: queue_reset, virtio 1.2 4.1.4.3)";
}

void Transport::reset_queue(uint16_t index) {
    throw Error(queue_reset_unavailable() + ": queue " + std::to_string(index) + " cannot be reset alone");
}

std::unique_ptr<Transport> open_transport(const DeviceSpec& spec) {
    if (spec.kind == DeviceSpec::Kind::Pci) {
        try {
            return std::make_unique<VirtioPciTransport>(open_pci_function(spec.path));
        } catch (const Error& e) {
            const std::string w = e.what();
            if (w.find(spec.path) != std::string::npos) throw;
            throw Error("pci:" + spec.path + ": " + w, e.sys_errno());
        }
    }
    if (spec.kind == DeviceSpec::Kind::VhostNet) {
        VhostNetOptions o;
        o.tap = spec.path;
        o.queues = spec.queues;
        o.mac = spec.mac;
        o.mac_given = spec.mac_given;
        return std::make_unique<VhostNetTransport>(o);
    }
    if (spec.kind == DeviceSpec::Kind::VhostVdpa) return std::make_unique<VhostVdpaTransport>(spec.path);
    if (spec.kind == DeviceSpec::Kind::Mmio) return std::make_unique<VirtioMmioTransport>(open_mmio_device(spec.path));
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

DeviceDmaFacts dma_facts_of(Transport& t, const DeviceSpec& spec) {
    using virtio::feature::kAccessPlatform;
    DeviceDmaFacts f;
    const bool offered = virtio::has(t.device_features(), kAccessPlatform);
    f.access_platform_offered = offered && virtio::has(spec.wanted_features, kAccessPlatform);
    f.access_platform_switched_off = offered && !f.access_platform_offered;
    f.traits = t.dma_traits();
    f.pagemap_readable = physical_addresses_readable();
    return f;
}

DmaKeys dma_keys_of(const DeviceSpec& spec, std::optional<IovaMode> process_iova,
                    std::optional<DmaArrangement> process_dma) {
    return {spec.iova, process_iova, spec.dma, process_dma};
}

}  // namespace vireo
