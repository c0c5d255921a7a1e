/*
 * feed.h: the change feed. It subscribes to TiKV's change data for a list
 * of key spans and hands committed rows and resolved-ts advances to the
 * pipeline through a bounded queue (feed_event.h, util/msgq.h).
 *
 * Shape (architecture.md "Threads"; tikv-cdc-protocol.md §3, §5, §6, §8.18):
 *
 *   scheduler thread   owns PD region division and the range lock of every
 *                      span (§5.2): ScanRegions in pages, "left-cover" the
 *                      span, retry holes every ~100 ms; locks each region's
 *                      piece of the span and hands the registration to the
 *                      worker that owns the region (region id hash). It
 *                      receives every region failure back (with the last
 *                      resolved ts) and acts per §3.9. It also keeps the PD
 *                      clock (TSO) and the service GC safepoint.
 *   worker threads     (cfg.workers) each own one gRPC completion queue, at
 *                      most one EventFeed stream per store, the region
 *                      subscriptions on those streams, one matcher per
 *                      registration, and push ROWS / RESOLVED events in
 *                      per-region order.
 *   resolver thread    runs lock resolution (lock_resolver.h) for regions a
 *                      worker found stuck (§5.5); blocking RPCs live here so
 *                      neither the scheduler nor a worker ever waits on them.
 *
 * Design decisions (and where they deviate from architecture.md):
 *
 *  - Streams are tkc_stream_t objects of a per-WORKER stream table keyed by
 *    store id (invariant 1): each stream has a fresh id, is retired only by
 *    its own id, its cancel is bound to its own call, and only its regions
 *    are re-scheduled. A per-worker table gives "at most one stream per store
 *    per worker" and keeps every cancel on the owning thread.
 *  - Cross-thread hand-off to a worker: gRPC C core has no public API to post
 *    a tag to a completion queue (no alarm in the C API of 1.51), so a worker
 *    waits on its queue with a short deadline (cfg.poll_ms, default 10 ms)
 *    and drains its inbound queue on every wake. Timers are deadlines checked
 *    on every wake, never sleeps.
 *  - Request ids: on EventFeedV2 with stream multiplexing the request id is
 *    the span's subscription id (span index + 1), the same for every region
 *    of the span, so TiKV batches resolved ts per span. On EventFeed (V1) it
 *    is a fresh id per registration (old-client style), because V1 is only
 *    used against TiKV < 7.3, which keys registrations by region alone and
 *    cannot deregister. A registration that must be replaced while TiKV
 *    still holds it (a matcher error) is deregistered on V2 and re-sent only
 *    after TiKV's confirming error event; on V1 the whole stream is retired
 *    (what TiCDC's old client did).
 *  - Events are routed by (request id, region id) through the registration
 *    table of the stream they arrived on; a region may be registered once per
 *    span it intersects. TiKV < 7.3 (known from PD's store version) keys
 *    registrations by region alone, so there a second span's registration of
 *    a region already registered on that stream waits until the first one
 *    ends (logged as region_deferred). LIMITATION: with such old TiKV and
 *    several spans sharing a region, the waiting span's resolved ts stalls;
 *    old TiCDC opened one stream per table per store instead.
 *  - V2 negotiation per store and worker: the first stream opens EventFeedV2
 *    with metadata "features: <cfg.v2_features>"; if that call ends with
 *    UNIMPLEMENTED before any message, the store is used with EventFeed (V1)
 *    from then on and the regions of that stream are re-sent on the V1
 *    stream without a trip through the scheduler.
 *  - After a stream to a store failed, the next one is opened only once the
 *    store's channel is READY again (feed_worker.c "unreachable stores"):
 *    while a store restarts no stream is created and failed in a loop; its
 *    regions wait a short while at the worker and are then handed back to
 *    the scheduler, which asks PD where their leaders are, until either the
 *    store answers (one new stream per worker) or the leaders moved. A
 *    stream is opened with wait-for-ready; one whose connect fails (channel
 *    TRANSIENT_FAILURE) or that has no connection within
 *    cfg.connect_timeout_ms hands its regions back the same way.
 *  - Flow control: the rows and failures a worker produced are kept in one
 *    ordered outbox per worker; while it cannot be pushed into the output
 *    queue (TKC_ERR_QUEUE_FULL) none of the worker's streams gets a new
 *    RECV_MESSAGE. Failure reports travel through the same outbox, so a
 *    region is re-subscribed only after every row of its previous
 *    registration is in the output queue: the pipeline never sees an old
 *    registration's row after a newer registration's resolved ts.
 *  - A stream that receives nothing (not even resolved ts) for
 *    cfg.stream_stall_timeout_ms while it has initialized regions is
 *    retired: keepalive cannot see an application-level stall.
 *
 * Thread: tkc_feed_new / start / stop / destroy from one owner thread;
 * tkc_feed_set_checkpoint and tkc_feed_get_stats from any thread.
 */
