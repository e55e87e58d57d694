// The feature words of a device whose registers carry them 32 bits at a time
// behind a select register: virtio-pci (virtio 1.2 4.1.4.3 device_feature_select
// and driver_feature_select) and virtio-mmio (4.2.2 DeviceFeaturesSel and
// DriverFeaturesSel). One reading and one writing rule for both.
#pragma once

#include <cstdint>
#include <functional>

#include "vireo/pmd/virtio_features.hpp"

namespace vireo {

// Selects each word and reads it: word i is bits 32i to 32i+31. A device that
// does not decode selects above 1 is read as offering nothing above bit 63:
// QEMU's virtio-mmio answers every select but 0 with bits 32-63, and since
// VERSION_1 (bit 32) is in that word, word 3 would then claim bit 96, which no
// virtio version defines (1.4 stops at 70). Word 3 equal to word 1 is that tell.
virtio::Features read_feature_words(const std::function<uint32_t(uint32_t select)>& read_word);

// Writes words 0 and 1 always and a higher word only when it accepts a bit:
// after a reset the device holds 0 in every word (4.1.4.3.1, 4.2.2), and a
// device that folds every select above 0 onto word 1 (QEMU's virtio-mmio)
// would have word 1 overwritten by a zero written for select 2.
void write_feature_words(const virtio::Features& f,
                         const std::function<void(uint32_t select, uint32_t value)>& write_word);

}  // namespace vireo
