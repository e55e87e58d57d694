// vireo: the IOVA policy. Everything that decides which address a descriptor
// carries, for one device and for a whole process, is here and in
// iova_policy.cpp; transports only report facts (Transport::dma_traits()) and
// DeviceSet, NetPort and the VFIO container only apply the plan.
//
// Why per device, and why from VIRTIO_F_ACCESS_PLATFORM (feature bit 33,
// formerly IOMMU_PLATFORM; virtio 1.2 section 6): a device that does not offer
// the bit accesses memory with physical addresses, bypassing any IOMMU
// (QEMU's virtio devices without iommu_platform=on do exactly that even when
// a vIOMMU is present), so it must be given physical addresses whatever the
// rest of the system does. A device that offers it goes through the platform's
// IOMMU, so it must be given addresses that IOMMU translates: IOVA = VA when we
// program the IOMMU (VFIO type1; over vhost-user, where vireo answers the back
// end's IOTLB misses and so is its IOMMU; vhost-net and vhost-vdpa alike),
// physical addresses when nothing
// translates (VFIO no-IOMMU, no IOMMU at all). DPDK requests the bit and never
// checks it; vireo decides from it and refuses, naming the device, the bit and
// the fix, whatever cannot work. The rows, in order:
//
//   bit 33 | IOMMU                      | mode | ACCESS_PLATFORM | IOMMU maps
//   offered| type1 / vhost IOTLB        | VA   | negotiated      | IOVA = VA, by us
//   offered| vDPA IOTLB, range holds VAs| VA   | negotiated      | IOVA = VA, by us
//   offered| vDPA IOTLB, narrower range | PA   | negotiated      | IOVAs we lay out in the range (linear), by us
//   absent | vDPA IOTLB                 | -    | refused (vhost-vdpa gives a device only what it maps) | -
//   offered| type1 narrower than 2^47   | PA   | negotiated      | IOVA = PA, by us
//   offered| VFIO no-IOMMU / uio / none | PA   | negotiated      | nothing (no IOMMU; virtio-mmio through
//          |                            |      |                 | vfio-platform no-IOMMU or /dev/mem too)
//   absent | any                        | PA   | -               | type1: IOVA = PA too
//   any    | vhost IOTLB, PA asked      | PA   | refused (the back end must not expect IOTLB) | -
//   PA needed but no physical addresses (pagemap needs root)       | error
//   --iova-mode forced where the row says otherwise                | error with the fix
//
// A second choice, per device, is what memory the device may reach at all
// (DmaArrangement). Direct: the application's packet memory, as DPDK, VPP and
// SPDK do. Window: only the device's own window, one DMA region holding its
// rings and bounce slots; frames are copied in (Tx) and out (Rx), so a back
// end or host that must not see the process's memory (a confidential VM's
// untrusted VMM, an untrusted vhost-user back end) is never given it. The
// window's addresses follow the rows above (it is the device's own memory,
// so its mode is the device's own). Whether anything enforces it:
//
//   window | IOMMU                      | the device can reach
//   VA     | type1 / vhost IOTLB        | the window only (the IOMMU maps nothing else)
//   PA     | vhost-user (linear)        | the window only (the memory table holds only its fd)
//   VA, PA | vDPA IOTLB                 | the window only (only it is mapped)
//   PA     | none / VFIO no-IOMMU / bit 33 absent | everything: the window is a convention (warned)
//
// The choice: the device string's dma=, else the process's (vireo-fwd
// --dma=), else Window when running in a confidential guest, else Direct.
//
// decide_dma() (below) makes both choices for a device in one call, and is
// the only place that makes them: DeviceSet, NetPort and the PCI listing
// apply its DmaPlan, the VFIO container maps what the plan says.
//
// Physical addresses mean two things: for PCI devices the host's real ones
// (PaSource::Pagemap); over vhost-user a guest-physical layout vireo
// publishes in the memory table (PaSource::Linear). One process has one DMA
// memory, so one mode and one source: PA cannot serve both kinds at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vireo/iova/iova_mode.hpp"

