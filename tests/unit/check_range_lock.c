/*
 * check_range_lock.c: unit tests of range_lock (tikv-cdc-protocol.md §5.2).
 *
 * Keys are 4-byte big-endian numbers K(i), so ranges read as [i, j). The
 * cases cover LOCKED / STALE / WAIT, unlock carrying the resolved ts back,
 * splits, merges, holes and +inf ends; a randomized test compares every
 * operation with a brute-force model over 64 unit keys; a last test
 * measures the costs at 100k regions (printed, not asserted).
 */
#include "range_lock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unit/check_main.h"

/* ===== helpers ===== */

typedef struct key_s {
    uint8_t b[4];
} key_t_;

static key_t_ K(uint32_t i)
{
    key_t_ k = {{(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i}};
    return k;
}

static uint32_t unK(const uint8_t *b, size_t len)
{
    ck_assert_uint_eq(len, 4);
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

typedef struct wakes_s {
    uint64_t v[64];
    size_t n;
} wakes_t;

static void on_wake(void *opaque, uint64_t waiter)
{
    wakes_t *w = opaque;
    if (w->n < 64)
        w->v[w->n] = waiter;
    w->n++;
}

static tkc_range_lock_t *new_lock(uint32_t a, uint32_t b, uint64_t ts, wakes_t *w)
{
    key_t_ s = K(a), e = K(b);
    tkc_range_lock_t *rl = tkc_range_lock_new(s.b, 4, e.b, 4, ts, on_wake, w);
    ck_assert_ptr_nonnull(rl);
    return rl;
}

/* Locks [a, b); returns the status, fills *ts with the checkpoint. */
static tkc_range_lock_status_t lock(tkc_range_lock_t *rl, uint32_t a, uint32_t b, uint64_t region,
                                    uint64_t version, uint64_t *ts, tkc_range_lock_result_t *keep)
{
    key_t_ s = K(a), e = K(b);
    tkc_range_lock_result_t res;
    ck_assert_int_eq(tkc_range_lock_lock_range(rl, s.b, 4, e.b, 4, region, version, region, &res),
                     TKC_ERR_OK);
    if (ts)
        *ts = res.checkpoint_ts;
    tkc_range_lock_status_t st = res.status;
    if (keep)
        *keep = res;
    else
        tkc_range_lock_result_fini(&res);
    ck_assert(tkc_range_lock_check(rl));
    return st;
}

static void lock_ok(tkc_range_lock_t *rl, uint32_t a, uint32_t b, uint64_t region,
                    uint64_t version, uint64_t want_ts)
{
    uint64_t ts;
    ck_assert_int_eq(lock(rl, a, b, region, version, &ts, NULL), TKC_RANGE_LOCK_LOCKED);
    ck_assert_uint_eq(ts, want_ts);
}

static void unlock_ok(tkc_range_lock_t *rl, uint32_t a, uint32_t b, uint64_t region,
                      uint64_t version, uint64_t ts)
{
    key_t_ s = K(a), e = K(b);
    ck_assert_int_eq(tkc_range_lock_unlock_range(rl, s.b, 4, e.b, 4, region, version, ts),
                     TKC_ERR_OK);
    ck_assert(tkc_range_lock_check(rl));
}

/* Expects STALE with exactly the given retry ranges (pairs a0,b0,a1,b1...). */
static void expect_stale(tkc_range_lock_t *rl, uint32_t a, uint32_t b, uint64_t region,
                         uint64_t version, size_t n, const uint32_t *want)
{
    tkc_range_lock_result_t res;
    ck_assert_int_eq(lock(rl, a, b, region, version, NULL, &res), TKC_RANGE_LOCK_STALE);
    ck_assert_uint_eq(res.n_retry, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(unK(res.retry[i].start, res.retry[i].start_len), want[2 * i]);
        ck_assert_uint_eq(unK(res.retry[i].end, res.retry[i].end_len), want[2 * i + 1]);
    }
    tkc_range_lock_result_fini(&res);
}

/* ===== cases ===== */

START_TEST(test_range_lock_basic)
{
    wakes_t w = {.n = 0};
    tkc_range_lock_t *rl = new_lock(0, 100, 5, &w);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 5);
    lock_ok(rl, 0, 50, 1, 1, 5);
    lock_ok(rl, 50, 100, 2, 1, 5);
    ck_assert_uint_eq(tkc_range_lock_count(rl), 2);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 5);
    ck_assert_int_eq(tkc_range_lock_update(rl, 1, 10), TKC_ERR_OK);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 5);
    ck_assert_int_eq(tkc_range_lock_update(rl, 2, 8), TKC_ERR_OK);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 8);
    /* never backwards */
    ck_assert_int_eq(tkc_range_lock_update(rl, 2, 7), TKC_ERR_OK);
    ck_assert_uint_eq(tkc_range_lock_region_ts(rl, 2), 8);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 8);
    /* a range is locked at most once */
    ck_assert_int_eq(lock(rl, 0, 50, 1, 1, NULL, NULL), TKC_RANGE_LOCK_STALE);
    ck_assert_int_eq(lock(rl, 10, 20, 3, 1, NULL, NULL), TKC_RANGE_LOCK_STALE);
    ck_assert_uint_eq(tkc_range_lock_count(rl), 2);
    ck_assert_uint_eq(w.n, 0);
    tkc_range_lock_destroy(rl);
}
END_TEST

