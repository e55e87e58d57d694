// vhost-user wire format, from QEMU's docs/interop/vhost-user.rst (the
// protocol's reference). Private to pmd/: only the transport speaks it.
//
// A message is a 12-byte header (request, flags, payload size) and a payload;
// file descriptors travel beside it as SCM_RIGHTS ancillary data.
#pragma once

#include <cstdint>

namespace vireo::vhost {

// Front-end requests ("Front-end message types").
enum Request : uint32_t {
    kGetFeatures = 1,
    kSetFeatures = 2,
    kSetOwner = 3,
    kResetOwner = 4,
    kSetMemTable = 5,
    kSetVringNum = 8,
    kSetVringAddr = 9,
    kSetVringBase = 10,
    kGetVringBase = 11,
    kSetVringKick = 12,
    kSetVringCall = 13,
    kSetVringErr = 14,
    kGetProtocolFeatures = 15,
    kSetProtocolFeatures = 16,
    kGetQueueNum = 17,
    kSetVringEnable = 18,
    kSetBackendReqFd = 21,
    kIotlbMsg = 22,
    kGetConfig = 24,
};

// Back-end requests on the back-end channel ("Back-end message types").
enum BackendRequest : uint32_t {
    kBackendIotlbMsg = 1,
    kBackendConfigChange = 2,
    kBackendVringHostNotifier = 3,
};

inline constexpr uint32_t kVersion = 0x1;  // flags bits 0-1
inline constexpr uint32_t kVersionMask = 0x3;
inline constexpr uint32_t kFlagReply = 1u << 2;      // this is a reply
inline constexpr uint32_t kFlagNeedReply = 1u << 3;  // REPLY_ACK asked for

inline constexpr unsigned kFeatureProtocolFeatures = 30;  // VHOST_USER_F_PROTOCOL_FEATURES

// Protocol feature bits.
inline constexpr unsigned kProtoMq = 0;
inline constexpr unsigned kProtoReplyAck = 3;
inline constexpr unsigned kProtoNetMtu = 4;
inline constexpr unsigned kProtoBackendReq = 5;
inline constexpr unsigned kProtoConfig = 9;
// A bit of a 64-bit mask of the wire (protocol features; GET/SET_FEATURES as carried).
constexpr uint64_t wire_bit(unsigned b) noexcept { return uint64_t{1} << b; }
constexpr bool wire_has(uint64_t mask, unsigned b) noexcept { return (mask & wire_bit(b)) != 0; }

inline constexpr uint64_t kVringNoFd = 1u << 8;  // SET_VRING_KICK/CALL/ERR payload: no fd attached
inline constexpr uint32_t kMaxRegions = 8;
inline constexpr uint32_t kMaxFds = 8;  // per message, either direction

struct Header {
    uint32_t request;
    uint32_t flags;
    uint32_t size;
};
static_assert(sizeof(Header) == 12);

struct VringState {
    uint32_t index;
    uint32_t num;
};

struct VringAddr {
    uint32_t index;
    uint32_t flags;
    uint64_t desc;   // descriptor area: front-end VA, or IOVA once ACCESS_PLATFORM is negotiated
    uint64_t used;   // device area
    uint64_t avail;  // driver area
    uint64_t log;
};
static_assert(sizeof(VringAddr) == 40);

struct MemRegion {
    uint64_t guest_phys_addr;  // the address descriptors use for this region
    uint64_t memory_size;
    uint64_t userspace_addr;  // the front end's VA
    uint64_t mmap_offset;     // into the fd sent beside the message
};

struct MemTable {
    uint32_t nregions;
    uint32_t padding;
    MemRegion regions[kMaxRegions];
};
static_assert(sizeof(MemTable) == 8 + 8 * 32);

// struct vhost_iotlb_msg of linux/vhost_types.h.
struct IotlbMsg {
    uint64_t iova;
    uint64_t size;
    uint64_t uaddr;
    uint8_t perm;  // 1 RO, 2 WO, 3 RW
    uint8_t type;  // 1 MISS, 2 UPDATE, 3 INVALIDATE, 4 ACCESS_FAIL
    uint8_t pad[6];
};
static_assert(sizeof(IotlbMsg) == 32);
inline constexpr uint8_t kIotlbMiss = 1, kIotlbUpdate = 2, kIotlbInvalidate = 3;
inline constexpr uint8_t kAccessRw = 3;

union Payload {
    uint64_t u64;
    VringState state;
    VringAddr addr;
    MemTable mem;
    IotlbMsg iotlb;
    uint8_t raw[sizeof(MemTable)];
};

struct Message {
    Header hdr;
    Payload payload;
};

const char* request_name(uint32_t r);

}  // namespace vireo::vhost
