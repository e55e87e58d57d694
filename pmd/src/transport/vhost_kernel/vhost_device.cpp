#include "transport/vhost_kernel/vhost_device.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

#include "vireo/base/error.hpp"

namespace vireo::vhost_kernel {

VhostDevice::VhostDevice(const std::string& path, const std::string& module) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd_ >= 0) return;
    const int e = errno;
    if (e == ENOENT)
        throw_sys_error(path, e,
                        "load the kernel's " + module + " module (modprobe " + module +
                            "); inside a container, pass the device node through");
    if (e == EACCES || e == EPERM)
        throw_sys_error(path, e, "run as root or give this user read-write access to " + path);
    throw_sys_error(path, e);
}

VhostDevice::~VhostDevice() {
    if (fd_ >= 0) ::close(fd_);
}

void VhostDevice::call(unsigned long request, void* arg, const char* what) {
    if (::ioctl(fd_, request, arg) == 0) return;
    const int e = errno;
    throw_sys_error(path_ + ": " + what, e);
}

void VhostDevice::set_owner() { call(VHOST_SET_OWNER, nullptr, "VHOST_SET_OWNER"); }

virtio::Features VhostDevice::features() {
    uint64_t f = 0;
    call(VHOST_GET_FEATURES, &f, "VHOST_GET_FEATURES");
    return virtio::Features::from_u64(f);
}

void VhostDevice::set_features(const virtio::Features& features) {
    if (!features.fits_u64())  // never offered: the ioctl carries bits 0-63 only
        throw Error(path() + ": feature bits past 63 (" + hex(features) + ") do not fit VHOST_SET_FEATURES");
    uint64_t f = features.low64();
    call(VHOST_SET_FEATURES, &f, "VHOST_SET_FEATURES");
}

uint64_t VhostDevice::backend_features() {
    uint64_t f = 0;
    call(VHOST_GET_BACKEND_FEATURES, &f, "VHOST_GET_BACKEND_FEATURES");
    return f;
}

void VhostDevice::set_backend_features(uint64_t f) {
    call(VHOST_SET_BACKEND_FEATURES, &f, "VHOST_SET_BACKEND_FEATURES");
}

void VhostDevice::set_mem_table(std::span<const iotlb::Entry> regions) {
    // struct vhost_memory ends in a flexible array of regions.
    std::vector<std::byte> buf(sizeof(vhost_memory) + regions.size() * sizeof(vhost_memory_region));
    auto* m = reinterpret_cast<vhost_memory*>(buf.data());
    m->nregions = static_cast<uint32_t>(regions.size());
    for (size_t i = 0; i < regions.size(); i++)
        m->regions[i] = {.guest_phys_addr = regions[i].iova.value,
                         .memory_size = regions[i].size,
                         .userspace_addr = regions[i].uaddr,
                         .flags_padding = 0};
    if (::ioctl(fd_, VHOST_SET_MEM_TABLE, m) == 0) return;
    const int e = errno;
    throw_sys_error(path_ + ": VHOST_SET_MEM_TABLE of " + std::to_string(regions.size()) + " regions", e,
                    e == E2BIG ? "the vhost module allows fewer regions (its max_mem_regions parameter): use larger "
                                 "DMA regions (DmaMemoryOptions::region_size)"
                               : "");
}

void VhostDevice::set_vring_num(unsigned index, unsigned num) {
    vhost_vring_state s{index, num};
    call(VHOST_SET_VRING_NUM, &s, "VHOST_SET_VRING_NUM");
}

void VhostDevice::set_vring_base(unsigned index, unsigned base) {
    vhost_vring_state s{index, base};
    call(VHOST_SET_VRING_BASE, &s, "VHOST_SET_VRING_BASE");
}

unsigned VhostDevice::vring_base(unsigned index) {
    vhost_vring_state s{index, 0};
    call(VHOST_GET_VRING_BASE, &s, "VHOST_GET_VRING_BASE");
    return s.num;
}

