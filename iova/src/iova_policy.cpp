// The IOVA policy: the rows of the table in iova_policy.hpp, in that order.
// tests/iova_policy_test.cpp checks every row.
#include "vireo/iova/iova_policy.hpp"

#include <cctype>

namespace vireo {
namespace {

// User space reaches 2^47 with 4-level paging and starts at vm.mmap_min_addr
// (64 KiB): a narrower IOMMU cannot map IOVA = VA.
constexpr uint64_t kUserVaTop = (uint64_t{1} << 47) - 1;
constexpr uint64_t kUserVaBottom = uint64_t{1} << 16;

std::string narrow_iommu(const DeviceDmaFacts& d) {
    if (d.traits.iommu == IommuKind::VdpaIotlb)
        return "--iova-mode=va refused: the vDPA device's IOVA range does not hold the process's virtual "
               "addresses, so IOVA = VA cannot be mapped; run with --iova-mode=pa (vireo then lays its memory out "
               "inside the range)";
    return "--iova-mode=va refused: the IOMMU's address width is narrower than the process's virtual addresses "
           "(e.g. a 39-bit vIOMMU), so IOVA = VA cannot be mapped; give the IOMMU 48 bits (QEMU: -device "
           "intel-iommu,aw-bits=48), or run with --iova-mode=pa";
}

bool translates_va(IommuKind k) {
    return k == IommuKind::VfioType1 || k == IommuKind::VhostIotlb || k == IommuKind::VdpaIotlb;
}

std::string offer_hint(const DeviceDmaFacts& d) {
    return d.traits.offer_bit33_hint.empty() ? "make the device offer it" : d.traits.offer_bit33_hint;
}

DmaPlan fail(std::string msg) {
    DmaPlan p;
    p.error = std::move(msg);
    return p;
}

DmaPlan va(const DeviceDmaFacts& d, std::string why) {
    DmaPlan p;
    p.ok = true;
    p.mode = IovaMode::VA;
    p.negotiate_access_platform = true;
    p.pa_source = d.traits.pa_source;
    p.why = std::move(why);
    return p;
}

DmaPlan pa(const DeviceDmaFacts& d, const std::string& why) {
    const bool physical = d.traits.pa_source == PaSource::Linear || d.pagemap_readable;
    if (!physical)
        return fail(why +
                    ", but physical addresses are not available to this process (reading "
                    "/proc/self/pagemap needs CAP_SYS_ADMIN): run as root with hugepages reserved, "
                    "or give the device VIRTIO_F_ACCESS_PLATFORM (e.g. QEMU iommu_platform=on) "
                    "behind an IOMMU and use --iova-mode=va");
    DmaPlan p;
    p.ok = true;
    p.mode = IovaMode::PA;
    p.pa_source = d.traits.pa_source;
    // Over vhost-user a back end that negotiated bit 33 expects IOTLB
    // messages for IOVAs; in PA mode it gets guest-physical addresses instead.
    p.negotiate_access_platform = d.access_platform_offered && d.traits.iommu != IommuKind::VhostIotlb;
    // A type1 IOMMU translates for devices that honour it: IOVA = PA is mapped
    // 1:1 so that the physical addresses we hand out are valid through it too.
    p.map_identity_pa = d.traits.iommu == IommuKind::VfioType1;
    p.why = why;
    return p;
}

// A device that would have chosen the other mode, living in the shared memory's.
std::string shared_mode_why(IovaMode mode, const DmaPlan& p) {
    return "the shared DMA memory is in mode " + std::string(to_string(mode)) +
           " (another device needs it), and this device can take it" +
           (p.map_identity_pa ? ": its IOMMU maps IOVA = PA 1:1" : "");
}

}  // namespace

DmaPlan plan_device_dma(const DeviceDmaFacts& d) {
    const bool bit = d.access_platform_offered;
    const IommuKind iommu = d.traits.iommu;
    const bool covers_va = d.traits.iommu_max_iova >= kUserVaTop && d.traits.iommu_min_iova <= kUserVaBottom;
    // vhost-vdpa hands a device only the IOVAs we map: one that does not
    // offer bit 33 would take them for physical addresses. Linux's
    // virtio_vdpa and QEMU's vhost-vdpa net client refuse it alike.
    if (iommu == IommuKind::VdpaIotlb && !bit)
        return fail(
            "a vDPA device that does not offer VIRTIO_F_ACCESS_PLATFORM (bit 33) would read the IOVAs "
            "vhost-vdpa maps as physical addresses: refused" +
            std::string(d.access_platform_switched_off ? "; do not switch access_platform off in the device string"
                                                       : " (its parent driver must offer the bit)"));
    if (d.forced == IovaMode::VA) {
        // Under VFIO no-IOMMU, uio or no IOMMU at all (virtio-mmio through
        // /dev/mem) no bit 33 could help: say what would.
        const bool never_translates =
            iommu == IommuKind::VfioNoIommu || iommu == IommuKind::Uio || iommu == IommuKind::None;
        if (!bit && !never_translates)
            return fail(
                "--iova-mode=va refused: the device does not offer VIRTIO_F_ACCESS_PLATFORM (bit 33), so "
                "it bypasses the IOMMU and would take virtual addresses as physical ones; " +
                offer_hint(d) + ", or run with --iova-mode=pa");
        if (!translates_va(iommu))
            return fail(std::string("--iova-mode=va refused: nothing translates virtual addresses (IOMMU: ") +
                        std::string(to_string(iommu)) +
                        (iommu == IommuKind::Uio ? "; uio_pci_generic never has one" : "") +
                        "); bind the device to vfio-pci (vfio-platform for virtio-mmio) under an IOMMU (guest "
                        "kernel intel_iommu=on, VFIO type1), or run with --iova-mode=pa");
        if (!covers_va) return fail(narrow_iommu(d));
        return va(d, "--iova-mode=va, and the device translates through an IOMMU vireo programs");
    }
    if (d.forced == IovaMode::PA) return pa(d, "--iova-mode=pa was asked for");
    if (bit && iommu == IommuKind::VdpaIotlb && !covers_va)
        return pa(d,
                  "the vDPA device's IOVA range does not hold the process's virtual addresses, so vireo lays "
                  "its memory out inside the range (linear IOVAs) and maps that");
    if (bit && translates_va(iommu) && !covers_va)
        return pa(d, "the device's IOMMU is too narrow for IOVA = VA, so it gets physical addresses");
    if (bit && translates_va(iommu))
        return va(d, std::string("the device offers VIRTIO_F_ACCESS_PLATFORM (bit 33) and vireo programs its "
                                 "IOMMU (") +
                         std::string(to_string(iommu)) + ")");
    if (bit)
        return pa(d,
                  "the device offers VIRTIO_F_ACCESS_PLATFORM (bit 33) but no IOMMU translates for it "
                  "(VFIO no-IOMMU or none), so it needs physical addresses");
    return pa(d,
              "the device does not offer VIRTIO_F_ACCESS_PLATFORM (bit 33): it bypasses any IOMMU and "
              "needs physical addresses");
}

ProcessDmaPlan plan_process_dma(std::span<const DeviceDmaFacts> devices, std::optional<IovaMode> forced) {
    ProcessDmaPlan p;
    p.ok = true;
    p.mode = forced.value_or(IovaMode::VA);
    if (!forced)
        for (size_t i = 0; i < devices.size(); i++) {
            DmaPlan d = plan_device_dma(devices[i]);
            if (!d.ok) {  // it cannot work even on its own
                p.ok = false;
                p.device = i;
                p.error = d.error;
                return p;
            }
            if (d.mode == IovaMode::PA) p.mode = IovaMode::PA;
        }
    for (size_t i = 0; i < devices.size(); i++) {
        // Each device is asked for the process's mode; its own row still
        // decides whether that is safe (a device that bypasses the IOMMU never gets VA).
        DeviceDmaFacts in = devices[i];
        DmaPlan d = plan_device_dma(in);
        if (!in.forced && (!d.ok || d.mode != p.mode)) {
            in.forced = p.mode;
            d = plan_device_dma(in);
            if (d.ok) d.why = shared_mode_why(p.mode, d);
        }
        if (!d.ok) {
            const DmaPlan alone = plan_device_dma(devices[i]);
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
    // One memory, one source of physical addresses.
    p.pa_source = PaSource::Linear;
    for (size_t i = 0; i < p.devices.size(); i++)
        if (p.devices[i].pa_source == PaSource::Pagemap) p.pa_source = PaSource::Pagemap;
    if (p.mode == IovaMode::PA)
        for (size_t i = 0; i < p.devices.size(); i++)
            if (p.devices[i].pa_source != p.pa_source) {
                p.ok = false;
                p.device = i;
                p.error =
                    "IOVA mode pa cannot serve vhost-user and PCI devices in one process (vhost-user needs a "
                    "published guest-physical layout, PCI the real physical addresses): give the PCI devices "
                    "iommu_platform=on and the vhost-user back ends iommu-support=1, then use --iova-mode=va";
                return p;
            }
    return p;
}

DmaPlan plan_for_memory(const DeviceDmaFacts& d, IovaMode mem_mode, PaSource mem_pa_source, const std::string& device) {
    DmaPlan p = plan_device_dma(d);
    if (!p.ok) return fail(device + ": " + p.error);
    if (p.mode != mem_mode && !d.forced) {
        // The device's preference differs; the memory's mode may still be safe
        // for it (a device behind an IOMMU may take IOVA = PA).
        DeviceDmaFacts asked = d;
        asked.forced = mem_mode;
        if (DmaPlan alt = plan_device_dma(asked); alt.ok) {
            p = alt;
            p.why = shared_mode_why(mem_mode, p);
        }
    }
    if (p.mode != mem_mode) {
        const std::string want(to_string(p.mode)), have(to_string(mem_mode));
        return fail(device + (d.access_platform_offered ? " offers" : " does not offer") +
                    " VIRTIO_F_ACCESS_PLATFORM (bit 33), so its descriptors must carry IOVA mode " + want +
                    " addresses, but the DMA memory is in mode " + have + ": run with --iova-mode=" + want +
                    " (DmaMemoryOptions::mode)" +
                    (d.access_platform_offered || p.mode == IovaMode::VA ? "" : ", or " + offer_hint(d)));
    }
    if (mem_mode == IovaMode::PA && mem_pa_source != p.pa_source)
        return fail(device + ": PA mode here needs " +
                    (p.pa_source == PaSource::Linear
                         ? "each DMA region at one guest-physical range (vhost-user): create the DmaMemory with "
                           "pa_source = PaSource::Linear"
                         : "the real physical addresses (PCI): create the DmaMemory with pa_source = "
                           "PaSource::Pagemap"));
    return p;
}

DmaPlan plan_window_dma(const DeviceDmaFacts& d, const std::string& device) {
    DmaPlan p = plan_device_dma(d);
    if (!p.ok) return fail(device + ": " + p.error);
    p.arrangement = DmaArrangement::Window;
    p.why = "only its window (rings, bounce slots) is given to the device; " + p.why;
    // Real physical addresses and nothing that translates them: the device is
    // handed only window addresses, but could reach any other page.
    if (p.mode == IovaMode::PA && p.pa_source == PaSource::Pagemap)
        p.warning = device +
                    ": dma=window with physical addresses and no IOMMU in the device's way: its descriptors "
                    "carry only window addresses, but nothing stops it from reaching the rest of memory (to "
                    "enforce the window, put it behind an IOMMU with VIRTIO_F_ACCESS_PLATFORM: " +
                    offer_hint(d) + ")";
    return p;
}

ArrangementChoice choose_dma_arrangement(std::optional<DmaArrangement> device, std::optional<DmaArrangement> process,
                                         const ConfidentialGuest& guest) {
    if (device) return {*device, "dma=" + std::string(to_string(*device)) + " in the device string"};
    if (process) return {*process, "the process's default (--dma=" + std::string(to_string(*process)) + ")"};
    if (guest.detected)
        return {DmaArrangement::Window,
                "a confidential guest (" + guest.evidence + "): the host must not reach the process's memory"};
    return {DmaArrangement::Direct, "the default"};
}

namespace {

// The device's row input: its own iova=, else the process's --iova-mode.
DeviceDmaFacts with_keys(DeviceDmaFacts d, const DmaKeys& k, bool process_default) {
    d.forced = k.iova ? k.iova : process_default ? k.process_iova : std::nullopt;
    return d;
}

// A window is the device's own memory: its own row decides its mode.
DmaPlan window_plan(const DeviceDmaFacts& d, const DmaKeys& k, const ArrangementChoice& a, const std::string& device) {
    DmaPlan p = plan_window_dma(with_keys(d, k, true), device);
    if (p.ok) p.why = "window, from " + a.why + ": " + p.why;
    return p;
}

}  // namespace

DmaPlan decide_dma(const DeviceDmaFacts& d, const DmaKeys& keys, std::optional<SharedMemory> shared,
                   const ConfidentialGuest& guest, const std::string& device) {
    const ArrangementChoice a = choose_dma_arrangement(keys.dma, keys.process_dma, guest);
    if (a.arrangement == DmaArrangement::Window) return window_plan(d, keys, a, device);
    if (!shared) {
        DmaPlan p = plan_device_dma(with_keys(d, keys, true));
        if (!p.ok) p.error = device + ": " + p.error;
        return p;
    }
    return plan_for_memory(with_keys(d, keys, false), shared->mode, shared->pa_source, device);
}

ProcessDma decide_process_dma(std::span<const DeviceDmaFacts> devices, std::span<const DmaKeys> keys,
                              const ConfidentialGuest& guest, std::span<const std::string> names) {
    ProcessDma out;
    out.devices.resize(devices.size());
    // Devices in window mode reach only their own windows: they take no part
    // in choosing the mode of the shared memory.
    std::vector<DeviceDmaFacts> direct;
    std::vector<size_t> index;
    std::optional<IovaMode> process_iova;
    for (size_t i = 0; i < devices.size(); i++) {
        const ArrangementChoice a = choose_dma_arrangement(keys[i].dma, keys[i].process_dma, guest);
        process_iova = keys[i].process_iova;
        if (a.arrangement == DmaArrangement::Window) {
            out.devices[i] = window_plan(devices[i], keys[i], a, names[i]);
            if (!out.devices[i].ok) {
                out.error = out.devices[i].error;
                return out;
            }
            continue;
        }
        direct.push_back(with_keys(devices[i], keys[i], false));
        index.push_back(i);
    }
    const ProcessDmaPlan plan = plan_process_dma(direct, process_iova);
    if (!plan.ok) {
        const size_t i = index[plan.device];
        out.error = names[i] + " (VIRTIO_F_ACCESS_PLATFORM, bit 33, " +
                    (devices[i].access_platform_offered ? "offered" : "not offered") + "; IOMMU " +
                    std::string(to_string(devices[i].traits.iommu)) + ") cannot be used: " + plan.error;
        return out;
    }
    out.memory = {plan.mode, plan.pa_source};
    for (size_t k = 0; k < index.size(); k++) out.devices[index[k]] = plan.devices[k];
    out.ok = true;
    return out;
}

std::string_view to_string(DmaArrangement a) noexcept { return a == DmaArrangement::Window ? "window" : "direct"; }

std::optional<DmaArrangement> parse_dma_arrangement(std::string_view s) noexcept {
    if (s == "window") return DmaArrangement::Window;
    if (s == "direct") return DmaArrangement::Direct;
    return std::nullopt;
}

std::string_view to_string(IovaMode m) noexcept { return m == IovaMode::VA ? "va" : "pa"; }

std::string_view to_string(IommuKind k) noexcept {
    switch (k) {
    case IommuKind::None: return "none";
    case IommuKind::VfioType1: return "vfio-type1";
    case IommuKind::VfioNoIommu: return "vfio-noiommu";
    case IommuKind::VhostIotlb: return "vhost-iotlb";
    case IommuKind::Uio: return "uio";
    case IommuKind::VdpaIotlb: return "vdpa-iotlb";
    }
    return "?";
}

std::string_view to_string(PaSource s) noexcept { return s == PaSource::Linear ? "linear" : "pagemap"; }

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
