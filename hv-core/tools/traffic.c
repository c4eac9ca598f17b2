#define _GNU_SOURCE
#include "traffic.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PATTERN_SIZE 16384u
/* Sequence number of the closing packet: "I have received all of yours".
 * See traffic_cfg.wait_peer_fin. */
#define FIN_SEQ UINT64_MAX

struct pkt_hdr {
    uint64_t seq;
    uint32_t len; /* payload bytes, this header included */
    uint32_t csum;
};

static uint8_t pattern[PATTERN_SIZE + TRAFFIC_MAX_PAYLOAD];
static pthread_once_t pattern_once = PTHREAD_ONCE_INIT;

static void pattern_init(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof(pattern); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pattern[i] = (uint8_t)x;
    }
}

/* Fletcher-style sum over 8-byte words: sensitive to the value and the
 * order of every word, and cheap enough to run at memcpy speed. */
static uint32_t checksum(const uint8_t *p, uint32_t len)
{
    uint64_t a = 1, b = 0;
    uint32_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        a += w;
        b += a;
    }
    for (; i < len; i++) {
        a += p[i];
        b += a;
    }
    return (uint32_t)(a ^ (a >> 32) ^ (b * 31) ^ (b >> 29));
}

uint32_t traffic_payload_size(const struct traffic_cfg *cfg, uint64_t seq)
{
    if (cfg->size)
        return cfg->size < TRAFFIC_MIN_PAYLOAD ? TRAFFIC_MIN_PAYLOAD : cfg->size;
    /* IMIX-like: 58% 64 B, 33% 576 B, 8% 1500 B, 1% 9000 B, spread by hash. */
    uint64_t h = seq * 0x9e3779b97f4a7c15ull;
    unsigned r = (unsigned)((h >> 40) % 100);
    uint32_t base = r < 58 ? 64 : r < 91 ? 576 : r < 99 ? 1500 : 9000;
    /* Vary the exact length so every padding remainder is exercised. */
    uint32_t jitter = (uint32_t)((h >> 20) & 7);
    return base - jitter;
}

static uint32_t pattern_offset(uint64_t seq)
{
    return (uint32_t)((seq * 2654435761u) % PATTERN_SIZE);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int check_packet(const uint8_t *buf, int len, uint64_t expect_seq,
                        struct traffic_stats *st)
{
    struct vmbus_pkt pkt;
    if (vmbus_pkt_parse(buf, (uint32_t)len, &pkt) < 0 || pkt.type != VMBUS_PKT_DATA_INBAND) {
        st->rx_bad_type++;
        return -EBADMSG;
    }
    struct pkt_hdr h;
    if (pkt.payload_len < sizeof(h)) {
        st->rx_bad_len++;
        return -EBADMSG;
    }
    memcpy(&h, pkt.payload, sizeof(h));
    /* The ring pads payloads to 8 bytes; the header says the real length. */
    if (h.len < sizeof(h) || h.len > pkt.payload_len || pkt.payload_len - h.len >= 8) {
        st->rx_bad_len++;
        return -EBADMSG;
    }
    if (h.seq == FIN_SEQ && h.len == sizeof(h) && h.csum == checksum(NULL, 0))
        return 1;
    if (h.seq != expect_seq) {
        st->rx_bad_seq++;
        return -EBADMSG;
    }
    if (checksum(pkt.payload + sizeof(h), h.len - (uint32_t)sizeof(h)) != h.csum) {
        st->rx_bad_csum++;
        return -EBADMSG;
    }
    st->rx_bytes += h.len;
    return 0;
}

static void drain_fd(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof(v)) == sizeof(v))
        ;
}

