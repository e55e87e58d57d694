// TCP segmentation offload (issue 18, part 1) without a peer: vireo's
// software segmentation (tcp_segment.hpp) against frames built and checked
// independently (support/tcp_frames), and a NetPort against the device
// model: the header a device with HOST_TSO gets, the frames a device without
// it gets, and a large segment received with GUEST_TSO.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "datapath/net_checksum.hpp"
#include "support/error_of.hpp"
#include "support/port_rig.hpp"
#include "support/tcp_frames.hpp"
#include "vireo/offload/tcp_segment.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

using namespace virtio::feature;

constexpr uint8_t kFin = 0x01, kPsh = 0x08, kCwr = 0x80;

struct Pool {
    DmaMemory mem{fake_pa_memory(64 << 20)};
    PacketPool pool;
    explicit Pool(uint16_t data_room = 2048) : pool(mem, {.count = 2048, .data_room = data_room, .cache_size = 0}) {}
};

// Each segment against the large one it was cut from (check_segments), and
// the metadata the segmentation sets.
void expect_segments(const TcpFrameSpec& s, Packet* const* segs, uint16_t n, uint32_t mss, bool partial) {
    std::vector<std::vector<uint8_t>> frames;
    for (uint16_t i = 0; i < n; i++) {
        const Packet* p = segs[i];
        EXPECT_EQ(p->l2_len, l2_of(s));
        EXPECT_EQ(p->l3_len, l3_of(s));
        EXPECT_EQ(p->l4_len, kTcpHdr);
        EXPECT_EQ((p->ol_flags & pkt::kTxTcpCsum) != 0, partial) << i;
        EXPECT_NE(p->ol_flags & (s.version == 4 ? pkt::kTxIpv4 : pkt::kTxIpv6), 0u);
        frames.push_back(flatten(p));
    }
    EXPECT_EQ(check_segments(s, frames, mss, partial), "");
}

TEST(TcpSegment, CutsA64KiBIpv4SegmentWithCompleteChecksums) {
    Pool p;
    TcpFrameSpec s{.version = 4, .payload = 64000, .seq = 0xfffff000, .flags = kCwr | kFin | kPsh | 0x10};
    Packet* big = to_chain(p.pool, tcp_frame(s), 1999);  // segment borders anywhere in the payload
    ASSERT_NE(big, nullptr);
    big->tso_segsz = 1448;
    EXPECT_EQ(tcp_segment_count(*big), 45u);
    Packet* out[64];
    const uint16_t n = tcp_segment(*big, p.pool, out, 64, SegmentChecksum::Complete);
    expect_segments(s, out, n, 1448, false);  // the sequence number wraps on the way
    PacketPool::free_bulk(out, n);
    PacketPool::free(big);
    EXPECT_EQ(p.pool.in_use(), 0u);
}

TEST(TcpSegment, CutsAVlanTaggedIpv6SegmentWithPartialChecksums) {
    Pool p;
    TcpFrameSpec s{.version = 6, .payload = 30001, .seq = 77, .vlan = true};
    Packet* big = to_chain(p.pool, tcp_frame(s), 2048);
    big->tso_segsz = 1220;
    Packet* out[64];
    const uint16_t n = tcp_segment(*big, p.pool, out, 64, SegmentChecksum::Partial);
    expect_segments(s, out, n, 1220, true);
    PacketPool::free_bulk(out, n);
    PacketPool::free(big);
    EXPECT_EQ(p.pool.in_use(), 0u);
}

TEST(TcpSegment, ShortAndExactPayloads) {
    Pool p;
    for (uint32_t payload : {0u, 1u, 1000u, 1448u, 2896u, 2897u}) {
        SCOPED_TRACE("payload " + std::to_string(payload));
        TcpFrameSpec s{.version = 4, .payload = payload};
        Packet* big = to_chain(p.pool, tcp_frame(s), 2048);
        big->tso_segsz = 1448;
        Packet* out[8];
        const uint16_t n = tcp_segment(*big, p.pool, out, 8, SegmentChecksum::Complete);
        expect_segments(s, out, n, 1448, false);
        PacketPool::free_bulk(out, n);
        PacketPool::free(big);
    }
    EXPECT_EQ(p.pool.in_use(), 0u);
}

