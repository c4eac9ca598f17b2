/*
 * The TAP front end: named network namespaces and TAP devices in them.
 *
 * Namespaces are made the way iproute2 makes them, so that `ip netns exec`
 * and `ip netns del` work on ours and we work on theirs. Link settings go
 * through rtnetlink (libnl-route): each TAP keeps its own netlink socket,
 * opened inside the TAP's namespace, so later changes reach the right
 * namespace whatever namespace the calling thread is in then.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <net/if.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/nsfs.h>
#include <linux/virtio_net.h>

#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include "nettap.h"
#include "nettap-private.h"

#define TUN_DEV "/dev/net/tun"
#define THREAD_NETNS "/proc/thread-self/ns/net"

static _Thread_local char last_error[256];

const char *netvsc_tap_last_error(void)
{
    return last_error;
}

static int vrecord(int err, bool with_errno, const char *fmt, va_list ap)
{
    int n = vsnprintf(last_error, sizeof(last_error), fmt, ap);
    if (with_errno && n >= 0 && (size_t)n < sizeof(last_error) - 2 && err < 0)
        snprintf(last_error + n, sizeof(last_error) - (size_t)n, ": %s", strerror(-err));
    return err;
}

/* Record what failed, with the errno's text, and pass err through:
 * `return fail(-errno, "open %s", path)`. */
__attribute__((format(printf, 2, 3))) static int fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(err, true, fmt, ap);
    va_end(ap);
    return err;
}

/* Same, for messages that already say everything (bad arguments). */
__attribute__((format(printf, 2, 3))) static int failx(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(err, false, fmt, ap);
    va_end(ap);
    return err;
}

int netvsc_tap_record_error(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(err, false, fmt, ap);
    va_end(ap);
    return err;
}

/* libnl folds kernel errnos into its own codes; unfold the ones that
 * matter to callers (nl_syserr2nlerr() is the forward map). */
static int nl_errno(int nlerr)
{
    switch (nlerr < 0 ? -nlerr : nlerr) {
    case 0:
        return 0;
    case NLE_INTR:
        return -EINTR;
    case NLE_BAD_SOCK:
        return -EBADF;
    case NLE_AGAIN:
        return -EAGAIN;
    case NLE_NOMEM:
        return -ENOMEM;
    case NLE_EXIST:
        return -EEXIST;
    case NLE_INVAL:
        return -EINVAL;
    case NLE_RANGE:
        return -ERANGE;
    case NLE_MSGSIZE:
        return -EMSGSIZE;
    case NLE_OPNOTSUPP:
        return -EOPNOTSUPP;
    case NLE_AF_NOSUPPORT:
        return -EAFNOSUPPORT;
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
        return -ENODEV;
    case NLE_NOADDR:
        return -EADDRNOTAVAIL;
    case NLE_BUSY:
        return -EBUSY;
    case NLE_NOACCESS:
        return -EACCES;
    case NLE_PERM:
        return -EPERM;
    case NLE_PROTO_MISMATCH:
        return -EPROTONOSUPPORT;
    default:
        return -EIO;
    }
}

