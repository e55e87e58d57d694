// NetPort: what goes through the control queue besides queue pairs (virtio
// 1.2 5.1.6.5): receive filters, the MAC address, VLAN filters and
// announcements after a live migration; and the link speed (5.1.4.2).
#include <cstring>

#include "datapath/queue_pair.hpp"
#include "net/net_port_filters.hpp"
#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

using namespace virtio::feature;

std::string to_string(const LinkSpeed& s) {
    if (s.mbps == 0) return "speed unknown";
    const char* d = s.duplex == LinkSpeed::Duplex::Full   ? " full-duplex"
                    : s.duplex == LinkSpeed::Duplex::Half ? " half-duplex"
                                                          : "";
    return std::to_string(s.mbps) + " Mbit/s" + d;
}

LinkSpeed NetPort::link_speed() {
    LinkSpeed s;
    if (!virtio::has(features_, kNetSpeedDuplex)) return s;
    const NetConfig c = transport_->net_config();
    if (c.speed_mbps <= 0x7fffffff) s.mbps = c.speed_mbps;  // 5.1.4.2: anything above INT_MAX is unknown
    if (c.duplex == 0) s.duplex = LinkSpeed::Duplex::Half;
    if (c.duplex == 1) s.duplex = LinkSpeed::Duplex::Full;
    return s;
}

void NetPort::require_ctrl(unsigned feature, const char* what) const {
    static const struct {
        unsigned bit;
        const char* name;
        const char* key;
    } names[] = {{kNetCtrlRx, "VIRTIO_NET_F_CTRL_RX", "ctrl_rx"},
                 {kNetCtrlMacAddr, "VIRTIO_NET_F_CTRL_MAC_ADDR", "ctrl_mac_addr"},
                 {kNetCtrlVlan, "VIRTIO_NET_F_CTRL_VLAN", "vlan_filter=1"},
                 {kNetRss, "VIRTIO_NET_F_RSS", "rss"},
                 {kNetHashReport, "VIRTIO_NET_F_HASH_REPORT", "hash_report=1"},
                 {kNetCtrlGuestOffloads, "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS", "ctrl_guest_offloads"}};
    const char* name = "?";
    const char* key = "?";
    for (const auto& n : names)
        if (n.bit == feature) name = n.name, key = n.key;
    if (!config_.control_queue_processed)
        throw Error(describe() + ": " + what + " needs " + name +
                    " and a control queue, which no vhost-user back end processes (QEMU's device model does: use "
                    "a virtio-net-pci device)");
    // Before start() the features are the ones negotiate() chose at open.
    if (!virtio::has(features_, feature))
        throw Error(describe() + ": " + what + " needs " + name + ", which was not negotiated: the device " +
                    (virtio::has(device_features_, feature)
                         ? "offers it but the device string did not ask (" + std::string(key) + ")"
                         : std::string("does not offer it")));
}

void NetPort::ctrl_command(uint8_t cls, uint8_t cmd, const void* data, uint16_t len, const std::string& what) {
    if (ctrl_ == nullptr || !driver_ok_) return;  // kept for apply_filters() at start
    try {
        ctrl_->command(cls, cmd, data, len, what);
    } catch (const Error& e) {
        throw Error(describe() + ": " + e.what());
    }
}

void NetPort::set_promiscuous(bool on) {
    require_ctrl(kNetCtrlRx, "set_promiscuous");
    const uint8_t v = on;
    ctrl_command(virtio::kNetCtrlClassRx, virtio::kNetCtrlRxPromisc, &v, 1, on ? "PROMISC on" : "PROMISC off");
    filters_->promiscuous = on;
}

void NetPort::set_all_multicast(bool on) {
    require_ctrl(kNetCtrlRx, "set_all_multicast");
    const uint8_t v = on;
    ctrl_command(virtio::kNetCtrlClassRx, virtio::kNetCtrlRxAllmulti, &v, 1, on ? "ALLMULTI on" : "ALLMULTI off");
    filters_->all_multicast = on;
}

void NetPort::set_mac(const std::array<uint8_t, 6>& mac) {
    require_ctrl(kNetCtrlMacAddr, "set_mac");
    if (mac[0] & 1) throw Error(describe() + ": set_mac: a multicast address cannot be the port's MAC");
    ctrl_command(virtio::kNetCtrlClassMac, virtio::kNetCtrlMacAddrSet, mac.data(), 6, "MAC_ADDR_SET");
    filters_->mac = mac;
    mac_ = mac;
}

void NetPort::vlan_filter_add(uint16_t vid) {
    require_ctrl(kNetCtrlVlan, "vlan_filter_add");
    if (vid > 4095) throw Error(describe() + ": VLAN id " + std::to_string(vid) + " is not 0..4095");
    const uint16_t le = vid;
    ctrl_command(virtio::kNetCtrlClassVlan, virtio::kNetCtrlVlanAdd, &le, 2, "VLAN_ADD " + std::to_string(vid));
    filters_->vlans.insert(vid);
}

void NetPort::vlan_filter_remove(uint16_t vid) {
    require_ctrl(kNetCtrlVlan, "vlan_filter_remove");
    if (vid > 4095) throw Error(describe() + ": VLAN id " + std::to_string(vid) + " is not 0..4095");
    const uint16_t le = vid;
    ctrl_command(virtio::kNetCtrlClassVlan, virtio::kNetCtrlVlanDel, &le, 2, "VLAN_DEL " + std::to_string(vid));
    filters_->vlans.erase(vid);
}

