// Test helper: a vhost-user back end written for the tests from QEMU's
// docs/interop/vhost-user.rst. By default it answers like a minimal legal
// device (features, protocol features, queue count, acks, ring bases); a
// test changes what it does at one message: a wrong reply, a payload shorter
// than its header says, a header in pieces, an absurd size, closing, never
// answering, a broken request on the back-end channel. It serves one
// connection at a time from a thread of its own and removes its socket.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vireo::test {

struct FakeMsg {
    uint32_t request = 0, flags = 0, size = 0;
    std::vector<uint8_t> payload;
    std::vector<int> fds;  // received with it (the helper closes them)
};

class FakeBackend {
public:
    // The peer side of one connection, for twists.
    struct Peer {
        int fd;          // the front end's connection
        int backend_fd;  // our end of the back-end channel once SET_BACKEND_REQ_FD came, or -1
        void write_raw(const void* p, size_t n) const;
        void reply(uint32_t request, const void* payload, uint32_t size, uint32_t flags = 0x5) const;
        void reply_u64(uint32_t request, uint64_t v) const { reply(request, &v, sizeof v); }
    };
    // What to do instead of the default when the nth message of a kind arrives:
    // return true to go on serving, false to close the connection.
    using Twist = std::function<bool(const Peer&, const FakeMsg&)>;

    enum class Role { Listen, Connect };
    // Listen: creates the socket at path (vireo connects). Connect: connects
    // to path, retrying (vireo listens with server=1).
    FakeBackend(const std::string& path, Role role = Role::Listen);
    ~FakeBackend();
    FakeBackend(const FakeBackend&) = delete;
    FakeBackend& operator=(const FakeBackend&) = delete;

    // Before start(): a twist for the nth (1-based) message of that request.
    void on(uint32_t request, Twist t, int nth = 1);
    // Twist for every message after the first n (any request): close, stall...
    void on_message_number(int n, Twist t);
    void start();

    uint64_t features = (1ull << 32) | (1ull << 30);                       // VERSION_1, VHOST_USER_F_PROTOCOL_FEATURES
    uint64_t protocol_features = (1ull << 0) | (1ull << 3) | (1ull << 5);  // MQ, REPLY_ACK, BACKEND_REQ
    uint64_t queue_num = 1;
    unsigned socket_mode = 0;  // chmod of the listening socket (0: leave it)

    std::vector<uint32_t> seen() const;  // requests received, in order
    int connections() const { return connections_.load(); }

    // Twists ready to use.
    static Twist stall();                                             // never answer (keep the socket open)
    static Twist close_now();                                         // hang up
    static Twist truncated_reply(uint32_t announced, uint32_t sent);  // header says `announced`, `sent` bytes follow

private:
    void run();
    bool serve(int fd);

    std::string path_;
    Role role_;
    std::vector<std::pair<std::pair<uint32_t, int>, Twist>> twists_;
    std::vector<std::pair<int, Twist>> numbered_;
    mutable std::mutex lock_;
    std::vector<uint32_t> seen_;
    std::atomic<int> connections_{0};
    std::atomic<bool> stop_{false};
    int listen_fd_ = -1;
    int stop_fd_ = -1;
    std::thread thread_;
};

}  // namespace vireo::test
