/* Answers printed for people: tables and blocks. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

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
        return ctl_one_line(json_string_value(v));
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
int ctl_print_generic(const json_t *result, const json_t *params)
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
        return ctl_print_generic(result, NULL);
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

int ctl_print_switch_list(const json_t *result, const json_t *params)
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

int ctl_print_vm_list(const json_t *result, const json_t *params)
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

int ctl_print_nic_list(const json_t *result, const json_t *params)
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

bool ctl_get_int(const json_t *obj, const char *key, json_int_t *out)
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

int ctl_print_switch_show(const json_t *result, const json_t *params)
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
        return ctl_print_generic(result, params);
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
    if (ctl_get_int(result, "fdb_entries", &n))
        printf("%" JSON_INTEGER_FORMAT " entries", n);
    else
        fputs("? entries", stdout);
    if (ctl_get_int(result, "fdb_max", &n))
        printf(", max %" JSON_INTEGER_FORMAT, n);
    if (ctl_get_int(result, "fdb_aging", &n))
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
        err = table_set(&t, c++, ctl_one_line(port_name(v, nbuf, sizeof nbuf)));
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

int ctl_print_fdb(const json_t *result, const json_t *params)
{
    const json_t *entries = json_object_get(result, "entries");
    int width = 5; /* ovs-appctl fdb/show: "%5s  %4d  MAC  %3d" */
    const json_t *e;
    size_t i;

    if (!json_is_array(entries))
        return ctl_print_generic(result, params);
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
        ctl_get_int(e, "vlan", &vlan);
        printf("%*s  %4" JSON_INTEGER_FORMAT "  %-17s  ", width, port, vlan, mac);
        if (json_is_true(json_object_get(e, "static")))
            printf("static\n");
        else if (ctl_get_int(e, "age", &age))
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

    if (ctl_get_int(obj, key, &n))
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
    char nbuf[80], *name = ctl_one_line(port_name(port, nbuf, sizeof nbuf));
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

int ctl_print_stats(const json_t *result, const json_t *params)
{
    const json_t *ports = json_object_get(result, "ports");
    const char *first_sw = NULL, *cur_sw = NULL;
    bool several = false;
    const json_t *p;
    size_t i;

    if (!json_is_array(ports))
        return ctl_print_generic(result, params);
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
            char *clean = ctl_one_line(sw);

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

int ctl_print_vm_state(const json_t *result, const json_t *params)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    const char *state = json_string_value(json_object_get(result, "state"));
    json_int_t pid;

    if (!state)
        return ctl_print_generic(result, params);
    printf("%s: %s", name ? name : "?", state);
    if (ctl_get_int(result, "pid", &pid) && pid > 0)
        printf(" (pid %" JSON_INTEGER_FORMAT ")", pid);
    fputc('\n', stdout);
    return 0;
}

int ctl_print_nic_add(const json_t *result, const json_t *params)
{
    const char *mac = json_string_value(json_object_get(result, "mac"));

    if (!mac)
        return ctl_print_generic(result, params);
    printf("%s\n", mac);
    return 0;
}

int ctl_print_capture(const json_t *result, const json_t *params)
{
    const char *file = json_string_value(json_object_get(result, "file"));
    json_int_t n;

    if (!file)
        file = json_string_value(json_object_get(params, "file"));
    if (!ctl_get_int(result, "packets", &n))
        return ctl_print_generic(result, params);
    printf("%" JSON_INTEGER_FORMAT " packets written to %s\n", n, file ? file : "?");
    return 0;
}

