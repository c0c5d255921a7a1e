/*
 * check_sorter.c: the sorter (connector/src/sorter.h) and its spill runs
 * (spill.h): release order, release boundaries, spill + k-way merge under a
 * tiny memory quota, the disk budget, and that spilled rows come back intact.
 *
 * A reference model (all rows ever added, sorted by (commit_ts, arrival))
 * says what each release must return.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sorter.h"
#include "spill.h"
#include "unit/check_main.h"
#include "util/mem.h"

static char spill_dir[256];

static void setup_dir(void)
{
    snprintf(spill_dir, sizeof(spill_dir), "/tmp/tkc-check-sorter-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(spill_dir));
}

static void teardown_dir(void)
{
    /* run files are anonymous: nothing may be left in the directory */
    ck_assert_int_eq(rmdir(spill_dir), 0);
}

/* One row; its payload encodes (key id, serial) so it can be checked. */
static tkc_row_t *mk_row(unsigned key, uint64_t commit_ts, unsigned serial, size_t value_len)
{
    char k[32];
    int kl = snprintf(k, sizeof(k), "key-%05u", key);
    uint8_t *v = tkc_malloc(value_len + 1);
    for (size_t i = 0; i < value_len; i++)
        v[i] = (uint8_t)(serial + i);
    char old[32];
    int ol = snprintf(old, sizeof(old), "old-%u", serial);
    tkc_row_t *r = tkc_row_new(serial % 5 == 0 ? TKC_ROW_OP_DELETE : TKC_ROW_OP_PUT,
                               (const uint8_t *)k, (size_t)kl, v, value_len,
                               (const uint8_t *)old, (size_t)ol);
    tkc_free(v);
    r->commit_ts = commit_ts;
    r->start_ts = commit_ts - 1;
    r->region_id = 1000 + key % 7;
    r->span_index = key % 3;
    r->has_old_value = serial % 2 == 0;
    return r;
}

typedef struct {
    unsigned key;
    uint64_t commit_ts;
    unsigned serial; /* arrival order */
    size_t value_len;
} ref_t;

static int ref_cmp(const void *a, const void *b)
{
    const ref_t *x = a, *y = b;
    if (x->commit_ts != y->commit_ts)
        return x->commit_ts < y->commit_ts ? -1 : 1;
    return x->serial < y->serial ? -1 : x->serial > y->serial;
}

/* Checks every field of @p r against the reference entry. */
static void check_row(const tkc_row_t *r, const ref_t *e)
{
    char k[32];
    int kl = snprintf(k, sizeof(k), "key-%05u", e->key);
    ck_assert_uint_eq(r->key_len, (size_t)kl);
    ck_assert_int_eq(memcmp(r->key, k, (size_t)kl), 0);
    ck_assert_uint_eq(r->commit_ts, e->commit_ts);
    ck_assert_uint_eq(r->start_ts, e->commit_ts - 1);
    ck_assert_uint_eq(r->region_id, 1000 + e->key % 7);
    ck_assert_uint_eq(r->span_index, e->key % 3);
    ck_assert_int_eq(r->op, e->serial % 5 == 0 ? TKC_ROW_OP_DELETE : TKC_ROW_OP_PUT);
    ck_assert_int_eq(r->has_old_value, e->serial % 2 == 0);
    ck_assert_uint_eq(r->value_len, e->value_len);
    size_t bad = SIZE_MAX;
    for (size_t i = 0; i < e->value_len && bad == SIZE_MAX; i++)
        if (r->value[i] != (uint8_t)(e->serial + i))
            bad = i;
    ck_assert_msg(bad == SIZE_MAX, "value byte %zu differs", bad);
    char old[32];
    int ol = snprintf(old, sizeof(old), "old-%u", e->serial);
    ck_assert_uint_eq(r->old_value_len, (size_t)ol);
    ck_assert_int_eq(memcmp(r->old_value, old, (size_t)ol), 0);
}

/*
 * Drives a sorter with @p n random rows and interleaved partial releases at
 * increasing bounds, like the pipeline: a release bound B is only used once
 * every row <= B was added, and later rows are > B. Checks order and content.
 */
