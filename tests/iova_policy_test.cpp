// The IOVA policy: every row of the table in iova_policy.hpp, the process's
// choice over several devices, and a device against memory made elsewhere.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "vireo/iova/iova_policy.hpp"

namespace vireo {
namespace {

struct Row {
    bool bit;
    IommuKind iommu;
    bool phys;
    std::optional<IovaMode> forced;
    bool ok;
    IovaMode mode;
    bool identity;
    const char* error_mentions;  // a phrase the error must contain (the fix)
};

// A device's facts: vhost-user devices publish their physical layout; PCI ones need pagemap.
DeviceDmaFacts facts(bool bit, IommuKind k, bool phys, std::optional<IovaMode> forced = std::nullopt,
                     uint64_t max_iova = ~uint64_t{0}) {
    DeviceDmaFacts d;
    d.access_platform_offered = bit;
    d.traits.iommu = k;
    d.traits.iommu_max_iova = max_iova;
    d.traits.pa_source = k == IommuKind::VhostIotlb || k == IommuKind::VdpaIotlb ? PaSource::Linear : PaSource::Pagemap;
    d.traits.offer_bit33_hint = k == IommuKind::VhostIotlb ? "start the back end with iommu-support=1"
                                                           : "start the device with iommu_platform=on";
    d.forced = forced;
    d.pagemap_readable = phys;
    return d;
}

constexpr auto VA = IovaMode::VA;
constexpr auto PA = IovaMode::PA;
constexpr auto T1 = IommuKind::VfioType1;
constexpr auto NOI = IommuKind::VfioNoIommu;
constexpr auto NONE = IommuKind::None;
constexpr auto IOTLB = IommuKind::VhostIotlb;
constexpr auto UIO = IommuKind::Uio;
constexpr auto VDPA = IommuKind::VdpaIotlb;  // a full IOVA range: facts() leaves the range whole
const std::optional<IovaMode> AUTO;

const Row kTable[] = {
    // bit 33 offered, automatic choice
    {true, T1, false, AUTO, true, VA, false, ""},
    {true, T1, true, AUTO, true, VA, false, ""},
    {true, IOTLB, false, AUTO, true, VA, false, ""},
    {true, NOI, true, AUTO, true, PA, false, ""},
    {true, NOI, false, AUTO, false, PA, false, "run as root"},
    {true, NONE, true, AUTO, true, PA, false, ""},
    {true, NONE, false, AUTO, false, PA, false, "CAP_SYS_ADMIN"},
    {true, UIO, true, AUTO, true, PA, false, ""},
    {true, UIO, false, AUTO, false, PA, false, "run as root"},
    // bit 33 not offered: the device bypasses the IOMMU
    {false, T1, true, AUTO, true, PA, true, ""},
    {false, T1, false, AUTO, false, PA, false, "iommu_platform=on"},
    {false, NOI, true, AUTO, true, PA, false, ""},
    {false, NOI, false, AUTO, false, PA, false, "run as root"},
    {false, UIO, true, AUTO, true, PA, false, ""},
    {false, NONE, true, AUTO, true, PA, false, ""},
    {false, NONE, false, AUTO, false, PA, false, "run as root"},
    {false, IOTLB, true, AUTO, true, PA, false, ""},
    {false, IOTLB, false, AUTO, true, PA, false, ""},  // vhost-user: the layout is ours, no pagemap needed
    // vhost-vdpa: everything goes through the IOTLB we fill; without bit 33 the device would bypass it
    {true, VDPA, false, AUTO, true, VA, false, ""},
    {false, VDPA, true, AUTO, false, PA, false, "parent driver must offer"},
    {true, VDPA, false, VA, true, VA, false, ""},
    {true, VDPA, false, PA, true, PA, false, ""},  // IOVAs vireo lays out, mapped: bit 33 still negotiated
    {false, VDPA, true, PA, false, PA, false, "would read the IOVAs"},
    // --iova-mode=va
    {true, T1, false, VA, true, VA, false, ""},
    {true, IOTLB, false, VA, true, VA, false, ""},
    {true, NOI, true, VA, false, VA, false, "--iova-mode=pa"},
    {true, NONE, true, VA, false, VA, false, "intel_iommu=on"},
    {false, T1, true, VA, false, VA, false, "iommu_platform=on"},
    {false, NONE, true, VA, false, VA, false, "nothing translates"},  // no IOMMU at all: bit 33 would not help
    // no-IOMMU drivers: offering bit 33 would not help, so the fix is another driver or PA
    {true, UIO, true, VA, false, VA, false, "uio_pci_generic never has one"},
    {false, UIO, true, VA, false, VA, false, "bind the device to vfio-pci (vfio-platform for virtio-mmio) under"},
    {false, NOI, true, VA, false, VA, false, "nothing translates"},
    // --iova-mode=pa
    {true, T1, true, PA, true, PA, true, ""},
    {true, T1, false, PA, false, PA, false, "CAP_SYS_ADMIN"},
    {true, NOI, true, PA, true, PA, false, ""},
    {true, IOTLB, false, PA, true, PA, false, ""},
    {false, NONE, true, PA, true, PA, false, ""},
    {false, NONE, false, PA, false, PA, false, "run as root"},
};

class IovaDecisionTable : public ::testing::TestWithParam<Row> {};

TEST_P(IovaDecisionTable, Row) {
    const Row& r = GetParam();
    DmaPlan d = plan_device_dma(facts(r.bit, r.iommu, r.phys, r.forced));
    ASSERT_EQ(d.ok, r.ok) << d.error;
    if (r.ok) {
        EXPECT_EQ(d.mode, r.mode);
        EXPECT_EQ(d.map_identity_pa, r.identity);
        EXPECT_TRUE(d.error.empty());
        EXPECT_FALSE(d.why.empty());
        // Bit 33 is accepted in VA mode (the device must translate), and in PA
        // mode where offered, except over vhost IOTLB (the back end would then
        // expect IOTLB messages for guest-physical addresses).
        EXPECT_EQ(d.negotiate_access_platform, r.mode == IovaMode::VA || (r.bit && r.iommu != IommuKind::VhostIotlb));
        EXPECT_EQ(d.pa_source, r.iommu == IommuKind::VhostIotlb || r.iommu == IommuKind::VdpaIotlb ? PaSource::Linear
                                                                                                   : PaSource::Pagemap);
    } else {
        EXPECT_NE(d.error.find(r.error_mentions), std::string::npos) << d.error;
    }
}

INSTANTIATE_TEST_SUITE_P(EveryRow, IovaDecisionTable, ::testing::ValuesIn(kTable));

// The process-wide choice over several devices.
DeviceDmaFacts dev(bool bit, IommuKind k, bool phys = true) { return facts(bit, k, phys); }

TEST(ProcessIovaMode, AllVaCapableDevicesGiveVa) {
    std::vector<DeviceDmaFacts> d{dev(true, IommuKind::VfioType1), dev(true, IommuKind::VfioType1)};
    ProcessDmaPlan p = plan_process_dma(d, std::nullopt);
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.mode, IovaMode::VA);
    ASSERT_EQ(p.devices.size(), 2u);
    EXPECT_FALSE(p.devices[0].map_identity_pa);
}

TEST(ProcessIovaMode, OneBypassingDeviceMakesItPaWithIdentityMapsForTheOthers) {
    std::vector<DeviceDmaFacts> d{dev(true, IommuKind::VfioType1), dev(false, IommuKind::VfioType1)};
    ProcessDmaPlan p = plan_process_dma(d, std::nullopt);
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.mode, IovaMode::PA);
    EXPECT_TRUE(p.devices[0].map_identity_pa);
    EXPECT_TRUE(p.devices[1].map_identity_pa);
}

