/*
 * Unit tests of the guest front end (netvsc-vm.h and netvsc/src/vm-*.c).
 *
 * Translation (vm-frame.c): pure functions on frames built here, hostile
 * and odd ones included.
 *
 * Data path (vm-nic.c): a real netvsc NIC against a real netvsp in this
 * process: a direct partition, the root's switch worker a thread here that
 * runs the port's rx_burst/tx_burst, and a SOCK_SEQPACKET socketpair in
 * place of the TAP (a TAP keeps record boundaries the same way). Frames both
 * ways, offloads, the bounce buffer, a full TAP, runts.
 *
 * Lifecycle (vm.c): the whole front end (netvsc_vm_create/poll/destroy)
 * with real TAPs, made by a real TAP broker (a thread here) in a network
 * namespace of the test's own: the NIC comes up with the root's MTU, the
 * root's MTU change and the VM's own restart it, a rescinded NIC is closed,
 * a TAP deleted inside the VM is made again, the cable reaches the TAP's
 * carrier, NICs are spread over the VPs. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)
 * and the ip(8) command: skipped otherwise.
 *
 * The guest's hypercalls and the worker's bursts take one lock: with a
 * direct partition the guest's hypercalls run the root's control code (a
 * channel closing, a GPADL torn down) in the guest's thread, and a port
 * outside a switch has no RCU to keep the worker out of what that frees.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_thash.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "hv-guest.h"
#include "hv.h"
#include "nettap-broker.h"
#include "nettap.h"
#include "netvsc-vm.h"
#include "netvsc.h"
#include "netvsp.h"
#include "vm-private.h"
#include "vmbus-client.h"
#include "vmbus-server.h"
#include "vsw-port-provider.h"

#define MEM_BYTES (128ull << 20)
#define POOL_MBUFS 4095u
#define MAX_NICS 2
#define GOT_MAX 256
#define WAIT_MS 5000
#define FRAME_MAX (JUMBO_FRAME_MAX + 64u)

static struct rte_mempool *g_pool;
static bool g_privileged; /* the lifecycle group can run */

/* --- frames -------------------------------------------------------------- */

static const uint8_t MAC_VM[6] = {0x00, 0x15, 0x5d, 0x00, 0x01, 0x0a};
static const uint8_t MAC_VM2[6] = {0x00, 0x15, 0x5d, 0x00, 0x01, 0x0b};
static const uint8_t MAC_PEER[6] = {0x00, 0x15, 0x5d, 0x00, 0x01, 0x77};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* The one's complement sum over n bytes, folded (RFC 1071), written out
 * independently of the code under test. */
static uint32_t ocsum(const uint8_t *p, uint32_t n, uint32_t sum)
{
    for (uint32_t i = 0; i < n; i += 2)
        sum += (uint32_t)p[i] << 8 | (i + 1 < n ? p[i + 1] : 0);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

struct l4opt {
    bool v6;
    uint8_t proto;    /* IPPROTO_TCP or IPPROTO_UDP */
    uint16_t vlan;    /* in-band 802.1Q tag if not 0 */
    uint32_t payload; /* L4 payload bytes */
    bool full_csum;   /* a finished checksum; else the pseudo-header sum only */
};

/* An Ethernet frame with IPv4 or IPv6 and TCP or UDP; returns its length
 * and where the L4 header is. */
static uint32_t build_l4(uint8_t *f, const struct l4opt *o, uint32_t *l4_out)
{
    uint32_t off = 12;
    memcpy(f, MAC_PEER, 6);
    memcpy(f + 6, MAC_VM, 6);
    if (o->vlan) {
        put16(f + off, ETH_P_8021Q);
        put16(f + off + 2, o->vlan);
        off += 4;
    }
    uint32_t l4_hlen = o->proto == IPPROTO_TCP ? 20u : 8u;
    uint32_t l4_len = l4_hlen + o->payload;
    uint32_t l3 = off + 2, l4;
    uint32_t pseudo;
    if (!o->v6) {
        put16(f + off, ETH_P_IP);
        uint8_t *ip = f + l3;
        memset(ip, 0, 20);
        ip[0] = 0x45;
        put16(ip + 2, (uint16_t)(20 + l4_len));
        ip[8] = 64;
        ip[9] = o->proto;
        uint8_t src[4] = {10, 0, 0, 1}, dst[4] = {10, 0, 0, 2};
        memcpy(ip + 12, src, 4);
        memcpy(ip + 16, dst, 4);
        put16(ip + 10, (uint16_t)~ocsum(ip, 20, 0));
        l4 = l3 + 20;
        pseudo = ocsum(ip + 12, 8, o->proto + l4_len);
    } else {
        put16(f + off, ETH_P_IPV6);
        uint8_t *ip = f + l3;
        memset(ip, 0, 40);
        ip[0] = 0x60;
        put16(ip + 4, (uint16_t)l4_len);
        ip[6] = o->proto;
        ip[7] = 64;
        ip[8] = 0xfd;
        ip[23] = 1;
        ip[24] = 0xfd;
        ip[39] = 2;
        l4 = l3 + 40;
        pseudo = ocsum(ip + 8, 32, o->proto + l4_len);
    }
    uint8_t *h = f + l4;
    memset(h, 0, l4_hlen);
    put16(h, 40000);
    put16(h + 2, 5201);
    uint32_t csum_off;
    if (o->proto == IPPROTO_TCP) {
        h[12] = 5 << 4;
        h[13] = 0x18;
        put16(h + 14, 65535);
        csum_off = 16;
    } else {
        put16(h + 4, (uint16_t)l4_len);
        csum_off = 6;
    }
    for (uint32_t i = 0; i < o->payload; i++)
        h[l4_hlen + i] = (uint8_t)(i * 7 + 3);
    if (o->full_csum) {
        uint16_t c = (uint16_t)~ocsum(h, l4_len, pseudo);
        put16(h + csum_off, c ? c : 0xffff);
    } else {
        put16(h + csum_off, (uint16_t)pseudo);
    }
    if (l4_out)
        *l4_out = l4;
    return l4 + l4_len;
}

/* Is the L4 checksum of this untagged IPv4 frame right? */
static bool l4_csum_ok_v4(const uint8_t *f, uint32_t len)
{
    const uint8_t *ip = f + 14;
    if (len < 14u + 20u || get16(ip + 2) < 20u)
        return false;
    uint32_t l4_len = get16(ip + 2) - 20u;
    if (14u + 20u + l4_len > len)
        return false;
    uint32_t pseudo = ocsum(ip + 12, 8, ip[9] + l4_len);
    return ocsum(ip + 20, l4_len, pseudo) == 0xffff;
}

/* --- the root: a partition, its VMBus server, netvsp NICs, a worker ------ */

struct got {
    uint32_t len;
    uint64_t ol_flags;
    uint16_t vlan_tci;
    uint8_t data[FRAME_MAX];
};

struct root {
    struct hv_host *host;
    struct hv_partition *part;
    struct vmbus_server *srv;
    unsigned nnic;
    struct netvsp *nic[MAX_NICS];
    struct vsw_port *port[MAX_NICS];
    pthread_mutex_t mu; /* the guest's hypercalls and the worker's bursts */
    pthread_t worker;
    bool control; /* the worker also runs the root's control thread (offers) */
    atomic_bool stop;
    atomic_bool paused; /* the worker serves nothing (rings fill up) */
    bool running;
    /* Under mu: frames the guest sent, frames for the guest. */
    struct got *got;
    unsigned ngot;
    struct rte_mbuf *out[64];
    unsigned nout;
};

static void *worker_main(void *arg)
{
    struct root *r = arg;
    /* An lcore id of its own: netvsp keeps per-lcore counters. */
    if (rte_thread_register() < 0)
        return NULL;
    while (!atomic_load(&r->stop)) {
        bool work = false;
        if (atomic_load(&r->paused)) {
            usleep(50);
            continue;
        }
        pthread_mutex_lock(&r->mu);
        if (r->control)
            while (hv_host_run(r->host, 0) > 0)
                work = true;
        for (unsigned i = 0; i < r->nnic; i++) {
            struct vsw_port *port = r->port[i];
            if (!port)
                continue;
            struct rte_mbuf *pk[32];
            uint16_t n = port->cls->rx_burst(port, pk, 32);
            for (uint16_t k = 0; k < n; k++) {
                if (r->ngot < GOT_MAX && pk[k]->pkt_len <= FRAME_MAX) {
                    struct got *g = &r->got[r->ngot++];
                    g->len = pk[k]->pkt_len;
                    g->ol_flags = pk[k]->ol_flags;
                    g->vlan_tci = pk[k]->vlan_tci;
                    const void *d = rte_pktmbuf_read(pk[k], 0, g->len, g->data);
                    if (d != g->data)
                        memcpy(g->data, d, g->len);
                }
                rte_pktmbuf_free(pk[k]);
            }
            work |= n > 0;
            if (i == 0 && r->nout) {
                uint16_t sent = port->cls->tx_burst(port, r->out, (uint16_t)r->nout);
                for (unsigned k = sent; k < r->nout; k++)
                    rte_pktmbuf_free(r->out[k]);
                r->nout = 0;
                work = true;
            }
            if (port->cls->tx_flush)
                port->cls->tx_flush(port);
        }
        pthread_mutex_unlock(&r->mu);
        if (!work)
            usleep(50);
    }
    rte_thread_unregister();
    return NULL;
}

/* The direct backend's transport (hv-core/src/direct.c), under the lock. */
static int locked_hypercall(void *ctx, const void *rec, size_t len, int *fd_out)
{
    struct root *r = ctx;
    int fd = -1;
    pthread_mutex_lock(&r->mu);
    int st = hv_hypercall(r->part, rec, len, &fd);
    pthread_mutex_unlock(&r->mu);
    *fd_out = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (fd >= 0 && *fd_out < 0)
        return -errno;
    return st;
}

/* NICs with queues channels each; control: sub-channels get offered. */
static struct root *root_create_q(uint32_t nvp, uint32_t mtu, unsigned nnic, uint32_t queues,
                                  bool control)
{
    struct root *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->got = calloc(GOT_MAX, sizeof(*r->got));
    assert_non_null(r->got);
    pthread_mutex_init(&r->mu, NULL);
    assert_int_equal(hv_host_create(&r->host), 0);
    char name[32];
    snprintf(name, sizeof(name), "tnvm%d", (int)getpid());
    struct hv_partition_params pp = {.name = name, .memory_bytes = MEM_BYTES, .vp_count = nvp,
                                     .cls = &hv_direct_partition_class};
    assert_int_equal(hv_partition_create(r->host, &pp, &r->part), 0);
    assert_int_equal(vmbus_server_create(r->part, &r->srv), 0);
    for (unsigned i = 0; i < nnic; i++) {
        struct netvsp_params np = {.port_name = i ? "vm/eth1" : "vm/eth0",
                                   .nic_name = i ? "eth1" : "eth0",
                                   .mtu = mtu,
                                   .pool = g_pool,
                                   .queues = queues};
        memcpy(np.mac, i ? MAC_VM2 : MAC_VM, 6);
        np.instance.b[0] = (uint8_t)(i + 1);
        np.instance.b[15] = 0x4e;
        assert_int_equal(netvsp_create(r->srv, &np, &r->nic[i]), 0);
        r->port[i] = netvsp_port(r->nic[i]);
    }
    r->nnic = nnic;
    r->control = control;
    assert_int_equal(hv_partition_start(r->part), 0);
    assert_int_equal(pthread_create(&r->worker, NULL, worker_main, r), 0);
    r->running = true;
    return r;
}

static struct root *root_create(uint32_t nvp, uint32_t mtu, unsigned nnic)
{
    return root_create_q(nvp, mtu, nnic, 1, false);
}

/* A guest attached to r's partition whose hypercalls take r's lock. */
static struct hv_guest *guest_attach(struct root *r)
{
    struct hv_guest *g0, *g;
    assert_int_equal(hv_direct_partition_attach(r->part, &g0), 0);
    int mem = fcntl(hv_guest_mem_fd(g0), F_DUPFD_CLOEXEC, 0);
    int sint = fcntl(hv_guest_sint_fd(g0), F_DUPFD_CLOEXEC, 0);
    uint32_t nvp = hv_guest_vp_count(g0);
    hv_guest_detach(g0);
    assert_true(mem >= 0 && sint >= 0);
    assert_int_equal(hv_guest_attach_transport(mem, sint, locked_hypercall, r, &g), 0);
    assert_int_equal(hv_guest_set_vp_count(g, nvp), 0);
    return g;
}

/* Remove NIC i as the root does (the channel rescinded). */
static void root_remove_nic(struct root *r, unsigned i)
{
    pthread_mutex_lock(&r->mu);
    vsw_port_destroy(r->port[i]);
    r->port[i] = NULL;
    r->nic[i] = NULL;
    pthread_mutex_unlock(&r->mu);
}

static void root_stop(struct root *r)
{
    if (r->running) {
        atomic_store(&r->stop, true);
        pthread_join(r->worker, NULL);
        r->running = false;
    }
}

static void root_destroy(struct root *r, struct hv_guest *g, struct vmbus_client *c)
{
    root_stop(r);
    for (unsigned i = 0; i < r->nnic; i++)
        if (r->port[i])
            vsw_port_destroy(r->port[i]);
    for (unsigned i = 0; i < r->nout; i++)
        rte_pktmbuf_free(r->out[i]);
    vmbus_client_destroy(c);
    hv_guest_detach(g);
    vmbus_server_destroy(r->srv);
    hv_host_destroy(r->host);
    pthread_mutex_destroy(&r->mu);
    free(r->got);
    free(r);
}

/* Hand a frame to the worker for the guest, with these mbuf flags. */
static void root_send(struct root *r, const void *frame, uint32_t len, uint64_t ol_flags,
                      uint16_t vlan_tci)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(g_pool);
    assert_non_null(m);
    void *d = rte_pktmbuf_append(m, (uint16_t)len);
    assert_non_null(d);
    memcpy(d, frame, len);
    m->ol_flags |= ol_flags;
    m->vlan_tci = vlan_tci;
    if (ol_flags & RTE_MBUF_F_TX_L4_MASK) {
        /* Contract A: the lengths of the headers come with the request. */
        m->l2_len = 14;
        m->l3_len = (ol_flags & RTE_MBUF_F_TX_IPV4) ? 20 : 40;
    }
    pthread_mutex_lock(&r->mu);
    bool room = r->nout < 64;
    if (room)
        r->out[r->nout++] = m;
    pthread_mutex_unlock(&r->mu);
    assert_true(room);
}

