// Where a virtqueue lives (QueueAreas), for a transport to program: the
// queue pairs' and the control queue's.
#pragma once

#include <cstdint>

#include "vireo/iova/dma_memory.hpp"
#include "vireo/pmd/transport.hpp"

namespace vireo {

// Where a virtqueue lives, for the transport to program.
template <class Q>
QueueAreas areas_of(Q& q, const DmaMemory& mem, uint16_t index) {
    const IovaMap& m = mem.map();
    return {index,
            q.size(),
            Q::kPacked,
            q.desc_iova(),
            q.driver_iova(),
            q.device_iova(),
            m.va(q.desc_iova()),
            m.va(q.driver_iova()),
            m.va(q.device_iova())};
}

}  // namespace vireo
