/*
 * sim_control.h: tikv-sim's control endpoint and fault scheduler.
 *
 * HTTP + JSON on 127.0.0.1 (libmicrohttpd, one thread per connection):
 *   POST /fault     body {"op": "<name>", ...}  -> 200 {"ok": true, ...result}
 *                                               or 400 {"ok": false, "error": "..."}
 *   GET  /stats     counters per store (streams, registrations, errors by
 *                   kind, rows, resolved ts), PD, model, workload, control
 *   GET  /regions   [?start=IDX&limit=N] the region list in key order
 *   GET  /stores    store ids, addresses and states
 *   GET  /healthz   {"ok": true}
 * The same ops can be scripted: a scenario file holds one JSON object per
 * line, {"at_ms": N, "op": ..., ...}, executed N ms after
 * sim_control_run_scenario(). tests/sim/README.md lists every op.
 *
 * Ops run one at a time (a mutex), on the HTTP thread that received them or
 * on the scheduler thread (scenario lines and the delayed steps of
 * restart_store / kill_store: leader election, coming back up). huge_txn runs
 * outside that mutex, so a long transaction never blocks other faults.
 *
 * Thread: any, except sim_control_destroy (once, from the owner).
 */
#ifndef TKC_SIM_CONTROL_H
#define TKC_SIM_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim_cdc.h"
#include "sim_lockrpc.h"
#include "sim_model.h"
#include "sim_pd.h"
#include "sim_server.h"
#include "sim_workload.h"

/** Everything the control endpoint drives; borrowed, must outlive it. */
typedef struct {
    sim_model_t *model;
    sim_workload_t *workload;       /* may be NULL: workload ops then fail */
    sim_cdc_t *cdc;                 /* may be NULL: CDC ops then fail */
    sim_pd_t *pd;                   /* may be NULL: PD ops then fail */
    size_t n_stores;
    const uint64_t *store_ids;      /* [n_stores] */
    sim_server_t *const *store_servers; /* [n_stores], same order */
    sim_lockrpc_t *const *lockrpcs; /* [n_stores] or NULL (stats only) */
} sim_cluster_t;

typedef struct sim_control_s sim_control_t;

/** Copies @p cl (the arrays too) and starts the scheduler thread. */
sim_control_t *sim_control_new(const sim_cluster_t *cl);
/**
 * Starts the HTTP endpoint on 127.0.0.1:@p port (0 = a free port).
 * @returns the port, or -1.
 */
int sim_control_start_http(sim_control_t *c, int port);
int sim_control_port(const sim_control_t *c);

/**
 * Executes one op now (the JSON object of POST /fault).
 * @returns 0 and *result = {"ok": true, ...}, or -1 and *result =
 * {"ok": false, "error": "..."}. The caller owns *result.
 */
int sim_control_exec(sim_control_t *c, json_t *op, json_t **result);
/** Same, from JSON text. */
int sim_control_exec_str(sim_control_t *c, const char *json_text, json_t **result);

/**
 * Reads a scenario file (JSON lines; blank lines and lines starting with '#'
 * are skipped) and schedules every op at its at_ms from now.
 * @returns the number of ops scheduled, or -1 with a message in @p err.
 */
int sim_control_run_scenario(sim_control_t *c, const char *path, char *err, size_t errlen);

/** The /stats document (caller owns it). */
json_t *sim_control_stats(sim_control_t *c);

/**
 * Stops HTTP and the scheduler (pending scheduled steps are dropped; a store
 * left down by a restart stays down). Does not touch the cluster otherwise.
 */
void sim_control_destroy(sim_control_t *c);

#endif
