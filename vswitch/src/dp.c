/*
 * The data plane: mbuf pool, worker lcores, port table, switches.
 *
 * Configuration reaches workers through RCU (quiescent-state based): the
 * control thread builds a new port set, publishes the pointer with a release
 * store, waits with rte_rcu_qsbr_synchronize() until every worker has
 * finished the round it was in, and only then frees the old set (or the port
 * it no longer lists). Workers report a quiescent state once per round and go
 * offline while they sleep, so a sleeping worker never delays the control
 * thread.
 *
 * A round: every port the worker owns is polled exactly once, in order, with
 * the same bounded budget (VSW_BURST units of rx work, then VSW_BURST frames
 * from its hand-off ring); a port with more left simply continues in the
 * next round. No port can make a round longer than its budget, so a guest
 * flooding its NIC delays the others on its worker by at most one budget.
 * A port that did work its frames do not show (control messages) marks
 * itself busy (vsw_port_rx_busy), and the round counts as busy: the worker
 * does not nap or sleep while any port has work pending.
 *
 * Accounting, as OVS's pmd threads do it: the TSC is read once per round
 * (the read the idle timer needs anyway), and the round's cycles go to
 * busy_cycles if it did work, else to idle_cycles; a sleep, from arming
 * the wake-ups to polling again, goes to sleep_cycles (one more TSC read,
 * after it). An idle round's pause is charged to it, not to the next round.
 * Every counter is the worker's own, updated with relaxed stores; the
 * control thread only reads them, and vsw_dp_stats_clear() keeps a
 * baseline on its side instead of resetting anything a worker writes.
 *
 * Sleeping: a worker with nothing to do for idle_sleep_us arms every port's
 * wake-up (e.g. unmasks a VMBus ring's interrupts), marks itself sleeping,
 * re-checks, and waits in epoll on the ports' wait fds and its own wake fd.
 * Other workers that hand it frames write the wake fd when they see it
 * sleeping (a store/fence/load pair on both sides, see vsw_flush_stages()).
 */

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include "jumbo.h"
#include "vsw-private.h"

uint64_t vsw_mirror_copy_flag;

static const char *const drop_names[VSW_DROP_COUNT] = {
    [VSW_DROP_RUNT] = "runt",
    [VSW_DROP_BAD_SRC_MAC] = "bad_src_mac",
    [VSW_DROP_TOO_BIG] = "too_big",
    [VSW_DROP_RX_TOO_BIG] = "rx_too_big",
    [VSW_DROP_NO_MBUF] = "no_mbuf",
    [VSW_DROP_QUEUE_FULL] = "queue_full",
    [VSW_DROP_LINK_DOWN] = "link_down",
    [VSW_DROP_HAIRPIN] = "hairpin",
    [VSW_DROP_NO_DEST] = "no_destination",
    [VSW_DROP_VLAN] = "vlan",
    [VSW_DROP_MAC_SPOOF] = "mac_spoofing",
    [VSW_DROP_DHCP_GUARD] = "dhcp_guard",
    [VSW_DROP_ROUTER_GUARD] = "router_guard",
    [VSW_DROP_RATE_LIMIT] = "rate_limit",
    [VSW_DROP_STORM] = "storm_limit",
    [VSW_DROP_PORT_SPECIFIC] = "port_specific",
    [VSW_DROP_OFFLOAD] = "offload",
};

const char *vsw_drop_name(enum vsw_drop d)
{
    return d < VSW_DROP_COUNT ? drop_names[d] : "invalid";
}

const char *vsw_switch_kind_name(enum vsw_switch_kind k)
{
    switch (k) {
    case VSW_SWITCH_PRIVATE:
        return "private";
    case VSW_SWITCH_INTERNAL:
        return "internal";
    case VSW_SWITCH_EXTERNAL:
        return "external";
    }
    return "invalid";
}

int vsw_switch_kind_parse(const char *s, enum vsw_switch_kind *out)
{
    if (strcmp(s, "private") == 0)
        *out = VSW_SWITCH_PRIVATE;
    else if (strcmp(s, "internal") == 0)
        *out = VSW_SWITCH_INTERNAL;
    else if (strcmp(s, "external") == 0)
        *out = VSW_SWITCH_EXTERNAL;
    else
        return -EINVAL;
    return 0;
}

struct vsw_port_set *vsw_port_set_with(const struct vsw_port_set *old, struct vsw_port *add,
                                       const struct vsw_port *remove)
{
    unsigned n = old ? old->n : 0;
    struct vsw_port_set *s = calloc(1, sizeof(*s) + sizeof(s->ports[0]) * (n + 1));
    if (!s)
        return NULL;
    for (unsigned i = 0; i < n; i++)
        if (old->ports[i] != remove)
            s->ports[s->n++] = old->ports[i];
    if (add)
        s->ports[s->n++] = add;
    for (unsigned i = 0; i < s->n; i++)
        if (!s->ports[i]->cls->wait_fd)
            s->has_unsleepable = true;
    return s;
}

