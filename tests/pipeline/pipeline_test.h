/*
 * pipeline_test.h: support for the pipeline's integration tests.
 *
 *   feedgen   a synthetic feed: transactions of rows over a few spans and
 *             regions, pushed as tkc_feed_event_t into the pipeline's msgq
 *             in the feed's order (a region's rows before the RESOLVED event
 *             that covers them), with the ground truth kept for checking.
 *   verify    an independent consumer: reads every topic of a feed from the
 *             broker, decodes with the Avro codec (schemas/), and checks the
 *             delivery contract against the ground truth.
 *   helpers   a test pipeline config, waiting on metrics, VmRSS.
 *
 * Everything here runs in check's forked test child; nothing is created
 * before srunner_run_all(). TKC_DEBUG_VERIFY=1 makes the verifier dump the
 * partition it rejects for a partitioning error.
 */
#ifndef TKC_PIPELINE_TEST_H
#define TKC_PIPELINE_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avro_codec.h"
#include "kafka/kafka_test.h"
#include "pipeline.h"
#include "util/msgq.h"

/* ===== feedgen ===== */

typedef struct tkc_feedgen_s tkc_feedgen_t;

/** One change the feed emitted. */
typedef struct tkc_feedgen_row_s {
    uint32_t span;
    unsigned key;      /* key id within the span: raw key "k%06u" */
    uint64_t commit_ts;
    bool del;
    uint32_t value_len;
} tkc_feedgen_row_t;

/**
 * @param start_ts rows get commit ts above it (the pipeline's start ts)
 * @param n_spans spans "s0".."s<n-1>", each split into @p regions regions
 */
tkc_feedgen_t *tkc_feedgen_new(size_t n_spans, size_t regions, unsigned keys_per_span,
                               uint64_t start_ts, unsigned seed);
void tkc_feedgen_destroy(tkc_feedgen_t *g);

/** Fills @p spans (n_spans entries; borrowed from the generator). */
void tkc_feedgen_spans(const tkc_feedgen_t *g, tkc_pipeline_span_t *spans);

/** Bytes of the raw key of @p key ("k%06u"), into @p buf (>= 16 bytes). */
size_t tkc_feedgen_key(unsigned key, char *buf);

/** The value a row carries (deterministic), into @p buf (value_len bytes). */
void tkc_feedgen_value(const tkc_feedgen_row_t *r, uint8_t *buf);

/**
 * @brief One transaction of @p n_rows rows at the next commit ts, pushed as
 *        ROWS events (one per region touched); retries while the queue is
 *        full (flow control), up to 120 s.
 * @returns its commit ts, or 0 if the queue stayed full / closed.
 */
uint64_t tkc_feedgen_txn(tkc_feedgen_t *g, tkc_msgq_t *q, unsigned n_rows, uint32_t value_len);

/** Pushes RESOLVED(ts) for every region (ts 0: the last commit ts). @returns ts or 0. */
uint64_t tkc_feedgen_resolve(tkc_feedgen_t *g, tkc_msgq_t *q, uint64_t ts);

/**
 * @brief Re-sends, like TiKV after a resubscribe, every row with commit_ts
 *        > @p from_ts in commit order, then resolves at the last commit ts.
 */
uint64_t tkc_feedgen_replay(tkc_feedgen_t *g, tkc_msgq_t *q, uint64_t from_ts);

const tkc_feedgen_row_t *tkc_feedgen_truth(const tkc_feedgen_t *g, size_t *n);
uint64_t tkc_feedgen_last_ts(const tkc_feedgen_t *g);

/* ===== verify ===== */

typedef struct tkc_verify_opts_s {
    const char *bootstrap;
    const char *prefix;
    const char *feed_id;
    size_t n_spans;
    int partitions;               /* row topic partitions (for the key->partition check) */
    tkc_kafka_test_isolation_t isolation;
    bool watermarks_in_partitions; /* watermark_all_partitions was on */
    uint64_t expect_final;        /* != 0: the last watermark and checkpoint must equal it */
    uint64_t complete_upto;       /* every truth row <= this must be present (0: final wm) */
    bool exactly_once;            /* no (key, commit_ts) twice */
    bool expect_checkpoint_topic; /* kafka checkpoint store */
} tkc_verify_opts_t;

typedef struct tkc_verify_report_s {
    size_t rows;        /* RowChange messages read */
    size_t distinct;    /* distinct (span, key, commit_ts) */
    size_t duplicates;
    size_t watermarks_in_rows;
    size_t watermarks;  /* in the watermark topic */
    uint64_t last_watermark;
    uint64_t last_checkpoint;
    uint64_t last_checkpoint_epoch;
    size_t checkpoints;
} tkc_verify_report_t;

/**
 * @brief Reads every topic of the feed and checks, against @p truth:
 *   - each RowChange decodes and equals a truth row (key, op, value, ts);
 *   - each key lands in the partition Java's murmur2 partitioner picks;
 *   - per partition and key, commit ts strictly increase in offset order;
 *   - per partition, watermarks never decrease and no row with commit_ts <=
 *     a watermark comes after it (the watermark follows the rows it covers);
 *   - every truth row <= complete_upto is present (no loss);
 *   - watermark topic monotonic; the checkpoint record decodes;
 *   - with expect_final: the last watermark and checkpoint equal it;
 *   - with exactly_once: no change is seen twice.
 * @returns 0, or -1 with the first violation in @p errstr.
 */
int tkc_verify_feed(const tkc_verify_opts_t *o, const tkc_feedgen_row_t *truth, size_t n_truth,
                    tkc_verify_report_t *rep, char *errstr, size_t errstr_size);

/** Java's murmur2 partitioner (org.apache.kafka...Utils.murmur2 & 0x7fffffff % n). */
int32_t tkc_verify_java_partition(const void *key, size_t len, int32_t partitions);

/* ===== helpers ===== */

/** Defaults for tests: interval 50 ms, partitions 3, replication 1, timeout 30 s. */
void tkc_ptest_config(tkc_pipeline_config_t *cfg, const char *bootstrap, const char *prefix,
                      const char *feed_id, const tkc_pipeline_span_t *spans, size_t n_spans,
                      tkc_avro_codec_t *codec);

/** A new codec on schemas/ (single-object framing); aborts the test on failure. */
tkc_avro_codec_t *tkc_ptest_codec(void);

/**
 * @brief Polls the pipeline's metrics until @p pred holds or @p timeout_ms
 *        passes. @returns true if it held. *@p last gets the last snapshot
 *        (free with tkc_pipeline_metrics_free) when non-NULL.
 */
bool tkc_ptest_wait(tkc_pipeline_t *pl, bool (*pred)(const tkc_pipeline_metrics_t *, void *),
                    void *arg, int timeout_ms, tkc_pipeline_metrics_t *last);

/** Waits until checkpoint_ts >= ts. */
bool tkc_ptest_wait_checkpoint(tkc_pipeline_t *pl, uint64_t ts, int timeout_ms);

/** VmRSS / VmHWM of this process in KiB (from /proc/self/status). */
long tkc_ptest_rss_kb(void);
long tkc_ptest_hwm_kb(void);

/** A unique prefix for this test run: "tkc-pl-<what>-<pid>-<ms>". Free with free(). */
char *tkc_ptest_prefix(const char *what);

#endif
