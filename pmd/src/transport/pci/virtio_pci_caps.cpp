// The virtio PCI capability walk (virtio 1.2 section 4.1.4).
#include "transport/pci/virtio_pci_caps.hpp"

#include <cstring>

#include "vireo/base/error.hpp"

namespace vireo::virtio_pci {
namespace {

constexpr uint32_t kPciStatus = 0x06;
constexpr uint16_t kPciStatusCapList = 1u << 4;
constexpr uint32_t kPciCapPtr = 0x34;
constexpr uint32_t kVirtioCapLen = 16;  // struct virtio_pci_cap
constexpr uint32_t kNotifyCapLen = 20;  // struct virtio_pci_notify_cap

template <class T>
T read_le(std::span<const uint8_t, 256> c, uint32_t off) {
    T v;
    std::memcpy(&v, c.data() + off, sizeof v);
    return v;
}

}  // namespace

Layout parse_caps(std::span<const uint8_t, 256> c, const std::string& who) {
    Layout l;
    if (!(read_le<uint16_t>(c, kPciStatus) & kPciStatusCapList))
        throw Error(who +
                    " has no PCI capability list: it is a legacy-only virtio device; vireo drives the "
                    "modern interface (QEMU: virtio-net-pci,disable-legacy=on or disable-modern=off)");
    uint32_t off = c[kPciCapPtr] & 0xfcu;
    // A list is at most (256 - 64) / 4 entries long; more means a loop.
    for (int n = 0; off != 0; n++, off = c[off + 1] & 0xfcu) {
        if (n >= 48 || off < 0x40 || off + 2 > c.size())
            throw Error(who + ": malformed PCI capability list (at offset " + std::to_string(off) + ")");
        const uint8_t id = c[off];
        if (id == kPciCapMsix && off + 4 <= c.size()) {
            l.msix_cap = static_cast<uint8_t>(off);
            l.msix_vectors = static_cast<uint16_t>((read_le<uint16_t>(c, off + 2) & 0x7ffu) + 1);
            continue;
        }
        if (id != kPciCapVendor || off + kVirtioCapLen > c.size()) continue;
        const uint8_t cap_len = c[off + 2], type = c[off + 3], bar = c[off + 4];
        if (cap_len < kVirtioCapLen) continue;
        if (type == kCapPciCfg) {
            if (l.pci_cfg_cap == 0) l.pci_cfg_cap = static_cast<uint8_t>(off);
            continue;
        }
        if (bar > 5) continue;  // 4.1.4.1: reserved BAR values are ignored
        Location loc{true, bar, read_le<uint32_t>(c, off + 8), read_le<uint32_t>(c, off + 12)};
        Location* slot = type == kCapCommonCfg   ? &l.common
                         : type == kCapNotifyCfg ? &l.notify
                         : type == kCapIsrCfg    ? &l.isr
                         : type == kCapDeviceCfg ? &l.device
                                                 : nullptr;
        if (slot == nullptr || slot->present) continue;  // unknown type, or not the first of its type
        if (type == kCapNotifyCfg) {
            if (cap_len < kNotifyCapLen || off + kNotifyCapLen > c.size()) continue;
            l.notify_off_multiplier = read_le<uint32_t>(c, off + 16);
        }
        *slot = loc;
    }
    std::string missing;
    if (!l.common.present) missing += " common";
    if (!l.notify.present) missing += " notify";
    if (!l.isr.present) missing += " ISR";
    if (!l.device.present) missing += " device";
    if (!missing.empty()) {
        const bool none = !l.common.present && !l.notify.present && !l.isr.present && !l.device.present;
        throw Error(who + (none ? " has no virtio PCI capabilities: it is a legacy-only device; vireo drives the "
                                  "modern interface (QEMU: virtio-net-pci,disable-legacy=on or disable-modern=off)"
                                : " lacks the virtio PCI capabilities for the" + missing +
                                      " configuration (virtio 1.2 section 4.1.4): not a conforming modern device"));
    }
    if (l.common.length < common::kSize)
        throw Error(who + ": the common configuration structure is " + std::to_string(l.common.length) +
                    " bytes, shorter than virtio 1.x's " + std::to_string(common::kSize));
    return l;
}

}  // namespace vireo::virtio_pci
