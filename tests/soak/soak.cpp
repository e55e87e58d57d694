// vireo-soak: vireo-fwd for minutes between two ports while its back end is
// killed and restarted every few seconds; every frame accounted for.
//
//   G0 (packed, direct) --+                      +-- G1 (split, window)
//        this process     |  back end (testpmd   |     this process
//                         |  io, or OVS flows)   |
//   F0 (split, direct) ---+   0<->1, 2<->3       +-- F1 (packed, window)
//        vireo-fwd (io: F0 <-> F1, busy polling)
//
// Stream 0 goes G0 -> F0 -> F1 -> G1, stream 1 the other way. The back end
// is restarted every --up-seconds, by SIGKILL and by a clean stop in turn;
// each restart opens an outage for both streams, which ends when a frame sent
// after the back end came back has crossed. At the end every frame sent is
// either received (exactly once, in order, intact) or lost, and each loss is
// placed inside an outage (dropped while down) or outside (the soak fails).
// vireo-fwd's RSS and open descriptors are sampled from /proc every 10 s.
// Usage: vireo-soak --backend testpmd|ovs [--minutes M] [--out DIR]  (ci/soak runs it)
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "footprint.hpp"
#include "seq_stream.hpp"
#include "support/fwd_process.hpp"
#include "support/ovs.hpp"
#include "support/peer_env.hpp"
#include "support/testpmd.hpp"
#include "vireo/pmd/net_port.hpp"

namespace vireo::soak {
namespace {

uint64_t now_ns() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<uint64_t>(t.tv_sec) * 1000000000 + static_cast<uint64_t>(t.tv_nsec);
}

struct Options {
    std::string backend = "testpmd", out = "soak-out";
    double minutes = 10, up_seconds = 5;
    uint32_t rate = 20000;  // frames per second per stream
    int restart_timeout_s = 30;
};

// The back end between the four ports; restart() returns once it runs again.
// Run r of it lasts from restart r (run 0: the start) to restart r + 1.
class Backend {
public:
    virtual ~Backend() = default;
    virtual void restart(bool kill) = 0;  // kill: SIGKILL, else a clean stop
    virtual std::string log_tail() const = 0;
    // What the back end itself counted as dropped, run by run (only runs
    // whose counters could be read); finish() reads the last run's, if it can.
    virtual void finish() {}
    const std::vector<BackendDrops>& drops() const { return drops_; }

protected:
    void note(size_t run, int port, uint64_t frames) {
        if (frames == 0) return;
        if (drops_.empty() || drops_.back().run != run) drops_.push_back({run, 0, ""});
        drops_.back().frames += frames;
        drops_.back().where +=
            (drops_.back().where.empty() ? "port " : ", port ") + std::to_string(port) + ": " + std::to_string(frames);
    }
    size_t run_ = 0;

private:
    std::vector<BackendDrops> drops_;
};

// One dpdk-testpmd, io forwarding, four vhost ports (0<->1, 2<->3).
class TestPmdBackend : public Backend {
public:
    explicit TestPmdBackend(const std::vector<std::string>& socks) {
        o_.socket = socks[0];
        o_.client = true;  // it connects to our listening sockets, again after each restart
        o_.more_sockets.assign(socks.begin() + 1, socks.end());
        start();
    }
    void restart(bool kill) override {
        if (kill) {
            pmd_->kill_hard();  // its counters die with it
        } else {
            pmd_->stop(SIGINT);
            note_exit_statistics(pmd_->log_tail(1 << 16));
        }
        run_++;
        start();
    }
    std::string log_tail() const override { return pmd_->log_tail(); }

private:
    // A clean stop prints, for each port, "TX-dropped": the frames testpmd
    // took from one port and could not give to this one (its Rx ring full).
    void note_exit_statistics(const std::string& log) {
        for (size_t at = 0; (at = log.find("Forward statistics for port ", at)) != std::string::npos;) {
            const int port = std::atoi(log.c_str() + at + 28);
            const size_t tx = log.find("TX-dropped:", at);
            if (tx == std::string::npos) break;
            note(run_, port, std::strtoull(log.c_str() + tx + 11, nullptr, 10));
            at = tx;
        }
    }
    void start() {
        pmd_ = std::make_unique<test::TestPmd>(o_);
        if (!pmd_->wait_forwarding(30000)) throw std::runtime_error("dpdk-testpmd did not start:\n" + pmd_->log_tail());
    }
    test::TestPmdOptions o_;
    std::unique_ptr<test::TestPmd> pmd_;
};

// ovs-vswitchd with four dpdkvhostuserclient ports, flows 1<->2 and 3<->4.
class OvsBackend : public Backend {
public:
    explicit OvsBackend(const std::vector<std::string>& socks) {
        for (size_t i = 0; i < socks.size(); i++)
            ovs_.add_port("p" + std::to_string(i), socks[i], static_cast<int>(i + 1));
        ovs_.connect_ports({{1, 2}, {3, 4}});
    }
    void restart(bool kill) override {
        finish();  // its counters start over with the new daemon
        run_++;
        ovs_.restart(kill ? SIGKILL : SIGTERM);
    }
    std::string log_tail() const override { return ovs_.log_tail() + drop_reasons_; }
    // Each port's rx_dropped and tx_dropped (OVS could not take a frame from
    // the port, or give one to it), and the datapath's drop reasons.
    void finish() override {
        for (int p = 1; p <= 4; p++) {
            const test::Ovs::PortCounters c = ovs_.counters(p);
            note(run_, p - 1, c.rx_dropped + c.tx_dropped);
        }
        const std::string cov = ovs_.appctl({"coverage/show"});
        for (size_t at = 0; (at = cov.find("drop", at)) != std::string::npos; at++) {
            const size_t line = cov.rfind('\n', at) + 1;
            const std::string l = cov.substr(line, cov.find('\n', at) - line);
            if (l.find("total: 0") == std::string::npos)
                drop_reasons_ += "run " + std::to_string(run_) + ": " + l + "\n";
            at = line + l.size();
        }
    }

private:
    test::Ovs ovs_;
    std::string drop_reasons_;
};

// The generator and checker: both streams, paced, on one thread.
class Traffic {
public:
    Traffic(NetPort& g0, NetPort& g1, PacketPool& pool, uint32_t rate) : port_{&g0, &g1}, pool_(pool), rate_(rate) {}
    ~Traffic() { finish(); }

