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
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>

#include "hv-guest.h"
#include "netvsc-sandbox.h"
#include "netvsc-tap.h"
#include "netvsc.h"
#include "vmbus-client.h"
#include "vmnic.h"

#define HV_VM_BURST 32 /* frames per NIC per direction per round */
#define HV_VM_MAX_NICS 64
#define HV_VM_SPIN_NS 75000ull /* keep polling this long after the last work */
#define HV_VM_STALL_SLEEP_MS 1 /* sleep bound while a NIC waits for send room */
#define HV_VM_CONNECT_MS 10000
#define VLAN_HLEN 4u
#define VNET_HDR_LEN sizeof(struct virtio_net_hdr)
/* A GSO frame from the kernel: at most 64 KiB of IP packet (IPv6 header
 * not counted in its payload length) plus the L2 header and a tag. */
#define HV_VM_GSO_FRAME_MAX (65536u + 40u + ETH_HLEN + VLAN_HLEN)
/* What a TAP read first goes into: room for a standard frame, i.e. a
 * send-buffer section, not pages for a jumbo frame that most reads are not. */
#define HV_VM_FIRST_BUF (ETH_FRAME_LEN + VLAN_HLEN)

/* epoll tags: the signalfd, then NIC slot + 2, then each VP's SINT eventfd. */
#define TAG_SIGNAL 1u
#define TAG_NIC0 2u
#define TAG_TAPEV0 (TAG_NIC0 + HV_VM_MAX_NICS) /* link notifications of NIC i's TAP */
#define TAG_VP0 (TAG_TAPEV0 + HV_VM_MAX_NICS)  /* SINT eventfd of VP v */

/* Frames dropped or worked around in hv-vm itself, by reason (netvsc
 * counts its own). */
struct nic_counters {
    uint64_t to_root_frames, to_root_bytes; /* TAP -> NIC, submitted */
    uint64_t to_tap_frames, to_tap_bytes;   /* NIC -> TAP, written */
    uint64_t to_tap_csum_ok;                /* of which the root vouched for the checksums */
    uint64_t to_tap_partial;                /* ... handed to the TAP as partial checksums */
    uint64_t to_root_csum, to_root_lso;     /* offloads asked of the root */
    uint64_t drop_tap_full;                 /* TAP would block: frame from the root dropped */
    uint64_t drop_tap_write;                /* other TAP write errors */
    uint64_t drop_oversize;                 /* frame from the TAP larger than the NIC can send */
    uint64_t drop_runt;                     /* read shorter than a virtio_net_hdr + header */
    uint64_t drop_bad_offload;              /* offload request we cannot express or check */
    uint64_t drop_gso_type;                 /* GSO type the root does not take (UDP, or no LSO) */
    uint64_t drop_rejected;                 /* netvsc_tx_submit said -EINVAL */
    uint64_t sw_csum;                       /* checksums finished here instead of by the root */
    uint64_t tx_stalls;                     /* no send room: stopped reading the TAP */
    uint64_t ring_full;                     /* netvsc_tx_submit said -EAGAIN */
    uint64_t link_changes;
    uint64_t reopens;
    uint64_t restarts; /* re-initialisations for an MTU change (root's or the VM's) */
};

enum pending_kind { PEND_NONE, PEND_SUBMIT, PEND_BOUNCE };

struct nic {
    struct netvsc *n;
    struct netvsc_tap *tap;
    int tap_fd;
    int slot;
    uint32_t relid;
    uint32_t vp; /* the VP its channel interrupts, kept across reopens */
    struct vmbus_guid instance;
    struct netvsc_info info; /* as last applied to the TAP */
    uint64_t link_changes_seen; /* netvsc_stats.link_changes at the last sync */
    uint32_t frame_max;      /* largest non-GSO frame: MTU + Ethernet header + tag */
    uint32_t tx_frame_cap;   /* largest frame taken from the TAP (GSO frames with LSO) */
    bool tap_ready;          /* the TAP may have frames (no EAGAIN since epoll said so) */
    bool tap_in;             /* EPOLLIN registered */
    bool reopened;           /* already reopened once after -EPROTO */
    bool tso;                /* the TAP hands us GSO frames */
    bool tap_lost;           /* EPOLLERR/EPOLLHUP: the device was deleted under us */
    bool tap_event;          /* link notifications wait on the TAP's netlink socket */
    uint32_t want_mtu;       /* the MTU the VM set on its interface; 0 = what the root allows */
    /* One frame read from the TAP that the NIC could not take yet. */
    enum pending_kind pend;
    struct netvsc_txbuf pend_tb;
    uint32_t pend_len;
    struct netvsc_meta pend_meta;
    uint8_t *bounce; /* frames too big for the first buffer (HV_VM_GSO_FRAME_MAX) */
    struct nic_counters ct;
    char name[NETVSC_TAP_NAME_MAX + 1];
};

struct vm {
    const char *name;
    const char *netns;
    int tap_broker; /* the root's TAP broker (--tap-broker-fd) */
    bool verbose;
    struct hv_guest *g;
    struct vmbus_client *c;
    int ep;
    int sfd;
    uint32_t nvp;
    uint32_t next_vp; /* where the next NIC opened goes (round-robin) */
    struct nic *nics[HV_VM_MAX_NICS];
    uint32_t failed[HV_VM_MAX_NICS]; /* relids that would not open: not retried */
    int nfailed;
    bool stop;
};

