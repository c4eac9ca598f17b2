/*
 * hv-vm's front end: the VM, its NIC set and its event loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "vm-private.h"

#define HV_VM_SPIN_NS 75000ull /* keep polling this long after the last work */
#define HV_VM_STALL_SLEEP_MS 1 /* sleep bound while a NIC waits for send room */

static const struct vmbus_guid netvsc_class = VMBUS_GUID_NETVSC;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool offer_is_nic(const struct vmbus_offer_info *oi)
{
    /* Subchannels (vRSS) belong to their primary NIC, not new NICs. */
    return !oi->rescinded && oi->sub_channel_index == 0 &&
           memcmp(&oi->class_id, &netvsc_class, sizeof(netvsc_class)) == 0;
}

void remember_failed(struct vm *vm, uint32_t relid)
{
    if (vm->nfailed < HV_VM_MAX_NICS)
        vm->failed[vm->nfailed++] = relid;
}

static bool is_failed(const struct vm *vm, uint32_t relid)
{
    for (int i = 0; i < vm->nfailed; i++)
        if (vm->failed[i] == relid)
            return true;
    return false;
}

static struct nic *nic_by_relid(const struct vm *vm, uint32_t relid)
{
    for (int i = 0; i < HV_VM_MAX_NICS; i++)
        if (vm->nics[i] && vm->nics[i]->relid == relid)
            return vm->nics[i];
    return NULL;
}

/* Bring the NIC set in line with the root's offers: close NICs whose offer
 * went away, open NICs for new offers. */
void sync_offers(struct vm *vm)
{
    static struct vmbus_offer_info offers[VMBUS_CLIENT_MAX_OFFERS];
    int n = vmbus_client_offers(vm->c, offers, VMBUS_CLIENT_MAX_OFFERS);
    if (n > VMBUS_CLIENT_MAX_OFFERS)
        n = VMBUS_CLIENT_MAX_OFFERS;

    for (int i = 0; i < HV_VM_MAX_NICS; i++) {
        struct nic *x = vm->nics[i];
        if (!x)
            continue;
        bool live = false;
        for (int j = 0; j < n && !live; j++)
            live = offers[j].relid == x->relid && offer_is_nic(&offers[j]) &&
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
        if (!offer_is_nic(&offers[j]) || nic_by_relid(vm, offers[j].relid) ||
            is_failed(vm, offers[j].relid))
            continue;
        if (vm->verbose)
            printf("hv-vm %s: NIC offer relid %u\n", vm->name, offers[j].relid);
        if (nic_open(vm, &offers[j]) < 0)
            remember_failed(vm, offers[j].relid);
    }
}

static bool any_nic_stalled(const struct vm *vm)
{
    for (int i = 0; i < HV_VM_MAX_NICS; i++) {
        const struct nic *x = vm->nics[i];
        if (x && (x->pend != PEND_NONE || (x->tap_ready && !x->tap_in) || netvsc_tx_blocked(x->n)))
            return true;
    }
    return false;
}

/* Arm every NIC's interrupt. true if one has work already (do not sleep;
 * everything is disarmed again). */
static bool arm_all(struct vm *vm)
{
    bool work = false;
    for (int i = 0; i < HV_VM_MAX_NICS; i++)
        if (vm->nics[i] && netvsc_intr_arm(vm->nics[i]->n))
            work = true;
    return work;
}

static void disarm_all(struct vm *vm)
{
    for (int i = 0; i < HV_VM_MAX_NICS; i++)
        if (vm->nics[i])
            netvsc_intr_disarm(vm->nics[i]->n);
}

