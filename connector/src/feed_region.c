/*
 * feed_region.c: one region subscription on a worker — its registration
 * request, and what every received ChangeDataEvent does to it
 * (tikv-cdc-protocol.md §3.2, §3.8, §3.9, §4, §8.18 items 4-6).
 *
 * Where data comes from and goes to: feed_stream.c hands each unpacked
 * ChangeDataEvent to tkc_feed_region_on_message(); rows go through the
 * region's matcher (reset on every registration) and leave as ROWS events,
 * resolved ts as RESOLVED events, both through the worker's ordered outbox;
 * region errors hand the region back to the scheduler (through the same
 * outbox, after its rows).
 *
 * Routing: an event belongs to the registration that the worker's region map
 * holds for its region id only if it came on that registration's stream
 * with its request id; anything else is a stale event of an earlier
 * registration and is dropped (§7 scenario 20). ResolvedTs names regions:
 * on V1 its request_id is 0 and only the stream is checked; on V2 it must be
 * the registration's request id (or 0).
 *
 * Invariants kept here:
 *   - the state is registered in the stream (tkc_stream_add_region) before
 *     the request is written, so a stream failure always finds the region;
 *   - a region's resolved ts is taken only after INITIALIZED and never
 *     backwards (the matcher enforces it; RESOLVED events list only regions
 *     that advanced);
 *   - a commit at or below the resolved ts, or a commit without its
 *     prewrite after INITIALIZED, is logged as an error, counted, and the
 *     registration is replaced; nothing partial is emitted.
 *
 * Memory: one feed_region_t per subscribed region, so it is one block:
 * the state, the matcher (embedded, tkc_matcher_init) and the encoded
 * start/end keys, which the matcher borrows. The store address the
 * scheduler hands over is freed as soon as the worker has looked it up.
 *
 * Thread: the owning worker thread only.
 */
#include "feed_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvrpcpb.pb-c.h"
#include "metapb.pb-c.h"
#include "rpc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

/* one log line per region per this many ms for repeated problems */
#define REGION_LOG_INTERVAL_MS 10000

/* where the matcher's room starts in the region's block (malloc alignment) */
static size_t matcher_off(void)
{
    return (sizeof(feed_region_t) + 15) & ~(size_t)15;
}

feed_region_t *tkc_feed_region_new(uint32_t span, uint64_t region_id, uint64_t conf_ver,
                                   uint64_t version, const uint8_t *start, size_t start_len,
                                   const uint8_t *end, size_t end_len, uint64_t checkpoint_ts)
{
    /* one allocation per region: the state, the matcher's room (the matcher
     * lives there while registered, tkc_matcher_init) and the keys, which
     * the matcher borrows instead of copying */
    if (start_len > UINT32_MAX || end_len > UINT32_MAX)
        abort(); /* region keys from PD: far below 4 GiB */
    feed_region_t *r = tkc_calloc(1, matcher_off() + tkc_matcher_size() + start_len + end_len);
    r->span = span;
    r->region_id = region_id;
    r->conf_ver = conf_ver;
    r->version = version;
    r->start = (uint8_t *)r + matcher_off() + tkc_matcher_size();
    if (start_len)
        memcpy(r->start, start, start_len);
    r->start_len = (uint32_t)start_len;
    r->end = r->start + start_len;
    if (end_len)
        memcpy(r->end, end, end_len);
    r->end_len = (uint32_t)end_len;
    r->checkpoint_ts = checkpoint_ts;
    r->resolved_ts = checkpoint_ts;
    return r;
}

void tkc_feed_region_reset(feed_region_t *r)
{
    tkc_matcher_fini(r->matcher);
    r->matcher = NULL;
    r->fs = NULL;
    r->request_id = 0;
    r->status = FR_PENDING;
    tkc_feed_region_set_store_addr(r, NULL);
}

void tkc_feed_region_set_store_addr(feed_region_t *r, const char *addr)
{
    tkc_free(r->store_addr);
    r->store_addr = addr ? tkc_strdup(addr) : NULL;
}

void tkc_feed_region_free(feed_region_t *r)
{
    if (!r)
        return;
    tkc_matcher_fini(r->matcher);
    tkc_free(r->store_addr);
    tkc_free(r);
}

