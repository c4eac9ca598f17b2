/*
 * libFuzzer harness for netvsp (netvsp.h): every NVSP and RNDIS message a
 * guest can send, with the root's side of the data path running between
 * them.
 *
 * Made once, on the first input, and kept: EAL on one lcore, an mbuf pool, a
 * direct partition with a netvsp NIC on its VMBus server, the guest (this
 * harness) connected with the real VMBus client, and four buffers it granted
 * to the NIC's channel (receive buffer, send buffer, and two that are too
 * small for either). Every input starts on a fresh channel (close + open,
 * which gives netvsp a new connection) with a zeroed send buffer and
 * scratch area, so inputs are independent and crashes reproduce.
 *
 * Input: a sequence of actions, each a control byte c and its arguments
 * (missing bytes read as zero). c % 14:
 *   0  NVSP in-band: flags byte (bit 0 completion requested; bit 1 an
 *      undefined VMBus flag), tid byte, length byte (% 49), message bytes.
 *      In SEND_RECV_BUF / SEND_SEND_BUF a GPADL field below 0x80000000
 *      names granted buffer (value % 4), so ids do not depend on history.
 *   1  NVSP GPA-direct: range byte r (bits 0-2: ranges written, at most 6;
 *      bit 7: a raw u32 range count follows; bit 6: byte counts are u32,
 *      else u16; bit 5: each range's PFN count is a byte % 9, else what its
 *      bytes need), per range: count, u16 byte offset (% 4352, so some are
 *      >= 4096), PFNs as a selector byte s and a value: s % 4 = send
 *      buffer page / scratch page / receive buffer page (value byte), or
 *      any page, a u32 (a u64 if s has bit 7), in or outside memory; then
 *      the NVSP message as in 0.
 *   2  write into the send buffer: section byte, u16 offset, u16 length,
 *      bytes.
 *   3  RNDIS in a send section: section byte (bit 7: a raw u32 index
 *      follows), channel byte (bits 0-1 channel type; bit 7: no completion
 *      requested), u16 size named in the NVSP message (% 6400), then the
 *      bytes written at the section's start (at most size, and what fits).
 *   4  guest completion: selector byte (< 0xc0: one of the transfers the
 *      root sent, else a raw u64 id follows), status byte; bit 5 of the
 *      selector: a raw payload (length byte % 41, bytes) instead of 108.
 *   5  frames from the switch: count byte (1 + % 8), per frame u16 length
 *      (% 9200), kind byte (bits 0-1 destination; 2 IPv4 TCP checksum
 *      request, 3 IPv6 UDP one; 4 VLAN; 5 real IP/TCP-or-UDP headers with
 *      the request's header lengths; 6 verified by an uplink; 7 with 5,
 *      a large TCP segment, vsw_frame_tso_request), fill byte;
 *      tx_burst, then tx_flush.
 *   6  run the port: burst size byte (0 means 32), rx_burst until it
 *      returns 0, then tx_flush; every mbuf is checked and freed.
 *   7  guest reads its ring: transfers remembered for 4; bit 0 of the
 *      next byte: complete all of them at once.
 *   8  write into the scratch pages (GPA-direct data): u16 offset, length
 *      byte, bytes.
 *   9  guest writes a ring header field (tx/rx ring, write/read index or
 *      interrupt mask) with a u32: corrupt indices.
 *  10  hv_host_run (channels failed by netvsp close here).
 *  11  close and reopen the channel.
 *  12  RNDIS through GPA-direct only: length u16 (% 2048), u16 offset
 *      (% 8192) into the scratch area, the bytes, a channel-type byte; sent
 *      as one range, no send section.
 *  13  flood: the previous action again, 1 + (byte % 32) times, with the
 *      same arguments (many control requests outstanding, rings full).
 * A control byte of 0xf0 or more is one of two sub-channel actions instead
 * (the NIC has SUB_QUEUES channels; a guest asks for sub-channels with an
 * NVSP 5 SUBCHANNEL message through action 0):
 *  0xf0..0xf3  hv_host_run (the NIC's offers are made there), then open
 *      every sub-channel offered and not open yet, as Linux's callback does.
 *  0xf4..0xf7  the guest closes the sub-channel the ring actions use, alone
 *      (nothing if that is the primary); it stays offered, and the next
 *      0xf0..0xf3 opens it again. The ring actions go to the primary.
 *  0xf8..0xff  the channel the ring actions (0, 1, 3, 4, 9, 12 and 13)
 *      use from now on: byte % SUB_QUEUES, 0 the primary, else that
 *      sub-channel if open (else the primary). Action 7 and the end of an
 *      input read every open channel.
 *
 * Checked besides sanitizers: frames out of rx_burst are 14..9014 bytes,
 * or large sends that hold contract B (vsw-frame.h) within what LSOv2 offers,
 * and go through the switch's tag reading and software checksums,
 * transfer ranges from the root lie inside the largest granted buffer, and
 * after every input all mbufs are back in the pool. With FUZZ_NETVSP_DEBUG
 * set, each input's effect (negotiated state, frames, transfers, errors by
 * reason) is printed: how the seed corpus was checked.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <netinet/in.h>

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "hv-guest.h"
#include "hv.h"
#include "netvsp.h"
#include "nvsp-proto.h"
#include "rndis-proto.h"
#include "vmbus-client.h"
#include "vmbus-ring.h"
#include "vmbus-server.h"
#include "vsw-frame.h"
#include "vsw-port-provider.h"

#define MEM_BYTES (16ull << 20)
#define RING_PAGES 4u
#define SUB_QUEUES 4u /* channels the NIC may have */
#define RBUF_PAGES 64u
#define SBUF_PAGES 24u /* 16 sections */
#define SCRATCH_PAGES 8u
#define SBUF_BYTES (SBUF_PAGES * HV_PAGE_SIZE)
#define SCRATCH_BYTES (SCRATCH_PAGES * HV_PAGE_SIZE)
#define NSECTIONS (SBUF_BYTES / NVSP_SEND_SECTION_SIZE)
#define NGPADL 4
#define POOL_MBUFS 2047u
#define MAX_TIDS 256
#define MAX_ACTIONS 512
#define PKT_BUF (64u << 10)
#define FRAME_MAX 9014u
#define LSO_FRAME_MAX (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_netvsp: invariant failed at line %d: %s\n", __LINE__, #cond);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const uint8_t NIC_MAC[6] = {0x00, 0x15, 0x5d, 0x00, 0x00, 0x01};

