/*
 * The control socket's transport: JSON-RPC 2.0 over a Unix stream socket,
 * one request per line, answered in order (docs/control-protocol.md).
 *
 * It frames requests, checks the JSON-RPC envelope, keeps each client's
 * buffers and deadlines, counts outcomes and encodes answers; what a
 * method does is the handler's business (vsd-methods.h registers methods
 * and dispatches to them). It knows nothing of VMs or switches.
 *
 * Everything runs on the control thread, which also answers the guests'
 * hypercalls: nothing here ever waits for a client.
 */
#ifndef VSD_RPC_H
#define VSD_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vsd-util.h"

/* JSON-RPC's own error codes; a handler answers VSD_BAD_PARAMS or
 * VSD_FAILED (vsd-util.h). */
#define VSD_RPC_PARSE_ERROR (-32700)      /* not JSON */
#define VSD_RPC_INVALID_REQUEST (-32600)  /* not a JSON-RPC 2.0 request, or too long */
#define VSD_RPC_METHOD_NOT_FOUND (-32601)

/* Answers by outcome, and clients dropped; kept by whoever serves (they
 * outlive a server, and vsd_rpc_serve_line counts into them too). */
struct vsd_rpc_counters {
    uint64_t requests;       /* answered requests */
    uint64_t malformed;      /* -32700 / -32600: not JSON, not JSON-RPC, too long */
    uint64_t unknown_method; /* -32601 */
    uint64_t bad_params;     /* -32602: refused before anything changed */
    uint64_t failed;         /* -32000: valid request the host could not carry out */
    uint64_t slow_clients;   /* connections dropped for not reading their answers */
};

/* One request being served: valid during the handler's call only. */
struct vsd_rpc_request;
/* A request whose answer comes later (vsd_rpc_defer). */
struct vsd_rpc_pending;

/* Serves one well-formed request: answers it (vsd_rpc_answer) or defers it
 * (vsd_rpc_defer) before returning. */
typedef void vsd_rpc_handler_fn(void *ctx, struct vsd_rpc_request *req);

/* What a server serves, and where it counts. */
struct vsd_rpc_endpoint {
    vsd_rpc_handler_fn *handler;
    void *ctx;
    struct vsd_rpc_counters *counters;
};

const char *vsd_rpc_request_method(const struct vsd_rpc_request *req);
/* An object: {} when the request had no params. */
const json_t *vsd_rpc_request_params(const struct vsd_rpc_request *req);
/* Answer now: result (a reference taken; NULL is {}) or, if e is non-NULL
 * and e->code is set, the error. */
void vsd_rpc_answer(struct vsd_rpc_request *req, json_t *result, const struct vsd_err *e);
/* Can the answer wait? Not on vsd_rpc_serve_line, which has no connection
 * to send it on later. */
bool vsd_rpc_request_can_wait(const struct vsd_rpc_request *req);
/* The answer comes later, through the returned handle, which is then
 * answered or dropped exactly once. The connection stays until then, even
 * if its client goes away (the answer is then discarded). NULL if the
 * request cannot wait or there is no memory. */
struct vsd_rpc_pending *vsd_rpc_defer(struct vsd_rpc_request *req);
/* Send the answer of a deferred request (result taken, as for
 * vsd_rpc_answer), and free the handle. */
void vsd_rpc_pending_answer(struct vsd_rpc_pending *p, json_t *result, const struct vsd_err *e);
/* Free the handle without answering (vswitchd shuts down). */
void vsd_rpc_pending_drop(struct vsd_rpc_pending *p);

struct vsd_rpc_server;
/* Listen on path (mode 0660). A stale socket file is replaced; one that a
 * live server answers on is -EADDRINUSE. */
int vsd_rpc_server_create(const char *path, const struct vsd_rpc_endpoint *ep,
                          struct vsd_rpc_server **out);
/* Every pending answer must have been answered or dropped before. */
void vsd_rpc_server_destroy(struct vsd_rpc_server *s);
/* The listening fd; register it in epoll with data.ptr = the server. Client
 * connections register themselves (data.ptr = the connection). Pass every
 * event whose tag is not one of the caller's own here. */
int vsd_rpc_server_fd(const struct vsd_rpc_server *s);
void vsd_rpc_server_on_event(struct vsd_rpc_server *s, int epfd, void *tag, uint32_t events);
/* A client is dropped (slow_clients) when an answer has waited deadline_s
 * for it to read, or when parked answers would leave more than out_max
 * bytes unsent. Defaults 5 s and 1 MiB; tests shorten them. */
void vsd_rpc_server_set_limits(struct vsd_rpc_server *s, size_t out_max, double deadline_s);

/* Serve one request line (without its newline) as a connection would:
 * parsed, checked, handled and counted, but with no socket. Returns the
 * answer line (no newline; the caller frees it), or NULL if it could not be
 * encoded. For tests and the fuzz harness (tests/fuzz/fuzz_vsd_rpc.c);
 * vswitchd itself serves sockets only. */
char *vsd_rpc_serve_line(const struct vsd_rpc_endpoint *ep, const char *line, size_t len);

#endif
