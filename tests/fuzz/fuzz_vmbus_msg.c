/*
 * libFuzzer harness for the VMBus channel-management message checker
 * (vmbus_msg_check) and the VMBus server's state machine.
 *
 * One direct partition with NCHAN offered channels is made on the first
 * input and kept. Every input starts and ends from the same clean state
 * (guest UNLOADs, queue drained, fresh offers with relids 1..NCHAN), so
 * nothing leaks from one input into the next and crashes reproduce.
 *
 * Input: a sequence of records, each starting with a control byte c.
 *   c & 0x0f < 9   a guest message: one length byte (clamped to 240), then
 *                  that many payload bytes (fewer at the end of the input).
 *                  c & 0x10: post on connection id 4, else 1.
 *                  c & 0x20: leave the SynIC slot alone afterwards (else the
 *                  guest drains it, as a guest should).
 *                  c & 0x40: SynIC message type 2 instead of HVMSG_VMBUS.
 *   9   scribble: 2 bytes page, 2 bytes offset, 4 bytes value; the guest
 *       writes the value into its own memory (ring headers, GPADL pages;
 *       not its SynIC pages, which would only confuse the harness).
 *   10  drain the SynIC slot.
 *   11  device action, one byte: channel (bits 0-1), action (bits 2-3):
 *       vmbus_chan_fail + hv_host_run / toggle "open refuses" / toggle
 *       "open calls vmbus_chan_fail" / hv_host_run only. Bit 4 instead:
 *       device 2 is rescinded and offered again as sub-channel 1 + (bits
 *       5-6) of device 1 (vmbus_server_offer_sub; refused unless device 1
 *       is open), which drops it when device 1 closes.
 *   12  rescind a channel (one byte), then offer a fresh one in its place.
 *   13  stop and restart the partition; the guest re-attaches.
 *   14  device GPADL reference, one byte: channel (bits 0-1); bit 7 set:
 *       put the newest reference held, else take one on the GPADL id in the
 *       next 4 bytes and read the first and last byte of its view.
 *   15  flood: post the last message again 1..256 times without draining.
 *
 * Invariants checked (abort on violation): a device is never opened twice
 * nor closed when not open; vmbus_chan_is_open() agrees with the device;
 * every message from the root passes vmbus_msg_check(); GPADL and page counts
 * stay within bounds; after the closing UNLOAD no GPADL or granted page is
 * left and no device is open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv-guest.h"
#include "hv.h"
#include "vmbus-msg.h"
#include "vmbus-proto.h"
#include "vmbus-ring.h"
#include "vmbus-server.h"

#define NCHAN 3
#define MEM_BYTES (4ull << 20)
#define MEM_PAGES (MEM_BYTES >> HV_PAGE_SHIFT)
#define MAX_HELD 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_vmbus_msg: invariant failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct dev {
    bool open_now;
    bool refuse_open;
    bool fail_in_open;
    struct vmbus_chan *chan; /* while offered */
    struct vmbus_gpadl *held[MAX_HELD];
    unsigned nheld;
    bool is_sub; /* device 2 only: a sub-channel of device 1 */
};

static struct {
    bool ready;
    struct hv_host *host;
    struct hv_partition *part;
    struct vmbus_server *srv;
    struct hv_guest *g;
    struct dev dev[NCHAN];
    uint8_t last[HV_MESSAGE_PAYLOAD_MAX];
    uint32_t last_len, last_conn;
} F;

static void put_all(struct dev *d)
{
    while (d->nheld)
        vmbus_gpadl_put(d->held[--d->nheld]);
}

static int dev_open(void *ctx, struct vmbus_chan *chan)
{
    struct dev *d = ctx;
    CHECK(!d->open_now);
    CHECK(chan == d->chan);
    CHECK(vmbus_chan_event_fd(chan) >= 0);
    /* Touch both rings: their mappings must be what the server said. */
    struct vmbus_ring *rx = vmbus_chan_rx(chan), *tx = vmbus_chan_tx(chan);
    (void)vmbus_ring_empty(rx);
    (void)vmbus_ring_free_bytes(tx);
    if (d->fail_in_open)
        vmbus_chan_fail(chan);
    if (d->refuse_open)
        return -EIO;
    d->open_now = true;
    return 0;
}

static void dev_close(void *ctx, struct vmbus_chan *chan)
{
    struct dev *d = ctx;
    CHECK(d->open_now);
    CHECK(chan == d->chan);
    put_all(d);
    d->open_now = false;
    /* A primary's sub-channels are closed before it and gone after. */
    if (d == &F.dev[1] && F.dev[2].is_sub) {
        CHECK(!F.dev[2].open_now);
        F.dev[2].chan = NULL;
        F.dev[2].is_sub = false;
    }
}

static const struct vmbus_device_ops dev_ops = {.open = dev_open, .close = dev_close};

