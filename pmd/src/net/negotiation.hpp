// Feature negotiation as a pure function: what the device offers, what the
// device string wants, the device's configuration and the DMA plan's bit 33
// in; the features to write (virtio 1.2 section 3.1.1 step 5) or why there are
// none out. NetPort calls it before FEATURES_OK; tests/negotiation_test.cpp
// walks its table.
#pragma once

#include <cstdint>
#include <string>

#include "vireo/pmd/virtio_features.hpp"

namespace vireo::detail {

struct NegotiationInput {
    virtio::Features offered;                // the device's features
    virtio::Features wanted;                 // the device string's (DeviceSpec::wanted_features)
    bool negotiate_access_platform = false;  // the DMA plan's decision on VIRTIO_F_ACCESS_PLATFORM
    bool control_queue_processed = true;     // NetConfig: false over vhost-user (the back end never sees it)
    bool queue_reset = false;                // the transport can reset one queue (RING_RESET is of use)
    uint16_t max_virtqueue_pairs = 1;        // NetConfig
    uint16_t queues = 1;                     // queue pairs asked for
    uint16_t ring = 256;                     // descriptors per queue asked for
    uint16_t first_pair_max[2] = {0, 0};     // the first pair's maximum queue sizes (0: the device sets none)
};

struct Negotiated {
    virtio::Features features;
    std::string error;  // empty: features is what to write; else what is wrong and how to fix it
    bool ok() const noexcept { return error.empty(); }
};

// Everything vireo's virtio-net driver can accept.
virtio::Features supported_features() noexcept;

// device names the device in errors ("vhost-user:/tmp/s").
Negotiated negotiate_features(const NegotiationInput& in, const std::string& device);

// Why ring descriptors do not fit queue q that holds at most `most` (0: no
// limit): "" when they fit.
std::string ring_fit_error(uint16_t ring, uint16_t q, uint16_t most, const std::string& device);

}  // namespace vireo::detail
