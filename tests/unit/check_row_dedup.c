/*
 * check_row_dedup.c: the release-time filter of re-sent copies
 * (connector/src/row_dedup.h): a copy of (span, key, commit_ts) within one
 * commit_ts group is dropped, and nothing else is; differing copies are
 * told apart; a group over the memory limit is only partly remembered but
 * never drops a distinct row, and memory stays within the limit and is
 * given back after a huge group.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "row_dedup.h"
#include "unit/check_main.h"
#include "util/mem.h"

static tkc_row_t *mk(const char *key, size_t key_len, uint32_t span, uint64_t commit_ts,
                     const char *value)
{
    size_t vl = value ? strlen(value) : 0;
    tkc_row_t *r = tkc_row_new(value ? TKC_ROW_OP_PUT : TKC_ROW_OP_DELETE, (const uint8_t *)key,
                               key_len, (const uint8_t *)value, vl, (const uint8_t *)"old", 3);
    r->span_index = span;
    r->commit_ts = commit_ts;
    r->start_ts = commit_ts - 5;
    r->has_old_value = true;
    r->region_id = 7;
    return r;
}

/* Checks one row and frees it. */
static tkc_row_dedup_verdict_t judge(tkc_row_dedup_t *d, tkc_row_t *r)
{
    tkc_row_dedup_verdict_t v = tkc_row_dedup_check(d, r);
    tkc_row_destroy(r);
    return v;
}

static tkc_row_dedup_verdict_t judge_key(tkc_row_dedup_t *d, const char *key, uint32_t span,
                                         uint64_t ts, const char *value)
{
    return judge(d, mk(key, strlen(key), span, ts, value));
}

START_TEST(test_dedup_copy_in_group)
{
    tkc_row_dedup_t *d = tkc_row_dedup_new(0);
    ck_assert_int_eq(judge_key(d, "a", 0, 10, "v1"), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge_key(d, "b", 0, 10, "v2"), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge_key(d, "c", 0, 10, NULL), TKC_ROW_DEDUP_NEW);
    /* the re-sent copies, in the order TiKV re-sends them */
    ck_assert_int_eq(judge_key(d, "a", 0, 10, "v1"), TKC_ROW_DEDUP_DUPLICATE);
    ck_assert_int_eq(judge_key(d, "b", 0, 10, "v2"), TKC_ROW_DEDUP_DUPLICATE);
    ck_assert_int_eq(judge_key(d, "c", 0, 10, NULL), TKC_ROW_DEDUP_DUPLICATE);
    /* a third copy too */
    ck_assert_int_eq(judge_key(d, "a", 0, 10, "v1"), TKC_ROW_DEDUP_DUPLICATE);
    tkc_row_dedup_stats_t st;
    tkc_row_dedup_stats(d, &st);
    ck_assert_uint_eq(st.rows, 7);
    ck_assert_uint_eq(st.duplicates, 4);
    ck_assert_uint_eq(st.conflicts, 0);
    ck_assert_uint_eq(st.untracked, 0);
    tkc_row_dedup_destroy(d);
}
END_TEST

START_TEST(test_dedup_distinct_rows_kept)
{
    tkc_row_dedup_t *d = tkc_row_dedup_new(0);
    /* the same key at the next commit ts is the key's next change */
    ck_assert_int_eq(judge_key(d, "a", 0, 10, "v1"), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge_key(d, "a", 0, 11, "v1"), TKC_ROW_DEDUP_NEW);
    /* the same key in another span is another row */
    ck_assert_int_eq(judge_key(d, "a", 1, 11, "v1"), TKC_ROW_DEDUP_NEW);
    /* prefixes, an empty key, a key with a NUL byte: all distinct */
    ck_assert_int_eq(judge_key(d, "ab", 0, 11, "v"), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge_key(d, "abcdefghij", 0, 11, "v"), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge_key(d, "abcdefghi", 0, 11, "v"), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge(d, mk("", 0, 0, 11, "v")), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge(d, mk("a\0b", 3, 0, 11, "v")), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge(d, mk("a\0c", 3, 0, 11, "v")), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge(d, mk("a\0b", 3, 0, 11, "v")), TKC_ROW_DEDUP_DUPLICATE);
    ck_assert_int_eq(judge(d, mk("", 0, 0, 11, "v")), TKC_ROW_DEDUP_DUPLICATE);
    /* only the current group is remembered: commit_ts 10 is over */
    ck_assert_int_eq(judge_key(d, "a", 0, 12, "v1"), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge_key(d, "ab", 0, 12, "v"), TKC_ROW_DEDUP_NEW);
    tkc_row_dedup_reset(d);
    ck_assert_int_eq(judge_key(d, "a", 0, 12, "v1"), TKC_ROW_DEDUP_NEW);
    tkc_row_dedup_destroy(d);
}
END_TEST