void vsw_worker_wake(struct vsw_worker *w)
{
    uint64_t one = 1;
    if (write(w->wake_fd, &one, sizeof(one)) < 0) {
        /* saturated counter: it is awake */
    }
}

static bool handoff_pending(const struct vsw_port_set *set)
{
    for (unsigned i = 0; i < set->n; i++)
        if (!rte_ring_empty(set->ports[i]->handoff))
            return true;
    return false;
}

/* Sleep until a port or another worker wakes us, unless work is pending
 * already. Returns whether it slept. */
static bool worker_sleep(struct vsw_worker *w, const struct vsw_port_set *set)
{
    bool pending = false, slept = false;
    for (unsigned i = 0; i < set->n; i++) {
        struct vsw_port *p = set->ports[i];
        if (p->cls->wait_arm && p->cls->wait_arm(p))
            pending = true;
    }
    __atomic_store_n(&w->sleeping, true, __ATOMIC_RELAXED);
    rte_atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!pending && !handoff_pending(set) && !__atomic_load_n(&w->stop, __ATOMIC_RELAXED) &&
        __atomic_load_n(&w->ports, __ATOMIC_ACQUIRE) == set) {
        struct epoll_event evs[16];
        /* Read before going offline: from then on the control thread may
         * free set (fuzz_vsd_state found this use after free). */
        const int nap_ms = set->has_unsleepable ? 1 : 100;
        rte_rcu_qsbr_thread_offline(w->dp->qsbr, w->idx);
        vsw_worker_count(&w->sleeps, 1);
        int n = epoll_wait(w->epfd, evs, 16, nap_ms);
        rte_rcu_qsbr_thread_online(w->dp->qsbr, w->idx);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == w->wake_fd) {
                uint64_t v;
                if (read(w->wake_fd, &v, sizeof(v)) < 0) {
                    /* nothing pending after all */
                }
            }
        }
        vsw_worker_count(&w->wakeups, n > 0);
        slept = true;
    }
    __atomic_store_n(&w->sleeping, false, __ATOMIC_RELAXED);
    /* While offline the set (and ports it listed) may have been freed:
     * disarm what is published now. Disarming a port that was never armed
     * is harmless. */
    set = __atomic_load_n(&w->ports, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < set->n; i++) {
        struct vsw_port *p = set->ports[i];
        if (p->cls->wait_disarm)
            p->cls->wait_disarm(p);
    }
    return slept;
}

static int worker_main(void *arg)
{
    struct vsw_worker *w = arg;
    struct vsw_dp *dp = w->dp;
    struct rte_mbuf *pkts[VSW_BURST];
    uint64_t idle_cycles = dp->tsc_hz / 1000000u * dp->idle_sleep_us;
    uint64_t last_work = rte_rdtsc();
    /* Right after a sleep: a round without work sends the worker back to
     * sleep at once. A guest may signal its channel with nothing in its
     * ring as often as its hypercalls go; were each wake-up followed by
     * idle_sleep_us of polling, a few thousand empty signals a second would
     * keep the worker from sleeping at all. A wake-up with work polls on
     * as usual, idle_sleep_us after the last work. */
    bool woken = false;

    rte_rcu_qsbr_thread_register(dp->qsbr, w->idx);
    rte_rcu_qsbr_thread_online(dp->qsbr, w->idx);
    uint64_t round_start = rte_rdtsc();
    while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
        rte_rcu_qsbr_quiescent(dp->qsbr, w->idx);
        /* The time every burst of the round uses (learning, limits): a TSC
         * read per round, not one more per burst (perf: the TSC reads were
         * half of worker_main's cycles and a quarter of an uplink's
         * rx_burst's). */
        w->round_tsc = round_start;
        const struct vsw_port_set *set = __atomic_load_n(&w->ports, __ATOMIC_ACQUIRE);
        unsigned work = 0, rx = 0, tx = 0;
        /* Load per port (vsw-placement.h): a TSC mark after each port
         * that worked, none after one that did not. */
        uint64_t mark = round_start;
        struct vsw_port *last_busy = NULL;
        for (unsigned i = 0; i < set->n; i++) {
            struct vsw_port *p = set->ports[i];
            unsigned took = 0;
            /* Not the direct sender: a move is under way. The old owner,
             * still polling the port in this round, leaves it alone; the
             * new owner takes it over. */
            if (unlikely(__atomic_load_n(&p->tx_worker, __ATOMIC_RELAXED) != w->idx) &&
                __atomic_load_n(&p->take_by, __ATOMIC_RELAXED) == w->idx)
                took = vsw_port_take_over(w, set, p);
            tx += took;
            bool did = took > 0;
            uint16_t n = p->cls->rx_burst(p, pkts, VSW_BURST);
            if (p->rx_busy) {
                p->rx_busy = false;
                work++;
                did = true;
            }
            if (n) {
                rx += n;
                vsw_forward(w, p, pkts, n);
            }
            unsigned h = rte_ring_sc_dequeue_burst(p->handoff, (void **)pkts, VSW_BURST, NULL);
            if (h) {
                tx += h;
                p->cls->tx_burst(p, pkts, (uint16_t)h);
            }
            if (did || n || h) {
                uint64_t t = rte_rdtsc();
                vsw_worker_count(&p->busy_cycles, t - mark);
                mark = t;
                last_busy = p;
            }
        }
        work += rx + tx;
        if (w->ntouched)
            tx += vsw_flush_stages(w);
        for (unsigned i = 0; i < set->n; i++) {
            struct vsw_port *p = set->ports[i];
            if (p->cls->tx_flush)
                p->cls->tx_flush(p);
        }
        uint64_t now = rte_rdtsc();
        vsw_worker_count(&w->rounds, 1);
        if (last_busy)
            vsw_worker_count(&last_busy->busy_cycles, now - mark);
        if (work) {
            vsw_worker_count(&w->busy_rounds, 1);
            vsw_worker_count(&w->busy_cycles, now - round_start);
            vsw_worker_count(&w->rx_packets, rx);
            vsw_worker_count(&w->tx_packets, tx);
            round_start = now;
            last_work = now;
            woken = false;
        } else if (woken || now - last_work > idle_cycles) {
            vsw_worker_count(&w->idle_cycles, now - round_start);
            woken = worker_sleep(w, set);
            round_start = rte_rdtsc();
            vsw_worker_count(&w->sleep_cycles, round_start - now);
            last_work = round_start;
        } else {
            /* Polling takes only the time nobody else on this CPU wants:
             * the worker's lcore is not reserved for it, and a guest's
             * process answering what the worker just forwarded may be
             * waiting for this CPU (measured: with rte_pause() here, and
             * hv-vm polling the same way, a VM-to-VM ping took 0.58 ms,
             * with both yielding 0.31). An idle round is not a busy one,
             * so this is no system call on the busy path. */
            sched_yield();
            uint64_t after = rte_rdtsc();
            vsw_worker_count(&w->idle_cycles, after - round_start);
            round_start = after;
        }
    }
    rte_rcu_qsbr_thread_offline(dp->qsbr, w->idx);
    rte_rcu_qsbr_thread_unregister(dp->qsbr, w->idx);
    return 0;
}

