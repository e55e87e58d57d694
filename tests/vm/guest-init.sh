#!/bin/sh
# /init of the vmlab guest (busybox sh). vmlab.py writes /etc/vmlab.conf beside it with:
#   VMLAB_MODULES  the driver's modules in insmod order, one "NAME [PARAM=VALUE...]" a line
#                  (/lib/modules/NAME.ko; e.g. "vfio enable_unsafe_noiommu_mode=1" with --vfio-noiommu)
#   VMLAB_SLOTS    bus-0 slot of each NIC, in --nic order       VMLAB_MACS  MAC of each NIC, same order
#                  (microvm: the hex address of its registers)
#   VM_DRIVER      vfio-pci, uio_pci_generic, vfio-platform or none (microvm)
#   VM_MACHINE     q35 or microvm                               VM_IOMMU, VM_HUGEPAGES, the --env variables
# It binds every virtio-net device to $VM_DRIVER, runs /test.sh, prints VIREO-VM-EXIT <rc> and powers off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/tmp
mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/hugepages /dev/shm /run
mount -t hugetlbfs hugetlbfs /dev/hugepages
mount -t tmpfs tmpfs /dev/shm
echo
echo "VIREO-VM-INIT uptime=$(cut -d' ' -f1 /proc/uptime)"
set -a
. /etc/vmlab.conf
set +a
echo "$VM_HUGEPAGES" > /proc/sys/vm/nr_hugepages

while read -r m params; do
    [ -n "$m" ] || continue
    # shellcheck disable=SC2086 # one word per parameter
    insmod "/lib/modules/$m.ko" $params || echo "VM-WARN insmod $m${params:+ $params} failed"
done <<EOF
$VMLAB_MODULES
EOF

if [ "$VM_MACHINE" = microvm ]; then
    # virtio-mmio (ACPI LNRO0005): each device goes to vfio-platform, or (VM_DRIVER=none) stays unbound; no
    # virtio driver is loaded. VM_NICS: the platform device at each NIC's register address (VMLAB_SLOTS), by
    # /proc/iomem ("  feb02e00-feb02fff : LNRO0005:00").
    if [ "$VM_DRIVER" = vfio-platform ]; then
        for d in /sys/bus/platform/devices/*; do
            case "$(cat "$d/modalias" 2>/dev/null)" in acpi:LNRO0005:*) ;; *) continue ;; esac
            echo vfio-platform > "$d/driver_override"
            [ -e "$d/driver" ] && echo "${d##*/}" > "$d/driver/unbind"
            echo "${d##*/}" > /sys/bus/platform/drivers_probe 2>/dev/null || echo "VM-WARN vfio-platform probe of ${d##*/} failed"
        done
    fi
    VM_NICS=""
    VM_GROUPS=""
    set -- $VMLAB_MACS
    for addr in $VMLAB_SLOTS; do
        name=$(sed -n "s/^ *$addr-[0-9a-f]* : \(LNRO0005:[0-9a-f]*\)\$/\1/p" /proc/iomem | head -n 1)
        d=/sys/bus/platform/devices/$name
        grp=none
        drv=none
        [ -e "$d/iommu_group" ] && grp=noiommu-$(basename "$(readlink "$d/iommu_group")")
        [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
        echo "VM-NIC ${name:-none} at 0x$addr group=$grp driver=$drv mac=$1"
        VM_NICS="$VM_NICS ${name:-none}"
        VM_GROUPS="$VM_GROUPS $grp"
        shift
    done
    export VM_NICS="${VM_NICS# }" VM_GROUPS="${VM_GROUPS# }" VM_MACS="$VMLAB_MACS"
else
    # Every virtio-net device (transitional 0x1000, modern 0x1041) goes to $VM_DRIVER; no virtio driver is loaded.
    for d in /sys/bus/pci/devices/*; do
        case "$(cat "$d/vendor"):$(cat "$d/device")" in
            0x1af4:0x1000 | 0x1af4:0x1041) ;;
            *) continue ;;
        esac
        bdf=${d##*/}
        echo "$VM_DRIVER" > "$d/driver_override"
        [ -e "$d/driver" ] && echo "$bdf" > "$d/driver/unbind"
        echo "$bdf" > /sys/bus/pci/drivers_probe 2>/dev/null || echo "VM-WARN $VM_DRIVER probe of $bdf failed"
    done

    # VM_NICS in --nic order. Behind a pcie-root-port the NIC is the port's child. A group is named as in
    # /dev/vfio: N, or noiommu-N for vfio's no-IOMMU groups; uio is the uioN of uio_pci_generic.
    VM_NICS=""
    VM_GROUPS=""
    VM_UIOS=""
    set -- $VMLAB_MACS
    for slot in $VMLAB_SLOTS; do
        d=/sys/bus/pci/devices/$slot
        for c in "$d"/0000:*; do [ -e "$c/vendor" ] && d=$c; done
        bdf=${d##*/}
        grp=none
        drv=none
        uio=none
        [ -e "$d/iommu_group" ] && grp=$(basename "$(readlink "$d/iommu_group")")
        [ -c "/dev/vfio/noiommu-$grp" ] && grp=noiommu-$grp
        [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
        for u in "$d"/uio/uio*; do [ -e "$u" ] && uio=${u##*/}; done
        echo "VM-NIC $bdf group=$grp driver=$drv mac=$1 id=$(cat "$d/vendor"):$(cat "$d/device") uio=$uio"
        VM_NICS="$VM_NICS $bdf"
        VM_GROUPS="$VM_GROUPS $grp"
        VM_UIOS="$VM_UIOS $uio"
        shift
    done
    export VM_NICS="${VM_NICS# }" VM_GROUPS="${VM_GROUPS# }" VM_UIOS="${VM_UIOS# }" VM_MACS="$VMLAB_MACS"
fi

cd /tmp
sh /test.sh
echo "VIREO-VM-EXIT $?"
poweroff -f
echo o > /proc/sysrq-trigger
sleep 30
