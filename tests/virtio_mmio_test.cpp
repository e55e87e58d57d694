// The virtio-mmio transport (virtio 1.2 section 4.2) against a register-level
// fake of a version-2 device, the /dev/mem way in over a file standing in for
// physical memory, discovery and binding advice over a fake sysfs, and a
// NetPort carrying frames over MMIO registers to the spec-written test device.
// The real devices (QEMU microvm) are tests/vm's vm-mmio.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <vector>

#include "support/device_model.hpp"
#include "support/error_of.hpp"
#include "support/fake_sysfs.hpp"
#include "support/features_print.hpp"
#include "transport/mmio/devmem_device.hpp"
#include "transport/mmio/mmio_device.hpp"
#include "transport/mmio/virtio_mmio_regs.hpp"
#include "transport/mmio/virtio_mmio_transport.hpp"
#include "vireo/base/error.hpp"
#include "vireo/iova/iova_policy.hpp"
#include "vireo/pmd/device_string.hpp"
#include "vireo/pmd/mmio_discovery.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

using namespace virtio_mmio;
using namespace virtio::feature;

// A version-2 virtio-mmio network device as registers (4.2.2), with QEMU's
// habits: any feature select above 0 means word 1 (both ways) unless
// decodes_high_selects, writing 0 to Status resets at once.
class FakeMmio final : public MmioDevice {
public:
    struct Queue {
        uint32_t num = 0, ready = 0;
        uint64_t desc = 0, driver = 0, device = 0;
    };
    explicit FakeMmio(bool with_irq, virtio::Features offered) : offered(offered) {
        if (with_irq) irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        config[netcfg_status] = 1;  // link up
    }
    ~FakeMmio() override {
        if (irq >= 0) ::close(irq);
    }
    const std::string& name() const noexcept override { return name_; }
    const char* access() const noexcept override { return "fake"; }
    uint32_t read32(uint32_t off) const override {
        std::lock_guard g(mu);
        switch (off) {
        case kMagicValue: return magic;
        case kVersion: return version;
        case kDeviceId: return device_id;
        case kVendorId: return 0x554d4551;
        case kDeviceFeatures: return offered.word(features_sel);
        case kQueueNumMax: return queue_sel < queues.size() ? queue_max : 0;
        case kQueueReady: return queue_sel < queues.size() ? queues[queue_sel].ready : 0;
        case kInterruptStatus: return interrupt_status;
        case kStatus: return status;
        case kConfigGeneration: return generation;
        default: ADD_FAILURE() << "read of register " << off; return 0;
        }
    }
    void write32(uint32_t off, uint32_t v) const override {
        std::lock_guard g(mu);
        auto half = [&](uint64_t& field, bool high) {
            field = high ? (field & 0xffffffffu) | uint64_t{v} << 32 : (field & ~uint64_t{0xffffffffu}) | v;
        };
        Queue* q = queue_sel < queues.size() ? &queues[queue_sel] : nullptr;
        switch (off) {
        case kDeviceFeaturesSel: features_sel = decodes_high_selects ? v : v != 0; break;
        case kDriverFeaturesSel: driver_sel = decodes_high_selects ? v : v != 0; break;
        case kDriverFeatures:
            if (driver_sel < accepted_words.size()) accepted_words[driver_sel] = v;
            break;
        case kQueueSel: queue_sel = v; break;
        case kQueueNum: q->num = v; break;
        case kQueueReady: q->ready = v; break;
        case kQueueDescLow: half(q->desc, false); break;
        case kQueueDescLow + 4: half(q->desc, true); break;
        case kQueueDriverLow: half(q->driver, false); break;
        case kQueueDriverLow + 4: half(q->driver, true); break;
        case kQueueDeviceLow: half(q->device, false); break;
        case kQueueDeviceLow + 4: half(q->device, true); break;
        case kInterruptAck:
            acked |= v;
            interrupt_status &= ~v;
            break;
        case kStatus:
            status = v;
            if (v == 0) {
                resets++;
                for (Queue& x : queues) x = Queue{};
            }
            break;
        default: ADD_FAILURE() << "write of register " << off;
        }
    }
    void read_bytes(uint32_t off, void* out, uint32_t len) const override {
        std::lock_guard g(mu);
        EXPECT_GE(off, kConfig);
        std::memcpy(out, config.data() + (off - kConfig), len);
        if (bump_generation_on_read > 0) {  // the device changed its configuration while it was read
            bump_generation_on_read--;
            generation++;
        }
    }
    Doorbell notify_doorbell() const override { return Doorbell::mmio32(&notify_reg); }
    int irq_fd() const noexcept override { return irq; }
    void irq_handled() noexcept override { handled++; }
    IommuKind iommu() const override { return IommuKind::VfioType1; }
    uint64_t max_iova() const override { return ~uint64_t{0}; }
    void attach_memory(DmaMemory&, const DmaPlan&) override {}

