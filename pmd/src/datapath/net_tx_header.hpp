// Tx: the virtio-net header (5.1.6.2) in front of each frame: checksum
// offload, or the checksum done here; TSO fields; written only when it must be.
//
// Part of NetQueuePair (net_queue_pair.hpp), which includes this file at its
// end: member definitions of the class declared there.
#pragma once

namespace vireo {

// Constant-size stores (a 12- or 20-byte memset inlines; a variable one is a call).
template <class Q, Isa I>
inline void NetQueuePair<Q, I>::zero_header(virtio::NetHdrMrg* h) const noexcept {
    if (hdr_ != sizeof(virtio::NetHdrMrg)) [[unlikely]]
        std::memset(h, 0, sizeof(virtio::NetHdrHash));
    else
        std::memset(h, 0, sizeof(virtio::NetHdrMrg));
}

// The virtio-net header (5.1.6.2), in the headroom in front of the frame
// or at h when the packet has no headroom left.
template <class Q, Isa I>
inline void NetQueuePair<Q, I>::write_header(Packet* p, uint8_t* at) noexcept {
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

}  // namespace vireo
