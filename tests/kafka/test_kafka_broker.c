/*
 * test_kafka_broker.c: proves the broker fixture is a real Kafka broker and
 * exercises the tkc_kafka_test helpers:
 *   - an idempotent producer writes 1000 keyed messages to 3 partitions and
 *     a consumer reads them all back, in per-key order;
 *   - transactions: 20 committed and 30 aborted messages; read_committed
 *     sees the 20, read_uncommitted all 50 (librdkafka's mock cluster cannot
 *     do this), and an open transaction does not stall read_committed.
 *
 * Needs the ctest fixture "kafka" (TKC_KAFKA_BOOTSTRAP_FILE).  Every
 * rd_kafka handle is created inside the test functions, which check runs
 * in forked children.
 */
#include "kafka/kafka_test.h"
#include "unit/check_main.h"

#include <check.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TEST_TIMEOUT_MS 60000

typedef struct dr_stats {
    int ok;
    int persisted;
    int failed;
    char first_err[256];
} dr_stats_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    dr_stats_t *st = opaque;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (st->failed++ == 0)
            snprintf(st->first_err, sizeof(st->first_err), "%s",
                     rd_kafka_err2str(m->err));
        return;
    }
    st->ok++;
    if (rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_PERSISTED)
        st->persisted++;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    fprintf(stderr, "producer error: %s: %s\n",
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static char *bootstrap_or_fail(void)
{
    char err[512];
    char *bs = tkc_kafka_test_bootstrap(err, sizeof(err));
    ck_assert_msg(bs != NULL, "%s", err);
    return bs;
}

/* An idempotent producer (transactional when txn_id is not NULL) whose
 * delivery reports are counted in st. */
static rd_kafka_t *new_producer(const char *bootstrap, dr_stats_t *st,
                                const char *txn_id)
{
    char err[512];
    rd_kafka_conf_t *conf = tkc_kafka_test_conf(bootstrap, err, sizeof(err));
    ck_assert_msg(conf != NULL, "%s", err);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "enable.idempotence", "true", err,
                                       sizeof(err)),
                     RD_KAFKA_CONF_OK);
    ck_assert_int_eq(
        rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err)),
        RD_KAFKA_CONF_OK);
    if (txn_id != NULL) {
        ck_assert_int_eq(rd_kafka_conf_set(conf, "transactional.id", txn_id,
                                           err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        ck_assert_int_eq(rd_kafka_conf_set(conf, "transaction.timeout.ms",
                                           "60000", err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, st);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "rd_kafka_new: %s", err);
    return rk;
}

static void produce(rd_kafka_t *rk, const char *topic, const char *key,
                    const char *value)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)value, strlen(value)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        ck_assert_msg(err == RD_KAFKA_RESP_ERR__QUEUE_FULL, "producev: %s",
                      rd_kafka_err2str(err));
        rd_kafka_poll(rk, 10);
    }
    rd_kafka_poll(rk, 0);
}

static void flush_all(rd_kafka_t *rk)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, TEST_TIMEOUT_MS);
    ck_assert_msg(err == RD_KAFKA_RESP_ERR_NO_ERROR, "flush: %s",
                  rd_kafka_err2str(err));
    ck_assert_int_eq(rd_kafka_outq_len(rk), 0);
}

static void txn_ok(rd_kafka_error_t *error, const char *what)
{
    if (error == NULL)
        return;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s: %s", what, rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    ck_abort_msg("%s", msg);
}

static void consume(const char *bs, const char *topic,
                    tkc_kafka_test_isolation_t iso, tkc_kafka_test_msgs_t *out)
{
    char err[512];
    ck_assert_msg(tkc_kafka_test_consume_all(bs, topic, iso, TEST_TIMEOUT_MS,
                                             out, err, sizeof(err)) == 0,
                  "%s", err);
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_helpers)
{
    char *a = tkc_kafka_test_topic_name("tkc-x");
    char *b = tkc_kafka_test_topic_name("tkc-x");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(strncmp(a, "tkc-x-", 6), 0);
    free(a);
    free(b);
    ck_assert_ptr_null(tkc_kafka_test_topic_name("bad topic"));
    ck_assert_ptr_null(tkc_kafka_test_topic_name(""));
    char *def = tkc_kafka_test_topic_name(NULL);
    ck_assert_ptr_nonnull(def);
    free(def);

    char *bs = bootstrap_or_fail();
    ck_assert_int_eq(strncmp(bs, "127.0.0.1:", 10), 0);
    free(bs);

    char err[256];
    unsetenv(TKC_KAFKA_TEST_BOOTSTRAP_ENV);
    ck_assert_ptr_null(tkc_kafka_test_bootstrap(err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, TKC_KAFKA_TEST_BOOTSTRAP_ENV));
}
END_TEST

#define N_MSGS 1000
#define N_KEYS 37