int vsw_dp_create(const struct vsw_dp_params *params, struct vsw_dp **out)
{
    struct vsw_dp_params p = params ? *params : (struct vsw_dp_params){0};
    if (!p.nb_mbufs)
        p.nb_mbufs = 16383;
    if (!p.mbuf_data_size)
        p.mbuf_data_size = RTE_MBUF_DEFAULT_BUF_SIZE;
    if (!p.idle_sleep_us)
        p.idle_sleep_us = 200;
    unsigned nworkers = rte_lcore_count() - 1;
    if (nworkers == 0)
        return -ENODEV;
    if (nworkers > VSW_MAX_WORKERS)
        nworkers = VSW_MAX_WORKERS;

    struct vsw_dp *dp = calloc(1, sizeof(*dp));
    if (!dp)
        return -ENOMEM;
    int rc = -ENOMEM;
    dp->tsc_hz = rte_get_tsc_hz();
    dp->idle_sleep_us = p.idle_sleep_us;
    dp->learn_fd = -1;
    vsw_dp_set_load_threshold(dp, (unsigned)vsw_rb_defaults.high_pct);
    if (p.pool) {
        dp->pool = p.pool;
    } else {
        dp->pool = rte_pktmbuf_pool_create("vsw_pool", p.nb_mbufs, 256, 0, p.mbuf_data_size,
                                           (int)rte_socket_id());
        dp->own_pool = true;
    }
    if (!dp->pool)
        goto fail;
    if (rte_mbuf_dyn_rx_timestamp_register(&dp->ts_offset, NULL) < 0)
        goto fail;
    static const struct rte_mbuf_dynflag mirror_flag = {.name = "hvnet_mirror_copy"};
    int bit = rte_mbuf_dynflag_register(&mirror_flag);
    if (bit < 0)
        goto fail;
    vsw_mirror_copy_flag = 1ull << bit;
    size_t qsz = rte_rcu_qsbr_get_memsize(nworkers);
    dp->qsbr = rte_zmalloc("vsw_qsbr", qsz, RTE_CACHE_LINE_SIZE);
    if (!dp->qsbr || rte_rcu_qsbr_init(dp->qsbr, nworkers) != 0)
        goto fail;
    dp->learn_ring = rte_ring_create_elem("vsw_learn", sizeof(struct vsw_learn_ev), VSW_LEARN_RING,
                                          (int)rte_socket_id(), RING_F_SC_DEQ);
    if (!dp->learn_ring)
        goto fail;
    dp->learn_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (dp->learn_fd < 0) {
        rc = -errno;
        goto fail;
    }
    dp->workers = rte_zmalloc("vsw_workers", sizeof(struct vsw_worker) * nworkers,
                              RTE_CACHE_LINE_SIZE);
    if (!dp->workers)
        goto fail;
    dp->nworkers = nworkers;
    for (unsigned i = 0; i < nworkers; i++) {
        struct vsw_worker *w = &dp->workers[i];
        w->dp = dp;
        w->idx = i;
        w->epfd = -1;
        w->wake_fd = -1;
        /* Segments of large TCP segments for ports that do not take them:
         * headers in direct mbufs, payload in indirect ones, both from the
         * switch's pool; IP ids counting up as a NIC's would. gso_size is
         * set per frame. */
        w->gso.direct_pool = dp->pool;
        w->gso.indirect_pool = dp->pool;
        w->gso.gso_types = RTE_ETH_TX_OFFLOAD_TCP_TSO;
        w->gso.flag = 0;
    }
    unsigned lcore, i = 0;
    RTE_LCORE_FOREACH_WORKER(lcore)
    {
        if (i == nworkers)
            break;
        struct vsw_worker *w = &dp->workers[i++];
        w->lcore = lcore;
        w->ports = vsw_port_set_with(NULL, NULL, NULL);
        w->stage = rte_zmalloc("vsw_stage", sizeof(struct vsw_stage) * VSW_MAX_PORTS,
                               RTE_CACHE_LINE_SIZE);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (!w->ports || !w->stage || w->epfd < 0 || w->wake_fd < 0)
            goto fail_workers;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = w->wake_fd};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0)
            goto fail_workers;
    }
    for (i = 0; i < nworkers; i++) {
        if (rte_eal_remote_launch(worker_main, &dp->workers[i], dp->workers[i].lcore) != 0) {
            for (unsigned j = 0; j < i; j++) {
                __atomic_store_n(&dp->workers[j].stop, true, __ATOMIC_RELAXED);
                vsw_worker_wake(&dp->workers[j]);
                rte_eal_wait_lcore(dp->workers[j].lcore);
            }
            goto fail_workers;
        }
    }
    *out = dp;
    return 0;

