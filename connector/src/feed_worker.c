/*
 * feed_worker.c: a feed worker thread — one gRPC completion queue, at most
 * one EventFeed stream per store, the region subscriptions on them, and the
 * ordered outbox towards the pipeline and the scheduler (feed.h explains the
 * design; architecture.md invariant 1 and "Threads").
 *
 * Loop: wait on the completion queue for at most cfg.poll_ms (C core cannot
 * post a tag from another thread, so this bounded wait is how the inbound
 * queue and the timers get their turn), handle the completions, take the
 * regions the scheduler handed over, run what is due (retire retries,
 * connect timeouts, stall watchdog, stuck-region checks, the test cleanup
 * hook), open streams where regions wait, push the outbox.
 *
 * Stream lifecycle per store (the #10239 lesson, tikv-cdc-protocol.md §6):
 *   create   tkc_stream_table_create (fresh id, rate-limited per store),
 *            then the call (wait-for-ready);
 *   fail     status received, undecodable message, connect timeout, stall,
 *            or a V1 matcher error: the stream stops taking registrations,
 *            its own call is cancelled;
 *   retire   tkc_stream_table_retire(stream): exactly once, by its own id,
 *            retried when rate-limited; hands back exactly its regions, which
 *            go to the scheduler (or, after a refused EventFeedV2, back into
 *            this store's queue for the V1 stream);
 *   free     once retired and every started batch has completed.
 * Nothing else ever removes or cancels a stream.
 *
 * Unreachable stores: after a stream to a store failed, the store is
 * "suspect" and the next stream to it is opened only once its channel is
 * READY again. Until then the store's channel is kept connecting (a refused
 * connect shows as TRANSIENT_FAILURE at once; we reset gRPC's reconnect
 * backoff every WORKER_PROBE_MS so a restarted store is seen within that),
 * and regions that arrive for it are parked in its queue for a short while
 * (WORKER_PARK_MS, WORKER_PARK_LONG_MS once it has been gone for
 * WORKER_PARK_LONG_AFTER_MS), then handed back to the scheduler as a store
 * failure, which asks PD again where their leaders are. So a store that
 * restarts within the election timeout gets exactly one new stream per
 * worker, when it is back, with its regions registered the moment it
 * answers; and when its leaders move, the regions find the new leaders
 * within one park period of PD knowing them, instead of waiting out a
 * connect timeout on a stream to a closed port. A stream opened before the
 * store was known to be down fails as soon as its channel reports
 * TRANSIENT_FAILURE, not after cfg.connect_timeout_ms (which stays the
 * bound for a store that accepts TCP but never answers).
 *
 * Thread: the worker thread owns everything here; tkc_feed_worker_submit
 * is the only entry point for other threads.
 */
#include "feed_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <grpc/support/time.h>

#include "rpc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define WORKER_INBOX_BATCH 4096
#define WORKER_CQ_BATCH 256
#define WORKER_PERIODIC_MS 100
#define WORKER_HEALTHY_RECV_MS 5000
#define WORKER_SHUTDOWN_WAIT_MS 10000
#define WORKER_PROBE_MS 100
#define WORKER_PARK_MS 400
#define WORKER_PARK_LONG_MS 1000
#define WORKER_PARK_LONG_AFTER_MS 5000
#define WORKER_PROBE_IDLE_MS 10000

/* ===== region map ===== */

/* The worker's map of registered regions is keyed by (span, region id):
 * one region may be registered once per span it intersects. */
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

/* ===== outbox ===== */

static void outbox_push(feed_worker_t *w, feed_out_kind_t kind, void *ptr, size_t bytes)
{
    feed_out_t *o = tkc_calloc(1, sizeof(*o));
    o->kind = kind;
    o->ptr = ptr;
    o->bytes = bytes;
    if (w->out_tail)
        w->out_tail->next = o;
    else
        w->out_head = o;
    w->out_tail = o;
    w->out_n++;
}

void tkc_feed_worker_emit(feed_worker_t *w, tkc_feed_event_t *ev)
{
    outbox_push(w, OUT_EVENT, ev, ev->bytes);
}

