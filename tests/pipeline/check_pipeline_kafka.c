/*
 * check_pipeline_kafka.c: the pipeline against the real Kafka broker
 * (at-least-once): a synthetic feed goes in, an independent consumer checks
 * what came out against the ground truth (pipeline_test.h, tkc_verify_feed):
 * every change present, per-key commit order per partition, Java-compatible
 * partitioning, watermarks monotonic and after the rows they cover,
 * checkpoint content. Also: resume from the checkpoint (Kafka and file
 * stores), and an oversized row that holds the watermark with a clear error
 * instead of being skipped (rejected by the broker, and by the client).
 * Without a checkpoint, the resolved start ts is stored at open (both
 * stores), and a start ts that cannot be stored fails the open.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed_event.h"
#include "kafka/kafka_test.h"
#include "pipeline.h"
#include "pipeline/pipeline_test.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/log.h"

static char *bootstrap;

static void setup(void)
{
    char e[512];
    bootstrap = tkc_kafka_test_bootstrap(e, sizeof(e));
    ck_assert_msg(bootstrap != NULL, "%s", e);
    tkc_log_set_level(TKC_LOG_WARN);
}

static void teardown(void)
{
    free(bootstrap);
}

static uint64_t base_ts(void)
{
    /* an hour ago: watermark lag figures stay plausible */
    return tkc_tso_compose(tkc_clock_wall_ms() - 3600 * 1000, 0);
}

/* Opens and starts a pipeline on @p cfg; asserts on failure. */
static tkc_pipeline_t *start(const tkc_pipeline_config_t *cfg, tkc_msgq_t *q)
{
    char e[512] = "";
    tkc_pipeline_t *pl = tkc_pipeline_new(cfg, q, e, sizeof(e));
    ck_assert_msg(pl != NULL, "%s", e);
    ck_assert_msg(tkc_pipeline_open(pl, e, sizeof(e)) == TKC_ERR_OK, "open: %s", e);
    ck_assert_int_eq(tkc_pipeline_start(pl, e, sizeof(e)), TKC_ERR_OK);
    return pl;
}

static void stop_ok(tkc_pipeline_t *pl)
{
    char e[512] = "";
    tkc_pipeline_stop(pl);
    tkc_err_t err = tkc_pipeline_join(pl, e, sizeof(e));
    ck_assert_msg(err == TKC_ERR_OK, "join: %s: %s", tkc_err2name(err), e);
}

/* Random transactions; resolves every few. @returns the last resolved ts. */
static uint64_t drive(tkc_feedgen_t *g, tkc_msgq_t *q, int txns, unsigned seed)
{
    uint64_t resolved = 0;
    for (int i = 0; i < txns; i++) {
        ck_assert_uint_ne(tkc_feedgen_txn(g, q, 1 + (unsigned)rand_r(&seed) % 30, 100), 0);
        if (i % 5 == 4)
            resolved = tkc_feedgen_resolve(g, q, 0);
    }
    resolved = tkc_feedgen_resolve(g, q, 0);
    ck_assert_uint_ne(resolved, 0);
    return resolved;
}

static void verify(const char *prefix, const char *feed, tkc_feedgen_t *g, uint64_t final,
                   bool ck_topic, tkc_verify_report_t *rep)
{
    size_t n;
    const tkc_feedgen_row_t *truth = tkc_feedgen_truth(g, &n);
    tkc_verify_opts_t o = {
        .bootstrap = bootstrap,
        .prefix = prefix,
        .feed_id = feed,
        .n_spans = 3,
        .partitions = 3,
        .isolation = TKC_KAFKA_TEST_READ_UNCOMMITTED,
        .watermarks_in_partitions = true,
        .expect_final = final,
        .exactly_once = true, /* no faults here: not even duplicates */
        .expect_checkpoint_topic = ck_topic,
    };
    char e[1024] = "";
    ck_assert_msg(tkc_verify_feed(&o, truth, n, rep, e, sizeof(e)) == 0, "verify: %s", e);
}

