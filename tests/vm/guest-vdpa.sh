#!/bin/sh
# Runs in the test VM (tests/vm/vmlab.py --vdpa-sim): the kernel's vDPA simulator (vdpa_sim_net, which loops
# every frame sent back to the receive queue) behind vhost_vdpa, modules vmlab built from Debian's
# linux-source. vireo drives /dev/vhost-vdpa-0: every address goes through the IOTLB it fills; frames are
# verified after the loop, in IOVA = VA, in IOVAs vireo lays out (iova=pa), and with dma=window; the pinned
# memory (VmPin) is exactly what vireo mapped; a device without ACCESS_PLATFORM is refused.
rc=0
run() {
    echo "== $*"
    "$@" || rc=1
}
# vhost-vdpa pins what is mapped against RLIMIT_MEMLOCK, root included.
ulimit -l unlimited
vdpa mgmtdev show || rc=1
# vdpa_sim_net's MAC is all zeros unless given; it passes only frames to its MAC (and broadcast/multicast).
vdpa dev add name vdpa0 mgmtdev vdpasim_net mac 02:00:00:00:0d:01 || rc=1
vdpa dev show vdpa0 || rc=1
i=0
while [ ! -e /dev/vhost-vdpa-0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
ls -l /dev/vhost-vdpa-0 || rc=1
vireo-fwd --list | tee /tmp/list.txt
grep -q "vhost-vdpa:/dev/vhost-vdpa-0 *yes *vdpa-iotlb *va" /tmp/list.txt ||
    { echo "FAIL vireo-fwd --list: vhost-vdpa-0 not listed with bit 33, vdpa-iotlb, va"; rc=1; }
D=vhost-vdpa:/dev/vhost-vdpa-0
run vireo-vm-check loopback --dev "$D" --expect-mode va --count 2000
run vireo-vm-check loopback --dev "$D" --iova-mode pa --expect-mode pa --count 2000
run vireo-vm-check loopback --dev "$D,dma=window" --count 2000
run vireo-vm-check refuse --dev "$D,access_platform=0" --says "do not switch access_platform off"
# Pinning over RLIMIT_MEMLOCK is refused by the kernel with a bare EFAULT: vireo says what to raise first.
(ulimit -l 64 && vireo-vm-check refuse --dev "$D" --says "RLIMIT_MEMLOCK" --says "ulimit -l unlimited") || rc=1
exit $rc
