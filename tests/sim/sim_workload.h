/*
 * sim_workload.h: the deterministic transaction generator of tikv-sim.
 *
 * One thread drives sim_model with transactions over the model's key set
 * (keys 1..key_count): 2PC (prewrite, a short delay, commit), some rolled
 * back, some committed in one phase (COMMITTED rows), some deleting, some
 * "long" (holding their locks for long_txn_ms), several in flight at once
 * (locks held while others commit), at a rate in rows/s.
 *
 * Determinism: the transactions (kind, keys, ops, values) are drawn in order
 * from a PRNG seeded with @p seed, so the same seed and settings give the
 * same sequence of transactions. With rate 0, long_txn_pct 0 and nobody else
 * writing, the commit order (the truth file without its timestamps) is the
 * same from run to run too: transactions advance in rounds, not by the clock.
 *
 * Conflicts: a transaction whose keys are locked by another of the
 * generator's short transactions waits for them (a round); one that meets a
 * lock of a long transaction or a foreign lock (a crashed client's, a huge
 * transaction's, a test's) gives up (counted in conflicts) and the next one
 * is drawn, like a client giving up after its backoff. A commit that finds
 * its locks gone (a resolver rolled them back after the TTL) is counted in
 * locks_lost. Keys reserved by a running sim_workload_huge_txn() are
 * avoided the same way.
 *
 * On-demand actions from other threads: sim_workload_huge_txn() and
 * sim_workload_leave_lock(); they run on the caller's thread and use their
 * own PRNG, so they do not disturb the generator's sequence.
 *
 * Thread: every function may be called from any thread; a workload must not
 * outlive its model.
 */
#ifndef TKC_SIM_WORKLOAD_H
#define TKC_SIM_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "sim_model.h"

typedef struct sim_workload_s sim_workload_t;

typedef struct {
    double rate_rows_per_s; /* committed-or-attempted rows per second; 0 = as fast as possible */
    int keys_per_txn_max;   /* keys per txn uniform in 1..max (default 4) */
    int value_min;          /* value size range, bytes (default 16..128) */
    int value_max;
    int rollback_pct;       /* % of txns prewritten then rolled back */
    int onepc_pct;          /* % committed in one phase (COMMITTED rows) */
    int delete_pct;         /* % of mutations that delete */
    int long_txn_pct;       /* % of txns holding their locks long_txn_ms */
    int long_txn_ms;        /* default 2000 */
    int concurrency;        /* ordinary txns in flight at once (default 4); long ones come on top */
    uint64_t max_txns;      /* stop drawing after this many txns (0 = no limit) */
    int crashed_lock_ttl_ms; /* TTL of sim_workload_leave_lock() locks (default 3000) */
} sim_workload_config_t;

typedef struct {
    uint64_t txns_drawn;       /* transactions drawn from the PRNG */
    uint64_t txns_committed;   /* 2PC + 1PC + long, committed */
    uint64_t txns_1pc;
    uint64_t txns_long;
    uint64_t txns_rolled_back; /* rolled back on purpose */
    uint64_t rows_committed;
    uint64_t rows_rolled_back;
    uint64_t conflicts;        /* gave up on a foreign lock or write conflict */
    uint64_t locks_lost;       /* commit found its locks resolved by someone else */
    uint64_t huge_txns;
    uint64_t huge_rows;
    uint64_t locks_left;       /* sim_workload_leave_lock() calls */
    uint64_t in_flight;        /* txns holding locks right now */
} sim_workload_stats_t;

/** Fills @p cfg with the defaults above (all percentages 0, rate 0). */
void sim_workload_config_default(sim_workload_config_t *cfg);

/**
 * @brief Creates a stopped workload on @p model. @p cfg is copied; values out
 *        of range are clamped (percentages to 0..100, sizes to >= 0, ...).
 * @returns NULL if the model's key set is empty.
 */
sim_workload_t *sim_workload_new(sim_model_t *model, const sim_workload_config_t *cfg,
                                 uint64_t seed);
/** Starts the generator thread. @returns 0, or -1 if already started/failed. */
int sim_workload_start(sim_workload_t *w);
/**
 * Stops the thread and rolls back the transactions it still had in flight
 * (ROLLBACK rows), so no lock of the generator survives it. Idempotent.
 */
void sim_workload_stop(sim_workload_t *w);
/** Stops (if needed) and frees. */
void sim_workload_destroy(sim_workload_t *w);

/** No new transactions; those in flight still finish. */
void sim_workload_pause(sim_workload_t *w);
void sim_workload_resume(sim_workload_t *w);
/**
 * Waits until no generator transaction is in flight and none will start
 * (paused, or max_txns drawn, or stopped). @returns 0, or -1 on timeout.
 */
int sim_workload_wait_idle(sim_workload_t *w, int timeout_ms);
/** Changes the rate (rows/s, 0 = unlimited) while running. */
void sim_workload_set_rate(sim_workload_t *w, double rows_per_s);

/**
 * @brief One huge transaction, on the caller's thread: prewrites @p n_keys
 *        keys spread evenly over the key set (so across many regions; capped
 *        at key_count) with @p value_size byte values, in batches, then
 *        commits the primary and the secondaries. Keys that meet a foreign
 *        lock or a newer commit are left out of it.
 * @returns commit_ts, or 0 if it could not commit (e.g. a resolver rolled it
 *          back: its lock TTL is 60 s).
 */
uint64_t sim_workload_huge_txn(sim_workload_t *w, int n_keys, int value_size);

/**
 * @brief A crashed client: prewrites @p n_keys random unlocked keys of the
 *        key set (puts, crashed_lock_ttl_ms TTL, the first key primary) and
 *        never finishes. With @p commit_primary the client died after
 *        committing the primary: the txn is COMMITTED and the secondaries
 *        stay locked until resolved with its commit_ts. Resolved ts of their
 *        regions stays at most start_ts until someone resolves the locks
 *        (sim_model_resolve_lock()).
 * @returns the transaction's start_ts, or 0 if no key could be locked.
 */
uint64_t sim_workload_leave_lock(sim_workload_t *w, int n_keys, bool commit_primary);

void sim_workload_stats(sim_workload_t *w, sim_workload_stats_t *out);

#endif
