/*
 * e2e_check.c: the independent checker (see e2e_check.h for what it checks).
 *
 * Design. Two passes over what a consumer reads, so that "before" can be
 * decided by offsets:
 *   1. Read the truth into an array of changes, indexed by (key, commit_ts)
 *      in a hash map, and sorted per key (to know each change's predecessor,
 *      for the old-value check).
 *   2. Read every row-topic partition in offset order. Each RowChange is
 *      matched to its truth change; the first copy records its offset, later
 *      copies are classified as duplicates (restart or re-subscription) and
 *      judged by the rules of the delivery mode. Per key the checker keeps
 *      the last commit_ts and run seen, which is all the order rules need.
 *      Each Watermark is checked for monotonicity and remembered with its
 *      offset.
 *   3. Afterwards, per partition: the delivered truth changes sorted by
 *      commit_ts with a running maximum of their first offsets answer "is
 *      every change <= R before this watermark" with one binary search per
 *      watermark; the same table answers "was every change <= checkpoint C
 *      below the end offsets read when the run ended".
 *
 * Why the run of a message comes from its timestamp: rows carry no producer
 * identity, and the duplicate rules differ across a restart (allowed above
 * the checkpoint) and within a run (only a re-subscription's adjacent copy).
 * CreateTime is stamped by librdkafka in the producing process, so every
 * message of a run is stamped before that process died, and every message
 * of the next run after it was started.
 *
 * The checker trusts nothing the connector says about itself: it uses the
 * truth, the bytes in Kafka and the schemas, plus what the harness observed
 * from outside (process start/end times, the stored checkpoint, end offsets).
 */
#include "integration/e2e_check.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "avro_codec.h"
#include "kafka/kafka_test.h"
#include "util/hashmap.h"
#include "util/mem.h"

#define CONSUME_TIMEOUT_MS 120000

/* One truth change. */
typedef struct change_s {
    uint8_t *key;
    size_t key_len;
    bool is_delete;
    uint32_t value_len;
    uint32_t value_crc;
    uint64_t start_ts;
    uint64_t commit_ts;
    const struct change_s *prev; /* previous version of the key in the truth */
    bool required;               /* commit_ts > start_ts of the feed */
    int32_t partition;           /* -1 until delivered */
    int64_t first_offset;        /* -1 until delivered */
    int first_run;
    int last_run;
    uint32_t copies;
} change_t;

/* Per key, while reading the row topic. */
typedef struct key_state_s {
    int32_t partition;
    uint64_t last_ts;  /* commit_ts of the last copy of this key read */
    int last_run;
    uint64_t max_ts;   /* highest commit_ts of this key read so far */
} key_state_t;

typedef struct wm_s {
    int64_t offset;
    uint64_t ts;
} wm_t;

typedef struct ctx_s {
    const tkc_e2e_check_input_t *in;
    tkc_e2e_report_t *rep;
    change_t *changes;
    size_t n_changes;
    tkc_hashmap_t *by_change; /* key || commit_ts (BE) -> change_t* */
    tkc_hashmap_t *keys;      /* key -> key_state_t* */
    tkc_avro_codec_t *codec;
    wm_t *wms[TKC_E2E_MAX_PARTITIONS];
    size_t n_wms[TKC_E2E_MAX_PARTITIONS], cap_wms[TKC_E2E_MAX_PARTITIONS];
    uint64_t old_value_mismatch;
} ctx_t;

__attribute__((format(printf, 3, 4))) static void violation(tkc_e2e_report_t *rep,
                                                            uint64_t *counter, const char *fmt,
                                                            ...)
{
    (*counter)++;
    rep->errors++;
    if (rep->n_error_texts >= TKC_E2E_MAX_ERROR_TEXTS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->error_texts[rep->n_error_texts++], sizeof(rep->error_texts[0]), fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 2, 3))) static int setup_error(tkc_e2e_report_t *rep,
                                                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->error_texts[0], sizeof(rep->error_texts[0]), fmt, ap);
    va_end(ap);
    rep->n_error_texts = 1;
    return -1;
}