static void offer(unsigned k)
{
    struct dev *d = &F.dev[k];
    memset(d, 0, sizeof(*d));
    struct vmbus_offer_params op = {.class_id = VMBUS_GUID_NETVSC};
    op.instance_id.b[0] = (uint8_t)(k + 1);
    op.sub_channel_index = (uint16_t)(k == 2); /* a sub-channel of device 1 */
    if (k == 2)
        op.instance_id.b[0] = 2;
    if (vmbus_server_offer(F.srv, &op, &dev_ops, d, &d->chan) < 0)
        d->chan = NULL;
}

static void check_root_msg(const struct hv_message *m)
{
    CHECK(m->message_type == HVMSG_VMBUS);
    CHECK(m->payload_size <= HV_MESSAGE_PAYLOAD_MAX);
    /* Well-formed, host-to-guest; version gating aside (answers to a reset
     * may go out before the new version is agreed). */
    CHECK(vmbus_msg_check(m->payload, m->payload_size, false, VMBUS_VERSION_WIN10_V5_3) > 0);
}

static void drain(void)
{
    struct hv_message m;
    while (hv_guest_recv_message(F.g, VMBUS_MESSAGE_SINT, &m) == 0)
        check_root_msg(&m);
}

static void check_consistent(void)
{
    struct vmbus_server_stats st;
    vmbus_server_get_stats(F.srv, &st);
    CHECK(st.gpadls <= VMBUS_MAX_GPADLS);
    CHECK(st.gpadl_pages <= MEM_PAGES);
    for (unsigned k = 0; k < NCHAN; k++) {
        struct dev *d = &F.dev[k];
        if (d->chan)
            CHECK(vmbus_chan_is_open(d->chan) == d->open_now);
        else
            CHECK(!d->open_now);
        CHECK(d->open_now || d->nheld == 0);
    }
}

static void attach(void)
{
    CHECK(hv_direct_partition_attach(F.part, &F.g) == 0);
    CHECK(hv_guest_synic_enable(F.g, 1u << VMBUS_MESSAGE_SINT) == HV_STATUS_SUCCESS);
}

static void restart(void)
{
    if (hv_partition_state(F.part) == HV_PARTITION_RUNNING)
        CHECK(hv_partition_stop(F.part, 0) == 0);
    for (unsigned k = 0; k < NCHAN; k++)
        CHECK(!F.dev[k].open_now);
    hv_guest_detach(F.g);
    F.g = NULL;
    CHECK(hv_partition_start(F.part) == 0);
    attach();
}

static void init_once(void)
{
    if (F.ready)
        return;
    CHECK(hv_host_create(&F.host) == 0);
    struct hv_partition_params pp = {
        .name = "fuzz-vmbus-msg",
        .memory_bytes = MEM_BYTES,
        .cls = &hv_direct_partition_class,
    };
    CHECK(hv_partition_create(F.host, &pp, &F.part) == 0);
    CHECK(vmbus_server_create(F.part, &F.srv) == 0);
    CHECK(hv_partition_start(F.part) == 0);
    attach();
    F.ready = true;
}

/* Back to: not connected, nothing granted, NCHAN fresh offers on relids
 * 1..NCHAN, empty queue, no pending wake-ups. */
static void reset(void)
{
    drain();
    struct vmbus_msg_hdr u = {VMBUS_MSG_UNLOAD, 0};
    CHECK(hv_guest_post_message(F.g, VMBUS_MESSAGE_CONNECTION_ID, HVMSG_VMBUS, &u, sizeof(u)) ==
          HV_STATUS_SUCCESS);
    drain();
    hv_host_run(F.host, 0);
    struct vmbus_server_stats st;
    vmbus_server_get_stats(F.srv, &st);
    CHECK(!vmbus_server_connected(F.srv));
    CHECK(st.gpadls == 0);
    CHECK(st.gpadl_pages == 0);
    for (unsigned k = 0; k < NCHAN; k++) {
        CHECK(!F.dev[k].open_now);
        if (F.dev[k].chan)
            vmbus_chan_rescind(F.dev[k].chan); /* not offered to anyone: freed */
        F.dev[k].chan = NULL;
    }
    for (unsigned k = 0; k < NCHAN; k++) {
        offer(k);
        CHECK(F.dev[k].chan && vmbus_chan_relid(F.dev[k].chan) == k + 1);
    }
    F.last_len = 0;
    F.last_conn = VMBUS_MESSAGE_CONNECTION_ID;
}

static void post(uint32_t conn, uint32_t type, const uint8_t *msg, uint32_t len, bool keep)
{
    /* The checker itself, on the raw bytes, both directions, a few versions. */
    static const uint32_t versions[] = {0, VMBUS_VERSION_WIN8, VMBUS_VERSION_WIN10,
                                        VMBUS_VERSION_WIN10_V4_1, VMBUS_VERSION_WIN10_V5_3};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        int a = vmbus_msg_check(msg, len, true, versions[i]);
        int b = vmbus_msg_check(msg, len, false, versions[i]);
        CHECK(a < 0 || b < 0); /* no type goes both ways */
        if (a > 0)
            CHECK(len >= vmbus_msg_min_len((uint32_t)a));
        if (b > 0)
            CHECK(len >= vmbus_msg_min_len((uint32_t)b));
    }
    int st = hv_guest_post_message(F.g, conn, type, msg, len);
    CHECK(st >= 0);
    if (!keep)
        drain();
    check_consistent();
}

