"""vmlab --vdpa-sim: the vDPA simulator for the guest kernel. Debian's 6.1 is built without CONFIG_VDPA and
CONFIG_VHOST_RING, so vringh.ko, vdpa.ko, vdpa_sim.ko, vdpa_sim_net.ko and vhost_vdpa.ko are compiled once
(kmod_build.py) from Debian's linux-source at the image's exact version (vhost_vdpa must match the vhost.h
Debian's vhost.ko was built from) and cached beside the kernel. modpost resolves every import against the
kernel's Module.symvers (so each symbol and its CRC exists); each module's vermagic is checked against the stock
vhost.ko's. See tests/vm/README.md.
"""

from kmod_build import build, cached, compile_kbuild, modinfo_field, read_module
from vmlab_base import SkipError

# Source file in the tree -> file name in the build folder. drivers/vhost/vdpa.c becomes vhost_vdpa.c: its
# module is vhost_vdpa (drivers/vhost/Makefile), and drivers/vdpa/vdpa.c is vdpa.ko.
SOURCES = {
    "drivers/vdpa/vdpa.c": "vdpa.c",
    "drivers/vdpa/vdpa_sim/vdpa_sim.c": "vdpa_sim.c",
    "drivers/vdpa/vdpa_sim/vdpa_sim.h": "vdpa_sim.h",
    "drivers/vdpa/vdpa_sim/vdpa_sim_net.c": "vdpa_sim_net.c",
    "drivers/vhost/vringh.c": "vringh.c",
    "drivers/vhost/vdpa.c": "vhost_vdpa.c",
    "drivers/vhost/vhost.h": "vhost.h",
}
BUILT = ["vringh", "vdpa", "vdpa_sim", "vdpa_sim_net", "vhost_vdpa"]  # also their insmod order
STOCK_BEFORE = ["vhost_iotlb", "vhost"]  # the guest's own modules they import from, loaded first


def compile_and_check(root, src, kernel, stock_vhost, log_path):
    compile_kbuild(root, src, kernel.kver, "obj-m := " + " ".join(f"{m}.o" for m in BUILT) + "\n", log_path)
    magic = modinfo_field(read_module(stock_vhost), "vermagic")
    for m in BUILT:
        got = modinfo_field(read_module(f"{src}/{m}.ko"), "vermagic")
        if got != magic:
            raise SkipError(f"{m}.ko: vermagic {got!r} differs from the guest kernel's {magic!r}")
    return {f"{m}.ko": f"{src}/{m}.ko" for m in BUILT}


def with_vdpa_sim(modules, stock_index, cache, kernel):
    """MODULES [(name, path, params)] followed by the stock modules vDPA needs (from STOCK_INDEX {name:
    path}) and the built ones, in insmod order."""
    missing = [m for m in STOCK_BEFORE if m not in stock_index]
    if missing:
        raise SkipError(f"the guest kernel has no {' '.join(missing)} module")
    have = {n for n, _, _ in modules}
    out = modules + [(m, stock_index[m], "") for m in STOCK_BEFORE if m not in have]
    kos = cached(cache, "vdpa-sim", f"vdpa-sim-{kernel.kver}_{kernel.version}", [f"{m}.ko" for m in BUILT],
                 lambda tmp, log_path: build("vdpa-sim", tmp, kernel, cache, SOURCES,
                                             lambda root, src: compile_and_check(root, src, kernel,
                                                                                 stock_index["vhost"], log_path)))
    return out + [(m, kos[f"{m}.ko"], "") for m in BUILT]