static void hex_of(const uint8_t *b, size_t n, char *out, size_t out_size)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 2 < out_size; i++) {
        out[o++] = digits[b[i] >> 4];
        out[o++] = digits[b[i] & 15];
    }
    out[o] = 0;
}

static int unhex(const char *s, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(s);
    if (n % 2)
        return -1;
    uint8_t *b = tkc_malloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) {
            tkc_free(b);
            return -1;
        }
        b[i] = (uint8_t)v;
    }
    *out = b;
    *out_len = n / 2;
    return 0;
}

/* The hash key of a change: the key bytes then commit_ts big-endian. */
static size_t change_id(const uint8_t *key, size_t klen, uint64_t commit_ts, uint8_t *buf,
                        size_t cap)
{
    if (klen + 8 > cap)
        return 0;
    memcpy(buf, key, klen);
    for (int i = 0; i < 8; i++)
        buf[klen + (size_t)i] = (uint8_t)(commit_ts >> (56 - 8 * i));
    return klen + 8;
}

static int cmp_key_then_ts(const void *a, const void *b)
{
    const change_t *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return x->commit_ts < y->commit_ts ? -1 : x->commit_ts > y->commit_ts;
}

static json_int_t jint(json_t *o, const char *k, bool *ok)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v)) {
        *ok = false;
        return 0;
    }
    return json_integer_value(v);
}

static int read_truth(ctx_t *cx)
{
    FILE *f = fopen(cx->in->truth_path, "r");
    if (!f)
        return setup_error(cx->rep, "cannot open truth %s", cx->in->truth_path);
    size_t cap = 1024;
    cx->changes = tkc_calloc(cap, sizeof(change_t));
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    size_t lineno = 0;
    int rc = 0;
    while ((len = getline(&line, &line_cap, f)) > 0) {
        lineno++;
        if (line[0] == '\n')
            continue;
        json_error_t jerr;
        json_t *o = json_loadb(line, (size_t)len, 0, &jerr);
        bool ok = o != NULL;
        change_t c = {.partition = -1, .first_offset = -1, .first_run = -1, .last_run = -1};
        const char *key = ok ? json_string_value(json_object_get(o, "key")) : NULL;
        const char *op = ok ? json_string_value(json_object_get(o, "op")) : NULL;
        if (ok) {
            c.value_len = (uint32_t)jint(o, "value_len", &ok);
            c.value_crc = (uint32_t)jint(o, "value_crc32", &ok);
            c.start_ts = (uint64_t)jint(o, "start_ts", &ok);
            c.commit_ts = (uint64_t)jint(o, "commit_ts", &ok);
        }
        if (!ok || !key || !op || unhex(key, &c.key, &c.key_len) != 0) {
            json_decref(o);
            rc = setup_error(cx->rep, "truth %s:%zu: unreadable line", cx->in->truth_path,
                             lineno);
            break;
        }
        c.is_delete = strcmp(op, "delete") == 0;
        c.required = c.commit_ts > cx->in->start_ts;
        json_decref(o);
        if (cx->n_changes == cap) {
            cap *= 2;
            cx->changes = tkc_realloc(cx->changes, cap * sizeof(change_t));
        }
        cx->changes[cx->n_changes++] = c;
    }
    free(line);
    fclose(f);
    if (rc)
        return rc;

    /* Sorted by key then commit_ts: the predecessor of a change is its left
     * neighbour of the same key. The array does not move after this, so the
     * map can point into it. */
    qsort(cx->changes, cx->n_changes, sizeof(change_t), cmp_key_then_ts);
    cx->by_change = tkc_hashmap_new();
    for (size_t i = 0; i < cx->n_changes; i++) {
        change_t *c = &cx->changes[i];
        if (i > 0 && cx->changes[i - 1].key_len == c->key_len &&
            memcmp(cx->changes[i - 1].key, c->key, c->key_len) == 0)
            c->prev = &cx->changes[i - 1];
        uint8_t id[600];
        size_t idl = change_id(c->key, c->key_len, c->commit_ts, id, sizeof(id));
        if (idl == 0)
            return setup_error(cx->rep, "truth key longer than %zu bytes", sizeof(id) - 8);
        if (tkc_hashmap_put(cx->by_change, id, idl, c) != NULL) {
            char hex[128];
            hex_of(c->key, c->key_len, hex, sizeof(hex));
            return setup_error(cx->rep, "truth has key %s at commit_ts %" PRIu64 " twice", hex,
                               c->commit_ts);
        }
        if (c->required) {
            cx->rep->truth_changes++;
            if (c->commit_ts > cx->rep->truth_max_commit_ts)
                cx->rep->truth_max_commit_ts = c->commit_ts;
        }
    }
    return 0;
}

