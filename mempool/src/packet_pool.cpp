#include "vireo/mempool/packet_pool.hpp"

#include <string>

#include "vireo/base/error.hpp"

namespace vireo {
namespace {

const PacketPoolOptions& checked(const PacketPoolOptions& o) {
    if (o.headroom < PacketPool::kMinHeadroom)
        throw Error("PacketPool: headroom " + std::to_string(o.headroom) + " is below " +
                    std::to_string(PacketPool::kMinHeadroom) + " (the virtio-net header lives there)");
    if (o.data_room == 0) throw Error("PacketPool: data_room is 0");
    if (uint32_t{o.headroom} + o.data_room > 0xffff)
        throw Error("PacketPool: headroom + data_room must fit in 65535 bytes; use segment chains for more");
    return o;
}

}  // namespace

PacketPool::PacketPool(DmaMemory& mem, const PacketPoolOptions& o)
    : mode_(mem.mode()),
      headroom_(checked(o).headroom),
      data_room_(o.data_room),
      objects_(make_objects(mem, o, this)) {}

ObjectPool PacketPool::make_objects(DmaMemory& mem, const PacketPoolOptions& o, PacketPool* self) {
    const auto buf_len = static_cast<uint16_t>(o.headroom + o.data_room);
    auto init = [self, buf_len, headroom = o.headroom](Packet* p, uint8_t* buf, Iova buf_iova) {
        p->buf_va = buf;
        p->buf_iova = buf_iova;
        p->pool = self;
        p->buf_len = buf_len;
        p->reset(headroom);
    };
    ObjectPoolOptions oo{.count = o.count,
                         .object_size = static_cast<uint32_t>(sizeof(Packet)),
                         .align = 64,
                         .cache_size = o.cache_size};
    if (o.metadata_apart) {  // the Packet here, its buffer in mem: one IOVA-contiguous chunk each
        return ObjectPool(oo, [&mem, &init, buf_len](void* obj, Iova, uint32_t) {
            DmaChunk c = mem.allocate(buf_len, 64);
            init(static_cast<Packet*>(obj), c.va, c.iova);
        });
    }
    oo.object_size += buf_len;  // the buffer right after its Packet
    return ObjectPool(mem, oo, [&init](void* obj, Iova iova, uint32_t) {
        init(static_cast<Packet*>(obj), static_cast<uint8_t*>(obj) + sizeof(Packet),
             iova + sizeof(Packet));  // the object is IOVA-contiguous
    });
}

void PacketPool::free_bulk(Packet* const* pkts, uint32_t n) noexcept {
    constexpr uint32_t kBatch = 64;
    void* batch[kBatch];
    uint32_t k = 0;
    PacketPool* pool = nullptr;
    for (uint32_t i = 0; i < n; i++) {
        Packet* p = pkts[i];
        if (p->next != nullptr) {  // chains take the per-segment path
            free(p);
            continue;
        }
        if (p->pool != pool || k == kBatch) {
            if (k != 0) pool->objects_.put_bulk(batch, k);
            pool = p->pool;
            k = 0;
        }
        batch[k++] = p;
    }
    if (k != 0) pool->objects_.put_bulk(batch, k);
}

}  // namespace vireo
