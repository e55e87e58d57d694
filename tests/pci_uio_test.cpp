// The PCI function layer without hardware: which driver a device string
// reaches, the bind advice for any other, and UioDevice plus the virtio-pci
// transport over a fake sysfs tree whose BAR and /dev/uioN are plain files
// (mmap, pread and flock behave on them as on the real ones). The real
// uio_pci_generic is exercised in the VM suite (tests/vm/guest-noiommu.sh).
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <fstream>

#include "support/error_of.hpp"
#include "support/fake_sysfs.hpp"
#include "support/pci_config_space.hpp"
#include "transport/pci/pci_function.hpp"
#include "transport/pci/uio_device.hpp"
#include "transport/pci/virtio_pci_transport.hpp"
#include "vireo/base/error.hpp"
#include "vireo/iova/dma_memory.hpp"

namespace vireo {
namespace {

using test::error_of;
using test::FakeSysfs;
namespace fs = std::filesystem;

constexpr const char* kBdf = "0000:00:10.0";
constexpr size_t kBar4 = 0x4000;

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// A virtio-net function bound to uio_pci_generic as uio0: QEMU's capability
// layout in config space, BAR 4 a 16 KiB file, BAR 0 an I/O-port BAR.
struct UioTree : FakeSysfs {
    fs::path dev = root / "dev";
    fs::path fn = root / "bus/pci/devices" / kBdf;
    UioTree() : FakeSysfs("uio") {
        device(kBdf, "0x1af4", "0x1041", -1, "uio_pci_generic", 0);
        test::Space cfg = test::qemu_like();
        cfg.b[2] = 0x41;  // device id 0x1041: modern virtio-net
        cfg.b[3] = 0x10;
        cfg.b[4] = 0x03;  // command: I/O + Memory Space, INTx Disable set (as the kernel leaves a masked line)
        cfg.b[5] = 0x04;
        std::ofstream(fn / "config", std::ios::binary).write(reinterpret_cast<const char*>(cfg.b.data()), 256);
        write(fn / "irq", "20");
        fs::create_directories(fn / "uio/uio0");
        fs::create_directories(dev);
        std::ofstream(dev / "uio0") << "";
        std::ofstream res(fn / "resource");
        res << "0x000000000000c000 0x000000000000c01f 0x0000000000040101\n";  // BAR 0: I/O ports
        for (int i = 1; i < 4; i++) res << "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
        res << "0x00000000fe000000 0x00000000fe003fff 0x000000000014220c\n";  // BAR 4: 64-bit memory
        std::ofstream(fn / "resource0") << "";
        fs::resize_file(write_empty(fn / "resource4"), kBar4);
    }
    fs::path write_empty(const fs::path& p) {
        std::ofstream(p) << "";
        return p;
    }
    uint16_t command() {
        std::ifstream f(fn / "config", std::ios::binary);
        f.seekg(4);
        return static_cast<uint16_t>(f.get() | f.get() << 8);
    }
};

TEST(PciBinding, AdviceWithoutAnIommuPutsUioFirstAndGivesEveryCommand) {
    FakeSysfs s("bind");
    s.device(kBdf, "0x1af4", "0x1041", -1, "virtio-pci", 0);
    const std::string a = pci_binding_advice(kBdf, "virtio-pci", s.root.string());
    EXPECT_TRUE(has(a, "pci:0000:00:10.0 is bound to virtio-pci")) << a;
    EXPECT_TRUE(has(a, "modprobe uio_pci_generic")) << a;
    EXPECT_TRUE(has(a, "modprobe vfio enable_unsafe_noiommu_mode=1")) << a;
    EXPECT_TRUE(has(a, "modprobe vfio-pci")) << a;
    EXPECT_TRUE(has(a, "echo uio_pci_generic > /sys/bus/pci/devices/0000:00:10.0/driver_override")) << a;
    EXPECT_TRUE(has(a, "echo 0000:00:10.0 > /sys/bus/pci/devices/0000:00:10.0/driver/unbind")) << a;
    EXPECT_TRUE(has(a, "echo 0000:00:10.0 > /sys/bus/pci/drivers_probe")) << a;
    EXPECT_TRUE(has(a, "Debian's is not")) << a;
    EXPECT_TRUE(has(a, "shows no IOMMU")) << a;
    EXPECT_LT(a.find("uio_pci_generic (no IOMMU"), a.find("vfio-pci behind the IOMMU")) << a;
}

TEST(PciBinding, AdviceWithAnIommuPutsVfioFirstAndAnUnboundDeviceNeedsNoUnbind) {
    FakeSysfs s("bind");
    s.device(kBdf, "0x1af4", "0x1041", 3, "", 0);
    s.write(s.root / "module/vfio/parameters/enable_unsafe_noiommu_mode", "N");
    const std::string a = pci_binding_advice(kBdf, "", s.root.string());
    EXPECT_TRUE(has(a, "is bound to no driver")) << a;
    EXPECT_FALSE(has(a, "unbind")) << a;
    EXPECT_FALSE(has(a, "shows no IOMMU")) << a;
    EXPECT_TRUE(has(a, "which this one is")) << a;
    EXPECT_LT(a.find("vfio-pci behind the IOMMU"), a.find("uio_pci_generic (no IOMMU")) << a;
}

TEST(PciBinding, OpeningADeviceOnAnotherDriverThrowsTheAdvice) {
    FakeSysfs s("bind");
    s.device(kBdf, "0x1af4", "0x1041", -1, "virtio-pci", 0);
    const std::string e = error_of([&] { open_pci_function(kBdf, s.root.string()); });
    EXPECT_TRUE(has(e, "bound to virtio-pci")) << e;
    EXPECT_TRUE(has(e, "driver_override")) << e;
    const std::string missing = error_of([&] { open_pci_function("0000:00:1f.0", s.root.string()); });
    EXPECT_TRUE(has(missing, "no such PCI device")) << missing;
}

TEST(UioDevice, ADeviceOnUioPciGenericIsOpenedThroughUio) {
    UioTree t;
    // The fake tree's uio0 has no /dev/uio0 on this machine: the error shows
    // which way open_pci_function went.
    const std::string e = error_of([&] { open_pci_function(kBdf, t.root.string()); });
    EXPECT_TRUE(has(e, "/dev/uio0")) << e;
    fs::remove_all(t.fn / "uio");
    const std::string none = error_of([&] { open_pci_function(kBdf, t.root.string()); });
    EXPECT_TRUE(has(none, "names no uio device")) << none;
}

TEST(UioDevice, MapsBarsWritesConfigAndRefusesIoBars) {
    UioTree t;
    UioDevice d(kBdf, t.root.string(), t.dev.string());
    EXPECT_EQ(d.uio_node(), (t.dev / "uio0").string());
    EXPECT_EQ(d.config_read16(0), 0x1af4);
    EXPECT_EQ(d.config_read16(2), 0x1041);
    PciMappedBar bar = d.map_bar(4);
    ASSERT_EQ(bar.size(), kBar4);
    bar.base()[0x100] = 0x5a;  // a store through the mapping reaches the "device"
    ::msync(bar.base(), kBar4, MS_SYNC);
    std::ifstream res(t.fn / "resource4", std::ios::binary);
    res.seekg(0x100);
    EXPECT_EQ(res.get(), 0x5a);
    const std::string io = error_of([&] { d.map_bar(0); });
    EXPECT_TRUE(has(io, "I/O-port BAR")) << io;
    const std::string empty = error_of([&] { d.map_bar(2); });
    EXPECT_TRUE(has(empty, "resource2") || has(empty, "empty")) << empty;
    d.enable_bus_master();
    EXPECT_EQ(d.config_read16(4) & 0x6, 0x6);  // Memory Space + Bus Master
}

TEST(UioDevice, OneProcessOneDriverPerDevice) {
    UioTree t;
    UioDevice a(kBdf, t.root.string(), t.dev.string());
    const std::string e = error_of([&] { UioDevice b(kBdf, t.root.string(), t.dev.string()); });
    EXPECT_TRUE(has(e, "held by another process")) << e;
}

TEST(UioDevice, RefusesVirtualAddressMemory) {
    UioTree t;
    UioDevice d(kBdf, t.root.string(), t.dev.string());
    DmaMemoryOptions o;
    o.mode = IovaMode::VA;
    o.region_size = 1 << 20;
    o.region.backing = DmaBacking::Memfd4K;
    DmaMemory mem(o);
    DmaPlan plan;
    plan.ok = true;
    plan.mode = IovaMode::VA;
    const std::string e = error_of([&] { d.attach_memory(mem, plan); });
    EXPECT_TRUE(has(e, "uio_pci_generic")) << e;
    EXPECT_TRUE(has(e, "--iova-mode=pa")) << e;
}

TEST(UioDevice, TheTransportRunsOverItWithIntxAndReportsNoIommu) {
    UioTree t;
    auto d = std::make_unique<UioDevice>(kBdf, t.root.string(), t.dev.string());
    UioDevice* raw = d.get();
    VirtioPciTransport tr(std::move(d));
    EXPECT_EQ(tr.describe(), "pci:0000:00:10.0");
    EXPECT_EQ(tr.config_event_fd(), raw->irq_fd());
    EXPECT_GE(tr.config_event_fd(), 0);  // INTx wired: the uio node
    EXPECT_EQ(t.command() & 0x400, 0);   // INTx Disable cleared: the line may fire
    EXPECT_EQ(t.command() & 0x6, 0x6);   // Memory Space + Bus Master
    const DmaTraits tr_traits = tr.dma_traits();
    EXPECT_EQ(tr_traits.iommu, IommuKind::Uio);
    DeviceDmaFacts facts;
    facts.access_platform_offered = true;
    facts.traits = tr_traits;
    facts.pagemap_readable = true;
    EXPECT_EQ(plan_device_dma(facts).mode, IovaMode::PA);  // bit 33 + uio: physical addresses
    facts.forced = IovaMode::VA;
    const DmaPlan refused = plan_device_dma(facts);
    ASSERT_FALSE(refused.ok);
    EXPECT_TRUE(has(refused.error, "uio_pci_generic never has one")) << refused.error;
    EXPECT_TRUE(has(refused.error, "--iova-mode=pa")) << refused.error;
}

TEST(UioDevice, AFunctionWithoutAnInterruptLineIsPolledOnly) {
    UioTree t;
    t.write(t.fn / "irq", "0");
    {
        VirtioPciTransport tr(std::make_unique<UioDevice>(kBdf, t.root.string(), t.dev.string()));
        EXPECT_EQ(tr.config_event_fd(), -1);
        EXPECT_FALSE(tr.poll_config_change());
    }
    EXPECT_NE(t.command() & 0x400, 0);  // never unmasked
}

}  // namespace
}  // namespace vireo
