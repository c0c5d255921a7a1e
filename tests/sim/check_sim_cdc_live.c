/*
 * check_sim_cdc_live.c: sim.cdc_live, real-time rows (tikv-cdc-protocol.md
 * §3.5, §3.6): PREWRITE with value and old value, COMMIT without old value
 * and with the value only when short, ROLLBACK, 1PC COMMITTED, deletes; and a
 * live COMMIT overtaking the PREWRITE of a slow incremental scan (§7 #8).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_sim_cdc_util.h"
#include "unit/check_main.h"

enum {
    PW = CDCPB__EVENT__LOG_TYPE__PREWRITE,
    CM = CDCPB__EVENT__LOG_TYPE__COMMIT,
    RB = CDCPB__EVENT__LOG_TYPE__ROLLBACK,
    CD = CDCPB__EVENT__LOG_TYPE__COMMITTED,
    UNK = CDCPB__EVENT__ROW__OP_TYPE__UNKNOWN,
    PUT = CDCPB__EVENT__ROW__OP_TYPE__PUT,
    DEL = CDCPB__EVENT__ROW__OP_TYPE__DELETE,
};

typedef struct {
    int type, op;
    int64_t key;
    const uint8_t *value;
    size_t vlen;
    const uint8_t *old;
    size_t olen;
    uint64_t start_ts, commit_ts;
} want_t;

static void check_row(cdc_env_t *e, const Cdcpb__Event__Row *r, const want_t *w, size_t i)
{
    uint8_t k[SIM_KEY_MAX];
    size_t kl = cdc_key(e, w->key, k);
    ck_assert_msg((int)r->type == w->type && (int)r->op_type == w->op,
                  "row %zu: type/op %d/%d, want %d/%d", i, (int)r->type, (int)r->op_type, w->type,
                  w->op);
    ck_assert_msg(r->key.len == kl && memcmp(r->key.data, k, kl) == 0, "row %zu: key", i);
    ck_assert_msg(r->value.len == w->vlen && (w->vlen == 0 || memcmp(r->value.data, w->value,
                                                                      w->vlen) == 0),
                  "row %zu: value %zu bytes, want %zu", i, r->value.len, w->vlen);
    ck_assert_msg(r->old_value.len == w->olen &&
                      (w->olen == 0 || memcmp(r->old_value.data, w->old, w->olen) == 0),
                  "row %zu: old value %zu bytes, want %zu", i, r->old_value.len, w->olen);
    ck_assert_msg(r->start_ts == w->start_ts, "row %zu: start_ts", i);
    ck_assert_msg(r->commit_ts == w->commit_ts, "row %zu: commit_ts", i);
}

#define S(x) (const uint8_t *)(x), strlen(x)
#define NONE NULL, 0

START_TEST(test_live_rows)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    cdc_env_t e;
    cdc_env_init(&e, &o);
    cdc_region_t r;
    cdc_region_at(&e, 0, &r);

    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
    feed_t f;
    feed_init(&f, s);
    ck_assert_int_eq(cdc_register(&e, s, &r, sim_model_tso(e.m), 7), 0);
    feed_sub_t sub = {r.id, 7};
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &sub));

    uint8_t long_v[300];
    memset(long_v, 'L', sizeof(long_v));

    want_t w[16];
    size_t nw = 0;
    uint64_t s1 = cdc_prewrite(&e, 1, "p1");
    w[nw++] = (want_t){PW, PUT, 1, S("p1"), NONE, s1, 0};
    uint64_t c1 = cdc_commit(&e, 1, s1);
    w[nw++] = (want_t){CM, PUT, 1, S("p1"), NONE, s1, c1};
    /* 1PC: COMMITTED with the old value */
    uint64_t c2 = cdc_put_1pc(&e, 1, "q");
    w[nw++] = (want_t){CD, PUT, 1, S("q"), S("p1"), 0, c2};
    /* a long value: PREWRITE carries it, COMMIT does not (> 255 B) */
    uint64_t s3 = cdc_prewrite_bytes(&e, 2, long_v, sizeof(long_v));
    w[nw++] = (want_t){PW, PUT, 2, long_v, sizeof(long_v), NONE, s3, 0};
    uint64_t c3 = cdc_commit(&e, 2, s3);
    w[nw++] = (want_t){CM, PUT, 2, NONE, NONE, s3, c3};
    /* rollback: op UNKNOWN, commit_ts 0, no value */
    uint64_t s4 = cdc_prewrite(&e, 3, "r");
    w[nw++] = (want_t){PW, PUT, 3, S("r"), NONE, s4, 0};
    cdc_rollback(&e, 3, s4);
    w[nw++] = (want_t){RB, UNK, 3, NONE, NONE, s4, 0};
    /* deletes: empty value, the deleted value as old value */
    uint64_t c5 = cdc_del_1pc(&e, 1);
    w[nw++] = (want_t){CD, DEL, 1, NONE, S("q"), 0, c5};
    uint64_t s6 = cdc_prewrite(&e, 2, NULL);
    w[nw++] = (want_t){PW, DEL, 2, NONE, long_v, sizeof(long_v), s6, 0};
    uint64_t c6 = cdc_commit(&e, 2, s6);
    w[nw++] = (want_t){CM, DEL, 2, NONE, NONE, s6, c6};

    const Cdcpb__Event__Row *rows[32];
    for (int tries = 0; tries < 50 && feed_rows(&f, r.id, 7, rows, 32) < nw; tries++)
        feed_pump(&f, 100);
    feed_drain(&f, 200); /* nothing extra may follow */
    ck_assert_uint_eq(feed_rows(&f, r.id, 7, rows, 32), nw);
    for (size_t i = 0; i < nw; i++) {
        if (w[i].type == CD) {
            ck_assert_uint_lt(rows[i]->start_ts, rows[i]->commit_ts);
            w[i].start_ts = rows[i]->start_ts; /* 1PC start_ts is internal */
        }
        check_row(&e, rows[i], &w[i], i);
    }

    sim_cdc_stats_t st;
    ck_assert_int_eq(sim_cdc_stats_get(e.cdc, 1, &st), 0);
    ck_assert_uint_eq(st.rows_prewrite, 4);
    ck_assert_uint_eq(st.rows_commit, 3);
    ck_assert_uint_eq(st.rows_rollback, 1);
    ck_assert_uint_eq(st.rows_committed, 2);
    ck_assert_uint_eq(st.rows_initialized, 1);

    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

