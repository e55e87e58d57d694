#include "cpu_claims.hpp"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

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

// What /proc says of a thread at one instant: the one CPU it may run on (-1:
// Cpus_allowed_list of "0-3" or "1,3", not "3"), its state and how often it
// has given up the CPU of its own accord.
struct ThreadState {
    int cpu = -1;
    char state = '?';
    unsigned long voluntary = 0;
    bool kernel = false;
};

ThreadState read_thread(const std::string& task) {
    ThreadState t;
    std::ifstream f(task + "/status");
    for (std::string line; std::getline(f, line);) {
        auto value = [&](size_t at) {
            std::string v = line.substr(at);
            v.erase(0, v.find_first_not_of(" \t"));
            return v;
        };
        if (line.rfind("State:", 0) == 0) {
            const std::string v = value(6);
            if (!v.empty()) t.state = v[0];
        } else if (line.rfind("Cpus_allowed_list:", 0) == 0) {
            const std::string v = value(18);
            if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos) t.cpu = std::atoi(v.c_str());
        } else if (line.rfind("voluntary_ctxt_switches:", 0) == 0) {
            t.voluntary = std::strtoul(value(24).c_str(), nullptr, 10);
        }
    }
    const std::string stat = first_line(task + "/stat");
    if (const auto close = stat.rfind(')'); close != std::string::npos) {
        std::istringstream fields(stat.substr(close + 2));
        std::string state;
        unsigned long v[6] = {};  // ppid pgrp session tty tpgid flags
        fields >> state;
        for (unsigned long& x : v) fields >> x;
        t.kernel = (v[5] & kPfKthread) != 0;
    }
    return t;
}

using Snapshot = std::map<std::pair<std::string, std::string>, ThreadState>;  // (pid, tid)

Snapshot pinned_threads(const std::string& self) {
    Snapshot out;
    for (const std::string& pid : numeric_entries("/proc")) {
        if (pid == self) continue;
        for (const std::string& tid : numeric_entries("/proc/" + pid + "/task")) {
            const ThreadState t = read_thread("/proc/" + pid + "/task/" + tid);
            if (t.cpu >= 0 && !t.kernel) out[{pid, tid}] = t;
        }
    }
    return out;
}

}  // namespace

// A poller never blocks: over the window it stays runnable ('R') and makes no
// voluntary context switch, however many other threads share its CPU (then
// it is preempted, which is an involuntary switch). A share of CPU time would
// not do: three pollers on one CPU each get a third of it.
std::vector<CpuClaim> busy_pinned_threads() {
    std::vector<CpuClaim> out;
    const std::string self = std::to_string(::getpid());
    const Snapshot before = pinned_threads(self);
    if (before.empty()) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (const auto& [id, now] : pinned_threads(self)) {
        const auto it = before.find(id);
        if (it == before.end()) continue;
        const ThreadState& then = it->second;
        if (then.cpu != now.cpu || then.state != 'R' || now.state != 'R' || then.voluntary != now.voluntary) continue;
        const std::string base = "/proc/" + id.first;
        out.push_back({static_cast<unsigned>(now.cpu), static_cast<pid_t>(std::atoi(id.first.c_str())),
                       first_line(base + "/comm"), first_line(base + "/task/" + id.second + "/comm")});
    }
    return out;
}

std::string describe(const CpuClaim& c) {
    return c.process + " thread " + c.thread + " (pid " + std::to_string(c.pid) + ")";
}

}  // namespace vireo::fwd
