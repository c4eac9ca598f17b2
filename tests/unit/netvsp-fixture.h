/*
 * The fake guest the netvsp unit tests share (test_netvsp_*.c, one binary
 * per layer of netvsp), made of netvsp-fixture.c's helpers.
 *
 * Each test runs a direct partition in this process with one netvsp NIC
 * offered on its VMBus server. The test is the guest: it connects with the
 * real VMBus client, opens the NIC's channel, grants a receive and a send
 * buffer, and then writes raw NVSP packets into its ring and RNDIS messages
 * into its send buffer (or pages it names GPA-direct), so that every
 * out-of-order, malformed or hostile message can be sent exactly as a bad
 * guest would. The test is the switch worker too: it calls the port's
 * rx_burst (which processes the guest's ring and hands back the frames the
 * guest sent), tx_burst (frames for the guest) and tx_flush directly. EAL
 * runs on one lcore and the port is attached to no switch, so nothing else
 * runs. Outcomes are checked through the guest's ring and receive buffer,
 * the mbufs, netvsp_get_stats() and vsw_port_get_stats().
 */
#ifndef NETVSP_FIXTURE_H
#define NETVSP_FIXTURE_H

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "hv-guest.h"
#include "hv.h"
#include "netvsp.h"
#include "nvsp-proto.h"
#include "rndis-proto.h"
#include "vmbus-client.h"
#include "vmbus-ring.h"
#include "vmbus-server.h"
#include "vsw-port-provider.h"
#include "vsw.h"

#define MEM_BYTES (64ull << 20)
#define MEM_PAGES (MEM_BYTES >> HV_PAGE_SHIFT)
#define RING_PAGES 8u     /* each direction, header page included */
#define RBUF_PAGES 512u   /* 2 MiB receive buffer */
#define SBUF_PAGES 256u   /* 1 MiB send buffer */
#define SCRATCH_PAGES 16u /* guest pages for GPA-direct data */
#define SBUF_BYTES (SBUF_PAGES * HV_PAGE_SIZE)
#define NSECTIONS (SBUF_BYTES / NVSP_SEND_SECTION_SIZE)
#define NIC_MTU 9000u
#define CTRL_SEC 0u /* send section the guest uses for RNDIS control */
#define BURST 32
#define RX_KEEP 1024 /* mbufs a test may hold from rx_burst */
#define INBOX_MAX 1024
#define XFER_KEEP_RANGES 64
#define PKT_BUF (64u << 10)
#define POOL_MBUFS 4095u
#define CTRL_SUBS 16u /* receive sub-allocations netvsp keeps for control */
#define V61 NVSP_PROTOCOL_VERSION_61
#define FRAME_1514 1514u

extern struct rte_mempool *g_pool;

/* A completion from the root. */
struct comp {
    uint64_t tid;
    uint32_t len; /* payload bytes, ring padding included */
    uint8_t msg[NVSP_MSG_SIZE_61];
};

/* A transfer-page packet from the root. */
struct xfer {
    uint64_t tid;
    uint16_t flags;
    uint16_t pageset;
    uint32_t payload_len;
    struct nvsp_msg_rndis_pkt nvsp;
    uint32_t nranges;
    struct vmbus_xfer_range r[XFER_KEEP_RANGES];
    bool completed;
};

/* An in-band message from the root (NVSP 5 SEND_INDIRECTION_TABLE). */
struct inband {
    uint32_t len;
    uint8_t msg[256];
};

#define SUBS_MAX 8u

/* One partition with its NIC, and the guest inside it (this test). */
struct vm {
    struct hv_host *host;
    struct hv_partition *part;
    struct vmbus_server *srv;
    struct netvsp *nic;
    struct vsw_port *port;
    struct hv_guest *g;
    struct vmbus_client *client;
    struct vmbus_gchan *ch;   /* the channel the helpers use now (use_chan) */
    struct vmbus_gchan *prim; /* the primary */
    struct vmbus_gchan *sub[SUBS_MAX]; /* sub-channels by index (0 unused) */
    uint32_t relid;
    uint8_t mac[6];
    uint8_t *rbuf, *sbuf, *scratch;
    uint64_t rbuf_pfn, sbuf_pfn, scratch_pfn;
    uint32_t rgpadl, sgpadl;
    uint32_t msg_size;        /* NVSP message size the guest sends */
    uint64_t caps_extra;      /* NDIS_CONFIG capabilities besides 802.1Q */
    uint32_t sub_size, nsub;  /* receive-buffer partitioning the root chose */
    uint64_t next_tid;
    uint32_t next_req;
    struct rte_mbuf *rx[RX_KEEP];
    unsigned nrx;
    unsigned ncomp, nxfer;
    struct comp comp[INBOX_MAX];
    struct xfer xfer[INBOX_MAX];
    unsigned ninband;
    struct inband inband[16];
    uint8_t pkt[PKT_BUF];
};

