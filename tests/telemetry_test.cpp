// Telemetry's socket protocol (DPDK v2) against a client written here from
// DPDK's telemetry guide: the greeting, the command list, DPDK's stats field
// names, null for anything unknown, and one live server per file prefix.
// Debian's dpdk-telemetry.py itself talks to vireo-fwd in fwd_test.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "support/error_of.hpp"
#include "support/fake_memory.hpp"
#include "support/fake_transport.hpp"
#include "vireo/base/error.hpp"
#include "vireo/pmd/net_port.hpp"
#include "vireo/pmd/telemetry.hpp"

namespace vireo::test {
namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

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
    EXPECT_TRUE(has(c.greeting, "\"version\": \"vireo-test\"")) << c.greeting;
    EXPECT_TRUE(has(c.greeting, "\"pid\": " + std::to_string(::getpid()))) << c.greeting;
    EXPECT_TRUE(has(c.greeting, "\"max_output_len\": 16384")) << c.greeting;
    const std::string list = c.ask("/");
    for (const char* cmd : {"\"/ethdev/stats\"", "\"/ethdev/xstats\"", "\"/ethdev/list\"", "\"/ethdev/info\"",
                            "\"/ethdev/link_status\"", "\"/help\"", "\"/info\"", "\"/vireo/iova\""})
        EXPECT_TRUE(has(list, cmd)) << list;
    EXPECT_EQ(c.ask("/ethdev/list"), "{\"/ethdev/list\": [0]}");
    const std::string stats = c.ask("/ethdev/stats,0");
    for (const char* k : {"ipackets", "opackets", "ibytes", "obytes", "imissed", "ierrors", "oerrors", "rx_nombuf",
                          "q_ipackets", "q_opackets", "q_ibytes", "q_obytes", "q_errors"})
        EXPECT_TRUE(has(stats, std::string("\"") + k + "\": ")) << stats;
    EXPECT_TRUE(has(stats, "{\"/ethdev/stats\": {\"ipackets\": 0, ")) << stats;
    EXPECT_TRUE(has(c.ask("/ethdev/xstats,0"), "\"tx_q0_indirect\": 0"));
    EXPECT_TRUE(has(c.ask("/ethdev/info,0"), "\"name\": \"fake\""));
    EXPECT_TRUE(has(c.ask("/ethdev/link_status,0"), "\"status\": \"UP\""));
    EXPECT_TRUE(has(c.ask("/vireo/iova,0"), "\"mode\": \"pa\""));
    EXPECT_TRUE(has(c.ask("/help,/ethdev/stats"), "\"/ethdev/stats\": \"Returns the common stats"));
    // Unknown commands and bad parameters: null, as DPDK answers.
    EXPECT_EQ(c.ask("/ethdev/stats,1"), "{\"/ethdev/stats\": null}");
    EXPECT_EQ(c.ask("/ethdev/stats,x"), "{\"/ethdev/stats\": null}");
    EXPECT_EQ(c.ask("/ethdev/stats"), "{\"/ethdev/stats\": null}");
    EXPECT_EQ(c.ask("/nothing/here"), "{\"/nothing/here\": null}");
    EXPECT_EQ(c.ask("/help,/nothing"), "{\"/help\": null}");
    Client second(t.socket_path());  // more than one client at a time
    EXPECT_EQ(second.ask("/ethdev/list"), "{\"/ethdev/list\": [0]}");
    r.port->stop();
    EXPECT_EQ(c.ask("/ethdev/link_status,0"), "{\"/ethdev/link_status\": {\"status\": \"DOWN\"}}");
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

}  // namespace
}  // namespace vireo::test
