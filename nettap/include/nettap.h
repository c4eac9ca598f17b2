/*
 * netvsc-tap: the TAP front end of a guest NIC. A child partition's network
 * stack is a Linux network namespace; each of its synthetic NICs shows up
 * there as a TAP device named after the NIC, which hv-vm feeds from and
 * drains into the NIC (netvsc.h). This module knows nothing of VMBus: it
 * manages named network namespaces (the way iproute2's `ip netns` does, so
 * `ip netns exec NAME ...` runs "inside the VM") and TAP devices, with link
 * settings applied through libnl (rtnetlink).
 *
 * Errors: every int function returns 0 or a negative errno; on failure,
 * netvsc_tap_last_error() describes in one line what was wrong and what is
 * allowed. Needs CAP_SYS_ADMIN (namespaces, mounts) and CAP_NET_ADMIN (TAP,
 * link settings): -EPERM otherwise; a worker without them has the root's
 * TAP broker (below) make its TAPs.
 *
 * Threads: namespaces are per thread. netvsc_ns_enter/leave/setup switch the
 * calling thread only; every other call leaves the calling thread in the
 * namespace it was in. One struct netvsc_tap is used by one thread at a
 * time. All calls here block on the kernel (netlink round trips, mounts)
 * except netvsc_tap_fd(), netvsc_tap_name(), netvsc_tap_ifindex() and
 * netvsc_tap_set_carrier(), which are cheap enough for the data path.
 */
#ifndef NETVSC_TAP_H
#define NETVSC_TAP_H

#include <stdbool.h>
#include <stdint.h>

/* Interface names: 1..15 characters of [A-Za-z0-9_.-], not "lo", ".", "..". */
#define NETVSC_TAP_NAME_MAX 15
/* L3 MTU accepted on a TAP. */
#define NETVSC_TAP_MTU_MIN 68u
#define NETVSC_TAP_MTU_MAX 9000u
#define NETVSC_TAP_MTU_DEFAULT 1500u
/* Namespace names: 1..64 characters of [A-Za-z0-9_.-], not "." or "..". */
#define NETVSC_NS_NAME_MAX 64
/* Where named namespaces live (iproute2's NETNS_RUN_DIR). */
#define NETVSC_NS_RUN_DIR "/run/netns"

/* One line describing the last failure of a netvsc_tap_* or netvsc_ns_*
 * call on this thread ("" if none yet). Valid until the next failing call
 * on this thread. */
const char *netvsc_tap_last_error(void);

/* --- Network namespaces ------------------------------------------------- */

bool netvsc_ns_name_valid(const char *name);

/* Create namespace NAME if it is missing: a bind mount of a new network
 * namespace on NETVSC_NS_RUN_DIR/NAME, the directory created (0755) and made
 * a shared mount as iproute2 does. An existing namespace of that name is
 * kept (*created = false); a leftover plain file there (an interrupted
 * create) is reused. created may be NULL. The calling thread stays where it
 * was. Creations are serialised with flock() on the directory. */
int netvsc_ns_create(const char *name, bool *created);

/* An O_RDONLY|O_CLOEXEC descriptor of namespace NAME (for setns(2), or for
 * netvsc_tap_params.netns_fd). -ENOENT if there is none. */
int netvsc_ns_open(const char *name, int *fd_out);

/* Move the calling thread into namespace NAME (it must exist). If prev_fd
 * is not NULL, *prev_fd receives a descriptor of the namespace the thread
 * was in, for netvsc_ns_leave(). */
int netvsc_ns_enter(const char *name, int *prev_fd);

/* Move the calling thread back into prev_fd's namespace, and close prev_fd
 * (also on failure). A negative prev_fd is a no-op returning 0. */
int netvsc_ns_leave(int prev_fd);

/* Bring the loopback interface of the calling thread's namespace up. */
int netvsc_ns_lo_up(void);

/* What a VM needs: netvsc_ns_create(NAME) + netvsc_ns_enter(NAME, prev_fd) +
 * netvsc_ns_lo_up(). On failure the thread is back where it was. */
int netvsc_ns_setup(const char *name, bool *created, int *prev_fd);

/* Delete namespace NAME the way `ip netns del` does: lazy unmount, then
 * unlink. The namespace itself goes away once nothing (process, socket,
 * TAP descriptor) holds it any more. -ENOENT if there was none. */
int netvsc_ns_delete(const char *name);

/* --- TAP devices -------------------------------------------------------- */

struct netvsc_tap;

struct netvsc_tap_params {
    const char *name;      /* interface name, see NETVSC_TAP_NAME_MAX */
    uint8_t mac[6];        /* unicast MAC; all zero = a random local one */
    uint32_t mtu;          /* NETVSC_TAP_MTU_MIN..MAX; 0 = 1500 */
    bool csum;             /* TUN_F_CSUM: frames may come with partial checksums */
    bool tso;              /* TUN_F_TSO4|TUN_F_TSO6 as well (needs csum) */
    uint32_t gso_max_size; /* cap on GSO frames the kernel builds; 0 = kernel default */
    bool up;               /* administratively up once created */
    bool carrier;          /* initial carrier (see netvsc_tap_set_carrier) */
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
int netvsc_tap_create(const struct netvsc_tap_params *p, struct netvsc_tap **out);

/* Delete the device (RTM_DELLINK, then close) and free t. NULL is fine. */
void netvsc_tap_destroy(struct netvsc_tap *t);

/* The descriptor to read(v)/write(v) frames on: each read gives one
 * virtio_net_hdr + frame, each write takes one. Owned by t. */
int netvsc_tap_fd(const struct netvsc_tap *t);
const char *netvsc_tap_name(const struct netvsc_tap *t);
int netvsc_tap_ifindex(const struct netvsc_tap *t);

/* Carrier (TUNSETCARRIER): the NIC's link state as the VM sees it
 * (IFF_LOWER_UP, operstate). No netlink round trip. */
int netvsc_tap_set_carrier(struct netvsc_tap *t, bool on);
bool netvsc_tap_carrier(const struct netvsc_tap *t);

/* Link settings through rtnetlink. -EINVAL outside the ranges above. */
int netvsc_tap_set_mtu(struct netvsc_tap *t, uint32_t mtu);
int netvsc_tap_set_mac(struct netvsc_tap *t, const uint8_t mac[6]);
int netvsc_tap_set_up(struct netvsc_tap *t, bool up);
/* Change the offloads (TUNSETOFFLOAD); tso needs csum. */
int netvsc_tap_set_offload(struct netvsc_tap *t, bool csum, bool tso);

/* The device as the kernel reports it now (RTM_GETLINK). */
struct netvsc_tap_link {
    int ifindex;
    uint8_t mac[6];
    uint32_t mtu;
    unsigned int flags; /* IFF_* including IFF_LOWER_UP */
    bool carrier;       /* IFLA_CARRIER */
};
int netvsc_tap_query(struct netvsc_tap *t, struct netvsc_tap_link *out);

/* Changes made to the device from anywhere (`ip link set ... mtu` inside
 * the VM): a descriptor readable when the kernel has reported some, and a
 * read that drains them. Returns 1 with what the device looks like now if
 * there was news of it, 0 if none, or a negative errno. Changes this module
 * made show up too. */
struct netvsc_tap_event {
    uint32_t mtu;
    bool gone; /* deleted */
};
int netvsc_tap_events_fd(const struct netvsc_tap *t);
int netvsc_tap_events_read(struct netvsc_tap *t, struct netvsc_tap_event *out);

bool netvsc_tap_name_valid(const char *name);

#endif
