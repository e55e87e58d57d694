// NetPort: the control path (negotiation, queues, start/stop) and the choice
// of one of eight compiled data paths.
#include "vireo/pmd/net_port.hpp"

#include <bit>
#include <cstdio>

#include "net_ctrl_queue.hpp"
#include "net_port_watcher.hpp"
#include "net_queue_pair.hpp"
#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/pmd/device_set.hpp"
#include "vireo/pmd/packed_queue.hpp"
#include "vireo/pmd/split_queue.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

using namespace virtio::feature;
namespace st = virtio::status;

// Everything vireo's virtio-net driver can accept. CTRL_VQ/CTRL_RX only where a
// device processes the control queue (not over vhost-user: there QEMU handles
// it in its own device model, so queue pairs are switched with
// SET_VRING_ENABLE, as DPDK's virtio-user does).
constexpr uint64_t kSupported =
    virtio::bit(kVersion1) | virtio::bit(kAccessPlatform) | virtio::bit(kRingPacked) | virtio::bit(kInOrder) |
    virtio::bit(kEventIdx) | virtio::bit(kOrderPlatform) | virtio::bit(kNotificationData) | virtio::bit(kNetMrgRxbuf) |
    virtio::bit(kNetCsum) | virtio::bit(kNetGuestCsum) | virtio::bit(kNetMac) | virtio::bit(kNetStatus) |
    virtio::bit(kNetMtu) | virtio::bit(kNetMq) | virtio::bit(kNetCtrlVq) | virtio::bit(kNetCtrlRx);

struct NetPort::KindOps {
    void* (*create)(DmaMemory&, PacketPool&, const PairConfig&);
    void (*destroy)(void*);
    void (*setup)(void*, Transport&, const DmaMemory&);
    void (*refill)(void*);
    void (*drain)(void*);
    QueueStats* (*rx_stats)(void*);
    QueueStats* (*tx_stats)(void*);
    bool (*faulted)(void*);
    std::string (*report)(void*);
    uint16_t (*rx)(void*, Packet**, uint16_t);
    uint16_t (*tx)(void*, Packet**, uint16_t);
    void* (*ctrl_create)(DmaMemory&, uint16_t index, bool event_idx, bool notification_data);
    void (*ctrl_destroy)(void*);
    void (*ctrl_setup)(void*, Transport&, const DmaMemory&);
    void (*ctrl_reset)(void*);
    void (*ctrl_command)(void*, uint8_t cls, uint8_t cmd, const void* data, uint16_t len, const std::string& what);
};

