// The window arrangement's data path: see dma_window.hpp.
#include "datapath/dma_window.hpp"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "vireo/base/error.hpp"

namespace vireo::detail {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

uint64_t cycles() noexcept {
#if defined(__x86_64__)
    return __rdtsc();
#else
    return 0;
#endif
}

DmaMemoryOptions window_options(const DmaPlan& plan, const DmaMemoryOptions& like, size_t bytes) {
    DmaMemoryOptions o;
    o.mode = plan.mode;
    o.pa_source = plan.pa_source;
    o.region = like.region;
    o.region.name = "vireo-window";
    o.region_size = (bytes + 2 * kMiB - 1) & ~(2 * kMiB - 1);  // whole 2 MiB hugepages
    return o;
}

// Starts the misses for the first bytes of a buffer, up to `lines` cache
// lines, at once (for writing: a slot's lines sit in the device's cache).
void prefetch_lines(const uint8_t* d, uint32_t len, unsigned lines, bool write) noexcept {
    const unsigned n = std::min<unsigned>(lines, (len + 63u) / 64u);
    for (unsigned l = 0; l < n; l++) {
        if (write)
            __builtin_prefetch(d + 64 * l, 1);
        else
            __builtin_prefetch(d + 64 * l, 0);
    }
}

// Small copies inline: 16-byte moves, the last one ending at the last byte
// (overlapping the one before it), so nothing outside [src, src + n) is read
// or outside [dst, dst + n) written. A call to memcpy and its size dispatch
// costs as much as the copy at 64 bytes, twice per frame in a loop.
inline void copy_bytes(uint8_t* dst, const uint8_t* src, uint32_t n) noexcept {
    if (n < 16 || n > 128) {
        std::memcpy(dst, src, n);
        return;
    }
    uint8_t t[16];
    for (uint32_t o = 0; o + 16 < n; o += 16) {
        std::memcpy(t, src + o, 16);
        std::memcpy(dst + o, t, 16);
    }
    std::memcpy(t, src + n - 16, 16);
    std::memcpy(dst + n - 16, t, 16);
}

constexpr uint32_t kOutOfSegments = ~0u;

// The general case of copy_frame: `src` a chain or longer than `head`'s
// tailroom. Fills `head` and fresh segments from `to`, each to its tailroom;
// returns the bytes copied and counts the segments in `segs`, or
// kOutOfSegments when `to` ran out (the extra segments went back).
uint32_t copy_chain(const Packet* src, Packet* head, PacketPool& to, uint16_t& segs) noexcept {
    Packet* d = head;
    uint32_t total = 0;
    for (const Packet* s = src; s != nullptr; s = s->next) {
        const uint8_t* from = s->data();
        uint32_t left = s->data_len;
        while (left != 0) {
            if (d->tailroom() == 0) {
                Packet* n = to.alloc();
                if (n == nullptr) {
                    PacketPool::free(head->next);
                    head->next = nullptr;
                    head->data_len = 0;
                    return kOutOfSegments;
                }
                d->next = n;
                d = n;
                segs++;
            }
            const uint16_t k = static_cast<uint16_t>(std::min<uint32_t>(left, d->tailroom()));
            std::memcpy(d->data() + d->data_len, from, k);
            d->data_len = static_cast<uint16_t>(d->data_len + k);
            from += k;
            left -= k;
            total += k;
        }
    }
    return total;
}

// Copies the frame `src` (a chain of any layout) into `head` (a fresh
// segment) and more fresh segments from `to` as needed, with the first
// segment's metadata. The device's header is not copied: kRxDeviceHeader is
// cleared. false when `to` ran out (the extra segments go back; head stays
// the caller's). The source's lengths were validated by the queue (Rx) or are
// the application's own (Tx); the copy never writes past a destination
// segment's tailroom whatever they say.
bool copy_frame(const Packet* src, Packet* head, PacketPool& to) noexcept {
    uint16_t segs = 1;
    uint32_t total;
    if (src->next == nullptr && src->data_len <= head->tailroom()) [[likely]] {  // one segment into one
        copy_bytes(head->data() + head->data_len, src->data(), src->data_len);
        head->data_len = static_cast<uint16_t>(head->data_len + src->data_len);
        total = src->data_len;
    } else {
        total = copy_chain(src, head, to, segs);
        if (total == kOutOfSegments) return false;
    }
    head->pkt_len = total;
    head->nb_segs = segs;
    head->rss_hash = src->rss_hash;
    head->rss_type = src->rss_type;
    head->ol_flags = src->ol_flags & ~pkt::kRxDeviceHeader;
    head->port = src->port;
    head->queue = src->queue;
    head->l2_len = src->l2_len;
    head->l3_len = src->l3_len;
    head->l4_len = src->l4_len;
    head->tso_segsz = src->tso_segsz;
    return true;
}

// n first segments from `pool`: one bulk get when it has them all, else as
// many single ones as it has. Returns how many.
uint16_t take(PacketPool& pool, Packet** out, uint16_t n) noexcept {
    if (pool.alloc_bulk(out, n)) return n;
    uint16_t i = 0;
    while (i < n && (out[i] = pool.alloc()) != nullptr) i++;
    return i;
}

}  // namespace

