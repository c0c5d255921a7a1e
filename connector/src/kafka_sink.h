/*
 * kafka_sink.h: the librdkafka producer of the pipeline, with per-message
 * delivery accounting that never loses or reorders a message silently.
 *
 * What it guarantees to its caller (the pipeline):
 *   - A message is reported delivered (dr_cb, err 0) only when it and every
 *     message produced before it to the same partition are acknowledged by
 *     the broker. So per partition, reports come in produce order, and once
 *     a message is reported, nothing produced before it to that partition
 *     can still land after it.
 *   - A message the broker or the client rejects for good (too large, not
 *     authorised, unknown topic or partition, ...) is reported failed
 *     (dr_cb, err != 0, permanent) and is never reported delivered: later
 *     messages of its partition are held back with it. The caller decides
 *     (the pipeline holds the watermark and stops).
 *   - A message that times out locally (message.timeout.ms, only when the
 *     operator sets a finite one: the default here is infinite) is produced
 *     again, together with every later message of its partition, in the
 *     original order: see kafka_sink.c for why the later ones too.
 *   - Fatal producer errors (idempotence broken, fenced by a newer
 *     transactional instance) are sticky: tkc_kafka_sink_fatal() reports
 *     them and every produce fails with TKC_ERR_KAFKA_FATAL.
 *
 * Defaults (each can be overridden by a pass-through property):
 * enable.idempotence=true (acks=all, ordered retries), partitioner
 * murmur2_random (Java-compatible; also used to pick explicit partitions
 * here), reconnect.backoff.max.ms=1000, message.timeout.ms=0 (infinite) in
 * idempotent mode. Transactional mode sets transactional.id.
 *
 * Partitions are always chosen here and passed explicitly: rows by the
 * murmur2_random hash of their key over the partition count seen at start,
 * watermarks to every partition. Mixing explicit and partitioner-chosen
 * partitions would reorder (librdkafka INTRODUCTION.md, "Partitioner
 * considerations").
 *
 * Thread: the pipeline thread calls everything; delivery reports and error
 * callbacks run inside tkc_kafka_sink_poll() on that thread. librdkafka's
 * log callback runs on librdkafka's threads and only calls tkc_log.
 */
#ifndef TKC_KAFKA_SINK_H
#define TKC_KAFKA_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "util/err.h"

typedef struct tkc_kafka_sink_s tkc_kafka_sink_t;

/** One librdkafka property passed through verbatim. */
typedef struct tkc_kafka_prop_s {
    const char *name;
    const char *value;
} tkc_kafka_prop_t;

/** What a delivery report says about one message. */
typedef struct tkc_kafka_sink_report_s {
    const char *topic;
    int32_t partition;
    int64_t offset;           /* -1 when unknown (failures) */
    rd_kafka_resp_err_t err;  /* 0: delivered */
    const char *errstr;       /* err != 0 */
    size_t bytes;             /* key + value */
} tkc_kafka_sink_report_t;

/**
 * Delivery report: called at most once per produced message, from inside
 * tkc_kafka_sink_poll() (or a transaction call that serves reports): err 0
 * when delivered (in produce order per partition), else a permanent
 * failure. Messages held behind a failure, or purged at destroy, get none.
 * @p msg_opaque is what was given to tkc_kafka_sink_produce().
 * @locality pipeline thread
 */
typedef void tkc_kafka_sink_dr_cb(void *opaque, void *msg_opaque,
                                  const tkc_kafka_sink_report_t *report);

typedef struct tkc_kafka_sink_config_s {
    const char *bootstrap;         /* bootstrap.servers; ignored with mock_brokers */
    const tkc_kafka_prop_t *props; /* pass-through, applied after our defaults */
    size_t n_props;
    const char *transactional_id;  /* NULL: idempotent producer, else transactional */
    int mock_brokers;              /* > 0: librdkafka's embedded mock cluster */
    /* 0: 64 MiB; produce() says QUEUE_FULL above it. A message counts its
     * key and value plus a fixed estimate of its bookkeeping (ours and
     * librdkafka's), so this bounds memory; librdkafka's
     * queue.buffering.max.kbytes defaults to the same budget + 1 MiB. */
    size_t max_inflight_bytes;
    int64_t timeout_ms;            /* blocking admin/metadata calls; 0: 30 s */
    tkc_kafka_sink_dr_cb *dr_cb;
    void *opaque;
} tkc_kafka_sink_config_t;

typedef struct tkc_kafka_sink_error_count_s {
    rd_kafka_resp_err_t err;
    uint64_t count;
} tkc_kafka_sink_error_count_t;

#define TKC_KAFKA_SINK_MAX_ERROR_KINDS 16

typedef struct tkc_kafka_sink_stats_s {
    uint64_t produced;          /* produce calls accepted (first copies) */
    uint64_t reproduced;        /* extra copies after local timeouts */
    uint64_t delivered;         /* reported delivered */
    uint64_t failed;            /* reported failed */
    uint64_t inflight_msgs;     /* produced, not reported delivered yet */
    uint64_t inflight_bytes;    /* as charged: key + value + per-message overhead */
    size_t n_error_kinds;
    tkc_kafka_sink_error_count_t errors[TKC_KAFKA_SINK_MAX_ERROR_KINDS]; /* by error code */
} tkc_kafka_sink_stats_t;

/**
 * @brief Creates the producer (no network round trip yet).
 * @param cfg borrowed; strings are copied where kept.
 * @returns the sink or NULL with @p errstr (a rejected property, ...).
 * @locality pipeline thread
 */
