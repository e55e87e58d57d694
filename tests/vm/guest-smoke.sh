#!/bin/sh
# Guest script for tests/vm/vmlab.py: checks only the VM setup. Every NIC in VM_NICS is bound to $VM_DRIVER:
# with vfio-pci it has its /dev/vfio/GROUP (an IOMMU group or, with --vfio-noiommu, noiommu-N) and
# /dev/vfio/vfio exists; with uio_pci_generic it has a /dev/uioN whose /sys/class/uio/uioN/device is the NIC.
# The hugepages must be reserved.
fail=0
bad() { echo "SMOKE FAIL: $*"; fail=1; }
driver=${VM_DRIVER:-vfio-pci}

[ -n "$VM_NICS" ] || bad "VM_NICS is empty (no --nic given?)"
[ "$driver" != vfio-pci ] || [ -c /dev/vfio/vfio ] || bad "/dev/vfio/vfio missing"
set -- $VM_GROUPS
for bdf in $VM_NICS; do
    grp=$1
    shift
    d=/sys/bus/pci/devices/$bdf
    [ -d "$d" ] || { bad "$bdf: no such PCI device"; continue; }
    drv=none; [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
    [ "$drv" = "$driver" ] || { bad "$bdf: bound to $drv, not $driver"; continue; }
    if [ "$driver" = vfio-pci ]; then
        [ "$grp" != none ] || { bad "$bdf: no IOMMU group (a guest without vIOMMU needs --vfio-noiommu)"; continue; }
        [ -c "/dev/vfio/$grp" ] || { bad "$bdf: /dev/vfio/$grp missing"; continue; }
        node=/dev/vfio/$grp
    else
        uio=none
        for u in "$d"/uio/uio*; do [ -e "$u" ] && uio=${u##*/}; done
        [ -c "/dev/$uio" ] || { bad "$bdf: no /dev/uioN (uio=$uio)"; continue; }
        [ "$(readlink -f "/sys/class/uio/$uio/device")" = "$(readlink -f "$d")" ] ||
            { bad "$bdf: /sys/class/uio/$uio/device is not the NIC"; continue; }
        node=/dev/$uio
    fi
    # Informational: feature bits 63..32 from the common cfg at BAR4 offset 0 (QEMU's layout);
    # bit 1 = VIRTIO_F_ACCESS_PLATFORM (iommu_platform=on), bit 2 = VIRTIO_F_RING_PACKED.
    bar4=$(sed -n 5p "$d/resource" | cut -d' ' -f1)
    devmem "$bar4" 32 1
    res4=no; [ -e "$d/resource4" ] && res4=yes
    echo "SMOKE ok: $bdf $drv $node resource4=$res4 features[63:32]=$(devmem $((bar4 + 4)) 32)"
done
pages=$(cat /proc/sys/vm/nr_hugepages)
[ "$pages" -ge "${VM_HUGEPAGES:-1}" ] || bad "only $pages hugepages reserved (wanted ${VM_HUGEPAGES:-1})"
echo "SMOKE hugepages=$pages VM_NICS='$VM_NICS' VM_MACS='$VM_MACS' VM_GROUPS='$VM_GROUPS' VM_UIOS='$VM_UIOS'"
[ $fail = 0 ] && echo "SMOKE PASS"
exit $fail