namespace {

template <class Q>
QueueAreas areas_of(Q& q, bool packed, const DmaMemory& mem, uint16_t index) {
    const IovaMap& m = mem.map();
    return {index,
            q.size(),
            packed,
            q.desc_iova(),
            q.driver_iova(),
            q.device_iova(),
            m.va(q.desc_iova()),
            m.va(q.driver_iova()),
            m.va(q.device_iova())};
}

template <class Q, bool Packed>
struct Ops {
    using P = NetQueuePair<Q>;
    static P* self(void* v) { return static_cast<P*>(v); }
    static void* create(DmaMemory& mem, PacketPool& pool, const PairConfig& c) { return new P(mem, pool, c); }
    static void destroy(void* v) { delete self(v); }
    static void setup(void* v, Transport& t, const DmaMemory& mem) {
        P* p = self(v);
        // Queue numbering of virtio-net (5.1.2): receiveq N = 2N, transmitq N = 2N + 1.
        const PairConfig& c = p->config();
        t.setup_queue(areas_of(p->rxq(), Packed, mem, c.rx_index));
        t.setup_queue(areas_of(p->txq(), Packed, mem, c.tx_index));
        p->set_doorbells(t.doorbell(c.rx_index), t.doorbell(c.tx_index));
    }
    static void refill(void* v) { self(v)->refill(); }
    static void drain(void* v) { self(v)->drain(); }
    static QueueStats* rx_stats(void* v) { return &self(v)->rx_stats(); }
    static QueueStats* tx_stats(void* v) { return &self(v)->tx_stats(); }
    static bool faulted(void* v) { return self(v)->faulted(); }
    static std::string report(void* v) {
        P* p = self(v);
        std::string r;
        const std::string q = std::to_string(p->config().queue_id);
        if (p->rxq().needs_reset()) r += "rx" + q + ": " + std::string(to_string(p->rxq().fault())) + "; ";
        if (p->txq().needs_reset()) r += "tx" + q + ": " + std::string(to_string(p->txq().fault())) + "; ";
        return r;
    }
    using C = NetControlQueue<Q>;
    static void* ctrl_create(DmaMemory& mem, uint16_t index, bool eidx, bool nd) { return new C(mem, index, eidx, nd); }
    static void ctrl_destroy(void* v) { delete static_cast<C*>(v); }
    static void ctrl_setup(void* v, Transport& t, const DmaMemory& mem) {
        C* c = static_cast<C*>(v);
        t.setup_queue(areas_of(c->queue(), Packed, mem, c->index()));
        c->set_doorbell(t.doorbell(c->index()));
    }
    static void ctrl_reset(void* v) { static_cast<C*>(v)->reset(); }
    static void ctrl_command(void* v, uint8_t cls, uint8_t cmd, const void* d, uint16_t len, const std::string& w) {
        static_cast<C*>(v)->command(cls, cmd, d, len, w);
    }
    static constexpr NetPort::KindOps table{
        create, destroy,      setup,        refill,      drain,        rx_stats,   tx_stats,   faulted,
        report, &P::rx_burst, &P::tx_burst, ctrl_create, ctrl_destroy, ctrl_setup, ctrl_reset, ctrl_command};
};

// [packed][in_order][order_platform]
const NetPort::KindOps* const kKinds[2][2][2] = {
    {{&Ops<SplitQueue<false, SmpOrdering>, false>::table, &Ops<SplitQueue<false, PlatformOrdering>, false>::table},
     {&Ops<SplitQueue<true, SmpOrdering>, false>::table, &Ops<SplitQueue<true, PlatformOrdering>, false>::table}},
    {{&Ops<PackedQueue<false, SmpOrdering>, true>::table, &Ops<PackedQueue<false, PlatformOrdering>, true>::table},
     {&Ops<PackedQueue<true, SmpOrdering>, true>::table, &Ops<PackedQueue<true, PlatformOrdering>, true>::table}},
};

}  // namespace

std::unique_ptr<NetPort> NetPort::open(const std::string& device, DmaMemory& mem, PacketPool& pool, uint16_t port_id) {
    DeviceSpec spec = parse_device_string(device);
    if (pool.mode() != mem.mode()) throw Error("the packet pool's IOVA mode differs from the DMA memory's");
    return std::make_unique<NetPort>(open_transport(spec), spec, mem, pool, port_id);
}

