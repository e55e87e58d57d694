// The kernel vhost transports' parts that need no vhost module: the IOTLB
// lookup shared with vhost-user, the miss loop (a socket pair stands in for
// the kernel's fd), vhost-vdpa's IOVA range check, the device strings, and the
// tap (created for real where /dev/net/tun and CAP_NET_ADMIN are there):
// offloads, header size, link events, and following the tap into another
// network namespace. The kernel's own vhost-net and vhost-vdpa are exercised
// in the VM lab (tests/vm/guest-vhost-net.sh, guest-vdpa.sh).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "transport/vhost_kernel/vhost_uapi.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "transport/iotlb.hpp"
#include "transport/vhost_kernel/iotlb_loop.hpp"
#include "transport/vhost_kernel/tap.hpp"
#include "transport/vhost_kernel/vhost_vdpa_transport.hpp"
#include "vireo/base/error.hpp"
#include "vireo/iova/dma_memory.hpp"
#include "vireo/pmd/device_string.hpp"

namespace vireo {
namespace {

using vhost_kernel::IotlbLoop;
using vhost_kernel::Tap;
using vhost_kernel::VhostDevice;

DmaMemoryOptions small(IovaMode mode, PaSource src) {
    DmaMemoryOptions o;
    o.mode = mode;
    o.pa_source = src;
    o.region_size = 64 << 10;
    o.region.backing = DmaBacking::Memfd4K;
    o.region.lock = false;
    return o;
}

TEST(Iotlb, AMissIsAnsweredWithTheWholeRegionThatHoldsIt) {
    for (const IovaMode mode : {IovaMode::VA, IovaMode::PA}) {
        DmaMemory mem(small(mode, PaSource::Linear));
        mem.allocate(100 << 10, 4096);  // a second region
        ASSERT_EQ(mem.region_count(), 2u);
        for (size_t i = 0; i < 2; i++) {
            const Iova base = mem.region_iova(i);
            const auto e = iotlb::entry_for(mem, base + mem.region(i).length() - 1);
            ASSERT_TRUE(e);
            EXPECT_EQ(e->iova, base);
            EXPECT_EQ(e->size, mem.region(i).length());
            EXPECT_EQ(e->uaddr, reinterpret_cast<uintptr_t>(mem.region(i).va()));
        }
        // Just past the highest region and just before the lowest: not ours (in VA mode the
        // regions may sit back to back, so "past region 1" can be region 0).
        Iova top{0}, bottom{~uint64_t{0}};
        for (size_t i = 0; i < 2; i++) {
            top = std::max(top, mem.region_iova(i) + mem.region(i).length());
            bottom = std::min(bottom, mem.region_iova(i));
        }
        EXPECT_FALSE(iotlb::entry_for(mem, top));
        EXPECT_FALSE(iotlb::entry_for(mem, bottom - 1));
        EXPECT_FALSE(iotlb::entry_for(mem, Iova{0}));
    }
}

// The kernel's side of a vhost fd: messages are whole datagrams, as on the character device.
struct FakeKernel {
    int ours = -1, kernel = -1;
    FakeKernel() {
        int sv[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        ours = sv[0];
        kernel = sv[1];
    }
    ~FakeKernel() { ::close(kernel); }  // `ours` belongs to the VhostDevice
    void send(uint8_t type, uint64_t iova) const {
        vhost_msg_v2 m{};
        m.type = VHOST_IOTLB_MSG_V2;
        m.iotlb.type = type;
        m.iotlb.iova = iova;
        m.iotlb.size = 1;
        m.iotlb.perm = VHOST_ACCESS_RW;
        ASSERT_EQ(::write(kernel, &m, sizeof m), static_cast<ssize_t>(sizeof m));
    }
    // The next message vireo wrote, waiting for it (bounded).
    std::optional<vhost_msg_v2> receive(int ms = 5000) const {
        pollfd p{kernel, POLLIN, 0};
        if (::poll(&p, 1, ms) != 1) return std::nullopt;
        vhost_msg_v2 m{};
        if (::read(kernel, &m, sizeof m) != static_cast<ssize_t>(sizeof m)) return std::nullopt;
        return m;
    }
};

TEST(IotlbLoop, AnswersMissesFromOurMemoryAndRefusesTheRest) {
    DmaMemory mem(small(IovaMode::VA, PaSource::Linear));
    FakeKernel k;
    VhostDevice dev(k.ours, "fake-vhost");
    IotlbLoop loop({&dev}, [&](Iova iova) { return iotlb::entry_for(mem, iova); });

    const Iova inside = mem.region_iova(0) + 100;
    k.send(VHOST_IOTLB_MISS, inside.value);
    auto m = k.receive();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->type, static_cast<uint32_t>(VHOST_IOTLB_MSG_V2));
    EXPECT_EQ(m->iotlb.type, VHOST_IOTLB_UPDATE);
    EXPECT_EQ(m->iotlb.iova, mem.region_iova(0).value);
    EXPECT_EQ(m->iotlb.size, mem.region(0).length());
    EXPECT_EQ(m->iotlb.uaddr, reinterpret_cast<uintptr_t>(mem.region(0).va()));
    EXPECT_EQ(m->iotlb.perm, VHOST_ACCESS_RW);