START_TEST(test_pipeline_kafka_basic)
{
    char *prefix = tkc_ptest_prefix("basic");
    const char *feed = "feed-basic";
    uint64_t t0 = base_ts();
    tkc_feedgen_t *g = tkc_feedgen_new(3, 2, 200, t0, 1);
    tkc_pipeline_span_t spans[3];
    tkc_feedgen_spans(g, spans);
    tkc_avro_codec_t *codec = tkc_ptest_codec();
    tkc_pipeline_config_t cfg;
    tkc_ptest_config(&cfg, bootstrap, prefix, feed, spans, 3, codec);
    cfg.start_ts = t0;
    tkc_msgq_t *q = tkc_msgq_new(4 << 20);

    tkc_pipeline_t *pl = start(&cfg, q);
    ck_assert_uint_eq(tkc_pipeline_start_ts(pl), t0); /* no checkpoint yet: start-ts */
    uint64_t last = drive(g, q, 120, 7);
    ck_assert_msg(tkc_ptest_wait_checkpoint(pl, last, 60000), "checkpoint never reached %" PRIu64,
                  last);
    tkc_pipeline_metrics_t m;
    tkc_pipeline_metrics(pl, &m);
    size_t n;
    tkc_feedgen_truth(g, &n);
    ck_assert_int_eq(m.state, TKC_PIPELINE_RUNNING);
    ck_assert_uint_eq(m.rows_delivered, n);
    ck_assert_uint_eq(m.acked_ts, last);
    ck_assert_uint_eq(m.watermark_ts, last);
    ck_assert_uint_eq(m.sink.failed, 0);
    ck_assert_uint_eq(m.sink.inflight_msgs, 0);
    ck_assert_uint_eq(m.late_rows, 0);
    ck_assert_uint_gt(m.watermarks, 0);
    uint64_t rows_topics = 0;
    for (size_t i = 0; i < 3; i++) {
        rows_topics += m.topics[i].rows_delivered;
        ck_assert_uint_gt(m.topics[i].messages_produced, m.topics[i].rows_produced);
    }
    ck_assert_uint_eq(rows_topics, n);
    ck_assert_uint_gt(m.topics[3].messages_produced, 0); /* watermark topic */
    ck_assert_uint_eq(m.topics[3].rows_produced, 0);
    tkc_pipeline_metrics_free(&m);
    stop_ok(pl);
    tkc_pipeline_destroy(pl);

    tkc_verify_report_t rep;
    verify(prefix, feed, g, last, true, &rep);
    ck_assert_uint_eq(rep.distinct, n);
    ck_assert_uint_gt(rep.watermarks_in_rows, 0);
    ck_assert_uint_eq(rep.last_checkpoint_epoch, 1);

    /* a restart resumes from the checkpoint in the compacted topic */
    pl = start(&cfg, q);
    ck_assert_uint_eq(tkc_pipeline_start_ts(pl), last);
    tkc_pipeline_metrics(pl, &m);
    ck_assert_uint_eq(m.epoch, 2);
    tkc_pipeline_metrics_free(&m);
    stop_ok(pl);
    tkc_pipeline_destroy(pl);

    tkc_msgq_destroy(q, tkc_feed_event_free);
    tkc_avro_codec_destroy(codec);
    tkc_feedgen_destroy(g);
    free(prefix);
}
END_TEST

/*
 * File store: the first run stops with rows above the frontier unreleased;
 * the second starts from the file's checkpoint and gets the rest replayed
 * (as TiKV does): every change arrives exactly once.
 */
