// A pcapng file (draft-ietf-opsawg-pcapng) of captured frames: one Section
// Header, one Interface Description per port (Ethernet, nanosecond
// timestamps, the port's name), one Enhanced Packet per frame with its
// direction (epb_flags). tcpdump, tshark, Wireshark and libpcap read it.
// Written here because libpcap (1.10, Debian 12) writes only classic pcap,
// which has neither interfaces nor directions.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "vireo/capture/capture.hpp"

namespace vireo {

class PcapngWriter {
public:
    // `ports`: the name of each port (its interface id is its index). Throws
    // vireo::Error when the file cannot be created.
    PcapngWriter(const std::string& path, const std::vector<std::string>& ports, uint32_t snaplen);
    ~PcapngWriter();
    PcapngWriter(const PcapngWriter&) = delete;
    PcapngWriter& operator=(const PcapngWriter&) = delete;

    void write(const CaptureRecord& r, const uint8_t* data);
    // Flushes and closes; throws vireo::Error when a write failed (disk full...).
    void close();
    uint64_t written() const noexcept { return written_; }

private:
    void put(const void* p, size_t n);
    std::FILE* f_;
    std::string path_;
    uint64_t written_ = 0;
    bool failed_ = false;
};

}  // namespace vireo
