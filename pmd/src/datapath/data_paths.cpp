// The one place that chooses what a port runs (queue_pair.hpp): a compiled
// data path (data_paths.hpp) from the negotiated features and the instruction
// set (data_path_isa(): the CPU's, capped by VIREO_ISA), and with dma=window
// the window's pair around it (dma_window.hpp).
#include "datapath/data_paths.hpp"

#include "datapath/dma_window.hpp"

namespace vireo::detail {

namespace {
const DataPath& compiled_path(bool packed, bool in_order, bool platform_ordering, Isa isa) {
    switch (isa) {
    case Isa::Avx512: return avx512_path(packed, in_order, platform_ordering);
    case Isa::Avx2: return avx2_path(packed, in_order, platform_ordering);
    case Isa::Baseline: break;
    }
    return baseline_path(packed, in_order, platform_ordering);
}
}  // namespace

PortDataPath choose_data_path(bool packed, bool in_order, bool platform_ordering, Isa isa, DmaWindow* window) {
    const DataPath& p = compiled_path(packed, in_order, platform_ordering, isa);
    PortDataPath r;
    r.rings = &p;
    r.window = window;
    r.rx = window != nullptr ? WindowPair::rx : p.rx;
    r.tx = window != nullptr ? WindowPair::tx : p.tx;
    r.name = std::string(p.name) + "/" + std::string(to_string(p.isa)) + (window != nullptr ? "/window" : "");
    return r;
}

std::unique_ptr<QueuePairBase> PortDataPath::make_pair(DmaMemory& app, PacketPool& pool, const PairConfig& c) const {
    if (window != nullptr) return std::make_unique<WindowPair>(*rings, window->memory(), pool, c);
    return rings->make_pair(app, pool, c);
}

}  // namespace vireo::detail
