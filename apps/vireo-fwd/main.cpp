// vireo-fwd: testpmd-style forwarding over vireo ports.
//
//   vireo-fwd --forward-mode=macswap --nb-cores=1 vhost-user:/tmp/a.sock vhost-user:/tmp/b.sock
//
// Ports come from device strings; ports are paired 0<->1, 2<->3 (an odd last
// port, or a single one, forwards to itself); each queue of a port is one
// stream, and streams are spread over the polling threads, one per core.
#include <poll.h>
#include <signal.h>
#include <x86intrin.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "capture.hpp"
#include "cpu_claims.hpp"
#include "idle.hpp"
#include "options.hpp"
#include "placement.hpp"
#include "report.hpp"
#include "streams.hpp"
#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/pmd/cancel.hpp"
#include "vireo/pmd/device_set.hpp"
#include "vireo/pmd/mmio_discovery.hpp"
#include "vireo/pmd/pci_discovery.hpp"
#include "vireo/pmd/vhost_kernel_discovery.hpp"
#include "vireo/pmd/virtio_spec.hpp"
#include "vireo/telemetry/telemetry.hpp"

using namespace vireo;
using namespace vireo::fwd;

namespace {

volatile sig_atomic_t g_signal = 0;
void on_signal(int s) {
    g_signal = s;
    cancel_waits();  // a connect retry, an accept or a reply wait gives up now
}

// How long every port may take to be ready after start() before the run is given up.
constexpr double kReadyWaitS = 10;

// Adds queues=/ring= from the command line to a device string that lacks them.
std::string with_defaults(std::string dev, const Options& o) {
    auto has = [&](const char* key) { return dev.find(std::string(",") + key + "=") != std::string::npos; };
    if (o.queues > 1 && !has("queues")) dev += ",queues=" + std::to_string(o.queues);
    if (o.ring && !has("ring")) dev += ",ring=" + std::to_string(*o.ring);
    if (o.large_segments && !has("guest_tso4")) dev += ",guest_tso4=1";
    if (o.large_segments && !has("guest_tso6")) dev += ",guest_tso6=1";
    if (!o.rss.empty() && !has("hash_report")) dev += ",hash_report=1";
    if (!o.rss.empty() && !has("rss_types")) dev += ",rss_types=" + o.rss;
    if (o.disable_rss && !has("rss")) dev += ",rss=0";
    return dev;
}

int device_numa_node(const std::vector<ProbedDevice>& devs) {
    for (const auto& d : devs) {
        if (d.spec.kind != DeviceSpec::Kind::Pci) continue;
        std::ifstream f("/sys/bus/pci/devices/" + d.spec.path + "/numa_node");
        int n = -1;
        if (f >> n && n >= 0) return n;
    }
    return -1;
}

// Streams: port p queue q -> peer(p) queue q; generators send on (p, q); sinks only receive.
std::vector<Stream> make_streams(const Options& o, const std::vector<NetPort*>& ports, PacketPool& pool) {
    std::vector<Stream> streams;
    const size_t n = ports.size();
    for (size_t p = 0; p < n; p++) {
        const size_t peer = (p % 2 == 0) ? (p + 1 < n ? p + 1 : p) : p - 1;
        const bool generator = o.mode == Mode::TxOnly || o.mode == Mode::FlowGen;
        const size_t out = generator ? p : peer;
        for (uint16_t q = 0; q < ports[p]->queue_pairs(); q++) {
            Stream s;
            s.rx = generator ? nullptr : ports[p];
            s.rxq = q;
            s.tx = o.mode == Mode::RxOnly ? nullptr : ports[out];
            s.txq = q;
            s.rx_port = static_cast<uint16_t>(p);
            s.tx_port = static_cast<uint16_t>(out);
            s.burst = o.burst;
            s.rx_offloads = s.rx != nullptr && virtio::has(ports[p]->features(), virtio::feature::kNetGuestCsum);
            s.src_mac = ports[out]->mac();
            s.dst_mac = out < o.eth_peer.size() ? o.eth_peer[out]
                                                : std::array<uint8_t, 6>{0x02, 0, 0, 0, 0, static_cast<uint8_t>(out)};
            s.pool = &pool;
            s.segments = o.txpkts;
            s.frame_len = 0;
            for (uint16_t l : o.txpkts) s.frame_len += l;
            s.flows = o.flows;
            s.next_flow = q * 7919 % o.flows;  // queues start on different flows
            s.run = stream_function(o.mode, o.record_core_cycles);
            prepare_headers(s);
            streams.push_back(std::move(s));
        }
    }
    return streams;
}

int run(const Options& o) {
    if (o.list) {
        std::fputs(format_device_list(list_virtio_net_pci()).c_str(), stdout);
        std::fputs(("\n" + format_kernel_vhost_list(list_kernel_vhost())).c_str(), stdout);
        std::fputs(("\n" + format_mmio_list(list_virtio_mmio())).c_str(), stdout);
        return 0;
    }
    std::vector<std::string> devices;
    for (const auto& d : o.devices) devices.push_back(with_defaults(d, o));

    Topology topo;
    if (!o.cores.empty()) topo.place(o.cores, o.nb_cores, -1);  // a bad core list fails before any device opens
    if (!o.json.empty()) {  // an output that cannot be written fails before the run, not after it
        std::ofstream f(o.json);
        if (!f) throw UsageError{"--json=" + o.json + ": cannot write it: " + std::strerror(errno)};
    }
    if (!o.capture.file.empty()) {  // the capture file likewise (the writer truncates it when it starts)
        std::ofstream f(o.capture.file, std::ios::app);
        if (!f) throw UsageError{"--pcap=" + o.capture.file + ": cannot write it: " + std::strerror(errno)};
    }
    // 1. Every device, probed before any memory exists: one IOVA mode for all.
    DeviceSet set = DeviceSet::probe(devices, o.iova, o.dma);
    Placement place = topo.place(o.cores, o.nb_cores, device_numa_node(set.devices()), busy_pinned_threads());
    for (const std::string& w : place.warnings) std::printf("vireo-fwd: warning: %s\n", w.c_str());

    // 2. Memory near the devices, sized for full rings, bursts in flight and per-thread caches.
    uint32_t frame_room = 2048;
    for (uint16_t l : o.txpkts) frame_room = std::max<uint32_t>(frame_room, l);
    uint64_t need = 0;
    for (const auto& d : set.devices()) need += uint64_t{d.spec.queues} * d.spec.ring * 2;
    need += uint64_t{place.cores.size()} * (256 + 2 * o.burst * o.txpkts.size()) + 2048;
    const uint32_t count = o.mbufs ? o.mbufs : static_cast<uint32_t>(std::min<uint64_t>(need, 1u << 22));
    if (place.numa_node >= 0) topo.bind_memory(place.numa_node);
    DmaMemoryOptions mo = set.memory_options();
    mo.region_size = size_t{64} << 20;
    DmaMemory mem(mo);
    PacketPool pool(mem, {.count = count, .data_room = static_cast<uint16_t>(frame_room)});
    if (place.numa_node >= 0) topo.unbind_memory();

    // 3. Ports.
    std::vector<std::unique_ptr<NetPort>> owned;
    std::vector<NetPort*> ports;
    for (size_t i = 0; i < set.size(); i++) {
        owned.push_back(set.open_port(i, mem, pool));
        ports.push_back(owned.back().get());
    }
    for (NetPort* p : ports) p->start();
    // Nothing is generated before every port's device has its rings.
    for (size_t i = 0; i < ports.size(); i++) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(kReadyWaitS);
        while (!ports[i]->ready() && g_signal == 0 && std::chrono::steady_clock::now() < until) {
            const LinkStatus l = ports[i]->link_status();
            if (!l.up && l.downs > 0 && !l.coming_back)  // lost, and reconnect=0: it will not be ready
                throw Error("port " + std::to_string(i) + " (" + ports[i]->describe() +
                            ") lost its back end: " + l.last_loss);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (!ports[i]->ready() && g_signal == 0)
            throw Error("port " + std::to_string(i) + " (" + ports[i]->describe() + ") not ready after " +
                        std::to_string(static_cast<int>(kReadyWaitS)) + " s: " + ports[i]->link_status().reason);
    }
    std::printf("vireo-fwd: %s mode, burst %u, IOVA mode %s, %s; polling on CPU", to_string(o.mode), o.burst,
                std::string(to_string(mem.mode())).c_str(), topo.describe().c_str());
    for (unsigned c : place.cores) std::printf(" %u", c);
    std::printf(" (%s)\n", place.note.c_str());
    for (size_t i = 0; i < ports.size(); i++)
        std::printf(
            "port %zu: %s  mac %s  %u queue pair(s) of %u descriptors  features %s  data path %s\n"
            "        iova %s: %s\n",
            i, ports[i]->describe().c_str(), mac_text(ports[i]->mac()).c_str(), ports[i]->queue_pairs(),
            ports[i]->ring_size(), hex(ports[i]->features()).c_str(), ports[i]->data_path().c_str(),
            std::string(to_string(ports[i]->iova_mode())).c_str(), ports[i]->dma_plan().why.c_str());
    std::fflush(stdout);

    // DPDK telemetry, if asked for: before any thread starts, so that a refusal (another process serves
    // the prefix) is a clean exit.
    std::unique_ptr<Telemetry> telemetry;
    if (!o.telemetry.empty()) {
        telemetry =
            std::make_unique<Telemetry>(ports, TelemetryOptions{o.telemetry, "vireo-fwd", o.telemetry_commands});
        std::printf("telemetry: %s (dpdk-telemetry.py -f %s)%s\n", telemetry->socket_path().c_str(),
                    o.telemetry.c_str(), o.telemetry_commands ? "; port commands on, socket mode 0600" : "");
    }

    // 4. Streams over the polling threads.
    std::vector<Stream> streams = make_streams(o, ports, pool);
    const size_t workers = std::min(place.cores.size(), streams.size());
    if (workers < place.cores.size())
        std::printf("vireo-fwd: %zu streams for %zu cores: using %zu cores\n", streams.size(), place.cores.size(),
                    workers);
    IdleCounters idle_counters;
    if (o.sleep_when_idle != 0) {
        if (const std::string why = idle_sleep_problem(streams); !why.empty()) {
            std::fprintf(stderr, "vireo-fwd: %s\n", why.c_str());
            return 2;
        }
    }
    std::unique_ptr<FwdCapture> capture;
    if (!o.capture.file.empty()) capture = std::make_unique<FwdCapture>(o.capture, ports, streams);
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (size_t w = 0; w < workers; w++)
        threads.emplace_back([&, w] {
            topo.bind_thread(place.cores[w]);
            std::vector<Stream*> mine;
            for (size_t i = w; i < streams.size(); i += workers) mine.push_back(&streams[i]);
            const bool loops = o.tx_first != 0 && o.mode != Mode::RxOnly;
            LoopKeeper keeper{.bursts = o.tx_first};
            if (loops) keeper.start(mine);
            IdleSleeper idle(mine, o.sleep_when_idle, idle_counters);
            for (uint32_t i = 1; !stop.load(std::memory_order_relaxed); i++) {
                for (Stream* s : mine) s->run(*s);
                if (loops && (i & 0xfff) == 0) keeper.check(mine);
                if (o.sleep_when_idle != 0) idle.after_round();
            }
            pool.flush_thread_cache();  // this thread's cached packets back to the shared ring
        });

    // 5. Statistics until the duration ends or a signal comes.
    RunInfo info;
    info.mode = to_string(o.mode);
    info.devices = devices;
    info.cores.assign(place.cores.begin(), place.cores.begin() + static_cast<long>(workers));
    info.placement = place.note;
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t tsc0 = __rdtsc();
    auto now = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    info.samples.push_back(take_snapshot(ports, streams, 0));
    double next = o.stats_period > 0 ? o.stats_period : 1.0;
    std::vector<LinkStatus> links;
    for (NetPort* p : ports) links.push_back(p->link_status());
    std::vector<uint64_t> first_bursts(streams.size(), 1);
    std::vector<std::string> recovered(ports.size());  // faults a queue pair reset handled
    while (g_signal == 0 && (o.duration == 0 || now() < o.duration)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (telemetry != nullptr)  // port commands run here, the ports' control thread
            for (const std::string& line : telemetry->run_pending()) std::printf("[%7.1fs] %s\n", now(), line.c_str());
        // A link that changed, and a loop that had to be restarted: said once, as it happens.
        // (Counted, not only sampled: a link may go down and up between two looks.)
        for (size_t i = 0; i < ports.size(); i++) {
            LinkStatus l = ports[i]->link_status();
            if (l.downs != links[i].downs) {
                std::printf("[%7.1fs] port %zu: link down: %s\n", now(), i, l.last_loss.c_str());
                info.link_events.push_back({now(), i, false, l.last_loss});
            } else if (!l.up && l.reason != links[i].reason) {  // still down, for another reason now
                std::printf("[%7.1fs] port %zu: still down: %s\n", now(), i, l.reason.c_str());
            }
            if (l.reconnects != links[i].reconnects) {
                std::printf("[%7.1fs] port %zu: link up again (reconnect %llu)\n", now(), i,
                            static_cast<unsigned long long>(l.reconnects));
                info.link_events.push_back({now(), i, true, ""});
            }
            // PCI: a configuration change (link status, speed, or the device
            // asking the port to announce itself after a live migration).
            if (pollfd pf{ports[i]->config_event_fd(), POLLIN, 0}; pf.fd >= 0 && ::poll(&pf, 1, 0) == 1) {
                const uint64_t announced = ports[i]->announcements();
                if (ports[i]->poll_config_change()) {
                    const bool up = ports[i]->link_up();
                    std::printf("[%7.1fs] port %zu: configuration change: link %s, %s%s\n", now(), i,
                                up ? "up" : "down", to_string(ports[i]->link_speed()).c_str(),
                                ports[i]->announcements() != announced ? "; announced its MAC (RARP sent, acked)" : "");
                    info.link_events.push_back({now(), i, up, "configuration change"});
                }
            }
            // A pair whose device broke the rules is reset alone where the
            // device can (VIRTIO_F_RING_RESET); the others forward meanwhile.
            if (ports[i]->needs_reset() && virtio::has(ports[i]->features(), virtio::feature::kRingReset)) {
                const std::string fault = ports[i]->fault_report();
                try {
                    const unsigned n = ports[i]->recover_faulted_pairs();
                    std::printf(
                        "[%7.1fs] port %zu: device fault: %s%u queue pair(s) reset alone (VIRTIO_F_RING_RESET)\n",
                        now(), i, fault.c_str(), n);
                    recovered[i] += fault + "(queue pair reset at " + std::to_string(static_cast<int>(now())) + " s) ";
                } catch (const Error& e) {
                    std::printf("[%7.1fs] port %zu: device fault: %scould not reset the pair: %s\n", now(), i,
                                fault.c_str(), e.what());
                }
            }
            std::fflush(stdout);
            links[i] = std::move(l);
        }
        for (size_t i = 0; i < streams.size(); i++) {
            const uint64_t b = read_counter(streams[i].first_bursts);
            if (o.tx_first != 0 && b > first_bursts[i]) {
                std::printf("[%7.1fs] port %u: nothing came back for %d ms; first burst sent again (%llu so far)\n",
                            now(), streams[i].tx_port, kLoopSilenceMs, static_cast<unsigned long long>(b - 1));
                std::fflush(stdout);
            }
            first_bursts[i] = b;
        }
        if (now() < next) continue;
        info.samples.push_back(take_snapshot(ports, streams, now()));
        if (o.stats_period > 0) {
            std::fputs(
                live_lines(info.samples[info.samples.size() - 2], info.samples.back(), ports, o.record_core_cycles)
                    .c_str(),
                stdout);
            std::fflush(stdout);
        }
        next += o.stats_period > 0 ? o.stats_period : 1.0;
    }
    if (g_signal != 0) std::printf("vireo-fwd: signal %d, stopping\n", static_cast<int>(g_signal));

    // 6. Clean shutdown: threads out of the data path, queues drained, every buffer checked.
    telemetry.reset();
    stop = true;
    for (auto& t : threads) t.join();
    Snapshot last = take_snapshot(ports, streams, now());
    info.record_core_cycles = o.record_core_cycles;
    info.tsc_mhz = last.t > 0 ? static_cast<double>(__rdtsc() - tsc0) / last.t / 1e6 : 0;
    for (size_t i = 0; i < ports.size(); i++) info.faults.push_back(recovered[i] + ports[i]->fault_report());
    for (NetPort* p : ports) info.links.push_back(p->link_status());
    for (NetPort* p : ports) info.speeds.push_back(to_string(p->link_speed()));
    info.sleep_when_idle = o.sleep_when_idle;
    info.sleeps = idle_counters.sleeps.load();
    info.wakeups = idle_counters.wakeups.load();
    info.asleep_s = static_cast<double>(idle_counters.asleep_ns.load()) / 1e9;
    for (const Stream& st : streams) info.first_bursts_resent += st.first_bursts > 1 ? st.first_bursts - 1 : 0;
    if (capture != nullptr) {
        capture->finish();
        info.capture_file = o.capture.file;
        info.captured = capture->frames();
        info.capture_dropped = capture->dropped();
    }
    for (NetPort* p : ports) info.stops.push_back(p->stop());  // each waits (bounded) for its Tx to go out
    info.pool_size = pool.size();
    info.pool_in_use_after_stop = pool.in_use();
    std::fputs(summary_text(last, ports, info).c_str(), stdout);
    if (!o.json.empty()) {
        std::ofstream f(o.json);
        f << summary_json(last, ports, info);
        if (!f) throw Error("cannot write " + o.json);
        std::printf("vireo-fwd: summary written to %s\n", o.json.c_str());
    }
    bool faulted = false;
    for (const auto& f : info.faults) faulted |= !f.empty();
    for (const auto& l : info.links) faulted |= !l.up;  // a back end that left and never came back
    return info.pool_in_use_after_stop == 0 && !faulted ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    Options o;
    try {
        o = parse_options(argc, argv);
    } catch (const UsageError& e) {
        if (e.what.empty()) {
            std::fputs(usage().c_str(), stdout);
            return 0;
        }
        std::fprintf(stderr, "vireo-fwd: %s\n", e.what.c_str());
        return 2;
    }
    try {
        return run(o);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "vireo-fwd: %s\n", e.what.c_str());
        return 2;
    } catch (const Error& e) {  // could not start: a device, the memory, the placement
        std::fprintf(stderr, "vireo-fwd: %s\n", e.what());
        return 2;
    }
}
