/*
 * Captures: a port's frames, taken from the port's capture ring on the
 * control thread and written to a pcap file with libpcap.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include <rte_mbuf.h>

#include "vsw-port-provider.h"
#include "model-private.h"

struct vsd_capture {
    struct vsd_capture *next;
    struct vsw_capture *cap;
    pcap_t *pcap;
    pcap_dumper_t *dump;
    char file[PATH_MAX];
    char port[VSD_PORT_NAME_MAX + 1];
    uint64_t count, written;
    double deadline;
    vsd_capture_done_fn *done;
    void *ctx;
};

/* Remove a capture file this call created and nothing else: only if the
 * name in its directory still leads to the file we made (in a shared
 * directory, someone may have renamed another file over it since). */
static void capture_unlink_own(int dirfd, const char *base, const struct stat *mine)
{
    struct stat now;
    if (fstatat(dirfd, base, &now, AT_SYMLINK_NOFOLLOW) == 0 && mine->st_dev == now.st_dev &&
        mine->st_ino == now.st_ino)
        unlinkat(dirfd, base, 0);
}

/*
 * The directory of an absolute capture path, reached without following a
 * symbolic link anywhere on the way (openat2 RESOLVE_NO_SYMLINKS): O_NOFOLLOW
 * guards only the last name, and a link to a directory planted in a shared
 * one (/tmp/x -> /etc) would otherwise lead a capture, or --force, into a
 * directory the operator did not name. Kernels before 5.6 have no openat2:
 * there only the last name is guarded. *base is the file's name in it.
 * Returns the directory's O_PATH descriptor or -1 with e filled.
 */
static int capture_dir_open(const char *file, char *dir, size_t dir_len, const char **base,
                            struct vsd_err *e)
{
    const char *slash = strrchr(file, '/');
    *base = slash + 1;
    if (!**base || !strcmp(*base, ".") || !strcmp(*base, "..")) {
        vsd_fail(e, VSD_BAD_PARAMS, "the capture file %s names no file", file);
        return -1;
    }
    snprintf(dir, dir_len, "%.*s", slash == file ? 1 : (int)(slash - file), file);
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS)
        fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            vsd_fail(e, VSD_FAILED,
                     "capture file %s: %s has a symbolic link in its path: vswitchd does not "
                     "write through links",
                     file, dir);
        else
            vsd_fail(e, VSD_FAILED, "capture file %s: directory %s: %s", file, dir,
                     strerror(errno));
    }
    return fd;
}

/* Open the capture file as root on an operator's word, so carefully: the
 * file is created new (O_EXCL) in its directory (capture_dir_open), never
 * through a symbolic link (O_NOFOLLOW: a link at that name is refused even
 * with force). With force, an existing file is replaced only if it is a
 * regular file with no other name (a hard link planted in /tmp would
 * otherwise let a capture overwrite the file it shares) that belongs to
 * vswitchd's own user (a file someone else made, readable by them, would
 * receive the guests' frames); it is truncated in place, keeping its mode.
 * *created says whether the file is new, *st what it is. Returns the fd or
 * -1 with e filled. */
static int capture_open(int dirfd, const char *file, const char *base, bool force, bool *created,
                        struct stat *st, struct vsd_err *e)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a reader. */
    int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    int fd = openat(dirfd, base, flags | O_EXCL, 0640);
    *created = fd >= 0;
    if (fd < 0 && errno == EEXIST && force)
        fd = openat(dirfd, base, flags, 0640);
    if (fd < 0) {
        /* What is there, for the message only: nothing is done with it. */
        int err = errno;
        bool exists = fstatat(dirfd, base, st, AT_SYMLINK_NOFOLLOW) == 0;
        if (err == ELOOP || (exists && S_ISLNK(st->st_mode)))
            vsd_fail(e, VSD_FAILED,
                     "capture file %s is a symbolic link: vswitchd does not write through links",
                     file);
        else if (err == EEXIST)
            vsd_fail(e, VSD_FAILED, "capture file %s exists: give --force to replace it", file);
        else if (exists && !S_ISREG(st->st_mode))
            vsd_fail(e, VSD_FAILED, "capture file %s is not a regular file: not replaced", file);
        else
            vsd_fail(e, VSD_FAILED, "cannot create capture file %s: %s", file, strerror(err));
        return -1;
    }
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_nlink != 1) {
        vsd_fail(e, VSD_FAILED, "capture file %s is not a regular file with one name: not replaced",
                 file);
        close(fd);
        return -1;
    }
    if (!*created && st->st_uid != geteuid()) {
        vsd_fail(e, VSD_FAILED, "capture file %s belongs to another user (uid %u): not replaced",
                 file, (unsigned)st->st_uid);
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 || (!*created && ftruncate(fd, 0) < 0)) {
        vsd_fail(e, VSD_FAILED, "cannot write capture file %s: %s", file, strerror(errno));
        if (*created)
            capture_unlink_own(dirfd, base, st);
        close(fd);
        return -1;
    }
    return fd;
}

