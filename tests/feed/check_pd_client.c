/*
 * check_pd_client.c: the connector's PD client against tikv-sim's PD over
 * gRPC on loopback: leader discovery, cluster id, TSO, region paging, store
 * cache and version check, GC safepoint, and recovery from PD faults (lost
 * leadership, broken TSO stream, a PD restart, ScanRegions holes).
 */
#include <grpc/grpc.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pd_client.h"
#include "sim_model.h"
#include "sim_pd.h"
#include "sim_server.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/keycodec.h"

static sim_model_t *model;
static sim_server_t *server;
static sim_pd_t *simpd;
static char pd_addr[64];

#define N_REGIONS 2500

static void setup(void)
{
    grpc_init();
    sim_model_config_t cfg = {
        .cluster_id = 7001, .stores = 3, .regions = N_REGIONS, .seed = 1, .table_id = 100,
        .key_count = 10000, .store_version = "8.5.0"};
    model = sim_model_new(&cfg);
    ck_assert_ptr_nonnull(model);
    server = sim_server_new("pd", "127.0.0.1:0");
    simpd = sim_pd_new(model, server);
    int port = sim_server_start(server);
    ck_assert_int_gt(port, 0);
    snprintf(pd_addr, sizeof(pd_addr), "127.0.0.1:%d", port);
    /* Stores need addresses for GetStore; any well-formed one will do here. */
    sim_model_lock(model);
    for (int i = 0; i < sim_model_store_count(model); i++) {
        sim_store_t *s = sim_model_store_at_locked(model, i);
        snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", 30000 + i);
    }
    sim_model_unlock(model);
}

static void teardown(void)
{
    sim_server_stop(server);
    sim_pd_destroy(simpd);
    sim_server_destroy(server);
    sim_model_destroy(model);
    grpc_shutdown();
}

static tkc_pd_client_t *connect_client(void)
{
    const char *eps[] = {"http://127.0.0.1:1", pd_addr}; /* the first one is dead */
    tkc_pd_config_t cfg = {.endpoints = eps, .n_endpoints = 2, .timeout_ms = 3000};
    char err[256] = "";
    tkc_pd_client_t *pd = tkc_pd_client_new(&cfg, err, sizeof(err));
    ck_assert_msg(pd != NULL, "connect failed: %s", err);
    return pd;
}

START_TEST(test_pd_client_discovers_leader_and_cluster_id)
{
    tkc_pd_client_t *pd = connect_client();
    ck_assert_uint_eq(tkc_pd_client_cluster_id(pd), 7001);
    char leader[160];
    tkc_pd_client_leader(pd, leader, sizeof(leader));
    ck_assert_str_eq(leader, pd_addr);
    tkc_pd_client_destroy(pd);
}
END_TEST

START_TEST(test_pd_client_no_endpoint_answers)
{
    const char *eps[] = {"127.0.0.1:1"};
    tkc_pd_config_t cfg = {.endpoints = eps, .n_endpoints = 1, .timeout_ms = 500};
    char err[256] = "";
    ck_assert_ptr_null(tkc_pd_client_new(&cfg, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "GetMembers"));
}
END_TEST

START_TEST(test_pd_client_tso_monotonic_and_wall_clock)
{
    tkc_pd_client_t *pd = connect_client();
    uint64_t prev = 0;
    for (int i = 0; i < 500; i++) {
        uint64_t ts = 0;
        ck_assert_int_eq(tkc_pd_client_get_ts(pd, &ts), TKC_ERR_OK);
        ck_assert_uint_gt(ts, prev);
        prev = ts;
    }
    int64_t skew = tkc_clock_wall_ms() - tkc_tso_physical_ms(prev);
    ck_assert_msg(skew > -1000 && skew < 1000, "TSO physical off wall clock by %" PRId64 " ms",
                  skew);
    tkc_pd_client_stats_t st;
    tkc_pd_client_stats(pd, &st);
    ck_assert_uint_eq(st.tso_stream_opens, 1); /* one stream served all 500 */
    tkc_pd_client_destroy(pd);
}
END_TEST

START_TEST(test_pd_client_scan_regions_pages_cover_keyspace)
{
    tkc_pd_client_t *pd = connect_client();
    uint8_t *cursor = NULL;
    size_t cursor_len = 0, total = 0;
    uint64_t prev_id = 0;
    for (;;) {
        tkc_pd_region_t *rs;
        size_t n;
        ck_assert_int_eq(tkc_pd_client_scan_regions(pd, cursor, cursor_len, NULL, 0, 300, &rs, &n),
                         TKC_ERR_OK);
        ck_assert_uint_gt(n, 0);
        ck_assert_uint_le(n, 300);
        /* Contiguous: each page starts where the previous one ended. */
        ck_assert_int_eq(tkc_keycodec_cmp(rs[0].start_key, rs[0].start_len, cursor, cursor_len), 0);
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_ne(rs[i].id, prev_id);
            ck_assert_uint_ne(rs[i].leader_store_id, 0);
            if (i > 0)
                ck_assert_int_eq(tkc_keycodec_cmp(rs[i].start_key, rs[i].start_len,
                                                  rs[i - 1].end_key, rs[i - 1].end_len),
                                 0);
            prev_id = rs[i].id;
        }
        total += n;
        free(cursor);
        cursor_len = rs[n - 1].end_len;
        cursor = cursor_len ? malloc(cursor_len) : NULL;
        if (cursor_len)
            memcpy(cursor, rs[n - 1].end_key, cursor_len);
        tkc_pd_regions_free(rs, n);
        if (cursor_len == 0)
            break; /* the last region ends at +inf */
    }
    ck_assert_uint_eq(total, N_REGIONS);
    tkc_pd_client_destroy(pd);
}
END_TEST

