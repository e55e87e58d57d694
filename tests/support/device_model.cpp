// Device side of split (virtio 1.2 section 2.7) and packed (2.8) virtqueues,
// for tests. Layout offsets are spelled out here from the spec on purpose:
// nothing is shared with vireo's driver.
#include "device_model.hpp"

#include <atomic>
#include <cstring>

namespace vireo::test {
namespace {

template <class T>
T rd(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
template <class T>
void wr(uint8_t* p, T v) {
    std::memcpy(p, &v, sizeof v);
}
uint16_t rd16_acquire(const uint8_t* p) {
    return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(const_cast<uint8_t*>(p)))
        .load(std::memory_order_acquire);
}
// Notification suppression fields (the split ring's used flags and
// avail_event, the packed ring's device event area): the driver reads them
// while the device changes them, so both sides access them atomically.
void wr16_relaxed(uint8_t* p, uint16_t v) {
    std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).store(v, std::memory_order_relaxed);
}
void wr16_release(uint8_t* p, uint16_t v) {
    std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).store(v, std::memory_order_release);
}

constexpr uint16_t F_NEXT = 1, F_WRITE = 2, F_INDIRECT = 4;
constexpr uint16_t F_AVAIL = 1 << 7, F_USED = 1 << 15;

// Appends the buffer a descriptor names (addr@0, len@8 in both layouts) to b;
// false when it does not translate or is indirect (we never offer that).
bool append_seg(const IovaMap& map, const uint8_t* x, uint16_t flags, DevBuffer& b) {
    const uint32_t len = rd<uint32_t>(x + 8);
    auto* va = static_cast<uint8_t*>(map.va(Iova{rd<uint64_t>(x)}, len));
    if (va == nullptr || (flags & F_INDIRECT)) return false;
    b.segs.push_back({va, len, (flags & F_WRITE) != 0});
    return true;
}

// An indirect descriptor (2.7.5.3 / 2.8.19): the table's descriptors become
// the buffer's segments. The driver's rules are checked: not device-writable
// itself, a whole number of descriptors, no NEXT beside INDIRECT (split), no
// table inside a table; split tables chain through `next` within the table,
// packed ones are read in order and carry no NEXT.
bool append_indirect(const IovaMap& map, const uint8_t* x, uint16_t flags, DevBuffer& b, bool packed) {
    const uint32_t len = rd<uint32_t>(x + 8);
    if ((flags & F_WRITE) || (flags & F_NEXT) || len == 0 || len % 16 != 0 || b.indirect || !b.segs.empty())
        return false;
    const auto* t = static_cast<const uint8_t*>(map.va(Iova{rd<uint64_t>(x)}, len));
    if (t == nullptr) return false;
    const uint32_t count = len / 16;
    b.indirect = true;
    for (uint32_t i = 0, k = 0;; k++) {
        if (i >= count || k >= count) return false;  // out of the table, or a loop
        const uint8_t* e = t + 16u * i;
        const uint16_t f = rd<uint16_t>(e + 12);
        if ((f & F_INDIRECT) || (packed && (f & F_NEXT))) return false;
        const uint32_t elen = rd<uint32_t>(e + 8);
        auto* va = static_cast<uint8_t*>(map.va(Iova{rd<uint64_t>(e)}, elen));
        if (va == nullptr) return false;
        b.segs.push_back({va, elen, (f & F_WRITE) != 0});
        if (packed) {
            if (++i == count) return true;
        } else {
            if (!(f & F_NEXT)) return true;
            i = rd<uint16_t>(e + 14);
        }
    }
}

}  // namespace

uint32_t DevBuffer::readable_bytes() const {
    uint32_t n = 0;
    for (const DevSeg& s : segs) n += s.writable ? 0 : s.len;
    return n;
}
uint32_t DevBuffer::writable_bytes() const {
    uint32_t n = 0;
    for (const DevSeg& s : segs) n += s.writable ? s.len : 0;
    return n;
}

// ---- split ------------------------------------------------------------------
// desc[i]: addr@0 len@8 flags@12 next@14 (16 bytes)
// avail:   flags@0 idx@2 ring[i]@4+2i used_event@4+2*size
// used:    flags@0 idx@2 ring[i]={id@0,len@4}@4+8i avail_event@4+8*size

