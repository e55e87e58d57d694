// vireo-bench-probe: this machine's state, in one number. Two threads pinned
// to two CPUs hand one cache line back and forth for about 0.1 s; the median
// round trip in ns is printed. On the 2-CPU machines this project measures on,
// it reads ~55 ns in one state and ~320 ns in the other, and every ring
// benchmark follows: bench/throughput runs this before every run and compares
// only pairs whose probes agree.
//
//   vireo-bench-probe [CPU_A CPU_B]      (default 0 1)
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

alignas(64) std::atomic<uint64_t> g_line{0};
alignas(64) std::atomic<bool> g_done{false};

bool pin(unsigned cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s) == 0;
}

}  // namespace

int main(int argc, char** argv) {
    const unsigned a = argc > 2 ? static_cast<unsigned>(std::atoi(argv[1])) : 0;
    const unsigned b = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 1;
    constexpr uint64_t kChunk = 2048;  // round trips per timed chunk
    std::thread peer([b] {
        if (!pin(b)) std::fprintf(stderr, "vireo-bench-probe: cannot pin to CPU %u\n", b);
        for (uint64_t v = 1;; v += 2) {
            uint64_t x;
            while ((x = g_line.load(std::memory_order_acquire)) < v)
                if (g_done.load(std::memory_order_relaxed)) return;
            g_line.store(v + 1, std::memory_order_release);
        }
    });
    if (!pin(a)) {
        std::fprintf(stderr, "vireo-bench-probe: cannot pin to CPU %u\n", a);
        g_done = true;
        peer.join();
        return 2;
    }
    std::vector<double> chunks;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
    uint64_t v = 0;
    while (std::chrono::steady_clock::now() < end || chunks.size() < 8) {
        const auto t0 = std::chrono::steady_clock::now();
        for (uint64_t i = 0; i < kChunk; i++) {
            g_line.store(++v, std::memory_order_release);
            ++v;
            while (g_line.load(std::memory_order_acquire) != v) {
            }
        }
        chunks.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
                         kChunk);
    }
    g_done = true;
    peer.join();
    std::sort(chunks.begin(), chunks.end());
    std::printf("%.1f\n", chunks[chunks.size() / 2]);
    return 0;
}
