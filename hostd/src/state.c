/*
 * The state file: the host's configuration, rebuilt at start.
 *
 * Saving is atomic: the whole state goes to a temporary file in the same
 * directory, which is fsynced and renamed over the old one, and then the
 * directory is fsynced. A crash (even kill -9 mid-write) leaves the old file
 * or the new one, never a mix. The temporary file is created new
 * (O_EXCL|O_NOFOLLOW): vswitchd runs as root, and whatever already sits at
 * that name (a link planted to make it truncate another file, say) is
 * refused, never opened or removed. Loading refuses anything it does not fully
 * understand rather than guessing, and never rewrites the file it could not
 * read.
 */
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jumbo.h"
#include "vsw-placement.h"
#include "control-private.h"

#define STATE_FORMAT "hvnet-state"
#define STATE_VERSION 1

static json_t *switch_to_json(const struct vsd_switch *s)
{
    char mac[18];
    vsd_format_mac(s->host_mac, mac);
    json_t *o = json_pack("{s:s,s:s,s:i,s:i,s:i,s:s,s:b}", "name", s->name, "type",
                          vsw_switch_kind_name(s->kind), "mtu", (json_int_t)s->mtu, "fdb_max",
                          (json_int_t)s->fdb_max, "fdb_aging", (json_int_t)s->fdb_aging,
                          "host_mac", mac, "allow_management_os", s->allow_mgmt);
    if (s->kind == VSW_SWITCH_EXTERNAL)
        json_object_set_new(o, "uplink", json_string(s->uplink));
    if (s->mgmt_vlan)
        json_object_set_new(o, "management_vlan", json_integer(s->mgmt_vlan));
    json_t *st = json_array();
    for (int i = 0; i < s->nstatics; i++) {
        vsd_format_mac(s->statics[i].mac, mac);
        json_array_append_new(st, json_pack("{s:s,s:i,s:s}", "mac", mac, "vlan",
                                            (json_int_t)s->statics[i].vlan, "port",
                                            s->statics[i].port));
    }
    json_object_set_new(o, "static_fdb", st);
    if (s->mirror.on)
        json_object_set_new(o, "mirror", vsd_mirror_json(&s->mirror));
    return o;
}

/* A switch as saved: the settings switch-add takes, then its identity,
 * kind and configuration. */
static int switch_restore(struct vsd *d, const json_t *o, struct vsd_err *e)
{
    /* Keys absent from the file keep their defaults. */
    static const char *const copy[] = {"name", "mtu", "fdb_max", "fdb_aging", "management_vlan"};
    json_t *p = json_pack("{s:s}", "type", "private");
    for (size_t k = 0; p && k < sizeof(copy) / sizeof(copy[0]); k++) {
        json_t *v = json_object_get(o, copy[k]);
        if (v)
            json_object_set(p, copy[k], v);
    }
    struct vsd_switch_saved sv = {0};
    int rc = p ? vsd_switch_params_from_json(p, &sv.cfg, e)
               : vsd_fail(e, VSD_FAILED, "out of memory");
    if (rc < 0) {
        json_decref(p);
        return -1;
    }
    /* sv.cfg.name points into p until the switch is made. */
    const char *name = sv.cfg.name;
    struct vsd_static_entry *statics = NULL;
    rc = -1;
    const char *mac = json_string_value(json_object_get(o, "host_mac"));
    if (mac && vsd_parse_mac(mac, sv.host_mac) < 0) {
        vsd_fail(e, VSD_FAILED, "switch %s: bad host_mac", name);
        goto out;
    }
    sv.has_host_mac = mac != NULL;
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!type || vsw_switch_kind_parse(type, &sv.cfg.kind) < 0) {
        vsd_fail(e, VSD_FAILED, "switch %s: bad type", name);
        goto out;
    }
    sv.cfg.uplink = json_string_value(json_object_get(o, "uplink"));
    sv.cfg.allow_mgmt = json_is_true(json_object_get(o, "allow_management_os"));
    json_t *st = json_object_get(o, "static_fdb");
    statics = calloc(VSD_MAX_STATICS, sizeof(*statics));
    if (!statics) {
        vsd_fail(e, VSD_FAILED, "out of memory");
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(st, i, v)
    {
        /* More than a switch can have: the rest are not read (as before). */
        if (sv.nstatics == VSD_MAX_STATICS)
            break;
        struct vsd_static_entry *se = &statics[sv.nstatics];
        const char *m = json_string_value(json_object_get(v, "mac"));
        const char *port = json_string_value(json_object_get(v, "port"));
        json_t *vl = json_object_get(v, "vlan");
        if (!m || vsd_parse_mac(m, se->mac) < 0 || !port || !json_is_integer(vl) ||
            json_integer_value(vl) < 0 || json_integer_value(vl) > VSW_VLAN_MAX) {
            vsd_fail(e, VSD_FAILED, "switch %s: static FDB entry %zu is malformed", name, i);
            goto out;
        }
        se->vlan = (uint16_t)json_integer_value(vl);
        snprintf(se->port, sizeof(se->port), "%s", port);
        sv.nstatics++;
    }
    sv.statics = statics;
    json_t *mir = json_object_get(o, "mirror");
    if (mir) {
        json_t *src = json_object_get(mir, "src");
        const char *dst = json_string_value(json_object_get(mir, "dst"));
        if (!json_is_array(src) || !dst || json_array_size(src) == 0 ||
            json_array_size(src) > VSD_MIRROR_SRC_MAX) {
            vsd_fail(e, VSD_FAILED, "switch %s: mirror is malformed", name);
            goto out;
        }
        sv.mirror.on = true;
        json_array_foreach(src, i, v)
        {
            const char *sp = json_string_value(v);
            if (!sp) {
                vsd_fail(e, VSD_FAILED, "switch %s: mirror is malformed", name);
                goto out;
            }
            snprintf(sv.mirror.src[sv.mirror.nsrc++], VSD_PORT_NAME_MAX + 1, "%s", sp);
        }
        snprintf(sv.mirror.dst, sizeof(sv.mirror.dst), "%s", dst);
    }
    rc = vsd_switch_restore(d, &sv, e);
out:
    free(statics);
    json_decref(p);
    return rc;
}

