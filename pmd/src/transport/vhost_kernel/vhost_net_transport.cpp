#include "transport/vhost_kernel/vhost_net_transport.hpp"

#include <linux/if_tun.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/iova/dma_memory.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

using namespace virtio::feature;
using virtio::bit;
using virtio::has;

namespace {

// Ring index of a virtio-net queue inside its pair's /dev/vhost-net
// (drivers/vhost/net.c: VHOST_NET_VQ_RX 0, VHOST_NET_VQ_TX 1), which are
// virtio-net's receiveqN = 2N and transmitqN = 2N + 1 (5.1.2).
unsigned pair_of(uint16_t queue) { return queue / 2u; }
unsigned ring_in_pair(uint16_t queue) { return queue % 2u; }

// What vhost-net itself does with the rings; everything else in the
// virtio-net header is between vireo and the tap. VHOST_NET_F_VIRTIO_NET_HDR
// (bit 27, which is also ANY_LAYOUT: VERSION_1 implies it) is never asked
// for: the header goes through to the tap, which reads and writes it.
constexpr virtio::Features kVhostNetBits =
    bit(kIndirectDesc) | bit(kEventIdx) | bit(kVersion1) | bit(kAccessPlatform) | bit(kNetMrgRxbuf);
// The tap's part: it checksums and segments what we hand it, and hands us
// what TUNSETOFFLOAD allows.
constexpr virtio::Features kTapBits = bit(kNetCsum) | bit(kNetGuestCsum) | bit(kNetHostTso4) | bit(kNetHostTso6) |
                                      bit(kNetGuestTso4) | bit(kNetGuestTso6);
// The virtio-net header with VERSION_1 (5.1.6: struct virtio_net_hdr, num_buffers included).
constexpr int kVnetHeaderBytes = 12;

}  // namespace

VhostNetTransport::VhostNetTransport(const VhostNetOptions& opts) : opts_(opts), tap_(opts.tap, opts.queues) {
    if (!opts_.mac_given) {  // random, locally administered, unicast
        std::random_device rd;
        for (auto& b : opts_.mac) b = static_cast<uint8_t>(rd());
        opts_.mac[0] = static_cast<uint8_t>((opts_.mac[0] & 0xfe) | 0x02);
    }
    for (uint16_t p = 0; p < opts_.queues; p++) {
        vhost_.push_back(std::make_unique<vhost_kernel::VhostDevice>(opts_.vhost_path, "vhost_net"));
        vhost_.back()->set_owner();  // the kernel thread that serves this pair's rings
    }
    vhost_offered_ = vhost_[0]->features();
    if (!has(vhost_offered_, kVersion1))
        throw Error(opts_.vhost_path +
                    " does not offer VIRTIO_F_VERSION_1 (Linux 4.0 and later do): use a newer kernel");
    device_features_ = (vhost_offered_ & kVhostNetBits) | kTapBits | bit(kNetMac) | bit(kNetStatus) | bit(kNetMtu) |
                       (opts_.queues > 1 ? bit(kNetMq) : virtio::Features{});
    tap_.set_vnet_header_size(kVnetHeaderBytes);
}

VhostNetTransport::~VhostNetTransport() {
    try {
        reset();
    } catch (const Error&) {
    }
}

void VhostNetTransport::set_features(const virtio::Features& features) {
    if (const virtio::Features unknown = features & ~device_features_; !unknown.empty())
        throw Error(describe() + ": feature bits " + hex(unknown) +
                    " are not offered: switch them off in the device string");
    if (!has(features, kVersion1))
        throw Error(describe() + ": VIRTIO_F_VERSION_1 must be negotiated (the tap's 12-byte header assumes it)");
    const virtio::Features kernel = features & kVhostNetBits;
    for (auto& v : vhost_) {
        if (has(kernel, kAccessPlatform)) {
            // Misses and updates as struct vhost_msg_v2 on the fd (drivers/vhost/net.c accepts only this one).
            if (!(v->backend_features() & (uint64_t{1} << VHOST_BACKEND_F_IOTLB_MSG_V2)))
                throw Error(v->path() +
                            " does not offer VHOST_BACKEND_F_IOTLB_MSG_V2, which ACCESS_PLATFORM needs "
                            "here: switch access_platform off in the device string");
            v->set_backend_features(uint64_t{1} << VHOST_BACKEND_F_IOTLB_MSG_V2);
        }
        v->set_features(kernel);  // with ACCESS_PLATFORM the kernel makes the device IOTLB here
    }
    unsigned tun = 0;
    if (has(features, kNetGuestCsum)) {
        tun |= TUN_F_CSUM;
        if (has(features, kNetGuestTso4)) tun |= TUN_F_TSO4;
        if (has(features, kNetGuestTso6)) tun |= TUN_F_TSO6;
    }
    tap_.set_offloads(tun);
    features_ = features;
}

void VhostNetTransport::set_status(uint8_t s) {
    const bool driver_ok = (s & virtio::status::kDriverOk) && !(status_ & virtio::status::kDriverOk);
    status_ = s;
    if (driver_ok) start_device();
}

void VhostNetTransport::setup_queue(const QueueAreas& q) {
    if (pair_of(q.index) >= opts_.queues)
        throw Error(describe() + ": queue " + std::to_string(q.index) + " is beyond its " +
                    std::to_string(opts_.queues) + " queue pairs (no control queue over vhost-net)");
    if (q.packed) throw Error(describe() + ": vhost-net has no packed rings (VIRTIO_F_RING_PACKED is never offered)");
    if (q.index >= queues_.size()) queues_.resize(q.index + 1, QueueAreas{});
    queues_[q.index] = q;
    fds_.ensure(q.index);
}

