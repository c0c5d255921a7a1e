/*
 * sim_lockrpc.h: the lock-resolution RPCs of service tikvpb.Tikv on one
 * simulated store: KvScanLock, KvCheckTxnStatus, KvResolveLock (what a CDC
 * client uses when a region's resolved ts is stuck behind a lock, protocol
 * notes §5.5), answered from the shared model.
 *
 * As on TiKV, keys in these requests are RAW keys; every request names its
 * region in kvrpcpb.Context and is answered with a region_error when this
 * store does not hold the region's leader (not_leader with the leader hint, or
 * region_not_found when it holds no peer at all), when the epoch differs
 * (epoch_not_match with the current region), or when a key lies outside the
 * region (key_not_in_region).
 *
 *  - KvScanLock: locks whose start_ts <= max_version in [start_key, end_key)
 *    clipped to the region, ascending, at most limit (0 = no limit).
 *  - KvCheckTxnStatus on the primary key: a live lock of lock_ts whose TTL
 *    has run out against current_ts (physical ms) is rolled back
 *    (TTLExpireRollback); a live lock within its TTL reports lock_ttl and the
 *    lock; no lock: committed -> commit_version, rolled back -> 0/0,
 *    unknown -> rolled back if rollback_if_not_exist (LockNotExistRollback)
 *    else KeyError.txn_not_found.
 *  - KvResolveLock: commit (commit_version > 0) or roll back every lock of
 *    start_version in the region, or only the listed keys, or every txn of
 *    txn_infos; a request that contradicts the txn's state gets KeyError.abort.
 *
 * Thread: handlers run on the store's server thread.
 */
#ifndef TKC_SIM_LOCKRPC_H
#define TKC_SIM_LOCKRPC_H

#include <stdint.h>

#include <jansson.h>

#include "sim_model.h"
#include "sim_server.h"

typedef struct sim_lockrpc_s sim_lockrpc_t;

/**
 * Registers /tikvpb.Tikv/KvScanLock, /KvCheckTxnStatus and /KvResolveLock on
 * @p srv, the server of store @p store_id (before sim_server_start). @p m and
 * @p srv are borrowed and must outlive the object.
 */
sim_lockrpc_t *sim_lockrpc_new(sim_model_t *m, uint64_t store_id, sim_server_t *srv);
/** Frees it; the server must be stopped first. */
void sim_lockrpc_destroy(sim_lockrpc_t *lr);

/** {"scan_lock": n, "locks_returned": n, "check_txn_status": n, …} */
json_t *sim_lockrpc_stats_json(sim_lockrpc_t *lr);

#endif
