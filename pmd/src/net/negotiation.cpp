// Feature negotiation (negotiation.hpp): the dependencies of virtio 1.2
// section 5.1.3.1 and vireo's own limits, without a device in reach.
#include "net/negotiation.hpp"

#include <bit>

#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::detail {

using namespace virtio::feature;
using virtio::bit;
using virtio::has;

namespace {

// CTRL_VQ/CTRL_RX only where a device processes the control queue (not over
// vhost-user: there QEMU handles it in its own device model, so queue pairs
// are switched with SET_VRING_ENABLE, as DPDK's virtio-user does).
constexpr virtio::Features kSupported =
    bit(kVersion1) | bit(kAccessPlatform) | bit(kRingPacked) | bit(kInOrder) | bit(kEventIdx) | bit(kOrderPlatform) |
    bit(kNotificationData) | bit(kNetMrgRxbuf) | bit(kNetCsum) | bit(kNetGuestCsum) | bit(kNetMac) | bit(kNetStatus) |
    bit(kNetMtu) | bit(kNetMq) | bit(kNetCtrlVq) | bit(kNetCtrlRx) | bit(kNetCtrlMacAddr) | bit(kNetCtrlVlan) |
    bit(kNetGuestAnnounce) | bit(kNetSpeedDuplex) | bit(kIndirectDesc) | bit(kNetHostTso4) | bit(kNetHostTso6) |
    bit(kNetGuestTso4) | bit(kNetGuestTso6) | bit(kNetRss) | bit(kNetHashReport) | bit(kNetCtrlGuestOffloads) |
    bit(kRingReset);
constexpr virtio::Features kHostTso = bit(kNetHostTso4) | bit(kNetHostTso6);
constexpr virtio::Features kGuestTso = bit(kNetGuestTso4) | bit(kNetGuestTso6);
// What only a control queue makes sense of (5.1.3.1: each requires CTRL_VQ).
constexpr virtio::Features kNeedControlQueue = bit(kNetCtrlRx) | bit(kNetCtrlMacAddr) | bit(kNetCtrlVlan) |
                                               bit(kNetGuestAnnounce) | bit(kNetRss) | bit(kNetHashReport) |
                                               bit(kNetCtrlGuestOffloads);

Negotiated refuse(std::string why) { return {{}, std::move(why)}; }

}  // namespace

virtio::Features supported_features() noexcept { return kSupported; }

Negotiated negotiate_features(const NegotiationInput& in, const std::string& device) {
    if (!has(in.offered, kVersion1))
        return refuse(device + " does not offer VIRTIO_F_VERSION_1: vireo drives modern (virtio 1.x) devices only");
    // Bit 33 is the DMA plan's to choose (iova_policy.hpp), never the wish list's.
    virtio::Features f = in.offered & in.wanted & kSupported & ~bit(kAccessPlatform);
    if (in.negotiate_access_platform) f |= bit(kAccessPlatform);
    f |= bit(kVersion1);
    // 5.1.3.1: HOST_TSO needs CSUM and GUEST_TSO needs GUEST_CSUM. A large
    // received segment needs room too: vireo takes GUEST_TSO only with
    // MRG_RXBUF (without it every Rx buffer would have to hold 64 KiB).
    if (!(in.wanted & kGuestTso).empty() && !has(in.wanted, kNetMrgRxbuf))
        return refuse(device +
                      ": guest_tso4/guest_tso6 need mrg_rxbuf=1: a large TCP segment arrives over mergeable Rx "
                      "buffers");
    if (!(in.wanted & kGuestTso).empty() && !has(in.wanted, kNetGuestCsum))
        return refuse(device + ": guest_tso4/guest_tso6 need guest_csum=1 (virtio 1.2 section 5.1.3.1)");
    if (!has(f, kNetCsum)) f &= ~kHostTso;
    if (!has(f, kNetGuestCsum) || !has(f, kNetMrgRxbuf)) f &= ~kGuestTso;
    // RING_RESET only where the transport has the register: QEMU offers it
    // over virtio-mmio too, which has no QueueReset in 7.2.
    if (!in.queue_reset) f &= ~bit(kRingReset);
    if (!in.control_queue_processed) f &= ~(bit(kNetCtrlVq) | kNeedControlQueue);
    if (!has(f, kNetCtrlVq)) f &= ~kNeedControlQueue;
    if (in.queues > 1) {
        const std::string q = device + ": queues=" + std::to_string(in.queues);
        if (in.control_queue_processed && !has(f, kNetCtrlVq))
            return refuse(q +
                          " needs the control queue (VIRTIO_NET_F_CTRL_VQ) to set the number of queue pairs: the "
                          "device does not offer it, or ctrl_vq=0 was given");
        if (!has(f, kNetMq))
            return refuse(q + " needs VIRTIO_NET_F_MQ, which the device does not offer (or mq=0 was given)");
        if (in.queues > in.max_virtqueue_pairs)
            return refuse(q + " but the device has " + std::to_string(in.max_virtqueue_pairs) +
                          " queue pairs (DPDK: queues=N on the vdev)");
    } else {
        f &= ~bit(kNetMq);
    }
    // The ring size against the layout the device accepted and its own limits.
    if (!has(f, kRingPacked) && !std::has_single_bit(in.ring))
        return refuse(device + ": ring=" + std::to_string(in.ring) +
                      " is not a power of two, which a split ring needs (virtio 1.2 section 2.7), and the device "
                      "does not offer packed rings: use 256, 512, ...");
    // The first pair's queues exist before FEATURES_OK; the others only after
    // MQ is accepted (QEMU's queue 2 is the control queue until then), so
    // NetPort checks them with ring_fit_error() once the features are set.
    for (uint16_t q = 0; q < 2; q++)
        if (std::string e = ring_fit_error(in.ring, q, in.first_pair_max[q], device); !e.empty())
            return refuse(std::move(e));
    return {f, {}};
}

std::string ring_fit_error(uint16_t ring, uint16_t q, uint16_t most, const std::string& device) {
    if (most == 0 || ring <= most) return {};
    return device + ": ring=" + std::to_string(ring) + " but the device's queue " + std::to_string(q) +
           " holds at most " + std::to_string(most) + " descriptors: use ring=" + std::to_string(std::bit_floor(most)) +
           " or less";
}

}  // namespace vireo::detail
