// NetPort: the control path (queues, start/stop). Negotiation is
// negotiation.cpp's, the compiled data paths data_paths.hpp's, the DMA
// decision iova/src/iova_policy.cpp's; the link watcher is net_port_link.cpp,
// Rx interrupts net_port_rx_notify.cpp.
#include "vireo/pmd/net_port.hpp"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "common/wait.hpp"
#include "datapath/dma_window.hpp"
#include "datapath/queue_pair.hpp"
#include "net/negotiation.hpp"
#include "net/net_port_filters.hpp"
#include "net/net_port_watcher.hpp"
#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

using namespace virtio::feature;
namespace st = virtio::status;

std::unique_ptr<NetPort> NetPort::open(const std::string& device, DmaMemory& mem, PacketPool& pool, uint16_t port_id) {
    DeviceSpec spec = parse_device_string(device);
    if (pool.mode() != mem.mode()) throw Error("the packet pool's IOVA mode differs from the DMA memory's");
    return std::make_unique<NetPort>(open_transport(spec), spec, mem, pool, port_id);
}

NetPort::NetPort(std::unique_ptr<Transport> t, const DeviceSpec& spec, DmaMemory& mem, PacketPool& pool,
                 uint16_t port_id, std::optional<DmaPlan> plan, std::optional<DmaKeys> keys)
    : transport_(std::move(t)),
      spec_(spec),
      mem_(mem),
      pool_(pool),
      port_id_(port_id),
      gates_(new detail::QueueGate[2 * size_t{spec.queues}]),
      watcher_(std::make_unique<Watcher>()),
      filters_(std::make_unique<Filters>()) {
    keys_ = keys.value_or(dma_keys_of(spec_));
    device_features_ = transport_->device_features();
    if (plan) {  // DeviceSet decided, for the features it read
        plan_ = std::move(*plan);
        planned_features_ = device_features_;
        dma_decisions_ = 1;
        if (!plan_.ok) throw Error(plan_.error);
    } else {
        decide_dma_plan();
    }
    if (plan_.arrangement == DmaArrangement::Window && !spec_.ring_given) {
        const uint16_t a = transport_->max_queue_size(0), b = transport_->max_queue_size(1);
        spec_.ring = detail::DmaWindow::ring_depth(a == 0 ? b : b == 0 ? a : std::min(a, b));
    }
    negotiate();  // reports an impossible combination at open, before anything runs
    filters_from_spec();
    if (plan_.arrangement == DmaArrangement::Window) {
        if (!plan_.warning.empty()) std::fprintf(stderr, "vireo: warning: %s\n", plan_.warning.c_str());
        window_ = std::make_unique<detail::DmaWindow>(plan_, mem_.options(), spec_.queues, spec_.ring, pool_.headroom(),
                                                      pool_.data_room());
    }
    try {
        transport_->attach_memory(device_memory(), plan_);
    } catch (const Error& e) {
        throw Error(describe() + ": " + e.what(), e.sys_errno());
    }
}

NetPort::~NetPort() {
    try {
        stop();
    } catch (...) {
    }
    std::lock_guard<std::mutex> g(watcher_->queues);
    destroy_queues();
}

std::string NetPort::describe() const { return transport_->describe(); }

// The one DMA decision (iova_policy.hpp) for what the device offers now. A
// window keeps the memory it was made with: a device that now needs another
// mode for it must be opened again.
void NetPort::decide_dma_plan() {
    DmaPlan p = decide_dma(dma_facts_of(*transport_, spec_), keys_, SharedMemory{mem_.mode(), mem_.pa_source()},
                           confidential_guest(), describe());
    if (p.ok && window_ != nullptr &&
        (p.arrangement != DmaArrangement::Window || p.mode != window_->memory().mode() ||
         (p.mode == IovaMode::PA && p.pa_source != window_->memory().pa_source())))
        throw Error(describe() + ": the device now needs IOVA mode " + std::string(to_string(p.mode)) +
                    " but its window was made in mode " + std::string(to_string(window_->memory().mode())) +
                    " when the port opened: close the port and open it again");
    if (!p.ok) throw Error(p.error);
    plan_ = std::move(p);
    planned_features_ = device_features_;
    dma_decisions_++;
}

