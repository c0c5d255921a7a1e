/*
 * check_feed_seed.c: THE scenario this project exists for (issue 4, "the
 * seed"): TiCDC's reconnection downhill loop (tiflow#10239, fixed by PR
 * 10559). One TiKV store restarts while the feed's retired-stream cleanup is
 * delayed by 5 s, as PR 10559's manual test injected it.
 *
 * Built twice from this file:
 *   feed.seed              (TKC_SEED_EXPECT_LOOP=0) the product: streams are
 *                          retired by id, the delayed second cleanup is a
 *                          no-op. Exactly one new stream per worker is
 *                          opened to the restarted store, and the resolved-ts
 *                          lag returns below failover delay + 2 s and stays
 *                          there.
 *   feed.seed_addr_keyed   (TKC_SEED_EXPECT_LOOP=1) linked against the feed
 *                          built with TKC_TEST_ADDR_KEYED_STREAMS, the old
 *                          address-keyed stream table: the delayed cleanup
 *                          of each dead stream kills its healthy replacement
 *                          and the test asserts the resulting loop (a new
 *                          stream every cleanup period, lag spikes that keep
 *                          coming back). This proves the first test can fail.
 *
 * Timings are asserted only with generous bounds; the measured figures are
 * printed for the report.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "feed.h"
#include "feed_harness.h"
#include "feed_scenario.h"
#include "stream_table.h"
#include "unit/check_main.h"
#include "util/clock.h"

#ifndef TKC_SEED_EXPECT_LOOP
#define TKC_SEED_EXPECT_LOOP 0
#endif

#define SEED_REGIONS 3000
#define SEED_DOWN_MS 3000
#define SEED_CLEANUP_DELAY_MS 5000
#define SEED_OBSERVE_MS 16000 /* > 3 cleanup periods */
#define SEED_STORE 1
#define SEED_STEADY_LAG_MS 2000

static uint64_t feed_opened(fh_t *h, uint64_t store)
{
    tkc_feed_stats_t st;
    tkc_feed_get_stats(fh_feed(h), &st);
    const tkc_feed_store_stats_t *s = tkc_feed_stats_store(&st, store);
    return s ? s->streams_opened : 0;
}

/*
 * @p scan_rows_per_tick: the simulator's incremental-scan speed. With the
 * default (fast) scans every re-registration initializes within a second;
 * with slow scans (as real TiKV with large regions) a re-scan outlasts the
 * cleanup period, which is how the old loop turned into ever-growing lag.
 */
