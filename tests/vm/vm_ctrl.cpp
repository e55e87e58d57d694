// Control-queue features against QEMU's virtio-net device model (virtio 1.2
// 5.1.6.5). QEMU filters in receive_filter(): promiscuous by default after a
// reset; otherwise its own MAC (MAC_ADDR_SET changes it), broadcast, multicast
// only with ALLMULTI (or a table entry), and, once CTRL_VLAN is negotiated, a
// tagged frame only for a VLAN that was added.
#include "vm_ctrl.hpp"

#include <poll.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "support/traffic.hpp"

using namespace vireo;

namespace vm {
namespace {

using Mac = std::array<uint8_t, 6>;
constexpr uint16_t kEtherType = 0x88b7;  // these checks' own frames
constexpr int kFrames = 20;

std::string mac_text(const Mac& m) {
    char s[18];
    std::snprintf(s, sizeof s, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return s;
}

// Sends kFrames frames from tx to `dst` (tagged with `vid` when >= 0) and
// counts those that reach rx within 300 ms of the last one.
int deliver(NetPort& tx, NetPort& rx, PacketPool& pool, const Mac& dst, int vid) {
    for (int i = 0; i < kFrames; i++) {
        Packet* p = pool.alloc();
        if (p == nullptr) break;
        uint8_t* d = p->append(64);
        std::memset(d, 0, 64);
        std::memcpy(d, dst.data(), 6);
        std::memcpy(d + 6, tx.mac().data(), 6);
        size_t at = 12;
        if (vid >= 0) {
            d[12] = 0x81, d[13] = 0x00, d[14] = static_cast<uint8_t>(vid >> 8), d[15] = static_cast<uint8_t>(vid);
            at = 16;
        }
        d[at] = kEtherType >> 8, d[at + 1] = kEtherType & 0xff;
        d[at + 2] = static_cast<uint8_t>(i);
        if (tx.tx_burst(0, &p, 1) != 1) PacketPool::free(p);
    }
    int got = 0;
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    while (std::chrono::steady_clock::now() < end) {
        Packet* in[32];
        const uint16_t n = rx.rx_burst(0, in, 32);
        for (uint16_t i = 0; i < n; i++) {
            const uint8_t* d = in[i]->data();
            const size_t at = d[12] == 0x81 && d[13] == 0x00 ? 16 : 12;
            if (in[i]->data_len >= at + 2 && d[at] == kEtherType >> 8 && d[at + 1] == (kEtherType & 0xff) &&
                std::memcmp(d, dst.data(), 6) == 0)
                got++;
        }
        PacketPool::free_bulk(in, n);
        if (n != 0) end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    }
    return got;
}

void expect(NetPort& tx, NetPort& rx, PacketPool& pool, const Mac& dst, int vid, bool in, const std::string& when) {
    const int got = deliver(tx, rx, pool, dst, vid);
    const std::string what = std::string(in ? "delivered" : "filtered out") + ": " + mac_text(dst) +
                             (vid >= 0 ? " VLAN " + std::to_string(vid) : "") + ", " + when;
    check(in ? got == kFrames : got == 0, what, std::to_string(got) + " of " + std::to_string(kFrames) + " arrived");
}

}  // namespace

void check_filters(NetPort& tx, NetPort& rx, PacketPool& pool) {
    check(test::wait_path(tx, rx, pool, 20000), "filters: the path carries frames", "no probe arrived");
    const Mac own = rx.mac(), other{0x02, 0, 0, 0, 0, 0x99}, multi{0x01, 0x00, 0x5e, 0, 0, 0xfb};
    const Mac bcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect(tx, rx, pool, other, -1, true, "promiscuous (the device's default)");
    rx.set_promiscuous(false);
    expect(tx, rx, pool, other, -1, false, "promiscuous off");
    expect(tx, rx, pool, own, -1, true, "promiscuous off, its own MAC");
    expect(tx, rx, pool, bcast, -1, true, "promiscuous off, broadcast");
    expect(tx, rx, pool, multi, -1, false, "all-multicast off");
    rx.set_all_multicast(true);
    expect(tx, rx, pool, multi, -1, true, "all-multicast on");
    rx.set_mac(other);
    check(rx.mac() == other, "set_mac: the port's MAC is " + mac_text(other));
    expect(tx, rx, pool, other, -1, true, "after set_mac");
    expect(tx, rx, pool, own, -1, false, "after set_mac, the old MAC");
    expect(tx, rx, pool, other, 100, false, "VLAN 100 not added");
    rx.vlan_filter_add(100);
    expect(tx, rx, pool, other, 100, true, "VLAN 100 added");
    expect(tx, rx, pool, other, 200, false, "VLAN 200 not added");
    rx.vlan_filter_remove(100);
    expect(tx, rx, pool, other, 100, false, "VLAN 100 removed");
    // A restart resets the device; the port sends its filters again.
    rx.stop();
    rx.start();
    check(rx.mac() == other, "after a restart the MAC is still " + mac_text(other), "it is " + mac_text(rx.mac()));
    expect(tx, rx, pool, other, -1, true, "after a restart, the MAC set again");
    expect(tx, rx, pool, own, -1, false, "after a restart, promiscuous still off");
}

void check_sleep(NetPort& tx, NetPort& rx, PacketPool& pool) {
    const int fd = rx.rx_notify_fd(0);
    check(fd >= 0, "sleep: Rx queue 0 has an interrupt to sleep on");
    if (fd < 0) return;
    check(test::wait_path(tx, rx, pool, 20000), "sleep: the path carries frames", "no probe arrived");
    constexpr int kN = 40;
    std::atomic<int> received{0}, wakeups{0}, sleeps{0};
    std::atomic<bool> stop{false};
    std::thread sleeper([&] {
        while (!stop.load() && received.load() < kN) {
            Packet* in[8];
            const uint16_t n = rx.rx_burst(0, in, 8);
            for (uint16_t i = 0; i < n; i++) {
                const uint8_t* d = in[i]->data();
                received += in[i]->data_len >= 14 && d[12] == kEtherType >> 8 && d[13] == (kEtherType & 0xff);
            }
            PacketPool::free_bulk(in, n);
            if (n != 0) continue;
            if (rx.rx_notify_arm(0)) {
                sleeps++;
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 1000) == 1) wakeups++;
            }
            rx.rx_notify_disarm(0);
        }
    });
    for (int i = 0; i < kN; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        Packet* p = pool.alloc();
        if (p == nullptr) break;
        uint8_t* d = p->append(60);
        std::memset(d, 0, 60);
        std::memcpy(d, rx.mac().data(), 6);
        std::memcpy(d + 6, tx.mac().data(), 6);
        d[12] = kEtherType >> 8, d[13] = kEtherType & 0xff;
        if (tx.tx_burst(0, &p, 1) != 1) PacketPool::free(p);
    }
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (received.load() < kN && std::chrono::steady_clock::now() < end)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    stop = true;
    sleeper.join();
    std::printf("INFO sleep: %d frames, %d sleeps, %d ended by the interrupt\n", received.load(), sleeps.load(),
                wakeups.load());
    check(received.load() == kN, "sleep: every frame arrived", std::to_string(received.load()) + " of 40");
    check(wakeups.load() >= kN / 2, "sleep: frames woke the sleeping thread (interrupt)",
          std::to_string(wakeups.load()) + " wake-ups by interrupt");
}

