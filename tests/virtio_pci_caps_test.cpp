// The virtio PCI capability walk (virtio 1.2 4.1.4) on synthetic config spaces;
// the real devices are exercised in the VM suite (tests/vm/).
#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "support/error_of.hpp"
#include "support/pci_config_space.hpp"
#include "transport/pci/virtio_pci_caps.hpp"
#include "vireo/base/error.hpp"

namespace vireo {
namespace {

using namespace virtio_pci;
using test::error_of;

using test::qemu_like;
using test::Space;

TEST(VirtioPciCaps, FindsEveryStructure) {
    Space s = qemu_like();
    Layout l = parse_caps(s.b, "pci:x");
    EXPECT_TRUE(l.common.present);
    EXPECT_EQ(l.common.bar, 4);
    EXPECT_EQ(l.common.offset, 0u);
    EXPECT_EQ(l.isr.offset, 0x1000u);
    EXPECT_EQ(l.device.offset, 0x2000u);
    EXPECT_EQ(l.notify.offset, 0x3000u);
    EXPECT_EQ(l.notify_off_multiplier, 4u);
    EXPECT_EQ(l.pci_cfg_cap, 0x84);
    EXPECT_EQ(l.msix_cap, 0x98);
    EXPECT_EQ(l.msix_vectors, 4);
}

TEST(VirtioPciCaps, UsesTheFirstOfEachTypeAndSkipsReservedBars) {
    Space s = qemu_like();
    s.virtio(0xa8, kCapCommonCfg, 2, 0x8000, 0x1000);  // a second common cfg: ignored
    s.virtio(0xb8, kCapDeviceCfg, 7, 0, 0x100);        // BAR 7 is reserved: ignored
    Layout l = parse_caps(s.b, "pci:x");
    EXPECT_EQ(l.common.bar, 4);
    EXPECT_EQ(l.device.offset, 0x2000u);
}

TEST(VirtioPciCaps, LegacyOnlyDeviceIsAClearError) {
    Space s;
    s.add(0x98, kPciCapMsix, 12);
    std::string e = error_of([&] { parse_caps(s.b, "pci:0000:00:03.0"); });
    EXPECT_NE(e.find("pci:0000:00:03.0"), std::string::npos) << e;
    EXPECT_NE(e.find("legacy-only"), std::string::npos) << e;
    EXPECT_NE(e.find("disable-legacy=on"), std::string::npos) << e;
    s.b[6] = 0;  // no capability list at all
    e = error_of([&] { parse_caps(s.b, "pci:y"); });
    EXPECT_NE(e.find("legacy-only"), std::string::npos) << e;
}

TEST(VirtioPciCaps, MissingStructureIsNamed) {
    Space s;
    s.virtio(0x40, kCapCommonCfg, 4, 0, 0x1000);
    s.virtio(0x50, kCapIsrCfg, 4, 0x1000, 0x1000);
    s.virtio(0x60, kCapDeviceCfg, 4, 0x2000, 0x1000);
    std::string e = error_of([&] { parse_caps(s.b, "pci:z"); });
    EXPECT_NE(e.find("notify"), std::string::npos) << e;
}

TEST(VirtioPciCaps, LoopingOrOutOfRangeListIsMalformed) {
    Space s = qemu_like();
    s.b[0x40 + 1] = 0x98;  // common -> MSI-X -> ... -> common: a loop
    s.b[0x98 + 1] = 0x84;
    s.b[0x84 + 1] = 0x70;
    std::string e = error_of([&] { parse_caps(s.b, "pci:l"); });
    EXPECT_NE(e.find("malformed"), std::string::npos) << e;
    Space t = qemu_like();
    t.b[0x34] = 0x10;  // inside the standard header
    e = error_of([&] { parse_caps(t.b, "pci:h"); });
    EXPECT_NE(e.find("malformed"), std::string::npos) << e;
}

TEST(VirtioPciCaps, ShortCommonStructureIsRefused) {
    Space s = qemu_like();
    uint32_t len = 32;
    std::memcpy(&s.b[0x40 + 12], &len, 4);
    std::string e = error_of([&] { parse_caps(s.b, "pci:s"); });
    EXPECT_NE(e.find("shorter than"), std::string::npos) << e;
}

}  // namespace
}  // namespace vireo
