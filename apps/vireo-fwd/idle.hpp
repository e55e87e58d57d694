// vireo-fwd --sleep-when-idle: a polling thread whose Rx queues stayed empty
// for `polls` rounds arms their used-buffer notifications
// (NetPort::rx_notify_arm) and sleeps on their fds until a frame comes, or
// at most kMaxSleepMs (the stop flag and the ports are looked at that often).
// A queue that refuses to arm (a frame came meanwhile) keeps the thread polling.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "streams.hpp"

namespace vireo::fwd {

inline constexpr int kMaxSleepMs = 100;

struct IdleCounters {
    std::atomic<uint64_t> sleeps{0};     // times a thread slept
    std::atomic<uint64_t> wakeups{0};    // sleeps ended by a notification (not the timeout)
    std::atomic<uint64_t> asleep_ns{0};  // time spent asleep, summed over threads
};

class IdleSleeper {
public:
    IdleSleeper(const std::vector<Stream*>& mine, uint32_t polls, IdleCounters& counters);
    // After each round over the thread's streams.
    void after_round() {
        uint64_t r = 0;
        for (const Stream* s : rx_) r += s->received;
        if (r != last_received_) {
            last_received_ = r;
            empty_ = 0;
        } else if (++empty_ >= polls_) {
            sleep();
            empty_ = 0;
        }
    }

private:
    void sleep();
    std::vector<Stream*> rx_;  // the thread's streams that receive
    uint64_t last_received_ = 0;
    uint32_t empty_ = 0;
    uint32_t polls_;
    IdleCounters& counters_;
};

// "" when every Rx queue of the streams can sleep; else why not (one sentence).
std::string idle_sleep_problem(const std::vector<Stream>& streams);

}  // namespace vireo::fwd
