/*
 * avro_codec.h: the connector's messages as Avro (the .avsc files in schemas/).
 *
 * Schemas and message values
 *   row_change.avsc  io.tikvkafkacdc.RowChange   one committed change
 *   watermark.avsc   io.tikvkafkacdc.Watermark   resolved-ts watermark
 *   checkpoint.avsc  io.tikvkafkacdc.Checkpoint  committed checkpoint
 *
 *   Watermarks go to the watermark topic and to every partition of every
 *   row topic, so a row topic carries two record types. With one schema per
 *   subject (TopicNameStrategy, "<topic>-value") that is only possible as a
 *   union, so rows and watermarks are written with the value schema
 *       [RowChange, Watermark]          ("the row-topic value schema")
 *   (built from the two .avsc texts, registered verbatim) on every topic,
 *   and checkpoints with the plain Checkpoint schema. Generic Avro readers
 *   (Confluent's deserializer included) hand back the branch's record.
 *
 * Framing
 *   registry configured:  00 | schema id (u32 big-endian) | Avro binary
 *                         (Confluent wire format; schema registered under
 *                         "<topic>-value" on first use, id cached per subject)
 *   no registry:          C3 01 | CRC-64-AVRO fingerprint (u64 little-endian)
 *                         | Avro binary (Avro single-object encoding; the
 *                         fingerprint of the Parsing Canonical Form)
 *
 * Decoding accepts both framings and any writer schema whose records carry
 * the fields by name (extra fields ignored, missing nullable fields null),
 * so consumers keep working across compatible schema changes. Input is
 * validated against the writer schema before avro-c reads it: corrupt or
 * truncated bytes yield TKC_ERR_CORRUPT, never a crash or a huge allocation.
 *
 * Threads: a codec is thread-compatible, not thread-safe: it reuses its avro
 * values and buffers across calls. Give each thread its own codec (they may
 * share one tkc_schema_registry_t, which is thread-safe).
 */
#ifndef TKC_AVRO_CODEC_H
#define TKC_AVRO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "row.h"
#include "schema_registry.h"
#include "util/err.h"

typedef struct tkc_avro_codec_s tkc_avro_codec_t;

/** Schema file names inside the schema directory. */
#define TKC_AVRO_CODEC_ROW_CHANGE_FILE "row_change.avsc"
#define TKC_AVRO_CODEC_WATERMARK_FILE "watermark.avsc"
#define TKC_AVRO_CODEC_CHECKPOINT_FILE "checkpoint.avsc"

/** Confluent framing: magic byte 0 + 4-byte id. */
#define TKC_AVRO_CONFLUENT_HEADER_LEN 5
/** Single-object framing: C3 01 + 8-byte fingerprint. */
#define TKC_AVRO_SINGLE_OBJECT_HEADER_LEN 10

typedef enum {
    TKC_AVRO_FRAMING_CONFLUENT = 1,
    TKC_AVRO_FRAMING_SINGLE_OBJECT = 2,
} tkc_avro_framing_t;

typedef enum {
    TKC_AVRO_MSG_ROW_CHANGE = 1,
    TKC_AVRO_MSG_WATERMARK = 2,
    TKC_AVRO_MSG_CHECKPOINT = 3,
} tkc_avro_msg_kind_t;

/** "RowChange", "Watermark", "Checkpoint"; "?" otherwise. */
const char *tkc_avro_msg_kind_name(int kind);

/** A decoded RowChange. Clear with tkc_avro_row_change_clear(). */
typedef struct tkc_avro_row_change_s {
    /*
     * op, key, value, old_value + has_old_value, start_ts, commit_ts and
     * region_id; span_index is 0. Owned: freed by the clear function.
     */
    tkc_row_t *row;
    bool has_value;         /* false: value was null (a DELETE) */
    char *span;             /* owned */
    int64_t commit_time_ms; /* as written (commit_ts >> 18 by this codec) */
} tkc_avro_row_change_t;

/** A decoded Watermark. Clear with tkc_avro_watermark_clear(). */
typedef struct tkc_avro_watermark_s {
    char *feed_id; /* owned */
    uint64_t resolved_ts;
    int64_t resolved_time_ms;
    int64_t emitted_at_ms;
} tkc_avro_watermark_t;

/** A decoded Checkpoint. Clear with tkc_avro_checkpoint_clear(). */
typedef struct tkc_avro_checkpoint_s {
    char *feed_id; /* owned */
    uint64_t checkpoint_ts;
    int64_t checkpoint_time_ms;
    int64_t committed_at_ms;
    uint64_t epoch;
} tkc_avro_checkpoint_t;

/** Any decoded message; only the member named by kind is set. */
typedef struct tkc_avro_message_s {
    tkc_avro_msg_kind_t kind;
    tkc_avro_framing_t framing;
    uint32_t schema_id;   /* Confluent framing */
    uint64_t fingerprint; /* single-object framing */
    tkc_avro_row_change_t row_change;
    tkc_avro_watermark_t watermark;
    tkc_avro_checkpoint_t checkpoint;
} tkc_avro_message_t;

/** Free what a decode put into the struct and zero it (safe on zeroed structs). */
void tkc_avro_row_change_clear(tkc_avro_row_change_t *rc);
void tkc_avro_watermark_clear(tkc_avro_watermark_t *wm);
void tkc_avro_checkpoint_clear(tkc_avro_checkpoint_t *ck);
void tkc_avro_message_clear(tkc_avro_message_t *msg);

