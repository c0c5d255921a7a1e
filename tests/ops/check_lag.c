/*
 * check_lag.c: `tikv-kafka-cdc lag` against the real Kafka broker fixture.
 *
 * The test writes Avro watermarks (encoded by the connector's codec) into a
 * fresh <prefix>.watermark topic with two partitions, for two feeds, plus
 * one message that is not a watermark, then runs the binary:
 *   - one shot, --json: the highest resolved ts per feed, lag and age;
 *   - --feed: only that feed; the table form; a missing topic (exit 1);
 *   - --watch: a watermark produced while it runs shows up in the output;
 *   - --serve: the numbers as Prometheus gauges; SIGTERM exits 0.
 * Lags are only checked against generous bounds (the machine is shared):
 * the exact values checked are the TSOs.
 */
#include <check.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "avro_codec.h"
#include "kafka/kafka_test.h"
#include "ops/ops_proc.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/mem.h"

#ifndef TKC_CLI_PATH
#error "TKC_CLI_PATH must name the tikv-kafka-cdc binary"
#endif

static char *bootstrap;
static char *prefix;
static char topic[512];
static int64_t now0;
static uint64_t alpha_max, beta_max;

static void produce(rd_kafka_t *rk, int32_t partition, const void *buf, size_t len)
{
    rd_kafka_resp_err_t e =
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_VALUE((void *)buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_END);
    ck_assert_msg(e == 0, "produce: %s", rd_kafka_err2str(e));
}

