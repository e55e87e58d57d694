#include "transport/vhost_user/transport.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <random>

#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

using namespace vhost;

VhostUserTransport::VhostUserTransport(const VhostUserOptions& opts) : opts_(opts) {
    if (!opts_.mac_given) {  // random, locally administered, unicast
        std::random_device rd;
        for (auto& b : opts_.mac) b = static_cast<uint8_t>(rd());
        opts_.mac[0] = static_cast<uint8_t>((opts_.mac[0] & 0xfe) | 0x02);
    }
    // The Listener removes its socket file however this constructor ends.
    if (opts_.server) {
        listener_ = std::make_unique<Listener>(opts_.path);
        conn_ = listener_->accept(opts_.timeout_ms, -1);
    } else {
        conn_ = connect_to(opts_.path, opts_.timeout_ms, -1);
    }
    if (!conn_.valid())
        throw Error(describe() + ": interrupted while waiting for the back end to " +
                    (opts_.server ? "connect" : "accept the connection"));
    handshake();
}

VhostUserTransport::VhostUserTransport(const VhostUserOptions& opts, Connection connected)
    : opts_(opts), conn_(std::move(connected)) {
    handshake();
}

VhostUserTransport::~VhostUserTransport() { backend_.reset(); }

// SET_OWNER, features, protocol features, queue count.
void VhostUserTransport::handshake() {
    std::lock_guard<std::mutex> g(conn_lock_);
    broken_.clear();
    conn_.set_reply_timeout_ms(opts_.reply_timeout_ms);
    conn_.set_reply_ack(false);
    conn_.send(kSetOwner, nullptr, 0);
    const uint64_t f = conn_.call_u64(kGetFeatures);  // bits 0-63: all vhost-user carries
    protocol_ = wire_has(f, kFeatureProtocolFeatures);
    device_features_ = virtio::Features::from_u64(f & ~wire_bit(kFeatureProtocolFeatures));
    protocol_features_ = 0;
    max_pairs_ = 1;
    if (protocol_) {
        uint64_t offered = conn_.call_u64(kGetProtocolFeatures);
        const uint64_t wanted = wire_bit(kProtoMq) | wire_bit(kProtoReplyAck) | wire_bit(kProtoBackendReq);
        protocol_features_ = offered & wanted;
        conn_.send(kSetProtocolFeatures, &protocol_features_, sizeof protocol_features_);
        if (wire_has(protocol_features_, kProtoMq)) {
            const uint64_t n = conn_.call_u64(kGetQueueNum);
            // Range-checked before narrowing: 0 or more than 2^15 pairs cannot be real.
            if (n == 0 || n > 0x8000)
                throw Error(describe() + ": the back end answered GET_QUEUE_NUM with " + std::to_string(n) +
                            " queue pairs (virtio allows 1 to 32768)");
            max_pairs_ = static_cast<uint16_t>(n);
        }
        conn_.set_reply_ack(wire_has(protocol_features_, kProtoReplyAck));
    }
}

void VhostUserTransport::set_features(const virtio::Features& features) {
    const virtio::Features unknown = features & ~device_features_;
    if (!unknown.empty())
        throw Error("vhost-user back end at " + opts_.path + " does not offer feature bits " + hex(unknown) +
                    ": switch them off in the device string");
    features_ = features;
    uint64_t wire = features.low64() | (protocol_ ? wire_bit(kFeatureProtocolFeatures) : 0);
    std::lock_guard<std::mutex> g(conn_lock_);
    conn_.request(kSetFeatures, &wire, sizeof wire);
}

// The protocol stops one ring with GET_VRING_BASE, but DPDK's vhost (22.11,
// lib/vhost/vhost_user.c vhost_user_get_vring_base) answers it by stopping the
// whole device (vhost_destroy_device_notify), and no back end offers
// RING_RESET: a per-queue reset would be a device restart in disguise.
std::string VhostUserTransport::queue_reset_unavailable() const {
    return describe() +
           ": vhost-user has no per-queue reset (GET_VRING_BASE stops the whole device in DPDK's vhost, and no back "
           "end offers VIRTIO_F_RING_RESET)";
}

void VhostUserTransport::set_status(uint8_t s) {
    const bool driver_ok = (s & virtio::status::kDriverOk) && !(status_ & virtio::status::kDriverOk);
    status_ = s;
    if (driver_ok) start_device();
}

void VhostUserTransport::setup_queue(const QueueAreas& q) {
    if (q.index >= queues_.size()) queues_.resize(q.index + 1, QueueAreas{});
    queues_[q.index] = q;
    fds_.ensure(q.index);
}

