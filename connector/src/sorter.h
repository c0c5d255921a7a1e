/*
 * sorter.h: buffers committed rows until the feed's resolved ts covers them
 * and hands them out in (commit_ts, arrival) order (architecture invariant 2).
 *
 * Rows enter in arrival order (tkc_sorter_add) and leave in commit-ts order
 * (tkc_sorter_next with a bound, normally the feed's resolved ts). Ties on
 * commit_ts keep arrival order, so two changes of one key with the same
 * commit ts (which TiKV does not produce, but a replay may) and, more
 * importantly, changes of one key at increasing commit ts always come out in
 * the order they must reach their Kafka partition.
 *
 * Memory: rows in memory are bounded by a quota (default 512 MiB). When a
 * new row does not fit, the rows in memory are sorted and written to a run
 * file in the spill directory (spill.h) and memory starts empty again; on
 * release, the runs and the rows in memory are merged (k-way, by the same
 * key). So a transaction several times the quota passes with memory near
 * the quota plus one read buffer per run. The spill files are bounded by a
 * disk budget; when a spill would exceed it, tkc_sorter_add() refuses the
 * row and the caller applies flow control (see pipeline.c for why that
 * cannot deadlock, and the `force` escape it uses).
 *
 * Thread: one owner (the pipeline thread); no locks.
 */
#ifndef TKC_SORTER_H
#define TKC_SORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "row.h"
#include "util/err.h"

#define TKC_SORTER_MEMORY_QUOTA_DEFAULT ((size_t)512 * 1024 * 1024)
#define TKC_SORTER_DISK_BUDGET_DEFAULT ((uint64_t)16 * 1024 * 1024 * 1024)

typedef struct tkc_sorter_s tkc_sorter_t;

typedef struct tkc_sorter_config_s {
    /* bytes of rows (tkc_row_size plus a 24-byte index entry each) held in
     * memory before spilling; 0: TKC_SORTER_MEMORY_QUOTA_DEFAULT */
    size_t memory_quota;
    /* directory for run files; NULL or "": never spill (the quota is then
     * the only budget) */
    const char *spill_dir;
    /* bytes of run files on disk; 0: TKC_SORTER_DISK_BUDGET_DEFAULT */
    uint64_t disk_budget;
    /* read buffer per run while merging; 0: 64 KiB */
    size_t run_read_buffer;
} tkc_sorter_config_t;

typedef struct tkc_sorter_stats_s {
    uint64_t rows;              /* rows held, memory and disk */
    uint64_t mem_rows;
    size_t mem_bytes;           /* against the memory quota */
    size_t memory_quota;
    size_t overhead_bytes;      /* index array, run buffers, run heads */
    uint64_t disk_rows;         /* rows in run files not read back yet */
    uint64_t disk_bytes;        /* run file bytes still on disk */
    uint64_t disk_budget;
    size_t runs;                /* live run files */
    uint64_t spilled_rows_total;
    uint64_t spilled_bytes_total;
    uint64_t runs_total;
    uint64_t forced_adds;       /* rows taken beyond the budgets (force) */
} tkc_sorter_stats_t;

/**
 * @brief Creates a sorter.
 * @param cfg borrowed; spill_dir is copied. The directory must exist.
 * @returns the sorter (free with tkc_sorter_destroy()) or NULL with @p errstr.
 * @locality pipeline thread
 */
tkc_sorter_t *tkc_sorter_new(const tkc_sorter_config_t *cfg, char *errstr, size_t errstr_size);

/** Frees the sorter, every row it still holds and its run files. NULL is a no-op. */
void tkc_sorter_destroy(tkc_sorter_t *s);

/**
 * @brief Takes @p row; its arrival position is the order of the calls.
 *
 * A row always fits into an empty memory buffer, whatever its size, so one
 * huge row cannot wedge the sorter. Otherwise a row that does not fit makes
 * the sorter spill its memory to a new run file, if the disk budget allows
 * it (or @p force is set: then the budget is exceeded and counted in
 * forced_adds).
 *
 * @param row ownership moves to the sorter on TKC_ERR_OK only.
 * @returns TKC_ERR_OK; TKC_ERR_QUEUE_FULL when memory and disk budget are
 *          exhausted (nothing happened, the caller keeps the row); or
 *          TKC_ERR_IO when a spill failed (errstr; the caller keeps the row,
 *          the rows in memory are kept too).
 * @locality pipeline thread
 */
tkc_err_t tkc_sorter_add(tkc_sorter_t *s, tkc_row_t *row, bool force, char *errstr,
                         size_t errstr_size);

/** True when a row of @p bytes would be taken without force right now. */
bool tkc_sorter_has_room(const tkc_sorter_t *s, size_t bytes);

/**
 * @brief Takes out the next row in (commit_ts, arrival) order if its
 *        commit_ts <= @p bound.
 * @param out receives the row (ownership to the caller) or NULL when the
 *            sorter holds no row <= bound.
 * @returns TKC_ERR_OK, or TKC_ERR_IO / TKC_ERR_CORRUPT when a run file could
 *          not be read back (errstr; the sorter should then be abandoned).
 * @locality pipeline thread
 */
tkc_err_t tkc_sorter_next(tkc_sorter_t *s, uint64_t bound, tkc_row_t **out, char *errstr,
                          size_t errstr_size);

/** The smallest commit_ts held, UINT64_MAX when empty. O(1). */
uint64_t tkc_sorter_min_commit_ts(const tkc_sorter_t *s);

/** Rows held (memory and disk). */
uint64_t tkc_sorter_count(const tkc_sorter_t *s);

void tkc_sorter_stats(const tkc_sorter_t *s, tkc_sorter_stats_t *out);

#endif
