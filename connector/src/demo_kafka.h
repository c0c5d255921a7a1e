/*
 * demo_kafka.h: reads the newest messages of a topic back from Kafka (the
 * connector's embedded mock cluster in `tikv-kafka-cdc demo`), as any
 * outside consumer would: a plain librdkafka consumer, no consumer group.
 */
#ifndef TKC_DEMO_KAFKA_H
#define TKC_DEMO_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/** One message as Kafka holds it; every buffer is owned by the record. */
typedef struct tkc_demo_kafka_record_s {
    char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* the message timestamp (CreateTime), -1 if none */
    uint8_t *key;         /* NULL when the message has no key */
    size_t key_len;
    uint8_t *value;
    size_t value_len;
} tkc_demo_kafka_record_t;

/**
 * @brief Reads the last @p per_partition messages of every partition of
 *        @p topic (fewer when a partition holds fewer), as of the call.
 *
 * @param bootstrap bootstrap.servers of the cluster.
 * @param timeout_ms bound for the whole read (metadata, offsets, fetch).
 * @param out the records, in partition then offset order; owned by the
 *            caller (tkc_demo_kafka_records_free()). Empty on error.
 * @returns TKC_ERR_OK; TKC_ERR_NOT_FOUND when the topic does not exist;
 *          TKC_ERR_TIMED_OUT or TKC_ERR_IO with @p errstr.
 * @locality any thread; creates and destroys its own consumer
 */
tkc_err_t tkc_demo_kafka_tail(const char *bootstrap, const char *topic, int per_partition,
                              int timeout_ms, tkc_demo_kafka_record_t **out, size_t *n_out,
                              char *errstr, size_t errstr_size);

/** Frees @p n records and the array. */
void tkc_demo_kafka_records_free(tkc_demo_kafka_record_t *recs, size_t n);

#endif
