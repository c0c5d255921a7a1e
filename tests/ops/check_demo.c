/*
 * check_demo.c: `tikv-kafka-cdc demo`, the thing `make demo` runs.
 *
 *   watch    the status logic alone (demo_watch.h): /status parsing, the
 *            live line, the initial-scan announcement, the recovery after a
 *            restart (max lag, recovery time, streams opened), no recovery
 *            claimed without a spike
 *   cli      usage errors (2), a missing tikv-sim (3), --help
 *   run      the real demo as a process with tikv-sim and the embedded Kafka:
 *            exit 0, live lines, the restart announced and recovered from,
 *            decoded messages that match tikv-sim's ground truth row by row
 *            (key, commit ts, op, value length and CRC-32), no row missing,
 *            and no child process left behind
 *   sigint   Ctrl-C in the middle: clean stop, ending still shown, exit 0
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "demo_watch.h"
#include "ops/ops_proc.h"
#include "unit/check_main.h"
#include "../test_file.h"

#ifndef TKC_CLI_PATH
#error "TKC_CLI_PATH must name the tikv-kafka-cdc binary"
#endif
#ifndef TKC_SIM_PATH
#error "TKC_SIM_PATH must name the tikv-sim binary"
#endif
#ifndef TKC_SOURCE_DIR
#error "TKC_SOURCE_DIR must name the source tree"
#endif

#define BIN TKC_CLI_PATH
#define CONFIG TKC_SOURCE_DIR "/config/demo.ini"

/* ===== watch: the pure status logic ===== */

static void make_sample(tkc_demo_sample_t *s, int64_t t, const char *state, double lag,
                        uint64_t rows, uint64_t s2_live, uint64_t s2_opened, uint64_t s2_id)
{
    memset(s, 0, sizeof(*s));
    s->t_ms = t;
    snprintf(s->state, sizeof(s->state), "%s", state);
    s->have_ts = true;
    s->resolved_lag_s = lag;
    s->checkpoint_lag_s = lag + 0.5;
    s->rows_delivered = rows;
    s->regions_total = 64;
    s->regions_initialized = strcmp(state, "initial_scan") == 0 ? 10 : 64;
    s->scan_done = strcmp(state, "initial_scan") != 0;
    s->n_stores = 3;
    for (int i = 0; i < 3; i++)
        s->stores[i] = (tkc_demo_store_t){(uint64_t)i + 1, (uint64_t)i + 1, 2, 2, 0};
    s->stores[1].streams_live = s2_live;
    s->stores[1].streams_opened = s2_opened;
    s->stores[1].stream_id = s2_id;
}

