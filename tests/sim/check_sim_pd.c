/*
 * check_sim_pd.c: the simulated PD over real gRPC on loopback.
 *
 * Each test builds a small model (3 stores, 10 regions, 1000 keys, cluster id
 * 4242), serves pdpb.PD from it on 127.0.0.1:0 and calls every method with
 * protobuf-c requests through the C-core client of check_sim_rpc.c. Expected
 * values come from the model itself (regions, stores, TSO), never from
 * constants copied out of the implementation.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "check_sim_rpc.h"
#include "metapb.pb-c.h"
#include "pdpb.pb-c.h"
#include "sim_model.h"
#include "sim_pd.h"
#include "sim_server.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/mem.h"

#define CID 4242

static sim_model_t *M;
static sim_server_t *S;
static sim_pd_t *PD;
static grpc_channel *CH;

static void setup(void)
{
    grpc_init();
    sim_model_config_t mc = {.cluster_id = CID, .stores = 3, .regions = 10, .seed = 7,
                             .table_id = 100, .key_count = 1000};
    M = sim_model_new(&mc);
    ck_assert_ptr_nonnull(M);
    sim_model_lock(M);
    for (int i = 0; i < 3; i++) {
        sim_store_t *st = sim_model_store_at_locked(M, i);
        snprintf(st->addr, sizeof(st->addr), "127.0.0.1:%d", 20160 + i);
    }
    sim_model_unlock(M);
    S = sim_server_new("pd", "127.0.0.1:0");
    PD = sim_pd_new(M, S);
    int port = sim_server_start(S);
    ck_assert_int_gt(port, 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    CH = crpc_channel(addr);
}

static void teardown(void)
{
    grpc_channel_destroy(CH);
    sim_server_destroy(S);
    sim_pd_destroy(PD);
    sim_model_destroy(M);
    grpc_shutdown_blocking();
}

static grpc_status_code call(const char *method, const ProtobufCMessage *req, crpc_result_t *r)
{
    size_t n = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = tkc_malloc(n + 1);
    protobuf_c_message_pack(req, buf);
    grpc_status_code st = crpc_unary(CH, method, buf, n, 5000, r);
    tkc_free(buf);
    return st;
}

static Pdpb__RequestHeader hdr_of(uint64_t cid)
{
    Pdpb__RequestHeader h = PDPB__REQUEST_HEADER__INIT;
    h.cluster_id = cid;
    return h;
}

static Pdpb__ScanRegionsResponse *scan(const sim_bytes_t *start, const sim_bytes_t *end,
                                       int limit)
{
    Pdpb__RequestHeader h = hdr_of(CID);
    Pdpb__ScanRegionsRequest rq = PDPB__SCAN_REGIONS_REQUEST__INIT;
    rq.header = &h;
    if (start) {
        rq.start_key.data = start->data;
        rq.start_key.len = start->len;
    }
    if (end) {
        rq.end_key.data = end->data;
        rq.end_key.len = end->len;
    }
    rq.limit = limit;
    crpc_result_t r;
    ck_assert_int_eq(call("/pdpb.PD/ScanRegions", &rq.base, &r), GRPC_STATUS_OK);
    Pdpb__ScanRegionsResponse *resp = pdpb__scan_regions_response__unpack(NULL, r.resp_len, r.resp);
    crpc_result_free(&r);
    ck_assert_ptr_nonnull(resp);
    ck_assert_uint_eq(resp->header->cluster_id, CID);
    return resp;
}

/* ===== tests ===== */

