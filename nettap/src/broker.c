/*
 * The TAP broker: TAP devices and their link settings for a guest worker
 * that has no privilege, made by the root on its behalf (nettap.h).
 *
 * Why a broker and not a capability: the alternatives were to leave the
 * guest CAP_NET_ADMIN in the initial user namespace (every network
 * namespace's administrator), or in a user namespace owning the VM's
 * network namespace. The second still hands a hostile guest all of
 * rtnetlink in its namespace (links of any kind, qdiscs, filters: the
 * kernel code most exploits of unprivileged user namespaces went through),
 * which seccomp cannot narrow because it cannot read netlink messages; and
 * it cannot work for `vm-add --netns NS` naming a namespace that exists
 * already (owned by the initial user namespace). The broker needs none of
 * that: four fixed requests, each checked here, and the guest keeps no
 * capability at all.
 *
 * Every record from the guest is read once into a local copy and checked
 * there: exact size, magic, operation, known flags, zero reserved bytes, a
 * NUL-terminated name; descriptors it sends are closed. A request costs
 * budget (a token bucket), and link changes apply only to TAPs this broker
 * made. Answers never block the root: a guest that stops reading them is
 * dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_tun.h>

#include "nettap-broker.h"
#include "nettap.h"
#include "nettap-private.h"

#define NS_PER_S 1000000000ull
#define TOKEN_NS (NS_PER_S / NETTAP_BROKER_RATE)

struct broker_tap {
    int ifindex;
    char name[IFNAMSIZ];
};

struct nettap_broker {
    int sock;
    int netns_fd;
    uint32_t uid, gid;
    uint64_t (*now_ns)(void);
    struct nettap *link; /* netlink in the VM's namespace, for link changes */
    struct broker_tap taps[NETTAP_BROKER_TAPS_MAX];
    unsigned ntaps;
    uint64_t credit_ns; /* budget: TOKEN_NS per request, at most BURST of them */
    uint64_t last_ns;
    struct nettap_broker_stats st;
};

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* --- Guest side ------------------------------------------------------------ */

static uint32_t client_seq;

/* Close every descriptor in a received control block; return the first
 * SCM_RIGHTS one instead of closing it if keep is set (-1 if none). */
static int take_fds(struct msghdr *mh, bool keep, int *count)
{
    int kept = -1;
    *count = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            (*count)++;
            if (keep && kept < 0)
                kept = fd;
            else
                close(fd);
        }
    }
    return kept;
}

/* One request, one answer. *fd_out (if not NULL) receives the descriptor
 * of a successful answer. Returns the answer's status or a transport
 * error; the answer's text goes to nettap_last_error(). */
static int broker_call(int sock, struct nettap_broker_request *req, int *ifindex_out, int *fd_out)
{
    req->magic = NETTAP_BROKER_MAGIC;
    req->seq = ++client_seq;
    if (send(sock, req, sizeof(*req), MSG_NOSIGNAL) != (ssize_t)sizeof(*req))
        return nettap_failx(-ECONNRESET, "TAP broker: cannot send a request: %s",
                                       strerror(errno));
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long waited = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        int pr = waited >= NETTAP_BROKER_TIMEOUT_MS
                     ? 0
                     : poll(&pfd, 1, NETTAP_BROKER_TIMEOUT_MS - (int)waited);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return nettap_failx(-ETIMEDOUT, "TAP broker: no answer in %d ms",
                                           NETTAP_BROKER_TIMEOUT_MS);
        struct nettap_broker_reply rep;
        union {
            char buf[CMSG_SPACE(4 * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = &rep, .iov_len = sizeof(rep)};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
            .msg_controllen = sizeof(ctl.buf)};
        ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return nettap_failx(-ECONNRESET, "TAP broker: gone (%s)",
                                           n < 0 ? strerror(errno) : "hung up");
        int nfds;
        bool ok = (size_t)n == sizeof(rep) && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
                  rep.magic == NETTAP_BROKER_MAGIC;
        if (ok && rep.seq != req->seq) {
            take_fds(&mh, false, &nfds); /* an answer to a call that timed out */
            continue;
        }
        int fd = take_fds(&mh, ok && rep.status == 0 && fd_out, &nfds);
        if (!ok || rep.status > 0 || rep.status < -4095 ||
            (fd_out && rep.status == 0 && (fd < 0 || nfds != 1))) {
            if (fd >= 0)
                close(fd);
            return nettap_failx(-EPROTO, "TAP broker: malformed answer");
        }
        if (rep.status < 0) {
            rep.error[sizeof(rep.error) - 1] = '\0';
            return nettap_failx(rep.status, "%s", rep.error);
        }
        if (ifindex_out)
            *ifindex_out = rep.ifindex;
        if (fd_out)
            *fd_out = fd;
        return 0;
    }
}

