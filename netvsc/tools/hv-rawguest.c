/*
 * hv-rawguest: a guest that drives its synthetic NIC directly with raw
 * Ethernet frames (no TAP, no kernel stack): the "raw payload" front end.
 * It sends a numbered, checksummed stream to a peer MAC and checks the
 * stream it receives from the peer: frames may be lost (the switch counts
 * every drop), but never corrupted, duplicated or reordered.
 *
 *   hv-rawguest --peer MAC [--count N] [--size BYTES] [--result FILE] [--bench]
 *
 * The result file gets one line: "sent S fins F received R fins_rx FR lost L
 * bad B mac M mtu U rx_ns T" (fins: hello and end-of-stream frames
 * sent/received; T: nanoseconds from the start of the poll that got the
 * first frame of the stream to the end of the one that got the last). --bench leaves out the per-frame payload pattern and
 * checksum on both sides (order and loss are still checked), so that what
 * is measured is the NIC and the switch, not this program.
 *
 *   hv-rawguest --flood-control [--ring-pages N] [--seconds S]
 *
 * is a noisy neighbour instead (bench/noisy-neighbour.sh): it opens the NIC's
 * channel itself with N pages per ring (default 513, the most netvsp takes),
 * negotiates NVSP and then keeps its ring to the root full of NVSP messages
 * that need no reply (a data-path switch without a completion request),
 * for S seconds or until it is stopped. It prints how many it sent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv-guest.h"
#include "hv-poll.h"
#include "jumbo.h"
#include "netvsc.h"
#include "nvsp-proto.h"
#include "vmbus-client.h"
#include "vmnic.h"

#define ETHERTYPE_TEST 0x88b5
#define FIN_SEQ UINT64_MAX
#define HELLO_SEQ (UINT64_MAX - 1)
#define HDR_LEN (JUMBO_ETH_HLEN + 16)
/* Polling window after work (hv-poll.h), as hv-vm's. */
#define RAW_SPIN_NS 75000ull
#define RAW_SPIN_MAX_NS 1000000ull

struct rx_state {
    uint64_t next_seq;
    uint64_t received, lost, bad, fins;
    bool fin;
    bool peer_seen;
    bool bench; /* no payload check */
    uint64_t first_ns, last_ns;
    uint8_t mac[6];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Word-wise Fletcher-style sum: cheap enough not to be what is measured. */
static uint32_t csum(const uint8_t *p, uint32_t n, uint64_t seq)
{
    uint64_t a = seq | 1, b = 0;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        a += w;
        b += a;
    }
    for (; i < n; i++) {
        a += p[i];
        b += a;
    }
    return (uint32_t)(a ^ (a >> 32) ^ (b * 31) ^ (b >> 29));
}

#define PATTERN 4096u
static uint8_t pattern[PATTERN + JUMBO_MTU_MAX + JUMBO_ETH_HLEN];

static void fill(uint8_t *p, uint32_t n, uint64_t seq)
{
    memcpy(p, pattern + (seq * 2654435761u) % PATTERN, n);
}

static void on_frame(void *ctx, const void *frame, uint32_t len, const struct netvsc_meta *meta)
{
    struct rx_state *rs = ctx;
    const uint8_t *f = frame;
    (void)meta;
    if (len < HDR_LEN || f[12] != (ETHERTYPE_TEST >> 8) || f[13] != (ETHERTYPE_TEST & 0xff))
        return; /* not ours (e.g. the peer's kernel never runs here, but be safe) */
    if (memcmp(f, rs->mac, 6) != 0) {
        rs->bad++;
        return;
    }
    uint64_t seq;
    uint32_t plen, c;
    memcpy(&seq, f + 14, 8);
    memcpy(&plen, f + 22, 4);
    memcpy(&c, f + 26, 4);
    rs->peer_seen = true;
    if (seq == FIN_SEQ || seq == HELLO_SEQ) {
        rs->fin |= seq == FIN_SEQ;
        rs->fins++;
        return;
    }
    if (plen != len - HDR_LEN || seq < rs->next_seq ||
        (!rs->bench && csum(f + HDR_LEN, plen, seq) != c)) {
        rs->bad++;
        return;
    }
    rs->lost += seq - rs->next_seq;
    rs->next_seq = seq + 1;
    rs->received++;
}

/* Poll, timing the stream by polls rather than frames (a clock read per
 * frame was the receiver's largest cost): the first frame no earlier than
 * the start of the poll it came in, the last no later than the end of its
 * poll, so the interval is never shorter than the stream took. */
static int poll_timed(struct netvsc *nic, struct rx_state *rs, int budget)
{
    uint64_t before = rs->received, t0 = before ? 0 : now_ns();
    int rc = netvsc_poll(nic, on_frame, rs, budget);
    if (rs->received != before) {
        if (!before)
            rs->first_ns = t0;
        rs->last_ns = now_ns();
    }
    return rc;
}

