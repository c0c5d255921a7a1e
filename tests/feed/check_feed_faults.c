/*
 * check_feed_faults.c: store- and region-level failures (tikv-cdc-protocol.md
 * §7 scenarios 1-6, 16, 17, 22) while a workload runs; after each, the feed
 * must catch up and its output must equal the simulator's truth (duplicates
 * allowed only because regions were re-subscribed).
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "feed.h"
#include "feed_harness.h"
#include "feed_scenario.h"
#include "unit/check_main.h"
#include "util/clock.h"

static fh_t *setup_run(int regions, tkc_feed_config_t *cfg)
{
    fh_opts_t o;
    fh_opts_init(&o);
    o.regions = regions;
    o.rate = 1500;
    o.value_max = 300;
    fh_t *h = fh_new(&o);
    fh_feed_config(h, cfg);
    return h;
}

/* Starts the run; @p before gets the feed's stats, and the return value is
 * the number of streams opened to @p store so far. */
static uint64_t start_and_count_streams(fh_t *h, const tkc_feed_config_t *cfg, uint64_t store,
                                        tkc_feed_stats_t *before)
{
    sc_start(h, cfg);
    tkc_feed_get_stats(fh_feed(h), before);
    const tkc_feed_store_stats_t *s = tkc_feed_stats_store(before, store);
    ck_assert_ptr_nonnull(s);
    return s->streams_opened;
}

/* §7.1: a store restarts; its leaders move away meanwhile. */
START_TEST(test_feed_store_restart)
{
    tkc_feed_config_t cfg;
    fh_t *h = setup_run(300, &cfg);
    tkc_feed_stats_t before;
    uint64_t opened_before = start_and_count_streams(h, &cfg, 2, &before);
    const tkc_feed_store_stats_t *s2;
    fh_mark_lag(h);
    ck_assert_int_eq(fh_op(h, "{\"op\":\"restart_store\",\"store\":2,\"down_ms\":2000,"
                              "\"election_ms\":500}"),
                     0);
    fh_sleep_ms(2500);
    int64_t took = 0;
    ck_assert_msg(fh_wait_lag_below(h, 2000, 20000, &took), "lag stayed high");
    fh_sleep_ms(1500);
    tkc_feed_stats_t after;
    tkc_feed_get_stats(fh_feed(h), &after);
    s2 = tkc_feed_stats_store(&after, 2);
    fprintf(stderr,
            "store restart: max lag %" PRId64 " ms, streams to store 2: %" PRIu64 " -> %" PRIu64
            ", stream errors %" PRIu64 " not_leader %" PRIu64 "\n",
            fh_max_lag_ms(h), opened_before, s2->streams_opened,
            after.region_errors[TKC_FEED_REGION_ERR_STREAM],
            after.region_errors[TKC_FEED_REGION_ERR_NOT_LEADER]);
    /* one new stream per worker that had one, not a loop */
    ck_assert_uint_le(s2->streams_opened - opened_before, (uint64_t)cfg.workers);
    ck_assert_uint_gt(after.region_errors[TKC_FEED_REGION_ERR_STREAM], 0);
    sc_finish(h, "store_restart", true);
    fh_destroy(h);
}
END_TEST

/* A store restarts within the election timeout: PD's answer for its
 * regions never changes, so the feed asks PD only with GetRegionByID
 * samples (feed_scheduler.c "ask PD cheaply first") and re-registers them
 * on the one new stream per worker without a single ScanRegions page. */
START_TEST(test_feed_quick_restart_no_scan)
{
    tkc_feed_config_t cfg;
    fh_t *h = setup_run(300, &cfg);
    tkc_feed_stats_t before;
    uint64_t opened_before = start_and_count_streams(h, &cfg, 2, &before);
    const tkc_feed_store_stats_t *s2;
    ck_assert_int_eq(fh_op(h, "{\"op\":\"restart_store\",\"store\":2,\"down_ms\":800,"
                              "\"election_ms\":60000}"),
                     0);
    fh_sleep_ms(1500);
    ck_assert(fh_wait_caught_up(h, 20000));
    tkc_feed_stats_t after;
    tkc_feed_get_stats(fh_feed(h), &after);
    s2 = tkc_feed_stats_store(&after, 2);
    uint64_t failed = after.region_errors[TKC_FEED_REGION_ERR_STREAM] -
                      before.region_errors[TKC_FEED_REGION_ERR_STREAM];
    fprintf(stderr,
            "quick restart: stream errors %" PRIu64 ", pd scans %" PRIu64 " -> %" PRIu64
            ", streams to store 2: %" PRIu64 " -> %" PRIu64 "\n",
            failed, before.pd_scans, after.pd_scans, opened_before, s2->streams_opened);
    ck_assert_uint_gt(failed, 0); /* its regions did fail */
    ck_assert_uint_eq(after.pd_scans, before.pd_scans);
    ck_assert_uint_le(s2->streams_opened - opened_before, (uint64_t)cfg.workers);
    ck_assert_uint_eq(after.regions_active, sc_region_count(h));
    sc_finish(h, "quick_restart_no_scan", true);
    fh_destroy(h);
}
END_TEST

