/*
 * matcher.h: pairs PREWRITE rows with their COMMIT rows for one region
 * subscription and turns the feed's rows into committed changes
 * (tikv-cdc-protocol.md §4), and keeps that subscription's resolved ts
 * (§5.1).
 *
 * One matcher per region registration, created when the registration is sent
 * and destroyed when it ends; a re-registration gets a fresh matcher. Pure
 * logic: plain rows in, tkc_row_t out through a callback.
 */
#ifndef TKC_MATCHER_H
#define TKC_MATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prewrite_spill.h"
#include "row.h"
#include "util/err.h"

typedef struct tkc_matcher_s tkc_matcher_t;

/*
 * Errors of tkc_matcher_put(). Each one means "this registration is broken":
 * the feed reports it loudly and re-subscribes the region from its last
 * resolved ts with a fresh matcher. None of them emits a partial row.
 */
/** A COMMIT without its PREWRITE after INITIALIZED (TiCDC ErrPrewriteNotMatch). */
#define TKC_MATCHER_ERR_PREWRITE_NOT_MATCH TKC_ERR_NOT_FOUND
/** A COMMIT/COMMITTED at or below the region's resolved ts (TiKV broke §3.8). */
#define TKC_MATCHER_ERR_RESOLVED_TS TKC_ERR_CORRUPT
/** A COMMIT/COMMITTED whose op is neither PUT nor DELETE. */
#define TKC_MATCHER_ERR_UNKNOWN_OP TKC_ERR_INCOMPATIBLE
/** Any call after one of the errors above. */
#define TKC_MATCHER_ERR_FAILED TKC_ERR_STOPPED
/*
 * A spilled prewrite value could not be written or read back (TKC_ERR_IO)
 * or came back damaged (TKC_ERR_CORRUPT, CRC or header mismatch): the
 * registration is replaced like for the errors above, so TiKV sends the
 * prewrites again; the row is never emitted without its value.
 */

typedef struct tkc_matcher_conf_s {
    uint64_t region_id;  /* stamped on every emitted row */
    uint32_t span_index; /* stamped on every emitted row */
    /*
     * The subscribed range of this registration in ENCODED (memcomparable)
     * form, as sent in the request: rows whose encoded key is outside
     * [start, end) are dropped. end_len 0 means +inf. BORROWED: the bytes
     * must stay valid and unchanged until tkc_matcher_destroy() (the feed
     * passes its region's own range, which outlives the registration); not
     * copied because there is one matcher per subscribed region.
     */
    const uint8_t *start;
    size_t start_len;
    const uint8_t *end;
    size_t end_len;
    /*
     * The start ts of the whole span (the table / changefeed start): COMMIT
     * rows with commit_ts <= it belong to the starting snapshot and are
     * dropped after matching.
     */
    uint64_t span_start_ts;
    /* The checkpoint_ts sent in the registration: the initial resolved ts. */
    uint64_t checkpoint_ts;
    /*
     * The feed worker's prewrite spill store (borrowed, outlives the
     * matcher), or NULL: every pending prewrite stays in memory. With a
     * store, pending prewrites are charged to its feed-wide budget, and
     * beyond it a prewrite's value and old value go to the store's file
     * while the matcher keeps a stub; the COMMIT reads them back.
     */
    tkc_prewrite_spill_t *spill;
} tkc_matcher_conf_t;

/**
 * Receives one committed change. Ownership of @p row is transferred to the
 * callee (free with tkc_row_destroy()). Called synchronously from
 * tkc_matcher_put(); it must not call back into the same matcher.
 */
typedef void tkc_matcher_emit_cb(void *opaque, tkc_row_t *row);

/**
 * @brief Creates a matcher for one region registration.
 * @param conf borrowed for the call, except the range bytes, which must
 *             outlive the matcher (see tkc_matcher_conf_t).
 * @returns the matcher, owned by the caller; free with tkc_matcher_destroy().
 * @locality the feed worker thread that owns the registration
 */
tkc_matcher_t *tkc_matcher_new(const tkc_matcher_conf_t *conf);

/** Frees the matcher and everything it still holds (NULL is a no-op). */
void tkc_matcher_destroy(tkc_matcher_t *m);

/**
 * Bytes a matcher takes, for embedding one in a larger allocation: the feed
 * keeps one matcher per subscribed region inside the region's own block
 * (one allocation per region, and none on the worker's heap at
 * registration, between the request buffers that come and go).
 */
