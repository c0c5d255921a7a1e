/*
 * e2e_check.h: the independent checker of the end-to-end tests.
 *
 * It knows nothing of the connector's internals. It reads what a downstream
 * consumer reads (every partition of the row topic, the watermark topic and
 * the checkpoint topic or file, with read_committed in exactly-once mode),
 * decodes it with the schemas in schemas/ (the codec's decoder), and
 * compares it with tikv-sim's ground truth (--truth, one JSON line per
 * committed key). What it checks:
 *
 *   present     every truth change with commit_ts > the feed's start_ts is
 *               in Kafka (key, op, value length + zlib CRC-32, start_ts,
 *               commit_ts all equal); nothing that is not in the truth;
 *               an old value, where the truth has the key's previous
 *               version, equals that version's value (counted as mismatch)
 *   partition   all changes of one key are in one partition
 *   order       per key, within one connector run, commit_ts never goes
 *               back; a change seen for the first time never comes after a
 *               later change of its key (the last copies are in commit
 *               order, so a consumer applying them ends in the right state)
 *   duplicates  exactly-once: none. at-least-once: a copy in a later run
 *               only with commit_ts above the checkpoint stored when the
 *               previous run ended (kill -9 or exit); a copy in the same run
 *               (a re-subscription) only next to its twin (same commit_ts,
 *               nothing later of the key between) and never after a
 *               watermark of that run that covers it
 *   watermarks  per feed and partition non-decreasing within a run, never
 *               below the checkpoint the run resumed from; exactly-once:
 *               non-decreasing over everything. In each row-topic partition,
 *               every truth change of that partition with commit_ts <= R is
 *               at a smaller offset than Watermark(R)
 *   checkpoint  when a run ended, every change <= the stored checkpoint was
 *               already in Kafka (below the end offsets read then); stored
 *               checkpoints never go back; the final checkpoint and the
 *               final watermark cover the newest truth commit
 *
 * Runs are told apart by the Kafka message timestamp (CreateTime, set by
 * the producer when the connector produced it) against the end times the
 * harness recorded: a killed process produces nothing after its death and
 * the next one starts later.
 */
#ifndef TKC_E2E_CHECK_H
#define TKC_E2E_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/** Most partitions the checker handles (the tests use a few). */
#define TKC_E2E_MAX_PARTITIONS 64
/** Error messages kept verbatim in a report (the rest are only counted). */
#define TKC_E2E_MAX_ERROR_TEXTS 12

/** One connector process, as the harness saw it. */
typedef struct tkc_e2e_run_s {
    int64_t start_ms;     /* wall clock before the spawn */
    int64_t end_ms;       /* after it exited; INT64_MAX while running */
    bool ended;
    bool killed;          /* SIGKILL by the harness */
    int exit_status;      /* exit code or 128 + signal */
    /* checkpoint stored when it ended (0: none yet) */
    uint64_t ckpt_at_end;
    /* row-topic end offsets right after it ended, per partition; -1 unknown */
    int64_t end_offsets[TKC_E2E_MAX_PARTITIONS];
    /* what the connector logged it resumed from (0: unknown) */
    uint64_t resumed_from;
} tkc_e2e_run_t;

typedef struct tkc_e2e_check_input_s {
    const char *truth_path;
    const char *bootstrap;
    const char *schema_dir;
    const char *feed_id;
    const char *row_topic;        /* <prefix>.t<table> */
    const char *watermark_topic;  /* <prefix>.watermark */
    const char *checkpoint_topic; /* NULL with a checkpoint file */
    const char *checkpoint_file;  /* NULL with the topic */
    int partitions;               /* of the row topic */
    bool exactly_once;
    uint64_t start_ts;            /* the first run's start ts */
    const tkc_e2e_run_t *runs;
    size_t n_runs;
} tkc_e2e_check_input_t;

/** What the checker found. Counters first, then violations. */
typedef struct tkc_e2e_report_s {
    /* figures */
    uint64_t truth_changes;      /* truth lines after start_ts */
    uint64_t changes_checked;    /* RowChange messages read and compared */
    uint64_t distinct_delivered; /* distinct (key, commit_ts) delivered */
    uint64_t duplicates;         /* extra copies, all kinds */
    uint64_t dup_restart;        /* of those: across a restart */
    uint64_t dup_resubscribe;    /* of those: within one run */
    uint64_t row_topic_watermarks;
    uint64_t watermark_topic_watermarks;
    uint64_t checkpoints;        /* checkpoint records read (topic) or 1 (file) */
    uint64_t truth_max_commit_ts;
    uint64_t final_watermark;    /* highest in the watermark topic */
    uint64_t final_checkpoint;
    size_t runs;
    /* violations (all must be 0) */
    uint64_t lost;
    uint64_t invented;
    uint64_t mismatched;         /* same (key, commit_ts), other op/value/start_ts */
    uint64_t wrong_partition;
    uint64_t order_violations;
    uint64_t bad_duplicates;
    uint64_t watermark_regressions;
    uint64_t watermark_early;    /* a watermark before a row it covers */
    /* a change <= a stored checkpoint not yet in Kafka, or a checkpoint
     * that went back */
    uint64_t checkpoint_violations;
    uint64_t not_caught_up;      /* final watermark/checkpoint below the last commit */
    uint64_t undecodable;
    uint64_t errors;             /* sum of the violations */
    char error_texts[TKC_E2E_MAX_ERROR_TEXTS][320];
    size_t n_error_texts;
} tkc_e2e_report_t;

/**
 * @brief Reads the truth and Kafka and checks everything listed above.
 * @returns 0 when the check could run (violations are in @p rep), -1 when
 *          it could not (truth unreadable, Kafka unreachable): the reason is
 *          then in rep->error_texts[0].
 * @locality any thread; creates and destroys its own librdkafka handles
 */
int tkc_e2e_check(const tkc_e2e_check_input_t *in, tkc_e2e_report_t *rep);

/** Prints the report (figures, then the first violations) to @p f. */
void tkc_e2e_report_print(const tkc_e2e_report_t *rep, FILE *f);

#endif
