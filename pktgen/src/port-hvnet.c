/* The hvnet NIC port (port-hvnet.h): the partition's synthetic NIC through
 * netvsc, polled, never sleeping while the run loops spin.
 *
 * Send: each frame is copied once, into the send section netvsc has open
 * (frames packed into one send) or room netvsc hands out (a page chunk
 * sent GPA-direct for a jumbo frame), and the burst flushed with at most
 * one signal; the mbufs are freed in bulk. When
 * netvsc has no room, the burst so far is flushed and the root's
 * completions polled for, up to PG_HVNET_TX_WAIT_US; what still does not go
 * is left to the caller, which counts it refused, as an ethdev's full ring
 * is. A frame the NIC's MTU does not allow is refused the same way.
 *
 * Receive: netvsc_poll, with the room left in the caller's array as its
 * budget, hands each frame (a pointer into the receive buffer, valid
 * during the callback) to a copy into an mbuf from the stash, put straight
 * into that array; netvsc keeps the rest of a transfer for the next poll.
 * Only frames taken off the NIC while a send waits for completions go
 * through the receive queue, which the next receive empties first. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "hv-guest.h"
#include "hv-proto.h"
#include "jumbo.h"
#include "netvsc-sandbox.h"
#include "netvsc.h"
#include "port-hvnet.h"
#include "vmbus-client.h"

struct pg_hvnet {
    struct hv_guest *g;
    struct vmbus_client *c;
    struct netvsc *nic;
    struct netvsc_info info;
    struct rte_mempool *rx_pool;
    const char *name;
    bool yield;
    int failed; /* the NIC's channel failed: 0 or a negative errno */
    uint64_t tx_wait_tsc;
    unsigned segs_per_frame; /* mbufs the largest received frame takes */
    struct pg_hvnet_stats st;
    struct pg_hvnet_rxq q;
};

bool pg_hvnet_in_partition(void)
{
    return getenv(HV_ENV_FDS) != NULL;
}

/* Frames taken while a send waits for completions: queued. */
static void on_frame(void *ctx, const void *frame, uint32_t len, const struct netvsc_meta *meta)
{
    (void)meta; /* no offloads asked for; a tag the root took out is not put back */
    struct pg_hvnet *h = ctx;
    pg_hvnet_rxq_put(&h->q, frame, len);
}

/* A receive's frames, straight into its caller's array: netvsc_poll
 * delivers at most the budget, the room left there. */
struct rx_direct {
    struct pg_hvnet *h;
    struct rte_mbuf **pkts;
    uint16_t n, room;
};

static void on_frame_direct(void *ctx, const void *frame, uint32_t len,
                            const struct netvsc_meta *meta)
{
    struct rx_direct *d = ctx;
    if (d->n == d->room) {
        on_frame(d->h, frame, len, meta); /* never: the budget is the room */
        return;
    }
    struct rte_mbuf *m = pg_hvnet_frame_in(&d->h->q, frame, len);
    if (m)
        d->pkts[d->n++] = m;
}

static void on_frame_drop(void *ctx, const void *frame, uint32_t len,
                          const struct netvsc_meta *meta)
{
    (void)ctx, (void)frame, (void)len, (void)meta;
}

/* Enough mbufs in the stash for budget frames of the largest size. */
static void refill(struct pg_hvnet *h, unsigned budget)
{
    struct pg_hvnet_rxq *q = &h->q;
    unsigned want = pg_hvnet_stash_want(q->nstash, budget, h->segs_per_frame);
    if (want && rte_pktmbuf_alloc_bulk(h->rx_pool, q->stash + q->nstash, want) == 0)
        q->nstash += want;
}

/* The NIC's channel failed: stop the run. */
static void nic_failed(struct pg_hvnet *h, int rc)
{
    h->failed = rc;
    fprintf(stderr, "vswitch-pktgen %s: the NIC failed (%s): stopping\n", h->name,
            strerror(-rc));
    pg_stop = 1;
}

static void poll_nic(struct pg_hvnet *h, int budget)
{
    if (h->failed)
        return;
    refill(h, (unsigned)budget);
    int rc = netvsc_poll(h->nic, on_frame, h, budget);
    if (rc < 0)
        nic_failed(h, rc);
}

