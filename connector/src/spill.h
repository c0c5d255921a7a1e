/*
 * spill.h: sorted runs of rows on local disk, for the sorter's overflow.
 *
 * A run is written once, front to back, with rows already in sort order,
 * then read once, front to back, while the sorter merges it with its other
 * runs and its in-memory rows. Each run is an anonymous file in the spill
 * directory: created, then unlinked at once, so a crash or kill leaves no
 * garbage behind and the disk space returns when the run is destroyed.
 * While a run is read, the consumed prefix is given back to the file system
 * (hole punching) in big steps, so disk use shrinks as rows are released.
 *
 * Record format (native byte order; the file never outlives the process):
 *   u32 body_len | u32 crc32(body) | body
 *   body = u8 op | u8 has_old | u16 0 | u32 span_index | u64 region_id |
 *          u64 start_ts | u64 commit_ts | u64 seq | u32 key_len |
 *          u32 value_len | u32 old_len | key | value | old value
 * The CRC turns a short read or a bad sector into TKC_ERR_CORRUPT instead of
 * a wrong row.
 *
 * Thread: one owner at a time (the pipeline thread); no locks.
 */
#ifndef TKC_SPILL_H
#define TKC_SPILL_H

#include <stddef.h>
#include <stdint.h>

#include "row.h"
#include "util/err.h"

typedef struct tkc_spill_run_s tkc_spill_run_t;

/**
 * @brief Creates an empty run file in @p dir, open for appending.
 * @param write_buffer bytes buffered before a write(2); 0: 256 KiB.
 * @returns the run (free with tkc_spill_run_destroy()) or NULL with @p errstr.
 * @locality pipeline thread
 */
tkc_spill_run_t *tkc_spill_run_new(const char *dir, size_t write_buffer, char *errstr,
                                   size_t errstr_size);

/** Closes the run's file (its blocks are freed) and frees the run. NULL is a no-op. */
void tkc_spill_run_destroy(tkc_spill_run_t *run);

/**
 * @brief Appends @p row with arrival sequence @p seq. Rows must be appended
 *        in the order they are to be read back.
 * @param row borrowed: the caller still owns and frees it.
 * @returns TKC_ERR_OK or TKC_ERR_IO (errstr says why; the run is then unusable).
 * @locality pipeline thread
 */
tkc_err_t tkc_spill_run_append(tkc_spill_run_t *run, const tkc_row_t *row, uint64_t seq,
                               char *errstr, size_t errstr_size);

/**
 * @brief Flushes the write buffer and switches the run to reading.
 * @param read_buffer bytes read per read(2); 0: 64 KiB.
 * @returns TKC_ERR_OK or TKC_ERR_IO.
 * @locality pipeline thread
 */
tkc_err_t tkc_spill_run_finish(tkc_spill_run_t *run, size_t read_buffer, char *errstr,
                               size_t errstr_size);

/**
 * @brief Reads the next row of a finished run.
 * @param out receives a new row (owned by the caller, tkc_row_destroy()) or
 *            NULL at the end of the run.
 * @param seq_out receives its arrival sequence.
 * @returns TKC_ERR_OK, TKC_ERR_IO or TKC_ERR_CORRUPT.
 * @locality pipeline thread
 */
tkc_err_t tkc_spill_run_read(tkc_spill_run_t *run, tkc_row_t **out, uint64_t *seq_out,
                             char *errstr, size_t errstr_size);

/** Rows appended to the run in total. */
uint64_t tkc_spill_run_rows(const tkc_spill_run_t *run);
/** Bytes of the file still allocated on disk (written minus given back). */
uint64_t tkc_spill_run_disk_bytes(const tkc_spill_run_t *run);
/** Bytes written in total (the record format's size of all its rows). */
uint64_t tkc_spill_run_written_bytes(const tkc_spill_run_t *run);
/** Bytes of memory the run holds (its buffers), for overhead accounting. */
size_t tkc_spill_run_mem_bytes(const tkc_spill_run_t *run);

/** Bytes one row takes in a run file. */
size_t tkc_spill_record_size(const tkc_row_t *row);

#endif
