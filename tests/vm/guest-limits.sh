#!/bin/sh
# Runs in the test VM (tests/vm/vmlab.py) booted with a 39-bit vIOMMU
# (--aw-bits 39). NICs: A split, iommu_platform=on; B split, iommu_platform=off
# (hub 0); C transitional (legacy and modern interfaces); D legacy-only. The host turns A's link down when the guest prints "READY link", and
# up again on "LINK DOWN SEEN".
set -- $VM_NICS
A=$1 B=$2 C=$3 D=$4
rc=0
run() {
    echo "== $*"
    "$@" || rc=1
}

# The configuration interrupt (MSI-X vector 0 -> eventfd) reports the link change.
run vireo-vm-check link --dev "pci:$A" --seconds 120

# IOVA = VA cannot work behind a 39-bit IOMMU (user addresses reach 2^47): the
# automatic choice for A is PA (listed as such), and forcing VA is refused
# with the reason and the fix.
run vireo-vm-check list --expect "$A=pa" --expect "$B=pa" --expect "$C=pa" --expect "$D=refused"
run vireo-vm-check refuse --dev "pci:$A" --iova-mode=va --says "pci:$A" --says "address width" --says "aw-bits=48" \
    --says "--iova-mode=pa"
# Physical addresses fit (1 GiB guest): PA works on the same devices.
run vireo-vm-check loop --dev "pci:$A" --dev "pci:$B" --expect-mode pa --count 500

# A transitional device is driven through its modern interface; a legacy-only
# one is refused with the fix.
run vireo-vm-check start --dev "pci:$C"
run vireo-vm-check refuse --dev "pci:$D" --says "pci:$D" --says "legacy-only" --says "disable-legacy=on"
exit $rc