START_TEST(test_pipeline_kafka_file_store_resume)
{
    char *prefix = tkc_ptest_prefix("file");
    const char *feed = "feed-file";
    char dir[] = "/tmp/tkc-pl-file-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/checkpoint", dir);
    uint64_t t0 = base_ts();
    tkc_feedgen_t *g = tkc_feedgen_new(3, 2, 100, t0, 2);
    tkc_pipeline_span_t spans[3];
    tkc_feedgen_spans(g, spans);
    tkc_avro_codec_t *codec = tkc_ptest_codec();
    tkc_pipeline_config_t cfg;
    tkc_ptest_config(&cfg, bootstrap, prefix, feed, spans, 3, codec);
    cfg.start_ts = t0;
    cfg.checkpoint_store = TKC_CHECKPOINT_STORE_FILE;
    cfg.checkpoint_path = path;
    tkc_msgq_t *q = tkc_msgq_new(4 << 20);

    tkc_pipeline_t *pl = start(&cfg, q);
    uint64_t r1 = drive(g, q, 40, 3);
    /* more changes the frontier does not cover yet */
    for (int i = 0; i < 10; i++)
        ck_assert_uint_ne(tkc_feedgen_txn(g, q, 10, 80), 0);
    ck_assert(tkc_ptest_wait_checkpoint(pl, r1, 60000));
    stop_ok(pl);
    tkc_pipeline_metrics_t m;
    tkc_pipeline_metrics(pl, &m);
    ck_assert_uint_eq(m.checkpoint_ts, r1); /* not beyond the frontier */
    ck_assert_int_eq(m.state, TKC_PIPELINE_STOPPED);
    tkc_pipeline_metrics_free(&m);
    tkc_pipeline_destroy(pl);
    tkc_msgq_destroy(q, tkc_feed_event_free);

    char e[512];
    tkc_checkpoint_t cp;
    ck_assert_int_eq(tkc_checkpoint_file_read(path, feed, &cp, e, sizeof(e)), TKC_ERR_OK);
    ck_assert_uint_eq(cp.ts, r1);
    ck_assert_uint_eq(cp.epoch, 1);

    q = tkc_msgq_new(4 << 20);
    pl = start(&cfg, q);
    ck_assert_uint_eq(tkc_pipeline_start_ts(pl), r1);
    uint64_t last = tkc_feedgen_replay(g, q, r1);
    ck_assert_uint_gt(last, r1);
    ck_assert(tkc_ptest_wait_checkpoint(pl, last, 60000));
    stop_ok(pl);
    tkc_pipeline_destroy(pl);
    ck_assert_int_eq(tkc_checkpoint_file_read(path, feed, &cp, e, sizeof(e)), TKC_ERR_OK);
    ck_assert_uint_eq(cp.ts, last);
    ck_assert_uint_eq(cp.epoch, 2);

    tkc_verify_report_t rep;
    verify(prefix, feed, g, last, false, &rep);
    size_t n;
    tkc_feedgen_truth(g, &n);
    ck_assert_uint_eq(rep.distinct, n);
    ck_assert_uint_eq(rep.duplicates, 0);

    unlink(path);
    rmdir(dir);
    tkc_msgq_destroy(q, tkc_feed_event_free);
    tkc_avro_codec_destroy(codec);
    tkc_feedgen_destroy(g);
    free(prefix);
}
END_TEST

static bool held_or_failed(const tkc_pipeline_metrics_t *m, void *arg)
{
    (void)arg;
    return m->state == TKC_PIPELINE_HELD || m->state == TKC_PIPELINE_FAILED;
}

/*
 * One row is too large for its topic. @p client_limit: the client's own
 * message.max.bytes rejects it before sending; else the broker's topic
 * max.message.bytes does (a delivery report error).
 */
