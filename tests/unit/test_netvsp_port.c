/*
 * Unit tests of netvsp, the root's network VSP (netvsp.h), with the fake
 * guest of netvsp-fixture.h: netvsp as a switch port (port.c): creation, the channel's ring
 * limits, waiting for work, the live MTU change.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netvsp-fixture.h"

/* Rings larger than real guests use (NETVSP_RING_PAGES_MAX a side) do not
 * open; the VMBus server counts them. Rings of that size do. */
static void open__rings_larger_than_real_guests_use__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(vmbus_client_close(v->ch), 0);
    v->ch = NULL;
    struct vmbus_server_stats s0, s1;
    vmbus_server_get_stats(v->srv, &s0);
    const struct vmbus_gchan_params big[] = {
        {.tx_pages = NETVSP_RING_PAGES_MAX + 1, .rx_pages = 8},
        {.tx_pages = 8, .rx_pages = NETVSP_RING_PAGES_MAX + 1},
    };
    for (size_t i = 0; i < 2; i++) {
        struct vmbus_gchan *ch = NULL;
        assert_true(vmbus_client_open(v->client, v->relid, &big[i], &ch) < 0);
        assert_null(ch);
    }
    vmbus_server_get_stats(v->srv, &s1);
    assert_int_equal(s1.errors[VMBUS_SRV_ERR_RING_SIZE] - s0.errors[VMBUS_SRV_ERR_RING_SIZE], 2);
    assert_false(nstats(v).connected);
    struct vmbus_gchan_params max = {.tx_pages = NETVSP_RING_PAGES_MAX,
                                     .rx_pages = NETVSP_RING_PAGES_MAX};
    assert_int_equal(vmbus_client_open(v->client, v->relid, &max, &v->ch), 0);
    assert_true(nstats(v).connected);
    v->msg_size = NVSP_MSG_SIZE_61;
    bring_up(v);
}

static bool fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* How a worker sleeps on the port: wait_fd is the channel's event fd while
 * open; wait_arm says whether work is already there; the guest's signal
 * makes the fd readable; wait_disarm consumes it. */
static void port_wait__guest_signal__fd_readable_and_arm_reports_work(void **state)
{
    struct vm *v = F(state)->a;
    const struct vsw_port_class *cls = v->port->cls;
    bring_up(v);
    int fd = cls->wait_fd(v->port);
    assert_true(fd >= 0);
    cls->wait_disarm(v->port);
    assert_false(cls->wait_arm(v->port)); /* nothing to do: may sleep */
    assert_false(fd_readable(fd));
    struct nvsp_msg_switch_data_path sw = {.type = NVSP_MSG4_SWITCH_DATA_PATH};
    nvsp_send(v, &sw, sizeof(sw), 5, true);
    assert_int_equal(vmbus_gchan_signal(v->ch), 0);
    assert_true(fd_readable(fd));
    cls->wait_disarm(v->port);
    assert_false(fd_readable(fd));
    assert_true(cls->wait_arm(v->port)); /* the message is still waiting */
    cls->wait_disarm(v->port);
    inbox_clear(v);
    pump(v);
    collect(v);
    assert_non_null(find_comp(v, 5));
    assert_false(cls->wait_arm(v->port));
    /* No channel, nothing to wait for. */
    assert_int_equal(vmbus_client_close(v->ch), 0);
    v->ch = NULL;
    assert_int_equal(cls->wait_fd(v->port), -1);
    assert_false(cls->wait_arm(v->port));
    open_chan(v);
}

/* NETWORK_CHANGE indications among the control transfers in the inbox. */
static unsigned count_network_change(struct vm *v)
{
    unsigned n = 0;
    for (unsigned i = 0; i < v->nxfer; i++) {
        if (v->xfer[i].nvsp.channel_type != NVSP_CHANNEL_TYPE_CONTROL)
            continue;
        struct rndis_indicate_status st;
        memcpy(&st, v->rbuf + v->xfer[i].r[0].byte_offset, sizeof(st));
        n += st.hdr.type == RNDIS_MSG_INDICATE && st.status == RNDIS_STATUS_NETWORK_CHANGE;
    }
    return n;
}

