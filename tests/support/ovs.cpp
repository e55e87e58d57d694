#include "ovs.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace vireo::test {
namespace {

const char* const kVswitchd = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";
const char* const kOvsdbServer = "/usr/sbin/ovsdb-server";
const char* const kSchema = "/usr/share/openvswitch/vswitch.ovsschema";
std::atomic<int> g_seq{0};

uint64_t free_hugepages() {
    std::ifstream f("/proc/meminfo");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("HugePages_Free:", 0) == 0) return std::stoull(line.substr(15));
    return 0;
}

}  // namespace

bool Ovs::available() {
    return ::access(kVswitchd, X_OK) == 0 && ::access(kOvsdbServer, X_OK) == 0 && ::access(kSchema, R_OK) == 0 &&
           free_hugepages() >= 256;
}

// Runs a command with OVS_RUNDIR/DBDIR/LOGDIR pointing at our folder; its output (both streams).
std::string Ovs::run(const std::vector<std::string>& argv, bool must) const {
    const std::string out = dir_ + "/cmd.out";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char*> args, env;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (char** e = environ; *e != nullptr; e++) env.push_back(*e);
    for (const auto& e : env_) env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);
    pid_t pid = -1;
    const int r = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), env.data());
    posix_spawn_file_actions_destroy(&fa);
    int status = 0;
    if (r == 0) ::waitpid(pid, &status, 0);
    std::ifstream f(out);
    std::stringstream ss;
    ss << f.rdbuf();
    if (must && (r != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0))
        throw std::runtime_error("'" + argv[0] + " " + (argv.size() > 1 ? argv[1] : "") + "...' failed: " + ss.str() +
                                 "\n" + log_tail());
    return ss.str();
}

pid_t Ovs::pid_of(const std::string& pidfile) const {
    std::ifstream f(dir_ + "/" + pidfile);
    pid_t p = -1;
    f >> p;
    return p;
}

Ovs::Ovs(const OvsOptions& o) : o_(o) {
    prefix_ = "vireo-ovs" + std::to_string(::getpid()) + "-" + std::to_string(g_seq++);
    dir_ = "/tmp/" + prefix_;
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    env_ = {"OVS_RUNDIR=" + dir_, "OVS_DBDIR=" + dir_, "OVS_LOGDIR=" + dir_};
    const std::string db = "unix:" + dir_ + "/db.sock";
    run({"ovsdb-tool", "create", dir_ + "/conf.db", kSchema});
    run({kOvsdbServer, dir_ + "/conf.db", "--remote=punix:" + dir_ + "/db.sock", "--pidfile=" + dir_ + "/ovsdb.pid",
         "--detach", "--log-file=" + dir_ + "/ovsdb.log"});
    run({"ovs-vsctl", "--db=" + db, "--no-wait", "init"});
    run({"ovs-vsctl", "--db=" + db, "--no-wait", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
         "other_config:dpdk-extra=--no-pci --file-prefix=" + prefix_,
         "other_config:dpdk-socket-mem=" + std::to_string(o_.socket_mem_mb),
         "other_config:pmd-cpu-mask=" + std::to_string(1u << o_.pmd_cpu),
         std::string("other_config:vhost-iommu-support=") + (o_.iommu ? "true" : "false"),
         std::string("other_config:userspace-tso-enable=") + (o_.tso ? "true" : "false")});
    start_vswitchd();
    // fail_mode=secure: no flow of its own (a standalone bridge starts as a
    // learning switch that floods): a frame crosses only where connect_ports says.
    run({"ovs-vsctl", "--db=" + db, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev", "--",
         "set-fail-mode", "br0", "secure"});
}

void Ovs::start_vswitchd() {
    run({kVswitchd, "unix:" + dir_ + "/db.sock", "--pidfile=" + dir_ + "/vswitchd.pid", "--unixctl=" + dir_ + "/vs.ctl",
         "--detach", "--log-file=" + dir_ + "/vswitchd.log"});
}

void Ovs::stop_vswitchd(int sig) {
    const pid_t pid = pid_of("vswitchd.pid");
    if (pid <= 0) return;
    ::kill(pid, sig);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (::kill(pid, 0) == 0) {
        if (std::chrono::steady_clock::now() > end) ::kill(pid, SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

Ovs::~Ovs() {
    stop_vswitchd(SIGTERM);
    if (pid_t p = pid_of("ovsdb.pid"); p > 0) {
        ::kill(p, SIGTERM);
        for (int i = 0; i < 500 && ::kill(p, 0) == 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::error_code ec;
    std::filesystem::remove_all("/var/run/dpdk/" + prefix_, ec);
    for (const auto& e : std::filesystem::directory_iterator("/dev/hugepages", ec))
        if (e.path().filename().string().rfind(prefix_, 0) == 0) std::filesystem::remove(e.path(), ec);
    std::filesystem::remove_all(dir_, ec);
}

void Ovs::add_port(const std::string& name, const std::string& socket, int ofport) {
    run({"ovs-vsctl", "--db=unix:" + dir_ + "/db.sock", "add-port", "br0", name, "--", "set", "Interface", name,
         "type=dpdkvhostuserclient", "options:vhost-server-path=" + socket,
         "ofport_request=" + std::to_string(ofport)});
}

void Ovs::connect_ports(const std::vector<std::pair<int, int>>& pairs) {
    const std::string br = "br0";
    run({"ovs-ofctl", "del-flows", br});
    for (const auto& [a, b] : pairs) {
        run({"ovs-ofctl", "add-flow", br, "in_port=" + std::to_string(a) + ",actions=output:" + std::to_string(b)});
        run({"ovs-ofctl", "add-flow", br, "in_port=" + std::to_string(b) + ",actions=output:" + std::to_string(a)});
    }
    pairs_ = pairs;
}

std::string Ovs::flows() const { return run({"ovs-ofctl", "dump-flows", "br0"}); }

// OpenFlow rules live in ovs-vswitchd, not in its database: a restarted
// daemon has none (ovs-ctl's restart saves and restores them; so do we).
// Until they are back its secure bridge drops every frame.
void Ovs::restart(int sig) {
    stop_vswitchd(sig);
    start_vswitchd();
    if (!pairs_.empty()) connect_ports(pairs_);
}

// "  port  1: rx pkts=20032, bytes=..., drop=0, errs=0, frame=0, over=0, crc=0
//            tx pkts=20032, bytes=..., drop=0, errs=0, coll=0"
Ovs::PortCounters Ovs::counters(int ofport) const {
    const std::string out = run({"ovs-ofctl", "dump-ports", "br0", std::to_string(ofport)}, false);
    auto field = [&](const std::string& dir, const std::string& key) -> uint64_t {
        const auto d = out.find(dir);
        if (d == std::string::npos) return 0;
        const auto k = out.find(key + "=", d);
        if (k == std::string::npos) return 0;
        return std::strtoull(out.c_str() + k + key.size() + 1, nullptr, 10);
    };
    return {field("rx pkts", "pkts"), field("tx pkts", "pkts"), field("rx pkts", "drop"), field("tx pkts", "drop")};
}

std::string Ovs::appctl(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"ovs-appctl", "-t", dir_ + "/vs.ctl"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, false);
}

std::string Ovs::log_tail(size_t bytes) const {
    std::ifstream f(dir_ + "/vswitchd.log");
    std::stringstream ss;
    ss << f.rdbuf();
    std::string s = ss.str();
    return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

}  // namespace vireo::test
