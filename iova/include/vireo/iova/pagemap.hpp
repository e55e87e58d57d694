// vireo: virtual-to-physical translation through /proc/self/pagemap.
//
// Documentation: the kernel's Documentation/admin-guide/mm/pagemap.rst. Each
// 4 KiB virtual page has a 64-bit entry: bit 63 present, bits 0-54 the PFN.
// Since Linux 4.2 the PFN reads as 0 without CAP_SYS_ADMIN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vireo/base/address.hpp"

namespace vireo {

// Physical address of each page of [va, va + len), one entry per `page_size`
// bytes (page_size is the backing page size: 4 KiB, 2 MiB or 1 GiB). The pages
// must be populated (touched or mlocked). Throws vireo::Error when pagemap
// cannot be read, a page is not present, or PFNs read as 0 (no CAP_SYS_ADMIN).
std::vector<Pa> physical_pages(const void* va, size_t len, size_t page_size);

// Physical address of one byte; same errors as above.
Pa virt_to_phys(const void* va);

// True when this process can read real PFNs (root / CAP_SYS_ADMIN).
bool physical_addresses_readable() noexcept;

}  // namespace vireo
