/*
 * hv-confine-guest: a VM worker that attacks the root from inside its
 * confinement. test_confine.sh has vswitchd run it instead of hv-vm
 * (--hv-vm), so it is started exactly as hv-vm is: jailed by the process
 * backend, with the same arguments and descriptors.
 *
 * It connects VMBus (hypercalls, SynIC and memory work under the jail),
 * then, as a subverted hv-vm would, tries to reach vswitchd (its parent):
 * open its /proc memory, ptrace it (attach and seize), read its memory
 * with process_vm_readv, signal it. Each attempt must fail; it prints one
 * line per attempt to stderr (vswitchd's log). Then it installs hv-vm's
 * own system-call filter, the same call hv-vm makes, floods its stderr
 * (which vswitchd must rate-limit) and opens vswitchd's memory again,
 * which the filter must answer by killing it with SIGSYS.
 *
 * Exit status (if it lives that long): 3 if an attempt on vswitchd
 * succeeded, 4 if the forbidden call returned, 2 if it is not a partition
 * or VMBus would not connect, 1 if the filter would not install.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hv-guest.h"
#include "netvsc-sandbox.h"
#include "vmbus-client.h"

#define CONFINE_FLOOD 5000 /* stderr lines, far more than the root logs */

static const char *name = "?";
static bool escaped;

/* One attempt: a refusal is rc < 0 with a permission errno (or ENOENT
 * where a path was tried: hidden). Any other error means the access check
 * passed and something else failed, which counts as getting through. */
static void report(const char *what, long rc, int err)
{
    if (rc < 0 && (err == EPERM || err == EACCES || (err == ENOENT && strstr(what, "/proc")))) {
        fprintf(stderr, "hv-confine-guest %s: %s: denied (%s)\n", name, what, strerrorname_np(err));
    } else {
        fprintf(stderr, "hv-confine-guest %s: ESCAPE: %s succeeded\n", name, what);
        escaped = true;
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--name") == 0)
            name = argv[i + 1];
    struct hv_guest *g = NULL;
    struct vmbus_client *c = NULL;
    int rc = hv_guest_attach_env(&g);
    if (rc < 0) {
        fprintf(stderr, "hv-confine-guest %s: not a partition: %s\n", name, strerror(-rc));
        return 2;
    }
    if ((rc = vmbus_client_connect(g, 10000, &c)) < 0) {
        fprintf(stderr, "hv-confine-guest %s: VMBus connect: %s\n", name, strerror(-rc));
        return 2;
    }
    fprintf(stderr, "hv-confine-guest %s: VMBus %#x connected, uid %u, in its jail\n", name,
            vmbus_client_version(c), (unsigned)getuid());

    pid_t root = getppid();
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)root);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    report("open vswitchd's /proc memory", fd, errno);
    if (fd >= 0)
        close(fd);
    long r = ptrace(PTRACE_ATTACH, root, NULL, NULL);
    report("ptrace(PTRACE_ATTACH) vswitchd", r, errno);
    if (r == 0)
        ptrace(PTRACE_DETACH, root, NULL, NULL);
    r = ptrace(PTRACE_SEIZE, root, NULL, NULL);
    report("ptrace(PTRACE_SEIZE) vswitchd", r, errno);
    if (r == 0)
        ptrace(PTRACE_DETACH, root, NULL, NULL);
    char byte;
    struct iovec local = {&byte, 1}, remote = {(void *)&byte, 1};
    r = process_vm_readv(root, &local, 1, &remote, 1, 0);
    report("process_vm_readv vswitchd", r, errno);
    r = kill(root, 0);
    report("signal vswitchd", r, errno);
    if (escaped)
        return 3;

    if ((rc = netvsc_sandbox_enter()) < 0) {
        fprintf(stderr, "hv-confine-guest %s: filter: %s\n", name, netvsc_sandbox_last_error());
        return 1;
    }
    /* Its stderr is a pipe the root reads: control bytes must not reach
     * the root's log, nor a flood of lines. */
    fprintf(stderr, "hv-confine-guest %s: escape \033[2J\r bytes\n", name);
    for (int i = 0; i < CONFINE_FLOOD; i++)
        fprintf(stderr, "hv-confine-guest %s: flood %d\n", name, i);
    fprintf(stderr, "hv-confine-guest %s: hv-vm's filter in; opening %s again\n", name, path);
    r = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    fprintf(stderr, "hv-confine-guest %s: ESCAPE: openat under the filter returned %ld (%s)\n",
            name, r, r < 0 ? strerrorname_np(errno) : "a descriptor");
    return 4;
}
