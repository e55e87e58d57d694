// vireo: device strings, the way a user names a port.
//
//   vhost-user:/path/sock,queues=2,packed=1,in_order=1,mrg_rxbuf=1,server=1
//   pci:0000:00:10.0,queues=2        (VFIO or uio_pci_generic)
//   vhost-net:tap=vireo0,queues=2    (the kernel's vhost-net behind a tap: the exception path)
//   vhost-vdpa:/dev/vhost-vdpa-0     (a vDPA device)
//   mmio:LNRO0005:00                 (a virtio-mmio platform device: vfio-platform, or /dev/mem when unbound)
//
// Keys (all optional): queues=N (queue pairs), ring=N (descriptors per queue; default 256, 1024 with dma=window),
// server=0|1, reconnect=0|1 (come back by itself when the back end returns;
// default 1), iova=auto|pa|va, dma=direct|window (what the device may reach:
// iova_policy.hpp; default: the process's, window in a confidential guest), mac=aa:bb:cc:dd:ee:ff (PCI: set
// with CTRL_MAC_ADDR), promisc=0|1, allmulti=0|1, vlans=ID[+ID...] (PCI receive filters), mtu=N, timeout_ms=N
// (the first connect or accept), reply_timeout_ms=N (each answer of the back end), stop_timeout_ms=N (how long a
// clean stop waits for the device to send what tx_burst accepted; default 1000, 0: not at all), and a 0|1 switch
// per feature:
// packed, in_order, event_idx, access_platform, order_platform, notification_data, mrg_rxbuf, csum, guest_csum,
// host_tso4, host_tso6, mac_feature, status, mtu_feature, mq, ctrl_vq, ctrl_rx, ctrl_mac_addr, guest_announce,
// speed_duplex, rss (with rss_types=ip+tcp+udp), and, off by default, vlan_filter (a device with it drops tagged
// frames of every VLAN not added), guest_tso4, guest_tso6 (Rx frames may be 64 KiB TCP segments:
// pkt::kRxGsoTcp4/6) and hash_report (every frame's RSS hash in Packet::rss_hash; 20-byte headers). The control-queue
// features are never negotiated over vhost-user: see docs/vhost-user.md. A feature switched on is asked for, not
// forced: the device may not offer it. An unknown key or a malformed value is an error.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vireo/iova/iova_mode.hpp"
#include "vireo/pmd/virtio_features.hpp"

namespace vireo {

struct DeviceSpec {
    enum class Kind { VhostUser, Pci, VhostNet, VhostVdpa, Mmio } kind = Kind::VhostUser;
    std::string path;  // vhost-user socket, PCI address, tap name (vhost-net), /dev/vhost-vdpa-N, or platform device
    uint16_t queues = 1;
    uint16_t ring = 256;      // dma=window without ring=: DmaWindow::ring_depth()
    bool ring_given = false;  // ring=N was in the string
    bool server = false;
    bool reconnect = true;
    std::optional<IovaMode> iova;       // empty: auto
    std::optional<DmaArrangement> dma;  // empty: the process's default (choose_dma_arrangement)
    std::array<uint8_t, 6> mac{};
    bool mac_given = false;  // vhost-user, vhost-net: the MAC vireo publishes; else set through the control queue
    // Receive filters (PCI: the control queue), applied at start: promisc=0|1,
    // allmulti=0|1, vlans=ID[+ID...] (asks for vlan_filter).
    std::optional<bool> promiscuous, all_multicast;
    std::vector<uint16_t> vlans;
    // rss_types=ip+tcp+udp (each IPv4 and IPv6): what RSS and hash reports hash; empty: all three.
    std::optional<uint32_t> rss_types;
    uint16_t mtu = 1500;
    int timeout_ms = 5000;
    int reply_timeout_ms = 5000;
    int stop_timeout_ms = 1000;        // NetPort::stop()'s bound on waiting for Tx completions
    virtio::Features wanted_features;  // virtio feature bits the user allows
};

// Parses a device string; throws vireo::Error naming the bad part and the fix.
DeviceSpec parse_device_string(const std::string& s);

}  // namespace vireo
