#include "testpmd.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace vireo::test {

namespace {
std::atomic<int> g_seq{0};
}

bool TestPmd::available() { return ::access("/usr/bin/dpdk-testpmd", X_OK) == 0; }

TestPmd::TestPmd(const TestPmdOptions& o) : o_(o) {
    prefix_ = "vireo-t" + std::to_string(::getpid()) + "-" + std::to_string(g_seq++);
    log_ = "/tmp/" + prefix_ + ".log";
    start();
}

void TestPmd::start() {
    auto vdev_of = [&](int n, const std::string& socket) {
        if (o_.virtio_user)
            return "net_virtio_user" + std::to_string(n) + ",path=" + socket + ",queues=" + std::to_string(o_.queues) +
                   (o_.virtio_user_server ? ",server=1" : "");
        std::string v = "net_vhost" + std::to_string(n) + ",iface=" + socket + ",queues=" + std::to_string(o_.queues);
        if (o_.client) v += ",client=1";
        if (o_.iommu) v += ",iommu-support=1";
        if (!o_.vhost_args.empty()) v += "," + o_.vhost_args;
        return v;
    };
    const std::string vdev = vdev_of(0, o_.socket);
    // stdbuf: line-buffered output, so the log shows progress as it happens.
    std::vector<std::string> args = {"stdbuf",
                                     "-oL",
                                     "-eL",
                                     "/usr/bin/dpdk-testpmd",
                                     "-l",
                                     "0,1",
                                     "--main-lcore",
                                     o_.fwd_cpu == 1 ? "0" : "1",
                                     "--no-pci",
                                     "--file-prefix=" + prefix_,
                                     "--no-huge",
                                     "-m",
                                     "512",
                                     "--log-level=lib.eal:error",
                                     "--vdev",
                                     vdev,
                                     "--",
                                     "--forward-mode=" + o_.forward,
                                     o_.interactive ? "-i" : "--auto-start",
                                     "--disable-link-check",
                                     "--total-num-mbufs=16384",
                                     "--nb-cores=1",
                                     "--rxq=" + std::to_string(o_.queues),
                                     "--txq=" + std::to_string(o_.queues)};
    for (size_t i = 0; i < o_.more_sockets.size(); i++) {  // before the "--" that ends EAL's arguments
        auto end_of_eal = std::find(args.begin(), args.end(), std::string("--"));
        end_of_eal = args.insert(end_of_eal, vdev_of(static_cast<int>(i + 1), o_.more_sockets[i]));
        args.insert(end_of_eal, "--vdev");
    }
    if (!o_.interactive) args.push_back("--stats-period=0");
    if (o_.interactive) args.push_back("--no-flush-rx");  // "start" would drop what waits in the Rx queues
    if (o_.mbuf_size) {
        args.push_back("--mbuf-size=" + std::to_string(o_.mbuf_size));
        args.push_back("--max-pkt-len=9600");
    }
    int in[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
        ::dup2(in[0], 0);
        int log = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        std::string cmd = "$";
        for (auto& a : args) cmd += " " + a;
        cmd += "\n";
        ssize_t w = ::write(log, cmd.data(), cmd.size());
        (void)w;
        ::dup2(log, 1);
        ::dup2(log, 2);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv("/usr/bin/stdbuf", argv.data());
        ::_exit(127);
    }
    ::close(in[0]);
    stdin_fd_ = in[1];  // held open: testpmd runs until its stdin closes or a signal
}

bool TestPmd::wait_for_socket(int timeout_ms) const {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    struct stat st {};
    while (std::chrono::steady_clock::now() < end) {
        if (::stat(o_.socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

bool TestPmd::wait_forwarding(int timeout_ms) const {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < end) {
        if (log_tail(1 << 20).find("Press enter to exit") != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

void TestPmd::command(const std::string& line) {
    const std::string l = line + "\n";
    if (stdin_fd_ < 0 || ::write(stdin_fd_, l.data(), l.size()) != static_cast<ssize_t>(l.size()))
        throw std::runtime_error("testpmd is not running: cannot send '" + line + "'");
}

// Also the end of stop(): the pipe to testpmd's stdin is closed however it
// exited (a soak restarting testpmd every few seconds found one fd leaked per
// clean stop when only the SIGKILL path closed it).
void TestPmd::kill_hard() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
    std::error_code ec;
    std::filesystem::remove_all("/var/run/dpdk/" + prefix_, ec);
}

void TestPmd::stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    for (int i = 0; i < 250; i++) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill_hard();
}

TestPmd::~TestPmd() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all("/var/run/dpdk/" + prefix_, ec);
    if (!o_.client) {
        std::filesystem::remove(o_.socket, ec);
        for (const auto& m : o_.more_sockets) std::filesystem::remove(m, ec);
    }
    std::filesystem::remove(log_, ec);
}

std::string TestPmd::log_tail(size_t bytes) const {
    std::ifstream f(log_);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string s = ss.str();
    return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

}  // namespace vireo::test
