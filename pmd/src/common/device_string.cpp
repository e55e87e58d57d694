#include "vireo/pmd/device_string.hpp"

#include <bit>
#include <charconv>
#include <map>
#include <sstream>

#include "vireo/base/error.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {
namespace {

using namespace virtio::feature;

// Feature switches and their default (on = asked for).
struct Switch {
    unsigned bit;
    bool on;
};
const std::map<std::string, Switch>& switches() {
    static const std::map<std::string, Switch> m = {
        {"packed", {kRingPacked, false}},
        {"in_order", {kInOrder, false}},
        {"event_idx", {kEventIdx, true}},
        {"indirect_desc", {kIndirectDesc, true}},
        {"access_platform", {kAccessPlatform, true}},
        {"order_platform", {kOrderPlatform, true}},
        {"notification_data", {kNotificationData, true}},
        {"mrg_rxbuf", {kNetMrgRxbuf, true}},
        {"csum", {kNetCsum, true}},
        {"guest_csum", {kNetGuestCsum, true}},
        // TSO: the device cuts what the application flags (pkt::kTxTcpSeg); without it vireo does.
        {"host_tso4", {kNetHostTso4, true}},
        {"host_tso6", {kNetHostTso6, true}},
        // Off by default, as DPDK's LRO: with them a frame may arrive as one 64 KiB TCP segment.
        {"guest_tso4", {kNetGuestTso4, false}},
        {"guest_tso6", {kNetGuestTso6, false}},
        {"mac_feature", {kNetMac, true}},
        {"status", {kNetStatus, true}},
        {"mtu_feature", {kNetMtu, true}},
        {"mq", {kNetMq, true}},
        {"ctrl_vq", {kNetCtrlVq, true}},  // never over vhost-user: no device processes the control queue there
        {"ctrl_rx", {kNetCtrlRx, true}},
        {"ctrl_mac_addr", {kNetCtrlMacAddr, true}},
        // Off by default: with it a device drops every tagged frame until NetPort::vlan_filter_add (QEMU does).
        {"vlan_filter", {kNetCtrlVlan, false}},
        {"guest_announce", {kNetGuestAnnounce, true}},
        {"ctrl_guest_offloads", {kNetCtrlGuestOffloads, true}},  // set_rx_offloads() at run time
        {"ring_reset", {kRingReset, true}},                      // reset_queue_pair() (virtio-pci)
        {"speed_duplex", {kNetSpeedDuplex, true}},
        // RSS (PCI: QEMU's rss=on): flows spread over the queue pairs by a Toeplitz hash.
        {"rss", {kNetRss, true}},
        // Off by default: the header grows to 20 bytes both ways.
        {"hash_report", {kNetHashReport, false}},
    };
    return m;
}

[[noreturn]] void bad(const std::string& s, const std::string& why) {
    throw Error("device string '" + s + "': " + why);
}

long number(const std::string& s, const std::string& key, const std::string& v, long lo, long hi) {
    long n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n < lo || n > hi)
        bad(s, key + "=" + v + " is not a number from " + std::to_string(lo) + " to " + std::to_string(hi));
    return n;
}

std::string known_keys() {
    std::string k =
        "tap (vhost-net), queues, ring, server, reconnect, iova, dma, mac, promisc, allmulti, vlans, rss_types, mtu, "
        "timeout_ms, "
        "reply_timeout_ms, stop_timeout_ms";
    for (const auto& [name, sw] : switches()) k += ", " + name;
    return k;
}

}  // namespace