void tkc_feed_worker_fail_region(feed_worker_t *w, feed_region_t *r, tkc_feed_region_err_t kind)
{
    r->fail = kind;
    tkc_feed_region_reset(r);
    if (!w->fail_batch) {
        w->fail_batch = tkc_calloc(1, sizeof(*w->fail_batch));
        w->fail_batch->kind = FEED_MSG_FAILED;
    }
    r->next = w->fail_batch->regions;
    w->fail_batch->regions = r;
    w->fail_batch->n_regions++;
}

void tkc_feed_worker_flush_failures(feed_worker_t *w)
{
    if (!w->fail_batch)
        return;
    outbox_push(w, OUT_FAILED, w->fail_batch, 0);
    w->fail_batch = NULL;
}

bool tkc_feed_worker_flush(feed_worker_t *w)
{
    tkc_feed_t *f = w->f;
    while (w->out_head) {
        feed_out_t *o = w->out_head;
        if (o->kind == OUT_EVENT) {
            tkc_err_t err = tkc_msgq_try_push(f->out, o->ptr, o->bytes);
            if (err == TKC_ERR_QUEUE_FULL)
                return false;
            if (err != TKC_ERR_OK) /* the pipeline closed the queue: nobody reads */
                tkc_feed_event_destroy(o->ptr);
        } else {
            tkc_feed_sched_submit(f->sched, o->ptr);
        }
        w->out_head = o->next;
        if (!w->out_head)
            w->out_tail = NULL;
        w->out_n--;
        tkc_free(o);
    }
    return true;
}

static void outbox_flush_and_resume(feed_worker_t *w)
{
    if (!tkc_feed_worker_flush(w) || !w->recv_paused)
        return;
    w->recv_paused = false;
    for (feed_stream_t *fs = w->streams; fs; fs = fs->next)
        tkc_feed_stream_resume(fs);
}

/* ===== stores ===== */

static feed_store_t *store_get(feed_worker_t *w, uint64_t store_id, const char *addr)
{
    feed_store_t *ws = NULL;
    for (size_t i = 0; i < w->n_stores && !ws; i++)
        if (w->stores[i]->store_id == store_id)
            ws = w->stores[i];
    if (!ws) {
        ws = tkc_calloc(1, sizeof(*ws));
        ws->store_id = store_id;
        ws->v1_only = !w->f->v2_features[0];
        w->stores = tkc_realloc(w->stores, (w->n_stores + 1) * sizeof(*w->stores));
        w->stores[w->n_stores++] = ws;
    }
    if (addr && addr[0] && strcmp(ws->addr, addr) != 0) {
        if (ws->addr[0])
            tkc_log(TKC_LOG_INFO, "feed",
                    "event=store_address_changed worker=%d store_id=%" PRIu64 " old=%s new=%s",
                    w->idx, store_id, ws->addr, addr);
        snprintf(ws->addr, sizeof(ws->addr), "%s", addr);
    }
    return ws;
}

static void store_enqueue(feed_store_t *ws, feed_region_t *r)
{
    r->next = NULL;
    if (ws->pending_tail)
        ws->pending_tail->next = r;
    else
        ws->pending = r;
    ws->pending_tail = r;
    ws->n_pending++;
}

static feed_region_t *store_dequeue(feed_store_t *ws)
{
    feed_region_t *r = ws->pending;
    if (r) {
        ws->pending = r->next;
        if (!ws->pending)
            ws->pending_tail = NULL;
        ws->n_pending--;
        r->next = NULL;
    }
    return r;
}

/* ===== stream failure and retire ===== */

