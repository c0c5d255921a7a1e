/*
 * check_e2e_basic.c: e2e.basic, the top of the test pyramid without faults.
 *
 * tikv-sim with 3 stores and 1000 regions, a workload with puts, deletes,
 * one-phase commits and rollbacks at a steady rate for 15 s, the connector
 * as a process (at-least-once, checkpoint in a file), then the workload is
 * stopped, the harness waits until the checkpoint covers the last commit,
 * stops the connector with SIGTERM (graceful: exit 0) and the checker
 * compares everything in Kafka with the truth. Without faults there must be
 * no duplicate at all.
 *
 * Then the checker is run again on doctored copies of the truth (a change
 * left out, a change that never reached Kafka, a wrong value CRC) to show it
 * reports exactly those: a checker that cannot fail proves nothing.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/e2e.h"
#include "unit/check_main.h"
#include "util/clock.h"

#define LOAD_S 15
#define RATE 2000

typedef enum { DROP_LINE, ADD_FAKE, FLIP_CRC } doctor_t;

/* Copies the truth to <truth>.doctored with one alteration. */
static char *doctor_truth(const char *truth, doctor_t how, uint64_t fake_ts)
{
    char *out = NULL;
    ck_assert(asprintf(&out, "%s.doctored", truth) > 0);
    FILE *in = fopen(truth, "r"), *o = fopen(out, "w");
    ck_assert(in && o);
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    bool done = false;
    while (getline(&line, &cap, in) > 0) {
        n++;
        if (!done && how == DROP_LINE && n == 100) {
            done = true;
            continue;
        }
        char *crc = strstr(line, "\"value_crc32\":");
        if (!done && how == FLIP_CRC && n >= 200 && strstr(line, "\"op\":\"put\"") && crc) {
            unsigned long v = strtoul(crc + 14, NULL, 10);
            char *rest = crc + 14;
            while (*rest >= '0' && *rest <= '9')
                rest++;
            *crc = 0;
            fprintf(o, "%s\"value_crc32\":%lu%s", line, (v + 1) & 0xffffffffUL, rest);
            done = true;
            continue;
        }
        fputs(line, o);
    }
    if (how == ADD_FAKE) {
        /* a key no workload writes (row id 0xffffffff) */
        fprintf(o, "{\"key\":\"7480000000000000645f7280000000ffffffff\",\"op\":\"put\","
                   "\"value_len\":3,\"value_crc32\":1,\"start_ts\":%" PRIu64
                   ",\"commit_ts\":%" PRIu64 ",\"region_id\":1,\"region_resolved_ts\":0}\n",
                fake_ts - 1, fake_ts);
        done = true;
    }
    free(line);
    fclose(in);
    ck_assert_int_eq(fclose(o), 0);
    ck_assert_msg(done, "could not doctor the truth (%d lines)", n);
    return out;
}

static void checker_catches(tkc_e2e_t *e, uint64_t last_commit)
{
    tkc_e2e_check_input_t in;
    tkc_e2e_report_t rep;
    tkc_e2e_check_input(e, &in);

    in.truth_path = doctor_truth(tkc_e2e_truth_path(e), DROP_LINE, 0);
    ck_assert_int_eq(tkc_e2e_check(&in, &rep), 0);
    ck_assert_msg(rep.invented >= 1 && rep.lost == 0, "dropped truth line: invented=%" PRIu64
                  " lost=%" PRIu64, rep.invented, rep.lost);
    free((char *)in.truth_path);

    in.truth_path = doctor_truth(tkc_e2e_truth_path(e), ADD_FAKE, last_commit - 5);
    ck_assert_int_eq(tkc_e2e_check(&in, &rep), 0);
    ck_assert_msg(rep.lost == 1 && rep.invented == 0, "fake truth line: lost=%" PRIu64
                  " invented=%" PRIu64, rep.lost, rep.invented);
    free((char *)in.truth_path);

    in.truth_path = doctor_truth(tkc_e2e_truth_path(e), FLIP_CRC, 0);
    ck_assert_int_eq(tkc_e2e_check(&in, &rep), 0);
    ck_assert_msg(rep.mismatched >= 1 && rep.lost == 0 && rep.invented == 0,
                  "flipped CRC: mismatched=%" PRIu64, rep.mismatched);
    free((char *)in.truth_path);
    printf("e2e.basic: the checker caught a dropped, an added and an altered truth change\n");
}

START_TEST(test_basic)
{
    static const char *const sim_args[] = {"--delete-pct", "10", "--onepc-pct", "10",
                                           "--rollback-pct", "5", NULL};
    tkc_e2e_opts_t o = {
        .name = "basic",
        .stores = 3,
        .regions = 1000,
        .seed = 11,
        .sim_args = sim_args,
        .ckpt_store = TKC_E2E_CKPT_FILE,
    };
    tkc_e2e_t *e = tkc_e2e_new(&o);
    tkc_e2e_connector_start(e);
    tkc_e2e_workload(e, RATE);

    double max_lag = 0;
    for (int i = 0; i < LOAD_S * 2; i++) {
        usleep(500 * 1000);
        ck_assert_msg(!tkc_e2e_connector_supervise(e), "the connector exited under load (%s)",
                      tkc_e2e_dir(e));
        char *m = tkc_e2e_connector_metrics(e);
        double lag = tkc_e2e_metric(m, "tikv_kafka_cdc_checkpoint_lag_seconds", NULL);
        if (i >= 10 && lag > max_lag) /* after the first 5 s: the initial scan is over */
            max_lag = lag;
        free(m);
    }
    int64_t t0 = tkc_clock_mono_ms();
    uint64_t last = tkc_e2e_drain(e, 120000);
    printf("e2e.basic: max checkpoint lag under load %.2f s; caught up with the last commit "
           "%" PRIu64
           " %.1f s after the workload stopped\n",
           max_lag, last, (double)(tkc_clock_mono_ms() - t0) / 1000.0);

    tkc_e2e_report_t rep;
    tkc_e2e_finish(e, &rep);
    ck_assert_msg(rep.errors == 0, "%" PRIu64 " violations (see the report above)", rep.errors);
    ck_assert_msg(rep.truth_changes > (uint64_t)RATE * LOAD_S / 4,
                  "the workload barely ran: %" PRIu64 " changes", rep.truth_changes);
    ck_assert_uint_eq(rep.distinct_delivered, rep.truth_changes);
    ck_assert_uint_eq(rep.duplicates, 0);
    ck_assert_uint_eq(tkc_e2e_runs(e), 1);
    ck_assert_uint_gt(rep.row_topic_watermarks, 0);
    ck_assert_uint_gt(rep.watermark_topic_watermarks, 0);
    checker_catches(e, last);
    tkc_e2e_destroy(e);
}
END_TEST

static Suite *e2e_basic_suite(void)
{
    Suite *s = suite_create("e2e.basic");
    TCase *tc = tcase_create("basic");
    tcase_set_timeout(tc, 360);
    tcase_add_test(tc, test_basic);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(e2e_basic_suite)
