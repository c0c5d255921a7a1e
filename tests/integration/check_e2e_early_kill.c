/*
 * check_e2e_early_kill.c: e2e.early_kill, a kill before the first regular
 * checkpoint.
 *
 * The bug it reproduced (fixed in connector/src/pipeline.c, pipeline open):
 * a feed without a checkpoint starts from [feed] start_ts; with start_ts =
 * now that is resolved to PD's current TSO at every start, and nothing was
 * stored until the first checkpoint. So when the connector was killed before
 * its first checkpoint (the first second or two after it starts, or longer
 * while the initial scan of a large table runs) and restarted, the restart
 * resolved "now" again, later, and every change committed between the first
 * start and the restart was never delivered. The fix: at open, before the
 * feed reads anything, the resolved start ts is stored as the first
 * checkpoint, so a restart resumes from the first start ts.
 *
 * The test: the workload runs, the connector starts and is killed with
 * SIGKILL as soon as it logs that it runs (the harness checks that no
 * checkpoint above the start ts was stored: the run never got to a regular
 * one), the load goes on for 3 s, the connector is started again and
 * everything is checked. Expected: the restart resumed from the first start
 * ts and no change is lost.
 */
#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "integration/e2e.h"
#include "unit/check_main.h"

START_TEST(test_early_kill)
{
    tkc_e2e_opts_t o = {.name = "early_kill", .stores = 3, .regions = 100, .seed = 5};
    tkc_e2e_t *e = tkc_e2e_new(&o);
    tkc_e2e_workload(e, 1000);
    usleep(1000 * 1000);
    tkc_e2e_connector_start(e);
    tkc_e2e_connector_stop(e, SIGKILL);
    tkc_e2e_check_input_t in;
    tkc_e2e_check_input(e, &in);
    ck_assert_msg(in.runs[0].ckpt_at_end <= in.runs[0].resumed_from,
                  "premise: the first run was killed before its first regular checkpoint, but "
                  "checkpoint %" PRIu64 " above its start ts %" PRIu64 " is stored",
                  in.runs[0].ckpt_at_end, in.runs[0].resumed_from);
    /* the fix: the start ts itself is stored before the feed reads anything */
    ck_assert_msg(in.runs[0].ckpt_at_end == in.runs[0].resumed_from,
                  "the first run stored checkpoint %" PRIu64 ", not its start ts %" PRIu64,
                  in.runs[0].ckpt_at_end, in.runs[0].resumed_from);
    usleep(3000 * 1000);
    tkc_e2e_connector_start(e);
    usleep(3000 * 1000);
    tkc_e2e_drain(e, 120000);

    tkc_e2e_report_t rep;
    tkc_e2e_finish(e, &rep);
    tkc_e2e_check_input(e, &in);
    printf("e2e.early_kill: first start_ts %" PRIu64 ", the restart began at %" PRIu64
           " (%.1f s later); %" PRIu64 " changes lost\n",
           in.runs[0].resumed_from, in.runs[1].resumed_from,
           (double)((in.runs[1].resumed_from >> 18) - (in.runs[0].resumed_from >> 18)) / 1000.0,
           rep.lost);
    ck_assert_msg(in.runs[1].resumed_from == in.runs[0].resumed_from,
                  "the restart resumed from %" PRIu64 ", not from the first start ts %" PRIu64,
                  in.runs[1].resumed_from, in.runs[0].resumed_from);
    ck_assert_msg(rep.errors == 0, "%" PRIu64 " violations (see the report above)", rep.errors);
    tkc_e2e_destroy(e);
}
END_TEST

static Suite *e2e_early_kill_suite(void)
{
    Suite *s = suite_create("e2e.early_kill");
    TCase *tc = tcase_create("early_kill");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_early_kill);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(e2e_early_kill_suite)
