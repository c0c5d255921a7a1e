/*
 * check_pipeline_eos.c: exactly-once delivery against the real broker.
 *
 *   basic  rows, watermarks and checkpoints go out in transactions; a
 *          read_committed consumer sees every change once; restart resumes
 *          from the committed checkpoint (read with read_committed).
 *   fence  instance A is running with an open transaction when instance B
 *          of the same feed starts: B's init_transactions fences A and
 *          aborts A's open transaction; A stops with a clear "fenced"
 *          error; B resumes from A's last committed checkpoint and gets the
 *          rest replayed (as TiKV would). read_committed consumers still see
 *          every change exactly once, although A had produced some of the
 *          replayed changes in its aborted transaction.
 *   start  without a checkpoint, the start ts is committed as the first
 *          checkpoint at open; the next instance resumes from it.
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

static tkc_pipeline_t *start(const tkc_pipeline_config_t *cfg, tkc_msgq_t *q)
{
    char e[512] = "";
    tkc_pipeline_t *pl = tkc_pipeline_new(cfg, q, e, sizeof(e));
    ck_assert_msg(pl != NULL, "%s", e);
    ck_assert_msg(tkc_pipeline_open(pl, e, sizeof(e)) == TKC_ERR_OK, "open: %s", e);
    ck_assert_int_eq(tkc_pipeline_start(pl, e, sizeof(e)), TKC_ERR_OK);
    return pl;
}

static void config(tkc_pipeline_config_t *cfg, const char *prefix, const char *feed,
                   tkc_pipeline_span_t *spans, tkc_avro_codec_t *codec, uint64_t t0)
{
    tkc_ptest_config(cfg, bootstrap, prefix, feed, spans, 3, codec);
    cfg->start_ts = t0;
    cfg->delivery = TKC_DELIVERY_EXACTLY_ONCE;
    cfg->watermark_interval_ms = 100;
}

static void verify_once(const char *prefix, const char *feed, tkc_feedgen_t *g, uint64_t final,
                        tkc_verify_report_t *rep)
{
    size_t n;
    const tkc_feedgen_row_t *truth = tkc_feedgen_truth(g, &n);
    tkc_verify_opts_t o = {
        .bootstrap = bootstrap,
        .prefix = prefix,
        .feed_id = feed,
        .n_spans = 3,
        .partitions = 3,
        .isolation = TKC_KAFKA_TEST_READ_COMMITTED,
        .watermarks_in_partitions = true,
        .expect_final = final,
        .exactly_once = true,
        .expect_checkpoint_topic = true,
    };
    char e[1024] = "";
    ck_assert_msg(tkc_verify_feed(&o, truth, n, rep, e, sizeof(e)) == 0, "verify: %s", e);
    ck_assert_uint_eq(rep->distinct, n);
}

START_TEST(test_pipeline_eos_basic)
{
    char *prefix = tkc_ptest_prefix("eos");
    const char *feed = "feed-eos";
    uint64_t t0 = tkc_tso_compose(tkc_clock_wall_ms() - 3600 * 1000, 0);
    tkc_feedgen_t *g = tkc_feedgen_new(3, 2, 100, t0, 11);
    tkc_pipeline_span_t spans[3];
    tkc_feedgen_spans(g, spans);
    tkc_avro_codec_t *codec = tkc_ptest_codec();
    tkc_pipeline_config_t cfg;
    config(&cfg, prefix, feed, spans, codec, t0);
    tkc_msgq_t *q = tkc_msgq_new(4 << 20);
    tkc_pipeline_t *pl = start(&cfg, q);
    unsigned seed = 5;
    for (int i = 0; i < 80; i++) {
        ck_assert_uint_ne(tkc_feedgen_txn(g, q, 1 + (unsigned)rand_r(&seed) % 20, 120), 0);
        if (i % 8 == 7) {
            tkc_feedgen_resolve(g, q, 0);
            usleep(20 * 1000); /* spread over several Kafka transactions */
        }
    }
    uint64_t last = tkc_feedgen_resolve(g, q, 0);
    ck_assert(tkc_ptest_wait_checkpoint(pl, last, 60000));
    tkc_pipeline_metrics_t m;
    tkc_pipeline_metrics(pl, &m);
    ck_assert_int_eq(m.state, TKC_PIPELINE_RUNNING);
    ck_assert_uint_gt(m.txns_committed, 1);
    ck_assert_uint_eq(m.watermark_ts, last);
    tkc_pipeline_metrics_free(&m);
    char e[512] = "";
    tkc_pipeline_stop(pl);
    ck_assert_msg(tkc_pipeline_join(pl, e, sizeof(e)) == TKC_ERR_OK, "%s", e);
    tkc_pipeline_destroy(pl);

    tkc_verify_report_t rep;
    verify_once(prefix, feed, g, last, &rep);

    /* restart: the committed checkpoint, read with read_committed */
    pl = start(&cfg, q);
    ck_assert_uint_eq(tkc_pipeline_start_ts(pl), last);
    tkc_pipeline_stop(pl);
    ck_assert_int_eq(tkc_pipeline_join(pl, e, sizeof(e)), TKC_ERR_OK);
    tkc_pipeline_destroy(pl);

    tkc_msgq_destroy(q, tkc_feed_event_free);
    tkc_avro_codec_destroy(codec);
    tkc_feedgen_destroy(g);
    free(prefix);
}
END_TEST