    // The device raises its line for `cause`.
    void raise(uint32_t cause) {
        {
            std::lock_guard g(mu);
            interrupt_status |= cause;
        }
        uint64_t one = 1;
        ASSERT_EQ(::write(irq, &one, sizeof one), 8);
    }
    virtio::Features accepted() const {
        virtio::Features f;
        for (uint32_t w = 0; w < accepted_words.size(); w++) f.set_word(w, accepted_words[w]);
        return f;
    }

    static constexpr size_t netcfg_status = 6;
    mutable std::mutex mu;
    std::string name_ = "LNRO0005:00";
    uint32_t magic = kMagic, version = kVersionModern, device_id = kDeviceIdNet;
    virtio::Features offered;
    bool decodes_high_selects = false;
    uint32_t queue_max = 256;
    mutable std::array<Queue, 3> queues{};
    mutable uint32_t features_sel = 0, driver_sel = 0, queue_sel = 0, status = 0, generation = 0;
    mutable std::array<uint32_t, 4> accepted_words{};
    mutable uint32_t interrupt_status = 0, acked = 0;
    mutable int resets = 0, bump_generation_on_read = 0;
    std::array<uint8_t, 64> config{};
    mutable volatile uint32_t notify_reg = 0xffffffff;
    int irq = -1;
    std::atomic<int> handled{0};
};

constexpr virtio::Features kOffered = virtio::bit(kVersion1) | virtio::bit(kAccessPlatform) | virtio::bit(kNetMac) |
                                      virtio::bit(kNetStatus) | virtio::bit(kNetMtu) | virtio::bit(kEventIdx);

bool readable_within(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
}

TEST(VirtioMmio, RefusesALegacyDeviceWithTheFix) {
    auto dev = std::make_unique<FakeMmio>(false, kOffered);
    dev->version = kVersionLegacy;
    const std::string e = error_of([&] { VirtioMmioTransport t(std::move(dev)); });
    EXPECT_NE(e.find("mmio:LNRO0005:00"), std::string::npos) << e;
    EXPECT_NE(e.find("legacy"), std::string::npos) << e;
    EXPECT_NE(e.find("-global virtio-mmio.force-legacy=false"), std::string::npos) << e;
}

TEST(VirtioMmio, RefusesWhatIsNotANetworkCard) {
    auto bad_magic = std::make_unique<FakeMmio>(false, kOffered);
    bad_magic->magic = 0xffffffff;
    EXPECT_NE(error_of([&] { VirtioMmioTransport t(std::move(bad_magic)); }).find("not a virtio-mmio device"),
              std::string::npos);
    auto empty = std::make_unique<FakeMmio>(false, kOffered);
    empty->device_id = 0;
    EXPECT_NE(error_of([&] { VirtioMmioTransport t(std::move(empty)); }).find("empty virtio-mmio slot"),
              std::string::npos);
    auto block = std::make_unique<FakeMmio>(false, kOffered);
    block->device_id = 2;
    EXPECT_NE(error_of([&] { VirtioMmioTransport t(std::move(block)); }).find("type 2, not a network card"),
              std::string::npos);
}