NetPort::NetPort(std::unique_ptr<Transport> t, const DeviceSpec& spec, DmaMemory& mem, PacketPool& pool,
                 uint16_t port_id)
    : transport_(std::move(t)),
      spec_(spec),
      mem_(mem),
      pool_(pool),
      port_id_(port_id),
      gates_(new detail::QueueGate[2 * size_t{spec.queues}]),
      watcher_(std::make_unique<Watcher>()) {
    device_features_ = transport_->device_features();
    negotiate();  // reports an impossible combination at open, before anything runs
    try {
        transport_->attach_memory(mem_);
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

// Chooses the features and checks the IOVA rule for this device.
void NetPort::negotiate() {
    const uint64_t offered = device_features_;
    if (!virtio::has(offered, kVersion1))
        throw Error(describe() + " does not offer VIRTIO_F_VERSION_1: vireo drives modern (virtio 1.x) devices only");
    const IovaInputs in = iova_inputs_of(*transport_, spec_);
    const bool bit33 = in.access_platform_offered;
    IovaDecision d = decide_iova_mode(in);
    if (!d.ok) throw Error(describe() + ": " + d.error);
    if (d.mode != mem_.mode() && !spec_.iova) {
        // The device's preference differs; its mode is still fine when the rule
        // allows it (a device behind an IOMMU may take IOVA = PA).
        IovaInputs asked = in;
        asked.forced = mem_.mode();
        if (IovaDecision alt = decide_iova_mode(asked); alt.ok) d = alt;
    }
    if (d.mode != mem_.mode()) {
        const std::string want(to_string(d.mode)), have(to_string(mem_.mode()));
        throw Error(describe() + (bit33 ? " offers" : " does not offer") +
                    " VIRTIO_F_ACCESS_PLATFORM (bit 33), so its descriptors must carry IOVA mode " + want +
                    " addresses, but the DMA memory is in mode " + have + ": run with --iova-mode=" + want +
                    " (DmaMemoryOptions::mode)" +
                    (bit33 || d.mode == IovaMode::VA ? "" : ", or " + transport_->access_platform_hint()));
    }
    if (mem_.mode() == IovaMode::PA && in.iommu == IommuKind::VhostIotlb)
        for (const auto& r : mem_.map().regions())
            if (!r.linear)
                throw Error(describe() +
                            ": PA mode over vhost-user needs each DMA region at one guest-physical "
                            "range: create the DmaMemory with pa_source = PaSource::Linear");
    uint64_t f = offered & spec_.wanted_features & kSupported;
    if (d.mode == IovaMode::VA)
        f |= virtio::bit(kAccessPlatform);
    else if (in.iommu == IommuKind::VhostIotlb)
        f &= ~virtio::bit(kAccessPlatform);
    f |= virtio::bit(kVersion1);
    if (!transport_->control_queue_device()) f &= ~(virtio::bit(kNetCtrlVq) | virtio::bit(kNetCtrlRx));
    if (!virtio::has(f, kNetCtrlVq)) f &= ~virtio::bit(kNetCtrlRx);  // 5.1.3.1: CTRL_RX requires CTRL_VQ
    if (spec_.queues > 1) {
        if (transport_->control_queue_device() && !virtio::has(f, kNetCtrlVq))
            throw Error(describe() + ": queues=" + std::to_string(spec_.queues) +
                        " needs the control queue (VIRTIO_NET_F_CTRL_VQ) to set the number of queue pairs: "
                        "the device does not offer it, or ctrl_vq=0 was given");
        if (!virtio::has(f, kNetMq))
            throw Error(describe() + ": queues=" + std::to_string(spec_.queues) +
                        " needs VIRTIO_NET_F_MQ, which the device does not offer (or mq=0 was given)");
        if (spec_.queues > transport_->max_queue_pairs())
            throw Error(describe() + ": queues=" + std::to_string(spec_.queues) + " but the device has " +
                        std::to_string(transport_->max_queue_pairs()) + " queue pairs (DPDK: queues=N on the vdev)");
    } else {
        f &= ~virtio::bit(kNetMq);
    }
    // The ring size against the layout the device accepted and its own limits.
    if (!virtio::has(f, kRingPacked) && !std::has_single_bit(spec_.ring))
        throw Error(describe() + ": ring=" + std::to_string(spec_.ring) +
                    " is not a power of two, which a split ring needs (virtio 1.2 section 2.7), and the device does "
                    "not offer packed rings: use 256, 512, ...");
    for (uint16_t q = 0; q < 2 * spec_.queues; q++)
        if (const uint16_t most = transport_->max_queue_size(q); most != 0 && spec_.ring > most)
            throw Error(describe() + ": ring=" + std::to_string(spec_.ring) + " but the device's queue " +
                        std::to_string(q) + " holds at most " + std::to_string(most) +
                        " descriptors: use ring=" + std::to_string(std::bit_floor(most)) + " or less");
    features_ = f;
}

void NetPort::start() {
    if (started_) return;
    bring_up();
    started_ = true;
    watcher_->set_up();
    if (transport_->connection_fd() >= 0) watcher_->thread = std::thread([this] { watch(); });
}

// With the gate closed (nothing polls the queues): the whole handshake.
void NetPort::bring_up() {
    Transport& t = *transport_;
    device_features_ = t.device_features();
    negotiate();
    t.reset();
    t.set_status(st::kAcknowledge);
    t.set_status(st::kAcknowledge | st::kDriver);
    t.set_features(features_);
    t.set_status(st::kAcknowledge | st::kDriver | st::kFeaturesOk);
    if (!(t.status() & st::kFeaturesOk))  // 3.1.1 step 6: re-read
        throw Error(describe() + " refused the features " + hex(features_) + " (FEATURES_OK did not stick)");
    NetConfig c = t.net_config();
    std::copy(std::begin(c.mac), std::end(c.mac), mac_.begin());
    mtu_ = virtio::has(features_, kNetMtu) ? c.mtu : spec_.mtu;
    create_queues();
    t.set_status(st::kAcknowledge | st::kDriver | st::kFeaturesOk | st::kDriverOk);
    if (ctrl_ != nullptr && virtio::has(features_, kNetMq)) {  // 5.1.6.5.5: enable the pairs we use
        const uint16_t pairs = spec_.queues;
        ops_->ctrl_command(ctrl_, virtio::kNetCtrlClassMq, virtio::kNetCtrlMqVqPairsSet, &pairs, sizeof pairs,
                           "VQ_PAIRS_SET(" + std::to_string(pairs) + ")");
    }
    for (void* p : pairs_) ops_->refill(p);
    pool_.flush_thread_cache();  // what the refill left in this thread's cache
    ready_.store(true, std::memory_order_release);
}

// Queue memory comes from DmaMemory, which never frees: a restart (or a
// reconnect) with the same kind and count reuses the queues it had.
void NetPort::create_queues() {
    const bool packed = virtio::has(features_, kRingPacked);
    const KindOps* kind = kKinds[packed][virtio::has(features_, kInOrder)][virtio::has(features_, kOrderPlatform)];
    if (kind != ops_ || pairs_.size() != spec_.queues) {
        std::lock_guard<std::mutex> g(watcher_->queues);  // stats readers see whole queues
        destroy_queues();
        ops_ = kind;
        for (uint16_t q = 0; q < spec_.queues; q++) {
            PairConfig pc{spec_.ring,
                          static_cast<uint16_t>(2 * q),
                          static_cast<uint16_t>(2 * q + 1),
                          port_id_,
                          q,
                          virtio::has(features_, kEventIdx),
                          virtio::has(features_, kNotificationData),
                          virtio::has(features_, kNetMrgRxbuf),
                          virtio::has(features_, kNetCsum),
                          virtio::has(features_, kNetGuestCsum)};
            pairs_.push_back(ops_->create(mem_, pool_, pc));
        }
    }
    rx_fn_ = ops_->rx;
    tx_fn_ = ops_->tx;
    for (void* p : pairs_) ops_->setup(p, *transport_, mem_);
    if (virtio::has(features_, kNetCtrlVq)) {
        // 5.1.2: the control queue follows the last possible queue pair.
        const uint16_t index =
            static_cast<uint16_t>(2 * (virtio::has(features_, kNetMq) ? transport_->max_queue_pairs() : 1));
        if (ctrl_ == nullptr)
            ctrl_ = ops_->ctrl_create(mem_, index, virtio::has(features_, kEventIdx),
                                      virtio::has(features_, kNotificationData));
        ops_->ctrl_setup(ctrl_, *transport_, mem_);
    }
}

void NetPort::destroy_queues() {
    for (void* p : pairs_) {
        ops_->drain(p);
        ops_->destroy(p);
    }
    pairs_.clear();
    if (ctrl_ != nullptr) ops_->ctrl_destroy(ctrl_);
    ctrl_ = nullptr;
}

void NetPort::stop() {
    if (!started_) return;
    watcher_->stop_thread();
    take_down();
    started_ = false;
    watcher_->set_down("stopped");
}

void NetPort::close_gate() {
    ready_.store(false, std::memory_order_relaxed);
    detail::quiesce(gates_.get(), 2 * size_t{spec_.queues});
}

// No burst runs after close_gate(); the device stops using the rings before
// the buffers come back.
void NetPort::take_down() {
    close_gate();
    transport_->reset();
    for (void* p : pairs_) ops_->drain(p);  // every buffer back to the pool; the queues stay for a restart
    if (ctrl_ != nullptr) ops_->ctrl_reset(ctrl_);
    pool_.flush_thread_cache();
}

int NetPort::config_event_fd() const { return transport_->config_event_fd(); }
bool NetPort::poll_config_change() { return transport_->poll_config_change(); }

bool NetPort::link_up() { return ready() && (transport_->net_config().status & virtio::kNetStatusLinkUp); }

bool NetPort::needs_reset() const noexcept {
    std::lock_guard<std::mutex> g(watcher_->queues);
    for (void* p : pairs_)
        if (ops_->faulted(p)) return true;
    return false;
}

std::string NetPort::fault_report() const {
    std::lock_guard<std::mutex> g(watcher_->queues);
    std::string r;
    for (void* p : pairs_) r += ops_->report(p);
    return r;
}

QueueStats NetPort::rx_stats(uint16_t q) const {
    std::lock_guard<std::mutex> g(watcher_->queues);
    return q < pairs_.size() ? *ops_->rx_stats(pairs_[q]) : QueueStats{};
}
QueueStats NetPort::tx_stats(uint16_t q) const {
    std::lock_guard<std::mutex> g(watcher_->queues);
    return q < pairs_.size() ? *ops_->tx_stats(pairs_[q]) : QueueStats{};
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
    for (void* p : pairs_) {
        *ops_->rx_stats(p) = {};
        *ops_->tx_stats(p) = {};
    }
}

}  // namespace vireo