struct fix {
    struct hv_host *host;
    struct vm *a, *b;
};

extern const uint8_t MAC_A[6];
extern const uint8_t MAC_B[6];
extern const uint8_t MAC_OTHER[6];
extern const uint8_t MAC_BCAST[6];
extern const uint8_t MAC_MCAST[6];

struct grange {
    uint32_t byte_count, byte_offset;
    uint32_t npfn;
    uint64_t pfn[8];
};

/* Counters: the NIC's and the port's now; the errors a step added. */
struct netvsp_stats nstats(struct vm *v);
struct vsw_port_stats pstats(struct vm *v);
void expect_errs(struct vm *v, const struct netvsp_stats *before, enum netvsp_err e,
                 uint64_t n);
void expect_err(struct vm *v, const struct netvsp_stats *before, enum netvsp_err e);
void expect_no_err(struct vm *v, const struct netvsp_stats *before);
/* The guest's ring: put a packet; pump (rx_burst until the root is idle,
 * returns the frames it handed the switch, kept in v->rx); collect what the
 * root wrote into the inbox (v->comp, v->xfer) and find completions in it;
 * complete the root's transfers. */
void put_pkt(struct vm *v, uint16_t type, uint16_t flags, uint64_t tid, const void *ext,
             uint32_t ext_len, const void *msg, uint32_t len);
void nvsp_send(struct vm *v, const void *msg, uint32_t len, uint64_t tid, bool want);
unsigned pump(struct vm *v);
void free_rx(struct vm *v);
void inbox_clear(struct vm *v);
int collect_raw(struct vm *v);
int collect(struct vm *v);
const struct comp *find_comp(const struct vm *v, uint64_t tid);
unsigned count_comp(const struct vm *v, uint64_t tid);
uint32_t comp_status(const struct vm *v, uint64_t tid, uint32_t type);
void complete_xfer_raw(struct vm *v, uint64_t tid);
void complete_all(struct vm *v);
/* NVSP set-up as a guest does it, each step checked or its status
 * returned. */
uint64_t nvsp_request(struct vm *v, const void *msg, uint32_t len, void *out,
                      uint32_t out_size, uint32_t *ans_len);
uint32_t nvsp_init(struct vm *v, uint32_t minv, uint32_t maxv,
                   struct nvsp_msg_init_complete *out, uint32_t *ans_len);
void ndis_config(struct vm *v, uint32_t mtu);
void ndis_ver(struct vm *v);
uint32_t recv_buf(struct vm *v, uint32_t gpadl, struct nvsp_msg_recv_buf_complete *out,
                  uint32_t *ans_len);
uint32_t send_buf(struct vm *v, uint32_t gpadl, struct nvsp_msg_send_buf_complete *out);
void nvsp_setup(struct vm *v, uint32_t ver, uint32_t ndis_mtu);
/* RNDIS in send sections: control requests with their answers, OID query
 * and set, INIT; bring_up does NVSP and RNDIS set-up and opens the packet
 * filter. */
uint8_t *section(struct vm *v, uint32_t sec);
uint64_t rndis_pkt_section(struct vm *v, uint32_t channel, uint32_t sec, uint32_t len);
uint64_t rndis_send_section(struct vm *v, uint32_t sec, uint32_t channel, const void *msg,
                            uint32_t len);
void check_ctrl_xfer(const struct vm *v, const struct xfer *x);
uint32_t rndis_ctrl(struct vm *v, const void *msg, uint32_t len, void *resp, uint32_t cap,
                    uint32_t *resp_len);
uint32_t build_oid_req(struct vm *v, uint8_t *buf, uint32_t type, uint32_t oid,
                       const void *in, uint32_t in_len);
uint32_t rndis_query(struct vm *v, uint32_t oid, const void *in, uint32_t in_len,
                     void *out, uint32_t *out_len);
uint32_t query_u32(struct vm *v, uint32_t oid);
uint32_t rndis_set_type(struct vm *v, uint32_t type, uint32_t oid, const void *in,
                        uint32_t in_len);