static void try_retire(feed_worker_t *w, feed_stream_t *fs, int64_t now)
{
    tkc_feed_t *f = w->f;
    feed_store_t *ws = fs->ws;
    tkc_stream_region_list_t list;
    int64_t retry_at = 0;
    tkc_stream_status_t s = tkc_stream_table_retire(w->tbl, fs->st, now, &list, &retry_at);
    if (s == TKC_STREAM_RATE_LIMITED) {
        fs->retire_retry_ms = retry_at;
        return;
    }
    fs->retired = true;
    fs->retire_retry_ms = 0;
    if (ws->cur == fs)
        ws->cur = NULL;
    if (s == TKC_STREAM_OK) {
        FEED_COUNT(f, streams_retired);
        tkc_feed_store_count(f, fs->store_id, FEED_STORE_RETIRED, fs->id);
    }
    tkc_log(TKC_LOG_INFO, "feed",
            "event=stream_retired worker=%d store_id=%" PRIu64 " stream_id=%" PRIu64
            " result=%s regions=%zu",
            w->idx, fs->store_id, fs->id, tkc_stream_status_name(s), list.n);
    for (size_t i = 0; i < list.n; i++) {
        feed_region_t *r = list.v[i].state;
        tkc_feed_region_detach(w, r);
        if (fs->v2_refused) {
            /* nothing reached TiKV: send them again on the V1 stream */
            tkc_feed_region_reset(r);
            store_enqueue(ws, r);
        } else {
            atomic_fetch_add_explicit(&f->ctr.region_errors[TKC_FEED_REGION_ERR_STREAM], 1,
                                      memory_order_relaxed);
            tkc_feed_worker_fail_region(
                w, r, fs->store_failed ? TKC_FEED_REGION_ERR_STORE : TKC_FEED_REGION_ERR_STREAM);
        }
    }
    tkc_stream_region_list_fini(&list);
    tkc_feed_worker_flush_failures(w);

    /* A new stream to this store: the table's alter interval applies, plus
     * a growing, jittered pause while streams keep dying unused. */
    int64_t pause = tkc_feed_backoff_ms(f, ws->quick_failures, &w->rng);
    if (now + pause > ws->next_create_ms)
        ws->next_create_ms = now + pause;

    if (f->cfg.test_stream_cleanup_delay_ms > 0) {
        /* TEST ONLY: PR 10559's delayed second cleanup of the same stream */
        feed_hook_t *h = tkc_calloc(1, sizeof(*h));
        tkc_stream_keep(fs->st);
        h->st = fs->st;
        h->due_ms = now + f->cfg.test_stream_cleanup_delay_ms;
        h->next = w->hooks;
        w->hooks = h;
    }
}

void tkc_feed_worker_stream_failed(feed_worker_t *w, feed_stream_t *fs)
{
    if (w->shutting_down)
        return;
    int64_t now = tkc_clock_mono_ms();
    if (!fs->failed) {
        fs->failed = true;
        feed_store_t *ws = fs->ws;
        if (fs->v2 && fs->status_done && fs->status == GRPC_STATUS_UNIMPLEMENTED &&
            fs->msgs == 0) {
            fs->v2_refused = true;
            ws->v1_only = true;
            tkc_feed_store_count(w->f, fs->store_id, FEED_STORE_V1_FALLBACK, fs->id);
            tkc_log(TKC_LOG_INFO, "feed",
                    "event=eventfeed_v2_unsupported worker=%d store_id=%" PRIu64
                    " stream_id=%" PRIu64 " reason=\"%s\" action=use_eventfeed_v1",
                    w->idx, fs->store_id, fs->id, fs->fail_reason);
        } else {
            ws->quick_failures = fs->msgs == 0 ? ws->quick_failures + 1 : 0;
            /* the next stream waits for the channel to be READY; start
             * reconnecting now (after the server went away the channel
             * idles until asked) so we know soon */
            if (!ws->suspect)
                ws->suspect_since_ms = now;
            ws->suspect = true;
            ws->wanted_ms = now;
            ws->next_probe_ms = now + WORKER_PROBE_MS;
            if (ws->ch)
                grpc_channel_check_connectivity_state(ws->ch, 1);
            tkc_log(TKC_LOG_WARN, "feed",
                    "event=stream_failed worker=%d store_id=%" PRIu64 " stream_id=%" PRIu64
                    " reason=\"%s\" messages=%" PRIu64 " regions=%zu",
                    w->idx, fs->store_id, fs->id, fs->fail_reason, fs->msgs,
                    tkc_stream_region_count(fs->st));
        }
        /* its own call, whatever the table does */
        tkc_feed_stream_cancel(fs);
    }
    if (!fs->retired)
        try_retire(w, fs, now);
}

void tkc_feed_worker_stream_maybe_free(feed_worker_t *w, feed_stream_t *fs)
{
    if (tkc_feed_stream_finished(fs))
        tkc_feed_stream_free(fs);
}