#ifndef TKC_FEED_H
#define TKC_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"
#include "util/err.h"
#include "util/keycodec.h"
#include "util/keyrange.h"
#include "util/msgq.h"

typedef struct tkc_feed_s tkc_feed_t;

/**
 * tkc_feed_new() refuses to start when PD's minimum service GC safepoint is
 * above the start ts: TiKV may already have garbage-collected versions the
 * feed would have to read, and the history cannot be replayed completely.
 */
#define TKC_FEED_ERR_SNAPSHOT_LOST TKC_ERR_SNAPSHOT_LOST

/** Upper limits of the configuration and of the stats snapshot. */
#define TKC_FEED_MAX_WORKERS 64
#define TKC_FEED_MAX_STORES 64

/**
 * Feed configuration. Fill with tkc_feed_config_defaults() and set what you
 * need. Every pointer is borrowed for the duration of tkc_feed_new() (the
 * feed copies what it keeps).
 */
typedef struct tkc_feed_config_s {
    const char *feed_id; /* ["default"]; the GC service id is "tikv-kafka-cdc-<feed_id>" */
    const char *const *pd_endpoints; /* "host:port" or "http://host:port" */
    size_t n_pd_endpoints;
    tkc_rpc_tls_t tls; /* to PD and TiKV; all NULL = plaintext */

    /* The subscribed spans, RAW keys (what TiDB writes): [start, end); an
     * empty start is -inf, an empty end +inf. tkc_feed_table_span() gives a
     * TiDB table's record span. Index i is tkc_row_t.span_index. */
    const tkc_keyrange_t *spans;
    size_t n_spans;

    uint64_t start_ts; /* [0 = PD's current TSO] changes with commit_ts > start_ts are emitted */

    int workers;                      /* [2] worker threads */
    int64_t alter_interval_ms;        /* [1000] min time between stream create/retire per store */
    int64_t stuck_threshold_ms;       /* [20000] region resolved-ts lag that starts lock resolution */
    int64_t stuck_check_interval_ms;  /* [2000] */
    int64_t resolve_lock_interval_ms; /* [10000] min time between resolutions of one region */
    int64_t gc_ttl_s;                 /* [86400] service GC safepoint TTL */
    int64_t gc_update_interval_ms;    /* [30000] */
    const char *ticdc_version;        /* ["8.5.0"] cdcpb.Header.ticdc_version, must be >= 5.3.0 */
    const char *v2_features;          /* ["stream-multiplexing"]; NULL or "": always EventFeed V1 */

    int grpc_window_bytes;    /* [65535] per-stream HTTP/2 window (flow control) */
    int max_recv_bytes;       /* [256 MiB] */
    int keepalive_ms;         /* [10000] */
    int keepalive_timeout_ms; /* [3000] */
    int pd_timeout_ms;        /* [5000] per PD call */
    int kv_timeout_ms;        /* [5000] per lock-resolution RPC */
    int region_scan_limit;    /* [1024] regions per ScanRegions page */

    int64_t region_retry_ms;         /* [100] retry of PD holes and PD errors */
    int64_t backoff_base_ms;         /* [100] region / stream retry backoff base */
    int64_t backoff_max_ms;          /* [3000] its cap (before jitter) */
    int64_t connect_timeout_ms;      /* [3000] a new stream must connect within this */
    int64_t stream_stall_timeout_ms; /* [30000] silent stream with initialized regions */
    int64_t deregister_timeout_ms;   /* [10000] TiKV must confirm a Deregister within this */
    int64_t poll_ms;                 /* [10] worker completion-queue wait (inbound latency) */

    /*
     * Pending prewrites (a transaction's rows waiting for its COMMITs) are
     * held by the matchers. With a spill dir, the bytes they hold across the
     * whole feed are limited to prewrite_budget: beyond it a prewrite's
     * value and old value go to one anonymous file per worker in that dir
     * and are read back at COMMIT. [NULL, 0]: no limit, all in memory.
     */
    const char *prewrite_spill_dir;
    size_t prewrite_budget;

    /*
     * TEST ONLY (issue 4 item 9): after a stream is retired, retire the same
     * stream object again this many ms later, like the 5 s sleep PR 10559's
     * manual test injected before TiCDC's second deleteStream. With id-guarded
     * streams it is a no-op; in a TKC_TEST_ADDR_KEYED_STREAMS build it kills
     * the replacement stream and the reconnection loop follows. 0 = off.
     * When 0, the environment variable TKC_TEST_STREAM_CLEANUP_DELAY_MS (ms)
     * sets it, so the scenario runs with the shipped binary too (logged as
     * event=test_stream_cleanup_delay_enabled at WARN; never set it in
     * production).
     */
    int64_t test_stream_cleanup_delay_ms;
} tkc_feed_config_t;