NetConfig VhostUserTransport::net_config() {
    NetConfig c{};
    std::memcpy(c.mac, opts_.mac.data(), 6);
    c.status = connected() ? virtio::kNetStatusLinkUp : 0;
    c.max_virtqueue_pairs = max_pairs_;
    c.mtu = opts_.mtu;
    c.control_queue_processed = false;
    return c;
}

// The back end is the device and vireo its IOMMU (IOTLB messages); physical
// addresses are the guest-physical layout vireo publishes in the memory table.
DmaTraits VhostUserTransport::dma_traits() const {
    return {IommuKind::VhostIotlb, ~uint64_t{0}, PaSource::Linear,
            "start the back end with IOMMU support (DPDK: iommu-support=1 on the vhost vdev; OVS: "
            "other_config:vhost-iommu-support=true)"};
}

bool VhostUserTransport::connected() {
    std::lock_guard<std::mutex> g(conn_lock_);
    if (!conn_.valid()) return false;
    pollfd p{conn_.fd(), POLLRDHUP, 0};
    return ::poll(&p, 1, 0) == 0;
}

std::string VhostUserTransport::down_reason() const {
    std::lock_guard<std::mutex> g(conn_lock_);
    return broken_.empty() ? "the vhost-user back end closed the connection" : broken_;
}

// The memory table: one entry per DMA region, guest-physical address = its IOVA.
void VhostUserTransport::send_mem_table() {
    MemTable t{};
    int fds[kMaxRegions];
    if (mem_->region_count() > kMaxRegions)
        throw Error(describe() + ": " + std::to_string(mem_->region_count()) +
                    " DMA regions, but a vhost-user memory table holds at most " + std::to_string(kMaxRegions) +
                    ": use larger regions (DmaMemoryOptions::region_size)");
    t.nregions = static_cast<uint32_t>(mem_->region_count());
    for (size_t i = 0; i < mem_->region_count(); i++) {
        const DmaRegion& r = mem_->region(i);
        t.regions[i] = {.guest_phys_addr = mem_->region_iova(i).value,  // an IOVA: what descriptors carry
                        .memory_size = r.length(),
                        .userspace_addr = reinterpret_cast<uintptr_t>(r.va()),  // a VA: ours
                        .mmap_offset = 0};
        fds[i] = r.fd();
    }
    conn_.request(kSetMemTable, &t, static_cast<uint32_t>(offsetof(MemTable, regions) + sizeof(MemRegion) * t.nregions),
                  fds, static_cast<int>(t.nregions));
}

// We are the device's IOMMU: one message maps (or unmaps) a whole region IOVA -> our VA (transport/iotlb.hpp).
// Acknowledged when REPLY_ACK is negotiated (DPDK answers IOTLB_MSG only then).
void VhostUserTransport::send_iotlb(uint8_t type, const iotlb::Entry& e) {
    IotlbMsg m{};
    m.iova = e.iova.value;
    m.size = e.size;
    if (type == kIotlbUpdate) {
        m.uaddr = e.uaddr;  // a VA: ours
        m.perm = kAccessRw;
    }
    m.type = type;
    conn_.request(kIotlbMsg, &m, sizeof m);
}

