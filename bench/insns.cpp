// vireo-bench-insns: instructions per packet of every data path, counted by
// callgrind, so the figure does not drift with the machine (issue 28). Run it
// through bench/insns, which starts valgrind and reads the counts:
//
//   valgrind --tool=callgrind --collect-atstart=no vireo-bench-insns
//
// Collection is on only around the driver's own calls; the device (the
// spec-written test device of tests/support) and the application's work
// (allocating and filling the frames to send, freeing the ones received) run
// with it off. After each path the counts are dumped under its name:
//   vq/<tx|rx>/<kind>         the virtqueue engine alone: add a burst of 32
//                             one-descriptor chains, publish, the kick check;
//                             then reap them (vireo-bench-micro's loop)
//   net/<tx|rx>/<kind>/<isa>  NetPort::tx_burst / rx_burst of 32 frames of
//                             64 bytes (virtio-net header, reclaim, refill),
//                             on each instruction-set level the CPU has (as
//                             valgrind shows it: never AVX-512)
// <kind>: split, split_inorder, packed, packed_inorder. EVENT_IDX on, no
// offloads, mrg_rxbuf=0, notifications suppressed by the device (as a polling
// back end does), ACCESS_PLATFORM negotiated: IOVA = VA.
#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "support/fake_transport.hpp"
#include "support/vq_kinds.hpp"
#include "vireo/pmd/net_port.hpp"

namespace {

using namespace vireo;
using namespace vireo::test;
using namespace virtio::feature;

constexpr uint16_t kBurst = 32;
constexpr uint16_t kRing = 1024;
constexpr uint32_t kFrame = 64;
constexpr int kWarmup = 3 * kRing / kBurst;  // the rings wrapped over a few times before counting
int g_rounds = 256;                          // counted bursts per path (--rounds)

// The driver's calls run between these two; nothing else is counted.
struct Counted {
    Counted() { CALLGRIND_TOGGLE_COLLECT; }
    ~Counted() { CALLGRIND_TOGGLE_COLLECT; }
};
template <class F>
auto counted(bool on, F&& f) {
    if (!on) return f();
    Counted c;
    return f();
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    std::fprintf(stderr, "vireo-bench-insns: %s: %s\n", path.c_str(), what.c_str());
    std::exit(1);
}

void done(const std::string& path, const std::string& ran) {
    CALLGRIND_DUMP_STATS_AT(path.c_str());  // the counts so far, under this name; then zeroed
    std::printf("%s\t%u\t%s\n", path.c_str(), unsigned(g_rounds) * kBurst, ran.c_str());
}

DmaMemoryOptions va_memory() {
    DmaMemoryOptions o;
    o.mode = IovaMode::VA;
    o.region_size = 32 << 20;
    o.region.backing = DmaBacking::Memfd4K;  // no hugepages needed
    return o;
}

// --- the virtqueue engine --------------------------------------------------

template <class K, bool Rx>
void vq_path(const std::string& path) {
    DmaMemory mem(va_memory());
    typename K::Queue q(mem, {.size = kRing, .event_idx = true});
    auto dev = make_device<K>(mem, q, true);
    dev.set_notify(DevNotify::Never);
    std::vector<uint8_t> cookies(kBurst);
    std::vector<VqBuf> bufs(kBurst);
    const Iova base = mem.map().iova(mem.region(0).va());
    for (uint16_t i = 0; i < kBurst; i++) bufs[i] = {base + i * 2048u, 2048, Rx, &cookies[i]};
    VqUsed used[kBurst];
    std::deque<DevBuffer> taken;
    for (int round = 0; round < kWarmup + g_rounds; round++) {
        const bool on = round >= kWarmup;
        counted(on, [&] {
            q.add_burst(bufs.data(), kBurst);
            q.publish();
            return q.kick_needed();
        });
        taken.clear();
        if (dev.take(kBurst, taken) != kBurst) fail(path, "the device did not find the burst");
        for (DevBuffer& b : taken) b.written = Rx ? kFrame : 0;
        dev.complete({taken.begin(), taken.end()});
        uint16_t got = 0;
        while (got < kBurst) {
            const uint16_t n = counted(on, [&] { return q.reap(used + got, uint16_t(kBurst - got)); });
            if (n == 0) fail(path, "a completed burst did not come back");
            got = uint16_t(got + n);
        }
    }
    done(path, K::name());
}

// --- the PMD's burst functions ---------------------------------------------

template <class Device>
struct NetRig {
    DmaMemory mem{va_memory()};
    PacketPool pool{mem, {.count = 4096, .cache_size = 0}};
    FakeTransport* t;
    std::unique_ptr<NetPort> port;
    std::unique_ptr<Device> rxd, txd;