TEST(VirtioMmio, FeaturesAreTwoWordsEachWay) {
    auto dev = std::make_unique<FakeMmio>(false, kOffered);
    FakeMmio* d = dev.get();
    VirtioMmioTransport t(std::move(dev));
    EXPECT_EQ(d->resets, 1) << "the transport resets the device before anything else";
    EXPECT_EQ(t.device_features(), kOffered);
    t.set_features(virtio::bit(kVersion1) | virtio::bit(kNetMac));
    EXPECT_EQ(d->accepted(), virtio::bit(kVersion1) | virtio::bit(kNetMac));
    t.set_status(virtio::status::kAcknowledge);
    EXPECT_EQ(t.status(), virtio::status::kAcknowledge);
    t.reset();
    EXPECT_EQ(t.status(), 0);
}

// Virtio 1.4 numbers features past 63: a device that decodes selects 2 and 3
// offers them there, and the accepted ones go back the same way.
TEST(VirtioMmio, FeatureWordsPast63BothWays) {
    const virtio::Features offered = kOffered | virtio::bit(kNetGuestUdpTunnelGso) | virtio::bit(kNetHostUdpTunnelGso);
    auto dev = std::make_unique<FakeMmio>(false, offered);
    FakeMmio* d = dev.get();
    d->decodes_high_selects = true;
    VirtioMmioTransport t(std::move(dev));
    EXPECT_EQ(t.device_features(), offered);
    const virtio::Features accept = virtio::bit(kVersion1) | virtio::bit(kNetHostUdpTunnelGso);
    t.set_features(accept);
    EXPECT_EQ(d->accepted(), accept);
    EXPECT_EQ(hex(accept), "0x8_0000000100000000");
}

// QEMU's virtio-mmio folds every select above 0 onto word 1: its word 3 repeats
// word 1 (VERSION_1 would read as bit 96), so nothing past 63 is taken from it,
// and no zero is written for select 2, which would land on word 1.
TEST(VirtioMmio, FoldedSelectsOfferNothingPast63AndKeepWordOne) {
    auto dev = std::make_unique<FakeMmio>(false, kOffered);
    FakeMmio* d = dev.get();
    VirtioMmioTransport t(std::move(dev));
    EXPECT_EQ(t.device_features(), kOffered);
    t.set_features(virtio::bit(kVersion1) | virtio::bit(kNetMac));
    EXPECT_EQ(d->accepted(), virtio::bit(kVersion1) | virtio::bit(kNetMac));
}

TEST(VirtioMmio, QueueSetupProgramsEveryRegisterThenReady) {
    auto dev = std::make_unique<FakeMmio>(false, kOffered);
    FakeMmio* d = dev.get();
    VirtioMmioTransport t(std::move(dev));
    EXPECT_EQ(t.max_queue_size(1), 256);
    QueueAreas q{1,       128,     false,  Iova{0x1'2345'6000}, Iova{0x2'0000'1000}, Iova{0x3'0000'2000},
                 nullptr, nullptr, nullptr};
    t.setup_queue(q);
    EXPECT_EQ(d->queues[1].num, 128u);
    EXPECT_EQ(d->queues[1].desc, 0x1'2345'6000u);
    EXPECT_EQ(d->queues[1].driver, 0x2'0000'1000u);
    EXPECT_EQ(d->queues[1].device, 0x3'0000'2000u);
    EXPECT_EQ(d->queues[1].ready, 1u);
    EXPECT_NE(error_of([&] { t.setup_queue(q); }).find("already in use"), std::string::npos);
    q.index = 0;
    q.size = 512;
    EXPECT_NE(error_of([&] { t.setup_queue(q); }).find("use ring=256 or less"), std::string::npos);
    EXPECT_NE(error_of([&] { t.max_queue_size(3); }).find("has no queue 3"), std::string::npos);
    t.doorbell(1).ring(1);
    EXPECT_EQ(d->notify_reg, 1u) << "QueueNotify takes the queue's index";
}