static void oversized(bool client_limit)
{
    char *prefix = tkc_ptest_prefix(client_limit ? "big-client" : "big-broker");
    const char *feed = "feed-big";
    uint64_t t0 = base_ts();
    tkc_feedgen_t *g = tkc_feedgen_new(3, 1, 50, t0, 3);
    tkc_pipeline_span_t spans[3];
    tkc_feedgen_spans(g, spans);
    char e[1024] = "";
    if (!client_limit) {
        /* created before the pipeline, which keeps an existing topic as it is */
        for (int s = 0; s < 3; s++) {
            char topic[256];
            snprintf(topic, sizeof(topic), "%s.s%d", prefix, s);
            const char *conf[] = {"max.message.bytes", "20000", NULL};
            ck_assert_msg(tkc_kafka_test_create_topic(bootstrap, topic, 3, conf, 30000, e,
                                                      sizeof(e)) == 0,
                          "%s", e);
        }
    }
    tkc_avro_codec_t *codec = tkc_ptest_codec();
    tkc_pipeline_config_t cfg;
    tkc_ptest_config(&cfg, bootstrap, prefix, feed, spans, 3, codec);
    cfg.start_ts = t0;
    tkc_kafka_prop_t props[] = {{"message.max.bytes", "30000"}};
    if (client_limit) {
        cfg.kafka_props = props;
        cfg.n_kafka_props = 1;
    }
    tkc_msgq_t *q = tkc_msgq_new(4 << 20);
    tkc_pipeline_t *pl = start(&cfg, q);

    ck_assert_uint_ne(tkc_feedgen_txn(g, q, 10, 50), 0);
    uint64_t good = tkc_feedgen_resolve(g, q, 0);
    ck_assert(tkc_ptest_wait_checkpoint(pl, good, 30000));
    uint64_t bad = tkc_feedgen_txn(g, q, 1, 50000); /* one 50 kB row */
    ck_assert_uint_ne(bad, 0);
    ck_assert_uint_ne(tkc_feedgen_txn(g, q, 5, 50), 0);
    uint64_t after = tkc_feedgen_resolve(g, q, 0);

    tkc_pipeline_metrics_t m;
    ck_assert_msg(tkc_ptest_wait(pl, held_or_failed, NULL, 30000, &m), "never held");
    ck_assert_int_eq(m.state, TKC_PIPELINE_HELD);
    ck_assert_msg(strstr(m.error, "MSG_SIZE_TOO_LARGE") != NULL, "error: %s", m.error);
    bool counted = false;
    for (size_t i = 0; i < m.sink.n_error_kinds; i++)
        counted |= m.sink.errors[i].err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
    ck_assert(counted);
    tkc_pipeline_metrics_free(&m);
    /* and it stays held: the watermark never passes the row */
    usleep(500 * 1000);
    tkc_pipeline_metrics(pl, &m);
    ck_assert_int_eq(m.state, TKC_PIPELINE_HELD);
    ck_assert_uint_lt(m.acked_ts, bad);
    ck_assert_uint_lt(m.watermark_ts, bad);
    ck_assert_uint_eq(m.checkpoint_ts, good);
    ck_assert_uint_lt(m.resolved_ts + 0, after + 1);
    tkc_pipeline_metrics_free(&m);

    tkc_pipeline_stop(pl);
    tkc_err_t err = tkc_pipeline_join(pl, e, sizeof(e));
    ck_assert_int_ne(err, TKC_ERR_OK); /* the process exits non-zero */
    ck_assert_ptr_nonnull(strstr(e, "MSG_SIZE_TOO_LARGE"));
    tkc_pipeline_destroy(pl);

    tkc_verify_report_t rep;
    verify(prefix, feed, g, good, true, &rep);
    ck_assert_uint_eq(rep.last_watermark, good);

    /* a restart starts below the row: it is replayed, never skipped */
    q = (tkc_msgq_destroy(q, tkc_feed_event_free), tkc_msgq_new(4 << 20));
    pl = tkc_pipeline_new(&cfg, q, e, sizeof(e));
    ck_assert_int_eq(tkc_pipeline_open(pl, e, sizeof(e)), TKC_ERR_OK);
    ck_assert_uint_eq(tkc_pipeline_start_ts(pl), good);
    tkc_pipeline_destroy(pl);

    tkc_msgq_destroy(q, tkc_feed_event_free);
    tkc_avro_codec_destroy(codec);
    tkc_feedgen_destroy(g);
    free(prefix);
}

START_TEST(test_pipeline_kafka_oversized_broker)
{
    oversized(false);
}
END_TEST

START_TEST(test_pipeline_kafka_oversized_client)
{
    oversized(true);
}
END_TEST

static tkc_err_t low_safepoint(void *opaque, uint64_t *out)
{
    (void)opaque;
    *out = 1000;
    return TKC_ERR_OK;
}

static tkc_err_t high_safepoint(void *opaque, uint64_t *out)
{
    *out = *(const uint64_t *)opaque;
    return TKC_ERR_OK;
}