static rd_kafka_t *producer(void)
{
    char err[512];
    rd_kafka_conf_t *kc = tkc_kafka_test_conf(bootstrap, err, sizeof(err));
    ck_assert_msg(kc != NULL, "%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    ck_assert_msg(rk != NULL, "%s", err);
    return rk;
}

static void produce_watermark(rd_kafka_t *rk, tkc_avro_codec_t *c, const char *feed,
                              uint64_t resolved_ts, int64_t emitted_at, int32_t partition)
{
    uint8_t *buf;
    size_t len;
    char err[512];
    ck_assert_int_eq(tkc_avro_codec_encode_watermark(c, topic, feed, resolved_ts, emitted_at,
                                                     &buf, &len, err, sizeof(err)),
                     TKC_ERR_OK);
    produce(rk, partition, buf, len);
    tkc_free(buf);
}

static void setup(void)
{
    char err[512];
    bootstrap = tkc_kafka_test_bootstrap(err, sizeof(err));
    ck_assert_msg(bootstrap != NULL, "no broker: %s", err);
    prefix = tkc_kafka_test_topic_name("lag");
    snprintf(topic, sizeof(topic), "%s.watermark", prefix);
    ck_assert_msg(tkc_kafka_test_create_topic(bootstrap, topic, 2, NULL, 0, err, sizeof(err)) == 0,
                  "%s", err);

    tkc_avro_codec_t *c = tkc_avro_codec_new(TKC_SCHEMA_DIR, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    rd_kafka_t *rk = producer();
    now0 = tkc_clock_wall_ms();
    /* alpha: three watermarks on both partitions, the newest 5 s behind */
    for (int i = 0; i < 3; i++) {
        uint64_t ts = tkc_tso_compose(now0 - 9000 + i * 2000, i);
        for (int32_t p = 0; p < 2; p++)
            produce_watermark(rk, c, "alpha", ts, now0 - 3000 + i * 1000, p);
        alpha_max = ts;
    }
    /* beta: one, on partition 1 only, a minute behind */
    beta_max = tkc_tso_compose(now0 - 60000, 7);
    produce_watermark(rk, c, "beta", beta_max, now0 - 30000, 1);
    /* not a watermark */
    produce(rk, 0, "not avro", 8);
    ck_assert_int_eq(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
    tkc_avro_codec_destroy(c);
}

static void teardown(void)
{
    free(bootstrap);
    free(prefix);
}

static const char **lag_argv(const char **argv, const char *extra[])
{
    static const char *base[] = {TKC_CLI_PATH, "lag", "--bootstrap-servers", NULL,
                                 "--topic-prefix", NULL, "--schema-dir", TKC_SCHEMA_DIR};
    size_t n = 0;
    for (; n < sizeof(base) / sizeof(base[0]); n++)
        argv[n] = base[n];
    argv[3] = bootstrap;
    argv[5] = prefix;
    for (size_t i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return argv;
}

static json_t *find_feed(const char *out, const char *feed)
{
    const char *p = out;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_t *o = json_loadb(p, len, 0, NULL);
        if (o && strcmp(json_string_value(json_object_get(o, "feed")), feed) == 0)
            return o;
        json_decref(o);
        p += len + (nl ? 1 : 0);
    }
    return NULL;
}

START_TEST(test_lag_one_shot)
{
    const char *argv[24];
    ops_result_t r;
    ck_assert_int_eq(ops_run(lag_argv(argv, (const char *[]){"--json", NULL}), NULL, 60000, &r), 0);
    json_t *a = find_feed(r.out, "alpha"), *b = find_feed(r.out, "beta");
    ck_assert_msg(a && b, "output:\n%s\nstderr:\n%s", r.out, r.err);
    ck_assert_uint_eq((uint64_t)json_integer_value(json_object_get(a, "resolved_ts")), alpha_max);
    ck_assert_uint_eq((uint64_t)json_integer_value(json_object_get(b, "resolved_ts")), beta_max);
    double lag_a = json_real_value(json_object_get(a, "lag_seconds"));
    double age_a = json_real_value(json_object_get(a, "watermark_age_seconds"));
    double lag_b = json_real_value(json_object_get(b, "lag_seconds"));
    ck_assert_msg(lag_a >= 5.0 && lag_a < 120, "alpha lag %f", lag_a);
    ck_assert_msg(age_a >= 1.0 && age_a < 120, "alpha age %f", age_a);
    ck_assert_msg(lag_b >= 60.0 && lag_b < 180, "beta lag %f", lag_b);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "watermarks")), 6);
    json_decref(a);
    json_decref(b);
    /* the message that is not a watermark is reported, not fatal */
    ck_assert_ptr_nonnull(strstr(r.err, "event=decode_failed"));
    ops_result_free(&r);

    /* --feed */
    ck_assert_int_eq(
        ops_run(lag_argv(argv, (const char *[]){"--json", "--feed", "beta", NULL}), NULL, 60000, &r),
        0);
    ck_assert_ptr_null(strstr(r.out, "alpha"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"beta\""));
    ops_result_free(&r);
    ck_assert_int_eq(
        ops_run(lag_argv(argv, (const char *[]){"--feed", "gamma", NULL}), NULL, 60000, &r), 1);
    ck_assert_ptr_nonnull(strstr(r.err, "no watermark of feed gamma"));
    ops_result_free(&r);

    /* the table */
    ck_assert_int_eq(ops_run(lag_argv(argv, NULL), NULL, 60000, &r), 0);
    ck_assert_ptr_nonnull(strstr(r.out, "FEED"));
    ck_assert_ptr_nonnull(strstr(r.out, "WATERMARK_AGE"));
    char ts[32];
    snprintf(ts, sizeof(ts), "%" PRIu64, alpha_max);
    ck_assert_msg(strstr(r.out, ts), "%s", r.out);
    ops_result_free(&r);

    /* a topic that does not exist */
    const char *miss[] = {TKC_CLI_PATH, "lag", "-b", bootstrap, "--topic-prefix",
                          "tkc-no-such-prefix", "--schema-dir", TKC_SCHEMA_DIR, NULL};
    ck_assert_int_eq(ops_run(miss, NULL, 60000, &r), 1);
    ck_assert_ptr_nonnull(strstr(r.err, "does not exist"));
    ops_result_free(&r);
}
END_TEST

