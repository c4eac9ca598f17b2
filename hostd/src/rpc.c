/*
 * The control socket: JSON-RPC 2.0, one request per line, answered in order
 * (docs/control-protocol.md). Requests are served on the control thread by
 * the endpoint's handler; a request that must wait (vm-stop, capture)
 * parks its answer (vsd_rpc_defer) and the connection stays open until it
 * is sent, even if the client goes away meanwhile.
 *
 * The control thread also answers the guests' hypercalls, so no client may
 * hold it: sockets are non-blocking and nothing here waits for a client.
 * An answer goes into the connection's output buffer and out as fast as
 * the client reads (EPOLLOUT). While a connection has unsent output, its
 * further requests are not served (they wait in its socket, as
 * ovsdb-server does with a backlog): a client that does not read stops
 * itself, never the host. A client is dropped, and counted
 * (rpc.slow_clients), when an answer has waited RPC_SEND_DEADLINE_S for it
 * to read, or when parked answers would pile more than RPC_OUT_MAX bytes
 * on unsent output. One answer is always taken whole, however large (a big
 * host's stats): it is what the client asked for.
 *
 * Each readable event reads at most one buffer, then the loop moves on:
 * a client that writes without pause gets its turn, not the thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "vsd-rpc.h"

#define RPC_MAX_REQUEST (64 * 1024)
#define RPC_MAX_CONNS 64
#define RPC_OUT_MAX (1024 * 1024)
#define RPC_SEND_DEADLINE_S 5.0
/* An output buffer above this is given back once it has drained. */
#define RPC_OUT_KEEP (64 * 1024)

struct rpc_conn {
    struct vsd_rpc_server *srv;
    int fd;
    size_t len;
    int pending;  /* parked answers */
    bool gone;    /* client closed or failed: free once nothing is parked */
    bool eof;     /* client shut its side: serve what was read, send, close */
    char **keep;  /* vsd_rpc_serve_line: the answer goes here, not to a socket */
    uint32_t events;  /* what epoll watches for on fd */
    char *out;        /* answers not yet taken by the client: out[off..out_len) */
    size_t out_off, out_len, out_size;
    double out_since; /* when the oldest unsent answer was queued */
    struct rpc_conn *next;
    char buf[RPC_MAX_REQUEST + 1];
};

struct vsd_rpc_server {
    struct vsd_rpc_endpoint ep;
    int fd;
    int epfd;
    int tfd;          /* deadlines of unsent answers */
    double timer_at;  /* when tfd fires, 0 if disarmed */
    size_t out_max;
    double deadline_s;
    int nconns;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct rpc_conn *conns;
};

int vsd_rpc_server_create(const char *path, const struct vsd_rpc_endpoint *ep,
                          struct vsd_rpc_server **out)
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
    struct vsd_rpc_server *s = calloc(1, sizeof(*s));
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (!s || tfd < 0) {
        int err = s ? -errno : -ENOMEM;
        if (tfd >= 0)
            close(tfd);
        free(s);
        close(fd);
        unlink(path);
        return err;
    }
    s->ep = *ep;
    s->fd = fd;
    s->epfd = -1;
    s->tfd = tfd;
    s->out_max = RPC_OUT_MAX;
    s->deadline_s = RPC_SEND_DEADLINE_S;
    snprintf(s->path, sizeof(s->path), "%s", path);
    *out = s;
    return 0;
}

