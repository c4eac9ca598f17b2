/*
 * hv-abuse-guest: a guest program that misbehaves on purpose at the socket
 * level. test_hv_partition runs it as a process partition.
 *
 * It attaches like any guest (hv_guest_attach_env), then also writes raw
 * records to its hypercall socket: oversized and short records, bad headers,
 * records carrying descriptors, a record sent by another process. It checks
 * every answer (struct hv_hc_response, matched by seq) and that the root
 * closed every descriptor passed to it, then makes valid calls to show the
 * root kept serving it.
 *
 * The root side (test_hv_partition.c) provides a message port
 * ABUSE_CONN_MSG that answers "ready" by posting "pong" to SINT ABUSE_SINT,
 * and an event port ABUSE_CONN_EVENT; it checks the counters this sequence
 * must leave (bad_records, bad_callers, ...). Keep both files in step.
 *
 * With --flood-unread N it only sends N valid records and never reads an
 * answer: the root's answers pile up until its socket refuses them, and
 * every further record is an answer the root cannot deliver (which it may
 * log, rate-limited, and must not block on).
 *
 * Exit status: 0 if every answer was as expected, 1 if not (each difference
 * on stderr), 2 if it is not running as a guest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hv-guest.h"

#define ABUSE_CONN_MSG 7
#define ABUSE_CONN_EVENT 9
#define ABUSE_CONN_UNKNOWN 0x7777
#define ABUSE_SINT 2
/* More than the root's control buffer takes (16), to force MSG_CTRUNC. */
#define ABUSE_MANY_FDS 20

static int abuse_failures;

static void abuse_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void abuse_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hv-abuse-guest: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abuse_failures++;
}

static size_t abuse_rec(struct hv_hc_request *r, uint16_t code, uint32_t seq, uint32_t isize)
{
    memset(r, 0, sizeof(*r));
    r->magic = HV_HC_MAGIC;
    r->call_code = code;
    r->seq = seq;
    r->input_size = isize;
    return offsetof(struct hv_hc_request, input) + isize;
}

static size_t abuse_signal_rec(struct hv_hc_request *r, uint32_t seq)
{
    size_t len = abuse_rec(r, HVCALL_SIGNAL_EVENT, seq, sizeof(struct hv_input_signal_event));
    r->input.signal_event.connection_id = ABUSE_CONN_EVENT;
    return len;
}

/* One record, with nfds descriptors as SCM_RIGHTS. 0 or -errno. */
static int abuse_send(int sock, const void *rec, size_t len, const int *fds, int nfds)
{
    struct iovec iov = {.iov_base = (void *)rec, .iov_len = len};
    union {
        char buf[CMSG_SPACE(ABUSE_MANY_FDS * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EMSGSIZE;
}

/* One answer. 0, -errno, -ECONNRESET (root hung up) or -EPROTO (not one
 * hv_hc_response). *fd_out: a descriptor that came with it, or -1. */
static int abuse_recv(int sock, struct hv_hc_response *resp, int *fd_out)
{
    uint8_t buf[sizeof(*resp) + 16];
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = ctl.buf,
        .msg_controllen = sizeof(ctl.buf),
    };
    *fd_out = -1;
    ssize_t n;
    do {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*fd_out < 0)
                *fd_out = fd;
            else
                close(fd);
        }
    }
    if (n == 0)
        return -ECONNRESET;
    if ((size_t)n != sizeof(*resp) || (mh.msg_flags & MSG_TRUNC))
        return -EPROTO;
    memcpy(resp, buf, sizeof(*resp));
    return 0;
}

static void abuse_expect(int sock, const char *what, uint32_t seq, int status)
{
    struct hv_hc_response r;
    int fd = -1;
    int rc = abuse_recv(sock, &r, &fd);
    if (fd >= 0) {
        abuse_fail("%s: the answer carried a descriptor", what);
        close(fd);
    }
    if (rc < 0) {
        abuse_fail("%s: no answer: %s", what, strerror(-rc));
        return;
    }
    if (r.magic != HV_HC_MAGIC)
        abuse_fail("%s: answer magic %#x", what, r.magic);
    if (r.seq != seq)
        abuse_fail("%s: answer seq %u, expected %u", what, r.seq, seq);
    if (r.status != status)
        abuse_fail("%s: status %u, expected %d", what, r.status, status);
}

