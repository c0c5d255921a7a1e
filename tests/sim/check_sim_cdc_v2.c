/*
 * check_sim_cdc_v2.c: sim.cdc_v2, EventFeedV2 and the features of a call
 * (tikv-cdc-protocol.md §3.1, §3.8, §3.11): stream-multiplexing groups
 * resolved ts per request_id and sets ResolvedTs.request_id; V1 (and V2
 * without the feature) batches per connection with request_id 0; an unknown
 * feature ends the call UNIMPLEMENTED; TiCDC's probe (open, half-close) ends
 * OK; old or unparsable client versions get per-region Event.resolved_ts;
 * batches of 8, 32, 128 ... regions in ascending ts order.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_sim_cdc_util.h"
#include "unit/check_main.h"

static void wait_init_all(feed_t *f, const cdc_region_t *r, const uint64_t *req, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        feed_sub_t sub = {r[i].id, req[i]};
        ck_assert(feed_wait(f, 5000, feed_pred_init, &sub));
    }
}

/* Runs one call with three registrations (r0, r1 under request 1, r2 under
 * request 2) until a few resolved-ts rounds went by. */
static void three_regs(cdc_env_t *e, feed_t *f, sim_tc_stream_t *s, cdc_region_t r[3],
                       const char *version)
{
    uint64_t req[3] = {1, 1, 2};
    uint64_t cp = sim_model_tso(e->m);
    for (int i = 0; i < 3; i++) {
        cdc_region_at(e, (size_t)i, &r[i]);
        sim_tc_reg_t reg = {.cluster_id = e->cluster_id, .version = version,
                            .region_id = r[i].id, .conf_ver = r[i].conf_ver,
                            .version_epoch = r[i].version, .checkpoint_ts = cp,
                            .start_key = r[i].start, .start_len = r[i].start_len,
                            .end_key = r[i].end, .end_len = r[i].end_len, .request_id = req[i]};
        ck_assert_int_eq(sim_tc_register(s, &reg), 0);
    }
    wait_init_all(f, r, req, 3);
    size_t want = f->n + 12;
    ck_assert(feed_wait(f, 5000, feed_pred_n_resolved, &want));
}

START_TEST(test_v2_multiplexing)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.regions = 3;
    cdc_env_t e;
    cdc_env_init(&e, &o);
    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc, true, "stream-multiplexing");
    feed_t f;
    feed_init(&f, s);
    cdc_region_t r[3];
    three_regs(&e, &f, s, r, NULL);

    size_t seen1 = 0, seen2 = 0;
    for (size_t i = 0; i < f.n; i++) {
        const feed_item_t *it = &f.it[i];
        ck_assert(it->kind != FI_REGION_RTS);
        if (it->kind != FI_RESOLVED)
            continue;
        ck_assert_msg(it->request_id == 1 || it->request_id == 2, "request_id %llu",
                      (unsigned long long)it->request_id);
        for (size_t j = 0; j < it->rts->n_regions; j++) {
            uint64_t rg = it->rts->regions[j];
            if (it->request_id == 1)
                ck_assert(rg == r[0].id || rg == r[1].id);
            else
                ck_assert(rg == r[2].id);
        }
        seen1 += it->request_id == 1;
        seen2 += it->request_id == 2;
    }
    ck_assert_uint_gt(seen1, 2);
    ck_assert_uint_gt(seen2, 2);

    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

/* V1, and V2 without the feature: one batch per connection, request_id 0. */
START_TEST(test_v1_exclusive)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.regions = 3;
    cdc_env_t e;
    cdc_env_init(&e, &o);
    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    for (int v2 = 0; v2 <= 1; v2++) {
        sim_tc_stream_t *s = sim_tc_open(tc, v2, NULL);
        feed_t f;
        feed_init(&f, s);
        cdc_region_t r[3];
        three_regs(&e, &f, s, r, NULL);
        size_t full = 0;
        for (size_t i = 0; i < f.n; i++) {
            const feed_item_t *it = &f.it[i];
            ck_assert(it->kind != FI_REGION_RTS);
            if (it->kind != FI_RESOLVED)
                continue;
            ck_assert_uint_eq(it->request_id, 0);
            full += it->rts->n_regions == 3;
        }
        ck_assert_uint_gt(full, 2); /* regions of both request ids together */
        sim_tc_stream_destroy(s);
        feed_fini(&f);
    }
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

START_TEST(test_v2_unknown_feature)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    cdc_env_t e;
    cdc_env_init(&e, &o);
    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc, true, " foo, stream-multiplexing ,bar");
    const char *details = NULL;
    int st = sim_tc_status(s, 5000, &details);
    ck_assert_int_eq(st, GRPC_STATUS_UNIMPLEMENTED);
    ck_assert_ptr_nonnull(strstr(details, "foo"));
    ck_assert_ptr_nonnull(strstr(details, "bar"));
    ck_assert_ptr_null(strstr(details, "stream-multiplexing"));
    sim_tc_stream_destroy(s);

    /* TiCDC's probe: V2 with the feature, half-close at once, clean end */
    s = sim_tc_open(tc, true, "stream-multiplexing");
    ck_assert_int_eq(sim_tc_close_send(s), 0);
    const uint8_t *d;
    size_t len;
    ck_assert_int_eq(sim_tc_recv_raw(s, 5000, &d, &len), -1);
    ck_assert_int_eq(sim_tc_status(s, 5000, NULL), GRPC_STATUS_OK);
    sim_tc_stream_destroy(s);

    sim_cdc_stats_t stats;
    sim_cdc_stats_get(e.cdc, 1, &stats);
    ck_assert_uint_eq(stats.streams_refused, 1);
    ck_assert_uint_eq(stats.streams_opened, 1);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