static void conn_free(struct rpc_conn *c)
{
    struct vsd_rpc_server *s = c->srv;
    for (struct rpc_conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    s->nconns--;
    free(c->out);
    free(c);
}

/* Close the socket; the connection itself lives on until nothing refers to
 * it (conn_reap): callers up the stack may still look at it, and deferred
 * answers may still be owed to it. Only from the connection's own event
 * (or at teardown): an event for it may still wait in the loop's batch. */
static void conn_close(struct rpc_conn *c)
{
    if (c->fd >= 0) {
        if (c->srv->epfd >= 0)
            epoll_ctl(c->srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->gone = true;
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_size = 0;
    c->out_since = 0;
}

/* End a connection from anywhere (a timer, another client's request, a
 * parked answer): nothing more is read or sent, and the socket is shut
 * down, which the loop reports (EPOLLHUP) as an event of the connection's
 * own, where conn_close() and conn_reap() finish it. Freeing it here could
 * leave an event for it, already collected, pointing at freed memory. */
static void conn_kill(struct rpc_conn *c)
{
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    c->gone = true;
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_size = 0;
    c->out_since = 0;
}

/* A client that does not take its answers: ended, counted, logged. */
static void conn_drop_slow(struct rpc_conn *c, const char *why)
{
    c->srv->ep.counters->slow_clients++;
    vsd_log("control client dropped: %s", why);
    conn_kill(c);
}

/* Free a closed connection once no deferred answer is pending. Only called
 * where nothing else holds c, and no event for it can be pending. */
static void conn_reap(struct rpc_conn *c)
{
    if (c->gone && c->fd < 0 && c->pending == 0)
        conn_free(c);
}

void vsd_rpc_server_destroy(struct vsd_rpc_server *s)
{
    if (!s)
        return;
    while (s->conns) {
        struct rpc_conn *c = s->conns;
        c->pending = 0;
        conn_close(c);
        conn_reap(c);
    }
    close(s->tfd);
    close(s->fd);
    unlink(s->path);
    free(s);
}

void vsd_rpc_server_set_limits(struct vsd_rpc_server *s, size_t out_max, double deadline_s)
{
    s->out_max = out_max;
    s->deadline_s = deadline_s;
}

int vsd_rpc_server_fd(const struct vsd_rpc_server *s)
{
    return s->fd;
}

static bool conn_busy(const struct rpc_conn *c)
{
    return c->out_off < c->out_len;
}

/* Arm the deadline timer for t unless it fires earlier already. */
static void timer_arm(struct vsd_rpc_server *s, double t)
{
    if (s->timer_at && s->timer_at <= t)
        return;
    double in = t - vsd_now();
    if (in < 0.001)
        in = 0.001;
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)in,
                                          .tv_nsec = (long)((in - (double)(time_t)in) * 1e9)}};
    if (timerfd_settime(s->tfd, 0, &its, NULL) == 0)
        s->timer_at = t;
}

/* What epoll watches: requests while nothing is unsent, else only room to
 * send (and HUP/ERR, which epoll always reports). */
static void conn_watch(struct rpc_conn *c)
{
    uint32_t ev = conn_busy(c) ? EPOLLOUT : c->eof ? 0 : EPOLLIN | EPOLLRDHUP;
    if (c->gone || ev == c->events || c->srv->epfd < 0)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &e) < 0) {
        conn_kill(c);
        return;
    }
    c->events = ev;
}

/* Send what the client will take now. 0, or -1 if the connection ended. */
static int conn_flush(struct rpc_conn *c)
{
    while (conn_busy(c)) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w < 0) {
            conn_kill(c);
            return -1;
        }
        c->out_off += (size_t)w;
    }
    if (!conn_busy(c)) {
        c->out_off = c->out_len = 0;
        c->out_since = 0;
        if (c->out_size > RPC_OUT_KEEP) {
            free(c->out);
            c->out = NULL;
            c->out_size = 0;
        }
    }
    return 0;
}

/* Queue one answer line and send what fits; never waits. */
static void conn_send(struct rpc_conn *c, const char *text)
{
    size_t len = strlen(text), unsent = c->out_len - c->out_off;
    if (unsent && unsent + len + 1 > c->srv->out_max) {
        char why[128];
        snprintf(why, sizeof(why), "%zu bytes of answers unread, at most %zu", unsent + len + 1,
                 c->srv->out_max);
        conn_drop_slow(c, why);
        return;
    }
    if (c->out_off) {
        memmove(c->out, c->out + c->out_off, unsent);
        c->out_off = 0;
        c->out_len = unsent;
    }
    if (c->out_len + len + 1 > c->out_size) {
        size_t size = c->out_len + len + 1;
        char *out = realloc(c->out, size);
        if (!out) {
            vsd_log("control client dropped: no memory for a %zu-byte answer", len);
            conn_kill(c);
            return;
        }
        c->out = out;
        c->out_size = size;
    }
    memcpy(c->out + c->out_len, text, len);
    c->out[c->out_len + len] = '\n';
    c->out_len += len + 1;
    if (conn_flush(c) < 0)
        return;
    if (!unsent && conn_busy(c)) {
        c->out_since = vsd_now();
        timer_arm(c->srv, c->out_since + c->srv->deadline_s);
    }
    conn_watch(c);
}

