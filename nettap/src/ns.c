/*
 * Named network namespaces. They are made the way iproute2 makes them, so
 * that `ip netns exec` and `ip netns del` work on ours and we work on
 * theirs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <net/if.h>
#include <linux/nsfs.h>

#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include "nettap.h"
#include "nettap-private.h"

bool nettap_ns_name_valid(const char *name)
{
    return name && nettap_name_chars_ok(name, NETTAP_NS_NAME_MAX);
}

static int check_ns_name(const char *name)
{
    if (!nettap_ns_name_valid(name))
        return nettap_failx(-EINVAL,
                     "namespace name '%.80s' is invalid: use 1..%d characters of A-Z a-z 0-9 _ . - "
                     "(not '.' or '..')",
                     name ? name : "(null)", NETTAP_NS_NAME_MAX);
    return 0;
}

static void ns_path(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", NETTAP_NS_RUN_DIR, name);
}

/* True if fd is a network namespace (an nsfs file of type CLONE_NEWNET). */
static bool is_netns_fd(int fd)
{
    return ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}

/* Make NETTAP_NS_RUN_DIR a shared mount, as iproute2 does, so a namespace
 * mounted there shows up (and is unmounted) in every mount namespace that
 * shares it. If the directory is not a mount point yet, bind it onto
 * itself first. The caller holds the directory lock: without it, racing
 * creators stack bind mounts recursively (Debian #949235). */
static int make_run_dir_shared(void)
{
    bool bound = false;
    while (mount("", NETTAP_NS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) < 0) {
        int err = -errno;
        if (err != -EINVAL || bound)
            return nettap_fail(err, "mount --make-shared %s", NETTAP_NS_RUN_DIR);
        if (mount(NETTAP_NS_RUN_DIR, NETTAP_NS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) < 0)
            return nettap_fail(-errno, "mount --bind %s %s", NETTAP_NS_RUN_DIR, NETTAP_NS_RUN_DIR);
        bound = true;
    }
    return 0;
}

/* Bind a brand-new network namespace onto path. The calling thread
 * unshares into it just long enough to name it, then goes back. */
static int mount_new_netns(const char *path)
{
    int rc;
    int home = open(NETTAP_THREAD_NETNS, O_RDONLY | O_CLOEXEC);
    if (home < 0)
        return nettap_fail(-errno, "open %s", NETTAP_THREAD_NETNS);
    if (unshare(CLONE_NEWNET) < 0) {
        rc = nettap_fail(-errno, "unshare(CLONE_NEWNET) for %s", path);
        goto out_close;
    }
    rc = 0;
    if (mount(NETTAP_THREAD_NETNS, path, "none", MS_BIND, NULL) < 0)
        rc = nettap_fail(-errno, "bind mount of a new network namespace on %s", path);
    if (setns(home, CLONE_NEWNET) < 0)
        rc =
            nettap_fail(-errno, "cannot return to the original network namespace after creating %s", path);
out_close:
    close(home);
    return rc;
}