static struct {
    bool ready;
    struct rte_mempool *pool;
    struct hv_host *host;
    struct hv_partition *part;
    struct vmbus_server *srv;
    struct netvsp *nic;
    struct vsw_port *port;
    struct hv_guest *g;
    struct vmbus_client *client;
    struct vmbus_gchan *ch;   /* the channel ring actions use */
    struct vmbus_gchan *prim; /* the primary */
    struct vmbus_gchan *sub[SUB_QUEUES];
    uint32_t relid;
    uint64_t mem_pages;
    uint64_t rbuf_pfn, sbuf_pfn, scratch_pfn;
    uint8_t *sbuf, *scratch;
    uint32_t gpadl[NGPADL];
    uint64_t tids[MAX_TIDS];
    unsigned ntids;
    uint64_t next_tid;
    bool debug; /* FUZZ_NETVSP_DEBUG set: what each input did, on stderr */
    unsigned frames_out, xfers_in, comps_in;
    uint8_t pkt[PKT_BUF];
} F;

/* --- input reader -------------------------------------------------------- */

struct in {
    const uint8_t *p;
    size_t n;
};

static uint8_t u8(struct in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint16_t u16(struct in *in)
{
    return (uint16_t)(u8(in) | (u8(in) << 8));
}

static uint32_t u32(struct in *in)
{
    return (uint32_t)u16(in) | ((uint32_t)u16(in) << 16);
}

static uint64_t u64(struct in *in)
{
    return (uint64_t)u32(in) | ((uint64_t)u32(in) << 32);
}

/* Copy up to len input bytes to dst (the rest zero); returns bytes copied. */
static size_t bytes(struct in *in, uint8_t *dst, size_t len)
{
    size_t k = len < in->n ? len : in->n;
    memcpy(dst, in->p, k);
    memset(dst + k, 0, len - k);
    in->p += k;
    in->n -= k;
    return k;
}

/* --- set-up -------------------------------------------------------------- */

static void eal_init(void)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "--file-prefix=fnetvsp%d", (int)getpid());
    char *args[] = {"fuzz_netvsp", "-l", "0", "--no-huge", "-m", "128", "--no-pci",
                    "--no-shconf", "--no-telemetry", prefix, "--log-level", "*:error"};
    CHECK(rte_eal_init((int)(sizeof(args) / sizeof(args[0])), args) >= 0);
    /* EAL leaves an empty runtime directory behind (--no-shconf). */
    rmdir(rte_eal_get_runtime_dir());
    F.pool = rte_pktmbuf_pool_create("fnetvsp", POOL_MBUFS, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                     (int)rte_socket_id());
    CHECK(F.pool);
}