void tkc_feed_region_free_list(feed_region_t *list)
{
    while (list) {
        feed_region_t *next = list->next;
        tkc_feed_region_free(list);
        list = next;
    }
}

/* Rate limit for a region's repeated log lines. @returns true to log now. */
static bool region_log_ok(feed_region_t *r, int64_t now)
{
    if (r->last_log_ms && now - r->last_log_ms < REGION_LOG_INTERVAL_MS) {
        r->log_suppressed++;
        return false;
    }
    r->last_log_ms = now;
    return true;
}

/* ===== requests ===== */

static void send_request(feed_worker_t *w, feed_stream_t *fs, feed_region_t *r, bool deregister)
{
    tkc_feed_t *f = w->f;
    Cdcpb__Header h = CDCPB__HEADER__INIT;
    h.cluster_id = f->cluster_id;
    h.ticdc_version = f->ticdc_version;
    Cdcpb__ChangeDataRequest req = CDCPB__CHANGE_DATA_REQUEST__INIT;
    req.header = &h;
    req.region_id = r->region_id;
    req.request_id = r->request_id;
    Metapb__RegionEpoch ep = METAPB__REGION_EPOCH__INIT;
    Cdcpb__ChangeDataRequest__Deregister dereg = CDCPB__CHANGE_DATA_REQUEST__DEREGISTER__INIT;
    if (deregister) {
        req.request_case = CDCPB__CHANGE_DATA_REQUEST__REQUEST_DEREGISTER;
        req.deregister = &dereg;
    } else {
        ep.conf_ver = r->conf_ver;
        ep.version = r->version;
        req.region_epoch = &ep;
        req.checkpoint_ts = r->checkpoint_ts;
        req.start_key.data = r->start;
        req.start_key.len = r->start_len;
        req.end_key.data = r->end;
        req.end_key.len = r->end_len;
        /* Current TiKV reads old values anyway; older TiKV honours it. */
        req.extra_op = KVRPCPB__EXTRA_OP__ReadOldValue;
        req.kv_api = CDCPB__CHANGE_DATA_REQUEST__KV_API__TiDB;
        /* The request oneof stays unset: that is Register (never send
         * NotifyTxnStatus, TiKV has no handler for it). */
    }
    tkc_feed_stream_send(fs, tkc_rpc_pack(&req.base));
}

/* The registrations of @p region_id on @p fs (a list through same_next). */
static feed_region_t *stream_regions(feed_stream_t *fs, uint64_t region_id)
{
    return tkc_hashmap_get(fs->by_region, &region_id, sizeof(region_id));
}

static void stream_link(feed_stream_t *fs, feed_region_t *r)
{
    r->same_next = stream_regions(fs, r->region_id);
    tkc_hashmap_put(fs->by_region, &r->region_id, sizeof(r->region_id), r);
}

static void stream_unlink(feed_stream_t *fs, feed_region_t *r)
{
    feed_region_t *head = stream_regions(fs, r->region_id);
    if (head == r) {
        if (r->same_next)
            tkc_hashmap_put(fs->by_region, &r->region_id, sizeof(r->region_id), r->same_next);
        else
            tkc_hashmap_remove(fs->by_region, &r->region_id, sizeof(r->region_id));
    } else {
        for (feed_region_t *p = head; p; p = p->same_next) {
            if (p->same_next == r) {
                p->same_next = r->same_next;
                break;
            }
        }
    }
    r->same_next = NULL;
}

