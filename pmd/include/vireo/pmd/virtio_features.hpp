// vireo: a set of virtio feature bits, 0 to 127. Virtio 1.4 numbers network
// features past 63 (RSS_CONTEXT 64, the UDP tunnel GSO bits 65-68, ...), so a
// 64-bit integer no longer holds what a device may offer. The registers carry
// the set 32 bits at a time (virtio 1.2 4.1.4.3 device_feature_select, 4.2.2
// DeviceFeaturesSel: select i is bits 32i to 32i+31); vhost-user and the vhost
// ioctls carry only bits 0-63 (from_u64 / low64). Its own type, so a feature
// set is never mixed up with a mask of another kind (vhost-user protocol
// features, vhost backend features).
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace vireo::virtio {

class Features {
public:
    static constexpr unsigned kBits = 128;
    static constexpr unsigned kWords = kBits / 32;  // feature selects 0..3

    constexpr Features() noexcept = default;
    // Bits 0-63, as vhost-user and the vhost ioctls carry them.
    static constexpr Features from_u64(uint64_t low) noexcept {
        Features f;
        f.q_[0] = low;
        return f;
    }
    static constexpr Features of_bit(unsigned b) noexcept {
        Features f;
        if (b < kBits) f.q_[b / 64] = uint64_t{1} << (b % 64);
        return f;
    }

    constexpr bool has(unsigned b) const noexcept { return b < kBits && (q_[b / 64] >> (b % 64) & 1) != 0; }
    constexpr bool empty() const noexcept { return q_[0] == 0 && q_[1] == 0; }
    // Bits 0-63; fits_u64() says whether that is all of them.
    constexpr uint64_t low64() const noexcept { return q_[0]; }
    constexpr bool fits_u64() const noexcept { return q_[1] == 0; }
    // Feature word i: the 32 bits a transport's select register value i reads or writes.
    constexpr uint32_t word(unsigned i) const noexcept {
        return i < kWords ? static_cast<uint32_t>(q_[i / 2] >> (32 * (i % 2))) : 0;
    }
    constexpr void set_word(unsigned i, uint32_t v) noexcept {
        if (i >= kWords) return;
        const unsigned shift = 32 * (i % 2);
        q_[i / 2] = (q_[i / 2] & ~(uint64_t{0xffffffff} << shift)) | uint64_t{v} << shift;
    }

    constexpr Features& operator|=(const Features& o) noexcept {
        q_[0] |= o.q_[0];
        q_[1] |= o.q_[1];
        return *this;
    }
    constexpr Features& operator&=(const Features& o) noexcept {
        q_[0] &= o.q_[0];
        q_[1] &= o.q_[1];
        return *this;
    }
    friend constexpr Features operator|(Features a, const Features& b) noexcept { return a |= b; }
    friend constexpr Features operator&(Features a, const Features& b) noexcept { return a &= b; }
    friend constexpr Features operator~(Features a) noexcept {
        a.q_[0] = ~a.q_[0];
        a.q_[1] = ~a.q_[1];
        return a;
    }
    friend constexpr bool operator==(const Features&, const Features&) noexcept = default;

private:
    std::array<uint64_t, 2> q_{};
};

constexpr Features bit(unsigned f) noexcept { return Features::of_bit(f); }
constexpr bool has(const Features& features, unsigned f) noexcept { return features.has(f); }

}  // namespace vireo::virtio

namespace vireo {
// "0x..." as hex(uint64_t) prints a set within bits 0-63; with higher bits, all
// of them: "0x1_0000000100000000" (bits 64 and up, '_', bits 0-63 in 16 digits).
std::string hex(const virtio::Features& f);
}  // namespace vireo