START_TEST(test_pd_client_scan_hole_is_visible)
{
    tkc_pd_client_t *pd = connect_client();
    tkc_pd_region_t *rs;
    size_t n;
    ck_assert_int_eq(tkc_pd_client_scan_regions(pd, NULL, 0, NULL, 0, 10, &rs, &n), TKC_ERR_OK);
    ck_assert_uint_eq(n, 10);
    uint64_t victim = rs[3].id;
    tkc_pd_regions_free(rs, n);
    sim_pd_fault_scan_hole(simpd, victim, 1);
    ck_assert_int_eq(tkc_pd_client_scan_regions(pd, NULL, 0, NULL, 0, 10, &rs, &n), TKC_ERR_OK);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= rs[i].id == victim;
    ck_assert(!found);
    tkc_pd_regions_free(rs, n);
    /* The hole lasted one call. */
    ck_assert_int_eq(tkc_pd_client_scan_regions(pd, NULL, 0, NULL, 0, 10, &rs, &n), TKC_ERR_OK);
    ck_assert_uint_eq(rs[3].id, victim);
    tkc_pd_regions_free(rs, n);
    tkc_pd_client_destroy(pd);
}
END_TEST

START_TEST(test_pd_client_region_by_id)
{
    tkc_pd_client_t *pd = connect_client();
    tkc_pd_region_t *rs;
    size_t n;
    ck_assert_int_eq(tkc_pd_client_scan_regions(pd, NULL, 0, NULL, 0, 5, &rs, &n), TKC_ERR_OK);
    tkc_pd_region_t r;
    ck_assert_int_eq(tkc_pd_client_get_region_by_id(pd, rs[2].id, &r), TKC_ERR_OK);
    ck_assert_uint_eq(r.id, rs[2].id);
    ck_assert_uint_eq(r.version, rs[2].version);
    ck_assert_int_eq(tkc_keycodec_cmp(r.start_key, r.start_len, rs[2].start_key, rs[2].start_len),
                     0);
    tkc_pd_region_free(&r);
    tkc_pd_regions_free(rs, n);
    ck_assert_int_eq(tkc_pd_client_get_region_by_id(pd, 987654321, &r), TKC_ERR_NOT_FOUND);
    tkc_pd_client_destroy(pd);
}
END_TEST

START_TEST(test_pd_client_stores_and_versions)
{
    tkc_pd_client_t *pd = connect_client();
    tkc_pd_store_t s;
    char err[256];
    ck_assert_int_eq(tkc_pd_client_get_store(pd, 2, false, &s, err, sizeof(err)), TKC_ERR_OK);
    ck_assert_uint_eq(s.id, 2);
    ck_assert_str_eq(s.address, "127.0.0.1:30001");
    ck_assert_str_eq(s.version, "8.5.0");
    ck_assert_int_eq(tkc_pd_client_get_store(pd, 99, false, &s, err, sizeof(err)),
                     TKC_ERR_NOT_FOUND);
    /* The cache answers without PD; a reload sees the new address. */
    sim_model_lock(model);
    snprintf(sim_model_store_by_id_locked(model, 2)->addr, 64, "127.0.0.1:31111");
    sim_model_unlock(model);
    ck_assert_int_eq(tkc_pd_client_get_store(pd, 2, false, &s, err, sizeof(err)), TKC_ERR_OK);
    ck_assert_str_eq(s.address, "127.0.0.1:30001");
    ck_assert_int_eq(tkc_pd_client_get_store(pd, 2, true, &s, err, sizeof(err)), TKC_ERR_OK);
    ck_assert_str_eq(s.address, "127.0.0.1:31111");
    /* A store running an unsupported TiKV is refused with a clear message. */
    sim_model_lock(model);
    snprintf(sim_model_store_by_id_locked(model, 3)->version, 32, "4.0.16");
    sim_model_unlock(model);
    ck_assert_int_eq(tkc_pd_client_get_store(pd, 3, true, &s, err, sizeof(err)),
                     TKC_ERR_INCOMPATIBLE);
    ck_assert_ptr_nonnull(strstr(err, "4.0.16"));
    tkc_pd_store_t *all;
    size_t n;
    ck_assert_int_eq(tkc_pd_client_get_all_stores(pd, &all, &n), TKC_ERR_OK);
    ck_assert_uint_eq(n, 3);
    free(all);
    tkc_pd_client_destroy(pd);
}
END_TEST