tkc_kafka_sink_t *tkc_kafka_sink_new(const tkc_kafka_sink_config_t *cfg, char *errstr,
                                     size_t errstr_size);

/**
 * @brief Purges what is still queued and destroys the producer. Messages not
 *        reported yet are freed without a report. NULL is a no-op.
 * @locality pipeline thread
 */
void tkc_kafka_sink_destroy(tkc_kafka_sink_t *sk);

/** The brokers this sink talks to (the mock cluster's with mock_brokers). */
const char *tkc_kafka_sink_bootstrap(const tkc_kafka_sink_t *sk);

/** The mock cluster with mock_brokers, else NULL (for fault injection in tests). */
struct rd_kafka_mock_cluster_s *tkc_kafka_sink_mock_cluster(tkc_kafka_sink_t *sk);

/**
 * @brief A new client configuration for other clients of the same cluster
 *        (the checkpoint reader): the bootstrap this sink uses, the
 *        pass-through properties, the log callback. No producer settings.
 * @returns a conf owned by the caller, or NULL with @p errstr.
 * @locality pipeline thread
 */
rd_kafka_conf_t *tkc_kafka_sink_client_conf(const tkc_kafka_sink_t *sk, char *errstr,
                                            size_t errstr_size);

/**
 * @brief Makes sure @p topic exists and learns its partition count.
 *
 * Creates it through the Admin API (CreateTopics) with @p partitions and
 * @p replication when the metadata says it is missing; an existing topic is
 * kept as it is (its own partition count is used). @p compacted sets
 * cleanup.policy=compact on creation. Waits until every partition has a
 * leader. Blocking, bounded by the config timeout.
 * @returns TKC_ERR_OK, TKC_ERR_TIMED_OUT or TKC_ERR_IO (errstr).
 * @locality pipeline thread
 */
tkc_err_t tkc_kafka_sink_ensure_topic(tkc_kafka_sink_t *sk, const char *topic, int partitions,
                                      int replication, bool compacted, char *errstr,
                                      size_t errstr_size);

/** Partition count of a topic known through ensure_topic, else -1. */
int32_t tkc_kafka_sink_partitions(const tkc_kafka_sink_t *sk, const char *topic);

/** The partition murmur2_random (Java's default partitioner) picks for @p key. */
int32_t tkc_kafka_sink_partition_for_key(const tkc_kafka_sink_t *sk, const char *topic,
                                         const void *key, size_t key_len);

/**
 * @brief Produces one message.
 *
 * @param partition explicit partition, or -1 to hash @p key (murmur2_random).
 * @param key copied.
 * @param value ownership moves to the sink on TKC_ERR_OK only (freed with
 *              tkc_free after the final report); it must come from tkc_malloc.
 * @param msg_opaque handed back in the delivery report.
 * @returns TKC_ERR_OK; TKC_ERR_QUEUE_FULL (the in-flight budget or
 *          librdkafka's queue is full, or the partition is re-sending after
 *          a timeout: poll and try again; nothing was taken);
 *          TKC_ERR_INVALID_ARG (rejected for good before sending, e.g. larger
 *          than message.max.bytes or an unknown topic: errstr; counted in the
 *          error stats; nothing was taken); TKC_ERR_KAFKA_FATAL.
 * @locality pipeline thread
 */
tkc_err_t tkc_kafka_sink_produce(tkc_kafka_sink_t *sk, const char *topic, int32_t partition,
                                 const void *key, size_t key_len, uint8_t *value,
                                 size_t value_len, void *msg_opaque, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Serves delivery reports and error callbacks, waiting up to
 *        @p timeout_ms for the first one; continues timed-out re-sends.
 * @returns the number of events served.
 * @locality pipeline thread
 */
int tkc_kafka_sink_poll(tkc_kafka_sink_t *sk, int timeout_ms);

/**
 * @brief TKC_ERR_KAFKA_FATAL (with the reason) once the producer hit a fatal
 *        error, else TKC_ERR_OK.
 * @locality pipeline thread
 */
tkc_err_t tkc_kafka_sink_fatal(const tkc_kafka_sink_t *sk, char *errstr, size_t errstr_size);

/** Messages produced and not yet reported delivered or failed. */
uint64_t tkc_kafka_sink_inflight(const tkc_kafka_sink_t *sk);

void tkc_kafka_sink_stats(const tkc_kafka_sink_t *sk, tkc_kafka_sink_stats_t *out);

/* ===== transactions (transactional_id set) =====
 * Each returns TKC_ERR_OK; TKC_ERR_TIMED_OUT when retriable (call again);
 * TKC_ERR_IO when the transaction must be aborted; TKC_ERR_KAFKA_FATAL when
 * the producer is dead (fenced by a newer instance, ...). errstr says why. */

/** init_transactions: fences older instances with the same transactional.id. */
tkc_err_t tkc_kafka_sink_txn_init(tkc_kafka_sink_t *sk, char *errstr, size_t errstr_size);
tkc_err_t tkc_kafka_sink_txn_begin(tkc_kafka_sink_t *sk, char *errstr, size_t errstr_size);
/** Flushes, then commits; every message of the transaction is reported first. */
tkc_err_t tkc_kafka_sink_txn_commit(tkc_kafka_sink_t *sk, char *errstr, size_t errstr_size);
tkc_err_t tkc_kafka_sink_txn_abort(tkc_kafka_sink_t *sk, char *errstr, size_t errstr_size);
bool tkc_kafka_sink_txn_open(const tkc_kafka_sink_t *sk);

#endif