static json_t *nic_to_json(const struct vsd_nic *n)
{
    char mac[18], inst[33];
    vsd_format_mac(n->mac, mac);
    for (int i = 0; i < 16; i++)
        snprintf(inst + 2 * i, 3, "%02x", n->instance.b[i]);
    json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:s}", "name", n->name, "switch", n->sw->name, "mac",
                          mac, "mtu", (json_int_t)n->mtu, "instance", inst);
    json_t *opts = vsd_nic_opts_json(&n->opts);
    json_object_update(o, opts);
    json_decref(opts);
    return o;
}

/* A NIC with its saved identity: name, switch, MAC, MTU, instance id. */
static int nic_restore(struct vsd *d, struct vsd_vm *vm, const json_t *o, struct vsd_err *e)
{
    struct vsd_nic_saved sv = {
        .name = json_string_value(json_object_get(o, "name")),
        .sw = json_string_value(json_object_get(o, "switch")),
    };
    const char *mac_s = json_string_value(json_object_get(o, "mac"));
    const char *inst = json_string_value(json_object_get(o, "instance"));
    json_t *mtu = json_object_get(o, "mtu");
    if (!mac_s || vsd_parse_mac(mac_s, sv.mac) < 0 || !json_is_integer(mtu) ||
        json_integer_value(mtu) < JUMBO_MTU_MIN ||
        json_integer_value(mtu) > JUMBO_MTU_MAX || !inst ||
        strlen(inst) != 32)
        return vsd_fail(e, VSD_FAILED, "VM %s: NIC %s is malformed", vm->name,
                        sv.name ? sv.name : "?");
    sv.mtu = (uint32_t)json_integer_value(mtu);
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(inst + 2 * i, "%2x", &v) != 1)
            return vsd_fail(e, VSD_FAILED, "VM %s: NIC %s has a bad instance id", vm->name,
                            sv.name ? sv.name : "?");
        sv.instance.b[i] = (uint8_t)v;
    }
    /* The options are stored the way nic-set takes them. */
    json_t *p = json_deep_copy(o);
    if (!p)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    static const char *const drop[] = {"name", "switch", "mac", "mtu", "instance"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        json_object_del(p, drop[i]);
    if (json_object_get(p, "native_vlan") && !json_object_get(p, "trunk"))
        json_object_del(p, "native_vlan");
    int rc = vsd_nic_opts_from_json(p, &sv.opts, e);
    json_decref(p);
    return rc < 0 ? -1 : vsd_nic_restore(d, vm, &sv, e);
}