TEST(ProcessIovaMode, PaWithoutPhysicalAddressesNamesTheDeviceThatNeedsIt) {
    // The first device could run VA alone, but the second needs PA, which the first cannot have.
    std::vector<DeviceDmaFacts> d{dev(true, IommuKind::VfioType1, false), dev(false, IommuKind::None, true)};
    ProcessDmaPlan p = plan_process_dma(d, std::nullopt);
    ASSERT_FALSE(p.ok);
    EXPECT_EQ(p.device, 0u);
    EXPECT_NE(p.error.find("another device needs pa"), std::string::npos) << p.error;
    // A device that cannot work even alone is named with its own reason.
    d = {dev(true, IommuKind::VfioType1, false), dev(false, IommuKind::VfioType1, false)};
    p = plan_process_dma(d, std::nullopt);
    ASSERT_FALSE(p.ok);
    EXPECT_EQ(p.device, 1u);
    EXPECT_NE(p.error.find("does not offer VIRTIO_F_ACCESS_PLATFORM"), std::string::npos) << p.error;
}

TEST(ProcessIovaMode, ForcedVaIsRefusedForTheDeviceWithoutBit33) {
    std::vector<DeviceDmaFacts> d{dev(true, IommuKind::VfioType1), dev(false, IommuKind::VfioType1)};
    ProcessDmaPlan p = plan_process_dma(d, IovaMode::VA);
    ASSERT_FALSE(p.ok);
    EXPECT_EQ(p.device, 1u);
    EXPECT_NE(p.error.find("iommu_platform=on"), std::string::npos) << p.error;
    EXPECT_NE(p.error.find("--iova-mode=pa"), std::string::npos) << p.error;
}

