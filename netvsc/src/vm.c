/*
 * The guest front end's VM: its NIC set, kept in line with the root's
 * offers, and the event loop (netvsc-vm.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "hv-guest.h"
#include "hv-poll.h"
#include "vm-private.h"

/* Polling after the last work (hv-poll.h): at least this long, */
#define NETVSC_VM_SPIN_NS 75000ull
/* at most this long, when the gaps between bursts were this short. */
#define NETVSC_VM_SPIN_MAX_NS 1000000ull
#define NETVSC_VM_STALL_SLEEP_MS 1 /* sleep bound while a NIC waits for send room */

struct netvsc_vm {
    struct netvsc_vm_env env; /* what its NICs see */
    struct hv_guest *g;
    int sfd; /* the caller's signalfd, or -1 */
    struct nic *nics[NETVSC_VM_MAX_NICS];
    uint32_t failed[NETVSC_VM_MAX_NICS]; /* relids that would not open: not retried */
    int nfailed;
    uint64_t last_work; /* when a round last found something to do, or woke */
    uint64_t last_busy; /* when a round last found something to do */
    bool was_idle;      /* the last round found nothing */
    struct hv_poll_window window; /* how long to poll after last_work */
    bool stop;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void remember_failed(struct netvsc_vm *vm, uint32_t relid)
{
    if (vm->nfailed < NETVSC_VM_MAX_NICS)
        vm->failed[vm->nfailed++] = relid;
}

static bool is_failed(const struct netvsc_vm *vm, uint32_t relid)
{
    for (int i = 0; i < vm->nfailed; i++)
        if (vm->failed[i] == relid)
            return true;
    return false;
}

static struct nic *nic_by_relid(const struct netvsc_vm *vm, uint32_t relid)
{
    for (int i = 0; i < NETVSC_VM_MAX_NICS; i++)
        if (vm->nics[i] && vm->nics[i]->relid == relid)
            return vm->nics[i];
    return NULL;
}

static void nic_open(struct netvsc_vm *vm, const struct vmbus_offer_info *oi)
{
    int slot = -1;
    for (int i = 0; i < NETVSC_VM_MAX_NICS; i++) {
        if (!vm->nics[i]) {
            slot = i;
            break;
        }
    }
    struct nic *x;
    if (netvsc_vm_nic_open(&vm->env, oi, slot, &x) < 0)
        remember_failed(vm, oi->relid);
    else
        vm->nics[slot] = x;
}

static void nic_close(struct netvsc_vm *vm, struct nic *x, const char *why)
{
    vm->nics[x->slot] = NULL;
    netvsc_vm_nic_close(x, why);
}

/* Bring the NIC set in line with the root's offers: close NICs whose offer
 * went away, open NICs for new offers. */
static void sync_offers(struct netvsc_vm *vm)
{
    static struct vmbus_offer_info offers[VMBUS_CLIENT_MAX_OFFERS];
    int n = vmbus_client_offers(vm->env.c, offers, VMBUS_CLIENT_MAX_OFFERS);
    if (n > VMBUS_CLIENT_MAX_OFFERS)
        n = VMBUS_CLIENT_MAX_OFFERS;

    for (int i = 0; i < NETVSC_VM_MAX_NICS; i++) {
        struct nic *x = vm->nics[i];
        if (!x)
            continue;
        bool live = false;
        for (int j = 0; j < n && !live; j++)
            live = offers[j].relid == x->relid && netvsc_offer_is_nic(&offers[j]) &&
                   memcmp(&offers[j].instance_id, &x->instance, sizeof(x->instance)) == 0;
        if (!live)
            nic_close(vm, x, "removed (offer rescinded)");
    }
    /* A failed relid may be offered again later as a different device. */
    for (int i = 0; i < vm->nfailed;) {
        bool offered = false;
        for (int j = 0; j < n && !offered; j++)
            offered = offers[j].relid == vm->failed[i] && !offers[j].rescinded;
        if (!offered)
            vm->failed[i] = vm->failed[--vm->nfailed];
        else
            i++;
    }
    for (int j = 0; j < n; j++) {
        if (!netvsc_offer_is_nic(&offers[j]) || nic_by_relid(vm, offers[j].relid) ||
            is_failed(vm, offers[j].relid))
            continue;
        if (vm->env.verbose)
            printf("hv-vm %s: NIC offer relid %u\n", vm->env.name, offers[j].relid);
        nic_open(vm, &offers[j]);
    }
}

static bool any_nic_stalled(const struct netvsc_vm *vm)
{
    for (int i = 0; i < NETVSC_VM_MAX_NICS; i++)
        if (vm->nics[i] && netvsc_vm_nic_stalled(vm->nics[i]))
            return true;
    return false;
}

/* Arm every NIC's interrupt. true if one has work already (do not sleep;
 * everything is disarmed again). */
static bool arm_all(struct netvsc_vm *vm)
{
    bool work = false;
    for (int i = 0; i < NETVSC_VM_MAX_NICS; i++)
        if (vm->nics[i] && netvsc_intr_arm(vm->nics[i]->n))
            work = true;
    return work;
}

static void disarm_all(struct netvsc_vm *vm)
{
    for (int i = 0; i < NETVSC_VM_MAX_NICS; i++)
        if (vm->nics[i])
            netvsc_intr_disarm(vm->nics[i]->n);
}

/* A VP's SINT fired: VMBus messages (offers, rescinds) and channel events. */
static int on_sint(struct netvsc_vm *vm, uint32_t vp)
{
    uint64_t v;
    if (read(hv_guest_vp_sint_fd(vm->g, vp), &v, sizeof(v)) < 0 && errno != EAGAIN &&
        errno != EINTR) {
        fprintf(stderr, "hv-vm %s: SINT eventfd of VP %u: %s\n", vm->env.name, vp,
                strerror(errno));
        return -errno;
    }
    int rc = vmbus_client_poll(vm->env.c);
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: VMBus: %s (is the root gone?)\n", vm->env.name, strerror(-rc));
        return rc;
    }
    /* Clear each channel's event flag, or the root may not signal it again;
     * every NIC is polled each round anyway. */
    for (int i = 0; i < NETVSC_VM_MAX_NICS; i++)
        if (vm->nics[i])
            netvsc_event(vm->nics[i]->n);
    if (vmbus_client_offers_changed(vm->env.c))
        sync_offers(vm);
    return 0;
}