int nettap_create_brokered(int broker_fd, const struct nettap_params *p,
                               struct nettap **out)
{
    if (!p || !out || broker_fd < 0 || p->netns_fd >= 0)
        return nettap_failx(-EINVAL, "nettap_create_brokered: bad parameters");
    if (!nettap_name_valid(p->name))
        return nettap_failx(
            -EINVAL,
            "interface name '%.40s' is invalid: use 1..%d characters of A-Z a-z 0-9 _ . - "
            "(not 'lo', '.' or '..')",
            p->name ? p->name : "(null)", NETTAP_NAME_MAX);
    struct nettap_broker_request req;
    memset(&req, 0, sizeof(req));
    req.op = NETTAP_BROKER_OP_CREATE;
    req.flags = (uint16_t)((p->csum ? NETTAP_BROKER_F_CSUM : 0) | (p->tso ? NETTAP_BROKER_F_TSO : 0) |
                           (p->up ? NETTAP_BROKER_F_UP : 0) |
                           (p->carrier ? NETTAP_BROKER_F_CARRIER : 0));
    req.mtu = p->mtu;
    req.gso_max_size = p->gso_max_size;
    memcpy(req.mac, p->mac, sizeof(req.mac));
    memcpy(req.name, p->name, strlen(p->name));
    int ifindex = 0, fd = -1;
    int rc = broker_call(broker_fd, &req, &ifindex, &fd);
    if (rc < 0)
        return rc;
    rc = nettap_wrap(fd, ifindex, p->name, p->carrier, broker_fd, out);
    if (rc < 0)
        close(fd);
    return rc;
}

int nettap_brokered_change(struct nettap *t, enum nettap_broker_op op, uint32_t mtu,
                              const uint8_t *mac, bool up)
{
    struct nettap_broker_request req;
    memset(&req, 0, sizeof(req));
    req.op = (uint16_t)op;
    req.ifindex = t->ifindex;
    req.mtu = mtu;
    if (mac)
        memcpy(req.mac, mac, sizeof(req.mac));
    if (up)
        req.flags = NETTAP_BROKER_F_UP;
    return broker_call(t->broker, &req, NULL, NULL);
}

/* --- Root side ------------------------------------------------------------- */

int nettap_broker_create(const struct nettap_broker_params *p,
                             struct nettap_broker **out)
{
    if (!p || !out || p->sock < 0)
        return -EINVAL;
    struct nettap_broker *b = calloc(1, sizeof(*b));
    if (!b) {
        close(p->sock);
        return -ENOMEM;
    }
    b->sock = p->sock;
    b->uid = p->owner_uid;
    b->gid = p->owner_gid;
    b->now_ns = p->now_ns ? p->now_ns : monotonic_ns;
    b->netns_fd = p->netns_fd >= 0 ? fcntl(p->netns_fd, F_DUPFD_CLOEXEC, 0) : -1;
    int rc = b->netns_fd < 0 ? -EINVAL : nettap_shadow_open(b->netns_fd, &b->link);
    if (rc < 0) {
        nettap_broker_destroy(b);
        return rc;
    }
    b->credit_ns = NETTAP_BROKER_BURST * TOKEN_NS;
    b->last_ns = b->now_ns();
    *out = b;
    return 0;
}

void nettap_broker_destroy(struct nettap_broker *b)
{
    if (!b)
        return;
    if (b->sock >= 0)
        close(b->sock);
    if (b->netns_fd >= 0)
        close(b->netns_fd);
    if (b->link)
        nettap_release_fd(b->link);
    free(b);
}

int nettap_broker_fd(const struct nettap_broker *b)
{
    return b->sock;
}

void nettap_broker_get_stats(const struct nettap_broker *b,
                                 struct nettap_broker_stats *out)
{
    *out = b->st;
}

static bool take_token(struct nettap_broker *b)
{
    uint64_t now = b->now_ns();
    uint64_t cap = NETTAP_BROKER_BURST * TOKEN_NS;
    if (now > b->last_ns) {
        uint64_t add = now - b->last_ns;
        b->credit_ns = add >= cap - b->credit_ns ? cap : b->credit_ns + add;
    }
    b->last_ns = now;
    if (b->credit_ns < TOKEN_NS)
        return false;
    b->credit_ns -= TOKEN_NS;
    return true;
}

