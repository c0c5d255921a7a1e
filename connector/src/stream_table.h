/*
 * stream_table.h: the live EventFeed streams of a feed worker, one per
 * store, each known by a fresh never-reused 64-bit id
 * (architecture.md invariant 1; tikv-cdc-protocol.md §6).
 *
 * The rules that keep a dead stream's cleanup from killing its replacement
 * (the TiCDC "downhill loop", tiflow#10239, fixed by PR 10559):
 *   - whoever retires a stream passes the stream object; the table entry is
 *     removed only if it still holds THAT stream's id;
 *   - a stream is retired exactly once; a second retire is a no-op;
 *   - the call cancelled is the stream's own (a callback bound to the stream
 *     object, never looked up by store);
 *   - retire hands back exactly the regions registered on that stream;
 *   - creating or retiring a stream to one store is rate-limited (default one
 *     alteration per second per store) without blocking other stores: the
 *     caller gets the time at which to try again.
 *
 * Test-only build switch TKC_TEST_ADDR_KEYED_STREAMS (CMake option of the
 * same name): retire then deletes and cancels whatever stream the table
 * currently holds for the store, as the old TiCDC did, so tests can show the
 * reconnection loop. Never enable it in a product build.
 *
 * Time is passed in by the caller (monotonic milliseconds), so the table
 * never sleeps and tests need no clock.
 */
#ifndef TKC_STREAM_TABLE_H
#define TKC_STREAM_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define TKC_STREAM_TABLE_ALTER_INTERVAL_MS_DEFAULT 1000

typedef struct tkc_stream_table_s tkc_stream_table_t;
typedef struct tkc_stream_s tkc_stream_t;

/**
 * Cancels the gRPC call of @p st (grpc_call_cancel on the stream's own
 * call). Called at most once per stream, never with a table lock held.
 */
typedef void tkc_stream_cancel_cb(tkc_stream_t *st, void *opaque);

/** Frees one region state left in a stream when the stream is freed. */
typedef void tkc_stream_state_free_cb(void *state);

typedef enum {
    TKC_STREAM_OK = 0,
    /* retire: the stream was retired before; nothing happened */
    TKC_STREAM_ALREADY_RETIRED = 1,
    /* create/retire: too soon after the last alteration for this store;
     * nothing happened, try again at *retry_at_ms */
    TKC_STREAM_RATE_LIMITED = 2,
    /* create: the table already holds a live stream for this store */
    TKC_STREAM_EXISTS = 3,
} tkc_stream_status_t;

/** "OK", "ALREADY_RETIRED", "RATE_LIMITED", "EXISTS". */
const char *tkc_stream_status_name(int status);

/** One region registration of a stream, as handed back by retire. */
typedef struct tkc_stream_region_s {
    uint64_t request_id;
    uint64_t region_id;
    void *state; /* the caller's opaque state, ownership back to the caller */
} tkc_stream_region_t;

typedef struct tkc_stream_region_list_s {
    size_t n;
    tkc_stream_region_t *v; /* sorted by (request_id, region_id) */
} tkc_stream_region_list_t;

/** Frees the array of @p list (not the states in it). */
void tkc_stream_region_list_fini(tkc_stream_region_list_t *list);

/** @returns true in a TKC_TEST_ADDR_KEYED_STREAMS build. */
bool tkc_stream_table_addr_keyed(void);

/**
 * @brief Creates an empty table.
 * @param alter_interval_ms minimum time between two alterations (create or
 *        retire) for one store; 0 disables the limit (tests).
 * @param state_free frees region states still registered when a stream is
 *        freed without having been retired (table teardown); may be NULL.
 * @locality any; all functions of this module are thread-safe
 */
tkc_stream_table_t *tkc_stream_table_new(int64_t alter_interval_ms,
                                         tkc_stream_state_free_cb *state_free);

/**
 * Frees the table. Live streams are dropped from it without being cancelled
 * (the caller shuts its calls down itself); stream objects the caller still
 * references stay valid until released.
 */
void tkc_stream_table_destroy(tkc_stream_table_t *tbl);

