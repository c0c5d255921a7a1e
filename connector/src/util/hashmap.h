/*
 * hashmap.h: a generic hash map from byte-string keys to pointers.
 *
 * Keys (shorter than 4 GiB) are copied into the map; values are opaque
 * non-NULL pointers that the map never dereferences (the caller owns them,
 * or hands a free function to tkc_hashmap_destroy()/tkc_hashmap_clear()). Separate chaining, power-of-two
 * bucket array that doubles when the load reaches 1, so get/put/remove are
 * O(1) expected. Not thread-safe: one owner at a time.
 */
#ifndef TKC_UTIL_HASHMAP_H
#define TKC_UTIL_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tkc_hashmap_s tkc_hashmap_t;

/** Value destructor for destroy/clear; NULL means "leave the values alone". */
typedef void tkc_hashmap_free_cb(void *val);

/** Iterator; initialise with TKC_HASHMAP_ITER_INIT. */
typedef struct tkc_hashmap_iter_s {
    size_t bucket;
    void *node;
} tkc_hashmap_iter_t;
#define TKC_HASHMAP_ITER_INIT {0, NULL}

/** @returns a new empty map, free with tkc_hashmap_destroy(). */
tkc_hashmap_t *tkc_hashmap_new(void);

/** Longest key of a fixed-key map. */
#define TKC_HASHMAP_FIXED_MAX_KEY 32

/**
 * @brief A map whose keys all have exactly @p klen bytes (1..32).
 *
 * Same API and contract, but entries live inline in one open-addressing
 * array (no allocation per entry), for the maps with one entry per region.
 * Differences: a key of another length aborts (a caller bug), and a key
 * pointer returned by tkc_hashmap_next() is valid only until the next
 * change of the map.
 */
tkc_hashmap_t *tkc_hashmap_new_fixed(size_t klen);

/** Frees the map and its keys; calls @p val_free on every value if given. */
void tkc_hashmap_destroy(tkc_hashmap_t *hm, tkc_hashmap_free_cb *val_free);

/** Removes every entry (calling @p val_free if given); keeps the map. */
void tkc_hashmap_clear(tkc_hashmap_t *hm, tkc_hashmap_free_cb *val_free);

/** @returns the value stored under the key, or NULL. */
void *tkc_hashmap_get(const tkc_hashmap_t *hm, const void *key, size_t klen);

/**
 * @brief Stores @p val (non-NULL) under the key, copying the key.
 * @returns the value it replaced (now owned by the caller again), or NULL if
 *          the key was new.
 */
void *tkc_hashmap_put(tkc_hashmap_t *hm, const void *key, size_t klen, void *val);

/** @returns the removed value (owned by the caller), or NULL if absent. */
void *tkc_hashmap_remove(tkc_hashmap_t *hm, const void *key, size_t klen);

size_t tkc_hashmap_count(const tkc_hashmap_t *hm);

/**
 * Bytes this map allocated (buckets, entries and their key copies), not
 * counting the values: for memory accounting.
 */
size_t tkc_hashmap_bytes(const tkc_hashmap_t *hm);

/** Bytes one entry with a @p klen byte key adds to tkc_hashmap_bytes(). */
size_t tkc_hashmap_entry_bytes(size_t klen);

/**
 * @brief Steps @p it to the next entry, in no particular order.
 *
 * The map must not be modified during an iteration.
 * @returns false when there are no more entries.
 */
bool tkc_hashmap_next(const tkc_hashmap_t *hm, tkc_hashmap_iter_t *it, const void **key,
                      size_t *klen, void **val);

#endif
