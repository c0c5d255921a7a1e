/*
 * e2e.h: the end-to-end harness. It runs the real pieces as separate
 * processes, the way they run in production:
 *
 *   tikv-sim         (tests/sim) PD + N TiKV stores over gRPC on loopback,
 *                    a workload, fault ops over HTTP and a ground-truth file
 *   tikv-kafka-cdc   the connector binary, with a config written per test
 *                    (fresh topic prefix, the real broker, checkpoint store,
 *                    delivery mode), its log captured to a file; it can be
 *                    killed with SIGKILL or SIGTERM and restarted from its
 *                    checkpoint as often as a test likes
 *   Kafka            the real broker of the ctest fixture "kafka"
 *
 * and hands the result to the independent checker (e2e_check.h), which
 * reads Kafka as a consumer would and compares with the simulator's truth.
 *
 * Every connector process is one "run". The harness records, for each run,
 * when it started and ended, the checkpoint it resumed from, and, right
 * after it died, the checkpoint stored in Kafka (or in the file) and the end
 * offsets of every row-topic partition: the checker uses them to place each
 * Kafka message in its run (by the message's CreateTime) and to check the
 * duplicate rules and "a checkpoint never runs ahead of Kafka".
 *
 * Failure handling: harness functions fail the running check test
 * themselves (ck_assert), with the work directory in the message. Spawned
 * processes get PR_SET_PDEATHSIG(SIGKILL) and an atexit hook kills them, so
 * a failing or timed-out test leaves nothing running. The work directory
 * (config, logs, truth) is kept when a test fails and removed by
 * tkc_e2e_destroy() when it passes (unless TKC_E2E_KEEP=1).
 *
 * TKC_E2E_CONNECTOR=PATH runs another connector binary (a release build, or
 * a test build such as the bench's address-keyed one); TKC_E2E_KEEP=1 keeps
 * the work directory of a passing test.
 *
 * Threads: single-threaded; use from check's forked test child only (it
 * creates librdkafka handles). Every function may block for seconds.
 */
#ifndef TKC_E2E_H
#define TKC_E2E_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "integration/e2e_check.h"

typedef struct tkc_e2e_s tkc_e2e_t;

typedef enum {
    TKC_E2E_CKPT_KAFKA = 0, /* compacted <prefix>.checkpoint topic */
    TKC_E2E_CKPT_FILE = 1,  /* a file in the work directory */
} tkc_e2e_ckpt_store_t;

/** What a test sets up. Zero/NULL fields take the default shown. */
typedef struct tkc_e2e_opts_s {
    const char *name;      /* required: names the work dir and topic prefix */
    int stores;            /* 3 */
    int regions;           /* 1000 */
    uint64_t seed;         /* 1: workload, cluster id */
    const char *const *sim_args; /* extra tikv-sim arguments, NULL-terminated */
    bool exactly_once;     /* [feed] delivery = exactly-once (forces kafka store) */
    tkc_e2e_ckpt_store_t ckpt_store;
    int partitions;        /* 3 */
    /* extra "key = value\n" lines for [feed] / [kafka] (appended, so they
     * win over the harness's own lines only where the connector allows a
     * repeated key; use keys the harness does not set) */
    const char *conf_feed;
    const char *conf_kafka;
    /* a connector that exits before it runs (e.g. PD has no leader at that
     * moment) is started again, up to 10 times, instead of failing the test;
     * counted as unexpected exits */
    bool restart_on_exit;
} tkc_e2e_opts_t;

/**
 * @brief Creates the work directory, writes the connector config and starts
 *        tikv-sim with its workload paused. The connector is not started.
 * @returns the harness (never NULL: failures fail the test)
 */
tkc_e2e_t *tkc_e2e_new(const tkc_e2e_opts_t *opts);

/**
 * @brief Stops whatever still runs (SIGKILL), frees everything and removes
 *        the work directory. Call it at the end of a passing test.
 */
void tkc_e2e_destroy(tkc_e2e_t *e);

/** The work directory (logs, config, truth). */
const char *tkc_e2e_dir(const tkc_e2e_t *e);

/* ------------------------------------------------------------ connector */

/**
 * @brief Starts the connector (a new run) and waits until it logs
 *        event=running and its HTTP port is known. The first run's start_ts
 *        is remembered for the checker.
 */
void tkc_e2e_connector_start(tkc_e2e_t *e);

/**
 * @brief Sends @p sig (SIGKILL or SIGTERM) to the connector, waits for it
 *        to exit, and records the end of the run: end time, the checkpoint
 *        now stored, row-topic end offsets.
 * @returns its exit status (exit code, or 128 + signal)
 */
