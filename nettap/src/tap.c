/*
 * TAP devices in network namespaces. Link settings go through rtnetlink
 * (libnl-route): each TAP keeps its own netlink socket, opened inside the
 * TAP's namespace, so later changes reach the right namespace whatever
 * namespace the calling thread is in then.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <net/if.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include "nettap.h"
#include "nettap-private.h"

#define TUN_DEV "/dev/net/tun"

bool nettap_name_valid(const char *name)
{
    return name && nettap_name_chars_ok(name, NETTAP_NAME_MAX) && strcmp(name, "lo") != 0;
}

/* RTNLGRP_LINK notifications: note the MTU of our device (or its end). */
static int on_link_event(struct nl_msg *msg, void *arg)
{
    struct nettap *t = arg;
    struct nlmsghdr *h = nlmsg_hdr(msg);
    if ((h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) ||
        !nlmsg_valid_hdr(h, sizeof(struct ifinfomsg)))
        return NL_OK;
    const struct ifinfomsg *ifi = nlmsg_data(h);
    if (ifi->ifi_index != t->ifindex)
        return NL_OK;
    if (h->nlmsg_type == RTM_DELLINK) {
        t->ev_gone = true;
        t->ev_seen = true;
        return NL_OK;
    }
    struct nlattr *tb[IFLA_MAX + 1];
    if (nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, NULL) == 0 && tb[IFLA_MTU] &&
        nla_len(tb[IFLA_MTU]) >= 4) {
        t->ev_mtu = nla_get_u32(tb[IFLA_MTU]);
        t->ev_seen = true;
    }
    return NL_OK;
}

static int ev_open(struct nettap *t)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        return nettap_fail(-ENOMEM, "netlink socket");
    nl_socket_disable_seq_check(sk);
    nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_link_event, t);
    int err = nl_connect(sk, NETLINK_ROUTE);
    if (err == 0)
        err = nl_socket_add_membership(sk, RTNLGRP_LINK);
    if (err == 0)
        err = nl_socket_set_nonblocking(sk);
    if (err < 0) {
        nl_socket_free(sk);
        return nettap_fail(nettap_nl_errno(err), "netlink (RTNLGRP_LINK) subscribe");
    }
    int fd = nl_socket_get_fd(sk);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    t->ev = sk;
    return 0;
}

static bool mac_is_zero(const uint8_t mac[6])
{
    static const uint8_t zero[6];
    return memcmp(mac, zero, 6) == 0;
}

static int check_mac(const uint8_t mac[6])
{
    if (mac[0] & 1)
        return nettap_failx(-EINVAL,
                     "MAC %02x:%02x:%02x:%02x:%02x:%02x is a multicast address: a NIC needs a "
                     "unicast one (first byte even)",
                     mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    return 0;
}

static int check_mtu(uint32_t mtu)
{
    if (!jumbo_mtu_valid(mtu))
        return nettap_failx(-EINVAL, "MTU %u is out of range: allowed %u..%u", mtu, JUMBO_MTU_MIN,
                            JUMBO_MTU_MAX);
    return 0;
}

static unsigned offload_bits(bool csum, bool tso)
{
    unsigned v = 0;
    if (csum)
        v |= TUN_F_CSUM;
    if (tso)
        v |= TUN_F_TSO4 | TUN_F_TSO6;
    return v;
}

/* Set IFLA_GSO_MAX_SIZE; libnl-route has no setter for it, so the request
 * is built with libnl's message API. */
static int set_gso_max_size(struct nl_sock *sk, int ifindex, uint32_t size)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, 0);
    if (!msg)
        return -ENOMEM;
    int err = nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO);
    if (err >= 0)
        err = nla_put_u32(msg, IFLA_GSO_MAX_SIZE, size);
    if (err >= 0)
        err = nl_send_sync(sk, msg); /* frees msg */
    else
        nlmsg_free(msg);
    return nettap_nl_errno(err);
}

/* Open /dev/net/tun and attach it to a new device called name, in the
 * calling thread's namespace (the TAP lives where the opener is). */
