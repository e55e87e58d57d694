#include "capture.hpp"

#include <chrono>
#include <limits>

namespace vireo::fwd {
namespace {

constexpr size_t kRingBytes = 8 << 20;  // per stream: ~5000 full-size frames of slack for the writer

bool matches(int want, uint16_t have) { return want < 0 || want == have; }

}  // namespace

FwdCapture::FwdCapture(const CaptureOptions& o, const std::vector<NetPort*>& ports, std::vector<Stream>& streams)
    : budget_(o.count != 0 ? static_cast<int64_t>(o.count) : std::numeric_limits<int64_t>::max()),
      writer_(
          o.file,
          [&] {
              std::vector<std::string> names;
              for (size_t i = 0; i < ports.size(); i++)
                  names.push_back("port" + std::to_string(i) + " " + ports[i]->describe());
              return names;
          }(),
          o.snaplen) {
    for (Stream& s : streams) {
        const bool rx = s.rx != nullptr && matches(o.port, s.rx_port) && matches(o.queue, s.rxq);
        const bool tx = s.tx != nullptr && matches(o.port, s.tx_port) && matches(o.queue, s.txq);
        if (!rx && !tx) continue;
        rings_.push_back(std::make_unique<CaptureRing>(kRingBytes, o.snaplen, &budget_));
        if (rx) s.capture_rx = rings_.back().get();
        if (tx) s.capture_tx = rings_.back().get();
    }
    thread_ = std::thread([this] {
        while (!stop_.load(std::memory_order_relaxed)) {
            size_t n = 0;
            for (auto& r : rings_)
                n += r->drain([this](const CaptureRecord& c, const uint8_t* d) { writer_.write(c, d); });
            if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
}

FwdCapture::~FwdCapture() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

void FwdCapture::finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (auto& r : rings_) r->drain([this](const CaptureRecord& c, const uint8_t* d) { writer_.write(c, d); });
    writer_.close();
}

uint64_t FwdCapture::frames() const noexcept { return writer_.written(); }

uint64_t FwdCapture::dropped() const noexcept {
    uint64_t d = 0;
    for (const auto& r : rings_) d += r->dropped();
    return d;
}

}  // namespace vireo::fwd
