// Test helper: a frame's bytes in and out of a chain of pool packets.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "vireo/mempool/packet_pool.hpp"

namespace vireo::test {

// The frame in a chain of segments of at most seg_room bytes each; nullptr
// (nothing kept) when the pool runs out.
inline Packet* to_chain(PacketPool& pool, const std::vector<uint8_t>& f, uint16_t seg_room) {
    Packet* head = nullptr;
    Packet* tail = nullptr;
    for (size_t at = 0; at < f.size();) {
        Packet* p = pool.alloc();
        if (p == nullptr) {
            PacketPool::free(head);
            return nullptr;
        }
        const auto k = static_cast<uint16_t>(std::min<size_t>(seg_room, f.size() - at));
        std::memcpy(p->append(k), f.data() + at, k);
        at += k;
        if (head == nullptr) {
            head = tail = p;
        } else {
            tail->next = p;
            tail = p;
            head->nb_segs++;
            head->pkt_len += k;
        }
    }
    return head;
}

inline std::vector<uint8_t> flatten(const Packet* p) {
    std::vector<uint8_t> f;
    for (const Packet* s = p; s != nullptr; s = s->next) f.insert(f.end(), s->data(), s->data() + s->data_len);
    return f;
}

}  // namespace vireo::test