SplitDevice::SplitDevice(const IovaMap& map, uint16_t size, Iova desc, Iova avail, Iova used, bool event_idx)
    : map_(&map),
      size_(size),
      desc_(static_cast<uint8_t*>(map.va(desc, 16u * size))),
      avail_(static_cast<uint8_t*>(map.va(avail, 6u + 2u * size))),
      used_(static_cast<uint8_t*>(map.va(used, 6u + 8u * size))),
      event_idx_(event_idx) {
    if (desc_ == nullptr || avail_ == nullptr || used_ == nullptr) bad_ = true;
}

uint16_t SplitDevice::avail_idx() const { return rd16_acquire(avail_ + 2); }

size_t SplitDevice::take(size_t max, std::deque<DevBuffer>& out) {
    const uint16_t avail_idx = rd16_acquire(avail_ + 2);
    size_t n = 0;
    while (last_avail_ != avail_idx && n < max) {
        DevBuffer b;
        uint16_t d = rd<uint16_t>(avail_ + 4 + 2 * (last_avail_ % size_));
        b.id = d;
        for (uint16_t k = 0;; k++) {
            if (d >= size_ || k >= size_) {  // a loop or a bad index: malformed
                bad_ = true;
                return n;
            }
            const uint8_t* x = desc_ + 16u * d;
            const uint16_t flags = rd<uint16_t>(x + 12);
            if ((flags & F_INDIRECT) ? !append_indirect(*map_, x, flags, b, false) : !append_seg(*map_, x, flags, b)) {
                bad_ = true;
                return n;
            }
            b.ndesc = static_cast<uint16_t>(k + 1);
            if (!(flags & F_NEXT)) break;
            d = rd<uint16_t>(x + 14);
        }
        out.push_back(std::move(b));
        last_avail_++;
        n++;
    }
    return n;
}

void SplitDevice::complete(const std::vector<DevBuffer>& bufs, bool batch_last_only) {
    if (bufs.empty()) return;
    for (size_t i = 0; i < bufs.size(); i++) {
        if (batch_last_only && i + 1 < bufs.size()) continue;
        uint8_t* e = used_ + 4 + 8 * ((used_idx_ + i) % size_);
        wr<uint32_t>(e, bufs[i].id);
        wr<uint32_t>(e + 4, bufs[i].written);
    }
    used_idx_ = static_cast<uint16_t>(used_idx_ + bufs.size());
    wr16_release(used_ + 2, used_idx_);
}

