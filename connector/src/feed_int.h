/*
 * feed_int.h: internals shared by feed.c, feed_scheduler.c, feed_worker.c,
 * feed_stream.c and feed_region.c. Nothing else includes it.
 *
 * Ownership of a region subscription (feed_region_t) moves between threads
 * and is never shared: the scheduler creates it when it locks a range, hands
 * it to one worker (tkc_feed_worker_submit), the worker registers it on a
 * stream and, when it fails, hands it back (a FEED_MSG_FAILED message through
 * the worker's outbox, after every row the registration produced).
 */
#ifndef TKC_FEED_INT_H
#define TKC_FEED_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "cdcpb.pb-c.h"
#include "feed.h"
#include "feed_event.h"
#include "lock_resolver.h"
#include "matcher.h"
#include "pd_client.h"
#include "rpc.h"
#include "stream_table.h"
#include "util/hashmap.h"
#include "util/msgq.h"

typedef struct feed_worker_s feed_worker_t;
typedef struct feed_stream_s feed_stream_t;
typedef struct feed_store_s feed_store_t;
typedef struct feed_sched_s feed_sched_t;

/* ===== counters ===== */

#define FEED_COUNTERS(X)                                                     \
    X(streams_opened)                                                        \
    X(streams_retired)                                                       \
    X(registrations)                                                         \
    X(deregistrations)                                                       \
    X(regions_initialized)                                                   \
    X(regions_active)                                                        \
    X(rows_emitted)                                                          \
    X(resolved_events)                                                       \
    X(flow_control_pauses)                                                   \
    X(stale_events)                                                          \
    X(pd_scans)                                                              \
    X(pd_holes)                                                              \
    X(pd_errors)                                                             \
    X(lock_resolve_runs)                                                     \
    X(locks_resolved)                                                        \
    X(lock_resolve_errors)                                                   \
    X(gc_safepoint)                                                          \
    X(fatal)

typedef struct feed_counters_s {
#define X(name) atomic_uint_fast64_t name;
    FEED_COUNTERS(X)
#undef X
    atomic_uint_fast64_t region_errors[TKC_FEED_REGION_ERR_COUNT];
} feed_counters_t;

#define FEED_COUNT(f, name) atomic_fetch_add_explicit(&(f)->ctr.name, 1, memory_order_relaxed)
#define FEED_ADD(f, name, n) atomic_fetch_add_explicit(&(f)->ctr.name, (n), memory_order_relaxed)
#define FEED_SUB(f, name, n) atomic_fetch_sub_explicit(&(f)->ctr.name, (n), memory_order_relaxed)

/* per-store counters (rare events: a mutex is fine) */
typedef enum {
    FEED_STORE_OPENED,
    FEED_STORE_RETIRED,
    FEED_STORE_V1_FALLBACK,
    FEED_STORE_CONNECT_TIMEOUT,
    FEED_STORE_STALL,
} feed_store_counter_t;

/* ===== the feed ===== */

typedef struct feed_span_s {
    uint8_t *enc_start, *enc_end; /* ENCODED; len 0 = -inf / +inf */
    size_t enc_start_len, enc_end_len;
} feed_span_t;

struct tkc_feed_s {
    tkc_feed_config_t cfg; /* copied; string and array fields point to ours below */
    char *feed_id, *ticdc_version, *v2_features, *service_id;
    char **pd_endpoints;
    char *tls_ca, *tls_cert, *tls_key;
    feed_span_t *spans;
    size_t n_spans;

    uint64_t start_ts;
    uint64_t cluster_id;
    tkc_pd_client_t *pd;
    tkc_msgq_t *out;
    tkc_rpc_channel_opts_t chan_opts;

    feed_sched_t *sched;
    feed_worker_t *workers[TKC_FEED_MAX_WORKERS];
    int n_workers;
    /* one per worker (index = worker idx), NULL without a spill dir; owned
     * here and freed after everything that may still hold a matcher */
    tkc_prewrite_spill_t *pw_spill[TKC_FEED_MAX_WORKERS];
    atomic_size_t pw_bytes; /* pending prewrite bytes in memory, all workers */

    tkc_lock_resolver_t *resolver;
    tkc_msgq_t *resolver_in; /* feed_msg_t (FEED_MSG_RESOLVE) */
    pthread_t resolver_thr;

    atomic_bool stop;
    bool started;
    atomic_bool fatal;
    pthread_mutex_t fatal_mu;
    tkc_err_t fatal_err;
    char fatal_msg[512];

    atomic_uint_fast64_t checkpoint;
    atomic_uint_fast64_t pd_ts;      /* last PD TSO sample */
    atomic_int_fast64_t pd_mono_ms;  /* local monotonic ms of that sample */
    atomic_uint_fast64_t next_request_id;

