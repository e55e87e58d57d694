// NetPort's own logic against a fake transport and the spec-written test
// device: checksum offload both ways, the feature handshake's failure modes,
// and malformed completions. No DPDK needed.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "support/device_model.hpp"
#include "support/error_of.hpp"
#include "support/features_print.hpp"
#include "support/port_rig.hpp"
#include "vireo/base/error.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

using namespace virtio::feature;

constexpr virtio::Features kOffered = virtio::bit(kVersion1) | virtio::bit(kNetCsum) | virtio::bit(kNetGuestCsum) |
                                      virtio::bit(kNetMrgRxbuf) | virtio::bit(kEventIdx);

TEST(NetPort, TxChecksumOffloadReachesTheDeviceHeader) {
    Rig r(kOffered);
    r.port->start();
    ASSERT_TRUE(virtio::has(r.t->accepted, kNetCsum));
    SplitDevice txd = r.device(1);
    Packet* p = r.pool.alloc();
    std::memset(p->append(100), 0, 100);
    p->ol_flags = pkt::kTxTcpCsum | pkt::kTxIpv4;
    p->l2_len = 14;
    p->l3_len = 20;
    ASSERT_EQ(r.port->tx_burst(0, &p, 1), 1);
    std::deque<DevBuffer> got;
    ASSERT_EQ(txd.take(8, got), 1u);
    ASSERT_GE(got[0].segs[0].len, 12u);
    const uint8_t* h = got[0].segs[0].va;
    EXPECT_EQ(h[0], virtio::kNetHdrFNeedsCsum);
    uint16_t start, off;
    std::memcpy(&start, h + 6, 2);
    std::memcpy(&off, h + 8, 2);
    EXPECT_EQ(start, 34);                      // checksum from the L4 header on
    EXPECT_EQ(off, 16);                        // TCP's checksum field
    EXPECT_EQ(got[0].readable_bytes(), 112u);  // header + frame in one descriptor
    EXPECT_EQ(r.port->tx_stats(0).packets, 1u);
    EXPECT_EQ(r.port->tx_stats(0).bytes, 100u);
    txd.complete({got.begin(), got.end()});  // sent: the stop takes it back at once and waits for nothing
    const StopReport rep = r.port->stop();
    EXPECT_EQ(rep.tx_in_flight, 1u);  // not yet taken back when the stop began
    EXPECT_EQ(rep.tx_undelivered, 0u);
    EXPECT_FALSE(rep.timed_out);
    EXPECT_EQ(r.pool.in_use(), 0u);
}