fail_workers:
    for (unsigned j = 0; j < nworkers; j++) {
        struct vsw_worker *w = &dp->workers[j];
        free(w->ports);
        rte_free(w->stage);
        if (w->epfd >= 0)
            close(w->epfd);
        if (w->wake_fd >= 0)
            close(w->wake_fd);
    }
fail:
    rte_free(dp->workers);
    if (dp->learn_fd >= 0)
        close(dp->learn_fd);
    rte_ring_free(dp->learn_ring);
    rte_free(dp->qsbr);
    if (dp->own_pool)
        rte_mempool_free(dp->pool);
    free(dp);
    return rc;
}

void vsw_dp_destroy(struct vsw_dp *dp)
{
    if (!dp)
        return;
    for (unsigned i = 0; i < dp->nworkers; i++) {
        __atomic_store_n(&dp->workers[i].stop, true, __ATOMIC_RELAXED);
        vsw_worker_wake(&dp->workers[i]);
    }
    for (unsigned i = 0; i < dp->nworkers; i++) {
        struct vsw_worker *w = &dp->workers[i];
        rte_eal_wait_lcore(w->lcore);
        free(w->ports);
        rte_free(w->stage);
        close(w->epfd);
        close(w->wake_fd);
    }
    for (unsigned i = 0; i < VSW_MAX_SWITCHES; i++)
        if (dp->switches[i])
            vsw_switch_destroy(dp->switches[i]);
    rte_free(dp->workers);
    close(dp->learn_fd);
    rte_ring_free(dp->learn_ring);
    rte_free(dp->qsbr);
    if (dp->own_pool)
        rte_mempool_free(dp->pool);
    free(dp);
}

struct rte_mempool *vsw_dp_mempool(const struct vsw_dp *dp)
{
    return dp->pool;
}

unsigned vsw_dp_workers(const struct vsw_dp *dp)
{
    return dp->nworkers;
}

int vsw_dp_event_fd(const struct vsw_dp *dp)
{
    return dp->learn_fd;
}

void vsw_dp_process(struct vsw_dp *dp)
{
    uint64_t v;
    if (read(dp->learn_fd, &v, sizeof(v)) < 0) {
        /* spurious wake-up */
    }
    __atomic_store_n(&dp->learn_signalled, false, __ATOMIC_RELEASE);
    uint32_t now = vsw_now_s(dp);
    struct vsw_learn_ev evs[64];
    unsigned n;
    while ((n = rte_ring_sc_dequeue_burst_elem(dp->learn_ring, evs, sizeof(evs[0]), 64, NULL)) >
           0) {
        for (unsigned i = 0; i < n; i++) {
            const struct vsw_learn_ev *ev = &evs[i];
            if (ev->sw_id >= VSW_MAX_SWITCHES || ev->port_index >= VSW_MAX_PORTS)
                continue;
            struct vsw_switch *sw = dp->switches[ev->sw_id];
            struct vsw_port *p = dp->ports[ev->port_index];
            /* The port may have left (or its slot been reused) since. */
            if (!sw || !p || p->sw != sw || dp->port_gen[ev->port_index] != ev->port_gen)
                continue;
            vsw_fdb_learn(sw, ev, now);
        }
    }
}

