#!/bin/sh
# Runs in a test VM without a vIOMMU (tests/vm/vmlab.py --no-iommu-device), the
# classic cloud guest, with every NIC bound to VM_DRIVER: vfio-pci in no-IOMMU
# mode (vmlab --vfio-noiommu) or uio_pci_generic (vmlab --driver uio_pci_generic).
# NICs, in the order meson.build gives:
#   A split, iommu_platform=on    B split, iommu_platform=off   (hub 0: A <-> B)
#   C packed, iommu_platform=on   D packed, iommu_platform=off  (hub 1: C <-> D)
#   E legacy-only (hub 2)
# The host turns A's link down when the guest prints "READY link", and up
# again on "LINK DOWN SEEN".
# Nothing translates, so whatever bit 33 says every device gets physical
# addresses, and a forced VA is refused with the fix.
set -- $VM_NICS
A=$1 B=$2 C=$3 D=$4 E=$5
rc=0
run() {
    echo "== $*"
    "$@" || rc=1
}
case "$VM_DRIVER" in
    vfio-pci) iommu=vfio-noiommu group="noiommu-[0-9]*" ;;
    uio_pci_generic) iommu=uio group="-" ;;
    *) echo "FAIL guest-noiommu.sh: VM_DRIVER=$VM_DRIVER"; exit 1 ;;
esac
echo "== driver $VM_DRIVER ($iommu): $(ls /dev/vfio /dev/uio* 2>/dev/null | tr '\n' ' ')"

# The configuration interrupt reports the link change: MSI-X vector 0 under
# vfio-pci, INTx through /dev/uioN (read, ISR, unmask) under uio_pci_generic.
run vireo-vm-check link --dev "pci:$A" --seconds 120

# Discovery: bit 33 offered or not, no IOMMU -> pa, and the list names the IOMMU kind.
run vireo-vm-check list --expect "$A=pa/$iommu" --expect "$B=pa/$iommu" --expect "$C=pa/$iommu" \
    --expect "$D=pa/$iommu"
run vireo-fwd --list
if vireo-fwd --list 2>&1 | grep -q "^$A .* $VM_DRIVER  *$group .* $iommu  *pa\$"; then
    echo "PASS vireo-fwd --list shows $A on $VM_DRIVER, group $group, $iommu, mode pa"
else
    echo "FAIL vireo-fwd --list does not show $A on $VM_DRIVER, group $group, $iommu, mode pa"
    rc=1
fi

# Two processes, one device each: frames cross both ways and are checked on both sides.
pair() {  # sender reflector label
    rm -f /tmp/reflect.log  # a log of the pair before would satisfy the wait below before the new one replaced it
    vireo-vm-check reflect --dev "pci:$2" --expect-mode pa --count 1000 --seconds 90 >/tmp/reflect.log 2>&1 &
    pid=$!
    i=0
    while ! grep -q -e READY -e FAIL /tmp/reflect.log && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    run vireo-vm-check traffic --dev "pci:$1" --expect-mode pa --count 1000
    wait $pid || rc=1
    echo "-- reflector ($3):"
    cat /tmp/reflect.log
}
pair "$A" "$B" split
pair "$D,packed=1" "$C,packed=1" packed
# One process, both devices of a hub.
run vireo-vm-check loop --dev "pci:$A" --dev "pci:$B" --expect-mode pa --count 1000
run vireo-vm-check loop --dev "pci:$C,packed=1" --dev "pci:$D,packed=1" --expect-mode pa --count 1000

# Forced VA: nothing translates virtual addresses here, whatever bit 33 says.
run vireo-vm-check refuse --dev "pci:$A" --iova-mode=va \
    --says "pci:$A" --says "nothing translates" --says "$iommu" --says "--iova-mode=pa"
run vireo-vm-check refuse --dev "pci:$B,iova=va" --says "pci:$B" --says "bit 33" --says "--iova-mode=pa"
# A legacy-only device (pre-1.0: I/O-port BAR, no virtio capabilities) is refused with the fix.
run vireo-vm-check refuse --dev "pci:$E" --says "pci:$E" --says "legacy-only" --says "disable-legacy=on"
exit $rc
