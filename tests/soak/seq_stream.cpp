#include "seq_stream.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>

namespace vireo::soak {
namespace {

constexpr size_t kHeader = 14 + 2 + 8 + 8 + 4;  // Ethernet, stream, seq, sent_ns, len

uint32_t fnv1a(const uint8_t* p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

uint8_t pattern(uint64_t seq, size_t i) { return static_cast<uint8_t>(seq * 31 + i * 7 + (i >> 8)); }

}  // namespace

void build_frame(std::vector<uint8_t>& out, const Mac& dst, const Mac& src, const FrameHeader& h) {
    if (h.len < kMinFrame || h.len > kMaxFrame) throw std::invalid_argument("soak frame length out of range");
    out.resize(h.len);
    uint8_t* f = out.data();
    std::memcpy(f, dst.data(), 6);
    std::memcpy(f + 6, src.data(), 6);
    f[12] = kEtherType >> 8;
    f[13] = kEtherType & 0xff;
    std::memcpy(f + 14, &h.stream, 2);
    std::memcpy(f + 16, &h.seq, 8);
    std::memcpy(f + 24, &h.sent_ns, 8);
    std::memcpy(f + 32, &h.len, 4);
    for (size_t i = kHeader; i + 4 < h.len; i++) f[i] = pattern(h.seq, i);
    const uint32_t c = fnv1a(f + 14, h.len - 18);
    std::memcpy(f + h.len - 4, &c, 4);
}

Parsed parse_frame(const uint8_t* f, size_t n, FrameHeader& h) {
    if (n < 14 || f[12] != kEtherType >> 8 || f[13] != (kEtherType & 0xff)) return Parsed::NotOurs;
    if (n < kMinFrame || n > kMaxFrame) return Parsed::Corrupt;
    std::memcpy(&h.stream, f + 14, 2);
    std::memcpy(&h.seq, f + 16, 8);
    std::memcpy(&h.sent_ns, f + 24, 8);
    std::memcpy(&h.len, f + 32, 4);
    uint32_t c;
    std::memcpy(&c, f + n - 4, 4);
    return h.len == n && c == fnv1a(f + 14, n - 18) ? Parsed::Ok : Parsed::Corrupt;
}

void SendLog::record(uint64_t first_seq, uint32_t count, uint64_t sent_ns) {
    if (count == 0) return;
    if (first_seq != next_) throw std::logic_error("SendLog: sequence numbers must follow on");
    bursts_.push_back({first_seq, sent_ns});
    next_ = first_seq + count;
}

uint64_t SendLog::sent_ns(uint64_t seq) const {
    // The last burst that starts at or before seq.
    auto it =
        std::upper_bound(bursts_.begin(), bursts_.end(), seq, [](uint64_t s, const Burst& b) { return s < b.first; });
    if (it == bursts_.begin() || seq >= next_) throw std::out_of_range("SendLog: seq never sent");
    return std::prev(it)->sent_ns;
}

void SeqReceiver::receive(uint64_t seq) {
    if (seen(seq)) {
        duplicates_++;
        return;
    }
    if (seq / 64 >= seen_.size()) seen_.resize(seq / 64 + 1 + seen_.size() / 2, 0);
    seen_[seq / 64] |= uint64_t{1} << (seq % 64);
    received_++;
    if (seq < next_)
        misordered_++;
    else
        next_ = seq + 1;
}

LossReport account(const SendLog& log, const SeqReceiver& rx, const std::vector<Outage>& outages, uint64_t grace_ns,
                   uint64_t start_ns) {
    LossReport r;
    r.sent = log.sent();
    r.received = rx.received();
    r.duplicates = rx.duplicates();
    r.misordered = rx.misordered();
    r.corrupted = rx.corrupted();
    r.lost_per_outage.assign(outages.size(), 0);
    std::map<uint64_t, uint64_t> by_second;
    for (uint64_t seq = 0; seq < r.sent; seq++) {
        if (rx.seen(seq)) continue;
        const uint64_t t = log.sent_ns(seq);
        // The first outage that has not ended before t.
        auto o = std::partition_point(outages.begin(), outages.end(),
                                      [&](const Outage& x) { return x.end_ns != 0 && x.end_ns < t; });
        if (o != outages.end() && t + grace_ns >= o->begin_ns) {
            r.lost_while_down++;
            r.lost_per_outage[static_cast<size_t>(o - outages.begin())]++;
            continue;
        }
        r.lost++;
        const uint64_t second = t > start_ns ? (t - start_ns) / 1000000000 : 0;
        by_second[second]++;
        if (r.lost_sent_ns.size() < 100000) r.lost_sent_ns.push_back(t);
        if (r.first_lost.empty())
            r.first_lost =
                "seq " + std::to_string(seq) + " sent at " + std::to_string(second) + " s, outside every outage";
    }
    r.lost_by_second.assign(by_second.begin(), by_second.end());
    return r;
}

uint64_t dropped_by_backend(const std::vector<uint64_t>& lost_sent_ns, const std::vector<uint64_t>& run_starts_ns,
                            const std::vector<BackendDrops>& drops) {
    std::map<size_t, uint64_t> lost_in_run;
    for (uint64_t t : lost_sent_ns)
        lost_in_run[static_cast<size_t>(std::upper_bound(run_starts_ns.begin(), run_starts_ns.end(), t) -
                                        run_starts_ns.begin())]++;
    uint64_t explained = 0;
    for (const auto& [run, lost] : lost_in_run)
        for (const BackendDrops& d : drops)
            if (d.run == run && d.frames >= lost) explained += lost;
    return explained;
}

}  // namespace vireo::soak
