#!/bin/sh
# Guest script for tests/vm/vmlab.py: checks only the VM setup. Every NIC in VM_NICS is bound to vfio-pci
# and has its /dev/vfio/GROUP, /dev/vfio/vfio exists, and the hugepages were reserved.
fail=0
bad() { echo "SMOKE FAIL: $*"; fail=1; }

[ -n "$VM_NICS" ] || bad "VM_NICS is empty (no --nic given?)"
[ -c /dev/vfio/vfio ] || bad "/dev/vfio/vfio missing"
for bdf in $VM_NICS; do
    d=/sys/bus/pci/devices/$bdf
    [ -d "$d" ] || { bad "$bdf: no such PCI device"; continue; }
    drv=none; [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
    [ "$drv" = vfio-pci ] || bad "$bdf: bound to $drv, not vfio-pci"
    if [ -e "$d/iommu_group" ]; then
        grp=$(basename "$(readlink "$d/iommu_group")")
        [ -c "/dev/vfio/$grp" ] || bad "$bdf: /dev/vfio/$grp missing"
        # Informational: feature bits 63..32 from the common cfg at BAR4 offset 0 (QEMU's layout);
        # bit 1 = VIRTIO_F_ACCESS_PLATFORM (iommu_platform=on), bit 2 = VIRTIO_F_RING_PACKED.
        bar4=$(sed -n 5p "$d/resource" | cut -d' ' -f1)
        devmem "$bar4" 32 1
        echo "SMOKE ok: $bdf vfio-pci /dev/vfio/$grp features[63:32]=$(devmem $((bar4 + 4)) 32)"
    else
        bad "$bdf: no IOMMU group"
    fi
done
pages=$(cat /proc/sys/vm/nr_hugepages)
[ "$pages" -ge "${VM_HUGEPAGES:-1}" ] || bad "only $pages hugepages reserved (wanted ${VM_HUGEPAGES:-1})"
echo "SMOKE hugepages=$pages VM_NICS='$VM_NICS' VM_MACS='$VM_MACS' VM_GROUPS='$VM_GROUPS'"
[ $fail = 0 ] && echo "SMOKE PASS"
exit $fail
