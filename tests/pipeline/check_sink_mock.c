/*
 * check_sink_mock.c: the Kafka sink's error handling on librdkafka's mock
 * cluster (fault injection; c-deps-notes §3):
 *   - retriable Produce errors are retried: everything is reported
 *     delivered, in produce order per partition, nothing fails;
 *   - MSG_SIZE_TOO_LARGE is reported as a failure, and the messages after
 *     it in its partition are never reported delivered (they would let a
 *     watermark pass it); other partitions go on;
 *   - a local message timeout re-produces the message and everything after
 *     it in its partition, so the last copies land in produce order;
 *   - a fatal idempotence error is sticky: produce fails from then on;
 *   - the in-flight budget counts each message's bookkeeping, not only its
 *     key and value.
 */
#include <check.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka/kafka_test.h"
#include "kafka_sink.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define API_PRODUCE 0

typedef struct {
    uintptr_t id;
    int32_t partition;
    int64_t offset;
    rd_kafka_resp_err_t err;
} rep_t;

static rep_t reps[4096];
static size_t n_reps;

static void on_dr(void *opaque, void *msg_opaque, const tkc_kafka_sink_report_t *r)
{
    (void)opaque;
    ck_assert_uint_lt(n_reps, 4096);
    reps[n_reps++] = (rep_t){(uintptr_t)msg_opaque, r->partition, r->offset, r->err};
}

static tkc_kafka_sink_t *new_sink_inflight(const tkc_kafka_prop_t *props, size_t n_props,
                                           size_t max_inflight)
{
    n_reps = 0;
    tkc_log_set_level(TKC_LOG_ERROR);
    tkc_kafka_sink_config_t cfg = {
        .mock_brokers = 1,
        .props = props,
        .n_props = n_props,
        .max_inflight_bytes = max_inflight,
        .dr_cb = on_dr,
        .timeout_ms = 10000,
    };
    char e[512] = "";
    tkc_kafka_sink_t *sk = tkc_kafka_sink_new(&cfg, e, sizeof(e));
    ck_assert_msg(sk != NULL, "%s", e);
    ck_assert_msg(tkc_kafka_sink_ensure_topic(sk, "t", 2, 1, false, e, sizeof(e)) == TKC_ERR_OK,
                  "%s", e);
    ck_assert_int_eq(tkc_kafka_sink_partitions(sk, "t"), 2);
    return sk;
}

static tkc_kafka_sink_t *new_sink(const tkc_kafka_prop_t *props, size_t n_props)
{
    return new_sink_inflight(props, n_props, 0);
}

/* Produces message @p id with key "k<id % nkeys>" and value "v<id>". */
static tkc_err_t produce(tkc_kafka_sink_t *sk, int32_t part, uintptr_t id, unsigned nkeys)
{
    char key[16], val[32];
    int kl = snprintf(key, sizeof(key), "k%u", (unsigned)(id % nkeys));
    int vl = snprintf(val, sizeof(val), "v%06u", (unsigned)id);
    uint8_t *v = tkc_memdup(val, (size_t)vl);
    char e[512];
    tkc_err_t err = tkc_kafka_sink_produce(sk, "t", part, key, (size_t)kl, v, (size_t)vl,
                                           (void *)id, e, sizeof(e));
    if (err != TKC_ERR_OK)
        tkc_free(v);
    return err;
}

static void produce_all(tkc_kafka_sink_t *sk, int32_t part, uintptr_t from, uintptr_t to,
                        unsigned nkeys)
{
    for (uintptr_t id = from; id < to; id++) {
        tkc_err_t err;
        while ((err = produce(sk, part, id, nkeys)) == TKC_ERR_QUEUE_FULL)
            tkc_kafka_sink_poll(sk, 10);
        ck_assert_int_eq(err, TKC_ERR_OK);
    }
}

static void poll_until(tkc_kafka_sink_t *sk, size_t reports, int timeout_ms)
{
    int64_t deadline = tkc_clock_mono_ms() + timeout_ms;
    while (n_reps < reports && tkc_clock_mono_ms() < deadline)
        tkc_kafka_sink_poll(sk, 20);
}

