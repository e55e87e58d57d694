// Test helper: DMA memory for ports on a fake transport: PA mode with
// linear "physical" addresses over 4 KiB memfd pages (no hugepages, no
// pagemap, no root needed).
#pragma once

#include "vireo/iova/dma_memory.hpp"

namespace vireo::test {

inline DmaMemoryOptions fake_pa_memory(size_t size = 16 << 20) {
    DmaMemoryOptions o;
    o.mode = IovaMode::PA;
    o.pa_source = PaSource::Linear;
    o.region_size = size;
    o.region.backing = DmaBacking::Memfd4K;
    return o;
}

}  // namespace vireo::test
