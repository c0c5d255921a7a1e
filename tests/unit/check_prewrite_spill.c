/*
 * check_prewrite_spill.c: unit tests of prewrite_spill (the feed worker's
 * file of spilled prewrite values): byte-exact round trips, truncation when
 * nothing is live, damage detected (CRC, header, offsets) instead of a wrong
 * value, the write and read error paths, and the budget decision.
 */
#include "prewrite_spill.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit/check_main.h"

/* A store on a named temp file, so the test can damage it through a second
 * descriptor. */
typedef struct fixture_s {
    char path[64];
    int fd2;
    atomic_size_t shared;
    tkc_prewrite_spill_t *s;
} fixture_t;

static void fixture_open(fixture_t *f, size_t limit)
{
    snprintf(f->path, sizeof(f->path), "/tmp/tkc-pwspill-test-XXXXXX");
    int fd = mkstemp(f->path);
    ck_assert_int_ge(fd, 0);
    f->fd2 = open(f->path, O_RDWR);
    ck_assert_int_ge(f->fd2, 0);
    unlink(f->path);
    atomic_init(&f->shared, 0);
    f->s = tkc_prewrite_spill_new_fd(fd, &f->shared, limit);
}

static void fixture_close(fixture_t *f)
{
    tkc_prewrite_spill_destroy(f->s);
    close(f->fd2);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

START_TEST(test_round_trip_and_truncate)
{
    fixture_t f;
    fixture_open(&f, 1000);
    static uint8_t v[3][5000], ov[3][700], back_v[5000], back_ov[700];
    const size_t vl[3] = {5000, 0, 1}, ol[3] = {700, 3, 0};
    uint64_t off[3];
    char e[256];
    for (int i = 0; i < 3; i++) {
        fill(v[i], vl[i], (unsigned)i + 1);
        fill(ov[i], ol[i], (unsigned)i + 11);
        ck_assert_int_eq(tkc_prewrite_spill_put(f.s, v[i], vl[i], ov[i], ol[i], &off[i], e,
                                                sizeof(e)),
                         TKC_ERR_OK);
    }
    ck_assert_uint_eq(off[0], 0);
    ck_assert_uint_eq(off[1], tkc_prewrite_spill_record_size(5000, 700));
    tkc_prewrite_spill_stats_t st;
    tkc_prewrite_spill_get_stats(f.s, &st);
    size_t total = 0;
    for (int i = 0; i < 3; i++)
        total += tkc_prewrite_spill_record_size(vl[i], ol[i]);
    ck_assert_uint_eq(st.live_bytes, total);
    ck_assert_uint_eq(st.file_bytes, total);
    ck_assert_int_eq(lseek(f.fd2, 0, SEEK_END), (off_t)total);

    /* read back in another order than written, byte-exact */
    const int order[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++) {
        int i = order[k];
        memset(back_v, 0xEE, sizeof(back_v));
        memset(back_ov, 0xEE, sizeof(back_ov));
        ck_assert_int_eq(tkc_prewrite_spill_get(f.s, off[i], back_v, vl[i], back_ov, ol[i], e,
                                                sizeof(e)),
                         TKC_ERR_OK);
        ck_assert(memcmp(back_v, v[i], vl[i]) == 0);
        ck_assert(memcmp(back_ov, ov[i], ol[i]) == 0);
        tkc_prewrite_spill_release(f.s, tkc_prewrite_spill_record_size(vl[i], ol[i]));
        tkc_prewrite_spill_get_stats(f.s, &st);
        if (k < 2) {
            ck_assert_uint_gt(st.live_bytes, 0);
            ck_assert_uint_eq(st.file_bytes, total); /* not truncated while live */
        }
    }
    /* nothing live: the file is empty again and offsets restart */
    tkc_prewrite_spill_get_stats(f.s, &st);
    ck_assert_uint_eq(st.live_bytes, 0);
    ck_assert_uint_eq(st.file_bytes, 0);
    ck_assert_uint_eq(st.truncations, 1);
    ck_assert_uint_eq(st.written_bytes, total);
    ck_assert_int_eq(lseek(f.fd2, 0, SEEK_END), 0);
    uint64_t o;
    ck_assert_int_eq(tkc_prewrite_spill_put(f.s, v[0], 10, NULL, 0, &o, e, sizeof(e)),
                     TKC_ERR_OK);
    ck_assert_uint_eq(o, 0);
    ck_assert_int_eq(tkc_prewrite_spill_get(f.s, o, back_v, 10, NULL, 0, e, sizeof(e)),
                     TKC_ERR_OK);
    ck_assert(memcmp(back_v, v[0], 10) == 0);
    fixture_close(&f);
}
END_TEST

/* A damaged record is an error with a message, never a wrong value. */
START_TEST(test_damage_detected)
{
    fixture_t f;
    fixture_open(&f, 1000);
    uint8_t v[300], ov[50], bv[300], bov[50];
    fill(v, sizeof(v), 1);
    fill(ov, sizeof(ov), 2);
    uint64_t o0, o1;
    char e[256] = "";
    ck_assert_int_eq(tkc_prewrite_spill_put(f.s, v, 300, ov, 50, &o0, e, sizeof(e)), TKC_ERR_OK);
    ck_assert_int_eq(tkc_prewrite_spill_put(f.s, v, 300, ov, 50, &o1, e, sizeof(e)), TKC_ERR_OK);

    /* one flipped payload byte of record 1: CRC mismatch */
    uint8_t b;
    ck_assert_int_eq(pread(f.fd2, &b, 1, (off_t)(o1 + 16 + 123)), 1);
    b ^= 0x01;
    ck_assert_int_eq(pwrite(f.fd2, &b, 1, (off_t)(o1 + 16 + 123)), 1);
    ck_assert_int_eq(tkc_prewrite_spill_get(f.s, o1, bv, 300, bov, 50, e, sizeof(e)),
                     TKC_ERR_CORRUPT);
    ck_assert_msg(strstr(e, "CRC") != NULL, "%s", e);
    /* record 0 is untouched and still reads */
    ck_assert_int_eq(tkc_prewrite_spill_get(f.s, o0, bv, 300, bov, 50, e, sizeof(e)), TKC_ERR_OK);
    ck_assert(memcmp(bv, v, 300) == 0 && memcmp(bov, ov, 50) == 0);

    /* other lengths than written (a stub pointing at the wrong record) */
    ck_assert_int_eq(tkc_prewrite_spill_get(f.s, o0, bv, 299, bov, 50, e, sizeof(e)),
                     TKC_ERR_CORRUPT);
    ck_assert_msg(strstr(e, "header") != NULL, "%s", e);
    /* an offset inside a record */
    ck_assert_int_eq(tkc_prewrite_spill_get(f.s, o0 + 8, bv, 10, NULL, 0, e, sizeof(e)),
                     TKC_ERR_CORRUPT);
    /* past the end */
    ck_assert_int_eq(tkc_prewrite_spill_get(f.s, o1, bv, 300, bov, 60, e, sizeof(e)),
                     TKC_ERR_CORRUPT);
    ck_assert_msg(strstr(e, "past the end") != NULL, "%s", e);
    /* the file shrank under us (truncated by someone else): an I/O error */
    ck_assert_int_eq(ftruncate(f.fd2, (off_t)o1 + 20), 0);
    ck_assert_int_eq(tkc_prewrite_spill_get(f.s, o1, bv, 300, bov, 50, e, sizeof(e)), TKC_ERR_IO);
    fixture_close(&f);
}
END_TEST

/* Write and read failures are errors (disk full, unreadable file). */
START_TEST(test_io_errors)
{
    atomic_size_t shared;
    atomic_init(&shared, 0);
    char e[256] = "";
    uint8_t v[100] = {1, 2, 3};
    uint64_t o = 77;

    int fd = open("/dev/full", O_RDWR);
    ck_assert_int_ge(fd, 0);
    tkc_prewrite_spill_t *s = tkc_prewrite_spill_new_fd(fd, &shared, 0);
    ck_assert_int_eq(tkc_prewrite_spill_put(s, v, sizeof(v), NULL, 0, &o, e, sizeof(e)),
                     TKC_ERR_IO);
    ck_assert_msg(strstr(e, "write failed") != NULL, "%s", e);
    ck_assert_uint_eq(o, 77); /* not set */
    tkc_prewrite_spill_stats_t st;
    tkc_prewrite_spill_get_stats(s, &st);
    ck_assert_uint_eq(st.live_bytes, 0);
    ck_assert_uint_eq(st.file_bytes, 0);
    tkc_prewrite_spill_destroy(s);

    /* a write-only descriptor: the write works, the read back fails */
    char path[] = "/tmp/tkc-pwspill-test-XXXXXX";
    int rw = mkstemp(path);
    ck_assert_int_ge(rw, 0);
    close(rw);
    fd = open(path, O_WRONLY);
    unlink(path);
    ck_assert_int_ge(fd, 0);
    s = tkc_prewrite_spill_new_fd(fd, &shared, 0);
    ck_assert_int_eq(tkc_prewrite_spill_put(s, v, sizeof(v), NULL, 0, &o, e, sizeof(e)),
                     TKC_ERR_OK);
    uint8_t back[100];
    ck_assert_int_eq(tkc_prewrite_spill_get(s, o, back, sizeof(back), NULL, 0, e, sizeof(e)),
                     TKC_ERR_IO);
    ck_assert_msg(strstr(e, "read failed") != NULL, "%s", e);
    tkc_prewrite_spill_destroy(s);

    /* a directory that does not exist: no store, a message */
    s = tkc_prewrite_spill_new("/nonexistent-tkc-dir/x", &shared, 10, e, sizeof(e));
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(e, "/nonexistent-tkc-dir/x") != NULL, "%s", e);
}
END_TEST

