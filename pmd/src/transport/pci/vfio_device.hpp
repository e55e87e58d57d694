// vireo: a PCI device bound to vfio-pci, the device side of VFIO: its
// regions (BARs, config space), IRQs and reset (linux/vfio.h). The IOMMU side,
// the container, is iova/'s (vireo/iova/vfio.hpp).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "transport/pci/pci_function.hpp"
#include "vireo/iova/vfio.hpp"

namespace vireo {

struct VfioRegionInfo {
    uint32_t index = 0;
    uint32_t flags = 0;  // VFIO_REGION_INFO_FLAG_READ/WRITE/MMAP
    uint64_t size = 0;
    uint64_t offset = 0;  // of the region within the device fd
    bool mappable() const noexcept;
};

struct VfioIrqInfo {
    uint32_t index = 0;
    uint32_t flags = 0;
    uint32_t count = 0;
};

// A PCI device bound to vfio-pci. Keeps its container (and so the group and
// the DMA maps) alive.
class VfioDevice final : public PciFunction {
public:
    VfioDevice(std::shared_ptr<VfioContainer> container, std::string bdf, int fd);
    VfioDevice(const VfioDevice&) = delete;
    VfioDevice& operator=(const VfioDevice&) = delete;
    ~VfioDevice() override;

    const std::string& bdf() const noexcept override { return bdf_; }
    const char* kernel_driver() const noexcept override { return "vfio-pci"; }
    int fd() const noexcept { return fd_; }
    VfioContainer& container() const noexcept { return *container_; }
    uint32_t num_regions() const noexcept { return num_regions_; }
    uint32_t num_irqs() const noexcept { return num_irqs_; }
    bool can_reset() const noexcept { return can_reset_; }

    VfioRegionInfo region_info(uint32_t index) const;
    PciMappedBar map_bar(uint32_t bar) const override;
    // PCI configuration space: VFIO_PCI_CONFIG_REGION_INDEX of the device fd.
    void config_read(uint32_t offset, void* buf, size_t len) const override;
    void config_write(uint32_t offset, const void* buf, size_t len) const override;

    // MSI-X vector 0 or INTx into an eventfd.
    ConfigIrq wire_config_irq(uint16_t msix_vectors) override;
    int irq_fd() const noexcept override { return irq_ == ConfigIrq::Msix ? vector_fd(0) : irq_efd_; }
    int vector_fd(uint16_t v) const noexcept override {
        return irq_ == ConfigIrq::Msix && v < vector_efds_.size() ? vector_efds_[v] : -1;
    }
    bool take_irq() override;
    void unmask_intx() override;
    void unwire_irqs() override;

    IommuKind iommu() const override { return container_->iommu(); }
    uint64_t max_iova() const override { return container_->info().max_iova(); }
    void attach_memory(DmaMemory& mem, const DmaPlan& plan) override { container_->attach(mem, plan); }
    // VFIO_DEVICE_RESET (function-level or equivalent); false when unsupported.
    bool reset() const;

    VfioIrqInfo irq_info(uint32_t index) const;
    // Routes vectors [start, start + fds.size()) of an IRQ index (VFIO_PCI_MSIX_IRQ_INDEX,
    // VFIO_PCI_INTX_IRQ_INDEX...) to eventfds.
    void set_irq_eventfds(uint32_t index, uint32_t start, const std::vector<int>& fds) const;
    void disable_irqs(uint32_t index) const;

private:
    std::shared_ptr<VfioContainer> container_;
    std::string bdf_;
    int fd_ = -1;
    uint32_t num_regions_ = 0, num_irqs_ = 0;
    bool can_reset_ = false;
    uint64_t config_offset_ = 0;
    int irq_efd_ = -1;              // INTx
    std::vector<int> vector_efds_;  // MSI-X, one per vector
    ConfigIrq irq_ = ConfigIrq::None;
};

// Opens the device through the process's container (vfio_container()).
std::unique_ptr<VfioDevice> open_vfio_device(const std::string& bdf);

}  // namespace vireo
