// The part of a NetPort that watches its connection: the thread, its stop
// signal, the link status it reports, and the lock stats readers take while
// the thread may replace queues.
#pragma once

#include <mutex>
#include <string>
#include <thread>

#include "common/wait.hpp"
#include "vireo/pmd/net_port.hpp"

namespace vireo {

struct NetPort::Watcher {
    detail::StopSignal stop;
    std::thread thread;
    mutable std::mutex queues;  // held while pairs_ changes, and by whoever reads through it from outside

    void set_up() {
        std::lock_guard<std::mutex> g(lock_);
        status_.up = true;
        status_.coming_back = false;
        status_.reason.clear();
    }
    void set_down(const std::string& why, bool lost = false, bool coming_back = false) {
        std::lock_guard<std::mutex> g(lock_);
        status_.up = false;
        status_.coming_back = coming_back;
        status_.reason = why;
        if (lost) {
            status_.downs++;
            status_.last_loss = why;
        }
    }
    void count_reconnect() {
        std::lock_guard<std::mutex> g(lock_);
        status_.reconnects++;
    }
    LinkStatus status() const {
        std::lock_guard<std::mutex> g(lock_);
        return status_;
    }
    void stop_thread() {
        stop.raise();
        if (thread.joinable()) thread.join();
        stop.clear();
    }

private:
    mutable std::mutex lock_;
    LinkStatus status_{false, "not started", "", 0, 0, false};
};

}  // namespace vireo
