"""vmlab --driver vfio-platform: vfio-platform for the guest kernel, to hand virtio-mmio devices (QEMU microvm) to
user space. Debian builds it for ARM only (CONFIG_VFIO_PLATFORM depends on ARM || ARM64 || COMPILE_TEST), so
vfio-platform-base.ko (vfio_platform_common.c, vfio_platform_irq.c) and vfio-platform.ko (vfio_platform.c) are
compiled once (kmod_build.py) from Debian's linux-source at the image's exact version and cached beside the
kernel; so is uio_pdrv_genirq.ko (CONFIG_UIO_PDRV_GENIRQ is off too), the alternative the mmio check shows
refusing an ACPI device. modpost resolves every import against the kernel's Module.symvers; each module's
vermagic is checked against the stock vfio_virqfd.ko's. vfio-platform needs a reset method for the device unless
loaded with reset_required=0 (QEMU's microvm describes none), which Debian's 6.1 honours only with upstream's
fix applied (RESET_FIXED below). See tests/vm/README.md.
"""

from kmod_build import build, cached, compile_kbuild, modinfo_field, read_module
from vmlab_base import SkipError

SOURCES = {
    "drivers/vfio/platform/vfio_platform.c": "vfio_platform.c",
    "drivers/vfio/platform/vfio_platform_common.c": "vfio_platform_common.c",
    "drivers/vfio/platform/vfio_platform_irq.c": "vfio_platform_irq.c",
    "drivers/vfio/platform/vfio_platform_private.h": "vfio_platform_private.h",
    "drivers/uio/uio_pdrv_genirq.c": "uio_pdrv_genirq.c",
}
KBUILD = """obj-m := vfio-platform-base.o vfio-platform.o uio_pdrv_genirq.o
vfio-platform-base-y := vfio_platform_common.o vfio_platform_irq.o
vfio-platform-y := vfio_platform.o
"""
BUILT = {"vfio_platform_base": "vfio-platform-base.ko", "vfio_platform": "vfio-platform.ko",
         "uio_pdrv_genirq": "uio_pdrv_genirq.ko"}  # module name: file
PARAMS = {"vfio_platform": "reset_required=0"}
STOCK = ["vfio_virqfd", "uio"]  # the guest's own modules they import from


# Upstream commit 168a9c91fe0a ("vfio: platform: ignore missing reset if disabled at module init", Linux 6.3):
# before it, vfio_platform_init_common() returned the missing reset's -ENOENT even with reset_required=0, so no
# device without a reset method could be bound (probe "failed with error -2"). Debian's 6.1 lacks it; applied
# here to the copied source, and checked: the build stops if neither the old nor the fixed text is there.
RESET_UNFIXED = """\tret = vfio_platform_get_reset(vdev);
\tif (ret && vdev->reset_required)
\t\tdev_err(dev, "No reset function found for device %s\\n",
\t\t\tvdev->name);
\treturn ret;
}"""
RESET_FIXED = """\tret = vfio_platform_get_reset(vdev);
\tif (ret && vdev->reset_required) {
\t\tdev_err(dev, "No reset function found for device %s\\n",
\t\t\tvdev->name);
\t\treturn ret;
\t}

\treturn 0;
}"""


def apply_reset_fix(src):
    path = f"{src}/vfio_platform_common.c"
    text = open(path).read()
    if RESET_FIXED in text:
        return
    if RESET_UNFIXED not in text:
        raise SkipError("vfio_platform_common.c: vfio_platform_init_common() is neither the 6.1 code nor the fixed "
                        "one (upstream 168a9c91fe0a); check what this kernel does with reset_required=0")
    with open(path, "w") as f:
        f.write(text.replace(RESET_UNFIXED, RESET_FIXED))


def compile_and_check(root, src, kernel, stock_virqfd, log_path):
    apply_reset_fix(src)
    compile_kbuild(root, src, kernel.kver, KBUILD, log_path)
    magic = modinfo_field(read_module(stock_virqfd), "vermagic")
    for f in BUILT.values():
        got = modinfo_field(read_module(f"{src}/{f}"), "vermagic")
        if got != magic:
            raise SkipError(f"{f}: vermagic {got!r} differs from the guest kernel's {magic!r}")
    return {f: f"{src}/{f}" for f in BUILT.values()}


def with_vfio_platform(modules, stock_index, cache, kernel):
    """MODULES [(name, path, params)] (with vfio already there) followed by the stock modules vfio-platform
    and uio_pdrv_genirq import from (from STOCK_INDEX {name: path}) and the built ones, in insmod order."""
    missing = [m for m in STOCK if m not in stock_index]
    if missing:
        raise SkipError(f"the guest kernel has no {' '.join(missing)} module")
    have = {n for n, _, _ in modules}
    out = modules + [(m, stock_index[m], "") for m in STOCK if m not in have]
    kos = cached(cache, "vfio-platform", f"vfio-platform-{kernel.kver}_{kernel.version}", list(BUILT.values()),
                 lambda tmp, log_path: build("vfio-platform", tmp, kernel, cache, SOURCES,
                                             lambda root, src: compile_and_check(root, src, kernel,
                                                                                 stock_index["vfio_virqfd"],
                                                                                 log_path)))
    return out + [(m, kos[f], PARAMS.get(m, "")) for m, f in BUILT.items()]
