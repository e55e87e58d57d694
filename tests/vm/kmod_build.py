"""Building guest kernel modules Debian's kernel lacks, out of tree, once, cached beside the kernel
(noiommu_vfio.py: vfio.ko with CONFIG_VFIO_NOIOMMU; vdpa_sim_modules.py: the vDPA simulator;
vfio_platform_modules.py: vfio-platform and uio_pdrv_genirq). The recipe: a
kit made once per kernel (apt-get download linux-source, linux-headers(-common) and linux-kbuild at the image's
exact version; dpkg -x the headers and kbuild, never installed; the source files of every module built here
streamed out of the source tarball in one pass), then per module make -j2 against the kit's headers with the
given Kbuild, the module's checks, and its own cache. Any failure is a SkipError: vmlab prints one SKIP line
and exits 77. See tests/vm/README.md.
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


def kernel_packages(kernel):
    """The name=version specs a module is built from, all at the image's version; the source first."""
    series = re.match(r"\d+\.\d+", kernel.version).group(0)      # 6.1
    abi = re.match(r"\d+\.\d+\.\d+-\d+", kernel.kver).group(0)  # 6.1.0-56
    names = [f"linux-source-{series}", f"linux-headers-{kernel.kver}", f"linux-headers-{abi}-common",
             f"linux-kbuild-{series}"]
    return [f"{n}={kernel.version}" for n in names]


def apt_download(specs, dest, what):
    """apt-get download SPECS (name=version) into DEST; apt-get update and retry once. {name: deb}."""
    for attempt in (1, 2):
        r = run(["apt-get", "download", *specs], cwd=dest)
        debs = {os.path.basename(d).split("_")[0]: d for d in glob.glob(os.path.join(dest, "*.deb"))}
        if r.returncode == 0 and len(debs) == len(specs):
            return debs
        if attempt == 1:
            log(f"{what}: apt-get download failed; running apt-get update and retrying once")
            run(["apt-get", "update"])
    errors = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("E:")]
    raise SkipError(f"apt-get download failed, also after apt-get update: {'; '.join(errors) or 'no .deb'}")


def extract_source(source_deb, dest, name_of, done):
    """Stream the linux-source-X.Y.tar.xz inside SOURCE_DEB (sorted by name): each file whose path below the
    tree's top folder name_of(path) maps to a name is written as DEST/name; stops as soon as done(path, names)
    says so. Returns the names written."""
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
            rel = m.name.split("/", 1)[1] if "/" in m.name else ""
            name = name_of(rel) if m.isfile() else None
            if name:
                with open(os.path.join(dest, name), "wb") as f:
                    shutil.copyfileobj(inner.extractfile(m), f)
                names.append(name)
            if done(rel, names):
                break
    except (tarfile.TarError, lzma.LZMAError, EOFError) as e:
        raise SkipError(f"cannot read {os.path.basename(source_deb)}: {e}") from e
    finally:
        proc.kill()
        proc.wait()
    return names


def unpack_debs(debs, root):
    """dpkg -x each of DEBS into ROOT (nothing is installed)."""
    for deb in debs:
        r = run(["dpkg", "-x", deb, root])
        if r.returncode != 0:
            raise SkipError(f"dpkg -x {os.path.basename(deb)} failed: {r.stderr.strip()}")


def compile_kbuild(root, src, kver, kbuild, log_path):
    """make the modules KBUILD (a Kbuild file's text) names in SRC against the linux-headers-KVER unpacked
    in ROOT (the kit's). Returns the kernel's Module.symvers."""
    hdr = os.path.join(root, "usr/src", f"linux-headers-{kver}")
    with open(os.path.join(src, "Kbuild"), "w") as f:
        f.write(kbuild)
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
    return os.path.join(hdr, "Module.symvers")


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


# What the kit keeps of the source tree: every module vmlab builds takes its files from here. The tarball is
# sorted by name, so streaming it stops behind the last folder named (drivers/vhost/).
KIT_SOURCE = re.compile(r"drivers/(uio/[^/]+|vfio/[^/]+|vfio/platform/[^/]+|vdpa/.+|vhost/[^/]+)")
KIT_LAST = "drivers/vhost/~"
KIT_VERSION = 2  # bump when KIT_SOURCE changes: the kit is rebuilt under a new name


