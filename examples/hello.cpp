// hello: open one virtio-net port, echo every frame that arrives back out for a
// few seconds, print the port's counters, and check that every buffer came home.
//
//   hello vhost-user:/tmp/vhost.sock [SECONDS]      (or pci:0000:00:10.0)
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <vireo/base/error.hpp>
#include <vireo/pmd/device_set.hpp>

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " DEVICE [SECONDS]   e.g. vhost-user:/tmp/vhost.sock\n";
        return 2;
    }
    // Probe first: the devices choose the IOVA mode, then the memory is made in that mode.
    auto devices = vireo::DeviceSet::probe({argv[1]});
    vireo::DmaMemory mem(devices.memory_options());
    vireo::PacketPool pool(mem, {.count = 8192, .data_room = 2048});
    auto port = devices.open_port(0, mem, pool);  // declared after mem and pool, so destroyed before them
    port->start();

    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(argc > 2 ? std::atoi(argv[2]) : 3);
    vireo::Packet* pkts[32];
    uint64_t unsent = 0;
    while (std::chrono::steady_clock::now() < end) {
        uint16_t n = port->rx_burst(0, pkts, 32);
        uint16_t sent = port->tx_burst(0, pkts, n);
        vireo::PacketPool::free_bulk(pkts + sent, n - sent);  // the Tx ring was full: the rest are still ours
        unsent += n - sent;
    }

    const vireo::QueueStats rx = port->rx_stats(0), tx = port->tx_stats(0);
    std::cout << port->describe() << ": received " << rx.packets << " packets (" << rx.bytes << " bytes), sent "
              << tx.packets << ", not sent " << unsent << ", pool empty " << rx.drops << " times, errors "
              << rx.errors + tx.errors << "\n";
    port->stop();  // every buffer still in the rings goes back to the pool
    std::cout << "packets in use after stop: " << pool.in_use() << "\n";
    return pool.in_use() == 0 ? 0 : 1;
} catch (const vireo::Error& e) {  // the setup path throws; the text names the cause and the fix
    std::cerr << "hello: " << e.what() << "\n";
    return 1;
}
