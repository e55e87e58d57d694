// vireo: a virtio-net port (virtio 1.2 section 5.1) over any Transport.
//
//   auto port = NetPort::open("vhost-user:/tmp/sock,queues=2,packed=1", mem, pool);
//   port->start();
//   n = port->rx_burst(q, pkts, 32);  ...  port->tx_burst(q, pkts, n);
//   port->stop();    // every buffer back in the pool
//
// Threading: rx_burst/tx_burst on queue q are lock-free and belong to one
// thread at a time (one thread may own several queues). The control path
// (start, stop, and the port's own reconnection) takes queues away from the
// data path through a gate (queue_gate.hpp), so it may run while other
// threads poll; control calls themselves are not to be made concurrently.
//
// A port whose device can go away (vhost-user) watches its connection from a
// thread of its own: when the back end leaves, the link goes down (bursts
// return 0), every buffer in flight returns to the pool, and with reconnect=1
// (the default) the port waits for the back end to come back (server=1: the
// next connection; client: connects again with back-off), renegotiates, fills
// its Rx rings and comes up again by itself.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vireo/iova/dma_memory.hpp"
#include "vireo/mempool/packet_pool.hpp"
#include "vireo/pmd/device_string.hpp"
#include "vireo/pmd/net_stats.hpp"
#include "vireo/pmd/queue_gate.hpp"
#include "vireo/pmd/transport.hpp"

namespace vireo {

struct PairConfig;
namespace detail {
class QueuePairBase;
class ControlQueueBase;
struct DataPath;
struct PortDataPath;
class DmaWindow;
using BurstFn = uint16_t (*)(QueuePairBase*, Packet**, uint16_t) noexcept;
}  // namespace detail

struct LinkStatus {
    // Started, and the device has the rings: bursts reach them. Turns false
    // only once every buffer that was in flight is back in the pool (link_up()
    // turns false first, when bursts stop).
    bool up = false;
    std::string reason;        // why it is down ("" while up)
    std::string last_loss;     // why the connection was last lost (kept after it came back)
    uint64_t downs = 0;        // connections lost
    uint64_t reconnects = 0;   // times the port came back by itself (renegotiated, refilled)
    bool coming_back = false;  // down, and waiting for its device to return (reconnect=1)
};

// What the device says of its link (VIRTIO_NET_F_SPEED_DUPLEX, virtio 1.2 5.1.4.2).
struct LinkSpeed {
    enum class Duplex : uint8_t { Unknown, Half, Full };
    uint32_t mbps = 0;  // 0: the device does not say
    Duplex duplex = Duplex::Unknown;
};
std::string to_string(const LinkSpeed& s);  // "10000 Mbit/s full-duplex", "speed unknown"

// What a clean stop did with the frames tx_burst() had accepted (NetPort::stop).
struct StopReport {
    uint64_t tx_in_flight = 0;    // frames accepted by tx_burst() and not yet taken back when the stop began
    uint64_t tx_undelivered = 0;  // of those, the ones it still had not when the reset came (also in tx_stats)
    double waited_ms = 0;         // how long the stop waited for them
    bool timed_out = false;       // the wait ended at stop_timeout_ms (or the back end left), not with none left
};

// What reset_queue_pair() changes while the device has forgotten the pair's rings.
struct QueuePairChange {
    uint16_t ring = 0;           // descriptors per ring (0: keep)
    PacketPool* pool = nullptr;  // where Rx buffers come from (nullptr: keep); in the port's DmaMemory
};
struct QueueResetReport {
    StopReport tx;              // the bounded wait for the pair's Tx completions, as a clean stop's
    uint64_t rx_discarded = 0;  // Rx buffers the device had filled that no rx_burst took (a frame each, or a
                                // mergeable frame's buffers)
    double gate_ms = 0;         // how long the pair's bursts returned 0
};

// Receive-side scaling (virtio 1.2 5.1.6.5.7): the device hashes each frame
// (Toeplitz, with `key`, over the fields `hash_types` name) and puts it on
// receive queue table[hash % table.size()]. Empty or zero fields take the
// defaults rss_config() shows: the device-string's rss_types (or IPv4/IPv6,
// TCP and UDP, as far as the device supports them), a 40-byte key (the
// well-known Toeplitz verification key), 128 entries (or the device's
// maximum) spreading the queue pairs round robin.
struct RssConfig {
    uint32_t hash_types = 0;      // virtio::kHashType* bits
    std::vector<uint8_t> key;     // at most the device's rss_max_key_size bytes
    std::vector<uint16_t> table;  // queue pair per entry; a power of two, at most the device's maximum
};

// Receive offloads the device applies (CTRL_GUEST_OFFLOADS): checksum
// validation (GUEST_CSUM) and large TCP segments (GUEST_TSO4/6).
struct RxOffloads {
    bool csum = false;
    bool tso4 = false;
    bool tso6 = false;
    friend bool operator==(const RxOffloads&, const RxOffloads&) = default;
};

class NetPort {
public:
    // Parses the device string, connects the transport and checks the device's
    // ACCESS_PLATFORM bit against mem's IOVA mode (a mismatch is an error that
    // names the device, the bit, the mode and the fix). The pool must live in mem.
    static std::unique_ptr<NetPort> open(const std::string& device, DmaMemory& mem, PacketPool& pool,
                                         uint16_t port_id = 0);
    // plan: what decide_process_dma() chose for the device (DeviceSet), made
    // from `keys`; without one the port decides itself (decide_dma) for mem.
    NetPort(std::unique_ptr<Transport> t, const DeviceSpec& spec, DmaMemory& mem, PacketPool& pool, uint16_t port_id,
            std::optional<DmaPlan> plan = std::nullopt, std::optional<DmaKeys> keys = std::nullopt);
    ~NetPort();
    NetPort(const NetPort&) = delete;
    NetPort& operator=(const NetPort&) = delete;