size_t tkc_matcher_size(void);

/**
 * @brief tkc_matcher_new() in caller-provided memory.
 * @param mem tkc_matcher_size() bytes aligned like malloc's results; owned
 *            by the caller, who calls tkc_matcher_fini() before reusing or
 *            freeing it (never tkc_matcher_destroy()).
 */
tkc_matcher_t *tkc_matcher_init(void *mem, const tkc_matcher_conf_t *conf);

/** Frees what an embedded matcher holds (not @p m itself; NULL is a no-op). */
void tkc_matcher_fini(tkc_matcher_t *m);

/**
 * @brief Applies one Event.Row of this registration (the rules of §4).
 *
 *  - rows (except INITIALIZED) whose key is outside the range: dropped;
 *  - PREWRITE: stored under (start_ts, key); an empty-value repeat keeps the
 *    stored one, and a lower generation never replaces a higher one;
 *  - COMMIT: matched with its prewrite (value and old value copied); before
 *    INITIALIZED an unmatched commit is cached, and a prewrite with an empty
 *    value or a generation > 0 is not used yet; after INITIALIZED an
 *    unmatched commit is TKC_MATCHER_ERR_PREWRITE_NOT_MATCH. A matched commit
 *    with commit_ts <= span_start_ts is dropped; commit_ts <= resolved ts is
 *    TKC_MATCHER_ERR_RESOLVED_TS; otherwise it is emitted;
 *  - COMMITTED: emitted as is, after the same resolved-ts check;
 *  - ROLLBACK: cached before INITIALIZED, else drops the pending prewrite;
 *  - INITIALIZED: replays the cached commits in arrival order (matched ones
 *    are emitted, unmatched ones ignored: the scan already produced them as
 *    COMMITTED), then the cached rollbacks;
 *  - UNKNOWN log types are ignored.
 *
 * @param row borrowed for the call; every byte the matcher keeps is copied.
 * @param emit receives each committed change in order (may run several times
 *             for INITIALIZED).
 * @param errstr optional buffer for a one-line description of an error
 *               (key in hex, start/commit/resolved ts).
 * @returns TKC_ERR_OK, one of the TKC_MATCHER_ERR_* codes above, or
 *          TKC_ERR_IO / TKC_ERR_CORRUPT from the spill store. After an
 *          error the matcher is failed: every later call returns
 *          TKC_MATCHER_ERR_FAILED and the caller must re-subscribe.
 * @locality the owning feed worker thread
 */
tkc_err_t tkc_matcher_put(tkc_matcher_t *m, const tkc_feed_row_t *row, tkc_matcher_emit_cb *emit,
                          void *opaque, char *errstr, size_t errstr_size);

/**
 * @brief Offers a resolved ts for this region (§3.8, §5.1).
 *
 * Ignored before INITIALIZED, when not above the current value, and after
 * an error.
 * @returns true if the region's resolved ts advanced to @p ts.
 */
bool tkc_matcher_resolve(tkc_matcher_t *m, uint64_t ts);

/** The region's resolved ts (the checkpoint ts until it first advances). */
uint64_t tkc_matcher_resolved_ts(const tkc_matcher_t *m);

bool tkc_matcher_initialized(const tkc_matcher_t *m);
bool tkc_matcher_failed(const tkc_matcher_t *m);

typedef struct tkc_matcher_stats_s {
    size_t prewrites;        /* pending PREWRITE entries */
    size_t cached_commits;   /* COMMITs waiting for INITIALIZED */
    size_t cached_rollbacks; /* ROLLBACKs waiting for INITIALIZED */
    size_t spilled_prewrites; /* pending PREWRITEs whose value is in the spill file */
    uint64_t dropped_out_of_range;
    uint64_t dropped_before_start; /* commit_ts <= span_start_ts */
    uint64_t ignored_unmatched;    /* cached commits with no prewrite at init */
    uint64_t emitted;
} tkc_matcher_stats_t;

void tkc_matcher_get_stats(const tkc_matcher_t *m, tkc_matcher_stats_t *st);

/**
 * Bytes this matcher holds (pending prewrites, cached rows, its index), for
 * the feed's memory quota. Emitted rows are not counted: they belong to the
 * receiver.
 */
size_t tkc_matcher_bytes(const tkc_matcher_t *m);

#endif