/* The run a message belongs to, from its CreateTime. */
static int run_of(const tkc_e2e_check_input_t *in, int64_t ts_ms)
{
    for (size_t r = 0; r < in->n_runs; r++)
        if (!in->runs[r].ended || ts_ms <= in->runs[r].end_ms)
            return (int)r;
    return in->n_runs ? (int)in->n_runs - 1 : 0;
}

/* The checkpoint a run resumed from, as stored when the run before it ended. */
static uint64_t resume_ckpt(const tkc_e2e_check_input_t *in, int run)
{
    return run > 0 ? in->runs[run - 1].ckpt_at_end : 0;
}

static void on_row(ctx_t *cx, const tkc_kafka_test_msg_t *m, int run,
                   const tkc_avro_row_change_t *rc)
{
    tkc_e2e_report_t *rep = cx->rep;
    const tkc_row_t *row = rc->row;
    char hex[160];
    hex_of(row->key, row->key_len, hex, sizeof(hex));
    rep->changes_checked++;

    uint8_t id[600];
    size_t idl = change_id(row->key, row->key_len, row->commit_ts, id, sizeof(id));
    change_t *c = idl ? tkc_hashmap_get(cx->by_change, id, idl) : NULL;
    if (!c) {
        violation(rep, &rep->invented,
                  "invented: p%d@%" PRId64 " key %s commit_ts %" PRIu64 " is not in the truth",
                  m->partition, m->offset, hex, row->commit_ts);
        return;
    }
    bool is_delete = row->op == TKC_ROW_OP_DELETE;
    uint32_t crc = (uint32_t)crc32(0L, row->value, (uInt)row->value_len);
    if (is_delete != c->is_delete || row->start_ts != c->start_ts ||
        (!is_delete && (row->value_len != c->value_len || crc != c->value_crc)))
        violation(rep, &rep->mismatched,
                  "mismatch: p%d@%" PRId64 " key %s commit_ts %" PRIu64
                  ": got op=%s start_ts=%" PRIu64 " len=%zu crc=%08x, truth op=%s start_ts=%" PRIu64
                  " len=%u crc=%08x",
                  m->partition, m->offset, hex, row->commit_ts, tkc_row_op_name(row->op),
                  row->start_ts, row->value_len, crc, c->is_delete ? "DELETE" : "PUT", c->start_ts,
                  c->value_len, c->value_crc);
    /* The old value, when the connector says it has one, must be the value of
     * the key's previous version (empty if that was a delete). Only checked
     * where the truth knows the previous version. */
    if (row->has_old_value && c->prev) {
        uint32_t ocrc = (uint32_t)crc32(0L, row->old_value, (uInt)row->old_value_len);
        uint32_t want_len = c->prev->is_delete ? 0 : c->prev->value_len;
        uint32_t want_crc = c->prev->is_delete ? 0 : c->prev->value_crc;
        if (row->old_value_len != want_len || ocrc != want_crc)
            violation(rep, &cx->old_value_mismatch,
                      "old value: p%d@%" PRId64 " key %s commit_ts %" PRIu64
                      ": len=%zu crc=%08x, previous version (commit_ts %" PRIu64
                      ") len=%u crc=%08x",
                      m->partition, m->offset, hex, row->commit_ts, row->old_value_len, ocrc,
                      c->prev->commit_ts, want_len, want_crc);
    }

    key_state_t *ks = tkc_hashmap_get(cx->keys, row->key, row->key_len);
    if (!ks) {
        ks = tkc_calloc(1, sizeof(*ks));
        ks->partition = m->partition;
        ks->last_run = -1;
        tkc_hashmap_put(cx->keys, row->key, row->key_len, ks);
    } else if (ks->partition != m->partition) {
        violation(rep, &rep->wrong_partition,
                  "partition: key %s in p%d and p%d", hex, ks->partition, m->partition);
    }
    if (c->partition < 0)
        c->partition = m->partition;

    /* within one run, a key's commit_ts never goes back */
    if (ks->last_run == run && row->commit_ts < ks->last_ts)
        violation(rep, &rep->order_violations,
                  "order: p%d@%" PRId64 " key %s commit_ts %" PRIu64
                  " after %" PRIu64 " in the same run %d",
                  m->partition, m->offset, hex, row->commit_ts, ks->last_ts, run);

    if (c->copies == 0) {
        /* a change seen for the first time after a later change of its key:
         * it was missing when the later one was delivered */
        if (ks->last_run >= 0 && row->commit_ts < ks->max_ts)
            violation(rep, &rep->order_violations,
                      "order: p%d@%" PRId64 " key %s commit_ts %" PRIu64
                      " first delivered after its later change %" PRIu64,
                      m->partition, m->offset, hex, row->commit_ts, ks->max_ts);
        c->first_offset = m->offset;
        c->first_run = run;
        rep->distinct_delivered++;
    } else {
        rep->duplicates++;
        if (cx->in->exactly_once) {
            violation(rep, &rep->bad_duplicates,
                      "duplicate (exactly-once): p%d@%" PRId64 " key %s commit_ts %" PRIu64
                      " copy %u, first at offset %" PRId64,
                      m->partition, m->offset, hex, row->commit_ts, c->copies + 1,
                      c->first_offset);
        } else if (c->last_run == run) {
            /* a re-subscription inside one run re-sends changes above the
             * range's resolved ts; they were not released yet, so the twin
             * comes right after its original and before any watermark of
             * this run that covers it */
            rep->dup_resubscribe++;
            bool adjacent = ks->last_run == run && ks->last_ts == row->commit_ts;
            bool covered = false;
            for (size_t i = cx->n_wms[m->partition]; i > 0; i--) {
                const wm_t *w = &cx->wms[m->partition][i - 1];
                if (w->offset < c->first_offset)
                    break;
                if (w->ts >= row->commit_ts) {
                    covered = true;
                    break;
                }
            }
            if (!adjacent || covered)
                violation(rep, &rep->bad_duplicates,
                          "duplicate in run %d: p%d@%" PRId64 " key %s commit_ts %" PRIu64
                          " (first at %" PRId64 ")%s%s",
                          run, m->partition, m->offset, hex, row->commit_ts, c->first_offset,
                          adjacent ? "" : ", a later change of the key came between",
                          covered ? ", after a watermark that covers it" : "");
        } else {
            rep->dup_restart++;
            uint64_t ck = resume_ckpt(cx->in, run);
            if (row->commit_ts <= ck)
                violation(rep, &rep->bad_duplicates,
                          "duplicate after restart: p%d@%" PRId64 " key %s commit_ts %" PRIu64
                          " <= checkpoint %" PRIu64 " stored when run %d ended",
                          m->partition, m->offset, hex, row->commit_ts, ck, run - 1);
        }
    }
    c->copies++;
    c->last_run = run;
    ks->last_ts = row->commit_ts;
    ks->last_run = run;
    if (row->commit_ts > ks->max_ts)
        ks->max_ts = row->commit_ts;
}

