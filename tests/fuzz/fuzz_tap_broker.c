/*
 * libFuzzer harness for the TAP broker's request parser (nettap/src/
 * broker.c): what a hostile guest worker can send the root.
 *
 * Input: records, each [flags u8][length u16 LE][length bytes]. The bytes
 * go to the broker as one SOCK_SEQPACKET message (with a descriptor if
 * flags bit 0 is set); flags >> 1 advances the broker's clock by that many
 * sixteenths of a second. After each record the broker serves and every
 * answer is read and checked: exactly one per record while the guest is
 * connected, well formed, the request's seq, a descriptor only with a
 * successful create (which is then closed, deleting the TAP).
 *
 * Isolation: as root, the harness moves into a network namespace of its
 * own first, so the TAPs it makes are seen by nobody and vanish with it.
 * Without root it can make no broker and tests nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nettap-broker.h"
#include "nettap.h"
#include "nettap-private.h"

static int netns_fd = -1;
static int bait_fd = -1;
static uint64_t now;

static uint64_t fz_clock(void)
{
    return now;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (geteuid() == 0 && unshare(CLONE_NEWNET) == 0)
        netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    bait_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return 0;
}

/* Read one answer; abort on anything the contract does not allow. */
static void take_answer(int guest, uint32_t want_seq, bool seq_known)
{
    struct nettap_broker_reply rep;
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {&rep, sizeof(rep)};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
        .msg_controllen = sizeof(ctl.buf)};
    ssize_t n = recvmsg(guest, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n != (ssize_t)sizeof(rep) || rep.magic != NETTAP_BROKER_MAGIC || rep.status > 0 ||
        (seq_known && rep.seq != want_seq) || memchr(rep.error, '\0', sizeof(rep.error)) == NULL)
        abort();
    int fds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            close(fd);
            fds++;
        }
    }
    if (fds > (rep.status == 0 ? 1 : 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (netns_fd < 0)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    now = 1000000000ull;
    struct nettap_broker_params bp = {
        .sock = sv[0], .netns_fd = netns_fd, .owner_uid = 4242, .owner_gid = 4242,
        .now_ns = fz_clock};
    struct nettap_broker *b = NULL;
    if (nettap_broker_create(&bp, &b) < 0) {
        close(sv[1]);
        return 0;
    }
    size_t off = 0;
    while (off + 3 <= size) {
        uint8_t flags = data[off];
        size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
        off += 3;
        if (len > size - off)
            len = size - off;
        now += (uint64_t)(flags >> 1) * (1000000000ull / 16);
        struct iovec iov = {(void *)(data + off), len};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if ((flags & 1) && bait_fd >= 0) {
            memset(&ctl, 0, sizeof(ctl));
            mh.msg_control = ctl.buf;
            mh.msg_controllen = sizeof(ctl.buf);
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &bait_fd, sizeof(int));
        }
        uint32_t seq = 0;
        bool seq_known = len >= offsetof(struct nettap_broker_request, seq) + sizeof(seq);
        if (seq_known)
            memcpy(&seq, data + off + offsetof(struct nettap_broker_request, seq), sizeof(seq));
        off += len;
        if (sendmsg(sv[1], &mh, MSG_NOSIGNAL) < 0)
            break;
        /* The guest reads every answer, so nothing ends the broker. */
        if (nettap_broker_serve(b) != 0)
            abort();
        take_answer(sv[1], seq, seq_known);
    }
    nettap_broker_destroy(b);
    close(sv[1]);
    return 0;
}
