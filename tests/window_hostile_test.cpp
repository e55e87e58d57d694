// A device in window mode may write anything anywhere in its window, at any
// time: that is the threat model of dma=window (docs/dma-window.md). These
// cases play such a device with the spec-written test device: besides
// following the ring protocol, it overwrites every byte of the window that is
// not a ring (the bounce slots and whatever lies between them) before it takes
// buffers, after it completes them and before vireo looks at them. vireo must
// not follow anything it finds there: no crash (ASan runs this suite too),
// only in-bounds frames delivered, every slot and every application packet back
// after stop().
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <vector>

#include "support/port_rig.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

using namespace virtio::feature;

constexpr uint16_t kRing = 64;

// The ring areas of one queue, as VA ranges the scribbler leaves alone.
struct Range {
    const uint8_t* begin;
    size_t len;
    bool holds(const uint8_t* p) const { return p >= begin && p < begin + len; }
};

void add_ring(std::vector<Range>& keep, const IovaMap& map, const QueueAreas& a, bool packed) {
    const size_t desc = 16u * a.size;  // split and packed descriptors are both 16 bytes
    const size_t drv = packed ? 4 : 6 + 2u * a.size;
    const size_t dev = packed ? 4 : 6 + 8u * a.size;
    keep.push_back({static_cast<const uint8_t*>(map.va(a.desc_iova, desc)), desc});
    keep.push_back({static_cast<const uint8_t*>(map.va(a.driver_iova, drv)), drv});
    keep.push_back({static_cast<const uint8_t*>(map.va(a.device_iova, dev)), dev});
}

// Writes `byte` over every byte of the window outside `keep`: each slot's
// buffer and anything vireo might have put next to it.
void scribble(const DmaMemory& window, const std::vector<Range>& keep, uint8_t byte) {
    for (size_t i = 0; i < window.region_count(); i++) {
        uint8_t* p = window.region(i).va();
        const size_t len = window.region(i).length();
        for (size_t o = 0; o < len; o++) {
            bool ring = false;
            for (const Range& r : keep) ring = ring || r.holds(p + o);
            if (!ring) p[o] = byte;
        }
    }
}

template <class Device>
Device device_on(const IovaMap& map, const QueueAreas& a) {
    return Device(map, a.size, a.desc_iova, a.driver_iova, a.device_iova, false);
}

template <class Device>
void run_hostile_window(bool packed) {
    const virtio::Features offered = virtio::bit(kVersion1) | (packed ? virtio::bit(kRingPacked) : virtio::Features{});
    Rig r(offered, "vhost-user:/fake,ring=" + std::to_string(kRing) + ",dma=window" + (packed ? ",packed=1" : ""));
    r.port->start();
    ASSERT_EQ(virtio::has(r.t->accepted, kRingPacked), packed);
    const DmaMemory* w = r.port->window();
    ASSERT_NE(w, nullptr);
    std::vector<Range> keep;
    add_ring(keep, w->map(), r.t->areas.at(0), packed);
    add_ring(keep, w->map(), r.t->areas.at(1), packed);
    Device rxd = device_on<Device>(w->map(), r.t->areas.at(0));
    Device txd = device_on<Device>(w->map(), r.t->areas.at(1));

    // Rx: the device fills buffers, then rewrites the whole window (headers,
    // frames, and whatever else it finds) before vireo polls.
    scribble(*w, keep, 0xa5);
    std::deque<DevBuffer> held;
    ASSERT_EQ(rxd.take(kRing, held), size_t{kRing});
    std::vector<DevBuffer> done(held.begin(), held.begin() + 32);
    for (DevBuffer& b : done) {
        ASSERT_GE(b.writable_bytes(), 12u + 60u);
        b.written = 12 + 60;
    }
    rxd.complete(done);
    scribble(*w, keep, 0x5a);
    Packet* got[64];
    uint16_t n = r.port->rx_burst(0, got, 64);
    EXPECT_LE(n, 32);
    for (uint16_t i = 0; i < n; i++) {
        EXPECT_EQ(got[i]->pkt_len, 60u);
        EXPECT_EQ(got[i]->next, nullptr);
        EXPECT_EQ(got[i]->data()[0], 0x5a);  // the bytes the device left there, copied out
    }
    PacketPool::free_bulk(got, n);

    // Tx: vireo copies frames into slots; the device rewrites the window,
    // completes them, rewrites it again; vireo reclaims the slots.
    for (int round = 0; round < 3; round++) {
        Packet* out[32];
        for (Packet*& p : out) {
            p = r.pool.alloc();
            ASSERT_NE(p, nullptr);
            std::memset(p->append(60), round, 60);
        }
        const uint16_t sent = r.port->tx_burst(0, out, 32);
        PacketPool::free_bulk(out + sent, 32u - sent);
        std::deque<DevBuffer> txs;
        txd.take(kRing, txs);
        scribble(*w, keep, static_cast<uint8_t>(0xc3 + round));
        std::vector<DevBuffer> c(txs.begin(), txs.end());
        if (!c.empty()) txd.complete(c);
        scribble(*w, keep, 0xff);
    }
    n = r.port->rx_burst(0, got, 64);  // nothing new: the device completed no more Rx
    EXPECT_EQ(n, 0);
    EXPECT_FALSE(rxd.bad());
    EXPECT_FALSE(txd.bad());

    r.port->stop();  // every slot comes back from the device and its rings
    EXPECT_EQ(r.pool.in_use(), 0u) << "application packets leaked or freed twice";
}

TEST(WindowHostile, ADeviceRewritingItsWholeWindowCannotRedirectVireoSplit) { run_hostile_window<SplitDevice>(false); }
TEST(WindowHostile, ADeviceRewritingItsWholeWindowCannotRedirectVireoPacked) { run_hostile_window<PackedDevice>(true); }

}  // namespace
}  // namespace vireo::test
