/*
 * Unit tests for the vswitch data plane (vswitch/src/{dp,fdb,forward,frame}.c):
 * forwarding, flooding, the FDB, drop counters, hand-off between workers,
 * sleeping workers, attach/detach under traffic, and the port policy:
 * VLANs (access, trunk with tags in-band or beside the frame; the VLAN from
 * all of a frame's tags), guards, and the storm and rate limits; checksum
 * offload offsets across tags, checksums finished in software, and a host
 * vNIC's partial checksums behind a tag (that one needs root: a TAP).
 *
 * The group runs one EAL (two worker lcores, no hugepages, no PCI) and one
 * struct vsw_dp; every test builds its own switch and ports in setup and
 * tears them down, so placement starts from zero ports per worker each time
 * (attach order A, B, C, D lands on workers 0, 1, 0, 1).
 *
 * Ports are a test port type, in the spirit of OVS's netdev-dummy: frames the
 * test injects wait in an rte_ring that rx_burst takes from, and frames the
 * switch sends land in another ring the test drains. It counts tx itself, as
 * a real port type does, and records any data-path call made off the worker
 * that owns the port (teardown fails the test if there was one).
 *
 * Workers are asynchronous: tests poll with timeouts, call vsw_dp_process()
 * while polling (the control thread applies learning), and before checking
 * that something did NOT happen they wait until the switch has settled
 * (rings empty and every worker past two round boundaries).
 *
 * Every test uses MAC addresses of its own (a per-test byte), so the
 * workers' learning caches never carry over from one test to the next.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* rte_ipv4_udptcp_cksum_verify() and its IPv6 twin are experimental in
 * DPDK 22.11. */
#define ALLOW_EXPERIMENTAL_API
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memzone.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "vsw-frame.h"
#include "vsw-host.h"
#include "vsw-placement.h"
#include "vsw-port-provider.h"
#include "vsw-uplink.h"
#include "vsw.h"

#define TP_RING 4096           /* per test port and direction */
#define TP_LOG 4096            /* frames a test port remembers */
#define TP_TX_MAX 256          /* frames one tx_burst may be given */
#define TP_KEEP 512            /* frames a keeping test port holds */
#define MAX_TP 8               /* test ports per fixture */
#define MAX_SW 4               /* extra switches per fixture */
#define FDB_LIST_MAX 256
#define TEST_ETHERTYPE_HI 0x88 /* 0x88b5: IEEE local experimental */
#define TEST_ETHERTYPE_LO 0xb5
#define WAIT_MS 5000u          /* for anything the switch should do */
#define AGING_S 10             /* the shortest FDB aging time a switch takes */
#define FDB_SMALL 16           /* the smallest FDB a switch takes */

static struct vsw_dp *g_dp;
static struct rte_mempool *g_pool;
static unsigned g_nworkers;
static unsigned g_worker_lcore[VSW_MAX_WORKERS];
static unsigned g_test_seq;
static unsigned g_port_seq;

struct tp_rec {
    uint8_t dst[6];
    uint8_t src[6];
    uint32_t len;
    uint32_t seq;
    uint16_t tag; /* 802.1Q VLAN id in the frame (in-band ports), 0 if none */
    uint16_t oob; /* the tag an out-of-band port would send (vsw_port_tx_vlan) */
    uint8_t l2_len;
    uint16_t l3_len;
    uint64_t csum;       /* the checksum requests it came with (VSW_TX_CSUM_FLAGS) */
    int csum_finish;     /* vsw_frame_cksum_finish() on a copy of it */
    bool csum_verifies;  /* and the finished copy's TCP/UDP checksum verifies */
    uint32_t l4_off;     /* where the verifier found the transport header */
};

struct test_port {
    struct vsw_port base; /* first: the switch sees only this */
    struct rte_ring *rx;  /* frames the test injects; rx_burst takes them */
    struct rte_ring *tx;  /* frames the switch sent; the test drains them */
    int efd;              /* written after injecting; the owning worker sleeps on it */
    unsigned wrong_lcore; /* atomic: data-path calls off the owning worker */
    unsigned stall_calls; /* atomic: rx_burst calls still to stall (a slow port) */
    unsigned stall_us;    /* how long each of them takes */
    bool stalling;        /* atomic: in such a call now */
    /* A peer's control messages waiting (atomic): rx_burst takes up to its
     * budget of them each call, as netvsp does, producing no frame. */
    uint64_t backlog;
    uint64_t rx_calls;  /* atomic */
    uint64_t arm_calls; /* atomic: wait_arm calls */
    unsigned max_budget; /* atomic: the largest n rx_burst was given */
    /* Round-robin check (owning worker only, once peer is set): a peer on
     * the same worker must be polled exactly once between two polls of
     * this port; peer_skips counts the times it was not. */
    struct test_port *peer; /* atomic */
    bool peer_seen_valid;
    uint64_t peer_seen;
    uint64_t peer_skips; /* atomic */
    /* Control thread only: keep what the switch sent (up to TP_KEEP) for
     * the test to read, instead of freeing it. */
    bool keep;
    unsigned nkept;
    struct rte_mbuf *kept[TP_KEEP];
    /* Control thread only. */
    uint64_t drained; /* frames taken out of tx */
    unsigned nlog;
    struct tp_rec log[TP_LOG];
};

static struct test_port *tp_of(struct vsw_port *port)
{
    return (struct test_port *)((char *)port - offsetof(struct test_port, base));
}

static void tp_check_lcore(struct vsw_port *port)
{
    unsigned w = port->worker;
    if (w >= g_nworkers || rte_lcore_id() != g_worker_lcore[w])
        __atomic_fetch_add(&tp_of(port)->wrong_lcore, 1, __ATOMIC_RELAXED);
}

static uint16_t tp_rx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n)
{
    struct test_port *tp = tp_of(port);
    tp_check_lcore(port);
    if (__atomic_load_n(&tp->stall_calls, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&tp->stalling, true, __ATOMIC_RELEASE);
        usleep(__atomic_load_n(&tp->stall_us, __ATOMIC_RELAXED));
        __atomic_store_n(&tp->stalling, false, __ATOMIC_RELEASE);
        __atomic_sub_fetch(&tp->stall_calls, 1, __ATOMIC_ACQ_REL);
    }
    __atomic_add_fetch(&tp->rx_calls, 1, __ATOMIC_RELAXED);
    struct test_port *peer = __atomic_load_n(&tp->peer, __ATOMIC_ACQUIRE);
    if (peer) {
        uint64_t pc = __atomic_load_n(&peer->rx_calls, __ATOMIC_RELAXED);
        if (tp->peer_seen_valid && pc - tp->peer_seen != 1)
            __atomic_add_fetch(&tp->peer_skips, 1, __ATOMIC_RELAXED);
        tp->peer_seen = pc;
        tp->peer_seen_valid = true;
    }
    if (n > __atomic_load_n(&tp->max_budget, __ATOMIC_RELAXED))
        __atomic_store_n(&tp->max_budget, n, __ATOMIC_RELAXED);
    uint64_t ctl = __atomic_load_n(&tp->backlog, __ATOMIC_ACQUIRE);
    if (ctl) {
        uint16_t k = ctl < n ? (uint16_t)ctl : n;
        __atomic_sub_fetch(&tp->backlog, k, __ATOMIC_ACQ_REL);
        vsw_port_rx_busy(port);
        n -= k;
    }
    return (uint16_t)rte_ring_dequeue_burst(tp->rx, (void **)pkts, n, NULL);
}

/* Takes all n: what fits in the tx ring is sent and counted tx, the rest is
 * freed and counted queue_full. Lengths are read before the enqueue: once a
 * frame is in the ring the test may free it. */
static uint16_t tp_tx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n)
{
    tp_check_lcore(port);
    uint32_t lens[TP_TX_MAX];
    uint16_t k = n < TP_TX_MAX ? n : TP_TX_MAX;
    for (uint16_t i = 0; i < k; i++)
        lens[i] = pkts[i]->pkt_len;
    unsigned sent = rte_ring_enqueue_burst(tp_of(port)->tx, (void **)pkts, k, NULL);
    struct vsw_port_counters *c = &port->counters[rte_lcore_id()];
    for (unsigned i = 0; i < sent; i++) {
        c->tx_packets++;
        c->tx_bytes += lens[i];
    }
    if (sent < n) {
        vsw_port_drop(port, VSW_DROP_QUEUE_FULL, n - sent);
        rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    }
    return (uint16_t)sent;
}

static int tp_wait_fd(struct vsw_port *port)
{
    return tp_of(port)->efd;
}

static bool tp_wait_arm(struct vsw_port *port)
{
    tp_check_lcore(port);
    struct test_port *tp = tp_of(port);
    __atomic_add_fetch(&tp->arm_calls, 1, __ATOMIC_RELAXED);
    return !rte_ring_empty(tp->rx) || __atomic_load_n(&tp->backlog, __ATOMIC_ACQUIRE);
}

static void tp_wait_disarm(struct vsw_port *port)
{
    tp_check_lcore(port);
    uint64_t v;
    if (read(tp_of(port)->efd, &v, sizeof(v)) < 0) {
        /* nothing was written: fine */
    }
}

static void ring_free_all(struct rte_ring *r)
{
    struct rte_mbuf *pkts[VSW_BURST];
    unsigned n;
    if (!r)
        return;
    while ((n = rte_ring_dequeue_burst(r, (void **)pkts, VSW_BURST, NULL)) > 0)
        rte_pktmbuf_free_bulk(pkts, n);
}

static void tp_destroy(struct vsw_port *port)
{
    struct test_port *tp = tp_of(port);
    ring_free_all(tp->rx);
    ring_free_all(tp->tx);
    rte_pktmbuf_free_bulk(tp->kept, tp->nkept);
    rte_ring_free(tp->rx);
    rte_ring_free(tp->tx);
    if (tp->efd >= 0)
        close(tp->efd);
    rte_free(tp);
}

static const struct vsw_port_class test_port_class = {
    .type = "test",
    .rx_burst = tp_rx_burst,
    .tx_burst = tp_tx_burst,
    .wait_fd = tp_wait_fd,
    .wait_arm = tp_wait_arm,
    .wait_disarm = tp_wait_disarm,
    .destroy = tp_destroy,
};

/* Like an uplink: 802.1Q tags travel in the frames. */
static const struct vsw_port_class test_port_inband_class = {
    .type = "test-inband",
    .inband_vlan = true,
    .rx_burst = tp_rx_burst,
    .tx_burst = tp_tx_burst,
    .wait_fd = tp_wait_fd,
    .wait_arm = tp_wait_arm,
    .wait_disarm = tp_wait_disarm,
    .destroy = tp_destroy,
};

/* A port type that writes to the frames it is given. */
static const struct vsw_port_class test_port_writes_class = {
    .type = "test-writes",
    .tx_writes = true,
    .rx_burst = tp_rx_burst,
    .tx_burst = tp_tx_burst,
    .wait_fd = tp_wait_fd,
    .wait_arm = tp_wait_arm,
    .wait_disarm = tp_wait_disarm,
    .destroy = tp_destroy,
};

static struct test_port *tp_create_cls(const char *name, const struct vsw_port_class *cls)
{
    struct test_port *tp = rte_zmalloc("test_port", sizeof(*tp), RTE_CACHE_LINE_SIZE);
    if (!tp)
        return NULL;
    vsw_port_init(&tp->base, cls, name);
    unsigned id = g_port_seq++;
    char rname[RTE_RING_NAMESIZE];
    snprintf(rname, sizeof(rname), "tp_rx_%u", id);
    tp->rx = rte_ring_create(rname, TP_RING, (int)rte_socket_id(), 0);
    snprintf(rname, sizeof(rname), "tp_tx_%u", id);
    tp->tx = rte_ring_create(rname, TP_RING, (int)rte_socket_id(), 0);
    tp->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!tp->rx || !tp->tx || tp->efd < 0) {
        tp_destroy(&tp->base);
        return NULL;
    }
    return tp;
}

static struct test_port *tp_create(const char *name)
{
    return tp_create_cls(name, &test_port_class);
}

static void tp_kick(struct test_port *tp)
{
    uint64_t one = 1;
    if (write(tp->efd, &one, sizeof(one)) < 0) {
        /* saturated: the worker is awake anyway */
    }
}

/* Internet checksum, independent of DPDK's and of the switch's reading of
 * frames: a sum of big-endian 16-bit words. */
static uint32_t csum_add(uint32_t acc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        acc += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        acc += (uint32_t)p[n - 1] << 8;
    return acc;
}

static uint16_t csum_fold(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)acc;
}

/* Does the TCP or UDP checksum of frame f verify? 802.1Q tags are skipped;
 * IPv6 extension headers are hop-by-hop only. *l4_off: where the
 * transport header was found. */
static bool l4_csum_verifies(const uint8_t *f, uint32_t len, uint32_t *l4_off)
{
    uint32_t o = 12;
    while (o + 4 <= len && f[o] == 0x81 && f[o + 1] == 0x00)
        o += 4;
    if (o + 2 > len)
        return false;
    uint16_t et = (uint16_t)(f[o] << 8 | f[o + 1]);
    const uint8_t *ip = f + o + 2;
    uint32_t iplen = len - (o + 2), off, l4len, acc;
    uint8_t proto;
    if (et == 0x0800 && iplen >= 20) {
        uint32_t ihl = (ip[0] & 0xfu) * 4u, tot = (uint32_t)(ip[2] << 8 | ip[3]);
        if (ihl < 20 || tot < ihl || tot > iplen || csum_fold(csum_add(0, ip, ihl)) != 0xffff)
            return false;
        proto = ip[9];
        off = ihl;
        l4len = tot - ihl;
        acc = csum_add(0, ip + 12, 8);
    } else if (et == 0x86dd && iplen >= 40) {
        uint32_t plen = (uint32_t)(ip[4] << 8 | ip[5]);
        if (40 + plen > iplen)
            return false;
        proto = ip[6];
        off = 40;
        while (proto == 0 && off + 8 <= 40 + plen) {
            proto = ip[off];
            off += (ip[off + 1] + 1u) * 8u;
        }
        if (off > 40 + plen)
            return false;
        l4len = 40 + plen - off;
        acc = csum_add(0, ip + 8, 32);
    } else {
        return false;
    }
    if ((proto != 6 && proto != 17) || l4len < (proto == 6 ? 20u : 8u))
        return false;
    *l4_off = o + 2 + off;
    acc += proto + l4len;
    return csum_fold(csum_add(acc, ip + off, l4len)) == 0xffff;
}

/* Record how a frame with checksum requests arrived, and whether finishing
 * them (on a private copy: other ports may share the frame) gives a frame
 * whose checksum verifies. */
static void rec_csum(struct tp_rec *r, const struct rte_mbuf *m)
{
    r->l2_len = (uint8_t)m->l2_len;
    r->l3_len = (uint16_t)m->l3_len;
    r->csum = m->ol_flags & VSW_TX_CSUM_FLAGS;
    r->csum_finish = 0;
    r->csum_verifies = false;
    r->l4_off = 0;
    if (!r->csum)
        return;
    struct rte_mbuf *c = rte_pktmbuf_copy(m, g_pool, 0, UINT32_MAX);
    if (!c) {
        r->csum_finish = -ENOMEM;
        return;
    }
    r->csum_finish = vsw_frame_cksum_finish(c, r->csum);
    static uint8_t flat[16384];
    uint32_t len = c->pkt_len < sizeof(flat) ? c->pkt_len : (uint32_t)sizeof(flat);
    const uint8_t *p = rte_pktmbuf_read(c, 0, len, flat);
    r->csum_verifies = r->csum_finish == 0 && p && l4_csum_verifies(p, len, &r->l4_off);
    rte_pktmbuf_free(c);
}

/* Take what the switch sent out of tp's tx ring, remember it, free it. */
static unsigned tp_drain(struct test_port *tp)
{
    void *objs[64];
    unsigned n, total = 0;
    while ((n = rte_ring_dequeue_burst(tp->tx, objs, 64, NULL)) > 0) {
        for (unsigned i = 0; i < n; i++) {
            struct rte_mbuf *m = objs[i];
            if (tp->nlog < TP_LOG) {
                struct tp_rec *r = &tp->log[tp->nlog++];
                uint8_t hdr[22] = {0};
                uint32_t len = m->pkt_len < sizeof(hdr) ? m->pkt_len : sizeof(hdr);
                const void *p = rte_pktmbuf_read(m, 0, len, hdr);
                if (p != hdr)
                    memcpy(hdr, p, len);
                memcpy(r->dst, hdr, 6);
                memcpy(r->src, hdr + 6, 6);
                r->tag = 0;
                if (hdr[12] == 0x81 && hdr[13] == 0x00) {
                    r->tag = (uint16_t)(((hdr[14] << 8) | hdr[15]) & 0xfff);
                    memcpy(&r->seq, hdr + 18, 4);
                } else {
                    memcpy(&r->seq, hdr + 14, 4);
                }
                r->oob = tp->base.cls->inband_vlan ? 0 : vsw_port_tx_vlan(&tp->base, m);
                r->len = m->pkt_len;
                rec_csum(r, m);
            }
            tp->drained++;
            if (tp->keep && tp->nkept < TP_KEEP)
                tp->kept[tp->nkept++] = m;
            else
                rte_pktmbuf_free(m);
        }
        total += n;
    }
    return total;
}

static unsigned tp_count_seq(const struct test_port *tp, uint32_t seq)
{
    unsigned n = 0;
    for (unsigned i = 0; i < tp->nlog; i++)
        n += tp->log[i].seq == seq;
    return n;
}

struct mac {
    uint8_t b[6];
};

static const struct mac bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

/* A thread that injects frames on a port as fast as it takes them. */
struct injector {
    struct test_port *tp;
    struct mac dst, src;
    uint16_t len;
    bool stop;         /* atomic */
    uint64_t injected; /* atomic: frames put into tp's rx ring */
};

struct fixture {
    uint8_t tag; /* in every MAC address of this test */
    uint32_t seq;
    struct vsw_switch *sw; /* made in setup */
    struct vsw_switch *extra[MAX_SW];
    unsigned nextra;
    struct test_port *tp[MAX_TP];
    unsigned ntp;
    struct injector inj;
    pthread_t inj_thread;
    bool inj_running;
    struct vsw_port *host; /* a host vNIC port, if the test made one */
};

/* A locally administered unicast address of this test: port p, host h. */
static struct mac host(const struct fixture *f, unsigned p, unsigned h)
{
    return (struct mac){{0x02, 0x00, f->tag, 0x5e, (uint8_t)p, (uint8_t)h}};
}

static bool mac_eq(const uint8_t *a, struct mac b)
{
    return memcmp(a, b.b, 6) == 0;
}

/* A frame of len bytes on the wire: dst, src, ethertype, then seq if it
 * fits; shorter frames get the first len bytes of that. */
static struct rte_mbuf *frame_new(struct mac dst, struct mac src, uint16_t len, uint32_t seq)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(g_pool);
    if (!m)
        return NULL;
    uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, len);
    if (!p) {
        rte_pktmbuf_free(m);
        return NULL;
    }
    uint8_t hdr[18];
    memcpy(hdr, dst.b, 6);
    memcpy(hdr + 6, src.b, 6);
    hdr[12] = TEST_ETHERTYPE_HI;
    hdr[13] = TEST_ETHERTYPE_LO;
    memcpy(hdr + 14, &seq, 4);
    memset(p, 0xa5, len);
    memcpy(p, hdr, len < sizeof(hdr) ? len : sizeof(hdr));
    return m;
}

/* Inject one frame on tp; returns its sequence number. */
static uint32_t send_frame(struct fixture *f, struct test_port *tp, struct mac dst, struct mac src,
                           uint16_t len)
{
    uint32_t seq = ++f->seq;
    struct rte_mbuf *m = frame_new(dst, src, len, seq);
    assert_non_null(m);
    assert_int_equal(rte_ring_enqueue(tp->rx, m), 0);
    tp_kick(tp);
    return seq;
}

static void *injector_main(void *arg)
{
    struct injector *in = arg;
    uint32_t seq = 0;
    while (!__atomic_load_n(&in->stop, __ATOMIC_ACQUIRE)) {
        struct rte_mbuf *ms[VSW_BURST];
        unsigned n = 0;
        while (n < VSW_BURST) {
            struct rte_mbuf *m = frame_new(in->dst, in->src, in->len, ++seq);
            if (!m)
                break;
            ms[n++] = m;
        }
        unsigned k = n ? rte_ring_enqueue_burst(in->tp->rx, (void **)ms, n, NULL) : 0;
        if (k < n)
            rte_pktmbuf_free_bulk(ms + k, n - k);
        if (k) {
            __atomic_add_fetch(&in->injected, k, __ATOMIC_RELAXED);
            tp_kick(in->tp);
        } else {
            usleep(50);
        }
    }
    return NULL;
}

static void injector_start(struct fixture *f, struct test_port *tp, struct mac dst,
                           struct mac src, uint16_t len)
{
    f->inj = (struct injector){.tp = tp, .dst = dst, .src = src, .len = len};
    assert_int_equal(pthread_create(&f->inj_thread, NULL, injector_main, &f->inj), 0);
    f->inj_running = true;
}

/* Returns how many frames it injected. */
static uint64_t injector_stop(struct fixture *f)
{
    if (f->inj_running) {
        __atomic_store_n(&f->inj.stop, true, __ATOMIC_RELEASE);
        pthread_join(f->inj_thread, NULL);
        f->inj_running = false;
    }
    return __atomic_load_n(&f->inj.injected, __ATOMIC_RELAXED);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(unsigned ms)
{
    usleep(ms * 1000u);
}

/* One step of the control thread: apply learning, collect what came out. */
static void pump(struct fixture *f)
{
    vsw_dp_process(g_dp);
    for (unsigned i = 0; i < f->ntp; i++)
        tp_drain(f->tp[i]);
}

static bool wait_rx(struct fixture *f, struct test_port *tp, unsigned n, unsigned timeout_ms)
{
    uint64_t end = now_us() + timeout_ms * 1000ull;
    for (;;) {
        pump(f);
        if (tp->nlog >= n)
            return true;
        if (now_us() > end)
            return false;
        usleep(100);
    }
}

/* No frame waits in an attached port's rx or hand-off ring. */
static bool rings_idle(const struct fixture *f)
{
    for (unsigned i = 0; i < f->ntp; i++) {
        const struct test_port *tp = f->tp[i];
        if (!tp->base.sw)
            continue;
        if (!rte_ring_empty(tp->rx))
            return false;
        if (tp->base.handoff && !rte_ring_empty(tp->base.handoff))
            return false;
    }
    return true;
}

/* Every worker has finished the round it was in when this was called. */
static void wait_workers_progress(struct fixture *f)
{
    struct vsw_worker_stats a[VSW_MAX_WORKERS], b[VSW_MAX_WORKERS];
    vsw_dp_worker_stats(g_dp, a, VSW_MAX_WORKERS);
    for (unsigned i = 0; i < f->ntp; i++)
        if (f->tp[i]->base.sw)
            tp_kick(f->tp[i]);
    uint64_t end = now_us() + WAIT_MS * 1000ull;
    for (;;) {
        vsw_dp_worker_stats(g_dp, b, VSW_MAX_WORKERS);
        bool all = true;
        for (unsigned w = 0; w < g_nworkers; w++)
            if (!(b[w].rounds >= a[w].rounds + 2 || b[w].sleeps > a[w].sleeps))
                all = false;
        if (all)
            return;
        if (now_us() > end)
            fail_msg("workers made no progress in %u ms", WAIT_MS);
        pump(f);
        usleep(100);
    }
}

/* Wait until every injected frame has been forwarded, delivered or
 * dropped, then collect what came out: idle rings seen twice, each time
 * after every worker passed a round boundary. */
static void settle(struct fixture *f)
{
    uint64_t end = now_us() + 4 * WAIT_MS * 1000ull;
    for (;;) {
        while (!rings_idle(f)) {
            if (now_us() > end)
                fail_msg("switch did not settle");
            pump(f);
            usleep(100);
        }
        wait_workers_progress(f);
        if (!rings_idle(f))
            continue;
        wait_workers_progress(f);
        if (rings_idle(f))
            break;
    }
    pump(f);
}

static void clear_logs(struct fixture *f)
{
    settle(f);
    for (unsigned i = 0; i < f->ntp; i++)
        f->tp[i]->nlog = 0;
}

struct fdb_list {
    unsigned n;
    struct vsw_fdb_entry e[FDB_LIST_MAX];
};

static void fdb_collect(void *ctx, const struct vsw_fdb_entry *e)
{
    struct fdb_list *l = ctx;
    if (l->n < FDB_LIST_MAX)
        l->e[l->n] = *e;
    l->n++;
}

static unsigned fdb_get(struct vsw_switch *sw, struct fdb_list *l)
{
    l->n = 0;
    vsw_fdb_dump(sw, fdb_collect, l);
    return l->n;
}

static const struct vsw_fdb_entry *fdb_find(const struct fdb_list *l, struct mac m)
{
    for (unsigned i = 0; i < l->n && i < FDB_LIST_MAX; i++)
        if (mac_eq(l->e[i].mac, m))
            return &l->e[i];
    return NULL;
}

static unsigned fdb_count_mac(const struct fdb_list *l, struct mac m)
{
    unsigned n = 0;
    for (unsigned i = 0; i < l->n && i < FDB_LIST_MAX; i++)
        n += mac_eq(l->e[i].mac, m);
    return n;
}

/* Wait until m is learned on tp (or is absent, with tp NULL). */
static bool wait_fdb(struct fixture *f, struct vsw_switch *sw, struct mac m,
                     const struct test_port *tp, unsigned timeout_ms)
{
    struct fdb_list *l = malloc(sizeof(*l));
    assert_non_null(l);
    uint64_t end = now_us() + timeout_ms * 1000ull;
    bool ok = false;
    for (;;) {
        pump(f);
        fdb_get(sw, l);
        const struct vsw_fdb_entry *e = fdb_find(l, m);
        if (tp ? e && e->port == &tp->base : !e) {
            ok = true;
            break;
        }
        if (now_us() > end)
            break;
        usleep(200);
    }
    free(l);
    return ok;
}

/* Make the switch learn m on tp (a broadcast from it), then forget the
 * frames that caused. */
static void learn(struct fixture *f, struct vsw_switch *sw, struct test_port *tp, struct mac m)
{
    send_frame(f, tp, bcast, m, 64);
    assert_true(wait_fdb(f, sw, m, tp, WAIT_MS));
    clear_logs(f);
}

static struct vsw_port_stats stats(const struct test_port *tp)
{
    struct vsw_port_stats s;
    vsw_port_get_stats(&tp->base, &s);
    return s;
}

static uint64_t drops_total(const struct vsw_port_stats *s)
{
    uint64_t n = 0;
    for (int d = 0; d < VSW_DROP_COUNT; d++)
        n += s->drops[d];
    return n;
}

static uint64_t fixture_drops(const struct fixture *f)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < f->ntp; i++) {
        struct vsw_port_stats s = stats(f->tp[i]);
        n += drops_total(&s);
    }
    return n;
}

static struct vsw_switch *switch_new(struct fixture *f, const char *name, uint32_t fdb_max,
                                     uint32_t aging_s)
{
    struct vsw_switch_params p = {
        .name = name,
        .kind = VSW_SWITCH_PRIVATE,
        .mtu = 1500,
        .fdb_max = fdb_max,
        .fdb_aging_s = aging_s,
    };
    struct vsw_switch *sw = NULL;
    assert_int_equal(vsw_switch_create(g_dp, &p, &sw), 0);
    assert_non_null(sw);
    assert_true(f->nextra < MAX_SW);
    f->extra[f->nextra++] = sw;
    return sw;
}

/* A test port, not attached; the fixture frees it. */
static struct test_port *port_new(struct fixture *f, const char *name)
{
    assert_true(f->ntp < MAX_TP);
    struct test_port *tp = tp_create(name);
    assert_non_null(tp);
    f->tp[f->ntp++] = tp;
    return tp;
}

