#include "vireo/pmd/isa.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace vireo {
namespace {

Isa detect() noexcept {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("bmi2"))
        return Isa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("fma"))
        return Isa::Avx2;
#endif
    return Isa::Baseline;
}

std::optional<Isa> from_env() noexcept {
    const char* v = std::getenv("VIREO_ISA");
    if (v == nullptr) return std::nullopt;
    if (std::strcmp(v, "baseline") == 0) return Isa::Baseline;
    if (std::strcmp(v, "avx2") == 0) return Isa::Avx2;
    if (std::strcmp(v, "avx512") == 0) return Isa::Avx512;
    return std::nullopt;
}

std::atomic<int> g_cap{-1};

}  // namespace

std::string_view to_string(Isa i) noexcept {
    switch (i) {
    case Isa::Baseline: return "baseline";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    }
    return "?";
}

Isa cpu_isa() noexcept {
    static const Isa isa = detect();
    return isa;
}

Isa data_path_isa() noexcept {
    Isa isa = cpu_isa();
    static const std::optional<Isa> env = from_env();
    if (env && *env < isa) isa = *env;
    const int cap = g_cap.load(std::memory_order_relaxed);
    if (cap >= 0 && static_cast<Isa>(cap) < isa) isa = static_cast<Isa>(cap);
    return isa;
}

void set_isa_cap(std::optional<Isa> cap) noexcept { g_cap.store(cap ? static_cast<int>(*cap) : -1); }

}  // namespace vireo
