/*
 * check_ratelimit.c: per-key windows (util/ratelimit.c), the logger's
 * rate-limited warnings with their summary lines, and the JSON log format
 * (util/log.c).
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit/check_main.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/ratelimit.h"

typedef struct {
    char keys[16][TKC_RATELIMIT_KEY_MAX + 1];
    uint64_t counts[16];
    size_t n;
} sums_t;

static void on_summary(void *opaque, const char *key, uint64_t count, int64_t interval_ms)
{
    sums_t *s = opaque;
    (void)interval_ms;
    if (s->n < 16) {
        snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
        s->counts[s->n++] = count;
    }
}

START_TEST(test_ratelimit_windows)
{
    tkc_ratelimit_t *rl = tkc_ratelimit_new(1000, 64);
    uint64_t sup = 99;
    ck_assert(tkc_ratelimit_check(rl, "a", 0, 0, &sup));
    ck_assert_uint_eq(sup, 0);
    for (int t = 1; t < 1000; t += 100)
        ck_assert(!tkc_ratelimit_check(rl, "a", 0, t, &sup)); /* 10 suppressed */
    ck_assert(tkc_ratelimit_check(rl, "b", 0, 500, &sup));   /* other keys pass */
    /* the window ended: the next event passes and carries the count */
    ck_assert(tkc_ratelimit_check(rl, "a", 0, 1000, &sup));
    ck_assert_uint_eq(sup, 10);
    ck_assert(!tkc_ratelimit_check(rl, "a", 0, 1500, &sup));
    ck_assert(!tkc_ratelimit_check(rl, "a", 0, 1600, &sup));
    /* nothing ended yet at 1900 */
    sums_t s = {0};
    ck_assert_uint_eq(tkc_ratelimit_flush(rl, 1900, on_summary, &s), 0);
    /* the burst stopped: the flush after the window reports it once */
    ck_assert_uint_eq(tkc_ratelimit_flush(rl, 2000, on_summary, &s), 1);
    ck_assert_str_eq(s.keys[0], "a");
    ck_assert_uint_eq(s.counts[0], 2);
    ck_assert_uint_eq(tkc_ratelimit_flush(rl, 5000, on_summary, &s), 0);
    /* a per-call interval */
    ck_assert(tkc_ratelimit_check(rl, "c", 50, 10000, &sup));
    ck_assert(!tkc_ratelimit_check(rl, "c", 50, 10049, &sup));
    ck_assert(tkc_ratelimit_check(rl, "c", 50, 10050, &sup));
    ck_assert_uint_eq(sup, 1);
    tkc_ratelimit_destroy(rl);
}
END_TEST

static void sum_summary(void *opaque, const char *key, uint64_t count, int64_t interval_ms)
{
    (void)key;
    (void)interval_ms;
    *(uint64_t *)opaque += count;
}

START_TEST(test_ratelimit_bounded_eviction)
{
    /* 8 slots, 200 keys each hit twice in a row (the second is suppressed):
     * keys keep evicting each other, memory stays bounded, and no
     * suppressed event goes unreported. */
    tkc_ratelimit_t *rl = tkc_ratelimit_new(1000000, 8);
    char key[32];
    uint64_t suppressed = 0;
    for (int k = 0; k < 200; k++) {
        snprintf(key, sizeof(key), "k%d", k);
        ck_assert(tkc_ratelimit_check(rl, key, 0, k, NULL));
        ck_assert(!tkc_ratelimit_check(rl, key, 0, k, NULL));
        suppressed++;
    }
    uint64_t reported = 0;
    size_t n = tkc_ratelimit_flush(rl, 2000000, sum_summary, &reported);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_le(n, 8 + 32 + 1); /* slots + overflow list + one "(evicted)" total */
    ck_assert_uint_eq(reported, suppressed);
    tkc_ratelimit_destroy(rl);
}
END_TEST

/* Captures log lines through a pipe. */
static int cap_fd[2];

static void cap_start(void)
{
    ck_assert_int_eq(pipe(cap_fd), 0);
    tkc_log_set_fd(cap_fd[1]);
}

