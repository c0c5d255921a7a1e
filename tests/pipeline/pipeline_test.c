/*
 * pipeline_test.c: synthetic feed, independent verifier and helpers for the
 * pipeline's integration tests (see pipeline_test.h).
 */
#include "pipeline_test.h"
#include "util/err.h"

#include <check.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed_event.h"
#include "pipeline_avro.h"
#include "util/clock.h"
#include "util/hashmap.h"
#include "util/mem.h"

#define PUSH_TIMEOUT_MS 120000
/* rows per ROWS event, like the feed's one event per gRPC message batch */
#define ROWS_PER_EVENT 256

/* ===== feedgen ===== */

struct tkc_feedgen_s {
    size_t n_spans, regions;
    unsigned keys;
    uint64_t last_ts;
    unsigned seed;
    char (*names)[24];
    uint8_t (*bounds)[2]; /* per span: start byte, end byte */
    tkc_pipeline_span_t *spans;
    tkc_feedgen_row_t *truth;
    size_t n_truth, cap_truth;
    size_t *last_of_key; /* index+1 into truth of each (span, key), 0: none */
    uint64_t *stamp;     /* per (span, key): txn serial that used it last */
    uint64_t txn_serial;
};

tkc_feedgen_t *tkc_feedgen_new(size_t n_spans, size_t regions, unsigned keys_per_span,
                               uint64_t start_ts, unsigned seed)
{
    tkc_feedgen_t *g = tkc_calloc(1, sizeof(*g));
    g->n_spans = n_spans;
    g->regions = regions ? regions : 1;
    g->keys = keys_per_span;
    g->last_ts = start_ts;
    g->seed = seed;
    g->names = tkc_calloc(n_spans, sizeof(*g->names));
    g->bounds = tkc_calloc(n_spans, sizeof(*g->bounds));
    g->spans = tkc_calloc(n_spans, sizeof(*g->spans));
    for (size_t i = 0; i < n_spans; i++) {
        snprintf(g->names[i], sizeof(g->names[i]), "s%zu", i);
        g->bounds[i][0] = (uint8_t)(0x10 + i);
        g->bounds[i][1] = (uint8_t)(0x11 + i);
        g->spans[i].name = g->names[i];
        g->spans[i].range.start = &g->bounds[i][0];
        g->spans[i].range.start_len = 1;
        g->spans[i].range.end = &g->bounds[i][1];
        g->spans[i].range.end_len = 1;
    }
    g->last_of_key = tkc_calloc(n_spans * keys_per_span, sizeof(size_t));
    g->stamp = tkc_calloc(n_spans * keys_per_span, sizeof(uint64_t));
    return g;
}

void tkc_feedgen_destroy(tkc_feedgen_t *g)
{
    if (!g)
        return;
    tkc_free(g->names);
    tkc_free(g->bounds);
    tkc_free(g->spans);
    tkc_free(g->truth);
    tkc_free(g->last_of_key);
    tkc_free(g->stamp);
    tkc_free(g);
}

void tkc_feedgen_spans(const tkc_feedgen_t *g, tkc_pipeline_span_t *spans)
{
    memcpy(spans, g->spans, g->n_spans * sizeof(*spans));
}

size_t tkc_feedgen_key(unsigned key, char *buf)
{
    return (size_t)snprintf(buf, 16, "k%06u", key);
}

void tkc_feedgen_value(const tkc_feedgen_row_t *r, uint8_t *buf)
{
    char head[64];
    int n = snprintf(head, sizeof(head), "s%u/k%06u@%" PRIu64 "|", r->span, r->key, r->commit_ts);
    for (uint32_t i = 0; i < r->value_len; i++)
        buf[i] = i < (uint32_t)n ? (uint8_t)head[i] : (uint8_t)((r->commit_ts + i) & 0xff);
}

/* Region of a key: keys are spread over the span's regions. */
static size_t region_of(const tkc_feedgen_t *g, unsigned key)
{
    return key % g->regions;
}