static uint32_t grant(uint32_t pages, uint64_t *first_out)
{
    uint64_t first, pfns[RBUF_PAGES];
    uint32_t id = 0;
    CHECK(pages <= RBUF_PAGES);
    CHECK(hv_guest_alloc_pages(F.g, pages, &first) == 0);
    for (uint32_t i = 0; i < pages; i++)
        pfns[i] = first + i;
    CHECK(vmbus_client_gpadl_create(F.client, F.relid, pfns, pages, &id) == 0);
    if (first_out)
        *first_out = first;
    return id;
}

static void open_chan(void)
{
    struct vmbus_gchan_params gp = {.tx_pages = RING_PAGES, .rx_pages = RING_PAGES};
    CHECK(vmbus_client_open(F.client, F.relid, &gp, &F.prim) == 0);
    F.ch = F.prim;
    F.ntids = 0;
}

/* Sub-channels first, as Linux closes them (the root has rescinded them
 * if the primary closed on its side). */
static void close_chan(void)
{
    for (unsigned i = 1; i < SUB_QUEUES; i++) {
        if (F.sub[i])
            vmbus_client_close(F.sub[i]);
        F.sub[i] = NULL;
    }
    if (F.prim)
        vmbus_client_close(F.prim);
    F.ch = F.prim = NULL;
}

/* The root's offers, then every sub-channel offered and not open. A
 * sub-channel rescinded (its primary closed on the root's side) is let go
 * first. */
static void open_subs(void)
{
    while (hv_host_run(F.host, 0) > 0)
        ;
    vmbus_client_poll(F.client);
    for (unsigned i = 1; i < SUB_QUEUES; i++) {
        if (F.sub[i] && vmbus_gchan_rescinded(F.sub[i])) {
            if (F.ch == F.sub[i])
                F.ch = F.prim;
            vmbus_client_close(F.sub[i]);
            F.sub[i] = NULL;
        }
    }
    static struct vmbus_offer_info oi[VMBUS_CLIENT_MAX_OFFERS];
    int n = vmbus_client_offers(F.client, oi, VMBUS_CLIENT_MAX_OFFERS);
    for (int k = 0; k < n; k++) {
        unsigned i = oi[k].sub_channel_index;
        if (oi[k].rescinded || i == 0 || i >= SUB_QUEUES || F.sub[i])
            continue;
        struct vmbus_gchan_params gp = {.tx_pages = RING_PAGES, .rx_pages = RING_PAGES};
        if (vmbus_client_open(F.client, oi[k].relid, &gp, &F.sub[i]) < 0)
            F.sub[i] = NULL;
    }
}

/* The guest closes the sub-channel the ring actions use. */
static void close_sub(void)
{
    for (unsigned i = 1; i < SUB_QUEUES; i++) {
        if (F.sub[i] && F.ch == F.sub[i]) {
            vmbus_client_close(F.sub[i]);
            F.sub[i] = NULL;
            F.ch = F.prim;
        }
    }
}

static void setup_once(void)
{
    eal_init();
    CHECK(hv_host_create(&F.host) == 0);
    struct hv_partition_params pp = {
        .name = "fuzz-netvsp", .memory_bytes = MEM_BYTES, .cls = &hv_direct_partition_class};
    CHECK(hv_partition_create(F.host, &pp, &F.part) == 0);
    CHECK(vmbus_server_create(F.part, &F.srv) == 0);
    struct netvsp_params np = {.port_name = "fuzz/eth0",
                               .nic_name = "eth0",
                               .mtu = 9000,
                               .pool = F.pool,
                               .queues = SUB_QUEUES};
    memcpy(np.mac, NIC_MAC, 6);
    CHECK(netvsp_create(F.srv, &np, &F.nic) == 0);
    F.port = netvsp_port(F.nic);
    CHECK(hv_partition_start(F.part) == 0);
    CHECK(hv_direct_partition_attach(F.part, &F.g) == 0);
    CHECK(vmbus_client_connect(F.g, 2000, &F.client) == 0);
    struct vmbus_guid cls = VMBUS_GUID_NETVSC;
    struct vmbus_offer_info oi;
    CHECK(vmbus_client_find(F.client, &cls, 0, &oi) == 0);
    F.relid = oi.relid;
    F.mem_pages = MEM_BYTES >> HV_PAGE_SHIFT;
    F.gpadl[0] = grant(RBUF_PAGES, &F.rbuf_pfn);
    F.gpadl[1] = grant(SBUF_PAGES, &F.sbuf_pfn);
    F.gpadl[2] = grant(4, NULL); /* too small for a receive buffer */
    F.gpadl[3] = grant(1, NULL); /* too small for either */
    CHECK(hv_guest_alloc_pages(F.g, SCRATCH_PAGES, &F.scratch_pfn) == 0);
    F.sbuf = hv_guest_pfn_ptr(F.g, F.sbuf_pfn);
    F.scratch = hv_guest_pfn_ptr(F.g, F.scratch_pfn);
    F.debug = getenv("FUZZ_NETVSP_DEBUG") != NULL;
    F.ready = true;
}

