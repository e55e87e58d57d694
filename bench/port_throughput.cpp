// vireo-bench-port: a small throughput program for one vireo port, the vireo
// side of bench/vhost-side-by-side (DPDK's side is dpdk-testpmd with its
// virtio-user PMD).
//
//   vireo-bench-port --device vhost-user:/tmp/s.sock --mode txonly|rxonly|loopback
//                    [--seconds 10] [--burst 32] [--size 64] [--iova pa|va] [--core N]
//
// txonly: allocate a burst, write 64-byte frames (as testpmd's txonly does), send.
// rxonly: receive and free. loopback: receive and send back what came in; the
// first burst is sent to start the loop (testpmd's --tx-first).
// Prints one line per second, "pps <rate>", then "median_pps <rate>" over the
// seconds after the first.
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "vireo/iova/error.hpp"
#include "vireo/pmd/net_port.hpp"

using namespace vireo;

namespace {

volatile sig_atomic_t g_stop = 0;

void usage() {
    std::fprintf(stderr,
                 "usage: vireo-bench-port --device DEV --mode txonly|rxonly|loopback [--seconds N] [--burst N] "
                 "[--size N] [--iova pa|va] [--core N]\n");
}

// The frame testpmd's txonly sends: Ethernet, IPv4, UDP, zero payload.
void build_frame(uint8_t* f, uint16_t size, const std::array<uint8_t, 6>& src) {
    std::memset(f, 0, size);
    const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x02};
    std::memcpy(f, dst, 6);
    std::memcpy(f + 6, src.data(), 6);
    f[12] = 0x08;  // IPv4
    f[14] = 0x45;
    const uint16_t ip_len = static_cast<uint16_t>(size - 14);
    f[16] = static_cast<uint8_t>(ip_len >> 8);
    f[17] = static_cast<uint8_t>(ip_len);
    f[22] = 64;  // TTL
    f[23] = 17;  // UDP
    f[26] = 198, f[27] = 18, f[28] = 0, f[29] = 1;
    f[30] = 198, f[31] = 18, f[32] = 0, f[33] = 2;
    f[34] = 0x04, f[35] = 0x00, f[36] = 0x04, f[37] = 0x00;  // ports 1024
    const uint16_t udp_len = static_cast<uint16_t>(size - 34);
    f[38] = static_cast<uint8_t>(udp_len >> 8);
    f[39] = static_cast<uint8_t>(udp_len);
}

// A whole decimal number in [lo, hi], or one clear error and exit code 2.
int number(const std::string& flag, const std::string& v, int lo, int hi) {
    size_t used = 0;
    int n = 0;
    try {
        n = std::stoi(v, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != v.size() || v.empty() || n < lo || n > hi) {
        std::fprintf(stderr, "vireo-bench-port: %s %s is not a number from %d to %d\n", flag.c_str(), v.c_str(), lo,
                     hi);
        std::exit(2);
    }
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    std::string device, mode;
    int seconds = 10, core = -1;
    uint16_t burst = 32, size = 64;
    std::optional<IovaMode> iova;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--device")
            device = next();
        else if (a == "--mode")
            mode = next();
        else if (a == "--seconds")
            seconds = number(a, next(), 1, 3600);
        else if (a == "--burst")
            burst = static_cast<uint16_t>(number(a, next(), 1, 256));
        else if (a == "--size")
            size = static_cast<uint16_t>(number(a, next(), 60, 2000));
        else if (a == "--iova") {
            const std::string v = next();
            iova = parse_iova_mode(v);
            if (!iova) {
                std::fprintf(stderr, "vireo-bench-port: --iova %s: use pa or va\n", v.c_str());
                return 2;
            }
        } else if (a == "--core")
            core = number(a, next(), 0, CPU_SETSIZE - 1);
        else {
            usage();
            return 2;
        }
    }
    if (device.empty() || (mode != "txonly" && mode != "rxonly" && mode != "loopback")) {
        usage();
        return 2;
    }
    if (core >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(core, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    signal(SIGINT, [](int) { g_stop = 1; });
    signal(SIGTERM, [](int) { g_stop = 1; });
    try {
        // The device decides the mode unless told; a vhost-user back end with
        // IOMMU support offers ACCESS_PLATFORM (VA), one without it needs PA.
        IovaMode m = iova.value_or(IovaMode::PA);
        DmaMemoryOptions mo;
        mo.mode = m;
        mo.pa_source = PaSource::Linear;
        mo.region_size = 64 << 20;
        DmaMemory mem(mo);
        PacketPool pool(mem, {.count = 8192, .data_room = 2048, .cache_size = 256});
        auto port = NetPort::open(device + (iova ? ",iova=" + std::string(to_string(*iova)) : ""), mem, pool);
        port->start();
        std::vector<uint8_t> frame(size);
        build_frame(frame.data(), size, port->mac());
        std::vector<Packet*> pk(burst);
        std::vector<double> rates;
        uint64_t count = 0, last = 0, loops = 0;
        auto t0 = std::chrono::steady_clock::now(), tick = t0;
        if (mode == "loopback" && pool.alloc_bulk(pk.data(), burst)) {  // the first burst starts the loop
            for (Packet* p : pk) std::memcpy(p->append(size), frame.data(), size);
            uint16_t n = port->tx_burst(0, pk.data(), burst);
            PacketPool::free_bulk(pk.data() + n, burst - n);
        }
        while (!g_stop) {
            if (mode == "txonly") {
                if (pool.alloc_bulk(pk.data(), burst)) {
                    for (Packet* p : pk) {
                        p->data_len = size;
                        p->pkt_len = size;
                        std::memcpy(p->data(), frame.data(), size);
                    }
                    uint16_t n = port->tx_burst(0, pk.data(), burst);
                    count += n;
                    if (n < burst) PacketPool::free_bulk(pk.data() + n, burst - n);
                }
            } else {
                uint16_t n = port->rx_burst(0, pk.data(), burst);
                if (mode == "rxonly") {
                    PacketPool::free_bulk(pk.data(), n);
                    count += n;
                } else if (n != 0) {
                    uint16_t s = port->tx_burst(0, pk.data(), n);
                    count += n;
                    if (s < n) PacketPool::free_bulk(pk.data() + s, n - s);
                }
            }
            if ((++loops & 0xff) == 0) {  // look at the clock now and then
                auto now = std::chrono::steady_clock::now();
                if (now - tick >= std::chrono::seconds(1)) {
                    double r = static_cast<double>(count - last) / std::chrono::duration<double>(now - tick).count();
                    std::printf("pps %.0f\n", r);
                    std::fflush(stdout);
                    rates.push_back(r);
                    last = count;
                    tick = now;
                    if (now - t0 >= std::chrono::seconds(seconds)) break;
                }
            }
        }
        std::printf("kicks rx %llu tx %llu\n", static_cast<unsigned long long>(port->rx_stats(0).kicks),
                    static_cast<unsigned long long>(port->tx_stats(0).kicks));
        port->stop();
        if (rates.size() > 1) rates.erase(rates.begin());  // the first second includes start-up
        std::sort(rates.begin(), rates.end());
        std::printf("median_pps %.0f\n", rates.empty() ? 0.0 : rates[rates.size() / 2]);
        std::printf("in_use_after_stop %u\n", pool.in_use());
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "vireo-bench-port: %s\n", e.what());
        return 2;
    }
}