static unsigned root_ngot(struct root *r)
{
    pthread_mutex_lock(&r->mu);
    unsigned n = r->ngot;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- translation (vm-frame.c) -------------------------------------------- */

static void rx_partial_csum__tcp4_pseudo_sum_only__l4_start_and_offset(void **state)
{
    (void)state;
    uint8_t f[256];
    uint32_t l4;
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 100};
    uint32_t len = build_l4(f, &o, &l4);
    uint16_t start = 0, off = 0;
    assert_true(netvsc_vm_rx_partial_csum(f, len, &start, &off));
    assert_int_equal(start, 34);
    assert_int_equal(l4, 34);
    assert_int_equal(off, 16);
}

static void rx_partial_csum__udp6_and_tagged_tcp4__found_after_their_headers(void **state)
{
    (void)state;
    uint8_t f[256];
    uint16_t start, off;
    struct l4opt u6 = {.v6 = true, .proto = IPPROTO_UDP, .payload = 33};
    uint32_t len = build_l4(f, &u6, NULL);
    assert_true(netvsc_vm_rx_partial_csum(f, len, &start, &off));
    assert_int_equal(start, 14 + 40);
    assert_int_equal(off, 6);
    struct l4opt t4 = {.proto = IPPROTO_TCP, .vlan = 7, .payload = 10};
    len = build_l4(f, &t4, NULL);
    assert_true(netvsc_vm_rx_partial_csum(f, len, &start, &off));
    assert_int_equal(start, 18 + 20);
}

static void rx_partial_csum__finished_checksum__not_partial(void **state)
{
    (void)state;
    uint8_t f[256];
    uint16_t start, off;
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 100, .full_csum = true};
    uint32_t len = build_l4(f, &o, NULL);
    assert_false(netvsc_vm_rx_partial_csum(f, len, &start, &off));
}

static void rx_partial_csum__zero_and_ffff__the_same_sum(void **state)
{
    (void)state;
    /* Find a UDP payload whose pseudo-header sum folds to 0xffff: then a
     * field of 0 is the same one's complement value. */
    uint8_t f[256];
    uint16_t start, off;
    for (uint32_t p = 0; p < 65536; p++) {
        struct l4opt o = {.proto = IPPROTO_UDP, .payload = 4};
        uint32_t len = build_l4(f, &o, NULL);
        uint8_t *ip = f + 14;
        put16(ip + 4, (uint16_t)p); /* the IP id is not in the pseudo header */
        ip[12] = (uint8_t)(p >> 8);
        ip[13] = (uint8_t)p;
        uint32_t pseudo = ocsum(ip + 12, 8, IPPROTO_UDP + 12u);
        if (pseudo != 0xffff)
            continue;
        put16(f + 34 + 6, 0);
        assert_true(netvsc_vm_rx_partial_csum(f, len, &start, &off));
        put16(f + 34 + 6, 0xffff);
        assert_true(netvsc_vm_rx_partial_csum(f, len, &start, &off));
        return;
    }
    fail_msg("no address gave a pseudo-header sum of 0xffff");
}

static void rx_partial_csum__odd_frames__refused_without_reading_past_them(void **state)
{
    (void)state;
    uint8_t f[256];
    uint16_t start, off;
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 40};
    uint32_t len = build_l4(f, &o, NULL);
    /* Every truncation: too short for its headers or its IP length. Copies
     * of exactly that size, so ASan sees any read past them. */
    for (uint32_t n = 0; n < len; n++) {
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, f, n);
        assert_false(netvsc_vm_rx_partial_csum(c, n, &start, &off));
        free(c);
    }
    uint8_t g[256];
    memcpy(g, f, len);
    g[14] = 0x44; /* IHL 4: shorter than an IPv4 header */
    assert_false(netvsc_vm_rx_partial_csum(g, len, &start, &off));
    memcpy(g, f, len);
    g[14 + 6] = 0x20; /* more fragments */
    assert_false(netvsc_vm_rx_partial_csum(g, len, &start, &off));
    memcpy(g, f, len);
    put16(g + 16, 0xffff); /* total length beyond the frame */
    assert_false(netvsc_vm_rx_partial_csum(g, len, &start, &off));
    memcpy(g, f, len);
    put16(g + 16, 10); /* total length below the header */
    assert_false(netvsc_vm_rx_partial_csum(g, len, &start, &off));
    memcpy(g, f, len);
    g[14] = 0x65; /* version 6 in an IPv4 ethertype */
    assert_false(netvsc_vm_rx_partial_csum(g, len, &start, &off));
    memcpy(g, f, len);
    g[14 + 9] = IPPROTO_ICMP;
    assert_false(netvsc_vm_rx_partial_csum(g, len, &start, &off));
    memcpy(g, f, len);
    put16(g + 12, ETH_P_ARP);
    assert_false(netvsc_vm_rx_partial_csum(g, len, &start, &off));
    /* Two tags: only the outer one is looked through. */
    uint8_t q[300];
    memcpy(q, f, 12);
    put16(q + 12, ETH_P_8021AD);
    put16(q + 14, 5);
    put16(q + 16, ETH_P_8021Q);
    put16(q + 18, 6);
    memcpy(q + 20, f + 12, len - 12);
    assert_false(netvsc_vm_rx_partial_csum(q, len + 8, &start, &off));
}

static void rx_iov__vlan_out_of_band__tag_put_back_after_the_macs(void **state)
{
    (void)state;
    uint8_t f[256];
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 20};
    uint32_t len = build_l4(f, &o, NULL);
    struct netvsc_meta meta = {.flags = NETVSC_F_VLAN | NETVSC_F_CSUM,
                               .vlan_tci = (3u << 13) | 100};
    struct virtio_net_hdr vh;
    uint8_t tag[4];
    struct iovec iov[4];
    enum netvsc_vm_rx_csum csum;
    int n = netvsc_vm_rx_iov(f, len, &meta, &vh, tag, iov, &csum);
    assert_int_equal(n, 4);
    uint8_t out[300];
    size_t at = 0;
    for (int i = 1; i < n; i++) {
        memcpy(out + at, iov[i].iov_base, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    assert_int_equal(at, len + 4);
    assert_memory_equal(out, f, 12);
    assert_int_equal(get16(out + 12), ETH_P_8021Q);
    assert_int_equal(get16(out + 14), (3u << 13) | 100);
    assert_memory_equal(out + 16, f + 12, len - 12);
    /* The checksum start moves with the tag. */
    assert_int_equal(csum, NETVSC_VM_RX_CSUM_PARTIAL);
    assert_int_equal(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_int_equal(vh.csum_start, 34 + 4);
    assert_int_equal(vh.csum_offset, 16);
    assert_ptr_equal(iov[0].iov_base, &vh);
    assert_int_equal(iov[0].iov_len, sizeof(vh));
}

static void rx_iov__plain_and_verified__header_says_so(void **state)
{
    (void)state;
    uint8_t f[256];
    struct l4opt o = {.proto = IPPROTO_UDP, .payload = 20, .full_csum = true};
    uint32_t len = build_l4(f, &o, NULL);
    struct virtio_net_hdr vh;
    uint8_t tag[4];
    struct iovec iov[4];
    enum netvsc_vm_rx_csum csum;
    struct netvsc_meta none = {0};
    assert_int_equal(netvsc_vm_rx_iov(f, len, &none, &vh, tag, iov, &csum), 2);
    assert_int_equal(csum, NETVSC_VM_RX_CSUM_NONE);
    assert_int_equal(vh.flags, 0);
    assert_ptr_equal(iov[1].iov_base, f);
    assert_int_equal(iov[1].iov_len, len);
    struct netvsc_meta ok = {.flags = NETVSC_F_CSUM};
    assert_int_equal(netvsc_vm_rx_iov(f, len, &ok, &vh, tag, iov, &csum), 2);
    assert_int_equal(csum, NETVSC_VM_RX_CSUM_VALID);
    assert_int_equal(vh.flags, VIRTIO_NET_HDR_F_DATA_VALID);
}

static void rx_iov__tag_on_a_frame_shorter_than_two_macs__left_out(void **state)
{
    (void)state;
    uint8_t f[11] = {0};
    struct netvsc_meta meta = {.flags = NETVSC_F_VLAN, .vlan_tci = 5};
    struct virtio_net_hdr vh;
    uint8_t tag[4];
    struct iovec iov[4];
    enum netvsc_vm_rx_csum csum;
    assert_int_equal(netvsc_vm_rx_iov(f, sizeof(f), &meta, &vh, tag, iov, &csum), 2);
    assert_int_equal(iov[1].iov_len, sizeof(f));
}

static const struct netvsc_info INFO_OFFLOADS = {.mtu = 1500, .csum_offload = true, .lso = true,
                                                  .lso_max = 62780, .link_up = true};

static void tx_meta__partial_tcp_with_offload__left_to_the_root(void **state)
{
    (void)state;
    uint8_t f[256];
    uint32_t l4;
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 50};
    uint32_t len = build_l4(f, &o, &l4);
    struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                .csum_start = (uint16_t)l4,
                                .csum_offset = 16};
    struct netvsc_meta m;
    uint8_t before[256];
    memcpy(before, f, len);
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &vh, f, len, &m), NETVSC_VM_TX_OK);
    assert_int_equal(m.flags, NETVSC_F_CSUM);
    assert_int_equal(m.l4_offset, l4);
    assert_int_equal(m.l4_proto, IPPROTO_TCP);
    assert_memory_equal(f, before, len); /* untouched */
    /* IPv6 behind a tag is IPv6 too. */
    struct l4opt o6 = {.v6 = true, .proto = IPPROTO_UDP, .vlan = 9, .payload = 5};
    len = build_l4(f, &o6, &l4);
    vh.csum_start = (uint16_t)l4;
    vh.csum_offset = 6;
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &vh, f, len, &m), NETVSC_VM_TX_OK);
    assert_int_equal(m.flags, NETVSC_F_CSUM | NETVSC_F_IPV6);
    assert_int_equal(m.l4_proto, IPPROTO_UDP);
}

static void tx_meta__partial_without_offload__finished_here(void **state)
{
    (void)state;
    struct netvsc_info info = {.mtu = 1500};
    for (uint32_t payload = 0; payload < 40; payload++) {
        uint8_t f[256];
        uint32_t l4;
        struct l4opt o = {.proto = payload & 1 ? IPPROTO_UDP : IPPROTO_TCP, .payload = payload};
        uint32_t len = build_l4(f, &o, &l4);
        struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                    .csum_start = (uint16_t)l4,
                                    .csum_offset = o.proto == IPPROTO_TCP ? 16 : 6};
        struct netvsc_meta m;
        assert_int_equal(netvsc_vm_tx_meta(&info, &vh, f, len, &m), NETVSC_VM_TX_SW_CSUM);
        assert_int_equal(m.flags, 0);
        assert_true(l4_csum_ok_v4(f, len));
        uint8_t want[256];
        struct l4opt full = o;
        full.full_csum = true;
        build_l4(want, &full, NULL);
        assert_memory_equal(f, want, len);
    }
}

