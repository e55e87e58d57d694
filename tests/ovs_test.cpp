// vireo against Open vSwitch with DPDK (Debian's openvswitch-switch-dpdk, OVS
// 3.1 on DPDK 22.11), the vhost-user back end operators run. OVS is started
// by the test (tests/support/ovs.hpp): ports are dpdkvhostuserclient, so the
// vireo ports listen (server=1) and OVS connects. Every frame is verified
// end to end (sequence, length, pattern, checksum), in both directions.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/ovs.hpp"
#include "support/peer_env.hpp"
#include "support/testpmd.hpp"
#include "support/traffic.hpp"
#include "support/tso_traffic.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

using Clock = std::chrono::steady_clock;

// OVS polls on CPU 1; the test's own polling stays on CPU 0 (sharing a CPU
// with OVS's PMD thread would make both crawl: docs/vhost-user.md).
constexpr int kOvsCpu = 1, kTestCpu = 0;

void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<unsigned>(cpu), &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

struct Pinned {  // the test body's thread on kTestCpu, restored after
    cpu_set_t old;
    Pinned() {
        pthread_getaffinity_np(pthread_self(), sizeof old, &old);
        pin_to(kTestCpu);
    }
    ~Pinned() { pthread_setaffinity_np(pthread_self(), sizeof old, &old); }
};

std::string device(const std::string& sock, const std::string& extra = "") {
    return "vhost-user:" + sock + ",server=1,timeout_ms=20000" + extra;
}

// Two vireo ports on one bridge, port 1 <-> port 2.
struct TwoPorts {
    std::unique_ptr<Ovs> ovs;
    std::string s0, s1;
    std::unique_ptr<DmaMemory> mem;
    std::unique_ptr<PacketPool> pool;
    std::unique_ptr<NetPort> p0, p1;

    TwoPorts(const OvsOptions& oo, IovaMode mode, const std::string& extra) {
        ovs = std::make_unique<Ovs>(oo);
        s0 = peer_socket("ovs0");
        s1 = peer_socket("ovs1");
        ovs->add_port("vhu0", s0, 1);
        ovs->add_port("vhu1", s1, 2);
        ovs->connect_ports(1, 2);
        mem = std::make_unique<DmaMemory>(peer_memory(mode, 64 << 20));
        pool = std::make_unique<PacketPool>(*mem, PacketPoolOptions{.count = 8192, .data_room = 2048});
        p0 = NetPort::open(device(s0, extra), *mem, *pool, 0);  // OVS connects within its 1 s retry
        p1 = NetPort::open(device(s1, extra), *mem, *pool, 1);
        p0->start();
        p1->start();
    }
    ~TwoPorts() {
        p0.reset();
        p1.reset();
        ovs.reset();
    }
};

// Verified traffic a -> b and b -> a at once, each direction from its own thread.
void both_ways(NetPort& a, NetPort& b, PacketPool& pool, uint64_t per_queue, const Ovs& ovs) {
    ASSERT_TRUE(wait_path(a, b, pool, 10000)) << "no frame crossed OVS from " << a.describe() << "\n" << ovs.log_tail();
    ASSERT_TRUE(wait_path(b, a, pool, 10000)) << "no frame crossed OVS from " << b.describe() << "\n" << ovs.log_tail();
    TrafficOptions o;
    o.per_queue = per_queue;
    o.any_rx_queue = true;
    // Up to 1514 bytes: OVS's mbufs (MTU 1500) take no more in one buffer.
    o.size = [](uint64_t seq) { return static_cast<uint32_t>(60 + (seq * 37) % 1455); };
    TrafficResult ab, ba;
    std::thread t([&] {
        pin_to(kTestCpu);
        ba = run_traffic(b, a, pool, o);
        pool.flush_thread_cache();
    });
    ab = run_traffic(a, b, pool, o);
    t.join();
    EXPECT_TRUE(ab.complete()) << ab.first_problem << "\n" << ovs.log_tail();
    EXPECT_TRUE(ba.complete()) << ba.first_problem << "\n" << ovs.log_tail();
    EXPECT_EQ(ab.received, per_queue * a.queue_pairs()) << ab.first_problem;
    EXPECT_EQ(ba.received, per_queue * b.queue_pairs()) << ba.first_problem;
}

class OvsTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(Ovs::available()) << "Open vSwitch with DPDK missing, or fewer than 256 free 2 MiB hugepages: "
                                         "run ci/setup";
    }
    Pinned pinned_;
};

TEST_F(OvsTest, TwoVireoPortsVerifiedBothWays) {
    for (const char* ring : {",packed=0", ",packed=1,in_order=1"}) {
        SCOPED_TRACE(ring);
        TwoPorts t({.pmd_cpu = kOvsCpu}, IovaMode::PA, ring);
        EXPECT_EQ(t.p0->iova_mode(), IovaMode::PA);
        both_ways(*t.p0, *t.p1, *t.pool, 20000, *t.ovs);
        // OVS counted what crossed it: at least the verified frames, each way.
        const Ovs::PortCounters c1 = t.ovs->counters(1), c2 = t.ovs->counters(2);
        EXPECT_GE(c1.rx, 20000u);
        EXPECT_GE(c2.tx, 20000u);
        EXPECT_GE(c2.rx, 20000u);
        EXPECT_GE(c1.tx, 20000u);
        t.p0->stop();
        t.p1->stop();
        EXPECT_EQ(t.pool->in_use(), 0u) << "buffers leaked";
    }
}

// ACCESS_PLATFORM offered (vhost-iommu-support=true): the port takes VA
// mode, is the device's IOMMU, and OVS's IOTLB misses are answered.
TEST_F(OvsTest, IommuSupportGivesVaModeAndIotlb) {
    TwoPorts t({.iommu = true, .pmd_cpu = kOvsCpu}, IovaMode::VA, "");
    EXPECT_EQ(t.p0->iova_mode(), IovaMode::VA);
    EXPECT_TRUE(virtio::has(t.p0->features(), virtio::feature::kAccessPlatform));
    both_ways(*t.p0, *t.p1, *t.pool, 20000, *t.ovs);
    t.p0->stop();
    t.p1->stop();
    EXPECT_EQ(t.pool->in_use(), 0u);
}

// The sizes of the memory regions OVS's vhost library mapped for a port's
// socket (DPDK logs each region of every SET_MEM_TABLE at INFO).
std::vector<uint64_t> mapped_regions(const Ovs& ovs, const std::string& sock) {
    const std::string log = ovs.log_tail(size_t{1} << 20), key = "(" + sock + ") guest memory region size: 0x";
    std::vector<uint64_t> out;
    for (size_t at = log.find(key); at != std::string::npos; at = log.find(key, at + 1))
        out.push_back(std::stoull(log.substr(at + key.size(), 16), nullptr, 16));
    return out;
}

// dma=window through OVS: each port gives OVS its own window only (rings and
// bounce slots: OVS's log names one region of the window's size per memory
// table), never the pool the test's frames live in; every frame is copied in
// and out and still arrives intact. Split in PA mode, packed with
// ACCESS_PLATFORM (VA: OVS's IOTLB misses answered only inside the window).
TEST_F(OvsTest, WindowPortsVerifiedBothWays) {
    for (const bool iommu : {false, true}) {
        SCOPED_TRACE(iommu ? "packed, VA (IOTLB)" : "split, PA");
        TwoPorts t({.iommu = iommu, .pmd_cpu = kOvsCpu}, iommu ? IovaMode::VA : IovaMode::PA,
                   iommu ? ",dma=window,packed=1,in_order=1" : ",dma=window");
        ASSERT_NE(t.p0->window(), nullptr);
        ASSERT_NE(t.p1->window(), nullptr);
        both_ways(*t.p0, *t.p1, *t.pool, 20000, *t.ovs);
        for (NetPort* p : {t.p0.get(), t.p1.get()}) {  // every byte crossed a window, both ways
            EXPECT_EQ(p->rx_stats(0).bounced_bytes, p->rx_stats(0).bytes);
            EXPECT_EQ(p->tx_stats(0).bounced_bytes, p->tx_stats(0).bytes);
        }
        for (NetPort* p : {t.p0.get(), t.p1.get()}) {  // what OVS mapped: the window, nothing else
            const std::vector<uint64_t> regions = mapped_regions(*t.ovs, p == t.p0.get() ? t.s0 : t.s1);
            ASSERT_FALSE(regions.empty()) << "OVS's log names no memory region (its DPDK log level?)";
            for (uint64_t len : regions) EXPECT_EQ(len, p->window()->region(0).length());
        }
        t.p0->stop();
        t.p1->stop();
        EXPECT_EQ(t.pool->in_use(), 0u) << "buffers leaked";
    }
}