static uint32_t take(const uint8_t **p, const uint8_t *end, unsigned n)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < n && *p < end; i++)
        v |= (uint32_t)*(*p)++ << (8 * i);
    return v;
}

static void device_action(uint8_t b)
{
    unsigned k = (b & 3u) % NCHAN;
    struct dev *d = &F.dev[k];
    if (b & 0x10) {
        d = &F.dev[2];
        if (d->chan)
            vmbus_chan_rescind(d->chan);
        CHECK(!d->open_now && d->nheld == 0);
        memset(d, 0, sizeof(*d));
        uint16_t index = (uint16_t)(1 + ((b >> 5) & 3));
        int rc = F.dev[1].chan ? vmbus_server_offer_sub(F.dev[1].chan, index, &dev_ops, d, &d->chan)
                               : -EINVAL;
        CHECK(rc == 0 || !F.dev[1].open_now || rc == -EBUSY || rc == -ENOSPC);
        if (rc < 0)
            d->chan = NULL;
        d->is_sub = rc == 0;
        check_consistent();
        return;
    }
    switch ((b >> 2) & 3) {
    case 0:
        if (d->chan && d->open_now)
            vmbus_chan_fail(d->chan);
        hv_host_run(F.host, 0);
        break;
    case 1:
        d->refuse_open = !d->refuse_open;
        break;
    case 2:
        d->fail_in_open = !d->fail_in_open;
        break;
    default:
        hv_host_run(F.host, 0);
        break;
    }
    check_consistent();
}

static void gpadl_ref(uint8_t b, const uint8_t **p, const uint8_t *end)
{
    struct dev *d = &F.dev[(b & 3u) % NCHAN];
    if (b & 0x80) {
        if (d->nheld)
            vmbus_gpadl_put(d->held[--d->nheld]);
        return;
    }
    uint32_t id = take(p, end, 4);
    if (!d->chan || !d->open_now || d->nheld == MAX_HELD)
        return;
    struct vmbus_gpadl *g;
    if (vmbus_chan_gpadl_get(d->chan, id, &g) < 0)
        return;
    const volatile uint8_t *v = vmbus_gpadl_view(g);
    uint64_t len = vmbus_gpadl_len(g);
    CHECK(len > 0 && len <= (uint64_t)vmbus_gpadl_pages(g) * HV_PAGE_SIZE);
    (void)v[0];
    (void)v[len - 1];
    d->held[d->nheld++] = g;
}

static void rescind(uint8_t b)
{
    unsigned k = b % NCHAN;
    struct dev *d = &F.dev[k];
    if (d->chan) {
        vmbus_chan_rescind(d->chan);
        CHECK(!d->open_now);
        CHECK(d->nheld == 0);
    }
    offer(k); /* may fail (queue full): then the slot stays empty */
    check_consistent();
}

static void scribble(const uint8_t **p, const uint8_t *end)
{
    uint64_t pfn = take(p, end, 2) % MEM_PAGES;
    uint32_t off = (take(p, end, 2) % HV_PAGE_SIZE) & ~3u;
    uint32_t val = take(p, end, 4);
    if (pfn < 3) /* page 0 is never used; 1 and 2 are the guest's SynIC pages */
        return;
    memcpy((uint8_t *)hv_guest_pfn_ptr(F.g, pfn) + off, &val, sizeof(val));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    reset();
    const uint8_t *p = data, *end = data + size;
    while (p < end) {
        uint8_t c = *p++;
        unsigned op = c & 0x0f;
        if (op < 9) {
            uint32_t len = take(&p, end, 1);
            if (len > HV_MESSAGE_PAYLOAD_MAX)
                len = HV_MESSAGE_PAYLOAD_MAX;
            if (len > (uint32_t)(end - p))
                len = (uint32_t)(end - p);
            memcpy(F.last, p, len);
            p += len;
            F.last_len = len;
            F.last_conn = (c & 0x10) ? VMBUS_MESSAGE_CONNECTION_ID_4 : VMBUS_MESSAGE_CONNECTION_ID;
            post(F.last_conn, (c & 0x40) ? 2u : HVMSG_VMBUS, F.last, len, c & 0x20);
            continue;
        }
        switch (op) {
        case 9:
            scribble(&p, end);
            break;
        case 10:
            drain();
            break;
        case 11:
            device_action((uint8_t)take(&p, end, 1));
            break;
        case 12:
            rescind((uint8_t)take(&p, end, 1));
            break;
        case 13:
            restart();
            break;
        case 14:
            gpadl_ref((uint8_t)take(&p, end, 1), &p, end);
            break;
        default: {
            uint32_t n = take(&p, end, 1) + 1;
            for (uint32_t i = 0; i < n; i++)
                post(F.last_conn, HVMSG_VMBUS, F.last, F.last_len, true);
            break;
        }
        }
    }
    reset();
    return 0;
}
