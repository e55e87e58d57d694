// vireo: the driver side of a split virtqueue (virtio 1.2 section 2.7).
//
// Memory: descriptor table, available ring and used ring in DMA memory from
// DmaMemory (their IOVAs go to the transport). Bookkeeping the device must not
// be able to corrupt (free list links, per-chain state) lives in ordinary
// memory and is never read back from the rings.
//
// Free descriptors: a private linked free list, O(1) per descriptor taken or
// returned, first in first out: a device that completes in order then gets
// descriptor d back in available-ring slot d every lap, and add writes a ring
// entry only when it differs, so those cache lines stay shared with the
// device's core instead of moving to ours and back (DPDK does the same). With
// IN_ORDER, plain counters (descriptors are used in order, 2.7.10.2 / 2.7.13.1).
//
// Checks on every used entry (see VqFault): the used index may advance by at
// most the number of chains in flight; an id must be < size and name a chain
// head in flight; the length may not exceed the chain's device-writable bytes.
// With IN_ORDER only the newest entry of a batch is required to carry an id
// (2.7.10.2), so that entry's id must equal the expected head. The first
// violation stops the queue (reap returns nothing) until reset().
#pragma once

#include <cstdint>
#include <vector>

#include "vireo/iova/dma_memory.hpp"
#include "vireo/pmd/indirect_tables.hpp"
#include "vireo/pmd/virtio_spec.hpp"
#include "vireo/pmd/vq_common.hpp"

namespace vireo {

template <bool InOrder, class Ord = SmpOrdering>
class SplitQueue {
public:
    static constexpr bool kPacked = false;
    static constexpr bool kInOrder = InOrder;
    using Ordering = Ord;
    SplitQueue(DmaMemory& mem, const VqConfig& cfg);
    SplitQueue(const SplitQueue&) = delete;
    SplitQueue& operator=(const SplitQueue&) = delete;

    // For the transport: where the three areas are (IOVA) and how big the queue is.
    Iova desc_iova() const noexcept { return desc_iova_; }
    Iova driver_iova() const noexcept { return avail_iova_; }  // available ring
    Iova device_iova() const noexcept { return used_iova_; }   // used ring
    uint16_t size() const noexcept { return size_; }
    uint16_t free_descs() const noexcept { return num_free_; }
    uint16_t in_flight() const noexcept { return in_flight_; }

    // Posts one chain (not yet visible to the device). cookie must not be null.
    // False when fewer than n descriptors are free.
    bool add(const VqSeg* segs, uint16_t n, void* cookie) noexcept {
        // Hot state in locals: ring stores are uint16_t too, and would force
        // the compiler to reload every uint16_t member after each of them.
        const uint16_t mask = mask_;
        uint16_t num_free = num_free_;
        if (n == 0 || n > num_free) return false;
        virtio::SplitDesc* const desc = desc_;
        uint16_t head, d;
        uint32_t wlen = 0;
        if constexpr (InOrder) {
            head = d = next_desc_;
            for (uint16_t i = 0; i < n; i++) {
                const uint16_t nx = (d + 1) & mask;
                write_desc(desc[d], segs[i], i + 1 < n, nx, wlen);
                if (i + 1 < n) d = nx;
            }
            next_desc_ = (d + 1) & mask;
        } else {
            const uint16_t* const next = next_.data();
            head = d = free_head_;
            for (uint16_t i = 0; i < n; i++) {
                write_desc(desc[d], segs[i], i + 1 < n, next[d], wlen);
                if (i + 1 < n) d = next[d];
            }
            free_head_ = next[d];
        }
        const uint16_t avail_idx = avail_idx_;
        num_free_ = static_cast<uint16_t>(num_free - n);
        chain_[head] = {cookie, wlen, wlen != 0 ? wlen : kAnyLength, n, d};
        set_avail_entry(avail_ring_[avail_idx & mask], head);
        avail_idx_ = static_cast<uint16_t>(avail_idx + 1);
        in_flight_++;
        return true;
    }

    // INDIRECT_DESC (2.7.5.3): a device-readable chain of n <= indirect_max
    // segments in the head's own indirect table, one ring descriptor pointing
    // at it. The table is written before publish() makes the head visible.
    // False when no descriptor is free, n is out of range, or a segment is
    // device-writable (tables here carry Tx chains only).
    bool add_indirect(const VqSeg* segs, uint16_t n, void* cookie) noexcept {
        if (n == 0 || n > indirect_.max() || num_free_ == 0) return false;
        VqSeg table;
        if (!indirect_.write(InOrder ? next_desc_ : free_head_, segs, n, &table)) return false;
        return add(&table, 1, cookie);
    }
    uint16_t indirect_max() const noexcept { return indirect_.max(); }
    Iova indirect_iova() const noexcept { return indirect_.iova(); }  // the tables, size * indirect_max * 16 bytes

    // One device-readable or device-writable buffer.
    bool add1(Iova iova, uint32_t len, bool device_writes, void* cookie) noexcept {
        VqBuf b{iova, len, device_writes, cookie};
        return add_burst(&b, 1) == 1;
    }

