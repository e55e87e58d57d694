// Parsing vireo-fwd's flags: --flag=value or --flag value, testpmd's names.
#include "options.hpp"

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

const char* usage() {
    return "usage: vireo-fwd [options] DEVICE...\n"
           "  DEVICE                 vhost-user:/path/sock[,key=value...] or pci:0000:01:00.0[,key=value...]\n"
           "                         (keys: queues, ring, packed, in_order, mrg_rxbuf, iova, dma, server, mac,\n"
           "                         promisc, allmulti, vlans, ...: docs/api.md)\n"
           "  --list                 show virtio-net PCI devices, their driver (vfio-pci, uio_pci_generic...)\n"
           "                         and the IOVA mode each gets\n"
           "  --forward-mode=MODE    io (default), mac, macswap, txonly, rxonly, flowgen\n"
           "  --burst=N              packets per burst (1-512, default 32)\n"
           "  --rxq=N --txq=N        queue pairs per port (equal; default 1)\n"
           "  --rxd=N --txd=N        descriptors per queue (equal; default: the device string's, 256)\n"
           "  --nb-cores=N           polling threads (default 1)\n"
           "  --cores=LIST           cores for them, e.g. 1 or 2-3 (default: placed with hwloc near the devices)\n"
           "  --stats-period=S       live statistics every S seconds (default 1, 0: none)\n"
           "  --duration=S           stop after S seconds (default: at SIGINT/SIGTERM)\n"
           "  --txpkts=L[,L...]      txonly/flowgen segment lengths; the frame is their sum (default 64)\n"
           "  --flows=N              txonly: source addresses to cycle; flowgen: 5-tuples (default 1 / 1024)\n"
           "  --eth-peer=P,MAC       mac mode: destination MAC for port P (default 02:00:00:00:00:0P)\n"
           "  --tx-first             io/mac/macswap: send one burst per stream first (starts a loop)\n"
           "  --rss[=TYPES]          RSS with hash reports on every device (hash_report=1; TYPES: ip, tcp, udp\n"
           "                         joined by +, default all): frames spread over --rxq queues by flow\n"
           "  --disable-rss          rss=0 on every device (MQ's default steering instead)\n"
           "  --pcap=FILE[,port=N][,queue=Q][,snaplen=S][,count=C]\n"
           "                         write what the ports receive and send to a pcapng file (tcpdump -r reads it),\n"
           "                         off the data path: frames the writer cannot keep up with are counted, not\n"
           "                         waited for. Default: every port and queue, snaplen 65535, no count limit\n"
           "  --enable-lro           take large TCP segments whole (guest_tso4=1,guest_tso6=1 on every device)\n"
           "                         and send them on whole: the Tx device's TSO, or vireo cuts them\n"
           "  --telemetry[=PREFIX]   serve DPDK telemetry (dpdk-telemetry.py -f PREFIX; default prefix vireo);\n"
           "  --file-prefix=PREFIX   the same, in testpmd's spelling\n"
           "  --sleep-when-idle[=N]  after N empty rounds (1000) a thread sleeps on its Rx queues'\n"
           "                         notifications until a frame comes (vhost-user, vfio-pci)\n"
           "  --iova-mode=auto|pa|va IOVA mode for all devices (default: chosen from their bit 33)\n"
           "  --dma=auto|direct|window what devices may reach: direct (the packet pool) or window (only their\n"
           "                         own rings and bounce slots; frames are copied). Default: window in a\n"
           "                         confidential guest (TDX, SEV-SNP), else direct; dma= per device overrides\n"
           "  --total-num-mbufs=N    packet pool size (default: sized from rings, bursts and cores)\n"
           "  --json=FILE            write a machine-readable summary at the end\n"
           "exit codes: 0 done, 1 ran but something went wrong (leak, device fault, a link still down at the end),\n"
           "            2 could not start\n";
}