    // Status handshake (2.1.2, 3.1.1): reset, ACKNOWLEDGE, DRIVER, features,
    // FEATURES_OK and its re-check, queues, DRIVER_OK; then fills the Rx rings
    // and, for a device that can go away, starts watching its connection.
    void start();
    // A clean stop: closes the gate (bursts return 0 from here on), gives the
    // device up to the device string's stop_timeout_ms (default 1000) to
    // complete what tx_burst() accepted, then stops watching, resets the
    // device and returns every buffer in flight to the pool. Frames the
    // device had not completed by then are lost with the reset: counted in
    // tx_stats().undelivered and in the report. A port that is not started
    // (or whose back end is gone) reports nothing in flight.
    StopReport stop();

    // Sleeping when idle (Rx interrupt mode, virtio 1.2 2.7.10 / 2.8.21.3.1).
    // rx_notify_fd(q) becomes readable when the device uses an Rx buffer of
    // queue q after rx_notify_arm(q); -1 when the transport cannot say
    // (uio_pci_generic: INTx only). The thread that owns queue q, after its
    // bursts came back empty:
    //   if (port.rx_notify_arm(q)) poll(rx_notify_fd(q), timeout);  // false: frames came meanwhile
    //   port.rx_notify_disarm(q);  // back to polling; drains the fd
    // Arming closes the race the spec describes: it publishes the request,
    // then looks at the ring once more.
    int rx_notify_fd(uint16_t q) const;
    bool rx_notify_arm(uint16_t q) noexcept;
    void rx_notify_disarm(uint16_t q) noexcept;

    // Both return 0 while the port is not ready() (stopped, or its back end
    // gone), and while the pair goes through reset_queue_pair().
    uint16_t rx_burst(uint16_t q, Packet** pkts, uint16_t n) noexcept {
        detail::QueueGate& g = gates_[2 * q];
        if (!g.enter()) return 0;
        const uint16_t r = rx_fn_(pairs_[q].get(), pkts, n);
        g.leave();
        return r;
    }
    uint16_t tx_burst(uint16_t q, Packet** pkts, uint16_t n) noexcept {
        detail::QueueGate& g = gates_[2 * q + 1];
        if (!g.enter()) return 0;
        const uint16_t r = tx_fn_(pairs_[q].get(), pkts, n);
        g.leave();
        return r;
    }
    // Started and the device has the rings (one load: a data path may ask it
    // per burst, e.g. before generating frames it could not send).
    bool ready() const noexcept { return ready_.load(std::memory_order_relaxed); }
    // ready(), and the link up by the device's own status (virtio-net config).
    bool link_up();
    LinkStatus link_status() const;
    LinkSpeed link_speed();