static const struct vmbus_guid netvsc_class = VMBUS_GUID_NETVSC;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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

static const char *nvsp_name(uint32_t v, char *buf, size_t len)
{
    const char *name = vmnic_nvsp_version_name(v);
    if (name)
        return name;
    snprintf(buf, len, "%#x", v);
    return buf;
}

/* The NIC's name inside the VM: the offer's user-defined bytes if they hold
 * a usable interface name, eth<relid> otherwise. */
static bool offer_nic_name(const struct vmbus_offer_info *oi, char *buf, size_t len)
{
    const char *ud = (const char *)oi->user_defined;
    size_t n = strnlen(ud, sizeof(oi->user_defined));
    if (n < sizeof(oi->user_defined) && netvsc_tap_name_valid(ud)) {
        snprintf(buf, len, "%s", ud);
        return true;
    }
    snprintf(buf, len, "eth%u", oi->relid);
    return false;
}

static bool offer_is_nic(const struct vmbus_offer_info *oi)
{
    /* Subchannels (vRSS) belong to their primary NIC, not new NICs. */
    return !oi->rescinded && oi->sub_channel_index == 0 &&
           memcmp(&oi->class_id, &netvsc_class, sizeof(netvsc_class)) == 0;
}

static int nic_set_tap_interest(struct vm *vm, struct nic *x, bool in)
{
    if (x->tap_in == in)
        return 0;
    struct epoll_event ev = {.events = in ? EPOLLIN : 0, .data.u64 = TAG_NIC0 + (uint64_t)x->slot};
    if (epoll_ctl(vm->ep, EPOLL_CTL_MOD, x->tap_fd, &ev) < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s: epoll: %s\n", vm->name, x->name, strerror(errno));
        return -errno;
    }
    x->tap_in = in;
    return 0;
}

/* What the TAP may hand us follows from what the root takes: partial
 * checksums only if the root finishes them, GSO frames only with LSO, and
 * no GSO frame larger than the root's LSO limit. */
static void tap_params_from_info(const struct netvsc_info *info, const char *name,
                                 struct netvsc_tap_params *tp)
{
    memset(tp, 0, sizeof(*tp));
    tp->name = name;
    memcpy(tp->mac, info->mac, sizeof(tp->mac));
    tp->mtu = info->mtu;
    tp->csum = info->csum_offload;
    tp->tso = info->csum_offload && info->lso;
    if (tp->tso && info->lso_max && info->lso_max < HV_VM_GSO_FRAME_MAX) {
        uint32_t l3 =
            info->lso_max > ETH_HLEN + VLAN_HLEN ? info->lso_max - ETH_HLEN - VLAN_HLEN : 0;
        if (l3 < info->mtu + ETH_HLEN)
            tp->tso = false; /* an LSO limit below one frame is no LSO */
        else
            tp->gso_max_size = l3;
    }
    tp->up = true;
    tp->carrier = info->link_up;
    tp->netns_fd = -1;
}

static void nic_set_limits(struct nic *x, bool tso)
{
    x->tso = tso;
    x->frame_max = x->info.mtu + ETH_HLEN + VLAN_HLEN;
    x->tx_frame_cap = tso ? HV_VM_GSO_FRAME_MAX : x->frame_max;
}

static void nic_free(struct nic *x)
{
    free(x->bounce);
    free(x);
}

/* Watch the TAP for frames and for link changes made inside the VM. */
static int nic_watch_tap(struct vm *vm, struct nic *x)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_NIC0 + (uint64_t)x->slot};
    if (epoll_ctl(vm->ep, EPOLL_CTL_ADD, x->tap_fd, &ev) < 0)
        return -errno;
    struct epoll_event lev = {.events = EPOLLIN, .data.u64 = TAG_TAPEV0 + (uint64_t)x->slot};
    int efd = netvsc_tap_events_fd(x->tap);
    if (efd >= 0 && epoll_ctl(vm->ep, EPOLL_CTL_ADD, efd, &lev) < 0) {
        int rc = -errno;
        epoll_ctl(vm->ep, EPOLL_CTL_DEL, x->tap_fd, NULL);
        return rc;
    }
    x->tap_in = true;
    x->tap_ready = true;
    return 0;
}

static void nic_unwatch_tap(struct vm *vm, struct nic *x)
{
    if (x->tap_fd >= 0)
        epoll_ctl(vm->ep, EPOLL_CTL_DEL, x->tap_fd, NULL);
    int efd = x->tap ? netvsc_tap_events_fd(x->tap) : -1;
    if (efd >= 0)
        epoll_ctl(vm->ep, EPOLL_CTL_DEL, efd, NULL);
}

