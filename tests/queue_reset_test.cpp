// One queue pair reset while the port runs (virtio 1.2 2.6.1, VIRTIO_F_RING_RESET):
// a ring resize with every frame accounted for, a pool swap, recovery of a
// pair whose device broke the rules, the other pair forwarding meanwhile, and
// the clear refusals. QEMU's queue_reset is exercised in the VM suite.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <vector>

#include "support/ctrl_rig.hpp"
#include "support/device_model.hpp"
#include "support/error_of.hpp"
#include "support/port_rig.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

using namespace virtio::feature;

constexpr virtio::Features kOffered = virtio::bit(kVersion1) | virtio::bit(kRingReset) | virtio::bit(kNetMrgRxbuf);

// Frame i: 60 bytes, each the byte i.
Packet* frame(PacketPool& pool, uint8_t i) {
    Packet* p = pool.alloc();
    EXPECT_NE(p, nullptr);
    if (p != nullptr) std::memset(p->append(60), i, 60);
    return p;
}

uint8_t number_of(const DevBuffer& b) { return b.segs.back().va[b.segs.back().len - 1]; }

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// The device (on the pair's current rings) delivers one 60-byte frame of
// `fill` bytes; the port receives it. nullptr when nothing came.
Packet* receive_one(Rig& r, uint16_t ring, uint8_t fill) {
    SplitDevice rxd = r.device(0);
    std::deque<DevBuffer> bufs;
    EXPECT_EQ(rxd.take(ring + 8u, bufs), ring) << "the Rx ring is full";
    if (bufs.empty()) return nullptr;
    put_rx_frame(bufs[0], 0, 1, 60, fill);
    rxd.complete({bufs[0]});
    Packet* in = nullptr;
    return r.port->rx_burst(0, &in, 1) == 1 ? in : nullptr;
}