static int find_tap(const struct nettap_broker *b, int ifindex)
{
    for (unsigned i = 0; i < b->ntaps; i++)
        if (b->taps[i].ifindex == ifindex)
            return (int)i;
    return -1;
}

static void forget_tap(struct nettap_broker *b, unsigned i)
{
    b->taps[i] = b->taps[--b->ntaps];
}

/* Aim the link handle at one of our TAPs. */
static void aim(struct nettap_broker *b, const struct broker_tap *bt)
{
    b->link->ifindex = bt->ifindex;
    snprintf(b->link->name, sizeof(b->link->name), "%s", bt->name);
}

/* Is entry i still the TAP this broker made? The guest may have closed it
 * (the device is gone with its last descriptor) and another interface may
 * have taken its index since: an entry is the device only while name, kind
 * and owner still match. Entries that are not are forgotten. */
static int tap_still_ours(struct nettap_broker *b, unsigned i)
{
    aim(b, &b->taps[i]);
    int rc = nettap_same_device(b->link, b->uid ? (int64_t)b->uid : -1);
    if (rc == -ENODEV || rc == -ESTALE)
        forget_tap(b, i);
    return rc;
}

/* Forget TAPs the guest has closed (or the VM deleted). */
static void prune(struct nettap_broker *b)
{
    for (unsigned i = 0; i < b->ntaps;) {
        int rc = tap_still_ours(b, i);
        if (rc != -ENODEV && rc != -ESTALE)
            i++;
    }
}