static void region_range(const tkc_feedgen_t *g, size_t span, size_t r, uint8_t *start,
                         size_t *slen, uint8_t *end, size_t *elen)
{
    start[0] = g->bounds[span][0];
    *slen = 1;
    if (r > 0) {
        start[1] = (uint8_t)(r * 256 / g->regions);
        *slen = 2;
    }
    if (r + 1 < g->regions) {
        end[0] = g->bounds[span][0];
        end[1] = (uint8_t)((r + 1) * 256 / g->regions);
        *elen = 2;
    } else {
        end[0] = g->bounds[span][1];
        *elen = 1;
    }
}

static bool push(tkc_msgq_t *q, tkc_feed_event_t *ev)
{
    int64_t deadline = tkc_clock_mono_ms() + PUSH_TIMEOUT_MS;
    for (;;) {
        tkc_err_t err = tkc_msgq_try_push(q, ev, ev->bytes);
        if (err == TKC_ERR_OK)
            return true;
        if (err != TKC_ERR_QUEUE_FULL || tkc_clock_mono_ms() > deadline) {
            tkc_feed_event_destroy(ev);
            return false;
        }
        usleep(1000); /* flow control: the pipeline is not reading */
    }
}

static tkc_row_t *make_row(tkc_feedgen_t *g, const tkc_feedgen_row_t *t, size_t old_idx)
{
    char key[16];
    size_t kl = tkc_feedgen_key(t->key, key);
    uint8_t *val = tkc_malloc(t->value_len + 1);
    tkc_feedgen_value(t, val);
    uint8_t *old = NULL;
    size_t old_len = 0;
    if (old_idx) {
        const tkc_feedgen_row_t *o = &g->truth[old_idx - 1];
        if (!o->del) {
            old_len = o->value_len;
            old = tkc_malloc(old_len + 1);
            tkc_feedgen_value(o, old);
        }
    }
    tkc_row_t *row = tkc_row_new(t->del ? TKC_ROW_OP_DELETE : TKC_ROW_OP_PUT,
                                 (const uint8_t *)key, kl, val, t->del ? 0 : t->value_len, old,
                                 old_len);
    tkc_free(val);
    tkc_free(old);
    row->span_index = t->span;
    row->region_id = 100 * (t->span + 1) + region_of(g, t->key);
    row->commit_ts = t->commit_ts;
    row->start_ts = t->commit_ts - 8;
    row->has_old_value = true;
    return row;
}

/* Pushes the rows truth[from, to) (one commit ts), one event per region. */
static bool push_rows(tkc_feedgen_t *g, tkc_msgq_t *q, size_t from, size_t to, bool replay)
{
    size_t nev = g->n_spans * g->regions;
    tkc_feed_event_t **evs = tkc_calloc(nev, sizeof(*evs));
    for (size_t i = from; i < to; i++) {
        const tkc_feedgen_row_t *t = &g->truth[i];
        size_t slot = t->span * g->regions + region_of(g, t->key);
        if (!evs[slot])
            evs[slot] = tkc_feed_event_new(TKC_FEED_EVENT_ROWS, t->span);
        /* the old value: the key's previous change (replays look it up too) */
        size_t old_idx = 0;
        if (replay) {
            for (size_t j = i; j-- > 0;)
                if (g->truth[j].span == t->span && g->truth[j].key == t->key) {
                    old_idx = j + 1;
                    break;
                }
        } else {
            old_idx = g->last_of_key[t->span * g->keys + t->key];
            g->last_of_key[t->span * g->keys + t->key] = i + 1;
        }
        tkc_feed_event_add_row(evs[slot], make_row(g, t, old_idx));
        if (evs[slot]->n_rows >= ROWS_PER_EVENT) {
            /* a region's rows stay in order: this chunk goes before the next */
            tkc_feed_event_t *ev = evs[slot];
            evs[slot] = NULL;
            if (!push(q, ev)) {
                for (size_t s = 0; s < nev; s++)
                    tkc_feed_event_destroy(evs[s]);
                tkc_free(evs);
                return false;
            }
        }
    }
    bool ok = true;
    for (size_t s = 0; s < nev; s++) {
        if (!evs[s])
            continue;
        if (ok)
            ok = push(q, evs[s]);
        else
            tkc_feed_event_destroy(evs[s]);
    }
    tkc_free(evs);
    return ok;
}