/* A checkpoint below the GC safepoint refuses to start, with a clear message. */
START_TEST(test_pipeline_kafka_gc_safepoint)
{
    char *prefix = tkc_ptest_prefix("gc");
    uint64_t t0 = base_ts();
    tkc_feedgen_t *g = tkc_feedgen_new(3, 1, 10, t0, 4);
    tkc_pipeline_span_t spans[3];
    tkc_feedgen_spans(g, spans);
    tkc_avro_codec_t *codec = tkc_ptest_codec();
    tkc_pipeline_config_t cfg;
    tkc_ptest_config(&cfg, bootstrap, prefix, "feed-gc", spans, 3, codec);
    cfg.start_ts = t0;
    tkc_msgq_t *q = tkc_msgq_new(1 << 20);
    char e[1024] = "";

    cfg.gc_safepoint = low_safepoint;
    tkc_pipeline_t *pl = tkc_pipeline_new(&cfg, q, e, sizeof(e));
    ck_assert_int_eq(tkc_pipeline_open(pl, e, sizeof(e)), TKC_ERR_OK);
    tkc_pipeline_destroy(pl);

    uint64_t sp = t0 + 1;
    cfg.gc_safepoint = high_safepoint;
    cfg.hook_opaque = &sp;
    pl = tkc_pipeline_new(&cfg, q, e, sizeof(e));
    ck_assert_int_eq(tkc_pipeline_open(pl, e, sizeof(e)), TKC_ERR_INCOMPATIBLE);
    ck_assert_msg(strstr(e, "GC safepoint") != NULL, "%s", e);
    tkc_pipeline_destroy(pl);

    tkc_msgq_destroy(q, tkc_feed_event_free);
    tkc_avro_codec_destroy(codec);
    tkc_feedgen_destroy(g);
    free(prefix);
}
END_TEST

/* The clock behind start-ts = now: one second later at every call. */
static tkc_err_t moving_now(void *opaque, uint64_t *out)
{
    uint64_t *now = opaque;
    *out = *now;
    *now += (uint64_t)1000 << 18;
    return TKC_ERR_OK;
}

/*
 * start-ts = now and no checkpoint: the open stores the resolved start ts as
 * the first checkpoint before anything is read. An instance that dies before
 * its first regular checkpoint (here: opened, never started, like a kill -9
 * right after the start) is followed by one that resumes from the same ts,
 * not from a later "now" (which would skip the changes in between).
 */
static void start_ts_stored(tkc_checkpoint_store_t store)
{
    bool file = store == TKC_CHECKPOINT_STORE_FILE;
    char *prefix = tkc_ptest_prefix(file ? "start-file" : "start");
    const char *feed = "feed-start";
    char dir[] = "/tmp/tkc-pl-start-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/checkpoint", dir);
    uint64_t t0 = base_ts(), clock = t0;
    tkc_feedgen_t *g = tkc_feedgen_new(3, 2, 100, t0, 9);
    tkc_pipeline_span_t spans[3];
    tkc_feedgen_spans(g, spans);
    tkc_avro_codec_t *codec = tkc_ptest_codec();
    tkc_pipeline_config_t cfg;
    tkc_ptest_config(&cfg, bootstrap, prefix, feed, spans, 3, codec);
    cfg.start_ts = 0; /* now */
    cfg.now_tso = moving_now;
    cfg.hook_opaque = &clock;
    cfg.checkpoint_store = store;
    cfg.checkpoint_path = file ? path : NULL;
    tkc_msgq_t *q = tkc_msgq_new(4 << 20);
    char e[512] = "";

    tkc_pipeline_t *pl = tkc_pipeline_new(&cfg, q, e, sizeof(e));
    ck_assert_msg(pl != NULL, "%s", e);
    ck_assert_msg(tkc_pipeline_open(pl, e, sizeof(e)) == TKC_ERR_OK, "open: %s", e);
    ck_assert_uint_eq(tkc_pipeline_start_ts(pl), t0);
    tkc_pipeline_metrics_t m;
    tkc_pipeline_metrics(pl, &m);
    ck_assert_uint_eq(m.checkpoint_ts, t0);
    ck_assert_uint_eq(m.checkpoints, 1);
    tkc_pipeline_metrics_free(&m);
    tkc_pipeline_destroy(pl);
    if (file) {
        tkc_checkpoint_t cp;
        ck_assert_int_eq(tkc_checkpoint_file_read(path, feed, &cp, e, sizeof(e)), TKC_ERR_OK);
        ck_assert_uint_eq(cp.ts, t0);
        ck_assert_uint_eq(cp.epoch, 1);
    }

    /* the restart: "now" has moved on, the feed has not */
    ck_assert_uint_gt(clock, t0);
    pl = start(&cfg, q);
    ck_assert_uint_eq(tkc_pipeline_start_ts(pl), t0);
    tkc_pipeline_metrics(pl, &m);
    ck_assert_uint_eq(m.epoch, 2);
    tkc_pipeline_metrics_free(&m);
    uint64_t last = drive(g, q, 20, 7);
    ck_assert(tkc_ptest_wait_checkpoint(pl, last, 60000));
    stop_ok(pl);
    tkc_pipeline_destroy(pl);

    tkc_verify_report_t rep;
    verify(prefix, feed, g, last, !file, &rep);
    size_t n;
    tkc_feedgen_truth(g, &n);
    ck_assert_uint_eq(rep.distinct, n);
    if (!file)
        ck_assert_uint_ge(rep.checkpoints, 2); /* the start ts, then the final one */

    unlink(path);
    rmdir(dir);
    tkc_msgq_destroy(q, tkc_feed_event_free);
    tkc_avro_codec_destroy(codec);
    tkc_feedgen_destroy(g);
    free(prefix);
}

