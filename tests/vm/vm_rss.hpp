// vireo-vm-check rss (vm_rss.cpp): RSS and hash reports against QEMU's
// virtio-net device (rss=on,hash=on: QEMU's own Toeplitz steering) behind a
// multi-queue tap the host sends into (vmlab.py --nic tap=...,
// --tap-send-on). The wire format of the host's frames is vmlab_tap.py's.
#pragma once

#include "vireo/mempool/packet_pool.hpp"
#include "vireo/pmd/net_port.hpp"

namespace vm {

// Two rounds, each started by printing "READY rss<N>": the default spread
// (every flow on the queue table[hash % size] names, the reported hash equal
// to a Toeplitz hash computed here over the flow's addresses and ports), then
// set_rss() with TCP only and every entry on the last queue (TCP there, the
// rest unhashed on queue 0). `seconds` bounds each round.
void check_rss(vireo::NetPort& port, vireo::PacketPool& pool, int seconds);

}  // namespace vm
