/*
 * feed_scheduler.c: the feed's scheduler thread — region division from PD,
 * the range lock of every span, and the decision what to do with every
 * region failure (tikv-cdc-protocol.md §3.9, §5.2, §8.17).
 *
 * Flow:
 *   divide    a task "span s, encoded [start, end)" is loaded from PD with
 *             ScanRegions page by page; the regions must cover the range
 *             contiguously ("left-cover", §5.2); a hole (PD has not seen a
 *             new region yet, or a region without a leader) is retried after
 *             cfg.region_retry_ms while the regions around it proceed;
 *   lock      each region's piece of the span is locked in the span's range
 *             lock; LOCKED gives the checkpoint ts (the range's last resolved
 *             ts), STALE returns sub-ranges to divide again, WAIT parks the
 *             region until the overlapping lock is released (a merge whose
 *             two halves fail one after the other);
 *   dispatch  the leader store's address comes from PD (cached; reloaded
 *             after a connection failure to that store) and the region goes
 *             to the worker that owns its id (hash), so its events stay in
 *             one ordered stream of work;
 *   failure   a worker hands a region back with its last resolved ts: the
 *             range is unlocked with it (the next registration starts there)
 *             and, per kind: not_leader with a hint -> the same region to the
 *             hinted store; epoch_not_match / region_not_found / a hint-less
 *             not_leader / a failed stream or store -> divide the range again
 *             from PD; server_is_busy / congested / unknown -> the same
 *             region again after a backoff (honouring backoff_ms); a matcher
 *             error -> the same region again; duplicate_request /
 *             compatibility / cluster_id_mismatch -> the feed is already
 *             failing (fatal), nothing is rescheduled.
 *
 * No tight loops: every retry has a deadline. A region's consecutive
 * failures (forgotten after a quiet minute) grow its backoff exponentially
 * with jitter; the ranges of one failed stream share one jittered delay so
 * adjacent ones are divided together. A store failure is the exception: the
 * worker parked those regions while the store did not answer and paces
 * that poll itself, so they are looked at again at once and it is not
 * counted as a failure of the region. The regions of a failed stream or
 * store are first checked against PD with a few GetRegionByID samples and
 * only divided again when PD's answer changed ("ask PD cheaply first").
 *
 * Division is batched: all due ranges of a span are walked with one paged
 * ScanRegions cursor (divide_ranges), so re-dividing the thousands of
 * regions of a failed store costs a page per ~1000 regions, not a PD round
 * trip per region.
 *
 * Also here: the PD clock (a TSO sample every 500 ms, for stuck-region checks
 * and lag), the service GC safepoint (refreshed every gc_update_interval_ms at
 * the pipeline's checkpoint; a PD minimum above it is fatal: history lost),
 * and pushing the fatal ERROR event into the output queue.
 *
 * Thread: the scheduler thread owns everything in here; other threads only
 * call tkc_feed_sched_submit(). PD calls block this thread (bounded by the
 * PD timeout); workers keep streaming meanwhile.
 */
#include "feed_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "range_lock.h"
#include "util/clock.h"
#include "util/keyrange.h"
#include "util/log.h"
#include "util/mem.h"

#define SCHED_MAX_WAIT_MS 50
#define SCHED_INBOX_BATCH 1024
#define SCHED_TSO_INTERVAL_MS 500
#define SCHED_FAIL_FORGET_MS 60000
#define SCHED_INCOMPATIBLE_RETRY_MS 20000
#define SCHED_STREAM_JITTER_MS 100
#define SCHED_MAX_RELOAD 64
#define SCHED_RECHECK_SAMPLES 8
#define SCHED_RECHECK_GROUPS 8
#define SCHED_RECHECK_MAX_MS 5000
#define SCHED_GATHER_MS 50

typedef struct divide_task_s {
    struct divide_task_s *next;
    uint32_t span;
    uint8_t *start, *end; /* encoded; end_len 0 = +inf */
    size_t start_len, end_len;
    int64_t due_ms;
    int attempt;
} divide_task_t;

/* A store whose failed regions were sent back as they were, without a
 * full division: since when (0 = not now) and when last; and until when
 * its regions are gathered for one division (see recheck_group()). */
typedef struct kept_store_s {
    uint64_t store_id;
    int64_t since_ms, last_ms, gather_until_ms;
} kept_store_t;

typedef struct fail_hist_s {
    int n;
    int64_t last_ms;
} fail_hist_t;

struct feed_sched_s {
    tkc_feed_t *f;
    pthread_t thr;
    tkc_msgq_t *inbox; /* feed_msg_t */
    tkc_range_lock_t **locks;
    divide_task_t *divides;
    feed_region_t *delayed; /* locked, waiting for not_before_ms */
    tkc_hashmap_t *waiters; /* token -> feed_region_t (range lock WAIT) */
    uint64_t next_token;
    uint64_t *woken;
    size_t n_woken, cap_woken;
    tkc_hashmap_t *fail_hist; /* region id -> fail_hist_t */
    uint64_t reload[SCHED_MAX_RELOAD];
    size_t n_reload;
    kept_store_t kept[SCHED_MAX_RELOAD]; /* see recheck_group() */
    size_t n_kept;
    uint64_t rng;
    int64_t next_tso_ms, next_gc_ms, next_hist_gc_ms;
    int64_t last_incompat_log_ms;
    bool fatal_pushed;
};

