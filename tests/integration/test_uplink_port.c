/*
 * Uplink ports on real DPDK PMDs: a data plane with one worker, switches
 * with uplinks, and a test port (frames injected and captured through
 * rings) on each switch.
 *
 *   test_uplink_port [errors] [af_packet] [tap] [memif] [pcap] [ring] [vlan]
 *
 * With no argument every sub-test runs. Each one creates what it needs
 * (veth pairs and namespaces named tu<pid>..., a TAP tu<pid>t, a memif
 * socket and pcap files under /tmp/tupl<pid>-*) and removes it again, also
 * on failure.
 *
 *   errors     bad devargs and parameters: clear errors, nothing probed;
 *              a device in use is refused; a device probed earlier is
 *              taken over; destroy removes the device
 *   af_packet  two uplinks on veth pairs whose far ends sit in two
 *              namespaces: raw frames up to 9014 bytes cross
 *              namespace -> uplink -> switch -> uplink -> namespace intact;
 *              frames with unfinished TCP/UDP checksums (single and
 *              multi-segment, shared and not) leave with correct ones;
 *              jumbo ping; runtime MTU; kernel MTU and promiscuity put back
 *   tap        net_tap: frames from the kernel side arrive, frames to it
 *              leave, jumbo with scatter, checksums through the PMD's
 *              offload, RX interrupts
 *   memif      a net_memif server (bsize=16384) and client (bsize added by the
 *              uplink) on two switches:
 *              frames up to 9014 bytes both ways, a burst
 *   pcap       net_pcap: frames of an rx_pcap file arrive, frames sent end
 *              up in the tx_pcap file with finished checksums
 *   ring       net_ring in loopback: frames go out and come back
 *   vlan       net_pcap as a trunk uplink: tag stacks from the wire are
 *              classified from all their tags; a VM's in-band tagged frames
 *              with checksum offload leave with the checksum right behind
 *              the tag
 *
 * Exit status: 0 all passed, 1 something failed, 77 not root or some
 * sub-test skipped (the reason is printed; a skip is never a pass).
 * EAL runs on hugepages when 512 are free (-m 512), else with --no-huge
 * -m 1024; TUPL_NO_HUGE=1 in the environment forces the latter.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "vsw-frame.h"
#include "vsw-port-provider.h"
#include "vsw-uplink.h"
#include "vsw.h"

#define FRAME_MAX 16384
#define ETHERTYPE_TEST 0x88b5 /* IEEE local experimental */
#define MAGIC "HVUP"

enum { PASS, FAIL, SKIP };

struct sub {
    const char *name;
    int result;
    char why[512];
};

static struct vsw_dp *g_dp;
static struct rte_mempool *g_pool;  /* the data plane's: 2 KiB segments */
static struct rte_mempool *g_jumbo; /* 16 KiB mbufs, for net_af_packet */
static int g_pid;
static unsigned g_total0;

/* ---- bookkeeping ------------------------------------------------------- */

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* Records the first failure; returns ok so callers can branch on it. */
static bool check(struct sub *t, bool ok, const char *fmt, ...)
{
    if (ok)
        return true;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    printf("  FAIL: %s\n", msg);
    if (t->result != FAIL) {
        t->result = FAIL;
        snprintf(t->why, sizeof(t->why), "%s", msg);
    }
    return false;
}

static void skip(struct sub *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof(t->why), fmt, ap);
    va_end(ap);
    if (t->result == PASS)
        t->result = SKIP;
    printf("  SKIP: %s\n", t->why);
}

/* Shell commands that undo what a sub-test set up: run at its end, and
 * again at exit or on a fatal signal (they are idempotent). */
static char g_undo[16][160];
static int g_nundo;

static void undo_add(const char *fmt, ...)
{
    if (g_nundo == (int)RTE_DIM(g_undo))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_undo[g_nundo++], sizeof(g_undo[0]), fmt, ap);
    va_end(ap);
}

static void undo_run(void)
{
    while (g_nundo > 0) {
        if (system(g_undo[--g_nundo]) < 0) {
            /* best effort */
        }
    }
}

static int sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return rc == 0 ? 0 : -1;
}

/* EAL's runtime directory (/var/run/dpdk/tupl<pid>), removed at the end. */
static char g_rundir[256];

static void rundir_remove(void)
{
    if (g_rundir[0] && sh("rm -rf '%s'", g_rundir) == 0)
        g_rundir[0] = '\0';
}

static void on_fatal(int sig)
{
    undo_run();
    rundir_remove();
    signal(sig, SIG_DFL);
    raise(sig);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long sysfs_long(const char *ifname, const char *attr)
{
    char path[128];
    snprintf(path, sizeof(path), "/sys/class/net/%s/%s", ifname, attr);
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%li", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* ---- frames ------------------------------------------------------------ */

static const uint8_t MAC_P[6] = {0x02, 0, 0, 0, 0x0e, 0x01}; /* the test port */

static void mac(uint8_t out[6], uint8_t a, uint8_t b)
{
    const uint8_t m[6] = {0x02, 0, 0, 0, a, b};
    memcpy(out, m, 6);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void fill_payload(uint8_t *p, uint32_t n, uint32_t seq)
{
    uint8_t hdr[8];
    memcpy(hdr, MAGIC, 4);
    hdr[4] = (uint8_t)(seq >> 24);
    hdr[5] = (uint8_t)(seq >> 16);
    hdr[6] = (uint8_t)(seq >> 8);
    hdr[7] = (uint8_t)seq;
    for (uint32_t i = 0; i < n; i++)
        p[i] = i < 8 ? hdr[i] : (uint8_t)(i * 7u + seq);
}

/* A plain test frame of len bytes (>= 22). */
static uint32_t build_raw(uint8_t *f, uint32_t len, const uint8_t dst[6], const uint8_t src[6],
                          uint32_t seq)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    put16(f + 12, ETHERTYPE_TEST);
    fill_payload(f + 14, len - 14, seq);
    return len;
}

/* Internet checksum, independent of DPDK's. */
static uint32_t sum_add(uint32_t acc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        acc += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        acc += (uint32_t)p[n - 1] << 8;
    return acc;
}

static uint16_t sum_fold(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)acc;
}

/* Where L4 starts, its protocol, length and pseudo-header sum; 802.1Q tags
 * in front of the IP header are skipped. */
static bool l4_locate(const uint8_t *f, uint32_t len, uint32_t *off, uint8_t *proto,
                      uint32_t *l4len, uint32_t *psum)
{
    uint32_t o = 12;
    while (o + 4 <= len && get16(f + o) == 0x8100)
        o += 4;
    if (o + 2 > len)
        return false;
    uint16_t et = get16(f + o);
    const uint8_t *ip = f + o + 2;
    uint32_t l3 = o + 2;
    if (et == 0x0800 && len >= l3 + 20) {
        uint32_t ihl = (ip[0] & 0xfu) * 4u, tot = get16(ip + 2);
        if (ihl < 20 || tot < ihl || l3 + tot > len)
            return false;
        *off = l3 + ihl;
        *proto = ip[9];
        *l4len = tot - ihl;
        *psum = sum_add(0, ip + 12, 8) + *proto + *l4len;
        return true;
    }
    if (et == 0x86dd && len >= l3 + 40) {
        uint32_t plen = get16(ip + 4);
        if (l3 + 40 + plen > len)
            return false;
        *off = l3 + 40;
        *proto = ip[6];
        *l4len = plen;
        *psum = sum_add(0, ip + 8, 32) + *proto + *l4len;
        return true;
    }
    return false;
}

/* Is the TCP/UDP checksum of this frame right? */
static bool l4_cksum_ok(const uint8_t *f, uint32_t len)
{
    uint32_t off, l4len, psum;
    uint8_t proto;
    if (!l4_locate(f, len, &off, &proto, &l4len, &psum))
        return false;
    if (proto == 17 && get16(f + off + 6) == 0)
        return false; /* we asked for one */
    return sum_fold(sum_add(psum, f + off, l4len)) == 0xffff;
}

/* Write the correct checksum (what the far side must see). */
static void l4_cksum_finish(uint8_t *f, uint32_t len)
{
    uint32_t off, l4len, psum;
    uint8_t proto;
    if (!l4_locate(f, len, &off, &proto, &l4len, &psum))
        return;
    uint32_t field = off + (proto == 6 ? 16 : 6);
    put16(f + field, 0);
    uint16_t ck = (uint16_t)~sum_fold(sum_add(psum, f + off, l4len));
    if (ck == 0 && proto == 17)
        ck = 0xffff;
    put16(f + field, ck);
}

/* TCP/IPv4 with the checksum left to the network, as Linux leaves it: the
 * field holds the folded pseudo-header sum. */
static uint32_t build_tcp4(uint8_t *f, uint32_t payload, const uint8_t dst[6], uint32_t seq)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, MAC_P, 6);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + 14, *tcp = ip + 20;
    uint32_t tot = 20 + 20 + payload;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)tot);
    put16(ip + 4, (uint16_t)seq);
    put16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = 6;
    const uint8_t addrs[8] = {10, 201, 0, 1, 10, 201, 0, 2};
    memcpy(ip + 12, addrs, 8);
    put16(ip + 10, (uint16_t)~sum_fold(sum_add(0, ip, 20)));
    memset(tcp, 0, 20);
    put16(tcp, 40000);
    put16(tcp + 2, 5001);
    put16(tcp + 4, (uint16_t)(seq >> 16));
    put16(tcp + 6, (uint16_t)seq);
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    put16(tcp + 14, 0xffff);
    fill_payload(tcp + 20, payload, seq);
    put16(tcp + 16, sum_fold(sum_add(0, ip + 12, 8) + 6 + 20 + payload));
    return 14 + tot;
}

/* UDP/IPv6, checksum left to the network; the field holds garbage. */
static uint32_t build_udp6(uint8_t *f, uint32_t payload, const uint8_t dst[6], uint32_t seq)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, MAC_P, 6);
    put16(f + 12, 0x86dd);
    uint8_t *ip = f + 14, *udp = ip + 40;
    memset(ip, 0, 40);
    ip[0] = 0x60;
    put16(ip + 4, (uint16_t)(8 + payload));
    ip[6] = 17;
    ip[7] = 64;
    ip[8] = 0xfd;
    ip[23] = 1;
    ip[24] = 0xfd;
    ip[39] = 2;
    put16(udp, 40001);
    put16(udp + 2, 5002);
    put16(udp + 4, (uint16_t)(8 + payload));
    put16(udp + 6, 0xdead);
    fill_payload(udp + 8, payload, seq);
    return 14 + 40 + 8 + payload;
}

/* The sequence number a test frame carries, or -1. */
static int64_t frame_seq(const uint8_t *f, uint32_t len)
{
    uint32_t off = 0;
    if (len >= 14 && get16(f + 12) == ETHERTYPE_TEST) {
        off = 14;
    } else {
        uint32_t l4, l4len, psum;
        uint8_t proto;
        if (!l4_locate(f, len, &l4, &proto, &l4len, &psum))
            return -1;
        if (proto == 6 && l4 + 20 <= len)
            off = l4 + (f[l4 + 12] >> 4) * 4u;
        else if (proto == 17)
            off = l4 + 8;
        else
            return -1;
    }
    if (off + 8 > len || memcmp(f + off, MAGIC, 4) != 0)
        return -1;
    return (int64_t)((uint32_t)f[off + 4] << 24 | (uint32_t)f[off + 5] << 16 |
                     (uint32_t)f[off + 6] << 8 | f[off + 7]);
}

