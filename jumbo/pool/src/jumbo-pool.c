/*
 * Mempool classes (jumbo-pool.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "jumbo-pool.h"

#define STD_SEG_ROOM 2048u
#define WHOLE_SEG_ROOM 16384u /* af_packet's jumbo ring frame; > JUMBO_FRAME_MAX */
#define POOL_CACHE 256u

_Static_assert(WHOLE_SEG_ROOM >= JUMBO_FRAME_MAX, "a whole-frame mbuf holds any frame");
_Static_assert(WHOLE_SEG_ROOM + RTE_PKTMBUF_HEADROOM <= UINT16_MAX, "data room fits uint16_t");

/* The longest class name in class_names[], with its "_" separator. */
#define CLASS_SUFFIX_MAX (sizeof("_whole") - 1)
_Static_assert(JUMBO_POOL_NAME_MAX + CLASS_SUFFIX_MAX < RTE_MEMPOOL_NAMESIZE,
               "every NAME_class fits a mempool name");

struct jumbo_pools {
    /* Sized to the longest name accepted, so the compiler (and a reader)
     * can see that NAME_class always fits RTE_MEMPOOL_NAMESIZE. */
    char name[JUMBO_POOL_NAME_MAX + 1];
    int socket;
    unsigned count[JUMBO_POOL_CLASSES];
    struct rte_mempool *pool[JUMBO_POOL_CLASSES];
};

static const char *const class_names[JUMBO_POOL_CLASSES] = {"std", "whole"};

const char *jumbo_pool_class_name(enum jumbo_pool_class cls)
{
    return (unsigned)cls < JUMBO_POOL_CLASSES ? class_names[cls] : "?";
}

uint32_t jumbo_pool_seg_room(enum jumbo_pool_class cls)
{
    return cls == JUMBO_POOL_WHOLE_FRAME ? WHOLE_SEG_ROOM : STD_SEG_ROOM;
}

uint16_t jumbo_pool_data_room(enum jumbo_pool_class cls)
{
    return (uint16_t)(jumbo_pool_seg_room(cls) + RTE_PKTMBUF_HEADROOM);
}

enum jumbo_pool_class jumbo_pool_class_for(uint32_t max_frame, bool takes_chains)
{
    if (takes_chains || max_frame <= STD_SEG_ROOM)
        return JUMBO_POOL_STD;
    return JUMBO_POOL_WHOLE_FRAME;
}

int jumbo_pools_create(const struct jumbo_pools_params *p, struct jumbo_pools **out)
{
    struct jumbo_pools_params d = p ? *p : (struct jumbo_pools_params){.socket = -1};
    if (!d.name)
        d.name = "hvnet";
    if (!d.name[0] || strlen(d.name) > JUMBO_POOL_NAME_MAX)
        return -EINVAL;
    struct jumbo_pools *jp = calloc(1, sizeof(*jp));
    if (!jp)
        return -ENOMEM;
    snprintf(jp->name, sizeof(jp->name), "%s", d.name);
    jp->socket = d.socket < 0 ? (int)rte_socket_id() : d.socket;
    jp->count[JUMBO_POOL_STD] = d.nb_std ? d.nb_std : 16383;
    jp->count[JUMBO_POOL_WHOLE_FRAME] = d.nb_whole ? d.nb_whole : 4095;
    if (!jumbo_pool(jp, JUMBO_POOL_STD)) {
        int rc = -rte_errno;
        free(jp);
        return rc ? rc : -ENOMEM;
    }
    *out = jp;
    return 0;
}

struct rte_mempool *jumbo_pool(struct jumbo_pools *jp, enum jumbo_pool_class cls)
{
    if (!jp || (unsigned)cls >= JUMBO_POOL_CLASSES)
        return NULL;
    if (jp->pool[cls])
        return jp->pool[cls];
    char name[RTE_MEMPOOL_NAMESIZE];
    if (snprintf(name, sizeof(name), "%s_%s", jp->name, class_names[cls]) >= (int)sizeof(name))
        return NULL;
    unsigned n = jp->count[cls];
    unsigned cache = n / 8 < POOL_CACHE ? n / 8 : POOL_CACHE;
    jp->pool[cls] =
        rte_pktmbuf_pool_create(name, n, cache, 0, jumbo_pool_data_room(cls), jp->socket);
    return jp->pool[cls];
}

bool jumbo_pool_exists(const struct jumbo_pools *jp, enum jumbo_pool_class cls)
{
    return jp && (unsigned)cls < JUMBO_POOL_CLASSES && jp->pool[cls];
}

void jumbo_pools_destroy(struct jumbo_pools *jp)
{
    if (!jp)
        return;
    for (unsigned i = 0; i < JUMBO_POOL_CLASSES; i++)
        rte_mempool_free(jp->pool[i]);
    free(jp);
}
