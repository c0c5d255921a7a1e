/*
 * lock_resolver.h: resolves the transaction locks that pin a region's
 * resolved ts (tikv-cdc-protocol.md §5.5).
 *
 * TiKV's resolved ts for a region never passes the start ts of a lock in it.
 * A lock left by a crashed client (or a very long transaction) therefore
 * holds the region, and with it the whole feed, at one ts. For one region
 * this module does what TiCDC's lock resolver does through client-go:
 *   1. locate the region by id (PD GetRegionByID) and its leader store;
 *   2. KvScanLock over the region, page by page, for locks with
 *      start_ts <= max_version (a ts in the past, so young transactions are
 *      left alone);
 *   3. per transaction, KvCheckTxnStatus on its primary key with PD's
 *      current ts: a lock whose TTL ran out is rolled back by TiKV, a
 *      committed primary gives the commit ts, a live lock is left alone;
 *   4. KvResolveLock in the region: commit (commit ts) or roll back every
 *      lock of that transaction there.
 * Region errors make it reload the region from PD and retry a few times.
 *
 * Every call is blocking (each RPC bounded by the configured timeout).
 * Thread: one owner thread (the feed's resolver thread); the PD client it
 * borrows is thread-safe.
 */
#ifndef TKC_LOCK_RESOLVER_H
#define TKC_LOCK_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

#include "pd_client.h"
#include "rpc.h"
#include "util/err.h"

typedef struct tkc_lock_resolver_s tkc_lock_resolver_t;

typedef struct tkc_lock_resolver_config_s {
    tkc_rpc_tls_t tls;                 /* to TiKV; borrowed for tkc_lock_resolver_new() */
    tkc_rpc_channel_opts_t chan_opts;  /* zero fields: rpc.h defaults */
    int timeout_ms;                    /* [5000] per RPC */
    uint32_t scan_limit;               /* [1024] locks per KvScanLock page */
} tkc_lock_resolver_config_t;

/** What one resolution did. */
typedef struct tkc_lock_resolver_result_s {
    uint64_t pages;           /* KvScanLock calls */
    uint64_t locks_scanned;
    uint64_t txns_checked;    /* KvCheckTxnStatus calls */
    uint64_t txns_alive;      /* primary still locked within its TTL: left alone */
    uint64_t txns_committed;  /* resolved by committing */
    uint64_t txns_rolled_back;/* resolved by rolling back */
    uint64_t region_errors;
} tkc_lock_resolver_result_t;

/**
 * @brief Creates a resolver that uses @p pd (borrowed, must outlive it).
 * @param cfg may be NULL (defaults); copied.
 * @locality owner thread
 */
tkc_lock_resolver_t *tkc_lock_resolver_new(tkc_pd_client_t *pd,
                                           const tkc_lock_resolver_config_t *cfg);
void tkc_lock_resolver_destroy(tkc_lock_resolver_t *lr);

/**
 * @brief Resolves the locks of region @p region_id with start_ts <=
 *        @p max_version (blocking).
 *
 * @param res filled in (may be NULL).
 * @returns TKC_ERR_OK (also when the region no longer exists or holds no
 *          lock), TKC_ERR_TRANSPORT / TKC_ERR_TIMED_OUT when PD or the store
 *          could not be reached, TKC_ERR_REGION_STALE when region errors
 *          persisted, TKC_ERR_CORRUPT for an unexpected KeyError; the reason
 *          is in @p errstr.
 * @locality owner thread
 */
tkc_err_t tkc_lock_resolver_resolve_region(tkc_lock_resolver_t *lr, uint64_t region_id,
                                           uint64_t max_version, tkc_lock_resolver_result_t *res,
                                           char *errstr, size_t errstr_size);

#endif
