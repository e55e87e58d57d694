// The IOVA decision table: every row of the rule in iova_mode.hpp.
#include <gtest/gtest.h>

#include "vireo/iova/iova_mode.hpp"

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

constexpr auto VA = IovaMode::VA;
constexpr auto PA = IovaMode::PA;
constexpr auto T1 = IommuKind::VfioType1;
constexpr auto NOI = IommuKind::VfioNoIommu;
constexpr auto NONE = IommuKind::None;
constexpr auto IOTLB = IommuKind::VhostIotlb;
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
    // bit 33 not offered: the device bypasses the IOMMU
    {false, T1, true, AUTO, true, PA, true, ""},
    {false, T1, false, AUTO, false, PA, false, "iommu_platform=on"},
    {false, NOI, true, AUTO, true, PA, false, ""},
    {false, NOI, false, AUTO, false, PA, false, "run as root"},
    {false, NONE, true, AUTO, true, PA, false, ""},
    {false, NONE, false, AUTO, false, PA, false, "run as root"},
    {false, IOTLB, true, AUTO, true, PA, false, ""},
    // --iova-mode=va
    {true, T1, false, VA, true, VA, false, ""},
    {true, IOTLB, false, VA, true, VA, false, ""},
    {true, NOI, true, VA, false, VA, false, "--iova-mode=pa"},
    {true, NONE, true, VA, false, VA, false, "intel_iommu=on"},
    {false, T1, true, VA, false, VA, false, "iommu_platform=on"},
    {false, NONE, true, VA, false, VA, false, "bypasses the IOMMU"},
    // --iova-mode=pa
    {true, T1, true, PA, true, PA, true, ""},
    {true, T1, false, PA, false, PA, false, "CAP_SYS_ADMIN"},
    {true, NOI, true, PA, true, PA, false, ""},
    {false, NONE, true, PA, true, PA, false, ""},
    {false, NONE, false, PA, false, PA, false, "run as root"},
};

class IovaDecisionTable : public ::testing::TestWithParam<Row> {};

TEST_P(IovaDecisionTable, Row) {
    const Row& r = GetParam();
    IovaDecision d = decide_iova_mode({r.bit, r.iommu, r.phys, r.forced});
    ASSERT_EQ(d.ok, r.ok) << d.error;
    if (r.ok) {
        EXPECT_EQ(d.mode, r.mode);
        EXPECT_EQ(d.map_identity_pa, r.identity);
        EXPECT_TRUE(d.error.empty());
    } else {
        EXPECT_NE(d.error.find(r.error_mentions), std::string::npos) << d.error;
    }
}

INSTANTIATE_TEST_SUITE_P(EveryRow, IovaDecisionTable, ::testing::ValuesIn(kTable));

// The process-wide choice over several devices.
IovaInputs dev(bool bit, IommuKind k, bool phys = true) { return {bit, k, phys, std::nullopt}; }

TEST(ProcessIovaMode, AllVaCapableDevicesGiveVa) {
    std::vector<IovaInputs> d{dev(true, IommuKind::VfioType1), dev(true, IommuKind::VfioType1)};
    ProcessIovaDecision p = decide_process_iova_mode(d, std::nullopt);
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.mode, IovaMode::VA);
    ASSERT_EQ(p.devices.size(), 2u);
    EXPECT_FALSE(p.devices[0].map_identity_pa);
}

TEST(ProcessIovaMode, OneBypassingDeviceMakesItPaWithIdentityMapsForTheOthers) {
    std::vector<IovaInputs> d{dev(true, IommuKind::VfioType1), dev(false, IommuKind::VfioType1)};
    ProcessIovaDecision p = decide_process_iova_mode(d, std::nullopt);
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.mode, IovaMode::PA);
    EXPECT_TRUE(p.devices[0].map_identity_pa);
    EXPECT_TRUE(p.devices[1].map_identity_pa);
}

TEST(ProcessIovaMode, PaWithoutPhysicalAddressesNamesTheDeviceThatNeedsIt) {
    // The first device could run VA alone, but the second needs PA, which the first cannot have.
    std::vector<IovaInputs> d{dev(true, IommuKind::VfioType1, false), dev(false, IommuKind::None, true)};
    ProcessIovaDecision p = decide_process_iova_mode(d, std::nullopt);
    ASSERT_FALSE(p.ok);
    EXPECT_EQ(p.device, 0u);
    EXPECT_NE(p.error.find("another device needs pa"), std::string::npos) << p.error;
    // A device that cannot work even alone is named with its own reason.
    d = {dev(true, IommuKind::VfioType1, false), dev(false, IommuKind::VfioType1, false)};
    p = decide_process_iova_mode(d, std::nullopt);
    ASSERT_FALSE(p.ok);
    EXPECT_EQ(p.device, 1u);
    EXPECT_NE(p.error.find("does not offer VIRTIO_F_ACCESS_PLATFORM"), std::string::npos) << p.error;
}

TEST(ProcessIovaMode, ForcedVaIsRefusedForTheDeviceWithoutBit33) {
    std::vector<IovaInputs> d{dev(true, IommuKind::VfioType1), dev(false, IommuKind::VfioType1)};
    ProcessIovaDecision p = decide_process_iova_mode(d, IovaMode::VA);
    ASSERT_FALSE(p.ok);
    EXPECT_EQ(p.device, 1u);
    EXPECT_NE(p.error.find("iommu_platform=on"), std::string::npos) << p.error;
    EXPECT_NE(p.error.find("--iova-mode=pa"), std::string::npos) << p.error;
}

TEST(ProcessIovaMode, NoIommuDevicesGivePa) {
    std::vector<IovaInputs> d{dev(true, IommuKind::VfioNoIommu), dev(false, IommuKind::VfioNoIommu)};
    ProcessIovaDecision p = decide_process_iova_mode(d, std::nullopt);
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.mode, IovaMode::PA);
    EXPECT_FALSE(p.devices[0].map_identity_pa);
}

TEST(IovaMode, NarrowIommuGivesPaAndRefusesForcedVa) {
    IovaInputs in{true, IommuKind::VfioType1, true, std::nullopt, /*iommu_covers_va=*/false};
    IovaDecision d = decide_iova_mode(in);
    ASSERT_TRUE(d.ok) << d.error;
    EXPECT_EQ(d.mode, IovaMode::PA);
    EXPECT_TRUE(d.map_identity_pa);
    in.forced = IovaMode::VA;
    d = decide_iova_mode(in);
    ASSERT_FALSE(d.ok);
    EXPECT_NE(d.error.find("aw-bits=48"), std::string::npos) << d.error;
    in.physical_addresses_available = false;
    in.forced.reset();
    EXPECT_FALSE(decide_iova_mode(in).ok);
}

TEST(IovaMode, ParseAndPrint) {
    EXPECT_EQ(parse_iova_mode("pa"), IovaMode::PA);
    EXPECT_EQ(parse_iova_mode("VA"), IovaMode::VA);
    EXPECT_EQ(parse_iova_mode("auto"), std::nullopt);
    EXPECT_EQ(parse_iova_mode(""), std::nullopt);
    EXPECT_EQ(parse_iova_mode("xa"), std::nullopt);
    EXPECT_EQ(to_string(IovaMode::PA), "pa");
    EXPECT_EQ(to_string(IommuKind::VfioNoIommu), "vfio-noiommu");
}

}  // namespace
}  // namespace vireo
