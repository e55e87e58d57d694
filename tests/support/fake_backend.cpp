#include "fake_backend.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>

namespace vireo::test {
namespace {

constexpr uint32_t kReply = 1u << 2, kNeedReply = 1u << 3;
enum : uint32_t {
    kGetFeatures = 1,
    kGetVringBase = 11,
    kGetProtocolFeatures = 15,
    kGetQueueNum = 17,
    kSetBackendReqFd = 21,
};

sockaddr_un addr_of(const std::string& p) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, p.c_str(), sizeof a.sun_path - 1);
    return a;
}

// Waits for fd (or the stop fd) up to ms: true when fd is readable.
bool readable(int fd, int stop_fd, int ms) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    return ::poll(p, 2, ms) > 0 && p[0].revents != 0 && p[1].revents == 0;
}

// Reads exactly n bytes (with fds), false on EOF, error or stop.
bool read_all(int fd, int stop_fd, void* buf, size_t n, std::vector<int>* fds) {
    size_t got = 0;
    while (got < n) {
        if (!readable(fd, stop_fd, 10000)) return false;
        iovec iov{static_cast<uint8_t*>(buf) + got, n - got};
        alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * 8)];
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctrl;
        m.msg_controllen = sizeof ctrl;
        const ssize_t r = ::recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
        if (r <= 0) return false;
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) fds->push_back(reinterpret_cast<const int*>(CMSG_DATA(c))[i]);
            }
        got += static_cast<size_t>(r);
    }
    return true;
}

}  // namespace

void FakeBackend::Peer::write_raw(const void* p, size_t n) const {
    size_t done = 0;
    while (done < n) {
        const ssize_t r = ::send(fd, static_cast<const uint8_t*>(p) + done, n - done, MSG_NOSIGNAL);
        if (r <= 0) return;
        done += static_cast<size_t>(r);
    }
}

void FakeBackend::Peer::reply(uint32_t request, const void* payload, uint32_t size, uint32_t flags) const {
    const uint32_t h[3] = {request, flags, size};
    std::vector<uint8_t> m(reinterpret_cast<const uint8_t*>(h), reinterpret_cast<const uint8_t*>(h) + sizeof h);
    const auto* p = static_cast<const uint8_t*>(payload);
    m.insert(m.end(), p, p + size);
    write_raw(m.data(), m.size());
}

FakeBackend::Twist FakeBackend::stall() {
    return [](const Peer&, const FakeMsg&) { return true; };
}
FakeBackend::Twist FakeBackend::close_now() {
    return [](const Peer&, const FakeMsg&) { return false; };
}
FakeBackend::Twist FakeBackend::truncated_reply(uint32_t announced, uint32_t sent) {
    return [announced, sent](const Peer& p, const FakeMsg& m) {
        const uint32_t h[3] = {m.request, 0x5, announced};
        p.write_raw(h, sizeof h);
        std::vector<uint8_t> body(sent, 0);
        p.write_raw(body.data(), body.size());
        return true;  // and keep the socket open
    };
}

FakeBackend::FakeBackend(const std::string& path, Role role) : path_(path), role_(role) {
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (role_ == Role::Listen) {
        ::unlink(path.c_str());
        listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a = addr_of(path);
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 4) != 0)
            throw std::runtime_error("fake back end cannot listen on " + path);
    }
}

FakeBackend::~FakeBackend() {
    stop_ = true;
    uint64_t one = 1;
    ssize_t r = ::write(stop_fd_, &one, sizeof one);
    (void)r;
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        ::unlink(path_.c_str());
    }
    ::close(stop_fd_);
}

void FakeBackend::on(uint32_t request, Twist t, int nth) { twists_.push_back({{request, nth}, std::move(t)}); }
void FakeBackend::on_message_number(int n, Twist t) { numbered_.push_back({n, std::move(t)}); }

void FakeBackend::start() {
    if (listen_fd_ >= 0 && socket_mode != 0) ::chmod(path_.c_str(), socket_mode);
    thread_ = std::thread([this] { run(); });
}

std::vector<uint32_t> FakeBackend::seen() const {
    std::lock_guard<std::mutex> g(lock_);
    return seen_;
}

void FakeBackend::run() {
    while (!stop_) {
        int fd = -1;
        if (role_ == Role::Listen) {
            if (!readable(listen_fd_, stop_fd_, 100)) continue;
            fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        } else {
            fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_un a = addr_of(path_);
            if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
                ::close(fd);
                fd = -1;
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        }
        if (fd < 0) continue;
        connections_++;
        const bool again = serve(fd);
        ::close(fd);
        if (!again) return;
    }
}

// One connection: false when the test is over.
bool FakeBackend::serve(int fd) {
    Peer peer{fd, -1};
    std::map<uint32_t, int> count;
    int number = 0;
    bool open = true;
    while (open && !stop_) {
        if (!readable(fd, stop_fd_, 100)) {
            pollfd p{fd, POLLRDHUP, 0};
            if (::poll(&p, 1, 0) > 0) break;  // the front end hung up
            continue;
        }
        FakeMsg m;
        uint32_t h[3];
        if (!read_all(fd, stop_fd_, h, sizeof h, &m.fds)) break;
        m.request = h[0];
        m.flags = h[1];
        m.size = h[2];
        m.payload.resize(m.size);
        if (m.size > 4096 || !read_all(fd, stop_fd_, m.payload.data(), m.size, &m.fds)) break;
        {
            std::lock_guard<std::mutex> g(lock_);
            seen_.push_back(m.request);
        }
        number++;
        const int nth = ++count[m.request];
        if (m.request == kSetBackendReqFd && !m.fds.empty()) {
            if (peer.backend_fd >= 0) ::close(peer.backend_fd);
            peer.backend_fd = m.fds[0];
            m.fds.erase(m.fds.begin());
        }
        Twist* twist = nullptr;
        for (auto& [key, t] : twists_)
            if (key.first == m.request && key.second == nth) twist = &t;
        for (auto& [n, t] : numbered_)
            if (number >= n) twist = &t;
        if (twist != nullptr) {
            open = (*twist)(peer, m);
        } else {
            switch (m.request) {
            case kGetFeatures: peer.reply_u64(m.request, features); break;
            case kGetProtocolFeatures: peer.reply_u64(m.request, protocol_features); break;
            case kGetQueueNum: peer.reply_u64(m.request, queue_num); break;
            case kGetVringBase: {
                const uint32_t st[2] = {m.size >= 4 ? *reinterpret_cast<uint32_t*>(m.payload.data()) : 0, 0};
                peer.reply(m.request, st, sizeof st);
                break;
            }
            default:
                if (m.flags & kNeedReply) peer.reply_u64(m.request, 0);
            }
        }
        for (int x : m.fds) ::close(x);
    }
    // Held until the front end goes (a stalled back end keeps its channel open too).
    while (open && !stop_) {
        pollfd p{fd, POLLRDHUP, 0};
        if (::poll(&p, 1, 100) > 0) break;
    }
    if (peer.backend_fd >= 0) ::close(peer.backend_fd);
    return !stop_;
}

}  // namespace vireo::test