/* --- guest actions ------------------------------------------------------- */

static void put(uint16_t type, uint16_t flags, uint64_t tid, const void *ext, uint32_t ext_len,
                const void *msg, uint32_t len)
{
    struct vmbus_ring *tx = vmbus_gchan_tx(F.ch);
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
    if (vmbus_ring_put(tx, type, flags, tid, ext, ext_len, &iov, len ? 1 : 0) == 0)
        vmbus_ring_publish(tx);
}

/* The NVSP message of actions 0 and 1: flags, tid, length, bytes. */
static uint32_t nvsp_msg(struct in *in, uint8_t *msg, uint16_t *flags, uint64_t *tid)
{
    uint8_t fl = u8(in);
    *flags = (uint16_t)((fl & 1 ? VMBUS_PKT_FLAG_COMPLETION_REQUESTED : 0) | (fl & 2 ? 0x2 : 0));
    *tid = u8(in);
    uint32_t len = u8(in) % 49u;
    bytes(in, msg, len);
    uint32_t type;
    memcpy(&type, msg, 4);
    if ((type == NVSP_MSG1_SEND_RECV_BUF || type == NVSP_MSG1_SEND_SEND_BUF) && len >= 8) {
        uint32_t g;
        memcpy(&g, msg + 4, 4);
        if (g < 0x80000000u) {
            g = F.gpadl[g % NGPADL];
            memcpy(msg + 4, &g, 4);
        }
    }
    return len;
}

static void act_nvsp_inband(struct in *in)
{
    uint8_t msg[64];
    uint16_t flags;
    uint64_t tid;
    uint32_t len = nvsp_msg(in, msg, &flags, &tid);
    put(VMBUS_PKT_DATA_INBAND, flags, tid, NULL, 0, msg, len);
}

static uint64_t pick_pfn(struct in *in)
{
    uint8_t s = u8(in);
    switch (s % 4) {
    case 0:
        return F.sbuf_pfn + u8(in) % SBUF_PAGES;
    case 1:
        return F.scratch_pfn + u8(in) % SCRATCH_PAGES;
    case 2:
        return F.rbuf_pfn + u8(in) % RBUF_PAGES;
    default:
        return s & 0x80 ? u64(in) : u32(in);
    }
}

static void act_nvsp_gpa(struct in *in)
{
    uint8_t ext[8 + 6 * (8 + 8 * 8)];
    uint8_t r = u8(in);
    uint32_t nr = r & 7u;
    if (nr > 6)
        nr = 6;
    uint32_t count = r & 0x80 ? u32(in) : nr;
    uint32_t hdr[2] = {0, count};
    memcpy(ext, hdr, 8);
    uint32_t off = 8;
    for (uint32_t i = 0; i < nr; i++) {
        uint32_t bc = r & 0x40 ? u32(in) : u16(in);
        uint32_t bo = u16(in) % 4352u;
        uint64_t need = ((uint64_t)bo + bc + HV_PAGE_SIZE - 1) / HV_PAGE_SIZE;
        uint32_t np = r & 0x20 ? u8(in) % 9u : (uint32_t)(need > 8 ? 8 : need);
        uint32_t rh[2] = {bc, bo};
        memcpy(ext + off, rh, 8);
        off += 8;
        for (uint32_t j = 0; j < np; j++) {
            uint64_t pfn = pick_pfn(in);
            memcpy(ext + off, &pfn, 8);
            off += 8;
        }
    }
    uint8_t msg[64];
    uint16_t flags;
    uint64_t tid;
    uint32_t len = nvsp_msg(in, msg, &flags, &tid);
    put(VMBUS_PKT_DATA_USING_GPA_DIRECT, flags, tid, ext, off, msg, len);
}

static void act_write_sbuf(struct in *in)
{
    uint32_t start = (u8(in) % NSECTIONS) * NVSP_SEND_SECTION_SIZE + u16(in) % NVSP_SEND_SECTION_SIZE;
    uint32_t len = u16(in);
    if (len > SBUF_BYTES - start)
        len = SBUF_BYTES - start;
    bytes(in, F.sbuf + start, len < in->n ? len : in->n);
}

