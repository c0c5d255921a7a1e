/*
 * check_feed_basic.c: the feed end to end against tikv-sim (3 stores) with a
 * workload running, checked row by row against the simulator's truth:
 * configuration, thousands of regions under load, flow control with a slow
 * pipeline, the GC safepoint refusal, and the service safepoint it keeps.
 */
#include <check.h>
#include <grpc/grpc.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "feed.h"
#include "feed_harness.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/keycodec.h"

START_TEST(test_feed_config_defaults_and_table_span)
{
    tkc_feed_config_t c;
    tkc_feed_config_defaults(&c);
    ck_assert_int_eq(c.workers, 2);
    ck_assert_int_eq(c.alter_interval_ms, 1000);
    ck_assert_int_eq(c.stuck_threshold_ms, 20000);
    ck_assert_int_eq(c.gc_ttl_s, 86400);
    ck_assert_str_eq(c.ticdc_version, "8.5.0");
    ck_assert_str_eq(c.v2_features, "stream-multiplexing");
    ck_assert_int_eq(c.max_recv_bytes, 256 << 20);
    ck_assert_int_eq(c.grpc_window_bytes, 65535);
    ck_assert_int_eq(c.test_stream_cleanup_delay_ms, 0);

    /* t{100}_r .. t{100}_s (§8.15) */
    tkc_feed_table_span_t ts;
    tkc_feed_table_span(100, &ts);
    static const uint8_t start[] = {0x74, 0x80, 0, 0, 0, 0, 0, 0, 0x64, 0x5f, 0x72};
    static const uint8_t end[] = {0x74, 0x80, 0, 0, 0, 0, 0, 0, 0x64, 0x5f, 0x73};
    ck_assert_uint_eq(ts.range.start_len, sizeof(start));
    ck_assert_mem_eq(ts.range.start, start, sizeof(start));
    ck_assert_mem_eq(ts.range.end, end, sizeof(end));

    /* invalid configurations are refused before anything connects */
    grpc_init();
    tkc_msgq_t *q = tkc_msgq_new(1 << 20);
    char err[256];
    tkc_err_t e = TKC_ERR_OK;
    ck_assert_ptr_null(tkc_feed_new(&c, q, &e, err, sizeof(err)));
    ck_assert_int_eq(e, TKC_ERR_CONF);
    ck_assert_ptr_nonnull(strstr(err, "PD"));
    const char *eps[] = {"127.0.0.1:1"};
    c.pd_endpoints = eps;
    c.n_pd_endpoints = 1;
    c.spans = &ts.range;
    c.n_spans = 1;
    c.ticdc_version = "5.2.9";
    ck_assert_ptr_null(tkc_feed_new(&c, q, &e, err, sizeof(err)));
    ck_assert_int_eq(e, TKC_ERR_CONF);
    ck_assert_ptr_nonnull(strstr(err, "5.3.0"));
    c.ticdc_version = "8.5.0";
    c.workers = 0;
    ck_assert_ptr_null(tkc_feed_new(&c, q, &e, err, sizeof(err)));
    ck_assert_int_eq(e, TKC_ERR_CONF);
    c.workers = 1;
    c.pd_timeout_ms = 300;
    /* a PD that is not there */
    ck_assert_ptr_null(tkc_feed_new(&c, q, &e, err, sizeof(err)));
    ck_assert_int_eq(e, TKC_ERR_TRANSPORT);
    tkc_msgq_destroy(q, NULL);
    grpc_shutdown_blocking();
}
END_TEST