TEST(VirtioMmio, ConfigIsReadAgainWhenItsGenerationMoves) {
    auto dev = std::make_unique<FakeMmio>(false, kOffered);
    FakeMmio* d = dev.get();
    const uint8_t mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
    std::memcpy(d->config.data(), mac, 6);
    const uint16_t mtu = 9000;
    std::memcpy(d->config.data() + 10, &mtu, 2);
    VirtioMmioTransport t(std::move(dev));
    d->bump_generation_on_read = 2;
    const NetConfig c = t.net_config();
    EXPECT_EQ(std::memcmp(c.mac, mac, 6), 0);
    EXPECT_EQ(c.status, 1);
    EXPECT_EQ(c.mtu, 9000);
    EXPECT_EQ(c.max_virtqueue_pairs, 1);
    EXPECT_EQ(d->bump_generation_on_read, 0) << "both reads that saw the generation move were repeated";
}

// One level-triggered line for every cause: the transport's thread reads
// InterruptStatus, acks exactly that, unmasks, and tells the config waiter
// and every Rx queue's sleeper.
TEST(VirtioMmio, TheInterruptLineFansOutToConfigAndRxQueues) {
    auto dev = std::make_unique<FakeMmio>(true, kOffered);
    FakeMmio* d = dev.get();
    VirtioMmioTransport t(std::move(dev));
    t.setup_queue({0, 64, false, Iova{0x1000}, Iova{0x2000}, Iova{0x3000}, nullptr, nullptr, nullptr});
    const int rx = t.used_notify_fd(0);
    ASSERT_GE(rx, 0);
    EXPECT_EQ(t.used_notify_fd(1), -1) << "Tx queues are polled";
    ASSERT_GE(t.config_event_fd(), 0);
    EXPECT_FALSE(t.poll_config_change());

    d->raise(kInterruptVring);
    ASSERT_TRUE(readable_within(rx, 5000));
    EXPECT_FALSE(t.poll_config_change()) << "a used-buffer interrupt is not a configuration change";

    d->raise(kInterruptConfig);
    ASSERT_TRUE(readable_within(t.config_event_fd(), 5000));
    EXPECT_TRUE(t.poll_config_change());
    EXPECT_FALSE(t.poll_config_change()) << "one change, one event";
    std::lock_guard g(d->mu);
    EXPECT_EQ(d->acked, kInterruptVring | kInterruptConfig);
    EXPECT_EQ(d->interrupt_status, 0u);
    EXPECT_EQ(d->handled.load(), 2) << "the line is unmasked after each";
    EXPECT_EQ(t.interrupts(), 2u);
}

// Without a line (/dev/mem) the config fd is a timer and InterruptStatus is read.
TEST(VirtioMmio, WithoutALineTheConfigChangeIsPolled) {
    auto dev = std::make_unique<FakeMmio>(false, kOffered);
    FakeMmio* d = dev.get();
    VirtioMmioTransport t(std::move(dev));
    t.setup_queue({0, 64, false, Iova{0x1000}, Iova{0x2000}, Iova{0x3000}, nullptr, nullptr, nullptr});
    EXPECT_EQ(t.used_notify_fd(0), -1) << "nothing to sleep on without an interrupt";
    ASSERT_TRUE(readable_within(t.config_event_fd(), 5000));
    EXPECT_FALSE(t.poll_config_change()) << "the timer fired, the device said nothing";
    {
        std::lock_guard g(d->mu);
        d->interrupt_status = kInterruptConfig | kInterruptVring;
    }
    ASSERT_TRUE(readable_within(t.config_event_fd(), 5000));
    EXPECT_TRUE(t.poll_config_change());
    std::lock_guard g(d->mu);
    EXPECT_EQ(d->acked, kInterruptConfig);
}

