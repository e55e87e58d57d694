// The kinds of address vireo hands around, as types of their own (the idea of
// rust-vmm's GuestAddress), so that passing one kind where another belongs
// does not compile:
//
//   Iova  what a device is given: in a descriptor, a ring address, a packet's
//         buffer. Which number that is (the process's virtual address, a
//         physical address, an address an IOMMU maps) is the IOVA policy's
//         decision for the memory (iova/iova_policy.hpp, IovaMode).
//   Pa    a physical address, read from /proc/self/pagemap. It becomes an Iova
//         only where the policy says the device sees physical addresses
//         (IovaMap in PA mode), written out as Iova{pa.value}.
//   a process's virtual address is a pointer (void*, uint8_t*).
//
// Each is one uint64_t in a register: no cost. An integer does not convert to
// either, neither converts to the other, and only an offset may be added.
#pragma once

#include <compare>
#include <cstdint>

namespace vireo {

template <class Tag>
struct Address {
    uint64_t value;  // uninitialised by default, like the integer it replaces: Packet stays trivial

    Address() noexcept = default;
    constexpr explicit Address(uint64_t v) noexcept : value(v) {}

    constexpr Address operator+(uint64_t offset) const noexcept { return Address{value + offset}; }
    constexpr Address operator-(uint64_t offset) const noexcept { return Address{value - offset}; }
    constexpr Address& operator+=(uint64_t offset) noexcept {
        value += offset;
        return *this;
    }
    constexpr uint64_t operator-(Address o) const noexcept { return value - o.value; }  // a distance in bytes
    constexpr auto operator<=>(const Address&) const noexcept = default;
};

struct IovaTag;
struct PaTag;
using Iova = Address<IovaTag>;
using Pa = Address<PaTag>;

inline constexpr Iova kBadIova{~uint64_t{0}};

}  // namespace vireo
