// vireo's virtio-net port against the real peer: DPDK's vhost back end in
// Debian's dpdk-testpmd, forwarding everything back (io or macswap). Every
// frame is verified end to end (sequence, length, queue, pattern, checksum),
// and the pool's in-use count is back to zero after each stop.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "support/error_of.hpp"
#include "support/peer_env.hpp"
#include "support/testpmd.hpp"
#include "support/traffic.hpp"
#include "vireo/base/error.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

struct Peer {
    std::unique_ptr<TestPmd> pmd;
    std::string path;
};

// One back end per (IOVA mode, queue count): PA against a back end without
// IOMMU support, VA against one with iommu-support=1.
Peer start_peer(IovaMode mode, int queues, const std::string& fwd = "io", int mbuf = 0) {
    Peer p;
    p.path = peer_socket(std::string(to_string(mode)) + std::to_string(queues) + fwd + std::to_string(mbuf));
    p.pmd = std::make_unique<TestPmd>(TestPmdOptions{p.path, queues, false, mode == IovaMode::VA, fwd, mbuf});
    EXPECT_TRUE(p.pmd->wait_for_socket(15000)) << p.pmd->log_tail();
    return p;
}

struct Combo {
    bool packed, in_order, mrg;
};

std::string device(const Peer& p, int queues, const Combo& c) {
    return "vhost-user:" + p.path + ",queues=" + std::to_string(queues) + ",packed=" + std::to_string(c.packed) +
           ",in_order=" + std::to_string(c.in_order) + ",mrg_rxbuf=" + std::to_string(c.mrg) + ",timeout_ms=15000";
}

void run_combo(const Peer& peer, IovaMode mode, int queues, const Combo& c, uint64_t per_queue) {
    const std::string dev = device(peer, queues, c);
    SCOPED_TRACE(dev + " iova=" + std::string(to_string(mode)));
    DmaMemory mem(peer_memory(mode));
    PacketPool pool(mem, {.count = 8192, .data_room = 2048, .cache_size = 0});
    auto port = NetPort::open(dev, mem, pool);
    port->start();
    EXPECT_TRUE(port->link_up());
    EXPECT_EQ(virtio::has(port->features(), virtio::feature::kRingPacked), c.packed);
    EXPECT_EQ(virtio::has(port->features(), virtio::feature::kAccessPlatform), mode == IovaMode::VA);
    TrafficOptions o;
    o.per_queue = per_queue;
    o.size = [](uint64_t seq) { return static_cast<uint32_t>(60 + (seq * 37) % 1455); };  // 60..1514 bytes
    TrafficResult r = run_traffic(*port, pool, o);
    EXPECT_TRUE(r.complete()) << r.first_problem << "\n" << peer.pmd->log_tail();
    EXPECT_EQ(r.received, per_queue * queues) << r.first_problem << "\n" << peer.pmd->log_tail();
    EXPECT_FALSE(port->needs_reset()) << port->fault_report();
    for (uint16_t q = 0; q < queues; q++) {
        EXPECT_EQ(port->tx_stats(q).packets, per_queue);
        EXPECT_EQ(port->rx_stats(q).packets, per_queue);
        EXPECT_EQ(port->rx_stats(q).errors, 0u);
    }
    port->stop();
    EXPECT_EQ(pool.in_use(), 0u) << "buffers leaked";
}

const Combo kCombos[] = {
    {false, false, false}, {false, false, true}, {false, true, false}, {false, true, true},
    {true, false, false},  {true, false, true},  {true, true, false},  {true, true, true},
};

class PeerMatrix : public ::testing::TestWithParam<std::tuple<IovaMode, int>> {};

// split/packed x IN_ORDER on/off x MRG_RXBUF on/off, for each IOVA mode and queue count.
TEST_P(PeerMatrix, EveryCombinationMovesVerifiedTraffic) {
    ASSERT_TRUE(TestPmd::available()) << "dpdk-testpmd missing: run ci/setup";
    auto [mode, queues] = GetParam();
    Peer peer = start_peer(mode, queues);
    for (const Combo& c : kCombos) {
        run_combo(peer, mode, queues, c, 20000);
        if (HasFailure()) return;
    }
}

