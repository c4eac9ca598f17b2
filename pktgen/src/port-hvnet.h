/* vswitch-pktgen's second port backend: the synthetic NIC of the hvnet
 * child partition the program runs in, driven through the netvsc library
 * (no TAP, no kernel), so that pktgen can be "the VM" on hvnet as a
 * virtio_user port is on OVS-DPDK.
 *
 * Frames cross between mbufs and the NIC's buffers with one copy each way,
 * the copy a guest's DMA would do: an mbuf chain into a send section (or a
 * page chunk for a jumbo frame), and a frame in the receive buffer into an
 * mbuf chain taken from a stash refilled with rte_pktmbuf_alloc_bulk.
 *
 * The part without a NIC (copies, the size check, the receive queue) is
 * hvnet-frame.c, tested alone; port-hvnet.c is the NIC. One thread. */
#ifndef PG_PORT_HVNET_H
#define PG_PORT_HVNET_H

#include <stdbool.h>
#include <stdint.h>

#include "pktgen-private.h"

struct rte_mbuf;
struct rte_mempool;

/* May the frame in m go out on a NIC of this L3 MTU? Its length against
 * the untagged frame at that MTU, 4 bytes more if it carries an 802.1Q or
 * 802.1ad tag in-band (what the switch's port lets in). */
bool pg_hvnet_frame_fits(const struct rte_mbuf *m, uint32_t mtu);

/* Copy the frame in chain m (pkt_len bytes over its segments) to dst,
 * which holds cap bytes. The number of bytes, or -EMSGSIZE if it does not
 * fit, -EINVAL if the chain holds fewer bytes than pkt_len says. */
int pg_hvnet_copy_out(const struct rte_mbuf *m, void *dst, uint32_t cap);

/* Frames received, waiting for the port's rx: those taken off the NIC
 * while a send waited for the root's completions (a receive hands frames
 * straight to its caller). A ring of mbuf chains, and the stash of free
 * mbufs (reset, from rte_pktmbuf_alloc_bulk) that every received frame's
 * chain is made of. */
#define PG_HVNET_RXQ 512u   /* frames waiting; a power of 2 */
#define PG_HVNET_STASH 1024u /* free mbufs kept: a burst of jumbo frames' chains */
struct pg_hvnet_rxq {
    struct rte_mbuf *ring[PG_HVNET_RXQ];
    uint32_t head, tail; /* free-running */
    struct rte_mbuf *stash[PG_HVNET_STASH];
    unsigned nstash;
    uint64_t frames, bytes; /* received (made into chains) */
    uint64_t full;          /* dropped: the queue was full */
    uint64_t no_mbuf;       /* dropped: the stash had too few mbufs */
};

/* Copy a received frame of len bytes into a chain of stash mbufs (one
 * mbuf if it fits one: a single copy). The chain, or NULL if the stash
 * holds too few mbufs for it (counted no_mbuf; the stash untouched). */
struct rte_mbuf *pg_hvnet_frame_in(struct pg_hvnet_rxq *q, const void *frame, uint32_t len);
/* How many mbufs to take from the pool into a stash holding nstash before
 * a receive of up to budget frames of up to segs mbufs each: none if it
 * holds enough, else what is short but at least a burst (up to the
 * stash's size). A stash kept this low takes back the mbufs the run loop
 * freed last, still in cache, where refilling it by hundreds took cold
 * ones (the reset of their headers was 17 % of the VM's samples). */
static inline unsigned pg_hvnet_stash_want(unsigned nstash, unsigned budget, unsigned segs)
{
    unsigned need = budget * (segs ? segs : 1);
    if (need > PG_HVNET_STASH)
        need = PG_HVNET_STASH;
    if (nstash >= need)
        return 0;
    unsigned want = need - nstash;
    if (want < PG_BURST)
        want = PG_BURST;
    return want < PG_HVNET_STASH - nstash ? want : PG_HVNET_STASH - nstash;
}
/* pg_hvnet_frame_in() and queue the chain; a frame that cannot be queued
 * is dropped and counted. 0 or -ENOBUFS. */
int pg_hvnet_rxq_put(struct pg_hvnet_rxq *q, const void *frame, uint32_t len);
/* Take up to n queued frames, oldest first; how many. */
uint16_t pg_hvnet_rxq_take(struct pg_hvnet_rxq *q, struct rte_mbuf **pkts, uint16_t n);
static inline uint32_t pg_hvnet_rxq_count(const struct pg_hvnet_rxq *q)
{
    return q->tail - q->head;
}

