// The avx2 level's eight data paths (data_paths.hpp).
#include "datapath/data_paths.hpp"

namespace vireo::detail {
namespace {
const Table<Isa::Avx2> kPaths;
}  // namespace

const DataPath& avx2_path(bool packed, bool in_order, bool platform_ordering) {
    return kPaths.paths[packed][in_order][platform_ordering];
}

}  // namespace vireo::detail
