// Telemetry: DPDK's v2 socket protocol over a process's NetPorts (see
// telemetry.hpp). One thread serves the socket and up to kMaxClients clients.
#include "vireo/telemetry/telemetry.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

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
    {"/vireo/queue_reset",
     "Resets one queue pair of a port alone (VIRTIO_F_RING_RESET) while the others forward; needs port commands. "
     "Parameters: int port_id, int queue_pair"},
    {"/vireo/ring_size",
     "Returns a port's descriptors per ring; with a second parameter resizes every ring, one queue pair at a time "
     "(VIRTIO_F_RING_RESET; needs port commands). Parameters: int port_id[, int descriptors]"},
    {"/vireo/rx_offloads",
     "Returns the receive offloads a port's device applies (csum, tso4, tso6) and which were negotiated. With a "
     "second parameter sets them: the ones on joined by '+' (csum+tso4+tso6), or none; setting needs port "
     "commands (vireo-fwd --telemetry-commands). Parameters: int port_id[, string offloads]"},
};

// Objects keep their members in the order written, as DPDK's replies do.
using Json = nlohmann::ordered_json;

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json port_stats(NetPort& p) {
    std::vector<uint64_t> qip, qop, qib, qob, qerr;
    for (uint16_t q = 0; q < p.queue_pairs(); q++) {
        const QueueStats rx = p.rx_stats(q), tx = p.tx_stats(q);
        qip.push_back(rx.packets), qop.push_back(tx.packets), qib.push_back(rx.bytes), qob.push_back(tx.bytes);
        qerr.push_back(rx.errors);
    }
    const QueueStats rx = p.rx_totals(), tx = p.tx_totals();
    return {{"ipackets", rx.packets}, {"opackets", tx.packets}, {"ibytes", rx.bytes},    {"obytes", tx.bytes},
            {"imissed", 0},  // frames the device dropped for want of buffers: a virtio device does not say
            {"ierrors", rx.errors},   {"oerrors", tx.errors},   {"rx_nombuf", rx.drops}, {"q_ipackets", qip},
            {"q_opackets", qop},      {"q_ibytes", qib},        {"q_obytes", qob},       {"q_errors", qerr}};
}

Json port_xstats(NetPort& p) {
    const QueueStats rx = p.rx_totals(), tx = p.tx_totals();
    Json o = {{"rx_good_packets", rx.packets},
              {"tx_good_packets", tx.packets},
              {"rx_good_bytes", rx.bytes},
              {"tx_good_bytes", tx.bytes},
              {"rx_errors", rx.errors},
              {"tx_errors", tx.errors},
              {"rx_mbuf_allocation_errors", rx.drops}};
    for (uint16_t q = 0; q < p.queue_pairs(); q++) {
        const QueueStats r = p.rx_stats(q), t = p.tx_stats(q);
        const std::string rq = "rx_q" + std::to_string(q) + "_", tq = "tx_q" + std::to_string(q) + "_";
        for (const QueueCounter& c : kQueueCounters) {  // net_stats.hpp: every counter, once
            if (c.rx) o[rq + c.name] = r.*c.member;
            if (c.tx) o[tq + c.name] = t.*c.member;
        }
    }
    const LinkStatus l = p.link_status();
    o["link_downs"] = l.downs;
    o["reconnects"] = l.reconnects;
    o["announcements"] = p.announcements();
    o["faults"] = p.needs_reset() ? 1 : 0;
    return o;
}

Json port_info(NetPort& p, size_t id) {
    return {{"name", p.describe()},
            {"state", p.started() ? 1 : 0},
            {"port_id", id},
            {"nb_rx_queues", p.queue_pairs()},
            {"nb_tx_queues", p.queue_pairs()},
            {"mtu", p.mtu()},
            {"mac_addr", mac_text(p.mac(), true)},
            {"rx_desc", p.ring_size()},
            {"tx_desc", p.ring_size()},
            {"data_path", p.data_path()},
            {"features", hex(p.features())},
            {"device_features", hex(p.device_features())}};
}

Json port_link(NetPort& p) {
    if (!p.link_up()) return {{"status", "DOWN"}};
    const LinkSpeed s = p.link_speed();
    return {{"status", "UP"},
            {"speed", s.mbps},
            {"duplex", s.duplex == LinkSpeed::Duplex::Full   ? "full-duplex"
                       : s.duplex == LinkSpeed::Duplex::Half ? "half-duplex"
                                                             : "unknown"}};
}