uint64_t tkc_feedgen_txn(tkc_feedgen_t *g, tkc_msgq_t *q, unsigned n_rows, uint32_t value_len)
{
    uint64_t ts = g->last_ts + 16;
    g->txn_serial++;
    unsigned total = (unsigned)(g->n_spans * g->keys);
    if (n_rows > total)
        n_rows = total;
    size_t from = g->n_truth;
    for (unsigned i = 0; i < n_rows; i++) {
        unsigned pick = (unsigned)rand_r(&g->seed) % total;
        while (g->stamp[pick] == g->txn_serial) /* a txn writes a key once */
            pick = (pick + 1) % total;
        g->stamp[pick] = g->txn_serial;
        if (g->n_truth == g->cap_truth) {
            g->cap_truth = g->cap_truth ? g->cap_truth * 2 : 1024;
            g->truth = tkc_realloc(g->truth, g->cap_truth * sizeof(*g->truth));
        }
        tkc_feedgen_row_t *t = &g->truth[g->n_truth++];
        t->span = pick / g->keys;
        t->key = pick % g->keys;
        t->commit_ts = ts;
        /* big rows are sized on purpose by the tests: never deletes */
        t->del = value_len <= 1024 && (t->key + ts / 16) % 7 == 0;
        t->value_len = t->del ? 0 : value_len;
    }
    if (!push_rows(g, q, from, g->n_truth, false))
        return 0;
    g->last_ts = ts;
    return ts;
}

uint64_t tkc_feedgen_resolve(tkc_feedgen_t *g, tkc_msgq_t *q, uint64_t ts)
{
    if (!ts)
        ts = g->last_ts;
    for (size_t s = 0; s < g->n_spans; s++) {
        tkc_feed_event_t *ev = tkc_feed_event_new(TKC_FEED_EVENT_RESOLVED, (uint32_t)s);
        ev->ts = ts;
        for (size_t r = 0; r < g->regions; r++) {
            uint8_t st[2], en[2];
            size_t sl, el;
            region_range(g, s, r, st, &sl, en, &el);
            tkc_feed_event_add_region(ev, 100 * (s + 1) + r, st, sl, en, el);
        }
        if (!push(q, ev))
            return 0;
    }
    return ts;
}

uint64_t tkc_feedgen_replay(tkc_feedgen_t *g, tkc_msgq_t *q, uint64_t from_ts)
{
    size_t i = 0;
    while (i < g->n_truth && g->truth[i].commit_ts <= from_ts)
        i++;
    while (i < g->n_truth) {
        size_t j = i;
        while (j < g->n_truth && g->truth[j].commit_ts == g->truth[i].commit_ts)
            j++;
        if (!push_rows(g, q, i, j, true))
            return 0;
        i = j;
    }
    return tkc_feedgen_resolve(g, q, g->last_ts);
}

const tkc_feedgen_row_t *tkc_feedgen_truth(const tkc_feedgen_t *g, size_t *n)
{
    *n = g->n_truth;
    return g->truth;
}

uint64_t tkc_feedgen_last_ts(const tkc_feedgen_t *g)
{
    return g->last_ts;
}

/* ===== verify ===== */

