"""One run of one side of bench/throughput: vireo-fwd, or DPDK's virtio-user in dpdk-testpmd, each against a fresh
dpdk-testpmd vhost back end (or through a fresh OVS-DPDK). Every run returns its rate and its cycles per packet on
the forwarding core, or raises BenchError: a side that read 0, or said it failed, never becomes a table row.

Both sides are measured alike: `seconds` one-second periods after a first one (the warm-up, and testpmd's first
display reads 0 anyway), counted by the front end itself (tx: what its Tx queue took; rx and loopback: what it
received); cycles per packet as testpmd's --record-core-cycles defines them (vireo-fwd has the same option).
"""
import json
import os
import re
import statistics
import subprocess
import time

from . import ovslab
from .testpmd import BenchError, Testpmd, wait_socket

RINGS = {  # name -> (packed, in_order)
    "split": (0, 0),
    "packed": (1, 0),
    "packed-inorder": (1, 1),
}


# Equal features: what DPDK's virtio-user does by default, asked of both.
def equal_args(packed, in_order):
    return (f"packed={packed},in_order={in_order},mrg_rxbuf=1,csum=0,guest_csum=0,event_idx=0,mtu_feature=0",
            f"packed_vq={packed},in_order={in_order},mrg_rxbuf=1", ())


# Each side's fastest for a layout: DPDK's vectorized virtio-user (needs mergeable buffers off; AVX-512 for
# packed, which also needs IN_ORDER; its log names the path taken), vireo with the features that cost it nothing.
def best_args(packed, in_order):
    return (f"packed={packed},in_order={in_order},mrg_rxbuf=0,csum=0,guest_csum=0,event_idx=0,mtu_feature=0",
            f"packed_vq={packed},in_order={in_order},mrg_rxbuf=0,vectorized=1", ("--force-max-simd-bitwidth=512",))


class Config:
    def __init__(self, ring, mode, size, burst=32, queues=1, peer="vhost", kind="equal"):
        self.ring, self.mode, self.size, self.burst, self.queues = ring, mode, size, burst, queues
        self.peer = peer  # "vhost": dpdk-testpmd's net_vhost; "ovs": through OVS-DPDK, port to port
        self.kind = kind  # "equal": the same features both sides; "best": each side's fastest (layout only)
        # best: the IN_ORDER setting each side runs with; equal: RINGS says.
        self.in_order = {"vireo": RINGS.get(ring, (0, 0))[1], "dpdk": RINGS.get(ring, (0, 0))[1]}

    def packed(self):
        return RINGS[self.ring][0] if self.ring in RINGS else int(self.ring == "packed")

    def args(self, side):
        """(vireo device-string suffix, DPDK vdev suffix, DPDK EAL args) for one side."""
        make = best_args if self.kind == "best" else equal_args
        return make(self.packed(), self.in_order[side])

    def name(self):
        q = f" {self.queues}q" if self.queues > 1 else ""
        o = "ovs " if self.peer == "ovs" else ""
        b = " best" if self.kind == "best" else ""
        return f"{o}{self.ring}{b} {self.mode} {self.size}B{q}"


class Sides:
    """What A and B are: A is this build's vireo-fwd; B is DPDK's virtio-user, or a vireo-fwd that --b-build,
    --b-dev-args or --b-fwd-args describe (an A/B of two vireo builds or settings)."""

    def __init__(self, b_build=None, a_dev_args=None, b_dev_args=None, b_fwd_args=None, loop_bursts=1):
        self.b_build, self.a_dev_args, self.b_dev_args = b_build, a_dev_args, b_dev_args
        self.b_fwd_args, self.loop_bursts = b_fwd_args, loop_bursts

    def b_is_dpdk(self):
        return not (self.b_build or self.b_dev_args or self.b_fwd_args)

    def a_name(self):
        return f"vireo {self.a_dev_args}" if self.a_dev_args else "vireo"

    def b_name(self):
        if self.b_is_dpdk():
            return "DPDK virtio-user"
        return " ".join(["vireo"] + (["(B build)"] if self.b_build else []) +
                        [a for a in (self.b_dev_args, self.b_fwd_args) if a])

    def resolve(self, side, build):
        """(who runs: "vireo" or "dpdk", its build, device-string keys added, vireo-fwd options added)."""
        if side == "vireo":
            return "vireo", build, ("," + self.a_dev_args if self.a_dev_args else ""), []
        if self.b_is_dpdk():
            return "dpdk", build, "", []
        return ("vireo", self.b_build or build, ("," + self.b_dev_args if self.b_dev_args else ""),
                self.b_fwd_args.split() if self.b_fwd_args else [])


