/*
 * omap.h: an ordered map from byte-string keys to pointers, where every
 * entry also carries a 64-bit weight and the tree keeps the minimum weight
 * of every subtree.
 *
 * That augmentation is what the range lock and the span frontier need:
 *   - the minimum weight over all entries in O(1) (tkc_omap_min_weight),
 *   - the minimum weight over the keys of a range in O(log n),
 *   - a weight change in O(log n).
 * Keys compare byte-wise (shorter first on a common prefix). Keys are copied
 * into the entry and are immutable; values are opaque pointers (NULL
 * allowed) that the map never dereferences.
 *
 * Entries are returned as node handles, which stay valid until that entry is
 * removed (other inserts and removals do not move them), so callers may keep
 * them in side indexes. Not thread-safe: one owner at a time.
 */
#ifndef TKC_UTIL_OMAP_H
#define TKC_UTIL_OMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tkc_omap_s tkc_omap_t;
typedef struct tkc_omap_node_s tkc_omap_node_t;

typedef void tkc_omap_free_cb(void *val);

/** @returns a new empty map, free with tkc_omap_destroy(). */
tkc_omap_t *tkc_omap_new(void);
/** Frees the map and every entry, calling @p val_free on values if given. */
void tkc_omap_destroy(tkc_omap_t *m, tkc_omap_free_cb *val_free);

size_t tkc_omap_count(const tkc_omap_t *m);

/**
 * @brief Inserts a key (copied) with @p val and @p weight.
 * @param existed if the key is already present, nothing changes, the existing
 *                node is returned and *existed is set to true (may be NULL).
 */
tkc_omap_node_t *tkc_omap_insert(tkc_omap_t *m, const uint8_t *key, size_t klen, void *val,
                                 uint64_t weight, bool *existed);

/** Removes @p n and frees it. @returns its value (owned by the caller). */
void *tkc_omap_remove(tkc_omap_t *m, tkc_omap_node_t *n);

/** The entry with exactly this key, or NULL. */
tkc_omap_node_t *tkc_omap_find(const tkc_omap_t *m, const uint8_t *key, size_t klen);
/** The entry with the greatest key <= @p key, or NULL. */
tkc_omap_node_t *tkc_omap_floor(const tkc_omap_t *m, const uint8_t *key, size_t klen);
/** The entry with the least key >= @p key, or NULL. */
tkc_omap_node_t *tkc_omap_ceil(const tkc_omap_t *m, const uint8_t *key, size_t klen);
tkc_omap_node_t *tkc_omap_first(const tkc_omap_t *m);
tkc_omap_node_t *tkc_omap_last(const tkc_omap_t *m);
/** In-order successor / predecessor, or NULL. O(1) amortised. */
tkc_omap_node_t *tkc_omap_next(const tkc_omap_node_t *n);
tkc_omap_node_t *tkc_omap_prev(const tkc_omap_node_t *n);

const uint8_t *tkc_omap_key(const tkc_omap_node_t *n, size_t *klen);
void *tkc_omap_value(const tkc_omap_node_t *n);
void tkc_omap_set_value(tkc_omap_node_t *n, void *val);
uint64_t tkc_omap_weight(const tkc_omap_node_t *n);
/** Changes the weight of @p n, O(log n). */
void tkc_omap_set_weight(tkc_omap_t *m, tkc_omap_node_t *n, uint64_t weight);

/** Minimum weight of all entries, UINT64_MAX when empty. O(1). */
uint64_t tkc_omap_min_weight(const tkc_omap_t *m);
/** An entry whose weight is the minimum (NULL when empty). O(log n). */
tkc_omap_node_t *tkc_omap_min_weight_node(const tkc_omap_t *m);

/**
 * @brief Minimum weight over the entries whose key k satisfies
 *        lo <= k < hi; an empty @p hi means +inf. O(log n).
 * @returns UINT64_MAX if there is no such entry.
 */
uint64_t tkc_omap_range_min(const tkc_omap_t *m, const uint8_t *lo, size_t lolen,
                            const uint8_t *hi, size_t hilen);

/** Bytes allocated by the map (entries and their keys), for accounting. */
size_t tkc_omap_bytes(const tkc_omap_t *m);

/**
 * Checks the AVL, order and min-weight invariants (O(n)); for tests.
 * @returns true when all hold.
 */
bool tkc_omap_check(const tkc_omap_t *m);

#endif
