// vireo: per-queue counters of a virtio-net port.
//
// Each queue's counters are written only by the thread that polls it (relaxed
// atomic stores: plain movs on x86); another thread may read them while
// traffic runs (NetPort::rx_stats) and gets each counter whole, at most a
// burst old. reset_stats() never writes a poller's counters: it sets aside
// what they read, and later reads subtract it. What tx_burst() does not accept
// is the caller's to count (vireo-fwd counts it as its drops).
//
// Tx `packets` and `bytes` count what tx_burst() accepted: frames queued to
// the device, not frames it has sent. A clean stop (NetPort::stop) gives the
// device time to complete them; `undelivered` counts those it never did.
#pragma once

#include <cstdint>

namespace vireo {

struct QueueStats {
    uint64_t packets = 0;  // Rx: frames delivered to the application; Tx: frames accepted (queued)
    uint64_t bytes = 0;
    uint64_t errors = 0;       // malformed completions, device faults, packets that could not be sent as given
    uint64_t drops = 0;        // Rx: refills that found the pool empty (events, not frames), and in window
                               // mode frames lost because the application's pool was empty; Tx: not used
    uint64_t kicks = 0;        // notifications sent to the device (each an eventfd write or MMIO store)
    uint64_t bursts = 0;       // calls that moved at least one packet (packets / bursts: the mean burst)
    uint64_t indirect = 0;     // Tx: chains sent through an indirect descriptor table (INDIRECT_DESC)
    uint64_t tso = 0;          // Tx: large TCP segments the device cut (HOST_TSO); Rx: large segments received
    uint64_t sw_segments = 0;  // Tx: frames vireo cut from large TCP segments the device could not take
    uint64_t undelivered = 0;  // Tx: frames (ring chains) accepted but never completed by the device: still in
                               // the ring when it was reset (a stop's bound ran out, the back end left, a fault)
    // Window mode (DmaArrangement::Window) only:
    uint64_t bounced_bytes = 0;  // frame bytes copied between the application's packets and the window
    uint64_t copy_cycles = 0;    // TSC cycles spent copying them (copy_cycles / packets: the cost per frame)
    uint64_t slot_waits = 0;     // Tx: bursts cut short because every bounce slot was in flight (back-pressure)

    QueueStats& operator+=(const QueueStats& o) noexcept;
    QueueStats& operator-=(const QueueStats& o) noexcept;
};

// Every counter of QueueStats, once, with its name and the directions it
// counts in. Sums, differences and whole reads walk this list, and so does
// every report: vireo-fwd's JSON (rx_NAME, tx_NAME), telemetry's xstats
// (rx_qN_NAME, tx_qN_NAME).
struct QueueCounter {
    uint64_t QueueStats::*member;
    const char* name;
    bool rx, tx;  // meaningful for an Rx queue, a Tx queue
};
inline constexpr QueueCounter kQueueCounters[] = {
    {&QueueStats::packets, "packets", true, true},
    {&QueueStats::bytes, "bytes", true, true},
    {&QueueStats::errors, "errors", true, true},
    {&QueueStats::drops, "drops", true, false},
    {&QueueStats::kicks, "kicks", true, true},
    {&QueueStats::bursts, "bursts", true, true},
    {&QueueStats::indirect, "indirect", false, true},
    {&QueueStats::tso, "tso", true, true},
    {&QueueStats::sw_segments, "sw_segments", false, true},
    {&QueueStats::undelivered, "undelivered", false, true},
    {&QueueStats::bounced_bytes, "bounced_bytes", true, true},
    {&QueueStats::copy_cycles, "copy_cycles", true, true},
    {&QueueStats::slot_waits, "slot_waits", false, true},
};
static_assert(sizeof(kQueueCounters) / sizeof(kQueueCounters[0]) * sizeof(uint64_t) == sizeof(QueueStats),
              "a counter added to QueueStats belongs in kQueueCounters too");

inline QueueStats& QueueStats::operator+=(const QueueStats& o) noexcept {
    for (const QueueCounter& c : kQueueCounters) this->*c.member += o.*c.member;
    return *this;
}
inline QueueStats& QueueStats::operator-=(const QueueStats& o) noexcept {
    for (const QueueCounter& c : kQueueCounters) this->*c.member -= o.*c.member;
    return *this;
}

}  // namespace vireo