// 64 -> 256 descriptors: frames the device completed before the reset are
// counted sent; the ones it took and never completed are counted undelivered
// (the reset discards them, 2.6.1); received frames no burst took are counted
// discarded; Rx buffers posted and unused return to the pool; afterwards the
// device sees the new ring and frames flow both ways.
TEST(QueueReset, ARingResizeAccountsForEveryFrame) {
    Rig r(kOffered, "vhost-user:/fake,ring=64,stop_timeout_ms=0");
    r.port->start();
    ASSERT_TRUE(virtio::has(r.port->features(), kRingReset));
    {
        SplitDevice txd = r.device(1);
        for (uint8_t i = 0; i < 10; i++) {
            Packet* p = frame(r.pool, i);
            ASSERT_EQ(r.port->tx_burst(0, &p, 1), 1);
        }
        std::deque<DevBuffer> sent;
        ASSERT_EQ(txd.take(16, sent), 10u);
        txd.complete({sent.begin(), sent.begin() + 7});  // 7 out; 3 still in the device's hands
        EXPECT_EQ(number_of(sent[6]), 6);
    }
    {  // two frames delivered that no rx_burst takes before the reset
        SplitDevice rxd = r.device(0);
        std::deque<DevBuffer> bufs;
        ASSERT_EQ(rxd.take(2, bufs), 2u);
        put_rx_frame(bufs[0], 0, 1, 60, 0x10);
        put_rx_frame(bufs[1], 0, 1, 60, 0x11);
        rxd.complete({bufs[0], bufs[1]});
    }
    ASSERT_EQ(r.pool.in_use(), 64u + 10u);  // the Rx ring's buffers and the frames in flight
    const QueueResetReport rep = r.port->reset_queue_pair(0, {.ring = 256});
    EXPECT_EQ(rep.rx_discarded, 2u) << "taken by the reset, and said so";
    EXPECT_EQ(rep.tx.tx_in_flight, 10u) << "not taken back when the reset began";
    EXPECT_EQ(rep.tx.tx_undelivered, 3u);
    EXPECT_EQ(r.port->tx_stats(0).undelivered, 3u);
    EXPECT_EQ(r.t->queue_resets, (std::vector<uint16_t>{0, 1}));
    EXPECT_EQ(r.t->areas.at(0).size, 256);
    EXPECT_EQ(r.t->areas.at(1).size, 256);
    EXPECT_EQ(r.pool.in_use(), 256u) << "the old ring's buffers back, the new one filled";
    EXPECT_EQ(r.port->queue_pair_resets(), 1u);

    Packet* in = receive_one(r, 256, 0x77);
    ASSERT_NE(in, nullptr);
    EXPECT_EQ(in->data()[0], 0x77);
    SplitDevice txd = r.device(1);
    ASSERT_EQ(r.port->tx_burst(0, &in, 1), 1);
    std::deque<DevBuffer> out;
    ASSERT_EQ(txd.take(8, out), 1u);
    EXPECT_EQ(number_of(out[0]), 0x77);
    txd.complete({out[0]});
    EXPECT_EQ(r.port->tx_stats(0).packets, 11u) << "the counters go on across the reset";
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

// The other pair forwards while one resets: inside the transport's queue
// reset, pair 0's bursts work and pair 1's return 0.
TEST(QueueReset, TheOtherPairKeepsForwarding) {
    CtrlRig r(kOffered | virtio::bit(kNetCtrlVq) | virtio::bit(kNetMq),
              "vhost-user:/fake,ring=64,queues=2,stop_timeout_ms=0", 2);
    r.port->start();
    int during = 0;
    r.t->on_queue_reset = [&](uint16_t) {
        Packet* a = frame(r.pool, 1);
        Packet* b = frame(r.pool, 2);
        EXPECT_EQ(r.port->tx_burst(0, &a, 1), 1) << "pair 0 sends";
        EXPECT_EQ(r.port->tx_burst(1, &b, 1), 0) << "pair 1 is closed";
        PacketPool::free(b);
        during++;
    };
    r.port->reset_queue_pair(1);
    EXPECT_EQ(during, 2);
    EXPECT_EQ(r.t->queue_resets, (std::vector<uint16_t>{2, 3}));
    r.t->on_queue_reset = nullptr;
    Packet* c = frame(r.pool, 3);
    EXPECT_EQ(r.port->tx_burst(1, &c, 1), 1) << "pair 1 open again";
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

// A pool swap: the pair's Rx ring refills from the new pool; the old one gets
// every buffer back.
TEST(QueueReset, APoolSwapRefillsFromTheNewPool) {
    Rig r(kOffered);
    PacketPool other(r.mem, {.count = 256, .cache_size = 0});
    r.port->start();
    ASSERT_EQ(r.pool.in_use(), 64u);
    r.port->reset_queue_pair(0, {.pool = &other});
    EXPECT_EQ(r.pool.in_use(), 0u);
    EXPECT_EQ(other.in_use(), 64u);
    Packet* in = receive_one(r, 64, 0x33);
    ASSERT_NE(in, nullptr);
    EXPECT_EQ(in->pool, &other);
    PacketPool::free(in);
    r.port->stop();
    EXPECT_EQ(other.in_use(), 0u);
}

// A device that breaks the rules on one pair: that pair alone is reset and
// works again; without it the port had to be restarted.
TEST(QueueReset, AFaultedPairIsRecoveredAlone) {
    Rig r(kOffered);
    r.port->start();
    {
        SplitDevice rxd = r.device(0);
        rxd.write_used_raw(0, 9999, 60);  // an id no chain has
        rxd.set_used_idx_raw(1);
        Packet* in = nullptr;
        EXPECT_EQ(r.port->rx_burst(0, &in, 1), 0);
    }
    ASSERT_TRUE(r.port->needs_reset()) << "the untrusted-device checks caught it";
    EXPECT_EQ(r.port->recover_faulted_pairs(), 1u);
    EXPECT_FALSE(r.port->needs_reset());
    EXPECT_EQ(r.port->recover_faulted_pairs(), 0u);
    Packet* in = receive_one(r, 64, 0x44);
    ASSERT_NE(in, nullptr) << "the pair works again";
    PacketPool::free(in);
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

TEST(QueueReset, WhatCannotBeDoneSaysWhyAndWhatInstead) {
    {
        Rig r(kOffered & ~virtio::bit(kRingReset));
        r.port->start();
        const std::string e = error_of([&] { r.port->reset_queue_pair(0); });
        EXPECT_TRUE(has(e, "does not offer VIRTIO_F_RING_RESET")) << e;
        EXPECT_TRUE(has(e, "stop() and start()")) << e;
        r.port->stop();
    }
    {
        Rig r(kOffered, "vhost-user:/fake,ring=64,ring_reset=0");
        r.port->start();
        EXPECT_TRUE(has(error_of([&] { r.port->reset_queue_pair(0); }), "ring_reset=0"));
        r.port->stop();
    }
    {
        auto tr = std::make_unique<FakeTransport>(kOffered);
        tr->queue_reset = false;  // vhost-user, vhost-net, virtio-mmio today
        Rig holder(kOffered);
        NetPort p(std::move(tr), parse_device_string("vhost-user:/fake,ring=64"), holder.mem, holder.pool, 1);
        p.start();
        EXPECT_FALSE(virtio::has(p.features(), kRingReset)) << "not negotiated where it cannot be used";
        EXPECT_TRUE(has(error_of([&] { p.reset_queue_pair(0); }), "no queue_reset field"));
        p.stop();
    }
    {
        Rig r(kOffered);
        EXPECT_TRUE(has(error_of([&] { r.port->reset_queue_pair(0); }), "not started"));
        r.port->start();
        EXPECT_TRUE(has(error_of([&] { r.port->reset_queue_pair(1); }), "no queue pair 1"));
        EXPECT_TRUE(has(error_of([&] { r.port->reset_queue_pair(0, {.ring = 100}); }), "not a power of two"));
        r.t->max_queue = 128;
        const std::string big = error_of([&] { r.port->reset_queue_pair(0, {.ring = 256}); });
        EXPECT_TRUE(has(big, "use ring=128")) << big;
        r.port->set_ring_size(128);
        EXPECT_EQ(r.port->ring_size(), 128);
        EXPECT_EQ(r.t->areas.at(0).size, 128);
        r.port->stop();
        EXPECT_EQ(r.pool.in_use(), 0u);
    }
}

}  // namespace
}  // namespace vireo::test