/* ===== helpers ===== */

static void on_wake(void *opaque, uint64_t waiter)
{
    feed_sched_t *s = opaque;
    if (s->n_woken == s->cap_woken) {
        s->cap_woken = s->cap_woken ? s->cap_woken * 2 : 64;
        s->woken = tkc_realloc(s->woken, s->cap_woken * sizeof(*s->woken));
    }
    s->woken[s->n_woken++] = waiter;
}

static void add_divide(feed_sched_t *s, uint32_t span, const uint8_t *start, size_t start_len,
                       const uint8_t *end, size_t end_len, int64_t due_ms, int attempt)
{
    divide_task_t *t = tkc_calloc(1, sizeof(*t));
    t->span = span;
    t->start = tkc_memdup(start, start_len);
    t->start_len = start_len;
    t->end = tkc_memdup(end, end_len);
    t->end_len = end_len;
    t->due_ms = due_ms;
    t->attempt = attempt;
    t->next = s->divides;
    s->divides = t;
}

static void divide_task_free(divide_task_t *t)
{
    tkc_free(t->start);
    tkc_free(t->end);
    tkc_free(t);
}

static int fail_count(feed_sched_t *s, uint64_t region_id, int64_t now)
{
    fail_hist_t *h = tkc_hashmap_get(s->fail_hist, &region_id, sizeof(region_id));
    if (!h) {
        h = tkc_calloc(1, sizeof(*h));
        tkc_hashmap_put(s->fail_hist, &region_id, sizeof(region_id), h);
    }
    if (now - h->last_ms > SCHED_FAIL_FORGET_MS)
        h->n = 0;
    h->n++;
    h->last_ms = now;
    return h->n;
}

static void mark_reload(feed_sched_t *s, uint64_t store_id)
{
    for (size_t i = 0; i < s->n_reload; i++)
        if (s->reload[i] == store_id)
            return;
    if (s->n_reload < SCHED_MAX_RELOAD)
        s->reload[s->n_reload++] = store_id;
}

static bool take_reload(feed_sched_t *s, uint64_t store_id)
{
    for (size_t i = 0; i < s->n_reload; i++) {
        if (s->reload[i] == store_id) {
            s->reload[i] = s->reload[--s->n_reload];
            return true;
        }
    }
    return false;
}

/* TiKV before 7.3 keys registrations by region alone (§3.1). */
static bool version_before_7_3(const char *v)
{
    int a = 0, b = 0, c = 0;
    if (*v == 'v' || *v == 'V')
        v++;
    if (sscanf(v, "%d.%d.%d", &a, &b, &c) != 3)
        return true; /* unknown: assume the stricter rule */
    return (long)a * 1000000 + (long)b * 1000 + c < 7003000;
}

static feed_worker_t *worker_of(tkc_feed_t *f, uint64_t region_id)
{
    uint64_t h = region_id * 0x9E3779B97F4A7C15ull;
    return f->workers[(h >> 32) % (uint64_t)f->n_workers];
}

/* ===== lock, dispatch ===== */

static void lock_region(feed_sched_t *s, feed_region_t *r, int64_t delay_ms, int64_t now);

/* Unlocks @p r's range with its resolved ts and divides it again later. */
static void unlock_and_redivide(feed_sched_t *s, feed_region_t *r, int64_t delay_ms, int64_t now)
{
    tkc_range_lock_unlock_range(s->locks[r->span], r->start, r->start_len, r->end, r->end_len,
                                r->region_id, r->version, r->resolved_ts);
    add_divide(s, r->span, r->start, r->start_len, r->end, r->end_len, now + delay_ms, 0);
    tkc_feed_region_free(r);
}

static void dispatch(feed_sched_t *s, feed_region_t *r, int64_t now)
{
    tkc_feed_t *f = s->f;
    if (r->not_before_ms > now) {
        r->next = s->delayed;
        s->delayed = r;
        return;
    }
    tkc_pd_store_t st;
    char errstr[256] = "";
    bool reload = take_reload(s, r->store_id);
    tkc_err_t err = tkc_pd_client_get_store(f->pd, r->store_id, reload, &st, errstr,
                                            sizeof(errstr));
    if (err == TKC_ERR_OK && st.address[0]) {
        tkc_feed_region_set_store_addr(r, st.address);
        r->store_pre73 = version_before_7_3(st.version);
        tkc_feed_worker_submit(worker_of(f, r->region_id), r);
        return;
    }
    int n = fail_count(s, r->region_id, now);
    int64_t delay = tkc_feed_backoff_ms(f, n, &s->rng);
    if (err == TKC_ERR_INCOMPATIBLE) {
        /* A TiKV we must not read from: say so loudly, but do not storm it
         * (TiCDC's old client slept 20 s here too). */
        if (now - s->last_incompat_log_ms > 10000) {
            s->last_incompat_log_ms = now;
            tkc_log(TKC_LOG_ERROR, "feed", "event=store_incompatible store_id=%" PRIu64
                                           " err=\"%s\" action=retry_in_20s",
                    r->store_id, errstr);
        }
        delay = SCHED_INCOMPATIBLE_RETRY_MS;
    } else {
        tkc_log(TKC_LOG_WARN, "feed",
                "event=store_lookup_failed store_id=%" PRIu64 " region_id=%" PRIu64
                " err=%s reason=\"%s\" retry_ms=%" PRId64,
                r->store_id, r->region_id, tkc_err2name(err), errstr, delay);
        mark_reload(s, r->store_id);
    }
    atomic_fetch_add_explicit(&f->ctr.region_errors[TKC_FEED_REGION_ERR_STORE], 1,
                              memory_order_relaxed);
    unlock_and_redivide(s, r, delay, now);
}