    feed_counters_t ctr;
    pthread_mutex_t store_mu;
    tkc_feed_store_stats_t store_stats[TKC_FEED_MAX_STORES];
    size_t n_store_stats;
};

/* feed.c */
void tkc_feed_store_count(tkc_feed_t *f, uint64_t store_id, feed_store_counter_t c,
                          uint64_t stream_id);
/** Records a fatal error (the first one wins); the scheduler pushes the
 * ERROR event and every thread stops working. @locality any */
void tkc_feed_set_fatal(tkc_feed_t *f, tkc_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool tkc_feed_is_fatal(const tkc_feed_t *f);
bool tkc_feed_stopping(const tkc_feed_t *f);
/** Copies the fatal error into @p ev (kind ERROR). */
void tkc_feed_fill_fatal_event(tkc_feed_t *f, tkc_feed_event_t *ev);
/** Records a PD TSO sample (scheduler). */
void tkc_feed_note_pd_ts(tkc_feed_t *f, uint64_t ts);

/* small PRNG and backoff (any thread, per-thread state) */
static inline uint64_t tkc_feed_rand(uint64_t *s)
{
    /* xorshift64*: jitter only, not cryptography */
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/**
 * Exponential backoff with jitter: attempt 0 -> 0; attempt n >= 1 ->
 * min(base * 2^(n-1), max) scaled by a random factor in [0.5, 1.0].
 */
int64_t tkc_feed_backoff_ms(const tkc_feed_t *f, int attempt, uint64_t *rng);

/* ===== region subscriptions ===== */

typedef enum {
    FR_PENDING = 0,    /* waiting for a stream */
    FR_REGISTERED,     /* Register written, waiting for INITIALIZED */
    FR_INITIALIZED,    /* resolved ts trusted */
    FR_DEREGISTERING,  /* Deregister sent; the next error event confirms it */
} feed_region_status_t;

typedef struct feed_region_s {
    struct feed_region_s *next;      /* for whichever list currently holds it */
    struct feed_region_s *same_next; /* other spans' registrations of this region on its stream */

    /* what to register, set by the scheduler */
    uint32_t span;
    feed_region_status_t status; /* (here: fills the hole after span) */
    uint64_t region_id, conf_ver, version;
    uint64_t store_id, peer_id; /* the leader */
    /* for the worker's store lookup only: set by the scheduler when it
     * dispatches (tkc_feed_region_set_store_addr), freed by the reset that
     * follows the lookup, so a subscribed region does not carry it */
    char *store_addr;
    /* ENCODED, clipped to the span; end_len 0 = +inf. They point into the
     * region's own block (one allocation per region, feed_region.c) and
     * never change. */
    uint8_t *start, *end;
    uint32_t start_len, end_len; /* keys are far below 4 GiB */
    uint64_t checkpoint_ts; /* from the range lock */
    int64_t not_before_ms;  /* scheduler: do not dispatch before */
    bool reload_store;      /* scheduler: reload the store address first */
    bool store_pre73;       /* the store keys registrations by region alone (TiKV < 7.3) */

    /* the live subscription, owned by the worker */
    feed_stream_t *fs;
    uint64_t request_id;
    tkc_matcher_t *matcher; /* NULL or live in the region's block; borrows start/end */
    int64_t sent_ms, dereg_ms, last_resolve_req_ms, last_log_ms;
    int64_t last_advance_ms; /* when its resolved ts last moved (or it registered) */
    uint32_t log_suppressed;

    /* the failure report, filled by the worker for the scheduler */
    tkc_feed_region_err_t fail;
    uint64_t resolved_ts; /* last resolved ts: the next checkpoint */
    uint64_t hint_store_id, hint_peer_id;
    uint64_t backoff_ms; /* server_is_busy.backoff_ms */
    /* the block goes on: the matcher's room, then start and end */
} feed_region_t;

/* feed_region.c */
feed_region_t *tkc_feed_region_new(uint32_t span, uint64_t region_id, uint64_t conf_ver,
                                   uint64_t version, const uint8_t *start, size_t start_len,
                                   const uint8_t *end, size_t end_len, uint64_t checkpoint_ts);
/** Frees the region and its matcher (it must not be registered anywhere). */
void tkc_feed_region_free(feed_region_t *r);
void tkc_feed_region_free_list(feed_region_t *list);
/** Drops the subscription part (matcher, stream, status, store address)
 * keeping the task. */
void tkc_feed_region_reset(feed_region_t *r);
/** Sets (a copy of) or, with NULL, frees the store address. */
void tkc_feed_region_set_store_addr(feed_region_t *r, const char *addr);

/* ===== messages between threads ===== */

typedef enum {
    FEED_MSG_FAILED = 1,  /* worker -> scheduler: regions handed back */
    FEED_MSG_RESOLVE = 2, /* worker -> resolver: resolve locks of a region */
} feed_msg_kind_t;

typedef struct feed_msg_s {
    feed_msg_kind_t kind;
    feed_region_t *regions; /* FAILED: a list (ownership moves) */
    size_t n_regions;
    uint64_t region_id;   /* RESOLVE */
    uint64_t max_version; /* RESOLVE */
} feed_msg_t;

void tkc_feed_msg_free(void *msg);

/* ===== scheduler (feed_scheduler.c) ===== */

feed_sched_t *tkc_feed_sched_new(tkc_feed_t *f);
void tkc_feed_sched_start(feed_sched_t *s);
void tkc_feed_sched_join(feed_sched_t *s);
void tkc_feed_sched_destroy(feed_sched_t *s);
/** Hands @p msg (FEED_MSG_FAILED) to the scheduler. @locality any */
void tkc_feed_sched_submit(feed_sched_t *s, feed_msg_t *msg);

/* ===== workers (feed_worker.c) ===== */

typedef enum { OUT_EVENT = 1, OUT_FAILED = 2 } feed_out_kind_t;

typedef struct feed_out_s {
    struct feed_out_s *next;
    feed_out_kind_t kind;
    void *ptr; /* tkc_feed_event_t * or feed_msg_t * */
    size_t bytes;
} feed_out_t;

typedef struct feed_hook_s {
    struct feed_hook_s *next;
    tkc_stream_t *st; /* one reference */
    int64_t due_ms;
} feed_hook_t;

/** One store as seen by one worker. */
struct feed_store_s {
    uint64_t store_id;
    char addr[128];
    grpc_channel *ch;
    char ch_addr[128];
    bool v1_only;
    feed_stream_t *cur; /* the stream regions are registered on, or NULL */
    feed_region_t *pending, *pending_tail;
    size_t n_pending;
    int64_t next_create_ms;
    int quick_failures; /* consecutive streams that failed before receiving */
    /* reachability (feed_worker.c "unreachable stores") */
    bool suspect;            /* a stream failed: the next one waits for a READY channel */
    int64_t suspect_since_ms;
    int64_t park_until_ms;   /* pending regions wait for the store until then; 0 = not parked */
    int64_t next_probe_ms;   /* next reconnect attempt we force */
    int64_t wanted_ms;       /* last time regions waited for it (probing stops when idle) */
};

struct feed_worker_s {
    tkc_feed_t *f;
    int idx;
    pthread_t thr;
    grpc_completion_queue *cq;
    tkc_stream_table_t *tbl;
    tkc_msgq_t *inbox; /* feed_region_t * to register */
    feed_store_t **stores;
    size_t n_stores;
    feed_stream_t *streams; /* every stream object not yet freed */
    tkc_hashmap_t *regions; /* (span, region id) -> feed_region_t (on a stream) */
    feed_out_t *out_head, *out_tail;
    size_t out_n;
    bool recv_paused; /* some stream waits for outbox room */
    bool shutting_down;
    feed_hook_t *hooks;
    feed_msg_t *fail_batch; /* failures collected during one step */
    uint64_t rng;
    int64_t next_periodic_ms, next_stuck_ms;
    tkc_rpc_arena_t *pb_arena; /* ChangeDataEvents are unpacked here (rpc.h) */
};

feed_worker_t *tkc_feed_worker_new(tkc_feed_t *f, int idx);
void tkc_feed_worker_start(feed_worker_t *w);
void tkc_feed_worker_join(feed_worker_t *w);
void tkc_feed_worker_destroy(feed_worker_t *w);
/** Hands a locked region to the worker (ownership moves). @locality any */
void tkc_feed_worker_submit(feed_worker_t *w, feed_region_t *r);

/* worker-thread helpers used by feed_stream.c and feed_region.c */
void tkc_feed_worker_emit(feed_worker_t *w, tkc_feed_event_t *ev);
/** Queues a region failure (r is off every stream and map already). */
void tkc_feed_worker_fail_region(feed_worker_t *w, feed_region_t *r, tkc_feed_region_err_t kind);
/** Pushes the collected failures into the outbox (after earlier events). */
void tkc_feed_worker_flush_failures(feed_worker_t *w);
void tkc_feed_worker_region_put(feed_worker_t *w, feed_region_t *r);
void tkc_feed_worker_region_del(feed_worker_t *w, feed_region_t *r);
/** Pushes what the outbox holds; @returns true when it is empty. */
bool tkc_feed_worker_flush(feed_worker_t *w);
/** A stream of this worker failed: retire it and hand its regions back. */
void tkc_feed_worker_stream_failed(feed_worker_t *w, feed_stream_t *fs);
/** A stream completed its last operation: free it if it is finished. */
void tkc_feed_worker_stream_maybe_free(feed_worker_t *w, feed_stream_t *fs);

/* ===== streams (feed_stream.c) ===== */

typedef enum { FS_OP_START = 1, FS_OP_STATUS, FS_OP_RECV, FS_OP_SEND } feed_stream_op_kind_t;

typedef struct feed_stream_op_s {
    feed_stream_op_kind_t kind;
    feed_stream_t *fs;
} feed_stream_op_t;

typedef struct feed_sendq_s {
    struct feed_sendq_s *next;
    grpc_byte_buffer *bb;
} feed_sendq_t;

struct feed_stream_s {
    feed_stream_t *next; /* worker's list */
    feed_worker_t *w;
    feed_store_t *ws;
    tkc_stream_t *st; /* our reference */
    uint64_t id, store_id;
    bool v2;
    grpc_call *call;
    feed_stream_op_t op_start, op_status, op_recv, op_send;
    int pending_ops;
    grpc_metadata md[1];
    size_t n_md;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    bool status_done;
    grpc_byte_buffer *recv_buf;
    bool recv_armed, recv_paused, recv_ended;
    feed_sendq_t *sq_head, *sq_tail;
    grpc_byte_buffer *sending;
    bool connected; /* initial metadata or a message received */
    int64_t opened_ms, last_recv_ms;
    uint64_t msgs;
    size_t n_initialized;
    tkc_hashmap_t *by_region; /* region id -> feed_region_t list (same_next) on this stream */
    bool failed;        /* no new registrations; waiting for retire */
    bool retired;       /* retire done: regions handed back */
    bool cancel_wanted; /* cancel arrived before the call existed */
    bool v2_refused;    /* EventFeedV2 answered UNIMPLEMENTED: regions stay here */
    bool store_failed;  /* connect timeout: the scheduler reloads the store */
    int64_t retire_retry_ms;
    char fail_reason[160];
};

/** Creates the stream object (no call yet; linked into the worker). */
feed_stream_t *tkc_feed_stream_new(feed_worker_t *w, feed_store_t *ws, bool v2, int64_t now);
/** Binds the stream-table entry (the object's id) to the stream. */
void tkc_feed_stream_attach(feed_stream_t *fs, tkc_stream_t *st);
/** Creates the call and starts its batches. @returns false if gRPC refused. */
bool tkc_feed_stream_open(feed_stream_t *fs);
/** Handles a completion of one of the stream's batches. */
void tkc_feed_stream_on_op(feed_stream_op_t *op, bool ok);
/** Queues one request. @p bb ownership moves to the stream. */
void tkc_feed_stream_send(feed_stream_t *fs, grpc_byte_buffer *bb);
/** Arms RECV_MESSAGE again if it was paused by flow control. */
void tkc_feed_stream_resume(feed_stream_t *fs);
/** Cancels the call (its own call; thread-safe in gRPC). */
void tkc_feed_stream_cancel(feed_stream_t *fs);
/** tkc_stream_cancel_cb bound to the stream object. */
void tkc_feed_stream_cancel_cb(tkc_stream_t *st, void *opaque);
bool tkc_feed_stream_finished(const feed_stream_t *fs);
void tkc_feed_stream_free(feed_stream_t *fs);

/* ===== region events (feed_region.c) ===== */

typedef enum {
    FEED_REG_OK = 0,
    FEED_REG_STOPPED, /* the stream is retired: r stays PENDING */
    FEED_REG_DEFER,   /* TiKV < 7.3 and another span's registration of the same
                         region is on this stream: r stays PENDING, try later */
    FEED_REG_FATAL,   /* an internal error was reported; r stays PENDING */
} feed_reg_result_t;

/** Registers @p r on @p fs (state first, then the request). */
feed_reg_result_t tkc_feed_region_register(feed_worker_t *w, feed_stream_t *fs, feed_region_t *r,
                                           int64_t now);
/** Takes @p r off its stream and the worker's map, keeping its resolved ts. */
void tkc_feed_region_detach(feed_worker_t *w, feed_region_t *r);
/** Handles one received ChangeDataEvent of @p fs. */
void tkc_feed_region_on_message(feed_worker_t *w, feed_stream_t *fs,
                                const Cdcpb__ChangeDataEvent *msg, int64_t now);

#endif