static json_int_t int_of(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

static double real_of(const json_t *obj, const char *key)
{
    return json_number_value(json_object_get(obj, key));
}

/* One block per worker, as ovs-appctl dpif-netdev/pmd-stats-show prints
 * its PMD threads, then the worker's ports as a table. */
int ctl_print_workers(const json_t *result, const json_t *params)
{
    const json_t *workers = json_object_get(result, "workers");
    const json_t *w;
    size_t i;

    if (!json_is_array(workers))
        return ctl_print_generic(result, params);
    json_array_foreach(workers, i, w) {
        const json_t *ports = json_object_get(w, "ports");
        json_int_t rx = int_of(w, "rx_packets");

        printf("worker %" JSON_INTEGER_FORMAT " (lcore %" JSON_INTEGER_FORMAT
               "), over %.3f s:\n",
               int_of(w, "worker"), int_of(w, "lcore"), real_of(w, "seconds"));
        printf("  rounds: %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT " busy)\n",
               int_of(w, "rounds"), int_of(w, "busy_rounds"));
        printf("  busy: %.1f %%\n", real_of(w, "busy_pct"));
        printf("  cycles: busy %" JSON_INTEGER_FORMAT ", idle %" JSON_INTEGER_FORMAT
               ", asleep %" JSON_INTEGER_FORMAT "\n",
               int_of(w, "busy_cycles"), int_of(w, "idle_cycles"), int_of(w, "sleep_cycles"));
        printf("  sleeps: %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT " woken)\n",
               int_of(w, "sleeps"), int_of(w, "wakeups"));
        printf("  packets: rx %" JSON_INTEGER_FORMAT ", tx %" JSON_INTEGER_FORMAT "\n", rx,
               int_of(w, "tx_packets"));
        if (rx)
            printf("  cycles per packet: %.1f\n", real_of(w, "cycles_per_packet"));
        else
            printf("  cycles per packet: - (nothing received)\n");
        if (json_array_size(ports) == 0) {
            printf("  ports: none\n");
            continue;
        }
        static const struct column cols[] = {
            { "PORT", "port", NULL, 0 },
            { "SWITCH", "switch", NULL, 0 },
            { "RX", "rx_packets", NULL, COL_RIGHT },
            { "TX", "tx_packets", NULL, COL_RIGHT },
            /* Optional: answers of a vswitchd from before placement. */
            { "LOAD%", "load_pct", NULL, COL_RIGHT | COL_OPTIONAL },
            { "PIN", "worker", NULL, COL_OPTIONAL },
            { "MOVES", "moves", NULL, COL_RIGHT | COL_OPTIONAL },
            /* The queues (channels, receive queues) it serves of the port. */
            { "QUEUES", "queues", NULL, COL_OPTIONAL },
        };
        int err = print_list(w, "ports", cols, sizeof cols / sizeof cols[0], "  ");
        if (err < 0)
            return err;
        const json_t *pt;
        size_t k;
        json_array_foreach(ports, k, pt) {
            if (json_is_true(json_object_get(pt, "pin_missing")))
                printf("  %s: pinned to lcore %" JSON_INTEGER_FORMAT
                       ", where no worker runs: placed automatically\n",
                       json_string_value(json_object_get(pt, "port")), int_of(pt, "worker"));
        }
    }
    const json_t *pl = json_object_get(result, "placement");
    if (json_is_object(pl))
        printf("dynamic VMQ: %s; moves: %" JSON_INTEGER_FORMAT " (spread %" JSON_INTEGER_FORMAT
               ", pack %" JSON_INTEGER_FORMAT ", pinned %" JSON_INTEGER_FORMAT ")\n",
               json_is_true(json_object_get(pl, "dynamic_vmq")) ? "on" : "off",
               int_of(pl, "moves"), int_of(pl, "spread_moves"), int_of(pl, "pack_moves"),
               int_of(pl, "pin_moves"));
    if (json_is_true(json_object_get(result, "cleared")))
        printf("(cleared: counting from zero again)\n");
    return 0;
}

/* A queue's filter in a few words: "02:00:00:00:00:01 vlan 10",
 * "... trunk 1-3 native 0", "... untagged", or "default" (uplink). */
