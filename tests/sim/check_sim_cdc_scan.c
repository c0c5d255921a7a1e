/*
 * check_sim_cdc_scan.c: sim.cdc_scan, the incremental scan of a registration
 * against what the test wrote into the model (tikv-cdc-protocol.md §3.4).
 *
 * Expected rows are derived from the writes the test itself made, not from
 * the simulator: PREWRITE rows for current locks (old value = the newest
 * committed value before the lock), COMMITTED rows for versions committed
 * after checkpoint_ts, newest first per key, old value = the previous
 * version's value; keys ascending; one INITIALIZED row last; no resolved ts
 * naming the region before its INITIALIZED.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_sim_cdc_util.h"
#include "unit/check_main.h"
#include "util/keycodec.h"
#include "util/mem.h"

typedef struct {
    int type, op;
    int64_t key;
    const char *value, *old;
    uint64_t start_ts, commit_ts;
} want_row_t;

static void assert_row(cdc_env_t *e, const Cdcpb__Event__Row *r, const want_row_t *w, size_t i)
{
    uint8_t k[SIM_KEY_MAX];
    size_t kl = cdc_key(e, w->key, k);
    ck_assert_msg((int)r->type == w->type, "row %zu: type %d, want %d", i, (int)r->type, w->type);
    ck_assert_msg((int)r->op_type == w->op, "row %zu: op %d, want %d", i, (int)r->op_type, w->op);
    ck_assert_msg(r->key.len == kl && memcmp(r->key.data, k, kl) == 0, "row %zu: key", i);
    size_t vl = w->value ? strlen(w->value) : 0, ol = w->old ? strlen(w->old) : 0;
    ck_assert_msg(r->value.len == vl && (vl == 0 || memcmp(r->value.data, w->value, vl) == 0),
                  "row %zu: value", i);
    ck_assert_msg(r->old_value.len == ol && (ol == 0 || memcmp(r->old_value.data, w->old, ol) == 0),
                  "row %zu: old value (%zu bytes, want %zu)", i, r->old_value.len, ol);
    ck_assert_msg(r->start_ts == w->start_ts, "row %zu: start_ts", i);
    ck_assert_msg(r->commit_ts == w->commit_ts, "row %zu: commit_ts", i);
}

enum {
    PW = CDCPB__EVENT__LOG_TYPE__PREWRITE,
    CD = CDCPB__EVENT__LOG_TYPE__COMMITTED,
    PUT = CDCPB__EVENT__ROW__OP_TYPE__PUT,
    DEL = CDCPB__EVENT__ROW__OP_TYPE__DELETE,
};

/* The full scan: locks, multi-version keys, deletes, keys ascending,
 * INITIALIZED last, and no resolved ts for the region while it scans. */
