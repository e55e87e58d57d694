// Which instruction set the data path runs on: chosen once at run time from
// CPUID, so a library built for the x86-64-v2 baseline (the default) still
// runs its AVX-512 or AVX2 burst functions where the CPU has them
// (data_paths.hpp compiles each burst function once per level, with GCC's
// target attribute; nothing else in the library needs more than the baseline).
//
// VIREO_ISA=baseline|avx2|avx512 in the environment caps the level (never
// above what the CPU has): for A/B measurements and for running the tests on
// every path.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace vireo {

enum class Isa : uint8_t {
    Baseline,  // x86-64-v2 (SSE4.2, POPCNT): what the library is built for
    Avx2,      // x86-64-v3 (AVX2, BMI2, FMA)
    Avx512,    // x86-64-v4 (AVX-512 F, BW, CD, DQ, VL)
};

std::string_view to_string(Isa i) noexcept;
// The highest level this CPU supports.
Isa cpu_isa() noexcept;
// The level the data path uses: cpu_isa(), capped by VIREO_ISA or the test override.
Isa data_path_isa() noexcept;
// Tests: cap the level for ports started from now on (nullopt: back to the default).
void set_isa_cap(std::optional<Isa> cap) noexcept;

}  // namespace vireo
