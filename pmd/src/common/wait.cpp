#include "common/wait.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "vireo/base/error.hpp"
#include "vireo/pmd/cancel.hpp"

namespace vireo {
namespace {

std::atomic<bool> g_cancelled{false};
// Created before main() so that cancel_waits() never allocates.
const int g_cancel_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

}  // namespace

void cancel_waits() noexcept {
    g_cancelled.store(true, std::memory_order_release);
    uint64_t one = 1;
    ssize_t r = ::write(g_cancel_fd, &one, sizeof one);  // async-signal-safe
    (void)r;
}

bool waits_cancelled() noexcept { return g_cancelled.load(std::memory_order_acquire); }

namespace detail {

int cancel_fd() noexcept { return g_cancel_fd; }

Woke wait_fd(int fd, short events, Clock::time_point deadline, int stop_fd, WaitFor kind, short* revents) {
    bool stopping = false;
    for (;;) {
        auto now = Clock::now();
        if (now >= deadline) return Woke::Timeout;
        const long ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
        pollfd p[3] = {{fd, events, 0}, {g_cancel_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
        const nfds_t n = stopping ? 1 : (stop_fd >= 0 ? 3 : 2);
        int r = ::poll(p, n, static_cast<int>(ms > 60000 ? 60000 : ms));
        if (r < 0) {
            if (errno == EINTR) continue;
            throw_sys_error("poll", errno);
        }
        if (r == 0) continue;  // the loop re-checks the deadline
        if (p[0].revents != 0) {
            if (revents != nullptr) *revents = p[0].revents;
            return Woke::Ready;
        }
        if (kind == WaitFor::Peer) return Woke::Stopped;
        // A reply still gets a short grace: a live peer answers at once.
        stopping = true;
        const auto grace = Clock::now() + std::chrono::milliseconds(kStopGraceMs);
        if (grace < deadline) deadline = grace;
    }
}

bool sleep_unless_stopped(Clock::time_point deadline, int stop_fd) {
    for (;;) {
        auto now = Clock::now();
        if (now >= deadline) return false;
        const long ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
        pollfd p[2] = {{g_cancel_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
        int r = ::poll(p, stop_fd >= 0 ? 2 : 1, static_cast<int>(ms));
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) throw_sys_error("poll", errno);
    }
}

StopSignal::StopSignal() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw_sys_error("eventfd", errno);
}
StopSignal::~StopSignal() { ::close(fd_); }
void StopSignal::raise() noexcept {
    uint64_t one = 1;
    ssize_t r = ::write(fd_, &one, sizeof one);
    (void)r;
}
void StopSignal::clear() noexcept {
    uint64_t v;
    ssize_t r = ::read(fd_, &v, sizeof v);
    (void)r;
}
bool StopSignal::raised() const noexcept {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
}

}  // namespace detail
}  // namespace vireo
