"""vmlab --vfio-noiommu: a vfio.ko with CONFIG_VFIO_NOIOMMU for the guest kernel, built once (kmod_build.py)
from Debian's linux-source against the matching linux-headers and linux-kbuild and cached beside the kernel.
Checked: vermagic equal to the stock vfio's, the no-IOMMU parameter there, export CRCs equal to the kernel's
Module.symvers (vfio_pci_core was built against those). See tests/vm/README.md.
"""

import os
import re

from kmod_build import build, cached, compile_kbuild, export_crcs, kit_sources, modinfo_field, read_module
from vmlab_base import SkipError

NOIOMMU_PARAMS = "enable_unsafe_noiommu_mode=1"  # given to the rebuilt vfio.ko


def compile_and_check(root, src, kver, stock, log_path):
    """vfio.ko of the vfio-* objects of the source's own Makefile, with CONFIG_VFIO_NOIOMMU."""
    with open(os.path.join(src, "Makefile")) as f:
        objects = re.findall(r"^vfio-\S+\s*[:+]?=.*$", f.read().replace("\\\n", " "), re.M)
    if not objects:
        raise SkipError("drivers/vfio/Makefile has no vfio-y line")
    os.remove(os.path.join(src, "Makefile"))  # the Kbuild builds vfio.ko only
    symvers = compile_kbuild(root, src, kver,
                             "\n".join(["obj-m := vfio.o", *objects, "ccflags-y += -DCONFIG_VFIO_NOIOMMU=1", ""]),
                             log_path)
    ko = os.path.join(src, "vfio.ko")
    built, magic = read_module(ko), modinfo_field(read_module(stock), "vermagic")
    if modinfo_field(built, "vermagic") != magic:
        raise SkipError(f"vermagic {modinfo_field(built, 'vermagic')!r} differs from the guest kernel's {magic!r}")
    if b"\0parmtype=enable_unsafe_noiommu_mode:" not in built:
        raise SkipError("the built vfio.ko has no enable_unsafe_noiommu_mode parameter")
    ours = export_crcs(os.path.join(src, "Module.symvers"))
    kernels = export_crcs(symvers, "drivers/vfio/vfio")
    if ours != kernels:
        differ = sorted(s for s in ours.keys() | kernels.keys() if ours.get(s) != kernels.get(s))
        raise SkipError(f"exported symbol CRCs differ from the kernel's Module.symvers: {' '.join(differ)}")
    return {"vfio.ko": ko}


def with_noiommu_vfio(modules, cache, kernel):
    """MODULES [(name, path, params)] with vfio replaced by the no-IOMMU build and its parameter."""
    stock = next((path for name, path, _ in modules if name == "vfio"), None)
    if stock is None:
        raise SkipError(f"vfio is built into {kernel.kver}, so it cannot be replaced")
    def build_into(tmp, log_path):
        sources = kit_sources(cache, kernel, "vfio-noiommu", r"drivers/vfio/[^/]+")  # the files directly in it
        if "drivers/vfio/Makefile" not in sources:
            raise SkipError("the source tarball has no drivers/vfio/Makefile")
        return build("vfio-noiommu", tmp, kernel, cache, sources,
                     lambda root, src: compile_and_check(root, src, kernel.kver, stock, log_path))

    ko = cached(cache, "vfio-noiommu", f"vfio-noiommu-{kernel.kver}_{kernel.version}", ["vfio.ko"],
                build_into)["vfio.ko"]
    return [(n, ko, NOIOMMU_PARAMS) if n == "vfio" else (n, p, a) for n, p, a in modules]
