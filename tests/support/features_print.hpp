// Test helper: GoogleTest prints a feature set as vireo does ("0x..."), found by ADL.
#pragma once

#include <ostream>

#include "vireo/pmd/virtio_features.hpp"

namespace vireo::virtio {
inline void PrintTo(const Features& f, std::ostream* os) { *os << hex(f); }
}  // namespace vireo::virtio
