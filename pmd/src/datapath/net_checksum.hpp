// The Internet checksum (RFC 1071) the way a virtio-net device completes it
// for VIRTIO_NET_HDR_F_NEEDS_CSUM (5.1.6.2): summed from csum_start to the end
// of the frame, across segments, over a checksum field that holds the
// pseudo-header sum (the application's part, as with DPDK's offload flags),
// and stored complemented at csum_start + csum_offset. vireo does it in
// software when the device does not offer VIRTIO_NET_F_CSUM (OVS-DPDK
// without userspace-tso-enable, for one): without it a frame asking for the
// offload would leave with whatever the field held.
#pragma once

#include <cstdint>

#include "vireo/mempool/packet.hpp"

namespace vireo {

// False (nothing written) when the frame is shorter than start + offset + 2.
inline bool complete_checksum(Packet* p, uint32_t start, uint32_t offset, bool udp) noexcept {
    if (start + offset + 2 > p->pkt_len) return false;
    uint64_t sum = 0;
    uint32_t pos = 0;  // offset of the current segment in the frame
    bool odd = false;  // the next byte is the low half of a 16-bit word
    uint8_t* field = nullptr;
    for (Packet* s = p; s != nullptr; s = s->next) {
        uint8_t* d = s->data();
        const uint32_t end = pos + s->data_len;
        if (field == nullptr && start + offset >= pos && start + offset + 1 < end) field = d + (start + offset - pos);
        uint32_t i = start > pos ? start - pos : 0;
        for (; i < s->data_len; i++) {
            sum += odd ? d[i] : uint32_t{d[i]} << 8;
            odd = !odd;
        }
        pos = end;
    }
    if (field == nullptr) return false;  // the field straddles two segments: not a real header
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    uint16_t c = static_cast<uint16_t>(~sum);
    if (udp && c == 0) c = 0xffff;  // RFC 768: 0 means "no checksum"
    field[0] = static_cast<uint8_t>(c >> 8);
    field[1] = static_cast<uint8_t>(c);
    return true;
}

}  // namespace vireo
