// Packet capture (issue 19, part 2) without a peer: the CaptureRing's
// records (lengths, snaplen, chains, wrap-around, a full ring counted as
// drops, the shared count= budget) and the pcapng file PcapngWriter makes,
// read back with libpcap (pcap_open_offline), which vireo does not use to
// write it.
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "support/fake_memory.hpp"
#include "support/packet_chain.hpp"
#include "vireo/capture/capture.hpp"
#include "vireo/capture/pcapng.hpp"
#include "vireo/mempool/packet_pool.hpp"

namespace vireo::test {
namespace {

std::vector<uint8_t> frame(uint32_t len, uint8_t seed) {
    std::vector<uint8_t> f(len);
    for (uint32_t i = 0; i < len; i++) f[i] = static_cast<uint8_t>(seed + i * 3);
    return f;
}

struct Drained {
    CaptureRecord r;
    std::vector<uint8_t> data;
};

std::vector<Drained> drain(CaptureRing& ring) {
    std::vector<Drained> out;
    ring.drain([&](const CaptureRecord& r, const uint8_t* d) { out.push_back({r, {d, d + r.cap_len}}); });
    return out;
}

struct Pool {
    DmaMemory mem{fake_pa_memory()};
    PacketPool pool{mem, {.count = 512, .data_room = 2048, .cache_size = 0}};
};

TEST(Capture, RecordsKeepSnaplenBytesOfChainsWithTheirMetadata) {
    Pool p;
    CaptureRing ring(1 << 20, 100);
    Packet* pkts[3] = {to_chain(p.pool, frame(60, 1), 2048), to_chain(p.pool, frame(5000, 2), 700),
                       to_chain(p.pool, frame(100, 3), 2048)};
    ring.offer(pkts, 3, 2, 5, CaptureDirection::Tx);
    const std::vector<Drained> got = drain(ring);
    ASSERT_EQ(got.size(), 3u);
    const uint32_t lens[3] = {60, 5000, 100};
    for (int i = 0; i < 3; i++) {
        EXPECT_EQ(got[i].r.wire_len, lens[i]);
        EXPECT_EQ(got[i].r.cap_len, std::min(lens[i], 100u));
        EXPECT_EQ(got[i].r.port, 2);
        EXPECT_EQ(got[i].r.queue, 5);
        EXPECT_EQ(got[i].r.dir, CaptureDirection::Tx);
        EXPECT_GT(got[i].r.ns, 1600000000ull * 1000000000ull) << "a wall-clock time";
        const std::vector<uint8_t> f = frame(lens[i], static_cast<uint8_t>(i + 1));
        EXPECT_EQ(got[i].data, std::vector<uint8_t>(f.begin(), f.begin() + got[i].r.cap_len));
    }
    EXPECT_EQ(ring.captured(), 3u);
    EXPECT_EQ(ring.dropped(), 0u);
    for (Packet* q : pkts) PacketPool::free(q);
}

// The writer keeps up: thousands of records pass through a 64 KiB ring
// (padding at every wrap); when it does not, the rest are drops, in order.
TEST(Capture, WrapsAroundAndCountsAFullRingAsDrops) {
    Pool p;
    CaptureRing ring(64 << 10, 2048);
    uint64_t seen = 0;
    for (int round = 0; round < 300; round++) {
        Packet* b[8];
        for (int i = 0; i < 8; i++) b[i] = to_chain(p.pool, frame(60 + (round * 8 + i) * 13 % 1400, uint8_t(i)), 2048);
        ring.offer(b, 8, 0, 0, CaptureDirection::Rx);
        for (const Drained& d : drain(ring)) {
            ASSERT_EQ(d.r.wire_len, 60 + seen * 13 % 1400) << seen;
            ASSERT_EQ(d.data, frame(d.r.wire_len, uint8_t(seen % 8)));
            seen++;
        }
        PacketPool::free_bulk(b, 8);
    }
    EXPECT_EQ(seen, 2400u);
    EXPECT_EQ(ring.dropped(), 0u);
    // Nobody drains: the ring fills, later frames are dropped, never overwritten.
    Packet* big[64];
    for (int i = 0; i < 64; i++) big[i] = to_chain(p.pool, frame(1500, 9), 2048);
    ring.offer(big, 64, 0, 0, CaptureDirection::Rx);
    const uint64_t kept = ring.captured() - 2400;
    EXPECT_GT(kept, 30u);
    EXPECT_LT(kept, 64u);
    EXPECT_EQ(ring.dropped(), 64 - kept);
    EXPECT_EQ(drain(ring).size(), kept);
    PacketPool::free_bulk(big, 64);
}

TEST(Capture, ACountIsSharedByEveryRing) {
    Pool p;
    std::atomic<int64_t> budget{5};
    CaptureRing a(1 << 20, 64, &budget), b(1 << 20, 64, &budget);
    Packet* pk[4];
    for (auto& q : pk) q = to_chain(p.pool, frame(60, 0), 2048);
    a.offer(pk, 4, 0, 0, CaptureDirection::Rx);
    b.offer(pk, 4, 1, 0, CaptureDirection::Tx);
    EXPECT_EQ(drain(a).size() + drain(b).size(), 5u);
    EXPECT_EQ(a.dropped() + b.dropped(), 0u) << "the count is a limit, not a loss";
    PacketPool::free_bulk(pk, 4);
}

// libpcap reads the file back: link type, lengths, bytes, timestamps in ns.
TEST(Capture, PcapngReadsBackWithLibpcap) {
    Pool p;
    CaptureRing ring(1 << 20, 128);
    Packet* pk[2] = {to_chain(p.pool, frame(64, 7), 2048), to_chain(p.pool, frame(1000, 8), 2048)};
    ring.offer(pk, 2, 1, 0, CaptureDirection::Rx);
    char path[] = "/tmp/vireo-capture-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    {
        PcapngWriter w(path, {"port0 a", "port1 b"}, 128);
        ring.drain([&](const CaptureRecord& r, const uint8_t* d) { w.write(r, d); });
        w.close();
        EXPECT_EQ(w.written(), 2u);
    }
    char err[PCAP_ERRBUF_SIZE];
    pcap_t* pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
    ASSERT_NE(pc, nullptr) << err;
    EXPECT_EQ(pcap_datalink(pc), DLT_EN10MB);
    pcap_pkthdr* h;
    const u_char* d;
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(pcap_next_ex(pc, &h, &d), 1) << pcap_geterr(pc);
        const uint32_t len = i == 0 ? 64 : 1000;
        EXPECT_EQ(h->len, len);
        EXPECT_EQ(h->caplen, std::min(len, 128u));
        const std::vector<uint8_t> f = frame(len, static_cast<uint8_t>(7 + i));
        EXPECT_EQ(std::vector<uint8_t>(d, d + h->caplen), std::vector<uint8_t>(f.begin(), f.begin() + h->caplen));
        EXPECT_GT(h->ts.tv_sec, 1600000000);
    }
    EXPECT_EQ(pcap_next_ex(pc, &h, &d), PCAP_ERROR_BREAK) << "two packets, then the end";
    pcap_close(pc);
    ::unlink(path);
    PacketPool::free_bulk(pk, 2);
}

}  // namespace
}  // namespace vireo::test
