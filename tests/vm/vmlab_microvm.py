"""vmlab --machine microvm: QEMU's microvm machine (no PCI) with virtio-net-device NICs on virtio-mmio, the
way Firecracker-style microVMs give their guests devices. ACPI describes each virtio-mmio transport (LNRO0005,
0x200 bytes of registers, one level-triggered line); Debian's kernel lacks CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES,
so the command-line way (acpi=off) would leave the guest without them. The devices are version 2 (virtio 1.x)
unless --legacy-mmio keeps QEMU's default, version 1. With ACPI and QEMU 7.2's second IOAPIC there are 24
transports from 0xfeb00000, and the first -device takes the highest one (hw/i386/microvm.c), so NIC i's
registers are at 0xfeb00000 + (23 - i) * 0x200; the guest's /init finds each one's platform device by that
address in /proc/iomem.
"""

import re
import subprocess

from vmlab_base import SetupError

MMIO_BASE = 0xfeb00000
MMIO_SLOT_SIZE = 0x200
MMIO_SLOTS = 24


def slot_address(i):
    return MMIO_BASE + (MMIO_SLOTS - 1 - i) * MMIO_SLOT_SIZE


def host_tsc_khz():
    """The host's TSC frequency in kHz: TCG's guest TSC is the host's own counter. From sysfs where the kernel
    says it, else its boot log ("tsc: Detected 2599.998 MHz processor"), else /proc/cpuinfo's "cpu MHz"."""
    try:
        return int(open("/sys/devices/system/cpu/cpu0/tsc_freq_khz").read())
    except (OSError, ValueError):
        pass
    log = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    found = re.findall(r"tsc: (?:Refined TSC clocksource calibration|Detected)[: ]+([\d.]+) MHz", log)
    if not found:
        found = re.findall(r"^cpu MHz\s*:\s*([\d.]+)", open("/proc/cpuinfo").read(), re.M)
    if not found:
        raise SetupError("cannot tell the host's TSC frequency (sysfs, dmesg, /proc/cpuinfo), which microvm needs")
    return int(float(found[-1]) * 1000)


def qemu_command(args, vmlinux, initrd, qmp_path, nics):
    """The QEMU argv for NICS (vmlab's Nic tuples, in --nic order), the register address of each, their MACs.
    microvm has no HPET and no ACPI PM timer, so the guest kernel calibrates its TSC against the PIT alone, and
    under TCG that fails about one boot in three ("tsc: Unable to calibrate against PIT ... Marking TSC
    unstable"), after which it hangs; tsc_early_khz gives it the frequency instead."""
    append = f"console=ttyS0 quiet panic=-1 tsc_early_khz={host_tsc_khz()} {args.append}".strip()
    cmd = ["qemu-system-x86_64", "-M", "microvm,acpi=on", "-accel", "tcg", "-cpu", args.cpu,
           "-m", str(args.mem), "-smp", str(args.smp), "-nographic", "-no-reboot",
           "-kernel", vmlinux, "-initrd", initrd, "-append", append,
           "-qmp", f"unix:{qmp_path},server=on,wait=off"]
    if not args.legacy_mmio:
        cmd += ["-global", "virtio-mmio.force-legacy=false"]
    slots, macs = [], []
    for i, nic in enumerate(nics):
        if nic.tap:
            raise SetupError("--machine microvm: NICs on hubs only (tap= is for q35)")
        cmd += ["-netdev", f"hubport,id=n{i},hubid={nic.hub}",
                "-device", ",".join(["virtio-net-device", f"id=nic{i}", f"netdev=n{i}", f"mac={nic.mac}", *nic.extra])]
        slots.append(f"{slot_address(i):x}")
        macs.append(nic.mac)
    return cmd, slots, macs
