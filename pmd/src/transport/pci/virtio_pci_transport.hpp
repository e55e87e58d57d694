// The virtio-pci transport (virtio 1.2 section 4.1, modern interface) over a
// PCI function (vfio-pci or uio_pci_generic, pci_function.hpp): the same
// Transport the vhost-user front end implements, so a NetPort does over PCI
// everything it does over vhost-user.
//
// Mapping of the control path:
//   features      device/driver_feature_select + device/driver_feature (4.1.4.3)
//   status        device_status; reset = write 0, wait until it reads 0 (4.1.4.3.2)
//   queues        queue_select, queue_size, queue_desc/driver/device as two
//                 32-bit halves each, queue_enable (4.1.5.1.3)
//   notify        a store at notify.offset + queue_notify_off * multiplier (4.1.4.4)
//   config        the device-specific structure, read under config_generation (2.5.1)
//   config irq    MSI-X vector 0 (or INTx) -> a pollable fd, for link-status changes
// Memory: attach_memory() maps the DmaMemory into the VFIO container (uio: no IOMMU, nothing to map).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transport/pci/pci_function.hpp"
#include "transport/pci/virtio_pci_caps.hpp"
#include "vireo/pmd/transport.hpp"

namespace vireo {

class VirtioPciTransport final : public Transport {
public:
    // Walks the capabilities, maps the BARs they name, enables bus mastering,
    // resets the device and wires the configuration interrupt.
    explicit VirtioPciTransport(std::unique_ptr<PciFunction> dev);
    ~VirtioPciTransport() override;  // resets the device: no DMA after this

    std::string describe() const override { return "pci:" + dev_->bdf(); }
    virtio::Features device_features() override;
    void set_features(const virtio::Features& features) override;
    std::string queue_reset_unavailable() const override;
    void reset_queue(uint16_t index) override;
    void set_status(uint8_t status) override;
    uint8_t status() override;
    void reset() override;
    uint16_t max_queue_size(uint16_t index) override;
    void setup_queue(const QueueAreas& q) override;
    Doorbell doorbell(uint16_t index) override;
    NetConfig net_config() override;
    DmaTraits dma_traits() const override;
    void attach_memory(DmaMemory& mem, const DmaPlan& plan) override { dev_->attach_memory(mem, plan); }
    bool present();  // false once the device reads as all-ones (surprise removal)
    int config_event_fd() const override { return dev_->irq_fd(); }
    // Rx queues (even indices) get MSI-X vector 1 + pair when the device has that many.
    int used_notify_fd(uint16_t index) const override;
    bool poll_config_change() override;

    uint16_t num_queues();
    const virtio_pci::Layout& layout() const noexcept { return layout_; }

private:
    volatile uint8_t* common(uint32_t off) const noexcept { return common_ + off; }
    uint16_t read16(uint32_t off) const noexcept;
    uint32_t read32(uint32_t off) const noexcept;
    void write8(uint32_t off, uint8_t v) const noexcept;
    void write16(uint32_t off, uint16_t v) const noexcept;
    void write32(uint32_t off, uint32_t v) const noexcept;
    void write64(uint32_t off, uint64_t v) const noexcept;  // as two 32-bit stores, low half first
    void read_device_config(void* out, uint32_t off, uint32_t len);
    uint8_t* locate(const virtio_pci::Location& loc, uint32_t min_len, const char* what);
    void setup_config_irq();
    void program_config_vector();

    std::unique_ptr<PciFunction> dev_;
    virtio_pci::Layout layout_;
    std::vector<std::pair<uint8_t, PciMappedBar>> bars_;
    volatile uint8_t* common_ = nullptr;
    uint8_t* notify_ = nullptr;
    volatile uint8_t* isr_ = nullptr;
    volatile uint8_t* device_ = nullptr;
    virtio::Features features_;
    ConfigIrq config_irq_ = ConfigIrq::None;
    std::vector<uint16_t> queue_vector_;  // per queue index: its MSI-X vector, or kMsixNoVector
};

}  // namespace vireo