// A NetPort over MMIO registers: the queues' addresses come from what the
// transport wrote into the registers, and QueueNotify carries the queue index.
TEST(VirtioMmio, NetPortCarriesFramesBothWays) {
    DmaMemoryOptions mo;
    mo.mode = IovaMode::VA;
    mo.region_size = 8 << 20;
    mo.region.backing = DmaBacking::Memfd4K;
    DmaMemory mem(mo);
    PacketPool pool(mem, {.count = 512, .cache_size = 0});
    auto dev = std::make_unique<FakeMmio>(false, kOffered);
    FakeMmio* d = dev.get();
    auto t = std::make_unique<VirtioMmioTransport>(std::move(dev));
    NetPort port(std::move(t), parse_device_string("mmio:LNRO0005:00,ring=64"), mem, pool, 1);
    port.start();
    ASSERT_TRUE(virtio::has(d->accepted(), kAccessPlatform)) << "VFIO type1 behind it: bit 33 in VA mode";
    auto device_of = [&](uint16_t i) {
        return SplitDevice(mem.map(), static_cast<uint16_t>(d->queues[i].num), Iova{d->queues[i].desc},
                           Iova{d->queues[i].driver}, Iova{d->queues[i].device}, true);
    };
    SplitDevice rxd = device_of(0), txd = device_of(1);

    Packet* p = pool.alloc();
    std::memset(p->append(60), 0x5a, 60);
    ASSERT_EQ(port.tx_burst(0, &p, 1), 1);
    EXPECT_EQ(d->notify_reg, 1u) << "Tx queue 1 was notified";
    std::deque<DevBuffer> sent;
    ASSERT_EQ(txd.take(8, sent), 1u);
    EXPECT_EQ(sent[0].readable_bytes(), 72u);
    EXPECT_EQ(sent[0].segs[0].va[12], 0x5a);
    txd.complete({sent.begin(), sent.end()});

    std::deque<DevBuffer> bufs;
    ASSERT_EQ(rxd.take(64, bufs), 64u);
    std::memset(bufs[0].segs[0].va, 0, 12);
    std::memset(bufs[0].segs[0].va + 12, 0xa5, 64);
    bufs[0].written = 76;
    rxd.complete({bufs[0]});
    Packet* got[4];
    ASSERT_EQ(port.rx_burst(0, got, 4), 1);
    EXPECT_EQ(got[0]->pkt_len, 64u);
    EXPECT_EQ(got[0]->data()[63], 0xa5);
    PacketPool::free_bulk(got, 1);
    port.stop();
    EXPECT_EQ(pool.in_use(), 0u);
}

