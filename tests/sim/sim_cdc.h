/*
 * sim_cdc.h: the cdcpb.ChangeData service (EventFeed, EventFeedV2) of
 * tikv-sim's stores, fed by the shared model.
 *
 * One sim_cdc_t serves every store of a simulator. It installs itself as the
 * model's single observer (sim_model_set_observer) and registers both
 * EventFeed methods plus a tick on each store's sim_server. It behaves like
 * TiKV as described in ../shared/docs/tikv-cdc-protocol.md §3:
 *
 *  - Per call ("connection"), registrations are keyed by (request_id,
 *    region_id), or region_id alone with pre_7_3. The FIRST request's
 *    header.ticdc_version fixes the call's features: >= 4.0.8 batched
 *    ResolvedTs, >= 5.3.0 cluster-id validation; empty or unparsable counts as
 *    0.0.0 (per-region deprecated Event.resolved_ts, no cluster check).
 *    EventFeedV2 reads the "features" metadata (comma-separated, trimmed);
 *    "stream-multiplexing" is the only known one, anything else ends the call
 *    with UNIMPLEMENTED naming the unknown features. V1 never multiplexes.
 *  - Register checks, in TiKV's order: cluster_id_mismatch; kv_api (TxnKV and,
 *    since we run api v1, RawKV) -> compatibility{"6.2.0"}; busy (injected, or
 *    scan_concurrency_limit pending scans on the store) -> server_is_busy;
 *    no peer here -> region_not_found, peer but not leader -> not_leader{leader
 *    hint}; duplicate key -> duplicate_request (same request_id); epoch version
 *    mismatch -> epoch_not_match{[current region]}; congested (injected, or the
 *    store's sink memory quota exceeded) -> congested.
 *  - Then an incremental scan of (checkpoint_ts, +inf) over the requested
 *    range clipped to the region, snapshotted under the model lock together
 *    with the subscription becoming visible to live rows: PREWRITE rows for
 *    locks, COMMITTED rows (newest version first per key) with old values,
 *    then one INITIALIZED row. The scan output drains at
 *    incremental_scan_rows_per_tick rows per store per tick while live rows
 *    flow at once, so a live COMMIT can overtake the scan's PREWRITE.
 *  - Live rows (PREWRITE, COMMIT without old value and with the value only
 *    when <= 255 B, ROLLBACK, 1PC COMMITTED) go to every subscription of the
 *    region whose requested range contains the key (TiKV >= 7.0 filters).
 *  - Split -> epoch_not_match{[left, right]}, merge -> epoch_not_match{[]} on
 *    source and target, leader moved -> not_leader{new leader}. Nothing is
 *    sent for a registration after its error event.
 *  - Every resolved_interval_ms per store: ts = min(fresh TSO, oldest lock
 *    start_ts in the subscription's range), never backwards, re-sent when
 *    unchanged, only for initialized subscriptions; batched per connection
 *    (request_id 0) or per (connection, request_id) with multiplexing, sorted
 *    ascending in batches of 8, 32, 128, ... regions, ts = batch minimum, each
 *    ResolvedTs in its own ChangeDataEvent; every value sent is reported to
 *    sim_model_note_resolved_locked().
 *  - Deregister{request_id, region_id or 0} removes the registration(s) and
 *    answers region_not_found for each; a half-close or cancel drops every
 *    registration of the call, which then finishes OK.
 *  - Rows are packed in Event.entries chunks <= entries_chunk_bytes, Events in
 *    ChangeDataEvents up to max_message_bytes (one oversized row still goes).
 *
 * GC safepoint (§5.6): like TiKV, a registration is NOT checked against the
 * GC safepoint. Its incremental scan sees what GC would have left: versions
 * with commit_ts <= safepoint are gone except the newest one per key when it
 * is a put (the old value of that survivor is therefore empty). So a request
 * whose checkpoint_ts is below the safepoint succeeds and silently misses
 * changes, exactly as on a real cluster; the only defence is the client's:
 * keep a PD service safepoint at or below the checkpoint and refuse to start
 * when UpdateServiceGCSafePoint reports a min_safe_point above the checkpoint
 * (TiCDC's ErrSnapshotLostByGC). The store's "gc_unsafe_registrations"
 * counter shows how often a client asked anyway.
 *
 * Lock order: the model lock is the only lock of this module; it is never held
 * while calling into sim_server (sends, finishes) so no lock cycle can form
 * with the server's own locks. Every sim_call_* is made on the store's server
 * thread (handlers and tick); other threads only flag work for it.
 *
 * Shutdown order: stop every store server (sim_server_stop releases all calls
 * through on_close/on_release), destroy them, then sim_cdc_destroy(). Never
 * call sim_server_stop() while holding the model lock.
 */
