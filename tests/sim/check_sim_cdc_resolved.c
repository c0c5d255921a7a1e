/*
 * check_sim_cdc_resolved.c: sim.cdc_resolved, resolved timestamps
 * (tikv-cdc-protocol.md §3.8, §5.5): a lock pins its region's resolved ts at
 * its start_ts, re-sent every round while unchanged, other regions advance;
 * under a concurrent workload every region's resolved ts is monotonic and
 * never at or above a later commit, checked on the client side and against
 * the ground truth's region_resolved_ts; a stalled region gets no resolved ts
 * until the stall ends.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "check_sim_cdc_util.h"
#include "unit/check_main.h"

/* last resolved ts seen for @p region in items [from, f->n) */
static uint64_t last_rts(const feed_t *f, size_t from, uint64_t region, size_t *count)
{
    uint64_t ts = 0;
    size_t n = 0;
    for (size_t i = from; i < f->n; i++)
        if (feed_item_names_region(&f->it[i], region)) {
            ts = f->it[i].ts;
            n++;
        }
    if (count)
        *count = n;
    return ts;
}

START_TEST(test_resolved_lock_pins)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.regions = 2;
    cdc_env_t e;
    cdc_env_init(&e, &o);
    cdc_region_t r0, r1;
    cdc_region_at(&e, 0, &r0);
    cdc_region_at(&e, 1, &r1);
    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    /* multiplexing keeps the two regions in separate batches (request ids) */
    sim_tc_stream_t *s = sim_tc_open(tc, true, "stream-multiplexing");
    feed_t f;
    feed_init(&f, s);
    uint64_t cp = sim_model_tso(e.m);
    uint64_t lock_ts = cdc_prewrite(&e, 3, "held"); /* region 0 */
    ck_assert_int_eq(cdc_register(&e, s, &r0, cp, 1), 0);
    ck_assert_int_eq(cdc_register(&e, s, &r1, cp, 2), 0);
    feed_sub_t a = {r0.id, 1}, b = {r1.id, 2};
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &a));
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &b));
    size_t from = f.n;
    size_t want = from + 10;
    ck_assert(feed_wait(&f, 5000, feed_pred_n_resolved, &want));

    /* r0: the same value every round, the lock's start_ts */
    size_t n0 = 0, n1 = 0;
    for (size_t i = from; i < f.n; i++)
        if (feed_item_names_region(&f.it[i], r0.id)) {
            ck_assert_uint_eq(f.it[i].ts, lock_ts);
            n0++;
        }
    ck_assert_uint_ge(n0, 4);
    /* r1: strictly advancing (the TSO follows the wall clock) */
    uint64_t prev = 0;
    for (size_t i = from; i < f.n; i++)
        if (feed_item_names_region(&f.it[i], r1.id)) {
            ck_assert_uint_gt(f.it[i].ts, prev);
            ck_assert_uint_gt(f.it[i].ts, lock_ts);
            prev = f.it[i].ts;
            n1++;
        }
    ck_assert_uint_ge(n1, 4);

    /* committing releases it, above the commit */
    uint64_t c = cdc_commit(&e, 3, lock_ts);
    from = f.n;
    want = from + 6;
    ck_assert(feed_wait(&f, 5000, feed_pred_n_resolved, &want));
    ck_assert_uint_gt(last_rts(&f, from, r0.id, NULL), c);

    /* a stalled region gets nothing during the stall, then resumes */
    sim_cdc_fault_stall_resolved(e.cdc, r0.id, 400);
    feed_drain(&f, 60); /* a round may have been queued already */
    from = f.n;
    feed_drain(&f, 250);
    size_t cnt0, cnt1;
    last_rts(&f, from, r0.id, &cnt0);
    last_rts(&f, from, r1.id, &cnt1);
    ck_assert_uint_eq(cnt0, 0);
    ck_assert_uint_ge(cnt1, 2);
    feed_drain(&f, 400);
    last_rts(&f, from, r0.id, &cnt0);
    ck_assert_uint_ge(cnt0, 1);

    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

/* ---- a concurrent workload ---- */

