/*
 * check_metrics.c: the metrics registry (connector/src/metrics.c): exact
 * rendering of the Prometheus text format (HELP/TYPE once per family,
 * labels escaped, scaled values exact), get-or-create series, hiding,
 * collectors, and concurrent lock-free updates.
 */
#include <check.h>
#include <pthread.h>
#include <string.h>

#include "metrics.h"
#include "unit/check_main.h"
#include "util/mem.h"

START_TEST(test_metrics_render_exact)
{
    tkc_metrics_t *m = tkc_metrics_new();
    tkc_metric_t *rows = tkc_metrics_register(m, TKC_METRIC_COUNTER, "x_rows_total",
                                              "Rows.\nSecond line \\ here.", "feed,topic", 0);
    tkc_metric_t *lag = tkc_metrics_register(m, TKC_METRIC_GAUGE, "x_lag_seconds", "Lag.",
                                             "feed", 3);
    tkc_metric_t *up = tkc_metrics_register(m, TKC_METRIC_GAUGE, "x_up", "Up.", NULL, 0);
    tkc_metric_t *empty = tkc_metrics_register(m, TKC_METRIC_GAUGE, "x_empty", "Never set.",
                                               "feed", 0);
    ck_assert_ptr_nonnull(rows);
    ck_assert_ptr_nonnull(empty);
    tkc_metric_add(tkc_metric_get(rows, TKC_METRIC_LABELS("f", "cdc.t1")), 5);
    tkc_metric_add(tkc_metric_get(rows, TKC_METRIC_LABELS("f", "cdc.t1")), 2);
    tkc_metric_add(tkc_metric_get(rows, TKC_METRIC_LABELS("f", "a\"b\\c\nd")), 1);
    tkc_metric_set(tkc_metric_get(lag, TKC_METRIC_LABELS("f")), 12345);
    tkc_metric_set(tkc_metric_get(lag, TKC_METRIC_LABELS("g")), -5);
    tkc_metric_set(tkc_metric_get(lag, TKC_METRIC_LABELS("h")), 2000);
    tkc_metric_set(tkc_metric_get(up, NULL), 1);
    size_t len;
    char *text = tkc_metrics_render(m, &len);
    const char *want = "# HELP x_rows_total Rows.\\nSecond line \\\\ here.\n"
                       "# TYPE x_rows_total counter\n"
                       "x_rows_total{feed=\"f\",topic=\"cdc.t1\"} 7\n"
                       "x_rows_total{feed=\"f\",topic=\"a\\\"b\\\\c\\nd\"} 1\n"
                       "# HELP x_lag_seconds Lag.\n"
                       "# TYPE x_lag_seconds gauge\n"
                       "x_lag_seconds{feed=\"f\"} 12.345\n"
                       "x_lag_seconds{feed=\"g\"} -0.005\n"
                       "x_lag_seconds{feed=\"h\"} 2\n"
                       "# HELP x_up Up.\n"
                       "# TYPE x_up gauge\n"
                       "x_up 1\n";
    ck_assert_str_eq(text, want);
    ck_assert_uint_eq(len, strlen(want));
    tkc_free(text);
    tkc_metrics_destroy(m);
}
END_TEST

