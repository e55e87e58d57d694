#include "vm_kernel.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "vireo/base/error.hpp"
#include "vm_ctrl.hpp"

namespace vm {
namespace {

using Clock = std::chrono::steady_clock;

// Byte i of the pattern: a SplitMix64 stream, 8 bytes per step.
uint8_t pattern(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i / 8 + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return static_cast<uint8_t>(z >> ((i % 8) * 8));
}

int ms_left(Clock::time_point end) {
    const auto l = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
    return l > 0 ? static_cast<int>(l) : 0;
}

// Waits for fd to be ready for `events` before the deadline.
bool ready(int fd, short events, Clock::time_point end) {
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, ms_left(end)) == 1;
}

}  // namespace

uint64_t pinned_bytes() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmPin:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // "VmPin:   1234 kB"
    return 0;
}

void enter_netns(const std::string& name) {
    const std::string path = "/run/netns/" + name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0)
        throw vireo::Error("entering network namespace " + path + ": " + std::strerror(errno));
    ::close(fd);
}

void tcp_send(const std::string& to, uint64_t bytes, uint64_t seed, int seconds) {
    const auto colon = to.rfind(':');
    sockaddr_in a{};
    a.sin_family = AF_INET;
    if (colon == std::string::npos || ::inet_pton(AF_INET, to.substr(0, colon).c_str(), &a.sin_addr) != 1)
        throw vireo::Error("tcp-send: --to " + to + " is not IPv4:PORT");
    a.sin_port = htons(static_cast<uint16_t>(std::stoi(to.substr(colon + 1))));
    const auto end = Clock::now() + std::chrono::seconds(seconds);
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS)
        throw vireo::Error(std::string("tcp-send: connect: ") + std::strerror(errno));
    int err = 0;
    socklen_t len = sizeof err;
    const bool connected = ready(s, POLLOUT, end) && ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    check(connected, "tcp-send: connected to " + to, err != 0 ? std::strerror(err) : "timed out");
    std::vector<uint8_t> buf(256 << 10);
    uint64_t sent = 0;
    while (connected && sent < bytes && ready(s, POLLOUT, end)) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), bytes - sent));
        for (size_t i = 0; i < n; i++) buf[i] = pattern(seed, sent + i);
        const ssize_t w = ::send(s, buf.data(), n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) break;
        if (w > 0) sent += static_cast<uint64_t>(w);
    }
    ::shutdown(s, SHUT_WR);
    // Until the receiver closes: everything was read on the other side.
    char c;
    while (connected && ready(s, POLLIN, end) && ::recv(s, &c, 1, 0) > 0) {
    }
    ::close(s);
    check(sent == bytes, "tcp-send: " + std::to_string(bytes) + " bytes sent",
          "sent " + std::to_string(sent) + " before the time limit");
}

void tcp_receive(uint16_t port, uint64_t bytes, uint64_t seed, int seconds) {
    const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 1) != 0)
        throw vireo::Error(std::string("tcp-recv: listen: ") + std::strerror(errno));
    std::printf("LISTENING %u\n", port);
    std::fflush(stdout);
    const auto end = Clock::now() + std::chrono::seconds(seconds);
    const bool came = ready(l, POLLIN, end);
    check(came, "tcp-recv: a connection came", "none within " + std::to_string(seconds) + " s");
    if (!came) return;
    const int s = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    ::close(l);
    std::vector<uint8_t> buf(256 << 10);
    uint64_t got = 0, bad = 0, first_bad = ~uint64_t{0};
    for (;;) {
        if (!ready(s, POLLIN, end)) break;
        const ssize_t r = ::recv(s, buf.data(), buf.size(), 0);
        if (r == 0) break;  // the sender finished
        if (r < 0) {
            if (errno == EAGAIN) continue;
            break;
        }
        for (ssize_t i = 0; i < r; i++)
            if (buf[static_cast<size_t>(i)] != pattern(seed, got + static_cast<uint64_t>(i))) {
                if (bad++ == 0) first_bad = got + static_cast<uint64_t>(i);
            }
        got += static_cast<uint64_t>(r);
    }
    ::close(s);
    std::printf("INFO tcp-recv: %llu bytes, %llu wrong\n", static_cast<unsigned long long>(got),
                static_cast<unsigned long long>(bad));
    check(got == bytes, "tcp-recv: all " + std::to_string(bytes) + " bytes arrived", "got " + std::to_string(got));
    check(bad == 0, "tcp-recv: every byte is the sender's", "first wrong byte at offset " + std::to_string(first_bad));
}

void check_fwd_json(const std::string& file, const FwdExpectations& e) {
    std::ifstream in(file);
    check(in.good(), "vireo-fwd wrote " + file);
    if (!in.good()) return;
    const nlohmann::json j = nlohmann::json::parse(in);
    check(!j["pool"]["leaked"].get<bool>(), "vireo-fwd: every buffer back in the pool",
          std::to_string(j["pool"]["in_use_after_stop"].get<uint64_t>()) + " still out");
    uint64_t rx_tso = 0;
    for (const auto& p : j["ports"]) {
        const std::string dev = p["device"];
        std::printf("INFO %s: rx %llu packets %llu bytes %llu tso; tx %llu packets %llu tso; iova %s (%s)%s\n",
                    dev.c_str(), p["rx_packets"].get<unsigned long long>(), p["rx_bytes"].get<unsigned long long>(),
                    p["rx_tso"].get<unsigned long long>(), p["tx_packets"].get<unsigned long long>(),
                    p["tx_tso"].get<unsigned long long>(), p["iova_mode"].get<std::string>().c_str(),
                    p["iova_why"].get<std::string>().c_str(),
                    p.contains("iotlb") ? (" iotlb " + p["iotlb"].dump()).c_str() : "");
        rx_tso += p["rx_tso"].get<uint64_t>();
        check(p["rx_packets"].get<uint64_t>() > 0 && p["tx_packets"].get<uint64_t>() > 0, dev + ": frames both ways");
        check(p["errors"].get<uint64_t>() == 0 && p["fault"].get<std::string>().empty(), dev + ": no errors, no fault",
              p["fault"].get<std::string>());
        if (p.contains("stop"))
            check(p["stop"]["tx_undelivered"].get<uint64_t>() == 0, dev + ": clean stop sent what it accepted");
        if (e.mode) check(p["iova_mode"] == *e.mode, dev + ": IOVA mode " + *e.mode, p["iova_mode"].dump());
        if (e.queues)
            check(p["queues"].size() == *e.queues, dev + ": " + std::to_string(*e.queues) + " queue pair(s)",
                  std::to_string(p["queues"].size()));
        if (e.iotlb && *e.iotlb)
            check(p.contains("iotlb") && p["iotlb"]["updates"].get<uint64_t>() > 0 &&
                      p["iotlb"]["misses_refused"].get<uint64_t>() == 0,
                  dev + ": vireo was its IOMMU (IOTLB updates, no refused miss)",
                  p.contains("iotlb") ? p["iotlb"].dump() : "no iotlb counters");
        if (e.iotlb && !*e.iotlb) check(!p.contains("iotlb"), dev + ": no IOTLB (ACCESS_PLATFORM off)");
    }
    if (e.tso && *e.tso) check(rx_tso > 0, "64 KiB TCP segments crossed vireo (rx_tso > 0)");
    if (e.tso && !*e.tso)
        check(rx_tso == 0, "no TCP segment larger than a frame (TSO off)", std::to_string(rx_tso) + " arrived");
}

}  // namespace vm
