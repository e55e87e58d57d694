// The control path against the real peer: server mode with the back end
// killed and restarted during traffic, and every kind of bad input giving one
// clear error.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdlib>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "support/error_of.hpp"
#include "support/peer_env.hpp"
#include "support/testpmd.hpp"
#include "support/traffic.hpp"
#include "vireo/base/error.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

// link_status().up, not link_up(): it turns false only after the port took
// every in-flight buffer back (link_up() turns false as soon as bursts stop).
bool wait_link(NetPort& port, bool up, int ms) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < end) {
        if (port.link_status().up == up && port.link_up() == up) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

// Restart rounds: 20, as issue 13 asks; ci/test's ASan pass sets VIREO_RESTART_ROUNDS=5 (memory errors show in
// the first rounds; the 20 run in the release pass).
int restart_rounds() {
    const char* v = std::getenv("VIREO_RESTART_ROUNDS");
    const int n = v != nullptr ? std::atoi(v) : 0;
    return n > 0 ? n : 20;
}

// Server mode: we listen, the back end (client=1) connects. It is killed 20
// times with traffic in flight; each time the port sees the link go down,
// takes every in-flight buffer back, waits for the restarted back end,
// renegotiates, and verified traffic resumes.
TEST(VhostControl, BackEndKilledAndRestartedTwentyTimes) {
    const std::string path = peer_socket("reconnect");
    for (bool packed : {false, true}) {
        SCOPED_TRACE(packed ? "packed" : "split");
        DmaMemory mem(peer_memory(IovaMode::PA, 64 << 20));
        PacketPool pool(mem, {.count = 4096, .cache_size = 0});
        auto pmd = std::make_unique<TestPmd>(TestPmdOptions{path, 1, /*client=*/true});
        ASSERT_TRUE(pmd->wait_forwarding(15000)) << pmd->log_tail();
        auto port = NetPort::open("vhost-user:" + path + ",server=1,timeout_ms=20000,packed=" + std::to_string(packed),
                                  mem, pool);
        port->start();
        const uint32_t baseline = pool.in_use();  // the Rx ring's buffers
        ASSERT_GT(baseline, 0u);
        TrafficOptions o;
        o.per_queue = 2000;
        o.size = [](uint64_t s) { return static_cast<uint32_t>(60 + s % 700); };
        for (int round = 0; round < restart_rounds(); round++) {
            SCOPED_TRACE("round " + std::to_string(round));
            port->reset_stats();
            TrafficResult r = run_traffic(*port, pool, o);
            ASSERT_TRUE(r.complete() && r.received == o.per_queue) << r.first_problem << "\n" << pmd->log_tail();
            // Frames in flight when the back end dies.
            Packet* burst[32];
            ASSERT_TRUE(pool.alloc_bulk(burst, 32));
            for (Packet* p : burst) std::memset(p->append(64), 0xab, 64);
            uint16_t n = port->tx_burst(0, burst, 32);
            PacketPool::free_bulk(burst + n, 32 - n);
            pmd->kill_hard();
            ASSERT_TRUE(wait_link(*port, false, 5000)) << "link still up after the back end died";
            EXPECT_EQ(pool.in_use(), 0u) << "buffers in flight at the disconnect were not all returned";
            pmd = std::make_unique<TestPmd>(TestPmdOptions{path, 1, true});
            ASSERT_TRUE(pmd->wait_forwarding(15000)) << pmd->log_tail();
            // The port notices the new connection and comes back by itself.
            ASSERT_TRUE(wait_link(*port, true, 5000)) << port->link_status().reason << "\n" << pmd->log_tail();
            EXPECT_EQ(pool.in_use(), baseline) << "the Rx ring was not refilled as before";
            EXPECT_EQ(port->link_status().reconnects, static_cast<uint64_t>(round + 1));
        }
        port->stop();
        EXPECT_EQ(pool.in_use(), 0u);
    }
}

// The same under continuous traffic, the back end ending by SIGKILL and by
// SIGTERM in turn: traffic resumes within 2 s of the restarted back end
// forwarding, never a corrupt or reordered frame, every buffer back.
TEST(VhostControl, BackEndRestartedUnderTrafficTwentyTimes) {
    const std::string path = peer_socket("restart-traffic");
    DmaMemory mem(peer_memory(IovaMode::PA, 64 << 20));
    PacketPool pool(mem, {.count = 4096});
    auto pmd = std::make_unique<TestPmd>(TestPmdOptions{path, 1, /*client=*/true});
    ASSERT_TRUE(pmd->wait_forwarding(15000)) << pmd->log_tail();
    auto port = NetPort::open("vhost-user:" + path + ",server=1,timeout_ms=20000", mem, pool);
    port->start();
    BackgroundTraffic traffic(*port, *port, pool, 200, 0);
    ASSERT_TRUE(traffic.wait_flow(10000, 5000)) << traffic.first_problem() << "\n" << pmd->log_tail();
    double worst_ms = 0;
    const int rounds = restart_rounds();
    for (int round = 0; round < rounds; round++) {
        SCOPED_TRACE("round " + std::to_string(round));
        if (round % 2 == 0)
            pmd->kill_hard();
        else
            pmd->stop(SIGTERM);
        ASSERT_TRUE(wait_link(*port, false, 5000)) << "link still up after the back end ended";
        pmd = std::make_unique<TestPmd>(TestPmdOptions{path, 1, true});
        ASSERT_TRUE(pmd->wait_forwarding(15000)) << pmd->log_tail();
        const auto back = std::chrono::steady_clock::now();
        ASSERT_TRUE(traffic.wait_flow(1000, 10000)) << "traffic did not resume: " << port->link_status().reason << "\n"
                                                    << pmd->log_tail();
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - back).count();
        worst_ms = std::max(worst_ms, ms);
        EXPECT_LT(ms, 2000.0);
    }
    traffic.stop();
    std::printf("dpdk-testpmd restarted %d times: traffic back within %.0f ms at worst; %llu frames verified\n", rounds,
                worst_ms, static_cast<unsigned long long>(traffic.received()));
    EXPECT_EQ(traffic.bad(), 0u) << traffic.first_problem();
    EXPECT_EQ(traffic.misordered(), 0u) << traffic.first_problem();
    EXPECT_EQ(port->link_status().downs, static_cast<uint64_t>(rounds));
    EXPECT_EQ(port->link_status().reconnects, static_cast<uint64_t>(rounds));
    port->stop();
    EXPECT_EQ(pool.in_use(), 0u) << "buffers leaked";
}

