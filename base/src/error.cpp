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

std::string mac_text(const std::array<uint8_t, 6>& m, bool upper) {
    char b[18];
    std::snprintf(b, sizeof b, upper ? "%02X:%02X:%02X:%02X:%02X:%02X" : "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1],
                  m[2], m[3], m[4], m[5]);
    return b;
}

}  // namespace vireo