static struct test_port *port_add(struct fixture *f, struct vsw_switch *sw, const char *name,
                                  bool up)
{
    struct test_port *tp = port_new(f, name);
    assert_int_equal(vsw_port_attach(sw, &tp->base), 0);
    vsw_port_set_link(&tp->base, up);
    return tp;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->tag = (uint8_t)++g_test_seq;
    struct vsw_switch_params p = {.name = "sw0", .kind = VSW_SWITCH_PRIVATE, .mtu = 1500};
    if (vsw_switch_create(g_dp, &p, &f->sw) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = 0;
    injector_stop(f);
    if (f->host) {
        if (vsw_port_switch(f->host))
            vsw_port_detach(f->host);
        vsw_port_destroy(f->host);
    }
    for (unsigned i = 0; i < f->ntp; i++)
        vsw_port_detach(&f->tp[i]->base);
    for (unsigned i = 0; i < f->ntp; i++) {
        struct test_port *tp = f->tp[i];
        unsigned wrong = __atomic_load_n(&tp->wrong_lcore, __ATOMIC_RELAXED);
        if (wrong) {
            print_error("port %s: %u data-path calls off its worker\n", tp->base.name, wrong);
            rc = -1;
        }
        vsw_port_destroy(&tp->base);
    }
    for (unsigned i = 0; i < f->nextra; i++)
        if (vsw_switch_destroy(f->extra[i]) != 0)
            rc = -1;
    if (vsw_switch_destroy(f->sw) != 0)
        rc = -1;
    free(f);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "tvsw%d", (int)getpid());
    char *argv[] = {"test",     "--lcores",      "0@0,1@1,2@0", "--no-huge",   "-m", "256",
                    "--no-pci", "--file-prefix", prefix,        "--log-level", "*:error",
                    "--no-shconf", "--no-telemetry"};
    int argc = (int)(sizeof(argv) / sizeof(argv[0]));
    if (rte_eal_init(argc, argv) < 0) {
        print_error("rte_eal_init failed\n");
        return -1;
    }
    /* EAL leaves an empty runtime directory behind (--no-shconf). */
    rmdir(rte_eal_get_runtime_dir());
    if (vsw_dp_create(NULL, &g_dp) != 0) {
        print_error("vsw_dp_create failed\n");
        return -1;
    }
    g_pool = vsw_dp_mempool(g_dp);
    struct vsw_worker_stats ws[VSW_MAX_WORKERS];
    g_nworkers = vsw_dp_worker_stats(g_dp, ws, VSW_MAX_WORKERS);
    if (g_nworkers != 2 || vsw_dp_workers(g_dp) != 2) {
        print_error("expected 2 workers, got %u\n", g_nworkers);
        return -1;
    }
    for (unsigned i = 0; i < g_nworkers; i++)
        g_worker_lcore[i] = ws[i].lcore;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    vsw_dp_destroy(g_dp);
    g_dp = NULL;
    rte_eal_cleanup();
    return 0;
}

static void vsw_forward__unknown_unicast__flooded_to_other_up_ports_only(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    struct test_port *d = port_add(f, f->sw, "D", false);

    uint32_t s1 = send_frame(f, a, host(f, 9, 9), host(f, 0, 1), 100);
    settle(f);
    assert_int_equal(tp_count_seq(b, s1), 1);
    assert_int_equal(tp_count_seq(c, s1), 1);
    assert_int_equal(tp_count_seq(a, s1), 0);
    assert_int_equal(tp_count_seq(d, s1), 0);
    assert_int_equal(a->nlog + d->nlog, 0);
    assert_int_equal(fixture_drops(f), 0);
    struct vsw_port_stats sa = stats(a), sb = stats(b), sd = stats(d);
    assert_int_equal(sa.rx_packets, 1);
    assert_int_equal(sa.rx_bytes, 100);
    assert_int_equal(sb.tx_packets, 1);
    assert_int_equal(sb.tx_bytes, 100);
    assert_int_equal(sd.tx_packets, 0);

    /* The same frame once D is up reaches it too. */
    vsw_port_set_link(&d->base, true);
    uint32_t s2 = send_frame(f, a, host(f, 9, 9), host(f, 0, 1), 100);
    settle(f);
    assert_int_equal(tp_count_seq(b, s2), 1);
    assert_int_equal(tp_count_seq(c, s2), 1);
    assert_int_equal(tp_count_seq(d, s2), 1);
    assert_int_equal(tp_count_seq(a, s2), 0);
}

static void vsw_forward__broadcast_and_multicast__flooded_except_ingress(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    const struct mac groups[] = {
        bcast,
        {{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}}, /* IPv4 mDNS */
        {{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}}, /* IPv6 all-nodes */
        {{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}}, /* LLDP */
    };
    uint32_t seqs[4];
    for (unsigned i = 0; i < 4; i++)
        seqs[i] = send_frame(f, b, groups[i], host(f, 1, 1), 80);
    settle(f);
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(tp_count_seq(a, seqs[i]), 1);
        assert_int_equal(tp_count_seq(c, seqs[i]), 1);
    }
    assert_int_equal(a->nlog, 4);
    assert_int_equal(c->nlog, 4);
    assert_int_equal(b->nlog, 0);
    assert_true(mac_eq(a->log[0].dst, bcast));
    assert_int_equal(fixture_drops(f), 0);

    /* Only B's source address was learned. */
    assert_true(wait_fdb(f, f->sw, host(f, 1, 1), b, WAIT_MS));
    struct fdb_list l;
    assert_int_equal(fdb_get(f->sw, &l), 1);
    for (unsigned i = 0; i < 4; i++)
        assert_null(fdb_find(&l, groups[i]));
}

static void vsw_fdb_dump__after_learning__mac_on_ingress_port_with_age(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    port_add(f, f->sw, "B", true);
    struct fdb_list l;
    assert_int_equal(fdb_get(f->sw, &l), 0);

    send_frame(f, a, bcast, host(f, 0, 1), 64);
    assert_true(wait_fdb(f, f->sw, host(f, 0, 1), a, WAIT_MS));
    settle(f);
    assert_int_equal(fdb_get(f->sw, &l), 1);
    const struct vsw_fdb_entry *e = fdb_find(&l, host(f, 0, 1));
    assert_non_null(e);
    assert_ptr_equal(e->port, &a->base);
    assert_int_equal(e->vlan, 0);
    assert_false(e->is_static);
    assert_true(e->age_s <= 1);
}

static void vsw_forward__learned_unicast__only_to_learned_port(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    learn(f, f->sw, a, host(f, 0, 1));

    uint32_t seqs[5];
    for (unsigned i = 0; i < 5; i++)
        seqs[i] = send_frame(f, b, host(f, 0, 1), host(f, 1, 1), 90);
    settle(f);
    assert_int_equal(a->nlog, 5);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(a->log[i].seq, seqs[i]);
    assert_int_equal(b->nlog, 0);
    assert_int_equal(c->nlog, 0);

    /* B's address was learned from those: the answer goes only to B. */
    assert_true(wait_fdb(f, f->sw, host(f, 1, 1), b, WAIT_MS));
    uint32_t r = send_frame(f, a, host(f, 1, 1), host(f, 0, 1), 90);
    settle(f);
    assert_int_equal(tp_count_seq(b, r), 1);
    assert_int_equal(b->nlog, 1);
    assert_int_equal(c->nlog, 0);
    assert_int_equal(a->nlog, 5);
    assert_int_equal(fixture_drops(f), 0);
}

static void vsw_fdb__mac_moves_to_other_port__relearned(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    struct mac x = host(f, 7, 7);
    learn(f, f->sw, a, x);

    send_frame(f, b, bcast, x, 64);
    assert_true(wait_fdb(f, f->sw, x, b, WAIT_MS));
    clear_logs(f);
    struct fdb_list l;
    fdb_get(f->sw, &l);
    assert_int_equal(fdb_count_mac(&l, x), 1);

    uint32_t s = send_frame(f, c, x, host(f, 2, 1), 64);
    settle(f);
    assert_int_equal(tp_count_seq(b, s), 1);
    assert_int_equal(a->nlog, 0);
    struct vsw_port_stats sb = stats(b);
    assert_int_equal(drops_total(&sb), 0);
}

/* Wait for the TSC second (the data plane's clock) to turn over. */
static void wait_second_start(void)
{
    uint64_t hz = rte_get_tsc_hz();
    uint64_t s0 = rte_get_tsc_cycles() / hz;
    while (rte_get_tsc_cycles() / hz == s0)
        usleep(500);
}

/*
 * A station that moves A -> B -> A (a VM migrated back, a bond failing over
 * and back) and says so with one frame each time. Until the FDB follows it,
 * unicast to it goes to B: not flooded, lost. Done at the start of a second
 * so that all of it falls within one second of the data plane's clock.
 */
static void vsw_fdb__mac_moves_back_within_a_second__relearned_from_one_frame(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    struct mac x = host(f, 7, 7);
    wait_second_start();
    send_frame(f, a, bcast, x, 64);
    assert_true(wait_fdb(f, f->sw, x, a, WAIT_MS));
    send_frame(f, b, bcast, x, 64);
    assert_true(wait_fdb(f, f->sw, x, b, WAIT_MS));
    send_frame(f, a, bcast, x, 64);
    bool back = wait_fdb(f, f->sw, x, a, 3000);
    clear_logs(f);
    uint32_t s = send_frame(f, c, x, host(f, 2, 1), 64);
    settle(f);
    print_message("x learned back on A: %s; unicast to x reached A %u, B %u\n",
                  back ? "yes" : "no", tp_count_seq(a, s), tp_count_seq(b, s));
    assert_true(back);
    assert_int_equal(tp_count_seq(a, s), 1);
    assert_int_equal(b->nlog, 0);
}

static void vsw_forward__destination_is_ingress_port__dropped_hairpin(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    learn(f, f->sw, a, host(f, 0, 1));
    struct vsw_port_stats before = stats(a);

    send_frame(f, a, host(f, 0, 1), host(f, 0, 2), 64);
    settle(f);
    assert_int_equal(a->nlog + b->nlog + c->nlog, 0);
    struct vsw_port_stats sa = stats(a);
    assert_int_equal(sa.drops[VSW_DROP_HAIRPIN], 1);
    assert_int_equal(sa.rx_packets, before.rx_packets + 1);
    assert_int_equal(drops_total(&sa), 1);
    struct vsw_port_stats sb = stats(b), sc = stats(c);
    assert_int_equal(drops_total(&sb) + drops_total(&sc), 0);
}

static void vsw_forward__runt_frame__dropped_and_counted_on_ingress(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    const uint16_t lens[] = {0, 1, 6, 12, 13};
    for (unsigned i = 0; i < 5; i++)
        send_frame(f, a, bcast, host(f, 0, 1), lens[i]);
    settle(f);
    assert_int_equal(b->nlog, 0);
    struct vsw_port_stats sa = stats(a);
    assert_int_equal(sa.drops[VSW_DROP_RUNT], 5);
    assert_int_equal(drops_total(&sa), 5);
    assert_int_equal(sa.rx_packets, 0);
    struct fdb_list l;
    assert_int_equal(fdb_get(f->sw, &l), 0);

    /* A bare Ethernet header is a frame. */
    send_frame(f, a, bcast, host(f, 0, 1), 14);
    settle(f);
    assert_int_equal(b->nlog, 1);
    assert_int_equal(b->log[0].len, 14);
    assert_true(mac_eq(b->log[0].src, host(f, 0, 1)));
    sa = stats(a);
    assert_int_equal(sa.drops[VSW_DROP_RUNT], 5);
    assert_int_equal(sa.rx_packets, 1);
}