feed_reg_result_t tkc_feed_region_register(feed_worker_t *w, feed_stream_t *fs, feed_region_t *r,
                                           int64_t now)
{
    tkc_feed_t *f = w->f;
    /* TiKV < 7.3 keys registrations by region alone (§3.1): a second span's
     * registration of the same region on this stream would be answered
     * duplicate_request. It waits until the other one ends (old TiCDC used
     * one stream per table per store instead). */
    if (r->store_pre73 && stream_regions(fs, r->region_id)) {
        if (region_log_ok(r, now))
            tkc_log(TKC_LOG_WARN, "feed",
                    "event=region_deferred region_id=%" PRIu64 " span=%" PRIu32
                    " store_id=%" PRIu64
                    " reason=\"TiKV < 7.3 allows one registration per region per stream and "
                    "another span holds it\" suppressed=%" PRIu32,
                    r->region_id, r->span, fs->store_id, r->log_suppressed);
        return FEED_REG_DEFER;
    }
    /* V2 multiplexing: the span's subscription id; V1: fresh per
     * registration (see feed.h). Never 0. */
    r->request_id = fs->v2 ? (uint64_t)r->span + 1
                           : atomic_fetch_add(&f->next_request_id, 1) + 1;
    tkc_err_t err = tkc_stream_add_region(fs->st, r->request_id, r->region_id, r);
    if (err == TKC_ERR_STOPPED) {
        r->request_id = 0;
        return FEED_REG_STOPPED;
    }
    if (err != TKC_ERR_OK) {
        /* Two registrations of one (request, region) on one stream: TiKV
         * would answer duplicate_request. The range lock makes this
         * impossible, so it is a bug; stop rather than corrupt the feed. */
        tkc_feed_set_fatal(f, TKC_ERR_CORRUPT,
                           "internal error: region %" PRIu64 " request %" PRIu64
                           " is already registered on stream %" PRIu64,
                           r->region_id, r->request_id, fs->id);
        r->request_id = 0;
        return FEED_REG_FATAL;
    }
    tkc_matcher_conf_t mc = {
        .region_id = r->region_id,
        .span_index = r->span,
        .start = r->start,
        .start_len = r->start_len,
        .end = r->end,
        .end_len = r->end_len,
        .span_start_ts = f->start_ts,
        .checkpoint_ts = r->checkpoint_ts,
        .spill = f->pw_spill[w->idx],
    };
    tkc_matcher_fini(r->matcher);
    r->matcher = tkc_matcher_init((uint8_t *)r + matcher_off(), &mc);
    r->fs = fs;
    r->status = FR_REGISTERED;
    r->sent_ms = now;
    r->last_advance_ms = now;
    r->resolved_ts = r->checkpoint_ts;
    stream_link(fs, r);
    tkc_feed_worker_region_put(w, r);
    send_request(w, fs, r, false);
    FEED_COUNT(f, registrations);
    FEED_COUNT(f, regions_active);
    return FEED_REG_OK;
}

void tkc_feed_region_detach(feed_worker_t *w, feed_region_t *r)
{
    feed_stream_t *fs = r->fs;
    if (r->matcher) {
        uint64_t rts = tkc_matcher_resolved_ts(r->matcher);
        if (rts > r->resolved_ts)
            r->resolved_ts = rts;
    }
    if (fs) {
        tkc_stream_remove_region(fs->st, r->request_id, r->region_id);
        stream_unlink(fs, r);
        if (r->status == FR_INITIALIZED && fs->n_initialized > 0)
            fs->n_initialized--;
    }
    tkc_feed_worker_region_del(w, r);
    FEED_SUB(w->f, regions_active, 1);
}

/* ===== rows ===== */

typedef struct emit_ctx_s {
    feed_region_t *r;
    tkc_feed_event_t *ev;
} emit_ctx_t;

static void on_emit(void *opaque, tkc_row_t *row)
{
    emit_ctx_t *c = opaque;
    if (!c->ev)
        c->ev = tkc_feed_event_new(TKC_FEED_EVENT_ROWS, c->r->span);
    tkc_feed_event_add_row(c->ev, row);
}

static void row_from_pb(const Cdcpb__Event__Row *p, tkc_feed_row_t *row)
{
    memset(row, 0, sizeof(*row));
    int type = (int)p->type;
    row->type = type >= 0 && type <= TKC_FEED_LOG_INITIALIZED ? (tkc_feed_log_t)type
                                                                : TKC_FEED_LOG_UNKNOWN;
    int op = (int)p->op_type;
    row->op = op >= 0 && op <= TKC_ROW_OP_DELETE ? (tkc_row_op_t)op : TKC_ROW_OP_UNKNOWN;
    row->key = p->key.data;
    row->key_len = p->key.len;
    row->value = p->value.data;
    row->value_len = p->value.len;
    row->old_value = p->old_value.data;
    row->old_value_len = p->old_value.len;
    /* proto3 cannot say "absent": rows that carry an old value at all do,
     * since we always ask for ReadOldValue (§3.6). */
    row->has_old_value = row->type == TKC_FEED_LOG_PREWRITE || row->type == TKC_FEED_LOG_COMMITTED;
    row->start_ts = p->start_ts;
    row->commit_ts = p->commit_ts;
    row->generation = p->generation;
}

