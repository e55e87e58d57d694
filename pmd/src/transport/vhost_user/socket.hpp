// vhost-user sockets: the connection (messages with file descriptors over a
// unix stream socket), the listening socket of server mode, and the client's
// connect. Every read of back-end input is bounded: partial reads are
// gathered until a deadline, the payload size a header announces is checked
// against what that message may carry before anything is read, and a port's
// stop (or the process's cancel_waits()) ends any wait. Errors name the
// message and the cause.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/wait.hpp"
#include "transport/vhost_user/msg.hpp"

namespace vireo::vhost {

class Connection {
public:
    Connection() = default;
    // Takes ownership of fd. stop_fd (borrowed, may be -1) ends waits early (see wait.hpp).
    Connection(int fd, int stop_fd) : fd_(fd), stop_fd_(stop_fd) {}
    Connection(Connection&& o) noexcept { *this = std::move(o); }
    Connection& operator=(Connection&& o) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection() { close(); }

    bool valid() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    void close() noexcept;
    // Wakes a thread blocked on this connection (shutdown(2)); the fd stays open.
    void shut_down() noexcept;
    // With REPLY_ACK negotiated, requests without a natural reply ask for an ack.
    void set_reply_ack(bool on) { reply_ack_ = on; }
    void set_reply_timeout_ms(int ms) { reply_timeout_ms_ = ms; }

    void send(uint32_t request, const void* payload, uint32_t size, const int* fds = nullptr, int nfds = 0,
              uint32_t extra_flags = 0);
    // One message: header, then a payload of at most max_size bytes (what the
    // awaited message may carry), file descriptors gathered from every
    // partial read (into fds, or closed). Throws on timeout, hang-up, a stop,
    // or a size above max_size.
    Message receive(const char* waiting_for, uint32_t max_size, detail::Clock::time_point deadline,
                    std::vector<int>* fds = nullptr, detail::WaitFor kind = detail::WaitFor::Reply);

    // Request with a u64 reply (GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM).
    uint64_t call_u64(uint32_t request);
    // Request with a VringState reply (GET_VRING_BASE).
    VringState call_state(uint32_t request, VringState s);
    // Request without a natural reply: acked when REPLY_ACK is on.
    void request(uint32_t request, const void* payload, uint32_t size, const int* fds = nullptr, int nfds = 0);

    static constexpr int kDefaultReplyTimeoutMs = 5000;

private:
    // Reads exactly len bytes (gathering fds) before the deadline.
    void read_exact(void* buf, size_t len, const char* waiting_for, detail::Clock::time_point deadline,
                    std::vector<int>* fds, detail::WaitFor kind, bool header);
    Message reply_to(uint32_t request, uint32_t size);

    int fd_ = -1;
    int stop_fd_ = -1;
    bool reply_ack_ = false;
    int reply_timeout_ms_ = kDefaultReplyTimeoutMs;
};

// Server mode: a listening socket vireo created, and removes again.
class Listener {
public:
    // Refuses a path where a live listener answers (another process owns it)
    // and one that exists but is not a socket; replaces a stale socket file.
    explicit Listener(const std::string& path);
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    int fd() const { return fd_; }
    // Waits for a back end to connect: Connection, or invalid when stopped.
    // Throws on timeout (timeout_ms < 0: none).
    Connection accept(int timeout_ms, int stop_fd);

private:
    std::string path_;
    int fd_ = -1;
    dev_t dev_ = 0;  // the socket file we created: removed only if still ours
    ino_t ino_ = 0;
};

// Client mode: connects to a listening back end, retrying while the socket is
// missing or refuses (the back end may be starting) until timeout_ms
// (< 0: forever, with back-off), or invalid Connection when stopped. Errors
// name the real cause: not a socket, permission denied (owner and mode),
// nothing listening.
Connection connect_to(const std::string& path, int timeout_ms, int stop_fd);

}  // namespace vireo::vhost