    // Receive filters through the control queue (virtio 1.2 5.1.6.5): each
    // needs its feature (CTRL_RX; CTRL_MAC_ADDR; CTRL_VLAN, asked for with the
    // device key vlan_filter=1), which only a device that processes the control
    // queue offers (PCI; not vhost-user). A call before start() is kept for it;
    // every setting is sent again whenever the device is brought up (a reset
    // forgets them). Throws naming the missing feature, or the device's refusal.
    void set_promiscuous(bool on);
    void set_all_multicast(bool on);
    void set_mac(const std::array<uint8_t, 6>& mac);
    void vlan_filter_add(uint16_t vid);
    void vlan_filter_remove(uint16_t vid);
    // RSS (5.1.6.5.7; feature rss, on by default): sent at every start, with
    // the queue pair count, instead of VQ_PAIRS_SET; set_rss() changes it
    // (before start: kept for it). With HASH_REPORT (hash_report=1) each
    // received frame carries the hash in Packet::rss_hash and what it covers
    // in rss_type (pkt::kRxRssHash); without RSS the hash types and key go
    // out as HASH_CONFIG. Throws naming the missing feature or bad value.
    void set_rss(const RssConfig& c);
    RssConfig rss_config() const;  // what is (or will be) set, defaults filled in
    // Receive offloads at run time (5.1.6.5.6.1; feature ctrl_guest_offloads,
    // on by default where the device processes the control queue): which of
    // the negotiated GUEST_CSUM, GUEST_TSO4 and GUEST_TSO6 the device applies,
    // while frames flow. Each received frame's header says what was done to
    // it, so its Packet::ol_flags follow the switch frame by frame: frames
    // already in the ring keep theirs. Switching on one that was not
    // negotiated, or TSO without csum (5.1.3.1), throws; so does a device that
    // refuses. Before start(): kept for it; sent again at every bring-up (a
    // reset turns every negotiated offload back on). rx_offloads(): what is
    // (or will be) set, at first every negotiated one.
    void set_rx_offloads(const RxOffloads& o);
    RxOffloads rx_offloads() const;
    uint32_t rss_hash_types_supported() const noexcept { return config_.supported_hash_types; }

    // GUEST_ANNOUNCE (5.1.6.5.4): after a live migration the device sets
    // VIRTIO_NET_S_ANNOUNCE and signals a configuration change;
    // poll_config_change() then sends a RARP for the port's MAC on Tx queue 0
    // (as QEMU and DPDK's virtio PMD do: a port has a MAC, not an IP) and acks.
    // How many were sent:
    uint64_t announcements() const noexcept { return announcements_.load(std::memory_order_relaxed); }

    uint16_t queue_pairs() const noexcept { return spec_.queues; }
    const virtio::Features& features() const noexcept { return features_; }
    // The compiled data path the port runs, e.g. "packed+in_order/smp" ("" before start()).
    std::string data_path() const;
    // What the IOVA policy decided for this device, and why (iova_policy.hpp).
    const DmaPlan& dma_plan() const noexcept { return plan_; }
    // How many times the port's DMA was decided: once at open, and again only
    // when a device that came back offers other features.
    unsigned dma_decisions() const noexcept { return dma_decisions_; }
    const virtio::Features& device_features() const noexcept { return device_features_; }
    // The mode of the memory the device reaches (its window's in window mode).
    IovaMode iova_mode() const noexcept;
    // Window mode: the only memory the device is given (nullptr in direct mode).
    const DmaMemory* window() const noexcept;
    // The device IOTLB's counters while vireo is the device's IOMMU (ACCESS_PLATFORM over vhost-user,
    // vhost-net or vhost-vdpa), else nothing.
    std::optional<DeviceIotlbCounters> iotlb_counters() const { return transport_->iotlb_counters(); }
    bool started() const noexcept { return started_; }
    // Configuration-change events (link status over PCI): an eventfd to poll,
    // or -1; poll_config_change() says whether one came since the last call
    // (and answers an announcement request, see announcements()).
    int config_event_fd() const;
    bool poll_config_change();
    std::array<uint8_t, 6> mac() const noexcept { return mac_; }
    uint16_t mtu() const noexcept { return mtu_; }
    std::string describe() const;
    // A queue's device broke the rules (see docs/virtqueue.md): recover_faulted_pairs(), or stop() and start().
    bool needs_reset() const noexcept;
    // Which queue faulted and how ("" when none), e.g. "tx0: used id not in flight".
    std::string fault_report() const;

    QueueStats rx_stats(uint16_t q) const;
    QueueStats tx_stats(uint16_t q) const;
    // Sums over every queue pair.
    QueueStats rx_totals() const;
    QueueStats tx_totals() const;
    // Descriptors per queue: the device string's ring=, or the default of its DMA arrangement.
    uint16_t ring_size() const noexcept { return spec_.ring; }
    void reset_stats();

