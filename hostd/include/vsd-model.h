/*
 * The host model: switches, VMs and their NICs, as C objects and
 * operations. The control protocol's methods (vswitchd.h), the state
 * loader and the tests change the host only through these calls; none of
 * them takes or gives JSON. Everything runs on the control thread (EAL
 * main lcore); the data plane runs on the workers.
 *
 * An operation checks every parameter and every precondition, then
 * applies. What it applied to the configuration is a change (struct
 * vsd_change, vsd-util.h) that its caller saves and then commits, or
 * undoes when the save fails; with a NULL change it is final at once (the
 * state loader, tests). A failed operation changes nothing and fills e:
 * VSD_BAD_PARAMS when the request itself is wrong, VSD_FAILED when the
 * host cannot carry it out.
 */
#ifndef VSD_MODEL_H
#define VSD_MODEL_H

#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv-log.h"
#include "hv.h"
#include "jumbo.h"
#include "vmbus-proto.h"
#include "vsd-util.h"
#include "vsw.h"

#define VSD_NAME_MAX 31     /* switches, VMs, namespaces */
#define VSD_NIC_NAME_MAX 15 /* a NIC's name is its interface name in the VM */
#define VSD_MAX_SWITCHES 64
#define VSD_MAX_VMS 256
#define VSD_MAX_NICS 8
#define VSD_MAX_LCORE 1024 /* a NIC's --worker: an lcore below this */
#define VSD_MEMORY_DEFAULT_MB 256
#define VSD_STOP_GRACE_S 5
#define VSD_UPLINK_MAX 255
#define VSD_MAX_STATICS 256
#define VSD_MIRROR_SRC_MAX 8
#define VSD_PORT_NAME_MAX 47

/* A switch's settings: defaults and bounds. */
#define VSD_SWITCH_MTU_DEFAULT JUMBO_MTU_DEFAULT
#define VSD_FDB_MAX_DEFAULT 8192
#define VSD_FDB_MAX_MIN 16
#define VSD_FDB_MAX_MAX (1 << 20)
#define VSD_FDB_AGING_DEFAULT 300
#define VSD_FDB_AGING_MIN 10
#define VSD_FDB_AGING_MAX (86400 * 7)

struct vsd;
struct vsd_vm;
struct vsd_capture;
struct nettap_broker;

struct vsd_static_entry {
    uint8_t mac[6];
    uint16_t vlan;
    char port[VSD_PORT_NAME_MAX + 1]; /* a port name as vsd_find_port takes it */
};

/* A switch's port mirror: frames of the sources copied to dst. */
struct vsd_mirror {
    bool on;
    char src[VSD_MIRROR_SRC_MAX][VSD_PORT_NAME_MAX + 1];
    int nsrc;
    char dst[VSD_PORT_NAME_MAX + 1];
};

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
     * vsd_tick with a growing interval until the device appears. */
    char uplink_error[VSD_ERR_MAX]; /* why the uplink is down; "" while it is up */
    uint64_t uplink_failures;       /* failed attempts to attach it */
    double uplink_retry_at;         /* next attempt; 0 when none is due */
    unsigned uplink_backoff_s;      /* interval after the next failure */
    struct vsd_static_entry statics[VSD_MAX_STATICS];
    int nstatics;
    struct vsd_mirror mirror;
};

/* Per-NIC options (nic-add, nic-set). */
struct vsd_nic_opts {
    uint16_t access_vlan;
    bool trunk;
    uint16_t native_vlan;
    uint64_t allowed[64]; /* trunk: bit v set = VLAN v allowed */
    bool mac_spoofing;    /* allowed to send from other MACs (default off) */
    bool dhcp_guard;
    bool router_guard;
    uint32_t max_mbps;
    uint32_t storm_pps;
    /* The switch worker that polls the NIC's queue: pinned to the one on
     * worker_lcore, or (not pinned) placed by load and moved by dynamic
     * VMQ. A pin to an lcore without a worker (a state file from another
     * --lcores) is kept and reported; the NIC is placed by load. */
    bool pinned;
    uint16_t worker_lcore;
    /* Channels the guest may open (netvsp_params.queues): 1..8, or 0 for
     * auto: the VM's virtual processors, at most 8 (vsd_nic_queues). */
    uint8_t queues;
    /* VMQ, Hyper-V's -VmqWeight: the weight 0..100 (vmq_weight_set; else
     * 100), and on/off. Off, or weight 0: the NIC shares its switch's
     * default queue (vsw_port_set_vmq); excludes a pin. vsd_nic_vmq_weight()
     * is what the port gets. */
    bool vmq_off;
    bool vmq_weight_set;
    uint8_t vmq_weight;
};

