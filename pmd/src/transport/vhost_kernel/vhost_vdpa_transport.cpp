#include "transport/vhost_kernel/vhost_vdpa_transport.hpp"

#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <span>

#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/iova/dma_memory.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

using namespace virtio::feature;
using virtio::has;

namespace {

constexpr uint32_t kVirtioIdNet = 1;  // 5: device ID 1, network card

constexpr uint64_t backend_bit(unsigned b) { return uint64_t{1} << b; }

// virtio_net_config (5.1.4), the bytes vireo reads, little-endian.
struct NetConfigSpace {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
    uint16_t mtu;
    uint32_t speed;
    uint8_t duplex;
    uint8_t rss_max_key_size;
    uint16_t rss_max_indirection_table_length;
    uint32_t supported_hash_types;
};
static_assert(sizeof(NetConfigSpace) == 24);

}  // namespace

// vhost-vdpa pins every page it maps and counts it against RLIMIT_MEMLOCK,
// root included (drivers/vhost/vdpa.c: vhost_vdpa_pa_map); over the limit it
// refuses the update with an EFAULT that says nothing. Say it first.
void check_memlock(std::span<const iotlb::Entry> unmapped, const std::string& device) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return;
    uint64_t need = 0;
    for (const iotlb::Entry& e : unmapped) need += e.size;
    std::ifstream status("/proc/self/status");
    uint64_t pinned = 0;
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmPin:", 0) == 0) pinned = std::stoull(line.substr(6)) * 1024;
    if (pinned + need > rl.rlim_cur)
        throw Error(device + ": vhost-vdpa pins the " + std::to_string(need >> 10) +
                    " KiB vireo maps for the device (" + std::to_string(pinned >> 10) +
                    " KiB pinned already) against RLIMIT_MEMLOCK, which is " + std::to_string(rl.rlim_cur >> 10) +
                    " KiB: raise it (ulimit -l unlimited; systemd: LimitMEMLOCK=infinity)");
}

std::string vdpa_range_error(const vhost_vdpa_iova_range& range, Iova iova, uint64_t size, const std::string& device) {
    if (size != 0 && iova.value >= range.first && iova.value <= range.last && size - 1 <= range.last - iova.value)
        return "";
    return device + ": IOVA " + hex(iova.value) + " + " + std::to_string(size) + " bytes lies outside the IOVA range " +
           hex(range.first) + ".." + hex(range.last) +
           " the device accepts (VHOST_VDPA_GET_IOVA_RANGE): use iova=pa (vireo then lays its memory out inside the "
           "range) or a smaller DMA memory";
}

VhostVdpaTransport::VhostVdpaTransport(const std::string& path) : dev_(path, "vhost_vdpa") {
    dev_.set_owner();
    uint32_t id = 0;
    dev_.call(VHOST_VDPA_GET_DEVICE_ID, &id, "VHOST_VDPA_GET_DEVICE_ID");
    if (id != kVirtioIdNet)
        throw Error(describe() + " is a virtio device of type " + std::to_string(id) +
                    ", not a network device (type 1): pick the vhost-vdpa node of a net device (`vdpa dev show`)");
    const uint64_t offered = dev_.backend_features();
    if (!(offered & backend_bit(VHOST_BACKEND_F_IOTLB_MSG_V2)))
        throw Error(describe() + ": the kernel does not offer VHOST_BACKEND_F_IOTLB_MSG_V2 (Linux 5.7 and later do)");
    backend_features_ =
        offered & (backend_bit(VHOST_BACKEND_F_IOTLB_MSG_V2) | backend_bit(VHOST_BACKEND_F_IOTLB_BATCH));
    dev_.set_backend_features(backend_features_);
    device_features_ = dev_.features();
    dev_.call(VHOST_VDPA_GET_IOVA_RANGE, &range_, "VHOST_VDPA_GET_IOVA_RANGE");
    dev_.call(VHOST_VDPA_GET_VRING_NUM, &max_ring_, "VHOST_VDPA_GET_VRING_NUM");
    if (::ioctl(dev_.fd(), VHOST_VDPA_GET_CONFIG_SIZE, &config_size_) != 0)
        config_size_ = sizeof(NetConfigSpace);  // before Linux 5.17: read what the spec defines
    config_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (config_fd_ < 0) throw_sys_error("eventfd", errno);
    write_status(0);
}

