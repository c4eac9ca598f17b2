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


#ifndef HVNET_VERSION
#define HVNET_VERSION "unknown"
#endif

#define CTL_DEFAULT_SOCKET "/run/hvnet/vswitchd.sock"
#define CTL_DEFAULT_TIMEOUT_S 30
#define CTL_MAX_TIMEOUT_S 86400
#define CTL_REQUEST_MAX (64 * 1024)        /* vswitchd refuses larger requests */
#define CTL_REPLY_MAX (64 * 1024 * 1024)   /* a sanity bound, not a protocol limit */
#define CTL_REQUEST_ID 1

#define CTL_NAME_MAX 31  /* switches and VMs */
#define CTL_NIC_MAX 15   /* NICs become interface names (IFNAMSIZ - 1) */
#define CTL_NETNS_MAX 64 /* as hv-vm (NETVSC_NS_NAME_MAX) */
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

const char *quote_n(const char *s, size_t len, char *buf, size_t size);
const char *quote(const char *s, char *buf, size_t size);
int usage_error(const char *cmd, const char *fmt, ...);
int parse_uint(const char *s, long long min, long long max, long long *out);
int parse_command(const struct command *cmd, int argc, char **argv, json_t *params);

const struct command *find_command(const char *name);
int unknown_command(const char *name);
void print_main_help(FILE *f);
void print_command_help(FILE *f, const struct command *cmd);

long long now_ms(void);
char *one_line(const char *s);
int rpc_call(const struct ctl_options *o, const char *method, json_t *params,
             long long deadline, json_t **result_out);

bool get_int(const json_t *obj, const char *key, json_int_t *out);
int print_generic(const json_t *result, const json_t *params);
int print_vm_state(const json_t *result, const json_t *params);
int print_nic_add(const json_t *result, const json_t *params);
int print_switch_list(const json_t *result, const json_t *params);
int print_switch_show(const json_t *result, const json_t *params);
int print_vm_list(const json_t *result, const json_t *params);
int print_nic_list(const json_t *result, const json_t *params);
int print_fdb(const json_t *result, const json_t *params);
int print_stats(const json_t *result, const json_t *params);
int print_capture(const json_t *result, const json_t *params);

#endif
