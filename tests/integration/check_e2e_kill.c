/*
 * check_e2e_kill.c: kill -9 of the connector at random moments under load,
 * each time restarted from its checkpoint (issue 5, "Done when").
 *
 *   e2e.kill9         at-least-once, checkpoint in the compacted topic, 10
 *                     kills: nothing lost; a change appears twice only with
 *                     commit_ts above the checkpoint stored when the process
 *                     died (the checker reads it from the topic itself)
 *   e2e.exactly_once  the same source built with E2E_EXACTLY_ONCE: delivery =
 *                     exactly-once, 5 kills, a read_committed checker: every
 *                     change exactly once
 *
 * The kill moments come from a seeded generator (E2E_SEED overrides the
 * seed; the seed is printed), between 0.2 s and 4 s after the connector
 * logged that it runs, so some kills land in a run's first batch, before
 * its first checkpoint, and some in the middle of a transaction or a
 * watermark. (Only the very first run waits for its first regular
 * checkpoint; a kill before it is e2e.early_kill.)
 *
 * Afterwards the checker is run again on the same data with a stricter
 * reading (at-least-once data judged as exactly-once, or checkpoints claimed
 * higher than they were), to show that the duplicate and checkpoint rules
 * do fire.
 */
#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/e2e.h"
#include "unit/check_main.h"

#ifdef E2E_EXACTLY_ONCE
#define NAME "exactly_once"
#define KILLS 5
#else
#define NAME "kill9"
#define KILLS 10
#endif
#define RATE 1500

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int rng_between(int lo, int hi)
{
    return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1));
}

/* The checker must fire when the same data is read under stricter rules. */
static void checker_catches(tkc_e2e_t *e, const tkc_e2e_report_t *real)
{
    tkc_e2e_check_input_t in;
    tkc_e2e_report_t rep;
    tkc_e2e_check_input(e, &in);
#ifdef E2E_EXACTLY_ONCE
    /* read_uncommitted shows the aborted transactions of the killed
     * instances: judged as exactly-once, those copies are duplicates */
    (void)real;
    in.exactly_once = false;
    ck_assert_int_eq(tkc_e2e_check(&in, &rep), 0);
    printf("e2e.exactly_once: read_uncommitted sees %" PRIu64 " duplicates (aborted "
           "transactions of killed instances), read_committed none\n",
           rep.duplicates);
#else
    if (real->dup_restart > 0) {
        in.exactly_once = true;
        ck_assert_int_eq(tkc_e2e_check(&in, &rep), 0);
        ck_assert_msg(rep.bad_duplicates == real->duplicates,
                      "judged as exactly-once: %" PRIu64 " bad duplicates, expected %" PRIu64,
                      rep.bad_duplicates, real->duplicates);
        in.exactly_once = false;
    }
    /* claim every run ended with the final checkpoint: replayed copies are
     * then below it, and every change after the real checkpoint was "not in
     * Kafka when the checkpoint said so" */
    tkc_e2e_run_t runs[64];
    ck_assert(in.n_runs <= 64);
    memcpy(runs, in.runs, in.n_runs * sizeof(runs[0]));
    for (size_t r = 0; r + 1 < in.n_runs; r++)
        runs[r].ckpt_at_end = real->final_checkpoint;
    in.runs = runs;
    ck_assert_int_eq(tkc_e2e_check(&in, &rep), 0);
    ck_assert_msg(rep.checkpoint_violations > 0, "inflated checkpoints went unnoticed");
    if (real->dup_restart > 0)
        ck_assert_msg(rep.bad_duplicates > 0, "duplicates below a checkpoint went unnoticed");
    printf("e2e.kill9: with inflated checkpoints the checker reports %" PRIu64
           " checkpoint violations and %" PRIu64 " bad duplicates\n",
           rep.checkpoint_violations, rep.bad_duplicates);
#endif
}

START_TEST(test_kill)
{
    const char *env_seed = getenv("E2E_SEED");
    uint64_t seed = env_seed && *env_seed ? strtoull(env_seed, NULL, 10) : 20240607;
    rng_state = seed;
    printf("e2e." NAME ": seed %" PRIu64 " (E2E_SEED)\n", seed);

    static const char *const sim_args[] = {"--delete-pct", "10", "--onepc-pct", "10", NULL};
    tkc_e2e_opts_t o = {
        .name = NAME,
        .stores = 3,
        .regions = 300,
        .seed = seed,
        .sim_args = sim_args,
#ifdef E2E_EXACTLY_ONCE
        .exactly_once = true,
#endif
        .ckpt_store = TKC_E2E_CKPT_KAFKA,
    };
    tkc_e2e_t *e = tkc_e2e_new(&o);
    tkc_e2e_connector_start(e);
    tkc_e2e_workload(e, RATE);
    /* A kill before the very first regular checkpoint is e2e.early_kill
     * (it used to lose changes: the restart resolved start_ts = now again).
     * Here every kill comes after it. */
    tkc_e2e_wait_checkpoint(e, 60000);

    for (int k = 0; k < KILLS; k++) {
        int wait_ms = rng_between(200, 4000);
        usleep((useconds_t)wait_ms * 1000);
        ck_assert_msg(!tkc_e2e_connector_supervise(e), "the connector exited by itself (%s)",
                      tkc_e2e_dir(e));
        int st = tkc_e2e_connector_stop(e, SIGKILL);
        ck_assert_int_eq(st, 128 + SIGKILL);
        tkc_e2e_connector_start(e);
    }
    usleep(3000 * 1000);
    tkc_e2e_drain(e, 180000);

    tkc_e2e_report_t rep;
    tkc_e2e_finish(e, &rep);
    printf("e2e." NAME ": kills %d, changes checked %" PRIu64 ", duplicates %" PRIu64 "\n", KILLS,
           rep.changes_checked, rep.duplicates);
    ck_assert_msg(rep.errors == 0, "%" PRIu64 " violations (see the report above)", rep.errors);
    ck_assert_uint_eq(rep.distinct_delivered, rep.truth_changes);
    ck_assert_uint_eq(tkc_e2e_runs(e), KILLS + 1);
    ck_assert_uint_gt(rep.truth_changes, 1000);
#ifdef E2E_EXACTLY_ONCE
    ck_assert_uint_eq(rep.duplicates, 0);
#endif
    checker_catches(e, &rep);
    tkc_e2e_destroy(e);
}
END_TEST

static Suite *e2e_kill_suite(void)
{
    Suite *s = suite_create("e2e." NAME);
    TCase *tc = tcase_create(NAME);
    tcase_set_timeout(tc, 540);
    tcase_add_test(tc, test_kill);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(e2e_kill_suite)
