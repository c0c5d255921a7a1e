/*
 * check_checkpoint.c: the checkpoint file store (connector/src/checkpoint.h):
 * round trip, refusal of damaged or foreign files, atomic replacement, and
 * a crash test: a child process rewriting the checkpoint is killed with
 * SIGKILL at random moments; every read afterwards must find a complete,
 * valid checkpoint that never goes back.
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "unit/check_main.h"

static char dir[256];
static char path[300];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tkc-check-ckpt-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/checkpoint", dir);
}

static void teardown(void)
{
    char tmp[320];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    unlink(path);
    ck_assert_int_eq(rmdir(dir), 0);
}

static void write_raw(const char *p, const char *content)
{
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
}

static char *read_raw(const char *p)
{
    static char buf[2048];
    FILE *f = fopen(p, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

START_TEST(test_checkpoint_roundtrip)
{
    char e[512] = "";
    tkc_checkpoint_t cp = {
        .ts = 449123456789012345ull, .epoch = 7, .committed_at_ms = 1700000000123};
    ck_assert_int_eq(tkc_checkpoint_file_write(path, "feed-1", &cp, e, sizeof(e)), TKC_ERR_OK);
    tkc_checkpoint_t got = {0};
    ck_assert_int_eq(tkc_checkpoint_file_read(path, "feed-1", &got, e, sizeof(e)), TKC_ERR_OK);
    ck_assert_uint_eq(got.ts, cp.ts);
    ck_assert_uint_eq(got.epoch, 7);
    ck_assert_int_eq(got.committed_at_ms, cp.committed_at_ms);
    /* human-readable */
    ck_assert_ptr_nonnull(strstr(read_raw(path), "ts=449123456789012345"));
    /* no temp file left behind */
    char tmp[320];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    ck_assert_int_ne(access(tmp, F_OK), 0);
}
END_TEST

START_TEST(test_checkpoint_missing)
{
    tkc_checkpoint_t got;
    ck_assert_int_eq(tkc_checkpoint_file_read(path, "feed-1", &got, NULL, 0), TKC_ERR_NOT_FOUND);
}
END_TEST

START_TEST(test_checkpoint_other_feed)
{
    char e[512] = "";
    tkc_checkpoint_t cp = {.ts = 5};
    ck_assert_int_eq(tkc_checkpoint_file_write(path, "orders", &cp, e, sizeof(e)), TKC_ERR_OK);
    tkc_checkpoint_t got;
    ck_assert_int_eq(tkc_checkpoint_file_read(path, "users", &got, e, sizeof(e)),
                     TKC_ERR_INCOMPATIBLE);
    ck_assert_ptr_nonnull(strstr(e, "orders"));
}
END_TEST

START_TEST(test_checkpoint_damage_refused)
{
    char e[512] = "";
    tkc_checkpoint_t cp = {.ts = 123456, .epoch = 1};
    ck_assert_int_eq(tkc_checkpoint_file_write(path, "f", &cp, e, sizeof(e)), TKC_ERR_OK);
    char good[2048];
    snprintf(good, sizeof(good), "%s", read_raw(path));
    tkc_checkpoint_t got;

    /* one digit of the ts changed: the CRC catches it */
    char bad[2048 + 16]; /* room for good + "extra\n" */
    snprintf(bad, sizeof(bad), "%s", good);
    char *d = strstr(bad, "ts=123456");
    d[3] = '9';
    write_raw(path, bad);
    ck_assert_int_eq(tkc_checkpoint_file_read(path, "f", &got, e, sizeof(e)), TKC_ERR_CORRUPT);

    /* torn: only the first half */
    snprintf(bad, sizeof(bad), "%.*s", (int)(strlen(good) / 2), good);
    write_raw(path, bad);
    ck_assert_int_eq(tkc_checkpoint_file_read(path, "f", &got, e, sizeof(e)), TKC_ERR_CORRUPT);

    /* empty, garbage, trailing junk */
    write_raw(path, "");
    ck_assert_int_eq(tkc_checkpoint_file_read(path, "f", &got, e, sizeof(e)), TKC_ERR_CORRUPT);
    write_raw(path, "hello\n");
    ck_assert_int_eq(tkc_checkpoint_file_read(path, "f", &got, e, sizeof(e)), TKC_ERR_CORRUPT);
    snprintf(bad, sizeof(bad), "%sextra\n", good);
    write_raw(path, bad);
    ck_assert_int_eq(tkc_checkpoint_file_read(path, "f", &got, e, sizeof(e)), TKC_ERR_CORRUPT);

    /* the original is accepted again */
    write_raw(path, good);
    ck_assert_int_eq(tkc_checkpoint_file_read(path, "f", &got, e, sizeof(e)), TKC_ERR_OK);
    ck_assert_uint_eq(got.ts, 123456);
}
END_TEST

