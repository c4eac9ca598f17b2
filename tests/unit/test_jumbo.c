/*
 * Unit tests for the jumbo module: the MTU <-> frame arithmetic every path
 * shares, and the switch's mempool classes (EAL with --no-huge).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "jumbo-pool.h"
#include "jumbo.h"

static void jumbo_mtu_valid__range__68_to_9000(void **state)
{
    (void)state;
    assert_false(jumbo_mtu_valid(0));
    assert_false(jumbo_mtu_valid(67));
    assert_true(jumbo_mtu_valid(68));
    assert_true(jumbo_mtu_valid(1500));
    assert_true(jumbo_mtu_valid(9000));
    assert_false(jumbo_mtu_valid(9001));
    assert_false(jumbo_mtu_valid(UINT32_MAX));
}

static void jumbo_frame__mtu__header_added_tag_optional(void **state)
{
    (void)state;
    /* NDIS_CONFIG.mtu and OID_GEN_MAXIMUM_FRAME_SIZE (reference 4.8, 6.1). */
    assert_int_equal(jumbo_frame(1500), 1514);
    assert_int_equal(jumbo_frame(9000), 9014);
    assert_int_equal(jumbo_frame_tagged(9000), 9018);
    assert_int_equal(JUMBO_TAGGED_OVERHEAD, 18);
    assert_int_equal(jumbo_frame_tagged(1500) - JUMBO_TAGGED_OVERHEAD, 1500);
    assert_int_equal(JUMBO_FRAME_MAX, 9018);
    assert_int_equal(jumbo_mtu_of_frame(9014), 9000);
    assert_int_equal(jumbo_mtu_of_frame(14), 0);
    assert_int_equal(jumbo_mtu_of_frame(0), 0);
    for (uint32_t m = JUMBO_MTU_MIN; m <= JUMBO_MTU_MAX; m += 97)
        assert_int_equal(jumbo_mtu_of_frame(jumbo_frame(m)), m);
}

static void jumbo_frame_fits__tag_in_band__four_bytes_more(void **state)
{
    (void)state;
    assert_true(jumbo_frame_fits(9014, 9014, false));
    assert_false(jumbo_frame_fits(9015, 9014, false));
    assert_true(jumbo_frame_fits(9018, 9014, true));
    assert_false(jumbo_frame_fits(9019, 9014, true));
}

static void jumbo_segments__lengths__rounded_up(void **state)
{
    (void)state;
    assert_int_equal(jumbo_segments(0, 2048), 1);
    assert_int_equal(jumbo_segments(2048, 2048), 1);
    assert_int_equal(jumbo_segments(2049, 2048), 2);
    assert_int_equal(jumbo_segments(9014, 2048), 5);
    assert_int_equal(jumbo_segments(9018, 16384), 1);
    assert_int_equal(jumbo_segments(100, 0), 0);
}

static void jumbo_recv_section__ovmm_sizes__aligned(void **state)
{
    (void)state;
    /* 256 header room + frame + 36 tail (reference 6.2), to 64 bytes. */
    assert_int_equal(jumbo_recv_section(1514, 256, 36, 1), 1806);
    assert_int_equal(jumbo_recv_section(9014, 256, 36, 1), 9306);
    assert_int_equal(jumbo_recv_section(9014, 256, 36, 64), 9344);
    assert_int_equal(jumbo_recv_section(9014, 256, 36, 64) % 64, 0);
}