/* Reports of successes come in produce order per partition, offsets rising. */
static void check_order(void)
{
    uintptr_t last_id[2] = {0, 0};
    int64_t last_off[2] = {-1, -1};
    for (size_t i = 0; i < n_reps; i++) {
        if (reps[i].err)
            continue;
        int32_t p = reps[i].partition;
        ck_assert(p == 0 || p == 1);
        ck_assert_msg(reps[i].id > last_id[p], "report %zu out of order", i);
        ck_assert_int_gt(reps[i].offset, last_off[p]);
        last_id[p] = reps[i].id;
        last_off[p] = reps[i].offset;
    }
}

static uint64_t error_count(const tkc_kafka_sink_t *sk, rd_kafka_resp_err_t err)
{
    tkc_kafka_sink_stats_t st;
    tkc_kafka_sink_stats(sk, &st);
    for (size_t i = 0; i < st.n_error_kinds; i++)
        if (st.errors[i].err == err)
            return st.errors[i].count;
    return 0;
}

START_TEST(test_sink_mock_retriable_errors)
{
    tkc_kafka_sink_t *sk = new_sink(NULL, 0);
    rd_kafka_mock_cluster_t *mc = tkc_kafka_sink_mock_cluster(sk);
    rd_kafka_mock_push_request_errors(mc, API_PRODUCE, 4,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                      RD_KAFKA_RESP_ERR__TRANSPORT);
    produce_all(sk, -1, 1, 201, 10);
    poll_until(sk, 200, 20000);
    ck_assert_uint_eq(n_reps, 200);
    for (size_t i = 0; i < n_reps; i++)
        ck_assert_msg(reps[i].err == 0, "report %zu: %s", i, rd_kafka_err2name(reps[i].err));
    check_order();
    tkc_kafka_sink_stats_t st;
    tkc_kafka_sink_stats(sk, &st);
    ck_assert_uint_eq(st.delivered, 200);
    ck_assert_uint_eq(st.inflight_msgs, 0);
    ck_assert_uint_eq(st.inflight_bytes, 0);
    ck_assert_uint_eq(st.failed, 0);

    /* and what is in the topic: each key's values in produce order */
    tkc_kafka_test_msgs_t msgs;
    char e[512];
    ck_assert_msg(tkc_kafka_test_consume_all(tkc_kafka_sink_bootstrap(sk), "t",
                                             TKC_KAFKA_TEST_READ_UNCOMMITTED, 10000, &msgs, e,
                                             sizeof(e)) == 0,
                  "%s", e);
    ck_assert_uint_eq(msgs.count, 200);
    unsigned last[10] = {0};
    for (size_t i = 0; i < msgs.count; i++) {
        unsigned k, v;
        ck_assert_int_eq(sscanf(msgs.msgs[i].key, "k%u", &k), 1);
        ck_assert_int_eq(sscanf(msgs.msgs[i].value, "v%u", &v), 1);
        ck_assert_uint_gt(v, last[k]);
        last[k] = v;
        /* murmur2 keeps a key in one partition */
        ck_assert_int_eq(msgs.msgs[i].partition,
                         tkc_kafka_sink_partition_for_key(sk, "t", msgs.msgs[i].key,
                                                          msgs.msgs[i].key_len));
    }
    tkc_kafka_test_msgs_free(&msgs);
    tkc_kafka_sink_destroy(sk);
}
END_TEST

