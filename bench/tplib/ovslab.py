"""Open vSwitch with DPDK for the benchmarks: started by hand (no systemd) in a private folder, one PMD thread,
a netdev bridge with dpdkvhostuserclient ports flowing port 1 <-> port 2, stopped and cleaned up after."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

VSWITCHD = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
OVSDB = "/usr/sbin/ovsdb-server"
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


def available():
    return all(os.access(p, os.X_OK) for p in (VSWITCHD, OVSDB)) and os.path.exists(SCHEMA)


class Ovs:
    def __init__(self, sockets, pmd_cpu=1, socket_mem=512, iommu=False):
        self.dir = tempfile.mkdtemp(prefix="vireo-ovs-bench-")
        self.prefix = os.path.basename(self.dir)
        self.env = dict(os.environ, OVS_RUNDIR=self.dir, OVS_DBDIR=self.dir, OVS_LOGDIR=self.dir)
        d, db = self.dir, "unix:" + self.dir + "/db.sock"
        try:
            self.run("ovsdb-tool", "create", f"{d}/conf.db", SCHEMA)
            self.run(OVSDB, f"{d}/conf.db", f"--remote=punix:{d}/db.sock", f"--pidfile={d}/ovsdb.pid", "--detach",
                     f"--log-file={d}/ovsdb.log")
            self.run("ovs-vsctl", f"--db={db}", "--no-wait", "init")
            self.run("ovs-vsctl", f"--db={db}", "--no-wait", "set", "Open_vSwitch", ".",
                     "other_config:dpdk-init=true", f"other_config:dpdk-extra=--no-pci --file-prefix={self.prefix}",
                     f"other_config:dpdk-socket-mem={socket_mem}", f"other_config:pmd-cpu-mask={1 << pmd_cpu:#x}",
                     f"other_config:vhost-iommu-support={'true' if iommu else 'false'}")
            self.run(VSWITCHD, db, f"--pidfile={d}/vswitchd.pid", f"--unixctl={d}/vs.ctl", "--detach",
                     f"--log-file={d}/vswitchd.log")
            self.run("ovs-vsctl", f"--db={db}", "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
            for i, s in enumerate(sockets):
                self.run("ovs-vsctl", f"--db={db}", "add-port", "br0", f"vhu{i}", "--", "set", "Interface", f"vhu{i}",
                         "type=dpdkvhostuserclient", f"options:vhost-server-path={s}", f"ofport_request={i + 1}")
            self.run("ovs-ofctl", "del-flows", "br0")
            self.run("ovs-ofctl", "add-flow", "br0", "in_port=1,actions=output:2")
            self.run("ovs-ofctl", "add-flow", "br0", "in_port=2,actions=output:1")
        except Exception:
            self.stop()
            raise

    def run(self, *argv):
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])}...: {r.stderr.strip()}")
        return r.stdout

    def pmd_stats(self):
        return subprocess.run(["ovs-appctl", "-t", f"{self.dir}/vs.ctl", "dpif-netdev/pmd-stats-show"],
                              env=self.env, capture_output=True, text=True).stdout

    def stop(self):
        for name in ("vswitchd", "ovsdb"):
            try:
                pid = int(open(f"{self.dir}/{name}.pid").read())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(500):
                    os.kill(pid, 0)
                    time.sleep(0.01)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(f"/var/run/dpdk/{self.prefix}", ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)