static bool same(struct sub *t, const char *what, const uint8_t *got, uint32_t glen,
                 const uint8_t *want, uint32_t wlen)
{
    if (glen != wlen)
        return check(t, false, "%s: %u bytes arrived, %u were sent", what, glen, wlen);
    for (uint32_t i = 0; i < glen; i++)
        if (got[i] != want[i])
            return check(t, false, "%s: byte %u differs (0x%02x, sent 0x%02x)", what, i, got[i],
                         want[i]);
    return true;
}

/* An mbuf chain holding data, cut into segments of the given lengths (the
 * last takes the rest; 0 = as much as fits). */
static struct rte_mbuf *mk_mbuf(const uint8_t *data, uint32_t len, const uint32_t *segs,
                                unsigned nsegs)
{
    struct rte_mbuf *head = NULL;
    uint32_t off = 0;
    for (unsigned i = 0; off < len; i++) {
        struct rte_mbuf *m = rte_pktmbuf_alloc(g_pool);
        if (!m) {
            rte_pktmbuf_free(head);
            return NULL;
        }
        uint32_t k = len - off, room = rte_pktmbuf_tailroom(m);
        if (i < nsegs && segs[i] && segs[i] < k)
            k = segs[i];
        if (k > room)
            k = room;
        memcpy(rte_pktmbuf_append(m, (uint16_t)k), data + off, k);
        off += k;
        if (!head)
            head = m;
        else if (rte_pktmbuf_chain(head, m) != 0) {
            rte_pktmbuf_free(m);
            rte_pktmbuf_free(head);
            return NULL;
        }
    }
    return head;
}

static uint32_t mbuf_flat(const struct rte_mbuf *m, uint8_t *buf, uint32_t cap)
{
    uint32_t len = RTE_MIN(m->pkt_len, cap);
    const void *p = rte_pktmbuf_read(m, 0, len, buf);
    if (p != buf)
        memcpy(buf, p, len);
    return len;
}

/* ---- the test port --------------------------------------------------- */

struct tport {
    struct vsw_port port;
    struct rte_ring *in;  /* test -> switch */
    struct rte_ring *out; /* switch -> test */
    int efd;              /* written after each inject, so the worker may sleep */
};

static uint16_t tport_rx(struct vsw_port *p, struct rte_mbuf **pkts, uint16_t n)
{
    struct tport *tp = (struct tport *)p;
    return (uint16_t)rte_ring_sc_dequeue_burst(tp->in, (void **)pkts, n, NULL);
}

static uint16_t tport_tx(struct vsw_port *p, struct rte_mbuf **pkts, uint16_t n)
{
    struct tport *tp = (struct tport *)p;
    unsigned k = rte_ring_sp_enqueue_burst(tp->out, (void **)pkts, n, NULL);
    struct vsw_port_counters *c = &p->counters[rte_lcore_id()];
    for (unsigned i = 0; i < k; i++) {
        c->tx_packets++;
        c->tx_bytes += pkts[i]->pkt_len;
    }
    if (k < n) {
        vsw_port_drop(p, VSW_DROP_QUEUE_FULL, n - k);
        rte_pktmbuf_free_bulk(pkts + k, n - k);
    }
    return (uint16_t)k;
}

static void ring_drain_free(struct rte_ring *r)
{
    struct rte_mbuf *pkts[VSW_BURST];
    unsigned n;
    while ((n = rte_ring_dequeue_burst(r, (void **)pkts, VSW_BURST, NULL)) > 0)
        rte_pktmbuf_free_bulk(pkts, n);
    rte_ring_free(r);
}

static int tport_wait_fd(struct vsw_port *p)
{
    return ((struct tport *)p)->efd;
}

static bool tport_wait_arm(struct vsw_port *p)
{
    return !rte_ring_empty(((struct tport *)p)->in);
}

static void tport_wait_disarm(struct vsw_port *p)
{
    uint64_t v;
    if (read(((struct tport *)p)->efd, &v, sizeof(v)) < 0) {
        /* nothing was signalled */
    }
}

static void tport_destroy(struct vsw_port *p)
{
    struct tport *tp = (struct tport *)p;
    ring_drain_free(tp->in);
    ring_drain_free(tp->out);
    close(tp->efd);
    free(tp);
}

static const struct vsw_port_class tport_class = {
    .type = "test",
    .rx_burst = tport_rx,
    .tx_burst = tport_tx,
    .wait_fd = tport_wait_fd,
    .wait_arm = tport_wait_arm,
    .wait_disarm = tport_wait_disarm,
    .destroy = tport_destroy,
};

static struct tport *tport_create(const char *name)
{
    struct tport *tp = NULL; /* cache-aligned: vsw_port's per-lcore counters */
    char rn[RTE_RING_NAMESIZE];
    if (posix_memalign((void **)&tp, _Alignof(struct tport), sizeof(*tp)) != 0)
        return NULL;
    memset(tp, 0, sizeof(*tp));
    vsw_port_init(&tp->port, &tport_class, name);
    snprintf(rn, sizeof(rn), "tpi_%s", name);
    tp->in = rte_ring_create(rn, 4096, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
    snprintf(rn, sizeof(rn), "tpo_%s", name);
    tp->out = rte_ring_create(rn, 4096, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
    tp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!tp->in || !tp->out || tp->efd < 0) {
        rte_ring_free(tp->in);
        rte_ring_free(tp->out);
        if (tp->efd >= 0)
            close(tp->efd);
        free(tp);
        return NULL;
    }
    vsw_port_set_max_frame(&tp->port, 9000 + 18);
    vsw_port_set_link(&tp->port, true);
    return tp;
}

static bool inject(struct tport *tp, struct rte_mbuf *m)
{
    if (!m)
        return false;
    if (rte_ring_enqueue(tp->in, m) != 0) {
        rte_pktmbuf_free(m);
        return false;
    }
    uint64_t one = 1;
    return write(tp->efd, &one, sizeof(one)) == sizeof(one);
}

/* Wait for the captured frame carrying seq; other frames are dropped. */
/* Like capture(), and the frame's offload flags into *ol_flags. */
static int64_t capture_flags(struct tport *tp, int64_t seq, uint8_t *buf, double timeout,
                             uint64_t *ol_flags)
{
    double end = now_s() + timeout;
    while (now_s() < end) {
        struct rte_mbuf *m;
        vsw_dp_process(g_dp);
        if (rte_ring_dequeue_burst(tp->out, (void **)&m, 1, NULL) == 0) {
            pause_ms(1);
            continue;
        }
        uint32_t len = mbuf_flat(m, buf, FRAME_MAX);
        uint64_t f = m->ol_flags;
        rte_pktmbuf_free(m);
        if (frame_seq(buf, len) == seq) {
            if (ol_flags)
                *ol_flags = f;
            return len;
        }
    }
    return -1;
}

static int64_t capture(struct tport *tp, int64_t seq, uint8_t *buf, double timeout)
{
    return capture_flags(tp, seq, buf, timeout, NULL);
}

/* ---- raw sockets ----------------------------------------------------- */

/* An AF_PACKET socket bound to ifname in namespace netns (NULL: here). */
static int raw_open(const char *netns, const char *ifname, int *ifindex)
{
    int self = -1, ns = -1, fd = -1;
    if (netns) {
        char path[128];
        snprintf(path, sizeof(path), "/run/netns/%s", netns);
        self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        ns = open(path, O_RDONLY | O_CLOEXEC);
        if (self < 0 || ns < 0 || setns(ns, CLONE_NEWNET) < 0)
            goto out;
    }
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    *ifindex = (int)if_nametoindex(ifname);
    if (fd >= 0) {
        struct sockaddr_ll sll = {
            .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = *ifindex};
        int one = 1, rcvbuf = 8 << 20;
        setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
        if (*ifindex == 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
            close(fd);
            fd = -1;
        }
    }
out:
    if (self >= 0) {
        if (setns(self, CLONE_NEWNET) < 0) {
            fprintf(stderr, "cannot return to the root namespace\n");
            exit(1);
        }
        close(self);
    }
    if (ns >= 0)
        close(ns);
    return fd;
}

static bool raw_send(int fd, int ifindex, const uint8_t *f, uint32_t len)
{
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};
    memcpy(sll.sll_addr, f, 6);
    return sendto(fd, f, len, 0, (struct sockaddr *)&sll, sizeof(sll)) == (ssize_t)len;
}

/* Wait for the frame carrying seq on a raw socket. */
static int64_t raw_recv(int fd, int64_t seq, uint8_t *buf, double timeout)
{
    double end = now_s() + timeout;
    for (;;) {
        double left = end - now_s();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        vsw_dp_process(g_dp);
        if (poll(&pfd, 1, left > 0.05 ? 50 : (int)(left * 1000) + 1) <= 0)
            continue;
        ssize_t n = recv(fd, buf, FRAME_MAX, MSG_DONTWAIT);
        if (n > 0 && frame_seq(buf, (uint32_t)n) == seq)
            return n;
    }
}

/* ---- common pieces ---------------------------------------------------- */

struct uplink_args {
    const char *devargs;
    const char *name;
    uint32_t mtu;
    struct rte_mempool *pool;
};

static int uplink(const struct uplink_args *a, struct vsw_port **out)
{
    struct vsw_uplink_params p = {
        .devargs = a->devargs, .port_name = a->name, .mtu = a->mtu, .pool = a->pool};
    int rc = vsw_uplink_port_create(&p, out);
    if (rc == 0) {
        struct vsw_uplink_info in;
        vsw_uplink_port_get_info(*out, &in);
        say("uplink %s: %s -> %s port %u, MTU %u, %s", a->name, a->devargs, in.driver, in.port_id,
            in.mtu, in.rx_interrupts ? "RX interrupts" : "polled");
    } else {
        say("uplink %s: %s -> %s", a->name, a->devargs, strerror(-rc));
    }
    return rc;
}

static bool wait_link(struct vsw_port *p, double timeout)
{
    double end = now_s() + timeout;
    while (now_s() < end) {
        if (vsw_port_link(p))
            return true;
        vsw_dp_process(g_dp);
        pause_ms(10);
    }
    return false;
}

static void stats(const struct vsw_port *p, struct vsw_port_stats *s)
{
    vsw_port_get_stats(p, s);
}

static uint64_t drops(const struct vsw_port_stats *s)
{
    uint64_t d = 0;
    for (int i = 0; i < VSW_DROP_COUNT; i++)
        d += s->drops[i];
    return d;
}

