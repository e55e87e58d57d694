// The window arrangement's data path: see dma_window.hpp.
#include "dma_window.hpp"

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

// Copies the frame `src` (a chain of any layout) into fresh segments from
// `to`, each filled to its tailroom, with the first segment's metadata. The
// device's header is not copied: kRxDeviceHeader is cleared. nullptr when
// `to` ran out (nothing is kept). The source's lengths were validated by the
// queue (Rx) or are the application's own (Tx); the copy never writes past
// a destination segment's tailroom whatever they say.
Packet* copy_frame(const Packet* src, PacketPool& to) noexcept {
    Packet* head = to.alloc();
    if (head == nullptr) return nullptr;
    Packet* d = head;
    uint16_t segs = 1;
    uint32_t total = 0;
    for (const Packet* s = src; s != nullptr; s = s->next) {
        const uint8_t* from = s->data();
        uint32_t left = s->data_len;
        while (left != 0) {
            if (d->tailroom() == 0) {
                Packet* n = to.alloc();
                if (n == nullptr) {
                    PacketPool::free(head);
                    return nullptr;
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
    head->pkt_len = total;
    head->nb_segs = segs;
    head->rss_hash = src->rss_hash;
    head->ol_flags = src->ol_flags & ~pkt::kRxDeviceHeader;
    head->port = src->port;
    head->queue = src->queue;
    head->l2_len = src->l2_len;
    head->l3_len = src->l3_len;
    head->l4_len = src->l4_len;
    return head;
}

}  // namespace

DmaWindow::DmaWindow(const DmaPlan& plan, const DmaMemoryOptions& like, uint16_t pairs, uint16_t ring,
                     uint16_t headroom, uint16_t data_room)
    : mem_(window_options(plan, like,
                          size_t{pairs} * (size_t{slots_per_pair(ring)} * (sizeof(Packet) + headroom + data_room) +
                                           size_t{ring} * 64 + kMiB) +
                              kMiB)) {}

WindowPair::WindowPair(const DataPath& inner, DmaMemory& window, PacketPool& app, const PairConfig& c)
    : slots_(window, {.count = DmaWindow::slots_per_pair(c.ring),
                      .headroom = app.headroom(),
                      .data_room = app.data_room(),
                      .cache_size = 64}),
      inner_(inner.make_pair(window, slots_, c)),
      inner_rx_(inner.rx),
      inner_tx_(inner.tx),
      app_(app) {}

void WindowPair::refill() noexcept {
    inner_->refill();
    slots_.flush_thread_cache();
}

void WindowPair::drain() noexcept {
    inner_->drain();
    slots_.flush_thread_cache();
}

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
    uint16_t out = 0;
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < k; i++) {
        Packet* c = copy_frame(in[i], app_);
        if (c == nullptr) {
            st.drops++;  // the application's pool is empty: the frame is lost
            continue;
        }
        bytes += c->pkt_len;
        pkts[out++] = c;
    }
    PacketPool::free_bulk(in, k);  // the slots go back for the next refill
    st.bounced_bytes += bytes;
    st.copy_cycles += cycles() - t0;
    return out;
}

// Up to n frames (n <= 64) copied into slots and handed to the ring; the
// application's packets that went out are freed (the device has the copies).
uint16_t WindowPair::tx_some(Packet** pkts, uint16_t n) noexcept {
    Packet* copies[64];
    QueueStats& st = inner_->tx_stats();
    const uint64_t t0 = cycles();
    uint16_t made = 0;
    while (made < n) {
        Packet* c = copy_frame(pkts[made], slots_);
        if (c == nullptr) {
            st.slot_waits++;  // every slot in flight: back-pressure
            break;
        }
        copies[made++] = c;
    }
    st.copy_cycles += cycles() - t0;
    if (made == 0) return 0;
    const uint16_t sent = inner_tx_(inner_.get(), copies, made);
    if (sent < made) PacketPool::free_bulk(copies + sent, static_cast<uint32_t>(made - sent));
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < sent; i++) bytes += pkts[i]->pkt_len;
    PacketPool::free_bulk(pkts, sent);
    st.bounced_bytes += bytes;
    return sent;
}

}  // namespace vireo::detail