static void run_model(tkc_sorter_t *s, unsigned n, unsigned nkeys, size_t max_value,
                      unsigned seed)
{
    srand(seed);
    ref_t *all = tkc_calloc(n, sizeof(*all));
    ref_t *pending = tkc_calloc(n, sizeof(*pending));
    size_t npending = 0, nall = 0;
    uint64_t bound = 100;
    unsigned serial = 0;
    char e[256];
    while (serial < n || npending) {
        /* add a burst of rows above the current bound */
        unsigned burst = (unsigned)(rand() % 200);
        for (unsigned i = 0; i < burst && serial < n; i++, serial++) {
            ref_t r = {
                .key = (unsigned)rand() % nkeys,
                .commit_ts = bound + 1 + (uint64_t)(rand() % 50),
                .serial = serial,
                .value_len = (size_t)(rand() % (int)(max_value + 1)),
            };
            all[nall++] = r;
            pending[npending++] = r;
            tkc_row_t *row = mk_row(r.key, r.commit_ts, r.serial, r.value_len);
            ck_assert_int_eq(tkc_sorter_add(s, row, false, e, sizeof(e)), TKC_ERR_OK);
        }
        /* release up to a new bound */
        bound += (uint64_t)(rand() % 40);
        if (serial >= n)
            bound = UINT64_MAX - 1;
        qsort(pending, npending, sizeof(*pending), ref_cmp);
        size_t i = 0;
        for (;;) {
            tkc_row_t *row = NULL;
            ck_assert_int_eq(tkc_sorter_next(s, bound, &row, e, sizeof(e)), TKC_ERR_OK);
            if (!row)
                break;
            ck_assert_uint_lt(i, npending);
            ck_assert_uint_le(row->commit_ts, bound);
            check_row(row, &pending[i]);
            i++;
            tkc_row_destroy(row);
        }
        /* everything <= bound came out, nothing above it */
        ck_assert(i == npending || pending[i].commit_ts > bound);
        memmove(pending, pending + i, (npending - i) * sizeof(*pending));
        npending -= i;
        ck_assert_uint_eq(tkc_sorter_count(s), npending);
        ck_assert_uint_eq(tkc_sorter_min_commit_ts(s),
                          npending ? pending[0].commit_ts : UINT64_MAX);
    }
    tkc_free(all);
    tkc_free(pending);
}

START_TEST(test_sorter_order_ties_by_arrival)
{
    tkc_sorter_config_t cfg = {0};
    tkc_sorter_t *s = tkc_sorter_new(&cfg, NULL, 0);
    /* one key changed three times at the same commit ts, plus others */
    uint64_t ts[] = {30, 10, 20, 10, 30, 10, 20};
    unsigned key[] = {1, 2, 1, 2, 1, 2, 3};
    for (unsigned i = 0; i < 7; i++)
        ck_assert_int_eq(tkc_sorter_add(s, mk_row(key[i], ts[i], i, 4), false, NULL, 0),
                         TKC_ERR_OK);
    unsigned want[] = {1, 3, 5, 2, 6, 0, 4}; /* (ts, arrival) order */
    for (unsigned i = 0; i < 7; i++) {
        tkc_row_t *r = NULL;
        ck_assert_int_eq(tkc_sorter_next(s, 100, &r, NULL, 0), TKC_ERR_OK);
        ck_assert_ptr_nonnull(r);
        ref_t e = {key[want[i]], ts[want[i]], want[i], 4};
        check_row(r, &e);
        tkc_row_destroy(r);
    }
    tkc_row_t *r = NULL;
    ck_assert_int_eq(tkc_sorter_next(s, 100, &r, NULL, 0), TKC_ERR_OK);
    ck_assert_ptr_null(r);
    tkc_sorter_destroy(s);
}
END_TEST