START_TEST(test_lag_watch_sees_new_watermarks)
{
    const char *argv[24];
    int fd;
    pid_t pid = ops_spawn(lag_argv(argv, (const char *[]){"--watch", "--interval", "200ms", "--json",
                                                          "--feed", "alpha", NULL}),
                          NULL, &fd);
    ck_assert_int_gt(pid, 0);
    char line[1024];
    char want_old[32], want_new[32];
    snprintf(want_old, sizeof(want_old), "%" PRIu64, alpha_max);
    ck_assert_int_eq(ops_read_line(fd, line, sizeof(line), 30000), 0);
    ck_assert_msg(strstr(line, want_old), "first line: %s", line);

    /* a new watermark while it watches */
    char err[512];
    tkc_avro_codec_t *c = tkc_avro_codec_new(TKC_SCHEMA_DIR, NULL, err, sizeof(err));
    rd_kafka_t *rk = producer();
    uint64_t newer = tkc_tso_compose(tkc_clock_wall_ms() - 1000, 1);
    produce_watermark(rk, c, "alpha", newer, tkc_clock_wall_ms(), 0);
    ck_assert_int_eq(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
    tkc_avro_codec_destroy(c);
    snprintf(want_new, sizeof(want_new), "%" PRIu64, newer);
    bool seen = false;
    for (int i = 0; i < 200 && !seen; i++) {
        if (ops_read_line(fd, line, sizeof(line), 30000) != 0)
            break;
        seen = strstr(line, want_new) != NULL;
    }
    ck_assert_msg(seen, "the new watermark never showed up");
    kill(pid, SIGTERM);
    ck_assert_int_eq(ops_wait(pid, 30000), 0);
    close(fd);
}
END_TEST

START_TEST(test_lag_serve_metrics)
{
    const char *argv[24];
    int fd;
    pid_t pid = ops_spawn(lag_argv(argv, (const char *[]){"--serve", "127.0.0.1:0", NULL}), NULL, &fd);
    ck_assert_int_gt(pid, 0);
    char line[1024];
    ck_assert_int_eq(ops_read_line(fd, line, sizeof(line), 30000), 0);
    int port = 0;
    const char *p = strstr(line, "http://127.0.0.1:");
    ck_assert_msg(p && sscanf(p, "http://127.0.0.1:%d/metrics", &port) == 1, "line: %s", line);
    char want[256];
    snprintf(want, sizeof(want), "tikv_kafka_cdc_watermark_resolved_ts{feed=\"alpha\"} %" PRIu64 "\n",
             alpha_max);
    char *body = NULL;
    bool ok = false;
    for (int i = 0; i < 100 && !ok; i++) { /* until it has caught up */
        free(body);
        ck_assert_int_eq(ops_http("GET", port, "/metrics", &body, NULL), 200);
        ok = strstr(body, want) != NULL;
        if (!ok)
            usleep(200 * 1000);
    }
    ck_assert_msg(ok, "missing %s in\n%s", want, body);
    ck_assert_ptr_nonnull(strstr(body, "tikv_kafka_cdc_watermark_lag_seconds{feed=\"beta\"} "));
    ck_assert_ptr_nonnull(strstr(body, "tikv_kafka_cdc_watermark_age_seconds{feed=\"alpha\"} "));
    ck_assert_ptr_nonnull(strstr(body, "tikv_kafka_cdc_watermark_decode_errors_total 1\n"));
    /* the lag gauge is in seconds and at least 5 s for alpha */
    const char *lg = strstr(body, "tikv_kafka_cdc_watermark_lag_seconds{feed=\"alpha\"} ");
    ck_assert_ptr_nonnull(lg);
    double lag = strtod(lg + strlen("tikv_kafka_cdc_watermark_lag_seconds{feed=\"alpha\"} "), NULL);
    ck_assert_msg(lag >= 5.0 && lag < 120, "lag %f", lag);
    free(body);
    kill(pid, SIGTERM);
    ck_assert_int_eq(ops_wait(pid, 30000), 0);
    close(fd);
}
END_TEST

static Suite *lag_suite(void)
{
    Suite *s = suite_create("lag");
    TCase *tc = tcase_create("lag");
    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_lag_one_shot);
    tcase_add_test(tc, test_lag_watch_sees_new_watermarks);
    tcase_add_test(tc, test_lag_serve_metrics);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(lag_suite)
