/*
 * hv-vm: the child-partition worker. vswitchd starts it as a process
 * partition (guest memory, hypercall socket and SINT eventfd at fds 3, 4
 * and 5, named in HV_PARTITION_FDS), jailed: already in the VM's network
 * namespace, as an unprivileged uid with no capabilities, in a root that
 * holds only what it loads from (hv.h, struct hv_process_jail). It
 * connects VMBus, opens every synthetic NIC the root offers, gives each a
 * TAP device in the namespace named after the NIC, and moves frames
 * between the TAPs and the NICs until SIGTERM/SIGINT.
 *
 * TAPs and their link settings need privilege, so the root's TAP broker
 * makes them (--tap-broker-fd, nettap.h). Once set up, hv-vm confines
 * itself further with a seccomp filter of the system calls its steady state
 * makes (netvsc-sandbox.h): a guest that subverts it can do little else.
 *
 * The front end itself (the NICs, their TAPs, the loop, the VPs) is the
 * library netvsc-vm.h; this is its main(): the arguments, the partition,
 * the signals, the filter.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "hv-guest.h"
#include "nettap.h"
#include "netvsc-sandbox.h"
#include "netvsc-vm.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hv-vm [--name NAME] [--netns NS] [--tap-broker-fd FD] [--verbose] [--help]\n"
            "The child-partition worker: runs inside a process partition started by\n"
            "vswitchd (needs HV_PARTITION_FDS), in the VM's network namespace, puts each\n"
            "synthetic NIC the root offers there as a TAP device named after the NIC,\n"
            "and moves frames between them until SIGTERM or SIGINT. After set-up it\n"
            "runs under a seccomp filter: a system call outside it kills the process.\n"
            "  --name NAME          VM name for messages (default: $HV_PARTITION_NAME)\n"
            "  --netns NS           the network namespace it was started in, for messages\n"
            "                       (default: NAME); 1..%d characters of A-Z a-z 0-9 _ . -\n"
            "  --tap-broker-fd FD   the root's TAP broker, which makes the TAPs and changes\n"
            "                       their links (hv-vm has no privilege to); required\n"
            "  --no-offload         ask the root for no checksum, LSO or RSC offloads (a guest\n"
            "                       that turned them off in its adapter's settings)\n"
            "  --verbose            also report offers, link and MTU changes in detail\n"
            "  --help               this text\n",
            NETTAP_NS_NAME_MAX);
}

int main(int argc, char **argv)
{
    struct netvsc_vm_params vp = {.signal_fd = -1, .tap_broker = -1};
    const char *name = NULL, *netns = NULL;
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"netns", required_argument, NULL, 'N'},
        {"tap-broker-fd", required_argument, NULL, 'B'},
        {"no-offload", no_argument, NULL, 'O'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        switch (o) {
        case 'n':
            name = optarg;
            break;
        case 'N':
            netns = optarg;
            break;
        case 'B': {
            char *end;
            long fd = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || fd <= HV_CHILD_FD_SINT || fd > 1023) {
                fprintf(stderr, "hv-vm: --tap-broker-fd '%s': a descriptor number above %d\n",
                        optarg, HV_CHILD_FD_SINT);
                return 2;
            }
            vp.tap_broker = (int)fd;
            break;
        }
        case 'O':
            vp.no_offload = true;
            break;
        case 'v':
            vp.verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hv-vm: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!name)
        name = getenv(HV_ENV_NAME);
    if (!name || !*name) {
        fprintf(stderr, "hv-vm: no VM name: pass --name NAME or run as a partition "
                        "(HV_PARTITION_NAME)\n");
        return 2;
    }
    if (!netns)
        netns = name;
    if (!nettap_ns_name_valid(netns)) {
        fprintf(stderr,
                "hv-vm %s: namespace name '%s' is invalid: use 1..%d characters of "
                "A-Z a-z 0-9 _ . - (not '.' or '..')\n",
                name, netns, NETTAP_NS_NAME_MAX);
        return 2;
    }
    if (vp.tap_broker < 0) {
        fprintf(stderr, "hv-vm %s: no --tap-broker-fd: hv-vm runs without privileges and has "
                        "the root make its TAPs (it is started by vswitchd)\n",
                name);
        return 2;
    }
    vp.name = name;
    vp.netns = netns;
    /* A buffer of our own: stdio would otherwise fstat stdout for one on
     * its first line, which may come after the system-call filter is in. */
    static char out_buf[BUFSIZ];
    setvbuf(stdout, out_buf, _IOLBF, sizeof(out_buf));

    int rc = hv_guest_attach_env(&vp.guest);
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: not inside a partition (%s): hv-vm is started by vswitchd\n",
                name, rc == -ENOENT ? "no " HV_ENV_FDS : strerror(-rc));
        return 2;
    }

    int exit_code = 1;
    struct netvsc_vm *vm = NULL;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
        (vp.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        fprintf(stderr, "hv-vm %s: event setup: %s\n", name, strerror(errno));
        goto out;
    }
    if (netvsc_vm_create(&vp, &vm) < 0)
        goto out;
    /* Set up: from here on, only what the steady state needs. Refuse to run
     * without the filter rather than run with less confinement. */
    if ((rc = netvsc_sandbox_enter()) < 0) {
        fprintf(stderr, "hv-vm %s: cannot install the system-call filter: %s\n", name,
                netvsc_sandbox_last_error());
        goto out;
    }
    if (vp.verbose)
        printf("hv-vm %s: system-call filter installed\n", name);

    rc = netvsc_vm_run(vm);
    exit_code = rc < 0 ? 1 : 0;

out:
    netvsc_vm_destroy(vm);
    if (vp.signal_fd >= 0)
        close(vp.signal_fd);
    hv_guest_detach(vp.guest);
    return exit_code;
}
