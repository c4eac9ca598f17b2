/*
 * Guest memory: a memfd sealed against resizing, so a guest can never make
 * the root's views of its pages fault (SIGBUS) by shrinking it. Views map
 * chosen pages of it at chosen places: the root maps only what a guest
 * granted, and both sides map ring data areas twice so packets never wrap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv-private.h"

int hv_mem_create(const char *name, uint64_t bytes, int *fd_out)
{
    if (bytes == 0 || (bytes & (HV_PAGE_SIZE - 1)) != 0)
        return -EINVAL;
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)bytes) < 0)
        goto fail;
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
        goto fail;
    *fd_out = fd;
    return 0;
fail:;
    int err = -errno;
    close(fd);
    return err;
}

uint32_t hv_mem_count_runs(const uint64_t *pfns, uint32_t n)
{
    uint32_t runs = 0;
    for (uint32_t i = 0; i < n; i++)
        if (i == 0 || pfns[i] != pfns[i - 1] + 1)
            runs++;
    return runs;
}

size_t hv_mem_view_len(uint32_t n, bool ring)
{
    size_t pages = ring ? 1 + 2 * ((size_t)n - 1) : n;
    return pages << HV_PAGE_SHIFT;
}

/* Map pfns[0..n) at dst, one mmap per run of consecutive PFNs. */
static int map_runs(int fd, const uint64_t *pfns, uint32_t n, uint8_t *dst)
{
    uint32_t i = 0;
    while (i < n) {
        uint32_t j = i + 1;
        while (j < n && pfns[j] == pfns[j - 1] + 1)
            j++;
        void *want = dst + ((size_t)i << HV_PAGE_SHIFT);
        void *got = mmap(want, (size_t)(j - i) << HV_PAGE_SHIFT, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_FIXED, fd, (off_t)(pfns[i] << HV_PAGE_SHIFT));
        if (got == MAP_FAILED)
            return -errno;
        i = j;
    }
    return 0;
}

int hv_mem_map(int fd, uint64_t npages, const uint64_t *pfns, uint32_t n, bool ring,
               void **view, size_t *len_out)
{
    if (n == 0 || (ring && n < 2))
        return -EINVAL;
    for (uint32_t i = 0; i < n; i++)
        if (pfns[i] >= npages)
            return -ERANGE;
    size_t len = hv_mem_view_len(n, ring);
    /* Reserve the whole range first so the pieces land side by side. */
    uint8_t *base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return -errno;
    int rc;
    if (!ring) {
        rc = map_runs(fd, pfns, n, base);
    } else {
        size_t dpages = (size_t)n - 1;
        rc = map_runs(fd, pfns, 1, base);
        if (rc == 0)
            rc = map_runs(fd, pfns + 1, n - 1, base + HV_PAGE_SIZE);
        if (rc == 0)
            rc = map_runs(fd, pfns + 1, n - 1, base + ((1 + dpages) << HV_PAGE_SHIFT));
    }
    if (rc < 0) {
        munmap(base, len);
        return rc;
    }
    *view = base;
    if (len_out)
        *len_out = len;
    return 0;
}

void hv_mem_unmap(void *view, size_t len)
{
    if (view)
        munmap(view, len);
}