/* The operator changes a live NIC's MTU: the guest is told the network
 * changed (NETWORK_CHANGE, "definitely"), once; a lower limit applies at
 * once both ways. */
static void netvsp_set_mtu__live__network_change_and_lower_limit_at_once(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_ver(v, V61, 9014); /* the NIC allows 9000 */
    struct netvsp_stats b = nstats(v);
    assert_int_equal(b.frame_size, 9014);
    assert_false(b.mtu_pending);
    assert_int_equal(send_sized(v, 1514, 0x0800), 1);
    assert_int_equal(netvsp_set_mtu(v->nic, 67), -EINVAL);
    assert_int_equal(netvsp_set_mtu(v->nic, 9001), -EINVAL);
    assert_int_equal(netvsp_set_mtu(v->nic, 1400), 0);
    assert_int_equal(netvsp_mtu(v->nic), 1400);
    inbox_clear(v);
    pump(v);
    collect(v);
    assert_int_equal(v->nxfer, 1);
    const struct xfer *x = &v->xfer[0];
    check_ctrl_xfer(v, x);
    struct rndis_indicate_status st;
    assert_true(x->r[0].byte_count >= sizeof(st) + 4);
    memcpy(&st, v->rbuf + x->r[0].byte_offset, sizeof(st));
    assert_int_equal(st.hdr.type, RNDIS_MSG_INDICATE);
    assert_int_equal(st.status, RNDIS_STATUS_NETWORK_CHANGE);
    assert_int_equal(st.buf_len, 4);
    uint32_t kind;
    memcpy(&kind, v->rbuf + x->r[0].byte_offset + 8 + st.buf_offset, 4);
    assert_int_equal(kind, RNDIS_NETWORK_CHANGE_DEFINITELY);
    complete_all(v);
    struct netvsp_stats a = nstats(v);
    assert_int_equal(a.network_changes, b.network_changes + 1);
    /* Until the guest negotiates again at the new MTU. */
    assert_true(a.mtu_pending);
    /* Lower: frames above it go nowhere already, both ways. */
    assert_int_equal(a.frame_size, 1414);
    assert_int_equal(v->port->max_frame, 1414);
    assert_int_equal(send_sized(v, 1514, 0x0800), 0);
    assert_int_equal(nstats(v).rx_frames_too_big, a.rx_frames_too_big + 1);
    uint8_t big[1500];
    make_frame(big, sizeof(big), MAC_A, 0x31);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(frame_to_guest(v, big, sizeof(big)), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_TOO_BIG], pb.drops[VSW_DROP_TOO_BIG] + 1);
    /* Only once, however many rounds follow. */
    inbox_clear(v);
    pump(v);
    collect(v);
    assert_int_equal(count_network_change(v), 0);
}

/* The ring to the guest is full when the change comes: the indication
 * waits for room rather than being lost. */
static void netvsp_set_mtu__ring_to_guest_full__indication_waits_then_goes(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_ver(v, V61, FRAME_1514);
    collect(v);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 0x21);
    unsigned filled = 0;
    while (frame_to_guest(v, frame, sizeof(frame)) == 1)
        filled++;
    assert_true(filled > 0);
    struct netvsp_stats b = nstats(v);
    assert_int_equal(netvsp_set_mtu(v->nic, 1400), 0);
    v->port->cls->tx_flush(v->port);
    assert_int_equal(nstats(v).network_changes, b.network_changes); /* not yet */
    assert_int_equal(nstats(v).tx_ring_full, b.tx_ring_full);        /* and not lost */
    assert_int_equal(nstats(v).frame_size, 1414);                     /* the limit is */
    unsigned nc = 0;
    for (int r = 0; r < 6; r++) { /* the guest drains; the worker goes on */
        inbox_clear(v);
        collect(v);
        nc += count_network_change(v);
        complete_all(v);
        pump(v);
    }
    inbox_clear(v);
    collect(v);
    nc += count_network_change(v);
    assert_int_equal(nc, 1);
    assert_int_equal(nstats(v).network_changes, b.network_changes + 1);
}

/*
 * struct vsw_port holds per-lcore counters that are cache-line aligned, so
 * a port type's struct that embeds it must be allocated with that
 * alignment; calloc() gives 16 bytes. (UBSan without ASan reports the
 * misaligned access at the first use; ASan's allocator happens to hide it.)
 */
