/*
 * VMBus server: the root's end of one partition's VMBus connection.
 *
 * It listens on the partition's message connection ids (1 and 4), runs the
 * channel-management protocol, keeps the partition's GPADLs (mapping exactly
 * the granted pages), and offers channels on behalf of devices (VSPs). A
 * device gets open/close callbacks and, while open, the channel's two rings,
 * an eventfd the guest signals, and a way to signal the guest.
 *
 * Threads: everything runs on the root's control thread (the one calling
 * hv_host_run), except the functions marked "any thread", which a device's
 * worker may call while the channel is open.
 *
 * Every message from the guest is checked (vmbus-msg.h, then against the
 * connection and channel state); a bad one is dropped and counted by reason,
 * and never changes state.
 */
#ifndef VMBUS_SERVER_H
#define VMBUS_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "hv.h"
#include "vmbus-proto.h"
#include "vmbus-ring.h"

struct vmbus_server;
struct vmbus_chan;
struct vmbus_gpadl;

#define VMBUS_MAX_CHANNELS 128  /* relids 1..128 */
#define VMBUS_MAX_GPADLS 512     /* per partition */
#define VMBUS_GPADL_MAX_PAGES 16384 /* 64 MiB per GPADL */
#define VMBUS_GPADL_MAX_RANGES 16
#define VMBUS_CHAN_CONN_ID_BASE 0x100 /* connection id = base + relid */

/* Reasons a guest message was refused. */
enum vmbus_srv_err {
    VMBUS_SRV_ERR_MALFORMED,    /* failed vmbus_msg_check() */
    VMBUS_SRV_ERR_CONN_ID,      /* sent to the wrong connection id */
    VMBUS_SRV_ERR_NOT_CONNECTED, /* needs INITIATE_CONTACT first */
    VMBUS_SRV_ERR_VERSION,      /* unsupported version requested */
    VMBUS_SRV_ERR_DUPLICATE,    /* e.g. a second REQUESTOFFERS */
    VMBUS_SRV_ERR_RELID,        /* names no channel */
    VMBUS_SRV_ERR_CHAN_STATE,   /* e.g. open twice, close when not open */
    VMBUS_SRV_ERR_GPADL_ID,     /* unknown, in use, or wrong channel */
    VMBUS_SRV_ERR_GPADL_RANGE,  /* malformed range records */
    VMBUS_SRV_ERR_GPADL_PFN,    /* page outside the partition's memory */
    VMBUS_SRV_ERR_GPADL_OVERLAP, /* page already granted */
    VMBUS_SRV_ERR_GPADL_SIZE,   /* too many pages, ranges or GPADLs */
    VMBUS_SRV_ERR_RING_LAYOUT,  /* ring GPADL or page offset unusable */
    VMBUS_SRV_ERR_RESOURCES,    /* mapping or allocation failed */
    VMBUS_SRV_ERR_DEVICE,       /* the device refused the open */
    VMBUS_SRV_ERR_BUSY,         /* not enough room to answer: retry */
    VMBUS_SRV_ERR_VP,           /* names a virtual processor the partition does not have */
    VMBUS_SRV_ERR_RING_SIZE,    /* a ring larger than the device takes */
    VMBUS_SRV_ERR_COUNT
};

struct vmbus_server_stats {
    uint64_t msgs_in[VMBUS_MSG_TYPE_MAX]; /* accepted, by type */
    uint64_t msgs_out;
    uint64_t errors[VMBUS_SRV_ERR_COUNT];
    uint64_t ring_failures; /* channels closed because a ring was corrupt */
    uint32_t version;       /* negotiated, 0 if not connected */
    uint32_t gpadls;        /* live */
    uint64_t gpadl_pages;   /* pages granted now */
    uint64_t log_suppressed; /* log lines about this guest held back (hv-log.h) */
};

const char *vmbus_srv_err_name(enum vmbus_srv_err e);

/* Create the server for p (in any state but destroyed). It follows the
 * partition's life: when p stops, every channel is closed and every GPADL
 * unmapped; offers stay, to be made again to the next guest that connects. */
int vmbus_server_create(struct hv_partition *p, struct vmbus_server **out);
/* Rescinds nothing (the guest may be gone): closes every channel, unmaps
 * every GPADL, frees. Must run before hv_partition_destroy() of p. */
void vmbus_server_destroy(struct vmbus_server *s);

/* Entry point for channel messages; hv_partition_port_msg() handler. */
int vmbus_server_handle_message(void *srv, struct hv_partition *p, uint32_t conn_id,
                                uint32_t msg_type, const void *payload, uint32_t len);

void vmbus_server_get_stats(const struct vmbus_server *s, struct vmbus_server_stats *out);
bool vmbus_server_connected(const struct vmbus_server *s);