/* Monotonicity of one watermark; *last / *last_run carry the state of its
 * partition (or feed). */
static void check_wm_order(ctx_t *cx, const char *where, int32_t partition, int64_t offset,
                           int run, uint64_t ts, uint64_t *last, int *last_run, uint64_t *max)
{
    tkc_e2e_report_t *rep = cx->rep;
    if (cx->in->exactly_once ? ts < *max : (*last_run == run && ts < *last))
        violation(rep, &rep->watermark_regressions,
                  "watermark: %s p%d@%" PRId64 " R=%" PRIu64 " after R=%" PRIu64, where,
                  partition, offset, ts, cx->in->exactly_once ? *max : *last);
    uint64_t ck = resume_ckpt(cx->in, run);
    if (ts < ck)
        violation(rep, &rep->watermark_regressions,
                  "watermark: %s p%d@%" PRId64 " R=%" PRIu64
                  " below the checkpoint %" PRIu64 " run %d resumed from",
                  where, partition, offset, ts, ck, run);
    *last = ts;
    *last_run = run;
    if (ts > *max)
        *max = ts;
}

static int read_row_topic(ctx_t *cx)
{
    const tkc_e2e_check_input_t *in = cx->in;
    tkc_e2e_report_t *rep = cx->rep;
    tkc_kafka_test_msgs_t msgs;
    char err[512];
    if (tkc_kafka_test_consume_all(in->bootstrap, in->row_topic,
                                   in->exactly_once ? TKC_KAFKA_TEST_READ_COMMITTED
                                                    : TKC_KAFKA_TEST_READ_UNCOMMITTED,
                                   CONSUME_TIMEOUT_MS, &msgs, err, sizeof(err)) != 0)
        return setup_error(rep, "consume %s: %s", in->row_topic, err);

    uint64_t last[TKC_E2E_MAX_PARTITIONS] = {0}, max[TKC_E2E_MAX_PARTITIONS] = {0};
    int last_run[TKC_E2E_MAX_PARTITIONS];
    for (int p = 0; p < TKC_E2E_MAX_PARTITIONS; p++)
        last_run[p] = -1;
    for (size_t i = 0; i < msgs.count; i++) {
        const tkc_kafka_test_msg_t *m = &msgs.msgs[i];
        if (m->partition < 0 || m->partition >= TKC_E2E_MAX_PARTITIONS)
            continue;
        int run = run_of(in, m->timestamp);
        tkc_avro_message_t am = {0};
        if (!m->value || tkc_avro_codec_decode(cx->codec, m->value, m->value_len, &am, err,
                                               sizeof(err)) != TKC_ERR_OK) {
            violation(rep, &rep->undecodable, "undecodable: %s p%d@%" PRId64 ": %s",
                      in->row_topic, m->partition, m->offset, m->value ? err : "null value");
            continue;
        }
        if (am.kind == TKC_AVRO_MSG_ROW_CHANGE) {
            on_row(cx, m, run, &am.row_change);
        } else if (am.kind == TKC_AVRO_MSG_WATERMARK) {
            rep->row_topic_watermarks++;
            if (strcmp(am.watermark.feed_id, in->feed_id) != 0)
                violation(rep, &rep->undecodable, "watermark of feed %s in %s",
                          am.watermark.feed_id, in->row_topic);
            check_wm_order(cx, in->row_topic, m->partition, m->offset, run,
                           am.watermark.resolved_ts, &last[m->partition], &last_run[m->partition],
                           &max[m->partition]);
            int32_t p = m->partition;
            if (cx->n_wms[p] == cx->cap_wms[p]) {
                cx->cap_wms[p] = cx->cap_wms[p] ? 2 * cx->cap_wms[p] : 256;
                cx->wms[p] = tkc_realloc(cx->wms[p], cx->cap_wms[p] * sizeof(wm_t));
            }
            cx->wms[p][cx->n_wms[p]++] = (wm_t){m->offset, am.watermark.resolved_ts};
        } else {
            violation(rep, &rep->undecodable, "%s p%d@%" PRId64 ": a %s in a row topic",
                      in->row_topic, m->partition, m->offset, tkc_avro_msg_kind_name(am.kind));
        }
        tkc_avro_message_clear(&am);
    }
    tkc_kafka_test_msgs_free(&msgs);

    /* every partition's last watermark covers the newest commit */
    for (int p = 0; p < in->partitions && p < TKC_E2E_MAX_PARTITIONS; p++)
        if (max[p] < rep->truth_max_commit_ts)
            violation(rep, &rep->not_caught_up,
                      "not caught up: %s p%d highest watermark %" PRIu64
                      " < newest commit %" PRIu64,
                      in->row_topic, p, max[p], rep->truth_max_commit_ts);
    return 0;
}