START_TEST(test_dedup_conflict)
{
    tkc_row_dedup_t *d = tkc_row_dedup_new(0);
    ck_assert_int_eq(judge_key(d, "a", 0, 10, "v1"), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge_key(d, "a", 0, 10, "v2"), TKC_ROW_DEDUP_CONFLICT);
    ck_assert_int_eq(judge_key(d, "a", 0, 10, NULL), TKC_ROW_DEDUP_CONFLICT); /* a delete */
    tkc_row_t *r = mk("a", 1, 0, 10, "v1");
    r->start_ts = 3;
    ck_assert_int_eq(judge(d, r), TKC_ROW_DEDUP_CONFLICT);
    r = mk("a", 1, 0, 10, "v1");
    r->has_old_value = false;
    ck_assert_int_eq(judge(d, r), TKC_ROW_DEDUP_CONFLICT);
    /* the first copy stays the reference */
    ck_assert_int_eq(judge_key(d, "a", 0, 10, "v1"), TKC_ROW_DEDUP_DUPLICATE);
    /* long values differing at either end */
    char v1[1000], v2[1000];
    memset(v1, 'x', sizeof(v1) - 1);
    v1[sizeof(v1) - 1] = '\0';
    memcpy(v2, v1, sizeof(v1));
    v2[sizeof(v2) - 2] = 'y';
    ck_assert_int_eq(judge_key(d, "long", 0, 10, v1), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge_key(d, "long", 0, 10, v2), TKC_ROW_DEDUP_CONFLICT);
    v2[sizeof(v2) - 2] = 'x';
    v2[0] = 'y';
    ck_assert_int_eq(judge_key(d, "long", 0, 10, v2), TKC_ROW_DEDUP_CONFLICT);
    ck_assert_int_eq(judge_key(d, "long", 0, 10, v1), TKC_ROW_DEDUP_DUPLICATE);
    tkc_row_dedup_stats_t st;
    tkc_row_dedup_stats(d, &st);
    ck_assert_uint_eq(st.conflicts, 6);
    ck_assert_uint_eq(st.duplicates, 2);
    ck_assert_str_eq(tkc_row_dedup_verdict_name(TKC_ROW_DEDUP_CONFLICT), "CONFLICT");
    tkc_row_dedup_destroy(d);
}
END_TEST

/* A big group with similar keys, then every copy: exact in both directions. */
START_TEST(test_dedup_big_group_exact)
{
    enum { N = 50000 };
    tkc_row_dedup_t *d = tkc_row_dedup_new(0);
    char k[64];
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < N; i++) {
            /* lengths 4..12 and shared prefixes */
            int kl = snprintf(k, sizeof(k), "t%0*d", 3 + i % 9, i);
            ck_assert_int_eq(judge(d, mk(k, (size_t)kl, (uint32_t)(i % 2), 99, "v")),
                             pass == 0 ? TKC_ROW_DEDUP_NEW : TKC_ROW_DEDUP_DUPLICATE);
        }
    tkc_row_dedup_stats_t st;
    tkc_row_dedup_stats(d, &st);
    ck_assert_uint_eq(st.duplicates, N);
    ck_assert_uint_gt(st.bytes, 256 * 1024);
    /* the next group gives the grown buffers back */
    ck_assert_int_eq(judge_key(d, "x", 0, 100, "v"), TKC_ROW_DEDUP_NEW);
    tkc_row_dedup_stats(d, &st);
    ck_assert_uint_lt(st.bytes, 4096);
    tkc_row_dedup_destroy(d);
}
END_TEST

