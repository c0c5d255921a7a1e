/*
 * prewrite_spill.h: a feed worker's local file for the values of pending
 * prewrites, and the feed-wide budget that decides when they go there.
 *
 * TiKV sends every PREWRITE of a transaction before its COMMITs, so the
 * matchers hold a whole transaction until it commits. Beyond the budget the
 * matcher keeps only a small stub per prewrite (key, lengths, file offset)
 * and the value and old value go to this file; the COMMIT reads them back.
 *
 * One store per feed worker thread (no locks inside); the budget counter is
 * shared by every worker of the feed (atomic). Records are appended; the
 * store counts live record bytes and truncates the file to zero whenever
 * the last live record is released, so a file only grows while some
 * spilled prewrite is still pending.
 */
#ifndef TKC_PREWRITE_SPILL_H
#define TKC_PREWRITE_SPILL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct tkc_prewrite_spill_s tkc_prewrite_spill_t;

/**
 * @brief Opens a store: an anonymous file in @p dir (O_TMPFILE, or created
 *        and unlinked at once), so nothing is left behind by a crash.
 * @param shared the feed-wide count of pending prewrite bytes held in memory
 *               (borrowed; outlives the store)
 * @param limit  the budget for @p shared; beyond it values are spilled
 * @returns the store, or NULL with @p errstr set.
 * @locality any; then used by one thread only
 */
tkc_prewrite_spill_t *tkc_prewrite_spill_new(const char *dir, atomic_size_t *shared, size_t limit,
                                             char *errstr, size_t errstr_size);

/** As tkc_prewrite_spill_new() on an open read-write @p fd (owned by the
 * store from now on). For tests: /dev/full gives the write error path. */
tkc_prewrite_spill_t *tkc_prewrite_spill_new_fd(int fd, atomic_size_t *shared, size_t limit);

/** Closes the file (NULL is a no-op). Records still live are discarded. */
void tkc_prewrite_spill_destroy(tkc_prewrite_spill_t *s);

/**
 * True when a prewrite of @p bytes in memory, @p payload of them value and
 * old value, should go to the file: it would exceed the budget and the
 * payload is at least the store's minimum (64 bytes: below that a stub
 * saves nothing).
 */
bool tkc_prewrite_spill_wanted(const tkc_prewrite_spill_t *s, size_t bytes, size_t payload);

/** Sets the minimum payload of tkc_prewrite_spill_wanted() (tests: 0). */
void tkc_prewrite_spill_set_min(tkc_prewrite_spill_t *s, size_t payload);

/** Adds/removes @p bytes held in memory to/from the shared count. */
void tkc_prewrite_spill_charge(tkc_prewrite_spill_t *s, size_t bytes);
void tkc_prewrite_spill_uncharge(tkc_prewrite_spill_t *s, size_t bytes);

/** File bytes of one record with these lengths (for release()). */
size_t tkc_prewrite_spill_record_size(size_t value_len, size_t old_value_len);

/**
 * @brief Appends one record (value, old value) and returns its offset.
 * @returns TKC_ERR_OK, TKC_ERR_IO (write failed, e.g. disk full; nothing is
 *          live then) or TKC_ERR_INVALID_ARG (a length above 4 GiB).
 */
tkc_err_t tkc_prewrite_spill_put(tkc_prewrite_spill_t *s, const uint8_t *value, size_t value_len,
                                 const uint8_t *old_value, size_t old_value_len, uint64_t *off,
                                 char *errstr, size_t errstr_size);

/**
 * @brief Reads the record at @p off into @p value / @p old_value, whose
 *        lengths must be the ones it was written with.
 * @returns TKC_ERR_OK, TKC_ERR_IO (read failed or the file is shorter) or
 *          TKC_ERR_CORRUPT (bad magic, other lengths, CRC mismatch). The
 *          record stays live either way: release() it.
 */
tkc_err_t tkc_prewrite_spill_get(tkc_prewrite_spill_t *s, uint64_t off, uint8_t *value,
                                 size_t value_len, uint8_t *old_value, size_t old_value_len,
                                 char *errstr, size_t errstr_size);

/** Marks @p record_bytes (tkc_prewrite_spill_record_size()) no longer
 * live; the file is truncated when nothing is. */
void tkc_prewrite_spill_release(tkc_prewrite_spill_t *s, size_t record_bytes);

typedef struct tkc_prewrite_spill_stats_s {
    uint64_t live_bytes;    /* record bytes still needed */
    uint64_t file_bytes;    /* the append offset (file size) */
    uint64_t written_bytes; /* total record bytes ever written */
    uint64_t truncations;
} tkc_prewrite_spill_stats_t;

void tkc_prewrite_spill_get_stats(const tkc_prewrite_spill_t *s, tkc_prewrite_spill_stats_t *st);

/** written_bytes of the stats. @locality any thread (the rest: the owner's) */
uint64_t tkc_prewrite_spill_written(const tkc_prewrite_spill_t *s);

#endif