static int cmp_change_ptr_ts(const void *a, const void *b)
{
    const change_t *x = *(change_t *const *)a, *y = *(change_t *const *)b;
    return x->commit_ts < y->commit_ts ? -1 : x->commit_ts > y->commit_ts;
}

/* Index of the first element with commit_ts > ts. */
static size_t upper_bound(change_t **v, size_t n, uint64_t ts)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid]->commit_ts <= ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void check_coverage(ctx_t *cx)
{
    const tkc_e2e_check_input_t *in = cx->in;
    tkc_e2e_report_t *rep = cx->rep;
    for (int32_t p = 0; p < in->partitions && p < TKC_E2E_MAX_PARTITIONS; p++) {
        size_t n = 0;
        change_t **v = tkc_malloc((cx->n_changes + 1) * sizeof(*v));
        for (size_t i = 0; i < cx->n_changes; i++)
            if (cx->changes[i].required && cx->changes[i].partition == p)
                v[n++] = &cx->changes[i];
        qsort(v, n, sizeof(*v), cmp_change_ptr_ts);
        /* argmax[i]: the change among v[0..i] delivered last (highest first offset) */
        size_t *argmax = tkc_malloc((n + 1) * sizeof(*argmax));
        for (size_t i = 0; i < n; i++)
            argmax[i] = (i > 0 && v[argmax[i - 1]]->first_offset > v[i]->first_offset)
                            ? argmax[i - 1]
                            : i;

        for (size_t w = 0; w < cx->n_wms[p]; w++) {
            const wm_t *wm = &cx->wms[p][w];
            size_t k = upper_bound(v, n, wm->ts);
            if (k == 0)
                continue;
            const change_t *late = v[argmax[k - 1]];
            if (late->first_offset > wm->offset) {
                char hex[160];
                hex_of(late->key, late->key_len, hex, sizeof(hex));
                violation(rep, &rep->watermark_early,
                          "watermark early: %s p%d@%" PRId64 " R=%" PRIu64
                          " but key %s commit_ts %" PRIu64 " first at offset %" PRId64,
                          in->row_topic, p, wm->offset, wm->ts, hex, late->commit_ts,
                          late->first_offset);
            }
        }

        /* when a run ended, everything <= the stored checkpoint was in Kafka */
        for (size_t r = 0; r < in->n_runs; r++) {
            const tkc_e2e_run_t *run = &in->runs[r];
            if (!run->ended || run->ckpt_at_end == 0 || run->end_offsets[p] < 0)
                continue;
            size_t k = upper_bound(v, n, run->ckpt_at_end);
            if (k == 0)
                continue;
            const change_t *late = v[argmax[k - 1]];
            if (late->first_offset >= run->end_offsets[p]) {
                char hex[160];
                hex_of(late->key, late->key_len, hex, sizeof(hex));
                violation(rep, &rep->checkpoint_violations,
                          "checkpoint ahead of Kafka: run %zu ended with checkpoint %" PRIu64
                          " and p%d end offset %" PRId64 ", but key %s commit_ts %" PRIu64
                          " arrived later at offset %" PRId64,
                          r, run->ckpt_at_end, p, run->end_offsets[p], hex, late->commit_ts,
                          late->first_offset);
            }
        }
        tkc_free(argmax);
        tkc_free(v);
    }
}

