// UioDevice: a PCI function through uio_pci_generic and sysfs.
#include "transport/pci/uio_device.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "vireo/base/error.hpp"
#include "vireo/iova/dma_memory.hpp"

namespace vireo {
namespace {

namespace fs = std::filesystem;

// IORESOURCE_IO in the flags column of the sysfs "resource" file.
constexpr unsigned long kResourceIo = 0x100;

// The uioN under the function's sysfs folder (uio_pci_generic registers one).
std::string uio_name_of(const std::string& dir, const std::string& bdf) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir + "/uio", ec)) {
        const std::string n = e.path().filename().string();
        if (n.rfind("uio", 0) == 0) return n;
    }
    throw Error("pci:" + bdf + " is bound to uio_pci_generic but " + dir +
                "/uio names no uio device (did the bind fail? dmesg says why)");
}

// Flags of BAR `bar` from the sysfs "resource" file (one "start end flags" line per resource).
unsigned long bar_flags(const std::string& dir, uint32_t bar) {
    std::ifstream f(dir + "/resource");
    std::string line;
    for (uint32_t i = 0; i <= bar && std::getline(f, line); i++) {
        if (i != bar) continue;
        unsigned long long start = 0, end = 0, flags = 0;
        if (std::sscanf(line.c_str(), "%llx %llx %llx", &start, &end, &flags) == 3) return flags;
    }
    return 0;
}

}  // namespace

UioDevice::UioDevice(std::string bdf, const std::string& sysfs, const std::string& dev)
    : bdf_(std::move(bdf)), dir_(sysfs + "/bus/pci/devices/" + bdf_) {
    node_ = dev + "/" + uio_name_of(dir_, bdf_);
    uio_fd_ = ::open(node_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (uio_fd_ < 0) throw_sys_error("pci:" + bdf_ + ": open " + node_ + " (uio_pci_generic needs root)", errno);
    if (::flock(uio_fd_, LOCK_EX | LOCK_NB) < 0) {
        const int e = errno;
        ::close(uio_fd_);
        if (e == EWOULDBLOCK)
            throw Error("pci:" + bdf_ + ": " + node_ + " is held by another process (fuser " + node_ +
                        " names it): one driver per device");
        throw_sys_error("pci:" + bdf_ + ": flock " + node_, e);
    }
    config_fd_ = ::open((dir_ + "/config").c_str(), O_RDWR | O_CLOEXEC);
    if (config_fd_ < 0) {
        const int e = errno;
        ::close(uio_fd_);
        throw_sys_error("pci:" + bdf_ + ": open " + dir_ + "/config", e);
    }
}

UioDevice::~UioDevice() {
    if (irq_ != ConfigIrq::None) unwire_irqs();
    if (config_fd_ >= 0) ::close(config_fd_);
    if (uio_fd_ >= 0) ::close(uio_fd_);
}

PciMappedBar UioDevice::map_bar(uint32_t bar) const {
    if (bar > 5) throw Error("pci:" + bdf_ + ": BAR " + std::to_string(bar) + " does not exist");
    if (bar_flags(dir_, bar) & kResourceIo)
        throw Error("pci:" + bdf_ + ": BAR " + std::to_string(bar) +
                    " is an I/O-port BAR: uio maps only memory BARs (a legacy-only virtio device is not supported)");
    const std::string path = dir_ + "/resource" + std::to_string(bar);
    const int fd = ::open(path.c_str(), O_RDWR | O_SYNC | O_CLOEXEC);
    if (fd < 0) throw_sys_error("pci:" + bdf_ + ": open " + path + " (BAR " + std::to_string(bar) + ")", errno);
    struct stat st {};
    if (::fstat(fd, &st) < 0 || st.st_size == 0) {
        ::close(fd);
        throw Error("pci:" + bdf_ + ": BAR " + std::to_string(bar) + " is empty");
    }
    void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int e = errno;
    ::close(fd);  // the mapping stays
    if (p == MAP_FAILED) throw_sys_error("pci:" + bdf_ + ": mmap of " + path, e);
    return PciMappedBar(p, static_cast<size_t>(st.st_size));
}

void UioDevice::config_read(uint32_t offset, void* buf, size_t len) const {
    const ssize_t n = ::pread(config_fd_, buf, len, offset);
    if (n != static_cast<ssize_t>(len))
        throw_sys_error("pci:" + bdf_ + ": config space read at " + std::to_string(offset) +
                            " (past byte 64 sysfs lets only root read)",
                        n < 0 ? errno : EIO);
}

void UioDevice::config_write(uint32_t offset, const void* buf, size_t len) const {
    const ssize_t n = ::pwrite(config_fd_, buf, len, offset);
    if (n != static_cast<ssize_t>(len))
        throw_sys_error("pci:" + bdf_ + ": config space write at " + std::to_string(offset), n < 0 ? errno : EIO);
}

// uio_pci_generic has no irqcontrol (a write to /dev/uioN is ENOSYS): its
// handler masks a firing line by setting INTx Disable in the command register
// (PCI 3.0 6.2.2, bit 10), and the driver clears that bit to let it fire again.
void UioDevice::intx_disable(bool disable) const {
    constexpr uint32_t kCommand = 0x04;
    constexpr uint16_t kIntxDisable = 1u << 10;
    const uint16_t cmd = config_read16(kCommand);
    const uint16_t want = disable ? cmd | kIntxDisable : cmd & ~kIntxDisable;
    if (want != cmd) config_write16(kCommand, want);
}

// uio_pci_generic has INTx only (MSI-X stays disabled, so a virtio device
// signals through INTx and the ISR, 4.1.5.3). A function without an
// interrupt line (sysfs irq 0) gets none: its link is polled only.
ConfigIrq UioDevice::wire_config_irq(uint16_t) {
    std::ifstream f(dir_ + "/irq");
    long irq = 0;
    if (!(f >> irq) || irq <= 0) return irq_ = ConfigIrq::None;
    intx_disable(false);
    return irq_ = ConfigIrq::Intx;
}

bool UioDevice::take_irq() {
    uint32_t count = 0;
    return irq_ == ConfigIrq::Intx && ::read(uio_fd_, &count, sizeof count) == sizeof count;
}

void UioDevice::unmask_intx() {
    if (irq_ == ConfigIrq::Intx) intx_disable(false);
}

void UioDevice::unwire_irqs() {
    if (irq_ == ConfigIrq::Intx) {
        try {
            intx_disable(true);
        } catch (const Error&) {  // shutdown of a device that is gone: nothing to mask
        }
    }
    irq_ = ConfigIrq::None;
}

void UioDevice::attach_memory(DmaMemory& mem, const DmaPlan& plan) {
    if (mem.mode() != IovaMode::PA || plan.mode != IovaMode::PA)
        throw Error("pci:" + bdf_ +
                    " is bound to uio_pci_generic, which has no IOMMU: its descriptors must carry physical "
                    "addresses, but the DMA memory is in IOVA mode va; run with --iova-mode=pa, or bind the device "
                    "to vfio-pci behind an IOMMU");
}

}  // namespace vireo
