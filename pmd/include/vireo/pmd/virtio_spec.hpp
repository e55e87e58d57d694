// vireo: definitions from the VIRTIO specification, version 1.2 (OASIS
// virtio-v1.2-cs01), with the 1.3 feature numbering. Section numbers are the
// 1.2 document's. Everything the device sees is little-endian; vireo targets
// little-endian hosts only (checked below), so fields are plain integers.
#pragma once

#include <bit>
#include <cstdint>

#include "vireo/pmd/virtio_features.hpp"  // Features, bit(), has()

namespace vireo::virtio {

static_assert(std::endian::native == std::endian::little, "vireo supports little-endian hosts only");

// --- 6 Reserved Feature Bits ---------------------------------------------------
namespace feature {
inline constexpr unsigned kIndirectDesc = 28;      // 6: VIRTIO_F_INDIRECT_DESC
inline constexpr unsigned kEventIdx = 29;          // 6: VIRTIO_F_EVENT_IDX
inline constexpr unsigned kVersion1 = 32;          // 6: VIRTIO_F_VERSION_1
inline constexpr unsigned kAccessPlatform = 33;    // 6: VIRTIO_F_ACCESS_PLATFORM (was IOMMU_PLATFORM)
inline constexpr unsigned kRingPacked = 34;        // 6: VIRTIO_F_RING_PACKED
inline constexpr unsigned kInOrder = 35;           // 6: VIRTIO_F_IN_ORDER
inline constexpr unsigned kOrderPlatform = 36;     // 6: VIRTIO_F_ORDER_PLATFORM
inline constexpr unsigned kSrIov = 37;             // 6: VIRTIO_F_SR_IOV
inline constexpr unsigned kNotificationData = 38;  // 6: VIRTIO_F_NOTIFICATION_DATA
inline constexpr unsigned kNotifConfigData = 39;   // 6: VIRTIO_F_NOTIF_CONFIG_DATA
inline constexpr unsigned kRingReset = 40;         // 6: VIRTIO_F_RING_RESET

// 5.1.3 Network device feature bits
inline constexpr unsigned kNetCsum = 0;
inline constexpr unsigned kNetGuestCsum = 1;
inline constexpr unsigned kNetCtrlGuestOffloads = 2;
inline constexpr unsigned kNetMtu = 3;
inline constexpr unsigned kNetMac = 5;
inline constexpr unsigned kNetGuestTso4 = 7;
inline constexpr unsigned kNetGuestTso6 = 8;
inline constexpr unsigned kNetGuestUfo = 10;
inline constexpr unsigned kNetHostTso4 = 11;
inline constexpr unsigned kNetHostTso6 = 12;
inline constexpr unsigned kNetHostUfo = 14;
inline constexpr unsigned kNetMrgRxbuf = 15;
inline constexpr unsigned kNetStatus = 16;
inline constexpr unsigned kNetCtrlVq = 17;
inline constexpr unsigned kNetCtrlRx = 18;
inline constexpr unsigned kNetCtrlVlan = 19;
inline constexpr unsigned kNetGuestAnnounce = 21;
inline constexpr unsigned kNetMq = 22;
inline constexpr unsigned kNetCtrlMacAddr = 23;
inline constexpr unsigned kNetHashReport = 57;
inline constexpr unsigned kNetRss = 60;
inline constexpr unsigned kNetSpeedDuplex = 63;
// Virtio 1.4 5.1.3: the first network features past 63 (none of them vireo's yet).
inline constexpr unsigned kNetRssContext = 64;
inline constexpr unsigned kNetGuestUdpTunnelGso = 65;
inline constexpr unsigned kNetGuestUdpTunnelGsoCsum = 66;
inline constexpr unsigned kNetHostUdpTunnelGso = 67;
inline constexpr unsigned kNetHostUdpTunnelGsoCsum = 68;
}  // namespace feature

// --- 2.1 Device Status Field -------------------------------------------------
namespace status {
inline constexpr uint8_t kAcknowledge = 1;
inline constexpr uint8_t kDriver = 2;
inline constexpr uint8_t kDriverOk = 4;
inline constexpr uint8_t kFeaturesOk = 8;
inline constexpr uint8_t kDeviceNeedsReset = 64;
inline constexpr uint8_t kFailed = 128;
}  // namespace status

// --- 2.7 Split Virtqueues ----------------------------------------------------
// 2.7.5 The Virtqueue Descriptor Table
struct SplitDesc {
    uint64_t addr;  // IOVA of the buffer
    uint32_t len;
    uint16_t flags;  // kDescF*
    uint16_t next;
};
static_assert(sizeof(SplitDesc) == 16);

inline constexpr uint16_t kDescFNext = 1;      // 2.7.5: chain continues via next
inline constexpr uint16_t kDescFWrite = 2;     // 2.7.5: device writes this buffer
inline constexpr uint16_t kDescFIndirect = 4;  // 2.7.5.3

// 2.7.6 The Virtqueue Available Ring: flags, idx, ring[size], used_event.
inline constexpr uint16_t kAvailFNoInterrupt = 1;
// 2.7.8 The Virtqueue Used Ring: flags, idx, ring[size] of UsedElem, avail_event.
struct UsedElem {
    uint32_t id;   // head of the used descriptor chain
    uint32_t len;  // bytes written into the device-writable part
};
static_assert(sizeof(UsedElem) == 8);
inline constexpr uint16_t kUsedFNoNotify = 1;

// 2.7.10 (and 2.6.7.1 of 1.1) the event index test: has new_idx passed event
// since old_idx? All arithmetic modulo 2^16.
constexpr bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx) noexcept {
    return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

// 2.7.2 Legacy interfaces aside, modern alignment: descriptor table 16,
// available ring 2, used ring 4 (we align each area to a cache line).
inline constexpr size_t kSplitDescAlign = 16;
inline constexpr size_t kSplitAvailAlign = 2;
inline constexpr size_t kSplitUsedAlign = 4;
inline constexpr uint32_t kSplitMaxSize = 32768;  // 2.7: Queue Size is a power of 2, at most 32768

// --- 2.8 Packed Virtqueues ---------------------------------------------------
// 2.8.13 Packed Virtqueue Layout
struct PackedDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t id;  // buffer id
    uint16_t flags;
};
static_assert(sizeof(PackedDesc) == 16);