static void run_seed(int scan_rows_per_tick, int rate, bool slow)
{
    ck_assert_int_eq(tkc_stream_table_addr_keyed(), TKC_SEED_EXPECT_LOOP);
    const char *mode = TKC_SEED_EXPECT_LOOP ? (slow ? "address-keyed, slow scans" : "address-keyed")
                                            : (slow ? "id-guarded, slow scans" : "id-guarded");

    fh_opts_t o;
    fh_opts_init(&o);
    o.stores = 3;
    o.regions = SEED_REGIONS;
    o.rate = rate;
    o.resolved_interval_ms = 500;
    o.scan_rows_per_tick = scan_rows_per_tick;
    fh_t *h = fh_new(&o);
    tkc_feed_config_t cfg;
    fh_feed_config(h, &cfg);
    cfg.test_stream_cleanup_delay_ms = SEED_CLEANUP_DELAY_MS;
    cfg.alter_interval_ms = 1000;
    cfg.stuck_threshold_ms = 20000;
    cfg.stream_stall_timeout_ms = 30000;
    sc_start(h, &cfg);
    fh_sleep_ms(1000);

    uint64_t feed0 = feed_opened(h, SEED_STORE);
    sim_cdc_stats_t sim0;
    fh_sim_store_stats(h, SEED_STORE, &sim0);
    int64_t base_lag = fh_lag_ms(h);

    /* a restart within the election timeout: leaders stay on the store, so
     * every one of its regions comes back to it (a rolling restart) */
    fh_mark_lag(h);
    int64_t t0 = tkc_clock_mono_ms();
    ck_assert_int_eq(fh_op(h, "{\"op\":\"restart_store\",\"store\":%d,\"down_ms\":%d,"
                              "\"election_ms\":%d}",
                           SEED_STORE, SEED_DOWN_MS, SEED_DOWN_MS + 10000),
                     0);
    const int64_t bound = SEED_DOWN_MS + 2000; /* failover delay + 2 s */
    /* recovered = the store is back and the lag is at its steady level */
    fh_sleep_ms(SEED_DOWN_MS);
    int64_t took = 0;
    bool recovered = fh_wait_lag_below(
        h, SEED_STEADY_LAG_MS, slow ? (TKC_SEED_EXPECT_LOOP ? 15000 : 40000) : 30000, &took);
    int64_t recovery_ms = tkc_clock_mono_ms() - t0;
    int64_t max_lag_recovery = fh_max_lag_ms(h);

    /* then watch it for several cleanup periods */
    fh_mark_lag(h);
    int spikes = 0;
    bool above = false;
    char timeline[512];
    size_t tl = 0;
    int64_t first_lag = fh_lag_ms(h), last_lag = first_lag;
    int64_t next_sample = tkc_clock_mono_ms();
    int64_t end = next_sample + SEED_OBSERVE_MS;
    while (tkc_clock_mono_ms() < end) {
        int64_t lag = fh_lag_ms(h);
        last_lag = lag;
        if (lag >= SEED_STEADY_LAG_MS && !above)
            spikes++;
        above = lag >= SEED_STEADY_LAG_MS;
        if (tkc_clock_mono_ms() >= next_sample && tl < sizeof(timeline) - 16) {
            tl += (size_t)snprintf(timeline + tl, sizeof(timeline) - tl, " %" PRId64, lag);
            next_sample += 1000;
        }
        fh_sleep_ms(50);
    }
    int64_t max_lag_after = fh_max_lag_ms(h);
    uint64_t feed_new = feed_opened(h, SEED_STORE) - feed0;
    sim_cdc_stats_t sim1;
    fh_sim_store_stats(h, SEED_STORE, &sim1);
    uint64_t sim_new = sim1.streams_opened - sim0.streams_opened;
    tkc_feed_stats_t st;
    tkc_feed_get_stats(fh_feed(h), &st);
    uint64_t handed_back = st.region_errors[TKC_FEED_REGION_ERR_STREAM];

    fprintf(stderr,
            "SEED (%s): %d regions, 3 stores, %d workers, scan %d rows/tick, %d rows/s; store %d "
            "down %d ms (leaders stay), cleanup delay %d ms\n"
            "SEED (%s): lag before %" PRId64 " ms; back to steady (< %d ms): %s, %" PRId64
            " ms after the restart; max lag during recovery %" PRId64 " ms (failover + 2 s = %" PRId64
            " ms)\n"
            "SEED (%s): next %d ms: max lag %" PRId64 " ms, lag spikes >= %d ms: %d; lag each "
            "second:%s\n"
            "SEED (%s): new streams to store %d: feed %" PRIu64 ", server-side %" PRIu64
            "; regions handed back by failed streams %" PRIu64 "\n",
            mode, SEED_REGIONS, cfg.workers, scan_rows_per_tick, rate, SEED_STORE, SEED_DOWN_MS,
            SEED_CLEANUP_DELAY_MS, mode, base_lag, SEED_STEADY_LAG_MS, recovered ? "yes" : "NO",
            recovery_ms, max_lag_recovery, bound, mode, SEED_OBSERVE_MS, max_lag_after,
            SEED_STEADY_LAG_MS, spikes, timeline, mode, SEED_STORE, feed_new, sim_new,
            handed_back);

    if (!TKC_SEED_EXPECT_LOOP) {
        ck_assert_msg(recovered, "lag did not come back to its steady level");
        if (!slow)
            ck_assert_msg(max_lag_recovery < bound,
                          "lag %" PRId64 " ms exceeded failover delay + 2 s", max_lag_recovery);
        /* exactly one new stream per worker (each had one to the store) */
        ck_assert_uint_eq(feed_new, (uint64_t)cfg.workers);
        ck_assert_uint_eq(sim_new, (uint64_t)cfg.workers);
        ck_assert_msg(spikes == 0, "the lag came back %d times (max %" PRId64 " ms)", spikes,
                      max_lag_after);
        sc_finish(h, slow ? "seed_slow_scans" : "seed", true);
    } else {
        /* the downhill loop: each delayed cleanup kills the replacement,
         * about one new stream per worker per cleanup period, and every
         * time all the store's regions start over */
        ck_assert_msg(feed_new >= 3u * (uint64_t)cfg.workers,
                      "expected the reconnection loop, got %" PRIu64 " new streams", feed_new);
        ck_assert_uint_ge(sim_new, 2u * (uint64_t)cfg.workers);
        ck_assert_uint_ge(handed_back, 3u * SEED_REGIONS / 3);
        if (slow) {
            /* re-scans outlast the cleanup period: the lag only grows */
            ck_assert_msg(!recovered, "the lag recovered despite the loop");
            ck_assert_msg(last_lag > first_lag + SEED_OBSERVE_MS / 2,
                          "lag did not grow: %" PRId64 " -> %" PRId64 " ms", first_lag, last_lag);
        }
    }
    fh_destroy(h);
}

START_TEST(test_feed_seed_store_restart_delayed_cleanup)
{
    run_seed(8192, 2000, false);
}
END_TEST

START_TEST(test_feed_seed_store_restart_slow_scans)
{
    run_seed(1, 2000, true);
}
END_TEST

static Suite *feed_seed_suite(void)
{
    Suite *s = suite_create(TKC_SEED_EXPECT_LOOP ? "feed_seed_addr_keyed" : "feed_seed");
    TCase *tc = tcase_create("seed");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_feed_seed_store_restart_delayed_cleanup);
    suite_add_tcase(s, tc);
    tc = tcase_create("seed_slow_scans");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_feed_seed_store_restart_slow_scans);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(feed_seed_suite)