/*
 * The registration is broken on our side (the matcher refused a row): the
 * rows before it are already out; replace the registration. V2 streams
 * deregister it and wait for TiKV's confirming error event; a V1 stream
 * (TiKV < 7.3, no Deregister, registrations keyed by region) is retired.
 */
static void matcher_failed(feed_worker_t *w, feed_stream_t *fs, feed_region_t *r, tkc_err_t err,
                           const char *detail, int64_t now)
{
    tkc_feed_t *f = w->f;
    atomic_fetch_add_explicit(&f->ctr.region_errors[TKC_FEED_REGION_ERR_MATCHER], 1,
                              memory_order_relaxed);
    if (region_log_ok(r, now))
        tkc_log(TKC_LOG_ERROR, "feed",
                "event=region_invariant_broken region_id=%" PRIu64 " store_id=%" PRIu64
                " stream_id=%" PRIu64 " err=%s detail=\"%s\" action=%s suppressed=%" PRIu32,
                r->region_id, fs->store_id, fs->id,
                err == TKC_MATCHER_ERR_RESOLVED_TS       ? "commit_at_or_below_resolved_ts"
                : err == TKC_MATCHER_ERR_PREWRITE_NOT_MATCH ? "prewrite_not_match"
                                                            : tkc_err2name(err),
                detail, fs->v2 ? "deregister_and_resubscribe" : "retire_stream",
                r->log_suppressed);
    if (fs->v2) {
        if (r->status == FR_INITIALIZED && fs->n_initialized > 0)
            fs->n_initialized--;
        r->status = FR_DEREGISTERING;
        r->dereg_ms = now;
        send_request(w, fs, r, true);
        FEED_COUNT(f, deregistrations);
    } else {
        snprintf(fs->fail_reason, sizeof(fs->fail_reason), "matcher error on region %" PRIu64,
                 r->region_id);
        tkc_feed_worker_stream_failed(w, fs);
    }
}

static void on_entries(feed_worker_t *w, feed_stream_t *fs, feed_region_t *r,
                       const Cdcpb__Event__Entries *en, int64_t now)
{
    emit_ctx_t c = {.r = r, .ev = NULL};
    bool broken = false;
    for (size_t i = 0; i < en->n_entries && !broken; i++) {
        tkc_feed_row_t row;
        row_from_pb(en->entries[i], &row);
        bool was_init = tkc_matcher_initialized(r->matcher);
        char detail[256] = "";
        tkc_err_t err = tkc_matcher_put(r->matcher, &row, on_emit, &c, detail, sizeof(detail));
        if (err != TKC_ERR_OK) {
            broken = true;
            if (c.ev) {
                FEED_ADD(w->f, rows_emitted, c.ev->n_rows);
                tkc_feed_worker_emit(w, c.ev);
                c.ev = NULL;
            }
            matcher_failed(w, fs, r, err, detail, now);
            break;
        }
        if (!was_init && tkc_matcher_initialized(r->matcher)) {
            r->status = FR_INITIALIZED;
            fs->n_initialized++;
            FEED_COUNT(w->f, regions_initialized);
        }
    }
    if (c.ev) {
        FEED_ADD(w->f, rows_emitted, c.ev->n_rows);
        tkc_feed_worker_emit(w, c.ev);
    }
}

/* ===== errors ===== */

static tkc_feed_region_err_t classify(const Cdcpb__Error *e)
{
    if (e->not_leader)
        return TKC_FEED_REGION_ERR_NOT_LEADER;
    if (e->epoch_not_match)
        return TKC_FEED_REGION_ERR_EPOCH_NOT_MATCH;
    if (e->region_not_found)
        return TKC_FEED_REGION_ERR_REGION_NOT_FOUND;
    if (e->server_is_busy)
        return TKC_FEED_REGION_ERR_SERVER_IS_BUSY;
    if (e->congested)
        return TKC_FEED_REGION_ERR_CONGESTED;
    if (e->duplicate_request)
        return TKC_FEED_REGION_ERR_DUPLICATE_REQUEST;
    if (e->compatibility)
        return TKC_FEED_REGION_ERR_COMPATIBILITY;
    if (e->cluster_id_mismatch)
        return TKC_FEED_REGION_ERR_CLUSTER_ID_MISMATCH;
    return TKC_FEED_REGION_ERR_UNKNOWN;
}

