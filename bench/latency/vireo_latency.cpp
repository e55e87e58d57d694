// vireo-bench-latency: latency_core.h's algorithm on a vireo port.
//
//   vireo-bench-latency DEVICE [--sleep-when-idle] (--max S | --rates R1,R2,... [--seconds S]) [--idle-rounds N]
//
// One port (e.g. vhost-user:/tmp/sock,packed=1,in_order=1,mrg_rxbuf=0), queue 0, polled on CPU 0. With
// --sleep-when-idle the loop sleeps on the port's Rx notification (NetPort::rx_notify_arm) after N empty rounds,
// until a frame comes back or the next one is due, as vireo-fwd --sleep-when-idle does.
#include <poll.h>
#include <sched.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "latency_core.h"
#include "vireo/base/error.hpp"
#include "vireo/pmd/device_set.hpp"

namespace {

using namespace vireo;

struct Ctx {
    NetPort* port;
    PacketPool* pool;
    uint64_t hz;
};

uint16_t send(void* c, uint64_t seq, uint64_t stamp, uint16_t n) {
    auto* x = static_cast<Ctx*>(c);
    Packet* b[LAT_BURST];
    if (!x->pool->alloc_bulk(b, n)) return 0;
    for (uint16_t i = 0; i < n; i++) lat_write_frame(b[i]->append(LAT_FRAME), seq + i, stamp);
    const uint16_t sent = x->port->tx_burst(0, b, n);
    PacketPool::free_bulk(b + sent, n - sent);
    return sent;
}

uint16_t receive(void* c, uint64_t* stamps, uint16_t max) {
    auto* x = static_cast<Ctx*>(c);
    Packet* b[LAT_BURST];
    const uint16_t n = x->port->rx_burst(0, b, max);
    uint16_t k = 0;
    for (uint16_t i = 0; i < n; i++)
        if (const uint64_t s = lat_read_stamp(b[i]->data(), b[i]->data_len); s != 0) stamps[k++] = s;
    PacketPool::free_bulk(b, n);
    return k;
}

void wait(void* c, uint64_t until) {
    auto* x = static_cast<Ctx*>(c);
    const uint64_t now = __rdtsc();
    if (until <= now || !x->port->rx_notify_arm(0)) return;  // false: frames came meanwhile
    const auto ns = static_cast<long>(static_cast<double>(until - now) * 1e9 / static_cast<double>(x->hz));
    const timespec t{ns / 1000000000, ns % 1000000000};
    pollfd pf{x->port->rx_notify_fd(0), POLLIN, 0};
    ::ppoll(&pf, 1, &t, nullptr);
    x->port->rx_notify_disarm(0);
}

int run(int argc, char** argv) {
    if (argc < 2 || argv[1][0] == '-') {
        std::fprintf(stderr,
                     "usage: vireo-bench-latency DEVICE [--sleep-when-idle] (--max S | --rates R1,R2,...) "
                     "[--seconds S] [--idle-rounds N]\n");
        return 2;
    }
    const std::string dev = argv[1];
    std::vector<char*> rest;
    bool sleep = false;
    for (int i = 2; i < argc; i++) {
        if (std::strcmp(argv[i], "--sleep-when-idle") == 0)
            sleep = true;
        else
            rest.push_back(argv[i]);
    }
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(0, &cpus);
    sched_setaffinity(0, sizeof cpus, &cpus);
    DeviceSet set = DeviceSet::probe({dev});
    DmaMemoryOptions mo = set.memory_options();
    mo.region_size = size_t{32} << 20;
    DmaMemory mem(mo);
    PacketPool pool(mem, {.count = 8192});
    std::unique_ptr<NetPort> port = set.open_port(0, mem, pool);
    port->start();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!port->ready() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!port->ready()) {
        std::fprintf(stderr, "vireo-bench-latency: %s not ready in 15 s: %s\n", dev.c_str(),
                     port->link_status().reason.c_str());
        return 1;
    }
    Ctx ctx{port.get(), &pool, lat_tsc_hz(50)};
    const lat_driver d{&ctx, send, receive, sleep ? wait : nullptr};
    const std::string path = port->data_path() + (sleep ? " +sleep" : "");
    const int rc =
        lat_main(&d, sleep ? "vireo+sleep" : "vireo", path.c_str(), static_cast<int>(rest.size()), rest.data());
    port->stop();
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const Error& e) {
        std::fprintf(stderr, "vireo-bench-latency: %s\n", e.what());
        return 1;
    }
}