/* ===== opening streams ===== */

static bool store_channel(feed_worker_t *w, feed_store_t *ws)
{
    if (ws->ch && strcmp(ws->ch_addr, ws->addr) == 0)
        return true;
    if (ws->ch) {
        grpc_channel_destroy(ws->ch); /* calls on it keep their own reference */
        ws->ch = NULL;
    }
    char err[256] = "";
    tkc_rpc_tls_t tls = w->f->cfg.tls;
    ws->ch = tkc_rpc_channel_new(ws->addr, &tls, &w->f->chan_opts, err, sizeof(err));
    if (!ws->ch) {
        tkc_log(TKC_LOG_ERROR, "feed", "event=channel_failed store_id=%" PRIu64 " addr=%s err=\"%s\"",
                ws->store_id, ws->addr, err);
        return false;
    }
    snprintf(ws->ch_addr, sizeof(ws->ch_addr), "%s", ws->addr);
    return true;
}

/* Every pending region of @p ws goes back to the scheduler as @p kind. */
static void store_fail_pending(feed_worker_t *w, feed_store_t *ws, tkc_feed_region_err_t kind)
{
    feed_region_t *r;
    while ((r = store_dequeue(ws)) != NULL) {
        atomic_fetch_add_explicit(&w->f->ctr.region_errors[kind], 1, memory_order_relaxed);
        tkc_feed_worker_fail_region(w, r, kind);
    }
    tkc_feed_worker_flush_failures(w);
}

/*
 * A suspect store's channel: kept connecting, with gRPC's reconnect backoff
 * reset every WORKER_PROBE_MS (regions wait for this store, and a refused
 * connect costs nothing). @returns true, and clears the suspicion, once the
 * channel is READY.
 */
static bool store_probe(feed_worker_t *w, feed_store_t *ws, int64_t now)
{
    grpc_connectivity_state cs = grpc_channel_check_connectivity_state(ws->ch, 1);
    if (cs == GRPC_CHANNEL_READY) {
        tkc_log(TKC_LOG_INFO, "feed",
                "event=store_reachable worker=%d store_id=%" PRIu64 " addr=%s after_ms=%" PRId64
                " pending=%zu",
                w->idx, ws->store_id, ws->addr, now - ws->suspect_since_ms, ws->n_pending);
        ws->suspect = false;
        ws->park_until_ms = 0;
        return true;
    }
    if (cs == GRPC_CHANNEL_TRANSIENT_FAILURE && now >= ws->next_probe_ms) {
        grpc_channel_reset_connect_backoff(ws->ch);
        ws->next_probe_ms = now + WORKER_PROBE_MS;
    }
    return false;
}

/* Whether a new stream to @p ws may be opened now: it has a channel, and
 * after a failure that channel is READY again (see the top). */
static bool store_reachable(feed_worker_t *w, feed_store_t *ws, int64_t now)
{
    if (!ws->addr[0] || !store_channel(w, ws))
        return false;
    if (!ws->suspect)
        return true;
    ws->wanted_ms = now;
    return store_probe(w, ws, now);
}

/* The pending regions of an unusable store: parked for a while in case it
 * comes back, then handed to the scheduler to ask PD (see the top). */
static void store_park(feed_worker_t *w, feed_store_t *ws, int64_t now)
{
    if (ws->park_until_ms == 0) {
        bool long_gone = !ws->suspect || now - ws->suspect_since_ms >= WORKER_PARK_LONG_AFTER_MS;
        int64_t period = long_gone ? WORKER_PARK_LONG_MS : WORKER_PARK_MS;
        /* ends on a multiple of the period (of the shared monotonic clock),
         * at least half a period from now: every worker parking regions of
         * the same store hands them back at the same moment, so the
         * scheduler asks PD for all of them at once (one ScanRegions walk
         * when the leaders moved, not one per worker) */
        ws->park_until_ms = (now + period / 2 + period) / period * period;
        return;
    }
    if (now < ws->park_until_ms)
        return;
    ws->park_until_ms = 0;
    tkc_log(TKC_LOG_INFO, "feed",
            "event=store_unreachable worker=%d store_id=%" PRIu64 " addr=%s since_ms=%" PRId64
            " regions=%zu action=ask_pd",
            w->idx, ws->store_id, ws->addr[0] ? ws->addr : "-",
            ws->suspect ? now - ws->suspect_since_ms : 0, ws->n_pending);
    store_fail_pending(w, ws, TKC_FEED_REGION_ERR_STORE);
}