START_TEST(test_pipeline_kafka_start_ts_stored)
{
    start_ts_stored(TKC_CHECKPOINT_STORE_KAFKA);
}
END_TEST

START_TEST(test_pipeline_kafka_start_ts_stored_file)
{
    start_ts_stored(TKC_CHECKPOINT_STORE_FILE);
}
END_TEST

/* A start ts that cannot be stored fails the open: never run without it. */
START_TEST(test_pipeline_kafka_start_ts_store_fails)
{
    char *prefix = tkc_ptest_prefix("start-fail");
    uint64_t t0 = base_ts();
    tkc_feedgen_t *g = tkc_feedgen_new(3, 1, 10, t0, 4);
    tkc_pipeline_span_t spans[3];
    tkc_feedgen_spans(g, spans);
    tkc_avro_codec_t *codec = tkc_ptest_codec();
    tkc_pipeline_config_t cfg;
    tkc_ptest_config(&cfg, bootstrap, prefix, "feed-start-fail", spans, 3, codec);
    cfg.start_ts = t0;
    cfg.checkpoint_store = TKC_CHECKPOINT_STORE_FILE;
    cfg.checkpoint_path = "/nonexistent-tkc-dir/checkpoint";
    tkc_msgq_t *q = tkc_msgq_new(1 << 20);
    char e[1024] = "";
    tkc_pipeline_t *pl = tkc_pipeline_new(&cfg, q, e, sizeof(e));
    ck_assert_msg(pl != NULL, "%s", e);
    ck_assert_int_eq(tkc_pipeline_open(pl, e, sizeof(e)), TKC_ERR_IO);
    ck_assert_msg(strstr(e, "first checkpoint") != NULL, "%s", e);
    tkc_pipeline_destroy(pl);
    tkc_msgq_destroy(q, tkc_feed_event_free);
    tkc_avro_codec_destroy(codec);
    tkc_feedgen_destroy(g);
    free(prefix);
}
END_TEST

static Suite *pipeline_kafka_suite(void)
{
    Suite *s = suite_create("pipeline_kafka");
    TCase *tc = tcase_create("at_least_once");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pipeline_kafka_basic);
    tcase_add_test(tc, test_pipeline_kafka_file_store_resume);
    tcase_add_test(tc, test_pipeline_kafka_oversized_broker);
    tcase_add_test(tc, test_pipeline_kafka_oversized_client);
    tcase_add_test(tc, test_pipeline_kafka_gc_safepoint);
    tcase_add_test(tc, test_pipeline_kafka_start_ts_stored);
    tcase_add_test(tc, test_pipeline_kafka_start_ts_stored_file);
    tcase_add_test(tc, test_pipeline_kafka_start_ts_store_fails);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(pipeline_kafka_suite)