static void act_rndis_section(struct in *in)
{
    uint8_t s = u8(in);
    uint32_t sec = s & 0x80 ? u32(in) : s % NSECTIONS;
    uint8_t ch = u8(in);
    uint32_t size = u16(in) % 6400u;
    if (sec < NSECTIONS) {
        uint32_t k = size < NVSP_SEND_SECTION_SIZE ? size : NVSP_SEND_SECTION_SIZE;
        bytes(in, F.sbuf + (size_t)sec * NVSP_SEND_SECTION_SIZE, k < in->n ? k : in->n);
    }
    struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT,
                                   .channel_type = ch & 3u,
                                   .send_buf_section_index = sec,
                                   .send_buf_section_size = size};
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    memcpy(body, &m, sizeof(m));
    put(VMBUS_PKT_DATA_INBAND, ch & 0x80 ? 0 : VMBUS_PKT_FLAG_COMPLETION_REQUESTED, ++F.next_tid,
        NULL, 0, body, sizeof(body));
}

static void act_rndis_gpa(struct in *in)
{
    uint32_t len = u16(in) % 2048u;
    uint32_t off = u16(in) % 8192u;
    if (len == 0)
        len = 1;
    bytes(in, F.scratch + off, len);
    uint8_t ext[8 + 8 + 8 * 3];
    uint32_t hdr[4] = {0, 1, len, off % HV_PAGE_SIZE};
    memcpy(ext, hdr, sizeof(hdr));
    uint32_t np = (off % HV_PAGE_SIZE + len + HV_PAGE_SIZE - 1) / HV_PAGE_SIZE;
    for (uint32_t i = 0; i < np; i++) {
        uint64_t pfn = F.scratch_pfn + off / HV_PAGE_SIZE + i;
        memcpy(ext + 16 + 8 * i, &pfn, 8);
    }
    struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT,
                                   .channel_type = u8(in) & 1u,
                                   .send_buf_section_index = NVSP_SECTION_NONE};
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    memcpy(body, &m, sizeof(m));
    put(VMBUS_PKT_DATA_USING_GPA_DIRECT, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, ++F.next_tid, ext,
        16 + 8 * np, body, sizeof(body));
}

static void act_completion(struct in *in)
{
    uint8_t s = u8(in);
    uint64_t tid;
    if (s < 0xc0 && F.ntids) {
        unsigned i = s % F.ntids;
        tid = F.tids[i];
        F.tids[i] = F.tids[--F.ntids];
    } else {
        tid = u64(in);
    }
    uint8_t msg[48] = {0};
    uint32_t len = 8;
    uint32_t m[2] = {NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE, u8(in)};
    memcpy(msg, m, sizeof(m));
    if (s & 0x20) {
        len = u8(in) % 41u;
        bytes(in, msg, len);
    }
    put(VMBUS_PKT_COMP, 0, tid, NULL, 0, msg, len);
}

/* Give a frame from the switch real IP and TCP/UDP headers whose lengths
 * match it, with the header lengths a checksum request carries (contract
 * A), so netvsp's checksum finishing gets past its checks: IPv4 (with
 * fill % 4 words of options) unless the frame asks for IPv6, TCP unless it
 * asks for UDP. Only the length fields and the protocol are made right. */
static void put_l3_l4(struct rte_mbuf *m, uint8_t kind, uint8_t fill)
{
    uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
    bool v6 = kind & 0x08, udp = v6;
    uint32_t len = m->pkt_len;
    uint32_t l3 = v6 ? 40 : 20 + 4u * (fill & 3u);
    m->l2_len = 14;
    m->l3_len = l3;
    if (v6) {
        p[12] = 0x86;
        p[13] = 0xdd;
        p[14] = 0x60;
        p[18] = (uint8_t)((len - 54) >> 8);
        p[19] = (uint8_t)(len - 54);
        p[20] = udp ? IPPROTO_UDP : IPPROTO_TCP;
    } else {
        p[12] = 0x08;
        p[13] = 0x00;
        p[14] = (uint8_t)(0x40 | (l3 / 4));
        p[16] = (uint8_t)((len - 14) >> 8);
        p[17] = (uint8_t)(len - 14);
        p[20] = p[21] = 0;
        p[23] = udp ? IPPROTO_UDP : IPPROTO_TCP;
        if (fill & 0x80)
            m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
    }
    if (!udp)
        p[14 + l3 + 12] = 0x50;
}