TEST(TcpSegment, RefusesWhatItCannotCut) {
    Pool p;
    const TcpFrameSpec s{.version = 4, .payload = 5000};
    auto refused = [&](std::vector<uint8_t> f, uint16_t mss, uint16_t max, PacketPool& pool) {
        Packet* big = to_chain(p.pool, f, 2048);
        big->tso_segsz = mss;
        Packet* out[8];
        const uint16_t n = tcp_segment(*big, pool, out, max, SegmentChecksum::Complete);
        PacketPool::free(big);
        return n == 0;
    };
    std::vector<uint8_t> udp = tcp_frame(s);
    udp[14 + 9] = 17;
    EXPECT_TRUE(refused(udp, 1448, 8, p.pool)) << "UDP";
    std::vector<uint8_t> fragment = tcp_frame(s);
    fragment[14 + 6] = 0x20;  // more fragments
    EXPECT_TRUE(refused(fragment, 1448, 8, p.pool)) << "an IPv4 fragment";
    std::vector<uint8_t> arp = tcp_frame(s);
    arp[12] = 0x08, arp[13] = 0x06;
    EXPECT_TRUE(refused(arp, 1448, 8, p.pool)) << "not IP";
    std::vector<uint8_t> short_tcp = tcp_frame(s);
    short_tcp[14 + 20 + 12] = 0x40;  // data offset 16 bytes
    EXPECT_TRUE(refused(short_tcp, 1448, 8, p.pool)) << "a TCP header shorter than 20 bytes";
    EXPECT_TRUE(refused(tcp_frame(s), 0, 8, p.pool)) << "no MSS";
    EXPECT_TRUE(refused(tcp_frame(s), 1448, 3, p.pool)) << "more segments than room for";
    Pool small(512);
    EXPECT_TRUE(refused(tcp_frame(s), 1448, 8, small.pool)) << "a segment larger than the data room";
    EXPECT_EQ(p.pool.in_use(), 0u);
    EXPECT_EQ(small.pool.in_use(), 0u);
    EXPECT_FALSE(refused(tcp_frame(s), 1448, 8, p.pool)) << "and the frame itself is fine";
}

// What a device with HOST_TSO is given: the pseudo-header sum over the
// whole TCP length in the checksum field (5.1.6.2, as Linux and DPDK's
// virtio driver give it), so that the device's sum over the frame is the
// large segment's real checksum; the gso_type from the frame.
TEST(TcpSegment, PrepareForTheDeviceFillsThePseudoHeaderSum) {
    Pool p;
    for (int version : {4, 6}) {
        TcpFrameSpec s{.version = version, .payload = 20000};
        std::vector<uint8_t> f = tcp_frame(s);
        const size_t field = l2_of(s) + l3_of(s) + 16;
        f[field] = 0xde, f[field + 1] = 0xad;  // whatever the application left there
        if (version == 4) f[14 + 10] = 0;      // and a stale IPv4 header checksum
        Packet* big = to_chain(p.pool, f, 2048);
        big->tso_segsz = 1448;
        big->ol_flags = pkt::kTxTcpSeg;  // no IP version flag: taken from the frame
        EXPECT_EQ(tcp_prepare_tso(*big), version == 4 ? virtio::kNetHdrGsoTcpv4 : virtio::kNetHdrGsoTcpv6);
        EXPECT_NE(big->ol_flags & (version == 4 ? pkt::kTxIpv4 : pkt::kTxIpv6), 0u);
        ASSERT_TRUE(complete_checksum(big, l2_of(s) + l3_of(s), 16, false));
        EXPECT_EQ(check_tcp_frame(flatten(big)), "") << "IPv" << version;
        PacketPool::free(big);
    }
}

