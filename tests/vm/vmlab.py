#!/usr/bin/env python3
"""vmlab: run our userspace binaries inside a QEMU-TCG Linux guest with VFIO, an
emulated Intel vIOMMU and several virtio-net-pci devices bound to vfio-pci (or uio_pci_generic).

The guest kernel is Debian's current linux-image-*-amd64 package, fetched once with
apt-get into a cache; an initramfs with busybox, the driver's modules, the binaries (plus
their shared libraries) and a test script is built fresh each run. The guest's /init
binds every virtio-net device to the driver, runs the script and prints
`VIREO-VM-EXIT <rc>`; vmlab exits with that rc. --vfio-noiommu builds (once, cached) a
vfio.ko with CONFIG_VFIO_NOIOMMU from Debian's linux-source. See tests/vm/README.md.
"""

import argparse
import glob
import json
import lzma
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import namedtuple

import vmlab_microvm
import vmlab_tap
from noiommu_vfio import NOIOMMU_PARAMS, with_noiommu_vfio
from vdpa_sim_modules import with_vdpa_sim
from vfio_platform_modules import with_vfio_platform
from vmlab_base import SetupError, SkipError, log, makedir, run

BUSYBOX = "/bin/busybox"
HERE = os.path.dirname(os.path.abspath(__file__))
MARKER = re.compile(rb"VIREO-VM-EXIT (-?\d+)\r?\n")  # the newline: a chunk may split the number
INIT_MARKER = b"VIREO-VM-INIT"
# (module, required): insmod order of each --driver's chain. Absent optional or built-in ones are skipped.
DRIVER_MODULES = {
    "vfio-pci": [("vfio", True), ("vfio_iommu_type1", True), ("irqbypass", False),
                 ("vfio_virqfd", False), ("vfio_pci_core", True), ("vfio_pci", True)],
    "uio_pci_generic": [("uio", True), ("uio_pci_generic", True)],
    "vfio-platform": [("vfio", True), ("vfio_virqfd", True)],  # + the built ones (vfio_platform_modules.py)
    "none": [],  # microvm: the NICs stay unbound (/dev/mem)
}
FIRST_SLOT = 0x10          # NIC i sits at pcie.0 slot 0x10+i (or behind a root port there)
MAX_NICS = 16
RESERVED_NIC_KEYS = {"netdev", "id", "bus", "addr"}  # vmlab sets these
EXIT_SKIP, EXIT_SETUP, EXIT_VM = 77, 98, 99  # 77: meson's "skipped"

Kernel = namedtuple("Kernel", "kver version vmlinux moddir")  # 6.1.0-56-amd64, 6.1.192-2, paths




# ---------------------------------------------------------------- guest kernel

def kernel_package_name():
    """The linux-image-KVER-amd64 package that linux-image-amd64 depends on, or None."""
    out = run(["apt-cache", "depends", "linux-image-amd64"]).stdout
    m = re.search(r"Depends:\s*(linux-image-\S+-amd64)\s*$", out, re.M)
    return m.group(1) if m else None


def download_kernel_deb(cache):
    """apt-get download the current kernel package into CACHE; apt-get update once if stale."""
    error = ""
    for attempt in (1, 2):
        name = kernel_package_name()
        if name:
            tmp = tempfile.mkdtemp(dir=cache, prefix=".download-")
            r = run(["apt-get", "download", name], cwd=tmp)
            debs = glob.glob(os.path.join(tmp, f"{name}_*.deb"))
            if r.returncode == 0 and debs:
                final = os.path.join(cache, os.path.basename(debs[0]))
                os.replace(debs[0], final)
                shutil.rmtree(tmp)
                return final
            shutil.rmtree(tmp)
            error = f"`apt-get download {name}` failed:\n{r.stdout}{r.stderr}"
        else:
            error = "`apt-cache depends linux-image-amd64` names no linux-image-*-amd64 package"
        if attempt == 1:
            log("kernel download failed; running apt-get update and retrying once")
            run(["apt-get", "update"])
    raise SetupError(f"cannot fetch the guest kernel (no network or no Debian mirror?)\n{error}")


