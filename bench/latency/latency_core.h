/* The latency benchmark's one algorithm, in C so that vireo's program (C++) and DPDK's (C, libdpdk's public
 * ethdev API) both run exactly this: pace timestamped frames at a rate, take back what the back end returns
 * (dpdk-testpmd macswap), and histogram the round trips.
 *
 * A driver gives three calls (struct lat_driver): send n frames stamped with a TSC value and numbered from a
 * sequence, receive up to max frames and hand back their stamps, and (optionally) wait for the next frame or a
 * deadline without spinning. Everything else - the schedule, the clock, the histogram, the percentiles - is here.
 *
 * Frames: 64 bytes, Ethernet header then LAT_MAGIC, the sequence number and the TSC stamp (8 bytes each, offset
 * LAT_PAYLOAD). The stamp is the TSC read just before the send call: the round trip is the driver's Tx, the back
 * end and the driver's Rx (and, at high load, the queueing in front of them; a frame that cannot be sent when due
 * goes out later with a later stamp, so sender backlog is not counted: see bench/latency's docs).
 */
#ifndef VIREO_BENCH_LATENCY_CORE_H
#define VIREO_BENCH_LATENCY_CORE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#define LAT_FRAME 64
#define LAT_PAYLOAD 14
#define LAT_MAGIC 0x7669726565746c61ull /* "altceeriv" */
#define LAT_BURST 32

/* Histogram: 1 ns buckets below 1024 ns, then 64 buckets per power of two (1.6% wide) up to 2^40 ns. */
#define LAT_SUB 64
#define LAT_BUCKETS (1024 + (40 - 10) * LAT_SUB)

struct lat_hist {
    uint64_t count[LAT_BUCKETS];
    uint64_t n, max_ns, sum_ns;
};

static inline unsigned lat_bucket(uint64_t ns) {
    if (ns < 1024) return (unsigned)ns;
    unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* 10.. */
    if (e >= 40) return LAT_BUCKETS - 1;
    return 1024 + (e - 10) * LAT_SUB + (unsigned)((ns >> (e - 6)) & (LAT_SUB - 1));
}

/* The largest round trip a bucket holds. */
static inline uint64_t lat_bucket_ns(unsigned b) {
    if (b < 1024) return b;
    unsigned e = 10 + (b - 1024) / LAT_SUB, sub = (b - 1024) % LAT_SUB;
    return ((uint64_t)(LAT_SUB + sub + 1) << (e - 6)) - 1;
}

static inline void lat_add(struct lat_hist* h, uint64_t ns) {
    h->count[lat_bucket(ns)]++;
    h->n++;
    h->sum_ns += ns;
    if (ns > h->max_ns) h->max_ns = ns;
}

/* The round trip below which a fraction p of the samples lie (upper edge of its bucket). */
static inline uint64_t lat_percentile(const struct lat_hist* h, double p) {
    if (h->n == 0) return 0;
    uint64_t want = (uint64_t)(p * (double)h->n);
    if (want >= h->n) want = h->n - 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < LAT_BUCKETS; b++) {
        seen += h->count[b];
        if (seen > want) return lat_bucket_ns(b) < h->max_ns ? lat_bucket_ns(b) : h->max_ns;
    }
    return h->max_ns;
}

static inline void lat_write_frame(uint8_t* f, uint64_t seq, uint64_t stamp) {
    static const uint8_t hdr[14] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5}; /* local EtherType */
    uint64_t magic = LAT_MAGIC;
    memcpy(f, hdr, sizeof hdr);
    memcpy(f + LAT_PAYLOAD, &magic, 8);
    memcpy(f + LAT_PAYLOAD + 8, &seq, 8);
    memcpy(f + LAT_PAYLOAD + 16, &stamp, 8);
    memset(f + LAT_PAYLOAD + 24, 0, LAT_FRAME - LAT_PAYLOAD - 24);
}