static void vsw_forward__multicast_or_zero_source__dropped_bad_src_mac(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    const struct mac bad[] = {
        {{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}},
        {{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}},
        bcast,
        {{0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
    };
    for (unsigned i = 0; i < 4; i++)
        send_frame(f, a, bcast, bad[i], 64);
    /* unicast too: the source is checked whatever the destination */
    send_frame(f, a, host(f, 1, 1), bad[0], 64);
    settle(f);
    assert_int_equal(b->nlog, 0);
    struct vsw_port_stats sa = stats(a);
    assert_int_equal(sa.drops[VSW_DROP_BAD_SRC_MAC], 5);
    assert_int_equal(drops_total(&sa), 5);
    assert_int_equal(sa.rx_packets, 0);
    sleep_ms(20);
    pump(f);
    struct fdb_list l;
    assert_int_equal(fdb_get(f->sw, &l), 0);

    /* A source with only the locally administered bit is fine. */
    send_frame(f, a, bcast, (struct mac){{0x02, 0, 0, 0, 0, 0}}, 64);
    settle(f);
    assert_int_equal(b->nlog, 1);
    sa = stats(a);
    assert_int_equal(sa.drops[VSW_DROP_BAD_SRC_MAC], 5);
}

static void vsw_forward__longer_than_egress_max_frame__too_big_on_that_port_only(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    vsw_port_set_max_frame(&c->base, 100);

    uint32_t s101 = send_frame(f, a, bcast, host(f, 0, 1), 101);
    uint32_t s100 = send_frame(f, a, bcast, host(f, 0, 1), 100);
    settle(f);
    assert_int_equal(tp_count_seq(b, s101), 1);
    assert_int_equal(tp_count_seq(b, s100), 1);
    assert_int_equal(tp_count_seq(c, s101), 0);
    assert_int_equal(tp_count_seq(c, s100), 1);
    struct vsw_port_stats sa = stats(a), sb = stats(b), sc = stats(c);
    assert_int_equal(sc.drops[VSW_DROP_TOO_BIG], 1);
    assert_int_equal(drops_total(&sc), 1);
    assert_int_equal(drops_total(&sa) + drops_total(&sb), 0);
    assert_int_equal(sc.tx_packets, 1);

    /* Unicast to C: same limit, never truncated. */
    learn(f, f->sw, c, host(f, 2, 1));
    send_frame(f, a, host(f, 2, 1), host(f, 0, 1), 200);
    settle(f);
    assert_int_equal(c->nlog + b->nlog, 0);
    sc = stats(c);
    assert_int_equal(sc.drops[VSW_DROP_TOO_BIG], 2);

    /* Default limit: 1514 bytes (1500 + header, no FCS). A may send more
     * (a device that receives more than it sends). */
    vsw_port_set_rx_max_frame(&a->base, 9014);
    uint32_t s1515 = send_frame(f, a, bcast, host(f, 0, 1), 1515);
    uint32_t s1514 = send_frame(f, a, bcast, host(f, 0, 1), 1514);
    settle(f);
    assert_int_equal(tp_count_seq(b, s1515), 0);
    assert_int_equal(tp_count_seq(b, s1514), 1);
    sb = stats(b);
    assert_int_equal(sb.drops[VSW_DROP_TOO_BIG], 1);
}

static void vsw_forward__flood_with_no_other_port_up__no_destination(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    send_frame(f, a, bcast, host(f, 0, 1), 64);
    settle(f);
    struct vsw_port_stats sa = stats(a);
    assert_int_equal(sa.drops[VSW_DROP_NO_DEST], 1);

    struct test_port *b = port_add(f, f->sw, "B", false);
    send_frame(f, a, bcast, host(f, 0, 1), 64);
    send_frame(f, a, host(f, 5, 5), host(f, 0, 1), 64);
    settle(f);
    sa = stats(a);
    assert_int_equal(sa.drops[VSW_DROP_NO_DEST], 3);
    assert_int_equal(drops_total(&sa), 3);
    assert_int_equal(sa.rx_packets, 3);
    assert_int_equal(b->nlog, 0);
    struct vsw_port_stats sb = stats(b);
    assert_int_equal(drops_total(&sb), 0);
}

static void vsw_forward__learned_port_link_down__dropped_link_down(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    learn(f, f->sw, b, host(f, 1, 1));
    vsw_port_set_link(&b->base, false);
    send_frame(f, a, host(f, 1, 1), host(f, 0, 1), 64);
    settle(f);
    assert_int_equal(a->nlog + b->nlog + c->nlog, 0);
    struct vsw_port_stats sb = stats(b);
    assert_int_equal(sb.drops[VSW_DROP_LINK_DOWN], 1);
    assert_int_equal(sb.tx_packets, 0);
}

static void vsw_forward__two_switches__isolated(void **state)
{
    struct fixture *f = *state;
    struct vsw_switch *sw2 = switch_new(f, "sw1", 0, 0);
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, sw2, "C", true);
    struct test_port *d = port_add(f, sw2, "D", true);

    uint32_t sa = send_frame(f, a, bcast, host(f, 0, 1), 64);
    uint32_t sc = send_frame(f, c, bcast, host(f, 2, 1), 64);
    assert_true(wait_fdb(f, f->sw, host(f, 0, 1), a, WAIT_MS));
    assert_true(wait_fdb(f, sw2, host(f, 2, 1), c, WAIT_MS));
    settle(f);
    assert_int_equal(b->nlog, 1);
    assert_int_equal(tp_count_seq(b, sa), 1);
    assert_int_equal(d->nlog, 1);
    assert_int_equal(tp_count_seq(d, sc), 1);
    assert_int_equal(a->nlog + c->nlog, 0);

    struct fdb_list l;
    fdb_get(f->sw, &l);
    assert_int_equal(l.n, 1);
    assert_null(fdb_find(&l, host(f, 2, 1)));
    fdb_get(sw2, &l);
    assert_int_equal(l.n, 1);
    assert_null(fdb_find(&l, host(f, 0, 1)));

    /* A's address means nothing in sw1: flooded there, never to A. */
    clear_logs(f);
    uint32_t s = send_frame(f, c, host(f, 0, 1), host(f, 2, 1), 64);
    settle(f);
    assert_int_equal(tp_count_seq(d, s), 1);
    assert_int_equal(a->nlog + b->nlog, 0);
    /* Same the other way round, and port lists are per switch. */
    s = send_frame(f, b, host(f, 2, 1), host(f, 1, 1), 64);
    settle(f);
    assert_int_equal(tp_count_seq(a, s), 1);
    assert_int_equal(c->nlog, 0);
    assert_int_equal(d->nlog, 1);
    struct vsw_port *ports[4];
    assert_int_equal(vsw_switch_ports(sw2, ports, 4), 2);
    assert_ptr_equal(ports[0], &c->base);
    assert_ptr_equal(ports[1], &d->base);
    assert_ptr_equal(vsw_port_switch(&c->base), sw2);
    assert_ptr_equal(vsw_port_switch(&a->base), f->sw);
}

/*
 * Aging (with the shortest aging time a switch takes): A keeps talking, B
 * is silent. Ticks while B's entry is younger than the aging time keep it;
 * once it is older, it stays until the next tick (dump does not age), which
 * removes it and only it.
 */
static void vsw_dp_tick__idle_and_refreshed_entries__idle_aged_out_refreshed_kept(void **state)
{
    struct fixture *f = *state;
    struct vsw_switch *sw = switch_new(f, "aging", 0, AGING_S);
    struct test_port *a = port_add(f, sw, "A", true);
    struct test_port *b = port_add(f, sw, "B", true);
    struct test_port *c = port_add(f, sw, "C", true);
    learn(f, sw, a, host(f, 0, 1));
    learn(f, sw, b, host(f, 1, 1));

    struct fdb_list l;
    unsigned ticks = 0;
    uint64_t end = now_us() + (AGING_S + 10) * 1000000ull;
    for (;;) {
        assert_true(now_us() < end);
        send_frame(f, a, host(f, 2, 9), host(f, 0, 1), 64);
        sleep_ms(200);
        pump(f);
        fdb_get(sw, &l);
        const struct vsw_fdb_entry *ea = fdb_find(&l, host(f, 0, 1));
        const struct vsw_fdb_entry *eb = fdb_find(&l, host(f, 1, 1));
        assert_non_null(ea);
        assert_ptr_equal(ea->port, &a->base);
        assert_true(ea->age_s <= 1);
        assert_non_null(eb);
        assert_ptr_equal(eb->port, &b->base);
        if (eb->age_s > AGING_S)
            break;
        if (eb->age_s < AGING_S) {
            vsw_dp_tick(g_dp);
            ticks++;
            fdb_get(sw, &l);
            assert_non_null(fdb_find(&l, host(f, 1, 1)));
            assert_non_null(fdb_find(&l, host(f, 0, 1)));
        }
    }
    /* Ticks ran all through B's life, not only at its end: about five a
     * second on a quiet machine; at least one a second however loaded
     * (two helpers saw a loaded machine fall short of five: the loop's
     * sleeps and pumps took longer, the ages are wall-clock seconds). */
    assert_true(ticks >= AGING_S);

    vsw_dp_tick(g_dp);
    assert_int_equal(fdb_get(sw, &l), 1);
    assert_non_null(fdb_find(&l, host(f, 0, 1)));

    /* B is unknown again: flooded. */
    clear_logs(f);
    uint32_t s = send_frame(f, a, host(f, 1, 1), host(f, 0, 1), 64);
    settle(f);
    assert_int_equal(tp_count_seq(b, s), 1);
    assert_int_equal(tp_count_seq(c, s), 1);
}

static void vsw_fdb__table_full__learning_stops_frames_still_flooded(void **state)
{
    struct fixture *f = *state;
    enum { MAX = FDB_SMALL, N = FDB_SMALL + 8 };
    struct vsw_switch *sw = switch_new(f, "small", MAX, 0);
    struct test_port *a = port_add(f, sw, "A", true);
    struct test_port *b = port_add(f, sw, "B", true);
    struct test_port *c = port_add(f, sw, "C", true);
    for (unsigned h = 0; h < N; h++)
        send_frame(f, a, bcast, host(f, 0, h), 64);
    settle(f);
    pump(f);
    assert_int_equal(b->nlog, N);
    assert_int_equal(c->nlog, N);
    struct fdb_list l;
    assert_int_equal(fdb_get(sw, &l), MAX);

    /* Asking again (after the workers' one-second learning cache) changes
     * nothing. */
    sleep_ms(1100);
    for (unsigned h = 0; h < N; h++)
        send_frame(f, a, bcast, host(f, 0, h), 64);
    settle(f);
    pump(f);
    assert_int_equal(fdb_get(sw, &l), MAX);
    bool learned[N];
    for (unsigned h = 0; h < N; h++) {
        const struct vsw_fdb_entry *e = fdb_find(&l, host(f, 0, h));
        learned[h] = e != NULL;
        if (e)
            assert_ptr_equal(e->port, &a->base);
    }

    /* B's own address cannot be learned either, but B's frames go out:
     * to A only for the learned addresses, flooded for the others. */
    clear_logs(f);
    uint32_t seqs[N];
    for (unsigned h = 0; h < N; h++)
        seqs[h] = send_frame(f, b, host(f, 0, h), host(f, 1, 1), 64);
    settle(f);
    assert_int_equal(a->nlog, N);
    assert_int_equal(c->nlog, N - MAX);
    for (unsigned h = 0; h < N; h++)
        assert_int_equal(tp_count_seq(c, seqs[h]), learned[h] ? 0 : 1);
    assert_int_equal(fixture_drops(f), 0);

    /* A flush makes room again, for as many. */
    vsw_fdb_flush(sw);
    assert_int_equal(fdb_get(sw, &l), 0);
    for (unsigned h = 0; h < N; h++)
        send_frame(f, c, bcast, host(f, 2, h), 64);
    settle(f);
    pump(f);
    assert_int_equal(fdb_get(sw, &l), MAX);
}

static void vsw_fdb_flush__learned_entries__gone_and_flooded_again(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    learn(f, f->sw, a, host(f, 0, 1));
    learn(f, f->sw, b, host(f, 1, 1));
    struct fdb_list l;
    assert_int_equal(fdb_get(f->sw, &l), 2);

    vsw_fdb_flush(f->sw);
    assert_int_equal(fdb_get(f->sw, &l), 0);
    uint32_t s = send_frame(f, c, host(f, 0, 1), host(f, 2, 1), 64);
    settle(f);
    assert_int_equal(tp_count_seq(a, s), 1);
    assert_int_equal(tp_count_seq(b, s), 1);
}

/* In a full table, so that entries left behind would also keep new ones
 * out (dump and forwarding already ignore a detached port's entries). */
static void vsw_port_detach__learned_entries__flushed(void **state)
{
    struct fixture *f = *state;
    struct vsw_switch *sw = switch_new(f, "small", FDB_SMALL, 0);
    struct test_port *a = port_add(f, sw, "A", true);
    struct test_port *b = port_add(f, sw, "B", true);
    struct test_port *c = port_add(f, sw, "C", true);
    learn(f, sw, a, host(f, 0, 1));
    for (unsigned h = 0; h < FDB_SMALL - 1; h++)
        send_frame(f, b, bcast, host(f, 1, h), 64);
    settle(f);
    pump(f);
    struct fdb_list l;
    assert_int_equal(fdb_get(sw, &l), FDB_SMALL);

    vsw_port_detach(&b->base);
    assert_null(vsw_port_switch(&b->base));
    assert_int_equal(fdb_get(sw, &l), 1);
    assert_non_null(fdb_find(&l, host(f, 0, 1)));
    struct vsw_port *ports[4];
    assert_int_equal(vsw_switch_ports(sw, ports, 4), 2);
    assert_ptr_equal(ports[0], &a->base);
    assert_ptr_equal(ports[1], &c->base);

    /* Gone, so flooded; and the room is free for C's addresses. */
    clear_logs(f);
    uint32_t s = send_frame(f, c, host(f, 1, 1), host(f, 2, 0), 64);
    for (unsigned h = 1; h < FDB_SMALL - 1; h++)
        send_frame(f, c, bcast, host(f, 2, h), 64);
    settle(f);
    pump(f);
    assert_int_equal(tp_count_seq(a, s), 1);
    assert_int_equal(b->nlog, 0);
    assert_int_equal(fdb_get(sw, &l), FDB_SMALL);
    for (unsigned h = 0; h < FDB_SMALL - 1; h++) {
        const struct vsw_fdb_entry *e = fdb_find(&l, host(f, 2, h));
        assert_non_null(e);
        assert_ptr_equal(e->port, &c->base);
    }

    /* Back in the switch, B has to be learned anew. */
    assert_int_equal(vsw_port_attach(sw, &b->base), 0);
    sleep_ms(20);
    pump(f);
    assert_int_equal(fdb_get(sw, &l), FDB_SMALL);
    assert_null(fdb_find(&l, host(f, 1, 1)));
}

static void vsw_forward__ports_on_different_workers__frames_handed_off(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    assert_int_not_equal(a->base.worker, b->base.worker);
    struct vsw_worker_stats ws[VSW_MAX_WORKERS];
    assert_int_equal(vsw_dp_worker_stats(g_dp, ws, VSW_MAX_WORKERS), 2);
    assert_int_equal(ws[a->base.worker].ports, 1);
    assert_int_equal(ws[b->base.worker].ports, 1);
    learn(f, f->sw, a, host(f, 0, 1));
    learn(f, f->sw, b, host(f, 1, 1));
    struct vsw_port_stats a0 = stats(a), b0 = stats(b);

    enum { N = 200 };
    for (unsigned i = 0; i < N; i++) {
        send_frame(f, a, host(f, 1, 1), host(f, 0, 1), (uint16_t)(60 + i % 50));
        send_frame(f, b, host(f, 0, 1), host(f, 1, 1), (uint16_t)(60 + i % 50));
    }
    assert_true(wait_rx(f, b, N, WAIT_MS));
    assert_true(wait_rx(f, a, N, WAIT_MS));
    settle(f);
    assert_int_equal(a->nlog, N);
    assert_int_equal(b->nlog, N);
    /* In order: one ring each way. */
    for (unsigned i = 1; i < N; i++) {
        assert_true(a->log[i].seq > a->log[i - 1].seq);
        assert_true(b->log[i].seq > b->log[i - 1].seq);
        assert_true(mac_eq(b->log[i].src, host(f, 0, 1)));
    }
    /* B transmitted on its own worker's lcore, A received on its own. */
    unsigned la = g_worker_lcore[a->base.worker], lb = g_worker_lcore[b->base.worker];
    assert_int_equal(b->base.counters[lb].tx_packets - b0.tx_packets, N);
    assert_int_equal(b->base.counters[la].tx_packets, 0);
    assert_int_equal(a->base.counters[la].rx_packets - a0.rx_packets, N);
    assert_int_equal(a->base.counters[la].tx_packets - a0.tx_packets, N);
    assert_int_equal(fixture_drops(f), 0);
    assert_int_equal(__atomic_load_n(&a->wrong_lcore, __ATOMIC_RELAXED), 0);
    assert_int_equal(__atomic_load_n(&b->wrong_lcore, __ATOMIC_RELAXED), 0);
}

/* The figures of worker w since the last vsw_dp_stats_clear(). */
static struct vsw_worker_stats since_clear(unsigned w)
{
    struct vsw_worker_stats ws[VSW_MAX_WORKERS];
    assert_int_equal(vsw_dp_worker_stats_since_clear(g_dp, ws, VSW_MAX_WORKERS), g_nworkers);
    return ws[w];
}

/* Port tp as worker w lists it: its rx/tx packets since the clear. */
static struct vsw_worker_port worker_port(unsigned w, const struct test_port *tp)
{
    struct vsw_worker_port wp[MAX_TP];
    unsigned n = vsw_dp_worker_ports(g_dp, w, wp, MAX_TP);
    assert_true(n <= MAX_TP);
    for (unsigned i = 0; i < n; i++)
        if (wp[i].port == &tp->base)
            return wp[i];
    fail_msg("worker %u does not list port %s", w, tp->base.name);
    return wp[0];
}

static uint64_t all_cycles(const struct vsw_worker_stats *s)
{
    return s->busy_cycles + s->idle_cycles + s->sleep_cycles;
}


/* A sender that keeps every frame it makes: sequence numbers 1..total,
 * each retried until the rx ring takes it, paced (a burst, then a pause)
 * so that a stalled owner's hand-off ring fills without overflowing. */
struct seq_sender {
    struct test_port *tp, *to;
    struct mac dst, src;
    uint32_t total;
    unsigned burst, pause_us;
    uint32_t sent; /* atomic */
};

static void *seq_sender_main(void *arg)
{
    struct seq_sender *s = arg;
    uint32_t seq = 0;
    while (seq < s->total) {
        /* Flow control, as a transport would: neither the destination's
         * hand-off ring nor its tx ring overflows however long a worker or
         * the collector is off its CPU (nor does the sender's own rx ring
         * hold more than the hand-off ring can still take). */
        while (rte_ring_count(s->to->base.handoff) > VSW_BURST * 16 ||
               rte_ring_count(s->to->tx) > TP_RING / 2 || rte_ring_count(s->tp->rx) > VSW_BURST * 8)
            usleep(50);
        struct rte_mbuf *ms[VSW_BURST];
        unsigned n = 0;
        while (n < s->burst && n < VSW_BURST && seq + n < s->total) {
            struct rte_mbuf *m = frame_new(s->dst, s->src, 64, seq + n + 1);
            if (!m)
                break;
            ms[n++] = m;
        }
        unsigned k = 0;
        while (k < n) {
            k += rte_ring_enqueue_burst(s->tp->rx, (void **)ms + k, n - k, NULL);
            tp_kick(s->tp);
            if (k < n)
                usleep(20);
        }
        seq += n;
        __atomic_store_n(&s->sent, seq, __ATOMIC_RELEASE);
        usleep(s->pause_us);
    }
    return NULL;
}

/* Take what the switch sent to tp and check it continues the sequence:
 * *next is the number expected next. Returns frames out of order or
 * missing (each frame's gap counts once). */
static unsigned seq_drain(struct test_port *tp, uint32_t *next)
{
    void *objs[64];
    unsigned n, bad = 0;
    while ((n = rte_ring_dequeue_burst(tp->tx, objs, 64, NULL)) > 0) {
        for (unsigned i = 0; i < n; i++) {
            struct rte_mbuf *m = objs[i];
            uint32_t seq;
            const void *p = rte_pktmbuf_read(m, 14, 4, &seq);
            memcpy(&seq, p, 4);
            if (seq != *next)
                bad++;
            *next = seq + 1;
            tp->drained++;
            rte_pktmbuf_free(m);
        }
    }
    return bad;
}

/* Takes what the switch sends to tp until frame total came or 4 WAIT_MS
 * passed, checking each continues the sequence (seq_drain()). */
struct seq_collector {
    struct test_port *tp;
    uint32_t next, total;
    unsigned bad;
};

static void *seq_collector_main(void *arg)
{
    struct seq_collector *c = arg;
    uint64_t end = 0;
    while (c->next <= c->total) {
        unsigned before = c->next;
        c->bad += seq_drain(c->tp, &c->next);
        if (c->next != before)
            end = 0;
        else if (!end)
            end = now_us() + 4 * WAIT_MS * 1000ull;
        else if (now_us() > end)
            break;
        usleep(50);
    }
    return NULL;
}

/* A load sample of an idle switch, twice: the next test's placement sees
 * idle workers again (ties by port count). */
static void loads_idle(struct fixture *f)
{
    struct vsw_move_report r;
    settle(f);
    assert_int_equal(vsw_dp_load_sample(g_dp, &r), 0);
    sleep_ms(5);
    assert_int_equal(vsw_dp_load_sample(g_dp, &r), 0);
}

/*
 * A port moves between the workers forty times while another worker's
 * port sends it frames numbered 1..N: every frame arrives, once, in order.
 * Before each move to the sender's worker the port's old owner stalls
 * (a slow rx_burst), so that the hand-off ring holds hundreds of the
 * sender's frames when the new owner takes the port: were they not sent
 * on before its own direct sends start, the direct ones would overtake
 * them. Data-path calls all on the owning worker (teardown checks).
 */
static void vsw_port_move__under_traffic__nothing_lost_or_reordered(void **state)
{
    struct fixture *f = *state;
    struct test_port *s = port_new(f, "S");
    struct test_port *p = port_new(f, "P");
    assert_int_equal(vsw_port_set_pin(&s->base, (int)g_worker_lcore[1]), 0);
    assert_int_equal(vsw_port_set_pin(&p->base, (int)g_worker_lcore[0]), 0);
    assert_int_equal(vsw_port_attach(f->sw, &s->base), 0);
    assert_int_equal(vsw_port_attach(f->sw, &p->base), 0);
    vsw_port_set_link(&s->base, true);
    vsw_port_set_link(&p->base, true);
    assert_int_equal(s->base.worker, 1);
    assert_int_equal(p->base.worker, 0);
    learn(f, f->sw, p, host(f, 1, 1));
    learn(f, f->sw, s, host(f, 0, 1));
    settle(f);
    while (rte_ring_count(p->tx))
        seq_drain(p, &(uint32_t){0});
    assert_int_equal(vsw_port_set_pin(&p->base, VSW_PIN_AUTO), 0);

    struct seq_sender snd = {.tp = s, .to = p, .dst = host(f, 1, 1), .src = host(f, 0, 1),
                             .total = 30000, .burst = 16, .pause_us = 100};
    struct seq_collector col = {.tp = p, .next = 1, .total = snd.total};
    pthread_t th, tc;
    assert_int_equal(pthread_create(&tc, NULL, seq_collector_main, &col), 0);
    assert_int_equal(pthread_create(&th, NULL, seq_sender_main, &snd), 0);
    unsigned moves = 0;
    for (unsigned k = 0; k < 40 && __atomic_load_n(&snd.sent, __ATOMIC_ACQUIRE) < snd.total;
         k++) {
        unsigned to = p->base.worker == 0 ? 1 : 0;
        if (to == 1) {
            __atomic_store_n(&p->stall_us, 3000, __ATOMIC_RELAXED);
            __atomic_store_n(&p->stall_calls, 1, __ATOMIC_RELEASE);
            tp_kick(p);
            uint64_t end = now_us() + WAIT_MS * 1000ull;
            while (!__atomic_load_n(&p->stalling, __ATOMIC_ACQUIRE) &&
                   __atomic_load_n(&p->stall_calls, __ATOMIC_ACQUIRE) && now_us() < end)
                usleep(50);
        }
        assert_int_equal(vsw_port_move(&p->base, to), 0);
        moves++;
        assert_int_equal(p->base.worker, to);
        sleep_ms(5);
    }
    pthread_join(th, NULL);
    pthread_join(tc, NULL);
    assert_true(moves >= 10);
    assert_int_equal(fixture_drops(f), 0);
    assert_int_equal(col.bad, 0);
    assert_int_equal(col.next, snd.total + 1);
    struct vsw_worker_port wp = worker_port(p->base.worker, p);
    assert_int_equal(wp.moves, moves);
    loads_idle(f);
}

/* VMQ off (weight 0): the port shares the switch's default queue, the
 * uplink's: attached before the uplink it waits on the first worker, and
 * moves to the uplink's worker when the uplink attaches; it follows the
 * uplink when a pin moves it. VMQ on again: placed by load, and no longer
 * follows. A pin and VMQ off exclude each other; an uplink has no VMQ
 * setting of its own. */
static void vsw_port_set_vmq__off__follows_the_uplinks_worker(void **state)
{
    struct fixture *f = *state;
    struct test_port *v = port_new(f, "V");
    assert_int_equal(vsw_port_vmq_weight(&v->base), VSW_VMQ_WEIGHT_DEFAULT);
    assert_int_equal(vsw_port_set_vmq(&v->base, 101), -EINVAL);
    assert_int_equal(vsw_port_set_vmq(&v->base, 0), 0);
    assert_int_equal(vsw_port_set_pin(&v->base, (int)g_worker_lcore[1]), -EBUSY);
    assert_int_equal(vsw_port_attach(f->sw, &v->base), 0);
    assert_int_equal(v->base.worker, 0);

    struct vsw_uplink_params up = {
        .devargs = "net_null_vmq", .port_name = "up", .mtu = 1500, .pool = g_pool};
    struct vsw_port *u = NULL;
    assert_int_equal(vsw_uplink_port_create(&up, &u), 0);
    assert_int_equal(vsw_port_set_vmq(u, 0), -EINVAL);
    assert_int_equal(vsw_port_set_pin(u, (int)g_worker_lcore[1]), 0);
    assert_int_equal(vsw_port_attach(f->sw, u), 0);
    assert_ptr_equal(vsw_switch_default_port(f->sw), u);
    assert_int_equal(u->worker, 1);
    assert_int_equal(v->base.worker, 1);

    assert_int_equal(vsw_port_set_pin(u, (int)g_worker_lcore[0]), 0);
    assert_int_equal(v->base.worker, 0);
    assert_int_equal(vsw_port_set_pin(u, (int)g_worker_lcore[1]), 0);
    assert_int_equal(v->base.worker, 1);

    /* On again: by load, and it no longer follows. */
    assert_int_equal(vsw_port_set_vmq(&v->base, 50), 0);
    assert_int_equal(vsw_port_vmq_weight(&v->base), 50);
    unsigned own = v->base.worker;
    assert_int_equal(vsw_port_set_pin(u, (int)g_worker_lcore[own == 0 ? 1 : 0]), 0);
    assert_int_equal(v->base.worker, own);
    assert_int_equal(vsw_port_set_pin(u, (int)g_worker_lcore[own]), 0);
    assert_int_equal(v->base.worker, own);
    /* Off again: at once onto the uplink's worker. */
    assert_int_equal(vsw_port_set_pin(u, (int)g_worker_lcore[1]), 0);
    assert_int_equal(vsw_port_set_vmq(&v->base, 0), 0);
    assert_int_equal(v->base.worker, 1);
    /* A pinned port cannot turn VMQ off. */
    assert_int_equal(vsw_port_set_vmq(&v->base, 100), 0);
    assert_int_equal(vsw_port_set_pin(&v->base, (int)g_worker_lcore[0]), 0);
    assert_int_equal(vsw_port_set_vmq(&v->base, 0), -EBUSY);
    assert_int_equal(vsw_port_vmq_weight(&v->base), 100);
    assert_int_equal(v->base.worker, 0);
    vsw_port_destroy(u);
}

/*
 * The port that *sends* moves, onto the worker that owns the destination:
 * the frames its old worker handed to the destination's ring must leave
 * before the ones its new worker sends directly. Before each move to P's
 * worker, that worker stalls (a slow rx_burst on P) while S's old worker
 * keeps filling P's hand-off ring with S's frames (hundreds, more than one
 * round's VSW_BURST), then S moves: every frame arrives at P once, in
 * order.
 */
static void vsw_port_move__sender_onto_destination_owner__nothing_reordered(void **state)
{
    struct fixture *f = *state;
    struct test_port *s = port_new(f, "S");
    struct test_port *p = port_new(f, "P");
    assert_int_equal(vsw_port_set_pin(&s->base, (int)g_worker_lcore[0]), 0);
    assert_int_equal(vsw_port_set_pin(&p->base, (int)g_worker_lcore[1]), 0);
    assert_int_equal(vsw_port_attach(f->sw, &p->base), 0);
    assert_int_equal(vsw_port_attach(f->sw, &s->base), 0);
    vsw_port_set_link(&s->base, true);
    vsw_port_set_link(&p->base, true);
    learn(f, f->sw, p, host(f, 1, 1));
    learn(f, f->sw, s, host(f, 0, 1));
    settle(f);
    while (rte_ring_count(p->tx))
        seq_drain(p, &(uint32_t){0});
    assert_int_equal(vsw_port_set_pin(&s->base, VSW_PIN_AUTO), 0);

    struct seq_sender snd = {.tp = s, .to = p, .dst = host(f, 1, 1), .src = host(f, 0, 1),
                             .total = 60000, .burst = 16, .pause_us = 100};
    struct seq_collector col = {.tp = p, .next = 1, .total = snd.total};
    pthread_t th, tc;
    assert_int_equal(pthread_create(&tc, NULL, seq_collector_main, &col), 0);
    assert_int_equal(pthread_create(&th, NULL, seq_sender_main, &snd), 0);
    unsigned moves = 0, full = 0;
    for (unsigned k = 0; k < 80 && __atomic_load_n(&snd.sent, __ATOMIC_ACQUIRE) < snd.total &&
                        (moves < 10 || full < 4);
         k++) {
        unsigned to = s->base.worker == 0 ? 1 : 0;
        if (to == 1) {
            /* P's worker slows down (every round 300 us) and falls
             * behind: S's frames pile up in P's ring, and are still there
             * when S moves. */
            __atomic_store_n(&p->stall_us, 300, __ATOMIC_RELAXED);
            __atomic_store_n(&p->stall_calls, 100, __ATOMIC_RELEASE);
            tp_kick(p);
            uint64_t end = now_us() + WAIT_MS * 1000ull;
            while (!__atomic_load_n(&p->stalling, __ATOMIC_ACQUIRE) &&
                   __atomic_load_n(&p->stall_calls, __ATOMIC_ACQUIRE) && now_us() < end)
                usleep(50);
            end = now_us() + 20000;
            while (rte_ring_count(p->base.handoff) <= 3 * VSW_BURST && now_us() < end)
                usleep(50);
            full += rte_ring_count(p->base.handoff) > 3 * VSW_BURST;
        }
        assert_int_equal(vsw_port_move(&s->base, to), 0);
        moves++;
        sleep_ms(5);
    }
    pthread_join(th, NULL);
    pthread_join(tc, NULL);
    assert_true(moves >= 10);
    assert_true(full >= 4);
    assert_int_equal(fixture_drops(f), 0);
    assert_int_equal(col.bad, 0);
    assert_int_equal(col.next, snd.total + 1);
    loads_idle(f);
}

static uint64_t wakeups_of(unsigned w)
{
    struct vsw_worker_stats ws[VSW_MAX_WORKERS];
    assert_true(vsw_dp_worker_stats(g_dp, ws, VSW_MAX_WORKERS) > w);
    return ws[w].wakeups;
}

/*
 * After a move, the port's own wake-up (its wait fd: a VM's channel
 * signal) is in the new owner's poll set and no longer in the old one's:
 * with both workers asleep, a signal on the moved port ends the new
 * owner's sleep (counted as a wake-up, not the nap's timeout) and not the
 * old owner's, and the new owner takes the frame.
 */
static void vsw_port_move__port_signals_after_move__wakes_the_new_owner_only(void **state)
{
    struct fixture *f = *state;
    struct test_port *p = port_new(f, "P");
    assert_int_equal(vsw_port_set_pin(&p->base, (int)g_worker_lcore[0]), 0);
    assert_int_equal(vsw_port_attach(f->sw, &p->base), 0);
    vsw_port_set_link(&p->base, true);
    settle(f);
    for (unsigned k = 0; k < 4; k++) {
        unsigned from = p->base.worker, to = from == 0 ? 1 : 0;
        assert_int_equal(vsw_port_set_pin(&p->base, (int)g_worker_lcore[to]), 0);
        assert_int_equal(p->base.worker, to);
        /* Both asleep (each sleeps 200 us after its last work). */
        sleep_ms(20);
        uint64_t old_w = wakeups_of(from), new_w = wakeups_of(to);
        uint64_t calls = __atomic_load_n(&p->rx_calls, __ATOMIC_RELAXED);
        /* A frame nobody else takes (P is the switch's only port). */
        struct rte_mbuf *m = frame_new(bcast, host(f, 0, 1), 64, k + 1);
        assert_non_null(m);
        assert_int_equal(rte_ring_enqueue(p->rx, m), 0);
        tp_kick(p);
        uint64_t end = now_us() + WAIT_MS * 1000ull;
        while (!rte_ring_empty(p->rx) && now_us() < end)
            usleep(100);
        assert_true(rte_ring_empty(p->rx));
        assert_true(__atomic_load_n(&p->rx_calls, __ATOMIC_RELAXED) > calls);
        assert_true(wakeups_of(to) > new_w);
        assert_int_equal(wakeups_of(from), old_w);
    }
}

/* A pin to an lcore no worker runs on: refused for an attached port; one
 * a detached port carries (from a state file) is kept and reported, and
 * the port is placed by load. Pinning an attached port moves it. */
static void vsw_port_set_pin__lcore_without_worker__enoent_or_reported_and_placed_auto(
    void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    assert_int_equal(vsw_port_set_pin(&a->base, 77), -ENOENT);
    assert_int_equal(vsw_port_pin(&a->base), VSW_PIN_AUTO);
    assert_int_equal(vsw_port_set_pin(&a->base, -5), -EINVAL);
    unsigned other = a->base.worker == 0 ? 1 : 0;
    assert_int_equal(vsw_port_set_pin(&a->base, (int)g_worker_lcore[other]), 0);
    assert_int_equal(a->base.worker, other);
    assert_int_equal(vsw_port_worker_lcore(&a->base), g_worker_lcore[other]);
    struct vsw_placement_stats ps;
    vsw_dp_placement_stats(g_dp, &ps);
    assert_true(ps.pin_moves >= 1);

    struct test_port *b = port_new(f, "B");
    assert_int_equal(vsw_port_set_pin(&b->base, 77), 0);
    assert_int_equal(vsw_port_attach(f->sw, &b->base), 0);
    assert_true(vsw_port_pin_missing(&b->base));
    assert_int_equal(vsw_port_pin(&b->base), 77);
    /* Placed automatically: the worker with fewer ports. */
    assert_int_not_equal(b->base.worker, other);
    struct vsw_worker_port wp = worker_port(b->base.worker, b);
    assert_int_equal(wp.pin_lcore, 77);
    assert_true(wp.pin_missing);
}

/*
 * A new port goes to the worker with the least measured load, not the one
 * with the fewest ports: one of worker 0's two ports keeps it busy with
 * control messages, worker 1 polls three idle ones; after two load
 * samples a new port goes to worker 1. The busy port's load shows in its
 * load share.
 */
static void vsw_port_attach__one_worker_busy__new_port_on_the_least_loaded(void **state)
{
    struct fixture *f = *state;
    struct test_port *tp[5];
    const char *names[5] = {"A", "D", "B", "C", "G"};
    for (unsigned i = 0; i < 5; i++) {
        tp[i] = port_new(f, names[i]);
        assert_int_equal(vsw_port_set_pin(&tp[i]->base, (int)g_worker_lcore[i < 2 ? 0 : 1]), 0);
        assert_int_equal(vsw_port_attach(f->sw, &tp[i]->base), 0);
        vsw_port_set_link(&tp[i]->base, true);
    }
    struct vsw_move_report r;
    /* Control messages without end: worker 0 never idles. */
    __atomic_store_n(&tp[0]->backlog, UINT64_MAX / 2, __ATOMIC_RELEASE);
    tp_kick(tp[0]);
    assert_int_equal(vsw_dp_load_sample(g_dp, &r), 0);
    for (unsigned i = 0; i < 50; i++) {
        pump(f);
        sleep_ms(2);
    }
    assert_int_equal(vsw_dp_load_sample(g_dp, &r), 0);
    struct test_port *e = port_add(f, f->sw, "E", true);
    assert_int_equal(e->base.worker, 1);
    assert_true(worker_port(0, tp[0]).load_pct > 0.0);
    assert_true(worker_port(0, tp[0]).cycles > 0);
    assert_true(worker_port(0, tp[0]).load_pct > worker_port(0, tp[1]).load_pct);
    __atomic_store_n(&tp[0]->backlog, 0, __ATOMIC_RELEASE);
    loads_idle(f);
}

/*
 * worker-show's counters add up: frames A sends to B (the other worker)
 * and to C (A's worker) show up as A's worker's rx, as tx on the worker
 * that owns each destination, and in the ports' counts; busy and total
 * cycles grow; cycles per packet is busy cycles over received frames; a
 * new baseline reads zero and grows again from there. Counts, not times.
 */
static void vsw_dp_worker_stats__frames_through_ports__add_up_since_the_baseline(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    unsigned wa = a->base.worker, wb = b->base.worker;
    assert_int_not_equal(wa, wb);
    assert_int_equal(c->base.worker, wa);
    learn(f, f->sw, a, host(f, 0, 1));
    learn(f, f->sw, b, host(f, 1, 1));
    learn(f, f->sw, c, host(f, 2, 1));
    settle(f);

    vsw_dp_stats_clear(g_dp);
    struct vsw_worker_stats z = since_clear(wa);
    assert_int_equal(z.rx_packets, 0);
    assert_int_equal(z.tx_packets, 0);
    assert_int_equal(z.busy_rounds, 0);
    assert_int_equal(z.busy_cycles, 0);
    assert_true(z.ports == 2);
    assert_int_equal(worker_port(wa, a).rx_packets, 0);
    assert_int_equal(worker_port(wa, c).tx_packets, 0);
    assert_int_equal(worker_port(wb, b).tx_packets, 0);
    /* Polling order: A, then C. */
    struct vsw_worker_port order[MAX_TP];
    assert_int_equal(vsw_dp_worker_ports(g_dp, wa, order, MAX_TP), 2);
    assert_ptr_equal(order[0].port, &a->base);
    assert_ptr_equal(order[1].port, &c->base);
    assert_int_equal(vsw_dp_worker_ports(g_dp, g_nworkers, order, MAX_TP), 0);
    struct vsw_worker_stats raw0[VSW_MAX_WORKERS];
    vsw_dp_worker_stats(g_dp, raw0, VSW_MAX_WORKERS);

    enum { NB = 10, NC = 7 };
    for (unsigned i = 0; i < NB; i++)
        send_frame(f, a, host(f, 1, 1), host(f, 0, 1), 64);
    for (unsigned i = 0; i < NC; i++)
        send_frame(f, a, host(f, 2, 1), host(f, 0, 1), 64);
    assert_true(wait_rx(f, b, NB, WAIT_MS));
    assert_true(wait_rx(f, c, NC, WAIT_MS));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);

    struct vsw_worker_stats sa = since_clear(wa), sb = since_clear(wb);
    assert_int_equal(sa.rx_packets, NB + NC);
    assert_int_equal(sa.tx_packets, NC); /* B's frames went to its owner's ring */
    assert_int_equal(sb.rx_packets, 0);
    assert_int_equal(sb.tx_packets, NB);
    assert_int_equal(worker_port(wa, a).rx_packets, NB + NC);
    assert_int_equal(worker_port(wa, a).tx_packets, 0);
    assert_int_equal(worker_port(wa, c).tx_packets, NC);
    assert_int_equal(worker_port(wb, b).tx_packets, NB);
    assert_true(sa.busy_rounds > 0 && sb.busy_rounds > 0);
    assert_true(sa.busy_cycles >= sa.busy_rounds);
    assert_true(sb.busy_cycles >= sb.busy_rounds);
    assert_true(sa.rounds >= sa.busy_rounds);
    assert_true(vsw_worker_cycles_per_packet(&sa) == (double)sa.busy_cycles / (NB + NC));
    assert_true(vsw_worker_cycles_per_packet(&sb) == 0.0); /* received nothing */
    double pct = vsw_worker_busy_pct(&sa);
    assert_true(pct > 0.0 && pct <= 100.0);
    /* The whole time is accounted: it grew, and the totals are the
     * baseline plus what came since. */
    struct vsw_worker_stats raw1[VSW_MAX_WORKERS];
    vsw_dp_worker_stats(g_dp, raw1, VSW_MAX_WORKERS);
    for (unsigned w = 0; w < g_nworkers; w++) {
        assert_true(all_cycles(&raw1[w]) > all_cycles(&raw0[w]));
        assert_true(raw1[w].busy_cycles > raw0[w].busy_cycles);
        assert_true(raw1[w].rx_packets - raw0[w].rx_packets == (w == wa ? NB + NC : 0));
    }

    /* A new baseline: zero again, then only what follows. */
    vsw_dp_stats_clear(g_dp);
    sa = since_clear(wa);
    assert_int_equal(sa.rx_packets, 0);
    assert_int_equal(sa.busy_cycles, 0);
    assert_int_equal(worker_port(wa, a).rx_packets, 0);
    assert_int_equal(worker_port(wb, b).tx_packets, 0);
    for (unsigned i = 0; i < 3; i++)
        send_frame(f, a, host(f, 1, 1), host(f, 0, 1), 64);
    assert_true(wait_rx(f, b, NB + 3, WAIT_MS));
    settle(f);
    sa = since_clear(wa);
    sb = since_clear(wb);
    assert_int_equal(sa.rx_packets, 3);
    assert_int_equal(sb.tx_packets, 3);
    assert_true(sa.busy_cycles > 0);
    assert_int_equal(worker_port(wa, a).rx_packets, 3);
    assert_int_equal(worker_port(wb, b).tx_packets, 3);
}

/*
 * A floods to C alone; C leaves and rejoins the switch (on the other
 * worker, so frames travel through its hand-off ring) while a thread keeps
 * injecting on A. Each frame has at most one destination, so every frame A
 * received must show up exactly once: delivered to C, dropped on C for a
 * reason, or dropped on A as no_destination while C was out.
 */
static void vsw_port_attach_detach__under_traffic__every_frame_accounted(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    assert_int_not_equal(a->base.worker, c->base.worker);
    injector_start(f, a, bcast, host(f, 0, 1), 128);

    unsigned seed = 12345u + f->tag;
    enum { CYCLES = 200 };
    for (unsigned i = 0; i < CYCLES; i++) {
        usleep(100 + (unsigned)rand_r(&seed) % 700);
        tp_drain(c);
        vsw_dp_process(g_dp);
        vsw_port_detach(&c->base);
        tp_drain(c);
        usleep((unsigned)rand_r(&seed) % 300);
        assert_int_equal(vsw_port_attach(f->sw, &c->base), 0);
        assert_int_not_equal(a->base.worker, c->base.worker);
    }
    uint64_t injected = injector_stop(f);
    settle(f);

    struct vsw_port_stats sa = stats(a), sc = stats(c);
    uint64_t c_drops = drops_total(&sc);
    print_message("injected %llu: A rx %llu no_dest %llu; C tx %llu drained %llu drops %llu "
                  "(queue_full %llu link_down %llu)\n",
                  (unsigned long long)injected, (unsigned long long)sa.rx_packets,
                  (unsigned long long)sa.drops[VSW_DROP_NO_DEST],
                  (unsigned long long)sc.tx_packets, (unsigned long long)c->drained,
                  (unsigned long long)c_drops, (unsigned long long)sc.drops[VSW_DROP_QUEUE_FULL],
                  (unsigned long long)sc.drops[VSW_DROP_LINK_DOWN]);
    /* The traffic really overlapped the churn. */
    assert_true(sa.drops[VSW_DROP_NO_DEST] > 0);
    assert_true(sc.tx_packets > 0);
    /* A received every frame (drops after reception are counted on top
     * of rx_packets), and only ever dropped for want of a destination. */
    assert_int_equal(sa.rx_packets, injected);
    assert_int_equal(sa.drops[VSW_DROP_NO_DEST], drops_total(&sa));
    assert_int_equal(c->drained, sc.tx_packets);
    assert_int_equal(sa.rx_packets, sa.drops[VSW_DROP_NO_DEST] + sc.tx_packets + c_drops);
}