// From the back-end channel's thread.
bool VhostUserTransport::answer_iotlb_miss(Iova iova) {
    const std::optional<iotlb::Entry> e = iotlb::entry_for(*mem_, iova);
    if (!e) {  // not our memory: the device asked for something it was never given
        misses_refused_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    std::lock_guard<std::mutex> g(conn_lock_);
    try {
        send_iotlb(kIotlbUpdate, *e);
        misses_answered_.fetch_add(1, std::memory_order_relaxed);
        return true;
    } catch (const Error&) {
        return false;  // the connection is going; the port sees it hang up
    }
}

std::optional<DeviceIotlbCounters> VhostUserTransport::iotlb_counters() const {
    if (!virtio::has(features_, virtio::feature::kAccessPlatform)) return std::nullopt;
    return DeviceIotlbCounters{iotlb_updates_.load(std::memory_order_relaxed),
                               misses_answered_.load(std::memory_order_relaxed),
                               misses_refused_.load(std::memory_order_relaxed), 0};
}

// From the back-end channel's thread: drop the connection, the port reconnects.
void VhostUserTransport::backend_broken(const std::string& why) {
    std::lock_guard<std::mutex> g(conn_lock_);
    broken_ = "disconnected the back end: " + why;
    conn_.shut_down();
}

void VhostUserTransport::start_device() {
    if (mem_ == nullptr) throw Error(describe() + ": no DMA memory attached (NetPort attaches it)");
    const bool iommu = virtio::has(features_, virtio::feature::kAccessPlatform);
    const bool packed = virtio::has(features_, virtio::feature::kRingPacked);
    if (iommu && wire_has(protocol_features_, kProtoBackendReq) && backend_ == nullptr) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0)
            throw_sys_error("socketpair", errno);
        try {
            std::lock_guard<std::mutex> g(conn_lock_);
            conn_.request(kSetBackendReqFd, nullptr, 0, &sv[1], 1);
        } catch (...) {
            ::close(sv[0]);
            ::close(sv[1]);
            throw;
        }
        ::close(sv[1]);
        backend_ = std::make_unique<BackendChannel>(
            sv[0], [this](Iova iova) { return answer_iotlb_miss(iova); },
            [this](const std::string& why) { backend_broken(why); });
    }
    std::lock_guard<std::mutex> g(conn_lock_);
    send_mem_table();
    if (iommu)
        for (size_t i = 0; i < mem_->region_count(); i++) {
            send_iotlb(kIotlbUpdate, iotlb::entry_of_region(*mem_, i));
            iotlb_updates_.fetch_add(1, std::memory_order_relaxed);
        }
    // Call and error fds before the ring is described and kicked: a back end
    // may start a ring at SET_VRING_KICK (without protocol features).
    for (const QueueAreas& q : queues_) {
        if (q.size == 0) continue;
        uint64_t idx = q.index;
        int call = fds_.call(q.index), err = fds_.err(q.index), kick = fds_.kick(q.index);
        conn_.request(kSetVringCall, &idx, sizeof idx, &call, 1);
        conn_.request(kSetVringErr, &idx, sizeof idx, &err, 1);
        VringState num{q.index, q.size};
        conn_.request(kSetVringNum, &num, sizeof num);
        // Packed: bits 0-14 the next index, bit 15 the wrap counter (starts at 1).
        VringState base{q.index, packed ? virtio::kPackedWrapBit : 0u};
        conn_.request(kSetVringBase, &base, sizeof base);
        // Ring addresses are IOVAs when the back end translates through our
        // IOTLB (ACCESS_PLATFORM); otherwise our VAs, which it finds through
        // the memory table's userspace_addr (the vhost-user spec's "user addresses").
        auto ring_addr = [&](Iova iova, const void* va) -> uint64_t {
            return iommu ? iova.value : reinterpret_cast<uintptr_t>(va);
        };
        VringAddr a{q.index,
                    0,
                    ring_addr(q.desc_iova, q.desc_va),
                    ring_addr(q.device_iova, q.device_va),
                    ring_addr(q.driver_iova, q.driver_va),
                    0};
        conn_.request(kSetVringAddr, &a, sizeof a);
        conn_.request(kSetVringKick, &idx, sizeof idx, &kick, 1);
    }
    if (protocol_)
        for (const QueueAreas& q : queues_) {
            if (q.size == 0) continue;
            VringState en{q.index, 1};
            conn_.request(kSetVringEnable, &en, sizeof en);
        }
    started_ = true;
}

void VhostUserTransport::reset() {
    status_ = 0;
    if (!started_) return;
    started_ = false;
    {
        std::lock_guard<std::mutex> g(conn_lock_);
        if (conn_.valid()) try {
                // Disable first (the back end stops using the rings and tells
                // its application, as DPDK's own front end does), then
                // GET_VRING_BASE stops each ring.
                if (protocol_)
                    for (const QueueAreas& q : queues_)
                        if (q.size != 0) {
                            VringState en{q.index, 0};
                            conn_.request(kSetVringEnable, &en, sizeof en);
                        }
                for (const QueueAreas& q : queues_)
                    if (q.size != 0) conn_.call_state(kGetVringBase, {q.index, 0});
                // As its IOMMU, withdraw every mapping: the memory is no longer the device's.
                if (virtio::has(features_, virtio::feature::kAccessPlatform))
                    for (size_t i = 0; i < mem_->region_count(); i++)
                        send_iotlb(kIotlbInvalidate, iotlb::entry_of_region(*mem_, i));
            } catch (const Error&) {
                // The back end is gone or broken: nothing left to stop or unmap.
            }
    }
    backend_.reset();  // not under conn_lock_: its thread may be waiting for it
}

void VhostUserTransport::disconnect() {
    started_ = false;
    status_ = 0;
    backend_.reset();
    std::lock_guard<std::mutex> g(conn_lock_);
    conn_.close();
}

bool VhostUserTransport::reconnect(int stop_fd) {
    if (!can_reconnect() || (opts_.server && listener_ == nullptr)) return false;
    disconnect();
    Connection c = opts_.server ? listener_->accept(-1, stop_fd) : connect_to(opts_.path, -1, stop_fd);
    if (!c.valid()) return false;
    {
        std::lock_guard<std::mutex> g(conn_lock_);
        conn_ = std::move(c);
    }
    handshake();
    return true;
}

}  // namespace vireo