/** Fills @p cfg with the defaults shown in brackets above. @locality any */
void tkc_feed_config_defaults(tkc_feed_config_t *cfg);

/**
 * A TiDB table's record span [t{id}_r, t{id}_s) in raw keys. range points
 * into start/end of the same struct: do not copy the struct, take range.
 */
typedef struct tkc_feed_table_span_s {
    uint8_t start[TKC_KEYCODEC_RECORD_PREFIX_LEN];
    uint8_t end[TKC_KEYCODEC_RECORD_PREFIX_LEN];
    tkc_keyrange_t range;
} tkc_feed_table_span_t;

/** Fills @p out with table @p table_id's record span. @locality any */
void tkc_feed_table_span(int64_t table_id, tkc_feed_table_span_t *out);

/**
 * @brief Connects to PD, fixes the start ts and registers the service GC
 *        safepoint at it; starts no thread yet.
 *
 * @param out the queue the feed pushes tkc_feed_event_t items into
 *            (borrowed; must outlive the feed; the pipeline pops it).
 * @returns the feed (destroy with tkc_feed_destroy()), or NULL with *err set
 *          (may be NULL) and the reason in @p errstr: TKC_ERR_CONF for an
 *          invalid configuration, TKC_ERR_TRANSPORT when PD cannot be
 *          reached, TKC_FEED_ERR_SNAPSHOT_LOST when PD's GC safepoint is
 *          already above the start ts.
 * @locality owner thread
 */
tkc_feed_t *tkc_feed_new(const tkc_feed_config_t *cfg, tkc_msgq_t *out, tkc_err_t *err,
                         char *errstr, size_t errstr_size);

/** Starts the scheduler, resolver and worker threads. @locality owner thread */
tkc_err_t tkc_feed_start(tkc_feed_t *f);

/**
 * Stops and joins every thread; streams are cancelled. Events already in
 * the output queue stay there. Idempotent. @locality owner thread
 */
void tkc_feed_stop(tkc_feed_t *f);

/** Stops (if needed) and frees the feed. NULL is a no-op. @locality owner thread */
void tkc_feed_destroy(tkc_feed_t *f);

/** The start ts (fixed by tkc_feed_new()). @locality any */
uint64_t tkc_feed_start_ts(const tkc_feed_t *f);
/** The PD cluster id. @locality any */
uint64_t tkc_feed_cluster_id(const tkc_feed_t *f);

/**
 * @brief Span @p i in ENCODED (memcomparable) form, the keys of
 *        tkc_feed_region_range_t in RESOLVED events; build the pipeline's
 *        frontier (tkc_frontier_new) from these, with tkc_feed_start_ts().
 * @returns false for an unknown index. The bytes are owned by the feed.
 * @locality any
 */
bool tkc_feed_span_encoded(const tkc_feed_t *f, size_t i, tkc_keyrange_t *out);
size_t tkc_feed_span_count(const tkc_feed_t *f);

