// Feature words behind a select register (feature_words.hpp).
#include "transport/feature_words.hpp"

namespace vireo {

virtio::Features read_feature_words(const std::function<uint32_t(uint32_t select)>& read_word) {
    virtio::Features f;
    for (uint32_t w = 0; w < virtio::Features::kWords; w++) f.set_word(w, read_word(w));
    static_assert(virtio::Features::kWords == 4, "the aliasing test below compares word 3 with word 1");
    if (f.word(3) == f.word(1)) {  // selects above 1 not decoded: the high words are not the device's
        f.set_word(2, 0);
        f.set_word(3, 0);
    }
    return f;
}

void write_feature_words(const virtio::Features& f,
                         const std::function<void(uint32_t select, uint32_t value)>& write_word) {
    for (uint32_t w = 0; w < virtio::Features::kWords; w++)
        if (w < 2 || f.word(w) != 0) write_word(w, f.word(w));
}

}  // namespace vireo
