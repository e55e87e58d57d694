// A vhost-user connection: one unix stream socket, messages with file
// descriptors, replies with a timeout. Errors name the request and the cause.
#pragma once

#include <string>
#include <vector>

#include "vhost_user_msg.hpp"

namespace vireo::vhost {

class Connection {
public:
    // Client: connects to a back end listening at path (retries until timeout_ms).
    static Connection connect_to(const std::string& path, int timeout_ms);
    // Server: listens at path (replacing a stale socket file); accept() waits for the back end.
    static int listen_on(const std::string& path);
    static Connection accept_from(int listen_fd, const std::string& path, int timeout_ms);

    Connection() = default;
    explicit Connection(int fd) : fd_(fd) {}
    Connection(Connection&& o) noexcept : fd_(o.fd_), reply_ack_(o.reply_ack_) { o.fd_ = -1; }
    Connection& operator=(Connection&& o) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection();

    bool valid() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    // With REPLY_ACK negotiated, requests without a natural reply ask for an ack.
    void set_reply_ack(bool on) { reply_ack_ = on; }

    void send(uint32_t request, const void* payload, uint32_t size, const int* fds = nullptr, int nfds = 0,
              uint32_t extra_flags = 0);
    // Receives one message (and up to 8 fds); throws on timeout or hang-up.
    Message receive(std::vector<int>* fds, int timeout_ms, const char* waiting_for);

    // Request with a u64 reply (GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, IOTLB_MSG).
    uint64_t call_u64(uint32_t request, const void* payload = nullptr, uint32_t size = 0);
    // Request with a struct reply of the same kind (GET_VRING_BASE).
    VringState call_state(uint32_t request, VringState s);
    // Request without a natural reply: acked when REPLY_ACK is on.
    void request(uint32_t request, const void* payload, uint32_t size, const int* fds = nullptr, int nfds = 0);

    static constexpr int kReplyTimeoutMs = 5000;

private:
    int fd_ = -1;
    bool reply_ack_ = false;
};

}  // namespace vireo::vhost