static void tx_meta__checksum_field_the_root_cannot_name__finished_here(void **state)
{
    (void)state;
    /* An offset that is neither TCP's nor UDP's (SCTP-like): even a root
     * that takes checksums cannot be asked, so it is finished here. */
    uint8_t f[256];
    uint32_t l4;
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 30};
    uint32_t len = build_l4(f, &o, &l4);
    struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                .csum_start = (uint16_t)l4,
                                .csum_offset = 8};
    struct netvsc_meta m;
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &vh, f, len, &m), NETVSC_VM_TX_SW_CSUM);
    assert_int_equal(m.flags, 0);
}

static void tx_meta__hostile_checksum_positions__dropped_as_bad_offload(void **state)
{
    (void)state;
    uint8_t f[256];
    uint32_t l4;
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 10};
    uint32_t len = build_l4(f, &o, &l4);
    const struct {
        uint16_t start, offset;
    } bad[] = {
        {0, 16},                        /* inside the Ethernet header */
        {13, 0},                        /* likewise */
        {(uint16_t)(len - 10), 16},     /* the field beyond the frame */
        {(uint16_t)(len - 1), 0},       /* its last byte beyond the frame */
        {(uint16_t)l4, (uint16_t)len},  /* an offset beyond it */
        {0xffff, 0xffff},               /* no wrap-around */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                    .csum_start = bad[i].start,
                                    .csum_offset = bad[i].offset};
        struct netvsc_meta m;
        uint8_t copy[256];
        memcpy(copy, f, len);
        assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &vh, copy, len, &m),
                         NETVSC_VM_TX_BAD_OFFLOAD);
        struct netvsc_info plain = {.mtu = 1500};
        assert_int_equal(netvsc_vm_tx_meta(&plain, &vh, copy, len, &m), NETVSC_VM_TX_BAD_OFFLOAD);
        assert_memory_equal(copy, f, len); /* nothing written */
    }
    /* The last position that fits is taken. */
    struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                .csum_start = (uint16_t)(len - 2),
                                .csum_offset = 0};
    struct netvsc_meta m;
    struct netvsc_info plain = {.mtu = 1500};
    assert_int_equal(netvsc_vm_tx_meta(&plain, &vh, f, len, &m), NETVSC_VM_TX_SW_CSUM);
}

static void tx_meta__gso__lso_for_tcp_only_with_a_checksum_and_a_size(void **state)
{
    (void)state;
    uint8_t f[256];
    uint32_t l4;
    struct l4opt o = {.v6 = true, .proto = IPPROTO_TCP, .payload = 100};
    uint32_t len = build_l4(f, &o, &l4);
    struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                .gso_type = VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN,
                                .gso_size = 40, /* three segments */
                                .csum_start = (uint16_t)l4,
                                .csum_offset = 16};
    struct netvsc_meta m;
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &vh, f, len, &m), NETVSC_VM_TX_OK);
    assert_int_equal(m.flags, NETVSC_F_LSO | NETVSC_F_IPV6);
    assert_int_equal(m.mss, 40);
    assert_int_equal(m.l4_offset, l4);
    struct netvsc_info no_lso = INFO_OFFLOADS;
    no_lso.lso = false;
    assert_int_equal(netvsc_vm_tx_meta(&no_lso, &vh, f, len, &m), NETVSC_VM_TX_GSO_TYPE);
    struct virtio_net_hdr udp = vh;
    udp.gso_type = VIRTIO_NET_HDR_GSO_UDP;
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &udp, f, len, &m), NETVSC_VM_TX_GSO_TYPE);
    struct virtio_net_hdr nocsum = vh;
    nocsum.flags = 0;
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &nocsum, f, len, &m),
                     NETVSC_VM_TX_BAD_OFFLOAD);
    struct virtio_net_hdr nosize = vh;
    nosize.gso_size = 0;
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &nosize, f, len, &m),
                     NETVSC_VM_TX_BAD_OFFLOAD);
}

/* A GSO frame of TCP over IPv4 (tagged if vlan), payload bytes, with the
 * virtio_net_hdr the kernel would give it. */
static uint32_t build_gso(uint8_t *f, bool v6, uint16_t vlan, uint32_t payload, uint16_t mss,
                          struct virtio_net_hdr *vh)
{
    uint32_t l4;
    struct l4opt o = {.v6 = v6, .proto = IPPROTO_TCP, .vlan = vlan, .payload = payload};
    uint32_t len = build_l4(f, &o, &l4);
    *vh = (struct virtio_net_hdr){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                  .gso_type = v6 ? VIRTIO_NET_HDR_GSO_TCPV6
                                                 : VIRTIO_NET_HDR_GSO_TCPV4,
                                  .hdr_len = (uint16_t)(l4 + 20),
                                  .gso_size = mss,
                                  .csum_start = (uint16_t)l4,
                                  .csum_offset = 16};
    return len;
}

static void tx_meta__gso_tagged_ipv4__lso_behind_the_tag(void **state)
{
    (void)state;
    uint8_t f[4096];
    struct virtio_net_hdr vh;
    uint32_t len = build_gso(f, false, 100, 3000, 1448, &vh);
    struct netvsc_meta m;
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &vh, f, len, &m), NETVSC_VM_TX_OK);
    assert_int_equal(m.flags, NETVSC_F_LSO);
    assert_int_equal(m.mss, 1448);
    assert_int_equal(m.l4_offset, 14 + 4 + 20);
    assert_int_equal(m.l4_proto, IPPROTO_TCP);
}

static void tx_meta__gso_of_one_segment__a_checksum_offload(void **state)
{
    (void)state;
    uint8_t f[4096];
    struct virtio_net_hdr vh;
    uint32_t len = build_gso(f, false, 0, 1448, 1448, &vh);
    struct netvsc_meta m;
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &vh, f, len, &m), NETVSC_VM_TX_OK);
    assert_int_equal(m.flags, NETVSC_F_CSUM);
    assert_int_equal(m.l4_offset, 34);
    assert_int_equal(m.l4_proto, IPPROTO_TCP);
    len = build_gso(f, false, 0, 1449, 1448, &vh);
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &vh, f, len, &m), NETVSC_VM_TX_OK);
    assert_int_equal(m.flags, NETVSC_F_LSO);
}

static void tx_meta__hostile_gso_headers__dropped_as_bad_offload(void **state)
{
    (void)state;
    uint8_t f[4096], g[4096];
    struct virtio_net_hdr good;
    uint32_t len = build_gso(f, false, 0, 3000, 1448, &good);
    struct netvsc_meta m;
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &good, f, len, &m), NETVSC_VM_TX_OK);
    struct virtio_net_hdr vh;
#define BAD_HDR(field, value)                                                                     \
    do {                                                                                          \
        vh = good;                                                                                \
        vh.field = value;                                                                         \
        memcpy(g, f, len);                                                                        \
        assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &vh, g, len, &m),                      \
                         NETVSC_VM_TX_BAD_OFFLOAD);                                               \
    } while (0)
    BAD_HDR(gso_size, 0);
    BAD_HDR(gso_size, 1500 - 20 - 20 + 1); /* segments above the MTU */
    BAD_HDR(gso_size, 65535);
    BAD_HDR(hdr_len, (uint16_t)(len + 1));
    BAD_HDR(csum_start, 14);                /* not the TCP header */
    BAD_HDR(csum_start, (uint16_t)(len - 1));
    BAD_HDR(csum_offset, 6);                /* UDP's checksum field */
    BAD_HDR(flags, 0);                      /* no checksum to finish */
    BAD_HDR(gso_type, VIRTIO_NET_HDR_GSO_TCPV6); /* an IPv4 frame */
#undef BAD_HDR
    /* Frames whose headers contradict the virtio_net_hdr. */
    struct {
        uint32_t off;
        uint8_t val;
    } bad_bytes[] = {
        {14 + 9, IPPROTO_UDP}, /* GSO on UDP */
        {14 + 6, 0x20},        /* a fragment (MF) */
        {14 + 7, 0x01},        /* a fragment (offset) */
        {14 + 2, 0x01},        /* IP total length not the frame's */
        {14 + 0, 0x46},        /* IP header longer than csum_start says */
        {14 + 0, 0x44},        /* IP header shorter than possible */
        {34 + 12, 0x40},       /* TCP data offset below 5 */
        {12, 0x86},            /* not IPv4 */
    };
    for (size_t i = 0; i < sizeof(bad_bytes) / sizeof(bad_bytes[0]); i++) {
        memcpy(g, f, len);
        g[bad_bytes[i].off] = bad_bytes[i].val;
        assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &good, g, len, &m),
                         NETVSC_VM_TX_BAD_OFFLOAD);
    }
    /* The TCP header past the frame, and headers with no payload. */
    memcpy(g, f, len);
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &good, g, 34 + 19, &m),
                     NETVSC_VM_TX_BAD_OFFLOAD);
    g[14 + 2] = 0;
    g[14 + 3] = 40;
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &good, g, 34 + 20, &m),
                     NETVSC_VM_TX_BAD_OFFLOAD);
    /* IPv6: an extension header in front of TCP, a payload length not the frame's. */
    len = build_gso(f, true, 0, 3000, 1428, &good);
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &good, f, len, &m), NETVSC_VM_TX_OK);
    memcpy(g, f, len);
    g[14 + 6] = 0; /* hop-by-hop */
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &good, g, len, &m),
                     NETVSC_VM_TX_BAD_OFFLOAD);
    memcpy(g, f, len);
    g[14 + 5] ^= 1;
    assert_int_equal(netvsc_vm_tx_meta(&INFO_OFFLOADS, &good, g, len, &m),
                     NETVSC_VM_TX_BAD_OFFLOAD);
}

/* The bytes the iovecs of one writev carry, the virtio_net_hdr first. */
static uint32_t gather(const struct iovec *iov, int cnt, uint8_t *out)
{
    uint32_t n = 0;
    for (int i = 0; i < cnt; i++) {
        memcpy(out + n, iov[i].iov_base, iov[i].iov_len);
        n += (uint32_t)iov[i].iov_len;
    }
    return n;
}

