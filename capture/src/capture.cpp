// CaptureRing (capture.hpp): positions run on as 64-bit byte counts; a record
// never wraps around the end of the buffer (a padding record fills the rest
// instead), and every record is a multiple of 32 bytes, so a padding record
// always has room for its header.
#include "vireo/capture/capture.hpp"

#include <time.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>

#include "vireo/mempool/packet.hpp"

namespace vireo {
namespace {

constexpr uint32_t kAlign = 32;
uint32_t record_size(uint32_t cap_len) { return (sizeof(CaptureRecord) + cap_len + kAlign - 1) & ~(kAlign - 1); }

uint64_t now_ns() {
    timespec t;
    ::clock_gettime(CLOCK_REALTIME, &t);
    return uint64_t(t.tv_sec) * 1000000000u + uint64_t(t.tv_nsec);
}

}  // namespace

CaptureRing::CaptureRing(size_t bytes, uint32_t snaplen, std::atomic<int64_t>* budget)
    : mask_(std::bit_ceil(std::max<size_t>(bytes, 64 << 10)) - 1), snaplen_(snaplen), budget_(budget) {
    // A record must fit: at most half the ring, so that padding never makes it impossible.
    snaplen_ = std::min<uint32_t>(snaplen_, static_cast<uint32_t>((mask_ + 1) / 2 - sizeof(CaptureRecord)));
    buf_ = static_cast<uint8_t*>(std::aligned_alloc(64, mask_ + 1));
    if (buf_ == nullptr) throw std::bad_alloc();
}

CaptureRing::~CaptureRing() { std::free(buf_); }

bool CaptureRing::reserve(uint32_t size, uint8_t*& at) noexcept {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    const size_t off = head & mask_;
    const size_t to_end = mask_ + 1 - off;
    const uint64_t need = size <= to_end ? size : to_end + size;
    if (head + need - tail_seen_ > mask_ + 1) {
        tail_seen_ = tail_.load(std::memory_order_acquire);
        if (head + need - tail_seen_ > mask_ + 1) return false;
    }
    if (size > to_end) {  // fill the rest with a padding record, start again at 0
        auto* pad = reinterpret_cast<CaptureRecord*>(buf_ + off);
        std::memset(pad, 0, sizeof *pad);
        pad->size = static_cast<uint32_t>(to_end);
        head_.store(head + to_end, std::memory_order_release);
        at = buf_;
    } else {
        at = buf_ + off;
    }
    return true;
}

void CaptureRing::offer(Packet* const* pkts, uint16_t n, uint16_t port, uint16_t queue, CaptureDirection dir) noexcept {
    if (n == 0) return;
    const uint64_t ns = now_ns();
    uint64_t kept = 0, lost = 0;
    for (uint16_t i = 0; i < n; i++) {
        if (budget_ != nullptr && budget_->fetch_sub(1, std::memory_order_relaxed) <= 0) break;  // count= reached
        const Packet* p = pkts[i];
        const uint32_t cap = std::min(p->pkt_len, snaplen_);
        const uint32_t size = record_size(cap);
        uint8_t* at;
        if (!reserve(size, at)) {
            lost++;
            continue;
        }
        auto* r = reinterpret_cast<CaptureRecord*>(at);
        *r = {ns, p->pkt_len, cap, port, queue, dir, 0, 0, size, 0};
        uint8_t* d = at + sizeof(CaptureRecord);
        uint32_t left = cap;
        for (const Packet* s = p; s != nullptr && left != 0; s = s->next) {
            const uint32_t k = std::min<uint32_t>(left, s->data_len);
            std::memcpy(d, s->data(), k);
            d += k;
            left -= k;
        }
        head_.store(head_.load(std::memory_order_relaxed) + size, std::memory_order_release);
        kept++;
    }
    if (kept) captured_.store(captured_.load(std::memory_order_relaxed) + kept, std::memory_order_relaxed);
    if (lost) dropped_.store(dropped_.load(std::memory_order_relaxed) + lost, std::memory_order_relaxed);
}

size_t CaptureRing::drain(const std::function<void(const CaptureRecord&, const uint8_t*)>& f) {
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    const uint64_t head = head_.load(std::memory_order_acquire);
    size_t n = 0;
    while (tail != head) {
        const auto* r = reinterpret_cast<const CaptureRecord*>(buf_ + (tail & mask_));
        if (r->dir != CaptureDirection{0}) {
            f(*r, reinterpret_cast<const uint8_t*>(r + 1));
            n++;
        }
        tail += r->size;
        tail_.store(tail, std::memory_order_release);
    }
    return n;
}

}  // namespace vireo
