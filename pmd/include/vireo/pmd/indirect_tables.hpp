// vireo: the indirect descriptor tables of one virtqueue (VIRTIO_F_INDIRECT_DESC),
// split (2.7.5.3) and packed (2.8.19) alike: one table of `max()` descriptors
// per head (split) or buffer id (packed), all in one DMA chunk, so a slot's
// table is free exactly when its head or id is. A table is written before
// publish() makes the ring descriptor that points at it visible, and carries
// device-readable (Tx) chains only.
#pragma once

#include <cstdint>
#include <type_traits>

#include "vireo/iova/dma_memory.hpp"
#include "vireo/pmd/virtio_spec.hpp"
#include "vireo/pmd/vq_common.hpp"

namespace vireo {

template <class Desc>  // virtio::SplitDesc or virtio::PackedDesc
class IndirectTables {
    static_assert(std::is_same_v<Desc, virtio::SplitDesc> || std::is_same_v<Desc, virtio::PackedDesc>);

public:
    // `per` descriptors per table for each of `slots` heads or ids (per == 0: none).
    void allocate(DmaMemory& mem, uint16_t slots, uint16_t per) {
        if (per == 0) return;
        const DmaChunk t = mem.allocate(sizeof(Desc) * slots * per, 64);
        tables_ = reinterpret_cast<Desc*>(t.va);
        iova_ = t.iova;
        max_ = per;
    }
    uint16_t max() const noexcept { return max_; }
    Iova iova() const noexcept { return iova_; }  // the tables, slots * max * 16 bytes

    // Writes segs[0..n) into slot's table; *ring becomes the one ring segment
    // that points at it. False when n is 0 or over max(), or a segment is
    // device-writable.
    bool write(uint16_t slot, const VqSeg* segs, uint16_t n, VqSeg* ring) noexcept {
        if (n == 0 || n > max_) return false;
        Desc* const t = tables_ + size_t{slot} * max_;
        for (uint16_t i = 0; i < n; i++) {
            if (segs[i].device_writes) return false;
            t[i].addr = segs[i].iova.value;
            t[i].len = segs[i].len;
            if constexpr (std::is_same_v<Desc, virtio::SplitDesc>) {
                t[i].flags = i + 1 < n ? virtio::kDescFNext : 0;
                t[i].next = static_cast<uint16_t>(i + 1);  // an index within the table (2.7.5.3.1)
            } else {
                t[i].id = 0;     // ignored in a table
                t[i].flags = 0;  // device-readable; consecutive, no AVAIL/USED, no NEXT (2.8.19)
            }
        }
        *ring = {iova_ + sizeof(Desc) * slot * max_, static_cast<uint32_t>(sizeof(Desc) * n), false, true};
        return true;
    }

private:
    Desc* tables_ = nullptr;
    Iova iova_{0};
    uint16_t max_ = 0;
};

}  // namespace vireo