START_TEST(test_pd_get_members_and_cluster_info)
{
    /* no cluster id in the request: GetMembers is how a client learns it */
    Pdpb__GetMembersRequest rq = PDPB__GET_MEMBERS_REQUEST__INIT;
    crpc_result_t r;
    ck_assert_int_eq(call("/pdpb.PD/GetMembers", &rq.base, &r), GRPC_STATUS_OK);
    Pdpb__GetMembersResponse *resp = pdpb__get_members_response__unpack(NULL, r.resp_len, r.resp);
    crpc_result_free(&r);
    ck_assert_ptr_nonnull(resp);
    ck_assert_uint_eq(resp->header->cluster_id, CID);
    ck_assert_uint_eq(resp->n_members, 1);
    ck_assert_ptr_nonnull(resp->leader);
    ck_assert_uint_eq(resp->leader->member_id, resp->members[0]->member_id);
    ck_assert_uint_ne(resp->leader->member_id, 0);
    char want[64];
    snprintf(want, sizeof(want), "http://127.0.0.1:%d", sim_server_port(S));
    ck_assert_uint_eq(resp->leader->n_client_urls, 1);
    ck_assert_str_eq(resp->leader->client_urls[0], want);
    pdpb__get_members_response__free_unpacked(resp, NULL);

    Pdpb__GetClusterInfoRequest ci = PDPB__GET_CLUSTER_INFO_REQUEST__INIT;
    ck_assert_int_eq(call("/pdpb.PD/GetClusterInfo", &ci.base, &r), GRPC_STATUS_OK);
    Pdpb__GetClusterInfoResponse *cr =
        pdpb__get_cluster_info_response__unpack(NULL, r.resp_len, r.resp);
    crpc_result_free(&r);
    ck_assert_uint_eq(cr->n_servicemodes, 1);
    ck_assert_int_eq(cr->servicemodes[0], PDPB__SERVICE_MODE__PD_SVC_MODE);
    ck_assert_uint_eq(cr->header->cluster_id, CID);
    pdpb__get_cluster_info_response__free_unpacked(cr, NULL);

    /* BatchScanRegions is left to the ScanRegions fallback */
    Pdpb__BatchScanRegionsRequest b = PDPB__BATCH_SCAN_REGIONS_REQUEST__INIT;
    ck_assert_int_eq(call("/pdpb.PD/BatchScanRegions", &b.base, &r), GRPC_STATUS_UNIMPLEMENTED);
    crpc_result_free(&r);
}
END_TEST

START_TEST(test_pd_cluster_id_mismatch)
{
    Pdpb__RequestHeader h = hdr_of(1);
    Pdpb__GetStoreRequest rq = PDPB__GET_STORE_REQUEST__INIT;
    rq.header = &h;
    rq.store_id = 1;
    crpc_result_t r;
    ck_assert_int_eq(call("/pdpb.PD/GetStore", &rq.base, &r), GRPC_STATUS_FAILED_PRECONDITION);
    ck_assert_str_eq(r.details, "mismatch cluster id, need 4242 but got 1");
    crpc_result_free(&r);

    /* a missing header is cluster id 0 */
    Pdpb__GetAllStoresRequest all = PDPB__GET_ALL_STORES_REQUEST__INIT;
    ck_assert_int_eq(call("/pdpb.PD/GetAllStores", &all.base, &r),
                     GRPC_STATUS_FAILED_PRECONDITION);
    ck_assert_str_eq(r.details, "mismatch cluster id, need 4242 but got 0");
    crpc_result_free(&r);

    /* and the right one passes */
    h.cluster_id = CID;
    ck_assert_int_eq(call("/pdpb.PD/GetStore", &rq.base, &r), GRPC_STATUS_OK);
    crpc_result_free(&r);
}
END_TEST

static uint64_t tso_of(const Pdpb__TsoResponse *t)
{
    return tkc_tso_compose(t->timestamp->physical, t->timestamp->logical);
}

