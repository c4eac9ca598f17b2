/*
 * Reading JSON-RPC parameters: every method checks its keys and the type
 * and range of each value here, before it asks the model for anything, and
 * refuses with VSD_BAD_PARAMS.
 */
#include <string.h>

#include "control-private.h"

int vsd_check_keys(const json_t *params, const char *const *allowed, struct vsd_err *e)
{
    const char *key;
    json_t *v;
    if (!json_is_object(params))
        return vsd_fail(e, VSD_BAD_PARAMS, "parameters must be an object");
    json_object_foreach((json_t *)params, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = true;
        if (!ok)
            return vsd_fail(e, VSD_BAD_PARAMS, "unknown parameter '%s'", key);
    }
    return 0;
}

int vsd_get_str(const json_t *params, const char *key, bool required, const char **out,
                struct vsd_err *e)
{
    json_t *v = json_object_get(params, key);
    *out = NULL;
    if (!v) {
        if (required)
            return vsd_fail(e, VSD_BAD_PARAMS, "missing parameter '%s'", key);
        return 0;
    }
    if (!json_is_string(v))
        return vsd_fail(e, VSD_BAD_PARAMS, "parameter '%s' must be a string", key);
    *out = json_string_value(v);
    return 0;
}

int vsd_get_int(const json_t *params, const char *key, long long min, long long max,
                long long *out, bool *present, struct vsd_err *e)
{
    json_t *v = json_object_get(params, key);
    *present = v != NULL;
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return vsd_fail(e, VSD_BAD_PARAMS, "parameter '%s' must be an integer", key);
    long long x = json_integer_value(v);
    if (vsd_check_range(e, key, x, min, max) < 0)
        return -1;
    *out = x;
    return 0;
}

int vsd_get_bool(const json_t *params, const char *key, bool *out, bool *present,
                 struct vsd_err *e)
{
    json_t *v = json_object_get(params, key);
    *present = v != NULL;
    if (!v)
        return 0;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (s && (strcmp(s, "on") == 0 || strcmp(s, "off") == 0)) {
        *out = strcmp(s, "on") == 0;
        return 0;
    }
    return vsd_fail(e, VSD_BAD_PARAMS, "parameter '%s' must be on or off", key);
}

int vsd_get_name(const json_t *params, const char *key, size_t max, const char **out,
                 struct vsd_err *e)
{
    if (vsd_get_str(params, key, true, out, e) < 0)
        return -1;
    return vsd_check_name(e, key, *out, max, max == VSD_NIC_NAME_MAX);
}
