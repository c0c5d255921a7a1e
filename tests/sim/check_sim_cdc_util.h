/*
 * check_sim_cdc_util.h: fixtures shared by the sim.cdc_* check suites.
 *
 * cdc_env_t is a real in-process simulator: the model, the CDC service and
 * one sim_server per store on 127.0.0.1 (ephemeral ports). feed_t wraps a
 * sim_testclient stream and flattens every received ChangeDataEvent into an
 * ordered list of items (rows, errors, resolved ts) that tests search.
 * Everything here runs in the forked check child (gRPC is initialised in
 * cdc_env_init).
 */
#ifndef TKC_CHECK_SIM_CDC_UTIL_H
#define TKC_CHECK_SIM_CDC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cdcpb.pb-c.h"
#include "sim_cdc.h"
#include "sim_model.h"
#include "sim_server.h"
#include "sim_testclient.h"

#define CDC_ENV_MAX_STORES 5

typedef struct {
    int stores;          /* default 1 */
    int regions;         /* default 1 */
    int64_t key_count;   /* default 100 */
    bool truth;          /* write ground truth to a temporary file */
    sim_cdc_config_t cdc;/* zero fields take the defaults; see cdc_env_opts_init */
} cdc_env_opts_t;

typedef struct {
    sim_model_t *m;
    sim_cdc_t *cdc;
    int nstores;
    sim_server_t *srv[CDC_ENV_MAX_STORES];
    char addr[CDC_ENV_MAX_STORES][64];
    uint64_t cluster_id;
    FILE *truth;
} cdc_env_t;

/** Defaults plus a 50 ms resolved interval (tests should not wait 1 s). */
void cdc_env_opts_init(cdc_env_opts_t *o);
void cdc_env_init(cdc_env_t *e, const cdc_env_opts_t *o);
void cdc_env_fini(cdc_env_t *e);

/** A copy of region @p idx (key order) or of region @p id. */
typedef struct {
    uint64_t id, conf_ver, version, leader_store;
    uint64_t peer_stores[SIM_PEERS];
    uint8_t start[64], end[64]; /* encoded */
    size_t start_len, end_len;
} cdc_region_t;
void cdc_region_at(cdc_env_t *e, size_t idx, cdc_region_t *out);
bool cdc_region_by_id(cdc_env_t *e, uint64_t id, cdc_region_t *out);

/** Raw key number @p i of the key set. */
size_t cdc_key(cdc_env_t *e, int64_t i, uint8_t out[SIM_KEY_MAX]);

/* ===== model writes (test shortcuts) ===== */

/** 1PC put of one key. @returns commit_ts. */
uint64_t cdc_put_1pc(cdc_env_t *e, int64_t key, const char *value);
/** 1PC delete of one key. */
uint64_t cdc_del_1pc(cdc_env_t *e, int64_t key);
/** 2PC prewrite of one key (put, or delete when value is NULL); @returns start_ts. */
uint64_t cdc_prewrite(cdc_env_t *e, int64_t key, const char *value);
uint64_t cdc_prewrite_bytes(cdc_env_t *e, int64_t key, const uint8_t *v, size_t len);
uint64_t cdc_commit(cdc_env_t *e, int64_t key, uint64_t start_ts);
void cdc_rollback(cdc_env_t *e, int64_t key, uint64_t start_ts);

/* ===== a received feed ===== */

typedef enum { FI_ROW = 1, FI_ERROR, FI_RESOLVED, FI_REGION_RTS } feed_kind_t;

typedef struct {
    feed_kind_t kind;
    uint64_t region_id, request_id; /* FI_RESOLVED: request_id of the batch */
    const Cdcpb__Event__Row *row;
    const Cdcpb__Error *err;
    const Cdcpb__ResolvedTs *rts;
    uint64_t ts;                    /* FI_REGION_RTS */
    size_t msg;                     /* index of the message it came in */
    size_t event;                   /* index of the Event in that message */
} feed_item_t;

typedef struct {
    sim_tc_stream_t *s;
    Cdcpb__ChangeDataEvent **msgs;
    size_t *msg_len;
    size_t n_msgs, cap_msgs;
    feed_item_t *it;
    size_t n, cap;
} feed_t;

void feed_init(feed_t *f, sim_tc_stream_t *s);
/** Frees the messages (not the stream). */
void feed_fini(feed_t *f);
/** Receives one message within @p timeout_ms: 1, 0 on timeout, -1 ended. */
int feed_pump(feed_t *f, int timeout_ms);
typedef bool (*feed_pred_t)(const feed_t *f, const void *arg);
/** Pumps until @p pred holds (true) or @p timeout_ms passed (false). */
bool feed_wait(feed_t *f, int timeout_ms, feed_pred_t pred, const void *arg);
/** Pumps for @p ms regardless. */
void feed_drain(feed_t *f, int ms);

typedef struct {
    uint64_t region_id, request_id;
} feed_sub_t;
/** Index of the INITIALIZED row of (region, request), or -1. */
long feed_find_init(const feed_t *f, uint64_t region_id, uint64_t request_id);
/** Index of the first error event for (region, request), or -1. */
long feed_find_error(const feed_t *f, uint64_t region_id, uint64_t request_id);
/** Predicates for feed_wait (arg = const feed_sub_t *). */
bool feed_pred_init(const feed_t *f, const void *arg);
bool feed_pred_error(const feed_t *f, const void *arg);
/** arg = const size_t *: at least that many resolved-ts items (either kind). */
bool feed_pred_n_resolved(const feed_t *f, const void *arg);
/** Rows of (region, request) in arrival order, INITIALIZED excluded. */
size_t feed_rows(const feed_t *f, uint64_t region_id, uint64_t request_id,
                 const Cdcpb__Event__Row **out, size_t max);
/** Prints every item to stderr (debugging a failed wait). */
void feed_dump(const feed_t *f, const char *why);
/** Whether @p region_id is named by resolved item @p i. */
bool feed_item_names_region(const feed_item_t *it, uint64_t region_id);

/* ===== registration shortcut ===== */

/** Registers region @p r (whole range) with @p checkpoint_ts. */
int cdc_register(cdc_env_t *e, sim_tc_stream_t *s, const cdc_region_t *r, uint64_t checkpoint_ts,
                 uint64_t request_id);
/** Registers [start, end) given as RAW keys (NULL = region bound). */
int cdc_register_range(cdc_env_t *e, sim_tc_stream_t *s, const cdc_region_t *r,
                       uint64_t checkpoint_ts, uint64_t request_id, const uint8_t *raw_start,
                       size_t raw_start_len, const uint8_t *raw_end, size_t raw_end_len);

/** Parses the truth file: calls @p cb for each line; @returns lines read. */
typedef void (*truth_cb_t)(void *opaque, uint64_t region_id, uint64_t commit_ts,
                           uint64_t region_resolved_ts);
size_t cdc_truth_scan(cdc_env_t *e, truth_cb_t cb, void *opaque);

#endif
