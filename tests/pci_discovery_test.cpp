// PCI discovery over a fake sysfs tree (the real one is exercised in tests/vm).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "vireo/iova/vfio.hpp"
#include "vireo/pmd/pci_discovery.hpp"

namespace vireo {
namespace {

namespace fs = std::filesystem;

struct FakeSysfs {
    fs::path root = fs::temp_directory_path() / ("vireo-sysfs-" + std::to_string(::getpid()));
    FakeSysfs() { fs::remove_all(root); }
    ~FakeSysfs() { fs::remove_all(root); }
    void write(const fs::path& p, const std::string& s) {
        fs::create_directories(p.parent_path());
        std::ofstream(p) << s << "\n";
    }
    void device(const std::string& bdf, const std::string& vendor, const std::string& id, int group,
                const std::string& driver, int numa, const std::string& group_name = "") {
        fs::path d = root / "bus/pci/devices" / bdf;
        write(d / "vendor", vendor);
        write(d / "device", id);
        write(d / "numa_node", std::to_string(numa));
        if (group >= 0) {
            fs::path g = root / "kernel/iommu_groups" / std::to_string(group);
            fs::create_directories(g);
            if (!group_name.empty()) write(g / "name", group_name);
            fs::create_symlink(g, d / "iommu_group");
        }
        if (!driver.empty()) {
            fs::create_directories(root / "bus/pci/drivers" / driver);
            fs::create_symlink(root / "bus/pci/drivers" / driver, d / "driver");
        }
    }
};

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
