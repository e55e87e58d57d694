#include "vireo/base/error.hpp"

#include <cstdio>
#include <cstring>

#include "vireo/base/hex.hpp"

namespace vireo {

void throw_sys_error(const std::string& what, int err, const std::string& hint) {
    std::string msg = what;
    if (err != 0) {
        msg += ": ";
        msg += std::strerror(err);
    }
    if (!hint.empty()) {
        msg += ". ";
        msg += hint;
    }
    throw Error(msg, err);
}

std::string hex(uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

}  // namespace vireo
