// Telemetry: DPDK's v2 socket protocol over a process's NetPorts (see
// telemetry.hpp). One thread serves the socket and up to kMaxClients clients.
#include "vireo/pmd/telemetry.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {
namespace {

constexpr size_t kMaxClients = 10;  // DPDK's limit too

struct Command {
    const char* name;
    const char* help;
};
// In the order "/" lists them (sorted, as DPDK does).
constexpr Command kCommands[] = {
    {"/", "Returns a list of available commands. Takes no parameters"},
    {"/ethdev/info", "Returns the device info for a port. Parameters: int port_id"},
    {"/ethdev/link_status", "Returns the link status for a port. Parameters: int port_id"},
    {"/ethdev/list", "Returns list of available ethdev ports. Takes no parameters"},
    {"/ethdev/stats", "Returns the common stats for a port. Parameters: int port_id"},
    {"/ethdev/xstats", "Returns the extended stats for a port. Parameters: int port_id"},
    {"/help", "Returns help text for a command. Parameters: string command"},
    {"/info", "Returns DPDK Telemetry information. Takes no parameters"},
    {"/vireo/iova",
     "Returns the IOVA mode a port's descriptors carry, its VIRTIO_F_ACCESS_PLATFORM (bit 33) and why. "
     "Parameters: int port_id"},
};

std::string quote(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            o += b;
        } else {
            o += c;
        }
    }
    return o + "\"";
}

// {"k": v, ...} built in order.
class Object {
public:
    Object& num(const std::string& k, uint64_t v) { return raw(k, std::to_string(v)); }
    Object& str(const std::string& k, const std::string& v) { return raw(k, quote(v)); }
    Object& boolean(const std::string& k, bool v) { return raw(k, v ? "true" : "false"); }
    Object& raw(const std::string& k, const std::string& v) {
        s_ += (s_.empty() ? "{" : ", ") + quote(k) + ": " + v;
        return *this;
    }
    std::string done() const { return s_.empty() ? "{}" : s_ + "}"; }

private:
    std::string s_;
};