static Pdpb__TsoResponse *tso_roundtrip(crpc_stream_t *st, uint64_t cid, uint32_t count)
{
    Pdpb__RequestHeader h = hdr_of(cid);
    Pdpb__TsoRequest rq = PDPB__TSO_REQUEST__INIT;
    rq.header = &h;
    rq.count = count;
    size_t n = pdpb__tso_request__get_packed_size(&rq);
    uint8_t buf[64];
    pdpb__tso_request__pack(&rq, buf);
    ck_assert_int_eq(crpc_stream_send(st, buf, n), 0);
    uint8_t *data = NULL;
    size_t len = 0;
    int got = crpc_stream_recv(st, 5000, &data, &len);
    if (got != 1)
        return NULL;
    Pdpb__TsoResponse *resp = pdpb__tso_response__unpack(NULL, len, data);
    tkc_free(data);
    return resp;
}

START_TEST(test_pd_tso_batches)
{
    crpc_stream_t *st = crpc_stream_open(CH, "/pdpb.PD/Tso", NULL, NULL);
    uint64_t prev = 0;
    const uint32_t counts[] = {1, 10, 1000, 3, 70000, 1};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        Pdpb__TsoResponse *t = tso_roundtrip(st, CID, counts[i]);
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_eq(t->count, counts[i]);
        ck_assert_uint_eq(t->header->cluster_id, CID);
        ck_assert_int_lt(t->timestamp->logical, 1 << 18);
        uint64_t largest = tso_of(t);
        /* the batch is the `count` timestamps ending at `largest`; all of
         * them are above everything handed out before */
        uint64_t first = largest - (counts[i] - 1);
        ck_assert_uint_gt(first, prev);
        ck_assert_uint_eq(tkc_tso_logical(largest) >= counts[i] - 1, 1);
        /* physical follows the wall clock (generous bound for slow boxes) */
        int64_t skew = t->timestamp->physical - tkc_clock_wall_ms();
        ck_assert_int_lt(skew < 0 ? -skew : skew, 5000);
        prev = largest;
        pdpb__tso_response__free_unpacked(t, NULL);
    }
    /* the model's own TSO continues above the batches */
    ck_assert_uint_gt(sim_model_tso(M), prev);

    /* count 0 fails the stream the way PD does */
    ck_assert_ptr_null(tso_roundtrip(st, CID, 0));
    grpc_status_code code;
    const char *details;
    ck_assert_int_eq(crpc_stream_status(st, 5000, &code, &details), 0);
    ck_assert_int_eq(code, GRPC_STATUS_UNKNOWN);
    ck_assert_str_eq(details, "tso count should be positive");
    crpc_stream_destroy(st);

    /* a wrong cluster id ends the stream with FAILED_PRECONDITION */
    st = crpc_stream_open(CH, "/pdpb.PD/Tso", NULL, NULL);
    ck_assert_ptr_null(tso_roundtrip(st, 77, 1));
    ck_assert_int_eq(crpc_stream_status(st, 5000, &code, &details), 0);
    ck_assert_int_eq(code, GRPC_STATUS_FAILED_PRECONDITION);
    ck_assert_str_eq(details, "mismatch cluster id, need 4242 but got 77");
    crpc_stream_destroy(st);

    /* a half-close ends it with OK */
    st = crpc_stream_open(CH, "/pdpb.PD/Tso", NULL, NULL);
    Pdpb__TsoResponse *t = tso_roundtrip(st, CID, 2);
    ck_assert_ptr_nonnull(t);
    pdpb__tso_response__free_unpacked(t, NULL);
    crpc_stream_close_send(st);
    ck_assert_int_eq(crpc_stream_status(st, 5000, &code, &details), 0);
    ck_assert_int_eq(code, GRPC_STATUS_OK);
    crpc_stream_destroy(st);
}
END_TEST