void vsw_dp_tick(struct vsw_dp *dp)
{
    uint32_t now = vsw_now_s(dp);
    for (unsigned i = 0; i < VSW_MAX_SWITCHES; i++)
        if (dp->switches[i])
            vsw_fdb_age(dp->switches[i], now);
}

int vsw_switch_create(struct vsw_dp *dp, const struct vsw_switch_params *p,
                      struct vsw_switch **out)
{
    if (!p->name || !p->name[0] || strlen(p->name) >= VSW_NAME_MAX)
        return -EINVAL;
    if (!jumbo_mtu_valid(p->mtu))
        return -EINVAL;
    if (p->kind != VSW_SWITCH_PRIVATE && p->kind != VSW_SWITCH_INTERNAL &&
        p->kind != VSW_SWITCH_EXTERNAL)
        return -EINVAL;
    if (vsw_switch_find(dp, p->name))
        return -EEXIST;
    unsigned id = VSW_MAX_SWITCHES;
    for (unsigned i = 0; i < VSW_MAX_SWITCHES; i++) {
        if (!dp->switches[i]) {
            id = i;
            break;
        }
    }
    if (id == VSW_MAX_SWITCHES)
        return -ENOSPC;
    struct vsw_switch *sw = calloc(1, sizeof(*sw));
    if (!sw)
        return -ENOMEM;
    sw->dp = dp;
    sw->id = (uint16_t)id;
    snprintf(sw->name, sizeof(sw->name), "%s", p->name);
    sw->kind = p->kind;
    sw->mtu = p->mtu;
    uint32_t fdb_max = p->fdb_max ? p->fdb_max : 8192;
    sw->aging_s = p->fdb_aging_s ? p->fdb_aging_s : 300;
    if (fdb_max < 16 || fdb_max > (1u << 20) || sw->aging_s < 10) {
        free(sw);
        return -EINVAL;
    }
    sw->ports = vsw_port_set_with(NULL, NULL, NULL);
    int rc = sw->ports ? vsw_fdb_init(sw, fdb_max) : -ENOMEM;
    if (rc < 0) {
        free(sw->ports);
        free(sw);
        return rc;
    }
    dp->switches[id] = sw;
    *out = sw;
    return 0;
}

int vsw_switch_destroy(struct vsw_switch *sw)
{
    if (!sw)
        return 0;
    if (sw->ports->n)
        return -EBUSY;
    free(sw->mirror);
    sw->dp->switches[sw->id] = NULL;
    /* FDB keys deleted lately wait in the hash's RCU defer queue, and
     * rte_hash_free() only checks (does not wait) that workers moved on:
     * anything still pending there would leak the queue, and its name with
     * it, so that the next switch in this slot could not be created. */
    rte_rcu_qsbr_synchronize(sw->dp->qsbr, RTE_QSBR_THRID_INVALID);
    vsw_fdb_fini(sw);
    free(sw->ports);
    free(sw);
    return 0;
}

const char *vsw_switch_name(const struct vsw_switch *sw)
{
    return sw->name;
}

struct vsw_switch *vsw_switch_find(const struct vsw_dp *dp, const char *name)
{
    for (unsigned i = 0; i < VSW_MAX_SWITCHES; i++)
        if (dp->switches[i] && strcmp(dp->switches[i]->name, name) == 0)
            return dp->switches[i];
    return NULL;
}

unsigned vsw_switch_ports(const struct vsw_switch *sw, struct vsw_port **out, unsigned max)
{
    const struct vsw_port_set *s = sw->ports;
    for (unsigned i = 0; i < s->n && i < max; i++)
        out[i] = s->ports[i];
    return s->n;
}

void vsw_port_init(struct vsw_port *port, const struct vsw_port_class *cls, const char *name)
{
    memset(port, 0, sizeof(*port));
    port->cls = cls;
    snprintf(port->name, sizeof(port->name), "%s", name);
    port->index = UINT16_MAX;
    port->max_frame = jumbo_frame(JUMBO_MTU_DEFAULT);
    port->rx_max_frame = port->max_frame;
    port->wait_fd_registered = -1;
    port->pin_lcore = VSW_PIN_AUTO;
    port->vmq_weight = VSW_VMQ_WEIGHT_DEFAULT;
    port->take_by = VSW_WORKER_NONE;
}

/* Ports that were never given a policy share this one: untagged, no guards,
 * no limits (so never written by a worker). */
static struct vsw_policy_full default_policy;

static void policy_free(struct vsw_policy_rt *rt)
{
    if (rt && rt != &default_policy.rt)
        rte_free(container_of(rt, struct vsw_policy_full, rt));
}

