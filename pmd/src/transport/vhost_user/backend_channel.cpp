#include "transport/vhost_user/backend_channel.hpp"

#include <poll.h>
#include <unistd.h>

#include "vireo/base/error.hpp"

namespace vireo::vhost {

using detail::Clock;
using detail::WaitFor;
using detail::Woke;

// A request that has begun must be complete within this time.
constexpr int kRequestTimeoutMs = 1000;

BackendChannel::BackendChannel(int fd, MissHandler on_miss, BrokenHandler on_broken)
    : conn_(fd, stop_.fd()), on_miss_(std::move(on_miss)), on_broken_(std::move(on_broken)) {
    conn_.set_reply_timeout_ms(kRequestTimeoutMs);
    thread_ = std::thread([this] { run(); });
}

BackendChannel::~BackendChannel() {
    stop_.raise();
    if (thread_.joinable()) thread_.join();
}

void BackendChannel::run() {
    try {
        for (;;) {
            // Idle until the back end writes something (or we stop).
            if (detail::wait_fd(conn_.fd(), POLLIN, Clock::time_point::max(), stop_.fd(), WaitFor::Peer) != Woke::Ready)
                return;
            std::vector<int> fds;
            Message m = conn_.receive("a back-end channel request", sizeof(Payload),
                                      detail::deadline_in(kRequestTimeoutMs), &fds, WaitFor::Reply);
            for (int fd : fds) ::close(fd);  // host notifiers and the like: not used
            handle(m);
        }
    } catch (const Error& e) {
        if (stop_.raised()) return;
        on_broken_(std::string("back-end channel: ") + e.what());
    }
}

void BackendChannel::handle(const Message& m) {
    uint64_t status = 1;  // refused
    if (m.hdr.request == kBackendIotlbMsg) {
        if (m.hdr.size != sizeof(IotlbMsg))
            throw Error("back end sent an IOTLB message of " + std::to_string(m.hdr.size) + " bytes (expected " +
                        std::to_string(sizeof(IotlbMsg)) + ")");
        // The wire's iova is one of ours as the device saw it (an IOVA, not a VA).
        if (m.payload.iotlb.type == kIotlbMiss && on_miss_(Iova{m.payload.iotlb.iova})) {
            status = 0;
            answered_.fetch_add(1, std::memory_order_relaxed);
        }
    }
    if (m.hdr.flags & kFlagNeedReply) conn_.send(m.hdr.request, &status, sizeof status, nullptr, 0, kFlagReply);
}

}  // namespace vireo::vhost