std::string array(const std::vector<uint64_t>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

std::string mac_text(const std::array<uint8_t, 6>& m) {
    char s[18];
    std::snprintf(s, sizeof s, "%02X:%02X:%02X:%02X:%02X:%02X", m[0], m[1], m[2], m[3], m[4], m[5]);
    return s;
}

std::string port_stats(NetPort& p) {
    const uint16_t n = p.queue_pairs();
    std::vector<uint64_t> qip, qop, qib, qob, qerr;
    for (uint16_t q = 0; q < n; q++) {
        const QueueStats rx = p.rx_stats(q), tx = p.tx_stats(q);
        qip.push_back(rx.packets), qop.push_back(tx.packets), qib.push_back(rx.bytes), qob.push_back(tx.bytes);
        qerr.push_back(rx.errors);
    }
    const QueueStats rx = p.rx_totals(), tx = p.tx_totals();
    return Object()
        .num("ipackets", rx.packets)
        .num("opackets", tx.packets)
        .num("ibytes", rx.bytes)
        .num("obytes", tx.bytes)
        .num("imissed", 0)  // frames the device dropped for want of buffers: a virtio device does not say
        .num("ierrors", rx.errors)
        .num("oerrors", tx.errors)
        .num("rx_nombuf", rx.drops)
        .raw("q_ipackets", array(qip))
        .raw("q_opackets", array(qop))
        .raw("q_ibytes", array(qib))
        .raw("q_obytes", array(qob))
        .raw("q_errors", array(qerr))
        .done();
}

std::string port_xstats(NetPort& p) {
    const QueueStats rx = p.rx_totals(), tx = p.tx_totals();
    Object o;
    o.num("rx_good_packets", rx.packets)
        .num("tx_good_packets", tx.packets)
        .num("rx_good_bytes", rx.bytes)
        .num("tx_good_bytes", tx.bytes)
        .num("rx_errors", rx.errors)
        .num("tx_errors", tx.errors)
        .num("rx_mbuf_allocation_errors", rx.drops);
    for (uint16_t q = 0; q < p.queue_pairs(); q++) {
        const QueueStats r = p.rx_stats(q), t = p.tx_stats(q);
        const std::string rq = "rx_q" + std::to_string(q) + "_", tq = "tx_q" + std::to_string(q) + "_";
        o.num(rq + "packets", r.packets).num(rq + "bytes", r.bytes).num(rq + "errors", r.errors);
        o.num(rq + "drops", r.drops).num(rq + "kicks", r.kicks).num(rq + "bursts", r.bursts);
        o.num(rq + "bounced_bytes", r.bounced_bytes).num(rq + "copy_cycles", r.copy_cycles).num(rq + "tso", r.tso);
        o.num(tq + "packets", t.packets).num(tq + "bytes", t.bytes).num(tq + "errors", t.errors);
        o.num(tq + "kicks", t.kicks).num(tq + "bursts", t.bursts).num(tq + "indirect", t.indirect);
        o.num(tq + "bounced_bytes", t.bounced_bytes).num(tq + "copy_cycles", t.copy_cycles);
        o.num(tq + "slot_waits", t.slot_waits).num(tq + "tso", t.tso).num(tq + "sw_segments", t.sw_segments);
    }
    const LinkStatus l = p.link_status();
    return o.num("link_downs", l.downs)
        .num("reconnects", l.reconnects)
        .num("announcements", p.announcements())
        .num("faults", p.needs_reset() ? 1 : 0)
        .done();
}

std::string port_info(NetPort& p, size_t id) {
    return Object()
        .str("name", p.describe())
        .num("state", p.started() ? 1 : 0)
        .num("port_id", id)
        .num("nb_rx_queues", p.queue_pairs())
        .num("nb_tx_queues", p.queue_pairs())
        .num("mtu", p.mtu())
        .str("mac_addr", mac_text(p.mac()))
        .num("rx_desc", p.ring_size())
        .num("tx_desc", p.ring_size())
        .str("data_path", p.data_path())
        .str("features", hex(p.features()))
        .str("device_features", hex(p.device_features()))
        .done();
}

std::string port_link(NetPort& p) {
    if (!p.link_up()) return Object().str("status", "DOWN").done();
    const LinkSpeed s = p.link_speed();
    return Object()
        .str("status", "UP")
        .num("speed", s.mbps)
        .str("duplex", s.duplex == LinkSpeed::Duplex::Full   ? "full-duplex"
                       : s.duplex == LinkSpeed::Duplex::Half ? "half-duplex"
                                                             : "unknown")
        .done();
}

std::string port_iova(NetPort& p) {
    using virtio::feature::kAccessPlatform;
    const DmaPlan& plan = p.dma_plan();
    return Object()
        .str("mode", std::string(to_string(p.iova_mode())))
        .str("dma", std::string(to_string(plan.arrangement)))
        .boolean("bit33_offered", virtio::has(p.device_features(), kAccessPlatform))
        .boolean("bit33_negotiated", virtio::has(p.features(), kAccessPlatform))
        .str("why", plan.why)
        .done();
}

}  // namespace

std::string telemetry_runtime_dir(const std::string& file_prefix) {
    std::string run;
    if (const char* r = std::getenv("RUNTIME_DIRECTORY"); r != nullptr && *r != '\0')
        run = r;
    else if (::getuid() == 0)
        run = "/var/run";
    else if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0')
        run = x;
    else
        run = "/tmp";
    return run + "/dpdk/" + file_prefix;
}

std::string Telemetry::greeting() const {
    return Object()
        .str("version", opts_.version)
        .num("pid", static_cast<uint64_t>(::getpid()))
        .num("max_output_len", kMaxOutputLen)
        .done();
}