static int read_watermark_topic(ctx_t *cx)
{
    const tkc_e2e_check_input_t *in = cx->in;
    tkc_e2e_report_t *rep = cx->rep;
    tkc_kafka_test_msgs_t msgs;
    char err[512];
    if (tkc_kafka_test_consume_all(in->bootstrap, in->watermark_topic,
                                   in->exactly_once ? TKC_KAFKA_TEST_READ_COMMITTED
                                                    : TKC_KAFKA_TEST_READ_UNCOMMITTED,
                                   CONSUME_TIMEOUT_MS, &msgs, err, sizeof(err)) != 0)
        return setup_error(rep, "consume %s: %s", in->watermark_topic, err);
    uint64_t last = 0, max = 0;
    int last_run = -1;
    for (size_t i = 0; i < msgs.count; i++) {
        const tkc_kafka_test_msg_t *m = &msgs.msgs[i];
        tkc_avro_watermark_t wm = {0};
        if (!m->value || tkc_avro_codec_decode_watermark(cx->codec, m->value, m->value_len, &wm,
                                                         err, sizeof(err)) != TKC_ERR_OK) {
            violation(rep, &rep->undecodable, "undecodable: %s p%d@%" PRId64, in->watermark_topic,
                      m->partition, m->offset);
            continue;
        }
        if (strcmp(wm.feed_id, in->feed_id) == 0) {
            rep->watermark_topic_watermarks++;
            check_wm_order(cx, in->watermark_topic, m->partition, m->offset,
                           run_of(in, m->timestamp), wm.resolved_ts, &last, &last_run, &max);
        }
        tkc_avro_watermark_clear(&wm);
    }
    tkc_kafka_test_msgs_free(&msgs);
    rep->final_watermark = max;
    if (max < rep->truth_max_commit_ts)
        violation(rep, &rep->not_caught_up,
                  "not caught up: highest watermark %" PRIu64 " < newest commit %" PRIu64, max,
                  rep->truth_max_commit_ts);
    return 0;
}