static void act_frames(struct in *in)
{
    static const uint8_t dsts[4][6] = {
        {0x00, 0x15, 0x5d, 0x00, 0x00, 0x01}, /* the NIC */
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
        {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01},
        {0x00, 0x15, 0x5d, 0x00, 0x00, 0x99},
    };
    unsigned n = 1 + u8(in) % 8u;
    struct rte_mbuf *m[8];
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++) {
        uint32_t len = u16(in) % 9200u;
        uint8_t kind = u8(in), fill = u8(in);
        struct rte_mbuf *head = rte_pktmbuf_alloc(F.pool);
        if (!head)
            break;
        uint32_t done = 0;
        bool ok = true;
        while (done < len && ok) {
            struct rte_mbuf *last = rte_pktmbuf_lastseg(head);
            uint32_t room = rte_pktmbuf_tailroom(last);
            if (room == 0) {
                struct rte_mbuf *nm = rte_pktmbuf_alloc(F.pool);
                ok = nm && rte_pktmbuf_chain(head, nm) == 0;
                if (nm && !ok)
                    rte_pktmbuf_free(nm);
                continue;
            }
            uint32_t c = len - done < room ? len - done : room;
            uint8_t *p = (uint8_t *)rte_pktmbuf_append(head, (uint16_t)c);
            for (uint32_t j = 0; j < c; j++)
                p[j] = (uint8_t)(fill + done + j);
            if (done == 0 && c >= 6)
                memcpy(p, dsts[kind & 3], 6);
            done += c;
        }
        if (!ok) {
            rte_pktmbuf_free(head);
            break;
        }
        if (kind & 0x04)
            head->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM;
        if (kind & 0x08)
            head->ol_flags |= RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM;
        if (kind & 0x10) {
            head->ol_flags |= RTE_MBUF_F_TX_VLAN;
            head->vlan_tci = (uint16_t)(kind * 37u);
        }
        if ((kind & 0x20) && len >= 14 + 60 + 20 && head->data_len >= 14 + 60 + 20) {
            put_l3_l4(head, kind, fill);
            /* A large segment (contract B), as the switch hands it to a
             * port that takes them whole (a guest with RSC on). */
            if (kind & 0x80)
                (void)vsw_frame_tso_request(head, head->l2_len + head->l3_len,
                                            (uint16_t)(536u + fill), 0, 9000);
        }
        if (kind & 0x40)
            head->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD | RTE_MBUF_F_RX_IP_CKSUM_GOOD;
        m[k++] = head;
    }
    if (k) {
        F.port->cls->tx_burst(F.port, m, (uint16_t)k);
        F.port->cls->tx_flush(F.port);
    }
}

static void run_port(uint16_t burst)
{
    struct rte_mbuf *pk[64];
    for (int round = 0; round < 256; round++) {
        F.port->rx_busy = false;
        uint16_t n = F.port->cls->rx_burst(F.port, pk, burst);
        CHECK(n <= burst);
        for (uint16_t i = 0; i < n; i++) {
            static uint8_t frame[LSO_FRAME_MAX];
            struct rte_mbuf *m = pk[i];
            /* A large send is a frame of contract B (vsw-frame.h): one
             * segment's IP packet within the NIC's MTU, the headers
             * inside the frame, no more than LSOv2 offers. */
            if (m->ol_flags & RTE_MBUF_F_TX_TCP_SEG) {
                CHECK(m->pkt_len <= LSO_FRAME_MAX);
                CHECK(m->tso_segsz >= 1);
                CHECK(m->ol_flags & RTE_MBUF_F_TX_TCP_CKSUM);
                CHECK((uint32_t)m->l2_len + m->l3_len + m->l4_len < m->pkt_len);
                CHECK((uint32_t)m->tso_segsz + m->l3_len + m->l4_len <= FRAME_MAX - 14);
                CHECK(m->pkt_len - m->l2_len - m->l3_len - m->l4_len <= RNDIS_LSO_MAX_SIZE);
            } else {
                CHECK(m->pkt_len <= FRAME_MAX);
            }
            CHECK(m->pkt_len >= 14);
            uint32_t segs_len = 0;
            for (struct rte_mbuf *s = m; s; s = s->next)
                segs_len += s->data_len;
            CHECK(segs_len == m->pkt_len);
            CHECK(rte_pktmbuf_read(m, 0, m->pkt_len, frame) != NULL);
            /* What the switch does with it next: read its tags; finish a
             * checksum left to the network (on a copy, as an uplink). */
            struct vsw_l2_info l2;
            vsw_l2_parse(m, &l2);
            CHECK(l2.l3_off == 14 + l2.tags_len);
            if (m->ol_flags & VSW_TX_CSUM_FLAGS) {
                CHECK(m->l2_len == l2.l3_off);
                struct rte_mbuf *c = rte_pktmbuf_copy(m, F.pool, 0, UINT32_MAX);
                if (c) {
                    int rc = vsw_frame_cksum_finish(c, VSW_TX_CSUM_FLAGS);
                    CHECK(rc == 0 || rc == -EINVAL || rc == -EAGAIN);
                    rte_pktmbuf_free(c);
                }
            }
            rte_pktmbuf_free(m);
            F.frames_out++;
        }
        /* A round of control messages returns no frame but says it was
         * busy (its budget may be spent with more waiting). */
        if (n == 0 && !F.port->rx_busy)
            break;
    }
    F.port->cls->tx_flush(F.port);
}