/* A VP's SINT fired: VMBus messages (offers, rescinds) and channel events. */
static int on_sint(struct vm *vm, uint32_t vp)
{
    uint64_t v;
    if (read(hv_guest_vp_sint_fd(vm->g, vp), &v, sizeof(v)) < 0 && errno != EAGAIN &&
        errno != EINTR) {
        fprintf(stderr, "hv-vm %s: SINT eventfd of VP %u: %s\n", vm->name, vp, strerror(errno));
        return -errno;
    }
    int rc = vmbus_client_poll(vm->c);
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: VMBus: %s (is the root gone?)\n", vm->name, strerror(-rc));
        return rc;
    }
    /* Clear each channel's event flag, or the root may not signal it again;
     * every NIC is polled each round anyway. */
    for (int i = 0; i < HV_VM_MAX_NICS; i++)
        if (vm->nics[i])
            netvsc_event(vm->nics[i]->n);
    if (vmbus_client_offers_changed(vm->c))
        sync_offers(vm);
    return 0;
}

static int on_signal(struct vm *vm)
{
    struct signalfd_siginfo si;
    ssize_t r = read(vm->sfd, &si, sizeof(si));
    if (r == (ssize_t)sizeof(si)) {
        if (vm->verbose)
            printf("hv-vm %s: %s, stopping\n", vm->name, strsignal((int)si.ssi_signo));
        vm->stop = true;
    }
    return 0;
}

int run(struct vm *vm)
{
    uint64_t last_work = now_ns();
    struct epoll_event evs[32];
    while (!vm->stop) {
        int timeout = 0;
        bool armed = false;
        if (now_ns() - last_work > HV_VM_SPIN_NS) {
            armed = true;
            if (arm_all(vm))
                last_work = now_ns();
            else
                timeout = any_nic_stalled(vm) ? HV_VM_STALL_SLEEP_MS : -1;
        }
        int ne = epoll_wait(vm->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout);
        if (armed)
            disarm_all(vm);
        if (ne < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "hv-vm %s: epoll_wait: %s\n", vm->name, strerror(errno));
            return -errno;
        }
        if (armed && ne > 0)
            last_work = now_ns();
        /* A bounded sleep ran out: try stalled NICs even if netvsc still
         * says blocked, so a lost wake-up costs a millisecond, not a hang. */
        bool force = armed && ne == 0 && timeout > 0;
        for (int i = 0; i < ne; i++) {
            uint64_t tag = evs[i].data.u64;
            int rc = 0;
            if (tag - TAG_VP0 < vm->nvp) {
                rc = on_sint(vm, (uint32_t)(tag - TAG_VP0));
            } else if (tag == TAG_SIGNAL) {
                rc = on_signal(vm);
            } else if (tag - TAG_TAPEV0 < HV_VM_MAX_NICS) {
                struct nic *x = vm->nics[tag - TAG_TAPEV0];
                if (x)
                    x->tap_event = true;
            } else if (tag - TAG_NIC0 < HV_VM_MAX_NICS) {
                struct nic *x = vm->nics[tag - TAG_NIC0];
                if (x && (evs[i].events & (EPOLLERR | EPOLLHUP)))
                    x->tap_lost = true;
                else if (x)
                    x->tap_ready = true;
            }
            if (rc < 0)
                return rc;
        }
        if (vm->stop)
            break;
        int work = 0;
        for (int i = 0; i < HV_VM_MAX_NICS; i++) {
            if (vm->nics[i]) {
                int w = nic_service(vm, vm->nics[i], force);
                if (w != 0)
                    work += w > 0 ? w : 1;
            }
        }
        if (work)
            last_work = now_ns();
    }
    return 0;
}

int setup_events(struct vm *vm)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -errno;
    vm->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (vm->sfd < 0)
        return -errno;
    vm->ep = epoll_create1(EPOLL_CLOEXEC);
    if (vm->ep < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_SIGNAL};
    if (epoll_ctl(vm->ep, EPOLL_CTL_ADD, vm->sfd, &ev) < 0)
        return -errno;
    return 0;
}

/* Every VP's SINT eventfd (known once VMBus connected: the SynICs are
 * enabled then). */
int watch_vps(struct vm *vm)
{
    for (uint32_t vp = 0; vp < vm->nvp; vp++) {
        int fd = hv_guest_vp_sint_fd(vm->g, vp);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_VP0 + vp};
        if (fd < 0)
            return -ENODEV;
        if (epoll_ctl(vm->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            return -errno;
    }
    return 0;
}