def measured(side, rates, cycles, path, log_path, startup_s=None):
    """A run's result, or BenchError when it read nothing."""
    pps = statistics.median(rates) if rates else 0.0
    if pps <= 0:
        raise BenchError(f"{side} read 0 pps (per second: {rates}); log kept: {log_path}")
    if cycles is None or cycles <= 0:
        raise BenchError(f"{side} printed no cycles per packet; log kept: {log_path}")
    return {"pps": pps, "per_second": rates, "cycles": cycles, "path": path, "startup_s": startup_s}


def run_fwd(cmd, seconds, log_path, js):
    """Runs vireo-fwd (--record-core-cycles, --json); returns its summary, or raises with its log kept."""
    cmd = cmd + ["--record-core-cycles", f"--json={js}"]
    with open(log_path, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=seconds + 90)
    if r.returncode != 0:
        raise BenchError(f"vireo-fwd exited {r.returncode}; log kept: {log_path}\n  command: {' '.join(cmd)}")
    with open(js) as f:
        summary = json.load(f)
    os.unlink(js)
    return summary


def run_vhost(side, c, seconds, build, tag, sides):
    """One run against a fresh dpdk-testpmd net_vhost back end."""
    who, build, extra, fwd_extra = sides.resolve(side, build)
    pid = os.getpid()
    sock = f"/tmp/vireo-tp-{pid}.sock"
    if os.path.exists(sock):
        os.unlink(sock)
    cores2 = c.queues > 1  # 2 queue pairs: 2 cores each side (CPUs 0-1 front end, 2-3 back end)
    back_fwd = {"tx": "rxonly", "rx": "txonly", "loopback": "io"}[c.mode]
    back = Testpmd("back", [f"net_vhost0,iface={sock},queues={c.queues}"], [f"--forward-mode={back_fwd}"],
                   "1-4" if cores2 else "0,1", 4 if cores2 else 0, 2 if cores2 else 1, c.queues, 32, c.size)
    try:
        wait_socket(sock, back.proc, back.log_path)
        if who == "vireo":
            mode = {"tx": "txonly", "rx": "rxonly", "loopback": "io"}[c.mode]
            log_path, js = f"/tmp/vireo-tp-{pid}-{tag}.log", f"/tmp/vireo-tp-{pid}-{tag}.json"
            cmd = [os.path.join(build, "apps", "vireo-fwd", "vireo-fwd"), f"--forward-mode={mode}",
                   f"--burst={c.burst}", f"--txpkts={c.size}", f"--duration={seconds + 1}", "--stats-period=0",
                   f"--rxq={c.queues}", "--cores=" + ("0,1" if cores2 else "0"), *fwd_extra,
                   f"vhost-user:{sock}," + c.args("vireo")[0] + extra]
            if c.mode == "loopback":
                cmd.append(f"--tx-first={sides.loop_bursts}")
            summary = run_fwd(cmd, seconds, log_path, js)
            key = "tx_pps" if c.mode == "tx" else "rx_pps"
            rates = [s["ports"][0][key] for s in summary["samples"]][1:seconds + 1]
            got = measured("vireo-fwd", rates, summary.get("core_cycles", {}).get("cycles_per_packet"),
                           summary["ports"][0].get("data_path", ""), log_path)
            os.unlink(log_path)
        else:
            fwd = {"tx": ["--forward-mode=txonly"], "rx": ["--forward-mode=rxonly"],
                   "loopback": ["--forward-mode=io", "--tx-first"]}[c.mode]
            _, vargs, eal = c.args("dpdk")
            vdev = f"net_virtio_user0,path={sock},queues={c.queues}," + vargs
            # Main lcore 1 (or 2): it forwards on CPU 0 (and 1).
            front = Testpmd("front", [vdev], fwd, "0-2" if cores2 else "0,1", 2 if cores2 else 1,
                            2 if cores2 else 1, c.queues, c.burst, c.size, eal, record_cycles=True)
            try:
                rates, startup = front.wait_displays(seconds, "Tx-pps" if c.mode == "tx" else "Rx-pps")
                front.stop()
                if front.errors():
                    front.fail("said: " + front.errors()[0].strip())
                got = measured("DPDK virtio-user", rates, front.cycles_per_packet(), front.data_path(),
                               front.log_path, startup)
            except BaseException:
                front.stop()
                raise
            front.discard()
        back.stop()
        if back.errors():
            back.fail("said: " + back.errors()[0].strip())
        back.discard()
        return got
    except BaseException:
        back.stop()  # its log stays for the diagnosis
        raise
    finally:
        if os.path.exists(sock):
            os.unlink(sock)