static void answer(struct rpc_conn *c, json_t *id, json_t *result, const struct vsd_err *e)
{
    json_t *msg;
    struct vsd_rpc_counters *ct = c->srv->ep.counters;
    ct->requests++;
    if (e && e->code) {
        if (e->code == VSD_RPC_PARSE_ERROR || e->code == VSD_RPC_INVALID_REQUEST)
            ct->malformed++;
        else if (e->code == VSD_RPC_METHOD_NOT_FOUND)
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
    if (!text) {
        vsd_log("control client dropped: an answer could not be encoded");
        conn_kill(c);
    } else if (!c->gone) {
        conn_send(c, text);
    }
    free(text);
}

struct vsd_rpc_request {
    struct rpc_conn *conn;
    const char *method;
    const json_t *params;
    json_t *id;
    bool done; /* answered or deferred */
};

struct vsd_rpc_pending {
    struct rpc_conn *conn;
    json_t *id;
};

const char *vsd_rpc_request_method(const struct vsd_rpc_request *req)
{
    return req->method;
}

const json_t *vsd_rpc_request_params(const struct vsd_rpc_request *req)
{
    return req->params;
}

void vsd_rpc_answer(struct vsd_rpc_request *req, json_t *result, const struct vsd_err *e)
{
    req->done = true;
    answer(req->conn, req->id, result, e && e->code ? e : NULL);
}

bool vsd_rpc_request_can_wait(const struct vsd_rpc_request *req)
{
    return !req->conn->keep;
}

struct vsd_rpc_pending *vsd_rpc_defer(struct vsd_rpc_request *req)
{
    struct vsd_rpc_pending *p = vsd_rpc_request_can_wait(req) ? malloc(sizeof(*p)) : NULL;
    if (!p)
        return NULL;
    req->done = true;
    p->conn = req->conn;
    p->id = json_incref(req->id);
    p->conn->pending++;
    return p;
}

void vsd_rpc_pending_answer(struct vsd_rpc_pending *p, json_t *result, const struct vsd_err *e)
{
    struct rpc_conn *c = p->conn;
    c->pending--;
    if (c->gone)
        json_decref(result);
    else
        answer(c, p->id, result, e && e->code ? e : NULL);
    json_decref(p->id);
    free(p);
    conn_reap(c);
}

void vsd_rpc_pending_drop(struct vsd_rpc_pending *p)
{
    struct rpc_conn *c = p->conn;
    c->pending--;
    json_decref(p->id);
    free(p);
    conn_reap(c);
}

static void handle_line(struct rpc_conn *c, const char *line, size_t len)
{
    struct vsd_err e = {0};
    json_error_t jerr;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req) {
        vsd_fail(&e, VSD_RPC_PARSE_ERROR, "request is not JSON: %s", jerr.text);
        answer(c, NULL, NULL, &e);
        return;
    }
    json_t *id = json_object_get(req, "id");
    json_t *method = json_object_get(req, "method");
    json_t *params = json_object_get(req, "params");
    const char *ver = json_string_value(json_object_get(req, "jsonrpc"));
    if (!json_is_object(req) || !ver || strcmp(ver, "2.0") != 0 || !json_is_string(method) ||
        (params && !json_is_object(params))) {
        vsd_fail(&e, VSD_RPC_INVALID_REQUEST,
                 "not a JSON-RPC 2.0 request with a method and object params");
        answer(c, id, NULL, &e);
        json_decref(req);
        return;
    }
    json_t *empty = NULL;
    if (!params)
        params = empty = json_object();
    struct vsd_rpc_request r = {
        .conn = c, .method = json_string_value(method), .params = params, .id = id};
    c->srv->ep.handler(c->srv->ep.ctx, &r);
    if (!r.done) {
        vsd_fail(&e, VSD_FAILED, "%s: no answer", r.method);
        answer(c, id, NULL, &e);
    }
    json_decref(empty);
    json_decref(req);
}

