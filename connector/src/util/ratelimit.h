/*
 * ratelimit.h: per-key rate limiting of repeated events, and the logger's
 * rate-limited warnings built on it.
 *
 * A key (any string: "region_error:not_leader:store_id=4") owns a window of
 * `interval` milliseconds that starts with the first event that passes. The
 * events of the same key inside the window are suppressed and counted. The
 * first event after the window passes again and carries the count of the
 * window before it; a window that ends without a next event is reported by
 * tkc_ratelimit_flush(), so a burst that stops is still summarised:
 *
 *   level=warn comp=feed event=region_error region_id=7 kind=not_leader
 *   ... 10 s of the same error, suppressed ...
 *   level=warn comp=log event=log_suppressed key="region_error:not_leader" count=4211
 *        interval_ms=10000
 *
 * The table has a fixed number of slots chosen at creation (open
 * addressing by a 64-bit hash of the key); when every probed slot is busy
 * the oldest window is evicted and its pending count reported by the next
 * flush, so memory stays bounded whatever the keys are.
 *
 * Thread: any; one mutex per limiter. Not for per-row hot paths: the
 * intended callers are warning sites, which are rare compared with rows.
 */
#ifndef TKC_UTIL_RATELIMIT_H
#define TKC_UTIL_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/log.h"

typedef struct tkc_ratelimit_s tkc_ratelimit_t;

/** Longest key kept for summaries (longer keys are hashed whole, shown cut). */
#define TKC_RATELIMIT_KEY_MAX 120

/**
 * @brief Creates a limiter.
 * @param default_interval_ms window used when a check passes interval 0 (> 0)
 * @param slots number of distinct keys tracked at once (>= 8)
 * @returns the limiter; free with tkc_ratelimit_destroy().
 * @locality any
 */
tkc_ratelimit_t *tkc_ratelimit_new(int64_t default_interval_ms, size_t slots);

/** Frees the limiter; pending counts are dropped. NULL is a no-op. */
void tkc_ratelimit_destroy(tkc_ratelimit_t *rl);

/**
 * @brief Decides whether an event of @p key at @p now_ms may be reported.
 *
 * @param interval_ms the window for this key; 0: the limiter's default. The
 *                    interval given when a window opens is the one it keeps.
 * @param suppressed  if not NULL and the event passes, receives the number
 *                    of events of this key suppressed since the last one
 *                    reported and not yet summarised by a flush (0 usually).
 * @returns true: report it; false: suppressed (and counted).
 * @locality any
 */
bool tkc_ratelimit_check(tkc_ratelimit_t *rl, const char *key, int64_t interval_ms, int64_t now_ms,
                         uint64_t *suppressed);

/** Receives one summary from tkc_ratelimit_flush(). */
typedef void tkc_ratelimit_summary_cb(void *opaque, const char *key, uint64_t count,
                                      int64_t interval_ms);

/**
 * @brief Reports every window that has ended (or was evicted) with
 *        suppressed events, and resets their counts.
 * @param cb called once per such key, with the limiter's lock held: it must
 *           not call back into the same limiter.
 * @returns the number of summaries reported.
 * @locality any
 */
size_t tkc_ratelimit_flush(tkc_ratelimit_t *rl, int64_t now_ms, tkc_ratelimit_summary_cb *cb,
                           void *opaque);

/* ===== rate-limited logging ===== */

/** Default window of tkc_log_rl() when a call passes 0 (10000 ms at start). */
void tkc_log_ratelimit_set_interval(int64_t interval_ms);

/**
 * @brief Logs like tkc_log_write(), unless the same @p key was logged less
 *        than @p interval_ms ago (0: the default window). A passing line
 *        gets " suppressed=N" appended when N earlier lines were dropped.
 *        At most once per second it also flushes windows that have ended
 *        (see tkc_log_ratelimit_flush()).
 * @locality any
 */
void tkc_log_ratelimited(tkc_log_level_t level, const char *comp, const char *key,
                         int64_t interval_ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/**
 * @brief Writes an "event=log_suppressed" summary line for every window of
 *        the logger's limiter that ended with suppressed lines. Call it from
 *        a periodic tick so a burst that stops is reported without waiting
 *        for the next line of its key.
 * @returns the number of summary lines written.
 * @locality any
 */
size_t tkc_log_ratelimit_flush(void);

/** Level-checked wrapper: arguments are not evaluated when the level is off. */
#define tkc_log_rl(level, comp, key, interval_ms, ...)                               \
    do {                                                                             \
        if ((level) <= tkc_log_get_level())                                          \
            tkc_log_ratelimited((level), (comp), (key), (interval_ms), __VA_ARGS__); \
    } while (0)

#endif