/**
 * @brief Loads the three schemas from @p schema_dir and prepares encoders.
 *
 * @param registry NULL: single-object framing. Otherwise Confluent framing
 *                 through this client, borrowed: it must outlive the codec.
 * @returns the codec (destroy with tkc_avro_codec_destroy()), or NULL with a
 *          message in @p errstr (missing file, invalid schema, a schema
 *          lacking a field the codec writes).
 * @locality any thread; the codec then belongs to the calling thread
 */
tkc_avro_codec_t *tkc_avro_codec_new(const char *schema_dir, tkc_schema_registry_t *registry,
                                     char *errstr, size_t errstr_size);

/** Frees the codec (NULL is a no-op). */
void tkc_avro_codec_destroy(tkc_avro_codec_t *c);

/**
 * @brief Encodes one row as a framed RowChange for @p topic.
 *
 * @param span_name the span or table name written into the message
 * @param row       borrowed; value is written as null for DELETE, old_value
 *                  as null unless row->has_old_value
 * @param out       on success a malloc'd buffer owned by the caller, free
 *                  with tkc_free() (or hand to librdkafka with
 *                  RD_KAFKA_MSG_F_FREE: tkc_free is free())
 * @returns TKC_ERR_OK; with a registry also the errors of
 *          tkc_schema_registry_register() for the topic's subject:
 *          TKC_ERR_INCOMPATIBLE on a 409 (stop the feed, never drop the
 *          row), TKC_ERR_TRANSPORT after retries. Nothing is cached on
 *          failure, so a later call tries again.
 * @locality the codec's thread
 */
tkc_err_t tkc_avro_codec_encode_row(tkc_avro_codec_t *c, const char *topic, const char *span_name,
                                    const tkc_row_t *row, uint8_t **out, size_t *out_len,
                                    char *errstr, size_t errstr_size);

/**
 * @brief Encodes Watermark(resolved_ts) for @p topic (the watermark topic or
 *        a row topic: both use the row-topic value schema).
 * resolved_time_ms is resolved_ts >> 18. Output and errors as encode_row.
 * @locality the codec's thread
 */
tkc_err_t tkc_avro_codec_encode_watermark(tkc_avro_codec_t *c, const char *topic,
                                          const char *feed_id, uint64_t resolved_ts,
                                          int64_t emitted_at_ms, uint8_t **out, size_t *out_len,
                                          char *errstr, size_t errstr_size);

/**
 * @brief Encodes Checkpoint(checkpoint_ts, epoch) for @p topic.
 *
 * @param topic the checkpoint topic; NULL: single-object framing even when
 *              a registry is configured (for the local checkpoint file).
 * checkpoint_time_ms is checkpoint_ts >> 18. Output and errors as encode_row.
 * @locality the codec's thread
 */
tkc_err_t tkc_avro_codec_encode_checkpoint(tkc_avro_codec_t *c, const char *topic,
                                           const char *feed_id, uint64_t checkpoint_ts,
                                           int64_t committed_at_ms, uint64_t epoch,
                                           uint8_t **out, size_t *out_len, char *errstr,
                                           size_t errstr_size);

/**
 * @brief Decodes any framed message written by a codec (or by any producer
 *        using a compatible schema).
 *
 * Confluent framing looks the writer schema up by id through the registry
 * (cached per id; TKC_ERR_NOT_FOUND without a registry or for an unknown
 * id); single-object framing by fingerprint among this codec's schemas
 * (TKC_ERR_NOT_FOUND for another fingerprint).
 *
 * @param out filled on success (clear with tkc_avro_message_clear()); left
 *            zeroed on failure
 * @returns TKC_ERR_OK, TKC_ERR_CORRUPT (bad framing, truncated or malformed
 *          Avro, trailing bytes), TKC_ERR_NOT_FOUND, TKC_ERR_INCOMPATIBLE
 *          (writer schema is not one of ours or lacks a required field), or
 *          registry errors.
 * @locality the codec's thread
 */
tkc_err_t tkc_avro_codec_decode(tkc_avro_codec_t *c, const void *buf, size_t len,
                                tkc_avro_message_t *out, char *errstr, size_t errstr_size);

/**
 * @brief Like tkc_avro_codec_decode() for a message expected to be a
 *        RowChange / Watermark / Checkpoint; another kind gives
 *        TKC_ERR_INVALID_ARG ("message is a Watermark, not a RowChange").
 * @locality the codec's thread
 */
tkc_err_t tkc_avro_codec_decode_row(tkc_avro_codec_t *c, const void *buf, size_t len,
                                    tkc_avro_row_change_t *out, char *errstr,
                                    size_t errstr_size);
tkc_err_t tkc_avro_codec_decode_watermark(tkc_avro_codec_t *c, const void *buf, size_t len,
                                          tkc_avro_watermark_t *out, char *errstr,
                                          size_t errstr_size);
tkc_err_t tkc_avro_codec_decode_checkpoint(tkc_avro_codec_t *c, const void *buf, size_t len,
                                           tkc_avro_checkpoint_t *out, char *errstr,
                                           size_t errstr_size);

/** Which value schema a kind is written with. */
typedef enum {
    TKC_AVRO_SCHEMA_ROW_TOPIC = 1,  /* [RowChange, Watermark] */
    TKC_AVRO_SCHEMA_CHECKPOINT = 2, /* Checkpoint */
} tkc_avro_value_schema_t;

/**
 * The exact schema text this codec registers for @p which (valid while the
 * codec lives), and its single-object fingerprint. For tests and tools.
 */
const char *tkc_avro_codec_schema_text(const tkc_avro_codec_t *c, tkc_avro_value_schema_t which);
uint64_t tkc_avro_codec_fingerprint(const tkc_avro_codec_t *c, tkc_avro_value_schema_t which);

#endif