static uint16_t hvnet_rx(struct pg_port *p, struct rte_mbuf **pkts, uint16_t n)
{
    struct pg_hvnet *h = p->ctx;
    /* What a send's wait took off the NIC first, in order. */
    uint16_t got = pg_hvnet_rxq_count(&h->q) ? pg_hvnet_rxq_take(&h->q, pkts, n) : 0;
    if (got < n && !h->failed) {
        refill(h, n - got);
        struct rx_direct d = {.h = h, .pkts = pkts + got, .room = (uint16_t)(n - got)};
        int rc = netvsc_poll(h->nic, on_frame_direct, &d, d.room);
        if (rc < 0)
            nic_failed(h, rc);
        got += d.n;
    }
    if (got == 0 && p->yield)
        sched_yield();
    return got;
}

/* One frame to the NIC, copied once: a single-segment frame by
 * netvsc_send(), straight into the open send section when there is one
 * (netvsc_tx_alloc() then netvsc_tx_submit() would copy it twice: into a
 * section of its own, then into the open one); a chain into room from
 * netvsc_tx_alloc(). 0, -EAGAIN (no room now), or another negative errno
 * (netvsc refused the frame). */
static int send_one(struct pg_hvnet *h, const struct rte_mbuf *m, uint32_t len)
{
    if (m->nb_segs == 1)
        return netvsc_send(h->nic, rte_pktmbuf_mtod(m, const void *), len, NULL);
    struct netvsc_txbuf tb;
    if (!netvsc_tx_alloc(h->nic, len, &tb))
        return -EAGAIN;
    int rc = pg_hvnet_copy_out(m, tb.data, tb.cap);
    if (rc >= 0)
        rc = netvsc_tx_submit(h->nic, &tb, len, NULL);
    if (rc < 0)
        netvsc_tx_abort(h->nic, &tb);
    return rc < 0 ? rc : 0;
}

/* No room for frame m: make what is queued visible, then poll for the
 * root's completions and try again until it goes or the wait is over.
 * 0 or send_one()'s error. */
static int tx_wait_send(struct pg_hvnet *h, const struct rte_mbuf *m, uint32_t len)
{
    h->st.tx_waits++;
    int rc = netvsc_tx_flush(h->nic);
    if (rc < 0 && rc != -EAGAIN)
        return rc;
    uint64_t end = rte_rdtsc() + h->tx_wait_tsc;
    do {
        poll_nic(h, PG_BURST);
        if (h->failed)
            return -EAGAIN; /* counted no room; the run stops */
        if (!netvsc_tx_blocked(h->nic) && (rc = send_one(h, m, len)) != -EAGAIN)
            return rc;
        netvsc_tx_flush(h->nic);
        rte_pause();
    } while (rte_rdtsc() < end);
    return -EAGAIN;
}

static uint16_t hvnet_tx(struct pg_port *p, struct rte_mbuf **pkts, uint16_t n)
{
    struct pg_hvnet *h = p->ctx;
    uint16_t i = 0;
    for (; i < n && !h->failed; i++) {
        struct rte_mbuf *m = pkts[i];
        uint32_t len = rte_pktmbuf_pkt_len(m);
        if (i + 1 < n)
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
        if (!pg_hvnet_frame_fits(m, h->info.mtu)) {
            h->st.tx_too_long++;
            break;
        }
        int rc = send_one(h, m, len);
        if (rc == -EAGAIN)
            rc = tx_wait_send(h, m, len);
        if (rc < 0) {
            if (rc == -EAGAIN)
                h->st.tx_no_room++;
            else
                h->st.tx_too_long++;
            break;
        }
        h->st.tx_frames++;
        h->st.tx_bytes += len;
    }
    if (i) {
        netvsc_tx_flush(h->nic);
        rte_pktmbuf_free_bulk(pkts, i);
    }
    return i;
}

/* NIC number k of the partition's offers. */
static int find_nic(const struct vmbus_client *c, unsigned k, uint32_t *relid)
{
    static struct vmbus_offer_info offers[VMBUS_CLIENT_MAX_OFFERS];
    int n = vmbus_client_offers(c, offers, VMBUS_CLIENT_MAX_OFFERS);
    for (int i = 0; i < n && i < VMBUS_CLIENT_MAX_OFFERS; i++) {
        if (netvsc_offer_is_nic(&offers[i]) && k-- == 0) {
            *relid = offers[i].relid;
            return 0;
        }
    }
    return -ENOENT;
}

