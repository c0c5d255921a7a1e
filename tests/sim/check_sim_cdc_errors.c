/*
 * check_sim_cdc_errors.c: sim.cdc_errors, region errors as TiKV sends them
 * (tikv-cdc-protocol.md §3.3, §3.5, §3.9): epoch_not_match after a split and
 * a merge, not_leader after a leader transfer and on a follower,
 * region_not_found, duplicate_request, cluster_id_mismatch, compatibility,
 * server_is_busy with backoff_ms, congested (injected and from the sink
 * memory quota). After an error nothing more arrives for that registration.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_sim_cdc_util.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/keycodec.h"
#include "util/mem.h"

typedef struct {
    cdc_env_t e;
    sim_tc_t *tc;
    sim_tc_stream_t *s;
    feed_t f;
} fx_t;

static void fx_open(fx_t *x, const cdc_env_opts_t *o, int store_idx, bool v2)
{
    cdc_env_init(&x->e, o);
    x->tc = sim_tc_new(x->e.addr[store_idx]);
    x->s = sim_tc_open(x->tc, v2, v2 ? "stream-multiplexing" : NULL);
    feed_init(&x->f, x->s);
}

static void fx_close(fx_t *x)
{
    sim_tc_stream_destroy(x->s);
    feed_fini(&x->f);
    sim_tc_destroy(x->tc);
    cdc_env_fini(&x->e);
}

static const Cdcpb__Error *wait_error(fx_t *x, uint64_t region_id, uint64_t request_id)
{
    feed_sub_t sub = {region_id, request_id};
    ck_assert_msg(feed_wait(&x->f, 5000, feed_pred_error, &sub), "no error for region %llu",
                  (unsigned long long)region_id);
    return x->f.it[feed_find_error(&x->f, region_id, request_id)].err;
}

static void wait_init(fx_t *x, uint64_t region_id, uint64_t request_id)
{
    feed_sub_t sub = {region_id, request_id};
    ck_assert(feed_wait(&x->f, 5000, feed_pred_init, &sub));
}

static size_t count_errors(const feed_t *f)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += f->it[i].kind == FI_ERROR;
    return n;
}

/* Split: both halves in epoch_not_match, then silence for the old
 * registration; re-registering the left half with the new epoch works. */
START_TEST(test_err_split)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    fx_t x;
    fx_open(&x, &o, 0, false);
    cdc_region_t r;
    cdc_region_at(&x.e, 0, &r);
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r, sim_model_tso(x.e.m), 1), 0);
    wait_init(&x, r.id, 1);

    uint8_t k50[SIM_KEY_MAX], e50[64];
    size_t l50 = cdc_key(&x.e, 50, k50);
    tkc_keycodec_encode(k50, l50, e50);
    size_t el50 = tkc_keycodec_encoded_len(l50);
    uint64_t right = 0;
    ck_assert_int_eq(sim_model_split(x.e.m, r.id, e50, el50, &right), 0);

    const Cdcpb__Error *err = wait_error(&x, r.id, 1);
    ck_assert_ptr_nonnull(err->epoch_not_match);
    ck_assert_uint_eq(err->epoch_not_match->n_current_regions, 2);
    const Metapb__Region *L = err->epoch_not_match->current_regions[0];
    const Metapb__Region *R = err->epoch_not_match->current_regions[1];
    ck_assert_uint_eq(L->id, r.id);
    ck_assert_uint_eq(R->id, right);
    ck_assert(L->end_key.len == el50 && memcmp(L->end_key.data, e50, el50) == 0);
    ck_assert(R->start_key.len == el50 && memcmp(R->start_key.data, e50, el50) == 0);
    ck_assert_uint_eq(L->region_epoch->version, r.version + 1);
    ck_assert_uint_eq(R->region_epoch->version, r.version + 1);
    ck_assert_uint_eq(L->n_peers, 3);

    /* nothing more for the dropped registration */
    cdc_put_1pc(&x.e, 10, "after-split");
    feed_drain(&x.f, 200);
    const Cdcpb__Event__Row *rows[4];
    ck_assert_uint_eq(feed_rows(&x.f, r.id, 1, rows, 4), 0);
    ck_assert_uint_eq(count_errors(&x.f), 1);

    /* a stale epoch at registration: epoch_not_match with the current region */
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r, sim_model_tso(x.e.m), 2), 0);
    err = wait_error(&x, r.id, 2);
    ck_assert_ptr_nonnull(err->epoch_not_match);
    ck_assert_uint_eq(err->epoch_not_match->n_current_regions, 1);
    ck_assert_uint_eq(err->epoch_not_match->current_regions[0]->region_epoch->version,
                      r.version + 1);

    /* the left half with its new epoch */
    cdc_region_t left;
    ck_assert(cdc_region_by_id(&x.e, r.id, &left));
    ck_assert_int_eq(cdc_register(&x.e, x.s, &left, sim_model_tso(x.e.m), 3), 0);
    wait_init(&x, r.id, 3);
    cdc_put_1pc(&x.e, 11, "left");
    cdc_put_1pc(&x.e, 60, "right"); /* outside the left half */
    feed_drain(&x.f, 200);
    ck_assert_uint_eq(feed_rows(&x.f, r.id, 3, rows, 4), 1);

    sim_cdc_stats_t st;
    sim_cdc_stats_get(x.e.cdc, 1, &st);
    ck_assert_uint_eq(st.err_epoch_not_match, 2);
    fx_close(&x);
}
END_TEST