#ifndef TKC_SIM_CDC_H
#define TKC_SIM_CDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim_model.h"
#include "sim_server.h"

typedef struct sim_cdc_s sim_cdc_t;

typedef struct {
    int resolved_interval_ms;          /* default 1000, clamped to >= 50 */
    bool pre_7_3;                      /* key registrations by region_id alone */
    size_t sink_memory_quota;          /* output bytes per store not yet handed to
                                          gRPC; above it registrations and live rows
                                          get congested; default 512 MiB. A call
                                          whose gRPC send queue holds over a quarter
                                          of it (max 32 MiB) is fed slowly, so a
                                          stalled reader fills the quota */
    int incremental_scan_rows_per_tick; /* per store per tick, default 8192 */
    size_t max_message_bytes;          /* ChangeDataEvent soft max, default 6 MiB */
    size_t entries_chunk_bytes;        /* Event.entries payload max, default 32 KiB */
    int scan_concurrency_limit;        /* pending scans -> busy, default 10000 */
    int tick_ms;                       /* store tick (flush, scans), default 2 */
} sim_cdc_config_t;

/** Fills @p cfg with the defaults above. */
void sim_cdc_config_defaults(sim_cdc_config_t *cfg);

/**
 * Creates the service and installs it as the model's observer.
 * @param cfg may be NULL (defaults); copied.
 * @returns the service (never NULL). Thread: any, before any store attaches.
 */
sim_cdc_t *sim_cdc_new(sim_model_t *m, const sim_cdc_config_t *cfg);

/**
 * Registers /cdcpb.ChangeData/EventFeed and /EventFeedV2 and the tick on
 * @p srv, the server of store @p store_id. Call before sim_server_start().
 * The tick of a store server belongs to this module.
 */
void sim_cdc_attach_store(sim_cdc_t *cdc, uint64_t store_id, sim_server_t *srv);

/**
 * Removes the observer and frees everything. Every attached server must be
 * stopped (and should be destroyed) first.
 */
void sim_cdc_destroy(sim_cdc_t *cdc);

/* ===== faults (thread: any; they take the model lock) ===== */

/**
 * The next @p count registrations on @p store_id (for @p region_id, or any
 * region when 0) are answered server_is_busy{reason "too many pending
 * incremental scans", backoff_ms}. Counts add up per (store, region).
 */
void sim_cdc_fault_busy(sim_cdc_t *cdc, uint64_t store_id, uint64_t region_id, int count,
                        uint64_t backoff_ms);
/** Likewise with congested{region_id}. */
void sim_cdc_fault_congested(sim_cdc_t *cdc, uint64_t store_id, uint64_t region_id, int count);
/**
 * For @p ms milliseconds region @p region_id is left out of resolved-ts
 * rounds entirely (as TiKV does when it cannot confirm leadership): its
 * subscribers get no resolved ts at all, not even the old value. ms <= 0
 * lifts the stall.
 */
void sim_cdc_fault_stall_resolved(sim_cdc_t *cdc, uint64_t region_id, int ms);

typedef enum {
    SIM_CDC_END_OK = 0,          /* finish OK after the queued messages */
    SIM_CDC_END_UNKNOWN = 1,     /* abort UNKNOWN "connection cancelled" (watchdog) */
    SIM_CDC_END_UNAVAILABLE = 2, /* abort UNAVAILABLE */
    SIM_CDC_END_STALL = 3,       /* keep the call open, never write again */
} sim_cdc_end_mode_t;

/**
 * Ends every open EventFeed call of @p store_id (done by the store's thread at
 * its next tick); their registrations are dropped at once.
 * @returns how many calls were ended.
 */
