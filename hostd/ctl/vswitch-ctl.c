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
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

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

static const char name_chars[] = "A-Z a-z 0-9 _ . -";


/* The first len bytes of a user-supplied value, made safe for a one-line
 * message: control bytes become '?', long values are cut with "...". */
static const char *quote_n(const char *s, size_t len, char *buf, size_t size)
{
    size_t n = 0, i;

    for (i = 0; i < len && n + 4 < size; i++)
        buf[n++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (i < len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static const char *quote(const char *s, char *buf, size_t size)
{
    return quote_n(s, strlen(s), buf, size);
}

__attribute__((format(printf, 2, 3)))
static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fputs("vswitch-ctl: ", stderr);
    if (cmd)
        fprintf(stderr, "%s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -EINVAL;
}


static bool name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n < 1 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool dot_name(const char *s)
{
    return !strcmp(s, ".") || !strcmp(s, "..");
}

static bool nic_ok(const char *s)
{
    return name_ok(s, CTL_NIC_MAX) && strcmp(s, "lo") && !dot_name(s);
}

/* VM/NIC, split at the first '/'. */
static bool vm_nic_ok(const char *s)
{
    const char *slash = strchr(s, '/');
    char vm[CTL_NAME_MAX + 1];
    size_t n;

    if (!slash)
        return false;
    n = (size_t)(slash - s);
    if (n < 1 || n > CTL_NAME_MAX)
        return false;
    memcpy(vm, s, n);
    vm[n] = '\0';
    return name_ok(vm, CTL_NAME_MAX) && nic_ok(slash + 1);
}

/* A switch's own ports (host vNIC, uplink) are named by vswitchd; only the
 * characters that would break a list or a line are refused here. */
static bool port_ok(const char *s)
{
    size_t n = strlen(s);

    if (strchr(s, '/'))
        return vm_nic_ok(s);
    if (n < 1 || n > CTL_PORT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || c == ',')
            return false;
    }
    return true;
}

/* 0, -EINVAL (not a plain decimal number) or -ERANGE (outside min..max). */
static int parse_uint(const char *s, long long min, long long max, long long *out)
{
    unsigned long long v;

    if (!*s)
        return -EINVAL;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -EINVAL;
    errno = 0;
    v = strtoull(s, NULL, 10);
    if (errno == ERANGE || v > (unsigned long long)max || (long long)v < min)
        return -ERANGE;
    *out = (long long)v;
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    if (strlen(s) != 17)
        return -EINVAL;
    for (int i = 0; i < 6; i++) {
        int hi = hex_digit(s[3 * i]), lo = hex_digit(s[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
            return -EINVAL;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* "10,20-30" into a sorted array of VLAN IDs. */
static int parse_trunk(const char *cmd, const char *label, const char *value, json_t **out)
{
    static const char allowed[] = "allowed a comma list of VLAN IDs 1..4094 and ranges like 10-20";
    bool vlans[CTL_VLAN_MAX + 1] = { false };
    char q[CTL_QUOTE_MAX], qe[CTL_QUOTE_MAX];
    const char *p = value;
    json_t *arr;

    for (;;) {
        size_t len = strcspn(p, ",");
        char elem[16], *dash;
        long long lo, hi;

        if (len == 0 || len >= sizeof elem)
            goto bad_elem;
        memcpy(elem, p, len);
        elem[len] = '\0';
        dash = strchr(elem, '-');
        if (dash)
            *dash = '\0';
        if (parse_uint(elem, 1, CTL_VLAN_MAX, &lo) < 0 ||
            parse_uint(dash ? dash + 1 : elem, 1, CTL_VLAN_MAX, &hi) < 0)
            goto bad_elem;
        if (lo > hi)
            return usage_error(cmd, "bad %s '%s': range '%s' runs backwards; %s", label,
                               quote(value, q, sizeof q), quote_n(p, len, qe, sizeof qe), allowed);
        for (long long v = lo; v <= hi; v++)
            vlans[v] = true;
        if (!p[len])
            break;
        p += len + 1;
        continue;
bad_elem:
        return usage_error(cmd, "bad %s '%s': '%s' is not a VLAN ID 1..4094 or range; %s",
                           label, quote(value, q, sizeof q), quote_n(p, len, qe, sizeof qe),
                           allowed);
    }

    arr = json_array();
    if (!arr)
        return -ENOMEM;
    for (int v = 1; v <= CTL_VLAN_MAX; v++) {
        if (vlans[v] && json_array_append_new(arr, json_integer(v)) < 0) {
            json_decref(arr);
            return -ENOMEM;
        }
    }
    *out = arr;
    return 0;
}

static int parse_port_list(const char *cmd, const char *label, const char *value, json_t **out)
{
    char q[CTL_QUOTE_MAX], qe[CTL_QUOTE_MAX];
    const char *p = value;
    json_t *arr = json_array();
    int err;

    if (!arr)
        return -ENOMEM;
    for (;;) {
        size_t len = strcspn(p, ",");
        char elem[CTL_PORT_MAX + 1];
        size_t i;
        json_t *v;

        if (len == 0 || len > CTL_PORT_MAX) {
            err = usage_error(cmd, "bad %s '%s': '%s' is not a port; allowed VM/NIC or a switch "
                              "port name, several separated by commas",
                              label, quote(value, q, sizeof q), quote_n(p, len, qe, sizeof qe));
            goto fail;
        }
        memcpy(elem, p, len);
        elem[len] = '\0';
        if (!port_ok(elem)) {
            err = usage_error(cmd, "bad %s '%s': '%s' is not a port; allowed VM/NIC (names of "
                              "%s) or a switch port name",
                              label, quote(value, q, sizeof q), quote(elem, qe, sizeof qe), name_chars);
            goto fail;
        }
        json_array_foreach(arr, i, v) {
            if (!strcmp(json_string_value(v), elem)) {
                err = usage_error(cmd, "bad %s '%s': port '%s' is listed twice", label,
                                  quote(value, q, sizeof q), quote(elem, qe, sizeof qe));
                goto fail;
            }
        }
        if (json_array_append_new(arr, json_string(elem)) < 0) {
            err = -ENOMEM;
            goto fail;
        }
        if (!p[len])
            break;
        p += len + 1;
    }
    *out = arr;
    return 0;

fail:
    json_decref(arr);
    return err;
}

static int make_absolute(const char *path, json_t **out)
{
    char *cwd = NULL, *abs = NULL;
    int err = 0;

    if (path[0] == '/') {
        *out = json_string(path);
        return *out ? 0 : -EILSEQ;
    }
    cwd = getcwd(NULL, 0);
    if (!cwd)
        return -errno;
    if (asprintf(&abs, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "",
                 strncmp(path, "./", 2) ? path : path + 2) < 0) {
        abs = NULL;
        err = -ENOMEM;
        goto out_cwd;
    }
    *out = json_string(abs);
    if (!*out)
        err = -EILSEQ;
    free(abs);
out_cwd:
    free(cwd);
    return err;
}

static const char *value_rule(const struct arg_spec *spec, char *buf, size_t size)
{
    switch (spec->kind) {
    case ARG_UINT:
        snprintf(buf, size, "allowed %lld..%lld", spec->min, spec->max);
        return buf;
    case ARG_ONOFF:
        return "allowed on or off";
    case ARG_SWITCH_TYPE:
        return "allowed private, internal or external";
    case ARG_NAME:
        snprintf(buf, size, "allowed 1..%d characters of %s", CTL_NAME_MAX, name_chars);
        return buf;
    case ARG_NIC:
        snprintf(buf, size, "allowed 1..%d characters of %s, not lo, . or ..", CTL_NIC_MAX,
                 name_chars);
        return buf;
    case ARG_NETNS:
        snprintf(buf, size, "allowed 1..%d characters of %s, not . or ..", CTL_NETNS_MAX,
                 name_chars);
        return buf;
    case ARG_TARGET:
        snprintf(buf, size, "allowed a switch name, VM/NIC (names of 1..%d, NIC 1..%d "
                 "characters of %s), a host vNIC or SWITCH:uplink", CTL_NAME_MAX, CTL_NIC_MAX,
                 name_chars);
        return buf;
    case ARG_PORT:
        snprintf(buf, size, "allowed VM/NIC (names of %s) or a switch port name", name_chars);
        return buf;
    case ARG_MAC:
        return "allowed xx:xx:xx:xx:xx:xx (hex), unicast, not all zero";
    default:
        return "allowed a non-empty value";
    }
}

/* Checks one argument and stores it in params under spec->param.
 * 0, -EINVAL (message printed) or another -errno. */
static int set_param(const char *cmd, const struct arg_spec *spec, const char *value,
                     json_t *params)
{
    const char *label = spec->name ? spec->name : spec->label;
    char q[CTL_QUOTE_MAX], rule[160];
    json_t *v = NULL;
    long long n;
    uint8_t mac[6];
    bool ok = true;
    int err;

    switch (spec->kind) {
    case ARG_FLAG:
        v = json_true();
        break;
    case ARG_UINT:
        err = parse_uint(value, spec->min, spec->max, &n);
        if (err == -EINVAL)
            return usage_error(cmd, "bad %s '%s': not a number; %s", label,
                               quote(value, q, sizeof q), value_rule(spec, rule, sizeof rule));
        if (err)
            return usage_error(cmd, "bad %s '%s': out of range; %s", label,
                               quote(value, q, sizeof q), value_rule(spec, rule, sizeof rule));
        v = json_integer(n);
        break;
    case ARG_ONOFF:
        if (!strcmp(value, "on"))
            v = json_true();
        else if (!strcmp(value, "off"))
            v = json_false();
        else
            ok = false;
        break;
    case ARG_SWITCH_TYPE:
        ok = !strcmp(value, "private") || !strcmp(value, "internal") || !strcmp(value, "external");
        break;
    case ARG_NAME:
        ok = name_ok(value, CTL_NAME_MAX);
        break;
    case ARG_NIC:
        ok = nic_ok(value);
        break;
    case ARG_NETNS:
        ok = name_ok(value, CTL_NETNS_MAX) && !dot_name(value);
        break;
    case ARG_TARGET:
        ok = port_ok(value);
        break;
    case ARG_PORT:
        ok = port_ok(value);
        break;
    case ARG_MAC:
        if (parse_mac(value, mac) < 0) {
            ok = false;
        } else if (mac[0] & 1) {
            return usage_error(cmd, "bad %s '%s': a multicast address; %s", label,
                               quote(value, q, sizeof q), value_rule(spec, rule, sizeof rule));
        } else if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) {
            return usage_error(cmd, "bad %s '%s': all zero; %s", label,
                               quote(value, q, sizeof q), value_rule(spec, rule, sizeof rule));
        } else {
            char norm[18];
            snprintf(norm, sizeof norm, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
                     mac[3], mac[4], mac[5]);
            v = json_string(norm);
        }
        break;
    case ARG_TRUNK:
        err = parse_trunk(cmd, label, value, &v);
        if (err)
            return err;
        break;
    case ARG_PORT_LIST:
        err = parse_port_list(cmd, label, value, &v);
        if (err)
            return err;
        break;
    case ARG_FILE:
        if (!*value)
            return usage_error(cmd, "%s needs a file name", label);
        err = make_absolute(value, &v);
        if (err == -EILSEQ)
            return usage_error(cmd, "bad %s '%s': not valid UTF-8", label, quote(value, q, sizeof q));
        if (err) {
            fprintf(stderr, "vswitch-ctl: %s: cannot resolve %s '%s': %s\n", cmd, label,
                    quote(value, q, sizeof q), strerror(-err));
            return err;
        }
        break;
    case ARG_TEXT:
        if (!*value)
            return usage_error(cmd, "%s needs a non-empty value", label);
        v = json_string(value);
        if (!v)
            return usage_error(cmd, "bad %s '%s': not valid UTF-8", label, quote(value, q, sizeof q));
        break;
    case ARG_END:
        return -EINVAL;
    }
    if (!ok)
        return usage_error(cmd, "bad %s '%s': %s", label, quote(value, q, sizeof q),
                           value_rule(spec, rule, sizeof rule));
    if (!v)
        v = json_string(value);
    if (!v || json_object_set_new(params, spec->param, v) < 0)
        return -ENOMEM;
    return 0;
}


static int check_switch_add(const struct command *cmd, const json_t *params)
{
    const char *type = json_string_value(json_object_get(params, "type"));
    bool external = type && !strcmp(type, "external");

    if (external && !json_object_get(params, "uplink"))
        return usage_error(cmd->name, "an external switch needs --uplink DEVARGS (the DPDK "
                           "device that reaches the physical network)");
    if (!external && json_object_get(params, "uplink"))
        return usage_error(cmd->name, "--uplink is only for --type external; a %s switch has "
                           "no uplink", type);
    if (!external && json_object_get(params, "allow_management_os"))
        return usage_error(cmd->name, "--allow-management-os is only for --type external; %s",
                           type && !strcmp(type, "internal") ? "an internal switch always has a host vNIC"
                                                     : "a private switch has no host vNIC");
    return 0;
}

static int check_switch_set(const struct command *cmd, const json_t *params)
{
    if (json_object_size(params) < 2)
        return usage_error(cmd->name, "nothing to change; give --type, --uplink, "
                           "--allow-management-os, --management-vlan, --mtu, --fdb-max or "
                           "--fdb-aging");
    return 0;
}

static int check_nic(const struct command *cmd, const json_t *params)
{
    if (json_object_get(params, "vlan") && json_object_get(params, "trunk"))
        return usage_error(cmd->name, "--vlan and --trunk exclude each other: --vlan ID makes "
                           "an access port, --trunk LIST a trunk port");
    if (!strcmp(cmd->name, "nic-set") && json_object_size(params) < 3)
        return usage_error(cmd->name, "nothing to change; give at least one option (see "
                           "'vswitch-ctl help nic-set')");
    return 0;
}

static int print_generic(const json_t *result, const json_t *params);
static int print_vm_state(const json_t *result, const json_t *params);
static int print_nic_add(const json_t *result, const json_t *params);
static int print_switch_list(const json_t *result, const json_t *params);
static int print_switch_show(const json_t *result, const json_t *params);
static int print_vm_list(const json_t *result, const json_t *params);
static int print_nic_list(const json_t *result, const json_t *params);
static int print_fdb(const json_t *result, const json_t *params);
static int print_stats(const json_t *result, const json_t *params);
static int print_capture(const json_t *result, const json_t *params);

static const struct arg_spec pos_switch[] = {
    { .kind = ARG_NAME, .metavar = "NAME", .label = "switch name", .param = "name",
      .help = "the switch" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_vm[] = {
    { .kind = ARG_NAME, .metavar = "NAME", .label = "VM name", .param = "name",
      .help = "the VM" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_vm_nic[] = {
    { .kind = ARG_NAME, .metavar = "VM", .label = "VM name", .param = "vm", .help = "the VM" },
    { .kind = ARG_NIC, .metavar = "NIC", .label = "NIC name", .param = "nic",
      .help = "the NIC: its interface name inside the VM" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_opt_vm[] = {
    { .kind = ARG_NAME, .metavar = "VM", .label = "VM name", .param = "vm", .optional = true,
      .help = "only this VM's NICs" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_sw[] = {
    { .kind = ARG_NAME, .metavar = "SW", .label = "switch name", .param = "switch",
      .help = "the switch" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_target[] = {
    { .kind = ARG_TARGET, .metavar = "SW|VM/NIC", .label = "target", .param = "target",
      .optional = true, .help = "one switch's ports, or one NIC (default: every port)" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_port[] = {
    { .kind = ARG_PORT, .metavar = "PORT", .label = "port", .param = "port",
      .help = "VM/NIC, or a switch port as switch-show names it" },
    { .kind = ARG_END },
};

static const struct arg_spec opts_switch_add[] = {
    { .kind = ARG_SWITCH_TYPE, .name = "--type", .metavar = "private|internal|external",
      .param = "type", .required = true,
      .help = "private: VMs only; internal: plus a host vNIC named after the switch; "
              "external: plus an uplink to the physical network" },
    { .kind = ARG_TEXT, .name = "--uplink", .metavar = "DEVARGS", .param = "uplink",
      .help = "the uplink's DPDK device (external only), e.g. net_af_packet0,iface=eth1" },
    { .kind = ARG_FLAG, .name = "--allow-management-os", .param = "allow_management_os",
      .help = "also give the host a vNIC on the external switch" },
    { .kind = ARG_UINT, .name = "--management-vlan", .metavar = "ID", .min = 0,
      .max = CTL_VLAN_MAX, .param = "management_vlan",
      .help = "access VLAN of the host vNIC, 0..4094 (default 0: untagged)" },
    { .kind = ARG_UINT, .name = "--mtu", .metavar = "N", .min = 68, .max = 9000,
      .param = "mtu", .help = "L3 MTU of the switch, 68..9000 (default 1500)" },
    { .kind = ARG_UINT, .name = "--fdb-max", .metavar = "N", .min = 16, .max = 1048576,
      .param = "fdb_max", .help = "MAC table size, 16..1048576 (default 8192)" },
    { .kind = ARG_UINT, .name = "--fdb-aging", .metavar = "S", .min = 10, .max = 604800,
      .param = "fdb_aging", .help = "seconds a learned MAC lives unseen, 10..604800 (default 300)" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_switch_set[] = {
    { .kind = ARG_SWITCH_TYPE, .name = "--type", .metavar = "private|internal|external",
      .param = "type", .help = "change the switch's kind, live (VMs keep running)" },
    { .kind = ARG_TEXT, .name = "--uplink", .metavar = "DEVARGS", .param = "uplink",
      .help = "a new uplink for an external switch" },
    { .kind = ARG_ONOFF, .name = "--allow-management-os", .metavar = "on|off",
      .param = "allow_management_os", .help = "host vNIC on an external switch, or not" },
    { .kind = ARG_UINT, .name = "--management-vlan", .metavar = "ID", .min = 0,
      .max = CTL_VLAN_MAX, .param = "management_vlan",
      .help = "access VLAN of the host vNIC, 0..4094 (0: untagged)" },
    { .kind = ARG_UINT, .name = "--mtu", .metavar = "N", .min = 68, .max = 9000,
      .param = "mtu", .help = "L3 MTU of the switch, 68..9000" },
    { .kind = ARG_UINT, .name = "--fdb-max", .metavar = "N", .min = 16, .max = 1048576,
      .param = "fdb_max", .help = "MAC table size, 16..1048576 (learned entries are dropped)" },
    { .kind = ARG_UINT, .name = "--fdb-aging", .metavar = "S", .min = 10, .max = 604800,
      .param = "fdb_aging", .help = "seconds a learned MAC lives unseen, 10..604800" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_vm_add[] = {
    { .kind = ARG_NETNS, .name = "--netns", .metavar = "NS", .param = "netns",
      .help = "network namespace the VM's NICs appear in, 1..64 characters of "
              "A-Z a-z 0-9 _ . - (default: NAME)" },
    { .kind = ARG_UINT, .name = "--memory", .metavar = "MB", .min = 64, .max = 65536,
      .param = "memory_mb", .help = "guest memory in MiB, 64..65536 (default 256)" },
    { .kind = ARG_UINT, .name = "--cpus", .metavar = "N", .min = 1, .max = 64,
      .param = "cpus",
      .help = "virtual processors, 1..64 and at most the host's CPUs (default 1)" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_nic_add_switch[] = {
    { .kind = ARG_NAME, .name = "--switch", .metavar = "SW", .param = "switch",
      .required = true, .help = "the switch to connect the NIC to" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_nic_set_switch[] = {
    { .kind = ARG_NAME, .name = "--switch", .metavar = "SW", .param = "switch",
      .help = "move the NIC to another switch" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_nic[] = {
    { .kind = ARG_MAC, .name = "--mac", .metavar = "MAC", .param = "mac",
      .help = "xx:xx:xx:xx:xx:xx, unicast, not all zero (default: a generated "
              "random locally administered unicast address)" },
    { .kind = ARG_UINT, .name = "--vlan", .metavar = "ID", .min = 0, .max = CTL_VLAN_MAX,
      .param = "vlan", .help = "access port in VLAN ID, 1..4094; 0 makes the NIC untagged "
                               "again (no VLAN, no trunk)" },
    { .kind = ARG_TRUNK, .name = "--trunk", .metavar = "LIST", .param = "trunk",
      .help = "trunk port for VLANs LIST: 1..4094, commas and ranges (10,20-30)" },
    { .kind = ARG_UINT, .name = "--native-vlan", .metavar = "ID", .min = 0, .max = CTL_VLAN_MAX,
      .param = "native_vlan", .help = "trunk: VLAN of untagged frames (default 0: the untagged network)" },
    { .kind = ARG_UINT, .name = "--mtu", .metavar = "N", .min = 68, .max = 9000,
      .param = "mtu", .help = "L3 MTU of the NIC, 68..9000, at most the switch's (default: the switch's); live, the guest re-initialises its NIC" },
    { .kind = ARG_ONOFF, .name = "--mac-spoofing", .metavar = "on|off", .param = "mac_spoofing",
      .help = "allow the guest to send from source MACs other than its own" },
    { .kind = ARG_ONOFF, .name = "--dhcp-guard", .metavar = "on|off", .param = "dhcp_guard",
      .help = "drop DHCP server messages the guest sends" },
    { .kind = ARG_ONOFF, .name = "--router-guard", .metavar = "on|off", .param = "router_guard",
      .help = "drop router advertisements and redirects the guest sends" },
    { .kind = ARG_UINT, .name = "--max-mbps", .metavar = "N", .min = 0, .max = 1000000,
      .param = "max_mbps", .help = "limit what the guest sends to N Mbit/s, 0 = no limit" },
    { .kind = ARG_UINT, .name = "--storm-limit", .metavar = "PPS", .min = 0, .max = 10000000,
      .param = "storm_limit",
      .help = "broadcast+multicast frames per second the guest may send, 0 = no limit" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_fdb_add[] = {
    { .kind = ARG_NAME, .metavar = "SW", .label = "switch name", .param = "switch",
      .help = "the switch" },
    { .kind = ARG_MAC, .metavar = "MAC", .label = "MAC address", .param = "mac",
      .help = "the address" },
    { .kind = ARG_PORT, .metavar = "PORT", .label = "port", .param = "port",
      .help = "where frames to it go: VM/NIC, a host vNIC or SWITCH:uplink" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_fdb_del[] = {
    { .kind = ARG_NAME, .metavar = "SW", .label = "switch name", .param = "switch",
      .help = "the switch" },
    { .kind = ARG_MAC, .metavar = "MAC", .label = "MAC address", .param = "mac",
      .help = "the address" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_fdb[] = {
    { .kind = ARG_UINT, .name = "--vlan", .metavar = "ID", .min = 0, .max = CTL_VLAN_MAX,
      .param = "vlan", .help = "the VLAN of the entry, 0 (untagged, default)..4094" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_mirror_add[] = {
    { .kind = ARG_PORT_LIST, .name = "--src", .metavar = "PORT[,PORT...]", .param = "src",
      .required = true, .help = "ports whose traffic (both directions) is copied" },
    { .kind = ARG_PORT, .name = "--dst", .metavar = "PORT", .param = "dst", .required = true,
      .help = "port that receives the copies" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_capture[] = {
    { .kind = ARG_FILE, .name = "-w", .metavar = "FILE", .param = "file", .required = true,
      .help = "pcap file to create (vswitchd writes it; a relative name is taken from "
              "the current directory); it must not exist yet" },
    { .kind = ARG_FLAG, .name = "--force", .param = "force",
      .help = "replace FILE if it exists; only a regular file with no other hard link "
              "is replaced, never a symbolic link, a device or a FIFO" },
    { .kind = ARG_UINT, .name = "-c", .metavar = "COUNT", .min = 1, .max = 2147483647,
      .param = "count", .help = "stop after COUNT frames" },
    { .kind = ARG_UINT, .name = "--timeout", .metavar = "S", .min = 1, .max = CTL_MAX_TIMEOUT_S,
      .param = "timeout", .help = "stop after S seconds, 1..86400" },
    { .kind = ARG_END },
};
static const struct arg_spec none[] = { { .kind = ARG_END } };

static const struct command commands[] = {
    { "switch-add", "create a virtual switch",
      "switch-add NAME --type private|internal|external\n"
      "        [--uplink DEVARGS] [--allow-management-os] [--management-vlan ID]\n"
      "        [--mtu N] [--fdb-max N] [--fdb-aging S]",
      "A private switch connects VMs only; an internal switch also gives the host a\n"
      "vNIC (a TAP in the root namespace named after the switch); an external switch\n"
      "connects the VMs to the physical network through an uplink, plus a host vNIC\n"
      "with --allow-management-os.",
      pos_switch, opts_switch_add, NULL, check_switch_add, print_generic },
    { "switch-del", "delete a switch (refused while NICs use it)", "switch-del NAME", NULL,
      pos_switch, NULL, NULL, NULL, print_generic },
    { "switch-set", "change a switch's settings, live",
      "switch-set NAME [--type private|internal|external] [--uplink DEVARGS]\n"
      "        [--allow-management-os on|off] [--management-vlan ID] [--mtu N]\n"
      "        [--fdb-max N] [--fdb-aging S]",
      "Changing the kind, uplink or management-OS choice keeps the VMs running:\n"
      "new ports are made first, then the old ones go.",
      pos_switch, opts_switch_set, NULL, check_switch_set, print_generic },
    { "switch-list", "list the switches", "switch-list", NULL, none, NULL, NULL, NULL,
      print_switch_list },
    { "switch-show", "show a switch: kind, MTU, FDB, ports with counters", "switch-show NAME",
      NULL, pos_switch, NULL, NULL, NULL, print_switch_show },
    { "vm-add", "create a VM (a child partition)",
      "vm-add NAME [--netns NS] [--memory MB] [--cpus N]",
      "Creates the VM stopped; its NICs appear as interfaces in network namespace NS.",
      pos_vm, opts_vm_add, NULL, NULL, print_generic },
    { "vm-start", "start a VM", "vm-start NAME", NULL, pos_vm, NULL, NULL, NULL,
      print_vm_state },
    { "vm-stop", "stop a VM (answers once it has stopped)", "vm-stop NAME",
      "Waits until the VM has stopped; see --timeout.", pos_vm, NULL, NULL, NULL,
      print_vm_state },
    { "vm-del", "delete a stopped VM", "vm-del NAME", NULL, pos_vm, NULL, NULL, NULL,
      print_generic },
    { "vm-list", "list the VMs", "vm-list", NULL, none, NULL, NULL, NULL, print_vm_list },
    { "nic-add", "give a VM a network adapter on a switch",
      "nic-add VM NIC --switch SW [--mac MAC]\n"
      "        [--vlan ID | --trunk LIST] [--mtu N]\n"
      "        [--mac-spoofing on|off] [--dhcp-guard on|off]\n"
      "        [--router-guard on|off] [--max-mbps N]\n"
      "        [--native-vlan ID] [--storm-limit PPS]",
      "Prints the NIC's MAC address (the one given, or the one generated).\n"
      "MAC spoofing is off by default: the guest may only send from its own MAC.",
      pos_vm_nic, opts_nic_add_switch, opts_nic, check_nic, print_nic_add },
    { "nic-set", "change a NIC's settings",
      "nic-set VM NIC [--switch SW] [--mac MAC]\n"
      "        [--vlan ID | --trunk LIST] [--mtu N]\n"
      "        [--mac-spoofing on|off] [--dhcp-guard on|off]\n"
      "        [--router-guard on|off] [--max-mbps N]\n"
      "        [--native-vlan ID] [--storm-limit PPS]",
      "Moving a NIC to another switch bounces the guest's link, as Hyper-V does.",
      pos_vm_nic, opts_nic_set_switch, opts_nic, check_nic, print_generic },
    { "nic-del", "remove a NIC from a VM", "nic-del VM NIC", NULL, pos_vm_nic, NULL, NULL, NULL,
      print_generic },
    { "nic-list", "list the NICs (of one VM)", "nic-list [VM]", NULL, pos_opt_vm, NULL, NULL,
      NULL, print_nic_list },
    { "fdb-show", "show a switch's MAC table (like ovs-appctl fdb/show)", "fdb-show SW", NULL,
      pos_sw, NULL, NULL, NULL, print_fdb },
    { "fdb-add", "add a static MAC entry (never aged, never moved)",
      "fdb-add SW MAC PORT [--vlan ID]", NULL, pos_fdb_add, opts_fdb, NULL, NULL,
      print_generic },
    { "fdb-del", "remove a MAC entry (static or learned)", "fdb-del SW MAC [--vlan ID]", NULL,
      pos_fdb_del, opts_fdb, NULL, NULL, print_generic },
    { "fdb-flush", "forget every learned MAC of a switch (static entries stay)",
      "fdb-flush SW", NULL, pos_sw, NULL, NULL, NULL, print_generic },
    { "stats", "show port counters, drops by reason (like ovs-ofctl dump-ports)",
      "stats [SW|PORT]",
      "rx counts frames from the port into the switch (what a VM sent), tx frames\n"
      "the switch delivered out of the port (what a VM received). Drops are listed\n"
      "by reason; tx drop counts too_big, queue_full and link_down, rx drop every\n"
      "other reason.",
      pos_target, NULL, NULL, NULL, print_stats },
    { "mirror-add", "copy ports' traffic to another port",
      "mirror-add SW --src PORT[,PORT...] --dst PORT", NULL, pos_sw, opts_mirror_add, NULL,
      NULL, print_generic },
    { "mirror-del", "remove a switch's port mirror", "mirror-del SW", NULL, pos_sw, NULL, NULL,
      NULL, print_generic },
    { "capture", "write a port's traffic to a pcap file",
      "capture PORT -w FILE [--force] [-c COUNT] [--timeout S]",
      "vswitchd answers when the capture ends (COUNT frames or S seconds).\n"
      "FILE is created new, and no symbolic link in its path is followed; --force\n"
      "replaces only a regular file of vswitchd's user with one name. A capture\n"
      "that is refused (no such port, one already running there) leaves no file.\n"
      "vswitch-ctl waits S seconds plus the global --timeout; without --timeout S\n"
      "it waits without limit unless a global --timeout is given.",
      pos_port, opts_capture, NULL, NULL, print_capture },
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}


static void print_main_help(FILE *f)
{
    fprintf(f,
            "usage: vswitch-ctl [--socket PATH] [--json] [--timeout S] COMMAND [ARGS]\n"
            "Manage vswitchd: virtual switches, VMs and their NICs.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-12s %s\n", "help", "help COMMAND: one command's arguments");
    fprintf(f,
            "\n"
            "Options (before COMMAND):\n"
            "  --socket PATH  vswitchd's control socket (default: $HVNET_SOCKET, else\n"
            "                 " CTL_DEFAULT_SOCKET ")\n"
            "  --json         print the result as JSON (sorted keys) for scripts\n"
            "  --timeout S    wait at most S seconds for vswitchd, 1..%d (default %d)\n"
            "  --help         this text; 'vswitch-ctl COMMAND --help' for one command\n"
            "  --version      print the version\n"
            "\n"
            "Exit status: 0 done, 1 vswitchd refused or could not be reached, 2 usage error.\n",
            CTL_MAX_TIMEOUT_S, CTL_DEFAULT_TIMEOUT_S);
}

#define HELP_WIDTH 79
#define HELP_INDENT 27

/* text, word-wrapped to HELP_WIDTH, every line but the first indented. */
static void print_wrapped(FILE *f, const char *text, int col)
{
    while (*text) {
        size_t word = strcspn(text, " ");

        if (col > HELP_INDENT && col + 1 + (int)word > HELP_WIDTH) {
            fprintf(f, "\n%*s", HELP_INDENT, "");
            col = HELP_INDENT;
        } else if (col > HELP_INDENT) {
            fputc(' ', f);
            col++;
        }
        fwrite(text, 1, word, f);
        col += (int)word;
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', f);
}

static void print_arg_help(FILE *f, const struct arg_spec *specs)
{
    char left[64];

    for (const struct arg_spec *s = specs; s && s->kind != ARG_END; s++) {
        if (s->name && s->metavar)
            snprintf(left, sizeof left, "%s %s", s->name, s->metavar);
        else
            snprintf(left, sizeof left, "%s", s->name ? s->name : s->metavar);
        if (strlen(left) > HELP_INDENT - 3)
            fprintf(f, "  %s\n%*s", left, HELP_INDENT, "");
        else
            fprintf(f, "  %-*s", HELP_INDENT - 2, left);
        print_wrapped(f, s->help, HELP_INDENT);
    }
}

static void print_command_help(FILE *f, const struct command *cmd)
{
    fprintf(f, "usage: vswitch-ctl %s\n\n%c%s.\n", cmd->usage,
            cmd->summary[0] >= 'a' && cmd->summary[0] <= 'z' ? cmd->summary[0] - 'a' + 'A'
                                                             : cmd->summary[0],
            cmd->summary + 1);
    if (cmd->description)
        fprintf(f, "%s\n", cmd->description);
    if (cmd->pos[0].kind != ARG_END || cmd->opts || cmd->more_opts) {
        fputc('\n', f);
        print_arg_help(f, cmd->pos);
        print_arg_help(f, cmd->opts);
        print_arg_help(f, cmd->more_opts);
    }
    fprintf(f, "\nGlobal options go before the command: --socket PATH, --json, --timeout S\n"
               "(see 'vswitch-ctl --help').\n");
}

/* "nic-add VM NIC --switch SW [OPTIONS]" for one-line messages. */
static void short_usage(const struct command *cmd, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "%s", cmd->name);
    bool optional = false;
    const struct arg_spec *groups[2] = { cmd->opts, cmd->more_opts };

    for (const struct arg_spec *s = cmd->pos; s->kind != ARG_END && n < size; s++)
        n += (size_t)snprintf(buf + n, size - n, s->optional ? " [%s]" : " %s", s->metavar);
    for (int g = 0; g < 2; g++) {
        for (const struct arg_spec *s = groups[g]; s && s->kind != ARG_END && n < size; s++) {
            if (s->required)
                n += (size_t)snprintf(buf + n, size - n, " %s %s", s->name, s->metavar);
            else
                optional = true;
        }
    }
    if (optional && n < size)
        snprintf(buf + n, size - n, " [OPTIONS]");
}

static void list_options(const struct command *cmd, char *buf, size_t size)
{
    const struct arg_spec *groups[2] = { cmd->opts, cmd->more_opts };
    size_t n = 0;

    buf[0] = '\0';
    for (int g = 0; g < 2; g++)
        for (const struct arg_spec *s = groups[g]; s && s->kind != ARG_END && n < size; s++)
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", s->name);
}


static const struct arg_spec *find_option(const struct command *cmd, const char *arg, size_t len)
{
    const struct arg_spec *groups[2] = { cmd->opts, cmd->more_opts };

    for (int g = 0; g < 2; g++)
        for (const struct arg_spec *s = groups[g]; s && s->kind != ARG_END; s++)
            if (strlen(s->name) == len && !strncmp(s->name, arg, len))
                return s;
    return NULL;
}

static bool is_global_option(const char *arg, size_t len)
{
    static const char *const globals[] = { "--socket", "--json", "--timeout", "--version" };

    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
        if (strlen(globals[i]) == len && !strncmp(globals[i], arg, len))
            return true;
    return false;
}

/* 0, -EINVAL (message printed) or another -errno. */
static int parse_command(const struct command *cmd, int argc, char **argv, json_t *params)
{
    const struct arg_spec *groups[2] = { cmd->opts, cmd->more_opts };
    char usage[256], q[CTL_QUOTE_MAX];
    bool options_done = false;
    size_t n_pos = 0;
    int err;

    short_usage(cmd, usage, sizeof usage);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];

        if (!options_done && !strcmp(arg, "--")) {
            options_done = true;
            continue;
        }
        if (!options_done && arg[0] == '-' && arg[1]) {
            const char *eq = strncmp(arg, "--", 2) ? NULL : strchr(arg, '=');
            size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
            const struct arg_spec *spec = find_option(cmd, arg, len);
            const char *value = NULL;
            char allowed[512];

            if (!spec) {
                quote_n(arg, len, q, sizeof q);
                if (is_global_option(arg, len))
                    return usage_error(cmd->name, "option '%s' goes before the command: "
                                       "vswitch-ctl %s %s ...", q, q, cmd->name);
                list_options(cmd, allowed, sizeof allowed);
                if (!allowed[0])
                    return usage_error(cmd->name, "unknown option '%s'; %s takes no options", q,
                                       cmd->name);
                return usage_error(cmd->name, "unknown option '%s'; allowed: %s", q, allowed);
            }
            if (spec->kind == ARG_FLAG) {
                if (eq)
                    return usage_error(cmd->name, "%s takes no value", spec->name);
            } else if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return usage_error(cmd->name, "%s needs a value: %s %s", spec->name, spec->name,
                                   spec->metavar);
            }
            if (json_object_get(params, spec->param))
                return usage_error(cmd->name, "%s given twice", spec->name);
            err = set_param(cmd->name, spec, value, params);
            if (err)
                return err;
            continue;
        }
        if (cmd->pos[n_pos].kind == ARG_END)
            return usage_error(cmd->name, "unexpected argument '%s'; usage: %s",
                               quote(arg, q, sizeof q), usage);
        err = set_param(cmd->name, &cmd->pos[n_pos], arg, params);
        if (err)
            return err;
        n_pos++;
    }
    if (cmd->pos[n_pos].kind != ARG_END && !cmd->pos[n_pos].optional)
        return usage_error(cmd->name, "missing %s; usage: %s", cmd->pos[n_pos].metavar, usage);
    for (int g = 0; g < 2; g++)
        for (const struct arg_spec *s = groups[g]; s && s->kind != ARG_END; s++)
            if (s->required && !json_object_get(params, s->param))
                return usage_error(cmd->name, "missing %s %s; usage: %s", s->name, s->metavar,
                                   usage);
    return cmd->check ? cmd->check(cmd, params) : 0;
}


static long long now_ms(void)
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
    left = deadline - now_ms();
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

static char *one_line(const char *s)
{
    char *copy = strdup(s);

    for (char *p = copy; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return copy;
}

/* Sends one request and returns its result (a new reference). Every
 * failure is reported on stderr here; the return value is then -errno. */
static int rpc_call(const struct ctl_options *o, const char *method, json_t *params,
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
        char *clean = msg ? one_line(msg) : NULL;

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


static bool all_integers(const json_t *arr)
{
    size_t i;
    json_t *v;

    json_array_foreach(arr, i, v)
        if (!json_is_integer(v))
            return false;
    return json_array_size(arr) > 0;
}

/* Any JSON value as table text; NULL (missing) and null become "-". The
 * caller frees the string. Integer lists are shown with ranges (10,20-22). */
static char *format_value(const json_t *v)
{
    char *out = NULL;
    size_t len = 0;
    FILE *m;

    if (!v || json_is_null(v))
        return strdup("-");
    if (json_is_string(v))
        return one_line(json_string_value(v));
    if (json_is_boolean(v))
        return strdup(json_is_true(v) ? "yes" : "no");
    if (json_is_integer(v)) {
        if (asprintf(&out, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
            return NULL;
        return out;
    }
    if (json_is_real(v)) {
        if (asprintf(&out, "%g", json_real_value(v)) < 0)
            return NULL;
        return out;
    }
    if (json_is_array(v)) {
        size_t n = json_array_size(v);

        m = open_memstream(&out, &len);
        if (!m)
            return NULL;
        if (n == 0) {
            fputs("-", m);
        } else if (all_integers(v)) {
            for (size_t i = 0; i < n;) {
                json_int_t lo = json_integer_value(json_array_get(v, i)), hi = lo;
                size_t j = i + 1;

                while (j < n && json_integer_value(json_array_get(v, j)) == hi + 1)
                    hi = json_integer_value(json_array_get(v, j++));
                fprintf(m, "%s%" JSON_INTEGER_FORMAT, i ? "," : "", lo);
                if (hi > lo)
                    fprintf(m, "-%" JSON_INTEGER_FORMAT, hi);
                i = j;
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                const json_t *e = json_array_get(v, i);
                const json_t *name = json_is_object(e) ? json_object_get(e, "name") : NULL;
                char *s;

                if (json_is_object(e) && !name)
                    name = json_object_get(e, "port");
                s = format_value(name ? name : e);
                if (!s) {
                    fclose(m);
                    free(out);
                    return NULL;
                }
                fprintf(m, "%s%s", i ? "," : "", s);
                free(s);
            }
        }
        if (fclose(m) != 0) {
            free(out);
            return NULL;
        }
        return out;
    }
    out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return out;
}

#define TABLE_MAX_COLS 12

struct table {
    const char *headers[TABLE_MAX_COLS];
    bool right[TABLE_MAX_COLS];
    size_t n_cols;
    char **cells; /* n_rows * n_cols, owned; NULL shows as "-" */
    size_t n_rows, cap_rows;
};

static void table_add_col(struct table *t, const char *header, bool right)
{
    if (t->n_cols < TABLE_MAX_COLS) {
        t->headers[t->n_cols] = header;
        t->right[t->n_cols] = right;
        t->n_cols++;
    }
}

static int table_add_row(struct table *t)
{
    if (t->n_rows == t->cap_rows) {
        size_t ncap = t->cap_rows ? t->cap_rows * 2 : 16;
        char **ncells = realloc(t->cells, ncap * t->n_cols * sizeof *ncells);

        if (!ncells)
            return -ENOMEM;
        t->cells = ncells;
        t->cap_rows = ncap;
    }
    memset(&t->cells[t->n_rows * t->n_cols], 0, t->n_cols * sizeof *t->cells);
    t->n_rows++;
    return 0;
}

/* Sets a cell of the last row, taking s; NULL s means out of memory. */
static int table_set(struct table *t, size_t col, char *s)
{
    if (!s)
        return -ENOMEM;
    t->cells[(t->n_rows - 1) * t->n_cols + col] = s;
    return 0;
}

static void table_print(const struct table *t, const char *indent)
{
    size_t width[TABLE_MAX_COLS];

    for (size_t c = 0; c < t->n_cols; c++) {
        width[c] = strlen(t->headers[c]);
        for (size_t r = 0; r < t->n_rows; r++) {
            const char *s = t->cells[r * t->n_cols + c];
            size_t w = s ? strlen(s) : 1;
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t r = 0; r <= t->n_rows; r++) {
        fputs(indent, stdout);
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *s = r ? t->cells[(r - 1) * t->n_cols + c] : t->headers[c];
            bool last = c + 1 == t->n_cols;

            if (!s)
                s = "-";
            if (t->right[c])
                printf("%*s", (int)width[c], s);
            else if (last)
                fputs(s, stdout);
            else
                printf("%-*s", (int)width[c], s);
            if (!last)
                fputs("  ", stdout);
        }
        fputc('\n', stdout);
    }
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->n_rows = t->cap_rows = 0;
}

enum {
    COL_RIGHT = 1 << 0,     /* numbers */
    COL_OPTIONAL = 1 << 1,  /* shown only if some row has the field */
    COL_ZERO_DASH = 1 << 2, /* 0 shown as "-" (a pid of a stopped VM) */
};

struct column {
    const char *header;
    const char *key;
    const char *alt_key; /* read if key is missing */
    unsigned flags;
};

static const json_t *column_value(const json_t *row, const struct column *col)
{
    const json_t *v = json_object_get(row, col->key);

    if ((!v || json_is_null(v)) && col->alt_key)
        v = json_object_get(row, col->alt_key);
    return v;
}

/* Prints the top-level fields of an answer, one "key: value" line each. */
static int print_generic(const json_t *result, const json_t *params)
{
    const char *key;
    json_t *v;

    (void)params;
    if (!json_is_object(result)) {
        char *s = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);

        if (!s)
            return -ENOMEM;
        printf("%s\n", s);
        free(s);
        return 0;
    }
    json_object_foreach((json_t *)result, key, v) {
        char *s = format_value(v);

        if (!s)
            return -ENOMEM;
        printf("%s: %s\n", key, s);
        free(s);
    }
    return 0;
}

static int print_list(const json_t *result, const char *list_key, const struct column *cols,
                      size_t n_cols, const char *indent)
{
    const json_t *list = json_object_get(result, list_key);
    const struct column *shown[TABLE_MAX_COLS];
    struct table t = { .n_cols = 0 };
    size_t n_shown = 0, i;
    json_t *row;
    int err = 0;

    if (!json_is_array(list))
        return print_generic(result, NULL);
    for (size_t c = 0; c < n_cols && n_shown < TABLE_MAX_COLS; c++) {
        bool show = !(cols[c].flags & COL_OPTIONAL);

        json_array_foreach(list, i, row) {
            const json_t *v = column_value(row, &cols[c]);
            if (v && !json_is_null(v))
                show = true;
        }
        if (show) {
            shown[n_shown++] = &cols[c];
            table_add_col(&t, cols[c].header, cols[c].flags & COL_RIGHT);
        }
    }
    json_array_foreach(list, i, row) {
        err = table_add_row(&t);
        if (err)
            goto out;
        for (size_t c = 0; c < n_shown; c++) {
            const json_t *v = json_is_object(row) ? column_value(row, shown[c]) : NULL;

            if ((shown[c]->flags & COL_ZERO_DASH) && json_is_integer(v) &&
                json_integer_value(v) == 0)
                v = NULL;
            err = table_set(&t, c, format_value(v));
            if (err)
                goto out;
        }
    }
    table_print(&t, indent);
out:
    table_free(&t);
    return err;
}

static int print_switch_list(const json_t *result, const json_t *params)
{
    static const struct column cols[] = {
        { "NAME", "name", NULL, 0 },
        { "TYPE", "type", NULL, 0 },
        { "MTU", "mtu", NULL, COL_RIGHT },
        { "UPLINK", "uplink", NULL, COL_OPTIONAL },
        { "PORTS", "ports", NULL, 0 },
    };

    (void)params;
    return print_list(result, "switches", cols, sizeof cols / sizeof cols[0], "");
}

static int print_vm_list(const json_t *result, const json_t *params)
{
    static const struct column cols[] = {
        { "NAME", "name", NULL, 0 },
        { "NETNS", "netns", NULL, 0 },
        { "MEMORY_MB", "memory_mb", NULL, COL_RIGHT },
        { "CPUS", "cpus", NULL, COL_RIGHT },
        { "STATE", "state", NULL, 0 },
        { "PID", "pid", NULL, COL_RIGHT | COL_ZERO_DASH },
        { "NICS", "nics", NULL, 0 },
        { "LOG_SUPPRESSED", "log_suppressed", NULL, COL_RIGHT | COL_OPTIONAL | COL_ZERO_DASH },
    };

    (void)params;
    return print_list(result, "vms", cols, sizeof cols / sizeof cols[0], "");
}

static int print_nic_list(const json_t *result, const json_t *params)
{
    static const struct column cols[] = {
        { "VM", "vm", NULL, 0 },
        { "NIC", "nic", NULL, 0 },
        { "SWITCH", "switch", NULL, 0 },
        { "MAC", "mac", NULL, 0 },
        { "MTU", "mtu", NULL, COL_RIGHT },
        { "VLAN", "vlan", NULL, COL_RIGHT | COL_OPTIONAL },
        { "TRUNK", "trunk", NULL, COL_OPTIONAL },
        { "LINK", "link", NULL, 0 },
    };

    (void)params;
    return print_list(result, "nics", cols, sizeof cols / sizeof cols[0], "");
}

static bool get_int(const json_t *obj, const char *key, json_int_t *out)
{
    const json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return true;
}

/* Sum of a drops object; false if there is none. */
static bool drops_total(const json_t *port, json_int_t *out)
{
    const json_t *drops = json_object_get(port, "drops");
    const char *key;
    json_t *v;

    if (!json_is_object(drops))
        return false;
    *out = 0;
    json_object_foreach((json_t *)drops, key, v)
        if (json_is_integer(v))
            *out += json_integer_value(v);
    return true;
}

static const char *port_name(const json_t *port, char *buf, size_t size)
{
    const char *name = json_string_value(json_object_get(port, "port"));
    const char *vm = json_string_value(json_object_get(port, "vm"));
    const char *nic = json_string_value(json_object_get(port, "nic"));

    if (name)
        return name;
    if (vm && nic) {
        snprintf(buf, size, "%s/%s", vm, nic);
        return buf;
    }
    return "?";
}

static int print_switch_show(const json_t *result, const json_t *params)
{
    static const char *const known[] = { "name", "type", "mtu", "fdb_max", "fdb_aging",
                                         "fdb_entries", "ports" };
    static const char *const counters[] = { "rx_packets", "rx_bytes", "tx_packets", "tx_bytes" };
    const json_t *ports = json_object_get(result, "ports");
    const char *name = json_string_value(json_object_get(result, "name"));
    struct table t = { .n_cols = 0 };
    json_int_t n;
    const char *key;
    json_t *v;
    size_t i;
    int err = 0;
    char *s;

    if (!json_is_object(result))
        return print_generic(result, params);
    if (!name)
        name = json_string_value(json_object_get(params, "name"));
    printf("switch %s\n", name ? name : "?");
    s = format_value(json_object_get(result, "type"));
    if (!s)
        return -ENOMEM;
    printf("  type: %s\n", s);
    free(s);
    s = format_value(json_object_get(result, "mtu"));
    if (!s)
        return -ENOMEM;
    printf("  mtu: %s\n", s);
    free(s);
    fputs("  fdb: ", stdout);
    if (get_int(result, "fdb_entries", &n))
        printf("%" JSON_INTEGER_FORMAT " entries", n);
    else
        fputs("? entries", stdout);
    if (get_int(result, "fdb_max", &n))
        printf(", max %" JSON_INTEGER_FORMAT, n);
    if (get_int(result, "fdb_aging", &n))
        printf(", aging %" JSON_INTEGER_FORMAT " s", n);
    fputc('\n', stdout);
    /* Fields a newer vswitchd adds (uplink, ...) are shown as they come. */
    json_object_foreach((json_t *)result, key, v) {
        bool seen = false;

        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            seen |= !strcmp(key, known[k]);
        if (seen || json_is_object(v))
            continue;
        s = format_value(v);
        if (!s)
            return -ENOMEM;
        printf("  %s: %s\n", key, s);
        free(s);
    }
    if (!json_is_array(ports))
        return 0;
    printf("  ports: %zu\n", json_array_size(ports));
    if (!json_array_size(ports))
        return 0;

    table_add_col(&t, "PORT", false);
    table_add_col(&t, "TYPE", false);
    table_add_col(&t, "LINK", false);
    table_add_col(&t, "MTU", true);
    table_add_col(&t, "RX_PKTS", true);
    table_add_col(&t, "RX_BYTES", true);
    table_add_col(&t, "TX_PKTS", true);
    table_add_col(&t, "TX_BYTES", true);
    table_add_col(&t, "DROPS", true);
    json_array_foreach(ports, i, v) {
        char nbuf[80];
        size_t c = 0;

        err = table_add_row(&t);
        if (err)
            goto out;
        if (!json_is_object(v))
            continue;
        err = table_set(&t, c++, one_line(port_name(v, nbuf, sizeof nbuf)));
        if (!err)
            err = table_set(&t, c++, format_value(json_object_get(v, "type")));
        if (!err)
            err = table_set(&t, c++, format_value(json_object_get(v, "link")));
        if (!err)
            err = table_set(&t, c++, format_value(json_object_get(v, "mtu")));
        for (size_t k = 0; !err && k < sizeof counters / sizeof counters[0]; k++)
            err = table_set(&t, c++, format_value(json_object_get(v, counters[k])));
        if (!err) {
            char *d = NULL;

            if (!drops_total(v, &n))
                d = strdup("-");
            else if (asprintf(&d, "%" JSON_INTEGER_FORMAT, n) < 0)
                d = NULL;
            err = table_set(&t, c++, d);
        }
        if (err)
            goto out;
    }
    table_print(&t, "    ");
out:
    table_free(&t);
    return err;
}

static int print_fdb(const json_t *result, const json_t *params)
{
    const json_t *entries = json_object_get(result, "entries");
    int width = 5; /* ovs-appctl fdb/show: "%5s  %4d  MAC  %3d" */
    const json_t *e;
    size_t i;

    if (!json_is_array(entries))
        return print_generic(result, params);
    json_array_foreach(entries, i, e) {
        char *port = format_value(json_object_get(e, "port"));

        if (!port)
            return -ENOMEM;
        if ((int)strlen(port) > width)
            width = (int)strlen(port);
        free(port);
    }
    printf("%*s  VLAN  MAC                Age\n", width, "port");
    json_array_foreach(entries, i, e) {
        char *port = format_value(json_object_get(e, "port"));
        char *mac = format_value(json_object_get(e, "mac"));
        json_int_t vlan = 0, age;

        if (!port || !mac) {
            free(port);
            free(mac);
            return -ENOMEM;
        }
        get_int(e, "vlan", &vlan);
        printf("%*s  %4" JSON_INTEGER_FORMAT "  %-17s  ", width, port, vlan, mac);
        if (json_is_true(json_object_get(e, "static")))
            printf("static\n");
        else if (get_int(e, "age", &age))
            printf("%3" JSON_INTEGER_FORMAT "\n", age);
        else
            printf("%3s\n", "?");
        free(port);
        free(mac);
    }
    return 0;
}

/* Drop reasons charged to frames the switch could not deliver out of the
 * port; every other reason is a frame that came in from it. */
static bool is_tx_drop(const char *reason)
{
    return !strcmp(reason, "too_big") || !strcmp(reason, "queue_full") ||
           !strcmp(reason, "link_down");
}

static void print_count(const json_t *obj, const char *key)
{
    json_int_t n;

    if (get_int(obj, key, &n))
        printf("%" JSON_INTEGER_FORMAT, n);
    else
        fputc('?', stdout);
}

/* "name=N, ..." for the non-zero integer fields of obj, skipping skip[]. */
static int print_nonzero(const json_t *obj, const char *const *skip, bool *first)
{
    const char *key;
    json_t *v;
    int n = 0;

    json_object_foreach((json_t *)obj, key, v) {
        bool skipped = false;

        for (const char *const *s = skip; s && *s; s++)
            skipped |= !strcmp(key, *s);
        if (skipped || !json_is_integer(v) || json_integer_value(v) == 0)
            continue;
        printf("%s%s=%" JSON_INTEGER_FORMAT, *first ? "" : ", ", key, json_integer_value(v));
        *first = false;
        n++;
    }
    return n;
}

static int count_nonzero(const json_t *obj, const char *const *skip)
{
    const char *key;
    json_t *v;
    int n = 0;

    json_object_foreach((json_t *)obj, key, v) {
        bool skipped = false;

        for (const char *const *s = skip; s && *s; s++)
            skipped |= !strcmp(key, *s);
        if (!skipped && json_is_integer(v) && json_integer_value(v) != 0)
            n++;
    }
    return n;
}

static void print_port_stats(const json_t *port)
{
    static const char *const guest_skip[] = { "errors", NULL };
    const json_t *drops = json_object_get(port, "drops");
    const json_t *guest = json_object_get(port, "guest");
    json_int_t rx_drop = 0, tx_drop = 0;
    bool have_drops = json_is_object(drops), first;
    char nbuf[80], *name = one_line(port_name(port, nbuf, sizeof nbuf));
    int indent = (int)strlen("port : ") + (int)strlen(name ? name : "?");
    const char *key;
    json_t *v;

    if (have_drops) {
        json_object_foreach((json_t *)drops, key, v) {
            if (!json_is_integer(v))
                continue;
            if (is_tx_drop(key))
                tx_drop += json_integer_value(v);
            else
                rx_drop += json_integer_value(v);
        }
    }
    printf("port %s: rx pkts=", name ? name : "?");
    print_count(port, "rx_packets");
    fputs(", bytes=", stdout);
    print_count(port, "rx_bytes");
    if (have_drops)
        printf(", drop=%" JSON_INTEGER_FORMAT "\n", rx_drop);
    else
        fputs(", drop=?\n", stdout);
    printf("%*stx pkts=", indent, "");
    print_count(port, "tx_packets");
    fputs(", bytes=", stdout);
    print_count(port, "tx_bytes");
    if (have_drops)
        printf(", drop=%" JSON_INTEGER_FORMAT "\n", tx_drop);
    else
        fputs(", drop=?\n", stdout);

    if (have_drops && count_nonzero(drops, NULL)) {
        first = true;
        printf("%*sdrops: ", indent, "");
        print_nonzero(drops, NULL, &first);
        fputc('\n', stdout);
    }
    if (json_is_object(guest)) {
        const char *nvsp = json_string_value(json_object_get(guest, "nvsp_version"));
        const char *ndis = json_string_value(json_object_get(guest, "ndis_version"));
        const json_t *errors = json_object_get(guest, "errors");

        if (nvsp || ndis || count_nonzero(guest, guest_skip)) {
            first = true;
            printf("%*sguest: ", indent, "");
            if (nvsp) {
                printf("nvsp %s", nvsp);
                first = false;
            }
            if (ndis) {
                printf("%sndis %s", first ? "" : ", ", ndis);
                first = false;
            }
            print_nonzero(guest, guest_skip, &first);
            if (json_is_false(json_object_get(guest, "connected"))) {
                printf("%snot connected", first ? "" : ", ");
                first = false;
            }
            if (json_is_true(json_object_get(guest, "mtu_pending")))
                printf("%sMTU change pending (the guest has not re-initialised)",
                       first ? "" : ", ");
            fputc('\n', stdout);
        }
        if (json_is_object(errors) && count_nonzero(errors, NULL)) {
            first = true;
            printf("%*sguest errors: ", indent, "");
            print_nonzero(errors, NULL, &first);
            fputc('\n', stdout);
        }
    }
    free(name);
}

static int print_stats(const json_t *result, const json_t *params)
{
    const json_t *ports = json_object_get(result, "ports");
    const char *first_sw = NULL, *cur_sw = NULL;
    bool several = false;
    const json_t *p;
    size_t i;

    if (!json_is_array(ports))
        return print_generic(result, params);
    json_array_foreach(ports, i, p) {
        const char *sw = json_string_value(json_object_get(p, "switch"));

        if (!sw)
            continue;
        if (!first_sw)
            first_sw = sw;
        else if (strcmp(sw, first_sw))
            several = true;
    }
    json_array_foreach(ports, i, p) {
        const char *sw = json_string_value(json_object_get(p, "switch"));

        if (!json_is_object(p))
            continue;
        if (several && sw && (!cur_sw || strcmp(sw, cur_sw))) {
            char *clean = one_line(sw);

            printf("switch %s:\n", clean ? clean : "?");
            free(clean);
            cur_sw = sw;
        }
        print_port_stats(p);
    }
    const json_t *ctl = json_object_get(result, "control");
    if (json_is_object(ctl)) {
        static const char *const refusals[] = { "malformed", "unknown_method", "bad_params",
                                                "failed" };
        json_int_t rej = 0;
        for (size_t r = 0; r < sizeof refusals / sizeof refusals[0]; r++)
            rej += json_integer_value(json_object_get(ctl, refusals[r]));
        printf("control: %" JSON_INTEGER_FORMAT " requests, %" JSON_INTEGER_FORMAT
               " refused (malformed %" JSON_INTEGER_FORMAT ", unknown method %"
               JSON_INTEGER_FORMAT ", bad params %" JSON_INTEGER_FORMAT ", failed %"
               JSON_INTEGER_FORMAT "), %" JSON_INTEGER_FORMAT
               " slow clients dropped\n",
               json_integer_value(json_object_get(ctl, "requests")), rej,
               json_integer_value(json_object_get(ctl, "malformed")),
               json_integer_value(json_object_get(ctl, "unknown_method")),
               json_integer_value(json_object_get(ctl, "bad_params")),
               json_integer_value(json_object_get(ctl, "failed")),
               json_integer_value(json_object_get(ctl, "slow_clients")));
    }
    return 0;
}

static int print_vm_state(const json_t *result, const json_t *params)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    const char *state = json_string_value(json_object_get(result, "state"));
    json_int_t pid;

    if (!state)
        return print_generic(result, params);
    printf("%s: %s", name ? name : "?", state);
    if (get_int(result, "pid", &pid) && pid > 0)
        printf(" (pid %" JSON_INTEGER_FORMAT ")", pid);
    fputc('\n', stdout);
    return 0;
}

static int print_nic_add(const json_t *result, const json_t *params)
{
    const char *mac = json_string_value(json_object_get(result, "mac"));

    if (!mac)
        return print_generic(result, params);
    printf("%s\n", mac);
    return 0;
}

static int print_capture(const json_t *result, const json_t *params)
{
    const char *file = json_string_value(json_object_get(result, "file"));
    json_int_t n;

    if (!file)
        file = json_string_value(json_object_get(params, "file"));
    if (!get_int(result, "packets", &n))
        return print_generic(result, params);
    printf("%" JSON_INTEGER_FORMAT " packets written to %s\n", n, file ? file : "?");
    return 0;
}


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
            print_main_help(stdout);
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
                    return usage_error(NULL, "%.*s needs a value: %.*s %s", (int)len, arg,
                                       (int)len, arg, len == 8 ? "PATH" : "S");
                value = argv[++i];
            }
            if (len == 8) {
                if (!*value)
                    return usage_error(NULL, "--socket needs a path");
                if (strlen(value) >= sizeof(((struct sockaddr_un *)0)->sun_path))
                    return usage_error(NULL, "bad --socket '%s': too long; allowed at most %zu bytes",
                                       quote(value, q, sizeof q),
                                       sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
                o->socket_path = value;
            } else {
                int err = parse_uint(value, 1, CTL_MAX_TIMEOUT_S, &n);

                if (err)
                    return usage_error(NULL, "bad --timeout '%s': %sallowed 1..%d seconds",
                                       quote(value, q, sizeof q),
                                       err == -EINVAL ? "not a number; " : "", CTL_MAX_TIMEOUT_S);
                o->timeout_s = (unsigned)n;
                o->timeout_given = true;
            }
            continue;
        }
        return usage_error(NULL, "unknown option '%s'; allowed before the command: --socket PATH, "
                           "--json, --timeout S, --help, --version", quote(arg, q, sizeof q));
    }
    if (i >= argc)
        return usage_error(NULL, "missing command; run 'vswitch-ctl --help' for the list");
    return i;
}

static int unknown_command(const char *name)
{
    char list[1024], q[CTL_QUOTE_MAX];
    size_t n = 0;

    for (size_t i = 0; i < N_COMMANDS && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", commands[i].name);
    return usage_error(NULL, "unknown command '%s'; allowed: %s, help", quote(name, q, sizeof q),
                       list);
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
            print_main_help(stdout);
            return CTL_EXIT_OK;
        }
        if (ci + 2 < argc) {
            usage_error("help", "unexpected argument '%s'; usage: help [COMMAND]",
                        quote(argv[ci + 2], q, sizeof q));
            return CTL_EXIT_USAGE;
        }
        if (!strcmp(argv[ci + 1], "help")) {
            print_main_help(stdout);
            return CTL_EXIT_OK;
        }
        cmd = find_command(argv[ci + 1]);
        if (!cmd) {
            unknown_command(argv[ci + 1]);
            return CTL_EXIT_USAGE;
        }
        print_command_help(stdout, cmd);
        return CTL_EXIT_OK;
    }
    cmd = find_command(argv[ci]);
    if (!cmd) {
        unknown_command(argv[ci]);
        return CTL_EXIT_USAGE;
    }
    for (int i = ci + 1; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_command_help(stdout, cmd);
            return CTL_EXIT_OK;
        }
    }

    params = json_object();
    if (!params) {
        err = -ENOMEM;
        goto out;
    }
    err = parse_command(cmd, argc - ci - 1, argv + ci + 1, params);
    if (err) {
        if (err == -EINVAL)
            status = CTL_EXIT_USAGE;
        goto out;
    }

    /* A capture answers when it ends: allow its own duration on top. */
    wait_s = opts.timeout_s;
    if (!strcmp(cmd->name, "capture")) {
        if (get_int(params, "timeout", &capture_s))
            wait_s += capture_s;
        else if (!opts.timeout_given)
            wait_s = -1;
    }
    deadline = wait_s < 0 ? -1 : now_ms() + wait_s * 1000;

    err = rpc_call(&opts, cmd->name, params, deadline, &result);
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
