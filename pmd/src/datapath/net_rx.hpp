// Rx: reaping completed buffers, reassembling mergeable frames (5.1.6.4), the
// header's checksum state, large segments and hash, delivery to the caller.
//
// Part of NetQueuePair (net_queue_pair.hpp), which includes this file at its
// end: member definitions of the class declared there.
#pragma once

namespace vireo {

template <class Q, Isa I>
inline uint16_t NetQueuePair<Q, I>::rx(Packet** out, uint16_t n) noexcept {
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
template <class Q, Isa I>
inline void NetQueuePair<Q, I>::mark_large_segment(Packet* p, const virtio::NetHdr& h) noexcept {
    const uint8_t type = h.gso_type & static_cast<uint8_t>(~virtio::kNetHdrGsoEcn);
    const int v = tcp_headers(*p);
    if ((type == virtio::kNetHdrGsoTcpv4 && v == 4) || (type == virtio::kNetHdrGsoTcpv6 && v == 6)) {
        p->ol_flags |= v == 4 ? pkt::kRxGsoTcp4 : pkt::kRxGsoTcp6;
        p->tso_segsz = h.gso_size;
        bump(rx_stats_.tso);
    }
}

template <class Q, Isa I>
inline void NetQueuePair<Q, I>::deliver(Packet* p, Packet** out, uint16_t& k) noexcept {
    p->port = cfg_.port_id;
    p->queue = cfg_.queue_id;
    bump(rx_stats_.packets);
    bump(rx_stats_.bytes, p->pkt_len);
    out[k++] = p;
}

}  // namespace vireo
