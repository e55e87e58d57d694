// vireo: one PCI function as the virtio-pci transport needs it, whichever
// kernel driver lends it to user space:
//   vfio-pci          VFIO: BARs and config space through the device fd,
//                     interrupts through eventfds, DMA through the process's
//                     container (type1 IOMMU, or none in no-IOMMU mode)
//   uio_pci_generic   sysfs resourceN / config files, INTx through /dev/uioN,
//                     never an IOMMU: the device sees physical addresses
// The transport (virtio_pci_transport.hpp) sees only this interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "vireo/iova/iova_mode.hpp"
#include "vireo/iova/iova_policy.hpp"

namespace vireo {

class DmaMemory;

// One BAR mapped into the process; unmapped when destroyed.
class PciMappedBar {
public:
    PciMappedBar() = default;
    PciMappedBar(void* base, size_t len) : base_(base), len_(len) {}
    PciMappedBar(PciMappedBar&& o) noexcept;
    PciMappedBar& operator=(PciMappedBar&& o) noexcept;
    PciMappedBar(const PciMappedBar&) = delete;
    PciMappedBar& operator=(const PciMappedBar&) = delete;
    ~PciMappedBar();
    uint8_t* base() const noexcept { return static_cast<uint8_t*>(base_); }
    size_t size() const noexcept { return len_; }

private:
    void* base_ = nullptr;
    size_t len_ = 0;
};

// How the device's configuration-change interrupt reaches the process.
enum class ConfigIrq : uint8_t {
    None,  // the driver cannot deliver it: link changes are seen by polling only
    Msix,  // MSI-X vector 0 (the transport programs config_msix_vector)
    Intx,  // the legacy line: read the ISR, then unmask_intx()
};

class PciFunction {
public:
    virtual ~PciFunction() = default;
    virtual const std::string& bdf() const noexcept = 0;
    // "vfio-pci" or "uio_pci_generic".
    virtual const char* kernel_driver() const noexcept = 0;

    // Maps a whole memory BAR (0..5); throws when it is empty or cannot be mapped.
    virtual PciMappedBar map_bar(uint32_t bar) const = 0;
    // PCI configuration space, little-endian.
    virtual void config_read(uint32_t offset, void* buf, size_t len) const = 0;
    virtual void config_write(uint32_t offset, const void* buf, size_t len) const = 0;

    // Routes the configuration-change interrupt to irq_fd(): MSI-X vector 0
    // when the device has msix_vectors > 0 and the driver can, else INTx when
    // it can. With MSI-X every vector up to msix_vectors gets an fd of its own
    // (vector_fd: queues' used-buffer notifications).
    virtual ConfigIrq wire_config_irq(uint16_t msix_vectors) = 0;
    // Readable (poll) while an interrupt is pending; -1 when none is wired.
    virtual int irq_fd() const noexcept = 0;
    // MSI-X vector v's fd, or -1 (not wired, or INTx only).
    virtual int vector_fd(uint16_t v) const noexcept = 0;
    // Consumes pending interrupts; false when none was pending.
    virtual bool take_irq() = 0;
    // INTx: lets the line fire again (after the ISR was read, 4.1.4.5).
    virtual void unmask_intx() = 0;
    // Stops delivering interrupts (the device refused its MSI-X vector, or shutdown).
    virtual void unwire_irqs() = 0;

    // What stands between the device and memory, and how far it reaches.
    virtual IommuKind iommu() const = 0;
    virtual uint64_t max_iova() const = 0;
    // Makes memory reachable by the device (VFIO type1: maps it; no IOMMU: nothing to do).
    virtual void attach_memory(DmaMemory& mem, const DmaPlan& plan) = 0;

    uint8_t config_read8(uint32_t offset) const;
    uint16_t config_read16(uint32_t offset) const;
    uint32_t config_read32(uint32_t offset) const;
    void config_write16(uint32_t offset, uint16_t v) const;
    // Sets Memory Space and Bus Master in the command register (PCI 3.0 6.2.2).
    void enable_bus_master() const;
};

// Opens the PCI function at `bdf` through the driver it is bound to
// (vfio-pci or uio_pci_generic); any other driver, or none, is an error that
// names the driver and gives the commands to bind it (pci_binding_advice).
std::unique_ptr<PciFunction> open_pci_function(const std::string& bdf, const std::string& sysfs = "/sys");

// The error text for a function bound to `driver` ("" = none) that vireo
// cannot drive: what it is bound to, and the exact commands for vfio-pci with
// an IOMMU, vfio no-IOMMU and uio_pci_generic (the first that fits this
// machine first).
std::string pci_binding_advice(const std::string& bdf, const std::string& driver, const std::string& sysfs = "/sys");

}  // namespace vireo
