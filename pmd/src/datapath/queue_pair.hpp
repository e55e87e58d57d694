// The data path as the control path sees it: one queue pair (and the control
// queue) of whatever compiled kind, behind a small virtual interface; and the
// two hot entry points, plain function pointers chosen once per negotiation
// (choose_data_path), so a burst costs no virtual call and no branch on a
// feature.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "datapath/live_counters.hpp"
#include "vireo/pmd/isa.hpp"
#include "vireo/pmd/net_stats.hpp"

namespace vireo {

class DmaMemory;
class PacketPool;
class Transport;
struct Packet;

// What a queue pair is built with (negotiated features among them).
struct PairConfig {
    uint16_t ring;
    uint16_t rx_index, tx_index;
    uint16_t port_id, queue_id;
    bool event_idx, notification_data;
    bool mrg_rxbuf;            // VIRTIO_NET_F_MRG_RXBUF: Rx frames may span buffers
    bool tx_csum;              // VIRTIO_NET_F_CSUM: the device computes Tx checksums
    bool rx_csum;              // VIRTIO_NET_F_GUEST_CSUM: the device reports Rx checksum state
    bool indirect = false;     // VIRTIO_F_INDIRECT_DESC: multi-segment Tx chains take one ring slot
    bool host_tso4 = false;    // VIRTIO_NET_F_HOST_TSO4: the device cuts large IPv4 TCP segments
    bool host_tso6 = false;    // VIRTIO_NET_F_HOST_TSO6: and IPv6 ones (else vireo does, tcp_segment.hpp)
    bool guest_tso = false;    // VIRTIO_NET_F_GUEST_TSO4/6: Rx frames may be large TCP segments
    bool hash_report = false;  // VIRTIO_NET_F_HASH_REPORT: 20-byte headers, Rx frames carry their hash
};

namespace detail {

class QueuePairBase {
public:
    virtual ~QueuePairBase() = default;
    // Tells the transport where both rings live (virtio-net numbering, 5.1.2)
    // and takes their doorbells.
    virtual void setup(Transport& t, const DmaMemory& mem) = 0;
    // Posts Rx buffers until the ring is full (or the pool is empty).
    virtual void refill() noexcept = 0;
    // After the device stopped: every buffer the rings held back to the pool;
    // Tx frames still in flight are counted in tx_stats().undelivered.
    virtual void drain() noexcept = 0;
    // After the device stopped, before drain(): the Rx buffers it had filled
    // that no burst took, back to the pool without a refill or a kick; how many.
    virtual uint16_t discard_received() noexcept = 0;
    // Tx frames (ring chains) the device has not completed, after reclaiming
    // those it has: what a clean stop waits for.
    virtual uint16_t tx_in_flight() noexcept = 0;    // reclaims what the device completed, then counts the rest
    virtual uint16_t tx_unreclaimed() noexcept = 0;  // chains not taken back yet, completed or not (no reclaim)
    // Descriptors free in the Tx ring once what the device finished is
    // reclaimed (window mode copies no more frames than can go out).
    virtual uint16_t tx_room() noexcept = 0;
    // Rx interrupt mode: asks for a notification when the device uses the next
    // Rx buffer; false when one is already used (poll instead of sleeping).
    virtual bool arm_rx_notify() noexcept = 0;
    virtual void disarm_rx_notify() noexcept = 0;
    // The live counters, written by the polling thread only (live_counters.hpp).
    virtual QueueStats& rx_stats() noexcept = 0;
    virtual QueueStats& tx_stats() noexcept = 0;
    // The counters as any other thread reads them: each whole, less what the
    // last reset_counters() set aside.
    QueueStats read_rx_stats() noexcept { return read_counters(rx_stats()) -= rx_base_; }
    QueueStats read_tx_stats() noexcept { return read_counters(tx_stats()) -= tx_base_; }
    void reset_counters() noexcept {
        rx_base_ = read_counters(rx_stats());
        tx_base_ = read_counters(tx_stats());
    }
    // A pair that replaces `old` (a queue pair's reset with another ring or
    // pool) counts on from where it stopped. Neither is polled meanwhile.
    void continue_counters(QueuePairBase& old) noexcept {
        rx_stats() = read_counters(old.rx_stats());
        tx_stats() = read_counters(old.tx_stats());
        rx_base_ = old.rx_base_;
        tx_base_ = old.tx_base_;
    }
    virtual bool faulted() const noexcept = 0;
    virtual uint16_t ring() const noexcept = 0;     // descriptors per ring
    virtual PacketPool& pool() const noexcept = 0;  // where the application's packets come from
    // "rx0: used id not in flight; " or "".
    virtual std::string fault_report() const = 0;

private:
    QueueStats rx_base_, tx_base_;  // what reset_counters() set aside
};

class ControlQueueBase {
public:
    virtual ~ControlQueueBase() = default;
    virtual void setup(Transport& t, const DmaMemory& mem) = 0;
    virtual void reset() = 0;
    // One command, waited for (5.1.6.5); throws when refused or unanswered.
    virtual void command(uint8_t cls, uint8_t cmd, const void* data, uint16_t len, const std::string& what) = 0;
};

using BurstFn = uint16_t (*)(QueuePairBase*, Packet**, uint16_t) noexcept;

// One compiled data path: its name, its two bursts, and how to build its queues.
struct DataPath {
    const char* name;  // e.g. "packed+in_order/smp"
    Isa isa;           // the instruction set its bursts are compiled for
    bool packed, in_order, platform_ordering;
    BurstFn rx, tx;
    std::unique_ptr<QueuePairBase> (*make_pair)(DmaMemory&, PacketPool&, const PairConfig&);
    std::unique_ptr<ControlQueueBase> (*make_control)(DmaMemory&, uint16_t index, bool event_idx,
                                                      bool notification_data);
};

class DmaWindow;

// What a port runs: the compiled path that drives its rings and, with
// dma=window, the window's copies around it (dma_window.hpp).
struct PortDataPath {
    const DataPath* rings = nullptr;
    DmaWindow* window = nullptr;
    BurstFn rx = nullptr, tx = nullptr;  // what NetPort calls per burst
    std::string name;                    // "packed+in_order/smp/avx2", "+ /window" in window mode
    // A queue pair on the application's memory, or on the window's.
    std::unique_ptr<QueuePairBase> make_pair(DmaMemory& app, PacketPool& pool, const PairConfig& c) const;
};

// The one place that chooses, and logs nothing: from the negotiated features,
// the instruction set (data_path_isa(): the CPU's, capped by VIREO_ISA) and
// the port's window (nullptr: direct DMA).
PortDataPath choose_data_path(bool packed, bool in_order, bool platform_ordering, Isa isa, DmaWindow* window);

}  // namespace detail
}  // namespace vireo