START_TEST(test_range_lock_wait)
{
    wakes_t w = {.n = 0};
    tkc_range_lock_t *rl = new_lock(0, 100, 5, &w);
    lock_ok(rl, 0, 50, 1, 1, 5);
    /* a newer region (version 2) over the old one waits for it */
    ck_assert_int_eq(lock(rl, 20, 70, 3, 2, NULL, NULL), TKC_RANGE_LOCK_WAIT);
    ck_assert_int_eq(lock(rl, 20, 70, 3, 2, NULL, NULL), TKC_RANGE_LOCK_WAIT); /* no double wake */
    ck_assert_uint_eq(w.n, 0);
    unlock_ok(rl, 0, 50, 1, 1, 12);
    ck_assert_uint_eq(w.n, 1);
    ck_assert_uint_eq(w.v[0], 3);
    /* checkpoint = min of the pieces covered: [20,50) at 12, [50,70) at 5 */
    lock_ok(rl, 20, 70, 3, 2, 5);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 5);
    tkc_range_lock_destroy(rl);
}
END_TEST

START_TEST(test_range_lock_wait_two)
{
    wakes_t w = {.n = 0};
    tkc_range_lock_t *rl = new_lock(0, 100, 5, &w);
    lock_ok(rl, 0, 30, 1, 1, 5);
    lock_ok(rl, 30, 60, 2, 1, 5);
    /* a merged region waits for both halves */
    ck_assert_int_eq(lock(rl, 0, 60, 2, 4, NULL, NULL), TKC_RANGE_LOCK_WAIT);
    unlock_ok(rl, 0, 30, 1, 1, 20);
    ck_assert_uint_eq(w.n, 1);
    ck_assert_int_eq(lock(rl, 0, 60, 2, 4, NULL, NULL), TKC_RANGE_LOCK_WAIT);
    unlock_ok(rl, 30, 60, 2, 1, 40);
    ck_assert_uint_eq(w.n, 2);
    lock_ok(rl, 0, 60, 2, 4, 20);
    tkc_range_lock_destroy(rl);
}
END_TEST

START_TEST(test_range_lock_stale)
{
    wakes_t w = {.n = 0};
    tkc_range_lock_t *rl = new_lock(0, 100, 5, &w);
    lock_ok(rl, 0, 50, 1, 5, 5);
    /* an older version overlapping a newer lock: retry the uncovered part */
    expect_stale(rl, 10, 60, 9, 3, 1, (const uint32_t[]){50, 60});
    /* equal version is stale too */
    expect_stale(rl, 40, 60, 9, 5, 1, (const uint32_t[]){50, 60});
    /* fully covered: nothing to retry */
    expect_stale(rl, 10, 20, 9, 1, 0, NULL);
    lock_ok(rl, 60, 70, 2, 5, 5);
    lock_ok(rl, 80, 90, 3, 5, 5);
    /* gaps before, between and after several locks */
    expect_stale(rl, 0, 100, 9, 1, 3, (const uint32_t[]){50, 60, 70, 80, 90, 100});
    tkc_range_lock_destroy(rl);
}
END_TEST

