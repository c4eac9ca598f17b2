/*
 * Unit tests for vswitchd's method table and dispatcher (methods.c), over
 * the transport's socketless entry (vsd_rpc_serve_line). Linked with
 * hostd_rpc only: the table and the transport work without a model, with
 * methods and a save function of the test's own.
 *
 * The test's "model" is one integer. "set" changes it and records the
 * change (undo puts the old value back, commit counts); "get" reads it;
 * the save function counts its calls, sees the value it would write, and
 * fails when told to.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vsd-methods.h"

struct fixture {
    struct vsd_methods *t;
    struct vsd_rpc_counters counters;
    struct vsd_rpc_endpoint ep;
    long long value;  /* the model */
    int saves;        /* calls of the save function */
    long long saved;  /* the value the last save wrote */
    bool save_fails;
    int commits, undos;
};

static int save(void *ctx, struct vsd_err *e)
{
    struct fixture *f = ctx;
    f->saves++;
    if (f->save_fails)
        return vsd_fail(e, VSD_FAILED, "cannot save state to /nowhere: No space left on device");
    f->saved = f->value;
    return 0;
}

struct set_rec {
    struct fixture *f;
    long long old;
};

static void set_commit(void *rec)
{
    struct set_rec *r = rec;
    r->f->commits++;
}

static void set_undo(void *rec)
{
    struct set_rec *r = rec;
    r->f->value = r->old;
    r->f->undos++;
}

/* {"value": N}: the model becomes N; the same value is no change. */
static int set(void *ctx, const json_t *params, struct vsd_method_call *call, json_t **result,
               struct vsd_err *e)
{
    struct fixture *f = ctx;
    json_t *v = json_object_get(params, "value");
    (void)result;
    if (!json_is_integer(v))
        return vsd_fail(e, VSD_BAD_PARAMS, "parameter 'value' must be an integer");
    if (json_integer_value(v) == f->value)
        return 0;
    struct set_rec r = {.f = f, .old = f->value};
    f->value = json_integer_value(v);
    VSD_CHANGE_OPEN(vsd_method_change(call), set_commit, set_undo, r);
    return 0;
}

/* Changes the model, then fails anyway: the dispatcher must undo it. */
static int set_then_fail(void *ctx, const json_t *params, struct vsd_method_call *call,
                         json_t **result, struct vsd_err *e)
{
    if (set(ctx, params, call, result, e) < 0)
        return -1;
    return vsd_fail(e, VSD_FAILED, "refused after the fact");
}

static int get(void *ctx, const json_t *params, struct vsd_method_call *call, json_t **result,
               struct vsd_err *e)
{
    struct fixture *f = ctx;
    (void)params, (void)call, (void)e;
    *result = json_pack("{s:I}", "value", (json_int_t)f->value);
    return 0;
}

static int wait_method(void *ctx, const json_t *params, struct vsd_method_call *call,
                       json_t **result, struct vsd_err *e)
{
    (void)ctx, (void)params, (void)call, (void)result;
    return vsd_fail(e, VSD_FAILED, "wait was called");
}

static const struct vsd_method_def defs[] = {
    {"set", set, VSD_METHOD_CHANGES_STATE},
    {"set-then-fail", set_then_fail, VSD_METHOD_CHANGES_STATE},
    {"get", get, 0},
    /* A method that changes the model but does not say so: never saved. */
    {"set-unsaved", set, 0},
    {"wait", wait_method, VSD_METHOD_DEFERS},
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f || vsd_methods_create(save, f, &f->t) < 0 ||
        vsd_methods_register_all(f->t, defs, sizeof(defs) / sizeof(defs[0]), f) < 0)
        return -1;
    f->ep = (struct vsd_rpc_endpoint){
        .handler = vsd_methods_serve, .ctx = f->t, .counters = &f->counters};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vsd_methods_destroy(f->t);
    free(f);
    return 0;
}

/* Serve one request; the answer as JSON (the caller frees it). */
static json_t *call(struct fixture *f, const char *method, const char *params)
{
    char line[512];
    snprintf(line, sizeof(line), "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"%s\",\"params\":%s}",
             method, params);
    char *text = vsd_rpc_serve_line(&f->ep, line, strlen(line));
    assert_non_null(text);
    json_t *ans = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(ans);
    assert_int_equal(json_integer_value(json_object_get(ans, "id")), 7);
    return ans;
}

static json_int_t error_code(const json_t *ans)
{
    return json_integer_value(json_object_get(json_object_get(ans, "error"), "code"));
}

static const char *error_message(const json_t *ans)
{
    return json_string_value(json_object_get(json_object_get(ans, "error"), "message"));
}

static void vsd_methods_serve__unknown_method__32601_nothing_saved(void **state)
{
    struct fixture *f = *state;
    json_t *ans = call(f, "bogus", "{}");
    assert_int_equal(error_code(ans), VSD_RPC_METHOD_NOT_FOUND);
    assert_string_equal(error_message(ans), "unknown method 'bogus'");
    assert_int_equal(f->saves, 0);
    assert_int_equal(f->counters.unknown_method, 1);
    json_decref(ans);
}

static void vsd_methods_serve__state_changing_method__saved_once_after_the_change_then_committed(
    void **state)
{
    struct fixture *f = *state;
    json_t *ans = call(f, "set", "{\"value\":42}");
    assert_non_null(json_object_get(ans, "result"));
    assert_int_equal(f->saves, 1);
    assert_int_equal(f->saved, 42); /* the save saw the change */
    assert_int_equal(f->commits, 1);
    assert_int_equal(f->undos, 0);
    assert_int_equal(f->value, 42);
    json_decref(ans);

    ans = call(f, "set", "{\"value\":43}");
    assert_int_equal(f->saves, 2);
    assert_int_equal(f->commits, 2);
    json_decref(ans);
}

