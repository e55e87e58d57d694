// libFuzzer target: the fuzzer plays the vhost-user back end. Its input is a
// list of chunks, each written to vireo on one of two sockets, in pieces
// wherever the fuzzer cuts them, with a file descriptor attached or not:
//   [kind][len][len bytes]  kind & 1: attach an eventfd; kind & 2: the
//   back-end channel (written once vireo handed it over) instead of the
//   front-end socket.
// vireo runs its whole control path over them: the handshake (features,
// protocol features, queue count), feature negotiation, the device start
// (memory table, IOTLB updates with ACCESS_PLATFORM, ring setup, the back-end
// channel with its own thread answering IOTLB misses) and the reset. Every
// reply vireo waits for may be missing, short, long, wrong or garbage; the
// peer closes its write side after the input, so a missing reply is EOF, not
// a timeout. Invariants: no crash, no sanitizer report, no hang (libFuzzer's
// -timeout), every thread joined. Built by ci/fuzz.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "transport/vhost_user/transport.hpp"
#include "vireo/base/error.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace {

using namespace vireo;

struct Chunk {
    bool fd, backend;
    std::vector<uint8_t> bytes;
};

void send_chunk(int sock, const Chunk& c) {
    int efd = c.fd ? ::eventfd(0, EFD_CLOEXEC) : -1;
    iovec iov{const_cast<uint8_t*>(c.bytes.data()), c.bytes.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))];
    if (efd >= 0) {
        m.msg_control = ctrl;
        m.msg_controllen = sizeof ctrl;
        cmsghdr* h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(h), &efd, sizeof(int));
    }
    if (!c.bytes.empty()) ::sendmsg(sock, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (efd >= 0) ::close(efd);
}

// The back end's side: its bytes out, vireo's messages read (and the
// back-end channel's fd taken from SET_BACKEND_REQ_FD).
void peer(int sock, const std::vector<Chunk>& chunks) {
    for (const Chunk& c : chunks)
        if (!c.backend) send_chunk(sock, c);
    ::shutdown(sock, SHUT_WR);
    int backend = -1;
    uint8_t buf[4096];
    for (;;) {
        alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * 8)];
        iovec iov{buf, sizeof buf};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctrl;
        m.msg_controllen = sizeof ctrl;
        const ssize_t n = ::recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
        if (n <= 0) break;
        for (cmsghdr* h = CMSG_FIRSTHDR(&m); h != nullptr; h = CMSG_NXTHDR(&m, h)) {
            const size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                const int fd = reinterpret_cast<const int*>(CMSG_DATA(h))[i];
                uint32_t request;
                std::memcpy(&request, buf, 4);
                if (backend < 0 && n >= 12 && request == vhost::kSetBackendReqFd) {
                    backend = fd;
                    for (const Chunk& c : chunks)
                        if (c.backend) send_chunk(backend, c);
                    ::shutdown(backend, SHUT_WR);
                } else {
                    ::close(fd);
                }
            }
        }
    }
    if (backend >= 0) ::close(backend);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<Chunk> chunks;
    for (size_t i = 0; i + 2 <= size;) {
        const uint8_t kind = data[i], len = data[i + 1];
        i += 2;
        const size_t n = len < size - i ? len : size - i;
        chunks.push_back({(kind & 1) != 0, (kind & 2) != 0, std::vector<uint8_t>(data + i, data + i + n)});
        i += n;
    }
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
    // Big enough that the peer's whole input fits before vireo reads.
    int big = 1 << 20;
    ::setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    ::fcntl(sv[0], F_SETFL, O_NONBLOCK);
    std::thread back(peer, sv[1], std::cref(chunks));
    {
        static DmaMemory mem([] {
            DmaMemoryOptions o;
            o.mode = IovaMode::VA;
            o.region_size = 1 << 20;
            o.region.backing = DmaBacking::Memfd4K;
            return o;
        }());
        static DmaChunk ring = mem.allocate(4096, 4096);
        VhostUserOptions o;
        o.reply_timeout_ms = 100;
        try {
            VhostUserTransport t(o, vhost::Connection(sv[0], -1));
            t.attach_memory(mem, DmaPlan{.ok = true, .mode = IovaMode::VA});
            using namespace virtio::feature;
            const virtio::Features f = t.device_features() & (virtio::bit(kVersion1) | virtio::bit(kAccessPlatform) |
                                                              virtio::bit(kRingPacked) | virtio::bit(kEventIdx));
            t.set_features(f);
            for (uint16_t q = 0; q < 2; q++) {
                const Iova base = ring.iova + 2048u * q;
                t.setup_queue({q, 16, virtio::has(f, kRingPacked), base, base + 256, base + 512, ring.va + 2048u * q,
                               ring.va + 2048u * q + 256, ring.va + 2048u * q + 512});
            }
            t.set_status(virtio::status::kAcknowledge | virtio::status::kDriver | virtio::status::kFeaturesOk |
                         virtio::status::kDriverOk);
            (void)t.connected();
            (void)t.net_config();
            t.reset();
        } catch (const Error&) {
        }
    }
    ::shutdown(sv[1], SHUT_RDWR);
    back.join();
    ::close(sv[1]);
    return 0;
}