RxOffloads NetPort::rx_offloads() const {
    if (filters_->rx_offloads) return *filters_->rx_offloads;
    return {virtio::has(features_, kNetGuestCsum), virtio::has(features_, kNetGuestTso4),
            virtio::has(features_, kNetGuestTso6)};
}

void NetPort::set_rx_offloads(const RxOffloads& o) {
    require_ctrl(kNetCtrlGuestOffloads, "set_rx_offloads");
    const struct {
        bool on;
        unsigned bit;
        const char* key;
    } asked[] = {{o.csum, kNetGuestCsum, "guest_csum"},
                 {o.tso4, kNetGuestTso4, "guest_tso4"},
                 {o.tso6, kNetGuestTso6, "guest_tso6"}};
    uint64_t offloads = 0;  // 5.1.6.5.6.1: a bit per offload, numbered as its feature
    for (const auto& a : asked) {
        if (!a.on) continue;
        if (!virtio::has(features_, a.bit))
            throw Error(describe() + ": set_rx_offloads: " + a.key + " was not negotiated (" + a.key +
                        "=1 in the device string, if the device offers it): an offload the features did not agree "
                        "cannot be switched on");
        offloads |= uint64_t{1} << a.bit;
    }
    if ((o.tso4 || o.tso6) && !o.csum)
        throw Error(describe() +
                    ": set_rx_offloads: large segments (tso4/tso6) need csum on: a segment's checksum is left to "
                    "the receiver (virtio 1.2 5.1.3.1)");
    std::string what = "GUEST_OFFLOADS_SET";
    for (const auto& a : asked) what += std::string(" ") + a.key + (a.on ? "=1" : "=0");
    ctrl_command(virtio::kNetCtrlClassGuestOffloads, virtio::kNetCtrlGuestOffloadsSet, &offloads, sizeof offloads,
                 what);
    filters_->rx_offloads = o;
}

// The device string's filters, checked at open (a missing feature is an
// error now, not at start) and kept for start().
void NetPort::filters_from_spec() {
    if (spec_.promiscuous) set_promiscuous(*spec_.promiscuous);
    if (spec_.all_multicast) set_all_multicast(*spec_.all_multicast);
    // A device that processes the control queue is told the MAC; over vhost-user and vhost-net the transport
    // publishes it itself.
    if (spec_.mac_given && config_.control_queue_processed) set_mac(spec_.mac);
    for (uint16_t vid : spec_.vlans) vlan_filter_add(vid);
    if (spec_.rss_types && (virtio::has(features_, kNetRss) || virtio::has(features_, kNetHashReport)) &&
        (*spec_.rss_types & ~config_.supported_hash_types))
        throw Error(describe() + ": rss_types asks for hash types " + hex(*spec_.rss_types) +
                    " but the device supports only " + hex(config_.supported_hash_types));
}

void NetPort::apply_filters() {
    if (ctrl_ == nullptr) return;
    Filters& f = *filters_;
    if (f.promiscuous) set_promiscuous(*f.promiscuous);
    if (f.all_multicast) set_all_multicast(*f.all_multicast);
    if (f.mac) set_mac(*f.mac);
    const std::set<uint16_t> vlans = f.vlans;
    for (uint16_t vid : vlans) vlan_filter_add(vid);
    if (f.rx_offloads) set_rx_offloads(*f.rx_offloads);
}

bool NetPort::poll_config_change() {
    if (!transport_->poll_config_change()) return false;
    if (ctrl_ != nullptr && ready() && virtio::has(features_, kNetGuestAnnounce) &&
        (transport_->net_config().status & virtio::kNetStatusAnnounce))
        announce();
    return true;
}

// A RARP request for our own MAC (what QEMU's self-announce and DPDK's
// virtio PMD send): switches relearn where the MAC lives.
void NetPort::announce() {
    Packet* p = pool_.alloc();
    if (p != nullptr) {
        uint8_t* d = p->data();
        std::memset(d, 0, 60);
        std::memset(d, 0xff, 6);              // broadcast
        std::memcpy(d + 6, mac_.data(), 6);   // from us
        d[12] = 0x80, d[13] = 0x35;           // RARP
        d[14] = 0, d[15] = 1;                 // hardware: Ethernet
        d[16] = 0x08, d[17] = 0x00;           // protocol: IPv4
        d[18] = 6, d[19] = 4;                 // address lengths
        d[20] = 0, d[21] = 3;                 // reverse request
        std::memcpy(d + 22, mac_.data(), 6);  // sender hardware address
        std::memcpy(d + 32, mac_.data(), 6);  // target hardware address
        p->data_len = 60;
        p->pkt_len = 60;
        // The control thread borrows Tx queue 0: no burst runs meanwhile.
        close_gate();
        const uint16_t sent = tx_fn_(pairs_[0].get(), &p, 1);
        set_gates(0, spec_.queues, true);
        ready_.store(true, std::memory_order_release);
        if (sent == 0) PacketPool::free(p);
        pool_.flush_thread_cache();
    }
    ctrl_command(virtio::kNetCtrlClassAnnounce, virtio::kNetCtrlAnnounceAck, nullptr, 0, "ANNOUNCE_ACK");
    announcements_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace vireo