VhostVdpaTransport::~VhostVdpaTransport() {
    try {
        reset();
    } catch (const Error&) {
    }
    if (listening_ && mem_ != nullptr) mem_->remove_region_listener(region_listener_);
    if (config_fd_ >= 0) ::close(config_fd_);
}

void VhostVdpaTransport::write_status(uint8_t s) { dev_.call(VHOST_VDPA_SET_STATUS, &s, "VHOST_VDPA_SET_STATUS"); }

uint8_t VhostVdpaTransport::status() {
    uint8_t s = 0;
    dev_.call(VHOST_VDPA_GET_STATUS, &s, "VHOST_VDPA_GET_STATUS");
    return s;
}

void VhostVdpaTransport::set_features(const virtio::Features& features) {
    if (const virtio::Features unknown = features & ~device_features_; !unknown.empty())
        throw Error(describe() + " does not offer feature bits " + hex(unknown) +
                    ": switch them off in the device string");
    dev_.set_features(features);
    features_ = features;
}

void VhostVdpaTransport::set_status(uint8_t s) {
    if ((s & virtio::status::kDriverOk) && !(status() & virtio::status::kDriverOk)) start_rings();
    write_status(s);
}

// The device lets go of the rings (virtio 2.1: reset); its mappings go too: a
// parent driver may fall back to its own default map on reset (vdpa_sim: an
// identity map), so they are written again, whole, at the next DRIVER_OK.
void VhostVdpaTransport::reset() {
    write_status(0);
    unmap_memory();
}

void VhostVdpaTransport::setup_queue(const QueueAreas& q) {
    if (q.index >= queues_.size()) queues_.resize(q.index + 1, QueueAreas{});
    queues_[q.index] = q;
    fds_.ensure(q.index);
}

NetConfig VhostVdpaTransport::net_config() {
    NetConfigSpace raw{};
    const uint32_t len = std::min<uint32_t>(config_size_, sizeof raw);
    std::vector<std::byte> buf(sizeof(vhost_vdpa_config) + len);
    auto* c = reinterpret_cast<vhost_vdpa_config*>(buf.data());
    c->off = 0;
    c->len = len;
    dev_.call(VHOST_VDPA_GET_CONFIG, c, "VHOST_VDPA_GET_CONFIG");
    std::memcpy(&raw, c->buf, len);
    NetConfig n{};
    std::memcpy(n.mac, raw.mac, 6);
    n.status =
        has(!features_.empty() ? features_ : device_features_, kNetStatus) ? raw.status : virtio::kNetStatusLinkUp;
    n.max_virtqueue_pairs = has(device_features_, kNetMq) ? raw.max_virtqueue_pairs : 1;
    n.mtu = has(device_features_, kNetMtu) ? raw.mtu : 1500;
    if (has(device_features_, kNetSpeedDuplex) && len >= 17) {
        n.speed_mbps = raw.speed;
        n.duplex = raw.duplex;
    }
    if ((has(device_features_, kNetRss) || has(device_features_, kNetHashReport)) && len >= sizeof raw) {
        n.rss_max_key_size = raw.rss_max_key_size;
        n.rss_max_indirection_table_length = raw.rss_max_indirection_table_length;
        n.supported_hash_types = raw.supported_hash_types;
    }
    n.control_queue_processed = true;  // the device itself
    return n;
}

// The device translates every address through the IOTLB vireo fills
// (vhost-vdpa has no memory table); the range is the device's.
DmaTraits VhostVdpaTransport::dma_traits() const {
    DmaTraits t;
    t.iommu = IommuKind::VdpaIotlb;
    t.iommu_min_iova = range_.first;
    t.iommu_max_iova = range_.last;
    t.pa_source = PaSource::Linear;
    t.offer_bit33_hint = "a vDPA device's parent driver offers it; vireo maps every address through vhost-vdpa's IOTLB";
    return t;
}