static void print_stats(const struct vsw_port *p)
{
    struct vsw_port_stats s;
    stats(p, &s);
    char dr[256] = "";
    size_t o = 0;
    for (int i = 0; i < VSW_DROP_COUNT; i++)
        if (s.drops[i] && o < sizeof(dr))
            o += (size_t)snprintf(dr + o, sizeof(dr) - o, " %s=%" PRIu64,
                                  vsw_drop_name((enum vsw_drop)i), s.drops[i]);
    say("%-10s rx %" PRIu64 "/%" PRIu64 "B tx %" PRIu64 "/%" PRIu64 "B drops%s", vsw_port_name(p),
        s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes, o ? dr : " 0");
}

/* Detach and destroy; check the ethdev count went back. */
static void teardown(struct sub *t, struct vsw_switch **sws, unsigned nsw, struct vsw_port **ports,
                     unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (ports[i]) {
            vsw_port_destroy(ports[i]);
            ports[i] = NULL;
        }
    for (unsigned i = 0; i < nsw; i++)
        if (sws[i]) {
            vsw_switch_destroy(sws[i]);
            sws[i] = NULL;
        }
    check(t, rte_eth_dev_count_total() == g_total0,
          "%u ethdevs left after destroy, %u before the test", rte_eth_dev_count_total(), g_total0);
}

static int make_switch(const char *name, struct vsw_switch **out)
{
    struct vsw_switch_params sp = {.name = name, .kind = VSW_SWITCH_EXTERNAL, .mtu = 9000};
    return vsw_switch_create(g_dp, &sp, out);
}

/* Frames of these sizes injected at tp arrive, intact, at the far side. */
struct far {
    int fd, ifindex;  /* a raw socket, or */
    struct tport *tp; /* a test port */
};

static void send_sizes(struct sub *t, const char *what, struct tport *from, const struct far *to,
                       const uint32_t *sizes, unsigned n, uint32_t seq0, uint8_t dst_tag)
{
    static uint8_t f[FRAME_MAX], got[FRAME_MAX];
    uint8_t dst[6];
    mac(dst, 0x0f, dst_tag);
    for (unsigned i = 0; i < n; i++) {
        uint32_t seq = seq0 + i, len = build_raw(f, sizes[i], dst, MAC_P, seq);
        if (!check(t, inject(from, mk_mbuf(f, len, NULL, 0)), "%s: cannot inject", what))
            return;
        int64_t r = to->tp ? capture(to->tp, seq, got, 3) : raw_recv(to->fd, seq, got, 3);
        char w[96];
        snprintf(w, sizeof(w), "%s, %u-byte frame", what, sizes[i]);
        if (check(t, r >= 0, "%s did not arrive", w) && same(t, w, got, (uint32_t)r, f, len))
            say("%s: ok", w);
    }
}

struct csum_case {
    const char *what;
    bool v6;
    uint32_t payload;
    uint32_t segs[4]; /* mbuf segment lengths (0: fill) */
};

static const struct csum_case csum_cases[] = {
    {"TCP/IPv4 in one segment", false, 200, {0}},
    {"TCP/IPv4 over 2 KiB segments", false, 3000, {0}},
    {"TCP/IPv4 checksum field split across segments", false, 500, {51, 0}},
    {"TCP/IPv4 with an odd segment", false, 1200, {14, 333, 0}},
    {"TCP/IPv4 headers whole, payload split at an odd offset", false, 1200, {14 + 20 + 20 + 333, 0}},
    {"UDP/IPv6 over segments", true, 5000, {0}},
    {"UDP/IPv6 in two segments", true, 1200, {100, 0}},
    {"TCP/IPv4 jumbo (9014 B)", false, 8960, {0}},
};

/* Inject each case whose frame is at most max_frame bytes at tp (to dst),
 * expect the finished frame at the far side. Returns the cases sent. */
static unsigned send_csums(struct sub *t, struct tport *tp, const struct far *to,
                           const uint8_t dst[6], uint32_t seq0, uint32_t max_frame)
{
    static uint8_t f[FRAME_MAX], want[FRAME_MAX], got[FRAME_MAX];
    unsigned sent = 0;
    for (unsigned i = 0; i < RTE_DIM(csum_cases); i++) {
        const struct csum_case *c = &csum_cases[i];
        uint32_t seq = seq0 + i;
        uint32_t len =
            c->v6 ? build_udp6(f, c->payload, dst, seq) : build_tcp4(f, c->payload, dst, seq);
        if (len > max_frame)
            continue;
        sent++;
        struct rte_mbuf *m = mk_mbuf(f, len, c->segs, 4);
        if (!check(t, m != NULL, "no mbufs"))
            return sent;
        m->l2_len = 14;
        m->l3_len = c->v6 ? 40 : 20;
        m->ol_flags |= c->v6 ? (RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM)
                             : (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM);
        unsigned nsegs = m->nb_segs;
        memcpy(want, f, len);
        l4_cksum_finish(want, len);
        if (!check(t, inject(tp, m), "%s: cannot inject", c->what))
            return sent;
        int64_t r = to->tp ? capture(to->tp, seq, got, 3) : raw_recv(to->fd, seq, got, 3);
        if (!check(t, r >= 0, "%s: did not arrive", c->what))
            continue;
        if (check(t, l4_cksum_ok(got, (uint32_t)r), "%s: arrived with a wrong checksum", c->what) &&
            same(t, c->what, got, (uint32_t)r, want, len))
            say("%s (%u segments): checksum right", c->what, nsegs);
    }
    return sent;
}

/* ---- errors -------------------------------------------------------------- */

static void test_errors(struct sub *t)
{
    struct vsw_port *p = NULL, *q = NULL;
    char da[128];
    struct vsw_uplink_params up = {.mtu = 1500, .pool = g_pool};
    int rc;

    up.devargs = NULL;
    check(t, vsw_uplink_port_create(&up, &p) == -EINVAL, "NULL devargs accepted");
    up.devargs = "";
    check(t, vsw_uplink_port_create(&up, &p) == -EINVAL, "empty devargs accepted");
    up.devargs = "net_null_tue0";
    up.pool = NULL;
    check(t, vsw_uplink_port_create(&up, &p) == -EINVAL, "NULL pool accepted");
    up.pool = g_pool;
    up.mtu = 67;
    check(t, vsw_uplink_port_create(&up, &p) == -EINVAL, "MTU 67 accepted");
    up.mtu = 9001;
    check(t, vsw_uplink_port_create(&up, &p) == -EINVAL, "MTU 9001 accepted");
    up.mtu = 1500;
    check(t, rte_eth_dev_count_total() == g_total0, "parameter errors left an ethdev");

    up.devargs = "net_nosuchpmd_tue0,x=1";
    rc = vsw_uplink_port_create(&up, &p);
    say("unknown driver: %s", strerror(-rc));
    check(t, rc == -ENODEV, "unknown driver: %d, expected -ENODEV", rc);

    snprintf(da, sizeof(da), "net_af_packet_tue0,iface=tu%dzz", g_pid);
    up.devargs = da;
    rc = vsw_uplink_port_create(&up, &p);
    say("af_packet on a missing interface: %s", strerror(-rc));
    check(t, rc < 0, "af_packet on a missing interface was accepted");
    rc = vsw_uplink_port_create(&up, &p);
    check(t, rc < 0 && rc != -EEXIST, "second try on a missing interface: %d (left-over state?)",
          rc);

    up.devargs = "net_pcap_tue0,rx_pcap=/nonexistent/x.pcap,tx_pcap=/nonexistent/y.pcap";
    rc = vsw_uplink_port_create(&up, &p);
    say("pcap with a missing file: %s", strerror(-rc));
    check(t, rc < 0, "pcap with a missing file was accepted");
    check(t, rte_eth_dev_count_total() == g_total0, "failed probes left %u ethdevs (before: %u)",
          rte_eth_dev_count_total(), g_total0);

    /* A device in use. */
    up.devargs = "net_null_tue1";
    up.port_name = "null1";
    rc = vsw_uplink_port_create(&up, &p);
    if (check(t, rc == 0, "net_null: %s", strerror(-rc))) {
        struct vsw_uplink_info in;
        vsw_uplink_port_get_info(p, &in);
        check(t, strcmp(in.driver, "net_null") == 0, "driver '%s', expected net_null", in.driver);
        check(t, vsw_is_uplink_port(p), "vsw_is_uplink_port() is false for an uplink");
        check(t, rte_eth_dev_count_total() == g_total0 + 1, "%u ethdevs with one uplink",
              rte_eth_dev_count_total());
        rc = vsw_uplink_port_create(&up, &q);
        check(t, rc == -EEXIST, "the same device twice: %d, expected -EEXIST", rc);
        check(t, vsw_uplink_port_set_mtu(p, 9000) == 0, "net_null refuses MTU 9000");
        /* net_null offers no MULTI_SEGS: frames to it must fit one mbuf. */
        uint32_t room = rte_pktmbuf_data_room_size(g_pool) - RTE_PKTMBUF_HEADROOM;
        check(t, p->max_frame == room, "net_null frame limit %u, expected %u (one mbuf)",
              p->max_frame, room);
        check(t, vsw_uplink_port_set_mtu(p, 9001) == -EINVAL, "MTU 9001 accepted at runtime");
        vsw_port_destroy(p);
        p = NULL;
        check(t, rte_eth_dev_count_total() == g_total0, "destroy left the ethdev (%u, was %u)",
              rte_eth_dev_count_total(), g_total0);
        rc = vsw_uplink_port_create(&up, &p);
        check(t, rc == 0, "net_null again after destroy: %s", strerror(-rc));
        vsw_port_destroy(p);
        p = NULL;
    }

    /* Probed earlier by someone who left it alone: taken over. */
    if (check(t, rte_dev_probe("net_null_tue2") == 0, "cannot probe net_null_tue2")) {
        up.devargs = "net_null_tue2";
        rc = vsw_uplink_port_create(&up, &p);
        check(t, rc == 0, "taking over a probed, idle device: %s", strerror(-rc));
        vsw_port_destroy(p);
        p = NULL;
        check(t, rte_eth_dev_count_total() == g_total0, "taken-over device not removed");
    }

    /* Started by someone else: refused, and left as it was. */
    uint16_t pid;
    if (check(t, rte_dev_probe("net_null_tue3") == 0, "cannot probe net_null_tue3") &&
        check(t, rte_eth_dev_get_port_by_name("net_null_tue3", &pid) == 0, "no port")) {
        struct rte_eth_conf conf = {0};
        rte_eth_dev_configure(pid, 1, 1, &conf);
        rte_eth_rx_queue_setup(pid, 0, 64, 0, NULL, g_pool);
        rte_eth_tx_queue_setup(pid, 0, 64, 0, NULL);
        check(t, rte_eth_dev_start(pid) == 0, "cannot start net_null_tue3");
        up.devargs = "net_null_tue3";
        rc = vsw_uplink_port_create(&up, &p);
        check(t, rc == -EEXIST, "a device started by someone else: %d, expected -EEXIST", rc);
        if (rc == 0)
            vsw_port_destroy(p);
        p = NULL;
        check(t, rte_eth_dev_is_valid_port(pid), "the other user's device was removed");
        struct rte_eth_dev_info di;
        rte_eth_dev_info_get(pid, &di);
        rte_eth_dev_stop(pid);
        rte_eth_dev_close(pid);
        rte_dev_remove(di.device);
    }
    check(t, rte_eth_dev_count_total() == g_total0, "%u ethdevs at the end, %u before",
          rte_eth_dev_count_total(), g_total0);
}