static bool failed(const tkc_pipeline_metrics_t *m, void *arg)
{
    (void)arg;
    return m->state == TKC_PIPELINE_FAILED || m->state == TKC_PIPELINE_STOPPED;
}

static bool rows_released_beyond(const tkc_pipeline_metrics_t *m, void *arg)
{
    return m->rows_released > *(const uint64_t *)arg;
}

START_TEST(test_pipeline_eos_fence)
{
    char *prefix = tkc_ptest_prefix("fence");
    const char *feed = "feed-fence";
    uint64_t t0 = tkc_tso_compose(tkc_clock_wall_ms() - 3600 * 1000, 0);
    tkc_feedgen_t *g = tkc_feedgen_new(3, 2, 100, t0, 12);
    tkc_pipeline_span_t spans[3];
    tkc_feedgen_spans(g, spans);
    tkc_avro_codec_t *codec_a = tkc_ptest_codec();
    tkc_avro_codec_t *codec_b = tkc_ptest_codec();
    tkc_pipeline_config_t cfg_a, cfg_b;
    config(&cfg_a, prefix, feed, spans, codec_a, t0);
    config(&cfg_b, prefix, feed, spans, codec_b, t0);
    /* A commits rarely: its later rows sit in an open transaction */
    cfg_a.watermark_interval_ms = 60000;
    tkc_msgq_t *qa = tkc_msgq_new(4 << 20);
    tkc_msgq_t *qb = tkc_msgq_new(4 << 20);

    tkc_pipeline_t *a = start(&cfg_a, qa);
    /* the first commit happens at once (the interval starts elapsed) */
    for (int i = 0; i < 10; i++)
        ck_assert_uint_ne(tkc_feedgen_txn(g, qa, 10, 100), 0);
    uint64_t first = tkc_feedgen_resolve(g, qa, 0);
    ck_assert(tkc_ptest_wait_checkpoint(a, first, 30000));
    /* more rows: released into A's next, still open, transaction */
    for (int i = 0; i < 10; i++)
        ck_assert_uint_ne(tkc_feedgen_txn(g, qa, 10, 100), 0);
    tkc_feedgen_resolve(g, qa, 0);
    tkc_pipeline_metrics_t m;
    tkc_pipeline_metrics(a, &m);
    uint64_t released = m.rows_released;
    tkc_pipeline_metrics_free(&m);
    ck_assert(tkc_ptest_wait(a, rows_released_beyond, &released, 30000, NULL));
    usleep(300 * 1000); /* let them reach the broker */

    /* B takes over: fences A, aborts A's open transaction */
    tkc_pipeline_t *b = start(&cfg_b, qb);
    ck_assert_uint_eq(tkc_pipeline_start_ts(b), first);

    /* A notices at its next produce */
    ck_assert_uint_ne(tkc_feedgen_txn(g, qa, 5, 100), 0);
    tkc_feedgen_resolve(g, qa, 0);
    ck_assert_msg(tkc_ptest_wait(a, failed, NULL, 30000, &m), "A was not fenced");
    ck_assert_int_eq(m.state, TKC_PIPELINE_FAILED);
    ck_assert_int_eq(m.err, TKC_ERR_KAFKA_FATAL);
    ck_assert_msg(strstr(m.error, "FENCED") || strstr(m.error, "fenced"), "error: %s", m.error);
    ck_assert_uint_eq(m.checkpoint_ts, first);
    tkc_pipeline_metrics_free(&m);
    char e[512] = "";
    ck_assert_int_eq(tkc_pipeline_join(a, e, sizeof(e)), TKC_ERR_KAFKA_FATAL);
    tkc_pipeline_destroy(a);

    /* TiKV re-sends everything above B's start ts, then the feed goes on */
    ck_assert_uint_ne(tkc_feedgen_replay(g, qb, first), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_ne(tkc_feedgen_txn(g, qb, 10, 100), 0);
    uint64_t last = tkc_feedgen_resolve(g, qb, 0);
    ck_assert(tkc_ptest_wait_checkpoint(b, last, 60000));
    tkc_pipeline_stop(b);
    ck_assert_msg(tkc_pipeline_join(b, e, sizeof(e)) == TKC_ERR_OK, "%s", e);
    tkc_pipeline_destroy(b);

    tkc_verify_report_t rep;
    verify_once(prefix, feed, g, last, &rep);
    ck_assert_uint_eq(rep.last_checkpoint_epoch, 2);

    tkc_msgq_destroy(qa, tkc_feed_event_free);
    tkc_msgq_destroy(qb, tkc_feed_event_free);
    tkc_avro_codec_destroy(codec_a);
    tkc_avro_codec_destroy(codec_b);
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
 * start-ts = now, no checkpoint: the start ts is committed as the first
 * checkpoint in a transaction of its own at open, so the read_committed
 * read of the next instance finds it, even when the first instance never
 * got further than its open (a kill -9 right after the start).
 */
START_TEST(test_pipeline_eos_start_ts_stored)
{
    char *prefix = tkc_ptest_prefix("eos-start");
    const char *feed = "feed-eos-start";
    uint64_t t0 = tkc_tso_compose(tkc_clock_wall_ms() - 3600 * 1000, 0), clock = t0;
    tkc_feedgen_t *g = tkc_feedgen_new(3, 2, 100, t0, 13);
    tkc_pipeline_span_t spans[3];
    tkc_feedgen_spans(g, spans);
    tkc_avro_codec_t *codec = tkc_ptest_codec();
    tkc_pipeline_config_t cfg;
    config(&cfg, prefix, feed, spans, codec, 0);
    cfg.now_tso = moving_now;
    cfg.hook_opaque = &clock;
    tkc_msgq_t *q = tkc_msgq_new(4 << 20);
    char e[512] = "";

    tkc_pipeline_t *pl = tkc_pipeline_new(&cfg, q, e, sizeof(e));
    ck_assert_msg(pl != NULL, "%s", e);
    ck_assert_msg(tkc_pipeline_open(pl, e, sizeof(e)) == TKC_ERR_OK, "open: %s", e);
    ck_assert_uint_eq(tkc_pipeline_start_ts(pl), t0);
    tkc_pipeline_destroy(pl);

    pl = start(&cfg, q);
    ck_assert_uint_eq(tkc_pipeline_start_ts(pl), t0);
    unsigned seed = 3;
    for (int i = 0; i < 20; i++)
        ck_assert_uint_ne(tkc_feedgen_txn(g, q, 1 + (unsigned)rand_r(&seed) % 20, 100), 0);
    uint64_t last = tkc_feedgen_resolve(g, q, 0);
    ck_assert(tkc_ptest_wait_checkpoint(pl, last, 60000));
    tkc_pipeline_stop(pl);
    ck_assert_msg(tkc_pipeline_join(pl, e, sizeof(e)) == TKC_ERR_OK, "%s", e);
    tkc_pipeline_destroy(pl);

    tkc_verify_report_t rep;
    verify_once(prefix, feed, g, last, &rep);
    ck_assert_uint_ge(rep.checkpoints, 2); /* the start ts, then the rows' */
    tkc_msgq_destroy(q, tkc_feed_event_free);
    tkc_avro_codec_destroy(codec);
    tkc_feedgen_destroy(g);
    free(prefix);
}
END_TEST

static Suite *pipeline_eos_suite(void)
{
    Suite *s = suite_create("pipeline_eos");
    TCase *tc = tcase_create("exactly_once");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, test_pipeline_eos_basic);
    tcase_add_test(tc, test_pipeline_eos_fence);
    tcase_add_test(tc, test_pipeline_eos_start_ts_stored);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(pipeline_eos_suite)
