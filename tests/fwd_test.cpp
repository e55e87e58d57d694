// vireo-fwd end to end, against DPDK's vhost back end in dpdk-testpmd.
//
// The chain for the forwarding modes: this test's own vireo port V (which
// sends and verifies every frame) -- testpmd vhost0 ==io== vhost1 -- vireo-fwd
// port 0, which forwards to itself. A frame goes V -> testpmd -> vireo-fwd ->
// testpmd -> V, and V checks its sequence, length, payload and MACs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "support/fwd_process.hpp"
#include "support/peer_env.hpp"
#include "support/testpmd.hpp"
#include "support/traffic.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/telemetry/telemetry.hpp"

namespace vireo {
namespace {

using namespace test;

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

// Polls `done` until it holds or `ms` pass.
template <class F>
bool wait_until(int ms, F done) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!done()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}
constexpr uint8_t kTrafficSrc[6] = {0x02, 0, 0, 0, 0, 0x01};  // traffic.cpp's source address

void check_core_cycles(Fwd& fwd, const nlohmann::json& j, const std::vector<std::string>& args, uint64_t packets) {
    if (std::find(args.begin(), args.end(), "--record-core-cycles") == args.end()) {
        EXPECT_FALSE(j.contains("core_cycles")) << j;
        EXPECT_EQ(fwd.log().find("cycles/packet"), std::string::npos) << fwd.log();
        return;
    }
    ASSERT_TRUE(j.contains("core_cycles")) << j;
    const nlohmann::json& c = j["core_cycles"];
    EXPECT_EQ(c.value("packets", uint64_t{0}), packets) << j;
    const double busy = c.value("busy_cycles", 0.0);
    EXPECT_GT(busy, 0.0) << j;
    EXPECT_DOUBLE_EQ(c.value("cycles_per_packet", 0.0), busy / double(packets)) << j;
    EXPECT_GT(c.value("tsc_mhz", 0.0), 100.0) << j;
    EXPECT_NE(fwd.log().find("CPU cycles/packet="), std::string::npos) << "testpmd's summary line\n" << fwd.log();
}

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
    nlohmann::json j = read_summary(c.json);
    nlohmann::json port = j["ports"][0];
    EXPECT_EQ(j.value("forward_mode", ""), mode) << j;
    EXPECT_EQ(port.value("rx_packets", -1), o.per_queue) << j;
    EXPECT_EQ(port.value("tx_packets", -1), o.per_queue) << j;
    EXPECT_EQ(port.value("drops", -1), 0) << j;
    EXPECT_EQ(j["pool"].value("leaked", true), false) << j;
    EXPECT_GE(j["samples"].size(), 1u) << j;
    EXPECT_TRUE(j["samples"][0]["ports"][0].contains("rx_pps")) << j;
    if (std::find(extra.begin(), extra.end(), "--dma=window") != extra.end()) {
        EXPECT_EQ(port.value("dma", ""), "window") << j;
        EXPECT_EQ(port.value("ring", 0), 1024) << "a window's queues are deep\n" << j;
        EXPECT_NE(port.value("data_path", "").find("/window"), std::string::npos) << "the data path names it\n" << j;
        EXPECT_GT(port.value("tx_bounced_bytes", 0), 0) << j;
        EXPECT_GT(port.value("rx_bounced_bytes", 0), 0) << j;
        EXPECT_NE(fwd.log().find("cycles/frame"), std::string::npos) << "the live line shows the copy cost\n"
                                                                     << fwd.log();
    }
    EXPECT_NE(fwd.log().find("none leaked"), std::string::npos) << fwd.log();
    check_core_cycles(fwd, j, extra, o.per_queue);
}

// --record-core-cycles (io here, txonly below): testpmd's cycles per packet, divided by the packets the
// streams received (sent, for generators); without it, nothing of the kind is printed or written.
TEST(Fwd, IoForwardsVerifiedFrames) { check_loop_mode("io", {"--record-core-cycles"}, false); }
// --dma=window: the port's device reaches only its window; frames copied both ways.
TEST(Fwd, IoInWindowModeForwardsVerifiedFrames) { check_loop_mode("io", {"--dma=window"}, false); }
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

