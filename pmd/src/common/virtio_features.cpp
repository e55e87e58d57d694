// Feature sets as text (virtio_features.hpp).
#include "vireo/pmd/virtio_features.hpp"

#include <cstdio>

#include "vireo/base/hex.hpp"

namespace vireo {

std::string hex(const virtio::Features& f) {
    if (f.fits_u64()) return hex(f.low64());
    uint64_t high = 0;
    for (unsigned w = virtio::Features::kWords; w-- > 2;) high = high << 32 | f.word(w);
    char low[20];
    std::snprintf(low, sizeof low, "%016llx", static_cast<unsigned long long>(f.low64()));
    return hex(high) + "_" + low;
}

}  // namespace vireo