static int wait_link(struct pg_hvnet *h, double seconds)
{
    struct timespec ms = {0, 1000 * 1000};
    for (double t = 0; !pg_stop; t += 0.001) {
        int rc = netvsc_poll(h->nic, on_frame_drop, h, 64);
        if (rc < 0)
            return rc;
        netvsc_get_info(h->nic, &h->info);
        if (h->info.link_up)
            return 0;
        if (t >= seconds)
            break;
        nanosleep(&ms, NULL);
    }
    return -ENOLINK;
}

int pg_hvnet_open(const struct pg_hvnet_params *p, struct pg_hvnet **out)
{
    struct pg_hvnet *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->name = p->name;
    h->rx_pool = p->rx_pool;
    h->yield = p->yield;
    h->tx_wait_tsc = rte_get_tsc_hz() / 1000000 * PG_HVNET_TX_WAIT_US;
    const char *what = "VMBus";
    uint32_t relid = 0;
    int rc = hv_guest_attach_env(&h->g);
    if (rc < 0) {
        fprintf(stderr, "vswitch-pktgen %s: not inside a partition (%s)\n", p->name,
                rc == -ENOENT ? "no " HV_ENV_FDS : strerror(-rc));
        free(h);
        return rc;
    }
    if ((rc = vmbus_client_connect(h->g, 10000, &h->c)) < 0)
        goto fail;
    what = "NIC";
    if ((rc = find_nic(h->c, p->nic, &relid)) < 0) {
        fprintf(stderr, "vswitch-pktgen %s: the partition has no NIC number %u\n", p->name,
                p->nic);
        goto fail;
    }
    /* No offloads: pktgen computes what it sends and checks nothing the
     * root would vouch for. */
    struct netvsc_params np = {.mtu = JUMBO_MTU_MAX, .no_offload = true};
    if ((rc = netvsc_open(h->c, relid, &np, &h->nic)) < 0)
        goto fail;
    netvsc_get_info(h->nic, &h->info);
    if (jumbo_frame(h->info.mtu) < p->max_frame) {
        fprintf(stderr,
                "vswitch-pktgen %s: the NIC's MTU is %u: frames of %u B need %u (the "
                "switch's and the NIC's --mtu)\n",
                p->name, h->info.mtu, p->max_frame, jumbo_mtu_of_frame(p->max_frame));
        rc = -EMSGSIZE;
        goto fail_quiet;
    }
    what = "NIC link";
    if ((rc = wait_link(h, p->link_wait_s)) < 0)
        goto fail;
    /* The most mbufs a received frame takes: the NIC's largest frame,
     * with a tag, over an mbuf's room. */
    uint32_t room = rte_pktmbuf_data_room_size(h->rx_pool) - RTE_PKTMBUF_HEADROOM;
    h->segs_per_frame = (jumbo_frame(h->info.mtu) + 4 + room - 1) / room;
    refill(h, PG_BURST);
    *out = h;
    return 0;
fail:
    fprintf(stderr, "vswitch-pktgen %s: %s: %s\n", p->name, what, strerror(-rc));
fail_quiet:
    pg_hvnet_close(h);
    return rc;
}

void pg_hvnet_port(struct pg_hvnet *h, struct pg_port *port)
{
    *port = (struct pg_port){
        .rx = hvnet_rx, .tx = hvnet_tx, .id = UINT16_MAX, .yield = h->yield, .ctx = h};
}

int pg_hvnet_start(const struct pg_hvnet_params *p, struct pg_opts *o, bool smac_given,
                   struct pg_port *port, struct pg_hvnet **out)
{
    *out = NULL;
    int rc = pg_hvnet_open(p, out);
    if (rc < 0)
        return rc;
    pg_hvnet_port(*out, port);
    const uint8_t *m = (*out)->info.mac;
    char mac[RTE_ETHER_ADDR_FMT_SIZE];
    snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    printf("vswitch-pktgen %s: NIC %s, MTU %u\n", p->name, mac, (*out)->info.mtu);
    if (!smac_given)
        pktgen_range_parse_mac(mac, &o->flow.src_mac);
    return pg_hvnet_confine(p->name);
}

