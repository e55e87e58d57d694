// PackedQueue: construction and reset (the slow path); the data path is
// inline in packed_queue.hpp.
#include "vireo/pmd/packed_queue.hpp"

#include <cstring>
#include <string>

#include "vireo/base/error.hpp"

namespace vireo {

template <bool InOrder, class Ord, Isa I>
PackedQueue<InOrder, Ord, I>::PackedQueue(DmaMemory& mem, const VqConfig& cfg)
    : size_(cfg.size), index_(cfg.index), event_idx_(cfg.event_idx), notification_data_(cfg.notification_data) {
    if (cfg.size == 0 || cfg.size > virtio::kPackedMaxSize)
        throw Error("packed virtqueue size " + std::to_string(cfg.size) +
                    " is not from 1 to 32768 (virtio 1.2 section 2.8.10.1)");
    // 2.8.10: descriptor ring 16 * size, aligned to 16; each event
    // suppression structure 4 bytes, aligned to 4; each on its own cache line.
    DmaChunk d = mem.allocate(sizeof(virtio::PackedDesc) * size_, 64);
    DmaChunk drv = mem.allocate(sizeof(virtio::PackedEvent), 64);
    DmaChunk dev = mem.allocate(sizeof(virtio::PackedEvent), 64);
    desc_ = reinterpret_cast<virtio::PackedDesc*>(d.va);
    driver_event_ = reinterpret_cast<virtio::PackedEvent*>(drv.va);
    device_event_ = reinterpret_cast<virtio::PackedEvent*>(dev.va);
    desc_iova_ = d.iova;
    driver_event_iova_ = drv.iova;
    device_event_iova_ = dev.iova;
    indirect_.allocate(mem, size_, cfg.indirect_max);
    free_ids_.resize(size_);
    chain_.resize(size_);
    init();
}

template <bool InOrder, class Ord, Isa I>
void PackedQueue<InOrder, Ord, I>::init() noexcept {
    std::memset(static_cast<void*>(desc_), 0, sizeof(virtio::PackedDesc) * size_);
    std::memset(static_cast<void*>(device_event_), 0, sizeof(virtio::PackedEvent));
    // We poll: no used-buffer notifications please (2.8.10).
    driver_event_->off_wrap = 0;
    driver_event_->flags = virtio::kRingEventFDisable;
    for (uint16_t i = 0; i < size_; i++) {
        free_ids_[i] = static_cast<uint16_t>(size_ - 1 - i);  // id 0 first
        chain_[i] = {nullptr, 0, 0, 0};
    }
    num_free_ids_ = size_;
    next_avail_ = next_used_ = 0;
    avail_wrap_ = used_wrap_ = true;
    avail_used_bits_ = virtio::kPackedDescFAvail;
    num_free_ = size_;
    in_flight_ = added_since_kick_ = pending_heads_ = 0;
    batch_open_ = false;
    fault_ = VqFault::None;
}

// Every kind for every instruction-set level (data_paths.hpp); the members
// compiled here are the slow path (construction, reset): baseline code that
// may call a kernel only when the type's level was chosen from CPUID.
#define VIREO_PACKED_KINDS(I)                               \
    template class PackedQueue<false, SmpOrdering, I>;      \
    template class PackedQueue<true, SmpOrdering, I>;       \
    template class PackedQueue<false, PlatformOrdering, I>; \
    template class PackedQueue<true, PlatformOrdering, I>;
VIREO_PACKED_KINDS(Isa::Baseline)
VIREO_PACKED_KINDS(Isa::Avx2)
VIREO_PACKED_KINDS(Isa::Avx512)

}  // namespace vireo
