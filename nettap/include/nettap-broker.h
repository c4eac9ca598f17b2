/*
 * nettap-broker: TAPs for a guest worker without privilege, made by the
 * root on its behalf. Errors and threads as in nettap.h
 * (nettap_last_error()).
 */
#ifndef NETTAP_BROKER_H
#define NETTAP_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "nettap.h"

/*
 * A confined guest worker (hv-vm in its jail) holds no capability, and
 * creating a TAP or changing its link settings needs CAP_NET_ADMIN over
 * the VM's namespace. The root does exactly those on its behalf: one
 * broker per VM serves one SOCK_SEQPACKET socket whose other end the
 * guest holds. It creates each TAP in the VM's namespace, owned by the
 * guest's uid and gid (so that only the guest may attach more queues to it
 * later), passes the descriptor and keeps no copy; it changes the MTU, MAC
 * and up state only of TAPs it made for this guest, and nothing else. What
 * needs no privilege the guest does itself: frames, carrier and offloads
 * (ioctls on its descriptor), link notifications and queries (netlink in
 * its namespace). Requests are budgeted (NETTAP_BROKER_BURST at once,
 * NETTAP_BROKER_RATE a second after that) so that a guest cannot keep
 * the root's control thread and the kernel's RTNL lock busy.
 */
#define NETTAP_BROKER_TAPS_MAX 64
#define NETTAP_BROKER_BURST 64
#define NETTAP_BROKER_RATE 16
#define NETTAP_BROKER_BATCH 8 /* requests served per nettap_broker_serve() */
#define NETTAP_BROKER_TIMEOUT_MS 10000

/* Guest side: nettap_create() through the broker at broker_fd (not
 * taken over; it must outlive the TAP). p->netns_fd must be -1: the device
 * is made in the VM's namespace, which must be the calling thread's (its
 * notifications are read here). Errors as nettap_create(), and
 * -EAGAIN (the request budget is spent, try later), -ENOSPC (the guest has
 * NETTAP_BROKER_TAPS_MAX TAPs), -ETIMEDOUT, -ECONNRESET or -EPROTO (no
 * broker, or a broken answer). The TAP's link setters go through the
 * broker too; nettap_destroy() closes the descriptor, which deletes
 * the device. */
int nettap_create_brokered(int broker_fd, const struct nettap_params *p,
                               struct nettap **out);

/* Root side. One thread at a time per broker (the root's control thread). */
struct nettap_broker;

struct nettap_broker_params {
    int sock;                      /* the root's end; taken over, also on failure */
    int netns_fd;                  /* the VM's network namespace (duplicated) */
    uint32_t owner_uid, owner_gid; /* the guest's (TUNSETOWNER/GROUP); 0: none */
    uint64_t (*now_ns)(void);      /* monotonic clock for the budget; NULL: CLOCK_MONOTONIC */
};

struct nettap_broker_stats {
    uint64_t requests;    /* well-formed requests answered */
    uint64_t created;     /* TAPs made and handed over */
    uint64_t changed;     /* link changes made */
    uint64_t failed;      /* refused by the parameter checks or by the kernel */
    uint64_t malformed;   /* wrong size, magic, op, flags or reserved bytes; descriptors sent */
    uint64_t not_ours;    /* a change to an interface this broker did not make */
    uint64_t over_budget; /* the rate, or the TAP count, was exceeded */
};

/* -EINVAL for a bad socket or namespace descriptor; -ENOMEM. */
int nettap_broker_create(const struct nettap_broker_params *p,
                             struct nettap_broker **out);
/* Closes the socket; the TAPs stay with the guest's descriptors. NULL is fine. */
void nettap_broker_destroy(struct nettap_broker *b);
/* Readable when the guest has sent something: poll it, then serve. */
int nettap_broker_fd(const struct nettap_broker *b);
/* Answer up to NETTAP_BROKER_BATCH requests without blocking. 0: call
 * again when the socket is readable. -ECONNRESET: the guest hung up, or
 * stopped reading its answers (it is dropped); destroy the broker. Bad
 * requests are answered with an error and counted; none ends the broker.
 * Creating a TAP moves the calling thread into the VM's namespace and back. */
int nettap_broker_serve(struct nettap_broker *b);
void nettap_broker_get_stats(const struct nettap_broker *b,
                                 struct nettap_broker_stats *out);

#endif
