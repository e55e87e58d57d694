// Test device: the device side of split and packed virtqueues, written from
// the VIRTIO 1.2 specification (2.7 and 2.8) independently of vireo's driver
// code: it declares its own layouts, reads descriptors by IOVA through an
// IovaMap and writes used entries. Knobs: complete out of order, complete in
// batches (one used entry per batch with IN_ORDER), hold buffers, sleep until
// kicked and ask for or suppress notifications, and write anything at all
// (the malicious writes of the untrusted-device tests).
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <vector>

#include "vireo/iova/iova_map.hpp"

namespace vireo::test {

struct DevSeg {
    uint8_t* va;
    uint32_t len;
    bool writable;
};

// A buffer the device has taken from the available side.
struct DevBuffer {
    uint16_t id;     // split: head descriptor index; packed: buffer id
    uint16_t ndesc;  // descriptors in the chain
    std::vector<DevSeg> segs;
    uint32_t written = 0;   // bytes the device wrote (used length)
    bool indirect = false;  // its descriptors came from an indirect table
    uint32_t readable_bytes() const;
    uint32_t writable_bytes() const;
};

enum class DevNotify { Always, Never, EventIdx };

class SplitDevice {
public:
    SplitDevice(const IovaMap& map, uint16_t size, Iova desc, Iova avail, Iova used, bool event_idx);
    // Takes up to max newly available chains (2.7.13 from the device side).
    size_t take(size_t max, std::deque<DevBuffer>& out);
    // Writes used entries for bufs, in the given order, then one used idx
    // update. With batch_last_only, only the last entry is written (IN_ORDER
    // batching, 2.7.10.2).
    void complete(const std::vector<DevBuffer>& bufs, bool batch_last_only = false);
    // Notification suppression the device asks of the driver.
    void set_notify(DevNotify mode);
    // Sleep/wake support: re-arm notifications at the current position and
    // report whether work arrived meanwhile (the device side of the race).
    bool arm_and_recheck();
    // After used entries from old_used_idx up to used_idx() were published:
    // whether the driver asked for a used-buffer notification (2.7.7.2, 2.7.10).
    bool driver_wants_notification(uint16_t old_used_idx) const;
    uint16_t avail_idx() const;
    // Raw writes for the malicious tests.
    void write_used_raw(uint16_t slot, uint32_t id, uint32_t len);
    void set_used_idx_raw(uint16_t idx);
    uint16_t used_idx() const { return used_idx_; }
    bool bad() const { return bad_; }

private:
    const IovaMap* map_;
    uint16_t size_;
    uint8_t* desc_;
    uint8_t* avail_;
    uint8_t* used_;
    bool event_idx_;
    DevNotify notify_ = DevNotify::Always;
    uint16_t last_avail_ = 0;
    uint16_t used_idx_ = 0;
    bool bad_ = false;  // the driver handed us something malformed
};

class PackedDevice {
public:
    PackedDevice(const IovaMap& map, uint16_t size, Iova desc, Iova driver_event, Iova device_event, bool event_idx);
    size_t take(size_t max, std::deque<DevBuffer>& out);
    // Writes one used descriptor per buffer at the device's next used
    // position (2.8.7); with batch_last_only one descriptor for the whole
    // batch, carrying the last buffer's id (IN_ORDER, 2.8.9).
    void complete(const std::vector<DevBuffer>& bufs, bool batch_last_only = false);
    void set_notify(DevNotify mode);
    bool arm_and_recheck();
    // After used descriptors from (old_pos, old_wrap) up to next_used() were
    // written: whether the driver asked for a notification (2.8.10, 2.8.21.3).
    bool driver_wants_notification(uint16_t old_pos, bool old_wrap) const;
    // Raw write of a descriptor's id/len/flags at the next used position, for
    // the malicious tests.
    void write_used_raw(uint16_t id, uint32_t len, uint16_t flags);
    uint16_t next_used() const { return used_pos_; }
    bool used_wrap() const { return used_wrap_; }
    bool bad() const { return bad_; }

private:
    bool is_avail(uint16_t pos) const;
    const IovaMap* map_;
    uint16_t size_;
    uint8_t* desc_;
    uint8_t* drv_event_;
    uint8_t* dev_event_;
    bool event_idx_;
    DevNotify notify_ = DevNotify::Always;
    uint16_t avail_pos_ = 0;
    bool avail_wrap_ = true;
    uint16_t used_pos_ = 0;
    bool used_wrap_ = true;
    bool bad_ = false;
};

// What a virtio-net device writes into an Rx buffer: the 12-byte header
// (flags, num_buffers; the rest zero), then frame_len bytes of `fill`.
inline void put_rx_frame(DevBuffer& b, uint8_t flags, uint16_t num_buffers, uint32_t frame_len, uint8_t fill) {
    uint8_t hdr[12] = {flags};
    std::memcpy(hdr + 10, &num_buffers, 2);
    std::memcpy(b.segs[0].va, hdr, 12);
    std::memset(b.segs[0].va + 12, fill, frame_len);
    b.written = 12 + frame_len;
}

}  // namespace vireo::test