constexpr virtio::Features kOffered = virtio::bit(kVersion1) | virtio::bit(kNetCsum) | virtio::bit(kNetGuestCsum) |
                                      virtio::bit(kNetMrgRxbuf) | virtio::bit(kEventIdx);
constexpr virtio::Features kHostTso = virtio::bit(kNetHostTso4) | virtio::bit(kNetHostTso6);
constexpr virtio::Features kGuestTso = virtio::bit(kNetGuestTso4) | virtio::bit(kNetGuestTso6);

// Everything the device read from one Tx buffer: [virtio-net header][frame].
std::vector<uint8_t> read_all(const DevBuffer& b) {
    std::vector<uint8_t> v;
    for (const DevSeg& s : b.segs) v.insert(v.end(), s.va, s.va + s.len);
    return v;
}

TEST(TcpSegmentPort, ADeviceWithHostTsoGetsOneFrameAndTheGsoHeader) {
    for (int version : {4, 6}) {
        SCOPED_TRACE("IPv" + std::to_string(version));
        Rig r(kOffered | kHostTso, "vhost-user:/fake,ring=256", 1, 2048);
        r.port->start();
        ASSERT_TRUE(virtio::has(r.port->features(), version == 4 ? kNetHostTso4 : kNetHostTso6));
        SplitDevice txd = r.device(1);
        const TcpFrameSpec s{.version = version, .payload = 64000};
        Packet* p = large_segment(r.pool, s, 1448);
        ASSERT_EQ(r.port->tx_burst(0, &p, 1), 1);
        std::deque<DevBuffer> got;
        ASSERT_EQ(txd.take(8, got), 1u) << "one chain for the whole segment";
        const std::vector<uint8_t> b = read_all(got[0]);
        virtio::NetHdr h;
        std::memcpy(&h, b.data(), sizeof h);
        EXPECT_EQ(h.flags, virtio::kNetHdrFNeedsCsum);
        EXPECT_EQ(h.gso_type, version == 4 ? virtio::kNetHdrGsoTcpv4 : virtio::kNetHdrGsoTcpv6);
        EXPECT_EQ(h.gso_size, 1448);
        EXPECT_EQ(h.hdr_len, l2_of(s) + l3_of(s) + kTcpHdr);
        EXPECT_EQ(h.csum_start, l2_of(s) + l3_of(s));
        EXPECT_EQ(h.csum_offset, 16);
        ASSERT_EQ(b.size(), 12 + tcp_frame(s).size());
        // Cut it as the device would: every frame is valid.
        Pool cut;
        Packet* frame = to_chain(cut.pool, std::vector<uint8_t>(b.begin() + 12, b.end()), 2048);
        frame->tso_segsz = h.gso_size;
        Packet* segs[64];
        const uint16_t n = tcp_segment(*frame, cut.pool, segs, 64, SegmentChecksum::Complete);
        expect_segments(s, segs, n, 1448, false);
        PacketPool::free_bulk(segs, n);
        PacketPool::free(frame);
        EXPECT_EQ(r.port->tx_stats(0).tso, 1u);
        EXPECT_EQ(r.port->tx_stats(0).sw_segments, 0u);
        EXPECT_EQ(r.port->tx_stats(0).bytes, tcp_frame(s).size());
        txd.complete({got.begin(), got.end()});
        r.port->stop();
        EXPECT_EQ(r.pool.in_use(), 0u);
    }
}