static void on_error(feed_worker_t *w, feed_stream_t *fs, feed_region_t *r, const Cdcpb__Error *e,
                     int64_t now)
{
    tkc_feed_t *f = w->f;
    tkc_feed_region_err_t kind = classify(e);
    bool confirming_deregister = r->status == FR_DEREGISTERING;

    switch (kind) {
    case TKC_FEED_REGION_ERR_DUPLICATE_REQUEST:
        tkc_feed_set_fatal(f, TKC_ERR_CORRUPT,
                           "TiKV store %" PRIu64 " answered duplicate_request for region %" PRIu64
                           " (request %" PRIu64 ", stream %" PRIu64
                           "): the feed registered one region twice on one stream; this is a bug "
                           "in the connector, stopping",
                           fs->store_id, r->region_id, r->request_id, fs->id);
        break;
    case TKC_FEED_REGION_ERR_COMPATIBILITY:
        tkc_feed_set_fatal(f, TKC_ERR_INCOMPATIBLE,
                           "TiKV store %" PRIu64 " refused the change feed as incompatible "
                           "(required_version \"%s\"; we send ticdc_version \"%s\", kv_api TiDB)",
                           fs->store_id,
                           e->compatibility->required_version ? e->compatibility->required_version
                                                              : "",
                           f->ticdc_version);
        break;
    case TKC_FEED_REGION_ERR_CLUSTER_ID_MISMATCH:
        tkc_feed_set_fatal(f, TKC_ERR_INCOMPATIBLE,
                           "TiKV store %" PRIu64 " belongs to cluster %" PRIu64
                           " but PD said cluster %" PRIu64
                           " (cluster_id_mismatch): check the PD endpoints",
                           fs->store_id, e->cluster_id_mismatch->current,
                           e->cluster_id_mismatch->request);
        break;
    default:
        break;
    }

    if (!confirming_deregister)
        atomic_fetch_add_explicit(&f->ctr.region_errors[kind], 1, memory_order_relaxed);
    tkc_feed_region_detach(w, r);
    r->hint_store_id = r->hint_peer_id = 0;
    r->backoff_ms = 0;
    if (kind == TKC_FEED_REGION_ERR_NOT_LEADER && e->not_leader->leader &&
        e->not_leader->leader->store_id != 0) {
        r->hint_store_id = e->not_leader->leader->store_id;
        r->hint_peer_id = e->not_leader->leader->id;
    }
    if (kind == TKC_FEED_REGION_ERR_SERVER_IS_BUSY)
        r->backoff_ms = e->server_is_busy->backoff_ms;
    if (kind == TKC_FEED_REGION_ERR_UNKNOWN && region_log_ok(r, now))
        tkc_log(TKC_LOG_WARN, "feed",
                "event=region_unknown_error region_id=%" PRIu64 " store_id=%" PRIu64
                " action=retry suppressed=%" PRIu32,
                r->region_id, fs->store_id, r->log_suppressed);
    else
        tkc_log(TKC_LOG_DEBUG, "feed",
                "event=region_error region_id=%" PRIu64 " store_id=%" PRIu64 " kind=%s"
                " hint_store=%" PRIu64 " resolved_ts=%" PRIu64,
                r->region_id, fs->store_id, tkc_feed_region_err_name(kind), r->hint_store_id,
                r->resolved_ts);
    /* After a Deregister the error event is TiKV's confirmation (it sends
     * region_not_found for each removed registration, §3.10): re-subscribe
     * the same region. */
    tkc_feed_worker_fail_region(w, r, confirming_deregister ? TKC_FEED_REGION_ERR_MATCHER : kind);
}

/* ===== resolved ts ===== */

#define SPAN_EVENTS_INLINE 8

typedef struct span_events_s {
    size_t n;
    uint32_t span[SPAN_EVENTS_INLINE];
    tkc_feed_event_t *ev[SPAN_EVENTS_INLINE];
} span_events_t;

