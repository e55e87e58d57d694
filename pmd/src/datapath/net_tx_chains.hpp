// Tx: frames that are more than one descriptor: segment chains, indirect
// tables (INDIRECT_DESC), and a header descriptor of its own for a frame
// without headroom (a header slot is then the chain's cookie).
//
// Part of NetQueuePair (net_queue_pair.hpp), which includes this file at its
// end: member definitions of the class declared there.
#pragma once

namespace vireo {

template <class Q, Isa I>
inline bool NetQueuePair<Q, I>::is_slot(const void* c) const noexcept {
    auto p = reinterpret_cast<uintptr_t>(c), b = reinterpret_cast<uintptr_t>(hdr_slots_.data());
    return p - b < sizeof(HdrSlot) * hdr_slots_.size();
}

template <class Q, Isa I>
inline Packet* NetQueuePair<Q, I>::packet_of(void* cookie) noexcept {
    if (!is_slot(cookie)) return static_cast<Packet*>(cookie);
    auto* s = static_cast<HdrSlot*>(cookie);
    free_hdr_.push_back(static_cast<uint16_t>(s - hdr_slots_.data()));
    return s->pkt;
}

// A multi-descriptor Tx chain: indirect when negotiated and it fits, else in the ring.
template <class Q, Isa I>
bool NetQueuePair<Q, I>::add_chain(const VqSeg* segs, uint16_t ns, void* cookie) noexcept {
    if (cfg_.indirect && ns > 1 && ns <= kIndirectMax) {
        if (!tx_.add_indirect(segs, ns, cookie)) return false;
        bump(tx_stats_.indirect);
        return true;
    }
    return tx_.add(segs, ns, cookie);
}

// One packet as one chain: header descriptor (in the headroom) and segments.
template <class Q, Isa I>
inline bool NetQueuePair<Q, I>::add_packet_chain(Packet* p, const VqSeg& first) noexcept {
    VqSeg segs[kBurst];
    uint16_t ns = 0;
    segs[ns++] = first;
    for (Packet* s = p->next; s != nullptr && ns < p->nb_segs; s = s->next)
        segs[ns++] = {s->data_iova(), s->data_len, false};
    return add_chain(segs, ns, p);
}

template <class Q, Isa I>
inline bool NetQueuePair<Q, I>::send_with_header_slot(Packet* p) noexcept {
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

}  // namespace vireo
