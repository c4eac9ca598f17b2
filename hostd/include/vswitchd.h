/*
 * vswitchd internals: the host model (switches, VMs, NICs), the state file,
 * the JSON-RPC server. Everything runs on the control thread (EAL main
 * lcore); the data plane runs on the workers.
 */
#ifndef VSWITCHD_H
#define VSWITCHD_H

#include <limits.h>
#include <stdbool.h>
#include <sched.h>
#include <stdint.h>

#include <jansson.h>

#include "hv-log.h"
#include "hv.h"
#include "vmbus-proto.h"
#include "vsd-methods.h"
#include "vsd-rpc.h"
#include "vsd-util.h"
#include "vsw.h"

#define VSD_NAME_MAX 31
#define VSD_NIC_NAME_MAX 15
#define VSD_MAX_SWITCHES 64
#define VSD_MAX_VMS 256
#define VSD_MAX_NICS 8
#define VSD_MEMORY_DEFAULT_MB 256
#define VSD_STOP_GRACE_S 5

struct vsd;
struct vsd_vm;
struct netvsc_tap_broker;

#define VSD_UPLINK_MAX 255
#define VSD_MAX_STATICS 256
#define VSD_MIRROR_SRC_MAX 8
#define VSD_PORT_NAME_MAX 47

struct vsd_static_entry {
    uint8_t mac[6];
    uint16_t vlan;
    char port[VSD_PORT_NAME_MAX + 1];
};

struct vsd_capture;

struct vsd_switch {
    char name[VSD_NAME_MAX + 1];
    enum vsw_switch_kind kind;
    uint32_t mtu;
    uint32_t fdb_max;
    uint32_t fdb_aging;
    char uplink[VSD_UPLINK_MAX + 1]; /* devargs (external) */
    bool allow_mgmt;                 /* external: a host vNIC as well */
    uint16_t mgmt_vlan;              /* the host vNIC's access VLAN, 0 = untagged */
    uint8_t host_mac[6];             /* the host vNIC's, kept across restarts */
    char host_if[16];                /* its interface name, "vs-..." */
    struct vsw_switch *sw;
    struct vsw_port *host;   /* host vNIC, if the kind has one */
    struct vsw_port *uplink_port;
    /* An external switch whose uplink could not be attached when the state
     * was loaded keeps its devargs and runs without it, retried by
     * vsd_switch_tick with a growing interval until the device appears. */
    char uplink_error[VSD_ERR_MAX]; /* why the uplink is down; "" while it is up */
    uint64_t uplink_failures;       /* failed attempts to attach it */
    double uplink_retry_at;         /* next attempt; 0 when none is due */
    unsigned uplink_backoff_s;      /* interval after the next failure */
    struct vsd_static_entry statics[VSD_MAX_STATICS];
    int nstatics;
    bool mirror_on;
    char mirror_src[VSD_MIRROR_SRC_MAX][VSD_PORT_NAME_MAX + 1];
    int mirror_nsrc;
    char mirror_dst[VSD_PORT_NAME_MAX + 1];
};

/* Per-NIC options (DESIGN §7 nic-add/nic-set). */
struct vsd_nic_opts {
    uint16_t access_vlan;
    bool trunk;
    uint16_t native_vlan;
    uint64_t allowed[64];
    bool mac_spoofing; /* allowed to send from other MACs (default off) */
    bool dhcp_guard;
    bool router_guard;
    uint32_t max_mbps;
    uint32_t storm_pps;
};

struct vsd_nic {
    struct vsd_vm *vm;
    char name[VSD_NIC_NAME_MAX + 1];
    struct vsd_switch *sw;
    uint8_t mac[6];
    uint32_t mtu;
    struct vmbus_guid instance;
    struct vsd_nic_opts opts;
    struct netvsp *np;
};

/* How a wait for a VM to stop ended: state is its state then ("stopped",
 * "crashed"); e is set if the stop could not be asked for; both are NULL
 * when vswitchd shuts down first (nothing to answer). Called once. */
typedef void vsd_vm_stop_done_fn(void *ctx, const char *state, const struct vsd_err *e);

/* Someone waiting for a VM to stop (vm-stop). */
struct vsd_waiter {
    vsd_vm_stop_done_fn *done;
    void *ctx;
};

enum vsd_vm_state { VSD_VM_STOPPED, VSD_VM_RUNNING, VSD_VM_CRASHED };