/**
 * @brief Opens a new stream entry for @p store_id with a fresh id.
 *
 * @param cancel bound to this stream object only; @p opaque is its argument.
 * @param out receives the stream on TKC_STREAM_OK; the caller owns one
 *            reference (tkc_stream_release()) in addition to the table's.
 * @param retry_at_ms on TKC_STREAM_RATE_LIMITED, when to try again (may be
 *                    NULL).
 * @returns TKC_STREAM_OK, TKC_STREAM_RATE_LIMITED or TKC_STREAM_EXISTS.
 */
tkc_stream_status_t tkc_stream_table_create(tkc_stream_table_t *tbl, uint64_t store_id,
                                            int64_t now_ms, tkc_stream_cancel_cb *cancel,
                                            void *opaque, tkc_stream_t **out,
                                            int64_t *retry_at_ms);

/**
 * @brief The current stream of @p store_id, or NULL.
 * @returns a new reference (release it), so the stream stays valid even if
 *          another thread retires it meanwhile.
 */
tkc_stream_t *tkc_stream_table_get(tkc_stream_table_t *tbl, uint64_t store_id);

/**
 * When the next create/retire for @p store_id is allowed (<= now means
 * now). For scheduling a timer instead of sleeping.
 */
int64_t tkc_stream_table_next_alter_ms(tkc_stream_table_t *tbl, uint64_t store_id);

/**
 * @brief Retires @p st: removes the table entry if (and only if) it still
 *        holds st's id, cancels st's own call, and hands back st's regions.
 *
 * Exactly once per stream: later calls return TKC_STREAM_ALREADY_RETIRED
 * and touch nothing (no rate limit applies to them). A retire that would
 * remove the table entry is rate-limited like create: then nothing happens
 * and *retry_at_ms says when to call again.
 *
 * @param regions on TKC_STREAM_OK, receives every (request_id, region_id,
 *        state) registered on st, sorted; fini it with
 *        tkc_stream_region_list_fini(). NULL: the registrations stay in the
 *        stream and their states are freed with it (state_free).
 */
tkc_stream_status_t tkc_stream_table_retire(tkc_stream_table_t *tbl, tkc_stream_t *st,
                                            int64_t now_ms, tkc_stream_region_list_t *regions,
                                            int64_t *retry_at_ms);

/** Number of live streams in the table. */
size_t tkc_stream_table_count(tkc_stream_table_t *tbl);

/* ===== stream objects ===== */

uint64_t tkc_stream_id(const tkc_stream_t *st);
uint64_t tkc_stream_store_id(const tkc_stream_t *st);
bool tkc_stream_retired(const tkc_stream_t *st);
/** True once the stream's cancel callback has run. */
bool tkc_stream_cancelled(const tkc_stream_t *st);

/** Runs this stream's own cancel callback, at most once. @locality any */
void tkc_stream_cancel(tkc_stream_t *st);

/** Takes one more reference. @locality any */
void tkc_stream_keep(tkc_stream_t *st);
/** Drops one reference; the last one frees the stream. @locality any */
void tkc_stream_release(tkc_stream_t *st);

/**
 * @brief Registers (request_id, region_id) -> @p state (non-NULL) on @p st.
 *
 * Call it before the request is written, so a failure of the stream always
 * finds the region.
 * @returns TKC_ERR_OK; TKC_ERR_INVALID_ARG if that pair is already registered
 *          on this stream (a DuplicateRequest in the making) or state is NULL;
 *          TKC_ERR_STOPPED if the stream is retired (schedule the region
 *          elsewhere: retire has already handed back the others).
 */
tkc_err_t tkc_stream_add_region(tkc_stream_t *st, uint64_t request_id, uint64_t region_id,
                                void *state);

/** @returns the state of (request_id, region_id) on @p st, or NULL. */
void *tkc_stream_get_region(tkc_stream_t *st, uint64_t request_id, uint64_t region_id);

/** Unregisters the pair. @returns its state (owned by the caller) or NULL. */
void *tkc_stream_remove_region(tkc_stream_t *st, uint64_t request_id, uint64_t region_id);

size_t tkc_stream_region_count(tkc_stream_t *st);

#endif