static void lock_region(feed_sched_t *s, feed_region_t *r, int64_t delay_ms, int64_t now)
{
    tkc_feed_t *f = s->f;
    tkc_range_lock_result_t res;
    uint64_t token = ++s->next_token;
    tkc_err_t err = tkc_range_lock_lock_range(s->locks[r->span], r->start, r->start_len, r->end,
                                              r->end_len, r->region_id, r->version, token, &res);
    if (err != TKC_ERR_OK) {
        tkc_log(TKC_LOG_ERROR, "feed",
                "event=range_lock_refused region_id=%" PRIu64 " span=%" PRIu32 " err=%s",
                r->region_id, r->span, tkc_err2name(err));
        tkc_range_lock_result_fini(&res);
        tkc_feed_region_free(r);
        return;
    }
    switch (res.status) {
    case TKC_RANGE_LOCK_LOCKED:
        r->checkpoint_ts = res.checkpoint_ts;
        r->resolved_ts = res.checkpoint_ts;
        r->not_before_ms = now + delay_ms;
        dispatch(s, r, now);
        break;
    case TKC_RANGE_LOCK_STALE:
        /* our region info is older than a lock already held: divide the
         * uncovered parts again from PD */
        for (size_t i = 0; i < res.n_retry; i++)
            add_divide(s, r->span, res.retry[i].start, res.retry[i].start_len, res.retry[i].end,
                       res.retry[i].end_len, now + f->cfg.region_retry_ms, 0);
        tkc_feed_region_free(r);
        break;
    case TKC_RANGE_LOCK_WAIT:
        tkc_hashmap_put(s->waiters, &token, sizeof(token), r);
        break;
    }
    tkc_range_lock_result_fini(&res);
}

static void run_woken(feed_sched_t *s, int64_t now)
{
    /* a wake may lead to more wakes (lock_region never unlocks, so no) */
    size_t n = s->n_woken;
    for (size_t i = 0; i < n; i++) {
        uint64_t token = s->woken[i];
        feed_region_t *r = tkc_hashmap_remove(s->waiters, &token, sizeof(token));
        if (r)
            lock_region(s, r, 0, now);
    }
    if (n == 0)
        return;
    memmove(s->woken, s->woken + n, (s->n_woken - n) * sizeof(*s->woken));
    s->n_woken -= n;
}

/* ===== division ===== */

/* One range of a division batch: encoded [start, end) of one span, borrowed
 * from the divide tasks it was merged from. */
typedef struct div_range_s {
    const uint8_t *start, *end; /* end_len 0 = +inf */
    size_t start_len, end_len;
    int attempt;
} div_range_t;

/* Encoded [start, end) of a division PD did not cover (yet): retried on its
 * own after region_retry_ms. */
static void divide_hole(feed_sched_t *s, uint32_t span, const uint8_t *start, size_t start_len,
                        const uint8_t *end, size_t end_len, int attempt, int64_t now)
{
    FEED_COUNT(s->f, pd_holes);
    add_divide(s, span, start, start_len, end, end_len, now + s->f->cfg.region_retry_ms,
               attempt + 1);
}

/* *@p k = a copy of @p v (which may point into the old *@p k). */
static void set_key(uint8_t **k, size_t *klen, const uint8_t *v, size_t vlen)
{
    uint8_t *c = tkc_memdup(v, vlen);
    tkc_free(*k);
    *k = c;
    *klen = vlen;
}

/*
 * Divides the disjoint ranges @p rg[0..m) of span @p span (sorted by start)
 * from PD (see the top). All of them are walked with ONE paged ScanRegions
 * cursor: after a stream or store failure the failed regions are scattered
 * over the key space between healthy ones (a third of all regions for one
 * store of three), and one ScanRegions per region (one blocking PD round
 * trip each) made re-registering them cost seconds at 10k regions. A page
 * that also returns regions between our ranges costs a few hundred bytes
 * per region; the cursor jumps over gaps, so no page is fetched twice.
 */
