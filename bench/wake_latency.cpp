// vireo-bench-wake: what --sleep-when-idle costs and saves, against DPDK's
// vhost back end. A (polling) and B (--sleep-when-idle) alternate, each run
// labelled by vireo-bench-probe. In each run:
//   - CPU use of an idle vireo-fwd: its utime + stime over 2 s with no traffic;
//   - round trip of one frame at a time (1 ms apart, so B falls asleep
//     before each): this process's port V -> testpmd io -> vireo-fwd
//     macswap -> testpmd -> V. B's median minus A's is the wake-up cost.
// CPUs: vireo-fwd on 0, testpmd's forwarding lcore on 1, V on 1 too, asleep
// on its own call eventfd while it waits (a third poller would need a third CPU).
//
//   vireo-bench-wake --fwd PATH [--pairs N] [--samples N] [--json FILE]
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/fwd_process.hpp"
#include "support/peer_env.hpp"
#include "support/testpmd.hpp"
#include "support/traffic.hpp"
#include "vireo/base/error.hpp"
#include "vireo/pmd/net_port.hpp"

using namespace vireo;
using namespace vireo::test;

namespace {

struct Run {
    bool sleeping;
    double probe_before, probe_after;
    double idle_cpu_pct;
    double rtt_p50_us, rtt_p90_us, rtt_p99_us;
    uint64_t samples, lost;
};

double probe(const std::string& dir) {
    std::string out;
    if (FILE* p = ::popen((dir + "/vireo-bench-probe").c_str(), "r")) {
        char b[64];
        while (std::fgets(b, sizeof b, p) != nullptr) out += b;
        ::pclose(p);
    }
    return std::atof(out.c_str());
}

// utime + stime of a process, in seconds.
double cpu_seconds(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), {});
    const size_t close = s.rfind(')');
    if (close == std::string::npos) return 0;
    std::vector<std::string> field;
    size_t at = close + 2;
    while (at < s.size()) {
        const size_t sp = s.find(' ', at);
        field.push_back(s.substr(at, sp - at));
        if (sp == std::string::npos) break;
        at = sp + 1;
    }
    // After the command: field 0 is state (stat's 3rd); utime and stime are stat's 14th and 15th.
    return field.size() > 12 ? (std::atof(field[11].c_str()) + std::atof(field[12].c_str())) / ::sysconf(_SC_CLK_TCK)
                             : 0;
}

// One frame out on V, and the time until it comes back (macswapped), V asleep on its call eventfd meanwhile.
double round_trip_us(NetPort& v, PacketPool& pool, uint32_t seq) {
    Packet* p = pool.alloc();
    if (p == nullptr) return -1;
    uint8_t* d = p->append(64);
    std::memset(d, 0, 64);
    std::memcpy(d, v.mac().data(), 6);  // to V itself: vireo-fwd swaps, the frame comes back to V
    std::memcpy(d + 6, v.mac().data(), 6);
    d[12] = 0x88, d[13] = 0xb7;
    std::memcpy(d + 14, &seq, 4);
    const auto t0 = std::chrono::steady_clock::now();
    if (v.tx_burst(0, &p, 1) != 1) {
        PacketPool::free(p);
        return -1;
    }
    const int fd = v.rx_notify_fd(0);
    const auto give_up = t0 + std::chrono::milliseconds(200);
    while (std::chrono::steady_clock::now() < give_up) {
        Packet* in[8];
        const uint16_t n = v.rx_burst(0, in, 8);
        bool mine = false;
        for (uint16_t i = 0; i < n; i++) mine |= in[i]->data_len >= 18 && std::memcmp(in[i]->data() + 14, &seq, 4) == 0;
        PacketPool::free_bulk(in, n);
        if (mine) return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        if (n == 0 && v.rx_notify_arm(0)) {
            pollfd pf{fd, POLLIN, 0};
            ::poll(&pf, 1, 20);
        }
        v.rx_notify_disarm(0);
    }
    return -1;
}

