// The soak's frames and their accounting (tests/soak/soak.cpp).
//
// Every frame is  [dst 6][src 6][0x88b7][stream 2][seq 8][sent_ns 8][len 4]
// [pattern ...][FNV-1a of bytes 14..len-4: 4]: which stream it belongs to,
// its place in it, when it left (CLOCK_MONOTONIC) and a checksum of all of it.
// The sender logs what tx_burst accepted, burst by burst; the receiver marks
// every sequence number it sees. At the end, every number sent and never seen
// is lost, and `account` sorts each loss by its send time: inside an outage
// (from the moment a back end is stopped, less a grace for frames already on
// their way, to the moment a frame sent after its restart arrived) it was
// dropped while the link was down; anywhere else it is a loss the soak fails on.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vireo::soak {

inline constexpr uint16_t kEtherType = 0x88b7;
inline constexpr uint32_t kMinFrame = 64;
inline constexpr uint32_t kMaxFrame = 1518;

struct FrameHeader {
    uint16_t stream = 0;
    uint64_t seq = 0;
    uint64_t sent_ns = 0;
    uint32_t len = kMinFrame;  // the whole frame, kMinFrame..kMaxFrame
};

using Mac = std::array<uint8_t, 6>;

// The frame h describes, h.len bytes, into out.
void build_frame(std::vector<uint8_t>& out, const Mac& dst, const Mac& src, const FrameHeader& h);

enum class Parsed { NotOurs, Corrupt, Ok };
// NotOurs: another EtherType (a switch's own frames). Corrupt: ours, but its
// length or checksum does not hold.
Parsed parse_frame(const uint8_t* f, size_t n, FrameHeader& h);

// What tx_burst accepted on one stream: sequence numbers are consecutive, so
// one entry per burst (first number, count, the time stamped in its frames).
class SendLog {
public:
    void record(uint64_t first_seq, uint32_t count, uint64_t sent_ns);
    uint64_t sent() const noexcept { return next_; }  // numbers 0..sent()-1 went out
    uint64_t sent_ns(uint64_t seq) const;             // when seq went out (seq < sent())

private:
    struct Burst {
        uint64_t first, sent_ns;
    };
    std::vector<Burst> bursts_;
    uint64_t next_ = 0;
};

// What arrived of one stream.
class SeqReceiver {
public:
    void receive(uint64_t seq);  // a frame that parsed
    void corrupt() noexcept { corrupted_++; }
    bool seen(uint64_t seq) const noexcept {
        return seq / 64 < seen_.size() && (seen_[seq / 64] >> (seq % 64) & 1) != 0;
    }
    uint64_t received() const noexcept { return received_; }  // distinct numbers
    uint64_t duplicates() const noexcept { return duplicates_; }
    uint64_t misordered() const noexcept { return misordered_; }  // arrived after a higher number
    uint64_t corrupted() const noexcept { return corrupted_; }

private:
    std::vector<uint64_t> seen_;
    uint64_t next_ = 0;  // one past the highest number seen
    uint64_t received_ = 0, duplicates_ = 0, misordered_ = 0, corrupted_ = 0;
};

// A time the path was down for a stream: from `begin_ns` (the back end is
// about to be stopped, or traffic starts) to `end_ns` (a frame sent after the
// back end came back arrived; 0 while it has not).
struct Outage {
    uint64_t begin_ns = 0, end_ns = 0;
};

struct LossReport {
    uint64_t sent = 0, received = 0;
    uint64_t lost_while_down = 0;  // sent within an outage (or `grace_ns` before one)
    uint64_t lost = 0;             // sent while the path was up: the soak fails
    uint64_t duplicates = 0, misordered = 0, corrupted = 0;
    std::vector<uint64_t> lost_per_outage;  // lost_while_down, by outage
    // The unexplained losses by second of the run (only seconds that had some).
    std::vector<std::pair<uint64_t, uint64_t>> lost_by_second;
    std::vector<uint64_t> lost_sent_ns;  // when each of `lost` was sent (the first 100000)
    std::string first_lost;              // the first unexplained loss, in words
    bool clean() const noexcept { return lost == 0 && duplicates == 0 && misordered == 0 && corrupted == 0; }
};

// outages sorted by begin_ns and not overlapping; an outage still open
// (end_ns 0) lasts to the end. start_ns: the run's start, for lost_by_second.
LossReport account(const SendLog& log, const SeqReceiver& rx, const std::vector<Outage>& outages, uint64_t grace_ns,
                   uint64_t start_ns);

// A back end's own count of frames it dropped (a port's ring full, a
// receiver too slow), for one of its runs: run r lasts from restart r (run 0:
// the start) to restart r + 1. Only runs whose counters could be read.
struct BackendDrops {
    size_t run = 0;
    uint64_t frames = 0;
    std::string where;  // "port 3: 96"
};

// How many losses (by send time) fall in runs where the back end itself
// counted at least as many drops: those are its drops, not vireo's losses.
// run_starts_ns: when each restart began, ascending.
uint64_t dropped_by_backend(const std::vector<uint64_t>& lost_sent_ns, const std::vector<uint64_t>& run_starts_ns,
                            const std::vector<BackendDrops>& drops);

}  // namespace vireo::soak
