/*
 * row_dedup.h: drops a second copy of the same change (key, commit_ts) as
 * rows leave the sorter.
 *
 * Why copies exist. When a region is re-subscribed (store restart, leader
 * move, stream error), TiKV's incremental scan re-sends every change above
 * the start ts of the new subscription, which is the range's resolved ts.
 * Changes the pipeline had already received but not released yet (they are
 * above the feed's resolved ts) then sit in the sorter twice. Nothing
 * released can be re-sent: a released row is <= the feed's resolved ts <=
 * every range's resolved ts. So both copies are still buffered, and the
 * sorter hands them out in the same commit_ts group (rows of one commit_ts
 * leave together, in arrival order). Remembering the keys of the current
 * commit_ts group is therefore enough to catch every such copy; no history
 * across groups is kept.
 *
 * Exact, never lossy: a key hash only narrows the search; a copy is declared
 * only when the span and the full key bytes are equal. A distinct row is
 * never dropped.
 *
 * Which copy is kept: the first one. Ties on commit_ts keep arrival order
 * (sorter.h), so the first copy is the one that arrived first, and for one
 * key the copies of one commit_ts are one change: TiKV writes at most one
 * version of a key per commit_ts. If the copies differ anyway (they should
 * not), the verdict says so (TKC_ROW_DEDUP_CONFLICT) and the caller still
 * keeps only the first, after a warning. The content comparison is a
 * diagnostic, so it is cheap: op, start_ts, has_old_value, the lengths, and
 * the first and last 8 bytes of value and old value (hashed);
 * copies differing only in the middle of a long value pass as identical
 * (the output is the same either way: the first copy).
 *
 * Memory: per remembered row, its key bytes + its 4-byte span index + a
 * 24-byte entry + two to four 8-byte hash slots (the table doubles at half
 * load): about key length + 45 to 60 bytes, in buffers reused from group to
 * group (no allocation per row once they have grown). Every allocation is
 * counted against @p memory_limit (plus about 1 KiB of initial buffers). A
 * group whose keys would need more stops being remembered from that row on:
 * later rows of that group are still checked against the keys already
 * remembered, but are not remembered themselves (verdict
 * TKC_ROW_DEDUP_UNTRACKED, counted), so a copy of one of those rows passes
 * through (delivered twice; never a row lost). That takes a single commit_ts
 * group (one transaction) of more than about memory_limit / (key length +
 * 75) rows (allocation runs ahead of use while buffers double), e.g. about
 * 500,000 rows of 50-byte keys with the pipeline's
 * default of 64 MiB, that is also re-sent by a re-subscription while still
 * unreleased. When a new group starts, buffers that grew beyond 256 KiB are
 * freed, so a huge transaction does not leave its memory behind.
 *
 * Thread: one owner (the pipeline thread); no locks.
 */
#ifndef TKC_ROW_DEDUP_H
#define TKC_ROW_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "row.h"

/** Default memory limit of the remembered keys of one commit_ts group. */
#define TKC_ROW_DEDUP_MEMORY_DEFAULT ((size_t)64 * 1024 * 1024)

typedef struct tkc_row_dedup_s tkc_row_dedup_t;

typedef enum {
    TKC_ROW_DEDUP_NEW = 0,    /* first of its (key, commit_ts): keep; remembered */
    TKC_ROW_DEDUP_DUPLICATE,  /* an identical copy of an earlier row: drop */
    TKC_ROW_DEDUP_CONFLICT,   /* same (key, commit_ts), different content: drop, warn */
    TKC_ROW_DEDUP_UNTRACKED,  /* new, but the group is over the memory limit: keep */
} tkc_row_dedup_verdict_t;

typedef struct tkc_row_dedup_stats_s {
    uint64_t rows;             /* rows checked */
    uint64_t duplicates;       /* DUPLICATE verdicts */
    uint64_t conflicts;        /* CONFLICT verdicts */
    uint64_t untracked;        /* UNTRACKED verdicts */
    uint64_t groups_overflowed; /* groups that hit the memory limit */
    size_t bytes;              /* allocated now */
    size_t memory_limit;
} tkc_row_dedup_stats_t;

/**
 * @param memory_limit bytes for the keys of one group (see above);
 *        0: TKC_ROW_DEDUP_MEMORY_DEFAULT.
 * @locality pipeline thread
 */
tkc_row_dedup_t *tkc_row_dedup_new(size_t memory_limit);

/** NULL is a no-op. */
void tkc_row_dedup_destroy(tkc_row_dedup_t *d);

/**
 * @brief Judges the next released row. Rows must come in release order;
 *        a row whose commit_ts differs from the previous row's starts a new
 *        group (the keys remembered so far are forgotten).
 * @param row borrowed; nothing of it is kept but a copy of its key.
 * @locality pipeline thread
 */
tkc_row_dedup_verdict_t tkc_row_dedup_check(tkc_row_dedup_t *d, const tkc_row_t *row);

/** Forgets the current group (and frees grown buffers). */
void tkc_row_dedup_reset(tkc_row_dedup_t *d);

void tkc_row_dedup_stats(const tkc_row_dedup_t *d, tkc_row_dedup_stats_t *out);

/** "NEW", "DUPLICATE", "CONFLICT", "UNTRACKED". */
const char *tkc_row_dedup_verdict_name(tkc_row_dedup_verdict_t v);

#endif