START_TEST(test_sink_mock_too_large_holds_partition)
{
    tkc_kafka_sink_t *sk = new_sink(NULL, 0);
    rd_kafka_mock_cluster_t *mc = tkc_kafka_sink_mock_cluster(sk);
    rd_kafka_mock_push_request_errors(mc, API_PRODUCE, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    produce_all(sk, 0, 1, 2, 1); /* the rejected one */
    poll_until(sk, 1, 10000);
    ck_assert_uint_eq(n_reps, 1);
    ck_assert_uint_eq(reps[0].id, 1);
    ck_assert_int_eq(reps[0].err, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);

    produce_all(sk, 0, 2, 12, 1);  /* same partition: held behind it */
    produce_all(sk, 1, 12, 22, 1); /* other partition: goes on */
    poll_until(sk, 11, 10000);
    usleep(500 * 1000);
    tkc_kafka_sink_poll(sk, 100);
    ck_assert_uint_eq(n_reps, 11);
    for (size_t i = 1; i < n_reps; i++) {
        ck_assert_int_eq(reps[i].partition, 1);
        ck_assert_int_eq(reps[i].err, 0);
    }
    ck_assert_uint_eq(tkc_kafka_sink_inflight(sk), 11); /* 1 failed + 10 held */
    ck_assert_uint_eq(error_count(sk, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE), 1);
    tkc_kafka_sink_stats_t st;
    tkc_kafka_sink_stats(sk, &st);
    ck_assert_uint_eq(st.failed, 1);
    tkc_kafka_sink_destroy(sk); /* frees the held messages */
}
END_TEST

START_TEST(test_sink_mock_client_rejects_too_large)
{
    tkc_kafka_prop_t props[] = {{"message.max.bytes", "2000"}};
    tkc_kafka_sink_t *sk = new_sink(props, 1);
    uint8_t *v = tkc_calloc(1, 5000);
    char e[512] = "";
    ck_assert_int_eq(tkc_kafka_sink_produce(sk, "t", 0, "k", 1, v, 5000, NULL, e, sizeof(e)),
                     TKC_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(e, "MSG_SIZE_TOO_LARGE"));
    ck_assert_uint_eq(error_count(sk, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE), 1);
    ck_assert_uint_eq(tkc_kafka_sink_inflight(sk), 0);
    tkc_free(v); /* not taken */
    ck_assert_int_eq(tkc_kafka_sink_produce(sk, "nope", 0, "k", 1, NULL, 0, NULL, e, sizeof(e)),
                     TKC_ERR_INVALID_ARG);
    tkc_kafka_sink_destroy(sk);
}
END_TEST

START_TEST(test_sink_mock_timeout_reproduces_in_order)
{
    tkc_kafka_prop_t props[] = {{"message.timeout.ms", "1500"}};
    tkc_kafka_sink_t *sk = new_sink(props, 1);
    rd_kafka_mock_cluster_t *mc = tkc_kafka_sink_mock_cluster(sk);
    produce_all(sk, 0, 1, 11, 5); /* delivered normally */
    poll_until(sk, 10, 10000);
    ck_assert_uint_eq(n_reps, 10);

    ck_assert_int_eq(rd_kafka_mock_broker_set_down(mc, 1), 0);
    produce_all(sk, 0, 11, 41, 5); /* these time out while the broker is down */
    int64_t up_at = tkc_clock_mono_ms() + 3500;
    while (tkc_clock_mono_ms() < up_at)
        tkc_kafka_sink_poll(sk, 50);
    ck_assert_uint_eq(n_reps, 10); /* nothing reported while down */
    ck_assert_int_eq(rd_kafka_mock_broker_set_up(mc, 1), 0);
    poll_until(sk, 40, 30000);
    ck_assert_uint_eq(n_reps, 40);
    for (size_t i = 0; i < n_reps; i++) {
        ck_assert_int_eq(reps[i].err, 0);
        ck_assert_uint_eq(reps[i].id, i + 1); /* each once, in order */
    }
    check_order();
    tkc_kafka_sink_stats_t st;
    tkc_kafka_sink_stats(sk, &st);
    ck_assert_uint_gt(st.reproduced, 0);
    ck_assert_uint_gt(error_count(sk, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT), 0);

    /* the log may hold extra copies, but every message is there and the
     * last copies of each key are in produce order */
    tkc_kafka_test_msgs_t msgs;
    char e[512];
    ck_assert_msg(tkc_kafka_test_consume_all(tkc_kafka_sink_bootstrap(sk), "t",
                                             TKC_KAFKA_TEST_READ_UNCOMMITTED, 10000, &msgs, e,
                                             sizeof(e)) == 0,
                  "%s", e);
    int seen[41] = {0};
    for (size_t i = 0; i < msgs.count; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(msgs.msgs[i].value, "v%u", &v), 1);
        ck_assert_uint_le(v, 40);
        seen[v] = 1;
    }
    for (int v = 1; v <= 40; v++)
        ck_assert_msg(seen[v], "message %d lost", v);
    /* walking backwards, the first copy of a value met is its last copy in
     * the log; per key those must fall in produce order too */
    unsigned last[5] = {0};
    int back[41] = {0};
    for (size_t i = msgs.count; i-- > 0;) {
        unsigned k, v;
        ck_assert_int_eq(sscanf(msgs.msgs[i].key, "k%u", &k), 1);
        ck_assert_int_eq(sscanf(msgs.msgs[i].value, "v%u", &v), 1);
        if (back[v]++)
            continue; /* an earlier copy */
        ck_assert_msg(last[k] == 0 || v < last[k], "key k%u: v%u lands after v%u", k, v,
                      last[k]);
        last[k] = v;
    }
    tkc_kafka_test_msgs_free(&msgs);
    tkc_kafka_sink_destroy(sk);
}
END_TEST