static void store_pump(feed_worker_t *w, feed_store_t *ws, int64_t now)
{
    tkc_feed_t *f = w->f;
    if (!ws->pending)
        return;
    if (!ws->cur) {
        if (!store_reachable(w, ws, now)) {
            store_park(w, ws, now);
            return;
        }
        if (now < ws->next_create_ms)
            return;
        bool v2 = !ws->v1_only;
        feed_stream_t *fs = tkc_feed_stream_new(w, ws, v2, now);
        tkc_stream_t *st = NULL;
        int64_t retry_at = 0;
        tkc_stream_status_t s = tkc_stream_table_create(w->tbl, ws->store_id, now,
                                                        tkc_feed_stream_cancel_cb, fs, &st,
                                                        &retry_at);
        if (s != TKC_STREAM_OK) {
            /* rate-limited (or, in the address-keyed test build, an entry we
             * no longer own): try again later, nothing was opened */
            ws->next_create_ms = s == TKC_STREAM_RATE_LIMITED ? retry_at : now + 100;
            fs->retired = true;
            tkc_feed_stream_free(fs);
            return;
        }
        tkc_feed_stream_attach(fs, st);
        ws->cur = fs;
        FEED_COUNT(f, streams_opened);
        tkc_feed_store_count(f, ws->store_id, FEED_STORE_OPENED, fs->id);
        tkc_log(TKC_LOG_INFO, "feed",
                "event=stream_open worker=%d store_id=%" PRIu64 " addr=%s stream_id=%" PRIu64
                " method=%s pending=%zu",
                w->idx, ws->store_id, ws->addr, fs->id, v2 ? "EventFeedV2" : "EventFeed",
                ws->n_pending);
        if (!tkc_feed_stream_open(fs)) {
            snprintf(fs->fail_reason, sizeof(fs->fail_reason), "cannot start the call");
            tkc_feed_worker_stream_failed(w, fs);
            tkc_feed_worker_stream_maybe_free(w, fs);
            return;
        }
    }
    feed_stream_t *fs = ws->cur;
    if (fs->failed)
        return; /* its retire is pending; regions wait for the next stream */
    feed_region_t *r, *deferred = NULL, **dtail = &deferred;
    size_t n = ws->n_pending;
    for (size_t i = 0; i < n && (r = store_dequeue(ws)) != NULL; i++) {
        feed_reg_result_t res = tkc_feed_region_register(w, fs, r, now);
        if (res == FEED_REG_OK)
            continue;
        if (res == FEED_REG_DEFER) {
            *dtail = r;
            dtail = &r->next;
            continue;
        }
        store_enqueue(ws, r); /* stopped or fatal: leave it for later / teardown */
        break;
    }
    while (deferred) {
        r = deferred;
        deferred = r->next;
        store_enqueue(ws, r);
    }
}

/* ===== inbound ===== */

void tkc_feed_worker_submit(feed_worker_t *w, feed_region_t *r)
{
    if (tkc_msgq_try_push(w->inbox, r, 1) != TKC_ERR_OK)
        tkc_feed_region_free(r); /* shutting down */
}

static void drain_inbox(feed_worker_t *w)
{
    for (int i = 0; i < WORKER_INBOX_BATCH; i++) {
        feed_region_t *r = tkc_msgq_pop(w->inbox, 0, NULL);
        if (!r)
            break;
        feed_store_t *ws = store_get(w, r->store_id, r->store_addr);
        tkc_feed_region_reset(r);
        store_enqueue(ws, r);
    }
}

/* ===== periodic checks ===== */