json_t *vsd_state_to_json(const struct vsd *d)
{
    json_t *sws = json_array(), *vms = json_array();
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i])
            json_array_append_new(sws, switch_to_json(d->switches[i]));
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        const struct vsd_vm *vm = d->vms[i];
        if (!vm)
            continue;
        json_t *nics = json_array();
        for (int j = 0; j < vm->nnics; j++)
            json_array_append_new(nics, nic_to_json(vm->nics[j]));
        json_t *v = json_pack("{s:s,s:s,s:i,s:i,s:b,s:b,s:o}", "name", vm->name, "netns",
                              vm->netns, "memory_mb", (json_int_t)vm->memory_mb, "cpus",
                              (json_int_t)vm->cpus, "running", vm->want_running, "netns_owned",
                              vm->netns_owned, "nics", nics);
        /* Written only when off: files stay as they were for the default. */
        if (v && !vm->guest_offloads)
            json_object_set_new(v, "guest_offloads", json_false());
        json_array_append_new(vms, v);
    }
    struct vsw_placement_stats ps = {.load_threshold = 80};
    if (d->dp)
        vsw_dp_placement_stats(d->dp, &ps);
    return json_pack("{s:s,s:i,s:o,s:o,s:b,s:i}", "format", STATE_FORMAT, "version", STATE_VERSION,
                     "switches", sws, "vms", vms, "dynamic_vmq", ps.dynamic,
                     "dynamic_vmq_threshold", (json_int_t)ps.load_threshold);
}