START_TEST(test_demo_sample_parse)
{
    const char *json =
        "{\"version\":\"0.1.0\",\"state\":\"running\",\"resolved\":{\"ts\":470734778772488192,"
        "\"time\":\"2026-11-26T16:31:13.418Z\",\"lag_seconds\":0.539},\"checkpoint\":{\"ts\":"
        "470734778510344192,\"lag_seconds\":1.539},\"kafka\":{\"topics\":[{\"topic\":"
        "\"demo.t100\",\"rows_delivered\":26586},{\"topic\":\"demo.watermark\","
        "\"rows_delivered\":0},{\"topic\":\"demo.t101\",\"rows_delivered\":14}]},"
        "\"initial_scan\":{\"done\":true,\"regions_initialized\":190,\"regions_total\":200},"
        "\"stores\":[{\"store_id\":3,\"stream_id\":6,\"streams_live\":2,\"streams_opened\":2,"
        "\"streams_retired\":0},{\"store_id\":1,\"stream_id\":3,\"streams_live\":1,"
        "\"streams_opened\":4,\"streams_retired\":3}]}";
    tkc_demo_sample_t s;
    char err[256];
    ck_assert_int_eq(tkc_demo_sample_parse(json, 1234, &s, err, sizeof(err)), TKC_ERR_OK);
    ck_assert_int_eq(s.t_ms, 1234);
    ck_assert_str_eq(s.state, "running");
    ck_assert(s.have_ts);
    ck_assert_uint_eq(s.resolved_ts, 470734778772488192ULL);
    ck_assert_uint_eq(s.checkpoint_ts, 470734778510344192ULL);
    ck_assert_double_eq_tol(s.resolved_lag_s, 0.539, 1e-9);
    ck_assert_double_eq_tol(s.checkpoint_lag_s, 1.539, 1e-9);
    ck_assert_uint_eq(s.rows_delivered, 26600);
    ck_assert(s.scan_done);
    ck_assert_uint_eq(s.regions_initialized, 190);
    ck_assert_uint_eq(s.regions_total, 200);
    ck_assert_uint_eq(s.n_stores, 2);
    ck_assert_uint_eq(s.stores[0].store_id, 1); /* sorted */
    ck_assert_uint_eq(s.stores[0].streams_opened, 4);
    ck_assert_uint_eq(s.stores[0].streams_retired, 3);
    ck_assert_uint_eq(s.stores[1].store_id, 3);
    ck_assert_uint_eq(s.stores[1].stream_id, 6);

    /* Before the pipeline exists: no timestamps, still a sample. */
    ck_assert_int_eq(tkc_demo_sample_parse("{\"state\":\"starting\",\"stores\":[]}", 0, &s, err,
                                           sizeof(err)),
                     TKC_ERR_OK);
    ck_assert(!s.have_ts);
    ck_assert_int_eq(tkc_demo_sample_parse("not json", 0, &s, err, sizeof(err)),
                     TKC_ERR_CORRUPT);
    ck_assert_int_eq(tkc_demo_sample_parse("{\"resolved\":{}}", 0, &s, err, sizeof(err)),
                     TKC_ERR_CORRUPT);
}
END_TEST