// /dev/mem over a file that stands in for physical memory: the registers sit
// at an address that is not page-aligned (QEMU microvm: 0xfeb02e00).
TEST(VirtioMmioDevMem, MapsTheRegistersAtTheirOffsetAndLocksTheDevice) {
    FakeSysfs s("mmio-devmem");
    const std::string dir = (s.root / "bus/platform/devices/LNRO0005:00").string();
    s.write(dir + "/modalias", "acpi:LNRO0005:");
    const std::string mem = (s.root / "physmem").string();
    {
        std::vector<uint8_t> bytes(3 * 4096);
        auto put = [&](uint32_t off, uint32_t v) { std::memcpy(bytes.data() + 0x1e00 + off, &v, 4); };
        put(kMagicValue, kMagic);
        put(kVersion, kVersionModern);
        put(kDeviceId, kDeviceIdNet);
        put(kDeviceFeatures, 0x20);  // the file answers any select with the same word: MAC
        std::ofstream(mem, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
    const IomemRange r{0x1e00, 0x1fff};
    auto dev = std::make_unique<DevMemDevice>("LNRO0005:00", r, dir, "", mem);
    EXPECT_EQ(dev->read32(kMagicValue), kMagic);
    EXPECT_EQ(dev->irq_fd(), -1);
    EXPECT_EQ(dev->iommu(), IommuKind::None);
    EXPECT_NE(error_of([&] { DevMemDevice again("LNRO0005:00", r, dir, "", mem); }).find("another process"),
              std::string::npos);
    VirtioMmioTransport t(std::move(dev));
    EXPECT_EQ(t.device_features().word(0), 0x20u);
    EXPECT_EQ(t.dma_traits().iommu, IommuKind::None);
    t.doorbell(0).ring(0x12345);
    uint32_t notified = 0;
    std::ifstream f(mem, std::ios::binary);
    f.seekg(0x1e00 + kQueueNotify);
    f.read(reinterpret_cast<char*>(&notified), 4);
    EXPECT_EQ(notified, 0x12345u) << "the doorbell stores into the mapped QueueNotify register";
}

// The IOVA policy's row for a device nothing translates for (/dev/mem, like
// uio and no-IOMMU VFIO): physical addresses whether or not it offers bit 33
// (negotiated when offered), a forced VA refused with the reason.
TEST(VirtioMmioDevMem, IsTheNoIommuRowOfThePolicy) {
    DeviceDmaFacts f;
    f.traits = {IommuKind::None, ~uint64_t{0}, PaSource::Pagemap, "iommu_platform=on"};
    f.pagemap_readable = true;
    for (bool offered : {true, false}) {
        f.access_platform_offered = offered;
        const DmaPlan p = plan_device_dma(f);
        ASSERT_TRUE(p.ok) << p.error;
        EXPECT_EQ(p.mode, IovaMode::PA);
        EXPECT_EQ(p.negotiate_access_platform, offered);
    }
    f.forced = IovaMode::VA;
    const DmaPlan va = plan_device_dma(f);
    EXPECT_FALSE(va.ok);
    EXPECT_NE(va.error.find("nothing translates"), std::string::npos) << va.error;
}

// vfio-platform registers that cannot be mapped (a 0x200-byte slot): the
// doorbell is one 4-byte pwrite at QueueNotify's offset in the device fd.
TEST(VirtioMmio, APwriteDoorbellWritesFourBytesAtItsOffset) {
    FakeSysfs s("mmio-pwrite");
    std::filesystem::create_directories(s.root);
    const std::string file = (s.root / "fd").string();
    const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 4096), 0);
    Doorbell::pwrite32(fd, 0x1000 - 0x200 + kQueueNotify).ring(3);
    uint32_t got = 0;
    EXPECT_EQ(::pread(fd, &got, 4, 0x1000 - 0x200 + kQueueNotify), 4);
    EXPECT_EQ(got, 3u);
    uint32_t before = 0xffffffff;
    EXPECT_EQ(::pread(fd, &before, 4, 0x1000 - 0x200 + kQueueNotify - 4), 4);
    EXPECT_EQ(before, 0u) << "nothing written in front of the register";
    ::close(fd);
}

TEST(VirtioMmioPlatform, IomemGivesTheDevicesAddress) {
    const std::string iomem =
        "00000000-00000fff : Reserved\n"
        "feb00000-feb02fff : PNP0C0C:00\n"
        "  feb02c00-feb02dff : LNRO0005:01\n"
        "    feb02c00-feb02dff : virtio-mmio\n"
        "  feb02e00-feb02fff : LNRO0005:00\n";
    const IomemRange r = iomem_range_of(iomem, "LNRO0005:00");
    EXPECT_EQ(r.start, 0xfeb02e00u);
    EXPECT_EQ(r.end, 0xfeb02fffu);
    EXPECT_EQ(iomem_range_of(iomem, "LNRO0005:01").start, 0xfeb02c00u);
    EXPECT_EQ(iomem_range_of(iomem, "LNRO0005:07").start, 0u);
}

TEST(VirtioMmioPlatform, DmaMustBeCoherent) {
    FakeSysfs s("mmio-coherent");
    const std::string dt = (s.root / "dt").string(), dt_nc = (s.root / "dt-nc").string(),
                      acpi = (s.root / "acpi").string();
    s.write(dt + "/of_node/dma-coherent", "");
    s.write(dt_nc + "/of_node/compatible", "virtio,mmio");
    s.write(acpi + "/modalias", "acpi:LNRO0005:");
    EXPECT_TRUE(mmio_dma_coherence(acpi, true).coherent);
    EXPECT_TRUE(mmio_dma_coherence(dt, false).coherent);
    const DmaCoherence nc = mmio_dma_coherence(dt_nc, false);
    EXPECT_FALSE(nc.coherent);
    EXPECT_NE(nc.why.find("lacks dma-coherent"), std::string::npos) << nc.why;
    EXPECT_FALSE(mmio_dma_coherence(acpi, false).coherent);
}

