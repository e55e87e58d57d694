// NetPort's control-queue features against a fake transport and the test
// device (5.1.6.5): receive filters, the MAC, VLAN filters (kept and sent
// again after every bring-up), announcements (a RARP on Tx queue 0, then
// ANNOUNCE_ACK) and the link speed (5.1.4.2). QEMU's device is the peer in
// the VM suite (tests/vm/guest-ctrl.sh).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "support/ctrl_rig.hpp"
#include "support/error_of.hpp"
#include "vireo/base/error.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::test {
namespace {

using namespace virtio::feature;

constexpr virtio::Features kCtrlAll = virtio::bit(kVersion1) | virtio::bit(kNetMrgRxbuf) | virtio::bit(kNetCtrlVq) |
                                      virtio::bit(kNetCtrlRx) | virtio::bit(kNetCtrlMacAddr) |
                                      virtio::bit(kNetCtrlVlan) | virtio::bit(kNetGuestAnnounce) |
                                      virtio::bit(kNetSpeedDuplex);

TEST(NetPortCtrl, FiltersSetBeforeStartGoOutAfterDriverOkAndAgainAfterARestart) {
    CtrlRig r(kCtrlAll, "vhost-user:/fake,ring=64,vlan_filter=1");
    r.port->set_promiscuous(false);
    r.port->set_all_multicast(true);
    r.port->set_mac({0x02, 0x11, 0x22, 0x33, 0x44, 0x55});
    r.port->vlan_filter_add(100);
    r.port->vlan_filter_add(7);
    EXPECT_TRUE(r.commands().empty());  // not started: kept
    r.port->start();
    const std::vector<Command> first = r.commands();
    ASSERT_EQ(first.size(), 5u);
    EXPECT_EQ(first[0].cls, virtio::kNetCtrlClassRx);
    EXPECT_EQ(first[0].cmd, virtio::kNetCtrlRxPromisc);
    EXPECT_EQ(first[0].data, std::vector<uint8_t>{0});
    EXPECT_EQ(first[1].cmd, virtio::kNetCtrlRxAllmulti);
    EXPECT_EQ(first[1].data, std::vector<uint8_t>{1});
    EXPECT_EQ(first[2].cls, virtio::kNetCtrlClassMac);
    EXPECT_EQ(first[2].cmd, virtio::kNetCtrlMacAddrSet);
    EXPECT_EQ(first[2].data, (std::vector<uint8_t>{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}));
    EXPECT_EQ(first[3].cls, virtio::kNetCtrlClassVlan);
    EXPECT_EQ(first[3].data, (std::vector<uint8_t>{7, 0}));  // le16, in order
    EXPECT_EQ(first[4].data, (std::vector<uint8_t>{100, 0}));
    EXPECT_EQ(r.port->mac()[1], 0x11);
    // Live: straight to the device.
    r.port->vlan_filter_remove(7);
    ASSERT_EQ(r.commands().size(), 6u);
    EXPECT_EQ(r.commands()[5].cmd, virtio::kNetCtrlVlanDel);
    // A restart resets the device: everything goes out again, without VLAN 7.
    r.port->stop();
    r.port->start();
    const std::vector<Command> again = r.commands();
    ASSERT_EQ(again.size(), 10u);
    EXPECT_EQ(again[9].data, (std::vector<uint8_t>{100, 0}));
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

TEST(NetPortCtrl, DeviceStringFiltersAreCheckedAtOpenAndSentAtStart) {
    CtrlRig r(kCtrlAll, "vhost-user:/fake,ring=64,promisc=0,allmulti=1,vlans=5+4095");
    EXPECT_TRUE(virtio::has(r.port->features(), kNetCtrlVlan));  // vlans= asks for it
    r.port->start();
    const std::vector<Command> c = r.commands();
    ASSERT_EQ(c.size(), 4u);
    EXPECT_EQ(c[0].data, std::vector<uint8_t>{0});
    EXPECT_EQ(c[1].data, std::vector<uint8_t>{1});
    EXPECT_EQ(c[2].data, (std::vector<uint8_t>{5, 0}));
    EXPECT_EQ(c[3].data, (std::vector<uint8_t>{0xff, 0x0f}));
    r.port->stop();
    const std::string range = error_of([] { parse_device_string("pci:0000:00:10.0,vlans=7+4096"); });
    EXPECT_NE(range.find("vlans=4096"), std::string::npos) << range;
    auto tr = std::make_unique<FakeTransport>(kCtrlAll & ~virtio::bit(kNetCtrlRx));
    const std::string missing = error_of(
        [&] { NetPort p(std::move(tr), parse_device_string("vhost-user:/fake,ring=64,promisc=1"), r.mem, r.pool, 1); });
    EXPECT_NE(missing.find("VIRTIO_NET_F_CTRL_RX"), std::string::npos) << missing;
}

TEST(NetPortCtrl, AMissingFeatureIsAnErrorThatSaysWhy) {
    {
        CtrlRig r(kCtrlAll);  // vlan_filter not asked for
        const std::string e = error_of([&] { r.port->vlan_filter_add(5); });
        EXPECT_NE(e.find("VIRTIO_NET_F_CTRL_VLAN"), std::string::npos) << e;
        EXPECT_NE(e.find("vlan_filter=1"), std::string::npos) << e;
        const std::string bad = error_of([&] { r.port->set_mac({0x01, 0, 0, 0, 0, 1}); });
        EXPECT_NE(bad.find("multicast"), std::string::npos) << bad;
    }
    {
        CtrlRig r(kCtrlAll & ~virtio::bit(kNetCtrlRx));
        const std::string e = error_of([&] { r.port->set_promiscuous(true); });
        EXPECT_NE(e.find("VIRTIO_NET_F_CTRL_RX"), std::string::npos) << e;
        EXPECT_NE(e.find("does not offer it"), std::string::npos) << e;
    }
    {
        auto tr = std::make_unique<FakeTransport>(kCtrlAll);
        tr->control_queue_processed = false;  // vhost-user
        CtrlRig holder(kCtrlAll);
        NetPort p(std::move(tr), parse_device_string("vhost-user:/fake,ring=64"), holder.mem, holder.pool, 1);
        const std::string e = error_of([&] { p.set_all_multicast(true); });
        EXPECT_NE(e.find("vhost-user"), std::string::npos) << e;
    }
}

constexpr virtio::Features kRxOffloadsOffered = kCtrlAll | virtio::bit(kNetGuestCsum) | virtio::bit(kNetGuestTso4) |
                                                virtio::bit(kNetGuestTso6) | virtio::bit(kNetCtrlGuestOffloads);

uint64_t le64_of(const Command& c) {
    uint64_t v = 0;
    EXPECT_EQ(c.data.size(), 8u);
    std::memcpy(&v, c.data.data(), std::min<size_t>(8, c.data.size()));
    return v;
}

// CTRL_GUEST_OFFLOADS (5.1.6.5.6.1): class 5, command 0, le64 with a bit per
// offload numbered as its feature. Every negotiated offload starts on; a
// choice made before start goes out after DRIVER_OK and again after a restart
// (a reset turns them all back on).
TEST(NetPortCtrl, RxOffloadsSwitchThroughTheControlQueue) {
    CtrlRig r(kRxOffloadsOffered, "vhost-user:/fake,ring=64,guest_tso4=1,guest_tso6=1");
    ASSERT_TRUE(virtio::has(r.port->features(), kNetCtrlGuestOffloads));
    EXPECT_EQ(r.port->rx_offloads(), (RxOffloads{true, true, true}));
    r.port->set_rx_offloads({true, false, true});
    EXPECT_TRUE(r.commands().empty());  // not started: kept
    EXPECT_EQ(r.port->rx_offloads(), (RxOffloads{true, false, true}));
    r.port->start();
    ASSERT_EQ(r.commands().size(), 1u);
    EXPECT_EQ(r.commands()[0].cls, virtio::kNetCtrlClassGuestOffloads);
    EXPECT_EQ(r.commands()[0].cmd, virtio::kNetCtrlGuestOffloadsSet);
    EXPECT_EQ(le64_of(r.commands()[0]), (1u << kNetGuestCsum) | (1u << kNetGuestTso6));
    r.port->set_rx_offloads({});  // live: all off
    ASSERT_EQ(r.commands().size(), 2u);
    EXPECT_EQ(le64_of(r.commands()[1]), 0u);
    r.port->stop();
    r.port->start();
    ASSERT_EQ(r.commands().size(), 3u);
    EXPECT_EQ(le64_of(r.commands()[2]), 0u) << "the reset turned them on: sent again";
    r.port->stop();
}

TEST(NetPortCtrl, RxOffloadsRefuseWhatWasNotNegotiated) {
    {
        CtrlRig r(kRxOffloadsOffered);  // guest_tso4/6 not asked for
        EXPECT_EQ(r.port->rx_offloads(), (RxOffloads{true, false, false}));
        const std::string e = error_of([&] { r.port->set_rx_offloads({true, true, false}); });
        EXPECT_NE(e.find("guest_tso4 was not negotiated"), std::string::npos) << e;
        r.port->start();
        r.port->set_rx_offloads({false, false, false});  // what was negotiated can go off
        EXPECT_EQ(le64_of(r.commands().at(0)), 0u);
        r.port->stop();
    }
    {
        CtrlRig r(kRxOffloadsOffered, "vhost-user:/fake,ring=64,guest_tso4=1");
        const std::string e = error_of([&] { r.port->set_rx_offloads({false, true, false}); });
        EXPECT_NE(e.find("need csum on"), std::string::npos) << e;
    }
    {
        CtrlRig r(kRxOffloadsOffered & ~virtio::bit(kNetCtrlGuestOffloads));
        const std::string e = error_of([&] { r.port->set_rx_offloads({false, false, false}); });
        EXPECT_NE(e.find("VIRTIO_NET_F_CTRL_GUEST_OFFLOADS"), std::string::npos) << e;
        EXPECT_NE(e.find("does not offer it"), std::string::npos) << e;
    }
    {
        CtrlRig r(kRxOffloadsOffered, "vhost-user:/fake,ring=64,ctrl_guest_offloads=0");
        const std::string e = error_of([&] { r.port->set_rx_offloads({false, false, false}); });
        EXPECT_NE(e.find("ctrl_guest_offloads"), std::string::npos) << e;
    }
}

// Each frame's header says what the device did to it: frames delivered before
// the switch keep DATA_VALID, frames the device writes after it carry none.
TEST(NetPortCtrl, RxMetadataFollowsTheSwitchFrameByFrame) {
    CtrlRig r(kRxOffloadsOffered);
    r.port->start();
    SplitDevice rxd = r.queue(0);
    std::deque<DevBuffer> bufs;
    ASSERT_EQ(rxd.take(4, bufs), 4u);
    put_rx_frame(bufs[0], virtio::kNetHdrFDataValid, 1, 60, 0x42);  // validated while csum was on
    rxd.complete({bufs[0]});
    r.port->set_rx_offloads({false, false, false});
    put_rx_frame(bufs[1], 0, 1, 60, 0x42);  // the device no longer validates
    rxd.complete({bufs[1]});
    Packet* out[2];
    ASSERT_EQ(r.port->rx_burst(0, out, 2), 2);
    EXPECT_TRUE(out[0]->ol_flags & pkt::kRxL4CsumGood);
    EXPECT_FALSE(out[1]->ol_flags & (pkt::kRxL4CsumGood | pkt::kRxL4CsumPartial));
    PacketPool::free(out[0]);
    PacketPool::free(out[1]);
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

// Gathers what the device read from one Tx buffer, past the 12-byte
// virtio-net header (VERSION_1: num_buffers too).
std::vector<uint8_t> frame_of(const DevBuffer& b) {
    std::vector<uint8_t> bytes;
    for (const DevSeg& s : b.segs) bytes.insert(bytes.end(), s.va, s.va + s.len);
    return std::vector<uint8_t>(bytes.begin() + sizeof(virtio::NetHdrMrg), bytes.end());
}

TEST(NetPortCtrl, AnAnnouncementSendsARarpForTheMacAndAcks) {
    CtrlRig r(kCtrlAll);
    r.port->start();
    ASSERT_TRUE(virtio::has(r.port->features(), kNetGuestAnnounce));
    QueueAreas a{};
    ASSERT_TRUE(r.t->area(1, &a));
    SplitDevice tx(r.mem.map(), a.size, a.desc_iova, a.driver_iova, a.device_iova, true);
    EXPECT_FALSE(r.port->poll_config_change());  // nothing happened
    r.t->net_status = virtio::kNetStatusLinkUp | virtio::kNetStatusAnnounce;
    r.t->config_changed = true;
    EXPECT_TRUE(r.port->poll_config_change());
    EXPECT_EQ(r.port->announcements(), 1u);
    std::deque<DevBuffer> got;
    ASSERT_EQ(tx.take(4, got), 1u);
    const std::vector<uint8_t> f = frame_of(got.front());
    ASSERT_GE(f.size(), 60u);
    EXPECT_EQ(std::vector<uint8_t>(f.begin(), f.begin() + 6), std::vector<uint8_t>(6, 0xff));
    EXPECT_EQ(0, std::memcmp(&f[6], r.port->mac().data(), 6));
    EXPECT_EQ(f[12], 0x80);  // RARP
    EXPECT_EQ(f[13], 0x35);
    EXPECT_EQ(f[21], 3);  // reverse request
    EXPECT_EQ(0, std::memcmp(&f[32], r.port->mac().data(), 6));
    tx.complete({got.front()});
    const std::vector<Command> c = r.commands();
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].cls, virtio::kNetCtrlClassAnnounce);
    EXPECT_EQ(c[0].cmd, virtio::kNetCtrlAnnounceAck);
    EXPECT_TRUE(c[0].data.empty());
    EXPECT_EQ(c[0].descriptors, 2);  // no zero-length data descriptor (QEMU would mark the device broken)
    EXPECT_EQ(r.port->tx_stats(0).packets, 1u);
    // A plain link change is not an announcement.
    r.t->net_status = virtio::kNetStatusLinkUp;
    r.t->config_changed = true;
    EXPECT_TRUE(r.port->poll_config_change());
    EXPECT_EQ(r.port->announcements(), 1u);
    r.port->stop();
    EXPECT_EQ(r.pool.in_use(), 0u);
}

TEST(NetPortCtrl, LinkSpeedAndDuplexAsTheDeviceSays) {
    CtrlRig r(kCtrlAll);
    r.port->start();
    EXPECT_EQ(to_string(r.port->link_speed()), "speed unknown");
    r.t->speed_mbps = 25000;
    r.t->duplex = 1;
    EXPECT_EQ(r.port->link_speed().mbps, 25000u);
    EXPECT_EQ(to_string(r.port->link_speed()), "25000 Mbit/s full-duplex");
    r.t->speed_mbps = 0x80000000u;  // above INT_MAX: unknown (5.1.4.2)
    r.t->duplex = 0;
    EXPECT_EQ(r.port->link_speed().mbps, 0u);
    EXPECT_EQ(r.port->link_speed().duplex, LinkSpeed::Duplex::Half);
    r.port->stop();
    CtrlRig plain(kCtrlAll & ~virtio::bit(kNetSpeedDuplex));
    plain.t->speed_mbps = 1000;
    plain.port->start();
    EXPECT_EQ(plain.port->link_speed().mbps, 0u);  // not negotiated: not believed
    plain.port->stop();
}

}  // namespace
}  // namespace vireo::test