TEST(ProcessIovaMode, NoIommuDevicesGivePa) {
    std::vector<DeviceDmaFacts> d{dev(true, IommuKind::VfioNoIommu), dev(false, IommuKind::VfioNoIommu)};
    ProcessDmaPlan p = plan_process_dma(d, std::nullopt);
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.mode, IovaMode::PA);
    EXPECT_FALSE(p.devices[0].map_identity_pa);
}

TEST(IovaPolicy, NarrowIommuGivesPaAndRefusesForcedVa) {
    DeviceDmaFacts in = facts(true, IommuKind::VfioType1, true, std::nullopt, (uint64_t{1} << 39) - 1);
    DmaPlan d = plan_device_dma(in);
    ASSERT_TRUE(d.ok) << d.error;
    EXPECT_EQ(d.mode, IovaMode::PA);
    EXPECT_TRUE(d.map_identity_pa);
    in.forced = IovaMode::VA;
    d = plan_device_dma(in);
    ASSERT_FALSE(d.ok);
    EXPECT_NE(d.error.find("aw-bits=48"), std::string::npos) << d.error;
    in.pagemap_readable = false;
    in.forced.reset();
    EXPECT_FALSE(plan_device_dma(in).ok);
}

// One memory, one source of physical addresses: PA cannot serve vhost-user and PCI at once.
TEST(ProcessIovaMode, PaCannotMixPublishedAndRealPhysicalAddresses) {
    std::vector<DeviceDmaFacts> d{dev(false, IommuKind::VhostIotlb), dev(false, IommuKind::VfioType1)};
    ProcessDmaPlan p = plan_process_dma(d, std::nullopt);
    ASSERT_FALSE(p.ok);
    EXPECT_NE(p.error.find("cannot serve vhost-user and PCI devices in one process"), std::string::npos) << p.error;
    // In VA mode they mix.
    d = {dev(true, IommuKind::VhostIotlb), dev(true, IommuKind::VfioType1)};
    p = plan_process_dma(d, std::nullopt);
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.mode, IovaMode::VA);
    // PA over vhost-user alone: the published layout.
    d = {dev(false, IommuKind::VhostIotlb), dev(true, IommuKind::VhostIotlb)};
    p = plan_process_dma(d, std::nullopt);
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.mode, IovaMode::PA);
    EXPECT_EQ(p.pa_source, PaSource::Linear);
    EXPECT_FALSE(p.devices[1].negotiate_access_platform);
}

