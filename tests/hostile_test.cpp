// A broken or hostile vhost-user back end never hangs, fools or hijacks
// vireo-fwd. Each case runs the real vireo-fwd (this build's, so under ASan
// in the sanitizer build) against tests/support/fake_backend, a back end that
// misbehaves at one chosen point, and asserts: the exit code, one clear line
// naming the cause, a bounded time, and nothing left behind (socket files,
// hugepage files). Leaks are the ASan build's to catch (LeakSanitizer turns
// any into a failing exit code).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>

#include "support/fake_backend.hpp"
#include "support/fwd_process.hpp"
#include "support/peer_env.hpp"

namespace vireo::test {
namespace {

using Clock = std::chrono::steady_clock;
enum : uint32_t {
    kGetFeatures = 1,
    kSetFeatures = 2,
    kSetMemTable = 5,
    kGetVringBase = 11,
    kGetProtocolFeatures = 15,
    kGetQueueNum = 17,
    kSetVringEnable = 18,
};

std::set<std::string> files_in(const char* dir) {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) out.insert(e.path().string());
    return out;
}

// vireo-fwd against a device string; the result and how long it took.
struct FwdRun {
    int code = -1;
    double seconds = 0;
    std::string out;
};

FwdRun run_fwd(const std::vector<std::string>& args, int kill_after_ms = -1, int limit_ms = 20000,
               std::vector<std::string> prefix = {}) {
    const auto huge_before = files_in("/dev/hugepages");
    const auto t0 = Clock::now();
    Fwd fwd(args, std::move(prefix));
    FwdRun r;
    if (kill_after_ms >= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
        r.code = fwd.finish(true, limit_ms);
    } else {
        r.code = fwd.finish(false, limit_ms);
    }
    r.seconds =
        std::chrono::duration<double>(Clock::now() - t0).count() - (kill_after_ms > 0 ? kill_after_ms / 1e3 : 0);
    r.out = fwd.log();
    EXPECT_EQ(files_in("/dev/hugepages"), huge_before) << "hugepage files left behind";
    return r;
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// The fast timeouts every case uses: a broken back end costs half a second, not five.
std::string dev(const std::string& sock, const std::string& extra = "") {
    return "vhost-user:" + sock + ",timeout_ms=2000,reply_timeout_ms=500" + extra;
}
const std::vector<std::string> kBase = {"--forward-mode=rxonly", "--cores=0", "--stats-period=0", "--duration=1"};

std::vector<std::string> args_for(const std::string& device, std::vector<std::string> base = kBase) {
    base.push_back(device);
    return base;
}

// Exit 2, one line on the output that says `says`, within `seconds`.
void expect_refused(const FwdRun& r, const std::string& says, double seconds) {
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_EQ(lines(r.out), 1) << r.out;
    EXPECT_NE(r.out.find(says), std::string::npos) << r.out;
    EXPECT_LT(r.seconds, seconds) << r.out;
}

class Hostile : public ::testing::Test {
protected:
    std::string sock =
        peer_socket("hostile-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    void TearDown() override { ::unlink(sock.c_str()); }
};

TEST_F(Hostile, PayloadShorterThanItsHeaderSaysIsAnErrorNotAHang) {
    FakeBackend b(sock);
    b.on(kGetFeatures, FakeBackend::truncated_reply(8, 4));
    b.start();
    expect_refused(run_fwd(args_for(dev(sock))), "sent 4 of the 8 payload bytes of the reply to GET_FEATURES", 3);
}

TEST_F(Hostile, AnAnnouncedSizeAboveWhatTheMessageCarriesIsRefusedAtOnce) {
    for (uint32_t announced : {200u, 0xffffffffu}) {
        FakeBackend b(sock);
        b.on(kGetProtocolFeatures, FakeBackend::truncated_reply(announced, 20));
        b.start();
        expect_refused(run_fwd(args_for(dev(sock))),
                       "announced a " + std::to_string(announced) +
                           "-byte payload for the reply to GET_PROTOCOL_FEATURES, which carries at most 8 bytes",
                       3);
    }
}

TEST_F(Hostile, AHeaderInTwoWrites200MsApartIsFine) {
    FakeBackend b(sock);
    b.on(kGetFeatures, [&b](const FakeBackend::Peer& p, const FakeMsg& m) {
        uint8_t msg[20];
        const uint32_t h[3] = {m.request, 0x5, 8};
        std::memcpy(msg, h, 12);
        std::memcpy(msg + 12, &b.features, 8);
        p.write_raw(msg, 5);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        p.write_raw(msg + 5, sizeof msg - 5);
        return true;
    });
    b.start();
    const FwdRun r = run_fwd(args_for(dev(sock)));
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("none leaked"), std::string::npos) << r.out;
}

TEST_F(Hostile, WrongRepliesAreNamed) {
    struct Case {
        FakeBackend::Twist twist;
        const char* says;
    } cases[] = {
        {[](const FakeBackend::Peer& p, const FakeMsg&) {
             p.reply_u64(kGetProtocolFeatures, 1);  // a reply to something else
             return true;
         },
         "answered GET_FEATURES with a reply to GET_PROTOCOL_FEATURES"},
        {[](const FakeBackend::Peer& p, const FakeMsg& m) {
             uint64_t v = 1;
             p.reply(m.request, &v, 8, 0x1);  // no reply flag
             return true;
         },
         "answered GET_FEATURES with a request GET_FEATURES"},
        {[](const FakeBackend::Peer& p, const FakeMsg& m) {
             uint64_t v = 1;
             p.reply(m.request, &v, 8, 0x6);  // protocol version 2
             return true;
         },
         "protocol version 2"},
        {[](const FakeBackend::Peer& p, const FakeMsg& m) {
             uint32_t v = 1;
             p.reply(m.request, &v, 4);  // 4 bytes for a u64
             return true;
         },
         "of 4 bytes (expected 8)"},
    };
    for (const Case& c : cases) {
        FakeBackend b(sock);
        b.on(kGetFeatures, c.twist);
        b.start();
        expect_refused(run_fwd(args_for(dev(sock))), c.says, 3);
    }
}

TEST_F(Hostile, ABackEndThatNeverAnswersIsGivenUpOn) {
    FakeBackend b(sock);
    b.on(kGetFeatures, FakeBackend::stall());
    b.start();
    expect_refused(run_fwd(args_for(dev(sock))), "did not answer the reply to GET_FEATURES in time", 3);
}

TEST_F(Hostile, QueueCountsWiderThanSixteenBitsAreRefusedNotCut) {
    FakeBackend b(sock);
    b.queue_num = 65536;
    b.start();
    expect_refused(run_fwd(args_for(dev(sock))),
                   "answered GET_QUEUE_NUM with 65536 queue pairs (virtio allows 1 to 32768)", 3);
}

// Closing at every step of the handshake and of the start, one run each: never
// a hang, never exit 0, and an exit 2 is one line.
TEST_F(Hostile, ClosingAtEachStepEndsCleanly) {
    for (int step = 1; step <= 20; step++) {
        SCOPED_TRACE("closing at message " + std::to_string(step));
        FakeBackend b(sock);
        b.on_message_number(step, FakeBackend::close_now());
        b.start();
        const FwdRun r = run_fwd(args_for(dev(sock, ",reconnect=0")));
        EXPECT_TRUE(r.code == 1 || r.code == 2) << r.out;
        if (r.code == 2) {
            EXPECT_EQ(lines(r.out), 1) << r.out;
        }
        if (r.code == 1) {
            EXPECT_NE(r.out.find("link down"), std::string::npos) << r.out;
        }
        EXPECT_LT(r.seconds, 4) << r.out;
    }
}

// Without REPLY_ACK nothing confirms SET_MEM_TABLE: a back end that closes
// there must still not let the run pass for a good one.
TEST_F(Hostile, ClosingDuringSetMemTableWithoutReplyAckIsNoticed) {
    FakeBackend b(sock);
    b.protocol_features = 1;  // MQ only
    b.on(kSetMemTable, FakeBackend::close_now());
    b.start();
    const FwdRun r = run_fwd(args_for(dev(sock, ",reconnect=0")));
    EXPECT_NE(r.code, 0) << r.out;
    EXPECT_TRUE(r.out.find("closed the connection") != std::string::npos ||
                r.out.find("could not be sent") != std::string::npos)
        << r.out;
    EXPECT_LT(r.seconds, 4) << r.out;
}

// A GET_VRING_BASE answer cut short at shutdown: the run ends on time.
TEST_F(Hostile, ATruncatedGetVringBaseReplyDoesNotHoldTheShutdown) {
    FakeBackend b(sock);
    b.on(kGetVringBase, FakeBackend::truncated_reply(8, 5));
    b.start();
    const FwdRun r = run_fwd(args_for(dev(sock)));
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_LT(r.seconds, 1 + 2.5) << r.out;  // the 1 s run, one 500 ms reply wait, start-up
}

// VA mode (ACCESS_PLATFORM offered): the back end writes half a request on the
// back-end channel and keeps it open. The port drops the back end (naming the
// channel), and SIGINT still ends vireo-fwd within a second.
TEST_F(Hostile, ATruncatedBackEndChannelRequestDropsTheBackEnd) {
    FakeBackend b(sock);
    b.features |= 1ull << 33;
    b.on(
        kSetVringEnable,
        [](const FakeBackend::Peer& p, const FakeMsg& m) {
            if (m.flags & (1u << 3)) p.reply_u64(m.request, 0);
            const uint32_t h[3] = {1, 0x1, 32};  // IOTLB_MSG of 32 bytes, 10 sent
            ::send(p.backend_fd, h, sizeof h, MSG_NOSIGNAL);
            const uint8_t part[10] = {};
            ::send(p.backend_fd, part, sizeof part, MSG_NOSIGNAL);
            return true;
        },
        2);
    b.start();
    std::vector<std::string> a = {"--forward-mode=rxonly", "--cores=0", "--stats-period=0", dev(sock, ",reconnect=0")};
    const FwdRun r = run_fwd(a, 2500);
    EXPECT_NE(r.out.find("link down: disconnected the back end: back-end channel: vhost-user back end sent 10 of "
                         "the 32 payload bytes"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(r.code, 1) << r.out;  // it ran, and the link was down at the end
    EXPECT_LT(r.seconds, 1.0) << "SIGINT took " << r.seconds << " s\n" << r.out;
}

// SIGINT in each waiting state ends vireo-fwd within a second.
TEST_F(Hostile, SigintEndsEveryWaitWithinASecond) {
    {  // a client retrying its connect
        const FwdRun r = run_fwd({"--stats-period=0", "vhost-user:" + sock + ",timeout_ms=60000"}, 500);
        EXPECT_EQ(r.code, 2) << r.out;
        EXPECT_NE(r.out.find("interrupted"), std::string::npos) << r.out;
        EXPECT_LT(r.seconds, 1.0) << r.out;
    }
    {  // a server waiting for its back end
        const FwdRun r = run_fwd({"--stats-period=0", "vhost-user:" + sock + ",server=1,timeout_ms=60000"}, 500);
        EXPECT_EQ(r.code, 2) << r.out;
        EXPECT_NE(r.out.find("interrupted"), std::string::npos) << r.out;
        EXPECT_LT(r.seconds, 1.0) << r.out;
        struct stat st {};
        EXPECT_NE(::lstat(sock.c_str(), &st), 0) << "the listening socket was left behind";
    }
    {  // negotiating with a back end that never answers
        FakeBackend b(sock);
        b.on(kGetFeatures, FakeBackend::stall());
        b.start();
        const FwdRun r = run_fwd({"--stats-period=0", "vhost-user:" + sock + ",reply_timeout_ms=60000"}, 500);
        EXPECT_EQ(r.code, 2) << r.out;
        EXPECT_LT(r.seconds, 1.0) << r.out;
    }
    {  // forwarding, then shutting down with a back end that stops answering
        FakeBackend b(sock);
        b.on(kGetVringBase, FakeBackend::stall());
        b.start();
        const FwdRun r =
            run_fwd({"--cores=0", "--stats-period=0", "vhost-user:" + sock + ",reply_timeout_ms=60000"}, 800);
        EXPECT_EQ(r.code, 0) << r.out;
        EXPECT_LT(r.seconds, 1.0) << r.out;
    }
}

TEST_F(Hostile, ServerModeNeverTakesOverALiveSocket) {
    // Another process listens here.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, sock.c_str(), sizeof a.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 4), 0);
    expect_refused(run_fwd(args_for("vhost-user:" + sock + ",server=1")), "another process is listening on it", 3);
    // Still ours: the file is there and connections still reach us.
    int c = ::socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(c);
    ::close(fd);
}

TEST_F(Hostile, ServerModeReplacesAStaleSocketAndRemovesItsOwn) {
    {  // a socket file nobody listens on (a back end that died)
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, sock.c_str(), sizeof a.sun_path - 1);
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        ::close(fd);
    }
    FakeBackend b(sock, FakeBackend::Role::Connect);
    b.start();
    const FwdRun r = run_fwd(args_for("vhost-user:" + sock + ",server=1,timeout_ms=5000"));
    EXPECT_EQ(r.code, 0) << r.out;
    struct stat st {};
    EXPECT_NE(::lstat(sock.c_str(), &st), 0) << "vireo-fwd left its socket behind";
    // An accept that times out leaves nothing either.
    const FwdRun t = run_fwd(args_for("vhost-user:" + sock + "x,server=1,timeout_ms=300"));
    expect_refused(t, "no vhost-user back end connected", 3);
    EXPECT_NE(::lstat((sock + "x").c_str(), &st), 0) << "the socket of a failed accept was left behind";
}

TEST_F(Hostile, PathsThatAreNotSocketsSayWhatTheyAre) {
    const std::string file = sock + ".file", dir = sock + ".dir";
    { std::ofstream(file) << "x"; }
    std::filesystem::create_directory(dir);
    expect_refused(run_fwd(args_for("vhost-user:" + file)), "is a regular file, not a vhost-user socket", 3);
    expect_refused(run_fwd(args_for("vhost-user:" + dir)), "is a directory, not a vhost-user socket", 3);
    expect_refused(run_fwd(args_for("vhost-user:" + file + ",server=1")), "is a regular file", 3);
    std::filesystem::remove(file);
    std::filesystem::remove(dir);
}

bool can_drop_to_nobody() { return ::getuid() == 0 && ::access("/usr/bin/setpriv", X_OK) == 0; }

// As an unprivileged user: a root-owned socket is "permission denied" with its
// owner and mode, not "is the back end listening?".
TEST_F(Hostile, PermissionDeniedNamesOwnerAndMode) {
    if (!can_drop_to_nobody()) GTEST_SKIP() << "needs root and setpriv (util-linux) to run vireo-fwd as nobody";
    FakeBackend b(sock);
    b.socket_mode = 0700;
    b.start();
    const FwdRun r = run_fwd(args_for(dev(sock)), -1, 20000,
                             {"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all"});
    expect_refused(r, "Permission denied", 3);
    EXPECT_NE(r.out.find("owned by uid 0, gid 0, mode 0700"), std::string::npos) << r.out;
}

// Without CAP_IPC_LOCK and with an 8 MiB memlock limit: the error names the
// capability and both limits, and says ulimit -l cannot go past the hard one.
TEST_F(Hostile, MemlockLimitNamesTheCapabilityAndBothLimits) {
    if (!can_drop_to_nobody() || ::access("/usr/bin/prlimit", X_OK) != 0)
        GTEST_SKIP() << "needs root, setpriv and prlimit (util-linux) to run vireo-fwd as nobody with a limit";
    FakeBackend b(sock);
    b.socket_mode = 0777;
    b.start();
    const FwdRun r = run_fwd(args_for(dev(sock)), -1, 20000,
                             {"prlimit", "--memlock=8388608:8388608", "setpriv", "--reuid=nobody", "--regid=nogroup",
                              "--clear-groups", "--inh-caps=-all"});
    expect_refused(r, "lacks CAP_IPC_LOCK and its locked-memory limit is 8388608 bytes (soft) / 8388608 bytes (hard)",
                   5);
    EXPECT_NE(r.out.find("ulimit -l cannot help"), std::string::npos) << r.out;
}

TEST_F(Hostile, ARingSizeASplitRingCannotHaveNamesKeyAndDevice) {
    const FwdRun r = run_fwd(args_for("vhost-user:" + sock + ",ring=3"));
    expect_refused(r, "ring=3 is not a power of two", 3);
    EXPECT_NE(r.out.find("vhost-user:" + sock + ",ring=3"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace vireo::test