static void act_run(struct in *in)
{
    uint16_t b = u8(in) % 65u;
    run_port(b ? b : 32);
}

static void complete_all(void)
{
    uint8_t msg[NVSP_MSG_SIZE_61] = {0};
    uint32_t m[2] = {NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE, NVSP_STAT_SUCCESS};
    memcpy(msg, m, sizeof(m));
    for (unsigned i = 0; i < F.ntids; i++)
        put(VMBUS_PKT_COMP, 0, F.tids[i], NULL, 0, msg, sizeof(msg));
    F.ntids = 0;
}

static void drain_one(struct vmbus_gchan *ch)
{
    struct vmbus_ring *rx = vmbus_gchan_rx(ch);
    for (;;) {
        int len = vmbus_ring_get(rx, F.pkt, PKT_BUF);
        if (len < 0)
            break; /* empty, or the guest broke its own ring */
        struct vmbus_pkt p;
        CHECK(vmbus_pkt_parse(F.pkt, (uint32_t)len, &p) == 0);
        CHECK(p.type == VMBUS_PKT_COMP || p.type == VMBUS_PKT_DATA_USING_XFER_PAGES ||
              p.type == VMBUS_PKT_DATA_INBAND);
        F.comps_in += p.type == VMBUS_PKT_COMP;
        if (p.type != VMBUS_PKT_DATA_USING_XFER_PAGES)
            continue;
        F.xfers_in++;
        uint16_t ps;
        const struct vmbus_xfer_range *r;
        int nr = vmbus_pkt_xfer_pages(&p, &ps, &r, 4096);
        CHECK(nr > 0);
        for (int i = 0; i < nr; i++) {
            struct vmbus_xfer_range x;
            memcpy(&x, &r[i], sizeof(x));
            CHECK(x.byte_count >= 8);
            CHECK((uint64_t)x.byte_offset + x.byte_count <= RBUF_PAGES * HV_PAGE_SIZE);
        }
        if (F.ntids < MAX_TIDS)
            F.tids[F.ntids++] = p.trans_id;
    }
    vmbus_ring_release(rx);
}

/* What the root sent on every open channel; completions go on the channel
 * in use. */
static void drain(bool complete)
{
    if (F.prim)
        drain_one(F.prim);
    for (unsigned i = 1; i < SUB_QUEUES; i++)
        if (F.sub[i])
            drain_one(F.sub[i]);
    if (complete)
        complete_all();
}

static void act_scratch(struct in *in)
{
    uint32_t off = u16(in) % SCRATCH_BYTES;
    uint32_t len = u8(in);
    if (len > SCRATCH_BYTES - off)
        len = SCRATCH_BYTES - off;
    bytes(in, F.scratch + off, len < in->n ? len : in->n);
}

static void act_ring_hdr(struct in *in)
{
    uint8_t w = u8(in);
    uint32_t v = u32(in);
    struct vmbus_ring *r = w & 1 ? vmbus_gchan_rx(F.ch) : vmbus_gchan_tx(F.ch);
    switch ((w >> 1) % 3) {
    case 0:
        __atomic_store_n(&r->hdr->write_index, v, __ATOMIC_RELEASE);
        break;
    case 1:
        __atomic_store_n(&r->hdr->read_index, v, __ATOMIC_RELEASE);
        break;
    default:
        __atomic_store_n(&r->hdr->interrupt_mask, v, __ATOMIC_RELEASE);
        break;
    }
}

/* --- one input ----------------------------------------------------------- */