    // Posts up to n one-descriptor chains (Rx refill, single-segment Tx):
    // returns how many fit. The whole burst runs on local state.
    uint16_t add_burst(const VqBuf* bufs, uint16_t n) noexcept {
        const uint16_t mask = mask_;
        uint16_t num_free = num_free_, avail_idx = avail_idx_;
        if (n > num_free) n = num_free;
        virtio::SplitDesc* const desc = desc_;
        uint16_t* const ring = avail_ring_;
        Chain* const chain = chain_.data();
        uint16_t d = InOrder ? next_desc_ : free_head_;
        const uint16_t* const next = next_.data();
        for (uint16_t i = 0; i < n; i++) {
            const VqBuf& b = bufs[i];
            const uint16_t nx = InOrder ? static_cast<uint16_t>((d + 1) & mask) : next[d];
            virtio::SplitDesc& x = desc[d];
            x.addr = b.iova.value;
            x.len = b.len;
            x.flags = b.device_writes ? virtio::kDescFWrite : 0;
            x.next = nx;
            chain[d] = {b.cookie, b.device_writes ? b.len : 0, b.device_writes ? b.len : kAnyLength, 1, d};
            set_avail_entry(ring[(avail_idx + i) & mask], d);
            d = nx;
        }
        if constexpr (InOrder)
            next_desc_ = d;
        else
            free_head_ = d;
        num_free_ = static_cast<uint16_t>(num_free - n);
        avail_idx_ = static_cast<uint16_t>(avail_idx + n);
        in_flight_ = static_cast<uint16_t>(in_flight_ + n);
        return n;
    }

    // Makes everything added since the last publish visible: one release store
    // of avail->idx (2.7.13.2), after the descriptors and ring entries.
    void publish() noexcept {
        Ord::release();
        store_release(*avail_idx_p_, avail_idx_);
    }

    // After publish(): must the device be notified? Full fence first, so our
    // idx store is ordered before reading the device's suppression state: the
    // lost-kick race of 2.7.13.4 / 2.7.10.
    bool kick_needed() noexcept {
        const uint16_t old = kicked_idx_, now = avail_idx_;
        if (old == now) return false;
        kicked_idx_ = now;
        Ord::full();
        bool kick = event_idx_ ? virtio::need_event(load_relaxed(*avail_event_p_), now, old)
                               : (load_relaxed(*used_flags_p_) & virtio::kUsedFNoNotify) == 0;
        (kick ? stats_.kicks : stats_.kicks_suppressed)++;
        return kick;
    }

    // The value to write for the notification (NOTIFICATION_DATA, 2.9) or the
    // queue index when that feature is off.
    uint32_t notification_value() const noexcept {
        return notification_data_ ? virtio::notification_data_split(index_, avail_idx_) : index_;
    }

    // Takes up to n completed chains. Stops at the first invalid entry.
    uint16_t reap(VqUsed* out, uint16_t n) noexcept {
        if (fault_ != VqFault::None) return 0;
        const uint16_t used_idx = load_acquire(*used_idx_p_);
        const uint16_t last_used = last_used_, in_flight = in_flight_;
        const uint16_t ready = static_cast<uint16_t>(used_idx - last_used);
        if (ready == 0) return 0;
        if (ready > in_flight) return stop(VqFault::UsedIdxTooFarAhead, 0);
        Ord::acquire();  // entries are read after the index
        const uint16_t take = ready < n ? ready : n, mask = mask_, size = size_;
        const virtio::UsedElem* const ring = used_ring_;
        Chain* const chain = chain_.data();
        uint16_t* const next = next_.data();
        uint16_t free_head = free_head_, free_tail = free_tail_, used_head = used_head_, freed = 0;
        VqFault fault = VqFault::None;
        uint16_t done = 0;
        for (; done < take; done++) {
            const virtio::UsedElem& e = ring[(last_used + done) & mask];
            const uint32_t id = load_relaxed(e.id), len = load_relaxed(e.len);
            uint16_t head;
            if constexpr (InOrder) {
                head = used_head;
                // Only the newest entry of the device's batch must carry the id.
                if (static_cast<uint16_t>(last_used + done + 1) == used_idx && id != head) {
                    fault = id >= size ? VqFault::UsedIdOutOfRange : VqFault::UsedIdNotInFlight;
                    break;
                }
            } else {
                if (id >= size) {
                    fault = VqFault::UsedIdOutOfRange;
                    break;
                }
                head = static_cast<uint16_t>(id);
                if (chain[head].cookie == nullptr) {
                    fault = VqFault::UsedIdNotInFlight;
                    break;
                }
            }
            Chain& c = chain[head];
            if (len > c.limit) {
                fault = VqFault::UsedLenTooLong;
                break;
            }
            out[done] = {c.cookie, c.wlen != 0 ? len : 0};
            if constexpr (InOrder) {
                used_head = static_cast<uint16_t>((c.tail + 1) & mask);
            } else {  // onto the tail of the free list
                if (num_free_ + freed == 0)
                    free_head = head;
                else
                    next[free_tail] = head;
                free_tail = c.tail;
            }
            freed = static_cast<uint16_t>(freed + c.ndesc);
            c.cookie = nullptr;
        }
        free_head_ = free_head;
        free_tail_ = free_tail;
        used_head_ = used_head;
        num_free_ = static_cast<uint16_t>(num_free_ + freed);
        in_flight_ = static_cast<uint16_t>(in_flight - done);
        if (fault != VqFault::None) return stop(fault, done);
        last_used_ = static_cast<uint16_t>(last_used + done);
        return done;
    }

