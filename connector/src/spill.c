/*
 * spill.c: sorted runs of rows in anonymous local files (see spill.h).
 *
 * Design:
 *   - The file is anonymous from the start (O_TMPFILE, or mkostemp + unlink
 *     where the file system lacks O_TMPFILE), so nothing has to be cleaned up
 *     after a crash and the space is freed by close(2).
 *   - Writes are buffered and issued with write(2) in big blocks; reads use
 *     pread(2) with our own offset, so the file position never matters.
 *   - A record larger than the read buffer is read straight into a scratch
 *     buffer sized for it; the scratch buffer is kept (its size is the
 *     largest row seen) and counted in tkc_spill_run_mem_bytes().
 *   - Consumed space is punched out in PUNCH_STEP steps: a run that holds a
 *     transaction several times the memory quota gives its disk back while
 *     it is being released, not only at the end.
 */
#include "spill.h"
#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "util/mem.h"
#include "util/tmpfile.h"

#define DEFAULT_WRITE_BUFFER (256u * 1024u)
#define DEFAULT_READ_BUFFER (64u * 1024u)
#define PUNCH_STEP (4u * 1024u * 1024u)
#define PUNCH_ALIGN 4096u

/* u32 body_len + u32 crc */
#define REC_HEAD 8u
/* op, has_old, pad16, span, region, start_ts, commit_ts, seq, 3 x len */
#define BODY_FIXED (1u + 1u + 2u + 4u + 8u + 8u + 8u + 8u + 4u + 4u + 4u)

struct tkc_spill_run_s {
    int fd;
    bool reading;
    uint64_t rows;
    uint64_t written;  /* file size */
    uint64_t punched;  /* bytes at the start given back */
    bool punch_ok;     /* false once the file system refused */

    /* writing */
    uint8_t *wbuf;
    size_t wcap, wlen;

    /* reading */
    uint8_t *rbuf;
    size_t rcap;
    uint64_t rbuf_off; /* file offset of rbuf[0] */
    size_t rlen;       /* valid bytes in rbuf */
    uint64_t roff;     /* next unread file offset */
    uint8_t *scratch;
    size_t scratch_cap;
};

tkc_spill_run_t *tkc_spill_run_new(const char *dir, size_t write_buffer, char *errstr,
                                   size_t errstr_size)
{
    int fd = tkc_tmpfile_open(dir, "tkc-spill");
    if (fd < 0) {
        tkc_err_set(errstr, errstr_size, "cannot create a spill file in %s: %s", dir,
                strerror(errno));
        return NULL;
    }
    tkc_spill_run_t *run = tkc_calloc(1, sizeof(*run));
    run->fd = fd;
    run->punch_ok = true;
    run->wcap = write_buffer ? write_buffer : DEFAULT_WRITE_BUFFER;
    run->wbuf = tkc_malloc(run->wcap);
    return run;
}

void tkc_spill_run_destroy(tkc_spill_run_t *run)
{
    if (!run)
        return;
    if (run->fd >= 0)
        close(run->fd);
    tkc_free(run->wbuf);
    tkc_free(run->rbuf);
    tkc_free(run->scratch);
    tkc_free(run);
}

static tkc_err_t write_all(tkc_spill_run_t *run, const uint8_t *p, size_t len, char *errstr,
                           size_t errstr_size)
{
    while (len) {
        ssize_t w = write(run->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            tkc_err_set(errstr, errstr_size, "spill write failed: %s", strerror(errno));
            return TKC_ERR_IO;
        }
        p += w;
        len -= (size_t)w;
    }
    return TKC_ERR_OK;
}

static tkc_err_t wflush(tkc_spill_run_t *run, char *errstr, size_t errstr_size)
{
    tkc_err_t err = write_all(run, run->wbuf, run->wlen, errstr, errstr_size);
    run->wlen = 0;
    return err;
}

/* Appends bytes to the write buffer, flushing as needed. */
static tkc_err_t wput(tkc_spill_run_t *run, const void *data, size_t len, char *errstr,
                      size_t errstr_size)
{
    const uint8_t *p = data;
    if (len >= run->wcap) {
        /* Big values go straight to the file instead of through the buffer. */
        tkc_err_t err = wflush(run, errstr, errstr_size);
        if (err == TKC_ERR_OK)
            err = write_all(run, p, len, errstr, errstr_size);
        return err;
    }
    if (run->wlen + len > run->wcap) {
        tkc_err_t err = wflush(run, errstr, errstr_size);
        if (err != TKC_ERR_OK)
            return err;
    }
    memcpy(run->wbuf + run->wlen, p, len);
    run->wlen += len;
    return TKC_ERR_OK;
}

size_t tkc_spill_record_size(const tkc_row_t *row)
{
    return REC_HEAD + BODY_FIXED + row->key_len + row->value_len + row->old_value_len;
}

