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
 * makes them (--tap-broker-fd, netvsc-tap.h). Once set up, hv-vm confines
 * itself further with a seccomp filter of the system calls its steady state
 * makes (netvsc-sandbox.h): a guest that subverts it can do little else.
 *
 * One thread, one event loop. Per round, every NIC gets at most one burst
 * each way, so one busy NIC cannot starve the others. After the last work
 * the loop keeps polling for a short while (the root's next frame is often
 * only microseconds away), then arms every NIC's interrupt and sleeps in
 * epoll_wait on the SINT eventfds, the TAPs and a signalfd.
 *
 * Virtual processors: the partition's VPs (HV_PARTITION_VPS) are interrupt
 * targets here, not threads. NICs are spread over them round-robin in the
 * order they are opened, as Linux spreads its NIC channels over CPUs, and
 * the loop waits on every VP's SINT eventfd; VMBus messages come on VP 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv-guest.h"
#include "netvsc-sandbox.h"
#include "netvsc-tap.h"
#include "vm-private.h"

#define HV_VM_CONNECT_MS 10000

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
            "  --verbose            also report offers, link and MTU changes in detail\n"
            "  --help               this text\n",
            NETVSC_NS_NAME_MAX);
}

int main(int argc, char **argv)
{
    struct vm vm = {.ep = -1, .sfd = -1, .tap_broker = -1};
    const char *name = NULL, *netns = NULL;
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"netns", required_argument, NULL, 'N'},
        {"tap-broker-fd", required_argument, NULL, 'B'},
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
            vm.tap_broker = (int)fd;
            break;
        }
        case 'v':
            vm.verbose = true;
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
    if (!netvsc_ns_name_valid(netns)) {
        fprintf(stderr,
                "hv-vm %s: namespace name '%s' is invalid: use 1..%d characters of "
                "A-Z a-z 0-9 _ . - (not '.' or '..')\n",
                name, netns, NETVSC_NS_NAME_MAX);
        return 2;
    }
    if (vm.tap_broker < 0) {
        fprintf(stderr, "hv-vm %s: no --tap-broker-fd: hv-vm runs without privileges and has "
                        "the root make its TAPs (it is started by vswitchd)\n",
                name);
        return 2;
    }
    vm.name = name;
    vm.netns = netns;
    /* A buffer of our own: stdio would otherwise fstat stdout for one on
     * its first line, which may come after the system-call filter is in. */
    static char out_buf[BUFSIZ];
    setvbuf(stdout, out_buf, _IOLBF, sizeof(out_buf));

    int rc = hv_guest_attach_env(&vm.g);
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: not inside a partition (%s): hv-vm is started by vswitchd\n",
                name, rc == -ENOENT ? "no " HV_ENV_FDS : strerror(-rc));
        return 2;
    }
    vm.nvp = hv_guest_vp_count(vm.g);

    int exit_code = 1;
    if ((rc = setup_events(&vm)) < 0) {
        fprintf(stderr, "hv-vm %s: event setup: %s\n", name, strerror(-rc));
        goto out_events;
    }
    rc = vmbus_client_connect(vm.g, HV_VM_CONNECT_MS, &vm.c);
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: VMBus connect failed: %s\n", name, strerror(-rc));
        goto out_events;
    }
    if ((rc = watch_vps(&vm)) < 0) {
        fprintf(stderr, "hv-vm %s: SINT of its VPs: %s\n", name, strerror(-rc));
        vmbus_client_destroy(vm.c);
        goto out_events;
    }
    if (vm.verbose)
        printf("hv-vm %s: VMBus version %#x, %u VP%s\n", name, vmbus_client_version(vm.c),
               vm.nvp, vm.nvp == 1 ? "" : "s");
    vmbus_client_offers_changed(vm.c); /* the initial set is handled here */
    sync_offers(&vm);
    int nics = 0;
    for (int i = 0; i < HV_VM_MAX_NICS; i++)
        nics += vm.nics[i] != NULL;
    if (nics == 0)
        printf("hv-vm %s: no NIC yet; waiting for the root to offer one\n", name);
    /* Set up: from here on, only what the steady state needs. Refuse to run
     * without the filter rather than run with less confinement. */
    if ((rc = netvsc_sandbox_enter()) < 0) {
        fprintf(stderr, "hv-vm %s: cannot install the system-call filter: %s\n", name,
                netvsc_sandbox_last_error());
        goto out_nics;
    }
    if (vm.verbose)
        printf("hv-vm %s: system-call filter installed\n", name);

    rc = run(&vm);
    exit_code = rc < 0 ? 1 : 0;

out_nics:
    for (int i = 0; i < HV_VM_MAX_NICS; i++)
        if (vm.nics[i])
            nic_close(&vm, vm.nics[i], "closed");
    vmbus_client_destroy(vm.c);
out_events:
    if (vm.ep >= 0)
        close(vm.ep);
    if (vm.sfd >= 0)
        close(vm.sfd);
    hv_guest_detach(vm.g);
    return exit_code;
}