int traffic_run(struct traffic_ep *ep, const struct traffic_cfg *cfg, struct traffic_stats *st)
{
    pthread_once(&pattern_once, pattern_init);
    memset(st, 0, sizeof(*st));
    uint8_t *buf = malloc(TRAFFIC_MAX_PAYLOAD + 64);
    if (!buf)
        return st->error = -ENOMEM;
    uint64_t t0 = now_ns();
    uint32_t blocked_need = 0;
    int rc = 0;

    /* Polling: the peer never needs to signal us. Events: masked while
     * busy, unmasked just before sleeping. */
    vmbus_ring_intr_mask(ep->rx);

    bool fin_sent = false, fin_got = false;
    while (!(st->tx_packets == cfg->tx_count && fin_sent && (fin_got || !cfg->wait_peer_fin))) {
        if (ep->stop && __atomic_load_n(ep->stop, __ATOMIC_RELAXED)) {
            rc = -ECANCELED;
            break;
        }
        unsigned progress = 0;

        for (int i = 0; i < TRAFFIC_BURST; i++) {
            int n = vmbus_ring_get(ep->rx, buf, TRAFFIC_MAX_PAYLOAD + 64);
            if (n == -EAGAIN)
                break;
            if (n < 0) {
                rc = n == -EMSGSIZE ? -EBADMSG : n;
                goto out;
            }
            if (fin_got) {
                st->rx_bad_seq++;
                rc = -EBADMSG;
                goto out;
            }
            rc = check_packet(buf, n, st->rx_packets < cfg->rx_count ? st->rx_packets : FIN_SEQ - 1,
                              st);
            if (rc < 0)
                goto out;
            progress++;
            if (rc == 1) {
                rc = 0;
                fin_got = true;
                continue;
            }
            st->rx_packets++;
        }
        if (progress) {
            int s = vmbus_ring_release(ep->rx);
            if (s < 0) {
                rc = s;
                goto out;
            }
            if (s == 1) {
                ep->signal(ep->signal_ctx);
                st->signals_sent++;
            }
        }

        unsigned sent = 0;
        blocked_need = 0;
        while (sent < TRAFFIC_BURST && st->tx_packets < cfg->tx_count) {
            uint64_t seq = st->tx_packets;
            uint32_t size = traffic_payload_size(cfg, seq);
            const uint8_t *data = pattern + pattern_offset(seq);
            struct pkt_hdr h = {
                .seq = seq,
                .len = size,
                .csum = checksum(data, size - (uint32_t)sizeof(h)),
            };
            struct iovec iov[2] = {
                {.iov_base = &h, .iov_len = sizeof(h)},
                {.iov_base = (void *)data, .iov_len = size - sizeof(h)},
            };
            int r = vmbus_ring_put(ep->tx, VMBUS_PKT_DATA_INBAND, 0, seq, NULL, 0, iov, 2);
            if (r == -EAGAIN) {
                blocked_need = vmbus_ring_pkt_size(0, size);
                break;
            }
            if (r < 0) {
                rc = r;
                goto out;
            }
            st->tx_packets++;
            st->tx_bytes += size;
            sent++;
        }
        if (!blocked_need && !fin_sent && st->tx_packets == cfg->tx_count &&
            st->rx_packets == cfg->rx_count) {
            struct pkt_hdr h = {.seq = FIN_SEQ, .len = sizeof(h), .csum = checksum(NULL, 0)};
            int r = vmbus_ring_put_inband(ep->tx, VMBUS_PKT_DATA_INBAND, 0, FIN_SEQ, &h, sizeof(h));
            if (r == -EAGAIN) {
                blocked_need = vmbus_ring_pkt_size(0, sizeof(h));
            } else if (r < 0) {
                rc = r;
                goto out;
            } else {
                fin_sent = true;
                sent++;
            }
        }
        if (sent) {
            int s = vmbus_ring_publish(ep->tx);
            if (s < 0) {
                rc = s;
                goto out;
            }
            if (s == 1) {
                ep->signal(ep->signal_ctx);
                st->signals_sent++;
            }
            progress += sent;
        }
        if (progress)
            continue;

        if (!cfg->events) {
            __builtin_ia32_pause();
            continue;
        }
        /* Idle: ask to be told, re-check, sleep. */
        bool rx_wait = !fin_got;
        if (rx_wait && vmbus_ring_intr_unmask(ep->rx)) {
            vmbus_ring_intr_mask(ep->rx);
            continue;
        }
        if (blocked_need) {
            int a = vmbus_ring_arm_space(ep->tx, blocked_need);
            if (a < 0) {
                rc = a;
                goto out;
            }
            if (a == 1) {
                vmbus_ring_intr_mask(ep->rx);
                continue;
            }
        }
        struct pollfd pfd = {.fd = ep->wait_fd, .events = POLLIN};
        st->sleeps++;
        if (poll(&pfd, 1, 100) > 0)
            drain_fd(ep->wait_fd);
        if (ep->ack)
            ep->ack(ep->ack_ctx);
        vmbus_ring_intr_mask(ep->rx);
    }
out:
    st->elapsed_ns = now_ns() - t0;
    st->error = rc;
    free(buf);
    return rc;
}