static int nic_open(struct vm *vm, const struct vmbus_offer_info *oi)
{
    int slot = -1;
    for (int i = 0; i < HV_VM_MAX_NICS; i++) {
        if (!vm->nics[i]) {
            slot = i;
            break;
        }
    }
    char name[NETVSC_TAP_NAME_MAX + 1];
    bool named = offer_nic_name(oi, name, sizeof(name));
    if (slot < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s (relid %u): more than %d NICs, not opened\n", vm->name,
                name, oi->relid, HV_VM_MAX_NICS);
        return -ENOSPC;
    }
    struct nic *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->slot = slot;
    x->relid = oi->relid;
    x->instance = oi->instance_id;
    x->tap_fd = -1;

    x->vp = vm->next_vp;
    vm->next_vp = (vm->next_vp + 1) % vm->nvp;
    /* the root's MTU wins */
    struct netvsc_params np = {.mtu = NETVSC_MTU_MAX, .target_vp = x->vp};
    int rc = netvsc_open(vm->c, oi->relid, &np, &x->n);
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s (relid %u): open failed: %s\n", vm->name, name, oi->relid,
                strerror(-rc));
        goto err;
    }
    netvsc_get_info(x->n, &x->info);
    struct netvsc_tap_params tp;
    tap_params_from_info(&x->info, name, &tp);
    rc = netvsc_tap_create_brokered(vm->tap_broker, &tp, &x->tap);
    if (rc == -EEXIST && named) {
        /* The root named two NICs alike, or the VM has such an interface. */
        char alt[NETVSC_TAP_NAME_MAX + 1];
        snprintf(alt, sizeof(alt), "eth%u", oi->relid);
        fprintf(stderr, "hv-vm %s: NIC %s (relid %u): %s; using %s\n", vm->name, name, oi->relid,
                netvsc_tap_last_error(), alt);
        snprintf(name, sizeof(name), "%s", alt);
        tap_params_from_info(&x->info, name, &tp);
        rc = netvsc_tap_create_brokered(vm->tap_broker, &tp, &x->tap);
    }
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s (relid %u): %s\n", vm->name, name, oi->relid,
                netvsc_tap_last_error());
        goto err;
    }
    snprintf(x->name, sizeof(x->name), "%s", name);
    x->tap_fd = netvsc_tap_fd(x->tap);
    nic_set_limits(x, tp.tso);
    if (!(x->bounce = malloc(HV_VM_GSO_FRAME_MAX))) {
        rc = -ENOMEM;
        fprintf(stderr, "hv-vm %s: NIC %s: out of memory\n", vm->name, name);
        goto err;
    }
    if ((rc = nic_watch_tap(vm, x)) < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s: epoll: %s\n", vm->name, name, strerror(-rc));
        goto err;
    }
    vm->nics[slot] = x;

    char nv[16];
    const uint8_t *m = x->info.mac;
    printf("hv-vm %s: NIC %s up, MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %u, NVSP %s, offloads %s, "
           "VP %u\n",
           vm->name, x->name, m[0], m[1], m[2], m[3], m[4], m[5], x->info.mtu,
           nvsp_name(x->info.nvsp_version, nv, sizeof(nv)),
           tp.tso ? "csum/lso" : (tp.csum ? "csum" : "none"), x->info.target_vp);
    if (vm->verbose)
        printf("hv-vm %s: NIC %s: relid %u, NDIS %u.%u, link %s, %u Mbit/s, LSO max %u, "
               "TAP ifindex %d in %s\n",
               vm->name, x->name, x->relid, x->info.ndis_version >> 16,
               x->info.ndis_version & 0xffff, x->info.link_up ? "up" : "down",
               x->info.link_speed_mbps, x->info.lso_max, netvsc_tap_ifindex(x->tap), vm->netns);
    fflush(stdout);
    return 0;
err:
    netvsc_tap_destroy(x->tap);
    netvsc_close(x->n);
    nic_free(x);
    return rc;
}

static void nic_print_counters(const struct vm *vm, const struct nic *x)
{
    struct netvsc_stats s;
    memset(&s, 0, sizeof(s));
    if (x->n)
        netvsc_get_stats(x->n, &s);
    const struct nic_counters *c = &x->ct;
    printf("hv-vm %s: NIC %s: to root %" PRIu64 " frames %" PRIu64 " bytes (csum %" PRIu64
           ", lso %" PRIu64 "), from root %" PRIu64 " frames %" PRIu64 " bytes (csum ok %" PRIu64
           ", partial %" PRIu64 "); drops: tap-full %" PRIu64 ", tap-write %" PRIu64
           ", oversize %" PRIu64 ", runt %" PRIu64 ", bad-offload %" PRIu64 ", gso-type %" PRIu64
           ", rejected %" PRIu64 "; sw-csum %" PRIu64 ", tx-stalls %" PRIu64 ", ring-full %" PRIu64
           ", link-changes %" PRIu64 ", reopens %" PRIu64 ", restarts %" PRIu64 "; netvsc: tx %" PRIu64
           " (gpa-direct %" PRIu64 "), rx %" PRIu64 ", no-buffer %" PRIu64 ", rx-bad %" PRIu64 "\n",
           vm->name, x->name, c->to_root_frames, c->to_root_bytes, c->to_root_csum, c->to_root_lso,
           c->to_tap_frames, c->to_tap_bytes, c->to_tap_csum_ok, c->to_tap_partial,
           c->drop_tap_full, c->drop_tap_write, c->drop_oversize, c->drop_runt, c->drop_bad_offload,
           c->drop_gso_type, c->drop_rejected, c->sw_csum, c->tx_stalls, c->ring_full,
           c->link_changes, c->reopens, c->restarts, s.tx_frames, s.tx_gpa_direct, s.rx_frames, s.tx_no_buffer,
           s.rx_bad);
}