// Client mode (the back end listens): the port connects again by itself,
// backing off, each time the back end is back.
TEST(VhostControl, ClientPortConnectsAgainWhenTheBackEndReturns) {
    const std::string path = peer_socket("client-again");
    DmaMemory mem(peer_memory(IovaMode::PA, 64 << 20));
    PacketPool pool(mem, {.count = 4096});
    auto pmd = std::make_unique<TestPmd>(TestPmdOptions{path, 1});
    ASSERT_TRUE(pmd->wait_for_socket(15000)) << pmd->log_tail();
    auto port = NetPort::open("vhost-user:" + path + ",timeout_ms=15000", mem, pool);
    port->start();
    for (int round = 0; round < 3; round++) {
        SCOPED_TRACE("round " + std::to_string(round));
        TrafficOptions o;
        o.per_queue = 2000;
        o.size = [](uint64_t s) { return static_cast<uint32_t>(64 + s % 500); };
        ASSERT_TRUE(pmd->wait_forwarding(15000)) << pmd->log_tail();
        TrafficResult r = run_traffic(*port, pool, o);
        ASSERT_TRUE(r.complete() && r.received == o.per_queue) << r.first_problem << "\n" << pmd->log_tail();
        pmd->stop(SIGTERM);
        ASSERT_TRUE(wait_link(*port, false, 5000));
        EXPECT_EQ(pool.in_use(), 0u);
        pmd = std::make_unique<TestPmd>(TestPmdOptions{path, 1});
        ASSERT_TRUE(wait_link(*port, true, 15000)) << port->link_status().reason << "\n" << pmd->log_tail();
    }
    EXPECT_EQ(port->link_status().reconnects, 3u);
    port->stop();
    EXPECT_EQ(pool.in_use(), 0u);
}