/* The NIC. */
struct pg_hvnet;

struct pg_hvnet_params {
    const char *name;       /* the VM's, for messages */
    unsigned nic;           /* which of the partition's NICs: 0 = the first offered */
    uint32_t max_frame;     /* the largest frame to send, L2 without FCS (0: none) */
    double link_wait_s;     /* how long to wait for the NIC's link */
    struct rte_mempool *rx_pool;
    bool yield;             /* sched_yield() after a receive that found nothing */
};

/* How long a send waits, polling, for the root's completions to free room
 * (a guest's driver would hold the frame in its queue): the root completes
 * within its next round, or after waking up from its idle sleep. */
#define PG_HVNET_TX_WAIT_US 2000u

struct pg_hvnet_stats {
    uint64_t tx_frames, tx_bytes;
    uint64_t tx_too_long;   /* refused: longer than the NIC's MTU allows (or a
                               length netvsc refuses) */
    uint64_t tx_waits;      /* no send section or ring space: completions awaited */
    uint64_t tx_no_room;    /* a burst stopped: still none after PG_HVNET_TX_WAIT_US */
    uint64_t rx_frames, rx_bytes;
    uint64_t rx_full, rx_no_mbuf; /* dropped, see pg_hvnet_rxq */
};

/* Attach to the partition this process runs in (HV_PARTITION_FDS), connect
 * VMBus, open its NIC number p->nic asking for the largest MTU (the root
 * gives what the NIC's port and switch allow: a reflector or sink takes
 * any frame the switch lets through), and wait for its link. 0 or a
 * negative errno; the reason is printed to stderr.
 * -ENOENT: not in a partition. -EMSGSIZE: the root gave a smaller MTU than
 * p->max_frame needs (the switch's or the NIC's MTU). */
int pg_hvnet_open(const struct pg_hvnet_params *p, struct pg_hvnet **out);
/* The NIC as a pktgen port. */
void pg_hvnet_port(struct pg_hvnet *h, struct pg_port *port);
void pg_hvnet_mac(const struct pg_hvnet *h, uint8_t mac[6]);
uint32_t pg_hvnet_mtu(const struct pg_hvnet *h);
void pg_hvnet_get_stats(const struct pg_hvnet *h, struct pg_hvnet_stats *out);
/* Closes the NIC (RNDIS halt, buffers revoked), detaches. NULL is fine. */
void pg_hvnet_close(struct pg_hvnet *h);

/* main.c's whole set-up of the NIC as port 0: pg_hvnet_open(), the port,
 * a line naming the NIC's MAC and MTU on stdout, the NIC's MAC as o's
 * source MAC unless smac_given, then pg_hvnet_confine(). 0 or a negative
 * errno (the reason printed); *out is the NIC either way (NULL if none). */
int pg_hvnet_start(const struct pg_hvnet_params *p, struct pg_opts *o, bool smac_given,
                   struct pg_port *port, struct pg_hvnet **out);
/* The end of a program that ran on the NIC (h may be NULL): its counters on
 * stdout, the NIC closed, exit with status without EAL's clean-up, which
 * would make system calls the filter forbids (the kernel frees the rest). */
_Noreturn void pg_hvnet_exit(struct pg_hvnet *h, int status);

/* Is this process a child partition (HV_PARTITION_FDS set)? */
bool pg_hvnet_in_partition(void);

/* The EAL arguments for a partition's worker, appended to eal[ne..] (room
 * for PG_HVNET_EAL_ARGS more); the new count. What a jailed worker has: no
 * hugepages, no PCI, no shared runtime directory, no telemetry socket; the
 * main lcore on the first CPU the process may run on. */
#define PG_HVNET_EAL_ARGS 10
int pg_hvnet_eal_args(char **eal, int ne);

/* After set-up, before the run: logs and stdout that need no system call
 * the filter forbids, then the worker's system-call filter
 * (netvsc-sandbox.h) on this thread. SIGINT and SIGTERM are blocked here
 * so that their handler runs on EAL's interrupt thread, outside the
 * filter (returning from a handler is a system call the filter does not
 * allow). 0 or a negative errno (the reason printed). From then on the
 * program may open no file and must end with _exit after its output. */
int pg_hvnet_confine(const char *name);

#endif
