#include "vhost_user_transport.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "vireo/base/error.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

using namespace vhost;

VhostUserTransport::VhostUserTransport(const VhostUserOptions& opts) : opts_(opts) {
    if (!opts_.mac_given) {  // random, locally administered, unicast
        std::random_device rd;
        for (auto& b : opts_.mac) b = static_cast<uint8_t>(rd());
        opts_.mac[0] = static_cast<uint8_t>((opts_.mac[0] & 0xfe) | 0x02);
    }
    if (opts_.server) {
        listen_fd_ = Connection::listen_on(opts_.path);
        conn_ = Connection::accept_from(listen_fd_, opts_.path, opts_.timeout_ms);
    } else {
        conn_ = Connection::connect_to(opts_.path, opts_.timeout_ms);
    }
    handshake();
}

VhostUserTransport::~VhostUserTransport() {
    stop_backend_channel();
    for (int fd : kick_fds_) ::close(fd);
    for (int fd : call_fds_) ::close(fd);
    for (int fd : err_fds_) ::close(fd);
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        ::unlink(opts_.path.c_str());
    }
}

// SET_OWNER, features, protocol features, queue count, back-end channel.
void VhostUserTransport::handshake() {
    std::lock_guard<std::mutex> g(conn_lock_);
    conn_.set_reply_ack(false);
    conn_.send(kSetOwner, nullptr, 0);
    uint64_t f = conn_.call_u64(kGetFeatures);
    protocol_ = virtio::has(f, kFeatureProtocolFeatures);
    device_features_ = f & ~virtio::bit(kFeatureProtocolFeatures);
    protocol_features_ = 0;
    max_pairs_ = 1;
    if (protocol_) {
        uint64_t offered = conn_.call_u64(kGetProtocolFeatures);
        const uint64_t wanted = virtio::bit(kProtoMq) | virtio::bit(kProtoReplyAck) | virtio::bit(kProtoBackendReq);
        protocol_features_ = offered & wanted;
        conn_.send(kSetProtocolFeatures, &protocol_features_, sizeof protocol_features_);
        if (virtio::has(protocol_features_, kProtoMq)) {
            uint64_t n = conn_.call_u64(kGetQueueNum);
            max_pairs_ = static_cast<uint16_t>(n == 0 ? 1 : n);
        }
        conn_.set_reply_ack(virtio::has(protocol_features_, kProtoReplyAck));
    }
}

void VhostUserTransport::set_features(uint64_t features) {
    uint64_t unknown = features & ~device_features_;
    if (unknown != 0)
        throw Error("vhost-user back end at " + opts_.path + " does not offer feature bits 0x" + [&] {
            char b[32];
            std::snprintf(b, sizeof b, "%llx", static_cast<unsigned long long>(unknown));
            return std::string(b);
        }() + ": switch them off in the device string");
    features_ = features;
    uint64_t wire = features | (protocol_ ? virtio::bit(kFeatureProtocolFeatures) : 0);
    std::lock_guard<std::mutex> g(conn_lock_);
    conn_.request(kSetFeatures, &wire, sizeof wire);
}

void VhostUserTransport::set_status(uint8_t s) {
    const bool driver_ok = (s & virtio::status::kDriverOk) && !(status_ & virtio::status::kDriverOk);
    status_ = s;
    if (driver_ok) start_device();
}

void VhostUserTransport::setup_queue(const QueueAreas& q) {
    if (q.index >= queues_.size()) queues_.resize(q.index + 1, QueueAreas{});
    queues_[q.index] = q;
    while (kick_fds_.size() <= q.index) {
        int k = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), c = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
            e = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (k < 0 || c < 0 || e < 0) throw_sys_error("eventfd", errno);
        kick_fds_.push_back(k);
        call_fds_.push_back(c);
        err_fds_.push_back(e);
    }
}

Doorbell VhostUserTransport::doorbell(uint16_t index) {
    if (index >= kick_fds_.size()) throw Error("doorbell for queue " + std::to_string(index) + " before its setup");
    return Doorbell::eventfd(kick_fds_[index]);
}

NetConfig VhostUserTransport::net_config() {
    NetConfig c{};
    std::memcpy(c.mac, opts_.mac.data(), 6);
    c.status = connected() ? 1 : 0;
    c.max_virtqueue_pairs = max_pairs_;
    c.mtu = opts_.mtu;
    return c;
}