// A device against memory made elsewhere (NetPort::open).
TEST(IovaPolicy, PlanForMemoryAcceptsSafeModesAndNamesTheFix) {
    // A VA-capable vhost-user back end in PA memory: fine (IOVA = guest-physical), bit 33 refused.
    DmaPlan p = plan_for_memory(dev(true, IommuKind::VhostIotlb), IovaMode::PA, PaSource::Linear, "vhost-user:/x");
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.mode, IovaMode::PA);
    EXPECT_FALSE(p.negotiate_access_platform);
    // ... but not with the real physical addresses.
    p = plan_for_memory(dev(true, IommuKind::VhostIotlb), IovaMode::PA, PaSource::Pagemap, "vhost-user:/x");
    ASSERT_FALSE(p.ok);
    EXPECT_NE(p.error.find("pa_source = PaSource::Linear"), std::string::npos) << p.error;
    // A back end without bit 33 in VA memory: the mode, the bit and both fixes.
    p = plan_for_memory(dev(false, IommuKind::VhostIotlb), IovaMode::VA, PaSource::Linear, "vhost-user:/x");
    ASSERT_FALSE(p.ok);
    EXPECT_NE(p.error.find("vhost-user:/x does not offer VIRTIO_F_ACCESS_PLATFORM (bit 33)"), std::string::npos)
        << p.error;
    EXPECT_NE(p.error.find("--iova-mode=pa"), std::string::npos) << p.error;
    EXPECT_NE(p.error.find("iommu-support=1"), std::string::npos) << p.error;
    // A PCI device with published (linear) PA memory.
    p = plan_for_memory(dev(false, IommuKind::VfioType1), IovaMode::PA, PaSource::Linear, "pci:0000:00:04.0");
    ASSERT_FALSE(p.ok);
    EXPECT_NE(p.error.find("PaSource::Pagemap"), std::string::npos) << p.error;
}

TEST(IovaPolicy, ParseAndPrint) {
    EXPECT_EQ(parse_iova_mode("pa"), IovaMode::PA);
    EXPECT_EQ(parse_iova_mode("VA"), IovaMode::VA);
    EXPECT_EQ(parse_iova_mode("auto"), std::nullopt);
    EXPECT_EQ(parse_iova_mode(""), std::nullopt);
    EXPECT_EQ(parse_iova_mode("xa"), std::nullopt);
    EXPECT_EQ(to_string(IovaMode::PA), "pa");
    EXPECT_EQ(to_string(IommuKind::VfioNoIommu), "vfio-noiommu");
    EXPECT_EQ(to_string(IommuKind::Uio), "uio");
    EXPECT_EQ(to_string(PaSource::Linear), "linear");
}

// The window rows: the device's own row decides the window's mode; where
// nothing enforces the window (real physical addresses, no IOMMU in the
// device's way) the plan carries a warning, elsewhere none.
TEST(WindowPolicy, EachRowGivesTheDevicesOwnModeAndWarnsWhereNothingEnforces) {
    struct {
        DeviceDmaFacts f;
        IovaMode mode;
        bool warned;
    } rows[] = {
        {facts(true, T1, true), VA, false},                       // type1 maps only the window
        {facts(true, IommuKind::VhostIotlb, false), VA, false},   // IOTLB: vireo answers only window misses
        {facts(false, IommuKind::VhostIotlb, false), PA, false},  // the memory table holds only the window
        {facts(true, NOI, true), PA, true},                       // no IOMMU: a convention
        {facts(false, T1, true), PA, true},                       // bit 33 absent: bypasses the IOMMU
        {facts(false, NONE, true), PA, true},
    };
    for (const auto& r : rows) {
        const DmaPlan p = plan_window_dma(r.f, "dev");
        ASSERT_TRUE(p.ok) << p.error;
        EXPECT_EQ(p.arrangement, DmaArrangement::Window);
        EXPECT_EQ(p.mode, r.mode) << p.why;
        EXPECT_EQ(!p.warning.empty(), r.warned) << p.warning;
        if (r.warned) {
            EXPECT_NE(p.warning.find("nothing stops it"), std::string::npos) << p.warning;
        }
    }
    // What cannot work directly cannot work in a window either: same error, named.
    const DmaPlan bad = plan_window_dma(facts(false, NONE, false), "pci:0000:00:05.0");
    ASSERT_FALSE(bad.ok);
    EXPECT_NE(bad.error.find("pci:0000:00:05.0"), std::string::npos) << bad.error;
    EXPECT_NE(bad.error.find("pagemap"), std::string::npos) << bad.error;
}