/* Thousands of regions over 3 stores under load: exact rows, resolved ts. */
START_TEST(test_feed_load_thousands_of_regions)
{
    fh_opts_t o;
    fh_opts_init(&o);
    o.regions = 3000;
    o.rate = 3000;
    o.value_max = 400; /* values above 255 B come only in the PREWRITE (§3.5) */
    o.delete_pct = 10;
    o.onepc_pct = 10;
    o.rollback_pct = 5;
    fh_t *h = fh_new(&o);
    tkc_feed_config_t cfg;
    fh_feed_config(h, &cfg);
    char err[256];
    ck_assert_int_eq(fh_start_feed(h, &cfg, err, sizeof(err)), TKC_ERR_OK);
    int64_t t0 = tkc_clock_mono_ms();
    ck_assert_msg(fh_wait_caught_up(h, 60000), "feed never caught up");
    int64_t init_ms = tkc_clock_mono_ms() - t0;
    fh_mark_lag(h);
    fh_sleep_ms(4000);
    int64_t max_lag = fh_max_lag_ms(h);
    tkc_feed_stats_t st;
    tkc_feed_get_stats(fh_feed(h), &st);
    fprintf(stderr,
            "load: 3000 regions initialized in %" PRId64 " ms; steady max lag %" PRId64
            " ms; registrations=%" PRIu64 " initialized=%" PRIu64 " streams=%" PRIu64
            " pd_scans=%" PRIu64 "\n",
            init_ms, max_lag, st.registrations, st.regions_initialized, st.streams_opened,
            st.pd_scans);
    ck_assert_uint_ge(st.regions_initialized, 3000);
    ck_assert_uint_eq(st.regions_active, 3000);
    /* one stream per store per worker, no churn */
    ck_assert_uint_le(st.streams_opened, 3 * 2);
    ck_assert_uint_eq(st.streams_retired, 0);
    ck_assert_uint_eq(st.fatal, 0);
    ck_assert_msg(max_lag < 5000, "steady-state lag %" PRId64 " ms", max_lag);
    fh_report_t rep;
    fh_check(h, 20000, &rep);
    fh_report_print("load", &rep);
    fh_assert_clean(&rep, false);
    ck_assert_uint_gt(rep.truth_checked, 5000);
    ck_assert_uint_gt(rep.old_value_checked, 100);
    sim_cdc_stats_t ss;
    fh_sim_total_stats(h, &ss);
    ck_assert_uint_eq(ss.err_duplicate_request, 0);
    ck_assert_uint_eq(ss.gc_unsafe_registrations, 0);
    fh_destroy(h);
}
END_TEST

/* A slow pipeline: the queue fills, workers stop reading, nothing is lost. */
START_TEST(test_feed_flow_control_slow_consumer)
{
    fh_opts_t o;
    fh_opts_init(&o);
    o.regions = 200;
    o.rate = 3000;
    o.queue_bytes = 32 << 10;
    o.consumer_delay_us = 2000;
    fh_t *h = fh_new(&o);
    tkc_feed_config_t cfg;
    fh_feed_config(h, &cfg);
    cfg.stream_stall_timeout_ms = 2000; /* paused streams must not count as stalled */
    char err[256];
    ck_assert_int_eq(fh_start_feed(h, &cfg, err, sizeof(err)), TKC_ERR_OK);
    fh_sleep_ms(4000);
    tkc_feed_stats_t st;
    tkc_feed_get_stats(fh_feed(h), &st);
    fprintf(stderr, "flow control: pauses=%" PRIu64 " rows so far=%zu\n", st.flow_control_pauses,
            fh_rows_seen(h));
    ck_assert_uint_gt(st.flow_control_pauses, 0);
    for (size_t i = 0; i < st.n_stores; i++)
        ck_assert_uint_eq(st.stores[i].stalls, 0);
    fh_report_t rep;
    fh_check(h, 60000, &rep);
    fh_report_print("flow_control", &rep);
    fh_assert_clean(&rep, st.streams_retired > 0);
    fh_destroy(h);
}
END_TEST

/* The service GC safepoint: kept at the start ts, and a start ts below
 * PD's GC safepoint is refused (the history is gone). */