static void span_events_flush(feed_worker_t *w, span_events_t *se)
{
    for (size_t i = 0; i < se->n; i++) {
        FEED_COUNT(w->f, resolved_events);
        tkc_feed_worker_emit(w, se->ev[i]);
    }
    se->n = 0;
}

static void span_events_add(feed_worker_t *w, span_events_t *se, feed_region_t *r, uint64_t ts)
{
    tkc_feed_event_t *ev = NULL;
    for (size_t i = 0; i < se->n; i++)
        if (se->span[i] == r->span)
            ev = se->ev[i];
    if (!ev) {
        if (se->n == SPAN_EVENTS_INLINE)
            span_events_flush(w, se); /* many spans in one batch: ship in parts */
        ev = tkc_feed_event_new(TKC_FEED_EVENT_RESOLVED, r->span);
        ev->ts = ts;
        se->span[se->n] = r->span;
        se->ev[se->n++] = ev;
    }
    tkc_feed_event_add_region(ev, r->region_id, r->start, r->start_len, r->end, r->end_len);
}

static void resolve_one(feed_worker_t *w, span_events_t *se, feed_region_t *r, uint64_t ts,
                        int64_t now)
{
    if (r->status != FR_INITIALIZED)
        return; /* not trusted before INITIALIZED (§3.8) */
    if (tkc_matcher_resolve(r->matcher, ts)) {
        r->resolved_ts = ts;
        r->last_advance_ms = now;
        span_events_add(w, se, r, ts);
    }
}

/*
 * ResolvedTs{regions, ts, request_id} on @p fs. A non-zero request id names
 * the registration (V2 multiplexing: the span); 0 (V1, or no multiplexing)
 * means every registration of the region on this connection. Regions not
 * registered on this stream are ignored (§7 scenario 19).
 */
static void on_resolved(feed_worker_t *w, feed_stream_t *fs, const uint64_t *regions, size_t n,
                        uint64_t ts, uint64_t request_id, int64_t now)
{
    span_events_t se = {0};
    for (size_t i = 0; i < n; i++) {
        if (request_id != 0) {
            feed_region_t *r = tkc_stream_get_region(fs->st, request_id, regions[i]);
            if (r)
                resolve_one(w, &se, r, ts, now);
            continue;
        }
        for (feed_region_t *r = stream_regions(fs, regions[i]); r; r = r->same_next)
            resolve_one(w, &se, r, ts, now);
    }
    span_events_flush(w, &se);
}

/* ===== dispatch ===== */

void tkc_feed_region_on_message(feed_worker_t *w, feed_stream_t *fs,
                                const Cdcpb__ChangeDataEvent *msg, int64_t now)
{
    if (msg->resolved_ts)
        on_resolved(w, fs, msg->resolved_ts->regions, msg->resolved_ts->n_regions,
                    msg->resolved_ts->ts, msg->resolved_ts->request_id, now);
    for (size_t i = 0; i < msg->n_events && !fs->failed; i++) {
        const Cdcpb__Event *ev = msg->events[i];
        /* the registration on THIS stream with this request id, if any:
         * anything else is a stale event of an earlier registration */
        feed_region_t *r = tkc_stream_get_region(fs->st, ev->request_id, ev->region_id);
        if (!r) {
            FEED_COUNT(w->f, stale_events);
            continue;
        }
        if (r->status == FR_DEREGISTERING && ev->event_case != CDCPB__EVENT__EVENT_ERROR)
            continue; /* rows of a registration being replaced */
        switch (ev->event_case) {
        case CDCPB__EVENT__EVENT_ENTRIES:
            if (ev->entries)
                on_entries(w, fs, r, ev->entries, now);
            break;
        case CDCPB__EVENT__EVENT_ERROR:
            if (ev->error)
                on_error(w, fs, r, ev->error, now);
            break;
        case CDCPB__EVENT__EVENT_RESOLVED_TS: {
            /* the deprecated per-region form (clients < 4.0.8) */
            uint64_t rid = ev->region_id;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
            uint64_t ts = ev->resolved_ts;
#pragma GCC diagnostic pop
            on_resolved(w, fs, &rid, 1, ts, ev->request_id, now);
            break;
        }
        default:
            break; /* Admin and LongTxn: never sent by current TiKV */
        }
    }
    tkc_feed_worker_flush_failures(w);
}
