/*
 * frontier.h: the resolved-ts frontier of the feed's spans
 * (tikv-cdc-protocol.md §5.3, §5.4; architecture invariant 2).
 *
 * Each subscribed span is tiled into pieces, each with a resolved ts. A
 * region reports "[start, end) is resolved up to ts" with
 * tkc_frontier_forward(); the span's resolved ts is the minimum over its
 * pieces and the feed's resolved ts is the minimum over its spans.
 *
 *   - forward is O(log n) when the region's piece is unchanged (the common
 *     case: the piece is found by its start key); when the region's
 *     range changed (split, merge, first report) the pieces it covers are
 *     cut and merged into one, O(log n + pieces covered);
 *   - the span and feed minimums are O(1);
 *   - holes: pieces no region has reported keep their ts (the initial ts,
 *     normally 0), so the frontier cannot pass them;
 *   - never backwards: a range's ts only grows; a forward below what is
 *     already known for the whole range it covers changes nothing.
 *
 * Keys are ENCODED (memcomparable) keys; an empty end key is +inf.
 */
#ifndef TKC_FRONTIER_H
#define TKC_FRONTIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/keyrange.h"

typedef struct tkc_frontier_s tkc_frontier_t;

/**
 * @brief Creates a frontier over @p n_spans spans (n_spans >= 1), each one
 *        piece at @p initial_ts.
 * @param spans borrowed; the keys are copied. Index i of this array is the
 *              span index used by every other call (tkc_row_t.span_index).
 * @returns the frontier (free with tkc_frontier_destroy()), or NULL if a span
 *          is empty or n_spans is 0.
 * @locality the thread that owns the frontier (the pipeline); not thread-safe
 */
tkc_frontier_t *tkc_frontier_new(const tkc_keyrange_t *spans, size_t n_spans, uint64_t initial_ts);
void tkc_frontier_destroy(tkc_frontier_t *f);

/**
 * @brief Records that [start, end) of span @p span, subscribed as region
 *        @p region_id, is resolved up to @p ts.
 *
 * The range is clipped to the span. The range becomes one piece whose ts is
 * max(ts, the smallest ts of the pieces it replaces); pieces partly covered
 * are cut and keep their ts outside the range. @p region_id 0 is allowed
 * (no region): it always takes the slow path.
 * @returns TKC_ERR_OK, or TKC_ERR_INVALID_ARG for an unknown span or a range
 *          that does not intersect it.
 */
tkc_err_t tkc_frontier_forward(tkc_frontier_t *f, uint32_t span, uint64_t region_id,
                               const uint8_t *start, size_t start_len, const uint8_t *end,
                               size_t end_len, uint64_t ts);

/** The feed's resolved ts: the minimum over all spans. O(1). */
uint64_t tkc_frontier_min(const tkc_frontier_t *f);

/** The resolved ts of one span (UINT64_MAX for an unknown index). O(1). */
uint64_t tkc_frontier_span_min(const tkc_frontier_t *f, uint32_t span);

size_t tkc_frontier_span_count(const tkc_frontier_t *f);

/** Number of pieces of span @p span (0 for an unknown index). */
size_t tkc_frontier_piece_count(const tkc_frontier_t *f, uint32_t span);

/**
 * One piece, as visited. The key bytes are borrowed from the frontier and
 * valid until its next modification. region_id is 0 when no region has
 * reported exactly this piece since it was last cut.
 */
typedef struct tkc_frontier_piece_s {
    tkc_keyrange_t range;
    uint64_t region_id;
    uint64_t ts;
} tkc_frontier_piece_t;

/**
 * Fills @p out with a piece of span @p span that holds the span's minimum
 * (the slowest region, for stuck-resolved-ts checks). O(log n).
 * @returns false for an unknown span.
 */
bool tkc_frontier_slowest(const tkc_frontier_t *f, uint32_t span, tkc_frontier_piece_t *out);

typedef void tkc_frontier_visit_cb(void *opaque, const tkc_frontier_piece_t *piece);

/** Visits the pieces of span @p span in key order. */
void tkc_frontier_foreach(const tkc_frontier_t *f, uint32_t span, tkc_frontier_visit_cb *cb,
                          void *opaque);

/** Verifies the internal invariants in O(n); for tests. */
bool tkc_frontier_check(const tkc_frontier_t *f);

#endif
