// PacketPool: metadata layout, buffer IOVAs in each mode, chains, bulk free.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "support/pagemap_oracle.hpp"
#include "vireo/base/error.hpp"
#include "vireo/mempool/packet_pool.hpp"

namespace vireo {
namespace {

DmaMemoryOptions memory(IovaMode mode, PaSource src = PaSource::Linear) {
    DmaMemoryOptions o;
    o.mode = mode;
    o.pa_source = src;
    o.region_size = 32 << 20;
    o.region.backing = DmaBacking::Memfd4K;
    return o;
}

TEST(Packet, MetadataIsOneCacheLine) {
    EXPECT_EQ(sizeof(Packet), 64u);
    EXPECT_EQ(alignof(Packet), 64u);
    EXPECT_LT(offsetof(Packet, l3_len), 64u);
}

void check_every_buffer(PacketPool& pool, const DmaMemory& mem, uint32_t count) {
    std::vector<Packet*> pkts(count);
    ASSERT_TRUE(pool.alloc_bulk(pkts.data(), count));
    for (Packet* p : pkts) {
        ASSERT_EQ(p->buf_iova, mem.map().iova(p->buf_va));
        ASSERT_TRUE(mem.map().contiguous(p, sizeof(Packet) + p->buf_len));
        ASSERT_EQ(p->data_off, pool.headroom());
        ASSERT_EQ(p->buf_len, pool.headroom() + pool.data_room());
        ASSERT_EQ(p->nb_segs, 1);
        ASSERT_EQ(p->pool, &pool);
    }
    PacketPool::free_bulk(pkts.data(), count);
    EXPECT_EQ(pool.in_use(), 0u);
}

TEST(PacketPool, VaModeBuffersCarryTheirVa) {
    DmaMemory mem(memory(IovaMode::VA));
    PacketPool pool(mem, {.count = 1000, .headroom = 128, .data_room = 2048, .cache_size = 64});
    EXPECT_EQ(pool.mode(), IovaMode::VA);
    check_every_buffer(pool, mem, 1000);
    Packet* p = pool.alloc();
    EXPECT_EQ(p->buf_iova, Iova{reinterpret_cast<uintptr_t>(p->buf_va)});
    PacketPool::free(p);
}

// dma=window's slots: a device may rewrite its memory, so the Packets (what
// vireo follows: addresses, links, the owning pool) are not in it, only the
// buffers, each IOVA-contiguous.
TEST(PacketPool, MetadataApartLeavesOnlyBuffersInDmaMemory) {
    for (IovaMode mode : {IovaMode::VA, IovaMode::PA}) {
        DmaMemory mem(memory(mode));
        const size_t before = mem.bytes_allocated();
        PacketPool pool(mem,
                        {.count = 500, .headroom = 128, .data_room = 2048, .cache_size = 0, .metadata_apart = true});
        EXPECT_EQ(mem.bytes_allocated() - before, 500u * (128 + 2048)) << "buffers only, nothing else";
        std::vector<Packet*> pkts(500);
        ASSERT_TRUE(pool.alloc_bulk(pkts.data(), 500));
        for (Packet* p : pkts) {
            ASSERT_EQ(mem.map().iova(p), kBadIova) << "a Packet lies in DMA memory";
            ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
            ASSERT_EQ(p->buf_iova, mem.map().iova(p->buf_va));
            ASSERT_TRUE(mem.map().contiguous(p->buf_va, p->buf_len));
            ASSERT_EQ(p->buf_len, 128 + 2048);
            ASSERT_EQ(p->data_off, 128);
            ASSERT_EQ(p->pool, &pool);
            std::memset(p->buf_va, 0xee, p->buf_len);  // the whole buffer is the Packet's own
        }
        PacketPool::free_bulk(pkts.data(), 500);
        EXPECT_EQ(pool.in_use(), 0u);
    }
}

TEST(PacketPool, LinearPaModeBuffersNeverCarryAVa) {
    auto o = memory(IovaMode::PA);
    o.linear_base = 0x200000000;
    DmaMemory mem(o);
    PacketPool pool(mem, {.count = 1000, .headroom = 256, .data_room = 9000, .cache_size = 0});
    check_every_buffer(pool, mem, 1000);
    Packet* p = pool.alloc();
    EXPECT_GE(p->buf_iova, Iova{0x200000000u});
    EXPECT_NE(p->buf_iova, Iova{reinterpret_cast<uintptr_t>(p->buf_va)});
    PacketPool::free(p);
}

TEST(PacketPool, PagemapPaModeBuffersMatchPhysicalPages) {
    if (!test::running_as_root()) {  // without root the same request is refused clearly
        EXPECT_THROW(DmaMemory{memory(IovaMode::PA, PaSource::Pagemap)}, Error);
        return;
    }
    DmaMemory mem(memory(IovaMode::PA, PaSource::Pagemap));
    PacketPool pool(mem, {.count = 2000, .headroom = 128, .data_room = 2048, .cache_size = 0});
    std::vector<Packet*> pkts(2000);
    ASSERT_TRUE(pool.alloc_bulk(pkts.data(), 2000));
    for (Packet* p : pkts) {
        ASSERT_EQ(test::oracle_phys(p->buf_va), p->buf_iova.value);  // PA mode: IOVA = physical
        const uint8_t* last = p->buf_va + p->buf_len - 1;            // no buffer straddles a physical break
        ASSERT_EQ(test::oracle_phys(last), (p->buf_iova + p->buf_len - 1).value);
    }
    PacketPool::free_bulk(pkts.data(), 2000);
    EXPECT_EQ(pool.in_use(), 0u);
}

TEST(PacketPool, DataOperationsRespectBounds) {
    DmaMemory mem(memory(IovaMode::VA));
    PacketPool pool(mem, {.count = 4, .headroom = 128, .data_room = 256});
    Packet* p = pool.alloc();
    ASSERT_NE(p->append(200), nullptr);
    EXPECT_EQ(p->pkt_len, 200u);
    EXPECT_EQ(p->append(57), nullptr);
    ASSERT_NE(p->append(56), nullptr);
    EXPECT_EQ(p->tailroom(), 0);
    ASSERT_NE(p->prepend(12), nullptr);  // a virtio-net header
    EXPECT_EQ(p->data_iova(), p->buf_iova + 116);
    EXPECT_EQ(p->prepend(117), nullptr);
    EXPECT_TRUE(p->adj(12));
    EXPECT_EQ(p->pkt_len, 256u);
    EXPECT_FALSE(p->adj(257));
    PacketPool::free(p);
    EXPECT_EQ(pool.in_use(), 0u);
}

TEST(PacketPool, ChainsReturnEverySegmentToItsPool) {
    DmaMemory mem(memory(IovaMode::VA));
    PacketPool a(mem, {.count = 64, .cache_size = 16});
    PacketPool b(mem, {.count = 64, .cache_size = 16});
    std::vector<Packet*> heads;
    for (int i = 0; i < 20; i++) {
        Packet* h = a.alloc();
        Packet* s1 = b.alloc();
        Packet* s2 = a.alloc();
        h->next = s1;
        s1->next = s2;
        h->nb_segs = 3;
        heads.push_back(h);
        heads.push_back(b.alloc());  // single-segment packets of another pool in between
    }
    EXPECT_EQ(a.in_use(), 40u);
    EXPECT_EQ(b.in_use(), 40u);
    PacketPool::free_bulk(heads.data(), static_cast<uint32_t>(heads.size()));
    EXPECT_EQ(a.in_use(), 0u);
    EXPECT_EQ(b.in_use(), 0u);
}

TEST(PacketPool, ExhaustionAndReuseReset) {
    DmaMemory mem(memory(IovaMode::VA));
    PacketPool pool(mem, {.count = 8, .cache_size = 0});
    Packet* p[9];
    ASSERT_TRUE(pool.alloc_bulk(p, 8));
    EXPECT_EQ(pool.alloc(), nullptr);
    EXPECT_FALSE(pool.alloc_bulk(p + 8, 1));
    p[0]->append(100);
    p[0]->ol_flags = pkt::kTxTcpCsum;
    PacketPool::free_bulk(p, 8);
    Packet* q = pool.alloc();
    EXPECT_EQ(q->data_len, 0);
    EXPECT_EQ(q->ol_flags, 0u);
    EXPECT_EQ(q->next, nullptr);
    PacketPool::free(q);
}

TEST(PacketPool, BadInputGivesOneClearError) {
    DmaMemory mem(memory(IovaMode::VA));
    EXPECT_THROW(PacketPool(mem, {.count = 8, .headroom = 64}), Error);
    EXPECT_THROW(PacketPool(mem, {.count = 8, .headroom = 128, .data_room = 0}), Error);
    EXPECT_THROW(PacketPool(mem, {.count = 8, .headroom = 128, .data_room = 65500}), Error);
    EXPECT_THROW(PacketPool(mem, {.count = 0}), Error);
}

}  // namespace
}  // namespace vireo
