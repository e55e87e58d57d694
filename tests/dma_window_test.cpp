// The window arrangement (dma=window, iova_policy.hpp): the device reaches
// only its own window, frames are copied in and out.
//  - against dpdk-testpmd's vhost: verified traffic, split and packed, PA
//    (guest-physical window) and VA (IOTLB), with the application's memory in
//    a mode the back end could not even use directly;
//  - against a fake back end that records what it was given: the memory table
//    holds only the window's fds and addresses, never the application's, and
//    an IOTLB miss for an application address is never answered.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "support/fake_backend.hpp"
#include "support/fake_transport.hpp"
#include "support/peer_env.hpp"
#include "support/testpmd.hpp"
#include "support/traffic.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

// The application's memory: 4 KiB pages in VA mode, nothing a PA back end could take.
DmaMemoryOptions app_memory() {
    DmaMemoryOptions o;
    o.mode = IovaMode::VA;
    o.region_size = 32 << 20;
    o.region.backing = DmaBacking::Memfd4K;
    return o;
}

class WindowTraffic : public ::testing::TestWithParam<std::tuple<IovaMode, bool>> {};

TEST_P(WindowTraffic, FramesAreVerifiedAndEveryBufferComesBack) {
    ASSERT_TRUE(TestPmd::available()) << "dpdk-testpmd missing: run ci/setup";
    const auto [mode, packed] = GetParam();
    const std::string path = peer_socket("window-" + std::string(to_string(mode)) + std::to_string(packed));
    TestPmd pmd({path, 1, false, mode == IovaMode::VA});
    ASSERT_TRUE(pmd.wait_for_socket(15000)) << pmd.log_tail();
    DmaMemory mem(app_memory());
    PacketPool pool(mem, {.count = 4096, .cache_size = 0});
    auto port = NetPort::open(
        "vhost-user:" + path + ",dma=window,mrg_rxbuf=1,timeout_ms=15000,packed=" + std::to_string(packed), mem, pool);
    EXPECT_EQ(port->dma_plan().arrangement, DmaArrangement::Window);
    EXPECT_EQ(port->iova_mode(), mode) << port->dma_plan().why;
    ASSERT_NE(port->window(), nullptr);
    EXPECT_NE(port->window(), &mem);
    port->start();
    EXPECT_NE(port->data_path().find("/window"), std::string::npos) << port->data_path();
    EXPECT_EQ(virtio::has(port->features(), virtio::feature::kRingPacked), packed);
    TrafficOptions o;
    o.per_queue = 20000;
    // Every length from 34 (the smallest verifiable frame) to 1514 bytes at least once (37 and 1481 are
    // coprime): both sides of the inline small-copy path (16..128 bytes) and of memcpy.
    o.size = [](uint64_t seq) { return static_cast<uint32_t>(34 + (seq * 37) % 1481); };
    TrafficResult r = run_traffic(*port, pool, o);
    EXPECT_TRUE(r.complete() && r.received == o.per_queue) << r.first_problem << "\n" << pmd.log_tail();
    const QueueStats tx = port->tx_stats(0), rx = port->rx_stats(0);
    EXPECT_EQ(tx.packets, o.per_queue);
    EXPECT_EQ(rx.packets, o.per_queue);
    EXPECT_EQ(tx.bounced_bytes, tx.bytes) << "every frame sent was copied into the window, once";
    EXPECT_EQ(rx.bounced_bytes, rx.bytes) << "every frame received was copied out, once";
    EXPECT_GT(tx.copy_cycles, 0u);
    EXPECT_EQ(rx.errors + tx.errors, 0u);
    EXPECT_FALSE(port->needs_reset()) << port->fault_report();
    port->stop();
    EXPECT_EQ(pool.in_use(), 0u) << "application buffers leaked";
}

INSTANTIATE_TEST_SUITE_P(Vhost, WindowTraffic,
                         ::testing::Combine(::testing::Values(IovaMode::PA, IovaMode::VA), ::testing::Bool()),
                         [](const auto& i) {
                             return std::string(to_string(std::get<0>(i.param))) +
                                    (std::get<1>(i.param) ? "_packed" : "_split");
                         });

