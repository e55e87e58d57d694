// Tx: the burst (one descriptor per single-segment frame, header in the
// headroom) and the reclaim of completed buffers.
//
// Part of NetQueuePair (net_queue_pair.hpp), which includes this file at its
// end: member definitions of the class declared there.
#pragma once

namespace vireo {

// Frees completed Tx buffers, at most `batches` x kBurst of them.
template <class Q, Isa I>
inline void NetQueuePair<Q, I>::reclaim_tx(unsigned batches) noexcept {
    VqUsed used[kBurst];
    Packet* done[kBurst];
    for (; batches != 0; batches--) {
        uint16_t got = tx_.reap(used, kBurst);
        if (got == 0) break;
        for (uint16_t i = 0; i < got; i++) done[i] = packet_of(used[i].cookie);
        PacketPool::free_bulk(done, got);
    }
}

// Sends a prefix of pkts (all, unless the ring fills or a packet cannot be
// sent as given); the rest stay the caller's, as with DPDK's tx_burst.
template <class Q, Isa I>
inline uint16_t NetQueuePair<Q, I>::tx(Packet** pkts, uint16_t n) noexcept {
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

}  // namespace vireo
