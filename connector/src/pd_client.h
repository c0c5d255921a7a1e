/*
 * pd_client.h: the connector's client of PD (the TiKV placement driver).
 *
 * Discovers the PD leader and the cluster id with GetMembers, follows leader
 * changes (any call that fails with UNAVAILABLE or "not leader" triggers a
 * rediscovery over every configured endpoint, then one retry), keeps one TSO
 * stream, caches stores (address and version; a store is reloaded when the
 * caller reports a connection error to it), loads the regions of a key span
 * with ScanRegions page by page, and keeps the feed's service GC safepoint.
 *
 * Every call is blocking with the configured timeout and thread-safe (one
 * mutex guards the channel; the TSO stream has its own).
 */
#ifndef TKC_PD_CLIENT_H
#define TKC_PD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"
#include "util/err.h"

typedef struct tkc_pd_client_s tkc_pd_client_t;

typedef struct {
    const char *const *endpoints; /* "host:port" or "http://host:port" */
    size_t n_endpoints;
    tkc_rpc_tls_t tls;
    int timeout_ms;       /* per call, default 5000 */
    const char *caller_id; /* RequestHeader.caller_id, default "tikv-kafka-cdc" */
} tkc_pd_config_t;

/** A region as PD reports it; keys are ENCODED (memcomparable). */
typedef struct {
    uint64_t id;
    uint8_t *start_key; /* owned; empty (len 0) = -inf */
    size_t start_len;
    uint8_t *end_key;   /* owned; empty (len 0) = +inf */
    size_t end_len;
    uint64_t conf_ver;
    uint64_t version;
    uint64_t leader_store_id; /* 0 = PD knows no leader */
    uint64_t leader_peer_id;
} tkc_pd_region_t;

void tkc_pd_region_free(tkc_pd_region_t *r);
void tkc_pd_regions_free(tkc_pd_region_t *rs, size_t n);

typedef struct {
    uint64_t id;
    char address[128];
    char version[64];
    int state; /* metapb.StoreState: 0 Up, 1 Offline, 2 Tombstone */
    bool tiflash;
} tkc_pd_store_t;

/**
 * Connects: GetMembers on each endpoint in turn until one answers.
 * @returns the client, or NULL with the reason in @p errstr.
 */
tkc_pd_client_t *tkc_pd_client_new(const tkc_pd_config_t *cfg, char *errstr, size_t errstr_size);
void tkc_pd_client_destroy(tkc_pd_client_t *pd);

uint64_t tkc_pd_client_cluster_id(const tkc_pd_client_t *pd);
/** The current leader's client URL target ("host:port"), copied into @p out. */
void tkc_pd_client_leader(tkc_pd_client_t *pd, char *out, size_t out_size);

/** One fresh timestamp from the TSO stream (reopened after failures). */
tkc_err_t tkc_pd_client_get_ts(tkc_pd_client_t *pd, uint64_t *ts);

/**
 * Regions covering encoded [start, end) (end_len 0 = +inf), in key order,
 * at most @p limit (0 = PD's default page). *@p out is owned by the caller
 * (tkc_pd_regions_free). Regions without a leader are dropped, as client-go
 * does, so the caller sees a hole and retries.
 */
tkc_err_t tkc_pd_client_scan_regions(tkc_pd_client_t *pd, const uint8_t *start, size_t start_len,
                                     const uint8_t *end, size_t end_len, int limit,
                                     tkc_pd_region_t **out, size_t *n_out);
/** GetRegionByID; TKC_ERR_NOT_FOUND when PD answers without a region. */
tkc_err_t tkc_pd_client_get_region_by_id(tkc_pd_client_t *pd, uint64_t region_id,
                                         tkc_pd_region_t *out);

/**
 * The store @p store_id from the cache, loading it with GetStore when
 * missing or when @p reload is set (after a connection error to it).
 * TKC_ERR_NOT_FOUND for an unknown or tombstone store; TKC_ERR_INCOMPATIBLE
 * when its version is outside the supported range (the message in errstr).
 */
tkc_err_t tkc_pd_client_get_store(tkc_pd_client_t *pd, uint64_t store_id, bool reload,
                                  tkc_pd_store_t *out, char *errstr, size_t errstr_size);
/** All stores that are not tombstones (cache refreshed). *out: tkc_free. */
tkc_err_t tkc_pd_client_get_all_stores(tkc_pd_client_t *pd, tkc_pd_store_t **out, size_t *n_out);

/**
 * UpdateServiceGCSafePoint(service_id, ttl_s, safe_point): keeps TiKV's GC
 * from removing versions newer than @p safe_point. *@p min_out receives the
 * cluster's minimum service safepoint: when it is above @p safe_point the
 * history we need may already be gone.
 */
tkc_err_t tkc_pd_client_update_service_safepoint(tkc_pd_client_t *pd, const char *service_id,
                                                 int64_t ttl_s, uint64_t safe_point,
                                                 uint64_t *min_out);

/** Is @p version (semver, optional leading v) a TiKV we can read from? */
bool tkc_pd_store_version_supported(const char *version);

/** Counters for metrics. */
typedef struct {
    uint64_t calls;
    uint64_t errors;
    uint64_t leader_changes;
    uint64_t tso_stream_opens;
} tkc_pd_client_stats_t;
void tkc_pd_client_stats(tkc_pd_client_t *pd, tkc_pd_client_stats_t *out);

#endif
