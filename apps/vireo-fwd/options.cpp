// Parsing vireo-fwd's flags with CLI11 (--flag=value or --flag value,
// testpmd's names; --help from the same descriptions). Values are checked
// here, with errors that name the flag and what it wants.
#include "options.hpp"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace vireo::fwd {
namespace {

[[noreturn]] void bad(const std::string& s) { throw UsageError{s}; }

unsigned long number(const std::string& flag, const std::string& v, unsigned long lo, unsigned long hi) {
    char* end = nullptr;
    errno = 0;
    const unsigned long n = std::strtoul(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0 || v[0] == '-' || n < lo || n > hi)
        bad(flag + " wants a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", not '" + v +
            "'");
    return n;
}

double seconds(const std::string& flag, const std::string& v) {
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(d >= 0) || d > 1e7) bad(flag + " wants seconds (>= 0), not '" + v + "'");
    return d;
}

std::vector<unsigned> core_list(const std::string& v) {  // "1,3-5"
    std::vector<unsigned> out;
    size_t pos = 0;
    while (pos <= v.size()) {
        const size_t comma = v.find(',', pos);
        const std::string item = v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        const size_t dash = item.find('-');
        if (dash == std::string::npos) {
            out.push_back(static_cast<unsigned>(number("--cores", item, 0, 4095)));
        } else {
            const unsigned a = static_cast<unsigned>(number("--cores", item.substr(0, dash), 0, 4095));
            const unsigned b = static_cast<unsigned>(number("--cores", item.substr(dash + 1), 0, 4095));
            if (b < a) bad("--cores: range '" + item + "' runs backwards");
            for (unsigned c = a; c <= b; c++) out.push_back(c);
        }
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    for (size_t i = 0; i < out.size(); i++)
        for (size_t j = 0; j < i; j++)
            if (out[i] == out[j]) bad("--cores lists core " + std::to_string(out[i]) + " twice");
    return out;
}

std::array<uint8_t, 6> mac(const std::string& flag, const std::string& v) {
    std::array<uint8_t, 6> m{};
    unsigned b[6];
    char tail;
    if (std::sscanf(v.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
        bad(flag + " wants a MAC address like 02:00:00:00:00:01, not '" + v + "'");
    for (int i = 0; i < 6; i++) m[i] = static_cast<uint8_t>(b[i]);
    return m;
}

Mode mode_of(const std::string& v) {
    if (v == "io") return Mode::Io;
    if (v == "mac") return Mode::Mac;
    if (v == "macswap") return Mode::MacSwap;
    if (v == "txonly") return Mode::TxOnly;
    if (v == "rxonly") return Mode::RxOnly;
    if (v == "flowgen") return Mode::FlowGen;
    bad("unknown forwarding mode '" + v + "': use io, mac, macswap, txonly, rxonly or flowgen");
}

// --pcap=FILE[,port=N][,queue=Q][,snaplen=S][,count=C]
CaptureOptions capture_of(const std::string& v) {
    CaptureOptions c;
    size_t at = v.find(',');
    c.file = v.substr(0, at);
    if (c.file.empty()) bad("--pcap wants a file name first, e.g. --pcap=/tmp/a.pcapng,port=0");
    while (at != std::string::npos) {
        const size_t next = v.find(',', at + 1);
        const std::string item = v.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
        const size_t eq = item.find('=');
        const std::string k = item.substr(0, eq), x = eq == std::string::npos ? "" : item.substr(eq + 1);
        if (k == "port")
            c.port = static_cast<int>(number("--pcap port", x, 0, 1023));
        else if (k == "queue")
            c.queue = static_cast<int>(number("--pcap queue", x, 0, 127));
        else if (k == "snaplen")
            c.snaplen = static_cast<uint32_t>(number("--pcap snaplen", x, 64, 262144));
        else if (k == "count")
            c.count = number("--pcap count", x, 1, ~0ul >> 2);
        else
            bad("--pcap: '" + item + "' is not port=N, queue=Q, snaplen=S or count=C");
        at = next;
    }
    return c;
}

// --txpkts=64 or 64,1454: at most 16 segments making a 60-9018 byte frame.
std::vector<uint16_t> segment_lengths(const std::string& v) {
    std::vector<uint16_t> out;
    size_t pos = 0;
    for (;;) {
        const size_t c = v.find(',', pos);
        out.push_back(
            static_cast<uint16_t>(number("--txpkts", v.substr(pos, c == std::string::npos ? c : c - pos), 1, 9000)));
        if (c == std::string::npos) break;
        pos = c + 1;
    }
    if (out.size() > 16) bad("--txpkts: at most 16 segments");
    uint32_t total = 0;
    for (uint16_t l : out) total += l;
    if (total < 60 || total > 9018)
        bad("--txpkts: the frame (" + std::to_string(total) + " bytes) must be 60 to 9018 bytes");
    return out;
}

}  // namespace

const char* to_string(Mode m) {
    switch (m) {
    case Mode::Io: return "io";
    case Mode::Mac: return "mac";
    case Mode::MacSwap: return "macswap";
    case Mode::TxOnly: return "txonly";
    case Mode::RxOnly: return "rxonly";
    case Mode::FlowGen: return "flowgen";
    }
    return "?";
}

namespace {

// What the command line said, as text: checked and converted by the
// functions above, whose errors name the flag and what it wants.
struct Given {
    std::string mode = "io", burst, rxq, txq, rxd, txd, nb_cores, cores, stats_period, duration, txpkts, flows, json,
                mbufs, iova, dma, pcap, telemetry, file_prefix, rss, sleep_when_idle, tx_first;
    std::vector<std::string> devices, device_flags, eth_peers;
    bool list = false, lro = false, telemetry_commands = false, disable_rss = false, record_core_cycles = false;
};

// The one description of every flag: parse_options() and usage() both build it.
void describe(CLI::App& app, Given& g) {
    app.name("vireo-fwd");
    app.description("testpmd-style forwarding between virtio-net ports (vhost-user, VFIO, uio, vhost-net, vhost-vdpa)");
    app.get_formatter()->column_width(34);
    app.allow_extras();  // an unknown --flag is reported by parse_options, in one line
    app.add_option("DEVICE", g.devices,
                   "vhost-user:/path/sock, pci:0000:01:00.0, vhost-net:tap=NAME or vhost-vdpa:/dev/vhost-vdpa-0, "
                   "each [,key=value...] (keys: queues, ring, "
                   "packed, in_order, mrg_rxbuf, iova, dma, server, mac, promisc, allmulti, vlans, ...: docs/api.md)");
    app.add_option("--device", g.device_flags, "one more DEVICE (before the positional ones)")
        ->allow_extra_args(false)
        ->type_name("DEVICE");
    app.add_flag("--list", g.list,
                 "show virtio-net PCI devices, vDPA devices, vhost-net and virtio-mmio devices, and the IOVA mode each "
                 "gets and why");
    auto text = [&](const char* name, std::string& into, const char* type, const char* help) {
        app.add_option(name, into, help)->type_name(type)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    };
    text("--forward-mode", g.mode, "MODE", "io (default), mac, macswap, txonly, rxonly, flowgen");
    text("--burst", g.burst, "N", "packets per burst (1-512, default 32)");
    text("--rxq", g.rxq, "N", "queue pairs per port (default 1)");
    text("--txq", g.txq, "N", "the same (equal to --rxq: virtio queues come in pairs)");
    text("--rxd", g.rxd, "N", "descriptors per queue (default: the device string's ring=; 256, 1024 with dma=window)");
    text("--txd", g.txd, "N", "the same (equal to --rxd)");
    text("--nb-cores", g.nb_cores, "N", "polling threads (default 1)");
    text("--cores", g.cores, "LIST", "cores for them, e.g. 1 or 2-3 (default: placed with hwloc near the devices)");
    text("--stats-period", g.stats_period, "S", "live statistics every S seconds (default 1, 0: none)");
    text("--duration", g.duration, "S", "stop after S seconds (default: at SIGINT/SIGTERM)");
    text("--txpkts", g.txpkts, "L[,L...]", "txonly/flowgen segment lengths; the frame is their sum (default 64)");
    text("--flows", g.flows, "N", "txonly: source addresses to cycle; flowgen: 5-tuples (default 1 / 1024)");
    app.add_option("--eth-peer", g.eth_peers, "mac mode: destination MAC for port P (default 02:00:00:00:00:0P)")
        ->allow_extra_args(false)
        ->type_name("P,MAC");
    app.add_flag("--tx-first{1}", g.tx_first,
                 "io/mac/macswap: send one burst per stream first (starts a loop); --tx-first=N: N bursts, "
                 "as testpmd's 'start tx_first N' (DPDK's loopback benchmarks use 32: the loop then measures "
                 "throughput, not one burst's round trip)");
    app.add_flag("--rss{ip+tcp+udp}", g.rss,
                 "RSS with hash reports on every device (hash_report=1; --rss=TYPES: ip, tcp, udp "
                 "joined by +, default all): frames spread over --rxq queues by flow");
    app.add_flag("--disable-rss", g.disable_rss, "rss=0 on every device (MQ's default steering instead)");
    text("--pcap", g.pcap, "FILE[,port=N][,queue=Q][,snaplen=S][,count=C]",
         "write what the ports receive and send to a pcapng file (tcpdump -r reads it), off the data path: frames "
         "the writer cannot keep up with are counted, not waited for. Default: every port and queue, snaplen "
         "65535, no count limit");
    app.add_flag("--enable-lro", g.lro,
                 "take large TCP segments whole (guest_tso4=1,guest_tso6=1 on every device) and send them on whole: "
                 "the Tx device's TSO, or vireo cuts them");
    app.add_flag("--telemetry{vireo}", g.telemetry,
                 "serve DPDK telemetry (--telemetry=PREFIX; dpdk-telemetry.py -f PREFIX reads it)");
    text("--file-prefix", g.file_prefix, "PREFIX", "the same, in testpmd's spelling");
    app.add_flag("--telemetry-commands", g.telemetry_commands,
                 "let telemetry clients change ports (/vireo/rx_offloads,N,csum+tso4 or ,none); the socket is then "
                 "this user's alone (mode 0600). Implies --telemetry");
    app.add_flag("--record-core-cycles", g.record_core_cycles,
                 "CPU cycles per packet on the forwarding cores, as testpmd counts them: TSC cycles of the "
                 "bursts that moved packets over the packets received (txonly, flowgen: sent)");
    app.add_flag("--sleep-when-idle{1000}", g.sleep_when_idle,
                 "after N empty rounds (--sleep-when-idle=N) a thread sleeps on its Rx queues' "
                 "notifications until a frame comes (vhost-user, vfio-pci)");
    text("--iova-mode", g.iova, "auto|pa|va", "IOVA mode for all devices (default: chosen from their bit 33)");
    text("--dma", g.dma, "auto|direct|window",
         "what devices may reach: direct (the packet pool) or window (only their own rings and bounce slots; "
         "frames are copied). Default: window in a confidential guest (TDX, SEV-SNP), else direct; dma= per "
         "device overrides");
    text("--total-num-mbufs", g.mbufs, "N", "packet pool size (default: sized from rings, bursts and cores)");
    text("--json", g.json, "FILE", "write a machine-readable summary at the end");
    app.footer(
        "exit codes: 0 done, 1 ran but something went wrong (leak, device fault, a link still down at the end),\n"
        "            2 could not start");
}

}  // namespace

std::string usage() {
    CLI::App app;
    Given g;
    describe(app, g);
    return app.help();
}

Options parse_options(int argc, char** argv) {
    CLI::App app;
    Given g;
    describe(app, g);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        throw UsageError{""};
    } catch (const CLI::ParseError& e) {  // a flag without its value, one given twice...
        bad(std::string(e.what()) + " (vireo-fwd --help lists the options)");
    }
    if (const std::vector<std::string> extra = app.remaining(); !extra.empty())
        bad("unknown option " + extra.front() + " (vireo-fwd --help lists them)");
    auto given = [&](const char* flag) { return app.count(flag) != 0; };
    Options o;
    o.devices = g.device_flags;
    o.devices.insert(o.devices.end(), g.devices.begin(), g.devices.end());
    o.list = g.list;
    o.record_core_cycles = g.record_core_cycles;
    if (given("--tx-first")) o.tx_first = static_cast<uint32_t>(number("--tx-first", g.tx_first, 1, 1024));
    o.large_segments = g.lro;
    o.rss = g.rss;
    o.disable_rss = g.disable_rss;
    o.mode = mode_of(g.mode);
    if (given("--pcap")) o.capture = capture_of(g.pcap);
    if (given("--telemetry")) o.telemetry = g.telemetry;
    if (given("--file-prefix")) o.telemetry = g.file_prefix;
    o.telemetry_commands = g.telemetry_commands;
    if (o.telemetry_commands && o.telemetry.empty()) o.telemetry = "vireo";
    if (given("--sleep-when-idle"))
        o.sleep_when_idle = static_cast<uint32_t>(number("--sleep-when-idle", g.sleep_when_idle, 1, 1u << 30));
    if (given("--burst")) o.burst = static_cast<uint16_t>(number("--burst", g.burst, 1, 512));
    if (given("--rxq")) o.queues = static_cast<uint16_t>(number("--rxq", g.rxq, 1, 64));
    const uint16_t txq = given("--txq") ? static_cast<uint16_t>(number("--txq", g.txq, 1, 64)) : o.queues;
    if (given("--rxq") && given("--txq") && txq != o.queues)
        bad("--rxq and --txq differ: virtio queues come in pairs, give the same number");
    if (!given("--rxq")) o.queues = txq;
    if (given("--rxd")) o.ring = static_cast<uint16_t>(number("--rxd", g.rxd, 64, 32768));
    if (given("--txd")) {
        const auto txd = static_cast<uint16_t>(number("--txd", g.txd, 64, 32768));
        if (o.ring && txd != *o.ring) bad("--rxd and --txd differ: vireo gives both queues of a pair one ring size");
        o.ring = txd;
    }
    if (given("--nb-cores")) o.nb_cores = static_cast<unsigned>(number("--nb-cores", g.nb_cores, 1, 1024));
    if (given("--cores")) o.cores = core_list(g.cores);
    if (given("--stats-period")) o.stats_period = seconds("--stats-period", g.stats_period);
    if (given("--duration")) o.duration = seconds("--duration", g.duration);
    if (given("--flows")) o.flows = static_cast<uint32_t>(number("--flows", g.flows, 1, 1u << 24));
    o.json = g.json;
    if (given("--total-num-mbufs"))
        o.mbufs = static_cast<uint32_t>(number("--total-num-mbufs", g.mbufs, 1024, 1u << 26));
    if (given("--iova-mode") && g.iova != "auto") {
        o.iova = parse_iova_mode(g.iova);
        if (!o.iova) bad("--iova-mode wants auto, pa or va, not '" + g.iova + "'");
    }
    if (given("--dma") && g.dma != "auto") {
        o.dma = parse_dma_arrangement(g.dma);
        if (!o.dma) bad("--dma wants auto, direct or window, not '" + g.dma + "'");
    }
    if (given("--txpkts")) o.txpkts = segment_lengths(g.txpkts);
    for (const std::string& v : g.eth_peers) {
        const size_t c = v.find(',');
        if (c == std::string::npos) bad("--eth-peer wants PORT,MAC, e.g. --eth-peer=0,02:00:00:00:00:01");
        const size_t port = number("--eth-peer", v.substr(0, c), 0, 255);
        if (o.eth_peer.size() <= port) o.eth_peer.resize(port + 1, {0x02, 0, 0, 0, 0, 0});
        o.eth_peer[port] = mac("--eth-peer", v.substr(c + 1));
    }
    if (!o.rss.empty() && o.disable_rss) bad("--rss and --disable-rss contradict each other: give one");
    if (!o.cores.empty() && o.cores.size() != o.nb_cores) {
        if (o.nb_cores != 1)
            bad("--cores lists " + std::to_string(o.cores.size()) + " cores but --nb-cores is " +
                std::to_string(o.nb_cores));
        o.nb_cores = static_cast<unsigned>(o.cores.size());
    }
    if (!given("--flows") && o.mode == Mode::FlowGen) o.flows = 1024;
    if (!o.list && o.devices.empty()) bad("no device: give at least one, e.g. vhost-user:/tmp/vhost.sock");
    return o;
}

}  // namespace vireo::fwd