static bool name_chars_ok(const char *name, size_t max)
{
    size_t n = strnlen(name, max + 1);
    if (n == 0 || n > max || !strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool netvsc_ns_name_valid(const char *name)
{
    return name && name_chars_ok(name, NETVSC_NS_NAME_MAX);
}

bool netvsc_tap_name_valid(const char *name)
{
    return name && name_chars_ok(name, NETVSC_TAP_NAME_MAX) && strcmp(name, "lo") != 0;
}

static int check_ns_name(const char *name)
{
    if (!netvsc_ns_name_valid(name))
        return failx(-EINVAL,
                     "namespace name '%.80s' is invalid: use 1..%d characters of A-Z a-z 0-9 _ . - "
                     "(not '.' or '..')",
                     name ? name : "(null)", NETVSC_NS_NAME_MAX);
    return 0;
}

static void ns_path(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", NETVSC_NS_RUN_DIR, name);
}

/* True if fd is a network namespace (an nsfs file of type CLONE_NEWNET). */
static bool is_netns_fd(int fd)
{
    return ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}

/* Make NETVSC_NS_RUN_DIR a shared mount, as iproute2 does, so a namespace
 * mounted there shows up (and is unmounted) in every mount namespace that
 * shares it. If the directory is not a mount point yet, bind it onto
 * itself first. The caller holds the directory lock: without it, racing
 * creators stack bind mounts recursively (Debian #949235). */
static int make_run_dir_shared(void)
{
    bool bound = false;
    while (mount("", NETVSC_NS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) < 0) {
        int err = -errno;
        if (err != -EINVAL || bound)
            return fail(err, "mount --make-shared %s", NETVSC_NS_RUN_DIR);
        if (mount(NETVSC_NS_RUN_DIR, NETVSC_NS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) < 0)
            return fail(-errno, "mount --bind %s %s", NETVSC_NS_RUN_DIR, NETVSC_NS_RUN_DIR);
        bound = true;
    }
    return 0;
}

/* Bind a brand-new network namespace onto path. The calling thread
 * unshares into it just long enough to name it, then goes back. */
static int mount_new_netns(const char *path)
{
    int rc;
    int home = open(THREAD_NETNS, O_RDONLY | O_CLOEXEC);
    if (home < 0)
        return fail(-errno, "open %s", THREAD_NETNS);
    if (unshare(CLONE_NEWNET) < 0) {
        rc = fail(-errno, "unshare(CLONE_NEWNET) for %s", path);
        goto out_close;
    }
    rc = 0;
    if (mount(THREAD_NETNS, path, "none", MS_BIND, NULL) < 0)
        rc = fail(-errno, "bind mount of a new network namespace on %s", path);
    if (setns(home, CLONE_NEWNET) < 0)
        rc =
            fail(-errno, "cannot return to the original network namespace after creating %s", path);
out_close:
    close(home);
    return rc;
}

int netvsc_ns_create(const char *name, bool *created)
{
    char path[sizeof(NETVSC_NS_RUN_DIR) + NETVSC_NS_NAME_MAX + 2];
    int rc = check_ns_name(name);
    if (rc < 0)
        return rc;
    if (created)
        *created = false;
    ns_path(name, path, sizeof(path));

    if (mkdir(NETVSC_NS_RUN_DIR, 0755) < 0 && errno != EEXIST)
        return fail(-errno, "mkdir %s", NETVSC_NS_RUN_DIR);
    int lock = open(NETVSC_NS_RUN_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock < 0)
        return fail(-errno, "open %s", NETVSC_NS_RUN_DIR);
    if (flock(lock, LOCK_EX) < 0) {
        rc = fail(-errno, "flock %s", NETVSC_NS_RUN_DIR);
        goto out_lock;
    }
    rc = make_run_dir_shared();
    if (rc < 0)
        goto out_lock;

    bool made_file = false;
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd >= 0) {
        made_file = true;
    } else if (errno == EEXIST) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = fail(-errno, "open %s", path);
            goto out_lock;
        }
        if (is_netns_fd(fd)) {
            close(fd);
            rc = 0;
            goto out_lock;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            rc = failx(-EEXIST, "%s exists and is not a network namespace", path);
            goto out_lock;
        }
        /* A plain file: a create that was interrupted before its mount. */
    } else {
        rc = fail(-errno, "cannot create namespace file %s", path);
        goto out_lock;
    }
    close(fd);

    rc = mount_new_netns(path);
    if (rc < 0) {
        if (made_file)
            unlink(path);
        goto out_lock;
    }
    if (created)
        *created = true;
out_lock:
    close(lock); /* drops the flock */
    return rc;
}

