// vireo: virtio-net's device configuration space (virtio 1.2 section
// 5.1.4): where each field lives and which feature makes it exist, read field
// by field through the transport's own reader (virtio-pci and virtio-mmio read
// it from the device, each under its configuration generation, 2.5.1).
#pragma once

#include <cstdint>
#include <functional>

#include "vireo/pmd/transport.hpp"

namespace vireo {

namespace netcfg {
inline constexpr uint32_t kMac = 0;                // u8[6], with VIRTIO_NET_F_MAC
inline constexpr uint32_t kStatus = 6;             // le16, with VIRTIO_NET_F_STATUS
inline constexpr uint32_t kMaxVirtqueuePairs = 8;  // le16, with VIRTIO_NET_F_MQ
inline constexpr uint32_t kMtu = 10;               // le16, with VIRTIO_NET_F_MTU
inline constexpr uint32_t kSpeed = 12;             // le32 Mbit/s, with VIRTIO_NET_F_SPEED_DUPLEX
inline constexpr uint32_t kDuplex = 16;            // u8: 0 half, 1 full, 0xff unknown
// With VIRTIO_NET_F_RSS or VIRTIO_NET_F_HASH_REPORT:
inline constexpr uint32_t kRssMaxKeySize = 17;                 // u8
inline constexpr uint32_t kRssMaxIndirectionTableLength = 18;  // le16
inline constexpr uint32_t kSupportedHashTypes = 20;            // le32
inline constexpr uint32_t kEnd = 24;                           // the bytes vireo reads
}  // namespace netcfg

// Reads `len` bytes at `offset` of the device configuration into `out`.
using ConfigReader = std::function<void(void* out, uint32_t offset, uint32_t len)>;

// The fields the device's features (`device_features`, as offered) say exist;
// the spec's defaults for the others (no STATUS: link up; no MQ: one pair).
NetConfig read_net_config(const virtio::Features& device_features, const ConfigReader& read);

}  // namespace vireo