START_TEST(test_checkpoint_stray_tmp_ignored)
{
    char e[512] = "";
    tkc_checkpoint_t cp = {.ts = 100};
    ck_assert_int_eq(tkc_checkpoint_file_write(path, "f", &cp, e, sizeof(e)), TKC_ERR_OK);
    /* a crash between writing the temp file and the rename */
    char tmp[320];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    write_raw(tmp, "tkc-checkpoint v1 feed=f ts=2");
    tkc_checkpoint_t got;
    ck_assert_int_eq(tkc_checkpoint_file_read(path, "f", &got, e, sizeof(e)), TKC_ERR_OK);
    ck_assert_uint_eq(got.ts, 100);
    /* the next write replaces it */
    cp.ts = 200;
    ck_assert_int_eq(tkc_checkpoint_file_write(path, "f", &cp, e, sizeof(e)), TKC_ERR_OK);
    ck_assert_int_eq(tkc_checkpoint_file_read(path, "f", &got, e, sizeof(e)), TKC_ERR_OK);
    ck_assert_uint_eq(got.ts, 200);
    ck_assert_int_ne(access(tmp, F_OK), 0);
}
END_TEST

START_TEST(test_checkpoint_write_errors)
{
    char e[512] = "";
    tkc_checkpoint_t cp = {.ts = 1};
    ck_assert_int_eq(tkc_checkpoint_file_write("/nonexistent-dir/x", "f", &cp, e, sizeof(e)),
                     TKC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(e, "/nonexistent-dir/x.tmp"));
    ck_assert_int_eq(tkc_checkpoint_file_write(path, "bad id", &cp, e, sizeof(e)),
                     TKC_ERR_INVALID_ARG);
    ck_assert(tkc_checkpoint_feed_id_valid("a.b_c-1"));
    ck_assert(!tkc_checkpoint_feed_id_valid(""));
    ck_assert(!tkc_checkpoint_feed_id_valid("a/b"));
    ck_assert(!tkc_checkpoint_feed_id_valid(NULL));
}
END_TEST

/*
 * The child rewrites the checkpoint with ts = 1, 2, 3, ... as fast as it
 * can; the parent kills it at a random moment, then reads. Every read must
 * succeed (never a torn or half-renamed file) and never go back.
 */
START_TEST(test_checkpoint_kill9_never_torn)
{
    char e[512] = "";
    tkc_checkpoint_t cp = {.ts = 1};
    ck_assert_int_eq(tkc_checkpoint_file_write(path, "crash", &cp, e, sizeof(e)), TKC_ERR_OK);
    uint64_t last = 1;
    srand((unsigned)time(NULL));
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            tkc_checkpoint_t c = {.ts = last};
            for (;;) {
                c.ts++;
                if (tkc_checkpoint_file_write(path, "crash", &c, NULL, 0) != TKC_ERR_OK)
                    _exit(3);
            }
        }
        usleep(2000 + (useconds_t)(rand() % 30000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        ck_assert(WIFSIGNALED(status));
        tkc_checkpoint_t got = {0};
        ck_assert_msg(tkc_checkpoint_file_read(path, "crash", &got, e, sizeof(e)) == TKC_ERR_OK,
                      "round %d: %s", round, e);
        ck_assert_uint_ge(got.ts, last);
        last = got.ts;
    }
    ck_assert_uint_gt(last, 1); /* the child did get writes through */
}
END_TEST

static Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("file");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_checkpoint_roundtrip);
    tcase_add_test(tc, test_checkpoint_missing);
    tcase_add_test(tc, test_checkpoint_other_feed);
    tcase_add_test(tc, test_checkpoint_damage_refused);
    tcase_add_test(tc, test_checkpoint_stray_tmp_ignored);
    tcase_add_test(tc, test_checkpoint_write_errors);
    tcase_add_test(tc, test_checkpoint_kill9_never_torn);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(checkpoint_suite)
