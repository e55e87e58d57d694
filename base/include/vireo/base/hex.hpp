// vireo: "0x1f" for messages.
#pragma once

#include <cstdint>
#include <string>

namespace vireo {

std::string hex(uint64_t v);

}  // namespace vireo
