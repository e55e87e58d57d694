// vireo: the virtio-mmio register layout, version 2 (virtio 1.2 section
// 4.2.2). Registers are 32-bit and little-endian, each accessed with one
// aligned 32-bit access (4.2.2.2); the device configuration space at 0x100 is
// accessed with its fields' own widths.
#pragma once

#include <cstdint>

namespace vireo::virtio_mmio {

inline constexpr uint32_t kMagicValue = 0x000;         // reads kMagic ("virt")
inline constexpr uint32_t kVersion = 0x004;            // 2; 1 is the legacy interface (4.2.4), refused
inline constexpr uint32_t kDeviceId = 0x008;           // 1: network card; 0: nothing behind this slot
inline constexpr uint32_t kVendorId = 0x00c;           // QEMU: 0x554d4551 ("QEMU")
inline constexpr uint32_t kDeviceFeatures = 0x010;     // the 32 bits DeviceFeaturesSel selects
inline constexpr uint32_t kDeviceFeaturesSel = 0x014;  // 0: bits 0-31, 1: bits 32-63
inline constexpr uint32_t kDriverFeatures = 0x020;
inline constexpr uint32_t kDriverFeaturesSel = 0x024;
inline constexpr uint32_t kQueueSel = 0x030;
inline constexpr uint32_t kQueueNumMax = 0x034;      // 0: the selected queue does not exist
inline constexpr uint32_t kQueueNum = 0x038;         // the size the driver chose
inline constexpr uint32_t kQueueReady = 0x044;       // 1: the device may use the queue
inline constexpr uint32_t kQueueNotify = 0x050;      // write-only: the queue index (or notification data)
inline constexpr uint32_t kInterruptStatus = 0x060;  // kInterruptVring | kInterruptConfig
inline constexpr uint32_t kInterruptAck = 0x064;     // write the bits handled
inline constexpr uint32_t kStatus = 0x070;           // device status (2.1); writing 0 resets the device
inline constexpr uint32_t kQueueDescLow = 0x080;     // each address: low 32 bits, then high at +4
inline constexpr uint32_t kQueueDriverLow = 0x090;
inline constexpr uint32_t kQueueDeviceLow = 0x0a0;
inline constexpr uint32_t kConfigGeneration = 0x0fc;
inline constexpr uint32_t kConfig = 0x100;

inline constexpr uint32_t kMagic = 0x74726976;
inline constexpr uint32_t kVersionModern = 2;
inline constexpr uint32_t kVersionLegacy = 1;
inline constexpr uint32_t kDeviceIdNet = 1;
inline constexpr uint32_t kInterruptVring = 1u << 0;   // a used buffer notification, any queue
inline constexpr uint32_t kInterruptConfig = 1u << 1;  // the configuration changed
// What vireo reads and writes: the registers and the start of virtio-net's configuration.
inline constexpr uint32_t kMinRegionSize = 0x200;

}  // namespace vireo::virtio_mmio
