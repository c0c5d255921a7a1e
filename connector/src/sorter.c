/*
 * sorter.c: commit-ts ordering of rows with a memory quota and spill to disk
 * (see sorter.h).
 *
 * Data flow: the pipeline thread adds rows as they arrive from the feed and
 * takes them out, bounded by the feed's resolved ts, to encode and produce.
 *
 * Structure:
 *   memory  a binary min-heap of {commit_ts, seq, row} ordered by
 *           (commit_ts, seq); seq is the arrival number, unique and
 *           increasing, so the order is total and ties on commit_ts keep
 *           arrival order. The key is copied into the entry so that sifting
 *           compares within the index array and never touches the rows: with
 *           tens of thousands of rows buffered, a dereference per comparison
 *           was a cache miss per level and the largest single cost of the
 *           release path (perf: ~10% of the connector at 100k rows/s).
 *           Pops sift the hole down to a leaf along the smaller children and
 *           then the last entry up (Floyd): the last entry is usually one of
 *           the newest rows, so it would sink to the bottom anyway and this
 *           halves the comparisons.
 *   runs    spill files, each a sorted sequence written in one go from the
 *           whole heap (qsort of the heap array, then append in order). Each
 *           run keeps its next row decoded ("head"); the runs form a second
 *           min-heap ordered by their heads' keys, so picking the next row
 *           is O(1) and advancing a run O(log runs), however many runs the
 *           disk budget allows (budget / quota: a thousand with the
 *           defaults).
 *   next()  the smaller of the memory heap top and the run heap top is taken
 *           if its commit_ts <= bound. This is the k-way merge, done lazily
 *           as rows are released.
 *
 * Why spill the whole heap instead of only what overflows: each run is then
 * about one quota big, so the number of runs, and with it the read buffers
 * the merge holds, is bounded by disk budget / quota, and the merge stays a
 * short scan.
 *
 * Invariants:
 *   - mem_bytes == sum over the heap of (row size + sizeof(entry));
 *   - every run has a head unless it is exhausted, and exhausted runs are
 *     destroyed at once (their files vanish with them);
 *   - rows leave in non-decreasing (commit_ts, seq) order for any sequence
 *     of next() calls with non-decreasing bounds, provided no row with a
 *     commit_ts <= a bound already used is added later (the feed's ordering
 *     contract; the pipeline counts violations as late rows).
 */
#include "sorter.h"
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spill.h"
#include "util/mem.h"

typedef struct entry_s {
    uint64_t ts; /* row->commit_ts, copied: see "Structure" */
    uint64_t seq;
    tkc_row_t *row;
} entry_t;

typedef struct run_s {
    tkc_spill_run_t *run;
    tkc_row_t *head;
    uint64_t head_ts; /* head->commit_ts */
    uint64_t head_seq;
    uint64_t left; /* rows not yet taken, head included */
} run_t;

struct tkc_sorter_s {
    size_t quota;
    uint64_t disk_budget;
    char *spill_dir;
    size_t read_buffer;

    entry_t *heap;
    size_t n, cap;
    size_t mem_bytes;
    uint64_t heap_spill_bytes; /* what the heap would take in a run file */

    run_t *runs;
    size_t n_runs, runs_cap;

    uint64_t next_seq;
    uint64_t spilled_rows_total, spilled_bytes_total, runs_total, forced_adds;
};

static inline int key_cmp(uint64_t ats, uint64_t aseq, uint64_t bts, uint64_t bseq)
{
    if (ats != bts)
        return ats < bts ? -1 : 1;
    return aseq < bseq ? -1 : aseq > bseq ? 1 : 0;
}

static inline bool entry_less(const entry_t *a, const entry_t *b)
{
    return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq);
}

static int entry_qsort_cmp(const void *pa, const void *pb)
{
    const entry_t *a = pa, *b = pb;
    return key_cmp(a->ts, a->seq, b->ts, b->seq);
}

static inline bool run_less(const run_t *a, const run_t *b)
{
    return a->head_ts < b->head_ts || (a->head_ts == b->head_ts && a->head_seq < b->head_seq);
}

static inline size_t row_mem(const tkc_row_t *row)
{
    return tkc_row_size(row) + sizeof(entry_t);
}

tkc_sorter_t *tkc_sorter_new(const tkc_sorter_config_t *cfg, char *errstr, size_t errstr_size)
{
    (void)errstr;
    (void)errstr_size;
    tkc_sorter_t *s = tkc_calloc(1, sizeof(*s));
    s->quota = cfg->memory_quota ? cfg->memory_quota : TKC_SORTER_MEMORY_QUOTA_DEFAULT;
    s->disk_budget = cfg->disk_budget ? cfg->disk_budget : TKC_SORTER_DISK_BUDGET_DEFAULT;
    s->spill_dir = cfg->spill_dir && *cfg->spill_dir ? tkc_strdup(cfg->spill_dir) : NULL;
    s->read_buffer = cfg->run_read_buffer;
    return s;
}