// The test helper itself, because the restart tests and the soak restart
// testpmd hundreds of times: a clean stop closes the pipe to its stdin as
// SIGKILL does (it once leaked one descriptor per clean stop).
TEST(TestPmdHelper, StoppingLeavesNoDescriptorBehind) {
    auto fds = [] {
        size_t n = 0;
        for (auto it = std::filesystem::directory_iterator("/proc/self/fd"); it != std::filesystem::end(it); ++it) n++;
        return n;
    };
    const std::string path = peer_socket("helper-fds");
    const size_t before = fds();
    for (int sig : {SIGINT, SIGTERM, SIGKILL}) {
        TestPmd pmd(TestPmdOptions{path});
        ASSERT_TRUE(pmd.wait_forwarding(15000)) << pmd.log_tail();
        if (sig == SIGKILL)
            pmd.kill_hard();
        else
            pmd.stop(sig);
        EXPECT_EQ(fds(), before) << "after stopping testpmd with signal " << sig;
    }
}

TEST(VhostControl, SocketThatDoesNotExist) {
    DmaMemory mem(peer_memory(IovaMode::PA, 64 << 20));
    PacketPool pool(mem, {.count = 256});
    std::string e = error_of([&] { NetPort::open("vhost-user:/tmp/vireo-no-such.sock,timeout_ms=200", mem, pool); });
    EXPECT_NE(e.find("cannot connect to vhost-user socket /tmp/vireo-no-such.sock"), std::string::npos) << e;
    EXPECT_NE(e.find("start the back end first"), std::string::npos) << e;
    EXPECT_EQ(pool.in_use(), 0u);
}

TEST(VhostControl, BackEndThatLacksWhatIsAskedFor) {
    const std::string path = peer_socket("refuse");
    TestPmd pmd({path, 1});
    ASSERT_TRUE(pmd.wait_for_socket(15000)) << pmd.log_tail();
    DmaMemory pa(peer_memory(IovaMode::PA, 64 << 20));
    PacketPool pool(pa, {.count = 256});
    // (More queue pairs than the back end polls cannot be caught here: DPDK
    // 22.11 answers GET_QUEUE_NUM with its compile-time maximum, 128.)
    // VA mode forced on a back end without IOMMU support: it does not offer ACCESS_PLATFORM.
    DmaMemory va(peer_memory(IovaMode::VA, 64 << 20));
    PacketPool vpool(va, {.count = 256});
    std::string e = error_of([&] { NetPort::open("vhost-user:" + path + ",iova=va", va, vpool); });
    EXPECT_NE(e.find("does not offer VIRTIO_F_ACCESS_PLATFORM"), std::string::npos) << e;
    // VA memory, automatic mode: the device needs PA, the memory is VA.
    e = error_of([&] { NetPort::open("vhost-user:" + path, va, vpool); });
    EXPECT_NE(e.find("must carry IOVA mode pa addresses, but the DMA memory is in mode va"), std::string::npos) << e;
    EXPECT_EQ(pool.in_use(), 0u);
    EXPECT_EQ(vpool.in_use(), 0u);
}