START_TEST(test_range_lock_same_region)
{
    wakes_t w = {.n = 0};
    tkc_range_lock_t *rl = new_lock(0, 100, 5, &w);
    lock_ok(rl, 0, 10, 1, 2, 5);
    /* region 1 again on a disjoint range: newer version waits for its old lock */
    ck_assert_int_eq(lock(rl, 20, 30, 1, 3, NULL, NULL), TKC_RANGE_LOCK_WAIT);
    /* older version is stale; the disjoint lock leaves the whole range to retry */
    expect_stale(rl, 20, 30, 1, 1, 1, (const uint32_t[]){20, 30});
    unlock_ok(rl, 0, 10, 1, 2, 6);
    ck_assert_uint_eq(w.n, 1);
    lock_ok(rl, 20, 30, 1, 3, 5);
    tkc_range_lock_destroy(rl);
}
END_TEST

START_TEST(test_range_lock_unlock_carries_ts)
{
    wakes_t w = {.n = 0};
    tkc_range_lock_t *rl = new_lock(0, 100, 5, &w);
    lock_ok(rl, 0, 100, 1, 1, 5);
    ck_assert_int_eq(tkc_range_lock_update(rl, 1, 50), TKC_ERR_OK);
    /* the larger of the lock's ts and the one passed is kept */
    unlock_ok(rl, 0, 100, 1, 1, 40);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 50);
    lock_ok(rl, 0, 30, 2, 2, 50);
    unlock_ok(rl, 0, 30, 2, 2, 70);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 50);
    lock_ok(rl, 0, 100, 3, 3, 50);
    unlock_ok(rl, 0, 100, 3, 3, 90);
    lock_ok(rl, 20, 40, 4, 4, 90);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 90);
    tkc_range_lock_destroy(rl);
}
END_TEST

static uint64_t split_pieces_seen;

static void count_piece(void *opaque, const tkc_keyrange_t *r, uint64_t region, uint64_t version,
                        uint64_t ts)
{
    (void)opaque;
    (void)r;
    (void)region;
    (void)version;
    (void)ts;
    split_pieces_seen++;
}

START_TEST(test_range_lock_split)
{
    wakes_t w = {.n = 0};
    tkc_range_lock_t *rl = new_lock(0, 100, 5, &w);
    lock_ok(rl, 0, 100, 1, 1, 5);
    ck_assert_int_eq(tkc_range_lock_update(rl, 1, 30), TKC_ERR_OK);
    /* split: epoch_not_match; the parent's range is unlocked with its ts */
    unlock_ok(rl, 0, 100, 1, 1, 30);
    lock_ok(rl, 0, 40, 1, 2, 30);
    lock_ok(rl, 40, 100, 2, 2, 30);
    /* the span's resolved ts does not jump or fall */
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 30);
    /* stale PD still answers with the parent: STALE, nothing left to retry */
    expect_stale(rl, 0, 100, 1, 1, 0, NULL);
    ck_assert_int_eq(tkc_range_lock_update(rl, 1, 40), TKC_ERR_OK);
    ck_assert_int_eq(tkc_range_lock_update(rl, 2, 35), TKC_ERR_OK);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 35);
    split_pieces_seen = 0;
    tkc_range_lock_foreach_locked(rl, count_piece, NULL);
    ck_assert_uint_eq(split_pieces_seen, 2);
    split_pieces_seen = 0;
    tkc_range_lock_foreach_unlocked(rl, count_piece, NULL);
    ck_assert_uint_eq(split_pieces_seen, 0);
    tkc_range_lock_destroy(rl);
}
END_TEST

START_TEST(test_range_lock_merge)
{
    wakes_t w = {.n = 0};
    tkc_range_lock_t *rl = new_lock(0, 100, 5, &w);
    lock_ok(rl, 0, 50, 1, 3, 5);
    lock_ok(rl, 50, 100, 2, 3, 5);
    ck_assert_int_eq(tkc_range_lock_update(rl, 1, 20), TKC_ERR_OK);
    ck_assert_int_eq(tkc_range_lock_update(rl, 2, 40), TKC_ERR_OK);
    /* region 2 absorbs region 1 (version 4): waits while either is locked */
    ck_assert_int_eq(lock(rl, 0, 100, 2, 4, NULL, NULL), TKC_RANGE_LOCK_WAIT);
    unlock_ok(rl, 50, 100, 2, 3, 40);
    ck_assert_int_eq(lock(rl, 0, 100, 2, 4, NULL, NULL), TKC_RANGE_LOCK_WAIT);
    unlock_ok(rl, 0, 50, 1, 3, 20);
    /* merged region registers once, from the smaller ts: no gap */
    lock_ok(rl, 0, 100, 2, 4, 20);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 20);
    ck_assert_uint_eq(tkc_range_lock_count(rl), 1);
    tkc_range_lock_destroy(rl);
}
END_TEST

