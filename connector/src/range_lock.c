/*
 * range_lock.c: per-span range lock (tikv-cdc-protocol.md §5.2; the role of
 * TiCDC's regionlock.RangeLock, written here over our own ordered map).
 *
 * Owned by the feed worker thread that subscribes the span; no locks.
 *
 * State:
 *   locked    omap: start key -> lock_t {end, region id, version, waiters},
 *             weight = the range's resolved ts;
 *   by_region hash map: region id -> locked node (a region is locked once);
 *   unlocked  omap: piece start key -> piece state, weight = ts. The pieces
 *             tile the span [S, E) exactly: a piece ends where the next one
 *             starts (or at E). A piece is SET (not locked; weight = the last
 *             resolved ts of that range) or UNSET (covered by locks; weight
 *             UINT64_MAX so it never counts in a minimum). Adjacent UNSET
 *             pieces are merged, so the map stays O(locks + released ranges).
 *
 * Invariants (tkc_range_lock_check):
 *   - locked ranges never overlap, each region id holds at most one lock;
 *   - the UNSET pieces are exactly the union of the locked ranges;
 *   - span resolved ts = min(locked weights, SET weights), both O(1) from
 *     the omap's subtree minimum;
 *   - a lock's resolved ts never decreases (update takes the max, unlock
 *     stores the max of the lock's ts and the one passed).
 *
 * Costs: lock/unlock O(log n + k) where k is the number of pieces or locks
 * the range overlaps (1-2 normally); update O(log n); resolved ts O(1).
 */
#include "range_lock.h"

#include <stddef.h>
#include <string.h>

#include "util/hashmap.h"
#include "util/mem.h"
#include "util/omap.h"

#define PIECE_SET ((void *)(uintptr_t)1)
#define PIECE_UNSET NULL

/* one per locked region: 36 bytes of header before the end key (was 48) */
typedef struct lock_s {
    uint64_t region_id;
    uint64_t version;
    uint64_t *waiters;
    uint32_t n_waiters, cap_waiters;
    uint32_t end_len;
    uint8_t end[];
} lock_t;

struct tkc_range_lock_s {
    uint8_t *start, *end;
    size_t start_len, end_len;
    tkc_omap_t *locked;
    tkc_omap_t *unlocked;
    tkc_hashmap_t *by_region; /* region id (8 bytes) -> tkc_omap_node_t* in locked */
    tkc_range_lock_wake_cb *wake;
    void *opaque;
};

const char *tkc_range_lock_status_name(int status)
{
    switch (status) {
    case TKC_RANGE_LOCK_LOCKED:
        return "LOCKED";
    case TKC_RANGE_LOCK_STALE:
        return "STALE";
    case TKC_RANGE_LOCK_WAIT:
        return "WAIT";
    default:
        return "?";
    }
}

static void lock_free(void *p)
{
    lock_t *l = p;
    if (l) {
        tkc_free(l->waiters);
        tkc_free(l);
    }
}

static const lock_t *node_lock(const tkc_omap_node_t *n)
{
    return tkc_omap_value(n);
}

/* ===== unlocked pieces ===== */

/* End key of piece @p n: the next piece's start, or the span end. */
static const uint8_t *piece_end(const tkc_range_lock_t *rl, const tkc_omap_node_t *n, size_t *len)
{
    const tkc_omap_node_t *next = tkc_omap_next(n);
    if (next)
        return tkc_omap_key(next, len);
    *len = rl->end_len;
    return rl->end;
}

/*
 * Makes START key @p key a piece boundary (a new piece copies the state of
 * the piece it is cut from). @returns the piece starting at key.
 */
static tkc_omap_node_t *split_at(tkc_range_lock_t *rl, const uint8_t *key, size_t len)
{
    tkc_omap_node_t *n = tkc_omap_floor(rl->unlocked, key, len);
    size_t nlen;
    const uint8_t *nkey = tkc_omap_key(n, &nlen);
    if (tkc_key_cmp(nkey, nlen, key, len) == 0)
        return n;
    return tkc_omap_insert(rl->unlocked, key, len, tkc_omap_value(n), tkc_omap_weight(n), NULL);
}

