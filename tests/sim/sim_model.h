/*
 * sim_model.h: the one shared MVCC model of tikv-sim.
 *
 * Everything the simulated PD and TiKV stores answer comes from this model:
 * the keyspace with its committed versions and locks, the regions that split
 * it (encoded-key boundaries, epochs, three peers and a leader), the stores,
 * the TSO and the GC safepoint. All state sits behind one mutex; every
 * mutation is applied under it and reported, still under it, to the
 * observer (the CDC service), so the order observers see is the apply order.
 *
 * Keys handed in and out are RAW keys (what TiKV puts in Event.Row.key).
 * Region boundaries are ENCODED keys (memcomparable, as PD reports them);
 * sim_key_encode() converts. Encoding preserves order, so a raw key k lies in
 * region r iff r.start <= enc(k) < r.end (empty end = +inf).
 *
 * Thread: any. Functions that take the lock say so; functions named
 * *_locked expect the caller to hold it (sim_model_lock()).
 */
#ifndef TKC_SIM_MODEL_H
#define TKC_SIM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct sim_model_s sim_model_t;

/* ===== keys ===== */

/** A byte string owned by whoever holds the struct (see each function). */
typedef struct {
    uint8_t *data;
    size_t len;
} sim_bytes_t;

/** Memcomparable encoding (TiDB EncodeBytes). @returns malloc'd bytes. */
sim_bytes_t sim_key_encode(const uint8_t *raw, size_t len);
/** Decoding; @returns 0, or -1 if @p enc is not a valid encoding. */
int sim_key_decode(const uint8_t *enc, size_t len, sim_bytes_t *raw_out);
/** TiDB record key t{table}_r{handle} (raw). @returns malloc'd bytes. */
sim_bytes_t sim_key_record(int64_t table_id, int64_t handle);
/** memcmp order with the shorter prefix first. */
int sim_bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
void sim_bytes_free(sim_bytes_t *b);

/* ===== model ===== */

typedef struct {
    uint64_t cluster_id;
    int stores;              /* store ids are 1..stores */
    int regions;             /* initial region count, 1..100000 */
    uint64_t seed;
    int64_t table_id;        /* record keys t{table}_r{1..key_count} */
    int64_t key_count;       /* size of the key set the workload draws from */
    bool raw_keys;           /* keys are plain "k%08d" instead of record keys */
    const char *store_version; /* semver every store reports, default "8.5.0" */
    FILE *truth;             /* ground truth, one JSON line per commit; may be NULL */
} sim_model_config_t;

sim_model_t *sim_model_new(const sim_model_config_t *cfg);
void sim_model_destroy(sim_model_t *m);
void sim_model_lock(sim_model_t *m);
void sim_model_unlock(sim_model_t *m);
uint64_t sim_model_cluster_id(const sim_model_t *m);

/* added by MODEL helper: the workload and tests need the key set by index
 * without duplicating the key format (record key or "k%08d"). */
#define SIM_KEY_MAX 32
/** Size of the key set (cfg.key_count). No lock needed. */
int64_t sim_model_key_count(const sim_model_t *m);
/** Writes raw key number @p i (1..key_count) of the key set to @p out; @returns its length. */
size_t sim_model_key_raw(const sim_model_t *m, int64_t i, uint8_t out[SIM_KEY_MAX]);

/* added by MODEL helper: counters for logs, tests and the control endpoint. */
typedef struct {
    uint64_t keys;          /* key records (pre-created + inserted) */
    uint64_t versions;      /* committed versions held */
    uint64_t locks;         /* locks held */
    uint64_t value_bytes;   /* bytes of values in versions and locks */
    uint64_t txns_tracked;  /* txn status records kept */
    uint64_t regions;
    uint64_t commits;       /* keys committed (2PC, 1PC, resolved) = truth lines */
} sim_model_stats_t;
void sim_model_stats(sim_model_t *m, sim_model_stats_t *out);

