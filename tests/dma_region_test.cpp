// DmaRegion and the pagemap translation, against an independent oracle.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <cstring>
#include <fstream>

#include "support/error_of.hpp"
#include "support/pagemap_oracle.hpp"
#include "vireo/base/error.hpp"
#include "vireo/iova/dma_region.hpp"
#include "vireo/iova/iova_map.hpp"
#include "vireo/iova/pagemap.hpp"

namespace vireo {
namespace {

using test::error_of;
using test::oracle_phys;
using test::running_as_root;

long free_hugepages_2m() {
    std::ifstream f("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
    long n = 0;
    f >> n;
    return n;
}

TEST(DmaRegion, Memfd4KIsPopulatedLockedAndShared) {
    DmaRegion r = DmaRegion::create({.length = 10000, .backing = DmaBacking::Memfd4K});
    ASSERT_TRUE(r.valid());
    EXPECT_EQ(r.page_size(), 4096u);
    EXPECT_EQ(r.length(), 12288u);  // rounded to pages
    EXPECT_GE(r.fd(), 0);
    std::memset(r.va(), 0x5a, r.length());
    // The fd mapped a second time (as a vhost-user back end would) shows the same bytes.
    void* again = ::mmap(nullptr, r.length(), PROT_READ | PROT_WRITE, MAP_SHARED, r.fd(), 0);
    ASSERT_NE(again, MAP_FAILED);
    EXPECT_EQ(std::memcmp(again, r.va(), r.length()), 0);
    static_cast<uint8_t*>(again)[5] = 0x11;
    EXPECT_EQ(r.va()[5], 0x11);
    ::munmap(again, r.length());
    // Locked: VmLck in /proc/self/status counts it.
    std::ifstream st("/proc/self/status");
    std::string line;
    long locked_kb = -1;
    while (std::getline(st, line))
        if (line.rfind("VmLck:", 0) == 0) locked_kb = std::stol(line.substr(6));
    EXPECT_GE(locked_kb, 12);
}

TEST(DmaRegion, ClosedExactlyOnceAndMovable) {
    int fd;
    {
        DmaRegion a = DmaRegion::create({.length = 4096, .backing = DmaBacking::Memfd4K});
        fd = a.fd();
        DmaRegion b = std::move(a);
        EXPECT_FALSE(a.valid());
        EXPECT_EQ(a.fd(), -1);
        EXPECT_EQ(b.fd(), fd);
        DmaRegion c;
        c = std::move(b);
        EXPECT_EQ(c.fd(), fd);
        EXPECT_EQ(::fcntl(fd, F_GETFD), FD_CLOEXEC);
    }
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
    EXPECT_EQ(errno, EBADF);
}

TEST(DmaRegion, Hugepage2MOrClearError) {
    if (free_hugepages_2m() >= 2) {
        DmaRegion r = DmaRegion::create({.length = 3 << 20, .backing = DmaBacking::MemfdHuge2M});
        EXPECT_EQ(r.page_size(), 2u << 20);
        EXPECT_EQ(r.length(), 4u << 20);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(r.va()) % (2 << 20), 0u);
    } else {
        std::string e = error_of([] { DmaRegion::create({.length = 64 << 20, .backing = DmaBacking::MemfdHuge2M}); });
        EXPECT_NE(e.find("nr_hugepages"), std::string::npos) << e;
    }
}

long free_hugepages_1g() {
    std::ifstream f("/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages");
    long n = 0;
    f >> n;
    return n;
}

TEST(DmaRegion, Hugepage1GOrClearError) {
    if (free_hugepages_1g() >= 1) {
        DmaRegion r = DmaRegion::create({.length = 1, .backing = DmaBacking::MemfdHuge1G});
        EXPECT_EQ(r.page_size(), size_t{1} << 30);
    } else {
        std::string e = error_of([] { DmaRegion::create({.length = 1, .backing = DmaBacking::MemfdHuge1G}); });
        EXPECT_NE(e.find("hugepages-1048576kB"), std::string::npos) << e;
    }
}

TEST(DmaRegion, AutoFallsBackTo4KWhenNoHugepageIsFree) {
    // Ask for more than the free hugepages: Auto must still succeed.
    const size_t len = static_cast<size_t>(free_hugepages_2m() + 4) * (2 << 20);
    DmaRegion r = DmaRegion::create({.length = len, .backing = DmaBacking::Auto, .lock = false});
    EXPECT_EQ(r.backing(), DmaBacking::Memfd4K);
    EXPECT_EQ(r.page_size(), static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
}

TEST(DmaRegion, HugetlbfsFileWhenMounted) {
    std::ifstream m("/proc/mounts");
    std::string dev, dir, type, rest;
    bool mounted = false;
    while (m >> dev >> dir >> type && std::getline(m, rest)) mounted |= type == "hugetlbfs";
    if (mounted && free_hugepages_2m() >= 1) {
        DmaRegion r = DmaRegion::create({.length = 1, .backing = DmaBacking::HugetlbfsFile});
        EXPECT_GE(r.page_size(), 2u << 20);
        r.va()[0] = 1;
    } else {
        std::string e = error_of([] { DmaRegion::create({.length = 1, .backing = DmaBacking::HugetlbfsFile}); });
        EXPECT_NE(e.find("hugetlbfs"), std::string::npos) << e;
    }
}

TEST(DmaRegion, BadInputGivesOneClearError) {
    EXPECT_NE(error_of([] { DmaRegion::create({.length = 0}); }).find("length is 0"), std::string::npos);
    EXPECT_NE(error_of([] { DmaRegion::create({.length = size_t{1} << 50}); }).find("larger than this machine"),
              std::string::npos);
    EXPECT_NE(error_of([] {
                  DmaRegion::create({.length = 4096, .backing = DmaBacking::HugetlbfsFile, .hugetlbfs_dir = "/tmp"});
              }).find("not a hugetlbfs mount"),
              std::string::npos);
}

// Runs f in a child that has dropped root (uid nobody, no capabilities) and a
// tiny RLIMIT_MEMLOCK; the child exits 0 when f returns true.
template <class F>
void in_unprivileged_child(F f) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        struct rlimit rl = {64 * 1024, 64 * 1024};
        ::setrlimit(RLIMIT_MEMLOCK, &rl);
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
        ::prctl(PR_SET_DUMPABLE, 1);  // keep /proc/self readable after the uid change
        ::_exit(f() ? 0 : 1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(DmaRegion, NoPermissionToLockIsAClearError) {
    in_unprivileged_child([] {
        std::string e = error_of([] { DmaRegion::create({.length = 8 << 20, .backing = DmaBacking::Memfd4K}); });
        return e.find("ulimit -l") != std::string::npos;
    });
}

TEST(Pagemap, NoCapSysAdminIsAClearError) {
    in_unprivileged_child([] {
        DmaRegion r = DmaRegion::create({.length = 4096, .backing = DmaBacking::Memfd4K, .lock = false});
        std::string e = error_of([&] { physical_pages(r.va(), r.length(), r.page_size()); });
        return e.find("CAP_SYS_ADMIN") != std::string::npos && !physical_addresses_readable();
    });
}

// PA translation of every page, and of offsets inside pages, equals what the
// independent oracle reads; for 4 KiB memfd and (when free) 2 MiB hugepages.
void check_pa_against_oracle(DmaBacking backing, size_t len) {
    DmaRegion r = DmaRegion::create({.length = len, .backing = backing});
    IovaMap map(IovaMode::PA);
    map.add(r);
    const size_t step = 4096;
    for (size_t off = 0; off < r.length(); off += step) {
        const uint8_t* p = r.va() + off + (off / step) % 64 * 8;  // vary the in-page offset
        auto want = oracle_phys(p);
        ASSERT_TRUE(want.has_value());
        ASSERT_EQ(map.iova(p), Iova{*want}) << "offset " << off;  // PA mode: the IOVA is the physical address
        ASSERT_EQ(map.va(Iova{*want}, 8), p);
    }
}

TEST(Pagemap, PhysicalAddressesMatchOracle4K) {
    if (!running_as_root()) {
        EXPECT_FALSE(physical_addresses_readable());
        return;
    }
    EXPECT_TRUE(physical_addresses_readable());
    check_pa_against_oracle(DmaBacking::Memfd4K, 4 << 20);
}

TEST(Pagemap, PhysicalAddressesMatchOracleHugepages) {
    if (!running_as_root() || free_hugepages_2m() < 2) {
        // Without root or free hugepages the same request must fail clearly.
        std::string e = error_of([] { check_pa_against_oracle(DmaBacking::MemfdHuge2M, 4 << 20); });
        EXPECT_TRUE(e.find("CAP_SYS_ADMIN") != std::string::npos || e.find("nr_hugepages") != std::string::npos) << e;
        return;
    }
    check_pa_against_oracle(DmaBacking::MemfdHuge2M, 4 << 20);
}

}  // namespace
}  // namespace vireo