START_TEST(test_pd_stores)
{
    Pdpb__RequestHeader h = hdr_of(CID);
    crpc_result_t r;
    for (uint64_t id = 1; id <= 3; id++) {
        Pdpb__GetStoreRequest rq = PDPB__GET_STORE_REQUEST__INIT;
        rq.header = &h;
        rq.store_id = id;
        ck_assert_int_eq(call("/pdpb.PD/GetStore", &rq.base, &r), GRPC_STATUS_OK);
        Pdpb__GetStoreResponse *resp = pdpb__get_store_response__unpack(NULL, r.resp_len, r.resp);
        crpc_result_free(&r);
        ck_assert_ptr_null(resp->header->error);
        ck_assert_ptr_nonnull(resp->store);
        ck_assert_uint_eq(resp->store->id, id);
        sim_model_lock(M);
        sim_store_t *ms = sim_model_store_by_id_locked(M, id);
        ck_assert_str_eq(resp->store->address, ms->addr);
        ck_assert_str_eq(resp->store->version, ms->version);
        sim_model_unlock(M);
        ck_assert_str_eq(resp->store->version, "8.5.0");
        ck_assert_int_eq(resp->store->state, METAPB__STORE_STATE__Up);
        pdpb__get_store_response__free_unpacked(resp, NULL);
    }

    Pdpb__GetStoreRequest bad = PDPB__GET_STORE_REQUEST__INIT;
    bad.header = &h;
    bad.store_id = 99;
    ck_assert_int_eq(call("/pdpb.PD/GetStore", &bad.base, &r), GRPC_STATUS_OK);
    Pdpb__GetStoreResponse *resp = pdpb__get_store_response__unpack(NULL, r.resp_len, r.resp);
    crpc_result_free(&r);
    ck_assert_ptr_null(resp->store);
    ck_assert_ptr_nonnull(resp->header->error);
    ck_assert_int_eq(resp->header->error->type, PDPB__ERROR_TYPE__UNKNOWN);
    ck_assert_str_eq(resp->header->error->message, "invalid store ID 99, not found");
    pdpb__get_store_response__free_unpacked(resp, NULL);

    sim_model_set_store_state(M, 3, SIM_STORE_TOMBSTONE);
    for (int excl = 0; excl <= 1; excl++) {
        Pdpb__GetAllStoresRequest rq = PDPB__GET_ALL_STORES_REQUEST__INIT;
        rq.header = &h;
        rq.exclude_tombstone_stores = excl;
        ck_assert_int_eq(call("/pdpb.PD/GetAllStores", &rq.base, &r), GRPC_STATUS_OK);
        Pdpb__GetAllStoresResponse *all =
            pdpb__get_all_stores_response__unpack(NULL, r.resp_len, r.resp);
        crpc_result_free(&r);
        ck_assert_uint_eq(all->n_stores, excl ? 2 : 3);
        for (size_t i = 0; i < all->n_stores; i++) {
            ck_assert_int_eq(all->stores[i]->state, all->stores[i]->id == 3
                                                        ? METAPB__STORE_STATE__Tombstone
                                                        : METAPB__STORE_STATE__Up);
            ck_assert(!excl || all->stores[i]->id != 3);
            ck_assert_str_ne(all->stores[i]->version, "");
        }
        pdpb__get_all_stores_response__free_unpacked(all, NULL);
    }
}
END_TEST

static bool bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* region_metas[i]/leaders[i] and regions[i] describe the same region, and
 * that region is the model's region at index idx */
