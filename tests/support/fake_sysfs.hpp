// A fake /sys tree in a temporary folder: PCI functions with their ids,
// IOMMU group, driver and NUMA node, for discovery and binding tests.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace vireo::test {

namespace fs = std::filesystem;

struct FakeSysfs {
    fs::path root;
    explicit FakeSysfs(const std::string& tag = "sysfs")
        : root(fs::temp_directory_path() / ("vireo-" + tag + "-" + std::to_string(::getpid()))) {
        fs::remove_all(root);
    }
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

}  // namespace vireo::test
