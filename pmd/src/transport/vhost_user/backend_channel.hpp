// The back-end channel (protocol feature BACKEND_REQ): a socket pair whose one
// end the back end receives with SET_BACKEND_REQ_FD, for its requests to us.
// vireo answers IOTLB misses (in VA mode it is the device's IOMMU) and
// refuses every other request. One thread reads it; every read is bounded
// (socket.hpp), and destroying the channel ends that thread within
// kStopGraceMs whatever the back end does. A back end that breaks the
// protocol here is reported through on_broken (the port then drops the
// connection).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "common/wait.hpp"
#include "transport/vhost_user/socket.hpp"
#include "vireo/base/address.hpp"

namespace vireo::vhost {

class BackendChannel {
public:
    // Maps the page(s) around iova (sends an IOTLB update on the front-end
    // socket); true when iova lies in our memory and the update was sent.
    using MissHandler = std::function<bool(Iova iova)>;
    using BrokenHandler = std::function<void(const std::string& why)>;

    // Takes our end of the socket pair.
    BackendChannel(int fd, MissHandler on_miss, BrokenHandler on_broken);
    ~BackendChannel();
    BackendChannel(const BackendChannel&) = delete;
    BackendChannel& operator=(const BackendChannel&) = delete;

    uint64_t misses_answered() const { return answered_.load(std::memory_order_relaxed); }

private:
    void run();
    void handle(const Message& m);

    detail::StopSignal stop_;
    Connection conn_;
    MissHandler on_miss_;
    BrokenHandler on_broken_;
    std::atomic<uint64_t> answered_{0};
    std::thread thread_;
};

}  // namespace vireo::vhost