static void assert_region_matches(const Pdpb__ScanRegionsResponse *resp, size_t i, size_t idx)
{
    const Metapb__Region *a = resp->region_metas[i];
    const Metapb__Region *b = resp->regions[i]->region;
    ck_assert_uint_eq(a->id, b->id);
    ck_assert(bytes_eq(a->start_key.data, a->start_key.len, b->start_key.data, b->start_key.len));
    ck_assert(bytes_eq(a->end_key.data, a->end_key.len, b->end_key.data, b->end_key.len));
    ck_assert_uint_eq(a->region_epoch->version, b->region_epoch->version);
    ck_assert_uint_eq(a->n_peers, 3);
    ck_assert_uint_eq(resp->leaders[i]->id, resp->regions[i]->leader->id);
    ck_assert_uint_eq(resp->leaders[i]->store_id, resp->regions[i]->leader->store_id);
    sim_model_lock(M);
    const sim_region_t *r = sim_model_region_at_locked(M, idx);
    ck_assert_uint_eq(a->id, r->id);
    ck_assert(bytes_eq(a->start_key.data, a->start_key.len, r->start.data, r->start.len));
    ck_assert(bytes_eq(a->end_key.data, a->end_key.len, r->end.data, r->end.len));
    ck_assert_uint_eq(a->region_epoch->conf_ver, r->conf_ver);
    ck_assert_uint_eq(a->region_epoch->version, r->version);
    ck_assert_uint_eq(resp->leaders[i]->store_id, sim_region_leader_store(r));
    ck_assert_uint_eq(resp->leaders[i]->id, r->peers[r->leader].id);
    sim_model_unlock(M);
}

START_TEST(test_pd_scan_regions_paging)
{
    sim_model_lock(M);
    size_t total = sim_model_region_count_locked(M);
    sim_model_unlock(M);
    ck_assert_uint_eq(total, 10);

    /* page with limit 3 from -inf, continuing at each page's last end key */
    size_t seen = 0, pages = 0;
    sim_bytes_t start = {NULL, 0};
    for (;;) {
        Pdpb__ScanRegionsResponse *resp = scan(&start, NULL, 3);
        pages++;
        ck_assert_uint_le(resp->n_regions, 3);
        ck_assert_uint_eq(resp->n_region_metas, resp->n_regions);
        ck_assert_uint_eq(resp->n_leaders, resp->n_regions);
        ck_assert_uint_gt(resp->n_regions, 0);
        for (size_t i = 0; i < resp->n_regions; i++)
            assert_region_matches(resp, i, seen + i);
        seen += resp->n_regions;
        const Metapb__Region *last = resp->regions[resp->n_regions - 1]->region;
        sim_bytes_free(&start);
        start.len = last->end_key.len;
        start.data = tkc_memdup(last->end_key.data, last->end_key.len);
        pdpb__scan_regions_response__free_unpacked(resp, NULL);
        if (start.len == 0)
            break;
        ck_assert_uint_lt(pages, 20);
    }
    ck_assert_uint_eq(seen, total);
    ck_assert_uint_eq(pages, 4);

    /* limit 0 = everything; [start(2), start(5)) = regions 2, 3, 4 */
    Pdpb__ScanRegionsResponse *resp = scan(NULL, NULL, 0);
    ck_assert_uint_eq(resp->n_regions, total);
    pdpb__scan_regions_response__free_unpacked(resp, NULL);
    sim_model_lock(M);
    sim_bytes_t s2 = {tkc_memdup(sim_model_region_at_locked(M, 2)->start.data,
                                 sim_model_region_at_locked(M, 2)->start.len),
                      sim_model_region_at_locked(M, 2)->start.len};
    sim_bytes_t s5 = {tkc_memdup(sim_model_region_at_locked(M, 5)->start.data,
                                 sim_model_region_at_locked(M, 5)->start.len),
                      sim_model_region_at_locked(M, 5)->start.len};
    sim_model_unlock(M);
    resp = scan(&s2, &s5, 0);
    ck_assert_uint_eq(resp->n_regions, 3);
    for (size_t i = 0; i < 3; i++)
        assert_region_matches(resp, i, 2 + i);
    pdpb__scan_regions_response__free_unpacked(resp, NULL);

    /* a key in the middle of region 5 starts the scan at region 5 */
    uint8_t raw[SIM_KEY_MAX];
    sim_model_lock(M);
    uint64_t id5 = sim_model_region_at_locked(M, 5)->id;
    sim_model_unlock(M);
    int64_t k;
    sim_bytes_t mid = {NULL, 0};
    for (k = 1; k <= 1000; k++) {
        size_t n = sim_model_key_raw(M, k, raw);
        sim_bytes_t enc = sim_key_encode(raw, n);
        sim_model_lock(M);
        const sim_region_t *r = sim_model_region_by_key_locked(M, enc.data, enc.len);
        bool in5 = r && r->id == id5 &&
                   sim_bytes_cmp(enc.data, enc.len, r->start.data, r->start.len) > 0;
        sim_model_unlock(M);
        if (in5) {
            mid = enc;
            break;
        }
        sim_bytes_free(&enc);
    }
    ck_assert_uint_gt(mid.len, 0);
    resp = scan(&mid, NULL, 1);
    ck_assert_uint_eq(resp->n_regions, 1);
    ck_assert_uint_eq(resp->regions[0]->region->id, id5);
    pdpb__scan_regions_response__free_unpacked(resp, NULL);

    /* GetRegion with the same key, GetRegionByID known and unknown */
    Pdpb__RequestHeader h = hdr_of(CID);
    Pdpb__GetRegionRequest gr = PDPB__GET_REGION_REQUEST__INIT;
    gr.header = &h;
    gr.region_key.data = mid.data;
    gr.region_key.len = mid.len;
    crpc_result_t r;
    ck_assert_int_eq(call("/pdpb.PD/GetRegion", &gr.base, &r), GRPC_STATUS_OK);
    Pdpb__GetRegionResponse *g = pdpb__get_region_response__unpack(NULL, r.resp_len, r.resp);
    crpc_result_free(&r);
    ck_assert_uint_eq(g->region->id, id5);
    ck_assert_ptr_nonnull(g->leader);
    pdpb__get_region_response__free_unpacked(g, NULL);

    Pdpb__GetRegionByIDRequest gi = PDPB__GET_REGION_BY_IDREQUEST__INIT;
    gi.header = &h;
    gi.region_id = id5;
    ck_assert_int_eq(call("/pdpb.PD/GetRegionByID", &gi.base, &r), GRPC_STATUS_OK);
    g = pdpb__get_region_response__unpack(NULL, r.resp_len, r.resp);
    crpc_result_free(&r);
    ck_assert_uint_eq(g->region->id, id5);
    ck_assert_ptr_nonnull(g->leader);
    pdpb__get_region_response__free_unpacked(g, NULL);

    gi.region_id = 987654321;
    ck_assert_int_eq(call("/pdpb.PD/GetRegionByID", &gi.base, &r), GRPC_STATUS_OK);
    g = pdpb__get_region_response__unpack(NULL, r.resp_len, r.resp);
    crpc_result_free(&r);
    ck_assert_ptr_null(g->region);
    ck_assert_ptr_null(g->leader);
    ck_assert_ptr_null(g->header->error);
    ck_assert_uint_eq(g->header->cluster_id, CID);
    pdpb__get_region_response__free_unpacked(g, NULL);

    sim_bytes_free(&start);
    sim_bytes_free(&s2);
    sim_bytes_free(&s5);
    sim_bytes_free(&mid);
}
END_TEST