TEST(VirtioMmioPlatform, HeldByTheKernelsDriverTheErrorSaysHowToHandItOver) {
    FakeSysfs s("mmio-advice");
    const fs::path dev = s.root / "bus/platform/devices/LNRO0005:00";
    s.write(dev / "modalias", "acpi:LNRO0005:");
    fs::create_directories(s.root / "bus/platform/drivers/virtio-mmio");
    fs::create_symlink(s.root / "bus/platform/drivers/virtio-mmio", dev / "driver");
    const std::string e = error_of([&] { open_mmio_device("LNRO0005:00", s.root.string(), "/dev/null"); });
    EXPECT_NE(e.find("mmio:LNRO0005:00 is bound to virtio-mmio"), std::string::npos) << e;
    EXPECT_NE(e.find("echo vfio-platform > /sys/bus/platform/devices/LNRO0005:00/driver_override"), std::string::npos)
        << e;
    EXPECT_NE(e.find("echo LNRO0005:00 > /sys/bus/platform/devices/LNRO0005:00/driver/unbind"), std::string::npos) << e;
    EXPECT_NE(e.find("/dev/mem"), std::string::npos) << e;
    EXPECT_NE(error_of([&] {
                  open_mmio_device("LNRO0005:09", s.root.string(), "/dev/null");
              }).find("no such platform device"),
              std::string::npos);
    // Unbound but behind an IOMMU: physical addresses would not reach memory.
    fs::remove(dev / "driver");
    fs::create_directories(s.root / "kernel/iommu_groups/4");
    fs::create_symlink(s.root / "kernel/iommu_groups/4", dev / "iommu_group");
    EXPECT_NE(error_of([&] { open_mmio_device("LNRO0005:00", s.root.string(), "/dev/null"); }).find("behind an IOMMU"),
              std::string::npos);
}

TEST(VirtioMmioPlatform, DiscoveryListsVirtioMmioDevicesAndWhatHoldsThem) {
    FakeSysfs s("mmio-list");
    const fs::path devs = s.root / "bus/platform/devices";
    s.write(devs / "LNRO0005:00/modalias", "acpi:LNRO0005:");
    s.write(devs / "LNRO0005:00/virtio0/device", "0x0001");
    fs::create_directories(s.root / "bus/platform/drivers/virtio-mmio");
    fs::create_symlink(s.root / "bus/platform/drivers/virtio-mmio", devs / "LNRO0005:00/driver");
    s.write(devs / "LNRO0005:01/modalias", "acpi:LNRO0005:");
    s.write(devs / "serial8250/modalias", "platform:serial8250");
    const std::string iomem = (s.root / "iomem").string();
    s.write(iomem, "  feb02e00-feb02fff : LNRO0005:00\n  feb02c00-feb02dff : LNRO0005:01");
    const std::vector<MmioNetDevice> l = list_virtio_mmio(false, s.root.string(), iomem);
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].name, "LNRO0005:00");
    EXPECT_EQ(l[0].driver, "virtio-mmio");
    EXPECT_EQ(l[0].address, "0xfeb02e00");
    EXPECT_EQ(l[0].kind, "net (virtio0)");
    EXPECT_EQ(l[1].name, "LNRO0005:01");
    EXPECT_EQ(l[1].driver, "");
    const std::string table = format_mmio_list(l);
    EXPECT_NE(table.find("LNRO0005:00      0xfeb02e00    virtio-mmio"), std::string::npos) << table;
}

TEST(VirtioMmioPlatform, DeviceString) {
    const DeviceSpec d = parse_device_string("mmio:LNRO0005:00,packed=1,queues=1");
    EXPECT_EQ(d.kind, DeviceSpec::Kind::Mmio);
    EXPECT_EQ(d.path, "LNRO0005:00");
    EXPECT_TRUE(virtio::has(d.wanted_features, kRingPacked));
    EXPECT_NE(error_of([] { parse_device_string("mmio:"); }).find("platform device"), std::string::npos);
}

}  // namespace
}  // namespace vireo::test