int netvsc_ns_open(const char *name, int *fd_out)
{
    char path[sizeof(NETVSC_NS_RUN_DIR) + NETVSC_NS_NAME_MAX + 2];
    int rc = check_ns_name(name);
    if (rc < 0)
        return rc;
    ns_path(name, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return failx(-ENOENT, "network namespace '%s' does not exist (no %s)", name, path);
        return fail(-errno, "open %s", path);
    }
    if (!is_netns_fd(fd)) {
        close(fd);
        return failx(-ENOENT, "%s is not a network namespace (an interrupted create?)", path);
    }
    *fd_out = fd;
    return 0;
}

int netvsc_ns_enter(const char *name, int *prev_fd)
{
    int fd, rc;
    int prev = -1;
    if ((rc = netvsc_ns_open(name, &fd)) < 0)
        return rc;
    if (prev_fd) {
        prev = open(THREAD_NETNS, O_RDONLY | O_CLOEXEC);
        if (prev < 0) {
            rc = fail(-errno, "open %s", THREAD_NETNS);
            goto out_close;
        }
    }
    if (setns(fd, CLONE_NEWNET) < 0) {
        rc = fail(-errno, "setns into network namespace '%s'", name);
        if (prev >= 0)
            close(prev);
        goto out_close;
    }
    if (prev_fd)
        *prev_fd = prev;
    rc = 0;
out_close:
    close(fd);
    return rc;
}

int netvsc_ns_leave(int prev_fd)
{
    if (prev_fd < 0)
        return 0;
    int rc = 0;
    if (setns(prev_fd, CLONE_NEWNET) < 0)
        rc = fail(-errno, "setns back to the previous network namespace");
    close(prev_fd);
    return rc;
}

static int nl_open(struct nl_sock **out)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        return fail(-ENOMEM, "netlink socket");
    int err = nl_connect(sk, NETLINK_ROUTE);
    if (err < 0) {
        nl_socket_free(sk);
        return fail(nl_errno(err), "netlink (NETLINK_ROUTE) connect");
    }
    *out = sk;
    return 0;
}

/* RTNLGRP_LINK notifications: note the MTU of our device (or its end). */
static int on_link_event(struct nl_msg *msg, void *arg)
{
    struct netvsc_tap *t = arg;
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

static int ev_open(struct netvsc_tap *t)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        return fail(-ENOMEM, "netlink socket");
    nl_socket_disable_seq_check(sk);
    nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_link_event, t);
    int err = nl_connect(sk, NETLINK_ROUTE);
    if (err == 0)
        err = nl_socket_add_membership(sk, RTNLGRP_LINK);
    if (err == 0)
        err = nl_socket_set_nonblocking(sk);
    if (err < 0) {
        nl_socket_free(sk);
        return fail(nl_errno(err), "netlink (RTNLGRP_LINK) subscribe");
    }
    int fd = nl_socket_get_fd(sk);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    t->ev = sk;
    return 0;
}

/* Apply changes to ifindex with one RTM_NEWLINK. Only the flags named in
 * changes' mask are touched (the kernel combines with ifi_change), so the
 * original needs nothing but its index. */
static int link_change(struct nl_sock *sk, int ifindex, struct rtnl_link *changes)
{
    struct rtnl_link *orig = rtnl_link_alloc();
    if (!orig)
        return -ENOMEM;
    rtnl_link_set_ifindex(orig, ifindex);
    int err = rtnl_link_change(sk, orig, changes, 0);
    rtnl_link_put(orig);
    return nl_errno(err);
}