// Without HOST_TSO (or with host_tso4=0) vireo cuts the segment: the device
// gets MSS-sized frames, each with its checksum offloaded when the device
// has CSUM and complete when it has not.
TEST(TcpSegmentPort, WithoutHostTsoVireoCutsTheSegment) {
    struct Case {
        virtio::Features offered;
        std::string dev;
        bool device_csum;
    };
    for (const Case& c : {Case{kOffered, "vhost-user:/fake,ring=256", true},
                          Case{kOffered | kHostTso, "vhost-user:/fake,ring=256,host_tso4=0", true},
                          Case{kOffered & ~virtio::bit(kNetCsum), "vhost-user:/fake,ring=256", false}}) {
        SCOPED_TRACE(c.dev + (c.device_csum ? "" : ", no CSUM"));
        Rig r(c.offered, c.dev, 1, 2048);
        r.port->start();
        EXPECT_FALSE(virtio::has(r.port->features(), kNetHostTso4));
        SplitDevice txd = r.device(1);
        const TcpFrameSpec s{.version = 4, .payload = 40000, .flags = 0x19};
        Packet* p = large_segment(r.pool, s, 1448);
        ASSERT_EQ(r.port->tx_burst(0, &p, 1), 1);
        std::deque<DevBuffer> got;
        ASSERT_EQ(txd.take(64, got), 28u);
        Pool rebuilt;
        std::vector<Packet*> frames;
        for (const DevBuffer& b : got) {
            const std::vector<uint8_t> v = read_all(b);
            virtio::NetHdr h;
            std::memcpy(&h, v.data(), sizeof h);
            EXPECT_EQ(h.gso_type, virtio::kNetHdrGsoNone);
            EXPECT_EQ(h.flags, c.device_csum ? virtio::kNetHdrFNeedsCsum : 0);
            Packet* f = to_chain(rebuilt.pool, std::vector<uint8_t>(v.begin() + 12, v.end()), 2048);
            f->ol_flags = pkt::kTxIpv4 | (c.device_csum ? pkt::kTxTcpCsum : 0);
            f->l2_len = 14, f->l3_len = 20, f->l4_len = kTcpHdr;
            if (c.device_csum) {
                EXPECT_EQ(h.csum_start, 34);
            }
            frames.push_back(f);
        }
        expect_segments(s, frames.data(), static_cast<uint16_t>(frames.size()), 1448, c.device_csum);
        PacketPool::free_bulk(frames.data(), static_cast<uint32_t>(frames.size()));
        EXPECT_EQ(r.port->tx_stats(0).packets, 1u);
        EXPECT_EQ(r.port->tx_stats(0).sw_segments, 28u);
        EXPECT_EQ(r.port->tx_stats(0).tso, 0u);
        txd.complete({got.begin(), got.end()});
        r.port->stop();
        EXPECT_EQ(r.pool.in_use(), 0u);
    }
}