DmaWindow::DmaWindow(const DmaPlan& plan, const DmaMemoryOptions& like, uint16_t pairs, uint16_t ring,
                     uint16_t headroom, uint16_t data_room)
    : mem_(window_options(
          plan, like,
          size_t{pairs} * (size_t{slots_per_pair(ring)} * (size_t{headroom} + data_room) + size_t{ring} * 64 + kMiB) +
              kMiB)) {}

WindowPair::WindowPair(const DataPath& inner, DmaMemory& window, PacketPool& app, const PairConfig& c)
    : slots_(window, {.count = DmaWindow::slots_per_pair(c.ring),
                      .headroom = app.headroom(),
                      .data_room = app.data_room(),
                      .cache_size = 0,  // no cache: slots come out of the pool's ring in the order they went back
                      .metadata_apart = true}),  // the device may rewrite its window: only buffers there
      inner_(inner.make_pair(window, slots_, c)),
      inner_rx_(inner.rx),
      inner_tx_(inner.tx),
      app_(app) {}

void WindowPair::refill() noexcept { inner_->refill(); }

void WindowPair::drain() noexcept { inner_->drain(); }

uint16_t WindowPair::rx(QueuePairBase* p, Packet** pkts, uint16_t n) noexcept {
    auto* w = static_cast<WindowPair*>(p);  // NetPort pairs this burst with WindowPairs only
    uint16_t got = 0;
    while (got < n) {
        const uint16_t k = w->rx_some(pkts + got, static_cast<uint16_t>(std::min<int>(n - got, 64)));
        if (k == 0) break;
        got = static_cast<uint16_t>(got + k);
    }
    return got;
}

uint16_t WindowPair::tx(QueuePairBase* p, Packet** pkts, uint16_t n) noexcept {
    auto* w = static_cast<WindowPair*>(p);
    uint16_t sent = 0;
    while (sent < n) {
        const uint16_t want = static_cast<uint16_t>(std::min<int>(n - sent, 64));
        const uint16_t k = w->tx_some(pkts + sent, want);
        sent = static_cast<uint16_t>(sent + k);
        if (k < want) break;
    }
    return sent;
}

// Up to n frames (n <= 64) from the device's slots into the application's packets.
uint16_t WindowPair::rx_some(Packet** pkts, uint16_t n) noexcept {
    Packet* in[64];
    const uint16_t k = inner_rx_(inner_.get(), in, n);
    if (k == 0) return 0;
    QueueStats& st = inner_->rx_stats();
    const uint64_t t0 = cycles();
    // The device's core just wrote these frames: start every frame's first
    // misses at once, not one per copy; the rest of a frame while the one
    // before it is copied.
    for (uint16_t i = 0; i < k; i++) prefetch_lines(in[i]->data(), in[i]->data_len, 2, false);
    Packet* dst[64];
    const uint16_t have = take(app_, dst, k);
    uint16_t out = 0;
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < k; i++) {
        if (i + 1 < k) prefetch_lines(in[i + 1]->data(), in[i + 1]->data_len, 32, false);
        if (i >= have || !copy_frame(in[i], dst[i], app_)) {
            if (i < have) PacketPool::free(dst[i]);
            bump(st.drops);  // the application's pool is empty: the frame is lost
            continue;
        }
        bytes += dst[i]->pkt_len;
        pkts[out++] = dst[i];
    }
    PacketPool::free_bulk(in, k);  // the slots go back for the next refill
    bump(st.bounced_bytes, bytes);
    bump(st.copy_cycles, cycles() - t0);
    return out;
}

// Up to n frames (n <= 64), no more than the Tx ring has room for, copied
// into slots and handed to the ring; the application's packets that went
// out are freed (the device has the copies).
uint16_t WindowPair::tx_some(Packet** pkts, uint16_t n) noexcept {
    const uint16_t room = inner_->tx_room();
    if (room < n) n = room;  // the ring is full: copy nothing that cannot go out
    if (n == 0) return 0;
    QueueStats& st = inner_->tx_stats();
    const uint64_t t0 = cycles();
    Packet* copies[64];
    const uint16_t have = take(slots_, copies, n);
    // The device read these slots last: ask for their lines before writing.
    for (uint16_t i = 0; i < have; i++) prefetch_lines(copies[i]->data(), pkts[i]->pkt_len, 2, true);
    uint16_t made = 0;
    while (made < have && copy_frame(pkts[made], copies[made], slots_)) made++;
    if (made < n) bump(st.slot_waits);  // every slot in flight: back-pressure
    PacketPool::free_bulk(copies + made, static_cast<uint32_t>(have - made));
    bump(st.copy_cycles, cycles() - t0);
    if (made == 0) return 0;
    const uint16_t sent = inner_tx_(inner_.get(), copies, made);
    if (sent < made) PacketPool::free_bulk(copies + sent, static_cast<uint32_t>(made - sent));
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < sent; i++) bytes += pkts[i]->pkt_len;
    PacketPool::free_bulk(pkts, sent);
    bump(st.bounced_bytes, bytes);
    return sent;
}

}  // namespace vireo::detail
