/*
 * What the vswitchd harnesses (fuzz_vsd_rpc.c, fuzz_vsd_state.c) share: a
 * process set up the way vswitchd's main() sets itself up, and the checks
 * that a struct vsd agrees with itself and with what it runs.
 */
#ifndef FUZZ_VSD_ENV_H
#define FUZZ_VSD_ENV_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "vswitchd.h"

struct fz_env {
    struct jumbo_pools *pools;
    struct vsw_dp *dp;
    struct hv_host *host;
    char dir[PATH_MAX]; /* private temporary directory (tmpfs): state files */
    /* In a network and mount namespace of our own: host vNICs (TAPs) and
     * /run/netns are the harness's, not the machine's. Without one, requests
     * that would create a TAP are skipped. */
    bool own_ns;
    bool debug;   /* FUZZ_VSD_DEBUG set: vswitchd's log stays on stderr */
    FILE *out;    /* the harness's own messages (stderr as it was) */
    unsigned inputs;
};

extern struct fz_env fz;

#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(fz.out, "%s: invariant failed at %s:%d: %s\n", fz_name, __FILE__, __LINE__,    \
                    #cond);                                                                        \
            fflush(fz.out);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

extern const char *fz_name;

/* Once per process, before the first input: namespaces, EAL (two lcores on
 * the first CPU we may use, no hugepages, no PCI, a file prefix of our own),
 * the mbuf pools, the data plane, the partition table, the temporary
 * directory (removed at exit). */
void fz_env_init(void);
/* An empty struct vsd on the shared data plane, saving to dir/file. VMs
 * name a worker program that does not exist, so none ever starts. */
void fz_vsd_init(struct vsd *d, const char *file);
/* dir/file */
void fz_path(char *out, size_t size, const char *file);

/* Devargs the harnesses let through: net_ring only (no host device, no
 * files, no busy polling), and "" (refused before any probe). */
bool fz_uplink_ok(const char *devargs);
/* Would a switch with this type / allow_management_os get a TAP? */
bool fz_tap_ok(const json_t *type, const json_t *allow_mgmt);

/* Every table empty. */
bool fz_vsd_empty(const struct vsd *d);
/* The model agrees with itself and with the data plane: names, limits,
 * the ports each switch has for its kind, each NIC attached to its switch
 * with its MTU, MAC and options applied. */
void fz_check_vsd(const struct vsd *d);
/* Tear down (vsd_shutdown) and check that every mbuf went back. */
void fz_vsd_fini(struct vsd *d);

#endif