int vsd_capture_start(struct vsd *d, const struct vsd_capture_params *p,
                      vsd_capture_done_fn *done, void *ctx, struct vsd_err *e)
{
    const char *pname = p->port, *file = p->file;
    if (!p->count && !p->timeout_s) {
        vsd_fail(e, VSD_BAD_PARAMS, "give -c COUNT, --timeout S, or both");
        return -1;
    }
    if (file[0] != '/') {
        vsd_fail(e, VSD_BAD_PARAMS, "the capture file must be an absolute path");
        return -1;
    }
    if (strlen(file) >= PATH_MAX) {
        vsd_fail(e, VSD_BAD_PARAMS, "the capture file's path is longer than %d bytes",
                 PATH_MAX - 1);
        return -1;
    }
    struct vsd_switch *ps;
    struct vsw_port *port = vsd_find_port(d, pname, &ps);
    if (!port) {
        vsd_fail(e, VSD_FAILED, "no port '%s' (VM/NIC, a host vNIC, or SWITCH:uplink)", pname);
        return -1;
    }
    /* Everything that can fail without touching the file system first: the
     * file is created last, so a capture refused for its port leaves the
     * file system as it was. */
    struct vsd_capture *c = calloc(1, sizeof(*c));
    if (!c) {
        vsd_fail(e, VSD_FAILED, "out of memory");
        return -1;
    }
    c->pcap = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_NANO);
    if (!c->pcap) {
        vsd_fail(e, VSD_FAILED, "libpcap failed");
        free(c);
        return -1;
    }
    int rc = vsw_capture_start(port, 4096, &c->cap);
    if (rc < 0) {
        vsd_fail(e, VSD_FAILED, "cannot capture on %s: %s", pname,
                 rc == -EBUSY ? "a capture is already running there" : strerror(-rc));
        pcap_close(c->pcap);
        free(c);
        return -1;
    }
    bool created = false;
    struct stat st;
    char dir[PATH_MAX];
    const char *base;
    int dirfd = capture_dir_open(file, dir, sizeof(dir), &base, e);
    int fd = dirfd < 0 ? -1 : capture_open(dirfd, file, base, p->force, &created, &st, e);
    if (fd >= 0) {
        FILE *fp = fdopen(fd, "w");
        if (!fp) {
            vsd_fail(e, VSD_FAILED, "cannot write %s: %s", file, strerror(errno));
            close(fd);
        } else if (!(c->dump = pcap_dump_fopen(c->pcap, fp))) {
            /* It has closed fp: failing to write the header is the only way
             * it fails for DLT_EN10MB. */
            vsd_fail(e, VSD_FAILED, "cannot write %s: %s", file, pcap_geterr(c->pcap));
        }
        if (!c->dump && created)
            capture_unlink_own(dirfd, base, &st);
    }
    if (dirfd >= 0)
        close(dirfd);
    if (!c->dump) {
        vsw_capture_stop(c->cap);
        pcap_close(c->pcap);
        free(c);
        return -1;
    }
    snprintf(c->file, sizeof(c->file), "%s", file);
    snprintf(c->port, sizeof(c->port), "%s", pname);
    c->count = p->count;
    c->deadline = p->timeout_s ? vsd_now() + (double)p->timeout_s : 0;
    c->done = done;
    c->ctx = ctx;
    c->next = d->captures;
    d->captures = c;
    vsd_log("capturing on %s into %s%s", pname, file, created ? "" : " (replaced)");
    return 0;
}

void vsd_capture_finish(struct vsd *d, struct vsd_capture *c, bool reply)
{
    for (struct vsd_capture **pp = &d->captures; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    uint64_t dropped = vsw_capture_dropped(c->cap);
    vsw_capture_stop(c->cap);
    pcap_dump_close(c->dump);
    pcap_close(c->pcap);
    struct vsd_capture_result r = {.file = c->file, .packets = c->written, .dropped = dropped};
    c->done(c->ctx, reply ? &r : NULL);
    vsd_log("capture on %s: %" PRIu64 " frames written to %s", c->port, c->written, c->file);
    free(c);
}

void vsd_capture_poll(struct vsd *d)
{
    double now = vsd_now();
    for (struct vsd_capture *c = d->captures, *next; c; c = next) {
        next = c->next;
        struct rte_mbuf *pkts[64];
        uint64_t ts[64];
        unsigned n;
        while ((n = vsw_capture_read(c->cap, pkts, ts, 64)) > 0) {
            for (unsigned i = 0; i < n; i++) {
                struct rte_mbuf *m = pkts[i];
                if (!c->count || c->written < c->count) {
                    uint8_t buf[16384];
                    uint32_t len = m->pkt_len < sizeof(buf) ? m->pkt_len : (uint32_t)sizeof(buf);
                    const uint8_t *data = rte_pktmbuf_read(m, 0, len, buf);
                    struct pcap_pkthdr h = {
                        .ts = {.tv_sec = (time_t)(ts[i] / 1000000000u),
                               .tv_usec = (suseconds_t)(ts[i] % 1000000000u)},
                        .caplen = len,
                        .len = m->pkt_len,
                    };
                    pcap_dump((u_char *)c->dump, &h, data);
                    c->written++;
                }
                rte_pktmbuf_free(m);
            }
        }
        pcap_dump_flush(c->dump);
        bool gone = vsw_capture_port_gone(c->cap);
        if (gone)
            vsd_log("capture on %s: the port went away", c->port);
        if (gone || (c->count && c->written >= c->count) || (c->deadline && now >= c->deadline))
            vsd_capture_finish(d, c, true);
    }
}