/* Like split_at() for an END key: NULL when it is the span end. */
static tkc_omap_node_t *split_at_end(tkc_range_lock_t *rl, const uint8_t *key, size_t len)
{
    if (tkc_key_end_cmp(key, len, rl->end, rl->end_len) == 0)
        return NULL;
    return split_at(rl, key, len);
}

/* Gives [start, end) one piece with the given state; @returns it. */
static tkc_omap_node_t *assign(tkc_range_lock_t *rl, const uint8_t *start, size_t start_len,
                               const uint8_t *end, size_t end_len, void *state, uint64_t ts)
{
    tkc_omap_node_t *stop = split_at_end(rl, end, end_len);
    tkc_omap_node_t *first = split_at(rl, start, start_len);
    for (tkc_omap_node_t *n = tkc_omap_next(first); n != stop;) {
        tkc_omap_node_t *next = tkc_omap_next(n);
        tkc_omap_remove(rl->unlocked, n);
        n = next;
    }
    tkc_omap_set_value(first, state);
    tkc_omap_set_weight(rl->unlocked, first, ts);
    return first;
}

/* ===== lifecycle ===== */

tkc_range_lock_t *tkc_range_lock_new(const uint8_t *start, size_t start_len, const uint8_t *end,
                                     size_t end_len, uint64_t start_ts,
                                     tkc_range_lock_wake_cb *wake, void *opaque)
{
    if (tkc_key_cmp_end(start, start_len, end, end_len) >= 0)
        return NULL;
    tkc_range_lock_t *rl = tkc_calloc(1, sizeof(*rl));
    rl->start = tkc_memdup(start, start_len);
    rl->start_len = start_len;
    rl->end = tkc_memdup(end, end_len);
    rl->end_len = end_len;
    rl->locked = tkc_omap_new();
    rl->unlocked = tkc_omap_new();
    rl->by_region = tkc_hashmap_new_fixed(sizeof(uint64_t)); /* one entry per region */
    rl->wake = wake;
    rl->opaque = opaque;
    tkc_omap_insert(rl->unlocked, start, start_len, PIECE_SET, start_ts, NULL);
    return rl;
}

void tkc_range_lock_destroy(tkc_range_lock_t *rl)
{
    if (!rl)
        return;
    tkc_omap_destroy(rl->locked, lock_free);
    tkc_omap_destroy(rl->unlocked, NULL);
    tkc_hashmap_destroy(rl->by_region, NULL);
    tkc_free(rl->start);
    tkc_free(rl->end);
    tkc_free(rl);
}

void tkc_range_lock_result_fini(tkc_range_lock_result_t *res)
{
    if (!res)
        return;
    tkc_free(res->retry);
    tkc_free(res->priv_);
    res->retry = NULL;
    res->priv_ = NULL;
    res->n_retry = 0;
}

/* ===== lock ===== */

typedef struct overlaps_s {
    tkc_omap_node_t **v;
    size_t n, cap;
    tkc_omap_node_t *small[8];
} overlaps_t;