static void rx_rsc_iov__coalesced_tcp4__gso_frame_with_a_partial_checksum(void **state)
{
    (void)state;
    static uint8_t f[8192], want[8192], out[8192 + 64];
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 5000, .full_csum = true};
    uint32_t l4;
    uint32_t len = build_l4(f, &o, &l4);
    o.full_csum = false; /* the same frame, its field the pseudo-header sum */
    build_l4(want, &o, NULL);
    struct netvsc_meta meta = {.flags = NETVSC_F_CSUM | NETVSC_F_RSC};
    struct virtio_net_hdr vh;
    uint8_t hdr[NETVSC_VM_RSC_HDR_MAX], tag[4];
    struct iovec iov[5];
    int cnt = netvsc_vm_rx_rsc_iov(f, len, &meta, 1500, &vh, hdr, tag, iov);
    assert_int_equal(cnt, 3);
    assert_int_equal(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_int_equal(vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
    assert_int_equal(vh.gso_size, 1500 - 20 - 20);
    assert_int_equal(vh.csum_start, l4);
    assert_int_equal(vh.csum_offset, 16);
    assert_int_equal(vh.hdr_len, l4 + 20);
    assert_int_equal(gather(iov, cnt, out), sizeof(vh) + len);
    assert_memory_equal(out + sizeof(vh), want, len);
    /* A coalesced frame no longer than one segment: partial, not GSO. */
    o = (struct l4opt){.proto = IPPROTO_TCP, .payload = 1000, .full_csum = true};
    len = build_l4(f, &o, &l4);
    cnt = netvsc_vm_rx_rsc_iov(f, len, &meta, 1500, &vh, hdr, tag, iov);
    assert_int_equal(cnt, 3);
    assert_int_equal(vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);
    assert_int_equal(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
}

static void rx_rsc_iov__tcp6_tag_out_of_band__tag_back_and_offsets_after_it(void **state)
{
    (void)state;
    static uint8_t f[16384], want[16384], out[16384 + 64];
    struct l4opt o = {.v6 = true, .proto = IPPROTO_TCP, .payload = 12000, .full_csum = true};
    uint32_t l4;
    uint32_t len = build_l4(f, &o, &l4);
    o.full_csum = false;
    o.vlan = 0x2007; /* the frame the VM must see: tagged, pseudo-header sum */
    uint32_t wlen = build_l4(want, &o, NULL);
    struct netvsc_meta meta = {.flags = NETVSC_F_CSUM | NETVSC_F_RSC | NETVSC_F_VLAN,
                               .vlan_tci = 0x2007};
    struct virtio_net_hdr vh;
    uint8_t hdr[NETVSC_VM_RSC_HDR_MAX], tag[4];
    struct iovec iov[5];
    int cnt = netvsc_vm_rx_rsc_iov(f, len, &meta, 9000, &vh, hdr, tag, iov);
    assert_int_equal(cnt, 5);
    assert_int_equal(vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV6);
    assert_int_equal(vh.gso_size, 9000 - 40 - 20);
    assert_int_equal(vh.csum_start, l4 + 4);
    assert_int_equal(vh.hdr_len, l4 + 4 + 20);
    assert_int_equal(gather(iov, cnt, out), sizeof(vh) + wlen);
    assert_memory_equal(out + sizeof(vh), want, wlen);
}

static void rx_rsc_iov__coalesced_frames_a_guest_must_reject__refused(void **state)
{
    (void)state;
    static uint8_t f[8192], g[8192];
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 5000, .full_csum = true};
    uint32_t len = build_l4(f, &o, NULL);
    struct netvsc_meta meta = {.flags = NETVSC_F_CSUM | NETVSC_F_RSC};
    struct virtio_net_hdr vh;
    uint8_t hdr[NETVSC_VM_RSC_HDR_MAX], tag[4];
    struct iovec iov[5];
    assert_int_equal(netvsc_vm_rx_rsc_iov(f, len, &meta, 1500, &vh, hdr, tag, iov), 3);
    struct netvsc_meta unchecked = {.flags = NETVSC_F_RSC};
    assert_int_equal(netvsc_vm_rx_rsc_iov(f, len, &unchecked, 1500, &vh, hdr, tag, iov),
                     -EPROTO);
    struct {
        uint32_t off;
        uint8_t val;
    } bad[] = {
        {14 + 9, IPPROTO_UDP}, /* not TCP */
        {14 + 6, 0x20},        /* a fragment */
        {14 + 3, 0x00},        /* IP length not the frame's */
        {14 + 0, 0x55},        /* IPv5 */
        {34 + 12, 0x30},       /* TCP header shorter than 20 */
        {12, 0x88},            /* not IP */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(g, f, len);
        g[bad[i].off] = bad[i].val;
        assert_int_equal(netvsc_vm_rx_rsc_iov(g, len, &meta, 1500, &vh, hdr, tag, iov), -EPROTO);
    }
    /* Cut short: no payload, no TCP header, no IP header; an MTU no
     * segment fits. */
    memcpy(g, f, len);
    g[14 + 2] = 0;
    g[14 + 3] = 40;
    assert_int_equal(netvsc_vm_rx_rsc_iov(g, 54, &meta, 1500, &vh, hdr, tag, iov), -EPROTO);
    g[34 + 12] = 0xf0; /* 60 bytes of TCP header where 20 are left */
    g[14 + 3] = 40 + 20;
    assert_int_equal(netvsc_vm_rx_rsc_iov(g, 74, &meta, 1500, &vh, hdr, tag, iov), -EPROTO);
    assert_int_equal(netvsc_vm_rx_rsc_iov(f, 40, &meta, 1500, &vh, hdr, tag, iov), -EPROTO);
    assert_int_equal(netvsc_vm_rx_rsc_iov(f, 20, &meta, 1500, &vh, hdr, tag, iov), -EPROTO);
    assert_int_equal(netvsc_vm_rx_rsc_iov(f, len, &meta, 40, &vh, hdr, tag, iov), -EPROTO);
}

static void tap_params__offloads__follow_what_the_root_takes(void **state)
{
    (void)state;
    struct nettap_params tp;
    struct netvsc_info info = {.mac = {2, 0, 0, 0, 0, 1}, .mtu = 9000, .link_up = true};
    netvsc_vm_tap_params(&info, "eth0", &tp);
    assert_false(tp.csum);
    assert_false(tp.tso);
    assert_int_equal(tp.mtu, 9000);
    assert_true(tp.up);
    assert_true(tp.carrier);
    assert_int_equal(tp.netns_fd, -1);
    assert_memory_equal(tp.mac, info.mac, 6);
    info.csum_offload = true;
    netvsc_vm_tap_params(&info, "eth0", &tp);
    assert_true(tp.csum);
    assert_false(tp.tso);
    info.lso = true;
    info.lso_max = 0;
    netvsc_vm_tap_params(&info, "eth0", &tp);
    assert_true(tp.tso);
    assert_int_equal(tp.gso_max_size, 0);
    /* An LSO limit caps GSO frames (L3 bytes: the L2 header and a tag off). */
    info.mtu = 1500;
    info.lso_max = 32018;
    netvsc_vm_tap_params(&info, "eth0", &tp);
    assert_true(tp.tso);
    assert_int_equal(tp.gso_max_size, 32000);
    /* A limit below one frame is no LSO. */
    info.lso_max = 1000;
    netvsc_vm_tap_params(&info, "eth0", &tp);
    assert_false(tp.tso);
    info.lso_max = 5;
    netvsc_vm_tap_params(&info, "eth0", &tp);
    assert_false(tp.tso);
}

/* --- data path: a NIC, a socketpair for its TAP ---------------------------- */

struct dp {
    struct root *r;
    struct hv_guest *g;
    struct vmbus_client *c;
    struct netvsc_vm_env env;
    struct nic x;
    int tap; /* the VM's end of the "TAP" */
};

static int dp_setup_mtu(void **state, uint32_t mtu)
{
    struct dp *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->r = root_create(1, mtu, 1);
    d->g = guest_attach(d->r);
    assert_int_equal(vmbus_client_connect(d->g, 2000, &d->c), 0);
    struct vmbus_offer_info offers[8];
    int n = vmbus_client_offers(d->c, offers, 8);
    assert_int_equal(n, 1);
    assert_true(netvsc_offer_is_nic(&offers[0]));
    struct netvsc_params np = {.mtu = JUMBO_MTU_MAX};
    struct nic *x = &d->x;
    assert_int_equal(netvsc_open(d->c, offers[0].relid, &np, &x->n), 0);
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
    d->tap = sp[1];
    d->env.name = "tvm";
    d->env.netns = "tvm";
    d->env.c = d->c;
    d->env.ep = epoll_create1(EPOLL_CLOEXEC);
    d->env.tap_broker = -1;
    d->env.nvp = 1;
    x->env = &d->env;
    x->tap_fd = sp[0];
    x->relid = offers[0].relid;
    netvsc_get_info(x->n, &x->info);
    netvsc_vm_nic_set_limits(x, false);
    x->bounce = malloc(NETVSC_VM_GSO_FRAME_MAX);
    assert_non_null(x->bounce);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = NETVSC_VM_TAG_NIC0};
    assert_int_equal(epoll_ctl(d->env.ep, EPOLL_CTL_ADD, x->tap_fd, &ev), 0);
    x->tap_in = true;
    x->tap_ready = true;
    snprintf(x->name, sizeof(x->name), "eth0");
    *state = d;
    return 0;
}

static int dp_setup(void **state)
{
    return dp_setup_mtu(state, 1500);
}

static int dp_setup_jumbo(void **state)
{
    return dp_setup_mtu(state, JUMBO_MTU_MAX);
}

static int dp_teardown(void **state)
{
    struct dp *d = *state;
    netvsc_close(d->x.n);
    free(d->x.bounce);
    close(d->x.tap_fd);
    close(d->tap);
    close(d->env.ep);
    root_destroy(d->r, d->g, d->c);
    free(d);
    return 0;
}

/* The VM writes a frame to its "TAP". */
static void tap_write(struct dp *d, const struct virtio_net_hdr *vh, const void *f, uint32_t len)
{
    struct virtio_net_hdr zero = {0};
    struct iovec iov[2] = {{(void *)(vh ? vh : &zero), sizeof(zero)}, {(void *)f, len}};
    assert_int_equal(writev(d->tap, iov, 2), (ssize_t)(sizeof(zero) + len));
}

/* Move frames TAP -> root until the root has want of them. */
static void pump_to_root(struct dp *d, unsigned want)
{
    uint64_t end = now_ms() + WAIT_MS;
    d->x.tap_ready = true;
    while (root_ngot(d->r) < want && now_ms() < end) {
        assert_true(netvsc_vm_nic_tx(&d->x, false) >= 0);
        assert_true(netvsc_poll(d->x.n, netvsc_vm_nic_rx_frame, &d->x, 32) >= 0);
        d->x.tap_ready = true;
        usleep(200);
    }
    assert_int_equal(root_ngot(d->r), want);
}

/* Move frames root -> TAP until the TAP has one; read it. */
static ssize_t pump_from_root(struct dp *d, struct virtio_net_hdr *vh, uint8_t *buf, size_t cap)
{
    uint64_t end = now_ms() + WAIT_MS;
    while (now_ms() < end) {
        assert_true(netvsc_poll(d->x.n, netvsc_vm_nic_rx_frame, &d->x, 32) >= 0);
        struct iovec iov[2] = {{vh, sizeof(*vh)}, {buf, cap}};
        ssize_t r = readv(d->tap, iov, 2);
        if (r >= 0)
            return r - (ssize_t)sizeof(*vh);
        usleep(200);
    }
    fail_msg("no frame from the root reached the TAP");
    return -1;
}

static void nic_tx__plain_frames__reach_the_root_as_written(void **state)
{
    struct dp *d = *state;
    uint8_t f[3][256];
    uint32_t len[3];
    for (int i = 0; i < 3; i++) {
        struct l4opt o = {.proto = IPPROTO_UDP, .payload = 20u + 50u * (uint32_t)i,
                          .full_csum = true};
        len[i] = build_l4(f[i], &o, NULL);
        tap_write(d, NULL, f[i], len[i]);
    }
    pump_to_root(d, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d->r->got[i].len, len[i]);
        assert_memory_equal(d->r->got[i].data, f[i], len[i]);
        assert_int_equal(d->r->got[i].ol_flags & RTE_MBUF_F_TX_L4_MASK, 0);
    }
    assert_int_equal(d->x.ct.to_root_frames, 3);
    assert_int_equal(d->x.ct.to_root_bytes, len[0] + len[1] + len[2]);
}

static void nic_tx__partial_checksum__the_root_is_asked_to_finish_it(void **state)
{
    struct dp *d = *state;
    assert_true(d->x.info.csum_offload); /* netvsp takes TCP/UDP checksums */
    uint8_t f[256];
    uint32_t l4;
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 64};
    uint32_t len = build_l4(f, &o, &l4);
    struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                .csum_start = (uint16_t)l4,
                                .csum_offset = 16};
    tap_write(d, &vh, f, len);
    pump_to_root(d, 1);
    assert_int_equal(d->r->got[0].ol_flags & RTE_MBUF_F_TX_L4_MASK, RTE_MBUF_F_TX_TCP_CKSUM);
    assert_int_equal(d->x.ct.to_root_csum, 1);
    assert_int_equal(d->x.ct.sw_csum, 0);
}

static void nic_tx__partial_checksum_root_without_offload__finished_in_the_guest(void **state)
{
    struct dp *d = *state;
    d->x.info.csum_offload = false; /* as a root that takes no checksums */
    uint8_t f[256];
    uint32_t l4;
    struct l4opt o = {.proto = IPPROTO_UDP, .payload = 99};
    uint32_t len = build_l4(f, &o, &l4);
    struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                .csum_start = (uint16_t)l4,
                                .csum_offset = 6};
    tap_write(d, &vh, f, len);
    pump_to_root(d, 1);
    assert_int_equal(d->r->got[0].ol_flags & RTE_MBUF_F_TX_L4_MASK, 0);
    assert_true(l4_csum_ok_v4(d->r->got[0].data, d->r->got[0].len));
    assert_int_equal(d->x.ct.sw_csum, 1);
}

static void nic_tx__runts_and_bad_offloads__dropped_and_counted(void **state)
{
    struct dp *d = *state;
    uint8_t f[256];
    uint32_t l4;
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 8};
    uint32_t len = build_l4(f, &o, &l4);
    tap_write(d, NULL, f, 13); /* shorter than an Ethernet header */
    struct virtio_net_hdr beyond = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 200,
                                    .csum_offset = 16};
    tap_write(d, &beyond, f, len);
    struct virtio_net_hdr udp_gso = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                     .gso_type = VIRTIO_NET_HDR_GSO_UDP,
                                     .gso_size = 1000,
                                     .csum_start = (uint16_t)l4,
                                     .csum_offset = 6};
    tap_write(d, &udp_gso, f, len);
    /* No virtio_net_hdr at all. */
    assert_int_equal(write(d->tap, f, 6), 6);
    tap_write(d, NULL, f, len); /* and a good one after them */
    pump_to_root(d, 1);
    assert_memory_equal(d->r->got[0].data, f, len);
    assert_int_equal(d->x.ct.drop_runt, 2);
    assert_int_equal(d->x.ct.drop_bad_offload, 1);
    assert_int_equal(d->x.ct.drop_gso_type, 1);
    assert_int_equal(d->x.ct.to_root_frames, 1);
}

