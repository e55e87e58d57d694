// vireo: the driver side of a packed virtqueue (virtio 1.2 section 2.8).
//
// One descriptor ring plus the driver and device event suppression structures
// in DMA memory. A descriptor is available when its AVAIL bit equals the
// driver's wrap counter and USED differs; used when both equal the device's
// wrap counter (2.8.1). A burst is published by writing every descriptor
// except the first head's flags, one release fence, then that flag (2.8.6:
// the device reads in ring order, so nothing later is seen before it).
//
// Buffer ids: a private stack of free ids, O(1); with IN_ORDER the id is the
// head's ring position and a single used descriptor may complete a batch
// (2.8.9), walked buffer by buffer.
//
// Checks on every used descriptor (see VqFault): the descriptor at the next
// used position was posted with AVAIL = w, USED = !w (w: the wrap counter it
// was posted under), so only (w, !w) "pending" and (w, w) "used" are legal
// there; anything else is a fault. With nothing in flight, a used-looking
// descriptor is a fault. The id must be < size and in flight (with IN_ORDER:
// inside the window of buffers in flight); the length may not exceed the
// buffer's device-writable bytes.
#pragma once

#include <cstdint>
#include <vector>

#include "vireo/iova/dma_memory.hpp"
#include "vireo/pmd/indirect_tables.hpp"
#include "vireo/pmd/isa.hpp"
#include "vireo/pmd/virtio_spec.hpp"
#include "vireo/pmd/vq_common.hpp"
#include "vireo/pmd/vq_simd.hpp"

namespace vireo {

// I: the instruction set the queue may use (vq_simd.hpp's kernels for Avx512).
template <bool InOrder, class Ord = SmpOrdering, Isa I = Isa::Baseline>
class PackedQueue {
public:
    static constexpr bool kPacked = true;
    static constexpr bool kInOrder = InOrder;
    using Ordering = Ord;
    PackedQueue(DmaMemory& mem, const VqConfig& cfg);
    PackedQueue(const PackedQueue&) = delete;
    PackedQueue& operator=(const PackedQueue&) = delete;

    Iova desc_iova() const noexcept { return desc_iova_; }
    Iova driver_iova() const noexcept { return driver_event_iova_; }  // driver event suppression
    Iova device_iova() const noexcept { return device_event_iova_; }  // device event suppression
    uint16_t size() const noexcept { return size_; }
    uint16_t free_descs() const noexcept { return num_free_; }
    uint16_t in_flight() const noexcept { return in_flight_; }

    bool add(const VqSeg* segs, uint16_t n, void* cookie) noexcept {
        if (n == 0 || n > num_free_) return false;
        const uint16_t head = next_avail_;
        uint16_t id;
        if constexpr (InOrder) {
            id = head;
        } else {
            id = free_ids_[--num_free_ids_];
        }
        const uint16_t head_flags = chain_flags(segs[0], n > 1);
        uint32_t wlen = segs[0].device_writes ? segs[0].len : 0;
        desc_[head].addr = segs[0].iova.value;
        desc_[head].len = segs[0].len;
        desc_[head].id = id;
        advance_avail();
        for (uint16_t i = 1; i < n; i++) {
            virtio::PackedDesc& x = desc_[next_avail_];
            x.addr = segs[i].iova.value;
            x.len = segs[i].len;
            x.id = id;
            // Not a head: its flags may be written at once (the head guards it).
            store_release(x.flags, chain_flags(segs[i], i + 1 < n));
            wlen += segs[i].device_writes ? segs[i].len : 0;
            advance_avail();
        }
        if (pending_heads_++ == 0) {  // the burst's first head: written by publish()
            first_head_ = head;
            first_head_flags_ = head_flags;
        } else {
            store_release(desc_[head].flags, head_flags);
        }
        num_free_ = static_cast<uint16_t>(num_free_ - n);
        chain_[id] = {cookie, wlen, wlen != 0 ? wlen : kAnyLength, n};
        in_flight_++;
        return true;
    }

    // INDIRECT_DESC (2.8.19): a device-readable chain of n <= indirect_max
    // segments in the buffer id's own table (consecutive descriptors, no
    // NEXT), one ring descriptor pointing at it. False when no descriptor or
    // id is free, n is out of range, or a segment is device-writable.
    bool add_indirect(const VqSeg* segs, uint16_t n, void* cookie) noexcept {
        if (num_free_ == 0) return false;
        if constexpr (!InOrder)
            if (num_free_ids_ == 0) return false;
        VqSeg table;
        if (!indirect_.write(InOrder ? next_avail_ : free_ids_[num_free_ids_ - 1], segs, n, &table)) return false;
        return add(&table, 1, cookie);
    }
    uint16_t indirect_max() const noexcept { return indirect_.max(); }
    Iova indirect_iova() const noexcept { return indirect_.iova(); }  // the tables, size * indirect_max * 16 bytes