static void nic_drop_pending(struct nic *x)
{
    if (x->pend == PEND_SUBMIT && x->n)
        netvsc_tx_abort(x->n, &x->pend_tb);
    x->pend = PEND_NONE;
}

/* Delete the NIC's TAP, then close the NIC. The TAP goes first so the
 * interface leaves the VM at once, however long the channel takes to
 * close. */
static void nic_close(struct vm *vm, struct nic *x, const char *why)
{
    printf("hv-vm %s: NIC %s %s\n", vm->name, x->name, why);
    nic_print_counters(vm, x);
    fflush(stdout);
    nic_drop_pending(x);
    nic_unwatch_tap(vm, x);
    netvsc_tap_destroy(x->tap);
    netvsc_close(x->n);
    vm->nics[x->slot] = NULL;
    nic_free(x);
}

static void remember_failed(struct vm *vm, uint32_t relid)
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
static void sync_offers(struct vm *vm)
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

/* Start the NIC over (RNDIS halt, buffers revoked, channel closed and
 * opened again, NVSP and RNDIS negotiated anew) asking for mtu, keeping its
 * TAP and with it the VM's addresses and routes: what a guest does after an
 * MTU change, and after a protocol error. */
static int nic_restart(struct vm *vm, struct nic *x, uint32_t mtu)
{
    nic_drop_pending(x);
    netvsc_close(x->n);
    x->n = NULL;
    netvsc_tap_set_carrier(x->tap, false);

    struct netvsc_params np = {.mtu = mtu, .target_vp = x->vp};
    int rc = netvsc_open(vm->c, x->relid, &np, &x->n);
    if (rc < 0) {
        x->n = NULL;
        fprintf(stderr, "hv-vm %s: NIC %s: reopen failed: %s\n", vm->name, x->name, strerror(-rc));
        return rc;
    }
    struct netvsc_info info;
    netvsc_get_info(x->n, &info);
    struct netvsc_tap_params tp;
    tap_params_from_info(&info, x->name, &tp);
    /* Always: the VM may have set its interface above what it got. */
    if ((rc = netvsc_tap_set_mtu(x->tap, info.mtu)) < 0 ||
        (memcmp(info.mac, x->info.mac, 6) != 0 &&
         (rc = netvsc_tap_set_mac(x->tap, info.mac)) < 0) ||
        (rc = netvsc_tap_set_offload(x->tap, tp.csum, tp.tso)) < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s: %s\n", vm->name, x->name, netvsc_tap_last_error());
        return rc;
    }
    x->info = info;
    struct netvsc_stats st;
    netvsc_get_stats(x->n, &st);
    x->link_changes_seen = st.link_changes; /* a new netvsc counts from zero */
    nic_set_limits(x, tp.tso);
    netvsc_tap_set_carrier(x->tap, info.link_up);
    x->tap_ready = true;
    nic_set_tap_interest(vm, x, true);
    printf("hv-vm %s: NIC %s started over, MTU %u, link %s\n", vm->name, x->name, info.mtu,
           info.link_up ? "up" : "down");
    fflush(stdout);
    return 0;
}

/* The MTU the VM wants: its own choice, or the most the root allows. */
static uint32_t nic_mtu_wanted(const struct nic *x)
{
    return x->want_mtu ? x->want_mtu : NETVSC_MTU_MAX;
}

/* -EPROTO: the root broke the protocol on this channel. Start over once. */
static int nic_reopen(struct vm *vm, struct nic *x)
{
    fprintf(stderr, "hv-vm %s: NIC %s: protocol error from the root; reopening\n", vm->name,
            x->name);
    x->reopened = true;
    x->ct.reopens++;
    return nic_restart(vm, x, nic_mtu_wanted(x));
}

/* Link notifications from the TAP: someone inside the VM changed its MTU
 * (ip link set eth0 mtu N). As a guest driver does, start the NIC over
 * with it; the root may allow less, and then the TAP gets that. Changes
 * hv-vm made itself come back here too and are ignored. */
static int nic_tap_events(struct vm *vm, struct nic *x)
{
    x->tap_event = false;
    struct netvsc_tap_event ev;
    int rc = netvsc_tap_events_read(x->tap, &ev);
    if (rc <= 0) {
        if (rc < 0)
            fprintf(stderr, "hv-vm %s: NIC %s: %s\n", vm->name, x->name, netvsc_tap_last_error());
        return 0;
    }
    if (ev.gone) {
        x->tap_lost = true;
        return 0;
    }
    if (ev.mtu == x->info.mtu || ev.mtu < NETVSC_MTU_MIN)
        return 0;
    printf("hv-vm %s: NIC %s: the VM set MTU %u (was %u); starting the NIC over\n", vm->name,
           x->name, ev.mtu, x->info.mtu);
    fflush(stdout);
    x->want_mtu = ev.mtu > NETVSC_MTU_MAX ? NETVSC_MTU_MAX : ev.mtu;
    x->ct.restarts++;
    rc = nic_restart(vm, x, x->want_mtu);
    if (rc == 0 && x->info.mtu < ev.mtu)
        printf("hv-vm %s: NIC %s: the root allows MTU %u at most\n", vm->name, x->name,
               x->info.mtu);
    fflush(stdout);
    return rc;
}

