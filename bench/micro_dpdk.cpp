// vireo-bench-micro: vireo's data-structure hot paths next to DPDK's, same
// binary, same run, so the ratio survives this machine's speed drift. This file
// holds DPDK's half (built with DPDK's own flags) and main(); micro_vireo.cpp
// holds vireo's.
//
//   vireo-bench-micro --benchmark_format=json
//   bench/run-micro            (repetitions, interleaving, ratio table)
//
// Names read <operation>/<variant>/<implementation>; bench/run-micro pairs
// .../vireo with .../dpdk.
#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "micro_params.hpp"

namespace {

using namespace bench;

template <bool Single>
void ring_dpdk(benchmark::State& st) {
    ssize_t sz = rte_ring_get_memsize(kRingSize);
    auto* r = static_cast<rte_ring*>(std::aligned_alloc(RTE_CACHE_LINE_SIZE, static_cast<size_t>(sz)));
    const unsigned flags = Single ? (RING_F_SP_ENQ | RING_F_SC_DEQ) : 0;
    // rte_ring holds size-1 values unless RING_F_EXACT_SZ; 1024 slots either way hold a burst.
    if (rte_ring_init(r, "bench", kRingSize, flags) != 0) {
        st.SkipWithError("rte_ring_init failed");
        std::free(r);
        return;
    }
    void* in[kBurst];
    void* out[kBurst];
    for (unsigned i = 0; i < kBurst; i++) in[i] = reinterpret_cast<void*>(uintptr_t{i + 1} * 64);
    for (auto _ : st) {
        benchmark::DoNotOptimize(rte_ring_enqueue_burst(r, in, kBurst, nullptr));
        benchmark::DoNotOptimize(rte_ring_dequeue_burst(r, out, kBurst, nullptr));
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(st.iterations() * kBurst);
    std::free(r);
}

void pool_dpdk(benchmark::State& st) {
    rte_mempool* mp = rte_mempool_create("bench_pool", kPoolCount, kObjSize, kCache, 0, nullptr, nullptr, nullptr,
                                         nullptr, SOCKET_ID_ANY, 0);
    if (mp == nullptr) {
        st.SkipWithError((std::string("rte_mempool_create: ") + rte_strerror(rte_errno)).c_str());
        return;
    }
    void* objs[kBurst];
    for (auto _ : st) {
        if (rte_mempool_get_bulk(mp, objs, kBurst) != 0) st.SkipWithError("pool empty");
        rte_mempool_put_bulk(mp, objs, kBurst);
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(st.iterations() * kBurst);
    rte_mempool_free(mp);
}

BENCHMARK(ring_dpdk<true>)->Name("ring_burst32/spsc/dpdk");
BENCHMARK(ring_dpdk<false>)->Name("ring_burst32/mpmc/dpdk");
BENCHMARK(pool_dpdk)->Name("pool_bulk32/cache256/dpdk");

// DPDK's mempool needs its EAL: one lcore, no hugepages, no PCI, no shared
// config, a prefix unique to this process; its runtime folder is removed at exit.
bool init_dpdk() {
    std::string prefix = "--file-prefix=vireo-bench-" + std::to_string(::getpid());
    std::vector<std::string> args = {
        "vireo-bench-micro", "-l",  "0", "--no-huge", "--no-pci", "--no-shconf", "-m", "256", "--log-level=error",
        "--no-telemetry",    prefix};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
        std::fprintf(stderr, "vireo-bench-micro: DPDK EAL init failed: %s\n", rte_strerror(rte_errno));
        return false;
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    if (!init_dpdk()) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    rte_eal_cleanup();
    std::string run_dir = "/var/run/dpdk/vireo-bench-" + std::to_string(::getpid());
    std::filesystem::remove_all(run_dir);
    return 0;
}
