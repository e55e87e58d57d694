// vireo: telemetry in DPDK's v2 socket protocol, so the tools DPDK operators
// already run read vireo's ports: dpdk-telemetry.py (Debian's dpdk package),
// and the collectd / telegraf DPDK plugins built on the same socket.
//
//   Telemetry t(ports, {.file_prefix = "fwd1"});   // <run>/dpdk/fwd1/dpdk_telemetry.v2
//   $ dpdk-telemetry.py -f fwd1
//   --> /ethdev/stats,0
//
// The protocol (DPDK's lib/telemetry, doc/guides/howto/telemetry.rst): a unix
// SOCK_SEQPACKET socket in DPDK's runtime folder; on connect the server sends
// {"version", "pid", "max_output_len"}; each message after that is a command
// "/path[,params]" answered with {"/path": data}, or {"/path": null} when the
// command or its parameters are unknown. Commands: /, /info, /help,CMD,
// /ethdev/list, /ethdev/info,N, /ethdev/stats,N (DPDK's field names),
// /ethdev/xstats,N (vireo's own counters), /ethdev/link_status,N, and
// /vireo/iova,N (the IOVA mode, bit 33 and why), /vireo/rx_offloads,N (the
// receive offloads the device applies).
//
// Commands that change a port (/vireo/rx_offloads,N,csum+tso4 or ,none) are
// off unless TelemetryOptions::port_commands: then the socket is the process
// user's alone (mode 0600, never open to every local user) and each command
// runs on the application's control thread, which calls run_pending() (a
// NetPort's control calls are not made concurrently); the client waits for it.
//
// Reading never touches the data path: counters are read as the statistics
// calls read them (NetPort::rx_stats and friends), from the server's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vireo {

class NetPort;

struct TelemetryOptions {
    std::string file_prefix = "vireo";  // DPDK's --file-prefix: the runtime folder's name
    std::string version = "vireo";      // what /info calls the application
    bool port_commands = false;         // allow commands that change a port (socket mode 0600)
};

// DPDK's runtime folder for a file prefix: $RUNTIME_DIRECTORY, else /var/run
// for root, else $XDG_RUNTIME_DIR or /tmp; then dpdk/PREFIX.
std::string telemetry_runtime_dir(const std::string& file_prefix);

class Telemetry {
public:
    // Creates the socket (throws Error when another live process serves it)
    // and serves it from a thread of its own until destroyed.
    Telemetry(std::vector<NetPort*> ports, const TelemetryOptions& o = {});
    ~Telemetry();  // stops serving; removes the socket
    Telemetry(const Telemetry&) = delete;
    Telemetry& operator=(const Telemetry&) = delete;

    const std::string& socket_path() const noexcept { return path_; }
    // The answer to one command, as the socket sends it.
    std::string answer(const std::string& request) const;
    static constexpr size_t kMaxOutputLen = 16384;
    // The application's control thread: runs the port commands that came in
    // and returns a line for each ("port 0: rx offloads csum=0 tso4=0 tso6=0").
    std::vector<std::string> run_pending();
    // How long a port command waits for run_pending() before it answers an error.
    static constexpr int kCommandWaitMs = 2000;

private:
    struct Job;
    void serve();
    std::string greeting() const;
    // Queues work for run_pending() and waits for it (kCommandWaitMs for it to start).
    std::string run_on_control_thread(const std::string& cmd, std::function<std::string(std::string& log)> work) const;

    std::vector<NetPort*> ports_;
    TelemetryOptions opts_;
    std::string path_;
    int listen_fd_ = -1;
    int stop_fd_ = -1;
    std::thread thread_;
    mutable std::mutex jobs_mu_;
    mutable std::condition_variable jobs_cv_;
    mutable std::deque<std::shared_ptr<Job>> jobs_;
    bool closing_ = false;  // under jobs_mu_: a command waiting for the control thread gives up
};

}  // namespace vireo