static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
    return p + 2;
}
static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
    return p + 4;
}
static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
    return p + 8;
}

tkc_err_t tkc_spill_run_append(tkc_spill_run_t *run, const tkc_row_t *row, uint64_t seq,
                               char *errstr, size_t errstr_size)
{
    if (run->reading) {
        tkc_err_set(errstr, errstr_size, "spill run already finished");
        return TKC_ERR_INVALID_ARG;
    }
    if (row->key_len > UINT32_MAX || row->value_len > UINT32_MAX ||
        row->old_value_len > UINT32_MAX) {
        tkc_err_set(errstr, errstr_size, "row too large to spill");
        return TKC_ERR_INVALID_ARG;
    }
    uint8_t fixed[BODY_FIXED];
    uint8_t *p = fixed;
    *p++ = (uint8_t)row->op;
    *p++ = row->has_old_value ? 1 : 0;
    p = put_u16(p, 0);
    p = put_u32(p, row->span_index);
    p = put_u64(p, row->region_id);
    p = put_u64(p, row->start_ts);
    p = put_u64(p, row->commit_ts);
    p = put_u64(p, seq);
    p = put_u32(p, (uint32_t)row->key_len);
    p = put_u32(p, (uint32_t)row->value_len);
    put_u32(p, (uint32_t)row->old_value_len);

    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, fixed, BODY_FIXED);
    /* zlib takes uInt lengths; rows are far below 4 GiB (checked above per field) */
    /* never pass a NULL buffer: zlib then returns the initial value */
    if (row->key_len)
        crc = crc32(crc, row->key, (uInt)row->key_len);
    if (row->value_len)
        crc = crc32(crc, row->value, (uInt)row->value_len);
    if (row->old_value_len)
        crc = crc32(crc, row->old_value, (uInt)row->old_value_len);

    size_t body = BODY_FIXED + row->key_len + row->value_len + row->old_value_len;
    if (body > UINT32_MAX) {
        tkc_err_set(errstr, errstr_size, "row too large to spill");
        return TKC_ERR_INVALID_ARG;
    }
    uint8_t head[REC_HEAD];
    put_u32(put_u32(head, (uint32_t)body), (uint32_t)crc);
    tkc_err_t err = wput(run, head, REC_HEAD, errstr, errstr_size);
    if (err == TKC_ERR_OK)
        err = wput(run, fixed, BODY_FIXED, errstr, errstr_size);
    if (err == TKC_ERR_OK && row->key_len)
        err = wput(run, row->key, row->key_len, errstr, errstr_size);
    if (err == TKC_ERR_OK && row->value_len)
        err = wput(run, row->value, row->value_len, errstr, errstr_size);
    if (err == TKC_ERR_OK && row->old_value_len)
        err = wput(run, row->old_value, row->old_value_len, errstr, errstr_size);
    if (err != TKC_ERR_OK)
        return err;
    run->rows++;
    run->written += REC_HEAD + body;
    return TKC_ERR_OK;
}

tkc_err_t tkc_spill_run_finish(tkc_spill_run_t *run, size_t read_buffer, char *errstr,
                               size_t errstr_size)
{
    if (run->reading)
        return TKC_ERR_OK;
    tkc_err_t err = wflush(run, errstr, errstr_size);
    if (err != TKC_ERR_OK)
        return err;
    tkc_free(run->wbuf);
    run->wbuf = NULL;
    run->wcap = 0;
    run->rcap = read_buffer ? read_buffer : DEFAULT_READ_BUFFER;
    run->rbuf = tkc_malloc(run->rcap);
    run->reading = true;
    return TKC_ERR_OK;
}

