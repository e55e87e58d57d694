// vireo-bench-copy-ceiling: the best dma=window can do on this machine,
// measured without a ring, a back end or vireo (issue 16, docs/perf.md).
//
// A producer thread on CPU B plays the back end of an Rx queue: it copies
// frames of SIZE bytes from one hot buffer of its own into a ring of RING
// slots and publishes them in bursts of 32. The consumer on CPU A plays
// vireo: it takes what was published and
//   direct: hands the slots straight back (vireo-fwd rxonly with direct DMA
//           never reads a payload byte: it frees the buffer);
//   window: first copies every frame out into one of its own buffers (a few,
//           reused, as the pool's thread cache hands them out), prefetching
//           as dma_window.cpp does, then hands the slots back.
// Nothing else happens, so window / direct here is the ceiling of the
// window's ratio in bench/throughput's rx rows: the copies' cache lines come
// from the other CPU, and the producer's next writes take them back.
//
//   vireo-bench-copy-ceiling [--size=N] [--ring=N] [--ms=N] [--rounds=N] [--cpus=A,B]
// One line per measurement: "direct|window SIZE Mpps"; then the median ratio.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr uint32_t kBurst = 32;
constexpr uint32_t kSlotBytes = 2048 + 128;  // a slot: headroom and data room, as the pool lays them out

struct alignas(64) Index {
    std::atomic<uint64_t> v{0};
};

struct Shared {
    Index tail;  // frames published by the producer
    Index head;  // frames handed back by the consumer
    Index stop;
    std::vector<uint8_t> slots;
    uint32_t ring = 256, size = 1518;
};

bool pin(unsigned cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s) == 0;
}

void produce(Shared& sh, unsigned cpu) {
    pin(cpu);
    alignas(64) static uint8_t frame[kSlotBytes];
    std::memset(frame, 0x5a, sizeof frame);
    uint64_t tail = 0;
    while (sh.stop.v.load(std::memory_order_relaxed) == 0) {
        if (tail + kBurst - sh.head.v.load(std::memory_order_acquire) > sh.ring) continue;  // ring full
        for (uint32_t i = 0; i < kBurst; i++) {
            frame[0] = static_cast<uint8_t>(tail + i);
            std::memcpy(&sh.slots[((tail + i) % sh.ring) * kSlotBytes], frame, sh.size);
        }
        tail += kBurst;
        sh.tail.v.store(tail, std::memory_order_release);
    }
}

void prefetch(const uint8_t* p, uint32_t len, unsigned lines) {
    for (unsigned l = 0; l < std::min(lines, (len + 63u) / 64u); l++) __builtin_prefetch(p + 64 * l, 0);
}

// Frames per second the consumer took in `ms` milliseconds.
double measure(Shared& sh, bool copy, unsigned cpu_a, unsigned cpu_b, unsigned ms) {
    sh.tail.v = 0;
    sh.head.v = 0;
    sh.stop.v = 0;
    std::thread producer(produce, std::ref(sh), cpu_b);
    pin(cpu_a);
    alignas(64) static uint8_t own[kBurst][kSlotBytes];
    uint64_t head = 0, sum = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const auto end = t0 + std::chrono::milliseconds(ms);
    auto now = t0;
    while (now < end) {
        const uint64_t tail = sh.tail.v.load(std::memory_order_acquire);
        const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(tail - head, kBurst));
        if (copy && n != 0) {
            const uint8_t* in[kBurst];
            for (uint32_t i = 0; i < n; i++) {
                in[i] = &sh.slots[((head + i) % sh.ring) * kSlotBytes];
                prefetch(in[i], sh.size, 2);
            }
            for (uint32_t i = 0; i < n; i++) {
                if (i + 1 < n) prefetch(in[i + 1], sh.size, 32);
                std::memcpy(own[i], in[i], sh.size);
                sum += own[i][0];
            }
        }
        head += n;
        sh.head.v.store(head, std::memory_order_release);
        if ((head & 1023) < kBurst) now = std::chrono::steady_clock::now();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sh.stop.v = 1;
    producer.join();
    if (sum == 1) std::fprintf(stderr, " ");  // keeps the copies
    return static_cast<double>(head) / s;
}

unsigned arg(const std::string& a, const char* key, unsigned dflt) {
    const std::string k = std::string("--") + key + "=";
    return a.rfind(k, 0) == 0 ? static_cast<unsigned>(std::strtoul(a.c_str() + k.size(), nullptr, 10)) : dflt;
}

}  // namespace

int main(int argc, char** argv) {
    Shared sh;
    unsigned ms = 500, rounds = 5, cpu_a = 0, cpu_b = 1;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (a.rfind("--cpus=", 0) == 0) {
            if (std::sscanf(a.c_str() + 7, "%u,%u", &cpu_a, &cpu_b) != 2) {
                std::fprintf(stderr, "vireo-bench-copy-ceiling: --cpus=A,B takes two CPU numbers\n");
                return 2;
            }
            continue;
        }
        const unsigned size = arg(a, "size", 0), ring = arg(a, "ring", 0), m = arg(a, "ms", 0), r = arg(a, "rounds", 0);
        if (size + ring + m + r == 0) {
            std::fprintf(stderr,
                         "usage: vireo-bench-copy-ceiling [--size=N] [--ring=N] [--ms=N] [--rounds=N] [--cpus=A,B]\n");
            return 2;
        }
        if (size) sh.size = std::min(size, kSlotBytes);
        if (ring) sh.ring = std::max(ring, 2 * kBurst);
        if (m) ms = m;
        if (r) rounds = r;
    }
    sh.slots.assign(size_t{sh.ring} * kSlotBytes, 0);
    std::vector<double> ratios;
    for (unsigned r = 0; r < rounds; r++) {  // A B A B: the machine changes state within minutes
        const double d = measure(sh, false, cpu_a, cpu_b, ms);
        const double w = measure(sh, true, cpu_a, cpu_b, ms);
        std::printf("direct %u %.2f Mpps\nwindow %u %.2f Mpps\n", sh.size, d / 1e6, sh.size, w / 1e6);
        ratios.push_back(w / d);
    }
    std::sort(ratios.begin(), ratios.end());
    std::printf("window/direct %u %.2f (median of %u rounds)\n", sh.size, ratios[ratios.size() / 2], rounds);
    return 0;
}