struct vmbus_device_ops {
    /* The guest opened the channel; its rings are mapped and initialised.
     * Return 0 to accept, a negative errno to fail the open. */
    int (*open)(void *ctx, struct vmbus_chan *chan);
    /* The channel is closing (guest close, rescind, unload, ring failure,
     * partition stop). Before returning, the device must have stopped every
     * use of the rings, the event fd and the channel, and put every GPADL
     * reference it took. */
    void (*close)(void *ctx, struct vmbus_chan *chan);
};

struct vmbus_offer_params {
    struct vmbus_guid class_id;
    struct vmbus_guid instance_id;
    uint16_t sub_channel_index;
    /* The largest ring the device takes, in pages per direction, header
     * page included; 0: any that fits a GPADL. A larger one fails the open
     * (VMBUS_SRV_ERR_RING_SIZE): ring memory the root maps is the guest's
     * to choose only up to what its device class needs. */
    uint32_t max_ring_pages;
    /* Sent in the offer's user-defined area (a device may describe itself
     * there; netvsp puts the NIC's name). */
    uint8_t user_defined[120];
};

/* Offer a channel. Sent at once if the guest has asked for offers,
 * otherwise when it does. */
int vmbus_server_offer(struct vmbus_server *s, const struct vmbus_offer_params *params,
                       const struct vmbus_device_ops *ops, void *ctx, struct vmbus_chan **out);

/* Offer sub-channel index (1, 2, ...) of primary, a primary channel that
 * is open (its guest asked for more channels, e.g. NVSP 5's SUBCHANNEL): the
 * primary's GUIDs and ring limit with this sub_channel_index, sent at once.
 * The guest opens it like any channel (its own ring GPADL and target VP,
 * refused on a VP the partition does not have). A sub-channel lasts as long
 * as this opening of its primary: when the primary closes for any reason,
 * each of its sub-channels is closed (its close callback runs) and rescinded
 * (or just forgotten if the guest's connection is gone) before the
 * primary's close callback runs; its pointer is invalid from then on.
 * -EINVAL (primary not an open primary, index 0), -EEXIST (index already
 * offered), or as vmbus_server_offer(). */
int vmbus_server_offer_sub(struct vmbus_chan *primary, uint16_t index,
                           const struct vmbus_device_ops *ops, void *ctx, struct vmbus_chan **out);

/* Device removal: closes the channel if open and tells the guest. The
 * channel is freed once the guest releases its id (or at once if the guest
 * never saw it); the pointer must not be used after this call. */
void vmbus_chan_rescind(struct vmbus_chan *chan);

uint32_t vmbus_chan_relid(const struct vmbus_chan *chan);
uint32_t vmbus_chan_conn_id(const struct vmbus_chan *chan);
/* Any thread: the VP the channel interrupts (OPENCHANNEL's target_vp, as
 * MODIFYCHANNEL changed it). */
uint32_t vmbus_chan_target_vp(const struct vmbus_chan *chan);
struct hv_partition *vmbus_chan_partition(const struct vmbus_chan *chan);
bool vmbus_chan_is_open(const struct vmbus_chan *chan);

/* While open. rx: guest -> root ring (the root consumes); tx: root -> guest
 * ring (the root produces). */
struct vmbus_ring *vmbus_chan_rx(struct vmbus_chan *chan);
struct vmbus_ring *vmbus_chan_tx(struct vmbus_chan *chan);
/* Readable when the guest signalled the channel. */
int vmbus_chan_event_fd(const struct vmbus_chan *chan);
/* Any thread: interrupt the guest for this channel: its event flag (the
 * relid) in the SIEF page of its target VP, and that VP's SINT. */
int vmbus_chan_signal(struct vmbus_chan *chan);
/* Any thread: a ring of this channel is corrupt (or the guest broke the
 * device protocol beyond repair). The control thread closes the channel
 * soon after; the device's close callback runs then. */
void vmbus_chan_fail(struct vmbus_chan *chan);

/*
 * Any thread, while the channel is open: take a reference on a GPADL the
 * guest created for this channel, and its view (the granted pages, in order,
 * contiguous). Teardown of a referenced GPADL waits for the last put.
 * Returns 0, -ENOENT (no such ready GPADL for this channel).
 */
int vmbus_chan_gpadl_get(struct vmbus_chan *chan, uint32_t gpadl_id, struct vmbus_gpadl **out);
void vmbus_gpadl_put(struct vmbus_gpadl *g);
void *vmbus_gpadl_view(const struct vmbus_gpadl *g);
/* Bytes the guest described (sum of range byte counts). */
uint64_t vmbus_gpadl_len(const struct vmbus_gpadl *g);
uint32_t vmbus_gpadl_pages(const struct vmbus_gpadl *g);

#endif