START_TEST(test_demo_watch_restart_recovery)
{
    tkc_demo_watch_t *w = tkc_demo_watch_new();
    tkc_demo_sample_t s;
    char buf[512];

    make_sample(&s, 0, "initial_scan", 2.0, 0, 2, 2, 2);
    tkc_demo_watch_add(w, &s);
    tkc_demo_watch_line(w, buf, sizeof(buf));
    ck_assert_msg(strstr(buf, "initial scan 10/64 regions"), "%s", buf);
    ck_assert(!tkc_demo_watch_event(w, buf, sizeof(buf)));

    /* Steady: 3000 rows/s, a saw-tooth lag of at most 0.75 s. */
    uint64_t rows = 0;
    for (int64_t t = 250; t <= 6000; t += 250) {
        rows += 750;
        make_sample(&s, t, "running", (double)(t % 1000) / 1000.0, rows, 2, 2, 2);
        tkc_demo_watch_add(w, &s);
        if (t == 250) {
            ck_assert(tkc_demo_watch_event(w, buf, sizeof(buf)));
            ck_assert_msg(strstr(buf, "initial scan done") && strstr(buf, "64 regions"), "%s",
                          buf);
        }
    }
    ck_assert(!tkc_demo_watch_event(w, buf, sizeof(buf)));
    tkc_demo_watch_line(w, buf, sizeof(buf));
    ck_assert_msg(strstr(buf, "0:06") && strstr(buf, " 3000 rows/s") &&
                      strstr(buf, "resolved  0.0 s") && strstr(buf, "s1:2 s2:2 s3:2") &&
                      strstr(buf, "18000 rows"),
                  "%s", buf);

    /* Store 2 restarts at 6 s: its streams go, the lag climbs for 5 s, new
     * streams are opened, the lag falls back. */
    tkc_demo_watch_mark_restart(w, 6000, 2);
    for (int64_t t = 6250; t <= 11000; t += 250) {
        bool back = t >= 8000;
        make_sample(&s, t, "running", 0.25 + (double)(t - 6000) / 1000.0, rows, back ? 2 : 0,
                    back ? 4 : 2, back ? 8 : 2);
        tkc_demo_watch_add(w, &s);
        ck_assert(!tkc_demo_watch_event(w, buf, sizeof(buf)));
    }
    tkc_demo_watch_line(w, buf, sizeof(buf));
    ck_assert_msg(strstr(buf, " 0 rows/s") && strstr(buf, "resolved  5.2"), "%s", buf);
    make_sample(&s, 11250, "running", 0.4, rows + 15000, 2, 4, 8);
    tkc_demo_watch_add(w, &s);
    ck_assert(tkc_demo_watch_event(w, buf, sizeof(buf)));
    ck_assert_msg(strstr(buf, "0:11 lag back to 0.4 s") && strstr(buf, "max 5.2") &&
                      strstr(buf, "store 2"),
                  "%s", buf);
    /* Later spikes do not move the figures of this restart. */
    make_sample(&s, 11500, "running", 9.0, rows + 15750, 2, 4, 8);
    tkc_demo_watch_add(w, &s);
    ck_assert(!tkc_demo_watch_event(w, buf, sizeof(buf)));

    tkc_demo_summary_t sum;
    tkc_demo_watch_summary(w, &sum);
    ck_assert(sum.restarted);
    ck_assert_uint_eq(sum.restart_store, 2);
    ck_assert_int_eq(sum.restart_at_ms, 6000);
    ck_assert_double_eq_tol(sum.lag_before_s, 0.75, 1e-9);
    ck_assert_double_eq_tol(sum.threshold_s, 1.25, 1e-9);
    ck_assert(sum.spiked);
    ck_assert_double_eq_tol(sum.lag_max_s, 5.25, 1e-9);
    ck_assert_int_eq(sum.recovery_ms, 5250);
    ck_assert_uint_eq(sum.streams_opened_end - sum.streams_opened_at_restart, 2);
    ck_assert_uint_eq(sum.stream_id_at_restart, 2);
    ck_assert_uint_eq(sum.stream_id_end, 8);
    ck_assert_int_eq(sum.scan_ms, 250);
    ck_assert_uint_eq(sum.regions_total, 64);
    ck_assert_int_eq(sum.elapsed_ms, 11500);
    ck_assert_uint_eq(sum.rows_delivered, rows + 15750);
    tkc_demo_watch_destroy(w);
}
END_TEST

START_TEST(test_demo_watch_no_spike)
{
    /* A restart the feed absorbs: no recovery is claimed, none is timed. */
    tkc_demo_watch_t *w = tkc_demo_watch_new();
    tkc_demo_sample_t s;
    char buf[512];
    for (int64_t t = 0; t <= 4000; t += 250) {
        make_sample(&s, t, "running", 0.2, (uint64_t)t, 2, 2, 2);
        tkc_demo_watch_add(w, &s);
    }
    tkc_demo_watch_mark_restart(w, 4000, 2);
    for (int64_t t = 4250; t <= 9000; t += 250) {
        make_sample(&s, t, "running", 0.9, (uint64_t)t, 2, 3, 5);
        tkc_demo_watch_add(w, &s);
    }
    while (tkc_demo_watch_event(w, buf, sizeof(buf)))
        ck_assert_msg(!strstr(buf, "recovered"), "%s", buf);
    tkc_demo_summary_t sum;
    tkc_demo_watch_summary(w, &sum);
    ck_assert(sum.restarted);
    ck_assert(!sum.spiked);
    ck_assert_int_eq(sum.recovery_ms, -1);
    ck_assert_double_eq_tol(sum.threshold_s, 1.0, 1e-9); /* floor: 0.2 + 0.5 < 1 */
    ck_assert_double_eq_tol(sum.lag_max_s, 0.9, 1e-9);
    tkc_demo_watch_destroy(w);
}
END_TEST

