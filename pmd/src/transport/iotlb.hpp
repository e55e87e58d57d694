// vireo as a device's IOMMU: what it maps for a vhost back end that translates
// through a device IOTLB. vhost-user (IOTLB_MSG on the socket), vhost-net and
// vhost-vdpa (struct vhost_msg_v2 on the character device) all carry the same
// struct vhost_iotlb_msg; the transports differ in the wire, never in what a
// mapping is. One mapping covers one whole DMA region, IOVA -> our VA, read and
// write: a device only ever gets addresses inside our regions, so a region is
// the unit of trust and one miss maps everything it may touch there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "vireo/base/address.hpp"

namespace vireo {

class DmaMemory;

namespace iotlb {

struct Entry {
    Iova iova = kBadIova;
    uint64_t size = 0;
    uint64_t uaddr = 0;  // our virtual address of iova
};

// Region i of mem as one mapping.
Entry entry_of_region(const DmaMemory& mem, size_t region);

// The mapping that answers a miss at iova: the region holding it, or nothing
// when iova is not ours (the device asked for memory it was never given).
std::optional<Entry> entry_for(const DmaMemory& mem, Iova iova);

}  // namespace iotlb
}  // namespace vireo