struct vsd_vm {
    struct vsd *d;
    char name[VSD_NAME_MAX + 1];
    char netns[VSD_NAME_MAX + 1];
    uint32_t memory_mb;
    uint32_t cpus;     /* virtual processors of its partition */
    bool want_running; /* persisted: restarted with vswitchd */
    bool netns_owned;  /* created for this VM: deleted with it */
    bool crashed;
    struct hv_partition *p;
    struct vmbus_server *srv;
    struct vsd_nic *nics[VSD_MAX_NICS];
    int nnics;
    double stop_deadline; /* force-stop time of a pending vm-stop, 0 if none */
    struct netvsc_tap_broker *tapb; /* while its worker runs (jail.c) */
    char exit_reason[48];           /* how the worker last ended, "" if it has not */
    struct vsd_waiter waiters[8];
    int nwaiters;
    struct hv_ratelimit log_rl; /* lines about what the guest did (crashes) */
};

struct jumbo_pools;
struct vsd {
    struct vsw_dp *dp;
    struct jumbo_pools *pools; /* mbuf classes (jumbo module) */
    struct hv_host *host;
    struct vsd_switch *switches[VSD_MAX_SWITCHES];
    struct vsd_vm *vms[VSD_MAX_VMS];
    struct vsd_capture *captures; /* running captures */
    char state_path[PATH_MAX];
    char hv_vm_path[PATH_MAX];
    cpu_set_t vm_cpus; /* where VMs run: the CPUs vswitchd had before EAL pinned it */
    uint32_t vm_uid_base; /* VM workers run as uid and gid vm_uid_base + VM slot */
    bool have_vm_cpus;
    bool loading; /* restoring the state file: do not save */
    struct vsd_rpc_counters rpc; /* the control socket's */
};

/* model.c: operations. Each validates everything first, applies, saves the
 * state file, and undoes the change if the save fails: a failed call leaves
 * nothing changed. */
int vsd_switch_add(struct vsd *d, const json_t *params, struct vsd_err *e);
int vsd_switch_del(struct vsd *d, const json_t *params, struct vsd_err *e);
int vsd_switch_set(struct vsd *d, const json_t *params, struct vsd_err *e);
json_t *vsd_switch_list(struct vsd *d);
json_t *vsd_switch_show(struct vsd *d, const json_t *params, struct vsd_err *e);
int vsd_vm_add(struct vsd *d, const json_t *params, struct vsd_err *e);
/* vm-start answers at once. vm-stop: -1 with e if nothing was done;
 * otherwise done(ctx) is called once, at once if the VM is not running,
 * else when it has stopped. */
json_t *vsd_vm_start(struct vsd *d, const json_t *params, struct vsd_err *e);
int vsd_vm_stop(struct vsd *d, const json_t *params, vsd_vm_stop_done_fn *done, void *ctx,
                struct vsd_err *e);
int vsd_vm_del(struct vsd *d, const json_t *params, struct vsd_err *e);
json_t *vsd_vm_list(struct vsd *d);
json_t *vsd_nic_add(struct vsd *d, const json_t *params, struct vsd_err *e);
int vsd_nic_set(struct vsd *d, const json_t *params, struct vsd_err *e);
int vsd_nic_del(struct vsd *d, const json_t *params, struct vsd_err *e);
json_t *vsd_nic_list(struct vsd *d, const json_t *params, struct vsd_err *e);
json_t *vsd_fdb_show(struct vsd *d, const json_t *params, struct vsd_err *e);
json_t *vsd_stats(struct vsd *d, const json_t *params, struct vsd_err *e);

int vsd_fdb_add(struct vsd *d, const json_t *params, struct vsd_err *e);
int vsd_fdb_del(struct vsd *d, const json_t *params, struct vsd_err *e);
int vsd_fdb_flush(struct vsd *d, const json_t *params, struct vsd_err *e);
int vsd_mirror_add(struct vsd *d, const json_t *params, struct vsd_err *e);
int vsd_mirror_del(struct vsd *d, const json_t *params, struct vsd_err *e);
/* How a capture ended: r, or NULL when vswitchd shuts down first. */
struct vsd_capture_result {
    const char *file;
    uint64_t packets; /* written to the file */
    uint64_t dropped; /* not captured: the capture ring was full */
};
typedef void vsd_capture_done_fn(void *ctx, const struct vsd_capture_result *r);
/* Start a capture (count frames, or for timeout seconds): -1 with e if it
 * did not start; otherwise done(ctx) is called once when it ends. */
int vsd_capture(struct vsd *d, const json_t *params, vsd_capture_done_fn *done, void *ctx,
                struct vsd_err *e);
/* Drain running captures into their files; finish those that are done. */
void vsd_capture_poll(struct vsd *d);

/* Lookups and shared pieces (model.c, switch.c, nic.c, state.c). */
struct vsd_vm *vsd_find_vm(struct vsd *d, const char *name);
struct vsd_switch *vsd_find_switch(struct vsd *d, const char *name);
struct vsd_nic *vsd_find_nic(struct vsd_vm *vm, const char *name);
/* A port by its name: VM/NIC, a host vNIC's interface name, SWITCH:uplink. */
struct vsw_port *vsd_find_port(struct vsd *d, const char *name, struct vsd_switch **sw_out);
int vsd_switch_users(struct vsd *d, const struct vsd_switch *sw);
int vsd_save(struct vsd *d, struct vsd_err *e);
json_t *vsd_port_json(struct vsd *d, struct vsd_switch *s, struct vsw_port *port,
                      struct vsd_nic *nic);