static void vsw_port_get_stats__summed_over_lcores__match_injected(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    assert_int_equal(a->base.worker, c->base.worker);
    assert_int_not_equal(a->base.worker, b->base.worker);
    vsw_port_set_max_frame(&c->base, 100);

    /* A: 20 broadcasts of 60..79 bytes, to B and C. */
    for (unsigned i = 0; i < 20; i++)
        send_frame(f, a, bcast, host(f, 0, 1), (uint16_t)(60 + i));
    settle(f);
    /* B: 10 broadcasts of 150 bytes, to A; too big for C (counted by B's
     * worker, whose lcore is not C's). */
    for (unsigned i = 0; i < 10; i++)
        send_frame(f, b, bcast, host(f, 1, 1), 150);
    settle(f);
    /* C: 5 frames of 64 bytes to A's address, learned by now. */
    assert_true(wait_fdb(f, f->sw, host(f, 0, 1), a, WAIT_MS));
    for (unsigned i = 0; i < 5; i++)
        send_frame(f, c, host(f, 0, 1), host(f, 2, 1), 64);
    settle(f);

    struct vsw_port_stats sa = stats(a), sb = stats(b), sc = stats(c);
    assert_int_equal(sa.rx_packets, 20);
    assert_int_equal(sa.rx_bytes, 1390);
    assert_int_equal(sa.tx_packets, 15);
    assert_int_equal(sa.tx_bytes, 10 * 150 + 5 * 64);
    assert_int_equal(sb.rx_packets, 10);
    assert_int_equal(sb.rx_bytes, 1500);
    assert_int_equal(sb.tx_packets, 20);
    assert_int_equal(sb.tx_bytes, 1390);
    assert_int_equal(sc.rx_packets, 5);
    assert_int_equal(sc.rx_bytes, 320);
    assert_int_equal(sc.tx_packets, 20);
    assert_int_equal(sc.tx_bytes, 1390);
    assert_int_equal(sc.drops[VSW_DROP_TOO_BIG], 10);
    assert_int_equal(drops_total(&sa) + drops_total(&sb) + drops_total(&sc), 10);
    assert_int_equal(a->nlog, 15);
    assert_int_equal(b->nlog, 20);
    assert_int_equal(c->nlog, 20);

    /* C's counters are spread over two lcores; the sum is what counts. */
    unsigned lb = g_worker_lcore[b->base.worker], lc = g_worker_lcore[c->base.worker];
    assert_int_equal(c->base.counters[lb].drops[VSW_DROP_TOO_BIG], 10);
    assert_int_equal(c->base.counters[lc].tx_packets, 20);
    for (unsigned i = 0; i < 3; i++) {
        const struct vsw_port *p = &f->tp[i]->base;
        struct vsw_port_stats s = stats(f->tp[i]), sum;
        memset(&sum, 0, sizeof(sum));
        for (unsigned l = 0; l < RTE_MAX_LCORE; l++) {
            sum.rx_packets += p->counters[l].rx_packets;
            sum.rx_bytes += p->counters[l].rx_bytes;
            sum.tx_packets += p->counters[l].tx_packets;
            sum.tx_bytes += p->counters[l].tx_bytes;
            for (int d = 0; d < VSW_DROP_COUNT; d++)
                sum.drops[d] += p->counters[l].drops[d];
        }
        assert_memory_equal(&s, &sum, sizeof(s));
    }
}

static void vsw_dp__idle_then_frame__workers_sleep_and_wake_promptly(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    unsigned wa = a->base.worker, wb = b->base.worker;
    assert_int_not_equal(wa, wb);
    learn(f, f->sw, a, host(f, 0, 1));
    learn(f, f->sw, b, host(f, 1, 1));

    /* Idle: no busy rounds, a nap every ~100 ms, nothing waking them. */
    sleep_ms(300);
    struct vsw_worker_stats s1[VSW_MAX_WORKERS], s2[VSW_MAX_WORKERS];
    vsw_dp_worker_stats(g_dp, s1, VSW_MAX_WORKERS);
    sleep_ms(500);
    vsw_dp_worker_stats(g_dp, s2, VSW_MAX_WORKERS);
    for (unsigned w = 0; w < g_nworkers; w++) {
        assert_int_equal(s2[w].busy_rounds, s1[w].busy_rounds);
        assert_true(s2[w].sleeps >= s1[w].sleeps + 2);
        assert_true(s2[w].sleeps <= s1[w].sleeps + 20);
        assert_int_equal(s2[w].wakeups, s1[w].wakeups);
    }

    /* A frame wakes A's worker (its port's eventfd), which hands it to
     * B's sleeping worker (its wake fd): both woken, delivered long before
     * the 100 ms nap would have ended. */
    unsigned good = 0, n = 0;
    uint64_t best = UINT64_MAX;
    for (unsigned t = 0; t < 5; t++) {
        sleep_ms(150);
        vsw_dp_worker_stats(g_dp, s1, VSW_MAX_WORKERS);
        uint64_t t0 = now_us();
        send_frame(f, a, host(f, 1, 1), host(f, 0, 1), 64);
        n++;
        assert_true(wait_rx(f, b, n, WAIT_MS));
        uint64_t lat = now_us() - t0;
        vsw_dp_worker_stats(g_dp, s2, VSW_MAX_WORKERS);
        bool woke = s2[wa].wakeups > s1[wa].wakeups && s2[wb].wakeups > s1[wb].wakeups;
        print_message("trial %u: %llu us, woken %d/%d\n", t, (unsigned long long)lat,
                      (int)(s2[wa].wakeups - s1[wa].wakeups),
                      (int)(s2[wb].wakeups - s1[wb].wakeups));
        if (lat < best)
            best = lat;
        if (woke && lat < 50000)
            good++;
    }
    assert_true(good >= 4);
    assert_true(best < 10000);
}

/*
 * A guest can signal its channel with nothing in its ring, as often as its
 * hypercalls go: each signal wakes its worker. A wake-up that finds no work
 * must cost the worker a round, not idle_sleep_us (200 us) of polling:
 * otherwise some 5000 empty signals a second keep a worker from sleeping at
 * all, its CPU spent on nothing. Counted, not timed: rounds per sleep.
 */
static void vsw_dp__wakeups_without_work__back_to_sleep_after_a_round(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    unsigned w = a->base.worker;
    sleep_ms(300);
    struct vsw_worker_stats s1[VSW_MAX_WORKERS], s2[VSW_MAX_WORKERS];
    vsw_dp_worker_stats(g_dp, s1, VSW_MAX_WORKERS);
    enum { K = 100 };
    for (unsigned i = 0; i < K; i++) {
        tp_kick(a); /* a signal, no frame */
        sleep_ms(2);
    }
    vsw_dp_worker_stats(g_dp, s2, VSW_MAX_WORKERS);
    uint64_t rounds = s2[w].rounds - s1[w].rounds, sleeps = s2[w].sleeps - s1[w].sleeps;
    uint64_t wakeups = s2[w].wakeups - s1[w].wakeups;
    print_message("%llu wake-ups without work: %llu rounds, %llu sleeps\n",
                  (unsigned long long)wakeups, (unsigned long long)rounds,
                  (unsigned long long)sleeps);
    assert_int_equal(s2[w].busy_rounds, s1[w].busy_rounds);
    assert_true(wakeups >= K / 2); /* it was asleep when most came */
    if (rounds > 4 * sleeps)
        fail_msg("%llu rounds for %llu sleeps: each empty wake-up keeps the worker polling",
                 (unsigned long long)rounds, (unsigned long long)sleeps);
}

/*
 * A port whose peer floods it with control messages (no frames) shares a
 * worker with C. Every round polls both, each with the worker's budget; the
 * flooded port's work keeps its worker polling (rounds count as busy) and it
 * never tries to sleep while that work is pending; C's frames still go
 * through in the same rounds.
 */
static void vsw_dp__port_with_control_backlog__round_robin_and_no_sleep_attempts(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    unsigned w = a->base.worker;
    assert_int_equal(c->base.worker, w);
    assert_int_not_equal(b->base.worker, w);
    learn(f, f->sw, b, host(f, 1, 1));
    learn(f, f->sw, c, host(f, 2, 1));

    __atomic_store_n(&a->peer, c, __ATOMIC_RELEASE);
    __atomic_store_n(&a->backlog, UINT64_MAX / 2, __ATOMIC_RELEASE);
    tp_kick(a);
    wait_workers_progress(f);
    struct vsw_worker_stats s1[VSW_MAX_WORKERS], s2[VSW_MAX_WORKERS];
    vsw_dp_worker_stats(g_dp, s1, VSW_MAX_WORKERS);
    uint64_t arms = __atomic_load_n(&a->arm_calls, __ATOMIC_ACQUIRE);
    uint64_t a_calls = __atomic_load_n(&a->rx_calls, __ATOMIC_ACQUIRE);

    enum { N = 100 };
    for (unsigned i = 0; i < N; i++)
        send_frame(f, c, host(f, 1, 1), host(f, 2, 1), 64);
    assert_true(wait_rx(f, b, N, WAIT_MS));
    /* Long past the idle time after which a worker that saw no work tries
     * to sleep (idle_sleep_us): it must not have tried. */
    sleep_ms(50);
    vsw_dp_worker_stats(g_dp, s2, VSW_MAX_WORKERS);
    uint64_t a_calls2 = __atomic_load_n(&a->rx_calls, __ATOMIC_ACQUIRE);
    uint64_t arms2 = __atomic_load_n(&a->arm_calls, __ATOMIC_ACQUIRE);

    assert_int_equal(arms2, arms);
    assert_int_equal(s2[w].sleeps, s1[w].sleeps);
    uint64_t rounds = s2[w].rounds - s1[w].rounds;
    uint64_t busy = s2[w].busy_rounds - s1[w].busy_rounds;
    print_message("flooded worker: %llu rounds, %llu busy, A polled %llu times\n",
                  (unsigned long long)rounds, (unsigned long long)busy,
                  (unsigned long long)(a_calls2 - a_calls));
    assert_true(rounds > 0);
    assert_true(busy + 1 >= rounds);
    /* Each round polls each port once, with no more than the budget. */
    assert_true(a_calls2 - a_calls > N);
    assert_int_equal(__atomic_load_n(&a->peer_skips, __ATOMIC_ACQUIRE), 0);
    assert_true(__atomic_load_n(&a->max_budget, __ATOMIC_RELAXED) <= VSW_BURST);
    assert_int_equal(b->nlog, N);

    __atomic_store_n(&a->backlog, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&a->peer, NULL, __ATOMIC_RELEASE);
    settle(f);
}

static void vsw_switch_destroy__ports_attached__ebusy(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    assert_int_equal(vsw_switch_destroy(f->sw), -EBUSY);
    assert_ptr_equal(vsw_switch_find(g_dp, "sw0"), f->sw);
    /* Still working. */
    uint32_t s = send_frame(f, a, bcast, host(f, 0, 1), 64);
    settle(f);
    assert_int_equal(tp_count_seq(b, s), 1);

    vsw_port_detach(&a->base);
    assert_int_equal(vsw_switch_destroy(f->sw), -EBUSY);
    vsw_port_detach(&b->base);
    assert_int_equal(vsw_switch_destroy(f->sw), 0);
    assert_null(vsw_switch_find(g_dp, "sw0"));
    /* teardown destroys it again: make a new one for it */
    struct vsw_switch_params p = {.name = "sw0", .kind = VSW_SWITCH_PRIVATE, .mtu = 1500};
    assert_int_equal(vsw_switch_create(g_dp, &p, &f->sw), 0);
    assert_int_equal(vsw_switch_destroy(NULL), 0);
}

static void vsw_port_attach__already_attached__ebusy(void **state)
{
    struct fixture *f = *state;
    struct vsw_switch *sw2 = switch_new(f, "other", 0, 0);
    struct test_port *a = port_add(f, f->sw, "A", true);
    assert_int_equal(vsw_port_attach(f->sw, &a->base), -EBUSY);
    assert_int_equal(vsw_port_attach(sw2, &a->base), -EBUSY);
    assert_ptr_equal(vsw_port_switch(&a->base), f->sw);
    struct vsw_port *ports[4];
    assert_int_equal(vsw_switch_ports(f->sw, ports, 4), 1);
    assert_int_equal(vsw_switch_ports(sw2, ports, 4), 0);
    assert_string_equal(vsw_port_name(&a->base), "A");
}

static void vsw_switch_create__names_and_mtu__validated(void **state)
{
    struct fixture *f = *state;
    struct vsw_switch *sw = NULL;
    struct vsw_switch_params p = {.kind = VSW_SWITCH_INTERNAL, .mtu = 1500};

    p.name = NULL;
    assert_int_equal(vsw_switch_create(g_dp, &p, &sw), -EINVAL);
    p.name = "";
    assert_int_equal(vsw_switch_create(g_dp, &p, &sw), -EINVAL);
    char name[VSW_NAME_MAX + 1];
    memset(name, 'n', VSW_NAME_MAX);
    name[VSW_NAME_MAX] = '\0';
    p.name = name; /* 48 characters: no room for the NUL */
    assert_int_equal(vsw_switch_create(g_dp, &p, &sw), -EINVAL);
    p.name = "sw0";
    assert_int_equal(vsw_switch_create(g_dp, &p, &sw), -EEXIST);
    assert_null(sw);

    p.name = "mtu";
    const uint32_t bad_mtu[] = {0, 67, 9001, UINT32_MAX};
    for (unsigned i = 0; i < 4; i++) {
        p.mtu = bad_mtu[i];
        assert_int_equal(vsw_switch_create(g_dp, &p, &sw), -EINVAL);
    }
    assert_null(vsw_switch_find(g_dp, "mtu"));

    /* The limits themselves are fine; so is a name of 47 characters,
     * which is copied. */
    name[VSW_NAME_MAX - 1] = '\0';
    p.name = name;
    p.mtu = 68;
    assert_int_equal(vsw_switch_create(g_dp, &p, &sw), 0);
    f->extra[f->nextra++] = sw;
    name[0] = 'X';
    assert_int_equal(strlen(vsw_switch_name(sw)), VSW_NAME_MAX - 1);
    assert_int_equal(vsw_switch_name(sw)[0], 'n');
    name[0] = 'n';
    assert_ptr_equal(vsw_switch_find(g_dp, name), sw);
    p.name = "mtu";
    p.mtu = 9000;
    sw = NULL;
    assert_int_equal(vsw_switch_create(g_dp, &p, &sw), 0);
    f->extra[f->nextra++] = sw;
    assert_string_equal(vsw_switch_name(sw), "mtu");
    assert_ptr_equal(vsw_switch_find(g_dp, "mtu"), sw);
    assert_null(vsw_switch_find(g_dp, "MTU"));

    enum vsw_switch_kind k;
    assert_int_equal(vsw_switch_kind_parse("external", &k), 0);
    assert_int_equal(k, VSW_SWITCH_EXTERNAL);
    assert_int_equal(vsw_switch_kind_parse("bogus", &k), -EINVAL);
    assert_string_equal(vsw_switch_kind_name(VSW_SWITCH_INTERNAL), "internal");
    assert_string_equal(vsw_drop_name(VSW_DROP_NO_DEST), "no_destination");
    assert_string_equal(vsw_drop_name(VSW_DROP_COUNT), "invalid");
}

static void print_rcu_memzone(const struct rte_memzone *mz, void *arg)
{
    (void)arg;
    if (strstr(mz->name, "RCU"))
        print_message("RCU memzone: %s\n", mz->name);
}

/*
 * A switch destroyed right after FDB entries were deleted (the last port's
 * entries go when it is detached) while a worker is in the middle of a long
 * round on another switch's port (a slow port, or a worker thread preempted
 * on a shared CPU): the same name (and slot) must be usable again at once.
 * A's rx_burst takes 150 ms, twice in a row (with frames waiting, so the
 * worker stays online in between): the first stall spans Y's detach (which
 * waits for it), the second the switch's destruction.
 */
static void vsw_switch_destroy__fdb_deletes_pending_on_busy_worker__slot_reusable(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    port_add(f, f->sw, "B", true);
    struct test_port *x = port_new(f, "X");
    struct test_port *y = port_new(f, "Y");
    struct vsw_switch_params p = {.name = "again", .kind = VSW_SWITCH_PRIVATE, .mtu = 1500};
    struct vsw_switch *sw = NULL;
    assert_int_equal(vsw_switch_create(g_dp, &p, &sw), 0);
    assert_int_equal(vsw_port_attach(sw, &x->base), 0);
    assert_int_equal(vsw_port_attach(sw, &y->base), 0);
    vsw_port_set_link(&x->base, true);
    vsw_port_set_link(&y->base, true);
    assert_int_equal(x->base.worker, a->base.worker);
    send_frame(f, x, bcast, host(f, 8, 1), 64);
    send_frame(f, y, bcast, host(f, 9, 1), 64);
    assert_true(wait_fdb(f, sw, host(f, 8, 1), x, WAIT_MS));
    assert_true(wait_fdb(f, sw, host(f, 9, 1), y, WAIT_MS));
    settle(f);
    vsw_port_detach(&x->base);

    /* Frames waiting on A keep its worker from napping (offline) between
     * the two stalls. */
    for (unsigned i = 0; i < 4 * VSW_BURST; i++)
        send_frame(f, a, bcast, host(f, 0, 1), 64);
    __atomic_store_n(&a->stall_us, 150000u, __ATOMIC_RELAXED);
    __atomic_store_n(&a->stall_calls, 2u, __ATOMIC_RELEASE);
    tp_kick(a);
    uint64_t end = now_us() + WAIT_MS * 1000ull;
    while (!__atomic_load_n(&a->stalling, __ATOMIC_ACQUIRE)) {
        assert_true(now_us() < end);
        usleep(100);
    }
    vsw_port_detach(&y->base);
    assert_int_equal(vsw_switch_destroy(sw), 0);
    while (__atomic_load_n(&a->stall_calls, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&a->stalling, __ATOMIC_ACQUIRE)) {
        assert_true(now_us() < end);
        usleep(1000);
    }

    sw = NULL;
    int rc = vsw_switch_create(g_dp, &p, &sw);
    if (rc != 0)
        rte_memzone_walk(print_rcu_memzone, NULL);
    assert_int_equal(rc, 0);
    f->extra[f->nextra++] = sw;
}

/* --- VLANs, guards and limits (the port policy) -------------------------- */

static struct test_port *port_add_inband(struct fixture *f, struct vsw_switch *sw,
                                         const char *name)
{
    assert_true(f->ntp < MAX_TP);
    struct test_port *tp = tp_create_cls(name, &test_port_inband_class);
    assert_non_null(tp);
    f->tp[f->ntp++] = tp;
    assert_int_equal(vsw_port_attach(sw, &tp->base), 0);
    vsw_port_set_link(&tp->base, true);
    return tp;
}

static void set_access(struct test_port *tp, uint16_t vlan)
{
    struct vsw_port_policy pol = {.access_vlan = vlan};
    assert_int_equal(vsw_port_set_policy(&tp->base, &pol), 0);
}

static void set_trunk(struct test_port *tp, const uint16_t *vlans, unsigned n, uint16_t native)
{
    struct vsw_port_policy pol = {.trunk = true, .native_vlan = native};
    for (unsigned i = 0; i < n; i++)
        vsw_policy_allow(&pol, vlans[i]);
    assert_int_equal(vsw_port_set_policy(&tp->base, &pol), 0);
}

/* Inject a frame of len bytes (tags included) with up to two 802.1Q tags
 * (0: none) and the test ethertype, seq after it. */
static struct rte_mbuf *tagged_new(struct mac dst, struct mac src, uint16_t len, uint16_t vlan,
                                   uint16_t inner, uint32_t seq)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(g_pool);
    assert_non_null(m);
    uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, len);
    assert_non_null(p);
    memset(p, 0xa5, len);
    memcpy(p, dst.b, 6);
    memcpy(p + 6, src.b, 6);
    unsigned o = 12;
    uint16_t tags[2] = {vlan, inner};
    for (unsigned i = 0; i < 2; i++) {
        if (!tags[i])
            continue;
        p[o] = 0x81;
        p[o + 1] = 0x00;
        p[o + 2] = (uint8_t)(tags[i] >> 8);
        p[o + 3] = (uint8_t)tags[i];
        o += 4;
    }
    p[o] = TEST_ETHERTYPE_HI;
    p[o + 1] = TEST_ETHERTYPE_LO;
    memcpy(p + o + 2, &seq, 4);
    return m;
}

static uint32_t send_tagged(struct fixture *f, struct test_port *tp, struct mac dst, struct mac src,
                            uint16_t len, uint16_t vlan, uint16_t inner)
{
    uint32_t seq = ++f->seq;
    struct rte_mbuf *m = tagged_new(dst, src, len, vlan, inner, seq);
    assert_int_equal(rte_ring_enqueue(tp->rx, m), 0);
    tp_kick(tp);
    return seq;
}

/* The record of the frame with sequence number seq on tp, or NULL. */
static const struct tp_rec *rec_of(const struct test_port *tp, uint32_t seq)
{
    for (unsigned i = 0; i < tp->nlog; i++)
        if (tp->log[i].seq == seq)
            return &tp->log[i];
    return NULL;
}

static void vsw_vlan__access_ports__flooding_stays_in_the_vlan(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    struct test_port *u = port_add(f, f->sw, "U", true);
    set_access(a, 10);
    set_access(b, 10);
    set_access(c, 20);
    uint32_t s1 = send_frame(f, a, bcast, host(f, 0, 1), 100);
    uint32_t s2 = send_frame(f, u, bcast, host(f, 3, 1), 100);
    uint32_t s3 = send_frame(f, c, host(f, 9, 9), host(f, 2, 1), 100);
    settle(f);
    /* A's broadcast reaches B only, untagged; U's (untagged network) nobody;
     * C is alone in VLAN 20. */
    assert_int_equal(tp_count_seq(b, s1), 1);
    assert_int_equal(rec_of(b, s1)->tag, 0);
    assert_int_equal(rec_of(b, s1)->oob, 0);
    assert_int_equal(c->nlog + u->nlog + a->nlog, 0);
    assert_int_equal(tp_count_seq(b, s2) + tp_count_seq(b, s3), 0);
    assert_int_equal(stats(u).drops[VSW_DROP_NO_DEST], 1);
    assert_int_equal(stats(c).drops[VSW_DROP_NO_DEST], 1);
    /* Learned per VLAN: A's MAC in VLAN 10, U's in VLAN 0. */
    assert_true(wait_fdb(f, f->sw, host(f, 0, 1), a, WAIT_MS));
    struct fdb_list l;
    fdb_get(f->sw, &l);
    assert_int_equal(fdb_find(&l, host(f, 0, 1))->vlan, 10);
    assert_true(wait_fdb(f, f->sw, host(f, 3, 1), u, WAIT_MS));
    fdb_get(f->sw, &l);
    assert_int_equal(fdb_find(&l, host(f, 3, 1))->vlan, 0);
    /* A known MAC in another VLAN is not a destination: U's unicast to A's
     * MAC is flooded in VLAN 0 (nobody there) and never reaches A. */
    uint32_t s4 = send_frame(f, u, host(f, 0, 1), host(f, 3, 1), 100);
    settle(f);
    assert_int_equal(tp_count_seq(a, s4), 0);
}

static void vsw_vlan__inband_trunk__tags_pushed_and_popped(void **state)
{
    struct fixture *f = *state;
    struct test_port *t = port_add_inband(f, f->sw, "T");
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    struct test_port *u = port_add(f, f->sw, "U", true);
    static const uint16_t allowed[] = {10, 20};
    set_trunk(t, allowed, 2, 0);
    set_access(a, 10);
    set_access(c, 20);

    /* Access VLAN 10 -> the trunk carries it tagged 10. */
    uint32_t s1 = send_frame(f, a, bcast, host(f, 1, 1), 100);
    /* Tagged 20 from the trunk -> C, untagged, 4 bytes shorter. */
    uint32_t s2 = send_tagged(f, t, bcast, host(f, 0, 1), 104, 20, 0);
    /* Untagged from the trunk: the native VLAN, here 0, the untagged network. */
    uint32_t s3 = send_tagged(f, t, bcast, host(f, 0, 2), 100, 0, 0);
    settle(f);
    const struct tp_rec *r = rec_of(t, s1);
    assert_non_null(r);
    assert_int_equal(r->tag, 10);
    assert_int_equal(r->len, 104);
    assert_int_equal(tp_count_seq(c, s1) + tp_count_seq(u, s1), 0);
    r = rec_of(c, s2);
    assert_non_null(r);
    assert_int_equal(r->tag, 0);
    assert_int_equal(r->len, 100);
    assert_int_equal(tp_count_seq(a, s2) + tp_count_seq(u, s2), 0);
    assert_int_equal(tp_count_seq(u, s3), 1);
    assert_int_equal(rec_of(u, s3)->tag, 0);
    assert_int_equal(tp_count_seq(a, s3) + tp_count_seq(c, s3), 0);
    assert_int_equal(fixture_drops(f), 0);

    /* With native VLAN 10, untagged trunk frames belong to VLAN 10 and
     * VLAN 10 leaves the trunk untagged. */
    set_trunk(t, allowed, 2, 10);
    clear_logs(f);
    uint32_t s4 = send_tagged(f, t, bcast, host(f, 0, 3), 100, 0, 0);
    uint32_t s5 = send_frame(f, a, bcast, host(f, 1, 2), 100);
    settle(f);
    assert_int_equal(tp_count_seq(a, s4), 1);
    assert_int_equal(tp_count_seq(u, s4), 0);
    assert_int_equal(rec_of(t, s5)->tag, 0);
    assert_int_equal(rec_of(t, s5)->len, 100);
}

static void vsw_vlan__out_of_band_trunk__tag_in_metadata_not_in_frame(void **state)
{
    struct fixture *f = *state;
    struct test_port *t = port_add(f, f->sw, "T", true); /* like netvsp: tags beside the frame */
    struct test_port *a = port_add(f, f->sw, "A", true);
    static const uint16_t allowed[] = {10};
    set_trunk(t, allowed, 1, 0);
    set_access(a, 10);
    uint32_t s1 = send_frame(f, a, bcast, host(f, 1, 1), 100);
    /* Received with the tag stripped by the "hardware". */
    uint32_t seq = ++f->seq;
    struct rte_mbuf *m = frame_new(bcast, host(f, 0, 1), 100, seq);
    assert_non_null(m);
    m->ol_flags |= RTE_MBUF_F_RX_VLAN;
    m->vlan_tci = 10;
    assert_int_equal(rte_ring_enqueue(t->rx, m), 0);
    tp_kick(t);
    settle(f);
    const struct tp_rec *r = rec_of(t, s1);
    assert_non_null(r);
    assert_int_equal(r->tag, 0);
    assert_int_equal(r->oob, 10);
    assert_int_equal(r->len, 100);
    assert_int_equal(tp_count_seq(a, seq), 1);
    assert_int_equal(fixture_drops(f), 0);
}

