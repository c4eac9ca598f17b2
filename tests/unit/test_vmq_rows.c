/*
 * vmq-show's rows of a VM NIC whose guest is real enough to open
 * sub-channels: netvsp-fixture.c's fake guest (the same as
 * test_netvsp_rss.c's) brings a NIC up, asks for sub-channels, sends on
 * them and closes one, and the rows (vsd_vmq_nic_rows, hostd/src/vmq-rpc.c)
 * must list the primary and exactly the sub-channels open, each with its
 * own packet counters, the filter and the worker and load given. The
 * method around it (switches, workers, bad arguments) is tested in
 * test_vswitchd.c.
 */
#include "netvsp-fixture.h"

#include "control-private.h"

static struct vsd_switch g_sw = {.name = "sw0"};
static struct vsd_vm g_vm = {.name = "vm-q"};

/* The NIC as vswitchd's model would hold it, around the fixture's netvsp. */
static struct vsd_nic nic_of(struct vm *v)
{
    struct vsd_nic n = {.vm = &g_vm, .sw = &g_sw, .np = v->nic};
    snprintf(n.name, sizeof(n.name), "eth0");
    memcpy(n.mac, v->mac, 6);
    return n;
}

static json_t *rows_of(struct vm *v, json_t *fdb_vlans)
{
    struct vsd_nic n = nic_of(v);
    struct vsd_vmq_place pl = {.worker = 1, .lcore = 3, .load_pct = 12.34, .fdb_vlans = fdb_vlans};
    json_t *rows = json_array();
    assert_int_equal(vsd_vmq_nic_rows(&n, &pl, rows), 0);
    return rows;
}

static json_int_t int_at(const json_t *rows, size_t i, const char *key)
{
    const json_t *v = json_object_get(json_array_get(rows, i), key);
    if (!json_is_integer(v))
        fail_msg("row %zu: no integer %s", i, key);
    return json_integer_value(v);
}

/* One frame from the guest on channel ch. */
static void send_on(struct vm *v, uint32_t ch, uint8_t seed)
{
    uint8_t frame[128], msg[256];
    make_frame(frame, 100, MAC_OTHER, seed);
    uint32_t len = build_packet(msg, NULL, 0, frame, 100);
    use_chan(v, ch);
    rndis_send_section(v, 1 + ch, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 1);
    free_rx(v);
    inbox_clear(v);
    collect(v);
    use_chan(v, 0);
}

/*
 * A NIC of one queue whose guest asked for sub-channels all the same: one
 * row, the primary, open, with its own counters; its filter is the NIC's MAC as configured (untagged here)
 * with the FDB's VLANs as given; the worker, lcore and load are the port's,
 * marked as the port's; the classifier is software.
 */
static void vsd_vmq_nic_rows__one_queue__primary_only_with_filter_and_place(void **state)
{
    struct fix *f = F(state);
    f->b = vm_create_q(f, "vm-q", MAC_B, NIC_MTU, 1);
    json_t *fdb = json_pack("[i]", 0);
    bring_up(f->b);
    assert_int_equal(open_subs(f->b, 3, NULL), 0); /* one queue: none granted */
    send_on(f->b, 0, 1);
    uint8_t frame[128];
    make_frame(frame, 100, f->b->mac, 2);
    assert_int_equal(frame_to_guest(f->b, frame, 100), 1);
    json_t *rows = rows_of(f->b, fdb);
    assert_int_equal(json_array_size(rows), 1);
    const json_t *r = json_array_get(rows, 0);
    char q[64];
    snprintf(q, sizeof(q), "%s:0", vsw_port_name(f->b->port));
    assert_string_equal(json_string_value(json_object_get(r, "queue")), q);
    assert_string_equal(json_string_value(json_object_get(r, "port")), vsw_port_name(f->b->port));
    assert_string_equal(json_string_value(json_object_get(r, "switch")), "sw0");
    assert_string_equal(json_string_value(json_object_get(r, "vm")), "vm-q");
    assert_string_equal(json_string_value(json_object_get(r, "nic")), "eth0");
    assert_string_equal(json_string_value(json_object_get(r, "type")), "vm");
    assert_true(json_is_true(json_object_get(r, "open")));
    assert_true(json_is_false(json_object_get(r, "default")));
    assert_string_equal(json_string_value(json_object_get(r, "classifier")), "software");
    assert_int_equal(int_at(rows, 0, "index"), 0);
    assert_int_equal(int_at(rows, 0, "worker"), 1);
    assert_int_equal(int_at(rows, 0, "lcore"), 3);
    assert_true(json_real_value(json_object_get(r, "load_pct")) == 12.3);
    assert_string_equal(json_string_value(json_object_get(r, "load_scope")), "port");
    assert_int_equal(int_at(rows, 0, "rx_packets"), 1);
    assert_int_equal(int_at(rows, 0, "tx_packets"), 1);
    const json_t *flt = json_object_get(r, "filter");
    char mac[18];
    vsd_format_mac(MAC_B, mac);
    assert_string_equal(json_string_value(json_object_get(flt, "mac")), mac);
    assert_string_equal(json_string_value(json_object_get(json_object_get(flt, "vlan"), "mode")),
                        "untagged");
    assert_true(json_equal(json_object_get(flt, "fdb_vlans"), fdb));
    json_decref(rows);
    json_decref(fdb);
}

/*
 * A guest that opened three sub-channels: four rows, channels 0..3, each
 * with its own counters (a frame sent on channel 2 counts on row 2 alone);
 * once the guest closes sub-channel 2 alone, its row goes and 0, 1, 3 stay.
 */
static void vsd_vmq_nic_rows__guest_opened_subchannels__one_row_each_open(void **state)
{
    struct fix *f = F(state);
    f->b = vm_create_q(f, "vm-q", MAC_B, NIC_MTU, 4);
    bring_up(f->b);
    assert_int_equal(open_subs(f->b, 3, NULL), 3);
    send_on(f->b, 2, 7);
    send_on(f->b, 2, 8);
    send_on(f->b, 3, 9);
    json_t *fdb = json_array();
    json_t *rows = rows_of(f->b, fdb);
    assert_int_equal(json_array_size(rows), 4);
    static const json_int_t rx[] = {0, 0, 2, 1};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(int_at(rows, i, "index"), i);
        assert_int_equal(int_at(rows, i, "rx_packets"), rx[i]);
        assert_true(json_is_true(json_object_get(json_array_get(rows, i), "open")));
        char q[64];
        snprintf(q, sizeof(q), "%s:%zu", vsw_port_name(f->b->port), i);
        assert_string_equal(json_string_value(json_object_get(json_array_get(rows, i), "queue")),
                            q);
        /* Every queue of a NIC on its port's worker. */
        assert_int_equal(int_at(rows, i, "lcore"), 3);
    }
    json_decref(rows);

    assert_int_equal(vmbus_client_close(f->b->sub[2]), 0);
    f->b->sub[2] = NULL;
    rows = rows_of(f->b, fdb);
    assert_int_equal(json_array_size(rows), 3);
    assert_int_equal(int_at(rows, 0, "index"), 0);
    assert_int_equal(int_at(rows, 1, "index"), 1);
    assert_int_equal(int_at(rows, 2, "index"), 3);
    assert_int_equal(int_at(rows, 2, "rx_packets"), 1);
    json_decref(rows);
    json_decref(fdb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(vsd_vmq_nic_rows__one_queue__primary_only_with_filter_and_place),
        T(vsd_vmq_nic_rows__guest_opened_subchannels__one_row_each_open),
    };
    return cmocka_run_group_tests_name("vmq_rows", tests, group_setup, group_teardown);
}