static int mkdir_p(const char *dir)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int vsd_state_save(struct vsd *d, struct vsd_err *e)
{
    json_t *st = vsd_state_to_json(d);
    char *text = st ? json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(st);
    if (!text)
        return vsd_fail(e, VSD_FAILED, "cannot encode the state");
    char dirbuf[PATH_MAX], tmp[PATH_MAX + 32];
    snprintf(dirbuf, sizeof(dirbuf), "%s", d->state_path);
    const char *dir = dirname(dirbuf);
    int rc = mkdir_p(dir);
    if (rc < 0) {
        free(text);
        return vsd_fail(e, VSD_FAILED, "cannot create %s: %s", dir, strerror(-rc));
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", d->state_path, (int)getpid());
    /* Our own leftovers were removed at load (remove_stale_temps) and a
     * save removes its temporary file when it fails, so anything at this
     * name now was put there by someone else. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int err = errno;
        free(text);
        if (err == EEXIST)
            return vsd_fail(e, VSD_FAILED,
                            "cannot save state: %s exists and was not made by this vswitchd "
                            "(remove it)",
                            tmp);
        return vsd_fail(e, VSD_FAILED, "cannot save state to %s: %s", tmp, strerror(err));
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        off += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1 || fsync(fd) < 0)
        goto fail;
    close(fd);
    free(text);
    if (rename(tmp, d->state_path) < 0) {
        int err = errno;
        unlink(tmp);
        return vsd_fail(e, VSD_FAILED, "cannot save state to %s: %s", d->state_path,
                        strerror(err));
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
fail:;
    int err = errno;
    close(fd);
    unlink(tmp);
    free(text);
    return vsd_fail(e, VSD_FAILED, "cannot save state to %s: %s", tmp, strerror(err));
}

static const char *str_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A save cut short (kill -9 between create and rename) leaves
 * "STATE.tmp.PID" behind; the state file itself is whole. Remove the
 * leftovers of processes that are gone, and one with our own PID, left by
 * an earlier process that had it (no save of ours has run yet). unlink()
 * removes a link, never what it points to. */
static void remove_stale_temps(const struct vsd *d)
{
    char pat[PATH_MAX + 16];
    snprintf(pat, sizeof(pat), "%s.tmp.*", d->state_path);
    glob_t g;
    if (glob(pat, GLOB_NOSORT, NULL, &g) != 0)
        return;
    size_t base = strlen(d->state_path) + strlen(".tmp.");
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char *end;
        long pid = strtol(g.gl_pathv[i] + base, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() ||
            (kill((pid_t)pid, 0) < 0 && errno == ESRCH)) {
            if (unlink(g.gl_pathv[i]) == 0)
                vsd_log("removed %s, left by an interrupted save", g.gl_pathv[i]);
        }
    }
    globfree(&g);
}

int vsd_state_load(struct vsd *d, struct vsd_err *e)
{
    json_error_t jerr;
    remove_stale_temps(d);
    if (access(d->state_path, F_OK) != 0 && errno == ENOENT)
        return 0;
    json_t *st = json_load_file(d->state_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!st)
        return vsd_fail(e, VSD_FAILED, "cannot read state file %s: %s (line %d)", d->state_path,
                        jerr.text, jerr.line);
    int rc = -1;
    json_t *sws = json_object_get(st, "switches"), *vms = json_object_get(st, "vms");
    const char *fmt = str_of(st, "format");
    json_t *ver = json_object_get(st, "version");
    if (!fmt || strcmp(fmt, STATE_FORMAT) != 0 || !json_is_integer(ver) ||
        json_integer_value(ver) != STATE_VERSION || !json_is_array(sws) || !json_is_array(vms)) {
        vsd_fail(e, VSD_FAILED, "state file %s is not an hvnet state file of version %d",
                 d->state_path, STATE_VERSION);
        goto out;
    }
    /* Files from before dynamic VMQ have none: off, as then. */
    json_t *dyn = json_object_get(st, "dynamic_vmq");
    json_t *thr = json_object_get(st, "dynamic_vmq_threshold");
    if ((dyn && !json_is_boolean(dyn)) ||
        (thr && (!json_is_integer(thr) || json_integer_value(thr) < 1 ||
                 json_integer_value(thr) > 100))) {
        vsd_fail(e, VSD_FAILED, "dynamic_vmq must be true or false, dynamic_vmq_threshold 1..100");
        goto bad;
    }
    size_t i;
    json_t *o;
    json_array_foreach(sws, i, o)
    {
        if (switch_restore(d, o, e) < 0)
            goto bad;
    }
    json_array_foreach(vms, i, o)
    {
        /* A file from before VMs had CPUs has no "cpus": one, as then;
         * none before guest offloads could be turned off has
         * "guest_offloads": on. */
        json_t *p = json_pack("{s:O?,s:O?,s:O?,s:O*,s:O*}", "name", json_object_get(o, "name"),
                              "netns", json_object_get(o, "netns"), "memory_mb",
                              json_object_get(o, "memory_mb"), "cpus",
                              json_object_get(o, "cpus"), "guest_offloads",
                              json_object_get(o, "guest_offloads"));
        struct vsd_vm_params vp;
        int r = p ? vsd_vm_params_from_json(p, &vp, e) : vsd_fail(e, VSD_FAILED, "out of memory");
        if (r == 0) {
            vp.restore = true;
            vp.want_running = json_is_true(json_object_get(o, "running"));
            vp.netns_owned = json_is_true(json_object_get(o, "netns_owned"));
            r = vsd_vm_add(d, &vp, NULL, e);
        }
        json_decref(p);
        if (r < 0)
            goto bad;
        struct vsd_vm *vm = vsd_find_vm(d, str_of(o, "name"));
        json_t *nics = json_object_get(o, "nics");
        if (!json_is_array(nics)) {
            vsd_fail(e, VSD_FAILED, "VM %s: no NIC list", vm->name);
            goto bad;
        }
        size_t j;
        json_t *n;
        json_array_foreach(nics, j, n)
        {
            if (nic_restore(d, vm, n, e) < 0)
                goto bad;
        }
    }
    if (d->dp) {
        vsw_dp_set_dynamic(d->dp, json_is_true(dyn));
        vsw_dp_set_load_threshold(d->dp, thr ? (unsigned)json_integer_value(thr) : 80);
    }
    vsd_restore_done(d);
    rc = 0;
    goto out;
bad:;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", e->msg);
    vsd_fail(e, VSD_FAILED, "state file %s: %s", d->state_path, msg);
    /* The switches, VMs and NICs made before the bad entry would otherwise
     * stay up, half a configuration, for a caller that was told the load
     * failed. None of them is running yet (VMs start below, after a whole
     * load), so they go again without side effects: d is empty, as it was. */
    vsd_shutdown(d);
out:
    json_decref(st);
    return rc;
}