    NetRig(bool packed, bool in_order) {
        const virtio::Features offered = virtio::bit(kVersion1) | virtio::bit(kEventIdx) |
                                         virtio::bit(kAccessPlatform) |
                                         (packed ? virtio::bit(kRingPacked) : virtio::Features{}) |
                                         (in_order ? virtio::bit(kInOrder) : virtio::Features{});
        auto tr = std::make_unique<FakeTransport>(offered);
        tr->max_queue = kRing;
        t = tr.get();
        port = std::make_unique<NetPort>(
            std::move(tr),
            parse_device_string("vhost-user:/fake,mrg_rxbuf=0,ring=" + std::to_string(kRing) +
                                ",packed=" + (packed ? "1" : "0") + ",in_order=" + (in_order ? "1" : "0")),
            mem, pool, 0);
        port->start();
        rxd = device(0);
        txd = device(1);
    }
    std::unique_ptr<Device> device(uint16_t index) {
        const QueueAreas& a = t->areas.at(index);
        auto d = std::make_unique<Device>(mem.map(), a.size, a.desc_iova, a.driver_iova, a.device_iova, true);
        d->set_notify(DevNotify::Never);
        return d;
    }
};

template <class Device>
void net_tx_path(const std::string& path, bool packed, bool in_order) {
    NetRig<Device> r(packed, in_order);
    Packet* p[kBurst];
    std::deque<DevBuffer> taken;
    for (int round = 0; round < kWarmup + g_rounds; round++) {
        if (!r.pool.alloc_bulk(p, kBurst)) fail(path, "the pool ran dry: Tx completions are not reclaimed");
        for (Packet* x : p) std::memset(x->append(kFrame), 0x5a, kFrame);
        const uint16_t sent = counted(round >= kWarmup, [&] { return r.port->tx_burst(0, p, kBurst); });
        if (sent != kBurst) fail(path, "tx_burst took " + std::to_string(sent) + " of " + std::to_string(kBurst));
        taken.clear();
        if (r.txd->take(kBurst, taken) != kBurst) fail(path, "the device did not find the burst");
        r.txd->complete({taken.begin(), taken.end()});
    }
    done(path, r.port->data_path());
}

template <class Device>
void net_rx_path(const std::string& path, bool packed, bool in_order) {
    NetRig<Device> r(packed, in_order);
    Packet* p[kBurst];
    std::deque<DevBuffer> taken;  // the buffers the port posted, oldest first
    for (int round = 0; round < kWarmup + g_rounds; round++) {
        r.rxd->take(kRing, taken);  // the refills since the last round
        if (taken.size() < kBurst) fail(path, "the port posted only " + std::to_string(taken.size()) + " buffers");
        std::vector<DevBuffer> done_now(taken.begin(), taken.begin() + kBurst);
        taken.erase(taken.begin(), taken.begin() + kBurst);
        for (DevBuffer& b : done_now) {
            std::memset(b.segs[0].va, 0, 12);  // virtio 1.2 5.1.6: the header, no flags, num_buffers unused
            std::memset(b.segs[0].va + 12, 0xa5, kFrame);
            b.written = 12 + kFrame;
        }
        r.rxd->complete(done_now);
        const uint16_t got = counted(round >= kWarmup, [&] { return r.port->rx_burst(0, p, kBurst); });
        if (got != kBurst) fail(path, "rx_burst returned " + std::to_string(got) + " of " + std::to_string(kBurst));
        if (p[0]->pkt_len != kFrame) fail(path, "a frame of " + std::to_string(p[0]->pkt_len) + " bytes came back");
        PacketPool::free_bulk(p, kBurst);
    }
    done(path, r.port->data_path());
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            g_rounds = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr,
                         "usage: valgrind --tool=callgrind --collect-atstart=no vireo-bench-insns [--rounds N]\n"
                         "(bench/insns runs it and reads the counts)\n");
            return 2;
        }
    }
    if (RUNNING_ON_VALGRIND == 0)
        std::fprintf(stderr, "vireo-bench-insns: not under valgrind: the paths run, nothing is counted\n");
    // One line per path on stdout: name, packets counted, what ran.
    vq_path<VqKind<false, false>, false>("vq/tx/split");
    vq_path<VqKind<false, true>, false>("vq/tx/split_inorder");
    vq_path<VqKind<true, false>, false>("vq/tx/packed");
    vq_path<VqKind<true, true>, false>("vq/tx/packed_inorder");
    vq_path<VqKind<false, false>, true>("vq/rx/split");
    vq_path<VqKind<false, true>, true>("vq/rx/split_inorder");
    vq_path<VqKind<true, false>, true>("vq/rx/packed");
    vq_path<VqKind<true, true>, true>("vq/rx/packed_inorder");
    for (Isa isa : {Isa::Baseline, Isa::Avx2, Isa::Avx512}) {
        if (cpu_isa() < isa) break;
        set_isa_cap(isa);
        const std::string level(to_string(isa));
        for (bool packed : {false, true})
            for (bool in_order : {false, true}) {
                const std::string kind = std::string(packed ? "packed" : "split") + (in_order ? "_inorder" : "");
                if (packed) {
                    net_tx_path<PackedDevice>("net/tx/" + kind + "/" + level, packed, in_order);
                    net_rx_path<PackedDevice>("net/rx/" + kind + "/" + level, packed, in_order);
                } else {
                    net_tx_path<SplitDevice>("net/tx/" + kind + "/" + level, packed, in_order);
                    net_rx_path<SplitDevice>("net/rx/" + kind + "/" + level, packed, in_order);
                }
            }
    }
    return 0;
}
