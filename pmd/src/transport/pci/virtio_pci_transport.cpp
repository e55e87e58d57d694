// virtio-pci (modern) over a PCI function (vfio-pci or uio_pci_generic). Section numbers are virtio 1.2's.
#include "transport/pci/virtio_pci_transport.hpp"

#include <array>
#include <chrono>
#include <cstring>
#include <thread>

#include "transport/feature_words.hpp"
#include "transport/net_config_space.hpp"
#include "vireo/base/error.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

using namespace virtio_pci;

VirtioPciTransport::VirtioPciTransport(std::unique_ptr<PciFunction> dev) : dev_(std::move(dev)) {
    const uint16_t vendor = dev_->config_read16(0x00), device = dev_->config_read16(0x02);
    if (vendor != kVendorId || (device != kDeviceIdNetModern && device != kDeviceIdNetTransitional)) {
        char id[16];
        std::snprintf(id, sizeof id, "%04x:%04x", vendor, device);
        throw Error(describe() + " is " + id + ", not a virtio-net device (1af4:1041, or transitional 1af4:1000)");
    }
    std::array<uint8_t, 256> cfg{};
    dev_->config_read(0, cfg.data(), cfg.size());
    layout_ = parse_caps(cfg, describe());
    common_ = locate(layout_.common, common::kSize, "common");
    notify_ = locate(layout_.notify, 2, "notify");
    isr_ = locate(layout_.isr, 1, "ISR");
    device_ = locate(layout_.device, netcfg::kMtu + 2 <= layout_.device.length ? netcfg::kMtu + 2 : 8, "device");
    dev_->enable_bus_master();
    reset();
    setup_config_irq();
}

VirtioPciTransport::~VirtioPciTransport() {
    try {
        reset();
    } catch (...) {
    }
    dev_->unwire_irqs();
}

// Maps the BAR holding a structure (once per BAR) and checks the structure fits.
uint8_t* VirtioPciTransport::locate(const Location& loc, uint32_t min_len, const char* what) {
    if (loc.length < min_len)
        throw Error(describe() + ": the " + what + " configuration structure is " + std::to_string(loc.length) +
                    " bytes, need " + std::to_string(min_len));
    PciMappedBar* bar = nullptr;
    for (auto& [n, b] : bars_)
        if (n == loc.bar) bar = &b;
    if (bar == nullptr) {
        bars_.emplace_back(loc.bar, dev_->map_bar(loc.bar));
        bar = &bars_.back().second;
    }
    if (uint64_t{loc.offset} + loc.length > bar->size())
        throw Error(describe() + ": the " + what + " configuration structure lies outside BAR " +
                    std::to_string(loc.bar));
    return bar->base() + loc.offset;
}

// MMIO accessors: exactly one access of the field's width (4.1.3.1).
uint16_t VirtioPciTransport::read16(uint32_t off) const noexcept {
    return *reinterpret_cast<volatile uint16_t*>(common(off));
}
uint32_t VirtioPciTransport::read32(uint32_t off) const noexcept {
    return *reinterpret_cast<volatile uint32_t*>(common(off));
}
void VirtioPciTransport::write8(uint32_t off, uint8_t v) const noexcept { *common(off) = v; }
void VirtioPciTransport::write16(uint32_t off, uint16_t v) const noexcept {
    *reinterpret_cast<volatile uint16_t*>(common(off)) = v;
}
void VirtioPciTransport::write32(uint32_t off, uint32_t v) const noexcept {
    *reinterpret_cast<volatile uint32_t*>(common(off)) = v;
}
void VirtioPciTransport::write64(uint32_t off, uint64_t v) const noexcept {
    write32(off, static_cast<uint32_t>(v));
    write32(off + 4, static_cast<uint32_t>(v >> 32));
}

virtio::Features VirtioPciTransport::device_features() {
    return read_feature_words([this](uint32_t select) {
        write32(common::kDeviceFeatureSelect, select);
        return read32(common::kDeviceFeature);
    });
}