/* ---- af_packet ----------------------------------------------------------- */

static void test_af_packet(struct sub *t)
{
    char a[16], b[16], c[16], d[16], n1[24], n2[24], da1[96], da2[96];
    snprintf(a, sizeof(a), "tu%da", g_pid);
    snprintf(b, sizeof(b), "tu%db", g_pid);
    snprintf(c, sizeof(c), "tu%dc", g_pid);
    snprintf(d, sizeof(d), "tu%dd", g_pid);
    snprintf(n1, sizeof(n1), "tu%dn1", g_pid);
    snprintf(n2, sizeof(n2), "tu%dn2", g_pid);
    struct vsw_switch *sw[1] = {NULL};
    struct vsw_port *ports[3] = {NULL}; /* U1, U2, P */
    int sb = -1, sd = -1, ib = 0, id = 0;
    static uint8_t f[FRAME_MAX], got[FRAME_MAX];

    undo_add("ip netns del %s 2>/dev/null", n2);
    undo_add("ip netns del %s 2>/dev/null", n1);
    undo_add("ip link del %s 2>/dev/null", c);
    undo_add("ip link del %s 2>/dev/null", a);
    if (sh("ip netns add %s && ip netns add %s", n1, n2) < 0) {
        skip(t, "cannot create network namespaces (ip netns add)");
        goto out;
    }
    if (sh("ip link add %s mtu 1500 type veth peer name %s netns %s", a, b, n1) < 0 ||
        sh("ip link add %s mtu 1500 type veth peer name %s netns %s", c, d, n2) < 0) {
        skip(t, "cannot create veth pairs (ip link add ... type veth)");
        goto out;
    }
    sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1 net.ipv6.conf.%s.disable_ipv6=1 2>/dev/null", a,
       c);
    sh("ip netns exec %s sysctl -qw net.ipv6.conf.%s.disable_ipv6=1 2>/dev/null", n1, b);
    sh("ip netns exec %s sysctl -qw net.ipv6.conf.%s.disable_ipv6=1 2>/dev/null", n2, d);
    if (sh("ip -n %s link set %s mtu 9000 up && ip -n %s link set %s mtu 9000 up", n1, b, n2, d) <
            0 ||
        sh("ip link set %s up && ip link set %s up", a, c) < 0) {
        check(t, false, "cannot bring the veths up");
        goto out;
    }

    /* Jumbo needs 16 KiB mbufs on af_packet: refused with the 2 KiB pool. */
    snprintf(da1, sizeof(da1), "net_af_packet_tu1,iface=%s", a);
    snprintf(da2, sizeof(da2), "net_af_packet_tu2,iface=%s", c);
    struct vsw_port *tmp;
    int rc = uplink(&(struct uplink_args){da1, "afp-small", 9000, g_pool}, &tmp);
    check(t, rc == -EINVAL, "af_packet at MTU 9000 with 2 KiB mbufs: %d, expected -EINVAL", rc);
    if (rc == 0)
        vsw_port_destroy(tmp);
    check(t, rte_eth_dev_count_total() == g_total0, "the refused af_packet stayed probed");
    check(t, sysfs_long(a, "mtu") == 1500, "the refused af_packet changed %s's MTU", a);

    rc = uplink(&(struct uplink_args){da1, "up1", 9000, g_jumbo}, &ports[0]);
    if (rc < 0) {
        skip(t, "net_af_packet on a veth: create failed: %s", strerror(-rc));
        goto out;
    }
    rc = uplink(&(struct uplink_args){da2, "up2", 9000, g_jumbo}, &ports[1]);
    if (!check(t, rc == 0, "second af_packet uplink: %s", strerror(-rc)))
        goto out;
    check(t, sysfs_long(a, "mtu") == 9000, "%s MTU is %ld, expected 9000", a, sysfs_long(a, "mtu"));
    check(t, (sysfs_long(a, "flags") & IFF_PROMISC) != 0, "%s is not promiscuous", a);

    struct tport *tp = tport_create("afp");
    ports[2] = tp ? &tp->port : NULL;
    if (!check(t, tp && make_switch("ext-afp", &sw[0]) == 0, "switch or test port"))
        goto out;
    for (int i = 0; i < 3; i++)
        if (!check(t, vsw_port_attach(sw[0], ports[i]) == 0, "attach %d", i))
            goto out;
    if (!check(t, wait_link(ports[0], 5) && wait_link(ports[1], 5), "af_packet links stay down"))
        goto out;

    sb = raw_open(n1, b, &ib);
    sd = raw_open(n2, d, &id);
    if (!check(t, sb >= 0 && sd >= 0, "raw sockets in the namespaces: %s", strerror(errno)))
        goto out;

    /* namespace 1 -> up1 -> switch -> up2 -> namespace 2, and the test port. */
    static const uint32_t sizes[] = {60, 1514, 4000, 9014};
    uint8_t mb[6], md[6];
    mac(mb, 0x0b, 1);
    mac(md, 0x0d, 1);
    for (unsigned i = 0; i < RTE_DIM(sizes); i++) {
        uint32_t seq = 100 + i, len = build_raw(f, sizes[i], md, mb, seq);
        char w[96];
        snprintf(w, sizeof(w), "%s -> %s, %u-byte frame", n1, n2, sizes[i]);
        if (!check(t, raw_send(sb, ib, f, len), "%s: send: %s", w, strerror(errno)))
            continue;
        int64_t r = raw_recv(sd, seq, got, 3);
        if (check(t, r >= 0, "%s did not arrive", w) && same(t, w, got, (uint32_t)r, f, len))
            say("%s: ok", w);
        r = capture(tp, seq, got, 3);
        if (check(t, r >= 0, "%s did not reach the test port", w))
            same(t, w, got, (uint32_t)r, f, len);
    }
    for (unsigned i = 0; i < RTE_DIM(sizes); i++) {
        uint32_t seq = 200 + i, len = build_raw(f, sizes[i], mb, md, seq);
        char w[96];
        snprintf(w, sizeof(w), "%s -> %s, %u-byte frame", n2, n1, sizes[i]);
        if (!check(t, raw_send(sd, id, f, len), "%s: send: %s", w, strerror(errno)))
            continue;
        int64_t r = raw_recv(sb, seq, got, 3);
        if (check(t, r >= 0, "%s did not arrive", w) && same(t, w, got, (uint32_t)r, f, len))
            say("%s: ok", w);
    }
    /* The worker counts a frame after handing it to the kernel, which may
     * deliver it before the count is written: give the counters a moment. */
    struct vsw_port_stats s1, s2;
    for (int tries = 0; tries < 100; tries++) {
        stats(ports[0], &s1);
        stats(ports[1], &s2);
        if (s1.rx_packets >= 4 && s1.tx_packets >= 4 && s2.rx_packets >= 4 && s2.tx_packets >= 4)
            break;
        pause_ms(10);
    }
    check(t, s1.rx_packets >= 4 && s1.tx_packets >= 4 && s2.rx_packets >= 4 && s2.tx_packets >= 4,
          "counters: up1 rx %" PRIu64 " tx %" PRIu64 ", up2 rx %" PRIu64 " tx %" PRIu64,
          s1.rx_packets, s1.tx_packets, s2.rx_packets, s2.tx_packets);
    check(t, s1.rx_bytes >= 60 + 1514 + 4000 + 9014 && s2.tx_bytes >= 60 + 1514 + 4000 + 9014,
          "byte counters: up1 rx %" PRIu64 ", up2 tx %" PRIu64, s1.rx_bytes, s2.tx_bytes);
    if (!check(t, drops(&s1) == 0 && drops(&s2) == 0, "uplinks dropped frames")) {
        print_stats(ports[0]);
        print_stats(ports[1]);
    }

    /* Unfinished checksums. Flooded (shared by both uplinks: each copies),
     * then unicast to namespace 1's MAC, learned on up1 (not shared). */
    struct far fb = {.fd = sb, .ifindex = ib}, fd2 = {.fd = sd, .ifindex = id};
    uint8_t flood[6];
    mac(flood, 0x0f, 0x01);
    say("-- checksums, flooded to both uplinks (shared mbufs), checked in %s", n2);
    send_csums(t, tp, &fd2, flood, 300, FRAME_MAX);
    say("-- checksums, unicast to %s's MAC", n1);
    send_csums(t, tp, &fb, mb, 400, FRAME_MAX);
    struct vsw_uplink_info i1, i2;
    vsw_uplink_port_get_info(ports[0], &i1);
    vsw_uplink_port_get_info(ports[1], &i2);
    say("sw_checksums: up1 %" PRIu64 ", up2 %" PRIu64, i1.sw_checksums, i2.sw_checksums);
    check(t, i1.sw_checksums >= 2 * RTE_DIM(csum_cases) && i2.sw_checksums >= RTE_DIM(csum_cases),
          "sw_checksums up1 %" PRIu64 " up2 %" PRIu64, i1.sw_checksums, i2.sw_checksums);

    /* An offload request that cannot be met: dropped and counted. */
    uint32_t len = build_tcp4(f, 100, mb, 500);
    struct rte_mbuf *m = mk_mbuf(f, len, NULL, 0);
    m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM; /* no l2_len/l3_len */
    inject(tp, m);
    double end = now_s() + 3;
    while (now_s() < end && (vsw_uplink_port_get_info(ports[0], &i1), i1.tx_bad_offload == 0))
        pause_ms(5);
    check(t, i1.tx_bad_offload == 1,
          "a checksum request without header lengths: %" PRIu64 " counted", i1.tx_bad_offload);

    /* Real tools: a jumbo ping across, ARP flooded through the switch. The
     * test port leaves first: nobody drains it while the tools run, and the
     * 16 KiB mbufs it would hoard are the ones net_af_packet receives into. */
    vsw_port_detach(ports[2]);
    if (sh("ip -n %s addr add 10.201.0.1/24 dev %s && ip -n %s addr add 10.201.0.2/24 dev %s", n1,
           b, n2, d) == 0) {
        int prc =
            sh("ip netns exec %s ping -q -c 3 -i 0.2 -W 2 -s 8972 -M do 10.201.0.2 >/dev/null", n1);
        if (check(t, prc == 0, "ping -s 8972 -M do from %s to %s failed", n1, n2))
            say("ping -s 8972 -M do %s -> %s: ok", n1, n2);
    }

    /* TCP across. net_af_packet ignores TP_STATUS_CSUMNOTREADY, so the
     * peers' TX checksum offload has to be off (see port-uplink.c). */
    if (sh("command -v iperf3 >/dev/null && command -v ethtool >/dev/null") != 0) {
        say("iperf3 or ethtool missing: no TCP check");
    } else {
        sh("ip netns exec %s ethtool -K %s tx off >/dev/null 2>&1", n1, b);
        sh("ip netns exec %s ethtool -K %s tx off >/dev/null 2>&1", n2, d);
        sh("ip netns exec %s iperf3 -s -1 -B 10.201.0.2 -p 5201 >/dev/null 2>&1 &", n2);
        int irc = -1;
        for (int i = 0; i < 20 && irc != 0; i++) {
            pause_ms(100);
            irc = sh("ip netns exec %s timeout 20 iperf3 -c 10.201.0.2 -p 5201 -n 20M "
                     ">/dev/null 2>&1",
                     n1);
        }
        if (check(t, irc == 0, "iperf3 (TCP, 20 MB) from %s to %s failed", n1, n2))
            say("iperf3 TCP 20 MB %s -> %s at MTU 9000: ok", n1, n2);
        sh("ip netns pids %s | xargs -r kill 2>/dev/null", n2);
    }

    /* Runtime MTU, through the kernel interface. */
    check(t, vsw_uplink_port_set_mtu(ports[0], 1500) == 0 && sysfs_long(a, "mtu") == 1500,
          "set_mtu 1500: %s MTU %ld", a, sysfs_long(a, "mtu"));
    check(t, vsw_uplink_port_set_mtu(ports[0], 9000) == 0 && sysfs_long(a, "mtu") == 9000,
          "set_mtu 9000: %s MTU %ld", a, sysfs_long(a, "mtu"));

    for (int i = 0; i < 3; i++)
        print_stats(ports[i]);
    vsw_uplink_port_get_info(ports[0], &i1);
    say("up1: link %s %u Mb/s, imissed %" PRIu64 " ierrors %" PRIu64 " oerrors %" PRIu64,
        i1.link_up ? "up" : "down", i1.speed_mbps, i1.rx_missed, i1.rx_errors, i1.tx_errors);