int vsw_port_set_policy(struct vsw_port *port, const struct vsw_port_policy *pol)
{
    if (pol->access_vlan > VSW_VLAN_MAX || pol->native_vlan > VSW_VLAN_MAX ||
        (pol->trunk && pol->access_vlan) || (!pol->trunk && pol->native_vlan) ||
        (pol->allowed[0] & 1) || (pol->allowed[63] >> 63))
        return -EINVAL;
    struct vsw_policy_full *pf =
        rte_zmalloc("vsw_policy", sizeof(*pf), RTE_CACHE_LINE_SIZE);
    if (!pf)
        return -ENOMEM;
    pf->rt.pol = *pol;
    if (pol->max_mbps) {
        /* Committed rate in bytes/s. A policer drops what a shaper would
         * queue, so the bucket must hold a TCP window's worth or TCP backs
         * off far below the rate: 100 ms of it, at least 64 KiB. */
        uint64_t cir = (uint64_t)pol->max_mbps * 125000u;
        uint64_t cbs = cir / 10;
        if (cbs < 65536)
            cbs = 65536;
        struct rte_meter_srtcm_params mp = {.cir = cir, .cbs = cbs, .ebs = cbs};
        if (rte_meter_srtcm_profile_config(&pf->prof, &mp) != 0 ||
            rte_meter_srtcm_config(&pf->meter, &pf->prof) != 0) {
            rte_free(pf);
            return -EINVAL;
        }
        pf->metered = true;
    }
    struct vsw_policy_rt *old = port->policy;
    __atomic_store_n(&port->policy, &pf->rt, __ATOMIC_RELEASE);
    if (port->sw)
        rte_rcu_qsbr_synchronize(port->sw->dp->qsbr, RTE_QSBR_THRID_INVALID);
    policy_free(old);
    return 0;
}

void vsw_port_get_policy(const struct vsw_port *port, struct vsw_port_policy *out)
{
    const struct vsw_policy_rt *rt = __atomic_load_n(&port->policy, __ATOMIC_ACQUIRE);
    if (rt)
        *out = rt->pol;
    else
        memset(out, 0, sizeof(*out));
}

const char *vsw_port_name(const struct vsw_port *port)
{
    return port->name;
}

struct vsw_switch *vsw_port_switch(const struct vsw_port *port)
{
    return port->sw;
}

void vsw_port_set_max_frame(struct vsw_port *port, uint32_t frame_len)
{
    __atomic_store_n(&port->max_frame, frame_len, __ATOMIC_RELAXED);
    __atomic_store_n(&port->rx_max_frame, frame_len, __ATOMIC_RELAXED);
}

void vsw_port_set_rx_max_frame(struct vsw_port *port, uint32_t frame_len)
{
    __atomic_store_n(&port->rx_max_frame, frame_len, __ATOMIC_RELAXED);
}

void vsw_port_get_stats(const struct vsw_port *port, struct vsw_port_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned l = 0; l < RTE_MAX_LCORE; l++) {
        const struct vsw_port_counters *c = &port->counters[l];
        out->rx_packets += c->rx_packets;
        out->rx_bytes += c->rx_bytes;
        out->tx_packets += c->tx_packets;
        out->tx_bytes += c->tx_bytes;
        for (int d = 0; d < VSW_DROP_COUNT; d++)
            out->drops[d] += c->drops[d];
    }
}

static int register_wait_fd(struct vsw_worker *w, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int port_wait_fd(struct vsw_port *port)
{
    return port->cls->wait_fd ? port->cls->wait_fd(port) : -1;
}

void vsw_worker_watch_port(struct vsw_worker *w, struct vsw_port *port)
{
    int fd = port_wait_fd(port);
    port->wait_fd_registered = fd >= 0 && register_wait_fd(w, fd) == 0 ? fd : -1;
}

void vsw_worker_unwatch_port(struct vsw_worker *w, struct vsw_port *port)
{
    if (port->wait_fd_registered >= 0)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, port->wait_fd_registered, NULL);
    port->wait_fd_registered = -1;
}

int vsw_port_attach(struct vsw_switch *sw, struct vsw_port *port)
{
    struct vsw_dp *dp = sw->dp;
    if (port->sw)
        return -EBUSY;
    unsigned idx = VSW_MAX_PORTS;
    for (unsigned i = 0; i < VSW_MAX_PORTS; i++) {
        if (!dp->ports[i]) {
            idx = i;
            break;
        }
    }
    if (idx == VSW_MAX_PORTS)
        return -ENOSPC;
    unsigned wi = vsw_place_pick(sw, port);
    struct vsw_worker *w = &dp->workers[wi];

    char rname[RTE_RING_NAMESIZE];
    snprintf(rname, sizeof(rname), "vsw_ho_%u_%u", idx, dp->port_gen[idx]);
    port->handoff = rte_ring_create(rname, VSW_HANDOFF_SIZE, (int)rte_socket_id(), RING_F_SC_DEQ);
    if (!port->handoff)
        return -ENOMEM;
    struct vsw_port_set *sw_set = vsw_port_set_with(sw->ports, port, NULL);
    port->index = (uint16_t)idx;
    port->worker = (uint16_t)wi;
    port->tx_worker = (uint16_t)wi;
    port->sw = sw;
    port->sample_cycles = __atomic_load_n(&port->busy_cycles, __ATOMIC_RELAXED);
    port->load_pct = 0;
    port->load_avg = -1.0;
    struct vsw_port_set *w_set = vsw_port_set_with(w->ports, port, NULL);
    if (!sw_set || !w_set) {
        free(sw_set);
        free(w_set);
        rte_ring_free(port->handoff);
        port->handoff = NULL;
        port->sw = NULL;
        return -ENOMEM;
    }
    vsw_worker_watch_port(w, port);
    if (!port->policy)
        port->policy = &default_policy.rt;

    struct vsw_port_set *old_sw = sw->ports, *old_w = w->ports;
    __atomic_store_n(&dp->ports[idx], port, __ATOMIC_RELEASE);
    __atomic_store_n(&sw->ports, sw_set, __ATOMIC_RELEASE);
    __atomic_store_n(&w->ports, w_set, __ATOMIC_RELEASE);
    w->nports_ctl++;
    vsw_worker_wake(w);
    rte_rcu_qsbr_synchronize(dp->qsbr, RTE_QSBR_THRID_INVALID);
    free(old_sw);
    free(old_w);
    vsw_place_followers(port);
    return 0;
}