    bool add1(Iova iova, uint32_t len, bool device_writes, void* cookie) noexcept {
        VqBuf b{iova, len, device_writes, cookie};
        return add_burst(&b, 1) == 1;
    }

    // Posts up to n one-descriptor buffers; returns how many fit. Local state
    // for the whole burst; every head but the burst's first is flagged at once
    // (the first is written by publish()).
    uint16_t add_burst(const VqBuf* bufs, uint16_t n) noexcept {
        uint16_t num_free = num_free_;
        if (n > num_free) n = num_free;
        if (n == 0) return 0;
        virtio::PackedDesc* const desc = desc_;
        Chain* const chain = chain_.data();
        uint16_t* const free_ids = free_ids_.data();
        const uint16_t size = size_;
        uint16_t pos = next_avail_, nfree_ids = num_free_ids_, bits = avail_used_bits_;
        bool wrap = avail_wrap_;
        uint16_t i = 0;
#if defined(VIREO_HAVE_AVX512_KERNELS)
        if constexpr (I == Isa::Avx512) {
            if (pending_heads_ == 0 && (pos & 3) == 0 && n >= 4 && pos + 4 <= size) {
                // The window opens with a whole line: its first flags wait for publish().
                uint16_t ids[4];
                for (int k = 0; k < 4; k++) {
                    ids[k] = InOrder ? static_cast<uint16_t>(pos + k) : free_ids[--nfree_ids];
                    const VqBuf& b = bufs[k];
                    chain[ids[k]] = {b.cookie, b.device_writes ? b.len : 0, b.device_writes ? b.len : kAnyLength, 1};
                }
                simd::packed_write4_avx512(desc + pos, bufs, ids, bits, true);
                first_head_ = pos;
                first_head_flags_ = static_cast<uint16_t>(bits | (bufs[0].device_writes ? virtio::kDescFWrite : 0));
                pos = static_cast<uint16_t>(pos + 4);
                if (pos == size) {
                    pos = 0;
                    wrap = !wrap;
                    bits ^= virtio::kPackedDescFAvail | virtio::kPackedDescFUsed;
                }
                i = 4;
            }
        }
        if (pending_heads_ == 0 && i == 0) {  // this burst opens the publish window
#else
        if (pending_heads_ == 0) {  // this burst opens the publish window
#endif
            const VqBuf& b = bufs[0];
            const uint16_t id = InOrder ? pos : free_ids[--nfree_ids];
            desc[pos].addr = b.iova.value;  // flags stay as they are until publish()
            desc[pos].len = b.len;
            desc[pos].id = id;
            chain[id] = {b.cookie, b.device_writes ? b.len : 0, b.device_writes ? b.len : kAnyLength, 1};
            first_head_ = pos;
            first_head_flags_ = static_cast<uint16_t>(bits | (b.device_writes ? virtio::kDescFWrite : 0));
            if (++pos == size) {
                pos = 0;
                wrap = !wrap;
                bits ^= virtio::kPackedDescFAvail | virtio::kPackedDescFUsed;
            }
            i = 1;
        }
        for (; i < n; i++) {
#if defined(VIREO_HAVE_AVX512_KERNELS)
            // Whole cache lines of descriptors at once (the ring is 64-byte aligned).
            if constexpr (I == Isa::Avx512) {
                while ((pos & 3) == 0 && i + 4 <= n && pos + 4 <= size) {
                    uint16_t ids[4];
                    for (int k = 0; k < 4; k++) {
                        ids[k] = InOrder ? static_cast<uint16_t>(pos + k) : free_ids[--nfree_ids];
                        const VqBuf& b = bufs[i + k];
                        chain[ids[k]] = {b.cookie, b.device_writes ? b.len : 0, b.device_writes ? b.len : kAnyLength,
                                         1};
                    }
                    simd::packed_write4_avx512(desc + pos, bufs + i, ids, bits, false);
                    pos = static_cast<uint16_t>(pos + 4);
                    i += 4;
                    if (pos == size) {
                        pos = 0;
                        wrap = !wrap;
                        bits ^= virtio::kPackedDescFAvail | virtio::kPackedDescFUsed;
                    }
                }
                if (i == n) break;
            }
#endif
            const VqBuf& b = bufs[i];
            const uint16_t id = InOrder ? pos : free_ids[--nfree_ids];
            virtio::PackedDesc& x = desc[pos];
            x.addr = b.iova.value;
            x.len = b.len;
            x.id = id;
            store_release(x.flags, static_cast<uint16_t>(bits | (b.device_writes ? virtio::kDescFWrite : 0)));
            chain[id] = {b.cookie, b.device_writes ? b.len : 0, b.device_writes ? b.len : kAnyLength, 1};
            if (++pos == size) {
                pos = 0;
                wrap = !wrap;
                bits ^= virtio::kPackedDescFAvail | virtio::kPackedDescFUsed;
            }
        }
        next_avail_ = pos;
        avail_wrap_ = wrap;
        avail_used_bits_ = bits;
        num_free_ids_ = nfree_ids;
        num_free_ = static_cast<uint16_t>(num_free - n);
        in_flight_ = static_cast<uint16_t>(in_flight_ + n);
        pending_heads_ = static_cast<uint16_t>(pending_heads_ + n);
        added_since_kick_ = static_cast<uint16_t>(added_since_kick_ + n);
        return n;
    }

    void publish() noexcept {
        if (pending_heads_ == 0) return;
        Ord::release();  // every descriptor of the burst before the first head's flags
        store_release(desc_[first_head_].flags, first_head_flags_);
        pending_heads_ = 0;
    }

    // Interrupt mode (2.8.10, 2.8.21.3.1): asks the device to notify when it
    // uses the next buffer (EVENT_IDX: that descriptor's position; else any),
    // then looks once more. False when a used buffer is already there: the
    // caller must poll, not sleep (it would wait for a notification the device
    // already decided not to send).
    bool enable_used_notify() noexcept {
        if (event_idx_) {
            store_relaxed(driver_event_->off_wrap, static_cast<uint16_t>(next_used_ | (used_wrap_ ? 0x8000 : 0)));
            Ord::release();
            store_relaxed(driver_event_->flags, virtio::kRingEventFDesc);
        } else {
            store_relaxed(driver_event_->flags, virtio::kRingEventFEnable);
        }
        Ord::full();  // the flags before the look at the ring (the device does the reverse)
        if (batch_open_) return false;
        const uint16_t used_bits = used_wrap_ ? (virtio::kPackedDescFAvail | virtio::kPackedDescFUsed) : 0;
        return in_flight_ == 0 || (load_acquire(desc_[next_used_].flags) &
                                   (virtio::kPackedDescFAvail | virtio::kPackedDescFUsed)) != used_bits;
    }
    // Back to polling: no notifications.
    void disable_used_notify() noexcept { store_relaxed(driver_event_->flags, virtio::kRingEventFDisable); }

    // After publish(): full fence, then the device event suppression structure
    // (2.8.10, 2.8.21.3): ENABLE kicks, DISABLE does not, DESC kicks when the
    // device's chosen descriptor lies among those just made available.
    bool kick_needed() noexcept {
        const uint16_t added = added_since_kick_;
        if (added == 0) return false;
        added_since_kick_ = 0;
        Ord::full();
        const uint16_t flags = load_relaxed(device_event_->flags);
        bool kick;
        if (flags == virtio::kRingEventFDesc && event_idx_) {
            const uint16_t off_wrap = load_relaxed(device_event_->off_wrap);
            uint16_t event = off_wrap & 0x7fff;
            const bool wrap = (off_wrap >> 15) != 0;
            // Work in one frame: positions of this lap; an event on the
            // previous lap sits one ring size lower.
            const uint16_t now = next_avail_, old = static_cast<uint16_t>(now - added);
            if (wrap != avail_wrap_) event = static_cast<uint16_t>(event - size_);
            kick = virtio::need_event(event, now, old);
        } else {
            kick = flags != virtio::kRingEventFDisable;
        }
        (kick ? stats_.kicks : stats_.kicks_suppressed)++;
        return kick;
    }

    uint32_t notification_value() const noexcept {
        return notification_data_ ? virtio::notification_data_packed(index_, next_avail_, avail_wrap_) : index_;
    }

    uint16_t reap(VqUsed* out, uint16_t n) noexcept {
        if (fault_ != VqFault::None) return 0;
        uint16_t done = 0;
        if constexpr (InOrder) done = drain_batch(out, done, n);
        // Local state: descriptor stores are uint16_t too (see SplitQueue::add).
        const virtio::PackedDesc* const desc = desc_;
        Chain* const chain = chain_.data();
        const uint16_t size = size_;
        uint16_t pos = next_used_, in_flight = in_flight_, freed = 0;
        bool w = used_wrap_;
        VqFault fault = VqFault::None;
        const bool guard = pending_heads_ != 0;  // added, not yet published: stop at first_head_
        if constexpr (InOrder) {
            // The common case first, in a tight loop: the device wrote every
            // used descriptor (id = its position) of one-descriptor buffers.
            // Anything else (pending, a batch, a fault, the ring's end) stops
            // it and the general loop below looks again, with every check.
            uint32_t room = static_cast<uint32_t>(n - done);
            if (room > in_flight) room = in_flight;
            if (room > static_cast<uint32_t>(size - pos)) room = static_cast<uint32_t>(size - pos);
            if (guard && first_head_ >= pos && room > static_cast<uint32_t>(first_head_ - pos))
                room = static_cast<uint32_t>(first_head_ - pos);
            const uint16_t used_bits = w ? (virtio::kPackedDescFAvail | virtio::kPackedDescFUsed) : 0;
            uint32_t k = 0;
            for (; k < room; k++) {
                const virtio::PackedDesc& d = desc[pos + k];
                const uint16_t flags = load_acquire(d.flags);
                if ((flags & (virtio::kPackedDescFAvail | virtio::kPackedDescFUsed)) != used_bits) break;
                const uint16_t id = load_relaxed(d.id);
                const uint32_t len = load_relaxed(d.len);
                Chain& c = chain[static_cast<uint16_t>(pos + k)];
                if (id != static_cast<uint16_t>(pos + k) || c.ndesc != 1 || len > c.limit || c.cookie == nullptr) break;
                out[done++] = {c.cookie, c.wlen != 0 ? len : 0};
                c.cookie = nullptr;
            }
            pos = static_cast<uint16_t>(pos + k);
            in_flight = static_cast<uint16_t>(in_flight - k);
            freed = static_cast<uint16_t>(freed + k);
            if (pos == size) {
                pos = 0;
                w = !w;
            }
        }
        while (done < n) {
            if (guard && pos == first_head_) break;
            const virtio::PackedDesc& d = desc[pos];
            const uint16_t flags = load_acquire(d.flags);
            const bool a = (flags & virtio::kPackedDescFAvail) != 0, u = (flags & virtio::kPackedDescFUsed) != 0;
            if (in_flight == 0) {  // stale from the last lap, unless the device claims a completion
                if (a == w && u == w) fault = VqFault::UsedWithNothingInFlight;
                break;
            }
            // Every descriptor from next_used_ on was posted with AVAIL = w,
            // USED = !w; the device may only turn both to w.
            if (a == w && u != w) break;  // still pending
            if (a != w || u != w) {
                fault = VqFault::PackedFlagsInconsistent;
                break;
            }
            Ord::acquire();
            const uint16_t id = load_relaxed(d.id);
            const uint32_t len = load_relaxed(d.len);
            if (id >= size) {
                fault = VqFault::UsedIdOutOfRange;
                break;
            }
            if (!InOrder || id == pos) {  // one buffer (with IN_ORDER: a batch of one, the usual case)
                Chain& c = chain[id];
                if (c.cookie == nullptr) {
                    fault = VqFault::UsedIdNotInFlight;
                    break;
                }
                if (len > c.limit) {
                    fault = VqFault::UsedLenTooLong;
                    break;
                }
                out[done++] = {c.cookie, c.wlen != 0 ? len : 0};
                if constexpr (!InOrder) free_ids_[num_free_ids_++] = id;
                c.cookie = nullptr;
                freed = static_cast<uint16_t>(freed + c.ndesc);
                in_flight--;
                uint32_t p = uint32_t{pos} + c.ndesc;
                if (p >= size) {
                    p -= size;
                    w = !w;
                }
                pos = static_cast<uint16_t>(p);
            } else {
                // One used descriptor may stand for a batch ending at buffer id
                // (2.8.9): remember it, then hand the batch out in order.
                next_used_ = pos;
                used_wrap_ = w;
                in_flight_ = in_flight;
                if (!in_window(id)) {
                    fault = VqFault::UsedIdNotInFlight;
                    break;
                }
                if (len > chain[id].limit) {
                    fault = VqFault::UsedLenTooLong;
                    break;
                }
                batch_open_ = true;
                batch_last_ = id;
                batch_len_ = chain[id].wlen != 0 ? len : 0;
                done = drain_batch(out, done, n);
                pos = next_used_;
                w = used_wrap_;
                in_flight = in_flight_;
            }
        }
        next_used_ = pos;
        used_wrap_ = w;
        in_flight_ = in_flight;
        num_free_ = static_cast<uint16_t>(num_free_ + freed);
        if (fault != VqFault::None) return stop(fault, done);
        return done;
    }

    VqFault fault() const noexcept { return fault_; }
    bool needs_reset() const noexcept { return fault_ != VqFault::None; }
    const VqStats& stats() const noexcept { return stats_; }

    template <class F>
    void reset(F&& on_inflight) {
        for (uint16_t i = 0; i < size_; i++)
            if (chain_[i].cookie != nullptr) on_inflight(chain_[i].cookie);
        init();
    }

private:
    struct Chain {
        void* cookie;
        uint32_t wlen;   // device-writable bytes posted
        uint32_t limit;  // largest acceptable used length: wlen; a read-only buffer's is ignored
        uint16_t ndesc;
    };

    uint16_t chain_flags(const VqSeg& s, bool more) const noexcept {
        return static_cast<uint16_t>(avail_used_bits_ | (more ? virtio::kDescFNext : 0) |
                                     (s.device_writes ? virtio::kDescFWrite : 0) |
                                     (s.indirect ? virtio::kDescFIndirect : 0));
    }
    void advance_avail() noexcept {
        added_since_kick_++;
        if (++next_avail_ == size_) {
            next_avail_ = 0;
            avail_wrap_ = !avail_wrap_;
            avail_used_bits_ ^= virtio::kPackedDescFAvail | virtio::kPackedDescFUsed;
        }
    }
    // Is id the head of a buffer in flight? With IN_ORDER heads are the
    // positions from next_used_ onwards; walk them (bounded by in_flight_).
    bool in_window(uint16_t id) const noexcept {
        uint16_t pos = next_used_;
        for (uint16_t k = 0; k < in_flight_; k++) {
            if (pos == id) return chain_[pos].cookie != nullptr;
            pos = static_cast<uint16_t>(pos + chain_[pos].ndesc);
            if (pos >= size_) pos = static_cast<uint16_t>(pos - size_);
        }
        return false;
    }
    // IN_ORDER: hands out the open batch (buffers from next_used_ through
    // batch_last_) as far as out has room; lengths are reported for the
    // batch's last buffer only (2.8.9).
    uint16_t drain_batch(VqUsed* out, uint16_t done, uint16_t n) noexcept {
        while (batch_open_ && done < n) {
            Chain& c = chain_[next_used_];
            const bool last = next_used_ == batch_last_;
            out[done++] = {c.cookie, last ? batch_len_ : 0};
            complete(c);
            if (last) batch_open_ = false;
        }
        return done;
    }
    // Releases the buffer whose head sits at next_used_ and moves past it.
    void complete(Chain& c) noexcept {
        uint32_t nu = uint32_t{next_used_} + c.ndesc;
        if (nu >= size_) {
            nu -= size_;
            used_wrap_ = !used_wrap_;
        }
        next_used_ = static_cast<uint16_t>(nu);
        num_free_ = static_cast<uint16_t>(num_free_ + c.ndesc);
        in_flight_--;
        c.cookie = nullptr;
    }
    uint16_t stop(VqFault f, uint16_t done) noexcept {
        fault_ = f;
        stats_.faults++;
        return done;
    }
    void init() noexcept;

    virtio::PackedDesc* desc_ = nullptr;
    IndirectTables<virtio::PackedDesc> indirect_;  // one table per buffer id
    virtio::PackedEvent* driver_event_ = nullptr;
    virtio::PackedEvent* device_event_ = nullptr;
    Iova desc_iova_{0}, driver_event_iova_{0}, device_event_iova_{0};

    const uint16_t size_;
    const uint16_t index_;
    const bool event_idx_;
    const bool notification_data_;
    uint16_t next_avail_ = 0;
    bool avail_wrap_ = true;  // 2.8.1: both wrap counters start at 1
    uint16_t avail_used_bits_ = virtio::kPackedDescFAvail;
    uint16_t next_used_ = 0;
    bool used_wrap_ = true;
    uint16_t num_free_ = 0;
    uint16_t in_flight_ = 0;
    uint16_t num_free_ids_ = 0;
    uint16_t added_since_kick_ = 0;
    uint16_t pending_heads_ = 0;
    uint16_t first_head_ = 0;
    uint16_t first_head_flags_ = 0;
    bool batch_open_ = false;  // IN_ORDER: a batch reported by one used descriptor, partly handed out
    uint16_t batch_last_ = 0;
    uint32_t batch_len_ = 0;
    VqFault fault_ = VqFault::None;
    VqStats stats_;
    std::vector<uint16_t> free_ids_;  // !InOrder
    std::vector<Chain> chain_;        // by buffer id
};

}  // namespace vireo
