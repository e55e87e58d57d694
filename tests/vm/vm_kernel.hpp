// vireo-vm-check's helpers for the kernel vhost transports (vm_kernel.cpp):
// a TCP transfer through the guest kernel's stack (run inside two network
// namespaces whose taps vireo-fwd forwards between) and the check of
// vireo-fwd's JSON summary after it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace vm {

// Moves this (single-threaded) process into the network namespace `name`
// (/run/netns/NAME, made by `ip netns add`): `ip netns exec` needs mount
// namespaces the initramfs's rootfs does not support.
void enter_netns(const std::string& name);

// Sends `bytes` of a pattern seeded with `seed` to host:port over TCP.
void tcp_send(const std::string& to, uint64_t bytes, uint64_t seed, int seconds);
// Listens on `port` (prints "LISTENING" when it does), accepts one
// connection and checks that exactly `bytes` of the pattern arrive.
void tcp_receive(uint16_t port, uint64_t bytes, uint64_t seed, int seconds);

// VmPin of /proc/self/status, in bytes: the pages the kernel pinned for this process (vhost-vdpa's maps).
uint64_t pinned_bytes();

struct FwdExpectations {
    std::optional<bool> iotlb;        // the ports ran with vireo as their IOMMU (updates > 0), or not at all
    std::optional<bool> tso;          // 64 KiB TCP segments crossed (rx_tso > 0 somewhere), or none did
    std::optional<std::string> mode;  // every port's IOVA mode
    std::optional<size_t> queues;     // every port's queue pairs
};
// Reads vireo-fwd's --json summary and checks it: every port clean at stop,
// no buffer leaked, and what `e` asks.
void check_fwd_json(const std::string& file, const FwdExpectations& e);

}  // namespace vm