static volatile sig_atomic_t flood_stop;

static void on_term(int sig)
{
    (void)sig;
    flood_stop = 1;
}

/* Wait up to timeout_ms for the completion of trans_id on rx. */
static int wait_completion(struct hv_guest *g, struct vmbus_ring *rx, uint64_t trans_id,
                           int timeout_ms)
{
    static uint8_t pkt[8192];
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (now_ms() < end) {
        int len = vmbus_ring_get(rx, pkt, sizeof(pkt));
        if (len == -EAGAIN) {
            hv_guest_wait(g, 10);
            continue;
        }
        if (len < 0)
            return len;
        struct vmbus_pkt p;
        bool done = vmbus_pkt_parse(pkt, (uint32_t)len, &p) == 0 && p.type == VMBUS_PKT_COMP &&
                    p.trans_id == trans_id;
        vmbus_ring_release(rx);
        if (done)
            return 0;
    }
    return -ETIMEDOUT;
}

/* The noisy neighbour (see the header). */
static int flood_control(struct hv_guest *g, struct vmbus_client *c, uint32_t relid,
                         uint32_t ring_pages, unsigned seconds, const char *name)
{
    struct vmbus_gchan_params gp = {.tx_pages = ring_pages, .rx_pages = 16};
    struct vmbus_gchan *ch;
    int rc = vmbus_client_open(c, relid, &gp, &ch);
    if (rc < 0) {
        fprintf(stderr, "hv-rawguest %s: open with %u-page rings: %s\n", name, ring_pages,
                strerror(-rc));
        return 1;
    }
    struct vmbus_ring *tx = vmbus_gchan_tx(ch), *rx = vmbus_gchan_rx(ch);
    /* The newest version, in messages of its size. */
    size_t nver;
    const struct vmnic_nvsp_version *newest = &vmnic_nvsp_versions(&nver)[0];
    uint8_t msg[NVSP_MSG_SIZE_61] = {0};
    uint32_t msg_size = newest->msg_size;
    struct nvsp_msg_init init = {.type = NVSP_MSG_INIT,
                                 .min_protocol_ver = newest->version,
                                 .max_protocol_ver = newest->version};
    memcpy(msg, &init, sizeof(init));
    if (vmbus_ring_put_inband(tx, VMBUS_PKT_DATA_INBAND, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, 1,
                              msg, msg_size) < 0 ||
        vmbus_ring_publish(tx) < 0 || vmbus_gchan_signal(ch) < 0 ||
        (rc = wait_completion(g, rx, 1, 5000)) < 0) {
        fprintf(stderr, "hv-rawguest %s: NVSP INIT failed\n", name);
        return 1;
    }
    struct nvsp_msg_switch_data_path sw = {.type = NVSP_MSG4_SWITCH_DATA_PATH};
    memset(msg, 0, sizeof(msg));
    memcpy(msg, &sw, sizeof(sw));
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    uint64_t sent = 0, end = now_ms() + (uint64_t)seconds * 1000u;
    static uint8_t pkt[8192];
    while (!flood_stop && (seconds == 0 || now_ms() < end)) {
        unsigned k = 0;
        while (vmbus_ring_put_inband(tx, VMBUS_PKT_DATA_INBAND, 0, 0, msg, msg_size) == 0)
            k++;
        if (k) {
            sent += k;
            rc = vmbus_ring_publish(tx);
            if (rc < 0)
                break;
            if (rc == 1)
                vmbus_gchan_signal(ch);
        }
        /* Nothing is owed to us, but take whatever comes (indications). */
        while (vmbus_ring_get(rx, pkt, sizeof(pkt)) > 0)
            vmbus_ring_release(rx);
        /* Full: the root has a ring's worth to chew on. Refill soon, using
         * little of the guest's CPU, which is not what is measured. */
        usleep(200);
    }
    printf("hv-rawguest %s: flooded %" PRIu64 " NVSP messages needing no reply (%u-page ring)\n",
           name, sent, ring_pages);
    vmbus_client_close(ch);
    return 0;
}

