// vireo: per-queue counters of a virtio-net port.
#pragma once

#include <cstdint>

namespace vireo {

struct QueueStats {
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint64_t errors = 0;  // malformed completions, device faults, packets that could not be sent as given
    uint64_t drops = 0;   // Rx: no buffer to refill with; Tx: not used
    uint64_t kicks = 0;   // notifications sent to the device (each an eventfd write or MMIO store)
};

}  // namespace vireo