/* Merge: source and target both get epoch_not_match with no regions. */
START_TEST(test_err_merge)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.regions = 2;
    fx_t x;
    fx_open(&x, &o, 0, false);
    cdc_region_t r0, r1;
    cdc_region_at(&x.e, 0, &r0);
    cdc_region_at(&x.e, 1, &r1);
    uint64_t cp = sim_model_tso(x.e.m);
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r0, cp, 1), 0);
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r1, cp, 1), 0);
    wait_init(&x, r0.id, 1);
    wait_init(&x, r1.id, 1);
    ck_assert_int_eq(sim_model_merge(x.e.m, r1.id, r0.id), 0);
    const Cdcpb__Error *e0 = wait_error(&x, r0.id, 1);
    const Cdcpb__Error *e1 = wait_error(&x, r1.id, 1);
    ck_assert_ptr_nonnull(e0->epoch_not_match);
    ck_assert_ptr_nonnull(e1->epoch_not_match);
    ck_assert_uint_eq(e0->epoch_not_match->n_current_regions, 0);
    ck_assert_uint_eq(e1->epoch_not_match->n_current_regions, 0);
    fx_close(&x);
}
END_TEST

/* Leader transfer: not_leader with the new leader; registering on a follower
 * gives not_leader too; a store without a peer and an unknown region give
 * region_not_found. */
START_TEST(test_err_leader)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.stores = 4;
    o.regions = 4;
    fx_t x;
    fx_open(&x, &o, 0, false);
    cdc_region_t r;
    cdc_region_at(&x.e, 0, &r); /* peers on stores 1, 2, 3; leader 1 */
    ck_assert_uint_eq(r.leader_store, 1);
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r, sim_model_tso(x.e.m), 1), 0);
    wait_init(&x, r.id, 1);

    ck_assert_int_eq(sim_model_transfer_leader(x.e.m, r.id, 2), 0);
    const Cdcpb__Error *err = wait_error(&x, r.id, 1);
    ck_assert_ptr_nonnull(err->not_leader);
    ck_assert_uint_eq(err->not_leader->region_id, r.id);
    ck_assert_ptr_nonnull(err->not_leader->leader);
    ck_assert_uint_eq(err->not_leader->leader->store_id, 2);
    cdc_region_t now;
    ck_assert(cdc_region_by_id(&x.e, r.id, &now));
    ck_assert_uint_eq(now.leader_store, 2);

    /* store 1 still has a follower peer: not_leader with the hint */
    ck_assert_int_eq(cdc_register(&x.e, x.s, &now, sim_model_tso(x.e.m), 2), 0);
    err = wait_error(&x, r.id, 2);
    ck_assert_ptr_nonnull(err->not_leader);
    ck_assert_uint_eq(err->not_leader->leader->store_id, 2);

    /* a region with no peer on store 1 (stores 2, 3, 4), and an unknown id */
    cdc_region_t r1;
    cdc_region_at(&x.e, 1, &r1);
    ck_assert_uint_eq(r1.peer_stores[0], 2);
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r1, sim_model_tso(x.e.m), 3), 0);
    err = wait_error(&x, r1.id, 3);
    ck_assert_ptr_nonnull(err->region_not_found);
    ck_assert_uint_eq(err->region_not_found->region_id, r1.id);
    cdc_region_t ghost = r1;
    ghost.id = 987654;
    ck_assert_int_eq(cdc_register(&x.e, x.s, &ghost, sim_model_tso(x.e.m), 4), 0);
    err = wait_error(&x, ghost.id, 4);
    ck_assert_ptr_nonnull(err->region_not_found);

    /* on the new leader it works */
    sim_tc_t *tc2 = sim_tc_new(x.e.addr[1]);
    sim_tc_stream_t *s2 = sim_tc_open(tc2, false, NULL);
    feed_t f2;
    feed_init(&f2, s2);
    ck_assert_int_eq(cdc_register(&x.e, s2, &now, sim_model_tso(x.e.m), 5), 0);
    feed_sub_t sub = {r.id, 5};
    ck_assert(feed_wait(&f2, 5000, feed_pred_init, &sub));
    sim_tc_stream_destroy(s2);
    feed_fini(&f2);
    sim_tc_destroy(tc2);

    sim_cdc_stats_t st;
    sim_cdc_stats_get(x.e.cdc, 1, &st);
    ck_assert_uint_eq(st.err_not_leader, 2);
    ck_assert_uint_eq(st.err_region_not_found, 2);
    fx_close(&x);
}
END_TEST

