// vireo: the IOVA decision.
//
// Which address a descriptor carries is decided per device from
// VIRTIO_F_ACCESS_PLATFORM (feature bit 33, formerly IOMMU_PLATFORM; virtio 1.2
// section 6 "Reserved Feature Bits") and from the IOMMU this process holds.
// This file holds the whole rule; nothing else in vireo decides it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vireo {

// How an IOVA relates to the process's virtual address.
enum class IovaMode : uint8_t {
    PA,  // IOVA = physical (or guest-physical) address of the page
    VA,  // IOVA = process virtual address
};

// The IOMMU arrangement through which the device reaches our memory.
enum class IommuKind : uint8_t {
    None,         // no IOMMU between device and memory
    VfioType1,    // VFIO type1 v2 container or iommufd: we program the translation
    VfioNoIommu,  // VFIO in unsafe no-IOMMU mode: the device sees physical addresses
    VhostIotlb,   // vhost-user with IOTLB messages: the front end plays the IOMMU
};

struct IovaInputs {
    bool access_platform_offered = false;  // device offers feature bit 33
    IommuKind iommu = IommuKind::None;
    bool physical_addresses_available = false;  // pagemap readable (root) or a guest-physical layout we publish
    std::optional<IovaMode> forced;             // --iova-mode=pa|va, empty for auto
    bool iommu_covers_va = true;  // the IOMMU can map every user virtual address (VFIO: its address width)
};

struct IovaDecision {
    bool ok = false;
    IovaMode mode = IovaMode::PA;
    // With an IOMMU present but a device that must see physical addresses,
    // also map every region IOVA = PA 1:1 so both kinds of device work.
    bool map_identity_pa = false;
    // When !ok: what is wrong and what to change.
    std::string error;
};

// The one rule (pure, no side effects):
//   bit 33 offered + IOMMU we program (type1, iommufd, vhost IOTLB) -> VA
//        (-> PA when that IOMMU is narrower than the virtual address space)
//   bit 33 offered + VFIO no-IOMMU (or no IOMMU at all)             -> PA
//   bit 33 not offered                                               -> PA,
//        and with an IOMMU also map IOVA = PA 1:1 (the device bypasses it)
//   PA needed but physical addresses unavailable                    -> error
// A forced mode is honoured only where it is safe; otherwise an error.
IovaDecision decide_iova_mode(const IovaInputs& in);

// One mode for a whole process (its DMA memory has one mode), from all the
// devices it opens: VA when every device takes VA; PA as soon as one needs PA
// (each device that could take VA then gets IOVA = PA through its IOMMU). A
// forced mode must suit every device. When !ok, `device` is the index of the
// device that cannot live in the mode and `error` says why and what to change.
struct ProcessIovaDecision {
    bool ok = false;
    IovaMode mode = IovaMode::PA;
    std::vector<IovaDecision> devices;  // per device, in that mode
    size_t device = 0;
    std::string error;
};
ProcessIovaDecision decide_process_iova_mode(std::span<const IovaInputs> devices, std::optional<IovaMode> forced);

std::string_view to_string(IovaMode m) noexcept;
std::string_view to_string(IommuKind k) noexcept;
// Parses "pa" / "va" (case-insensitive); empty optional when neither.
std::optional<IovaMode> parse_iova_mode(std::string_view s) noexcept;

}  // namespace vireo
