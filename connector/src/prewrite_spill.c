/*
 * prewrite_spill.c: the append-only file of spilled prewrite values (see
 * prewrite_spill.h).
 *
 * Record: u32 magic, u32 value_len, u32 old_value_len, u32 crc32 (zlib, over
 * the first 12 bytes and both payloads), then value, then old value. The
 * lengths are also kept by the matcher's stub, so a read at a wrong offset
 * or of a damaged file is detected (magic, lengths, CRC) and reported as an
 * error: a spilled value is never turned into a silently wrong row.
 *
 * Why no write buffer: the COMMIT of a prewrite may come right after it and
 * must find the bytes with pread; one pwritev per record keeps that trivial,
 * and the page cache does the buffering. Why truncate only at zero live
 * bytes: records are released in commit order, not write order, so there is
 * no cheaper point at which a prefix is known to be dead; transactions end,
 * and then the file goes back to zero.
 */
#include "prewrite_spill.h"
#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "util/log.h"
#include "util/mem.h"
#include "util/tmpfile.h"

#define PW_MAGIC 0x50575331u /* "PWS1" */
#define PW_HEADER 16
#define PW_MIN_PAYLOAD 64

struct tkc_prewrite_spill_s {
    int fd;
    atomic_size_t *shared;
    size_t limit;
    size_t min_payload;
    uint64_t end; /* append offset */
    uint64_t live;
    atomic_uint_fast64_t written; /* read by the feed's stats from any thread */
    uint64_t truncations;
};

tkc_prewrite_spill_t *tkc_prewrite_spill_new_fd(int fd, atomic_size_t *shared, size_t limit)
{
    tkc_prewrite_spill_t *s = tkc_calloc(1, sizeof(*s));
    s->fd = fd;
    s->shared = shared;
    s->limit = limit;
    s->min_payload = PW_MIN_PAYLOAD;
    return s;
}

tkc_prewrite_spill_t *tkc_prewrite_spill_new(const char *dir, atomic_size_t *shared, size_t limit,
                                             char *errstr, size_t errstr_size)
{
    int fd = tkc_tmpfile_open(dir, "tkc-prewrite");
    if (fd < 0) {
        tkc_err_set(errstr, errstr_size, "cannot create a prewrite spill file in %s: %s", dir,
                strerror(errno));
        return NULL;
    }
    return tkc_prewrite_spill_new_fd(fd, shared, limit);
}

void tkc_prewrite_spill_destroy(tkc_prewrite_spill_t *s)
{
    if (!s)
        return;
    close(s->fd);
    tkc_free(s);
}

bool tkc_prewrite_spill_wanted(const tkc_prewrite_spill_t *s, size_t bytes, size_t payload)
{
    return payload >= s->min_payload &&
           atomic_load_explicit(s->shared, memory_order_relaxed) + bytes > s->limit;
}

void tkc_prewrite_spill_set_min(tkc_prewrite_spill_t *s, size_t payload)
{
    s->min_payload = payload;
}

void tkc_prewrite_spill_charge(tkc_prewrite_spill_t *s, size_t bytes)
{
    atomic_fetch_add_explicit(s->shared, bytes, memory_order_relaxed);
}

void tkc_prewrite_spill_uncharge(tkc_prewrite_spill_t *s, size_t bytes)
{
    atomic_fetch_sub_explicit(s->shared, bytes, memory_order_relaxed);
}

size_t tkc_prewrite_spill_record_size(size_t value_len, size_t old_value_len)
{
    return PW_HEADER + value_len + old_value_len;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t record_crc(const uint8_t *head12, const uint8_t *v, size_t vlen, const uint8_t *ov,
                           size_t ovlen)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, head12, 12);
    if (vlen)
        crc = crc32(crc, v, (uInt)vlen);
    if (ovlen)
        crc = crc32(crc, ov, (uInt)ovlen);
    return (uint32_t)crc;
}

/*
 * pwritev/preadv of the whole iovec at @p off, resuming after short
 * transfers. @returns 0, or -1 with errno set (0 for a read past the end).
 */