/** A fresh TSO: physical = wall-clock ms, strictly increasing. Takes the lock. */
uint64_t sim_model_tso(sim_model_t *m);
uint64_t sim_model_tso_locked(sim_model_t *m);
/** @p count timestamps in one go; @returns the LARGEST (as PD does). */
uint64_t sim_model_tso_batch_locked(sim_model_t *m, uint32_t count);

/* ===== stores ===== */

typedef enum { SIM_STORE_UP = 0, SIM_STORE_DOWN = 1, SIM_STORE_TOMBSTONE = 2 } sim_store_state_t;

typedef struct {
    uint64_t id;
    char addr[64];       /* "127.0.0.1:port", filled in once the server is bound */
    char version[32];
    sim_store_state_t state;
} sim_store_t;

int sim_model_store_count(const sim_model_t *m);
/** @returns the store with index 0..count-1 (pointer into the model; read under lock). */
sim_store_t *sim_model_store_at_locked(sim_model_t *m, int idx);
sim_store_t *sim_model_store_by_id_locked(sim_model_t *m, uint64_t store_id);

/* ===== regions ===== */

typedef struct {
    uint64_t id;
    uint64_t store_id;
} sim_peer_t;

#define SIM_PEERS 3

typedef struct {
    uint64_t id;
    sim_bytes_t start;   /* encoded; empty = -inf */
    sim_bytes_t end;     /* encoded; empty = +inf */
    uint64_t conf_ver;
    uint64_t version;
    sim_peer_t peers[SIM_PEERS];
    int leader;          /* index into peers */
} sim_region_t;

/** Regions in key order. Pointers stay valid until the next split/merge. */
size_t sim_model_region_count_locked(const sim_model_t *m);
sim_region_t *sim_model_region_at_locked(sim_model_t *m, size_t idx);
sim_region_t *sim_model_region_by_id_locked(sim_model_t *m, uint64_t region_id);
/** The region containing encoded key @p ekey. */
sim_region_t *sim_model_region_by_key_locked(sim_model_t *m, const uint8_t *ekey, size_t len);
/** Index of the first region whose end is > @p ekey (for ScanRegions). */
size_t sim_model_region_lower_bound_locked(sim_model_t *m, const uint8_t *ekey, size_t len);
static inline uint64_t sim_region_leader_store(const sim_region_t *r)
{
    return r->peers[r->leader].store_id;
}

/* ===== MVCC ===== */

typedef enum { SIM_OP_PUT = 1, SIM_OP_DELETE = 2 } sim_op_t;

typedef struct {
    uint64_t start_ts;
    uint64_t commit_ts;
    sim_op_t op;
    sim_bytes_t value;   /* empty for deletes */
} sim_version_t;

typedef struct {
    uint64_t start_ts;
    sim_op_t op;
    sim_bytes_t value;
    sim_bytes_t primary; /* raw primary key of the transaction */
    uint64_t ttl_ms;
} sim_lock_t;

/** One mutation of a transaction: raw key, op, value (borrowed). */
typedef struct {
    const uint8_t *key;
    size_t key_len;
    sim_op_t op;
    const uint8_t *value;
    size_t value_len;
} sim_mutation_t;

/**
 * Prewrite: takes the lock, puts a lock on every key (start_ts must come from
 * sim_model_tso) and reports a PREWRITE per key to the observer. Fails (-1)
 * without change if any key is already locked by another transaction.
 */
int sim_model_prewrite(sim_model_t *m, uint64_t start_ts, const sim_mutation_t *muts,
                       size_t n, const uint8_t *primary, size_t primary_len);

/* added by MODEL helper: the lock TTL (long transactions must outlive a
 * resolver's CheckTxnStatus, crashed ones must expire) and the reason of a
 * failure (the workload waits on its own locks but gives up on foreign ones). */
#define SIM_LOCK_TTL_DEFAULT_MS 3000
typedef enum {
    SIM_PREWRITE_OK = 0,
    SIM_PREWRITE_LOCKED = -1,         /* key locked by another txn: *conflict_ts = its start_ts */
    SIM_PREWRITE_WRITE_CONFLICT = -2, /* key committed at *conflict_ts >= start_ts */
    SIM_PREWRITE_TXN_DONE = -3,       /* start_ts already committed or rolled back */
    SIM_PREWRITE_INVALID = -4,        /* no keys, empty key, duplicate key, no primary */
} sim_prewrite_rc_t;
/**
 * sim_model_prewrite() with a lock TTL; on failure @p bad_index_out (may be
 * NULL) names the first offending mutation and @p conflict_ts_out (may be
 * NULL) the conflicting ts. Re-prewriting a key already locked by the same
 * start_ts is accepted and changes nothing (as TiKV does).
 */