out:
    if (sb >= 0)
        close(sb);
    if (sd >= 0)
        close(sd);
    teardown(t, sw, 1, ports, 3);
    if (t->result != SKIP && if_nametoindex(a)) {
        check(t, sysfs_long(a, "mtu") == 1500, "%s MTU not put back: %ld", a, sysfs_long(a, "mtu"));
        check(t, (sysfs_long(a, "flags") & IFF_PROMISC) == 0, "%s left promiscuous", a);
    }
    undo_run();
}

/* ---- tap ----------------------------------------------------------------- */

/* A large TCP segment (8000 bytes at MSS 1000, a chain of mbufs of segs[]
 * bytes) from the test port to net_tap, which cuts TCP/IPv4 itself (TSO)
 * unless the switch does: the kernel side must get 8 segments, each with
 * its length, sequence number and IP and TCP checksums right and its part
 * of the payload. Returns the segments seen. */
static unsigned send_large_segment(struct sub *t, struct tport *tp, int fd, const uint8_t dst[6],
                                   const uint32_t segs[4], uint32_t seq)
{
    static uint8_t f[FRAME_MAX], got[FRAME_MAX];
    const uint32_t payload = 8000, mss = 1000, nseg = payload / mss;
    uint32_t len = build_tcp4(f, payload, dst, seq);
    struct rte_mbuf *m = mk_mbuf(f, len, segs, 4);
    if (!check(t, m != NULL, "no mbufs"))
        return 0;
    if (!check(t, vsw_frame_tso_request(m, 34, (uint16_t)mss, 4, 1500) == 0,
               "the large segment is refused")) {
        rte_pktmbuf_free(m);
        return 0;
    }
    if (!check(t, inject(tp, m), "large segment: cannot inject"))
        return 0;
    bool seen[8] = {false};
    unsigned n = 0;
    double end = now_s() + 3;
    while (n < nseg && now_s() < end) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        vsw_dp_process(g_dp);
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        ssize_t r = recv(fd, got, FRAME_MAX, MSG_DONTWAIT);
        if (r < 54 || get16(got + 12) != 0x0800 || got[23] != 6 || get16(got + 34) != 40000)
            continue;
        uint32_t sq = (uint32_t)get16(got + 38) << 16 | get16(got + 40);
        uint32_t i = (sq - seq) / mss;
        if ((sq - seq) % mss || i >= nseg || seen[i])
            continue;
        seen[i] = true;
        n++;
        uint32_t want = 54 + mss;
        check(t, (uint32_t)r == want && get16(got + 16) == want - 14,
              "segment %u: %zd bytes, IP length %u, expected %u", i, r, get16(got + 16), want);
        check(t, sum_fold(sum_add(0, got + 14, 20)) == 0xffff, "segment %u: IP checksum wrong", i);
        check(t, l4_cksum_ok(got, (uint32_t)r), "segment %u: TCP checksum wrong", i);
        check(t, get16(got + 18) == (uint16_t)(get16(f + 18) + i), "segment %u: IP id %u", i,
              get16(got + 18));
        check(t, memcmp(got + 54, f + 54 + i * mss, mss) == 0, "segment %u: payload differs", i);
    }
    if (check(t, n == nseg, "a large segment to the kernel: %u of %u segments arrived", n, nseg))
        say("switch -> kernel, a large segment of %u bytes: %u segments, all right", payload, n);
    return n;
}

