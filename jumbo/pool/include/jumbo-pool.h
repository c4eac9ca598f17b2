/*
 * Mempool classes for the switch: one pool per class of buffer size,
 * created when first needed, shared by every port that wants that class.
 *
 *   JUMBO_POOL_STD          2 KiB of data per mbuf; frames longer than that
 *                           travel as chains. Every port that can take a
 *                           chain (netvsp, TAP ports, most PMDs) uses it.
 *   JUMBO_POOL_WHOLE_FRAME  one mbuf holds any frame up to JUMBO_FRAME_MAX
 *                           and then some (16 KiB: net_af_packet's ring frame
 *                           for jumbo is 16384 bytes and it copies each frame
 *                           into one mbuf). Only for PMDs that cannot chain.
 *
 * Control thread only (after rte_eal_init()).
 */
#ifndef HVNET_JUMBO_POOL_H
#define HVNET_JUMBO_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "jumbo.h"

struct rte_mempool;

enum jumbo_pool_class {
    JUMBO_POOL_STD,
    JUMBO_POOL_WHOLE_FRAME,
    JUMBO_POOL_CLASSES
};

/* Longest pool-set name: NAME_whole must fit a DPDK mempool name. */
#define JUMBO_POOL_NAME_MAX 16

struct jumbo_pools_params {
    const char *name;    /* 1..JUMBO_POOL_NAME_MAX characters; pool names are
                            NAME_std, NAME_whole; default "hvnet" */
    int socket;          /* NUMA socket; default (0 given as -1) rte_socket_id() */
    unsigned nb_std;     /* mbufs in the std pool; 0 = 16383 */
    unsigned nb_whole;   /* mbufs in the whole-frame pool; 0 = 4095 */
};

struct jumbo_pools;

/* Creates the std pool at once (the switch always needs it); the
 * whole-frame pool waits for its first user. -EINVAL, -ENOMEM. */
int jumbo_pools_create(const struct jumbo_pools_params *p, struct jumbo_pools **out);
/* Frees every pool: nothing may hold their mbufs any more. */
void jumbo_pools_destroy(struct jumbo_pools *jp);

/* The pool of a class, created on first use; NULL if it cannot be. */
struct rte_mempool *jumbo_pool(struct jumbo_pools *jp, enum jumbo_pool_class cls);
/* Has the class been created (without creating it)? */
bool jumbo_pool_exists(const struct jumbo_pools *jp, enum jumbo_pool_class cls);

/* Data bytes one mbuf of the class holds (headroom excluded). */
uint32_t jumbo_pool_seg_room(enum jumbo_pool_class cls);
/* The data_room_size to create such a pool with (headroom included). */
uint16_t jumbo_pool_data_room(enum jumbo_pool_class cls);
/* The class a port needs for frames up to max_frame: std if it takes
 * chains or the frame fits one std mbuf, else whole-frame. */
enum jumbo_pool_class jumbo_pool_class_for(uint32_t max_frame, bool takes_chains);
const char *jumbo_pool_class_name(enum jumbo_pool_class cls);

#endif
