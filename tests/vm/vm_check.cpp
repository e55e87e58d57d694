// vireo-vm-check: runs inside the test VM (tests/vm/vmlab.py) against real
// virtio-net devices: PCI (vfio-pci behind QEMU's intel-iommu, no-IOMMU vfio,
// uio), virtio-mmio (microvm), the kernel's vhost-net and vhost-vdpa.
//
//   list   [--expect NAME=va|pa|refused[/IOMMU] ...]  discovery (PCI BDFs, virtio-mmio names), what mode (and
//          IOMMU kind) each device gets
//   loop   --dev A --dev B [--iova-mode M] [--expect-mode M] [--count N]
//          one process, both devices, one IOVA mode: A sends verified frames,
//          B reflects them (checking each) back to A, which verifies them again
//   reflect --dev B --expect-mode M --count N   the reflecting half, in its own process
//   traffic --dev A --expect-mode M --count N   the sending half, in its own process
//   refuse --dev X [--iova-mode M] --says TEXT...   setting up must fail with an error containing each TEXT
//   start  --dev X                               open, negotiate, start and stop (e.g. a transitional device)
//   link   --dev X [--tag T]  waits for configuration-change events: link down, then up (QMP set_link on
//          "READY link T", then up on "LINK DOWN SEEN T")
//   filters --dev A --dev B  B's receive, MAC and VLAN filters (control queue) keep out and let in A's frames
//   announce --dev A --dev B A announces itself when QEMU asks (QMP announce-self); B sees the RARPs
//   speed  --dev X --says "25000 Mbit/s full-duplex"   the link speed the device reports
//   mmio-cost --dev mmio:NAME --count N   the time of one QueueNotify and one register read (INFO)
//   sleep  --dev A --dev B  B sleeps on its Rx queue's MSI-X vector between A's frames
//   loopback --dev X --count N   X's device sends its Tx back to its Rx (vdpa_sim_net): frames verified
//   tcp-send --to IP:PORT --bytes N --seed S   /   tcp-recv --port P --bytes N --seed S   (--netns NAME: in it)
//          a TCP transfer through the guest kernel (two namespaces, vireo-fwd between their taps)
//   fwd-json --file F [--expect-iotlb 0|1] [--expect-tso 0|1] [--expect-queues N] [--expect-mode M]
//          vireo-fwd's summary
// Prints "PASS <what>" or "FAIL <what>: <why>" lines; exit 0 only when all passed.
#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/traffic.hpp"
#include "vireo/base/error.hpp"
#include "vireo/iova/vfio.hpp"
#include "vireo/pmd/device_set.hpp"
#include "vireo/pmd/mmio_discovery.hpp"
#include "vireo/pmd/pci_discovery.hpp"
#include "vireo/pmd/virtio_spec.hpp"
#include "vm_ctrl.hpp"
#include "vm_kernel.hpp"
#include "vm_rss.hpp"

using namespace vireo;

namespace {

struct Args {
    std::string cmd;
    std::vector<std::string> devs, expect, says;
    std::optional<IovaMode> iova, expect_mode;
    uint64_t count = 2000;
    int seconds = 60;
    std::string to, file, netns;
    std::string tag;  // appended to READY and LINK DOWN SEEN: the host's triggers tell two runs apart
    uint16_t port = 5000;
    uint64_t bytes = 4 << 20, seed = 1;
    vm::FwdExpectations fwd;
};

int failures = 0;

}  // namespace

void vm::check(bool ok, const std::string& what, const std::string& why) {
    std::printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what.c_str(), ok || why.empty() ? "" : ": ",
                ok ? "" : why.c_str());
    std::fflush(stdout);
    if (!ok) failures++;
}