// Two queue pairs per port: OVS follows the guest's queue count.
TEST_F(OvsTest, TwoQueuePairs) {
    TwoPorts t({.pmd_cpu = kOvsCpu}, IovaMode::PA, ",queues=2");
    ASSERT_EQ(t.p0->queue_pairs(), 2);
    both_ways(*t.p0, *t.p1, *t.pool, 10000, *t.ovs);
    t.p0->stop();
    t.p1->stop();
    EXPECT_EQ(t.pool->in_use(), 0u);
}

// A vireo port and DPDK's own front end (virtio-user in dpdk-testpmd, io
// forwarding on its one port) on the same bridge: vireo's frames cross OVS
// twice and come back intact.
TEST_F(OvsTest, VireoAndDpdkVirtioUserOnOneBridge) {
    ASSERT_TRUE(TestPmd::available());
    Ovs ovs({.pmd_cpu = kOvsCpu});
    const std::string s0 = peer_socket("ovs-vireo"), s1 = peer_socket("ovs-dpdk");
    ovs.add_port("vhu0", s0, 1);
    ovs.add_port("vhu1", s1, 2);
    ovs.connect_ports(1, 2);
    TestPmdOptions po{s1, 1};
    po.virtio_user = true;
    po.fwd_cpu = kTestCpu;
    TestPmd dpdk(po);
    DmaMemory mem(peer_memory(IovaMode::PA, 64 << 20));
    PacketPool pool(mem, {.count = 8192, .data_room = 2048});
    auto port = NetPort::open(device(s0), mem, pool);
    port->start();
    ASSERT_TRUE(wait_path(*port, *port, pool, 15000)) << "no frame came back\n"
                                                      << ovs.log_tail() << "\n"
                                                      << dpdk.log_tail();
    TrafficOptions o;
    o.per_queue = 20000;
    o.size = [](uint64_t seq) { return static_cast<uint32_t>(60 + (seq * 37) % 1455); };
    TrafficResult r = run_traffic(*port, pool, o);
    EXPECT_TRUE(r.complete()) << r.first_problem << "\n" << dpdk.log_tail();
    EXPECT_EQ(r.received, 20000u) << r.first_problem;
    EXPECT_GE(ovs.counters(2).rx, 20000u) << "the frames did not pass DPDK's front end";
    port->stop();
    EXPECT_EQ(pool.in_use(), 0u);
}

// TSO through the switch operators run: with userspace-tso-enable=true OVS
// offers HOST_TSO4/6, takes up to 64 KB TCP segments from port 1 whole and
// hands them to port 2 (GUEST_TSO4/6) as one large frame. OVS 3.1 does not
// pass the sender's MSS on: it sets the segment size from the output port's
// MTU (1500 - IP header - TCP header: 1448 for IPv4 here, 1428 for IPv6,
// where the sender asked 1448 for both). Cut in the test at that size, every
// segment has the right bytes, sequence numbers and checksums.
void tso_through_ovs(const std::string& ring) {
    TwoPorts t({.pmd_cpu = kOvsCpu, .tso = true}, IovaMode::PA, ring + ",guest_tso4=1,guest_tso6=1");
    ASSERT_TRUE(virtio::has(t.p0->features(), virtio::feature::kNetHostTso4))
        << "userspace-tso-enable=true offers HOST_TSO4\n"
        << t.ovs->log_tail();
    ASSERT_TRUE(virtio::has(t.p0->features(), virtio::feature::kNetHostTso6));
    ASSERT_TRUE(virtio::has(t.p1->features(), virtio::feature::kNetGuestTso4));
    ASSERT_TRUE(wait_path(*t.p0, *t.p1, *t.pool, 10000)) << t.ovs->log_tail();
    const std::vector<TcpFrameSpec> specs = tso_stream();
    std::vector<Packet*> got = send_and_collect(*t.p0, *t.p1, *t.pool, specs, 1448, specs.size());
    ASSERT_EQ(got.size(), specs.size()) << "OVS counters: port 1 rx " << t.ovs->counters(1).rx << " dropped "
                                        << t.ovs->counters(1).rx_dropped << ", port 2 tx " << t.ovs->counters(2).tx
                                        << " dropped " << t.ovs->counters(2).tx_dropped << "\n"
                                        << t.ovs->log_tail();
    for (size_t i = 0; i < specs.size(); i++) {
        SCOPED_TRACE("segment " + std::to_string(i));
        const uint32_t ovs_mss = 1500 - l3_of(specs[i]) - kTcpHdr;
        EXPECT_EQ(check_large_segment(*got[i], specs[i], ovs_mss, *t.pool), "");
    }
    PacketPool::free_bulk(got.data(), static_cast<uint32_t>(got.size()));
    EXPECT_EQ(t.p0->tx_stats(0).tso, specs.size());
    EXPECT_EQ(t.p0->tx_stats(0).sw_segments, 0u) << "vireo cut segments OVS should have taken whole";
    EXPECT_EQ(t.p1->rx_stats(0).tso, specs.size());
    t.p0->stop();
    t.p1->stop();
    EXPECT_EQ(t.pool->in_use(), 0u) << "buffers leaked";
}