inline constexpr uint16_t kPackedDescFAvail = 1 << 7;  // 2.8.1
// A packed ring position as one 16-bit value (event suppression off_wrap,
// vhost-user's SET/GET_VRING_BASE): bits 0-14 the index, bit 15 the wrap counter.
inline constexpr uint16_t kPackedWrapBit = 1 << 15;
inline constexpr uint16_t kPackedDescFUsed = 1 << 15;  // 2.8.1

// 2.8.14 Event Suppression Structure Format
struct PackedEvent {
    uint16_t off_wrap;  // bits 0-14 descriptor offset, bit 15 wrap counter
    uint16_t flags;     // kRingEventF*
};
static_assert(sizeof(PackedEvent) == 4);
inline constexpr uint16_t kRingEventFEnable = 0;
inline constexpr uint16_t kRingEventFDisable = 1;
inline constexpr uint16_t kRingEventFDesc = 2;     // only with VIRTIO_F_EVENT_IDX
inline constexpr uint32_t kPackedMaxSize = 32768;  // 2.8.10.1: Queue Size at most 2^15

// --- 2.9 Driver Notifications (VIRTIO_F_NOTIFICATION_DATA) --------------------
// Split: vqn | avail_idx << 16. Packed: vqn | next_off << 16 | next_wrap << 31.
constexpr uint32_t notification_data_split(uint16_t vqn, uint16_t avail_idx) noexcept {
    return uint32_t{vqn} | uint32_t{avail_idx} << 16;
}
constexpr uint32_t notification_data_packed(uint16_t vqn, uint16_t next_off, bool wrap) noexcept {
    return uint32_t{vqn} | uint32_t{next_off & 0x7fffu} << 16 | uint32_t{wrap} << 31;
}

// --- 5.1.6 Device Operation: the virtio-net header -------------------------------
struct NetHdr {
    uint8_t flags;  // kNetHdrF*
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
};
static_assert(sizeof(NetHdr) == 10);  // without VERSION_1 and MRG_RXBUF
struct NetHdrMrg {
    NetHdr hdr;
    uint16_t num_buffers;  // present with VERSION_1 or MRG_RXBUF
};
static_assert(sizeof(NetHdrMrg) == 12);