/* §7 scenario 8: the scan is slow (1 row per tick), a lock at the end of the
 * range is committed right after registering; the live COMMIT reaches the
 * client before the scan's PREWRITE of the same key, both before
 * INITIALIZED. */
START_TEST(test_live_commit_before_prewrite)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.cdc.incremental_scan_rows_per_tick = 1;
    cdc_env_t e;
    cdc_env_init(&e, &o);
    cdc_region_t r;
    cdc_region_at(&e, 0, &r);
    uint64_t cp = sim_model_tso(e.m);
    for (int i = 1; i <= 60; i++)
        cdc_put_1pc(&e, i, "scan");
    uint64_t s70 = cdc_prewrite(&e, 70, "late");

    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
    feed_t f;
    feed_init(&f, s);
    ck_assert_int_eq(cdc_register(&e, s, &r, cp, 1), 0);
    /* the registration is processed asynchronously: wait for the first scan
     * row so the snapshot is known to contain the lock */
    for (int tries = 0; tries < 100; tries++) {
        const Cdcpb__Event__Row *x[1];
        if (feed_rows(&f, r.id, 1, x, 1) > 0)
            break;
        feed_pump(&f, 50);
    }
    uint64_t c70 = cdc_commit(&e, 70, s70);
    feed_sub_t sub = {r.id, 1};
    ck_assert(feed_wait(&f, 10000, feed_pred_init, &sub));
    long init = feed_find_init(&f, r.id, 1);

    uint8_t k70[SIM_KEY_MAX];
    size_t l70 = cdc_key(&e, 70, k70);
    long i_commit = -1, i_prewrite = -1;
    for (long i = 0; i < (long)f.n; i++) {
        const feed_item_t *it = &f.it[i];
        if (it->kind != FI_ROW || it->row->key.len != l70 ||
            memcmp(it->row->key.data, k70, l70) != 0)
            continue;
        if (it->row->type == CDCPB__EVENT__LOG_TYPE__COMMIT) {
            ck_assert_uint_eq(it->row->commit_ts, c70);
            i_commit = i;
        }
        if (it->row->type == CDCPB__EVENT__LOG_TYPE__PREWRITE) {
            ck_assert_uint_eq(it->row->start_ts, s70);
            ck_assert(it->row->value.len == 4 && memcmp(it->row->value.data, "late", 4) == 0);
            i_prewrite = i;
        }
    }
    ck_assert_int_ge(i_commit, 0);
    ck_assert_int_gt(i_prewrite, i_commit);
    ck_assert_int_gt(init, i_prewrite);

    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

