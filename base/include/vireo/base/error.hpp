// vireo: errors on the setup (slow) path.
//
// Every error names what failed, why (errno text when there is one) and what to
// change. The data path never throws; it counts.
#pragma once

#include <stdexcept>
#include <string>

namespace vireo {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what, int err = 0) : std::runtime_error(what), errno_(err) {}
    // errno captured when the error was raised, 0 when not a system call failure.
    int sys_errno() const noexcept { return errno_; }

private:
    int errno_;
};

// Builds "<what>: <strerror(err)>. <hint>" and throws vireo::Error.
[[noreturn]] void throw_sys_error(const std::string& what, int err, const std::string& hint = {});

}  // namespace vireo