/* Reflect the NIC's link state (and a changed MTU) in the TAP. */
static void nic_sync_info(struct vm *vm, struct nic *x)
{
    struct netvsc_info info;
    struct netvsc_stats st;
    netvsc_get_info(x->n, &info);
    netvsc_get_stats(x->n, &st);
    /* A cable pulled and plugged back within one poll still has to reach
     * the VM's stack as a carrier loss (it renews what it learned). */
    bool bounced = st.link_changes != x->link_changes_seen && info.link_up == x->info.link_up &&
                   info.link_up;
    x->link_changes_seen = st.link_changes;
    if (bounced) {
        x->ct.link_changes += 2;
        if (netvsc_tap_set_carrier(x->tap, false) < 0 || netvsc_tap_set_carrier(x->tap, true) < 0)
            fprintf(stderr, "hv-vm %s: %s\n", vm->name, netvsc_tap_last_error());
        printf("hv-vm %s: NIC %s link bounced\n", vm->name, x->name);
        fflush(stdout);
    } else if (info.link_up != x->info.link_up) {
        x->ct.link_changes++;
        if (netvsc_tap_set_carrier(x->tap, info.link_up) < 0)
            fprintf(stderr, "hv-vm %s: %s\n", vm->name, netvsc_tap_last_error());
        printf("hv-vm %s: NIC %s link %s\n", vm->name, x->name, info.link_up ? "up" : "down");
        fflush(stdout);
    }
    if (info.mtu != x->info.mtu) {
        if (netvsc_tap_set_mtu(x->tap, info.mtu) < 0)
            fprintf(stderr, "hv-vm %s: %s\n", vm->name, netvsc_tap_last_error());
        else if (vm->verbose)
            printf("hv-vm %s: NIC %s MTU %u\n", vm->name, x->name, info.mtu);
    }
    x->info = info;
    nic_set_limits(x, x->tso);
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t sum16(const uint8_t *p, uint32_t n)
{
    uint32_t s = 0;
    for (uint32_t i = 0; i + 1 < n; i += 2)
        s += be16(p + i);
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/*
 * A frame the root vouched for (NETVSC_F_CSUM) whose TCP/UDP checksum field
 * holds just the pseudo-header sum: the sending VM left the checksum to the
 * network (Linux's CHECKSUM_PARTIAL), and the root passed it on as
 * "verified", as vmswitch does. A TAP ignores VIRTIO_NET_HDR_F_DATA_VALID,
 * so the VM's kernel would check that field and drop the frame; handing it
 * over as a partial checksum (NEEDS_CSUM) is what it really is: accepted
 * locally, finished by the kernel if the VM forwards it. Frames whose
 * checksum is complete are left for the kernel to verify.
 *
 * The headers are copied out of the receive buffer first (the root can
 * write there); a wrong answer costs at most that frame.
 */
static bool rx_partial_csum(const uint8_t *frame, uint32_t len, uint16_t *start, uint16_t *offset)
{
    uint8_t h[ETH_HLEN + VLAN_HLEN + 60 + 20];
    uint32_t n = len < sizeof(h) ? len : (uint32_t)sizeof(h);
    memcpy(h, frame, n);
    uint32_t l3 = ETH_HLEN;
    if (n < l3)
        return false;
    uint16_t type = be16(h + 12);
    if (type == ETH_P_8021Q || type == ETH_P_8021AD) {
        l3 += VLAN_HLEN;
        if (n < l3)
            return false;
        type = be16(h + 16);
    }
    uint32_t l4, l4_len, pseudo;
    uint8_t proto;
    if (type == ETH_P_IP) {
        if (n < l3 + 20 || (h[l3] >> 4) != 4)
            return false;
        uint32_t ihl = (uint32_t)(h[l3] & 0xf) * 4;
        uint32_t tot = be16(h + l3 + 2);
        if (ihl < 20 || be16(h + l3 + 6) & 0x3fff || tot < ihl) /* fragments: no */
            return false;
        l4 = l3 + ihl;
        l4_len = tot - ihl;
        proto = h[l3 + 9];
        pseudo = sum16(h + l3 + 12, 8);
    } else if (type == ETH_P_IPV6) {
        if (n < l3 + 40 || (h[l3] >> 4) != 6)
            return false;
        l4 = l3 + 40;
        l4_len = be16(h + l3 + 4);
        proto = h[l3 + 6]; /* extension headers: not handled, left to the kernel */
        pseudo = sum16(h + l3 + 8, 32);
    } else {
        return false;
    }
    uint32_t off = proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 0;
    if (!off || n < l4 + off + 2 || (uint64_t)l4 + l4_len > len || l4_len < off + 2)
        return false;
    pseudo += proto + l4_len;
    uint16_t want = fold(pseudo), have = be16(h + l4 + off);
    /* One's complement: 0 and 0xffff are the same sum. */
    if (have != want && !((have == 0 || have == 0xffff) && (want == 0 || want == 0xffff)))
        return false;
    *start = (uint16_t)l4;
    *offset = (uint16_t)off;
    return true;
}

/* Root -> TAP, one frame: a virtio_net_hdr, then the frame (its VLAN tag,
 * if the root passed it out of band, put back in). The TAP queue is the
 * VM's receive queue: when it is full the frame is dropped, as a NIC
 * would. */
static void nic_rx_frame(void *ctx, const void *frame, uint32_t len, const struct netvsc_meta *meta)
{
    struct nic *x = ctx;
    struct virtio_net_hdr vh;
    memset(&vh, 0, sizeof(vh));
    bool tagged = meta && (meta->flags & NETVSC_F_VLAN) && len >= 2 * ETH_ALEN;
    if (meta && (meta->flags & NETVSC_F_CSUM)) {
        uint16_t start, offset;
        x->ct.to_tap_csum_ok++;
        if (rx_partial_csum(frame, len, &start, &offset)) {
            vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
            vh.csum_start = (uint16_t)(start + (tagged ? VLAN_HLEN : 0));
            vh.csum_offset = offset;
            x->ct.to_tap_partial++;
        } else {
            vh.flags = VIRTIO_NET_HDR_F_DATA_VALID;
        }
    }
    struct iovec iov[4];
    int cnt;
    uint8_t tag[VLAN_HLEN];
    iov[0] = (struct iovec){&vh, VNET_HDR_LEN};
    if (tagged) {
        tag[0] = ETH_P_8021Q >> 8;
        tag[1] = ETH_P_8021Q & 0xff;
        tag[2] = (uint8_t)(meta->vlan_tci >> 8);
        tag[3] = (uint8_t)meta->vlan_tci;
        iov[1] = (struct iovec){(void *)frame, 2 * ETH_ALEN};
        iov[2] = (struct iovec){tag, VLAN_HLEN};
        iov[3] = (struct iovec){(uint8_t *)frame + 2 * ETH_ALEN, len - 2 * ETH_ALEN};
        cnt = 4;
    } else {
        iov[1] = (struct iovec){(void *)frame, len};
        cnt = 2;
    }
    if (writev(x->tap_fd, iov, cnt) < 0) {
        if (errno == EAGAIN)
            x->ct.drop_tap_full++;
        else
            x->ct.drop_tap_write++;
        return;
    }
    x->ct.to_tap_frames++;
    x->ct.to_tap_bytes += len;
}

static bool frame_is_ipv6(const uint8_t *f, uint32_t len)
{
    uint32_t off = 2 * ETH_ALEN;
    if (len < off + 2)
        return false;
    uint16_t type = be16(f + off);
    if ((type == ETH_P_8021Q || type == ETH_P_8021AD) && len >= off + VLAN_HLEN + 2) {
        off += VLAN_HLEN;
        type = be16(f + off);
    }
    return type == ETH_P_IPV6;
}

/* Finish a partial checksum as the kernel asked: the field at
 * start + offset already holds the pseudo-header sum. */
static void sw_csum(uint8_t *f, uint32_t len, uint32_t start, uint32_t offset)
{
    uint64_t sum = 0;
    uint32_t i = start;
    for (; i + 1 < len; i += 2)
        sum += be16(f + i);
    if (i < len)
        sum += (uint32_t)f[i] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    uint16_t c = (uint16_t)~sum;
    if (c == 0)
        c = 0xffff; /* 0 means "no checksum" to UDP; the same value to TCP */
    f[start + offset] = (uint8_t)(c >> 8);
    f[start + offset + 1] = (uint8_t)c;
}

/* Translate the TAP's virtio_net_hdr into netvsc metadata. Checksums the
 * root cannot finish are finished here. false: drop the frame (counted). */
static bool vnet_to_meta(struct nic *x, const struct virtio_net_hdr *vh, uint8_t *f, uint32_t len,
                         struct netvsc_meta *meta)
{
    memset(meta, 0, sizeof(*meta));
    bool partial = vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
    uint32_t start = vh->csum_start, offset = vh->csum_offset;
    if (partial && (start < ETH_HLEN || (uint64_t)start + offset + 2 > len)) {
        x->ct.drop_bad_offload++;
        return false;
    }
    uint8_t gso = vh->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    if (gso != VIRTIO_NET_HDR_GSO_NONE) {
        if ((gso != VIRTIO_NET_HDR_GSO_TCPV4 && gso != VIRTIO_NET_HDR_GSO_TCPV6) || !x->info.lso) {
            x->ct.drop_gso_type++;
            return false;
        }
        if (!partial || vh->gso_size == 0) {
            x->ct.drop_bad_offload++;
            return false;
        }
        meta->flags = NETVSC_F_LSO;
        if (gso == VIRTIO_NET_HDR_GSO_TCPV6)
            meta->flags |= NETVSC_F_IPV6;
        meta->l4_offset = (uint16_t)start;
        meta->l4_proto = IPPROTO_TCP;
        meta->mss = vh->gso_size;
        return true;
    }
    if (!partial)
        return true;
    uint8_t proto = offset == 16 ? IPPROTO_TCP : offset == 6 ? IPPROTO_UDP : 0;
    if (proto && x->info.csum_offload) {
        meta->flags = NETVSC_F_CSUM;
        if (frame_is_ipv6(f, len))
            meta->flags |= NETVSC_F_IPV6;
        meta->l4_offset = (uint16_t)start;
        meta->l4_proto = proto;
        return true;
    }
    sw_csum(f, len, start, offset);
    x->ct.sw_csum++;
    return true;
}

/* Hand one frame to the NIC. false if the NIC has no room for it now; the
 * frame is then kept as the NIC's pending frame. */
static bool nic_submit(struct nic *x, struct netvsc_txbuf *tb, uint32_t len,
                       const struct netvsc_meta *meta)
{
    int rc = netvsc_tx_submit(x->n, tb, len, meta);
    if (rc == 0) {
        x->ct.to_root_frames++;
        x->ct.to_root_bytes += len;
        x->ct.to_root_csum += (meta->flags & NETVSC_F_CSUM) != 0;
        x->ct.to_root_lso += (meta->flags & NETVSC_F_LSO) != 0;
        return true;
    }
    if (rc == -EAGAIN) {
        x->ct.ring_full++;
        x->pend = PEND_SUBMIT;
        x->pend_tb = *tb;
        x->pend_len = len;
        x->pend_meta = *meta;
        return false;
    }
    netvsc_tx_abort(x->n, tb);
    x->ct.drop_rejected++;
    return true;
}

/* A frame sits whole in the bounce buffer: copy it into room big enough
 * for it. false if there is none now (it stays pending). */
static bool nic_send_bounce(struct nic *x, uint32_t len, const struct netvsc_meta *meta)
{
    struct netvsc_txbuf tb;
    if (!netvsc_tx_alloc(x->n, len, &tb)) {
        x->pend = PEND_BOUNCE;
        x->pend_len = len;
        x->pend_meta = *meta;
        return false;
    }
    if (tb.cap < len) {
        netvsc_tx_abort(x->n, &tb);
        x->ct.drop_oversize++;
        return true;
    }
    memcpy(tb.data, x->bounce, len);
    return nic_submit(x, &tb, len, meta);
}

/* The pending frame, again. true if it is gone (sent or dropped). */
static bool nic_retry_pending(struct nic *x)
{
    enum pending_kind k = x->pend;
    x->pend = PEND_NONE;
    if (k == PEND_SUBMIT) {
        struct netvsc_txbuf tb = x->pend_tb;
        struct netvsc_meta meta = x->pend_meta;
        return nic_submit(x, &tb, x->pend_len, &meta);
    }
    if (k == PEND_BOUNCE) {
        struct netvsc_meta meta = x->pend_meta;
        return nic_send_bounce(x, x->pend_len, &meta);
    }
    return true;
}

/*
 * TAP -> root, one burst. A frame is read straight into send room in guest
 * memory: the virtio_net_hdr into a local, the frame into a txbuf sized for
 * a standard frame (a send-buffer section). A longer frame (jumbo, or GSO
 * with LSO) spills into a third iovec over the bounce buffer; it is put
 * together there and copied into room of its own size. So small frames,
 * the most common, never take the few page chunks that big frames need,
 * and cost no copy.
 *
 * Without send room the TAP is left unread (EPOLLIN off) until completions
 * free some (netvsc_tx_blocked() turns false): the kernel queues, then
 * drops, meanwhile, as it would for a busy NIC. `force` retries even while
 * netvsc says blocked (after a bounded sleep, against a lost wake-up).
 * Returns frames taken from the TAP, or -errno if the TAP is gone.
 */
static int nic_tx(struct vm *vm, struct nic *x, bool force)
{
    int done = 0, sent = 0;
    bool stalled = x->pend != PEND_NONE || (x->tap_ready && !x->tap_in);
    if (stalled && !force && netvsc_tx_blocked(x->n))
        return 0;
    if (x->pend != PEND_NONE) {
        if (!nic_retry_pending(x))
            return 0; /* flushed when it became pending */
        done++;
        sent++;
    }
    uint32_t first = x->frame_max < HV_VM_FIRST_BUF ? x->frame_max : HV_VM_FIRST_BUF;
    while (x->tap_ready && done < HV_VM_BURST) {
        struct netvsc_txbuf tb;
        if (!netvsc_tx_alloc(x->n, first, &tb)) {
            if (x->tap_in)
                x->ct.tx_stalls++;
            nic_set_tap_interest(vm, x, false);
            break;
        }
        nic_set_tap_interest(vm, x, true);
        struct virtio_net_hdr vh;
        struct iovec iov[3] = {{&vh, VNET_HDR_LEN}, {tb.data, tb.cap}, {NULL, 0}};
        int cnt = 2;
        if (tb.cap < x->tx_frame_cap) {
            iov[2] = (struct iovec){x->bounce + tb.cap, x->tx_frame_cap - tb.cap};
            cnt = 3;
        }
        ssize_t r = readv(x->tap_fd, iov, cnt);
        if (r < 0) {
            int err = errno;
            netvsc_tx_abort(x->n, &tb);
            if (err == EINTR)
                continue;
            x->tap_ready = false;
            if (err == EAGAIN)
                break;
            fprintf(stderr, "hv-vm %s: NIC %s: TAP read: %s\n", vm->name, x->name, strerror(err));
            return -err;
        }
        done++;
        if ((size_t)r < VNET_HDR_LEN + ETH_HLEN) {
            netvsc_tx_abort(x->n, &tb);
            x->ct.drop_runt++;
            continue;
        }
        uint32_t len = (uint32_t)((size_t)r - VNET_HDR_LEN);
        struct netvsc_meta meta;
        if (len <= tb.cap) {
            if (!vnet_to_meta(x, &vh, tb.data, len, &meta)) {
                netvsc_tx_abort(x->n, &tb);
                continue;
            }
            if (!nic_submit(x, &tb, len, &meta))
                break;
            sent++;
            continue;
        }
        /* The read result counts bytes the iovecs had no room for too:
         * longer than we allow means cut short, and dropped. */
        if (cnt < 3 || len > x->tx_frame_cap) {
            netvsc_tx_abort(x->n, &tb);
            x->ct.drop_oversize++;
            continue;
        }
        memcpy(x->bounce, tb.data, tb.cap);
        netvsc_tx_abort(x->n, &tb);
        if (!vnet_to_meta(x, &vh, x->bounce, len, &meta))
            continue;
        if (!nic_send_bounce(x, len, &meta))
            break;
        sent++;
    }
    if (x->pend != PEND_NONE)
        nic_set_tap_interest(vm, x, false);
    if (sent || x->pend != PEND_NONE)
        netvsc_tx_flush(x->n);
    return done;
}

/* The TAP went away under us (deleted inside the VM): make it again, so
 * the NIC stays usable. */
static int nic_tap_recreate(struct vm *vm, struct nic *x)
{
    fprintf(stderr, "hv-vm %s: NIC %s: TAP lost; creating it again\n", vm->name, x->name);
    nic_drop_pending(x);
    nic_unwatch_tap(vm, x);
    netvsc_tap_destroy(x->tap);
    x->tap = NULL;
    x->tap_fd = -1;
    x->want_mtu = 0; /* a new interface starts at the NIC's MTU, the VM's choice gone */
    struct netvsc_tap_params tp;
    tap_params_from_info(&x->info, x->name, &tp);
    int rc = netvsc_tap_create_brokered(vm->tap_broker, &tp, &x->tap);
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s: %s\n", vm->name, x->name, netvsc_tap_last_error());
        return rc;
    }
    x->tap_fd = netvsc_tap_fd(x->tap);
    if ((rc = nic_watch_tap(vm, x)) < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s: epoll: %s\n", vm->name, x->name, strerror(-rc));
        return rc;
    }
    x->tap_lost = false;
    return 0;
}

/* One round for one NIC: a burst from the root, then a burst to it.
 * Returns the work done, or -1 if the NIC was closed. force: see nic_tx. */
static int nic_service(struct vm *vm, struct nic *x, bool force)
{
    int rx = netvsc_poll(x->n, nic_rx_frame, x, HV_VM_BURST);
    if (rx == -ENOTCONN) {
        nic_close(vm, x, "removed (channel rescinded)");
        return -1;
    }
    if (rx == -EPROTO && !x->reopened) {
        if (nic_reopen(vm, x) == 0)
            return 1;
        remember_failed(vm, x->relid);
        nic_close(vm, x, "closed (reopen failed)");
        return -1;
    }
    if (rx < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s: %s\n", vm->name, x->name, strerror(-rx));
        remember_failed(vm, x->relid);
        nic_close(vm, x, "closed (channel failed)");
        return -1;
    }
    if (netvsc_reinit_wanted(x->n)) {
        /* The root changed the NIC (its MTU): start over as a guest does. */
        printf("hv-vm %s: NIC %s: network change from the root; starting the NIC over\n",
               vm->name, x->name);
        x->ct.restarts++;
        if (nic_restart(vm, x, nic_mtu_wanted(x)) == 0)
            return 1;
        remember_failed(vm, x->relid);
        nic_close(vm, x, "closed (restart failed)");
        return -1;
    }
    if (x->tap_event && nic_tap_events(vm, x) < 0) {
        remember_failed(vm, x->relid);
        nic_close(vm, x, "closed (restart failed)");
        return -1;
    }
    nic_sync_info(vm, x);
    int tx = x->tap_lost ? -EBADFD : nic_tx(vm, x, force);
    if (tx < 0) {
        if (nic_tap_recreate(vm, x) == 0)
            return 1;
        remember_failed(vm, x->relid);
        nic_close(vm, x, "closed (no TAP)");
        return -1;
    }
    return rx + tx;
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

static int run(struct vm *vm)
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

static int setup_events(struct vm *vm)
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
static int watch_vps(struct vm *vm)
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