    void start(uint64_t t0) {
        for (auto& o : outages_) o.push_back({t0, 0});  // the start is an outage until the first frames cross
        back_since_ = {t0, t0};
        thread_ = std::thread([this] { run(); });
    }
    // A restart begins: both streams are down from now.
    void down() {
        std::lock_guard<std::mutex> g(lock_);
        const uint64_t t = now_ns();
        for (int s = 0; s < 2; s++) {
            outages_[s].push_back({t, 0});
            back_since_[s] = 0;
        }
    }
    // The back end runs again: a frame sent from now on that arrives ends the outage.
    void back() {
        std::lock_guard<std::mutex> g(lock_);
        back_since_ = {now_ns(), now_ns()};
        awaiting_ = true;
    }
    // Waits for both streams to cross again; false after timeout.
    bool wait_crossed(std::chrono::seconds timeout) {
        std::unique_lock<std::mutex> g(lock_);
        return crossed_.wait_for(g, timeout, [&] { return outages_[0].back().end_ns && outages_[1].back().end_ns; });
    }
    // Stops sending, waits until what is on its way has arrived (no frame for 1 s, at most 10 s).
    void finish() {
        if (!thread_.joinable()) return;
        stop_ = true;
        thread_.join();
    }

    const SendLog& log(int s) const { return log_[s]; }
    const SeqReceiver& rx(int s) const { return rx_[s]; }
    std::vector<Outage> outages(int s) const {
        std::lock_guard<std::mutex> g(lock_);
        return outages_[s];
    }
    uint64_t misrouted() const { return misrouted_; }
    uint64_t max_latency_ns() const { return max_latency_ns_; }
    uint64_t latency_percentile_ns(double p) const;  // from the histogram of log2 microseconds

private:
    void run();
    void send(int s, uint64_t now);
    uint16_t receive(int port, uint64_t now);

