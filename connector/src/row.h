/*
 * row.h: the change types of the feed.
 *
 *   tkc_feed_row_t  one Event.Row as TiKV sent it (PREWRITE, COMMIT, ...),
 *                   decoupled from protobuf: the feed stream code translates
 *                   Cdcpb__Event__Row into it, pointing into the unpacked
 *                   message (borrowed, valid for one call). The matcher's
 *                   input.
 *   tkc_row_t       one committed change, the only change type passed from
 *                   the feed to the pipeline. One allocation holds the struct
 *                   and its key/value/old-value bytes, so it moves between
 *                   threads and is freed with a single tkc_row_destroy().
 *
 * The enum values equal cdcpb's Event.LogType and Event.Row.OpType numbers,
 * so the translation is a range check and a cast.
 */
#ifndef TKC_ROW_H
#define TKC_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Row operation; values are cdcpb Event.Row.OpType. */
typedef enum {
    TKC_ROW_OP_UNKNOWN = 0,
    TKC_ROW_OP_PUT = 1,
    TKC_ROW_OP_DELETE = 2,
} tkc_row_op_t;

/** "UNKNOWN", "PUT", "DELETE"; "?" for anything else. */
const char *tkc_row_op_name(int op);

/** Kind of an Event.Row; values are cdcpb Event.LogType. */
typedef enum {
    TKC_FEED_LOG_UNKNOWN = 0,
    TKC_FEED_LOG_PREWRITE = 1,
    TKC_FEED_LOG_COMMIT = 2,
    TKC_FEED_LOG_ROLLBACK = 3,
    TKC_FEED_LOG_COMMITTED = 4,
    TKC_FEED_LOG_INITIALIZED = 5,
} tkc_feed_log_t;

/** "PREWRITE", "COMMIT", ...; "?" for anything else. */
const char *tkc_feed_log_name(int type);

/**
 * One Event.Row as received. Every pointer is borrowed (typically into the
 * unpacked protobuf message) and only valid during the call it is passed to;
 * whoever needs the bytes later copies them.
 */
typedef struct tkc_feed_row_s {
    tkc_feed_log_t type;
    tkc_row_op_t op;
    const uint8_t *key; /* RAW key (not memcomparable-encoded) */
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    const uint8_t *old_value;
    size_t old_value_len;
    /*
     * Whether old_value means "the previous value". proto3 cannot tell an
     * empty old_value from an absent one; the translator sets this for rows
     * that carry an old value at all (PREWRITE, COMMITTED) when ReadOldValue
     * was requested, i.e. always in this connector.
     */
    bool has_old_value;
    uint64_t start_ts;
    uint64_t commit_ts; /* COMMIT / COMMITTED only */
    uint64_t generation; /* pipelined DML: larger wins (PREWRITE) */
} tkc_feed_row_t;

/**
 * One committed change. Created by tkc_row_new(); the key/value/old_value
 * pointers point into the same allocation and must not be freed separately.
 * A row has exactly one owner at a time (matcher emit -> feed -> queue ->
 * sorter -> encoder).
 */
typedef struct tkc_row_s {
    /* free for the current owner's intrusive list; NULL when handed over */
    struct tkc_row_s *next;
    tkc_row_op_t op; /* PUT or DELETE */
    /*
     * True when old_value is the value of the newest committed version
     * before this change (possibly empty: an insert); false when TiKV did
     * not provide one.
     */
    bool has_old_value;
    uint32_t span_index; /* which subscribed span of the feed */
    uint64_t region_id;
    uint64_t start_ts;
    uint64_t commit_ts;
    const uint8_t *key; /* RAW key */
    size_t key_len;
    const uint8_t *value; /* empty for DELETE */
    size_t value_len;
    const uint8_t *old_value;
    size_t old_value_len;
    size_t alloc_size; /* bytes of this allocation, for memory quotas */
    uint8_t data[];
} tkc_row_t;

/**
 * @brief Allocates a row and copies the three byte strings into it.
 *
 * Any byte pointer may be NULL when its length is 0. The remaining fields
 * (region_id, span_index, timestamps, has_old_value) are set by the caller.
 * @returns the row, owned by the caller; free with tkc_row_destroy().
 * @locality any
 */
tkc_row_t *tkc_row_new(tkc_row_op_t op, const uint8_t *key, size_t key_len, const uint8_t *value,
                       size_t value_len, const uint8_t *old_value, size_t old_value_len);

/** Frees @p row (NULL is a no-op). @locality any */
void tkc_row_destroy(tkc_row_t *row);

/** Bytes held by @p row (its single allocation). */
static inline size_t tkc_row_size(const tkc_row_t *row)
{
    return row->alloc_size;
}

#endif
