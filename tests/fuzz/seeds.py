#!/usr/bin/env python3
"""Seed inputs for tests/fuzz/vhost_control_fuzz.cpp: a well-behaved back end's whole conversation (handshake,
start, reset), in the target's chunk format ([kind][len][bytes]; kind 2: the back-end channel), with and without
ACCESS_PLATFORM, REPLY_ACK and packed rings. The fuzzer mutates from there.
  seeds.py OUT_DIR"""
import os
import struct
import sys

VERSION_1, ACCESS_PLATFORM, RING_PACKED, EVENT_IDX, PROTOCOL_FEATURES = 1 << 32, 1 << 33, 1 << 34, 1 << 29, 1 << 30
MQ, REPLY_ACK, BACKEND_REQ = 1, 1 << 3, 1 << 5


def msg(request, payload, flags=0x5):
    return struct.pack("<III", request, flags, len(payload)) + payload


def u64(v):
    return struct.pack("<Q", v)


def chunk(data, kind=0):
    out = b""
    while data:
        out += bytes([kind, min(len(data), 255)]) + data[:255]
        data = data[255:]
    return out


def conversation(features, proto):
    ack = bool(proto & REPLY_ACK)
    s = chunk(msg(1, u64(features)))  # GET_FEATURES
    s += chunk(msg(15, u64(proto)))  # GET_PROTOCOL_FEATURES
    if proto & MQ:
        s += chunk(msg(17, u64(1)))  # GET_QUEUE_NUM
    acked = [2]  # SET_FEATURES
    if features & ACCESS_PLATFORM and proto & BACKEND_REQ:
        acked.append(21)  # SET_BACKEND_REQ_FD
    acked.append(5)  # SET_MEM_TABLE
    if features & ACCESS_PLATFORM:
        acked.append(22)  # IOTLB_MSG update
    acked += [13, 14, 8, 10, 9, 12] * 2 + [18, 18]  # per ring, then enable
    if ack:
        for r in acked:
            s += chunk(msg(r, u64(0)))
        s += chunk(msg(18, u64(0))) * 2  # disable at reset
    for i in range(2):
        s += chunk(msg(11, struct.pack("<II", i, 0)))  # GET_VRING_BASE
    if ack and features & ACCESS_PLATFORM:
        s += chunk(msg(22, u64(0)))  # IOTLB invalidate
    if features & ACCESS_PLATFORM:  # an IOTLB miss on the back-end channel
        s += chunk(msg(1, struct.pack("<QQQBB6x", 0x1000, 0, 0, 3, 1), flags=0x1 | (1 << 3)), kind=2)
    return s


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    base = VERSION_1 | PROTOCOL_FEATURES | EVENT_IDX
    for i, (f, p) in enumerate([(base, MQ | REPLY_ACK), (base | ACCESS_PLATFORM, MQ | REPLY_ACK | BACKEND_REQ),
                                (base | RING_PACKED, MQ | REPLY_ACK), (base, 0),
                                (base | ACCESS_PLATFORM | RING_PACKED, MQ | REPLY_ACK | BACKEND_REQ)]):
        with open(os.path.join(out, f"seed-{i}"), "wb") as fh:
            fh.write(conversation(f, p))


if __name__ == "__main__":
    main()