static int read_checkpoints(ctx_t *cx)
{
    const tkc_e2e_check_input_t *in = cx->in;
    tkc_e2e_report_t *rep = cx->rep;
    uint64_t final = 0;
    if (in->checkpoint_topic) {
        tkc_kafka_test_msgs_t msgs;
        char err[512];
        if (tkc_kafka_test_consume_all(in->bootstrap, in->checkpoint_topic,
                                       in->exactly_once ? TKC_KAFKA_TEST_READ_COMMITTED
                                                        : TKC_KAFKA_TEST_READ_UNCOMMITTED,
                                       CONSUME_TIMEOUT_MS, &msgs, err, sizeof(err)) != 0)
            return setup_error(rep, "consume %s: %s", in->checkpoint_topic, err);
        for (size_t i = 0; i < msgs.count; i++) {
            const tkc_kafka_test_msg_t *m = &msgs.msgs[i];
            if (!m->key || strcmp(m->key, in->feed_id) != 0 || !m->value)
                continue;
            tkc_avro_checkpoint_t ck = {0};
            if (tkc_avro_codec_decode_checkpoint(cx->codec, m->value, m->value_len, &ck, err,
                                                 sizeof(err)) != TKC_ERR_OK) {
                violation(rep, &rep->undecodable, "undecodable checkpoint at offset %" PRId64,
                          m->offset);
                continue;
            }
            rep->checkpoints++;
            if (ck.checkpoint_ts < final)
                violation(rep, &rep->checkpoint_violations,
                          "checkpoint went back: %" PRIu64 " after %" PRIu64 " (offset %" PRId64
                          ", epoch %" PRIu64 ")",
                          ck.checkpoint_ts, final, m->offset, ck.epoch);
            final = ck.checkpoint_ts;
            tkc_avro_checkpoint_clear(&ck);
        }
        tkc_kafka_test_msgs_free(&msgs);
    } else {
        FILE *f = fopen(in->checkpoint_file, "r");
        char buf[512] = "";
        const char *p = NULL;
        if (f) {
            if (!fgets(buf, sizeof(buf), f))
                buf[0] = 0;
            fclose(f);
            p = strstr(buf, " ts=");
        }
        if (!p || sscanf(p, " ts=%" SCNu64, &final) != 1)
            violation(rep, &rep->checkpoint_violations, "checkpoint file %s unreadable: \"%s\"",
                      in->checkpoint_file, buf);
        else
            rep->checkpoints = 1;
    }
    for (size_t r = 1; r < in->n_runs; r++)
        if (in->runs[r].ended && in->runs[r].ckpt_at_end < in->runs[r - 1].ckpt_at_end)
            violation(rep, &rep->checkpoint_violations,
                      "checkpoint went back between runs: %" PRIu64 " after run %zu, %" PRIu64
                      " after run %zu",
                      in->runs[r - 1].ckpt_at_end, r - 1, in->runs[r].ckpt_at_end, r);
    rep->final_checkpoint = final;
    if (final < rep->truth_max_commit_ts)
        violation(rep, &rep->not_caught_up,
                  "not caught up: final checkpoint %" PRIu64 " < newest commit %" PRIu64, final,
                  rep->truth_max_commit_ts);
    return 0;
}

