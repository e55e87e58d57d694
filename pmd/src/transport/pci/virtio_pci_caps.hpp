// virtio over PCI, modern interface (virtio 1.2 section 4.1): the capability
// list that says where each configuration structure lives, and the layout of
// the common configuration structure (4.1.4.3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace vireo::virtio_pci {

inline constexpr uint16_t kVendorId = 0x1af4;                 // 4.1.2
inline constexpr uint16_t kDeviceIdNetTransitional = 0x1000;  // 4.1.2.3: legacy id of a network card
inline constexpr uint16_t kDeviceIdNetModern = 0x1041;        // 4.1.2: 0x1040 + device type 1

// 4.1.4 Virtio Structure PCI Capabilities: cfg_type values.
inline constexpr uint8_t kCapCommonCfg = 1;
inline constexpr uint8_t kCapNotifyCfg = 2;
inline constexpr uint8_t kCapIsrCfg = 3;
inline constexpr uint8_t kCapDeviceCfg = 4;
inline constexpr uint8_t kCapPciCfg = 5;

inline constexpr uint8_t kPciCapVendor = 0x09;     // PCI: vendor-specific capability
inline constexpr uint8_t kPciCapMsix = 0x11;       // PCI: MSI-X
inline constexpr uint16_t kMsixNoVector = 0xffff;  // 4.1.4.3: VIRTIO_MSI_NO_VECTOR
inline constexpr uint8_t kIsrQueue = 1;            // 4.1.4.5: ISR status bit 0, a used buffer
inline constexpr uint8_t kIsrConfigChange = 2;     // 4.1.4.5: ISR status bit 1, configuration change

// 4.1.4.3 struct virtio_pci_common_cfg: byte offsets of its fields.
namespace common {
inline constexpr uint32_t kDeviceFeatureSelect = 0;  // le32
inline constexpr uint32_t kDeviceFeature = 4;        // le32, read-only
inline constexpr uint32_t kDriverFeatureSelect = 8;  // le32
inline constexpr uint32_t kDriverFeature = 12;       // le32
inline constexpr uint32_t kConfigMsixVector = 16;    // le16
inline constexpr uint32_t kNumQueues = 18;           // le16, read-only
inline constexpr uint32_t kDeviceStatus = 20;        // u8
inline constexpr uint32_t kConfigGeneration = 21;    // u8, read-only
inline constexpr uint32_t kQueueSelect = 22;         // le16
inline constexpr uint32_t kQueueSize = 24;           // le16
inline constexpr uint32_t kQueueMsixVector = 26;     // le16
inline constexpr uint32_t kQueueEnable = 28;         // le16
inline constexpr uint32_t kQueueNotifyOff = 30;      // le16, read-only
inline constexpr uint32_t kQueueDesc = 32;           // le64
inline constexpr uint32_t kQueueDriver = 40;         // le64
inline constexpr uint32_t kQueueDevice = 48;         // le64
inline constexpr uint32_t kSize = 56;                // the fields every device has end here
inline constexpr uint32_t kQueueReset = 58;          // le16, with VIRTIO_F_RING_RESET (1 starts, reads 0 when done)
inline constexpr uint32_t kSizeWithQueueReset = 60;
}  // namespace common

// Where one structure lives: BAR, offset and length within it.
struct Location {
    bool present = false;
    uint8_t bar = 0;
    uint32_t offset = 0;
    uint32_t length = 0;
};

struct Layout {
    Location common, notify, isr, device;
    uint32_t notify_off_multiplier = 0;  // 4.1.4.4
    uint8_t pci_cfg_cap = 0;             // config-space offset of VIRTIO_PCI_CAP_PCI_CFG, 0 if none
    uint8_t msix_cap = 0;                // config-space offset of the MSI-X capability, 0 if none
    uint16_t msix_vectors = 0;           // MSI-X table size
};

// Walks the capability list of a device's first 256 bytes of config space.
// Uses the first capability of each type whose BAR is valid (4.1.4.1).
// Throws vireo::Error, naming `who`, when the list is malformed or a required
// structure (common, notify, ISR, device config) is missing: a legacy-only
// device has none of them.
Layout parse_caps(std::span<const uint8_t, 256> config, const std::string& who);

}  // namespace vireo::virtio_pci