static void vsw_vlan__tags_where_none_may_be__dropped_vlan(void **state)
{
    struct fixture *f = *state;
    struct test_port *t = port_add_inband(f, f->sw, "T");
    struct test_port *a = port_add_inband(f, f->sw, "A");
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *u = port_add_inband(f, f->sw, "U");
    static const uint16_t allowed[] = {10, 20};
    set_trunk(t, allowed, 2, 0);
    set_access(a, 10);
    set_access(b, 20);
    uint32_t d[5];
    d[0] = send_tagged(f, a, bcast, host(f, 1, 1), 104, 20, 0);  /* access port tags: hop */
    d[1] = send_tagged(f, t, bcast, host(f, 0, 1), 104, 30, 0);  /* trunk, VLAN not carried */
    d[2] = send_tagged(f, t, bcast, host(f, 0, 2), 108, 10, 20); /* double tagged */
    d[3] = send_tagged(f, u, bcast, host(f, 3, 1), 104, 20, 0);  /* untagged port tags */
    /* A priority tag (VLAN 0) is an untagged frame. */
    uint32_t ok = send_tagged(f, u, bcast, host(f, 3, 2), 104, 0x2000, 0);
    d[4] = 0;
    settle(f);
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(tp_count_seq(a, d[i]) + tp_count_seq(b, d[i]), 0);
        assert_int_equal(tp_count_seq(t, d[i]) + tp_count_seq(u, d[i]), 0);
    }
    assert_int_equal(stats(a).drops[VSW_DROP_VLAN], 1);
    assert_int_equal(stats(t).drops[VSW_DROP_VLAN], 2);
    assert_int_equal(stats(u).drops[VSW_DROP_VLAN], 1);
    /* The priority-tagged frame went to the untagged network (T's native). */
    assert_int_equal(tp_count_seq(t, ok), 1);
    assert_int_equal(rec_of(t, ok)->tag, 0);
    assert_int_equal(tp_count_seq(a, ok) + tp_count_seq(b, ok), 0);
    (void)d[4];
}

static void vsw_fdb__same_mac_in_two_vlans__two_entries_unicast_per_vlan(void **state)
{
    struct fixture *f = *state;
    struct test_port *t = port_add_inband(f, f->sw, "T");
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    static const uint16_t allowed[] = {10, 20};
    set_trunk(t, allowed, 2, 0);
    set_access(a, 10);
    set_access(b, 20);
    struct mac x = host(f, 0, 1);
    send_tagged(f, t, bcast, x, 104, 10, 0);
    send_tagged(f, t, bcast, x, 104, 20, 0);
    assert_true(wait_fdb(f, f->sw, x, t, WAIT_MS));
    struct fdb_list l;
    uint64_t end = now_us() + WAIT_MS * 1000ull;
    while (fdb_get(f->sw, &l), fdb_count_mac(&l, x) < 2) {
        assert_true(now_us() < end);
        pump(f);
        usleep(200);
    }
    assert_int_equal(fdb_count_mac(&l, x), 2);
    clear_logs(f);
    /* Unicast to x from each VLAN goes to T, tagged with that VLAN. */
    uint32_t s1 = send_frame(f, a, x, host(f, 1, 1), 100);
    uint32_t s2 = send_frame(f, b, x, host(f, 2, 1), 100);
    settle(f);
    assert_int_equal(rec_of(t, s1)->tag, 10);
    assert_int_equal(rec_of(t, s2)->tag, 20);
    assert_int_equal(tp_count_seq(b, s1) + tp_count_seq(a, s2), 0);
    /* Moving x in VLAN 10 to A leaves its VLAN 20 entry on T. */
    send_frame(f, a, bcast, x, 100);
    end = now_us() + WAIT_MS * 1000ull;
    for (;;) {
        pump(f);
        fdb_get(f->sw, &l);
        bool moved = false, kept = false;
        for (unsigned i = 0; i < l.n; i++) {
            if (!mac_eq(l.e[i].mac, x))
                continue;
            moved |= l.e[i].vlan == 10 && l.e[i].port == &a->base;
            kept |= l.e[i].vlan == 20 && l.e[i].port == &t->base;
        }
        if (moved && kept)
            break;
        assert_true(now_us() < end);
        usleep(200);
    }
}

static const struct vsw_fdb_entry *fdb_find_vlan(const struct fdb_list *l, struct mac m,
                                                 uint16_t vlan)
{
    for (unsigned i = 0; i < l->n && i < FDB_LIST_MAX; i++)
        if (mac_eq(l->e[i].mac, m) && l->e[i].vlan == vlan)
            return &l->e[i];
    return NULL;
}

/* One received burst mixing everything the per-frame lookups meet: known and
 * unknown sources and destinations, three VLANs, a source that moved, a
 * static entry (as destination and as a source from elsewhere), the same MAC
 * in two VLANs, repeated keys next to each other and the same MACs next in
 * another VLAN, a broadcast among unicasts, a hairpin. The worker looks the
 * burst's keys up together, each run of equal keys once; each frame must
 * still get its own answers. */
static void vsw_forward__one_burst_of_mixed_frames__each_forwarded_and_learned_as_alone(
    void **state)
{
    struct fixture *f = *state;
    struct test_port *t = port_add_inband(f, f->sw, "T");
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct test_port *c = port_add(f, f->sw, "C", true);
    static const uint16_t allowed[] = {10, 20};
    set_trunk(t, allowed, 2, 0);
    set_access(a, 10);
    set_access(b, 20);
    struct mac x = host(f, 1, 1), y = host(f, 2, 1), z = host(f, 3, 1), mover = host(f, 4, 1);
    struct mac n1 = host(f, 5, 1), n2 = host(f, 5, 2), n3 = host(f, 5, 3), n4 = host(f, 5, 4);
    struct mac unknown = host(f, 9, 9);
    learn(f, f->sw, a, x);     /* x, VLAN 10: A */
    learn(f, f->sw, a, mover); /* mover, VLAN 10: A, for now */
    learn(f, f->sw, b, y);     /* y, VLAN 20: B */
    send_tagged(f, t, bcast, x, 64, 20, 0);
    struct fdb_list l;
    uint64_t end = now_us() + WAIT_MS * 1000ull;
    while (fdb_get(f->sw, &l), !fdb_find_vlan(&l, x, 20)) {
        assert_true(now_us() < end);
        pump(f);
        usleep(200);
    }
    assert_int_equal(vsw_fdb_add_static(f->sw, z.b, 0, &c->base), 0); /* z, VLAN 0: C */
    clear_logs(f);
    struct vsw_port_stats t0 = stats(t);

    /* From T, in one rx_burst: what each frame must do on its own. */
    struct {
        struct mac dst, src;
        uint16_t vlan; /* 0: untagged, T's native VLAN 0 */
    } in[] = {
        {x, n1, 10},          /* 0: to A; n1 learned in VLAN 10 */
        {x, n1, 10},          /* 1: the same again: to A */
        {x, n1, 20},          /* 2: the same MACs in VLAN 20, where x is on T: hairpin */
        {y, n2, 20},          /* 3: to B; n2 learned in VLAN 20 */
        {unknown, mover, 10}, /* 4: flooded in VLAN 10 (A); mover moves to T */
        {z, n3, 0},           /* 5: to C (static); n3 learned in VLAN 0 */
        {bcast, n1, 20},      /* 6: flooded in VLAN 20 (B) */
        {y, n4, 10},          /* 7: y unknown in VLAN 10: flooded there (A) */
        {x, z, 0},            /* 8: x unknown in VLAN 0: flooded (C); z stays static on C */
        {x, n2, 20},          /* 9: x in VLAN 20 is on T: hairpin */
    };
    enum { N = sizeof(in) / sizeof(in[0]) };
    struct rte_mbuf *m[N];
    uint32_t seq[N];
    for (unsigned i = 0; i < N; i++) {
        seq[i] = ++f->seq;
        m[i] = in[i].vlan ? tagged_new(in[i].dst, in[i].src, 80, in[i].vlan, 0, seq[i])
                          : frame_new(in[i].dst, in[i].src, 80, seq[i]);
        assert_non_null(m[i]);
    }
    /* All or nothing: the worker's rx_burst sees the whole burst at once. */
    assert_int_equal(rte_ring_enqueue_bulk(t->rx, (void **)m, N, NULL), N);
    tp_kick(t);
    settle(f);

    const struct test_port *want_on[N] = {a, a, NULL, b, a, c, b, a, c, NULL};
    for (unsigned i = 0; i < N; i++) {
        struct test_port *ports[] = {t, a, b, c};
        for (unsigned p = 0; p < 4; p++)
            assert_int_equal(tp_count_seq(ports[p], seq[i]), ports[p] == want_on[i]);
    }
    assert_int_equal(a->nlog, 4);
    assert_int_equal(b->nlog, 2);
    assert_int_equal(c->nlog, 2);
    assert_int_equal(t->nlog, 0);
    struct vsw_port_stats t1 = stats(t);
    assert_int_equal(t1.rx_packets - t0.rx_packets, N);
    assert_int_equal(t1.drops[VSW_DROP_HAIRPIN] - t0.drops[VSW_DROP_HAIRPIN], 2);
    assert_int_equal(fixture_drops(f), 2);

    /* Learned: every new (MAC, VLAN) on T, mover moved, z still static on C. */
    struct {
        struct mac mac;
        uint16_t vlan;
        const struct test_port *port;
        bool is_static;
    } want[] = {
        {x, 10, a, false},  {x, 20, t, false},  {y, 20, b, false},    {z, 0, c, true},
        {mover, 10, t, false}, {n1, 10, t, false}, {n1, 20, t, false}, {n2, 20, t, false},
        {n3, 0, t, false},  {n4, 10, t, false},
    };
    enum { W = sizeof(want) / sizeof(want[0]) };
    end = now_us() + WAIT_MS * 1000ull;
    for (;;) {
        pump(f);
        fdb_get(f->sw, &l);
        unsigned ok = 0;
        for (unsigned i = 0; i < W; i++) {
            const struct vsw_fdb_entry *e = fdb_find_vlan(&l, want[i].mac, want[i].vlan);
            ok += e && e->port == &want[i].port->base && e->is_static == want[i].is_static;
        }
        if (ok == W)
            break;
        assert_true(now_us() < end);
        usleep(200);
    }
    settle(f);
    assert_int_equal(fdb_get(f->sw, &l), W);
}

/* Frames for the guards: IPv4/UDP, IPv6 with optional hop-by-hop header. */
static uint32_t send_l3(struct fixture *f, struct test_port *tp, struct mac dst, struct mac src,
                        uint16_t ethertype, const uint8_t *l3, uint16_t l3len)
{
    uint32_t seq = ++f->seq;
    struct rte_mbuf *m = rte_pktmbuf_alloc(g_pool);
    assert_non_null(m);
    uint16_t len = (uint16_t)(14 + l3len < 60 ? 60 : 14 + l3len);
    uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, len);
    assert_non_null(p);
    memset(p, 0, len);
    memcpy(p, dst.b, 6);
    memcpy(p + 6, src.b, 6);
    p[12] = (uint8_t)(ethertype >> 8);
    p[13] = (uint8_t)ethertype;
    memcpy(p + 14, l3, l3len);
    assert_int_equal(rte_ring_enqueue(tp->rx, m), 0);
    tp_kick(tp);
    return seq;
}

static uint16_t ipv4_udp(uint8_t *b, uint16_t sport, uint16_t dport)
{
    memset(b, 0, 28 + 8);
    b[0] = 0x45;
    b[3] = 36;
    b[8] = 64;
    b[9] = 17;
    b[19] = 1; /* 0.0.0.1 */
    b[20] = (uint8_t)(sport >> 8);
    b[21] = (uint8_t)sport;
    b[22] = (uint8_t)(dport >> 8);
    b[23] = (uint8_t)dport;
    b[25] = 16;
    return 36;
}

static uint16_t ipv4_icmp(uint8_t *b, uint8_t type)
{
    memset(b, 0, 28);
    b[0] = 0x45;
    b[3] = 28;
    b[8] = 64;
    b[9] = 1;
    b[20] = type;
    return 28;
}

/* IPv6 (no addresses needed) carrying next header nh; hbh > 0 puts that
 * many 8-byte hop-by-hop headers in front. */
static uint16_t ipv6_pkt(uint8_t *b, uint8_t nh, const uint8_t *l4, uint16_t l4len, unsigned hbh)
{
    memset(b, 0, 40 + 8 * hbh + l4len);
    b[0] = 0x60;
    uint16_t plen = (uint16_t)(8 * hbh + l4len);
    b[4] = (uint8_t)(plen >> 8);
    b[5] = (uint8_t)plen;
    b[6] = hbh ? 0 : nh;
    b[7] = 255;
    for (unsigned i = 0; i < hbh; i++) {
        uint8_t *h = b + 40 + 8 * i;
        h[0] = i + 1 < hbh ? 0 : nh; /* hop-by-hop again, then nh */
        h[1] = 0;                    /* 8 bytes */
        h[2] = 1;                    /* PadN */
        h[3] = 4;
    }
    memcpy(b + 40 + 8 * hbh, l4, l4len);
    return (uint16_t)(40 + 8 * hbh + l4len);
}

static void vsw_guards__dhcp_and_router__dropped_counted_when_on(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    uint8_t l4[64];
    struct {
        uint16_t et;
        uint16_t len;
        uint8_t buf[128];
        enum vsw_drop why; /* VSW_DROP_COUNT: must pass */
    } fr[8];
    unsigned n = 0;
    fr[n].et = 0x0800, fr[n].len = ipv4_udp(fr[n].buf, 67, 68), fr[n++].why = VSW_DROP_DHCP_GUARD;
    fr[n].et = 0x0800, fr[n].len = ipv4_udp(fr[n].buf, 68, 67), fr[n++].why = VSW_DROP_COUNT;
    fr[n].et = 0x0800, fr[n].len = ipv4_icmp(fr[n].buf, 5), fr[n++].why = VSW_DROP_ROUTER_GUARD;
    fr[n].et = 0x0800, fr[n].len = ipv4_icmp(fr[n].buf, 8), fr[n++].why = VSW_DROP_COUNT;
    memset(l4, 0, sizeof(l4));
    l4[0] = 134; /* router advertisement */
    fr[n].et = 0x86dd, fr[n].len = ipv6_pkt(fr[n].buf, 58, l4, 16, 0),
    fr[n++].why = VSW_DROP_ROUTER_GUARD;
    fr[n].et = 0x86dd, fr[n].len = ipv6_pkt(fr[n].buf, 58, l4, 16, 2),
    fr[n++].why = VSW_DROP_ROUTER_GUARD; /* behind two hop-by-hop headers */
    l4[0] = 128;                         /* echo request */
    fr[n].et = 0x86dd, fr[n].len = ipv6_pkt(fr[n].buf, 58, l4, 16, 1), fr[n++].why = VSW_DROP_COUNT;
    memset(l4, 0, 8);
    l4[0] = 0x02, l4[1] = 0x23, l4[2] = 0x02, l4[3] = 0x22; /* UDP 547 -> 546 */
    fr[n].et = 0x86dd, fr[n].len = ipv6_pkt(fr[n].buf, 17, l4, 8, 0),
    fr[n++].why = VSW_DROP_DHCP_GUARD;

    /* Guards off: everything passes. */
    for (unsigned i = 0; i < n; i++)
        send_l3(f, a, host(f, 1, 1), host(f, 0, 1), fr[i].et, fr[i].buf, fr[i].len);
    settle(f);
    assert_int_equal(b->nlog, n);

    /* Guards on. */
    struct vsw_port_policy pol = {.dhcp_guard = true, .router_guard = true};
    assert_int_equal(vsw_port_set_policy(&a->base, &pol), 0);
    clear_logs(f);
    unsigned pass = 0, dhcp = 0, rtr = 0;
    for (unsigned i = 0; i < n; i++) {
        send_l3(f, a, host(f, 1, 1), host(f, 0, 1), fr[i].et, fr[i].buf, fr[i].len);
        pass += fr[i].why == VSW_DROP_COUNT;
        dhcp += fr[i].why == VSW_DROP_DHCP_GUARD;
        rtr += fr[i].why == VSW_DROP_ROUTER_GUARD;
    }
    settle(f);
    assert_int_equal(b->nlog, pass);
    struct vsw_port_stats sa = stats(a);
    assert_int_equal(sa.drops[VSW_DROP_DHCP_GUARD], dhcp);
    assert_int_equal(sa.drops[VSW_DROP_ROUTER_GUARD], rtr);

    /* A guarded port's chain of extension headers that cannot be followed
     * (truncated) counts as a hit. */
    uint8_t trunc[48];
    uint16_t tl = ipv6_pkt(trunc, 58, l4, 0, 1);
    trunc[40] = 0;  /* another hop-by-hop header follows... */
    trunc[41] = 50; /* ...408 bytes long: past the end of the frame */
    send_l3(f, a, host(f, 1, 1), host(f, 0, 1), 0x86dd, trunc, tl);
    settle(f);
    assert_int_equal(stats(a).drops[VSW_DROP_ROUTER_GUARD], rtr + 1);
    assert_int_equal(b->nlog, pass);
}

static void vsw_guards__spoofed_source__dropped_mac_spoofing(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct vsw_port_policy pol = {.spoof_guard = true};
    struct mac own = host(f, 0, 1);
    memcpy(pol.own_mac, own.b, 6);
    assert_int_equal(vsw_port_set_policy(&a->base, &pol), 0);
    uint32_t s1 = send_frame(f, a, bcast, own, 64);
    uint32_t s2 = send_frame(f, a, bcast, host(f, 0, 2), 64);
    settle(f);
    assert_int_equal(tp_count_seq(b, s1), 1);
    assert_int_equal(tp_count_seq(b, s2), 0);
    assert_int_equal(stats(a).drops[VSW_DROP_MAC_SPOOF], 1);
    /* Never learned either. */
    struct fdb_list l;
    fdb_get(f->sw, &l);
    assert_null(fdb_find(&l, host(f, 0, 2)));
}

static void vsw_limits__storm_and_rate__excess_dropped_counted(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    learn(f, f->sw, b, host(f, 1, 1));
    /* Storm limit 50 frames/s: a burst of 400 broadcasts loses most;
     * unicast is not limited. */
    struct vsw_port_policy pol = {.storm_pps = 50};
    assert_int_equal(vsw_port_set_policy(&a->base, &pol), 0);
    for (unsigned i = 0; i < 400; i++)
        send_frame(f, a, bcast, host(f, 0, 1), 64);
    for (unsigned i = 0; i < 100; i++)
        send_frame(f, a, host(f, 1, 1), host(f, 0, 1), 64);
    settle(f);
    struct vsw_port_stats sa = stats(a);
    uint64_t storm = sa.drops[VSW_DROP_STORM];
    assert_true(storm >= 400 - 2 * 50 && storm < 400);
    assert_int_equal(b->nlog, 400 - storm + 100);

    /* Rate limit 1 Mbit/s (bucket 64 KiB): 1000 frames of 1500 bytes sent
     * at once are 1.5 MB, far over; about the bucket passes. */
    struct vsw_port_policy pol2 = {.max_mbps = 1};
    assert_int_equal(vsw_port_set_policy(&a->base, &pol2), 0);
    clear_logs(f);
    for (unsigned i = 0; i < 1000; i++) {
        send_frame(f, a, host(f, 1, 1), host(f, 0, 1), 1500);
        if (i % 200 == 199)
            settle(f); /* the rings hold 4096 */
    }
    settle(f);
    uint64_t rl = stats(a).drops[VSW_DROP_RATE_LIMIT];
    assert_int_equal(b->nlog + rl, 1000);
    assert_true(rl >= 900);
    assert_true(b->nlog >= 40); /* 64 KiB / 1500 B = 43 */
    /* Limits off: nothing more is dropped. */
    struct vsw_port_policy none = {0};
    assert_int_equal(vsw_port_set_policy(&a->base, &none), 0);
    clear_logs(f);
    for (unsigned i = 0; i < 200; i++)
        send_frame(f, a, bcast, host(f, 0, 1), 1500);
    settle(f);
    assert_int_equal(b->nlog, 200);
}

static void vsw_port_set_policy__inconsistent__einval(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct vsw_port_policy p1 = {.access_vlan = 4095};
    assert_int_equal(vsw_port_set_policy(&a->base, &p1), -EINVAL);
    struct vsw_port_policy p2 = {.access_vlan = 10, .trunk = true};
    assert_int_equal(vsw_port_set_policy(&a->base, &p2), -EINVAL);
    struct vsw_port_policy p3 = {.native_vlan = 10};
    assert_int_equal(vsw_port_set_policy(&a->base, &p3), -EINVAL);
    struct vsw_port_policy p4 = {.trunk = true};
    p4.allowed[0] = 1; /* VLAN 0 */
    assert_int_equal(vsw_port_set_policy(&a->base, &p4), -EINVAL);
    struct vsw_port_policy got;
    vsw_port_get_policy(&a->base, &got);
    assert_int_equal(got.access_vlan, 0);
    assert_false(got.trunk);
}

static void vsw_forward__longer_than_ingress_mtu__rx_too_big_on_sender_only(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    vsw_port_set_max_frame(&a->base, 9014);
    vsw_port_set_max_frame(&b->base, 9014);
    /* A's MTU is 1000 now; it sends 1015 bytes (a host raised it by hand). */
    vsw_port_set_max_frame(&a->base, 1014);
    uint32_t big = send_frame(f, a, bcast, host(f, 0, 1), 1015);
    uint32_t ok = send_frame(f, a, bcast, host(f, 0, 1), 1014);
    /* A tagged frame is measured without its tag. */
    static const uint16_t v10[] = {10};
    struct test_port *t = port_add_inband(f, f->sw, "T");
    set_trunk(t, v10, 1, 0);
    set_access(b, 0);
    vsw_port_set_max_frame(&t->base, 1514);
    uint32_t tag_ok = send_tagged(f, t, bcast, host(f, 2, 1), 1518, 0x2000, 0);
    settle(f);
    assert_int_equal(tp_count_seq(b, big), 0);
    assert_int_equal(tp_count_seq(b, ok), 1);
    assert_int_equal(tp_count_seq(b, tag_ok), 1);
    struct vsw_port_stats sa = stats(a), sb = stats(b), st = stats(t);
    assert_int_equal(sa.drops[VSW_DROP_RX_TOO_BIG], 1);
    /* T's 1514-byte frame was too big to go out to A (MTU 1000). */
    assert_int_equal(sa.drops[VSW_DROP_TOO_BIG], 1);
    assert_int_equal(drops_total(&sa), 2);
    assert_int_equal(drops_total(&sb) + drops_total(&st), 0);
}

/* --- Tags: the VLAN from all of them, and frames judged without them ----- */

struct tag {
    uint16_t tpid, tci;
};

/* A frame: dst, src, tags in the frame, EtherType et, then l3 (l3len
 * bytes), or without l3 the test EtherType and seq, padded to 60 bytes.
 * oob >= 0: an out-of-band tag (RTE_MBUF_F_RX_VLAN) with that TCI too, as
 * a VM NIC hands the guest's VLAN PPI over. */
static struct rte_mbuf *stack_frame(struct mac dst, struct mac src, const struct tag *tags,
                                    unsigned ntags, int oob, uint16_t et, const uint8_t *l3,
                                    uint16_t l3len, uint32_t seq)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(g_pool);
    assert_non_null(m);
    uint16_t body = l3 ? l3len : 46;
    uint16_t len = (uint16_t)(14 + 4 * ntags + body);
    uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, len);
    assert_non_null(p);
    memset(p, 0x5a, len);
    memcpy(p, dst.b, 6);
    memcpy(p + 6, src.b, 6);
    unsigned o = 12;
    for (unsigned i = 0; i < ntags; i++, o += 4) {
        p[o] = (uint8_t)(tags[i].tpid >> 8);
        p[o + 1] = (uint8_t)tags[i].tpid;
        p[o + 2] = (uint8_t)(tags[i].tci >> 8);
        p[o + 3] = (uint8_t)tags[i].tci;
    }
    if (l3) {
        p[o] = (uint8_t)(et >> 8);
        p[o + 1] = (uint8_t)et;
        memcpy(p + o + 2, l3, l3len);
    } else {
        p[o] = TEST_ETHERTYPE_HI;
        p[o + 1] = TEST_ETHERTYPE_LO;
        memcpy(p + o + 2, &seq, 4);
    }
    if (oob >= 0) {
        m->ol_flags |= RTE_MBUF_F_RX_VLAN;
        m->vlan_tci = (uint16_t)oob;
    }
    return m;
}

static void inject(struct test_port *tp, struct rte_mbuf *m)
{
    assert_int_equal(rte_ring_enqueue(tp->rx, m), 0);
    tp_kick(tp);
}

/* Inject a test frame with these tags; returns its seq. */
static uint32_t send_stack(struct fixture *f, struct test_port *tp, struct mac dst, struct mac src,
                           const struct tag *tags, unsigned ntags, int oob)
{
    uint32_t seq = ++f->seq;
    inject(tp, stack_frame(dst, src, tags, ntags, oob, 0, NULL, 0, seq));
    return seq;
}

/* Inject an L3 frame with these tags. */
static void send_stack_l3(struct test_port *tp, struct mac dst, struct mac src,
                          const struct tag *tags, unsigned ntags, int oob, uint16_t et,
                          const uint8_t *l3, uint16_t l3len)
{
    inject(tp, stack_frame(dst, src, tags, ntags, oob, et, l3, l3len, 0));
}

/* Frames anywhere in the fixture carrying seq. */
static unsigned seen_anywhere(const struct fixture *f, uint32_t seq)
{
    unsigned n = 0;
    for (unsigned i = 0; i < f->ntp; i++)
        n += tp_count_seq(f->tp[i], seq);
    return n;
}

#define PRIO(pcp) ((uint16_t)((pcp) << 13))
static const struct tag PRIO0 = {0x8100, 0};
static const struct tag PRIO5 = {0x8100, PRIO(5)};

static void vsw_l2_parse__tag_stacks__read_by_the_tag_rule(void **state)
{
    (void)state;
    struct mac d = {{2, 0, 0, 0, 0, 1}}, s = {{2, 0, 0, 0, 0, 2}};
    static const struct {
        const char *what;
        struct tag tags[10];
        unsigned n;
        int oob;
        bool tagged, refused;
        uint16_t vid, tags_len;
    } c[] = {
        {"untagged", {{0}}, 0, -1, false, false, 0, 0},
        {"priority tag", {{0x8100, PRIO(3)}}, 1, -1, false, false, 0, 4},
        {"three priority tags", {{0x8100, 0}, {0x8100, PRIO(1)}, {0x8100, 0}}, 3, -1, false,
         false, 0, 12},
        {"VLAN tag", {{0x8100, 20}}, 1, -1, true, false, 20, 4},
        {"VLAN tag with priority bits", {{0x8100, PRIO(5) | 20}}, 1, -1, true, false, 20, 4},
        {"priority then VLAN", {{0x8100, 0}, {0x8100, 20}}, 2, -1, true, false, 20, 8},
        {"priorities then VLAN", {{0x8100, 0}, {0x8100, 0}, {0x8100, 20}}, 3, -1, true, false,
         20, 12},
        {"VLAN then VLAN", {{0x8100, 10}, {0x8100, 20}}, 2, -1, true, true, 10, 8},
        {"VLAN then priority", {{0x8100, 10}, {0x8100, 0}}, 2, -1, true, true, 10, 8},
        {"VLAN then 802.1ad", {{0x8100, 10}, {0x88a8, 20}}, 2, -1, true, true, 10, 8},
        {"802.1ad outer", {{0x88a8, 20}, {0x8100, 30}}, 2, -1, false, true, 0, 8},
        {"802.1ad VID 0", {{0x88a8, 0}}, 1, -1, false, true, 0, 4},
        {"0x9100 outer", {{0x9100, 20}}, 1, -1, false, true, 0, 4},
        {"0x9200 outer", {{0x9200, 20}}, 1, -1, false, true, 0, 4},
        {"priority then 802.1ad", {{0x8100, 0}, {0x88a8, 20}}, 2, -1, false, true, 0, 8},
        {"VID-0 out of band then VLAN", {{0x8100, 20}}, 1, 0, true, false, 20, 4},
        {"VID-0 out of band with priority then VLAN", {{0x8100, 20}}, 1, PRIO(6), true, false,
         20, 4},
        {"VLAN out of band then priority", {{0x8100, 0}}, 1, 30, true, true, 30, 4},
        {"VLAN out of band then VLAN", {{0x8100, 20}}, 1, 30, true, true, 30, 4},
        {"VLAN out of band only", {{0}}, 0, 30, true, false, 30, 0},
        {"nine priority tags", {{0x8100, 0}, {0x8100, 0}, {0x8100, 0}, {0x8100, 0}, {0x8100, 0},
         {0x8100, 0}, {0x8100, 0}, {0x8100, 0}, {0x8100, 0}}, 9, -1, false, true, 0, 32},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        struct rte_mbuf *m = stack_frame(d, s, c[i].tags, c[i].n, c[i].oob, 0x0800,
                                         (const uint8_t *)"\x45\0\0\x14", 4, 0);
        struct vsw_l2_info l2;
        vsw_l2_parse(m, &l2);
        print_message("%s\n", c[i].what);
        assert_int_equal(l2.refused, c[i].refused);
        assert_int_equal(l2.tagged, c[i].tagged);
        if (c[i].tagged)
            assert_int_equal(l2.tci & 0xfff, c[i].vid);
        assert_int_equal(l2.tags_len, c[i].tags_len);
        assert_int_equal(l2.l3_off, 14 + c[i].tags_len);
        if (!c[i].refused)
            assert_int_equal(rte_be_to_cpu_16(l2.ether_type), 0x0800);
        rte_pktmbuf_free(m);
    }
    /* A tag cut off by the end of the frame; a runt. */
    struct rte_mbuf *m = rte_pktmbuf_alloc(g_pool);
    uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, 16);
    memset(p, 0, 16);
    p[12] = 0x81;
    struct vsw_l2_info l2;
    vsw_l2_parse(m, &l2);
    assert_true(l2.refused);
    rte_pktmbuf_trim(m, 4);
    vsw_l2_parse(m, &l2);
    assert_true(l2.refused);
    rte_pktmbuf_free(m);
}

