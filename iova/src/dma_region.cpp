// DmaRegion: hugepage or 4 KiB memfd memory, shared-mapped, populated, locked.
#include "vireo/iova/dma_region.hpp"

#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <utility>

#include "vireo/base/error.hpp"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

namespace vireo {
namespace {

bool has_cap_ipc_lock() {
    std::ifstream f("/proc/self/status");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("CapEff:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> 14) & 1;  // CAP_IPC_LOCK
    return false;
}

std::string limit_text(rlim_t v) { return v == RLIM_INFINITY ? "unlimited" : std::to_string(v) + " bytes"; }

// What stops the lock and what would allow it: the capability, the soft and
// the hard limit (raising the soft one is enough only up to the hard one).
std::string memlock_hint(size_t want) {
    rlimit rl{};
    ::getrlimit(RLIMIT_MEMLOCK, &rl);
    std::string h = "this process lacks CAP_IPC_LOCK and its locked-memory limit is " + limit_text(rl.rlim_cur) +
                    " (soft) / " + limit_text(rl.rlim_max) + " (hard); ";
    if (has_cap_ipc_lock()) return "CAP_IPC_LOCK is held, so the system is short of lockable memory";
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
        return h +
               "the hard limit is below what vireo needs, so ulimit -l cannot help: run as root, grant "
               "CAP_IPC_LOCK (setcap cap_ipc_lock+ep BINARY), or raise the hard limit (limits.conf memlock, "
               "systemd LimitMEMLOCK=infinity)";
    return h + "raise the soft limit (ulimit -l unlimited, up to the hard limit), or run as root / grant CAP_IPC_LOCK";
}

}  // namespace

const char* to_string(DmaBacking b) noexcept;

namespace {

constexpr size_t k2M = size_t{2} << 20;
constexpr size_t k1G = size_t{1} << 30;

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

struct Mapped {
    int fd = -1;
    uint8_t* va = nullptr;
    size_t len = 0;
    size_t page = 0;
    int err = 0;         // errno of the failing step, 0 on success
    std::string failed;  // which step failed
};

// Sizes the fd and maps it shared and populated; closes fd on failure.
Mapped map_fd(int fd, size_t len, size_t page) {
    Mapped m;
    m.page = page;
    m.len = round_up(len, page);
    if (::ftruncate(fd, static_cast<off_t>(m.len)) != 0) {
        m.err = errno;
        m.failed = "ftruncate";
        ::close(fd);
        return m;
    }
    void* p = ::mmap(nullptr, m.len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
        m.err = errno;
        m.failed = "mmap";
        ::close(fd);
        return m;
    }
    m.fd = fd;
    m.va = static_cast<uint8_t*>(p);
    return m;
}

Mapped memfd_region(const std::string& name, size_t len, unsigned flags, size_t page) {
    int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | flags);
    if (fd < 0) {
        Mapped m;
        m.err = errno;
        m.failed = "memfd_create";
        return m;
    }
    return map_fd(fd, len, page);
}

std::string find_hugetlbfs() {
    std::ifstream mounts("/proc/mounts");
    std::string line;
    while (std::getline(mounts, line)) {
        std::istringstream ls(line);
        std::string dev, dir, type;
        ls >> dev >> dir >> type;
        if (type == "hugetlbfs") return dir;
    }
    return {};
}

Mapped hugetlbfs_region(std::string dir, const std::string& name, size_t len) {
    if (dir.empty()) dir = find_hugetlbfs();
    if (dir.empty())
        throw Error(
            "no hugetlbfs is mounted: mount one (mkdir -p /dev/hugepages && mount -t hugetlbfs "
            "nodev /dev/hugepages) or use the memfd backing");
    struct statfs sfs {};
    if (::statfs(dir.c_str(), &sfs) != 0) throw_sys_error("cannot statfs " + dir, errno);
    if (static_cast<unsigned long>(sfs.f_type) != HUGETLBFS_MAGIC)
        throw Error(dir + " is not a hugetlbfs mount: name a hugetlbfs directory");
    static std::atomic<unsigned> counter{0};
    std::string path = dir + "/" + name + "." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
    int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) throw_sys_error("cannot create " + path, errno, "check the mount's permissions");
    ::unlink(path.c_str());  // the fd keeps it; nothing is left behind on a crash
    return map_fd(fd, len, static_cast<size_t>(sfs.f_bsize));
}

[[noreturn]] void throw_mapping(const Mapped& m, DmaBacking b, size_t len) {
    std::string hint;
    if (m.err == ENOMEM || m.err == ENOSPC || m.err == EINVAL) {
        if (b == DmaBacking::MemfdHuge1G)
            hint =
                "not enough free 1 GiB pages: reserve them (echo N > "
                "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages) or use 2 MiB pages";
        else if (b != DmaBacking::Memfd4K)
            hint =
                "not enough free 2 MiB hugepages: reserve more (echo N > /proc/sys/vm/nr_hugepages) or use "
                "the Auto backing, which falls back to 4 KiB pages";
        else
            hint = "the machine is out of memory";
    }
    throw_sys_error(m.failed + " of " + std::to_string(len) + " bytes of " + to_string(b) + " memory failed", m.err,
                    hint);
}

}  // namespace

