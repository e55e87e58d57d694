// Statistics for vireo-fwd. Counters are read while the polling threads run
// (one writer each, 64-bit aligned stores): a period's figures may be a burst
// apart, never torn.
#include "report.hpp"
#include "vireo/base/hex.hpp"

#include <cstdio>

namespace vireo::fwd {
namespace {

std::string fmt(const char* f, double a) {
    char b[64];
    std::snprintf(b, sizeof b, f, a);
    return b;
}

std::string json_string(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            o += b;
            continue;
        }
        o += c;
    }
    return o + "\"";
}

std::string counters_json(const QueueCounters& c) {
    return "\"rx_packets\": " + std::to_string(c.rx_packets) + ", \"rx_bytes\": " + std::to_string(c.rx_bytes) +
           ", \"tx_packets\": " + std::to_string(c.tx_packets) + ", \"tx_bytes\": " + std::to_string(c.tx_bytes) +
           ", \"drops\": " + std::to_string(c.drops) + ", \"errors\": " + std::to_string(c.errors) +
           ", \"rx_bursts\": " + std::to_string(c.rx_bursts) + ", \"tx_bursts\": " + std::to_string(c.tx_bursts) +
           ", \"bounced_bytes\": " + std::to_string(c.bounced_bytes) +
           ", \"copy_cycles\": " + std::to_string(c.copy_cycles) + ", \"slot_waits\": " + std::to_string(c.slot_waits) +
           ", \"rx_tso\": " + std::to_string(c.rx_tso) + ", \"tx_tso\": " + std::to_string(c.tx_tso) +
           ", \"sw_segments\": " + std::to_string(c.sw_segments);
}

std::string rate_line(const Rate& r) {
    return "rx " + fmt("%8.3f", r.rx_pps / 1e6) + " Mpps " + fmt("%7.3f", r.rx_bps / 1e9) + " Gbit/s | tx " +
           fmt("%8.3f", r.tx_pps / 1e6) + " Mpps " + fmt("%7.3f", r.tx_bps / 1e9) + " Gbit/s";
}

}  // namespace

QueueCounters& QueueCounters::operator+=(const QueueCounters& o) {
    rx_packets += o.rx_packets;
    rx_bytes += o.rx_bytes;
    tx_packets += o.tx_packets;
    tx_bytes += o.tx_bytes;
    drops += o.drops;
    errors += o.errors;
    rx_bursts += o.rx_bursts;
    tx_bursts += o.tx_bursts;
    bounced_bytes += o.bounced_bytes;
    copy_cycles += o.copy_cycles;
    slot_waits += o.slot_waits;
    rx_tso += o.rx_tso;
    tx_tso += o.tx_tso;
    sw_segments += o.sw_segments;
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
            const QueueStats rx = ports[p]->rx_stats(q), tx = ports[p]->tx_stats(q);
            QueueCounters& c = s.port[p][q];
            c.rx_packets = rx.packets;
            c.rx_bytes = rx.bytes;
            c.tx_packets = tx.packets;
            c.tx_bytes = tx.bytes;
            c.drops = rx.drops + tx.drops;
            c.errors = rx.errors + tx.errors;
            c.rx_bursts = rx.bursts;
            c.tx_bursts = tx.bursts;
            c.bounced_bytes = rx.bounced_bytes + tx.bounced_bytes;
            c.copy_cycles = rx.copy_cycles + tx.copy_cycles;
            c.slot_waits = tx.slot_waits;
            c.rx_tso = rx.tso;
            c.tx_tso = tx.tso;
            c.sw_segments = tx.sw_segments;
        }
    }
    for (const Stream& st : streams)  // what a full Tx queue refused counts where it was refused
        if (st.tx != nullptr) s.port[st.tx_port][st.txq].drops += st.fwd_drops;
    return s;
}

Rate rate(const QueueCounters& a, const QueueCounters& b, double seconds) {
    if (seconds <= 0) return {};
    return {static_cast<double>(b.rx_packets - a.rx_packets) / seconds,
            static_cast<double>(b.tx_packets - a.tx_packets) / seconds,
            static_cast<double>(b.rx_bytes - a.rx_bytes) * 8 / seconds,
            static_cast<double>(b.tx_bytes - a.tx_bytes) * 8 / seconds};
}

