/*
 * check_pipeline_mock.c: the pipeline's error handling on librdkafka's
 * embedded mock cluster (kafka_mock_brokers, the demo setup):
 *   - retriable Produce errors: everything delivered, final watermark and
 *     checkpoint at the end, checked by a consumer of the mock;
 *   - MSG_SIZE_TOO_LARGE from the broker: HELD with a clear error, the
 *     watermark and checkpoint stay below the row, later rows not released;
 *   - a fatal producer error: FAILED, nothing committed after it, and join
 *     returns the error (the process exits non-zero, the restart replays);
 *   - the start checkpoint stored at open is read back although the broker
 *     answers the first end-offset requests with leadership errors (a
 *     restart right after a broker restart);
 *   - changes re-sent while still unreleased (a re-subscription) reach
 *     Kafka once: the later copy is dropped at release, also when the rows
 *     spilled to disk (row_dedup.h).
 */
#include <check.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed_event.h"
#include "pipeline.h"
#include "pipeline/pipeline_test.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/log.h"

#define API_PRODUCE 0
#define API_LIST_OFFSETS 2

typedef struct {
    tkc_feedgen_t *g;
    tkc_avro_codec_t *codec;
    tkc_msgq_t *q;
    tkc_pipeline_t *pl;
    tkc_pipeline_span_t spans[3];
    char prefix[64];
} env_t;

static env_t env;
static char spill_dir[64];