def run_ovs(side, c, seconds, build, tag, sides):
    """Port to port through a fresh OVS-DPDK: io forwarding between two front-end ports, Rx over both counted."""
    who, build, extra, fwd_extra = sides.resolve(side, build)
    pid = os.getpid()
    socks = [f"/tmp/vireo-ovs-{pid}-{i}.sock" for i in (0, 1)]
    for s in socks:
        if os.path.exists(s):
            os.unlink(s)
    packed, in_order = RINGS[c.ring]
    ovs = ovslab.Ovs(socks, pmd_cpu=1)
    try:
        if who == "vireo":
            log_path, js = f"/tmp/vireo-ovs-{pid}-{tag}.log", f"/tmp/vireo-ovs-{pid}-{tag}.json"
            dev = (f",server=1,timeout_ms=20000,packed={packed},in_order={in_order},mrg_rxbuf=1,"
                   "csum=0,guest_csum=0,event_idx=0,mtu_feature=0" + extra)
            cmd = [os.path.join(build, "apps", "vireo-fwd", "vireo-fwd"), "--forward-mode=io", "--tx-first",
                   f"--burst={c.burst}", f"--txpkts={c.size}", f"--duration={seconds + 1}", "--stats-period=0",
                   "--cores=0", *fwd_extra] + [f"vhost-user:{s}{dev}" for s in socks]
            summary = run_fwd(cmd, seconds, log_path, js)
            rates = [sum(p["rx_pps"] for p in smp["ports"]) for smp in summary["samples"]][1:seconds + 1]
            got = measured("vireo-fwd", rates, summary.get("core_cycles", {}).get("cycles_per_packet"),
                           summary["ports"][0].get("data_path", ""), log_path)
            os.unlink(log_path)
            return got
        vdevs = [f"net_virtio_user{i},path={s},server=1,packed_vq={packed},in_order={in_order},mrg_rxbuf=1"
                 for i, s in enumerate(socks)]
        front = Testpmd("ovs-front", vdevs, ["--forward-mode=io"], "0,1", 1, 1, 1, c.burst, c.size,
                        record_cycles=True, interactive=True)
        try:
            end = time.time() + 30
            while "testpmd>" not in front.text():
                if time.time() > end or front.proc.poll() is not None:
                    front.fail("testpmd did not come up")
                time.sleep(0.05)
            # OVS enables a new port's queues tens of ms after the handshake: a loop started at once can lose
            # its first burst; then nothing moves and the run fails loudly rather than reading 0.
            time.sleep(1)
            front.proc.stdin.write("start tx_first\n")
            front.proc.stdin.flush()
            rates, last = [], None
            for _ in range(seconds + 1):
                mark = len(front.text())
                front.proc.stdin.write("show port stats all\n")
                front.proc.stdin.flush()
                t = time.time()
                while front.text()[mark:].count("RX-packets:") < 2:  # both ports' block
                    if time.time() > t + 10:
                        front.fail("'show port stats all' printed nothing")
                    time.sleep(0.02)
                rx = sum(int(x) for x in re.findall(r"RX-packets:\s+(\d+)", front.text()[mark:]))
                if last is not None:
                    rates.append((rx - last[1]) / (t - last[0]))
                last = (t, rx)
                time.sleep(max(0.0, 1.0 - (time.time() - t)))
            front.proc.stdin.write("stop\nquit\n")
            front.proc.stdin.flush()
            front.proc.wait(timeout=15)
            got = measured("DPDK virtio-user", rates, front.cycles_per_packet(), front.data_path(), front.log_path)
        except BaseException:
            front.stop()
            raise
        front.discard()
        return got
    finally:
        ovs.stop()
        for s in socks:
            if os.path.exists(s):
                os.unlink(s)


def run_once(side, c, seconds, build, tag, sides):
    return (run_ovs if c.peer == "ovs" else run_vhost)(side, c, seconds, build, tag, sides)
