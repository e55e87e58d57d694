// vireo: PacketPool, a pool of Packets with their buffers in DMA memory.
#pragma once

#include <cstdint>

#include "vireo/iova/dma_memory.hpp"
#include "vireo/mempool/object_pool.hpp"
#include "vireo/mempool/packet.hpp"

namespace vireo {

struct PacketPoolOptions {
    uint32_t count = 8192;      // packets
    uint16_t headroom = 128;    // >= kMinHeadroom: room for the virtio-net header and encapsulations
    uint16_t data_room = 2048;  // bytes of frame per segment
    uint32_t cache_size = 256;  // per-thread cache (0: none)
    // Each Packet's metadata (buffer addresses, chain link, owning pool) in
    // process memory, only its buffer in the DmaMemory: for memory a device
    // may write at any time (dma=window), so that nothing vireo follows
    // lives where the device can rewrite it. false: metadata and buffer in
    // one DMA object, one line apart (the application's pool, as DPDK's).
    bool metadata_apart = false;
};

class PacketPool {
public:
    static constexpr uint16_t kMinHeadroom = 128;

    PacketPool(DmaMemory& mem, const PacketPoolOptions& opts);

    // A fresh single-segment packet, or nullptr when the pool is empty.
    Packet* alloc() noexcept {
        void* o = objects_.get();
        if (o == nullptr) return nullptr;
        auto* p = static_cast<Packet*>(o);
        p->reset(headroom_);
        return p;
    }
    // n fresh packets or none.
    bool alloc_bulk(Packet** pkts, uint32_t n) noexcept {
        if (!objects_.get_bulk(reinterpret_cast<void**>(pkts), n)) return false;
        for (uint32_t i = 0; i < n; i++) pkts[i]->reset(headroom_);
        return true;
    }
    // Returns a whole chain, each segment to its own pool.
    static void free(Packet* p) noexcept {
        while (p != nullptr) {
            Packet* next = p->next;
            p->pool->objects_.put(p);
            p = next;
        }
    }
    // Returns n chains; consecutive single-segment packets of one pool go back
    // in one bulk put.
    static void free_bulk(Packet* const* pkts, uint32_t n) noexcept;

    IovaMode mode() const noexcept { return mode_; }
    uint32_t size() const noexcept { return objects_.size(); }
    uint32_t in_use() const noexcept { return objects_.in_use(); }
    uint32_t available() const noexcept { return objects_.available(); }
    uint16_t headroom() const noexcept { return headroom_; }
    uint16_t data_room() const noexcept { return data_room_; }
    void flush_thread_cache() noexcept { objects_.flush_thread_cache(); }

private:
    static ObjectPool make_objects(DmaMemory& mem, const PacketPoolOptions& o, PacketPool* self);

    IovaMode mode_;
    uint16_t headroom_;
    uint16_t data_room_;
    ObjectPool objects_;
};

}  // namespace vireo
