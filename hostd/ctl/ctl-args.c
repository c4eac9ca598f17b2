/* Argument checks: each value against the server's rules, before anything is sent. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

static const char name_chars[] = "A-Z a-z 0-9 _ . -";

/* The first len bytes of a user-supplied value, made safe for a one-line
 * message: control bytes become '?', long values are cut with "...". */
const char *ctl_quote_n(const char *s, size_t len, char *buf, size_t size)
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

const char *ctl_quote(const char *s, char *buf, size_t size)
{
    return ctl_quote_n(s, strlen(s), buf, size);
}

__attribute__((format(printf, 2, 3)))
int ctl_usage_error(const char *cmd, const char *fmt, ...)
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
int ctl_parse_uint(const char *s, long long min, long long max, long long *out)
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
        if (ctl_parse_uint(elem, 1, CTL_VLAN_MAX, &lo) < 0 ||
            ctl_parse_uint(dash ? dash + 1 : elem, 1, CTL_VLAN_MAX, &hi) < 0)
            goto bad_elem;
        if (lo > hi)
            return ctl_usage_error(cmd, "bad %s '%s': range '%s' runs backwards; %s", label,
                               ctl_quote(value, q, sizeof q), ctl_quote_n(p, len, qe, sizeof qe), allowed);
        for (long long v = lo; v <= hi; v++)
            vlans[v] = true;
        if (!p[len])
            break;
        p += len + 1;
        continue;
bad_elem:
        return ctl_usage_error(cmd, "bad %s '%s': '%s' is not a VLAN ID 1..4094 or range; %s",
                           label, ctl_quote(value, q, sizeof q), ctl_quote_n(p, len, qe, sizeof qe),
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
            err = ctl_usage_error(cmd, "bad %s '%s': '%s' is not a port; allowed VM/NIC or a switch "
                              "port name, several separated by commas",
                              label, ctl_quote(value, q, sizeof q), ctl_quote_n(p, len, qe, sizeof qe));
            goto fail;
        }
        memcpy(elem, p, len);
        elem[len] = '\0';
        if (!port_ok(elem)) {
            err = ctl_usage_error(cmd, "bad %s '%s': '%s' is not a port; allowed VM/NIC (names of "
                              "%s) or a switch port name",
                              label, ctl_quote(value, q, sizeof q), ctl_quote(elem, qe, sizeof qe), name_chars);
            goto fail;
        }
        json_array_foreach(arr, i, v) {
            if (!strcmp(json_string_value(v), elem)) {
                err = ctl_usage_error(cmd, "bad %s '%s': port '%s' is listed twice", label,
                                  ctl_quote(value, q, sizeof q), ctl_quote(elem, qe, sizeof qe));
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
    case ARG_WORKER:
        snprintf(buf, size, "allowed auto or an lcore %lld..%lld", spec->min, spec->max);
        return buf;
    case ARG_AUTO_UINT:
        snprintf(buf, size, "allowed auto or %lld..%lld", spec->min, spec->max);
        return buf;
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
        err = ctl_parse_uint(value, spec->min, spec->max, &n);
        if (err == -EINVAL)
            return ctl_usage_error(cmd, "bad %s '%s': not a number; %s", label,
                               ctl_quote(value, q, sizeof q), value_rule(spec, rule, sizeof rule));
        if (err)
            return ctl_usage_error(cmd, "bad %s '%s': out of range; %s", label,
                               ctl_quote(value, q, sizeof q), value_rule(spec, rule, sizeof rule));
        v = json_integer(n);
        break;
    case ARG_WORKER:
    case ARG_AUTO_UINT:
        if (!strcmp(value, "auto")) {
            v = json_string("auto");
            break;
        }
        err = ctl_parse_uint(value, spec->min, spec->max, &n);
        if (err)
            return ctl_usage_error(cmd, "bad %s '%s': %s", label, ctl_quote(value, q, sizeof q),
                                   value_rule(spec, rule, sizeof rule));
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
            return ctl_usage_error(cmd, "bad %s '%s': a multicast address; %s", label,
                               ctl_quote(value, q, sizeof q), value_rule(spec, rule, sizeof rule));
        } else if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) {
            return ctl_usage_error(cmd, "bad %s '%s': all zero; %s", label,
                               ctl_quote(value, q, sizeof q), value_rule(spec, rule, sizeof rule));
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
            return ctl_usage_error(cmd, "%s needs a file name", label);
        err = make_absolute(value, &v);
        if (err == -EILSEQ)
            return ctl_usage_error(cmd, "bad %s '%s': not valid UTF-8", label, ctl_quote(value, q, sizeof q));
        if (err) {
            fprintf(stderr, "vswitch-ctl: %s: cannot resolve %s '%s': %s\n", cmd, label,
                    ctl_quote(value, q, sizeof q), strerror(-err));
            return err;
        }
        break;
    case ARG_TEXT:
        if (!*value)
            return ctl_usage_error(cmd, "%s needs a non-empty value", label);
        v = json_string(value);
        if (!v)
            return ctl_usage_error(cmd, "bad %s '%s': not valid UTF-8", label, ctl_quote(value, q, sizeof q));
        break;
    case ARG_END:
        return -EINVAL;
    }
    if (!ok)
        return ctl_usage_error(cmd, "bad %s '%s': %s", label, ctl_quote(value, q, sizeof q),
                           value_rule(spec, rule, sizeof rule));
    if (!v)
        v = json_string(value);
    if (!v || json_object_set_new(params, spec->param, v) < 0)
        return -ENOMEM;
    return 0;
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
int ctl_parse_command(const struct command *cmd, int argc, char **argv, json_t *params)
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
                ctl_quote_n(arg, len, q, sizeof q);
                if (is_global_option(arg, len))
                    return ctl_usage_error(cmd->name, "option '%s' goes before the command: "
                                       "vswitch-ctl %s %s ...", q, q, cmd->name);
                list_options(cmd, allowed, sizeof allowed);
                if (!allowed[0])
                    return ctl_usage_error(cmd->name, "unknown option '%s'; %s takes no options", q,
                                       cmd->name);
                return ctl_usage_error(cmd->name, "unknown option '%s'; allowed: %s", q, allowed);
            }
            if (spec->kind == ARG_FLAG) {
                if (eq)
                    return ctl_usage_error(cmd->name, "%s takes no value", spec->name);
            } else if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return ctl_usage_error(cmd->name, "%s needs a value: %s %s", spec->name, spec->name,
                                   spec->metavar);
            }
            if (json_object_get(params, spec->param))
                return ctl_usage_error(cmd->name, "%s given twice", spec->name);
            err = set_param(cmd->name, spec, value, params);
            if (err)
                return err;
            continue;
        }
        if (cmd->pos[n_pos].kind == ARG_END)
            return ctl_usage_error(cmd->name, "unexpected argument '%s'; usage: %s",
                               ctl_quote(arg, q, sizeof q), usage);
        err = set_param(cmd->name, &cmd->pos[n_pos], arg, params);
        if (err)
            return err;
        n_pos++;
    }
    if (cmd->pos[n_pos].kind != ARG_END && !cmd->pos[n_pos].optional)
        return ctl_usage_error(cmd->name, "missing %s; usage: %s", cmd->pos[n_pos].metavar, usage);
    for (int g = 0; g < 2; g++)
        for (const struct arg_spec *s = groups[g]; s && s->kind != ARG_END; s++)
            if (s->required && !json_object_get(params, s->param))
                return ctl_usage_error(cmd->name, "missing %s %s; usage: %s", s->name, s->metavar,
                                   usage);
    return cmd->check ? cmd->check(cmd, params) : 0;
}