    NetPort* port_[2];
    PacketPool& pool_;
    uint32_t rate_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    SendLog log_[2];
    SeqReceiver rx_[2];
    uint64_t pace_from_[2] = {0, 0}, paced_[2] = {0, 0};  // frames sent since pace_from_
    uint64_t last_try_[2] = {0, 0};
    uint64_t misrouted_ = 0, max_latency_ns_ = 0, latency_log2_us_[40] = {};
    std::vector<uint8_t> frame_;
    mutable std::mutex lock_;
    std::condition_variable crossed_;
    std::vector<Outage> outages_[2];
    std::array<uint64_t, 2> back_since_ = {0, 0};  // frames sent from then on end an outage (0: not yet)
    std::atomic<bool> awaiting_{true};
};

uint32_t frame_len(uint64_t seq) { return kMinFrame + static_cast<uint32_t>(seq * 97 % (kMaxFrame - kMinFrame + 1)); }

// Paced at rate_ frames per second in bursts of up to 32, at least every
// millisecond. After an outage the pace starts over: no surge to catch up
// with what could not be sent while the link was down.
void Traffic::send(int s, uint64_t now) {
    if (pace_from_[s] == 0) pace_from_[s] = now;
    uint64_t due = (now - pace_from_[s]) * rate_ / 1000000000 - paced_[s];
    if (due > 64) {
        pace_from_[s] = now;
        paced_[s] = 0;
        due = 32;
    }
    if (due < 32 && now - last_try_[s] < 1000000) return;
    last_try_[s] = now;
    Packet* burst[32];
    const uint16_t want = static_cast<uint16_t>(std::min<uint64_t>(due, 32));
    const uint64_t first = log_[s].sent();
    const Mac src = port_[s]->mac(), dst = port_[1 - s]->mac();
    uint16_t n = 0;
    for (; n < want; n++) {
        build_frame(frame_, dst, src, {static_cast<uint16_t>(s), first + n, now, frame_len(first + n)});
        Packet* p = pool_.alloc();
        if (p == nullptr) break;
        std::memcpy(p->append(static_cast<uint16_t>(frame_.size())), frame_.data(), frame_.size());
        burst[n] = p;
    }
    const uint16_t sent = n ? port_[s]->tx_burst(0, burst, n) : 0;
    PacketPool::free_bulk(burst + sent, n - sent);  // refused (link down, ring full): never sent, numbers reused
    log_[s].record(first, sent, now);
    paced_[s] += sent;
}

uint16_t Traffic::receive(int port, uint64_t now) {
    Packet* in[32];
    const uint16_t n = port_[port]->rx_burst(0, in, 32);
    const int s = 1 - port;  // stream s arrives on the other port
    bool ended = false;
    for (uint16_t i = 0; i < n; i++) {
        FrameHeader h;
        const Parsed r = in[i]->nb_segs == 1 ? parse_frame(in[i]->data(), in[i]->data_len, h) : Parsed::Corrupt;
        if (r == Parsed::NotOurs) continue;
        if (r == Parsed::Corrupt) {
            rx_[s].corrupt();
            continue;
        }
        if (h.stream != s) {
            misrouted_++;
            continue;
        }
        rx_[s].receive(h.seq);
        const uint64_t lat = now > h.sent_ns ? now - h.sent_ns : 0;
        max_latency_ns_ = std::max(max_latency_ns_, lat);
        latency_log2_us_[std::min<size_t>(39, static_cast<size_t>(std::bit_width(lat / 1000)))]++;
        if (awaiting_.load(std::memory_order_relaxed)) {
            std::lock_guard<std::mutex> g(lock_);
            if (back_since_[s] != 0 && h.sent_ns >= back_since_[s] && outages_[s].back().end_ns == 0) {
                outages_[s].back().end_ns = now;
                ended = true;
                awaiting_ = outages_[1 - s].back().end_ns == 0;
            }
        }
    }
    PacketPool::free_bulk(in, n);
    if (ended) crossed_.notify_all();
    return n;
}

void Traffic::run() {
    uint64_t quiet_since = 0;
    for (;;) {
        const uint64_t now = now_ns();
        const bool stopping = stop_.load(std::memory_order_relaxed);
        if (!stopping)
            for (int s = 0; s < 2; s++) send(s, now);
        const uint16_t got = receive(0, now) + receive(1, now);
        if (stopping) {  // drain: what is still on its way
            if (got != 0 || quiet_since == 0) quiet_since = now;
            const bool all_in = rx_[0].received() + rx_[0].duplicates() >= log_[0].sent() &&
                                rx_[1].received() + rx_[1].duplicates() >= log_[1].sent();
            if (all_in || now - quiet_since > 1000000000) break;
        }
        if (got == 0) std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    pool_.flush_thread_cache();
}

uint64_t Traffic::latency_percentile_ns(double p) const {
    uint64_t total = 0;
    for (uint64_t c : latency_log2_us_) total += c;
    uint64_t acc = 0;
    for (size_t b = 0; b < 40; b++) {
        acc += latency_log2_us_[b];
        if (total != 0 && static_cast<double>(acc) >= p * static_cast<double>(total))
            return (uint64_t{1} << b) * 1000;  // the bucket's upper bound
    }
    return 0;
}

}  // namespace
}  // namespace vireo::soak