static void test_tap(struct sub *t)
{
    char ifn[16], da[64];
    snprintf(ifn, sizeof(ifn), "tu%dt", g_pid);
    snprintf(da, sizeof(da), "net_tap_tu,iface=%s", ifn);
    struct vsw_switch *sw[1] = {NULL};
    struct vsw_port *ports[2] = {NULL};
    int s = -1, ifindex = 0;
    static uint8_t f[FRAME_MAX], got[FRAME_MAX];

    undo_add("ip link del %s 2>/dev/null", ifn);
    if (access("/dev/net/tun", R_OK | W_OK) != 0) {
        skip(t, "/dev/net/tun is missing");
        goto out;
    }
    int rc = uplink(&(struct uplink_args){da, "tap", 9000, g_pool}, &ports[0]);
    if (rc < 0) {
        skip(t, "net_tap: create failed: %s", strerror(-rc));
        goto out;
    }
    struct vsw_uplink_info in;
    vsw_uplink_port_get_info(ports[0], &in);
    check(t, strcmp(in.driver, "net_tap") == 0, "driver %s", in.driver);
    check(t, in.rx_interrupts, "net_tap uplink is polled, expected RX interrupts");
    check(t, sysfs_long(ifn, "mtu") == 9000, "%s MTU %ld, expected 9000", ifn,
          sysfs_long(ifn, "mtu"));
    sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1 2>/dev/null", ifn);

    struct tport *tp = tport_create("tap");
    ports[1] = tp ? &tp->port : NULL;
    if (!check(t, tp && make_switch("ext-tap", &sw[0]) == 0, "switch or test port"))
        goto out;
    for (int i = 0; i < 2; i++)
        if (!check(t, vsw_port_attach(sw[0], ports[i]) == 0, "attach %d", i))
            goto out;
    if (!check(t, wait_link(ports[0], 5), "tap link stays down"))
        goto out;
    s = raw_open(NULL, ifn, &ifindex);
    if (!check(t, s >= 0, "raw socket on %s: %s", ifn, strerror(errno)))
        goto out;

    /* Every port here can wake the worker: let it fall asleep, then a frame
     * from the kernel must wake it through the TAP descriptor, long before
     * its 100 ms epoll timeout. */
    {
        /* Send the moment the worker has gone to sleep (its sleeps counter
         * goes up just before epoll_wait, whose timeout is 100 ms): woken by
         * the TAP's descriptor, it forwards within a few ms; not woken, only
         * after ~100 ms. Something else may wake it first (then it polls the
         * frame, with no wake-up by the TAP): up to five tries of that. */
        struct vsw_worker_stats w0 = {0}, w1 = {0};
        uint8_t s0[6], d0[6];
        mac(s0, 0x0a, 2);
        mac(d0, 0x0f, 0x02);
        double dt = 0;
        int64_t r = -1;
        bool woken = false, asleep = false;
        for (int attempt = 0; attempt < 5 && !woken; attempt++) {
            pause_ms(200);
            struct vsw_worker_stats before;
            vsw_dp_worker_stats(g_dp, &before, 1);
            double until = now_s() + 2;
            asleep = false;
            while (!asleep && now_s() < until) {
                vsw_dp_worker_stats(g_dp, &w0, 1);
                asleep = w0.sleeps > before.sleeps;
            }
            if (!asleep)
                break;
            uint32_t len = build_raw(f, 100, d0, s0, (uint32_t)(590 + attempt));
            double t0 = now_s();
            raw_send(s, ifindex, f, len);
            r = capture(tp, 590 + attempt, got, 3);
            dt = now_s() - t0;
            vsw_dp_worker_stats(g_dp, &w1, 1);
            woken = r >= 0 && w1.wakeups > w0.wakeups && dt < 0.05;
            say("asleep worker, try %d: frame from the kernel after %.1f ms; wake-ups by event %" PRIu64,
                attempt + 1, dt * 1e3, w1.wakeups - w0.wakeups);
            if (r < 0 || dt >= 0.05)
                break; /* lost, or it waited for the timeout: not a race */
        }
        check(t, asleep, "the worker never went to sleep");
        check(t, !asleep || woken,
              "the TAP descriptor did not wake the worker (%.1f ms, %" PRIu64 " wake-ups)",
              dt * 1e3, w1.wakeups - w0.wakeups);
    }

    static const uint32_t sizes[] = {60, 1514, 9014};
    uint8_t src[6], dst[6];
    mac(src, 0x0a, 1);
    mac(dst, 0x0f, 0x02);
    for (unsigned i = 0; i < RTE_DIM(sizes); i++) {
        uint32_t seq = 600 + i, len = build_raw(f, sizes[i], dst, src, seq);
        char w[96];
        snprintf(w, sizeof(w), "kernel %s -> switch, %u-byte frame", ifn, sizes[i]);
        if (!check(t, raw_send(s, ifindex, f, len), "%s: send: %s", w, strerror(errno)))
            continue;
        int64_t r = capture(tp, seq, got, 3);
        if (check(t, r >= 0, "%s did not arrive", w) && same(t, w, got, (uint32_t)r, f, len))
            say("%s: ok", w);
    }
    /* net_tap (22.11) cannot send frames over its ethdev MTU (<= 1504) + 22
     * bytes: the port says so, and the switch drops longer ones (too_big). */
    uint32_t txmax = ports[0]->max_frame;
    say("net_tap takes frames of up to %u bytes from the switch", txmax);
    check(t, txmax >= 1514 && txmax <= 1526, "net_tap frame limit %u", txmax);
    struct far k = {.fd = s, .ifindex = ifindex};
    send_sizes(t, "switch -> kernel", tp, &k, sizes, 2, 700, 0x02);
    struct vsw_port_stats st0, st;
    stats(ports[0], &st0);
    uint32_t len = build_raw(f, 9014, dst, MAC_P, 750);
    inject(tp, mk_mbuf(f, len, NULL, 0));
    double end = now_s() + 3;
    do {
        pause_ms(5);
        stats(ports[0], &st);
    } while (now_s() < end && st.drops[VSW_DROP_TOO_BIG] == st0.drops[VSW_DROP_TOO_BIG]);
    check(t, st.drops[VSW_DROP_TOO_BIG] == st0.drops[VSW_DROP_TOO_BIG] + 1,
          "a 9014-byte frame to net_tap was not dropped as too_big");
    say("-- checksums through net_tap (frames up to %u bytes)", txmax);
    unsigned ncs = send_csums(t, tp, &k, dst, 800, txmax);
    vsw_uplink_port_get_info(ports[0], &in);
    say("net_tap: %" PRIu64 " of %u finished in software (the rest by the PMD's TX offload)",
        in.sw_checksums, ncs);
    check(t, in.sw_checksums < ncs, "net_tap offers checksum offload, yet all were done here");
    /* net_tap verifies receive checksums: a right one reaches the switch's
     * ports marked good, a wrong one unmarked (left to the receiver). */
    for (int bad = 0; bad < 2; bad++) {
        uint32_t seq = 850 + (uint32_t)bad, flen = build_tcp4(f, 300, dst, seq);
        memcpy(f + 6, src, 6);
        l4_cksum_finish(f, flen);
        if (bad)
            f[14 + 20 + 16] ^= 0x5a;
        uint64_t fl = 0;
        const char *w = bad ? "TCP with a wrong checksum" : "TCP with a right checksum";
        if (!check(t, raw_send(s, ifindex, f, flen), "%s: send: %s", w, strerror(errno)))
            continue;
        int64_t r = capture_flags(tp, seq, got, 3, &fl);
        if (!check(t, r >= 0, "kernel -> switch, %s: did not arrive", w))
            continue;
        uint64_t l4 = fl & RTE_MBUF_F_RX_L4_CKSUM_MASK;
        bool ok = check(t, l4 == (bad ? 0 : RTE_MBUF_F_RX_L4_CKSUM_GOOD),
                        "kernel -> switch, %s: L4 checksum flags %#" PRIx64, w, l4);
        if (!bad)
            ok = check(t, (fl & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD,
                       "kernel -> switch: IP checksum not marked good") &&
                 ok;
        if (ok)
            say("kernel -> switch, %s: L4 flags %#" PRIx64 ": ok", w, l4);
    }
    /* Split at odd offsets inside the payload: net_tap's checksum would be
     * wrong (vswitch/src/port-uplink-tso.c), so the switch cuts it. */
    static const uint32_t odd_split[] = {14 + 40 + 333, 2001, 0, 0};
    static const uint32_t even_split[] = {14 + 40 + 334, 2000, 0, 0};
    struct vsw_uplink_info in0, in1;
    vsw_uplink_port_get_info(ports[0], &in0);
    unsigned nseg = send_large_segment(t, tp, s, dst, odd_split, 0x7000);
    vsw_uplink_port_get_info(ports[0], &in1);
    check(t, in1.tx_tso == in0.tx_tso, "a large segment net_tap would sum wrong went to it whole");
    /* Split evenly: it goes to net_tap whole, as one frame. */
    if (send_large_segment(t, tp, s, dst, even_split, 0x9000) == 8)
        nseg++;
    for (int tries = 0; tries < 100; tries++) {
        vsw_uplink_port_get_info(ports[0], &in1);
        if (in1.tx_tso == in0.tx_tso + 1)
            break;
        pause_ms(10);
    }
    check(t, in1.tx_tso == in0.tx_tso + 1 && in1.tx_tso_segments == in0.tx_tso_segments + 8,
          "net_tap was given %" PRIu64 " large segments whole (%" PRIu64 " segments), expected 1 (8)",
          in1.tx_tso - in0.tx_tso, in1.tx_tso_segments - in0.tx_tso_segments);
    /* The worker counts a frame after the kernel may have delivered it. */
    for (int tries = 0; tries < 100; tries++) {
        stats(ports[0], &st);
        if (st.rx_packets >= 3 && st.tx_packets >= 2 + ncs + nseg)
            break;
        pause_ms(10);
    }
    check(t, st.rx_packets >= 3 && st.tx_packets >= 2 + ncs + nseg,
          "tap counters rx %" PRIu64 " tx %" PRIu64, st.rx_packets, st.tx_packets);
    check(t, st.drops[VSW_DROP_QUEUE_FULL] == 0, "net_tap refused %" PRIu64 " frames",
          st.drops[VSW_DROP_QUEUE_FULL]);
    for (int i = 0; i < 2; i++)
        print_stats(ports[i]);

out:
    if (s >= 0)
        close(s);
    teardown(t, sw, 1, ports, 2);
    if (t->result != SKIP)
        check(t, if_nametoindex(ifn) == 0, "%s still exists after destroy", ifn);
    undo_run();
}

/* ---- memif --------------------------------------------------------------- */

static void test_memif(struct sub *t)
{
    char sock[64], da1[160], da2[160];
    snprintf(sock, sizeof(sock), "/tmp/tupl%d-memif.sock", g_pid);
    snprintf(da1, sizeof(da1), "net_memif_tu1,role=server,id=0,socket=%s,bsize=16384", sock);
    /* No bsize: the uplink adds bsize=16384 for an MTU above 1500. */
    snprintf(da2, sizeof(da2), "net_memif_tu2,role=client,id=0,socket=%s", sock);
    undo_add("rm -f %s", sock);
    struct vsw_switch *sw[2] = {NULL};
    struct vsw_port *ports[4] = {NULL}; /* M1, M2, P1, P2 */

    int rc = uplink(&(struct uplink_args){da1, "memif-srv", 9000, g_pool}, &ports[0]);
    if (rc < 0) {
        skip(t, "net_memif server: create failed: %s", strerror(-rc));
        goto out;
    }
    rc = uplink(&(struct uplink_args){da2, "memif-cli", 9000, g_pool}, &ports[1]);
    if (rc < 0) {
        skip(t, "net_memif client: create failed: %s", strerror(-rc));
        goto out;
    }
    struct tport *p1 = tport_create("m1"), *p2 = tport_create("m2");
    ports[2] = p1 ? &p1->port : NULL;
    ports[3] = p2 ? &p2->port : NULL;
    /* Two switches: server and client on one would loop every flood. */
    if (!check(t,
               p1 && p2 && make_switch("ext-m1", &sw[0]) == 0 && make_switch("ext-m2", &sw[1]) == 0,
               "switches or test ports"))
        goto out;
    if (!check(t,
               vsw_port_attach(sw[0], ports[0]) == 0 && vsw_port_attach(sw[0], ports[2]) == 0 &&
                   vsw_port_attach(sw[1], ports[1]) == 0 && vsw_port_attach(sw[1], ports[3]) == 0,
               "attach"))
        goto out;
    if (!wait_link(ports[0], 10) || !wait_link(ports[1], 10)) {
        skip(t, "net_memif server and client did not connect within 10 s (socket %s)", sock);
        goto out;
    }
    static const uint32_t sizes[] = {60, 1514, 9014};
    struct far to2 = {.tp = p2}, to1 = {.tp = p1};
    send_sizes(t, "memif server -> client", p1, &to2, sizes, RTE_DIM(sizes), 900, 0x03);
    send_sizes(t, "memif client -> server", p2, &to1, sizes, RTE_DIM(sizes), 910, 0x03);

    /* A burst: everything sent arrives or is counted as dropped. */
    static uint8_t f[FRAME_MAX];
    uint8_t dst[6];
    mac(dst, 0x0f, 0x03);
    const unsigned burst = 2000;
    unsigned sent = 0, got = 0;
    for (unsigned i = 0; i < burst; i++) {
        uint32_t len = build_raw(f, 1514, dst, MAC_P, 10000 + i);
        while (rte_ring_free_count(p1->in) == 0)
            pause_ms(1);
        sent += inject(p1, mk_mbuf(f, len, NULL, 0));
    }
    double end = now_s() + 5;
    struct vsw_port_stats s1, s2, sp;
    while (now_s() < end && got < sent) {
        struct rte_mbuf *m;
        if (rte_ring_dequeue_burst(p2->out, (void **)&m, 1, NULL) == 1) {
            uint8_t hdr[32];
            const uint8_t *h = rte_pktmbuf_read(m, 0, 22, hdr);
            if (h && frame_seq(h, 22) >= 10000)
                got++;
            rte_pktmbuf_free(m);
        } else {
            stats(ports[0], &s1);
            stats(ports[1], &s2);
            if (got + drops(&s1) + drops(&s2) >= sent)
                break;
            pause_ms(1);
        }
    }
    stats(ports[0], &s1);
    stats(ports[1], &s2);
    stats(ports[2], &sp);
    say("burst of %u 1514-byte frames: %u arrived, drops server %" PRIu64 " client %" PRIu64, sent,
        got, drops(&s1), drops(&s2));
    check(t, got + drops(&s1) + drops(&s2) == sent,
          "burst: %u sent, %u arrived, %" PRIu64 " counted as dropped", sent, got,
          drops(&s1) + drops(&s2));
    check(t, got >= sent * 9 / 10, "burst: only %u of %u arrived", got, sent);
    /* Exact counts, each way: the 3 frames of send_sizes, then the burst.
     * What the server's PMD took the client received once (a queue polled
     * that its peer did not announce would receive frames again), and the
     * client's port delivered it or counted it as dropped. The counters
     * follow the frames by a little: wait for them to settle. */
    const uint32_t nsizes = RTE_DIM(sizes);
    end = now_s() + 3;
    do {
        stats(ports[0], &s1);
        stats(ports[1], &s2);
        if (s1.tx_packets == nsizes + sent - drops(&s1) && s2.rx_packets == s1.tx_packets &&
            s2.tx_packets == nsizes && s1.rx_packets == nsizes)
            break;
        pause_ms(10);
    } while (now_s() < end);
    say("memif server: tx %" PRIu64 " rx %" PRIu64 "; client: rx %" PRIu64 " tx %" PRIu64,
        s1.tx_packets, s1.rx_packets, s2.rx_packets, s2.tx_packets);
    check(t, s1.tx_packets == nsizes + sent - drops(&s1),
          "memif server sent %" PRIu64 " frames, expected %u + %u - %" PRIu64 " dropped",
          s1.tx_packets, nsizes, sent, drops(&s1));
    check(t, s2.rx_packets == s1.tx_packets,
          "memif client received %" PRIu64 " frames, the server sent %" PRIu64, s2.rx_packets,
          s1.tx_packets);
    check(t, got == s2.rx_packets - nsizes - drops(&s2),
          "burst: %u arrived at the far port, the client received %" PRIu64 " - %u - %" PRIu64
          " dropped",
          got, s2.rx_packets, nsizes, drops(&s2));
    check(t, s2.tx_packets == nsizes && s1.rx_packets == nsizes,
          "client -> server: the client sent %" PRIu64 ", the server received %" PRIu64
          ", expected %u",
          s2.tx_packets, s1.rx_packets, nsizes);
    for (int i = 0; i < 4; i++)
        print_stats(ports[i]);

out:
    teardown(t, sw, 2, ports, 4);
    undo_run();
}

/* ---- pcap ---------------------------------------------------------------- */

static void test_pcap(struct sub *t)
{
    char in[64], outf[64], da[192];
    snprintf(in, sizeof(in), "/tmp/tupl%d-in.pcap", g_pid);
    snprintf(outf, sizeof(outf), "/tmp/tupl%d-out.pcap", g_pid);
    snprintf(da, sizeof(da), "net_pcap_tu,rx_pcap=%s,tx_pcap=%s", in, outf);
    undo_add("rm -f %s %s", in, outf);
    struct vsw_switch *sw[1] = {NULL};
    struct vsw_port *ports[2] = {NULL}; /* P, C */
    static uint8_t f[FRAME_MAX], got[FRAME_MAX];
    static const uint32_t sizes[] = {60, 1514, 9014};
    uint8_t src[6], dst[6];
    mac(src, 0x0c, 1);
    mac(dst, 0x0f, 0x04);

    /* The input: three test frames and a TCP frame with its checksum done. */
    pcap_t *pd = pcap_open_dead(DLT_EN10MB, 65535);
    pcap_dumper_t *dump = pd ? pcap_dump_open(pd, in) : NULL;
    if (!check(t, dump != NULL, "cannot write %s", in))
        goto out;
    for (unsigned i = 0; i <= RTE_DIM(sizes); i++) {
        uint32_t len;
        if (i < RTE_DIM(sizes)) {
            len = build_raw(f, sizes[i], dst, src, 1000 + i);
        } else {
            len = build_tcp4(f, 700, dst, 1000 + i);
            l4_cksum_finish(f, len);
        }
        struct pcap_pkthdr h = {.caplen = len, .len = len};
        pcap_dump((u_char *)dump, &h, f);
    }
    pcap_dump_close(dump);
    pcap_close(pd);

    struct tport *tp = tport_create("pcap");
    ports[0] = tp ? &tp->port : NULL;
    if (!check(t,
               tp && make_switch("ext-pcap", &sw[0]) == 0 && vsw_port_attach(sw[0], ports[0]) == 0,
               "switch or test port"))
        goto out;
    int rc = uplink(&(struct uplink_args){da, "pcap", 9000, g_pool}, &ports[1]);
    if (rc < 0) {
        skip(t, "net_pcap: create failed: %s", strerror(-rc));
        goto out;
    }
    if (!check(t, vsw_port_attach(sw[0], ports[1]) == 0, "attach pcap"))
        goto out;
    for (unsigned i = 0; i <= RTE_DIM(sizes); i++) {
        uint32_t len = i < RTE_DIM(sizes) ? build_raw(f, sizes[i], dst, src, 1000 + i)
                                          : build_tcp4(f, 700, dst, 1000 + i);
        if (i == RTE_DIM(sizes))
            l4_cksum_finish(f, len);
        char w[64];
        snprintf(w, sizeof(w), "rx_pcap frame %u (%u bytes)", i, len);
        int64_t r = capture(tp, 1000 + i, got, 3);
        if (check(t, r >= 0, "%s did not arrive", w) && same(t, w, got, (uint32_t)r, f, len))
            say("%s: ok", w);
    }

    /* Out through tx_pcap: plain frames and unfinished checksums. */
    static uint8_t want[RTE_DIM(sizes) + RTE_DIM(csum_cases)][FRAME_MAX / 2 + 1024];
    uint32_t wlen[RTE_DIM(sizes) + RTE_DIM(csum_cases)];
    unsigned nw = 0;
    for (unsigned i = 0; i < RTE_DIM(sizes); i++, nw++) {
        wlen[nw] = build_raw(want[nw], sizes[i], dst, MAC_P, 1100 + i);
        inject(tp, mk_mbuf(want[nw], wlen[nw], NULL, 0));
    }
    for (unsigned i = 0; i < RTE_DIM(csum_cases); i++, nw++) {
        const struct csum_case *c = &csum_cases[i];
        wlen[nw] = c->v6 ? build_udp6(want[nw], c->payload, dst, 1200 + i)
                         : build_tcp4(want[nw], c->payload, dst, 1200 + i);
        struct rte_mbuf *m = mk_mbuf(want[nw], wlen[nw], c->segs, 4);
        m->l2_len = 14;
        m->l3_len = c->v6 ? 40 : 20;
        m->ol_flags |= c->v6 ? (RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM)
                             : (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM);
        inject(tp, m);
        l4_cksum_finish(want[nw], wlen[nw]);
    }
    struct vsw_port_stats st;
    double end = now_s() + 5;
    do {
        pause_ms(5);
        stats(ports[1], &st);
    } while (now_s() < end && st.tx_packets < nw);
    check(t, st.tx_packets == nw, "pcap port sent %" PRIu64 " of %u", st.tx_packets, nw);
    struct vsw_uplink_info info;
    vsw_uplink_port_get_info(ports[1], &info);
    check(t, info.sw_checksums == RTE_DIM(csum_cases), "sw_checksums %" PRIu64 ", expected %zu",
          info.sw_checksums, RTE_DIM(csum_cases));
    for (int i = 0; i < 2; i++)
        print_stats(ports[i]);
    vsw_port_destroy(ports[1]); /* closes the dump file */
    ports[1] = NULL;

    char err[PCAP_ERRBUF_SIZE];
    pcap_t *rd = pcap_open_offline(outf, err);
    if (!check(t, rd != NULL, "cannot read %s: %s", outf, err))
        goto out;
    struct pcap_pkthdr *h;
    const u_char *data;
    unsigned k = 0;
    while (pcap_next_ex(rd, &h, &data) == 1) {
        char w[64];
        snprintf(w, sizeof(w), "tx_pcap frame %u", k);
        if (k < nw && same(t, w, data, h->caplen, want[k], wlen[k]))
            say("%s (%u bytes%s): ok", w, h->caplen,
                k >= RTE_DIM(sizes) ? ", checksum finished" : "");
        k++;
    }
    pcap_close(rd);
    check(t, k == nw, "%s holds %u frames, %u were sent", outf, k, nw);

out:
    teardown(t, sw, 1, ports, 2);
    undo_run();
}

/* ---- vlan ---------------------------------------------------------------- */

/* f with tags (TPID, TCI pairs) put in behind its MAC addresses, into out. */
static uint32_t with_tags(uint8_t *out, const uint8_t *f, uint32_t len, const uint16_t (*tags)[2],
                          unsigned n)
{
    memcpy(out, f, 12);
    for (unsigned i = 0; i < n; i++) {
        put16(out + 12 + 4 * i, tags[i][0]);
        put16(out + 14 + 4 * i, tags[i][1]);
    }
    memcpy(out + 12 + 4 * n, f + 12, len - 12);
    return len + 4 * n;
}

/* Every frame waiting at tp now: how many, and the sequence numbers. */
static unsigned drain_seqs(struct tport *tp, int64_t *seqs, uint32_t *lens, unsigned max)
{
    static uint8_t buf[FRAME_MAX];
    unsigned n = 0;
    struct rte_mbuf *m;
    /* The burst form: gcc -Os cannot see that a successful single dequeue
     * sets its object (maybe-uninitialized in MinSizeRel). */
    while (rte_ring_dequeue_burst(tp->out, (void **)&m, 1, NULL) == 1) {
        uint32_t len = mbuf_flat(m, buf, FRAME_MAX);
        rte_pktmbuf_free(m);
        if (n < max) {
            seqs[n] = frame_seq(buf, len);
            lens[n] = len;
        }
        n++;
    }
    return n;
}

/*
 * Tags across an uplink as vswitchd sets one up (a trunk of every VLAN,
 * native 0), through net_pcap, which passes frames exactly as on the wire.
 * From the physical network: a priority tag in front of VLAN 20 puts the
 * frame on VLAN 20, not on the untagged network with the tag inside; an
 * 802.1ad outer tag and a tag behind the VLAN tag are refused and counted;
 * priority tags alone are taken out. To it, from a VM NIC on a trunk (an
 * out-of-band port, like netvsp): TCP frames the VM tagged in-band (with
 * and without priority bits, behind priority tags) and left the checksum to
 * the network leave tagged 20 with the checksum right behind the tag; a
 * priority-tagged one leaves untagged with it right.
 */
static void test_vlan(struct sub *t)
{
    char in[64], outf[64], da[192];
    snprintf(in, sizeof(in), "/tmp/tupl%d-vin.pcap", g_pid);
    snprintf(outf, sizeof(outf), "/tmp/tupl%d-vout.pcap", g_pid);
    snprintf(da, sizeof(da), "net_pcap_tuv,rx_pcap=%s,tx_pcap=%s", in, outf);
    undo_add("rm -f %s %s", in, outf);
    struct vsw_switch *sw[1] = {NULL};
    struct vsw_port *ports[4] = {NULL}; /* U, V, M, the uplink */
    static uint8_t f[FRAME_MAX], g[FRAME_MAX];
    uint8_t src[6], dst[6];
    mac(src, 0x0c, 2);
    mac(dst, 0x0f, 0x05);
    static const uint16_t prio_20[][2] = {{0x8100, 0}, {0x8100, 20}};
    static const uint16_t s_20[][2] = {{0x88a8, 20}};
    static const uint16_t prios[][2] = {{0x8100, 0x6000}, {0x8100, 0}};
    static const uint16_t c20_c30[][2] = {{0x8100, 20}, {0x8100, 30}};
    static const struct {
        const uint16_t (*tags)[2];
        unsigned n;
    } rx[] = {{prio_20, 2}, {s_20, 1}, {prios, 2}, {c20_c30, 2}};

    pcap_t *pd = pcap_open_dead(DLT_EN10MB, 65535);
    pcap_dumper_t *dump = pd ? pcap_dump_open(pd, in) : NULL;
    if (!check(t, dump != NULL, "cannot write %s", in))
        goto out;
    for (unsigned i = 0; i < RTE_DIM(rx); i++) {
        uint32_t len = build_raw(f, 100, dst, src, 2000 + i);
        len = with_tags(g, f, len, rx[i].tags, rx[i].n);
        struct pcap_pkthdr h = {.caplen = len, .len = len};
        pcap_dump((u_char *)dump, &h, g);
    }
    pcap_dump_close(dump);
    pcap_close(pd);

    struct tport *u = tport_create("vu"), *v = tport_create("vv"), *vm = tport_create("vm");
    ports[0] = u ? &u->port : NULL;
    ports[1] = v ? &v->port : NULL;
    ports[2] = vm ? &vm->port : NULL;
    if (!check(t, u && v && vm && make_switch("ext-vlan", &sw[0]) == 0, "switch or test ports"))
        goto out;
    struct vsw_port_policy acc20 = {.access_vlan = 20}, trunk20 = {.trunk = true};
    struct vsw_port_policy all = {.trunk = true};
    vsw_policy_allow(&trunk20, 20);
    for (uint16_t id = 1; id <= VSW_VLAN_MAX; id++)
        vsw_policy_allow(&all, id);
    if (!check(t, vsw_port_set_policy(ports[1], &acc20) == 0 &&
                      vsw_port_set_policy(ports[2], &trunk20) == 0,
               "test port policies"))
        goto out;
    for (int i = 0; i < 3; i++)
        if (!check(t, vsw_port_attach(sw[0], ports[i]) == 0, "attach %d", i))
            goto out;
    int rc = uplink(&(struct uplink_args){da, "pcap-vlan", 9000, g_pool}, &ports[3]);
    if (rc < 0) {
        skip(t, "net_pcap: create failed: %s", strerror(-rc));
        goto out;
    }
    if (!check(t, vsw_port_set_policy(ports[3], &all) == 0 &&
                      vsw_port_attach(sw[0], ports[3]) == 0,
               "uplink policy and attach"))
        goto out;

    /* In from the wire: wait until the uplink took all four. */
    struct vsw_port_stats st;
    double end = now_s() + 5;
    do {
        pause_ms(5);
        vsw_dp_process(g_dp);
        stats(ports[3], &st);
    } while (now_s() < end && st.rx_packets + drops(&st) < RTE_DIM(rx));
    pause_ms(100);
    int64_t su[8], sv[8];
    uint32_t lu[8], lv[8];
    unsigned nu = drain_seqs(u, su, lu, 8), nv = drain_seqs(v, sv, lv, 8);
    check(t, nv == 1 && sv[0] == 2000 && lv[0] == 100,
          "VLAN 20 (V) got %u frames (first seq %" PRId64 "), expected the priority-tagged VLAN-20 one"
          " untagged",
          nv, nv ? sv[0] : -1);
    check(t, nu == 1 && su[0] == 2002 && lu[0] == 100,
          "the untagged network (U) got %u frames (first seq %" PRId64 ", %u bytes), expected only"
          " the one with priority tags alone, without them",
          nu, nu ? su[0] : -1, nu ? lu[0] : 0);
    check(t, st.drops[VSW_DROP_VLAN] == 2, "uplink vlan drops %" PRIu64 ", expected 2 (802.1ad,"
          " a tag behind VLAN 20)", st.drops[VSW_DROP_VLAN]);
    if (t->result == PASS)
        say("from the wire: priority tag + VLAN 20 -> VLAN 20; 802.1ad and QinQ refused; priority"
            " tags taken out");

    /* Out to the wire: the VM's in-band tags and checksum requests. */
    static const uint16_t v20[][2] = {{0x8100, 20}};
    static const uint16_t v20p[][2] = {{0x8100, 0xa000 | 20}};
    static const uint16_t pp20[][2] = {{0x8100, 0}, {0x8100, 0x2000}, {0x8100, 20}};
    static const uint16_t p5[][2] = {{0x8100, 0xa000}};
    static const struct {
        const char *what;
        const uint16_t (*tags)[2];
        unsigned n;
        bool vlan20;
    } tx[] = {
        {"VLAN 20 in-band", v20, 1, true},
        {"VLAN 20 in-band, priority 5", v20p, 1, true},
        {"priority tags, then VLAN 20", pp20, 3, true},
        {"a priority tag alone", p5, 1, false},
    };
    static uint8_t want[RTE_DIM(tx)][2048];
    uint32_t wlen[RTE_DIM(tx)];
    static const uint16_t out20[][2] = {{0x8100, 20}};
    for (unsigned i = 0; i < RTE_DIM(tx); i++) {
        uint32_t len = build_tcp4(f, 300, dst, 2100 + i);
        uint32_t glen = with_tags(g, f, len, tx[i].tags, tx[i].n);
        struct rte_mbuf *m = mk_mbuf(g, glen, NULL, 0);
        if (!check(t, m && vsw_frame_csum_request(m, 14 + 4 * tx[i].n + 20, true, 4) == 0,
                   "%s: the checksum request is refused", tx[i].what)) {
            rte_pktmbuf_free(m);
            goto out;
        }
        inject(vm, m);
        wlen[i] = with_tags(want[i], f, len, out20, tx[i].vlan20 ? 1 : 0);
        l4_cksum_finish(want[i], wlen[i]);
    }
    end = now_s() + 5;
    do {
        pause_ms(5);
        stats(ports[3], &st);
    } while (now_s() < end && st.tx_packets < RTE_DIM(tx));
    check(t, st.tx_packets == RTE_DIM(tx), "the uplink sent %" PRIu64 " of %zu", st.tx_packets,
          RTE_DIM(tx));
    struct vsw_port_stats sm;
    stats(ports[2], &sm);
    check(t, drops(&sm) == 0, "the VM's frames were dropped");
    for (int i = 0; i < 4; i++)
        print_stats(ports[i]);
    vsw_port_destroy(ports[3]); /* closes the dump file */
    ports[3] = NULL;

    char err[PCAP_ERRBUF_SIZE];
    pcap_t *rd = pcap_open_offline(outf, err);
    if (!check(t, rd != NULL, "cannot read %s: %s", outf, err))
        goto out;
    struct pcap_pkthdr *h;
    const u_char *data;
    unsigned k = 0;
    while (pcap_next_ex(rd, &h, &data) == 1) {
        if (k < RTE_DIM(tx)) {
            char w[96];
            snprintf(w, sizeof(w), "to the wire: %s", tx[k].what);
            if (check(t, l4_cksum_ok(data, h->caplen), "%s: wrong checksum", w) &&
                same(t, w, data, h->caplen, want[k], wlen[k]))
                say("%s: left %s, checksum right", w, tx[k].vlan20 ? "tagged 20" : "untagged");
        }
        k++;
    }
    pcap_close(rd);
    check(t, k == RTE_DIM(tx), "%s holds %u frames, %zu were sent", outf, k, RTE_DIM(tx));

out:
    teardown(t, sw, 1, ports, 4);
    undo_run();
}

/* ---- ring ---------------------------------------------------------------- */

static void test_ring(struct sub *t)
{
    struct vsw_switch *sw[1] = {NULL};
    struct vsw_port *ports[2] = {NULL};
    struct tport *tp = tport_create("ring");
    ports[0] = tp ? &tp->port : NULL;
    if (!check(t,
               tp && make_switch("ext-ring", &sw[0]) == 0 && vsw_port_attach(sw[0], ports[0]) == 0,
               "switch or test port"))
        goto out;
    /* Without arguments net_ring's TX queue feeds its own RX queue. */
    int rc = uplink(&(struct uplink_args){"net_ring_tu", "ring", 9000, g_pool}, &ports[1]);
    if (rc < 0) {
        skip(t, "net_ring: create failed: %s", strerror(-rc));
        goto out;
    }
    if (!check(t, vsw_port_attach(sw[0], ports[1]) == 0, "attach"))
        goto out;
    static const uint32_t sizes[] = {60, 1514, 9014};
    struct far back = {.tp = tp};
    send_sizes(t, "test port -> net_ring -> back", tp, &back, sizes, RTE_DIM(sizes), 1300, 0x05);
    uint8_t dst[6];
    mac(dst, 0x0f, 0x05);
    send_csums(t, tp, &back, dst, 1400, FRAME_MAX);
    for (int i = 0; i < 2; i++)
        print_stats(ports[i]);
out:
    teardown(t, sw, 1, ports, 2);
}

/* ---- main ---------------------------------------------------------------- */

static int hugepages_free(void)
{
    FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r");
    int n = 0;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = 0;
        fclose(f);
    }
    return n;
}

