/*
 * An external switch's uplink: its port, and attaching it again while the
 * device is missing.
 *
 * An uplink is a device outside vswitchd's control (a NIC, a kernel
 * interface) that may be missing when the host starts. Loading the state
 * then brings the switch up without it, its devargs kept in the
 * configuration, and the 1 s tick tries again, 2 s after the failure and
 * doubling up to a minute, counting each failure, until the device is
 * there. An operator's switch-add or switch-set --uplink of a device that
 * does not exist is refused instead: at the command line it is a typo.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "jumbo-pool.h"
#include "vsw-port-provider.h"
#include "vsw-uplink.h"
#include "model-private.h"

int vsd_uplink_create(struct vsd *d, struct vsd_switch *s, const char *devargs,
                      struct vsw_port **out, struct vsd_err *e)
{
    char pname[VSD_PORT_NAME_MAX + 1];
    snprintf(pname, sizeof(pname), "%s:uplink", s->name);
    struct vsw_uplink_params up = {
        .devargs = devargs,
        .port_name = pname,
        .mtu = s->mtu,
        .pool = vsw_dp_mempool(d->dp),
    };
    /* A PMD that cannot chain gets mbufs that hold any frame, so that the
     * switch's MTU can rise to JUMBO_MTU_MAX later without a new uplink. */
    if (vsw_uplink_needs_whole_frames(devargs)) {
        up.single_seg_pool = jumbo_pool(d->pools, JUMBO_POOL_WHOLE_FRAME);
        if (!up.single_seg_pool)
            return vsd_fail(e, VSD_FAILED, "uplink '%s': no memory for a pool of %u-byte mbufs",
                            devargs, jumbo_pool_seg_room(JUMBO_POOL_WHOLE_FRAME));
    }
    int rc = vsw_uplink_port_create(&up, out);
    if (rc == 0) {
        /* Like Hyper-V's external port: every VLAN crosses the uplink
         * tagged; untagged frames are the untagged network. */
        struct vsw_port_policy pol = {.trunk = true, .native_vlan = 0};
        for (uint16_t v = 1; v <= VSW_VLAN_MAX; v++)
            vsw_policy_allow(&pol, v);
        rc = vsw_port_set_policy(*out, &pol);
        if (rc < 0)
            vsw_port_destroy(*out);
    }
    if (rc == -ENODEV)
        return vsd_fail(e, VSD_FAILED, "uplink '%s': no such device (check the devargs)", devargs);
    if (rc == -EEXIST)
        return vsd_fail(e, VSD_FAILED, "uplink '%s' is already in use", devargs);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "uplink '%s': %s", devargs, strerror(-rc));
    return 0;
}
/* Do two devargs name the same DPDK device (the part before the first
 * comma)? */
bool vsd_uplink_same_device(const char *a, const char *b)
{
    size_t la = strcspn(a, ","), lb = strcspn(b, ",");
    return la == lb && strncmp(a, b, la) == 0;
}

#define UPLINK_RETRY_MIN_S 2u
#define UPLINK_RETRY_MAX_S 60u

/* The configured uplink could not be attached: count it, keep why, try
 * again later. */
void vsd_uplink_failed(struct vsd_switch *s, const char *why)
{
    s->uplink_failures++;
    s->uplink_backoff_s = !s->uplink_backoff_s ? UPLINK_RETRY_MIN_S
                          : s->uplink_backoff_s * 2 > UPLINK_RETRY_MAX_S
                              ? UPLINK_RETRY_MAX_S
                              : s->uplink_backoff_s * 2;
    s->uplink_retry_at = vsd_now() + s->uplink_backoff_s;
    /* A line when the reason changes, not one per attempt. */
    if (strcmp(s->uplink_error, why) != 0)
        vsd_log("switch %s: uplink %s is down: %s (trying again every %u..%u s)", s->name,
                s->uplink, why, UPLINK_RETRY_MIN_S, UPLINK_RETRY_MAX_S);
    snprintf(s->uplink_error, sizeof(s->uplink_error), "%s", why);
}

void vsd_uplink_attached(struct vsd_switch *s)
{
    if (s->uplink_error[0])
        vsd_log("switch %s: uplink %s attached after %" PRIu64 " failed attempt(s)", s->name,
                s->uplink, s->uplink_failures);
    s->uplink_error[0] = '\0';
    s->uplink_retry_at = 0;
    s->uplink_backoff_s = 0;
}

/* No uplink configured any more: nothing to retry, nothing to count. */
void vsd_uplink_forget(struct vsd_switch *s)
{
    s->uplink[0] = '\0';
    s->uplink_error[0] = '\0';
    s->uplink_retry_at = 0;
    s->uplink_backoff_s = 0;
    s->uplink_failures = 0;
}
