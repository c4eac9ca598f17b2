/*
 * vswitchd's statistics through DPDK telemetry, for dpdk-telemetry.py and
 * other telemetry clients:
 *
 *   /hvnet/switches          names of the switches
 *   /hvnet/switch,NAME       a switch: kind, MTU, uplink, FDB, its ports
 *   /hvnet/ports             names of all ports (as `vswitch-ctl stats` takes them)
 *   /hvnet/port,NAME         one port's counters, drops by reason, link, VLAN,
 *                            vmq_queues (the queues its worker serves: vmq-show)
 *   /hvnet/control           requests on the control socket, refusals by kind
 *   /hvnet/workers           each switch worker's worker-show figures, keys
 *                            prefixed workerN_, dynamic VMQ's placement_
 *                            (reals as text: telemetry has no floating-point
 *                            values in this DPDK)
 *
 * Telemetry answers on its own threads, while the model belongs to the
 * control thread and changes under it. So a request asks the control thread
 * (an eventfd in its epoll loop) for a fresh snapshot, waits up to half a
 * second for it, and answers from the snapshot, which only the mutex
 * guards. If the control thread is busy longer, the last snapshot is used.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <rte_telemetry.h>

#include "vswitchd.h"

#define TEL_WAIT_MS 500

static struct {
    pthread_mutex_t lock;
    pthread_cond_t fresh;
    int efd;
    uint64_t asked, made; /* snapshot generations */
    json_t *stats;        /* vsd_stats() of the whole host */
    json_t *switches;     /* switch-show of every switch, by name */
    json_t *workers;      /* worker-show */
    bool ready;
} tel = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .fresh = PTHREAD_COND_INITIALIZER,
    .efd = -1,
};

/* Telemetry thread: ask for a snapshot newer than the current one and wait
 * for it a little. Called and returns with the lock held. */
static void want_fresh(void)
{
    uint64_t want = ++tel.asked;
    uint64_t one = 1;
    if (write(tel.efd, &one, sizeof(one)) != sizeof(one))
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += TEL_WAIT_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (tel.ready && tel.made < want)
        if (pthread_cond_timedwait(&tel.fresh, &tel.lock, &until) == ETIMEDOUT)
            break;
}

/* Names in telemetry dicts: letters, digits, _ (nested keys joined by _). */
static void add_value(struct rte_tel_data *t, const char *name, const json_t *v)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x >= 0)
            rte_tel_data_add_dict_u64(t, name, (uint64_t)x);
        else
            rte_tel_data_add_dict_int(t, name, (int)x);
    } else if (json_is_boolean(v)) {
        rte_tel_data_add_dict_int(t, name, json_is_true(v));
    } else if (json_is_string(v)) {
        char s[RTE_TEL_MAX_STRING_LEN];
        snprintf(s, sizeof(s), "%s", json_string_value(v));
        rte_tel_data_add_dict_string(t, name, s);
    } else if (json_is_real(v)) {
        char s[32];
        snprintf(s, sizeof(s), "%.2f", json_real_value(v));
        rte_tel_data_add_dict_string(t, name, s);
    } else if (json_is_array(v)) {
        /* Short lists (trunk VLANs, mirror sources) as text. */
        char *s = json_dumps(v, JSON_COMPACT);
        if (s && strlen(s) < RTE_TEL_MAX_STRING_LEN)
            rte_tel_data_add_dict_string(t, name, s);
        free(s);
    }
}

static void add_flat(struct rte_tel_data *t, const char *prefix, const json_t *o)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        char name[RTE_TEL_MAX_STRING_LEN];
        if (prefix)
            snprintf(name, sizeof(name), "%s_%s", prefix, k);
        else
            snprintf(name, sizeof(name), "%s", k);
        if (json_is_object(v))
            add_flat(t, name, v);
        else
            add_value(t, name, v);
    }
}

static const json_t *find_port(const char *name)
{
    const json_t *ports = json_object_get(tel.stats, "ports");
    size_t i;
    const json_t *p;
    json_array_foreach(ports, i, p)
    {
        const char *pn = json_string_value(json_object_get(p, "port"));
        if (pn && strcmp(pn, name) == 0)
            return p;
    }
    return NULL;
}

