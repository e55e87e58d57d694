// vireo-fwd's data path: a stream takes packets from one (port, queue) and
// sends them to one (port, queue), or generates or sinks them. Each mode is
// its own compiled function (no per-packet branch on the mode); a polling
// thread owns its streams, and each Tx queue belongs to exactly one stream,
// so nothing on the data path takes a lock.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

#include "options.hpp"
#include "vireo/base/counter.hpp"
#include "vireo/capture/capture.hpp"
#include "vireo/mempool/packet_pool.hpp"
#include "vireo/pmd/net_port.hpp"

namespace vireo::fwd {

inline constexpr uint16_t kMaxBurst = 512;
inline constexpr size_t kMaxSegments = 16;  // --txpkts lengths

struct alignas(64) Stream {
    NetPort* rx = nullptr;  // nullptr for txonly/flowgen
    uint16_t rxq = 0;
    NetPort* tx = nullptr;  // nullptr for rxonly
    uint16_t txq = 0;
    uint16_t rx_port = 0, tx_port = 0;
    uint16_t burst = 32;
    // The Rx port negotiated GUEST_CSUM (and maybe GUEST_TSO4/6): a frame it
    // delivers with its checksum, or its segmentation, left to do leaves
    // flagged so (carry_offloads: the Tx device or vireo finishes it).
    bool rx_offloads = false;
    // --pcap: the ring this stream's received / sent bursts are offered to (nullptr: not captured).
    CaptureRing* capture_rx = nullptr;
    CaptureRing* capture_tx = nullptr;
    std::array<uint8_t, 6> src_mac{}, dst_mac{};  // mac mode and generated frames
    // Generated frames (txonly, flowgen, --tx-first).
    PacketPool* pool = nullptr;
    std::vector<uint16_t> segments;  // segment lengths; the frame is their sum
    uint32_t frame_len = 64;
    uint32_t flows = 1;
    uint32_t next_flow = 0;
    // The frame's Ethernet/IPv4/UDP headers for flow 0, and the IPv4 header's
    // one's-complement sum without its addresses (so a flow's checksum is two adds).
    std::array<uint8_t, 42> header{};
    uint32_t ip_sum_base = 0;
    // Written only by the owning thread (bump), read by the stats thread (read_counter: vireo/base/counter.hpp).
    uint64_t fwd_drops = 0;    // packets a Tx queue did not take (freed)
    uint64_t alloc_fails = 0;  // generator bursts the pool could not serve
    uint64_t received = 0;     // frames this stream took from its Rx queue
    uint64_t sent = 0;         // generated frames its Tx queue took (txonly, flowgen)
    // --record-core-cycles: TSC cycles of the calls that moved packets (testpmd's core_cycles, below).
    uint64_t busy_cycles = 0;
    uint64_t first_bursts = 0;  // --tx-first bursts sent (more than one: the loop was restarted)
    void (*run)(Stream&) = nullptr;
};

// The data-path function for a mode (sets Stream::run). With record_cycles
// it counts busy_cycles as testpmd's --record-core-cycles does (DPDK 22.11
// app/test-pmd: get_start_cycles() before the Rx burst, get_end_cycles()
// after the Tx burst, in iofwd.c, macfwd.c, macswap.c, rxonly.c a call that
// received nothing returns before it, so only calls that moved packets count;
// txonly.c and flowgen.c count every call). fwd_stats_display() divides the
// sum by the packets received, or for txonly and flowgen sent.
void (*stream_function(Mode m, bool record_cycles))(Stream&);
// Fills Stream::header and ip_sum_base from the stream's MACs and frame length.
void prepare_headers(Stream& s);
// `bursts` generated bursts on the stream's Tx queue (--tx-first[=N]).
void send_first_bursts(Stream& s, uint32_t bursts);

// --tx-first starts a loop: each stream's first burst comes back on its own
// Rx queue (through the peer port and the switch or back end between them).
// A loop whose frames were all lost (a switch that was not yet forwarding to
// the peer port when the burst came, frames in flight when a back end
// restarted) would stay silent for ever; a stream that has received nothing
// for kLoopSilenceMs while both its ports are ready sends its burst again.
inline constexpr int kLoopSilenceMs = 200;
struct LoopKeeper {
    uint32_t bursts = 1;         // per (re)start
    std::vector<uint64_t> seen;  // per stream: `received` at the last check
    std::vector<std::chrono::steady_clock::time_point> quiet_since;
    void start(std::vector<Stream*>& mine);
    void check(std::vector<Stream*>& mine);
};

}  // namespace vireo::fwd