static void jumbo_pool_class_for__chains_or_size__std_else_whole(void **state)
{
    (void)state;
    assert_int_equal(jumbo_pool_class_for(9018, true), JUMBO_POOL_STD);
    assert_int_equal(jumbo_pool_class_for(1518, false), JUMBO_POOL_STD);
    assert_int_equal(jumbo_pool_class_for(2048, false), JUMBO_POOL_STD);
    assert_int_equal(jumbo_pool_class_for(2049, false), JUMBO_POOL_WHOLE_FRAME);
    assert_int_equal(jumbo_pool_class_for(9018, false), JUMBO_POOL_WHOLE_FRAME);
    assert_true(jumbo_pool_seg_room(JUMBO_POOL_WHOLE_FRAME) >= JUMBO_FRAME_MAX);
    /* af_packet's jumbo ring frame needs 16352 bytes of mbuf data room. */
    assert_true(jumbo_pool_seg_room(JUMBO_POOL_WHOLE_FRAME) >= 16352);
    assert_int_equal(jumbo_pool_data_room(JUMBO_POOL_STD), 2048 + RTE_PKTMBUF_HEADROOM);
    assert_string_equal(jumbo_pool_class_name(JUMBO_POOL_WHOLE_FRAME), "whole");
}

static void jumbo_pools__whole_frame_class__made_on_first_use(void **state)
{
    (void)state;
    struct jumbo_pools *jp = NULL;
    struct jumbo_pools_params p = {.name = "tjumbo", .socket = -1, .nb_std = 511,
                                   .nb_whole = 63};
    assert_int_equal(jumbo_pools_create(&p, &jp), 0);
    assert_true(jumbo_pool_exists(jp, JUMBO_POOL_STD));
    assert_false(jumbo_pool_exists(jp, JUMBO_POOL_WHOLE_FRAME));
    struct rte_mempool *std = jumbo_pool(jp, JUMBO_POOL_STD);
    assert_non_null(std);
    assert_int_equal(rte_pktmbuf_data_room_size(std), jumbo_pool_data_room(JUMBO_POOL_STD));
    struct rte_mempool *whole = jumbo_pool(jp, JUMBO_POOL_WHOLE_FRAME);
    assert_non_null(whole);
    assert_ptr_equal(jumbo_pool(jp, JUMBO_POOL_WHOLE_FRAME), whole); /* made once */
    assert_int_equal(rte_mempool_avail_count(whole), 63);
    /* One mbuf of it takes a tagged 9000-byte frame whole. */
    struct rte_mbuf *m = rte_pktmbuf_alloc(whole);
    assert_non_null(m);
    assert_non_null(rte_pktmbuf_append(m, JUMBO_FRAME_MAX));
    assert_int_equal(m->nb_segs, 1);
    rte_pktmbuf_free(m);
    assert_null(jumbo_pool(jp, (enum jumbo_pool_class)7));
    jumbo_pools_destroy(jp);
    jumbo_pools_destroy(NULL);
    /* Bad names are refused. */
    struct jumbo_pools_params bad = {.name = "", .socket = -1};
    assert_int_equal(jumbo_pools_create(&bad, &jp), -EINVAL);
    bad.name = "a-name-far-too-long-for-a-pool";
    assert_int_equal(jumbo_pools_create(&bad, &jp), -EINVAL);
}

static int group_setup(void **state)
{
    (void)state;
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "--file-prefix=tjumbo%d", (int)getpid());
    char *argv[] = {"test_jumbo",  "-l",           "0",        "--no-huge",
                    "-m",          "128",          "--no-pci", prefix,
                    "--no-shconf", "--no-telemetry", "--log-level=*:error"};
    if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv) < 0)
        return -1;
    /* EAL leaves an empty runtime directory behind (--no-shconf). */
    rmdir(rte_eal_get_runtime_dir());
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rte_eal_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jumbo_mtu_valid__range__68_to_9000),
        cmocka_unit_test(jumbo_frame__mtu__header_added_tag_optional),
        cmocka_unit_test(jumbo_frame_fits__tag_in_band__four_bytes_more),
        cmocka_unit_test(jumbo_segments__lengths__rounded_up),
        cmocka_unit_test(jumbo_recv_section__ovmm_sizes__aligned),
        cmocka_unit_test(jumbo_pool_class_for__chains_or_size__std_else_whole),
        cmocka_unit_test(jumbo_pools__whole_frame_class__made_on_first_use),
    };
    return cmocka_run_group_tests_name("jumbo", tests, group_setup, group_teardown);
}
