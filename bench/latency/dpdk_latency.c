/* dpdk-bench-latency: latency_core.h's algorithm on a DPDK port, through libdpdk's public ethdev API only.
 *
 *   dpdk-bench-latency EAL-ARGS -- (--max S | --rates R1,R2,... [--seconds S])
 *
 * e.g. -l 0 --no-pci --no-huge -m 512 --file-prefix=lat --vdev net_virtio_user0,path=SOCK,vectorized=1
 * Port 0, one queue pair of 1024 descriptors, polled on the main lcore. The Rx/Tx path the virtio PMD chose is
 * in its log ("using ... path on port 0"). */
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "latency_core.h"

static struct rte_mempool* pool;

static uint16_t send_frames(void* ctx, uint64_t seq, uint64_t stamp, uint16_t n) {
    struct rte_mbuf* m[LAT_BURST];
    (void)ctx;
    if (rte_pktmbuf_alloc_bulk(pool, m, n) != 0) return 0;
    for (uint16_t i = 0; i < n; i++) lat_write_frame(rte_pktmbuf_mtod(m[i], uint8_t*), seq + i, stamp);
    for (uint16_t i = 0; i < n; i++) m[i]->data_len = m[i]->pkt_len = LAT_FRAME;
    uint16_t sent = rte_eth_tx_burst(0, 0, m, n);
    if (sent < n) rte_pktmbuf_free_bulk(m + sent, n - sent);
    return sent;
}

static uint16_t receive_frames(void* ctx, uint64_t* stamps, uint16_t max) {
    struct rte_mbuf* m[LAT_BURST];
    (void)ctx;
    uint16_t n = rte_eth_rx_burst(0, 0, m, max), k = 0;
    for (uint16_t i = 0; i < n; i++) {
        uint64_t s = lat_read_stamp(rte_pktmbuf_mtod(m[i], const uint8_t*), m[i]->data_len);
        if (s != 0) stamps[k++] = s;
    }
    rte_pktmbuf_free_bulk(m, n);
    return k;
}

int main(int argc, char** argv) {
    int used = rte_eal_init(argc, argv);
    if (used < 0) {
        fprintf(stderr, "dpdk-bench-latency: rte_eal_init failed: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    argc -= used;
    argv += used;
    if (rte_eth_dev_count_avail() < 1) {
        fprintf(stderr, "dpdk-bench-latency: no port (give --vdev net_virtio_user0,path=...)\n");
        return 1;
    }
    pool = rte_pktmbuf_pool_create("lat", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof conf);
    if (pool == NULL || rte_eth_dev_configure(0, 1, 1, &conf) != 0 ||
        rte_eth_rx_queue_setup(0, 0, 1024, rte_eth_dev_socket_id(0), NULL, pool) != 0 ||
        rte_eth_tx_queue_setup(0, 0, 1024, rte_eth_dev_socket_id(0), NULL) != 0 || rte_eth_dev_start(0) != 0) {
        fprintf(stderr, "dpdk-bench-latency: port 0 could not start: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    struct rte_eth_link link;
    for (int i = 0; i < 1500 && (rte_eth_link_get_nowait(0, &link) != 0 || !link.link_status); i++) rte_delay_ms(10);
    const struct lat_driver d = {NULL, send_frames, receive_frames, NULL};
    int rc = lat_main(&d, "dpdk", "", argc - 1, argv + 1);
    rte_eth_dev_stop(0);
    rte_eth_dev_close(0);
    rte_eal_cleanup();
    return rc;
}
