// SplitQueue: construction and reset (the slow path); the data path is inline
// in split_queue.hpp.
#include "vireo/pmd/split_queue.hpp"

#include <bit>
#include <cstring>
#include <string>

#include "vireo/base/error.hpp"

namespace vireo {

template <bool InOrder, class Ord>
SplitQueue<InOrder, Ord>::SplitQueue(DmaMemory& mem, const VqConfig& cfg)
    : size_(cfg.size),
      mask_(static_cast<uint16_t>(cfg.size - 1)),
      index_(cfg.index),
      event_idx_(cfg.event_idx),
      notification_data_(cfg.notification_data) {
    if (cfg.size == 0 || !std::has_single_bit(cfg.size) || cfg.size > virtio::kSplitMaxSize)
        throw Error("split virtqueue size " + std::to_string(cfg.size) +
                    " is not a power of two from 1 to 32768 (virtio 1.2 section 2.7)");
    // 2.7: descriptor table 16 * size; available ring 6 + 2 * size; used ring
    // 6 + 8 * size. Each area starts on its own cache line.
    desc_bytes_ = sizeof(virtio::SplitDesc) * size_;
    avail_bytes_ = 6 + 2u * size_;
    used_bytes_ = 6 + sizeof(virtio::UsedElem) * size_;
    DmaChunk d = mem.allocate(desc_bytes_, 64), a = mem.allocate(avail_bytes_, 64), u = mem.allocate(used_bytes_, 64);
    desc_ = reinterpret_cast<virtio::SplitDesc*>(d.va);
    desc_iova_ = d.iova;
    auto* av = reinterpret_cast<uint16_t*>(a.va);
    avail_flags_p_ = av;
    avail_idx_p_ = av + 1;
    avail_ring_ = av + 2;
    used_event_p_ = av + 2 + size_;
    avail_iova_ = a.iova;
    auto* us = reinterpret_cast<uint16_t*>(u.va);
    used_flags_p_ = us;
    used_idx_p_ = us + 1;
    used_ring_ = reinterpret_cast<virtio::UsedElem*>(us + 2);
    avail_event_p_ = reinterpret_cast<uint16_t*>(used_ring_ + size_);
    used_iova_ = u.iova;
    indirect_.allocate(mem, size_, cfg.indirect_max);
    next_.resize(size_);
    chain_.resize(size_);
    init();
}

template <bool InOrder, class Ord>
void SplitQueue<InOrder, Ord>::init() noexcept {
    std::memset(static_cast<void*>(desc_), 0, desc_bytes_);
    std::memset(avail_flags_p_, 0, avail_bytes_);
    std::memset(used_flags_p_, 0, used_bytes_);
    // We poll: ask for no used-buffer notifications (2.7.7). With EVENT_IDX the
    // flag is ignored and used_event decides; we leave it half a ring of
    // indices behind, so a device notifies at most once per 2^16 completions.
    *avail_flags_p_ = virtio::kAvailFNoInterrupt;
    *used_event_p_ = 0x8000;
    for (uint16_t i = 0; i < size_; i++) {
        next_[i] = static_cast<uint16_t>((i + 1) & mask_);
        chain_[i] = {nullptr, 0, 0, 0, 0};
    }
    avail_idx_ = kicked_idx_ = last_used_ = 0;
    num_free_ = size_;
    in_flight_ = 0;
    free_head_ = next_desc_ = used_head_ = 0;
    free_tail_ = static_cast<uint16_t>(size_ - 1);
    fault_ = VqFault::None;
}

template class SplitQueue<false, SmpOrdering>;
template class SplitQueue<true, SmpOrdering>;
template class SplitQueue<false, PlatformOrdering>;
template class SplitQueue<true, PlatformOrdering>;

std::string_view to_string(VqFault f) noexcept {
    switch (f) {
    case VqFault::None: return "none";
    case VqFault::UsedIdOutOfRange: return "used id out of range";
    case VqFault::UsedIdNotInFlight: return "used id not in flight";
    case VqFault::UsedLenTooLong: return "used length larger than the posted buffer";
    case VqFault::UsedIdxTooFarAhead: return "used index ahead of the chains in flight";
    case VqFault::PackedFlagsInconsistent: return "packed descriptor with inconsistent AVAIL/USED bits";
    case VqFault::UsedWithNothingInFlight: return "used descriptor with nothing in flight";
    }
    return "?";
}

}  // namespace vireo
