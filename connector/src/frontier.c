/*
 * frontier.c: resolved-ts frontier over the feed's spans (see frontier.h;
 * the role of TiCDC's puller frontier, written over our own ordered map
 * instead of a skip list plus Fibonacci heap).
 *
 * Owned by one thread (the pipeline's); no locks.
 *
 * Structure:
 *   per span  an omap of pieces: key = piece start, weight = ts, value =
 *             the region id that last reported exactly this piece (0: none).
 *             The pieces tile [span start, span end): a piece ends where the
 *             next one starts or at the span end. The omap's subtree minimum
 *             gives the span minimum in O(1).
 *   spans     a segment tree (array heap) of the span minimums: the feed
 *             minimum is its root, an update is O(log spans).
 *   fast path a region that forwards the same range again finds its piece
 *             by its start key (one O(log n) descent) and updates the weight
 *             (O(log n)). An earlier version kept a hash map (span, region id)
 *             -> piece for the lookup; at 100k regions that map cost about
 *             60 bytes per region for a lookup of the same order as the
 *             weight update that follows anyway, so it was dropped (memory
 *             per idle region is a target, issue 7).
 *
 * Invariants (tkc_frontier_check):
 *   - every span is tiled, the first piece starts at the span start;
 *   - segment tree leaves equal the span minimums;
 *   - a range's ts never decreases (see forward()).
 */
#include "frontier.h"

#include <string.h>

#include "util/mem.h"
#include "util/omap.h"

typedef struct span_s {
    uint8_t *start, *end;
    size_t start_len, end_len;
    tkc_omap_t *pieces;
} span_t;

struct tkc_frontier_s {
    span_t *spans;
    size_t n_spans;
    size_t tree_size;  /* power of two >= n_spans */
    uint64_t *tree;    /* tree[1] is the root; leaves at tree_size + i */
};

static inline uint64_t node_region(const tkc_omap_node_t *n)
{
    return (uint64_t)(uintptr_t)tkc_omap_value(n);
}

static inline void set_node_region(tkc_omap_node_t *n, uint64_t region_id)
{
    tkc_omap_set_value(n, (void *)(uintptr_t)region_id);
}

_Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t), "region ids are stored in pointers");

static const uint8_t *piece_end(const span_t *s, const tkc_omap_node_t *n, size_t *len)
{
    const tkc_omap_node_t *next = tkc_omap_next(n);
    if (next)
        return tkc_omap_key(next, len);
    *len = s->end_len;
    return s->end;
}

static void tree_update(tkc_frontier_t *f, uint32_t span)
{
    size_t i = f->tree_size + span;
    uint64_t v = tkc_omap_min_weight(f->spans[span].pieces);
    if (f->tree[i] == v)
        return;
    f->tree[i] = v;
    for (i /= 2; i >= 1; i /= 2) {
        uint64_t m = f->tree[2 * i] < f->tree[2 * i + 1] ? f->tree[2 * i] : f->tree[2 * i + 1];
        if (f->tree[i] == m)
            break;
        f->tree[i] = m;
    }
}

tkc_frontier_t *tkc_frontier_new(const tkc_keyrange_t *spans, size_t n_spans, uint64_t initial_ts)
{
    if (n_spans == 0 || n_spans > UINT32_MAX)
        return NULL;
    for (size_t i = 0; i < n_spans; i++)
        if (!tkc_keyrange_valid(&spans[i]))
            return NULL;
    tkc_frontier_t *f = tkc_calloc(1, sizeof(*f));
    f->n_spans = n_spans;
    f->spans = tkc_calloc(n_spans, sizeof(*f->spans));
    f->tree_size = 1;
    while (f->tree_size < n_spans)
        f->tree_size *= 2;
    f->tree = tkc_malloc(2 * f->tree_size * sizeof(*f->tree));
    for (size_t i = 0; i < 2 * f->tree_size; i++)
        f->tree[i] = UINT64_MAX;
    for (size_t i = 0; i < n_spans; i++) {
        span_t *s = &f->spans[i];
        s->start = tkc_memdup(spans[i].start, spans[i].start_len);
        s->start_len = spans[i].start_len;
        s->end = tkc_memdup(spans[i].end, spans[i].end_len);
        s->end_len = spans[i].end_len;
        s->pieces = tkc_omap_new();
        tkc_omap_insert(s->pieces, s->start, s->start_len, NULL, initial_ts, NULL);
        tree_update(f, (uint32_t)i);
    }
    return f;
}

void tkc_frontier_destroy(tkc_frontier_t *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_spans; i++) {
        tkc_omap_destroy(f->spans[i].pieces, NULL);
        tkc_free(f->spans[i].start);
        tkc_free(f->spans[i].end);
    }
    tkc_free(f->spans);
    tkc_free(f->tree);
    tkc_free(f);
}

/* Makes START key @p key a piece boundary; the new piece inherits the ts. */
static tkc_omap_node_t *split_at(span_t *s, const uint8_t *key, size_t len)
{
    tkc_omap_node_t *n = tkc_omap_floor(s->pieces, key, len);
    size_t nlen;
    const uint8_t *nkey = tkc_omap_key(n, &nlen);
    if (tkc_key_cmp(nkey, nlen, key, len) == 0)
        return n;
    return tkc_omap_insert(s->pieces, key, len, NULL, tkc_omap_weight(n), NULL);
}

