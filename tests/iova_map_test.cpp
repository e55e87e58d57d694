// IovaMap with synthetic page tables: contiguity breaks, both directions of
// translation, overlap and limit checks. Needs no privilege.
#include <gtest/gtest.h>

#include <random>

#include "vireo/base/error.hpp"
#include "vireo/iova/dma_region.hpp"
#include "vireo/iova/iova_map.hpp"

namespace vireo {
namespace {

constexpr size_t P = 4096;

std::vector<Iova> iovas(std::initializer_list<uint64_t> l) {
    std::vector<Iova> v;
    for (uint64_t a : l) v.push_back(Iova{a});
    return v;
}

struct Fixture : ::testing::Test {
    DmaRegion r = DmaRegion::create({.length = 8 * P, .backing = DmaBacking::Memfd4K, .lock = false});
};

TEST_F(Fixture, VaModeIsIdentity) {
    IovaMap m(IovaMode::VA);
    m.add(r);
    for (size_t off : {size_t{0}, size_t{1}, 5 * P + 7, 8 * P - 1}) {
        const Iova same{reinterpret_cast<uintptr_t>(r.va() + off)};
        EXPECT_EQ(m.iova(r.va() + off), same);
        EXPECT_EQ(m.va(same), r.va() + off);
    }
    EXPECT_EQ(m.iova(r.va() + 8 * P), kBadIova);
    EXPECT_EQ(m.iova(r.va() - 1), kBadIova);
    EXPECT_TRUE(m.contiguous(r.va(), 8 * P));
    EXPECT_FALSE(m.contiguous(r.va() + 1, 8 * P));
}

TEST_F(Fixture, LinearLayoutIsNotTheVa) {
    IovaMap m(IovaMode::PA);
    m.add_linear(r.va(), r.length(), P, Iova{0x100000000});
    EXPECT_EQ(m.iova(r.va() + 123), Iova{0x100000000u + 123});
    EXPECT_EQ(m.va(Iova{0x100000000 + 123}, 10), r.va() + 123);
    EXPECT_EQ(m.va(Iova{0x100000000 + 8 * P - 4}, 8), nullptr);  // would run past the region
    EXPECT_EQ(m.va(Iova{0xfffffff0}, 4), nullptr);
}

TEST_F(Fixture, PageTableBreaksAreKnown) {
    // pages 0-2 contiguous, 3 alone, 4-5 contiguous, 6, 7 (descending: not contiguous)
    const std::vector<Iova> t = iovas({0x10000, 0x11000, 0x12000, 0x50000, 0x20000, 0x21000, 0x90000, 0x8f000});
    IovaMap m(IovaMode::PA);
    m.add_pages(r.va(), r.length(), P, t);
    for (size_t i = 0; i < 8; i++) {
        EXPECT_EQ(m.iova(r.va() + i * P + 9), t[i] + 9);
        EXPECT_EQ(m.va(t[i] + 9), r.va() + i * P + 9);
    }
    EXPECT_EQ(m.run_end(r.va()), r.va() + 3 * P);
    EXPECT_EQ(m.run_end(r.va() + 2 * P + 100), r.va() + 3 * P);
    EXPECT_EQ(m.run_end(r.va() + 3 * P), r.va() + 4 * P);
    EXPECT_EQ(m.run_end(r.va() + 4 * P), r.va() + 6 * P);
    EXPECT_EQ(m.run_end(r.va() + 7 * P), r.va() + 8 * P);
    EXPECT_TRUE(m.contiguous(r.va() + 100, 3 * P - 100));
    EXPECT_FALSE(m.contiguous(r.va() + 100, 3 * P - 99));
    EXPECT_FALSE(m.contiguous(r.va() + 6 * P, 2 * P));
    // iova -> va never crosses a break even where the IOVAs touch (0x8f000 + P == 0x90000).
    EXPECT_EQ(m.va(Iova{0x8f000 + P - 4}, 8), nullptr);
    EXPECT_EQ(m.va(Iova{0x12000 + P - 4}, 8), nullptr);
    EXPECT_EQ(m.va(Iova{0x11000}, 2 * P), r.va() + P);
}

TEST_F(Fixture, FullyContiguousTableBecomesLinear) {
    std::vector<Iova> t;
    for (size_t i = 0; i < 8; i++) t.push_back(Iova{0x40000000 + i * P});
    IovaMap m(IovaMode::PA);
    m.add_pages(r.va(), r.length(), P, t);
    ASSERT_EQ(m.regions().size(), 1u);
    EXPECT_TRUE(m.regions()[0].linear);
    EXPECT_EQ(m.iova(r.va() + 5 * P + 1), Iova{0x40000000u + 5 * P + 1});
}

TEST_F(Fixture, RejectsOverlapsAndBadTables) {
    IovaMap m(IovaMode::PA);
    m.add_linear(r.va(), 4 * P, P, Iova{0x100000});
    EXPECT_THROW(m.add_linear(r.va() + 2 * P, 2 * P, P, Iova{0x900000}), Error);     // VA overlap
    EXPECT_THROW(m.add_linear(r.va() + 4 * P, 4 * P, P, Iova{0x102000}), Error);     // IOVA overlap
    EXPECT_THROW(m.add_pages(r.va() + 4 * P, 4 * P, P, iovas({1, 2})), Error);       // wrong size
    EXPECT_THROW(m.add_linear(r.va() + 4 * P, 4 * P, 3000, Iova{0x900000}), Error);  // page size
    EXPECT_THROW(m.add_linear(r.va() + 4 * P, 4 * P, P, Iova{0x900001}), Error);     // unaligned base
    m.add_linear(r.va() + 4 * P, 4 * P, P, Iova{0x104000});                          // adjacent is fine
    EXPECT_EQ(m.regions().size(), 2u);
    m.remove(r.va());
    EXPECT_EQ(m.iova(r.va()), kBadIova);
    EXPECT_EQ(m.iova(r.va() + 4 * P), Iova{0x104000});
    EXPECT_THROW(m.remove(r.va()), Error);
}

TEST(IovaMap, AtMostEightRegions) {
    DmaRegion r = DmaRegion::create({.length = 9 * P, .backing = DmaBacking::Memfd4K, .lock = false});
    IovaMap m(IovaMode::VA);
    for (size_t i = 0; i < IovaMap::kMaxRegions; i++) m.add_linear(r.va() + i * P, P, P, Iova{0x1000000 + i * P});
    try {
        m.add_linear(r.va() + 8 * P, P, P, Iova{0x2000000});
        FAIL() << "a ninth region was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("vhost-user"), std::string::npos);
    }
}

TEST(IovaMap, RandomPageTableRoundTrips) {
    constexpr size_t kPages = 512;
    DmaRegion r = DmaRegion::create({.length = kPages * P, .backing = DmaBacking::Memfd4K, .lock = false});
    std::mt19937_64 rng(7);
    std::vector<Iova> t(kPages);
    uint64_t next = 0x1000000;
    for (auto& a : t) {  // runs of random length at random gaps
        a = Iova{next};
        next += (rng() % 4 == 0) ? P * (2 + rng() % 100) : P;
    }
    IovaMap m(IovaMode::PA);
    m.add_pages(r.va(), r.length(), P, t);
    for (int k = 0; k < 100000; k++) {
        size_t off = rng() % (kPages * P);
        Iova io = m.iova(r.va() + off);
        ASSERT_EQ(io, t[off / P] + off % P);
        ASSERT_EQ(m.va(io), r.va() + off);
        const uint8_t* end = m.run_end(r.va() + off);
        size_t last = (end - r.va()) / P - 1;  // the run holds pages off/P..last, contiguous, and ends there
        for (size_t i = off / P; i < last; i++) ASSERT_EQ(t[i + 1], t[i] + P);
        if (last + 1 < kPages) {
            ASSERT_NE(t[last + 1], t[last] + P);
        }
    }
}

}  // namespace
}  // namespace vireo