    VqFault fault() const noexcept { return fault_; }
    // Interrupt mode (2.7.7, 2.7.10): asks the device to notify when it uses
    // the next buffer (EVENT_IDX: used_event = the next used index to read;
    // else the NO_INTERRUPT flag cleared), then looks once more. False when a
    // used entry is already there: the caller must poll, not sleep.
    bool enable_used_notify() noexcept {
        if (event_idx_)
            store_relaxed(*used_event_p_, last_used_);
        else
            store_relaxed(*avail_flags_p_, uint16_t{0});
        Ord::full();  // published before the look at the used index (the device does the reverse)
        return load_acquire(*used_idx_p_) == last_used_;
    }
    // Back to polling: no notifications (EVENT_IDX: half a ring of indices behind, as at init).
    void disable_used_notify() noexcept {
        if (event_idx_)
            store_relaxed(*used_event_p_, static_cast<uint16_t>(last_used_ + 0x8000));
        else
            store_relaxed(*avail_flags_p_, virtio::kAvailFNoInterrupt);
    }

    bool needs_reset() const noexcept { return fault_ != VqFault::None; }
    const VqStats& stats() const noexcept { return stats_; }

    // Back to the initial state (device reset or queue reset): every chain in
    // flight is handed to on_inflight(cookie) exactly once; the ring memory is
    // cleared. Slow path: O(size).
    template <class F>
    void reset(F&& on_inflight) {
        for (uint16_t i = 0; i < size_; i++)
            if (chain_[i].cookie != nullptr) on_inflight(chain_[i].cookie);
        init();
    }

private:
    struct Chain {
        void* cookie;    // null when this descriptor heads no chain in flight
        uint32_t wlen;   // device-writable bytes posted
        uint32_t limit;  // largest acceptable used length: wlen; a read-only chain's is ignored
        uint16_t ndesc;
        uint16_t tail;  // last descriptor of the chain
    };

    // The device only reads the available ring: an entry that already holds
    // the value keeps its cache line clean (and shared with the device).
    static void set_avail_entry(uint16_t& entry, uint16_t d) noexcept {
        if (entry != d) entry = d;
    }

    static void write_desc(virtio::SplitDesc& x, const VqSeg& s, bool more, uint16_t next, uint32_t& wlen) noexcept {
        x.addr = s.iova.value;
        x.len = s.len;
        x.flags = static_cast<uint16_t>((more ? virtio::kDescFNext : 0) | (s.device_writes ? virtio::kDescFWrite : 0) |
                                        (s.indirect ? virtio::kDescFIndirect : 0));
        x.next = next;
        wlen += s.device_writes ? s.len : 0;
    }

    uint16_t stop(VqFault f, uint16_t done) noexcept {
        last_used_ = static_cast<uint16_t>(last_used_ + done);
        fault_ = f;
        stats_.faults++;
        return done;
    }

    void init() noexcept;

    // Device-visible memory.
    virtio::SplitDesc* desc_ = nullptr;
    IndirectTables<virtio::SplitDesc> indirect_;  // one table per head
    uint16_t* avail_flags_p_ = nullptr;
    uint16_t* avail_idx_p_ = nullptr;
    uint16_t* avail_ring_ = nullptr;
    uint16_t* used_event_p_ = nullptr;
    uint16_t* used_flags_p_ = nullptr;
    uint16_t* used_idx_p_ = nullptr;
    virtio::UsedElem* used_ring_ = nullptr;
    uint16_t* avail_event_p_ = nullptr;
    Iova desc_iova_{0}, avail_iova_{0}, used_iova_{0};
    size_t desc_bytes_ = 0, avail_bytes_ = 0, used_bytes_ = 0;

    // Driver-private state.
    const uint16_t size_;
    const uint16_t mask_;
    const uint16_t index_;
    const bool event_idx_;
    const bool notification_data_;
    uint16_t avail_idx_ = 0;   // next available index to publish
    uint16_t kicked_idx_ = 0;  // avail_idx_ at the last kick decision
    uint16_t last_used_ = 0;   // next used index to read
    uint16_t num_free_ = 0;
    uint16_t in_flight_ = 0;  // chains posted and not yet reaped
    uint16_t free_head_ = 0;  // !InOrder: free list, taken from the head
    uint16_t free_tail_ = 0;  // !InOrder: returned to the tail (valid while num_free_ != 0)
    uint16_t next_desc_ = 0;  // InOrder: next descriptor to fill
    uint16_t used_head_ = 0;  // InOrder: head of the oldest chain in flight
    VqFault fault_ = VqFault::None;
    VqStats stats_;
    std::vector<uint16_t> next_;  // free list links (!InOrder)
    std::vector<Chain> chain_;    // by head descriptor
};

}  // namespace vireo
