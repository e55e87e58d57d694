// Statistics for vireo-fwd. Counters are read while the polling threads run
// (one writer each, 64-bit aligned stores): a period's figures may be a burst
// apart, never torn.
#include "report.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "vireo/base/hex.hpp"

namespace vireo::fwd {
namespace {

nlohmann::ordered_json counters_json(const QueueCounters& c) {
    nlohmann::ordered_json j;
    for (const QueueCounter& k : kQueueCounters) {
        if (k.rx) j[std::string("rx_") + k.name] = c.rx.*k.member;
        if (k.tx) j[std::string("tx_") + k.name] = c.tx.*k.member;
    }
    j["fwd_drops"] = c.fwd_drops;  // refused by a full Tx queue
    j["drops"] = c.drops();        // rx_drops + tx_drops + fwd_drops
    j["errors"] = c.errors();
    return j;
}

std::string rate_line(const Rate& r) {
    return fmt::format("rx {:8.3f} Mpps {:7.3f} Gbit/s | tx {:8.3f} Mpps {:7.3f} Gbit/s", r.rx_pps / 1e6,
                       r.rx_bps / 1e9, r.tx_pps / 1e6, r.tx_bps / 1e9);
}

double ratio(uint64_t a, uint64_t b) { return b != 0 ? double(a) / double(b) : 0.0; }

}  // namespace

QueueCounters& QueueCounters::operator+=(const QueueCounters& o) {
    rx += o.rx;
    tx += o.tx;
    fwd_drops += o.fwd_drops;
    return *this;
}

QueueCounters Snapshot::total(size_t p) const {
    QueueCounters t;
    for (const auto& q : port[p]) t += q;
    return t;
}

Snapshot take_snapshot(const std::vector<NetPort*>& ports, const std::vector<Stream>& streams, double t) {
    Snapshot s;
    s.t = t;
    s.port.resize(ports.size());
    for (size_t p = 0; p < ports.size(); p++) {
        s.port[p].resize(ports[p]->queue_pairs());
        for (uint16_t q = 0; q < ports[p]->queue_pairs(); q++) {
            s.port[p][q].rx = ports[p]->rx_stats(q);
            s.port[p][q].tx = ports[p]->tx_stats(q);
        }
    }
    for (const Stream& st : streams) {
        if (st.tx != nullptr)  // what a full Tx queue refused counts where it was refused
            s.port[st.tx_port][st.txq].fwd_drops += read_counter(st.fwd_drops);
        s.busy_cycles += read_counter(st.busy_cycles);
        s.busy_packets += st.rx != nullptr ? read_counter(st.received) : read_counter(st.sent);
    }
    return s;
}

Rate rate(const QueueCounters& a, const QueueCounters& b, double seconds) {
    if (seconds <= 0) return {};
    return {static_cast<double>(b.rx.packets - a.rx.packets) / seconds,
            static_cast<double>(b.tx.packets - a.tx.packets) / seconds,
            static_cast<double>(b.rx.bytes - a.rx.bytes) * 8 / seconds,
            static_cast<double>(b.tx.bytes - a.tx.bytes) * 8 / seconds};
}

std::string live_lines(const Snapshot& prev, const Snapshot& now, const std::vector<NetPort*>& ports, bool cycles) {
    const double dt = now.t - prev.t;
    std::string out;
    for (size_t p = 0; p < ports.size(); p++) {
        const QueueCounters a = prev.total(p), b = now.total(p);
        out += fmt::format("[{:7.1f}s] port {}  {} | drops {} errors {}", now.t, p, rate_line(rate(a, b, dt)),
                           b.drops() - a.drops(), b.errors() - a.errors());
        if (ports[p]->window() != nullptr)  // what the bounce window costs, this period
            out += fmt::format(
                " | window {:.1f} Gbit/s copied, {:.0f} cycles/frame, slot waits {}",
                dt > 0 ? double(b.rx.bounced_bytes + b.tx.bounced_bytes - a.rx.bounced_bytes - a.tx.bounced_bytes) * 8 /
                             dt / 1e9
                       : 0.0,
                ratio(b.rx.copy_cycles + b.tx.copy_cycles - a.rx.copy_cycles - a.tx.copy_cycles,
                      (b.rx.packets - a.rx.packets) + (b.tx.packets - a.tx.packets)),
                b.tx.slot_waits - a.tx.slot_waits);
        out += "\n";
        if (now.port[p].size() > 1)
            for (size_t q = 0; q < now.port[p].size(); q++)
                out += fmt::format("            q{}  {} | drops {}\n", q,
                                   rate_line(rate(prev.port[p][q], now.port[p][q], dt)),
                                   now.port[p][q].drops() - prev.port[p][q].drops());
    }
    if (cycles)
        out += fmt::format("[{:7.1f}s] CPU cycles/packet {:.2f} on the forwarding cores\n", now.t,
                           ratio(now.busy_cycles - prev.busy_cycles, now.busy_packets - prev.busy_packets));
    return out;
}

std::string summary_text(const Snapshot& last, const std::vector<NetPort*>& ports, const RunInfo& info) {
    std::string out = fmt::format("---- vireo-fwd summary: {}, {:.1f} s ----\n", info.mode, last.t);
    for (size_t p = 0; p < ports.size(); p++) {
        const QueueCounters c = last.total(p);
        out += fmt::format(
            "port {} {}\n  rx {} packets {} bytes, tx {} packets {} bytes, drops {}, errors {}\n  average {}\n"
            "  mean burst rx {:.1f} tx {:.1f} packets\n",
            p, ports[p]->describe(), c.rx.packets, c.rx.bytes, c.tx.packets, c.tx.bytes, c.drops(), c.errors(),
            rate_line(rate({}, c, last.t)), ratio(c.rx.packets, c.rx.bursts), ratio(c.tx.packets, c.tx.bursts));
        if (!info.faults[p].empty()) out += fmt::format("  device fault: {}\n", info.faults[p]);
        if (c.tx.undelivered != 0)
            out += fmt::format("  tx: {} frame(s) accepted but discarded by a device reset (its back end left)\n",
                               c.tx.undelivered);
        if (p < info.stops.size() && info.stops[p].tx_in_flight != 0) {
            const StopReport& s = info.stops[p];
            out += s.tx_undelivered == 0
                       ? fmt::format("  stop: the device sent the {} frame(s) still in flight ({:.1f} ms)\n",
                                     s.tx_in_flight, s.waited_ms)
                       : fmt::format(
                             "  stop: {} of {} frame(s) in flight NOT SENT: the device did not complete them "
                             "in {:.0f} ms (device key stop_timeout_ms)\n",
                             s.tx_undelivered, s.tx_in_flight, s.waited_ms);
        }
        const LinkStatus& l = info.links[p];
        if (l.downs != 0 || !l.up)
            out += fmt::format("  link {}; lost {} time(s), came back {} time(s)\n", l.up ? "up" : "down: " + l.reason,
                               l.downs, l.reconnects);
    }
    if (info.sleep_when_idle != 0)
        out += fmt::format("--sleep-when-idle: slept {} time(s), {:.2f} s in all; {} woken by a frame\n", info.sleeps,
                           info.asleep_s, info.wakeups);
    if (!info.capture_file.empty())
        out += fmt::format("--pcap: {} frame(s) written to {}, {} dropped (the writer fell behind)\n", info.captured,
                           info.capture_file, info.capture_dropped);
    if (info.first_bursts_resent != 0)
        out += fmt::format("--tx-first: first bursts sent again {} time(s) (loops that had lost every frame)\n",
                           info.first_bursts_resent);
    if (info.record_core_cycles)  // testpmd's line (fwd_stats_display), so one parser reads both
        out += fmt::format("CPU cycles/packet={:.2f} (total cycles={} / total {} packets={}) at {:.0f} MHz Clock\n",
                           ratio(last.busy_cycles, last.busy_packets), last.busy_cycles, info.mode, last.busy_packets,
                           info.tsc_mhz);
    const uint64_t leaked = info.pool_in_use_after_stop;
    out += fmt::format("buffers: {} of {} back in the pool{}\n", info.pool_size - leaked, info.pool_size,
                       leaked == 0 ? std::string(" (none leaked)") : fmt::format(" -- {} LEAKED", leaked));
    return out;
}

std::string summary_json(const Snapshot& last, const std::vector<NetPort*>& ports, const RunInfo& info) {
    using Json = nlohmann::ordered_json;  // the fields in the order a reader expects them
    Json j = {{"forward_mode", info.mode},
              {"duration_s", last.t},
              {"cores", info.cores},
              {"placement", info.placement},
              {"ports", Json::array()}};
    for (size_t p = 0; p < ports.size(); p++) {
        const NetPort& port = *ports[p];
        const QueueCounters c = last.total(p);
        const Rate r = rate({}, c, last.t);
        Json o = {{"id", p},
                  {"device", info.devices[p]},
                  {"features", hex(port.features())},
                  {"iova_mode", to_string(port.iova_mode())},
                  {"dma", to_string(port.dma_plan().arrangement)},
                  {"data_path", port.data_path()},
                  {"ring", port.ring_size()},
                  {"iova_why", port.dma_plan().why}};
        if (const auto t = port.iotlb_counters())
            o["iotlb"] = {{"updates", t->updates},
                          {"misses_answered", t->misses_answered},
                          {"misses_refused", t->misses_refused},
                          {"access_failures", t->access_failures}};
        o.update(counters_json(c));
        o["rx_pps"] = r.rx_pps;
        o["tx_pps"] = r.tx_pps;
        o["fault"] = info.faults[p];
        if (p < info.stops.size())
            o["stop"] = {{"tx_in_flight", info.stops[p].tx_in_flight},
                         {"tx_undelivered", info.stops[p].tx_undelivered},
                         {"waited_ms", info.stops[p].waited_ms},
                         {"timed_out", info.stops[p].timed_out}};
        o["link"] = {{"up", info.links[p].up},
                     {"reason", info.links[p].reason},
                     {"downs", info.links[p].downs},
                     {"reconnects", info.links[p].reconnects},
                     {"speed", p < info.speeds.size() ? info.speeds[p] : ""},
                     {"announcements", port.announcements()}};
        o["queues"] = Json::array();
        for (size_t q = 0; q < last.port[p].size(); q++) {
            Json qj = {{"queue", q}};
            qj.update(counters_json(last.port[p][q]));
            o["queues"].push_back(std::move(qj));
        }
        j["ports"].push_back(std::move(o));
    }
    j["samples"] = Json::array();
    for (size_t i = 1; i < info.samples.size(); i++) {
        const Snapshot& a = info.samples[i - 1];
        const Snapshot& b = info.samples[i];
        Json per_port = Json::array();
        for (size_t p = 0; p < ports.size(); p++) {
            const Rate r = rate(a.total(p), b.total(p), b.t - a.t);
            per_port.push_back({{"rx_pps", r.rx_pps}, {"tx_pps", r.tx_pps}});
        }
        Json sample = {{"t", b.t}, {"ports", std::move(per_port)}};
        if (info.record_core_cycles)
            sample["cycles_per_packet"] = ratio(b.busy_cycles - a.busy_cycles, b.busy_packets - a.busy_packets);
        j["samples"].push_back(std::move(sample));
    }
    j["link_events"] = Json::array();
    for (const auto& e : info.link_events)
        j["link_events"].push_back({{"t", e.t}, {"port", e.port}, {"up", e.up}, {"reason", e.reason}});
    j["sleep_when_idle"] = {{"polls", info.sleep_when_idle},
                            {"sleeps", info.sleeps},
                            {"wakeups", info.wakeups},
                            {"asleep_s", info.asleep_s}};
    if (!info.capture_file.empty())
        j["capture"] = {{"file", info.capture_file}, {"frames", info.captured}, {"dropped", info.capture_dropped}};
    if (info.record_core_cycles)
        j["core_cycles"] = {{"cycles_per_packet", ratio(last.busy_cycles, last.busy_packets)},
                            {"busy_cycles", last.busy_cycles},
                            {"packets", last.busy_packets},
                            {"packets_counted", info.mode == "txonly" || info.mode == "flowgen" ? "sent" : "received"},
                            {"tsc_mhz", info.tsc_mhz}};
    j["first_bursts_resent"] = info.first_bursts_resent;
    j["pool"] = {{"size", info.pool_size},
                 {"in_use_after_stop", info.pool_in_use_after_stop},
                 {"leaked", info.pool_in_use_after_stop != 0}};
    // Invalid UTF-8 in a device string or a reason is replaced, never a throw at exit.
    return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace vireo::fwd
