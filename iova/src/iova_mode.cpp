// The IOVA rule. See iova_mode.hpp for the table; tests/iova_mode_test.cpp
// checks every row.
#include "vireo/iova/iova_mode.hpp"

#include <cctype>

namespace vireo {
namespace {

constexpr const char* kNarrowIommu =
    "--iova-mode=va refused: the IOMMU's address width is narrower than the process's virtual addresses "
    "(e.g. a 39-bit vIOMMU), so IOVA = VA cannot be mapped; give the IOMMU 48 bits (QEMU: -device "
    "intel-iommu,aw-bits=48), or run with --iova-mode=pa";

bool translates_va(IommuKind k) { return k == IommuKind::VfioType1 || k == IommuKind::VhostIotlb; }

IovaDecision fail(std::string msg) {
    IovaDecision d;
    d.ok = false;
    d.error = std::move(msg);
    return d;
}

IovaDecision pa(const IovaInputs& in, const char* why_pa) {
    if (!in.physical_addresses_available)
        return fail(std::string(why_pa) +
                    ", but physical addresses are not available to this process (reading "
                    "/proc/self/pagemap needs CAP_SYS_ADMIN): run as root with hugepages reserved, "
                    "or give the device VIRTIO_F_ACCESS_PLATFORM (e.g. QEMU iommu_platform=on) "
                    "behind an IOMMU and use --iova-mode=va");
    IovaDecision d;
    d.ok = true;
    d.mode = IovaMode::PA;
    // A type1 IOMMU translates for devices that honour it: map IOVA = PA 1:1 so
    // that the physical addresses we hand out are valid through it as well.
    d.map_identity_pa = in.iommu == IommuKind::VfioType1;
    return d;
}

}  // namespace

IovaDecision decide_iova_mode(const IovaInputs& in) {
    const bool bit = in.access_platform_offered;
    if (in.forced == IovaMode::VA) {
        if (!bit)
            return fail(
                "--iova-mode=va refused: the device does not offer VIRTIO_F_ACCESS_PLATFORM (bit 33), so "
                "it bypasses the IOMMU and would take virtual addresses as physical ones; start the "
                "device with iommu_platform=on, or run with --iova-mode=pa");
        if (!translates_va(in.iommu))
            return fail(std::string("--iova-mode=va refused: nothing translates virtual addresses (IOMMU: ") +
                        std::string(to_string(in.iommu)) +
                        "); bind the device under an IOMMU (guest kernel intel_iommu=on, VFIO type1), or "
                        "run with --iova-mode=pa");
        if (!in.iommu_covers_va) return fail(kNarrowIommu);
        IovaDecision d;
        d.ok = true;
        d.mode = IovaMode::VA;
        return d;
    }
    if (in.forced == IovaMode::PA) return pa(in, "--iova-mode=pa was asked for");
    if (bit && translates_va(in.iommu) && !in.iommu_covers_va)
        return pa(in, "the device's IOMMU is too narrow for IOVA = VA, so it gets physical addresses");
    if (bit && translates_va(in.iommu)) {
        IovaDecision d;
        d.ok = true;
        d.mode = IovaMode::VA;
        return d;
    }
    if (bit)
        return pa(in,
                  "the device offers VIRTIO_F_ACCESS_PLATFORM (bit 33) but no IOMMU translates for it "
                  "(VFIO no-IOMMU or none), so it needs physical addresses");
    return pa(in,
              "the device does not offer VIRTIO_F_ACCESS_PLATFORM (bit 33): it bypasses any IOMMU and "
              "needs physical addresses");
}

ProcessIovaDecision decide_process_iova_mode(std::span<const IovaInputs> devices, std::optional<IovaMode> forced) {
    ProcessIovaDecision p;
    p.ok = true;
    p.mode = forced.value_or(IovaMode::VA);
    if (!forced)
        for (size_t i = 0; i < devices.size(); i++) {
            IovaDecision d = decide_iova_mode(devices[i]);
            if (!d.ok) {  // it cannot work even on its own
                p.ok = false;
                p.device = i;
                p.error = d.error;
                return p;
            }
            if (d.mode == IovaMode::PA) p.mode = IovaMode::PA;
        }
    for (size_t i = 0; i < devices.size(); i++) {
        IovaInputs in = devices[i];
        // Auto: each device is asked for the process's mode, but its own rule
        // still decides whether that is safe (a device that bypasses the IOMMU never gets VA).
        if (!in.forced) in.forced = p.mode;
        IovaDecision d = decide_iova_mode(in);
        if (!d.ok) {
            IovaDecision alone = decide_iova_mode(devices[i]);
            p.ok = false;
            p.device = i;
            p.error = !forced && alone.ok && alone.mode != p.mode
                          ? "it needs IOVA mode " + std::string(to_string(alone.mode)) + " but another device needs " +
                                std::string(to_string(p.mode)) + ": " + d.error
                          : d.error;
            return p;
        }
        p.devices.push_back(std::move(d));
    }
    return p;
}

std::string_view to_string(IovaMode m) noexcept { return m == IovaMode::VA ? "va" : "pa"; }

std::string_view to_string(IommuKind k) noexcept {
    switch (k) {
    case IommuKind::None: return "none";
    case IommuKind::VfioType1: return "vfio-type1";
    case IommuKind::VfioNoIommu: return "vfio-noiommu";
    case IommuKind::VhostIotlb: return "vhost-iotlb";
    }
    return "?";
}

std::optional<IovaMode> parse_iova_mode(std::string_view s) noexcept {
    if (s.size() != 2) return std::nullopt;
    char a = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
    char b = static_cast<char>(std::tolower(static_cast<unsigned char>(s[1])));
    if (b != 'a') return std::nullopt;
    if (a == 'p') return IovaMode::PA;
    if (a == 'v') return IovaMode::VA;
    return std::nullopt;
}

}  // namespace vireo