/* duplicate_request carries the same request_id and leaves the first
 * registration alive; with pre_7_3 the key is the region alone. */
START_TEST(test_err_duplicate)
{
    for (int pre = 0; pre <= 1; pre++) {
        cdc_env_opts_t o;
        cdc_env_opts_init(&o);
        o.cdc.pre_7_3 = pre;
        fx_t x;
        fx_open(&x, &o, 0, false);
        cdc_region_t r;
        cdc_region_at(&x.e, 0, &r);
        uint64_t cp = sim_model_tso(x.e.m);
        ck_assert_int_eq(cdc_register(&x.e, x.s, &r, cp, 1), 0);
        wait_init(&x, r.id, 1);
        uint64_t dup_req = pre ? 2 : 1;
        ck_assert_int_eq(cdc_register(&x.e, x.s, &r, cp, dup_req), 0);
        const Cdcpb__Error *err = wait_error(&x, r.id, dup_req);
        ck_assert_ptr_nonnull(err->duplicate_request);
        ck_assert_uint_eq(err->duplicate_request->region_id, r.id);
        if (!pre) {
            /* >= 7.3: another request id for the same region is fine */
            ck_assert_int_eq(cdc_register(&x.e, x.s, &r, cp, 9), 0);
            wait_init(&x, r.id, 9);
        }
        /* the first registration still receives rows */
        uint64_t c = cdc_put_1pc(&x.e, 3, "still-here");
        feed_drain(&x.f, 200);
        const Cdcpb__Event__Row *rows[4];
        ck_assert_uint_eq(feed_rows(&x.f, r.id, 1, rows, 4), 1);
        ck_assert_uint_eq(rows[0]->commit_ts, c);
        ck_assert_uint_eq(count_errors(&x.f), 1);
        fx_close(&x);
    }
}
END_TEST

static int reg_with(fx_t *x, const cdc_region_t *r, uint64_t req, uint64_t cluster,
                    const char *version, int kv_api)
{
    sim_tc_reg_t reg = {.cluster_id = cluster, .version = version, .region_id = r->id,
                        .conf_ver = r->conf_ver, .version_epoch = r->version,
                        .checkpoint_ts = sim_model_tso(x->e.m), .start_key = r->start,
                        .start_len = r->start_len, .end_key = r->end, .end_len = r->end_len,
                        .request_id = req, .kv_api = kv_api};
    return sim_tc_register(x->s, &reg);
}

/* Header checks: cluster id (only for clients >= 5.3.0), kv_api, and the
 * pre-7.3 rule that one connection speaks one version. */