static char *filter_text(const json_t *row)
{
    const json_t *f = json_object_get(row, "filter");
    const char *mac = json_string_value(json_object_get(f, "mac"));
    const json_t *vl = json_object_get(f, "vlan");
    const char *mode = json_string_value(json_object_get(vl, "mode"));
    char *out = NULL, *list = NULL;
    int rc;

    if (!mac)
        return strdup("default");
    if (mode && !strcmp(mode, "access")) {
        rc = asprintf(&out, "%s vlan %" JSON_INTEGER_FORMAT, mac, int_of(vl, "vlan"));
    } else if (mode && !strcmp(mode, "trunk")) {
        list = format_value(json_object_get(vl, "allowed"));
        if (!list)
            return NULL;
        rc = asprintf(&out, "%s trunk %s native %" JSON_INTEGER_FORMAT, mac, list,
                      int_of(vl, "native"));
    } else {
        rc = asprintf(&out, "%s untagged", mac);
    }
    free(list);
    return rc < 0 ? NULL : out;
}

int ctl_print_vmq(const json_t *result, const json_t *params)
{
    const json_t *queues = json_object_get(result, "queues");
    const json_t *q;
    size_t i;
    int err = 0;

    (void)params;
    if (!json_is_array(queues))
        return ctl_print_generic(result, params);
    if (json_array_size(queues) == 0) {
        printf("no queues\n");
        return 0;
    }
    /* The table's rows: each queue with its owner and filter as text. */
    json_t *rows = json_array();
    json_t *view = json_pack("{s:o}", "queues", rows);
    if (!view)
        return -ENOMEM;
    json_array_foreach(queues, i, q) {
        json_t *r = json_deep_copy(q);
        char *filter = filter_text(q);
        char *owner = NULL;
        const char *vm = json_string_value(json_object_get(q, "vm"));
        const char *nic = json_string_value(json_object_get(q, "nic"));
        const char *type = json_string_value(json_object_get(q, "type"));
        int rc = vm && nic ? asprintf(&owner, "%s/%s", vm, nic)
                           : asprintf(&owner, "default (%s)", type ? type : "?");
        if (!r || !filter || rc < 0) {
            json_decref(r);
            free(filter);
            if (rc >= 0)
                free(owner);
            err = -ENOMEM;
            goto out;
        }
        /* VMQ: a VM NIC's on and weight, or off: it shares the default
         * queue; the default queues themselves are "default"; "-" from a
         * vswitchd that does not say. */
        const json_t *vmq = json_object_get(q, "vmq");
        char vmq_text[32] = "-";
        if (json_is_true(json_object_get(q, "default")))
            snprintf(vmq_text, sizeof(vmq_text), "default");
        else if (json_is_true(vmq))
            snprintf(vmq_text, sizeof(vmq_text), "on %lld",
                     (long long)json_integer_value(json_object_get(q, "vmq_weight")));
        else if (json_is_false(vmq))
            snprintf(vmq_text, sizeof(vmq_text), "off (shared)");
        json_object_set_new(r, "vmq_text", json_string(vmq_text));
        json_object_set_new(r, "owner_text", json_string(owner));
        json_object_set_new(r, "filter_text", json_string(filter));
        free(owner);
        free(filter);
        json_array_append_new(rows, r);
    }
    static const struct column cols[] = {
        { "SWITCH", "switch", NULL, 0 },
        { "QUEUE", "queue", NULL, 0 },
        { "OWNER", "owner_text", NULL, 0 },
        { "OPEN", "open", NULL, 0 },
        { "FILTER", "filter_text", NULL, 0 },
        { "CLASSIFIER", "classifier", NULL, 0 },
        { "LCORE", "lcore", NULL, COL_RIGHT },
        { "RX", "rx_packets", NULL, COL_RIGHT },
        { "TX", "tx_packets", NULL, COL_RIGHT },
        { "LOAD%", "load_pct", NULL, COL_RIGHT },
        { "VMQ", "vmq_text", NULL, 0 },
    };
    err = print_list(view, "queues", cols, sizeof cols / sizeof cols[0], "");
    if (!err)
        printf("LOAD%% is per port, shown on each of its queues. Frames reach the queues by\n"
               "the switch's FDB lookup in software (no hardware VMQ filter). VMQ: on and\n"
               "the weight, or off (shared): the NIC shares the switch's default queue.\n");
out:
    json_decref(view);
    return err;
}
