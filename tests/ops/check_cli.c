/*
 * check_cli.c: the tikv-kafka-cdc binary as an operator meets it: help and
 * exit codes of every subcommand, check-config's report (every error with
 * file:line, secrets masked, environment sources), and run's refusal of a
 * bad configuration and of an unreachable PD.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/ops_proc.h"
#include "unit/check_main.h"

#ifndef TKC_CLI_PATH
#error "TKC_CLI_PATH must name the tikv-kafka-cdc binary"
#endif

#define BIN TKC_CLI_PATH
#define T 60000

static int run(ops_result_t *r, const char *const env[], ...)
{
    const char *argv[16] = {BIN};
    va_list ap;
    va_start(ap, env);
    int n = 1;
    for (const char *a = va_arg(ap, const char *); a && n < 15; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return ops_run(argv, env, T, r);
}

#define RUN(r, env, ...) run((r), (env), __VA_ARGS__, (const char *)NULL)

START_TEST(test_cli_help_and_exit_codes)
{
    ops_result_t r;
    ck_assert_int_eq(RUN(&r, NULL, "--help"), 0);
    for (const char *const *c = (const char *const[]){"run", "check-config", "lag", "version",
                                                       "demo", NULL};
         *c; c++)
        ck_assert_msg(strstr(r.out, *c), "top-level help lacks %s", *c);
    ck_assert_ptr_nonnull(strstr(r.out, "2  usage or configuration error"));
    ck_assert_ptr_nonnull(strstr(r.out, "3  not available"));
    ops_result_free(&r);

    static const char *const cmds[] = {"run", "check-config", "lag", "version", "demo"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        ck_assert_int_eq(RUN(&r, NULL, cmds[i], "--help"), 0);
        char want[64];
        snprintf(want, sizeof(want), "usage: tikv-kafka-cdc %s", cmds[i]);
        ck_assert_msg(strstr(r.out, want), "%s --help: %s", cmds[i], r.out);
        ck_assert_msg(strstr(r.out, "exit code"), "%s --help does not document exit codes",
                      cmds[i]);
        ops_result_free(&r);
    }

    ck_assert_int_eq(RUN(&r, NULL, "frobnicate"), 2);
    ck_assert_ptr_nonnull(strstr(r.err, "unknown command 'frobnicate'"));
    ops_result_free(&r);
    const char *argv0[] = {BIN, NULL};
    ck_assert_int_eq(ops_run(argv0, NULL, T, &r), 2);
    ops_result_free(&r);
    ck_assert_int_eq(RUN(&r, NULL, "run"), 2); /* no --config */
    ops_result_free(&r);
    ck_assert_int_eq(RUN(&r, NULL, "check-config"), 2);
    ops_result_free(&r);
    ck_assert_int_eq(RUN(&r, NULL, "lag"), 2); /* no brokers */
    ops_result_free(&r);
    ck_assert_int_eq(RUN(&r, NULL, "lag", "--tail", "zero"), 2);
    ops_result_free(&r);
    /* demo without tikv-sim: exit 3, pointing at make demo */
    ck_assert_int_eq(RUN(&r, NULL, "demo", "--sim", "/nonexistent/tikv-sim"), 3);
    ck_assert_ptr_nonnull(strstr(r.err, "make demo"));
    ops_result_free(&r);
}
END_TEST

START_TEST(test_cli_version)
{
    ops_result_t r;
    ck_assert_int_eq(RUN(&r, NULL, "version"), 0);
    ck_assert_ptr_nonnull(strstr(r.out, "tikv-kafka-cdc " TKC_VERSION));
    ck_assert_ptr_nonnull(strstr(r.out, "gRPC core"));
    ck_assert_ptr_nonnull(strstr(r.out, "librdkafka     2."));
    ck_assert_ptr_nonnull(strstr(r.out, "avro-c         1."));
    ops_result_free(&r);
}
END_TEST