static void act(unsigned op, struct in *in)
{
    switch (op) {
    case 0:
        act_nvsp_inband(in);
        break;
    case 1:
        act_nvsp_gpa(in);
        break;
    case 2:
        act_write_sbuf(in);
        break;
    case 3:
        act_rndis_section(in);
        break;
    case 4:
        act_completion(in);
        break;
    case 5:
        act_frames(in);
        break;
    case 6:
        act_run(in);
        break;
    case 7:
        drain(u8(in) & 1);
        break;
    case 8:
        act_scratch(in);
        break;
    case 9:
        act_ring_hdr(in);
        break;
    case 10:
        hv_host_run(F.host, 0);
        break;
    case 11:
        close_chan();
        open_chan();
        break;
    case 12:
        act_rndis_gpa(in);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!F.ready)
        setup_once();
    /* A fresh connection, clean guest memory. */
    hv_host_run(F.host, 0);
    close_chan();
    open_chan();
    memset(F.sbuf, 0, SBUF_BYTES);
    memset(F.scratch, 0, SCRATCH_BYTES);
    F.next_tid = 0;
    F.frames_out = F.xfers_in = F.comps_in = 0;
    struct netvsp_stats before;
    netvsp_get_stats(F.nic, &before);

    struct in in = {.p = data, .n = size};
    struct in last = {0};
    unsigned last_op = 0;
    for (int a = 0; a < MAX_ACTIONS && in.n; a++) {
        uint8_t c = u8(&in);
        if (c >= 0xf8) {
            unsigned i = u8(&in) % SUB_QUEUES;
            F.ch = i && F.sub[i] ? F.sub[i] : F.prim;
            continue;
        }
        if (c >= 0xf4) {
            close_sub();
            continue;
        }
        if (c >= 0xf0) {
            open_subs();
            continue;
        }
        unsigned op = c % 14u;
        if (op != 13) {
            last = in;
            last_op = op;
            act(op, &in);
            continue;
        }
        unsigned k = 1 + u8(&in) % 32u;
        for (unsigned i = 0; i < k && last.p && a < MAX_ACTIONS; i++, a++) {
            struct in again = last;
            act(last_op, &again);
        }
    }
    /* Let the root finish what it was given, as a worker would. */
    run_port(32);
    drain(true);
    run_port(32);
    CHECK(rte_mempool_avail_count(F.pool) == POOL_MBUFS);
    if (F.debug) {
        struct netvsp_stats st;
        netvsp_get_stats(F.nic, &st);
        fprintf(stderr, "nvsp %#x ndis %#x frame %u filter %#x rndis_ready %d control %llu | "
                        "frames from guest %u, transfers %u, completions %u | errors:",
                st.nvsp_version, st.ndis_version, st.frame_size, st.packet_filter, st.rndis_ready,
                (unsigned long long)(st.control_msgs - before.control_msgs), F.frames_out,
                F.xfers_in, F.comps_in);
        for (int e = 0; e < NETVSP_ERR_COUNT; e++)
            if (st.errors[e] != before.errors[e])
                fprintf(stderr, " %s=%llu", netvsp_err_name((enum netvsp_err)e),
                        (unsigned long long)(st.errors[e] - before.errors[e]));
        fprintf(stderr, " | lso %llu, dropped:",
                (unsigned long long)(st.lso_frames - before.lso_frames));
        for (int e = 0; e < NETVSP_LSO_DROP_COUNT; e++)
            if (st.lso_drops[e] != before.lso_drops[e])
                fprintf(stderr, " %s=%llu", netvsp_lso_drop_name((enum netvsp_lso_drop)e),
                        (unsigned long long)(st.lso_drops[e] - before.lso_drops[e]));
        fprintf(stderr, " | rsc %llu; rx_csum %d lso4 %d lso6 %d |",
                (unsigned long long)(st.rsc_frames - before.rsc_frames), st.rx_csum, st.lso4,
                st.lso6);
        fprintf(stderr, " subchannels granted %llu opened %llu, channels %u, send tables %llu |",
                (unsigned long long)(st.subchannels_granted - before.subchannels_granted),
                (unsigned long long)(st.subchannel_opens - before.subchannel_opens),
                st.channels, (unsigned long long)(st.itab_sent - before.itab_sent));
        fprintf(stderr, " per channel rx/tx:");
        for (unsigned i = 0; i < SUB_QUEUES; i++)
            fprintf(stderr, " %llu/%llu", (unsigned long long)(st.chan_rx[i] - before.chan_rx[i]),
                    (unsigned long long)(st.chan_tx[i] - before.chan_tx[i]));
        fprintf(stderr, " | disconnects=%llu\n",
                (unsigned long long)(st.disconnects - before.disconnects));
    }
    return 0;
}