char *vsd_rpc_serve_line(const struct vsd_rpc_endpoint *ep, const char *line, size_t len)
{
    struct vsd_rpc_server srv = {.ep = *ep, .fd = -1, .epfd = -1, .tfd = -1};
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

/* Serve the complete request lines read so far, in order, while the
 * answers are taken; then close a connection that is done. */
static void serve_lines(struct rpc_conn *c)
{
    char *nl;
    while (!c->gone && !conn_busy(c) && (nl = memchr(c->buf, '\n', c->len))) {
        size_t line = (size_t)(nl - c->buf);
        handle_line(c, c->buf, line);
        if (c->gone)
            return;
        c->len -= line + 1;
        memmove(c->buf, nl + 1, c->len);
    }
    if (c->gone || conn_busy(c))
        return;
    if (c->len == RPC_MAX_REQUEST) {
        struct vsd_err e;
        vsd_fail(&e, VSD_RPC_INVALID_REQUEST, "request longer than %d bytes", RPC_MAX_REQUEST);
        c->len = 0;
        c->eof = true;
        answer(c, NULL, NULL, &e);
        if (c->gone || conn_busy(c))
            return;
    }
    if (c->eof)
        conn_kill(c);
}

static void on_readable(struct rpc_conn *c)
{
    if (conn_busy(c) || c->eof)
        return;
    ssize_t n = recv(c->fd, c->buf + c->len, RPC_MAX_REQUEST - c->len, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0)
        c->eof = true;
    c->len += (size_t)n;
    serve_lines(c);
}

static void on_writable(struct rpc_conn *c)
{
    if (conn_flush(c) == 0)
        serve_lines(c);
}

/* Drop the clients whose oldest unsent answer is past its deadline; arm
 * the timer for the next one. */
static void check_deadlines(struct vsd_rpc_server *s)
{
    uint64_t ticks;
    if (read(s->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
        vsd_log("control socket timer: %s", strerror(errno));
    s->timer_at = 0;
    double now = vsd_now(), next = 0;
    for (struct rpc_conn *c = s->conns, *nx; c; c = nx) {
        nx = c->next;
        if (c->gone || !conn_busy(c))
            continue;
        double due = c->out_since + s->deadline_s;
        if (now >= due) {
            char why[128];
            snprintf(why, sizeof(why), "an answer unread for %.1f s (%zu bytes left)",
                     now - c->out_since, c->out_len - c->out_off);
            conn_drop_slow(c, why);
        } else if (!next || due < next) {
            next = due;
        }
    }
    if (next)
        timer_arm(s, next);
}

void vsd_rpc_server_on_event(struct vsd_rpc_server *s, int epfd, void *tag, uint32_t events)
{
    if (s->epfd != epfd) {
        /* The first event tells us the loop: the deadline timer joins it. */
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->tfd};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->tfd, &ev) < 0)
            vsd_log("control socket: no deadline timer: %s", strerror(errno));
        s->epfd = epfd;
    }
    if (tag == &s->tfd) {
        check_deadlines(s);
        return;
    }
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
            c->events = EPOLLIN | EPOLLRDHUP;
            struct epoll_event ev = {.events = c->events, .data.ptr = c};
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
    if (!c->gone && (events & EPOLLOUT))
        on_writable(c);
    if (!c->gone && (events & (EPOLLIN | EPOLLRDHUP)))
        on_readable(c);
    /* Ended (here or elsewhere: this is its own event, the place to close
     * it), or both directions gone, so that nothing can be sent. */
    if (c->gone || (events & (EPOLLHUP | EPOLLERR)))
        conn_close(c);
    else
        conn_watch(c);
    conn_reap(c);
}