static uint64_t update_ssp(const char *service, int64_t ttl, uint64_t sp)
{
    Pdpb__RequestHeader h = hdr_of(CID);
    Pdpb__UpdateServiceGCSafePointRequest rq = PDPB__UPDATE_SERVICE_GCSAFE_POINT_REQUEST__INIT;
    rq.header = &h;
    rq.service_id.data = (uint8_t *)service;
    rq.service_id.len = strlen(service);
    rq.ttl = ttl;
    rq.safe_point = sp;
    crpc_result_t r;
    ck_assert_int_eq(call("/pdpb.PD/UpdateServiceGCSafePoint", &rq.base, &r), GRPC_STATUS_OK);
    Pdpb__UpdateServiceGCSafePointResponse *resp =
        pdpb__update_service_gcsafe_point_response__unpack(NULL, r.resp_len, r.resp);
    crpc_result_free(&r);
    ck_assert_ptr_nonnull(resp);
    ck_assert_uint_eq(resp->service_id.len, strlen(service));
    ck_assert_int_eq(memcmp(resp->service_id.data, service, strlen(service)), 0);
    ck_assert_int_eq(resp->ttl, ttl);
    uint64_t min = resp->min_safe_point;
    pdpb__update_service_gcsafe_point_response__free_unpacked(resp, NULL);
    return min;
}

