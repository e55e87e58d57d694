"""vmlab --vfio-noiommu: a vfio.ko with CONFIG_VFIO_NOIOMMU for the guest kernel, built once from
Debian's linux-source against the matching linux-headers and linux-kbuild (unpacked with dpkg -x, never
installed) and cached beside the kernel. Any failure is a SkipError: vmlab prints one SKIP line and exits 77.
See tests/vm/README.md.
"""

import glob
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time

from vmlab_base import SkipError, log, makedir, run

NOIOMMU_PARAMS = "enable_unsafe_noiommu_mode=1"  # given to the rebuilt vfio.ko


# ---------------------------------------------------------------- vfio.ko with CONFIG_VFIO_NOIOMMU

def noiommu_packages(kernel):
    """The name=version specs the no-IOMMU vfio.ko is built from, all at the image's version."""
    series = re.match(r"\d+\.\d+", kernel.version).group(0)      # 6.1
    abi = re.match(r"\d+\.\d+\.\d+-\d+", kernel.kver).group(0)  # 6.1.0-56
    names = [f"linux-source-{series}", f"linux-headers-{kernel.kver}", f"linux-headers-{abi}-common",
             f"linux-kbuild-{series}"]
    return [f"{n}={kernel.version}" for n in names]


def apt_download(specs, dest):
    """apt-get download SPECS (name=version) into DEST; apt-get update and retry once. {name: deb}."""
    for attempt in (1, 2):
        r = run(["apt-get", "download", *specs], cwd=dest)
        debs = {os.path.basename(d).split("_")[0]: d for d in glob.glob(os.path.join(dest, "*.deb"))}
        if r.returncode == 0 and len(debs) == len(specs):
            return debs
        if attempt == 1:
            log("vfio-noiommu: apt-get download failed; running apt-get update and retrying once")
            run(["apt-get", "update"])
    errors = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("E:")]
    raise SkipError(f"apt-get download failed, also after apt-get update: {'; '.join(errors) or 'no .deb'}")


def extract_vfio_source(source_deb, dest):
    """Write the files of drivers/vfio/ (not its subfolders) from the linux-source-X.Y.tar.xz inside
    SOURCE_DEB to DEST. Streams the tarball and stops behind drivers/vfio/ (it is sorted by name)."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", source_deb], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    names = []
    try:
        outer = tarfile.open(fileobj=proc.stdout, mode="r|")
        tarball = next((m for m in outer if re.search(r"usr/src/linux-source-[\d.]+\.tar\.xz$", m.name)), None)
        if tarball is None:
            raise SkipError(f"{os.path.basename(source_deb)} holds no usr/src/linux-source-*.tar.xz")
        inner = tarfile.open(fileobj=outer.extractfile(tarball), mode="r|xz")
        for m in inner:
            vfio_file = re.fullmatch(r"[^/]+/drivers/vfio/([^/]+)", m.name)
            if vfio_file and m.isfile():
                with open(os.path.join(dest, vfio_file.group(1)), "wb") as f:
                    shutil.copyfileobj(inner.extractfile(m), f)
                names.append(vfio_file.group(1))
            elif names and "/drivers/vfio/" not in m.name:
                break
    except (tarfile.TarError, lzma.LZMAError, EOFError) as e:
        raise SkipError(f"cannot read {os.path.basename(source_deb)}: {e}") from e
    finally:
        proc.kill()
        proc.wait()
    if "Makefile" not in names:
        raise SkipError(f"no drivers/vfio/Makefile in {os.path.basename(source_deb)}")


def unpack_debs(debs, root):
    """dpkg -x each of DEBS into ROOT (nothing is installed)."""
    for deb in debs:
        r = run(["dpkg", "-x", deb, root])
        if r.returncode != 0:
            raise SkipError(f"dpkg -x {os.path.basename(deb)} failed: {r.stderr.strip()}")


def compile_vfio(root, src, kver, log_path):
    """make SRC's vfio.ko (the vfio-* objects of its Makefile) with CONFIG_VFIO_NOIOMMU against the
    linux-headers-KVER unpacked in ROOT."""
    hdr = os.path.join(root, "usr/src", f"linux-headers-{kver}")
    makefile = os.path.join(hdr, "Makefile")  # "include /usr/src/linux-headers-ABI-common/Makefile"
    with open(makefile) as f:
        text = f.read()
    with open(makefile, "w") as f:
        f.write(re.sub(r"^include /", f"include {root}/", text, flags=re.M))
    with open(os.path.join(src, "Makefile")) as f:
        objects = re.findall(r"^vfio-\S+\s*[:+]?=.*$", f.read().replace("\\\n", " "), re.M)
    if not objects:
        raise SkipError("drivers/vfio/Makefile has no vfio-y line")
    os.remove(os.path.join(src, "Makefile"))  # the Kbuild below builds vfio.ko only
    with open(os.path.join(src, "Kbuild"), "w") as f:
        f.write("\n".join(["obj-m := vfio.o", *objects, "ccflags-y += -DCONFIG_VFIO_NOIOMMU=1", ""]))
    with open(log_path, "w") as logf:
        try:
            r = subprocess.run(["make", "-j2", "-C", hdr, f"M={src}", "modules"], stdin=subprocess.DEVNULL,
                               stdout=logf, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            raise SkipError("no `make` on this host") from None
    if r.returncode != 0:
        lines = open(log_path).read().splitlines() or [""]
        first = next((s for s in lines if re.search(r"error|not found|No such file", s, re.I)), lines[-1])
        raise SkipError(f"make failed (exit {r.returncode}): {first.strip()} (whole log: {log_path})")
    return os.path.join(src, "vfio.ko")


def read_module(path):
    return lzma.open(path).read() if path.endswith(".xz") else open(path, "rb").read()


def modinfo_field(data, key):
    m = re.search(rb"\0" + key.encode() + rb"=([^\0]*)", data)
    return m.group(1).decode() if m else None


def export_crcs(symvers, module=None):
    """{symbol: crc} of MODULE's (every module's when None) exports listed in a Module.symvers."""
    with open(symvers) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    return {r[1]: r[0] for r in rows if len(r) >= 3 and module in (None, r[2])}


def check_vfio_ko(ko, stock, symvers):
    """KO must load where the kernel's STOCK vfio module does: same vermagic, the no-IOMMU parameter,
    and export CRCs equal to the kernel's SYMVERS (vfio_pci_core was built against those)."""
    built, magic = read_module(ko), modinfo_field(read_module(stock), "vermagic")
    if modinfo_field(built, "vermagic") != magic:
        raise SkipError(f"vermagic {modinfo_field(built, 'vermagic')!r} differs from the guest kernel's {magic!r}")
    if b"\0parmtype=enable_unsafe_noiommu_mode:" not in built:
        raise SkipError("the built vfio.ko has no enable_unsafe_noiommu_mode parameter")
    ours = export_crcs(os.path.join(os.path.dirname(ko), "Module.symvers"))
    kernels = export_crcs(symvers, "drivers/vfio/vfio")
    if ours != kernels:
        differ = sorted(s for s in ours.keys() | kernels.keys() if ours.get(s) != kernels.get(s))
        raise SkipError(f"exported symbol CRCs differ from the kernel's Module.symvers: {' '.join(differ)}")
    return magic, len(ours)