// Chooses the features (negotiation.hpp), with the DMA plan's bit 33.
void NetPort::negotiate() {
    config_ = transport_->net_config();
    detail::NegotiationInput in;
    in.offered = device_features_;
    in.wanted = spec_.wanted_features;
    in.negotiate_access_platform = plan_.negotiate_access_platform;
    in.control_queue_processed = config_.control_queue_processed;
    in.queue_reset = transport_->queue_reset_unavailable().empty();
    in.max_virtqueue_pairs = config_.max_virtqueue_pairs;
    in.queues = spec_.queues;
    in.ring = spec_.ring;
    for (uint16_t q = 0; q < 2; q++) in.first_pair_max[q] = transport_->max_queue_size(q);
    detail::Negotiated n = detail::negotiate_features(in, describe());
    if (!n.ok()) throw Error(n.error);
    features_ = n.features;
}

void NetPort::check_ring_fits(uint16_t queues) {
    for (uint16_t q = 0; q < queues; q++)
        if (std::string e = detail::ring_fit_error(spec_.ring, q, transport_->max_queue_size(q), describe());
            !e.empty())
            throw Error(e);
}

void NetPort::start() {
    if (started_) return;
    bring_up();
    started_ = true;
    watcher_->set_up();
    if (transport_->connection() != nullptr) watcher_->thread = std::thread([this] { watch(); });
}

// With the gate closed (nothing polls the queues): the whole handshake.
void NetPort::bring_up() {
    Transport& t = *transport_;
    device_features_ = t.device_features();
    if (device_features_ != planned_features_) decide_dma_plan();  // a back end that came back with another offer
    negotiate();
    t.reset();
    t.set_status(st::kAcknowledge);
    t.set_status(st::kAcknowledge | st::kDriver);
    t.set_features(features_);
    t.set_status(st::kAcknowledge | st::kDriver | st::kFeaturesOk);
    if (!(t.status() & st::kFeaturesOk))  // 3.1.1 step 6: re-read
        throw Error(describe() + " refused the features " + hex(features_) + " (FEATURES_OK did not stick)");
    check_ring_fits(static_cast<uint16_t>(2 * spec_.queues));
    NetConfig c = t.net_config();
    std::copy(std::begin(c.mac), std::end(c.mac), mac_.begin());
    mtu_ = virtio::has(features_, kNetMtu) ? c.mtu : spec_.mtu;
    create_queues();
    t.set_status(st::kAcknowledge | st::kDriver | st::kFeaturesOk | st::kDriverOk);
    driver_ok_ = true;
    if (ctrl_ != nullptr && virtio::has(features_, kNetRss)) {
        send_rss();  // 5.1.6.5.7: the steering and the pairs we use (max_tx_vq)
    } else {
        if (ctrl_ != nullptr && virtio::has(features_, kNetMq)) {  // 5.1.6.5.5: enable the pairs we use
            const uint16_t pairs = spec_.queues;
            ctrl_->command(virtio::kNetCtrlClassMq, virtio::kNetCtrlMqVqPairsSet, &pairs, sizeof pairs,
                           "VQ_PAIRS_SET(" + std::to_string(pairs) + ")");
        }
        if (ctrl_ != nullptr && virtio::has(features_, kNetHashReport)) send_rss();  // HASH_CONFIG
    }
    apply_filters();  // a reset forgot them
    for (auto& p : pairs_) p->refill();
    pool_.flush_thread_cache();  // what the refill left in this thread's cache
    set_gates(0, spec_.queues, true);
    ready_.store(true, std::memory_order_release);
}

detail::PortDataPath NetPort::chosen_path() {
    return detail::choose_data_path(virtio::has(features_, kRingPacked), virtio::has(features_, kInOrder),
                                    virtio::has(features_, kOrderPlatform), data_path_isa(), window_.get());
}