static int rw_all(int fd, struct iovec *iov, int cnt, uint64_t off, bool write)
{
    while (cnt > 0) {
        ssize_t n = write ? pwritev(fd, iov, cnt, (off_t)off) : preadv(fd, iov, cnt, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = 0;
            return -1;
        }
        off += (uint64_t)n;
        size_t left = (size_t)n;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

tkc_err_t tkc_prewrite_spill_put(tkc_prewrite_spill_t *s, const uint8_t *value, size_t value_len,
                                 const uint8_t *old_value, size_t old_value_len, uint64_t *off,
                                 char *errstr, size_t errstr_size)
{
    if (value_len > UINT32_MAX || old_value_len > UINT32_MAX) {
        tkc_err_set(errstr, errstr_size, "prewrite value too large to spill");
        return TKC_ERR_INVALID_ARG;
    }
    uint8_t head[PW_HEADER];
    put_u32(head, PW_MAGIC);
    put_u32(head + 4, (uint32_t)value_len);
    put_u32(head + 8, (uint32_t)old_value_len);
    put_u32(head + 12, record_crc(head, value, value_len, old_value, old_value_len));
    struct iovec iov[3] = {{head, PW_HEADER}, {(void *)value, value_len},
                           {(void *)old_value, old_value_len}};
    int cnt = old_value_len ? 3 : value_len ? 2 : 1;
    if (rw_all(s->fd, iov, cnt, s->end, true) != 0) {
        tkc_err_set(errstr, errstr_size, "prewrite spill write failed at offset %llu: %s",
                (unsigned long long)s->end, errno ? strerror(errno) : "short write");
        return TKC_ERR_IO;
    }
    size_t size = tkc_prewrite_spill_record_size(value_len, old_value_len);
    *off = s->end;
    s->end += size;
    s->live += size;
    atomic_fetch_add_explicit(&s->written, size, memory_order_relaxed);
    return TKC_ERR_OK;
}

tkc_err_t tkc_prewrite_spill_get(tkc_prewrite_spill_t *s, uint64_t off, uint8_t *value,
                                 size_t value_len, uint8_t *old_value, size_t old_value_len,
                                 char *errstr, size_t errstr_size)
{
    size_t size = tkc_prewrite_spill_record_size(value_len, old_value_len);
    if (off > s->end || s->end - off < size) {
        tkc_err_set(errstr, errstr_size,
                "prewrite spill record at offset %llu (%zu bytes) is past the end of the file",
                (unsigned long long)off, size);
        return TKC_ERR_CORRUPT;
    }
    uint8_t head[PW_HEADER];
    struct iovec iov[3] = {{head, PW_HEADER}, {value, value_len}, {old_value, old_value_len}};
    int cnt = old_value_len ? 3 : value_len ? 2 : 1;
    if (rw_all(s->fd, iov, cnt, off, false) != 0) {
        tkc_err_set(errstr, errstr_size, "prewrite spill read failed at offset %llu: %s",
                (unsigned long long)off, errno ? strerror(errno) : "file truncated");
        return TKC_ERR_IO;
    }
    if (get_u32(head) != PW_MAGIC || get_u32(head + 4) != value_len ||
        get_u32(head + 8) != old_value_len) {
        tkc_err_set(errstr, errstr_size, "prewrite spill record at offset %llu: bad header",
                (unsigned long long)off);
        return TKC_ERR_CORRUPT;
    }
    if (get_u32(head + 12) != record_crc(head, value, value_len, old_value, old_value_len)) {
        tkc_err_set(errstr, errstr_size, "prewrite spill record at offset %llu: CRC mismatch",
                (unsigned long long)off);
        return TKC_ERR_CORRUPT;
    }
    return TKC_ERR_OK;
}

void tkc_prewrite_spill_release(tkc_prewrite_spill_t *s, size_t record_bytes)
{
    s->live = record_bytes < s->live ? s->live - record_bytes : 0;
    if (s->live || !s->end)
        return;
    /* nothing live: the space goes back and offsets restart at zero; if the
     * truncation fails the file just keeps growing from where it is */
    if (ftruncate(s->fd, 0) != 0) {
        tkc_log(TKC_LOG_WARN, "feed", "event=prewrite_spill_truncate_failed bytes=%llu err=\"%s\"",
                (unsigned long long)s->end, strerror(errno));
        return;
    }
    s->end = 0;
    s->truncations++;
}

uint64_t tkc_prewrite_spill_written(const tkc_prewrite_spill_t *s)
{
    return atomic_load_explicit(&s->written, memory_order_relaxed);
}

void tkc_prewrite_spill_get_stats(const tkc_prewrite_spill_t *s, tkc_prewrite_spill_stats_t *st)
{
    st->live_bytes = s->live;
    st->file_bytes = s->end;
    st->written_bytes = tkc_prewrite_spill_written(s);
    st->truncations = s->truncations;
}
