#!/bin/sh
# Runs in a QEMU microvm guest whose virtio-mmio devices are legacy (version 1, QEMU's default: vmlab
# --legacy-mmio), unbound: vireo refuses one with the way to version 2.
set -- $VM_NICS
vireo-vm-check refuse --dev "mmio:$1" --says "mmio:$1" --says "legacy" --says "force-legacy=false"
