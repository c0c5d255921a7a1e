/*
 * checkpoint.c: the checkpoint file store and the checkpoint topic reader
 * (see checkpoint.h).
 *
 * File format: one line of text, so an operator can read it with cat:
 *   tkc-checkpoint v1 feed=<id> ts=<u64> epoch=<u64> committed_at_ms=<i64> crc32=<8 hex>\n
 * The CRC-32 covers everything before " crc32=". A file that fails to parse
 * or whose CRC differs is CORRUPT, and the connector refuses to start from
 * it rather than guess (the operator decides: delete it to start from
 * start-ts, or restore it).
 *
 * Crash safety of tkc_checkpoint_file_write (Redis rdbSave does the same):
 *   1. write <path>.tmp and fsync it: the new bytes are durable, but not yet
 *      visible under <path>; a crash here leaves the old file intact and a
 *      stray tmp file that the next write truncates;
 *   2. rename(tmp, path): atomic; any reader sees the old or the new file;
 *   3. fsync the directory: the rename itself is durable. A power loss
 *      before this step may bring back the old file after reboot, which is
 *      safe: an older checkpoint only means more replay (at-least-once), and
 *      the old file is complete because it was fsynced when it was written.
 * So no crash exposes a torn file; the CRC is a second line of defence
 * against media errors and hand edits.
 *
 * Topic reader: a throw-away consumer with manual assignment (no group
 * state, no offset commits), isolation level as asked; it reads each
 * partition to the end offset reported when it starts, recognised either by
 * the message at end-1 or by a partition-EOF event (with read_committed the
 * last records may be control records or aborted ones, which are never
 * delivered). A leadership error while it asks for the end offsets (a
 * broker just resumed, or busy re-electing) is retried until the deadline:
 * failing the start for it would only make a supervisor restart us.
 */
#include "checkpoint.h"
#include "util/err.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "util/clock.h"
#include "util/mem.h"

#define FILE_MAGIC "tkc-checkpoint v1"
#define MAX_FILE 1024

bool tkc_checkpoint_feed_id_valid(const char *feed_id)
{
    if (!feed_id)
        return false;
    size_t n = strlen(feed_id);
    if (n == 0 || n > TKC_CHECKPOINT_FEED_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)feed_id[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}

/* ===== file store ===== */

static int format_body(char *buf, size_t n, const char *feed_id, const tkc_checkpoint_t *cp)
{
    return snprintf(buf, n, FILE_MAGIC " feed=%s ts=%" PRIu64 " epoch=%" PRIu64
                                       " committed_at_ms=%" PRId64,
                    feed_id, cp->ts, cp->epoch, cp->committed_at_ms);
}

tkc_err_t tkc_checkpoint_file_read(const char *path, const char *feed_id, tkc_checkpoint_t *out,
                                   char *errstr, size_t errstr_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            tkc_err_set(errstr, errstr_size, "no checkpoint file %s", path);
            return TKC_ERR_NOT_FOUND;
        }
        tkc_err_set(errstr, errstr_size, "cannot open checkpoint file %s: %s", path,
                strerror(errno));
        return TKC_ERR_IO;
    }
    char buf[MAX_FILE + 1];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            tkc_err_set(errstr, errstr_size, "cannot read checkpoint file %s: %s", path,
                    strerror(errno));
            close(fd);
            return TKC_ERR_IO;
        }
        if (r == 0 || len + (size_t)r >= sizeof(buf) - 1) {
            len += (size_t)r;
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';

    char id[TKC_CHECKPOINT_FEED_ID_MAX + 1];
    tkc_checkpoint_t cp = {0};
    unsigned crc_file = 0;
    int consumed = 0;
    char *crc_at = strstr(buf, " crc32=");
    if (len >= MAX_FILE || !crc_at ||
        sscanf(buf,
               FILE_MAGIC " feed=%200[A-Za-z0-9._-] ts=%" SCNu64 " epoch=%" SCNu64
                          " committed_at_ms=%" SCNd64 " crc32=%8x%n",
               id, &cp.ts, &cp.epoch, &cp.committed_at_ms, &crc_file, &consumed) != 5 ||
        (buf[consumed] != '\n' && buf[consumed] != '\0') ||
        (buf[consumed] == '\n' && buf[consumed + 1] != '\0')) {
        tkc_err_set(errstr, errstr_size,
                "checkpoint file %s is damaged (unexpected content); refusing to guess: "
                "restore it or remove it to start from start-ts",
                path);
        return TKC_ERR_CORRUPT;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)buf, (uInt)(crc_at - buf));
    if ((unsigned)crc != crc_file) {
        tkc_err_set(errstr, errstr_size,
                "checkpoint file %s is damaged (crc32 %08x, computed %08x); refusing to guess",
                path, crc_file, (unsigned)crc);
        return TKC_ERR_CORRUPT;
    }
    if (strcmp(id, feed_id) != 0) {
        tkc_err_set(errstr, errstr_size,
                "checkpoint file %s belongs to feed '%s', not '%s'", path, id, feed_id);
        return TKC_ERR_INCOMPATIBLE;
    }
    *out = cp;
    return TKC_ERR_OK;
}