namespace {

using vm::check;

Args parse(int argc, char** argv) {
    Args a;
    if (argc < 2) throw Error("usage: vireo-vm-check list|loop|reflect|traffic|refuse|link [options]");
    a.cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        std::string k = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) throw Error(k + " needs a value");
            return argv[++i];
        };
        auto mode = [&](const std::string& v) {
            auto m = parse_iova_mode(v);
            if (!m) throw Error("bad IOVA mode '" + v + "': pa or va");
            return *m;
        };
        if (k == "--dev")
            a.devs.push_back(val());
        else if (k == "--expect")
            a.expect.push_back(val());
        else if (k == "--says")
            a.says.push_back(val());
        else if (k.rfind("--iova-mode=", 0) == 0)
            a.iova = mode(k.substr(12));
        else if (k == "--iova-mode")
            a.iova = mode(val());
        else if (k == "--expect-mode")
            a.expect_mode = mode(val());
        else if (k == "--count")
            a.count = std::stoull(val());
        else if (k == "--seconds")
            a.seconds = std::stoi(val());
        else if (k == "--netns")
            a.netns = val();
        else if (k == "--tag")
            a.tag = val();
        else if (k == "--to")
            a.to = val();
        else if (k == "--file")
            a.file = val();
        else if (k == "--port")
            a.port = static_cast<uint16_t>(std::stoi(val()));
        else if (k == "--bytes")
            a.bytes = std::stoull(val());
        else if (k == "--seed")
            a.seed = std::stoull(val());
        else if (k == "--expect-iotlb")
            a.fwd.iotlb = val() == "1";
        else if (k == "--expect-tso")
            a.fwd.tso = val() == "1";
        else if (k == "--expect-queues")
            a.fwd.queues = std::stoul(val());
        else
            throw Error("unknown option " + k);
    }
    return a;
}

// Frames of every size from 60 to 1514 bytes, in a spread order.
uint32_t frame_size(uint64_t seq) { return 60 + static_cast<uint32_t>((seq * 389) % 1455); }

struct Setup {
    DeviceSet set;
    DmaMemory mem;
    PacketPool pool;
    std::vector<std::unique_ptr<NetPort>> ports;
    explicit Setup(DeviceSet s) : set(std::move(s)), mem(options(set)), pool(mem, {.count = 4096}) {
        for (size_t i = 0; i < set.size(); i++) ports.push_back(set.open_port(i, mem, pool));
    }
    static DmaMemoryOptions options(const DeviceSet& s) {
        DmaMemoryOptions o = s.memory_options();
        o.region_size = 32 << 20;
        return o;
    }
};

void report_modes(const Args& a, Setup& s) {
    for (size_t i = 0; i < s.ports.size(); i++) {
        const NetPort& p = *s.ports[i];
        const bool bit = virtio::has(p.device_features(), virtio::feature::kAccessPlatform);
        std::printf("INFO %s bit33=%s mode=%s features=%s negotiated=%s\n", p.describe().c_str(),
                    bit ? "offered" : "absent", std::string(to_string(p.iova_mode())).c_str(),
                    hex(p.device_features()).c_str(), hex(p.features()).c_str());
    }
    for (size_t r = 0; r < s.mem.region_count(); r++)
        std::printf("INFO DMA region %zu: %zu bytes in %zu-byte pages, iova 0x%llx\n", r, s.mem.region(r).length(),
                    s.mem.region(r).page_size(), static_cast<unsigned long long>(s.mem.region_iova(r).value));
    // dma=window: the container maps nothing but the windows (the devices can
    // reach nothing else through the IOMMU), never the application's memory.
    bool windows = false;  // of devices behind the VFIO container (vhost-vdpa: the loopback check's VmPin)
    for (const auto& p : s.ports) windows |= p->window() != nullptr && p->describe().rfind("pci:", 0) == 0;
    if (windows) {
        size_t outside = 0, app = 0;
        const auto maps = vfio_container()->mappings();
        for (const auto& [iova, len] : maps) {
            // A window's IOVA range translates to its own pages (in PA mode each
            // hugepage is its own mapping: the map knows every one).
            bool in_window = false;
            for (const auto& p : s.ports)
                if (const DmaMemory* w = p->window()) in_window |= w->map().va(iova, len) != nullptr;
            outside += !in_window;
            app += s.mem.map().va(iova, 1) != nullptr || s.mem.map().va(iova + len - 1, 1) != nullptr;
            std::printf("INFO VFIO mapping iova 0x%llx, %zu bytes%s\n", static_cast<unsigned long long>(iova.value),
                        len, in_window ? " (a window)" : "");
        }
        check(!maps.empty() && outside == 0 && app == 0, "the IOMMU maps only the windows",
              std::to_string(outside) + " mapping(s) outside them, " + std::to_string(app) +
                  " over the application's memory");
    }
    if (a.expect_mode)
        check(s.set.iova_mode() == *a.expect_mode, "process IOVA mode is " + std::string(to_string(*a.expect_mode)),
              "got " + std::string(to_string(s.set.iova_mode())));
}

