"""dpdk-testpmd for the benchmarks: the vhost back end, and DPDK's virtio-user front end (the yardstick).

Its output goes to a log file that is deleted only when the run was good; a run that cannot be trusted raises
BenchError naming the kept log.

Waiting is on testpmd's own output, never on a fixed sleep: a front end is stopped after it has printed the
periodic statistics the run asked for. (The first display of every port reads 0 pps, whatever moved: testpmd has
no earlier sample to divide by, so a run needs one display more than the periods it measures. A fixed sleep of
`seconds` + 1.5 s once cut runs whose EAL start took over 2.5 s on a slow machine down to that one display: the
0.000 Mpps of issue 28.)
"""
import itertools
import os
import re
import signal
import subprocess
import time

_serial = itertools.count()


class BenchError(RuntimeError):
    """A run that cannot be trusted (a side read nothing, or said it failed): the benchmark stops."""


# What a testpmd log says when it did not run as asked (EAL, ethdev and the virtio PMDs' own words).
ERROR_LINES = re.compile(r"^.*(EAL: Error|EAL: FATAL|Fail to |[Ff]ailed to |Cannot |Invalid |PANIC|Segmentation).*$",
                         re.M)


def rates(text, key, ports):
    """Per-display rates from testpmd's periodic statistics: the sum over ports of each display."""
    values = [float(x) for x in re.findall(key + r":\s+(\d+)", text)]
    return [sum(values[i:i + ports]) for i in range(0, len(values) - ports + 1, ports)]


def wait_socket(path, proc, log_path, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            raise BenchError(f"the vhost back end exited ({proc.returncode}) before its socket {path} appeared; "
                             f"log kept: {log_path}")
        time.sleep(0.02)
    raise BenchError(f"the vhost back end's socket {path} did not appear in {timeout} s; log kept: {log_path}")


class Testpmd:
    """One dpdk-testpmd process (--no-huge: it needs no hugepages), forwarding from the start."""

    def __init__(self, role, vdevs, fwd_args, cores, main_core, nb_cores, queues, burst, size, eal=(),
                 record_cycles=False, interactive=False):
        self.role = role
        self.prefix = f"vireo-tp-{role}-{os.getpid()}-{next(_serial)}"
        self.log_path = f"/tmp/{self.prefix}.log"
        cmd = ["stdbuf", "-oL", "-eL", "dpdk-testpmd", "-l", cores, "--main-lcore", str(main_core), "--no-pci",
               f"--file-prefix={self.prefix}", "--no-huge", "-m", "1024", "--log-level=lib.eal:error",
               "--log-level=pmd.net.virtio.*:info"] + list(eal)
        for v in vdevs:
            cmd += ["--vdev", v]
        cmd += ["--"] + (["-i"] if interactive else ["--auto-start", "--stats-period=1"])
        cmd += ["--disable-link-check", "--total-num-mbufs=32768", f"--nb-cores={nb_cores}", f"--rxq={queues}",
                f"--txq={queues}", f"--burst={burst}", f"--txpkts={size}", "--max-pkt-len=1600"] + list(fwd_args)
        if record_cycles:
            cmd.append("--record-core-cycles")
        self.cmd = cmd
        self.started = time.time()
        self.first_display = None  # when the first statistics display was seen
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT,
                                     text=True)

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def fail(self, what):
        """Stops it, keeps its log, and raises."""
        self.stop()
        raise BenchError(f"{self.role}: {what}; log kept: {self.log_path}\n  command: {' '.join(self.cmd)}")

    def errors(self):
        return ERROR_LINES.findall(self.text())

    def wait_displays(self, periods, key, ports=1, timeout=60):
        """Waits until testpmd has printed periods + 1 statistics displays; returns the rates of the last
        `periods` (the first always reads 0) and how long the start took (launch to forwarding)."""
        end = time.time() + timeout
        while True:
            got = rates(self.text(), key, ports)
            if got and self.first_display is None:
                self.first_display = time.time()
            if len(got) >= periods + 1:
                # The first display comes one period (1 s) after forwarding began.
                return got[1:periods + 1], self.first_display - self.started - 1.0
            if self.proc.poll() is not None:
                self.fail(f"exited ({self.proc.returncode}) after {len(got)} statistics display(s) of "
                          f"{periods + 1}")
            if time.time() > end:
                self.fail(f"printed {len(got)} statistics display(s) of {periods + 1} in {timeout} s")
            time.sleep(0.05)

    def stop(self):
        """SIGINT, as a user's Ctrl-C: testpmd stops forwarding and prints its totals (and cycles) first."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        subprocess.run(["rm", "-rf", f"/var/run/dpdk/{self.prefix}"])

    def cycles_per_packet(self):
        """testpmd's --record-core-cycles figure (fwd_stats_display), None when it printed none."""
        m = re.findall(r"CPU cycles/packet=([\d.]+)", self.text())
        return float(m[-1]) if m else None

    def data_path(self):
        """The path DPDK says it took: "set_rxtx_funcs(): virtio: using packed ring vectorized Rx path on port 0"."""
        return "; ".join(sorted(set(re.findall(r"using (.*?) path on port 0", self.text()))))

    def discard(self):
        """A good run: its log goes."""
        self.stop()
        if os.path.exists(self.log_path):
            os.unlink(self.log_path)
