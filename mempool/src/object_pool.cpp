#include "vireo/mempool/object_pool.hpp"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>

#include "vireo/base/error.hpp"

namespace vireo {
namespace {

uint32_t round_up(uint32_t v, uint32_t a) { return (v + a - 1) / a * a; }

// Validates before anything is allocated; returns the ring size.
uint32_t checked_ring_size(const ObjectPoolOptions& o) {
    if (o.count == 0) throw Error("ObjectPool: count is 0: a pool needs at least one object");
    if (o.count > (uint32_t{1} << 30))
        throw Error("ObjectPool: count " + std::to_string(o.count) + " is absurd (max 2^30)");
    if (o.object_size == 0) throw Error("ObjectPool: object_size is 0");
    if (!std::has_single_bit(o.align)) throw Error("ObjectPool: align must be a power of two");
    if (o.cache_size > ObjectPool::kMaxCacheSize)
        throw Error("ObjectPool: cache_size " + std::to_string(o.cache_size) + " exceeds " +
                    std::to_string(ObjectPool::kMaxCacheSize));
    const uint64_t total = uint64_t{o.count} * round_up(o.object_size, o.align);
    if (total > (uint64_t{1} << 40)) throw Error("ObjectPool: " + std::to_string(total) + " bytes is absurd");

    return std::bit_ceil(std::max<uint32_t>(o.count, 2));
}

}  // namespace

// Validated options, an empty free ring and the thread caches: the part
// both placements share (the objects are added by the constructor that
// delegates here, so the destructor runs should one of them throw).
ObjectPool::ObjectPool(const ObjectPoolOptions& o)
    : free_(checked_ring_size(o), RingSync::Multi, RingSync::Multi),
      count_(o.count),
      object_size_(o.object_size),
      cache_size_(o.cache_size),
      flush_threshold_(o.cache_size + o.cache_size / 2) {
    cache_stride_ = sizeof(Cache) + (sizeof(void*) * (flush_threshold_ + cache_size_) + 63) / 64 * 64;
    caches_ = static_cast<uint8_t*>(::operator new (cache_stride_* kMaxThreadSlots, std::align_val_t{64}));
    for (uint32_t i = 0; i < kMaxThreadSlots; i++) new (cache_at(i)) Cache;
}

ObjectPool::ObjectPool(DmaMemory& mem, const ObjectPoolOptions& o, const InitFn& init) : ObjectPool(o) {
    // One allocation per object: each is IOVA-contiguous by DmaMemory's rule,
    // and they pack back to back wherever no physical break intervenes.
    const uint32_t stride = round_up(o.object_size, o.align);
    for (uint32_t i = 0; i < o.count; i++) {
        DmaChunk c = mem.allocate(stride, o.align);
        if (init) init(c.va, c.iova, i);
        void* p = c.va;
        free_.enqueue_bulk(&p, 1);
    }
}

ObjectPool::ObjectPool(const ObjectPoolOptions& o, const InitFn& init) : ObjectPool(o) {
    const size_t stride = round_up(o.object_size, o.align);
    const std::align_val_t align{std::max<uint32_t>(o.align, 64)};
    private_objects_ = {static_cast<uint8_t*>(::operator new(stride* o.count, align)), AlignedDelete{align}};
    uint8_t* const base = private_objects_.get();
    for (uint32_t i = 0; i < o.count; i++) {
        void* p = base + stride * i;
        if (init) init(p, Iova{0}, i);
        free_.enqueue_bulk(&p, 1);
    }
}

ObjectPool::~ObjectPool() {
    for (uint32_t i = 0; i < kMaxThreadSlots; i++) cache_at(i)->~Cache();
    ::operator delete (caches_, std::align_val_t{64});
}

void ObjectPool::flush_thread_cache() noexcept {
    Cache* c = cache();
    if (c == nullptr) return;
    free_.enqueue_bulk(c->objs(), c->len.load(std::memory_order_relaxed));
    c->len.store(0, std::memory_order_relaxed);
}

uint32_t ObjectPool::available() const noexcept {
    uint32_t n = free_.count();
    for (uint32_t i = 0; i < kMaxThreadSlots; i++) n += cache_at(i)->len.load(std::memory_order_relaxed);
    return n;
}

}  // namespace vireo
