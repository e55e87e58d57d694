// The data path of a virtio-net port: one Rx and one Tx virtqueue, a template
// over the queue kind (split/packed x IN_ORDER x ordering policy). No virtual
// call and no per-packet branch on a negotiated feature except the ones that
// change what a packet is (mergeable buffers, checksum offload), read from
// per-pair constants.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "datapath/net_checksum.hpp"
#include "datapath/queue_pair.hpp"
#include "vireo/base/cpu.hpp"
#include "vireo/mempool/packet_pool.hpp"
#include "vireo/offload/tcp_segment.hpp"
#include "vireo/pmd/net_stats.hpp"
#include "vireo/pmd/transport.hpp"
#include "vireo/pmd/virtio_spec.hpp"
#include "vireo/pmd/vq_common.hpp"
#include "vq/vq_areas.hpp"

namespace vireo {

// I: the instruction set this pair's bursts are compiled for (data_paths.hpp);
// the batched kernels it may use depend on it.
template <class Q, Isa I = Isa::Baseline>
class NetQueuePair final : public detail::QueuePairBase {
public:
    // The virtio-net header in front of every frame (5.1.6): 12 bytes with
    // VERSION_1, 20 with HASH_REPORT (virtio_net_hdr_v1_hash), both ways.
    static constexpr uint16_t kHdrMax = sizeof(virtio::NetHdrHash);
    static constexpr uint32_t kHdrSlot = 32;  // a header for a packet without headroom (>= kHdrMax)
    static constexpr uint16_t kBurst = 64;
    // INDIRECT_DESC: a Tx chain of 2..kIndirectMax descriptors (header and
    // segments) goes out as one ring descriptor pointing at a table. Where it
    // pays: multi-segment frames (a jumbo frame in 2 KiB segments takes one ring
    // slot instead of five), never the single-segment fast path, which stays
    // one descriptor with the header in the headroom.
    static constexpr uint16_t kIndirectMax = 16;
    // A large TCP segment cut in software: 64 KiB at an MSS of 536 is 123 frames.
    static constexpr uint16_t kSegmentsMax = 128;

    NetQueuePair(DmaMemory& mem, PacketPool& pool, const PairConfig& c)
        : rx_(mem, {c.ring, c.rx_index, c.event_idx, c.notification_data}),
          tx_(mem, {c.ring, c.tx_index, c.event_idx, c.notification_data, c.indirect ? kIndirectMax : uint16_t{0}}),
          pool_(pool),
          cfg_(c),
          hdr_(c.hash_report ? sizeof(virtio::NetHdrHash) : sizeof(virtio::NetHdrMrg)),
          read_header_(c.rx_csum || c.hash_report),
          reclaim_threshold_(static_cast<uint16_t>(c.ring / 4 < kBurst ? c.ring / 4 : kBurst)),
          refill_threshold_(static_cast<uint16_t>(c.ring / 4 < 32 ? c.ring / 4 : 32)),
          rx_buf_len_(hdr_ + pool.data_room()),
          rx_header_flag_(c.mrg_rxbuf ? pkt::kRxDeviceHeader : 0),
          hdr_slots_(c.ring) {
        // Headers for packets without headroom: one kHdrSlot-byte slot per possible
        // chain in flight, in DMA memory, handed out from a free stack.
        DmaChunk area = mem.allocate(size_t{kHdrSlot} * c.ring, 64);
        for (uint16_t i = 0; i < c.ring; i++) {
            hdr_slots_[i] = {nullptr, area.va + kHdrSlot * i, area.iova + kHdrSlot * i};
            free_hdr_.push_back(static_cast<uint16_t>(c.ring - 1 - i));
        }
    }

    const PairConfig& config() const { return cfg_; }
    Q& rxq() { return rx_; }
    Q& txq() { return tx_; }

    void setup(Transport& t, const DmaMemory& mem) override {
        t.setup_queue(areas_of(rx_, mem, cfg_.rx_index));
        t.setup_queue(areas_of(tx_, mem, cfg_.tx_index));
        rx_bell_ = t.doorbell(cfg_.rx_index);
        tx_bell_ = t.doorbell(cfg_.tx_index);
    }

    // Posts Rx buffers until the ring is full (or the pool is empty).
    void refill() noexcept override {
        Packet* pk[kBurst];
        VqBuf bufs[kBurst];
        for (;;) {
            uint16_t want = rx_.free_descs() < kBurst ? rx_.free_descs() : kBurst;
            if (want == 0) break;
            if (!pool_.alloc_bulk(pk, want)) {
                bump(rx_stats_.drops);  // pool empty: try again on the next burst
                break;
            }
            const uint16_t head = pool_.headroom();
            for (uint16_t i = 0; i < want; i++) bufs[i] = {pk[i]->buf_iova + head - hdr_, rx_buf_len_, true, pk[i]};
            rx_.add_burst(bufs, want);
        }
        rx_.publish();
        if (rx_.kick_needed()) {
            rx_bell_.ring(rx_.notification_value());
            bump(rx_stats_.kicks);
        }
    }

    // The hot entry points (detail::BurstFn): the pair is known to be of this kind.
    static uint16_t rx_burst(detail::QueuePairBase* self, Packet** out, uint16_t n) noexcept {
        return static_cast<NetQueuePair*>(self)->rx(out, n);
    }
    static uint16_t tx_burst(detail::QueuePairBase* self, Packet** pkts, uint16_t n) noexcept {
        return static_cast<NetQueuePair*>(self)->tx(pkts, n);
    }

