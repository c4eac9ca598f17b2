/*
 * What the JSON front's files (control.c, params.c, the *-rpc.c methods,
 * state.c) share: each module's methods, the parsers the state file reuses,
 * the JSON views more than one method shows.
 */
#ifndef CONTROL_PRIVATE_H
#define CONTROL_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "vsd-methods.h"
#include "vsd-model.h"
#include "vswitchd.h"

/* Each module's methods, registered into t. */
int vsd_switch_methods_register(struct vsd_methods *t, struct vsd *d);
int vsd_fdb_methods_register(struct vsd_methods *t, struct vsd *d);
int vsd_vm_methods_register(struct vsd_methods *t, struct vsd *d);
int vsd_nic_methods_register(struct vsd_methods *t, struct vsd *d);
int vsd_port_methods_register(struct vsd_methods *t, struct vsd_control *c);
int vsd_worker_methods_register(struct vsd_methods *t, struct vsd *d);
int vsd_vmq_methods_register(struct vsd_methods *t, struct vsd *d);

/* switch-add's parameters (switch-rpc.c; the state loader reads a saved
 * switch with it). */
int vsd_switch_params_from_json(const json_t *params, struct vsd_switch_params *p,
                                struct vsd_err *e);
json_t *vsd_mirror_json(const struct vsd_mirror *m);
/* vm-add's parameters (vm-rpc.c; the state loader reads a saved VM with it). */
int vsd_vm_params_from_json(const json_t *params, struct vsd_vm_params *p, struct vsd_err *e);
/* NIC options present in params, on top of *o (nic-rpc.c; the state file
 * keeps them as nic-set takes them), and all of them as JSON. */
int vsd_nic_opts_from_json(const json_t *params, struct vsd_nic_opts *o, struct vsd_err *e);
json_t *vsd_nic_opts_json(const struct vsd_nic_opts *o);
/* A port as switch-show and stats show it (port-rpc.c); nic for a VM NIC. */
json_t *vsd_port_json(struct vsd_switch *s, struct vsw_port *port, struct vsd_nic *nic);
struct vsw_port_policy;
/* A port's VLAN mode as the PORT object shows it (port-rpc.c). */
json_t *vsd_vlan_json(const struct vsw_port_policy *pol);

/* vmq-rpc.c: the queues of a port, by index, into idx (up to max; how
 * many there are is returned): a VM NIC's primary channel (0) and the
 * sub-channels its guest has open, an uplink's receive queues (all polled
 * by its worker), a host vNIC's one queue. */
#define VSD_PORT_QUEUES_MAX 16
unsigned vsd_port_queues(struct vsd *d, const struct vsw_port *port, unsigned *idx,
                         unsigned max);
/* Where vmq-show finds a port served: its worker (index and lcore), the
 * port's load at the last sample, and the VLANs for which the switch's FDB
 * sends the port's MAC to it (a JSON array of integers, borrowed). */
struct vsd_vmq_place {
    unsigned worker, lcore;
    double load_pct;
    const json_t *fdb_vlans;
};
/* vmq-show's rows of one VM NIC, appended to rows: one per queue (its
 * primary, then each sub-channel open). 0, or -ENOMEM. */
int vsd_vmq_nic_rows(struct vsd_nic *n, const struct vsd_vmq_place *pl, json_t *rows);

/* params.c: reading parameters. Each is 0, or -1 with e filled
 * (VSD_BAD_PARAMS). */
/* params is an object with no key outside allowed (NULL-terminated). */
int vsd_check_keys(const json_t *params, const char *const *allowed, struct vsd_err *e);
/* A string, or NULL when absent and not required. */
int vsd_get_str(const json_t *params, const char *key, bool required, const char **out,
                struct vsd_err *e);
/* An integer in min..max; *present says whether it was given (*out is then
 * left as it was if not). */
int vsd_get_int(const json_t *params, const char *key, long long min, long long max,
                long long *out, bool *present, struct vsd_err *e);
/* true/false or "on"/"off". */
int vsd_get_bool(const json_t *params, const char *key, bool *out, bool *present,
                 struct vsd_err *e);
/* A required name of 1..max characters (vsd_name_ok); one of
 * VSD_NIC_NAME_MAX is an interface name, not "lo". */
int vsd_get_name(const json_t *params, const char *key, size_t max, const char **out,
                 struct vsd_err *e);

#endif
