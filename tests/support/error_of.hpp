// Test helper: the text of the vireo::Error that f throws, or "(no error)".
#pragma once

#include <string>

#include "vireo/base/error.hpp"

namespace vireo::test {

template <class F>
std::string error_of(F f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace vireo::test
