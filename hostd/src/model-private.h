/*
 * What the model's files share and nothing above them sees. They call one
 * way (test_hostd_layers.sh checks it):
 *
 *   host.c        -> vm.c, switch.c, fdb-mirror.c
 *   vm.c          -> nic.c, jail.c, fdb-mirror.c, lookup.c
 *   switch.c      -> uplink.c, capture.c, fdb-mirror.c, lookup.c
 *   nic.c         -> fdb-mirror.c, lookup.c
 *   fdb-mirror.c, capture.c -> lookup.c
 *   uplink.c, jail.c, lookup.c call only vsd-util.h and other modules.
 */
#ifndef MODEL_PRIVATE_H
#define MODEL_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "vsd-model.h"

struct vsw_port;

/* lookup.c */
int vsd_random(void *buf, size_t len);

/* vm.c: the VM's partition and VMBus server go (its NICs' ports first);
 * start its worker now, confined. */
void vsd_vm_destroy_rt(struct vsd_vm *vm);
int vsd_vm_start_rt(struct vsd *d, struct vsd_vm *vm, struct vsd_err *e);

/* nic.c: the NIC's port goes (detached from its switch). */
void vsd_nic_destroy(struct vsd_nic *n);

/* switch.c: attach a new port p to s, destroying it if that fails; try
 * again the uplinks that are due (the 1 s tick). */
int vsd_switch_attach_new(struct vsd_switch *s, struct vsw_port *p, struct vsd_err *e);
void vsd_switch_tick(struct vsd *d);
void vsd_switch_free_all(struct vsd *d);

/* uplink.c: an external switch's uplink port from devargs, and its
 * attempts: counted, kept why, retried by vsd_switch_tick while the device
 * is missing. */
int vsd_uplink_create(struct vsd *d, struct vsd_switch *s, const char *devargs,
                      struct vsw_port **out, struct vsd_err *e);
/* Do two devargs name the same DPDK device (the part before the first comma)? */
bool vsd_uplink_same_device(const char *a, const char *b);
void vsd_uplink_failed(struct vsd_switch *s, const char *why);
void vsd_uplink_attached(struct vsd_switch *s);
void vsd_uplink_forget(struct vsd_switch *s);

/* fdb-mirror.c: re-apply static FDB entries and the mirror after a
 * switch's ports changed. */
void vsd_switch_reapply(struct vsd *d, struct vsd_switch *s);

/* capture.c: end a capture, telling its caller (reply) or not (shutdown). */
void vsd_capture_finish(struct vsd *d, struct vsd_capture *c, bool reply);

/* jail.c: confining VM workers. vsd_vm_confine() before each start makes
 * the VM's namespace, its TAP broker and the partition's jail;
 * vsd_vm_unconfine() once the worker is gone (or did not start) closes the
 * broker. */
int vsd_vm_confine(struct vsd *d, struct vsd_vm *vm, struct vsd_err *e);
void vsd_vm_unconfine(struct vsd_vm *vm);
/* "killed by seccomp (SIGSYS)", "killed by signal 9 (SIGKILL)", "exited
 * with status 1" for a wait status. */
void vsd_vm_exit_describe(int status, char *buf, size_t len);

#endif
