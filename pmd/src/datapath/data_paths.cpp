// The one place that chooses a compiled data path (data_paths.hpp): from the
// negotiated features and the instruction set (data_path_isa(): the CPU's,
// capped by VIREO_ISA).
#include "datapath/data_paths.hpp"

namespace vireo::detail {

const DataPath& choose_data_path(bool packed, bool in_order, bool platform_ordering, Isa isa) {
    switch (isa) {
    case Isa::Avx512: return avx512_path(packed, in_order, platform_ordering);
    case Isa::Avx2: return avx2_path(packed, in_order, platform_ordering);
    case Isa::Baseline: break;
    }
    return baseline_path(packed, in_order, platform_ordering);
}

}  // namespace vireo::detail
