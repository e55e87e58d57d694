// NetPort: the thread that watches a port's connection, takes the port down
// when its device goes away and brings it up again when the device is back.
#include <poll.h>

#include <algorithm>
#include <cerrno>

#include "datapath/queue_pair.hpp"
#include "net/net_port_watcher.hpp"
#include "vireo/base/error.hpp"
#include "vireo/pmd/net_port.hpp"

namespace vireo {

LinkStatus NetPort::link_status() const { return watcher_->status(); }

void NetPort::watch() {
    TransportConnection& t = *transport_->connection();
    const int stop_fd = watcher_->stop.fd();
    for (;;) {
        // 1. Connected: wait for the peer to hang up (or for stop()).
        pollfd p[2] = {{t.fd(), POLLRDHUP, 0}, {stop_fd, POLLIN, 0}};
        const int r = ::poll(p, 2, -1);
        if (r < 0 && errno == EINTR) continue;
        if (p[1].revents != 0) return;
        if (r < 0 || !(p[0].revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL))) continue;

        // 2. Gone: no burst touches the rings any more, every buffer comes back.
        const std::string why = t.down_reason();
        take_down();
        t.disconnect();
        watcher_->set_down(why, true, spec_.reconnect);
        if (!spec_.reconnect) return;

        // 3. Back: the transport's handshake, then ours; any failure is the
        // new reason for being down, and we wait for the next attempt.
        int backoff_ms = 10;
        for (;;) {
            try {
                if (!t.reconnect(stop_fd)) return;  // stopped, or the process cancelled its waits
                bring_up();
                watcher_->count_reconnect();
                watcher_->set_up();
                break;
            } catch (const Error& e) {
                take_down();
                t.disconnect();
                watcher_->set_down(e.what(), false, true);
                if (detail::sleep_unless_stopped(detail::deadline_in(backoff_ms), stop_fd)) return;
                backoff_ms = std::min(backoff_ms * 2, 1000);
            }
        }
    }
}

}  // namespace vireo