START_TEST(test_idempotent_roundtrip)
{
    char err[512];
    char *bs = bootstrap_or_fail();
    char *topic = tkc_kafka_test_topic_name("tkc-broker-idem");
    ck_assert_ptr_nonnull(topic);
    ck_assert_msg(tkc_kafka_test_create_topic(bs, topic, 3, NULL,
                                              TEST_TIMEOUT_MS, err,
                                              sizeof(err)) == 0,
                  "%s", err);
    /* creating it twice is an error */
    ck_assert_int_eq(tkc_kafka_test_create_topic(bs, topic, 3, NULL,
                                                 TEST_TIMEOUT_MS, err,
                                                 sizeof(err)),
                     -1);

    dr_stats_t st = {0};
    rd_kafka_t *rk = new_producer(bs, &st, NULL);
    char key[32], value[64];
    for (int i = 0; i < N_MSGS; i++) {
        snprintf(key, sizeof(key), "key-%02d", i % N_KEYS);
        snprintf(value, sizeof(value), "value-%04d-of-%s", i, key);
        produce(rk, topic, key, value);
    }
    flush_all(rk);
    rd_kafka_destroy(rk);
    ck_assert_msg(st.failed == 0, "%d delivery failures, first: %s", st.failed,
                  st.first_err);
    ck_assert_int_eq(st.ok, N_MSGS);
    ck_assert_int_eq(st.persisted, N_MSGS);

    tkc_kafka_test_msgs_t msgs;
    consume(bs, topic, TKC_KAFKA_TEST_READ_UNCOMMITTED, &msgs);
    ck_assert_uint_eq(msgs.count, N_MSGS);

    static bool seen[N_MSGS];
    int last_seq[N_KEYS], key_part[N_KEYS], per_part[3] = {0, 0, 0};
    for (int k = 0; k < N_KEYS; k++)
        last_seq[k] = key_part[k] = -1;
    for (size_t i = 0; i < msgs.count; i++) {
        const tkc_kafka_test_msg_t *m = &msgs.msgs[i];
        int seq = -1;
        ck_assert_ptr_nonnull(m->value);
        ck_assert_int_eq(sscanf(m->value, "value-%d-of-", &seq), 1);
        ck_assert_int_ge(seq, 0);
        ck_assert_int_lt(seq, N_MSGS);
        ck_assert_msg(!seen[seq], "value %d seen twice", seq);
        seen[seq] = true;
        int k = seq % N_KEYS;
        snprintf(key, sizeof(key), "key-%02d", k);
        snprintf(value, sizeof(value), "value-%04d-of-%s", seq, key);
        ck_assert_str_eq(m->value, value);
        ck_assert_uint_eq(m->value_len, strlen(value));
        ck_assert_ptr_nonnull(m->key);
        ck_assert_str_eq(m->key, key);
        ck_assert_uint_eq(m->key_len, strlen(key));
        ck_assert_int_ge(m->partition, 0);
        ck_assert_int_lt(m->partition, 3);
        ck_assert_int_ge(m->offset, 0);
        ck_assert_int_gt(m->timestamp, 0);
        per_part[m->partition]++;
        /* one partition per key, and per-key order preserved */
        if (key_part[k] < 0)
            key_part[k] = m->partition;
        ck_assert_int_eq(m->partition, key_part[k]);
        ck_assert_msg(seq > last_seq[k], "key %s: %d after %d", key, seq,
                      last_seq[k]);
        last_seq[k] = seq;
        if (i > 0 && msgs.msgs[i - 1].partition == m->partition)
            ck_assert_int_eq(m->offset, msgs.msgs[i - 1].offset + 1);
    }
    for (int p = 0; p < 3; p++)
        ck_assert_msg(per_part[p] > 0, "partition %d got no messages", p);

    tkc_kafka_test_msgs_free(&msgs);
    ck_assert_ptr_null(msgs.msgs);
    ck_assert_uint_eq(msgs.count, 0);
    ck_assert_msg(tkc_kafka_test_delete_topic(bs, topic, TEST_TIMEOUT_MS, err,
                                              sizeof(err)) == 0,
                  "%s", err);
    free(topic);
    free(bs);
}
END_TEST

#define N_COMMITTED 20
#define N_ABORTED 30
#define N_OPEN 5

static void count_kinds(const tkc_kafka_test_msgs_t *msgs, int *committed,
                        int *aborted, int *open)
{
    static bool seen[3][64];
    memset(seen, 0, sizeof(seen));
    *committed = *aborted = *open = 0;
    for (size_t i = 0; i < msgs->count; i++) {
        const char *v = msgs->msgs[i].value;
        int n = -1, kind;
        ck_assert_ptr_nonnull(v);
        if (sscanf(v, "committed-%d", &n) == 1) {
            kind = 0;
            (*committed)++;
        } else if (sscanf(v, "aborted-%d", &n) == 1) {
            kind = 1;
            (*aborted)++;
        } else if (sscanf(v, "open-%d", &n) == 1) {
            kind = 2;
            (*open)++;
        } else {
            ck_abort_msg("unexpected value %s", v);
            return;
        }
        ck_assert_int_ge(n, 0);
        ck_assert_int_lt(n, 64);
        ck_assert_msg(!seen[kind][n], "%s seen twice", v);
        seen[kind][n] = true;
    }
}

