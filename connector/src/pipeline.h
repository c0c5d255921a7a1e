/*
 * pipeline.h: the pipeline thread: feed events in, ordered Kafka messages,
 * watermarks and checkpoints out (architecture invariants 2-5).
 *
 *   msgq (tkc_feed_event_t) -> frontier + sorter -> codec -> kafka_sink
 *        rows <= R, in (commit_ts, arrival) order -> <prefix>.<span>
 *        when every row <= R is acknowledged      -> Watermark(R) to
 *                                                    <prefix>.watermark and
 *                                                    every row partition
 *        when Watermark(R) is acknowledged        -> checkpoint R
 *
 * Lifecycle (main thread):
 *   tkc_pipeline_config_defaults(&cfg); fill in; q = tkc_msgq_new(...);
 *   pl = tkc_pipeline_new(&cfg, q, ...);
 *   tkc_pipeline_open(pl, ...)      producer, topics, fencing, checkpoint read,
 *                                   GC safepoint check (blocking)
 *   ts = tkc_pipeline_start_ts(pl)  the feed subscribes from here
 *   tkc_pipeline_start(pl)          the pipeline thread runs
 *   ... tkc_pipeline_stop(pl) (e.g. from SIGTERM) ...
 *   err = tkc_pipeline_join(pl, ...) final watermark + checkpoint done
 *   tkc_pipeline_destroy(pl)
 *
 * The codec is reached through a seam (tkc_pipeline_codec_t): the Avro codec
 * (avro_codec.h) in the connector, an adapter from pipeline_avro.h; any
 * stand-in in tests.
 */
#ifndef TKC_PIPELINE_H
#define TKC_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "kafka_sink.h"
#include "row.h"
#include "sorter.h"
#include "util/err.h"
#include "util/keyrange.h"
#include "util/msgq.h"

typedef struct tkc_pipeline_s tkc_pipeline_t;

typedef enum {
    TKC_DELIVERY_AT_LEAST_ONCE = 0,
    TKC_DELIVERY_EXACTLY_ONCE = 1,
} tkc_delivery_t;

typedef enum {
    TKC_CHECKPOINT_STORE_KAFKA = 0, /* compacted <prefix>.checkpoint, keyed by feed id */
    TKC_CHECKPOINT_STORE_FILE = 1,  /* a local file (checkpoint_path) */
} tkc_checkpoint_store_t;

/**
 * The codec seam. Every encoder returns a buffer allocated with tkc_malloc
 * that the caller owns (the sink frees it with tkc_free after delivery).
 * Called on the pipeline thread only. Errors are permanent for that message:
 * the pipeline holds the watermark and reports them.
 */
typedef struct tkc_pipeline_codec_s {
    void *opaque;
    tkc_err_t (*encode_row)(void *opaque, const char *topic, const char *span_name,
                            const tkc_row_t *row, uint8_t **out, size_t *out_len, char *errstr,
                            size_t errstr_size);
    tkc_err_t (*encode_watermark)(void *opaque, const char *topic, const char *feed_id,
                                  uint64_t resolved_ts, int64_t emitted_at_ms, uint8_t **out,
                                  size_t *out_len, char *errstr, size_t errstr_size);
    tkc_err_t (*encode_checkpoint)(void *opaque, const char *topic, const char *feed_id,
                                   uint64_t checkpoint_ts, int64_t committed_at_ms,
                                   uint64_t epoch, uint8_t **out, size_t *out_len, char *errstr,
                                   size_t errstr_size);
    tkc_checkpoint_decode_cb *decode_checkpoint;
} tkc_pipeline_codec_t;

/** One subscribed span: its topic suffix and its ENCODED key range. */
typedef struct tkc_pipeline_span_s {
    const char *name;
    tkc_keyrange_t range;
} tkc_pipeline_span_t;

typedef struct tkc_pipeline_config_s {
    const char *feed_id;      /* [A-Za-z0-9._-]{1,200}: checkpoint key, transactional.id */
    const char *topic_prefix; /* topics <prefix>.<span>, <prefix>.watermark, .checkpoint */
    const tkc_pipeline_span_t *spans; /* index = tkc_row_t.span_index */
    size_t n_spans;
    int partitions;               /* row topics, when created; -1: broker default */
    int replication;              /* when created; -1: broker default */
    bool watermark_all_partitions;     /* default true */
    int64_t watermark_interval_ms;     /* minimum interval; default 1000 */
    tkc_checkpoint_store_t checkpoint_store; /* default kafka */
    const char *checkpoint_path;             /* file store */
    tkc_delivery_t delivery;                 /* default at-least-once */
    size_t memory_quota;                     /* sorter; default 512 MiB */
    const char *spill_dir;                   /* NULL: no spilling */
    uint64_t disk_budget;                    /* default 16 GiB */
    const char *kafka_bootstrap;
    const tkc_kafka_prop_t *kafka_props;     /* pass-through librdkafka properties */
    size_t n_kafka_props;
    int kafka_mock_brokers;                  /* > 0: embedded mock cluster (demo) */
    size_t max_inflight_bytes;               /* produced, unacknowledged; default 64 MiB */
    int64_t kafka_timeout_ms;                /* admin, transactions, final flush; 30 s */
    uint64_t start_ts;                       /* without a checkpoint; 0: now */
    int max_rows_per_step;                   /* rows released per loop turn; default 4096 */

    /* optional hooks (opaque = hook_opaque); called on the opening thread */
    tkc_err_t (*now_tso)(void *opaque, uint64_t *out);      /* default: wall clock */
    tkc_err_t (*gc_safepoint)(void *opaque, uint64_t *out); /* NULL: no check */
    /* called once on the pipeline thread when it stops (error or not) */
    void (*stopped_cb)(void *opaque, tkc_err_t err, const char *message);
    void *hook_opaque;

    tkc_pipeline_codec_t codec;
} tkc_pipeline_config_t;