namespace vireo::soak {
namespace {

struct Restart {
    int round = 0;
    uint64_t down_ns = 0;  // when it began: run `round` of the back end starts here
    bool kill = false;
    double restart_ms = 0;              // the back end's stop and start
    std::array<double, 2> outage_ms{};  // stream by stream: down until a frame sent after it crossed
};

nlohmann::json to_json(const LossReport& r) {
    return {{"sent", r.sent},
            {"received", r.received},
            {"lost_while_down", r.lost_while_down},
            {"lost", r.lost},
            {"duplicates", r.duplicates},
            {"misordered", r.misordered},
            {"corrupted", r.corrupted},
            {"lost_per_outage", r.lost_per_outage},
            {"lost_by_second", r.lost_by_second},
            {"first_lost", r.first_lost}};
}

nlohmann::json to_json(const std::vector<Footprint>& s) {
    nlohmann::json a = nlohmann::json::array();
    for (const Footprint& f : s)
        a.push_back({{"t", f.t}, {"rss_kb", f.rss_kb}, {"hugetlb_kb", f.hugetlb_kb}, {"fds", f.fds}});
    return a;
}

int run(const Options& o) {
    namespace fs = std::filesystem;
    fs::create_directories(o.out);
    std::vector<std::string> socks;
    for (int i = 0; i < 4; i++) socks.push_back(test::peer_socket("soak" + std::to_string(i)));
    const std::string common = ",server=1,ring=1024,timeout_ms=60000";  // we listen; the back end connects again
    std::printf("vireo-soak: %s back end, %.1f min, restart every %.1f s, %u frames/s per stream\n", o.backend.c_str(),
                o.minutes, o.up_seconds, o.rate);
    std::unique_ptr<Backend> backend;
    if (o.backend == "testpmd")
        backend = std::make_unique<TestPmdBackend>(socks);
    else
        backend = std::make_unique<OvsBackend>(socks);

    const std::string fwd_json = fs::absolute(o.out + "/vireo-fwd.json").string();
    test::Fwd fwd({"--device", "vhost-user:" + socks[1] + common + ",packed=0,dma=direct", "--device",
                   "vhost-user:" + socks[2] + common + ",packed=1,dma=window", "--forward-mode", "io", "--cores", "0",
                   "--stats-period", "10", "--json", fwd_json});

    DmaMemory mem(test::peer_memory(IovaMode::PA, 64 << 20));
    PacketPool pool(mem, {.count = 8192, .cache_size = 0});
    auto g0 = NetPort::open("vhost-user:" + socks[0] + common + ",packed=1,dma=direct", mem, pool, 0);
    auto g1 = NetPort::open("vhost-user:" + socks[3] + common + ",packed=0,dma=window", mem, pool, 1);
    g0->start();
    g1->start();

    Traffic traffic(*g0, *g1, pool, o.rate);
    const uint64_t t0 = now_ns();
    auto since = [&](uint64_t t) { return static_cast<double>(t - t0) / 1e9; };
    traffic.start(t0);
    std::vector<std::string> failures;
    if (!traffic.wait_crossed(std::chrono::seconds(60)))
        failures.push_back("no frame crossed in 60 s after the start:\n" + fwd.log() + backend->log_tail());

    std::vector<Footprint> fwd_fp, self_fp;
    std::vector<Restart> restarts;
    const uint64_t end = t0 + static_cast<uint64_t>(o.minutes * 60e9);
    uint64_t next_sample = now_ns(), next_restart = now_ns() + static_cast<uint64_t>(o.up_seconds * 1e9);
    while (failures.empty() && now_ns() < end) {
        if (now_ns() >= next_sample) {
            fwd_fp.push_back(read_footprint(fwd.pid(), since(now_ns())));
            self_fp.push_back(read_footprint(::getpid(), since(now_ns())));
            next_sample += 10000000000ull;
        }
        if (now_ns() >= next_restart) {
            Restart r;
            r.round = static_cast<int>(restarts.size()) + 1;
            r.kill = r.round % 2 == 1;  // SIGKILL and a clean stop in turn
            const uint64_t down = now_ns();
            r.down_ns = down;
            traffic.down();
            backend->restart(r.kill);
            r.restart_ms = static_cast<double>(now_ns() - down) / 1e6;
            traffic.back();
            if (!traffic.wait_crossed(std::chrono::seconds(o.restart_timeout_s)))
                failures.push_back("restart " + std::to_string(r.round) + ": no frame crossed within " +
                                   std::to_string(o.restart_timeout_s) + " s\n" + backend->log_tail());
            for (int s = 0; s < 2; s++) {
                const Outage last = traffic.outages(s).back();
                r.outage_ms[s] = last.end_ns ? static_cast<double>(last.end_ns - last.begin_ns) / 1e6 : -1;
            }
            std::printf(
                "%7.1f s  restart %d (%s): back end up in %.0f ms, frames crossing again after %.0f / %.0f ms\n",
                since(down), r.round, r.kill ? "SIGKILL" : "clean stop", r.restart_ms, r.outage_ms[0], r.outage_ms[1]);
            std::fflush(stdout);
            restarts.push_back(r);
            next_restart = now_ns() + static_cast<uint64_t>(o.up_seconds * 1e9);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    fwd_fp.push_back(read_footprint(fwd.pid(), since(now_ns())));
    self_fp.push_back(read_footprint(::getpid(), since(now_ns())));
    traffic.finish();
    backend->finish();

    const StopReport stop0 = g0->stop(), stop1 = g1->stop();
    const uint32_t in_use = pool.in_use();
    const uint64_t g_downs = g0->link_status().downs;
    nlohmann::json g_ports = nlohmann::json::array();
    for (NetPort* g : {g0.get(), g1.get()}) {
        const QueueStats rx = g->rx_totals(), tx = g->tx_totals();
        g_ports.push_back({{"rx_packets", rx.packets},
                           {"rx_drops", rx.drops},
                           {"rx_errors", rx.errors},
                           {"tx_packets", tx.packets},
                           {"tx_errors", tx.errors},
                           {"tx_undelivered", tx.undelivered}});
    }
    const int fwd_exit = fwd.finish();
    std::ofstream(o.out + "/vireo-fwd.log") << fwd.log();
    const nlohmann::json fj = test::read_summary(fwd_json);
    const bool fwd_leaked = !fj.contains("pool") || fj["pool"].value("leaked", true);

    // A frame still on its way when the back end stopped is dropped while down:
    // the grace before each outage is the worst latency seen, at least 1 ms, at most 100 ms.
    const uint64_t grace = std::clamp<uint64_t>(traffic.max_latency_ns(), 1000000, 100000000);
    // A loss while the path was up is the back end's own drop when, in that
    // run of it, the back end counted at least as many (a port's Rx ring full:
    // its receiver, vireo-fwd or this generator, did not get the CPU in time).
    std::vector<uint64_t> run_starts;
    for (const Restart& r : restarts) run_starts.push_back(r.down_ns);
    LossReport loss[2];
    uint64_t backend_drops[2], unexplained[2];
    bool clean = failures.empty();
    for (int s = 0; s < 2; s++) {
        loss[s] = account(traffic.log(s), traffic.rx(s), traffic.outages(s), grace, t0);
        backend_drops[s] = dropped_by_backend(loss[s].lost_sent_ns, run_starts, backend->drops());
        unexplained[s] = loss[s].lost - backend_drops[s];
        clean = clean && unexplained[s] == 0 && loss[s].duplicates == 0 && loss[s].misordered == 0 &&
                loss[s].corrupted == 0 && loss[s].received > 0;
    }
    nlohmann::json drops_json = nlohmann::json::array();
    for (const BackendDrops& d : backend->drops())
        drops_json.push_back({{"run", d.run},
                              {"from_s", d.run == 0 ? 0.0 : since(run_starts[d.run - 1])},
                              {"frames", d.frames},
                              {"where", d.where}});
    const FlatVerdict flat = judge(fwd_fp, 2048);
    const bool pass = clean && traffic.misrouted() == 0 && in_use == 0 && fwd_exit == 0 && !fwd_leaked && flat.flat &&
                      !restarts.empty();

    nlohmann::json j = {
        {"backend", o.backend},
        {"minutes", o.minutes},
        {"up_seconds", o.up_seconds},
        {"rate_per_stream", o.rate},
        {"topology", "G0(packed,direct) -> F0(split,direct) => vireo-fwd io => F1(packed,window) -> G1(split,window)"},
        {"restarts", restarts.size()},
        {"restart_list", nlohmann::json::array()},
        {"streams", {to_json(loss[0]), to_json(loss[1])}},
        {"misrouted", traffic.misrouted()},
        {"backend_drops", drops_json},  // ports: 0 G0, 1 F0, 2 F1, 3 G1
        {"lost_dropped_by_backend", {backend_drops[0], backend_drops[1]}},
        {"lost_unexplained", {unexplained[0], unexplained[1]}},
        {"grace_ms", static_cast<double>(grace) / 1e6},
        {"latency_us",
         {{"p50", traffic.latency_percentile_ns(0.5) / 1000},
          {"p99", traffic.latency_percentile_ns(0.99) / 1000},
          {"p999", traffic.latency_percentile_ns(0.999) / 1000},
          {"max", traffic.max_latency_ns() / 1000}}},
        {"generator",
         {{"pool_in_use_after_stop", in_use},
          {"link_downs", g_downs},
          {"ports", g_ports},
          {"stop_tx_undelivered", stop0.tx_undelivered + stop1.tx_undelivered}}},
        {"vireo_fwd", {{"exit", fwd_exit}, {"leaked", fwd_leaked}, {"summary", fj}}},
        {"footprint", {{"vireo_fwd", to_json(fwd_fp)}, {"soak", to_json(self_fp)}}},
        {"flat", {{"flat", flat.flat}, {"why", flat.why}, {"rss_growth_kb", flat.rss_growth_kb}}},
        {"failures", failures},
        {"pass", pass}};
    for (const Restart& r : restarts)
        j["restart_list"].push_back({{"round", r.round},
                                     {"kind", r.kill ? "SIGKILL" : "clean"},
                                     {"restart_ms", r.restart_ms},
                                     {"outage_ms", r.outage_ms}});
    std::ofstream(o.out + "/soak.json") << j.dump(2) << "\n";

    std::printf("\n%zu restarts (%zu by SIGKILL); generator link downs %llu\n", restarts.size(),
                (restarts.size() + 1) / 2, static_cast<unsigned long long>(g_downs));
    for (int s = 0; s < 2; s++)
        std::printf(
            "stream %d: sent %llu received %llu | dropped while down %llu | lost while up %llu (%llu of them "
            "dropped by the back end, %llu unexplained) | corrupted %llu duplicated %llu misordered %llu%s%s\n",
            s, static_cast<unsigned long long>(loss[s].sent), static_cast<unsigned long long>(loss[s].received),
            static_cast<unsigned long long>(loss[s].lost_while_down), static_cast<unsigned long long>(loss[s].lost),
            static_cast<unsigned long long>(backend_drops[s]), static_cast<unsigned long long>(unexplained[s]),
            static_cast<unsigned long long>(loss[s].corrupted), static_cast<unsigned long long>(loss[s].duplicates),
            static_cast<unsigned long long>(loss[s].misordered), loss[s].first_lost.empty() ? "" : ": ",
            loss[s].first_lost.c_str());
    for (const BackendDrops& d : backend->drops())
        std::printf(
            "the back end dropped %llu frame(s) in its run %zu (from %.1f s; ports 0 G0, 1 F0, 2 F1, 3 G1: "
            "%s)\n",
            static_cast<unsigned long long>(d.frames), d.run, d.run == 0 ? 0.0 : since(run_starts[d.run - 1]),
            d.where.c_str());
    std::printf("latency p50 %llu us, p99.9 %llu us, max %llu us (grace before an outage %.1f ms)\n",
                static_cast<unsigned long long>(traffic.latency_percentile_ns(0.5) / 1000),
                static_cast<unsigned long long>(traffic.latency_percentile_ns(0.999) / 1000),
                static_cast<unsigned long long>(traffic.max_latency_ns() / 1000), static_cast<double>(grace) / 1e6);
    std::printf("vireo-fwd: RSS %llu -> %llu kB, fds %llu -> %llu, %s; exit %d, buffers %s\n",
                static_cast<unsigned long long>(fwd_fp.front().rss_kb),
                static_cast<unsigned long long>(fwd_fp.back().rss_kb),
                static_cast<unsigned long long>(fwd_fp.front().fds), static_cast<unsigned long long>(fwd_fp.back().fds),
                flat.flat ? "flat" : flat.why.c_str(), fwd_exit, fwd_leaked ? "LEAKED" : "all back");
    std::printf("generator: %u buffers still in use after stop\n", in_use);
    if (!clean) std::printf("the back end's log:\n%s\n", backend->log_tail().c_str());
    for (const std::string& f : failures) std::printf("FAIL %s\n", f.c_str());
    std::printf("%s (%s/soak.json)\n", pass ? "PASS" : "FAIL", o.out.c_str());
    return pass ? 0 : 1;
}

}  // namespace
}  // namespace vireo::soak

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    ::setenv("VIREO_FWD", VIREO_SOAK_FWD, 0);  // this build's vireo-fwd unless told otherwise
    vireo::soak::Options o;
    CLI::App app("vireo-soak: vireo-fwd under a back end restarted every few seconds, every frame accounted for");
    app.add_option("--backend", o.backend, "testpmd or ovs")->check(CLI::IsMember({"testpmd", "ovs"}));
    app.add_option("--minutes", o.minutes, "how long (default 10)")->check(CLI::Range(0.1, 1440.0));
    app.add_option("--up-seconds", o.up_seconds, "seconds between restarts (default 5)")->check(CLI::Range(1.0, 600.0));
    app.add_option("--rate", o.rate, "frames per second per stream (default 20000)")->check(CLI::Range(100, 2000000));
    app.add_option("--out", o.out, "folder for soak.json and vireo-fwd.log (default soak-out)");
    CLI11_PARSE(app, argc, argv);
    if (o.backend == "testpmd" ? !vireo::test::TestPmd::available() : !vireo::test::Ovs::available()) {
        std::fprintf(stderr, "vireo-soak: %s is not installed or there are too few free hugepages (ci/setup)\n",
                     o.backend.c_str());
        return 2;
    }
    try {
        return vireo::soak::run(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vireo-soak: %s\n", e.what());
        return 2;
    }
}