def extract_vmlinux(vmlinuz, out):
    """Write the uncompressed ELF vmlinux (PVH-bootable) held as an xz stream in VMLINUZ."""
    data = open(vmlinuz, "rb").read()
    pos = data.find(b"\xfd7zXZ\x00")
    while pos >= 0:
        try:
            elf = lzma.LZMADecompressor().decompress(data[pos:])  # trailing bytes: unused_data
            if elf.startswith(b"\x7fELF"):
                with open(out, "wb") as f:
                    f.write(elf)
                return
        except lzma.LZMAError:
            pass
        pos = data.find(b"\xfd7zXZ\x00", pos + 1)
    raise SetupError(f"no xz-compressed ELF kernel found in {vmlinuz}")


def prepare_kernel(cache):
    """Return a Kernel, downloading and unpacking only what is not cached."""
    os.makedirs(cache, exist_ok=True)
    debs = sorted(glob.glob(os.path.join(cache, "linux-image-*-amd64_*_amd64.deb")),
                  key=os.path.getmtime)
    if debs:
        deb = debs[-1]
        log(f"kernel package cached: {deb}")
    else:
        log("downloading the guest kernel package (apt-get download)")
        deb = download_kernel_deb(cache)
    root = deb[:-len(".deb")]
    if not os.path.isfile(os.path.join(root, "vmlinux")):
        tmp = tempfile.mkdtemp(dir=cache, prefix=".extract-")
        r = run(["dpkg", "-x", deb, tmp])
        vmlinuz = glob.glob(os.path.join(tmp, "boot", "vmlinuz-*"))
        if r.returncode != 0 or not vmlinuz:
            raise SetupError(f"dpkg -x {deb} failed or holds no boot/vmlinuz-*: {r.stderr}")
        extract_vmlinux(vmlinuz[0], os.path.join(tmp, "vmlinux"))
        shutil.rmtree(root, ignore_errors=True)
        try:
            os.replace(tmp, root)
        except OSError:  # a concurrent run unpacked it first
            shutil.rmtree(tmp, ignore_errors=True)
    moddirs = glob.glob(os.path.join(root, "lib/modules/*")) + \
        glob.glob(os.path.join(root, "usr/lib/modules/*"))
    if not moddirs:
        raise SetupError(f"no lib/modules/KVER in {root}")
    version = urllib.parse.unquote(os.path.basename(deb).split("_")[1])  # an epoch is saved as %3a
    return Kernel(os.path.basename(moddirs[0]), version, os.path.join(root, "vmlinux"), moddirs[0])




# ---------------------------------------------------------------- initramfs

def module_index(moddir):
    """{name: path} of every module file under MODDIR (.ko or .ko.xz)."""
    index = {}
    for dirpath, _, files in os.walk(moddir):
        for f in files:
            if f.endswith((".ko", ".ko.xz")):  # .ko.zst would need zstd: not in python
                index[f.split(".ko")[0].replace("-", "_")] = os.path.join(dirpath, f)
    return index


def module_files(moddir, driver, extra=()):
    """[(name, path, params)] of DRIVER's module chain, then the EXTRA modules (all required), in insmod
    order (.ko or .ko.xz), skipping built-ins; params is "" (--vfio-noiommu sets vfio's)."""
    index = module_index(moddir)
    builtin_path = os.path.join(moddir, "modules.builtin")
    builtin = open(builtin_path).read().replace("-", "_") if os.path.exists(builtin_path) else ""
    chosen = []
    for name, required in DRIVER_MODULES[driver] + [(m, True) for m in extra]:
        if name in index:
            chosen.append((name, index[name], ""))
        elif required and f"/{name}.ko" not in builtin:
            raise SetupError(f"kernel module {name} is neither in {moddir} nor built in")
    return chosen


def shared_libraries(binary):
    """Absolute paths of BINARY's shared libraries and loader (ldd); [] when static."""
    r = run(["ldd", binary])
    if r.returncode != 0:  # "not a dynamic executable"
        return []
    if "not found" in r.stdout:
        raise SetupError(f"ldd {binary}: missing libraries\n{r.stdout}")
    return re.findall(r"(?:=>\s*|^\s*)(/\S+)\s+\(0x", r.stdout, re.M)