int32_t tkc_verify_java_partition(const void *key, size_t len, int32_t partitions)
{
    /* Kafka's Utils.murmur2 (seed 0x9747b28c), written from the algorithm */
    const uint8_t *d = key;
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t n4 = len / 4;
    for (size_t i = 0; i < n4; i++) {
        uint32_t k = (uint32_t)d[4 * i] | (uint32_t)d[4 * i + 1] << 8 |
                     (uint32_t)d[4 * i + 2] << 16 | (uint32_t)d[4 * i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    size_t t = len & ~(size_t)3;
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)d[t + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)d[t + 1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)d[t];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)((h & 0x7fffffffu) % (uint32_t)partitions);
}

typedef struct {
    uint32_t span;
    unsigned key;
    uint64_t ts;
} change_id_t;

static int consume(const tkc_verify_opts_t *o, const char *topic, tkc_kafka_test_msgs_t *out,
                   char *errstr, size_t errstr_size)
{
    char e[512];
    if (tkc_kafka_test_consume_all(o->bootstrap, topic, o->isolation, 60000, out, e, sizeof(e))) {
        tkc_err_set(errstr, errstr_size, "consuming %s: %s", topic, e);
        return -1;
    }
    return 0;
}

static int verify_once(const tkc_verify_opts_t *o, const tkc_feedgen_row_t *truth,
                       size_t n_truth, tkc_verify_report_t *rep, char *errstr,
                       size_t errstr_size);

int tkc_verify_feed(const tkc_verify_opts_t *o, const tkc_feedgen_row_t *truth, size_t n_truth,
                    tkc_verify_report_t *rep, char *errstr, size_t errstr_size)
{
    /*
     * read_committed visibility trails the commit: EndTxn returns once the
     * coordinator logged the decision, and the commit markers reach the
     * partitions a moment later (a transactional successor's
     * init_transactions waits for them; a plain consumer does not). So for
     * read_committed, a failed check is repeated for a few seconds; each
     * attempt checks everything from scratch, so a pass is a full pass.
     */
    int attempts = o->isolation == TKC_KAFKA_TEST_READ_COMMITTED ? 10 : 1;
    int rc = -1;
    for (int i = 0; i < attempts && rc != 0; i++) {
        if (i)
            sleep(1);
        rc = verify_once(o, truth, n_truth, rep, errstr, errstr_size);
    }
    return rc;
}

