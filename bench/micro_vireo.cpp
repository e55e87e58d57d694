// vireo's half of vireo-bench-micro. Built with vireo's own flags (this file
// includes no DPDK header: DPDK's pkg-config would force -march=corei7 on it).
#include <benchmark/benchmark.h>

#include "micro_params.hpp"
#include "vireo/mempool/object_pool.hpp"
#include "vireo/mempool/ring.hpp"

namespace {

using namespace bench;

// --- rings: enqueue a burst of 32, dequeue it again ---------------------------

template <vireo::RingSync Sync>
void ring_vireo(benchmark::State& st) {
    vireo::Ring<void*> r(kRingSize, Sync, Sync);
    void* in[kBurst];
    void* out[kBurst];
    for (unsigned i = 0; i < kBurst; i++) in[i] = reinterpret_cast<void*>(uintptr_t{i + 1} * 64);
    for (auto _ : st) {
        benchmark::DoNotOptimize(r.enqueue_burst(in, kBurst));
        benchmark::DoNotOptimize(r.dequeue_burst(out, kBurst));
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(st.iterations() * kBurst);
}

// --- pools: get 32, put 32, through the per-thread cache ----------------------

void pool_vireo(benchmark::State& st) {
    vireo::DmaMemoryOptions mo;
    mo.mode = vireo::IovaMode::VA;
    mo.region_size = size_t{kPoolCount} * kObjSize + (4 << 20);
    vireo::DmaMemory mem(mo);
    vireo::ObjectPool pool(mem, {.count = kPoolCount, .object_size = kObjSize, .align = 64, .cache_size = kCache});
    void* objs[kBurst];
    for (auto _ : st) {
        if (!pool.get_bulk(objs, kBurst)) st.SkipWithError("pool empty");
        pool.put_bulk(objs, kBurst);
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(st.iterations() * kBurst);
}

BENCHMARK(ring_vireo<vireo::RingSync::Single>)->Name("ring_burst32/spsc/vireo");
BENCHMARK(ring_vireo<vireo::RingSync::Multi>)->Name("ring_burst32/mpmc/vireo");
BENCHMARK(pool_vireo)->Name("pool_bulk32/cache256/vireo");

}  // namespace