int netvsc_ns_lo_up(void)
{
    struct nl_sock *sk = NULL;
    struct rtnl_link *lo = NULL, *changes = NULL;
    int rc = nl_open(&sk);
    if (rc < 0)
        return rc;
    int err = rtnl_link_get_kernel(sk, 0, "lo", &lo);
    if (err < 0) {
        rc = fail(nl_errno(err), "loopback interface 'lo'");
        goto out;
    }
    if (!(changes = rtnl_link_alloc())) {
        rc = fail(-ENOMEM, "link object");
        goto out;
    }
    rtnl_link_set_flags(changes, IFF_UP);
    rc = link_change(sk, rtnl_link_get_ifindex(lo), changes);
    if (rc < 0)
        fail(rc, "bring 'lo' up");
out:
    if (changes)
        rtnl_link_put(changes);
    if (lo)
        rtnl_link_put(lo);
    nl_socket_free(sk);
    return rc;
}

int netvsc_ns_setup(const char *name, bool *created, int *prev_fd)
{
    int prev = -1;
    int rc = netvsc_ns_create(name, created);
    if (rc < 0)
        return rc;
    if ((rc = netvsc_ns_enter(name, &prev)) < 0)
        return rc;
    if ((rc = netvsc_ns_lo_up()) < 0) {
        char msg[sizeof(last_error)];
        snprintf(msg, sizeof(msg), "%s", last_error);
        netvsc_ns_leave(prev);
        return failx(rc, "namespace '%s': %s", name, msg);
    }
    if (prev_fd)
        *prev_fd = prev;
    else
        close(prev);
    return 0;
}

int netvsc_ns_delete(const char *name)
{
    char path[sizeof(NETVSC_NS_RUN_DIR) + NETVSC_NS_NAME_MAX + 2];
    int rc = check_ns_name(name);
    if (rc < 0)
        return rc;
    ns_path(name, path, sizeof(path));
    /* Not mounted (a leftover file) is fine: unlink decides. */
    umount2(path, MNT_DETACH);
    if (unlink(path) < 0) {
        if (errno == ENOENT)
            return failx(-ENOENT, "network namespace '%s' does not exist", name);
        return fail(-errno, "cannot remove namespace file %s", path);
    }
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
        return failx(-EINVAL,
                     "MAC %02x:%02x:%02x:%02x:%02x:%02x is a multicast address: a NIC needs a "
                     "unicast one (first byte even)",
                     mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    return 0;
}

static int check_mtu(uint32_t mtu)
{
    if (mtu < NETVSC_TAP_MTU_MIN || mtu > NETVSC_TAP_MTU_MAX)
        return failx(-EINVAL, "MTU %u is out of range: allowed %u..%u", mtu, NETVSC_TAP_MTU_MIN,
                     NETVSC_TAP_MTU_MAX);
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
    return nl_errno(err);
}

/* Open /dev/net/tun and attach it to a new device called name, in the
 * calling thread's namespace (the TAP lives where the opener is). */
static int tun_open(const struct netvsc_tap_params *p, int *fd_out)
{
    int rc;
    int fd = open(TUN_DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
            return failx(-ENOENT, "%s is missing: the kernel has no TUN/TAP support", TUN_DEV);
        return fail(-errno, "open %s", TUN_DEV);
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    /* IFF_TUN_EXCL: fail rather than attach to a device that exists. */
    ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL);
    memcpy(ifr.ifr_name, p->name, strlen(p->name));
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        if (errno == EBUSY || errno == EEXIST)
            rc =
                failx(-EEXIST, "an interface named '%s' already exists in this namespace", p->name);
        else
            rc = fail(-errno, "TAP %s: TUNSETIFF", p->name);
        goto err_close;
    }
    int hdr_sz = (int)sizeof(struct virtio_net_hdr);
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_sz) < 0) {
        rc = fail(-errno, "TAP %s: TUNSETVNETHDRSZ %d", p->name, hdr_sz);
        goto err_close;
    }
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)offload_bits(p->csum, p->tso)) < 0) {
        rc = fail(-errno, "TAP %s: TUNSETOFFLOAD%s%s", p->name, p->csum ? " csum" : "",
                  p->tso ? " tso4/6" : "");
        goto err_close;
    }
    int on = p->carrier;
    if (ioctl(fd, TUNSETCARRIER, &on) < 0) {
        rc = fail(-errno, "TAP %s: TUNSETCARRIER %d", p->name, on);
        goto err_close;
    }
    *fd_out = fd;
    return 0;