void check_generator(const std::string& mode, uint32_t flows, std::vector<std::string> extra = {}) {
    Chain c;
    ASSERT_TRUE(c.ready()) << c.pmd.log_tail();
    auto v = NetPort::open("vhost-user:" + c.tp0, c.mem, c.pool);
    v->start();
    // Two segments (60 + 40 bytes), so multi-segment transmission is exercised too.
    std::vector<std::string> args = {"--forward-mode=" + mode,
                                     "--cores=0",
                                     "--txpkts=60,40",
                                     "--flows=" + std::to_string(flows),
                                     "--burst=16",
                                     "--stats-period=0",
                                     "--json=" + c.json,
                                     "vhost-user:" + c.tp1};
    args.insert(args.end(), extra.begin(), extra.end());
    Fwd fwd(args);
    ASSERT_TRUE(fwd.wait_for("polling on CPU 0")) << fwd.log();
    Generated g = receive_generated(*v, 100, 20000, mode == "flowgen");
    EXPECT_EQ(fwd.finish(), 0) << fwd.log();
    v->stop();
    EXPECT_EQ(c.pool.in_use(), 0u);
    EXPECT_GE(g.frames, 20000u) << fwd.log();
    EXPECT_EQ(g.bad, 0u) << g.problem;
    EXPECT_EQ(g.flows.size(), flows);
    nlohmann::json j = read_summary(c.json);
    EXPECT_GE(j["ports"][0].value("tx_packets", 0u), g.frames) << j;
    EXPECT_EQ(j["ports"][0].value("rx_packets", -1), 0) << j;
    EXPECT_EQ(j["pool"].value("leaked", true), false) << j;
    check_core_cycles(fwd, j, extra, j["ports"][0].value("tx_packets", uint64_t{0}));
    if (!extra.empty()) {
        EXPECT_EQ(j["core_cycles"].value("packets_counted", ""), "sent") << j;
    }
}

// What DPDK's telemetry client prints for `requests` (one per line) to the
// vireo-fwd serving `prefix`.
std::string telemetry(const std::string& prefix, const std::string& requests) {
    std::string out;
    if (FILE* p = ::popen(("printf '" + requests + "' | dpdk-telemetry.py -f " + prefix + " 2>&1").c_str(), "r")) {
        char line[8192];
        while (std::fgets(line, sizeof line, p) != nullptr) out += line;
        ::pclose(p);
    }
    return out;
}

// Waits until vireo-fwd's port 0 has counted `want` received frames (read
// through telemetry): the event the checks after it need, whatever the
// chain's pace on a loaded machine. False after 30 s.
bool wait_received(const std::string& prefix, uint64_t want) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    do {
        const std::string out = telemetry(prefix, "/ethdev/stats,0\\n");
        if (json_number(out, "ipackets", out.find("/ethdev/stats")) >= double(want)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < end);
    return false;
}

// About `frames` 64-byte frames from `v` to the vireo-fwd serving `prefix`,
// in chunks of 200 that are each waited for (wait_received) before the next
// goes: vireo-fwd's Rx ring (256) holds a whole chunk even if it does not
// poll at all meanwhile, so testpmd never finds it full and drops, however
// loaded the machine. Returns how many went out, all of them received; 0
// when a chunk did not arrive in time.
uint64_t send_counted(NetPort& v, PacketPool& pool, uint64_t frames, const std::string& prefix) {
    constexpr uint64_t kChunk = 200;
    uint64_t sent = 0;
    while (sent < frames) {
        const uint64_t chunk_end = std::min(frames, sent + kChunk);
        while (sent < chunk_end) {
            Packet* b[16];
            const uint16_t want = static_cast<uint16_t>(std::min<uint64_t>(16, chunk_end - sent));
            if (!pool.alloc_bulk(b, want)) return 0;
            for (uint16_t i = 0; i < want; i++) std::memset(b[i]->append(64), 0x5a, 64);
            const uint16_t n = v.tx_burst(0, b, want);
            PacketPool::free_bulk(b + n, want - n);
            sent += n;
        }
        if (!wait_received(prefix, sent)) return 0;
    }
    return sent;
}

