// Packet capture off the data path (DPDK's pdump + dumpcap, in one process).
//
// The polling thread hands each burst to a CaptureRing (offer): up to
// `snaplen` bytes of every frame are copied into a single-producer,
// single-consumer byte ring, with a timestamp, the port, queue and
// direction. It never waits and never allocates: a frame that finds the ring
// full is counted as dropped and forwarding goes on. Another thread drains
// the records (drain) and writes them, e.g. with PcapngWriter
// (vireo/capture/pcapng.hpp). Nothing is offered while capture is off: the
// caller keeps a null CaptureRing* and tests it once per burst.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

namespace vireo {

struct Packet;

enum class CaptureDirection : uint8_t { Rx = 1, Tx = 2 };  // pcapng's epb_flags inbound / outbound

// One record in the ring, followed by cap_len bytes of the frame.
struct CaptureRecord {
    uint64_t ns;        // CLOCK_REALTIME when the burst was offered
    uint32_t wire_len;  // the frame's length
    uint32_t cap_len;   // bytes kept: min(wire_len, snaplen)
    uint16_t port, queue;
    CaptureDirection dir;
    uint8_t pad_;
    uint16_t pad2_;
    uint32_t size;  // bytes from this record to the next (header + data, a multiple of 32); pad_ record: dir 0
    uint32_t pad3_;
};
static_assert(sizeof(CaptureRecord) == 32);

class CaptureRing {
public:
    // `bytes`: the ring (rounded up to a power of two, at least 64 KiB).
    // `budget`: frames still to capture, shared by every ring of one
    // capture (count=); nullptr: no limit.
    CaptureRing(size_t bytes, uint32_t snaplen, std::atomic<int64_t>* budget = nullptr);
    ~CaptureRing();
    CaptureRing(const CaptureRing&) = delete;
    CaptureRing& operator=(const CaptureRing&) = delete;

    // Producer (the one thread that polls): copies what fits, counts the rest.
    void offer(Packet* const* pkts, uint16_t n, uint16_t port, uint16_t queue, CaptureDirection dir) noexcept;
    // Consumer (one other thread): f(record, data) for every record in order; returns how many.
    size_t drain(const std::function<void(const CaptureRecord&, const uint8_t*)>& f);

    uint32_t snaplen() const noexcept { return snaplen_; }
    uint64_t captured() const noexcept { return captured_.load(std::memory_order_relaxed); }
    uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

private:
    bool reserve(uint32_t size, uint8_t*& at) noexcept;  // room for a record of `size` bytes at the head
    uint8_t* buf_;
    size_t mask_;
    uint32_t snaplen_;
    std::atomic<int64_t>* budget_;
    alignas(64) std::atomic<uint64_t> head_{0};  // written by the producer
    uint64_t tail_seen_ = 0;                     // the producer's last look at tail_
    std::atomic<uint64_t> captured_{0}, dropped_{0};
    alignas(64) std::atomic<uint64_t> tail_{0};  // written by the consumer
};

}  // namespace vireo
