/* The hvnet NIC port's frames without the NIC (port-hvnet.h): copies both
 * ways between mbuf chains and flat buffers, the MTU check, the receive
 * queue. No allocation: mbufs come from a stash the NIC side refills in
 * bulk. rte_memcpy for a frame into one mbuf: it inlines a copy of the
 * frame's length where glibc's memmove was a call (16 % of the VM's
 * samples, with its misses). */
#include <errno.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>

#include "jumbo.h"
#include "port-hvnet.h"

bool pg_hvnet_frame_fits(const struct rte_mbuf *m, uint32_t mtu)
{
    bool tagged = false;
    if (rte_pktmbuf_data_len(m) >= RTE_ETHER_HDR_LEN) {
        const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
        tagged = eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN) ||
                 eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_QINQ);
    }
    return jumbo_frame_fits(rte_pktmbuf_pkt_len(m), jumbo_frame(mtu), tagged);
}

int pg_hvnet_copy_out(const struct rte_mbuf *m, void *dst, uint32_t cap)
{
    uint32_t len = rte_pktmbuf_pkt_len(m), off = 0;
    if (len > cap)
        return -EMSGSIZE;
    for (const struct rte_mbuf *s = m; s && off < len; s = s->next) {
        uint32_t n = rte_pktmbuf_data_len(s);
        if (n > len - off)
            n = len - off;
        memcpy((uint8_t *)dst + off, rte_pktmbuf_mtod(s, const uint8_t *), n);
        off += n;
    }
    return off == len ? (int)len : -EINVAL;
}

struct rte_mbuf *pg_hvnet_frame_in(struct pg_hvnet_rxq *q, const void *frame, uint32_t len)
{
    struct rte_mbuf *head = q->nstash ? q->stash[q->nstash - 1] : NULL;
    if (head && len && len <= rte_pktmbuf_tailroom(head)) {
        /* One mbuf: the frames of a 64..1518 B test. */
        rte_memcpy(rte_pktmbuf_mtod(head, uint8_t *), frame, len);
        head->data_len = (uint16_t)len;
        head->pkt_len = len;
        head->nb_segs = 1;
        head->next = NULL;
        q->nstash--;
        q->frames++;
        q->bytes += len;
        return head;
    }
    /* How many stash mbufs the frame needs, from the top of the stash. */
    unsigned k = 0;
    uint32_t room = 0;
    while (room < len || k == 0) {
        if (k == q->nstash || k == RTE_MBUF_MAX_NB_SEGS) {
            q->no_mbuf++;
            return NULL;
        }
        room += rte_pktmbuf_tailroom(q->stash[q->nstash - 1 - k]);
        k++;
    }
    struct rte_mbuf *prev = NULL;
    uint32_t off = 0;
    for (unsigned i = 0; i < k; i++) {
        struct rte_mbuf *s = q->stash[q->nstash - 1 - i];
        uint32_t n = rte_pktmbuf_tailroom(s);
        if (n > len - off)
            n = len - off;
        memcpy(rte_pktmbuf_mtod(s, uint8_t *), (const uint8_t *)frame + off, n);
        s->data_len = (uint16_t)n;
        s->next = NULL;
        off += n;
        if (prev)
            prev->next = s;
        prev = s;
    }
    q->nstash -= k;
    head->nb_segs = (uint16_t)k;
    head->pkt_len = len;
    q->frames++;
    q->bytes += len;
    return head;
}

int pg_hvnet_rxq_put(struct pg_hvnet_rxq *q, const void *frame, uint32_t len)
{
    if (pg_hvnet_rxq_count(q) == PG_HVNET_RXQ) {
        q->full++;
        return -ENOBUFS;
    }
    struct rte_mbuf *m = pg_hvnet_frame_in(q, frame, len);
    if (!m)
        return -ENOBUFS;
    q->ring[q->tail++ % PG_HVNET_RXQ] = m;
    return 0;
}

uint16_t pg_hvnet_rxq_take(struct pg_hvnet_rxq *q, struct rte_mbuf **pkts, uint16_t n)
{
    uint16_t k = 0;
    while (k < n && q->head != q->tail)
        pkts[k++] = q->ring[q->head++ % PG_HVNET_RXQ];
    return k;
}