TEST(Fwd, TxonlySendsWellFormedFramesOverItsFlows) { check_generator("txonly", 8, {"--record-core-cycles"}); }
TEST(Fwd, FlowgenVariesFiveTuples) { check_generator("flowgen", 64); }

TEST(Fwd, RxonlyCountsEveryFrame) {
    Chain c;
    ASSERT_TRUE(c.ready()) << c.pmd.log_tail();
    // testpmd forwards on CPU 1: vireo-fwd polls on CPU 0, so neither waits for the other's time slice.
    const std::string prefix = "vireo-fwd-rx-" + std::to_string(::getpid());
    Fwd fwd({"--forward-mode=rxonly", "--cores=0", "--stats-period=0", "--json=" + c.json, "--file-prefix=" + prefix,
             "vhost-user:" + c.tp1});
    ASSERT_TRUE(fwd.wait_for("polling on CPU 0")) << fwd.log();
    ASSERT_TRUE(fwd.wait_for("dpdk-telemetry.py -f " + prefix)) << fwd.log();
    auto v = NetPort::open("vhost-user:" + c.tp0, c.mem, c.pool);
    v->start();
    const uint64_t sent = send_counted(*v, c.pool, 3000, prefix);
    EXPECT_EQ(sent, 3000u) << telemetry(prefix, "/ethdev/stats,0\\n");
    EXPECT_EQ(fwd.finish(), 0) << fwd.log();
    std::error_code ec;
    std::filesystem::remove_all(telemetry_runtime_dir(prefix), ec);
    v->stop();
    nlohmann::json j = read_summary(c.json);
    EXPECT_EQ(j["ports"][0].value("rx_packets", -1), sent) << j;
    EXPECT_EQ(j["ports"][0].value("tx_packets", -1), 0) << j;
}

// What tcpdump -r -nn -e -xx prints, packet by packet: the length from its
// header line ("..., length 1000: ...") and the bytes from the hex lines.
struct Dumped {
    uint32_t length = 0;
    std::vector<uint8_t> bytes;
};
std::vector<Dumped> tcpdump_read(const std::string& file, std::string& err) {
    std::vector<Dumped> out;
    FILE* f = ::popen(("tcpdump -r " + file + " -nn -e -xx 2>&1").c_str(), "r");
    if (f == nullptr) return out;
    char line[512];
    while (std::fgets(line, sizeof line, f) != nullptr) {
        std::string l(line);
        if (l.rfind("\t0x", 0) == 0) {
            if (out.empty()) continue;
            std::istringstream hex(l.substr(l.find(':') + 1));
            std::string word;
            while (hex >> word)
                for (size_t i = 0; i + 1 < word.size(); i += 2)
                    out.back().bytes.push_back(static_cast<uint8_t>(std::stoul(word.substr(i, 2), nullptr, 16)));
        } else if (const size_t at = l.find(", length "); at != std::string::npos) {
            out.push_back({static_cast<uint32_t>(std::stoul(l.substr(at + 9))), {}});
        } else if (l.find("reading from file") == std::string::npos) {
            err += l;
        }
    }
    ::pclose(f);
    return out;
}