/* §7.2: leader transfer with a hint: re-registered on the new store
 * without a PD round-trip. */
START_TEST(test_feed_leader_transfer)
{
    tkc_feed_config_t cfg;
    fh_t *h = setup_run(200, &cfg);
    sc_start(h, &cfg);
    tkc_feed_stats_t before;
    tkc_feed_get_stats(fh_feed(h), &before);
    int moved = 0;
    for (size_t i = 0; i < 40; i += 2) {
        sc_region_t r = sc_region_at(h, i * 5);
        uint64_t to = r.peer_stores[0] != r.leader_store ? r.peer_stores[0] : r.peer_stores[1];
        if (fh_op(h, "{\"op\":\"transfer_leader\",\"region\":%" PRIu64 ",\"store\":%" PRIu64 "}",
                  r.id, to) == 0)
            moved++;
    }
    ck_assert_int_ge(moved, 15);
    ck_assert(fh_wait_caught_up(h, 20000));
    tkc_feed_stats_t after;
    tkc_feed_get_stats(fh_feed(h), &after);
    uint64_t nl = after.region_errors[TKC_FEED_REGION_ERR_NOT_LEADER] -
                  before.region_errors[TKC_FEED_REGION_ERR_NOT_LEADER];
    fprintf(stderr, "leader transfer: moved %d, not_leader %" PRIu64 ", pd scans %" PRIu64
                    " -> %" PRIu64 "\n",
            moved, nl, before.pd_scans, after.pd_scans);
    ck_assert_uint_ge(nl, (uint64_t)moved);
    ck_assert_uint_eq(after.pd_scans, before.pd_scans); /* the hint was enough */
    ck_assert_uint_eq(after.regions_active, sc_region_count(h));
    sc_finish(h, "leader_transfer", true);
    fh_destroy(h);
}
END_TEST

/* §7.3, §7.4: splits and merges under load: re-divided from PD, the
 * children start at the parent's resolved ts, nothing lost. */
START_TEST(test_feed_split_and_merge)
{
    tkc_feed_config_t cfg;
    fh_t *h = setup_run(100, &cfg);
    sc_start(h, &cfg);
    for (size_t i = 0; i < 10; i++) {
        sc_region_t r = sc_region_at(h, i * 9);
        ck_assert_int_eq(fh_op(h, "{\"op\":\"split\",\"region\":%" PRIu64 "}", r.id), 0);
    }
    fh_sleep_ms(500);
    int merged = 0;
    for (size_t i = 0; i < 6; i++) {
        sc_region_t a = sc_region_at(h, 20 + i * 10), b = sc_region_at(h, 21 + i * 10);
        if (fh_op(h, "{\"op\":\"merge\",\"source\":%" PRIu64 ",\"target\":%" PRIu64 "}", a.id,
                  b.id) == 0)
            merged++;
    }
    ck_assert_int_ge(merged, 5);
    ck_assert(fh_wait_caught_up(h, 20000));
    fh_sleep_ms(500);
    tkc_feed_stats_t st;
    tkc_feed_get_stats(fh_feed(h), &st);
    fprintf(stderr, "split/merge: epoch_not_match %" PRIu64 ", active %" PRIu64 " of %zu\n",
            st.region_errors[TKC_FEED_REGION_ERR_EPOCH_NOT_MATCH], st.regions_active,
            sc_region_count(h));
    ck_assert_uint_ge(st.region_errors[TKC_FEED_REGION_ERR_EPOCH_NOT_MATCH], 10 + 2 * 5);
    ck_assert_uint_eq(st.regions_active, sc_region_count(h));
    sc_finish(h, "split_merge", true);
    fh_destroy(h);
}
END_TEST