static void request_lock_resolution(feed_worker_t *w, feed_region_t *r, uint64_t pd_now,
                                    int64_t lag_ms, int64_t now)
{
    tkc_feed_t *f = w->f;
    /* Locks younger than the margin belong to live transactions; leave them
     * (TiCDC's old client: PD time - 10 s). */
    int64_t margin = f->cfg.stuck_threshold_ms / 2;
    if (margin > 10000)
        margin = 10000;
    feed_msg_t *m = tkc_calloc(1, sizeof(*m));
    m->kind = FEED_MSG_RESOLVE;
    m->region_id = r->region_id;
    m->max_version = tkc_tso_compose(tkc_tso_physical_ms(pd_now) - margin, 0);
    r->last_resolve_req_ms = now;
    tkc_log(TKC_LOG_DEBUG, "feed",
            "event=region_resolved_ts_stuck region_id=%" PRIu64 " store_id=%" PRIu64
            " resolved_ts=%" PRIu64 " lag_ms=%" PRId64 " action=resolve_locks max_version=%" PRIu64,
            r->region_id, r->store_id, r->resolved_ts, lag_ms, m->max_version);
    if (tkc_msgq_try_push(f->resolver_in, m, 1) != TKC_ERR_OK)
        tkc_free(m);
}

static void stuck_check(feed_worker_t *w, int64_t now)
{
    tkc_feed_t *f = w->f;
    /* while the outbox is full the lag is ours (flow control), not TiKV's */
    uint64_t pd_now = w->recv_paused ? 0 : tkc_feed_pd_now(f);
    feed_stream_t *dereg_stuck[16];
    size_t n_dereg = 0;
    tkc_hashmap_iter_t it = TKC_HASHMAP_ITER_INIT;
    void *val;
    while (tkc_hashmap_next(w->regions, &it, NULL, NULL, &val)) {
        feed_region_t *r = val;
        feed_stream_t *fs = r->fs;
        if (!fs || fs->failed)
            continue;
        if (r->status == FR_DEREGISTERING && now - r->dereg_ms > f->cfg.deregister_timeout_ms) {
            bool seen = false;
            for (size_t i = 0; i < n_dereg; i++)
                seen |= dereg_stuck[i] == fs;
            if (!seen && n_dereg < 16)
                dereg_stuck[n_dereg++] = fs;
            continue;
        }
        if (r->status != FR_INITIALIZED || pd_now == 0)
            continue;
        /* only when the stream is healthy: a silent stream is the stall
         * watchdog's business, not a lock's */
        if (now - fs->last_recv_ms > WORKER_HEALTHY_RECV_MS)
            continue;
        /* stuck = far behind PD AND not moving: a region that advances
         * with every message but lags because the pipeline is slow is
         * held back by us, not by a lock */
        int64_t lag = tkc_tso_physical_ms(pd_now) - tkc_tso_physical_ms(r->resolved_ts);
        if (lag <= f->cfg.stuck_threshold_ms ||
            now - r->last_advance_ms < f->cfg.stuck_threshold_ms / 2)
            continue;
        if (r->last_resolve_req_ms && now - r->last_resolve_req_ms < f->cfg.resolve_lock_interval_ms)
            continue;
        request_lock_resolution(w, r, pd_now, lag, now);
    }
    for (size_t i = 0; i < n_dereg; i++) {
        snprintf(dereg_stuck[i]->fail_reason, sizeof(dereg_stuck[i]->fail_reason),
                 "TiKV did not confirm a Deregister");
        tkc_feed_worker_stream_failed(w, dereg_stuck[i]);
    }
}

