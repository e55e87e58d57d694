// VfioContainer: the IOMMU context, its groups and its DMA mappings
// (Documentation/driver-api/vfio.rst, "VFIO Usage Example").
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/iova/dma_memory.hpp"
#include "vireo/iova/vfio.hpp"

namespace vireo {
namespace {

constexpr const char* kBindHint =
    "bind it to vfio-pci: modprobe vfio-pci; echo vfio-pci > /sys/bus/pci/devices/BDF/driver_override; "
    "echo BDF > /sys/bus/pci/devices/BDF/driver/unbind; echo BDF > /sys/bus/pci/drivers_probe "
    "(or dpdk-devbind.py -b vfio-pci BDF)";

std::string bind_hint(const std::string& bdf) {
    std::string h = kBindHint;
    for (size_t p; (p = h.find("BDF")) != std::string::npos;) h.replace(p, 3, bdf);
    return h;
}

}  // namespace

uint64_t VfioIommuInfo::max_iova() const noexcept {
    uint64_t m = 0;
    for (const auto& r : ranges) m = std::max(m, r.last);
    return ranges.empty() ? ~uint64_t{0} : m;
}

VfioGroupOf vfio_group_of(const std::string& bdf, const std::string& sysfs, const std::string& bus) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path link = fs::read_symlink(fs::path(sysfs) / "bus" / bus / "devices" / bdf / "iommu_group", ec);
    VfioGroupOf g;
    if (ec) return g;
    try {
        g.number = std::stoi(link.filename().string());
    } catch (...) {
        return g;
    }
    std::ifstream name(fs::path(sysfs) / "kernel/iommu_groups" / link.filename() / "name");
    std::string n;
    g.noiommu = name && std::getline(name, n) && n == "vfio-noiommu";
    return g;
}

VfioContainer::VfioContainer() {
    fd_ = ::open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (fd_ < 0)
        throw_sys_error("cannot open /dev/vfio/vfio", errno,
                        "load VFIO (modprobe vfio-pci) and run as root, or use a vhost-user device");
    const int version = ::ioctl(fd_, VFIO_GET_API_VERSION);
    if (version != VFIO_API_VERSION) {
        ::close(fd_);
        throw Error("VFIO API version " + std::to_string(version) + " is not the " + std::to_string(VFIO_API_VERSION) +
                    " vireo was built for");
    }
}

VfioContainer::~VfioContainer() {
    for (const auto& a : attached_)
        if (a.listener) a.mem->remove_region_listener(*a.listener);
    for (auto it = maps_.rbegin(); it != maps_.rend(); ++it) {
        vfio_iommu_type1_dma_unmap u{};
        u.argsz = sizeof u;
        u.iova = it->iova.value;
        u.size = it->len;
        ::ioctl(fd_, VFIO_IOMMU_UNMAP_DMA, &u);
    }
    for (const auto& g : groups_) {
        ::ioctl(g.fd, VFIO_GROUP_UNSET_CONTAINER);
        ::close(g.fd);
    }
    if (fd_ >= 0) ::close(fd_);
}

int VfioContainer::open_device_fd(const VfioDeviceName& d) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const std::string dir = "/sys/bus/" + d.bus + "/devices/" + d.name;
    const std::string what = (d.bus == "pci" ? "PCI" : d.bus) + " device " + d.name;
    const std::string hint = d.bind_hint.empty() ? bind_hint(d.name) : d.bind_hint;
    if (!fs::exists(dir, ec))
        throw Error(what + " does not exist (" + dir + " is missing; vireo-fwd --list shows the devices it drives)");
    const std::string driver = fs::read_symlink(dir + "/driver", ec).filename().string();
    if (driver != d.driver)
        throw Error(what + " is bound to " + (driver.empty() ? "no driver" : driver) + ", not " + d.driver + ": " +
                    hint);
    VfioGroupOf g = vfio_group_of(d.name, "/sys", d.bus);
    if (g.number < 0) throw Error(what + " has no IOMMU group: " + hint);
    join_group(g.number, g.noiommu);
    int gfd = -1;
    for (const auto& x : groups_)
        if (x.number == g.number) gfd = x.fd;
    const int dfd = ::ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, d.name.c_str());
    if (dfd < 0)
        throw_sys_error("VFIO_GROUP_GET_DEVICE_FD(" + d.name + ")", errno,
                        "is another process (or another port of this one) using the device?");
    return dfd;
}