typedef struct holes_s {
    uint32_t a[8], b[8];
    uint64_t ts[8];
    size_t n;
} holes_t;

static void collect_hole(void *opaque, const tkc_keyrange_t *r, uint64_t region, uint64_t version,
                         uint64_t ts)
{
    holes_t *h = opaque;
    ck_assert_uint_eq(region, 0);
    ck_assert_uint_eq(version, 0);
    ck_assert_uint_lt(h->n, 8);
    h->a[h->n] = unK(r->start, r->start_len);
    h->b[h->n] = unK(r->end, r->end_len);
    h->ts[h->n] = ts;
    h->n++;
}

START_TEST(test_range_lock_holes)
{
    wakes_t w = {.n = 0};
    tkc_range_lock_t *rl = new_lock(0, 100, 5, &w);
    lock_ok(rl, 10, 20, 1, 1, 5);
    lock_ok(rl, 30, 40, 2, 1, 5);
    ck_assert_int_eq(tkc_range_lock_update(rl, 1, 100), TKC_ERR_OK);
    ck_assert_int_eq(tkc_range_lock_update(rl, 2, 100), TKC_ERR_OK);
    /* holes (never locked) keep the start ts */
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 5);
    holes_t h = {.n = 0};
    tkc_range_lock_foreach_unlocked(rl, collect_hole, &h);
    ck_assert_uint_eq(h.n, 3);
    ck_assert_uint_eq(h.a[0], 0);
    ck_assert_uint_eq(h.b[0], 10);
    ck_assert_uint_eq(h.a[1], 20);
    ck_assert_uint_eq(h.b[1], 30);
    ck_assert_uint_eq(h.a[2], 40);
    ck_assert_uint_eq(h.b[2], 100);
    /* filling the holes lets the resolved ts move */
    lock_ok(rl, 0, 10, 3, 1, 5);
    lock_ok(rl, 20, 30, 4, 1, 5);
    lock_ok(rl, 40, 100, 5, 1, 5);
    for (uint64_t r = 3; r <= 5; r++)
        ck_assert_int_eq(tkc_range_lock_update(rl, r, 90), TKC_ERR_OK);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 90);
    h.n = 0;
    tkc_range_lock_foreach_unlocked(rl, collect_hole, &h);
    ck_assert_uint_eq(h.n, 0);
    tkc_range_lock_destroy(rl);
}
END_TEST

START_TEST(test_range_lock_errors)
{
    wakes_t w = {.n = 0};
    tkc_range_lock_t *rl = new_lock(10, 100, 5, &w);
    key_t_ a = K(5), b = K(20), c = K(50), d = K(120);
    tkc_range_lock_result_t res;
    /* outside the span, empty, reversed */
    ck_assert_int_eq(tkc_range_lock_lock_range(rl, a.b, 4, b.b, 4, 1, 1, 0, &res),
                     TKC_ERR_INVALID_ARG);
    ck_assert_int_eq(tkc_range_lock_lock_range(rl, c.b, 4, d.b, 4, 1, 1, 0, &res),
                     TKC_ERR_INVALID_ARG);
    ck_assert_int_eq(tkc_range_lock_lock_range(rl, c.b, 4, NULL, 0, 1, 1, 0, &res),
                     TKC_ERR_INVALID_ARG); /* +inf end beyond the span */
    ck_assert_int_eq(tkc_range_lock_lock_range(rl, c.b, 4, c.b, 4, 1, 1, 0, &res),
                     TKC_ERR_INVALID_ARG);
    ck_assert_int_eq(tkc_range_lock_lock_range(rl, c.b, 4, b.b, 4, 1, 1, 0, &res),
                     TKC_ERR_INVALID_ARG);
    lock_ok(rl, 20, 50, 1, 2, 5);
    /* unlock must name exactly the lock */
    ck_assert_int_eq(tkc_range_lock_unlock_range(rl, b.b, 4, c.b, 4, 2, 2, 9), TKC_ERR_NOT_FOUND);
    ck_assert_int_eq(tkc_range_lock_unlock_range(rl, b.b, 4, c.b, 4, 1, 1, 9), TKC_ERR_NOT_FOUND);
    ck_assert_int_eq(tkc_range_lock_unlock_range(rl, b.b, 4, d.b, 4, 1, 2, 9), TKC_ERR_NOT_FOUND);
    ck_assert_int_eq(tkc_range_lock_unlock_range(rl, a.b, 4, c.b, 4, 1, 2, 9), TKC_ERR_NOT_FOUND);
    ck_assert_int_eq(tkc_range_lock_update(rl, 7, 9), TKC_ERR_NOT_FOUND);
    ck_assert_uint_eq(tkc_range_lock_region_ts(rl, 7), 0);
    ck_assert_uint_eq(tkc_range_lock_count(rl), 1);
    unlock_ok(rl, 20, 50, 1, 2, 9);
    /* a second unlock of the same lock */
    ck_assert_int_eq(tkc_range_lock_unlock_range(rl, b.b, 4, c.b, 4, 1, 2, 9), TKC_ERR_NOT_FOUND);
    ck_assert_ptr_null(tkc_range_lock_new(c.b, 4, c.b, 4, 1, NULL, NULL));
    ck_assert_str_eq(tkc_range_lock_status_name(TKC_RANGE_LOCK_STALE), "STALE");
    tkc_range_lock_destroy(rl);
}
END_TEST