/* §7.6: server_is_busy (with backoff_ms) and congested on re-registration:
 * retried with backoff, other regions unaffected, no storm. */
START_TEST(test_feed_busy_and_congested)
{
    tkc_feed_config_t cfg;
    fh_t *h = setup_run(150, &cfg);
    sc_start(h, &cfg);
    ck_assert_int_eq(fh_op(h, "{\"op\":\"busy\",\"store\":1,\"count\":30,\"backoff_ms\":300}"), 0);
    ck_assert_int_eq(fh_op(h, "{\"op\":\"congested\",\"store\":2,\"count\":30}"), 0);
    /* make every region of stores 1 and 2 register again */
    ck_assert_int_eq(fh_op(h, "{\"op\":\"end_streams\",\"store\":1}"), 0);
    ck_assert_int_eq(fh_op(h, "{\"op\":\"end_streams\",\"store\":2}"), 0);
    int64_t t0 = tkc_clock_mono_ms();
    fh_sleep_ms(1500);
    ck_assert(fh_wait_caught_up(h, 30000));
    tkc_feed_stats_t st;
    tkc_feed_get_stats(fh_feed(h), &st);
    sim_cdc_stats_t s1, s2;
    fh_sim_store_stats(h, 1, &s1);
    fh_sim_store_stats(h, 2, &s2);
    fprintf(stderr,
            "busy/congested: caught up after %" PRId64 " ms; busy %" PRIu64 " congested %" PRIu64
            "; register requests store1 %" PRIu64 " store2 %" PRIu64 "\n",
            tkc_clock_mono_ms() - t0, st.region_errors[TKC_FEED_REGION_ERR_SERVER_IS_BUSY],
            st.region_errors[TKC_FEED_REGION_ERR_CONGESTED], s1.register_requests,
            s2.register_requests);
    ck_assert_uint_ge(st.region_errors[TKC_FEED_REGION_ERR_SERVER_IS_BUSY], 30);
    ck_assert_uint_ge(st.region_errors[TKC_FEED_REGION_ERR_CONGESTED], 30);
    sc_finish(h, "busy_congested", true);
    fh_destroy(h);
}
END_TEST

/* §7.5: a register answered with epoch_not_match at once while PD still has
 * the old region (the split is invisible to PD for a while: a scan hole). */
START_TEST(test_feed_stale_pd_after_split)
{
    tkc_feed_config_t cfg;
    fh_t *h = setup_run(60, &cfg);
    sc_start(h, &cfg);
    sc_region_t r = sc_region_at(h, 30);
    json_t *res = fh_op_result(h, "{\"op\":\"split\",\"region\":%" PRIu64 "}", r.id);
    ck_assert_ptr_nonnull(res);
    uint64_t right = (uint64_t)json_integer_value(json_object_get(res, "new_region"));
    json_decref(res);
    /* PD leaves the new right half out of several answers: a hole */
    ck_assert_int_eq(fh_op(h, "{\"op\":\"pd_scan_hole\",\"region\":%" PRIu64 ",\"calls\":5}",
                           right),
                     0);
    ck_assert(fh_wait_caught_up(h, 20000));
    tkc_feed_stats_t st;
    tkc_feed_get_stats(fh_feed(h), &st);
    fprintf(stderr, "stale pd: holes %" PRIu64 " scans %" PRIu64 "\n", st.pd_holes, st.pd_scans);
    ck_assert_uint_ge(st.pd_holes, 1);
    ck_assert_uint_eq(st.regions_active, sc_region_count(h));
    sc_finish(h, "stale_pd", true);
    fh_destroy(h);
}
END_TEST

