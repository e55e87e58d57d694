// One open vhost character device of the kernel: /dev/vhost-net (one per queue
// pair) or /dev/vhost-vdpa-N. Both speak the ioctls of linux/vhost.h and carry
// the device IOTLB as struct vhost_msg_v2 read from and written to the fd
// (VHOST_BACKEND_F_IOTLB_MSG_V2). Every failure throws an Error that names the
// device node, the call and what to do.
#pragma once

#include "transport/vhost_kernel/vhost_uapi.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "transport/iotlb.hpp"
#include "vireo/pmd/virtio_features.hpp"

namespace vireo::vhost_kernel {

class VhostDevice {
public:
    // Opens the node read-write, non-blocking (IOTLB reads never block).
    // `module` names the kernel module that provides it, for the error.
    VhostDevice(const std::string& path, const std::string& module);
    // Adopts an open fd (tests: one end of a socket pair stands in for the kernel).
    VhostDevice(int fd, const std::string& name) : path_(name), fd_(fd) {}
    ~VhostDevice();
    VhostDevice(const VhostDevice&) = delete;
    VhostDevice& operator=(const VhostDevice&) = delete;

    int fd() const noexcept { return fd_; }
    const std::string& path() const noexcept { return path_; }

    void set_owner();
    virtio::Features features();  // VHOST_GET_FEATURES: bits 0-63
    void set_features(const virtio::Features& f);
    uint64_t backend_features();
    void set_backend_features(uint64_t f);
    // guest_phys_addr -> userspace_addr, one entry per region (vhost-net only).
    void set_mem_table(std::span<const iotlb::Entry> regions);
    void set_vring_num(unsigned index, unsigned num);
    void set_vring_base(unsigned index, unsigned base);
    unsigned vring_base(unsigned index);  // VHOST_GET_VRING_BASE: also stops the ring (vhost-net)
    void set_vring_addr(unsigned index, uint64_t desc, uint64_t used, uint64_t avail);
    void set_vring_kick(unsigned index, int fd);
    void set_vring_call(unsigned index, int fd);
    void set_vring_err(unsigned index, int fd);

    // The IOTLB (struct vhost_msg_v2). Batches are vhost-vdpa's (IOTLB_BATCH).
    void iotlb_update(const iotlb::Entry& e);
    void iotlb_invalidate(Iova iova, uint64_t size);
    void iotlb_batch_begin();
    void iotlb_batch_end();
    // The next message the kernel wrote (a miss, an access failure), or nothing.
    std::optional<vhost_iotlb_msg> read_iotlb();

    // Any other ioctl of this device; `what` names it in the error.
    void call(unsigned long request, void* arg, const char* what);

private:
    void write_iotlb(const vhost_iotlb_msg& m, const char* what);

    std::string path_;
    int fd_ = -1;
};

}  // namespace vireo::vhost_kernel