uint32_t rndis_set(struct vm *v, uint32_t oid, const void *in, uint32_t in_len);
void set_filter(struct vm *v, uint32_t filter);
void rndis_init(struct vm *v, struct rndis_init_cmplt *out);
void bring_up_ver(struct vm *v, uint32_t ver, uint32_t ndis_mtu);
void bring_up(struct vm *v);
/* Frames: made, wrapped in PACKET_MSGs with PPIs, sent to the guest
 * through tx_burst, and read back from the receive buffer. */
void make_frame(uint8_t *f, uint32_t len, const uint8_t dst[6], uint8_t seed);
/* A frame of len bytes to dst with real IPv4 (ip_opt bytes of options) or
 * IPv6 and TCP (tcp_opt bytes of options) or UDP headers, lengths filled
 * in, the IPv4 header checksum right and the L4 checksum wrong; returns the
 * L4 header's offset. Is the L4 checksum of such a frame right? */
uint32_t make_l4_frame(uint8_t *f, uint32_t len, const uint8_t dst[6], unsigned ipv,
                       uint8_t proto, uint32_t ip_opt, uint32_t tcp_opt);
bool l4_csum_ok(const uint8_t *f, uint32_t len);
uint32_t put_ppi(uint8_t *p, uint32_t type, uint32_t value);
uint32_t build_packet(uint8_t *out, const uint8_t *ppis, uint32_t ppi_len,
                      const uint8_t *frame, uint32_t flen);
uint32_t build_packet_padded(uint8_t *out, const uint8_t *frame, uint32_t flen);
void assert_mbuf_eq(struct rte_mbuf *m, const uint8_t *data, uint32_t len);
struct rte_mbuf *frame_mbuf(const uint8_t *d, uint32_t len);
uint16_t to_guest(struct vm *v, struct rte_mbuf **m, uint16_t n);
uint16_t frame_to_guest(struct vm *v, const uint8_t *d, uint32_t len);
const uint8_t *rx_frame(const struct vm *v, const struct vmbus_xfer_range *r,
                        uint32_t *len, uint32_t *csum);
unsigned data_frames(const struct vm *v);
/* GPA-direct ranges over the guest's scratch pages. */
uint32_t gpa_ext(uint8_t *ext, const struct grange *r, uint32_t n, uint32_t count_field);
uint64_t rndis_pkt_gpa(struct vm *v, uint32_t channel, uint32_t sec, uint32_t sec_len,
                       const uint8_t *ext, uint32_t ext_len);
struct grange scratch_range(struct vm *v, uint32_t page, uint32_t off, uint32_t count);
/* Partitions, channels and buffers; the cmocka set-up and tear-down (a
 * fixture with VM a; every mbuf back in the pool at the end). */
void open_chan(struct vm *v);
void reopen(struct vm *v);
uint32_t grant(struct vm *v, uint32_t pages, uint64_t *pfn_out);
struct vm *vm_create(struct fix *f, const char *name, const uint8_t mac[6],
                     uint32_t nic_mtu);
/* The same with a NIC of `queues` channels. */
struct vm *vm_create_q(struct fix *f, const char *name, const uint8_t mac[6], uint32_t nic_mtu,
                       uint32_t queues);
/* Sub-channels as Linux gets them: NVSP 5 SUBCHANNEL asking for `ask`;
 * the NIC's offers served (the control thread's turn) and each sub-channel
 * granted opened. Returns the number granted (v->sub[1..n]); *status the
 * answer's status if not NULL. */
uint32_t open_subs(struct vm *v, uint32_t ask, uint32_t *status);
/* The guest opens sub-channel i's offer (again). */
void open_sub(struct vm *v, uint32_t i);
/* Make the ring helpers (put_pkt, collect, ...) work on channel i: 0 the
 * primary, else sub-channel i. */
void use_chan(struct vm *v, uint32_t i);
void vm_destroy(struct vm *v);
int setup(void **state);
int teardown(void **state);
int group_setup(void **state);
int group_teardown(void **state);
/* One GPA-direct frame of len bytes and ethertype et: how many the switch
 * got. Free bytes in the root's ring to the guest. */
int send_sized(struct vm *v, uint32_t len, uint16_t et);
uint32_t root_ring_free(struct vm *v);
/* The value of PPI `type` in the PACKET_MSG of receive range r; false if
 * absent. */
bool range_ppi(const struct vm *v, const struct vmbus_xfer_range *r, uint32_t type,
               uint32_t *val);

static inline struct fix *F(void **state)
{
    return *state;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

#endif
