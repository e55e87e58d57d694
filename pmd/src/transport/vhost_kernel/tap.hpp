// The kernel side of the exception path: a tap interface whose queues the
// kernel's vhost-net threads serve. vireo creates the tap (or attaches to one
// that exists, e.g. made by `ip tuntap add NAME mode tap multi_queue vnet_hdr`)
// with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, and IFF_MULTI_QUEUE for more than
// one queue pair: one tap file per queue pair, each handed to its own
// /dev/vhost-net with VHOST_NET_SET_BACKEND.
//
// The tap may be moved to another network namespace after vireo opened it
// (`ip link set NAME netns NS`: its files keep working); its link state is
// read in whatever namespace it lives in now (TUNGETDEVNETNS).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vireo::vhost_kernel {

class Tap {
public:
    Tap(const std::string& name, uint16_t queues);
    ~Tap();
    Tap(const Tap&) = delete;
    Tap& operator=(const Tap&) = delete;

    const std::string& name() const noexcept { return name_; }
    int queue_fd(uint16_t pair) const { return fds_.at(pair); }

    // The virtio-net header the tap reads and writes in front of each frame
    // (12 bytes with VERSION_1: struct virtio_net_hdr_v1).
    void set_vnet_header_size(int bytes);
    // What the kernel may hand us: TUN_F_CSUM (frames with a partial
    // checksum: GUEST_CSUM), TUN_F_TSO4/6 (64 KiB TCP segments: GUEST_TSO4/6).
    // What we write is accepted with any offload the header asks for.
    void set_offloads(unsigned tun_flags);

    struct Link {
        bool up = false;  // IFF_UP and IFF_RUNNING (carrier): the kernel sends and receives through it
        unsigned mtu = 0;
    };
    // The interface's state now, in the namespace it lives in.
    Link link() const;

    // A netlink socket in the tap's namespace that becomes readable when a
    // link changes there: stable fd number (link_changed() moves it along
    // when the tap changed namespace).
    int link_event_fd() const noexcept { return events_fd_; }
    // Reads what link_event_fd() holds; true when this tap's up/running
    // state changed since the last call.
    bool link_changed();

private:
    int netns_fd() const;  // the namespace the tap lives in (an fd to close), or -1: ours
    int socket_in_netns(int domain, int type, int protocol) const;
    void open_events();

    std::string name_;
    std::vector<int> fds_;
    int events_fd_ = -1;
    uint64_t events_netns_ = 0;  // inode of the namespace events_fd_ listens in
    bool last_up_ = false;
};

}  // namespace vireo::vhost_kernel