Json port_iova(NetPort& p) {
    using virtio::feature::kAccessPlatform;
    const DmaPlan& plan = p.dma_plan();
    return {{"mode", to_string(p.iova_mode())},
            {"dma", to_string(plan.arrangement)},
            {"bit33_offered", virtio::has(p.device_features(), kAccessPlatform)},
            {"bit33_negotiated", virtio::has(p.features(), kAccessPlatform)},
            {"why", plan.why}};
}

Json port_rx_offloads(NetPort& p) {
    using namespace virtio::feature;
    const RxOffloads o = p.rx_offloads();
    const virtio::Features& f = p.features();
    return {{"csum", o.csum},
            {"tso4", o.tso4},
            {"tso6", o.tso6},
            {"negotiated",
             {{"csum", virtio::has(f, kNetGuestCsum)},
              {"tso4", virtio::has(f, kNetGuestTso4)},
              {"tso6", virtio::has(f, kNetGuestTso6)},
              {"ctrl_guest_offloads", virtio::has(f, kNetCtrlGuestOffloads)}}}};
}

// "csum+tso4+tso6" (the ones on, any order) or "none".
std::optional<RxOffloads> parse_rx_offloads(const std::string& s) {
    RxOffloads o;
    if (s == "none") return o;
    std::istringstream in(s);
    std::string item;
    while (std::getline(in, item, '+')) {
        if (item == "csum")
            o.csum = true;
        else if (item == "tso4")
            o.tso4 = true;
        else if (item == "tso6")
            o.tso6 = true;
        else
            return std::nullopt;
    }
    return o;
}

// A parameter that is a whole number 0..65535.
std::optional<uint16_t> number16(const std::string& s) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > 0xffff) return std::nullopt;
    return static_cast<uint16_t>(v);
}

std::string rx_offloads_text(const RxOffloads& o) {
    return std::string("csum=") + (o.csum ? "1" : "0") + " tso4=" + (o.tso4 ? "1" : "0") +
           " tso6=" + (o.tso6 ? "1" : "0");
}

}  // namespace

// A port command on its way to the control thread.
struct Telemetry::Job {
    std::function<std::string(std::string& log)> work;
    std::string answer, log;
    bool taken = false, done = false;
};

std::string Telemetry::run_on_control_thread(const std::string& cmd,
                                             std::function<std::string(std::string& log)> work) const {
    auto job = std::make_shared<Job>();
    job->work = std::move(work);
    std::unique_lock lock(jobs_mu_);
    jobs_.push_back(job);
    if (!jobs_cv_.wait_for(lock, std::chrono::milliseconds(kCommandWaitMs), [&] { return job->taken || closing_; }) ||
        !job->taken) {
        std::erase(jobs_, job);  // never started: it never will
        return dump({{cmd,
                      {{"error", "the application did not run the command within " + std::to_string(kCommandWaitMs) +
                                     " ms (its control thread calls Telemetry::run_pending())"}}}});
    }
    jobs_cv_.wait(lock, [&] { return job->done; });
    return job->answer;
}

std::vector<std::string> Telemetry::run_pending() {
    std::vector<std::string> lines;
    std::unique_lock lock(jobs_mu_);
    while (!jobs_.empty()) {
        std::shared_ptr<Job> job = jobs_.front();
        jobs_.pop_front();
        job->taken = true;
        lock.unlock();
        job->answer = job->work(job->log);
        lock.lock();
        job->done = true;
        if (!job->log.empty()) lines.push_back(job->log);
        jobs_cv_.notify_all();
    }
    return lines;
}

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
    return dump({{"version", opts_.version}, {"pid", ::getpid()}, {"max_output_len", kMaxOutputLen}});
}