START_TEST(test_pd_store_version_range)
{
    ck_assert(tkc_pd_store_version_supported("8.5.0"));
    ck_assert(tkc_pd_store_version_supported("v7.1.3-alpha"));
    ck_assert(tkc_pd_store_version_supported("5.3.0"));
    ck_assert(!tkc_pd_store_version_supported("5.2.9"));
    ck_assert(!tkc_pd_store_version_supported("10.0.0"));
    ck_assert(!tkc_pd_store_version_supported(""));
    ck_assert(!tkc_pd_store_version_supported("garbage"));
}
END_TEST

START_TEST(test_pd_client_gc_safepoint)
{
    tkc_pd_client_t *pd = connect_client();
    uint64_t ts, min = 0;
    ck_assert_int_eq(tkc_pd_client_get_ts(pd, &ts), TKC_ERR_OK);
    ck_assert_int_eq(tkc_pd_client_update_service_safepoint(pd, "tikv-kafka-cdc-test", 3600, ts,
                                                            &min),
                     TKC_ERR_OK);
    ck_assert_uint_le(min, ts);
    tkc_pd_client_destroy(pd);
}
END_TEST

START_TEST(test_pd_client_survives_lost_leadership)
{
    tkc_pd_client_t *pd = connect_client();
    /* One call answers "not leader": the client rediscovers and retries. */
    sim_pd_fault_lose_leader(simpd, 0, 1);
    tkc_pd_store_t s;
    char err[256];
    ck_assert_int_eq(tkc_pd_client_get_store(pd, 1, true, &s, err, sizeof(err)), TKC_ERR_OK);
    /* A longer loss fails the call cleanly; it works again afterwards. */
    sim_pd_fault_lose_leader(simpd, 0, 10);
    ck_assert_int_ne(tkc_pd_client_get_store(pd, 1, true, &s, err, sizeof(err)), TKC_ERR_OK);
    sim_pd_fault_lose_leader(simpd, 0, 0);
    int ok = 0;
    for (int i = 0; i < 20 && !ok; i++)
        ok = tkc_pd_client_get_store(pd, 1, true, &s, err, sizeof(err)) == TKC_ERR_OK;
    ck_assert(ok);
    tkc_pd_client_destroy(pd);
}
END_TEST

START_TEST(test_pd_client_tso_stream_break_reopens)
{
    tkc_pd_client_t *pd = connect_client();
    uint64_t a, b;
    ck_assert_int_eq(tkc_pd_client_get_ts(pd, &a), TKC_ERR_OK);
    ck_assert_int_ge(sim_pd_fault_break_tso(simpd, GRPC_STATUS_UNAVAILABLE, "broken"), 1);
    ck_assert_int_eq(tkc_pd_client_get_ts(pd, &b), TKC_ERR_OK);
    ck_assert_uint_gt(b, a);
    tkc_pd_client_stats_t st;
    tkc_pd_client_stats(pd, &st);
    ck_assert_uint_eq(st.tso_stream_opens, 2);
    tkc_pd_client_destroy(pd);
}
END_TEST

START_TEST(test_pd_client_survives_pd_restart)
{
    tkc_pd_client_t *pd = connect_client();
    uint64_t a, b;
    ck_assert_int_eq(tkc_pd_client_get_ts(pd, &a), TKC_ERR_OK);
    sim_server_stop(server);
    ck_assert_int_ne(tkc_pd_client_get_ts(pd, &b), TKC_ERR_OK);
    ck_assert_int_gt(sim_server_start(server), 0);
    /* The channel is in reconnect backoff; callers retry with a pause. */
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        ok = tkc_pd_client_get_ts(pd, &b) == TKC_ERR_OK;
        if (!ok)
            usleep(100 * 1000);
    }
    ck_assert(ok);
    ck_assert_uint_gt(b, a);
    tkc_pd_client_destroy(pd);
}
END_TEST

static Suite *pd_client_suite(void)
{
    Suite *s = suite_create("pd_client");
    TCase *tc = tcase_create("pd");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pd_client_discovers_leader_and_cluster_id);
    tcase_add_test(tc, test_pd_client_no_endpoint_answers);
    tcase_add_test(tc, test_pd_client_tso_monotonic_and_wall_clock);
    tcase_add_test(tc, test_pd_client_scan_regions_pages_cover_keyspace);
    tcase_add_test(tc, test_pd_client_scan_hole_is_visible);
    tcase_add_test(tc, test_pd_client_region_by_id);
    tcase_add_test(tc, test_pd_client_stores_and_versions);
    tcase_add_test(tc, test_pd_client_gc_safepoint);
    tcase_add_test(tc, test_pd_client_survives_lost_leadership);
    tcase_add_test(tc, test_pd_client_tso_stream_break_reopens);
    tcase_add_test(tc, test_pd_client_survives_pd_restart);
    suite_add_tcase(s, tc);
    TCase *tv = tcase_create("version");
    tcase_add_test(tv, test_pd_store_version_range);
    suite_add_tcase(s, tv);
    return s;
}

TKC_CHECK_MAIN(pd_client_suite)