void VirtioPciTransport::set_features(const virtio::Features& f) {
    write_feature_words(f, [this](uint32_t select, uint32_t value) {
        write32(common::kDriverFeatureSelect, select);
        write32(common::kDriverFeature, value);
    });
    features_ = f;
}

void VirtioPciTransport::set_status(uint8_t s) { write8(common::kDeviceStatus, s); }
uint8_t VirtioPciTransport::status() { return *common(common::kDeviceStatus); }

// 4.1.4.3.2: after writing 0, wait until device_status reads 0 (the device has
// stopped using every queue); then the configuration vector is gone too.
void VirtioPciTransport::reset() {
    write8(common::kDeviceStatus, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (status() != 0) {
        if (std::chrono::steady_clock::now() > deadline)
            throw Error(describe() + " did not complete its reset within 10 s (device_status stays " +
                        std::to_string(status()) + ")");
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    features_ = {};
    program_config_vector();
}

uint16_t VirtioPciTransport::num_queues() { return read16(common::kNumQueues); }

uint16_t VirtioPciTransport::max_queue_size(uint16_t index) {
    if (index >= num_queues())
        throw Error(describe() + " has " + std::to_string(num_queues()) + " queues, not queue " +
                    std::to_string(index) + " (QEMU: mq=on,vectors=... for more queue pairs)");
    write16(common::kQueueSelect, index);
    return read16(common::kQueueSize);
}

// 4.1.5.1.3 Virtqueue Configuration.
void VirtioPciTransport::setup_queue(const QueueAreas& q) {
    const uint16_t max = max_queue_size(q.index);  // selects the queue
    if (max == 0) throw Error(describe() + ": queue " + std::to_string(q.index) + " is not available");
    if (q.size > max)
        throw Error(describe() + ": queue " + std::to_string(q.index) + " holds at most " + std::to_string(max) +
                    " descriptors, " + std::to_string(q.size) + " asked for: use ring=" + std::to_string(max) +
                    " or less");
    write16(common::kQueueSize, q.size);
    // Rx queue 2p: vector 1 + p, for sleeping when idle (the ring asks for
    // notifications only then); Tx and control queues are polled. The device
    // answers NO_VECTOR when it cannot (4.1.5.1.2).
    uint16_t vector = kMsixNoVector;
    if (config_irq_ == ConfigIrq::Msix && q.index % 2 == 0 && 1u + q.index / 2 < layout_.msix_vectors)
        vector = static_cast<uint16_t>(1 + q.index / 2);
    write16(common::kQueueMsixVector, vector);
    if (queue_vector_.size() <= q.index) queue_vector_.resize(q.index + 1u, kMsixNoVector);
    queue_vector_[q.index] = vector != kMsixNoVector ? read16(common::kQueueMsixVector) : kMsixNoVector;
    write64(common::kQueueDesc, q.desc_iova.value);  // the registers take the device's addresses: IOVAs
    write64(common::kQueueDriver, q.driver_iova.value);
    write64(common::kQueueDevice, q.device_iova.value);
    write16(common::kQueueEnable, 1);
}

// The field exists only in a common configuration long enough to hold it
// (Linux maps 60 bytes and never checks; we do).
std::string VirtioPciTransport::queue_reset_unavailable() const {
    if (layout_.common.length >= common::kSizeWithQueueReset) return {};
    return describe() + "'s common configuration is " + std::to_string(layout_.common.length) +
           " bytes, without queue_reset (needs " + std::to_string(common::kSizeWithQueueReset) + ")";
}

// 4.1.4.3.2: write 1 to queue_reset; the reset is done when it reads 0 again
// (QEMU resets at once; Linux also waits for queue_enable to read 0).
void VirtioPciTransport::reset_queue(uint16_t index) {
    if (std::string why = queue_reset_unavailable(); !why.empty()) throw Error(why);
    write16(common::kQueueSelect, index);
    write16(common::kQueueReset, 1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (read16(common::kQueueReset) != 0 || read16(common::kQueueEnable) != 0) {
        if (!present())
            throw Error(describe() + " is gone (reads all ones) while queue " + std::to_string(index) +
                        " was being reset");
        if (std::chrono::steady_clock::now() > deadline)
            throw Error(describe() + ": queue " + std::to_string(index) +
                        " did not finish its reset within 1 s (queue_reset still reads 1): reset the port");
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
}

Doorbell VirtioPciTransport::doorbell(uint16_t index) {
    write16(common::kQueueSelect, index);
    const uint64_t off = uint64_t{read16(common::kQueueNotifyOff)} * layout_.notify_off_multiplier;
    const bool data = virtio::has(features_, virtio::feature::kNotificationData);
    if (off + (data ? 4 : 2) > layout_.notify.length)
        throw Error(describe() + ": queue " + std::to_string(index) + "'s notify address lies outside the notify area");
    uint8_t* p = notify_ + off;
    return data ? Doorbell::mmio32(reinterpret_cast<volatile uint32_t*>(p))
                : Doorbell::mmio16(reinterpret_cast<volatile uint16_t*>(p));
}

// 2.5.1 / 4.1.4.3.1: read config_generation before and after; retry until equal.
void VirtioPciTransport::read_device_config(void* out, uint32_t off, uint32_t len) {
    if (uint64_t{off} + len > layout_.device.length) {
        std::memset(out, 0, len);
        return;
    }
    auto* o = static_cast<uint8_t*>(out);
    for (int attempt = 0;; attempt++) {
        const uint8_t before = *common(common::kConfigGeneration);
        for (uint32_t i = 0; i < len; i++) o[i] = device_[off + i];
        if (*common(common::kConfigGeneration) == before) return;
        if (attempt > 1000) throw Error(describe() + ": device configuration keeps changing while read");
    }
}

NetConfig VirtioPciTransport::net_config() {
    NetConfig c = read_net_config(device_features(),
                                  [this](void* out, uint32_t off, uint32_t len) { read_device_config(out, off, len); });
    if (!present()) c.status = 0;  // surprise removal: the link is gone
    return c;
}

int VirtioPciTransport::used_notify_fd(uint16_t index) const {
    if (index >= queue_vector_.size() || queue_vector_[index] == kMsixNoVector) return -1;
    return dev_->vector_fd(queue_vector_[index]);
}

bool VirtioPciTransport::present() { return read16(common::kNumQueues) != 0xffff; }

// The IOMMU is the PCI function's: the process's VFIO container (type1, or
// none in no-IOMMU mode), or none at all under uio; physical addresses are the
// host's real ones.
DmaTraits VirtioPciTransport::dma_traits() const {
    return {dev_->iommu(), dev_->max_iova(), PaSource::Pagemap,
            "start the VM's device with iommu_platform=on (QEMU: -device virtio-net-pci,...,iommu_platform=on)"};
}

// The configuration-change interrupt (4.1.4.5, 4.1.5.3): MSI-X vector 0 when
// the device and its driver have MSI-X, else INTx; either makes
// config_event_fd() readable.
void VirtioPciTransport::setup_config_irq() {
    config_irq_ = dev_->wire_config_irq(layout_.msix_vectors);
    program_config_vector();
}

// After every reset: MSI-X vector 0 for configuration changes. The device
// answers NO_VECTOR when it cannot (4.1.5.1.2); then the event stays silent.
void VirtioPciTransport::program_config_vector() {
    if (config_irq_ != ConfigIrq::Msix) return;
    write16(common::kConfigMsixVector, 0);
    if (read16(common::kConfigMsixVector) != 0) {
        dev_->unwire_irqs();
        config_irq_ = ConfigIrq::None;
    }
}

bool VirtioPciTransport::poll_config_change() {
    if (!dev_->take_irq()) return false;
    if (config_irq_ == ConfigIrq::Intx) {
        const uint8_t isr = *isr_;  // 4.1.4.5: reading clears it (and deasserts the line); bit 1 = config change
        dev_->unmask_intx();
        return (isr & virtio_pci::kIsrConfigChange) != 0;
    }
    return true;
}

}  // namespace vireo