// Queue numbering of virtio-net (5.1.2): receiveq N = 2N, transmitq N = 2N + 1.
PairConfig NetPort::pair_config(uint16_t q, uint16_t ring) const {
    return {ring,
            static_cast<uint16_t>(2 * q),
            static_cast<uint16_t>(2 * q + 1),
            port_id_,
            q,
            virtio::has(features_, kEventIdx),
            virtio::has(features_, kNotificationData),
            virtio::has(features_, kNetMrgRxbuf),
            virtio::has(features_, kNetCsum),
            virtio::has(features_, kNetGuestCsum),
            virtio::has(features_, kIndirectDesc),
            virtio::has(features_, kNetHostTso4),
            virtio::has(features_, kNetHostTso6),
            virtio::has(features_, kNetGuestTso4) || virtio::has(features_, kNetGuestTso6),
            virtio::has(features_, kNetHashReport)};
}

// Queue memory comes from DmaMemory, which never frees: a restart (or a
// reconnect) with the same data path and count reuses the queues it had.
void NetPort::create_queues() {
    const detail::PortDataPath path = chosen_path();
    if (path.rings != path_ || pairs_.size() != spec_.queues) {
        std::lock_guard<std::mutex> g(watcher_->queues);  // stats readers see whole queues
        destroy_queues();
        path_ = path.rings;
        for (uint16_t q = 0; q < spec_.queues; q++)
            pairs_.push_back(path.make_pair(mem_, pool_, pair_config(q, spec_.ring)));
    }
    rx_fn_ = path.rx;
    tx_fn_ = path.tx;
    data_path_name_ = path.name;
    for (auto& p : pairs_) p->setup(*transport_, device_memory());
    if (virtio::has(features_, kNetCtrlVq)) {
        // 5.1.2: the control queue follows the last possible queue pair.
        const uint16_t index =
            static_cast<uint16_t>(2 * (virtio::has(features_, kNetMq) ? config_.max_virtqueue_pairs : 1));
        if (ctrl_ == nullptr)
            ctrl_ = path.rings->make_control(device_memory(), index, virtio::has(features_, kEventIdx),
                                             virtio::has(features_, kNotificationData));
        ctrl_->setup(*transport_, device_memory());
    }
}

void NetPort::destroy_queues() {
    for (auto& p : pairs_) p->drain();
    pairs_.clear();
    ctrl_.reset();
}

std::string NetPort::data_path() const { return data_path_name_; }

DmaMemory& NetPort::device_memory() noexcept { return window_ != nullptr ? window_->memory() : mem_; }
const DmaMemory* NetPort::window() const noexcept { return window_ != nullptr ? &window_->memory() : nullptr; }
IovaMode NetPort::iova_mode() const noexcept { return window_ != nullptr ? window_->memory().mode() : mem_.mode(); }

StopReport NetPort::stop() {
    if (!started_) return {};
    watcher_->stop_thread();
    StopReport r;
    take_down(&r);
    started_ = false;
    watcher_->set_down("stopped");
    return r;
}

void NetPort::close_gate() {
    ready_.store(false, std::memory_order_relaxed);
    set_gates(0, spec_.queues, false);
    detail::quiesce(gates_.get(), 2 * size_t{spec_.queues});
}

// Opening releases what the control path set up (the bursts acquire it);
// closing is relaxed: quiesce()'s barrier orders it.
void NetPort::set_gates(uint16_t first, uint16_t pairs, bool open) {
    for (size_t g = 2 * size_t{first}; g < 2 * (size_t{first} + pairs); g++)
        gates_[g].open.store(open, open ? std::memory_order_release : std::memory_order_relaxed);
}

