/*
 * range_lock.h: one per subscribed span (tikv-cdc-protocol.md §5.2).
 *
 * Guarantees that each key range of the span is subscribed at most once at
 * a time, and carries the last resolved ts of every range into the next
 * subscription of that range (the checkpoint_ts of the registration). Its
 * minimum over locked ranges and unlocked pieces is the span's resolved ts.
 *
 * All keys are ENCODED (memcomparable) keys, as PD and the requests use them;
 * an empty end key means +inf. Non-blocking: a lock that would have to wait
 * returns WAIT and the wake callback names the waiter when a lock it waited
 * for is released.
 */
#ifndef TKC_RANGE_LOCK_H
#define TKC_RANGE_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/keyrange.h"

typedef struct tkc_range_lock_s tkc_range_lock_t;

typedef enum {
    /* locked; checkpoint_ts is the ts to register with */
    TKC_RANGE_LOCK_LOCKED = 0,
    /*
     * an overlapping lock has a region version >= the requested one: the
     * request comes from stale region info. retry[] lists the sub-ranges of
     * the request that no lock covers; re-divide them from PD.
     */
    TKC_RANGE_LOCK_STALE = 1,
    /*
     * an overlapping lock (or a lock of the same region id) is older: the
     * waiter is called back when one of them is released; then try again.
     */
    TKC_RANGE_LOCK_WAIT = 2,
} tkc_range_lock_status_t;

/** "LOCKED", "STALE", "WAIT". */
const char *tkc_range_lock_status_name(int status);

typedef struct tkc_range_lock_result_s {
    tkc_range_lock_status_t status;
    uint64_t checkpoint_ts; /* LOCKED: min ts of the unlocked pieces covered */
    size_t n_retry;         /* STALE */
    tkc_keyrange_t *retry;  /* STALE: owned by the result */
    void *priv_;            /* internal: the bytes retry[] points into */
} tkc_range_lock_result_t;

/** Frees what a result owns (retry ranges); safe on any result. */
void tkc_range_lock_result_fini(tkc_range_lock_result_t *res);

/**
 * Called for each waiter registered on a lock when that lock is released.
 * A waiter blocked by several locks may be called more than once; a retry
 * that still overlaps simply returns WAIT again. The callback may call back
 * into the range lock.
 */
typedef void tkc_range_lock_wake_cb(void *opaque, uint64_t waiter);

/**
 * @brief Creates the lock of span [start, end) whose every piece starts at
 *        @p start_ts (the span's checkpoint when the subscription starts).
 * @param wake may be NULL when the caller polls instead.
 * @returns the lock (free with tkc_range_lock_destroy()), or NULL if
 *          start >= end.
 * @locality the owning feed worker thread (not thread-safe)
 */
tkc_range_lock_t *tkc_range_lock_new(const uint8_t *start, size_t start_len, const uint8_t *end,
                                     size_t end_len, uint64_t start_ts,
                                     tkc_range_lock_wake_cb *wake, void *opaque);
void tkc_range_lock_destroy(tkc_range_lock_t *rl);

/**
 * @brief Tries to lock [start, end) for @p region_id at region @p version.
 *
 * A region id is locked at most once: a lock of the same region id on any
 * range counts as an overlap.
 * @param waiter token passed to the wake callback if the result is WAIT.
 * @param res filled in; call tkc_range_lock_result_fini() on it.
 * @returns TKC_ERR_OK (see res->status), or TKC_ERR_INVALID_ARG if the range
 *          is empty or not inside the span.
 */
tkc_err_t tkc_range_lock_lock_range(tkc_range_lock_t *rl, const uint8_t *start, size_t start_len,
                                    const uint8_t *end, size_t end_len, uint64_t region_id,
                                    uint64_t version, uint64_t waiter,
                                    tkc_range_lock_result_t *res);

/**
 * @brief Releases a lock taken by tkc_range_lock_lock_range(), storing the
 *        range's last resolved ts back for the next subscription.
 *
 * The stored ts is max(@p resolved_ts, the lock's current resolved ts): both
 * are proven lower bounds, so the larger one is the better checkpoint.
 * Wakes the waiters of the lock.
 * @returns TKC_ERR_OK, or TKC_ERR_NOT_FOUND if no lock with exactly this
 *          range, region id and version is held (nothing changes).
 */
tkc_err_t tkc_range_lock_unlock_range(tkc_range_lock_t *rl, const uint8_t *start,
                                      size_t start_len, const uint8_t *end, size_t end_len,
                                      uint64_t region_id, uint64_t version, uint64_t resolved_ts);

/**
 * @brief Raises the resolved ts of the range locked by @p region_id
 *        (never lowers it). O(log n).
 * @returns TKC_ERR_OK, or TKC_ERR_NOT_FOUND if that region holds no lock.
 */
tkc_err_t tkc_range_lock_update(tkc_range_lock_t *rl, uint64_t region_id, uint64_t resolved_ts);

/** The resolved ts of the locked range of @p region_id, or 0 if none. */
uint64_t tkc_range_lock_region_ts(const tkc_range_lock_t *rl, uint64_t region_id);

/**
 * The span's resolved ts: the minimum over the locked ranges and the
 * unlocked pieces. O(1).
 */
uint64_t tkc_range_lock_resolved_ts(const tkc_range_lock_t *rl);

/** Number of locked ranges. */
size_t tkc_range_lock_count(const tkc_range_lock_t *rl);

/** Visits ranges in key order. region_id/version are 0 for unlocked pieces. */
typedef void tkc_range_lock_visit_cb(void *opaque, const tkc_keyrange_t *range, uint64_t region_id,
                                     uint64_t version, uint64_t ts);

/** Visits every locked range (region, version, resolved ts). */
void tkc_range_lock_foreach_locked(const tkc_range_lock_t *rl, tkc_range_lock_visit_cb *cb,
                                   void *opaque);
/** Visits every unlocked piece (holes and released ranges) with its ts. */
void tkc_range_lock_foreach_unlocked(const tkc_range_lock_t *rl, tkc_range_lock_visit_cb *cb,
                                     void *opaque);

/**
 * Verifies the internal invariants in O(n) (locks do not overlap; locked
 * ranges and unlocked pieces partition the span exactly); for tests.
 */
bool tkc_range_lock_check(const tkc_range_lock_t *rl);

#endif