/*
 * Over the limit: rows are still checked against what is remembered, the
 * rest passes (never dropped), and the allocation stays within the limit.
 */
START_TEST(test_dedup_limit)
{
    const size_t limit = 64 * 1024;
    tkc_row_dedup_t *d = tkc_row_dedup_new(limit);
    char k[64];
    int first_untracked = -1;
    enum { N = 5000 };
    for (int i = 0; i < N; i++) {
        int kl = snprintf(k, sizeof(k), "key-%08d", i);
        tkc_row_dedup_verdict_t v = judge(d, mk(k, (size_t)kl, 0, 7, "v"));
        if (first_untracked < 0 && v == TKC_ROW_DEDUP_UNTRACKED)
            first_untracked = i;
        ck_assert_int_eq(v, first_untracked < 0 ? TKC_ROW_DEDUP_NEW : TKC_ROW_DEDUP_UNTRACKED);
        tkc_row_dedup_stats_t st;
        tkc_row_dedup_stats(d, &st);
        ck_assert_uint_le(st.bytes, limit);
    }
    ck_assert_int_gt(first_untracked, 500); /* ~40 bytes per 12-byte key */
    for (int i = 0; i < N; i++) {
        int kl = snprintf(k, sizeof(k), "key-%08d", i);
        ck_assert_int_eq(judge(d, mk(k, (size_t)kl, 0, 7, "v")),
                         i < first_untracked ? TKC_ROW_DEDUP_DUPLICATE
                                             : TKC_ROW_DEDUP_UNTRACKED);
    }
    tkc_row_dedup_stats_t st;
    tkc_row_dedup_stats(d, &st);
    ck_assert_uint_eq(st.groups_overflowed, 1);
    ck_assert_uint_eq(st.untracked, 2 * (uint64_t)(N - first_untracked));
    ck_assert_uint_eq(st.memory_limit, limit);
    /* a new group is remembered again */
    ck_assert_int_eq(judge_key(d, "key-00004999", 0, 8, "v"), TKC_ROW_DEDUP_NEW);
    ck_assert_int_eq(judge_key(d, "key-00004999", 0, 8, "v"), TKC_ROW_DEDUP_DUPLICATE);
    tkc_row_dedup_destroy(d);
}
END_TEST

/* Many small groups: the generation trick never lets an old group's key match. */
START_TEST(test_dedup_many_groups)
{
    tkc_row_dedup_t *d = tkc_row_dedup_new(0);
    char k[32];
    for (uint64_t ts = 1; ts <= 100000; ts++) {
        int kl = snprintf(k, sizeof(k), "k%u", (unsigned)(ts % 3));
        ck_assert_int_eq(judge(d, mk(k, (size_t)kl, 0, ts + 10, "v")), TKC_ROW_DEDUP_NEW);
        if (ts % 10 == 0)
            ck_assert_int_eq(judge(d, mk(k, (size_t)kl, 0, ts + 10, "v")),
                             TKC_ROW_DEDUP_DUPLICATE);
    }
    tkc_row_dedup_stats_t st;
    tkc_row_dedup_stats(d, &st);
    ck_assert_uint_eq(st.duplicates, 10000);
    ck_assert_uint_lt(st.bytes, 4096);
    tkc_row_dedup_destroy(d);
}
END_TEST

static Suite *row_dedup_suite(void)
{
    Suite *s = suite_create("row_dedup");
    TCase *tc = tcase_create("row_dedup");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dedup_copy_in_group);
    tcase_add_test(tc, test_dedup_distinct_rows_kept);
    tcase_add_test(tc, test_dedup_conflict);
    tcase_add_test(tc, test_dedup_big_group_exact);
    tcase_add_test(tc, test_dedup_limit);
    tcase_add_test(tc, test_dedup_many_groups);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(row_dedup_suite)