START_TEST(test_err_header)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    fx_t x;
    fx_open(&x, &o, 0, false);
    cdc_region_t r;
    cdc_region_at(&x.e, 0, &r);
    ck_assert_int_eq(reg_with(&x, &r, 1, x.e.cluster_id + 1, "8.5.0", 0), 0);
    const Cdcpb__Error *err = wait_error(&x, r.id, 1);
    ck_assert_ptr_nonnull(err->cluster_id_mismatch);
    ck_assert_uint_eq(err->cluster_id_mismatch->current, x.e.cluster_id);
    ck_assert_uint_eq(err->cluster_id_mismatch->request, x.e.cluster_id + 1);
    ck_assert_int_eq(reg_with(&x, &r, 2, x.e.cluster_id, "8.5.0",
                              CDCPB__CHANGE_DATA_REQUEST__KV_API__TxnKV), 0);
    err = wait_error(&x, r.id, 2);
    ck_assert_ptr_nonnull(err->compatibility);
    ck_assert_str_eq(err->compatibility->required_version, "6.2.0");
    ck_assert_int_eq(reg_with(&x, &r, 3, x.e.cluster_id, "8.5.0",
                              CDCPB__CHANGE_DATA_REQUEST__KV_API__RawKV), 0);
    err = wait_error(&x, r.id, 3);
    ck_assert_ptr_nonnull(err->compatibility);
    /* conf_ver is not compared, only version */
    cdc_region_t odd = r;
    odd.conf_ver += 5;
    ck_assert_int_eq(cdc_register(&x.e, x.s, &odd, sim_model_tso(x.e.m), 4), 0);
    wait_init(&x, r.id, 4);
    sim_tc_stream_destroy(x.s);
    feed_fini(&x.f);

    /* an old client (first request 5.2.0) is not cluster-checked */
    x.s = sim_tc_open(x.tc, false, NULL);
    feed_init(&x.f, x.s);
    ck_assert_int_eq(reg_with(&x, &r, 1, 12345, "5.2.0", 0), 0);
    wait_init(&x, r.id, 1);
    fx_close(&x);

    /* pre-7.3: a second version on one connection -> compatibility */
    o.cdc.pre_7_3 = true;
    fx_open(&x, &o, 0, false);
    cdc_region_at(&x.e, 0, &r);
    ck_assert_int_eq(reg_with(&x, &r, 1, x.e.cluster_id, "7.1.0", 0), 0);
    wait_init(&x, r.id, 1);
    ck_assert_int_eq(reg_with(&x, &r, 2, x.e.cluster_id, "7.2.0", 0), 0);
    err = wait_error(&x, r.id, 2);
    ck_assert_ptr_nonnull(err->compatibility);
    ck_assert_str_eq(err->compatibility->required_version, "7.1.0");

    sim_cdc_stats_t st;
    sim_cdc_stats_get(x.e.cdc, 1, &st);
    ck_assert_uint_eq(st.err_compatibility, 1);
    fx_close(&x);
}
END_TEST

/* Injected busy (with backoff_ms) and congested, N times, per region or for
 * any region; and busy from the pending-scan limit. */
START_TEST(test_err_busy_congested)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.regions = 2;
    fx_t x;
    fx_open(&x, &o, 0, false);
    cdc_region_t r0, r1;
    cdc_region_at(&x.e, 0, &r0);
    cdc_region_at(&x.e, 1, &r1);
    uint64_t cp = sim_model_tso(x.e.m);

    sim_cdc_fault_busy(x.e.cdc, 1, r0.id, 2, 123);
    sim_cdc_fault_congested(x.e.cdc, 1, 0, 1);
    /* region 1 is not affected by region 0's busy, but takes the wildcard
     * congested */
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r1, cp, 10), 0);
    const Cdcpb__Error *err = wait_error(&x, r1.id, 10);
    ck_assert_ptr_nonnull(err->congested);
    ck_assert_uint_eq(err->congested->region_id, r1.id);
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r1, cp, 11), 0);
    wait_init(&x, r1.id, 11);

    for (uint64_t req = 1; req <= 2; req++) {
        ck_assert_int_eq(cdc_register(&x.e, x.s, &r0, cp, req), 0);
        err = wait_error(&x, r0.id, req);
        ck_assert_ptr_nonnull(err->server_is_busy);
        ck_assert_uint_eq(err->server_is_busy->backoff_ms, 123);
        ck_assert_str_eq(err->server_is_busy->reason, "too many pending incremental scans");
    }
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r0, cp, 3), 0);
    wait_init(&x, r0.id, 3);
    fx_close(&x);

    /* the pending incremental scan limit */
    o.cdc.scan_concurrency_limit = 1;
    o.cdc.incremental_scan_rows_per_tick = 1;
    fx_open(&x, &o, 0, false);
    cdc_region_at(&x.e, 0, &r0);
    cdc_region_at(&x.e, 1, &r1);
    cp = sim_model_tso(x.e.m);
    for (int i = 1; i <= 40; i++)
        cdc_put_1pc(&x.e, i, "slow"); /* region 0: ~80 ms of scan */
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r0, cp, 1), 0);
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r1, cp, 2), 0);
    err = wait_error(&x, r1.id, 2);
    ck_assert_ptr_nonnull(err->server_is_busy);
    ck_assert_uint_eq(err->server_is_busy->backoff_ms, 0);
    wait_init(&x, r0.id, 1);
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r1, cp, 3), 0);
    wait_init(&x, r1.id, 3);
    sim_cdc_stats_t st;
    sim_cdc_stats_get(x.e.cdc, 1, &st);
    ck_assert_uint_eq(st.err_server_is_busy, 1);
    fx_close(&x);
}
END_TEST

