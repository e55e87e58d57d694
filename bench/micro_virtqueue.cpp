// vireo-bench-micro, virtqueue part: driver-side ns per packet.
//   tx: add_burst of one-descriptor chains, publish, kick check, reap them
//   rx: add_burst (refill) of device-writable buffers, publish, reap them
// for split, split+in_order, packed, packed+in_order and bursts 1..256.
// The device is a minimal loopback written here (it only flips what the spec
// requires), and it runs in the same thread: the figures are driver plus that
// device, an upper bound on the driver side alone. Names:
//   vq/<tx|rx>/<kind>/<burst>
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstring>
#include <type_traits>
#include <vector>

#include "vireo/pmd/isa.hpp"
#include "vireo/pmd/packed_queue.hpp"
#include "vireo/pmd/split_queue.hpp"

namespace {

using namespace vireo;

constexpr uint16_t kRing = 1024;
constexpr uint32_t kLen = 64;

// Minimal devices: consume everything available, complete it in order with
// length `len`. Layout offsets from the spec (2.7 split, 2.8 packed).
struct SplitLoopback {
    uint8_t* avail;
    uint8_t* used;
    uint16_t size, last_avail = 0, used_idx = 0;
    void run(uint32_t len) {
        const uint16_t ai =
            std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(avail + 2)).load(std::memory_order_acquire);
        while (last_avail != ai) {
            uint16_t head;
            std::memcpy(&head, avail + 4 + 2 * (last_avail & (size - 1)), 2);
            uint32_t e[2] = {head, len};
            std::memcpy(used + 4 + 8 * (used_idx & (size - 1)), e, 8);
            last_avail++;
            used_idx++;
        }
        std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(used + 2)).store(used_idx, std::memory_order_release);
    }
};

struct PackedLoopback {
    uint8_t* desc;
    uint16_t size, pos = 0;
    bool wrap = true;
    void run(uint32_t len) {
        for (;;) {
            auto& flags = *reinterpret_cast<uint16_t*>(desc + 16 * pos + 14);
            uint16_t f = std::atomic_ref<uint16_t>(flags).load(std::memory_order_acquire);
            bool a = f & (1 << 7), u = f & (1 << 15);
            if (!(a == wrap && u != wrap)) return;
            std::memcpy(desc + 16 * pos + 8, &len, 4);
            std::atomic_ref<uint16_t>(flags).store(wrap ? (1 << 7 | 1 << 15) : 0, std::memory_order_release);
            if (++pos == size) {
                pos = 0;
                wrap = !wrap;
            }
        }
    }
};

DmaMemory& memory() {
    static DmaMemory* mem = [] {
        DmaMemoryOptions o;
        o.mode = IovaMode::VA;
        o.region_size = 64 << 20;
        return new DmaMemory(o);
    }();
    return *mem;
}

template <class Q>
struct IsSplit : std::false_type {};
template <bool I, class O>
struct IsSplit<SplitQueue<I, O>> : std::true_type {};

template <class Q>
auto make_loopback(Q& q) {
    const IovaMap& m = memory().map();
    if constexpr (IsSplit<Q>::value)
        return SplitLoopback{static_cast<uint8_t*>(m.va(q.driver_iova())), static_cast<uint8_t*>(m.va(q.device_iova())),
                             q.size()};
    else
        return PackedLoopback{static_cast<uint8_t*>(m.va(q.desc_iova())), q.size()};
}

template <class Q, bool Rx>
void vq_bench_body(benchmark::State& st);

template <class Q, bool Rx>
void vq_bench(benchmark::State& st) {
    vq_bench_body<Q, Rx>(st);
}

// The same loop compiled for AVX-512 (queue kernels inlined), registered only where the CPU has it.
template <class Q, bool Rx>
[[gnu::target("arch=x86-64-v4"), gnu::flatten]] void vq_bench_avx512(benchmark::State& st) {
    vq_bench_body<Q, Rx>(st);
}

template <class Q, bool Rx>
void vq_bench_body(benchmark::State& st) {
    const auto burst = static_cast<uint16_t>(st.range(0));
    // One queue per kind for the whole process (DmaMemory never frees), reset
    // to its initial state before each run, with a fresh device to match.
    static Q& q = *new Q(memory(), {.size = kRing, .event_idx = true});
    q.reset([](void*) {});
    auto dev = make_loopback(q);
    std::vector<uint8_t> cookies(burst);
    std::vector<VqBuf> bufs(burst);
    const Iova buf = memory().map().iova(memory().region(0).va());
    for (uint16_t i = 0; i < burst; i++) bufs[i] = {buf + i * 2048u, 2048, Rx, &cookies[i]};
    VqUsed used[256];
    for (auto _ : st) {
        q.add_burst(bufs.data(), burst);
        q.publish();
        benchmark::DoNotOptimize(q.kick_needed());
        dev.run(Rx ? kLen : 0);
        uint16_t got = 0;
        while (got < burst) got = static_cast<uint16_t>(got + q.reap(used + got, static_cast<uint16_t>(burst - got)));
        benchmark::DoNotOptimize(used[burst - 1].cookie);
    }
    st.SetItemsProcessed(st.iterations() * burst);
    st.counters["ns_per_pkt"] = benchmark::Counter(static_cast<double>(st.iterations()) * burst,
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void bursts(benchmark::internal::Benchmark* b) {
    for (int n : {1, 4, 8, 16, 32, 64, 256}) b->Arg(n);
}

BENCHMARK(vq_bench<SplitQueue<false>, false>)->Name("vq/tx/split")->Apply(bursts);
BENCHMARK(vq_bench<SplitQueue<true>, false>)->Name("vq/tx/split_inorder")->Apply(bursts);
BENCHMARK(vq_bench<PackedQueue<false>, false>)->Name("vq/tx/packed")->Apply(bursts);
BENCHMARK(vq_bench<PackedQueue<true>, false>)->Name("vq/tx/packed_inorder")->Apply(bursts);
BENCHMARK(vq_bench<SplitQueue<false>, true>)->Name("vq/rx/split")->Apply(bursts);
BENCHMARK(vq_bench<SplitQueue<true>, true>)->Name("vq/rx/split_inorder")->Apply(bursts);
BENCHMARK(vq_bench<PackedQueue<false>, true>)->Name("vq/rx/packed")->Apply(bursts);
BENCHMARK(vq_bench<PackedQueue<true>, true>)->Name("vq/rx/packed_inorder")->Apply(bursts);

const bool g_avx512_registered = [] {
    if (cpu_isa() < Isa::Avx512) return false;
    using P = PackedQueue<true, SmpOrdering, Isa::Avx512>;
    using PO = PackedQueue<false, SmpOrdering, Isa::Avx512>;
    benchmark::RegisterBenchmark("vq/tx/packed_inorder_avx512", vq_bench_avx512<P, false>)->Apply(bursts);
    benchmark::RegisterBenchmark("vq/rx/packed_inorder_avx512", vq_bench_avx512<P, true>)->Apply(bursts);
    benchmark::RegisterBenchmark("vq/tx/packed_avx512", vq_bench_avx512<PO, false>)->Apply(bursts);
    benchmark::RegisterBenchmark("vq/rx/packed_avx512", vq_bench_avx512<PO, true>)->Apply(bursts);
    return true;
}();

}  // namespace
