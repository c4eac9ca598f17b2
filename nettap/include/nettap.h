/*
 * nettap: named network namespaces and TAP devices in them. A child
 * partition's network stack is a Linux network namespace; each of its
 * synthetic NICs shows up there as a TAP device named after the NIC, which
 * the guest's front end (netvsc-vm.h) feeds from and drains into the NIC.
 * The switch's host vNIC is a TAP in the root's namespace. This module
 * knows nothing of VMBus, guests or switches: it manages named network
 * namespaces (the way iproute2's `ip netns` does, so `ip netns exec NAME
 * ...` runs "inside the VM") and TAP devices, with link settings applied
 * through libnl (rtnetlink).
 *
 * Errors: every int function returns 0 or a negative errno; on failure,
 * nettap_last_error() describes in one line what was wrong and what is
 * allowed. Needs CAP_SYS_ADMIN (namespaces, mounts) and CAP_NET_ADMIN (TAP,
 * link settings): -EPERM otherwise; a worker without them has the root's
 * TAP broker (nettap-broker.h) make its TAPs.
 *
 * Threads: namespaces are per thread. nettap_ns_enter/leave/setup switch the
 * calling thread only; every other call leaves the calling thread in the
 * namespace it was in. One struct nettap is used by one thread at a
 * time. All calls here block on the kernel (netlink round trips, mounts)
 * except nettap_fd(), nettap_name(), nettap_ifindex() and
 * nettap_set_carrier(), which are cheap enough for the data path.
 */
#ifndef NETTAP_H
#define NETTAP_H

#include <stdbool.h>
#include <stdint.h>

#include "jumbo.h"

/* Interface names: 1..15 characters of [A-Za-z0-9_.-], not "lo", ".", "..". */
#define NETTAP_NAME_MAX 15
/* A TAP's L3 MTU is any hvnet MTU: JUMBO_MTU_MIN..JUMBO_MTU_MAX (jumbo.h). */
/* Namespace names: 1..64 characters of [A-Za-z0-9_.-], not "." or "..". */
#define NETTAP_NS_NAME_MAX 64
/* Where named namespaces live (iproute2's NETNS_RUN_DIR). */
#define NETTAP_NS_RUN_DIR "/run/netns"

/* One line describing the last failure of a nettap_* call (this header's
 * or nettap-broker.h's) on this thread ("" if none yet). Valid until the next failing call
 * on this thread. */
const char *nettap_last_error(void);

/* --- Network namespaces ------------------------------------------------- */

bool nettap_ns_name_valid(const char *name);

/* Create namespace NAME if it is missing: a bind mount of a new network
 * namespace on NETTAP_NS_RUN_DIR/NAME, the directory created (0755) and made
 * a shared mount as iproute2 does. An existing namespace of that name is
 * kept (*created = false); a leftover plain file there (an interrupted
 * create) is reused. created may be NULL. The calling thread stays where it
 * was. Creations are serialised with flock() on the directory. */
int nettap_ns_create(const char *name, bool *created);

/* An O_RDONLY|O_CLOEXEC descriptor of namespace NAME (for setns(2), or for
 * nettap_params.netns_fd). -ENOENT if there is none. */
int nettap_ns_open(const char *name, int *fd_out);

/* Move the calling thread into namespace NAME (it must exist). If prev_fd
 * is not NULL, *prev_fd receives a descriptor of the namespace the thread
 * was in, for nettap_ns_leave(). */
int nettap_ns_enter(const char *name, int *prev_fd);

/* Move the calling thread back into prev_fd's namespace, and close prev_fd
 * (also on failure). A negative prev_fd is a no-op returning 0. */
int nettap_ns_leave(int prev_fd);

/* Bring the loopback interface of the calling thread's namespace up. */
int nettap_ns_lo_up(void);

/* What a VM needs: nettap_ns_create(NAME) + nettap_ns_enter(NAME, prev_fd) +
 * nettap_ns_lo_up(). On failure the thread is back where it was. */