namespace vireo {

class DmaMemory;
struct DmaMemoryOptions;

// What a transport knows about how its device reaches memory.
struct DmaTraits {
    IommuKind iommu = IommuKind::None;       // what stands between the device and our memory
    uint64_t iommu_max_iova = ~uint64_t{0};  // the highest IOVA that IOMMU maps (its address width)
    PaSource pa_source = PaSource::Pagemap;  // what a physical address is for this device
    std::string offer_bit33_hint;            // how to make the device offer ACCESS_PLATFORM (for errors)
    uint64_t iommu_min_iova = 0;             // the lowest IOVA that IOMMU maps (vDPA: its IOVA range)
};

// Everything the policy needs to know about one device.
struct DeviceDmaFacts {
    bool access_platform_offered = false;       // bit 33 offered, and not switched off in the device string
    bool access_platform_switched_off = false;  // offered, but access_platform=0 in the device string
    DmaTraits traits;
    std::optional<IovaMode> forced;  // the device string's iova=, or the process's --iova-mode
    bool pagemap_readable = false;   // /proc/self/pagemap gives real physical addresses (root)
};

// What to do with one device.
struct DmaPlan {
    bool ok = false;
    IovaMode mode = IovaMode::PA;
    bool negotiate_access_platform = false;  // accept bit 33
    PaSource pa_source = PaSource::Pagemap;  // in PA mode, the addresses descriptors carry
    bool map_identity_pa = false;            // an IOMMU we program also maps IOVA = PA (PA mode, type1)
    DmaArrangement arrangement = DmaArrangement::Direct;
    std::string why;      // one line: why this mode
    std::string warning;  // one line for the log when the plan works but is weaker than asked
    std::string error;    // when !ok: what is wrong and what to change
};

// One device on its own.
DmaPlan plan_device_dma(const DeviceDmaFacts& d);

// A whole process (one DMA memory, so one mode): VA when every device can take
// it, PA as soon as one needs it (a device that could take VA then gets
// IOVA = PA through its IOMMU). When !ok, `device` is the index of the device
// that cannot live in the mode, and `error` says why and what to change.
struct ProcessDmaPlan {
    bool ok = false;
    IovaMode mode = IovaMode::VA;
    PaSource pa_source = PaSource::Linear;
    std::vector<DmaPlan> devices;  // per device, in the process's mode
    size_t device = 0;
    std::string error;
};
ProcessDmaPlan plan_process_dma(std::span<const DeviceDmaFacts> devices, std::optional<IovaMode> forced);

// The plan for a device whose DMA memory was made elsewhere (NetPort::open):
// the memory's mode and PA source must suit it. `device` names it in errors.
DmaPlan plan_for_memory(const DeviceDmaFacts& d, IovaMode mem_mode, PaSource mem_pa_source, const std::string& device);

// A device that reaches only its window (DmaArrangement::Window): its own row
// above decides the window's mode; a window nothing enforces gets a warning.
DmaPlan plan_window_dma(const DeviceDmaFacts& d, const std::string& device);

// Evidence that this process runs in a confidential guest (AMD SEV-SNP /
// SEV-ES / SEV, Intel TDX), from what the kernel shows user space; probed once.
struct ConfidentialGuest {
    bool detected = false;
    std::string evidence;  // e.g. "/proc/cpuinfo flag tdx_guest"
};
const ConfidentialGuest& confidential_guest();
// Reads the markers under `root` (tests point it at a fake tree).
ConfidentialGuest probe_confidential_guest(const std::string& root);

struct ArrangementChoice {
    DmaArrangement arrangement = DmaArrangement::Direct;
    std::string why;
};
// The device string's dma= first, then the process's default (vireo-fwd
// --dma=), then Window in a confidential guest (`guest`), else Direct.
ArrangementChoice choose_dma_arrangement(std::optional<DmaArrangement> device, std::optional<DmaArrangement> process,
                                         const ConfidentialGuest& guest);

// What the user asked of one device's DMA: the device string's iova= and
// dma=, and the process's defaults (vireo-fwd --iova-mode= and --dma=) that
// apply where the device string is silent. Empty: automatic.
struct DmaKeys {
    std::optional<IovaMode> iova, process_iova;
    std::optional<DmaArrangement> dma, process_dma;
};

// The DMA memory that a process's direct devices share, as it was made.
struct SharedMemory {
    IovaMode mode = IovaMode::VA;
    PaSource pa_source = PaSource::Linear;
};

// THE decision for one device, and the only one: its facts and the user's
// keys in; everything about its DMA out (DmaPlan: which memory it reaches,
// its window or the shared memory; the addresses its descriptors carry;
// whether to accept bit 33; whether its IOMMU maps IOVA = PA too; why).
// `shared`: the memory a direct device must live in (nullopt when none is
// made yet: the device's own preference, as --list shows it). `device`
// names it in errors. DeviceSet, NetPort and the PCI listing call this (or
// decide_process_dma, which calls it for each device); nothing else decides.
DmaPlan decide_dma(const DeviceDmaFacts& d, const DmaKeys& keys, std::optional<SharedMemory> shared,
                   const ConfidentialGuest& guest, const std::string& device);

// The same for the devices of one process at once, before any memory exists
// (DeviceSet::probe): the shared memory's mode and physical-address source
// are chosen so that every direct device can live in it (plan_process_dma);
// then each device's plan is decide_dma's with that memory.
struct ProcessDma {
    bool ok = false;
    SharedMemory memory;
    std::vector<DmaPlan> devices;  // per device
    std::string error;             // when !ok: names the device that cannot be used, and the fix
};
ProcessDma decide_process_dma(std::span<const DeviceDmaFacts> devices, std::span<const DmaKeys> keys,
                              const ConfidentialGuest& guest, std::span<const std::string> names);

}  // namespace vireo