START_TEST(test_range_lock_infinite)
{
    /* span ["", +inf): empty start key and empty end key */
    tkc_range_lock_t *rl = tkc_range_lock_new(NULL, 0, NULL, 0, 7, NULL, NULL);
    ck_assert_ptr_nonnull(rl);
    key_t_ m = K(50);
    tkc_range_lock_result_t res;
    ck_assert_int_eq(tkc_range_lock_lock_range(rl, NULL, 0, m.b, 4, 1, 1, 0, &res), TKC_ERR_OK);
    ck_assert_int_eq(res.status, TKC_RANGE_LOCK_LOCKED);
    ck_assert_uint_eq(res.checkpoint_ts, 7);
    ck_assert(tkc_range_lock_check(rl));
    ck_assert_int_eq(tkc_range_lock_lock_range(rl, m.b, 4, NULL, 0, 2, 1, 0, &res), TKC_ERR_OK);
    ck_assert_int_eq(res.status, TKC_RANGE_LOCK_LOCKED);
    ck_assert(tkc_range_lock_check(rl));
    /* stale over everything: nothing to retry */
    ck_assert_int_eq(tkc_range_lock_lock_range(rl, NULL, 0, NULL, 0, 3, 1, 0, &res), TKC_ERR_OK);
    ck_assert_int_eq(res.status, TKC_RANGE_LOCK_STALE);
    ck_assert_uint_eq(res.n_retry, 0);
    tkc_range_lock_result_fini(&res);
    ck_assert_int_eq(tkc_range_lock_update(rl, 2, 30), TKC_ERR_OK);
    ck_assert_int_eq(tkc_range_lock_unlock_range(rl, m.b, 4, NULL, 0, 2, 1, 0), TKC_ERR_OK);
    ck_assert(tkc_range_lock_check(rl));
    /* stale for the locked left half only: retry [50, +inf) */
    ck_assert_int_eq(tkc_range_lock_lock_range(rl, NULL, 0, NULL, 0, 3, 1, 0, &res), TKC_ERR_OK);
    ck_assert_int_eq(res.status, TKC_RANGE_LOCK_STALE);
    ck_assert_uint_eq(res.n_retry, 1);
    ck_assert_uint_eq(unK(res.retry[0].start, res.retry[0].start_len), 50);
    ck_assert_uint_eq(res.retry[0].end_len, 0);
    tkc_range_lock_result_fini(&res);
    ck_assert_int_eq(tkc_range_lock_unlock_range(rl, NULL, 0, m.b, 4, 1, 1, 20), TKC_ERR_OK);
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), 20);
    ck_assert_int_eq(tkc_range_lock_lock_range(rl, NULL, 0, NULL, 0, 3, 2, 0, &res), TKC_ERR_OK);
    ck_assert_int_eq(res.status, TKC_RANGE_LOCK_LOCKED);
    ck_assert_uint_eq(res.checkpoint_ts, 20);
    ck_assert(tkc_range_lock_check(rl));
    tkc_range_lock_destroy(rl);
}
END_TEST

/* ===== randomized model check ===== */

#define MN 64

typedef struct model_lock_s {
    bool held;
    uint32_t a, b;
    uint64_t version, ts;
} model_lock_t;

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: reproducible from the seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