void vsw_port_detach(struct vsw_port *port)
{
    struct vsw_switch *sw = port->sw;
    if (!sw)
        return;
    struct vsw_dp *dp = sw->dp;
    struct vsw_worker *w = &dp->workers[port->worker];
    if (sw->mirror) {
        bool involved = sw->mirror->dst == port;
        for (unsigned i = 0; i < sw->mirror->nsrc; i++)
            involved |= sw->mirror->src[i] == port;
        if (involved)
            vsw_mirror_clear(sw);
    }
    struct vsw_port_set *sw_set = vsw_port_set_with(sw->ports, NULL, port);
    struct vsw_port_set *w_set = vsw_port_set_with(w->ports, NULL, port);
    while (!sw_set || !w_set) {
        /* Cannot leave a port half-attached: retry the two small allocations. */
        free(sw_set);
        free(w_set);
        usleep(1000);
        sw_set = vsw_port_set_with(sw->ports, NULL, port);
        w_set = vsw_port_set_with(w->ports, NULL, port);
    }
    struct vsw_port_set *old_sw = sw->ports, *old_w = w->ports;
    __atomic_store_n(&dp->ports[port->index], NULL, __ATOMIC_RELEASE);
    __atomic_store_n(&sw->ports, sw_set, __ATOMIC_RELEASE);
    __atomic_store_n(&w->ports, w_set, __ATOMIC_RELEASE);
    w->nports_ctl--;
    vsw_worker_wake(w);
    rte_rcu_qsbr_synchronize(dp->qsbr, RTE_QSBR_THRID_INVALID);
    /* No worker holds the port now. */
    vsw_worker_unwatch_port(w, port);
    free(old_sw);
    free(old_w);
    /* Handed over by other workers after the owner last drained the ring:
     * nobody will send them now. */
    struct rte_mbuf *pkts[VSW_BURST];
    unsigned n;
    while ((n = rte_ring_sc_dequeue_burst(port->handoff, (void **)pkts, VSW_BURST, NULL)) > 0) {
        vsw_port_drop(port, VSW_DROP_LINK_DOWN, n);
        rte_pktmbuf_free_bulk(pkts, n);
    }
    rte_ring_free(port->handoff);
    port->handoff = NULL;
    vsw_fdb_flush_port(sw, port->index);
    dp->port_gen[port->index]++;
    port->sw = NULL;
    port->index = UINT16_MAX;
}

void vsw_port_destroy(struct vsw_port *port)
{
    if (!port)
        return;
    vsw_port_detach(port);
    /* Detached: no worker holds the policy or the capture any more. A
     * capture outlives its port: its owner reads what is left, sees
     * vsw_capture_port_gone() and stops it. */
    struct vsw_capture *cap = __atomic_load_n(&port->capture, __ATOMIC_ACQUIRE);
    if (cap) {
        __atomic_store_n(&port->capture, NULL, __ATOMIC_RELEASE);
        __atomic_store_n(&cap->port, NULL, __ATOMIC_RELEASE);
    }
    policy_free(port->policy);
    port->policy = NULL;
    port->cls->destroy(port);
}

void vsw_port_wait_fd_changed(struct vsw_port *port)
{
    if (!port->sw)
        return;
    struct vsw_worker *w = &port->sw->dp->workers[port->worker];
    int fd = port_wait_fd(port);
    /* Always register again, even under the same number: a descriptor
     * closed and reopened (a channel closed and opened again) gets the
     * same number back, and epoll forgot the old one when it closed. */
    if (port->wait_fd_registered >= 0)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, port->wait_fd_registered, NULL);
    port->wait_fd_registered = -1;
    if (fd >= 0 && register_wait_fd(w, fd) == 0)
        port->wait_fd_registered = fd;
    vsw_worker_wake(w);
}

