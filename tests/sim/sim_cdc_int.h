/*
 * sim_cdc_int.h: internals shared by sim_cdc.c (the service: handlers,
 * registrations, the model observer, resolved ts, faults, stats) and
 * sim_cdc_out.c (small containers, the per-connection output queues, packing
 * and sending). Only those two files include it. Everything declared here is
 * protected by the model lock unless a comment says otherwise; the design is
 * described at the top of sim_cdc.c.
 */
#ifndef TKC_SIM_CDC_INT_H
#define TKC_SIM_CDC_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpb.pb-c.h"
#include "sim_cdc.h"

/* ===== small containers (sim_cdc_out.c) ===== */

/* Bump allocator in growing chunks: rows of one output item live here. */
typedef struct arena_chunk_s {
    struct arena_chunk_s *next;
    size_t used, cap;
    max_align_t data[];
} arena_chunk_t;

typedef struct {
    arena_chunk_t *head;
    size_t next_cap;
} arena_t;

/* Open-addressing map from a pair of u64 to a non-NULL pointer; linear
 * probing with backward-shift deletion (no tombstones). */
typedef struct {
    uint64_t a, b;
    void *v;
} u2ent_t;

typedef struct {
    u2ent_t *t;
    size_t cap, n; /* cap is a power of two or 0 */
} u2map_t;

#define LOG_COMP "sim.cdc"

/* Rough protobuf overhead of one Row besides its byte fields; used for the
 * 32 KiB entries chunks and for memory accounting, as TiKV sizes rows by
 * key + value + old value. */
#define ROW_OVERHEAD 32
/* TiKV sends the value in a COMMIT row only when the write record carries a
 * short value (<= 255 bytes); longer values live in the default CF. */
#define SHORT_VALUE_MAX 255
/* Above this many bytes waiting in a call's gRPC send queue (a quarter of
 * the sink memory quota, at most 32 MiB) we stop handing the call more: the
 * client is slow, and output piles up in our queues where the sink memory
 * quota sees it (TiKV's quota covers its sink channels, not gRPC). The queue
 * size is only learnt when sending, so we then probe with one item at
 * doubling intervals. */
#define CALL_HIGH_WATER_MAX ((size_t)32 << 20)
#define CALL_HIGH_WATER_MIN ((size_t)64 << 10)
#define PROBE_MAX_TICKS 256

/* ===== types ===== */

typedef enum {
    ERR_NOT_LEADER,
    ERR_REGION_NOT_FOUND,
    ERR_EPOCH_NOT_MATCH,
    ERR_DUPLICATE_REQUEST,
    ERR_COMPATIBILITY,
    ERR_CLUSTER_ID_MISMATCH,
    ERR_SERVER_IS_BUSY,
    ERR_CONGESTED,
} errkind_t;

/* A row to queue; pointers are borrowed for the call. */
typedef struct {
    int type, op;
    const uint8_t *key;
    size_t klen;
    const uint8_t *val;
    size_t vlen;
    const uint8_t *old;
    size_t olen;
    uint64_t start_ts, commit_ts, generation;
} rowspec_t;

/* One Event of an output item: rows of one subscription, or a pre-packed
 * Event (raw != NULL). */
typedef struct {
    uint64_t region_id, request_id;
    Cdcpb__Event__Row **rows;
    uint32_t n, cap;
    uint8_t *raw;
    size_t raw_len;
} slot_t;

typedef enum { OUT_EVENTS = 1, OUT_MSG = 2 } out_kind_t;

typedef struct out_s {
    struct out_s *next;
    out_kind_t kind;
    uint64_t seq;
    size_t bytes; /* accounted size */
    arena_t arena;
    slot_t *slots;
    size_t n_slots, cap_slots;
    uint8_t *msg; /* OUT_MSG: a packed ChangeDataEvent */
    size_t msg_len;
    bool sealed;   /* taken out once already: never appended to again */
    size_t pos_slot, pos_row; /* where a partial send stopped */
} out_t;

typedef struct store_s store_t;
typedef struct conn_s conn_t;

typedef enum { SUB_INITIALIZING = 1, SUB_NORMAL = 2 } sub_state_t;

/* Incremental-scan output waiting to be released to the connection. */
typedef struct {
    rowspec_t *rows;
    size_t n, cap, pos;
    arena_t arena;
} scan_t;

typedef struct sub_s {
    conn_t *conn;
    uint64_t region_id, request_id;
    uint64_t checkpoint_ts;
    uint64_t resolved_ts;
    sub_state_t state;
    /* observed range, clipped to the region: encoded for model queries, raw
     * for filtering rows (raw keys compare in the same order) */
    sim_bytes_t enc_start, enc_end; /* enc_end empty = +inf */
    sim_bytes_t raw_start, raw_end;
    bool end_inf;
    scan_t *scan;                   /* NULL once INITIALIZED was queued */
    uint64_t slot_seq;              /* output item holding our slot */
    uint32_t slot_idx;
    struct sub_s *r_prev, *r_next;  /* region list */
    struct sub_s *c_prev, *c_next;  /* connection list */
    struct sub_s *f_prev, *f_next;  /* store scan FIFO */
    bool in_fifo;
} sub_t;

/* The live subscriptions of one region (over every store and call). */
typedef struct {
    sub_t *head;
} rsubs_t;

