// bench/latency's histogram and schedule (latency_core.h), the part both
// drivers share: buckets that hold what they say, percentiles that land in
// the right bucket, and a paced run that sends exactly what is due.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <vector>

#include "latency_core.h"

namespace {

TEST(LatencyCore, EveryRoundTripFallsInABucketThatHoldsIt) {
    uint64_t prev_top = 0;
    for (unsigned b = 0; b + 1 < LAT_BUCKETS; b++) {
        const uint64_t top = lat_bucket_ns(b);
        ASSERT_TRUE(b == 0 || top > prev_top) << b;  // bucket edges rise
        ASSERT_EQ(lat_bucket(top), b) << top;
        ASSERT_EQ(lat_bucket(top + 1), b + 1) << top;
        prev_top = top;
    }
    for (uint64_t ns : {0ull, 1ull, 1023ull, 1024ull, 5000ull, 123456789ull}) {
        const unsigned b = lat_bucket(ns);
        EXPECT_GE(lat_bucket_ns(b), ns);
        EXPECT_LE(double(lat_bucket_ns(b)), double(ns) * 1.016 + 1) << ns;  // 64 buckets per power of two
    }
}

TEST(LatencyCore, PercentilesComeFromTheRightBucket) {
    static lat_hist h;
    std::mt19937_64 rng(7);
    std::vector<uint64_t> all;
    for (int i = 0; i < 100000; i++) {
        const uint64_t ns = 500 + rng() % 20000;
        all.push_back(ns);
        lat_add(&h, ns);
    }
    std::sort(all.begin(), all.end());
    for (double p : {0.5, 0.99, 0.999}) {
        const uint64_t exact = all[static_cast<size_t>(p * all.size())];
        const uint64_t got = lat_percentile(&h, p);
        EXPECT_GE(got, exact) << p;
        EXPECT_LE(double(got), double(exact) * 1.016 + 1) << p;
    }
    EXPECT_EQ(lat_percentile(&h, 1.0), h.max_ns);
    EXPECT_EQ(h.n, 100000u);
}

// A driver that returns every frame it is given on the next receive call.
struct Loop {
    std::deque<uint64_t> in_flight;
    uint64_t next_seq = 0, last_stamp = 0;
    bool seq_ok = true;
};
uint16_t loop_send(void* c, uint64_t seq, uint64_t stamp, uint16_t n) {
    auto* l = static_cast<Loop*>(c);
    l->last_stamp = stamp;
    l->seq_ok &= seq == l->next_seq;
    l->next_seq = seq + n;
    for (uint16_t i = 0; i < n; i++) l->in_flight.push_back(stamp);
    return n;
}
uint16_t loop_receive(void* c, uint64_t* stamps, uint16_t max) {
    auto* l = static_cast<Loop*>(c);
    uint16_t k = 0;
    while (k < max && !l->in_flight.empty()) {
        stamps[k++] = l->in_flight.front();
        l->in_flight.pop_front();
    }
    return k;
}

TEST(LatencyCore, APacedRunSendsWhatIsDueAndTakesItAllBack) {
    Loop l;
    const lat_driver d{&l, loop_send, loop_receive, nullptr};
    static lat_result r;
    const uint64_t hz = lat_tsc_hz(20);
    lat_run(&d, 20000, 0.25, hz, 1000, &r);
    EXPECT_TRUE(l.seq_ok);
    // What was due at the last send (frame k is due k / 20000 s after the run's start), whatever the machine's
    // speed: never more, and at most one burst less (a burst of 32 per call catches up after a stall).
    const double due = double(l.last_stamp - r.start_tsc) * 20000 / double(hz) + 1;
    EXPECT_LE(double(r.sent), due + 1e-6);  // the same sum in another order: rounding only
    EXPECT_GE(double(r.sent), due - LAT_BURST - 1);
    EXPECT_LE(r.sent, 5001u);  // a quarter of a second at 20000 per second
    EXPECT_EQ(r.received, r.sent);
    EXPECT_EQ(r.hist.n, r.sent);
    EXPECT_EQ(r.tx_full, 0u);
}

TEST(LatencyCore, FramesCarryTheirStampAndOthersAreIgnored) {
    uint8_t f[LAT_FRAME];
    lat_write_frame(f, 42, 0x1234567890ull);
    EXPECT_EQ(lat_read_stamp(f, LAT_FRAME), 0x1234567890ull);
    EXPECT_EQ(lat_read_stamp(f, 20), 0u);  // too short
    f[LAT_PAYLOAD] ^= 1;
    EXPECT_EQ(lat_read_stamp(f, LAT_FRAME), 0u);  // not ours
}

}  // namespace