/* The frame's stamp, or 0 when it is not one of ours. */
static inline uint64_t lat_read_stamp(const uint8_t* f, uint32_t len) {
    uint64_t magic, stamp;
    if (len < LAT_PAYLOAD + 24) return 0;
    memcpy(&magic, f + LAT_PAYLOAD, 8);
    memcpy(&stamp, f + LAT_PAYLOAD + 16, 8);
    return magic == LAT_MAGIC ? stamp : 0;
}

struct lat_driver {
    void* ctx;
    /* Sends n frames numbered seq.. stamped `stamp`; returns how many the Tx queue took (the rest are freed). */
    uint16_t (*send)(void* ctx, uint64_t seq, uint64_t stamp, uint16_t n);
    /* Receives up to max frames, writes the stamps of ours to stamps[] and frees every frame; returns the count
     * of stamps written. */
    uint16_t (*receive)(void* ctx, uint64_t* stamps, uint16_t max);
    /* NULL: poll. Else sleeps until a frame arrives or the TSC reaches `until` (--sleep-when-idle). */
    void (*wait)(void* ctx, uint64_t until);
};

struct lat_result {
    double rate_pps;    /* asked for (0: as fast as the Tx queue takes frames) */
    double seconds;     /* sending time */
    uint64_t start_tsc; /* when the schedule began: frame k is due k / rate_pps seconds later */
    uint64_t sent, received;
    uint64_t tx_full; /* send calls the Tx queue did not take in full (the frames left went out later) */
    struct lat_hist hist;
};

/* The TSC's rate, measured against CLOCK_MONOTONIC over `ms` milliseconds. */
static inline uint64_t lat_tsc_hz(unsigned ms) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    const uint64_t t0 = __rdtsc();
    double ns;
    do {
        clock_gettime(CLOCK_MONOTONIC, &b);
        ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    } while (ns < ms * 1e6);
    return (uint64_t)((double)(__rdtsc() - t0) * 1e9 / ns);
}

/* Runs the schedule: rate_pps frames per second (0: flat out) for `seconds`, then up to 100 ms for the last to
 * come back. idle_rounds: with a wait call, rounds with nothing due and nothing received before it sleeps. */
static inline void lat_run(const struct lat_driver* d, double rate_pps, double seconds, uint64_t tsc_hz,
                           unsigned idle_rounds, struct lat_result* r) {
    uint64_t stamps[LAT_BURST];
    const double per_cycle = rate_pps / (double)tsc_hz;
    const uint64_t start = __rdtsc(), end = start + (uint64_t)(seconds * (double)tsc_hz);
    const uint64_t drain = end + tsc_hz / 10;
    unsigned idle = 0;
    memset(r, 0, sizeof *r);
    r->rate_pps = rate_pps;
    r->seconds = seconds;
    r->start_tsc = start;
    for (;;) {
        uint64_t now = __rdtsc();
        if (now >= drain || (now >= end && r->received == r->sent)) break;
        int busy = 0;
        if (now < end) {
            uint64_t due = rate_pps > 0 ? (uint64_t)((double)(now - start) * per_cycle) + 1 : r->sent + LAT_BURST;
            if (due > r->sent) {
                uint16_t n = (uint16_t)(due - r->sent < LAT_BURST ? due - r->sent : LAT_BURST);
                uint16_t k = d->send(d->ctx, r->sent, now, n);
                r->sent += k;
                r->tx_full += k < n;
                busy = 1;
            }
        }
        uint16_t got = d->receive(d->ctx, stamps, LAT_BURST);
        if (got > 0) {
            const uint64_t t = __rdtsc();
            for (uint16_t i = 0; i < got; i++)
                lat_add(&r->hist, (uint64_t)((double)(t - stamps[i]) * 1e9 / (double)tsc_hz));
            r->received += got;
            busy = 1;
        }
        if (busy || d->wait == NULL) {
            idle = 0;
            continue;
        }
        if (++idle < idle_rounds) continue;
        idle = 0;
        /* Asleep until the next frame is due (or the end), or one comes back. */
        uint64_t next = rate_pps > 0 ? start + (uint64_t)((double)r->sent / per_cycle) : now;
        d->wait(d->ctx, next < drain ? next : drain);
    }
}

