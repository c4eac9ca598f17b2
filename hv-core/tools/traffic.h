/*
 * Test traffic over one VMBus channel, for the demo, the cross-process tests
 * and the ring benchmark. Each side sends a numbered stream of in-band
 * packets whose payload carries its own length and a checksum, and checks
 * the stream it receives: nothing lost, reordered, truncated or corrupted.
 * The same engine runs in the root (a VMBus device) and in the guest.
 */
#ifndef HV_TRAFFIC_H
#define HV_TRAFFIC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmbus-ring.h"
#include "vmbus-server.h"

/* Class GUID of the traffic test device: 6e7f3c1a-52b4-4e8d-9a0b-7c2d5e1f4a36. */
#define TRAFFIC_CLASS_GUID                                                                         \
    {                                                                                              \
        {                                                                                          \
            0x1a, 0x3c, 0x7f, 0x6e, 0xb4, 0x52, 0x8d, 0x4e, 0x9a, 0x0b, 0x7c, 0x2d, 0x5e, 0x1f,   \
                0x4a, 0x36                                                                         \
        }                                                                                          \
    }

#define TRAFFIC_MAX_PAYLOAD 9000u
#define TRAFFIC_MIN_PAYLOAD 16u
#define TRAFFIC_BURST 32

struct traffic_cfg {
    uint64_t tx_count;  /* packets to send */
    uint64_t rx_count;  /* packets to expect */
    uint32_t size;      /* payload bytes, or 0 for the mixed-size profile */
    bool events;        /* sleep on the signal when idle, instead of polling */
    /* Finish only once the peer's FIN ("I got all of yours") arrived. The
     * side that closes the channel afterwards (the guest) sets it; the other
     * side finishes when it has received everything and sent its own FIN. */
    bool wait_peer_fin;
};

struct traffic_stats {
    uint64_t tx_packets, tx_bytes;
    uint64_t rx_packets, rx_bytes;
    uint64_t rx_bad_len, rx_bad_seq, rx_bad_csum, rx_bad_type;
    uint64_t signals_sent, sleeps;
    uint64_t elapsed_ns;
    int error; /* 0, or the negative errno that stopped the run */
};

/* One end: rings, how to signal the peer, how to wait for it. */
struct traffic_ep {
    struct vmbus_ring *tx;
    struct vmbus_ring *rx;
    int (*signal)(void *ctx);
    void *signal_ctx;
    int wait_fd;        /* readable when the peer signalled us */
    void (*ack)(void *ctx); /* after waking: clear our event flag (optional) */
    void *ack_ctx;
    const bool *stop;   /* set from another thread to end early (may be NULL) */
};

/* Payload size of packet `seq` under cfg (mixed: IMIX-like 64/576/1500/9000). */
uint32_t traffic_payload_size(const struct traffic_cfg *cfg, uint64_t seq);

/* Run until both counts are reached, the stop flag is set, or an error.
 * Returns 0 if every received packet checked out, else -EBADMSG (bad data),
 * -EPROTO (ring corrupt), -ECANCELED (stopped early). */
int traffic_run(struct traffic_ep *ep, const struct traffic_cfg *cfg, struct traffic_stats *st);

bool traffic_ok(const struct traffic_stats *st, const struct traffic_cfg *cfg);

/* Root side: a VMBus device that runs traffic_run on a worker thread while
 * its channel is open. */
struct traffic_dev;
int traffic_dev_create(struct vmbus_server *srv, const struct traffic_cfg *cfg,
                       struct traffic_dev **out);
void traffic_dev_destroy(struct traffic_dev *d);
/* Results of the last run; done is true once the worker finished. */
void traffic_dev_result(struct traffic_dev *d, struct traffic_stats *st, bool *done);
/* Times the channel was opened. */
unsigned traffic_dev_opens(const struct traffic_dev *d);

#endif