enum : uint32_t { kSetMemTable = 5, kSetVringEnable = 18, kIotlbMsg = 22 };
constexpr uint32_t kNeedReply = 1u << 3;

struct Given {  // what the back end received
    std::mutex lock;
    struct Region {
        uint64_t gpa, size, uaddr;
        dev_t dev;
        ino_t ino;
    };
    std::vector<Region> regions;
    struct Map {
        uint64_t iova, size, uaddr;
        uint8_t type;
    };
    std::vector<Map> iotlb;
};

struct Inode {
    dev_t dev;
    ino_t ino;
};
Inode inode_of(int fd) {
    struct stat st {};
    EXPECT_EQ(::fstat(fd, &st), 0);
    return {st.st_dev, st.st_ino};
}

bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; }

// The back end records the memory table and every IOTLB message; in VA mode
// it asks (IOTLB miss) for one application address and one window address.
void check_only_the_window_is_given(bool va) {
    const std::string sock = peer_socket(va ? "window-table-va" : "window-table-pa");
    FakeBackend b(sock);
    if (va) b.features |= 1ull << 33;  // ACCESS_PLATFORM: vireo plays the IOMMU (IOTLB)
    Given g;
    b.on(kSetMemTable, [&g](const FakeBackend::Peer& p, const FakeMsg& m) {
        std::lock_guard<std::mutex> l(g.lock);
        uint32_t n = 0;
        std::memcpy(&n, m.payload.data(), 4);
        for (uint32_t i = 0; i < n && i < m.fds.size(); i++) {
            uint64_t r[4];
            std::memcpy(r, m.payload.data() + 8 + 32 * i, 32);
            const Inode in = inode_of(m.fds[i]);
            g.regions.push_back({r[0], r[1], r[2], in.dev, in.ino});
        }
        if (m.flags & kNeedReply) p.reply_u64(m.request, 0);
        return true;
    });
    for (int k = 1; k <= 8; k++)
        b.on(
            kIotlbMsg,
            [&g](const FakeBackend::Peer& p, const FakeMsg& m) {
                std::lock_guard<std::mutex> l(g.lock);
                uint64_t r[3];
                std::memcpy(r, m.payload.data(), 24);
                g.iotlb.push_back({r[0], r[1], r[2], m.payload[25]});
                if (m.flags & kNeedReply) p.reply_u64(m.request, 0);
                return true;
            },
            k);
    DmaMemory mem(app_memory());
    PacketPool pool(mem, {.count = 1024, .cache_size = 0});
    uint64_t app_va = 0, window_iova = 0;
    if (va)
        b.on(
            kSetVringEnable,
            [&](const FakeBackend::Peer& p, const FakeMsg& m) {
                if (m.flags & kNeedReply) p.reply_u64(m.request, 0);
                for (uint64_t iova : {app_va, window_iova}) {  // IOTLB misses on the back-end channel
                    uint8_t buf[12 + 32] = {};
                    const uint32_t h[3] = {1, 0x1, 32};
                    std::memcpy(buf, h, 12);
                    std::memcpy(buf + 12, &iova, 8);
                    buf[12 + 25] = 1;  // MISS
                    buf[12 + 24] = 3;  // RW
                    ::send(p.backend_fd, buf, sizeof buf, MSG_NOSIGNAL);
                }
                return true;
            },
            2);
    b.start();
    auto port = NetPort::open("vhost-user:" + sock + ",dma=window,timeout_ms=5000", mem, pool);
    ASSERT_NE(port->window(), nullptr);
    const DmaMemory& w = *port->window();
    Packet* pk = pool.alloc();
    ASSERT_NE(pk, nullptr);
    app_va = reinterpret_cast<uint64_t>(pk->buf_va);
    window_iova = (w.region_iova(0) + 4096).value;  // as the back end sends it
    port->start();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the misses' answers
    port->stop();
    PacketPool::free(pk);

    std::lock_guard<std::mutex> l(g.lock);
    ASSERT_FALSE(g.regions.empty()) << "no memory table was sent";
    for (const auto& r : g.regions) {
        bool in_window = false;
        for (size_t i = 0; i < w.region_count(); i++) {
            const Inode wi = inode_of(w.region(i).fd());
            if (wi.dev == r.dev && wi.ino == r.ino && r.uaddr == reinterpret_cast<uint64_t>(w.region(i).va()))
                in_window = true;
        }
        EXPECT_TRUE(in_window) << "the memory table holds a region that is not the window's (uaddr 0x" << std::hex
                               << r.uaddr << ")";
        for (size_t i = 0; i < mem.region_count(); i++) {
            const Inode ai = inode_of(mem.region(i).fd());
            EXPECT_FALSE(ai.dev == r.dev && ai.ino == r.ino) << "the application's memory fd was given to the back end";
            EXPECT_FALSE(
                overlaps(r.uaddr, r.size, reinterpret_cast<uint64_t>(mem.region(i).va()), mem.region(i).length()))
                << "the memory table names the application's addresses";
        }
    }
    if (va) {
        bool window_answered = false;
        for (const auto& m : g.iotlb) {
            if (m.type != 2) continue;  // UPDATE
            for (size_t i = 0; i < mem.region_count(); i++)
                EXPECT_FALSE(
                    overlaps(m.uaddr, m.size, reinterpret_cast<uint64_t>(mem.region(i).va()), mem.region(i).length()))
                    << "an IOTLB update maps the application's memory";
            EXPECT_FALSE(overlaps(m.iova, m.size, app_va, 1)) << "the miss for an application address was answered";
            if (overlaps(m.iova, m.size, window_iova, 1)) window_answered = true;
        }
        EXPECT_TRUE(window_answered) << "the miss for a window address was not answered (" << g.iotlb.size()
                                     << " IOTLB messages seen)";
    }
    EXPECT_EQ(pool.in_use(), 0u);
}