static int verify_once(const tkc_verify_opts_t *o, const tkc_feedgen_row_t *truth,
                       size_t n_truth, tkc_verify_report_t *rep, char *errstr,
                       size_t errstr_size)
{
    memset(rep, 0, sizeof(*rep));
    int rc = -1;
    char e[512];
    char topic[512];
    tkc_avro_codec_t *codec = tkc_avro_codec_new(TKC_SCHEMA_DIR, NULL, e, sizeof(e));
    if (!codec) {
        tkc_err_set(errstr, errstr_size, "codec: %s", e);
        return -1;
    }
    tkc_hashmap_t *index = tkc_hashmap_new(); /* change id -> truth index + 1 */
    for (size_t i = 0; i < n_truth; i++) {
        change_id_t id = {truth[i].span, truth[i].key, truth[i].commit_ts};
        tkc_hashmap_put(index, &id, sizeof(id), (void *)(uintptr_t)(i + 1));
    }
    unsigned *seen = tkc_calloc(n_truth ? n_truth : 1, sizeof(*seen));
    tkc_kafka_test_msgs_t msgs = {0};
    tkc_hashmap_t *last_ts = NULL; /* per partition: key -> last commit ts */

    /* watermark topic first: its last value bounds completeness */
    snprintf(topic, sizeof(topic), "%s.watermark", o->prefix);
    if (consume(o, topic, &msgs, errstr, errstr_size))
        goto out;
    for (size_t i = 0; i < msgs.count; i++) {
        tkc_avro_watermark_t wm = {0};
        const tkc_kafka_test_msg_t *m = &msgs.msgs[i];
        if (tkc_avro_codec_decode_watermark(codec, m->value, m->value_len, &wm, e, sizeof(e))) {
            tkc_err_set(errstr, errstr_size, "%s offset %" PRId64 ": %s", topic, m->offset, e);
            goto out;
        }
        bool ours = strcmp(wm.feed_id, o->feed_id) == 0 && m->key &&
                    strcmp(m->key, o->feed_id) == 0;
        uint64_t ts = wm.resolved_ts;
        tkc_avro_watermark_clear(&wm);
        if (!ours) {
            tkc_err_set(errstr, errstr_size, "%s: a watermark of another feed or key", topic);
            goto out;
        }
        if (ts < rep->last_watermark) {
            tkc_err_set(errstr, errstr_size, "%s: watermark went back from %" PRIu64 " to %" PRIu64,
                    topic, rep->last_watermark, ts);
            goto out;
        }
        rep->last_watermark = ts;
        rep->watermarks++;
    }
    tkc_kafka_test_msgs_free(&msgs);
    uint64_t complete = o->complete_upto ? o->complete_upto : rep->last_watermark;

    for (size_t s = 0; s < o->n_spans; s++) {
        snprintf(topic, sizeof(topic), "%s.s%zu", o->prefix, s);
        if (consume(o, topic, &msgs, errstr, errstr_size))
            goto out;
        int32_t part = -1;
        uint64_t part_wm = 0;
        for (size_t i = 0; i < msgs.count; i++) {
            const tkc_kafka_test_msg_t *m = &msgs.msgs[i];
            if (m->partition != part) {
                part = m->partition;
                part_wm = 0;
                tkc_hashmap_destroy(last_ts, tkc_free);
                last_ts = tkc_hashmap_new();
            }
            tkc_avro_message_t dm;
            memset(&dm, 0, sizeof(dm));
            if (tkc_avro_codec_decode(codec, m->value, m->value_len, &dm, e, sizeof(e))) {
                tkc_err_set(errstr, errstr_size, "%s [%d] offset %" PRId64 ": %s", topic, part,
                        m->offset, e);
                goto out;
            }
            if (dm.kind == TKC_AVRO_MSG_WATERMARK) {
                uint64_t ts = dm.watermark.resolved_ts;
                bool feed_ok = strcmp(dm.watermark.feed_id, o->feed_id) == 0;
                tkc_avro_message_clear(&dm);
                if (!feed_ok || ts < part_wm) {
                    tkc_err_set(errstr, errstr_size,
                            "%s [%d] offset %" PRId64 ": watermark %" PRIu64 " after %" PRIu64
                            " (or another feed)",
                            topic, part, m->offset, ts, part_wm);
                    goto out;
                }
                part_wm = ts;
                rep->watermarks_in_rows++;
                continue;
            }
            if (dm.kind != TKC_AVRO_MSG_ROW_CHANGE) {
                tkc_avro_message_clear(&dm);
                tkc_err_set(errstr, errstr_size, "%s: unexpected message kind", topic);
                goto out;
            }
            const tkc_row_t *row = dm.row_change.row;
            rep->rows++;
            unsigned key = 0;
            char kbuf[32];
            if (row->key_len != 7 || sscanf((const char *)row->key, "k%06u", &key) != 1) {
                tkc_avro_message_clear(&dm);
                tkc_err_set(errstr, errstr_size, "%s: unexpected key", topic);
                goto out;
            }
            tkc_feedgen_key(key, kbuf);
            change_id_t id = {(uint32_t)s, key, row->commit_ts};
            void *v = tkc_hashmap_get(index, &id, sizeof(id));
            const char *bad = NULL;
            size_t ti = v ? (size_t)(uintptr_t)v - 1 : 0;
            if (!v)
                bad = "a change the feed never emitted";
            else if (strcmp(dm.row_change.span, topic + strlen(o->prefix) + 1) != 0)
                bad = "wrong span name";
            else if (tkc_verify_java_partition(kbuf, 7, o->partitions) != part) {
                bad = "key in a partition the Java partitioner would not pick";
                if (getenv("TKC_DEBUG_VERIFY"))
                    for (size_t x = 0; x < msgs.count; x++)
                        fprintf(stderr, "DBG %s [%d] off %" PRId64 " key %s len %zu\n", topic,
                                msgs.msgs[x].partition, msgs.msgs[x].offset,
                                msgs.msgs[x].key ? msgs.msgs[x].key : "(null)",
                                msgs.msgs[x].value_len);
            }
            else if (row->commit_ts <= part_wm)
                bad = "row after a watermark that covers it";
            else if (row->op != (truth[ti].del ? TKC_ROW_OP_DELETE : TKC_ROW_OP_PUT) ||
                     row->start_ts != row->commit_ts - 8 || !row->has_old_value)
                bad = "wrong op, start ts or old value flag";
            else if (!truth[ti].del) {
                uint8_t *want = tkc_malloc(truth[ti].value_len + 1);
                tkc_feedgen_value(&truth[ti], want);
                if (row->value_len != truth[ti].value_len ||
                    memcmp(row->value, want, row->value_len) != 0)
                    bad = "wrong value";
                tkc_free(want);
            }
            if (!bad) {
                uint64_t *lt = tkc_hashmap_get(last_ts, kbuf, 7);
                if (lt && *lt >= row->commit_ts)
                    bad = "commit order of the key broken in its partition";
                else if (!lt) {
                    lt = tkc_malloc(sizeof(*lt));
                    tkc_hashmap_put(last_ts, kbuf, 7, lt);
                }
                if (!bad)
                    *lt = row->commit_ts;
            }
            if (bad) {
                tkc_err_set(errstr, errstr_size,
                        "%s [%d] offset %" PRId64 ": key %s commit_ts %" PRIu64 ": %s", topic,
                        part, m->offset, kbuf, row->commit_ts, bad);
                tkc_avro_message_clear(&dm);
                goto out;
            }
            tkc_avro_message_clear(&dm);
            if (seen[ti]++)
                rep->duplicates++;
            else
                rep->distinct++;
        }
        tkc_kafka_test_msgs_free(&msgs);
    }
    if (o->exactly_once && rep->duplicates) {
        tkc_err_set(errstr, errstr_size, "%zu changes seen more than once", rep->duplicates);
        goto out;
    }
    for (size_t i = 0; i < n_truth; i++) {
        if (truth[i].commit_ts <= complete && !seen[i]) {
            char kbuf[16];
            tkc_feedgen_key(truth[i].key, kbuf);
            tkc_err_set(errstr, errstr_size,
                    "lost: s%u key %s commit_ts %" PRIu64 " (<= %" PRIu64 ") never arrived",
                    truth[i].span, kbuf, truth[i].commit_ts, complete);
            goto out;
        }
    }

    if (o->expect_checkpoint_topic) {
        snprintf(topic, sizeof(topic), "%s.checkpoint", o->prefix);
        if (consume(o, topic, &msgs, errstr, errstr_size))
            goto out;
        for (size_t i = 0; i < msgs.count; i++) {
            const tkc_kafka_test_msg_t *m = &msgs.msgs[i];
            if (!m->key || strcmp(m->key, o->feed_id) != 0)
                continue;
            tkc_avro_checkpoint_t ck = {0};
            if (tkc_avro_codec_decode_checkpoint(codec, m->value, m->value_len, &ck, e,
                                                 sizeof(e))) {
                tkc_err_set(errstr, errstr_size, "%s offset %" PRId64 ": %s", topic, m->offset, e);
                goto out;
            }
            uint64_t ts = ck.checkpoint_ts;
            rep->last_checkpoint_epoch = ck.epoch;
            tkc_avro_checkpoint_clear(&ck);
            if (ts < rep->last_checkpoint || ts > rep->last_watermark) {
                tkc_err_set(errstr, errstr_size,
                        "%s: checkpoint %" PRIu64 " after %" PRIu64
                        " or above the watermark %" PRIu64,
                        topic, ts, rep->last_checkpoint, rep->last_watermark);
                goto out;
            }
            rep->last_checkpoint = ts;
            rep->checkpoints++;
        }
        tkc_kafka_test_msgs_free(&msgs);
    }
    if (o->expect_final) {
        if (rep->last_watermark != o->expect_final ||
            (o->expect_checkpoint_topic && rep->last_checkpoint != o->expect_final)) {
            tkc_err_set(errstr, errstr_size,
                    "final watermark %" PRIu64 " / checkpoint %" PRIu64 ", expected %" PRIu64,
                    rep->last_watermark, rep->last_checkpoint, o->expect_final);
            goto out;
        }
    }
    if (o->watermarks_in_partitions && rep->watermarks && !rep->watermarks_in_rows) {
        tkc_err_set(errstr, errstr_size, "no watermark in the row partitions");
        goto out;
    }
    rc = 0;
out:
    tkc_kafka_test_msgs_free(&msgs);
    tkc_hashmap_destroy(last_ts, tkc_free);
    tkc_hashmap_destroy(index, NULL);
    tkc_free(seen);
    tkc_avro_codec_destroy(codec);
    return rc;
}

