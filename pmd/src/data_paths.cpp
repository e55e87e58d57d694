// The compiled data paths: split or packed, IN_ORDER or not, SMP or platform
// memory ordering (VIRTIO_F_ORDER_PLATFORM). Each is NetQueuePair<Q> for one
// queue type; choose_data_path() picks one from the negotiated features.
#include "net_ctrl_queue.hpp"
#include "net_queue_pair.hpp"
#include "queue_pair.hpp"
#include "vireo/pmd/packed_queue.hpp"
#include "vireo/pmd/split_queue.hpp"

namespace vireo::detail {
namespace {

template <class Q>
constexpr DataPath path_of(const char* name) {
    using P = NetQueuePair<Q>;
    return {name,
            Q::kPacked,
            Q::kInOrder,
            std::is_same_v<typename Q::Ordering, PlatformOrdering>,
            &P::rx_burst,
            &P::tx_burst,
            [](DmaMemory& m, PacketPool& p, const PairConfig& c) -> std::unique_ptr<QueuePairBase> {
                return std::make_unique<P>(m, p, c);
            },
            [](DmaMemory& m, uint16_t index, bool eidx, bool nd) -> std::unique_ptr<ControlQueueBase> {
                return std::make_unique<NetControlQueue<Q>>(m, index, eidx, nd);
            }};
}

// [packed][in_order][platform ordering]
const DataPath kPaths[2][2][2] = {
    {{path_of<SplitQueue<false, SmpOrdering>>("split/smp"),
      path_of<SplitQueue<false, PlatformOrdering>>("split/platform")},
     {path_of<SplitQueue<true, SmpOrdering>>("split+in_order/smp"),
      path_of<SplitQueue<true, PlatformOrdering>>("split+in_order/platform")}},
    {{path_of<PackedQueue<false, SmpOrdering>>("packed/smp"),
      path_of<PackedQueue<false, PlatformOrdering>>("packed/platform")},
     {path_of<PackedQueue<true, SmpOrdering>>("packed+in_order/smp"),
      path_of<PackedQueue<true, PlatformOrdering>>("packed+in_order/platform")}},
};

}  // namespace

const DataPath& choose_data_path(bool packed, bool in_order, bool platform_ordering) {
    return kPaths[packed][in_order][platform_ordering];
}

}  // namespace vireo::detail
