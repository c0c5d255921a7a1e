/*
 * check_sim_cdc_restart.c: sim.cdc_restart, store restart and stream ends
 * (tikv-cdc-protocol.md §3.12, §7 #1 and #16, #22): the store's calls end
 * UNAVAILABLE, connections are refused while it is down, its leaders move and
 * re-registering on the new leader re-delivers from the checkpoint; after it
 * comes back, registrations there get not_leader until a leader returns.
 * sim_cdc_end_streams ends calls with OK, UNKNOWN, UNAVAILABLE or a silent
 * stall.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_sim_cdc_util.h"
#include "unit/check_main.h"

/* the restart sequence the control endpoint runs (minus the delays) */
static void store_stop(cdc_env_t *e, uint64_t store)
{
    sim_cdc_store_down(e->cdc, store);
    sim_server_stop(e->srv[store - 1]);
    sim_model_set_store_state(e->m, store, SIM_STORE_DOWN);
    sim_model_evacuate_leaders(e->m, store);
}

static void store_start(cdc_env_t *e, uint64_t store)
{
    sim_model_set_store_state(e->m, store, SIM_STORE_UP);
    ck_assert_int_gt(sim_server_start(e->srv[store - 1]), 0);
    sim_cdc_store_up(e->cdc, store);
}

START_TEST(test_restart_failover)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.stores = 3;
    o.regions = 3;
    cdc_env_t e;
    cdc_env_init(&e, &o);
    cdc_region_t r0;
    cdc_region_at(&e, 0, &r0);
    ck_assert_uint_eq(r0.leader_store, 1);
    uint64_t cp = sim_model_tso(e.m);

    sim_tc_t *tc1 = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc1, false, NULL);
    feed_t f;
    feed_init(&f, s);
    ck_assert_int_eq(cdc_register(&e, s, &r0, cp, 1), 0);
    feed_sub_t sub = {r0.id, 1};
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &sub));
    uint64_t c1 = cdc_put_1pc(&e, 5, "before-restart");
    feed_drain(&f, 100);

    store_stop(&e, 1);
    ck_assert_int_eq(sim_tc_status(s, 5000, NULL), GRPC_STATUS_UNAVAILABLE);
    sim_tc_stream_destroy(s);
    feed_fini(&f);

    /* refused while down */
    s = sim_tc_open(tc1, false, NULL);
    (void)cdc_register(&e, s, &r0, cp, 2); /* may fail: the call is dead */
    ck_assert_int_eq(sim_tc_status(s, 5000, NULL), GRPC_STATUS_UNAVAILABLE);
    sim_tc_stream_destroy(s);

    /* the leader moved to store 2: re-register there from the checkpoint */
    cdc_region_t now;
    ck_assert(cdc_region_by_id(&e, r0.id, &now));
    ck_assert_uint_eq(now.leader_store, 2);
    sim_tc_t *tc2 = sim_tc_new(e.addr[1]);
    sim_tc_stream_t *s2 = sim_tc_open(tc2, false, NULL);
    feed_t f2;
    feed_init(&f2, s2);
    ck_assert_int_eq(cdc_register(&e, s2, &now, cp, 3), 0);
    feed_sub_t sub3 = {r0.id, 3};
    ck_assert(feed_wait(&f2, 5000, feed_pred_init, &sub3));
    const Cdcpb__Event__Row *rows[4];
    ck_assert_uint_eq(feed_rows(&f2, r0.id, 3, rows, 4), 1); /* re-delivered by the scan */
    ck_assert_int_eq(rows[0]->type, CDCPB__EVENT__LOG_TYPE__COMMITTED);
    ck_assert_uint_eq(rows[0]->commit_ts, c1);

    /* store 1 is back, as a follower of r0 */
    store_start(&e, 1);
    sim_tc_t *tc1b = sim_tc_new(e.addr[0]);
    s = sim_tc_open(tc1b, false, NULL);
    feed_init(&f, s);
    ck_assert_int_eq(cdc_register(&e, s, &now, cp, 4), 0);
    feed_sub_t sub4 = {r0.id, 4};
    ck_assert(feed_wait(&f, 5000, feed_pred_error, &sub4));
    const Cdcpb__Error *err = f.it[feed_find_error(&f, r0.id, 4)].err;
    ck_assert_ptr_nonnull(err->not_leader);
    ck_assert_uint_eq(err->not_leader->leader->store_id, 2);

    /* the leader comes home: the store-2 subscription gets not_leader, and
     * registering on store 1 works again */
    ck_assert_int_eq(sim_model_transfer_leader(e.m, r0.id, 1), 0);
    ck_assert(feed_wait(&f2, 5000, feed_pred_error, &sub3));
    ck_assert_int_eq(cdc_register(&e, s, &now, cp, 5), 0);
    feed_sub_t sub5 = {r0.id, 5};
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &sub5));

    sim_cdc_stats_t st;
    sim_cdc_stats_get(e.cdc, 1, &st);
    ck_assert_uint_eq(st.streams_opened, 2);
    ck_assert_uint_eq(st.streams_closed, 1);
    ck_assert_uint_eq(st.registrations_active, 1);

    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_stream_destroy(s2);
    feed_fini(&f2);
    sim_tc_destroy(tc1);
    sim_tc_destroy(tc1b);
    sim_tc_destroy(tc2);
    cdc_env_fini(&e);
}
END_TEST