/* The VMQ weight a NIC's port runs with: 0 when VMQ is off. */
static inline unsigned vsd_nic_vmq_weight(const struct vsd_nic_opts *o)
{
    if (o->vmq_off)
        return 0;
    return o->vmq_weight_set ? o->vmq_weight : 100;
}

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

struct vsd_vm {
    struct vsd *d;
    char name[VSD_NAME_MAX + 1];
    char netns[VSD_NAME_MAX + 1];
    uint32_t memory_mb;
    uint32_t cpus;     /* virtual processors of its partition */
    bool guest_offloads; /* its NIC drivers ask for checksum/LSO/RSC offloads */
    bool want_running; /* persisted: restarted with vswitchd */
    bool netns_owned;  /* created for this VM: deleted with it */
    bool crashed;
    struct hv_partition *p;
    struct vmbus_server *srv;
    struct vsd_nic *nics[VSD_MAX_NICS];
    int nnics;
    double stop_deadline; /* force-stop time of a pending vm-stop, 0 if none */
    struct nettap_broker *tapb; /* while its worker runs (jail.c) */
    char exit_reason[48];           /* how the worker last ended, "" if it has not */
    struct vsd_waiter waiters[8];
    int nwaiters;
    struct hv_ratelimit log_rl; /* lines about what the guest did (crashes) */
};

struct jumbo_pools;
/* The host: what vswitchd's main() sets up (the data plane, the mbuf pools,
 * the partition table, paths), then the model's own tables. */
struct vsd {
    struct vsw_dp *dp;
    struct jumbo_pools *pools; /* mbuf classes (jumbo module) */
    struct hv_host *host;
    char state_path[PATH_MAX];
    char hv_vm_path[PATH_MAX]; /* the VM worker program */
    cpu_set_t vm_cpus; /* where VMs run: the CPUs vswitchd had before EAL pinned it */
    bool have_vm_cpus;
    uint32_t vm_uid_base; /* VM workers run as uid and gid vm_uid_base + VM slot */
    struct vsd_switch *switches[VSD_MAX_SWITCHES];
    struct vsd_vm *vms[VSD_MAX_VMS];
    struct vsd_capture *captures; /* running captures */
    unsigned half_ticks;          /* vsd_tick() calls: every VSW_LOAD_SAMPLE_MS */
    struct hv_ratelimit placement_rl; /* failed dynamic-VMQ moves */
};

#define VSD_VM_UID_BASE_DEFAULT 1879048192u /* 0x70000000: unused by distributions */

struct vsd_switch *vsd_find_switch(struct vsd *d, const char *name);
struct vsd_vm *vsd_find_vm(struct vsd *d, const char *name);
struct vsd_nic *vsd_find_nic(struct vsd_vm *vm, const char *name);
/* A port by its name: VM/NIC, a host vNIC's interface name, SWITCH:uplink;
 * *sw_out is its switch. NULL if there is none. */
struct vsw_port *vsd_find_port(struct vsd *d, const char *name, struct vsd_switch **sw_out);
/* NICs on sw. */
int vsd_switch_users(struct vsd *d, const struct vsd_switch *sw);

struct vsd_switch_params {
    const char *name;
    enum vsw_switch_kind kind;
    const char *uplink; /* devargs; external only (and required there) */
    bool allow_mgmt;    /* external: a host vNIC as well */
    uint32_t mtu;       /* jumbo_mtu_valid() (68..9000) */
    uint32_t fdb_max;   /* VSD_FDB_MAX_MIN..MAX entries */
    uint32_t fdb_aging; /* VSD_FDB_AGING_MIN..MAX seconds */
    uint16_t mgmt_vlan; /* the host vNIC's access VLAN, 0: untagged */
};
/* name and kind, every other setting its default. */
void vsd_switch_params_init(struct vsd_switch_params *p, const char *name,
                            enum vsw_switch_kind kind);

/* A switch with the ports its kind needs: a host vNIC (internal, or
 * external with allow_mgmt), an uplink (external: the device must attach
 * now). */
int vsd_switch_add(struct vsd *d, const struct vsd_switch_params *p, struct vsd_change *chg,
                   struct vsd_err *e);
/* Refused while NICs are on it. Its ports go when the change is committed. */
int vsd_switch_del(struct vsd *d, const char *name, struct vsd_change *chg, struct vsd_err *e);