START_TEST(test_scan_content)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.regions = 2;
    o.key_count = 100;
    o.cdc.incremental_scan_rows_per_tick = 1; /* ~2 ms per row: spans rounds */
    cdc_env_t e;
    cdc_env_init(&e, &o);

    cdc_region_t r0, r1;
    cdc_region_at(&e, 0, &r0);
    cdc_region_at(&e, 1, &r1);

    /* before the checkpoint */
    cdc_put_1pc(&e, 1, "a1");
    cdc_put_1pc(&e, 2, "b1");
    cdc_put_1pc(&e, 3, "c1");
    uint64_t cp = sim_model_tso(e.m);
    /* after it */
    uint64_t t_a2 = cdc_put_1pc(&e, 1, "a2");
    uint64_t s_a3 = cdc_prewrite(&e, 1, "a3");
    uint64_t t_a3 = cdc_commit(&e, 1, s_a3);
    uint64_t t_b2 = cdc_del_1pc(&e, 2);
    uint64_t s_c2 = cdc_prewrite(&e, 3, "c2"); /* stays locked */
    uint64_t s_d1 = cdc_prewrite(&e, 4, "d1");
    uint64_t t_d1 = cdc_commit(&e, 4, s_d1);
    uint64_t s_e = cdc_prewrite(&e, 5, NULL); /* a locked delete of a new key */
    char vals[40][8];
    uint64_t tv[40];
    for (int i = 0; i < 40; i++) {
        snprintf(vals[i], sizeof(vals[i]), "v%d", i);
        tv[i] = cdc_put_1pc(&e, 10 + i, vals[i]);
    }
    cdc_put_1pc(&e, 60, "other-region");

    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
    feed_t f;
    feed_init(&f, s);

    /* region 1 first, so resolved rounds are visibly running meanwhile */
    ck_assert_int_eq(cdc_register(&e, s, &r1, cp, 1), 0);
    feed_sub_t sub1 = {r1.id, 1}, sub0 = {r0.id, 2};
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &sub1));
    ck_assert_int_eq(cdc_register(&e, s, &r0, cp, 2), 0);
    ck_assert(feed_wait(&f, 10000, feed_pred_init, &sub0));
    long init0 = feed_find_init(&f, r0.id, 2);

    const Cdcpb__Event__Row *rows[64];
    size_t n = 0;
    for (long i = 0; i < init0; i++)
        if (f.it[i].kind == FI_ROW && f.it[i].region_id == r0.id && n < 64)
            rows[n++] = f.it[i].row;

    want_row_t want[64];
    size_t nw = 0;
    want[nw++] = (want_row_t){CD, PUT, 1, "a3", "a2", s_a3, t_a3};
    want[nw++] = (want_row_t){CD, PUT, 1, "a2", "a1", 0, t_a2};
    want[nw++] = (want_row_t){CD, DEL, 2, NULL, "b1", 0, t_b2};
    want[nw++] = (want_row_t){PW, PUT, 3, "c2", "c1", s_c2, 0};
    want[nw++] = (want_row_t){CD, PUT, 4, "d1", NULL, s_d1, t_d1};
    want[nw++] = (want_row_t){PW, DEL, 5, NULL, NULL, s_e, 0};
    for (int i = 0; i < 40; i++)
        want[nw++] = (want_row_t){CD, PUT, 10 + i, vals[i], NULL, 0, tv[i]};
    ck_assert_uint_eq(n, nw);
    for (size_t i = 0; i < nw; i++) {
        if (want[i].type == CD && want[i].start_ts == 0) {
            /* 1PC: start_ts is allocated inside the model, below commit_ts */
            ck_assert_uint_gt(rows[i]->start_ts, cp);
            ck_assert_uint_lt(rows[i]->start_ts, rows[i]->commit_ts);
            want[i].start_ts = rows[i]->start_ts;
        }
        assert_row(&e, rows[i], &want[i], i);
    }
    /* INITIALIZED is a bare row */
    const Cdcpb__Event__Row *ir = f.it[init0].row;
    ck_assert_uint_eq(ir->key.len, 0);
    ck_assert_uint_eq(ir->start_ts, 0);
    ck_assert_uint_eq(ir->commit_ts, 0);

    /* resolved ts: rounds ran while region 0 was scanning (region 1 got
     * some), but none named region 0 before its INITIALIZED */
    long first_rts_r0 = -1, rts_r1_before = 0;
    for (size_t i = 0; i < f.n; i++) {
        if (feed_item_names_region(&f.it[i], r0.id) && first_rts_r0 < 0)
            first_rts_r0 = (long)i;
        if ((long)i < init0 && feed_item_names_region(&f.it[i], r1.id))
            rts_r1_before++;
    }
    ck_assert_msg(first_rts_r0 < 0 || first_rts_r0 > init0, "resolved ts before INITIALIZED");
    ck_assert_int_gt(rts_r1_before, 0);
    /* and one comes after it */
    size_t before = f.n;
    for (int tries = 0; tries < 50 && first_rts_r0 < 0; tries++) {
        feed_pump(&f, 100);
        for (size_t i = before; i < f.n; i++)
            if (feed_item_names_region(&f.it[i], r0.id)) {
                first_rts_r0 = (long)i;
                break;
            }
        before = f.n;
    }
    ck_assert_int_gt(first_rts_r0, init0);

    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST


/* The requested range is honoured (clipped to the region), and a start key
 * that is not a valid encoding makes TiKV observe the whole region. */
START_TEST(test_scan_range)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    cdc_env_t e;
    cdc_env_init(&e, &o);
    cdc_region_t r;
    cdc_region_at(&e, 0, &r);
    uint64_t cp = sim_model_tso(e.m);
    for (int i = 1; i <= 8; i++)
        cdc_put_1pc(&e, i, "x");

    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
    feed_t f;
    feed_init(&f, s);
    uint8_t k3[SIM_KEY_MAX], k6[SIM_KEY_MAX];
    size_t l3 = cdc_key(&e, 3, k3), l6 = cdc_key(&e, 6, k6);
    ck_assert_int_eq(cdc_register_range(&e, s, &r, cp, 1, k3, l3, k6, l6), 0);
    /* a garbage start key (not 9-byte groups): whole region */
    sim_tc_reg_t bad = {.cluster_id = e.cluster_id, .region_id = r.id, .conf_ver = r.conf_ver,
                        .version_epoch = r.version, .checkpoint_ts = cp,
                        .start_key = (const uint8_t *)"zzz", .start_len = 3,
                        .end_key = k6, .end_len = l6, .request_id = 2};
    ck_assert_int_eq(sim_tc_register(s, &bad), 0);
    feed_sub_t a = {r.id, 1}, b = {r.id, 2};
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &a));
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &b));

    const Cdcpb__Event__Row *rows[16];
    size_t n = feed_rows(&f, r.id, 1, rows, 16);
    ck_assert_uint_eq(n, 3); /* keys 3, 4, 5 */
    for (size_t i = 0; i < n; i++) {
        uint8_t k[SIM_KEY_MAX];
        size_t kl = cdc_key(&e, 3 + (int64_t)i, k);
        ck_assert(rows[i]->key.len == kl && memcmp(rows[i]->key.data, k, kl) == 0);
    }
    n = feed_rows(&f, r.id, 2, rows, 16);
    ck_assert_uint_eq(n, 8);

    /* live rows obey the same ranges */
    cdc_put_1pc(&e, 7, "live7");
    cdc_put_1pc(&e, 4, "live4");
    feed_drain(&f, 300);
    ck_assert_uint_eq(feed_rows(&f, r.id, 1, rows, 16), 4);
    ck_assert(rows[3]->value.len == 5 && memcmp(rows[3]->value.data, "live4", 5) == 0);
    ck_assert_uint_eq(feed_rows(&f, r.id, 2, rows, 16), 10);

    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

/* GC safepoint (§5.6): like TiKV, a checkpoint below the safepoint is not
 * refused; the scan just cannot see what GC removed, and the store counts
 * the registration as gc-unsafe. A checkpoint at or above it is complete. */
START_TEST(test_scan_gc_safepoint)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    cdc_env_t e;
    cdc_env_init(&e, &o);
    cdc_region_t r;
    cdc_region_at(&e, 0, &r);

    cdc_put_1pc(&e, 1, "v1");
    uint64_t cp = sim_model_tso(e.m);
    cdc_put_1pc(&e, 1, "v2");
    uint64_t t3 = cdc_put_1pc(&e, 1, "v3");
    uint64_t sp = sim_model_tso(e.m);
    uint64_t t4 = cdc_put_1pc(&e, 1, "v4");
    sim_model_set_gc_safepoint(e.m, sp);

    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
    feed_t f;
    feed_init(&f, s);
    ck_assert_int_eq(cdc_register(&e, s, &r, cp, 1), 0);
    ck_assert_int_eq(cdc_register(&e, s, &r, sp, 2), 0);
    feed_sub_t a = {r.id, 1}, b = {r.id, 2};
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &a));
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &b));

    const Cdcpb__Event__Row *rows[8];
    /* below the safepoint: v2 is gone, v3 survives without its old value */
    ck_assert_uint_eq(feed_rows(&f, r.id, 1, rows, 8), 2);
    ck_assert_uint_eq(rows[0]->commit_ts, t4);
    ck_assert_uint_eq(rows[0]->old_value.len, 2);
    ck_assert_uint_eq(rows[1]->commit_ts, t3);
    ck_assert_uint_eq(rows[1]->old_value.len, 0);
    /* at the safepoint: exactly the newer change */
    ck_assert_uint_eq(feed_rows(&f, r.id, 2, rows, 8), 1);
    ck_assert_uint_eq(rows[0]->commit_ts, t4);

    sim_cdc_stats_t st;
    ck_assert_int_eq(sim_cdc_stats_get(e.cdc, 1, &st), 0);
    ck_assert_uint_eq(st.gc_unsafe_registrations, 1);
    ck_assert_uint_eq(st.registrations, 2);

    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