START_TEST(test_sorter_release_boundaries)
{
    tkc_sorter_config_t cfg = {0};
    tkc_sorter_t *s = tkc_sorter_new(&cfg, NULL, 0);
    for (unsigned i = 0; i < 3; i++)
        tkc_sorter_add(s, mk_row(i, 10 * (i + 1), i, 1), false, NULL, 0);
    tkc_row_t *r = NULL;
    ck_assert_int_eq(tkc_sorter_next(s, 9, &r, NULL, 0), TKC_ERR_OK);
    ck_assert_ptr_null(r); /* nothing <= 9 */
    ck_assert_int_eq(tkc_sorter_next(s, 10, &r, NULL, 0), TKC_ERR_OK);
    ck_assert_ptr_nonnull(r); /* the bound is inclusive */
    ck_assert_uint_eq(r->commit_ts, 10);
    tkc_row_destroy(r);
    ck_assert_int_eq(tkc_sorter_next(s, 19, &r, NULL, 0), TKC_ERR_OK);
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(tkc_sorter_min_commit_ts(s), 20);
    ck_assert_uint_eq(tkc_sorter_count(s), 2);
    ck_assert_int_eq(tkc_sorter_next(s, 30, &r, NULL, 0), TKC_ERR_OK);
    ck_assert_uint_eq(r->commit_ts, 20);
    tkc_row_destroy(r);
    ck_assert_int_eq(tkc_sorter_next(s, 30, &r, NULL, 0), TKC_ERR_OK);
    ck_assert_uint_eq(r->commit_ts, 30);
    tkc_row_destroy(r);
    ck_assert_uint_eq(tkc_sorter_count(s), 0);
    ck_assert_uint_eq(tkc_sorter_min_commit_ts(s), UINT64_MAX);
    tkc_sorter_destroy(s);
}
END_TEST

START_TEST(test_sorter_model_in_memory)
{
    tkc_sorter_config_t cfg = {0};
    tkc_sorter_t *s = tkc_sorter_new(&cfg, NULL, 0);
    run_model(s, 20000, 50, 64, 1);
    tkc_sorter_stats_t st;
    tkc_sorter_stats(s, &st);
    ck_assert_uint_eq(st.spilled_rows_total, 0);
    tkc_sorter_destroy(s);
}
END_TEST

START_TEST(test_sorter_spill_merge_tiny_quota)
{
    /* 16 KiB quota: thousands of rows force many runs, merged on release */
    tkc_sorter_config_t cfg = {.memory_quota = 16 * 1024, .spill_dir = spill_dir};
    tkc_sorter_t *s = tkc_sorter_new(&cfg, NULL, 0);
    run_model(s, 20000, 50, 300, 2);
    tkc_sorter_stats_t st;
    tkc_sorter_stats(s, &st);
    ck_assert_uint_gt(st.spilled_rows_total, 10000);
    ck_assert_uint_gt(st.runs_total, 10);
    ck_assert_uint_eq(st.runs, 0);       /* exhausted runs are gone */
    ck_assert_uint_eq(st.disk_bytes, 0); /* and their space with them */
    ck_assert_uint_eq(st.forced_adds, 0);
    tkc_sorter_destroy(s);
}
END_TEST

START_TEST(test_sorter_memory_stays_under_quota)
{
    const size_t quota = 64 * 1024;
    tkc_sorter_config_t cfg = {.memory_quota = quota, .spill_dir = spill_dir};
    tkc_sorter_t *s = tkc_sorter_new(&cfg, NULL, 0);
    /* one "transaction" 20x the quota, all at one commit ts */
    size_t total = 0;
    unsigned i = 0;
    while (total < 20 * quota) {
        tkc_row_t *r = mk_row(i % 100, 500, i, 1000);
        total += tkc_row_size(r);
        ck_assert_int_eq(tkc_sorter_add(s, r, false, NULL, 0), TKC_ERR_OK);
        tkc_sorter_stats_t st;
        tkc_sorter_stats(s, &st);
        ck_assert_uint_le(st.mem_bytes, quota);
        i++;
    }
    /* released whole and in arrival order (all share one commit ts) */
    for (unsigned j = 0; j < i; j++) {
        tkc_row_t *r = NULL;
        ck_assert_int_eq(tkc_sorter_next(s, 500, &r, NULL, 0), TKC_ERR_OK);
        ck_assert_ptr_nonnull(r);
        ref_t e = {j % 100, 500, j, 1000};
        check_row(r, &e);
        tkc_row_destroy(r);
    }
    ck_assert_uint_eq(tkc_sorter_count(s), 0);
    tkc_sorter_destroy(s);
}
END_TEST