tkc_err_t tkc_frontier_forward(tkc_frontier_t *f, uint32_t span, uint64_t region_id,
                               const uint8_t *start, size_t start_len, const uint8_t *end,
                               size_t end_len, uint64_t ts)
{
    if (span >= f->n_spans)
        return TKC_ERR_INVALID_ARG;
    span_t *s = &f->spans[span];

    /* clip to the span */
    if (tkc_key_cmp(start, start_len, s->start, s->start_len) < 0) {
        start = s->start;
        start_len = s->start_len;
    }
    if (tkc_key_end_cmp(end, end_len, s->end, s->end_len) > 0) {
        end = s->end;
        end_len = s->end_len;
    }
    if (tkc_key_cmp_end(start, start_len, end, end_len) >= 0)
        return TKC_ERR_INVALID_ARG;

    /*
     * fast path: a piece is exactly this range. The slow path below would
     * leave the same result (nothing to cut or fold, ts = max), so this is
     * only a shortcut, whichever region reported the piece before.
     */
    tkc_omap_node_t *n = tkc_omap_find(s->pieces, start, start_len);
    if (n) {
        size_t el;
        const uint8_t *e = piece_end(s, n, &el);
        if (tkc_key_end_cmp(e, el, end, end_len) == 0) {
            set_node_region(n, region_id);
            if (ts > tkc_omap_weight(n)) {
                tkc_omap_set_weight(s->pieces, n, ts);
                tree_update(f, span);
            }
            return TKC_ERR_OK;
        }
    }

    /* slow path: cut at both ends, fold the covered pieces into the first */
    tkc_omap_node_t *stop = NULL;
    if (tkc_key_end_cmp(end, end_len, s->end, s->end_len) != 0)
        stop = split_at(s, end, end_len);
    tkc_omap_node_t *first = split_at(s, start, start_len);
    uint64_t covered = tkc_omap_weight(first);
    for (tkc_omap_node_t *p = tkc_omap_next(first); p != stop;) {
        tkc_omap_node_t *next = tkc_omap_next(p);
        if (tkc_omap_weight(p) < covered)
            covered = tkc_omap_weight(p);
        tkc_omap_remove(s->pieces, p);
        p = next;
    }
    /*
     * The whole range was already known to be resolved up to `covered`
     * (every piece of it was), so taking the max never moves it back.
     */
    uint64_t nts = ts > covered ? ts : covered;
    set_node_region(first, region_id);
    if (nts != tkc_omap_weight(first))
        tkc_omap_set_weight(s->pieces, first, nts);
    tree_update(f, span);
    return TKC_ERR_OK;
}

uint64_t tkc_frontier_min(const tkc_frontier_t *f)
{
    return f->tree[1];
}

uint64_t tkc_frontier_span_min(const tkc_frontier_t *f, uint32_t span)
{
    return span < f->n_spans ? tkc_omap_min_weight(f->spans[span].pieces) : UINT64_MAX;
}

size_t tkc_frontier_span_count(const tkc_frontier_t *f)
{
    return f->n_spans;
}

size_t tkc_frontier_piece_count(const tkc_frontier_t *f, uint32_t span)
{
    return span < f->n_spans ? tkc_omap_count(f->spans[span].pieces) : 0;
}

static void fill_piece(const span_t *s, const tkc_omap_node_t *n, tkc_frontier_piece_t *out)
{
    out->range.start = tkc_omap_key(n, &out->range.start_len);
    out->range.end = piece_end(s, n, &out->range.end_len);
    out->region_id = node_region(n);
    out->ts = tkc_omap_weight(n);
}

bool tkc_frontier_slowest(const tkc_frontier_t *f, uint32_t span, tkc_frontier_piece_t *out)
{
    if (span >= f->n_spans)
        return false;
    const span_t *s = &f->spans[span];
    fill_piece(s, tkc_omap_min_weight_node(s->pieces), out);
    return true;
}

void tkc_frontier_foreach(const tkc_frontier_t *f, uint32_t span, tkc_frontier_visit_cb *cb,
                          void *opaque)
{
    if (span >= f->n_spans)
        return;
    const span_t *s = &f->spans[span];
    for (tkc_omap_node_t *n = tkc_omap_first(s->pieces); n; n = tkc_omap_next(n)) {
        tkc_frontier_piece_t p;
        fill_piece(s, n, &p);
        cb(opaque, &p);
    }
}

bool tkc_frontier_check(const tkc_frontier_t *f)
{
    uint64_t all = UINT64_MAX;
    for (size_t i = 0; i < f->n_spans; i++) {
        const span_t *s = &f->spans[i];
        if (!tkc_omap_check(s->pieces))
            return false;
        tkc_omap_node_t *first = tkc_omap_first(s->pieces);
        size_t kl;
        const uint8_t *k = tkc_omap_key(first, &kl);
        if (tkc_key_cmp(k, kl, s->start, s->start_len) != 0)
            return false;
        size_t ll;
        const uint8_t *lk = tkc_omap_key(tkc_omap_last(s->pieces), &ll);
        if (tkc_key_cmp_end(lk, ll, s->end, s->end_len) >= 0)
            return false;
        uint64_t m = tkc_omap_min_weight(s->pieces);
        if (f->tree[f->tree_size + i] != m)
            return false;
        if (m < all)
            all = m;
    }
    if (f->tree[1] != all)
        return false;
    return true;
}