START_TEST(test_cli_check_config_reports_every_error)
{
    char *path = ops_temp_file(".ini", "[feed]\n"                       /* 1 */
                                       "tables = 100\n"                 /* 2 */
                                       "workers = many\n"               /* 3 */
                                       "[kafka]\n"                      /* 4 */
                                       "bootstrap_servers = k:9092\n"   /* 5 */
                                       "partitons = 3\n"                /* 6 */
                                       "sasl.password = hunter2-secret\n" /* 7 */
                                       "[log]\n"                        /* 8 */
                                       "level = loud\n");               /* 9 */
    ops_result_t r;
    const char *env[] = {"TKC_PD_TIMEOUT=soon", NULL};
    ck_assert_int_eq(RUN(&r, env, "check-config", path), 2);
    char want[256];
    snprintf(want, sizeof(want), "error: %s:3: [feed] workers: invalid integer", path);
    ck_assert_msg(strstr(r.err, want), "missing: %s\nin:\n%s", want, r.err);
    snprintf(want, sizeof(want),
             "error: %s:6: [kafka] partitons: unknown key (did you mean partitions?)", path);
    ck_assert_msg(strstr(r.err, want), "missing: %s\nin:\n%s", want, r.err);
    snprintf(want, sizeof(want), "error: %s:9: [log] level:", path);
    ck_assert_msg(strstr(r.err, want), "missing: %s\nin:\n%s", want, r.err);
    ck_assert_ptr_nonnull(strstr(r.err, "error: env TKC_PD_TIMEOUT: [pd] timeout:"));
    ck_assert_int_eq(ops_count(r.err, "error: "), 4);
    ck_assert_ptr_nonnull(strstr(r.err, ": 4 errors"));
    ck_assert_ptr_null(strstr(r.err, "hunter2"));
    ck_assert_ptr_null(strstr(r.out, "hunter2"));
    ops_result_free(&r);

    /* run refuses the same file with the same report and exit code */
    ck_assert_int_eq(RUN(&r, env, "run", "--config", path), 2);
    ck_assert_int_eq(ops_count(r.err, "error: "), 4);
    ops_result_free(&r);
    unlink(path);
    free(path);

    ck_assert_int_eq(RUN(&r, NULL, "check-config", "/nonexistent/tkc.ini"), 2);
    ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent/tkc.ini: cannot read"));
    ops_result_free(&r);
}
END_TEST

START_TEST(test_cli_check_config_masks_and_shows_sources)
{
    char *path = ops_temp_file(".ini", "[feed]\ntables = 100\nworkers = 3\n"
                                       "[kafka]\nbootstrap_servers = k:9092\n"
                                       "sasl.password = hunter2-secret\n"
                                       "[schema_registry]\nurl = http://sr:8081\nusername = u\n");
    char *envfile = ops_temp_file(".env", "# docker env_file\nTKC_FEED_WORKERS=9\n\n"
                                          "TKC_RDKAFKA_LINGER_MS=25\n");
    const char *env[] = {"TKC_SCHEMA_REGISTRY_PASSWORD=pw-from-env-77", NULL};
    ops_result_t r;
    ck_assert_int_eq(RUN(&r, env, "check-config", "--env-file", envfile, path), 0);
    ck_assert_msg(strstr(r.out, "# env TKC_FEED_WORKERS\nworkers = 9\n"), "%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "# env TKC_RDKAFKA_LINGER_MS\nlinger.ms = 25\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "sasl.password = ******\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "# env TKC_SCHEMA_REGISTRY_PASSWORD\npassword = ******\n"));
    ck_assert_ptr_null(strstr(r.out, "hunter2"));
    ck_assert_ptr_null(strstr(r.out, "pw-from-env"));
    ck_assert_ptr_null(strstr(r.err, "hunter2"));
    ck_assert_ptr_nonnull(strstr(r.err, "configuration OK"));
    ops_result_free(&r);

    /* --quiet prints nothing */
    ck_assert_int_eq(RUN(&r, env, "check-config", "-q", path), 0);
    ck_assert_str_eq(r.out, "");
    ops_result_free(&r);

    ck_assert_int_eq(RUN(&r, NULL, "check-config", "--keys-markdown"), 0);
    ck_assert_ptr_nonnull(strstr(r.out, "| `bootstrap_servers` |"));
    ops_result_free(&r);
    unlink(path);
    unlink(envfile);
    free(path);
    free(envfile);
}
END_TEST

START_TEST(test_cli_run_pd_unreachable)
{
    /* A valid configuration whose PD does not answer: run fails at once
     * with exit code 1 and says why, instead of hanging. */
    char *path = ops_temp_file(".ini", "[feed]\ntables = 100\n"
                                       "[pd]\nendpoints = 127.0.0.1:1\ntimeout = 500ms\n"
                                       "[kafka]\nembedded_mock_brokers = 1\n"
                                       "[checkpoint]\nstore = file\npath = /tmp/tkc-cli-test.ckpt\n"
                                       "[http]\nlisten = 127.0.0.1:0\n");
    ops_result_t r;
    ck_assert_int_eq(RUN(&r, NULL, "run", "--config", path), 1);
    ck_assert_msg(strstr(r.err, "event=pd_unreachable"), "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.err, "event=http_listening"));
    ops_result_free(&r);
    unlink(path);
    free(path);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cli_help_and_exit_codes);
    tcase_add_test(tc, test_cli_version);
    tcase_add_test(tc, test_cli_check_config_reports_every_error);
    tcase_add_test(tc, test_cli_check_config_masks_and_shows_sources);
    tcase_add_test(tc, test_cli_run_pd_unreachable);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(cli_suite)