Options parse_options(int argc, char** argv) {
    Options o;
    bool rxq = false, txq = false, rxd = false, txd = false, flows_given = false;
    uint16_t txq_v = 1;
    uint16_t txd_v = 0;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a.rfind("--", 0) != 0) {
            o.devices.push_back(a);
            continue;
        }
        std::string key = a, val;
        bool has_val = false;
        if (const size_t eq = a.find('='); eq != std::string::npos) {
            key = a.substr(0, eq);
            val = a.substr(eq + 1);
            has_val = true;
        }
        auto value = [&]() -> std::string {
            if (has_val) return val;
            if (i + 1 >= argc) bad(key + " needs a value");
            return argv[++i];
        };
        if (key == "--help" || key == "-h")
            throw UsageError{""};
        else if (key == "--list")
            o.list = true;
        else if (key == "--tx-first")
            o.tx_first = true;
        else if (key == "--enable-lro")
            o.large_segments = true;
        else if (key == "--rss")
            o.rss = has_val ? val : "ip+tcp+udp";
        else if (key == "--disable-rss")
            o.disable_rss = true;
        else if (key == "--pcap")
            o.capture = capture_of(value());
        else if (key == "--telemetry")
            o.telemetry = has_val ? val : "vireo";
        else if (key == "--file-prefix")
            o.telemetry = value();
        else if (key == "--sleep-when-idle")
            o.sleep_when_idle = has_val ? static_cast<uint32_t>(number(key, val, 1, 1u << 30)) : 1000;
        else if (key == "--device")
            o.devices.push_back(value());
        else if (key == "--forward-mode")
            o.mode = mode_of(value());
        else if (key == "--burst")
            o.burst = static_cast<uint16_t>(number(key, value(), 1, 512));
        else if (key == "--rxq")
            o.queues = static_cast<uint16_t>(number(key, value(), 1, 64)), rxq = true;
        else if (key == "--txq")
            txq_v = static_cast<uint16_t>(number(key, value(), 1, 64)), txq = true;
        else if (key == "--rxd")
            o.ring = static_cast<uint16_t>(number(key, value(), 64, 32768)), rxd = true;
        else if (key == "--txd")
            txd_v = static_cast<uint16_t>(number(key, value(), 64, 32768)), txd = true;
        else if (key == "--nb-cores")
            o.nb_cores = static_cast<unsigned>(number(key, value(), 1, 1024));
        else if (key == "--cores")
            o.cores = core_list(value());
        else if (key == "--stats-period")
            o.stats_period = seconds(key, value());
        else if (key == "--duration")
            o.duration = seconds(key, value());
        else if (key == "--flows")
            o.flows = static_cast<uint32_t>(number(key, value(), 1, 1u << 24)), flows_given = true;
        else if (key == "--json")
            o.json = value();
        else if (key == "--total-num-mbufs")
            o.mbufs = static_cast<uint32_t>(number(key, value(), 1024, 1u << 26));
        else if (key == "--iova-mode") {
            const std::string v = value();
            if (v != "auto") {
                o.iova = parse_iova_mode(v);
                if (!o.iova) bad("--iova-mode wants auto, pa or va, not '" + v + "'");
            }
        } else if (key == "--dma") {
            const std::string v = value();
            if (v != "auto") {
                o.dma = parse_dma_arrangement(v);
                if (!o.dma) bad("--dma wants auto, direct or window, not '" + v + "'");
            }
        } else if (key == "--txpkts") {
            o.txpkts.clear();
            const std::string v = value();
            size_t pos = 0;
            for (;;) {
                const size_t c = v.find(',', pos);
                o.txpkts.push_back(
                    static_cast<uint16_t>(number(key, v.substr(pos, c == std::string::npos ? c : c - pos), 1, 9000)));
                if (c == std::string::npos) break;
                pos = c + 1;
            }
            if (o.txpkts.size() > 16) bad("--txpkts: at most 16 segments");
            uint32_t total = 0;
            for (uint16_t l : o.txpkts) total += l;
            if (total < 60 || total > 9018)
                bad("--txpkts: the frame (" + std::to_string(total) + " bytes) must be 60 to 9018 bytes");
        } else if (key == "--eth-peer") {
            const std::string v = value();
            const size_t c = v.find(',');
            if (c == std::string::npos) bad("--eth-peer wants PORT,MAC, e.g. --eth-peer=0,02:00:00:00:00:01");
            const size_t port = number(key, v.substr(0, c), 0, 255);
            if (o.eth_peer.size() <= port) o.eth_peer.resize(port + 1, {0x02, 0, 0, 0, 0, 0});
            o.eth_peer[port] = mac(key, v.substr(c + 1));
        } else {
            bad("unknown option " + key + " (vireo-fwd --help lists them)");
        }
    }
    if (rxq && txq && txq_v != o.queues)
        bad("--rxq and --txq differ: virtio queues come in pairs, give the same number");
    if (!rxq && txq) o.queues = txq_v;
    if (!o.rss.empty() && o.disable_rss) bad("--rss and --disable-rss contradict each other: give one");
    if (rxd && txd && txd_v != *o.ring) bad("--rxd and --txd differ: vireo gives both queues of a pair one ring size");
    if (!rxd && txd) o.ring = txd_v;
    if (!o.cores.empty() && o.cores.size() != o.nb_cores) {
        if (o.nb_cores != 1)
            bad("--cores lists " + std::to_string(o.cores.size()) + " cores but --nb-cores is " +
                std::to_string(o.nb_cores));
        o.nb_cores = static_cast<unsigned>(o.cores.size());
    }
    if (!flows_given && o.mode == Mode::FlowGen) o.flows = 1024;
    if (!o.list && o.devices.empty()) bad("no device: give at least one, e.g. vhost-user:/tmp/vhost.sock");
    return o;
}

}  // namespace vireo::fwd
