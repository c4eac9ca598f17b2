/*
 * vswitchd: the root partition's network stack. Holds the partition table
 * (hv-core), a VMBus server and one netvsp per VM NIC, the DPDK switches, the
 * control socket and the state file. The EAL main lcore is the control
 * thread; the other lcores are switch workers.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>

#include "jumbo-pool.h"
#include "vsw-placement.h"
#include "vswitchd.h"

#define DEFAULT_SOCKET "/run/hvnet/vswitchd.sock"
#define DEFAULT_STATE "/var/lib/hvnet/state.json"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vswitchd [--socket PATH] [--state FILE] [--detach] [--log FILE]\n"
            "                [--pidfile FILE] [--hv-vm PATH] [--vm-uid-base N] [-- EAL-ARGS]\n"
            "\n"
            "The hvnet root partition: partitions, VMBus, synthetic NICs and DPDK switches,\n"
            "driven by vswitch-ctl over a JSON-RPC control socket.\n"
            "\n"
            "  --socket PATH  control socket (default $HVNET_SOCKET, else %s)\n"
            "  --state FILE   configuration, saved on every change and restored at start\n"
            "                 (default %s)\n"
            "  --detach       run in the background; return once the socket is ready\n"
            "  --log FILE     append log lines to FILE instead of stderr\n"
            "  --pidfile FILE once the socket serves, write the PID into FILE (replaced\n"
            "                 whole, never followed through a symlink); removed at exit\n"
            "  --hv-vm PATH   the VM worker program (default: hv-vm beside vswitchd)\n"
            "  --vm-uid-base N  VM workers run as uid and gid N + the VM's slot (0..%d),\n"
            "                 without capabilities, in their own namespaces; the range\n"
            "                 must belong to nobody else (default %u)\n"
            "  --help, --version\n"
            "\n"
            "EAL-ARGS go to DPDK. Without them vswitchd uses lcores 0 and 1 (main +\n"
            "one switch worker), --no-pci, --file-prefix hvnet, and hugepages if any are\n"
            "free, otherwise --no-huge -m 1024.\n"
            "\n"
            "Statistics are also in DPDK telemetry: dpdk-telemetry.py -f PREFIX, then\n"
            "/hvnet/switches, /hvnet/switch,NAME, /hvnet/ports, /hvnet/port,NAME and\n"
            "/hvnet/control. SIGTERM stops the VMs and exits; the state file stays.\n"
            "vswitchd is not dumpable: no core files, and only CAP_SYS_PTRACE may trace it.\n",
            DEFAULT_SOCKET, DEFAULT_STATE, VSD_MAX_VMS - 1, VSD_VM_UID_BASE_DEFAULT);
}

/* Written beside and renamed over FILE, so a reader never sees half a PID
 * and a symlink at FILE is replaced, not followed. */
static int write_pidfile(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    int rc = 0;
    if (write(fd, buf, (size_t)len) != len || fsync(fd) < 0)
        rc = errno ? -errno : -EIO;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* Only while it still names this process: a successor may have taken it. */
static void remove_pidfile(const char *path)
{
    char buf[32] = "";
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n > 0 && strtol(buf, NULL, 10) == (long)getpid())
        unlink(path);
}

static int free_hugepages(void)
{
    int n = 0;
    FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r");
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = 0;
        fclose(f);
    }
    return n;
}

