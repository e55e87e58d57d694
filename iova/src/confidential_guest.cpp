// Is this process in a confidential guest? Only what the kernel shows an
// unprivileged process, each marker unambiguous for a guest (a host with the
// capability shows none of them):
//   Intel TDX: the /proc/cpuinfo flag tdx_guest (Linux >= 5.19), /dev/tdx_guest
//              (>= 6.2), and CPUID leaf 0x21's "IntelTDX    " signature;
//   AMD SEV-SNP: the sev-guest platform device (/dev/sev-guest,
//              /sys/devices/platform/sev-guest, >= 5.19), and
//              /sys/devices/system/cpu/sev (>= 6.11).
// Not detectable without privilege: plain SEV and SEV-ES guests (their state
// is in MSR 0xc0010131, or in dmesg); the cpuinfo flags sev / sev_es / sev_snp
// describe a host's capability, not a guest. Such a guest names the window
// itself: vireo-fwd --dma=window, or dma=window per device.
#include <cpuid.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "vireo/iova/iova_policy.hpp"

namespace vireo {
namespace {

bool cpuinfo_has_flag(const std::string& root, const std::string& flag) {
    std::ifstream in(root + "/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("flags", 0) != 0) continue;
        std::istringstream words(line.substr(line.find(':') == std::string::npos ? 0 : line.find(':') + 1));
        std::string w;
        while (words >> w)
            if (w == flag) return true;
        return false;  // every CPU lists the same flags
    }
    return false;
}

bool cpuid_says_tdx() {
#if defined(__x86_64__)
    if (__get_cpuid_max(0, nullptr) < 0x21) return false;
    unsigned a, b, c, d;
    __cpuid_count(0x21, 0, a, b, c, d);
    char sig[13];
    std::memcpy(sig, &b, 4);
    std::memcpy(sig + 4, &d, 4);
    std::memcpy(sig + 8, &c, 4);
    sig[12] = 0;
    return std::strcmp(sig, "IntelTDX    ") == 0;
#else
    return false;
#endif
}

}  // namespace

ConfidentialGuest probe_confidential_guest(const std::string& root) {
    std::error_code ec;
    auto exists = [&](const char* p) { return std::filesystem::exists(root + p, ec); };
    if (cpuinfo_has_flag(root, "tdx_guest")) return {true, "Intel TDX: /proc/cpuinfo flag tdx_guest"};
    if (exists("/dev/tdx_guest")) return {true, "Intel TDX: /dev/tdx_guest"};
    if (exists("/dev/sev-guest") || exists("/sys/devices/platform/sev-guest"))
        return {true, "AMD SEV-SNP: the sev-guest device"};
    if (exists("/sys/devices/system/cpu/sev")) return {true, "AMD SEV-SNP: /sys/devices/system/cpu/sev"};
    if (root.empty() && cpuid_says_tdx()) return {true, "Intel TDX: CPUID leaf 0x21"};
    return {};
}

const ConfidentialGuest& confidential_guest() {
    static const ConfidentialGuest g = probe_confidential_guest("");
    return g;
}

}  // namespace vireo