static tkc_err_t write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return TKC_ERR_IO;
        }
        p += w;
        len -= (size_t)w;
    }
    return TKC_ERR_OK;
}

tkc_err_t tkc_checkpoint_file_write(const char *path, const char *feed_id,
                                    const tkc_checkpoint_t *cp, char *errstr,
                                    size_t errstr_size)
{
    if (!tkc_checkpoint_feed_id_valid(feed_id)) {
        tkc_err_set(errstr, errstr_size, "invalid feed id");
        return TKC_ERR_INVALID_ARG;
    }
    char body[MAX_FILE];
    int n = format_body(body, sizeof(body) - 32, feed_id, cp);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)body, (uInt)n);
    n += snprintf(body + n, sizeof(body) - (size_t)n, " crc32=%08x\n", (unsigned)crc);

    size_t plen = strlen(path);
    char *tmp = tkc_malloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    char *dcopy = tkc_strdup(path);
    tkc_err_t err = TKC_ERR_IO;
    int dfd = -1;

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        tkc_err_set(errstr, errstr_size, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (write_all(fd, body, (size_t)n) != TKC_ERR_OK || fsync(fd) != 0) {
        tkc_err_set(errstr, errstr_size, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0) {
        tkc_err_set(errstr, errstr_size, "cannot close %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        tkc_err_set(errstr, errstr_size, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        tkc_err_set(errstr, errstr_size, "cannot fsync the directory of %s: %s", path,
                strerror(errno));
        goto out;
    }
    err = TKC_ERR_OK;
out:
    if (dfd >= 0)
        close(dfd);
    tkc_free(dcopy);
    tkc_free(tmp);
    return err;
}

/* ===== topic reader ===== */

static bool consume_error_is_fatal(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED;
}

/* Errors of a ListOffsets request that go away by themselves. */
static bool offsets_error_is_retriable(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
        return true;
    default:
        return false;
    }
}

#define OFFSETS_RETRY_MS 200

static int remaining(int64_t deadline)
{
    int64_t left = deadline - tkc_clock_mono_ms();
    return left < 1 ? 1 : left > INT32_MAX ? INT32_MAX : (int)left;
}