/* Reads exactly len bytes at off into dst. */
static tkc_err_t pread_all(tkc_spill_run_t *run, uint8_t *dst, size_t len, uint64_t off,
                           char *errstr, size_t errstr_size)
{
    while (len) {
        ssize_t r = pread(run->fd, dst, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            tkc_err_set(errstr, errstr_size, "spill read failed: %s", strerror(errno));
            return TKC_ERR_IO;
        }
        if (r == 0) {
            tkc_err_set(errstr, errstr_size, "spill file truncated at offset %llu",
                    (unsigned long long)off);
            return TKC_ERR_CORRUPT;
        }
        dst += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return TKC_ERR_OK;
}

/*
 * Makes [off, off + len) available and returns a pointer to it: from the
 * read buffer when it fits there, else from the scratch buffer.
 */
static tkc_err_t fetch(tkc_spill_run_t *run, uint64_t off, size_t len, const uint8_t **out,
                       char *errstr, size_t errstr_size)
{
    if (off >= run->rbuf_off && off + len <= run->rbuf_off + run->rlen) {
        *out = run->rbuf + (off - run->rbuf_off);
        return TKC_ERR_OK;
    }
    if (len <= run->rcap) {
        uint64_t left = run->written - off;
        size_t n = left < run->rcap ? (size_t)left : run->rcap;
        if (n < len) {
            tkc_err_set(errstr, errstr_size, "spill record runs past the end of the file");
            return TKC_ERR_CORRUPT;
        }
        tkc_err_t err = pread_all(run, run->rbuf, n, off, errstr, errstr_size);
        if (err != TKC_ERR_OK)
            return err;
        run->rbuf_off = off;
        run->rlen = n;
        *out = run->rbuf;
        return TKC_ERR_OK;
    }
    if (off + len > run->written) {
        tkc_err_set(errstr, errstr_size, "spill record runs past the end of the file");
        return TKC_ERR_CORRUPT;
    }
    if (run->scratch_cap < len) {
        tkc_free(run->scratch);
        run->scratch = tkc_malloc(len);
        run->scratch_cap = len;
    }
    tkc_err_t err = pread_all(run, run->scratch, len, off, errstr, errstr_size);
    if (err != TKC_ERR_OK)
        return err;
    *out = run->scratch;
    return TKC_ERR_OK;
}

static uint16_t get_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Gives the consumed prefix back to the file system, in big aligned steps. */
static void punch_consumed(tkc_spill_run_t *run)
{
#ifdef FALLOC_FL_PUNCH_HOLE
    if (!run->punch_ok)
        return;
    uint64_t upto = run->roff & ~(uint64_t)(PUNCH_ALIGN - 1);
    if (upto < run->punched + PUNCH_STEP)
        return;
    if (fallocate(run->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)run->punched,
                  (off_t)(upto - run->punched)) == 0)
        run->punched = upto;
    else
        run->punch_ok = false; /* e.g. EOPNOTSUPP: the space returns at close */
#else
    (void)run;
#endif
}

tkc_err_t tkc_spill_run_read(tkc_spill_run_t *run, tkc_row_t **out, uint64_t *seq_out,
                             char *errstr, size_t errstr_size)
{
    *out = NULL;
    if (!run->reading) {
        tkc_err_set(errstr, errstr_size, "spill run not finished");
        return TKC_ERR_INVALID_ARG;
    }
    if (run->roff >= run->written)
        return TKC_ERR_OK;
    const uint8_t *h;
    tkc_err_t err = fetch(run, run->roff, REC_HEAD, &h, errstr, errstr_size);
    if (err != TKC_ERR_OK)
        return err;
    uint32_t body_len = get_u32(h);
    uint32_t crc_want = get_u32(h + 4);
    if (body_len < BODY_FIXED) {
        tkc_err_set(errstr, errstr_size, "spill record at %llu has a bad length %u",
                (unsigned long long)run->roff, body_len);
        return TKC_ERR_CORRUPT;
    }
    const uint8_t *b;
    err = fetch(run, run->roff + REC_HEAD, body_len, &b, errstr, errstr_size);
    if (err != TKC_ERR_OK)
        return err;
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, b, body_len);
    uint32_t key_len = get_u32(b + BODY_FIXED - 12);
    uint32_t value_len = get_u32(b + BODY_FIXED - 8);
    uint32_t old_len = get_u32(b + BODY_FIXED - 4);
    if ((uint32_t)crc != crc_want ||
        (uint64_t)BODY_FIXED + key_len + value_len + old_len != body_len || get_u16(b + 2)) {
        tkc_err_set(errstr, errstr_size, "spill record at %llu is corrupt (crc or lengths)",
                (unsigned long long)run->roff);
        return TKC_ERR_CORRUPT;
    }
    const uint8_t *key = b + BODY_FIXED;
    tkc_row_t *row = tkc_row_new((tkc_row_op_t)b[0], key, key_len, key + key_len, value_len,
                                 key + key_len + value_len, old_len);
    row->has_old_value = b[1] != 0;
    row->span_index = get_u32(b + 4);
    row->region_id = get_u64(b + 8);
    row->start_ts = get_u64(b + 16);
    row->commit_ts = get_u64(b + 24);
    *seq_out = get_u64(b + 32);
    run->roff += REC_HEAD + body_len;
    punch_consumed(run);
    *out = row;
    return TKC_ERR_OK;
}

uint64_t tkc_spill_run_rows(const tkc_spill_run_t *run)
{
    return run->rows;
}

uint64_t tkc_spill_run_disk_bytes(const tkc_spill_run_t *run)
{
    return run->written - run->punched;
}

uint64_t tkc_spill_run_written_bytes(const tkc_spill_run_t *run)
{
    return run->written;
}

size_t tkc_spill_run_mem_bytes(const tkc_spill_run_t *run)
{
    return sizeof(*run) + run->wcap + run->rcap + run->scratch_cap;
}
