// vireo: a PCI function bound to uio_pci_generic (what DPDK calls the uio
// kernel driver). uio gives user space the device and nothing else:
//   BARs          mmap of /sys/bus/pci/devices/BDF/resourceN (memory BARs only)
//   config space  pread/pwrite of /sys/bus/pci/devices/BDF/config (root: all 256 bytes)
//   interrupt     INTx only: /dev/uioN is readable after it fired (a 4-byte
//                 count); the kernel masked the line (INTx Disable in the
//                 command register) and the driver clears that bit through
//                 the config file once the ISR is read (uio_pci_generic has
//                 no irqcontrol: writing to /dev/uioN is ENOSYS)
//   DMA           no IOMMU, ever: descriptors carry physical addresses
//                 (pagemap), the memory is pinned hugepages
// The process takes an exclusive flock on /dev/uioN: two drivers of one device
// would corrupt its rings, and uio itself does not stop a second opener.
#pragma once

#include <string>

#include "transport/pci/pci_function.hpp"

namespace vireo {

class UioDevice final : public PciFunction {
public:
    // sysfs: where /sys is (tests give a fake tree); dev: where /dev is.
    UioDevice(std::string bdf, const std::string& sysfs = "/sys", const std::string& dev = "/dev");
    UioDevice(const UioDevice&) = delete;
    UioDevice& operator=(const UioDevice&) = delete;
    ~UioDevice() override;

    const std::string& bdf() const noexcept override { return bdf_; }
    const char* kernel_driver() const noexcept override { return "uio_pci_generic"; }
    const std::string& uio_node() const noexcept { return node_; }  // /dev/uioN

    PciMappedBar map_bar(uint32_t bar) const override;
    void config_read(uint32_t offset, void* buf, size_t len) const override;
    void config_write(uint32_t offset, const void* buf, size_t len) const override;

    ConfigIrq wire_config_irq(uint16_t msix_vectors) override;
    int irq_fd() const noexcept override { return irq_ == ConfigIrq::Intx ? uio_fd_ : -1; }
    int vector_fd(uint16_t) const noexcept override { return -1; }  // INTx only: no per-queue interrupts
    bool take_irq() override;
    void unmask_intx() override;
    void unwire_irqs() override;

    IommuKind iommu() const override { return IommuKind::Uio; }
    uint64_t max_iova() const override { return ~uint64_t{0}; }
    // Nothing to map; refuses memory that is not in PA mode (no IOMMU could translate it).
    void attach_memory(DmaMemory& mem, const DmaPlan& plan) override;  // no IOMMU: checks, maps nothing

private:
    void intx_disable(bool disable) const;

    std::string bdf_;
    std::string dir_;   // sysfs folder of the function
    std::string node_;  // /dev/uioN
    int config_fd_ = -1;
    int uio_fd_ = -1;
    ConfigIrq irq_ = ConfigIrq::None;
};

}  // namespace vireo
