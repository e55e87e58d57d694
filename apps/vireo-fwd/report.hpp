// vireo-fwd's statistics: snapshots of every port's queues, live lines per
// period, the final summary and its JSON form.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "streams.hpp"
#include "vireo/pmd/net_port.hpp"

namespace vireo::fwd {

// One queue pair as vireo-fwd reports it: the port's Rx and Tx counters
// (QueueStats: each is listed once, in net_stats.hpp's kQueueCounters, and
// the JSON's rx_NAME / tx_NAME keys come from that list) and the frames a full
// Tx queue refused, vireo-fwd's own drops.
struct QueueCounters {
    QueueStats rx, tx;
    uint64_t fwd_drops = 0;
    QueueCounters& operator+=(const QueueCounters& o);
    uint64_t drops() const { return rx.drops + tx.drops + fwd_drops; }
    uint64_t errors() const { return rx.errors + tx.errors; }
};

struct Snapshot {
    double t = 0;                                  // seconds since forwarding started
    std::vector<std::vector<QueueCounters>> port;  // [port][queue]
    // --record-core-cycles, over every stream: busy TSC cycles, and the packets they are divided by
    // (received; txonly and flowgen: sent).
    uint64_t busy_cycles = 0, busy_packets = 0;
    QueueCounters total(size_t p) const;
};

// Reads the ports' per-queue stats (NetPort) and the streams' own drops.
Snapshot take_snapshot(const std::vector<NetPort*>& ports, const std::vector<Stream>& streams, double t);

struct Rate {
    double rx_pps = 0, tx_pps = 0, rx_bps = 0, tx_bps = 0;
};
Rate rate(const QueueCounters& a, const QueueCounters& b, double seconds);

// Lines for one period: per port, and per queue when a port has several.
// With cycles (--record-core-cycles), a line with the period's cycles per packet too.
std::string live_lines(const Snapshot& prev, const Snapshot& now, const std::vector<NetPort*>& ports, bool cycles);

struct RunInfo {
    std::string mode;
    std::vector<std::string> devices;
    std::vector<unsigned> cores;
    std::string placement;
    uint32_t pool_size = 0;
    uint32_t pool_in_use_after_stop = 0;
    std::vector<std::string> faults;  // per port, "" when none
    std::vector<Snapshot> samples;    // one per stats period
    struct LinkEvent {
        double t;
        size_t port;
        bool up;
        std::string reason;
    };
    std::vector<LinkEvent> link_events;  // as they happened
    std::vector<LinkStatus> links;       // per port, at the end
    std::vector<std::string> speeds;     // per port, at the end (LinkSpeed, as text)
    std::vector<StopReport> stops;       // per port: what the clean stop at the end waited for and lost
    uint64_t first_bursts_resent = 0;    // --tx-first loops restarted
    uint32_t sleep_when_idle = 0;        // --sleep-when-idle's rounds (0: off)
    uint64_t sleeps = 0, wakeups = 0;    // its sleeps, and those a frame ended
    double asleep_s = 0;                 // time asleep, summed over threads
    std::string capture_file;            // --pcap ("" when off)
    uint64_t captured = 0, capture_dropped = 0;
    bool record_core_cycles = false;  // --record-core-cycles
    double tsc_mhz = 0;               // the TSC's rate over the run (steady_clock against __rdtsc)
};

std::string summary_text(const Snapshot& last, const std::vector<NetPort*>& ports, const RunInfo& info);
std::string summary_json(const Snapshot& last, const std::vector<NetPort*>& ports, const RunInfo& info);

}  // namespace vireo::fwd