static void vsw_vlan__priority_tag_before_vlan_tag_on_access_or_untagged_port__dropped_vlan(
    void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);  /* access 10 */
    struct test_port *u = port_add(f, f->sw, "U", true);  /* untagged */
    struct test_port *b = port_add(f, f->sw, "B", true);  /* access 20 */
    struct test_port *t = port_add_inband(f, f->sw, "T"); /* trunk 10,20, native 0: an uplink */
    struct test_port *v = port_add(f, f->sw, "V", true);  /* untagged */
    static const uint16_t allowed[] = {10, 20};
    set_access(a, 10);
    set_access(b, 20);
    set_trunk(t, allowed, 2, 0);
    const struct tag hop[] = {PRIO0, {0x8100, 20}};
    const struct tag hop3[] = {PRIO5, PRIO0, {0x8100, 20}};
    uint32_t d[6];
    d[0] = send_stack(f, a, bcast, host(f, 0, 1), hop, 2, -1);
    d[1] = send_stack(f, u, bcast, host(f, 1, 1), hop, 2, -1);
    d[2] = send_stack(f, u, bcast, host(f, 1, 2), hop3, 3, -1);
    /* The same behind a VID-0 out-of-band tag (a guest's VLAN PPI). */
    d[3] = send_stack(f, a, bcast, host(f, 0, 2), hop + 1, 1, 0);
    d[4] = send_stack(f, u, bcast, host(f, 1, 3), hop + 1, 1, PRIO(4));
    /* And a second tag from the trunk behind its VLAN tag. */
    const struct tag qinq[] = {{0x8100, 10}, PRIO0, {0x8100, 20}};
    d[5] = send_stack(f, t, bcast, host(f, 3, 1), qinq, 3, -1);
    settle(f);
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(seen_anywhere(f, d[i]), 0);
    assert_int_equal(stats(a).drops[VSW_DROP_VLAN], 2);
    assert_int_equal(stats(u).drops[VSW_DROP_VLAN], 3);
    assert_int_equal(stats(t).drops[VSW_DROP_VLAN], 1);
    struct vsw_port_stats sb = stats(b), sv = stats(v);
    assert_int_equal(sb.tx_packets + sv.tx_packets, 0);
    /* Nothing was learned from them either. */
    struct fdb_list l;
    fdb_get(f->sw, &l);
    assert_int_equal(l.n, 0);
}

static void vsw_vlan__outer_8021ad_and_9100_tags__dropped_vlan(void **state)
{
    struct fixture *f = *state;
    struct test_port *u = port_add(f, f->sw, "U", true);
    struct test_port *t = port_add_inband(f, f->sw, "T");
    struct test_port *b = port_add(f, f->sw, "B", true);
    static const uint16_t allowed[] = {20};
    set_trunk(t, allowed, 1, 0);
    set_access(b, 20);
    const struct tag s20[] = {{0x88a8, 20}};
    const struct tag s0[] = {{0x88a8, 0}};
    const struct tag q20[] = {{0x9100, 20}};
    const struct tag s20c30[] = {{0x88a8, 20}, {0x8100, 30}};
    const struct tag p_s20[] = {PRIO0, {0x88a8, 20}};
    uint32_t d[8];
    d[0] = send_stack(f, u, bcast, host(f, 0, 1), s20, 1, -1);
    d[1] = send_stack(f, u, bcast, host(f, 0, 2), s0, 1, -1);
    d[2] = send_stack(f, u, bcast, host(f, 0, 3), q20, 1, -1);
    d[3] = send_stack(f, u, bcast, host(f, 0, 4), p_s20, 2, -1);
    d[4] = send_stack(f, t, bcast, host(f, 1, 1), s20, 1, -1);
    d[5] = send_stack(f, t, bcast, host(f, 1, 2), s20c30, 2, -1);
    d[6] = send_stack(f, t, bcast, host(f, 1, 3), q20, 1, -1);
    d[7] = send_stack(f, t, bcast, host(f, 1, 4), p_s20, 2, -1);
    settle(f);
    for (unsigned i = 0; i < 8; i++)
        assert_int_equal(seen_anywhere(f, d[i]), 0);
    assert_int_equal(stats(u).drops[VSW_DROP_VLAN], 4);
    assert_int_equal(stats(t).drops[VSW_DROP_VLAN], 4);
    assert_int_equal(stats(b).tx_packets, 0);
}

static void vsw_vlan__priority_tags__all_stripped_frame_on_the_vlan_behind_them(void **state)
{
    struct fixture *f = *state;
    struct test_port *u = port_add(f, f->sw, "U", true);  /* untagged */
    struct test_port *v = port_add(f, f->sw, "V", true);  /* untagged */
    struct test_port *b = port_add(f, f->sw, "B", true);  /* access 20 */
    struct test_port *t = port_add_inband(f, f->sw, "T"); /* trunk 20, native 0 */
    static const uint16_t allowed[] = {20};
    set_access(b, 20);
    set_trunk(t, allowed, 1, 0);
    /* From an untagged port: two priority tags, out of band and in the frame. */
    const struct tag pp[] = {PRIO5, PRIO0};
    uint32_t s1 = send_stack(f, u, bcast, host(f, 0, 1), pp, 2, -1);
    uint32_t s2 = send_stack(f, u, bcast, host(f, 0, 2), pp, 1, PRIO(2));
    /* From the trunk: priority tags in front of VLAN 20 put it on VLAN 20. */
    const struct tag p20[] = {PRIO0, PRIO5, {0x8100, PRIO(1) | 20}};
    uint32_t s3 = send_stack(f, t, bcast, host(f, 3, 1), p20, 3, -1);
    settle(f);
    /* Every receiver sees the same frame: no tags (60 bytes, as sent less
     * its tags), or the trunk's own tag only. */
    const struct tp_rec *r = rec_of(v, s1);
    assert_non_null(r);
    assert_int_equal(r->len, 60);
    assert_int_equal(r->tag, 0);
    r = rec_of(t, s1);
    assert_non_null(r);
    assert_int_equal(r->len, 60);
    assert_int_equal(r->tag, 0);
    assert_int_equal(tp_count_seq(b, s1), 0);
    r = rec_of(v, s2);
    assert_non_null(r);
    assert_int_equal(r->len, 60);
    r = rec_of(b, s3);
    assert_non_null(r);
    assert_int_equal(r->len, 60);
    assert_int_equal(r->tag, 0);
    assert_int_equal(tp_count_seq(u, s3) + tp_count_seq(v, s3), 0);
    assert_int_equal(fixture_drops(f), 0);
    /* Learned in the VLAN the tags said. */
    assert_true(wait_fdb(f, f->sw, host(f, 3, 1), t, WAIT_MS));
    assert_true(wait_fdb(f, f->sw, host(f, 0, 1), u, WAIT_MS));
    struct fdb_list l;
    fdb_get(f->sw, &l);
    assert_int_equal(fdb_find(&l, host(f, 3, 1))->vlan, 20);
    assert_int_equal(fdb_find(&l, host(f, 0, 1))->vlan, 0);
}

static void vsw_guards__frames_behind_priority_tags__judged_without_them(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct mac own = host(f, 0, 1);
    struct vsw_port_policy pol = {.dhcp_guard = true, .router_guard = true, .spoof_guard = true};
    memcpy(pol.own_mac, own.b, 6);
    assert_int_equal(vsw_port_set_policy(&a->base, &pol), 0);
    const struct tag p1[] = {PRIO0};
    const struct tag p3[] = {PRIO0, PRIO5, PRIO0};
    uint8_t l3[128], l4[16];
    /* A DHCP offer behind one and behind three priority tags; one behind
     * a VID-0 out-of-band tag and a priority tag. */
    uint16_t n = ipv4_udp(l3, 67, 68);
    send_stack_l3(a, bcast, own, p1, 1, -1, 0x0800, l3, n);
    send_stack_l3(a, bcast, own, p3, 3, -1, 0x0800, l3, n);
    send_stack_l3(a, bcast, own, p1, 1, 0, 0x0800, l3, n);
    /* DHCPv6 reply behind two. */
    memset(l4, 0, 8);
    l4[0] = 0x02, l4[1] = 0x23, l4[2] = 0x02, l4[3] = 0x22;
    n = ipv6_pkt(l3, 17, l4, 8, 0);
    send_stack_l3(a, bcast, own, p3, 2, -1, 0x86dd, l3, n);
    /* Router advertisements behind one and three, a redirect behind two. */
    memset(l4, 0, sizeof(l4));
    l4[0] = 134;
    n = ipv6_pkt(l3, 58, l4, 16, 0);
    send_stack_l3(a, bcast, own, p1, 1, -1, 0x86dd, l3, n);
    n = ipv6_pkt(l3, 58, l4, 16, 1);
    send_stack_l3(a, bcast, own, p3, 3, -1, 0x86dd, l3, n);
    n = ipv4_icmp(l3, 5);
    send_stack_l3(a, bcast, own, p3, 2, -1, 0x0800, l3, n);
    /* A spoofed source behind priority tags. */
    uint32_t sp = send_stack(f, a, bcast, host(f, 0, 2), p3, 3, -1);
    /* What may pass still passes: a DHCP request behind priority tags. */
    n = ipv4_udp(l3, 68, 67);
    send_stack_l3(a, bcast, own, p3, 3, -1, 0x0800, l3, n);
    settle(f);
    struct vsw_port_stats sa = stats(a);
    assert_int_equal(sa.drops[VSW_DROP_DHCP_GUARD], 4);
    assert_int_equal(sa.drops[VSW_DROP_ROUTER_GUARD], 3);
    assert_int_equal(sa.drops[VSW_DROP_MAC_SPOOF], 1);
    assert_int_equal(drops_total(&sa), 8);
    assert_int_equal(tp_count_seq(b, sp), 0);
    assert_int_equal(b->nlog, 1);
    assert_int_equal(b->log[0].len, 14 + n);
}

static void vsw_limits__storm_behind_priority_tags__counted(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = port_add(f, f->sw, "B", true);
    struct vsw_port_policy pol = {.storm_pps = 50};
    assert_int_equal(vsw_port_set_policy(&a->base, &pol), 0);
    const struct tag p3[] = {PRIO0, PRIO0, PRIO5};
    for (unsigned i = 0; i < 300; i++)
        send_stack(f, a, bcast, host(f, 0, 1), p3, 1 + i % 3, i % 2 ? 0 : -1);
    settle(f);
    uint64_t storm = stats(a).drops[VSW_DROP_STORM];
    assert_true(storm >= 300 - 2 * 50 && storm < 300);
    assert_int_equal(b->nlog, 300 - storm);
}

/* TCP over IPv4 with payload bytes, its checksum left to the network (the
 * field holds garbage). */
static uint16_t ipv4_tcp(uint8_t *b, uint16_t payload)
{
    uint16_t tot = (uint16_t)(40 + payload);
    memset(b, 0, 40);
    b[0] = 0x45;
    b[2] = (uint8_t)(tot >> 8);
    b[3] = (uint8_t)tot;
    b[8] = 64;
    b[9] = 6;
    b[12] = 10, b[15] = 1, b[16] = 10, b[19] = 2;
    uint16_t ck = (uint16_t)~csum_fold(csum_add(0, b, 20));
    b[10] = (uint8_t)(ck >> 8);
    b[11] = (uint8_t)ck;
    b[20] = 0x9c, b[21] = 0x40, b[22] = 0x13, b[23] = 0x89;
    b[32] = 5 << 4;
    b[33] = 0x18;
    b[36] = 0xbe, b[37] = 0xef;
    for (uint16_t i = 0; i < payload; i++)
        b[40 + i] = (uint8_t)(i * 13 + 7);
    return tot;
}

/* A frame whose TCP checksum its sender (a VM NIC, say) left to the
 * network, its request recorded as the port type records it. */
static struct rte_mbuf *csum_frame(struct mac dst, struct mac src, const struct tag *tags,
                                   unsigned ntags, int oob)
{
    uint8_t l3[300];
    uint16_t n = ipv4_tcp(l3, 200);
    struct rte_mbuf *m = stack_frame(dst, src, tags, ntags, oob, 0x0800, l3, n, 0);
    assert_int_equal(vsw_frame_csum_request(m, 14 + 4 * ntags + 20, true, 4), 0);
    assert_int_equal(m->l2_len, 14 + 4 * ntags);
    assert_int_equal(m->l3_len, 20);
    return m;
}

static void vsw_forward__tagged_frames_with_checksum_offload__offsets_follow_the_tags(void **state)
{
    struct fixture *f = *state;
    struct test_port *v = port_add(f, f->sw, "V", true);  /* a VM NIC: trunk 20, native 0 */
    struct test_port *b = port_add(f, f->sw, "B", true);  /* access 20 */
    struct test_port *t = port_add_inband(f, f->sw, "T"); /* trunk 20: tags in the frame */
    struct test_port *u = port_add(f, f->sw, "U", true);  /* untagged */
    static const uint16_t allowed[] = {20};
    set_trunk(v, allowed, 1, 0);
    set_access(b, 20);
    set_trunk(t, allowed, 1, 0);
    /* Ports that take checksum requests: the requests arrive as such. */
    vsw_port_set_tx_offloads(&b->base, VSW_TX_CSUM);
    vsw_port_set_tx_offloads(&t->base, VSW_TX_CSUM);
    vsw_port_set_tx_offloads(&u->base, VSW_TX_CSUM);
    const struct tag t20[] = {{0x8100, 20}};
    const struct tag t20p[] = {{0x8100, PRIO(5) | 20}};
    const struct tag p5[] = {PRIO5};
    const struct tag pp20[] = {PRIO0, PRIO5, {0x8100, 20}};
    /* In-band VLAN 20, without and with priority bits; priority tags in
     * front of it; a priority tag alone; VLAN 20 out of band. */
    inject(v, csum_frame(bcast, host(f, 0, 1), t20, 1, -1));
    inject(v, csum_frame(bcast, host(f, 0, 1), t20p, 1, -1));
    inject(v, csum_frame(bcast, host(f, 0, 1), pp20, 3, -1));
    inject(v, csum_frame(bcast, host(f, 0, 1), p5, 1, -1));
    inject(v, csum_frame(bcast, host(f, 0, 1), NULL, 0, 20));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    /* VLAN 20 reached B untagged and T tagged; the untagged one U and T. */
    assert_int_equal(b->nlog, 4);
    assert_int_equal(t->nlog, 5);
    assert_int_equal(u->nlog, 1);
    const struct test_port *outs[] = {b, t, u};
    for (unsigned k = 0; k < 3; k++) {
        for (unsigned i = 0; i < outs[k]->nlog; i++) {
            const struct tp_rec *r = &outs[k]->log[i];
            bool tagged = r->tag != 0;
            assert_int_equal(r->csum, RTE_MBUF_F_TX_TCP_CKSUM);
            assert_int_equal(r->l2_len, tagged ? 18 : 14);
            assert_int_equal(r->l3_len, 20);
            assert_int_equal(r->len, (tagged ? 18 : 14) + 240);
            assert_int_equal(r->csum_finish, 0);
            assert_true(r->csum_verifies);
            assert_int_equal(r->l4_off, r->l2_len + 20u);
        }
    }
}

/* An mbuf chain holding data, cut into segments of these lengths (0, and
 * past the list: as much as fits). */
static struct rte_mbuf *chain_of(const uint8_t *data, uint32_t len, const uint32_t *segs,
                                 unsigned nsegs)
{
    struct rte_mbuf *head = NULL;
    for (uint32_t off = 0, i = 0; off < len; i++) {
        struct rte_mbuf *m = rte_pktmbuf_alloc(g_pool);
        assert_non_null(m);
        uint32_t k = len - off;
        if (i < nsegs && segs[i] && segs[i] < k)
            k = segs[i];
        if (k > rte_pktmbuf_tailroom(m))
            k = rte_pktmbuf_tailroom(m);
        memcpy(rte_pktmbuf_append(m, (uint16_t)k), data + off, k);
        off += k;
        if (!head)
            head = m;
        else
            assert_int_equal(rte_pktmbuf_chain(head, m), 0);
    }
    return head;
}

static bool chain_verifies(const struct rte_mbuf *m, uint32_t *l4_off)
{
    static uint8_t flat[16384];
    const uint8_t *p = rte_pktmbuf_read(m, 0, m->pkt_len, flat);
    return p && l4_csum_verifies(p, m->pkt_len, l4_off);
}

/* A frame for vsw_frame_tso_request(): dst/src, tags, then the L3 bytes,
 * cut so that the first segment holds first bytes (0: as much as fits). */
static struct rte_mbuf *frame_of_l3(const struct tag *tags, unsigned ntags, uint16_t et,
                                    const uint8_t *l3, uint32_t l3len, uint32_t first)
{
    static uint8_t fr[70000];
    struct mac d = {{2, 0, 0, 0, 0, 1}}, s = {{2, 0, 0, 0, 0, 2}};
    memcpy(fr, d.b, 6);
    memcpy(fr + 6, s.b, 6);
    unsigned o = 12;
    for (unsigned i = 0; i < ntags; i++, o += 4) {
        fr[o] = (uint8_t)(tags[i].tpid >> 8), fr[o + 1] = (uint8_t)tags[i].tpid;
        fr[o + 2] = (uint8_t)(tags[i].tci >> 8), fr[o + 3] = (uint8_t)tags[i].tci;
    }
    fr[o] = (uint8_t)(et >> 8), fr[o + 1] = (uint8_t)et;
    memcpy(fr + o + 2, l3, l3len);
    const uint32_t segs[1] = {first};
    return chain_of(fr, o + 2 + l3len, segs, 1);
}

/* TCP/IPv4 with payload bytes of any length (total length as given). */
static uint32_t ipv4_tcp_big(uint8_t *b, uint32_t payload)
{
    uint32_t n = 40 + payload;
    ipv4_tcp(b, 0);
    for (uint32_t i = 0; i < payload; i++)
        b[40 + i] = (uint8_t)(i * 13 + 7);
    b[2] = (uint8_t)(n >> 8), b[3] = (uint8_t)n;
    return n;
}

/* TCP/IPv6 (hbh hop-by-hop headers in front) with payload bytes. */
static uint32_t ipv6_tcp_big(uint8_t *b, uint32_t payload, unsigned hbh)
{
    static uint8_t tcp[66000];
    memset(tcp, 0, 20);
    tcp[0] = 0x9c, tcp[1] = 0x40, tcp[2] = 0x13, tcp[3] = 0x89;
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    for (uint32_t i = 0; i < payload; i++)
        tcp[20 + i] = (uint8_t)(i * 13 + 7);
    uint32_t l4 = 20 + payload;
    /* ipv6_pkt takes 16-bit lengths; the payload length is set here. */
    ipv6_pkt(b, 6, tcp, 20, hbh);
    memcpy(b + 40 + 8 * hbh, tcp, l4);
    uint32_t plen = 8 * hbh + l4;
    b[4] = (uint8_t)(plen >> 8), b[5] = (uint8_t)plen;
    return 40 + plen;
}

static void expect_tso_refused(struct rte_mbuf *m, uint32_t l4_off, uint16_t mss, unsigned v,
                               uint32_t mtu)
{
    uint8_t before[128];
    uint64_t flags = m->ol_flags, tx = m->tx_offload;
    uint32_t n = m->data_len < sizeof(before) ? m->data_len : (uint32_t)sizeof(before);
    memcpy(before, rte_pktmbuf_mtod(m, void *), n);
    assert_int_equal(vsw_frame_tso_request(m, l4_off, mss, v, mtu), -EINVAL);
    assert_int_equal(m->ol_flags, flags);
    assert_int_equal(m->tx_offload, tx);
    assert_memory_equal(rte_pktmbuf_mtod(m, void *), before, n);
    rte_pktmbuf_free(m);
}

static void vsw_frame_tso_request__valid_segments__flags_and_lengths_of_b(void **state)
{
    (void)state;
    static uint8_t l3[70000];
    const struct tag t20[] = {{0x8100, 20}};
    /* TCP/IPv4, 60000 bytes of payload, behind a VLAN tag, in a chain. */
    uint32_t n = ipv4_tcp_big(l3, 60000);
    struct rte_mbuf *m = frame_of_l3(t20, 1, 0x0800, l3, n, 0);
    assert_true(m->nb_segs > 1);
    m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM;
    assert_int_equal(vsw_frame_tso_request(m, 18 + 20, 1448, 4, 1500), 0);
    assert_int_equal(m->l2_len, 18);
    assert_int_equal(m->l3_len, 20);
    assert_int_equal(m->l4_len, 20);
    assert_int_equal(m->tso_segsz, 1448);
    assert_int_equal(m->ol_flags & (VSW_TX_CSUM_FLAGS | RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4 |
                                    RTE_MBUF_F_TX_IPV6),
                     RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4 |
                         RTE_MBUF_F_TX_IP_CKSUM);
    rte_pktmbuf_free(m);

    /* The largest L3 length an IPv4 header can state; the MSS at the MTU. */
    n = ipv4_tcp_big(l3, 65535 - 40);
    m = frame_of_l3(NULL, 0, 0x0800, l3, n, 0);
    assert_int_equal(vsw_frame_tso_request(m, 34, 1460, 0, 1500), 0);
    rte_pktmbuf_free(m);

    /* IPv4 with options: 24-byte header, TCP with 12 bytes of options. */
    n = ipv4_tcp_big(l3, 3000);
    memmove(l3 + 24, l3 + 20, n - 20);
    l3[0] = 0x46;
    l3[20] = l3[21] = l3[22] = l3[23] = 1; /* NOPs */
    n += 4;
    l3[2] = (uint8_t)(n >> 8), l3[3] = (uint8_t)n;
    l3[24 + 12] = 8 << 4;
    m = frame_of_l3(NULL, 0, 0x0800, l3, n, 0);
    assert_int_equal(vsw_frame_tso_request(m, 14 + 24, 1000, 4, 1500), 0);
    assert_int_equal(m->l3_len, 24);
    assert_int_equal(m->l4_len, 32);
    rte_pktmbuf_free(m);

    /* An LSOv2 sender's IPv4 total length of 0 becomes the frame's. */
    n = ipv4_tcp_big(l3, 5000);
    l3[2] = l3[3] = 0;
    m = frame_of_l3(NULL, 0, 0x0800, l3, n, 0);
    assert_int_equal(vsw_frame_tso_request(m, 34, 1448, 4, 1500), 0);
    const struct rte_ipv4_hdr *ip4 = rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, 14);
    assert_int_equal(rte_be_to_cpu_16(ip4->total_length), n);
    rte_pktmbuf_free(m);

    /* TCP/IPv6, plain and behind two hop-by-hop headers, and with a
     * payload length of 0. */
    for (unsigned hbh = 0; hbh < 3; hbh += 2) {
        n = ipv6_tcp_big(l3, 20000, hbh);
        if (hbh)
            l3[4] = l3[5] = 0;
        m = frame_of_l3(NULL, 0, 0x86dd, l3, n, 0);
        assert_int_equal(vsw_frame_tso_request(m, 14 + 40 + 8 * hbh, 1400, 6, 1500), 0);
        assert_int_equal(m->l3_len, 40 + 8 * hbh);
        assert_int_equal(m->ol_flags & (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IPV6 |
                                        RTE_MBUF_F_TX_IP_CKSUM),
                         RTE_MBUF_F_TX_IPV6);
        const struct rte_ipv6_hdr *ip6 =
            rte_pktmbuf_mtod_offset(m, const struct rte_ipv6_hdr *, 14);
        assert_int_equal(rte_be_to_cpu_16(ip6->payload_len), n - 40);
        rte_pktmbuf_free(m);
    }
}

static void vsw_frame_tso_request__hostile_values__refused_frame_unchanged(void **state)
{
    (void)state;
    static uint8_t l3[70000];
    uint32_t n = ipv4_tcp_big(l3, 10000);
    /* MSS 0; MSS + headers above the MTU; a huge MSS. */
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 34, 0, 4, 1500);
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 34, 1461, 4, 1500);
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 34, 65535, 4, 1500);
    /* The wrong IP version; l4_off inside the IP header, past it, past the
     * frame. */
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 34, 1448, 6, 1500);
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 30, 1448, 4, 1500);
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 38, 1448, 4, 1500);
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), UINT32_MAX - 8, 1448, 4, 1500);
    /* The TCP header not in the first segment, cut across it. */
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 40), 34, 1448, 4, 1500);
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 50), 34, 1448, 4, 1500);
    /* Headers only, no payload. */
    uint32_t h = ipv4_tcp_big(l3, 0);
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, h, 0), 34, 1448, 4, 1500);
    /* TCP data offset below 5, and past the frame's first segment. */
    n = ipv4_tcp_big(l3, 10000);
    l3[32] = 4 << 4;
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 34, 1448, 4, 1500);
    l3[32] = 15 << 4;
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 14 + 20 + 40), 34, 1448, 4, 1500);
    l3[32] = 5 << 4;
    /* UDP; a fragment (MF, then an offset); IHL that disagrees with
     * l4_off. */
    l3[9] = 17;
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 34, 1448, 4, 1500);
    l3[9] = 6;
    l3[6] = 0x20;
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 34, 1448, 4, 1500);
    l3[6] = 0, l3[7] = 1;
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 34, 1448, 4, 1500);
    l3[7] = 0;
    l3[0] = 0x46;
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 34, 1448, 4, 1500);
    l3[0] = 0x45;
    /* A total length that disagrees with the frame, either way. */
    l3[2] = (uint8_t)((n - 1) >> 8), l3[3] = (uint8_t)(n - 1);
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 34, 1448, 4, 1500);
    l3[2] = (uint8_t)((n + 1) >> 8), l3[3] = (uint8_t)(n + 1);
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 34, 1448, 4, 1500);
    /* More L3 bytes than an IP length can say (total length left 0). */
    n = ipv4_tcp_big(l3, 65536 - 40);
    l3[2] = l3[3] = 0;
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0800, l3, n, 0), 34, 1448, 4, 1500);
    /* Not IP (an ARP EtherType). */
    n = ipv4_tcp_big(l3, 10000);
    expect_tso_refused(frame_of_l3(NULL, 0, 0x0806, l3, n, 0), 34, 1448, 0, 1500);
    /* IPv6: a fragment header, UDP, a payload length that disagrees. */
    n = ipv6_tcp_big(l3, 10000, 1);
    l3[6] = 44;
    expect_tso_refused(frame_of_l3(NULL, 0, 0x86dd, l3, n, 0), 14 + 48, 1428, 6, 1500);
    l3[6] = 0;
    l3[40] = 17;
    expect_tso_refused(frame_of_l3(NULL, 0, 0x86dd, l3, n, 0), 14 + 48, 1428, 6, 1500);
    l3[40] = 6;
    expect_tso_refused(frame_of_l3(NULL, 0, 0x86dd, l3, n, 0), 14 + 40, 1428, 6, 1500);
    l3[5] ^= 1;
    expect_tso_refused(frame_of_l3(NULL, 0, 0x86dd, l3, n, 0), 14 + 48, 1428, 6, 1500);
}

