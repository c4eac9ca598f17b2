/*
 * vswitch-ctl: the management client of vswitchd. One command line becomes
 * one JSON-RPC 2.0 request (docs/control-protocol.md) on vswitchd's Unix
 * socket; the answer is printed for people (tables and blocks modelled on
 * ovs-vsctl, ovs-appctl fdb/show and ovs-ofctl dump-ports) or, with --json,
 * as the result object for scripts.
 *
 * Arguments are checked here with the server's rules before anything is
 * sent, so a typo fails at once (exit status 2) with a message naming the
 * bad value and what is allowed; vswitchd checks everything again.
 *
 * Exit status: 0 success, 1 vswitchd refused or could not be reached,
 * 2 usage error.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#ifndef HVNET_VERSION
#define HVNET_VERSION "unknown"
#endif

#include "ctl.h"

/* Global options before COMMAND. Returns the index of COMMAND, 0 after
 * --help or --version (printed), or -EINVAL. */
static int parse_global(int argc, char **argv, struct ctl_options *o)
{
    char q[CTL_QUOTE_MAX];
    int i;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *arg = argv[i];
        const char *eq = strncmp(arg, "--", 2) ? NULL : strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const char *value = eq ? eq + 1 : NULL;
        long long n;

        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            ctl_print_main_help(stdout);
            return 0;
        }
        if (!strcmp(arg, "--version")) {
            printf("vswitch-ctl (hvnet) %s\n", HVNET_VERSION);
            return 0;
        }
        if (!strcmp(arg, "--json")) {
            o->json = true;
            continue;
        }
        if ((len == 8 && !strncmp(arg, "--socket", 8)) || (len == 9 && !strncmp(arg, "--timeout", 9))) {
            if (!value) {
                if (i + 1 >= argc)
                    return ctl_usage_error(NULL, "%.*s needs a value: %.*s %s", (int)len, arg,
                                       (int)len, arg, len == 8 ? "PATH" : "S");
                value = argv[++i];
            }
            if (len == 8) {
                if (!*value)
                    return ctl_usage_error(NULL, "--socket needs a path");
                if (strlen(value) >= sizeof(((struct sockaddr_un *)0)->sun_path))
                    return ctl_usage_error(NULL, "bad --socket '%s': too long; allowed at most %zu bytes",
                                       ctl_quote(value, q, sizeof q),
                                       sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
                o->socket_path = value;
            } else {
                int err = ctl_parse_uint(value, 1, CTL_MAX_TIMEOUT_S, &n);

                if (err)
                    return ctl_usage_error(NULL, "bad --timeout '%s': %sallowed 1..%d seconds",
                                       ctl_quote(value, q, sizeof q),
                                       err == -EINVAL ? "not a number; " : "", CTL_MAX_TIMEOUT_S);
                o->timeout_s = (unsigned)n;
                o->timeout_given = true;
            }
            continue;
        }
        return ctl_usage_error(NULL, "unknown option '%s'; allowed before the command: --socket PATH, "
                           "--json, --timeout S, --help, --version", ctl_quote(arg, q, sizeof q));
    }
    if (i >= argc)
        return ctl_usage_error(NULL, "missing command; run 'vswitch-ctl --help' for the list");
    return i;
}
int main(int argc, char **argv)
{
    struct ctl_options opts = {
        .socket_path = CTL_DEFAULT_SOCKET,
        .timeout_s = CTL_DEFAULT_TIMEOUT_S,
    };
    const struct command *cmd;
    json_t *params = NULL, *result = NULL;
    const char *env = getenv("HVNET_SOCKET");
    enum ctl_exit status = CTL_EXIT_FAIL;
    long long deadline, wait_s;
    json_int_t capture_s = 0;
    int ci, err;

    if (env && *env)
        opts.socket_path = env;
    ci = parse_global(argc, argv, &opts);
    if (ci <= 0)
        return ci ? CTL_EXIT_USAGE : CTL_EXIT_OK;

    if (!strcmp(argv[ci], "help")) {
        char q[CTL_QUOTE_MAX];

        if (ci + 1 >= argc) {
            ctl_print_main_help(stdout);
            return CTL_EXIT_OK;
        }
        if (ci + 2 < argc) {
            ctl_usage_error("help", "unexpected argument '%s'; usage: help [COMMAND]",
                        ctl_quote(argv[ci + 2], q, sizeof q));
            return CTL_EXIT_USAGE;
        }
        if (!strcmp(argv[ci + 1], "help")) {
            ctl_print_main_help(stdout);
            return CTL_EXIT_OK;
        }
        cmd = ctl_find_command(argv[ci + 1]);
        if (!cmd) {
            ctl_unknown_command(argv[ci + 1]);
            return CTL_EXIT_USAGE;
        }
        ctl_print_command_help(stdout, cmd);
        return CTL_EXIT_OK;
    }
    cmd = ctl_find_command(argv[ci]);
    if (!cmd) {
        ctl_unknown_command(argv[ci]);
        return CTL_EXIT_USAGE;
    }
    for (int i = ci + 1; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            ctl_print_command_help(stdout, cmd);
            return CTL_EXIT_OK;
        }
    }

    params = json_object();
    if (!params) {
        err = -ENOMEM;
        goto out;
    }
    err = ctl_parse_command(cmd, argc - ci - 1, argv + ci + 1, params);
    if (err) {
        if (err == -EINVAL)
            status = CTL_EXIT_USAGE;
        goto out;
    }

    /* A capture answers when it ends: allow its own duration on top. */
    wait_s = opts.timeout_s;
    if (!strcmp(cmd->name, "capture")) {
        if (ctl_get_int(params, "timeout", &capture_s))
            wait_s += capture_s;
        else if (!opts.timeout_given)
            wait_s = -1;
    }
    deadline = wait_s < 0 ? -1 : ctl_now_ms() + wait_s * 1000;

    err = ctl_rpc_call(&opts, cmd->name, params, deadline, &result);
    if (err)
        goto out;
    if (opts.json) {
        char *s = json_dumps(result, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);

        if (!s) {
            err = -ENOMEM;
            goto out;
        }
        printf("%s\n", s);
        free(s);
    } else {
        err = cmd->print(result, params);
        if (err)
            goto out;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "vswitch-ctl: cannot write the output: %s\n", strerror(errno));
        goto out;
    }
    status = CTL_EXIT_OK;

out:
    if (err == -ENOMEM)
        fprintf(stderr, "vswitch-ctl: out of memory\n");
    json_decref(result);
    json_decref(params);
    return status;
}