std::string Telemetry::answer(const std::string& request) const {
    const size_t comma = request.find(',');
    const std::string cmd = request.substr(0, comma);
    const std::string param = comma == std::string::npos ? "" : request.substr(comma + 1);
    const std::string key = quote(cmd);
    auto reply = [&](const std::string& data) {
        std::string r;
        r.reserve(key.size() + data.size() + 4);
        r.append("{").append(key).append(": ").append(data).append("}");
        if (r.size() > kMaxOutputLen) r.assign("{").append(key).append(": null}");
        return r;
    };
    const std::string null = reply("null");
    auto port = [&]() -> NetPort* {
        size_t id = 0;
        auto [end, ec] = std::from_chars(param.data(), param.data() + param.size(), id);
        if (param.empty() || ec != std::errc() || end != param.data() + param.size() || id >= ports_.size())
            return nullptr;
        return ports_[id];
    };
    if (cmd == "/") {
        std::string s = "[";
        for (size_t i = 0; i < std::size(kCommands); i++) s += (i ? ", " : "") + quote(kCommands[i].name);
        return reply(s + "]");
    }
    if (cmd == "/info") return reply(greeting());
    if (cmd == "/help") {
        for (const Command& c : kCommands)
            if (param == c.name) return reply(Object().str(c.name, c.help).done());
        return null;
    }
    if (cmd == "/ethdev/list") {
        std::vector<uint64_t> ids;
        for (size_t i = 0; i < ports_.size(); i++) ids.push_back(i);
        return reply(array(ids));
    }
    NetPort* p = port();
    if (p == nullptr) return null;
    if (cmd == "/ethdev/stats") return reply(port_stats(*p));
    if (cmd == "/ethdev/xstats") return reply(port_xstats(*p));
    if (cmd == "/ethdev/info") return reply(port_info(*p, static_cast<size_t>(std::stoul(param))));
    if (cmd == "/ethdev/link_status") return reply(port_link(*p));
    if (cmd == "/vireo/iova") return reply(port_iova(*p));
    return null;
}

Telemetry::Telemetry(std::vector<NetPort*> ports, const TelemetryOptions& o) : ports_(std::move(ports)), opts_(o) {
    const std::string dir = telemetry_runtime_dir(o.file_prefix);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw Error("telemetry: cannot create " + dir + ": " + ec.message());
    path_ = dir + "/dpdk_telemetry.v2";
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path_.size() >= sizeof a.sun_path) throw Error("telemetry: socket path too long: " + path_);
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    // A socket left by a process that died is removed; one a live process serves is an error.
    if (int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0); probe >= 0) {
        const bool live = ::connect(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(probe);
        if (live)
            throw Error("telemetry: " + path_ + " is served by another process: give this one another file prefix");
        ::unlink(path_.c_str());
    }
    listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) throw_sys_error("telemetry: socket", errno);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || ::listen(listen_fd_, 1) < 0) {
        const int e = errno;
        ::close(listen_fd_);
        throw_sys_error("telemetry: bind/listen " + path_, e);
    }
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    thread_ = std::thread([this] { serve(); });
}

Telemetry::~Telemetry() {
    uint64_t one = 1;
    ssize_t r = ::write(stop_fd_, &one, sizeof one);
    (void)r;
    if (thread_.joinable()) thread_.join();
    ::close(stop_fd_);
    ::close(listen_fd_);
    ::unlink(path_.c_str());
}

void Telemetry::serve() {
    std::vector<int> clients;
    std::vector<char> buf(1024);
    for (;;) {
        std::vector<pollfd> fds = {{stop_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
        for (int c : clients) fds.push_back({c, POLLIN, 0});
        if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
        if (fds[0].revents != 0) break;
        int accepted = -1;  // not in this round's fds: joins the clients after them
        if (fds[1].revents & POLLIN) {
            const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0 && clients.size() < kMaxClients) {
                const std::string g = greeting();
                if (::send(c, g.data(), g.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(g.size()))
                    accepted = c;
                else
                    ::close(c);
            } else if (c >= 0) {
                ::close(c);  // DPDK also turns away an eleventh client
            }
        }
        std::vector<int> keep;
        for (size_t i = 2; i < fds.size(); i++) {
            const int c = fds[i].fd;
            if (fds[i].revents == 0) {
                keep.push_back(c);
                continue;
            }
            const ssize_t n = ::recv(c, buf.data(), buf.size() - 1, 0);
            if (n <= 0) {
                ::close(c);
                continue;
            }
            std::string req(buf.data(), static_cast<size_t>(n));
            while (!req.empty() && (req.back() == '\n' || req.back() == '\0')) req.pop_back();
            const std::string out = answer(req);
            if (::send(c, out.data(), out.size(), MSG_NOSIGNAL) < 0) {
                ::close(c);
                continue;
            }
            keep.push_back(c);
        }
        if (accepted >= 0) keep.push_back(accepted);
        clients = std::move(keep);
    }
    for (int c : clients) ::close(c);
}

}  // namespace vireo
