/*
 * The control socket: JSON-RPC 2.0, one request per line, answered in order
 * (docs/control-protocol.md). Requests are served on the control thread; a
 * request that must wait (vm-stop) parks its answer and the connection stays
 * open until it is sent, even if the client goes away meanwhile.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vswitchd.h"

#define RPC_MAX_REQUEST (64 * 1024)
#define RPC_MAX_CONNS 64

struct rpc_conn {
    struct rpc_server *srv;
    int fd;
    size_t len;
    int pending;  /* parked answers */
    bool gone;    /* client closed or failed: free once nothing is parked */
    char **keep;  /* rpc_serve_line: the answer goes here, not to a socket */
    struct rpc_conn *next;
    char buf[RPC_MAX_REQUEST + 1];
};

struct rpc_server {
    struct vsd *d;
    int fd;
    int epfd;
    int nconns;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct rpc_conn *conns;
};

int rpc_server_create(struct vsd *d, const char *path, struct rpc_server **out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;
        if (err != EADDRINUSE) {
            close(fd);
            return -err;
        }
        /* A live vswitchd answers; a stale socket file does not. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (probe >= 0)
            close(probe);
        if (live) {
            close(fd);
            return -EADDRINUSE;
        }
        unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            err = -errno;
            close(fd);
            return err;
        }
    }
    chmod(path, 0660);
    if (listen(fd, 16) < 0) {
        int err = -errno;
        close(fd);
        unlink(path);
        return err;
    }
    struct rpc_server *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        unlink(path);
        return -ENOMEM;
    }
    s->d = d;
    s->fd = fd;
    s->epfd = -1;
    snprintf(s->path, sizeof(s->path), "%s", path);
    *out = s;
    return 0;
}

static void conn_free(struct rpc_conn *c)
{
    struct rpc_server *s = c->srv;
    for (struct rpc_conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    s->nconns--;
    free(c);
}

/* Close the socket; the connection itself lives on until nothing refers to
 * it (conn_reap): callers up the stack may still look at it, and deferred
 * answers may still be owed to it. */
static void conn_close(struct rpc_conn *c)
{
    if (c->fd >= 0) {
        if (c->srv->epfd >= 0)
            epoll_ctl(c->srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->gone = true;
}

/* Free a closed connection once no deferred answer is pending. Only called
 * where nothing else holds c. */
static void conn_reap(struct rpc_conn *c)
{
    if (c->gone && c->pending == 0)
        conn_free(c);
}

void rpc_server_destroy(struct rpc_server *s)
{
    if (!s)
        return;
    while (s->conns) {
        struct rpc_conn *c = s->conns;
        c->pending = 0;
        conn_close(c);
        conn_reap(c);
    }
    close(s->fd);
    unlink(s->path);
    free(s);
}

int rpc_server_fd(const struct rpc_server *s)
{
    return s->fd;
}

/* Write a whole answer line; a client that does not read within a second
 * loses its connection rather than stalling the control thread. */
static int send_line(struct rpc_conn *c, const char *text)
{
    size_t len = strlen(text), off = 0;
    while (off < len + 1) {
        const char *p = off < len ? text + off : "\n";
        size_t n = off < len ? len - off : 1;
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
            if (poll(&pfd, 1, 1000) <= 0)
                return -ETIMEDOUT;
            continue;
        }
        if (w < 0)
            return -errno;
        off += (size_t)w;
    }
    return 0;
}

static void answer(struct rpc_conn *c, json_t *id, json_t *result, const struct vsd_err *e)
{
    json_t *msg;
    struct vsd_rpc_counters *ct = &c->srv->d->rpc;
    ct->requests++;
    if (e && e->code) {
        if (e->code == -32700 || e->code == -32600)
            ct->malformed++;
        else if (e->code == -32601)
            ct->unknown_method++;
        else if (e->code == VSD_BAD_PARAMS)
            ct->bad_params++;
        else
            ct->failed++;
        msg = json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                        "error", "code", (json_int_t)e->code, "message", e->msg);
        json_decref(result);
    } else {
        msg = json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), "result",
                        result ? result : json_object());
    }
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (c->keep) {
        *c->keep = text;
        return;
    }
    if (!text || c->fd < 0 || send_line(c, text) < 0) {
        free(text);
        conn_close(c);
        return;
    }
    free(text);
}

void rpc_reply_deferred(struct rpc_conn *c, json_t *id, json_t *result, const struct vsd_err *e)
{
    c->pending--;
    if (c->gone)
        json_decref(result);
    else
        answer(c, id, result, e);
    json_decref(id);
    conn_reap(c);
}