static void nic_tx__jumbo_frame__through_the_bounce_buffer_intact(void **state)
{
    struct dp *d = *state;
    assert_int_equal(d->x.info.mtu, JUMBO_MTU_MAX);
    uint32_t len = jumbo_frame(JUMBO_MTU_MAX);
    uint8_t *f = malloc(len + 100);
    struct l4opt o = {.proto = IPPROTO_UDP, .payload = len - 14 - 20 - 8, .full_csum = true};
    assert_int_equal(build_l4(f, &o, NULL), len);
    tap_write(d, NULL, f, len);
    tap_write(d, NULL, f, 64); /* and a small one straight after it */
    pump_to_root(d, 2);
    assert_int_equal(d->r->got[0].len, len);
    assert_memory_equal(d->r->got[0].data, f, len);
    assert_int_equal(d->r->got[1].len, 64);
    assert_memory_equal(d->r->got[1].data, f, 64);
    assert_int_equal(d->x.ct.drop_oversize, 0);
    struct netvsc_stats s;
    netvsc_get_stats(d->x.n, &s);
    assert_int_equal(s.tx_gpa_direct, 1); /* the jumbo frame, in pages of its own */
    free(f);
}

static void nic_tx__jumbo_frame__read_into_a_chunk_whole_before_its_checksum(void **state)
{
    struct dp *d = *state;
    d->x.info.csum_offload = false; /* the checksum is finished here, over the joined frame */
    uint32_t len = jumbo_frame(JUMBO_MTU_MAX);
    uint8_t *f = malloc(len);
    struct l4opt o = {.proto = IPPROTO_UDP, .payload = len - 14 - 20 - 8};
    uint32_t l4;
    assert_int_equal(build_l4(f, &o, &l4), len);
    struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                .csum_start = (uint16_t)l4,
                                .csum_offset = 6};
    tap_write(d, &vh, f, len);
    tap_write(d, NULL, f, 64);
    pump_to_root(d, 2);
    assert_int_equal(d->r->got[0].len, len);
    assert_true(l4_csum_ok_v4(d->r->got[0].data, len));
    assert_memory_equal(d->r->got[0].data + l4 + 8, f + l4 + 8, len - l4 - 8);
    assert_memory_equal(d->r->got[1].data, f, 64);
    assert_int_equal(d->x.ct.sw_csum, 1);
    assert_int_equal(d->x.ct.bounced, 0); /* read where it is sent from */
    struct netvsc_stats s;
    netvsc_get_stats(d->x.n, &s);
    assert_int_equal(s.tx_gpa_direct, 1); /* the small one went from its section */
    free(f);
}

static void nic_tx__jumbo_frame_every_chunk_in_flight__bounced_then_sent(void **state)
{
    struct dp *d = *state;
    uint32_t len = jumbo_frame(JUMBO_MTU_MAX);
    uint8_t *f = malloc(len);
    struct l4opt o = {.proto = IPPROTO_UDP, .payload = len - 14 - 20 - 8, .full_csum = true};
    assert_int_equal(build_l4(f, &o, NULL), len);
    struct netvsc_txbuf held[64];
    unsigned nheld = 0;
    while (nheld < 64 && netvsc_tx_alloc(d->x.n, len, &held[nheld]))
        nheld++;
    assert_true(nheld > 0 && nheld < 64); /* every chunk taken */
    tap_write(d, NULL, f, len);
    d->x.tap_ready = true;
    assert_int_equal(netvsc_vm_nic_tx(&d->x, false), 1);
    assert_int_equal(d->x.ct.bounced, 1);
    assert_int_equal(d->x.pend, PEND_BOUNCE);
    for (unsigned i = 0; i < nheld; i++)
        netvsc_tx_abort(d->x.n, &held[i]);
    pump_to_root(d, 1);
    assert_int_equal(d->r->got[0].len, len);
    assert_memory_equal(d->r->got[0].data, f, len);
    free(f);
}

static void nic_tx__more_frames_than_a_burst__all_arrive_in_order(void **state)
{
    struct dp *d = *state;
    unsigned n = 3 * NETVSC_VM_BURST + 5;
    uint8_t f[128];
    struct l4opt o = {.proto = IPPROTO_UDP, .payload = 40, .full_csum = true};
    uint32_t len = build_l4(f, &o, NULL);
    for (unsigned i = 0; i < n; i++) {
        f[len - 1] = (uint8_t)i;
        tap_write(d, NULL, f, len);
    }
    pump_to_root(d, n);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(d->r->got[i].data[len - 1], (uint8_t)i);
}

static void nic_rx_frame__checksum_left_to_network__finished_by_root_valid_for_the_tap(
    void **state)
{
    struct dp *d = *state;
    uint8_t f[256], full_f[256], buf[FRAME_MAX];
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 30};
    uint32_t len = build_l4(f, &o, NULL);
    memcpy(f, MAC_VM, 6); /* to the VM */
    memcpy(f + 6, MAC_PEER, 6);
    struct l4opt full = o;
    full.full_csum = true;
    build_l4(full_f, &full, NULL);
    memcpy(full_f, MAC_VM, 6);
    memcpy(full_f + 6, MAC_PEER, 6);
    /* Another VM left the checksum to the network: netvsp finishes it and
     * says "TCP OK". */
    root_send(d->r, f, len, RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4, 0);
    struct virtio_net_hdr vh;
    ssize_t n = pump_from_root(d, &vh, buf, sizeof(buf));
    assert_int_equal(n, len);
    assert_memory_equal(buf, full_f, len);
    assert_int_equal(vh.flags, VIRTIO_NET_HDR_F_DATA_VALID);
    assert_int_equal(d->x.ct.to_tap_csum_ok, 1);
    /* And one the root did not vouch for is left to the kernel. */
    root_send(d->r, full_f, len, 0, 0);
    n = pump_from_root(d, &vh, buf, sizeof(buf));
    assert_int_equal(n, len);
    assert_int_equal(vh.flags, 0);
    assert_int_equal(d->x.ct.to_tap_frames, 2);
}

static void nic_rx_frame__coalesced_by_the_root__one_gso_frame_to_the_tap(void **state)
{
    struct dp *d = *state;
    static uint8_t f[8192], buf[8192];
    struct l4opt o = {.proto = IPPROTO_TCP, .payload = 4000, .full_csum = true};
    uint32_t l4;
    uint32_t len = build_l4(f, &o, &l4);
    memcpy(f, MAC_VM, 6);
    memcpy(f + 6, MAC_PEER, 6);
    /* What netvsc hands over once it has put an RSC packet together. */
    struct netvsc_meta meta = {.flags = NETVSC_F_CSUM | NETVSC_F_RSC};
    netvsc_vm_nic_rx_frame(&d->x, f, len, &meta);
    struct virtio_net_hdr vh;
    struct iovec iov[2] = {{&vh, sizeof(vh)}, {buf, sizeof(buf)}};
    assert_int_equal(readv(d->tap, iov, 2), (ssize_t)(sizeof(vh) + len));
    assert_int_equal(vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
    assert_int_equal(vh.gso_size, d->x.info.mtu - 40);
    assert_int_equal(vh.csum_start, l4);
    assert_memory_equal(buf + l4 + 20, f + l4 + 20, len - l4 - 20);
    assert_int_equal(d->x.ct.to_tap_rsc, 1);
    /* One the root did not vouch for: dropped, counted, nothing written. */
    meta.flags = NETVSC_F_RSC;
    netvsc_vm_nic_rx_frame(&d->x, f, len, &meta);
    assert_int_equal(d->x.ct.drop_rsc, 1);
    assert_int_equal(d->x.ct.to_tap_frames, 1);
    assert_int_equal(recv(d->tap, buf, sizeof(buf), MSG_DONTWAIT), -1);
}

static void nic_rx_frame__vlan_from_a_trunk__tag_back_in_the_frame(void **state)
{
    struct dp *d = *state;
    /* The NIC is a trunk: netvsp passes tags out of band (the VLAN PPI). */
    static struct vsw_policy_rt pol;
    memset(&pol, 0, sizeof(pol));
    pol.pol.trunk = true;
    vsw_policy_allow(&pol.pol, 42);
    __atomic_store_n(&d->r->port[0]->policy, &pol, __ATOMIC_RELEASE);
    uint8_t f[256], buf[FRAME_MAX];
    /* Sent with the checksum left to the network; what arrives has it
     * finished (netvsp did), as build_l4 computes it. */
    struct l4opt o = {.proto = IPPROTO_UDP, .payload = 12, .full_csum = true};
    uint32_t len = build_l4(f, &o, NULL);
    memcpy(f, MAC_VM, 6);
    memcpy(f + 6, MAC_PEER, 6);
    root_send(d->r, f, len, RTE_MBUF_F_TX_UDP_CKSUM | RTE_MBUF_F_TX_IPV4, (5u << 13) | 42);
    struct virtio_net_hdr vh;
    ssize_t n = pump_from_root(d, &vh, buf, sizeof(buf));
    __atomic_store_n(&d->r->port[0]->policy, NULL, __ATOMIC_RELEASE);
    assert_int_equal(n, len + 4);
    assert_memory_equal(buf, f, 12);
    assert_int_equal(get16(buf + 12), ETH_P_8021Q);
    assert_int_equal(get16(buf + 14), (5u << 13) | 42);
    assert_memory_equal(buf + 16, f + 12, len - 12);
    assert_int_equal(vh.flags, VIRTIO_NET_HDR_F_DATA_VALID);
}

static void nic_rx_frame__tap_full__frame_dropped_and_counted(void **state)
{
    struct dp *d = *state;
    uint8_t f[1500];
    struct l4opt o = {.proto = IPPROTO_UDP, .payload = 1400, .full_csum = true};
    uint32_t len = build_l4(f, &o, NULL);
    memcpy(f, MAC_VM, 6);
    /* Fill the VM's receive queue: nobody reads the TAP. */
    unsigned sent = 0;
    struct netvsc_meta none = {0};
    while (d->x.ct.drop_tap_full == 0 && sent < 100000) {
        netvsc_vm_nic_rx_frame(&d->x, f, len, &none);
        sent++;
    }
    assert_int_equal(d->x.ct.drop_tap_full, 1);
    assert_int_equal(d->x.ct.to_tap_frames, sent - 1);
    /* Frames through the NIC meet the same full queue. */
    for (int i = 0; i < 3; i++)
        root_send(d->r, f, len, 0, 0);
    uint64_t end = now_ms() + WAIT_MS;
    while (d->x.ct.drop_tap_full < 4 && now_ms() < end) {
        assert_true(netvsc_poll(d->x.n, netvsc_vm_nic_rx_frame, &d->x, 32) >= 0);
        usleep(200);
    }
    assert_int_equal(d->x.ct.drop_tap_full, 4);
    assert_int_equal(d->x.ct.drop_tap_write, 0);
}

static void nic_rx_frame__tap_gone__write_error_counted(void **state)
{
    struct dp *d = *state;
    close(d->tap);
    d->tap = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0); /* for teardown */
    uint8_t f[60] = {0};
    struct netvsc_meta none = {0};
    netvsc_vm_nic_rx_frame(&d->x, f, sizeof(f), &none);
    assert_int_equal(d->x.ct.drop_tap_write, 1);
    assert_int_equal(d->x.ct.to_tap_frames, 0);
}

/* --- lifecycle: the whole front end, real TAPs --------------------------- */

struct lc {
    struct root *r;
    struct hv_guest *g;
    struct nettap_broker *broker;
    int broker_fd; /* the guest's end */
    pthread_t broker_thread;
    atomic_bool broker_stop;
    int prev_ns;
    struct netvsc_vm *vm;
};

static void *broker_main(void *arg)
{
    struct lc *l = arg;
    struct pollfd p = {.fd = nettap_broker_fd(l->broker), .events = POLLIN};
    while (!atomic_load(&l->broker_stop)) {
        if (poll(&p, 1, 20) > 0 && nettap_broker_serve(l->broker) < 0)
            break;
    }
    return NULL;
}

/* Run `ip ARGS` in the VM's namespace (this thread's); 0 if it succeeded. */
static int ip(const char *args)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ip %s >/dev/null 2>&1", args);
    return system(cmd);
}

/* What `ip -o link show dev NAME` says, or "" if there is no such device. */
static void ip_link(const char *name, char *out, size_t cap)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "ip -o link show dev %s 2>/dev/null", name);
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    if (!fgets(out, (int)cap, p))
        out[0] = '\0';
    pclose(p);
}

static int lc_setup_with(void **state, uint32_t nvp, uint32_t mtu, unsigned nnic)
{
    *state = NULL;
    if (!g_privileged)
        return 0; /* each test skips */
    struct lc *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    /* A network namespace of this test's own, for this thread (the VM's). */
    l->prev_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(l->prev_ns >= 0);
    assert_int_equal(unshare(CLONE_NEWNET), 0);
    int ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(ns >= 0);
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
    struct nettap_broker_params bp = {.sock = sp[0], .netns_fd = ns};
    assert_int_equal(nettap_broker_create(&bp, &l->broker), 0);
    close(ns);
    l->broker_fd = sp[1];
    assert_int_equal(pthread_create(&l->broker_thread, NULL, broker_main, l), 0);
    l->r = root_create(nvp, mtu, nnic);
    l->g = guest_attach(l->r);
    struct netvsc_vm_params p = {.name = "tvm",
                                 .netns = "tvm",
                                 .guest = l->g,
                                 .tap_broker = l->broker_fd,
                                 .signal_fd = -1,
                                 .connect_ms = 2000};
    assert_int_equal(netvsc_vm_create(&p, &l->vm), 0);
    *state = l;
    return 0;
}