/* ===== cli ===== */

START_TEST(test_demo_cli_errors)
{
    ops_result_t r;
    const char *help[] = {BIN, "demo", "--help", NULL};
    ck_assert_int_eq(ops_run(help, NULL, 30000, &r), 0);
    ck_assert_ptr_nonnull(strstr(r.out, "usage: tikv-kafka-cdc demo"));
    ck_assert_ptr_nonnull(strstr(r.out, "exit codes"));
    ck_assert_ptr_nonnull(strstr(r.out, "--duration"));
    ops_result_free(&r);

    const char *bad_num[] = {BIN, "demo", "--duration", "soon", NULL};
    ck_assert_int_eq(ops_run(bad_num, NULL, 30000, &r), 2);
    ck_assert_ptr_nonnull(strstr(r.err, "'soon'"));
    ops_result_free(&r);

    const char *late[] = {BIN, "demo", "--duration", "10", "--restart-at", "10", NULL};
    ck_assert_int_eq(ops_run(late, NULL, 30000, &r), 2);
    ops_result_free(&r);

    const char *no_store[] = {BIN, "demo", "--stores", "2", "--restart-store", "3", NULL};
    ck_assert_int_eq(ops_run(no_store, NULL, 30000, &r), 2);
    ops_result_free(&r);

    const char *no_sim[] = {BIN, "demo", "--sim", "/nonexistent/tikv-sim", "--config", CONFIG,
                            NULL};
    ck_assert_int_eq(ops_run(no_sim, NULL, 30000, &r), 3);
    ck_assert_msg(strstr(r.err, "/nonexistent/tikv-sim not found") && strstr(r.err, "make demo"),
                  "%s", r.err);
    ck_assert_str_eq(r.out, ""); /* refused before anything started */
    ops_result_free(&r);
}
END_TEST

/* ===== the real thing ===== */

/* The truth line of (key_hex, commit_ts), parsed; NULL if absent. */
static json_t *truth_of(const char *truth, const char *key_hex, json_int_t commit_ts)
{
    char needle[256];
    snprintf(needle, sizeof(needle), "\"key\":\"%s\"", key_hex);
    for (const char *p = strstr(truth, needle); p; p = strstr(p + 1, needle)) {
        const char *bol = p;
        while (bol > truth && bol[-1] != '\n')
            bol--;
        const char *eol = strchr(p, '\n');
        char *line = strndup(bol, eol ? (size_t)(eol - bol) : strlen(bol));
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        free(line);
        if (j && json_integer_value(json_object_get(j, "commit_ts")) == commit_ts)
            return j;
        json_decref(j);
    }
    return NULL;
}

