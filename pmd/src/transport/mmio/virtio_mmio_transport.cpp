// virtio-mmio, version 2, over a platform device. Section numbers are virtio 1.2's.
#include "transport/mmio/virtio_mmio_transport.hpp"

#include <poll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "transport/feature_words.hpp"
#include "transport/mmio/virtio_mmio_regs.hpp"
#include "transport/net_config_space.hpp"
#include "transport/vfio_device_fd.hpp"
#include "vireo/base/error.hpp"
#include "vireo/base/hex.hpp"

namespace vireo {

using namespace virtio_mmio;

namespace {

void signal_fd(int fd) noexcept {
    uint64_t one = 1;
    ssize_t r = ::write(fd, &one, sizeof one);
    (void)r;
}

bool drain_fd(int fd) noexcept {
    uint64_t n = 0;
    return ::read(fd, &n, sizeof n) == sizeof n && n > 0;
}

constexpr auto kPollPeriod = std::chrono::milliseconds(100);  // without an interrupt line: how often to look

}  // namespace

VirtioMmioTransport::VirtioMmioTransport(std::unique_ptr<MmioDevice> dev) : dev_(std::move(dev)) {
    const uint32_t magic = dev_->read32(kMagicValue);
    if (magic != kMagic)
        throw Error(describe() + " reads " + hex(magic) + " at MagicValue, not " + hex(kMagic) +
                    " (\"virt\"): not a virtio-mmio device, or its registers are not where /proc/iomem says");
    const uint32_t version = dev_->read32(kVersion);
    if (version == kVersionLegacy)
        throw Error(describe() +
                    " is a legacy virtio-mmio device (version 1, before virtio 1.0), which vireo does not drive: make "
                    "it version 2 (QEMU: -global virtio-mmio.force-legacy=false; Firecracker and cloud-hypervisor "
                    "devices are version 2 already)");
    if (version != kVersionModern)
        throw Error(describe() + " has virtio-mmio version " + std::to_string(version) + "; vireo knows version 2");
    const uint32_t id = dev_->read32(kDeviceId);
    if (id == 0) throw Error(describe() + " is an empty virtio-mmio slot (DeviceID 0): no device behind it");
    if (id != kDeviceIdNet)
        throw Error(describe() + " is a virtio device of type " + std::to_string(id) + ", not a network card (1)");
    reset();
    if (dev_->irq_fd() >= 0) {
        config_fd_ = make_eventfd(describe());
        try {
            stop_fd_ = make_eventfd(describe());
        } catch (...) {
            ::close(config_fd_);
            throw;
        }
        irq_thread_ = std::thread([this] { irq_loop(); });
        return;
    }
    polled_ = true;
    config_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (config_fd_ < 0) throw_sys_error(describe() + ": timerfd_create", errno);
    itimerspec t{};
    t.it_interval.tv_nsec = std::chrono::nanoseconds(kPollPeriod).count();
    t.it_value = t.it_interval;
    ::timerfd_settime(config_fd_, 0, &t, nullptr);
}

VirtioMmioTransport::~VirtioMmioTransport() {
    if (irq_thread_.joinable()) {
        signal_fd(stop_fd_);
        irq_thread_.join();
    }
    try {
        reset();
    } catch (...) {
    }
    for (int fd : rx_fds_) ::close(fd);
    if (stop_fd_ >= 0) ::close(stop_fd_);
    if (config_fd_ >= 0) ::close(config_fd_);
}

// The line is level-triggered and shared by every cause: read what the
// device says (InterruptStatus), acknowledge exactly that (InterruptACK: the
// line drops unless something new came meanwhile), let the line fire again,
// then tell whoever waits. A cause that arrives after the read keeps the line
// up, so it fires again at once: nothing is lost between read and ack.
void VirtioMmioTransport::irq_loop() {
    for (;;) {
        pollfd p[2] = {{dev_->irq_fd(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (p[1].revents != 0) return;
        if (!(p[0].revents & POLLIN)) continue;
        drain_fd(dev_->irq_fd());
        uint32_t cause = 0;
        try {
            cause = dev_->read32(kInterruptStatus);
            if (cause != 0) dev_->write32(kInterruptAck, cause);
        } catch (const Error&) {  // the device went away: nothing more will come
            return;
        }
        dev_->irq_handled();
        interrupts_.fetch_add(1, std::memory_order_relaxed);
        if (cause & kInterruptConfig) signal_fd(config_fd_);
        if (cause & kInterruptVring) {
            std::lock_guard lock(rx_mu_);
            for (int fd : rx_fds_) signal_fd(fd);
        }
    }
}

virtio::Features VirtioMmioTransport::device_features() {
    return read_feature_words([this](uint32_t select) {
        dev_->write32(kDeviceFeaturesSel, select);
        return dev_->read32(kDeviceFeatures);
    });
}

void VirtioMmioTransport::set_features(const virtio::Features& f) {
    write_feature_words(f, [this](uint32_t select, uint32_t value) {
        dev_->write32(kDriverFeaturesSel, select);
        dev_->write32(kDriverFeatures, value);
    });
    features_ = f;
}

void VirtioMmioTransport::set_status(uint8_t s) { dev_->write32(kStatus, s); }
uint8_t VirtioMmioTransport::status() { return static_cast<uint8_t>(dev_->read32(kStatus)); }

// 4.2.3.1: writing 0 resets; the device is done when Status reads 0.
void VirtioMmioTransport::reset() {
    dev_->write32(kStatus, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (status() != 0) {
        if (std::chrono::steady_clock::now() > deadline)
            throw Error(describe() + " did not complete its reset within 10 s (Status stays " +
                        std::to_string(status()) + ")");
        ::usleep(100);
    }
    features_ = {};
}

uint16_t VirtioMmioTransport::max_queue_size(uint16_t index) {
    dev_->write32(kQueueSel, index);
    const uint32_t max = dev_->read32(kQueueNumMax);
    if (max == 0)
        throw Error(describe() + " has no queue " + std::to_string(index) +
                    " (QueueNumMax reads 0; QEMU: more queue pairs need a multi-queue netdev, e.g. tap,queues=N)");
    return static_cast<uint16_t>(max > 32768 ? 32768 : max);
}

// 4.2.3.2 Virtqueue Configuration.
void VirtioMmioTransport::setup_queue(const QueueAreas& q) {
    const uint16_t max = max_queue_size(q.index);  // selects the queue
    if (dev_->read32(kQueueReady) != 0)
        throw Error(describe() + ": queue " + std::to_string(q.index) + " is already in use (QueueReady reads 1)");
    if (q.size > max)
        throw Error(describe() + ": queue " + std::to_string(q.index) + " holds at most " + std::to_string(max) +
                    " descriptors, " + std::to_string(q.size) + " asked for: use ring=" + std::to_string(max) +
                    " or less");
    dev_->write32(kQueueNum, q.size);
    auto write64 = [&](uint32_t low, uint64_t v) {
        dev_->write32(low, static_cast<uint32_t>(v));
        dev_->write32(low + 4, static_cast<uint32_t>(v >> 32));
    };
    write64(kQueueDescLow, q.desc_iova.value);  // the registers take the device's addresses
    write64(kQueueDriverLow, q.driver_iova.value);
    write64(kQueueDeviceLow, q.device_iova.value);
    dev_->write32(kQueueReady, 1);
    if (q.index % 2 == 0 && !polled_) {  // an Rx queue: give it an fd to sleep on
        std::lock_guard lock(rx_mu_);
        while (rx_fds_.size() <= q.index / 2u) rx_fds_.push_back(make_eventfd(describe()));
    }
}

// One register for all queues (4.2.3.3): the queue's index, or with
// NOTIFICATION_DATA the 32-bit data the queue computes.
Doorbell VirtioMmioTransport::doorbell(uint16_t) { return dev_->notify_doorbell(); }

// 4.2.2 / 2.5.1: read ConfigGeneration before and after; retry until equal.
void VirtioMmioTransport::read_config(void* out, uint32_t off, uint32_t len) {
    for (int attempt = 0;; attempt++) {
        const uint32_t before = dev_->read32(kConfigGeneration);
        dev_->read_bytes(kConfig + off, out, len);
        if (dev_->read32(kConfigGeneration) == before) return;
        if (attempt > 1000) throw Error(describe() + ": device configuration keeps changing while read");
    }
}

NetConfig VirtioMmioTransport::net_config() {
    return read_net_config(device_features(),
                           [this](void* out, uint32_t off, uint32_t len) { read_config(out, off, len); });
}

int VirtioMmioTransport::used_notify_fd(uint16_t index) const {
    if (index % 2 != 0) return -1;
    std::lock_guard lock(rx_mu_);
    return index / 2u < rx_fds_.size() ? rx_fds_[index / 2u] : -1;
}

// With the interrupt thread: it signalled the config eventfd. Polled: the
// timer fired; look at InterruptStatus's config bit ourselves.
bool VirtioMmioTransport::poll_config_change() {
    if (!drain_fd(config_fd_)) return false;
    if (!polled_) return true;
    const uint32_t cause = dev_->read32(kInterruptStatus);
    if (!(cause & kInterruptConfig)) return false;
    dev_->write32(kInterruptAck, kInterruptConfig);
    return true;
}

// The IOMMU is the platform device's: the VFIO container's (an IOMMU group,
// or none in no-IOMMU mode), or none at all through /dev/mem.
DmaTraits VirtioMmioTransport::dma_traits() const {
    return {dev_->iommu(), dev_->max_iova(), PaSource::Pagemap,
            "start the device with iommu_platform=on (QEMU: -device virtio-net-device,...,iommu_platform=on)"};
}

}  // namespace vireo