static const struct {
    const char *name;
    void (*fn)(struct sub *t);
} subs[] = {
    {"errors", test_errors}, {"af_packet", test_af_packet}, {"tap", test_tap},
    {"memif", test_memif},   {"pcap", test_pcap},           {"ring", test_ring},
    {"vlan", test_vlan},
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        bool known = false;
        for (size_t j = 0; j < RTE_DIM(subs); j++)
            known |= strcmp(argv[i], subs[j].name) == 0;
        if (!known || strcmp(argv[i], "--help") == 0) {
            printf("usage: test_uplink_port [errors|af_packet|tap|memif|pcap|ring|vlan]...\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 1;
        }
    }
    if (geteuid() != 0) {
        printf("SKIP: needs root (namespaces, veth, TAP, raw sockets)\n");
        return 77;
    }
    g_pid = (int)getpid();
    atexit(undo_run);
    signal(SIGINT, on_fatal);
    signal(SIGTERM, on_fatal);
    signal(SIGSEGV, on_fatal);
    signal(SIGABRT, on_fatal);
    signal(SIGBUS, on_fatal);

    char prefix[32];
    snprintf(prefix, sizeof(prefix), "tupl%d", g_pid);
    char *eal[16] = {argv[0], "-l",          "0,1",       "--no-pci",    "--file-prefix",
                     prefix,  "--log-level", "*:warning", "--log-level", "hvnet.*:info"};
    int n = 10;
    bool huge = hugepages_free() >= 512 && !getenv("TUPL_NO_HUGE");
    if (huge) {
        eal[n++] = "-m";
        eal[n++] = "512";
        eal[n++] = "--huge-unlink"; /* pages go back even if the test is killed */
    } else {
        eal[n++] = "--no-huge";
        eal[n++] = "-m";
        eal[n++] = "1024";
    }
    printf("EAL: %s\n", huge ? "hugepages, -m 512" : "--no-huge -m 1024");
    if (rte_eal_init(n, eal) < 0) {
        printf("FAIL: rte_eal_init: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    int rc = vsw_dp_create(NULL, &g_dp);
    if (rc < 0) {
        printf("FAIL: vsw_dp_create: %s\n", strerror(-rc));
        return 1;
    }
    snprintf(g_rundir, sizeof(g_rundir), "%s", rte_eal_get_runtime_dir());
    g_pool = vsw_dp_mempool(g_dp);
    g_jumbo = rte_pktmbuf_pool_create("tupl_jumbo", 2047, 64, 0, RTE_PKTMBUF_HEADROOM + 16384,
                                      (int)rte_socket_id());
    if (!g_jumbo) {
        printf("FAIL: 16 KiB mbuf pool: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    g_total0 = rte_eth_dev_count_total();

    struct sub results[RTE_DIM(subs)];
    unsigned nres = 0;
    for (size_t j = 0; j < RTE_DIM(subs); j++) {
        bool want = argc == 1;
        for (int i = 1; i < argc; i++)
            want |= strcmp(argv[i], subs[j].name) == 0;
        if (!want)
            continue;
        struct sub *t = &results[nres++];
        *t = (struct sub){.name = subs[j].name, .result = PASS};
        printf("== %s\n", t->name);
        double t0 = now_s();
        subs[j].fn(t);
        printf("== %s: %s (%.1f s)\n", t->name,
               t->result == PASS   ? "PASS"
               : t->result == FAIL ? "FAIL"
                                   : "SKIP",
               now_s() - t0);
    }

    vsw_dp_destroy(g_dp);
    rte_mempool_free(g_jumbo);
    rte_eal_cleanup();
    rundir_remove();

    int worst = PASS;
    printf("\nsummary:\n");
    for (unsigned i = 0; i < nres; i++) {
        printf("  %-10s %s%s%s\n", results[i].name,
               results[i].result == PASS   ? "PASS"
               : results[i].result == FAIL ? "FAIL"
                                           : "SKIP",
               results[i].why[0] ? ": " : "", results[i].why);
        if (results[i].result == FAIL || (results[i].result == SKIP && worst == PASS))
            worst = results[i].result;
    }
    return worst == PASS ? 0 : worst == FAIL ? 1 : 77;
}
