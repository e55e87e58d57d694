// The baseline level's eight data paths (data_paths.hpp).
#include "datapath/data_paths.hpp"

namespace vireo::detail {
namespace {
const Table<Isa::Baseline> kPaths;
}  // namespace

const DataPath& baseline_path(bool packed, bool in_order, bool platform_ordering) {
    return kPaths.paths[packed][in_order][platform_ordering];
}

}  // namespace vireo::detail