/* The handlers; each returns a result or fills e. */
static json_t *dispatch(struct rpc_conn *c, const char *method, json_t *params, json_t *id,
                        bool *deferred, struct vsd_err *e)
{
    struct vsd *d = c->srv->d;
    *deferred = false;
    struct {
        const char *name;
        int (*op)(struct vsd *, const json_t *, struct vsd_err *);
    } simple[] = {
        {"switch-add", vsd_switch_add}, {"switch-del", vsd_switch_del},
        {"switch-set", vsd_switch_set}, {"vm-add", vsd_vm_add},
        {"vm-del", vsd_vm_del},         {"nic-set", vsd_nic_set},
        {"nic-del", vsd_nic_del},       {"fdb-add", vsd_fdb_add},
        {"fdb-del", vsd_fdb_del},       {"fdb-flush", vsd_fdb_flush},
        {"mirror-add", vsd_mirror_add}, {"mirror-del", vsd_mirror_del},
    };
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
        if (strcmp(method, simple[i].name) == 0)
            return simple[i].op(d, params, e) < 0 ? NULL : json_object();
    if (strcmp(method, "switch-list") == 0)
        return vsd_switch_list(d);
    if (strcmp(method, "vm-list") == 0)
        return vsd_vm_list(d);
    if (strcmp(method, "switch-show") == 0)
        return vsd_switch_show(d, params, e);
    if (strcmp(method, "vm-start") == 0)
        return vsd_vm_start(d, params, e);
    /* A parked answer is owed to a connection that outlives the request. */
    if (c->keep && (strcmp(method, "vm-stop") == 0 || strcmp(method, "capture") == 0)) {
        vsd_fail(e, VSD_FAILED, "%s needs a control connection", method);
        return NULL;
    }
    if (strcmp(method, "vm-stop") == 0) {
        json_t *r = vsd_vm_stop(d, params, c, id, deferred, e);
        if (*deferred)
            c->pending++;
        return r;
    }
    if (strcmp(method, "capture") == 0) {
        json_t *res = vsd_capture(d, params, c, id, deferred, e);
        if (*deferred)
            c->pending++;
        return res;
    }
    if (strcmp(method, "nic-add") == 0)
        return vsd_nic_add(d, params, e);
    if (strcmp(method, "nic-list") == 0)
        return vsd_nic_list(d, params, e);
    if (strcmp(method, "fdb-show") == 0)
        return vsd_fdb_show(d, params, e);
    if (strcmp(method, "stats") == 0)
        return vsd_stats(d, params, e);
    vsd_fail(e, -32601, "unknown method '%s'", method);
    return NULL;
}

static void handle_line(struct rpc_conn *c, const char *line, size_t len)
{
    struct vsd_err e = {0};
    json_error_t jerr;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req) {
        vsd_fail(&e, -32700, "request is not JSON: %s", jerr.text);
        answer(c, NULL, NULL, &e);
        return;
    }
    json_t *id = json_object_get(req, "id");
    json_t *method = json_object_get(req, "method");
    json_t *params = json_object_get(req, "params");
    const char *ver = json_string_value(json_object_get(req, "jsonrpc"));
    if (!json_is_object(req) || !ver || strcmp(ver, "2.0") != 0 || !json_is_string(method) ||
        (params && !json_is_object(params))) {
        vsd_fail(&e, -32600, "not a JSON-RPC 2.0 request with a method and object params");
        answer(c, id, NULL, &e);
        json_decref(req);
        return;
    }
    json_t *empty = NULL;
    if (!params)
        params = empty = json_object();
    bool deferred;
    json_t *result = dispatch(c, json_string_value(method), params, id, &deferred, &e);
    if (!deferred)
        answer(c, id, result, e.code ? &e : NULL);
    json_decref(empty);
    json_decref(req);
}

char *rpc_serve_line(struct vsd *d, const char *line, size_t len)
{
    struct rpc_server srv = {.d = d, .fd = -1, .epfd = -1};
    struct rpc_conn *c = calloc(1, sizeof(*c));
    char *text = NULL;
    if (!c)
        return NULL;
    c->srv = &srv;
    c->fd = -1;
    c->keep = &text;
    handle_line(c, line, len);
    free(c);
    return text;
}

static void on_readable(struct rpc_conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, RPC_MAX_REQUEST - c->len, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->len += (size_t)n;
        char *nl;
        while (c->fd >= 0 && (nl = memchr(c->buf, '\n', c->len))) {
            size_t line = (size_t)(nl - c->buf);
            handle_line(c, c->buf, line);
            if (c->fd < 0)
                return;
            c->len -= line + 1;
            memmove(c->buf, nl + 1, c->len);
        }
        if (c->fd < 0)
            return;
        if (c->len == RPC_MAX_REQUEST) {
            struct vsd_err e;
            vsd_fail(&e, -32600, "request longer than %d bytes", RPC_MAX_REQUEST);
            answer(c, NULL, NULL, &e);
            conn_close(c);
            return;
        }
    }
}

void rpc_server_on_event(struct rpc_server *s, int epfd, void *tag, uint32_t events)
{
    s->epfd = epfd;
    if (tag == s) {
        for (;;) {
            int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0)
                return;
            if (s->nconns >= RPC_MAX_CONNS) {
                close(fd);
                continue;
            }
            struct rpc_conn *c = calloc(1, sizeof(*c));
            if (!c) {
                close(fd);
                continue;
            }
            c->srv = s;
            c->fd = fd;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
            if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                close(fd);
                free(c);
                continue;
            }
            c->next = s->conns;
            s->conns = c;
            s->nconns++;
        }
    }
    struct rpc_conn *c = tag;
    if (events & EPOLLIN)
        on_readable(c);
    else if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP))
        conn_close(c);
    conn_reap(c);
}

