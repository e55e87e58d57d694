// NetPort's record of the receive filters the application set, sent again
// whenever the device is brought up (net_port_ctrl.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>

#include "vireo/pmd/net_port.hpp"

namespace vireo {

struct NetPort::Filters {
    std::optional<bool> promiscuous, all_multicast;
    std::optional<std::array<uint8_t, 6>> mac;
    std::set<uint16_t> vlans;
    std::optional<RssConfig> rss;           // set_rss()
    std::optional<RxOffloads> rx_offloads;  // set_rx_offloads()
};

}  // namespace vireo