// The port's own counters, for a failure's diagnosis.
void print_stats(NetPort& port) {
    const QueueStats rx = port.rx_stats(0), tx = port.tx_stats(0);
    std::printf(
        "INFO %s counters: rx %llu packets %llu kicks %llu drops %llu errors; tx %llu packets %llu kicks "
        "%llu errors; %s\n",
        port.describe().c_str(), (unsigned long long)rx.packets, (unsigned long long)rx.kicks,
        (unsigned long long)rx.drops, (unsigned long long)rx.errors, (unsigned long long)tx.packets,
        (unsigned long long)tx.kicks, (unsigned long long)tx.errors,
        port.needs_reset() ? port.fault_report().c_str() : "no fault");
}

// Receives on port q0, checks each frame's checksum, swaps MACs, sends back.
uint64_t reflect(NetPort& port, const std::atomic<bool>& stop, uint64_t limit, std::chrono::seconds max,
                 uint64_t& corrupt) {
    uint64_t n = 0;
    const auto deadline = std::chrono::steady_clock::now() + max;
    Packet* burst[32];
    while (!stop.load(std::memory_order_relaxed) && n < limit && std::chrono::steady_clock::now() < deadline) {
        const uint16_t got = port.rx_burst(0, burst, 32);
        uint16_t verified = 0;
        for (uint16_t i = 0; i < got; i++) {
            uint8_t* d = burst[i]->data();
            const bool probe = burst[i]->pkt_len >= 34 && d[12] == 0x88 && d[13] == (test::kProbeEtherType & 0xff);
            if (!probe && (burst[i]->pkt_len < 34 || d[12] != 0x88 || d[13] != 0xb5)) corrupt++;
            verified += !probe;
            for (int k = 0; k < 6; k++) std::swap(d[k], d[k + 6]);  // macswap
        }
        uint16_t sent = 0;
        while (sent < got && !stop.load(std::memory_order_relaxed)) sent += port.tx_burst(0, burst + sent, got - sent);
        PacketPool::free_bulk(burst + sent, got - sent);
        n += verified;
    }
    return n;
}

void check_traffic(NetPort& port, PacketPool& pool, uint64_t count, const std::string& what, bool macswap = true) {
    test::TrafficOptions o;
    o.per_queue = count;
    o.size = frame_size;
    o.window = 64;
    o.macswap = macswap;
    o.limit = std::chrono::milliseconds(getenv("VM_TRAFFIC_LIMIT_MS") ? atoi(getenv("VM_TRAFFIC_LIMIT_MS")) : 60000);
    // QEMU's hub may lose or reorder the very first frames between two devices
    // that have just started (seen here with packed rings, vireo's old code
    // included; docs/vfio.md): the path is proven first, then every frame counts.
    check(test::wait_path(port, port, pool, 20000), what + ": the path carries frames", "no probe came back");
    const auto t0 = std::chrono::steady_clock::now();
    test::TrafficResult r = run_traffic(port, pool, o);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("INFO %s: sent %llu received %llu bad %llu in %.1f s\n", what.c_str(),
                static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.received),
                static_cast<unsigned long long>(r.bad), s);
    print_stats(port);
    check(r.complete() && r.received == count, what, r.first_problem);
}