/* sim_cdc_end_streams in each mode. */
START_TEST(test_end_streams)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    cdc_env_t e;
    cdc_env_init(&e, &o);
    cdc_region_t r;
    cdc_region_at(&e, 0, &r);
    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    const struct {
        sim_cdc_end_mode_t mode;
        int status;
        const char *details;
    } cases[] = {
        {SIM_CDC_END_OK, GRPC_STATUS_OK, NULL},
        {SIM_CDC_END_UNKNOWN, GRPC_STATUS_UNKNOWN, "connection cancelled"},
        {SIM_CDC_END_UNAVAILABLE, GRPC_STATUS_UNAVAILABLE, NULL},
        {SIM_CDC_END_STALL, -1, NULL},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
        feed_t f;
        feed_init(&f, s);
        ck_assert_int_eq(cdc_register(&e, s, &r, sim_model_tso(e.m), 1), 0);
        feed_sub_t sub = {r.id, 1};
        ck_assert(feed_wait(&f, 5000, feed_pred_init, &sub));
        size_t want = f.n + 2;
        ck_assert(feed_wait(&f, 5000, feed_pred_n_resolved, &want));
        ck_assert_int_eq(sim_cdc_end_streams(e.cdc, 1, cases[c].mode), 1);
        if (cases[c].status >= 0) {
            const char *details = NULL;
            ck_assert_int_eq(sim_tc_status(s, 5000, &details), cases[c].status);
            if (cases[c].details)
                ck_assert_str_eq(details, cases[c].details);
        } else {
            /* silent stall: the call stays open and nothing more arrives,
             * not even the resolved ts that came every 50 ms */
            feed_drain(&f, 100);
            size_t n = f.n;
            cdc_put_1pc(&e, 3, "unseen");
            feed_drain(&f, 400);
            ck_assert_uint_eq(f.n, n);
            ck_assert(!sim_tc_ended(s));
            ck_assert_int_eq(sim_tc_status(s, 50, NULL), -1);
        }
        sim_tc_stream_destroy(s);
        feed_fini(&f);
    }
    sim_cdc_stats_t st;
    sim_cdc_stats_get(e.cdc, 1, &st);
    ck_assert_uint_eq(st.registrations_active, 0);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

Suite *cdc_restart_suite(void);

Suite *cdc_restart_suite(void)
{
    Suite *s = suite_create("cdc_restart");
    TCase *tc = tcase_create("restart");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_restart_failover);
    tcase_add_test(tc, test_end_streams);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(cdc_restart_suite)
