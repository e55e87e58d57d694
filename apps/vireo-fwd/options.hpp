// vireo-fwd's command line, in testpmd's words where testpmd has one.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vireo/iova/iova_mode.hpp"

namespace vireo::fwd {

enum class Mode { Io, Mac, MacSwap, TxOnly, RxOnly, FlowGen };

struct CaptureOptions {
    std::string file;           // empty: no capture
    int port = -1, queue = -1;  // -1: all
    uint32_t snaplen = 65535;
    uint64_t count = 0;  // 0: until the end
};

struct Options {
    std::vector<std::string> devices;  // device strings, one port each, in port order
    Mode mode = Mode::Io;
    uint16_t burst = 32;
    uint16_t queues = 1;                           // --rxq/--txq: queue pairs per port
    std::optional<uint16_t> ring;                  // --rxd/--txd: descriptors per queue
    unsigned nb_cores = 1;                         // polling threads
    std::vector<unsigned> cores;                   // --cores: explicit placement (empty: automatic)
    double stats_period = 1.0;                     // seconds, 0: no live stats
    double duration = 0;                           // seconds, 0: until SIGINT/SIGTERM
    std::vector<uint16_t> txpkts{64};              // txonly/flowgen: segment lengths (sum = frame length)
    uint32_t flows = 1;                            // txonly: flows (varied source IP); flowgen: 5-tuples
    std::optional<IovaMode> iova;                  // --iova-mode=pa|va (auto: empty)
    std::optional<DmaArrangement> dma;             // --dma=direct|window (auto: empty)
    std::string json;                              // --json FILE
    bool list = false;                             // --list
    uint32_t tx_first = 0;                         // --tx-first[=N]: N txonly bursts per stream at start (0: none)
    bool large_segments = false;                   // --enable-lro: guest_tso4/6 on every device
    std::string rss;                               // --rss[=ip+tcp+udp]: hash_report=1 (and rss_types) on every device
    bool disable_rss = false;                      // --disable-rss: rss=0 on every device
    CaptureOptions capture;                        // --pcap=FILE[,port=N][,queue=Q][,snaplen=S][,count=C]
    std::string telemetry;                         // --telemetry[=PREFIX] / --file-prefix=PREFIX: serve DPDK telemetry
    bool telemetry_commands = false;               // --telemetry-commands: it may change ports (socket mode 0600)
    uint32_t sleep_when_idle = 0;                  // --sleep-when-idle[=POLLS]: empty rounds before sleeping (0: off)
    uint32_t mbufs = 0;                            // --total-num-mbufs (0: sized from rings and cores)
    bool record_core_cycles = false;               // --record-core-cycles: cycles per packet, testpmd's way
    std::vector<std::array<uint8_t, 6>> eth_peer;  // --eth-peer=P,MAC (mac mode destinations)
};

// Throws UsageError (exit code 2) with one clear sentence.
struct UsageError {
    std::string what;
};

Options parse_options(int argc, char** argv);
std::string usage();  // --help's text
const char* to_string(Mode m);

}  // namespace vireo::fwd
