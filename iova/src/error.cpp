#include "vireo/iova/error.hpp"

#include <cstring>

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

}  // namespace vireo
