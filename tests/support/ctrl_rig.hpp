// Test helper: a NetPort on a fake transport whose control queue is served
// by a device thread that acks every command and records it.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/device_model.hpp"
#include "support/fake_memory.hpp"
#include "support/fake_transport.hpp"
#include "vireo/pmd/net_port.hpp"

namespace vireo::test {

struct Command {
    uint8_t cls, cmd;
    std::vector<uint8_t> data;
    size_t descriptors = 0;
};

// A port on a fake transport, and a device thread that acks every control
// command (on queue 2 x the device's queue pairs, 5.1.2) and records it.
struct CtrlRig {
    DmaMemory mem{fake_pa_memory()};
    PacketPool pool{mem, {.count = 512, .cache_size = 0}};
    FakeTransport* t;
    std::unique_ptr<NetPort> port;
    std::mutex lock;
    std::vector<Command> seen;
    std::atomic<bool> stop{false};
    std::thread device;

    uint16_t ctrl_index = 2;

    explicit CtrlRig(virtio::Features offered, const std::string& dev = "vhost-user:/fake,ring=64",
                     uint16_t max_pairs = 1) {
        auto tr = std::make_unique<FakeTransport>(offered);
        tr->max_pairs = max_pairs;
        if (virtio::has(offered, virtio::feature::kNetMq)) ctrl_index = static_cast<uint16_t>(2 * max_pairs);
        t = tr.get();
        port = std::make_unique<NetPort>(std::move(tr), parse_device_string(dev), mem, pool, 0);
        device = std::thread([this] { serve(); });
    }
    ~CtrlRig() {
        stop = true;
        device.join();
    }
    void serve() {
        std::unique_ptr<SplitDevice> ctrl;
        std::deque<DevBuffer> got;
        int generation = -1, live_while = -1;
        while (!stop) {
            QueueAreas a{};
            int setups_now = 0, resets_then = 0;
            if (!t->area(ctrl_index, &a, &setups_now, &resets_then)) {
                std::this_thread::yield();
                continue;
            }
            std::unique_lock<std::mutex> access(t->device_access);  // reset() waits for it
            if (!ctrl || setups_now != generation) {                // a bring-up set the queues (again): a fresh ring
                ctrl =
                    std::make_unique<SplitDevice>(mem.map(), a.size, a.desc_iova, a.driver_iova, a.device_iova, true);
                generation = setups_now;
                live_while = resets_then;
                got.clear();
            }
            // Reset since it was set up: the ring is the driver's again until the next setup.
            if (t->resets != live_while || ctrl->take(1, got) == 0) {
                access.unlock();
                std::this_thread::yield();
                continue;
            }
            DevBuffer& b = got.front();
            Command c{b.segs[0].va[0], b.segs[0].va[1], {}, b.segs.size()};
            for (size_t i = 1; i + 1 < b.segs.size(); i++)
                c.data.insert(c.data.end(), b.segs[i].va, b.segs[i].va + b.segs[i].len);
            {  // recorded before the ack: a command that returned is always in commands()
                std::lock_guard<std::mutex> g(lock);
                seen.push_back(std::move(c));
            }
            b.segs.back().va[0] = virtio::kNetCtrlOk;
            b.written = 1;
            ctrl->complete({b});
            got.pop_front();
        }
    }
    SplitDevice queue(uint16_t index) {
        const QueueAreas& a = t->areas.at(index);
        return SplitDevice(mem.map(), a.size, a.desc_iova, a.driver_iova, a.device_iova, true);
    }
    std::vector<Command> commands() {
        std::lock_guard<std::mutex> g(lock);
        return seen;
    }
};

}  // namespace vireo::test
