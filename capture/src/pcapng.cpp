// pcapng blocks (pcapng.hpp), little-endian as this host writes them; the
// byte-order magic in the section header tells readers so.
#include "vireo/capture/pcapng.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vireo/base/error.hpp"

namespace vireo {
namespace {

constexpr uint32_t kSectionHeader = 0x0a0d0d0a, kInterfaceDescription = 1, kEnhancedPacket = 6;
constexpr uint16_t kLinkEthernet = 1;
constexpr uint16_t kOptEnd = 0, kOptIfName = 2, kOptIfTsresol = 9, kOptEpbFlags = 2;

uint32_t pad4(size_t n) { return static_cast<uint32_t>((n + 3) & ~size_t{3}); }

void append(std::vector<uint8_t>& b, const void* p, size_t n) {
    const size_t at = b.size();
    b.resize(at + n);
    if (n != 0) std::memcpy(b.data() + at, p, n);
}

// One option: code, length, value padded to 4 bytes.
void option(std::vector<uint8_t>& b, uint16_t code, const void* v, uint16_t len) {
    const uint16_t h[2] = {code, len};
    append(b, h, 4);
    append(b, v, len);
    b.resize(b.size() + (pad4(len) - len), 0);
}

// type, total length, body, total length again.
std::vector<uint8_t> block(uint32_t type, const std::vector<uint8_t>& body) {
    const uint32_t total = static_cast<uint32_t>(12 + body.size());
    std::vector<uint8_t> b;
    b.reserve(total);
    append(b, &type, 4);
    append(b, &total, 4);
    append(b, body.data(), body.size());
    append(b, &total, 4);
    return b;
}

}  // namespace

PcapngWriter::PcapngWriter(const std::string& path, const std::vector<std::string>& ports, uint32_t snaplen)
    : f_(std::fopen(path.c_str(), "wb")), path_(path) {
    if (f_ == nullptr) throw Error("--pcap=" + path + ": cannot create it: " + std::strerror(errno), errno);
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
    std::vector<uint8_t> shb;
    const uint32_t magic = 0x1a2b3c4d;
    const uint16_t version[2] = {1, 0};
    const int64_t section_length = -1;  // not given
    append(shb, &magic, 4);
    append(shb, version, 4);
    append(shb, &section_length, 8);
    option(shb, kOptEnd, nullptr, 0);
    const auto s = block(kSectionHeader, shb);
    put(s.data(), s.size());
    for (const std::string& name : ports) {
        std::vector<uint8_t> idb;
        const uint16_t link[2] = {kLinkEthernet, 0};
        append(idb, link, 4);
        append(idb, &snaplen, 4);
        option(idb, kOptIfName, name.data(), static_cast<uint16_t>(std::min<size_t>(name.size(), 255)));
        const uint8_t nanoseconds = 9;
        option(idb, kOptIfTsresol, &nanoseconds, 1);
        option(idb, kOptEnd, nullptr, 0);
        const auto b = block(kInterfaceDescription, idb);
        put(b.data(), b.size());
    }
}

PcapngWriter::~PcapngWriter() {
    if (f_ != nullptr) std::fclose(f_);
}

void PcapngWriter::put(const void* p, size_t n) {
    if (std::fwrite(p, 1, n, f_) != n) failed_ = true;
}

void PcapngWriter::write(const CaptureRecord& r, const uint8_t* data) {
    // Enhanced Packet Block: interface, timestamp (high, low), captured and
    // original length, data padded to 4, epb_flags (bits 0-1: 1 inbound, 2 outbound), end.
    const uint32_t data_len = pad4(r.cap_len);
    const uint32_t total = 32 + data_len + 8 + 4;
    const uint32_t head[7] = {
        kEnhancedPacket, total,     r.port, static_cast<uint32_t>(r.ns >> 32), static_cast<uint32_t>(r.ns),
        r.cap_len,       r.wire_len};
    put(head, sizeof head);
    put(data, r.cap_len);
    static const uint8_t zero[4] = {};
    put(zero, data_len - r.cap_len);
    const uint16_t opt[2] = {kOptEpbFlags, 4};
    const uint32_t flags = r.dir == CaptureDirection::Rx ? 1 : 2;
    put(opt, 4);
    put(&flags, 4);
    put(zero, 4);  // opt_endofopt
    put(&total, 4);
    written_++;
}

void PcapngWriter::close() {
    if (f_ == nullptr) return;
    const bool ok = std::fclose(f_) == 0 && !failed_;
    f_ = nullptr;
    if (!ok) throw Error("--pcap=" + path_ + ": writing failed (disk full?): the capture is incomplete");
}

}  // namespace vireo
