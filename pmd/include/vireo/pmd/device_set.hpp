// vireo: the devices a process opens, probed together so that one IOVA mode
// fits them all (a process's DMA memory has one mode).
//
//   auto set = DeviceSet::probe({"pci:0000:00:10.0", "pci:0000:00:11.0"});   // or forced = IovaMode::PA
//   DmaMemory mem(set.memory_options());
//   PacketPool pool(mem, {...});
//   auto p0 = set.open_port(0, mem, pool), p1 = set.open_port(1, mem, pool);
//
// probe() opens each device's transport (VFIO device, vhost-user connection)
// and reads its features before any memory exists; a device that cannot live
// in the chosen mode is refused with an error naming the device, its
// VIRTIO_F_ACCESS_PLATFORM bit, the mode and the fix.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vireo/iova/dma_memory.hpp"
#include "vireo/iova/iova_policy.hpp"
#include "vireo/mempool/packet_pool.hpp"
#include "vireo/pmd/device_string.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/pmd/transport.hpp"

namespace vireo {

struct ProbedDevice {
    std::string device;  // as given
    DeviceSpec spec;
    DmaReport dma;
};

class DeviceSet {
public:
    // forced, dma: the process's defaults for devices whose strings have no iova= / dma= (vireo-fwd
    // --iova-mode=, --dma=).
    static DeviceSet probe(const std::vector<std::string>& devices, std::optional<IovaMode> forced = std::nullopt,
                           std::optional<DmaArrangement> dma = std::nullopt);

    DeviceSet(DeviceSet&&) noexcept;
    DeviceSet& operator=(DeviceSet&&) noexcept;
    ~DeviceSet();

    IovaMode iova_mode() const noexcept { return memory_.mode; }
    // Mode and physical-address source for the DmaMemory these devices share.
    DmaMemoryOptions memory_options() const;
    const std::vector<ProbedDevice>& devices() const noexcept { return devices_; }
    size_t size() const noexcept { return devices_.size(); }
    // Creates the port for device i (once) on memory made from memory_options().
    std::unique_ptr<NetPort> open_port(size_t i, DmaMemory& mem, PacketPool& pool);

private:
    DeviceSet() = default;
    SharedMemory memory_;  // what the direct devices share
    std::vector<ProbedDevice> devices_;
    std::vector<DmaKeys> keys_;  // per device: what the plans were made from
    std::vector<std::unique_ptr<Transport>> transports_;
};

}  // namespace vireo
