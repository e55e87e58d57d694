// vireo: the words of the IOVA policy (iova_policy.hpp): what an IOVA is, what
// stands between a device and memory, and where physical addresses come from.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

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
    VhostIotlb,   // vhost-user or vhost-net with IOTLB messages: the front end plays the IOMMU
    Uio,          // a PCI function bound to uio_pci_generic: never an IOMMU, physical addresses
    VdpaIotlb,    // vhost-vdpa: every address goes through the IOTLB we fill, inside the device's IOVA range
};

// In PA mode, where a device's "physical" addresses come from.
enum class PaSource : uint8_t {
    Pagemap,  // the host's real physical addresses (/proc/self/pagemap, root): PCI devices
    Linear,   // a guest-physical layout vireo publishes: regions packed from a base (vhost-user)
};

// Which memory a device may reach at all (iova_policy.hpp, the window rows).
enum class DmaArrangement : uint8_t {
    Direct,  // the device is given the application's packet memory
    Window,  // only its own window (rings and bounce slots); packets are copied in and out
};

std::string_view to_string(IovaMode m) noexcept;
std::string_view to_string(DmaArrangement a) noexcept;
std::string_view to_string(IommuKind k) noexcept;
std::string_view to_string(PaSource s) noexcept;
// Parses "pa" / "va" (case-insensitive); empty optional when neither.
std::optional<IovaMode> parse_iova_mode(std::string_view s) noexcept;
// Parses "direct" / "window"; empty optional otherwise.
std::optional<DmaArrangement> parse_dma_arrangement(std::string_view s) noexcept;

}  // namespace vireo
