/*
 * fuzz_changedata.c: fuzz target (1). Bytes -> Cdcpb__ChangeDataEvent
 * (protobuf-c unpack) -> the feed's real per-region handling,
 * tkc_feed_region_on_message() in connector/src/feed_region.c, with its real
 * matcher, stream table and registrations, on a minimal worker and stream
 * built here without gRPC calls. The RESOLVED events it emits go into a
 * tkc_frontier as the pipeline would.
 *
 * Why a hand-built worker: feed_worker.c owns completion queues and
 * threads; feed_region.c only needs the worker's region map, the stream
 * object and a handful of worker callbacks (feed_int.h). Those callbacks
 * are defined below with the real ones' effect on the region (fail_region
 * resets it and hands it back; stream_failed marks the stream failed) and
 * the harness plays the scheduler: a handed-back region is registered
 * again from its resolved ts, a failed stream is replaced by a new one.
 *
 * Input: byte 0 sets up the feed (bit 0: V2 stream, bits 1-2: 1..4
 * regions); then records of
 *     [u8 ctl][u16 len, big-endian][len bytes: a ChangeDataEvent]
 * ctl bits 0-3 advance the fake clock by that many 100 ms steps. Regions
 * are 1..n, covering the key space at raw split keys "b", "c", "d" (in
 * encoded form, as registrations carry them); the span start ts is 100 and
 * every region starts at checkpoint 1000. V1 request ids are 1, 2, ... in
 * registration order; V2 uses span + 1 = 1.
 *
 * Invariants checked (abort on violation):
 *   - every emitted row is PUT or DELETE; a PUT's value is the value of a
 *     PREWRITE (or COMMITTED row) with the same key and start ts that was
 *     in the input; commit_ts is above every resolved ts already reported
 *     for its region;
 *   - a RESOLVED event's ts is never below an earlier one for the same
 *     region, the frontier's minimum never goes backwards and its internal
 *     check holds;
 *   - no crash, no leak, no UB (sanitizers).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include <grpc/byte_buffer.h>

#include "feed_int.h"
#include "frontier.h"
#include "fuzz_target.h"
#include "util/keycodec.h"
#include "util/log.h"
#include "util/mem.h"

#define MAX_REGIONS 4
#define MAX_SEEN 4096
#define SPAN_START_TS 100
#define CHECKPOINT_TS 1000

/* ===== what the input offered: (key, start_ts) -> value ===== */

typedef struct seen_s {
    const uint8_t *key, *value; /* borrowed from an unpacked message kept alive */
    size_t key_len, value_len;
    uint64_t start_ts;
} seen_t;

typedef struct harness_s {
    tkc_feed_t f;
    feed_worker_t w;
    feed_stream_t *fs;
    uint64_t next_stream_id;
    feed_region_t *regs[MAX_REGIONS];
    bool pending[MAX_REGIONS]; /* handed back, waiting to be registered */
    size_t n_regs;
    bool v2, fatal;
    uint64_t max_resolved[MAX_REGIONS];
    tkc_frontier_t *frontier;
    uint64_t frontier_min;
    seen_t seen[MAX_SEEN];
    size_t n_seen;
    size_t rows, resolved_events;
} harness_t;

static harness_t *H; /* the worker callbacks below find the harness here */

/* ===== the worker callbacks feed_region.c calls (feed_int.h) ===== */

static int region_index(const feed_region_t *r)
{
    for (size_t i = 0; i < H->n_regs; i++)
        if (H->regs[i] == r)
            return (int)i;
    FUZZ_ASSERT(!"region not owned by the harness");
    return -1;
}

/* memcmp's arguments must not be NULL even for 0 bytes (protobuf-c leaves
 * empty fields NULL) */