/** Fills @p cfg with the defaults above (strings NULL, no spans, no codec). */
void tkc_pipeline_config_defaults(tkc_pipeline_config_t *cfg);

typedef enum {
    TKC_PIPELINE_NEW = 0,
    TKC_PIPELINE_RUNNING,
    TKC_PIPELINE_STOPPING, /* draining for a final watermark + checkpoint */
    TKC_PIPELINE_HELD,     /* a message was rejected: watermark held, see error */
    TKC_PIPELINE_FAILED,   /* fatal: stopped without committing further */
    TKC_PIPELINE_STOPPED,
} tkc_pipeline_state_t;

const char *tkc_pipeline_state_name(tkc_pipeline_state_t s);

typedef struct tkc_pipeline_topic_stats_s {
    char topic[256];
    uint64_t rows_produced;     /* RowChange messages handed to the producer */
    uint64_t messages_produced; /* all messages: rows, watermarks, checkpoints */
    uint64_t bytes_produced;    /* key + value bytes of all messages */
    uint64_t rows_delivered;    /* RowChange messages acknowledged */
} tkc_pipeline_topic_stats_t;

typedef struct tkc_pipeline_metrics_s {
    tkc_pipeline_state_t state;
    tkc_err_t err;     /* TKC_ERR_OK unless HELD/FAILED (or the feed failed) */
    char error[512];
    uint64_t start_ts;
    uint64_t resolved_ts;   /* the frontier */
    uint64_t released_ts;   /* every row <= this was produced */
    uint64_t acked_ts;      /* every row <= this was acknowledged */
    uint64_t watermark_ts;  /* the newest acknowledged watermark */
    uint64_t checkpoint_ts; /* the newest committed checkpoint */
    uint64_t epoch;
    uint64_t events_in, rows_in, rows_released, rows_delivered, late_rows;
    uint64_t duplicates_dropped; /* re-sent copies of a (key, commit_ts) not produced */
    uint64_t watermarks, checkpoints, txns_committed;
    bool paused;            /* not reading the feed queue (flow control) */
    uint64_t pauses;
    size_t n_topics;        /* entries used in topics[] */
    tkc_pipeline_topic_stats_t *topics; /* owned by the snapshot */
    tkc_kafka_sink_stats_t sink;
    tkc_sorter_stats_t sorter;
} tkc_pipeline_metrics_t;

/**
 * @brief Creates a pipeline (no I/O yet).
 * @param cfg borrowed; everything needed later is copied.
 * @param q the feed's event queue; borrowed, must outlive the pipeline.
 * @returns NULL with @p errstr when the configuration is invalid.
 * @locality main thread
 */
tkc_pipeline_t *tkc_pipeline_new(const tkc_pipeline_config_t *cfg, tkc_msgq_t *q, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Connects to Kafka, creates missing topics, fences older
 *        transactional instances, reads the checkpoint and checks it
 *        against the GC safepoint. Without a checkpoint, it stores the
 *        resolved start ts as the first checkpoint (and waits until it is
 *        durable), so a restart resumes from there; if that fails, the
 *        open fails. Blocking.
 * @returns TKC_ERR_OK, or the reason not to start (errstr).
 * @locality main thread, before tkc_pipeline_start()
 */
tkc_err_t tkc_pipeline_open(tkc_pipeline_t *pl, char *errstr, size_t errstr_size);

/** The ts the feed must subscribe from (the checkpoint, else start_ts / now). */
uint64_t tkc_pipeline_start_ts(const tkc_pipeline_t *pl);

/** Starts the pipeline thread. */
tkc_err_t tkc_pipeline_start(tkc_pipeline_t *pl, char *errstr, size_t errstr_size);

/**
 * @brief Runs the pipeline loop on the calling thread until it stops
 *        (alternative to start + join).
 */
tkc_err_t tkc_pipeline_run(tkc_pipeline_t *pl);

/**
 * @brief Asks for a graceful stop: stop reading the feed, release what is
 *        resolved, flush, final watermark and checkpoint.
 * @locality any; async-signal-safe (one atomic store)
 */
void tkc_pipeline_stop(tkc_pipeline_t *pl);

/**
 * @brief Waits for the pipeline thread.
 * @returns TKC_ERR_OK after a clean stop, else the error that stopped or
 *          held it (message in errstr).
 */
tkc_err_t tkc_pipeline_join(tkc_pipeline_t *pl, char *errstr, size_t errstr_size);

/** A consistent snapshot (refreshed by the pipeline thread every few ms). @locality any */
void tkc_pipeline_metrics(tkc_pipeline_t *pl, tkc_pipeline_metrics_t *out);
void tkc_pipeline_metrics_free(tkc_pipeline_metrics_t *m);

/** The sink, for tests (mock cluster fault injection). @locality pipeline thread or before start */
tkc_kafka_sink_t *tkc_pipeline_sink(tkc_pipeline_t *pl);

void tkc_pipeline_destroy(tkc_pipeline_t *pl);

#endif