/* The budget is shared: what one store charges counts for the other. */
START_TEST(test_budget)
{
    atomic_size_t shared;
    atomic_init(&shared, 0);
    char dir[] = "/tmp/tkc-pwspill-dir-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char e[256] = "";
    tkc_prewrite_spill_t *a = tkc_prewrite_spill_new(dir, &shared, 1000, e, sizeof(e));
    tkc_prewrite_spill_t *b = tkc_prewrite_spill_new(dir, &shared, 1000, e, sizeof(e));
    ck_assert_msg(a && b, "%s", e);
    ck_assert(!tkc_prewrite_spill_wanted(a, 1000, 900));
    ck_assert(tkc_prewrite_spill_wanted(a, 1001, 900));
    tkc_prewrite_spill_charge(a, 600);
    ck_assert(tkc_prewrite_spill_wanted(b, 500, 400));
    ck_assert(!tkc_prewrite_spill_wanted(b, 500, 63)); /* too small to be worth it */
    tkc_prewrite_spill_set_min(b, 0);
    ck_assert(tkc_prewrite_spill_wanted(b, 500, 0));
    tkc_prewrite_spill_uncharge(a, 600);
    ck_assert(!tkc_prewrite_spill_wanted(b, 500, 400));
    ck_assert_uint_eq(atomic_load(&shared), 0);
    tkc_prewrite_spill_destroy(a);
    tkc_prewrite_spill_destroy(b);
    /* the files were anonymous: the directory is empty and removable */
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *prewrite_spill_suite(void)
{
    Suite *s = suite_create("prewrite_spill");
    TCase *tc = tcase_create("file");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_round_trip_and_truncate);
    tcase_add_test(tc, test_damage_detected);
    tcase_add_test(tc, test_io_errors);
    tcase_add_test(tc, test_budget);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(prewrite_spill_suite)
