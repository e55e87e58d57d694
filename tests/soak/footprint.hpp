// A process's footprint as /proc shows it, for the soak's "flat" verdict.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace vireo::soak {

struct Footprint {
    double t = 0;             // seconds since traffic started
    uint64_t rss_kb = 0;      // VmRSS: resident ordinary memory
    uint64_t hugetlb_kb = 0;  // HugetlbPages: the DMA memory on hugepages (not in VmRSS)
    uint64_t fds = 0;         // entries in /proc/PID/fd
    bool valid = false;       // the process was there to read
};

inline Footprint read_footprint(pid_t pid, double t) {
    Footprint f;
    f.t = t;
    const std::string dir = "/proc/" + std::to_string(pid);
    std::ifstream status(dir + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmRSS:", 0) == 0) f.rss_kb = std::stoull(line.substr(6)), f.valid = true;
        if (line.rfind("HugetlbPages:", 0) == 0) f.hugetlb_kb = std::stoull(line.substr(13));
    }
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(dir + "/fd", ec); !ec && it != std::filesystem::end(it);
         it.increment(ec))
        f.fds++;
    return f;
}

// Flat: the same descriptors at every sample, hugepages unchanged, and the
// RSS of the second half no higher than the first half's peak plus `slack_kb`
// (allocator pages that come and go with each reconnection; a leak grows).
struct FlatVerdict {
    bool flat = false;
    std::string why;  // what was not flat
    int64_t rss_growth_kb = 0;
};

inline FlatVerdict judge(const std::vector<Footprint>& s, uint64_t slack_kb) {
    FlatVerdict v;
    if (s.size() < 4) {
        v.why = "fewer than 4 samples";
        return v;
    }
    uint64_t first_peak = 0, second_peak = 0;
    for (size_t i = 0; i < s.size(); i++) {
        uint64_t& peak = i < s.size() / 2 ? first_peak : second_peak;
        peak = std::max(peak, s[i].rss_kb);
        if (!s[i].valid && v.why.empty()) v.why = "the process was gone at " + std::to_string(s[i].t) + " s";
        if (s[i].fds != s[0].fds && v.why.empty())
            v.why = "open descriptors " + std::to_string(s[0].fds) + " -> " + std::to_string(s[i].fds) + " at " +
                    std::to_string(static_cast<int>(s[i].t)) + " s";
        if (s[i].hugetlb_kb != s[0].hugetlb_kb && v.why.empty())
            v.why = "hugepages " + std::to_string(s[0].hugetlb_kb) + " -> " + std::to_string(s[i].hugetlb_kb) + " kB";
    }
    v.rss_growth_kb = static_cast<int64_t>(second_peak) - static_cast<int64_t>(first_peak);
    if (v.why.empty() && v.rss_growth_kb > static_cast<int64_t>(slack_kb))
        v.why = "RSS peak grew by " + std::to_string(v.rss_growth_kb) + " kB from the first half to the second";
    v.flat = v.why.empty();
    return v;
}

}  // namespace vireo::soak