static int tun_open(const struct nettap_params *p, int *fd_out)
{
    int rc;
    int fd = open(TUN_DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
            return nettap_failx(-ENOENT, "%s is missing: the kernel has no TUN/TAP support", TUN_DEV);
        return nettap_fail(-errno, "open %s", TUN_DEV);
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    /* IFF_TUN_EXCL: fail rather than attach to a device that exists. */
    ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL);
    memcpy(ifr.ifr_name, p->name, strlen(p->name));
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        if (errno == EBUSY || errno == EEXIST)
            rc =
                nettap_failx(-EEXIST, "an interface named '%s' already exists in this namespace", p->name);
        else
            rc = nettap_fail(-errno, "TAP %s: TUNSETIFF", p->name);
        goto err_close;
    }
    int hdr_sz = (int)sizeof(struct virtio_net_hdr);
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_sz) < 0) {
        rc = nettap_fail(-errno, "TAP %s: TUNSETVNETHDRSZ %d", p->name, hdr_sz);
        goto err_close;
    }
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)offload_bits(p->csum, p->tso)) < 0) {
        rc = nettap_fail(-errno, "TAP %s: TUNSETOFFLOAD%s%s", p->name, p->csum ? " csum" : "",
                  p->tso ? " tso4/6" : "");
        goto err_close;
    }
    int on = p->carrier;
    if (ioctl(fd, TUNSETCARRIER, &on) < 0) {
        rc = nettap_fail(-errno, "TAP %s: TUNSETCARRIER %d", p->name, on);
        goto err_close;
    }
    *fd_out = fd;
    return 0;
err_close:
    close(fd);
    return rc;
}

/* MAC, MTU and up state in one request. */
static int tap_configure(struct nettap *t, const struct nettap_params *p, uint32_t mtu)
{
    struct rtnl_link *cur = NULL, *changes = NULL;
    struct nl_addr *addr = NULL;
    int rc;
    int err = rtnl_link_get_kernel(t->nl, 0, t->name, &cur);
    if (err < 0)
        return nettap_fail(nettap_nl_errno(err), "TAP %s: look up the new interface", t->name);
    t->ifindex = rtnl_link_get_ifindex(cur);
    rtnl_link_put(cur);

    if (p->gso_max_size) {
        rc = set_gso_max_size(t->nl, t->ifindex, p->gso_max_size);
        if (rc < 0)
            return nettap_fail(rc, "TAP %s: set gso_max_size %u", t->name, p->gso_max_size);
    }
    if (!(changes = rtnl_link_alloc()))
        return nettap_fail(-ENOMEM, "link object");
    rtnl_link_set_mtu(changes, mtu);
    if (!mac_is_zero(p->mac)) {
        if (!(addr = nl_addr_build(AF_LLC, p->mac, 6))) {
            rc = nettap_fail(-ENOMEM, "link address object");
            goto out;
        }
        rtnl_link_set_addr(changes, addr);
    }
    if (p->up)
        rtnl_link_set_flags(changes, IFF_UP);
    rc = nettap_link_change(t->nl, t->ifindex, changes);
    if (rc < 0)
        nettap_fail(rc, "TAP %s: set MTU %u%s%s", t->name, mtu, addr ? ", MAC" : "", p->up ? ", up" : "");
out:
    if (addr)
        nl_addr_put(addr);
    rtnl_link_put(changes);
    return rc;
}