NetConfig VhostNetTransport::net_config() {
    NetConfig c{};
    std::memcpy(c.mac, opts_.mac.data(), 6);
    const vhost_kernel::Tap::Link l = tap_.link();
    c.status = l.up ? virtio::kNetStatusLinkUp : 0;
    c.max_virtqueue_pairs = opts_.queues;
    c.mtu = static_cast<uint16_t>(l.mtu != 0 && l.mtu <= 65535 ? l.mtu : 1500);
    c.control_queue_processed = false;  // no control queue: every pair runs
    return c;
}

// The kernel is the device and vireo its IOMMU when ACCESS_PLATFORM is
// negotiated (VHOST_IOTLB_* messages); physical addresses are the
// guest-physical layout of the memory table vireo gives it.
DmaTraits VhostNetTransport::traits() {
    return {IommuKind::VhostIotlb, ~uint64_t{0}, PaSource::Linear,
            "vhost-net offers it from Linux 4.14 on: use a newer kernel"};
}

std::optional<DeviceIotlbCounters> VhostNetTransport::iotlb_counters() const {
    if (!has(features_, kAccessPlatform)) return std::nullopt;
    vhost_kernel::IotlbCounters c = iotlb_before_;
    if (iotlb_ != nullptr) {
        const vhost_kernel::IotlbCounters now = iotlb_->counters();
        c.misses_answered += now.misses_answered;
        c.misses_refused += now.misses_refused;
        c.access_failures += now.access_failures;
    }
    return DeviceIotlbCounters{iotlb_updates_, c.misses_answered, c.misses_refused, c.access_failures};
}

void VhostNetTransport::start_device() {
    if (mem_ == nullptr) throw Error(describe() + ": no DMA memory attached (NetPort attaches it)");
    const bool iommu = has(features_, kAccessPlatform);
    std::vector<iotlb::Entry> regions;
    for (size_t i = 0; i < mem_->region_count(); i++) regions.push_back(iotlb::entry_of_region(*mem_, i));
    std::vector<vhost_kernel::VhostDevice*> devices;
    for (auto& v : vhost_) {
        v->set_mem_table(regions);  // without ACCESS_PLATFORM: guest-physical -> our VA
        if (iommu)
            for (const iotlb::Entry& e : regions) {  // with it: every region mapped before a ring starts
                v->iotlb_update(e);
                iotlb_updates_++;
            }
        devices.push_back(v.get());
    }
    if (iommu)
        iotlb_ = std::make_unique<vhost_kernel::IotlbLoop>(devices,
                                                           [this](Iova iova) { return iotlb::entry_for(*mem_, iova); });
    for (const QueueAreas& q : queues_) {
        if (q.size == 0) continue;
        vhost_kernel::VhostDevice& v = *vhost_[pair_of(q.index)];
        const unsigned r = ring_in_pair(q.index);
        // Call and error eventfds before the ring is described and started.
        v.set_vring_call(r, fds_.call(q.index));
        v.set_vring_err(r, fds_.err(q.index));
        v.set_vring_num(r, q.size);
        v.set_vring_base(r, 0);
        // IOVAs with ACCESS_PLATFORM (the kernel translates them through the
        // IOTLB), else our VAs ("user addresses", drivers/vhost/vhost.c).
        auto ring_addr = [&](Iova iova, const void* va) -> uint64_t {
            return iommu ? iova.value : reinterpret_cast<uintptr_t>(va);
        };
        v.set_vring_addr(r, ring_addr(q.desc_iova, q.desc_va), ring_addr(q.device_iova, q.device_va),
                         ring_addr(q.driver_iova, q.driver_va));
        v.set_vring_kick(r, fds_.kick(q.index));
    }
    // The tap queue last: from here the kernel thread serves the pair's rings.
    for (const QueueAreas& q : queues_) {
        if (q.size == 0) continue;
        vhost_vring_file backend{ring_in_pair(q.index), tap_.queue_fd(static_cast<uint16_t>(pair_of(q.index)))};
        vhost_[pair_of(q.index)]->call(VHOST_NET_SET_BACKEND, &backend, "VHOST_NET_SET_BACKEND");
    }
    started_ = true;
}

// Detaching the tap stops a ring: the kernel thread flushes and lets go of it
// (drivers/vhost/net.c vhost_net_set_backend); then its state can be read and
// it can be set up again.
void VhostNetTransport::stop_device() {
    for (const QueueAreas& q : queues_) {
        if (q.size == 0) continue;
        vhost_vring_file none{ring_in_pair(q.index), -1};
        vhost_[pair_of(q.index)]->call(VHOST_NET_SET_BACKEND, &none, "VHOST_NET_SET_BACKEND (detach)");
        vhost_[pair_of(q.index)]->vring_base(ring_in_pair(q.index));
    }
    if (iotlb_ != nullptr) {
        const vhost_kernel::IotlbCounters c = iotlb_->counters();
        iotlb_before_.misses_answered += c.misses_answered;
        iotlb_before_.misses_refused += c.misses_refused;
        iotlb_before_.access_failures += c.access_failures;
        iotlb_.reset();
        // As its IOMMU, withdraw every mapping: the memory is no longer the device's.
        for (auto& v : vhost_)
            for (size_t i = 0; i < mem_->region_count(); i++) {
                const iotlb::Entry e = iotlb::entry_of_region(*mem_, i);
                v->iotlb_invalidate(e.iova, e.size);
            }
    }
}

void VhostNetTransport::reset() {
    status_ = 0;
    if (!started_) return;
    started_ = false;
    stop_device();
}

}  // namespace vireo