// --pcap: vireo-fwd (io, one port forwarding to itself) writes every frame it
// receives and every frame it sends; tcpdump reads the file back and each
// frame V sent is there twice, cut at the snaplen, with its real length.
// Then port=, count=: exactly that many.
TEST(Fwd, PcapWritesWhatTcpdumpReadsBack) {
    Chain c;
    ASSERT_TRUE(c.ready()) << c.pmd.log_tail();
    const std::string pcap = peer_socket("capture") + ".pcapng";
    {
        Fwd fwd({"--forward-mode=io", "--cores=0", "--stats-period=0", "--json=" + c.json,
                 "--pcap=" + pcap + ",snaplen=200", "vhost-user:" + c.tp1 + std::string(",mac=") + kVMac});
        ASSERT_TRUE(fwd.wait_for("polling on CPU 0")) << fwd.log();
        auto v = NetPort::open("vhost-user:" + c.tp0 + ",mac=" + kVMac, c.mem, c.pool);
        v->start();
        TrafficOptions o;
        o.per_queue = 3000;
        o.size = [](uint64_t s) { return static_cast<uint32_t>(60 + s * 7 % 1455); };
        TrafficResult r = run_traffic(*v, c.pool, o);
        EXPECT_TRUE(r.complete() && r.received == o.per_queue) << r.first_problem;
        EXPECT_EQ(fwd.finish(), 0) << fwd.log();
        v->stop();
        nlohmann::json j = read_summary(c.json);
        EXPECT_EQ(j["capture"].value("frames", -1), 6000) << j;
        EXPECT_EQ(j["capture"].value("dropped", -1), 0) << j;
        std::string err;
        const std::vector<Dumped> got = tcpdump_read(pcap, err);
        EXPECT_EQ(err, "") << "tcpdump complained";
        ASSERT_EQ(got.size(), 6000u) << err;
        std::vector<int> times(3000, 0);
        for (const Dumped& d : got) {
            ASSERT_GE(d.bytes.size(), 28u);
            uint64_t seq;
            uint32_t len;
            std::memcpy(&seq, d.bytes.data() + 14, 8);
            std::memcpy(&len, d.bytes.data() + 22, 4);
            ASSERT_LT(seq, 3000u);
            EXPECT_EQ(len, 60 + seq * 7 % 1455) << "the frame's own length field";
            EXPECT_EQ(d.length, len) << "the length pcapng recorded";
            EXPECT_EQ(d.bytes.size(), std::min(len, 200u)) << "cut at the snaplen";
            times[seq]++;
        }
        EXPECT_EQ(std::count(times.begin(), times.end(), 2), 3000) << "each frame in and out";
    }
    {
        Fwd fwd({"--forward-mode=io", "--cores=0", "--stats-period=0", "--pcap=" + pcap + ",port=0,queue=0,count=500",
                 "vhost-user:" + c.tp1 + std::string(",mac=") + kVMac});
        ASSERT_TRUE(fwd.wait_for("polling on CPU 0")) << fwd.log();
        auto v = NetPort::open("vhost-user:" + c.tp0 + ",mac=" + kVMac, c.mem, c.pool);
        v->start();
        TrafficOptions o;
        o.per_queue = 2000;
        o.size = [](uint64_t) { return 64u; };
        EXPECT_TRUE(run_traffic(*v, c.pool, o).complete());
        EXPECT_EQ(fwd.finish(), 0) << fwd.log();
        v->stop();
        EXPECT_NE(fwd.log().find("--pcap: 500 frame(s) written"), std::string::npos) << fwd.log();
        std::string err;
        EXPECT_EQ(tcpdump_read(pcap, err).size(), 500u) << err;
    }
    ::unlink(pcap.c_str());
    EXPECT_EQ(c.pool.in_use(), 0u);
}

