/* One JSON-RPC request on vswitchd's socket, with a deadline. */
#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

long long ctl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before deadline (-1: none) for poll(); -ETIMEDOUT once
 * it has passed. */
static int time_left(long long deadline)
{
    long long left;

    if (deadline < 0)
        return -1;
    left = deadline - ctl_now_ms();
    if (left <= 0)
        return -ETIMEDOUT;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

static int wait_fd(int fd, short events, long long deadline)
{
    struct pollfd pfd = { .fd = fd, .events = events };

    for (;;) {
        int ms = time_left(deadline), n;

        if (ms == -ETIMEDOUT)
            return -ETIMEDOUT;
        n = poll(&pfd, 1, ms);
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static int ctl_connect(const char *path, long long deadline, int *fd_out)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = strlen(path);
    int fd, err;

    if (len >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, len + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (deadline >= 0) {
        /* connect() on a Unix socket waits for room in the listen backlog
         * at most this long. */
        int ms = time_left(deadline);
        struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

        if (ms < 0) {
            err = ms;
            goto out_close;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
            err = -errno;
            goto out_close;
        }
    }
    if (connect(fd, (const struct sockaddr *)&sa, sizeof sa) < 0) {
        err = (errno == EAGAIN || errno == EINPROGRESS) ? -ETIMEDOUT : -errno;
        goto out_close;
    }
    *fd_out = fd;
    return 0;

out_close:
    close(fd);
    return err;
}

static int send_all(int fd, const char *buf, size_t len, long long deadline)
{
    while (len) {
        ssize_t n;
        int err = wait_fd(fd, POLLOUT, deadline);

        if (err)
            return err;
        n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads up to the first '\n' (or the end of the stream). Returns the
 * line's length, -ENODATA if the peer closed without sending anything,
 * -EMSGSIZE, -ETIMEDOUT or another -errno. */
static ssize_t recv_line(int fd, long long deadline, char **line_out)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ssize_t ret;

    for (;;) {
        ssize_t n;
        char *nl;
        int err;

        if (cap - len < 4096) {
            size_t ncap = cap ? cap * 2 : 16384;
            char *nbuf;

            if (ncap > CTL_REPLY_MAX + 1) {
                ret = -EMSGSIZE;
                goto fail;
            }
            nbuf = realloc(buf, ncap);
            if (!nbuf) {
                ret = -ENOMEM;
                goto fail;
            }
            buf = nbuf;
            cap = ncap;
        }
        err = wait_fd(fd, POLLIN, deadline);
        if (err) {
            ret = err;
            goto fail;
        }
        n = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            ret = -errno;
            goto fail;
        }
        if (n == 0) {
            if (!len) {
                ret = -ENODATA;
                goto fail;
            }
            break;
        }
        nl = memchr(buf + len, '\n', (size_t)n);
        len += (size_t)n;
        if (nl) {
            len = (size_t)(nl - buf);
            break;
        }
    }
    buf[len] = '\0';
    *line_out = buf;
    return (ssize_t)len;

fail:
    free(buf);
    return ret;
}

char *ctl_one_line(const char *s)
{
    char *copy = strdup(s);

    for (char *p = copy; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return copy;
}

/* Sends one request and returns its result (a new reference). Every
 * failure is reported on stderr here; the return value is then -errno. */
int ctl_rpc_call(const struct ctl_options *o, const char *method, json_t *params,
                    long long deadline, json_t **result_out)
{
    json_t *req = NULL, *reply = NULL, *error, *result;
    char *text = NULL, *line = NULL;
    json_error_t jerr;
    size_t len;
    ssize_t n;
    int fd = -1, err;

    req = json_pack("{s:s, s:i, s:s, s:O}", "jsonrpc", "2.0", "id", CTL_REQUEST_ID, "method",
                    method, "params", params);
    if (!req)
        return -ENOMEM;
    text = json_dumps(req, JSON_COMPACT);
    if (!text) {
        err = -ENOMEM;
        goto out;
    }
    len = strlen(text);
    if (len + 1 > CTL_REQUEST_MAX) {
        fprintf(stderr, "vswitch-ctl: %s: request too large (%zu bytes; vswitchd takes at most %d)\n",
                method, len + 1, CTL_REQUEST_MAX);
        err = -E2BIG;
        goto out;
    }
    text[len] = '\n'; /* json_dumps's terminating NUL is no longer needed */

    err = ctl_connect(o->socket_path, deadline, &fd);
    if (err) {
        fprintf(stderr, "vswitch-ctl: cannot connect to vswitchd at %s: %s (is vswitchd running?)\n",
                o->socket_path, strerror(-err));
        goto out;
    }
    err = send_all(fd, text, len + 1, deadline);
    if (err == -ETIMEDOUT)
        goto timed_out;
    if (err) {
        fprintf(stderr, "vswitch-ctl: cannot send to vswitchd at %s: %s\n", o->socket_path,
                strerror(-err));
        goto out;
    }
    n = recv_line(fd, deadline, &line);
    if (n == -ETIMEDOUT) {
        err = -ETIMEDOUT;
        goto timed_out;
    }
    if (n == -ENODATA) {
        fprintf(stderr, "vswitch-ctl: vswitchd at %s closed the connection without answering\n",
                o->socket_path);
        err = -ENODATA;
        goto out;
    }
    if (n == -EMSGSIZE) {
        fprintf(stderr, "vswitch-ctl: answer from vswitchd is larger than %d bytes\n",
                CTL_REPLY_MAX);
        err = -EMSGSIZE;
        goto out;
    }
    if (n < 0) {
        err = (int)n;
        fprintf(stderr, "vswitch-ctl: cannot read from vswitchd at %s: %s\n", o->socket_path,
                strerror(-err));
        goto out;
    }

    reply = json_loadb(line, (size_t)n, 0, &jerr);
    if (!reply || !json_is_object(reply)) {
        fprintf(stderr, "vswitch-ctl: vswitchd sent an answer that is not a JSON object%s%s\n",
                reply ? "" : ": ", reply ? "" : jerr.text);
        err = -EPROTO;
        goto out;
    }
    error = json_object_get(reply, "error");
    if (error && !json_is_null(error)) {
        const char *msg = json_string_value(json_object_get(error, "message"));
        json_t *code = json_object_get(error, "code");
        char *clean = msg ? ctl_one_line(msg) : NULL;

        if (clean && *clean)
            fprintf(stderr, "vswitch-ctl: %s\n", clean);
        else if (json_is_integer(code))
            fprintf(stderr, "vswitch-ctl: vswitchd refused %s (error %" JSON_INTEGER_FORMAT ")\n",
                    method, json_integer_value(code));
        else
            fprintf(stderr, "vswitch-ctl: vswitchd refused %s\n", method);
        free(clean);
        err = -EREMOTEIO;
        goto out;
    }
    result = json_object_get(reply, "result");
    if (!result) {
        fprintf(stderr, "vswitch-ctl: vswitchd's answer has neither result nor error\n");
        err = -EPROTO;
        goto out;
    }
    if (!json_is_integer(json_object_get(reply, "id")) ||
        json_integer_value(json_object_get(reply, "id")) != CTL_REQUEST_ID) {
        fprintf(stderr, "vswitch-ctl: vswitchd answered another request (wrong id)\n");
        err = -EPROTO;
        goto out;
    }
    *result_out = json_incref(result);
    err = 0;
    goto out;

timed_out:
    fprintf(stderr, "vswitch-ctl: no answer from vswitchd at %s within the time allowed "
            "(--timeout %u)\n", o->socket_path, o->timeout_s);
out:
    if (fd >= 0)
        close(fd);
    json_decref(reply);
    free(line);
    free(text);
    json_decref(req);
    return err;
}
