// PCI discovery over a fake sysfs tree (the real one is exercised in tests/vm).
#include <gtest/gtest.h>

#include "support/fake_sysfs.hpp"
#include "vireo/iova/vfio.hpp"
#include "vireo/pmd/pci_discovery.hpp"

namespace vireo {
namespace {

using test::FakeSysfs;

TEST(PciDiscovery, ListsVirtioNetFunctionsOnlyWithGroupDriverAndNode) {
    FakeSysfs s;
    s.device("0000:00:11.0", "0x1af4", "0x1041", 7, "vfio-pci", 1);
    s.device("0000:00:10.0", "0x1af4", "0x1000", 3, "virtio-pci", -1);
    s.device("0000:00:12.0", "0x1af4", "0x1042", 4, "vfio-pci", 0);  // virtio-blk: not listed
    s.device("0000:00:13.0", "0x8086", "0x1041", 5, "vfio-pci", 0);  // not virtio
    s.device("0000:00:14.0", "0x1af4", "0x1041", 9, "vfio-pci", 0, "vfio-noiommu");
    auto list = list_virtio_net_pci(/*probe=*/false, s.root.string());
    ASSERT_EQ(list.size(), 3u);
    EXPECT_EQ(list[0].bdf, "0000:00:10.0");  // sorted by address
    EXPECT_EQ(list[0].device_id, 0x1000);
    EXPECT_EQ(list[0].driver, "virtio-pci");
    EXPECT_EQ(list[0].iommu_group, 3);
    EXPECT_EQ(list[0].numa_node, -1);
    EXPECT_EQ(list[1].bdf, "0000:00:11.0");
    EXPECT_EQ(list[1].iommu_group, 7);
    EXPECT_EQ(list[1].numa_node, 1);
    EXPECT_FALSE(list[1].noiommu_group);
    EXPECT_TRUE(list[2].noiommu_group);
    const std::string table = format_device_list(list);
    EXPECT_NE(table.find("0000:00:11.0"), std::string::npos) << table;
    EXPECT_EQ(table.find("0000:00:12.0"), std::string::npos) << table;
    EXPECT_NE(table.find("noiommu-9"), std::string::npos) << table;  // as /dev/vfio names it
}

TEST(PciDiscovery, GroupOfADeviceWithoutIommuIsNone) {
    FakeSysfs s;
    s.device("0000:00:10.0", "0x1af4", "0x1041", -1, "", 0);
    EXPECT_EQ(vfio_group_of("0000:00:10.0", s.root.string()).number, -1);
    EXPECT_EQ(vfio_group_of("0000:00:99.0", s.root.string()).number, -1);
}

TEST(PciDiscovery, NoDevicesIsAnEmptyListThatSaysSo) {
    FakeSysfs s;
    auto list = list_virtio_net_pci(false, s.root.string());
    EXPECT_TRUE(list.empty());
    EXPECT_NE(format_device_list(list).find("no virtio-net PCI devices"), std::string::npos);
}

}  // namespace
}  // namespace vireo