// A device without VIRTIO_NET_F_CSUM (OVS-DPDK by default): the port
// completes the checksum itself, over a chain, from the pseudo-header sum the
// application left in the field, and the header asks the device for nothing.
TEST(NetPort, TxChecksumInSoftwareWhenTheDeviceLacksCsum) {
    Rig r(kOffered & ~virtio::bit(kNetCsum));
    r.port->start();
    ASSERT_FALSE(virtio::has(r.t->accepted, kNetCsum));
    SplitDevice txd = r.device(1);
    // Ethernet + IPv4 + UDP (8) + 301 bytes of payload, split over two segments.
    std::vector<uint8_t> frame(14 + 20 + 8 + 301);
    for (size_t i = 42; i < frame.size(); i++) frame[i] = static_cast<uint8_t>(i * 7 + 3);
    const uint8_t src[4] = {10, 0, 0, 1}, dst[4] = {10, 0, 0, 2};
    std::memcpy(&frame[26], src, 4);
    std::memcpy(&frame[30], dst, 4);
    const uint16_t udp_len = 8 + 301;
    frame[38] = udp_len >> 8;
    frame[39] = udp_len & 0xff;
    // RFC 768 by the book, for the expected value: pseudo header + UDP header + data.
    uint32_t full = (10 << 8) + 0 + (0 << 8) + 1 + (10 << 8) + 0 + (0 << 8) + 2 + 17 + udp_len;
    for (size_t i = 34; i < frame.size(); i += 2)
        full += (uint32_t{frame[i]} << 8) + (i + 1 < frame.size() ? frame[i + 1] : 0);
    while (full >> 16) full = (full & 0xffff) + (full >> 16);
    const uint16_t expect = static_cast<uint16_t>(~full);
    // The application's part: the pseudo-header sum in the field (DPDK's rte_ipv4_phdr_cksum).
    uint32_t ph = (10 << 8) + 1 + (10 << 8) + 2 + 17 + udp_len;
    while (ph >> 16) ph = (ph & 0xffff) + (ph >> 16);
    frame[40] = static_cast<uint8_t>(ph >> 8);
    frame[41] = static_cast<uint8_t>(ph);
    Packet* a = r.pool.alloc();
    Packet* b = r.pool.alloc();
    std::memcpy(a->append(100), frame.data(), 100);
    std::memcpy(b->append(static_cast<uint16_t>(frame.size() - 100)), frame.data() + 100, frame.size() - 100);
    a->next = b;
    a->nb_segs = 2;
    a->pkt_len = static_cast<uint32_t>(frame.size());
    a->ol_flags = pkt::kTxUdpCsum | pkt::kTxIpv4;
    a->l2_len = 14;
    a->l3_len = 20;
    ASSERT_EQ(r.port->tx_burst(0, &a, 1), 1);
    std::deque<DevBuffer> got;
    ASSERT_EQ(txd.take(8, got), 1u);
    const uint8_t* h = got[0].segs[0].va;
    EXPECT_EQ(h[0], 0) << "no NEEDS_CSUM for a device that did not offer CSUM";
    const uint8_t* sent = got[0].segs[0].va + 12;
    EXPECT_EQ((sent[40] << 8) | sent[41], expect);
    txd.complete({got.begin(), got.end()});
    EXPECT_EQ(r.port->stop().tx_undelivered, 0u);
    EXPECT_EQ(r.pool.in_use(), 0u);
}