    // One queue pair's reset (VIRTIO_F_RING_RESET, virtio 1.2 2.6.1; key
    // ring_reset, on by default; virtio-pci) while the other pairs forward:
    // its gates close (its bursts return 0 until they reopen; the thread that
    // owns it may keep polling), it waits as a clean stop does, bounded by
    // stop_timeout_ms, for its Tx frames to complete (not a faulted pair), the
    // device forgets both rings, every buffer they held goes back to its pool
    // (Tx frames not completed are counted in tx_stats().undelivered), and the
    // rings are enabled again, with `change`'s ring size or pool, refilled and
    // opened. Throws, saying why and that a restart is the way, when the
    // device or its transport cannot. Control thread only, port started.
    QueueResetReport reset_queue_pair(uint16_t q, const QueuePairChange& change = {});
    // Every pair to `ring` descriptors, one pair at a time (ethtool -G).
    void set_ring_size(uint16_t ring);
    // Each faulted pair (fault_report()) reset alone; returns how many.
    unsigned recover_faulted_pairs();
    uint64_t queue_pair_resets() const noexcept { return queue_pair_resets_.load(std::memory_order_relaxed); }

private:
    struct Watcher;  // the connection's thread (net_port_link.cpp)

    void decide_dma_plan();  // decide_dma() for the features the device offers now
    void negotiate();
    void check_ring_fits(uint16_t queues);        // ring= against the first `queues` queues' maximum size
    void bring_up();                              // the handshake, queues, DRIVER_OK, refill; opens the gate
    void take_down(StopReport* clean = nullptr);  // closes the gate, (clean: waits for Tx,) resets, buffers back
    StopReport wait_for_tx(uint16_t first = 0, uint16_t pairs = 0xffff);  // bounded wait for Tx completions
    void close_gate();                                                    // every gate: no burst runs, none starts
    void set_gates(uint16_t first, uint16_t pairs, bool open);  // pairs [first, first + pairs): both directions
    detail::PortDataPath chosen_path();                         // choose_data_path() for the negotiated features
    PairConfig pair_config(uint16_t q, uint16_t ring) const;
    std::string queue_reset_unavailable() const;  // why reset_queue_pair() cannot, or ""
    void create_queues();
    void destroy_queues();
    void watch();                         // the watcher thread's body
    DmaMemory& device_memory() noexcept;  // what the device is given: the window, or mem_
    void require_ctrl(unsigned feature, const char* what) const;
    void ctrl_command(uint8_t cls, uint8_t cmd, const void* data, uint16_t len, const std::string& what);
    void filters_from_spec();  // at open: promisc=, allmulti=, mac= (PCI), vlans=
    void apply_filters();      // after DRIVER_OK: every setting the application made
    void announce();           // one RARP on Tx queue 0, then ANNOUNCE_ACK
    void send_rss();           // RSS_CONFIG (or HASH_CONFIG) with rss_config()

    std::unique_ptr<Transport> transport_;
    DeviceSpec spec_;
    DmaMemory& mem_;
    PacketPool& pool_;
    uint16_t port_id_;
    virtio::Features device_features_;
    virtio::Features features_;
    DmaKeys keys_;                       // the user's DMA keys (the device string's, the process's defaults)
    DmaPlan plan_;                       // decide_dma()'s, for planned_features_
    virtio::Features planned_features_;  // the device's offer the plan was made for
    unsigned dma_decisions_ = 0;
    std::unique_ptr<detail::DmaWindow> window_;  // window mode: the device's own memory
    NetConfig config_{};                         // read at negotiation
    std::array<uint8_t, 6> mac_{};
    uint16_t mtu_ = 1500;
    bool started_ = false;
    bool driver_ok_ = false;                  // the device is live: control commands go out now
    const detail::DataPath* path_ = nullptr;  // the compiled path on the rings (choose_data_path)
    std::string data_path_name_;              // data_path(): the path's name, level and window
    std::vector<std::unique_ptr<detail::QueuePairBase>> pairs_;
    std::unique_ptr<detail::ControlQueueBase> ctrl_;  // when CTRL_VQ is negotiated
    detail::BurstFn rx_fn_ = nullptr;
    detail::BurstFn tx_fn_ = nullptr;
    std::atomic<bool> ready_{false};              // started and brought up (each gate has its own flag)
    std::unique_ptr<detail::QueueGate[]> gates_;  // per pair: rx, tx
    std::unique_ptr<Watcher> watcher_;
    struct Filters;  // what the application set (net_port_ctrl.cpp)
    std::unique_ptr<Filters> filters_;
    std::atomic<uint64_t> announcements_{0};
    std::atomic<uint64_t> queue_pair_resets_{0};
};

}  // namespace vireo