int sim_cdc_end_streams(sim_cdc_t *cdc, uint64_t store_id, sim_cdc_end_mode_t mode);

/**
 * Store restart hooks. store_down drops every registration of the store
 * (nothing more is produced for it) and makes new calls fail UNAVAILABLE;
 * call it before sim_server_stop(), which then ends the calls and releases
 * them. store_up accepts calls again; call it after sim_server_start().
 */
void sim_cdc_store_down(sim_cdc_t *cdc, uint64_t store_id);
void sim_cdc_store_up(sim_cdc_t *cdc, uint64_t store_id);

/* ===== injection of arbitrary wire events, for client edge-case tests ===== */

/** Use the request_id of each matching registration. */
#define SIM_CDC_REQ_CURRENT UINT64_MAX

/** A row to inject; bytes are copied. type/op use cdcpb's numbering. */
typedef struct {
    int type;        /* Cdcpb__Event__LogType */
    int op;          /* Cdcpb__Event__Row__OpType */
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    const uint8_t *old_value;
    size_t old_value_len;
    uint64_t start_ts;
    uint64_t commit_ts;
    uint64_t generation;
} sim_cdc_row_t;

/**
 * Sends @p row as an Event{region_id, request_id, entries:[row]} on every
 * call of @p store_id that has a live registration of @p region_id, ordered
 * after everything already queued for it, bypassing every check (range
 * filter, state). request_id SIM_CDC_REQ_CURRENT uses each registration's own
 * id; any other value is sent as is (stale ids).
 * @returns the number of Events queued.
 */
int sim_cdc_inject_row(sim_cdc_t *cdc, uint64_t store_id, uint64_t region_id,
                       uint64_t request_id, const sim_cdc_row_t *row);
/**
 * Sends ResolvedTs{regions, ts, request_id} in its own ChangeDataEvent on
 * every open call of @p store_id (regions need not be registered; the value
 * is not checked and not noted in the truth).
 * @returns the number of calls it was queued on.
 */
int sim_cdc_inject_resolved(sim_cdc_t *cdc, uint64_t store_id, const uint64_t *regions,
                            size_t n_regions, uint64_t ts, uint64_t request_id);
/**
 * Sends @p len bytes (a packed ChangeDataEvent, copied) as one message on
 * every open call of @p store_id. @returns the number of calls.
 */
int sim_cdc_inject_raw(sim_cdc_t *cdc, uint64_t store_id, const uint8_t *data, size_t len);

/* ===== stats ===== */

typedef struct {
    uint64_t streams_opened, streams_closed, streams_refused;
    uint64_t streams_active;
    uint64_t registrations;        /* accepted registrations */
    uint64_t registrations_active;
    uint64_t register_requests;    /* every Register received */
    uint64_t deregistrations;      /* registrations removed by Deregister */
    uint64_t gc_unsafe_registrations; /* checkpoint_ts < GC safepoint */
    uint64_t err_not_leader, err_region_not_found, err_epoch_not_match,
        err_duplicate_request, err_compatibility, err_cluster_id_mismatch,
        err_server_is_busy, err_congested;
    uint64_t rows_prewrite, rows_commit, rows_rollback, rows_committed, rows_initialized;
    uint64_t resolved_ts_regions;  /* (region, ts) pairs sent */
    uint64_t resolved_ts_messages; /* ResolvedTs messages / deprecated events */
    uint64_t resolved_round_us_last, resolved_round_us_max; /* model lock held that long */
    uint64_t messages_sent, bytes_sent;
    uint64_t buffered_bytes;       /* queued here, not yet handed to gRPC (quota) */
} sim_cdc_stats_t;

/** Copies the counters of @p store_id; @returns 0, or -1 if not attached. */
int sim_cdc_stats_get(sim_cdc_t *cdc, uint64_t store_id, sim_cdc_stats_t *out);
/**
 * {"stores": [{"store_id": 1, "streams_opened": …, "errors": {"not_leader": …},
 *  "rows": {"prewrite": …}, …}, …]} for GET /stats. Caller owns the result.
 */
json_t *sim_cdc_stats_json(sim_cdc_t *cdc);

#endif