static void check_lost(ctx_t *cx)
{
    for (size_t i = 0; i < cx->n_changes; i++) {
        const change_t *c = &cx->changes[i];
        if (!c->required || c->copies > 0)
            continue;
        char hex[160];
        hex_of(c->key, c->key_len, hex, sizeof(hex));
        violation(cx->rep, &cx->rep->lost,
                  "lost: key %s commit_ts %" PRIu64 " (start_ts %" PRIu64 ", %s)", hex,
                  c->commit_ts, c->start_ts, c->is_delete ? "delete" : "put");
    }
}

int tkc_e2e_check(const tkc_e2e_check_input_t *in, tkc_e2e_report_t *rep)
{
    memset(rep, 0, sizeof(*rep));
    rep->runs = in->n_runs;
    ctx_t cx = {.in = in, .rep = rep};
    char err[512];
    int rc = -1;
    cx.keys = tkc_hashmap_new();
    cx.codec = tkc_avro_codec_new(in->schema_dir, NULL, err, sizeof(err));
    if (!cx.codec) {
        setup_error(rep, "codec: %s", err);
        goto out;
    }
    if (read_truth(&cx) != 0 || read_row_topic(&cx) != 0)
        goto out;
    check_coverage(&cx);
    check_lost(&cx);
    if (read_watermark_topic(&cx) != 0 || read_checkpoints(&cx) != 0)
        goto out;
    /* the old-value findings count as mismatches */
    rep->mismatched += cx.old_value_mismatch;
    rc = 0;
out:
    for (int p = 0; p < TKC_E2E_MAX_PARTITIONS; p++)
        tkc_free(cx.wms[p]);
    tkc_hashmap_destroy(cx.keys, tkc_free);
    tkc_hashmap_destroy(cx.by_change, NULL);
    for (size_t i = 0; i < cx.n_changes; i++)
        tkc_free(cx.changes[i].key);
    tkc_free(cx.changes);
    tkc_avro_codec_destroy(cx.codec);
    return rc;
}

void tkc_e2e_report_print(const tkc_e2e_report_t *rep, FILE *f)
{
    fprintf(f,
            "e2e check: runs=%zu truth_changes=%" PRIu64 " changes_checked=%" PRIu64
            " distinct=%" PRIu64 " duplicates=%" PRIu64 " (restart=%" PRIu64
            " resubscribe=%" PRIu64 ") row_topic_watermarks=%" PRIu64
            " watermark_topic=%" PRIu64 " checkpoints=%" PRIu64 "\n"
            "e2e check: newest_commit=%" PRIu64 " final_watermark=%" PRIu64
            " final_checkpoint=%" PRIu64 "\n"
            "e2e check: violations=%" PRIu64 " lost=%" PRIu64 " invented=%" PRIu64
            " mismatched=%" PRIu64 " wrong_partition=%" PRIu64 " order=%" PRIu64
            " bad_duplicates=%" PRIu64 " watermark_regressions=%" PRIu64
            " watermark_early=%" PRIu64 " checkpoint=%" PRIu64 " not_caught_up=%" PRIu64
            " undecodable=%" PRIu64 "\n",
            rep->runs, rep->truth_changes, rep->changes_checked, rep->distinct_delivered,
            rep->duplicates, rep->dup_restart, rep->dup_resubscribe, rep->row_topic_watermarks,
            rep->watermark_topic_watermarks, rep->checkpoints, rep->truth_max_commit_ts,
            rep->final_watermark, rep->final_checkpoint, rep->errors, rep->lost, rep->invented,
            rep->mismatched, rep->wrong_partition, rep->order_violations, rep->bad_duplicates,
            rep->watermark_regressions, rep->watermark_early, rep->checkpoint_violations,
            rep->not_caught_up, rep->undecodable);
    for (size_t i = 0; i < rep->n_error_texts; i++)
        fprintf(f, "e2e check:   %s\n", rep->error_texts[i]);
    if (rep->errors > rep->n_error_texts)
        fprintf(f, "e2e check:   ... and %" PRIu64 " more\n", rep->errors - rep->n_error_texts);
    fflush(f);
}
