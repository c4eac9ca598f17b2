/*
 * The method table and the dispatcher (vsd-methods.h).
 *
 * Methods are kept sorted by name and found by binary search. Saving is
 * the dispatcher's: a method only records what it changed, so that one
 * place decides when the configuration is written and what happens when it
 * cannot be (the change is undone, the save's error answered). Saving
 * before applying would not do: what a change makes (ports, partitions)
 * can fail, and the file must never describe a host that does not exist.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vsd-methods.h"

struct method {
    const char *name;
    vsd_method_fn *fn;
    void *ctx;
    unsigned flags;
};

struct vsd_methods {
    vsd_methods_save_fn *save;
    void *save_ctx;
    struct method *m; /* sorted by name */
    size_t n, cap;
};

struct vsd_method_call {
    struct vsd_rpc_request *req; /* NULL: an in-process call */
    struct vsd_change change;
    struct vsd_rpc_pending *pending;
    bool may_defer;
};

int vsd_methods_create(vsd_methods_save_fn *save, void *save_ctx, struct vsd_methods **out)
{
    struct vsd_methods *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->save = save;
    t->save_ctx = save_ctx;
    *out = t;
    return 0;
}

void vsd_methods_destroy(struct vsd_methods *t)
{
    if (!t)
        return;
    free(t->m);
    free(t);
}

static int by_name(const void *key, const void *elem)
{
    return strcmp(key, ((const struct method *)elem)->name);
}

static const struct method *find(const struct vsd_methods *t, const char *name)
{
    return t->n ? bsearch(name, t->m, t->n, sizeof(t->m[0]), by_name) : NULL;
}

int vsd_methods_register(struct vsd_methods *t, const char *name, vsd_method_fn *fn, void *ctx,
                         unsigned flags)
{
    size_t at = 0;
    while (at < t->n && strcmp(t->m[at].name, name) < 0)
        at++;
    if (at < t->n && strcmp(t->m[at].name, name) == 0)
        return -EEXIST;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        struct method *m = realloc(t->m, cap * sizeof(*m));
        if (!m)
            return -ENOMEM;
        t->m = m;
        t->cap = cap;
    }
    memmove(&t->m[at + 1], &t->m[at], (t->n - at) * sizeof(t->m[0]));
    t->m[at] = (struct method){.name = name, .fn = fn, .ctx = ctx, .flags = flags};
    t->n++;
    return 0;
}

int vsd_methods_register_all(struct vsd_methods *t, const struct vsd_method_def *defs, size_t n,
                             void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        int rc = vsd_methods_register(t, defs[i].name, defs[i].fn, ctx, defs[i].flags);
        if (rc < 0)
            return rc;
    }
    return 0;
}

struct vsd_change *vsd_method_change(struct vsd_method_call *call)
{
    return &call->change;
}

struct vsd_rpc_pending *vsd_method_defer(struct vsd_method_call *call)
{
    if (!call->may_defer || call->pending || !call->req)
        return NULL;
    call->pending = vsd_rpc_defer(call->req);
    return call->pending;
}

/* Call m, then save and commit its change, or undo it. 0 or -1 (e). */
static int run(struct vsd_methods *t, const struct method *m, const json_t *params,
               struct vsd_method_call *call, json_t **result, struct vsd_err *e)
{
    *result = NULL;
    if (m->fn(m->ctx, params, call, result, e) < 0) {
        /* A failed call leaves its change closed; be sure of it. */
        vsd_change_undo(&call->change);
        json_decref(*result);
        *result = NULL;
        return -1;
    }
    if (call->change.open && (m->flags & VSD_METHOD_CHANGES_STATE) &&
        t->save(t->save_ctx, e) < 0) {
        vsd_change_undo(&call->change);
        json_decref(*result);
        *result = NULL;
        return -1;
    }
    vsd_change_commit(&call->change);
    return 0;
}

void vsd_methods_serve(void *ctx, struct vsd_rpc_request *req)
{
    struct vsd_methods *t = ctx;
    const char *name = vsd_rpc_request_method(req);
    const struct method *m = find(t, name);
    struct vsd_err e = {0};
    if (!m) {
        vsd_fail(&e, VSD_RPC_METHOD_NOT_FOUND, "unknown method '%s'", name);
        vsd_rpc_answer(req, NULL, &e);
        return;
    }
    /* A parked answer is owed to a connection that outlives the request. */
    if ((m->flags & VSD_METHOD_DEFERS) && !vsd_rpc_request_can_wait(req)) {
        vsd_fail(&e, VSD_FAILED, "%s needs a control connection", name);
        vsd_rpc_answer(req, NULL, &e);
        return;
    }
    struct vsd_method_call call = {.req = req, .may_defer = (m->flags & VSD_METHOD_DEFERS) != 0};
    json_t *result;
    int rc = run(t, m, vsd_rpc_request_params(req), &call, &result, &e);
    if (!call.pending)
        vsd_rpc_answer(req, result, rc < 0 ? &e : NULL);
    else if (rc < 0)
        vsd_rpc_pending_answer(call.pending, NULL, &e);
    else
        json_decref(result); /* the answer is the pending's */
}

int vsd_methods_call(struct vsd_methods *t, const char *name, const json_t *params,
                     json_t **result, struct vsd_err *e)
{
    const struct method *m = find(t, name);
    *result = NULL;
    if (!m)
        return vsd_fail(e, VSD_RPC_METHOD_NOT_FOUND, "unknown method '%s'", name);
    if (m->flags & VSD_METHOD_DEFERS)
        return vsd_fail(e, VSD_FAILED, "%s needs a control connection", name);
    struct vsd_method_call call = {.req = NULL};
    return run(t, m, params, &call, result, e);
}