// With VIRTIO_NET_F_HASH_REPORT, both ways (5.1.6): virtio_net_hdr_v1_hash.
struct NetHdrHash {
    NetHdrMrg hdr;
    uint32_t hash_value;
    uint16_t hash_report;  // kHashReport*
    uint16_t padding;
};
static_assert(sizeof(NetHdrHash) == 20);
// 5.1.6.4.3.4 hash_report: what the hash was computed over.
inline constexpr uint16_t kHashReportNone = 0;
inline constexpr uint16_t kHashReportIpv4 = 1;
inline constexpr uint16_t kHashReportTcpv4 = 2;
inline constexpr uint16_t kHashReportUdpv4 = 3;
inline constexpr uint16_t kHashReportIpv6 = 4;
inline constexpr uint16_t kHashReportTcpv6 = 5;
inline constexpr uint16_t kHashReportUdpv6 = 6;
inline constexpr uint16_t kHashReportIpv6Ex = 7;
inline constexpr uint16_t kHashReportTcpv6Ex = 8;
inline constexpr uint16_t kHashReportUdpv6Ex = 9;
// 5.1.6.4.3.1 supported_hash_types / hash_types bits.
inline constexpr uint32_t kHashTypeIpv4 = 1u << 0;
inline constexpr uint32_t kHashTypeTcpv4 = 1u << 1;
inline constexpr uint32_t kHashTypeUdpv4 = 1u << 2;
inline constexpr uint32_t kHashTypeIpv6 = 1u << 3;
inline constexpr uint32_t kHashTypeTcpv6 = 1u << 4;
inline constexpr uint32_t kHashTypeUdpv6 = 1u << 5;
inline constexpr uint32_t kHashTypeIpEx = 1u << 6;
inline constexpr uint32_t kHashTypeTcpEx = 1u << 7;
inline constexpr uint32_t kHashTypeUdpEx = 1u << 8;

inline constexpr uint8_t kNetHdrFNeedsCsum = 1;
inline constexpr uint8_t kNetHdrFDataValid = 2;
inline constexpr uint8_t kNetHdrFRscInfo = 4;
inline constexpr uint8_t kNetHdrGsoNone = 0;
inline constexpr uint8_t kNetHdrGsoTcpv4 = 1;
inline constexpr uint8_t kNetHdrGsoUdp = 3;
inline constexpr uint8_t kNetHdrGsoTcpv6 = 4;
inline constexpr uint8_t kNetHdrGsoEcn = 0x80;

// 5.1.4 Device configuration layout: status bits.
inline constexpr uint16_t kNetStatusLinkUp = 1;
inline constexpr uint16_t kNetStatusAnnounce = 2;

// 5.1.6.5 Control Virtqueue: {u8 class, u8 command}, command data, {u8 ack}.
// 5.1.6.5.1 Packet Receive Filtering: data u8 (1 on, 0 off).
inline constexpr uint8_t kNetCtrlClassRx = 0;
inline constexpr uint8_t kNetCtrlRxPromisc = 0;
inline constexpr uint8_t kNetCtrlRxAllmulti = 1;
// 5.1.6.5.2 Setting MAC Address Filtering: MAC_ADDR_SET, data u8[6].
inline constexpr uint8_t kNetCtrlClassMac = 1;
inline constexpr uint8_t kNetCtrlMacAddrSet = 1;
// 5.1.6.5.3 VLAN Filtering: data le16 vid.
inline constexpr uint8_t kNetCtrlClassVlan = 2;
inline constexpr uint8_t kNetCtrlVlanAdd = 0;
inline constexpr uint8_t kNetCtrlVlanDel = 1;
// 5.1.6.5.4 Gratuitous Packet Sending: ACK, no data.
inline constexpr uint8_t kNetCtrlClassAnnounce = 3;
inline constexpr uint8_t kNetCtrlAnnounceAck = 0;
inline constexpr uint8_t kNetCtrlClassMq = 4;
inline constexpr uint8_t kNetCtrlMqVqPairsSet = 0;  // data: le16 virtqueue_pairs
// 5.1.6.5.7.1 RSS: le32 hash_types; le16 indirection_table_mask; le16
// unclassified_queue; le16 indirection_table[mask + 1]; le16 max_tx_vq; u8
// hash_key_length; u8 hash_key_data[]. Queue numbers are receive queue
// indexes (0 = receiveq1), i.e. queue pairs.
inline constexpr uint8_t kNetCtrlMqRssConfig = 1;
// 5.1.6.5.6.4 hash reports without RSS: le32 hash_types; le16 reserved[4];
// u8 hash_key_length; u8 hash_key_data[].
inline constexpr uint8_t kNetCtrlMqHashConfig = 2;
// 5.1.6.5.6.1 Setting Offloads State (CTRL_GUEST_OFFLOADS): data le64, a bit
// per receive offload, numbered as its feature (GUEST_CSUM 1, GUEST_TSO4 7,
// GUEST_TSO6 8, ...); set: the device applies it, clear: it does not.
inline constexpr uint8_t kNetCtrlClassGuestOffloads = 5;
inline constexpr uint8_t kNetCtrlGuestOffloadsSet = 0;
inline constexpr uint8_t kNetCtrlOk = 0;

}  // namespace vireo::virtio