static void periodic(feed_worker_t *w, int64_t now)
{
    tkc_feed_t *f = w->f;
    /* retire retries, connect timeouts, stalls; collect first, act after
     * (acting may free list members) */
    feed_stream_t *act[64];
    size_t n_act = 0;
    for (feed_stream_t *fs = w->streams; fs && n_act < 64; fs = fs->next) {
        if (fs->failed) {
            if (!fs->retired && fs->retire_retry_ms && now >= fs->retire_retry_ms)
                act[n_act++] = fs;
            continue;
        }
        if (!fs->connected) {
            grpc_connectivity_state cs = grpc_channel_check_connectivity_state(fs->ws->ch, 0);
            if (cs == GRPC_CHANNEL_READY) {
                fs->connected = true; /* the server just has not said anything yet */
                continue;
            }
            if (cs == GRPC_CHANNEL_TRANSIENT_FAILURE) {
                /* the connect failed (refused, unreachable): waiting for
                 * the connect timeout would only hold its regions back */
                snprintf(fs->fail_reason, sizeof(fs->fail_reason),
                         "store unreachable (connect failed)");
                fs->store_failed = true;
                tkc_feed_store_count(f, fs->store_id, FEED_STORE_CONNECT_TIMEOUT, fs->id);
                act[n_act++] = fs;
                continue;
            }
            if (now - fs->opened_ms > f->cfg.connect_timeout_ms) {
                snprintf(fs->fail_reason, sizeof(fs->fail_reason),
                         "no connection within %" PRId64 " ms", f->cfg.connect_timeout_ms);
                fs->store_failed = true;
                tkc_feed_store_count(f, fs->store_id, FEED_STORE_CONNECT_TIMEOUT, fs->id);
                act[n_act++] = fs;
                continue;
            }
        }
        /* a stream we stopped reading (flow control) is not stalled */
        if (fs->connected && fs->n_initialized > 0 && !fs->recv_paused &&
            now - fs->last_recv_ms > f->cfg.stream_stall_timeout_ms) {
            snprintf(fs->fail_reason, sizeof(fs->fail_reason),
                     "nothing received for %" PRId64 " ms with %zu initialized regions",
                     now - fs->last_recv_ms, fs->n_initialized);
            tkc_feed_store_count(f, fs->store_id, FEED_STORE_STALL, fs->id);
            act[n_act++] = fs;
        }
    }
    for (size_t i = 0; i < n_act; i++) {
        feed_stream_t *fs = act[i];
        if (fs->failed) {
            try_retire(w, fs, now);
            tkc_feed_worker_stream_maybe_free(w, fs);
        } else {
            tkc_feed_worker_stream_failed(w, fs);
            tkc_feed_worker_stream_maybe_free(w, fs);
        }
    }

    /* suspect stores regions wait for (or did lately, they may be on
     * their way back from the scheduler): keep probing even while none
     * is queued here, so the stream opens the moment they arrive */
    for (size_t i = 0; i < w->n_stores; i++) {
        feed_store_t *ws = w->stores[i];
        if (ws->suspect && ws->ch && !ws->cur && now - ws->wanted_ms < WORKER_PROBE_IDLE_MS)
            store_probe(w, ws, now);
    }

    /* TEST ONLY: the delayed second cleanup of retired streams */
    for (feed_hook_t **pp = &w->hooks; *pp;) {
        feed_hook_t *h = *pp;
        if (now < h->due_ms) {
            pp = &h->next;
            continue;
        }
        tkc_stream_region_list_t list;
        int64_t retry_at = 0;
        tkc_stream_status_t s = tkc_stream_table_retire(w->tbl, h->st, now, &list, &retry_at);
        if (s == TKC_STREAM_RATE_LIMITED) {
            h->due_ms = retry_at;
            pp = &h->next;
            continue;
        }
        tkc_log(TKC_LOG_INFO, "feed",
                "event=test_delayed_cleanup worker=%d store_id=%" PRIu64 " stream_id=%" PRIu64
                " result=%s",
                w->idx, tkc_stream_store_id(h->st), tkc_stream_id(h->st),
                tkc_stream_status_name(s));
        /* a stream retired before has no regions left to hand back */
        tkc_stream_region_list_fini(&list);
        *pp = h->next;
        tkc_stream_release(h->st);
        tkc_free(h);
    }

    if (now >= w->next_stuck_ms) {
        w->next_stuck_ms = now + f->cfg.stuck_check_interval_ms;
        stuck_check(w, now);
    }
}

/* ===== thread ===== */