static void divide_ranges(feed_sched_t *s, uint32_t span, const div_range_t *rg, size_t m,
                          int64_t now)
{
    tkc_feed_t *f = s->f;
    const feed_span_t *sp = &f->spans[span];
    const div_range_t *last = &rg[m - 1];
    size_t ri = 0;
    uint8_t *cursor = tkc_memdup(rg[0].start, rg[0].start_len);
    size_t cursor_len = rg[0].start_len;
    int limit = f->cfg.region_scan_limit;
    int64_t t0 = tkc_clock_mono_ms();
    size_t pages = 0, found = 0;

    while (ri < m && !tkc_feed_stopping(f)) {
        tkc_pd_region_t *rs = NULL;
        size_t n = 0;
        FEED_COUNT(f, pd_scans);
        tkc_err_t err = tkc_pd_client_scan_regions(f->pd, cursor, cursor_len, last->end,
                                                   last->end_len, limit, &rs, &n);
        pages++;
        if (err != TKC_ERR_OK) {
            FEED_COUNT(f, pd_errors);
            int attempt = rg[ri].attempt;
            int64_t delay = f->cfg.region_retry_ms * (attempt + 1);
            if (delay > 1000)
                delay = 1000;
            delay += (int64_t)(tkc_feed_rand(&s->rng) % (uint64_t)(f->cfg.region_retry_ms + 1));
            tkc_log(TKC_LOG_WARN, "feed",
                    "event=scan_regions_failed span=%" PRIu32 " err=%s attempt=%d ranges=%zu"
                    " retry_ms=%" PRId64,
                    span, tkc_err2name(err), attempt, m - ri, delay);
            add_divide(s, span, cursor, cursor_len, rg[ri].end, rg[ri].end_len, now + delay,
                       attempt + 1);
            for (size_t k = ri + 1; k < m; k++)
                add_divide(s, span, rg[k].start, rg[k].start_len, rg[k].end, rg[k].end_len,
                           now + delay, rg[k].attempt + 1);
            ri = m;
            break;
        }
        for (size_t i = 0; i < n && ri < m; i++) {
            tkc_pd_region_t *pr = &rs[i];
            /* ranges that end before this region starts: PD has no region
             * for the rest of them (yet) */
            while (ri < m && rg[ri].end_len != 0 &&
                   tkc_key_cmp(rg[ri].end, rg[ri].end_len, pr->start_key, pr->start_len) <= 0) {
                divide_hole(s, span, cursor, cursor_len, rg[ri].end, rg[ri].end_len,
                            rg[ri].attempt, now);
                if (++ri < m)
                    set_key(&cursor, &cursor_len, rg[ri].start, rg[ri].start_len);
            }
            if (ri == m)
                break;
            /* The registration is the region intersected with the whole
             * SPAN, not with the task's range (TiCDC does the same): after
             * a merge, the first half to fail must lock the merged region's
             * whole piece (waiting for the other half's lock), or the second
             * half would find its region id locked and be STALE forever. */
            const uint8_t *pe = pr->end_key, *ps = pr->start_key;
            size_t pe_len = pr->end_len, ps_len = pr->start_len;
            if (tkc_key_end_cmp(sp->enc_end, sp->enc_end_len, pe, pe_len) < 0) {
                pe = sp->enc_end;
                pe_len = sp->enc_end_len;
            }
            if (tkc_key_cmp(ps, ps_len, sp->enc_start, sp->enc_start_len) < 0) {
                ps = sp->enc_start;
                ps_len = sp->enc_start_len;
            }
            if (tkc_key_cmp_end(cursor, cursor_len, pe, pe_len) >= 0)
                continue; /* entirely before the cursor: a gap between our ranges */
            if (tkc_key_cmp(pr->start_key, pr->start_len, cursor, cursor_len) > 0) {
                /* a hole before this region: retry it, go on with the rest */
                divide_hole(s, span, cursor, cursor_len, pr->start_key, pr->start_len,
                            rg[ri].attempt, now);
                set_key(&cursor, &cursor_len, pr->start_key, pr->start_len);
            }
            feed_region_t *r = tkc_feed_region_new(span, pr->id, pr->conf_ver, pr->version, ps,
                                                   ps_len, pe, pe_len, 0);
            r->store_id = pr->leader_store_id;
            r->peer_id = pr->leader_peer_id;
            found++;
            lock_region(s, r, 0, now);
            if (pe_len == 0) {
                ri = m; /* reached +inf */
                break;
            }
            set_key(&cursor, &cursor_len, pe, pe_len);
            /* ranges this region covered are done; jump over the gap to
             * the next one */
            while (ri < m && tkc_key_cmp_end(cursor, cursor_len, rg[ri].end, rg[ri].end_len) >= 0)
                ri++;
            if (ri < m && tkc_key_cmp(rg[ri].start, rg[ri].start_len, cursor, cursor_len) > 0)
                set_key(&cursor, &cursor_len, rg[ri].start, rg[ri].start_len);
        }
        tkc_pd_regions_free(rs, n);
        if (ri < m && (int)n < limit) {
            /* PD ran out of regions before the end: holes at the tail */
            divide_hole(s, span, cursor, cursor_len, rg[ri].end, rg[ri].end_len, rg[ri].attempt,
                        now);
            for (size_t k = ri + 1; k < m; k++)
                divide_hole(s, span, rg[k].start, rg[k].start_len, rg[k].end, rg[k].end_len,
                            rg[k].attempt, now);
            ri = m;
        }
    }
    tkc_free(cursor);
    /* a pass that held the scheduler for long is worth knowing about: the
     * regions of every other failure wait behind it */
    int64_t took = tkc_clock_mono_ms() - t0;
    tkc_log(took >= 200 ? TKC_LOG_INFO : TKC_LOG_DEBUG, "feed",
            "event=divide_pass span=%" PRIu32 " ranges=%zu pages=%zu regions=%zu took_ms=%" PRId64,
            span, m, pages, found, took);
}

static int divide_cmp(const void *a, const void *b)
{
    const divide_task_t *x = *(divide_task_t *const *)a, *y = *(divide_task_t *const *)b;
    if (x->span != y->span)
        return x->span < y->span ? -1 : 1;
    return tkc_key_cmp(x->start, x->start_len, y->start, y->start_len);
}

