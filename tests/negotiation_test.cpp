// Feature negotiation (pmd/src/net/negotiation.hpp) row by row: what the
// device offers and the device string wants in, the features or the error out.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/negotiation.hpp"
#include "support/features_print.hpp"
#include "vireo/pmd/virtio_spec.hpp"

namespace vireo::detail {
namespace {

using namespace virtio::feature;
using virtio::bit;

using virtio::Features;

constexpr Features V1 = bit(kVersion1);
constexpr Features kAll = ~Features{};  // every bit, past 63 too

struct Row {
    const char* name;
    NegotiationInput in;
    Features features;           // expected when error_mentions is null
    const char* error_mentions;  // a phrase the error must contain (its fix)
};

NegotiationInput offer(Features offered, Features wanted = kAll) {
    NegotiationInput in;
    in.offered = offered;
    in.wanted = wanted;
    return in;
}

template <class F>
NegotiationInput with(NegotiationInput in, F change) {
    change(in);
    return in;
}

const std::vector<Row>& rows() {
    static const std::vector<Row> r = {
        {"modern devices only", offer(bit(kNetMrgRxbuf)), {}, "VIRTIO_F_VERSION_1"},
        {"what both sides want", offer(V1 | bit(kNetMrgRxbuf) | bit(kNetMac) | bit(kRingPacked)),
         V1 | bit(kNetMrgRxbuf) | bit(kNetMac) | bit(kRingPacked), nullptr},
        {"what the device string turns off", offer(V1 | bit(kNetMrgRxbuf) | bit(kInOrder), V1 | bit(kInOrder)),
         V1 | bit(kInOrder), nullptr},
        {"bits past 63 vireo does not take stay off, the rest is negotiated",
         offer(V1 | bit(kNetMac) | bit(kNetRssContext) | bit(kNetGuestUdpTunnelGso) | bit(kNetHostUdpTunnelGsoCsum) |
               bit(100)),
         V1 | bit(kNetMac), nullptr},
        {"RING_RESET where the transport can reset a queue",
         with(offer(V1 | bit(kRingReset)), [](auto& i) { i.queue_reset = true; }), V1 | bit(kRingReset), nullptr},
        {"bits vireo does not know stay off", offer(V1 | bit(kNetGuestUfo) | bit(kSrIov) | bit(kRingReset)), V1,
         nullptr},
        {"bit 33 offered, the plan says no", offer(V1 | bit(kAccessPlatform)), V1, nullptr},
        {"bit 33 offered, the plan says yes",
         with(offer(V1 | bit(kAccessPlatform)), [](auto& i) { i.negotiate_access_platform = true; }),
         V1 | bit(kAccessPlatform), nullptr},
        {"bit 33 is the plan's, not the wish list's",
         with(offer(V1 | bit(kAccessPlatform), V1), [](auto& i) { i.negotiate_access_platform = true; }),
         V1 | bit(kAccessPlatform), nullptr},
        {"HOST_TSO needs CSUM (5.1.3.1)", offer(V1 | bit(kNetHostTso4) | bit(kNetHostTso6)), V1, nullptr},
        {"HOST_TSO with CSUM", offer(V1 | bit(kNetCsum) | bit(kNetHostTso4)), V1 | bit(kNetCsum) | bit(kNetHostTso4),
         nullptr},
        {"GUEST_TSO needs GUEST_CSUM and MRG_RXBUF offered",
         offer(V1 | bit(kNetGuestCsum) | bit(kNetGuestTso4) | bit(kNetGuestTso6)), V1 | bit(kNetGuestCsum), nullptr},
        {"GUEST_TSO with both", offer(V1 | bit(kNetGuestCsum) | bit(kNetMrgRxbuf) | bit(kNetGuestTso4)),
         V1 | bit(kNetGuestCsum) | bit(kNetMrgRxbuf) | bit(kNetGuestTso4), nullptr},
        {"guest_tso asked without mrg_rxbuf", offer(V1, kAll & ~bit(kNetMrgRxbuf)), {}, "mrg_rxbuf=1"},
        {"guest_tso asked without guest_csum", offer(V1, kAll & ~bit(kNetGuestCsum)), {}, "guest_csum=1"},
        {"the control queue's features need CTRL_VQ",
         offer(V1 | bit(kNetCtrlRx) | bit(kNetCtrlVlan) | bit(kNetRss) | bit(kNetGuestAnnounce) |
               bit(kNetCtrlGuestOffloads)),
         V1, nullptr},
        {"the control queue and what needs it",
         offer(V1 | bit(kNetCtrlVq) | bit(kNetCtrlRx) | bit(kNetCtrlMacAddr) | bit(kNetHashReport) |
               bit(kNetCtrlGuestOffloads)),
         V1 | bit(kNetCtrlVq) | bit(kNetCtrlRx) | bit(kNetCtrlMacAddr) | bit(kNetHashReport) |
             bit(kNetCtrlGuestOffloads),
         nullptr},
        {"no control queue where the device does not process it (vhost-user)",
         with(offer(V1 | bit(kNetCtrlVq) | bit(kNetCtrlRx) | bit(kNetRss)),
              [](auto& i) { i.control_queue_processed = false; }),
         V1, nullptr},
        {"one queue pair: MQ stays off", offer(V1 | bit(kNetMq) | bit(kNetCtrlVq)), V1 | bit(kNetCtrlVq), nullptr},
        {"two pairs",
         with(offer(V1 | bit(kNetMq) | bit(kNetCtrlVq)),
              [](auto& i) {
                  i.queues = 2;
                  i.max_virtqueue_pairs = 4;
              }),
         V1 | bit(kNetMq) | bit(kNetCtrlVq), nullptr},
        {"two pairs over vhost-user: MQ without a control queue",
         with(offer(V1 | bit(kNetMq)),
              [](auto& i) {
                  i.queues = 2;
                  i.max_virtqueue_pairs = 2;
                  i.control_queue_processed = false;
              }),
         V1 | bit(kNetMq), nullptr},
        {"two pairs need CTRL_VQ where the device processes it",
         with(offer(V1 | bit(kNetMq)),
              [](auto& i) {
                  i.queues = 2;
                  i.max_virtqueue_pairs = 2;
              }),
         {},
         "VIRTIO_NET_F_CTRL_VQ"},
        {"two pairs need MQ", with(offer(V1 | bit(kNetCtrlVq)), [](auto& i) { i.queues = 2; }), {}, "VIRTIO_NET_F_MQ"},
        {"more pairs than the device has",
         with(offer(V1 | bit(kNetMq) | bit(kNetCtrlVq)),
              [](auto& i) {
                  i.queues = 8;
                  i.max_virtqueue_pairs = 4;
              }),
         {},
         "has 4 queue pairs"},
        {"a split ring is a power of two", with(offer(V1), [](auto& i) { i.ring = 300; }), {}, "use 256, 512"},
        {"a packed ring need not be", with(offer(V1 | bit(kRingPacked)), [](auto& i) { i.ring = 300; }),
         V1 | bit(kRingPacked), nullptr},
        {"packed offered but not wanted: split rules",
         with(offer(V1 | bit(kRingPacked), V1), [](auto& i) { i.ring = 300; }),
         {},
         "not a power of two"},
        {"ring over the device's limit",
         with(offer(V1),
              [](auto& i) {
                  i.ring = 1024;
                  i.first_pair_max[1] = 768;
              }),
         {},
         "use ring=512 or less"},
        {"ring within the device's limit",
         with(offer(V1),
              [](auto& i) {
                  i.ring = 512;
                  i.first_pair_max[0] = 512;
                  i.first_pair_max[1] = 1024;
              }),
         V1, nullptr},
    };
    return r;
}

TEST(Negotiation, EveryRow) {
    for (const Row& r : rows()) {
        const Negotiated n = negotiate_features(r.in, "dev");
        if (r.error_mentions != nullptr) {
            EXPECT_FALSE(n.ok()) << r.name << ": negotiated " << hex(n.features);
            EXPECT_NE(n.error.find(r.error_mentions), std::string::npos) << r.name << ": " << n.error;
            EXPECT_EQ(n.error.rfind("dev", 0), 0u) << r.name << ": the error names the device: " << n.error;
        } else {
            EXPECT_TRUE(n.ok()) << r.name << ": " << n.error;
            EXPECT_EQ(n.features, r.features) << r.name;
        }
    }
}

// The feature set as the select registers see it: word i is bits 32i..32i+31.
TEST(FeatureSet, WordsBitsAndText) {
    Features f = bit(kVersion1) | bit(kNetMac) | bit(kNetHostUdpTunnelGsoCsum) | bit(127);
    EXPECT_EQ(f.word(0), 1u << kNetMac);
    EXPECT_EQ(f.word(1), 1u);  // VERSION_1 is bit 32
    EXPECT_EQ(f.word(2), 1u << (kNetHostUdpTunnelGsoCsum - 64));
    EXPECT_EQ(f.word(3), 1u << 31);
    EXPECT_EQ(f.word(4), 0u) << "no word past 3";
    EXPECT_TRUE(f.has(127));
    EXPECT_FALSE(f.has(128)) << "past the set: never there";
    EXPECT_FALSE(f.fits_u64());
    EXPECT_EQ(hex(f), "0x8000000000000010_0000000100000020");
    f.set_word(3, 0);
    f.set_word(2, 0);
    EXPECT_TRUE(f.fits_u64());
    EXPECT_EQ(hex(f), "0x100000020") << "within 64 bits, printed as before";
    EXPECT_EQ(f, Features::from_u64(0x100000020));
    EXPECT_TRUE((f & bit(70)).empty());
    EXPECT_TRUE(Features{}.empty());
    EXPECT_TRUE(bit(200).empty()) << "a bit past 127 is no bit";
}

// Whatever the offer and the wish list, nothing outside what vireo supports
// is written, and VERSION_1 always is.
TEST(Negotiation, NeverMoreThanSupported) {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // 128-bit offers and wishes: words 2 and 3 from the same generator.
        Features offered = Features::from_u64(x) | V1, wanted = Features::from_u64(x * 0x2545f4914f6cdd1dull);
        offered.set_word(2, static_cast<uint32_t>(x >> 7));
        offered.set_word(3, static_cast<uint32_t>(x >> 29));
        wanted.set_word(2, static_cast<uint32_t>(x >> 3));
        wanted.set_word(3, ~0u);
        NegotiationInput in = offer(offered, wanted | bit(kNetMrgRxbuf) | bit(kNetGuestCsum));
        in.negotiate_access_platform = (x >> 33) & 1;
        const Negotiated n = negotiate_features(in, "dev");
        ASSERT_TRUE(n.ok()) << n.error;
        EXPECT_TRUE((n.features & ~supported_features()).empty()) << hex(n.features);
        EXPECT_TRUE(virtio::has(n.features, kVersion1));
        EXPECT_EQ(virtio::has(n.features, kAccessPlatform), in.negotiate_access_platform);
    }
}

}  // namespace
}  // namespace vireo::detail
