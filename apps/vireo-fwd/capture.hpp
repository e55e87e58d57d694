// vireo-fwd --pcap=FILE[,port=N][,queue=Q][,snaplen=S][,count=C]: each
// matching stream gets a CaptureRing (vireo/capture/capture.hpp) that its
// polling thread offers every received and every sent burst to; one writer
// thread drains them into a pcapng file (vireo/capture/pcapng.hpp). Forwarding
// never waits for it: a full ring counts the frame as dropped.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "streams.hpp"
#include "vireo/capture/capture.hpp"
#include "vireo/capture/pcapng.hpp"

namespace vireo::fwd {

class FwdCapture {
public:
    // Creates the file and attaches rings to the streams that match (a
    // stream captures its Rx side when port/queue match its Rx port/queue,
    // its Tx side likewise). Throws vireo::Error when the file cannot be made.
    FwdCapture(const CaptureOptions& o, const std::vector<NetPort*>& ports, std::vector<Stream>& streams);
    ~FwdCapture();
    // After the polling threads stopped: the last records, then the file closed.
    void finish();
    uint64_t frames() const noexcept;
    uint64_t dropped() const noexcept;

private:
    void drain_all();
    std::vector<std::unique_ptr<CaptureRing>> rings_;
    std::atomic<int64_t> budget_;
    PcapngWriter writer_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace vireo::fwd