/* Runs the due division tasks: per span, overlapping and adjacent ranges
 * are merged and all of them divided in one walk (divide_ranges). */
static void run_divides(feed_sched_t *s, int64_t now)
{
    size_t n = 0;
    for (divide_task_t *t = s->divides; t; t = t->next)
        n += t->due_ms <= now;
    if (n == 0)
        return;
    divide_task_t **due = tkc_malloc(n * sizeof(*due));
    size_t k = 0;
    for (divide_task_t **pp = &s->divides; *pp;) {
        divide_task_t *t = *pp;
        if (t->due_ms <= now) {
            *pp = t->next;
            due[k++] = t;
        } else {
            pp = &t->next;
        }
    }
    qsort(due, k, sizeof(*due), divide_cmp);
    div_range_t *rg = tkc_malloc(k * sizeof(*rg));
    size_t i = 0;
    while (i < k) {
        uint32_t span = due[i]->span;
        size_t m = 0;
        while (i < k && due[i]->span == span) {
            divide_task_t *a = due[i];
            div_range_t cur = {a->start, a->end, a->start_len, a->end_len, a->attempt};
            /* extend while the next one starts at or before the current end */
            for (i++; i < k && due[i]->span == span &&
                      (cur.end_len == 0 ||
                       tkc_key_cmp(due[i]->start, due[i]->start_len, cur.end, cur.end_len) <= 0);
                 i++) {
                if (tkc_key_end_cmp(due[i]->end, due[i]->end_len, cur.end, cur.end_len) > 0) {
                    cur.end = due[i]->end;
                    cur.end_len = due[i]->end_len;
                }
                if (due[i]->attempt > cur.attempt)
                    cur.attempt = due[i]->attempt;
            }
            rg[m++] = cur;
        }
        divide_ranges(s, span, rg, m, now);
    }
    tkc_free(rg);
    for (size_t x = 0; x < k; x++)
        divide_task_free(due[x]);
    tkc_free(due);
}

static void run_delayed(feed_sched_t *s, int64_t now)
{
    feed_region_t *due = NULL;
    for (feed_region_t **pp = &s->delayed; *pp;) {
        feed_region_t *r = *pp;
        if (r->not_before_ms <= now) {
            *pp = r->next;
            r->next = due;
            due = r;
        } else {
            pp = &r->next;
        }
    }
    while (due) {
        feed_region_t *r = due;
        due = r->next;
        r->next = NULL;
        dispatch(s, r, now);
    }
}

/* ===== failures ===== */

/*
 * Store and stream failures: ask PD cheaply first. A failed stream or a
 * store that does not answer says nothing about the regions themselves,
 * and while the store is down (the worker hands its regions back every
 * park period, feed_worker.c) PD usually still has the same answer. A full
 * division of a third of 100k regions, scattered between healthy ones over
 * the whole key space, walks every ScanRegions page (seconds under load),
 * and repeating it every park period kept the scheduler busy with it just
 * when the leaders moved. So a batch of one store's failed regions is first
 * checked with GetRegionByID on a few of them spread over the batch: if PD
 * still reports every sample with the same epoch and the same leader store,
 * the regions are locked again as they were (no scan; the worker parks them
 * until the store answers, then they go into its one new stream); if any
 * sample changed (the leaders moved, a split) or PD fails, the whole batch
 * is divided again as before. Leaders that move one region at a time could
 * hide from the samples, so a store whose regions were kept for
 * SCHED_RECHECK_MAX_MS gets a full division anyway.
 */
typedef struct recheck_group_s {
    uint64_t store_id;
    feed_region_t *list; /* not_before_ms holds each one's due time */
    size_t n;
} recheck_group_t;

/* Whether PD reports the sampled regions of @p g exactly as we have them. */
static bool recheck_unchanged(feed_sched_t *s, const recheck_group_t *g)
{
    size_t k = g->n < SCHED_RECHECK_SAMPLES ? g->n : SCHED_RECHECK_SAMPLES;
    size_t i = 0, next = 0, taken = 0;
    for (const feed_region_t *r = g->list; r && taken < k; r = r->next, i++) {
        if (i != next)
            continue;
        taken++;
        next = taken * g->n / k; /* evenly over the batch (it is in key order
                                    only by accident; any spread will do) */
        tkc_pd_region_t pr;
        memset(&pr, 0, sizeof(pr));
        tkc_err_t err = tkc_pd_client_get_region_by_id(s->f->pd, r->region_id, &pr);
        bool same = err == TKC_ERR_OK && pr.id == r->region_id && pr.version == r->version &&
                    pr.conf_ver == r->conf_ver && pr.leader_store_id == r->store_id;
        if (err == TKC_ERR_OK)
            tkc_pd_region_free(&pr);
        if (!same)
            return false;
    }
    return taken > 0;
}

/* @p store_id's slot; NULL when the table is full (then: always divide). */
static kept_store_t *kept_slot(feed_sched_t *s, uint64_t store_id)
{
    for (size_t i = 0; i < s->n_kept; i++)
        if (s->kept[i].store_id == store_id)
            return &s->kept[i];
    if (s->n_kept == SCHED_MAX_RELOAD)
        return NULL;
    kept_store_t *k = &s->kept[s->n_kept++];
    k->store_id = store_id;
    k->since_ms = k->last_ms = k->gather_until_ms = 0;
    return k;
}