void VfioContainer::join_group(int number, bool noiommu) {
    for (const auto& g : groups_)
        if (g.number == number) return;
    if (!groups_.empty() && noiommu != (iommu_ == IommuKind::VfioNoIommu))
        throw Error("VFIO group " + std::to_string(number) +
                    (noiommu ? " is a no-IOMMU group but" : " is behind an IOMMU but") +
                    " the devices already open are not: one process cannot drive both kinds");
    const std::string path = (noiommu ? "/dev/vfio/noiommu-" : "/dev/vfio/") + std::to_string(number);
    const int gfd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (gfd < 0)
        throw_sys_error("cannot open VFIO group " + path, errno,
                        errno == EBUSY ? "another process holds the group" : "run as root");
    vfio_group_status st{};
    st.argsz = sizeof st;
    if (::ioctl(gfd, VFIO_GROUP_GET_STATUS, &st) < 0) {
        const int e = errno;
        ::close(gfd);
        throw_sys_error("VFIO_GROUP_GET_STATUS(" + path + ")", e);
    }
    if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        ::close(gfd);
        throw Error("VFIO group " + std::to_string(number) +
                    " is not viable: every device in /sys/kernel/iommu_groups/" + std::to_string(number) +
                    "/devices must be bound to its VFIO driver (vfio-pci, vfio-platform) or to no driver");
    }
    if (::ioctl(gfd, VFIO_GROUP_SET_CONTAINER, &fd_) < 0) {
        const int e = errno;
        ::close(gfd);
        throw_sys_error("VFIO_GROUP_SET_CONTAINER(" + path + ")", e);
    }
    groups_.push_back({number, gfd});
    if (groups_.size() == 1) set_iommu(noiommu);
}

void VfioContainer::set_iommu(bool noiommu) {
    const int type = noiommu ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU;
    if (::ioctl(fd_, VFIO_CHECK_EXTENSION, type) != 1)
        throw Error(noiommu ? "the kernel's VFIO lacks no-IOMMU support (CONFIG_VFIO_NOIOMMU and "
                              "enable_unsafe_noiommu_mode=1)"
                            : "the kernel's VFIO lacks the type1 v2 IOMMU (modprobe vfio_iommu_type1)");
    if (::ioctl(fd_, VFIO_SET_IOMMU, type) < 0) throw_sys_error("VFIO_SET_IOMMU", errno);
    iommu_ = noiommu ? IommuKind::VfioNoIommu : IommuKind::VfioType1;
    if (!noiommu) read_iommu_info();
}

// VFIO_IOMMU_GET_INFO with its capability chain: first ask for the size, then read.
void VfioContainer::read_iommu_info() {
    vfio_iommu_type1_info head{};
    head.argsz = sizeof head;
    if (::ioctl(fd_, VFIO_IOMMU_GET_INFO, &head) < 0) throw_sys_error("VFIO_IOMMU_GET_INFO", errno);
    std::vector<uint64_t> buf((std::max<size_t>(head.argsz, sizeof head) + 7) / 8);
    auto* info = reinterpret_cast<vfio_iommu_type1_info*>(buf.data());
    info->argsz = static_cast<uint32_t>(buf.size() * 8);
    if (::ioctl(fd_, VFIO_IOMMU_GET_INFO, info) < 0) throw_sys_error("VFIO_IOMMU_GET_INFO", errno);
    if (info->flags & VFIO_IOMMU_INFO_PGSIZES) info_.page_sizes = info->iova_pgsizes;
    if (!(info->flags & VFIO_IOMMU_INFO_CAPS) || info->cap_offset == 0) return;
    const auto* base = reinterpret_cast<const uint8_t*>(buf.data());
    const size_t total = buf.size() * 8;
    for (uint32_t off = info->cap_offset; off != 0 && off + sizeof(vfio_info_cap_header) <= total;) {
        const auto* h = reinterpret_cast<const vfio_info_cap_header*>(base + off);
        if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
            const auto* c = reinterpret_cast<const vfio_iommu_type1_info_cap_iova_range*>(h);
            for (uint32_t i = 0; i < c->nr_iovas && off + sizeof *c + (i + 1) * sizeof(vfio_iova_range) <= total; i++)
                info_.ranges.push_back({c->iova_ranges[i].start, c->iova_ranges[i].end});
        } else if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
            info_.dma_avail = reinterpret_cast<const vfio_iommu_type1_info_dma_avail*>(h)->avail;
        }
        if (h->next <= off) break;  // the chain only moves forward
        off = h->next;
    }
}

void VfioContainer::check_fits(Iova at, const void* va, size_t len) const {
    const uint64_t iova = at.value;
    const uint64_t pg = info_.min_page_size();
    if (pg != 0 && ((iova | reinterpret_cast<uintptr_t>(va) | len) & (pg - 1)) != 0)
        throw Error("DMA map of " + std::to_string(len) + " bytes at IOVA " + hex(iova) +
                    " is not aligned to the IOMMU's smallest page (" + std::to_string(pg) + " bytes)");
    if (info_.ranges.empty()) return;
    const uint64_t last = iova + len - 1;
    for (const auto& r : info_.ranges)
        if (iova >= r.start && last <= r.last) return;
    const uint64_t top = info_.max_iova();
    const int bits = 64 - __builtin_clzll(top | 1);
    throw Error("IOVA range [" + hex(iova) + ", " + hex(last) + "] is outside what the IOMMU can map (usable up to " +
                hex(top) + ", a " + std::to_string(bits) + "-bit address width): " +
                (iova == reinterpret_cast<uintptr_t>(va)
                     ? "IOVA-as-VA needs an IOMMU as wide as the process's addresses "
                       "(QEMU: -device intel-iommu,aw-bits=48), or run with --iova-mode=pa"
                     : "this physical memory lies beyond the IOMMU's reach"));
}

