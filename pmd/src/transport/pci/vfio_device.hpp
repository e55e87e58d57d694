// vireo: a PCI device bound to vfio-pci: its BARs, config space, IRQs and
// reset through the device fd (transport/vfio_device_fd.hpp). The IOMMU side,
// the container, is iova/'s (vireo/iova/vfio.hpp).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "transport/pci/pci_function.hpp"
#include "transport/vfio_device_fd.hpp"
#include "vireo/iova/vfio.hpp"

namespace vireo {

// A PCI device bound to vfio-pci. Keeps its container (and so the group and
// the DMA maps) alive.
class VfioDevice final : public PciFunction {
public:
    VfioDevice(std::shared_ptr<VfioContainer> container, std::string bdf, int fd);
    VfioDevice(const VfioDevice&) = delete;
    VfioDevice& operator=(const VfioDevice&) = delete;
    ~VfioDevice() override;

    const std::string& bdf() const noexcept override { return dev_.name(); }
    const char* kernel_driver() const noexcept override { return "vfio-pci"; }
    int fd() const noexcept { return dev_.fd(); }
    VfioContainer& container() const noexcept { return *container_; }
    uint32_t num_regions() const noexcept { return dev_.num_regions(); }
    uint32_t num_irqs() const noexcept { return dev_.num_irqs(); }
    bool can_reset() const noexcept;

    VfioRegionInfo region_info(uint32_t index) const { return dev_.region_info(index); }
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

    VfioIrqInfo irq_info(uint32_t index) const { return dev_.irq_info(index); }

private:
    std::shared_ptr<VfioContainer> container_;
    VfioDeviceFd dev_;
    uint64_t config_offset_ = 0;
    int irq_efd_ = -1;              // INTx
    std::vector<int> vector_efds_;  // MSI-X, one per vector
    ConfigIrq irq_ = ConfigIrq::None;
};

// Opens the device through the process's container (vfio_container()).
std::unique_ptr<VfioDevice> open_vfio_device(const std::string& bdf);

}  // namespace vireo
