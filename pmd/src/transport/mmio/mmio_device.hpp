// vireo: one virtio-mmio platform device as its transport needs it, whichever
// way the kernel lends it to user space:
//   vfio-platform  VFIO: the registers through the device fd (mmapped when the
//                  region is whole pages; QEMU's 0x200-byte slots are not, so
//                  pread/pwrite), the interrupt line through an eventfd
//                  (level-triggered: VFIO masks it when it fires, we unmask it
//                  after the device's InterruptACK), DMA through the process's
//                  container (an IOMMU group, or no-IOMMU mode)
//   /dev/mem       the page holding the registers, mapped; allowed only while
//                  no driver holds a region on that page (IO_STRICT_DEVMEM);
//                  no interrupt (InterruptStatus is polled); never an IOMMU
// uio_pdrv_genirq cannot take one on x86: it binds only devices with a
// device-tree node or platform data, and an ACPI or command-line virtio-mmio
// device has neither (docs/mmio.md). The transport
// (virtio_mmio_transport.hpp) sees only this interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "vireo/iova/iova_policy.hpp"
#include "vireo/pmd/transport.hpp"

namespace vireo {

class DmaMemory;

class MmioDevice {
public:
    virtual ~MmioDevice() = default;
    // The platform device's name in /sys/bus/platform/devices ("LNRO0005:00").
    virtual const std::string& name() const noexcept = 0;
    // "vfio-platform" or "/dev/mem".
    virtual const char* access() const noexcept = 0;

    // One aligned 32-bit register access (4.2.2.2).
    virtual uint32_t read32(uint32_t offset) const = 0;
    virtual void write32(uint32_t offset, uint32_t value) const = 0;
    // Device configuration bytes (offset from the start of the registers).
    virtual void read_bytes(uint32_t offset, void* out, uint32_t len) const = 0;
    // The QueueNotify register as a Doorbell: a store, or a pwrite on the VFIO fd.
    virtual Doorbell notify_doorbell() const = 0;

    // Readable while the interrupt line fired; -1 when none reaches us.
    virtual int irq_fd() const noexcept = 0;
    // After the device's InterruptACK: lets the line fire again (VFIO unmask).
    virtual void irq_handled() noexcept = 0;

    // What stands between the device and memory, and how far it reaches.
    virtual IommuKind iommu() const = 0;
    virtual uint64_t max_iova() const = 0;
    virtual void attach_memory(DmaMemory& mem, const DmaPlan& plan) = 0;
};

// Whether the device's DMA is coherent with the CPU caches: vireo does no
// cache maintenance, so a non-coherent device would read stale rings.
struct DmaCoherence {
    bool coherent = false;
    std::string why;  // the evidence, or (not coherent) what is missing and the fix
};
// x86: always (the architecture snoops DMA). Elsewhere: a device-tree node
// with `dma-coherent`; anything else is refused (ACPI's _CCA is not visible
// from sysfs). `device_dir`: /sys/bus/platform/devices/NAME.
DmaCoherence mmio_dma_coherence(const std::string& device_dir, bool x86);

// Opens platform device `name` through the driver it is bound to:
// vfio-platform, or none (then /dev/mem, found in `iomem`: /proc/iomem).
// Bound to virtio-mmio (the kernel's own driver) or anything else: an error
// that names the driver and gives the commands to hand it over.
std::unique_ptr<MmioDevice> open_mmio_device(const std::string& name, const std::string& sysfs = "/sys",
                                             const std::string& iomem = "/proc/iomem");

// The error text for a device bound to `driver` ("" = none) that vireo cannot drive as it is.
std::string mmio_binding_advice(const std::string& name, const std::string& driver, const std::string& sysfs = "/sys");

// The physical address of platform device `name`'s first memory region, from
// an /proc/iomem listing (root sees real addresses; others read zeros).
struct IomemRange {
    uint64_t start = 0, end = 0;  // inclusive
};
IomemRange iomem_range_of(const std::string& iomem_text, const std::string& name);

}  // namespace vireo