int vsw_mirror_set(struct vsw_switch *sw, struct vsw_port *const *srcs, unsigned nsrc,
                   struct vsw_port *dst)
{
    if (!dst || dst->sw != sw || nsrc == 0)
        return -EINVAL;
    for (unsigned i = 0; i < nsrc; i++)
        if (!srcs[i] || srcs[i]->sw != sw || srcs[i] == dst)
            return -EINVAL;
    struct vsw_mirror *m = malloc(sizeof(*m) + sizeof(m->src[0]) * nsrc);
    if (!m)
        return -ENOMEM;
    vsw_mirror_clear(sw);
    m->dst = dst;
    m->nsrc = nsrc;
    for (unsigned i = 0; i < nsrc; i++) {
        m->src[i] = srcs[i];
        __atomic_store_n(&srcs[i]->mirror_to, dst, __ATOMIC_RELEASE);
    }
    sw->mirror = m;
    return 0;
}

void vsw_mirror_clear(struct vsw_switch *sw)
{
    struct vsw_mirror *m = sw->mirror;
    if (!m)
        return;
    for (unsigned i = 0; i < m->nsrc; i++)
        __atomic_store_n(&m->src[i]->mirror_to, NULL, __ATOMIC_RELEASE);
    sw->mirror = NULL;
    /* Workers may still stage copies for the destination this round; that
     * is harmless (it is attached). Wait anyway so a detach right after
     * sees no stragglers. */
    rte_rcu_qsbr_synchronize(sw->dp->qsbr, RTE_QSBR_THRID_INVALID);
    free(m);
}

int vsw_capture_start(struct vsw_port *port, unsigned ring_size, struct vsw_capture **out)
{
    if (!port->sw)
        return -ENODEV;
    if (__atomic_load_n(&port->capture, __ATOMIC_ACQUIRE))
        return -EBUSY;
    struct vsw_capture *cap = calloc(1, sizeof(*cap));
    if (!cap)
        return -ENOMEM;
    static unsigned seq;
    char name[RTE_RING_NAMESIZE];
    snprintf(name, sizeof(name), "vsw_cap_%u", seq++);
    cap->ring = rte_ring_create(name, rte_align32pow2(ring_size < 64 ? 64 : ring_size),
                                (int)rte_socket_id(), RING_F_SC_DEQ);
    if (!cap->ring) {
        free(cap);
        return -ENOMEM;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    cap->base_tsc = rte_get_tsc_cycles();
    cap->base_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    cap->port = port;
    cap->dp = port->sw->dp;
    cap->pool = port->sw->dp->pool;
    __atomic_store_n(&port->capture, cap, __ATOMIC_RELEASE);
    *out = cap;
    return 0;
}

unsigned vsw_capture_read(struct vsw_capture *cap, struct rte_mbuf **pkts, uint64_t *ts_ns,
                          unsigned n)
{
    unsigned got = rte_ring_sc_dequeue_burst(cap->ring, (void **)pkts, n, NULL);
    uint64_t hz = cap->dp->tsc_hz;
    for (unsigned i = 0; i < got; i++) {
        uint64_t tsc = *RTE_MBUF_DYNFIELD(pkts[i], cap->dp->ts_offset, uint64_t *);
        uint64_t d = tsc > cap->base_tsc ? tsc - cap->base_tsc : 0;
        /* d * 1e9 / hz without overflowing 64 bits. */
        ts_ns[i] = cap->base_ns + d / hz * 1000000000ull + d % hz * 1000000000ull / hz;
    }
    return got;
}

bool vsw_capture_port_gone(const struct vsw_capture *cap)
{
    return __atomic_load_n(&cap->port, __ATOMIC_ACQUIRE) == NULL;
}

uint64_t vsw_capture_dropped(const struct vsw_capture *cap)
{
    return __atomic_load_n(&cap->dropped, __ATOMIC_RELAXED);
}

void vsw_capture_stop(struct vsw_capture *cap)
{
    if (!cap)
        return;
    struct vsw_port *port = cap->port;
    if (port) {
        __atomic_store_n(&port->capture, NULL, __ATOMIC_RELEASE);
        rte_rcu_qsbr_synchronize(cap->dp->qsbr, RTE_QSBR_THRID_INVALID);
    }
    struct rte_mbuf *pkts[VSW_BURST];
    unsigned n;
    while ((n = rte_ring_sc_dequeue_burst(cap->ring, (void **)pkts, VSW_BURST, NULL)) > 0)
        rte_pktmbuf_free_bulk(pkts, n);
    rte_ring_free(cap->ring);
    free(cap);
}

void vsw_port_kick(struct vsw_port *port)
{
    struct vsw_switch *sw = __atomic_load_n(&port->sw, __ATOMIC_ACQUIRE);
    if (sw)
        vsw_worker_wake(&sw->dp->workers[port->worker]);
}

void vsw_port_synchronize(struct vsw_port *port)
{
    if (port->sw)
        rte_rcu_qsbr_synchronize(port->sw->dp->qsbr, RTE_QSBR_THRID_INVALID);
}