static int lc_setup(void **state)
{
    return lc_setup_with(state, 1, 9000, 1);
}

static int lc_teardown(void **state)
{
    struct lc *l = *state;
    if (!l)
        return 0;
    netvsc_vm_destroy(l->vm);
    root_destroy(l->r, l->g, NULL);
    atomic_store(&l->broker_stop, true);
    pthread_join(l->broker_thread, NULL);
    nettap_broker_destroy(l->broker);
    close(l->broker_fd);
    assert_int_equal(setns(l->prev_ns, CLONE_NEWNET), 0);
    close(l->prev_ns);
    free(l);
    return 0;
}

/* The fixture, or a skip where the lifecycle group cannot run. */
static struct lc *LC(void **state)
{
    if (!*state)
        skip();
    return *state;
}

static unsigned lc_nics(struct lc *l, struct netvsc_vm_nic_state *s, unsigned max)
{
    return netvsc_vm_nics(l->vm, s, max);
}

/* Run the loop until cond(l) holds or WAIT_MS pass. */
static bool lc_run_until(struct lc *l, bool (*cond)(struct lc *))
{
    uint64_t end = now_ms() + WAIT_MS;
    while (now_ms() < end) {
        assert_int_equal(netvsc_vm_poll(l->vm, 5), 0);
        if (cond(l))
            return true;
    }
    return cond(l);
}

static uint32_t g_want_mtu;

static bool nic_mtu_is(struct lc *l)
{
    struct netvsc_vm_nic_state s;
    return lc_nics(l, &s, 1) == 1 && s.info.mtu == g_want_mtu;
}

static uint64_t g_want_restarts;

static bool restarted(struct lc *l)
{
    struct netvsc_vm_nic_state s;
    return lc_nics(l, &s, 1) == 1 && s.counters.restarts == g_want_restarts;
}

static bool no_nic(struct lc *l)
{
    return lc_nics(l, NULL, 0) == 0;
}

static bool link_down(struct lc *l)
{
    struct netvsc_vm_nic_state s;
    return lc_nics(l, &s, 1) == 1 && !s.info.link_up;
}

static bool link_up(struct lc *l)
{
    struct netvsc_vm_nic_state s;
    return lc_nics(l, &s, 1) == 1 && s.info.link_up;
}

static int g_old_ifindex;

static bool tap_remade(struct lc *l)
{
    struct netvsc_vm_nic_state s;
    return lc_nics(l, &s, 1) == 1 && s.tap_ifindex != g_old_ifindex;
}

static void vm_create__nic_offered__up_with_a_tap_of_its_mtu_and_mac(void **state)
{
    struct lc *l = LC(state);
    struct netvsc_vm_nic_state s;
    assert_int_equal(lc_nics(l, &s, 1), 1);
    assert_string_equal(s.name, "eth0"); /* the name netvsp offered */
    assert_int_equal(s.info.mtu, 9000);  /* the root's, asked for the most */
    assert_memory_equal(s.info.mac, MAC_VM, 6);
    assert_true(s.info.link_up);
    assert_true(s.tap_ifindex > 0);
    char line[512];
    ip_link("eth0", line, sizeof(line));
    assert_non_null(strstr(line, "mtu 9000"));
    assert_non_null(strstr(line, "00:15:5d:00:01:0a"));
    assert_non_null(strstr(line, "LOWER_UP"));
}

static void vm_poll__root_changes_the_mtu__nic_started_over_at_the_new_mtu(void **state)
{
    struct lc *l = LC(state);
    assert_int_equal(netvsp_set_mtu(l->r->nic[0], 4000), 0);
    g_want_mtu = 4000;
    assert_true(lc_run_until(l, nic_mtu_is));
    struct netvsc_vm_nic_state s;
    lc_nics(l, &s, 1);
    assert_int_equal(s.counters.restarts, 1);
    char line[512];
    ip_link("eth0", line, sizeof(line));
    assert_non_null(strstr(line, "mtu 4000"));
    /* Back up: the NIC asks for the most again, and gets it. */
    assert_int_equal(netvsp_set_mtu(l->r->nic[0], 9000), 0);
    g_want_mtu = 9000;
    assert_true(lc_run_until(l, nic_mtu_is));
    lc_nics(l, &s, 1);
    assert_int_equal(s.counters.restarts, 2);
}

static void vm_poll__vm_sets_its_mtu__nic_started_over_asking_for_it(void **state)
{
    struct lc *l = LC(state);
    assert_int_equal(ip("link set dev eth0 mtu 2000"), 0);
    g_want_mtu = 2000;
    assert_true(lc_run_until(l, nic_mtu_is));
    struct netvsc_vm_nic_state s;
    lc_nics(l, &s, 1);
    assert_int_equal(s.counters.restarts, 1);
    struct netvsp_stats ns;
    netvsp_get_stats(l->r->nic[0], &ns);
    assert_int_equal(ns.frame_size, jumbo_frame(2000)); /* negotiated anew */
    /* Above what the root allows: the NIC gets the root's MTU, the TAP too.
     * (The root's change restarts the NIC first, at the VM's 2000.) */
    assert_int_equal(netvsp_set_mtu(l->r->nic[0], 3000), 0);
    g_want_restarts = 2;
    assert_true(lc_run_until(l, restarted));
    lc_nics(l, &s, 1);
    assert_int_equal(s.info.mtu, 2000); /* the VM's choice survives it */
    assert_int_equal(ip("link set dev eth0 mtu 5000"), 0);
    g_want_mtu = 3000;
    assert_true(lc_run_until(l, nic_mtu_is));
    char line[512];
    ip_link("eth0", line, sizeof(line));
    assert_non_null(strstr(line, "mtu 3000"));
}

#define ETHERTYPE_TEST 0x88b5

/* Frames of ETHERTYPE_TEST the root got from the guest. */
static unsigned root_ngot_test(struct root *r)
{
    unsigned n = 0;
    pthread_mutex_lock(&r->mu);
    for (unsigned i = 0; i < r->ngot; i++)
        n += r->got[i].len >= 14 && get16(r->got[i].data + 12) == ETHERTYPE_TEST;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static unsigned g_want_got;

static bool root_got_test(struct lc *l)
{
    return root_ngot_test(l->r) >= g_want_got;
}

static int g_pkt_sock;
static uint8_t g_pkt[2048];
static ssize_t g_pkt_len;

static bool vm_got_test(struct lc *l)
{
    (void)l;
    g_pkt_len = recv(g_pkt_sock, g_pkt, sizeof(g_pkt), 0);
    return g_pkt_len > 0;
}

/* One frame each way between the VM's stack (a packet socket on eth0) and
 * the root, through the TAP and the NIC. */
static void exchange(struct lc *l, int ifindex, uint8_t seq)
{
    uint8_t f[114];
    memcpy(f, MAC_PEER, 6);
    memcpy(f + 6, MAC_VM, 6);
    put16(f + 12, ETHERTYPE_TEST);
    for (unsigned i = 14; i < sizeof(f); i++)
        f[i] = (uint8_t)(i + seq);
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETHERTYPE_TEST));
    assert_true(s >= 0);
    struct sockaddr_ll sa = {.sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE_TEST),
                             .sll_ifindex = ifindex};
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    g_want_got = root_ngot_test(l->r) + 1;
    assert_int_equal(send(s, f, sizeof(f), 0), (ssize_t)sizeof(f));
    assert_true(lc_run_until(l, root_got_test));
    /* The newest test frame, copied out: the kernel may send frames of its
     * own on the TAP meanwhile, and an assertion must not leave with the
     * lock held (teardown takes it). */
    uint8_t last[sizeof(f)] = {0};
    size_t last_len = 0;
    pthread_mutex_lock(&l->r->mu);
    for (unsigned i = l->r->ngot; i-- > 0;) {
        const struct got *g = &l->r->got[i];
        if (g->len >= 14 && get16(g->data + 12) == ETHERTYPE_TEST) {
            last_len = g->len;
            memcpy(last, g->data, g->len < sizeof(last) ? g->len : sizeof(last));
            break;
        }
    }
    pthread_mutex_unlock(&l->r->mu);
    assert_int_equal(last_len, sizeof(f));
    assert_memory_equal(last, f, sizeof(f));
    memcpy(f, MAC_VM, 6);
    memcpy(f + 6, MAC_PEER, 6);
    f[20] ^= 0xff;
    root_send(l->r, f, sizeof(f), 0, 0);
    g_pkt_sock = s;
    assert_true(lc_run_until(l, vm_got_test));
    assert_int_equal(g_pkt_len, sizeof(f));
    assert_memory_equal(g_pkt, f, sizeof(f));
    close(s);
}

static void vm_poll__frames_both_ways__through_the_tap_also_after_a_restart(void **state)
{
    struct lc *l = LC(state);
    struct netvsc_vm_nic_state s;
    assert_int_equal(lc_nics(l, &s, 1), 1);
    exchange(l, s.tap_ifindex, 1);
    assert_int_equal(netvsp_set_mtu(l->r->nic[0], 4000), 0);
    g_want_restarts = 1;
    assert_true(lc_run_until(l, restarted));
    exchange(l, s.tap_ifindex, 2);
    lc_nics(l, &s, 1);
    assert_true(s.counters.to_root_frames >= 2);
    assert_int_equal(s.counters.to_tap_frames, 2);
}

static void vm_poll__offer_rescinded__nic_closed_and_its_tap_gone(void **state)
{
    struct lc *l = LC(state);
    root_remove_nic(l->r, 0);
    assert_true(lc_run_until(l, no_nic));
    char line[512];
    ip_link("eth0", line, sizeof(line));
    assert_string_equal(line, "");
}

static void vm_poll__tap_deleted_inside_the_vm__made_again(void **state)
{
    struct lc *l = LC(state);
    struct netvsc_vm_nic_state s;
    lc_nics(l, &s, 1);
    g_old_ifindex = s.tap_ifindex;
    assert_int_equal(ip("link del dev eth0"), 0);
    assert_true(lc_run_until(l, tap_remade));
    char line[512];
    ip_link("eth0", line, sizeof(line));
    assert_non_null(strstr(line, "mtu 9000"));
}

static bool only_eth1(struct lc *l)
{
    struct netvsc_vm_nic_state s[2];
    return lc_nics(l, s, 2) == 1 && strcmp(s[0].name, "eth1") == 0;
}

static void vm_poll__tap_cannot_be_made_again__nic_closed_and_not_reopened(void **state)
{
    struct lc *l = LC(state);
    /* The VM deletes the TAP and takes its name: the front end cannot make
     * it again (-EEXIST) and gives the NIC up. */
    assert_int_equal(ip("link del dev eth0"), 0);
    assert_int_equal(ip("link add eth0 type veth peer name eth0peer"), 0);
    assert_true(lc_run_until(l, no_nic));
    /* The root hot-adds a second NIC: the offers change, the new NIC is
     * opened, the failed one (still offered) is not tried again. */
    struct root *r = l->r;
    struct netvsp_params np = {.port_name = "vm/eth1", .nic_name = "eth1", .mtu = 1500,
                               .pool = g_pool};
    memcpy(np.mac, MAC_VM2, 6);
    np.instance.b[0] = 2;
    np.instance.b[15] = 0x4e;
    pthread_mutex_lock(&r->mu);
    int rc = netvsp_create(r->srv, &np, &r->nic[1]);
    if (rc == 0) {
        r->port[1] = netvsp_port(r->nic[1]);
        r->nnic = 2;
    }
    pthread_mutex_unlock(&r->mu);
    assert_int_equal(rc, 0);
    assert_true(lc_run_until(l, only_eth1));
    for (int i = 0; i < 20; i++)
        assert_int_equal(netvsc_vm_poll(l->vm, 5), 0);
    assert_true(only_eth1(l));
}

static void vm_poll__cable_pulled_and_plugged__tap_carrier_follows(void **state)
{
    struct lc *l = LC(state);
    netvsp_set_media(l->r->nic[0], false);
    assert_true(lc_run_until(l, link_down));
    char line[512];
    ip_link("eth0", line, sizeof(line));
    assert_non_null(strstr(line, "NO-CARRIER"));
    netvsp_set_media(l->r->nic[0], true);
    assert_true(lc_run_until(l, link_up));
    ip_link("eth0", line, sizeof(line));
    assert_null(strstr(line, "NO-CARRIER"));
    struct netvsc_vm_nic_state s;
    lc_nics(l, &s, 1);
    assert_int_equal(s.counters.link_changes, 2);
}

static int lc_setup_two_vps(void **state)
{
    return lc_setup_with(state, 2, 1500, 2);
}

