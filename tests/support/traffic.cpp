#include "traffic.hpp"

#include <pthread.h>
#include <sched.h>

#include <cstring>
#include <thread>
#include <vector>

#include "packet_chain.hpp"

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
Packet* to_packets(PacketPool& pool, const std::vector<uint8_t>& f) { return to_chain(pool, f, pool.data_room()); }

// Reads a received frame back: true when its length, MACs, pattern and
// checksum hold; seq and sending queue out.
bool check_frame(const Packet* p, std::vector<uint8_t>& rx, const std::array<uint8_t, 6>& dst, bool macswap,
                 uint64_t& seq, uint16_t& fq) {
    rx.clear();
    for (const Packet* s = p; s != nullptr; s = s->next) rx.insert(rx.end(), s->data(), s->data() + s->data_len);
    uint32_t len;
    bool ok = rx.size() >= 34 && rx.size() == p->pkt_len;
    if (!ok) return false;
    std::memcpy(&seq, rx.data() + 14, 8);
    std::memcpy(&len, rx.data() + 22, 4);
    std::memcpy(&fq, rx.data() + 26, 2);
    uint32_t c;
    std::memcpy(&c, rx.data() + rx.size() - 4, 4);
    ok = len == rx.size() && c == checksum(rx.data() + 14, len - 18);
    const uint8_t* a = rx.data();
    const uint8_t* b = rx.data() + 6;
    if (macswap) std::swap(a, b);
    ok = ok && std::memcmp(a, dst.data(), 6) == 0 && std::memcmp(b, kSrc, 6) == 0;
    for (uint32_t k = 28; ok && k + 4 < len; k++) ok = rx[k] == pattern(seq, k);
    return ok;
}

}  // namespace

TrafficResult run_traffic(NetPort& port, PacketPool& pool, const TrafficOptions& o) {
    return run_traffic(port, port, pool, o);
}

TrafficResult run_traffic(NetPort& tx_port, NetPort& rx_port, PacketPool& pool, const TrafficOptions& o) {
    TrafficResult r;
    const uint16_t nq = tx_port.queue_pairs();
    const uint16_t nrq = rx_port.queue_pairs();
    std::vector<uint64_t> next_tx(nq, 0), expect(nq, 0), got(nq, 0);
    std::vector<uint8_t> frame, rx;
    const auto dst = rx_port.mac();
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
            uint16_t sent = nb ? tx_port.tx_burst(q, burst, nb) : 0;
            for (uint16_t i = sent; i < nb; i++) PacketPool::free(burst[i]);
            next_tx[q] -= nb - sent;
            r.sent += sent;
            progress |= sent != 0;
            // Receive and check.
            for (uint16_t rq = o.any_rx_queue ? 0 : q; rq < (o.any_rx_queue ? nrq : q + 1); rq++) {
                Packet* in[32];
                uint16_t n = rx_port.rx_burst(rq, in, 32);
                progress |= n != 0;
                for (uint16_t i = 0; i < n; i++) {
                    Packet* p = in[i];
                    if (p->nb_segs > 1) r.segmented++;
                    uint64_t seq = 0;
                    uint16_t fq = 0;
                    bool ok = check_frame(p, rx, dst, o.macswap, seq, fq) && (o.any_rx_queue ? fq < nq : fq == q);
                    if (!ok) {
                        r.bad++;
                        problem("queue " + std::to_string(rq) + ": corrupt frame of " + std::to_string(rx.size()) +
                                " bytes");
                        continue;
                    }
                    if (o.lossless ? seq != expect[fq] : seq < expect[fq]) {
                        r.misordered++;
                        problem("queue " + std::to_string(fq) + ": seq " + std::to_string(seq) + " where " +
                                std::to_string(expect[fq]) + " was due");
                    }
                    expect[fq] = seq + 1;
                    got[fq] = o.lossless ? got[fq] + 1 : std::max(got[fq] + 1, expect[fq]);
                    r.received++;
                }
                PacketPool::free_bulk(in, n);
            }
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

bool wait_path(NetPort& tx, NetPort& rx, PacketPool& pool, int ms) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    std::vector<uint8_t> f;
    bool arrived = false;
    for (uint64_t seq = 0; !arrived && std::chrono::steady_clock::now() < end; seq++) {
        build_frame(f, rx.mac(), seq, 64, 0);
        f[13] = kProbeEtherType & 0xff;  // 0x88b6: a probe, not a verified frame (reflectors need not count it)
        if (Packet* p = to_packets(pool, f); p != nullptr && tx.tx_burst(0, &p, 1) != 1) PacketPool::free(p);
        const auto next = std::chrono::steady_clock::now() + std::chrono::milliseconds(10);
        while (std::chrono::steady_clock::now() < next)
            for (uint16_t q = 0; q < rx.queue_pairs(); q++) {
                Packet* in[32];
                const uint16_t n = rx.rx_burst(q, in, 32);
                arrived |= n != 0;
                PacketPool::free_bulk(in, n);
            }
    }
    // Whatever is still on its way is drained, so that a verified run that follows starts clean.
    for (int i = 0; arrived && i < 20; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        for (uint16_t q = 0; q < rx.queue_pairs(); q++) {
            Packet* in[32];
            PacketPool::free_bulk(in, rx.rx_burst(q, in, 32));
        }
    }
    return arrived;
}