static void abuse_call(int sock, const char *what, const void *rec, size_t len, const int *fds,
                       int nfds, uint32_t seq, int status)
{
    int rc = abuse_send(sock, rec, len, fds, nfds);
    if (rc < 0) {
        abuse_fail("%s: send: %s", what, strerror(-rc));
        return;
    }
    abuse_expect(sock, what, seq, status);
}

/* rd is the read end of a pipe whose every write end was passed to the root
 * and closed here: EOF proves the root closed its copies too. */
static void abuse_expect_closed(int rd, const char *what)
{
    char c;
    ssize_t n = read(rd, &c, 1);
    if (n != 0)
        abuse_fail("%s: the root kept a descriptor it was passed (read: %s)", what,
                   n < 0 ? strerror(errno) : "data");
    close(rd);
}

static bool abuse_pipe(int fds[2], const char *what)
{
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0)
        return true;
    abuse_fail("%s: pipe2: %s", what, strerror(errno));
    return false;
}

static void abuse_bad_records(int sock)
{
    struct hv_hc_request r;
    union {
        struct hv_hc_request req;
        uint8_t raw[sizeof(struct hv_hc_request) + 64];
    } big;

    /* Oversized: more bytes than any record; the root sees MSG_TRUNC. */
    memset(&big, 0xa5, sizeof(big));
    abuse_rec(&big.req, HVCALL_SIGNAL_EVENT, 1001, sizeof(big.raw) - 16);
    abuse_call(sock, "oversized record (+64)", big.raw, sizeof(big.raw), NULL, 0, 1001,
               HV_STATUS_INVALID_HYPERCALL_INPUT);
    /* One byte over: fits the root's buffer, still too long. */
    abuse_rec(&big.req, HVCALL_SIGNAL_EVENT, 1002, sizeof(struct hv_hc_request) + 1 - 16);
    abuse_call(sock, "oversized record (+1)", big.raw, sizeof(struct hv_hc_request) + 1, NULL, 0,
               1002, HV_STATUS_INVALID_HYPERCALL_INPUT);

    /* Too short to carry a seq: the answer's seq is 0. */
    abuse_rec(&r, HVCALL_SIGNAL_EVENT, 1003, 0);
    abuse_call(sock, "short record (6 bytes)", &r, 6, NULL, 0, 0,
               HV_STATUS_INVALID_HYPERCALL_INPUT);

    size_t len = abuse_signal_rec(&r, 1004);
    r.magic = 0x43485648u;
    abuse_call(sock, "bad magic", &r, len, NULL, 0, 1004, HV_STATUS_INVALID_HYPERCALL_INPUT);

    len = abuse_signal_rec(&r, 1005);
    r.reserved = 1;
    abuse_call(sock, "reserved header field set", &r, len, NULL, 0, 1005,
               HV_STATUS_INVALID_HYPERCALL_INPUT);

    len = abuse_signal_rec(&r, 1006);
    r.input_size += 4;
    abuse_call(sock, "input_size larger than the record", &r, len, NULL, 0, 1006,
               HV_STATUS_INVALID_HYPERCALL_INPUT);

    len = abuse_signal_rec(&r, 1007);
    r.call_code = 0x1234;
    abuse_call(sock, "unknown call code", &r, len, NULL, 0, 1007, HV_STATUS_INVALID_HYPERCALL_CODE);
}