TEST(WindowPolicy, TheChoiceGoesDeviceThenProcessThenConfidentialGuest) {
    const ConfidentialGuest none{}, tdx{true, "Intel TDX: test"};
    const auto W = DmaArrangement::Window, D = DmaArrangement::Direct;
    EXPECT_EQ(choose_dma_arrangement(std::nullopt, std::nullopt, none).arrangement, D);
    const ArrangementChoice cc = choose_dma_arrangement(std::nullopt, std::nullopt, tdx);
    EXPECT_EQ(cc.arrangement, W);
    EXPECT_NE(cc.why.find("Intel TDX"), std::string::npos) << cc.why;
    EXPECT_EQ(choose_dma_arrangement(D, std::nullopt, tdx).arrangement, D);
    EXPECT_EQ(choose_dma_arrangement(std::nullopt, W, none).arrangement, W);
    EXPECT_EQ(choose_dma_arrangement(D, W, none).arrangement, D);
    EXPECT_EQ(choose_dma_arrangement(std::nullopt, D, tdx).arrangement, D);
    EXPECT_NE(choose_dma_arrangement(std::nullopt, W, none).why.find("--dma=window"), std::string::npos);
    EXPECT_EQ(parse_dma_arrangement("window"), DmaArrangement::Window);
    EXPECT_EQ(parse_dma_arrangement("direct"), DmaArrangement::Direct);
    EXPECT_EQ(parse_dma_arrangement("bounce"), std::nullopt);
}

// decide_dma, the one entry point: the keys pick the memory, the rows the addresses; with a shared memory made,
// a direct device lives in its mode or is refused with the fix.
TEST(DmaDecision, KeysThenRowsThenTheSharedMemory) {
    const ConfidentialGuest none{};
    const DeviceDmaFacts vhost_iotlb = facts(true, IommuKind::VhostIotlb, false);
    DmaPlan p = decide_dma(vhost_iotlb, {}, std::nullopt, none, "dev");
    EXPECT_TRUE(p.ok && p.mode == IovaMode::VA && p.arrangement == DmaArrangement::Direct) << p.error;
    p = decide_dma(vhost_iotlb, {.dma = DmaArrangement::Window}, std::nullopt, none, "dev");
    EXPECT_TRUE(p.ok && p.arrangement == DmaArrangement::Window && p.mode == IovaMode::VA) << p.error;
    EXPECT_NE(p.why.find("dma=window in the device string"), std::string::npos) << p.why;
    // The process's --iova-mode applies where the device string says nothing, the device's iova= wins.
    p = decide_dma(vhost_iotlb, {.process_iova = IovaMode::PA}, std::nullopt, none, "dev");
    EXPECT_TRUE(p.ok && p.mode == IovaMode::PA && !p.negotiate_access_platform) << p.error;
    p = decide_dma(vhost_iotlb, {.iova = IovaMode::VA, .process_iova = IovaMode::PA}, std::nullopt, none, "dev");
    EXPECT_TRUE(p.ok && p.mode == IovaMode::VA) << p.error;
    // Shared memory in PA (linear): the device that prefers VA takes PA, and says why.
    p = decide_dma(vhost_iotlb, {}, SharedMemory{IovaMode::PA, PaSource::Linear}, none, "dev");
    EXPECT_TRUE(p.ok && p.mode == IovaMode::PA) << p.error;
    EXPECT_NE(p.why.find("shared DMA memory is in mode pa"), std::string::npos) << p.why;
    // A device that bypasses the IOMMU cannot live in VA memory: refused, named, with the fix.
    p = decide_dma(facts(false, IommuKind::VhostIotlb, false), {}, SharedMemory{IovaMode::VA, PaSource::Linear}, none,
                   "vhost-user:/x");
    EXPECT_FALSE(p.ok);
    EXPECT_NE(p.error.find("vhost-user:/x"), std::string::npos) << p.error;
    EXPECT_NE(p.error.find("--iova-mode=pa"), std::string::npos) << p.error;
    // A window ignores the shared memory: it has its own.
    p = decide_dma(vhost_iotlb, {.dma = DmaArrangement::Window}, SharedMemory{IovaMode::PA, PaSource::Linear}, none,
                   "dev");
    EXPECT_TRUE(p.ok && p.mode == IovaMode::VA && p.arrangement == DmaArrangement::Window) << p.error;
    // VFIO type1 in PA mode: the plan says the IOMMU maps IOVA = PA too (the container reads it).
    p = decide_dma(facts(false, IommuKind::VfioType1, true), {}, std::nullopt, none, "pci:0000:00:04.0");
    EXPECT_TRUE(p.ok && p.mode == IovaMode::PA && p.map_identity_pa) << p.error;
}

