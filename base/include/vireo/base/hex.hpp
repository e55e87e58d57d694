// vireo: numbers and addresses as text, one way each.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace vireo {

std::string hex(uint64_t v);  // "0x1f"
// "02:00:00:00:00:0a"; upper: "02:00:00:00:00:0A" (DPDK telemetry's form).
std::string mac_text(const std::array<uint8_t, 6>& m, bool upper = false);

}  // namespace vireo
