#!/bin/sh
# Runs in a QEMU microvm guest (tests/vm/vmlab.py --machine microvm --driver vfio-platform): four
# virtio-net-device NICs on virtio-mmio (version 2, ACPI LNRO0005), in the order meson.build gives:
#   A split (hub 0)   B split (hub 0)   C packed (hub 1)   D packed, iommu_platform=on (hub 1)
# First every NIC is on vfio-platform in vfio's no-IOMMU mode (interrupts through eventfds); then, every one
# unbound, through /dev/mem (no interrupt: polled); last, one given back to the kernel's virtio-mmio driver
# (loaded at boot, which took every device first) is refused with the commands that hand it over. Nothing translates either way, so whatever bit 33 says
# every device gets physical addresses and a forced VA is refused. The host takes A's link down on
# "READY link vfio" / "READY link devmem" and up again on "LINK DOWN SEEN vfio" / "LINK DOWN SEEN devmem".
set -- $VM_NICS
A=$1 B=$2 C=$3 D=$4
rc=0
run() {
    echo "== $*"
    "$@" || rc=1
}
verdict() {  # OK WHAT
    if [ "$1" = 0 ]; then echo "PASS $2"; else echo "FAIL $2"; rc=1; fi
}
wait_for() {  # FILE TEXT PID: until TEXT is in FILE, PID exits, or 60 s pass
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null && kill -0 "$3" 2>/dev/null && [ $i -lt 600 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    grep -q "$2" "$1"
}
echo "== NICs $VM_NICS; /dev/vfio: $(ls /dev/vfio | tr '\n' ' ')"

echo "=== 1. vfio-platform, no-IOMMU"
run vireo-vm-check list --expect "$A=pa/vfio-noiommu" --expect "$D=pa/vfio-noiommu"
run vireo-fwd --list
run vireo-vm-check link --dev "mmio:$A" --seconds 60 --tag vfio
run vireo-vm-check loop --dev "mmio:$A" --dev "mmio:$B" --expect-mode pa --count 1000
run vireo-vm-check loop --dev "mmio:$C,packed=1" --dev "mmio:$D,packed=1" --expect-mode pa --count 1000
# Each device reaches only its own window (PA: nothing translates); the process has no shared memory to choose a
# mode for, so no --expect-mode here.
run vireo-vm-check loop --dev "mmio:$A,dma=window" --dev "mmio:$B,dma=window" --count 500
# The line's used-buffer interrupt wakes a sleeping Rx queue.
run vireo-vm-check sleep --dev "mmio:$A" --dev "mmio:$B"
# vireo-fwd between the two hubs (B <-> C), sleeping on the interrupt when idle; A's frames cross it to D,
# which sends them back across it: every frame checked on both sides.
vireo-fwd --forward-mode=io --sleep-when-idle=100 "mmio:$B" "mmio:$C,packed=1" >/tmp/fwd.log 2>&1 &
fwd=$!
if wait_for /tmp/fwd.log "polling on CPU" $fwd; then
    run vireo-vm-check loop --dev "mmio:$A" --dev "mmio:$D,packed=1" --expect-mode pa --count 1000
    kill -INT $fwd
    wait $fwd
    verdict $? "vireo-fwd forwarded between two virtio-mmio ports and exited cleanly"
else
    echo "FAIL vireo-fwd did not start"
    kill $fwd
    rc=1
fi
grep -E "IOVA mode|link|sleep|forwarded|drop" /tmp/fwd.log
run vireo-vm-check refuse --dev "mmio:$A" --iova-mode=va \
    --says "mmio:$A" --says "nothing translates" --says "--iova-mode=pa"
run vireo-vm-check mmio-cost --dev "mmio:$A" --count 20000

# The alternative the issue named: uio_pdrv_genirq binds only devices with a device-tree node or platform data.
d=/sys/bus/platform/devices/$B
echo "$B" > /sys/bus/platform/drivers/vfio-platform/unbind
echo uio_pdrv_genirq > "$d/driver_override"
echo "$B" > /sys/bus/platform/drivers_probe 2>/dev/null
[ ! -e "$d/driver" ]
verdict $? "uio_pdrv_genirq cannot take an ACPI virtio-mmio device"
dmesg | grep -i "uio_pdrv_genirq" | tail -n 2

echo "=== 2. /dev/mem: every NIC unbound"
for n in $A $B $C $D; do
    d=/sys/bus/platform/devices/$n
    echo > "$d/driver_override"
    [ -e "$d/driver" ] && echo "$n" > "$d/driver/unbind"
done
run vireo-vm-check list --expect "$A=pa/none" --expect "$D=pa/none"
run vireo-vm-check link --dev "mmio:$A" --seconds 60 --tag devmem
run vireo-vm-check loop --dev "mmio:$A" --dev "mmio:$B" --expect-mode pa --count 1000
run vireo-vm-check loop --dev "mmio:$C,packed=1" --dev "mmio:$D,packed=1" --expect-mode pa --count 1000
run vireo-vm-check mmio-cost --dev "mmio:$A" --count 20000
timeout 60 vireo-fwd --forward-mode=io --sleep-when-idle=100 "mmio:$A" "mmio:$B" >/tmp/fwd-sleep.log 2>&1
grep -q "no interrupt" /tmp/fwd-sleep.log
verdict $? "--sleep-when-idle through /dev/mem is refused with the reason"
cat /tmp/fwd-sleep.log

echo "=== 3. held by the kernel's virtio-mmio driver: the error says how to hand it over"
echo "$A" > /sys/bus/platform/drivers/virtio-mmio/bind
run vireo-vm-check list --expect "$A=refused"
run vireo-vm-check refuse --dev "mmio:$A" --says "mmio:$A is bound to virtio-mmio" \
    --says "echo vfio-platform > /sys/bus/platform/devices/$A/driver_override" --says "/dev/mem"
# B shares A's 4 KiB page, which virtio-mmio now holds: /dev/mem is refused for it, naming the page's holders.
run vireo-vm-check refuse --dev "mmio:$B" --says "IO_STRICT_DEVMEM" --says ": $A $A"
exit $rc