std::string live_lines(const Snapshot& prev, const Snapshot& now, const std::vector<NetPort*>& ports) {
    const double dt = now.t - prev.t;
    std::string out;
    for (size_t p = 0; p < ports.size(); p++) {
        const QueueCounters a = prev.total(p), b = now.total(p);
        out += fmt("[%7.1fs] ", now.t) + "port " + std::to_string(p) + "  " + rate_line(rate(a, b, dt)) + " | drops " +
               std::to_string(b.drops - a.drops) + " errors " + std::to_string(b.errors - a.errors);
        if (ports[p]->window() != nullptr) {  // what the bounce window costs, this period
            const uint64_t frames = (b.rx_packets - a.rx_packets) + (b.tx_packets - a.tx_packets);
            out += " | window " + fmt("%.1f", dt > 0 ? double(b.bounced_bytes - a.bounced_bytes) * 8 / dt / 1e9 : 0.0) +
                   " Gbit/s copied, " +
                   fmt("%.0f", frames ? double(b.copy_cycles - a.copy_cycles) / double(frames) : 0.0) +
                   " cycles/frame, slot waits " + std::to_string(b.slot_waits - a.slot_waits);
        }
        out += "\n";
        if (now.port[p].size() > 1)
            for (size_t q = 0; q < now.port[p].size(); q++)
                out += "            q" + std::to_string(q) + "  " +
                       rate_line(rate(prev.port[p][q], now.port[p][q], dt)) + " | drops " +
                       std::to_string(now.port[p][q].drops - prev.port[p][q].drops) + "\n";
    }
    return out;
}

std::string summary_text(const Snapshot& last, const std::vector<NetPort*>& ports, const RunInfo& info) {
    std::string out = "---- vireo-fwd summary: " + info.mode + ", " + fmt("%.1f", last.t) + " s ----\n";
    for (size_t p = 0; p < ports.size(); p++) {
        const QueueCounters c = last.total(p);
        const Rate r = rate({}, c, last.t);
        out += "port " + std::to_string(p) + " " + ports[p]->describe() + "\n  rx " + std::to_string(c.rx_packets) +
               " packets " + std::to_string(c.rx_bytes) + " bytes, tx " + std::to_string(c.tx_packets) + " packets " +
               std::to_string(c.tx_bytes) + " bytes, drops " + std::to_string(c.drops) + ", errors " +
               std::to_string(c.errors) + "\n  average " + rate_line(r) + "\n  mean burst rx " +
               fmt("%.1f", c.rx_bursts ? double(c.rx_packets) / double(c.rx_bursts) : 0.0) + " tx " +
               fmt("%.1f", c.tx_bursts ? double(c.tx_packets) / double(c.tx_bursts) : 0.0) + " packets\n";
        if (!info.faults[p].empty()) out += "  device fault: " + info.faults[p] + "\n";
        const LinkStatus& l = info.links[p];
        if (l.downs != 0 || !l.up)
            out += "  link " + std::string(l.up ? "up" : "down: " + l.reason) + "; lost " + std::to_string(l.downs) +
                   " time(s), came back " + std::to_string(l.reconnects) + " time(s)\n";
    }
    if (info.sleep_when_idle != 0)
        out += "--sleep-when-idle: slept " + std::to_string(info.sleeps) + " time(s), " + fmt("%.2f", info.asleep_s) +
               " s in all; " + std::to_string(info.wakeups) + " woken by a frame\n";
    if (!info.capture_file.empty())
        out += "--pcap: " + std::to_string(info.captured) + " frame(s) written to " + info.capture_file + ", " +
               std::to_string(info.capture_dropped) + " dropped (the writer fell behind)\n";
    if (info.first_bursts_resent != 0)
        out += "--tx-first: first bursts sent again " + std::to_string(info.first_bursts_resent) +
               " time(s) (loops that had lost every frame)\n";
    out += "buffers: " + std::to_string(info.pool_size - info.pool_in_use_after_stop) + " of " +
           std::to_string(info.pool_size) + " back in the pool" +
           (info.pool_in_use_after_stop == 0 ? " (none leaked)"
                                             : " -- " + std::to_string(info.pool_in_use_after_stop) + " LEAKED") +
           "\n";
    return out;
}

