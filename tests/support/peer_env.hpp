// Test helpers shared by the tests against DPDK's vhost: a socket path unique
// to this process, and DMA memory in a given mode (PA as a guest-physical
// layout we publish, as vhost-user wants).
#pragma once

#include <unistd.h>

#include <string>

#include "vireo/iova/dma_memory.hpp"

namespace vireo::test {

inline std::string peer_socket(const std::string& tag) {
    return "/tmp/vireo-" + std::to_string(::getpid()) + "-" + tag + ".sock";
}

inline DmaMemoryOptions peer_memory(IovaMode mode, size_t region = 128 << 20) {
    DmaMemoryOptions o;
    o.mode = mode;
    o.pa_source = PaSource::Linear;
    o.region_size = region;
    return o;
}

}  // namespace vireo::test