START_TEST(test_sorter_disk_budget)
{
    /* 8 KiB in memory, 24 KiB on disk: about 4 quotas in total */
    tkc_sorter_config_t cfg = {.memory_quota = 8 * 1024, .spill_dir = spill_dir,
                               .disk_budget = 24 * 1024};
    tkc_sorter_t *s = tkc_sorter_new(&cfg, NULL, 0);
    unsigned added = 0;
    tkc_err_t err = TKC_ERR_OK;
    tkc_row_t *r = NULL;
    for (;;) {
        r = mk_row(added % 10, 1000 + added, added, 400);
        err = tkc_sorter_add(s, r, false, NULL, 0);
        if (err != TKC_ERR_OK)
            break;
        added++;
        ck_assert_uint_lt(added, 1000);
    }
    ck_assert_int_eq(err, TKC_ERR_QUEUE_FULL); /* refused, not taken */
    ck_assert(!tkc_sorter_has_room(s, tkc_row_size(r)));
    tkc_sorter_stats_t st;
    tkc_sorter_stats(s, &st);
    ck_assert_uint_le(st.disk_bytes, 24 * 1024);
    ck_assert_uint_le(st.mem_bytes, 8 * 1024);
    ck_assert_uint_gt(added, 40);
    ck_assert_uint_eq(st.rows, added);

    /* force takes it beyond the budget, and says so */
    ck_assert_int_eq(tkc_sorter_add(s, r, true, NULL, 0), TKC_ERR_OK);
    added++;
    tkc_sorter_stats(s, &st);
    ck_assert_uint_eq(st.forced_adds, 1);
    ck_assert_uint_gt(st.disk_bytes, 24 * 1024);

    /* releasing gives the room back */
    for (unsigned j = 0; j < added; j++) {
        tkc_row_t *o = NULL;
        ck_assert_int_eq(tkc_sorter_next(s, UINT64_MAX, &o, NULL, 0), TKC_ERR_OK);
        ck_assert_ptr_nonnull(o);
        ck_assert_uint_eq(o->commit_ts, 1000 + j);
        tkc_row_destroy(o);
    }
    ck_assert(tkc_sorter_has_room(s, 400));
    tkc_sorter_stats(s, &st);
    ck_assert_uint_eq(st.disk_bytes, 0);
    tkc_sorter_destroy(s);
}
END_TEST

START_TEST(test_sorter_no_spill_dir_quota_is_hard)
{
    tkc_sorter_config_t cfg = {.memory_quota = 4096};
    tkc_sorter_t *s = tkc_sorter_new(&cfg, NULL, 0);
    /* a row bigger than the quota still fits into an empty sorter */
    ck_assert_int_eq(tkc_sorter_add(s, mk_row(1, 10, 0, 10000), false, NULL, 0), TKC_ERR_OK);
    tkc_row_t *r = mk_row(2, 11, 1, 10);
    ck_assert_int_eq(tkc_sorter_add(s, r, false, NULL, 0), TKC_ERR_QUEUE_FULL);
    tkc_row_t *o = NULL;
    ck_assert_int_eq(tkc_sorter_next(s, 10, &o, NULL, 0), TKC_ERR_OK);
    ck_assert_uint_eq(o->value_len, 10000);
    tkc_row_destroy(o);
    ck_assert_int_eq(tkc_sorter_add(s, r, false, NULL, 0), TKC_ERR_OK);
    tkc_sorter_destroy(s); /* frees what it holds */
}
END_TEST

START_TEST(test_sorter_destroy_with_runs)
{
    tkc_sorter_config_t cfg = {.memory_quota = 2048, .spill_dir = spill_dir};
    tkc_sorter_t *s = tkc_sorter_new(&cfg, NULL, 0);
    for (unsigned i = 0; i < 500; i++)
        ck_assert_int_eq(tkc_sorter_add(s, mk_row(i, 100 + i % 13, i, 100), false, NULL, 0),
                         TKC_ERR_OK);
    tkc_row_t *o = NULL;
    ck_assert_int_eq(tkc_sorter_next(s, 105, &o, NULL, 0), TKC_ERR_OK);
    tkc_row_destroy(o);
    tkc_sorter_destroy(s); /* LSan: nothing leaks; teardown: no files left */
}
END_TEST