sim_prewrite_rc_t sim_model_prewrite_ex(sim_model_t *m, uint64_t start_ts,
                                        const sim_mutation_t *muts, size_t n,
                                        const uint8_t *primary, size_t primary_len,
                                        uint64_t ttl_ms, size_t *bad_index_out,
                                        uint64_t *conflict_ts_out);
/**
 * Commit: allocates commit_ts from the TSO under the lock (so it is above
 * every resolved ts handed out before), turns the locks of start_ts on @p keys
 * into versions, reports a COMMIT per key, appends the truth lines.
 * @returns commit_ts, or 0 if a lock was missing (rolled back / resolved).
 */
uint64_t sim_model_commit(sim_model_t *m, uint64_t start_ts, const sim_bytes_t *keys, size_t n);
/** Rollback: removes the locks of start_ts, reports ROLLBACK per key. */
void sim_model_rollback(sim_model_t *m, uint64_t start_ts, const sim_bytes_t *keys, size_t n);
/** One-phase commit: start_ts and commit_ts allocated inside; COMMITTED per key. */
uint64_t sim_model_commit_1pc(sim_model_t *m, const sim_mutation_t *muts, size_t n);

/**
 * Visits, in ascending raw-key order, every key in the ENCODED range
 * [start, end) (empty end = +inf): its lock (NULL if none) and its versions
 * newest first. Must be called with the lock held. The callback must not
 * mutate the model.
 */
typedef void (*sim_scan_cb)(void *opaque, const sim_bytes_t *raw_key, const sim_lock_t *lock,
                            const sim_version_t *versions_newest_first, size_t n_versions);
void sim_model_scan_locked(sim_model_t *m, const sim_bytes_t *start, const sim_bytes_t *end,
                           sim_scan_cb cb, void *opaque);
/**
 * The newest committed value of @p key strictly before @p ts (the "old value"):
 * fills @p out (borrowed from the model) and @returns true, or false if none
 * or the newest version is a delete.
 */
bool sim_model_old_value_locked(sim_model_t *m, const uint8_t *key, size_t len, uint64_t ts,
                                sim_bytes_t *out);
/** Smallest start_ts of locks in the encoded range, or UINT64_MAX if none. */
uint64_t sim_model_min_lock_ts_locked(sim_model_t *m, const sim_bytes_t *start,
                                      const sim_bytes_t *end);
/** The lock on @p key, or NULL. */
const sim_lock_t *sim_model_lock_get_locked(sim_model_t *m, const uint8_t *key, size_t len);
/** Status of transaction start_ts: committed (its commit_ts), rolled back, or still locked. */
typedef enum { SIM_TXN_LOCKED, SIM_TXN_COMMITTED, SIM_TXN_ROLLED_BACK, SIM_TXN_UNKNOWN } sim_txn_state_t;
sim_txn_state_t sim_model_txn_status_locked(sim_model_t *m, uint64_t start_ts,
                                            uint64_t *commit_ts_out);
/* added by MODEL helper: the primary key of a known txn (borrowed), for
 * CheckTxnStatus / ScanLock answers. @returns false if the txn is unknown. */
bool sim_model_txn_primary_locked(sim_model_t *m, uint64_t start_ts, sim_bytes_t *out);

/*
 * added by MODEL helper: lock resolution (what TiKV's ResolveLock does).
 * commit_ts 0 rolls back every lock of start_ts (ROLLBACK rows); otherwise
 * commits them at commit_ts (COMMIT rows + truth lines), which must be above
 * start_ts and equal the txn's commit_ts if it already committed (primary
 * first). Takes the lock. @returns the number of locks resolved, or -1 if
 * the request contradicts the txn's state (rolling back a committed txn,
 * committing a rolled-back one, a different commit_ts).
 */