DeviceSpec parse_device_string(const std::string& s) {
    DeviceSpec d;
    const auto colon = s.find(':');
    if (colon == std::string::npos)
        bad(s,
            "no transport: write vhost-user:/path/to/socket[,key=value...], pci:0000:01:00.0[,key=value...], "
            "vhost-net:tap=NAME[,key=value...], vhost-vdpa:/dev/vhost-vdpa-0[,key=value...] or "
            "mmio:LNRO0005:00[,key=value...]");
    const std::string kind = s.substr(0, colon);
    if (kind == "vhost-user")
        d.kind = DeviceSpec::Kind::VhostUser;
    else if (kind == "pci")
        d.kind = DeviceSpec::Kind::Pci;
    else if (kind == "vhost-net")
        d.kind = DeviceSpec::Kind::VhostNet;
    else if (kind == "vhost-vdpa")
        d.kind = DeviceSpec::Kind::VhostVdpa;
    else if (kind == "mmio")
        d.kind = DeviceSpec::Kind::Mmio;
    else
        bad(s, "unknown transport '" + kind + "': use vhost-user:, pci:, vhost-net:, vhost-vdpa: or mmio:");
    const std::string rest = s.substr(colon + 1);
    std::string keys = rest;  // vhost-net: all of it is key=value, its tap one of them
    if (d.kind != DeviceSpec::Kind::VhostNet) {
        // A PCI address or platform device name contains ':' and '.', never ','.
        const auto comma = rest.find(',');
        d.path = rest.substr(0, comma);
        keys = comma == std::string::npos ? "" : rest.substr(comma + 1);
        if (d.path.empty())
            bad(s, "no " +
                       std::string(kind == "pci"          ? "PCI address"
                                   : kind == "vhost-vdpa" ? "device node (/dev/vhost-vdpa-N)"
                                   : kind == "mmio"       ? "platform device (LNRO0005:00; vireo-fwd --list)"
                                                          : "socket path") +
                       " after '" + kind + ":'");
    }
    for (const auto& [name, sw] : switches())
        if (sw.on) d.wanted_features |= virtio::bit(sw.bit);
    std::istringstream kv(keys);
    std::string item;
    while (std::getline(kv, item, ',')) {
        const auto eq = item.find('=');
        if (item.empty() || eq == std::string::npos || eq == 0 || eq + 1 == item.size())
            bad(s, "'" + item + "' is not key=value");
        const std::string key = item.substr(0, eq), v = item.substr(eq + 1);
        if (key == "tap" && d.kind == DeviceSpec::Kind::VhostNet) {
            if (v.size() > 15) bad(s, "tap=" + v + ": an interface name has at most 15 characters");
            d.path = v;
        } else if (key == "queues") {
            d.queues = static_cast<uint16_t>(number(s, key, v, 1, 128));
        } else if (key == "ring") {
            d.ring = static_cast<uint16_t>(number(s, key, v, 2, 32768));
            d.ring_given = true;
        } else if (key == "server") {
            d.server = number(s, key, v, 0, 1) != 0;
        } else if (key == "reconnect") {
            d.reconnect = number(s, key, v, 0, 1) != 0;
        } else if (key == "mtu") {
            d.mtu = static_cast<uint16_t>(number(s, key, v, 68, 65535));
        } else if (key == "timeout_ms") {
            d.timeout_ms = static_cast<int>(number(s, key, v, 1, 600000));
        } else if (key == "reply_timeout_ms") {
            d.reply_timeout_ms = static_cast<int>(number(s, key, v, 1, 600000));
        } else if (key == "stop_timeout_ms") {
            d.stop_timeout_ms = static_cast<int>(number(s, key, v, 0, 600000));
        } else if (key == "iova") {
            if (v == "auto")
                d.iova.reset();
            else if (auto m = parse_iova_mode(v))
                d.iova = m;
            else
                bad(s, "iova=" + v + ": use auto, pa or va");
        } else if (key == "dma") {
            if (auto a = parse_dma_arrangement(v))
                d.dma = a;
            else
                bad(s, "dma=" + v + ": use direct or window");
        } else if (key == "mac") {
            unsigned b[6];
            char tail;
            if (std::sscanf(v.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) !=
                6)
                bad(s, "mac=" + v + " is not aa:bb:cc:dd:ee:ff");
            for (int i = 0; i < 6; i++) d.mac[i] = static_cast<uint8_t>(b[i]);
            d.mac_given = true;
        } else if (key == "rss_types") {
            uint32_t t = 0;
            for (size_t at = 0; at <= v.size();) {
                const size_t plus = std::min(v.find('+', at), v.size());
                const std::string name = v.substr(at, plus - at);
                if (name == "ip")
                    t |= virtio::kHashTypeIpv4 | virtio::kHashTypeIpv6;
                else if (name == "tcp")
                    t |= virtio::kHashTypeTcpv4 | virtio::kHashTypeTcpv6;
                else if (name == "udp")
                    t |= virtio::kHashTypeUdpv4 | virtio::kHashTypeUdpv6;
                else
                    bad(s, "rss_types=" + v + ": '" + name + "' is not ip, tcp or udp (join them with +)");
                at = plus + 1;
            }
            d.rss_types = t;
        } else if (key == "promisc") {
            d.promiscuous = number(s, key, v, 0, 1) != 0;
        } else if (key == "allmulti") {
            d.all_multicast = number(s, key, v, 0, 1) != 0;
        } else if (key == "vlans") {
            d.vlans.clear();
            for (size_t at = 0; at <= v.size();) {
                const size_t plus = std::min(v.find('+', at), v.size());
                d.vlans.push_back(static_cast<uint16_t>(number(s, key, v.substr(at, plus - at), 0, 4095)));
                at = plus + 1;
            }
            d.wanted_features |= virtio::bit(kNetCtrlVlan);  // VLAN filters need CTRL_VLAN
        } else if (auto it = switches().find(key); it != switches().end()) {
            if (number(s, key, v, 0, 1))
                d.wanted_features |= virtio::bit(it->second.bit);
            else
                d.wanted_features &= ~virtio::bit(it->second.bit);
        } else {
            bad(s, "unknown key '" + key + "'; known keys: " + known_keys());
        }
    }
    if (d.kind == DeviceSpec::Kind::VhostNet && d.path.empty())
        bad(s, "no tap: write vhost-net:tap=NAME (vireo creates the tap, or attaches to it if it exists)");
    // A split ring's size is a power of two (2.7); packed rings take any size.
    // Without packed=1 the ring is split whatever the device offers: say so now.
    if (!virtio::has(d.wanted_features, kRingPacked) && !std::has_single_bit(d.ring))
        bad(s, "ring=" + std::to_string(d.ring) +
                   " is not a power of two, which a split ring needs (virtio 1.2 section 2.7): use 256, 512, ... "
                   "or packed=1");
    return d;
}

}  // namespace vireo
