// DmaMemory: chunks are IOVA-contiguous in every mode; growth and limits.
#include <gtest/gtest.h>

#include "support/pagemap_oracle.hpp"
#include "vireo/base/error.hpp"
#include "vireo/iova/dma_memory.hpp"
#include "vireo/iova/pagemap.hpp"

namespace vireo {
namespace {

DmaMemoryOptions small(IovaMode mode, PaSource src = PaSource::Pagemap, size_t region = 1 << 20) {
    DmaMemoryOptions o;
    o.mode = mode;
    o.pa_source = src;
    o.region_size = region;
    o.region.backing = DmaBacking::Memfd4K;
    return o;
}

TEST(DmaMemory, VaModeChunksAreAlignedAndIdentity) {
    DmaMemory mem(small(IovaMode::VA));
    for (size_t align : {1, 8, 64, 4096}) {
        DmaChunk c = mem.allocate(100, align);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(c.va) % align, 0u);
        EXPECT_EQ(c.iova, Iova{reinterpret_cast<uintptr_t>(c.va)});
    }
}

TEST(DmaMemory, RegionListenersSeeEveryRegionBeforeItIsUsed) {
    DmaMemory mem(small(IovaMode::VA, PaSource::Pagemap, 64 << 10));
    std::vector<size_t> seen;
    const size_t id = mem.add_region_listener([&](size_t i) { seen.push_back(i); });
    EXPECT_EQ(seen, std::vector<size_t>{0});  // the existing region, at once
    mem.allocate(200 << 10, 4096);            // a new region
    EXPECT_EQ(seen, (std::vector<size_t>{0, 1}));
    mem.remove_region_listener(id);
    mem.allocate(200 << 10, 4096);
    EXPECT_EQ(seen.size(), 2u);
}

TEST(DmaMemory, ARegionAListenerRefusesIsNeverHandedOut) {
    DmaMemory mem(small(IovaMode::VA, PaSource::Pagemap, 64 << 10));
    bool refuse = true;
    mem.add_region_listener([&](size_t i) {
        if (i > 0 && refuse) throw Error("no");
    });
    EXPECT_THROW(mem.allocate(200 << 10, 4096), Error);
    EXPECT_EQ(mem.region_count(), 1u);
    refuse = false;
    DmaChunk c = mem.allocate(200 << 10, 4096);
    EXPECT_EQ(mem.region_count(), 2u);
    EXPECT_EQ(mem.map().iova(c.va), Iova{reinterpret_cast<uintptr_t>(c.va)});
}

TEST(DmaMemory, LinearPaLayoutStartsAtBaseAndGrows) {
    auto o = small(IovaMode::PA, PaSource::Linear, 64 << 10);
    o.linear_base = 0x80000000;
    DmaMemory mem(o);
    DmaChunk a = mem.allocate(1000, 64);
    EXPECT_EQ(a.iova, Iova{0x80000000u});
    EXPECT_NE(a.iova, Iova{reinterpret_cast<uintptr_t>(a.va)});
    // A chunk bigger than a region gets a region of its own, placed after the first.
    DmaChunk b = mem.allocate(200 << 10, 4096);
    EXPECT_EQ(mem.region_count(), 2u);
    EXPECT_GE(b.iova, Iova{0x80000000u + (64 << 10)});
    EXPECT_EQ(mem.map().va(b.iova, b.len), b.va);
}

TEST(DmaMemory, FullIsAClearError) {
    auto o = small(IovaMode::VA, PaSource::Pagemap, 64 << 10);
    o.max_regions = 2;
    DmaMemory mem(o);
    mem.allocate(60 << 10);
    mem.allocate(60 << 10);
    try {
        mem.allocate(60 << 10);
        FAIL() << "third region was created";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("region_size"), std::string::npos) << e.what();
    }
    EXPECT_THROW(mem.allocate(0), Error);
    EXPECT_THROW(mem.allocate(64, 3), Error);
    o.max_regions = 9;
    EXPECT_THROW(DmaMemory{o}, Error);
}

// Real physical pages of 4 KiB memfd memory are scattered: no chunk may cross
// a break. Checked with the independent pagemap oracle, byte by byte page by page.
TEST(DmaMemory, PagemapChunksNeverCrossAPhysicalBreak) {
    if (!test::running_as_root()) {
        EXPECT_THROW(DmaMemory{small(IovaMode::PA)}, Error);
        return;
    }
    DmaMemory mem(small(IovaMode::PA, PaSource::Pagemap, 4 << 20));
    size_t crossings_avoided = 0;
    uint8_t* prev_end = nullptr;
    for (int i = 0; i < 1000; i++) {
        DmaChunk c = mem.allocate(3000, 64);
        if (prev_end != nullptr && c.va > prev_end + 64) crossings_avoided++;
        prev_end = c.va + c.len;
        auto first = test::oracle_phys(c.va);
        ASSERT_TRUE(first.has_value());
        ASSERT_EQ(*first, c.iova.value);  // PA mode: the IOVA is the physical address
        for (size_t off = 4096 - reinterpret_cast<uintptr_t>(c.va) % 4096; off < c.len; off += 4096)
            ASSERT_EQ(test::oracle_phys(c.va + off), (c.iova + off).value) << "chunk " << i << " crosses a break";
        ASSERT_EQ(test::oracle_phys(c.va + c.len - 1), (c.iova + c.len - 1).value);
    }
    // 4 KiB pages of a memfd are almost never all contiguous: the allocator had to skip.
    RecordProperty("crossings_avoided", static_cast<int>(crossings_avoided));
}

}  // namespace
}  // namespace vireo