int sim_model_resolve_lock(sim_model_t *m, uint64_t start_ts, uint64_t commit_ts);
/** The same restricted to locks whose ENCODED key is in [start, end) (NULL or
 *  empty start = -inf, NULL or empty end = +inf): TiKV resolves per region. */
int sim_model_resolve_lock_range(sim_model_t *m, uint64_t start_ts, uint64_t commit_ts,
                                 const sim_bytes_t *start, const sim_bytes_t *end);

/* ===== topology changes (each takes the lock and notifies the observer) ===== */

/** Splits region @p region_id at ENCODED key @p ekey; the left part keeps the id. */
int sim_model_split(sim_model_t *m, uint64_t region_id, const uint8_t *ekey, size_t len,
                    uint64_t *new_region_id_out);
/** Merges @p source into its neighbour @p target (adjacent); source disappears. */
int sim_model_merge(sim_model_t *m, uint64_t source_id, uint64_t target_id);
/** Moves the leader of a region to the peer on @p store_id. */
int sim_model_transfer_leader(sim_model_t *m, uint64_t region_id, uint64_t store_id);
/** Moves every leader on @p store_id to other UP stores (failover). */
void sim_model_evacuate_leaders(sim_model_t *m, uint64_t store_id);
void sim_model_set_store_state(sim_model_t *m, uint64_t store_id, sim_store_state_t st);

/* ===== GC ===== */

uint64_t sim_model_gc_safepoint(sim_model_t *m);
void sim_model_set_gc_safepoint(sim_model_t *m, uint64_t ts);
/** Service safepoints (PD UpdateServiceGCSafePoint): @returns the minimum over services. */
uint64_t sim_model_update_service_safepoint(sim_model_t *m, const char *service_id,
                                            int64_t ttl_s, uint64_t safe_point);
/* added by MODEL helper: what TiDB's GC worker does: advance the GC safepoint
 * to min(target, every live service safepoint), never backwards. @returns it. */
uint64_t sim_model_gc_advance(sim_model_t *m, uint64_t target);

/* ===== observer ===== */

typedef enum {
    SIM_EV_PREWRITE = 1,
    SIM_EV_COMMIT = 2,
    SIM_EV_ROLLBACK = 3,
    SIM_EV_COMMITTED = 4, /* 1PC */
    SIM_EV_SPLIT = 10,    /* region = left (kept id), region2 = right (new id) */
    SIM_EV_MERGE = 11,    /* region = target after merge, region2_id = source (gone) */
    SIM_EV_LEADER = 12,   /* region's leader changed; old_store_id set */
} sim_event_kind_t;

typedef struct {
    sim_event_kind_t kind;
    /* row events */
    uint64_t region_id;
    const sim_bytes_t *key;     /* raw */
    sim_op_t op;
    const sim_bytes_t *value;   /* the row's value; for COMMIT the CDC layer sends it
                                  only when short (<= 255 B), as TiKV does */
    const sim_bytes_t *old_value;
    uint64_t start_ts;
    uint64_t commit_ts;
    /* topology events */
    const sim_region_t *region;
    const sim_region_t *region2;
    uint64_t region2_id;
    uint64_t old_store_id;
} sim_event_t;

/** Called under the model lock for every change, in apply order. */
typedef void (*sim_observer_cb)(void *opaque, const sim_event_t *ev);
void sim_model_set_observer(sim_model_t *m, sim_observer_cb cb, void *opaque);

/**
 * Records that resolved ts @p ts was sent for @p region_id (the CDC service
 * calls it); truth lines of later commits in that region carry the highest
 * value, so a checker can assert commit_ts > every resolved ts sent before.
 */
void sim_model_note_resolved_locked(sim_model_t *m, uint64_t region_id, uint64_t ts);

/* added by MODEL helper: writes buffered truth lines to the file now (lines
 * are also flushed by a background thread at least every 100 ms). Any thread;
 * the simulator calls it at exit. */
void sim_model_truth_flush(sim_model_t *m);

#endif