/* ===== helpers ===== */

void tkc_ptest_config(tkc_pipeline_config_t *cfg, const char *bootstrap, const char *prefix,
                      const char *feed_id, const tkc_pipeline_span_t *spans, size_t n_spans,
                      tkc_avro_codec_t *codec)
{
    tkc_pipeline_config_defaults(cfg);
    cfg->feed_id = feed_id;
    cfg->topic_prefix = prefix;
    cfg->spans = spans;
    cfg->n_spans = n_spans;
    cfg->partitions = 3;
    cfg->replication = 1;
    cfg->watermark_interval_ms = 50;
    cfg->kafka_bootstrap = bootstrap;
    cfg->kafka_timeout_ms = 30000;
    cfg->memory_quota = 64 * 1024 * 1024;
    tkc_pipeline_codec_avro(&cfg->codec, codec);
}

tkc_avro_codec_t *tkc_ptest_codec(void)
{
    char e[512] = "";
    tkc_avro_codec_t *c = tkc_avro_codec_new(TKC_SCHEMA_DIR, NULL, e, sizeof(e));
    ck_assert_msg(c != NULL, "codec: %s", e);
    return c;
}

bool tkc_ptest_wait(tkc_pipeline_t *pl, bool (*pred)(const tkc_pipeline_metrics_t *, void *),
                    void *arg, int timeout_ms, tkc_pipeline_metrics_t *last)
{
    int64_t deadline = tkc_clock_mono_ms() + timeout_ms;
    for (;;) {
        tkc_pipeline_metrics_t m;
        tkc_pipeline_metrics(pl, &m);
        bool ok = pred(&m, arg);
        bool done = ok || tkc_clock_mono_ms() > deadline;
        if (done && last) {
            *last = m;
        } else {
            tkc_pipeline_metrics_free(&m);
        }
        if (done)
            return ok;
        usleep(10000);
    }
}

static bool ck_reached(const tkc_pipeline_metrics_t *m, void *arg)
{
    return m->checkpoint_ts >= *(const uint64_t *)arg || m->state == TKC_PIPELINE_FAILED;
}

bool tkc_ptest_wait_checkpoint(tkc_pipeline_t *pl, uint64_t ts, int timeout_ms)
{
    tkc_pipeline_metrics_t m;
    bool ok = tkc_ptest_wait(pl, ck_reached, &ts, timeout_ms, &m);
    ok = ok && m.checkpoint_ts >= ts;
    tkc_pipeline_metrics_free(&m);
    return ok;
}

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

long tkc_ptest_rss_kb(void)
{
    return status_kb("VmRSS");
}

long tkc_ptest_hwm_kb(void)
{
    return status_kb("VmHWM");
}

char *tkc_ptest_prefix(const char *what)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "tkc-pl-%s", what);
    return tkc_kafka_test_topic_name(buf);
}