    // Not ours: no answer; an access failure is counted. The loop handles one
    // fd's messages in order, so the answer to the last miss shows that the
    // two before it were handled.
    k.send(VHOST_IOTLB_MISS, 0x1000);
    k.send(VHOST_IOTLB_ACCESS_FAIL, inside.value);
    k.send(VHOST_IOTLB_MISS, inside.value);
    m = k.receive();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->iotlb.iova, mem.region_iova(0).value);
    const auto c = loop.counters();
    EXPECT_EQ(c.misses_answered, 2u);
    EXPECT_EQ(c.misses_refused, 1u);
    EXPECT_EQ(c.access_failures, 1u);
    EXPECT_FALSE(k.receive(50));  // nothing else was written
}

TEST(VhostDevice, WritesIotlbMessagesAsTheKernelReadsThem) {
    FakeKernel k;
    VhostDevice dev(k.ours, "fake-vhost");
    dev.iotlb_batch_begin();
    dev.iotlb_update({Iova{0x10000}, 0x2000, 0x7f0000000000});
    dev.iotlb_invalidate(Iova{0x10000}, 0x2000);
    dev.iotlb_batch_end();
    const uint8_t types[] = {VHOST_IOTLB_BATCH_BEGIN, VHOST_IOTLB_UPDATE, VHOST_IOTLB_INVALIDATE,
                             VHOST_IOTLB_BATCH_END};
    for (uint8_t t : types) {
        auto m = k.receive();
        ASSERT_TRUE(m);
        EXPECT_EQ(m->type, static_cast<uint32_t>(VHOST_IOTLB_MSG_V2));
        EXPECT_EQ(m->asid, 0u);
        EXPECT_EQ(m->iotlb.type, t);
        if (t == VHOST_IOTLB_UPDATE) {
            EXPECT_EQ(m->iotlb.iova, 0x10000u);
            EXPECT_EQ(m->iotlb.size, 0x2000u);
            EXPECT_EQ(m->iotlb.uaddr, 0x7f0000000000u);
            EXPECT_EQ(m->iotlb.perm, VHOST_ACCESS_RW);
        }
    }
}

TEST(VdpaRange, MappingsOutsideTheDeviceRangeAreRefusedWithTheFix) {
    const vhost_vdpa_iova_range r{0x1000, (uint64_t{1} << 39) - 1};
    EXPECT_EQ(vdpa_range_error(r, Iova{0x1000}, 0x1000, "d"), "");
    EXPECT_EQ(vdpa_range_error(r, Iova{r.last}, 1, "d"), "");
    EXPECT_NE(vdpa_range_error(r, Iova{0}, 0x1000, "d"), "");
    EXPECT_NE(vdpa_range_error(r, Iova{r.last}, 2, "d"), "");               // runs past the end
    EXPECT_NE(vdpa_range_error(r, Iova{0x7f0000000000}, 0x1000, "d"), "");  // a VA above 2^39
    EXPECT_NE(vdpa_range_error(r, Iova{0x1000}, ~uint64_t{0}, "d"), "");    // wraps
    const std::string e = vdpa_range_error(r, Iova{0}, 0x1000, "vhost-vdpa:/dev/vhost-vdpa-0");
    EXPECT_NE(e.find("vhost-vdpa:/dev/vhost-vdpa-0"), std::string::npos) << e;
    EXPECT_NE(e.find("iova=pa"), std::string::npos) << e;
    const vhost_vdpa_iova_range all{0, ~uint64_t{0}};
    EXPECT_EQ(vdpa_range_error(all, Iova{~uint64_t{0}}, 1, "d"), "");
}

std::string error_of(const std::string& device) {
    try {
        parse_device_string(device);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(DeviceString, NamesTheKernelTransports) {
    DeviceSpec n = parse_device_string("vhost-net:tap=vireo0,queues=2,mac=02:00:00:00:00:01");
    EXPECT_EQ(n.kind, DeviceSpec::Kind::VhostNet);
    EXPECT_EQ(n.path, "vireo0");
    EXPECT_EQ(n.queues, 2);
    EXPECT_TRUE(n.mac_given);
    n = parse_device_string("vhost-net:queues=2,tap=t1");  // the tap is a key like any other
    EXPECT_EQ(n.path, "t1");
    DeviceSpec v = parse_device_string("vhost-vdpa:/dev/vhost-vdpa-0,packed=1");
    EXPECT_EQ(v.kind, DeviceSpec::Kind::VhostVdpa);
    EXPECT_EQ(v.path, "/dev/vhost-vdpa-0");
    EXPECT_NE(error_of("vhost-net:queues=2").find("write vhost-net:tap=NAME"), std::string::npos);
    EXPECT_NE(error_of("vhost-net:tap=waytoolongforaninterface").find("at most 15"), std::string::npos);
    EXPECT_NE(error_of("vhost-vdpa:").find("/dev/vhost-vdpa-N"), std::string::npos);
    EXPECT_NE(error_of("vhost-user:/x,tap=a").find("unknown key 'tap'"), std::string::npos);
    EXPECT_NE(error_of("vhost-kernel:/x").find("vhost-net:"), std::string::npos);
}

// ---- The tap, for real: needs /dev/net/tun and CAP_NET_ADMIN. ----

bool can_make_taps() {
    const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    ::close(fd);
    return ::geteuid() == 0;
}

#define NEED_TAPS()                                                                                   \
    do {                                                                                              \
        if (!can_make_taps()) GTEST_SKIP() << "no /dev/net/tun or not root: the tap tests need both"; \
    } while (0)

std::string tap_name(const char* what) { return "vt" + std::to_string(::getpid() % 100000) + what; }

// Sets IFF_UP on an interface of the namespace `netns_fd` (-1: ours).
void set_up(const std::string& name, bool up, int netns_fd = -1) {
    std::thread([&] {
        if (netns_fd >= 0) {
            ASSERT_EQ(::setns(netns_fd, CLONE_NEWNET), 0) << std::strerror(errno);
        }
        const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(s, 0);
        ifreq ifr{};
        std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
        ASSERT_EQ(::ioctl(s, SIOCGIFFLAGS, &ifr), 0) << std::strerror(errno);
        ifr.ifr_flags = static_cast<short>(up ? ifr.ifr_flags | IFF_UP : ifr.ifr_flags & ~IFF_UP);
        ASSERT_EQ(::ioctl(s, SIOCSIFFLAGS, &ifr), 0) << std::strerror(errno);
        ::close(s);
    }).join();
}

// Waits (bounded) for link_changed() to report a change.
bool change_seen(Tap& t, int ms = 5000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{t.link_event_fd(), POLLIN, 0};
        if (::poll(&p, 1, 100) == 1 && t.link_changed()) return true;
    }
    return false;
}

TEST(Tap, MakesAMultiQueueTapWithTheHeaderAndOffloadsAsked) {
    NEED_TAPS();
    Tap t(tap_name("mq"), 2);
    EXPECT_GE(t.queue_fd(0), 0);
    EXPECT_GE(t.queue_fd(1), 0);
    EXPECT_NO_THROW(t.set_vnet_header_size(12));
    EXPECT_NO_THROW(t.set_offloads(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6));
    EXPECT_NO_THROW(t.set_offloads(0));
    int hdr = 0;
    ASSERT_EQ(::ioctl(t.queue_fd(1), TUNGETVNETHDRSZ, &hdr), 0);
    EXPECT_EQ(hdr, 12);
    EXPECT_THROW(t.set_offloads(TUN_F_TSO4), Error);  // TSO without checksum offload: the kernel refuses
}

TEST(Tap, AttachingWithOtherFlagsSaysHowToMakeTheTap) {
    NEED_TAPS();
    const std::string name = tap_name("sq");
    Tap single(name, 1);
    try {
        Tap multi(name, 2);
        FAIL() << "a single-queue tap took a second queue";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("ip tuntap add " + name), std::string::npos) << e.what();
    }
}

TEST(Tap, LinkFollowsTheInterfaceAndIsEventDriven) {
    NEED_TAPS();
    const std::string name = tap_name("ln");
    Tap t(name, 1);
    EXPECT_FALSE(t.link().up);  // made down
    set_up(name, true);
    ASSERT_TRUE(change_seen(t));
    EXPECT_TRUE(t.link().up);  // up, and our queue gives it carrier
    EXPECT_GT(t.link().mtu, 0u);
    set_up(name, false);
    ASSERT_TRUE(change_seen(t));
    EXPECT_FALSE(t.link().up);
}

// Moves interface `name` of our namespace into the namespace `netns_fd` (RTM_NEWLINK, IFLA_NET_NS_FD).
void move_to_netns(const std::string& name, int netns_fd) {
    const int s = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    ASSERT_GE(s, 0);
    struct {
        nlmsghdr h;
        ifinfomsg i;
        char attrs[64];
    } req{};
    req.h.nlmsg_type = RTM_NEWLINK;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.i.ifi_family = AF_UNSPEC;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    ASSERT_EQ(::ioctl(s, SIOCGIFINDEX, &ifr), 0) << std::strerror(errno);
    req.i.ifi_index = ifr.ifr_ifindex;
    auto* a = reinterpret_cast<rtattr*>(req.attrs);
    a->rta_type = IFLA_NET_NS_FD;
    a->rta_len = RTA_LENGTH(sizeof(int));
    std::memcpy(RTA_DATA(a), &netns_fd, sizeof(int));
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg)) + RTA_ALIGN(a->rta_len);
    ASSERT_EQ(::send(s, &req, req.h.nlmsg_len, 0), static_cast<ssize_t>(req.h.nlmsg_len));
    char buf[512];
    const ssize_t n = ::recv(s, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
    ASSERT_EQ(h->nlmsg_type, NLMSG_ERROR);
    EXPECT_EQ(reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h))->error, 0);
    ::close(s);
}

TEST(Tap, FollowsTheTapIntoAnotherNetworkNamespace) {
    NEED_TAPS();
    // A namespace of our own, held by an fd (unshare on a thread: only it moves).
    int ns = -1;
    std::thread([&] {
        if (::unshare(CLONE_NEWNET) == 0) ns = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    }).join();
    ASSERT_GE(ns, 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno);
    const std::string name = tap_name("ns");
    Tap t(name, 1);
    const int events = t.link_event_fd();
    move_to_netns(name, ns);
    set_up(name, true, ns);
    // The move and the link coming up in the other namespace both arrive on
    // the same fd number: the tap's own namespace is followed.
    ASSERT_TRUE(change_seen(t));
    EXPECT_EQ(t.link_event_fd(), events);
    EXPECT_TRUE(t.link().up);
    set_up(name, false, ns);
    ASSERT_TRUE(change_seen(t));
    EXPECT_FALSE(t.link().up);
    ::close(ns);
}

}  // namespace
}  // namespace vireo
