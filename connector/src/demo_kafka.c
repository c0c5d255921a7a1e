/*
 * demo_kafka.c: "show me the last few messages" for the demo's ending.
 *
 * Design: the consumer uses assign(), never subscribe(), and commits
 * nothing, so it leaves no trace in the cluster (the librdkafka 2.0.2 mock
 * serves Metadata, ListOffsets and Fetch, which is all this needs). The
 * high watermark of each partition is read first and the read stops when
 * every partition reached it: the connector keeps producing meanwhile, and
 * "the last N as of now" must terminate. The mock drops the oldest data of
 * a partition beyond about 5 MiB, so the start offset is clamped to the low
 * watermark and an out-of-range start falls back to the end (nothing read
 * from that partition) instead of failing the whole read.
 */
#include "demo_kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define COMP "demo"

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    tkc_log(TKC_LOG_DEBUG, COMP, "event=rdkafka_log fac=%s msg=\"%s\"", fac, buf);
}

typedef struct part_s {
    int32_t id;
    int64_t end;  /* high watermark at the start of the read */
    bool done;
} part_t;

void tkc_demo_kafka_records_free(tkc_demo_kafka_record_t *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tkc_free(recs[i].topic);
        tkc_free(recs[i].key);
        tkc_free(recs[i].value);
    }
    tkc_free(recs);
}

static void add_record(tkc_demo_kafka_record_t **recs, size_t *n, const rd_kafka_message_t *m,
                       const char *topic)
{
    *recs = tkc_realloc(*recs, (*n + 1) * sizeof(**recs));
    tkc_demo_kafka_record_t *r = &(*recs)[(*n)++];
    memset(r, 0, sizeof(*r));
    r->topic = tkc_strdup(topic);
    r->partition = m->partition;
    r->offset = m->offset;
    rd_kafka_timestamp_type_t tt;
    r->timestamp_ms = rd_kafka_message_timestamp(m, &tt);
    if (m->key) {
        r->key = tkc_memdup(m->key, m->key_len);
        r->key_len = m->key_len;
    }
    r->value = tkc_malloc(m->len + 1);
    if (m->len)
        memcpy(r->value, m->payload, m->len);
    r->value_len = m->len;
}

static int cmp_record(const void *a, const void *b)
{
    const tkc_demo_kafka_record_t *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

tkc_err_t tkc_demo_kafka_tail(const char *bootstrap, const char *topic, int per_partition,
                              int timeout_ms, tkc_demo_kafka_record_t **out, size_t *n_out,
                              char *errstr, size_t errstr_size)
{
    tkc_err_t rc = TKC_ERR_IO;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_partition_list_t *assign = NULL;
    part_t *parts = NULL;
    tkc_demo_kafka_record_t *recs = NULL;
    size_t n_recs = 0;
    int64_t deadline = tkc_clock_mono_ms() + timeout_ms;
    char err[512];

    *out = NULL;
    *n_out = 0;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)) ||
        /* assign() wants a group id in 2.0.2 ("Unknown group"); it never
         * joins the group or commits, so any name will do. */
        rd_kafka_conf_set(conf, "group.id", "tikv-kafka-cdc-demo-reader", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "latest", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "1000", err, sizeof(err))) {
        snprintf(errstr, errstr_size, "consumer config: %s", err);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        snprintf(errstr, errstr_size, "consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    rd_kafka_poll_set_consumer(rk);

    rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (kerr) {
        snprintf(errstr, errstr_size, "metadata of %s: %s", topic, rd_kafka_err2str(kerr));
        rc = kerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? TKC_ERR_TIMED_OUT : TKC_ERR_IO;
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0) {
        snprintf(errstr, errstr_size, "topic %s: %s", topic,
                 md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not found");
        rc = TKC_ERR_NOT_FOUND;
        goto out;
    }
    int n_parts = md->topics[0].partition_cnt;
    parts = tkc_calloc((size_t)n_parts, sizeof(part_t));
    assign = rd_kafka_topic_partition_list_new(n_parts);
    int pending = 0;
    for (int i = 0; i < n_parts; i++) {
        int64_t lo = 0, hi = 0;
        int left = (int)(deadline - tkc_clock_mono_ms());
        parts[i].id = md->topics[0].partitions[i].id;
        kerr = rd_kafka_query_watermark_offsets(rk, topic, parts[i].id, &lo, &hi,
                                                left > 0 ? left : 1);
        if (kerr) {
            snprintf(errstr, errstr_size, "offsets of %s [%d]: %s", topic, parts[i].id,
                     rd_kafka_err2str(kerr));
            rc = kerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? TKC_ERR_TIMED_OUT : TKC_ERR_IO;
            goto out;
        }
        int64_t start = hi - per_partition;
        if (start < lo)
            start = lo;
        parts[i].end = hi;
        parts[i].done = start >= hi;
        if (!parts[i].done) {
            rd_kafka_topic_partition_list_add(assign, topic, parts[i].id)->offset = start;
            pending++;
        }
    }
    if (pending && (kerr = rd_kafka_assign(rk, assign)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "assign: %s", rd_kafka_err2str(kerr));
        goto out;
    }
    while (pending > 0) {
        int left = (int)(deadline - tkc_clock_mono_ms());
        if (left <= 0) {
            snprintf(errstr, errstr_size, "reading %s: timed out with %d partition(s) left",
                     topic, pending);
            rc = TKC_ERR_TIMED_OUT;
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, left < 200 ? left : 200);
        if (!m)
            continue;
        part_t *p = NULL;
        for (int i = 0; i < n_parts && !p; i++)
            if (parts[i].id == m->partition)
                p = &parts[i];
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (p && !p->done && m->offset < p->end)
                add_record(&recs, &n_recs, m, topic);
            if (p && !p->done && m->offset + 1 >= p->end) {
                p->done = true;
                pending--;
            }
        } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
                   m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
            /* EOF: nothing more up to the end we saw; out of range: the
             * mock dropped that data meanwhile. Either way, done. */
            if (p && !p->done) {
                p->done = true;
                pending--;
            }
        } else {
            tkc_log(TKC_LOG_DEBUG, COMP, "event=consume_error topic=%s err=%s", topic,
                    rd_kafka_err2name(m->err));
        }
        rd_kafka_message_destroy(m);
    }
    qsort(recs, n_recs, sizeof(*recs), cmp_record);
    *out = recs;
    *n_out = n_recs;
    recs = NULL;
    n_recs = 0;
    rc = TKC_ERR_OK;

out:
    tkc_demo_kafka_records_free(recs, n_recs);
    tkc_free(parts);
    if (assign)
        rd_kafka_topic_partition_list_destroy(assign);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return rc;
}