void tkc_sorter_destroy(tkc_sorter_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        tkc_row_destroy(s->heap[i].row);
    tkc_free(s->heap);
    for (size_t i = 0; i < s->n_runs; i++) {
        tkc_row_destroy(s->runs[i].head);
        tkc_spill_run_destroy(s->runs[i].run);
    }
    tkc_free(s->runs);
    tkc_free(s->spill_dir);
    tkc_free(s);
}

/* ===== heap ===== */

static void heap_push(tkc_sorter_t *s, tkc_row_t *row, uint64_t seq)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->heap = tkc_realloc(s->heap, s->cap * sizeof(entry_t));
    }
    size_t i = s->n++;
    entry_t e = {row->commit_ts, seq, row};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!entry_less(&e, &s->heap[parent]))
            break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = e;
    s->mem_bytes += row_mem(row);
    s->heap_spill_bytes += tkc_spill_record_size(row);
}

static entry_t heap_pop(tkc_sorter_t *s)
{
    entry_t *h = s->heap;
    entry_t top = h[0];
    size_t n = --s->n;
    if (n) {
        /* Floyd: move the hole at the root down to a leaf along the smaller
         * children, then sift the last entry up from there. */
        entry_t last = h[n];
        size_t i = 0;
        for (;;) {
            size_t l = 2 * i + 1;
            if (l >= n)
                break;
            size_t c = l + 1 < n && entry_less(&h[l + 1], &h[l]) ? l + 1 : l;
            h[i] = h[c];
            i = c;
        }
        while (i > 0) {
            size_t parent = (i - 1) / 2;
            if (!entry_less(&last, &h[parent]))
                break;
            h[i] = h[parent];
            i = parent;
        }
        h[i] = last;
    }
    s->mem_bytes -= row_mem(top.row);
    s->heap_spill_bytes -= tkc_spill_record_size(top.row);
    return top;
}

/* ===== runs ===== */

static uint64_t disk_bytes(const tkc_sorter_t *s)
{
    uint64_t b = 0;
    for (size_t i = 0; i < s->n_runs; i++)
        b += tkc_spill_run_disk_bytes(s->runs[i].run);
    return b;
}

/* Restores the run heap below position @p i after its head got larger. */
static void runs_sift_down(tkc_sorter_t *s, size_t i)
{
    run_t *h = s->runs;
    size_t n = s->n_runs;
    run_t x = h[i];
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n)
            break;
        size_t c = l + 1 < n && run_less(&h[l + 1], &h[l]) ? l + 1 : l;
        if (!run_less(&h[c], &x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void runs_push(tkc_sorter_t *s, run_t r)
{
    if (s->n_runs == s->runs_cap) {
        s->runs_cap = s->runs_cap ? s->runs_cap * 2 : 8;
        s->runs = tkc_realloc(s->runs, s->runs_cap * sizeof(run_t));
    }
    size_t i = s->n_runs++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!run_less(&r, &s->runs[parent]))
            break;
        s->runs[i] = s->runs[parent];
        i = parent;
    }
    s->runs[i] = r;
}

/*
 * Replaces the top run's head (taken by the caller) with the run's next row
 * and restores the run heap; drops the run at its end. On a read error
 * nothing changes.
 */
static tkc_err_t runs_advance_top(tkc_sorter_t *s, char *errstr, size_t errstr_size)
{
    run_t *r = &s->runs[0];
    tkc_row_t *head = NULL;
    uint64_t seq = 0;
    tkc_err_t err = tkc_spill_run_read(r->run, &head, &seq, errstr, errstr_size);
    if (err != TKC_ERR_OK)
        return err;
    if (head) {
        r->head = head;
        r->head_ts = head->commit_ts;
        r->head_seq = seq;
        r->left--;
    } else {
        tkc_spill_run_destroy(r->run);
        s->runs[0] = s->runs[--s->n_runs];
        if (!s->n_runs)
            return TKC_ERR_OK;
    }
    runs_sift_down(s, 0);
    return TKC_ERR_OK;
}

/*
 * Writes the whole heap, sorted, into a new run. On failure the heap is
 * left as it was (the partial run file is dropped).
 */
