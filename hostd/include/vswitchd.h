/*
 * vswitchd's control API, the top of its layers (docs/ARCHITECTURE.md):
 * every method of the control protocol in one table, the state file and
 * telemetry, over the host model (vsd-model.h). main() (vswitchd.c), the
 * unit tests and the fuzz harnesses put them together.
 *
 *   vswitchd.c                  main: options, EAL, the event loop
 *   control, *-rpc, state,      JSON: methods, the state file, telemetry
 *     telemetry
 *   methods (vsd-methods.h)     the method table, the dispatcher
 *   rpc (vsd-rpc.h)             JSON-RPC over the socket
 *   model (vsd-model.h)         switches, VMs, NICs in C
 *   util (vsd-util.h)           errors, changes, log, names
 *
 * Everything runs on the control thread (EAL main lcore); the data plane
 * runs on the workers.
 */
#ifndef VSWITCHD_H
#define VSWITCHD_H

#include <jansson.h>

#include "vsd-methods.h"
#include "vsd-model.h"
#include "vsd-rpc.h"
#include "vsd-util.h"

/* What vswitchd's methods work on: the host, and the control socket's
 * counters (stats shows them). It outlives the method table. */
struct vsd_control {
    struct vsd *d;
    const struct vsd_rpc_counters *counters;
};
/* control.c: every method of vswitchd in one table (vsd-methods.h),
 * saving through c->d's state file; serve it on the transport with
 * vsd_methods_serve. */
int vsd_control_create(struct vsd_control *c, struct vsd_methods **out);

/* state.c: the state file (d->state_path). */
json_t *vsd_state_to_json(const struct vsd *d);
/* Write the state atomically (temporary file, fsync, rename, fsync dir). */
int vsd_state_save(struct vsd *d, struct vsd_err *e);
/* Rebuild switches, VMs and NICs from the file into an empty d through the
 * model's API (nothing is saved meanwhile); start VMs that were running. A
 * missing file is an empty host; an unreadable or invalid one is an error:
 * the file is left alone and nothing of it stays built (d is empty again). */
int vsd_state_load(struct vsd *d, struct vsd_err *e);

/* telemetry.c: the statistics through DPDK telemetry (/hvnet/...), taken
 * from t's methods. */
int vsd_telemetry_init(void);
int vsd_telemetry_fd(void); /* readable: refresh the snapshot */
void vsd_telemetry_refresh(struct vsd_methods *t);
void vsd_telemetry_fini(void);

#endif
