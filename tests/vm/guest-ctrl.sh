#!/bin/sh
# Runs in the test VM (tests/vm/vmlab.py): the control-queue features against
# QEMU's virtio-net device. NICs on hub 0: A (iommu_platform=on), B
# (iommu_platform=on, speed=25000, duplex=full). The host sends QMP
# announce-self (one round) when the guest prints "READY announce". C: a NIC
# with 4 queue pairs, rss=on,hash=on, behind a multi-queue host tap the host
# sends RSS frames into on "READY rss1", "READY rss2" and "READY rss3" (vmlab_tap.py).
set -- $VM_NICS
A=$1 B=$2 C=$3
rc=0
run() {
    echo "== $*"
    "$@" || rc=1
}

# SPEED_DUPLEX (5.1.4.2): what QEMU's speed=/duplex= say.
run vireo-vm-check speed --dev "pci:$B" --says "25000 Mbit/s full-duplex"
# CTRL_RX, CTRL_MAC_ADDR, CTRL_VLAN (5.1.6.5.1-3): B's filters against A's frames, and again after a restart.
run vireo-vm-check filters --dev "pci:$A" --dev "pci:$B,vlan_filter=1"
# The same through vireo-fwd's device string: the filters go out at start (QEMU would refuse a bad one), the
# JSON names the speed; idle, it sleeps on B's Rx MSI-X vector.
run vireo-fwd --forward-mode=rxonly --stats-period=0 --duration=2 --sleep-when-idle --json=/tmp/fwd.json \
    "pci:$B,promisc=0,allmulti=1,vlans=10+20,mac=02:00:00:00:00:42"
if grep -q '"speed": "25000 Mbit/s full-duplex"' /tmp/fwd.json; then
    echo "PASS vireo-fwd reports B's speed"
else
    echo "FAIL vireo-fwd reports B's speed"
    rc=1
fi
if grep -q '"sleeps": [1-9]' /tmp/fwd.json; then
    echo "PASS vireo-fwd --sleep-when-idle slept on B's MSI-X vector"
else
    echo "FAIL vireo-fwd --sleep-when-idle did not sleep"
    rc=1
fi
# Rx interrupts: B sleeps on its Rx queue's MSI-X vector; A's frames wake it.
run vireo-vm-check sleep --dev "pci:$A" --dev "pci:$B"
# RSS and HASH_REPORT (5.1.6.5.7, 5.1.6.4.3): QEMU steers the host's flows by our indirection table and key.
run vireo-vm-check rss --dev "pci:$C,queues=4,hash_report=1" --seconds 60
# vireo-fwd --rss: the host's third round spreads over all four Rx queues of its port.
vireo-fwd --forward-mode=rxonly --rxq=4 --rss --stats-period=0 --duration=12 --json=/tmp/rss.json "pci:$C" &
sleep 4
echo "READY rss3"
wait
# The summary is indented JSON: each queue's "rx_packets" is the line after its "queue".
queues=$(grep -A1 '"queue": [0-3],' /tmp/rss.json | grep -c '"rx_packets": [1-9]')
if [ "$queues" = 4 ]; then
    echo "PASS vireo-fwd --rss: frames on all 4 Rx queues"
else
    echo "FAIL vireo-fwd --rss: frames on $queues of 4 Rx queues"
    cat /tmp/rss.json
    rc=1
fi
# GUEST_ANNOUNCE (5.1.6.5.4): QEMU asks A to announce itself; B sees QEMU's RARP and A's.
run vireo-vm-check announce --dev "pci:$A" --dev "pci:$B" --seconds 60
exit $rc
