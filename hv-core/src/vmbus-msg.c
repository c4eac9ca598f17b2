/* Channel-management message checks (reference §2.2, §7.1). */
#include "vmbus-msg.h"

#include <stddef.h>
#include <string.h>

struct msg_rule {
    const char *name;
    uint32_t min_len;
    bool from_guest;
    uint32_t min_version; /* 0: any connected version */
};

static const struct msg_rule rules[VMBUS_MSG_TYPE_MAX] = {
    [VMBUS_MSG_OFFERCHANNEL] = {"OFFERCHANNEL", sizeof(struct vmbus_msg_offer), false, 0},
    [VMBUS_MSG_RESCIND_CHANNELOFFER] = {"RESCIND_CHANNELOFFER", sizeof(struct vmbus_msg_relid), false, 0},
    [VMBUS_MSG_REQUESTOFFERS] = {"REQUESTOFFERS", sizeof(struct vmbus_msg_hdr), true, 0},
    [VMBUS_MSG_ALLOFFERS_DELIVERED] = {"ALLOFFERS_DELIVERED", sizeof(struct vmbus_msg_hdr), false, 0},
    [VMBUS_MSG_OPENCHANNEL] = {"OPENCHANNEL", sizeof(struct vmbus_msg_open), true, 0},
    [VMBUS_MSG_OPENCHANNEL_RESULT] = {"OPENCHANNEL_RESULT", sizeof(struct vmbus_msg_open_result), false, 0},
    [VMBUS_MSG_CLOSECHANNEL] = {"CLOSECHANNEL", sizeof(struct vmbus_msg_relid), true, 0},
    [VMBUS_MSG_GPADL_HEADER] = {"GPADL_HEADER", sizeof(struct vmbus_msg_gpadl_header), true, 0},
    [VMBUS_MSG_GPADL_BODY] = {"GPADL_BODY", sizeof(struct vmbus_msg_gpadl_body), true, 0},
    [VMBUS_MSG_GPADL_CREATED] = {"GPADL_CREATED", sizeof(struct vmbus_msg_gpadl_created), false, 0},
    [VMBUS_MSG_GPADL_TEARDOWN] = {"GPADL_TEARDOWN", sizeof(struct vmbus_msg_gpadl_teardown), true, 0},
    [VMBUS_MSG_GPADL_TORNDOWN] = {"GPADL_TORNDOWN", sizeof(struct vmbus_msg_gpadl_torndown), false, 0},
    [VMBUS_MSG_RELID_RELEASED] = {"RELID_RELEASED", sizeof(struct vmbus_msg_relid), true, 0},
    [VMBUS_MSG_INITIATE_CONTACT] = {"INITIATE_CONTACT", sizeof(struct vmbus_msg_initiate_contact), true, 0},
    [VMBUS_MSG_VERSION_RESPONSE] = {"VERSION_RESPONSE", sizeof(struct vmbus_msg_version_response), false, 0},
    [VMBUS_MSG_UNLOAD] = {"UNLOAD", sizeof(struct vmbus_msg_hdr), true, 0},
    [VMBUS_MSG_UNLOAD_RESPONSE] = {"UNLOAD_RESPONSE", sizeof(struct vmbus_msg_hdr), false, 0},
    [VMBUS_MSG_MODIFYCHANNEL] = {"MODIFYCHANNEL", sizeof(struct vmbus_msg_modify_channel), true,
                                 VMBUS_VERSION_WIN10_V4_1},
    [VMBUS_MSG_MODIFYCHANNEL_RESPONSE] = {"MODIFYCHANNEL_RESPONSE",
                                          sizeof(struct vmbus_msg_modify_channel_response), false,
                                          VMBUS_VERSION_WIN10_V5_3},
};

uint32_t vmbus_msg_min_len(uint32_t type)
{
    return type < VMBUS_MSG_TYPE_MAX ? rules[type].min_len : 0;
}

const char *vmbus_msg_name(uint32_t type)
{
    return type < VMBUS_MSG_TYPE_MAX && rules[type].name ? rules[type].name : "UNKNOWN";
}

bool vmbus_version_supported(uint32_t version)
{
    for (size_t i = 0; i < VMBUS_VERSION_COUNT; i++)
        if (vmbus_versions[i] == version)
            return true;
    return false;
}

/* Messages legal before a version is agreed. */
static bool allowed_unconnected(uint32_t type)
{
    return type == VMBUS_MSG_INITIATE_CONTACT || type == VMBUS_MSG_UNLOAD ||
           type == VMBUS_MSG_VERSION_RESPONSE || type == VMBUS_MSG_UNLOAD_RESPONSE;
}

int vmbus_msg_check(const void *msg, uint32_t len, bool from_guest, uint32_t version)
{
    struct vmbus_msg_hdr hdr;
    if (len < sizeof(hdr))
        return -VMBUS_MSG_ERR_SHORT;
    memcpy(&hdr, msg, sizeof(hdr));
    uint32_t type = hdr.msgtype;
    if (type >= VMBUS_MSG_TYPE_MAX || rules[type].name == NULL)
        return -VMBUS_MSG_ERR_TYPE;
    const struct msg_rule *r = &rules[type];
    if (r->from_guest != from_guest)
        return -VMBUS_MSG_ERR_DIRECTION;
    if (len < r->min_len)
        return -VMBUS_MSG_ERR_SHORT;
    if (version == 0 ? !allowed_unconnected(type) : version < r->min_version)
        return -VMBUS_MSG_ERR_VERSION;
    return (int)type;
}