static int on_signal(struct netvsc_vm *vm)
{
    struct signalfd_siginfo si;
    ssize_t r = read(vm->sfd, &si, sizeof(si));
    if (r == (ssize_t)sizeof(si)) {
        if (vm->env.verbose)
            printf("hv-vm %s: %s, stopping\n", vm->env.name, strsignal((int)si.ssi_signo));
        vm->stop = true;
    }
    return 0;
}

/* One round of the loop: sleep (if nothing was done for a while) until
 * an event, sleeping at most max_sleep_ms (-1: unbounded), take the
 * events, then service every NIC once. */
static int vm_round(struct netvsc_vm *vm, int max_sleep_ms)
{
    struct epoll_event evs[32];
    int timeout = 0;
    bool armed = false;
    if (now_ns() - vm->last_work > vm->window.cur) {
        armed = true;
        if (arm_all(vm))
            vm->last_work = now_ns();
        else
            timeout = any_nic_stalled(vm) ? NETVSC_VM_STALL_SLEEP_MS : -1;
    }
    /* A bounded sleep that runs out: try stalled NICs even if netvsc still
     * says blocked, so a lost wake-up costs a millisecond, not a hang. */
    bool bounded = timeout > 0;
    if (max_sleep_ms >= 0 && (timeout < 0 || timeout > max_sleep_ms))
        timeout = max_sleep_ms;
    int ne = epoll_wait(vm->env.ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout);
    if (armed)
        disarm_all(vm);
    if (ne < 0) {
        if (errno == EINTR)
            return 0;
        fprintf(stderr, "hv-vm %s: epoll_wait: %s\n", vm->env.name, strerror(errno));
        return -errno;
    }
    if (armed && ne > 0)
        vm->last_work = now_ns();
    bool force = armed && ne == 0 && bounded;
    for (int i = 0; i < ne; i++) {
        uint64_t tag = evs[i].data.u64;
        int rc = 0;
        if (tag - NETVSC_VM_TAG_VP0 < vm->env.nvp) {
            rc = on_sint(vm, (uint32_t)(tag - NETVSC_VM_TAG_VP0));
        } else if (tag == NETVSC_VM_TAG_SIGNAL) {
            rc = on_signal(vm);
        } else if (tag - NETVSC_VM_TAG_TAPEV0 < NETVSC_VM_MAX_NICS) {
            struct nic *x = vm->nics[tag - NETVSC_VM_TAG_TAPEV0];
            if (x)
                x->tap_event = true;
        } else if (tag - NETVSC_VM_TAG_NIC0 < NETVSC_VM_MAX_NICS) {
            struct nic *x = vm->nics[tag - NETVSC_VM_TAG_NIC0];
            if (x && (evs[i].events & (EPOLLERR | EPOLLHUP)))
                x->tap_lost = true;
            else if (x)
                x->tap_ready = true;
        }
        if (rc < 0)
            return rc;
    }
    if (vm->stop)
        return 0;
    int work = 0;
    for (int i = 0; i < NETVSC_VM_MAX_NICS; i++) {
        struct nic *x = vm->nics[i];
        if (!x)
            continue;
        struct netvsc_vm_nic_end end;
        int w = netvsc_vm_nic_service(x, force, &end);
        if (w < 0) {
            if (end.failed)
                remember_failed(vm, x->relid);
            nic_close(vm, x, end.why);
        }
        if (w != 0)
            work += w > 0 ? w : 1;
    }
    if (work) {
        uint64_t t = now_ns();
        if (vm->was_idle)
            hv_poll_window_work(&vm->window, t - vm->last_busy);
        vm->last_work = vm->last_busy = t;
        vm->was_idle = false;
    } else {
        vm->was_idle = true;
        /* The VM's processes (the ones it answers), the other VMs and the
         * kernel share this CPU: polling only takes the time none of them
         * wants. Without this, each hop of a ping waited out the previous
         * process's polling, 75 us a hop (measured with perf sched). */
        if (!armed)
            sched_yield();
    }
    return 0;
}

