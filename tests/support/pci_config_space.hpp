// A synthetic PCI configuration space with virtio capabilities (virtio 1.2
// 4.1.4), for tests that play a virtio-pci device without one.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "transport/pci/virtio_pci_caps.hpp"

namespace vireo::test {

struct Space {
    std::array<uint8_t, 256> b{};
    uint8_t last = 0;  // offset of the last capability added
    Space() {
        b[0] = 0xf4;
        b[1] = 0x1a;
        b[6] = 1 << 4;  // status: capability list
    }
    uint8_t add(uint8_t at, uint8_t id, uint8_t len) {
        b[at] = id;
        b[at + 1] = 0;
        b[at + 2] = len;
        if (last == 0)
            b[0x34] = at;
        else
            b[last + 1] = at;
        last = at;
        return at;
    }
    void virtio(uint8_t at, uint8_t type, uint8_t bar, uint32_t off, uint32_t len, uint32_t mult = 0) {
        add(at, virtio_pci::kPciCapVendor, type == virtio_pci::kCapNotifyCfg ? 20 : 16);
        b[at + 3] = type;
        b[at + 4] = bar;
        std::memcpy(&b[at + 8], &off, 4);
        std::memcpy(&b[at + 12], &len, 4);
        if (type == virtio_pci::kCapNotifyCfg) std::memcpy(&b[at + 16], &mult, 4);
    }
};

// What QEMU's virtio-net-pci shows (docs: vm-lab notes): MSI-X, then the
// structures in BAR 4, then PCI_CFG.
inline Space qemu_like() {
    Space s;
    s.add(0x98, virtio_pci::kPciCapMsix, 12);
    s.b[0x9a] = 3;  // table size 4
    s.virtio(0x84, virtio_pci::kCapPciCfg, 0, 0, 0);
    s.virtio(0x70, virtio_pci::kCapNotifyCfg, 4, 0x3000, 0x1000, 4);
    s.virtio(0x60, virtio_pci::kCapDeviceCfg, 4, 0x2000, 0x1000);
    s.virtio(0x50, virtio_pci::kCapIsrCfg, 4, 0x1000, 0x1000);
    s.virtio(0x40, virtio_pci::kCapCommonCfg, 4, 0x0000, 0x1000);
    return s;
}

}  // namespace vireo::test
