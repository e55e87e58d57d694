// vireo-vm-check's control-queue checks against QEMU's virtio-net device
// (vm_ctrl.cpp): receive filters, the MAC, VLAN filters, announcements and
// the link speed.
#pragma once

#include <string>

#include "vireo/mempool/packet_pool.hpp"
#include "vireo/pmd/net_port.hpp"

namespace vm {

// Prints "PASS what" or "FAIL what: why" and counts failures (vm_check.cpp).
void check(bool ok, const std::string& what, const std::string& why = "");

// tx sends frames to addresses and VLANs rx's filters must let in or keep out.
void check_filters(vireo::NetPort& tx, vireo::NetPort& rx, vireo::PacketPool& pool);
// Waits (up to `seconds`) for the device to ask `announcer` to announce
// itself (QMP announce-self), then counts on `watcher` the RARPs for its MAC.
void check_announce(vireo::NetPort& announcer, vireo::NetPort& watcher, int seconds);

// rx sleeps on its Rx queue's interrupt (an MSI-X vector; virtio-mmio: the line) between frames tx sends 20 ms apart.
void check_sleep(vireo::NetPort& tx, vireo::NetPort& rx, vireo::PacketPool& pool);

// What one QueueNotify store and one register read cost on virtio-mmio device `name` through the way it is
// open in (vfio-platform: pwrite/pread on the device fd; /dev/mem: a mapped store/load), `count` of each
// (vm_mmio.cpp). Under TCG the figures compare the two ways; they are not a machine's.
void report_mmio_cost(const std::string& name, uint64_t count);

}  // namespace vm