bool traffic_ok(const struct traffic_stats *st, const struct traffic_cfg *cfg)
{
    return st->error == 0 && st->tx_packets == cfg->tx_count && st->rx_packets == cfg->rx_count &&
           st->rx_bad_len + st->rx_bad_seq + st->rx_bad_csum + st->rx_bad_type == 0;
}

/* --- root-side device ---------------------------------------------------- */

struct traffic_dev {
    struct vmbus_chan *chan;
    struct traffic_cfg cfg;
    pthread_t thread;
    bool running;
    bool stop;
    bool done;
    unsigned opens;
    struct traffic_stats stats;
};

static int dev_signal(void *ctx)
{
    return vmbus_chan_signal(ctx);
}

static void *dev_worker(void *arg)
{
    struct traffic_dev *d = arg;
    struct traffic_ep ep = {
        .tx = vmbus_chan_tx(d->chan),
        .rx = vmbus_chan_rx(d->chan),
        .signal = dev_signal,
        .signal_ctx = d->chan,
        .wait_fd = vmbus_chan_event_fd(d->chan),
        .stop = &d->stop,
    };
    struct traffic_stats st;
    int rc = traffic_run(&ep, &d->cfg, &st);
    d->stats = st;
    __atomic_store_n(&d->done, true, __ATOMIC_RELEASE);
    if (rc == -EPROTO || rc == -EBADMSG)
        vmbus_chan_fail(d->chan);
    return NULL;
}

static int dev_open(void *ctx, struct vmbus_chan *chan)
{
    struct traffic_dev *d = ctx;
    d->chan = chan;
    d->stop = false;
    d->done = false;
    memset(&d->stats, 0, sizeof(d->stats));
    if (pthread_create(&d->thread, NULL, dev_worker, d) != 0)
        return -EAGAIN;
    d->running = true;
    d->opens++;
    return 0;
}

static void dev_close(void *ctx, struct vmbus_chan *chan)
{
    struct traffic_dev *d = ctx;
    (void)chan;
    if (!d->running)
        return;
    __atomic_store_n(&d->stop, true, __ATOMIC_RELAXED);
    pthread_join(d->thread, NULL);
    d->running = false;
}

static const struct vmbus_device_ops dev_ops = {
    .open = dev_open,
    .close = dev_close,
};

int traffic_dev_create(struct vmbus_server *srv, const struct traffic_cfg *cfg,
                       struct traffic_dev **out)
{
    struct traffic_dev *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->cfg = *cfg;
    struct vmbus_offer_params params = {.class_id = TRAFFIC_CLASS_GUID};
    /* A distinct instance per device. */
    uint64_t id = (uint64_t)(uintptr_t)d;
    memcpy(params.instance_id.b, &id, sizeof(id));
    int rc = vmbus_server_offer(srv, &params, &dev_ops, d, &d->chan);
    if (rc < 0) {
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void traffic_dev_destroy(struct traffic_dev *d)
{
    if (!d)
        return;
    dev_close(d, d->chan);
    free(d);
}

void traffic_dev_result(struct traffic_dev *d, struct traffic_stats *st, bool *done)
{
    *done = __atomic_load_n(&d->done, __ATOMIC_ACQUIRE);
    *st = d->stats;
}

unsigned traffic_dev_opens(const struct traffic_dev *d)
{
    return d->opens;
}