int nettap_ns_setup(const char *name, bool *created, int *prev_fd);

/* Delete namespace NAME the way `ip netns del` does: lazy unmount, then
 * unlink. The namespace itself goes away once nothing (process, socket,
 * TAP descriptor) holds it any more. -ENOENT if there was none. */
int nettap_ns_delete(const char *name);

/* --- TAP devices -------------------------------------------------------- */

struct nettap;

struct nettap_params {
    const char *name;      /* interface name, see NETTAP_NAME_MAX */
    uint8_t mac[6];        /* unicast MAC; all zero = a random local one */
    uint32_t mtu;          /* JUMBO_MTU_MIN..MAX; 0 = JUMBO_MTU_DEFAULT */
    bool csum;             /* TUN_F_CSUM: frames may come with partial checksums */
    bool tso;              /* TUN_F_TSO4|TUN_F_TSO6 as well (needs csum) */
    uint32_t gso_max_size; /* cap on GSO frames the kernel builds; 0 = kernel default */
    bool up;               /* administratively up once created */
    bool carrier;          /* initial carrier (see nettap_set_carrier) */
    int netns_fd;          /* namespace to create it in; -1 = the calling thread's */
};

/*
 * Create a TAP device (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) named p->name in
 * the chosen namespace, with a struct virtio_net_hdr (10 bytes) in front of
 * every frame both ways, the offloads asked for, and the MAC, MTU and
 * up state set through rtnetlink. Its descriptor is non-blocking and
 * close-on-exec. -EINVAL for a bad name, MAC, MTU or offload combination;
 * -EEXIST if an interface of that name exists in that namespace (an existing
 * TAP is never attached to); -ENOENT if /dev/net/tun is missing. Nothing is
 * left behind on failure.
 */
int nettap_create(const struct nettap_params *p, struct nettap **out);

/* Delete the device (RTM_DELLINK, then close) and free t. NULL is fine. */
void nettap_destroy(struct nettap *t);

/* The descriptor to read(v)/write(v) frames on: each read gives one
 * virtio_net_hdr + frame, each write takes one. Owned by t. */
int nettap_fd(const struct nettap *t);
const char *nettap_name(const struct nettap *t);
int nettap_ifindex(const struct nettap *t);

/* Carrier (TUNSETCARRIER): the NIC's link state as the VM sees it
 * (IFF_LOWER_UP, operstate). No netlink round trip. */
int nettap_set_carrier(struct nettap *t, bool on);
bool nettap_carrier(const struct nettap *t);

/* Link settings through rtnetlink. -EINVAL outside the ranges above. */
int nettap_set_mtu(struct nettap *t, uint32_t mtu);
int nettap_set_mac(struct nettap *t, const uint8_t mac[6]);
int nettap_set_up(struct nettap *t, bool up);
/* Change the offloads (TUNSETOFFLOAD); tso needs csum. */
int nettap_set_offload(struct nettap *t, bool csum, bool tso);

/* The device as the kernel reports it now (RTM_GETLINK). */
struct nettap_link {
    int ifindex;
    uint8_t mac[6];
    uint32_t mtu;
    unsigned int flags; /* IFF_* including IFF_LOWER_UP */
    bool carrier;       /* IFLA_CARRIER */
};
int nettap_query(struct nettap *t, struct nettap_link *out);

/* Changes made to the device from anywhere (`ip link set ... mtu` inside
 * the VM): a descriptor readable when the kernel has reported some, and a
 * read that drains them. Returns 1 with what the device looks like now if
 * there was news of it, 0 if none, or a negative errno. Changes this module
 * made show up too. */
struct nettap_event {
    uint32_t mtu;
    bool gone; /* deleted */
};
int nettap_events_fd(const struct nettap *t);
int nettap_events_read(struct nettap *t, struct nettap_event *out);

bool nettap_name_valid(const char *name);

#endif
