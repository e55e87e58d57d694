// A queue's counters while it runs: written only by the thread polling the
// queue (or by the control path while the queue's gate is closed) with
// bump(), read by any thread with read_counters() (vireo/base/counter.hpp
// says why both are atomic).
#pragma once

#include "vireo/base/counter.hpp"
#include "vireo/pmd/net_stats.hpp"

namespace vireo::detail {

// A copy of live counters, each read whole, from any thread.
inline QueueStats read_counters(const QueueStats& live) noexcept {
    QueueStats out;
    for (const QueueCounter& c : kQueueCounters) out.*c.member = read_counter(live.*c.member);
    return out;
}

}  // namespace vireo::detail
