// NetPort: one queue pair reset while the others forward (virtio 1.2 2.6.1
// Virtqueue Reset, VIRTIO_F_RING_RESET): for a ring resize, a pool swap, or a
// pair whose device broke the rules. What Linux's virtqueue_resize() does for
// `ethtool -G`, with the pair's gates in place of NAPI.
#include <bit>
#include <chrono>
#include <mutex>

#include "common/wait.hpp"
#include "datapath/queue_pair.hpp"
#include "net/negotiation.hpp"
#include "net/net_port_watcher.hpp"
#include "vireo/base/error.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/pmd/transport.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

using namespace virtio::feature;

// Why reset_queue_pair() cannot run on this port, or "".
std::string NetPort::queue_reset_unavailable() const {
    if (!started_ || !driver_ok_) return describe() + " is not started (or its device is down)";
    if (virtio::has(features_, kRingReset)) return {};
    const std::string restart = ": stop() and start() the port instead";
    if (std::string why = transport_->queue_reset_unavailable(); !why.empty()) return why + restart;
    if (!virtio::has(device_features_, kRingReset))
        return describe() +
               " does not offer VIRTIO_F_RING_RESET (QEMU 7.2 and later do on virtio-pci: queue_reset=on)" + restart;
    return describe() + ": VIRTIO_F_RING_RESET was switched off (ring_reset=0)" + restart;
}

QueueResetReport NetPort::reset_queue_pair(uint16_t q, const QueuePairChange& change) {
    if (std::string why = queue_reset_unavailable(); !why.empty()) throw Error("reset_queue_pair: " + why);
    if (q >= pairs_.size())
        throw Error(describe() + ": reset_queue_pair: no queue pair " + std::to_string(q) + " (the port has " +
                    std::to_string(spec_.queues) + ")");
    const uint16_t ring = change.ring != 0 ? change.ring : pairs_[q]->ring();
    if ((change.ring != 0 || change.pool != nullptr) && window_ != nullptr)
        throw Error(describe() +
                    ": reset_queue_pair: dma=window sizes its window for the rings and pools the port "
                    "opened with: a plain reset works, a new ring or pool needs the port opened again");
    if (change.ring != 0) {
        if (!virtio::has(features_, kRingPacked) && !std::has_single_bit(ring))
            throw Error(describe() + ": reset_queue_pair: ring=" + std::to_string(ring) +
                        " is not a power of two, which a split ring needs (virtio 1.2 section 2.7)");
        for (uint16_t index : {uint16_t(2 * q), uint16_t(2 * q + 1)})
            if (std::string e = detail::ring_fit_error(ring, index, transport_->max_queue_size(index), describe());
                !e.empty())
                throw Error(e);
    }
    QueueResetReport r;
    const auto t0 = detail::Clock::now();
    set_gates(q, 1, false);
    detail::quiesce(&gates_[2 * size_t{q}], 2);
    if (!pairs_[q]->faulted()) r.tx = wait_for_tx(q, 1);
    const uint64_t undelivered_before = pairs_[q]->read_tx_stats().undelivered;
    // 2.6.1: the device stops and forgets both rings; then every buffer is the driver's.
    transport_->reset_queue(static_cast<uint16_t>(2 * q));
    transport_->reset_queue(static_cast<uint16_t>(2 * q + 1));
    // What the device delivered that no burst took: the reset takes it, as
    // Linux's ring resize drops it; here it is counted first.
    r.rx_discarded = pairs_[q]->discard_received();
    pairs_[q]->drain();  // back to the pool each came from; Tx not completed counted undelivered
    if (change.ring != 0 || change.pool != nullptr) {
        std::unique_ptr<detail::QueuePairBase> next = chosen_path().make_pair(
            mem_, change.pool != nullptr ? *change.pool : pairs_[q]->pool(), pair_config(q, ring));
        next->continue_counters(*pairs_[q]);
        std::lock_guard<std::mutex> g(watcher_->queues);  // stats readers see whole queues
        pairs_[q] = std::move(next);
    }
    // 2.6.1: re-enabled as at initialisation: size, addresses, vector, enable.
    pairs_[q]->setup(*transport_, device_memory());
    pairs_[q]->refill();
    pool_.flush_thread_cache();
    r.tx.tx_undelivered = pairs_[q]->read_tx_stats().undelivered - undelivered_before;
    set_gates(q, 1, true);
    r.gate_ms = std::chrono::duration<double, std::milli>(detail::Clock::now() - t0).count();
    queue_pair_resets_.fetch_add(1, std::memory_order_relaxed);
    return r;
}

void NetPort::set_ring_size(uint16_t ring) {
    if (ring == 0) throw Error(describe() + ": set_ring_size: 0 descriptors");
    for (uint16_t q = 0; q < spec_.queues; q++) reset_queue_pair(q, {.ring = ring});
    spec_.ring = ring;
}

unsigned NetPort::recover_faulted_pairs() {
    unsigned n = 0;
    for (uint16_t q = 0; q < pairs_.size(); q++)
        if (pairs_[q]->faulted()) {
            reset_queue_pair(q);
            n++;
        }
    return n;
}

}  // namespace vireo
