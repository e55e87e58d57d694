// l2fwd: a minimal L2 forwarder on vireo's installed headers (DPDK's l2fwd, reduced).
//
//   l2fwd [--dst-mac aa:bb:cc:dd:ee:ff] DEVICE...
//   l2fwd vhost-user:/tmp/a.sock vhost-user:/tmp/b.sock pci:0000:00:10.0 pci:0000:00:11.0
//
// Ports are paired 0<->1, 2<->3, ...; an odd last port sends back out itself.
// Every frame leaves with the Tx port's MAC as source and --dst-mac (default
// 02:00:00:00:00:0N, N the Tx port) as destination. One thread polls every
// queue of every port in bursts of 32; SIGINT or SIGTERM stops it cleanly.
#include <signal.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <vireo/base/error.hpp>
#include <vireo/pmd/device_set.hpp>

namespace {

constexpr uint16_t kBurst = 32;
constexpr uint16_t kEtherHdr = 14;
using Mac = std::array<uint8_t, 6>;

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

bool parse_mac(const char* s, Mac& mac) {
    unsigned b[6];
    char extra;
    if (std::sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &extra) != 6) return false;
    for (int i = 0; i < 6; i++) {
        if (b[i] > 0xff) return false;
        mac[i] = static_cast<uint8_t>(b[i]);
    }
    return true;
}

struct Port {
    std::unique_ptr<vireo::NetPort> dev;
    size_t out;           // the port its received frames leave by
    Mac dst;              // destination MAC of the frames this port sends
    uint64_t unsent = 0;  // frames its Tx rings had no room for (tx_stats does not count them)
    uint64_t runts = 0;   // frames too short for an Ethernet header
};

// Receives a burst on port `in`, queue q, and sends it out of its pair.
void forward(std::vector<Port>& ports, Port& in, uint16_t q) {
    vireo::Packet* pkts[kBurst];
    const uint16_t n = in.dev->rx_burst(q, pkts, kBurst);
    if (n == 0) return;
    Port& out = ports[in.out];
    const Mac src = out.dev->mac();
    uint16_t m = 0;
    for (uint16_t i = 0; i < n; i++) {
        vireo::Packet* p = pkts[i];
        if (p->data_len < kEtherHdr) {  // the device decides lengths: never trust one
            vireo::PacketPool::free(p);
            in.runts++;
            continue;
        }
        std::memcpy(p->data(), out.dst.data(), 6);
        std::memcpy(p->data() + 6, src.data(), 6);
        pkts[m++] = p;
    }
    // The same queue index on the way out: this thread owns every queue of every port.
    const uint16_t sent = out.dev->tx_burst(q % out.dev->queue_pairs(), pkts, m);
    vireo::PacketPool::free_bulk(pkts + sent, m - sent);  // tx_burst takes a prefix; the rest are ours to free
    out.unsent += m - sent;
}

// A port's counters summed over its queues.
vireo::QueueStats total(const vireo::NetPort& dev, vireo::QueueStats (vireo::NetPort::*stats)(uint16_t) const) {
    vireo::QueueStats t;
    for (uint16_t q = 0; q < dev.queue_pairs(); q++) {
        const vireo::QueueStats s = (dev.*stats)(q);
        t.packets += s.packets, t.bytes += s.bytes, t.errors += s.errors, t.drops += s.drops;
    }
    return t;
}

}  // namespace

int main(int argc, char** argv) try {
    std::optional<Mac> dst_mac;
    std::vector<std::string> devices;
    bool usage = false;
    for (int i = 1; i < argc && !usage; i++) {
        if (std::strcmp(argv[i], "--dst-mac") == 0)
            usage = i + 1 == argc || !parse_mac(argv[++i], dst_mac.emplace());
        else if (argv[i][0] == '-')
            usage = true;
        else
            devices.push_back(argv[i]);
    }
    if (usage || devices.empty()) {
        std::cerr << "usage: " << argv[0] << " [--dst-mac aa:bb:cc:dd:ee:ff] DEVICE...\n";
        return 2;
    }

    // Every device is opened before any memory exists: together they choose one IOVA mode.
    auto set = vireo::DeviceSet::probe(devices);
    vireo::DmaMemory mem(set.memory_options());
    // Enough packets to fill every Rx and Tx ring, plus bursts in flight and per-thread caches.
    uint32_t count = 4096;
    for (const vireo::ProbedDevice& d : set.devices()) count += 2u * d.spec.queues * d.spec.ring;
    vireo::PacketPool pool(mem, {.count = count, .data_room = 2048});

    std::vector<Port> ports;  // after mem and pool: the ports go first
    for (size_t i = 0; i < set.size(); i++) {
        const size_t out = (i % 2 == 0 && i + 1 == set.size()) ? i : i ^ 1;
        const Mac dst = dst_mac.value_or(Mac{0x02, 0, 0, 0, 0, static_cast<uint8_t>(i)});
        ports.push_back({set.open_port(i, mem, pool), out, dst});
    }
    for (Port& p : ports) p.dev->start();

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::cout << "l2fwd: " << ports.size() << " ports, IOVA mode " << vireo::to_string(set.iova_mode())
              << ", forwarding until SIGINT or SIGTERM" << std::endl;

    while (!g_stop)
        for (Port& p : ports)
            for (uint16_t q = 0; q < p.dev->queue_pairs(); q++) forward(ports, p, q);

    // The data path has stopped, so the control path may run: counters, then stop().
    for (size_t i = 0; i < ports.size(); i++) {
        const Port& p = ports[i];
        const vireo::QueueStats rx = total(*p.dev, &vireo::NetPort::rx_stats);
        const vireo::QueueStats tx = total(*p.dev, &vireo::NetPort::tx_stats);
        std::cout << "port " << i << " " << p.dev->describe() << ": rx " << rx.packets << " tx " << tx.packets
                  << " drop " << p.unsent + p.runts << " (Tx ring full " << p.unsent << ", runts " << p.runts
                  << "), errors " << rx.errors + tx.errors << ", Rx refill found the pool empty " << rx.drops
                  << " times\n";
        if (p.dev->needs_reset()) std::cout << "port " << i << " faulted: " << p.dev->fault_report() << "\n";
    }
    for (Port& p : ports) p.dev->stop();  // every buffer in any ring returns to the pool
    std::cout << "l2fwd: packets in use after stop: " << pool.in_use() << "\n";
    return pool.in_use() == 0 ? 0 : 1;
} catch (const vireo::Error& e) {  // setup errors name the device, the cause and the fix
    std::cerr << "l2fwd: " << e.what() << "\n";
    return 1;
}
