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
#include "vsd-model.h"
#include "vsd-util.h"
#include "vsw.h"

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
    struct vsd_rpc_counters rpc; /* the control socket's */
};

/* model.c: operations. Each validates everything first, applies, saves the
 * state file, and undoes the change if the save fails: a failed call leaves
 * nothing changed. */
json_t *vsd_stats(struct vsd *d, const json_t *params, struct vsd_err *e);

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

/* Switches from a saved object / NICs with their saved identities. */
/* Re-apply static FDB entries and the mirror after ports came back. */
void vsd_switch_reapply(struct vsd *d, struct vsd_switch *s);
void vsd_switch_free_all(struct vsd *d);
void vsd_nic_destroy(struct vsd_nic *n);
void vm_destroy_rt(struct vsd_vm *vm);
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

/* The JSON front: methods of each module (switch-rpc.c, fdb-rpc.c), views. */
int vsd_switch_methods_register(struct vsd_methods *t, struct vsd *d);
int vsd_fdb_methods_register(struct vsd_methods *t, struct vsd *d);
int vsd_vm_methods_register(struct vsd_methods *t, struct vsd *d);
int vsd_nic_methods_register(struct vsd_methods *t, struct vsd *d);
/* NIC options present in params, on top of *o (nic-rpc.c; the state file
 * keeps them as nic-set takes them), and all of them as JSON. */
int vsd_nic_opts_from_json(const json_t *params, struct vsd_nic_opts *o, struct vsd_err *e);
json_t *vsd_nic_opts_json(const struct vsd_nic_opts *o);
/* vm-add's parameters (vm-rpc.c; the state loader reads a saved VM with it). */
int vsd_vm_params_from_json(const json_t *params, struct vsd_vm_params *p, struct vsd_err *e);
/* switch-add's parameters (switch-rpc.c; the state loader reads a saved switch with it). */
int vsd_switch_params_from_json(const json_t *params, struct vsd_switch_params *p,
                                struct vsd_err *e);
json_t *vsd_mirror_json(const struct vsd_mirror *m);
/* A port as switch-show and stats show it (port-rpc.c); nic for a VM NIC. */
json_t *vsd_port_json(struct vsd_switch *s, struct vsw_port *port, struct vsd_nic *nic);

/* Parameter access (params.c). */
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

/* Try again the uplinks that are due (switch.c). */
void vsd_switch_tick(struct vsd *d);

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
void vsd_telemetry_refresh(struct vsd_methods *t);
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
/* "killed by seccomp (SIGSYS)", "killed by signal 9 (SIGKILL)", "exited
 * with status 1" for a wait status. */
void vsd_vm_exit_describe(int status, char *buf, size_t len);

#endif
