/*
 * The NVSP version table, the one list of versions both ends speak.
 *
 * Message sizes: NVSP 6.1 widened every message to 40 bytes (Linux
 * hv_netvsc and OpenVMM send and expect 40 from 6.1 on, 28 before).
 */
#include <stddef.h>

#include "vmnic.h"

static const struct vmnic_nvsp_version versions[] = {
    {NVSP_PROTOCOL_VERSION_61, "6.1", NVSP_MSG_SIZE_61},
    {NVSP_PROTOCOL_VERSION_6, "6", NVSP_MSG_SIZE_LEGACY},
    {NVSP_PROTOCOL_VERSION_5, "5", NVSP_MSG_SIZE_LEGACY},
    {NVSP_PROTOCOL_VERSION_4, "4", NVSP_MSG_SIZE_LEGACY},
    {NVSP_PROTOCOL_VERSION_2, "2", NVSP_MSG_SIZE_LEGACY},
    {NVSP_PROTOCOL_VERSION_1, "1", NVSP_MSG_SIZE_LEGACY},
};
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))

const struct vmnic_nvsp_version *vmnic_nvsp_versions(size_t *count)
{
    *count = NVERSIONS;
    return versions;
}

const struct vmnic_nvsp_version *vmnic_nvsp_version_find(uint32_t version)
{
    for (size_t i = 0; i < NVERSIONS; i++)
        if (versions[i].version == version)
            return &versions[i];
    return NULL;
}

const char *vmnic_nvsp_version_name(uint32_t version)
{
    const struct vmnic_nvsp_version *v = vmnic_nvsp_version_find(version);
    return v ? v->name : NULL;
}

uint32_t vmnic_nvsp_msg_size(uint32_t version)
{
    /* Newest first: the first entry not above version is the newest. */
    for (size_t i = 0; i < NVERSIONS; i++)
        if (versions[i].version <= version)
            return versions[i].msg_size;
    return versions[NVERSIONS - 1].msg_size;
}