struct conn_s {
    store_t *st;
    sim_call_t *call;
    uint64_t id;
    bool v2, multiplex;
    bool features_set;    /* first request seen */
    bool batch_resolved;  /* client >= 4.0.8 */
    bool check_cluster;   /* client >= 5.3.0 */
    char *version;        /* first request's ticdc_version (pre-7.3 check) */
    bool dead;            /* produce nothing more (closed, ended, store down) */
    bool closed;          /* on_close seen: the call may only be finished */
    bool finished;        /* we finished / aborted it */
    int end_req;          /* -1, or a sim_cdc_end_mode_t to apply at tick */
    u2map_t subs;         /* (request_id or 0, region_id) -> sub */
    sub_t *subs_head;
    size_t n_subs;
    out_t *out_head, *out_tail;
    size_t out_bytes;
    uint64_t out_seq;
    uint32_t drop_gen;    /* bumped whenever queued output is thrown away */
    size_t call_queued;   /* last known bytes in the call's send queue */
    uint64_t probe_tick;  /* over high water: next tick allowed to send */
    uint32_t probe_gap;
    conn_t *prev, *next;
};

typedef struct fault_s {
    struct fault_s *next;
    uint64_t region_id; /* 0 = any */
    int count;
    uint64_t backoff_ms;
} fault_t;

/* Resolved-ts candidate of one round. */
typedef struct {
    uint64_t request_id, ts, region_id;
} rts_ent_t;

/* Work detached for sending outside the lock. */
typedef struct {
    conn_t *conn;
    sim_call_t *call;
    out_t *outs;
    size_t budget;    /* probing a slow call: bytes to pack at most, 0 = all */
    uint32_t drop_gen;
    out_t *rest;      /* a probed item not sent completely */
    size_t queued;    /* the call's queue after our sends, SIZE_MAX if none */
    int end_mode;     /* -1 none */
} flush_job_t;

struct store_s {
    sim_cdc_t *cdc;
    uint64_t store_id;
    sim_server_t *srv;
    bool down;
    conn_t *conns;
    size_t n_conns;
    sub_t *fifo_head, *fifo_tail;
    size_t n_scanning;
    fault_t *busy, *congested;
    _Atomic int64_t next_resolved_ms; /* read without the lock by the tick */
    size_t buffered; /* bytes queued in our output items (sink quota) */
    atomic_bool dirty;
    uint64_t ticks;
    sim_cdc_stats_t stats;
    /* server-thread scratch (never touched by other threads) */
    uint8_t *pack;
    size_t pack_cap;
    flush_job_t *jobs;
    size_t jobs_cap;
    rts_ent_t *rts;
    size_t rts_cap;
    char refuse_details[512];
};

struct sim_cdc_s {
    sim_model_t *m;
    sim_cdc_config_t cfg;
    uint64_t cluster_id;
    size_t call_high_water;
    store_t **stores;
    size_t n_stores;
    u2map_t regions;   /* (region_id, 0) -> rsubs_t */
    u2map_t stalls;    /* (region_id, 0) -> (void *)(uintptr_t)until_ms */
    uint64_t next_conn_id;
};

/* ===== sim_cdc_out.c ===== */

void *cdc_arena_alloc(arena_t *a, size_t n);
void cdc_arena_free(arena_t *a);

/** @returns the value of (a, b), or NULL. */
void *cdc_map_get(const u2map_t *m, uint64_t a, uint64_t b);
/** Inserts or replaces; @p v must not be NULL. */
void cdc_map_put(u2map_t *m, uint64_t a, uint64_t b, void *v);
void cdc_map_del(u2map_t *m, uint64_t a, uint64_t b);
void cdc_map_free(u2map_t *m);

void cdc_count_error(store_t *st, errkind_t k);
void cdc_count_row(store_t *st, int type);

void cdc_out_free(out_t *o);
/** Appends an item to the connection's queue and marks the store dirty. */
void cdc_conn_push_out(conn_t *c, out_t *o);
/** Adds @p sz to the item's, the connection's and the store's byte counts. */
void cdc_conn_account(conn_t *c, out_t *o, size_t sz);
/** Queues a row of subscription @p s (its own slot in the newest item). */
void cdc_sub_queue_row(sub_t *s, const rowspec_t *r);
/** Queues a row under an arbitrary request_id (injection), in its own slot. */
void cdc_conn_queue_row_as(conn_t *c, uint64_t region_id, uint64_t request_id,
                           const rowspec_t *r);
/** Queues one Event, packed now (errors, deprecated resolved ts). */
void cdc_conn_queue_event(conn_t *c, const Cdcpb__Event *ev);
void cdc_conn_queue_error(conn_t *c, uint64_t region_id, uint64_t request_id,
                          Cdcpb__Error *err, errkind_t kind);
/** Queues one whole message (copied). */
void cdc_conn_queue_msg(conn_t *c, const uint8_t *data, size_t len);
/** Throws away everything queued for @p c. */
void cdc_conn_drop_outs(conn_t *c);

/**
 * Server thread only. With @p tick: a tick's work first (scan output,
 * resolved-ts round when due). Then detaches the connections' queues under
 * the model lock, packs and sends them without it, applies pending stream
 * ends, and records the call queue sizes.
 */
void cdc_store_flush(store_t *st, bool tick);

/* ===== sim_cdc.c (model lock held) ===== */

/** Releases incremental-scan output, rows_per_tick rows per tick. */
void cdc_store_scan_progress(store_t *st);
/** One resolved-ts round of the store. */
void cdc_store_resolved_round(store_t *st, int64_t now);

#endif