START_TEST(test_pd_service_gc_safepoint)
{
    uint64_t now = sim_model_tso(M);
    uint64_t cdc_sp = now - (uint64_t)(60000) * (1 << 18); /* a minute ago */
    ck_assert_uint_eq(update_ssp("ticdc", 600, cdc_sp), cdc_sp);
    /* another service above it does not move the minimum */
    ck_assert_uint_eq(update_ssp("br", 600, now), cdc_sp);
    /* GC cannot pass the lowest service safepoint */
    ck_assert_uint_eq(sim_model_gc_advance(M, now), cdc_sp);
    ck_assert_uint_eq(sim_model_gc_safepoint(M), cdc_sp);
    /* a service asking for a point below the GC safepoint is refused and
     * learns the current minimum (this is how a client detects lost data) */
    ck_assert_uint_eq(update_ssp("late", 600, cdc_sp - 1000), cdc_sp);
    /* the minimum service moves up: the minimum follows */
    uint64_t cdc_sp2 = cdc_sp + (uint64_t)1000 * (1 << 18);
    ck_assert_uint_eq(update_ssp("ticdc", 600, cdc_sp2), cdc_sp2);
}
END_TEST

START_TEST(test_pd_faults)
{
    Pdpb__RequestHeader h = hdr_of(CID);
    Pdpb__GetStoreRequest rq = PDPB__GET_STORE_REQUEST__INIT;
    rq.header = &h;
    rq.store_id = 1;
    crpc_result_t r;

    /* leadership lost for the next 2 checked calls */
    sim_pd_fault_lose_leader(PD, 0, 2);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(call("/pdpb.PD/GetStore", &rq.base, &r), GRPC_STATUS_UNAVAILABLE);
        ck_assert_str_eq(r.details, "not leader");
        crpc_result_free(&r);
    }
    ck_assert_int_eq(call("/pdpb.PD/GetStore", &rq.base, &r), GRPC_STATUS_OK);
    crpc_result_free(&r);

    /* for a while: GetMembers shows no leader meanwhile, then the leader again */
    sim_pd_fault_lose_leader(PD, 300, 0);
    Pdpb__GetMembersRequest gm = PDPB__GET_MEMBERS_REQUEST__INIT;
    ck_assert_int_eq(call("/pdpb.PD/GetMembers", &gm.base, &r), GRPC_STATUS_OK);
    Pdpb__GetMembersResponse *mr = pdpb__get_members_response__unpack(NULL, r.resp_len, r.resp);
    crpc_result_free(&r);
    ck_assert_ptr_null(mr->leader);
    pdpb__get_members_response__free_unpacked(mr, NULL);
    ck_assert_int_eq(call("/pdpb.PD/GetStore", &rq.base, &r), GRPC_STATUS_UNAVAILABLE);
    crpc_result_free(&r);
    usleep(400000);
    ck_assert_int_eq(call("/pdpb.PD/GetStore", &rq.base, &r), GRPC_STATUS_OK);
    crpc_result_free(&r);
    ck_assert_int_eq(call("/pdpb.PD/GetMembers", &gm.base, &r), GRPC_STATUS_OK);
    mr = pdpb__get_members_response__unpack(NULL, r.resp_len, r.resp);
    crpc_result_free(&r);
    ck_assert_ptr_nonnull(mr->leader);
    pdpb__get_members_response__free_unpacked(mr, NULL);

    /* injected failures of one method, counted */
    ck_assert_int_eq(sim_pd_fault_fail(PD, "GetStore", 2, GRPC_STATUS_DEADLINE_EXCEEDED, "slow"),
                     0);
    ck_assert_int_eq(sim_pd_fault_fail(PD, "NoSuchMethod", 1, GRPC_STATUS_UNKNOWN, NULL), -1);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(call("/pdpb.PD/GetStore", &rq.base, &r), GRPC_STATUS_DEADLINE_EXCEEDED);
        ck_assert_str_eq(r.details, "slow");
        crpc_result_free(&r);
    }
    ck_assert_int_eq(call("/pdpb.PD/GetStore", &rq.base, &r), GRPC_STATUS_OK);
    crpc_result_free(&r);

    /* a hole: region at index 4 missing from the next ScanRegions only */
    sim_model_lock(M);
    uint64_t id4 = sim_model_region_at_locked(M, 4)->id;
    size_t total = sim_model_region_count_locked(M);
    sim_model_unlock(M);
    sim_pd_fault_scan_hole(PD, id4, 1);
    Pdpb__ScanRegionsResponse *resp = scan(NULL, NULL, 0);
    ck_assert_uint_eq(resp->n_regions, total - 1);
    for (size_t i = 0; i < resp->n_regions; i++)
        ck_assert_uint_ne(resp->regions[i]->region->id, id4);
    ck_assert_uint_eq(resp->n_region_metas, total - 1);
    pdpb__scan_regions_response__free_unpacked(resp, NULL);
    resp = scan(NULL, NULL, 0);
    ck_assert_uint_eq(resp->n_regions, total);
    pdpb__scan_regions_response__free_unpacked(resp, NULL);

    /* breaking TSO streams ends an open one with UNAVAILABLE */
    crpc_stream_t *st = crpc_stream_open(CH, "/pdpb.PD/Tso", NULL, NULL);
    Pdpb__TsoResponse *t = tso_roundtrip(st, CID, 1);
    ck_assert_ptr_nonnull(t);
    pdpb__tso_response__free_unpacked(t, NULL);
    ck_assert_int_eq(sim_pd_fault_break_tso(PD, GRPC_STATUS_UNAVAILABLE, "tso broken"), 1);
    grpc_status_code code;
    const char *details;
    ck_assert_int_eq(crpc_stream_status(st, 5000, &code, &details), 0);
    ck_assert_int_eq(code, GRPC_STATUS_UNAVAILABLE);
    ck_assert_str_eq(details, "tso broken");
    crpc_stream_destroy(st);

    /* and a stream failed at open by injection */
    sim_pd_fault_fail(PD, "/pdpb.PD/Tso", 1, GRPC_STATUS_UNAVAILABLE, "no tso for you");
    st = crpc_stream_open(CH, "/pdpb.PD/Tso", NULL, NULL);
    ck_assert_int_eq(crpc_stream_status(st, 5000, &code, &details), 0);
    ck_assert_int_eq(code, GRPC_STATUS_UNAVAILABLE);
    ck_assert_str_eq(details, "no tso for you");
    crpc_stream_destroy(st);

    json_t *js = sim_pd_stats_json(PD);
    ck_assert_int_ge(json_integer_value(json_object_get(json_object_get(js, "errors"),
                                                        "not_leader")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(js, "scan_holes_applied")), 1);
    json_decref(js);
}
END_TEST

static Suite *sim_pd_suite(void)
{
    Suite *s = suite_create("sim_pd");
    TCase *tc = tcase_create("pd");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pd_get_members_and_cluster_info);
    tcase_add_test(tc, test_pd_cluster_id_mismatch);
    tcase_add_test(tc, test_pd_tso_batches);
    tcase_add_test(tc, test_pd_stores);
    tcase_add_test(tc, test_pd_scan_regions_paging);
    tcase_add_test(tc, test_pd_service_gc_safepoint);
    tcase_add_test(tc, test_pd_faults);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(sim_pd_suite)