int nettap_create(const struct nettap_params *p, struct nettap **out)
{
    int rc;
    int home = -1;
    struct nettap *t = NULL;
    if (!p || !out)
        return nettap_failx(-EINVAL, "nettap_create: no parameters");
    if (!nettap_name_valid(p->name))
        return nettap_failx(-EINVAL,
                     "interface name '%.40s' is invalid: use 1..%d characters of A-Z a-z 0-9 _ . - "
                     "(not 'lo', '.' or '..')",
                     p->name ? p->name : "(null)", NETTAP_NAME_MAX);
    uint32_t mtu = p->mtu ? p->mtu : JUMBO_MTU_DEFAULT;
    if ((rc = check_mtu(mtu)) < 0 || (rc = check_mac(p->mac)) < 0)
        return rc;
    if (p->tso && !p->csum)
        return nettap_failx(-EINVAL, "TAP %s: TSO needs checksum offload as well", p->name);
    if (p->gso_max_size && p->gso_max_size < mtu + ETH_HLEN)
        return nettap_failx(-EINVAL, "TAP %s: gso_max_size %u is below one frame (%u)", p->name,
                     p->gso_max_size, mtu + ETH_HLEN);

    if (!(t = calloc(1, sizeof(*t))))
        return nettap_fail(-ENOMEM, "TAP %s", p->name);
    t->fd = -1;
    t->broker = -1;
    t->carrier = p->carrier;
    snprintf(t->name, sizeof(t->name), "%s", p->name);

    if (p->netns_fd >= 0) {
        home = open(NETTAP_THREAD_NETNS, O_RDONLY | O_CLOEXEC);
        if (home < 0) {
            rc = nettap_fail(-errno, "open %s", NETTAP_THREAD_NETNS);
            goto err;
        }
        if (setns(p->netns_fd, CLONE_NEWNET) < 0) {
            rc = nettap_fail(-errno, "TAP %s: setns into the target namespace", p->name);
            goto err;
        }
    }
    /* Both the TAP and its netlink socket belong to the namespace they are
     * opened in. */
    if ((rc = tun_open(p, &t->fd)) < 0 || (rc = nettap_nl_open(&t->nl)) < 0 || (rc = ev_open(t)) < 0)
        goto err;
    if (home >= 0) {
        if (setns(home, CLONE_NEWNET) < 0) {
            rc = nettap_fail(-errno, "TAP %s: cannot return to the original network namespace", p->name);
            goto err;
        }
        close(home);
        home = -1;
    }
    if ((rc = tap_configure(t, p, mtu)) < 0)
        goto err;
    *out = t;
    return 0;
err:
    if (home >= 0) {
        /* If this fails too, the first error is the one to report. */
        setns(home, CLONE_NEWNET);
        close(home);
    }
    if (t->fd >= 0)
        close(t->fd); /* not persistent: the device goes with the descriptor */
    if (t->nl)
        nl_socket_free(t->nl);
    if (t->ev)
        nl_socket_free(t->ev);
    free(t);
    return rc;
}

void nettap_destroy(struct nettap *t)
{
    if (!t)
        return;
    /* Delete explicitly so that the device goes even if a copy of the
     * descriptor survives somewhere (a fork that did not exec). A TAP made
     * by the broker has no such copy, and its user no right to delete:
     * the device goes with the descriptor. */
    if (t->nl && t->ifindex > 0 && t->broker < 0) {
        struct rtnl_link *l = rtnl_link_alloc();
        if (l) {
            rtnl_link_set_ifindex(l, t->ifindex);
            rtnl_link_delete(t->nl, l);
            rtnl_link_put(l);
        }
    }
    if (t->fd >= 0)
        close(t->fd);
    if (t->nl)
        nl_socket_free(t->nl);
    if (t->ev)
        nl_socket_free(t->ev);
    free(t);
}