static void recheck_group(feed_sched_t *s, recheck_group_t *g, int64_t now)
{
    if (tkc_feed_is_fatal(s->f)) {
        tkc_feed_region_free_list(g->list);
        g->list = NULL;
        g->n = 0;
        return;
    }
    int64_t t0 = tkc_clock_mono_ms();
    size_t n = g->n;
    kept_store_t *k = kept_slot(s, g->store_id);
    /* while a store is down its regions come back every park period (at
     * most a second apart): a quiet gap ends the episode */
    if (k && k->since_ms && now - k->last_ms > SCHED_RECHECK_MAX_MS)
        k->since_ms = 0;
    /* Once one batch of a store shows that PD's answer changed (its leaders
     * moved), the other workers' batches of that store, which come back in
     * the same park period (feed_worker.c aligns it), are divided with it:
     * one walk over the pages instead of one per worker (a walk costs a
     * second or more at 100k regions). */
    bool gathering = k && now < k->gather_until_ms;
    bool overdue = k && k->since_ms && now - k->since_ms >= SCHED_RECHECK_MAX_MS;
    bool keep = k && !gathering && !overdue && recheck_unchanged(s, g);
    if (k) {
        if (keep && !k->since_ms)
            k->since_ms = now;
        else if (!keep)
            k->since_ms = 0;
        if (!keep && !gathering)
            k->gather_until_ms = now + SCHED_GATHER_MS;
        k->last_ms = now;
    }
    int64_t gather_until = k && !keep ? k->gather_until_ms : now;
    while (g->list) {
        feed_region_t *r = g->list;
        g->list = r->next;
        r->next = NULL;
        int64_t delay = r->not_before_ms > now ? r->not_before_ms - now : 0;
        if (keep) {
            lock_region(s, r, delay, now);
        } else {
            int64_t due = now + delay > gather_until ? now + delay : gather_until;
            add_divide(s, r->span, r->start, r->start_len, r->end, r->end_len, due, 0);
            tkc_feed_region_free(r);
        }
    }
    g->n = 0;
    int64_t took = tkc_clock_mono_ms() - t0;
    tkc_log(took >= 200 ? TKC_LOG_INFO : TKC_LOG_DEBUG, "feed",
            "event=store_regions_recheck store_id=%" PRIu64 " regions=%zu action=%s took_ms=%" PRId64,
            g->store_id, n,
            keep ? "keep" : gathering ? "divide_with_others" : overdue ? "divide_overdue" : "divide",
            took);
}

/* Adds @p r (due in @p delay_ms) to its store's group; false when all
 * groups are taken by other stores (the caller divides it directly). */
static bool recheck_add(recheck_group_t *groups, size_t *n_groups, feed_region_t *r,
                        int64_t delay_ms, int64_t now)
{
    recheck_group_t *g = NULL;
    for (size_t i = 0; i < *n_groups && !g; i++)
        if (groups[i].store_id == r->store_id)
            g = &groups[i];
    if (!g) {
        if (*n_groups == SCHED_RECHECK_GROUPS)
            return false;
        g = &groups[(*n_groups)++];
        g->store_id = r->store_id;
        g->list = NULL;
        g->n = 0;
    }
    r->not_before_ms = now + delay_ms;
    r->next = g->list;
    g->list = r;
    g->n++;
    return true;
}


