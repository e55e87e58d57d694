// vireo: the virtqueue engine's batched kernels, four 16-byte packed
// descriptors (one cache line) per vector operation. Each carries GCC's
// target attribute for its instruction set: callable from baseline code (a
// plain call) and inlined into the burst functions compiled for that level
// (data_paths.hpp), never run on a CPU that lacks it (the queue types that
// use them are only chosen after CPUID says so: isa.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "vireo/pmd/virtio_spec.hpp"
#include "vireo/pmd/vq_common.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#define VIREO_HAVE_AVX512_KERNELS 1
#endif

namespace vireo::simd {

#if defined(VIREO_HAVE_AVX512_KERNELS)

// Writes four one-descriptor buffers into d[0..3] (one 64-byte aligned line):
// addresses, lengths and ids first, then the four flags words (x86 keeps
// stores in order, so no device sees a flag before its descriptor).
// hold_first leaves d[0]'s flags for publish() (the burst's first head).
[[gnu::target("arch=x86-64-v4")]] inline void packed_write4_avx512(virtio::PackedDesc* d, const VqBuf* b,
                                                                   const uint16_t* ids, uint16_t avail_bits,
                                                                   bool hold_first) noexcept {
    static_assert(offsetof(VqBuf, iova) == 0 && offsetof(VqBuf, len) == 8, "a VqBuf starts like a descriptor");
    __m128i lane[4];
    for (int k = 0; k < 4; k++) {
        const uint16_t flags = static_cast<uint16_t>(avail_bits | (b[k].device_writes ? virtio::kDescFWrite : 0));
        // iova and len where a descriptor has addr and len; id and flags replace the rest.
        lane[k] = _mm_insert_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&b[k])),
                                   static_cast<int>(uint32_t{ids[k]} | uint32_t{flags} << 16), 3);
    }
    __m512i v = _mm512_castsi128_si512(lane[0]);
    v = _mm512_inserti32x4(v, lane[1], 1);
    v = _mm512_inserti32x4(v, lane[2], 2);
    v = _mm512_inserti32x4(v, lane[3], 3);
    // 16-bit words: word 7 of each 16-byte lane is its flags.
    _mm512_mask_storeu_epi16(d, 0x7f7f7f7fu, v);
    std::atomic_signal_fence(std::memory_order_release);  // the flags after the rest (TSO keeps the order)
    _mm512_mask_storeu_epi16(d, hold_first ? 0x80808000u : 0x80808080u, v);
}

#endif

}  // namespace vireo::simd