// No burst runs after close_gate(); the device stops using the rings before
// the buffers come back. A clean stop (clean != nullptr) first lets the
// device finish sending: a reset discards whatever is still in a Tx ring,
// and the application was told those frames were taken.
void NetPort::take_down(StopReport* clean) {
    const bool was_ready = ready_.load(std::memory_order_relaxed);
    close_gate();
    uint64_t undelivered_before = 0;
    if (clean != nullptr) {
        if (was_ready) *clean = wait_for_tx();
        undelivered_before = tx_totals().undelivered;
    }
    transport_->reset();
    driver_ok_ = false;
    for (auto& p : pairs_) p->drain();  // every buffer back to the pool; the queues stay for a restart
    if (ctrl_ != nullptr) ctrl_->reset();
    pool_.flush_thread_cache();
    if (clean != nullptr) clean->tx_undelivered = tx_totals().undelivered - undelivered_before;
}

// The gate is closed (no burst runs) and the device still has the rings: it
// works through them on its own (it was kicked as each burst needed), and we
// reclaim what it completes until nothing is left, the bound passes or a back
// end hangs up. A queue that faulted is not waited for (its device broke the
// rules; the reset discards what it holds).
StopReport NetPort::wait_for_tx(uint16_t first, uint16_t pairs) {
    StopReport r;
    const auto t0 = detail::Clock::now();
    const auto deadline = t0 + std::chrono::milliseconds(spec_.stop_timeout_ms);
    const size_t end = std::min(pairs_.size(), size_t{first} + pairs);
    auto in_flight = [&] {
        uint64_t n = 0;
        for (size_t q = first; q < end; q++)
            if (!pairs_[q]->faulted()) n += pairs_[q]->tx_in_flight();
        return n;
    };
    auto hung_up = [&] {
        const TransportConnection* c = transport_->connection();
        pollfd p{c != nullptr ? c->fd() : -1, POLLRDHUP, 0};
        return p.fd >= 0 && ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL));
    };
    // What the stop has to account for: every chain the driver has not taken
    // back, counted before anything is reclaimed, so the figure does not
    // depend on how far the device got while this thread was on its way here.
    for (size_t q = first; q < end; q++)
        if (!pairs_[q]->faulted()) r.tx_in_flight += pairs_[q]->tx_unreclaimed();
    uint64_t left = in_flight();
    pool_.flush_thread_cache();  // what the reclaims freed into this thread's cache
    r.timed_out = left != 0;
    if (spec_.stop_timeout_ms == 0) return r;  // asked not to wait: counted, not waited for
    while (left != 0 && detail::Clock::now() < deadline && !hung_up()) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));  // the device's pace, not ours
        left = in_flight();
    }
    pool_.flush_thread_cache();
    r.timed_out = left != 0;
    r.waited_ms = std::chrono::duration<double, std::milli>(detail::Clock::now() - t0).count();
    return r;
}

int NetPort::config_event_fd() const { return transport_->config_event_fd(); }

bool NetPort::link_up() { return ready() && (transport_->net_config().status & virtio::kNetStatusLinkUp); }

bool NetPort::needs_reset() const noexcept {
    std::lock_guard<std::mutex> g(watcher_->queues);
    for (const auto& p : pairs_)
        if (p->faulted()) return true;
    return false;
}

std::string NetPort::fault_report() const {
    std::lock_guard<std::mutex> g(watcher_->queues);
    std::string r;
    for (const auto& p : pairs_) r += p->fault_report();
    return r;
}

QueueStats NetPort::rx_stats(uint16_t q) const {
    std::lock_guard<std::mutex> g(watcher_->queues);
    return q < pairs_.size() ? pairs_[q]->read_rx_stats() : QueueStats{};
}
QueueStats NetPort::tx_stats(uint16_t q) const {
    std::lock_guard<std::mutex> g(watcher_->queues);
    return q < pairs_.size() ? pairs_[q]->read_tx_stats() : QueueStats{};
}

QueueStats NetPort::rx_totals() const {
    QueueStats t;
    for (uint16_t q = 0; q < spec_.queues; q++) t += rx_stats(q);
    return t;
}

QueueStats NetPort::tx_totals() const {
    QueueStats t;
    for (uint16_t q = 0; q < spec_.queues; q++) t += tx_stats(q);
    return t;
}

void NetPort::reset_stats() {
    std::lock_guard<std::mutex> g(watcher_->queues);
    for (auto& p : pairs_) p->reset_counters();
}

}  // namespace vireo