/* One JSON line per run: what was asked, what came back, the percentiles and the histogram's non-empty buckets
 * as [largest ns, count]. */
static inline void lat_print(FILE* out, const char* driver, const char* path, const struct lat_result* r) {
    const struct lat_hist* h = &r->hist;
    fprintf(out,
            "{\"driver\": \"%s\", \"path\": \"%s\", \"rate_pps\": %.0f, \"seconds\": %.3f, \"sent\": %llu, "
            "\"received\": %llu, \"tx_full\": %llu, \"p50_ns\": %llu, \"p99_ns\": %llu, \"p999_ns\": %llu, "
            "\"max_ns\": %llu, \"mean_ns\": %.1f, \"hist\": [",
            driver, path, r->rate_pps, r->seconds, (unsigned long long)r->sent, (unsigned long long)r->received,
            (unsigned long long)r->tx_full, (unsigned long long)lat_percentile(h, 0.50),
            (unsigned long long)lat_percentile(h, 0.99), (unsigned long long)lat_percentile(h, 0.999),
            (unsigned long long)h->max_ns, h->n ? (double)h->sum_ns / (double)h->n : 0.0);
    int first = 1;
    for (unsigned b = 0; b < LAT_BUCKETS; b++) {
        if (h->count[b] == 0) continue;
        fprintf(out, "%s[%llu, %llu]", first ? "" : ", ", (unsigned long long)lat_bucket_ns(b),
                (unsigned long long)h->count[b]);
        first = 0;
    }
    fprintf(out, "]}\n");
    fflush(out);
}

/* The programs' common command line, after their own (device or EAL) arguments:
 *   --max S             send flat out for S seconds; prints one line (rate_pps 0, received / S is the maximum)
 *   --rates R1,R2,...   each rate (frames per second) for --seconds (default 3); one line each
 *   --idle-rounds N     with a wait call: empty rounds before sleeping (default 1000)
 * Returns the exit code: 1 when a run got nothing back. */
static inline int lat_main(const struct lat_driver* d, const char* driver, const char* path, int argc, char** argv) {
    double max_s = 0, seconds = 3;
    const char* rates = NULL;
    unsigned idle_rounds = 1000;
    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--max") == 0)
            max_s = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--rates") == 0)
            rates = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--idle-rounds") == 0)
            idle_rounds = (unsigned)atoi(argv[i + 1]);
        else {
            fprintf(stderr, "%s: unknown option %s (--max S | --rates R1,R2 [--seconds S] [--idle-rounds N])\n", driver,
                    argv[i]);
            return 2;
        }
    }
    if ((max_s > 0) == (rates != NULL) || seconds <= 0) {
        fprintf(stderr, "%s: give --max S or --rates R1,R2,...\n", driver);
        return 2;
    }
    const uint64_t hz = lat_tsc_hz(100);
    static struct lat_result r; /* 29 KiB of histogram: not on the stack */
    int bad = 0;
    if (max_s > 0) {
        lat_run(d, 0, max_s, hz, idle_rounds, &r);
        lat_print(stdout, driver, path, &r);
        return r.received == 0;
    }
    for (const char* p = rates; *p != 0;) {
        char* next;
        const double rate = strtod(p, &next);
        if (next == p || rate <= 0) {
            fprintf(stderr, "%s: --rates: '%s' is not a list of positive numbers\n", driver, rates);
            return 2;
        }
        lat_run(d, rate, seconds, hz, idle_rounds, &r);
        lat_print(stdout, driver, path, &r);
        bad |= r.received == 0;
        p = *next == ',' ? next + 1 : next;
    }
    return bad;
}

#endif