START_TEST(test_metrics_register_rules)
{
    tkc_metrics_t *m = tkc_metrics_new();
    tkc_metric_t *a = tkc_metrics_register(m, TKC_METRIC_COUNTER, "a_total", "A.", "x", 0);
    /* same family again: the same object */
    ck_assert_ptr_eq(tkc_metrics_register(m, TKC_METRIC_COUNTER, "a_total", "A.", "x", 0), a);
    /* same name, different shape: refused */
    ck_assert_ptr_null(tkc_metrics_register(m, TKC_METRIC_GAUGE, "a_total", "A.", "x", 0));
    ck_assert_ptr_null(tkc_metrics_register(m, TKC_METRIC_COUNTER, "a_total", "A.", "y", 0));
    /* invalid names and labels */
    ck_assert_ptr_null(tkc_metrics_register(m, TKC_METRIC_GAUGE, "1abc", "", NULL, 0));
    ck_assert_ptr_null(tkc_metrics_register(m, TKC_METRIC_GAUGE, "a-b", "", NULL, 0));
    ck_assert_ptr_null(tkc_metrics_register(m, TKC_METRIC_GAUGE, "ok", "", "__reserved", 0));
    ck_assert_ptr_null(tkc_metrics_register(m, TKC_METRIC_GAUGE, "ok2", "", "a,b,c,d,e", 0));
    ck_assert_ptr_null(tkc_metrics_register(m, TKC_METRIC_GAUGE, "ok3", "", "a:b", 0));
    ck_assert_ptr_null(tkc_metrics_register(m, TKC_METRIC_GAUGE, "ok4", "", NULL, 10));
    /* get-or-create returns the same series */
    tkc_metric_series_t *s1 = tkc_metric_get(a, TKC_METRIC_LABELS("v"));
    ck_assert_ptr_eq(tkc_metric_get(a, TKC_METRIC_LABELS("v")), s1);
    ck_assert_ptr_ne(tkc_metric_get(a, TKC_METRIC_LABELS("w")), s1);
    tkc_metrics_destroy(m);
}
END_TEST

static void collector(void *opaque, tkc_metrics_t *m)
{
    int *calls = opaque;
    (*calls)++;
    tkc_metric_t *f = tkc_metrics_register(m, TKC_METRIC_GAUGE, "c_store_streams", "S.", "store", 0);
    tkc_metric_hide_all(f);
    /* first scrape: stores 1 and 2; later: only 2 */
    if (*calls == 1)
        tkc_metric_set(tkc_metric_get(f, TKC_METRIC_LABELS("1")), 1);
    tkc_metric_set(tkc_metric_get(f, TKC_METRIC_LABELS("2")), *calls);
}

START_TEST(test_metrics_collectors_and_hiding)
{
    tkc_metrics_t *m = tkc_metrics_new();
    int calls = 0;
    tkc_metrics_add_collector(m, collector, &calls);
    char *t1 = tkc_metrics_render(m, NULL);
    ck_assert_ptr_nonnull(strstr(t1, "c_store_streams{store=\"1\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t1, "c_store_streams{store=\"2\"} 1\n"));
    char *t2 = tkc_metrics_render(m, NULL);
    ck_assert_ptr_null(strstr(t2, "store=\"1\""));
    ck_assert_ptr_nonnull(strstr(t2, "c_store_streams{store=\"2\"} 2\n"));
    ck_assert_int_eq(calls, 2);
    tkc_free(t1);
    tkc_free(t2);
    tkc_metrics_destroy(m);
}
END_TEST

typedef struct {
    tkc_metric_series_t *s;
    int n;
} adder_t;

static void *adder(void *arg)
{
    adder_t *a = arg;
    for (int i = 0; i < a->n; i++)
        tkc_metric_add(a->s, 1);
    return NULL;
}

START_TEST(test_metrics_concurrent_adds)
{
    tkc_metrics_t *m = tkc_metrics_new();
    tkc_metric_t *f = tkc_metrics_register(m, TKC_METRIC_COUNTER, "n_total", "N.", NULL, 0);
    adder_t a = {tkc_metric_get(f, NULL), 200000};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, adder, &a);
    for (int r = 0; r < 20; r++) {
        char *t = tkc_metrics_render(m, NULL);
        tkc_free(t);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(tkc_metric_value(a.s), 800000);
    tkc_metrics_destroy(m);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("render");
    tcase_add_test(tc, test_metrics_render_exact);
    tcase_add_test(tc, test_metrics_register_rules);
    tcase_add_test(tc, test_metrics_collectors_and_hiding);
    tcase_add_test(tc, test_metrics_concurrent_adds);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(metrics_suite)