static void handle_failed(feed_sched_t *s, feed_msg_t *m, int64_t now)
{
    tkc_feed_t *f = s->f;
    /* one shared jitter for a whole stream's regions: their ranges become
     * due together and adjacent ones are divided in one PD scan */
    int64_t batch_jitter = (int64_t)(tkc_feed_rand(&s->rng) % SCHED_STREAM_JITTER_MS);
    feed_region_t *list = m->regions;
    m->regions = NULL;
    recheck_group_t groups[SCHED_RECHECK_GROUPS];
    size_t n_groups = 0;
    while (list) {
        feed_region_t *r = list;
        list = r->next;
        r->next = NULL;
        tkc_err_t err = tkc_range_lock_unlock_range(s->locks[r->span], r->start, r->start_len,
                                                    r->end, r->end_len, r->region_id, r->version,
                                                    r->resolved_ts);
        if (err != TKC_ERR_OK)
            tkc_log(TKC_LOG_ERROR, "feed", "event=unlock_failed region_id=%" PRIu64 " err=%s",
                    r->region_id, tkc_err2name(err));
        if (tkc_feed_is_fatal(f)) {
            tkc_feed_region_free(r);
            continue;
        }
        /* A store failure is the worker asking PD where the regions of a
         * store that does not answer went (it parked them first): a poll,
         * not a failure of the region, so it does not grow the backoff of
         * the region's next real failure (a stream failure right after a
         * failover must not wait out a backoff built up while polling). */
        int n = r->fail == TKC_FEED_REGION_ERR_STORE ? 0 : fail_count(s, r->region_id, now);
        switch (r->fail) {
        case TKC_FEED_REGION_ERR_NOT_LEADER:
            if (r->hint_store_id && r->hint_store_id != r->store_id) {
                /* follow the hint: no PD round-trip (§7 scenario 2) */
                r->store_id = r->hint_store_id;
                r->peer_id = r->hint_peer_id;
                lock_region(s, r, tkc_feed_backoff_ms(f, n - 1, &s->rng), now);
            } else {
                add_divide(s, r->span, r->start, r->start_len, r->end, r->end_len,
                           now + tkc_feed_backoff_ms(f, n, &s->rng), 0);
                tkc_feed_region_free(r);
            }
            break;
        case TKC_FEED_REGION_ERR_SERVER_IS_BUSY:
        case TKC_FEED_REGION_ERR_CONGESTED:
        case TKC_FEED_REGION_ERR_UNKNOWN: {
            int64_t delay = tkc_feed_backoff_ms(f, n, &s->rng);
            if ((int64_t)r->backoff_ms > delay)
                delay = (int64_t)r->backoff_ms;
            lock_region(s, r, delay, now);
            break;
        }
        case TKC_FEED_REGION_ERR_MATCHER:
            lock_region(s, r, tkc_feed_backoff_ms(f, n - 1, &s->rng), now);
            break;
        case TKC_FEED_REGION_ERR_STREAM: {
            mark_reload(s, r->store_id);
            int64_t delay = batch_jitter + tkc_feed_backoff_ms(f, n - 1, &s->rng);
            if (!recheck_add(groups, &n_groups, r, delay, now)) {
                add_divide(s, r->span, r->start, r->start_len, r->end, r->end_len, now + delay,
                           0);
                tkc_feed_region_free(r);
            }
            break;
        }
        case TKC_FEED_REGION_ERR_STORE:
            /* The worker held these back while the store did not answer
             * (feed_worker.c "unreachable stores") and now asks where they
             * went: look now, the wait (and the spreading) already
             * happened there; every ms here is a ms they are not at the
             * worker when the store comes back. Growing
             * this per region would only delay noticing the new leaders
             * after the election by up to backoff_max. */
            mark_reload(s, r->store_id);
            if (!recheck_add(groups, &n_groups, r, 0, now)) {
                add_divide(s, r->span, r->start, r->start_len, r->end, r->end_len, now, 0);
                tkc_feed_region_free(r);
            }
            break;
        case TKC_FEED_REGION_ERR_DUPLICATE_REQUEST:
        case TKC_FEED_REGION_ERR_COMPATIBILITY:
        case TKC_FEED_REGION_ERR_CLUSTER_ID_MISMATCH:
            tkc_feed_region_free(r); /* fatal: reported by the worker */
            break;
        default: /* epoch_not_match, region_not_found: re-divide from PD */
            add_divide(s, r->span, r->start, r->start_len, r->end, r->end_len,
                       now + tkc_feed_backoff_ms(f, n - 1, &s->rng), 0);
            tkc_feed_region_free(r);
            break;
        }
    }
    for (size_t i = 0; i < n_groups; i++)
        recheck_group(s, &groups[i], now);
}

/* ===== PD clock, GC safepoint, fatal ===== */

static void pd_clock(feed_sched_t *s, int64_t now)
{
    if (now < s->next_tso_ms)
        return;
    s->next_tso_ms = now + SCHED_TSO_INTERVAL_MS;
    uint64_t ts = 0;
    if (tkc_pd_client_get_ts(s->f->pd, &ts) == TKC_ERR_OK)
        tkc_feed_note_pd_ts(s->f, ts);
}

static void gc_keepalive(feed_sched_t *s, int64_t now)
{
    tkc_feed_t *f = s->f;
    if (now < s->next_gc_ms)
        return;
    uint64_t sp = atomic_load(&f->checkpoint);
    if (sp < f->start_ts)
        sp = f->start_ts;
    uint64_t min = 0;
    tkc_err_t err = tkc_pd_client_update_service_safepoint(f->pd, f->service_id, f->cfg.gc_ttl_s,
                                                           sp, &min);
    if (err != TKC_ERR_OK) {
        tkc_log(TKC_LOG_WARN, "feed", "event=gc_safepoint_update_failed err=%s retry_ms=1000",
                tkc_err2name(err));
        s->next_gc_ms = now + 1000;
        return;
    }
    s->next_gc_ms = now + f->cfg.gc_update_interval_ms;
    atomic_store(&f->ctr.gc_safepoint, sp);
    if (min > sp)
        tkc_feed_set_fatal(f, TKC_FEED_ERR_SNAPSHOT_LOST,
                           "PD's GC safepoint %" PRIu64 " passed the feed's checkpoint %" PRIu64
                           " (service %s): TiKV may have removed history the feed still needs; "
                           "restart from a newer checkpoint",
                           min, sp, f->service_id);
}

static void push_fatal(feed_sched_t *s)
{
    if (s->fatal_pushed)
        return;
    tkc_feed_event_t *ev = tkc_feed_event_new(TKC_FEED_EVENT_ERROR, 0);
    tkc_feed_fill_fatal_event(s->f, ev);
    tkc_err_t err = tkc_msgq_try_push(s->f->out, ev, ev->bytes);
    if (err == TKC_ERR_QUEUE_FULL) {
        tkc_feed_event_destroy(ev); /* again on the next round */
        return;
    }
    if (err != TKC_ERR_OK)
        tkc_feed_event_destroy(ev);
    s->fatal_pushed = true;
}

/* ===== thread ===== */