// A frame flagged for TSO that is no TCP segment is dropped and counted, not
// left to the caller forever; a full ring leaves it to the caller.
TEST(TcpSegmentPort, ARefusedSegmentIsDroppedAndAFullRingWaits) {
    Rig r(kOffered, "vhost-user:/fake,ring=16", 1, 2048);
    r.port->start();
    TcpFrameSpec s{.version = 4, .payload = 3000};
    std::vector<uint8_t> udp = tcp_frame(s);
    udp[14 + 9] = 17;
    Packet* bad = to_chain(r.pool, udp, 2048);
    bad->ol_flags = pkt::kTxTcpSeg | pkt::kTxIpv4;
    bad->tso_segsz = 1448;
    ASSERT_EQ(r.port->tx_burst(0, &bad, 1), 1);
    EXPECT_EQ(r.port->tx_stats(0).errors, 1u);
    s.payload = 30000;  // 21 frames: more than a 16-descriptor ring holds
    Packet* big = large_segment(r.pool, s, 1448);
    EXPECT_EQ(r.port->tx_burst(0, &big, 1), 0);
    EXPECT_EQ(r.port->tx_stats(0).errors, 1u);
    PacketPool::free(big);
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

// GUEST_TSO: a 64000-byte segment written by the device over mergeable
// buffers arrives as one chain with kRxGsoTcp4, the MSS and header lengths.
TEST(TcpSegmentPort, ALargeReceivedSegmentCarriesItsMss) {
    EXPECT_NE(
        error_of([] { Rig r(kOffered | kGuestTso, "vhost-user:/fake,guest_tso4=1,mrg_rxbuf=0"); }).find("mrg_rxbuf=1"),
        std::string::npos);
    Rig r(kOffered | kGuestTso, "vhost-user:/fake,ring=256,guest_tso4=1,guest_tso6=1", 1, 2048);
    r.port->start();
    ASSERT_TRUE(virtio::has(r.port->features(), kNetGuestTso4));
    SplitDevice rxd = r.device(0);
    std::deque<DevBuffer> bufs;
    ASSERT_EQ(rxd.take(256, bufs), 256u);
    const TcpFrameSpec s{.version = 4, .payload = 64000};
    const std::vector<uint8_t> f = tcp_frame(s);
    std::vector<uint8_t> stream(12 + f.size());
    virtio::NetHdrMrg h{};
    h.hdr.flags = virtio::kNetHdrFNeedsCsum;
    h.hdr.gso_type = virtio::kNetHdrGsoTcpv4;
    h.hdr.gso_size = 1448;
    h.hdr.csum_start = 34;
    h.hdr.csum_offset = 16;
    std::vector<DevBuffer> done;
    for (size_t at = 0; at < stream.size(); done.push_back(bufs[done.size()])) {
        DevBuffer& b = bufs[done.size()];
        b.written = static_cast<uint32_t>(std::min<size_t>(b.segs[0].len, stream.size() - at));
        at += b.written;
    }
    h.num_buffers = static_cast<uint16_t>(done.size());
    std::memcpy(stream.data(), &h, 12);
    std::copy(f.begin(), f.end(), stream.begin() + 12);
    size_t at = 0;
    for (DevBuffer& b : done) {
        std::memcpy(b.segs[0].va, stream.data() + at, b.written);
        at += b.written;
    }
    rxd.complete(done);
    Packet* out[4];
    ASSERT_EQ(r.port->rx_burst(0, out, 4), 1);
    Packet* p = out[0];
    EXPECT_EQ(p->pkt_len, f.size());
    EXPECT_EQ(p->ol_flags & (pkt::kRxGsoTcp4 | pkt::kRxGsoTcp6 | pkt::kRxL4CsumPartial),
              pkt::kRxGsoTcp4 | pkt::kRxL4CsumPartial);
    EXPECT_EQ(p->tso_segsz, 1448);
    EXPECT_EQ(p->l2_len, 14);
    EXPECT_EQ(p->l3_len, 20);
    EXPECT_EQ(p->l4_len, kTcpHdr);
    EXPECT_EQ(flatten(p), f);
    EXPECT_EQ(r.port->rx_stats(0).tso, 1u);
    Packet* segs[64];
    const uint16_t n = tcp_segment(*p, r.pool, segs, 64, SegmentChecksum::Complete);
    expect_segments(s, segs, n, 1448, false);
    PacketPool::free_bulk(segs, n);
    PacketPool::free(p);
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

// A checksum the kernel left to the device (NEEDS_CSUM: the pseudo-header sum
// in the field) must be finished on the way out of a forwarder:
// tx_checksum_flags() asks for it, the Tx path finishes it.
uint16_t sum16(const uint8_t* d, size_t n, uint64_t s = 0) {
    for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t{d[i]} << 8 | d[i + 1];
    if (n % 2) s += uint32_t{d[n - 1]} << 8;
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(s);
}

// The pseudo-header sum of the L4 part at `l4` (proto, its length, the IP addresses), as NEEDS_CSUM leaves it.
void make_partial(std::vector<uint8_t>& f, uint32_t l2, int version, uint32_t l4, uint32_t field) {
    const uint8_t* ip = f.data() + l2;
    const uint32_t len = static_cast<uint32_t>(f.size()) - l4;
    const uint8_t proto = version == 4 ? ip[9] : ip[6];
    const uint16_t s = sum16(version == 4 ? ip + 12 : ip + 8, version == 4 ? 8 : 32, uint64_t{proto} + len);
    f[l4 + field] = static_cast<uint8_t>(s >> 8);
    f[l4 + field + 1] = static_cast<uint8_t>(s);
}

TEST(TxChecksumFlags, APartialTcpChecksumReceivedIsFinishedOnTheWayOut) {
    Pool p;
    for (const TcpFrameSpec s :
         {TcpFrameSpec{.version = 4, .payload = 1000}, TcpFrameSpec{.version = 6, .payload = 333, .vlan = true}}) {
        std::vector<uint8_t> f = tcp_frame(s);
        const uint32_t l4 = l2_of(s) + l3_of(s);
        make_partial(f, l2_of(s), s.version, l4, 16);
        ASSERT_NE(check_tcp_frame(f), "");  // as received: wrong until finished
        Packet* pk = to_chain(p.pool, f, 512);
        pk->ol_flags = pkt::kRxL4CsumPartial;
        const uint32_t flags = tx_checksum_flags(*pk);
        EXPECT_EQ(flags, pkt::kTxTcpCsum | (s.version == 4 ? pkt::kTxIpv4 : pkt::kTxIpv6));
        EXPECT_EQ(pk->l2_len, l2_of(s));
        EXPECT_EQ(pk->l3_len, l3_of(s));
        EXPECT_EQ(pk->l4_len, kTcpHdr);
        ASSERT_TRUE(complete_checksum(pk, pk->l2_len + pk->l3_len, 16, false));  // what Tx does without CSUM
        EXPECT_EQ(check_tcp_frame(flatten(pk)), "");
        PacketPool::free(pk);
    }
}

TEST(TxChecksumFlags, UdpIsFinishedTooAndOtherFramesAreLeftAlone) {
    Pool p;
    // Ethernet + IPv4 + UDP 9 -> 9 + 100 bytes.
    std::vector<uint8_t> f(14 + 20 + 8 + 100, 0);
    f[12] = 0x08;
    const uint8_t ip[20] = {0x45, 0, 0, 128, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2};
    std::memcpy(f.data() + 14, ip, 20);
    f[34 + 1] = 9;
    f[34 + 3] = 9;
    f[34 + 5] = 108;  // UDP length
    for (size_t i = 42; i < f.size(); i++) f[i] = static_cast<uint8_t>(i * 13);
    make_partial(f, 14, 4, 34, 6);
    Packet* pk = to_chain(p.pool, f, 2048);
    EXPECT_EQ(tx_checksum_flags(*pk), pkt::kTxUdpCsum | pkt::kTxIpv4);
    EXPECT_EQ(pk->l2_len + pk->l3_len, 34);
    EXPECT_EQ(pk->l4_len, 8);
    ASSERT_TRUE(complete_checksum(pk, 34, 6, true));
    const std::vector<uint8_t> out = flatten(pk);
    // The UDP checksum over pseudo-header and datagram verifies to all ones.
    EXPECT_EQ(sum16(out.data() + 34, out.size() - 34, 17 + 108 + sum16(out.data() + 26, 8)), 0xffff);
    PacketPool::free(pk);

    std::vector<uint8_t> arp(60, 0);
    arp[12] = 0x08;
    arp[13] = 0x06;
    Packet* a = to_chain(p.pool, arp, 2048);
    a->l2_len = 7;
    EXPECT_EQ(tx_checksum_flags(*a), 0u);
    EXPECT_EQ(a->l2_len, 7);  // untouched
    PacketPool::free(a);
}

}  // namespace
}  // namespace vireo::test