/* What a large segment the tests send looks like: IPv4 id, TCP sequence
 * number (wrapping), FIN+PSH+ACK+CWR, the payload pattern of ipv4_tcp_big(). */
#define SEG_ID0 0x1234
#define SEG_SEQ0 0xfffff000u
#define SEG_FLAGS (RTE_TCP_FIN_FLAG | RTE_TCP_PSH_FLAG | RTE_TCP_ACK_FLAG | RTE_TCP_CWR_FLAG)

/* A large TCP segment (B) of payload bytes from the test source MAC to
 * dst, version 4 or 6, its first segment holding first bytes (0: full). */
static struct rte_mbuf *tso_frame(struct mac dst, unsigned v, uint32_t payload, uint16_t mss,
                                  uint32_t first)
{
    static uint8_t l3[70000];
    uint32_t n, l3h;
    if (v == 4) {
        n = ipv4_tcp_big(l3, payload);
        l3[4] = SEG_ID0 >> 8, l3[5] = SEG_ID0 & 0xff;
        l3h = 20;
    } else {
        n = ipv6_tcp_big(l3, payload, 0);
        l3h = 40;
    }
    uint8_t *t = l3 + l3h;
    t[4] = SEG_SEQ0 >> 24, t[5] = (SEG_SEQ0 >> 16) & 0xff, t[6] = (SEG_SEQ0 >> 8) & 0xff,
    t[7] = SEG_SEQ0 & 0xff;
    t[13] = SEG_FLAGS;
    struct rte_mbuf *m = frame_of_l3(NULL, 0, v == 4 ? 0x0800 : 0x86dd, l3, n, first);
    memcpy(rte_pktmbuf_mtod(m, uint8_t *), dst.b, 6);
    assert_int_equal(vsw_frame_tso_request(m, 14 + l3h, mss, v, 1500), 0);
    return m;
}

/*
 * Check that tp kept, from index from on, the segments a large segment of
 * payload bytes and this mss becomes (version v, tag: the VLAN id in the
 * frame or 0), with checksums finished (finished) or left to the port as
 * requests: lengths, IPv4 ids counting up, sequence numbers, FIN/PSH on
 * the last only, CWR on the first only, payload bytes, and checksums
 * verified with DPDK's functions (on a finished copy if left to the port).
 * Returns the count.
 */
static unsigned check_segments(const struct test_port *tp, unsigned from, unsigned v,
                               uint32_t payload, uint16_t mss, uint16_t tag, bool finished)
{
    static uint8_t fr[2048];
    const unsigned nseg = (payload + mss - 1) / mss;
    const uint32_t l2 = tag ? 18 : 14, l3h = v == 4 ? 20 : 40, hdr = l2 + l3h + 20;
    assert_true(tp->nkept >= from + nseg);
    for (unsigned i = 0; i < nseg; i++) {
        struct rte_mbuf *m = tp->kept[from + i];
        const uint32_t len = i + 1 < nseg ? mss : payload - i * mss;
        assert_int_equal(m->pkt_len, hdr + len);
        assert_int_equal(m->ol_flags & RTE_MBUF_F_TX_TCP_SEG, 0);
        assert_int_equal(m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM, 0);
        assert_int_equal(m->ol_flags & RTE_MBUF_F_TX_L4_MASK,
                         finished ? 0 : RTE_MBUF_F_TX_TCP_CKSUM);
        struct rte_mbuf *c = NULL;
        if (!finished) {
            assert_int_equal(m->l2_len, l2);
            c = rte_pktmbuf_copy(m, g_pool, 0, UINT32_MAX);
            assert_non_null(c);
            assert_int_equal(vsw_frame_cksum_finish(c, VSW_TX_CSUM_FLAGS), 0);
        }
        const uint8_t *p = rte_pktmbuf_read(c ? c : m, 0, hdr + len, fr);
        assert_non_null(p);
        if (p != fr)
            memcpy(fr, p, hdr + len);
        rte_pktmbuf_free(c);
        if (tag) {
            assert_int_equal(fr[12], 0x81);
            assert_int_equal(((fr[14] << 8) | fr[15]) & 0xfff, tag);
        }
        const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)(fr + l2 + l3h);
        if (v == 4) {
            const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(fr + l2);
            assert_int_equal(rte_be_to_cpu_16(ip->total_length), l3h + 20 + len);
            assert_int_equal(rte_be_to_cpu_16(ip->packet_id), (uint16_t)(SEG_ID0 + i));
            assert_int_equal(rte_ipv4_cksum(ip), 0);
            assert_int_equal(rte_ipv4_udptcp_cksum_verify(ip, th), 0);
        } else {
            const struct rte_ipv6_hdr *ip = (const struct rte_ipv6_hdr *)(fr + l2);
            assert_int_equal(rte_be_to_cpu_16(ip->payload_len), 20 + len);
            assert_int_equal(rte_ipv6_udptcp_cksum_verify(ip, th), 0);
        }
        assert_int_equal(rte_be_to_cpu_32(th->sent_seq), (uint32_t)(SEG_SEQ0 + i * mss));
        /* FIN and PSH on the last segment, CWR on the first. */
        uint8_t want = RTE_TCP_ACK_FLAG | (i == 0 ? RTE_TCP_CWR_FLAG : 0) |
                       (i + 1 == nseg ? RTE_TCP_FIN_FLAG | RTE_TCP_PSH_FLAG : 0);
        assert_int_equal(th->tcp_flags, want);
        for (uint32_t k = 0; k < len; k++)
            if (fr[hdr + k] != (uint8_t)((i * mss + k) * 13 + 7))
                fail_msg("segment %u byte %u differs", i, k);
    }
    return nseg;
}

/* tp kept, at index at, the large segment whole: as sent, still B. */
static void check_whole(const struct test_port *tp, unsigned at, uint32_t pkt_len, uint16_t mss)
{
    assert_true(tp->nkept > at);
    const struct rte_mbuf *m = tp->kept[at];
    assert_int_equal(m->pkt_len, pkt_len);
    assert_int_equal(m->ol_flags & RTE_MBUF_F_TX_TCP_SEG, RTE_MBUF_F_TX_TCP_SEG);
    assert_int_equal(m->tso_segsz, mss);
}

static struct test_port *keeper(struct fixture *f, const char *name, uint32_t offloads)
{
    struct test_port *tp = port_add(f, f->sw, name, true);
    tp->keep = true;
    vsw_port_set_tx_offloads(&tp->base, offloads);
    return tp;
}

static void
vsw_forward__large_segment_flooded__cut_for_ports_without_tso_whole_for_tso(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *none = keeper(f, "N", 0);
    struct test_port *cs = keeper(f, "C", VSW_TX_CSUM);
    struct test_port *tso = keeper(f, "T", VSW_TX_CSUM | VSW_TX_TSO);
    /* 10000 bytes at MSS 1448 (7 segments), in a chain whose first segment
     * ends at an odd offset inside the payload; then TCP/IPv6. One mbuf
     * shared by the three ports. */
    inject(a, tso_frame(bcast, 4, 10000, 1448, 14 + 40 + 333));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    assert_int_equal(none->nkept, 7);
    assert_int_equal(cs->nkept, 7);
    assert_int_equal(tso->nkept, 1);
    check_segments(none, 0, 4, 10000, 1448, 0, true);
    check_segments(cs, 0, 4, 10000, 1448, 0, false);
    check_whole(tso, 0, 14 + 40 + 10000, 1448);

    inject(a, tso_frame(bcast, 6, 5000, 1200, 14 + 60 + 333));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    check_segments(none, 7, 6, 5000, 1200, 0, true);
    check_segments(cs, 7, 6, 5000, 1200, 0, false);
    check_whole(tso, 1, 14 + 60 + 5000, 1200);
    /* The frame the TSO port got is the one sent, headers and all. */
    const struct rte_mbuf *w = tso->kept[0];
    uint8_t b[64];
    const uint8_t *h = rte_pktmbuf_read(w, 14, 40, b);
    assert_int_equal(rte_be_to_cpu_16(((const struct rte_ipv4_hdr *)h)->packet_id), SEG_ID0);
    assert_int_equal(((const struct rte_tcp_hdr *)(h + 20))->tcp_flags, SEG_FLAGS);
}

/* tp kept, from index from on, n segments each one private mbuf. */
static void check_linear(const struct test_port *tp, unsigned from, unsigned n)
{
    for (unsigned i = from; i < from + n; i++) {
        const struct rte_mbuf *m = tp->kept[i];
        assert_int_equal(m->nb_segs, 1);
        assert_true(RTE_MBUF_DIRECT(m));
        assert_int_equal(rte_mbuf_refcnt_read(m), 1);
    }
}

static void vsw_forward__large_segment_to_linear_ports__one_private_mbuf_each(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *cs = keeper(f, "C", VSW_TX_CSUM);
    struct test_port *lin = keeper(f, "L", VSW_TX_LINEAR);
    struct test_port *lcs = keeper(f, "M", VSW_TX_CSUM | VSW_TX_LINEAR);
    struct test_port *tso = keeper(f, "T", VSW_TX_CSUM | VSW_TX_TSO | VSW_TX_LINEAR);
    /* A chain split at an odd offset inside the payload, shared by all
     * four ports; TCP/IPv4, then TCP/IPv6 with its last segment short. */
    inject(a, tso_frame(bcast, 4, 10000, 1448, 14 + 40 + 333));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    check_segments(cs, 0, 4, 10000, 1448, 0, false);
    check_segments(lin, 0, 4, 10000, 1448, 0, true);
    check_segments(lcs, 0, 4, 10000, 1448, 0, false);
    check_linear(lin, 0, 7);
    check_linear(lcs, 0, 7);
    assert_true(cs->kept[1]->nb_segs > 1); /* header mbuf + indirect payload */
    check_whole(tso, 0, 14 + 40 + 10000, 1448);

    inject(a, tso_frame(bcast, 6, 5000, 1200, 14 + 60 + 333));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    check_segments(lin, 7, 6, 5000, 1200, 0, true);
    check_segments(lcs, 7, 6, 5000, 1200, 0, false);
    check_linear(lin, 7, 5);
    check_linear(lcs, 7, 5);
    check_whole(tso, 1, 14 + 60 + 5000, 1200);
    /* The shared large segment went out to the TSO port unchanged. */
    uint8_t b[64];
    const uint8_t *h = rte_pktmbuf_read(tso->kept[0], 14, 40, b);
    assert_int_equal(rte_be_to_cpu_16(((const struct rte_ipv4_hdr *)h)->packet_id), SEG_ID0);
    assert_int_equal(((const struct rte_tcp_hdr *)(h + 20))->tcp_flags, SEG_FLAGS);
}

/* Like an uplink whose PMD segments with limits of its own: a segment
 * frame (headers + MSS, the tag the switch adds included) of at most
 * 1100 bytes. */
static bool tp_tso_fits(const struct vsw_port *port, const struct rte_mbuf *m, uint16_t tag)
{
    (void)port;
    return (uint32_t)m->l2_len + m->l3_len + m->l4_len + m->tso_segsz + (tag ? 4u : 0u) <= 1100;
}

static const struct vsw_port_class test_port_tso_limited_class = {
    .type = "test-tso-limited",
    .inband_vlan = true,
    .rx_burst = tp_rx_burst,
    .tx_burst = tp_tx_burst,
    .tso_fits = tp_tso_fits,
    .wait_fd = tp_wait_fd,
    .wait_arm = tp_wait_arm,
    .wait_disarm = tp_wait_disarm,
    .destroy = tp_destroy,
};

static void vsw_forward__large_segments_to_tso4_port__ipv4_whole_ipv6_cut(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    /* net_tap's kind: it segments TCP/IPv4 only. */
    struct test_port *t4 = keeper(f, "T4", VSW_TX_CSUM | VSW_TX_TSO4);
    struct test_port *t6 = keeper(f, "T6", VSW_TX_CSUM | VSW_TX_TSO6);
    inject(a, tso_frame(bcast, 4, 10000, 1448, 14 + 40 + 333));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    assert_int_equal(t4->nkept, 1);
    check_whole(t4, 0, 14 + 40 + 10000, 1448);
    assert_int_equal(t6->nkept, 7);
    check_segments(t6, 0, 4, 10000, 1448, 0, false);

    inject(a, tso_frame(bcast, 6, 5000, 1200, 14 + 60 + 333));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    assert_int_equal(t4->nkept, 1 + 5);
    check_segments(t4, 1, 6, 5000, 1200, 0, false);
    assert_int_equal(t6->nkept, 7 + 1);
    check_whole(t6, 7, 14 + 60 + 5000, 1200);
}

static void vsw_forward__large_segment_beyond_port_tso_limit__cut(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *l = tp_create_cls("L", &test_port_tso_limited_class);
    assert_non_null(l);
    assert_true(f->ntp < MAX_TP);
    f->tp[f->ntp++] = l;
    assert_int_equal(vsw_port_attach(f->sw, &l->base), 0);
    vsw_port_set_link(&l->base, true);
    l->keep = true;
    vsw_port_set_tx_offloads(&l->base, VSW_TX_CSUM | VSW_TX_TSO);
    /* 14 + 20 + 20 + 1000 = 1054: within its limit, whole. */
    inject(a, tso_frame(bcast, 4, 4000, 1000, 0));
    /* 1104 bytes: beyond it, cut. */
    inject(a, tso_frame(bcast, 4, 4000, 1050, 0));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    assert_int_equal(l->nkept, 1 + 4);
    check_whole(l, 0, 14 + 20 + 20 + 4000, 1000);
    check_segments(l, 1, 4, 4000, 1050, 0, false);
    /* On a trunk the tag counts: 1054 + 4 fits; 1100 untagged, as the
     * frame came in, is 1104 with it: cut. */
    static const uint16_t allowed[] = {20};
    set_access(a, 20);
    set_trunk(l, allowed, 1, 0);
    inject(a, tso_frame(bcast, 4, 4000, 1000, 0));
    inject(a, tso_frame(bcast, 4, 4000, 1046, 0));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    assert_int_equal(l->nkept, 5 + 1 + 4);
    check_whole(l, 5, 18 + 20 + 20 + 4000, 1000);
    check_segments(l, 6, 4, 4000, 1046, 20, false);
}

static void vsw_forward__large_segment_to_inband_trunk__every_segment_tagged(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *t = port_add_inband(f, f->sw, "T");
    static const uint16_t allowed[] = {20};
    set_access(a, 20);
    set_trunk(t, allowed, 1, 0);
    t->keep = true;
    vsw_port_set_tx_offloads(&t->base, 0);
    inject(a, tso_frame(bcast, 4, 4000, 1000, 0));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    assert_int_equal(t->nkept, 4);
    check_segments(t, 0, 4, 4000, 1000, 20, true);
    /* The same to a port that takes checksum requests: l2_len counts the tag. */
    vsw_port_set_tx_offloads(&t->base, VSW_TX_CSUM);
    inject(a, tso_frame(bcast, 4, 4000, 1000, 0));
    settle(f);
    assert_int_equal(t->nkept, 8);
    check_segments(t, 4, 4, 4000, 1000, 20, false);
}

static void vsw_forward__checksum_request_to_port_without_csum__finished_and_verified(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *none = keeper(f, "N", 0);
    struct test_port *cs = keeper(f, "C", VSW_TX_CSUM);
    /* One shared mbuf: the port that takes the request sees it untouched. */
    inject(a, csum_frame(bcast, host(f, 0, 1), NULL, 0, -1));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    assert_int_equal(none->nkept, 1);
    assert_int_equal(cs->nkept, 1);
    static uint8_t fr[2048];
    const struct rte_mbuf *m = none->kept[0];
    assert_int_equal(m->ol_flags & VSW_TX_CSUM_FLAGS, 0);
    assert_int_equal(m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK, RTE_MBUF_F_RX_L4_CKSUM_GOOD);
    const uint8_t *p = rte_pktmbuf_read(m, 0, m->pkt_len, fr);
    const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(p + 14);
    assert_int_equal(rte_ipv4_udptcp_cksum_verify(ip, ip + 1), 0);
    m = cs->kept[0];
    assert_int_equal(m->ol_flags & VSW_TX_CSUM_FLAGS, RTE_MBUF_F_TX_TCP_CKSUM);
    p = rte_pktmbuf_read(m, 0, m->pkt_len, fr);
    ip = (const struct rte_ipv4_hdr *)(p + 14);
    assert_int_not_equal(rte_ipv4_udptcp_cksum_verify(ip, ip + 1), 0);
}

/* Frames of one burst to one learned port go out together (stage_run in
 * forward.c): each is still judged alone, in order: a too-long one dropped
 * among them, a checksum request finished for a port that takes none,
 * every source learned, the rest as they came. */
static void vsw_forward__run_of_frames_to_one_port__each_judged_alone_in_order(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *k = port_add(f, f->sw, "K", true); /* takes no offloads */
    struct mac dk = host(f, 2, 1);
    struct mac n[4] = {host(f, 6, 1), host(f, 6, 2), host(f, 6, 3), host(f, 6, 4)};
    learn(f, f->sw, k, dk);
    vsw_port_set_max_frame(&k->base, 300);
    clear_logs(f);
    struct vsw_port_stats a0 = stats(a), k0 = stats(k);

    uint32_t seq[5];
    for (unsigned i = 0; i < 5; i++)
        seq[i] = ++f->seq;
    struct rte_mbuf *m[5] = {
        frame_new(dk, n[0], 64, seq[0]),
        frame_new(dk, n[1], 400, seq[1]), /* longer than K takes */
        csum_frame(dk, n[2], NULL, 0, -1),
        frame_new(dk, n[0], 80, seq[3]),
        frame_new(dk, n[3], 64, seq[4]),
    };
    for (unsigned i = 0; i < 5; i++)
        assert_non_null(m[i]);
    uint32_t csum_len = m[2]->pkt_len;
    assert_true(csum_len <= 300);
    assert_int_equal(rte_ring_enqueue_bulk(a->rx, (void **)m, 5, NULL), 5);
    tp_kick(a);
    settle(f);

    assert_int_equal(k->nlog, 4);
    assert_int_equal(k->log[0].seq, seq[0]);
    assert_int_equal(k->log[0].len, 64);
    assert_int_equal(k->log[1].len, csum_len);
    assert_int_equal(k->log[1].csum, 0); /* finished on the way */
    assert_int_equal(k->log[2].seq, seq[3]);
    assert_int_equal(k->log[2].len, 80);
    assert_int_equal(k->log[3].seq, seq[4]);
    assert_int_equal(a->nlog, 0);
    struct vsw_port_stats a1 = stats(a), k1 = stats(k);
    assert_int_equal(a1.rx_packets - a0.rx_packets, 5);
    assert_int_equal(k1.tx_packets - k0.tx_packets, 4);
    assert_int_equal(k1.drops[VSW_DROP_TOO_BIG] - k0.drops[VSW_DROP_TOO_BIG], 1);
    assert_int_equal(fixture_drops(f), 1);
    for (unsigned i = 0; i < 4; i++)
        assert_true(wait_fdb(f, f->sw, n[i], a, WAIT_MS));

    /* Frames that ask nothing: with K taking less than A may send, each
     * is still measured; with K taking all A may send, the run goes in
     * whole, in order. */
    clear_logs(f);
    k0 = stats(k);
    struct rte_mbuf *p[3];
    uint32_t ps[3];
    for (unsigned i = 0; i < 3; i++) {
        ps[i] = ++f->seq;
        p[i] = frame_new(dk, n[0], i == 1 ? 400 : 64, ps[i]);
        assert_non_null(p[i]);
    }
    assert_int_equal(rte_ring_enqueue_bulk(a->rx, (void **)p, 3, NULL), 3);
    tp_kick(a);
    settle(f);
    assert_int_equal(k->nlog, 2);
    assert_int_equal(k->log[0].seq, ps[0]);
    assert_int_equal(k->log[1].seq, ps[2]);
    assert_int_equal(stats(k).drops[VSW_DROP_TOO_BIG] - k0.drops[VSW_DROP_TOO_BIG], 1);

    vsw_port_set_max_frame(&k->base, 9014);
    vsw_port_set_rx_max_frame(&a->base, 9014);
    clear_logs(f);
    enum { R = 12 };
    struct rte_mbuf *r[R];
    uint32_t rs[R];
    for (unsigned i = 0; i < R; i++) {
        rs[i] = ++f->seq;
        r[i] = frame_new(dk, n[i % 2], (uint16_t)(64 + 100 * i), rs[i]);
        assert_non_null(r[i]);
    }
    assert_int_equal(rte_ring_enqueue_bulk(a->rx, (void **)r, R, NULL), R);
    tp_kick(a);
    settle(f);
    assert_int_equal(k->nlog, R);
    for (unsigned i = 0; i < R; i++) {
        assert_int_equal(k->log[i].seq, rs[i]);
        assert_int_equal(k->log[i].len, 64 + 100 * i);
    }
}

static void vsw_forward__large_segment__size_checked_as_its_segments(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *fits = keeper(f, "F", 0);
    struct test_port *small = keeper(f, "S", 0);
    struct test_port *tso_small = keeper(f, "T", VSW_TX_CSUM | VSW_TX_TSO);
    vsw_port_set_max_frame(&fits->base, 14 + 40 + 1448);
    vsw_port_set_max_frame(&small->base, 14 + 40 + 1447);
    vsw_port_set_max_frame(&tso_small->base, 14 + 40 + 1447);
    vsw_port_set_rx_max_frame(&a->base, 14 + 40 + 1448);
    inject(a, tso_frame(bcast, 4, 20000, 1448, 0));
    settle(f);
    assert_int_equal(fits->nkept, 14);
    check_segments(fits, 0, 4, 20000, 1448, 0, true);
    assert_int_equal(small->nkept, 0);
    assert_int_equal(tso_small->nkept, 0);
    assert_int_equal(stats(small).drops[VSW_DROP_TOO_BIG], 1);
    assert_int_equal(stats(tso_small).drops[VSW_DROP_TOO_BIG], 1);
    assert_int_equal(stats(a).drops[VSW_DROP_RX_TOO_BIG], 0);
    /* From a sender whose MTU is below its segments: refused at ingress. */
    vsw_port_set_rx_max_frame(&a->base, 14 + 40 + 1447);
    inject(a, tso_frame(bcast, 4, 20000, 1448, 0));
    settle(f);
    assert_int_equal(stats(a).drops[VSW_DROP_RX_TOO_BIG], 1);
    assert_int_equal(fits->nkept, 14);
}

static void vsw_forward__large_segment_captured_and_mirrored__whole_and_cut(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *b = keeper(f, "B", 0);
    struct test_port *mir = keeper(f, "M", 0);
    struct vsw_port *srcs[] = {&b->base};
    assert_int_equal(vsw_mirror_set(f->sw, srcs, 1, &mir->base), 0);
    struct vsw_capture *cap = NULL;
    assert_int_equal(vsw_capture_start(&b->base, 64, &cap), 0);
    inject(a, tso_frame(bcast, 4, 6000, 1448, 0));
    settle(f);
    /* B and its mirror get segments; the capture shows the large segment
     * as a NIC doing TSO is handed it. */
    check_segments(b, 0, 4, 6000, 1448, 0, true);
    /* The mirror port also gets the flood itself (it is on the switch): the
     * mirror copies are the ones flagged as such. */
    unsigned mirrored = 0;
    for (unsigned i = 0; i < mir->nkept; i++)
        if (mir->kept[i]->ol_flags & vsw_mirror_copy_flag)
            mir->kept[mirrored++] = mir->kept[i];
        else
            rte_pktmbuf_free(mir->kept[i]);
    mir->nkept = mirrored;
    assert_int_equal(mirrored, 5);
    check_segments(mir, 0, 4, 6000, 1448, 0, true);
    struct rte_mbuf *got[4];
    uint64_t ts[4];
    unsigned n = 0;
    uint64_t end = now_us() + WAIT_MS * 1000ull;
    while (n == 0 && now_us() < end)
        n = vsw_capture_read(cap, got, ts, 4);
    assert_int_equal(n, 1);
    assert_int_equal(got[0]->pkt_len, 14 + 40 + 6000);
    rte_pktmbuf_free_bulk(got, n);
    vsw_capture_stop(cap);
    vsw_mirror_clear(f->sw);
}

static void vsw_forward__large_segment_into_more_than_a_batch__every_segment_sent(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *none = keeper(f, "N", 0);
    /* 67 segments: more than one round stages for a port. */
    inject(a, tso_frame(bcast, 4, 60000, 900, 0));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    assert_int_equal(check_segments(none, 0, 4, 60000, 900, 0, true), 67);
    assert_int_equal(none->nkept, 67);
    assert_int_equal(stats(none).tx_packets, 67);
}

static void vsw_forward__large_segment_to_port_that_writes__segments_its_own(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *tso = keeper(f, "T", VSW_TX_TSO);
    assert_true(f->ntp < MAX_TP);
    struct test_port *wr = tp_create_cls("W", &test_port_writes_class);
    assert_non_null(wr);
    f->tp[f->ntp++] = wr;
    assert_int_equal(vsw_port_attach(f->sw, &wr->base), 0);
    vsw_port_set_link(&wr->base, true);
    wr->keep = true;
    for (unsigned v = 4; v <= 6; v += 2)
        inject(a, tso_frame(bcast, v, 4000, 1000, 0));
    settle(f);
    assert_int_equal(fixture_drops(f), 0);
    assert_int_equal(tso->nkept, 2);
    assert_int_equal(wr->nkept, 8);
    check_segments(wr, 0, 4, 4000, 1000, 0, true);
    check_segments(wr, 4, 6, 4000, 1000, 0, true);
    /* Nothing in them is shared with the large segments the TSO port holds. */
    for (unsigned i = 0; i < wr->nkept; i++)
        for (const struct rte_mbuf *s = wr->kept[i]; s; s = s->next) {
            assert_true(RTE_MBUF_DIRECT(s));
            assert_int_equal(rte_mbuf_refcnt_read(s), 1);
        }
}

static void vsw_forward__large_segment_the_switch_cannot_cut__dropped_offload(void **state)
{
    struct fixture *f = *state;
    struct test_port *a = port_add(f, f->sw, "A", true);
    struct test_port *none = keeper(f, "N", 0);
    struct test_port *tso = keeper(f, "T", VSW_TX_TSO);
    /* A producer's bug: MSS 0 after validation; more segments than the
     * switch cuts one frame into (60000 bytes at MSS 100). */
    struct rte_mbuf *m = tso_frame(bcast, 4, 3000, 1448, 0);
    m->tso_segsz = 0;
    inject(a, m);
    inject(a, tso_frame(bcast, 4, 60000, 100, 0));
    settle(f);
    assert_int_equal(none->nkept, 0);
    assert_int_equal(stats(none).drops[VSW_DROP_OFFLOAD], 2);
    /* The port that takes them whole still gets both. */
    assert_int_equal(tso->nkept, 2);
}