static int64_t next_due(feed_sched_t *s, int64_t now)
{
    int64_t due = now + SCHED_MAX_WAIT_MS;
    for (divide_task_t *t = s->divides; t; t = t->next)
        if (t->due_ms < due)
            due = t->due_ms;
    for (feed_region_t *r = s->delayed; r; r = r->next)
        if (r->not_before_ms < due)
            due = r->not_before_ms;
    if (s->next_tso_ms < due)
        due = s->next_tso_ms;
    if (s->next_gc_ms < due)
        due = s->next_gc_ms;
    return due;
}

static void forget_old_failures(feed_sched_t *s, int64_t now)
{
    if (now < s->next_hist_gc_ms)
        return;
    s->next_hist_gc_ms = now + SCHED_FAIL_FORGET_MS;
    /* rebuild without the entries older than the forget window */
    tkc_hashmap_t *keep = tkc_hashmap_new();
    tkc_hashmap_iter_t it = TKC_HASHMAP_ITER_INIT;
    const void *key;
    size_t klen;
    void *val;
    while (tkc_hashmap_next(s->fail_hist, &it, &key, &klen, &val)) {
        fail_hist_t *h = val;
        if (now - h->last_ms <= SCHED_FAIL_FORGET_MS)
            tkc_hashmap_put(keep, key, klen, h);
        else
            tkc_free(h);
    }
    tkc_hashmap_destroy(s->fail_hist, NULL);
    s->fail_hist = keep;
}

static void *sched_main(void *arg)
{
    feed_sched_t *s = arg;
    tkc_feed_t *f = s->f;
    pthread_setname_np(pthread_self(), "tkc-feed-sched");
    int64_t now = tkc_clock_mono_ms();
    for (uint32_t i = 0; i < f->n_spans; i++)
        add_divide(s, i, f->spans[i].enc_start, f->spans[i].enc_start_len, f->spans[i].enc_end,
                   f->spans[i].enc_end_len, now, 0);
    while (!tkc_feed_stopping(f)) {
        now = tkc_clock_mono_ms();
        int64_t wait = next_due(s, now) - now;
        if (wait < 0)
            wait = 0;
        feed_msg_t *m = tkc_msgq_pop(s->inbox, (int)wait, NULL);
        now = tkc_clock_mono_ms();
        for (int i = 0; m && i < SCHED_INBOX_BATCH; i++) {
            if (m->kind == FEED_MSG_FAILED)
                handle_failed(s, m, now);
            tkc_feed_msg_free(m);
            m = i + 1 < SCHED_INBOX_BATCH ? tkc_msgq_pop(s->inbox, 0, NULL) : NULL;
        }
        if (m) {
            if (m->kind == FEED_MSG_FAILED)
                handle_failed(s, m, now);
            tkc_feed_msg_free(m);
        }
        if (tkc_feed_is_fatal(f)) {
            push_fatal(s);
            continue;
        }
        run_woken(s, now);
        run_divides(s, now);
        run_woken(s, now);
        run_delayed(s, now);
        pd_clock(s, now);
        gc_keepalive(s, now);
        forget_old_failures(s, now);
    }
    return NULL;
}

feed_sched_t *tkc_feed_sched_new(tkc_feed_t *f)
{
    feed_sched_t *s = tkc_calloc(1, sizeof(*s));
    s->f = f;
    s->inbox = tkc_msgq_new(SIZE_MAX / 4);
    s->locks = tkc_calloc(f->n_spans, sizeof(*s->locks));
    for (size_t i = 0; i < f->n_spans; i++)
        s->locks[i] = tkc_range_lock_new(f->spans[i].enc_start, f->spans[i].enc_start_len,
                                         f->spans[i].enc_end, f->spans[i].enc_end_len,
                                         f->start_ts, on_wake, s);
    s->waiters = tkc_hashmap_new();
    s->fail_hist = tkc_hashmap_new();
    s->rng = (uint64_t)tkc_clock_mono_ms() ^ 0xA5A5A5A5DEADBEEFull;
    int64_t now = tkc_clock_mono_ms();
    s->next_gc_ms = now + f->cfg.gc_update_interval_ms; /* tkc_feed_new() just set it */
    s->next_hist_gc_ms = now + SCHED_FAIL_FORGET_MS;
    return s;
}

void tkc_feed_sched_start(feed_sched_t *s)
{
    pthread_create(&s->thr, NULL, sched_main, s);
}

void tkc_feed_sched_join(feed_sched_t *s)
{
    pthread_join(s->thr, NULL);
}

void tkc_feed_sched_submit(feed_sched_t *s, feed_msg_t *msg)
{
    if (tkc_msgq_try_push(s->inbox, msg, 1) != TKC_ERR_OK)
        tkc_feed_msg_free(msg);
}

static void free_region_cb(void *r)
{
    tkc_feed_region_free(r);
}

void tkc_feed_sched_destroy(feed_sched_t *s)
{
    if (!s)
        return;
    while (s->divides) {
        divide_task_t *t = s->divides;
        s->divides = t->next;
        divide_task_free(t);
    }
    tkc_feed_region_free_list(s->delayed);
    tkc_hashmap_destroy(s->waiters, free_region_cb);
    tkc_hashmap_destroy(s->fail_hist, tkc_free);
    tkc_msgq_destroy(s->inbox, tkc_feed_msg_free);
    for (size_t i = 0; i < s->f->n_spans; i++)
        tkc_range_lock_destroy(s->locks[i]);
    tkc_free(s->locks);
    tkc_free(s->woken);
    tkc_free(s);
}