INSTANTIATE_TEST_SUITE_P(Vhost, PeerMatrix,
                         ::testing::Combine(::testing::Values(IovaMode::PA, IovaMode::VA), ::testing::Values(1, 2)),
                         [](const auto& i) {
                             return std::string(to_string(std::get<0>(i.param))) + "_" +
                                    std::to_string(std::get<1>(i.param)) + "q";
                         });

TEST(Peer, MacswapForwarding) {
    Peer peer = start_peer(IovaMode::PA, 1, "macswap");
    DmaMemory mem(peer_memory(IovaMode::PA));
    PacketPool pool(mem, {.count = 4096, .cache_size = 0});
    auto port = NetPort::open(device(peer, 1, {true, true, true}), mem, pool);
    port->start();
    TrafficOptions o;
    o.per_queue = 20000;
    o.macswap = true;
    o.size = [](uint64_t s) { return static_cast<uint32_t>(64 + s % 200); };
    TrafficResult r = run_traffic(*port, pool, o);
    EXPECT_TRUE(r.complete()) << r.first_problem;
    EXPECT_EQ(r.received, 20000u);
    port->stop();
    EXPECT_EQ(pool.in_use(), 0u);
}

// 9000-byte frames: chains on Tx (through indirect tables: DPDK's vhost
// offers INDIRECT_DESC; once with it switched off), mergeable buffers
// assembled on Rx.
TEST(Peer, JumboFramesWithMergeableBuffers) {
    for (int run = 0; run < 3; run++) {
        const bool packed = run == 1, indirect = run != 2;
        SCOPED_TRACE(std::string(packed ? "packed" : "split") + (indirect ? ", indirect" : ", no indirect"));
        Peer peer = start_peer(IovaMode::PA, 1, "io", 10240);
        DmaMemory mem(peer_memory(IovaMode::PA));
        PacketPool pool(mem, {.count = 8192, .data_room = 2048, .cache_size = 0});
        auto port =
            NetPort::open(device(peer, 1, {packed, false, true}) + (indirect ? "" : ",indirect_desc=0"), mem, pool);
        port->start();
        EXPECT_EQ(virtio::has(port->features(), virtio::feature::kIndirectDesc), indirect);
        TrafficOptions o;
        o.per_queue = 3000;
        o.window = 24;
        o.size = [](uint64_t s) { return s % 3 == 0 ? 9000u : static_cast<uint32_t>(1500 + (s * 131) % 7500); };
        TrafficResult r = run_traffic(*port, pool, o);
        EXPECT_TRUE(r.complete()) << r.first_problem << "\n" << peer.pmd->log_tail();
        EXPECT_EQ(r.received, 3000u) << r.first_problem << "\n" << peer.pmd->log_tail();
        EXPECT_GT(r.segmented, 2000u) << "jumbo frames should arrive as segment chains";
        if (indirect)
            EXPECT_GT(port->tx_stats(0).indirect, 2000u) << "chains went out through indirect tables";
        else
            EXPECT_EQ(port->tx_stats(0).indirect, 0u);
        port->stop();
        EXPECT_EQ(pool.in_use(), 0u);
    }
}

// 64-byte frames as fast as the port goes: the peer may drop when it falls
// behind, but every frame that arrives is intact and in order.
TEST(Peer, SmallFramesAtFullSpeed) {
    Peer peer = start_peer(IovaMode::VA, 1);
    DmaMemory mem(peer_memory(IovaMode::VA));
    PacketPool pool(mem, {.count = 8192, .cache_size = 0});
    auto port = NetPort::open(device(peer, 1, {true, true, false}), mem, pool);
    port->start();
    TrafficOptions o;
    o.per_queue = 500000;
    o.window = 1024;
    o.lossless = false;
    o.size = [](uint64_t) { return 64u; };
    TrafficResult r = run_traffic(*port, pool, o);
    EXPECT_EQ(r.bad, 0u) << r.first_problem;
    EXPECT_EQ(r.misordered, 0u) << r.first_problem;
    EXPECT_GT(r.received, 250000u) << "most frames should come back";
    port->stop();
    EXPECT_EQ(pool.in_use(), 0u);
}

