#include "transport/vhost_kernel/iotlb_loop.hpp"

#include <poll.h>
#include "transport/vhost_kernel/vhost_uapi.hpp"

#include <cerrno>
#include <cstdio>

#include "vireo/base/error.hpp"

namespace vireo::vhost_kernel {

IotlbLoop::IotlbLoop(std::vector<VhostDevice*> devices, Lookup lookup)
    : devices_(std::move(devices)), lookup_(std::move(lookup)) {
    thread_ = std::thread([this] { run(); });
}

IotlbLoop::~IotlbLoop() {
    stop_.raise();
    if (thread_.joinable()) thread_.join();
}

IotlbCounters IotlbLoop::counters() const {
    return {answered_.load(std::memory_order_relaxed), refused_.load(std::memory_order_relaxed),
            failed_.load(std::memory_order_relaxed)};
}

void IotlbLoop::handle_pending() {
    for (VhostDevice* d : devices_)
        while (std::optional<vhost_iotlb_msg> m = d->read_iotlb()) {
            if (m->type == VHOST_IOTLB_ACCESS_FAIL) {
                failed_.fetch_add(1, std::memory_order_relaxed);
                continue;
            }
            if (m->type != VHOST_IOTLB_MISS) continue;  // nothing else travels this way
            if (std::optional<iotlb::Entry> e = lookup_(Iova{m->iova})) {
                // Counted first: whoever sees the update sees the count.
                answered_.fetch_add(1, std::memory_order_relaxed);
                d->iotlb_update(*e);
            } else {
                refused_.fetch_add(1, std::memory_order_relaxed);
                std::fprintf(stderr,
                             "vireo: %s asked for IOVA 0x%llx, which is not in vireo's memory: left unmapped (its "
                             "ring stalls there)\n",
                             d->path().c_str(), static_cast<unsigned long long>(m->iova));
            }
        }
}

void IotlbLoop::run() {
    std::vector<pollfd> p;
    for (VhostDevice* d : devices_) p.push_back({d->fd(), POLLIN, 0});
    p.push_back({stop_.fd(), POLLIN, 0});
    while (!stop_.raised()) {
        if (::poll(p.data(), p.size(), -1) < 0 && errno != EINTR) return;
        if (p.back().revents != 0) return;
        try {
            handle_pending();
        } catch (const Error& e) {
            std::fprintf(stderr, "vireo: IOTLB: %s; no more misses are answered for this port\n", e.what());
            return;
        }
    }
}

}  // namespace vireo::vhost_kernel