static void netvsp_create__several_nics__each_port_cache_aligned(void **state)
{
    struct vm *v = F(state)->a;
    enum { N = 8 };
    struct netvsp *nics[N];
    unsigned misaligned = 0;
    for (int i = 0; i < N; i++) {
        struct netvsp_params np = {.port_name = "extra", .nic_name = "eth1", .mtu = 1500,
                                   .pool = g_pool};
        memcpy(np.mac, MAC_OTHER, 6);
        np.mac[5] = (uint8_t)(0x40 + i);
        np.instance.b[0] = (uint8_t)(0x80 + i);
        assert_int_equal(netvsp_create(v->srv, &np, &nics[i]), 0);
        misaligned += (uintptr_t)netvsp_port(nics[i]) % _Alignof(struct vsw_port) != 0;
    }
    for (int i = 0; i < N; i++)
        vsw_port_destroy(netvsp_port(nics[i]));
    if (misaligned)
        fail_msg("%u of %d NICs not aligned to %zu bytes (struct vsw_port's alignment)",
                 misaligned, N, _Alignof(struct vsw_port));
}

/*
 * A guest that never reads its ring: the ring to it fills with answers,
 * and the request it sends next cannot be taken (rx_burst leaves it there
 * for want of room for its answers). That request is no work the worker
 * can do: wait_arm must let the worker sleep, asking to hear when the
 * guest makes room, instead of saying "pending" for as long as the guest
 * likes (the worker would spin without sleeping, for ever, on a request it
 * cannot take). Once the guest reads, the request is served.
 */
static void port_wait__request_waiting_for_room_to_answer__sleeps_until_guest_reads(void **state)
{
    struct vm *v = F(state)->a;
    const struct vsw_port_class *cls = v->port->cls;
    bring_up(v);
    collect(v);
    const uint32_t room = 2 * vmbus_ring_pkt_size(0, NVSP_MSG_SIZE_61) + 16;
    uint64_t tid = 1000;
    /* The guest asks and asks and reads nothing. */
    for (unsigned i = 0; root_ring_free(v) >= room; i++) {
        assert_true(i < 10000);
        struct nvsp_msg_oid_query_ex q = {.type = NVSP_MSG5_OID_QUERY_EX,
                                          .oid = RNDIS_OID_GEN_LINK_SPEED};
        nvsp_send(v, &q, sizeof(q), tid++, true);
        pump(v);
    }
    struct nvsp_msg_oid_query_ex q = {.type = NVSP_MSG5_OID_QUERY_EX,
                                      .oid = RNDIS_OID_GEN_LINK_SPEED};
    const uint64_t last = tid;
    nvsp_send(v, &q, sizeof(q), last, true);
    assert_int_equal(pump(v), 0);
    assert_false(vmbus_ring_empty(vmbus_gchan_tx(v->ch))); /* left in the guest's ring */
    cls->wait_disarm(v->port);
    if (cls->wait_arm(v->port))
        fail_msg("wait_arm reports work while the only request waits for the guest to make "
                 "room: the worker never sleeps");
    /* It asked to hear about room in the ring to the guest. */
    assert_true(__atomic_load_n(&vmbus_gchan_rx(v->ch)->hdr->pending_send_sz, __ATOMIC_ACQUIRE) >=
                room);
    cls->wait_disarm(v->port);
    inbox_clear(v);
    collect(v);
    assert_null(find_comp(v, last));
    assert_true(cls->wait_arm(v->port)); /* room now: the request is work again */
    cls->wait_disarm(v->port);
    pump(v);
    collect(v);
    assert_non_null(find_comp(v, last));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(open__rings_larger_than_real_guests_use__refused_and_counted),
        T(port_wait__guest_signal__fd_readable_and_arm_reports_work),
        T(netvsp_set_mtu__live__network_change_and_lower_limit_at_once),
        T(netvsp_set_mtu__ring_to_guest_full__indication_waits_then_goes),
        T(netvsp_create__several_nics__each_port_cache_aligned),
        T(port_wait__request_waiting_for_room_to_answer__sleeps_until_guest_reads),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