static tkc_err_t spill(tkc_sorter_t *s, char *errstr, size_t errstr_size)
{
    tkc_spill_run_t *run = tkc_spill_run_new(s->spill_dir, 0, errstr, errstr_size);
    if (!run)
        return TKC_ERR_IO;
    /* A sorted array is also a valid min-heap, so a failure below leaves a
     * correct heap behind. */
    qsort(s->heap, s->n, sizeof(entry_t), entry_qsort_cmp);
    tkc_err_t err = TKC_ERR_OK;
    for (size_t i = 0; i < s->n && err == TKC_ERR_OK; i++)
        err = tkc_spill_run_append(run, s->heap[i].row, s->heap[i].seq, errstr, errstr_size);
    if (err == TKC_ERR_OK)
        err = tkc_spill_run_finish(run, s->read_buffer, errstr, errstr_size);
    /* Read the first row back before the heap rows are freed: a run that
     * cannot be read must not have taken anything. */
    tkc_row_t *head = NULL;
    uint64_t head_seq = 0;
    if (err == TKC_ERR_OK)
        err = tkc_spill_run_read(run, &head, &head_seq, errstr, errstr_size);
    if (err == TKC_ERR_OK && !head && s->n) {
        tkc_err_set(errstr, errstr_size, "spill run reads back empty");
        err = TKC_ERR_CORRUPT;
    }
    if (err != TKC_ERR_OK) {
        tkc_row_destroy(head);
        tkc_spill_run_destroy(run);
        return err;
    }
    s->spilled_rows_total += s->n;
    s->spilled_bytes_total += tkc_spill_run_written_bytes(run);
    s->runs_total++;
    for (size_t i = 0; i < s->n; i++)
        tkc_row_destroy(s->heap[i].row);
    uint64_t nrows = s->n;
    s->n = 0;
    s->mem_bytes = 0;
    s->heap_spill_bytes = 0;
    /* Give the index array back too, or a burst would pin its peak size. */
    tkc_free(s->heap);
    s->heap = NULL;
    s->cap = 0;
    if (!head) {
        tkc_spill_run_destroy(run);
        return TKC_ERR_OK;
    }
    runs_push(s, (run_t){.run = run,
                         .head = head,
                         .head_ts = head->commit_ts,
                         .head_seq = head_seq,
                         .left = nrows});
    return TKC_ERR_OK;
}

/* ===== API ===== */

static bool fits_memory(const tkc_sorter_t *s, size_t need)
{
    return s->n == 0 || s->mem_bytes + need <= s->quota;
}

static bool spill_fits_disk(const tkc_sorter_t *s)
{
    return s->spill_dir && disk_bytes(s) + s->heap_spill_bytes <= s->disk_budget;
}

bool tkc_sorter_has_room(const tkc_sorter_t *s, size_t bytes)
{
    return fits_memory(s, bytes + sizeof(entry_t)) || spill_fits_disk(s);
}

tkc_err_t tkc_sorter_add(tkc_sorter_t *s, tkc_row_t *row, bool force, char *errstr,
                         size_t errstr_size)
{
    if (!fits_memory(s, row_mem(row))) {
        if (spill_fits_disk(s) || (force && s->spill_dir)) {
            if (!spill_fits_disk(s))
                s->forced_adds++;
            tkc_err_t err = spill(s, errstr, errstr_size);
            if (err != TKC_ERR_OK)
                return err;
        } else if (force) {
            s->forced_adds++; /* no spill directory: grow memory instead */
        } else {
            return TKC_ERR_QUEUE_FULL;
        }
    }
    row->next = NULL;
    heap_push(s, row, s->next_seq++);
    return TKC_ERR_OK;
}

tkc_err_t tkc_sorter_next(tkc_sorter_t *s, uint64_t bound, tkc_row_t **out, char *errstr,
                          size_t errstr_size)
{
    *out = NULL;
    const entry_t *m = s->n ? &s->heap[0] : NULL;
    run_t *r = s->n_runs ? &s->runs[0] : NULL;
    if (r && m && key_cmp(m->ts, m->seq, r->head_ts, r->head_seq) < 0)
        r = NULL; /* the memory heap's top comes first */
    if (!r) {
        if (m && m->ts <= bound)
            *out = heap_pop(s).row;
        return TKC_ERR_OK;
    }
    if (r->head_ts > bound)
        return TKC_ERR_OK;
    tkc_row_t *row = r->head;
    /* Advance first: on a read error the head stays where it is, so the
     * state is consistent and the next call reports the error again instead
     * of skipping a row. */
    tkc_err_t err = runs_advance_top(s, errstr, errstr_size);
    if (err != TKC_ERR_OK)
        return err;
    *out = row;
    return TKC_ERR_OK;
}

uint64_t tkc_sorter_min_commit_ts(const tkc_sorter_t *s)
{
    uint64_t m = s->n ? s->heap[0].ts : UINT64_MAX;
    if (s->n_runs && s->runs[0].head_ts < m)
        m = s->runs[0].head_ts;
    return m;
}

uint64_t tkc_sorter_count(const tkc_sorter_t *s)
{
    uint64_t c = s->n;
    for (size_t i = 0; i < s->n_runs; i++)
        c += s->runs[i].left;
    return c;
}

void tkc_sorter_stats(const tkc_sorter_t *s, tkc_sorter_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->mem_rows = s->n;
    out->mem_bytes = s->mem_bytes;
    out->memory_quota = s->quota;
    out->overhead_bytes = (s->cap - s->n) * sizeof(entry_t) + s->runs_cap * sizeof(run_t);
    for (size_t i = 0; i < s->n_runs; i++) {
        out->disk_rows += s->runs[i].left;
        out->overhead_bytes += tkc_spill_run_mem_bytes(s->runs[i].run);
        if (s->runs[i].head)
            out->overhead_bytes += tkc_row_size(s->runs[i].head);
    }
    out->rows = out->mem_rows + out->disk_rows;
    out->disk_bytes = disk_bytes(s);
    out->disk_budget = s->disk_budget;
    out->runs = s->n_runs;
    out->spilled_rows_total = s->spilled_rows_total;
    out->spilled_bytes_total = s->spilled_bytes_total;
    out->runs_total = s->runs_total;
    out->forced_adds = s->forced_adds;
}