int nettap_ns_create(const char *name, bool *created)
{
    char path[sizeof(NETTAP_NS_RUN_DIR) + NETTAP_NS_NAME_MAX + 2];
    int rc = check_ns_name(name);
    if (rc < 0)
        return rc;
    if (created)
        *created = false;
    ns_path(name, path, sizeof(path));

    if (mkdir(NETTAP_NS_RUN_DIR, 0755) < 0 && errno != EEXIST)
        return nettap_fail(-errno, "mkdir %s", NETTAP_NS_RUN_DIR);
    int lock = open(NETTAP_NS_RUN_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock < 0)
        return nettap_fail(-errno, "open %s", NETTAP_NS_RUN_DIR);
    if (flock(lock, LOCK_EX) < 0) {
        rc = nettap_fail(-errno, "flock %s", NETTAP_NS_RUN_DIR);
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
            rc = nettap_fail(-errno, "open %s", path);
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
            rc = nettap_failx(-EEXIST, "%s exists and is not a network namespace", path);
            goto out_lock;
        }
        /* A plain file: a create that was interrupted before its mount. */
    } else {
        rc = nettap_fail(-errno, "cannot create namespace file %s", path);
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

int nettap_ns_open(const char *name, int *fd_out)
{
    char path[sizeof(NETTAP_NS_RUN_DIR) + NETTAP_NS_NAME_MAX + 2];
    int rc = check_ns_name(name);
    if (rc < 0)
        return rc;
    ns_path(name, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return nettap_failx(-ENOENT, "network namespace '%s' does not exist (no %s)", name, path);
        return nettap_fail(-errno, "open %s", path);
    }
    if (!is_netns_fd(fd)) {
        close(fd);
        return nettap_failx(-ENOENT, "%s is not a network namespace (an interrupted create?)", path);
    }
    *fd_out = fd;
    return 0;
}

int nettap_ns_enter(const char *name, int *prev_fd)
{
    int fd, rc;
    int prev = -1;
    if ((rc = nettap_ns_open(name, &fd)) < 0)
        return rc;
    if (prev_fd) {
        prev = open(NETTAP_THREAD_NETNS, O_RDONLY | O_CLOEXEC);
        if (prev < 0) {
            rc = nettap_fail(-errno, "open %s", NETTAP_THREAD_NETNS);
            goto out_close;
        }
    }
    if (setns(fd, CLONE_NEWNET) < 0) {
        rc = nettap_fail(-errno, "setns into network namespace '%s'", name);
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

int nettap_ns_leave(int prev_fd)
{
    if (prev_fd < 0)
        return 0;
    int rc = 0;
    if (setns(prev_fd, CLONE_NEWNET) < 0)
        rc = nettap_fail(-errno, "setns back to the previous network namespace");
    close(prev_fd);
    return rc;
}

int nettap_ns_lo_up(void)
{
    struct nl_sock *sk = NULL;
    struct rtnl_link *lo = NULL, *changes = NULL;
    int rc = nettap_nl_open(&sk);
    if (rc < 0)
        return rc;
    int err = rtnl_link_get_kernel(sk, 0, "lo", &lo);
    if (err < 0) {
        rc = nettap_fail(nettap_nl_errno(err), "loopback interface 'lo'");
        goto out;
    }
    if (!(changes = rtnl_link_alloc())) {
        rc = nettap_fail(-ENOMEM, "link object");
        goto out;
    }
    rtnl_link_set_flags(changes, IFF_UP);
    rc = nettap_link_change(sk, rtnl_link_get_ifindex(lo), changes);
    if (rc < 0)
        nettap_fail(rc, "bring 'lo' up");
out:
    if (changes)
        rtnl_link_put(changes);
    if (lo)
        rtnl_link_put(lo);
    nl_socket_free(sk);
    return rc;
}

int nettap_ns_setup(const char *name, bool *created, int *prev_fd)
{
    int prev = -1;
    int rc = nettap_ns_create(name, created);
    if (rc < 0)
        return rc;
    if ((rc = nettap_ns_enter(name, &prev)) < 0)
        return rc;
    if ((rc = nettap_ns_lo_up()) < 0) {
        char msg[NETTAP_ERROR_MAX];
        snprintf(msg, sizeof(msg), "%s", nettap_last_error());
        nettap_ns_leave(prev);
        return nettap_failx(rc, "namespace '%s': %s", name, msg);
    }
    if (prev_fd)
        *prev_fd = prev;
    else
        close(prev);
    return 0;
}

int nettap_ns_delete(const char *name)
{
    char path[sizeof(NETTAP_NS_RUN_DIR) + NETTAP_NS_NAME_MAX + 2];
    int rc = check_ns_name(name);
    if (rc < 0)
        return rc;
    ns_path(name, path, sizeof(path));
    /* Not mounted (a leftover file) is fine: unlink decides. */
    umount2(path, MNT_DETACH);
    if (unlink(path) < 0) {
        if (errno == ENOENT)
            return nettap_failx(-ENOENT, "network namespace '%s' does not exist", name);
        return nettap_fail(-errno, "cannot remove namespace file %s", path);
    }
    return 0;
}