// DPDK's own telemetry client (Debian's dpdk-telemetry.py) reads vireo-fwd:
// the frames it counts match what was sent and what the JSON summary says.
// With --telemetry-commands the socket is the user's alone and a port command
// runs on vireo-fwd's control thread: over vhost-user the port refuses
// (no control queue there), and says so to the client and on its log.
TEST(Fwd, DpdkTelemetryPyReadsTheCounters) {
    Chain c;
    ASSERT_TRUE(c.ready()) << c.pmd.log_tail();
    const std::string prefix = "vireo-fwd-test-" + std::to_string(::getpid());
    Fwd fwd({"--forward-mode=rxonly", "--cores=0", "--stats-period=0", "--file-prefix=" + prefix, "--json=" + c.json,
             "--telemetry-commands", "vhost-user:" + c.tp1});
    ASSERT_TRUE(fwd.wait_for("polling on CPU 0")) << fwd.log();
    ASSERT_TRUE(fwd.wait_for("dpdk-telemetry.py -f " + prefix + "); port commands on, socket mode 0600")) << fwd.log();
    struct stat st {};
    ASSERT_EQ(::stat((telemetry_runtime_dir(prefix) + "/dpdk_telemetry.v2").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto v = NetPort::open("vhost-user:" + c.tp0, c.mem, c.pool);
    v->start();
    const uint64_t sent = send_counted(*v, c.pool, 3000, prefix);
    EXPECT_EQ(sent, 3000u) << telemetry(prefix, "/ethdev/stats,0\\n");
    const std::string out = telemetry(prefix,
                                      "/ethdev/list\\n/ethdev/stats,0\\n/ethdev/xstats,0\\n/ethdev/link_status,0\\n"
                                      "/vireo/iova,0\\n/ethdev/stats,9\\n/vireo/rx_offloads,0,none\\n");
    EXPECT_NE(out.find("{\"/ethdev/list\": [0]}"), std::string::npos) << out;
    const size_t stats = out.find("{\"/ethdev/stats\": {");
    ASSERT_NE(stats, std::string::npos) << out;
    EXPECT_EQ(json_number(out, "ipackets", stats), sent) << out;
    EXPECT_EQ(json_number(out, "opackets", stats), 0) << out;
    EXPECT_EQ(json_number(out, "ibytes", stats), 64.0 * sent) << out;
    EXPECT_EQ(json_number(out, "rx_q0_packets", out.find("/ethdev/xstats")), sent) << out;
    EXPECT_NE(out.find("\"status\": \"UP\""), std::string::npos) << out;
    EXPECT_NE(out.find("\"/vireo/iova\": {\"mode\": \"pa\""), std::string::npos) << out;
    EXPECT_NE(out.find("{\"/ethdev/stats\": null}"), std::string::npos) << "no port 9\n" << out;
    EXPECT_NE(out.find("no vhost-user back end processes"), std::string::npos) << out;
    EXPECT_TRUE(fwd.wait_for("port 0: rx offloads csum=0 tso4=0 tso6=0 refused")) << fwd.log();
    EXPECT_EQ(fwd.finish(), 0) << fwd.log();
    v->stop();
    EXPECT_EQ(read_summary(c.json)["ports"][0].value("rx_packets", -1), sent);
    std::error_code ec;
    EXPECT_FALSE(std::filesystem::exists(telemetry_runtime_dir(prefix) + "/dpdk_telemetry.v2", ec))
        << "the socket goes when vireo-fwd does";
    std::filesystem::remove_all(telemetry_runtime_dir(prefix), ec);
}

// --sleep-when-idle: with nothing to do the polling thread sleeps on its Rx
// queue's call eventfd (the back end signals it once the ring asks), and
// frames wake it: every frame of a paced, verified run comes back, and the
// summary counts sleeps ended by a frame (the timeout alone would be 100 ms
// per sleep: 2000 frames one by one could not finish in time).
TEST(Fwd, SleepsWhenIdleAndFramesWakeIt) {
    Chain c;
    ASSERT_TRUE(c.ready()) << c.pmd.log_tail();
    Fwd fwd({"--forward-mode=macswap", "--cores=0", "--stats-period=0", "--sleep-when-idle=100", "--json=" + c.json,
             "vhost-user:" + c.tp1 + std::string(",mac=") + kVMac});
    ASSERT_TRUE(fwd.wait_for("polling on CPU 0")) << fwd.log();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // idle: asleep
    auto v = NetPort::open("vhost-user:" + c.tp0 + ",mac=" + kVMac, c.mem, c.pool);
    v->start();
    TrafficOptions o;
    o.per_queue = 2000;
    o.window = 1;  // one frame at a time: vireo-fwd falls asleep between most of them
    o.size = [](uint64_t) { return 128u; };
    o.macswap = true;
    o.limit = std::chrono::milliseconds(60000);
    const auto t0 = std::chrono::steady_clock::now();
    TrafficResult r = run_traffic(*v, c.pool, o);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_TRUE(r.complete() && r.received == o.per_queue) << r.first_problem << "\n" << fwd.log();
    EXPECT_EQ(fwd.finish(), 0) << fwd.log();
    v->stop();
    EXPECT_EQ(c.pool.in_use(), 0u);
    nlohmann::json j = read_summary(c.json);
    nlohmann::json idle = j["sleep_when_idle"];
    EXPECT_EQ(idle.value("polls", 0), 100) << j;
    EXPECT_GT(idle.value("sleeps", 0), 10) << j;
    EXPECT_GT(idle.value("wakeups", 0), 10) << "frames, not timeouts, ended its sleeps\n" << j;
    EXPECT_GT(idle.value("asleep_s", 0.0), 0.3) << j;
    EXPECT_NE(fwd.log().find("--sleep-when-idle: slept"), std::string::npos) << fwd.log();
    ::testing::Test::RecordProperty("seconds_for_2000_one_by_one", std::to_string(s));
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
    nlohmann::json j = read_summary(json);
    EXPECT_EQ(j["pool"].value("leaked", true), false) << j;
    // Both ports and both queues of each moved packets.
    ASSERT_EQ(j["ports"].size(), 2u) << j;
    for (const auto& port : j["ports"]) {
        ASSERT_EQ(port["queues"].size(), 2u) << j;
        for (const auto& q : port["queues"]) EXPECT_GT(q.value("rx_packets", 0), 0) << j;
    }
    ::unlink(json.c_str());
}

// --tx-first=N sends N bursts to start each loop (and to restart one), as
// testpmd's "start tx_first N". Against an rxonly back end nothing comes back,
// so the loop restarts every 200 ms of silence and every frame vireo sent is
// one of those bursts: exactly N x 32 per (re)start.
TEST(Fwd, TxFirstNSendsNBurstsPerStart) {
    const std::string sock = peer_socket("txfirst"), json = sock + ".json";
    TestPmd pmd({sock, 1, false, false, "rxonly"});
    ASSERT_TRUE(pmd.wait_for_socket(15000) && pmd.wait_forwarding(15000)) << pmd.log_tail();
    Fwd fwd({"--forward-mode=io", "--tx-first=4", "--burst=32", "--cores=0", "--stats-period=0", "--duration=1",
             "--json=" + json, "vhost-user:" + sock});
    EXPECT_EQ(fwd.finish(false), 0) << fwd.log();
    nlohmann::json j = read_summary(json);
    const uint64_t starts = 1 + j.value("first_bursts_resent", uint64_t{0});
    EXPECT_GE(starts, 2u) << "the silent loop was never restarted\n" << j;
    EXPECT_EQ(j["ports"][0].value("tx_packets", uint64_t{0}), starts * 4 * 32) << j;
    EXPECT_EQ(j["ports"][0].value("rx_packets", uint64_t{1}), 0u) << j;
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
    // Every frame of the loop was lost with the back end: the burst goes out
    // again (as often as the loop stays silent), and the loop runs once more:
    // a live line after the restart shows frames received.
    ASSERT_TRUE(fwd.wait_for("first burst sent again", 5000)) << fwd.log();
    const size_t mark = fwd.log().size();
    EXPECT_TRUE(wait_until(15000,
                           [&] {
                               const std::string after = fwd.log().substr(mark);
                               for (size_t at = after.find("port 0  rx "); at != std::string::npos;
                                    at = after.find("port 0  rx ", at + 1))
                                   if (std::strtod(after.c_str() + at + 11, nullptr) > 0) return true;
                               return false;
                           }))
        << "the loop did not resume:\n"
        << fwd.log().substr(mark);
    EXPECT_EQ(fwd.finish(), 0) << fwd.log();
    nlohmann::json j = read_summary(json);
    nlohmann::json link = j["ports"][0]["link"];
    EXPECT_EQ(link.value("downs", 0), 1) << j;
    EXPECT_EQ(link.value("reconnects", 0), 1) << j;
    bool lost_event = false;
    for (const auto& e : j["link_events"])
        lost_event |= !e.value("up", true) && e.value("reason", "") == "the vhost-user back end closed the connection";
    EXPECT_TRUE(lost_event) << j;
    EXPECT_GE(j.value("first_bursts_resent", 0), 1) << j;
    EXPECT_EQ(j["pool"].value("leaked", true), false) << j;
    ::unlink(json.c_str());
}

// txonly while the back end is gone: nothing is generated, so nothing is
// counted as dropped (every allocate-and-free used to count).
TEST(Fwd, TxonlyCountsNoDropsWhileTheLinkIsDown) {
    const std::string sock = peer_socket("fwd-txdown"), json = peer_socket("fwd-txdown") + ".json";
    auto pmd = std::make_unique<TestPmd>(TestPmdOptions{sock, 1, /*client=*/true, false, "rxonly"});
    ASSERT_TRUE(pmd->wait_forwarding(15000)) << pmd->log_tail();
    Fwd fwd({"--forward-mode=txonly", "--cores=0", "--stats-period=0.5", "--json=" + json,
             "vhost-user:" + sock + ",server=1,timeout_ms=15000"});
    ASSERT_TRUE(fwd.wait_for("polling on CPU 0")) << fwd.log();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    pmd->kill_hard();
    ASSERT_TRUE(fwd.wait_for("link down", 5000)) << fwd.log();
    const size_t mark = fwd.log().size();
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const std::string down = fwd.log().substr(mark);
    // Every live line while down (after the one of the period the link went down in): nothing dropped.
    size_t lines_down = 0;
    const size_t first = down.find("port 0  rx");
    for (size_t at = down.find("port 0  rx", first + 1); at != std::string::npos;
         at = down.find("port 0  rx", at + 1)) {
        const std::string line = down.substr(at, down.find('\n', at) - at);
        EXPECT_NE(line.find("drops 0 errors 0"), std::string::npos) << line;
        lines_down++;
    }
    EXPECT_GE(lines_down, 3u) << down;
    EXPECT_EQ(fwd.finish(), 1) << "the link was still down at the end\n" << fwd.log();
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

// --help: every flag, from the same descriptions the parser uses; exit code 0.
TEST(Fwd, HelpListsEveryFlag) {
    Fwd fwd({"--help"});
    EXPECT_EQ(fwd.finish(false), 0) << fwd.log();
    const std::string log = fwd.log();
    for (const char* flag : {"DEVICE",
                             "--forward-mode",
                             "--burst",
                             "--rxq",
                             "--rxd",
                             "--cores",
                             "--txpkts",
                             "--eth-peer",
                             "--tx-first",
                             "--rss",
                             "--disable-rss",
                             "--pcap",
                             "--enable-lro",
                             "--telemetry",
                             "--telemetry-commands",
                             "--file-prefix",
                             "--sleep-when-idle",
                             "--iova-mode",
                             "--dma",
                             "--json",
                             "exit codes"})
        EXPECT_NE(log.find(flag), std::string::npos) << flag << "\n" << log;
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
        {{"--tx-first=0", "vhost-user:/tmp/x"}, "--tx-first wants a whole number from 1 to 1024"},
        {{"--tx-first=lots", "vhost-user:/tmp/x"}, "--tx-first wants a whole number from 1 to 1024"},
        {{"--frobnicate", "vhost-user:/tmp/x"}, "unknown option --frobnicate"},
        {{"--forward-mode=io"}, "no device"},
        {{"vhost-user:/tmp/vireo-no-such.sock,timeout_ms=100"}, "/tmp/vireo-no-such.sock"},
        {{"pci:0000:7f:1f.7"}, "0000:7f:1f.7"},
        // Checked before any device is opened (this one would wait 5 s for its back end).
        {{"--json=/nonexistent/dir/x.json", "vhost-user:/tmp/vireo-no-such.sock"}, "cannot write it"},
        {{"--pcap=/nonexistent/dir/x.pcapng", "vhost-user:/tmp/vireo-no-such.sock"},
         "--pcap=/nonexistent/dir/x.pcapng: cannot write it"},
        {{"--rss", "--disable-rss", "vhost-user:/tmp/x"}, "--rss and --disable-rss contradict"},
        {{"vhost-user:/tmp/x", "--burst"}, "--burst"},  // a value missing at the end
        // The command line parses testpmd's spellings: a value after a space, and flags whose value is
        // optional never take the device after them (each run gets as far as the missing socket).
        {{"--burst", "16", "--rxq", "1", "vhost-user:/tmp/vireo-no-such.sock,timeout_ms=100"},
         "/tmp/vireo-no-such.sock"},
        {{"--rss", "--sleep-when-idle", "--telemetry", "vhost-user:/tmp/vireo-no-such.sock,timeout_ms=100"},
         "/tmp/vireo-no-such.sock"},
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