START_TEST(test_spill_big_records_and_punch)
{
    char e[256] = "";
    tkc_spill_run_t *run = tkc_spill_run_new(spill_dir, 4096, e, sizeof(e));
    ck_assert_msg(run != NULL, "%s", e);
    /* 24 x 512 KiB: records far larger than the 4 KiB / 8 KiB buffers */
    for (unsigned i = 0; i < 24; i++) {
        tkc_row_t *r = mk_row(i, 100 + i, i, 512 * 1024);
        ck_assert_int_eq(tkc_spill_run_append(run, r, i, e, sizeof(e)), TKC_ERR_OK);
        tkc_row_destroy(r);
    }
    ck_assert_int_eq(tkc_spill_run_finish(run, 8192, e, sizeof(e)), TKC_ERR_OK);
    uint64_t full = tkc_spill_run_disk_bytes(run);
    ck_assert_uint_gt(full, 12 * 1024 * 1024);
    for (unsigned i = 0; i < 24; i++) {
        tkc_row_t *r = NULL;
        uint64_t seq = 0;
        ck_assert_int_eq(tkc_spill_run_read(run, &r, &seq, e, sizeof(e)), TKC_ERR_OK);
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(seq, i);
        ref_t want = {i, 100 + i, i, 512 * 1024};
        check_row(r, &want);
        tkc_row_destroy(r);
        if (i == 16) {
            /* the consumed prefix was given back (file systems that cannot
             * punch holes keep it until the run is closed) */
            if (tkc_spill_run_disk_bytes(run) == full)
                fprintf(stderr, "note: %s does not punch holes\n", spill_dir);
            else
                ck_assert_uint_lt(tkc_spill_run_disk_bytes(run), full - 4 * 1024 * 1024);
        }
    }
    tkc_row_t *r = NULL;
    uint64_t seq;
    ck_assert_int_eq(tkc_spill_run_read(run, &r, &seq, e, sizeof(e)), TKC_ERR_OK);
    ck_assert_ptr_null(r);
    tkc_spill_run_destroy(run);
}
END_TEST

START_TEST(test_spill_empty_fields)
{
    char e[256];
    tkc_spill_run_t *run = tkc_spill_run_new(spill_dir, 0, e, sizeof(e));
    tkc_row_t *r = tkc_row_new(TKC_ROW_OP_DELETE, NULL, 0, NULL, 0, NULL, 0);
    r->commit_ts = 7;
    ck_assert_int_eq(tkc_spill_run_append(run, r, 99, e, sizeof(e)), TKC_ERR_OK);
    tkc_row_destroy(r);
    ck_assert_int_eq(tkc_spill_run_finish(run, 0, e, sizeof(e)), TKC_ERR_OK);
    uint64_t seq;
    ck_assert_int_eq(tkc_spill_run_read(run, &r, &seq, e, sizeof(e)), TKC_ERR_OK);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->key_len + r->value_len + r->old_value_len, 0);
    ck_assert_uint_eq(r->commit_ts, 7);
    ck_assert_uint_eq(seq, 99);
    tkc_row_destroy(r);
    tkc_spill_run_destroy(run);
}
END_TEST

START_TEST(test_spill_bad_dir)
{
    char e[256] = "";
    ck_assert_ptr_null(tkc_spill_run_new("/nonexistent/tkc", 0, e, sizeof(e)));
    ck_assert_ptr_nonnull(strstr(e, "/nonexistent/tkc"));
    /* the sorter reports it and keeps the row with the caller */
    tkc_sorter_config_t cfg = {.memory_quota = 1024, .spill_dir = "/nonexistent/tkc"};
    tkc_sorter_t *s = tkc_sorter_new(&cfg, NULL, 0);
    ck_assert_int_eq(tkc_sorter_add(s, mk_row(1, 10, 0, 2000), false, NULL, 0), TKC_ERR_OK);
    tkc_row_t *r = mk_row(2, 11, 1, 10);
    ck_assert_int_eq(tkc_sorter_add(s, r, false, e, sizeof(e)), TKC_ERR_IO);
    ck_assert_uint_eq(tkc_sorter_count(s), 1);
    tkc_row_destroy(r);
    tkc_sorter_destroy(s);
}
END_TEST

static Suite *sorter_suite(void)
{
    Suite *s = suite_create("sorter");
    TCase *tc = tcase_create("order");
    tcase_add_test(tc, test_sorter_order_ties_by_arrival);
    tcase_add_test(tc, test_sorter_release_boundaries);
    tcase_add_test(tc, test_sorter_model_in_memory);
    suite_add_tcase(s, tc);

    tc = tcase_create("spill");
    tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sorter_spill_merge_tiny_quota);
    tcase_add_test(tc, test_sorter_memory_stays_under_quota);
    tcase_add_test(tc, test_sorter_disk_budget);
    tcase_add_test(tc, test_sorter_no_spill_dir_quota_is_hard);
    tcase_add_test(tc, test_sorter_destroy_with_runs);
    tcase_add_test(tc, test_spill_big_records_and_punch);
    tcase_add_test(tc, test_spill_empty_fields);
    tcase_add_test(tc, test_spill_bad_dir);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(sorter_suite)
