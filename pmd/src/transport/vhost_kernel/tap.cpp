#include "transport/vhost_kernel/tap.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "vireo/base/error.hpp"

namespace vireo::vhost_kernel {

Tap::Tap(const std::string& name, uint16_t queues) : name_(name) {
    if (name.empty() || name.size() >= IFNAMSIZ)
        throw Error("vhost-net: tap name '" + name + "' must have 1 to " + std::to_string(IFNAMSIZ - 1) +
                    " characters");
    try {
        for (uint16_t q = 0; q < queues; q++) {
            const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
            if (fd < 0)
                throw_sys_error("vhost-net: /dev/net/tun", errno,
                                errno == ENOENT ? "load the tun module (modprobe tun)" : "run as root (CAP_NET_ADMIN)");
            fds_.push_back(fd);
            ifreq ifr{};
            std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
            ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (queues > 1 ? IFF_MULTI_QUEUE : 0);
            if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
                const int e = errno;
                throw_sys_error("vhost-net: attaching queue " + std::to_string(q) + " of tap " + name + " (TUNSETIFF)",
                                e,
                                e == EINVAL ? "a tap of that name exists with other flags: delete it, or make it with "
                                              "`ip tuntap add " +
                                                  name + " mode tap vnet_hdr" + (queues > 1 ? " multi_queue" : "") + "`"
                                : e == EBUSY ? "another process holds it (a single-queue tap takes one reader)"
                                             : "");
            }
        }
    } catch (...) {
        for (int fd : fds_) ::close(fd);
        throw;
    }
    open_events();
    last_up_ = link().up;
}

Tap::~Tap() {
    if (events_fd_ >= 0) ::close(events_fd_);
    for (int fd : fds_) ::close(fd);
}

void Tap::set_vnet_header_size(int bytes) {
    if (::ioctl(fds_.at(0), TUNSETVNETHDRSZ, &bytes) != 0)
        throw_sys_error("vhost-net: tap " + name_ + ": TUNSETVNETHDRSZ " + std::to_string(bytes), errno);
}

void Tap::set_offloads(unsigned tun_flags) {
    if (::ioctl(fds_.at(0), TUNSETOFFLOAD, static_cast<unsigned long>(tun_flags)) != 0)
        throw_sys_error("vhost-net: tap " + name_ + ": TUNSETOFFLOAD " + std::to_string(tun_flags), errno);
}

int Tap::netns_fd() const {
    return ::ioctl(fds_.at(0), TUNGETDEVNETNS);  // -1 (before Linux 5.2, or not permitted): our own
}

// A socket belongs to the namespace of the thread that made it: make it on a
// thread that entered the tap's namespace (setns of a network namespace
// changes only the calling thread).
int Tap::socket_in_netns(int domain, int type, int protocol) const {
    const int ns = netns_fd();
    if (ns < 0) return ::socket(domain, type, protocol);
    int fd = -1, err = 0;
    std::thread([&] {
        if (::setns(ns, CLONE_NEWNET) != 0) {
            err = errno;
            return;
        }
        fd = ::socket(domain, type, protocol);
        if (fd < 0) err = errno;
    }).join();
    ::close(ns);
    if (fd < 0) errno = err;
    return fd;
}

Tap::Link Tap::link() const {
    Link l;
    ifreq ifr{};
    if (::ioctl(fds_.at(0), TUNGETIFF, &ifr) != 0) return l;  // its current name (it may have been renamed)
    const int s = socket_in_netns(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0) return l;
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) l.up = (ifr.ifr_flags & IFF_UP) != 0 && (ifr.ifr_flags & IFF_RUNNING) != 0;
    if (::ioctl(s, SIOCGIFMTU, &ifr) == 0) l.mtu = static_cast<unsigned>(ifr.ifr_mtu);
    ::close(s);
    return l;
}

void Tap::open_events() {
    const int s = socket_in_netns(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (s < 0) throw_sys_error("vhost-net: tap " + name_ + ": a netlink socket for its link events", errno);
    sockaddr_nl a{};
    a.nl_family = AF_NETLINK;
    a.nl_groups = RTMGRP_LINK;
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        const int e = errno;
        ::close(s);
        throw_sys_error("vhost-net: tap " + name_ + ": subscribing to link events", e);
    }
    const int ns = netns_fd();
    struct stat st {};
    events_netns_ = ns >= 0 && ::fstat(ns, &st) == 0 ? st.st_ino : 0;
    if (ns >= 0) ::close(ns);
    if (events_fd_ < 0) {
        events_fd_ = s;
    } else {
        ::dup3(s, events_fd_, O_CLOEXEC);  // the same fd number: whoever polls it keeps it
        ::close(s);
    }
}

bool Tap::link_changed() {
    char buf[8192];
    while (::recv(events_fd_, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    // The tap moved to another namespace: listen there from now on (the move
    // itself shows here as the link going away).
    const int ns = netns_fd();
    struct stat st {};
    const uint64_t now = ns >= 0 && ::fstat(ns, &st) == 0 ? st.st_ino : 0;
    if (ns >= 0) ::close(ns);
    if (now != events_netns_) open_events();
    const bool up = link().up;
    if (up == last_up_) return false;
    last_up_ = up;
    return true;
}

}  // namespace vireo::vhost_kernel
