// The eventfds a vhost back end (vhost-user, vhost-net, vhost-vdpa) is given
// for each queue, by queue index: kick (vireo writes it: the queue has work;
// the queue's Doorbell), call (the back end writes it: used buffers, when the
// ring asks; Rx interrupts wait on it) and err (the back end writes it: the
// ring broke). Non-blocking, close-on-exec, closed with this object.
#pragma once

#include <cstdint>
#include <vector>

#include "vireo/pmd/transport.hpp"

namespace vireo {

class QueueEventfds {
public:
    QueueEventfds() = default;
    ~QueueEventfds();
    QueueEventfds(const QueueEventfds&) = delete;
    QueueEventfds& operator=(const QueueEventfds&) = delete;

    // Makes the three eventfds of every queue up to `index` that has none yet.
    void ensure(uint16_t index);
    // -1 for a queue that has none.
    int kick(uint16_t index) const noexcept { return index < kick_.size() ? kick_[index] : -1; }
    int call(uint16_t index) const noexcept { return index < call_.size() ? call_[index] : -1; }
    int err(uint16_t index) const noexcept { return index < err_.size() ? err_[index] : -1; }
    // The kick eventfd as the queue's Doorbell; throws before ensure(index).
    Doorbell doorbell(uint16_t index) const;

private:
    std::vector<int> kick_, call_, err_;
};

}  // namespace vireo
