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

#include "net_checksum.hpp"
#include "queue_pair.hpp"
#include "vireo/base/cpu.hpp"
#include "vireo/mempool/packet_pool.hpp"
#include "vireo/pmd/net_stats.hpp"
#include "vireo/pmd/tcp_segment.hpp"
#include "vireo/pmd/transport.hpp"
#include "vireo/pmd/virtio_spec.hpp"
#include "vireo/pmd/vq_common.hpp"

namespace vireo {

// Where a virtqueue lives, for the transport to program.
template <class Q>
QueueAreas areas_of(Q& q, const DmaMemory& mem, uint16_t index) {
    const IovaMap& m = mem.map();
    return {index,
            q.size(),
            Q::kPacked,
            q.desc_iova(),
            q.driver_iova(),
            q.device_iova(),
            m.va(q.desc_iova()),
            m.va(q.driver_iova()),
            m.va(q.device_iova())};
}

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
    std::string fault_report() const override {
        std::string r;
        const std::string q = std::to_string(cfg_.queue_id);
        if (rx_.needs_reset()) r += "rx" + q + ": " + std::string(to_string(rx_.fault())) + "; ";
        if (tx_.needs_reset()) r += "tx" + q + ": " + std::string(to_string(tx_.fault())) + "; ";
        return r;
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
    uint16_t rx(Packet** out, uint16_t n) noexcept {
        // Refill before reaping, not after: the frames of the last poll have
        // gone out by now (a forwarder sends them between its polls), so this
        // work overlaps the device's instead of delaying them (docs/perf.md,
        // issue 7: a 32-frame loop is a ping-pong between the two cores).
        const bool refilled = rx_.free_descs() >= refill_threshold_;
        if (refilled) refill();
        VqUsed used[kBurst];
        uint16_t k = 0;
        const uint16_t head = pool_.headroom();
        const uint16_t hdr = hdr_;  // in a register: stores through Packet* could alias the member
        const bool read_header = read_header_;
        while (k < n) {
            uint16_t want = static_cast<uint16_t>(n - k < kBurst ? n - k : kBurst);
            uint16_t got = rx_.reap(used, want);
            if (got == 0) {
                // Nothing yet: pause before the caller polls again. Each poll reads
                // the used index the device writes; polling flat out keeps pulling
                // that cache line away from the device's core and slows it down
                // (measured: docs/perf.md, issue 7).
                if (k == 0) cpu_relax();
                break;
            }
            // The device just wrote these headers from another core: start all
            // the misses at once instead of one per packet (only for headers
            // that will be read, see below).
            for (uint16_t i = 0; i < got; i++)
                if (read_header || used[i].len >= rx_buf_len_)
                    __builtin_prefetch(static_cast<Packet*>(used[i].cookie)->buf_va + head - hdr);
            for (uint16_t i = 0; i < got; i++) {
                Packet* p = static_cast<Packet*>(used[i].cookie);
                const uint32_t len = used[i].len;
                if (mrg_left_ != 0) {  // a continuation buffer: data from its start, no header
                    p->data_off = static_cast<uint16_t>(head - hdr);
                    p->data_len = static_cast<uint16_t>(len);
                    mrg_tail_->next = p;
                    mrg_tail_ = p;
                    mrg_head_->pkt_len += len;
                    mrg_head_->nb_segs++;
                    if (--mrg_left_ == 0) {
                        deliver(mrg_head_, out, k);  // the caller owns it now
                        mrg_head_ = mrg_tail_ = nullptr;
                    }
                    continue;
                }
                if (len < hdr) {  // no room even for the header: malformed
                    bump(rx_stats_.errors);
                    PacketPool::free(p);
                    continue;
                }
                p->data_off = head;
                p->data_len = static_cast<uint16_t>(len - hdr);
                p->pkt_len = len - hdr;
                p->nb_segs = 1;
                p->next = nullptr;
                // With MRG_RXBUF the device wrote num_buffers >= 1 there (5.1.6.4.1),
                // so a Tx of this buffer must rewrite the header: it may do so
                // unread. Without it a device may leave the header as it found
                // it (DPDK's vhost writes only fields that differ), often all
                // zero: Tx then reads it and writes only if it must, and the
                // line stays shared with the device's core (docs/perf.md).
                p->ol_flags = rx_header_flag_;
                // The header is read only when it can say something: checksum
                // state (GUEST_CSUM), a hash (HASH_REPORT), or a buffer filled to the end, which may
                // continue in the next (MRG_RXBUF). A device fills every buffer
                // of a frame but the last completely (5.1.6.4.1), so a shorter
                // first buffer holds the whole frame. Not reading it leaves the
                // line in the device's cache for its next write there.
                uint16_t nbuf = 1;
                if (read_header || (cfg_.mrg_rxbuf && len >= rx_buf_len_)) {
                    const auto* h = reinterpret_cast<const virtio::NetHdrMrg*>(p->buf_va + head - hdr);
                    if (cfg_.rx_csum) {
                        if (h->hdr.flags & virtio::kNetHdrFDataValid) p->ol_flags |= pkt::kRxL4CsumGood;
                        if (h->hdr.flags & virtio::kNetHdrFNeedsCsum) p->ol_flags |= pkt::kRxL4CsumPartial;
                        if (h->hdr.gso_type != virtio::kNetHdrGsoNone && cfg_.guest_tso) [[unlikely]]
                            mark_large_segment(p, h->hdr);
                    }
                    if (cfg_.hash_report) {  // 5.1.6.4.3.4: what the device hashed, and how
                        const auto* hh = reinterpret_cast<const virtio::NetHdrHash*>(h);
                        if (hh->hash_report != virtio::kHashReportNone) {
                            p->rss_hash = hh->hash_value;
                            p->rss_type = hh->hash_report;
                            p->ol_flags |= pkt::kRxRssHash;
                        }
                    }
                    if (cfg_.mrg_rxbuf) nbuf = h->num_buffers;
                }
                if (nbuf <= 1) {
                    deliver(p, out, k);
                } else if (nbuf > cfg_.ring) {
                    bump(rx_stats_.errors);  // more buffers than the ring holds: the device lies
                    PacketPool::free(p);
                } else {
                    mrg_head_ = mrg_tail_ = p;
                    mrg_left_ = static_cast<uint16_t>(nbuf - 1);
                }
            }
        }
        if (rx_.needs_reset()) bump(rx_stats_.errors);
        if (k == 0 && !refilled && rx_.free_descs() != 0) refill();  // idle: top the ring up
        bump(rx_stats_.bursts, k != 0);
        return k;
    }

    // GUEST_TSO4/6 (5.1.6.4): the frame is one large TCP segment; its headers
    // are in this first buffer (a device fills each buffer of a frame but the
    // last, and headers are far shorter than one).
    void mark_large_segment(Packet* p, const virtio::NetHdr& h) noexcept {
        const uint8_t type = h.gso_type & static_cast<uint8_t>(~virtio::kNetHdrGsoEcn);
        const int v = tcp_headers(*p);
        if ((type == virtio::kNetHdrGsoTcpv4 && v == 4) || (type == virtio::kNetHdrGsoTcpv6 && v == 6)) {
            p->ol_flags |= v == 4 ? pkt::kRxGsoTcp4 : pkt::kRxGsoTcp6;
            p->tso_segsz = h.gso_size;
            bump(rx_stats_.tso);
        }
    }

    void deliver(Packet* p, Packet** out, uint16_t& k) noexcept {
        p->port = cfg_.port_id;
        p->queue = cfg_.queue_id;
        bump(rx_stats_.packets);
        bump(rx_stats_.bytes, p->pkt_len);
        out[k++] = p;
    }

    // Frees completed Tx buffers, at most `batches` x kBurst of them.
    void reclaim_tx(unsigned batches = ~0u) noexcept {
        VqUsed used[kBurst];
        Packet* done[kBurst];
        for (; batches != 0; batches--) {
            uint16_t got = tx_.reap(used, kBurst);
            if (got == 0) break;
            for (uint16_t i = 0; i < got; i++) done[i] = packet_of(used[i].cookie);
            PacketPool::free_bulk(done, got);
        }
    }

    // A Tx chain sent with a separate header descriptor has a header slot as
    // its cookie; everything else has the packet itself.
    struct HdrSlot {
        Packet* pkt;
        uint8_t* va;
        uint64_t iova;
    };
    bool is_slot(const void* c) const noexcept {
        auto p = reinterpret_cast<uintptr_t>(c), b = reinterpret_cast<uintptr_t>(hdr_slots_.data());
        return p - b < sizeof(HdrSlot) * hdr_slots_.size();
    }
    Packet* packet_of(void* cookie) noexcept {
        if (!is_slot(cookie)) return static_cast<Packet*>(cookie);
        auto* s = static_cast<HdrSlot*>(cookie);
        free_hdr_.push_back(static_cast<uint16_t>(s - hdr_slots_.data()));
        return s->pkt;
    }

    // Constant-size stores (a 12- or 20-byte memset inlines; a variable one is a call).
    void zero_header(virtio::NetHdrMrg* h) const noexcept {
        if (hdr_ != sizeof(virtio::NetHdrMrg)) [[unlikely]]
            std::memset(h, 0, sizeof(virtio::NetHdrHash));
        else
            std::memset(h, 0, sizeof(virtio::NetHdrMrg));
    }

    // The virtio-net header (5.1.6.2), in the headroom in front of the frame
    // or at h when the packet has no headroom left.
    void write_header(Packet* p, uint8_t* at = nullptr) noexcept {
        auto* h = reinterpret_cast<virtio::NetHdrMrg*>(at != nullptr ? at : p->data() - hdr_);
        if (p->ol_flags & (pkt::kTxTcpCsum | pkt::kTxUdpCsum | pkt::kTxTcpSeg)) {
            if (p->ol_flags & pkt::kTxTcpSeg) {  // the device cuts it (tx() checked; tcp_prepare_tso ran)
                zero_header(h);
                h->hdr.flags = virtio::kNetHdrFNeedsCsum;
                h->hdr.gso_type = (p->ol_flags & pkt::kTxIpv6) ? virtio::kNetHdrGsoTcpv6 : virtio::kNetHdrGsoTcpv4;
                h->hdr.gso_size = p->tso_segsz;
                h->hdr.hdr_len = static_cast<uint16_t>(p->l2_len + p->l3_len + p->l4_len);
                h->hdr.csum_start = static_cast<uint16_t>(p->l2_len + p->l3_len);
                h->hdr.csum_offset = 16;
                return;
            }
            const uint16_t start = static_cast<uint16_t>(p->l2_len + p->l3_len);
            const uint16_t offset = (p->ol_flags & pkt::kTxTcpCsum) ? 16 : 6;  // TCP / UDP checksum field
            if (cfg_.tx_csum) {
                zero_header(h);
                h->hdr.flags = virtio::kNetHdrFNeedsCsum;
                h->hdr.csum_start = start;
                h->hdr.csum_offset = offset;
                return;
            }
            // The device cannot: done here, as it would (net_checksum.hpp).
            complete_checksum(p, start, offset, !(p->ol_flags & pkt::kTxTcpCsum));
        }
        // Most frames need an all-zero header, and a buffer that last went out
        // carries one already (the device only reads it). Writing only when it
        // differs leaves that cache line shared with the device's core instead
        // of taking it back for every packet. A frame just received holds the
        // device's header, never all zero (num_buffers >= 1): written unread,
        // without a load miss (if the caller moved the data, the write is
        // merely unneeded).
        if (p->ol_flags & pkt::kRxDeviceHeader) {
            zero_header(h);
            return;
        }
        uint64_t a;
        uint32_t b;
        std::memcpy(&a, h, 8);
        std::memcpy(&b, reinterpret_cast<uint8_t*>(h) + 8, 4);
        if (hdr_ != sizeof(virtio::NetHdrMrg)) [[unlikely]] {  // HASH_REPORT: hash_value, hash_report, padding
            uint64_t c;
            std::memcpy(&c, reinterpret_cast<uint8_t*>(h) + 12, 8);
            a |= c;
        }
        if ((a | b) != 0) zero_header(h);
    }

    // Sends a prefix of pkts (all, unless the ring fills or a packet cannot be
    // sent as given); the rest stay the caller's, as with DPDK's tx_burst.
    uint16_t tx(Packet** pkts, uint16_t n) noexcept {
        if (tx_.free_descs() < n) reclaim_tx();  // normally done after the last burst went out (below)
        // Headers about to be overwritten unread (see write_header): ask for
        // all their lines at once rather than one store miss at a time.
        for (uint16_t i = 0; i < n; i++)
            if (pkts[i]->ol_flags & pkt::kRxDeviceHeader) __builtin_prefetch(pkts[i]->data() - hdr_, 1);
        VqBuf bufs[kBurst];
        uint16_t nb = 0, sent = 0;
        uint64_t bytes = 0;
        const uint16_t hdr = hdr_;
        bool full = false;
        auto flush = [&]() noexcept {
            const uint16_t added = tx_.add_burst(bufs, nb);
            for (uint16_t j = 0; j < added; j++) bytes += static_cast<const Packet*>(bufs[j].cookie)->pkt_len;
            sent = static_cast<uint16_t>(sent + added);
            full = added != nb;
            nb = 0;
        };
        for (uint16_t i = 0; i < n && !full; i++) {
            Packet* p = pkts[i];
            if (p->nb_segs >= kBurst) {  // an absurd chain: cannot be sent as given
                bump(tx_stats_.errors);
                break;
            }
            if (p->ol_flags & pkt::kTxTcpSeg) [[unlikely]] {
                if (nb != 0) flush();  // keep the order of the burst
                if (full || !send_large_segment(p, bytes)) break;
                sent++;
                continue;
            }
            if (p->data_off < hdr) {  // no headroom: the header goes in a descriptor of its own
                if (nb != 0) flush();
                if (full || !send_with_header_slot(p)) break;
                bytes += p->pkt_len;
                sent++;
                continue;
            }
            write_header(p);
            const VqSeg first{p->data_iova() - hdr, static_cast<uint32_t>(p->data_len) + hdr, false};
            if (p->nb_segs == 1) {
                bufs[nb++] = {first.iova, first.len, false, p};
                if (nb == kBurst) flush();
                continue;
            }
            if (nb != 0) flush();  // keep the order of the burst
            if (full || !add_packet_chain(p, first)) break;
            bytes += p->pkt_len;
            sent++;
        }
        if (nb != 0 && !full) flush();
        tx_.publish();
        if (tx_.kick_needed()) {
            tx_bell_.ring(tx_.notification_value());
            bump(tx_stats_.kicks);
        }
        // Reclaim in batches, when free descriptors run low (DPDK's
        // tx_free_thresh; reading used entries at every burst pulls cache
        // lines the device is writing at that moment: in a packed ring the
        // same lines it reads new descriptors from), and after this burst is
        // published, so that the device already has it meanwhile.
        if (tx_.free_descs() < reclaim_threshold_ + kBurst) reclaim_tx(1);
        bump(tx_stats_.bytes, bytes);
        bump(tx_stats_.packets, sent);
        bump(tx_stats_.bursts, sent != 0);
        return sent;
    }

    // A multi-descriptor Tx chain: indirect when negotiated and it fits, else in the ring.
    bool add_chain(const VqSeg* segs, uint16_t ns, void* cookie) noexcept {
        if (cfg_.indirect && ns > 1 && ns <= kIndirectMax) {
            if (!tx_.add_indirect(segs, ns, cookie)) return false;
            bump(tx_stats_.indirect);
            return true;
        }
        return tx_.add(segs, ns, cookie);
    }

    // One packet as one chain: header descriptor (in the headroom) and segments.
    bool add_packet_chain(Packet* p, const VqSeg& first) noexcept {
        VqSeg segs[kBurst];
        uint16_t ns = 0;
        segs[ns++] = first;
        for (Packet* s = p->next; s != nullptr && ns < p->nb_segs; s = s->next)
            segs[ns++] = {s->data_iova(), s->data_len, false};
        return add_chain(segs, ns, p);
    }

    // A frame flagged pkt::kTxTcpSeg (5.1.6.2). With HOST_TSO for its IP
    // version the device cuts it: one chain whose header says how
    // (write_header). Without, vireo cuts it here into frames from the pool,
    // each with its checksum offloaded as any other frame's, all in the ring
    // or none, and p goes back to its pool. A frame that is no TCP segment
    // vireo can cut is dropped and counted (true: consumed). False: no room in
    // the ring or the pool yet; p stays the caller's.
    bool send_large_segment(Packet* p, uint64_t& bytes) noexcept {
        const uint8_t type = tcp_prepare_tso(*p);  // header lengths and IP version from the frame
        const uint32_t len = p->pkt_len;
        if (type != 0 && (type == virtio::kNetHdrGsoTcpv4 ? cfg_.host_tso4 : cfg_.host_tso6)) {
            if (p->data_off < hdr_) {
                if (!send_with_header_slot(p)) return false;
            } else {
                write_header(p);
                if (!add_packet_chain(p, {p->data_iova() - hdr_, static_cast<uint32_t>(p->data_len) + hdr_, false}))
                    return false;
            }
            bump(tx_stats_.tso);
            bytes += len;
            return true;
        }
        const uint32_t count = type != 0 ? tcp_segment_count(*p) : 0;
        const uint32_t hdrs = uint32_t{p->l2_len} + p->l3_len + p->l4_len;
        if (count == 0 || count > kSegmentsMax ||
            hdrs + std::min<uint32_t>(p->tso_segsz, len - hdrs) > pool_.data_room()) {
            bump(tx_stats_.errors);
            PacketPool::free(p);
            return true;
        }
        if (tx_.free_descs() < count) reclaim_tx();
        if (tx_.free_descs() < count) return false;
        Packet* segs[kSegmentsMax];
        const uint16_t made = tcp_segment(*p, pool_, segs, kSegmentsMax, SegmentChecksum::Partial);
        if (made == 0) return false;  // the pool is empty
        VqBuf bufs[kSegmentsMax];
        for (uint16_t j = 0; j < made; j++) {
            write_header(segs[j]);
            bufs[j] = {segs[j]->data_iova() - hdr_, static_cast<uint32_t>(segs[j]->data_len) + hdr_, false, segs[j]};
        }
        tx_.add_burst(bufs, made);  // room checked above
        bump(tx_stats_.sw_segments, made);
        bytes += len;
        PacketPool::free(p);
        return true;
    }

    bool send_with_header_slot(Packet* p) noexcept {
        if (free_hdr_.empty()) return false;
        HdrSlot& slot = hdr_slots_[free_hdr_.back()];
        slot.pkt = p;
        write_header(p, slot.va);
        VqSeg segs[kBurst];
        uint16_t ns = 0;
        segs[ns++] = {slot.iova, hdr_, false};
        for (Packet* s = p; s != nullptr && ns < p->nb_segs + 1; s = s->next)
            segs[ns++] = {s->data_iova(), s->data_len, false};
        if (!add_chain(segs, ns, &slot)) return false;
        free_hdr_.pop_back();
        return true;
    }

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