err_close:
    close(fd);
    return rc;
}

/* MAC, MTU and up state in one request. */
static int tap_configure(struct netvsc_tap *t, const struct netvsc_tap_params *p, uint32_t mtu)
{
    struct rtnl_link *cur = NULL, *changes = NULL;
    struct nl_addr *addr = NULL;
    int rc;
    int err = rtnl_link_get_kernel(t->nl, 0, t->name, &cur);
    if (err < 0)
        return fail(nl_errno(err), "TAP %s: look up the new interface", t->name);
    t->ifindex = rtnl_link_get_ifindex(cur);
    rtnl_link_put(cur);

    if (p->gso_max_size) {
        rc = set_gso_max_size(t->nl, t->ifindex, p->gso_max_size);
        if (rc < 0)
            return fail(rc, "TAP %s: set gso_max_size %u", t->name, p->gso_max_size);
    }
    if (!(changes = rtnl_link_alloc()))
        return fail(-ENOMEM, "link object");
    rtnl_link_set_mtu(changes, mtu);
    if (!mac_is_zero(p->mac)) {
        if (!(addr = nl_addr_build(AF_LLC, p->mac, 6))) {
            rc = fail(-ENOMEM, "link address object");
            goto out;
        }
        rtnl_link_set_addr(changes, addr);
    }
    if (p->up)
        rtnl_link_set_flags(changes, IFF_UP);
    rc = link_change(t->nl, t->ifindex, changes);
    if (rc < 0)
        fail(rc, "TAP %s: set MTU %u%s%s", t->name, mtu, addr ? ", MAC" : "", p->up ? ", up" : "");
out:
    if (addr)
        nl_addr_put(addr);
    rtnl_link_put(changes);
    return rc;
}