// A back end that offers ACCESS_PLATFORM prefers VA, but PA is safe for it
// too (the rule allows it: we publish the layout and do not negotiate the bit),
// so PA memory is accepted, as it is when another device of the process needs PA.
TEST(VhostControl, IommuBackEndAlsoWorksWithPaMemory) {
    const std::string path = peer_socket("mismatch");
    TestPmd pmd({path, 1, false, /*iommu=*/true});
    ASSERT_TRUE(pmd.wait_for_socket(15000)) << pmd.log_tail();
    DmaMemory pa(peer_memory(IovaMode::PA, 64 << 20));
    PacketPool pool(pa, {.count = 2048});
    auto port = NetPort::open("vhost-user:" + path, pa, pool);
    EXPECT_TRUE(virtio::has(port->device_features(), virtio::feature::kAccessPlatform));
    port->start();
    EXPECT_FALSE(virtio::has(port->features(), virtio::feature::kAccessPlatform));
    TrafficOptions o;
    o.per_queue = 5000;
    o.size = [](uint64_t) { return 128u; };
    TrafficResult r = run_traffic(*port, pool, o);
    EXPECT_TRUE(r.complete() && r.received == 5000) << r.first_problem;
    port->stop();
    EXPECT_EQ(pool.in_use(), 0u);
}

TEST(DeviceString, MalformedStringsGiveOneClearError) {
    struct Case {
        const char* s;
        const char* says;
    } cases[] = {
        {"/tmp/x.sock", "no transport"},
        {"vhost:/tmp/x.sock", "unknown transport 'vhost'"},
        {"vhost-user:", "no socket path"},
        {"vhost-user:/tmp/x.sock,queuez=2", "unknown key 'queuez'"},
        {"vhost-user:/tmp/x.sock,queues=0", "queues=0 is not a number from 1 to 128"},
        {"vhost-user:/tmp/x.sock,queues=two", "queues=two is not a number"},
        {"vhost-user:/tmp/x.sock,packed", "'packed' is not key=value"},
        {"vhost-user:/tmp/x.sock,packed=2", "packed=2 is not a number from 0 to 1"},
        {"vhost-user:/tmp/x.sock,iova=io", "iova=io: use auto, pa or va"},
        {"vhost-user:/tmp/x.sock,mac=01:02", "mac=01:02 is not aa:bb:cc:dd:ee:ff"},
        {"vhost-user:/tmp/x.sock,,queues=1", "'' is not key=value"},
    };
    for (const Case& c : cases) {
        std::string e = error_of([&] { parse_device_string(c.s); });
        EXPECT_NE(e.find(c.says), std::string::npos) << c.s << " -> " << e;
        EXPECT_NE(e.find(c.s), std::string::npos) << "the error should quote the string: " << e;
    }
    DeviceSpec d = parse_device_string(
        "vhost-user:/tmp/"
        "x.sock,queues=2,packed=1,in_order=1,mrg_rxbuf=0,server=1,iova=va,mac=02:00:00:00:00:07,ring=512");
    EXPECT_EQ(d.path, "/tmp/x.sock");
    EXPECT_EQ(d.queues, 2);
    EXPECT_EQ(d.ring, 512);
    EXPECT_TRUE(d.server);
    EXPECT_EQ(d.iova, IovaMode::VA);
    EXPECT_EQ(d.mac[5], 7);
    EXPECT_TRUE(virtio::has(d.wanted_features, virtio::feature::kRingPacked));
    EXPECT_FALSE(virtio::has(d.wanted_features, virtio::feature::kNetMrgRxbuf));
    EXPECT_TRUE(virtio::has(d.wanted_features, virtio::feature::kNetCtrlVq));
    d = parse_device_string("vhost-user:/s,ctrl_vq=0,ctrl_rx=0,csum=0,guest_csum=0,mq=0,status=0,mac_feature=0");
    for (unsigned f : {virtio::feature::kNetCtrlVq, virtio::feature::kNetCtrlRx, virtio::feature::kNetCsum,
                       virtio::feature::kNetGuestCsum, virtio::feature::kNetMq, virtio::feature::kNetStatus,
                       virtio::feature::kNetMac})
        EXPECT_FALSE(virtio::has(d.wanted_features, f)) << f;
}

}  // namespace
}  // namespace vireo::test
