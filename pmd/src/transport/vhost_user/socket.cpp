#include "transport/vhost_user/socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "vireo/base/error.hpp"

namespace vireo::vhost {
namespace {

using detail::Clock;
using detail::WaitFor;
using detail::Woke;

sockaddr_un address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof(a.sun_path))
        throw Error("vhost-user socket path '" + path + "' is longer than " + std::to_string(sizeof(a.sun_path) - 1) +
                    " bytes: use a shorter path");
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

const char* file_kind(mode_t m) {
    if (S_ISREG(m)) return "a regular file";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISLNK(m)) return "a symbolic link";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m) || S_ISBLK(m)) return "a device file";
    return "not a socket";
}

// "owned by uid 0, gid 0, mode 0755"
std::string ownership(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return "";
    char b[96];
    std::snprintf(b, sizeof b, "owned by uid %u, gid %u, mode %04o", static_cast<unsigned>(st.st_uid),
                  static_cast<unsigned>(st.st_gid), static_cast<unsigned>(st.st_mode & 07777));
    return b;
}

std::string parent_of(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// Refuses an existing path that is not a socket, naming what it is.
void require_socket_or_absent(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
        throw Error(path + " is " + file_kind(st.st_mode) +
                    ", not a vhost-user socket: give the socket's path, or choose another path");
}

// One non-blocking connect attempt: 0 or errno.
int try_connect(const std::string& path, int* out_fd) {
    sockaddr_un a = address(path);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) throw_sys_error("socket(AF_UNIX)", errno);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        *out_fd = fd;
        return 0;
    }
    int e = errno;
    ::close(fd);
    return e;
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
    return "an unknown request";
}

Connection& Connection::operator=(Connection&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = o.fd_;
        stop_fd_ = o.stop_fd_;
        reply_ack_ = o.reply_ack_;
        reply_timeout_ms_ = o.reply_timeout_ms_;
        o.fd_ = -1;
    }
    return *this;
}

void Connection::close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void Connection::shut_down() noexcept {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

void Connection::send(uint32_t request, const void* payload, uint32_t size, const int* fds, int nfds,
                      uint32_t extra_flags) {
    if (fd_ < 0) throw Error(std::string("vhost-user ") + request_name(request) + ": not connected");
    if (nfds < 0 || nfds > static_cast<int>(kMaxFds)) throw Error("too many file descriptors for one message");
    Header h{request, kVersion | extra_flags, size};
    const auto deadline = detail::deadline_in(reply_timeout_ms_);
    size_t done = 0, total = sizeof h + size;
    while (done < total) {
        iovec iov[2];
        int n_iov = 0;
        if (done < sizeof h) iov[n_iov++] = {reinterpret_cast<uint8_t*>(&h) + done, sizeof h - done};
        const size_t pdone = done > sizeof h ? done - sizeof h : 0;
        if (size > pdone)
            iov[n_iov++] = {const_cast<uint8_t*>(static_cast<const uint8_t*>(payload)) + pdone, size - pdone};
        msghdr m{};
        m.msg_iov = iov;
        m.msg_iovlen = static_cast<size_t>(n_iov);
        alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * kMaxFds)];
        if (nfds > 0 && done == 0) {  // the descriptors travel with the first byte
            m.msg_control = ctrl;
            m.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<size_t>(nfds));
            cmsghdr* c = CMSG_FIRSTHDR(&m);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * static_cast<size_t>(nfds));
            std::memcpy(CMSG_DATA(c), fds, sizeof(int) * static_cast<size_t>(nfds));
        }
        ssize_t n = ::sendmsg(fd_, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += static_cast<size_t>(n);
            continue;
        }
        const int e = n < 0 ? errno : EIO;
        if (e == EINTR) continue;
        if (e != EAGAIN && e != EWOULDBLOCK)
            throw_sys_error(std::string("vhost-user ") + request_name(request) + " could not be sent", e,
                            "the back end closed the connection");
        // The back end is not reading: wait, but not forever.
        if (detail::wait_fd(fd_, POLLOUT, deadline, stop_fd_, WaitFor::Reply) != Woke::Ready)
            throw Error(std::string("vhost-user back end did not take ") + request_name(request) + " within " +
                        std::to_string(reply_timeout_ms_) + " ms (it stopped reading its socket)");
    }
}