/* The queues worker-show lists for a port (vmq-show's rows of it): -1 if
 * no worker polls it. */
static long port_queues(const char *name)
{
    size_t i, j;
    const json_t *w, *p;
    json_array_foreach(json_object_get(tel.workers, "workers"), i, w)
        json_array_foreach(json_object_get(w, "ports"), j, p)
        {
            const char *pn = json_string_value(json_object_get(p, "port"));
            if (pn && strcmp(pn, name) == 0)
                return (long)json_array_size(json_object_get(p, "queues"));
        }
    return -1;
}

static int tel_cmd(const char *cmd, const char *params, struct rte_tel_data *t)
{
    int rc = 0;
    pthread_mutex_lock(&tel.lock);
    if (!tel.ready) {
        pthread_mutex_unlock(&tel.lock);
        return -EAGAIN;
    }
    want_fresh();
    if (!tel.stats || !tel.switches || !tel.workers) {
        rc = -EAGAIN;
    } else if (strcmp(cmd, "/hvnet/switches") == 0) {
        rte_tel_data_start_array(t, RTE_TEL_STRING_VAL);
        const char *k;
        const json_t *v;
        json_object_foreach(tel.switches, k, v)
            rte_tel_data_add_array_string(t, k);
    } else if (strcmp(cmd, "/hvnet/ports") == 0) {
        rte_tel_data_start_array(t, RTE_TEL_STRING_VAL);
        size_t i;
        const json_t *p;
        json_array_foreach(json_object_get(tel.stats, "ports"), i, p)
        {
            const char *pn = json_string_value(json_object_get(p, "port"));
            if (pn)
                rte_tel_data_add_array_string(t, pn);
        }
    } else if (strcmp(cmd, "/hvnet/workers") == 0) {
        rte_tel_data_start_dict(t);
        add_value(t, "tsc_hz", json_object_get(tel.workers, "tsc_hz"));
        /* Dynamic VMQ and its moves: placement_moves, placement_spread_moves... */
        add_flat(t, "placement", json_object_get(tel.workers, "placement"));
        size_t i;
        const json_t *w;
        json_array_foreach(json_object_get(tel.workers, "workers"), i, w)
        {
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "worker%zu", i);
            const char *k;
            const json_t *v;
            json_object_foreach((json_t *)w, k, v)
            {
                char name[RTE_TEL_MAX_STRING_LEN];
                snprintf(name, sizeof(name), "%s_%s", prefix, k);
                if (strcmp(k, "ports") != 0) {
                    add_value(t, name, v);
                    continue;
                }
                /* The names; their counters are in /hvnet/port,NAME. */
                struct rte_tel_data *arr = rte_tel_data_alloc();
                if (!arr)
                    continue;
                rte_tel_data_start_array(arr, RTE_TEL_STRING_VAL);
                size_t j;
                const json_t *p;
                json_array_foreach(v, j, p)
                {
                    const char *pn = json_string_value(json_object_get(p, "port"));
                    if (pn)
                        rte_tel_data_add_array_string(arr, pn);
                }
                if (rte_tel_data_add_dict_container(t, name, arr, 0) < 0)
                    rte_tel_data_free(arr);
            }
        }
    } else if (strcmp(cmd, "/hvnet/control") == 0) {
        rte_tel_data_start_dict(t);
        add_flat(t, NULL, json_object_get(tel.stats, "control"));
    } else if (strcmp(cmd, "/hvnet/switch") == 0) {
        const json_t *s = params ? json_object_get(tel.switches, params) : NULL;
        if (!s) {
            rc = -EINVAL;
        } else {
            rte_tel_data_start_dict(t);
            const char *k;
            const json_t *v;
            json_object_foreach((json_t *)s, k, v)
            {
                if (strcmp(k, "ports") == 0 && json_is_array(v)) {
                    struct rte_tel_data *arr = rte_tel_data_alloc();
                    if (!arr)
                        continue;
                    rte_tel_data_start_array(arr, RTE_TEL_STRING_VAL);
                    size_t i;
                    const json_t *p;
                    json_array_foreach(v, i, p)
                    {
                        const char *pn = json_string_value(json_object_get(p, "port"));
                        if (pn)
                            rte_tel_data_add_array_string(arr, pn);
                    }
                    rte_tel_data_add_dict_container(t, "ports", arr, 0);
                } else if (json_is_object(v)) {
                    add_flat(t, k, v);
                } else {
                    add_value(t, k, v);
                }
            }
        }
    } else if (strcmp(cmd, "/hvnet/port") == 0) {
        const json_t *p = params ? find_port(params) : NULL;
        if (!p) {
            rc = -EINVAL;
        } else {
            rte_tel_data_start_dict(t);
            add_flat(t, NULL, p);
            long nq = port_queues(params);
            if (nq >= 0)
                rte_tel_data_add_dict_u64(t, "vmq_queues", (uint64_t)nq);
        }
    } else {
        rc = -EINVAL;
    }
    pthread_mutex_unlock(&tel.lock);
    return rc;
}