/**
 * Moves the feed's service GC safepoint forward to @p ts (the checkpoint the
 * pipeline committed); it is sent to PD on the next periodic update and
 * never moves backwards. @locality any
 */
void tkc_feed_set_checkpoint(tkc_feed_t *f, uint64_t ts);

/**
 * PD's time as last sampled by the feed, extrapolated with the local
 * monotonic clock (a TSO), or 0 before the first sample. Lag of a resolved
 * ts R = physical(pd_now) - physical(R). @locality any
 */
uint64_t tkc_feed_pd_now(const tkc_feed_t *f);

/** Region error kinds, for stats and logs. */
typedef enum {
    TKC_FEED_REGION_ERR_NOT_LEADER = 0,
    TKC_FEED_REGION_ERR_EPOCH_NOT_MATCH,
    TKC_FEED_REGION_ERR_REGION_NOT_FOUND,
    TKC_FEED_REGION_ERR_SERVER_IS_BUSY,
    TKC_FEED_REGION_ERR_CONGESTED,
    TKC_FEED_REGION_ERR_DUPLICATE_REQUEST,
    TKC_FEED_REGION_ERR_COMPATIBILITY,
    TKC_FEED_REGION_ERR_CLUSTER_ID_MISMATCH,
    TKC_FEED_REGION_ERR_UNKNOWN,     /* an empty or unknown cdcpb.Error */
    TKC_FEED_REGION_ERR_STREAM,      /* its stream failed (counted per region) */
    TKC_FEED_REGION_ERR_MATCHER,     /* prewrite-not-match, commit <= resolved ts */
    TKC_FEED_REGION_ERR_STORE,       /* store unknown / unreachable / incompatible */
    TKC_FEED_REGION_ERR_COUNT
} tkc_feed_region_err_t;

/** "not_leader", "epoch_not_match", ... */
const char *tkc_feed_region_err_name(int kind);

typedef struct tkc_feed_store_stats_s {
    uint64_t store_id;
    uint64_t streams_opened;  /* stream-table creates (one gRPC call each) */
    uint64_t streams_retired; /* retires that removed a stream */
    uint64_t streams_live;
    uint64_t last_stream_id;  /* id of the newest stream to this store */
    uint64_t v1_fallbacks;    /* EventFeedV2 answered UNIMPLEMENTED */
    uint64_t connect_timeouts;
    uint64_t stalls;          /* retired for receiving nothing */
} tkc_feed_store_stats_t;

/** A snapshot of the feed's counters (monotonic unless marked gauge). */
typedef struct tkc_feed_stats_s {
    uint64_t streams_opened, streams_retired;
    uint64_t registrations;       /* Register requests sent */
    uint64_t deregistrations;     /* Deregister requests sent */
    uint64_t regions_initialized; /* INITIALIZED received */
    uint64_t regions_active;      /* gauge: registrations currently on a stream */
    uint64_t region_errors[TKC_FEED_REGION_ERR_COUNT];
    uint64_t rows_emitted;
    uint64_t resolved_events;
    uint64_t flow_control_pauses; /* times a worker stopped reading on a full queue */
    uint64_t stale_events;        /* events for no current registration (dropped) */
    uint64_t pd_scans, pd_holes, pd_errors;
    uint64_t lock_resolve_runs, locks_resolved, lock_resolve_errors;
    uint64_t gc_safepoint;        /* gauge: last service safepoint set */
    uint64_t fatal;               /* 1 once a fatal error was reported */
    uint64_t prewrite_bytes;      /* gauge: pending prewrite bytes in memory (with a spill dir) */
    uint64_t prewrite_spilled_bytes; /* prewrite values + old values written to spill files */
    size_t n_stores;
    tkc_feed_store_stats_t stores[TKC_FEED_MAX_STORES];
} tkc_feed_stats_t;

/** Copies the counters. @locality any */
void tkc_feed_get_stats(tkc_feed_t *f, tkc_feed_stats_t *out);

/** The entry of @p store_id in @p st, or NULL. */
const tkc_feed_store_stats_t *tkc_feed_stats_store(const tkc_feed_stats_t *st, uint64_t store_id);

#endif
