// Telemetry's socket protocol (DPDK v2) against a client written here from
// DPDK's telemetry guide: the greeting, the command list, DPDK's stats field
// names, null for anything unknown, and one live server per file prefix.
// Debian's dpdk-telemetry.py itself talks to vireo-fwd in fwd_test.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/ctrl_rig.hpp"
#include "support/error_of.hpp"
#include "support/fake_memory.hpp"
#include "support/fake_transport.hpp"
#include "vireo/base/error.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/telemetry/telemetry.hpp"

namespace vireo::test {
namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

using Json = nlohmann::json;

// A reply as JSON; one that does not parse is an empty object (the checks then fail, naming what they looked for).
Json parse(const std::string& reply) {
    Json j = Json::parse(reply, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << reply;
    return j.is_discarded() ? Json::object() : j;
}

struct Client {
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    std::string greeting;
    explicit Client(const std::string& path) {
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) greeting = recv_one();
    }
    ~Client() { ::close(fd); }
    std::string recv_one() {
        char b[16384];
        const ssize_t n = ::recv(fd, b, sizeof b, 0);
        return n > 0 ? std::string(b, static_cast<size_t>(n)) : "";
    }
    std::string ask(const std::string& cmd) {
        if (::send(fd, cmd.data(), cmd.size(), 0) < 0) return "";
        return recv_one();
    }
};

struct Rig {
    std::string run = (std::filesystem::temp_directory_path() / ("vireo-tel-" + std::to_string(::getpid()))).string();
    DmaMemory mem{fake_pa_memory()};
    PacketPool pool{mem, {.count = 512, .cache_size = 0}};
    std::unique_ptr<NetPort> port;
    Rig() {
        ::setenv("RUNTIME_DIRECTORY", run.c_str(), 1);
        port = std::make_unique<NetPort>(std::make_unique<FakeTransport>(virtio::bit(virtio::feature::kVersion1)),
                                         parse_device_string("vhost-user:/fake,ring=64"), mem, pool, 0);
        port->start();
    }
    ~Rig() {
        port->stop();
        ::unsetenv("RUNTIME_DIRECTORY");
        std::filesystem::remove_all(run);
    }
};

TEST(Telemetry, SpeaksDpdksV2Protocol) {
    Rig r;
    Telemetry t({r.port.get()}, {.file_prefix = "p1", .version = "vireo-test"});
    EXPECT_EQ(t.socket_path(), r.run + "/dpdk/p1/dpdk_telemetry.v2");
    Client c(t.socket_path());
    const Json hello = parse(c.greeting);
    EXPECT_EQ(hello.value("version", ""), "vireo-test") << c.greeting;
    EXPECT_EQ(hello.value("pid", 0), ::getpid()) << c.greeting;
    EXPECT_EQ(hello.value("max_output_len", 0), 16384) << c.greeting;
    const Json list = parse(c.ask("/"));
    for (const char* cmd :
         {"/ethdev/stats", "/ethdev/xstats", "/ethdev/list", "/ethdev/info", "/ethdev/link_status", "/help", "/info",
          "/vireo/iova", "/vireo/rx_offloads", "/vireo/ring_size", "/vireo/queue_reset"})
        EXPECT_NE(std::find(list["/"].begin(), list["/"].end(), cmd), list["/"].end()) << cmd << " in " << list;
    EXPECT_EQ(parse(c.ask("/ethdev/list")), Json::parse(R"({"/ethdev/list": [0]})"));
    const std::string stats_text = c.ask("/ethdev/stats,0");
    const Json stats = parse(stats_text)["/ethdev/stats"];
    for (const char* k : {"ipackets", "opackets", "ibytes", "obytes", "imissed", "ierrors", "oerrors", "rx_nombuf"})
        EXPECT_EQ(stats.value(k, -1), 0) << k << " in " << stats_text;
    for (const char* k : {"q_ipackets", "q_opackets", "q_ibytes", "q_obytes", "q_errors"})
        EXPECT_EQ(stats.value(k, Json()), Json::array({0})) << k << " in " << stats_text;
    EXPECT_EQ(stats_text.rfind("{\"/ethdev/stats\":{\"ipackets\":0,", 0), 0u) << "DPDK's order\n" << stats_text;
    EXPECT_EQ(parse(c.ask("/ethdev/xstats,0"))["/ethdev/xstats"].value("tx_q0_indirect", -1), 0);
    EXPECT_EQ(parse(c.ask("/ethdev/info,0"))["/ethdev/info"].value("name", ""), "fake");
    EXPECT_EQ(parse(c.ask("/ethdev/info,0"))["/ethdev/info"].value("rx_desc", 0), 64);
    EXPECT_EQ(parse(c.ask("/ethdev/link_status,0"))["/ethdev/link_status"].value("status", ""), "UP");
    EXPECT_EQ(parse(c.ask("/vireo/iova,0"))["/vireo/iova"].value("mode", ""), "pa");
    EXPECT_EQ(
        parse(c.ask("/help,/ethdev/stats"))["/help"].value("/ethdev/stats", "").rfind("Returns the common stats", 0),
        0u);
    // Unknown commands and bad parameters: null, as DPDK answers.
    for (const char* cmd : {"/ethdev/stats,1", "/ethdev/stats,x", "/ethdev/stats", "/nothing/here", "/help,/nothing"}) {
        const std::string name = std::string(cmd).substr(0, std::string(cmd).find(','));
        EXPECT_EQ(parse(c.ask(cmd)), Json({{name, nullptr}})) << cmd;
    }
    Client second(t.socket_path());  // more than one client at a time
    EXPECT_EQ(parse(second.ask("/ethdev/list")), Json::parse(R"({"/ethdev/list": [0]})"));
    r.port->stop();
    EXPECT_EQ(parse(c.ask("/ethdev/link_status,0")), Json::parse(R"({"/ethdev/link_status": {"status": "DOWN"}})"));
}

TEST(Telemetry, OneLiveServerPerPrefixAndStaleSocketsAreReplaced) {
    Rig r;
    std::string path;
    {
        Telemetry a({r.port.get()}, {.file_prefix = "p2"});
        path = a.socket_path();
        const std::string e = error_of([&] { Telemetry b({r.port.get()}, {.file_prefix = "p2"}); });
        EXPECT_TRUE(has(e, "served by another process")) << e;
        EXPECT_TRUE(has(e, "another file prefix")) << e;
    }
    EXPECT_FALSE(std::filesystem::exists(path)) << "the socket goes with the server";
    // A socket file nobody serves (a process that died) is taken over.
    {
        int fd = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        ::close(fd);  // bound, never listening: stale
    }
    Telemetry c({r.port.get()}, {.file_prefix = "p2"});
    Client cl(c.socket_path());
    EXPECT_TRUE(has(cl.greeting, "max_output_len")) << cl.greeting;
}

// Port state is read by anyone who may connect; changing it (rx offloads, ring size, a pair reset)
// takes port_commands, which makes the socket the user's alone and runs the
// command on the application's control thread (run_pending()).
TEST(Telemetry, PortCommandsAreReadOpenlyAndChangedOnlyThroughTheControlThread) {
    using namespace virtio::feature;
    const std::string run =
        (std::filesystem::temp_directory_path() / ("vireo-tel-cmd-" + std::to_string(::getpid()))).string();
    ::setenv("RUNTIME_DIRECTORY", run.c_str(), 1);
    {
        CtrlRig r(virtio::bit(kVersion1) | virtio::bit(kNetMrgRxbuf) | virtio::bit(kNetCtrlVq) |
                  virtio::bit(kNetGuestCsum) | virtio::bit(kNetCtrlGuestOffloads) | virtio::bit(kRingReset));
        r.port->start();
        {
            Telemetry ro({r.port.get()}, {.file_prefix = "ro"});
            Client c(ro.socket_path());
            const Json now = parse(c.ask("/vireo/rx_offloads,0"))["/vireo/rx_offloads"];
            EXPECT_EQ(now.value("csum", false), true) << now;
            EXPECT_EQ(now["negotiated"].value("ctrl_guest_offloads", false), true) << now;
            const std::string off = c.ask("/vireo/rx_offloads,0,none");
            EXPECT_TRUE(has(off, "port commands are off")) << off;
            EXPECT_TRUE(has(off, "--telemetry-commands")) << off;
            EXPECT_TRUE(has(c.ask("/vireo/ring_size,0,128"), "port commands are off"));
            EXPECT_TRUE(has(c.ask("/vireo/queue_reset,0,0"), "port commands are off"));
            EXPECT_EQ(parse(c.ask("/vireo/ring_size,0"))["/vireo/ring_size"].value("ring", 0), 64);
            EXPECT_TRUE(r.commands().empty()) << "nothing reached the device";
            EXPECT_TRUE(r.t->queue_resets.empty());
        }
        Telemetry rw({r.port.get()}, {.file_prefix = "rw", .port_commands = true});
        struct stat st {};
        ASSERT_EQ(::stat(rw.socket_path().c_str(), &st), 0);
        EXPECT_TRUE(S_ISSOCK(st.st_mode));
        EXPECT_EQ(st.st_mode & 0777, 0600u) << "a socket that changes ports is its user's alone";
        EXPECT_FALSE(std::filesystem::exists(rw.socket_path() + ".new"));
        Client c(rw.socket_path());
        EXPECT_EQ(parse(c.ask("/vireo/rx_offloads,0,csum+what")), Json({{"/vireo/rx_offloads", nullptr}}));
        std::string answer;
        std::thread client([&] { answer = c.ask("/vireo/rx_offloads,0,none"); });
        auto pump = [&] {  // this test is the control thread: until a command came and ran (bounded)
            std::vector<std::string> ran;
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            while (ran.empty() && std::chrono::steady_clock::now() < deadline) {
                ran = rw.run_pending();
                std::this_thread::yield();
            }
            return ran;
        };
        std::vector<std::string> lines = pump();
        client.join();
        ASSERT_EQ(lines.size(), 1u);
        EXPECT_EQ(lines[0], "port 0: rx offloads csum=0 tso4=0 tso6=0 (telemetry)");
        EXPECT_EQ(parse(answer)["/vireo/rx_offloads"].value("csum", true), false) << answer;
        ASSERT_EQ(r.commands().size(), 1u);
        EXPECT_EQ(r.commands()[0].cls, virtio::kNetCtrlClassGuestOffloads);
        EXPECT_EQ(r.commands()[0].data, std::vector<uint8_t>(8, 0));
        EXPECT_EQ(r.port->rx_offloads(), RxOffloads{});
        // A refusal comes back as the port's error; nobody calling run_pending() is an error too.
        std::thread refused([&] { answer = c.ask("/vireo/rx_offloads,0,csum+tso4"); });
        lines = pump();
        refused.join();
        EXPECT_TRUE(has(answer, "guest_tso4 was not negotiated")) << answer;
        ASSERT_EQ(lines.size(), 1u);
        EXPECT_TRUE(has(lines[0], "refused")) << lines[0];
        // A ring resize and a queue pair reset (VIRTIO_F_RING_RESET) the same way.
        std::thread resize([&] { answer = c.ask("/vireo/ring_size,0,128"); });
        lines = pump();
        resize.join();
        EXPECT_EQ(parse(answer)["/vireo/ring_size"].value("ring", 0), 128) << answer;
        ASSERT_EQ(lines.size(), 1u);
        EXPECT_EQ(lines[0], "port 0: ring size 128 (telemetry)");
        EXPECT_EQ(r.t->areas.at(0).size, 128);
        std::thread reset([&] { answer = c.ask("/vireo/queue_reset,0,0"); });
        lines = pump();
        reset.join();
        EXPECT_EQ(parse(answer)["/vireo/queue_reset"].value("tx_undelivered", -1), 0) << answer;
        EXPECT_EQ(r.t->queue_resets, (std::vector<uint16_t>{0, 1, 0, 1}));
        EXPECT_EQ(parse(c.ask("/vireo/queue_reset,0,x")), Json({{"/vireo/queue_reset", nullptr}}));
        const std::string waited = c.ask("/vireo/rx_offloads,0,csum");
        EXPECT_TRUE(has(waited, "did not run the command")) << waited;
        EXPECT_TRUE(rw.run_pending().empty()) << "a command that timed out never runs later";
        r.port->stop();
    }
    ::unsetenv("RUNTIME_DIRECTORY");
    std::filesystem::remove_all(run);
}

}  // namespace
}  // namespace vireo::test
