/*
 * The direct partition backend: no process; the guest is code in the root's
 * own process (a unit test, a fuzzer) that drives the partition through the
 * real guest library, whose hypercalls call the broker directly. Everything
 * the root does for a guest is the same code as for a process partition,
 * minus the socket; it is deterministic and single-threaded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "hv-guest.h"
#include "hv-provider.h"

static struct hv_partition *direct_alloc(void)
{
    return calloc(1, sizeof(struct hv_partition));
}

static int direct_construct(struct hv_partition *p, const struct hv_partition_params *params)
{
    (void)p;
    (void)params;
    return 0;
}

static int direct_start(struct hv_partition *p)
{
    (void)p;
    return 0;
}

static void direct_stop(struct hv_partition *p, int grace_ms)
{
    (void)grace_ms;
    hv_partition_exited(p, 0, true);
}

static int direct_request_stop(struct hv_partition *p)
{
    hv_partition_exited(p, 0, true);
    return 0;
}

static void direct_destruct(struct hv_partition *p)
{
    (void)p;
}

static void direct_dealloc(struct hv_partition *p)
{
    free(p);
}

const struct hv_partition_class hv_direct_partition_class = {
    .name = "direct",
    .alloc = direct_alloc,
    .construct = direct_construct,
    .start = direct_start,
    .stop = direct_stop,
    .request_stop = direct_request_stop,
    .destruct = direct_destruct,
    .dealloc = direct_dealloc,
};

static int direct_hypercall(void *ctx, const void *rec, size_t len, int *fd_out)
{
    struct hv_partition *p = ctx;
    int fd = -1;
    int st = hv_hypercall(p, rec, len, &fd);
    /* What SCM_RIGHTS would do: the guest gets its own descriptor. */
    *fd_out = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (fd >= 0 && *fd_out < 0)
        return -errno;
    return st;
}

int hv_direct_partition_attach(struct hv_partition *p, struct hv_guest **out)
{
    if (p->cls != &hv_direct_partition_class)
        return -EINVAL;
    if (p->state != HV_PARTITION_RUNNING)
        return -ENODEV;
    int mem = fcntl(p->mem_fd, F_DUPFD_CLOEXEC, 0);
    if (mem < 0)
        return -errno;
    int sint = fcntl(p->sint_fd, F_DUPFD_CLOEXEC, 0);
    if (sint < 0) {
        int err = -errno;
        close(mem);
        return err;
    }
    int rc = hv_guest_attach_transport(mem, sint, direct_hypercall, p, out);
    if (rc < 0) {
        close(mem);
        close(sint);
        return rc;
    }
    /* What HV_PARTITION_VPS tells a process partition. */
    rc = hv_guest_set_vp_count(*out, hv_partition_vp_count(p));
    if (rc < 0) {
        hv_guest_detach(*out);
        *out = NULL;
    }
    return rc;
}