START_TEST(test_range_lock_model)
{
    rng_state = 0x9e3779b97f4a7c15ULL;
    uint64_t unlocked_ts[MN];
    int owner[MN]; /* region index holding the key, or -1 */
    model_lock_t locks[16];
    memset(locks, 0, sizeof(locks));
    for (int i = 0; i < MN; i++) {
        unlocked_ts[i] = 3;
        owner[i] = -1;
    }
    wakes_t w = {.n = 0};
    tkc_range_lock_t *rl = new_lock(0, MN, 3, &w);
    size_t n_locked = 0, n_stale = 0, n_wait = 0;
    for (int op = 0; op < 20000; op++) {
        int r = (int)(rnd() % 16);
        uint64_t region = (uint64_t)r + 1;
        int kind = (int)(rnd() % 3);
        if (kind == 0) {
            uint32_t a = (uint32_t)(rnd() % MN), b = (uint32_t)(rnd() % MN);
            if (a == b)
                continue;
            if (a > b) {
                uint32_t t = a;
                a = b;
                b = t;
            }
            uint64_t version = rnd() % 6 + 1;
            /* the model's answer */
            bool overlap = false, stale = false;
            uint64_t min_ts = UINT64_MAX;
            for (uint32_t i = a; i < b; i++) {
                if (owner[i] >= 0) {
                    overlap = true;
                    stale |= locks[owner[i]].version >= version;
                } else if (unlocked_ts[i] < min_ts) {
                    min_ts = unlocked_ts[i];
                }
            }
            if (locks[r].held) {
                overlap = true;
                stale |= locks[r].version >= version;
            }
            tkc_range_lock_result_t res;
            tkc_range_lock_status_t st = lock(rl, a, b, region, version, NULL, &res);
            if (!overlap) {
                ck_assert_int_eq(st, TKC_RANGE_LOCK_LOCKED);
                ck_assert_uint_eq(res.checkpoint_ts, min_ts);
                locks[r] = (model_lock_t){true, a, b, version, min_ts};
                for (uint32_t i = a; i < b; i++)
                    owner[i] = r;
                n_locked++;
            } else if (stale) {
                ck_assert_int_eq(st, TKC_RANGE_LOCK_STALE);
                /* retry = maximal runs of unowned keys in [a, b) */
                size_t k = 0;
                for (uint32_t i = a; i < b;) {
                    if (owner[i] >= 0) {
                        i++;
                        continue;
                    }
                    uint32_t j = i;
                    while (j < b && owner[j] < 0)
                        j++;
                    ck_assert_uint_lt(k, res.n_retry);
                    ck_assert_uint_eq(unK(res.retry[k].start, 4), i);
                    ck_assert_uint_eq(unK(res.retry[k].end, 4), j);
                    k++;
                    i = j;
                }
                ck_assert_uint_eq(k, res.n_retry);
                n_stale++;
            } else {
                ck_assert_int_eq(st, TKC_RANGE_LOCK_WAIT);
                n_wait++;
            }
            tkc_range_lock_result_fini(&res);
        } else if (kind == 1 && locks[r].held) {
            uint64_t ts = locks[r].ts + rnd() % 20;
            if (rnd() % 4 == 0 && ts > 10)
                ts -= 10; /* a lower ts than the lock's: the lock's wins */
            unlock_ok(rl, locks[r].a, locks[r].b, region, locks[r].version, ts);
            uint64_t keep = ts > locks[r].ts ? ts : locks[r].ts;
            for (uint32_t i = locks[r].a; i < locks[r].b; i++) {
                owner[i] = -1;
                unlocked_ts[i] = keep;
            }
            locks[r].held = false;
        } else if (kind == 2) {
            uint64_t ts = rnd() % 200;
            tkc_err_t err = tkc_range_lock_update(rl, region, ts);
            ck_assert_int_eq(err, locks[r].held ? TKC_ERR_OK : TKC_ERR_NOT_FOUND);
            if (locks[r].held && ts > locks[r].ts)
                locks[r].ts = ts;
        }
        uint64_t want = UINT64_MAX;
        for (int i = 0; i < MN; i++) {
            uint64_t t = owner[i] >= 0 ? locks[owner[i]].ts : unlocked_ts[i];
            if (t < want)
                want = t;
        }
        ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), want);
    }
    /* the walk reached every outcome */
    ck_assert_uint_gt(n_locked, 100);
    ck_assert_uint_gt(n_stale, 100);
    ck_assert_uint_gt(n_wait, 100);
    tkc_range_lock_destroy(rl);
}
END_TEST