/* The first NIC the root offers. */
static int find_nic(const struct vmbus_client *c, struct vmbus_offer_info *out)
{
    static struct vmbus_offer_info offers[VMBUS_CLIENT_MAX_OFFERS];
    int n = vmbus_client_offers(c, offers, VMBUS_CLIENT_MAX_OFFERS);
    for (int i = 0; i < n && i < VMBUS_CLIENT_MAX_OFFERS; i++) {
        if (netvsc_offer_is_nic(&offers[i])) {
            *out = offers[i];
            return 0;
        }
    }
    return -ENOENT;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
        return -1;
    for (int i = 0; i < 6; i++) {
        if (v[i] > 255)
            return -1;
        mac[i] = (uint8_t)v[i];
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint8_t peer[6] = {0};
    bool have_peer = false;
    uint64_t count = 100000;
    uint32_t size = 64;
    const char *result = NULL;
    bool bench = false, flood = false;
    uint32_t ring_pages = 513;
    unsigned seconds = 0;
    static const struct option opts[] = {
        {"peer", required_argument, NULL, 'p'},   {"count", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},   {"result", required_argument, NULL, 'r'},
        {"bench", no_argument, NULL, 'b'},        {"help", no_argument, NULL, 'h'},
        {"flood-control", no_argument, NULL, 'f'}, {"ring-pages", required_argument, NULL, 'R'},
        {"seconds", required_argument, NULL, 'S'}, {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'p':
            if (parse_mac(optarg, peer) < 0) {
                fprintf(stderr, "hv-rawguest: bad MAC '%s'\n", optarg);
                return 2;
            }
            have_peer = true;
            break;
        case 'c':
            count = strtoull(optarg, NULL, 10);
            break;
        case 's':
            size = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            result = optarg;
            break;
        case 'b':
            bench = true;
            break;
        case 'f':
            flood = true;
            break;
        case 'R':
            ring_pages = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'S':
            seconds = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'h':
            printf("usage: hv-rawguest --peer MAC [--count N] [--size BYTES] [--result FILE] "
                   "[--bench]\n"
                   "       hv-rawguest --flood-control [--ring-pages N] [--seconds S]\n");
            return 0;
        default:
            return 2;
        }
    }
    if (!flood && (!have_peer || size < 64 || size > jumbo_frame(JUMBO_MTU_MAX))) {
        fprintf(stderr, "hv-rawguest: need --peer MAC and --size 64..%u\n",
                jumbo_frame(JUMBO_MTU_MAX));
        return 2;
    }
    if (flood && (ring_pages < 4 || ring_pages > 65536)) {
        fprintf(stderr, "hv-rawguest: --ring-pages must be 4..65536\n");
        return 2;
    }
    const char *name = getenv(HV_ENV_NAME) ? getenv(HV_ENV_NAME) : "?";
    struct hv_guest *g;
    struct vmbus_client *c;
    int rc = hv_guest_attach_env(&g);
    if (rc < 0 || (rc = vmbus_client_connect(g, 10000, &c)) < 0) {
        fprintf(stderr, "hv-rawguest %s: VMBus: %s\n", name, strerror(-rc));
        return 1;
    }
    struct vmbus_offer_info oi;
    if (find_nic(c, &oi) < 0) {
        fprintf(stderr, "hv-rawguest %s: no NIC offered\n", name);
        return 1;
    }
    if (flood) {
        rc = flood_control(g, c, oi.relid, ring_pages, seconds, name);
        vmbus_client_destroy(c);
        hv_guest_detach(g);
        return rc;
    }
    struct netvsc_params np = {.mtu = size > jumbo_frame(JUMBO_MTU_DEFAULT) ? jumbo_mtu_of_frame(size)
                                                                          : JUMBO_MTU_DEFAULT};
    struct netvsc *nic;
    rc = netvsc_open(c, oi.relid, &np, &nic);
    if (rc < 0) {
        fprintf(stderr, "hv-rawguest %s: NIC open: %s\n", name, strerror(-rc));
        return 1;
    }
    struct netvsc_info info;
    netvsc_get_info(nic, &info);
    struct rx_state rs = {.bench = bench};
    memcpy(rs.mac, info.mac, 6);

    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)(i * 131u + (i >> 8));
    uint8_t *frame = malloc(size);
    memcpy(frame, peer, 6);
    memcpy(frame + 6, info.mac, 6);
    frame[12] = ETHERTYPE_TEST >> 8;
    frame[13] = ETHERTYPE_TEST & 0xff;
    uint64_t sent = 0, fins = 0, nfin = 0, last_rx = now_ms(), fin_at = 0;
    uint32_t plen = size - HDR_LEN;
    /* Hello until the peer is heard from: its NIC may not be up yet, and
     * frames for a NIC that is down are dropped (and counted) by the switch. */
    uint64_t hello_start = now_ms(), hello_at = 0;
    while (!rs.peer_seen) {
        if (now_ms() - hello_start > 30000) {
            fprintf(stderr, "hv-rawguest %s: peer never answered\n", name);
            return 1;
        }
        if (now_ms() - hello_at >= 10) {
            uint64_t hs = HELLO_SEQ;
            memcpy(frame + 14, &hs, 8);
            if (netvsc_send(nic, frame, HDR_LEN + 34, NULL) == 0)
                fins++;
            netvsc_tx_flush(nic);
            hello_at = now_ms();
        }
        if (poll_timed(nic, &rs, 64) == 0)
            usleep(1000);
    }
    /* One more, so a peer that heard us first also hears from us. */
    uint64_t hs = HELLO_SEQ;
    memcpy(frame + 14, &hs, 8);
    if (netvsc_send(nic, frame, HDR_LEN + 34, NULL) == 0)
        fins++;
    netvsc_tx_flush(nic);
    uint64_t t_start = now_ms(), t_end = 0;
    /* Read once: getenv in the loop was a quarter of the receiver's cycles. */
    const bool spin = getenv("RAW_SPIN") != NULL;
    /* After work, poll on for a window (as hv-vm does, yielding the CPU in
     * idle rounds) before arming the interrupt and sleeping: a receiver
     * that slept as soon as its ring was empty took a signal and a wake-up
     * for nearly every transfer the root sent. */
    struct hv_poll_window win;
    hv_poll_window_init(&win, RAW_SPIN_NS, RAW_SPIN_MAX_NS);
    uint64_t last_work = now_ns();
    bool was_idle = false;
    while (true) {
        unsigned burst = 0;
        if (bench && sent == 0)
            fill(frame + HDR_LEN, plen, 0);
        while (burst < 32 && sent < count) {
            uint32_t cs = 0;
            if (!bench) {
                fill(frame + HDR_LEN, plen, sent);
                cs = csum(frame + HDR_LEN, plen, sent);
            }
            memcpy(frame + 14, &sent, 8);
            memcpy(frame + 22, &plen, 4);
            memcpy(frame + 26, &cs, 4);
            if (netvsc_send(nic, frame, size, NULL) < 0)
                break;
            sent++;
            burst++;
        }
        if (sent == count && !t_end)
            t_end = now_ms();
        if (sent == count && nfin < 3 && (nfin == 0 || now_ms() - fin_at > 50)) {
            uint64_t fs = FIN_SEQ;
            memcpy(frame + 14, &fs, 8);
            if (netvsc_send(nic, frame, HDR_LEN + 34, NULL) == 0) {
                fins++;
                nfin++;
                fin_at = now_ms();
            }
        }
        netvsc_tx_flush(nic);
        uint64_t before = rs.received;
        rc = poll_timed(nic, &rs, 256);
        if (rc < 0) {
            fprintf(stderr, "hv-rawguest %s: NIC failed: %s\n", name, strerror(-rc));
            break;
        }
        if (rs.received != before && (rs.received & 255) == 0)
            last_rx = now_ms();
        else if (rs.received != before && sent == count)
            last_rx = now_ms();
        /* Done once our stream is out and the peer's has ended (its FIN, or
         * silence: a peer that sends nothing never needs to be waited for). */
        if (sent == count && nfin >= 3 && (rs.fin || now_ms() - last_rx > 1500))
            break;
        uint64_t now = now_ns();
        if (rc > 0 || burst > 0) {
            if (was_idle)
                hv_poll_window_work(&win, now - last_work);
            last_work = now;
            was_idle = false;
        } else if (!spin) {
            was_idle = true;
            if (now - last_work < win.cur) {
                sched_yield();
            } else {
                if (!netvsc_intr_arm(nic))
                    hv_guest_wait(g, 10);
                netvsc_intr_disarm(nic);
                netvsc_event(nic);
            }
        }
    }
    /* Anything still in flight from the peer. */
    uint64_t t = now_ms();
    while (now_ms() - t < 200) {
        if (poll_timed(nic, &rs, 256) <= 0)
            usleep(1000);
    }
    struct netvsc_stats ns;
    netvsc_get_stats(nic, &ns);
    char line[256];
    snprintf(line, sizeof(line),
             "sent %" PRIu64 " fins %" PRIu64 " received %" PRIu64 " fins_rx %" PRIu64
             " lost %" PRIu64 " bad %" PRIu64 " mac %02x:%02x:%02x:%02x:%02x:%02x mtu %u rx_ns %" PRIu64
             "\n",
             sent, fins, rs.received, rs.fins, rs.lost, rs.bad, info.mac[0], info.mac[1], info.mac[2],
             info.mac[3], info.mac[4], info.mac[5], info.mtu,
             rs.last_ns > rs.first_ns ? rs.last_ns - rs.first_ns : 0);
    if (!bench || !result)
        printf("hv-rawguest %s: %s", name, line);
    if (getenv("RAW_DEBUG"))
        printf("hv-rawguest %s: stream %.3f s, tx_no_buffer %" PRIu64 " tx_gpa %" PRIu64 "\n",
               name, (double)(t_end - t_start) / 1e3, ns.tx_no_buffer, ns.tx_gpa_direct);
    if (result) {
        FILE *f = fopen(result, "w");
        if (f) {
            fputs(line, f);
            fclose(f);
        }
    }
    netvsc_close(nic);
    vmbus_client_destroy(c);
    hv_guest_detach(g);
    free(frame);
    return rs.bad == 0 && rc >= 0 ? 0 : 1;
}