/* Switches from a saved object / NICs with their saved identities. */
int vsd_switch_restore(struct vsd *d, const json_t *o, struct vsd_err *e);
int vsd_nic_restore(struct vsd *d, struct vsd_vm *vm, const json_t *o, struct vsd_err *e);
json_t *vsd_switch_to_json(const struct vsd_switch *s);
json_t *vsd_nic_to_json(const struct vsd_nic *n);
/* Re-apply static FDB entries and the mirror after ports came back. */
void vsd_switch_reapply(struct vsd *d, struct vsd_switch *s);
void vsd_switch_free_all(struct vsd *d);
void vsd_nic_destroy(struct vsd_nic *n);
int vsd_vm_start_rt(struct vsd *d, struct vsd_vm *vm, struct vsd_err *e);

/* Shared by switch.c, uplink.c and capture.c. */
int attach_new(struct vsd_switch *s, struct vsw_port *p, struct vsd_err *e);
int uplink_create(struct vsd *d, struct vsd_switch *s, const char *devargs,
                  struct vsw_port **out, struct vsd_err *e);
bool same_device(const char *a, const char *b);
void uplink_failed(struct vsd_switch *s, const char *why);
void uplink_attached(struct vsd_switch *s);
void uplink_forget(struct vsd_switch *s);
void capture_finish(struct vsd *d, struct vsd_capture *c, bool reply);

/* Parameter access (model.c). */
int vsd_check_keys(const json_t *params, const char *const *allowed, struct vsd_err *e);
int vsd_get_str(const json_t *params, const char *key, bool required, const char **out,
                struct vsd_err *e);
int vsd_get_int(const json_t *params, const char *key, long long min, long long max,
                long long *out, bool *present, struct vsd_err *e);
int vsd_get_bool(const json_t *params, const char *key, bool *out, bool *present,
                 struct vsd_err *e);
int vsd_get_name(const json_t *params, const char *key, size_t max, const char **out,
                 struct vsd_err *e);
int vsd_random(void *buf, size_t len);

/* Once a second: FDB aging, forced stops of VMs that ignored vm-stop,
 * uplinks to attach again (vsd_switch_tick). */
void vsd_tick(struct vsd *d);
/* Try again the uplinks that are due (switch.c). */
void vsd_switch_tick(struct vsd *d);
/* Tear everything down (VMs stopped, ports, switches); the state file is
 * left as it was so a restart rebuilds it. */
void vsd_shutdown(struct vsd *d);
const char *vsd_vm_state_name(const struct vsd_vm *vm);

/* state.c */
json_t *vsd_state_to_json(const struct vsd *d);
/* Write the state atomically (temporary file, fsync, rename, fsync dir). */
int vsd_state_save(struct vsd *d, struct vsd_err *e);
/* Rebuild switches, VMs and NICs from the file into an empty d; start VMs
 * that were running. A missing file is an empty host; an unreadable or
 * invalid one is an error: the file is left alone and nothing of it stays
 * built (d is empty again). */
int vsd_state_load(struct vsd *d, struct vsd_err *e);

/* rpc.c */
/* telemetry.c: the statistics through DPDK telemetry (/hvnet/...). */
int vsd_telemetry_init(void);
int vsd_telemetry_fd(void); /* readable: refresh the snapshot */
void vsd_telemetry_refresh(struct vsd *d);
void vsd_telemetry_fini(void);

/* control.c: every method of vswitchd in one table (vsd-methods.h),
 * saving through the state file; serve it on the transport with
 * vsd_methods_serve. */
int vsd_control_create(struct vsd *d, struct vsd_methods **out);

/* jail.c: confining VM workers. vsd_vm_confine() before each start makes
 * the VM's namespace, its TAP broker and the partition's jail;
 * vsd_vm_unconfine() once the worker is gone (or did not start) closes the
 * broker. */
#define VSD_VM_UID_BASE_DEFAULT 1879048192u /* 0x70000000: unused by distributions */
int vsd_vm_confine(struct vsd *d, struct vsd_vm *vm, struct vsd_err *e);
void vsd_vm_unconfine(struct vsd_vm *vm);
uint32_t vsd_vm_uid(const struct vsd *d, const struct vsd_vm *vm);
/* "killed by seccomp (SIGSYS)", "killed by signal 9 (SIGKILL)", "exited
 * with status 1" for a wait status. */
void vsd_vm_exit_describe(int status, char *buf, size_t len);

#endif