void VhostDevice::set_vring_addr(unsigned index, uint64_t desc, uint64_t used, uint64_t avail) {
    vhost_vring_addr a{};
    a.index = index;
    a.desc_user_addr = desc;
    a.used_user_addr = used;
    a.avail_user_addr = avail;
    call(VHOST_SET_VRING_ADDR, &a, "VHOST_SET_VRING_ADDR");
}

void VhostDevice::set_vring_kick(unsigned index, int fd) {
    vhost_vring_file f{index, fd};
    call(VHOST_SET_VRING_KICK, &f, "VHOST_SET_VRING_KICK");
}

void VhostDevice::set_vring_call(unsigned index, int fd) {
    vhost_vring_file f{index, fd};
    call(VHOST_SET_VRING_CALL, &f, "VHOST_SET_VRING_CALL");
}

void VhostDevice::set_vring_err(unsigned index, int fd) {
    vhost_vring_file f{index, fd};
    call(VHOST_SET_VRING_ERR, &f, "VHOST_SET_VRING_ERR");
}

void VhostDevice::write_iotlb(const vhost_iotlb_msg& m, const char* what) {
    vhost_msg_v2 msg{};
    msg.type = VHOST_IOTLB_MSG_V2;
    msg.iotlb = m;
    const ssize_t n = ::write(fd_, &msg, sizeof msg);
    if (n == static_cast<ssize_t>(sizeof msg)) return;
    const int e = n < 0 ? errno : EIO;
    throw_sys_error(
        path_ + ": " + what + " (iova " + std::to_string(m.iova) + ", " + std::to_string(m.size) + " bytes)", e,
        e == EFAULT ? "the kernel reports every refusal of an IOTLB message so: an IOVA outside the "
                      "device's range, an overlap with a mapping already there, or pinned memory over "
                      "RLIMIT_MEMLOCK (ulimit -l)"
                    : "");
}

void VhostDevice::iotlb_update(const iotlb::Entry& e) {
    vhost_iotlb_msg m{};
    m.iova = e.iova.value;
    m.size = e.size;
    m.uaddr = e.uaddr;
    m.perm = VHOST_ACCESS_RW;
    m.type = VHOST_IOTLB_UPDATE;
    write_iotlb(m, "VHOST_IOTLB_UPDATE");
}

void VhostDevice::iotlb_invalidate(Iova iova, uint64_t size) {
    vhost_iotlb_msg m{};
    m.iova = iova.value;
    m.size = size;
    m.type = VHOST_IOTLB_INVALIDATE;
    write_iotlb(m, "VHOST_IOTLB_INVALIDATE");
}

void VhostDevice::iotlb_batch_begin() {
    vhost_iotlb_msg m{};
    m.type = VHOST_IOTLB_BATCH_BEGIN;
    write_iotlb(m, "VHOST_IOTLB_BATCH_BEGIN");
}

void VhostDevice::iotlb_batch_end() {
    vhost_iotlb_msg m{};
    m.type = VHOST_IOTLB_BATCH_END;
    write_iotlb(m, "VHOST_IOTLB_BATCH_END");
}

std::optional<vhost_iotlb_msg> VhostDevice::read_iotlb() {
    vhost_msg_v2 msg{};
    const ssize_t n = ::read(fd_, &msg, sizeof msg);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return std::nullopt;
    if (n < 0) throw_sys_error(path_ + ": reading an IOTLB message", errno);
    if (n != static_cast<ssize_t>(sizeof msg) || msg.type != VHOST_IOTLB_MSG_V2)
        throw Error(path_ + ": the kernel wrote a " + std::to_string(n) + "-byte message of type " +
                    std::to_string(msg.type) + " where a vhost_msg_v2 was expected");
    return msg.iotlb;
}

}  // namespace vireo::vhost_kernel
