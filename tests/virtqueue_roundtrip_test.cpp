// Round trips through the virtqueue engine and the independent test device:
// split and packed x IN_ORDER on/off x EVENT_IDX on/off x ring sizes 64..4096
// (and a packed ring of 1000), Tx and Rx at once, payloads checked byte by
// byte, every packet back in the pool at the end.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "support/vq_kinds.hpp"

namespace vireo::test {
namespace {

constexpr uint16_t kHdr = 12;  // a virtio-net header's worth in front of each frame

uint8_t pattern(uint64_t seq, size_t i) { return static_cast<uint8_t>(seq * 131 + i * 7 + (i >> 8)); }

// Tx payload: [hdr 12][seq 8][len 4][pattern...]; Rx payload the same without hdr.
void fill_frame(uint8_t* p, uint64_t seq, uint32_t len) {
    std::memcpy(p, &seq, 8);
    std::memcpy(p + 8, &len, 4);
    for (uint32_t i = 12; i < len; i++) p[i] = pattern(seq, i);
}
bool check_frame(const uint8_t* p, uint32_t len, uint64_t* seq_out) {
    uint64_t seq;
    uint32_t l;
    std::memcpy(&seq, p, 8);
    std::memcpy(&l, p + 8, 4);
    if (l != len) return false;
    for (uint32_t i = 12; i < len; i++)
        if (p[i] != pattern(seq, i)) return false;
    *seq_out = seq;
    return true;
}

struct Params {
    uint16_t size;
    bool event_idx;
};

template <class K>
void round_trip(Params prm, uint64_t packets) {
    using Queue = typename K::Queue;
    SCOPED_TRACE(std::string(K::name()) + " size " + std::to_string(prm.size) + (prm.event_idx ? " event_idx" : ""));
    DmaMemory mem(pa_memory());
    PacketPool pool(mem, {.count = 2u * prm.size + 256, .headroom = 128, .data_room = 512, .cache_size = 64});
    Queue txq(mem, {.size = prm.size, .index = 1, .event_idx = prm.event_idx});
    Queue rxq(mem, {.size = prm.size, .index = 0, .event_idx = prm.event_idx});
    auto txd = make_device<K>(mem, txq, prm.event_idx);
    auto rxd = make_device<K>(mem, rxq, prm.event_idx);
    std::mt19937_64 rng(prm.size * 1000 + K::packed * 10 + K::in_order + prm.event_idx * 100);

    uint64_t tx_sent = 0, tx_checked = 0, rx_made = 0, rx_checked = 0, dev_tx_seen = 0;
    std::vector<uint8_t> rx_seen(packets + prm.size * 4, 0);
    std::deque<DevBuffer> tx_held, rx_held;
    VqUsed used[64];
    Packet* burst[32];

    auto device_step = [&](auto& dev, std::deque<DevBuffer>& held, bool is_tx, bool flush) {
        const size_t before = held.size();
        dev.take(flush ? 1 << 16 : 1 + rng() % 64, held);
        if (is_tx)  // Tx frames reach the device in the order they were sent (one queue keeps order)
            for (size_t i = before; i < held.size(); i++) {
                std::vector<uint8_t> bytes;
                for (const DevSeg& s : held[i].segs) bytes.insert(bytes.end(), s.va, s.va + s.len);
                uint64_t seq;
                ASSERT_GE(bytes.size(), size_t{kHdr} + 12);
                ASSERT_TRUE(check_frame(bytes.data() + kHdr, static_cast<uint32_t>(bytes.size() - kHdr), &seq));
                ASSERT_EQ(seq, dev_tx_seen) << "Tx frame out of order or lost";
                dev_tx_seen++;
            }
        size_t k = flush ? held.size() : (rng() % 4 == 0 ? 0 : rng() % (held.size() + 1));
        if (k == 0) return;
        std::vector<DevBuffer> done;
        for (size_t i = 0; i < k; i++) {
            size_t pick = K::in_order ? 0 : rng() % held.size();  // out of order unless IN_ORDER
            done.push_back(std::move(held[pick]));
            held.erase(held.begin() + static_cast<long>(pick));
        }
        for (DevBuffer& b : done) {
            std::vector<uint8_t> bytes;
            if (is_tx) {  // checked when taken
                b.written = 0;
            } else {  // write a frame of random length across the writable segments
                uint32_t room = b.writable_bytes();
                uint32_t len = 12 + static_cast<uint32_t>(rng() % (room - 12 + 1));
                bytes.resize(len);
                fill_frame(bytes.data(), rx_made++, len);
                uint32_t off = 0;
                for (const DevSeg& s : b.segs) {
                    uint32_t n = std::min(s.len, len - off);
                    std::memcpy(s.va, bytes.data() + off, n);
                    off += n;
                }
                b.written = len;
            }
        }
        // With IN_ORDER a Tx batch may be reported by its last entry alone.
        dev.complete(done, K::in_order && is_tx && rng() % 2 == 0);
    };

    auto reap = [&]() {
        uint16_t n = txq.reap(used, 64);
        for (uint16_t i = 0; i < n; i++) {
            ASSERT_EQ(used[i].len, 0u);
            PacketPool::free(static_cast<Packet*>(used[i].cookie));
            tx_checked++;
        }
        n = rxq.reap(used, 64);
        for (uint16_t i = 0; i < n; i++) {
            auto* p = static_cast<Packet*>(used[i].cookie);
            uint64_t seq;
            ASSERT_TRUE(check_frame(p->data(), used[i].len, &seq)) << "Rx payload corrupt";
            ASSERT_LT(seq, rx_seen.size());
            ASSERT_EQ(rx_seen[seq]++, 0) << "Rx frame delivered twice";
            PacketPool::free(p);
            rx_checked++;
        }
    };

    uint64_t last_progress = 0, idle = 0;
    while (tx_checked < packets || rx_checked < packets) {
        if (tx_checked + rx_checked != last_progress) {
            last_progress = tx_checked + rx_checked;
            idle = 0;
        } else if (++idle > 20000) {
            FAIL() << "stalled: tx sent " << tx_sent << " checked " << tx_checked << " in flight " << txq.in_flight()
                   << " free " << txq.free_descs() << " held " << tx_held.size() << "; rx made " << rx_made
                   << " checked " << rx_checked << " in flight " << rxq.in_flight() << " free " << rxq.free_descs()
                   << " held " << rx_held.size() << "; faults " << to_string(txq.fault()) << "/"
                   << to_string(rxq.fault()) << " pool in use " << pool.in_use();
        }
        // Driver: a Tx burst of 1-3 segment chains.
        uint32_t nb = 1 + rng() % 32;
        if (tx_sent < packets && pool.alloc_bulk(burst, nb)) {
            uint32_t i = 0;
            for (; i < nb; i++) {
                Packet* p = burst[i];
                uint32_t flen = 12 + static_cast<uint32_t>(rng() % 300);
                uint8_t* d = p->append(static_cast<uint16_t>(flen));
                fill_frame(d, tx_sent + i, flen);
                uint8_t* h = p->prepend(kHdr);
                std::memset(h, 0, kHdr);
                VqSeg segs[3];
                uint16_t ns = static_cast<uint16_t>(1 + rng() % 3);
                if (ns == 1) {
                    segs[0] = {p->data_iova(), p->data_len, false};
                } else {  // header apart, and maybe the frame in two
                    segs[0] = {p->data_iova(), kHdr, false};
                    uint32_t rest = p->data_len - kHdr, cut = ns == 3 ? rest / 2 : rest;
                    segs[1] = {p->data_iova() + kHdr, cut, false};
                    if (ns == 3) segs[2] = {p->data_iova() + kHdr + cut, rest - cut, false};
                }
                if (!txq.add(segs, ns, p)) break;
            }
            tx_sent += i;
            PacketPool::free_bulk(burst + i, nb - i);
            txq.publish();
            txq.kick_needed();
        }
        // Driver: refill Rx with 1 or 2 writable segments per buffer.
        uint32_t want = std::min<uint32_t>(1 + rng() % 32, rxq.free_descs() / 2);
        if (rx_checked + rxq.in_flight() < packets && want > 0 && pool.alloc_bulk(burst, want)) {
            for (uint32_t i = 0; i < want; i++) {
                Packet* p = burst[i];
                if (rng() % 2) {
                    ASSERT_TRUE(rxq.add1(p->data_iova(), pool.data_room(), true, p));
                } else {
                    VqSeg segs[2] = {{p->data_iova(), 100, true},
                                     {p->data_iova() + 100, pool.data_room() - 100u, true}};
                    ASSERT_TRUE(rxq.add(segs, 2, p));
                }
            }
            rxq.publish();
            rxq.kick_needed();
        }
        device_step(txd, tx_held, true, false);
        device_step(rxd, rx_held, false, false);
        if (::testing::Test::HasFatalFailure()) return;
        reap();
        if (::testing::Test::HasFatalFailure()) return;
        if (tx_sent >= packets && rx_made >= packets) {  // drain: the device completes all it holds
            device_step(txd, tx_held, true, true);
            device_step(rxd, rx_held, false, true);
            reap();
            if (tx_checked >= packets && rx_checked >= rx_made) break;
        }
    }
    EXPECT_FALSE(txd.bad());
    EXPECT_FALSE(rxd.bad());
    EXPECT_EQ(txq.fault(), VqFault::None);
    EXPECT_EQ(rxq.fault(), VqFault::None);
    EXPECT_GE(tx_checked, packets);
    EXPECT_GE(rx_checked, packets);
    auto give_back = [](void* c) { PacketPool::free(static_cast<Packet*>(c)); };
    txq.reset(give_back);
    rxq.reset(give_back);
    pool.flush_thread_cache();
    EXPECT_EQ(pool.in_use(), 0u) << "packets leaked";
}

// ~100k packets each way per configuration, 36 configurations: 7M+ packets.
constexpr uint64_t kPackets = 100000;
const uint16_t kSizes[] = {64, 256, 1024, 4096};

template <class K>
void all_sizes() {
    for (bool eidx : {false, true})
        for (uint16_t size : kSizes) {
            round_trip<K>({size, eidx}, kPackets);
            if (::testing::Test::HasFatalFailure()) return;
        }
}

// INDIRECT_DESC: chains of 1..8 segments in tables, one ring slot each;
// the device finds every segment in order (payloads checked), completes in
// any order (in order for IN_ORDER kinds), and the driver gets each cookie
// back once. Laps the ring many times, so tables are reused.
template <class K>
void indirect_chains() {
    SCOPED_TRACE(K::name());
    DmaMemory mem(pa_memory());
    PacketPool pool(mem, {.count = 2048, .headroom = 128, .data_room = 256, .cache_size = 0});
    typename K::Queue q(mem, {.size = 64, .index = 1, .indirect_max = 8});
    auto dev = make_device<K>(mem, q, false);
    std::mt19937 rng(K::packed * 2 + K::in_order);
    std::deque<DevBuffer> held;
    uint64_t sent = 0, checked = 0, reaped = 0;
    std::vector<Packet*> chain_of(64 * 8);
    VqUsed used[64];
    while (reaped < 20000) {
        // Driver: chains of fresh segments, each segment's first byte its index.
        for (int c = 0; c < 8 && q.free_descs() > 0; c++) {
            const uint16_t n = static_cast<uint16_t>(1 + rng() % 8);
            Packet* segs[8];
            if (!pool.alloc_bulk(segs, n)) break;
            VqSeg s[8];
            for (uint16_t i = 0; i < n; i++) {
                uint8_t* d = segs[i]->append(32);
                ASSERT_NE(d, nullptr);
                std::memset(d, static_cast<int>(sent & 0xff), 32);
                d[0] = static_cast<uint8_t>(i);
                d[1] = static_cast<uint8_t>(n);
                if (i + 1 < n) segs[i]->next = segs[i + 1];
                s[i] = {segs[i]->data_iova(), 32, false};
            }
            segs[0]->nb_segs = n;
            const uint16_t before = q.free_descs();
            ASSERT_TRUE(q.add_indirect(s, n, segs[0]));
            EXPECT_EQ(q.free_descs(), before - 1) << "one ring descriptor per chain";
            sent++;
        }
        q.publish();
        // Device.
        dev.take(1 << 16, held);
        ASSERT_FALSE(dev.bad()) << "the device found a malformed indirect descriptor";
        std::vector<DevBuffer> done;
        while (!held.empty() && rng() % 4 != 0) {
            const size_t at = K::in_order ? 0 : rng() % held.size();
            DevBuffer b = held[at];
            held.erase(held.begin() + static_cast<long>(at));
            EXPECT_TRUE(b.indirect);
            EXPECT_EQ(b.ndesc, 1);
            ASSERT_FALSE(b.segs.empty());
            const uint8_t n = b.segs[0].va[1];
            ASSERT_EQ(b.segs.size(), n);
            for (uint8_t i = 0; i < n; i++) {
                EXPECT_FALSE(b.segs[i].writable);
                EXPECT_EQ(b.segs[i].va[0], i);
                EXPECT_EQ(b.segs[i].len, 32u);
            }
            checked++;
            done.push_back(b);
        }
        dev.complete(done, K::in_order && rng() % 2 == 0);
        const uint16_t r = q.reap(used, 64);
        for (uint16_t i = 0; i < r; i++) PacketPool::free(static_cast<Packet*>(used[i].cookie));
        reaped += r;
        ASSERT_FALSE(q.needs_reset());
    }
    VqSeg w[2] = {{Iova{0x1000}, 8, false}, {Iova{0x2000}, 8, true}};
    EXPECT_FALSE(q.add_indirect(w, 2, &w)) << "a table carries device-readable buffers only";
    VqSeg many[9] = {};
    EXPECT_FALSE(q.add_indirect(many, 9, &many)) << "more than indirect_max";
    q.reset([](void* c) { PacketPool::free(static_cast<Packet*>(c)); });
    EXPECT_EQ(pool.in_use(), 0u);
}

TEST(VirtqueueIndirect, AllFourKinds) {
    indirect_chains<VqKind<false, false>>();
    indirect_chains<VqKind<false, true>>();
    indirect_chains<VqKind<true, false>>();
    indirect_chains<VqKind<true, true>>();
}

TEST(VirtqueueRoundTrip, Split) { all_sizes<VqKind<false, false>>(); }
TEST(VirtqueueRoundTrip, SplitInOrder) { all_sizes<VqKind<false, true>>(); }
TEST(VirtqueueRoundTrip, Packed) { all_sizes<VqKind<true, false>>(); }
TEST(VirtqueueRoundTrip, PackedInOrder) { all_sizes<VqKind<true, true>>(); }
// The AVX-512 kernels (four descriptors per cache-line store), on CPUs that have them.
TEST(VirtqueueRoundTrip, PackedAvx512) {
    if (!VqKind<true, false, Isa::Avx512>::runs_here()) GTEST_SKIP() << "this CPU has no AVX-512";
    all_sizes<VqKind<true, false, Isa::Avx512>>();
}
TEST(VirtqueueRoundTrip, PackedInOrderAvx512) {
    if (!VqKind<true, true, Isa::Avx512>::runs_here()) GTEST_SKIP() << "this CPU has no AVX-512";
    all_sizes<VqKind<true, true, Isa::Avx512>>();
}
TEST(VirtqueueRoundTrip, PackedNonPowerOfTwoSize) {
    for (bool eidx : {false, true}) {
        round_trip<VqKind<true, false>>({1000, eidx}, kPackets);
        round_trip<VqKind<true, true>>({1000, eidx}, kPackets);
    }
}

TEST(Virtqueue, BadSizesAreClearErrors) {
    DmaMemory mem(pa_memory(1 << 20));
    EXPECT_THROW((SplitQueue<false>(mem, {.size = 100})), Error);
    EXPECT_THROW((SplitQueue<false>(mem, {.size = 0})), Error);
    EXPECT_THROW((PackedQueue<false>(mem, {.size = 0})), Error);
}

TEST(Virtqueue, NotificationDataValues) {
    DmaMemory mem(pa_memory(1 << 20));
    SplitQueue<false> s(mem, {.size = 8, .index = 3, .notification_data = true});
    PackedQueue<false> p(mem, {.size = 5, .index = 2, .notification_data = true});
    int cookie;
    for (int i = 0; i < 7; i++) {
        ASSERT_TRUE(s.add1(Iova{0x1000}, 64, false, &cookie) || i >= 8);
        ASSERT_TRUE(p.add1(Iova{0x1000}, 64, false, &cookie) || i >= 5);
    }
    EXPECT_EQ(s.notification_value(), 3u | 7u << 16);
    // 5 descriptors used of a 5-ring: next_off wraps to 0 and the wrap counter flips to 0.
    EXPECT_EQ(p.notification_value(), 2u | 0u << 16 | 0u << 31);
    SplitQueue<false> plain(mem, {.size = 8, .index = 4});
    EXPECT_EQ(plain.notification_value(), 4u);
}

}  // namespace
}  // namespace vireo::test