/* Clients older than 4.0.8, or with an unparsable version, get one
 * deprecated Event.resolved_ts per region, tagged with its request id. */
START_TEST(test_old_client_resolved)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.regions = 3;
    cdc_env_t e;
    cdc_env_init(&e, &o);
    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    const char *versions[] = {"4.0.7", "v8.5.0", "garbage", ""};
    for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
        sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
        feed_t f;
        feed_init(&f, s);
        cdc_region_t r[3];
        three_regs(&e, &f, s, r, versions[v]);
        size_t per_region = 0;
        for (size_t i = 0; i < f.n; i++) {
            const feed_item_t *it = &f.it[i];
            ck_assert_msg(it->kind != FI_RESOLVED, "batched resolved ts for version '%s'",
                          versions[v]);
            if (it->kind != FI_REGION_RTS)
                continue;
            per_region++;
            ck_assert_uint_gt(it->ts, 0);
            ck_assert_uint_eq(it->request_id, it->region_id == r[2].id ? 2 : 1);
        }
        ck_assert_uint_ge(per_region, 12);
        sim_tc_stream_destroy(s);
        feed_fini(&f);
    }
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

/* 50 regions on one call: each round is batches of 8, 32 and 10 regions,
 * ts ascending, every region exactly once, ts = the batch minimum. */
START_TEST(test_resolved_batches)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.regions = 50;
    o.key_count = 500;
    cdc_env_t e;
    cdc_env_init(&e, &o);
    sim_tc_t *tc = sim_tc_new(e.addr[0]);
    sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
    feed_t f;
    feed_init(&f, s);
    cdc_region_t r[50];
    uint64_t req[50];
    uint64_t cp = sim_model_tso(e.m);
    /* a lock in region 7 keeps its ts lowest: it must be in the first batch */
    cdc_region_at(&e, 7, &r[7]);
    uint64_t lock_ts = cdc_prewrite(&e, 7 * 10 + 2, "held");
    for (int i = 0; i < 50; i++) {
        cdc_region_at(&e, (size_t)i, &r[i]);
        req[i] = 100 + (uint64_t)i;
        ck_assert_int_eq(cdc_register(&e, s, &r[i], cp, req[i]), 0);
    }
    wait_init_all(&f, r, req, 50);
    size_t start = f.n;
    size_t want = start + 9;
    ck_assert(feed_wait(&f, 5000, feed_pred_n_resolved, &want));

    /* find the first round starting after `start`: a batch of 8 */
    size_t i = start;
    while (i < f.n && !(f.it[i].kind == FI_RESOLVED && f.it[i].rts->n_regions == 8))
        i++;
    ck_assert_uint_lt(i + 2, f.n);
    const size_t sizes[3] = {8, 32, 10};
    bool seen[50] = {false};
    uint64_t prev_ts = 0;
    for (size_t b = 0; b < 3; b++) {
        const feed_item_t *it = &f.it[i + b];
        ck_assert_int_eq(it->kind, FI_RESOLVED);
        ck_assert_uint_eq(it->rts->n_regions, sizes[b]);
        ck_assert_uint_ge(it->ts, prev_ts);
        prev_ts = it->ts;
        for (size_t j = 0; j < it->rts->n_regions; j++) {
            int idx = -1;
            for (int k = 0; k < 50; k++)
                if (r[k].id == it->rts->regions[j])
                    idx = k;
            ck_assert_int_ge(idx, 0);
            ck_assert(!seen[idx]);
            seen[idx] = true;
            if (idx == 7) {
                ck_assert_uint_eq(b, 0);
                ck_assert_uint_eq(it->ts, lock_ts); /* pinned, and the minimum */
            }
        }
    }
    for (int k = 0; k < 50; k++)
        ck_assert(seen[k]);

    sim_tc_stream_destroy(s);
    feed_fini(&f);
    sim_tc_destroy(tc);
    cdc_env_fini(&e);
}
END_TEST

Suite *cdc_v2_suite(void);

Suite *cdc_v2_suite(void)
{
    Suite *s = suite_create("cdc_v2");
    TCase *tc = tcase_create("v2");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_v2_multiplexing);
    tcase_add_test(tc, test_v1_exclusive);
    tcase_add_test(tc, test_v2_unknown_feature);
    tcase_add_test(tc, test_old_client_resolved);
    tcase_add_test(tc, test_resolved_batches);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(cdc_v2_suite)