static void setup_with(size_t quota, uint64_t disk_budget)
{
    tkc_log_set_level(TKC_LOG_ERROR);
    uint64_t t0 = tkc_tso_compose(tkc_clock_wall_ms() - 3600 * 1000, 0);
    env.g = tkc_feedgen_new(3, 2, 50, t0, 21);
    tkc_feedgen_spans(env.g, env.spans);
    env.codec = tkc_ptest_codec();
    env.q = tkc_msgq_new(4 << 20);
    snprintf(env.prefix, sizeof(env.prefix), "mock");
    tkc_pipeline_config_t cfg;
    tkc_ptest_config(&cfg, NULL, env.prefix, "feed-mock", env.spans, 3, env.codec);
    cfg.kafka_mock_brokers = 1;
    cfg.start_ts = t0;
    if (quota) {
        snprintf(spill_dir, sizeof(spill_dir), "/tmp/tkc-pl-mock-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(spill_dir));
        cfg.memory_quota = quota;
        cfg.disk_budget = disk_budget;
        cfg.spill_dir = spill_dir;
        cfg.max_inflight_bytes = 64 * 1024;
    }
    char e[512] = "";
    env.pl = tkc_pipeline_new(&cfg, env.q, e, sizeof(e));
    ck_assert_msg(env.pl != NULL, "%s", e);
    ck_assert_msg(tkc_pipeline_open(env.pl, e, sizeof(e)) == TKC_ERR_OK, "%s", e);
    ck_assert_int_eq(tkc_pipeline_start(env.pl, e, sizeof(e)), TKC_ERR_OK);
}

static void setup(void)
{
    setup_with(0, 0);
}

/* 64 KiB in memory, 256 KiB on disk, 64 KiB in flight */
static void setup_tiny(void)
{
    setup_with(64 * 1024, 256 * 1024);
}

static void teardown(void)
{
    tkc_pipeline_destroy(env.pl);
    if (spill_dir[0]) {
        ck_assert_int_eq(rmdir(spill_dir), 0); /* nothing left behind */
        spill_dir[0] = '\0';
    }
    tkc_msgq_destroy(env.q, tkc_feed_event_free);
    tkc_avro_codec_destroy(env.codec);
    tkc_feedgen_destroy(env.g);
}

static rd_kafka_mock_cluster_t *mock(void)
{
    /* fault injection is thread-safe: the mock runs on its own thread */
    return tkc_kafka_sink_mock_cluster(tkc_pipeline_sink(env.pl));
}

static uint64_t txns(int n, uint32_t value_len)
{
    for (int i = 0; i < n; i++)
        ck_assert_uint_ne(tkc_feedgen_txn(env.g, env.q, 8, value_len), 0);
    return tkc_feedgen_resolve(env.g, env.q, 0);
}

static bool not_running(const tkc_pipeline_metrics_t *m, void *arg)
{
    (void)arg;
    return m->state != TKC_PIPELINE_RUNNING;
}

START_TEST(test_pipeline_mock_retriable)
{
    uint64_t first = txns(5, 60);
    ck_assert(tkc_ptest_wait_checkpoint(env.pl, first, 20000));
    rd_kafka_mock_push_request_errors(mock(), API_PRODUCE, 5,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                      RD_KAFKA_RESP_ERR__TRANSPORT,
                                      RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
    uint64_t last = txns(30, 60);
    ck_assert(tkc_ptest_wait_checkpoint(env.pl, last, 30000));
    char e[1024] = "";
    tkc_pipeline_stop(env.pl);
    ck_assert_msg(tkc_pipeline_join(env.pl, e, sizeof(e)) == TKC_ERR_OK, "%s", e);
    tkc_pipeline_metrics_t m;
    tkc_pipeline_metrics(env.pl, &m);
    ck_assert_uint_eq(m.sink.failed, 0);
    tkc_pipeline_metrics_free(&m);

    size_t n;
    const tkc_feedgen_row_t *truth = tkc_feedgen_truth(env.g, &n);
    tkc_verify_opts_t o = {
        .bootstrap = tkc_kafka_sink_bootstrap(tkc_pipeline_sink(env.pl)),
        .prefix = env.prefix,
        .feed_id = "feed-mock",
        .n_spans = 3,
        .partitions = 3,
        .isolation = TKC_KAFKA_TEST_READ_UNCOMMITTED,
        .watermarks_in_partitions = true,
        .expect_final = last,
        .exactly_once = true,
        .expect_checkpoint_topic = true,
    };
    tkc_verify_report_t rep;
    ck_assert_msg(tkc_verify_feed(&o, truth, n, &rep, e, sizeof(e)) == 0, "verify: %s", e);
    ck_assert_uint_eq(rep.distinct, n);
}
END_TEST

START_TEST(test_pipeline_mock_too_large_holds)
{
    uint64_t first = txns(5, 60);
    ck_assert(tkc_ptest_wait_checkpoint(env.pl, first, 20000));
    rd_kafka_mock_push_request_errors(mock(), API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    uint64_t second = txns(3, 60);
    uint64_t third = txns(3, 60);
    tkc_pipeline_metrics_t m;
    ck_assert_msg(tkc_ptest_wait(env.pl, not_running, NULL, 20000, &m), "never held");
    ck_assert_int_eq(m.state, TKC_PIPELINE_HELD);
    ck_assert_msg(strstr(m.error, "MSG_SIZE_TOO_LARGE"), "%s", m.error);
    tkc_pipeline_metrics_free(&m);
    usleep(300 * 1000);
    tkc_pipeline_metrics(env.pl, &m);
    ck_assert_uint_lt(m.watermark_ts, second);
    ck_assert_uint_eq(m.checkpoint_ts, first);
    ck_assert_uint_eq(m.resolved_ts >= second ? 1 : 0, 1); /* the feed went on */
    (void)third;
    tkc_pipeline_metrics_free(&m);
    char e[512] = "";
    tkc_pipeline_stop(env.pl);
    ck_assert_int_eq(tkc_pipeline_join(env.pl, e, sizeof(e)), TKC_ERR_REJECTED);
    ck_assert_ptr_nonnull(strstr(e, "MSG_SIZE_TOO_LARGE"));
    tkc_pipeline_metrics(env.pl, &m);
    ck_assert_uint_eq(m.checkpoint_ts, first); /* not even the final one */
    tkc_pipeline_metrics_free(&m);
}
END_TEST

START_TEST(test_pipeline_mock_fatal_stops)
{
    uint64_t first = txns(5, 60);
    ck_assert(tkc_ptest_wait_checkpoint(env.pl, first, 20000));
    rd_kafka_mock_push_request_errors(mock(), API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    txns(3, 60);
    tkc_pipeline_metrics_t m;
    ck_assert_msg(tkc_ptest_wait(env.pl, not_running, NULL, 20000, &m), "never failed");
    ck_assert_int_eq(m.state, TKC_PIPELINE_FAILED);
    ck_assert_int_eq(m.err, TKC_ERR_KAFKA_FATAL);
    ck_assert_msg(strstr(m.error, "OUT_OF_ORDER_SEQUENCE_NUMBER"), "%s", m.error);
    ck_assert_uint_eq(m.checkpoint_ts, first);
    tkc_pipeline_metrics_free(&m);
    char e[512] = "";
    /* the thread ended by itself; join returns the error */
    ck_assert_int_eq(tkc_pipeline_join(env.pl, e, sizeof(e)), TKC_ERR_KAFKA_FATAL);
    tkc_pipeline_metrics(env.pl, &m);
    ck_assert_uint_eq(m.checkpoint_ts, first);
    tkc_pipeline_metrics_free(&m);
}
END_TEST

/*
 * The budget is spent by rows no resolved ts covers yet, and the RESOLVED
 * event that would release them sits in the queue behind more rows. Waiting
 * cannot free anything, so the pipeline must read on past the budget
 * (counted) instead of deadlocking.
 */
START_TEST(test_pipeline_mock_full_but_unresolved_no_deadlock)
{
    /* ~1.2 MiB of unresolved rows against 64 KiB + 256 KiB of budget */
    for (int i = 0; i < 300; i++)
        ck_assert_uint_ne(tkc_feedgen_txn(env.g, env.q, 8, 500), 0);
    uint64_t last = tkc_feedgen_resolve(env.g, env.q, 0);
    ck_assert_msg(tkc_ptest_wait_checkpoint(env.pl, last, 30000), "deadlocked");
    tkc_pipeline_metrics_t m;
    tkc_pipeline_metrics(env.pl, &m);
    ck_assert_uint_gt(m.sorter.forced_adds, 0);
    ck_assert_uint_gt(m.sorter.spilled_bytes_total, 256 * 1024);
    ck_assert_uint_eq(m.sorter.disk_bytes, 0);
    tkc_pipeline_metrics_free(&m);
    char e[512] = "";
    tkc_pipeline_stop(env.pl);
    ck_assert_msg(tkc_pipeline_join(env.pl, e, sizeof(e)) == TKC_ERR_OK, "%s", e);
}
END_TEST

/*
 * The budget is spent by rows that are resolved but cannot leave (the
 * broker is down): the pipeline stops reading the feed (paused) and does not
 * exceed the budget; when the broker is back everything flows.
 */
static bool paused(const tkc_pipeline_metrics_t *m, void *arg)
{
    (void)arg;
    return m->paused;
}

START_TEST(test_pipeline_mock_full_and_resolved_pauses)
{
    rd_kafka_mock_cluster_t *mc = mock();
    ck_assert_int_eq(rd_kafka_mock_broker_set_down(mc, 1), 0);
    /* ~900 kB of resolved rows: far more than 64 + 256 + 64 kB fit */
    for (int i = 0; i < 200; i++) {
        ck_assert_uint_ne(tkc_feedgen_txn(env.g, env.q, 8, 500), 0);
        if (i % 10 == 9)
            tkc_feedgen_resolve(env.g, env.q, 0);
    }
    tkc_pipeline_metrics_t m;
    ck_assert_msg(tkc_ptest_wait(env.pl, paused, NULL, 10000, &m), "never paused");
    ck_assert_uint_eq(m.sorter.forced_adds, 0);
    ck_assert_uint_le(m.sorter.disk_bytes, 256 * 1024);
    ck_assert_uint_le(m.sorter.mem_bytes, 64 * 1024);
    ck_assert_uint_gt(tkc_msgq_count(env.q), 0); /* the feed queue backs up */
    tkc_pipeline_metrics_free(&m);
    ck_assert_int_eq(rd_kafka_mock_broker_set_up(mc, 1), 0);
    uint64_t last = tkc_feedgen_resolve(env.g, env.q, 0);
    ck_assert_msg(tkc_ptest_wait_checkpoint(env.pl, last, 30000), "no progress after set_up");
    tkc_pipeline_metrics(env.pl, &m);
    ck_assert_uint_eq(m.sorter.forced_adds, 0);
    tkc_pipeline_metrics_free(&m);
}
END_TEST

/*
 * The open stored the start ts in the checkpoint topic; a reader (what a
 * restart runs) gets it although the broker first answers ListOffsets with
 * leadership errors, which go away by themselves.
 */
START_TEST(test_pipeline_mock_checkpoint_read_retries)
{
    tkc_pipeline_config_t cfg;
    tkc_ptest_config(&cfg, NULL, env.prefix, "feed-mock", env.spans, 3, env.codec);
    char e[512] = "";
    rd_kafka_conf_t *conf = tkc_kafka_sink_client_conf(tkc_pipeline_sink(env.pl), e, sizeof(e));
    ck_assert_msg(conf != NULL, "%s", e);
    rd_kafka_mock_push_request_errors(mock(), API_LIST_OFFSETS, 3,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
    tkc_checkpoint_t cp = {0};
    tkc_err_t err = tkc_checkpoint_kafka_read(conf, "mock.checkpoint", "feed-mock", false, 20000,
                                              cfg.codec.decode_checkpoint, cfg.codec.opaque,
                                              &cp, e, sizeof(e));
    rd_kafka_conf_destroy(conf);
    ck_assert_msg(err == TKC_ERR_OK, "%s: %s", tkc_err2name(err), e);
    ck_assert_uint_eq(cp.ts, tkc_pipeline_start_ts(env.pl));
    ck_assert_uint_eq(cp.epoch, 1);
}
END_TEST

/*
 * Like TiKV after a re-subscription: every change above the start ts is
 * sent again before any of it is resolved, so both copies meet in the
 * sorter; only one copy of each may reach Kafka.
 */
static void resent_copies_dropped(void)
{
    uint64_t t0 = tkc_pipeline_start_ts(env.pl);
    for (int i = 0; i < 40; i++)
        ck_assert_uint_ne(tkc_feedgen_txn(env.g, env.q, 8, 200), 0);
    uint64_t last = tkc_feedgen_replay(env.g, env.q, t0);
    ck_assert_uint_ne(last, 0);
    ck_assert_msg(tkc_ptest_wait_checkpoint(env.pl, last, 30000), "no checkpoint at %" PRIu64,
                  last);
    char e[1024] = "";
    tkc_pipeline_stop(env.pl);
    ck_assert_msg(tkc_pipeline_join(env.pl, e, sizeof(e)) == TKC_ERR_OK, "%s", e);

    size_t n;
    const tkc_feedgen_row_t *truth = tkc_feedgen_truth(env.g, &n);
    tkc_pipeline_metrics_t m;
    tkc_pipeline_metrics(env.pl, &m);
    ck_assert_uint_eq(m.rows_in, 2 * n);
    ck_assert_uint_eq(m.duplicates_dropped, n);
    ck_assert_uint_eq(m.rows_released, n);
    tkc_pipeline_metrics_free(&m);

    tkc_verify_opts_t o = {
        .bootstrap = tkc_kafka_sink_bootstrap(tkc_pipeline_sink(env.pl)),
        .prefix = env.prefix,
        .feed_id = "feed-mock",
        .n_spans = 3,
        .partitions = 3,
        .isolation = TKC_KAFKA_TEST_READ_UNCOMMITTED,
        .watermarks_in_partitions = true,
        .expect_final = last,
        .exactly_once = true, /* no (key, commit_ts) twice */
        .expect_checkpoint_topic = true,
    };
    tkc_verify_report_t rep;
    ck_assert_msg(tkc_verify_feed(&o, truth, n, &rep, e, sizeof(e)) == 0, "verify: %s", e);
    ck_assert_uint_eq(rep.distinct, n);
    ck_assert_uint_eq(rep.rows, n);
}

START_TEST(test_pipeline_mock_resent_copies_dropped)
{
    resent_copies_dropped();
}
END_TEST

/* the same through spill runs: copies meet again in the k-way merge */
START_TEST(test_pipeline_mock_resent_copies_dropped_spilled)
{
    resent_copies_dropped();
    tkc_pipeline_metrics_t m;
    tkc_pipeline_metrics(env.pl, &m);
    ck_assert_uint_gt(m.sorter.runs_total, 1);
    tkc_pipeline_metrics_free(&m);
}
END_TEST

static Suite *pipeline_mock_suite(void)
{
    Suite *s = suite_create("pipeline_mock");
    TCase *tc = tcase_create("faults");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pipeline_mock_retriable);
    tcase_add_test(tc, test_pipeline_mock_too_large_holds);
    tcase_add_test(tc, test_pipeline_mock_fatal_stops);
    tcase_add_test(tc, test_pipeline_mock_resent_copies_dropped);
    tcase_add_test(tc, test_pipeline_mock_checkpoint_read_retries);
    suite_add_tcase(s, tc);

    tc = tcase_create("budget");
    tcase_add_checked_fixture(tc, setup_tiny, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pipeline_mock_full_but_unresolved_no_deadlock);
    tcase_add_test(tc, test_pipeline_mock_full_and_resolved_pauses);
    tcase_add_test(tc, test_pipeline_mock_resent_copies_dropped_spilled);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(pipeline_mock_suite)