    bool arm_rx_notify() noexcept override { return rx_.enable_used_notify(); }
    void disarm_rx_notify() noexcept override { rx_.disable_used_notify(); }
    uint16_t tx_room() noexcept override {
        if (tx_.free_descs() < kBurst) reclaim_tx();
        return tx_.free_descs();
    }
    uint16_t tx_in_flight() noexcept override {
        reclaim_tx();
        return tx_.in_flight();
    }
    uint16_t tx_unreclaimed() noexcept override { return tx_.in_flight(); }
    QueueStats& rx_stats() noexcept override { return rx_stats_; }
    QueueStats& tx_stats() noexcept override { return tx_stats_; }
    bool faulted() const noexcept override { return rx_.needs_reset() || tx_.needs_reset(); }
    uint16_t ring() const noexcept override { return cfg_.ring; }
    PacketPool& pool() const noexcept override { return pool_; }
    std::string fault_report() const override {
        std::string r;
        const std::string q = std::to_string(cfg_.queue_id);
        if (rx_.needs_reset()) r += "rx" + q + ": " + std::string(to_string(rx_.fault())) + "; ";
        if (tx_.needs_reset()) r += "tx" + q + ": " + std::string(to_string(tx_.fault())) + "; ";
        return r;
    }

    uint16_t discard_received() noexcept override {
        VqUsed got[kBurst];
        uint16_t total = 0;
        for (uint16_t n; (n = rx_.reap(got, kBurst)) != 0; total = static_cast<uint16_t>(total + n))
            for (uint16_t i = 0; i < n; i++) PacketPool::free(static_cast<Packet*>(got[i].cookie));
        return total;
    }

    // After the device stopped: every buffer the rings held goes back to the
    // pool; Tx frames it never completed are counted.
    void drain() noexcept override {
        rx_.reset([](void* c) { PacketPool::free(static_cast<Packet*>(c)); });
        tx_.reset([this](void* c) {
            bump(tx_stats_.undelivered);
            PacketPool::free(packet_of(c));
        });
        if (mrg_head_ != nullptr) PacketPool::free(mrg_head_);
        mrg_head_ = mrg_tail_ = nullptr;
        mrg_left_ = 0;
    }

private:
    // Rx (net_rx.hpp): reap, reassemble mergeable frames, read the header, deliver.
    uint16_t rx(Packet** out, uint16_t n) noexcept;
    void mark_large_segment(Packet* p, const virtio::NetHdr& h) noexcept;
    void deliver(Packet* p, Packet** out, uint16_t& k) noexcept;

    // Tx (net_tx.hpp): the burst, and the reclaim of at most `batches` x kBurst completed buffers.
    uint16_t tx(Packet** pkts, uint16_t n) noexcept;
    void reclaim_tx(unsigned batches = ~0u) noexcept;

    // The virtio-net header (net_tx_header.hpp), in the headroom or at `at`.
    void zero_header(virtio::NetHdrMrg* h) const noexcept;
    void write_header(Packet* p, uint8_t* at = nullptr) noexcept;

    // Chains of more than one descriptor (net_tx_chains.hpp). A chain sent
    // with a separate header descriptor has a header slot as its cookie;
    // everything else has the packet itself.
    struct HdrSlot {
        Packet* pkt;
        uint8_t* va;
        Iova iova;
    };
    bool is_slot(const void* c) const noexcept;
    Packet* packet_of(void* cookie) noexcept;
    [[gnu::noinline]] bool add_chain(const VqSeg* segs, uint16_t ns, void* cookie) noexcept;
    bool add_packet_chain(Packet* p, const VqSeg& first) noexcept;
    bool send_with_header_slot(Packet* p) noexcept;

    // Large TCP segments (net_tx_tso.hpp).
    bool send_large_segment(Packet* p, uint64_t& bytes) noexcept;

    Q rx_, tx_;
    PacketPool& pool_;
    PairConfig cfg_;
    uint16_t hdr_;      // bytes of the virtio-net header: 12, or 20 with HASH_REPORT
    bool read_header_;  // every Rx header says something (GUEST_CSUM, HASH_REPORT)
    uint16_t reclaim_threshold_;
    uint16_t refill_threshold_;  // free Rx descriptors worth a refill while traffic flows
    uint32_t rx_buf_len_;        // bytes of every posted Rx buffer: header + the pool's data room
    uint32_t rx_header_flag_;    // pkt::kRxDeviceHeader with MRG_RXBUF (the device wrote num_buffers), else 0
    std::vector<HdrSlot> hdr_slots_;
    std::vector<uint16_t> free_hdr_;
    Doorbell rx_bell_, tx_bell_;
    QueueStats rx_stats_, tx_stats_;
    Packet* mrg_head_ = nullptr;  // a mergeable frame still being assembled
    Packet* mrg_tail_ = nullptr;
    uint16_t mrg_left_ = 0;
};

}  // namespace vireo

// The members' definitions, one job per file.
#include "datapath/net_rx.hpp"
#include "datapath/net_tx.hpp"
#include "datapath/net_tx_chains.hpp"
#include "datapath/net_tx_header.hpp"
#include "datapath/net_tx_tso.hpp"