static char *cap_read(void)
{
    tkc_log_set_fd(2);
    close(cap_fd[1]);
    char *buf = tkc_malloc(65536);
    size_t n = 0;
    ssize_t r;
    while ((r = read(cap_fd[0], buf + n, 65535 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(cap_fd[0]);
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

START_TEST(test_log_ratelimited_lines)
{
    cap_start();
    for (int i = 0; i < 50; i++)
        tkc_log_rl(TKC_LOG_WARN, "feed", "region_error:not_leader", 200,
                   "event=region_error region_id=%d kind=not_leader", i);
    usleep(250 * 1000);
    tkc_log_rl(TKC_LOG_WARN, "feed", "region_error:not_leader", 200,
               "event=region_error region_id=%d kind=not_leader", 99);
    /* a level that is off is not even counted */
    tkc_log_rl(TKC_LOG_DEBUG, "feed", "dbg", 200, "event=x");
    char *out = cap_read();
    ck_assert_int_eq(count(out, "event=region_error"), 2);
    ck_assert_ptr_nonnull(strstr(out, "region_id=0 kind=not_leader\n"));
    ck_assert_ptr_nonnull(strstr(out, "region_id=99 kind=not_leader suppressed=49\n"));
    ck_assert_ptr_null(strstr(out, "event=x"));
    tkc_free(out);

    /* a burst that stops is summarised by the flush */
    cap_start();
    for (int i = 0; i < 5; i++)
        tkc_log_rl(TKC_LOG_WARN, "pd", "pd_error", 100, "event=pd_error n=%d", i);
    usleep(150 * 1000);
    ck_assert_uint_eq(tkc_log_ratelimit_flush(), 1);
    out = cap_read();
    ck_assert_int_eq(count(out, "event=pd_error"), 1);
    ck_assert_ptr_nonnull(strstr(out, "event=log_suppressed key=\"pd_error\" count=4"));
    tkc_free(out);
}
END_TEST

START_TEST(test_log_json_format)
{
    cap_start();
    tkc_log_set_format(TKC_LOG_FORMAT_JSON);
    tkc_log(TKC_LOG_WARN, "feed",
            "event=stream_failed " TKC_LOG_STREAM_FMT " ok=true ts=449568123456789012 "
            "msg=\"a \\\"quoted\\\" text\" stray words",
            "10.0.0.4:20160", (uint64_t)4, (uint64_t)17);
    tkc_log_set_format(TKC_LOG_FORMAT_KV);
    tkc_log(TKC_LOG_INFO, "feed", "event=kv_again n=1");
    char *out = cap_read();
    char *nl = strchr(out, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    json_error_t jerr;
    json_t *o = json_loads(out, 0, &jerr);
    ck_assert_msg(o != NULL, "not JSON: %s (%s)", out, jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "warn");
    ck_assert_str_eq(json_string_value(json_object_get(o, "comp")), "feed");
    ck_assert_str_eq(json_string_value(json_object_get(o, "event")), "stream_failed");
    ck_assert_str_eq(json_string_value(json_object_get(o, "store")), "10.0.0.4:20160");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "store_id")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "stream_id")), 17);
    ck_assert(json_is_true(json_object_get(o, "ok")));
    /* 19 digits: kept exact as a string */
    ck_assert_str_eq(json_string_value(json_object_get(o, "ts")), "449568123456789012");
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg")), "a \"quoted\" text");
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg_extra")), "stray words");
    json_decref(o);
    ck_assert_ptr_nonnull(strstr(nl + 1, "level=info comp=feed event=kv_again n=1\n"));
    tkc_free(out);
}
END_TEST

START_TEST(test_log_json_never_broken)
{
    cap_start();
    tkc_log_set_format(TKC_LOG_FORMAT_JSON);
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tkc_log(TKC_LOG_ERROR, "c", "event=huge v=%s", big);
    tkc_log_set_format(TKC_LOG_FORMAT_KV);
    char *out = cap_read();
    json_error_t jerr;
    json_t *o = json_loads(out, JSON_DISABLE_EOF_CHECK, &jerr);
    ck_assert_msg(o != NULL, "truncated line is not JSON: %s", jerr.text);
    ck_assert(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);
    tkc_free(out);
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("windows");
    tcase_add_test(tc, test_ratelimit_windows);
    tcase_add_test(tc, test_ratelimit_bounded_eviction);
    suite_add_tcase(s, tc);
    tc = tcase_create("log");
    tcase_add_test(tc, test_log_ratelimited_lines);
    tcase_add_test(tc, test_log_json_format);
    tcase_add_test(tc, test_log_json_never_broken);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(ratelimit_suite)
