/*
 * feed_harness.h: runs the connector's feed against an in-process tikv-sim
 * (model + PD + stores + CDC + lock RPCs + workload + fault control, all on
 * loopback gRPC) and checks what the feed emits against the simulator's
 * ground truth.
 *
 * A consumer thread plays the pipeline: it pops the feed's output queue,
 * keeps a span frontier (tkc_frontier) fed by the RESOLVED events, and
 * records every row with the frontier at its arrival. fh_check() then
 * verifies, for the table span and commit_ts > the feed's start ts:
 *   - every truth row with commit_ts <= the final resolved ts was emitted
 *     (key, op, value length and CRC-32, start/commit ts), and it arrived
 *     before the frontier first reached its commit_ts ("resolved never
 *     passes a commit still to come");
 *   - nothing was emitted that the truth does not have (nothing invented);
 *   - every row arrived with commit_ts above its span's frontier at that
 *     moment (I2), which together with the above gives per-key commit order
 *     after the pipeline's sort; duplicates are counted (the test decides
 *     whether a re-subscription allows them; they are above the frontier by
 *     the previous check);
 *   - old values equal the previous truth version of the key (when the truth
 *     knows it);
 *   - a region's reported resolved ts never goes back; the frontier is
 *     monotonic by construction and its history is kept.
 *
 * Everything runs in the forked check child: fh_new() calls grpc_init().
 */
#ifndef TKC_FEED_HARNESS_H
#define TKC_FEED_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "feed.h"
#include "sim_cdc.h"
#include "sim_control.h"
#include "sim_model.h"
#include "sim_pd.h"

typedef struct {
    int stores;                 /* [3] */
    int regions;                /* [64] */
    int64_t keys;               /* [10000] */
    int64_t table_id;           /* [100] */
    double rate;                /* [2000] workload rows/s; < 0: start paused */
    int resolved_interval_ms;   /* [200] */
    int scan_rows_per_tick;     /* [8192] */
    bool pre_7_3;
    const char *store_version;  /* ["8.5.0"] */
    uint64_t cluster_id;        /* [7001] */
    int value_min, value_max;   /* [16, 128] */
    int keys_per_txn;           /* [4] */
    int concurrency;            /* [4] */
    int rollback_pct, onepc_pct, delete_pct, long_txn_pct, long_txn_ms;
    int lock_ttl_ms;            /* [3000] */
    size_t queue_bytes;         /* [8 MiB] the feed's output queue */
    int consumer_delay_us;      /* [0] slow pipeline: sleep per popped event */
} fh_opts_t;

void fh_opts_init(fh_opts_t *o);

typedef struct fh_s fh_t;

/** Starts the simulator. Never NULL (asserts). */
fh_t *fh_new(const fh_opts_t *o);
/** Stops everything still running and frees it; then grpc_shutdown. */
void fh_destroy(fh_t *h);

/** Defaults for a feed on the table span, with test-friendly timings. */
void fh_feed_config(fh_t *h, tkc_feed_config_t *cfg);
/** Creates and starts the feed and the consumer. @returns the error of tkc_feed_new. */
tkc_err_t fh_start_feed(fh_t *h, const tkc_feed_config_t *cfg, char *errstr, size_t errstr_size);
/** Stops the feed and the consumer (events still queued are consumed). */
void fh_stop_feed(fh_t *h);
tkc_feed_t *fh_feed(fh_t *h);

/** A control op (tests/sim/README.md), printf-style JSON. @returns 0 or -1. */
int fh_op(fh_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Same, keeping the result object (caller json_decref's it). */
json_t *fh_op_result(fh_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

sim_model_t *fh_model(fh_t *h);
sim_cdc_t *fh_cdc(fh_t *h);
sim_pd_t *fh_pd(fh_t *h);
sim_workload_t *fh_workload(fh_t *h);
const char *fh_pd_addr(fh_t *h);
uint64_t fh_tso(fh_t *h);

/* ===== consumer view ===== */

uint64_t fh_resolved(fh_t *h);
/** wall clock - physical(resolved), ms (huge before the first resolved). */
int64_t fh_lag_ms(fh_t *h);
/** The largest lag seen since the last fh_mark_lag(). */
int64_t fh_max_lag_ms(fh_t *h);
void fh_mark_lag(fh_t *h);
/** Waits until the feed's resolved ts >= @p ts. */
bool fh_wait_resolved(fh_t *h, uint64_t ts, int timeout_ms);
/** Waits until the lag is below @p lag_ms; *took_ms (may be NULL) how long it took. */
bool fh_wait_lag_below(fh_t *h, int64_t lag_ms, int timeout_ms, int64_t *took_ms);
/** Waits until the feed caught up with "now" (resolved >= a TSO taken now). */
bool fh_wait_caught_up(fh_t *h, int timeout_ms);
size_t fh_rows_seen(fh_t *h);
/** The ERROR event's message, or NULL if none arrived yet. */
const char *fh_fatal(fh_t *h, tkc_err_t *err);
bool fh_wait_fatal(fh_t *h, int timeout_ms);

/** Feed stats + the sim's counters for one store. */
void fh_sim_store_stats(fh_t *h, uint64_t store_id, sim_cdc_stats_t *out);
void fh_sim_total_stats(fh_t *h, sim_cdc_stats_t *out);

/* ===== verification ===== */

typedef struct {
    size_t truth_rows;      /* in the span, commit_ts > start ts */
    size_t truth_checked;   /* ... and <= the final resolved ts */
    size_t emitted;         /* row items received */
    size_t unique;          /* distinct (key, commit_ts) */
    size_t duplicates;      /* emitted - unique */
    size_t missing;
    size_t invented;
    size_t mismatched;      /* op / value / start_ts differ from the truth */
    size_t late;            /* emitted after the frontier passed its commit_ts */
    size_t below_frontier;  /* arrived with commit_ts <= the span frontier */
    size_t old_value_checked, old_value_mismatch;
    size_t region_ts_back;  /* a region's resolved ts went back */
    size_t wrong_span;      /* a row outside the span its event names */
    size_t resolved_events;
    uint64_t final_resolved;
    bool caught_up;         /* resolved reached the end of the workload */
    char first_problem[512];
} fh_report_t;

/**
 * Pauses the workload, waits (up to @p catch_up_ms) until the feed's
 * resolved ts passes the last commit, stops the feed, and verifies.
 */
void fh_check(fh_t *h, int catch_up_ms, fh_report_t *rep);
/** Prints the report to stderr with a title. */
void fh_report_print(const char *title, const fh_report_t *rep);
/** Asserts a clean report (check.h assertions). @p allow_dups for re-subscriptions. */
void fh_assert_clean(const fh_report_t *rep, bool allow_dups);

/** Sleeps @p ms milliseconds (tests only: pacing faults). */
void fh_sleep_ms(int ms);

#endif