/* Closing the channel drops what the root has not read from it yet: the
 * last frames sent would be lost (a v2p sink missed 41 of 30 000). Go on
 * polling, so that the root reads them and its completions come back,
 * for PG_HVNET_DRAIN_MS; no sleep (the filter has no nanosleep). */
#define PG_HVNET_DRAIN_MS 200u
static void drain(struct pg_hvnet *h)
{
    uint64_t end = rte_rdtsc() + rte_get_tsc_hz() / 1000 * PG_HVNET_DRAIN_MS;
    while (!h->failed && rte_rdtsc() < end) {
        if (netvsc_tx_flush(h->nic) < 0 || netvsc_poll(h->nic, on_frame_drop, h, PG_BURST) < 0)
            break;
        sched_yield();
    }
}

void pg_hvnet_exit(struct pg_hvnet *h, int status)
{
    if (h) {
        drain(h);
        struct pg_hvnet_stats s;
        pg_hvnet_get_stats(h, &s);
        printf("vswitch-pktgen %s: NIC tx %" PRIu64 " (too long %" PRIu64 ", waits %" PRIu64
               ", no room %" PRIu64 "), rx %" PRIu64 " (queue full %" PRIu64 ", no mbuf %" PRIu64
               ")\n",
               h->name, s.tx_frames, s.tx_too_long, s.tx_waits, s.tx_no_room, s.rx_frames,
               s.rx_full, s.rx_no_mbuf);
        pg_hvnet_close(h);
    }
    fflush(stdout);
    _exit(status);
}

void pg_hvnet_mac(const struct pg_hvnet *h, uint8_t mac[6])
{
    memcpy(mac, h->info.mac, 6);
}

uint32_t pg_hvnet_mtu(const struct pg_hvnet *h)
{
    return h->info.mtu;
}

void pg_hvnet_get_stats(const struct pg_hvnet *h, struct pg_hvnet_stats *out)
{
    *out = h->st;
    out->rx_frames = h->q.frames;
    out->rx_bytes = h->q.bytes;
    out->rx_full = h->q.full;
    out->rx_no_mbuf = h->q.no_mbuf;
}

void pg_hvnet_close(struct pg_hvnet *h)
{
    if (!h)
        return;
    struct rte_mbuf *m[PG_BURST];
    uint16_t k;
    while ((k = pg_hvnet_rxq_take(&h->q, m, PG_BURST)) > 0)
        rte_pktmbuf_free_bulk(m, k);
    if (h->q.nstash)
        rte_pktmbuf_free_bulk(h->q.stash, h->q.nstash);
    netvsc_close(h->nic);
    vmbus_client_destroy(h->c);
    hv_guest_detach(h->g);
    free(h);
}

int pg_hvnet_eal_args(char **eal, int ne)
{
    static char lcore[16], prefix[48];
    cpu_set_t set;
    int cpu = 0;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &set))
            cpu++;
    snprintf(lcore, sizeof(lcore), "%d", cpu);
    snprintf(prefix, sizeof(prefix), "--file-prefix=pktgen%d", (int)getpid());
    /* --no-huge: a worker has no hugetlbfs (and --in-memory, which wants
     * hugepages, refuses legacy memory); --no-shconf: its root is
     * read-only, there is no runtime directory to make. */
    char *def[PG_HVNET_EAL_ARGS] = {"-l", lcore, prefix, "--no-huge", "-m", "256", "--no-shconf",
                                    "--no-pci", "--no-telemetry", "--log-level=*:warning"};
    for (int i = 0; i < PG_HVNET_EAL_ARGS; i++)
        eal[ne++] = def[i];
    return ne;
}

int pg_hvnet_confine(const char *name)
{
    /* EAL's default log stream writes to syslog too, which opens a socket. */
    rte_openlog_stream(stderr);
    /* A buffer of our own: stdio would fstat stdout for one otherwise. */
    static char out_buf[BUFSIZ];
    fflush(stdout);
    setvbuf(stdout, out_buf, _IOLBF, sizeof(out_buf));
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    int rc = netvsc_sandbox_enter();
    if (rc < 0)
        fprintf(stderr, "vswitch-pktgen %s: cannot install the system-call filter: %s\n", name,
                netvsc_sandbox_last_error());
    return rc;
}
