// The kernel's vhost uapi. linux/vhost_types.h pulls in linux/virtio_ring.h,
// whose legacy vring_init() is C, not C++: VIRTIO_RING_NO_LEGACY leaves it out
// (vireo has its own rings).
#pragma once

#ifndef VIRTIO_RING_NO_LEGACY
#define VIRTIO_RING_NO_LEGACY
#endif
#include <linux/vhost.h>        // IWYU pragma: export
#include <linux/vhost_types.h>  // IWYU pragma: export
