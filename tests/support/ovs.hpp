// Test helper: Open vSwitch with DPDK (Debian's openvswitch-switch-dpdk) as
// the vhost-user back end operators run, started by the test itself: no
// systemd, a private folder for its database, sockets and logs, a unique
// DPDK file prefix, one PMD thread on pmd_cpu. One bridge (datapath netdev);
// ports are dpdkvhostuserclient (OVS connects to sockets vireo listens on).
// The destructor stops both daemons and removes everything they made.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace vireo::test {

struct OvsOptions {
    bool iommu = false;       // other_config:vhost-iommu-support (offers ACCESS_PLATFORM, uses IOTLB)
    int pmd_cpu = 1;          // other_config:pmd-cpu-mask
    int socket_mem_mb = 512;  // other_config:dpdk-socket-mem (2 MiB hugepages)
    bool tso = false;         // other_config:userspace-tso-enable (offers HOST_TSO, takes GUEST_TSO)
};

class Ovs {
public:
    explicit Ovs(const OvsOptions& o = {});
    ~Ovs();
    Ovs(const Ovs&) = delete;
    Ovs& operator=(const Ovs&) = delete;

    static bool available();  // the binaries and enough free hugepages

    // A dpdkvhostuserclient port that connects to `socket` (OpenFlow port number ofport).
    void add_port(const std::string& name, const std::string& socket, int ofport);
    // OpenFlow rules a -> b and b -> a (replacing all others).
    void connect_ports(int a, int b) { connect_ports({{a, b}}); }
    // The same for several pairs at once, e.g. {{1, 2}, {3, 4}}.
    void connect_ports(const std::vector<std::pair<int, int>>& pairs);
    // ovs-vswitchd killed with sig (SIGKILL, SIGTERM...) and started again;
    // the database keeps the bridge and ports, and the flows connect_ports
    // set are installed again. Returns once it runs with them.
    void restart(int sig);
    std::string flows() const;  // ovs-ofctl dump-flows
    // OVS's own live port counters (ovs-ofctl dump-ports): frames it took
    // from the port (rx) and gave to it (tx).
    struct PortCounters {
        uint64_t rx = 0, tx = 0, rx_dropped = 0, tx_dropped = 0;
    };
    PortCounters counters(int ofport) const;
    // ovs-appctl, e.g. {"dpif-netdev/pmd-stats-show"}.
    std::string appctl(const std::vector<std::string>& args) const;
    std::string log_tail(size_t bytes = 4000) const;
    const std::string& dir() const { return dir_; }

private:
    void start_vswitchd();
    void stop_vswitchd(int sig);
    std::string run(const std::vector<std::string>& argv, bool must = true) const;
    pid_t pid_of(const std::string& pidfile) const;

    OvsOptions o_;
    std::vector<std::pair<int, int>> pairs_;  // what connect_ports set, for restart()
    std::string dir_, prefix_;
    std::vector<std::string> env_;
};

}  // namespace vireo::test
