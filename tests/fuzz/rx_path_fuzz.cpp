// libFuzzer target: the fuzzer plays the device on a port's Rx path. It
// completes Rx buffers with whatever it likes in the virtio-net header
// (flags, gso fields, num_buffers) and the used length, in any order (split)
// or in ring order (packed), and the port assembles frames (mergeable
// buffers: a frame spans num_buffers buffers, 5.1.6.4.1) and delivers them.
// Invariants (a violation aborts): a delivered frame's segments add up to its
// pkt_len, there are nb_segs of them, none is longer than its buffer, the
// port's counters match what was delivered, and after stop() every buffer is
// back in the pool. Each input picks in-order or not, the baseline or best
// instruction set, and direct or window mode (dma=window: the device fills
// bounce slots and frames are copied out; ASan checks every copy stays in
// bounds). In window mode the device may also write anything anywhere in its
// window outside the Rx ring, at any moment (slots it holds, slots vireo
// holds, the Tx ring): vireo keeps nothing there it would follow. Built by
// ci/fuzz with -DRX_PACKED=0 or 1.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "support/device_model.hpp"
#include "support/fake_transport.hpp"
#include "vireo/base/error.hpp"
#include "vireo/pmd/isa.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/pmd/virtio_spec.hpp"

#define CHECK(c)                                                                    \
    do {                                                                            \
        if (!(c)) {                                                                 \
            std::fprintf(stderr, "invariant failed: %s (line %d)\n", #c, __LINE__); \
            std::abort();                                                           \
        }                                                                           \
    } while (0)

namespace {

using namespace vireo;
using namespace vireo::test;
using namespace vireo::virtio::feature;

struct Input {
    const uint8_t* p;
    size_t n;
    uint8_t u8() { return n ? (n--, *p++) : 0; }
    uint16_t u16() { return static_cast<uint16_t>(u8() | u8() << 8); }
};

constexpr uint16_t kRing = 16;
constexpr uint16_t kRoom = 256;  // small buffers: frames span several

// One port per variant for the whole run (DMA memory is never freed, so each
// execution starts and stops the same port instead of making a new one).
struct Rig {
    DmaMemory mem{[] {
        DmaMemoryOptions o;
        o.mode = IovaMode::PA;
        o.pa_source = PaSource::Linear;
        o.region_size = 4 << 20;
        o.region.backing = DmaBacking::Memfd4K;
        return o;
    }()};
    // Not a power of two: the free ring then has room for a duplicate, so a
    // double free shows as in_use() underflowing instead of being dropped.
    PacketPool pool{mem, {.count = 250, .data_room = kRoom, .cache_size = 0}};
    FakeTransport* t = nullptr;
    std::unique_ptr<NetPort> port;

    Rig(bool in_order, bool window) {
        const virtio::Features offered = virtio::bit(kVersion1) | virtio::bit(kNetMrgRxbuf) |
                                         virtio::bit(kNetGuestCsum) |
                                         (RX_PACKED ? virtio::bit(kRingPacked) : virtio::Features{}) |
                                         (in_order ? virtio::bit(kInOrder) : virtio::Features{});
        auto tr = std::make_unique<FakeTransport>(offered);
        t = tr.get();
        const std::string dev = std::string("vhost-user:/fuzz,ring=") + std::to_string(kRing) +
                                (RX_PACKED ? ",packed=1,in_order=1" : ",in_order=1") + (window ? ",dma=window" : "");
        port = std::make_unique<NetPort>(std::move(tr), parse_device_string(dev), mem, pool, 0);
    }
};

// Each rig's port starts on the baseline burst functions or on the best
// this CPU has (AVX-512: batched descriptor writes on refill), and in direct
// or window mode (the device fills bounce slots; frames are copied out), by
// the input.
Rig& rig(uint8_t variant) {
    static Rig* rigs[8] = {};
    variant &= 7;
    if (rigs[variant] == nullptr) rigs[variant] = new Rig(variant & 1, variant & 4);
    set_isa_cap(variant & 2 ? std::nullopt : std::optional<Isa>(Isa::Baseline));
    return *rigs[variant];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in{data, size};
    const uint8_t variant = in.u8();
    Rig& r = rig(variant);
    NetPort& port = *r.port;
    port.reset_stats();
    port.start();
    QueueAreas a{};
    CHECK(r.t->area(0, &a));
    const IovaMap& device_map = port.window() != nullptr ? port.window()->map() : r.mem.map();
#if RX_PACKED
    PackedDevice d(device_map, a.size, a.desc_iova, a.driver_iova, a.device_iova, false);
#else
    SplitDevice d(device_map, a.size, a.desc_iova, a.driver_iova, a.device_iova, false);
#endif
    std::deque<DevBuffer> held;
    uint64_t delivered = 0, bytes = 0;
    while (in.n) {
        const uint8_t op = in.u8() % 3;
        if (op == 2 && port.window() != nullptr) {  // a write anywhere in the window but the Rx ring
            const DmaRegion& w = port.window()->region(0);
            const size_t at = (size_t{in.u16()} << 8 | in.u8()) % (w.length() - 8);
            uint8_t* p = w.va() + at;
            const Iova ring_lo = a.desc_iova, ring_hi = a.device_iova + 6 + 8u * a.size;  // split and packed
            const Iova iova = port.window()->map().iova(p);
            if (iova + 8 <= ring_lo || iova >= ring_hi)
                for (int i = 0; i < 8; i++) p[i] = in.u8();
        } else if (op == 0) {  // the device fills up to k buffers
            d.take(1 + in.u8() % 8, held);
            std::vector<DevBuffer> done;
            for (int k = in.u8() % 6; k > 0 && !held.empty(); k--) {
                size_t pick = RX_PACKED ? 0 : in.u8() % held.size();  // split may complete out of order
                DevBuffer b = held[pick];
                held.erase(held.begin() + static_cast<long>(pick));
                uint8_t hdr[12];
                for (uint8_t& x : hdr) x = in.u8();
                if (!b.segs.empty() && b.segs[0].len >= 12) std::memcpy(b.segs[0].va, hdr, 12);
                b.written = in.u16() % (b.writable_bytes() + 64);  // sometimes more than was posted
                done.push_back(b);
            }
            if (!done.empty()) d.complete(done);
        } else {  // the port polls
            Packet* out[32];
            const uint16_t n = port.rx_burst(0, out, static_cast<uint16_t>(1 + in.u8() % 32));
            for (uint16_t i = 0; i < n; i++) {
                uint32_t sum = 0;
                uint16_t segs = 0;
                for (Packet* s = out[i]; s != nullptr; s = s->next) {
                    CHECK(s->data_len <= kRoom + 12);
                    CHECK(s->data_off + s->data_len <= s->buf_len);
                    sum += s->data_len;
                    segs++;
                    CHECK(segs <= kRing);
                }
                CHECK(segs == out[i]->nb_segs);
                CHECK(sum == out[i]->pkt_len);
                bytes += sum;
            }
            delivered += n;
            PacketPool::free_bulk(out, n);
        }
    }
    const QueueStats s = port.rx_stats(0);
    CHECK(s.packets == delivered);
    CHECK(s.bytes == bytes);
    if (port.window() != nullptr) CHECK(s.bounced_bytes == bytes);  // each delivered byte copied once
    port.stop();  // a reset: everything the device held comes back too
    CHECK(r.pool.in_use() == 0);
    return 0;
}