static void vsd_methods_serve__state_changing_method_changes_nothing__not_saved(void **state)
{
    struct fixture *f = *state;
    json_t *ans = call(f, "set", "{\"value\":0}");
    assert_non_null(json_object_get(ans, "result"));
    assert_int_equal(f->saves, 0);
    assert_int_equal(f->commits, 0);
    json_decref(ans);
}

static void vsd_methods_serve__read_only_method__never_saved(void **state)
{
    struct fixture *f = *state;
    f->value = 5;
    json_t *ans = call(f, "get", "{}");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "result"), "value")),
                     5);
    json_decref(ans);
    /* Even one that changes the model: only the flag decides. */
    ans = call(f, "set-unsaved", "{\"value\":6}");
    assert_non_null(json_object_get(ans, "result"));
    assert_int_equal(f->value, 6);
    assert_int_equal(f->commits, 1);
    assert_int_equal(f->saves, 0);
    json_decref(ans);
}

static void vsd_methods_serve__save_fails__change_undone_and_save_error_answered(void **state)
{
    struct fixture *f = *state;
    f->value = 1;
    f->save_fails = true;
    json_t *ans = call(f, "set", "{\"value\":2}");
    assert_null(json_object_get(ans, "result"));
    assert_int_equal(error_code(ans), VSD_FAILED);
    assert_string_equal(error_message(ans),
                        "cannot save state to /nowhere: No space left on device");
    assert_int_equal(f->saves, 1);
    assert_int_equal(f->undos, 1);
    assert_int_equal(f->commits, 0);
    assert_int_equal(f->value, 1);
    assert_int_equal(f->counters.failed, 1);
    json_decref(ans);
}

static void vsd_methods_serve__handler_fails__nothing_saved_its_change_undone(void **state)
{
    struct fixture *f = *state;
    json_t *ans = call(f, "set-then-fail", "{\"value\":9}");
    assert_string_equal(error_message(ans), "refused after the fact");
    assert_int_equal(f->saves, 0);
    assert_int_equal(f->undos, 1);
    assert_int_equal(f->value, 0);
    json_decref(ans);

    ans = call(f, "set", "{\"value\":\"nine\"}");
    assert_int_equal(error_code(ans), VSD_BAD_PARAMS);
    assert_int_equal(f->saves, 0);
    assert_int_equal(f->counters.bad_params, 1);
    json_decref(ans);
}

static void vsd_methods_serve__deferring_method_without_connection__refused_not_called(
    void **state)
{
    struct fixture *f = *state;
    json_t *ans = call(f, "wait", "{}");
    assert_int_equal(error_code(ans), VSD_FAILED);
    assert_string_equal(error_message(ans), "wait needs a control connection");
    json_decref(ans);
}

static void vsd_methods_register__name_taken__eexist(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(vsd_methods_register(f->t, "get", get, f, 0), -EEXIST);
    /* Registered in any order, found by name. */
    assert_int_equal(vsd_methods_register(f->t, "aaa", get, f, 0), 0);
    assert_int_equal(vsd_methods_register(f->t, "zzz", get, f, 0), 0);
    json_t *ans = call(f, "zzz", "{}");
    assert_non_null(json_object_get(ans, "result"));
    json_decref(ans);
    ans = call(f, "aaa", "{}");
    assert_non_null(json_object_get(ans, "result"));
    json_decref(ans);
}

static void vsd_methods_call__in_process__saves_like_a_request(void **state)
{
    struct fixture *f = *state;
    struct vsd_err e = {0};
    json_t *p = json_pack("{s:i}", "value", 3), *result = NULL;
    assert_int_equal(vsd_methods_call(f->t, "set", p, &result, &e), 0);
    assert_int_equal(f->saves, 1);
    assert_int_equal(f->value, 3);
    json_decref(result);
    assert_int_equal(vsd_methods_call(f->t, "get", p, &result, &e), 0);
    assert_int_equal(json_integer_value(json_object_get(result, "value")), 3);
    json_decref(result);
    assert_int_equal(vsd_methods_call(f->t, "wait", p, &result, &e), -1);
    assert_null(result);
    assert_int_equal(vsd_methods_call(f->t, "bogus", p, &result, &e), -1);
    assert_int_equal(e.code, VSD_RPC_METHOD_NOT_FOUND);
    /* No transport: nothing counted. */
    assert_int_equal(f->counters.requests, 0);
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(vsd_methods_serve__unknown_method__32601_nothing_saved,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_methods_serve__state_changing_method__saved_once_after_the_change_then_committed,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_methods_serve__state_changing_method_changes_nothing__not_saved, setup, teardown),
        cmocka_unit_test_setup_teardown(vsd_methods_serve__read_only_method__never_saved, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            vsd_methods_serve__save_fails__change_undone_and_save_error_answered, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            vsd_methods_serve__handler_fails__nothing_saved_its_change_undone, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_methods_serve__deferring_method_without_connection__refused_not_called, setup,
            teardown),
        cmocka_unit_test_setup_teardown(vsd_methods_register__name_taken__eexist, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(vsd_methods_call__in_process__saves_like_a_request, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("hostd_methods", tests, NULL, NULL);
}