static void vm_create__two_nics_two_vps__one_nic_on_each(void **state)
{
    struct lc *l = LC(state);
    struct netvsc_vm_nic_state s[2];
    assert_int_equal(lc_nics(l, s, 2), 2);
    assert_int_equal(s[0].vp, 0);
    assert_int_equal(s[1].vp, 1);
    assert_int_equal(s[0].info.target_vp, 0);
    assert_int_equal(s[1].info.target_vp, 1);
    assert_string_equal(s[0].name, "eth0");
    assert_string_equal(s[1].name, "eth1");
}

/* --- sub-channels (vRSS) -------------------------------------------------- */

struct subs {
    struct root *r;
    struct hv_guest *g;
    struct vmbus_client *c;
    struct netvsc *n;
};

static void got_one(void *ctx, const void *frame, uint32_t len, const struct netvsc_meta *meta)
{
    (void)frame;
    (void)meta;
    *(uint32_t *)ctx = len;
}

/* A root of 4 VPs whose NIC has nic_queues channels (offered only if
 * control), and netvsc wanting want of them. */
static void subs_open_rp(struct subs *s, uint32_t nic_queues, bool control, uint32_t want,
                         int timeout_ms, uint32_t ring_pages)
{
    s->r = root_create_q(4, 1500, 1, nic_queues, control);
    s->g = guest_attach(s->r);
    assert_int_equal(vmbus_client_connect(s->g, 2000, &s->c), 0);
    struct vmbus_offer_info oi[8];
    assert_int_equal(vmbus_client_offers(s->c, oi, 8), 1);
    struct netvsc_params np = {
        .queues = want, .target_vp = 1, .timeout_ms = timeout_ms, .ring_pages = ring_pages};
    assert_int_equal(netvsc_open(s->c, oi[0].relid, &np, &s->n), 0);
}

static void subs_open(struct subs *s, uint32_t nic_queues, bool control, uint32_t want,
                      int timeout_ms)
{
    subs_open_rp(s, nic_queues, control, want, timeout_ms, 0);
}

/* The NIC works on its primary: a frame each way. */
static void subs_frames_both_ways(struct subs *s)
{
    uint8_t f[60] = {0};
    memcpy(f, MAC_VM, 6);
    memcpy(f + 6, MAC_VM2, 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    unsigned before = root_ngot(s->r);
    assert_int_equal(netvsc_send(s->n, f, sizeof(f), &(struct netvsc_meta){0}), 0);
    assert_true(netvsc_tx_flush(s->n) >= 0);
    uint64_t end = now_ms() + WAIT_MS;
    while (root_ngot(s->r) == before && now_ms() < end)
        usleep(200);
    assert_int_equal(root_ngot(s->r), before + 1);
    root_send(s->r, f, sizeof(f), 0, 0);
    uint32_t len = 0;
    end = now_ms() + WAIT_MS;
    while (!len && now_ms() < end) {
        assert_true(netvsc_poll(s->n, got_one, &len, 64) >= 0);
        usleep(200);
    }
    assert_int_equal(len, sizeof(f));
}

static void subs_close(struct subs *s)
{
    netvsc_close(s->n);
    root_destroy(s->r, s->g, s->c);
}

static struct netvsp_stats subs_root_stats(struct subs *s)
{
    struct netvsp_stats st;
    pthread_mutex_lock(&s->r->mu);
    netvsp_get_stats(s->r->nic[0], &st);
    pthread_mutex_unlock(&s->r->mu);
    return st;
}

static void open__four_queues_wanted_and_offered__four_channels_open_round_robin_vps(
    void **state)
{
    (void)state;
    struct subs s;
    subs_open(&s, 4, true, 4, 0);
    struct netvsc_info info;
    netvsc_get_info(s.n, &info);
    assert_int_equal(info.channels, 4);
    struct netvsp_stats st = subs_root_stats(&s);
    assert_int_equal(st.subchannels_granted, 3);
    assert_int_equal(st.subchannel_opens, 3);
    /* Primary on VP 1, the sub-channels on the next VPs round-robin. */
    assert_int_equal(info.target_vp, 1);
    struct netvsc_chan_info si[NETVSC_QUEUES_MAX];
    assert_int_equal(netvsc_get_channels(s.n, si, NETVSC_QUEUES_MAX), 4);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(si[i].target_vp, (1 + i) % 4);
    subs_frames_both_ways(&s);
    subs_close(&s);
}

static void open__root_offers_fewer_queues__its_count_open(void **state)
{
    (void)state;
    struct subs s;
    subs_open(&s, 2, true, 4, 0);
    struct netvsc_info info;
    netvsc_get_info(s.n, &info);
    assert_int_equal(info.channels, 2);
    struct netvsp_stats st = subs_root_stats(&s);
    assert_int_equal(st.subchannels_granted, 1);
    assert_int_equal(st.subchannels_refused, 0); /* asked within what was offered */
    assert_int_equal(st.subchannel_opens, 1);
    subs_frames_both_ways(&s);
    subs_close(&s);
}

static void open__one_queue_wanted__no_subchannel_asked(void **state)
{
    (void)state;
    struct subs s;
    subs_open(&s, 4, true, 0, 0);
    struct netvsc_info info;
    netvsc_get_info(s.n, &info);
    assert_int_equal(info.channels, 1);
    struct netvsp_stats st = subs_root_stats(&s);
    assert_int_equal(st.subchannels_granted, 0);
    assert_int_equal(st.subchannels_refused, 0);
    subs_frames_both_ways(&s);
    subs_close(&s);
}

static void open__granted_never_offered__primary_only_and_usable(void **state)
{
    (void)state;
    struct subs s;
    subs_open(&s, 4, false, 4, 300);
    struct netvsc_info info;
    netvsc_get_info(s.n, &info);
    assert_int_equal(info.channels, 1);
    assert_int_equal(subs_root_stats(&s).subchannels_granted, 3);
    subs_frames_both_ways(&s);
    subs_close(&s);
}


/* --- vRSS traffic: frames on every channel ------------------------------- */

/* The key netvsc gives the root (the RSS specification's); rte_softrss
 * reads it a word at a time. */
static const uint8_t MS_KEY[40] __attribute__((aligned(4))) = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

#define FLOWS 16u

/* A 64-byte UDP/IPv4 frame of flow f (source 10.0.0.(f + 1) to 10.0.1.1
 * when to_vm, else 10.0.1.1 to 10.0.0.(f + 1)), its sequence number in
 * the payload. */
static void flow_frame(uint8_t f[64], bool to_vm, unsigned flow, uint32_t seq)
{
    memset(f, 0, 64);
    memcpy(f, to_vm ? MAC_VM : MAC_PEER, 6);
    memcpy(f + 6, to_vm ? MAC_PEER : MAC_VM, 6);
    f[12] = 0x08;
    f[14] = 0x45;
    put16(f + 16, 50);
    f[22] = 64;
    f[23] = IPPROTO_UDP;
    uint8_t peer[4] = {10, 0, 0, (uint8_t)(flow + 1)}, vm[4] = {10, 0, 1, 1};
    memcpy(f + 26, to_vm ? peer : vm, 4);
    memcpy(f + 30, to_vm ? vm : peer, 4);
    put16(f + 34, 1000);
    put16(f + 36, 2000);
    put16(f + 38, 30);
    f[42] = (uint8_t)flow;
    memcpy(f + 44, &seq, 4);
}

/* The channel of 4 that flow's frames take: the root's tables are
 * i % channels (its RSS check, its send table), indexed by the Toeplitz
 * hash of the addresses (UDP: no ports), as DPDK computes it. */
static uint32_t flow_chan(bool to_vm, unsigned flow)
{
    uint32_t peer = (10u << 24) | (flow + 1), vm = (10u << 24) | (1u << 8) | 1u;
    uint32_t t[2] = {to_vm ? peer : vm, to_vm ? vm : peer};
    return rte_softrss(t, 2, MS_KEY) % 4;
}

struct flows {
    unsigned n;
    uint32_t next[FLOWS]; /* the sequence number each flow must bring next */
    bool out_of_order;
};

static void flow_got(void *ctx, const void *frame, uint32_t len, const struct netvsc_meta *meta)
{
    (void)meta;
    struct flows *fl = ctx;
    const uint8_t *f = frame;
    uint32_t seq;
    if (len < 48 || f[42] >= FLOWS) {
        fl->out_of_order = true;
        return;
    }
    memcpy(&seq, f + 44, 4);
    fl->out_of_order |= seq != fl->next[f[42]];
    fl->next[f[42]] = seq + 1;
    fl->n++;
}

static void rss_recv__four_channels__flows_spread_over_them_each_in_order(void **state)
{
    (void)state;
    struct subs s;
    subs_open(&s, 4, true, 4, 0);
    struct netvsc_info info;
    netvsc_get_info(s.n, &info);
    assert_int_equal(info.channels, 4);
    /* Our RSS parameters were taken: frames are steered by them. */
    assert_int_equal(subs_root_stats(&s).rss_sets, 1);
    uint64_t want[4] = {0};
    struct flows fl = {0};
    const unsigned per_flow = 6;
    for (uint32_t seq = 0; seq < per_flow; seq++) {
        /* Half the flows a round, so that the root's 64 hold them. */
        for (unsigned half = 0; half < 2; half++) {
            for (unsigned f = half * FLOWS / 2; f < (half + 1) * FLOWS / 2; f++) {
                uint8_t fr[64];
                flow_frame(fr, true, f, seq);
                root_send(s.r, fr, sizeof(fr), 0, 0);
                want[flow_chan(true, f)]++;
            }
            unsigned target = fl.n + FLOWS / 2;
            uint64_t end = now_ms() + WAIT_MS;
            while (fl.n < target && now_ms() < end) {
                assert_true(netvsc_poll(s.n, flow_got, &fl, 5) >= 0);
                usleep(100);
            }
            assert_int_equal(fl.n, target);
        }
    }
    assert_false(fl.out_of_order);
    for (unsigned f = 0; f < FLOWS; f++)
        assert_int_equal(fl.next[f], per_flow);
    /* Each channel got what the table names for its flows; more than one
     * channel is used. */
    struct netvsc_chan_stats cs[NETVSC_QUEUES_MAX];
    assert_int_equal(netvsc_get_chan_stats(s.n, cs, NETVSC_QUEUES_MAX), 4);
    unsigned used = 0;
    for (unsigned c = 0; c < 4; c++) {
        assert_int_equal(cs[c].rx_frames, want[c]);
        used += want[c] > 0;
    }
    assert_true(used >= 2);
    struct netvsp_stats st = subs_root_stats(&s);
    for (unsigned c = 0; c < 4; c++)
        assert_int_equal(st.chan_tx[c], want[c]);
    subs_close(&s);
}

static void rss_recv__frame_on_a_sub_channel_only__arm_says_work_poll_delivers_it(void **state)
{
    (void)state;
    struct subs s;
    subs_open(&s, 4, true, 4, 0);
    unsigned f = 0;
    while (f < FLOWS && flow_chan(true, f) == 0)
        f++;
    assert_true(f < FLOWS);
    uint32_t c = flow_chan(true, f);
    /* Nothing is pending once what came during the open is taken. */
    assert_true(netvsc_poll(s.n, NULL, NULL, 64) >= 0);
    uint8_t fr[64];
    flow_frame(fr, true, f, 0);
    root_send(s.r, fr, sizeof(fr), 0, 0);
    uint64_t end = now_ms() + WAIT_MS;
    while (subs_root_stats(&s).chan_tx[c] == 0 && now_ms() < end)
        usleep(200);
    assert_int_equal(subs_root_stats(&s).chan_tx[c], 1);
    /* The owner must not sleep: the frame is on a sub-channel's ring. */
    assert_true(netvsc_intr_arm(s.n));
    netvsc_intr_disarm(s.n);
    struct flows fl = {0};
    assert_int_equal(netvsc_poll(s.n, flow_got, &fl, 64), 1);
    assert_int_equal(fl.n, 1);
    struct netvsc_chan_stats cs[NETVSC_QUEUES_MAX];
    assert_int_equal(netvsc_get_chan_stats(s.n, cs, NETVSC_QUEUES_MAX), 4);
    assert_int_equal(cs[c].rx_frames, 1);
    subs_close(&s);
}

static void rss_recv__two_channels_full_small_budgets__served_first_in_turn_each_intact(
    void **state)
{
    (void)state;
    struct subs s;
    subs_open(&s, 4, true, 4, 0);
    unsigned fa = 0, fb = 1;
    while (fb < FLOWS && flow_chan(true, fb) == flow_chan(true, fa))
        fb++;
    assert_true(fb < FLOWS);
    uint32_t ca = flow_chan(true, fa), cb = flow_chan(true, fb);
    /* 16 frames of each flow in the guest's rings, in few transfers. */
    for (uint32_t seq = 0; seq < 16; seq++) {
        uint8_t fr[64];
        flow_frame(fr, true, fa, seq);
        root_send(s.r, fr, sizeof(fr), 0, 0);
        flow_frame(fr, true, fb, seq);
        root_send(s.r, fr, sizeof(fr), 0, 0);
    }
    uint64_t end = now_ms() + WAIT_MS;
    struct netvsp_stats st;
    do {
        usleep(200);
        st = subs_root_stats(&s);
    } while ((st.chan_tx[ca] < 16 || st.chan_tx[cb] < 16) && now_ms() < end);
    assert_int_equal(st.chan_tx[ca], 16);
    assert_int_equal(st.chan_tx[cb], 16);
    /* The channel served first moves poll by poll: in four polls each
     * channel is first at least once, so neither takes every budget. */
    struct flows fl = {0};
    for (int k = 0; k < 4; k++)
        assert_int_equal(netvsc_poll(s.n, flow_got, &fl, 4), 4);
    assert_true(fl.next[fa] >= 4);
    assert_true(fl.next[fb] >= 4);
    /* A budget of 3 ends polls inside the transfers of both channels. */
    for (int k = 0; k < 100 && fl.n < 32; k++) {
        int got = netvsc_poll(s.n, flow_got, &fl, 3);
        assert_true(got >= 0 && got <= 3);
    }
    assert_int_equal(fl.n, 32);
    assert_false(fl.out_of_order);
    assert_int_equal(fl.next[fa], 16);
    assert_int_equal(fl.next[fb], 16);
    subs_close(&s);
}

/* Poll until the root's send table has come. */
static void subs_wait_table(struct subs *s)
{
    struct netvsc_stats st;
    uint64_t end = now_ms() + WAIT_MS;
    do {
        assert_true(netvsc_poll(s->n, NULL, NULL, 64) >= 0);
        netvsc_get_stats(s->n, &st);
    } while (st.send_tables == 0 && now_ms() < end && usleep(200) == 0);
    assert_int_equal(st.send_tables, 1);
    assert_int_equal(st.send_table_bad, 0);
}

static void rss_send__four_channels__each_flow_on_its_table_channel_in_order(void **state)
{
    (void)state;
    struct subs s;
    subs_open(&s, 4, true, 4, 0);
    subs_wait_table(&s);
    uint64_t want[4] = {0};
    const unsigned per_flow = 4;
    for (uint32_t seq = 0; seq < per_flow; seq++)
        for (unsigned f = 0; f < FLOWS; f++) {
            uint8_t fr[64];
            flow_frame(fr, false, f, seq);
            assert_int_equal(netvsc_send(s.n, fr, sizeof(fr), &(struct netvsc_meta){0}), 0);
            want[flow_chan(false, f)]++;
        }
    assert_int_equal(netvsc_tx_flush(s.n), 0);
    uint64_t end = now_ms() + WAIT_MS;
    while (root_ngot(s.r) < FLOWS * per_flow && now_ms() < end) {
        assert_true(netvsc_poll(s.n, NULL, NULL, 64) >= 0); /* completions */
        usleep(200);
    }
    assert_int_equal(root_ngot(s.r), FLOWS * per_flow);
    /* Every frame intact, each flow in order. */
    uint32_t next[FLOWS] = {0};
    pthread_mutex_lock(&s.r->mu);
    for (unsigned i = 0; i < s.r->ngot; i++) {
        const struct got *g = &s.r->got[i];
        uint8_t fr[64];
        uint32_t seq;
        assert_int_equal(g->len, 64);
        assert_true(g->data[42] < FLOWS);
        memcpy(&seq, g->data + 44, 4);
        flow_frame(fr, false, g->data[42], seq);
        assert_memory_equal(g->data, fr, 64);
        assert_int_equal(seq, next[g->data[42]]);
        next[g->data[42]]++;
    }
    pthread_mutex_unlock(&s.r->mu);
    /* On the channel the table names (counted by both ends). */
    struct netvsc_chan_stats cs[NETVSC_QUEUES_MAX];
    assert_int_equal(netvsc_get_chan_stats(s.n, cs, NETVSC_QUEUES_MAX), 4);
    struct netvsp_stats st = subs_root_stats(&s);
    unsigned used = 0;
    for (unsigned c = 0; c < 4; c++) {
        assert_int_equal(cs[c].tx_frames, want[c]);
        assert_int_equal(st.chan_rx[c], want[c]);
        used += want[c] > 0;
    }
    assert_true(used >= 2);
    /* The completions came back (on the channels used): nothing blocked. */
    end = now_ms() + WAIT_MS;
    while (netvsc_tx_blocked(s.n) && now_ms() < end)
        assert_true(netvsc_poll(s.n, NULL, NULL, 64) >= 0);
    assert_false(netvsc_tx_blocked(s.n));
    subs_close(&s);
}

static void rss_send__one_channels_ring_full__the_others_still_send(void **state)
{
    (void)state;
    struct subs s;
    subs_open_rp(&s, 4, true, 4, 0, 4); /* rings of 3 data pages */
    subs_wait_table(&s);
    /* Two flows on different channels. */
    unsigned fa = 0, fb = 1;
    while (fb < FLOWS && flow_chan(false, fb) == flow_chan(false, fa))
        fb++;
    assert_true(fb < FLOWS);
    uint32_t ca = flow_chan(false, fa), cb = flow_chan(false, fb);
    atomic_store(&s.r->paused, true);
    /* Flow a until its channel's ring is full. */
    uint8_t fr[64];
    uint32_t sent_a = 0;
    int rc;
    for (;;) {
        flow_frame(fr, false, fa, sent_a);
        rc = netvsc_send(s.n, fr, sizeof(fr), &(struct netvsc_meta){0});
        if (rc != 0)
            break;
        sent_a++;
        assert_true(sent_a < 100000);
    }
    assert_int_equal(rc, -EAGAIN);
    assert_true(sent_a > 0);
    /* Flow b still goes, and its channel is flushed. */
    for (uint32_t k = 0; k < 8; k++) {
        flow_frame(fr, false, fb, k);
        assert_int_equal(netvsc_send(s.n, fr, sizeof(fr), &(struct netvsc_meta){0}), 0);
    }
    assert_true(netvsc_tx_flush(s.n) >= 0);
    atomic_store(&s.r->paused, false);
    /* Once the root reads again, all of them arrive. */
    uint64_t end = now_ms() + WAIT_MS;
    struct netvsp_stats st;
    do {
        assert_true(netvsc_poll(s.n, NULL, NULL, 64) >= 0);
        assert_true(netvsc_tx_flush(s.n) >= 0);
        usleep(200);
        st = subs_root_stats(&s);
    } while ((st.chan_rx[ca] < sent_a || st.chan_rx[cb] < 8) && now_ms() < end);
    assert_int_equal(st.chan_rx[ca], sent_a);
    assert_int_equal(st.chan_rx[cb], 8);
    /* And flow a goes on once there is room. */
    end = now_ms() + WAIT_MS;
    do {
        assert_true(netvsc_poll(s.n, NULL, NULL, 64) >= 0);
        flow_frame(fr, false, fa, sent_a);
        rc = netvsc_send(s.n, fr, sizeof(fr), &(struct netvsc_meta){0});
    } while (rc == -EAGAIN && now_ms() < end && usleep(200) == 0);
    assert_int_equal(rc, 0);
    subs_close(&s);
}

/* --- main ---------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "--file-prefix=tnetvscvm%d", (int)getpid());
    char *args[] = {"test_netvsc_vm", "-l", "0", "--no-huge", "-m", "256", "--no-pci",
                    "--no-shconf", "--no-telemetry", prefix, "--log-level", "*:error"};
    if (rte_eal_init((int)(sizeof(args) / sizeof(args[0])), args) < 0)
        return -1;
    rmdir(rte_eal_get_runtime_dir());
    g_pool = rte_pktmbuf_pool_create("tnetvscvm", POOL_MBUFS, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                     (int)rte_socket_id());
    if (!g_pool)
        return -1;
    /* The lifecycle group makes namespaces and TAPs: root, and ip(8). */
    g_privileged = geteuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0 &&
                   system("ip -V >/dev/null 2>&1") == 0;
    if (!g_privileged)
        fprintf(stderr, "test_netvsc_vm: not root (or no /dev/net/tun, no ip): the "
                        "lifecycle tests are skipped\n");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rte_mempool_free(g_pool);
    rte_eal_cleanup();
    return 0;
}