TEST(Window, TheBackEndIsGivenOnlyTheWindowPa) { check_only_the_window_is_given(false); }
TEST(Window, TheBackEndIsGivenOnlyTheWindowIotlb) { check_only_the_window_is_given(true); }

// Without ring=, a window's queues are deep (DmaWindow::ring_depth: the
// back end's writes leave its core's cache before vireo copies them out), as
// deep as the device allows; ring=N and direct DMA keep what they had.
TEST(Window, QueuesAreDeepUnlessTheRingSizeIsGiven) {
    DmaMemory mem(app_memory());
    PacketPool pool(mem, {.count = 512, .cache_size = 0});
    const virtio::Features offered =
        virtio::bit(virtio::feature::kVersion1) | virtio::bit(virtio::feature::kAccessPlatform);
    auto ring_of = [&](const std::string& dev, uint16_t device_most) {
        auto t = std::make_unique<FakeTransport>(offered);
        t->max_queue = device_most;
        NetPort port(std::move(t), parse_device_string("vhost-user:/fake" + dev), mem, pool, 0);
        EXPECT_EQ(port.dma_plan().arrangement,
                  dev.find("window") != std::string::npos ? DmaArrangement::Window : DmaArrangement::Direct);
        return port.ring_size();
    };
    EXPECT_EQ(ring_of(",dma=window", 0), 1024);
    EXPECT_EQ(ring_of(",dma=window", 768), 512) << "a split ring's size is a power of two within the device's";
    EXPECT_EQ(ring_of(",dma=window", 256), 256);
    EXPECT_EQ(ring_of(",dma=window,ring=128", 0), 128);
    EXPECT_EQ(ring_of(",dma=direct", 0), 256);
    EXPECT_EQ(ring_of("", 0), 256);
}

// A bad value names the choices.
TEST(Window, DeviceStringRejectsAnUnknownArrangement) {
    try {
        parse_device_string("vhost-user:/x,dma=bounce");
        FAIL() << "dma=bounce accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("use direct or window"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace vireo::test
