// NetPort: Rx interrupts. A poller that sleeps when idle (vireo-fwd
// --sleep-when-idle) arms a queue's used buffer notifications (virtio 1.2:
// notification suppression of split and of packed rings), sleeps on its
// eventfd, and disarms them when woken; the queue pair does the ring's part.
#include <unistd.h>

#include "datapath/queue_pair.hpp"
#include "vireo/pmd/net_port.hpp"

namespace vireo {

int NetPort::rx_notify_fd(uint16_t q) const {
    return q < spec_.queues ? transport_->used_notify_fd(static_cast<uint16_t>(2 * q)) : -1;
}

// Through the Rx gate, as a burst: the rings are the data path's.
bool NetPort::rx_notify_arm(uint16_t q) noexcept {
    detail::QueueGate& g = gates_[2 * q];
    if (!g.enter()) return true;  // down: nothing comes from the rings; sleep until the fd or the timeout
    const bool armed = pairs_[q]->arm_rx_notify();
    g.leave();
    return armed;
}

void NetPort::rx_notify_disarm(uint16_t q) noexcept {
    detail::QueueGate& g = gates_[2 * q];
    if (g.enter()) {
        pairs_[q]->disarm_rx_notify();
        g.leave();
    }
    if (const int fd = rx_notify_fd(q); fd >= 0) {
        uint64_t n;
        ssize_t r = ::read(fd, &n, sizeof n);  // an eventfd: one read takes every signal
        (void)r;
    }
}

}  // namespace vireo
