"""vmlab --vdpa-sim: the vDPA simulator for the guest kernel. Debian's 6.1 is built without CONFIG_VDPA and
CONFIG_VHOST_RING, so vringh.ko, vdpa.ko, vdpa_sim.ko, vdpa_sim_net.ko and vhost_vdpa.ko are compiled once
from Debian's linux-source (the image's exact version: vhost_vdpa must match the vhost.h Debian's vhost.ko was
built from) against the matching linux-headers and linux-kbuild, the way noiommu_vfio.py builds vfio.ko, and
cached beside the kernel. modpost resolves every import against the kernel's Module.symvers (so each symbol and
its CRC exists); each module's vermagic is checked against the stock vhost.ko's. Any failure is a SkipError:
vmlab prints one SKIP line and exits 77. See tests/vm/README.md.
"""

import lzma
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time

from noiommu_vfio import apt_download, modinfo_field, noiommu_packages, read_module, unpack_debs
from vmlab_base import SkipError, log, makedir, run

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


def extract_sources(source_deb, dest):
    """Write SOURCES from the linux-source-X.Y.tar.xz inside SOURCE_DEB to DEST. Streams the tarball (sorted
    by name) and stops once past drivers/vhost/."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", source_deb], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    found = set()
    try:
        outer = tarfile.open(fileobj=proc.stdout, mode="r|")
        tarball = next((m for m in outer if re.search(r"usr/src/linux-source-[\d.]+\.tar\.xz$", m.name)), None)
        if tarball is None:
            raise SkipError(f"{os.path.basename(source_deb)} holds no usr/src/linux-source-*.tar.xz")
        inner = tarfile.open(fileobj=outer.extractfile(tarball), mode="r|xz")
        for m in inner:
            rel = m.name.split("/", 1)[1] if "/" in m.name else ""
            if rel in SOURCES and m.isfile():
                with open(os.path.join(dest, SOURCES[rel]), "wb") as f:
                    shutil.copyfileobj(inner.extractfile(m), f)
                found.add(rel)
            if len(found) == len(SOURCES) or rel > "drivers/vhost/~":
                break
    except (tarfile.TarError, lzma.LZMAError, EOFError) as e:
        raise SkipError(f"cannot read {os.path.basename(source_deb)}: {e}") from e
    finally:
        proc.kill()
        proc.wait()
    missing = sorted(set(SOURCES) - found)
    if missing:
        raise SkipError(f"{os.path.basename(source_deb)} lacks {' '.join(missing)}")


def compile_modules(root, src, kver, log_path):
    """make the BUILT modules in SRC against the linux-headers-KVER unpacked in ROOT."""
    hdr = os.path.join(root, "usr/src", f"linux-headers-{kver}")
    makefile = os.path.join(hdr, "Makefile")  # "include /usr/src/linux-headers-ABI-common/Makefile"
    with open(makefile) as f:
        text = f.read()
    with open(makefile, "w") as f:
        f.write(re.sub(r"^include /", f"include {root}/", text, flags=re.M))
    with open(os.path.join(src, "Kbuild"), "w") as f:
        f.write("obj-m := " + " ".join(f"{m}.o" for m in BUILT) + "\n")
    with open(log_path, "w") as logf:
        try:
            r = subprocess.run(["make", "-j2", "-C", hdr, f"M={src}", "modules"], stdin=subprocess.DEVNULL,
                               stdout=logf, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            raise SkipError("no `make` on this host") from None
    if r.returncode != 0:
        lines = open(log_path).read().splitlines() or [""]
        first = next((s for s in lines if re.search(r"error|undefined|not found|No such file", s, re.I)), lines[-1])
        raise SkipError(f"make failed (exit {r.returncode}): {first.strip()} (whole log: {log_path})")
    return {m: os.path.join(src, f"{m}.ko") for m in BUILT}


def check_modules(kos, stock_vhost):
    """Each built module's vermagic equals the stock vhost.ko's (modpost already resolved every import)."""
    magic = modinfo_field(read_module(stock_vhost), "vermagic")
    for name, ko in kos.items():
        got = modinfo_field(read_module(ko), "vermagic")
        if got != magic:
            raise SkipError(f"{name}.ko: vermagic {got!r} differs from the guest kernel's {magic!r}")
    return magic


def build_vdpa_sim(tmp, kernel, stock_vhost, log_path):
    specs = noiommu_packages(kernel)  # linux-source, linux-headers(-common), linux-kbuild at the image's version
    stages = []
    t = time.monotonic()
    log(f"vdpa-sim: building {' '.join(BUILT)} for {kernel.kver}; downloading {' '.join(specs)}")
    debs = apt_download(specs, makedir(tmp, "debs"))
    stages.append(f"download {time.monotonic() - t:.1f}s")
    log(f"vdpa-sim: {stages[-1]}; unpacking the headers and streaming the sources out of the tarball")
    t = time.monotonic()
    source = debs.pop(specs[0].split("=")[0])
    root, src = makedir(tmp, "root"), makedir(tmp, "src")
    unpack_debs(debs.values(), root)
    extract_sources(source, src)
    stages.append(f"extract {time.monotonic() - t:.1f}s")
    log(f"vdpa-sim: {stages[-1]}; compiling (make -j2)")
    t = time.monotonic()
    kos = compile_modules(root, src, kernel.kver, log_path)
    magic = check_modules(kos, stock_vhost)
    stages.append(f"compile {time.monotonic() - t:.1f}s")
    log(f"vdpa-sim: {stages[-1]}; vermagic '{magic.strip()}' matches; every import resolved by modpost")
    log(f"vdpa-sim: built: {', '.join(stages)}")
    return kos


def prepare_vdpa_sim(cache, kernel, stock_vhost):
    """{module: path} of the cached vDPA simulator modules for KERNEL, built first if missing."""
    final = os.path.join(cache, f"vdpa-sim-{kernel.kver}_{kernel.version}")
    kos = {m: os.path.join(final, f"{m}.ko") for m in BUILT}
    if all(os.path.isfile(k) for k in kos.values()):
        log(f"vdpa-sim: cached in {final}")
        return kos
    tmp = tempfile.mkdtemp(dir=cache, prefix=".vdpa-sim-")
    try:
        built = build_vdpa_sim(tmp, kernel, stock_vhost, final + ".log")
        out = makedir(tmp, "out")
        for m, ko in built.items():
            shutil.copy2(ko, os.path.join(out, f"{m}.ko"))
        try:
            os.replace(out, final)
        except OSError:  # a concurrent run finished first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"vdpa-sim: cached in {final}")
    return kos


def with_vdpa_sim(modules, stock_index, cache, kernel):
    """MODULES [(name, path, params)] followed by the stock modules vDPA needs (from STOCK_INDEX {name:
    path}) and the built ones, in insmod order."""
    have = {n for n, _, _ in modules}
    missing = [m for m in STOCK_BEFORE if m not in stock_index]
    if missing:
        raise SkipError(f"the guest kernel has no {' '.join(missing)} module")
    out = modules + [(m, stock_index[m], "") for m in STOCK_BEFORE if m not in have]
    kos = prepare_vdpa_sim(cache, kernel, stock_index["vhost"])
    return out + [(m, kos[m], "") for m in BUILT]
