// Test helper: a NetPort on a fake transport (port id 3) over fake PA
// memory, and the spec-written test device on any of its queues.
#pragma once

#include <memory>
#include <string>

#include "support/device_model.hpp"
#include "support/fake_memory.hpp"
#include "support/fake_transport.hpp"
#include "vireo/pmd/net_port.hpp"

namespace vireo::test {

struct Rig {
    DmaMemory mem{fake_pa_memory()};
    PacketPool pool;
    FakeTransport* t;
    std::unique_ptr<NetPort> port;

    explicit Rig(virtio::Features offered, const std::string& dev = "vhost-user:/fake,ring=64", uint16_t max_pairs = 1,
                 uint32_t packets = 1024)
        : pool(mem, {.count = packets, .cache_size = 0}) {
        auto tr = std::make_unique<FakeTransport>(offered);
        tr->max_pairs = max_pairs;
        t = tr.get();
        port = std::make_unique<NetPort>(std::move(tr), parse_device_string(dev), mem, pool, 3);
    }
    SplitDevice device(uint16_t index) {
        const QueueAreas& a = t->areas.at(index);
        return SplitDevice(mem.map(), a.size, a.desc_iova, a.driver_iova, a.device_iova, true);
    }
};

}  // namespace vireo::test