std::string summary_json(const Snapshot& last, const std::vector<NetPort*>& ports, const RunInfo& info) {
    std::string j = "{\n  \"forward_mode\": " + json_string(info.mode) + ",\n  \"duration_s\": " + fmt("%.3f", last.t) +
                    ",\n  \"cores\": [";
    for (size_t i = 0; i < info.cores.size(); i++) j += (i ? ", " : "") + std::to_string(info.cores[i]);
    j += "],\n  \"placement\": " + json_string(info.placement) + ",\n  \"ports\": [\n";
    for (size_t p = 0; p < ports.size(); p++) {
        const NetPort& port = *ports[p];
        const QueueCounters c = last.total(p);
        const Rate r = rate({}, c, last.t);
        j += "    {\"id\": " + std::to_string(p) + ", \"device\": " + json_string(info.devices[p]) +
             ", \"features\": \"" + hex(port.features()) + "\", \"iova_mode\": \"" +
             std::string(to_string(port.iova_mode())) + "\", \"dma\": \"" +
             std::string(to_string(port.dma_plan().arrangement)) +
             "\", \"data_path\": " + json_string(port.data_path()) +
             ", \"iova_why\": " + json_string(port.dma_plan().why) + ", " + counters_json(c) +
             ", \"rx_pps\": " + fmt("%.1f", r.rx_pps) + ", \"tx_pps\": " + fmt("%.1f", r.tx_pps) +
             ", \"fault\": " + json_string(info.faults[p]) +
             ", \"link\": {\"up\": " + (info.links[p].up ? "true" : "false") +
             ", \"reason\": " + json_string(info.links[p].reason) +
             ", \"downs\": " + std::to_string(info.links[p].downs) +
             ", \"reconnects\": " + std::to_string(info.links[p].reconnects) +
             ", \"speed\": " + json_string(p < info.speeds.size() ? info.speeds[p] : "") +
             ", \"announcements\": " + std::to_string(port.announcements()) + "}" + ",\n     \"queues\": [";
        for (size_t q = 0; q < last.port[p].size(); q++)
            j += std::string(q ? ", " : "") + "{\"queue\": " + std::to_string(q) + ", " +
                 counters_json(last.port[p][q]) + "}";
        j += "]}" + std::string(p + 1 < ports.size() ? "," : "") + "\n";
    }
    j += "  ],\n  \"samples\": [";
    for (size_t i = 1; i < info.samples.size(); i++) {
        const Snapshot& a = info.samples[i - 1];
        const Snapshot& b = info.samples[i];
        j += std::string(i > 1 ? "," : "") + "\n    {\"t\": " + fmt("%.3f", b.t) + ", \"ports\": [";
        for (size_t p = 0; p < ports.size(); p++) {
            const Rate r = rate(a.total(p), b.total(p), b.t - a.t);
            j += std::string(p ? ", " : "") + "{\"rx_pps\": " + fmt("%.1f", r.rx_pps) +
                 ", \"tx_pps\": " + fmt("%.1f", r.tx_pps) + "}";
        }
        j += "]}";
    }
    j += "\n  ],\n  \"link_events\": [";
    for (size_t i = 0; i < info.link_events.size(); i++) {
        const auto& e = info.link_events[i];
        j += std::string(i ? ", " : "") + "{\"t\": " + fmt("%.3f", e.t) + ", \"port\": " + std::to_string(e.port) +
             ", \"up\": " + (e.up ? "true" : "false") + ", \"reason\": " + json_string(e.reason) + "}";
    }
    j += "],\n  \"sleep_when_idle\": {\"polls\": " + std::to_string(info.sleep_when_idle) +
         ", \"sleeps\": " + std::to_string(info.sleeps) + ", \"wakeups\": " + std::to_string(info.wakeups) +
         ", \"asleep_s\": " + fmt("%.3f", info.asleep_s) + "}";
    if (!info.capture_file.empty())
        j += ",\n  \"capture\": {\"file\": " + json_string(info.capture_file) +
             ", \"frames\": " + std::to_string(info.captured) +
             ", \"dropped\": " + std::to_string(info.capture_dropped) + "}";
    j += ",\n  \"first_bursts_resent\": " + std::to_string(info.first_bursts_resent) +
         ",\n  \"pool\": {\"size\": " + std::to_string(info.pool_size) +
         ", \"in_use_after_stop\": " + std::to_string(info.pool_in_use_after_stop) +
         ", \"leaked\": " + (info.pool_in_use_after_stop ? "true" : "false") + "}\n}\n";
    return j;
}

}  // namespace vireo::fwd
