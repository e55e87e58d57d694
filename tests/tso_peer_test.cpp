// TCP segmentation offload against the real peer (issue 18, part 1): two
// vireo ports on two net_vhost ports of one dpdk-testpmd in io mode. Port A
// sends 64 KB TCP segments flagged pkt::kTxTcpSeg; port B receives them.
//   - A with HOST_TSO (tso=1 on the vdev): DPDK's vhost takes the segment
//     whole, and with legacy-ol-flags=1 hands its TSO request on to port 1,
//     whose vhost writes the GSO header for B (GUEST_TSO4/6): B gets one
//     large frame with kRxGsoTcp4/6 and the MSS. Cut in the test, every
//     segment's checksums and bytes are right.
//   - A without HOST_TSO: vireo cuts the segment itself; B gets MSS-sized
//     frames, in order, with their checksums (completed from the pseudo-
//     header sum when NEEDS_CSUM says so).
//   - vireo-fwd --enable-lro between them (two more net_vhost ports): a large
//     segment it receives leaves whole, through its Tx port's TSO.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "support/fwd_process.hpp"
#include "support/peer_env.hpp"
#include "support/tcp_frames.hpp"
#include "support/testpmd.hpp"
#include "support/traffic.hpp"
#include "support/tso_traffic.hpp"
#include "vireo/offload/tcp_segment.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

using namespace virtio::feature;

// A -> testpmd port 0 -> port 1 -> B; or, with `fwd_args`, A -> port 0 ->
// port 1 -> vireo-fwd -> port 2 -> port 3 -> B (testpmd's io pairs 0-1, 2-3).
struct Lab {
    std::string a_sock = peer_socket("tso-a"), b_sock = peer_socket("tso-b");
    std::string f0_sock = peer_socket("tso-f0"), f1_sock = peer_socket("tso-f1");
    std::unique_ptr<TestPmd> pmd;
    std::unique_ptr<Fwd> fwd;
    DmaMemory mem{peer_memory(IovaMode::PA, 256 << 20)};
    PacketPool pool{mem, {.count = 16384, .data_room = 2048, .cache_size = 0}};
    std::unique_ptr<NetPort> a, b;

    Lab(const std::string& a_args, const std::string& b_args, const std::vector<std::string>& fwd_args = {}) {
        TestPmdOptions o{a_sock};
        o.more_sockets = {b_sock};
        if (!fwd_args.empty()) o.more_sockets = {f0_sock, f1_sock, b_sock};
        o.vhost_args = "tso=1,legacy-ol-flags=1";
        pmd = std::make_unique<TestPmd>(o);
        EXPECT_TRUE(pmd->wait_for_socket(15000)) << pmd->log_tail();
        if (!fwd_args.empty()) {
            std::vector<std::string> args = fwd_args;
            args.push_back("vhost-user:" + f0_sock + ",timeout_ms=15000");
            args.push_back("vhost-user:" + f1_sock + ",timeout_ms=15000");
            fwd = std::make_unique<Fwd>(args);
            EXPECT_TRUE(fwd->wait_for("polling on CPU")) << fwd->log();
        }
        a = NetPort::open("vhost-user:" + a_sock + ",timeout_ms=15000" + a_args, mem, pool, 0);
        b = NetPort::open("vhost-user:" + b_sock + ",timeout_ms=15000" + b_args, mem, pool, 1);
        a->start();
        b->start();
    }
    ~Lab() {
        if (a) a->stop();
        if (b) b->stop();
    }
};

TEST(TsoPeer, ALargeSegmentCrossesDpdkWholeAndArrivesWithItsMss) {
    ASSERT_TRUE(TestPmd::available()) << "dpdk-testpmd missing: run ci/setup";
    for (const char* ring : {"", ",packed=1"}) {
        SCOPED_TRACE(*ring ? "packed" : "split");
        Lab lab(ring, std::string(ring) + ",guest_tso4=1,guest_tso6=1");
        ASSERT_TRUE(virtio::has(lab.a->features(), kNetHostTso4)) << "tso=1 on the vdev offers HOST_TSO4";
        ASSERT_TRUE(virtio::has(lab.a->features(), kNetHostTso6));
        ASSERT_TRUE(virtio::has(lab.b->features(), kNetGuestTso4));
        ASSERT_TRUE(wait_path(*lab.a, *lab.b, lab.pool, 10000)) << lab.pmd->log_tail();
        const std::vector<TcpFrameSpec> specs = tso_stream();
        const uint16_t mss = 1448;
        std::vector<Packet*> got = send_and_collect(*lab.a, *lab.b, lab.pool, specs, mss, specs.size());
        ASSERT_EQ(got.size(), specs.size()) << lab.pmd->log_tail();
        for (size_t i = 0; i < specs.size(); i++) {
            SCOPED_TRACE("segment " + std::to_string(i));
            EXPECT_EQ(check_large_segment(*got[i], specs[i], mss, lab.pool), "");
        }
        PacketPool::free_bulk(got.data(), static_cast<uint32_t>(got.size()));
        EXPECT_EQ(lab.a->tx_stats(0).tso, specs.size());
        EXPECT_EQ(lab.a->tx_stats(0).sw_segments, 0u);
        EXPECT_EQ(lab.b->rx_stats(0).tso, specs.size());
    }
}

