// Built by ci/install-check against the installed headers and vireo.pc only,
// as an outside project would: the README's example, checked.
#include <cstdio>
#include <vireo/mempool/packet_pool.hpp>

int main() {
    vireo::DmaMemory mem({.mode = vireo::IovaMode::VA});
    vireo::PacketPool pool(mem, {.count = 8192, .data_room = 2048});
    vireo::Packet* p[32];
    if (!pool.alloc_bulk(p, 32)) return 1;
    for (vireo::Packet* x : p)
        if (x->buf_iova != mem.map().iova(x->buf_va)) return 1;
    vireo::PacketPool::free_bulk(p, 32);
    std::printf("consumer: 32 packets allocated and freed, in use %u\n", pool.in_use());
    return pool.in_use() == 0 ? 0 : 1;
}
