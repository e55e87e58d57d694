// vireo-fwd end to end, against DPDK's vhost back end in dpdk-testpmd.
//
// The chain for the forwarding modes: this test's own vireo port V (which
// sends and verifies every frame) -- testpmd vhost0 ==io== vhost1 -- vireo-fwd
// port 0, which forwards to itself. A frame goes V -> testpmd -> vireo-fwd ->
// testpmd -> V, and V checks its sequence, length, payload and MACs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "support/peer_env.hpp"
#include "support/testpmd.hpp"
#include "support/traffic.hpp"
#include "vireo/pmd/net_port.hpp"

namespace vireo {
namespace {

using namespace test;

const char* fwd_binary() {
    const char* p = std::getenv("VIREO_FWD");
    return p != nullptr ? p : "vireo-fwd";
}

// vireo-fwd as a child process with its output in a file.
class Fwd {
public:
    explicit Fwd(std::vector<std::string> args) : log_(peer_socket("fwd") + ".log") {
        args.insert(args.begin(), fwd_binary());
        pid_ = ::fork();
        if (pid_ == 0) {
            const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
    }
    ~Fwd() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::unlink(log_.c_str());
    }
    std::string log() const {
        std::ifstream f(log_);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }
    bool wait_for(const std::string& text, int ms = 20000) const {
        for (int i = 0; i < ms / 20; i++) {
            if (log().find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }
    // SIGINT (unless already exited) and the exit code; -1 if it had to be killed.
    int finish(bool interrupt = true, int ms = 20000) {
        if (interrupt) ::kill(pid_, SIGINT);
        for (int i = 0; i < ms / 20; i++) {
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return -1;
    }

private:
    std::string log_;
    pid_t pid_ = -1;
};

std::string read_file(const std::string& p) {
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// The first number after "key": in a JSON text (vireo-fwd's summary is flat enough).
double json_number(const std::string& j, const std::string& key, size_t from = 0) {
    const size_t k = j.find("\"" + key + "\":", from);
    if (k == std::string::npos) return -1;
    return std::strtod(j.c_str() + k + key.size() + 3, nullptr);
}

struct Chain {
    std::string tp0 = peer_socket("tp0"), tp1 = peer_socket("tp1"), json = peer_socket("fwd") + ".json";
    TestPmd pmd{{tp0, 1, false, false, "io", 0, {tp1}}};
    DmaMemory mem{peer_memory(IovaMode::PA, 64 << 20)};
    PacketPool pool{mem, {.count = 4096}};
    Chain() { ::unlink(json.c_str()); }
    ~Chain() { ::unlink(json.c_str()); }
    bool ready() const { return pmd.wait_for_socket(15000) && pmd.wait_forwarding(15000); }
};

constexpr const char* kVMac = "02:00:00:00:00:0a";
constexpr uint8_t kTrafficSrc[6] = {0x02, 0, 0, 0, 0, 0x01};  // traffic.cpp's source address

void check_loop_mode(const std::string& mode, std::vector<std::string> extra, bool swapped) {
    Chain c;
    ASSERT_TRUE(c.ready()) << c.pmd.log_tail();
    std::vector<std::string> args = {"--forward-mode=" + mode, "--cores=0", "--stats-period=1", "--json=" + c.json,
                                     "vhost-user:" + c.tp1 + std::string(",mac=") + kVMac};
    args.insert(args.end(), extra.begin(), extra.end());
    Fwd fwd(args);
    ASSERT_TRUE(fwd.wait_for("polling on CPU 0")) << fwd.log();
    auto v = NetPort::open("vhost-user:" + c.tp0 + ",mac=" + kVMac, c.mem, c.pool);
    v->start();
    TrafficOptions o;
    o.per_queue = 20000;
    o.size = [](uint64_t s) { return static_cast<uint32_t>(60 + s % 1455); };
    o.macswap = swapped;
    TrafficResult r = run_traffic(*v, c.pool, o);
    EXPECT_TRUE(r.complete() && r.received == o.per_queue) << r.first_problem << "\n" << fwd.log();
    EXPECT_TRUE(fwd.wait_for("] port 0")) << fwd.log();  // live statistics were printed
    EXPECT_EQ(fwd.finish(), 0) << fwd.log();
    v->stop();
    EXPECT_EQ(c.pool.in_use(), 0u);
    const std::string j = read_file(c.json);
    EXPECT_NE(j.find("\"forward_mode\": \"" + mode + "\""), std::string::npos) << j;
    EXPECT_EQ(json_number(j, "rx_packets"), o.per_queue) << j;
    EXPECT_EQ(json_number(j, "tx_packets"), o.per_queue) << j;
    EXPECT_EQ(json_number(j, "drops"), 0) << j;
    EXPECT_NE(j.find("\"leaked\": false"), std::string::npos) << j;
    EXPECT_NE(j.find("\"samples\": [\n    {\"t\""), std::string::npos) << j;
    EXPECT_NE(fwd.log().find("none leaked"), std::string::npos) << fwd.log();
}

TEST(Fwd, IoForwardsVerifiedFrames) { check_loop_mode("io", {}, false); }
TEST(Fwd, MacswapForwardsVerifiedFrames) { check_loop_mode("macswap", {}, true); }
// mac: source = the port's own MAC (kVMac here), destination = --eth-peer.
TEST(Fwd, MacRewritesBothAddresses) { check_loop_mode("mac", {"--eth-peer=0,02:00:00:00:00:01"}, true); }

// Frames generated by vireo-fwd arrive at V: check what txonly/flowgen promise.
struct Generated {
    uint64_t frames = 0, bad = 0;
    std::set<uint64_t> flows;
    std::string problem;
};

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

Generated receive_generated(NetPort& v, uint32_t frame_len, uint64_t want, bool flowgen) {
    Generated g;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::vector<uint8_t> f;
    while (g.frames < want && std::chrono::steady_clock::now() < end) {
        Packet* b[32];
        const uint16_t n = v.rx_burst(0, b, 32);
        for (uint16_t i = 0; i < n; i++) {
            f.clear();
            for (Packet* s = b[i]; s != nullptr; s = s->next) f.insert(f.end(), s->data(), s->data() + s->data_len);
            const uint8_t* ip = f.data() + 14;
            uint32_t sum = 0;
            for (int k = 0; k < 20; k += 2) sum += be16(ip + k);
            while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
            const bool ok = f.size() == frame_len && be16(f.data() + 12) == 0x0800 && ip[0] == 0x45 &&
                            be16(ip + 2) == frame_len - 14 && ip[9] == 17 && sum == 0xffff &&
                            be16(ip + 24) == frame_len - 34;
            if (!ok) {
                if (g.problem.empty()) g.problem = "bad frame of " + std::to_string(f.size()) + " bytes";
                g.bad++;
            }
            uint64_t key = 0;
            std::memcpy(&key, flowgen ? ip + 16 : ip + 12, 4);  // flowgen: dst IP and ports; txonly: src IP
            if (flowgen) key = key << 32 | uint64_t{be16(ip + 20)} << 16 | be16(ip + 22);
            g.flows.insert(key);
            g.frames++;
        }
        PacketPool::free_bulk(b, n);
    }
    return g;
}

void check_generator(const std::string& mode, uint32_t flows) {
    Chain c;
    ASSERT_TRUE(c.ready()) << c.pmd.log_tail();
    auto v = NetPort::open("vhost-user:" + c.tp0, c.mem, c.pool);
    v->start();
    // Two segments (60 + 40 bytes), so multi-segment transmission is exercised too.
    Fwd fwd({"--forward-mode=" + mode, "--cores=0", "--txpkts=60,40", "--flows=" + std::to_string(flows), "--burst=16",
             "--stats-period=0", "--json=" + c.json, "vhost-user:" + c.tp1});
    ASSERT_TRUE(fwd.wait_for("polling on CPU 0")) << fwd.log();
    Generated g = receive_generated(*v, 100, 20000, mode == "flowgen");
    EXPECT_EQ(fwd.finish(), 0) << fwd.log();
    v->stop();
    EXPECT_EQ(c.pool.in_use(), 0u);
    EXPECT_GE(g.frames, 20000u) << fwd.log();
    EXPECT_EQ(g.bad, 0u) << g.problem;
    EXPECT_EQ(g.flows.size(), flows);
    const std::string j = read_file(c.json);
    EXPECT_GE(json_number(j, "tx_packets"), g.frames) << j;
    EXPECT_EQ(json_number(j, "rx_packets"), 0) << j;
    EXPECT_NE(j.find("\"leaked\": false"), std::string::npos) << j;
}

TEST(Fwd, TxonlySendsWellFormedFramesOverItsFlows) { check_generator("txonly", 8); }
TEST(Fwd, FlowgenVariesFiveTuples) { check_generator("flowgen", 64); }

TEST(Fwd, RxonlyCountsEveryFrame) {
    Chain c;
    ASSERT_TRUE(c.ready()) << c.pmd.log_tail();
    // testpmd forwards on CPU 1: vireo-fwd polls on CPU 0, so neither waits for the other's time slice.
    Fwd fwd({"--forward-mode=rxonly", "--cores=0", "--stats-period=0", "--json=" + c.json, "vhost-user:" + c.tp1});
    ASSERT_TRUE(fwd.wait_for("polling on CPU 0")) << fwd.log();
    auto v = NetPort::open("vhost-user:" + c.tp0, c.mem, c.pool);
    v->start();
    uint64_t sent = 0;
    while (sent < 10000) {  // paced: testpmd forwards what it is given, nothing overflows
        Packet* b[16];
        if (!c.pool.alloc_bulk(b, 16)) break;
        for (Packet* p : b) std::memset(p->append(64), 0x5a, 64);
        const uint16_t n = v->tx_burst(0, b, 16);
        PacketPool::free_bulk(b + n, 16 - n);
        sent += n;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(fwd.finish(), 0) << fwd.log();
    v->stop();
    const std::string j = read_file(c.json);
    EXPECT_EQ(json_number(j, "rx_packets"), sent) << j;
    EXPECT_EQ(json_number(j, "tx_packets"), 0) << j;
}

// Two ports, two queue pairs, two polling threads, --tx-first ping-pong with
// testpmd; SIGINT mid-run: every buffer comes back.
TEST(Fwd, SigintMidRunOnTwoPortsTwoQueuesLeavesNothingLeaked) {
    const std::string a = peer_socket("mq0"), b = peer_socket("mq1"), json = peer_socket("mq") + ".json";
    TestPmd pmd({a, 2, false, false, "io", 0, {b}});
    ASSERT_TRUE(pmd.wait_for_socket(15000) && pmd.wait_forwarding(15000)) << pmd.log_tail();
    Fwd fwd({"--forward-mode=io", "--tx-first", "--rxq=2", "--txq=2", "--nb-cores=2", "--cores=0-1",
             "--stats-period=0.5", "--json=" + json, "vhost-user:" + a, "vhost-user:" + b});
    ASSERT_TRUE(fwd.wait_for("polling on CPU 0 1")) << fwd.log();
    std::this_thread::sleep_for(std::chrono::seconds(3));
    EXPECT_EQ(fwd.finish(), 0) << fwd.log();
    const std::string log = fwd.log();
    EXPECT_NE(log.find("signal 2, stopping"), std::string::npos) << log;
    EXPECT_NE(log.find("none leaked"), std::string::npos) << log;
    EXPECT_NE(log.find("            q1  rx"), std::string::npos) << log;  // per-queue live lines
    const std::string j = read_file(json);
    EXPECT_NE(j.find("\"leaked\": false"), std::string::npos) << j;
    // Both ports and both queues of each moved packets.
    size_t at = 0;
    for (int q = 0; q < 4; q++) {
        at = j.find("{\"queue\": ", at);
        ASSERT_NE(at, std::string::npos) << j;
        EXPECT_GT(json_number(j, "rx_packets", at), 0) << j;
        at++;
    }
    ::unlink(json.c_str());
}

// The back end (client=1) killed under an io --tx-first loop and started
// again: vireo-fwd says the link went down and came back, restarts its loop,
// counts it all in the JSON and loses no buffer.
TEST(Fwd, ServerPortComesBackWhenTheBackEndDoes) {
    const std::string sock = peer_socket("fwd-back"), json = peer_socket("fwd-back") + ".json";
    auto pmd = std::make_unique<TestPmd>(TestPmdOptions{sock, 1, /*client=*/true});
    ASSERT_TRUE(pmd->wait_forwarding(15000)) << pmd->log_tail();
    Fwd fwd({"--forward-mode=io", "--tx-first", "--cores=0", "--stats-period=0.5", "--json=" + json,
             "vhost-user:" + sock + ",server=1,timeout_ms=15000"});
    ASSERT_TRUE(fwd.wait_for("polling on CPU 0")) << fwd.log();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    pmd->kill_hard();
    ASSERT_TRUE(fwd.wait_for("port 0: link down: the vhost-user back end closed the connection", 5000)) << fwd.log();
    pmd = std::make_unique<TestPmd>(TestPmdOptions{sock, 1, true});
    ASSERT_TRUE(pmd->wait_forwarding(15000)) << pmd->log_tail();
    ASSERT_TRUE(fwd.wait_for("port 0: link up again (reconnect 1)", 10000)) << fwd.log();
    // Every frame of the loop was lost with the back end: the burst goes out again.
    ASSERT_TRUE(fwd.wait_for("first burst sent again", 5000)) << fwd.log();
    const size_t mark = fwd.log().size();
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const std::string after = fwd.log().substr(mark);
    EXPECT_EQ(after.find("rx    0.000 Mpps"), std::string::npos) << "the loop did not resume:\n" << after;
    EXPECT_EQ(fwd.finish(), 0) << fwd.log();
    const std::string j = read_file(json);
    EXPECT_EQ(json_number(j, "downs"), 1) << j;
    EXPECT_EQ(json_number(j, "reconnects"), 1) << j;
    EXPECT_NE(j.find("\"up\": false, \"reason\": \"the vhost-user back end closed the connection\""), std::string::npos)
        << j;
    EXPECT_GE(json_number(j, "first_bursts_resent"), 1) << j;
    EXPECT_NE(j.find("\"leaked\": false"), std::string::npos) << j;
    ::unlink(json.c_str());
}

// Automatic placement keeps off a CPU another process polls on (here
// testpmd's forwarding lcore on CPU 1); --cores onto it warns.
TEST(Fwd, PlacementKeepsOffAnotherPollersCpu) {
    Chain c;
    ASSERT_TRUE(c.ready()) << c.pmd.log_tail();
    {
        Fwd fwd({"--forward-mode=rxonly", "--duration=1", "--stats-period=0", "vhost-user:" + c.tp1});
        EXPECT_EQ(fwd.finish(false), 0) << fwd.log();
        const std::string log = fwd.log();
        EXPECT_NE(log.find("polling on CPU 0"), std::string::npos) << log;
        EXPECT_NE(log.find("avoided CPU 1 (dpdk-testpmd thread"), std::string::npos) << log;
    }
    {
        Fwd fwd({"--forward-mode=rxonly", "--cores=1", "--duration=1", "--stats-period=0", "vhost-user:" + c.tp1});
        EXPECT_EQ(fwd.finish(false), 0) << fwd.log();
        const std::string log = fwd.log();
        EXPECT_NE(log.find("warning: CPU 1 is also polled by dpdk-testpmd thread"), std::string::npos) << log;
    }
}

// Bad input: one clear line on stderr and exit code 2.
TEST(Fwd, BadInputIsOneClearErrorAndExitCode2) {
    struct Case {
        std::vector<std::string> args;
        const char* says;
    } cases[] = {
        {{"--forward-mode=warp", "vhost-user:/tmp/x"}, "unknown forwarding mode 'warp'"},
        {{"vhost-user:/tmp/x,bogus=1"}, "bogus"},
        {{"tcp:1.2.3.4"}, "unknown transport"},
        {{"--cores=1-x", "vhost-user:/tmp/x"}, "--cores"},
        {{"--cores=4000", "vhost-user:/tmp/vireo-none.sock,timeout_ms=100"}, "does not exist"},
        {{"--rxq=2", "--txq=1", "vhost-user:/tmp/x"}, "--rxq and --txq differ"},
        {{"--burst=0", "vhost-user:/tmp/x"}, "--burst"},
        {{"--frobnicate", "vhost-user:/tmp/x"}, "unknown option --frobnicate"},
        {{"--forward-mode=io"}, "no device"},
        {{"vhost-user:/tmp/vireo-no-such.sock,timeout_ms=100"}, "/tmp/vireo-no-such.sock"},
        {{"pci:0000:7f:1f.7"}, "0000:7f:1f.7"},
        // Checked before any device is opened (this one would wait 5 s for its back end).
        {{"--json=/nonexistent/dir/x.json", "vhost-user:/tmp/vireo-no-such.sock"}, "cannot write it"},
    };
    for (const Case& c : cases) {
        Fwd fwd(c.args);
        EXPECT_EQ(fwd.finish(false), 2) << c.args[0] << "\n" << fwd.log();
        const std::string log = fwd.log();
        EXPECT_NE(log.find(c.says), std::string::npos) << log;
        EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;  // one line
    }
}

}  // namespace
}  // namespace vireo