/* What switch-set changes: the has_ flags (and a non-NULL uplink) say
 * what is given; at least one must be. */
struct vsd_switch_set_params {
    const char *name;
    bool has_kind;
    enum vsw_switch_kind kind;
    const char *uplink; /* NULL: unchanged */
    bool has_allow_mgmt;
    bool allow_mgmt;
    bool has_mtu;
    uint32_t mtu;
    bool has_fdb_max;
    uint32_t fdb_max;
    bool has_fdb_aging;
    uint32_t fdb_aging;
    bool has_mgmt_vlan;
    uint16_t mgmt_vlan;
};
/* Live: the kind, the uplink and the management OS change by making the
 * new ports first, then retiring the old ones; VMs keep running. */
int vsd_switch_set(struct vsd *d, const struct vsd_switch_set_params *p, struct vsd_change *chg,
                   struct vsd_err *e);

/* A switch as the state file keeps it. */
struct vsd_switch_saved {
    struct vsd_switch_params cfg;
    bool has_host_mac;
    uint8_t host_mac[6];
    int nstatics;
    const struct vsd_static_entry *statics;
    struct vsd_mirror mirror;
};
/* Rebuild a saved switch with its identity (host vNIC MAC), static
 * entries and mirror. Unlike switch-add, an uplink whose device cannot be
 * attached is no failure: the switch runs without it, and the tick tries
 * again. Static entries and the mirror are applied by vsd_restore_done().
 * Final at once; on failure what was built stays until vsd_shutdown(). */
int vsd_switch_restore(struct vsd *d, const struct vsd_switch_saved *sv, struct vsd_err *e);

struct vsd_vm_params {
    const char *name;
    const char *netns;  /* its network namespace; NULL: the VM's name */
    uint32_t memory_mb; /* 64..65536 */
    uint32_t cpus;      /* virtual processors, 1..HV_PARTITION_VPS_MAX */
    bool guest_offloads; /* its guest's NIC drivers ask for offloads (default) */
    /* From the state file: cpus is not held to this host's CPU count, the
     * two flags below are as saved, and nothing is logged. */
    bool restore;
    bool want_running; /* restore: start it once the whole host is built */
    bool netns_owned;  /* restore: vswitchd made the namespace (vm-del removes it) */
};
/* name, every other setting its default. */
void vsd_vm_params_init(struct vsd_vm_params *p, const char *name);

/* A VM: a process partition with its VMBus server, not started. */
int vsd_vm_add(struct vsd *d, const struct vsd_vm_params *p, struct vsd_change *chg,
               struct vsd_err *e);
/* Refused while it runs. Its NICs and partition go, and its namespace if
 * vswitchd made it, when the change is committed. */
int vsd_vm_del(struct vsd *d, const char *name, struct vsd_change *chg, struct vsd_err *e);
/* Start the VM's worker (confined: jail.c); it runs again when vswitchd
 * restarts. */
int vsd_vm_start(struct vsd *d, const char *name, struct vsd_change *chg, struct vsd_err *e);
/* The VM no longer runs when vswitchd restarts; once that is committed it
 * is asked to stop (forced off after VSD_STOP_GRACE_S), and done(ctx) is
 * called once: at once if it is not running or cannot be asked, else when
 * it has stopped (or with neither state nor error if vswitchd shuts down
 * first). Undone or failed, done is not called. */
int vsd_vm_stop(struct vsd *d, const char *name, vsd_vm_stop_done_fn *done, void *ctx,
                struct vsd_change *chg, struct vsd_err *e);
/* "running", "stopping", "stopped" or "crashed". */
const char *vsd_vm_state_name(const struct vsd_vm *vm);
/* The uid and gid its worker runs as. */
uint32_t vsd_vm_uid(const struct vsd *d, const struct vsd_vm *vm);

/* A static entry mac/vlan -> port on switch sw (replacing one for the same
 * MAC and VLAN). */
int vsd_fdb_add(struct vsd *d, const char *sw, const uint8_t mac[6], uint16_t vlan,
                const char *port, struct vsd_change *chg, struct vsd_err *e);
/* A static entry is removed from the configuration; a learned one is
 * forgotten at once (nothing to save: chg stays closed). */
int vsd_fdb_del(struct vsd *d, const char *sw, const uint8_t mac[6], uint16_t vlan,
                struct vsd_change *chg, struct vsd_err *e);
/* Forget every learned entry (the configuration does not change). */
int vsd_fdb_flush(struct vsd *d, const char *sw, struct vsd_err *e);
/* Mirror the nsrc ports src (a NULL one is refused as not a port name) to
 * dst, all on sw. */