def install_file(src, root, dest, mode=None):
    """Copy SRC's content (following symlinks) to ROOT/DEST, unpacking .xz modules."""
    target = os.path.join(root, dest.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.lexists(target):
        os.remove(target)
    if src.endswith(".xz"):
        with open(target, "wb") as f:
            f.write(lzma.open(src).read())
    else:
        shutil.copy2(src, target)
    if mode is not None:
        os.chmod(target, mode)


def build_initramfs(workdir, modules, args, slots, macs):
    """Build WORKDIR/initramfs.cpio (uncompressed newc) with MODULES [(name, path, params)]."""
    root = os.path.join(workdir, "root")
    shutil.rmtree(root, ignore_errors=True)  # a --keep DIR from an earlier run
    for d in ("bin", "dev", "proc", "sys", "tmp", "lib/modules", "usr", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(root, "bin/busybox"))
    for applet in run([BUSYBOX, "--list"]).stdout.split():
        if applet != "busybox":
            os.symlink("busybox", os.path.join(root, "bin", applet))
    for link, target in (("sbin", "bin"), ("usr/bin", "../bin"), ("usr/sbin", "../bin")):
        os.symlink(target, os.path.join(root, link))
    try:
        os.mknod(os.path.join(root, "dev/console"), 0o600 | 0o020000, os.makedev(5, 1))
    except PermissionError:
        pass  # /init reopens /dev/console from devtmpfs anyway
    for name, path, _ in modules:
        install_file(path, root, f"/lib/modules/{name}.ko")
    for binary in args.binary:
        install_file(binary, root, "/bin/" + os.path.basename(binary), 0o755)
        for lib in shared_libraries(binary):
            install_file(lib, root, lib)
    install_file(args.script, root, "/test.sh", 0o755)
    install_file(os.path.join(HERE, "guest-init.sh"), root, "/init", 0o755)
    conf = {"VMLAB_MODULES": "\n".join(f"{n} {a}".strip() for n, _, a in modules),  # one "NAME [PARAM=V...]" a line
            "VMLAB_SLOTS": " ".join(slots), "VMLAB_MACS": " ".join(macs), "VM_DRIVER": args.driver,
            "VM_MACHINE": args.machine,
            "VM_IOMMU": "0" if args.no_iommu_device else "1", "VM_HUGEPAGES": str(args.hugepages),
            **dict(e.split("=", 1) for e in args.env)}
    with open(os.path.join(root, "etc/vmlab.conf"), "w") as f:
        f.writelines(f"{k}={shlex.quote(v)}\n" for k, v in conf.items())
    names = []
    for dirpath, dirs, files in os.walk(root):
        names += [os.path.relpath(os.path.join(dirpath, n), root) for n in dirs + files]
    cpio = os.path.join(workdir, "initramfs.cpio")
    with open(cpio, "wb") as out:
        r = subprocess.run([BUSYBOX, "cpio", "-o", "-H", "newc"], cwd=root, stdout=out,
                           stderr=subprocess.PIPE, input="\n".join(sorted(names)).encode() + b"\n")
    if r.returncode != 0:
        raise SetupError(f"busybox cpio failed: {r.stderr.decode()}")
    return cpio


# ---------------------------------------------------------------- QEMU and QMP

Nic = namedtuple("Nic", "hub tap queues mac extra")


def parse_nic(spec, index):
    """'hub=0,iommu_platform=on,...' or 'tap=NAME,queues=N,...' -> Nic (extra: passthrough key=val)."""
    opts = dict(kv.split("=", 1) if "=" in kv else (kv, "on") for kv in spec.split(",") if kv)
    bad = RESERVED_NIC_KEYS & opts.keys()
    if bad:
        raise SetupError(f"--nic {spec}: {', '.join(sorted(bad))} is set by vmlab")
    hub, tap = opts.pop("hub", "0"), opts.pop("tap", None)
    queues = int(opts.pop("queues", "1"))
    if queues > 1 and tap is None:
        raise SetupError(f"--nic {spec}: queues= needs tap= (a hub port has one queue)")
    mac = opts.pop("mac", f"52:54:00:12:34:{0x50 + index:02x}")
    return Nic(hub, tap, queues, mac, [f"{k}={v}" for k, v in opts.items()])


def qemu_command(args, vmlinux, initrd, qmp_path):
    """The QEMU argv, the guest slot BDFs and MACs (in --nic order)."""
    iommu = not args.no_iommu_device
    append = "console=ttyS0 quiet panic=-1" + (" intel_iommu=on iommu=pt" if iommu else "")
    cmd = ["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-cpu", args.cpu,
           "-m", str(args.mem), "-smp", str(args.smp), "-nographic", "-vga", "none", "-no-reboot",
           "-kernel", vmlinux, "-initrd", initrd, "-append", f"{append} {args.append}".strip(),
           "-qmp", f"unix:{qmp_path},server=on,wait=off"]
    if iommu:  # must precede the devices it translates
        cmd += ["-device", f"intel-iommu,intremap=on,caching-mode=on,aw-bits={args.aw_bits}"
                + (f",{args.iommu_opts}" if args.iommu_opts else "")]
    slots, macs = [], []
    for i, spec in enumerate(args.nic):
        nic = parse_nic(spec, i)
        mac, extra = nic.mac, list(nic.extra)
        slot = FIRST_SLOT + i
        dev = ["virtio-net-pci", f"id=nic{i}", f"netdev=n{i}", f"mac={mac}", "romfile="]  # no iPXE ROM: faster boot
        if not any(e.startswith(("disable-legacy=", "disable-modern=")) for e in extra):
            dev.append("disable-legacy=on")  # modern-only unless the --nic says otherwise
        if args.root_ports:
            cmd += ["-device", f"pcie-root-port,id=rp{i},bus=pcie.0,chassis={i + 1},addr={slot:#x}"]
            dev += [f"bus=rp{i}", "addr=0x0"]
        else:
            dev += ["bus=pcie.0", f"addr={slot:#x}"]
        if nic.tap:  # a multi-queue tap the host sends into (vmlab_tap.py): N queue pairs, MSI-X for each
            netdev = f"tap,id=n{i},ifname={nic.tap},script=no,downscript=no,vhost=off,queues={nic.queues}"
            if nic.queues > 1:
                dev += ["mq=on", f"vectors={2 * nic.queues + 2}"]
        else:
            netdev = f"hubport,id=n{i},hubid={nic.hub}"
        cmd += ["-netdev", netdev, "-device", ",".join(dev + extra)]
        slots.append(f"0000:00:{slot:02x}.0")
        macs.append(mac)
    return cmd, slots, macs


def qmp(path, execute, arguments=None, timeout=10.0):
    """Run one QMP command on a vmlab guest's socket; return its 'return' value."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        f = s.makefile("rwb")
        json.loads(f.readline())  # greeting
        for cmd in ({"execute": "qmp_capabilities"}, {"execute": execute, "arguments": arguments or {}}):
            f.write(json.dumps(cmd).encode() + b"\n")
            f.flush()
            msg = json.loads(f.readline())
            while "event" in msg:
                msg = json.loads(f.readline())
            if "error" in msg:
                raise RuntimeError(f"QMP {cmd['execute']}: {msg['error']}")
        return msg.get("return")


def set_link(path, name, up):
    """Bring NIC NAME (e.g. 'nic0' or netdev 'n0') link up or down from the host."""
    return qmp(path, "set_link", {"name": name, "up": bool(up)})


def schedule_qmp(path, commands, t0):
    """Fire each (seconds, {"execute":..., "arguments":...}) of --qmp-after on a timer."""
    for secs, cmd in commands:
        timer = threading.Timer(secs, fire_qmp, [path, cmd, t0])
        timer.daemon = True
        timer.start()


def fire_qmp(path, cmd, t0):
    """Run one --qmp-after/--qmp-on command and log what QEMU answered."""
    try:
        result = qmp(path, cmd["execute"], cmd.get("arguments"))
    except (OSError, RuntimeError, ValueError) as e:
        result = f"FAILED: {e}"
    log(f"qmp at {time.monotonic() - t0:.1f}s: {json.dumps(cmd)} -> {json.dumps(result)}")


class Console(threading.Thread):
    """Streams QEMU's stdout (the guest serial console) to a log file and finds markers."""

    def __init__(self, proc, log_path, live, triggers=()):
        super().__init__(daemon=True)
        self.proc, self.log_path, self.live = proc, log_path, live
        self.triggers = [[text.encode(), action, False] for text, action in triggers]  # --qmp-on, --tap-send-on
        self.t0 = time.monotonic()
        self.data = b""
        self.rc = None
        self.init_time = None
        self.marker = threading.Event()

    def run(self):
        with open(self.log_path, "wb") as logf:
            while chunk := os.read(self.proc.stdout.fileno(), 65536):
                logf.write(chunk)
                logf.flush()
                if self.live:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                self.data += chunk
                for t in self.triggers:
                    if not t[2] and t[0] in self.data:
                        t[2] = True
                        threading.Thread(target=t[1], daemon=True).start()
                if self.init_time is None and INIT_MARKER in self.data:
                    self.init_time = time.monotonic()
                m = MARKER.search(self.data, max(0, len(self.data) - len(chunk) - 32))
                if m and self.rc is None:
                    self.rc = int(m.group(1))
                    self.marker.set()

    def text(self):
        """The console so far, without carriage returns and terminal escapes."""
        text = self.data.decode("utf-8", "replace").replace("\r", "")
        return re.sub(r"\x1b(\[[0-9;?]*[A-Za-z]|[a-zA-Z])", "", text)


def run_vm(cmd, args, log_path, qmp_path):
    """Boot the guest; return (console, why-it-failed or None, seconds to /init, seconds to marker)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    triggers = [(text, lambda c=cmd: fire_qmp(qmp_path, c, t0)) for text, cmd in args.qmp_on]
    macs = {parse_nic(spec, i).tap: parse_nic(spec, i).mac for i, spec in enumerate(args.nic)}
    triggers += [(text, lambda t=tap, r=rnd: vmlab_tap.send_rss(t, macs[t], r)) for text, tap, rnd in args.tap_send_on]
    console = Console(proc, log_path, args.live, triggers)
    console.start()
    schedule_qmp(qmp_path, args.qmp_after, t0)
    deadline = t0 + args.timeout
    try:
        while not console.marker.is_set() and proc.poll() is None and time.monotonic() < deadline:
            console.marker.wait(0.2)
        t_marker = time.monotonic() - t0
        if console.marker.is_set():
            proc.wait(timeout=15)  # poweroff -f
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    console.join(timeout=5)
    why = None
    if not console.marker.is_set():
        why = f"timeout after {args.timeout:.0f}s" if t_marker >= args.timeout \
            else f"QEMU exited with status {proc.returncode}"
    t_init = console.init_time - t0 if console.init_time else None
    return console, why, t_init, t_marker


# ---------------------------------------------------------------- CLI

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", action="append", default=[], help="copy to /bin/BASENAME with its libraries")
    p.add_argument("--script", required=True, help="guest test script, run as `sh /test.sh`")
    p.add_argument("--nic", action="append", default=[],
                   help="hub=H[,virtio-net-pci prop=val...]; one per NIC, in VM_NICS order")
    p.add_argument("--aw-bits", type=int, default=48, help="intel-iommu address width (39 or 48)")
    p.add_argument("--iommu-opts", default="", help="extra intel-iommu properties, e.g. device-iotlb=on")
    p.add_argument("--no-iommu-device", action="store_true", help="guest without vIOMMU")
    p.add_argument("--driver", choices=sorted(DRIVER_MODULES), default="vfio-pci",
                   help="kernel driver every virtio-net device is bound to (default vfio-pci; microvm: "
                        "vfio-platform, built once with a no-IOMMU vfio.ko, or none)")
    p.add_argument("--machine", choices=["q35", "microvm"], default="q35",
                   help="q35 with virtio-net-pci NICs (default), or microvm with virtio-net-device on virtio-mmio")
    p.add_argument("--legacy-mmio", action="store_true", help="microvm: leave the virtio-mmio devices at version 1")
    p.add_argument("--modules", default="", metavar="A,B,...",
                   help="more stock modules of the guest kernel to load, in this order (e.g. tun,vhost_net)")
    p.add_argument("--vdpa-sim", action="store_true",
                   help="load the vDPA simulator (vdpa_sim_net) and vhost_vdpa, built from Debian's linux-source "
                        "once and cached (exit 77 when they cannot be built)")
    p.add_argument("--vfio-noiommu", action="store_true",
                   help="load a vfio.ko built (once, cached) with CONFIG_VFIO_NOIOMMU, with "
                        f"{NOIOMMU_PARAMS}; exit 77 if it cannot be built here")
    p.add_argument("--root-ports", action="store_true",
                   help="put each NIC behind its own pcie-root-port (PCIe device; BDF 0000:0N:00.0)")
    p.add_argument("--timeout", type=float, default=240, help="seconds from QEMU start to the exit marker")
    p.add_argument("--mem", type=int, default=1024, help="guest MiB")
    p.add_argument("--smp", type=int, default=1)
    p.add_argument("--cpu", default="max", help="QEMU -cpu model (TCG)")
    p.add_argument("--hugepages", type=int, default=128, help="2 MiB pages reserved in the guest")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE exported to the script")
    p.add_argument("--append", default="", help="extra kernel command line")
    p.add_argument("--qmp-after", action="append", default=[], metavar="SECONDS:JSON",
                   help='e.g. \'20:{"execute":"set_link","arguments":{"name":"nic0","up":false}}\'')
    p.add_argument("--qmp-on", action="append", default=[], metavar="TEXT:JSON",
                   help="run a QMP command once TEXT appears on the guest console, e.g. "
                        "'READY link:{\"execute\":\"set_link\",\"arguments\":{\"name\":\"nic0\",\"up\":false}}'")
    p.add_argument("--tap-send-on", action="append", default=[], metavar="TEXT:TAP:ROUND",
                   help="send vmlab_tap.py's RSS frames (round ROUND) into a --nic tap= once TEXT appears")
    p.add_argument("--keep", metavar="DIR", help="work in DIR (initramfs, console.log, qmp.sock) and keep it")
    p.add_argument("--log", help="console log path (default: /tmp/vmlab-*.log, DIR/console.log with --keep)")
    p.add_argument("--live", action="store_true", help="also echo the console while it runs")
    p.add_argument("--tail", type=int, default=25, help="console lines shown on success")
    args = p.parse_args(argv)
    for path in args.binary + [args.script]:
        if not os.path.isfile(path):
            p.error(f"{path}: no such file")
    if args.vfio_noiommu and args.driver != "vfio-pci":
        p.error("--vfio-noiommu needs --driver vfio-pci")
    if (args.machine == "microvm") != (args.driver in ("vfio-platform", "none")):
        p.error("--machine microvm goes with --driver vfio-platform or none, and they with it")
    if len(args.nic) > MAX_NICS:
        p.error(f"at most {MAX_NICS} --nic")
    if any("=" not in e for e in args.env):
        p.error("--env wants KEY=VALUE")
    try:
        args.qmp_after = [(float(secs), json.loads(cmd)) for secs, _, cmd in
                          (spec.partition(":") for spec in args.qmp_after)]
        args.qmp_on = [(text, json.loads(cmd)) for text, _, cmd in
                       (spec.partition(":") for spec in args.qmp_on)]
    except ValueError as e:
        p.error(f"--qmp-after wants SECONDS:JSON ({e})")
    try:
        args.tap_send_on = [(text, tap, int(rnd)) for text, tap, rnd in
                            (spec.rsplit(":", 2) for spec in args.tap_send_on)]
    except ValueError as e:
        p.error(f"--tap-send-on wants TEXT:TAP:ROUND ({e})")
    return args


def main(argv):
    args = parse_args(argv)
    cache = os.environ.get("VIREO_VM_CACHE", "/var/cache/vireo-vm")
    workdir = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="vmlab-")
    os.makedirs(workdir, exist_ok=True)
    log_path = os.path.abspath(args.log or (os.path.join(workdir, "console.log") if args.keep else
                                            tempfile.mkstemp(prefix="vmlab-", suffix=".log")[1]))
    taps = []
    try:
        t = time.monotonic()
        kernel = prepare_kernel(cache)
        timing = f"kernel fetch {time.monotonic() - t:.1f}s"
        modules = module_files(kernel.moddir, args.driver, [m for m in args.modules.split(",") if m])
        if args.vfio_noiommu:
            t = time.monotonic()
            try:
                modules = with_noiommu_vfio(modules, cache, kernel)
            except SkipError as e:
                raise SkipError(f"cannot build vfio.ko with CONFIG_VFIO_NOIOMMU: {e}") from e
            timing += f", vfio-noiommu {time.monotonic() - t:.1f}s"
        if args.driver == "vfio-platform":  # no IOMMU on microvm: vfio's no-IOMMU mode, and vfio-platform
            t = time.monotonic()
            try:
                modules = with_noiommu_vfio(modules, cache, kernel)
                modules = with_vfio_platform(modules, module_index(kernel.moddir), cache, kernel)
            except SkipError as e:
                raise SkipError(f"cannot build vfio-platform for the guest: {e}") from e
            timing += f", vfio-platform {time.monotonic() - t:.1f}s"
        if args.vdpa_sim:
            t = time.monotonic()
            try:
                modules = with_vdpa_sim(modules, module_index(kernel.moddir), cache, kernel)
            except SkipError as e:
                raise SkipError(f"cannot build the vDPA simulator modules: {e}") from e
            timing += f", vdpa-sim {time.monotonic() - t:.1f}s"
        t = time.monotonic()
        qmp_path = os.path.join(workdir, "qmp.sock")
        initrd = os.path.join(workdir, "initramfs.cpio")
        if args.machine == "microvm":
            cmd, slots, macs = vmlab_microvm.qemu_command(args, kernel.vmlinux, initrd, qmp_path,
                                                          [parse_nic(n, i) for i, n in enumerate(args.nic)])
        else:
            cmd, slots, macs = qemu_command(args, kernel.vmlinux, initrd, qmp_path)
        build_initramfs(workdir, modules, args, slots, macs)
        timing += f", initramfs {time.monotonic() - t:.2f}s"
        log(f"kernel {kernel.kver}; {timing}; qemu: {shlex.join(cmd)}")
        for i, spec in enumerate(args.nic):
            if (nic := parse_nic(spec, i)).tap:
                vmlab_tap.create(nic.tap, nic.queues)
                taps.append(nic.tap)
        console, why, t_init, t_marker = run_vm(cmd, args, log_path, qmp_path)
    except SetupError as e:
        print(f"vmlab: error: {e}", file=sys.stderr)
        return EXIT_SETUP
    except SkipError as e:
        log(f"SKIP: {' '.join(str(e).split())}")
        return EXIT_SKIP
    finally:
        for tap in taps:
            vmlab_tap.delete(tap)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text = console.text()
    rc = EXIT_VM if why else console.rc
    if rc != 0:
        print(f"----- whole guest console ({log_path}) -----\n{text}\n----- end of guest console -----")
    else:
        tail = "\n".join(text.rstrip().splitlines()[-args.tail:])
        print(f"----- last {args.tail} lines of the guest console ({log_path}) -----\n{tail}\n-----")
    print("\n".join(line for line in text.splitlines() if line.startswith("VM-NIC ")))
    timing += f", boot to /init {t_init:.1f}s" if t_init is not None else ""
    if why:
        log(f"FAILED: no VIREO-VM-EXIT marker ({why}); {timing}, {t_marker:.1f}s in QEMU")
    else:
        log(f"guest script exit code {rc}; {timing}, boot to marker {t_marker:.1f}s")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
