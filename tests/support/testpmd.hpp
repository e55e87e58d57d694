// Test helper: DPDK's testpmd with a net_vhost port as the real vhost-user
// peer. Each instance has its own --file-prefix and log; the destructor stops
// it and removes /var/run/dpdk/PREFIX.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace vireo::test {

struct TestPmdOptions {
    std::string socket;
    int queues = 1;
    bool client = false;  // the back end connects to us (our port in server mode)
    bool iommu = false;   // iommu-support=1: offers ACCESS_PLATFORM, uses IOTLB
    std::string forward = "io";
    int mbuf_size = 0;  // 0: testpmd's default
    // More vhost ports (net_vhost1, 2...), in testpmd's port order after the
    // first; testpmd's io/macswap pair them 0<->1, 2<->3.
    std::vector<std::string> more_sockets;
    // DPDK's own front end instead of its back end: net_virtio_user ports, as
    // the peer of a vireo port through a switch.
    bool virtio_user = false;
    bool virtio_user_server = true;  // virtio-user listens (OVS's dpdkvhostuserclient connects)
    int fwd_cpu = 1;                 // the forwarding lcore's CPU (the main lcore takes the other of 0 and 1)
    std::string vhost_args;          // more net_vhost devargs for every port, e.g. "tso=1,legacy-ol-flags=1"
    // testpmd's prompt (-i) instead of --auto-start: nothing is forwarded
    // until command("start"), so frames wait in the front end's rings (and
    // --no-flush-rx: "start" forwards them instead of dropping them).
    bool interactive = false;
};

class TestPmd {
public:
    explicit TestPmd(const TestPmdOptions& o);
    ~TestPmd();
    TestPmd(const TestPmd&) = delete;
    TestPmd& operator=(const TestPmd&) = delete;

    // Server-mode back end: waits until its socket exists.
    bool wait_for_socket(int timeout_ms) const;
    // Waits until testpmd forwards ("Press enter to exit"). DPDK 22.11's vhost
    // PMD in client mode never transmits to a front end whose rings were
    // enabled before its port started, so a server-mode test completes the
    // handshake only after this.
    bool wait_forwarding(int timeout_ms) const;
    // interactive: one command line to testpmd's prompt, e.g. "start".
    void command(const std::string& line);
    void kill_hard();             // SIGKILL, as a crash would
    void stop(int sig = SIGINT);  // sig (a clean exit), then SIGKILL after 5 s
    bool running() const { return pid_ > 0; }
    std::string log_tail(size_t bytes = 3000) const;
    const std::string& prefix() const { return prefix_; }

    static bool available();

private:
    void start();
    TestPmdOptions o_;
    std::string prefix_, log_;
    pid_t pid_ = -1;
    int stdin_fd_ = -1;
};

}  // namespace vireo::test