def source_kit(cache, kernel, what):
    """CACHE/kernel-kit-KVER_VERSION-vN/ with root/ (linux-headers and linux-kbuild unpacked, its Makefile
    pointed at them) and src/ (KIT_SOURCE's files, path with / as __): one download and one pass over the source
    tarball for every module built for this kernel (each pass costs 13-15 s of xz here)."""
    kit = os.path.join(cache, f"kernel-kit-{kernel.kver}_{kernel.version}-v{KIT_VERSION}")
    if os.path.isdir(kit):
        return kit
    tmp = tempfile.mkdtemp(dir=cache, prefix=".kernel-kit-")
    try:
        specs = kernel_packages(kernel)
        t = time.monotonic()
        log(f"{what}: making the kernel build kit for {kernel.kver}; downloading {' '.join(specs)}")
        debs = apt_download(specs, makedir(tmp, "debs"), what)
        mb = sum(os.path.getsize(d) for d in debs.values()) / 1e6
        log(f"{what}: download {time.monotonic() - t:.1f}s ({mb:.0f} MB); unpacking the headers, streaming the "
            "sources out of the tarball")
        t = time.monotonic()
        source = debs.pop(specs[0].split("=")[0])
        root, src = makedir(tmp, "kit/root"), makedir(tmp, "kit/src")
        unpack_debs(debs.values(), root)
        hdr = os.path.join(root, "usr/src", f"linux-headers-{kernel.kver}")
        makefile = os.path.join(hdr, "Makefile")  # "include /usr/src/linux-headers-ABI-common/Makefile"
        with open(makefile) as f:
            text = f.read()
        with open(makefile, "w") as f:
            f.write(re.sub(r"^include /", f"include {kit}/root/", text, flags=re.M))
        names = extract_source(source, src, lambda rel: rel.replace("/", "__") if KIT_SOURCE.fullmatch(rel) else None,
                               lambda rel, got: rel > KIT_LAST)
        log(f"{what}: extract {time.monotonic() - t:.1f}s ({len(names)} source files)")
        try:
            os.replace(os.path.join(tmp, "kit"), kit)
        except OSError:  # a concurrent run finished first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return kit


def kit_file(kit, rel):
    """The kit's copy of source file REL (drivers/...)."""
    return os.path.join(kit, "src", rel.replace("/", "__"))


def build(what, tmp, kernel, cache, sources, compile_and_check):
    """Copies SOURCES {tree path: name} from the kit into TMP/src and runs compile_and_check(root, src) ->
    {file: path} there, printing its time."""
    kit = source_kit(cache, kernel, what)
    src = makedir(tmp, "src")
    for rel, name in sources.items():
        if not os.path.isfile(kit_file(kit, rel)):
            raise SkipError(f"the source tarball has no {rel}")
        shutil.copy2(kit_file(kit, rel), os.path.join(src, name))
    t = time.monotonic()
    log(f"{what}: compiling {' '.join(sorted(sources.values()))} (make -j2)")
    files = compile_and_check(os.path.join(kit, "root"), src)
    log(f"{what}: compile {time.monotonic() - t:.1f}s")
    return files


def kit_sources(cache, kernel, what, pattern):
    """{tree path: name} of the kit's files whose tree path matches PATTERN (the name: the last part)."""
    kit = source_kit(cache, kernel, what)
    out = {}
    for f in os.listdir(os.path.join(kit, "src")):
        rel = f.replace("__", "/")
        if re.fullmatch(pattern, rel):
            out[rel] = os.path.basename(rel)
    return out


def cached(cache, what, key, names, build_into):
    """{name: path} of the files NAMES cached in CACHE/KEY, made first by build_into(tmp, log_path) ->
    {name: built path} when one is missing. The build happens in a temporary folder in CACHE, deleted after."""
    final = os.path.join(cache, key)
    paths = {n: os.path.join(final, n) for n in names}
    if all(os.path.isfile(p) for p in paths.values()):
        log(f"{what}: cached in {final}")
        return paths
    tmp = tempfile.mkdtemp(dir=cache, prefix=f".{key}-")
    try:
        built = build_into(tmp, final + ".log")
        out = makedir(tmp, "out")
        for n in names:
            shutil.copy2(built[n], os.path.join(out, n))
        try:
            os.replace(out, final)
        except OSError:  # a concurrent run finished first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"{what}: cached in {final}")
    return paths