/* EAL arguments: the user's, or defaults that work on a small machine. */
static int build_eal_args(int n_user, char **user, char **out, int max)
{
    int n = 0;
    out[n++] = "vswitchd";
    if (n_user > 0) {
        for (int i = 0; i < n_user && n < max - 1; i++)
            out[n++] = user[i];
        return n;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    out[n++] = cpus >= 2 ? "-l" : "--lcores";
    out[n++] = cpus >= 2 ? "0,1" : "0@0,1@0";
    out[n++] = "--no-pci";
    out[n++] = "--file-prefix=hvnet";
    out[n++] = "--log-level=*:warning";
    if (free_hugepages() >= 512) {
        /* Unlinked at once: the pages go back when the process ends, even
         * by kill -9 (nothing here needs secondary processes). */
        out[n++] = "--huge-unlink";
        out[n++] = "-m";
        out[n++] = "1024";
    } else {
        out[n++] = "--no-huge";
        out[n++] = "-m";
        out[n++] = "1024";
    }
    return n;
}

static int mkdir_parent(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    char *dir = dirname(buf);
    char cur[PATH_MAX] = "";
    for (char *tok = strtok(dir, "/"); tok; tok = strtok(NULL, "/")) {
        strncat(cur, "/", sizeof(cur) - strlen(cur) - 1);
        strncat(cur, tok, sizeof(cur) - strlen(cur) - 1);
        if (mkdir(cur, 0755) < 0 && errno != EEXIST)
            return -errno;
    }
    return 0;
}

/* Tags for epoll events that are not the RPC server's. */
static int tag_host, tag_dp, tag_timer, tag_signal, tag_tel;

static int add_fd(int epfd, int fd, void *tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Stop running VMs politely before exiting; they come back at the next
 * start because the state file still says they run. */
static void stop_vms(struct vsd *d)
{
    bool any = false;
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        struct vsd_vm *vm = d->vms[i];
        if (vm && hv_partition_state(vm->p) == HV_PARTITION_RUNNING) {
            hv_partition_request_stop(vm->p);
            any = true;
        }
    }
    double until = vsd_now() + 3;
    while (any && vsd_now() < until) {
        any = false;
        for (int i = 0; i < VSD_MAX_VMS; i++)
            if (d->vms[i] && hv_partition_state(d->vms[i]->p) == HV_PARTITION_RUNNING)
                any = true;
        if (any)
            hv_host_run(d->host, 50);
    }
}

int main(int argc, char **argv)
{
    /* First of all: a process that is not dumpable can be traced, and its
     * /proc memory read, only with CAP_SYS_PTRACE, even by its own uid;
     * and it leaves no core file with guests' frames and keys in it. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        perror("vswitchd: prctl(PR_SET_DUMPABLE)");
        return 1;
    }
    const char *sock = getenv("HVNET_SOCKET") ? getenv("HVNET_SOCKET") : DEFAULT_SOCKET;
    const char *state = DEFAULT_STATE, *logfile = NULL, *hv_vm = NULL, *pidfile = NULL;
    bool detach = false;
    unsigned long uid_base = VSD_VM_UID_BASE_DEFAULT;
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'}, {"state", required_argument, NULL, 'S'},
        {"detach", no_argument, NULL, 'd'},       {"log", required_argument, NULL, 'l'},
        {"hv-vm", required_argument, NULL, 'v'},  {"vm-uid-base", required_argument, NULL, 'u'},
        {"pidfile", required_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            sock = optarg;
            break;
        case 'S':
            state = optarg;
            break;
        case 'd':
            detach = true;
            break;
        case 'l':
            logfile = optarg;
            break;
        case 'v':
            hv_vm = optarg;
            break;
        case 'p':
            pidfile = optarg;
            break;
        case 'u': {
            char *end;
            errno = 0;
            uid_base = strtoul(optarg, &end, 10);
            /* Not root's, and the whole range below 2^31: larger ids are
             * taken for negative numbers by too many programs. */
            if (errno || *optarg < '0' || *optarg > '9' || *end || uid_base == 0 ||
                uid_base > 0x7fffffffUL - VSD_MAX_VMS) {
                fprintf(stderr, "vswitchd: --vm-uid-base '%s': a number from 1 to %lu\n", optarg,
                        0x7fffffffUL - VSD_MAX_VMS);
                return 2;
            }
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("vswitchd (hvnet) 0.1.0\n");
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    int n_eal_user = argc - optind;
    char **eal_user = argv + optind;
    if (n_eal_user > 0 && strcmp(argv[optind - 1], "--") != 0) {
        fprintf(stderr, "vswitchd: unexpected argument '%s' (DPDK arguments go after --)\n",
                argv[optind]);
        return 2;
    }

    struct vsd d = {0};
    d.vm_uid_base = (uint32_t)uid_base;
    snprintf(d.state_path, sizeof(d.state_path), "%s", state);
    if (hv_vm) {
        /* Absolute: the VM worker's jail holds its directory (jail.c). */
        if (!realpath(hv_vm, d.hv_vm_path)) {
            fprintf(stderr, "vswitchd: --hv-vm %s: %s\n", hv_vm, strerror(errno));
            return 2;
        }
    } else {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0) {
            perror("vswitchd: /proc/self/exe");
            return 1;
        }
        self[n] = '\0';
        snprintf(d.hv_vm_path, sizeof(d.hv_vm_path), "%s/hv-vm", dirname(self));
    }

    /* --detach: the parent returns once the child says it is serving. */
    int ready_pipe[2] = {-1, -1};
    if (detach) {
        if (pipe2(ready_pipe, O_CLOEXEC) < 0) {
            perror("vswitchd: pipe");
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("vswitchd: fork");
            return 1;
        }
        if (pid > 0) {
            close(ready_pipe[1]);
            char c;
            ssize_t r = read(ready_pipe[0], &c, 1);
            return r == 1 ? 0 : 1;
        }
        close(ready_pipe[0]);
        setsid();
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nul >= 0) {
            dup2(nul, STDIN_FILENO);
            dup2(nul, STDOUT_FILENO);
            if (!logfile)
                dup2(nul, STDERR_FILENO);
            close(nul);
        }
    }
    if (logfile) {
        int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) {
            fprintf(stderr, "vswitchd: cannot open log %s: %s\n", logfile, strerror(errno));
            return 1;
        }
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    vsd_log_init();
    signal(SIGPIPE, SIG_IGN);

    /* Blocked before DPDK starts its threads, so that they inherit the mask
     * and these signals reach only the signalfd of the control loop. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    char *eal_args[64];
    int n_eal = build_eal_args(n_eal_user, eal_user, eal_args, 64);
    /* EAL pins this thread to the main lcore, and children inherit that:
     * keep the set we started with for the VMs. */
    d.have_vm_cpus = sched_getaffinity(0, sizeof(d.vm_cpus), &d.vm_cpus) == 0;
    if (rte_eal_init(n_eal, eal_args) < 0) {
        vsd_log("DPDK initialisation failed (%s); check hugepages (scripts/setup.sh) or pass "
                "-- --no-huge -m 1024",
                rte_strerror(rte_errno));
        return 1;
    }
    struct jumbo_pools_params jpp = {.name = "hvnet", .socket = -1};
    int rc = jumbo_pools_create(&jpp, &d.pools);
    if (rc < 0) {
        vsd_log("cannot create the mbuf pool: %s (hugepages: scripts/setup.sh; or more -m)",
                strerror(-rc));
        rte_eal_cleanup();
        return 1;
    }
    struct vsw_dp_params dpp = {.pool = jumbo_pool(d.pools, JUMBO_POOL_STD)};
    rc = vsw_dp_create(&dpp, &d.dp);
    if (rc < 0) {
        vsd_log("cannot start the data plane: %s (DPDK needs at least two lcores: main and one "
                "worker)",
                strerror(-rc));
        jumbo_pools_destroy(d.pools);
        rte_eal_cleanup();
        return 1;
    }
    if ((rc = vsd_telemetry_init()) < 0)
        vsd_log("statistics will not be in DPDK telemetry: %s", strerror(-rc));
    if ((rc = hv_host_create(&d.host)) < 0) {
        vsd_log("cannot create the partition table: %s", strerror(-rc));
        return 1;
    }
    int exit_code = 1;
    bool wrote_pidfile = false;
    struct vsd_rpc_server *rpc = NULL;
    struct vsd_methods *methods = NULL;
    struct vsd_rpc_counters counters = {0};
    struct vsd_control ctl = {.d = &d, .counters = &counters};
    struct vsd_err e = {0};
    if (vsd_state_load(&d, &e) < 0) {
        vsd_log("%s", e.msg);
        goto out;
    }
    if ((rc = vsd_control_create(&ctl, &methods)) < 0) {
        vsd_log("cannot register the control methods: %s", strerror(-rc));
        goto out;
    }
    struct vsd_rpc_endpoint ep = {
        .handler = vsd_methods_serve, .ctx = methods, .counters = &counters};
    if ((rc = mkdir_parent(sock)) < 0 || (rc = vsd_rpc_server_create(sock, &ep, &rpc)) < 0) {
        vsd_log(rc == -EADDRINUSE ? "another vswitchd is serving %s" : "cannot listen on %s: %s",
                sock, strerror(-rc));
        goto out;
    }

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    /* vsd_tick()'s period: the load sample's (the rest of it runs every
     * other tick, once a second). */
    struct itimerspec its = {.it_interval = {0, VSW_LOAD_SAMPLE_MS * 1000000L},
                             .it_value = {0, VSW_LOAD_SAMPLE_MS * 1000000L}};
    if (epfd < 0 || tfd < 0 || sfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0 ||
        add_fd(epfd, hv_host_fd(d.host), &tag_host) < 0 ||
        add_fd(epfd, vsw_dp_event_fd(d.dp), &tag_dp) < 0 || add_fd(epfd, tfd, &tag_timer) < 0 ||
        add_fd(epfd, sfd, &tag_signal) < 0 || add_fd(epfd, vsd_rpc_server_fd(rpc), rpc) < 0 ||
        (vsd_telemetry_fd() >= 0 && add_fd(epfd, vsd_telemetry_fd(), &tag_tel) < 0)) {
        vsd_log("cannot set up the event loop: %s", strerror(errno));
        goto out;
    }
    vsd_log("serving on %s (state %s, %u switch worker(s), VM worker %s, VM uids from %u)", sock,
            d.state_path, vsw_dp_workers(d.dp), d.hv_vm_path, d.vm_uid_base);
    if (pidfile) {
        int perr = write_pidfile(pidfile);
        if (perr < 0) {
            vsd_log("cannot write the PID file %s: %s", pidfile, strerror(-perr));
            goto out;
        }
        wrote_pidfile = true;
    }
    if (detach) {
        if (write(ready_pipe[1], "r", 1) != 1)
            vsd_log("could not tell the parent we are ready");
        close(ready_pipe[1]);
    }

    bool running = true;
    while (running) {
        struct epoll_event evs[32];
        /* Running captures are drained often; otherwise sleep until told. */
        int n = epoll_wait(epfd, evs, 32, d.captures ? 20 : -1);
        if (n < 0 && errno != EINTR) {
            vsd_log("epoll: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &tag_host) {
                hv_host_run(d.host, 0);
            } else if (tag == &tag_dp) {
                vsw_dp_process(d.dp);
            } else if (tag == &tag_tel) {
                vsd_telemetry_refresh(methods);
            } else if (tag == &tag_timer) {
                uint64_t ticks;
                if (read(tfd, &ticks, sizeof(ticks)) > 0)
                    vsd_tick(&d);
            } else if (tag == &tag_signal) {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGHUP) {
                    vsd_log("signal %u: shutting down", si.ssi_signo);
                    running = false;
                }
            } else {
                vsd_rpc_server_on_event(rpc, epfd, tag, evs[i].events);
            }
        }
        if (d.captures)
            vsd_capture_poll(&d);
    }
    vsd_telemetry_fini();
    stop_vms(&d);
    exit_code = 0;
    close(epfd);
    close(tfd);
    close(sfd);
out:
    /* The model first: answers it still owes (vm-stop, capture) are
     * dropped while their connections exist. */
    vsd_shutdown(&d);
    vsd_rpc_server_destroy(rpc);
    vsd_methods_destroy(methods);
    hv_host_destroy(d.host);
    vsw_dp_destroy(d.dp);
    jumbo_pools_destroy(d.pools);
    rte_eal_cleanup();
    if (wrote_pidfile)
        remove_pidfile(pidfile);
    if (exit_code == 0)
        vsd_log("stopped");
    return exit_code;
}