static bool bytes_eq(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

static bool seen_value(const tkc_row_t *row)
{
    for (size_t i = 0; i < H->n_seen; i++) {
        const seen_t *s = &H->seen[i];
        if (s->start_ts == row->start_ts && bytes_eq(s->key, s->key_len, row->key, row->key_len) &&
            bytes_eq(s->value, s->value_len, row->value, row->value_len))
            return true;
    }
    return false;
}

static void check_rows(const tkc_feed_event_t *ev)
{
    size_t n = 0;
    for (const tkc_row_t *row = ev->rows; row; row = row->next, n++) {
        FUZZ_ASSERT(row->op == TKC_ROW_OP_PUT || row->op == TKC_ROW_OP_DELETE);
        FUZZ_ASSERT(row->span_index == ev->span_index);
        FUZZ_ASSERT(row->region_id >= 1 && row->region_id <= H->n_regs);
        FUZZ_ASSERT(row->commit_ts > H->max_resolved[row->region_id - 1]);
        FUZZ_ASSERT(row->commit_ts > SPAN_START_TS);
        if (row->op == TKC_ROW_OP_PUT && H->n_seen < MAX_SEEN)
            FUZZ_ASSERT(seen_value(row));
    }
    FUZZ_ASSERT(n == ev->n_rows && n > 0);
    H->rows += n;
}

static void check_resolved(const tkc_feed_event_t *ev)
{
    FUZZ_ASSERT(ev->n_regions > 0);
    for (size_t i = 0; i < ev->n_regions; i++) {
        const tkc_feed_region_range_t *rr = &ev->regions[i];
        FUZZ_ASSERT(rr->region_id >= 1 && rr->region_id <= H->n_regs);
        uint64_t *max = &H->max_resolved[rr->region_id - 1];
        FUZZ_ASSERT(ev->ts > *max); /* only regions that advanced are listed */
        *max = ev->ts;
        FUZZ_ASSERT(tkc_frontier_forward(H->frontier, ev->span_index, rr->region_id, rr->start,
                                         rr->start_len, rr->end, rr->end_len,
                                         ev->ts) == TKC_ERR_OK);
    }
    uint64_t min = tkc_frontier_min(H->frontier);
    FUZZ_ASSERT(min >= H->frontier_min);
    H->frontier_min = min;
    FUZZ_ASSERT(tkc_frontier_check(H->frontier));
    H->resolved_events++;
}

void tkc_feed_worker_emit(feed_worker_t *w, tkc_feed_event_t *ev)
{
    (void)w;
    if (ev->kind == TKC_FEED_EVENT_ROWS)
        check_rows(ev);
    else if (ev->kind == TKC_FEED_EVENT_RESOLVED)
        check_resolved(ev);
    else
        FUZZ_ASSERT(!"unexpected event kind from a region");
    tkc_feed_event_destroy(ev);
}

void tkc_feed_worker_fail_region(feed_worker_t *w, feed_region_t *r, tkc_feed_region_err_t kind)
{
    (void)w;
    FUZZ_ASSERT(kind >= 0 && kind < TKC_FEED_REGION_ERR_COUNT);
    r->fail = kind;
    tkc_feed_region_reset(r);
    H->pending[region_index(r)] = true;
}

void tkc_feed_worker_flush_failures(feed_worker_t *w)
{
    (void)w; /* failures are picked up by the harness after each message */
}

static void region_key(const feed_region_t *r, uint8_t k[12])
{
    memcpy(k, &r->span, 4);
    memcpy(k + 4, &r->region_id, 8);
}

void tkc_feed_worker_region_put(feed_worker_t *w, feed_region_t *r)
{
    uint8_t k[12];
    region_key(r, k);
    tkc_hashmap_put(w->regions, k, sizeof(k), r);
}

void tkc_feed_worker_region_del(feed_worker_t *w, feed_region_t *r)
{
    uint8_t k[12];
    region_key(r, k);
    if (tkc_hashmap_get(w->regions, k, sizeof(k)) == r)
        tkc_hashmap_remove(w->regions, k, sizeof(k));
}

void tkc_feed_worker_stream_failed(feed_worker_t *w, feed_stream_t *fs)
{
    (void)w;
    fs->failed = true; /* the harness replaces the stream after this message */
}

void tkc_feed_stream_send(feed_stream_t *fs, grpc_byte_buffer *bb)
{
    (void)fs;
    FUZZ_ASSERT(bb != NULL);
    grpc_byte_buffer_destroy(bb);
}

void tkc_feed_set_fatal(tkc_feed_t *f, tkc_err_t err, const char *fmt, ...)
{
    (void)f;
    (void)err;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    FUZZ_ASSERT(msg[0] != '\0');
    H->fatal = true;
}

/* feed.c's name table is not linked in; the log lines only need a name. */
const char *tkc_feed_region_err_name(int kind)
{
    return kind >= 0 && kind < TKC_FEED_REGION_ERR_COUNT ? "region_error" : "?";
}

/* ===== the harness: scheduler and stream lifecycle ===== */

static void stream_open(int64_t now)
{
    feed_stream_t *fs = tkc_calloc(1, sizeof(*fs));
    fs->w = &H->w;
    fs->v2 = H->v2;
    fs->store_id = 1;
    fs->by_region = tkc_hashmap_new_fixed(sizeof(uint64_t)); /* as feed_stream.c */
    FUZZ_ASSERT(tkc_stream_table_create(H->w.tbl, 1, now, NULL, NULL, &fs->st, NULL) ==
                TKC_STREAM_OK);
    fs->id = tkc_stream_id(fs->st);
    H->fs = fs;
}

/* Takes every registration off the stream (as a retire does), frees it. */
static void stream_close(int64_t now)
{
    feed_stream_t *fs = H->fs;
    for (size_t i = 0; i < H->n_regs; i++) {
        feed_region_t *r = H->regs[i];
        if (r->fs == fs) {
            tkc_feed_region_detach(&H->w, r);
            tkc_feed_region_reset(r);
            H->pending[i] = true;
        }
    }
    FUZZ_ASSERT(tkc_stream_region_count(fs->st) == 0);
    FUZZ_ASSERT(tkc_hashmap_count(fs->by_region) == 0);
    tkc_stream_table_retire(H->w.tbl, fs->st, now, NULL, NULL);
    tkc_stream_release(fs->st);
    tkc_hashmap_destroy(fs->by_region, NULL);
    tkc_free(fs);
    H->fs = NULL;
}

static void register_pending(int64_t now)
{
    for (size_t i = 0; i < H->n_regs && !H->fatal; i++) {
        if (!H->pending[i])
            continue;
        feed_region_t *r = H->regs[i];
        /* the scheduler re-subscribes from the last resolved ts */
        r->checkpoint_ts = r->resolved_ts;
        feed_reg_result_t res = tkc_feed_region_register(&H->w, H->fs, r, now);
        FUZZ_ASSERT(res == FEED_REG_OK);
        H->pending[i] = false;
    }
}

static void setup(uint8_t cfg)
{
    memset(H, 0, sizeof(*H));
    H->v2 = cfg & 1;
    H->n_regs = 1 + ((cfg >> 1) & 3);
    H->f.ticdc_version = "8.5.0";
    H->f.cluster_id = 7;
    H->f.start_ts = SPAN_START_TS;
    H->w.f = &H->f;
    H->w.tbl = tkc_stream_table_new(0, NULL);
    H->w.regions = tkc_hashmap_new_fixed(12); /* as feed_worker.c */

    static const char splits[] = "bcd";
    for (size_t i = 0; i < H->n_regs; i++) {
        uint8_t s[16], e[16];
        size_t sl = 0, el = 0;
        if (i > 0) {
            tkc_keycodec_encode((const uint8_t *)&splits[i - 1], 1, s);
            sl = tkc_keycodec_encoded_len(1);
        }
        if (i + 1 < H->n_regs) {
            tkc_keycodec_encode((const uint8_t *)&splits[i], 1, e);
            el = tkc_keycodec_encoded_len(1);
        }
        H->regs[i] = tkc_feed_region_new(0, i + 1, 1, 1, s, sl, e, el, CHECKPOINT_TS);
        H->regs[i]->store_id = 1;
        H->pending[i] = true;
        H->max_resolved[i] = 0;
    }
    tkc_keyrange_t span = {0}; /* (-inf, +inf) */
    H->frontier = tkc_frontier_new(&span, 1, CHECKPOINT_TS);
    FUZZ_ASSERT(H->frontier);
    H->frontier_min = CHECKPOINT_TS;
}

static void teardown(int64_t now)
{
    stream_close(now);
    for (size_t i = 0; i < H->n_regs; i++)
        tkc_feed_region_free(H->regs[i]);
    FUZZ_ASSERT(tkc_hashmap_count(H->w.regions) == 0);
    tkc_hashmap_destroy(H->w.regions, NULL);
    tkc_stream_table_destroy(H->w.tbl);
    tkc_frontier_destroy(H->frontier);
}

/* Remembers the values the input offers for (key, start_ts). */
static void note_values(const Cdcpb__ChangeDataEvent *msg)
{
    for (size_t i = 0; i < msg->n_events; i++) {
        const Cdcpb__Event *ev = msg->events[i];
        if (ev->event_case != CDCPB__EVENT__EVENT_ENTRIES || !ev->entries)
            continue;
        for (size_t j = 0; j < ev->entries->n_entries; j++) {
            const Cdcpb__Event__Row *row = ev->entries->entries[j];
            if (row->type != CDCPB__EVENT__LOG_TYPE__PREWRITE &&
                row->type != CDCPB__EVENT__LOG_TYPE__COMMITTED)
                continue;
            if (H->n_seen == MAX_SEEN)
                return; /* check_rows stops checking values past this */
            H->seen[H->n_seen++] = (seen_t){row->key.data, row->value.data, row->key.len,
                                            row->value.len, row->start_ts};
        }
    }
}

#define MAX_MSGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        fuzz_quiet_logs();
        quiet = true;
    }
    if (size < 1)
        return 0;
    harness_t h;
    H = &h;
    fuzz_in_t in = {data, size};
    setup(fuzz_u8(&in));
    int64_t now = 1000000;
    stream_open(now);
    register_pending(now);

    /* messages stay unpacked until the end: seen_t borrows their bytes */
    Cdcpb__ChangeDataEvent *msgs[MAX_MSGS];
    size_t n_msgs = 0;
    while (in.n > 0 && n_msgs < MAX_MSGS && !H->fatal) {
        uint8_t ctl = fuzz_u8(&in);
        size_t len;
        const uint8_t *p = fuzz_bytes(&in, fuzz_u16(&in), &len);
        now += (int64_t)(ctl & 0x0f) * 100;
        Cdcpb__ChangeDataEvent *msg = cdcpb__change_data_event__unpack(NULL, len, p);
        if (!msg)
            continue; /* what feed_stream.c does with a malformed message: drop it */
        msgs[n_msgs++] = msg;
        note_values(msg);
        tkc_feed_region_on_message(&H->w, H->fs, msg, now);
        if (H->fatal)
            break;
        if (H->fs->failed) {
            stream_close(now);
            stream_open(now);
        }
        register_pending(now);
    }
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "changedata: %zu messages, %zu rows, %zu resolved events, fatal=%d\n",
                n_msgs, H->rows, H->resolved_events, (int)H->fatal);
    teardown(now);
    for (size_t i = 0; i < n_msgs; i++)
        cdcpb__change_data_event__free_unpacked(msgs[i], NULL);
    H = NULL;
    return 0;
}
