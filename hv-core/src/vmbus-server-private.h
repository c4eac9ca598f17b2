/*
 * Inside the VMBus server: its state, shared by vmbus-server.c (the
 * connection, channels, the device API) and vmbus-gpadl.c (the GPADL table
 * and the GPADL messages). The locking rules are in vmbus-server.c's
 * header comment.
 */
#ifndef VMBUS_SERVER_PRIVATE_H
#define VMBUS_SERVER_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv-log.h"
#include "vmbus-msg.h"
#include "vmbus-server.h"

enum chan_state { CHAN_IDLE, CHAN_OFFERED, CHAN_OPEN, CHAN_FAILED, CHAN_RESCINDED };
enum gpadl_state { GPADL_BUILDING, GPADL_READY, GPADL_DYING };

struct gpadl_range {
    uint32_t byte_count;
    uint32_t byte_offset;
    uint32_t pfn_count;
};

struct vmbus_gpadl {
    struct vmbus_server *srv;
    struct vmbus_gpadl *next;
    uint32_t id;
    uint32_t relid;
    enum gpadl_state state;
    /* While building: the raw range records, as 8-byte words. */
    uint16_t rangecount;
    uint32_t words_total;
    uint32_t words_got;
    uint64_t *words;
    /* Once ready. */
    uint32_t nranges;
    struct gpadl_range ranges[VMBUS_GPADL_MAX_RANGES];
    uint32_t npfns;
    uint64_t *pfns;
    void *view;
    uint64_t byte_len;
    uint32_t refs;
    bool send_torndown;
    bool torndown_owed; /* deferred teardown: room is kept for its answer */
};

struct vmbus_chan {
    struct vmbus_server *srv;
    uint32_t relid;
    enum chan_state state;
    struct vmbus_offer_params params;
    const struct vmbus_device_ops *ops;
    void *ctx;
    struct vmbus_gpadl *ring_gpadl;
    void *ring_view[2]; /* [0] guest->root, [1] root->guest */
    uint32_t ring_first[2];
    uint32_t ring_pages[2];
    struct vmbus_ring rx, tx;
    int event_fd;
    uint32_t target_vp;  /* atomic: VP of the channel's interrupts */
    bool fail_requested; /* atomic */
    bool rescind_owed;   /* RESCINDED, but the guest has not been told yet */
    /* A sub-channel: its primary, open (NULL once rescinded or dropped). */
    struct vmbus_chan *primary;
};

struct vmbus_server {
    struct hv_partition *part;
    uint32_t version; /* 0: not connected */
    uint32_t msg_vp;  /* atomic: VP the connection's messages go to */
    bool offers_requested;
    struct vmbus_chan *chans[VMBUS_MAX_CHANNELS + 1];
    pthread_mutex_t gpadl_lock;
    struct vmbus_gpadl *gpadls;
    uint32_t ngpadls;
    /* GPADL_TORNDOWNs owed for deferred teardowns (gpadl_lock). Guest
     * messages are taken only while the guest's queue has room for these on
     * top of their own answers, so a device's last put, from any thread,
     * always finds room for its answer: a guest waits for it forever. */
    uint32_t torndown_owed;
    uint64_t *granted;
    uint64_t npages;
    int wake_fd;
    struct vmbus_server_stats stats;
    /* Every log line the guest can cause (any thread). */
    struct hv_ratelimit log_rl;
};

/* vmbus-server.c */
void vmbus_srv_count_err(struct vmbus_server *s, enum vmbus_srv_err e);
/* Post a channel-management message to the connection's VP. */
int vmbus_srv_send_msg(struct vmbus_server *s, const void *msg, uint32_t len);
void vmbus_srv_msg_hdr(void *msg, uint32_t type);
struct vmbus_chan *vmbus_srv_chan_find(struct vmbus_server *s, uint32_t relid);
bool vmbus_srv_chan_known_to_guest(const struct vmbus_chan *c);

/* vmbus-gpadl.c: the GPADL messages (buf: the copied message, len bytes). */
void vmbus_srv_on_gpadl_header(struct vmbus_server *s, const uint8_t *buf, uint32_t len);
void vmbus_srv_on_gpadl_body(struct vmbus_server *s, const uint8_t *buf, uint32_t len);
void vmbus_srv_on_gpadl_teardown(struct vmbus_server *s, const uint8_t *buf);
/* Unmap and free g (no references left); gpadl_lock not held. */
void vmbus_srv_gpadl_free(struct vmbus_server *s, struct vmbus_gpadl *g);

#endif
