/*
 * vswitch-ctl's parts: the command table and argument checks (ctl-commands.c,
 * ctl-args.c), the request on vswitchd's socket (ctl-rpc.c), the output
 * (ctl-print.c) and main() (vswitch-ctl.c).
 */
#ifndef CTL_H
#define CTL_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>


#define CTL_DEFAULT_SOCKET "/run/hvnet/vswitchd.sock"
#define CTL_DEFAULT_TIMEOUT_S 30
#define CTL_MAX_TIMEOUT_S 86400
#define CTL_REQUEST_MAX (64 * 1024)        /* vswitchd refuses larger requests */
#define CTL_REPLY_MAX (64 * 1024 * 1024)   /* a sanity bound, not a protocol limit */
#define CTL_REQUEST_ID 1

#define CTL_NAME_MAX 31  /* switches and VMs */
#define CTL_NIC_MAX 15   /* NICs become interface names (IFNAMSIZ - 1) */
#define CTL_NETNS_MAX 64 /* as hv-vm (NETTAP_NS_NAME_MAX) */
#define CTL_PORT_MAX 63
#define CTL_VLAN_MAX 4094

#define CTL_QUOTE_MAX 64 /* bytes of a bad value echoed in a message */

enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAIL = 1,
    CTL_EXIT_USAGE = 2,
};

struct ctl_options {
    const char *socket_path;
    bool json;
    unsigned timeout_s;
    bool timeout_given;
};

enum arg_kind {
    ARG_END,         /* terminates a spec array */
    ARG_FLAG,        /* no value: the parameter is true */
    ARG_UINT,        /* decimal integer in min..max */
    ARG_ONOFF,       /* on|off: a boolean */
    ARG_TEXT,        /* non-empty text, passed as is */
    ARG_SWITCH_TYPE, /* private|internal|external */
    ARG_NAME,        /* switch or VM name */
    ARG_NIC,         /* NIC name */
    ARG_NETNS,       /* network namespace */
    ARG_TARGET,      /* SW or VM/NIC */
    ARG_MAC,         /* unicast, non-zero xx:xx:xx:xx:xx:xx */
    ARG_TRUNK,       /* comma list of VLAN IDs and ranges */
    ARG_PORT,        /* VM/NIC or a switch's own port */
    ARG_PORT_LIST,   /* comma list of ARG_PORT */
    ARG_FILE,        /* a path, made absolute: vswitchd has another cwd */
    ARG_WORKER,      /* a worker lcore in min..max, or auto */
    ARG_AUTO_UINT,   /* a number in min..max, or auto */
};

/* One positional argument or option of a command. */
struct arg_spec {
    enum arg_kind kind;
    const char *name;    /* "--mtu", "-w"; NULL for a positional */
    const char *metavar; /* "N", "NAME"; NULL for ARG_FLAG */
    const char *label;   /* how messages call a positional: "switch name" */
    long long min, max;  /* ARG_UINT */
    const char *param;   /* JSON-RPC parameter it sets */
    bool required;       /* options only: must be given */
    bool optional;       /* positionals only: may be left out (trailing) */
    const char *help;
};

struct command {
    const char *name;
    const char *summary; /* one line for the command list */
    const char *usage;   /* the contract's synopsis, after "vswitch-ctl " */
    const char *description;
    const struct arg_spec *pos;
    const struct arg_spec *opts;
    const struct arg_spec *more_opts;
    /* Rules between arguments, once all are parsed. 0 or -EINVAL. */
    int (*check)(const struct command *cmd, const json_t *params);
    /* Human output of the result. 0 or -errno. */
    int (*print)(const json_t *result, const json_t *params);
};

/* ctl-args.c: argument checks, with the server's rules. */
/* The first len bytes of a user-supplied value, made safe for a one-line
 * message in buf: control bytes become '?', long values are cut with "...". */
const char *ctl_quote_n(const char *s, size_t len, char *buf, size_t size);
const char *ctl_quote(const char *s, char *buf, size_t size);
/* "vswitch-ctl: CMD: message" on stderr; returns -EINVAL (exit status 2). */
int ctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0, -EINVAL (not a plain decimal number) or -ERANGE (outside min..max). */
int ctl_parse_uint(const char *s, long long min, long long max, long long *out);
/* argv (what follows the command's name) into params, checked. 0, -EINVAL
 * (message printed) or another -errno. */
int ctl_parse_command(const struct command *cmd, int argc, char **argv, json_t *params);

/* ctl-commands.c: the command table. */
const struct command *ctl_find_command(const char *name);
/* Prints what is allowed; returns -EINVAL. */
int ctl_unknown_command(const char *name);
void ctl_print_main_help(FILE *f);
void ctl_print_command_help(FILE *f, const struct command *cmd);

/* ctl-rpc.c: the request. */
long long ctl_now_ms(void);
/* A copy of s with control bytes made spaces (the caller frees it). */
char *ctl_one_line(const char *s);
/* Sends one request and returns its result (a new reference) before
 * deadline (ms of ctl_now_ms(), -1: none). Every failure is reported on
 * stderr; the return value is then -errno. */
int ctl_rpc_call(const struct ctl_options *o, const char *method, json_t *params,
                 long long deadline, json_t **result_out);

/* ctl-print.c: the output of each command for people (struct command's
 * print). 0 or -errno. */
bool ctl_get_int(const json_t *obj, const char *key, json_int_t *out);
int ctl_print_generic(const json_t *result, const json_t *params);
int ctl_print_vm_state(const json_t *result, const json_t *params);
int ctl_print_nic_add(const json_t *result, const json_t *params);
int ctl_print_switch_list(const json_t *result, const json_t *params);
int ctl_print_switch_show(const json_t *result, const json_t *params);
int ctl_print_vm_list(const json_t *result, const json_t *params);
int ctl_print_nic_list(const json_t *result, const json_t *params);
int ctl_print_fdb(const json_t *result, const json_t *params);
int ctl_print_stats(const json_t *result, const json_t *params);
int ctl_print_capture(const json_t *result, const json_t *params);
int ctl_print_workers(const json_t *result, const json_t *params);
int ctl_print_vmq(const json_t *result, const json_t *params);

#endif