int vsd_mirror_add(struct vsd *d, const char *sw, const char *const *src, int nsrc,
                   const char *dst, struct vsd_change *chg, struct vsd_err *e);
int vsd_mirror_del(struct vsd *d, const char *sw, struct vsd_change *chg, struct vsd_err *e);

struct vsd_nic_params {
    const char *vm;
    const char *nic; /* its interface name in the VM: 1..15 characters, not "lo" */
    const char *sw;
    bool has_mac;
    uint8_t mac[6];  /* unicast, not zero; else a random locally administered one */
    uint32_t mtu;    /* jumbo_mtu_valid(), at most the switch's; 0: the switch's */
    struct vsd_nic_opts opts;
};
/* A NIC: a netvsp port offered on the VM's VMBus, attached to its switch,
 * with a new instance id; *out (may be NULL) is the NIC. */
int vsd_nic_add(struct vsd *d, const struct vsd_nic_params *p, struct vsd_nic **out,
                struct vsd_change *chg, struct vsd_err *e);

/* What nic-set changes. */
struct vsd_nic_set_params {
    const char *vm;
    const char *nic;
    const char *sw; /* NULL: stays on its switch */
    bool has_mtu;
    uint32_t mtu;
    const struct vsd_nic_opts *opts; /* all of them; NULL: unchanged */
};
/* Live: the guest sees its cable pulled and plugged back when the NIC
 * moves, and starts its NIC over with a new MTU. Nothing to change is no
 * change (chg stays closed). */
int vsd_nic_set(struct vsd *d, const struct vsd_nic_set_params *p, struct vsd_change *chg,
                struct vsd_err *e);
/* Refused while the NIC is in its switch's mirror. Its port goes when the
 * change is committed. */
int vsd_nic_del(struct vsd *d, const char *vm, const char *nic, struct vsd_change *chg,
                struct vsd_err *e);
/* The NIC, or NULL and e saying which of the two does not exist. */
struct vsd_nic *vsd_nic_get(struct vsd *d, const char *vm, const char *nic, struct vsd_err *e);

/* A NIC as the state file keeps it: its identity as saved. */
struct vsd_nic_saved {
    const char *name;
    const char *sw;
    uint8_t mac[6];
    uint32_t mtu;
    struct vmbus_guid instance;
    struct vsd_nic_opts opts;
};
/* Rebuild a saved NIC of vm; final at once. */
int vsd_nic_restore(struct vsd *d, struct vsd_vm *vm, const struct vsd_nic_saved *sv,
                    struct vsd_err *e);

struct vsd_capture_params {
    const char *port;   /* as vsd_find_port takes it */
    const char *file;   /* an absolute path: a new file, never reached through a link */
    uint64_t count;     /* frames to write; 0: no limit */
    uint32_t timeout_s; /* how long; 0: no limit (count or timeout_s, or both) */
    bool force;         /* replace a regular file of vswitchd's own user */
};
/* How a capture ended: r, or NULL when vswitchd shuts down first. */
struct vsd_capture_result {
    const char *file;
    uint64_t packets; /* written to the file */
    uint64_t dropped; /* not captured: the capture ring was full */
};
typedef void vsd_capture_done_fn(void *ctx, const struct vsd_capture_result *r);
/* Capture a port's frames into a pcap file (the configuration does not
 * change). -1 with e if it did not start, and then nothing was created;
 * otherwise done(ctx) is called once, when it ends. */
int vsd_capture_start(struct vsd *d, const struct vsd_capture_params *p,
                      vsd_capture_done_fn *done, void *ctx, struct vsd_err *e);
/* Drain running captures into their files; finish those that are done. */
void vsd_capture_poll(struct vsd *d);

/* After the state file's switches, VMs and NICs are all built: apply
 * static entries and mirrors (their ports now exist), then start the VMs
 * that were running. A VM that cannot start is logged and stays
 * configured. */
void vsd_restore_done(struct vsd *d);
/* Every VSW_LOAD_SAMPLE_MS: a load sample (and dynamic VMQ's moves); every
 * other call, once a second: FDB aging, forced stops of VMs that ignored
 * vm-stop, uplinks to attach again. */
void vsd_tick(struct vsd *d);
/* Tear everything down (VMs stopped, ports, switches; answers still owed
 * are dropped); the state file is left as it was so a restart rebuilds it. */
void vsd_shutdown(struct vsd *d);

#endif
