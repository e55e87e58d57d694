// Bounded waits of the control path: poll one file descriptor until it is
// ready, a deadline passes, the caller's stop eventfd fires, or the process
// cancelled its waits (cancel_waits()). Every blocking step of a transport's
// control path goes through here, so none can outlive a stop or a signal.
#pragma once

#include <poll.h>

#include <chrono>

namespace vireo::detail {

using Clock = std::chrono::steady_clock;

inline Clock::time_point deadline_in(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

// What the wait is for decides what a stop or cancel does to it.
enum class WaitFor {
    Peer,   // a peer to appear (accept, connect retry, back-off): a stop or cancel ends it at once
    Reply,  // a connected peer's answer: a stop or cancel shortens it to kStopGraceMs
};
inline constexpr int kStopGraceMs = 250;

enum class Woke { Ready, Timeout, Stopped };

// revents (when not null) receives poll's revents for fd on Ready. EINTR is retried.
Woke wait_fd(int fd, short events, Clock::time_point deadline, int stop_fd, WaitFor kind, short* revents = nullptr);

// Sleeps until the deadline unless stopped first (true when stopped).
bool sleep_unless_stopped(Clock::time_point deadline, int stop_fd);

// The process-wide cancel eventfd (readable once cancel_waits() ran).
int cancel_fd() noexcept;

// An eventfd owned by one object, to wake its threads and waits.
class StopSignal {
public:
    StopSignal();
    ~StopSignal();
    StopSignal(const StopSignal&) = delete;
    StopSignal& operator=(const StopSignal&) = delete;
    int fd() const noexcept { return fd_; }
    void raise() noexcept;
    void clear() noexcept;  // for reuse after the threads it stopped have ended
    bool raised() const noexcept;

private:
    int fd_;
};

}  // namespace vireo::detail