int tkc_e2e_connector_stop(tkc_e2e_t *e, int sig);

/**
 * @brief If the connector exited by itself, records the end of its run
 *        (counted as an unexpected exit, exit status logged) and starts a
 *        new run, like a container's restart policy.
 * @returns true if it had to restart it
 */
bool tkc_e2e_connector_supervise(tkc_e2e_t *e);

/** @returns true while the connector process runs. */
bool tkc_e2e_connector_alive(tkc_e2e_t *e);

/** GET /status of the connector; NULL if it does not answer. Caller decrefs. */
json_t *tkc_e2e_connector_status(tkc_e2e_t *e);

/** GET /metrics of the connector; NULL if it does not answer. Caller frees. */
char *tkc_e2e_connector_metrics(tkc_e2e_t *e);

/**
 * @brief Sum of the values of metric @p name over the series whose label
 *        set contains @p label_match (e.g. "store=\"2\""; NULL: all series).
 * @returns the sum, or -1 when no series matched
 */
double tkc_e2e_metric(const char *metrics_text, const char *name, const char *label_match);

/**
 * @brief Waits until the connector's /status shows a checkpoint above the ts
 *        the current run started from (a checkpoint was committed). Fails
 *        the test after @p timeout_ms.
 */
void tkc_e2e_wait_checkpoint(tkc_e2e_t *e, int timeout_ms);

/** Number of runs so far (started connector processes). */
size_t tkc_e2e_runs(const tkc_e2e_t *e);

/** Connector exits the harness did not ask for (see supervise). */
int tkc_e2e_unexpected_exits(const tkc_e2e_t *e);

/* ------------------------------------------------------------ simulator */

/**
 * @brief POSTs one control op (JSON text) to tikv-sim's /fault.
 * @returns the answer object (caller decrefs): {"ok": true, ...} or
 *          {"ok": false, "error": ...} (a 400: nothing changed). Fails the
 *          test only when tikv-sim does not answer at all.
 */
json_t *tkc_e2e_sim_op(tkc_e2e_t *e, const char *json_op);

/** Like tkc_e2e_sim_op() but fails the test unless the answer is ok. */
json_t *tkc_e2e_sim_op_ok(tkc_e2e_t *e, const char *json_op);

/** GET a tikv-sim control path ("/stats", "/regions?start=3&limit=2"); caller decrefs. */
json_t *tkc_e2e_sim_get(tkc_e2e_t *e, const char *path);

/** Starts (or re-rates) the workload at @p rows_per_s. */
void tkc_e2e_workload(tkc_e2e_t *e, int rows_per_s);

/* ------------------------------------------------------------ broker */

/**
 * @brief Runs kafka-broker.sh @p cmd (pause-stop, resume, kill) on the
 *        fixture's broker. Only for RUN_SERIAL tests.
 */
void tkc_e2e_broker(tkc_e2e_t *e, const char *cmd);

/* ------------------------------------------------------------ end */

/**
 * @brief Pauses the workload, waits until no transaction is in flight and no
 *        lock is left in the simulator, then until the connector's
 *        checkpoint (its /status) covers the newest commit of the truth file.
 *        Keeps the connector supervised meanwhile. Fails the test after
 *        @p timeout_ms.
 * @returns the newest commit_ts of the truth
 */
uint64_t tkc_e2e_drain(tkc_e2e_t *e, int timeout_ms);

/**
 * @brief Stops the connector gracefully (SIGTERM; asserts exit 0) and
 *        tikv-sim (SIGTERM; asserts exit 0, so the truth is flushed), checks
 *        the connector logs for sanitizer reports, then runs the checker over
 *        everything in Kafka and prints its report.
 * @param rep filled with the checker's findings; the test asserts on them
 */
void tkc_e2e_finish(tkc_e2e_t *e, tkc_e2e_report_t *rep);

/**
 * @brief The checker input tkc_e2e_finish() used (valid while @p e lives),
 *        so a test can re-run tkc_e2e_check() on deliberately altered inputs
 *        (a doctored truth, a stricter delivery mode, inflated checkpoints)
 *        and show that the checker catches what it claims to catch.
 */
void tkc_e2e_check_input(tkc_e2e_t *e, tkc_e2e_check_input_t *in);

/** The truth file of tikv-sim (complete once tkc_e2e_finish() returned). */
const char *tkc_e2e_truth_path(const tkc_e2e_t *e);

#endif