TEST(DmaDecision, AProcessSharesOneMemoryAndWindowsKeepTheirOwn) {
    const ConfidentialGuest none{};
    const std::vector<DeviceDmaFacts> f = {facts(true, IommuKind::VhostIotlb, false),
                                           facts(false, IommuKind::VhostIotlb, false),
                                           facts(true, IommuKind::VhostIotlb, false)};
    const std::vector<std::string> names = {"a", "b", "c"};
    std::vector<DmaKeys> k(3);
    k[2].dma = DmaArrangement::Window;
    ProcessDma p = decide_process_dma(f, k, none, names);
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.memory.mode, IovaMode::PA);  // b bypasses the IOMMU: the shared memory is PA
    EXPECT_EQ(p.devices[0].mode, IovaMode::PA);
    EXPECT_EQ(p.devices[1].mode, IovaMode::PA);
    EXPECT_EQ(p.devices[2].mode, IovaMode::VA);  // c's window is its own, in its own row's mode
    EXPECT_EQ(p.devices[2].arrangement, DmaArrangement::Window);
    // The process's --dma=window applies to all three, and no memory is shared by anyone.
    for (DmaKeys& x : k) x.process_dma = DmaArrangement::Window;
    k[1].dma = DmaArrangement::Direct;
    p = decide_process_dma(f, k, none, names);
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.devices[0].arrangement, DmaArrangement::Window);
    EXPECT_EQ(p.devices[1].arrangement, DmaArrangement::Direct);
    // --iova-mode=va for all: b cannot take it, and the error names it.
    for (DmaKeys& x : k) x = {.process_iova = IovaMode::VA};
    p = decide_process_dma(f, k, none, names);
    ASSERT_FALSE(p.ok);
    EXPECT_EQ(p.error.rfind("b (", 0), 0u) << p.error;
}