START_TEST(test_feed_gc_safepoint)
{
    fh_opts_t o;
    fh_opts_init(&o);
    o.regions = 16;
    o.rate = 500;
    fh_t *h = fh_new(&o);
    uint64_t old_ts = fh_tso(h);
    fh_sleep_ms(300);
    tkc_feed_config_t cfg;
    fh_feed_config(h, &cfg);
    cfg.start_ts = old_ts;
    char err[256];
    ck_assert_int_eq(fh_start_feed(h, &cfg, err, sizeof(err)), TKC_ERR_OK);
    ck_assert(fh_wait_caught_up(h, 20000));
    /* GC cannot pass the feed's service safepoint */
    json_t *res = fh_op_result(h, "{\"op\":\"gc_safepoint\",\"ago_ms\":0}");
    ck_assert_ptr_nonnull(res);
    uint64_t gc = (uint64_t)json_integer_value(json_object_get(res, "gc_safepoint"));
    json_decref(res);
    ck_assert_uint_le(gc, old_ts);
    /* the checkpoint moves the service safepoint forward */
    uint64_t cp = fh_resolved(h);
    tkc_feed_set_checkpoint(fh_feed(h), cp);
    fh_sleep_ms(cfg.gc_update_interval_ms + 1500);
    tkc_feed_stats_t st;
    tkc_feed_get_stats(fh_feed(h), &st);
    ck_assert_uint_eq(st.gc_safepoint, cp);
    fh_stop_feed(h);

    /* force GC past old_ts (as if the service safepoint had expired) */
    ck_assert_int_eq(fh_op(h, "{\"op\":\"gc_safepoint\",\"ago_ms\":0,\"force\":true}"), 0);
    tkc_msgq_t *q = tkc_msgq_new(1 << 20);
    tkc_err_t e = TKC_ERR_OK;
    cfg.start_ts = old_ts;
    tkc_feed_t *f = tkc_feed_new(&cfg, q, &e, err, sizeof(err));
    ck_assert_ptr_null(f);
    ck_assert_int_eq(e, TKC_FEED_ERR_SNAPSHOT_LOST);
    fprintf(stderr, "gc refusal: %s\n", err);
    ck_assert_ptr_nonnull(strstr(err, "GC safepoint"));
    tkc_msgq_destroy(q, NULL);
    fh_destroy(h);
}
END_TEST

/* Several spans: the table split in two at handle 5000; rows carry the
 * right span index and each span's frontier is fed separately. */
START_TEST(test_feed_two_spans)
{
    fh_opts_t o;
    fh_opts_init(&o);
    o.regions = 40;
    o.rate = 1500;
    fh_t *h = fh_new(&o);
    tkc_feed_config_t cfg;
    fh_feed_config(h, &cfg);
    tkc_feed_table_span_t ts;
    tkc_feed_table_span(100, &ts);
    uint8_t mid[TKC_KEYCODEC_RECORD_KEY_LEN];
    tkc_keycodec_record_key(100, 5000, mid);
    tkc_keyrange_t spans[2] = {
        {ts.range.start, ts.range.start_len, mid, sizeof(mid)},
        {mid, sizeof(mid), ts.range.end, ts.range.end_len},
    };
    cfg.spans = spans;
    cfg.n_spans = 2;
    char err[256];
    ck_assert_int_eq(fh_start_feed(h, &cfg, err, sizeof(err)), TKC_ERR_OK);
    ck_assert(fh_wait_caught_up(h, 20000));
    /* a region that straddles the boundary is registered once per span */
    tkc_feed_stats_t st;
    tkc_feed_get_stats(fh_feed(h), &st);
    ck_assert_uint_eq(st.regions_active, 40 + 1);
    fh_sleep_ms(1500);
    fh_report_t rep;
    fh_check(h, 20000, &rep);
    fh_report_print("two_spans", &rep);
    fh_assert_clean(&rep, false);
    fh_destroy(h);
}
END_TEST

static Suite *feed_basic_suite(void)
{
    Suite *s = suite_create("feed_basic");
    TCase *tc = tcase_create("basic");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_feed_config_defaults_and_table_span);
    tcase_add_test(tc, test_feed_load_thousands_of_regions);
    tcase_add_test(tc, test_feed_flow_control_slow_consumer);
    tcase_add_test(tc, test_feed_gc_safepoint);
    tcase_add_test(tc, test_feed_two_spans);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(feed_basic_suite)