// The device writes [header][frame] into Rx buffers: DATA_VALID becomes
// kRxL4CsumGood; a mergeable frame over three buffers becomes a chain.
TEST(NetPort, RxChecksumStateAndMergeableChains) {
    Rig r(kOffered);
    r.port->start();
    SplitDevice rxd = r.device(0);
    std::deque<DevBuffer> bufs;
    ASSERT_EQ(rxd.take(64, bufs), 64u);  // the port filled the ring at start
    std::vector<DevBuffer> done;
    put_rx_frame(bufs[0], virtio::kNetHdrFDataValid, 1, 60, 0x11);
    done.push_back(bufs[0]);
    // A 5000-byte frame: every buffer but the last filled completely (5.1.6.4.1):
    // 12 + 2048 in the first, 2060 and 892 in the next two.
    put_rx_frame(bufs[1], 0, 3, 2048, 0x22);
    done.push_back(bufs[1]);
    std::memset(bufs[2].segs[0].va, 0x22, 2060);
    bufs[2].written = 2060;
    done.push_back(bufs[2]);
    std::memset(bufs[3].segs[0].va, 0x22, 892);
    bufs[3].written = 892;
    done.push_back(bufs[3]);
    rxd.complete(done);
    Packet* out[8];
    ASSERT_EQ(r.port->rx_burst(0, out, 8), 2);
    EXPECT_EQ(out[0]->pkt_len, 60u);
    EXPECT_TRUE(out[0]->ol_flags & pkt::kRxL4CsumGood);
    EXPECT_EQ(out[0]->port, 3);
    EXPECT_EQ(out[0]->data()[0], 0x11);
    EXPECT_EQ(out[1]->pkt_len, 5000u);
    EXPECT_EQ(out[1]->nb_segs, 3);
    uint32_t total = 0;
    for (Packet* s = out[1]; s; s = s->next) {
        for (uint16_t i = 0; i < s->data_len; i++) ASSERT_EQ(s->data()[i], 0x22);
        total += s->data_len;
    }
    EXPECT_EQ(total, 5000u);
    PacketPool::free_bulk(out, 2);
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

// A received frame sent back out: its Tx header must read all zero (5.1.6.2),
// whatever the device left in front of the frame. With MRG_RXBUF it is
// rewritten unread (the device wrote num_buffers there); without, it is read
// and written only when not already zero.
TEST(NetPort, ForwardedFramesLeaveWithAZeroHeader) {
    for (bool mrg : {true, false}) {
        SCOPED_TRACE(mrg ? "mrg_rxbuf" : "no mrg_rxbuf");
        Rig r(kOffered, std::string("vhost-user:/fake,ring=64,guest_csum=0,mrg_rxbuf=") + (mrg ? "1" : "0"));
        r.port->start();
        SplitDevice rxd = r.device(0), txd = r.device(1);
        std::deque<DevBuffer> bufs;
        ASSERT_EQ(rxd.take(64, bufs), 64u);
        // Frame 0: a device that leaves garbage in the header; frame 1: an all-zero header.
        put_rx_frame(bufs[0], 0x5a, 7, 60, 0x11);
        put_rx_frame(bufs[1], 0, 0, 60, 0x22);
        rxd.complete({bufs[0], bufs[1]});
        Packet* out[2];
        ASSERT_EQ(r.port->rx_burst(0, out, 2), 2);
        EXPECT_EQ((out[0]->ol_flags & pkt::kRxDeviceHeader) != 0, mrg);
        ASSERT_EQ(r.port->tx_burst(0, out, 2), 2);
        std::deque<DevBuffer> sent;
        ASSERT_EQ(txd.take(8, sent), 2u);
        for (const DevBuffer& b : sent) {
            const uint8_t zero[12] = {};
            EXPECT_EQ(std::memcmp(b.segs[0].va, zero, 12), 0) << "the Tx header is not all zero";
        }
        txd.complete({sent[0], sent[1]});
        r.port->stop();
        EXPECT_EQ(r.pool.in_use(), 0u);
    }
}

// Without GUEST_CSUM the header says nothing but num_buffers, and only a
// buffer filled to its end can continue (5.1.6.4.1): the driver reads the
// header of those alone. A short buffer is a whole frame, whatever its header.
TEST(NetPort, WithoutGuestCsumOnlyFullBuffersConsultNumBuffers) {
    Rig r(kOffered, "vhost-user:/fake,ring=64,guest_csum=0");
    r.port->start();
    SplitDevice rxd = r.device(0);
    std::deque<DevBuffer> bufs;
    ASSERT_EQ(rxd.take(64, bufs), 64u);
    ASSERT_EQ(bufs[0].segs[0].len, 2060u);    // header + the pool's 2048-byte data room
    put_rx_frame(bufs[0], 0, 3, 88, 0x11);    // short: a whole 88-byte frame, the 3 notwithstanding
    put_rx_frame(bufs[1], 0, 2, 2048, 0x22);  // full: continues in the next buffer
    std::memset(bufs[2].segs[0].va, 0x22, 500);
    bufs[2].written = 500;
    put_rx_frame(bufs[3], 0, 1000, 2048, 0x33);  // full, and claims more buffers than the ring holds
    rxd.complete({bufs[0], bufs[1], bufs[2], bufs[3]});
    Packet* out[8];
    ASSERT_EQ(r.port->rx_burst(0, out, 8), 2);
    EXPECT_EQ(out[0]->pkt_len, 88u);
    EXPECT_EQ(out[0]->nb_segs, 1);
    EXPECT_EQ(out[0]->data()[0], 0x11);
    EXPECT_EQ(out[1]->pkt_len, 2048u + 500u);
    EXPECT_EQ(out[1]->nb_segs, 2);
    EXPECT_EQ(out[1]->next->data()[499], 0x22);
    EXPECT_EQ(r.port->rx_stats(0).errors, 1u);
    PacketPool::free_bulk(out, 2);
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

// An empty pool is not an error: each rx_burst that could not refill counts
// one drop (an event, not frames), and the ring fills again once packets return.
TEST(NetPort, EmptyPoolCountsOneDropPerBurstAndRecovers) {
    Rig r(kOffered);
    r.port->start();
    SplitDevice rxd = r.device(0);
    std::deque<DevBuffer> bufs;
    ASSERT_EQ(rxd.take(64, bufs), 64u);
    std::vector<Packet*> hoard(r.pool.size() - r.pool.in_use());
    ASSERT_TRUE(r.pool.alloc_bulk(hoard.data(), static_cast<uint32_t>(hoard.size())));
    std::vector<DevBuffer> done;
    for (int i = 0; i < 20; i++) {
        bufs[i].written = 12 + 60;
        done.push_back(bufs[i]);
    }
    rxd.complete(done);
    Packet* out[32];
    ASSERT_EQ(r.port->rx_burst(0, out, 32), 20);
    PacketPool::free_bulk(out, 20);  // back to the pool, but hoard keeps it short of a refill's worth
    std::vector<Packet*> more(20);
    ASSERT_TRUE(r.pool.alloc_bulk(more.data(), 20));
    for (int i = 0; i < 3; i++) EXPECT_EQ(r.port->rx_burst(0, out, 32), 0);
    EXPECT_EQ(r.port->rx_stats(0).drops, 3u);
    PacketPool::free_bulk(more.data(), 20);
    EXPECT_EQ(r.port->rx_burst(0, out, 32), 0);  // refills the 20
    EXPECT_EQ(r.port->rx_stats(0).drops, 3u);
    std::deque<DevBuffer> again;
    EXPECT_EQ(rxd.take(64, again), 20u);
    PacketPool::free_bulk(hoard.data(), static_cast<uint32_t>(hoard.size()));
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

TEST(NetPort, LyingNumBuffersAndRuntFramesAreCountedNotDelivered) {
    Rig r(kOffered);
    r.port->start();
    SplitDevice rxd = r.device(0);
    std::deque<DevBuffer> bufs;
    rxd.take(64, bufs);
    uint8_t hdr[12] = {};
    uint16_t lie = 1000;  // more buffers than the ring has
    std::memcpy(hdr + 10, &lie, 2);
    std::memcpy(bufs[0].segs[0].va, hdr, 12);
    bufs[0].written = 100;
    bufs[1].written = 5;  // shorter than the header
    rxd.complete({bufs[0], bufs[1]});
    Packet* out[8];
    EXPECT_EQ(r.port->rx_burst(0, out, 8), 0);
    EXPECT_EQ(r.port->rx_stats(0).errors, 2u);
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

// No headroom left for the header: it goes out in a descriptor of its own
// (from the queue's header slots), the frame untouched behind it.
TEST(NetPort, TxWithoutHeadroomUsesASeparateHeaderDescriptor) {
    Rig r(kOffered);
    r.port->start();
    SplitDevice txd = r.device(1);
    Packet* pk[3];
    for (auto& p : pk) {
        p = r.pool.alloc();
        p->data_off = 4;  // the caller used up the headroom
        std::memset(p->append(80), 0x5c, 80);
    }
    ASSERT_EQ(r.port->tx_burst(0, pk, 3), 3);
    std::deque<DevBuffer> got;
    ASSERT_EQ(txd.take(8, got), 3u);
    for (const DevBuffer& b : got) {
        ASSERT_EQ(b.segs.size(), 2u);
        EXPECT_EQ(b.segs[0].len, 12u);
        EXPECT_EQ(b.segs[1].len, 80u);
        EXPECT_EQ(b.segs[1].va[0], 0x5c);
    }
    txd.complete({got.begin(), got.end()});
    EXPECT_EQ(r.port->tx_stats(0).packets, 3u);
    r.port->stop();  // reclaims the chains: packets and header slots
    EXPECT_EQ(r.pool.in_use(), 0u);
}

TEST(NetPort, HandshakeFailuresAreClearErrors) {
    try {
        Rig r(kOffered & ~virtio::bit(kVersion1));
        FAIL() << "a legacy-only device was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("VIRTIO_F_VERSION_1"), std::string::npos) << e.what();
    }
    Rig r(kOffered);
    r.t->refuse_features = true;
    try {
        r.port->start();
        FAIL() << "FEATURES_OK was not re-checked";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("FEATURES_OK"), std::string::npos) << e.what();
    }
    EXPECT_EQ(r.pool.in_use(), 0u);
}

// MQ through the control queue (5.1.6.5.5): after DRIVER_OK the port sends
// VQ_PAIRS_SET and waits for the ack; the control queue sits after the last
// possible pair (index 2 * max pairs). The device here answers from its own
// thread; a second run shows a NAK becoming a clear error.
TEST(NetPort, QueuePairsSetThroughTheControlQueue) {
    for (uint8_t answer : {virtio::kNetCtrlOk, uint8_t{1}}) {
        Rig r(kOffered | virtio::bit(kNetCtrlVq) | virtio::bit(kNetMq), "vhost-user:/fake,ring=64,queues=2", 4);
        std::atomic<bool> stop{false};
        std::atomic<int> commands{0};
        uint16_t seen_pairs = 0;
        uint8_t seen_class = 0xff, seen_cmd = 0xff;
        std::thread device([&] {
            QueueAreas a{};
            while (!stop && !r.t->area(8, &a)) std::this_thread::yield();
            if (stop) return;
            SplitDevice ctrl(r.mem.map(), a.size, a.desc_iova, a.driver_iova, a.device_iova, true);
            std::deque<DevBuffer> got;
            while (!stop) {
                if (ctrl.take(1, got) == 0) {
                    std::this_thread::yield();
                    continue;
                }
                DevBuffer& b = got.front();
                if (b.segs.size() == 3 && b.segs[1].len == 2 && b.segs[2].writable) {
                    seen_class = b.segs[0].va[0];
                    seen_cmd = b.segs[0].va[1];
                    std::memcpy(&seen_pairs, b.segs[1].va, 2);
                    b.segs[2].va[0] = answer;
                    b.written = 1;
                }
                ctrl.complete({b});
                got.pop_front();
                commands++;
            }
        });
        std::string err;
        try {
            r.port->start();
        } catch (const Error& e) {
            err = e.what();
        }
        stop = true;
        device.join();
        EXPECT_EQ(commands.load(), 1);
        EXPECT_EQ(seen_class, virtio::kNetCtrlClassMq);
        EXPECT_EQ(seen_cmd, virtio::kNetCtrlMqVqPairsSet);
        EXPECT_EQ(seen_pairs, 2);
        if (answer == virtio::kNetCtrlOk) {
            EXPECT_EQ(err, "");
            EXPECT_TRUE(virtio::has(r.t->accepted, kNetCtrlVq));
            r.port->stop();
        } else {
            EXPECT_NE(err.find("the device refused VQ_PAIRS_SET(2)"), std::string::npos) << err;
        }
        EXPECT_EQ(r.pool.in_use(), 0u);
    }
}

TEST(NetPort, SwitchedOffFeaturesAreNotNegotiated) {
    Rig r(kOffered, "vhost-user:/fake,ring=64,csum=0,mrg_rxbuf=0,event_idx=0");
    r.port->start();
    EXPECT_FALSE(virtio::has(r.t->accepted, kNetCsum));
    EXPECT_FALSE(virtio::has(r.t->accepted, kNetMrgRxbuf));
    EXPECT_FALSE(virtio::has(r.t->accepted, kEventIdx));
    EXPECT_TRUE(virtio::has(r.t->accepted, kNetGuestCsum));
    r.port->stop();
}

// A device offering virtio 1.4's bits past 63 (RSS_CONTEXT, the UDP tunnel GSO
// four): the port reads and reports them, accepts none (vireo implements none
// of them), and frames flow as without them.
TEST(NetPort, FeaturesPast63AreReadReportedAndLeftOff) {
    const virtio::Features high = virtio::bit(kNetRssContext) | virtio::bit(kNetGuestUdpTunnelGso) |
                                  virtio::bit(kNetGuestUdpTunnelGsoCsum) | virtio::bit(kNetHostUdpTunnelGso) |
                                  virtio::bit(kNetHostUdpTunnelGsoCsum);
    Rig r(kOffered | high);
    r.port->start();
    EXPECT_EQ(r.port->device_features(), kOffered | high);
    EXPECT_EQ(hex(r.port->device_features()).substr(0, 5), "0x1f_");
    EXPECT_TRUE((r.t->accepted & high).empty()) << hex(r.t->accepted);
    EXPECT_EQ(r.port->features(), r.t->accepted);
    EXPECT_TRUE(r.port->features().fits_u64());
    SplitDevice txd = r.device(1);
    Packet* p = r.pool.alloc();
    ASSERT_NE(p, nullptr);
    std::memset(p->append(60), 0x5a, 60);
    ASSERT_EQ(r.port->tx_burst(0, &p, 1), 1);
    std::deque<DevBuffer> sent;
    ASSERT_EQ(txd.take(8, sent), 1u);
    EXPECT_EQ(sent[0].readable_bytes(), 72u);  // the 12-byte header and the frame
    txd.complete({sent[0]});
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

// The DMA decision (decide_dma) is made once when the port opens and again
// only when the device's offer changes: here a back end that came back
// without VIRTIO_F_ACCESS_PLATFORM, whose descriptors could no longer carry
// the VA memory's addresses: the start fails loudly instead of handing them out.
TEST(NetPort, DecidesItsDmaAgainOnlyWhenTheDeviceOffersSomethingElse) {
    DmaMemoryOptions o;
    o.mode = IovaMode::VA;
    o.region_size = 16 << 20;
    o.region.backing = DmaBacking::Memfd4K;
    DmaMemory mem(o);
    PacketPool pool(mem, {.count = 512, .cache_size = 0});
    const virtio::Features with33 = kOffered | virtio::bit(kAccessPlatform);
    auto tr = std::make_unique<FakeTransport>(with33);
    FakeTransport* t = tr.get();
    NetPort port(std::move(tr), parse_device_string("vhost-user:/fake,ring=64"), mem, pool, 0);
    EXPECT_EQ(port.dma_decisions(), 1u);
    EXPECT_EQ(port.dma_plan().mode, IovaMode::VA);
    port.start();
    EXPECT_TRUE(virtio::has(t->accepted, kAccessPlatform));
    port.stop();
    port.start();  // the same offer: the same plan, not decided again
    EXPECT_EQ(port.dma_decisions(), 1u);
    port.stop();
    t->set_offered(kOffered);
    const std::string e = error_of([&] { port.start(); });
    EXPECT_NE(e.find("does not offer VIRTIO_F_ACCESS_PLATFORM"), std::string::npos) << e;
    EXPECT_NE(e.find("--iova-mode=pa"), std::string::npos) << e;
    EXPECT_FALSE(port.ready());
    t->set_offered(with33);  // back with bit 33: the plan made for this offer holds again
    port.start();
    EXPECT_EQ(port.dma_decisions(), 1u);
    EXPECT_TRUE(port.ready());
    EXPECT_TRUE(virtio::has(t->accepted, kAccessPlatform));
    port.stop();
}

}  // namespace
}  // namespace vireo::test