TEST_F(OvsTest, TsoLargeSegmentsCrossWhole) {
    for (const char* ring : {",packed=0", ",packed=1"}) {
        SCOPED_TRACE(ring);
        tso_through_ovs(ring);
    }
}

// ovs-vswitchd killed (SIGKILL and SIGTERM in turn) and started again 20
// times while traffic flows: each time both ports see the link go down,
// give every buffer back, and come up again by themselves; traffic resumes
// within 2 s of OVS running again; no frame is ever corrupt or out of order.
TEST_F(OvsTest, RestartedTwentyTimesUnderTraffic) {
    TwoPorts t({.pmd_cpu = kOvsCpu}, IovaMode::PA, "");
    ASSERT_TRUE(wait_path(*t.p0, *t.p1, *t.pool, 10000)) << t.ovs->log_tail();
    BackgroundTraffic traffic(*t.p0, *t.p1, *t.pool, 256, kTestCpu);
    ASSERT_TRUE(traffic.wait_flow(10000, 5000)) << traffic.first_problem();
    double worst_ms = 0;
    for (int round = 0; round < 20; round++) {
        SCOPED_TRACE("round " + std::to_string(round));
        const int sig = round % 2 == 0 ? SIGKILL : SIGTERM;
        t.ovs->restart(sig);  // returns once OVS runs again
        const auto back = Clock::now();
        ASSERT_TRUE(traffic.wait_flow(1000, 10000)) << "traffic did not resume\n"
                                                    << t.p0->link_status().reason << "\n"
                                                    << t.ovs->log_tail();
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - back).count();
        worst_ms = std::max(worst_ms, ms);
        EXPECT_LT(ms, 2000.0) << "traffic resumed " << ms << " ms after OVS was back";
    }
    traffic.stop();
    std::printf("OVS restarted 20 times: traffic back within %.0f ms at worst; %llu frames verified\n", worst_ms,
                static_cast<unsigned long long>(traffic.received()));
    EXPECT_EQ(traffic.bad(), 0u) << traffic.first_problem();
    EXPECT_EQ(traffic.misordered(), 0u) << traffic.first_problem();
    // The restarted OVS forwards by our two rules, not as a learning switch
    // (which floods: with more than two ports, duplicates; the soak found them).
    const std::string flows = t.ovs->flows();
    EXPECT_EQ(flows.find("NORMAL"), std::string::npos) << flows;
    EXPECT_NE(flows.find("in_port=1 actions=output:2"), std::string::npos) << flows;
    EXPECT_NE(flows.find("in_port=2 actions=output:1"), std::string::npos) << flows;
    for (NetPort* p : {t.p0.get(), t.p1.get()}) {
        const LinkStatus l = p->link_status();
        EXPECT_TRUE(l.up);
        EXPECT_EQ(l.downs, 20u) << p->describe();
        EXPECT_EQ(l.reconnects, 20u) << p->describe();
    }
    t.p0->stop();
    t.p1->stop();
    EXPECT_EQ(t.pool->in_use(), 0u) << "buffers leaked";
}

}  // namespace
}  // namespace vireo::test
