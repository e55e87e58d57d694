#!/bin/sh
# Runs in the test VM (tests/vm/vmlab.py). NICs, in the order meson.build gives:
#   A split, iommu_platform=on    B split, iommu_platform=off, QEMU Tx timer (hub 0: A <-> B)
#   C packed, iommu_platform=on   D packed, iommu_platform=off  (hub 1: C <-> D)
set -- $VM_NICS
A=$1 B=$2 C=$3 D=$4
rc=0
run() {
    echo "== $*"
    "$@" || rc=1
}

# Discovery: bit 33 -> va (type1 vIOMMU), no bit 33 -> pa.
run vireo-vm-check list --expect "$A=va" --expect "$B=pa" --expect "$C=va" --expect "$D=pa"

# Two processes, each choosing its own mode from its device's bit 33; frames
# cross between them and are checked on both sides.
pair() {  # sender(va) reflector(pa) label
    rm -f /tmp/reflect.log  # a log of the pair before would satisfy the wait below before the new one replaced it
    vireo-vm-check reflect --dev "pci:$2" --expect-mode pa --count 1500 --seconds 90 >/tmp/reflect.log 2>&1 &
    pid=$!
    i=0
    while ! grep -q -e READY -e FAIL /tmp/reflect.log && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    run vireo-vm-check traffic --dev "pci:$1" --expect-mode va --count 1500
    wait $pid || rc=1
    echo "-- reflector ($3):"
    cat /tmp/reflect.log
}
pair "$A" "$B" split
pair "$C,packed=1" "$D,packed=1" packed

# One process with both devices: B needs PA, so the process runs in PA and A
# (behind the IOMMU) is mapped IOVA = PA.
run vireo-vm-check loop --dev "pci:$A" --dev "pci:$B" --expect-mode pa --count 1500
run vireo-vm-check loop --dev "pci:$C,packed=1" --dev "pci:$D,packed=1" --expect-mode pa --count 1500
# dma=window: each device reaches only its own window (A through the IOMMU,
# IOVA = VA; B without bit 33: physical addresses, bounced but unenforced,
# with a warning); the process's packet memory is mapped for neither.
run vireo-vm-check loop --dev "pci:$A,dma=window" --dev "pci:$B,dma=window" --expect-mode va --count 1500
run vireo-vm-check loop --dev "pci:$C,packed=1,dma=window" --dev "pci:$D,packed=1,dma=window" --expect-mode va \
    --count 1500
# vireo-fwd over PCI: it lists the devices, and macswaps on B (PA, alone in its
# process) what this check's port on A (VA) sends and verifies.
run vireo-fwd --list
vireo-fwd --forward-mode=macswap --stats-period=0 --json=/tmp/fwd.json "pci:$B" >/tmp/fwd.log 2>&1 &
fwd=$!
i=0
while ! grep -q -e "polling on CPU" -e "vireo-fwd:.*[Ee]rror\|cannot\|refused" /tmp/fwd.log && [ $i -lt 600 ]; do
    sleep 0.1
    i=$((i + 1))
done
run vireo-vm-check traffic --dev "pci:$A" --expect-mode va --count 1500
kill -INT $fwd
if wait $fwd && grep -q '"iova_mode": "pa"' /tmp/fwd.json && grep -q '"leaked": false' /tmp/fwd.json; then
    echo "PASS vireo-fwd macswap on pci:$B (pa), stopped by SIGINT, nothing leaked"
else
    echo "FAIL vireo-fwd macswap on pci:$B"
    rc=1
fi
cat /tmp/fwd.log

# Forced VA with B (no bit 33) must be refused, loudly, naming the device and the fix.
run vireo-vm-check refuse --dev "pci:$A" --dev "pci:$B" --iova-mode=va \
    --says "pci:$B" --says "bit 33" --says "not offered" --says "iommu_platform=on" --says "--iova-mode=pa"
run vireo-vm-check refuse --dev "pci:$D,iova=va" \
    --says "pci:$D" --says "iommu_platform=on" --says "--iova-mode=pa"
exit $rc
