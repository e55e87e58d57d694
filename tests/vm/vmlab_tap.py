"""vmlab's multi-queue taps: a NIC whose netdev is a host tap (`--nic tap=NAME,queues=N,...`) instead of a hub
port. QEMU's hubs have one queue, so a NIC on them has one queue pair; RSS needs several, and frames that come
from outside the guest. The host creates the tap (multi_queue, IPv6 off so the host kernel sends nothing on
it), QEMU attaches its N queues, and `--tap-send-on TEXT:NAME:ROUND` sends this module's RSS frames into it
when TEXT appears on the guest console (tests/vm/vm_rss.cpp checks them)."""

import os
import socket
import struct
import time

from vmlab_base import SkipError, log, run

FLOWS = 52  # vm_rss.cpp kFlows
MAGIC = b"VRSS"


def create(name, queues):
    """Create tap NAME (multi_queue) for QEMU to attach `queues` queues to; SkipError if the host cannot."""
    delete(name)  # a leftover of an earlier run
    r = run(["ip", "tuntap", "add", "dev", name, "mode", "tap", "multi_queue"])
    if r.returncode != 0:
        raise SkipError(f"cannot create the multi-queue tap {name} (needs root and /dev/net/tun): "
                        f"{r.stderr.strip()}")
    try:
        with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
            f.write("1")  # no router solicitations or MLD reports from the host on it
    except OSError:
        pass
    r = run(["ip", "link", "set", "dev", name, "up"])
    if r.returncode != 0:
        delete(name)
        raise SkipError(f"cannot bring the tap {name} up: {r.stderr.strip()}")
    log(f"tap {name}: {queues} queues")


def delete(name):
    run(["ip", "tuntap", "del", "dev", name, "mode", "tap", "multi_queue"])


def _mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def rss_frames(dst_mac, rnd):
    """FLOWS frames to dst_mac, one per flow: IPv4/IPv6 x TCP/UDP, and IPv4 protocol 253 (hashed as IP only),
    each with its own addresses and ports; after the L4 header: MAGIC, le32 flow, u8 round, padding."""
    frames = []
    for flow in range(FLOWS):
        kind = flow % 5
        v4 = kind in (0, 1, 4)
        proto = {0: 6, 1: 17, 2: 6, 3: 17, 4: 253}[kind]
        sport, dport = 1024 + flow * 37, 2048 + flow * 101
        if proto == 6:
            l4 = struct.pack("!HHIIBBHHH", sport, dport, flow, 0, 5 << 4, 0x10, 65535, 0, 0)
        elif proto == 17:
            l4 = struct.pack("!HHHH", sport, dport, 8 + 9, 0)
        else:
            l4 = b""
        body = l4 + MAGIC + struct.pack("<IB", flow, rnd)
        if v4:
            src = bytes([10, 1, flow, (flow * 7) % 250 + 1])
            dst = bytes([10, 2, (flow * 3) % 256, flow + 1])
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(body), flow, 0, 64, proto, 0) + src + dst
            ethertype = 0x0800
        else:
            src = bytes([0x20, 0x01, 0x0d, 0xb8] + [0] * 10 + [flow, 1])
            dst = bytes([0x20, 0x01, 0x0d, 0xb8, 0, 2] + [0] * 8 + [(flow * 5) % 256, flow])
            ip = struct.pack("!IHBB", 6 << 28, len(body), proto, 64) + src + dst
            ethertype = 0x86DD
        frame = _mac(dst_mac) + bytes([0x02, 0, 0, 0, 0x77, flow]) + struct.pack("!H", ethertype) + ip + body
        frames.append(frame + bytes(max(0, 60 - len(frame))))
    return frames


def send_rss(name, dst_mac, rnd):
    """Send round `rnd`'s frames into tap NAME, twice (the guest checks that repeats agree)."""
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
            s.bind((name, 0))
            for _ in range(2):
                for f in rss_frames(dst_mac, rnd):
                    s.send(f)
                time.sleep(0.2)
        log(f"tap {name}: sent round {rnd} ({2 * FLOWS} frames)")
    except OSError as e:
        log(f"tap {name}: sending round {rnd} FAILED: {e}")