const char* to_string(DmaBacking b) noexcept {
    switch (b) {
    case DmaBacking::Auto: return "auto";
    case DmaBacking::MemfdHuge2M: return "memfd-2M";
    case DmaBacking::MemfdHuge1G: return "memfd-1G";
    case DmaBacking::HugetlbfsFile: return "hugetlbfs";
    case DmaBacking::Memfd4K: return "memfd-4K";
    }
    return "?";
}

DmaRegion DmaRegion::create(const DmaRegionOptions& opts) {
    if (opts.length == 0) throw Error("DmaRegion length is 0: ask for at least one page");
    const size_t phys = static_cast<size_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    if (opts.length > phys)
        throw Error("DmaRegion of " + std::to_string(opts.length) + " bytes is larger than this machine's " +
                    std::to_string(phys) + " bytes of memory: ask for less");
    const size_t small = static_cast<size_t>(::sysconf(_SC_PAGESIZE));

    Mapped m;
    DmaBacking used = opts.backing;
    switch (opts.backing) {
    case DmaBacking::Auto:
        m = memfd_region(opts.name, opts.length, MFD_HUGETLB | MFD_HUGE_2MB, k2M);
        used = DmaBacking::MemfdHuge2M;
        if (m.va == nullptr) {  // no free hugepage (or no hugetlb support): 4 KiB pages
            m = memfd_region(opts.name, opts.length, 0, small);
            used = DmaBacking::Memfd4K;
        }
        break;
    case DmaBacking::MemfdHuge2M: m = memfd_region(opts.name, opts.length, MFD_HUGETLB | MFD_HUGE_2MB, k2M); break;
    case DmaBacking::MemfdHuge1G: m = memfd_region(opts.name, opts.length, MFD_HUGETLB | MFD_HUGE_1GB, k1G); break;
    case DmaBacking::HugetlbfsFile: m = hugetlbfs_region(opts.hugetlbfs_dir, opts.name, opts.length); break;
    case DmaBacking::Memfd4K: m = memfd_region(opts.name, opts.length, 0, small); break;
    }
    if (m.va == nullptr) throw_mapping(m, used, opts.length);

    DmaRegion r;
    r.fd_ = m.fd;
    r.va_ = m.va;
    r.len_ = m.len;
    r.page_size_ = m.page;
    r.backing_ = used;
    // The raw system call: sanitizer runtimes intercept mlock() and ignore it,
    // and a region must be locked in every build.
    if (opts.lock && ::syscall(SYS_mlock, r.va_, r.len_) != 0) {
        int e = errno;
        throw_sys_error("cannot lock " + std::to_string(r.len_) + " bytes of DMA memory", e, memlock_hint(r.len_));
    }  // r's destructor unmaps and closes on the throw
    return r;
}

DmaRegion::DmaRegion(DmaRegion&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      va_(std::exchange(o.va_, nullptr)),
      len_(std::exchange(o.len_, 0)),
      page_size_(std::exchange(o.page_size_, 0)),
      backing_(o.backing_) {}

DmaRegion& DmaRegion::operator=(DmaRegion&& o) noexcept {
    if (this != &o) {
        release();
        fd_ = std::exchange(o.fd_, -1);
        va_ = std::exchange(o.va_, nullptr);
        len_ = std::exchange(o.len_, 0);
        page_size_ = std::exchange(o.page_size_, 0);
        backing_ = o.backing_;
    }
    return *this;
}

DmaRegion::~DmaRegion() { release(); }

void DmaRegion::release() noexcept {
    if (va_ != nullptr) ::munmap(va_, len_);
    if (fd_ >= 0) ::close(fd_);
    va_ = nullptr;
    fd_ = -1;
    len_ = 0;
}

}  // namespace vireo