int netvsc_tap_create(const struct netvsc_tap_params *p, struct netvsc_tap **out)
{
    int rc;
    int home = -1;
    struct netvsc_tap *t = NULL;
    if (!p || !out)
        return failx(-EINVAL, "netvsc_tap_create: no parameters");
    if (!netvsc_tap_name_valid(p->name))
        return failx(-EINVAL,
                     "interface name '%.40s' is invalid: use 1..%d characters of A-Z a-z 0-9 _ . - "
                     "(not 'lo', '.' or '..')",
                     p->name ? p->name : "(null)", NETVSC_TAP_NAME_MAX);
    uint32_t mtu = p->mtu ? p->mtu : NETVSC_TAP_MTU_DEFAULT;
    if ((rc = check_mtu(mtu)) < 0 || (rc = check_mac(p->mac)) < 0)
        return rc;
    if (p->tso && !p->csum)
        return failx(-EINVAL, "TAP %s: TSO needs checksum offload as well", p->name);
    if (p->gso_max_size && p->gso_max_size < mtu + ETH_HLEN)
        return failx(-EINVAL, "TAP %s: gso_max_size %u is below one frame (%u)", p->name,
                     p->gso_max_size, mtu + ETH_HLEN);

    if (!(t = calloc(1, sizeof(*t))))
        return fail(-ENOMEM, "TAP %s", p->name);
    t->fd = -1;
    t->broker = -1;
    t->carrier = p->carrier;
    snprintf(t->name, sizeof(t->name), "%s", p->name);

    if (p->netns_fd >= 0) {
        home = open(THREAD_NETNS, O_RDONLY | O_CLOEXEC);
        if (home < 0) {
            rc = fail(-errno, "open %s", THREAD_NETNS);
            goto err;
        }
        if (setns(p->netns_fd, CLONE_NEWNET) < 0) {
            rc = fail(-errno, "TAP %s: setns into the target namespace", p->name);
            goto err;
        }
    }
    /* Both the TAP and its netlink socket belong to the namespace they are
     * opened in. */
    if ((rc = tun_open(p, &t->fd)) < 0 || (rc = nl_open(&t->nl)) < 0 || (rc = ev_open(t)) < 0)
        goto err;
    if (home >= 0) {
        if (setns(home, CLONE_NEWNET) < 0) {
            rc = fail(-errno, "TAP %s: cannot return to the original network namespace", p->name);
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

void netvsc_tap_destroy(struct netvsc_tap *t)
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

int netvsc_tap_wrap(int fd, int ifindex, const char *name, bool carrier, int broker,
                    struct netvsc_tap **out)
{
    struct netvsc_tap *t = calloc(1, sizeof(*t));
    if (!t)
        return fail(-ENOMEM, "TAP %s", name);
    t->fd = fd;
    t->ifindex = ifindex;
    t->carrier = carrier;
    t->broker = broker;
    snprintf(t->name, sizeof(t->name), "%s", name);
    int rc;
    if ((rc = nl_open(&t->nl)) < 0 || (rc = ev_open(t)) < 0) {
        if (t->nl)
            nl_socket_free(t->nl);
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int netvsc_tap_shadow_open(int netns_fd, struct netvsc_tap **out)
{
    struct netvsc_tap *t = calloc(1, sizeof(*t));
    if (!t)
        return fail(-ENOMEM, "link handle");
    t->fd = -1;
    t->broker = -1;
    int home = open(THREAD_NETNS, O_RDONLY | O_CLOEXEC);
    int rc;
    if (home < 0) {
        rc = fail(-errno, "open %s", THREAD_NETNS);
        goto err;
    }
    if (setns(netns_fd, CLONE_NEWNET) < 0) {
        rc = fail(-errno, "setns into the target namespace");
        goto err;
    }
    rc = nl_open(&t->nl);
    if (setns(home, CLONE_NEWNET) < 0 && rc == 0)
        rc = fail(-errno, "cannot return to the original network namespace");
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

int netvsc_tap_release_fd(struct netvsc_tap *t)
{
    int fd = t->fd;
    if (t->nl)
        nl_socket_free(t->nl);
    if (t->ev)
        nl_socket_free(t->ev);
    free(t);
    return fd;
}

int netvsc_tap_events_fd(const struct netvsc_tap *t)
{
    return t->ev ? nl_socket_get_fd(t->ev) : -1;
}

int netvsc_tap_events_read(struct netvsc_tap *t, struct netvsc_tap_event *out)
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
        return fail(nl_errno(err), "TAP %s: reading link notifications", t->name);
    }
    if (overrun) {
        /* Ask the device itself, after the stale messages. */
        struct netvsc_tap_link l;
        int rc = netvsc_tap_query(t, &l);
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

int netvsc_tap_fd(const struct netvsc_tap *t)
{
    return t->fd;
}

const char *netvsc_tap_name(const struct netvsc_tap *t)
{
    return t->name;
}

int netvsc_tap_ifindex(const struct netvsc_tap *t)
{
    return t->ifindex;
}

int netvsc_tap_set_carrier(struct netvsc_tap *t, bool on)
{
    int v = on;
    if (ioctl(t->fd, TUNSETCARRIER, &v) < 0)
        return fail(-errno, "TAP %s: carrier %s", t->name, on ? "on" : "off");
    t->carrier = on;
    return 0;
}

bool netvsc_tap_carrier(const struct netvsc_tap *t)
{
    return t->carrier;
}

int netvsc_tap_set_mtu(struct netvsc_tap *t, uint32_t mtu)
{
    int rc = check_mtu(mtu);
    if (rc < 0)
        return rc;
    if (t->broker >= 0)
        return netvsc_tap_broker_request(t, NETVSC_TAPB_SET_MTU, mtu, NULL, false);
    struct rtnl_link *changes = rtnl_link_alloc();
    if (!changes)
        return fail(-ENOMEM, "link object");
    rtnl_link_set_mtu(changes, mtu);
    rc = link_change(t->nl, t->ifindex, changes);
    rtnl_link_put(changes);
    if (rc < 0)
        return fail(rc, "TAP %s: set MTU %u", t->name, mtu);
    return 0;
}

int netvsc_tap_set_mac(struct netvsc_tap *t, const uint8_t mac[6])
{
    int rc = check_mac(mac);
    if (rc < 0)
        return rc;
    if (mac_is_zero(mac))
        return failx(-EINVAL, "TAP %s: all-zero MAC", t->name);
    if (t->broker >= 0)
        return netvsc_tap_broker_request(t, NETVSC_TAPB_SET_MAC, 0, mac, false);
    struct rtnl_link *changes = rtnl_link_alloc();
    struct nl_addr *addr = nl_addr_build(AF_LLC, mac, 6);
    if (!changes || !addr) {
        rc = fail(-ENOMEM, "link object");
        goto out;
    }
    rtnl_link_set_addr(changes, addr);
    rc = link_change(t->nl, t->ifindex, changes);
    if (rc < 0)
        fail(rc, "TAP %s: set MAC %02x:%02x:%02x:%02x:%02x:%02x", t->name, mac[0], mac[1], mac[2],
             mac[3], mac[4], mac[5]);
out:
    if (addr)
        nl_addr_put(addr);
    if (changes)
        rtnl_link_put(changes);
    return rc;
}

int netvsc_tap_set_up(struct netvsc_tap *t, bool up)
{
    if (t->broker >= 0)
        return netvsc_tap_broker_request(t, NETVSC_TAPB_SET_UP, 0, NULL, up);
    struct rtnl_link *changes = rtnl_link_alloc();
    if (!changes)
        return fail(-ENOMEM, "link object");
    if (up)
        rtnl_link_set_flags(changes, IFF_UP);
    else
        rtnl_link_unset_flags(changes, IFF_UP);
    int rc = link_change(t->nl, t->ifindex, changes);
    rtnl_link_put(changes);
    if (rc < 0)
        return fail(rc, "TAP %s: set %s", t->name, up ? "up" : "down");
    return 0;
}

int netvsc_tap_set_offload(struct netvsc_tap *t, bool csum, bool tso)
{
    if (tso && !csum)
        return failx(-EINVAL, "TAP %s: TSO needs checksum offload as well", t->name);
    if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)offload_bits(csum, tso)) < 0)
        return fail(-errno, "TAP %s: TUNSETOFFLOAD", t->name);
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

int netvsc_tap_same_device(struct netvsc_tap *t, int64_t owner)
{
    struct link_identity id = {.owner = -1};
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = t->ifindex};
    struct nl_cb *own = nl_socket_get_cb(t->nl); /* a reference: put below */
    struct nl_cb *cb = own ? nl_cb_clone(own) : NULL;
    nl_cb_put(own);
    if (!cb)
        return fail(-ENOMEM, "TAP %s: netlink callbacks", t->name);
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
        return fail(nl_errno(err), "TAP %s: query link %d", t->name, t->ifindex);
    /* With an owner, the owner says whose TAP it is (one renamed inside
     * the VM stays its own); without one, only the name can. */
    if (!id.seen || strcmp(id.kind, "tun") != 0 || id.owner != owner ||
        (owner < 0 && strcmp(id.name, t->name) != 0))
        return failx(-ESTALE, "TAP %s: interface %d is another device now", t->name, t->ifindex);
    return 0;
}

int netvsc_tap_query(struct netvsc_tap *t, struct netvsc_tap_link *out)
{
    struct rtnl_link *l = NULL;
    int err = rtnl_link_get_kernel(t->nl, t->ifindex, NULL, &l);
    if (err < 0)
        return fail(nl_errno(err), "TAP %s: query link", t->name);
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
