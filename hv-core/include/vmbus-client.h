/*
 * VMBus client: the guest's end of VMBus (the part of a guest kernel's
 * vmbus driver that a VSC needs). Connects with version negotiation,
 * collects offers, creates GPADLs, opens and closes channels, handles
 * rescinds and unload.
 *
 * Single-threaded, like struct hv_guest under it. Control calls block until
 * the root answers or timeout_ms passes (-ETIMEDOUT). Messages from the
 * root are checked (vmbus-msg.h) before they are used.
 *
 * Messages from the root arrive on VP 0 (INITIATE_CONTACT names it, as
 * Linux's VMBUS_CONNECT_CPU); each channel interrupts the VP its open
 * named.
 */
#ifndef VMBUS_CLIENT_H
#define VMBUS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "hv-guest.h"
#include "vmbus-proto.h"
#include "vmbus-ring.h"

struct vmbus_client;
struct vmbus_gchan;

#define VMBUS_CLIENT_MAX_OFFERS 128
#define VMBUS_CLIENT_GPADL_BASE 0xe1e10u /* first GPADL id, as Linux */

struct vmbus_offer_info {
    struct vmbus_guid class_id;
    struct vmbus_guid instance_id;
    uint32_t relid;
    uint32_t conn_id;
    uint16_t sub_channel_index;
    uint8_t user_defined[120];
    bool rescinded;
};

/* Enable the SynIC if needed, negotiate the newest common version, ask for
 * offers and collect them. */
int vmbus_client_connect(struct hv_guest *g, int timeout_ms, struct vmbus_client **out);
/* UNLOAD (best effort) and free; open channels are dropped. NULL is fine. */
void vmbus_client_destroy(struct vmbus_client *c);
/* UNLOAD and wait for the answer; the client can connect again with
 * vmbus_client_reconnect(). Every open channel is freed. */
int vmbus_client_unload(struct vmbus_client *c);
int vmbus_client_reconnect(struct vmbus_client *c);

uint32_t vmbus_client_version(const struct vmbus_client *c);
struct hv_guest *vmbus_client_guest(const struct vmbus_client *c);

/* The idx-th live offer of class_id. 0 or -ENOENT. */
int vmbus_client_find(const struct vmbus_client *c, const struct vmbus_guid *class_id,
                      unsigned idx, struct vmbus_offer_info *out);
/* Number of offers, copying up to max. */
int vmbus_client_offers(const struct vmbus_client *c, struct vmbus_offer_info *out, int max);

/* Handle whatever the root sent (offers, rescinds) without blocking.
 * Returns the number of messages handled or a negative errno. */
int vmbus_client_poll(struct vmbus_client *c);
/* Changes since the last call: offers added and rescinded. Lets a guest
 * notice hot-added and removed devices after vmbus_client_poll(). */
bool vmbus_client_offers_changed(struct vmbus_client *c);

/* Grant n whole pages to the root for channel relid as one single-range
 * GPADL (header + as many bodies as needed). */
int vmbus_client_gpadl_create(struct vmbus_client *c, uint32_t relid, const uint64_t *pfns,
                              uint32_t n, uint32_t *gpadl_out);
int vmbus_client_gpadl_teardown(struct vmbus_client *c, uint32_t relid, uint32_t gpadl);

struct vmbus_gchan_params {
    uint32_t tx_pages; /* guest->root ring, header page included (>= 2) */
    uint32_t rx_pages; /* root->guest ring, header page included (>= 2) */
    bool scattered;    /* place ring pages non-contiguously (tests) */
    uint32_t target_vp; /* VP the root interrupts for this channel (< the guest's VPs) */
};

/* Allocate ring pages, grant them, OPENCHANNEL, map the rings. */
int vmbus_client_open(struct vmbus_client *c, uint32_t relid, const struct vmbus_gchan_params *p,
                      struct vmbus_gchan **out);
/* CLOSECHANNEL, tear the ring GPADL down, release the relid if rescinded,
 * free the pages. */
int vmbus_client_close(struct vmbus_gchan *ch);

struct vmbus_ring *vmbus_gchan_tx(struct vmbus_gchan *ch);
struct vmbus_ring *vmbus_gchan_rx(struct vmbus_gchan *ch);
uint32_t vmbus_gchan_relid(const struct vmbus_gchan *ch);
/* Signal the root for this channel (eventfd write: no round trip). */
int vmbus_gchan_signal(struct vmbus_gchan *ch);
uint32_t vmbus_gchan_target_vp(const struct vmbus_gchan *ch);
/* Test and clear this channel's event flag: on its target VP and, as Linux
 * scans every CPU's event page, on the others (an interrupt raised while
 * the root was moving the channel may land on the old VP). */
bool vmbus_gchan_event(struct vmbus_gchan *ch);
/* Wait up to timeout_ms for the channel's VP or the message VP (0) to be
 * signalled. 1, 0 on timeout, or a negative errno. */
int vmbus_gchan_wait(struct vmbus_gchan *ch, int timeout_ms);
/* The root rescinded the channel: close it. */
bool vmbus_gchan_rescinded(const struct vmbus_gchan *ch);

/* Raw messages, for tests: post to the negotiated message connection, and
 * wait for the next message of a type. */
int vmbus_client_post(struct vmbus_client *c, const void *msg, uint32_t len);
int vmbus_client_wait(struct vmbus_client *c, uint32_t type, void *out, uint32_t *len,
                      int timeout_ms);

#endif