static void produce_batch(rd_kafka_t *rk, const char *topic, const char *kind,
                          int n)
{
    char key[32], value[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%d", i % 7);
        snprintf(value, sizeof(value), "%s-%02d", kind, i);
        produce(rk, topic, key, value);
    }
}

START_TEST(test_transactions_isolation)
{
    char err[512];
    char *bs = bootstrap_or_fail();
    char *topic = tkc_kafka_test_topic_name("tkc-broker-txn");
    ck_assert_ptr_nonnull(topic);
    ck_assert_msg(tkc_kafka_test_create_topic(bs, topic, 2, NULL,
                                              TEST_TIMEOUT_MS, err,
                                              sizeof(err)) == 0,
                  "%s", err);
    char *txn_id = tkc_kafka_test_topic_name("tkc-txn");
    ck_assert_ptr_nonnull(txn_id);

    dr_stats_t st = {0};
    rd_kafka_t *rk = new_producer(bs, &st, txn_id);
    txn_ok(rd_kafka_init_transactions(rk, TEST_TIMEOUT_MS), "init_transactions");

    txn_ok(rd_kafka_begin_transaction(rk), "begin 1");
    produce_batch(rk, topic, "committed", N_COMMITTED);
    txn_ok(rd_kafka_commit_transaction(rk, TEST_TIMEOUT_MS), "commit");
    ck_assert_int_eq(st.ok, N_COMMITTED);

    /* Flush before aborting so the aborted records really are in the log
     * (abort without flush purges queued messages instead). */
    txn_ok(rd_kafka_begin_transaction(rk), "begin 2");
    produce_batch(rk, topic, "aborted", N_ABORTED);
    flush_all(rk);
    txn_ok(rd_kafka_abort_transaction(rk, TEST_TIMEOUT_MS), "abort");
    ck_assert_msg(st.failed == 0, "%d delivery failures, first: %s", st.failed,
                  st.first_err);
    ck_assert_int_eq(st.ok, N_COMMITTED + N_ABORTED);

    int c, a, o;
    tkc_kafka_test_msgs_t msgs;
    consume(bs, topic, TKC_KAFKA_TEST_READ_COMMITTED, &msgs);
    count_kinds(&msgs, &c, &a, &o);
    ck_assert_int_eq(c, N_COMMITTED);
    ck_assert_int_eq(a, 0);
    ck_assert_uint_eq(msgs.count, N_COMMITTED);
    tkc_kafka_test_msgs_free(&msgs);

    consume(bs, topic, TKC_KAFKA_TEST_READ_UNCOMMITTED, &msgs);
    count_kinds(&msgs, &c, &a, &o);
    ck_assert_int_eq(c, N_COMMITTED);
    ck_assert_int_eq(a, N_ABORTED);
    ck_assert_uint_eq(msgs.count, N_COMMITTED + N_ABORTED);
    tkc_kafka_test_msgs_free(&msgs);

    /* An open transaction: read_committed stops at the last stable offset
     * instead of waiting for it; read_uncommitted sees its records. */
    txn_ok(rd_kafka_begin_transaction(rk), "begin 3");
    produce_batch(rk, topic, "open", N_OPEN);
    flush_all(rk);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    consume(bs, topic, TKC_KAFKA_TEST_READ_COMMITTED, &msgs);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    count_kinds(&msgs, &c, &a, &o);
    ck_assert_int_eq(c, N_COMMITTED);
    ck_assert_int_eq(a + o, 0);
    ck_assert_msg(t1.tv_sec - t0.tv_sec < 20,
                  "read_committed took %ld s with an open transaction",
                  (long)(t1.tv_sec - t0.tv_sec));
    tkc_kafka_test_msgs_free(&msgs);

    consume(bs, topic, TKC_KAFKA_TEST_READ_UNCOMMITTED, &msgs);
    count_kinds(&msgs, &c, &a, &o);
    ck_assert_int_eq(c, N_COMMITTED);
    ck_assert_int_eq(a, N_ABORTED);
    ck_assert_int_eq(o, N_OPEN);
    tkc_kafka_test_msgs_free(&msgs);

    txn_ok(rd_kafka_abort_transaction(rk, TEST_TIMEOUT_MS), "abort open");
    rd_kafka_destroy(rk);
    ck_assert_msg(st.failed == 0, "%d delivery failures, first: %s", st.failed,
                  st.first_err);

    ck_assert_msg(tkc_kafka_test_delete_topic(bs, topic, TEST_TIMEOUT_MS, err,
                                              sizeof(err)) == 0,
                  "%s", err);
    free(txn_id);
    free(topic);
    free(bs);
}
END_TEST

static Suite *kafka_broker_suite(void)
{
    Suite *s = suite_create("kafka_broker");
    TCase *tc = tcase_create("broker");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_helpers);
    tcase_add_test(tc, test_idempotent_roundtrip);
    tcase_add_test(tc, test_transactions_isolation);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(kafka_broker_suite)