int netvsc_vm_run(struct netvsc_vm *vm)
{
    vm->last_work = vm->last_busy = now_ns();
    while (!vm->stop) {
        int rc = vm_round(vm, -1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int netvsc_vm_poll(struct netvsc_vm *vm, int timeout_ms)
{
    return vm_round(vm, timeout_ms);
}

/* Every VP's SINT eventfd (known once VMBus connected: the SynICs are
 * enabled then). */
static int watch_vps(struct netvsc_vm *vm)
{
    for (uint32_t vp = 0; vp < vm->env.nvp; vp++) {
        int fd = hv_guest_vp_sint_fd(vm->g, vp);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = NETVSC_VM_TAG_VP0 + vp};
        if (fd < 0)
            return -ENODEV;
        if (epoll_ctl(vm->env.ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            return -errno;
    }
    return 0;
}

static int watch_signals(struct netvsc_vm *vm)
{
    vm->env.ep = epoll_create1(EPOLL_CLOEXEC);
    if (vm->env.ep < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = NETVSC_VM_TAG_SIGNAL};
    if (vm->sfd >= 0 && epoll_ctl(vm->env.ep, EPOLL_CTL_ADD, vm->sfd, &ev) < 0)
        return -errno;
    return 0;
}

int netvsc_vm_create(const struct netvsc_vm_params *p, struct netvsc_vm **out)
{
    if (!p || !p->name || !p->guest || !out)
        return -EINVAL;
    struct netvsc_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return -ENOMEM;
    vm->env.name = p->name;
    vm->env.netns = p->netns ? p->netns : p->name;
    vm->env.tap_broker = p->tap_broker;
    vm->env.verbose = p->verbose;
    vm->env.no_offload = p->no_offload;
    vm->env.ep = -1;
    vm->g = p->guest;
    vm->sfd = p->signal_fd;
    vm->env.nvp = hv_guest_vp_count(vm->g);
    int rc = watch_signals(vm);
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: event setup: %s\n", vm->env.name, strerror(-rc));
        goto fail;
    }
    rc = vmbus_client_connect(vm->g, p->connect_ms ? p->connect_ms : NETVSC_VM_CONNECT_MS,
                              &vm->env.c);
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: VMBus connect failed: %s\n", vm->env.name, strerror(-rc));
        goto fail;
    }
    if ((rc = watch_vps(vm)) < 0) {
        fprintf(stderr, "hv-vm %s: SINT of its VPs: %s\n", vm->env.name, strerror(-rc));
        goto fail;
    }
    if (vm->env.verbose)
        printf("hv-vm %s: VMBus version %#x, %u VP%s\n", vm->env.name,
               vmbus_client_version(vm->env.c), vm->env.nvp, vm->env.nvp == 1 ? "" : "s");
    vmbus_client_offers_changed(vm->env.c); /* the initial set is handled here */
    sync_offers(vm);
    if (netvsc_vm_nics(vm, NULL, 0) == 0)
        printf("hv-vm %s: no NIC yet; waiting for the root to offer one\n", vm->env.name);
    hv_poll_window_init(&vm->window, NETVSC_VM_SPIN_NS, NETVSC_VM_SPIN_MAX_NS);
    vm->last_work = vm->last_busy = now_ns();
    *out = vm;
    return 0;
fail:
    netvsc_vm_destroy(vm);
    return rc;
}

void netvsc_vm_destroy(struct netvsc_vm *vm)
{
    if (!vm)
        return;
    for (int i = 0; i < NETVSC_VM_MAX_NICS; i++)
        if (vm->nics[i])
            nic_close(vm, vm->nics[i], "closed");
    vmbus_client_destroy(vm->env.c);
    if (vm->env.ep >= 0)
        close(vm->env.ep);
    free(vm);
}

unsigned netvsc_vm_nics(const struct netvsc_vm *vm, struct netvsc_vm_nic_state *out,
                        unsigned max)
{
    unsigned n = 0;
    for (int i = 0; i < NETVSC_VM_MAX_NICS; i++) {
        const struct nic *x = vm->nics[i];
        if (!x)
            continue;
        if (n < max) {
            struct netvsc_vm_nic_state *s = &out[n];
            memset(s, 0, sizeof(*s));
            snprintf(s->name, sizeof(s->name), "%s", x->name);
            s->relid = x->relid;
            s->vp = x->vp;
            s->tap_ifindex = x->tap ? nettap_ifindex(x->tap) : 0;
            s->info = x->info;
            s->counters = x->ct;
        }
        n++;
    }
    return n;
}
