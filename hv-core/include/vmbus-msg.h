/*
 * Validation of VMBus channel-management messages, shared by the server
 * (messages from a guest) and the client (messages from the root). Pure
 * functions over a copy of the message; no state.
 */
#ifndef VMBUS_MSG_H
#define VMBUS_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "vmbus-proto.h"

enum vmbus_msg_err {
    VMBUS_MSG_ERR_SHORT = 1, /* shorter than the header or the message's struct */
    VMBUS_MSG_ERR_TYPE,      /* unknown message type */
    VMBUS_MSG_ERR_DIRECTION, /* a host message from a guest, or the reverse */
    VMBUS_MSG_ERR_VERSION,   /* not allowed at the negotiated version */
};

/*
 * Check msg[0..len): a known type, sent in the right direction, at least the
 * size of its struct, and allowed at `version` (0 = not connected: only
 * INITIATE_CONTACT and UNLOAD from a guest; VERSION_RESPONSE and
 * UNLOAD_RESPONSE from the host). Returns the message type (> 0) or
 * -enum vmbus_msg_err.
 */
int vmbus_msg_check(const void *msg, uint32_t len, bool from_guest, uint32_t version);

/* Smallest valid length of a message type, 0 if unknown. */
uint32_t vmbus_msg_min_len(uint32_t type);

/* "OFFERCHANNEL" etc.; "UNKNOWN" for anything else. */
const char *vmbus_msg_name(uint32_t type);

/* True if version is one of vmbus_versions[]. */
bool vmbus_version_supported(uint32_t version);

#endif