static void abuse_descriptors(int sock)
{
    struct hv_hc_request r;
    int pfd[2];

    /* A valid call carrying a descriptor: performed, answered, fd closed. */
    if (abuse_pipe(pfd, "one descriptor")) {
        size_t len = abuse_signal_rec(&r, 1008);
        abuse_call(sock, "valid record with a descriptor", &r, len, &pfd[1], 1, 1008,
                   HV_STATUS_SUCCESS);
        close(pfd[1]);
        abuse_expect_closed(pfd[0], "valid record with a descriptor");
    }

    /* More descriptors than the root takes: a bad record, not performed. */
    if (abuse_pipe(pfd, "many descriptors")) {
        int many[ABUSE_MANY_FDS];
        for (int i = 0; i < ABUSE_MANY_FDS; i++)
            many[i] = pfd[1];
        size_t len = abuse_signal_rec(&r, 1009);
        abuse_call(sock, "record with too many descriptors", &r, len, many, ABUSE_MANY_FDS, 1009,
                   HV_STATUS_INVALID_HYPERCALL_INPUT);
        close(pfd[1]);
        abuse_expect_closed(pfd[0], "record with too many descriptors");
    }

    /* A record from another process on the guest's socket. */
    if (abuse_pipe(pfd, "other process")) {
        size_t len = abuse_signal_rec(&r, 1010);
        pid_t pid = fork();
        if (pid == 0)
            _exit(abuse_send(sock, &r, len, &pfd[1], 1) == 0 ? 0 : 1);
        close(pfd[1]);
        int ws = 0;
        if (pid < 0) {
            abuse_fail("fork: %s", strerror(errno));
            close(pfd[0]);
            return;
        }
        if (waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
            abuse_fail("record from another process: the sender failed");
        abuse_expect(sock, "record from another process", 1010, HV_STATUS_ACCESS_DENIED);
        abuse_expect_closed(pfd[0], "record from another process");
    }
}

/* After the abuse: the root must still serve this guest. */
static void abuse_valid_calls(struct hv_guest *g, int sock)
{
    int st = hv_guest_synic_enable(g, 1u << ABUSE_SINT);
    if (st != HV_STATUS_SUCCESS)
        abuse_fail("SynIC setup: status %d", st);

    struct hv_hc_request r;
    size_t len = abuse_rec(&r, HVCALL_POST_MESSAGE, 1011,
                           (uint32_t)offsetof(struct hv_input_post_message, payload) + 1);
    r.input.post_message.connection_id = ABUSE_CONN_UNKNOWN;
    r.input.post_message.message_type = HVMSG_VMBUS;
    r.input.post_message.payload_size = 1;
    abuse_call(sock, "raw post to an unknown connection", &r, len, NULL, 0, 1011,
               HV_STATUS_INVALID_CONNECTION_ID);

    st = hv_guest_post_message(g, ABUSE_CONN_UNKNOWN, HVMSG_VMBUS, "x", 1);
    if (st != HV_STATUS_INVALID_CONNECTION_ID)
        abuse_fail("post to an unknown connection: status %d, expected %d", st,
                   HV_STATUS_INVALID_CONNECTION_ID);

    st = hv_guest_post_message(g, ABUSE_CONN_MSG, HVMSG_VMBUS, "ready", 5);
    if (st != HV_STATUS_SUCCESS)
        abuse_fail("post \"ready\": status %d", st);
    struct hv_message m;
    int rc = -EAGAIN;
    for (int i = 0; i < 100 && rc == -EAGAIN; i++) {
        rc = hv_guest_recv_message(g, ABUSE_SINT, &m);
        if (rc == -EAGAIN && hv_guest_wait(g, 100) < 0)
            break;
    }
    if (rc != 0)
        abuse_fail("no answer to \"ready\" on SINT %d: %s", ABUSE_SINT, strerror(-rc));
    else if (m.message_type != HVMSG_VMBUS || m.payload_size != 4 ||
             memcmp(m.payload, "pong", 4) != 0)
        abuse_fail("answer to \"ready\": type %u, %u bytes", m.message_type, m.payload_size);

    int efd = -1;
    st = hv_guest_get_event_fd(g, ABUSE_CONN_EVENT, &efd);
    if (st != HV_STATUS_SUCCESS || efd < 0) {
        abuse_fail("event fd of connection %d: status %d", ABUSE_CONN_EVENT, st);
    } else {
        uint64_t one = 1;
        if (write(efd, &one, sizeof(one)) != sizeof(one))
            abuse_fail("event fd write: %s", strerror(errno));
        close(efd);
    }

    st = hv_guest_signal_event(g, ABUSE_CONN_EVENT, 0);
    if (st != HV_STATUS_SUCCESS)
        abuse_fail("signal connection %d: status %d", ABUSE_CONN_EVENT, st);
}

/* A zero-length record is a record too: it must get an answer (seq 0), and
 * the socket must keep working. */
static void abuse_empty_record(int sock)
{
    abuse_call(sock, "zero-length record", "", 0, NULL, 0, 0, HV_STATUS_INVALID_HYPERCALL_INPUT);
    struct hv_hc_request r;
    size_t len = abuse_rec(&r, HVCALL_POST_MESSAGE, 2001,
                           (uint32_t)offsetof(struct hv_input_post_message, payload));
    r.input.post_message.connection_id = ABUSE_CONN_UNKNOWN;
    r.input.post_message.message_type = HVMSG_VMBUS;
    abuse_call(sock, "call after the zero-length record", &r, len, NULL, 0, 2001,
               HV_STATUS_INVALID_CONNECTION_ID);
}

/* n valid records, no answer read. */
static void abuse_flood_unread(int sock, unsigned long n)
{
    struct hv_hc_request r;
    for (unsigned long i = 0; i < n; i++) {
        size_t len = abuse_signal_rec(&r, (uint32_t)(3000 + i));
        int rc = abuse_send(sock, &r, len, NULL, 0);
        if (rc < 0) {
            abuse_fail("record %lu of the flood: send: %s", i, strerror(-rc));
            return;
        }
    }
}

static void abuse_usage(FILE *f)
{
    fprintf(f,
            "usage: hv-abuse-guest [--empty-record | --flood-unread N]\n"
            "Runs inside a process partition (needs %s); sends malformed hypercall\n"
            "records and checks the root's answers. Exit 0 if all were as expected.\n"
            "  --empty-record    only send a zero-length record, then a valid call\n"
            "  --flood-unread N  only send N valid records, reading no answer\n",
            HV_ENV_FDS);
}

int main(int argc, char **argv)
{
    bool empty_only = false;
    unsigned long flood = 0;
    if (argc == 3 && strcmp(argv[1], "--flood-unread") == 0) {
        char *end;
        flood = strtoul(argv[2], &end, 10);
        if (*end || flood == 0) {
            abuse_usage(stderr);
            return 2;
        }
    } else if (argc > 2) {
        abuse_usage(stderr);
        return 2;
    } else if (argc == 2) {
        if (strcmp(argv[1], "--help") == 0) {
            abuse_usage(stdout);
            return 0;
        }
        if (strcmp(argv[1], "--empty-record") != 0) {
            abuse_usage(stderr);
            return 2;
        }
        empty_only = true;
    }

    int mem_fd, sock, sint_fd;
    const char *env = getenv(HV_ENV_FDS);
    if (!env || sscanf(env, "%d,%d,%d", &mem_fd, &sock, &sint_fd) != 3) {
        fprintf(stderr, "hv-abuse-guest: not in a partition (%s unset)\n", HV_ENV_FDS);
        return 2;
    }
    struct hv_guest *g = NULL;
    int rc = hv_guest_attach_env(&g);
    if (rc < 0) {
        fprintf(stderr, "hv-abuse-guest: attach: %s\n", strerror(-rc));
        return 2;
    }

    int type = 0;
    socklen_t tlen = sizeof(type);
    if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_SEQPACKET)
        abuse_fail("fd %d is not a SOCK_SEQPACKET socket", sock);
    /* A root that never answers must fail this program, not hang it. */
    struct timeval tv = {.tv_sec = 10};
    if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        abuse_fail("SO_RCVTIMEO: %s", strerror(errno));

    if (flood) {
        abuse_flood_unread(sock, flood);
    } else if (empty_only) {
        abuse_empty_record(sock);
    } else {
        abuse_bad_records(sock);
        abuse_descriptors(sock);
        abuse_valid_calls(g, sock);
    }
    hv_guest_detach(g);
    if (abuse_failures) {
        fprintf(stderr, "hv-abuse-guest: %d unexpected answer(s)\n", abuse_failures);
        return 1;
    }
    return 0;
}