static void vsw_frame_cksum_finish__requests__right_checksum_at_the_parsed_offset(void **state)
{
    (void)state;
    struct mac d = {{2, 0, 0, 0, 0, 1}}, s = {{2, 0, 0, 0, 0, 2}};
    uint32_t l4 = 0;
    /* TCP/IPv4 behind a VLAN tag with priority bits, IP header too. */
    const struct tag t20p[] = {{0x8100, PRIO(5) | 20}};
    uint8_t l3[9100];
    uint16_t n = ipv4_tcp(l3, 100);
    l3[10] = l3[11] = 0x77;
    struct rte_mbuf *m = stack_frame(d, s, t20p, 1, -1, 0x0800, l3, n, 0);
    assert_int_equal(vsw_frame_csum_request(m, 38, true, 4), 0);
    m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
    assert_int_equal(vsw_frame_cksum_finish(m, VSW_TX_CSUM_FLAGS), 0);
    assert_int_equal(m->ol_flags & VSW_TX_CSUM_FLAGS, 0);
    assert_true(chain_verifies(m, &l4));
    assert_int_equal(l4, 38);
    rte_pktmbuf_free(m);

    /* UDP/IPv6 behind a hop-by-hop header: DPDK's own pseudo header would
     * name the extension header and count it. */
    uint8_t udp[108];
    memset(udp, 0x33, sizeof(udp));
    udp[0] = 0x9c, udp[1] = 0x41, udp[2] = 0x13, udp[3] = 0x8a;
    udp[4] = 0, udp[5] = sizeof(udp);
    n = ipv6_pkt(l3, 17, udp, sizeof(udp), 1);
    m = stack_frame(d, s, NULL, 0, -1, 0x86dd, l3, n, 0);
    assert_int_equal(vsw_frame_csum_request(m, 14 + 48, false, 0), 0);
    assert_int_equal(m->l3_len, 48);
    assert_int_equal(vsw_frame_cksum_finish(m, RTE_MBUF_F_TX_UDP_CKSUM), 0);
    assert_true(chain_verifies(m, &l4));
    assert_int_equal(l4, 62);
    rte_pktmbuf_free(m);

    /* A chain with an odd-length segment inside the summed bytes, one
     * with the checksum field across segments: -EAGAIN, nothing written;
     * a copy in full segments is finished right. */
    static uint8_t frame[9100];
    n = ipv4_tcp(l3, 8000);
    memcpy(frame, d.b, 6);
    memcpy(frame + 6, s.b, 6);
    frame[12] = 0x08, frame[13] = 0x00;
    memcpy(frame + 14, l3, n);
    static const uint32_t layouts[][3] = {{14 + 40 + 333, 1001, 4000}, {14 + 20 + 17, 2000, 0}};
    for (unsigned i = 0; i < 2; i++) {
        m = chain_of(frame, 14u + n, layouts[i], 3);
        assert_int_equal(vsw_frame_csum_request(m, 34, true, 4), 0);
        assert_int_equal(vsw_frame_cksum_finish(m, RTE_MBUF_F_TX_TCP_CKSUM), -EAGAIN);
        assert_int_equal(m->ol_flags & RTE_MBUF_F_TX_TCP_CKSUM, RTE_MBUF_F_TX_TCP_CKSUM);
        assert_false(chain_verifies(m, &l4));
        struct rte_mbuf *c = rte_pktmbuf_copy(m, g_pool, 0, UINT32_MAX);
        assert_non_null(c);
        assert_int_equal(vsw_frame_cksum_finish(c, RTE_MBUF_F_TX_TCP_CKSUM), 0);
        assert_true(chain_verifies(c, &l4));
        rte_pktmbuf_free(c);
        rte_pktmbuf_free(m);
    }

    /* Requests that do not match the frame. */
    n = ipv4_tcp(l3, 100);
    m = stack_frame(d, s, NULL, 0, -1, 0x0800, l3, n, 0);
    assert_int_equal(vsw_frame_csum_request(m, 34, false, 6), -EINVAL); /* not IPv6 */
    assert_int_equal(vsw_frame_csum_request(m, 30, true, 4), -EINVAL);  /* inside the IP header */
    assert_int_equal(vsw_frame_csum_request(m, 38, true, 4), -EINVAL);  /* not behind it */
    assert_int_equal(vsw_frame_csum_request(m, 140, true, 4), -EINVAL); /* past the end */
    assert_int_equal(m->ol_flags & VSW_TX_CSUM_FLAGS, 0);
    m->l2_len = 14, m->l3_len = 20;
    m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM; /* it is TCP */
    assert_int_equal(vsw_frame_cksum_finish(m, VSW_TX_CSUM_FLAGS), -EINVAL);
    m->ol_flags &= ~RTE_MBUF_F_TX_L4_MASK;
    m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM;
    m->l2_len = 18; /* a tag that is not there */
    assert_int_equal(vsw_frame_cksum_finish(m, VSW_TX_CSUM_FLAGS), -EINVAL);
    rte_pktmbuf_free(m);
}

/* The host's stack, through a host vNIC, sends a TCP frame behind a
 * priority tag (a VLAN-0 interface, or egress priority mapping) and leaves
 * its checksum to the network: the kernel's checksum start counts the tag.
 * The frame is taken (not refused as a header the port cannot map) and
 * reaches a VM port untagged with its offsets and checksum right. Needs
 * root (a TAP, a packet socket with virtio-net headers). */
static void vsw_host_port__priority_tagged_frame_with_partial_checksum__offsets_behind_the_tag(
    void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    struct test_port *a = port_add(f, f->sw, "A", true);
    vsw_port_set_tx_offloads(&a->base, VSW_TX_CSUM); /* takes the request as such */
    char ifname[16];
    snprintf(ifname, sizeof(ifname), "tvh%d", (int)getpid() % 1000000);
    struct vsw_host_params hp = {.ifname = ifname, .mtu = 1500, .pool = g_pool};
    assert_int_equal(vsw_host_port_create(&hp, &f->host), 0);
    assert_int_equal(vsw_port_attach(f->sw, f->host), 0);

    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    assert_int_equal(setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)), 0);
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(ifname)};
    assert_true(sll.sll_ifindex > 0);
    uint8_t pkt[sizeof(struct virtio_net_hdr) + 400];
    struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                .gso_type = VIRTIO_NET_HDR_GSO_NONE,
                                .csum_start = 18 + 20,
                                .csum_offset = 16};
    memcpy(pkt, &vh, sizeof(vh));
    uint8_t *fr = pkt + sizeof(vh);
    memset(fr, 0xff, 6);
    struct mac src = host(f, 9, 1);
    memcpy(fr + 6, src.b, 6);
    fr[12] = 0x81, fr[13] = 0x00, fr[14] = 0xa0, fr[15] = 0x00; /* priority 5, VLAN 0 */
    fr[16] = 0x08, fr[17] = 0x00;
    uint16_t n = ipv4_tcp(fr + 18, 200);
    /* As the kernel leaves it: the pseudo-header sum in the field. */
    uint32_t ps = csum_add(0, fr + 18 + 12, 8) + 6 + 220;
    uint16_t folded = csum_fold(ps);
    fr[18 + 36] = (uint8_t)(folded >> 8);
    fr[18 + 37] = (uint8_t)folded;
    ssize_t w = sendto(fd, pkt, sizeof(vh) + 18u + n, 0, (struct sockaddr *)&sll, sizeof(sll));
    close(fd);
    assert_int_equal(w, (ssize_t)(sizeof(vh) + 18u + n));

    const struct tp_rec *r = NULL;
    uint64_t end = now_us() + WAIT_MS * 1000ull;
    while (!r && now_us() < end) {
        pump(f);
        for (unsigned i = 0; i < a->nlog && !r; i++)
            if (a->log[i].csum && mac_eq(a->log[i].src, src))
                r = &a->log[i];
        usleep(200);
    }
    assert_int_equal(vsw_host_port_bad_headers(f->host), 0);
    assert_non_null(r);
    assert_int_equal(r->len, 14u + n);
    assert_int_equal(r->csum, RTE_MBUF_F_TX_TCP_CKSUM);
    assert_int_equal(r->l2_len, 14);
    assert_int_equal(r->l3_len, 20);
    assert_int_equal(r->csum_finish, 0);
    assert_true(r->csum_verifies);
    assert_int_equal(r->l4_off, 34);
}

/* A frame the host vNIC read: 14 + n bytes of L3 in a chain of full
 * segments, as the port reads them. */
static struct rte_mbuf *host_read_frame(const uint8_t *l3, uint32_t n, uint16_t et)
{
    return frame_of_l3(NULL, 0, et, l3, n, 0);
}

static void expect_vnet_refused(const struct virtio_net_hdr *vh, struct rte_mbuf *m, int want)
{
    uint8_t before[128];
    uint64_t flags = m->ol_flags, tx = m->tx_offload;
    memcpy(before, rte_pktmbuf_mtod(m, void *), sizeof(before));
    assert_int_equal(vsw_host_vnet_to_mbuf(vh, m, 1518, 1500), want);
    assert_int_equal(m->ol_flags, flags);
    assert_int_equal(m->tx_offload, tx);
    assert_memory_equal(rte_pktmbuf_mtod(m, void *), before, sizeof(before));
    rte_pktmbuf_free(m);
}

/* The kernel hands a host vNIC 64 KiB TCP segments (TUN_F_TSO4/6) with a
 * GSO header: each becomes one frame of B, longer than the frame limit but
 * held to the MTU in the segments it becomes; a plain frame stays held to
 * the frame limit. */
static void vsw_host_vnet_to_mbuf__tcp_gso__frame_of_b(void **state)
{
    (void)state;
    static uint8_t l3[70000];
    uint32_t n = ipv4_tcp_big(l3, 60000);
    struct rte_mbuf *m = host_read_frame(l3, n, 0x0800);
    struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                .gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
                                .hdr_len = 54,
                                .gso_size = 1448,
                                .csum_start = 34,
                                .csum_offset = 16};
    assert_int_equal(vsw_host_vnet_to_mbuf(&vh, m, 1518, 1500), 0);
    assert_int_equal(m->ol_flags & (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4 |
                                    RTE_MBUF_F_TX_L4_MASK),
                     RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM);
    assert_int_equal(m->tso_segsz, 1448);
    assert_int_equal(m->l2_len + m->l3_len + m->l4_len, 54);
    rte_pktmbuf_free(m);

    n = ipv6_tcp_big(l3, 30000, 0);
    m = host_read_frame(l3, n, 0x86dd);
    vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
    vh.gso_size = 1428;
    vh.hdr_len = 200; /* the kernel's linear part: more than the headers */
    vh.csum_start = 54;
    assert_int_equal(vsw_host_vnet_to_mbuf(&vh, m, 1518, 1500), 0);
    assert_int_equal(m->ol_flags & (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV6),
                     RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV6);
    assert_int_equal(m->tso_segsz, 1428);
    rte_pktmbuf_free(m);

    /* A plain frame longer than the limit is too big, not a bad header. */
    n = ipv4_tcp_big(l3, 3000);
    m = host_read_frame(l3, n, 0x0800);
    struct virtio_net_hdr plain = {.gso_type = VIRTIO_NET_HDR_GSO_NONE};
    expect_vnet_refused(&plain, m, -EMSGSIZE);
}

/* GSO headers the host port must not honour: refused (the port drops and
 * counts them), the frame unchanged. */
static void vsw_host_vnet_to_mbuf__hostile_gso_headers__refused_frame_unchanged(void **state)
{
    (void)state;
    static uint8_t l3[70000];
    const struct virtio_net_hdr good = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                        .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                                        .hdr_len = 54,
                                        .gso_size = 1448,
                                        .csum_start = 34,
                                        .csum_offset = 16};
    uint32_t n = ipv4_tcp_big(l3, 20000);
    struct virtio_net_hdr vh;
#define HOSTILE(field, value)                                                                      \
    do {                                                                                           \
        vh = good;                                                                                 \
        vh.field = value;                                                                          \
        expect_vnet_refused(&vh, host_read_frame(l3, n, 0x0800), -EINVAL);                        \
    } while (0)
    HOSTILE(gso_size, 0);
    HOSTILE(gso_size, 1461);                     /* 20 + 20 + 1461 > MTU 1500 */
    HOSTILE(hdr_len, (uint16_t)(14 + n + 1));    /* past the frame */
    HOSTILE(csum_start, 30);                     /* inside the IP header */
    HOSTILE(csum_start, 38);                     /* not the TCP header */
    HOSTILE(csum_offset, 6);                     /* not TCP's checksum */
    HOSTILE(flags, 0);                           /* TCP checksum not partial */
    HOSTILE(gso_type, VIRTIO_NET_HDR_GSO_TCPV6); /* an IPv4 frame */
    HOSTILE(gso_type, VIRTIO_NET_HDR_GSO_UDP);   /* UFO */
    HOSTILE(gso_type, 5);                        /* VIRTIO_NET_HDR_GSO_UDP_L4 */
    HOSTILE(gso_type, VIRTIO_NET_HDR_GSO_ECN);   /* ECN on no GSO */
#undef HOSTILE
    struct rte_mbuf *m = host_read_frame(l3, n, 0x0800);
    assert_int_equal(vsw_host_vnet_to_mbuf(&good, m, 1518, 1500), 0); /* each differs in one */
    rte_pktmbuf_free(m);

    /* GSO on UDP: TCPV4 asked for a UDP datagram. */
    l3[9] = 17;
    l3[10] = l3[11] = 0;
    expect_vnet_refused(&good, host_read_frame(l3, n, 0x0800), -EINVAL);
    /* On a fragment. */
    n = ipv4_tcp_big(l3, 20000);
    l3[6] = 0x20; /* MF */
    expect_vnet_refused(&good, host_read_frame(l3, n, 0x0800), -EINVAL);
    /* The IP length saying less than the frame. */
    n = ipv4_tcp_big(l3, 20000);
    l3[2] = 0x10, l3[3] = 0x00;
    expect_vnet_refused(&good, host_read_frame(l3, n, 0x0800), -EINVAL);
    /* No payload behind the headers. */
    n = ipv4_tcp_big(l3, 0);
    expect_vnet_refused(&good, host_read_frame(l3, n, 0x0800), -EINVAL);
}

/* Open a packet socket with virtio-net headers on ifname (ETH_P_ALL). */
static int vnet_packet_socket(const char *ifname)
{
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    assert_true(fd >= 0);
    int one = 1;
    assert_int_equal(setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)), 0);
    struct sockaddr_ll sll = {.sll_family = AF_PACKET,
                              .sll_protocol = htons(ETH_P_ALL),
                              .sll_ifindex = (int)if_nametoindex(ifname)};
    assert_true(sll.sll_ifindex > 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0);
    return fd;
}

/* Wait for a frame from src the host's stack received on the packet socket
 * fd: its length (0 if none came), its header in *vh. */
static uint32_t host_stack_got(struct fixture *f, int fd, struct mac src, struct virtio_net_hdr *vh,
                               uint8_t *buf, size_t size)
{
    uint64_t end = now_us() + WAIT_MS * 1000ull;
    while (now_us() < end) {
        pump(f);
        struct iovec iov[2] = {{vh, sizeof(*vh)}, {buf, size}};
        struct sockaddr_ll from;
        struct msghdr mh = {
            .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = iov, .msg_iovlen = 2};
        ssize_t r = recvmsg(fd, &mh, MSG_DONTWAIT);
        if (r < 0) {
            usleep(200);
            continue;
        }
        if (from.sll_pkttype != PACKET_OUTGOING && (size_t)r > sizeof(*vh) + 12 &&
            mac_eq(buf + 6, src))
            return (uint32_t)((size_t)r - sizeof(*vh));
    }
    return 0;
}

/* The pseudo-header sum of the TCP/IPv4 packet at ip, as the kernel wants
 * it in the field of a partial checksum. */
static uint16_t ipv4_tcp_pseudo(const uint8_t *ip)
{
    uint32_t tot = (uint32_t)ip[2] << 8 | ip[3];
    return csum_fold(csum_add(0, ip + 12, 8) + 6 + tot - (uint32_t)(ip[0] & 0xf) * 4);
}

/* A VM's large TCP segment (B) and a frame whose checksum it left to the
 * network (A) reach the host's stack through the host vNIC whole: one
 * frame with a GSO_TCPV4 header for B, NEEDS_CSUM for both, and in the
 * checksum field the pseudo-header sum over the whole TCP length, whatever
 * the sender left there. Needs root (a TAP). */
static void vsw_host_port__large_segment_to_the_host__whole_with_gso_header(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    struct test_port *a = port_add(f, f->sw, "A", true);
    char ifname[16];
    snprintf(ifname, sizeof(ifname), "tvg%d", (int)getpid() % 1000000);
    struct vsw_host_params hp = {.ifname = ifname, .mtu = 1500, .pool = g_pool};
    assert_int_equal(vsw_host_port_create(&hp, &f->host), 0);
    assert_int_equal(vsw_port_tx_offloads(f->host), VSW_TX_CSUM | VSW_TX_TSO);
    assert_int_equal(vsw_port_attach(f->sw, f->host), 0);
    int fd = vnet_packet_socket(ifname);

    static uint8_t l3[70000], got[70000];
    struct mac dst = host(f, 8, 1), src = host(f, 9, 1);
    uint32_t n = ipv4_tcp_big(l3, 8000);
    struct rte_mbuf *m = frame_of_l3(NULL, 0, 0x0800, l3, n, 0);
    memcpy(rte_pktmbuf_mtod(m, uint8_t *), dst.b, 6);
    memcpy(rte_pktmbuf_mtod(m, uint8_t *) + 6, src.b, 6);
    assert_int_equal(vsw_frame_tso_request(m, 34, 1448, 4, 1500), 0);
    inject(a, m);
    struct virtio_net_hdr vh;
    uint32_t len = host_stack_got(f, fd, src, &vh, got, sizeof(got));
    assert_int_equal(len, 14 + n);
    assert_int_equal(vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_TCPV4);
    assert_int_equal(vh.gso_size, 1448);
    assert_true(vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_int_equal(vh.csum_start, 34);
    assert_int_equal(vh.csum_offset, 16);
    assert_int_equal((uint16_t)(got[14 + 36] << 8 | got[14 + 37]), ipv4_tcp_pseudo(got + 14));
    assert_memory_equal(got + 14 + 40, l3 + 40, 8000);

    /* A frame of A, the field holding garbage (0xbeef). */
    src = host(f, 9, 2);
    n = ipv4_tcp(l3, 300);
    m = stack_frame(dst, src, NULL, 0, -1, 0x0800, l3, (uint16_t)n, 0);
    assert_int_equal(vsw_frame_csum_request(m, 34, true, 4), 0);
    inject(a, m);
    len = host_stack_got(f, fd, src, &vh, got, sizeof(got));
    assert_int_equal(len, 14 + n);
    assert_int_equal(vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);
    assert_true(vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_int_equal(vh.csum_start, 34);
    assert_int_equal((uint16_t)(got[14 + 36] << 8 | got[14 + 37]), ipv4_tcp_pseudo(got + 14));
    close(fd);
}

/* The host's stack sends a TCP segment larger than the MTU through the
 * host vNIC, leaving the cutting to it (GSO): it reaches a VM port as one
 * frame of B. A header the port cannot honour (a partial checksum that
 * does not start at the TCP header) is dropped and counted. Needs root (a TAP, a packet
 * socket with virtio-net headers). */
static void vsw_host_port__gso_from_the_host__one_frame_of_b_bad_header_counted(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    struct test_port *a = port_add(f, f->sw, "A", true);
    vsw_port_set_tx_offloads(&a->base, VSW_TX_CSUM | VSW_TX_TSO);
    a->keep = true;
    char ifname[16];
    snprintf(ifname, sizeof(ifname), "tvr%d", (int)getpid() % 1000000);
    struct vsw_host_params hp = {.ifname = ifname, .mtu = 1500, .pool = g_pool};
    assert_int_equal(vsw_host_port_create(&hp, &f->host), 0);
    assert_int_equal(vsw_port_attach(f->sw, f->host), 0);
    int fd = vnet_packet_socket(ifname);

    static uint8_t pkt[sizeof(struct virtio_net_hdr) + 70000];
    struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                                .hdr_len = 54,
                                .gso_size = 1448,
                                .csum_start = 34,
                                .csum_offset = 16};
    memcpy(pkt, &vh, sizeof(vh));
    uint8_t *fr = pkt + sizeof(vh);
    struct mac src = host(f, 9, 3);
    memset(fr, 0xff, 6);
    memcpy(fr + 6, src.b, 6);
    fr[12] = 0x08, fr[13] = 0x00;
    uint32_t n = ipv4_tcp_big(fr + 14, 20000);
    uint16_t ps = ipv4_tcp_pseudo(fr + 14);
    fr[14 + 36] = (uint8_t)(ps >> 8), fr[14 + 37] = (uint8_t)ps;
    ssize_t w = send(fd, pkt, sizeof(vh) + 14 + n, 0);
    assert_int_equal(w, (ssize_t)(sizeof(vh) + 14 + n));

    const struct tp_rec *r = NULL;
    uint64_t end = now_us() + WAIT_MS * 1000ull;
    while (!r && now_us() < end) {
        pump(f);
        for (unsigned i = 0; i < a->nlog && !r; i++)
            if (mac_eq(a->log[i].src, src))
                r = &a->log[i];
        usleep(200);
    }
    assert_non_null(r);
    assert_int_equal(r->len, 14 + n);
    struct rte_mbuf *b = NULL;
    for (unsigned i = 0; i < a->nkept && !b; i++)
        if (mac_eq(rte_pktmbuf_mtod(a->kept[i], uint8_t *) + 6, src))
            b = a->kept[i];
    assert_non_null(b);
    assert_true(b->ol_flags & RTE_MBUF_F_TX_TCP_SEG);
    assert_int_equal(b->tso_segsz, 1448);

    /* The checksum's start 4 bytes past the IP header's end (the kernel
     * takes it; the IPv4 header is not that long). */
    vh = (struct virtio_net_hdr){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                 .gso_type = VIRTIO_NET_HDR_GSO_NONE,
                                 .csum_start = 14 + 24,
                                 .csum_offset = 16};
    memcpy(pkt, &vh, sizeof(vh));
    n = ipv4_tcp(fr + 14, 100);
    w = send(fd, pkt, sizeof(vh) + 14 + n, 0);
    assert_int_equal(w, (ssize_t)(sizeof(vh) + 14 + n));
    end = now_us() + WAIT_MS * 1000ull;
    while (vsw_host_port_bad_headers(f->host) == 0 && now_us() < end) {
        pump(f);
        usleep(200);
    }
    close(fd);
    assert_int_equal(vsw_host_port_bad_headers(f->host), 1);
    struct vsw_port_stats hs;
    vsw_port_get_stats(f->host, &hs);
    assert_int_equal(hs.drops[VSW_DROP_PORT_SPECIFIC], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            vsw_forward__unknown_unicast__flooded_to_other_up_ports_only, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__broadcast_and_multicast__flooded_except_ingress, setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_fdb_dump__after_learning__mac_on_ingress_port_with_age,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_forward__learned_unicast__only_to_learned_port, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(vsw_fdb__mac_moves_to_other_port__relearned, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            vsw_fdb__mac_moves_back_within_a_second__relearned_from_one_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_forward__destination_is_ingress_port__dropped_hairpin,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_forward__runt_frame__dropped_and_counted_on_ingress,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_forward__multicast_or_zero_source__dropped_bad_src_mac,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__longer_than_egress_max_frame__too_big_on_that_port_only, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__longer_than_ingress_mtu__rx_too_big_on_sender_only, setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_forward__flood_with_no_other_port_up__no_destination,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_forward__learned_port_link_down__dropped_link_down,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_forward__two_switches__isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_dp_tick__idle_and_refreshed_entries__idle_aged_out_refreshed_kept, setup,
            teardown),
        cmocka_unit_test_setup_teardown(vsw_fdb__table_full__learning_stops_frames_still_flooded,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_fdb_flush__learned_entries__gone_and_flooded_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_port_detach__learned_entries__flushed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__ports_on_different_workers__frames_handed_off, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_port_get_stats__summed_over_lcores__match_injected, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_dp__idle_then_frame__workers_sleep_and_wake_promptly, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_dp__wakeups_without_work__back_to_sleep_after_a_round, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_dp__port_with_control_backlog__round_robin_and_no_sleep_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_switch_destroy__ports_attached__ebusy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(vsw_port_attach__already_attached__ebusy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(vsw_switch_create__names_and_mtu__validated, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            vsw_port_attach_detach__under_traffic__every_frame_accounted, setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_vlan__access_ports__flooding_stays_in_the_vlan,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_vlan__inband_trunk__tags_pushed_and_popped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            vsw_vlan__out_of_band_trunk__tag_in_metadata_not_in_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_vlan__tags_where_none_may_be__dropped_vlan, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            vsw_fdb__same_mac_in_two_vlans__two_entries_unicast_per_vlan, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__one_burst_of_mixed_frames__each_forwarded_and_learned_as_alone, setup,
            teardown),
        cmocka_unit_test_setup_teardown(vsw_guards__dhcp_and_router__dropped_counted_when_on,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_guards__spoofed_source__dropped_mac_spoofing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(vsw_limits__storm_and_rate__excess_dropped_counted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_port_set_policy__inconsistent__einval, setup,
                                        teardown),
        cmocka_unit_test(vsw_l2_parse__tag_stacks__read_by_the_tag_rule),
        cmocka_unit_test_setup_teardown(
            vsw_vlan__priority_tag_before_vlan_tag_on_access_or_untagged_port__dropped_vlan, setup,
            teardown),
        cmocka_unit_test_setup_teardown(vsw_vlan__outer_8021ad_and_9100_tags__dropped_vlan, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            vsw_vlan__priority_tags__all_stripped_frame_on_the_vlan_behind_them, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_guards__frames_behind_priority_tags__judged_without_them, setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_limits__storm_behind_priority_tags__counted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__tagged_frames_with_checksum_offload__offsets_follow_the_tags, setup,
            teardown),
        cmocka_unit_test(vsw_frame_cksum_finish__requests__right_checksum_at_the_parsed_offset),
        cmocka_unit_test(vsw_frame_tso_request__valid_segments__flags_and_lengths_of_b),
        cmocka_unit_test(vsw_frame_tso_request__hostile_values__refused_frame_unchanged),
        cmocka_unit_test_setup_teardown(
            vsw_forward__large_segment_flooded__cut_for_ports_without_tso_whole_for_tso, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__large_segment_to_inband_trunk__every_segment_tagged, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__large_segment_to_linear_ports__one_private_mbuf_each, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__large_segments_to_tso4_port__ipv4_whole_ipv6_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_forward__large_segment_beyond_port_tso_limit__cut,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__checksum_request_to_port_without_csum__finished_and_verified, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__run_of_frames_to_one_port__each_judged_alone_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_forward__large_segment__size_checked_as_its_segments,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__large_segment_captured_and_mirrored__whole_and_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__large_segment_into_more_than_a_batch__every_segment_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__large_segment_to_port_that_writes__segments_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_forward__large_segment_the_switch_cannot_cut__dropped_offload, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_host_port__priority_tagged_frame_with_partial_checksum__offsets_behind_the_tag,
            setup, teardown),
        cmocka_unit_test(vsw_host_vnet_to_mbuf__tcp_gso__frame_of_b),
        cmocka_unit_test(vsw_host_vnet_to_mbuf__hostile_gso_headers__refused_frame_unchanged),
        cmocka_unit_test_setup_teardown(
            vsw_host_port__large_segment_to_the_host__whole_with_gso_header, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_host_port__gso_from_the_host__one_frame_of_b_bad_header_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_dp_worker_stats__frames_through_ports__add_up_since_the_baseline, setup, teardown),
        cmocka_unit_test_setup_teardown(vsw_port_move__under_traffic__nothing_lost_or_reordered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_port_move__sender_onto_destination_owner__nothing_reordered, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_port_move__port_signals_after_move__wakes_the_new_owner_only, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsw_port_set_pin__lcore_without_worker__enoent_or_reported_and_placed_auto, setup,
            teardown),
        cmocka_unit_test_setup_teardown(vsw_port_set_vmq__off__follows_the_uplinks_worker, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            vsw_port_attach__one_worker_busy__new_port_on_the_least_loaded, setup, teardown),
        /* Last: when it fails, a switch slot stays unusable for the rest
         * of the process. */
        cmocka_unit_test_setup_teardown(
            vsw_switch_destroy__fdb_deletes_pending_on_busy_worker__slot_reusable, setup,
            teardown),
    };
    /* TEST_FILTER=PATTERN runs only the tests whose names match it. */
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests_name("vswitch", tests, group_setup, group_teardown);
}
