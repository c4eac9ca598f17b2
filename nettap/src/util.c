/*
 * What the namespace, TAP and broker files share: the per-thread error
 * message, libnl's error codes unfolded, the name check, a route socket
 * and one RTM_NEWLINK.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include "nettap.h"
#include "nettap-private.h"

static _Thread_local char last_error[NETTAP_ERROR_MAX];

const char *nettap_last_error(void)
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

int nettap_fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(err, true, fmt, ap);
    va_end(ap);
    return err;
}

int nettap_failx(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(err, false, fmt, ap);
    va_end(ap);
    return err;
}

/* libnl folds kernel errnos into its own codes; unfold the ones that
 * matter to callers (nl_syserr2nlerr() is the forward map). */
int nettap_nl_errno(int nlerr)
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

bool nettap_name_chars_ok(const char *name, size_t max)
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

int nettap_nl_open(struct nl_sock **out)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        return nettap_fail(-ENOMEM, "netlink socket");
    int err = nl_connect(sk, NETLINK_ROUTE);
    if (err < 0) {
        nl_socket_free(sk);
        return nettap_fail(nettap_nl_errno(err), "netlink (NETLINK_ROUTE) connect");
    }
    *out = sk;
    return 0;
}

/* Apply changes to ifindex with one RTM_NEWLINK. Only the flags named in
 * changes' mask are touched (the kernel combines with ifi_change), so the
 * original needs nothing but its index. */
int nettap_link_change(struct nl_sock *sk, int ifindex, struct rtnl_link *changes)
{
    struct rtnl_link *orig = rtnl_link_alloc();
    if (!orig)
        return -ENOMEM;
    rtnl_link_set_ifindex(orig, ifindex);
    int err = rtnl_link_change(sk, orig, changes, 0);
    rtnl_link_put(orig);
    return nettap_nl_errno(err);
}