/* ===== scale ===== */

/*
 * check's ck_assert marks a point through a pipe on every call in fork mode;
 * in loops of 10^5-10^6 that costs more than the code under test.
 */
#define FAST_ASSERT(cond)                                                      \
    do {                                                                     \
        if (!(cond))                                                         \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);            \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(test_range_lock_100k)
{
    enum { N = 100000 };
    const uint32_t step = 16;
    tkc_range_lock_t *rl = new_lock(0, N * step, 1, NULL);
    tkc_range_lock_result_t res;
    double t0 = now_s();
    for (uint32_t i = 0; i < N; i++) {
        key_t_ a = K(i * step), b = K((i + 1) * step);
        FAST_ASSERT(tkc_range_lock_lock_range(rl, a.b, 4, b.b, 4, i + 1, 1, 0, &res) ==
                    TKC_ERR_OK);
        FAST_ASSERT(res.status == TKC_RANGE_LOCK_LOCKED);
    }
    double t1 = now_s();
    rng_state = 42;
    enum { U = 1000000 };
    static uint64_t last[N]; /* the test's own record of each region's ts */
    for (uint32_t i = 0; i < N; i++)
        last[i] = 1;
    for (uint32_t k = 0; k < U; k++) {
        uint64_t region = rnd() % N + 1;
        FAST_ASSERT(tkc_range_lock_update(rl, region, 2 + k) == TKC_ERR_OK);
        last[region - 1] = 2 + k;
    }
    double t2 = now_s();
    uint64_t want = UINT64_MAX;
    for (uint32_t i = 0; i < N; i++)
        want = last[i] < want ? last[i] : want;
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), want);
    /* re-subscribe every region once (unlock + lock: a split into halves);
     * both halves start from the parent's last resolved ts */
    for (uint32_t i = 0; i < N; i++) {
        key_t_ a = K(i * step), m = K(i * step + step / 2), b = K((i + 1) * step);
        FAST_ASSERT(tkc_range_lock_unlock_range(rl, a.b, 4, b.b, 4, i + 1, 1, 0) == TKC_ERR_OK);
        FAST_ASSERT(tkc_range_lock_lock_range(rl, a.b, 4, m.b, 4, i + 1, 2, 0, &res) ==
                    TKC_ERR_OK);
        FAST_ASSERT(res.status == TKC_RANGE_LOCK_LOCKED);
        FAST_ASSERT(res.checkpoint_ts == last[i]);
        FAST_ASSERT(tkc_range_lock_lock_range(rl, m.b, 4, b.b, 4, N + i + 1, 2, 0, &res) ==
                    TKC_ERR_OK);
        FAST_ASSERT(res.status == TKC_RANGE_LOCK_LOCKED);
    }
    double t3 = now_s();
    ck_assert_uint_eq(tkc_range_lock_count(rl), 2 * N);
    ck_assert(tkc_range_lock_check(rl));
    ck_assert_uint_eq(tkc_range_lock_resolved_ts(rl), want);
    fprintf(stderr,
            "range_lock 100k regions: lock %.0f/s, update %.0f/s, "
            "unlock+2 locks (split) %.0f/s\n",
            N / (t1 - t0), U / (t2 - t1), N / (t3 - t2));
    tkc_range_lock_destroy(rl);
}
END_TEST

static Suite *range_lock_suite(void)
{
    Suite *s = suite_create("range_lock");
    TCase *tc = tcase_create("lock");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_range_lock_basic);
    tcase_add_test(tc, test_range_lock_wait);
    tcase_add_test(tc, test_range_lock_wait_two);
    tcase_add_test(tc, test_range_lock_stale);
    tcase_add_test(tc, test_range_lock_same_region);
    tcase_add_test(tc, test_range_lock_unlock_carries_ts);
    tcase_add_test(tc, test_range_lock_split);
    tcase_add_test(tc, test_range_lock_merge);
    tcase_add_test(tc, test_range_lock_holes);
    tcase_add_test(tc, test_range_lock_errors);
    tcase_add_test(tc, test_range_lock_infinite);
    suite_add_tcase(s, tc);

    tc = tcase_create("model");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_range_lock_model);
    suite_add_tcase(s, tc);

    tc = tcase_create("scale");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_range_lock_100k);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(range_lock_suite)
