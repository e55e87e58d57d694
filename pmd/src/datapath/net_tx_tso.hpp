// Tx: large TCP segments (pkt::kTxTcpSeg): the device cuts them (HOST_TSO4/6)
// or vireo does (tcp_segment.hpp), all frames or none.
//
// Part of NetQueuePair (net_queue_pair.hpp), which includes this file at its
// end: member definitions of the class declared there.
#pragma once

namespace vireo {

// A frame flagged pkt::kTxTcpSeg (5.1.6.2). With HOST_TSO for its IP
// version the device cuts it: one chain whose header says how
// (write_header). Without, vireo cuts it here into frames from the pool,
// each with its checksum offloaded as any other frame's, all in the ring
// or none, and p goes back to its pool. A frame that is no TCP segment
// vireo can cut is dropped and counted (true: consumed). False: no room in
// the ring or the pool yet; p stays the caller's.
template <class Q, Isa I>
inline bool NetQueuePair<Q, I>::send_large_segment(Packet* p, uint64_t& bytes) noexcept {
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
    if (count == 0 || count > kSegmentsMax || hdrs + std::min<uint32_t>(p->tso_segsz, len - hdrs) > pool_.data_room()) {
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

}  // namespace vireo