START_TEST(test_sink_mock_fatal_is_sticky)
{
    tkc_kafka_sink_t *sk = new_sink(NULL, 0);
    rd_kafka_mock_cluster_t *mc = tkc_kafka_sink_mock_cluster(sk);
    produce_all(sk, 0, 1, 3, 1);
    poll_until(sk, 2, 10000);
    ck_assert_uint_eq(n_reps, 2);
    rd_kafka_mock_push_request_errors(mc, API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    produce_all(sk, 0, 3, 4, 1);
    int64_t deadline = tkc_clock_mono_ms() + 10000;
    char e[512] = "";
    while (tkc_kafka_sink_fatal(sk, e, sizeof(e)) == TKC_ERR_OK && tkc_clock_mono_ms() < deadline)
        tkc_kafka_sink_poll(sk, 20);
    ck_assert_int_eq(tkc_kafka_sink_fatal(sk, e, sizeof(e)), TKC_ERR_KAFKA_FATAL);
    ck_assert_msg(strstr(e, "OUT_OF_ORDER_SEQUENCE_NUMBER") != NULL, "%s", e);
    ck_assert_int_eq(produce(sk, 1, 4, 1), TKC_ERR_KAFKA_FATAL);
    /* the message caught in it is never reported delivered */
    for (size_t i = 0; i < n_reps; i++)
        ck_assert(!(reps[i].id == 3 && reps[i].err == 0));
    tkc_kafka_sink_destroy(sk);
}
END_TEST

/*
 * The in-flight budget bounds memory, not payload: a message also costs its
 * bookkeeping (ours and librdkafka's, a few hundred bytes), which for small
 * rows is more than the row. With 9-byte messages and a 64 KiB budget,
 * payload-only accounting would let ~7000 messages in; the charged budget
 * stops far earlier, and everything is released on delivery.
 */
START_TEST(test_sink_mock_inflight_budget_counts_overhead)
{
    const size_t budget = 64 * 1024;
    tkc_kafka_sink_t *sk = new_sink_inflight(NULL, 0, budget);
    uintptr_t n = 0;
    while (n < 10000 && produce(sk, 0, n + 1, 4) == TKC_ERR_OK)
        n++; /* no poll: nothing is reported delivered meanwhile */
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_le(n, budget / (9 + 256)); /* overhead counted: >= 256 B a message */
    tkc_kafka_sink_stats_t st;
    tkc_kafka_sink_stats(sk, &st);
    ck_assert_uint_le(st.inflight_bytes, budget);
    ck_assert_uint_eq(st.inflight_msgs, n);
    poll_until(sk, n, 20000);
    ck_assert_uint_eq(n_reps, n);
    tkc_kafka_sink_stats(sk, &st);
    ck_assert_uint_eq(st.inflight_bytes, 0);
    ck_assert_uint_eq(tkc_kafka_sink_inflight(sk), 0);
    tkc_kafka_sink_destroy(sk);
}
END_TEST

static Suite *sink_mock_suite(void)
{
    Suite *s = suite_create("sink_mock");
    TCase *tc = tcase_create("errors");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sink_mock_retriable_errors);
    tcase_add_test(tc, test_sink_mock_too_large_holds_partition);
    tcase_add_test(tc, test_sink_mock_client_rejects_too_large);
    tcase_add_test(tc, test_sink_mock_timeout_reproduces_in_order);
    tcase_add_test(tc, test_sink_mock_fatal_is_sticky);
    tcase_add_test(tc, test_sink_mock_inflight_budget_counts_overhead);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(sink_mock_suite)
