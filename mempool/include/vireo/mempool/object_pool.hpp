// vireo: a fixed-size object pool in DMA memory.
//
// Free objects live in a multi-producer/multi-consumer Ring; each thread has a
// cache in front of it (DPDK's rte_mempool design), so a bulk get or put of a
// burst usually touches only thread-local memory. Every object is
// IOVA-contiguous (DmaMemory never places one across a physical break). A
// pool can also place its objects in ordinary process memory, which no device
// is given: for bookkeeping about DMA buffers that a device must not be able
// to rewrite (PacketPoolOptions::metadata_apart).
//
// in_use() = objects handed out and not yet returned; it is exact whenever no
// get or put is running, which is what a leak check needs.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string>

#include "vireo/iova/dma_memory.hpp"
#include "vireo/mempool/ring.hpp"
#include "vireo/mempool/thread_slot.hpp"

namespace vireo {

struct ObjectPoolOptions {
    uint32_t count = 0;         // objects in the pool
    uint32_t object_size = 0;   // bytes per object
    uint32_t align = 64;        // power of two
    uint32_t cache_size = 256;  // per-thread cache; 0 disables caching
};

class ObjectPool {
public:
    static constexpr uint32_t kMaxCacheSize = 512;
    // Called once per object at creation with its VA, IOVA and index.
    using InitFn = std::function<void(void* obj, Iova iova, uint32_t index)>;

    ObjectPool(DmaMemory& mem, const ObjectPoolOptions& opts, const InitFn& init = {});
    // Objects in process memory the pool owns, never given to a device (init sees IOVA 0).
    ObjectPool(const ObjectPoolOptions& opts, const InitFn& init);
    ObjectPool(const ObjectPool&) = delete;
    ObjectPool& operator=(const ObjectPool&) = delete;
    ~ObjectPool();

    // All n objects or none (returns false when the pool cannot supply n).
    bool get_bulk(void** objs, uint32_t n) noexcept {
        Cache* c = cache();
        if (c == nullptr || n > cache_size_) return free_.dequeue_bulk(objs, n) == n;
        void** const stack = c->objs();
        uint32_t len = c->len.load(std::memory_order_relaxed);
        if (len < n) {  // refill to cache_size_ beyond this request
            len += free_.dequeue_burst(stack + len, cache_size_ + n - len);
            if (len < n) {
                c->len.store(len, std::memory_order_relaxed);
                return false;
            }
        }
        len -= n;  // hand out the top n: the most recently freed, cache-warm objects
        detail::copy_burst(objs, stack + len, n);
        c->len.store(len, std::memory_order_relaxed);
        return true;
    }

    void put_bulk(void* const* objs, uint32_t n) noexcept {
        Cache* c = cache();
        if (c == nullptr || n > cache_size_) {
            free_.enqueue_bulk(objs, n);  // cannot fail: the ring holds every object
            return;
        }
        void** const stack = c->objs();
        uint32_t len = c->len.load(std::memory_order_relaxed);
        detail::copy_burst(stack + len, objs, n);
        len += n;
        if (len >= flush_threshold_) {  // give back all but cache_size_
            free_.enqueue_bulk(stack + cache_size_, len - cache_size_);
            len = cache_size_;
        }
        c->len.store(len, std::memory_order_relaxed);
    }

    void* get() noexcept {
        void* o;
        return get_bulk(&o, 1) ? o : nullptr;
    }
    void put(void* o) noexcept { put_bulk(&o, 1); }

    // Returns the calling thread's cached objects to the shared ring.
    void flush_thread_cache() noexcept;

    uint32_t size() const noexcept { return count_; }
    uint32_t available() const noexcept;
    uint32_t in_use() const noexcept { return count_ - available(); }
    uint32_t object_size() const noexcept { return object_size_; }
    uint32_t cache_size() const noexcept { return cache_size_; }

private:
    // One cache per thread slot, inline in one allocation at a fixed stride
    // (no pointer to chase): a 64-byte header, then the object stack.
    struct alignas(64) Cache {
        std::atomic<uint32_t> len{0};  // written by the owning thread only
        void** objs() noexcept { return reinterpret_cast<void**>(this + 1); }
    };
    Cache* cache() noexcept {
        uint32_t s = thread_slot();
        if (s == kNoThreadSlot) return nullptr;
        return reinterpret_cast<Cache*>(caches_ + size_t{s} * cache_stride_);
    }
    Cache* cache_at(uint32_t slot) const noexcept {
        return reinterpret_cast<Cache*>(caches_ + size_t{slot} * cache_stride_);
    }

    explicit ObjectPool(const ObjectPoolOptions& opts);  // the constructors' common part

    Ring<void*> free_;
    const uint32_t count_;
    const uint32_t object_size_;
    const uint32_t cache_size_;
    const uint32_t flush_threshold_;
    size_t cache_stride_ = 0;
    uint8_t* caches_ = nullptr;  // kMaxThreadSlots caches, cache_stride_ bytes apart
    struct AlignedDelete {
        std::align_val_t align;
        void operator()(uint8_t* p) const noexcept { ::operator delete(p, align); }
    };
    std::unique_ptr<uint8_t, AlignedDelete> private_objects_;  // the objects, when not in DMA memory
};

}  // namespace vireo
