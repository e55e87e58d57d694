#include "idle.hpp"

#include <poll.h>

#include <chrono>

namespace vireo::fwd {

IdleSleeper::IdleSleeper(const std::vector<Stream*>& mine, uint32_t polls, IdleCounters& counters)
    : polls_(polls), counters_(counters) {
    for (Stream* s : mine)
        if (s->rx != nullptr) rx_.push_back(s);
}

void IdleSleeper::sleep() {
    if (rx_.empty()) return;
    size_t armed = 0;
    for (; armed < rx_.size(); armed++)
        if (!rx_[armed]->rx->rx_notify_arm(rx_[armed]->rxq)) break;
    if (armed == rx_.size()) {
        pollfd fds[64];
        const size_t n = std::min<size_t>(rx_.size(), 64);
        for (size_t i = 0; i < n; i++) fds[i] = {rx_[i]->rx->rx_notify_fd(rx_[i]->rxq), POLLIN, 0};
        const auto t0 = std::chrono::steady_clock::now();
        const int r = ::poll(fds, n, kMaxSleepMs);
        counters_.asleep_ns.fetch_add(
            static_cast<uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count()),
            std::memory_order_relaxed);
        counters_.sleeps.fetch_add(1, std::memory_order_relaxed);
        if (r > 0) counters_.wakeups.fetch_add(1, std::memory_order_relaxed);
    } else {
        armed++;  // the one that refused armed itself too
    }
    for (size_t i = 0; i < armed; i++) rx_[i]->rx->rx_notify_disarm(rx_[i]->rxq);
}

std::string idle_sleep_problem(const std::vector<Stream>& streams) {
    size_t rx = 0;
    for (const Stream& s : streams) {
        if (s.rx == nullptr) continue;
        rx++;
        if (s.rx->rx_notify_fd(s.rxq) < 0)
            return "--sleep-when-idle: " + s.rx->describe() +
                   " gives no Rx notification to sleep on (uio_pci_generic has INTx only; a virtio-pci device "
                   "needs an MSI-X vector per Rx queue besides the configuration's: QEMU vectors=N; a virtio-mmio "
                   "device needs vfio-platform: through /dev/mem there is no interrupt)";
    }
    if (rx == 0) return "--sleep-when-idle needs a mode that receives (not txonly or flowgen)";
    if (rx > 64) return "--sleep-when-idle: at most 64 Rx queues per process";
    return "";
}

}  // namespace vireo::fwd