void VhostVdpaTransport::attach_memory(DmaMemory& mem, const DmaPlan&) {
    if (mem_ == &mem) return;
    if (mem_ != nullptr) throw Error(describe() + ": already attached to another DMA memory");
    mem_ = &mem;
    // Regions added while the device runs are mapped before any chunk of them is handed out.
    region_listener_ = mem.add_region_listener([this](size_t) {
        if (status() & virtio::status::kDriverOk) map_memory();
    });
    listening_ = true;
}

std::optional<DeviceIotlbCounters> VhostVdpaTransport::iotlb_counters() const {
    return DeviceIotlbCounters{updates_, 0, 0, 0};  // vhost-vdpa reports no misses: the device faults instead
}

// Every region not yet mapped, in one batch when the kernel batches (one
// set_map of the parent driver instead of one per region).
void VhostVdpaTransport::map_memory() {
    if (mem_ == nullptr) throw Error(describe() + ": no DMA memory attached (NetPort attaches it)");
    mapped_.resize(mem_->region_count(), false);
    std::vector<iotlb::Entry> unmapped;
    for (size_t i = 0; i < mem_->region_count(); i++) {
        if (mapped_[i]) continue;
        const iotlb::Entry e = iotlb::entry_of_region(*mem_, i);
        if (std::string err = vdpa_range_error(range_, e.iova, e.size, describe()); !err.empty()) throw Error(err);
        unmapped.push_back(e);
    }
    if (unmapped.empty()) return;
    check_memlock(unmapped, describe());
    const bool batch = backend_features_ & backend_bit(VHOST_BACKEND_F_IOTLB_BATCH);
    if (batch) dev_.iotlb_batch_begin();
    for (const iotlb::Entry& e : unmapped) {
        dev_.iotlb_update(e);
        updates_++;
    }
    if (batch) dev_.iotlb_batch_end();
    for (size_t i = 0; i < mapped_.size(); i++) mapped_[i] = true;
}

void VhostVdpaTransport::unmap_memory() {
    if (mem_ == nullptr) return;
    for (size_t i = 0; i < mapped_.size(); i++)
        if (mapped_[i]) {
            const iotlb::Entry e = iotlb::entry_of_region(*mem_, i);
            dev_.iotlb_invalidate(e.iova, e.size);
            mapped_[i] = false;
        }
}

// Before DRIVER_OK: the device starts its rings when it sees it (virtio 3.1.1 step 8).
void VhostVdpaTransport::start_rings() {
    map_memory();
    const bool packed = has(features_, kRingPacked);
    for (const QueueAreas& q : queues_) {
        if (q.size == 0) continue;
        dev_.set_vring_num(q.index, q.size);
        // Packed (drivers/vhost/vhost.c): the low half is the driver's next index with its
        // wrap counter in bit 15, the high half the device's; both wrap counters start at 1.
        dev_.set_vring_base(q.index, packed ? virtio::kPackedWrapBit | (uint32_t{virtio::kPackedWrapBit} << 16) : 0u);
        dev_.set_vring_addr(q.index, q.desc_iova.value, q.device_iova.value, q.driver_iova.value);  // IOVAs, always
        dev_.set_vring_call(q.index, fds_.call(q.index));
        dev_.set_vring_kick(q.index, fds_.kick(q.index));
        vhost_vring_state on{q.index, 1};
        dev_.call(VHOST_VDPA_SET_VRING_ENABLE, &on, "VHOST_VDPA_SET_VRING_ENABLE");
    }
    int fd = config_fd_;
    dev_.call(VHOST_VDPA_SET_CONFIG_CALL, &fd, "VHOST_VDPA_SET_CONFIG_CALL");
}

bool VhostVdpaTransport::poll_config_change() {
    uint64_t n = 0;
    return ::read(config_fd_, &n, sizeof n) == static_cast<ssize_t>(sizeof n) && n != 0;
}

}  // namespace vireo
