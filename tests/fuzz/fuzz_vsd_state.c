/*
 * libFuzzer harness for vswitchd's state file loader (state.c:
 * vsd_state_load, with vsd_switch_restore and vsd_nic_restore): the file a
 * host's whole configuration is rebuilt from at start, which an operator
 * may also have edited by hand.
 *
 * Made once: the process of fuzz_vsd_env.c (EAL with one switch worker,
 * the jumbo pools, the data plane, the partition table; its own network
 * namespace as root). VMs the file says were running are not started: the
 * worker program vsd_vm_start_rt would run does not exist, which vswitchd
 * logs and carries on from, as it does for any VM that cannot start.
 *
 * Input: the state file's bytes. Each input is written to a state file and
 * loaded into a fresh struct vsd, as vswitchd's main() does. Skipped, as in
 * fuzz_vsd_rpc: files whose switches name an uplink other than net_ring
 * devargs, and, without a namespace of our own, switches that would have a
 * TAP.
 *
 * Checked, besides the sanitizers:
 *   - a load that fails says why, and leaves nothing built (no switch, no
 *     VM: what it made before it found the problem is gone again); an
 *     uplink that cannot be attached fails nothing: its switch is up
 *     without it, saying why, to be retried (fz_check_vsd);
 *   - loading never changes the file, whether it succeeds or not;
 *   - after a load that succeeds, fz_check_vsd(): the model agrees with the
 *     data plane;
 *   - nothing is lost in a save and restart: the loaded host, saved
 *     (vsd_state_save) and loaded again into a fresh struct vsd, gives the
 *     same vsd_state_to_json();
 *   - after each teardown (vsd_shutdown), every mbuf is back in the pool.
 * With FUZZ_VSD_DEBUG set, vswitchd's log and each load's outcome are
 * printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_vsd_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

const char *fz_name = "fuzz_vsd_state";

static bool ready;
static char file1[PATH_MAX], file2[PATH_MAX];

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FZ_CHECK(fd >= 0);
    FZ_CHECK(write(fd, data, size) == (ssize_t)size);
    close(fd);
}

static bool same_file(const char *path, const uint8_t *data, size_t size)
{
    static uint8_t buf[1 << 20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    return n >= 0 && (size_t)n == size && memcmp(buf, data, size) == 0;
}

/* Would this file make vswitchd probe a device or create a TAP we must not? */
static bool loadable(const uint8_t *data, size_t size)
{
    json_t *st = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!st)
        return true;
    bool ok = true;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(st, "switches"), i, s)
    {
        const char *up = json_string_value(json_object_get(s, "uplink"));
        if ((up && !fz_uplink_ok(up)) ||
            !fz_tap_ok(json_object_get(s, "type"), json_object_get(s, "allow_management_os")))
            ok = false;
    }
    json_decref(st);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        fz_env_init();
        fz_path(file1, sizeof(file1), "state.json");
        fz_path(file2, sizeof(file2), "state2.json");
        ready = true;
    }
    if (size >= (1 << 20) || !loadable(data, size))
        return 0;
    write_file(file1, data, size);

    struct vsd d;
    struct vsd_err e = {0};
    fz_vsd_init(&d, "state.json");
    int rc = vsd_state_load(&d, &e);
    if (fz.debug)
        fprintf(fz.out, "load: %s\n", rc < 0 ? e.msg : "ok");
    FZ_CHECK(rc == 0 || rc == -1);
    FZ_CHECK(same_file(file1, data, size));
    if (rc < 0) {
        FZ_CHECK(e.code != 0 && e.msg[0]);
        FZ_CHECK(fz_vsd_empty(&d));
        fz_vsd_fini(&d);
        return 0;
    }
    fz_check_vsd(&d);

    /* Save it elsewhere, restart from that, compare. */
    json_t *first = vsd_state_to_json(&d);
    FZ_CHECK(first);
    fz_path(d.state_path, sizeof(d.state_path), "state2.json");
    FZ_CHECK(vsd_state_save(&d, &e) == 0);
    fz_vsd_fini(&d);

    fz_vsd_init(&d, "state2.json");
    rc = vsd_state_load(&d, &e);
    if (rc < 0)
        fprintf(fz.out, "fuzz_vsd_state: the saved state does not load again: %s\n", e.msg);
    FZ_CHECK(rc == 0);
    fz_check_vsd(&d);
    json_t *second = vsd_state_to_json(&d);
    FZ_CHECK(json_equal(first, second));
    json_decref(first);
    json_decref(second);
    fz_vsd_fini(&d);
    unlink(file2);
    return 0;
}
