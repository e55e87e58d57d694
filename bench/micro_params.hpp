// Shared sizes of vireo-bench-micro's pairs: each vireo benchmark and its DPDK
// twin run the same operation on the same sizes.
#pragma once

namespace bench {

inline constexpr unsigned kBurst = 32;
inline constexpr unsigned kRingSize = 1024;
inline constexpr unsigned kPoolCount = 8191;
inline constexpr unsigned kCache = 256;
inline constexpr unsigned kObjSize = 2176;  // a 2 KiB packet buffer with headroom and metadata

}  // namespace bench
