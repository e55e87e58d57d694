#include "transport/queue_eventfds.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "vireo/base/error.hpp"

namespace vireo {

QueueEventfds::~QueueEventfds() {
    for (const std::vector<int>* v : {&kick_, &call_, &err_})
        for (int fd : *v) ::close(fd);
}

void QueueEventfds::ensure(uint16_t index) {
    while (kick_.size() <= index) {
        int fds[3];
        for (int& fd : fds) {
            fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (fd < 0) {
                const int e = errno;
                for (int* f = fds; f != &fd; f++) ::close(*f);
                throw_sys_error("eventfd for queue " + std::to_string(kick_.size()), e);
            }
        }
        kick_.push_back(fds[0]);
        call_.push_back(fds[1]);
        err_.push_back(fds[2]);
    }
}

Doorbell QueueEventfds::doorbell(uint16_t index) const {
    if (index >= kick_.size()) throw Error("doorbell for queue " + std::to_string(index) + " before its setup");
    return Doorbell::eventfd(kick_[index]);
}

}  // namespace vireo
