// vireo-fwd's look for other processes' pollers (apps/vireo-fwd/cpu_claims):
// three busy threads pinned to one CPU each get a third of it, and are still
// pollers; a pinned thread that sleeps is not one.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cpu_claims.hpp"

namespace {

// A child pinned to `cpu` that spins (or sleeps) until killed.
pid_t pinned_child(unsigned cpu, bool spin) {
    const pid_t pid = ::fork();
    if (pid != 0) return pid;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::sched_setaffinity(0, sizeof set, &set);
    volatile unsigned long n = 0;
    for (;;) {
        if (spin)
            n = n + 1;
        else
            ::pause();
    }
}

std::string allowed(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("Cpus_allowed_list:", 0) == 0) return line.substr(line.find_first_not_of(" \t", 18));
    return "";
}

TEST(CpuClaims, PollersSharingACpuAreFoundAndSleepersAreNot) {
    const unsigned cpu = std::thread::hardware_concurrency() - 1;
    std::vector<pid_t> spinning, all;
    for (int i = 0; i < 3; i++) spinning.push_back(pinned_child(cpu, true));
    const pid_t sleeper = pinned_child(cpu, false);
    all = spinning;
    all.push_back(sleeper);
    // The event: every child has pinned itself.
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (pid_t p : all)
        while (allowed(p) != std::to_string(cpu) && std::chrono::steady_clock::now() < end)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const std::vector<vireo::fwd::CpuClaim> claims = vireo::fwd::busy_pinned_threads();
    for (pid_t p : all) ::kill(p, SIGKILL);
    for (pid_t p : all) ::waitpid(p, nullptr, 0);
    auto claimed = [&](pid_t p) {
        for (const auto& c : claims)
            if (c.pid == p && c.cpu == cpu) return true;
        return false;
    };
    for (pid_t p : spinning) EXPECT_TRUE(claimed(p)) << "spinning child " << p << " on CPU " << cpu;
    EXPECT_FALSE(claimed(sleeper)) << "a pinned thread that sleeps does not poll";
}

}  // namespace
