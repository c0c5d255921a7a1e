/*
 * checkpoint.h: the durable checkpoint ts of a feed (architecture invariant 3).
 *
 * A checkpoint R says: every change with commit_ts <= R is in Kafka, and so
 * is Watermark(R). On start the feed resumes from it; TiKV then re-sends
 * every change with commit_ts > R.
 *
 * Two stores:
 *   file   one small text file replaced atomically (write temp, fsync,
 *          rename, fsync the directory); carries the feed id and a CRC, so
 *          a file of another feed or a damaged file is refused, never
 *          misread. Reading and writing are here.
 *   kafka  a compacted topic keyed by feed id (the container stays
 *          stateless). Writing is a produce through the sink (in
 *          exactly-once mode inside the batch's transaction); reading at
 *          start-up is here: the newest record of the feed's key, read with
 *          read_committed in exactly-once mode. The value is encoded by the
 *          codec (Avro Checkpoint); this module takes the decoder as a
 *          callback so it does not depend on the codec.
 *
 * Thread: any; no shared state.
 */
#ifndef TKC_CHECKPOINT_H
#define TKC_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "util/err.h"

/** One stored checkpoint. */
typedef struct tkc_checkpoint_s {
    uint64_t ts;             /* the checkpoint TSO */
    uint64_t epoch;          /* instance epoch that wrote it (start count) */
    int64_t committed_at_ms; /* wall clock when it was committed */
} tkc_checkpoint_t;

/** Longest feed id accepted (it also names a transactional.id and a key). */
#define TKC_CHECKPOINT_FEED_ID_MAX 200

/** @returns true if @p feed_id is 1..200 chars of [A-Za-z0-9._-]. */
bool tkc_checkpoint_feed_id_valid(const char *feed_id);

/**
 * @brief Reads the checkpoint file at @p path.
 * @returns TKC_ERR_OK (*out filled); TKC_ERR_NOT_FOUND when there is no file
 *          (a first start); TKC_ERR_CORRUPT when it is damaged (bad format or
 *          CRC); TKC_ERR_INCOMPATIBLE when it belongs to another feed id;
 *          TKC_ERR_IO otherwise. errstr says which.
 * @locality any
 */
tkc_err_t tkc_checkpoint_file_read(const char *path, const char *feed_id, tkc_checkpoint_t *out,
                                   char *errstr, size_t errstr_size);

/**
 * @brief Replaces the checkpoint file at @p path atomically and durably.
 *
 * Writes "<path>.tmp", fsyncs it, renames it over @p path and fsyncs the
 * directory. After a crash at any point the file holds either the previous
 * or the new checkpoint, never a mix: rename(2) is atomic, and the data is on
 * disk before the rename makes it visible.
 * @returns TKC_ERR_OK or TKC_ERR_IO (errstr).
 * @locality any
 */
tkc_err_t tkc_checkpoint_file_write(const char *path, const char *feed_id,
                                    const tkc_checkpoint_t *cp, char *errstr,
                                    size_t errstr_size);

/** Decodes one checkpoint record value (the codec's decoder). */
typedef tkc_err_t tkc_checkpoint_decode_cb(void *opaque, const char *topic, const uint8_t *buf,
                                           size_t len, tkc_checkpoint_t *out, char *errstr,
                                           size_t errstr_size);

/**
 * @brief Reads the newest checkpoint of @p feed_id from the topic.
 *
 * Reads every partition from the beginning to its end (for read_committed:
 * to the last stable offset) and keeps the last record whose key is the feed
 * id; a null value (tombstone) clears it.
 *
 * @param conf borrowed; duplicated for an internal consumer (bootstrap,
 *             security and other client properties come from it).
 * @returns TKC_ERR_OK (*out filled), TKC_ERR_NOT_FOUND (topic missing or no
 *          record of this feed), TKC_ERR_CORRUPT (the newest record does not
 *          decode), TKC_ERR_TIMED_OUT or TKC_ERR_IO.
 * @locality any (blocking)
 */
tkc_err_t tkc_checkpoint_kafka_read(const rd_kafka_conf_t *conf, const char *topic,
                                    const char *feed_id, bool read_committed, int timeout_ms,
                                    tkc_checkpoint_decode_cb *decode, void *opaque,
                                    tkc_checkpoint_t *out, char *errstr, size_t errstr_size);

#endif