int nettap_wrap(int fd, int ifindex, const char *name, bool carrier, int broker,
                    struct nettap **out)
{
    struct nettap *t = calloc(1, sizeof(*t));
    if (!t)
        return nettap_fail(-ENOMEM, "TAP %s", name);
    t->fd = fd;
    t->ifindex = ifindex;
    t->carrier = carrier;
    t->broker = broker;
    snprintf(t->name, sizeof(t->name), "%s", name);
    int rc;
    if ((rc = nettap_nl_open(&t->nl)) < 0 || (rc = ev_open(t)) < 0) {
        if (t->nl)
            nl_socket_free(t->nl);
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int nettap_shadow_open(int netns_fd, struct nettap **out)
{
    struct nettap *t = calloc(1, sizeof(*t));
    if (!t)
        return nettap_fail(-ENOMEM, "link handle");
    t->fd = -1;
    t->broker = -1;
    int home = open(NETTAP_THREAD_NETNS, O_RDONLY | O_CLOEXEC);
    int rc;
    if (home < 0) {
        rc = nettap_fail(-errno, "open %s", NETTAP_THREAD_NETNS);
        goto err;
    }
    if (setns(netns_fd, CLONE_NEWNET) < 0) {
        rc = nettap_fail(-errno, "setns into the target namespace");
        goto err;
    }
    rc = nettap_nl_open(&t->nl);
    if (setns(home, CLONE_NEWNET) < 0 && rc == 0)
        rc = nettap_fail(-errno, "cannot return to the original network namespace");
    if (rc < 0)
        goto err;
    close(home);
    *out = t;
    return 0;
err:
    if (home >= 0)
        close(home);
    if (t->nl)
        nl_socket_free(t->nl);
    free(t);
    return rc;
}

int nettap_release_fd(struct nettap *t)
{
    int fd = t->fd;
    if (t->nl)
        nl_socket_free(t->nl);
    if (t->ev)
        nl_socket_free(t->ev);
    free(t);
    return fd;
}

int nettap_events_fd(const struct nettap *t)
{
    return t->ev ? nl_socket_get_fd(t->ev) : -1;
}

int nettap_events_read(struct nettap *t, struct nettap_event *out)
{
    memset(out, 0, sizeof(*out));
    if (!t->ev)
        return 0;
    t->ev_seen = t->ev_gone = false;
    bool overrun = false;
    for (;;) {
        int err = nl_recvmsgs_default(t->ev);
        if (err >= 0)
            continue;
        if (err == -NLE_AGAIN)
            break;
        if (err == -NLE_NOMEM || err == -NLE_MSG_OVERFLOW) {
            /* The socket overran (ENOBUFS): news was lost, and what is
             * still queued is older than it. */
            overrun = true;
            continue;
        }
        return nettap_fail(nettap_nl_errno(err), "TAP %s: reading link notifications", t->name);
    }
    if (overrun) {
        /* Ask the device itself, after the stale messages. */
        struct nettap_link l;
        int rc = nettap_query(t, &l);
        if (rc == -ENODEV) {
            t->ev_gone = t->ev_seen = true;
        } else if (rc == 0) {
            t->ev_mtu = l.mtu;
            t->ev_seen = true;
        }
    }
    if (!t->ev_seen)
        return 0;
    out->gone = t->ev_gone;
    out->mtu = t->ev_mtu;
    return 1;
}

int nettap_fd(const struct nettap *t)
{
    return t->fd;
}

const char *nettap_name(const struct nettap *t)
{
    return t->name;
}

int nettap_ifindex(const struct nettap *t)
{
    return t->ifindex;
}

int nettap_set_carrier(struct nettap *t, bool on)
{
    int v = on;
    if (ioctl(t->fd, TUNSETCARRIER, &v) < 0)
        return nettap_fail(-errno, "TAP %s: carrier %s", t->name, on ? "on" : "off");
    t->carrier = on;
    return 0;
}

bool nettap_carrier(const struct nettap *t)
{
    return t->carrier;
}

int nettap_set_mtu(struct nettap *t, uint32_t mtu)
{
    int rc = check_mtu(mtu);
    if (rc < 0)
        return rc;
    if (t->broker >= 0)
        return nettap_brokered_change(t, NETTAP_BROKER_OP_SET_MTU, mtu, NULL, false);
    struct rtnl_link *changes = rtnl_link_alloc();
    if (!changes)
        return nettap_fail(-ENOMEM, "link object");
    rtnl_link_set_mtu(changes, mtu);
    rc = nettap_link_change(t->nl, t->ifindex, changes);
    rtnl_link_put(changes);
    if (rc < 0)
        return nettap_fail(rc, "TAP %s: set MTU %u", t->name, mtu);
    return 0;
}

int nettap_set_mac(struct nettap *t, const uint8_t mac[6])
{
    int rc = check_mac(mac);
    if (rc < 0)
        return rc;
    if (mac_is_zero(mac))
        return nettap_failx(-EINVAL, "TAP %s: all-zero MAC", t->name);
    if (t->broker >= 0)
        return nettap_brokered_change(t, NETTAP_BROKER_OP_SET_MAC, 0, mac, false);
    struct rtnl_link *changes = rtnl_link_alloc();
    struct nl_addr *addr = nl_addr_build(AF_LLC, mac, 6);
    if (!changes || !addr) {
        rc = nettap_fail(-ENOMEM, "link object");
        goto out;
    }
    rtnl_link_set_addr(changes, addr);
    rc = nettap_link_change(t->nl, t->ifindex, changes);
    if (rc < 0)
        nettap_fail(rc, "TAP %s: set MAC %02x:%02x:%02x:%02x:%02x:%02x", t->name, mac[0], mac[1], mac[2],
             mac[3], mac[4], mac[5]);
out:
    if (addr)
        nl_addr_put(addr);
    if (changes)
        rtnl_link_put(changes);
    return rc;
}

int nettap_set_up(struct nettap *t, bool up)
{
    if (t->broker >= 0)
        return nettap_brokered_change(t, NETTAP_BROKER_OP_SET_UP, 0, NULL, up);
    struct rtnl_link *changes = rtnl_link_alloc();
    if (!changes)
        return nettap_fail(-ENOMEM, "link object");
    if (up)
        rtnl_link_set_flags(changes, IFF_UP);
    else
        rtnl_link_unset_flags(changes, IFF_UP);
    int rc = nettap_link_change(t->nl, t->ifindex, changes);
    rtnl_link_put(changes);
    if (rc < 0)
        return nettap_fail(rc, "TAP %s: set %s", t->name, up ? "up" : "down");
    return 0;
}

int nettap_set_offload(struct nettap *t, bool csum, bool tso)
{
    if (tso && !csum)
        return nettap_failx(-EINVAL, "TAP %s: TSO needs checksum offload as well", t->name);
    if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)offload_bits(csum, tso)) < 0)
        return nettap_fail(-errno, "TAP %s: TUNSETOFFLOAD", t->name);
    return 0;
}

