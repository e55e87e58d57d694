// Reading virtio-net's configuration space field by field (virtio 1.2 5.1.4).
#include "transport/net_config_space.hpp"

#include "vireo/pmd/virtio_spec.hpp"

namespace vireo {

NetConfig read_net_config(const virtio::Features& f, const ConfigReader& read) {
    using namespace virtio::feature;
    NetConfig c{};
    if (virtio::has(f, kNetMac)) read(c.mac, netcfg::kMac, 6);
    c.status = 1;  // 5.1.4: without VIRTIO_NET_F_STATUS the link is assumed up
    if (virtio::has(f, kNetStatus)) read(&c.status, netcfg::kStatus, 2);
    c.max_virtqueue_pairs = 1;
    if (virtio::has(f, kNetMq)) read(&c.max_virtqueue_pairs, netcfg::kMaxVirtqueuePairs, 2);
    if (c.max_virtqueue_pairs == 0) c.max_virtqueue_pairs = 1;
    c.mtu = 0;
    if (virtio::has(f, kNetMtu)) read(&c.mtu, netcfg::kMtu, 2);
    if (virtio::has(f, kNetSpeedDuplex)) {
        read(&c.speed_mbps, netcfg::kSpeed, 4);
        read(&c.duplex, netcfg::kDuplex, 1);
    }
    if (virtio::has(f, kNetRss) || virtio::has(f, kNetHashReport)) {
        read(&c.rss_max_key_size, netcfg::kRssMaxKeySize, 1);
        read(&c.rss_max_indirection_table_length, netcfg::kRssMaxIndirectionTableLength, 2);
        read(&c.supported_hash_types, netcfg::kSupportedHashTypes, 4);
    }
    return c;
}

}  // namespace vireo
