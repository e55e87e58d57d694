#include "traffic.hpp"

#include <cstring>
#include <vector>

namespace vireo::test {
namespace {

constexpr uint8_t kSrc[6] = {0x02, 0, 0, 0, 0, 0x01};

uint8_t pattern(uint64_t seq, uint32_t i) { return static_cast<uint8_t>(seq * 29 + i * 13 + (i >> 7)); }

uint32_t checksum(const uint8_t* p, uint32_t n) {  // FNV-1a
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

void build_frame(std::vector<uint8_t>& f, const std::array<uint8_t, 6>& dst, uint64_t seq, uint32_t len, uint16_t q) {
    f.resize(len);
    std::memcpy(f.data(), dst.data(), 6);
    std::memcpy(f.data() + 6, kSrc, 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    std::memcpy(f.data() + 14, &seq, 8);
    std::memcpy(f.data() + 22, &len, 4);
    std::memcpy(f.data() + 26, &q, 2);
    for (uint32_t i = 28; i + 4 < len; i++) f[i] = pattern(seq, i);
    uint32_t c = checksum(f.data() + 14, len - 18);
    std::memcpy(f.data() + len - 4, &c, 4);
}

// A frame as a chain of pool packets (several when it exceeds the data room).
Packet* to_packets(PacketPool& pool, const std::vector<uint8_t>& f) {
    Packet* head = nullptr;
    Packet* tail = nullptr;
    size_t off = 0;
    while (off < f.size()) {
        Packet* p = pool.alloc();
        if (p == nullptr) {
            if (head) PacketPool::free(head);
            return nullptr;
        }
        uint16_t n = static_cast<uint16_t>(std::min<size_t>(f.size() - off, pool.data_room()));
        std::memcpy(p->append(n), f.data() + off, n);
        off += n;
        if (head == nullptr) {
            head = tail = p;
        } else {
            tail->next = p;
            tail = p;
            head->nb_segs++;
            head->pkt_len += n;
        }
    }
    return head;
}

}  // namespace

TrafficResult run_traffic(NetPort& port, PacketPool& pool, const TrafficOptions& o) {
    TrafficResult r;
    const uint16_t nq = port.queue_pairs();
    std::vector<uint64_t> next_tx(nq, 0), expect(nq, 0), got(nq, 0);
    std::vector<uint8_t> frame, rx;
    const auto dst = port.mac();
    auto deadline = std::chrono::steady_clock::now() + o.limit;
    auto problem = [&](const std::string& s) {
        if (r.first_problem.empty()) r.first_problem = s;
    };
    uint64_t idle = 0;
    for (;;) {
        bool done = true, progress = false;
        for (uint16_t q = 0; q < nq; q++) {
            // Send up to the window.
            Packet* burst[32];
            uint16_t nb = 0;
            while (nb < 32 && next_tx[q] < o.per_queue && next_tx[q] - got[q] < o.window) {
                const uint64_t seq = next_tx[q];
                build_frame(frame, dst, seq, o.size(seq), q);
                Packet* p = to_packets(pool, frame);
                if (p == nullptr) break;
                burst[nb++] = p;
                next_tx[q]++;
            }
            uint16_t sent = nb ? port.tx_burst(q, burst, nb) : 0;
            for (uint16_t i = sent; i < nb; i++) PacketPool::free(burst[i]);
            next_tx[q] -= nb - sent;
            r.sent += sent;
            progress |= sent != 0;
            // Receive and check.
            Packet* in[32];
            uint16_t n = port.rx_burst(q, in, 32);
            progress |= n != 0;
            for (uint16_t i = 0; i < n; i++) {
                Packet* p = in[i];
                rx.clear();
                for (Packet* s = p; s != nullptr; s = s->next) rx.insert(rx.end(), s->data(), s->data() + s->data_len);
                if (p->nb_segs > 1) r.segmented++;
                uint64_t seq;
                uint32_t len;
                uint16_t fq;
                bool ok = rx.size() >= 34 && rx.size() == p->pkt_len;
                if (ok) {
                    std::memcpy(&seq, rx.data() + 14, 8);
                    std::memcpy(&len, rx.data() + 22, 4);
                    std::memcpy(&fq, rx.data() + 26, 2);
                    uint32_t c;
                    std::memcpy(&c, rx.data() + rx.size() - 4, 4);
                    ok = len == rx.size() && fq == q && c == checksum(rx.data() + 14, len - 18);
                    const uint8_t* a = rx.data();
                    const uint8_t* b = rx.data() + 6;
                    if (o.macswap) std::swap(a, b);
                    ok = ok && std::memcmp(a, dst.data(), 6) == 0 && std::memcmp(b, kSrc, 6) == 0;
                    for (uint32_t k = 28; ok && k + 4 < len; k++) ok = rx[k] == pattern(seq, k);
                }
                if (!ok) {
                    r.bad++;
                    problem("queue " + std::to_string(q) + ": corrupt frame of " + std::to_string(rx.size()) +
                            " bytes");
                } else if (o.lossless ? seq != expect[q] : seq < expect[q]) {
                    r.misordered++;
                    problem("queue " + std::to_string(q) + ": seq " + std::to_string(seq) + " where " +
                            std::to_string(expect[q]) + " was due");
                    expect[q] = seq + 1;
                } else {
                    expect[q] = seq + 1;
                }
                got[q] = o.lossless ? got[q] + 1 : std::max(got[q] + 1, expect[q]);
                r.received++;
            }
            PacketPool::free_bulk(in, n);
            if (next_tx[q] < o.per_queue || got[q] < next_tx[q]) done = false;
        }
        if (done) break;
        idle = progress ? 0 : idle + 1;
        if (std::chrono::steady_clock::now() > deadline) {
            problem("time limit: sent " + std::to_string(r.sent) + ", received " + std::to_string(r.received));
            break;
        }
        if (!o.lossless && idle > 200000) break;  // the rest was dropped by the peer
    }
    return r;
}

}  // namespace vireo::test
