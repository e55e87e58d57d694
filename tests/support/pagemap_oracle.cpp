#include "pagemap_oracle.hpp"

#include <unistd.h>

#include <cstdio>

namespace vireo::test {

std::optional<uint64_t> oracle_phys(const void* va) {
    FILE* f = std::fopen("/proc/self/pagemap", "rb");
    if (f == nullptr) return std::nullopt;
    const long psz = ::sysconf(_SC_PAGESIZE);
    const auto v = reinterpret_cast<uint64_t>(va);
    uint64_t entry = 0;
    bool ok = std::fseek(f, static_cast<long>(v / psz * 8), SEEK_SET) == 0 && std::fread(&entry, 8, 1, f) == 1;
    std::fclose(f);
    if (!ok || (entry >> 63) == 0) return std::nullopt;
    uint64_t pfn = entry & ((uint64_t{1} << 55) - 1);
    if (pfn == 0) return std::nullopt;
    return pfn * psz + v % psz;
}

bool running_as_root() { return ::geteuid() == 0; }

}  // namespace vireo::test