/* §7.16: streams ended by the server with OK, UNKNOWN and UNAVAILABLE. */
START_TEST(test_feed_stream_end_statuses)
{
    tkc_feed_config_t cfg;
    fh_t *h = setup_run(120, &cfg);
    sc_start(h, &cfg);
    const char *statuses[] = {"OK", "UNKNOWN", "UNAVAILABLE"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(
            fh_op(h, "{\"op\":\"end_streams\",\"store\":%d,\"status\":\"%s\"}", i + 1, statuses[i]),
            0);
        fh_sleep_ms(300);
    }
    ck_assert(fh_wait_caught_up(h, 20000));
    tkc_feed_stats_t st;
    tkc_feed_get_stats(fh_feed(h), &st);
    fprintf(stderr, "stream ends: opened %" PRIu64 " retired %" PRIu64 "\n", st.streams_opened,
            st.streams_retired);
    ck_assert_uint_ge(st.streams_retired, 3);
    /* each ended stream replaced once per worker, no more */
    ck_assert_uint_le(st.streams_opened, 3u * (uint64_t)cfg.workers * 2);
    ck_assert_uint_eq(st.regions_active, sc_region_count(h));
    sc_finish(h, "stream_end", true);
    fh_destroy(h);
}
END_TEST

/* §7.22: a silent stall (the connection answers pings, nothing else comes):
 * the feed's stall watchdog retires the stream. */
START_TEST(test_feed_silent_stall)
{
    tkc_feed_config_t cfg;
    fh_t *h = setup_run(90, &cfg);
    cfg.stream_stall_timeout_ms = 2000;
    sc_start(h, &cfg);
    ck_assert_int_eq(fh_op(h, "{\"op\":\"end_streams\",\"store\":3,\"silent_stall\":true}"), 0);
    fh_sleep_ms(1000);
    ck_assert(fh_wait_caught_up(h, 20000));
    tkc_feed_stats_t st;
    tkc_feed_get_stats(fh_feed(h), &st);
    const tkc_feed_store_stats_t *s3 = tkc_feed_stats_store(&st, 3);
    ck_assert_ptr_nonnull(s3);
    fprintf(stderr, "silent stall: stalls %" PRIu64 " streams opened %" PRIu64 "\n", s3->stalls,
            s3->streams_opened);
    ck_assert_uint_ge(s3->stalls, 1);
    sc_finish(h, "silent_stall", true);
    fh_destroy(h);
}
END_TEST

/* §7.17: the same store id moves to a new address; the feed re-resolves it
 * through PD and does not keep dialling the dead one. */
START_TEST(test_feed_store_address_change)
{
    tkc_feed_config_t cfg;
    fh_t *h = setup_run(90, &cfg);
    sc_start(h, &cfg);
    sim_cdc_stats_t before;
    fh_sim_store_stats(h, 3, &before);
    ck_assert_int_eq(fh_op(h, "{\"op\":\"change_store_addr\",\"store\":3}"), 0);
    fh_sleep_ms(500);
    ck_assert(fh_wait_caught_up(h, 20000));
    sim_cdc_stats_t after;
    fh_sim_store_stats(h, 3, &after);
    tkc_feed_stats_t st;
    tkc_feed_get_stats(fh_feed(h), &st);
    const tkc_feed_store_stats_t *s3 = tkc_feed_stats_store(&st, 3);
    fprintf(stderr, "address change: sim streams on store 3 %" PRIu64 " -> %" PRIu64
                    "; feed opened %" PRIu64 "\n",
            before.streams_opened, after.streams_opened, s3->streams_opened);
    ck_assert_uint_gt(after.streams_opened, before.streams_opened);
    ck_assert_uint_gt(after.registrations_active, 0);
    sc_finish(h, "address_change", true);
    fh_destroy(h);
}
END_TEST

static Suite *feed_faults_suite(void)
{
    Suite *s = suite_create("feed_faults");
    /* one case per test: CK_RUN_CASE=<name without test_feed_> runs one */
#define CASE(fn, name)                                                       \
    do {                                                                     \
        TCase *tc = tcase_create(name);                                      \
        tcase_set_timeout(tc, 120);                                          \
        tcase_add_test(tc, fn);                                              \
        suite_add_tcase(s, tc);                                              \
    } while (0)
    CASE(test_feed_store_restart, "store_restart");
    CASE(test_feed_quick_restart_no_scan, "quick_restart_no_scan");
    CASE(test_feed_leader_transfer, "leader_transfer");
    CASE(test_feed_split_and_merge, "split_and_merge");
    CASE(test_feed_busy_and_congested, "busy_and_congested");
    CASE(test_feed_stale_pd_after_split, "stale_pd_after_split");
    CASE(test_feed_stream_end_statuses, "stream_end_statuses");
    CASE(test_feed_silent_stall, "silent_stall");
    CASE(test_feed_store_address_change, "store_address_change");
#undef CASE
    return s;
}

TKC_CHECK_MAIN(feed_faults_suite)
