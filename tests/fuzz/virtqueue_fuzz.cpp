// libFuzzer target: the fuzzer plays the device. Its input is a script of
// driver operations (add chains, publish, reap, reset) interleaved with
// arbitrary device writes anywhere a device can write: the used ring or the
// packed descriptors and event areas, and even the driver's own areas.
// Invariants (a violation aborts): every buffer handed back was in flight and
// comes back exactly once (from reap or reset), its length never exceeds what
// was posted as device-writable, and nothing reads or writes out of bounds
// (ASan/UBSan). Built by ci/fuzz with clang: -DVQ_PACKED=0 or 1.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "vireo/pmd/packed_queue.hpp"
#include "vireo/pmd/split_queue.hpp"

namespace {

using namespace vireo;

constexpr uint16_t kSize = VQ_PACKED ? 13 : 16;  // packed: a size that is no power of two
constexpr int kTokens = kSize;

#define CHECK(c)                                                                    \
    do {                                                                            \
        if (!(c)) {                                                                 \
            std::fprintf(stderr, "invariant failed: %s (line %d)\n", #c, __LINE__); \
            std::abort();                                                           \
        }                                                                           \
    } while (0)

struct Input {
    const uint8_t* p;
    size_t n;
    uint8_t u8() { return n ? (n--, *p++) : 0; }
    uint16_t u16() { return static_cast<uint16_t>(u8() | u8() << 8); }
    uint32_t u32() { return u16() | static_cast<uint32_t>(u16()) << 16; }
};

struct Token {
    bool in_flight = false;
    uint32_t wlen = 0;
};

template <class Q>
struct Harness {
    DmaMemory mem{[] {
        DmaMemoryOptions o;
        o.mode = IovaMode::VA;
        o.region_size = 1 << 20;
        o.region.backing = DmaBacking::Memfd4K;
        return o;
    }()};
    static constexpr uint16_t kIndirect = 3;
    Q q{mem, {.size = kSize, .event_idx = true, .notification_data = true, .indirect_max = kIndirect}};
    Token tok[kTokens];
    // Everything the device side may touch, as (va, length) areas: the
    // rings, and the indirect tables (device-readable; a hostile device
    // writes there too, and the driver never reads them back).
    uint8_t* area[4];
    size_t area_len[4];

    Harness() {
        const IovaMap& m = mem.map();
        area[0] = static_cast<uint8_t*>(m.va(q.desc_iova()));
        area_len[0] = 16u * kSize;
        area[1] = static_cast<uint8_t*>(m.va(q.driver_iova()));
        area_len[1] = VQ_PACKED ? 4 : 6 + 2u * kSize;
        area[2] = static_cast<uint8_t*>(m.va(q.device_iova()));
        area_len[2] = VQ_PACKED ? 4 : 6 + 8u * kSize;
        area[3] = static_cast<uint8_t*>(m.va(q.indirect_iova()));
        area_len[3] = 16u * kSize * kIndirect;
    }

    void give_back(void* c, uint32_t len, bool from_reap) {
        auto* t = static_cast<Token*>(c);
        CHECK(t >= tok && t < tok + kTokens);
        CHECK(t->in_flight);
        if (from_reap) CHECK(len <= t->wlen);
        t->in_flight = false;
    }

    void run(Input in) {
        while (in.n) {
            switch (in.u8() % 6) {
            case 0: {  // driver: add chains
                int k = 1 + in.u8() % 4;
                for (int i = 0; i < k; i++) {
                    int free_tok = -1;
                    for (int t = 0; t < kTokens; t++)
                        if (!tok[t].in_flight) {
                            free_tok = t;
                            break;
                        }
                    if (free_tok < 0) break;
                    uint8_t shape = in.u8();
                    uint16_t nseg = 1 + shape % 3;
                    VqSeg s[3];
                    uint32_t wlen = 0;
                    for (uint16_t j = 0; j < nseg; j++) {
                        s[j] = {Iova{0x1000u * (j + 1)}, 1u + in.u8(), ((shape >> (2 + j)) & 1) != 0};
                        wlen += s[j].device_writes ? s[j].len : 0;
                    }
                    if (shape & 0x80) {  // INDIRECT_DESC: device-readable chains only
                        const bool ok = q.add_indirect(s, nseg, &tok[free_tok]);
                        if (wlen != 0) {
                            CHECK(!ok);  // a table never carries a device-writable buffer
                            break;
                        }
                        if (!ok) break;
                    } else if (!q.add(s, nseg, &tok[free_tok])) {
                        break;
                    }
                    tok[free_tok] = {true, wlen};
                }
                q.publish();
                (void)q.kick_needed();
                (void)q.notification_value();
                break;
            }
            case 1:
            case 2: {  // device: write anything into a device-reachable area
                int a = in.u8() % 4;
                size_t width = std::min<size_t>(size_t{1} << (in.u8() % 4), area_len[a]);  // 1, 2, 4, 8 bytes
                size_t off = in.u16() % area_len[a];
                if (off + width > area_len[a]) off = area_len[a] - width;
                uint64_t v = in.u32() | uint64_t{in.u32()} << 32;
                std::memcpy(area[a] + off, &v, width);
                break;
            }
            case 3:
            case 4: {  // driver: reap
                VqUsed u[kSize];
                uint16_t n = q.reap(u, static_cast<uint16_t>(1 + in.u8() % kSize));
                for (uint16_t i = 0; i < n; i++) give_back(u[i].cookie, u[i].len, true);
                break;
            }
            case 5:  // reset (what a port does when needs_reset())
                q.reset([&](void* c) { give_back(c, 0, false); });
                break;
            }
        }
        q.reset([&](void* c) { give_back(c, 0, false); });
        for (const Token& t : tok) CHECK(!t.in_flight);  // nothing leaked
        CHECK(q.free_descs() == kSize);
    }
};

// The packed ring also in its AVX-512 form (batched descriptor writes),
// where this CPU has it: the same device, the same checks.
template <bool InOrder, Isa I = Isa::Baseline>
using Queue = std::conditional_t<VQ_PACKED, PackedQueue<InOrder, SmpOrdering, I>, SplitQueue<InOrder>>;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Harness<Queue<false>>* any_order = new Harness<Queue<false>>;
    static Harness<Queue<true>>* in_order = new Harness<Queue<true>>;
    static Harness<Queue<false, Isa::Avx512>>* any_order_simd = new Harness<Queue<false, Isa::Avx512>>;
    static Harness<Queue<true, Isa::Avx512>>* in_order_simd = new Harness<Queue<true, Isa::Avx512>>;
    static const bool simd = VQ_PACKED && cpu_isa() == Isa::Avx512;
    if (size == 0) return 0;
    Input in{data + 1, size - 1};
    if (simd && (data[0] & 2))
        (data[0] & 1 ? in_order_simd->run(in) : any_order_simd->run(in));
    else if (data[0] & 1)
        in_order->run(in);
    else
        any_order->run(in);
    return 0;
}
