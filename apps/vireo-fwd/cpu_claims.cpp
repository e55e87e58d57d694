#include "cpu_claims.hpp"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace vireo::fwd {
namespace {

constexpr unsigned long kPfKthread = 0x00200000;  // include/linux/sched.h: a kernel thread

std::string first_line(const std::string& path) {
    std::ifstream f(path);
    std::string s;
    std::getline(f, s);
    return s;
}

std::vector<std::string> numeric_entries(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return out;
    while (dirent* e = ::readdir(d))
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9') out.emplace_back(e->d_name);
    ::closedir(d);
    return out;
}

// The one CPU a thread may run on, or -1 (Cpus_allowed_list of "3", not "0-3" or "1,3").
int single_cpu(const std::string& status_path) {
    std::ifstream f(status_path);
    for (std::string line; std::getline(f, line);) {
        if (line.rfind("Cpus_allowed_list:", 0) != 0) continue;
        std::string v = line.substr(18);
        v.erase(0, v.find_first_not_of(" \t"));
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return -1;
        return std::atoi(v.c_str());
    }
    return -1;
}

}  // namespace

std::vector<CpuClaim> busy_pinned_threads() {
    std::vector<CpuClaim> out;
    const long hz = ::sysconf(_SC_CLK_TCK);
    double uptime = 0;
    {
        std::ifstream f("/proc/uptime");
        f >> uptime;
    }
    if (hz <= 0 || uptime <= 0) return out;
    const std::string self = std::to_string(::getpid());
    for (const std::string& pid : numeric_entries("/proc")) {
        if (pid == self) continue;
        const std::string base = "/proc/" + pid;
        for (const std::string& tid : numeric_entries(base + "/task")) {
            const std::string t = base + "/task/" + tid;
            const int cpu = single_cpu(t + "/status");
            if (cpu < 0) continue;
            const std::string stat = first_line(t + "/stat");
            const auto close = stat.rfind(')');
            if (close == std::string::npos) continue;
            std::istringstream fields(stat.substr(close + 2));
            // Fields from 3 (state): state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
            // utime stime cutime cstime priority nice threads itrealvalue starttime
            std::string state;
            unsigned long v[19] = {};
            fields >> state;
            for (unsigned long& x : v) fields >> x;
            if (!fields) continue;
            const unsigned long flags = v[5], utime = v[10], stime = v[11], start = v[18];
            if (flags & kPfKthread) continue;
            const double age = uptime - static_cast<double>(start) / static_cast<double>(hz);
            const double busy = static_cast<double>(utime + stime) / static_cast<double>(hz);
            if (age < 0.05 || busy < 0.5 * age) continue;
            out.push_back({static_cast<unsigned>(cpu), static_cast<pid_t>(std::atoi(pid.c_str())),
                           first_line(base + "/comm"), first_line(t + "/comm")});
        }
    }
    return out;
}

std::string describe(const CpuClaim& c) {
    return c.process + " thread " + c.thread + " (pid " + std::to_string(c.pid) + ")";
}

}  // namespace vireo::fwd