std::string Telemetry::answer(const std::string& request) const {
    const size_t comma = request.find(',');
    const std::string cmd = request.substr(0, comma);
    const std::string params = comma == std::string::npos ? "" : request.substr(comma + 1);
    const size_t comma2 = params.find(',');
    const std::string param = params.substr(0, comma2);  // the first: a port id for the port commands
    const std::optional<std::string> second =
        comma2 == std::string::npos ? std::nullopt : std::optional<std::string>(params.substr(comma2 + 1));
    // {"<command>": data}; null for an unknown command, a bad parameter or an answer too long.
    auto reply = [&](Json data) {
        std::string r = dump({{cmd, std::move(data)}});
        return r.size() <= kMaxOutputLen ? r : dump({{cmd, nullptr}});
    };
    auto port = [&]() -> NetPort* {
        size_t id = 0;
        auto [end, ec] = std::from_chars(param.data(), param.data() + param.size(), id);
        if (param.empty() || ec != std::errc() || end != param.data() + param.size() || id >= ports_.size())
            return nullptr;
        return ports_[id];
    };
    if (cmd == "/") {
        Json names = Json::array();
        for (const Command& c : kCommands) names.push_back(c.name);
        return reply(std::move(names));
    }
    if (cmd == "/info") return reply(Json::parse(greeting()));
    if (cmd == "/help") {
        for (const Command& c : kCommands)
            if (param == c.name) return reply({{c.name, c.help}});
        return reply(nullptr);
    }
    if (cmd == "/ethdev/list") {
        Json ids = Json::array();
        for (size_t i = 0; i < ports_.size(); i++) ids.push_back(i);
        return reply(std::move(ids));
    }
    NetPort* p = port();
    const bool takes_second = cmd == "/vireo/rx_offloads" || cmd == "/vireo/ring_size" || cmd == "/vireo/queue_reset";
    if (p == nullptr || (second && !takes_second)) return reply(nullptr);
    if (cmd == "/ethdev/stats") return reply(port_stats(*p));
    if (cmd == "/ethdev/xstats") return reply(port_xstats(*p));
    if (cmd == "/ethdev/info") return reply(port_info(*p, static_cast<size_t>(std::stoul(param))));
    if (cmd == "/ethdev/link_status") return reply(port_link(*p));
    if (cmd == "/vireo/iova") return reply(port_iova(*p));
    // A command that changes the port: run on the control thread and logged;
    // the port's refusal comes back as {"error": ...}.
    auto change = [&](const std::string& what, std::function<Json()> act) {
        if (!opts_.port_commands)
            return reply({{"error",
                           "port commands are off: start vireo-fwd with --telemetry-commands (the socket is "
                           "then its user's alone)"}});
        return run_on_control_thread(
            cmd, [cmd, what = "port " + param + ": " + what, act = std::move(act)](std::string& log) -> std::string {
                try {
                    Json j = act();
                    log = what + " (telemetry)";
                    return dump({{cmd, std::move(j)}});
                } catch (const Error& e) {
                    log = what + " refused: " + e.what();
                    return dump({{cmd, {{"error", e.what()}}}});
                }
            });
    };
    if (cmd == "/vireo/rx_offloads") {
        if (!second) return reply(port_rx_offloads(*p));
        const std::optional<RxOffloads> want = parse_rx_offloads(*second);
        if (!want) return reply(nullptr);
        return change("rx offloads " + rx_offloads_text(*want), [p, o = *want] {
            p->set_rx_offloads(o);
            return port_rx_offloads(*p);
        });
    }
    if (cmd == "/vireo/ring_size") {
        if (!second) return reply({{"ring", p->ring_size()}, {"queue_pair_resets", p->queue_pair_resets()}});
        const std::optional<uint16_t> ring = number16(*second);
        if (!ring) return reply(nullptr);
        return change("ring size " + *second, [p, n = *ring] {
            p->set_ring_size(n);
            return Json{{"ring", p->ring_size()}, {"queue_pair_resets", p->queue_pair_resets()}};
        });
    }
    if (cmd == "/vireo/queue_reset") {
        const std::optional<uint16_t> q = second ? number16(*second) : std::nullopt;
        if (!q) return reply(nullptr);
        return change("queue pair " + *second + " reset", [p, q = *q] {
            const QueueResetReport r = p->reset_queue_pair(q);
            return Json{{"tx_in_flight", r.tx.tx_in_flight},
                        {"tx_undelivered", r.tx.tx_undelivered},
                        {"rx_discarded", r.rx_discarded},
                        {"gate_ms", r.gate_ms}};
        });
    }
    return reply(nullptr);
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
    // With port commands the socket is the user's alone from the moment it
    // can be reached: bound under another name, made 0600, then renamed.
    const std::string bound = opts_.port_commands ? path_ + ".new" : path_;
    sockaddr_un at = a;
    std::snprintf(at.sun_path, sizeof at.sun_path, "%s", bound.c_str());
    if (bound.size() >= sizeof at.sun_path) throw Error("telemetry: socket path too long: " + bound);
    ::unlink(bound.c_str());
    listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) throw_sys_error("telemetry: socket", errno);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&at), sizeof at) < 0 ||
        (opts_.port_commands && (::chmod(bound.c_str(), 0600) < 0 || ::rename(bound.c_str(), path_.c_str()) < 0)) ||
        ::listen(listen_fd_, 1) < 0) {
        const int e = errno;
        ::close(listen_fd_);
        ::unlink(bound.c_str());
        throw_sys_error("telemetry: bind/listen " + path_, e);
    }
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    thread_ = std::thread([this] { serve(); });
}

Telemetry::~Telemetry() {
    {
        std::lock_guard lock(jobs_mu_);
        closing_ = true;
    }
    jobs_cv_.notify_all();
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