static void worker_shutdown(feed_worker_t *w)
{
    w->shutting_down = true;
    for (feed_stream_t *fs = w->streams; fs; fs = fs->next)
        tkc_feed_stream_cancel(fs);
    int64_t deadline = tkc_clock_mono_ms() + WORKER_SHUTDOWN_WAIT_MS;
    while (w->streams && tkc_clock_mono_ms() < deadline) {
        bool busy = false;
        for (feed_stream_t *fs = w->streams; fs; fs = fs->next)
            busy |= fs->pending_ops > 0;
        if (!busy)
            break;
        grpc_event ev = grpc_completion_queue_next(w->cq, tkc_rpc_deadline_ms(100), NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            tkc_feed_stream_on_op(ev.tag, ev.success);
    }
    /* every batch has completed (or gRPC is wedged: then leak, never free
     * what a completion may still touch) */
    for (feed_stream_t *fs = w->streams, *next; fs; fs = next) {
        next = fs->next;
        if (fs->pending_ops == 0)
            tkc_feed_stream_free(fs);
    }
}

static void *worker_main(void *arg)
{
    feed_worker_t *w = arg;
    tkc_feed_t *f = w->f;
    char name[16];
    snprintf(name, sizeof(name), "tkc-feed-w%d", w->idx);
    pthread_setname_np(pthread_self(), name);
    while (!tkc_feed_stopping(f)) {
        grpc_event ev = grpc_completion_queue_next(w->cq, tkc_rpc_deadline_ms(f->cfg.poll_ms), NULL);
        for (int n = 0; ev.type == GRPC_OP_COMPLETE; n++) {
            tkc_feed_stream_on_op(ev.tag, ev.success);
            if (n >= WORKER_CQ_BATCH)
                break;
            ev = grpc_completion_queue_next(w->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
        }
        int64_t now = tkc_clock_mono_ms();
        if (!tkc_feed_is_fatal(f)) {
            drain_inbox(w);
            if (now >= w->next_periodic_ms) {
                w->next_periodic_ms = now + WORKER_PERIODIC_MS;
                periodic(w, now);
            }
            for (size_t i = 0; i < w->n_stores; i++)
                store_pump(w, w->stores[i], now);
        }
        outbox_flush_and_resume(w);
    }
    worker_shutdown(w);
    return NULL;
}

feed_worker_t *tkc_feed_worker_new(tkc_feed_t *f, int idx)
{
    feed_worker_t *w = tkc_calloc(1, sizeof(*w));
    w->f = f;
    w->idx = idx;
    w->cq = grpc_completion_queue_create_for_next(NULL);
    w->tbl = tkc_stream_table_new(f->cfg.alter_interval_ms, NULL);
    w->inbox = tkc_msgq_new(SIZE_MAX / 4);
    w->regions = tkc_hashmap_new_fixed(12); /* (span, region id); one per region */
    w->rng = (uint64_t)tkc_clock_mono_ms() * 2654435761u + (uint64_t)idx + 1;
    return w;
}

void tkc_feed_worker_start(feed_worker_t *w)
{
    pthread_create(&w->thr, NULL, worker_main, w);
}

void tkc_feed_worker_join(feed_worker_t *w)
{
    pthread_join(w->thr, NULL);
}

static void free_region_cb(void *r)
{
    tkc_feed_region_free(r);
}

void tkc_feed_worker_destroy(feed_worker_t *w)
{
    if (!w)
        return;
    /* regions still registered (owned through the map), then the queues */
    tkc_hashmap_destroy(w->regions, free_region_cb);
    for (size_t i = 0; i < w->n_stores; i++) {
        feed_store_t *ws = w->stores[i];
        tkc_feed_region_free_list(ws->pending);
        if (ws->ch)
            grpc_channel_destroy(ws->ch);
        tkc_free(ws);
    }
    tkc_free(w->stores);
    while (w->out_head) {
        feed_out_t *o = w->out_head;
        w->out_head = o->next;
        if (o->kind == OUT_EVENT)
            tkc_feed_event_destroy(o->ptr);
        else
            tkc_feed_msg_free(o->ptr);
        tkc_free(o);
    }
    if (w->fail_batch)
        tkc_feed_msg_free(w->fail_batch);
    while (w->hooks) {
        feed_hook_t *h = w->hooks;
        w->hooks = h->next;
        tkc_stream_release(h->st);
        tkc_free(h);
    }
    tkc_msgq_destroy(w->inbox, free_region_cb);
    tkc_stream_table_destroy(w->tbl);
    grpc_completion_queue_shutdown(w->cq);
    while (grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(w->cq);
    tkc_rpc_arena_destroy(w->pb_arena);
    tkc_free(w);
}