int vsd_telemetry_init(void)
{
    /* DPDK refuses a help text of RTE_TEL_MAX_STRING_LEN (128) characters
     * or more, and one refusal fails the whole of hvnet's telemetry:
     * test_telemetry.sh would see no /hvnet commands. Keep them short. */
    static const struct {
        const char *cmd, *help;
    } cmds[] = {
        {"/hvnet/switches", "Names of the switches. Takes no parameters."},
        {"/hvnet/switch", "A switch: kind, MTU, uplink, FDB and ports. Parameter: switch name."},
        {"/hvnet/ports", "Names of all switch ports. Takes no parameters."},
        {"/hvnet/port",
         "A port's counters and drops by reason. Parameter: VM/NIC, a host vNIC or SWITCH:uplink."},
        {"/hvnet/control", "Control-socket requests and refusals. Takes no parameters."},
        {"/hvnet/workers", "Switch workers' cycles and packets (worker-show). No parameters."},
    };
    tel.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (tel.efd < 0)
        return -errno;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        int rc = rte_telemetry_register_cmd(cmds[i].cmd, tel_cmd, cmds[i].help);
        if (rc < 0)
            return rc;
    }
    pthread_mutex_lock(&tel.lock);
    tel.ready = true;
    pthread_mutex_unlock(&tel.lock);
    return 0;
}

int vsd_telemetry_fd(void)
{
    return tel.efd;
}

/* Control thread: a telemetry request is waiting; take a snapshot, with
 * the control protocol's own methods (stats, switch-list, switch-show), so
 * that telemetry shows what vswitch-ctl shows. */
void vsd_telemetry_refresh(struct vsd_methods *t)
{
    uint64_t n;
    if (read(tel.efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        return;
    struct vsd_err e = {0};
    json_t *all = json_object();
    json_t *stats = NULL, *list = NULL, *workers = NULL;
    if (all)
        vsd_methods_call(t, "stats", all, &stats, &e);
    if (all)
        vsd_methods_call(t, "worker-show", all, &workers, &e);
    json_t *sws = json_object();
    if (all)
        vsd_methods_call(t, "switch-list", all, &list, &e);
    json_decref(all);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(list, "switches"), i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        json_t *q = json_pack("{s:s}", "name", name);
        json_t *show = NULL;
        if (q)
            vsd_methods_call(t, "switch-show", q, &show, &e);
        json_decref(q);
        if (show)
            json_object_set_new(sws, name, show);
    }
    json_decref(list);
    pthread_mutex_lock(&tel.lock);
    json_decref(tel.stats);
    json_decref(tel.switches);
    json_decref(tel.workers);
    tel.stats = stats;
    tel.switches = sws;
    tel.workers = workers;
    tel.made = tel.asked;
    pthread_cond_broadcast(&tel.fresh);
    pthread_mutex_unlock(&tel.lock);
}

/* Shutdown: requests from now on are refused (telemetry has no way to
 * unregister a command). */
void vsd_telemetry_fini(void)
{
    pthread_mutex_lock(&tel.lock);
    tel.ready = false;
    json_decref(tel.stats);
    json_decref(tel.switches);
    json_decref(tel.workers);
    tel.stats = tel.switches = tel.workers = NULL;
    pthread_cond_broadcast(&tel.fresh);
    pthread_mutex_unlock(&tel.lock);
}