BackgroundTraffic::BackgroundTraffic(NetPort& tx, NetPort& rx, PacketPool& pool, uint32_t size, int cpu)
    : tx_(tx), rx_(rx), pool_(pool), size_(size) {
    thread_ = std::thread([this, cpu] { run(cpu); });
}

BackgroundTraffic::~BackgroundTraffic() { stop(); }

void BackgroundTraffic::stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

std::string BackgroundTraffic::first_problem() const {
    std::lock_guard<std::mutex> g(lock_);
    return problem_;
}

bool BackgroundTraffic::wait_flow(uint64_t n, int ms) const {
    const uint64_t base = received_.load();
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (received_.load() < base + n)
        if (std::chrono::steady_clock::now() > end)
            return false;
        else
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return true;
}

void BackgroundTraffic::run(int cpu) {
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(static_cast<unsigned>(cpu), &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    std::vector<uint8_t> f, rx;
    uint64_t next = 0, expect = 0;
    const auto dst = rx_.mac();
    while (!stop_.load(std::memory_order_relaxed)) {
        Packet* burst[32];
        uint16_t nb = 0;
        for (; nb < 32; nb++) {
            build_frame(f, dst, next + nb, size_, 0);
            burst[nb] = to_packets(pool_, f);
            if (burst[nb] == nullptr) break;
        }
        const uint16_t sent = tx_.tx_burst(0, burst, nb);
        PacketPool::free_bulk(burst + sent, nb - sent);
        next += sent;
        sent_ += sent;
        uint16_t got = 0;
        for (uint16_t q = 0; q < rx_.queue_pairs(); q++) {
            Packet* in[32];
            const uint16_t n = rx_.rx_burst(q, in, 32);
            got = static_cast<uint16_t>(got + n);
            for (uint16_t i = 0; i < n; i++) {
                uint64_t seq = 0;
                uint16_t fq = 0;
                if (!check_frame(in[i], rx, dst, false, seq, fq) || rx.size() != size_) {
                    bad_++;
                    std::lock_guard<std::mutex> g(lock_);
                    if (problem_.empty()) problem_ = "corrupt frame of " + std::to_string(rx.size()) + " bytes";
                } else if (seq < expect) {
                    misordered_++;
                    std::lock_guard<std::mutex> g(lock_);
                    if (problem_.empty())
                        problem_ = "seq " + std::to_string(seq) + " after " + std::to_string(expect - 1);
                } else {
                    expect = seq + 1;
                }
            }
            received_ += n;
            PacketPool::free_bulk(in, n);
        }
        if (sent == 0 && got == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    pool_.flush_thread_cache();
}

}  // namespace vireo::test