static void overlaps_push(overlaps_t *o, tkc_omap_node_t *n)
{
    if (o->n == o->cap) {
        size_t cap = o->cap * 2;
        tkc_omap_node_t **v = tkc_malloc(cap * sizeof(*v));
        memcpy(v, o->v, o->n * sizeof(*v));
        if (o->v != o->small)
            tkc_free(o->v);
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = n;
}

static void add_waiter(lock_t *l, uint64_t waiter)
{
    for (size_t i = 0; i < l->n_waiters; i++)
        if (l->waiters[i] == waiter)
            return;
    if (l->n_waiters == l->cap_waiters) {
        l->cap_waiters = l->cap_waiters ? l->cap_waiters * 2 : 2;
        l->waiters = tkc_realloc(l->waiters, l->cap_waiters * sizeof(*l->waiters));
    }
    l->waiters[l->n_waiters++] = waiter;
}

/* Fills res->retry with the parts of [start, end) no overlapping lock covers. */
static void stale_retry(const overlaps_t *o, const uint8_t *start, size_t start_len,
                        const uint8_t *end, size_t end_len, tkc_range_lock_result_t *res)
{
    /* at most one gap before each overlap plus the tail */
    const uint8_t **ks = tkc_malloc((o->n + 1) * 2 * sizeof(*ks));
    size_t *ls = tkc_malloc((o->n + 1) * 2 * sizeof(*ls));
    size_t n = 0, bytes = 0;
    const uint8_t *cur = start; /* a start key: the first byte not yet covered */
    size_t cur_len = start_len;
    bool cur_inf = false; /* a lock reaches +inf: nothing left */
    for (size_t i = 0; i < o->n && !cur_inf; i++) {
        size_t ol;
        const uint8_t *os = tkc_omap_key(o->v[i], &ol);
        const lock_t *l = node_lock(o->v[i]);
        /* skip the same-region lock found by id when it is disjoint */
        if (tkc_key_cmp_end(start, start_len, l->end, l->end_len) >= 0 ||
            tkc_key_cmp_end(os, ol, end, end_len) >= 0)
            continue;
        if (tkc_key_cmp(cur, cur_len, os, ol) < 0) {
            ks[2 * n] = cur;
            ls[2 * n] = cur_len;
            ks[2 * n + 1] = os;
            ls[2 * n + 1] = ol;
            bytes += cur_len + ol;
            n++;
        }
        cur = l->end;
        cur_len = l->end_len;
        cur_inf = cur_len == 0;
    }
    if (!cur_inf && tkc_key_cmp_end(cur, cur_len, end, end_len) < 0) {
        ks[2 * n] = cur;
        ls[2 * n] = cur_len;
        ks[2 * n + 1] = end;
        ls[2 * n + 1] = end_len;
        bytes += cur_len + end_len;
        n++;
    }
    res->n_retry = n;
    res->retry = n ? tkc_malloc(n * sizeof(*res->retry)) : NULL;
    uint8_t *buf = bytes ? tkc_malloc(bytes) : NULL;
    res->priv_ = buf;
    for (size_t i = 0; i < n; i++) {
        tkc_keyrange_t *r = &res->retry[i];
        r->start = buf;
        r->start_len = ls[2 * i];
        if (r->start_len)
            memcpy(buf, ks[2 * i], r->start_len);
        buf += r->start_len;
        r->end = buf;
        r->end_len = ls[2 * i + 1];
        if (r->end_len)
            memcpy(buf, ks[2 * i + 1], r->end_len);
        buf += r->end_len;
    }
    tkc_free(ks);
    tkc_free(ls);
}

tkc_err_t tkc_range_lock_lock_range(tkc_range_lock_t *rl, const uint8_t *start, size_t start_len,
                                    const uint8_t *end, size_t end_len, uint64_t region_id,
                                    uint64_t version, uint64_t waiter,
                                    tkc_range_lock_result_t *res)
{
    memset(res, 0, sizeof(*res));
    if (tkc_key_cmp_end(start, start_len, end, end_len) >= 0 ||
        tkc_key_cmp(start, start_len, rl->start, rl->start_len) < 0 ||
        tkc_key_end_cmp(end, end_len, rl->end, rl->end_len) > 0)
        return TKC_ERR_INVALID_ARG;

    overlaps_t o = {.v = NULL, .n = 0, .cap = 8};
    o.v = o.small;
    bool region_seen = false;

    /* a lock starting before `start` that reaches past it */
    tkc_omap_node_t *n = tkc_omap_floor(rl->locked, start, start_len);
    if (n) {
        size_t nl;
        const uint8_t *nk = tkc_omap_key(n, &nl);
        const lock_t *l = node_lock(n);
        if (tkc_key_cmp(nk, nl, start, start_len) < 0 &&
            tkc_key_cmp_end(start, start_len, l->end, l->end_len) < 0) {
            overlaps_push(&o, n);
            region_seen |= l->region_id == region_id;
        }
    }
    /* locks starting inside [start, end) */
    for (n = tkc_omap_ceil(rl->locked, start, start_len); n; n = tkc_omap_next(n)) {
        size_t nl;
        const uint8_t *nk = tkc_omap_key(n, &nl);
        if (tkc_key_cmp_end(nk, nl, end, end_len) >= 0)
            break;
        overlaps_push(&o, n);
        region_seen |= node_lock(n)->region_id == region_id;
    }
    /* the same region locked on another range (its boundaries moved) */
    if (!region_seen) {
        tkc_omap_node_t *same = tkc_hashmap_get(rl->by_region, &region_id, sizeof(region_id));
        if (same)
            overlaps_push(&o, same);
    }

    if (o.n == 0) {
        /*
         * Checkpoint: the smallest ts of the unlocked pieces covered, i.e.
         * the piece containing `start` plus every piece starting inside.
         */
        tkc_omap_node_t *first = tkc_omap_floor(rl->unlocked, start, start_len);
        uint64_t ts = tkc_omap_weight(first);
        uint64_t inner = tkc_omap_range_min(rl->unlocked, start, start_len, end, end_len);
        if (inner < ts)
            ts = inner;

        lock_t *l = tkc_calloc(1, offsetof(lock_t, end) + end_len);
        l->region_id = region_id;
        l->version = version;
        l->end_len = (uint32_t)end_len; /* keys are far below 4 GiB */
        if (end_len)
            memcpy(l->end, end, end_len);
        tkc_omap_node_t *ln = tkc_omap_insert(rl->locked, start, start_len, l, ts, NULL);
        tkc_hashmap_put(rl->by_region, &region_id, sizeof(region_id), ln);

        /* mark the range UNSET and merge with UNSET neighbours */
        tkc_omap_node_t *piece = assign(rl, start, start_len, end, end_len, PIECE_UNSET,
                                        UINT64_MAX);
        tkc_omap_node_t *next = tkc_omap_next(piece);
        if (next && tkc_omap_value(next) == PIECE_UNSET)
            tkc_omap_remove(rl->unlocked, next);
        tkc_omap_node_t *prev = tkc_omap_prev(piece);
        if (prev && tkc_omap_value(prev) == PIECE_UNSET)
            tkc_omap_remove(rl->unlocked, piece);

        res->status = TKC_RANGE_LOCK_LOCKED;
        res->checkpoint_ts = ts;
    } else {
        bool stale = false;
        for (size_t i = 0; i < o.n; i++)
            stale |= node_lock(o.v[i])->version >= version;
        if (stale) {
            res->status = TKC_RANGE_LOCK_STALE;
            stale_retry(&o, start, start_len, end, end_len, res);
        } else {
            res->status = TKC_RANGE_LOCK_WAIT;
            for (size_t i = 0; i < o.n; i++)
                add_waiter(tkc_omap_value(o.v[i]), waiter);
        }
    }
    if (o.v != o.small)
        tkc_free(o.v);
    return TKC_ERR_OK;
}

/* ===== unlock / update ===== */

tkc_err_t tkc_range_lock_unlock_range(tkc_range_lock_t *rl, const uint8_t *start,
                                      size_t start_len, const uint8_t *end, size_t end_len,
                                      uint64_t region_id, uint64_t version, uint64_t resolved_ts)
{
    tkc_omap_node_t *n = tkc_omap_find(rl->locked, start, start_len);
    if (!n)
        return TKC_ERR_NOT_FOUND;
    lock_t *l = tkc_omap_value(n);
    if (l->region_id != region_id || l->version != version ||
        tkc_key_end_cmp(l->end, l->end_len, end, end_len) != 0)
        return TKC_ERR_NOT_FOUND;

    uint64_t ts = tkc_omap_weight(n);
    if (resolved_ts > ts)
        ts = resolved_ts;
    tkc_hashmap_remove(rl->by_region, &region_id, sizeof(region_id));
    tkc_omap_remove(rl->locked, n);
    assign(rl, start, start_len, end, end_len, PIECE_SET, ts);

    /* wake after the state is consistent: a waiter may lock right away */
    if (rl->wake)
        for (size_t i = 0; i < l->n_waiters; i++)
            rl->wake(rl->opaque, l->waiters[i]);
    lock_free(l);
    return TKC_ERR_OK;
}

tkc_err_t tkc_range_lock_update(tkc_range_lock_t *rl, uint64_t region_id, uint64_t resolved_ts)
{
    tkc_omap_node_t *n = tkc_hashmap_get(rl->by_region, &region_id, sizeof(region_id));
    if (!n)
        return TKC_ERR_NOT_FOUND;
    if (resolved_ts > tkc_omap_weight(n))
        tkc_omap_set_weight(rl->locked, n, resolved_ts);
    return TKC_ERR_OK;
}

uint64_t tkc_range_lock_region_ts(const tkc_range_lock_t *rl, uint64_t region_id)
{
    tkc_omap_node_t *n = tkc_hashmap_get(rl->by_region, &region_id, sizeof(region_id));
    return n ? tkc_omap_weight(n) : 0;
}

uint64_t tkc_range_lock_resolved_ts(const tkc_range_lock_t *rl)
{
    uint64_t a = tkc_omap_min_weight(rl->locked), b = tkc_omap_min_weight(rl->unlocked);
    return a < b ? a : b;
}

size_t tkc_range_lock_count(const tkc_range_lock_t *rl)
{
    return tkc_omap_count(rl->locked);
}

void tkc_range_lock_foreach_locked(const tkc_range_lock_t *rl, tkc_range_lock_visit_cb *cb,
                                   void *opaque)
{
    for (tkc_omap_node_t *n = tkc_omap_first(rl->locked); n; n = tkc_omap_next(n)) {
        const lock_t *l = node_lock(n);
        tkc_keyrange_t r;
        r.start = tkc_omap_key(n, &r.start_len);
        r.end = l->end;
        r.end_len = l->end_len;
        cb(opaque, &r, l->region_id, l->version, tkc_omap_weight(n));
    }
}

void tkc_range_lock_foreach_unlocked(const tkc_range_lock_t *rl, tkc_range_lock_visit_cb *cb,
                                     void *opaque)
{
    for (tkc_omap_node_t *n = tkc_omap_first(rl->unlocked); n; n = tkc_omap_next(n)) {
        if (tkc_omap_value(n) != PIECE_SET)
            continue;
        tkc_keyrange_t r;
        r.start = tkc_omap_key(n, &r.start_len);
        r.end = piece_end(rl, n, &r.end_len);
        cb(opaque, &r, 0, 0, tkc_omap_weight(n));
    }
}

bool tkc_range_lock_check(const tkc_range_lock_t *rl)
{
    if (!tkc_omap_check(rl->locked) || !tkc_omap_check(rl->unlocked))
        return false;
    if (tkc_hashmap_count(rl->by_region) != tkc_omap_count(rl->locked))
        return false;
    /* pieces start at the span start */
    tkc_omap_node_t *first = tkc_omap_first(rl->unlocked);
    size_t fl;
    const uint8_t *fk = first ? tkc_omap_key(first, &fl) : NULL;
    if (!first || tkc_key_cmp(fk, fl, rl->start, rl->start_len) != 0)
        return false;
    size_t locks_seen = 0;
    void *prev_state = PIECE_SET;
    for (tkc_omap_node_t *p = first; p; p = tkc_omap_next(p)) {
        size_t ps_len, pe_len;
        const uint8_t *ps = tkc_omap_key(p, &ps_len);
        const uint8_t *pe = piece_end(rl, p, &pe_len);
        void *state = tkc_omap_value(p);
        if (state == PIECE_UNSET) {
            if (prev_state == PIECE_UNSET && p != first)
                return false; /* should have been merged */
            if (tkc_omap_weight(p) != UINT64_MAX)
                return false;
            /* consecutive locks must tile the piece exactly */
            const uint8_t *k = ps;
            size_t kl = ps_len;
            for (;;) {
                tkc_omap_node_t *ln = tkc_omap_find(rl->locked, k, kl);
                if (!ln)
                    return false;
                const lock_t *l = node_lock(ln);
                if (tkc_hashmap_get(rl->by_region, &l->region_id, sizeof(l->region_id)) != ln)
                    return false;
                locks_seen++;
                k = l->end;
                kl = l->end_len;
                int c = tkc_key_end_cmp(k, kl, pe, pe_len);
                if (c == 0)
                    break;
                if (c > 0 || kl == 0)
                    return false; /* overshoots the piece */
            }
        } else if (state != PIECE_SET) {
            return false;
        }
        prev_state = state;
    }
    return locks_seen == tkc_omap_count(rl->locked);
}