void VfioContainer::map_dma(Iova iova, const void* va, size_t len) {
    if (iommu_ != IommuKind::VfioType1) throw Error("VFIO DMA map: the container has no type1 IOMMU");
    check_fits(iova, va, len);
    vfio_iommu_type1_dma_map m{};
    m.argsz = sizeof m;
    m.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    m.vaddr = reinterpret_cast<uintptr_t>(va);
    m.iova = iova.value;
    m.size = len;
    if (::ioctl(fd_, VFIO_IOMMU_MAP_DMA, &m) < 0) {
        const int e = errno;
        throw_sys_error("VFIO_IOMMU_MAP_DMA(iova " + hex(iova.value) + ", " + std::to_string(len) + " bytes)", e,
                        e == ENOSPC   ? "too many mappings (vfio_iommu_type1 dma_entry_limit): use hugepages"
                        : e == EEXIST ? "the IOVA range is already mapped: two regions translate to one IOVA"
                        : e == ENOMEM ? "raise RLIMIT_MEMLOCK (ulimit -l) or run as root"
                                      : "");
    }
    maps_.push_back({iova, len});
}

void VfioContainer::unmap_dma(Iova iova, size_t len) {
    vfio_iommu_type1_dma_unmap u{};
    u.argsz = sizeof u;
    u.iova = iova.value;
    u.size = len;
    if (::ioctl(fd_, VFIO_IOMMU_UNMAP_DMA, &u) < 0)
        throw_sys_error("VFIO_IOMMU_UNMAP_DMA(iova " + hex(iova.value) + ")", errno);
    std::erase_if(maps_, [&](const Mapping& m) { return m.iova == iova && m.len == len; });
}

void VfioContainer::attach(DmaMemory& mem, const DmaPlan& plan) {
    for (const auto& a : attached_)
        if (a.mem == &mem) return;
    if (plan.mode != mem.mode())
        throw Error("the DMA plan is for IOVA mode " + std::string(to_string(plan.mode)) + " but the memory is in " +
                    std::string(to_string(mem.mode())) + ": give the device memory made for its plan");
    if (mem.mode() == IovaMode::PA && mem.pa_source() == PaSource::Linear)
        throw Error(
            "DMA memory in PA mode with a published (linear) layout cannot be used with VFIO: the "
            "device needs real physical addresses; create the DmaMemory with pa_source = "
            "PaSource::Pagemap");
    std::optional<size_t> id;
    if (plan.mode == IovaMode::VA || plan.map_identity_pa)  // else nothing translates: nothing to map
        id = mem.add_region_listener([this, &mem](size_t i) { map_region(mem, i); });
    attached_.push_back({&mem, id});
}

void VfioContainer::detach(DmaMemory& mem) {
    for (auto it = attached_.begin(); it != attached_.end(); ++it)
        if (it->mem == &mem) {
            if (it->listener) mem.remove_region_listener(*it->listener);
            for (size_t i = 0; i < mem.region_count(); i++) {
                const auto lo = reinterpret_cast<uintptr_t>(mem.region(i).va());
                const auto hi = lo + mem.region(i).length();
                for (const auto& m : std::vector<Mapping>(maps_)) {
                    const auto* va = mem.map().va(m.iova);
                    const auto v = reinterpret_cast<uintptr_t>(va);
                    if (va != nullptr && v >= lo && v < hi) unmap_dma(m.iova, m.len);
                }
            }
            attached_.erase(it);
            return;
        }
}

// Maps one region run by IOVA-contiguous run: one run in VA mode, one per
// physically contiguous stretch in PA mode (IOVA = PA 1:1, so that a device
// which honours the IOMMU sees the same addresses as one that bypasses it).
void VfioContainer::map_region(const DmaMemory& mem, size_t index) {
    const IovaMap& map = mem.map();
    const DmaRegion& r = mem.region(index);
    const uint8_t* p = r.va();
    const uint8_t* end = p + r.length();
    while (p < end) {
        const uint8_t* run = std::min(map.run_end(p), end);
        map_dma(map.iova(p), p, static_cast<size_t>(run - p));
        p = run;
    }
}

std::shared_ptr<VfioContainer> vfio_container() {
    static std::mutex lock;
    static std::weak_ptr<VfioContainer> current;
    std::lock_guard g(lock);
    if (auto c = current.lock()) return c;
    auto c = std::make_shared<VfioContainer>();
    current = c;
    return c;
}

}  // namespace vireo