void SplitDevice::set_notify(DevNotify mode) {
    notify_ = mode;
    if (mode == DevNotify::EventIdx) {
        wr16_relaxed(used_ + 4 + 8u * size_, last_avail_);  // kick me once you pass what I have seen
    } else if (event_idx_) {  // with EVENT_IDX the flag is ignored: suppress by an event far away
        wr16_relaxed(used_ + 4 + 8u * size_,
                     static_cast<uint16_t>(mode == DevNotify::Never ? last_avail_ + 0x7fff : last_avail_));
    } else {
        wr16_relaxed(used_, mode == DevNotify::Never ? 1 : 0);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

bool SplitDevice::driver_wants_notification(uint16_t old_used_idx) const {
    if (event_idx_) {  // used_event sits after the available ring
        const uint16_t event = rd16_acquire(avail_ + 4 + 2u * size_);
        return static_cast<uint16_t>(used_idx_ - event - 1) < static_cast<uint16_t>(used_idx_ - old_used_idx);
    }
    return (rd16_acquire(avail_) & 1) == 0;  // VIRTQ_AVAIL_F_NO_INTERRUPT
}

bool SplitDevice::arm_and_recheck() {
    set_notify(event_idx_ ? DevNotify::EventIdx : DevNotify::Always);
    return rd16_acquire(avail_ + 2) != last_avail_;
}

void SplitDevice::write_used_raw(uint16_t slot, uint32_t id, uint32_t len) {
    uint8_t* e = used_ + 4 + 8 * (slot % size_);
    wr<uint32_t>(e, id);
    wr<uint32_t>(e + 4, len);
}

void SplitDevice::set_used_idx_raw(uint16_t idx) {
    used_idx_ = idx;
    wr16_release(used_ + 2, idx);
}

// ---- packed -------------------------------------------------------------------
// desc[i]: addr@0 len@8 id@12 flags@14 (16 bytes); event: off_wrap@0 flags@2

PackedDevice::PackedDevice(const IovaMap& map, uint16_t size, Iova desc, Iova driver_event, Iova device_event,
                           bool event_idx)
    : map_(&map),
      size_(size),
      desc_(static_cast<uint8_t*>(map.va(desc, 16u * size))),
      drv_event_(static_cast<uint8_t*>(map.va(driver_event, 4))),
      dev_event_(static_cast<uint8_t*>(map.va(device_event, 4))),
      event_idx_(event_idx) {
    if (desc_ == nullptr || drv_event_ == nullptr || dev_event_ == nullptr) bad_ = true;
}

bool PackedDevice::is_avail(uint16_t pos) const {
    uint16_t f = rd16_acquire(desc_ + 16u * pos + 14);
    bool a = (f & F_AVAIL) != 0, u = (f & F_USED) != 0;
    return a == avail_wrap_ && u != avail_wrap_;
}

size_t PackedDevice::take(size_t max, std::deque<DevBuffer>& out) {
    size_t n = 0;
    while (n < max && is_avail(avail_pos_)) {
        DevBuffer b;
        b.ndesc = 0;
        for (;;) {
            if (b.ndesc >= size_ || (b.ndesc > 0 && !is_avail(avail_pos_))) {
                bad_ = true;
                return n;
            }
            const uint8_t* x = desc_ + 16u * avail_pos_;
            const uint16_t flags = rd<uint16_t>(x + 14);
            if ((flags & F_INDIRECT) ? !append_indirect(*map_, x, flags, b, true) : !append_seg(*map_, x, flags, b)) {
                bad_ = true;
                return n;
            }
            b.id = rd<uint16_t>(x + 12);  // the last descriptor's id names the buffer
            b.ndesc++;
            if (++avail_pos_ == size_) {
                avail_pos_ = 0;
                avail_wrap_ = !avail_wrap_;
            }
            if (!(flags & F_NEXT)) break;
        }
        out.push_back(std::move(b));
        n++;
    }
    return n;
}

void PackedDevice::complete(const std::vector<DevBuffer>& bufs, bool batch_last_only) {
    if (bufs.empty()) return;
    auto write_used = [&](uint16_t pos, bool wrap, uint16_t id, uint32_t len) {
        uint8_t* x = desc_ + 16u * pos;
        wr<uint16_t>(x + 12, id);
        wr<uint32_t>(x + 8, len);
        wr16_release(x + 14, wrap ? (F_AVAIL | F_USED) : 0);
    };
    if (batch_last_only) {
        write_used(used_pos_, used_wrap_, bufs.back().id, bufs.back().written);
    }
    for (const DevBuffer& b : bufs) {
        if (!batch_last_only) write_used(used_pos_, used_wrap_, b.id, b.written);
        uint32_t p = uint32_t{used_pos_} + b.ndesc;
        if (p >= size_) {
            p -= size_;
            used_wrap_ = !used_wrap_;
        }
        used_pos_ = static_cast<uint16_t>(p);
    }
}

void PackedDevice::set_notify(DevNotify mode) {
    notify_ = mode;
    uint16_t flags = mode == DevNotify::Always ? 0 : mode == DevNotify::Never ? 1 : 2;
    if (mode == DevNotify::EventIdx)
        wr16_relaxed(dev_event_, static_cast<uint16_t>(avail_pos_ | (avail_wrap_ ? 0x8000 : 0)));
    wr16_relaxed(dev_event_ + 2, flags);
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

bool PackedDevice::driver_wants_notification(uint16_t old_pos, bool old_wrap) const {
    const uint16_t flags = rd16_acquire(drv_event_ + 2);
    if (flags == 1) return false;  // RING_EVENT_FLAGS_DISABLE
    if (flags == 0) return true;   // RING_EVENT_FLAGS_ENABLE
    if (flags != 2 || !event_idx_) return true;
    // RING_EVENT_FLAGS_DESC: notify when the descriptor at off_wrap was used.
    // Positions of the previous lap count one ring size lower.
    const uint16_t off_wrap = rd16_acquire(drv_event_);
    int32_t event = off_wrap & 0x7fff, from = old_pos;
    if (((off_wrap >> 15) != 0) != used_wrap_) event -= size_;
    if (old_wrap != used_wrap_) from -= size_;
    return event >= from && event < used_pos_;
}

bool PackedDevice::arm_and_recheck() {
    set_notify(event_idx_ ? DevNotify::EventIdx : DevNotify::Always);
    return is_avail(avail_pos_);
}

void PackedDevice::write_used_raw(uint16_t id, uint32_t len, uint16_t flags) {
    uint8_t* x = desc_ + 16u * used_pos_;
    wr<uint16_t>(x + 12, id);
    wr<uint32_t>(x + 8, len);
    wr16_release(x + 14, flags);
}

}  // namespace vireo::test