static bool pid_gone(const char *out, const char *marker)
{
    const char *p = strstr(out, marker);
    if (!p)
        return false;
    int pid = atoi(p + strlen(marker));
    return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

START_TEST(test_demo_run)
{
    char dir[] = "/tmp/tkc-check-demo-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char truth_path[256];
    snprintf(truth_path, sizeof(truth_path), "%s/truth.jsonl", dir);
    const char *argv[] = {BIN,         "demo",      "--duration", "16",      "--restart-at",
                          "7",         "--rate",    "1000",       "--regions", "64",
                          "--warmup",  "2",         "--messages", "6",       "--no-tty",
                          "--sim",     TKC_SIM_PATH, "--config",  CONFIG,    "--dir",
                          dir,         "--truth",   truth_path,   NULL};
    ops_result_t r;
    int rc = ops_run(argv, NULL, 150000, &r);
    /* the whole story goes to the test log: check cannot carry messages this long */
    fprintf(stderr, "demo stdout:\n%s\n", r.out ? r.out : "");
    if (rc != 0)
        fprintf(stderr, "demo stderr:\n%s\n", r.err ? r.err : "");
    ck_assert_msg(rc == 0, "demo exit %d (output above)", rc);
    const char *out = r.out;

    /* The story, in order. */
    const char *steps[] = {"tikv-kafka-cdc demo:",
                           "tikv-sim   started (pid ",
                           "): PD 127.0.0.1:",
                           "connector  started (pid ",
                           "status: http://127.0.0.1:",
                           "kafka      embedded brokers 127.0.0.1:",
                           "kcat -C -b 127.0.0.1:",
                           "initial scan done: 64 regions initialized",
                           ">>> 0:07 restarting TiKV store 2 (watch the lag)",
                           ">>> 0:1",
                           "store 2 is up again",
                           "The newest row changes in demo.t100",
                           "The newest watermark in demo.watermark",
                           "stopping   the connector (SIGTERM: final watermark and checkpoint) "
                           "... done",
                           "tikv-sim ... done",
                           "summary",
                           "lag                max ",
                           "opened to store 2 after the restart",
                           "completeness       tikv-sim committed "};
    const char *at = out;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const char *p = strstr(at, steps[i]);
        ck_assert_msg(p, "missing (in order) \"%s\" in the demo output (above)", steps[i]);
        at = p;
    }
    ck_assert_msg(!strstr(out, "MISSING"), "MISSING in the demo output (above)");
    /*
     * No reconnection loop to the restarted store: at most one new stream per
     * worker (demo.ini: 2). Its leaders move away after 1 s, and no stream is
     * opened to a store that refuses connections, so usually none at all.
     */
    const char *streams = strstr(out, "  streams            ");
    ck_assert_msg(streams, "no streams line in the demo output (above)");
    int opened = atoi(streams + strlen("  streams            "));
    ck_assert_msg(opened >= 0 && opened <= 2, "%d streams to the restarted store", opened);
    ck_assert_msg(!strstr(out, "NOT back"), "the lag did not recover (output above)");
    ck_assert_msg(strstr(out, "; recovered (back under ") || strstr(out, "no visible spike"),
                  "no recovery line in the summary (output above)");

    /* The live line: one per second with --no-tty, with rows moving. */
    int live = 0, moving = 0;
    for (const char *p = strstr(out, "rows/s"); p; p = strstr(p + 1, "rows/s")) {
        live++;
        const char *bol = p;
        while (bol > out && bol[-1] != '\n')
            bol--;
        const char *st = strstr(bol, "running");
        if (st && st < p && atof(st + strlen("running")) > 0)
            moving++;
    }
    ck_assert_msg(live >= 10, "only %d live lines", live);
    ck_assert_msg(moving >= 5, "only %d live lines with rows moving", moving);

    /* Every decoded message is a committed row of tikv-sim's truth. */
    char *truth = tkc_test_read_file(truth_path, NULL);
    ck_assert_ptr_nonnull(truth);
    int rows = 0;
    for (const char *p = strstr(out, "  {\"topic\":\"demo.t100\""); p;
         p = strstr(p + 1, "  {\"topic\":\"demo.t100\"")) {
        const char *eol = strchr(p, '\n');
        char *line = strndup(p, eol ? (size_t)(eol - p) : strlen(p));
        json_error_t e;
        json_t *m = json_loads(line, 0, &e);
        ck_assert_msg(m, "not JSON: %s (%s)", line, e.text);
        int part = (int)json_integer_value(json_object_get(m, "partition"));
        ck_assert_msg(part >= 0 && part < 3, "%s", line);
        ck_assert(json_integer_value(json_object_get(m, "offset")) >= 0);
        const char *key_hex = json_string_value(json_object_get(m, "key_hex"));
        json_int_t commit_ts = json_integer_value(json_object_get(m, "commit_ts"));
        ck_assert_ptr_nonnull(key_hex);
        json_t *t = truth_of(truth, key_hex, commit_ts);
        ck_assert_msg(t, "not in the truth file: %s", line);
        ck_assert_str_eq(json_string_value(json_object_get(m, "op")),
                         json_string_value(json_object_get(t, "op")));
        ck_assert_int_eq(json_integer_value(json_object_get(m, "value_bytes")),
                         json_integer_value(json_object_get(t, "value_len")));
        ck_assert_int_eq(json_integer_value(json_object_get(m, "value_crc32")),
                         json_integer_value(json_object_get(t, "value_crc32")));
        /* the readable key is the same key: t100_r<handle> */
        const char *key = json_string_value(json_object_get(m, "key"));
        ck_assert_msg(key && strncmp(key, "t100_r", 6) == 0, "%s", line);
        json_decref(t);
        json_decref(m);
        free(line);
        rows++;
    }
    ck_assert_msg(rows == 6, "%d decoded rows", rows);
    free(truth);

    /* Nothing left running. */
    ck_assert_msg(pid_gone(out, "connector  started (pid "), "connector still running");
    ck_assert_msg(pid_gone(out, "tikv-sim   started (pid "), "tikv-sim still running");
    ops_result_free(&r);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_demo_sigint)
{
    char dir[] = "/tmp/tkc-check-demo-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *argv[] = {BIN,         "demo",     "--duration", "120",  "--rate", "500",
                          "--regions", "32",       "--warmup",   "1",    "--no-tty",
                          "--sim",     TKC_SIM_PATH, "--config", CONFIG, "--dir",  dir,
                          NULL};
    int fd;
    pid_t pid = ops_spawn(argv, NULL, &fd);
    ck_assert_int_gt(pid, 0);
    char line[2048], conn_pid[32] = "";
    bool running = false;
    while (!running && ops_read_line(fd, line, sizeof(line), 60000) == 0) {
        static const char started[] = "connector  started (pid ";
        const char *p = strstr(line, started);
        if (p)
            snprintf(conn_pid, sizeof(conn_pid), "%d", atoi(p + strlen(started)));
        running = strstr(line, "running") && strstr(line, "rows/s");
    }
    ck_assert_msg(running, "no live line with the feed running");
    ck_assert(conn_pid[0]);
    kill(pid, SIGINT);
    /* Read the rest so the demo never blocks on a full pipe. */
    size_t cap = 1 << 16, n = 0;
    char *rest = calloc(1, cap);
    while (ops_read_line(fd, line, sizeof(line), 60000) == 0) {
        size_t len = strlen(line);
        if (n + len + 2 > cap) {
            cap = (n + len + 2) * 2;
            rest = realloc(rest, cap);
        }
        memcpy(rest + n, line, len);
        n += len;
        rest[n++] = '\n';
        rest[n] = '\0';
    }
    close(fd);
    int rc = ops_wait(pid, 60000);
    ck_assert_msg(rc == 0, "exit %d after SIGINT:\n%s", rc, rest);
    ck_assert_msg(strstr(rest, "interrupted: stopping cleanly"), "%s", rest);
    ck_assert_msg(strstr(rest, "The newest row changes in demo.t100"), "%s", rest);
    ck_assert_msg(strstr(rest, "the connector (SIGTERM: final watermark and checkpoint) ... done"),
                  "%s", rest);
    ck_assert_msg(strstr(rest, "tikv-sim committed") && !strstr(rest, "MISSING"), "%s", rest);
    ck_assert_msg(kill(atoi(conn_pid), 0) != 0 && errno == ESRCH, "connector %s still there",
                  conn_pid);
    free(rest);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *demo_suite(void)
{
    Suite *s = suite_create("demo");
    TCase *tc = tcase_create("watch");
    tcase_add_test(tc, test_demo_sample_parse);
    tcase_add_test(tc, test_demo_watch_restart_recovery);
    tcase_add_test(tc, test_demo_watch_no_spike);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_demo_cli_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("run");
    tcase_set_timeout(tc, 200);
    tcase_add_test(tc, test_demo_run);
    tcase_add_test(tc, test_demo_sigint);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(demo_suite)