typedef struct {
    cdc_env_t *e;
    atomic_bool stop;
    uint64_t seed;
    int64_t keys;
    uint64_t txns;
} wl_t;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *workload(void *arg)
{
    wl_t *w = arg;
    while (!atomic_load(&w->stop)) {
        /* 1-3 distinct keys, possibly across regions */
        int n = 1 + (int)(rnd(&w->seed) % 3);
        uint8_t keys[3][SIM_KEY_MAX];
        sim_mutation_t mu[3];
        sim_bytes_t kb[3];
        int64_t first = 1 + (int64_t)(rnd(&w->seed) % (uint64_t)w->keys);
        char val[3][16];
        for (int i = 0; i < n; i++) {
            int64_t k = 1 + (first - 1 + i * 37) % w->keys;
            size_t kl = cdc_key(w->e, k, keys[i]);
            snprintf(val[i], sizeof(val[i]), "v%llu", (unsigned long long)rnd(&w->seed) % 1000);
            bool del = rnd(&w->seed) % 8 == 0;
            mu[i] = (sim_mutation_t){.key = keys[i], .key_len = kl,
                                     .op = del ? SIM_OP_DELETE : SIM_OP_PUT,
                                     .value = (const uint8_t *)val[i],
                                     .value_len = del ? 0 : strlen(val[i])};
            kb[i] = (sim_bytes_t){.data = keys[i], .len = kl};
        }
        unsigned kind = (unsigned)(rnd(&w->seed) % 10);
        if (kind < 4) {
            sim_model_commit_1pc(w->e->m, mu, (size_t)n);
        } else {
            uint64_t st = sim_model_tso(w->e->m);
            if (sim_model_prewrite(w->e->m, st, mu, (size_t)n, keys[0], mu[0].key_len) != 0)
                continue;
            /* hold the locks a little: resolved ts must wait for them */
            struct timespec ts = {0, (long)(rnd(&w->seed) % 3) * 1000000L};
            nanosleep(&ts, NULL);
            if (kind < 9)
                sim_model_commit(w->e->m, st, kb, (size_t)n);
            else
                sim_model_rollback(w->e->m, st, kb, (size_t)n);
        }
        w->txns++;
    }
    return NULL;
}

typedef struct {
    size_t lines, bad;
} truth_chk_t;

static void truth_line(void *opaque, uint64_t region_id, uint64_t commit_ts, uint64_t rts)
{
    truth_chk_t *t = opaque;
    (void)region_id;
    t->lines++;
    if (commit_ts <= rts)
        t->bad++;
}

/* Resolved ts under load: per region monotonic (<= 8 regions: one batch per
 * round), every later commit above it, and the truth file agrees. */
START_TEST(test_resolved_invariants)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.regions = 6;
    o.key_count = 300;
    o.truth = true;
    cdc_env_t e;
    cdc_env_init(&e, &o);
    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
    feed_t f;
    feed_init(&f, s);
    cdc_region_t r[6];
    uint64_t cp = sim_model_tso(e.m);

    wl_t w = {.e = &e, .seed = 0x1234567, .keys = 300};
    atomic_init(&w.stop, false);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, workload, &w), 0);
    for (int i = 0; i < 6; i++) {
        cdc_region_at(&e, (size_t)i, &r[i]);
        ck_assert_int_eq(cdc_register(&e, s, &r[i], cp, (uint64_t)i + 1), 0);
    }
    feed_drain(&f, 1500);
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    feed_drain(&f, 300);

    /* Batches carry their minimum, so a region's reported value can only be
     * compared round to round once every region takes part in every round:
     * after the last INITIALIZED. Before that, a region joining with a lower
     * value lowers the batch (as in TiKV; clients ignore a fallen-back ts). */
    size_t all_init = 0;
    for (int i = 0; i < 6; i++) {
        long x = feed_find_init(&f, r[i].id, (uint64_t)i + 1);
        ck_assert_int_ge(x, 0);
        if ((size_t)x > all_init)
            all_init = (size_t)x;
    }
    size_t rows = 0, rts_seen = 0;
    for (int i = 0; i < 6; i++) {
        uint64_t max_rts = 0;
        bool init = false;
        for (size_t j = 0; j < f.n; j++) {
            const feed_item_t *it = &f.it[j];
            if (feed_item_names_region(it, r[i].id)) {
                ck_assert_msg(init, "resolved ts before INITIALIZED");
                ck_assert_msg(j < all_init || it->ts >= max_rts, "resolved ts went back");
                if (it->ts > max_rts)
                    max_rts = it->ts;
                rts_seen++;
            }
            if (it->kind == FI_ERROR)
                ck_abort_msg("unexpected error event");
            if (it->kind != FI_ROW || it->region_id != r[i].id)
                continue;
            if (it->row->type == CDCPB__EVENT__LOG_TYPE__INITIALIZED)
                init = true;
            if (it->row->type == CDCPB__EVENT__LOG_TYPE__COMMIT ||
                it->row->type == CDCPB__EVENT__LOG_TYPE__COMMITTED) {
                ck_assert_msg(it->row->commit_ts > max_rts,
                              "commit_ts %llu at or below resolved ts %llu",
                              (unsigned long long)it->row->commit_ts,
                              (unsigned long long)max_rts);
                rows++;
            }
        }
        ck_assert(init);
    }
    ck_assert_uint_gt(w.txns, 50);
    ck_assert_uint_gt(rows, 50);
    ck_assert_uint_gt(rts_seen, 6 * 5);

    truth_chk_t t = {0};
    ck_assert_uint_gt(cdc_truth_scan(&e, truth_line, &t), 50);
    ck_assert_uint_eq(t.bad, 0);

    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

Suite *cdc_resolved_suite(void);

Suite *cdc_resolved_suite(void)
{
    Suite *s = suite_create("cdc_resolved");
    TCase *tc = tcase_create("resolved");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_resolved_lock_pins);
    tcase_add_test(tc, test_resolved_invariants);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(cdc_resolved_suite)