/* What one RTM_NEWLINK answer says about a device's identity. */
struct link_identity {
    bool seen;
    char name[IFNAMSIZ];
    char kind[16];
    int64_t owner; /* IFLA_TUN_OWNER, -1 if none */
};

static int on_link_identity(struct nl_msg *msg, void *arg)
{
    struct link_identity *id = arg;
    struct nlmsghdr *h = nlmsg_hdr(msg);
    struct nlattr *tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1], *td[IFLA_TUN_MAX + 1];
    if (h->nlmsg_type != RTM_NEWLINK ||
        nlmsg_parse(h, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0)
        return NL_SKIP;
    id->seen = true;
    if (tb[IFLA_IFNAME])
        nla_strlcpy(id->name, tb[IFLA_IFNAME], sizeof(id->name));
    if (tb[IFLA_LINKINFO] && nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) == 0) {
        if (li[IFLA_INFO_KIND])
            nla_strlcpy(id->kind, li[IFLA_INFO_KIND], sizeof(id->kind));
        if (li[IFLA_INFO_DATA] &&
            nla_parse_nested(td, IFLA_TUN_MAX, li[IFLA_INFO_DATA], NULL) == 0 &&
            td[IFLA_TUN_OWNER] && nla_len(td[IFLA_TUN_OWNER]) >= 4)
            id->owner = nla_get_u32(td[IFLA_TUN_OWNER]);
    }
    return NL_OK;
}

int nettap_same_device(struct nettap *t, int64_t owner)
{
    struct link_identity id = {.owner = -1};
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = t->ifindex};
    struct nl_cb *own = nl_socket_get_cb(t->nl); /* a reference: put below */
    struct nl_cb *cb = own ? nl_cb_clone(own) : NULL;
    nl_cb_put(own);
    if (!cb)
        return nettap_fail(-ENOMEM, "TAP %s: netlink callbacks", t->name);
    nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_link_identity, &id);
    int err = nl_send_simple(t->nl, RTM_GETLINK, 0, &ifi, sizeof(ifi));
    if (err >= 0)
        err = nl_recvmsgs(t->nl, cb);
    /* The answer, then the acknowledgement libnl asked for (an error
     * answer, such as no such device, is its own acknowledgement). */
    if (err >= 0 && id.seen)
        err = nl_wait_for_ack(t->nl);
    nl_cb_put(cb);
    if (err < 0)
        return nettap_fail(nettap_nl_errno(err), "TAP %s: query link %d", t->name, t->ifindex);
    /* With an owner, the owner says whose TAP it is (one renamed inside
     * the VM stays its own); without one, only the name can. */
    if (!id.seen || strcmp(id.kind, "tun") != 0 || id.owner != owner ||
        (owner < 0 && strcmp(id.name, t->name) != 0))
        return nettap_failx(-ESTALE, "TAP %s: interface %d is another device now", t->name, t->ifindex);
    return 0;
}

int nettap_query(struct nettap *t, struct nettap_link *out)
{
    struct rtnl_link *l = NULL;
    int err = rtnl_link_get_kernel(t->nl, t->ifindex, NULL, &l);
    if (err < 0)
        return nettap_fail(nettap_nl_errno(err), "TAP %s: query link", t->name);
    memset(out, 0, sizeof(*out));
    out->ifindex = rtnl_link_get_ifindex(l);
    out->mtu = rtnl_link_get_mtu(l);
    out->flags = rtnl_link_get_flags(l);
    out->carrier = rtnl_link_get_carrier(l) != 0;
    struct nl_addr *a = rtnl_link_get_addr(l);
    if (a && nl_addr_get_len(a) == 6)
        memcpy(out->mac, nl_addr_get_binary_addr(a), 6);
    rtnl_link_put(l);
    return 0;
}
