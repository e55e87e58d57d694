// Test oracle: an independent reading of /proc/self/pagemap, written from the
// kernel's Documentation/admin-guide/mm/pagemap.rst, to check vireo's
// translation against (it shares no code with iova/src/pagemap.cpp).
#pragma once

#include <cstdint>
#include <optional>

namespace vireo::test {

// Physical address of the byte at va, or nullopt when the page is not present
// or the PFN is hidden (not root).
std::optional<uint64_t> oracle_phys(const void* va);
bool running_as_root();

}  // namespace vireo::test
