#include "vhost_user_conn.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "vireo/base/error.hpp"

namespace vireo::vhost {
namespace {

sockaddr_un address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof(a.sun_path))
        throw Error("vhost-user socket path '" + path + "' is longer than " + std::to_string(sizeof(a.sun_path) - 1) +
                    " bytes: use a shorter path");
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

}  // namespace

const char* request_name(uint32_t r) {
    switch (r) {
    case kGetFeatures: return "GET_FEATURES";
    case kSetFeatures: return "SET_FEATURES";
    case kSetOwner: return "SET_OWNER";
    case kResetOwner: return "RESET_OWNER";
    case kSetMemTable: return "SET_MEM_TABLE";
    case kSetVringNum: return "SET_VRING_NUM";
    case kSetVringAddr: return "SET_VRING_ADDR";
    case kSetVringBase: return "SET_VRING_BASE";
    case kGetVringBase: return "GET_VRING_BASE";
    case kSetVringKick: return "SET_VRING_KICK";
    case kSetVringCall: return "SET_VRING_CALL";
    case kSetVringErr: return "SET_VRING_ERR";
    case kGetProtocolFeatures: return "GET_PROTOCOL_FEATURES";
    case kSetProtocolFeatures: return "SET_PROTOCOL_FEATURES";
    case kGetQueueNum: return "GET_QUEUE_NUM";
    case kSetVringEnable: return "SET_VRING_ENABLE";
    case kSetBackendReqFd: return "SET_BACKEND_REQ_FD";
    case kIotlbMsg: return "IOTLB_MSG";
    case kGetConfig: return "GET_CONFIG";
    }
    return "UNKNOWN";
}

Connection Connection::connect_to(const std::string& path, int timeout_ms) {
    sockaddr_un a = address(path);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    int last = 0;
    for (;;) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw_sys_error("socket(AF_UNIX)", errno);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return Connection(fd);
        last = errno;
        ::close(fd);
        if (std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::string hint = last == ENOENT ? "start the back end first (e.g. dpdk-testpmd --vdev 'net_vhost0,iface=" + path +
                                            "'), or open the port with server=1 and start the back end with client=1"
                                      : "check that the back end is listening on it";
    throw_sys_error("cannot connect to vhost-user socket " + path, last, hint);
}

int Connection::listen_on(const std::string& path) {
    sockaddr_un a = address(path);
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) throw Error(path + " exists and is not a socket: choose another path");
        ::unlink(path.c_str());  // a stale socket from an earlier run
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw_sys_error("socket(AF_UNIX)", errno);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1) != 0) {
        int e = errno;
        ::close(fd);
        throw_sys_error("cannot listen on vhost-user socket " + path, e, "check the directory exists and is writable");
    }
    return fd;
}

Connection Connection::accept_from(int listen_fd, const std::string& path, int timeout_ms) {
    pollfd p{listen_fd, POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r == 0)
        throw Error("no vhost-user back end connected to " + path + " within " + std::to_string(timeout_ms) +
                    " ms: start it in client mode (e.g. --vdev 'net_vhost0,iface=" + path + ",client=1')");
    if (r < 0) throw_sys_error("poll on " + path, errno);
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) throw_sys_error("accept on " + path, errno);
    return Connection(fd);
}

Connection& Connection::operator=(Connection&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.fd_;
        reply_ack_ = o.reply_ack_;
        o.fd_ = -1;
    }
    return *this;
}

Connection::~Connection() {
    if (fd_ >= 0) ::close(fd_);
}

void Connection::send(uint32_t request, const void* payload, uint32_t size, const int* fds, int nfds,
                      uint32_t extra_flags) {
    Header h{request, kVersion | extra_flags, size};
    iovec iov[2] = {{&h, sizeof h}, {const_cast<void*>(payload), size}};
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = size ? 2 : 1;
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * kMaxRegions)];
    if (nfds > 0) {
        m.msg_control = ctrl;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cmsghdr* c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n = ::sendmsg(fd_, &m, MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(sizeof h + size))
        throw_sys_error(std::string("vhost-user ") + request_name(request) + " could not be sent", n < 0 ? errno : EIO,
                        "the back end closed the connection");
}

Message Connection::receive(std::vector<int>* fds, int timeout_ms, const char* waiting_for) {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r == 0)
        throw Error(std::string("vhost-user back end did not answer ") + waiting_for + " within " +
                    std::to_string(timeout_ms) + " ms");
    if (r < 0) throw_sys_error("poll on the vhost-user socket", errno);
    Message msg{};
    iovec iov{&msg.hdr, sizeof msg.hdr};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * kMaxRegions)];
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctrl;
    m.msg_controllen = sizeof ctrl;
    ssize_t n = ::recvmsg(fd_, &m, MSG_CMSG_CLOEXEC);
    if (n == 0)
        throw Error(std::string("vhost-user back end closed the connection while we waited for ") + waiting_for);
    if (n != static_cast<ssize_t>(sizeof msg.hdr))
        throw_sys_error(std::string("short vhost-user header while waiting for ") + waiting_for, n < 0 ? errno : EIO);
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const int* got = reinterpret_cast<const int*>(CMSG_DATA(c));
        for (size_t i = 0; i < k; i++) {
            if (fds != nullptr)
                fds->push_back(got[i]);
            else
                ::close(got[i]);
        }
    }
    if (msg.hdr.size > sizeof msg.payload)
        throw Error(std::string("vhost-user message of ") + std::to_string(msg.hdr.size) + " bytes while waiting for " +
                    waiting_for + ": the back end speaks something else");
    size_t got = 0;
    while (got < msg.hdr.size) {
        ssize_t k = ::recv(fd_, msg.payload.raw + got, msg.hdr.size - got, 0);
        if (k <= 0) throw_sys_error(std::string("short vhost-user payload for ") + waiting_for, k < 0 ? errno : EIO);
        got += static_cast<size_t>(k);
    }
    return msg;
}

uint64_t Connection::call_u64(uint32_t request, const void* payload, uint32_t size) {
    send(request, payload, size);
    Message m = receive(nullptr, kReplyTimeoutMs, request_name(request));
    if (m.hdr.request != request || !(m.hdr.flags & kFlagReply) || m.hdr.size != sizeof(uint64_t))
        throw Error(std::string("vhost-user back end answered ") + request_name(request) + " with " +
                    request_name(m.hdr.request) + " (" + std::to_string(m.hdr.size) + " bytes)");
    return m.payload.u64;
}

VringState Connection::call_state(uint32_t request, VringState s) {
    send(request, &s, sizeof s);
    Message m = receive(nullptr, kReplyTimeoutMs, request_name(request));
    if (m.hdr.request != request || m.hdr.size != sizeof(VringState))
        throw Error(std::string("vhost-user back end answered ") + request_name(request) + " with " +
                    request_name(m.hdr.request));
    return m.payload.state;
}

void Connection::request(uint32_t request, const void* payload, uint32_t size, const int* fds, int nfds) {
    send(request, payload, size, fds, nfds, reply_ack_ ? kFlagNeedReply : 0);
    if (!reply_ack_) return;
    Message m = receive(nullptr, kReplyTimeoutMs, request_name(request));
    if (m.hdr.request != request || m.hdr.size != sizeof(uint64_t))
        throw Error(std::string("vhost-user back end acked ") + request_name(request) + " with " +
                    request_name(m.hdr.request));
    if (m.payload.u64 != 0)
        throw Error(std::string("vhost-user back end refused ") + request_name(request) + " (status " +
                    std::to_string(m.payload.u64) + "): see its log for why");
}

}  // namespace vireo::vhost