int run(const Args& a) {
    if (!a.netns.empty()) vm::enter_netns(a.netns);
    if (a.cmd == "tcp-send") {
        vm::tcp_send(a.to, a.bytes, a.seed, a.seconds);
        return 0;
    }
    if (a.cmd == "tcp-recv") {
        vm::tcp_receive(a.port, a.bytes, a.seed, a.seconds);
        return 0;
    }
    if (a.cmd == "fwd-json") {
        vm::FwdExpectations e = a.fwd;
        if (a.expect_mode) e.mode = std::string(to_string(*a.expect_mode));
        vm::check_fwd_json(a.file, e);
        return 0;
    }
    if (a.cmd == "list") {  // PCI functions and virtio-mmio devices
        const auto devs = list_virtio_net_pci();
        const auto mmio = list_virtio_mmio();
        std::fputs(format_device_list(devs).c_str(), stdout);
        std::fputs(format_mmio_list(mmio).c_str(), stdout);
        for (const std::string& e : a.expect) {
            const auto eq = e.find('=');
            const std::string name = e.substr(0, eq), want = e.substr(eq + 1);
            std::string got = "absent";
            const bool with_iommu = want.find('/') != std::string::npos;  // BDF=pa/uio: the mode and the IOMMU
            auto seen = [&](bool probed, const DmaReport& dma) {
                got = probed && dma.plan.ok ? std::string(to_string(dma.plan.mode)) : "refused";
                if (with_iommu && probed) got.append("/").append(to_string(dma.iommu));
            };
            for (const auto& d : devs)
                if (d.bdf == name) seen(d.probed, d.dma);
            for (const auto& d : mmio)
                if (d.name == name) seen(d.probed, d.dma);
            check(got == want, "list: " + name + " would get " + want, "got " + got);
        }
        return 0;
    }
    if (a.cmd == "mmio-cost") {  // its own transport, no port: the raw register paths
        if (a.devs.size() != 1 || a.devs[0].rfind("mmio:", 0) != 0) throw Error("mmio-cost needs one --dev mmio:NAME");
        vm::report_mmio_cost(a.devs[0].substr(5), a.count);
        return 0;
    }
    if (a.cmd == "refuse") {
        std::string err;
        try {  // probing, memory, ports and start: refused anywhere along the way
            Setup s(DeviceSet::probe(a.devs, a.iova));
            for (auto& p : s.ports) p->start();
        } catch (const Error& e) {
            err = e.what();
        }
        std::printf("INFO refusal: %s\n", err.c_str());
        check(!err.empty(), "refused: " + a.devs.front(), "it was accepted");
        for (const std::string& s : a.says) check(err.find(s) != std::string::npos, "the error says '" + s + "'", err);
        return 0;
    }
    Setup s(DeviceSet::probe(a.devs, a.iova));
    report_modes(a, s);
    for (auto& p : s.ports) p->start();
    // Read before READY: the host may act on READY at once (the link check's set_link).
    const bool link_up_at_ready = !s.ports.empty() && s.ports[0]->link_up();
    std::printf("READY %s%s%s\n", a.cmd.c_str(), a.tag.empty() ? "" : " ", a.tag.c_str());
    std::fflush(stdout);
    if (a.cmd == "loop") {
        if (s.ports.size() != 2) throw Error("loop needs two --dev");
        std::atomic<bool> stop{false};
        uint64_t corrupt = 0, reflected = 0;
        std::thread t(
            [&] { reflected = reflect(*s.ports[1], stop, ~uint64_t{0}, std::chrono::seconds(600), corrupt); });
        check_traffic(*s.ports[0], s.pool, a.count,
                      "loop " + a.devs[0] + " -> " + a.devs[1] + " -> back, " + std::to_string(a.count) + " frames");
        stop = true;
        t.join();
        check(corrupt == 0, "reflector saw only well-formed frames", std::to_string(corrupt) + " corrupt");
    } else if (a.cmd == "reflect") {
        std::atomic<bool> stop{false};
        uint64_t corrupt = 0;
        const uint64_t n = reflect(*s.ports[0], stop, a.count, std::chrono::seconds(a.seconds), corrupt);
        print_stats(*s.ports[0]);
        check(n == a.count && corrupt == 0, "reflected " + std::to_string(a.count) + " frames",
              std::to_string(n) + " reflected, " + std::to_string(corrupt) + " corrupt");
    } else if (a.cmd == "start") {
        check(s.ports[0]->started(), "started " + a.devs[0]);
    } else if (a.cmd == "traffic") {
        check_traffic(*s.ports[0], s.pool, a.count, "traffic " + a.devs[0] + " <-> peer process");
    } else if (a.cmd == "filters") {
        if (s.ports.size() != 2) throw Error("filters needs two --dev");
        vm::check_filters(*s.ports[0], *s.ports[1], s.pool);
    } else if (a.cmd == "sleep") {
        if (s.ports.size() != 2) throw Error("sleep needs two --dev");
        vm::check_sleep(*s.ports[0], *s.ports[1], s.pool);
    } else if (a.cmd == "announce") {
        if (s.ports.size() != 2) throw Error("announce needs two --dev");
        vm::check_announce(*s.ports[0], *s.ports[1], a.seconds);
    } else if (a.cmd == "rss") {
        vm::check_rss(*s.ports[0], s.pool, a.seconds);
    } else if (a.cmd == "loopback") {
        NetPort& p = *s.ports[0];
        // vhost-vdpa pins every page it maps: the process's pinned memory is
        // exactly the memory vireo gave the device (its window, with dma=window).
        const DmaMemory& dm = p.window() != nullptr ? *p.window() : s.mem;
        uint64_t mapped = 0;
        for (size_t r = 0; r < dm.region_count(); r++) mapped += dm.region(r).length();
        const uint64_t pinned = vm::pinned_bytes();
        const auto iotlb = p.iotlb_counters();
        std::printf("INFO VmPin %llu bytes; the device's memory %llu bytes in %zu region(s); IOTLB updates %llu\n",
                    static_cast<unsigned long long>(pinned), static_cast<unsigned long long>(mapped), dm.region_count(),
                    static_cast<unsigned long long>(iotlb ? iotlb->updates : 0));
        if (p.describe().rfind("vhost-vdpa:", 0) == 0) {
            check(pinned == mapped, "the kernel holds exactly the memory vireo mapped (VmPin)",
                  std::to_string(pinned) + " bytes pinned, " + std::to_string(mapped) + " mapped");
            check(iotlb && iotlb->updates == dm.region_count(), "one IOTLB update per region");
        }
        check_traffic(p, s.pool, a.count, "loopback " + p.describe(), false);
    } else if (a.cmd == "speed") {
        const std::string got = to_string(s.ports[0]->link_speed());
        for (const std::string& w : a.says) check(got == w, "link speed: " + w, "the port says " + got);
    } else if (a.cmd == "link") {
        pollfd p{s.ports[0]->config_event_fd(), POLLIN, 0};
        check(p.fd >= 0, "configuration interrupt wired");
        // The host sets the link down when it sees READY, and up again on "LINK DOWN SEEN". A change event
        // may also be one the device raised before (its start): each wait is for an event after which the
        // link reads as wanted, within the bound.
        auto wait_link = [&](bool up) {
            const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(a.seconds);
            for (auto now = std::chrono::steady_clock::now(); now < end; now = std::chrono::steady_clock::now()) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - now).count();
                if (p.fd < 0 || ::poll(&p, 1, static_cast<int>(left)) != 1) return false;
                if (s.ports[0]->poll_config_change() && s.ports[0]->link_up() == up) return true;
            }
            return false;
        };
        check(link_up_at_ready, "link is up before the host takes it down");
        check(wait_link(false), "configuration change event arrived, link down");
        std::printf("LINK DOWN SEEN%s%s\n", a.tag.empty() ? "" : " ", a.tag.c_str());
        std::fflush(stdout);
        check(wait_link(true), "configuration change event arrived, link up again");
    } else {
        throw Error("unknown command " + a.cmd);
    }
    // A clean stop sends what was accepted first (issue 27: without it the
    // reflector's last frames died in the reset, still in its Tx ring).
    for (auto& p : s.ports) {
        const StopReport r = p->stop();
        std::printf("INFO %s stop: %llu frame(s) in flight, %llu undelivered, %.1f ms\n", p->describe().c_str(),
                    static_cast<unsigned long long>(r.tx_in_flight), static_cast<unsigned long long>(r.tx_undelivered),
                    r.waited_ms);
        check(r.tx_undelivered == 0, "clean stop of " + p->describe() + " sent every accepted frame",
              std::to_string(r.tx_undelivered) + " of " + std::to_string(r.tx_in_flight) + " discarded by the reset");
    }
    check(s.pool.in_use() == 0, "every buffer back in the pool", std::to_string(s.pool.in_use()) + " still out");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        run(parse(argc, argv));
    } catch (const std::exception& e) {
        check(false, argc > 1 ? argv[1] : "vireo-vm-check", e.what());
    }
    std::printf("vireo-vm-check: %d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