void Connection::read_exact(void* buf, size_t len, const char* waiting_for, Clock::time_point deadline,
                            std::vector<int>* fds, WaitFor kind, bool header) {
    size_t got = 0;
    while (got < len) {
        iovec iov{static_cast<uint8_t*>(buf) + got, len - got};
        alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * kMaxFds)];
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctrl;
        m.msg_controllen = sizeof ctrl;
        ssize_t n = ::recvmsg(fd_, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n > 0) {
            bool too_many = (m.msg_flags & MSG_CTRUNC) != 0;
            for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
                const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                const int* p = reinterpret_cast<const int*>(CMSG_DATA(c));
                for (size_t i = 0; i < k; i++) {
                    if (fds != nullptr && fds->size() < kMaxFds) {
                        fds->push_back(p[i]);
                    } else {
                        ::close(p[i]);
                        too_many |= fds != nullptr;
                    }
                }
            }
            if (too_many)
                throw Error(std::string("vhost-user back end sent more than ") + std::to_string(kMaxFds) +
                            " file descriptors with " + waiting_for);
            got += static_cast<size_t>(n);
            continue;
        }
        if (n == 0)
            throw Error(std::string("vhost-user back end closed the connection while we waited for ") + waiting_for);
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            throw_sys_error(std::string("reading ") + waiting_for + " from the vhost-user back end", errno);
        const Woke w = detail::wait_fd(fd_, POLLIN, deadline, stop_fd_, kind);
        if (w == Woke::Ready) continue;
        if (w == Woke::Stopped) throw Error(std::string("interrupted while waiting for ") + waiting_for);
        if (got == 0 && header)
            throw Error(std::string("vhost-user back end did not answer ") + waiting_for + " in time");
        throw Error(std::string("vhost-user back end sent ") + std::to_string(got) + " of the " + std::to_string(len) +
                    (header ? " header bytes" : " payload bytes") + " of " + waiting_for +
                    " and then nothing in time: it is stuck or speaks something else");
    }
}

Message Connection::receive(const char* waiting_for, uint32_t max_size, Clock::time_point deadline,
                            std::vector<int>* fds, WaitFor kind) {
    if (fd_ < 0) throw Error(std::string("not connected while waiting for ") + waiting_for);
    Message msg{};
    read_exact(&msg.hdr, sizeof msg.hdr, waiting_for, deadline, fds, kind, true);
    if ((msg.hdr.flags & kVersionMask) != kVersion)
        throw Error(std::string("vhost-user back end sent a message with protocol version ") +
                    std::to_string(msg.hdr.flags & kVersionMask) + " while we waited for " + waiting_for +
                    ": it speaks something else");
    if (msg.hdr.size > max_size || msg.hdr.size > sizeof msg.payload)
        throw Error(std::string("vhost-user back end announced a ") + std::to_string(msg.hdr.size) +
                    "-byte payload for " + waiting_for + ", which carries at most " + std::to_string(max_size) +
                    " bytes");
    read_exact(msg.payload.raw, msg.hdr.size, waiting_for, deadline, fds, kind, false);
    return msg;
}

Message Connection::reply_to(uint32_t request, uint32_t size) {
    std::string what = std::string("the reply to ") + request_name(request);
    Message m = receive(what.c_str(), size, detail::deadline_in(reply_timeout_ms_));
    if (m.hdr.request != request || !(m.hdr.flags & kFlagReply) || m.hdr.size != size)
        throw Error(std::string("vhost-user back end answered ") + request_name(request) + " with " +
                    (m.hdr.flags & kFlagReply ? "a reply to " : "a request ") + request_name(m.hdr.request) + " of " +
                    std::to_string(m.hdr.size) + " bytes (expected " + std::to_string(size) + ")");
    return m;
}

uint64_t Connection::call_u64(uint32_t request) {
    send(request, nullptr, 0);
    return reply_to(request, sizeof(uint64_t)).payload.u64;
}

VringState Connection::call_state(uint32_t request, VringState s) {
    send(request, &s, sizeof s);
    return reply_to(request, sizeof(VringState)).payload.state;
}