tkc_err_t tkc_checkpoint_kafka_read(const rd_kafka_conf_t *conf, const char *topic,
                                    const char *feed_id, bool read_committed, int timeout_ms,
                                    tkc_checkpoint_decode_cb *decode, void *opaque,
                                    tkc_checkpoint_t *out, char *errstr, size_t errstr_size)
{
    int64_t deadline = tkc_clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 30000);
    char buf[512];
    char group[96];
    snprintf(group, sizeof(group), "tkc-checkpoint-reader-%ld-%" PRId64, (long)getpid(),
             tkc_clock_mono_ms());
    rd_kafka_conf_t *c = rd_kafka_conf_dup(conf);
    const char *props[][2] = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"},
        {"isolation.level", read_committed ? "read_committed" : "read_uncommitted"},
    };
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (rd_kafka_conf_set(c, props[i][0], props[i][1], buf, sizeof(buf)) !=
            RD_KAFKA_CONF_OK) {
            tkc_err_set(errstr, errstr_size, "checkpoint reader: %s", buf);
            rd_kafka_conf_destroy(c);
            return TKC_ERR_CONF;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, buf, sizeof(buf));
    if (!rk) {
        tkc_err_set(errstr, errstr_size, "checkpoint reader: %s", buf);
        rd_kafka_conf_destroy(c);
        return TKC_ERR_CONF;
    }

    tkc_err_t result = TKC_ERR_IO;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    int64_t *end = NULL;
    bool *done = NULL;
    struct {
        uint8_t *val; /* NULL: tombstone */
        size_t len;
        bool present;
    } *last = NULL;
    int nparts = 0;

    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 0, rkt, &md, remaining(deadline));
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tkc_err_set(errstr, errstr_size, "checkpoint reader: metadata of %s: %s", topic,
                rd_kafka_err2str(kerr));
        result = kerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? TKC_ERR_TIMED_OUT : TKC_ERR_IO;
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        md->topics[0].partition_cnt == 0) {
        tkc_err_set(errstr, errstr_size, "checkpoint topic %s does not exist", topic);
        result = TKC_ERR_NOT_FOUND;
        goto out;
    }
    if (md->topics[0].err) {
        tkc_err_set(errstr, errstr_size, "checkpoint reader: topic %s: %s", topic,
                rd_kafka_err2str(md->topics[0].err));
        goto out;
    }
    nparts = md->topics[0].partition_cnt;
    last = tkc_calloc((size_t)nparts, sizeof(*last));
    end = tkc_calloc((size_t)nparts, sizeof(*end));
    done = tkc_calloc((size_t)nparts, sizeof(*done));
    parts = rd_kafka_topic_partition_list_new(nparts);
    int pending = 0;
    for (int p = 0; p < nparts; p++) {
        int64_t lo = 0, hi = 0;
        for (;;) {
            kerr = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi,
                                                    remaining(deadline));
            if (!offsets_error_is_retriable(kerr) ||
                tkc_clock_mono_ms() + OFFSETS_RETRY_MS >= deadline)
                break;
            usleep(OFFSETS_RETRY_MS * 1000);
        }
        if (kerr) {
            tkc_err_set(errstr, errstr_size, "checkpoint reader: offsets of %s [%d]: %s", topic, p,
                    rd_kafka_err2str(kerr));
            result = kerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? TKC_ERR_TIMED_OUT : TKC_ERR_IO;
            goto out;
        }
        end[p] = hi;
        /*
         * Only the end offset decides: after retried ListOffsets errors
         * librdkafka 2.0.2 has answered lo == hi for a partition holding a
         * record. A partition that is really empty from its start (retention)
         * ends with PARTITION_EOF below.
         */
        done[p] = hi <= 0;
        if (!done[p]) {
            pending++;
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
    }
    if (pending && (kerr = rd_kafka_assign(rk, parts)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tkc_err_set(errstr, errstr_size, "checkpoint reader: assign: %s", rd_kafka_err2str(kerr));
        goto out;
    }
    size_t idlen = strlen(feed_id);
    while (pending > 0) {
        if (tkc_clock_mono_ms() >= deadline) {
            tkc_err_set(errstr, errstr_size, "checkpoint reader: reading %s timed out", topic);
            result = TKC_ERR_TIMED_OUT;
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        int p = m->partition;
        bool ours = m->rkt && p >= 0 && p < nparts &&
                    strcmp(rd_kafka_topic_name(m->rkt), topic) == 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (ours && !done[p]) {
                done[p] = true;
                pending--;
            }
        } else if (m->err) {
            if (consume_error_is_fatal(m->err)) {
                tkc_err_set(errstr, errstr_size, "checkpoint reader: %s", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                goto out;
            }
        } else if (ours && !done[p] && m->offset < end[p]) {
            if (m->key_len == idlen && memcmp(m->key, feed_id, idlen) == 0) {
                /* offsets grow within a partition: the last one read wins */
                tkc_free(last[p].val);
                last[p].val = m->payload ? tkc_memdup(m->payload, m->len) : NULL;
                last[p].len = m->len;
                last[p].present = true;
            }
            if (m->offset + 1 >= end[p]) {
                done[p] = true;
                pending--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    /*
     * The key lives in one partition unless the partition count changed;
     * then each partition's newest record competes and the largest ts wins
     * (a checkpoint never moves backwards).
     */
    bool any = false;
    for (int p = 0; p < nparts; p++) {
        if (!last[p].present || !last[p].val)
            continue; /* absent, or a tombstone */
        tkc_checkpoint_t cp;
        char derr[256] = "";
        if (decode(opaque, topic, last[p].val, last[p].len, &cp, derr, sizeof(derr)) !=
            TKC_ERR_OK) {
            tkc_err_set(errstr, errstr_size, "checkpoint of feed %s in %s [%d] does not decode: %s",
                    feed_id, topic, p, derr);
            result = TKC_ERR_CORRUPT;
            goto out;
        }
        if (!any || cp.ts > out->ts)
            *out = cp;
        any = true;
    }
    if (!any) {
        tkc_err_set(errstr, errstr_size, "no checkpoint of feed %s in %s", feed_id, topic);
        result = TKC_ERR_NOT_FOUND;
        goto out;
    }
    result = TKC_ERR_OK;
out:
    if (last) {
        for (int p = 0; p < nparts; p++)
            tkc_free(last[p].val);
        tkc_free(last);
    }
    tkc_free(end);
    tkc_free(done);
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return result;
}
