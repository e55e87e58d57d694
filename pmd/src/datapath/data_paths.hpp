// The compiled data paths: split or packed, IN_ORDER or not, SMP or platform
// memory ordering (VIRTIO_F_ORDER_PLATFORM), each for three instruction-set
// levels. Each is NetQueuePair<Q, Isa> for one queue type; its two burst
// functions are compiled for their level with GCC's target attribute and
// `flatten` (everything they call is inlined into them, so the whole burst is
// compiled for that level while every out-of-line copy stays baseline: no
// instruction beyond x86-64-v2 can leak into code a baseline CPU runs).
//
// Each level's table is its own translation unit (data_paths_<isa>.cpp), so
// the three compile in parallel; choose_data_path() (data_paths.cpp) picks one
// from the negotiated features and the CPU.
#pragma once

#include "datapath/net_ctrl_queue.hpp"
#include "datapath/net_queue_pair.hpp"
#include "datapath/queue_pair.hpp"
#include "vireo/pmd/isa.hpp"
#include "vireo/pmd/packed_queue.hpp"
#include "vireo/pmd/split_queue.hpp"

namespace vireo::detail {

// Under AddressSanitizer the bursts are not flattened: the sanitizer's checks
// in 48 fully inlined bursts were the long pole of CI's ASan build (docs/perf.md
// has the compile times). Flattening changes what is inlined, not what the
// code does; the release build, whose binaries the instruction-set check
// reads, always flattens.
#if defined(__SANITIZE_ADDRESS__)
#define VIREO_FLATTEN
#else
#define VIREO_FLATTEN , gnu::flatten
#endif

#if defined(__x86_64__)
#define VIREO_TARGET_AVX2 [[gnu::target("arch=x86-64-v3") VIREO_FLATTEN]]
#define VIREO_TARGET_AVX512 [[gnu::target("arch=x86-64-v4") VIREO_FLATTEN]]
#else
#define VIREO_TARGET_AVX2
#define VIREO_TARGET_AVX512
#endif

template <class P>
uint16_t rx_baseline(QueuePairBase* p, Packet** o, uint16_t n) noexcept {
    return P::rx_burst(p, o, n);
}
template <class P>
uint16_t tx_baseline(QueuePairBase* p, Packet** o, uint16_t n) noexcept {
    return P::tx_burst(p, o, n);
}
template <class P>
VIREO_TARGET_AVX2 uint16_t rx_avx2(QueuePairBase* p, Packet** o, uint16_t n) noexcept {
    return P::rx_burst(p, o, n);
}
template <class P>
VIREO_TARGET_AVX2 uint16_t tx_avx2(QueuePairBase* p, Packet** o, uint16_t n) noexcept {
    return P::tx_burst(p, o, n);
}
template <class P>
VIREO_TARGET_AVX512 uint16_t rx_avx512(QueuePairBase* p, Packet** o, uint16_t n) noexcept {
    return P::rx_burst(p, o, n);
}
template <class P>
VIREO_TARGET_AVX512 uint16_t tx_avx512(QueuePairBase* p, Packet** o, uint16_t n) noexcept {
    return P::tx_burst(p, o, n);
}

// One data path of queue type Q at level I.
template <class Q, Isa I>
constexpr DataPath path_of(const char* name) {
    using P = NetQueuePair<Q, I>;
    BurstFn rx = rx_baseline<P>, tx = tx_baseline<P>;
    if constexpr (I == Isa::Avx2) {
        rx = rx_avx2<P>;
        tx = tx_avx2<P>;
    } else if constexpr (I == Isa::Avx512) {
        rx = rx_avx512<P>;
        tx = tx_avx512<P>;
    }
    return {name,
            I,
            Q::kPacked,
            Q::kInOrder,
            std::is_same_v<typename Q::Ordering, PlatformOrdering>,
            rx,
            tx,
            [](DmaMemory& m, PacketPool& p, const PairConfig& c) -> std::unique_ptr<QueuePairBase> {
                return std::make_unique<P>(m, p, c);
            },
            [](DmaMemory& m, uint16_t index, bool eidx, bool nd) -> std::unique_ptr<ControlQueueBase> {
                return std::make_unique<NetControlQueue<Q>>(m, index, eidx, nd);
            }};
}

// The eight paths of level I: [packed][in_order][platform ordering].
template <Isa I>
struct Table {
    const DataPath paths[2][2][2] = {
        {{path_of<SplitQueue<false, SmpOrdering>, I>("split/smp"),
          path_of<SplitQueue<false, PlatformOrdering>, I>("split/platform")},
         {path_of<SplitQueue<true, SmpOrdering>, I>("split+in_order/smp"),
          path_of<SplitQueue<true, PlatformOrdering>, I>("split+in_order/platform")}},
        {{path_of<PackedQueue<false, SmpOrdering, I>, I>("packed/smp"),
          path_of<PackedQueue<false, PlatformOrdering, I>, I>("packed/platform")},
         {path_of<PackedQueue<true, SmpOrdering, I>, I>("packed+in_order/smp"),
          path_of<PackedQueue<true, PlatformOrdering, I>, I>("packed+in_order/platform")}},
    };
};

// Each defined in its own data_paths_<isa>.cpp.
const DataPath& baseline_path(bool packed, bool in_order, bool platform_ordering);
const DataPath& avx2_path(bool packed, bool in_order, bool platform_ordering);
const DataPath& avx512_path(bool packed, bool in_order, bool platform_ordering);

}  // namespace vireo::detail