bool VhostUserTransport::connected() {
    if (!conn_.valid()) return false;
    pollfd p{conn_.fd(), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return true;
    if (p.revents & (POLLHUP | POLLERR)) return false;
    char c;  // readable: either an unexpected message or end of file
    return ::recv(conn_.fd(), &c, 1, MSG_PEEK | MSG_DONTWAIT) != 0;
}

// The memory table: one entry per DMA region, guest-physical address = its IOVA.
void VhostUserTransport::send_mem_table() {
    MemTable t{};
    int fds[kMaxRegions];
    t.nregions = static_cast<uint32_t>(mem_->region_count());
    for (size_t i = 0; i < mem_->region_count(); i++) {
        const DmaRegion& r = mem_->region(i);
        t.regions[i] = {mem_->region_iova(i), r.length(), reinterpret_cast<uint64_t>(r.va()), 0};
        fds[i] = r.fd();
    }
    conn_.request(kSetMemTable, &t, static_cast<uint32_t>(8 + 32 * t.nregions), fds, static_cast<int>(t.nregions));
}

// We are the IOMMU: map every region IOVA -> our VA, read-write, up front
// (misses are answered too, by the back-end channel thread).
void VhostUserTransport::send_iotlb_updates() {
    for (size_t i = 0; i < mem_->region_count(); i++) {
        const DmaRegion& r = mem_->region(i);
        IotlbMsg m{};
        m.iova = mem_->region_iova(i);
        m.size = r.length();
        m.uaddr = reinterpret_cast<uint64_t>(r.va());
        m.perm = kAccessRw;
        m.type = kIotlbUpdate;
        // Acknowledged when REPLY_ACK is negotiated (DPDK answers IOTLB_MSG only then).
        conn_.request(kIotlbMsg, &m, sizeof m);
    }
}

void VhostUserTransport::start_device() {
    if (mem_ == nullptr) throw Error(describe() + ": no DMA memory attached (NetPort attaches it)");
    const bool iommu = virtio::has(features_, virtio::feature::kAccessPlatform);
    const bool packed = virtio::has(features_, virtio::feature::kRingPacked);
    std::lock_guard<std::mutex> g(conn_lock_);
    if (iommu && virtio::has(protocol_features_, kProtoBackendReq) && backend_fd_ < 0) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw_sys_error("socketpair", errno);
        conn_.request(kSetBackendReqFd, nullptr, 0, &sv[1], 1);
        ::close(sv[1]);
        backend_fd_ = sv[0];
        backend_stop_ = false;
        backend_thread_ = std::thread([this] { backend_channel_loop(); });
    }
    send_mem_table();
    if (iommu) send_iotlb_updates();
    for (const QueueAreas& q : queues_) {
        if (q.size == 0) continue;
        VringState num{q.index, q.size};
        conn_.request(kSetVringNum, &num, sizeof num);
        // Packed: bits 0-14 the next index, bit 15 the wrap counter (starts at 1).
        VringState base{q.index, packed ? 0x8000u : 0u};
        conn_.request(kSetVringBase, &base, sizeof base);
        auto addr_of = [&](uint64_t iova, const void* va) { return iommu ? iova : reinterpret_cast<uint64_t>(va); };
        VringAddr a{q.index,
                    0,
                    addr_of(q.desc_iova, q.desc_va),
                    addr_of(q.device_iova, q.device_va),
                    addr_of(q.driver_iova, q.driver_va),
                    0};
        conn_.request(kSetVringAddr, &a, sizeof a);
        uint64_t idx = q.index;
        conn_.request(kSetVringKick, &idx, sizeof idx, &kick_fds_[q.index], 1);
        conn_.request(kSetVringCall, &idx, sizeof idx, &call_fds_[q.index], 1);
        conn_.request(kSetVringErr, &idx, sizeof idx, &err_fds_[q.index], 1);
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
    if (!conn_.valid()) return;
    std::lock_guard<std::mutex> g(conn_lock_);
    try {  // GET_VRING_BASE stops each ring in the back end
        for (const QueueAreas& q : queues_)
            if (q.size != 0) conn_.call_state(kGetVringBase, {q.index, 0});
        // As its IOMMU, withdraw every mapping: the memory is no longer the device's.
        if (virtio::has(features_, virtio::feature::kAccessPlatform))
            for (size_t i = 0; i < mem_->region_count(); i++) {
                IotlbMsg m{};
                m.iova = mem_->region_iova(i);
                m.size = mem_->region(i).length();
                m.type = kIotlbInvalidate;
                conn_.request(kIotlbMsg, &m, sizeof m);
            }
    } catch (const Error&) {
        // The back end is gone: nothing left to stop or unmap.
    }
}

// The back end's requests: IOTLB misses, answered from our map.
void VhostUserTransport::backend_channel_loop() {
    Connection ch(backend_fd_);
    while (!backend_stop_) {
        pollfd p{backend_fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        Message m;
        try {
            m = ch.receive(nullptr, 100, "a back-end request");
        } catch (const Error&) {
            break;
        }
        uint64_t status = 1;
        if (m.hdr.request == kBackendIotlbMsg && m.payload.iotlb.type == kIotlbMiss) {
            const uint64_t iova = m.payload.iotlb.iova;
            for (size_t i = 0; i < mem_->region_count(); i++) {
                const uint64_t base = mem_->region_iova(i), len = mem_->region(i).length();
                if (iova < base || iova - base >= len) continue;
                IotlbMsg u{};
                u.iova = base;
                u.size = len;
                u.uaddr = reinterpret_cast<uint64_t>(mem_->region(i).va());
                u.perm = kAccessRw;
                u.type = kIotlbUpdate;
                std::lock_guard<std::mutex> g(conn_lock_);
                try {
                    conn_.request(kIotlbMsg, &u, sizeof u);
                    status = 0;
                } catch (const Error&) {
                }
                break;
            }
        }
        if (m.hdr.flags & kFlagNeedReply) {
            try {
                ch.send(m.hdr.request, &status, sizeof status, nullptr, 0, kFlagReply);
            } catch (const Error&) {
            }
        }
    }
    (void)ch;  // closes backend_fd_
    backend_fd_ = -1;
}

void VhostUserTransport::stop_backend_channel() {
    backend_stop_ = true;
    if (backend_thread_.joinable()) backend_thread_.join();
}

void VhostUserTransport::close_connection() {
    stop_backend_channel();
    conn_ = Connection();
    started_ = false;
}

void VhostUserTransport::reconnect() {
    if (!opts_.server) throw Error("reconnect needs server mode (server=1 in the device string)");
    close_connection();
    conn_ = Connection::accept_from(listen_fd_, opts_.path, opts_.timeout_ms);
    handshake();
}

}  // namespace vireo