/* Batching (§3.7): entries chunks <= 32 KiB of row payload, messages up to
 * the configured maximum, and an oversized row still goes out alone. */
START_TEST(test_scan_batching)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.cdc.max_message_bytes = 64 * 1024;
    cdc_env_t e;
    cdc_env_init(&e, &o);
    cdc_region_t r;
    cdc_region_at(&e, 0, &r);
    uint64_t cp = sim_model_tso(e.m);

    uint8_t *big = tkc_malloc(100 * 1024);
    memset(big, 'b', 100 * 1024);
    for (int i = 1; i <= 30; i++) {
        uint8_t k[SIM_KEY_MAX];
        sim_mutation_t mu = {.key = k, .key_len = cdc_key(&e, i, k), .op = SIM_OP_PUT,
                             .value = big, .value_len = i == 15 ? 100 * 1024 : 10 * 1024};
        ck_assert_uint_gt(sim_model_commit_1pc(e.m, &mu, 1), 0);
    }

    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
    feed_t f;
    feed_init(&f, s);
    ck_assert_int_eq(cdc_register(&e, s, &r, cp, 1), 0);
    feed_sub_t a = {r.id, 1};
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &a));
    const Cdcpb__Event__Row *rows[40];
    ck_assert_uint_eq(feed_rows(&f, r.id, 1, rows, 40), 30);

    size_t multi = 0, big_alone = 0, msgs_with_rows = 0;
    for (size_t m = 0; m < f.n_msgs; m++) {
        const Cdcpb__ChangeDataEvent *ev = f.msgs[m];
        if (ev->n_events == 0)
            continue;
        msgs_with_rows++;
        size_t ent = 0;
        for (size_t i = 0; i < ev->n_events; i++) {
            const Cdcpb__Event *x = ev->events[i];
            if (x->event_case != CDCPB__EVENT__EVENT_ENTRIES)
                continue;
            size_t payload = 0;
            for (size_t j = 0; j < x->entries->n_entries; j++) {
                const Cdcpb__Event__Row *rw = x->entries->entries[j];
                payload += rw->key.len + rw->value.len + rw->old_value.len;
                if (rw->value.len == 100 * 1024 && x->entries->n_entries == 1)
                    big_alone++;
            }
            ck_assert_msg(x->entries->n_entries == 1 || payload <= 32 * 1024,
                          "chunk of %zu rows has %zu bytes", x->entries->n_entries, payload);
            if (x->entries->n_entries > 1)
                multi++;
            ent++;
        }
        ck_assert_msg(ev->n_events == 1 || f.msg_len[m] <= 64 * 1024,
                      "message of %zu events has %zu bytes", ev->n_events, f.msg_len[m]);
    }
    ck_assert_uint_gt(multi, 0);      /* rows were batched */
    ck_assert_uint_eq(big_alone, 1);  /* the oversized row went out on its own */
    ck_assert_uint_gt(msgs_with_rows, 4); /* ~320 KiB cannot fit 64 KiB messages */

    tkc_free(big);
    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

Suite *cdc_scan_suite(void);

Suite *cdc_scan_suite(void)
{
    Suite *s = suite_create("cdc_scan");
    TCase *tc = tcase_create("scan");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_scan_content);
    tcase_add_test(tc, test_scan_range);
    tcase_add_test(tc, test_scan_gc_safepoint);
    tcase_add_test(tc, test_scan_batching);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(cdc_scan_suite)