/* Every subscription of a region gets a live row: two calls, and two request
 * ids on one call (TiKV >= 7.3 keys registrations by (request_id, region)). */
START_TEST(test_live_fanout)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    cdc_env_t e;
    cdc_env_init(&e, &o);
    cdc_region_t r;
    cdc_region_at(&e, 0, &r);
    uint64_t cp = sim_model_tso(e.m);

    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *a = sim_tc_open(tc, false, NULL), *b = sim_tc_open(tc, true, NULL);
    feed_t fa, fb;
    feed_init(&fa, a);
    feed_init(&fb, b);
    ck_assert_int_eq(cdc_register(&e, a, &r, cp, 1), 0);
    ck_assert_int_eq(cdc_register(&e, a, &r, cp, 2), 0);
    ck_assert_int_eq(cdc_register(&e, b, &r, cp, 1), 0);
    feed_sub_t s1 = {r.id, 1}, s2 = {r.id, 2};
    ck_assert(feed_wait(&fa, 5000, feed_pred_init, &s1));
    ck_assert(feed_wait(&fa, 5000, feed_pred_init, &s2));
    ck_assert(feed_wait(&fb, 5000, feed_pred_init, &s1));
    uint64_t c = cdc_put_1pc(&e, 5, "fan");
    feed_drain(&fa, 200);
    feed_drain(&fb, 100);
    const Cdcpb__Event__Row *rows[4];
    ck_assert_uint_eq(feed_rows(&fa, r.id, 1, rows, 4), 1);
    ck_assert_uint_eq(rows[0]->commit_ts, c);
    ck_assert_uint_eq(feed_rows(&fa, r.id, 2, rows, 4), 1);
    ck_assert_uint_eq(rows[0]->commit_ts, c);
    ck_assert_uint_eq(feed_rows(&fb, r.id, 1, rows, 4), 1);
    ck_assert_uint_eq(rows[0]->commit_ts, c);

    sim_tc_stream_destroy(a);
    sim_tc_stream_destroy(b);
    feed_fini(&fa);
    feed_fini(&fb);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST


/* Injection for client edge-case tests (§7 #9, #19-21): rows under the
 * current or a stale request id, a row outside the range, a lower or
 * unknown-region resolved ts, raw bytes; all reach the client as built. */