void check_announce(NetPort& announcer, NetPort& watcher, int seconds) {
    const int fd = announcer.config_event_fd();
    check(fd >= 0, "announce: configuration interrupt wired");
    const uint64_t tx_before = announcer.tx_stats(0).packets;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    int rarps = 0;
    // Watch for RARPs from the announcer's MAC the whole time: QEMU sends one
    // of its own per round, and asks the driver for one.
    while (std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10) == 1) announcer.poll_config_change();
        Packet* in[32];
        const uint16_t n = watcher.rx_burst(0, in, 32);
        for (uint16_t i = 0; i < n; i++) {
            const uint8_t* d = in[i]->data();
            rarps += in[i]->data_len >= 60 && d[12] == 0x80 && d[13] == 0x35 &&
                     std::memcmp(d + 6, announcer.mac().data(), 6) == 0;
        }
        PacketPool::free_bulk(in, n);
        if (announcer.announcements() > 0 && rarps >= 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    Packet* in[32];
    PacketPool::free_bulk(in, watcher.rx_burst(0, in, 32));
    check(announcer.announcements() == 1, "the device asked once and the port announced (acked)",
          std::to_string(announcer.announcements()) + " announcements");
    check(announcer.tx_stats(0).packets - tx_before == 1, "the port sent one frame, its RARP");
    check(rarps >= 2, "the peer saw QEMU's RARP and the port's for " + mac_text(announcer.mac()),
          std::to_string(rarps) + " RARPs");
}

}  // namespace vm