/* Answer; a guest whose socket is full is not reading: -ECONNRESET. */
static int reply(struct nettap_broker *b, uint32_t seq, int status, int ifindex, int fd,
                 const char *error)
{
    struct nettap_broker_reply rep;
    memset(&rep, 0, sizeof(rep));
    rep.magic = NETTAP_BROKER_MAGIC;
    rep.seq = seq;
    rep.status = status;
    rep.ifindex = ifindex;
    if (status < 0)
        snprintf(rep.error, sizeof(rep.error), "%s", error ? error : strerror(-status));
    struct iovec iov = {.iov_base = &rep, .iov_len = sizeof(rep)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    if (sendmsg(b->sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(rep))
        return -ECONNRESET;
    return 0;
}

static int do_create(struct nettap_broker *b, const struct nettap_broker_request *req)
{
    if (b->ntaps == NETTAP_BROKER_TAPS_MAX)
        prune(b);
    if (b->ntaps == NETTAP_BROKER_TAPS_MAX) {
        b->st.over_budget++;
        char msg[96];
        snprintf(msg, sizeof(msg), "TAP broker: this VM has %d TAPs already, the most it may have",
                 NETTAP_BROKER_TAPS_MAX);
        return reply(b, req->seq, -ENOSPC, 0, -1, msg);
    }
    struct nettap_params tp = {
        .name = req->name,
        .mtu = req->mtu,
        .csum = req->flags & NETTAP_BROKER_F_CSUM,
        .tso = req->flags & NETTAP_BROKER_F_TSO,
        .gso_max_size = req->gso_max_size,
        .up = req->flags & NETTAP_BROKER_F_UP,
        .carrier = req->flags & NETTAP_BROKER_F_CARRIER,
        .netns_fd = b->netns_fd,
    };
    memcpy(tp.mac, req->mac, sizeof(tp.mac));
    struct nettap *t = NULL;
    int rc = nettap_create(&tp, &t);
    if (rc == 0 && b->uid) {
        /* Owner and group: later queues of this TAP (IFF_MULTI_QUEUE) may be
         * attached by the guest, and by nobody else without privilege. */
        if (ioctl(nettap_fd(t), TUNSETOWNER, (unsigned long)b->uid) < 0 ||
            ioctl(nettap_fd(t), TUNSETGROUP, (unsigned long)b->gid) < 0) {
            rc = nettap_failx(-errno, "TAP %s: TUNSETOWNER/TUNSETGROUP: %s", req->name,
                                         strerror(errno));
            nettap_destroy(t);
        }
    }
    if (rc < 0) {
        b->st.failed++;
        return reply(b, req->seq, rc, 0, -1, nettap_last_error());
    }
    int ifindex = nettap_ifindex(t);
    int fd = nettap_release_fd(t);
    rc = reply(b, req->seq, 0, ifindex, fd, NULL);
    close(fd); /* the guest's copy is now the only one */
    if (rc < 0)
        return rc;
    b->st.created++;
    struct broker_tap *bt = &b->taps[b->ntaps++];
    bt->ifindex = ifindex;
    snprintf(bt->name, sizeof(bt->name), "%s", req->name);
    return 0;
}

static int do_change(struct nettap_broker *b, const struct nettap_broker_request *req)
{
    int i = find_tap(b, req->ifindex);
    if (i >= 0) {
        int rc = tap_still_ours(b, (unsigned)i);
        if (rc == -ENODEV || rc == -ESTALE) {
            i = -1;
        } else if (rc < 0) {
            b->st.failed++;
            return reply(b, req->seq, rc, 0, -1, nettap_last_error());
        }
    }
    if (i < 0) {
        b->st.not_ours++;
        char msg[96];
        snprintf(msg, sizeof(msg), "TAP broker: interface %d is not a TAP of this VM",
                 req->ifindex);
        return reply(b, req->seq, -EPERM, 0, -1, msg);
    }
    aim(b, &b->taps[i]);
    int rc;
    if (req->op == NETTAP_BROKER_OP_SET_MTU)
        rc = nettap_set_mtu(b->link, req->mtu);
    else if (req->op == NETTAP_BROKER_OP_SET_MAC)
        rc = nettap_set_mac(b->link, req->mac);
    else
        rc = nettap_set_up(b->link, req->flags & NETTAP_BROKER_F_UP);
    if (rc == -ENODEV)
        forget_tap(b, (unsigned)i);
    if (rc < 0) {
        b->st.failed++;
        return reply(b, req->seq, rc, 0, -1, nettap_last_error());
    }
    b->st.changed++;
    return reply(b, req->seq, 0, req->ifindex, -1, NULL);
}

static bool request_ok(const struct nettap_broker_request *r)
{
    static const uint8_t zero[sizeof(r->reserved)];
    if (r->magic != NETTAP_BROKER_MAGIC || r->op < NETTAP_BROKER_OP_CREATE || r->op > NETTAP_BROKER_OP_SET_UP ||
        (r->flags & ~NETTAP_BROKER_F_ALL) || memcmp(r->reserved, zero, sizeof(zero)) != 0)
        return false;
    if (r->op == NETTAP_BROKER_OP_CREATE)
        return memchr(r->name, '\0', sizeof(r->name)) != NULL;
    return true;
}

/* recvmsg() says 0 both for an empty record and for the guest's hang-up;
 * only the hang-up sets RDHUP. */
static bool peer_closed(int sock)
{
    struct pollfd pfd = {.fd = sock, .events = POLLRDHUP};
    return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

int nettap_broker_serve(struct nettap_broker *b)
{
    for (int i = 0; i < NETTAP_BROKER_BATCH; i++) {
        union {
            struct nettap_broker_request req;
            uint8_t raw[sizeof(struct nettap_broker_request) + 1];
        } buf;
        union {
            char buf[CMSG_SPACE(8 * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = buf.raw, .iov_len = sizeof(buf.raw)};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
            .msg_controllen = sizeof(ctl.buf)};
        ssize_t n = recvmsg(b->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0 || (n == 0 && peer_closed(b->sock)))
            return -ECONNRESET;
        int nfds;
        take_fds(&mh, false, &nfds);
        uint32_t seq = 0;
        if ((size_t)n >= offsetof(struct nettap_broker_request, seq) + sizeof(seq))
            memcpy(&seq, buf.raw + offsetof(struct nettap_broker_request, seq), sizeof(seq));
        /* The budget first: a flood of anything costs the guest alike. */
        if (!take_token(b)) {
            b->st.over_budget++;
            char msg[96];
            snprintf(msg, sizeof(msg),
                     "TAP broker: too many requests (%d at once, then %d a second)",
                     NETTAP_BROKER_BURST, NETTAP_BROKER_RATE);
            if (reply(b, seq, -EAGAIN, 0, -1, msg) < 0)
                return -ECONNRESET;
            continue;
        }
        struct nettap_broker_request req;
        memset(&req, 0, sizeof(req));
        memcpy(&req, buf.raw, sizeof(req) < (size_t)n ? sizeof(req) : (size_t)n);
        if ((size_t)n != sizeof(req) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || nfds ||
            !request_ok(&req)) {
            b->st.malformed++;
            if (reply(b, seq, -EINVAL, 0, -1, "TAP broker: malformed request") < 0)
                return -ECONNRESET;
            continue;
        }
        b->st.requests++;
        int rc = req.op == NETTAP_BROKER_OP_CREATE ? do_create(b, &req) : do_change(b, &req);
        if (rc < 0)
            return -ECONNRESET;
    }
    return 0;
}
