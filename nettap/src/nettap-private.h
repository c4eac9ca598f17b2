/*
 * Inside nettap: the helpers util.c gives ns.c, tap.c and broker.c, the
 * handle tap.c and broker.c work on, and the TAP broker's wire format (a
 * guest worker and the root, both this module, over one SOCK_SEQPACKET
 * socket per VM).
 */
#ifndef NETTAP_PRIVATE_H
#define NETTAP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <net/if.h>

#include "nettap-broker.h"
#include "nettap.h"

struct nl_sock;
struct rtnl_link;

#define NETTAP_THREAD_NETNS "/proc/thread-self/ns/net"

/* Size of the per-thread message nettap_last_error() returns. */
#define NETTAP_ERROR_MAX 256
/* Record what failed, with the errno's text, and pass err through:
 * `return nettap_fail(-errno, "open %s", path)`. */
int nettap_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, for messages that already say everything (bad arguments, or the
 * broker's answer). */
int nettap_failx(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A libnl error code as a negative errno. */
int nettap_nl_errno(int nlerr);
/* 1..max characters of [A-Za-z0-9_.-], not "." or "..". */
bool nettap_name_chars_ok(const char *name, size_t max);
/* A NETLINK_ROUTE socket in the calling thread's namespace. */
int nettap_nl_open(struct nl_sock **out);
/* Apply changes to ifindex with one RTM_NEWLINK. */
int nettap_link_change(struct nl_sock *sk, int ifindex, struct rtnl_link *changes);

struct nettap {
    int fd;
    int ifindex;
    bool carrier;
    int broker;         /* >= 0: link changes are asked of the root's broker (not owned) */
    struct nl_sock *nl; /* bound in the TAP's namespace */
    struct nl_sock *ev; /* RTNLGRP_LINK notifications, same namespace */
    char name[IFNAMSIZ];
    /* What the last read of ev found about this device. */
    bool ev_seen;
    bool ev_gone;
    uint32_t ev_mtu;
};

/* A handle on a TAP descriptor made elsewhere (fd taken over), with its
 * netlink and notification sockets opened in the calling thread's
 * namespace. broker: see struct nettap. */
int nettap_wrap(int fd, int ifindex, const char *name, bool carrier, int broker,
                    struct nettap **out);
/* A handle with no device, only a netlink socket in netns_fd's namespace:
 * set its ifindex and name, then use the link setters on it. */
int nettap_shadow_open(int netns_fd, struct nettap **out);
/* Is the device at t's ifindex still a TUN/TAP device owned by owner, or
 * if owner is -1 one without an owner named as t? An index freed by a
 * deleted device can be
 * taken by another one (an index given at creation, a device moved in).
 * 0 if it is; -ENODEV if nothing is there; -ESTALE if another device is;
 * else the netlink error. */
int nettap_same_device(struct nettap *t, int64_t owner);
/* Free t without deleting its device; returns its descriptor. */
int nettap_release_fd(struct nettap *t);

/*
 * The broker's records. The guest sends a request and waits for the
 * reply with the same seq (one outstanding at a time); the root answers
 * every well-framed request exactly once, in order. A successful CREATE
 * carries the TAP's descriptor (SCM_RIGHTS). Descriptors the guest sends
 * are closed unread.
 */
#define NETTAP_BROKER_MAGIC 0x42504154u /* "TAPB" */

enum nettap_broker_op {
    NETTAP_BROKER_OP_CREATE = 1, /* name, mac, mtu, gso_max_size, flags */
    NETTAP_BROKER_OP_SET_MTU,    /* ifindex, mtu */
    NETTAP_BROKER_OP_SET_MAC,    /* ifindex, mac */
    NETTAP_BROKER_OP_SET_UP,     /* ifindex, flags & UP */
};

#define NETTAP_BROKER_F_CSUM 0x1u
#define NETTAP_BROKER_F_TSO 0x2u
#define NETTAP_BROKER_F_UP 0x4u
#define NETTAP_BROKER_F_CARRIER 0x8u
#define NETTAP_BROKER_F_ALL 0xfu

struct nettap_broker_request {
    uint32_t magic;
    uint16_t op;
    uint16_t flags;
    uint32_t seq;
    int32_t ifindex;
    uint32_t mtu;
    uint32_t gso_max_size;
    uint8_t mac[6];
    char name[IFNAMSIZ]; /* NUL-terminated */
    uint8_t reserved[2]; /* zero */
} __attribute__((packed));
_Static_assert(sizeof(struct nettap_broker_request) == 48, "TAP broker request");

struct nettap_broker_reply {
    uint32_t magic;
    uint32_t seq;
    int32_t status; /* 0 or -errno */
    int32_t ifindex;
    char error[176]; /* status < 0: what was wrong, NUL-terminated */
} __attribute__((packed));
_Static_assert(sizeof(struct nettap_broker_reply) == 192, "TAP broker reply");

/* A link change of brokered TAP t through its broker (guest side). */
int nettap_brokered_change(struct nettap *t, enum nettap_broker_op op, uint32_t mtu,
                              const uint8_t *mac, bool up);

#endif