void Connection::request(uint32_t request, const void* payload, uint32_t size, const int* fds, int nfds) {
    send(request, payload, size, fds, nfds, reply_ack_ ? kFlagNeedReply : 0);
    if (!reply_ack_) return;
    const uint64_t status = reply_to(request, sizeof(uint64_t)).payload.u64;
    if (status != 0)
        throw Error(std::string("vhost-user back end refused ") + request_name(request) + " (status " +
                    std::to_string(status) + "): see its log for why");
}

Listener::Listener(const std::string& path) : path_(path) {
    sockaddr_un a = address(path);
    require_socket_or_absent(path);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        int probe = -1;
        const int e = try_connect(path, &probe);
        if (e == 0) {
            ::close(probe);
            throw Error("cannot listen on " + path +
                        ": another process is listening on it (a live vhost-user socket); choose another path, "
                        "or stop that process first");
        }
        if (e == EACCES || e == EPERM)
            throw Error("cannot listen on " + path + ": a socket is there, " + ownership(path) +
                        ", and we may not use it: run as its owner, or choose another path");
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)  // stale: nobody listens
            throw_sys_error("cannot remove the stale socket " + path, errno,
                            "remove it by hand or choose another path");
    }
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw_sys_error("socket(AF_UNIX)", errno);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 4) != 0) {
        const int e = errno;
        ::close(fd_);
        fd_ = -1;
        const std::string dir = parent_of(path);
        std::string hint = e == ENOENT                 ? "the directory " + dir + " does not exist: create it"
                           : e == EACCES || e == EPERM ? "the directory " + dir + " is " + ownership(dir) +
                                                             ": run as a user who may write there"
                                                       : "check the directory " + dir;
        throw_sys_error("cannot listen on vhost-user socket " + path, e, hint);
    }
    if (::lstat(path.c_str(), &st) == 0) {
        dev_ = st.st_dev;
        ino_ = st.st_ino;
    }
}

Listener::~Listener() {
    if (fd_ < 0) return;
    ::close(fd_);
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
}

Connection Listener::accept(int timeout_ms, int stop_fd) {
    const auto deadline = timeout_ms < 0 ? Clock::time_point::max() : detail::deadline_in(timeout_ms);
    for (;;) {
        const Woke w = detail::wait_fd(fd_, POLLIN, deadline, stop_fd, WaitFor::Peer);
        if (w == Woke::Stopped) return {};
        if (w == Woke::Timeout)
            throw Error("no vhost-user back end connected to " + path_ + " within " + std::to_string(timeout_ms) +
                        " ms: start it in client mode (e.g. --vdev 'net_vhost0,iface=" + path_ + ",client=1')");
        int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) return Connection(fd, stop_fd);
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            throw_sys_error("accept on " + path_, errno);
    }
}

Connection connect_to(const std::string& path, int timeout_ms, int stop_fd) {
    const auto deadline = timeout_ms < 0 ? Clock::time_point::max() : detail::deadline_in(timeout_ms);
    int backoff_ms = 10, last = 0;
    for (;;) {
        require_socket_or_absent(path);
        int fd = -1;
        last = try_connect(path, &fd);
        if (last == 0) return Connection(fd, stop_fd);
        if (last == EACCES || last == EPERM)
            throw_sys_error("cannot connect to vhost-user socket " + path, last,
                            "it is " + ownership(path) +
                                " (connecting needs write permission on it): run as a user who may, or change "
                                "its owner or mode");
        if (last != ENOENT && last != ECONNREFUSED && last != EAGAIN)
            throw_sys_error("cannot connect to vhost-user socket " + path, last);
        // Missing, or nobody listening yet: the back end may be starting.
        auto next = detail::deadline_in(backoff_ms);
        if (next > deadline) next = deadline;
        if (detail::sleep_unless_stopped(next, stop_fd)) return {};
        if (detail::Clock::now() >= deadline) break;
        backoff_ms = backoff_ms * 2 > 500 ? 500 : backoff_ms * 2;
    }
    std::string hint = last == ENOENT
                           ? "start the back end first (e.g. dpdk-testpmd --vdev 'net_vhost0,iface=" + path +
                                 "'), or open the port with server=1 and start the back end with client=1"
                           : "the socket file exists but nothing listens on it (a back end that exited without "
                             "removing it): start the back end";
    throw_sys_error("cannot connect to vhost-user socket " + path + " within " + std::to_string(timeout_ms) + " ms",
                    last, hint);
}

}  // namespace vireo::vhost