/* The sink memory quota: a client that stops reading makes output pile up;
 * past the quota its live subscription and new registrations get congested
 * (§3.7). Once it reads again, new registrations succeed. */
START_TEST(test_err_sink_quota)
{
    cdc_env_opts_t o;
    cdc_env_opts_init(&o);
    o.regions = 2;
    o.cdc.sink_memory_quota = 1 << 20;
    fx_t x;
    fx_open(&x, &o, 0, false);
    cdc_region_t r0, r1;
    cdc_region_at(&x.e, 0, &r0);
    cdc_region_at(&x.e, 1, &r1);
    ck_assert_int_eq(cdc_register(&x.e, x.s, &r0, sim_model_tso(x.e.m), 1), 0);
    wait_init(&x, r0.id, 1);

    /* the reader stops here; write until the store reports congestion */
    size_t vlen = 100 * 1024;
    uint8_t *v = tkc_malloc(vlen);
    memset(v, 'q', vlen);
    sim_cdc_stats_t st = {0};
    int writes = 0;
    int64_t deadline = tkc_clock_mono_ms() + 30000;
    while (st.err_congested == 0 && tkc_clock_mono_ms() < deadline) {
        uint8_t k[SIM_KEY_MAX];
        sim_mutation_t mu = {.key = k, .key_len = cdc_key(&x.e, 1 + writes % 40, k),
                             .op = SIM_OP_PUT, .value = v, .value_len = vlen};
        ck_assert_uint_gt(sim_model_commit_1pc(x.e.m, &mu, 1), 0);
        writes++;
        /* paced, so that every write is flushed on its own and only the
         * stalled reader (not a burst) can fill the quota: first the kernel
         * and gRPC buffers fill up, then our queues */
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
        sim_cdc_stats_get(x.e.cdc, 1, &st);
    }
    ck_assert_uint_eq(st.err_congested, 1);
    ck_assert_uint_gt(st.buffered_bytes, 1 << 20);
    ck_assert_uint_gt(writes, 10); /* more than one quota went out first */
    /* a new registration on another call: congested while over quota */
    sim_tc_stream_t *s2 = sim_tc_open(x.tc, false, NULL);
    feed_t f2;
    feed_init(&f2, s2);
    ck_assert_int_eq(cdc_register(&x.e, s2, &r1, sim_model_tso(x.e.m), 5), 0);
    feed_sub_t sub5 = {r1.id, 5};
    ck_assert(feed_wait(&f2, 5000, feed_pred_error, &sub5));
    ck_assert_ptr_nonnull(f2.it[feed_find_error(&f2, r1.id, 5)].err->congested);

    /* the slow reader catches up and finds its congested error last */
    const Cdcpb__Error *err = wait_error(&x, r0.id, 1);
    ck_assert_ptr_nonnull(err->congested);
    long ie = feed_find_error(&x.f, r0.id, 1);
    for (size_t i = (size_t)ie + 1; i < x.f.n; i++)
        ck_assert(!(x.f.it[i].kind == FI_ROW && x.f.it[i].region_id == r0.id));

    /* the queues drained: registering works again */
    for (int tries = 0; tries < 100; tries++) {
        sim_cdc_stats_get(x.e.cdc, 1, &st);
        if (st.buffered_bytes == 0)
            break;
        feed_pump(&x.f, 50);
    }
    ck_assert_uint_eq(st.buffered_bytes, 0);
    ck_assert_int_eq(cdc_register(&x.e, s2, &r1, sim_model_tso(x.e.m), 6), 0);
    feed_sub_t sub6 = {r1.id, 6};
    ck_assert(feed_wait(&f2, 5000, feed_pred_init, &sub6));

    tkc_free(v);
    sim_tc_stream_destroy(s2);
    feed_fini(&f2);
    fx_close(&x);
}
END_TEST

Suite *cdc_errors_suite(void);

Suite *cdc_errors_suite(void)
{
    Suite *s = suite_create("cdc_errors");
    TCase *tc = tcase_create("errors");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_err_split);
    tcase_add_test(tc, test_err_merge);
    tcase_add_test(tc, test_err_leader);
    tcase_add_test(tc, test_err_duplicate);
    tcase_add_test(tc, test_err_header);
    tcase_add_test(tc, test_err_busy_congested);
    tcase_add_test(tc, test_err_sink_quota);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(cdc_errors_suite)