START_TEST(test_live_inject)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.cdc.resolved_interval_ms = 5000; /* keep real resolved ts out of the way */
    cdc_env_t e;
    cdc_env_init(&e, &o);
    cdc_region_t r;
    cdc_region_at(&e, 0, &r);
    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
    feed_t f;
    feed_init(&f, s);
    uint8_t k3[SIM_KEY_MAX], k6[SIM_KEY_MAX], k90[SIM_KEY_MAX];
    size_t l3 = cdc_key(&e, 3, k3), l6 = cdc_key(&e, 6, k6), l90 = cdc_key(&e, 90, k90);
    ck_assert_int_eq(cdc_register_range(&e, s, &r, sim_model_tso(e.m), 4, k3, l3, k6, l6), 0);
    feed_sub_t sub = {r.id, 4};
    ck_assert(feed_wait(&f, 5000, feed_pred_init, &sub));
    size_t from = f.n;

    /* a COMMIT without prewrite, under the registration's own request id */
    sim_cdc_row_t row = {.type = CM, .op = PUT, .key = k3, .key_len = l3,
                         .start_ts = 100, .commit_ts = 200};
    ck_assert_int_eq(sim_cdc_inject_row(e.cdc, 1, r.id, SIM_CDC_REQ_CURRENT, &row), 1);
    /* a stale request id, and a key outside the requested range */
    row.commit_ts = 201;
    ck_assert_int_eq(sim_cdc_inject_row(e.cdc, 1, r.id, 3, &row), 1);
    row.key = k90;
    row.key_len = l90;
    row.commit_ts = 202;
    ck_assert_int_eq(sim_cdc_inject_row(e.cdc, 1, r.id, SIM_CDC_REQ_CURRENT, &row), 1);
    /* a region nobody registered: nothing to send to */
    ck_assert_int_eq(sim_cdc_inject_row(e.cdc, 1, 424242, SIM_CDC_REQ_CURRENT, &row), 0);
    uint64_t regions[2] = {r.id, 424242};
    ck_assert_int_eq(sim_cdc_inject_resolved(e.cdc, 1, regions, 2, 5, 0), 1);
    /* raw: a ChangeDataEvent with one empty-error Event */
    Cdcpb__Error er = CDCPB__ERROR__INIT;
    Cdcpb__Event ev = CDCPB__EVENT__INIT;
    ev.region_id = r.id;
    ev.request_id = 4;
    ev.event_case = CDCPB__EVENT__EVENT_ERROR;
    ev.error = &er;
    Cdcpb__Event *evs[1] = {&ev};
    Cdcpb__ChangeDataEvent cde = CDCPB__CHANGE_DATA_EVENT__INIT;
    cde.n_events = 1;
    cde.events = evs;
    uint8_t buf[256];
    size_t blen = cdcpb__change_data_event__pack(&cde, buf);
    ck_assert_int_eq(sim_cdc_inject_raw(e.cdc, 1, buf, blen), 1);

    size_t want = from + 5;
    for (int tries = 0; tries < 50 && f.n < want; tries++)
        feed_pump(&f, 100);
    ck_assert_uint_eq(f.n, want);
    const feed_item_t *it = &f.it[from];
    ck_assert(it->kind == FI_ROW && it->request_id == 4 && it->row->commit_ts == 200);
    ck_assert(it[1].kind == FI_ROW && it[1].request_id == 3 && it[1].row->commit_ts == 201);
    ck_assert(it[2].kind == FI_ROW && it[2].request_id == 4 && it[2].row->commit_ts == 202);
    ck_assert(it[2].row->key.len == l90 && memcmp(it[2].row->key.data, k90, l90) == 0);
    ck_assert(it[3].kind == FI_RESOLVED && it[3].ts == 5 && it[3].rts->n_regions == 2);
    ck_assert(it[4].kind == FI_ERROR && it[4].region_id == r.id && it[4].request_id == 4);
    ck_assert_uint_eq(f.msg_len[it[4].msg], blen);

    /* the stats document of the control endpoint */
    json_t *js = sim_cdc_stats_json(e.cdc);
    json_t *st0 = json_array_get(json_object_get(js, "stores"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(st0, "store_id")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(st0, "registrations")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(st0, "streams_active")), 1);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(st0, "rows"), "commit")), 3);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(st0, "errors"), "not_leader")), 0);
    ck_assert_int_gt(json_integer_value(json_object_get(st0, "bytes_sent")), 0);
    json_decref(js);

    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

Suite *cdc_live_suite(void);

Suite *cdc_live_suite(void)
{
    Suite *s = suite_create("cdc_live");
    TCase *tc = tcase_create("live");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_live_rows);
    tcase_add_test(tc, test_live_commit_before_prewrite);
    tcase_add_test(tc, test_live_fanout);
    tcase_add_test(tc, test_live_inject);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(cdc_live_suite)
