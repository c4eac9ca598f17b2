/*
 * Lookups in the host's tables, which every part of the model uses.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "netvsp.h"
#include "vsw-port-provider.h"
#include "model-private.h"

int vsd_random(void *buf, size_t len)
{
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

struct vsd_switch *vsd_find_switch(struct vsd *d, const char *name)
{
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i] && strcmp(d->switches[i]->name, name) == 0)
            return d->switches[i];
    return NULL;
}

struct vsd_vm *vsd_find_vm(struct vsd *d, const char *name)
{
    for (int i = 0; i < VSD_MAX_VMS; i++)
        if (d->vms[i] && strcmp(d->vms[i]->name, name) == 0)
            return d->vms[i];
    return NULL;
}

struct vsd_nic *vsd_find_nic(struct vsd_vm *vm, const char *name)
{
    for (int i = 0; i < vm->nnics; i++)
        if (strcmp(vm->nics[i]->name, name) == 0)
            return vm->nics[i];
    return NULL;
}

struct vsw_port *vsd_find_port(struct vsd *d, const char *name, struct vsd_switch **sw_out)
{
    const char *slash = strchr(name, '/'), *colon = strchr(name, ':');
    if (slash) {
        char vmname[VSD_NAME_MAX + 1];
        size_t n = (size_t)(slash - name);
        if (n > VSD_NAME_MAX)
            return NULL;
        memcpy(vmname, name, n);
        vmname[n] = '\0';
        struct vsd_vm *vm = vsd_find_vm(d, vmname);
        struct vsd_nic *nic = vm ? vsd_find_nic(vm, slash + 1) : NULL;
        if (!nic)
            return NULL;
        *sw_out = nic->sw;
        return netvsp_port(nic->np);
    }
    for (int i = 0; i < VSD_MAX_SWITCHES; i++) {
        struct vsd_switch *s = d->switches[i];
        if (!s)
            continue;
        if (colon && s->uplink_port && strncmp(name, s->name, (size_t)(colon - name)) == 0 &&
            s->name[colon - name] == '\0' && strcmp(colon + 1, "uplink") == 0) {
            *sw_out = s;
            return s->uplink_port;
        }
        if (!colon && s->host && strcmp(s->host_if, name) == 0) {
            *sw_out = s;
            return s->host;
        }
    }
    return NULL;
}

int vsd_switch_users(struct vsd *d, const struct vsd_switch *sw)
{
    int n = 0;
    for (int i = 0; i < VSD_MAX_VMS; i++)
        for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++)
            n += d->vms[i]->nics[j]->sw == sw;
    return n;
}