int main(void)
{
    /* The front end's messages, in order with cmocka's. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* A "TAP" socket whose peer is gone fails a write; it must not kill. */
    signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test(f)
#define D(f) cmocka_unit_test_setup_teardown(f, dp_setup, dp_teardown)
#define DJ(f) cmocka_unit_test_setup_teardown(f, dp_setup_jumbo, dp_teardown)
#define L(f) cmocka_unit_test_setup_teardown(f, lc_setup, lc_teardown)
    const struct CMUnitTest tests[] = {
        T(rx_partial_csum__tcp4_pseudo_sum_only__l4_start_and_offset),
        T(rx_partial_csum__udp6_and_tagged_tcp4__found_after_their_headers),
        T(rx_partial_csum__finished_checksum__not_partial),
        T(rx_partial_csum__zero_and_ffff__the_same_sum),
        T(rx_partial_csum__odd_frames__refused_without_reading_past_them),
        T(rx_iov__vlan_out_of_band__tag_put_back_after_the_macs),
        T(rx_iov__plain_and_verified__header_says_so),
        T(rx_iov__tag_on_a_frame_shorter_than_two_macs__left_out),
        T(tx_meta__partial_tcp_with_offload__left_to_the_root),
        T(tx_meta__partial_without_offload__finished_here),
        T(tx_meta__checksum_field_the_root_cannot_name__finished_here),
        T(tx_meta__hostile_checksum_positions__dropped_as_bad_offload),
        T(tx_meta__gso__lso_for_tcp_only_with_a_checksum_and_a_size),
        T(tx_meta__gso_tagged_ipv4__lso_behind_the_tag),
        T(tx_meta__gso_of_one_segment__a_checksum_offload),
        T(tx_meta__hostile_gso_headers__dropped_as_bad_offload),
        T(rx_rsc_iov__coalesced_tcp4__gso_frame_with_a_partial_checksum),
        T(rx_rsc_iov__tcp6_tag_out_of_band__tag_back_and_offsets_after_it),
        T(rx_rsc_iov__coalesced_frames_a_guest_must_reject__refused),
        T(tap_params__offloads__follow_what_the_root_takes),
        D(nic_tx__plain_frames__reach_the_root_as_written),
        D(nic_tx__partial_checksum__the_root_is_asked_to_finish_it),
        D(nic_tx__partial_checksum_root_without_offload__finished_in_the_guest),
        D(nic_tx__runts_and_bad_offloads__dropped_and_counted),
        DJ(nic_tx__jumbo_frame__through_the_bounce_buffer_intact),
        DJ(nic_tx__jumbo_frame__read_into_a_chunk_whole_before_its_checksum),
        DJ(nic_tx__jumbo_frame_every_chunk_in_flight__bounced_then_sent),
        D(nic_tx__more_frames_than_a_burst__all_arrive_in_order),
        D(nic_rx_frame__checksum_left_to_network__finished_by_root_valid_for_the_tap),
        D(nic_rx_frame__coalesced_by_the_root__one_gso_frame_to_the_tap),
        D(nic_rx_frame__vlan_from_a_trunk__tag_back_in_the_frame),
        D(nic_rx_frame__tap_full__frame_dropped_and_counted),
        D(nic_rx_frame__tap_gone__write_error_counted),
        L(vm_create__nic_offered__up_with_a_tap_of_its_mtu_and_mac),
        L(vm_poll__root_changes_the_mtu__nic_started_over_at_the_new_mtu),
        L(vm_poll__vm_sets_its_mtu__nic_started_over_asking_for_it),
        L(vm_poll__frames_both_ways__through_the_tap_also_after_a_restart),
        L(vm_poll__offer_rescinded__nic_closed_and_its_tap_gone),
        L(vm_poll__tap_deleted_inside_the_vm__made_again),
        L(vm_poll__tap_cannot_be_made_again__nic_closed_and_not_reopened),
        L(vm_poll__cable_pulled_and_plugged__tap_carrier_follows),
        T(open__four_queues_wanted_and_offered__four_channels_open_round_robin_vps),
        T(open__root_offers_fewer_queues__its_count_open),
        T(open__one_queue_wanted__no_subchannel_asked),
        T(open__granted_never_offered__primary_only_and_usable),
        T(rss_recv__four_channels__flows_spread_over_them_each_in_order),
        T(rss_recv__frame_on_a_sub_channel_only__arm_says_work_poll_delivers_it),
        T(rss_recv__two_channels_full_small_budgets__served_first_in_turn_each_intact),
        T(rss_send__four_channels__each_flow_on_its_table_channel_in_order),
        T(rss_send__one_channels_ring_full__the_others_still_send),
        cmocka_unit_test_setup_teardown(vm_create__two_nics_two_vps__one_nic_on_each,
                                        lc_setup_two_vps, lc_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
