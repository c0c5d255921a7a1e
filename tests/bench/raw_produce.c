/*
 * raw_produce.c: the Kafka side of the throughput bound (issue 7, `make bench`).
 *
 *   bench-raw-produce --bootstrap HOST:PORT --topic T --count N --key-size K
 *                     --value-size V [--partitions P] [--linger-ms L]
 *                     [--compression C]
 *
 * Produces N pre-encoded messages (every key and value built before the clock
 * starts) to a fresh topic of P partitions with the producer settings the
 * connector uses (idempotent, hence acks=all; the same linger and
 * compression), keyed so the default partitioner spreads them like the
 * connector's row keys. The rate counts from the first produce call until the
 * last delivery report, so every message is acknowledged by the broker, the
 * same condition the connector's figure is measured under. Any failed
 * delivery makes the run exit 1: a baseline that lost messages would flatter
 * the ratio.
 *
 * The value bytes are pseudo-random so lz4 cannot shrink them more than it
 * can shrink the connector's Avro rows (whose payload the simulator also
 * fills with incompressible-ish bytes); this keeps the bytes on the wire
 * comparable.
 *
 * Output: one JSON line on stdout. No thresholds: this measures.
 */
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *bootstrap, *topic, *compression;
    long count, key_size, value_size, partitions, linger_ms;
} opts_t;

typedef struct {
    long delivered, failed;
    char first_err[256];
} dr_state_t;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    dr_state_t *st = opaque;
    if (m->err) {
        if (st->failed++ == 0)
            snprintf(st->first_err, sizeof(st->first_err), "%s", rd_kafka_err2str(m->err));
    } else {
        st->delivered++;
    }
}

static void set_or_die(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[256];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "raw_produce: %s=%s: %s\n", k, v, err);
        exit(2);
    }
}

/* A fresh topic per run, so the broker starts from empty logs each time; an
 * existing topic of the same name is fine (reruns), anything else is not. */
static void create_topic(rd_kafka_t *rk, const opts_t *o)
{
    char err[256];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(o->topic, (int)o->partitions, 1, err, sizeof(err));
    if (!nt) {
        fprintf(stderr, "raw_produce: topic: %s\n", err);
        exit(2);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(ao, 30000, err, sizeof(err));
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    int ok = 0;
    if (ev) {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n)
                                                 : NULL;
        if (rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR && n == 1 &&
            (rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_NO_ERROR ||
             rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS))
            ok = 1;
        else
            fprintf(stderr, "raw_produce: create topic failed: %s\n",
                    n == 1 ? rd_kafka_err2str(rd_kafka_topic_result_error(tr[0]))
                           : rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    if (!ok)
        exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-raw-produce --bootstrap B --topic T --count N "
                    "--key-size K --value-size V [--partitions P] [--linger-ms L] "
                    "[--compression C]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts_t o = {.compression = "lz4", .partitions = 3, .linger_ms = 20, .key_size = 19};
    static const struct option lo[] = {
        {"bootstrap", 1, 0, 'b'}, {"topic", 1, 0, 't'},      {"count", 1, 0, 'n'},
        {"key-size", 1, 0, 'k'},  {"value-size", 1, 0, 'v'}, {"partitions", 1, 0, 'p'},
        {"linger-ms", 1, 0, 'l'}, {"compression", 1, 0, 'c'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'b': o.bootstrap = optarg; break;
        case 't': o.topic = optarg; break;
        case 'n': o.count = atol(optarg); break;
        case 'k': o.key_size = atol(optarg); break;
        case 'v': o.value_size = atol(optarg); break;
        case 'p': o.partitions = atol(optarg); break;
        case 'l': o.linger_ms = atol(optarg); break;
        case 'c': o.compression = optarg; break;
        default: usage();
        }
    }
    if (!o.bootstrap || !o.topic || o.count <= 0 || o.key_size < 8 || o.value_size < 1 ||
        o.partitions < 1)
        usage();

    dr_state_t st = {0};
    char linger[32];
    snprintf(linger, sizeof(linger), "%ld", o.linger_ms);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set_or_die(conf, "bootstrap.servers", o.bootstrap);
    set_or_die(conf, "enable.idempotence", "true");
    set_or_die(conf, "acks", "all");
    set_or_die(conf, "linger.ms", linger);
    set_or_die(conf, "compression.type", o.compression);
    set_or_die(conf, "client.id", "tkc-bench-raw-produce");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &st);
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "raw_produce: %s\n", err);
        return 2;
    }
    create_topic(rk, &o);

    /* Pre-encode: one key per message (distinct keys, like distinct rows),
     * values drawn from one random pool at varying offsets. */
    size_t ks = (size_t)o.key_size, vs = (size_t)o.value_size;
    char *keys = malloc((size_t)o.count * ks);
    size_t pool_len = vs + 4096;
    unsigned char *pool = malloc(pool_len);
    if (!keys || !pool) {
        fprintf(stderr, "raw_produce: out of memory\n");
        return 1;
    }
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < pool_len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pool[i] = (unsigned char)x;
    }
    for (long i = 0; i < o.count; i++) {
        char *k = keys + (size_t)i * ks;
        memset(k, 'k', ks);
        char tmp[32];
        int n = snprintf(tmp, sizeof(tmp), "%08ld", i);
        memcpy(k + ks - (size_t)n, tmp, (size_t)n);
    }
    /* Metadata first, so connection set-up is not in the timed part (the
     * connector's figure also excludes its start-up). */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o.topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);

    double t0 = mono_s(), c0 = cpu_s();
    for (long i = 0; i < o.count; i++) {
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(o.topic), RD_KAFKA_V_KEY(keys + (size_t)i * ks, ks),
                RD_KAFKA_V_VALUE(pool + (size_t)(i * 61 % 4096), vs),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "raw_produce: produce: %s\n", rd_kafka_err2str(e));
                return 1;
            }
            rd_kafka_poll(rk, 1);
        }
        rd_kafka_poll(rk, 0);
    }
    while (st.delivered + st.failed < o.count)
        rd_kafka_poll(rk, 10);
    double secs = mono_s() - t0, cpu = cpu_s() - c0;
    rd_kafka_flush(rk, 10000);
    rd_kafka_destroy(rk);
    free(keys);
    free(pool);
    if (st.failed) {
        fprintf(stderr, "raw_produce: %ld deliveries failed (first: %s)\n", st.failed,
                st.first_err);
        return 1;
    }
    printf("{\"messages\":%ld,\"key_size\":%ld,\"value_size\":%ld,\"partitions\":%ld,"
           "\"seconds\":%.3f,\"msgs_per_s\":%.0f,\"mb_per_s\":%.2f,\"cpu_s\":%.3f,"
           "\"cpu_s_per_million\":%.2f}\n",
           o.count, o.key_size, o.value_size, o.partitions, secs, (double)o.count / secs,
           (double)o.count * (double)(ks + vs) / secs / 1e6, cpu,
           cpu / ((double)o.count / 1e6));
    return 0;
}