// A clean stop loses nothing (issue 27): frames tx_burst accepted while the
// back end was not forwarding are still in the Tx ring when stop() begins;
// testpmd starts forwarding only after the stop has closed the port's gate,
// and every frame must come out on the other port, in order. A stop that
// resets at once (vireo before issue 27) delivers none of them.
TEST(Peer, CleanStopDeliversEveryAcceptedFrame) {
    for (const bool packed : {false, true}) {
        SCOPED_TRACE(packed ? "packed" : "split");
        TestPmdOptions po;
        po.socket = peer_socket(std::string("stop-a") + (packed ? "p" : "s"));
        po.more_sockets = {peer_socket(std::string("stop-b") + (packed ? "p" : "s"))};
        po.interactive = true;  // io: port 0 -> port 1, once told to start
        TestPmd pmd(po);
        ASSERT_TRUE(pmd.wait_for_socket(15000)) << pmd.log_tail();
        DmaMemory mem(peer_memory(IovaMode::PA));
        PacketPool pool(mem, {.count = 4096, .cache_size = 0});
        const std::string keys =
            std::string(",packed=") + (packed ? "1" : "0") + ",timeout_ms=15000,stop_timeout_ms=30000";
        auto a = NetPort::open("vhost-user:" + po.socket + keys, mem, pool, 0);
        auto b = NetPort::open("vhost-user:" + po.more_sockets[0] + keys, mem, pool, 1);
        a->start();
        b->start();
        constexpr uint16_t kFrames = 200;  // fewer than the ring holds: all accepted with nobody forwarding
        Packet* p[kFrames];
        ASSERT_TRUE(pool.alloc_bulk(p, kFrames));
        for (uint16_t i = 0; i < kFrames; i++) {
            uint8_t* d = p[i]->append(64);
            std::memset(d, 0xff, 12);  // broadcast, so nothing on the way filters it
            d[12] = 0x88;
            d[13] = 0xb5;
            d[14] = static_cast<uint8_t>(i >> 8);
            d[15] = static_cast<uint8_t>(i);
        }
        ASSERT_EQ(a->tx_burst(0, p, kFrames), kFrames);
        StopReport rep;
        std::thread stopper([&] { rep = a->stop(); });
        while (a->ready()) std::this_thread::yield();  // the event: the stop has begun (gate closed)
        pmd.command("start");
        std::vector<int> got;
        const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        Packet* in[32];
        while (got.size() < kFrames && std::chrono::steady_clock::now() < end) {
            const uint16_t n = b->rx_burst(0, in, 32);
            for (uint16_t i = 0; i < n; i++) got.push_back((in[i]->data()[14] << 8) | in[i]->data()[15]);
            PacketPool::free_bulk(in, n);
            if (n == 0) std::this_thread::yield();
        }
        stopper.join();
        EXPECT_LE(rep.tx_in_flight, kFrames);  // testpmd may have taken some before the stop looked
        EXPECT_EQ(rep.tx_undelivered, 0u) << pmd.log_tail();
        EXPECT_EQ(a->tx_stats(0).undelivered, 0u);
        ASSERT_EQ(got.size(), size_t{kFrames}) << "frames out of the other port\n" << pmd.log_tail();
        for (int i = 0; i < kFrames; i++) EXPECT_EQ(got[i], i) << "frame " << i;
        b->stop();
        EXPECT_EQ(pool.in_use(), 0u);
    }
}

}  // namespace
}  // namespace vireo::test