Run one_run(bool sleeping, const std::string& fwd_path, const std::string& dir, const std::string& tp1, NetPort& v,
            PacketPool& pool, uint32_t samples) {
    Run r{};
    r.sleeping = sleeping;
    r.probe_before = probe(dir);
    ::setenv("VIREO_FWD", fwd_path.c_str(), 1);
    std::vector<std::string> args = {"--forward-mode=macswap", "--cores=0", "--stats-period=0", "vhost-user:" + tp1};
    if (sleeping) args.insert(args.begin(), "--sleep-when-idle");
    Fwd fwd(args);
    if (!fwd.wait_for("polling on CPU 0")) throw Error("vireo-fwd did not start: " + fwd.log());
    if (!wait_path(v, v, pool, 20000)) throw Error("no frame came back through vireo-fwd: " + fwd.log());
    const double c0 = cpu_seconds(fwd.pid());
    std::this_thread::sleep_for(std::chrono::seconds(2));
    r.idle_cpu_pct = (cpu_seconds(fwd.pid()) - c0) / 2.0 * 100.0;
    std::vector<double> rtt;
    for (uint32_t i = 0; i < samples; i++) {
        const double us = round_trip_us(v, pool, 0x10000 + i);
        if (us < 0)
            r.lost++;
        else
            rtt.push_back(us);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    fwd.finish();
    std::sort(rtt.begin(), rtt.end());
    auto pct = [&](double q) { return rtt.empty() ? -1.0 : rtt[std::min(rtt.size() - 1, size_t(q * rtt.size()))]; };
    r.rtt_p50_us = pct(0.5), r.rtt_p90_us = pct(0.9), r.rtt_p99_us = pct(0.99);
    r.samples = rtt.size();
    r.probe_after = probe(dir);
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    std::string fwd_path, json;
    int pairs = 3;
    uint32_t samples = 1000;
    for (int i = 1; i < argc; i++) {
        const std::string k = argv[i];
        const std::string v = i + 1 < argc ? argv[i + 1] : "";
        if (k == "--fwd")
            fwd_path = v, i++;
        else if (k == "--pairs")
            pairs = std::atoi(v.c_str()), i++;
        else if (k == "--samples")
            samples = static_cast<uint32_t>(std::atoi(v.c_str())), i++;
        else if (k == "--json")
            json = v, i++;
        else {
            std::fprintf(stderr, "usage: vireo-bench-wake --fwd PATH [--pairs N] [--samples N] [--json FILE]\n");
            return 2;
        }
    }
    if (fwd_path.empty() || ::access(fwd_path.c_str(), X_OK) != 0) {
        std::fprintf(stderr, "vireo-bench-wake: --fwd names no vireo-fwd binary\n");
        return 2;
    }
    std::string dir = argv[0];
    dir = dir.find('/') == std::string::npos ? "." : dir.substr(0, dir.rfind('/'));
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(1, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    try {
        const std::string tp0 = peer_socket("wake0"), tp1 = peer_socket("wake1");
        TestPmd pmd({tp0, 1, false, false, "io", 0, {tp1}});
        if (!pmd.wait_for_socket(15000) || !pmd.wait_forwarding(15000))
            throw Error("dpdk-testpmd did not come up: " + pmd.log_tail());
        DmaMemory mem(peer_memory(IovaMode::PA, 64 << 20));
        PacketPool pool(mem, {.count = 2048});
        auto v = NetPort::open("vhost-user:" + tp0 + ",mac=02:00:00:00:00:0b", mem, pool);
        v->start();
        std::vector<Run> runs;
        std::printf("run  side     probe ns (before/after)  idle CPU %%  RTT us p50 / p90 / p99  samples lost\n");
        for (int p = 0; p < pairs; p++)
            for (bool sleeping : {false, true}) {
                Run r = one_run(sleeping, fwd_path, dir, tp1, *v, pool, samples);
                std::printf("%3zu  %-7s  %6.1f / %6.1f          %8.1f    %7.1f / %7.1f / %7.1f  %7llu %4llu\n",
                            runs.size(), sleeping ? "sleep" : "poll", r.probe_before, r.probe_after, r.idle_cpu_pct,
                            r.rtt_p50_us, r.rtt_p90_us, r.rtt_p99_us, static_cast<unsigned long long>(r.samples),
                            static_cast<unsigned long long>(r.lost));
                std::fflush(stdout);
                runs.push_back(r);
            }
        v->stop();
        if (!json.empty()) {
            std::ofstream f(json);
            f << "{\"bench\": \"vireo-bench-wake\", \"samples_per_run\": " << samples << ", \"runs\": [\n";
            for (size_t i = 0; i < runs.size(); i++) {
                const Run& r = runs[i];
                f << (i ? ",\n" : "") << "  {\"side\": \"" << (r.sleeping ? "sleep" : "poll")
                  << "\", \"probe_before_ns\": " << r.probe_before << ", \"probe_after_ns\": " << r.probe_after
                  << ", \"idle_cpu_pct\": " << r.idle_cpu_pct << ", \"rtt_p50_us\": " << r.rtt_p50_us
                  << ", \"rtt_p90_us\": " << r.rtt_p90_us << ", \"rtt_p99_us\": " << r.rtt_p99_us
                  << ", \"samples\": " << r.samples << ", \"lost\": " << r.lost << "}";
            }
            f << "\n]}\n";
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vireo-bench-wake: %s\n", e.what());
        return 1;
    }
    return 0;
}
