// The window arrangement's data path (iova_policy.hpp, DmaArrangement::Window).
//
// The device is given one DmaMemory of its own, the window: its rings and, per
// queue pair, a pool of bounce slots (packets whose buffers live in the
// window). The application's packets stay in its own pool, which the device
// never sees:
//   Tx: each frame is copied into slots, the slots go to the ring, and the
//       application's packet is freed at once (the device has the copy);
//   Rx: the ring is refilled from the slots; a completed frame (its lengths
//       already checked by the queue against what was posted) is copied into
//       the application's packets and its slots go back at once.
// Each queue pair's slots are a ring of its own (a PacketPool without a
// thread cache), used by the one thread that polls the pair, a burst at a
// time: no shared allocator on the hot path. Only the slots' buffers are in
// the window; their Packets (addresses, lengths, chain links, owning pool)
// are in process memory: the device may rewrite anything in its window at
// any time, so vireo keeps nothing there that it reads back and trusts
// (tests/window_hostile_test.cpp). Slots go round in order (FIFO):
// the slot the back end writes next was copied out longest ago, so its lines
// have left vireo's core and the back end's writes need not take them back
// (faster than a LIFO cache for large frames, slower for a burst or two of
// small ones: docs/perf.md, "The DMA window, deep queues"). Running
// out of slots is back-pressure (tx_burst takes fewer), counted in
// QueueStats::slot_waits, not an error.
//
// WindowPair wraps the compiled queue pair of the negotiated data path
// (data_paths.hpp) behind the same QueuePairBase, and its two bursts call the
// inner ones: one more indirect call per burst, the copies, nothing else.
#pragma once

#include <bit>
#include <cstdint>
#include <memory>

#include "datapath/queue_pair.hpp"
#include "vireo/iova/dma_memory.hpp"
#include "vireo/iova/iova_policy.hpp"
#include "vireo/mempool/packet_pool.hpp"

namespace vireo::detail {

// A device's window: its own DMA memory, in the mode its plan chose, backed
// like the application's memory (hugepages or 4 KiB pages), never shared.
class DmaWindow {
public:
    // Room for `pairs` queue pairs of `ring` descriptors, their slots of
    // `headroom` + `data_room` bytes, and a control queue.
    DmaWindow(const DmaPlan& plan, const DmaMemoryOptions& like, uint16_t pairs, uint16_t ring, uint16_t headroom,
              uint16_t data_room);
    DmaMemory& memory() noexcept { return mem_; }
    // Descriptors per queue when the device string names no ring size: deep.
    // Every frame is copied out of the window, and under load the back end
    // fills the whole Rx ring ahead of vireo. With 256 descriptors the lines
    // it wrote are still in its CPU's private cache when vireo copies them, and
    // each one crosses between the cores; with 1024 (1.5 MiB of frames ahead,
    // more than a core's L2) they have moved on to the shared L3 first
    // (bench/copy_ceiling.cpp measures both; the figures, and what they do to
    // dma=window at 1518 bytes: docs/perf.md, "The DMA window, deep queues").
    // `device_most` is the device's limit for the first pair (0: none).
    static uint16_t ring_depth(uint16_t device_most) noexcept {
        constexpr uint16_t kDeep = 1024;
        return device_most != 0 && device_most < kDeep ? std::bit_floor(device_most) : kDeep;
    }
    // Slots per queue pair: a full Rx ring, a full Tx ring and two bursts in hand.
    static uint32_t slots_per_pair(uint16_t ring) noexcept { return 2u * ring + 128u; }

private:
    DmaMemory mem_;
};

class WindowPair final : public QueuePairBase {
public:
    WindowPair(const DataPath& inner, DmaMemory& window, PacketPool& app, const PairConfig& c);

    void setup(Transport& t, const DmaMemory& mem) override { inner_->setup(t, mem); }
    void refill() noexcept override;
    void drain() noexcept override;
    uint16_t discard_received() noexcept override { return inner_->discard_received(); }
    uint16_t tx_room() noexcept override { return inner_->tx_room(); }
    uint16_t tx_in_flight() noexcept override { return inner_->tx_in_flight(); }
    uint16_t tx_unreclaimed() noexcept override { return inner_->tx_unreclaimed(); }
    bool arm_rx_notify() noexcept override { return inner_->arm_rx_notify(); }
    void disarm_rx_notify() noexcept override { inner_->disarm_rx_notify(); }
    QueueStats& rx_stats() noexcept override { return inner_->rx_stats(); }
    QueueStats& tx_stats() noexcept override { return inner_->tx_stats(); }
    bool faulted() const noexcept override { return inner_->faulted(); }
    uint16_t ring() const noexcept override { return inner_->ring(); }
    PacketPool& pool() const noexcept override { return app_; }
    std::string fault_report() const override { return inner_->fault_report(); }
    uint32_t slots_in_use() const noexcept { return slots_.in_use(); }

    // The bursts NetPort calls in window mode (BurstFn).
    static uint16_t rx(QueuePairBase* p, Packet** pkts, uint16_t n) noexcept;
    static uint16_t tx(QueuePairBase* p, Packet** pkts, uint16_t n) noexcept;

private:
    uint16_t rx_some(Packet** pkts, uint16_t n) noexcept;
    uint16_t tx_some(Packet** pkts, uint16_t n) noexcept;

    PacketPool slots_;  // before inner_: the inner pair refills its Rx ring from it
    std::unique_ptr<QueuePairBase> inner_;
    BurstFn inner_rx_, inner_tx_;
    PacketPool& app_;
};

}  // namespace vireo::detail