TEST(TsoPeer, WithoutHostTsoVireoCutsAndEveryFrameArrivesValid) {
    ASSERT_TRUE(TestPmd::available()) << "dpdk-testpmd missing: run ci/setup";
    for (const char* a_args : {",host_tso4=0,host_tso6=0", ",host_tso4=0,host_tso6=0,csum=0"}) {
        SCOPED_TRACE(a_args);
        Lab lab(a_args, "");
        ASSERT_FALSE(virtio::has(lab.a->features(), kNetHostTso4));
        ASSERT_TRUE(wait_path(*lab.a, *lab.b, lab.pool, 10000)) << lab.pmd->log_tail();
        const std::vector<TcpFrameSpec> specs = tso_stream();
        const uint16_t mss = 1400;
        size_t frames_expected = 0;
        for (const TcpFrameSpec& s : specs) frames_expected += (s.payload + mss - 1) / mss;
        std::vector<Packet*> got = send_and_collect(*lab.a, *lab.b, lab.pool, specs, mss, frames_expected);
        ASSERT_EQ(got.size(), frames_expected) << lab.pmd->log_tail();
        size_t at = 0;
        for (size_t i = 0; i < specs.size(); i++) {
            SCOPED_TRACE("segment " + std::to_string(i));
            const size_t n = (specs[i].payload + mss - 1) / mss;
            std::vector<std::vector<uint8_t>> frames;
            bool partial = false;
            for (size_t j = 0; j < n; j++) {
                frames.push_back(flatten(got[at + j]));
                partial |= (got[at + j]->ol_flags & pkt::kRxL4CsumPartial) != 0;
            }
            EXPECT_EQ(check_segments(specs[i], frames, mss, partial), "");
            at += n;
        }
        PacketPool::free_bulk(got.data(), static_cast<uint32_t>(got.size()));
        EXPECT_EQ(lab.a->tx_stats(0).sw_segments, frames_expected);
        EXPECT_EQ(lab.a->tx_stats(0).tso, 0u);
    }
}

// vireo-fwd --enable-lro in the middle: it takes each large segment whole
// (GUEST_TSO) and sends it on whole (HOST_TSO of its other port).
TEST(TsoPeer, VireoFwdForwardsLargeSegmentsWhole) {
    ASSERT_TRUE(TestPmd::available()) << "dpdk-testpmd missing: run ci/setup";
    const std::string json = peer_socket("tso-fwd") + ".json";
    Lab lab("", ",guest_tso4=1,guest_tso6=1",
            {"--enable-lro", "--sleep-when-idle", "--stats-period=0", "--cores=0", "--json=" + json});
    ASSERT_TRUE(wait_path(*lab.a, *lab.b, lab.pool, 10000)) << lab.pmd->log_tail() << lab.fwd->log();
    const std::vector<TcpFrameSpec> specs = tso_stream();
    std::vector<Packet*> got = send_and_collect(*lab.a, *lab.b, lab.pool, specs, 1448, specs.size());
    ASSERT_EQ(got.size(), specs.size()) << lab.pmd->log_tail() << lab.fwd->log();
    for (size_t i = 0; i < specs.size(); i++) {
        SCOPED_TRACE("segment " + std::to_string(i));
        EXPECT_EQ(check_large_segment(*got[i], specs[i], 1448, lab.pool), "");
    }
    PacketPool::free_bulk(got.data(), static_cast<uint32_t>(got.size()));
    EXPECT_EQ(lab.fwd->finish(), 0) << lab.fwd->log();
    nlohmann::json summary = read_summary(json);
    ::unlink(json.c_str());
    ASSERT_EQ(summary.value("ports", nlohmann::json::array()).size(), 2u) << summary;
    EXPECT_EQ(summary["ports"][0].value("rx_tso", 0u), specs.size()) << summary;
    EXPECT_EQ(summary["ports"][1].value("tx_tso", 0u), specs.size()) << summary;
    EXPECT_EQ(summary["ports"][1].value("tx_sw_segments", 1u), 0u) << summary;
}

}  // namespace
}  // namespace vireo::test