def build_noiommu_vfio(tmp, kernel, stock, log_path):
    """Download, extract and compile vfio.ko with CONFIG_VFIO_NOIOMMU in TMP; return its path."""
    specs = noiommu_packages(kernel)
    stages = []
    t = time.monotonic()
    log(f"vfio-noiommu: building vfio.ko for {kernel.kver}; downloading {' '.join(specs)}")
    debs = apt_download(specs, makedir(tmp, "debs"))
    stages.append(f"download {time.monotonic() - t:.1f}s")
    mb = sum(os.path.getsize(d) for d in debs.values()) / 1e6
    log(f"vfio-noiommu: {stages[-1]} ({mb:.0f} MB); unpacking the headers and streaming drivers/vfio "
        "out of the source tarball")
    t = time.monotonic()
    source = debs.pop(specs[0].split("=")[0])
    root, src = makedir(tmp, "root"), makedir(tmp, "src")
    unpack_debs(debs.values(), root)
    extract_vfio_source(source, src)
    stages.append(f"extract {time.monotonic() - t:.1f}s")
    log(f"vfio-noiommu: {stages[-1]} ({' '.join(sorted(os.listdir(src)))}); compiling (make -j2)")
    t = time.monotonic()
    ko = compile_vfio(root, src, kernel.kver, log_path)
    hdr = os.path.join(root, "usr/src", f"linux-headers-{kernel.kver}")
    magic, ncrc = check_vfio_ko(ko, stock, os.path.join(hdr, "Module.symvers"))
    stages.append(f"compile {time.monotonic() - t:.1f}s")
    log(f"vfio-noiommu: {stages[-1]}; vermagic '{magic.strip()}' and {ncrc} export CRCs match the kernel's")
    log(f"vfio-noiommu: built: {', '.join(stages)}")
    return ko


def prepare_noiommu_vfio(cache, kernel, stock):
    """The cached vfio.ko with CONFIG_VFIO_NOIOMMU for KERNEL (STOCK: its own vfio module), built
    first if missing. Raises SkipError when it cannot be built here."""
    final = os.path.join(cache, f"vfio-noiommu-{kernel.kver}_{kernel.version}")
    ko = os.path.join(final, "vfio.ko")
    if os.path.isfile(ko):
        log(f"vfio-noiommu: cached {ko}")
        return ko
    tmp = tempfile.mkdtemp(dir=cache, prefix=".vfio-noiommu-")
    try:
        built = build_noiommu_vfio(tmp, kernel, stock, final + ".log")
        out = makedir(tmp, "out")
        shutil.copy2(built, os.path.join(out, "vfio.ko"))
        try:
            os.replace(out, final)
        except OSError:  # a concurrent run finished first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"vfio-noiommu: cached as {ko}")
    return ko


def with_noiommu_vfio(modules, cache, kernel):
    """MODULES [(name, path, params)] with vfio replaced by the no-IOMMU build and its parameter."""
    stock = next((path for name, path, _ in modules if name == "vfio"), None)
    if stock is None:
        raise SkipError(f"vfio is built into {kernel.kver}, so it cannot be replaced")
    ko = prepare_noiommu_vfio(cache, kernel, stock)
    return [(n, ko, NOIOMMU_PARAMS) if n == "vfio" else (n, p, a) for n, p, a in modules]