// The markers, each in a fake root; a host's capability flags (sev, sev_es)
// are not a guest.
TEST(WindowPolicy, ConfidentialGuestMarkers) {
    namespace fs = std::filesystem;
    const fs::path root = fs::temp_directory_path() / ("vireo-cc-" + std::to_string(::getpid()));
    auto fresh = [&](const std::string& flags) {
        fs::remove_all(root);
        fs::create_directories(root / "proc");
        std::ofstream(root / "proc/cpuinfo") << "processor\t: 0\nflags\t\t: fpu sse2 " << flags << "\n\n";
    };
    fresh("sev sev_es");
    EXPECT_FALSE(probe_confidential_guest(root.string()).detected);
    fresh("tdx_guest");
    EXPECT_NE(probe_confidential_guest(root.string()).evidence.find("tdx_guest"), std::string::npos);
    fresh("");
    fs::create_directories(root / "sys/devices/platform/sev-guest");
    EXPECT_NE(probe_confidential_guest(root.string()).evidence.find("SEV-SNP"), std::string::npos);
    fresh("");
    fs::create_directories(root / "dev");
    std::ofstream(root / "dev/tdx_guest") << "";
    EXPECT_NE(probe_confidential_guest(root.string()).evidence.find("TDX"), std::string::npos);
    fs::remove_all(root);
}

// vhost-vdpa's IOVA range decides between IOVA = VA and IOVAs vireo lays out
// inside it; either way the IOTLB is ours, so bit 33 is negotiated and a
// window is enforced.
DeviceDmaFacts vdpa(uint64_t first, uint64_t last, std::optional<IovaMode> forced = std::nullopt) {
    DeviceDmaFacts d = facts(true, IommuKind::VdpaIotlb, false, forced, last);
    d.traits.iommu_min_iova = first;
    return d;
}

TEST(VdpaRange, AWholeRangeTakesVirtualAddresses) {
    const DmaPlan p = plan_device_dma(vdpa(0, ~uint64_t{0}));
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.mode, IovaMode::VA);
    EXPECT_TRUE(p.negotiate_access_platform);
}

TEST(VdpaRange, ANarrowRangeGetsIovasLaidOutInsideIt) {
    for (const auto& [first, last] : {std::pair<uint64_t, uint64_t>{0, (uint64_t{1} << 39) - 1},
                                      std::pair<uint64_t, uint64_t>{uint64_t{1} << 20, ~uint64_t{0}}}) {
        const DmaPlan p = plan_device_dma(vdpa(first, last));
        ASSERT_TRUE(p.ok) << p.error;
        EXPECT_EQ(p.mode, IovaMode::PA);
        EXPECT_EQ(p.pa_source, PaSource::Linear);
        EXPECT_TRUE(p.negotiate_access_platform);  // the IOVAs are still the IOTLB's
        EXPECT_FALSE(p.map_identity_pa);
        EXPECT_NE(p.why.find("IOVA range"), std::string::npos) << p.why;
    }
}

TEST(VdpaRange, ForcedVirtualAddressesOutsideTheRangeAreRefusedWithTheFix) {
    const DmaPlan p = plan_device_dma(vdpa(0, (uint64_t{1} << 39) - 1, IovaMode::VA));
    ASSERT_FALSE(p.ok);
    EXPECT_NE(p.error.find("IOVA range"), std::string::npos) << p.error;
    EXPECT_NE(p.error.find("--iova-mode=pa"), std::string::npos) << p.error;
}

TEST(VdpaRange, Bit33SwitchedOffInTheDeviceStringIsRefusedWithTheFix) {
    DeviceDmaFacts d = vdpa(0, ~uint64_t{0});
    d.access_platform_offered = false;
    d.access_platform_switched_off = true;
    const DmaPlan p = plan_device_dma(d);
    ASSERT_FALSE(p.ok);
    EXPECT_NE(p.error.find("do not switch access_platform off"), std::string::npos) << p.error;
}

TEST(VdpaRange, AWindowIsEnforcedInEitherMode) {
    for (const DeviceDmaFacts& d : {vdpa(0, ~uint64_t{0}), vdpa(0, (uint64_t{1} << 39) - 1)}) {
        const DmaPlan p = plan_window_dma(d, "vhost-vdpa:/dev/vhost-vdpa-0");
        ASSERT_TRUE(p.ok) << p.error;
        EXPECT_EQ(p.arrangement, DmaArrangement::Window);
        EXPECT_TRUE(p.warning.empty()) << p.warning;
    }
}

}  // namespace
}  // namespace vireo
