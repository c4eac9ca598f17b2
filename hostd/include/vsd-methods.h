/*
 * The method table of the control protocol, and its dispatcher.
 *
 * Each module registers its methods (name, handler, flags), as Open
 * vSwitch's modules do with unixctl_command_register(); the transport
 * (vsd-rpc.h) hands every request to vsd_methods_serve(), which finds the
 * method and calls it. Like the transport, the table knows nothing of VMs
 * or switches.
 *
 * The dispatcher does what every method would otherwise repeat: after a
 * successful call of a method that changes the configuration, it saves the
 * configuration, once (the save function given at creation), then commits
 * the call's change (struct vsd_change, vsd-util.h); if the save fails it
 * undoes the change, so that the host is as it was, and answers the save's
 * error. A call that fails changes nothing, so nothing is saved.
 */
#ifndef VSD_METHODS_H
#define VSD_METHODS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "vsd-rpc.h"
#include "vsd-util.h"

struct vsd_methods;
/* One call of a method, valid during the handler's call. */
struct vsd_method_call;

enum vsd_method_flags {
    /* A successful call's change (vsd_method_change) is saved before it is
     * committed. A method without it never causes a save. */
    VSD_METHOD_CHANGES_STATE = 1u << 0,
    /* The answer may come later (vsd_method_defer): refused where no
     * connection can wait for it (vsd_rpc_serve_line, vsd_methods_call). */
    VSD_METHOD_DEFERS = 1u << 1,
};

/* A method: read params (an object), act through the model, and return 0
 * with *result set (a new reference; NULL answers {}), or -1 with e filled
 * and nothing changed. A method whose model operation changes the
 * configuration gives it vsd_method_change(call) to record the change in. */
typedef int vsd_method_fn(void *ctx, const json_t *params, struct vsd_method_call *call,
                          json_t **result, struct vsd_err *e);

/* Saves the configuration: 0, or -1 with e filled. */
typedef int vsd_methods_save_fn(void *ctx, struct vsd_err *e);

int vsd_methods_create(vsd_methods_save_fn *save, void *save_ctx, struct vsd_methods **out);
void vsd_methods_destroy(struct vsd_methods *t);

/* Register a method under name (not copied: a string that outlives t).
 * -EEXIST if the name is taken, -ENOMEM. */
int vsd_methods_register(struct vsd_methods *t, const char *name, vsd_method_fn *fn, void *ctx,
                         unsigned flags);

/* A module's methods, registered together with one context. */
struct vsd_method_def {
    const char *name;
    vsd_method_fn *fn;
    unsigned flags; /* enum vsd_method_flags */
};
int vsd_methods_register_all(struct vsd_methods *t, const struct vsd_method_def *defs, size_t n,
                             void *ctx);

/* The transport's handler (vsd_rpc_handler_fn; ctx is the table): find the
 * method, check that it may answer later if it can, call it, save and
 * commit or undo, answer. An unknown method is -32601. */
void vsd_methods_serve(void *t, struct vsd_rpc_request *req);

/* Call a method in-process (telemetry's snapshots): as a request would be,
 * without a connection or counters. 0 with *result (a new reference), or -1
 * with e filled. */
int vsd_methods_call(struct vsd_methods *t, const char *name, const json_t *params,
                     json_t **result, struct vsd_err *e);

/* Where the call's model operation records its change. */
struct vsd_change *vsd_method_change(struct vsd_method_call *call);
/* The answer comes later, through the returned handle (vsd-rpc.h); only for
 * a VSD_METHOD_DEFERS method, at most once per call; NULL when there is no
 * memory. If the call then fails (the handler returns -1, or its change
 * cannot be saved), the dispatcher answers the error through the handle;
 * otherwise whoever the handler gave it to answers it. */
struct vsd_rpc_pending *vsd_method_defer(struct vsd_method_call *call);

#endif
