// The soak's bookkeeping (tests/soak/seq_stream.cpp): a soak that cannot tell
// a frame lost while the link was down from one lost while it was up, or
// that misses a duplicate, a reordering or a corrupted byte, proves nothing.
#include <gtest/gtest.h>

#include "soak/footprint.hpp"
#include "soak/seq_stream.hpp"

namespace vireo::soak {
namespace {

constexpr Mac kDst = {2, 0, 0, 0, 0, 2};
constexpr Mac kSrc = {2, 0, 0, 0, 0, 1};
constexpr uint64_t kMs = 1000000;

TEST(SoakFrame, RoundTripsAndCatchesEveryFlippedByte) {
    for (uint32_t len : {kMinFrame, 65u, 1000u, kMaxFrame}) {
        std::vector<uint8_t> f;
        const FrameHeader h{3, 123456789, 42 * kMs, len};
        build_frame(f, kDst, kSrc, h);
        ASSERT_EQ(f.size(), len);
        FrameHeader back;
        ASSERT_EQ(parse_frame(f.data(), f.size(), back), Parsed::Ok);
        EXPECT_EQ(back.stream, 3);
        EXPECT_EQ(back.seq, 123456789u);
        EXPECT_EQ(back.sent_ns, 42 * kMs);
        for (size_t i = 14; i < f.size(); i++) {  // every byte after the EtherType is covered
            f[i] ^= 0x40;
            EXPECT_EQ(parse_frame(f.data(), f.size(), back), Parsed::Corrupt) << "byte " << i << " of " << len;
            f[i] ^= 0x40;
        }
        EXPECT_EQ(parse_frame(f.data(), f.size() - 1, back), Parsed::Corrupt) << "a truncated frame";
    }
    std::vector<uint8_t> other(64, 0);
    other[12] = 0x08;  // IPv4: a switch's frame, not ours
    FrameHeader h;
    EXPECT_EQ(parse_frame(other.data(), other.size(), h), Parsed::NotOurs);
}

TEST(SoakReceiver, CountsDuplicatesAndReorderingApartFromGaps) {
    SeqReceiver rx;
    for (uint64_t s : {0, 1, 2, 5, 6}) rx.receive(s);  // 3 and 4 lost: a gap, not a reordering
    EXPECT_EQ(rx.misordered(), 0u);
    rx.receive(4);  // late: after 6
    EXPECT_EQ(rx.misordered(), 1u);
    rx.receive(6);
    EXPECT_EQ(rx.duplicates(), 1u);
    rx.receive(100000);  // far ahead: the bitmap grows
    EXPECT_TRUE(rx.seen(100000));
    EXPECT_FALSE(rx.seen(3));
    EXPECT_EQ(rx.received(), 7u);
}

// 100 frames, one per millisecond from t = 1000 ms; the back end is stopped
// at 1030 ms and the path is back at 1050 ms.
TEST(SoakAccount, TellsLostWhileDownFromLostWhileUp) {
    SendLog log;
    for (uint64_t s = 0; s < 100; s++) log.record(s, 1, (1000 + s) * kMs);
    SeqReceiver rx;
    for (uint64_t s = 0; s < 100; s++)
        if (!(s >= 28 && s < 45) && s != 70) rx.receive(s);  // 28..44 around the outage, 70 long after it
    const std::vector<Outage> outages = {{1030 * kMs, 1050 * kMs}};
    LossReport r = account(log, rx, outages, 2 * kMs, 1000 * kMs);
    EXPECT_EQ(r.sent, 100u);
    EXPECT_EQ(r.lost_while_down, 17u) << "28 and 29 were on their way when it stopped: within the grace";
    ASSERT_EQ(r.lost_per_outage.size(), 1u);
    EXPECT_EQ(r.lost_per_outage[0], 17u);
    EXPECT_EQ(r.lost, 1u);
    EXPECT_FALSE(r.clean());
    EXPECT_NE(r.first_lost.find("seq 70"), std::string::npos) << r.first_lost;
    ASSERT_EQ(r.lost_by_second.size(), 1u);

    // Without the grace, the two frames sent just before the stop are losses while up.
    r = account(log, rx, outages, 0, 1000 * kMs);
    EXPECT_EQ(r.lost_while_down, 15u);
    EXPECT_EQ(r.lost, 3u);
}

TEST(SoakAccount, AnOpenOutageLastsToTheEndAndBurstsKeepTheirTime) {
    SendLog log;
    log.record(0, 32, 10 * kMs);
    log.record(32, 32, 20 * kMs);
    log.record(64, 32, 30 * kMs);
    EXPECT_EQ(log.sent_ns(31), 10 * kMs);
    EXPECT_EQ(log.sent_ns(32), 20 * kMs);
    EXPECT_EQ(log.sent_ns(95), 30 * kMs);
    EXPECT_THROW(log.sent_ns(96), std::out_of_range);
    EXPECT_THROW(log.record(100, 1, 0), std::logic_error);
    SeqReceiver rx;
    for (uint64_t s = 0; s < 64; s++) rx.receive(s);
    const LossReport r = account(log, rx, {{5 * kMs, 6 * kMs}, {25 * kMs, 0}}, 0, 0);
    EXPECT_EQ(r.lost_while_down, 32u);
    EXPECT_EQ(r.lost_per_outage[0], 0u);
    EXPECT_EQ(r.lost_per_outage[1], 32u);
    EXPECT_TRUE(r.clean());
}

// Losses while up are the back end's own drops only in runs where it counted
// at least as many; elsewhere (or where its counters are unknown) they stay lost.
TEST(SoakAccount, BackEndDropsExplainOnlyTheirOwnRun) {
    const std::vector<uint64_t> restarts = {100, 200, 300};  // run 0 before 100, run 1 from 100...
    const std::vector<uint64_t> lost = {150, 151, 152, 250, 350};
    EXPECT_EQ(dropped_by_backend(lost, restarts, {{1, 3, "port 3: 3"}}), 3u);
    EXPECT_EQ(dropped_by_backend(lost, restarts, {{1, 2, "port 3: 2"}}), 0u) << "fewer drops than losses";
    EXPECT_EQ(dropped_by_backend(lost, restarts, {{0, 10, ""}, {2, 1, ""}}), 1u) << "run 0 lost nothing";
    EXPECT_EQ(dropped_by_backend(lost, restarts, {}), 0u) << "counters unknown";
}

TEST(SoakFootprint, FlatOnlyWithoutGrowth) {
    std::vector<Footprint> s;
    for (int i = 0; i < 10; i++) s.push_back({10.0 * i, 20000u + (i % 3) * 300u, 65536, 27, true});
    FlatVerdict v = judge(s, 1024);
    EXPECT_TRUE(v.flat) << v.why;  // allocator noise within the slack
    s[7].fds = 28;                 // one descriptor more, once, is a leak's sign
    v = judge(s, 1024);
    EXPECT_FALSE(v.flat);
    EXPECT_NE(v.why.find("27 -> 28"), std::string::npos) << v.why;
    s[7].fds = 27;
    for (size_t i = 5; i < s.size(); i++) s[i].rss_kb += 400 * i;  // growing in the second half
    v = judge(s, 1024);
    EXPECT_FALSE(v.flat);
    EXPECT_GT(v.rss_growth_kb, 1024);
    s.resize(3);
    EXPECT_FALSE(judge(s, 1024).flat) << "too few samples to judge";
}

}  // namespace
}  // namespace vireo::soak
