/*
 * check_sim_cdc_deregister.c: sim.cdc_deregister (tikv-cdc-protocol.md
 * §3.10, §3.12, §7 #24): Deregister{request_id, region_id} removes one
 * registration, Deregister{request_id, 0} all of that request id, each
 * answered with region_not_found and followed by silence; other request ids
 * of the same region keep flowing; a half-close drops every registration of
 * the call and ends it OK.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_sim_cdc_util.h"
#include "unit/check_main.h"

static void run(bool v2)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.regions = 2;
    cdc_env_t e;
    cdc_env_init(&e, &o);
    cdc_region_t r0, r1;
    cdc_region_at(&e, 0, &r0);
    cdc_region_at(&e, 1, &r1);
    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc, v2, v2 ? "stream-multiplexing" : NULL);
    feed_t f;
    feed_init(&f, s);
    uint64_t cp = sim_model_tso(e.m);
    ck_assert_int_eq(cdc_register(&e, s, &r0, cp, 1), 0);
    ck_assert_int_eq(cdc_register(&e, s, &r1, cp, 1), 0);
    ck_assert_int_eq(cdc_register(&e, s, &r0, cp, 2), 0);
    feed_sub_t a = {r0.id, 1}, b = {r1.id, 1}, c = {r0.id, 2};
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &a));
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &b));
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &c));

    /* one registration */
    ck_assert_int_eq(sim_tc_deregister(s, e.cluster_id, 1, r0.id), 0);
    ck_assert(feed_wait(&f, 5000, feed_pred_error, &a));
    const Cdcpb__Error *err = f.it[feed_find_error(&f, r0.id, 1)].err;
    ck_assert_ptr_nonnull(err->region_not_found);
    ck_assert_uint_eq(err->region_not_found->region_id, r0.id);
    cdc_put_1pc(&e, 2, "r0-after-1");
    cdc_put_1pc(&e, 70, "r1-after-1");
    feed_drain(&f, 200);
    const Cdcpb__Event__Row *rows[4];
    ck_assert_uint_eq(feed_rows(&f, r0.id, 1, rows, 4), 0);
    ck_assert_uint_eq(feed_rows(&f, r0.id, 2, rows, 4), 1);
    ck_assert_uint_eq(feed_rows(&f, r1.id, 1, rows, 4), 1);
    ck_assert_int_lt(feed_find_error(&f, r1.id, 1), 0);

    /* the rest of request id 1; an unknown request id changes nothing */
    ck_assert_int_eq(sim_tc_deregister(s, e.cluster_id, 1, 0), 0);
    ck_assert_int_eq(sim_tc_deregister(s, e.cluster_id, 77, 0), 0);
    ck_assert(feed_wait(&f, 5000, feed_pred_error, &b));
    cdc_put_1pc(&e, 3, "r0-after-2");
    cdc_put_1pc(&e, 71, "r1-after-2");
    feed_drain(&f, 200);
    ck_assert_uint_eq(feed_rows(&f, r1.id, 1, rows, 4), 1);
    ck_assert_uint_eq(feed_rows(&f, r0.id, 2, rows, 4), 2);
    size_t errors = 0;
    for (size_t i = 0; i < f.n; i++)
        errors += f.it[i].kind == FI_ERROR;
    ck_assert_uint_eq(errors, 2);
    /* no resolved ts for the removed registrations after their error */
    long e1 = feed_find_error(&f, r1.id, 1);
    for (size_t i = (size_t)e1 + 1; i < f.n; i++)
        ck_assert(!feed_item_names_region(&f.it[i], r1.id));

    sim_cdc_stats_t st;
    sim_cdc_stats_get(e.cdc, 1, &st);
    ck_assert_uint_eq(st.deregistrations, 2);
    ck_assert_uint_eq(st.registrations_active, 1);

    /* half-close: everything goes, the call ends OK */
    ck_assert_int_eq(sim_tc_close_send(s), 0);
    ck_assert_int_eq(sim_tc_status(s, 5000, NULL), GRPC_STATUS_OK);
    for (int tries = 0; tries < 100; tries++) {
        sim_cdc_stats_get(e.cdc, 1, &st);
        if (st.registrations_active == 0 && st.streams_active == 0)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ck_assert_uint_eq(st.registrations_active, 0);
    ck_assert_uint_eq(st.streams_active, 0);

    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}

START_TEST(test_deregister_v2)
{
    run(true);
}
END_TEST

/* TiKV >= 7.3 handles Deregister on V1 calls too (one dispatcher). */
START_TEST(test_deregister_v1)
{
    run(false);
}
END_TEST

Suite *cdc_deregister_suite(void);

Suite *cdc_deregister_suite(void)
{
    Suite *s = suite_create("cdc_deregister");
    TCase *tc = tcase_create("deregister");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_deregister_v2);
    tcase_add_test(tc, test_deregister_v1);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(cdc_deregister_suite)
