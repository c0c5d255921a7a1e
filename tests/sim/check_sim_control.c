/*
 * check_sim_control.c: the control endpoint, driven over HTTP with libcurl
 * against a complete in-process simulator (model, CDC service, PD, 3 stores
 * with lock RPCs, a paused workload).
 *
 * Every fault is posted as JSON and its effect observed where a client would
 * see it or in the model: leaders and regions in the model and in GET
 * /regions, a restarted store refusing connections and coming back on the
 * same port with its leaders gone, an EventFeed stream ending UNAVAILABLE, a
 * moved store reported by PD at its new address, PD answering "not leader",
 * a busy answer on the next registration, a lock left behind, the GC
 * safepoint, and a scenario file executing on time.
 */
#include <check.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <jansson.h>

#include "check_sim_rpc.h"
#include "kvrpcpb.pb-c.h"
#include "pdpb.pb-c.h"
#include "sim_cdc.h"
#include "sim_control.h"
#include "sim_lockrpc.h"
#include "sim_model.h"
#include "sim_pd.h"
#include "sim_server.h"
#include "sim_testclient.h"
#include "sim_workload.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/mem.h"

#define NSTORES 3

static sim_model_t *M;
static sim_cdc_t *CDC;
static sim_server_t *PDS;
static sim_pd_t *PD;
static sim_server_t *S[NSTORES];
static sim_lockrpc_t *L[NSTORES];
static uint64_t IDS[NSTORES];
static sim_workload_t *W;
static sim_control_t *C;
static int PORT;

static void setup(void)
{
    grpc_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sim_model_config_t mc = {.cluster_id = 555, .stores = NSTORES, .regions = 8, .seed = 11,
                             .table_id = 100, .key_count = 2000};
    M = sim_model_new(&mc);
    ck_assert_ptr_nonnull(M);
    sim_cdc_config_t cc;
    sim_cdc_config_defaults(&cc);
    cc.resolved_interval_ms = 50;
    CDC = sim_cdc_new(M, &cc);
    PDS = sim_server_new("pd", "127.0.0.1:0");
    PD = sim_pd_new(M, PDS);
    ck_assert_int_gt(sim_server_start(PDS), 0);
    for (int i = 0; i < NSTORES; i++) {
        IDS[i] = (uint64_t)i + 1;
        S[i] = sim_server_new("store", "127.0.0.1:0");
        L[i] = sim_lockrpc_new(M, IDS[i], S[i]);
        sim_cdc_attach_store(CDC, IDS[i], S[i]);
        ck_assert_int_gt(sim_server_start(S[i]), 0);
        sim_model_lock(M);
        snprintf(sim_model_store_by_id_locked(M, IDS[i])->addr, 64, "%s", sim_server_addr(S[i]));
        sim_model_unlock(M);
    }
    sim_workload_config_t wc;
    sim_workload_config_default(&wc);
    W = sim_workload_new(M, &wc, 11);
    sim_workload_pause(W);
    ck_assert_int_eq(sim_workload_start(W), 0);
    sim_cluster_t cl = {.model = M, .workload = W, .cdc = CDC, .pd = PD, .n_stores = NSTORES,
                        .store_ids = IDS, .store_servers = S, .lockrpcs = L};
    C = sim_control_new(&cl);
    PORT = sim_control_start_http(C, 0);
    ck_assert_int_gt(PORT, 0);
}

static void teardown(void)
{
    sim_control_destroy(C);
    sim_workload_destroy(W);
    for (int i = 0; i < NSTORES; i++)
        sim_server_stop(S[i]);
    sim_server_stop(PDS);
    for (int i = 0; i < NSTORES; i++) {
        sim_server_destroy(S[i]);
        sim_lockrpc_destroy(L[i]);
    }
    sim_server_destroy(PDS);
    sim_pd_destroy(PD);
    sim_cdc_destroy(CDC);
    sim_model_destroy(M);
    curl_global_cleanup();
    grpc_shutdown_blocking();
}

/* ===== HTTP ===== */

typedef struct {
    char *buf;
    size_t len;
} body_t;

static size_t on_body(char *p, size_t size, size_t n, void *opaque)
{
    body_t *b = opaque;
    b->buf = tkc_realloc(b->buf, b->len + size * n + 1);
    memcpy(b->buf + b->len, p, size * n);
    b->len += size * n;
    b->buf[b->len] = 0;
    return size * n;
}

/* @returns the HTTP status; *out the parsed JSON body (caller decrefs). */
static long http(const char *method, const char *path, const char *body, json_t **out)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", PORT, path);
    CURL *h = curl_easy_init();
    body_t b = {NULL, 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    CURLcode rc = curl_easy_perform(h);
    ck_assert_msg(rc == CURLE_OK, "curl: %s", curl_easy_strerror(rc));
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    json_error_t jerr;
    json_t *doc = json_loads(b.buf ? b.buf : "", 0, &jerr);
    ck_assert_msg(doc != NULL, "not JSON: %s", b.buf ? b.buf : "(empty)");
    tkc_free(b.buf);
    if (out)
        *out = doc;
    else
        json_decref(doc);
    return code;
}

/* POST /fault; asserts the expected status; returns the body. */
static json_t *fault(long want, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *fault(long want, const char *fmt, ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    json_t *doc;
    long code = http("POST", "/fault", body, &doc);
    ck_assert_msg(code == want, "POST %s -> %ld %s", body, code,
                  json_string_value(json_object_get(doc, "error")));
    ck_assert(json_is_true(json_object_get(doc, "ok")) == (want == 200));
    return doc;
}

static int64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    ck_assert_msg(json_is_integer(v), "field %s missing", k);
    return json_integer_value(v);
}

/* ===== model helpers ===== */

static uint64_t region_id_at(size_t idx)
{
    sim_model_lock(M);
    uint64_t id = sim_model_region_at_locked(M, idx)->id;
    sim_model_unlock(M);
    return id;
}

static uint64_t leader_of(uint64_t region_id)
{
    sim_model_lock(M);
    const sim_region_t *r = sim_model_region_by_id_locked(M, region_id);
    uint64_t s = r ? sim_region_leader_store(r) : 0;
    sim_model_unlock(M);
    return s;
}

static size_t leaders_on(uint64_t store)
{
    size_t n = 0;
    sim_model_lock(M);
    for (size_t i = 0; i < sim_model_region_count_locked(M); i++)
        n += sim_region_leader_store(sim_model_region_at_locked(M, i)) == store;
    sim_model_unlock(M);
    return n;
}

static size_t region_count(void)
{
    sim_model_lock(M);
    size_t n = sim_model_region_count_locked(M);
    sim_model_unlock(M);
    return n;
}

static sim_store_state_t store_state(uint64_t id)
{
    sim_model_lock(M);
    sim_store_state_t st = sim_model_store_by_id_locked(M, id)->state;
    sim_model_unlock(M);
    return st;
}

/* A lock-RPC ping at a store: OK if it answers, UNAVAILABLE when refused. */
static grpc_status_code ping_store(const char *addr)
{
    grpc_channel *ch = crpc_channel(addr);
    Kvrpcpb__ScanLockRequest rq = KVRPCPB__SCAN_LOCK_REQUEST__INIT;
    uint8_t buf[16];
    size_t n = kvrpcpb__scan_lock_request__pack(&rq, buf);
    crpc_result_t r;
    grpc_status_code st = crpc_unary(ch, "/tikvpb.Tikv/KvScanLock", buf, n, 2000, &r);
    crpc_result_free(&r);
    grpc_channel_destroy(ch);
    return st;
}

static bool wait_until(bool (*cond)(void *), void *arg, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (cond(arg))
            return true;
        usleep(10000);
    }
    return cond(arg);
}

static bool store_running(void *arg)
{
    return sim_server_running(arg);
}

static bool no_leaders_on(void *arg)
{
    return leaders_on((uint64_t)(uintptr_t)arg) == 0;
}

/* ===== tests ===== */

START_TEST(test_control_http_basics)
{
    json_t *doc;
    ck_assert_int_eq(http("GET", "/healthz", NULL, &doc), 200);
    ck_assert(json_is_true(json_object_get(doc, "ok")));
    json_decref(doc);
    ck_assert_int_eq(http("GET", "/nope", NULL, NULL), 404);
    ck_assert_int_eq(http("POST", "/fault", "{not json", NULL), 400);
    doc = fault(400, "{\"op\": \"explode\"}");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "error")), "unknown op \"explode\"");
    json_decref(doc);
    doc = fault(400, "{\"op\": \"transfer_leader\", \"store\": 2}");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "error")),
                     "field \"region\" is required");
    json_decref(doc);
    doc = fault(400, "{\"op\": \"restart_store\", \"store\": 9}");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "error")), "unknown store 9");
    json_decref(doc);

    ck_assert_int_eq(http("GET", "/regions", NULL, &doc), 200);
    ck_assert_int_eq(jint(doc, "count"), 8);
    ck_assert_uint_eq(json_array_size(json_object_get(doc, "regions")), 8);
    json_t *r0 = json_array_get(json_object_get(doc, "regions"), 0);
    ck_assert_int_eq(jint(r0, "id"), (int64_t)region_id_at(0));
    ck_assert_str_eq(json_string_value(json_object_get(r0, "start")), "");
    json_decref(doc);
    ck_assert_int_eq(http("GET", "/regions?start=6&limit=5", NULL, &doc), 200);
    ck_assert_uint_eq(json_array_size(json_object_get(doc, "regions")), 2);
    json_decref(doc);

    ck_assert_int_eq(http("GET", "/stats", NULL, &doc), 200);
    ck_assert_int_eq(jint(doc, "cluster_id"), 555);
    json_t *stores = json_object_get(doc, "stores");
    ck_assert_uint_eq(json_array_size(stores), NSTORES);
    json_t *s0 = json_array_get(stores, 0);
    /* CDC counters are merged into each store */
    jint(s0, "streams_opened");
    jint(s0, "registrations");
    ck_assert(json_is_object(json_object_get(s0, "errors")));
    ck_assert(json_is_object(json_object_get(s0, "lockrpc")));
    ck_assert(json_is_object(json_object_get(doc, "pd")));
    ck_assert(json_is_object(json_object_get(doc, "workload")));
    /* the failed ops above were counted */
    ck_assert_int_ge(jint(json_object_get(doc, "control"), "ops_failed"), 4);
    json_decref(doc);
}
END_TEST

START_TEST(test_control_topology_ops)
{
    uint64_t rid = region_id_at(3);
    uint64_t from = leader_of(rid);
    uint64_t to = from % NSTORES + 1;
    json_t *doc = fault(200, "{\"op\": \"transfer_leader\", \"region\": %" PRIu64
                             ", \"store\": %" PRIu64 "}", rid, to);
    json_decref(doc);
    ck_assert_uint_eq(leader_of(rid), to);
    ck_assert_int_eq(http("GET", "/regions?start=3&limit=1", NULL, &doc), 200);
    json_t *r3 = json_array_get(json_object_get(doc, "regions"), 0);
    ck_assert_int_eq(jint(r3, "leader_store"), (int64_t)to);
    json_decref(doc);

    /* split in the middle of the key set part of region 3 */
    size_t before = region_count();
    doc = fault(200, "{\"op\": \"split\", \"region\": %" PRIu64 "}", rid);
    uint64_t right = (uint64_t)jint(doc, "new_region");
    json_decref(doc);
    ck_assert_uint_eq(region_count(), before + 1);
    ck_assert_uint_eq(region_id_at(3), rid);
    ck_assert_uint_eq(region_id_at(4), right);

    /* split at a given raw key (record key of handle 1000 = hex below) */
    uint8_t raw[SIM_KEY_MAX];
    size_t n = sim_model_key_raw(M, 1000, raw);
    char hex[2 * SIM_KEY_MAX + 1];
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    sim_bytes_t enc = sim_key_encode(raw, n);
    sim_model_lock(M);
    uint64_t owner = sim_model_region_by_key_locked(M, enc.data, enc.len)->id;
    sim_model_unlock(M);
    doc = fault(200, "{\"op\": \"split\", \"region\": %" PRIu64 ", \"key_hex\": \"%s\"}", owner,
                hex);
    uint64_t right2 = (uint64_t)jint(doc, "new_region");
    json_decref(doc);
    sim_model_lock(M);
    const sim_region_t *rr = sim_model_region_by_id_locked(M, right2);
    ck_assert_ptr_nonnull(rr);
    ck_assert_int_eq(sim_bytes_cmp(rr->start.data, rr->start.len, enc.data, enc.len), 0);
    sim_model_unlock(M);
    sim_bytes_free(&enc);

    /* merge the first split back */
    doc = fault(200, "{\"op\": \"merge\", \"source\": %" PRIu64 ", \"target\": %" PRIu64 "}",
                right, rid);
    json_decref(doc);
    ck_assert_uint_eq(region_count(), before + 1);
    sim_model_lock(M);
    ck_assert_ptr_null(sim_model_region_by_id_locked(M, right));
    sim_model_unlock(M);
    /* a bad merge is refused and changes nothing */
    doc = fault(400, "{\"op\": \"merge\", \"source\": %" PRIu64 ", \"target\": %" PRIu64 "}",
                right, rid);
    json_decref(doc);
    ck_assert_uint_eq(region_count(), before + 1);
}
END_TEST

START_TEST(test_control_restart_store)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "%s", sim_server_addr(S[0]));
    int port = sim_server_port(S[0]);
    ck_assert_uint_gt(leaders_on(1), 0);

    /* an open EventFeed stream on store 1 */
    grpc_channel *ch = crpc_channel(addr);
    crpc_stream_t *feed = crpc_stream_open(ch, "/cdcpb.ChangeData/EventFeed", NULL, NULL);
    for (int i = 0; i < 200 && sim_server_calls_opened(S[0]) == 0; i++)
        usleep(10000);
    ck_assert_uint_ge(sim_server_calls_opened(S[0]), 1);

    json_t *doc = fault(200, "{\"op\": \"restart_store\", \"store\": 1, \"down_ms\": 1500, "
                             "\"election_ms\": 300}");
    json_decref(doc);
    /* at once: the stream ended UNAVAILABLE, the port refuses, PD shows DOWN */
    grpc_status_code code;
    const char *details;
    ck_assert_int_eq(crpc_stream_status(feed, 5000, &code, &details), 0);
    ck_assert_int_eq(code, GRPC_STATUS_UNAVAILABLE);
    crpc_stream_destroy(feed);
    grpc_channel_destroy(ch);
    ck_assert(!sim_server_running(S[0]));
    ck_assert_int_eq(store_state(1), SIM_STORE_DOWN);
    ck_assert_int_eq(ping_store(addr), GRPC_STATUS_UNAVAILABLE);
    ck_assert_int_eq(http("GET", "/stores", NULL, &doc), 200);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(doc, "stores"), 0), "state")),
                     "down");
    json_decref(doc);
    /* a second restart while down is refused */
    doc = fault(400, "{\"op\": \"restart_store\", \"store\": 1}");
    json_decref(doc);

    /* after the election its leaders are elsewhere, while it is still down */
    ck_assert(wait_until(no_leaders_on, (void *)(uintptr_t)1, 5000));
    ck_assert(!sim_server_running(S[0]));

    /* then it comes back on the same port and answers again */
    ck_assert(wait_until(store_running, S[0], 10000));
    ck_assert_int_eq(sim_server_port(S[0]), port);
    ck_assert_int_eq(store_state(1), SIM_STORE_UP);
    grpc_status_code st = GRPC_STATUS_UNAVAILABLE;
    for (int i = 0; i < 50 && st != GRPC_STATUS_OK; i++) {
        st = ping_store(addr);
        if (st != GRPC_STATUS_OK)
            usleep(100000);
    }
    ck_assert_int_eq(st, GRPC_STATUS_OK);
    ck_assert_uint_eq(leaders_on(1), 0); /* leaders do not come back by themselves */

    ck_assert_int_eq(http("GET", "/stats", NULL, &doc), 200);
    json_t *s0 = json_array_get(json_object_get(doc, "stores"), 0);
    ck_assert_int_eq(jint(s0, "restarts"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(s0, "state")), "up");
    json_decref(doc);
}
END_TEST

START_TEST(test_control_kill_and_move_store)
{
    /* kill store 3: down for good, leaders gone after the election */
    json_t *doc = fault(200, "{\"op\": \"kill_store\", \"store\": 3, \"election_ms\": 100}");
    json_decref(doc);
    ck_assert(!sim_server_running(S[2]));
    ck_assert(wait_until(no_leaders_on, (void *)(uintptr_t)3, 5000));
    usleep(300000);
    ck_assert(!sim_server_running(S[2]));
    doc = fault(400, "{\"op\": \"restart_store\", \"store\": 3}");
    json_decref(doc);

    /* move store 2 to a new port: PD reports the new address, the old port
     * refuses, the new one answers */
    char old[64];
    snprintf(old, sizeof(old), "%s", sim_server_addr(S[1]));
    doc = fault(200, "{\"op\": \"change_store_addr\", \"store\": 2}");
    const char *na = json_string_value(json_object_get(doc, "addr"));
    ck_assert_str_eq(json_string_value(json_object_get(doc, "old_addr")), old);
    ck_assert_str_ne(na, old);
    ck_assert_str_eq(na, sim_server_addr(S[1]));
    char newaddr[64];
    snprintf(newaddr, sizeof(newaddr), "%s", na);
    json_decref(doc);
    ck_assert_int_eq(ping_store(old), GRPC_STATUS_UNAVAILABLE);
    ck_assert_int_eq(ping_store(newaddr), GRPC_STATUS_OK);

    grpc_channel *pdch = crpc_channel(sim_server_addr(PDS));
    Pdpb__RequestHeader h = PDPB__REQUEST_HEADER__INIT;
    h.cluster_id = 555;
    Pdpb__GetStoreRequest rq = PDPB__GET_STORE_REQUEST__INIT;
    rq.header = &h;
    rq.store_id = 2;
    uint8_t buf[64];
    size_t n = pdpb__get_store_request__pack(&rq, buf);
    crpc_result_t r;
    ck_assert_int_eq(crpc_unary(pdch, "/pdpb.PD/GetStore", buf, n, 5000, &r), GRPC_STATUS_OK);
    Pdpb__GetStoreResponse *gs = pdpb__get_store_response__unpack(NULL, r.resp_len, r.resp);
    crpc_result_free(&r);
    ck_assert_str_eq(gs->store->address, newaddr);
    pdpb__get_store_response__free_unpacked(gs, NULL);

    /* PD faults through the endpoint */
    doc = fault(200, "{\"op\": \"pd_fail\", \"method\": \"GetStore\", \"count\": 1, "
                     "\"status\": \"RESOURCE_EXHAUSTED\"}");
    json_decref(doc);
    ck_assert_int_eq(crpc_unary(pdch, "/pdpb.PD/GetStore", buf, n, 5000, &r),
                     GRPC_STATUS_RESOURCE_EXHAUSTED);
    crpc_result_free(&r);
    doc = fault(200, "{\"op\": \"pd_lose_leader\", \"calls\": 1}");
    json_decref(doc);
    ck_assert_int_eq(crpc_unary(pdch, "/pdpb.PD/GetStore", buf, n, 5000, &r),
                     GRPC_STATUS_UNAVAILABLE);
    ck_assert_str_eq(r.details, "not leader");
    crpc_result_free(&r);
    ck_assert_int_eq(crpc_unary(pdch, "/pdpb.PD/GetStore", buf, n, 5000, &r), GRPC_STATUS_OK);
    crpc_result_free(&r);
    doc = fault(400, "{\"op\": \"pd_fail\", \"method\": \"Teleport\"}");
    json_decref(doc);
    grpc_channel_destroy(pdch);
}
END_TEST

/* Registers region at index idx on its leader and returns the first event. */
static Cdcpb__ChangeDataEvent *register_first_event(sim_tc_t *tc, sim_tc_stream_t **out_s,
                                                    size_t idx)
{
    sim_model_lock(M);
    const sim_region_t *r = sim_model_region_at_locked(M, idx);
    sim_tc_reg_t reg = {.cluster_id = 555, .region_id = r->id, .conf_ver = r->conf_ver,
                        .version_epoch = r->version, .checkpoint_ts = 1,
                        .start_key = tkc_memdup(r->start.data, r->start.len),
                        .start_len = r->start.len,
                        .end_key = tkc_memdup(r->end.data, r->end.len), .end_len = r->end.len,
                        .request_id = 7};
    sim_model_unlock(M);
    sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
    ck_assert_int_eq(sim_tc_register(s, &reg), 0);
    tkc_free((void *)reg.start_key);
    tkc_free((void *)reg.end_key);
    Cdcpb__ChangeDataEvent *ev = NULL;
    for (int i = 0; i < 100 && !ev; i++) {
        ev = sim_tc_recv(s, 100);
        if (ev && ev->n_events == 0) { /* a resolved-ts message: keep reading */
            cdcpb__change_data_event__free_unpacked(ev, NULL);
            ev = NULL;
        }
    }
    *out_s = s;
    return ev;
}

START_TEST(test_control_cdc_and_workload_ops)
{
    /* busy: the next registration on the leader store gets server_is_busy */
    uint64_t rid = region_id_at(0);
    uint64_t leader = leader_of(rid);
    json_t *doc = fault(200, "{\"op\": \"busy\", \"store\": %" PRIu64 ", \"region\": %" PRIu64
                             ", \"count\": 1, \"backoff_ms\": 250}", leader, rid);
    json_decref(doc);
    sim_tc_t *tc = sim_tc_new(sim_server_addr(S[leader - 1]));
    sim_tc_stream_t *s;
    Cdcpb__ChangeDataEvent *ev = register_first_event(tc, &s, 0);
    ck_assert_ptr_nonnull(ev);
    ck_assert_int_eq(ev->events[0]->event_case, CDCPB__EVENT__EVENT_ERROR);
    ck_assert_ptr_nonnull(ev->events[0]->error->server_is_busy);
    ck_assert_uint_eq(ev->events[0]->error->server_is_busy->backoff_ms, 250);
    cdcpb__change_data_event__free_unpacked(ev, NULL);
    sim_tc_stream_destroy(s);
    /* only once: the next one is served (rows or INITIALIZED) */
    ev = register_first_event(tc, &s, 0);
    ck_assert_ptr_nonnull(ev);
    ck_assert_int_eq(ev->events[0]->event_case, CDCPB__EVENT__EVENT_ENTRIES);

    /* end_streams: the open stream on that store ends with UNKNOWN */
    cdcpb__change_data_event__free_unpacked(ev, NULL);
    doc = fault(200, "{\"op\": \"end_streams\", \"store\": %" PRIu64 ", \"status\": \"UNKNOWN\"}",
                leader);
    ck_assert_int_eq(jint(doc, "streams"), 1);
    json_decref(doc);
    for (int i = 0; i < 100 && !sim_tc_ended(s); i++) {
        ev = sim_tc_recv(s, 50);
        if (ev)
            cdcpb__change_data_event__free_unpacked(ev, NULL);
    }
    ck_assert(sim_tc_ended(s));
    ck_assert_int_eq(sim_tc_status(s, 5000, NULL), GRPC_STATUS_UNKNOWN);
    sim_tc_stream_destroy(s);
    sim_tc_destroy(tc);
    doc = fault(400, "{\"op\": \"end_streams\", \"status\": \"DATA_LOSS\"}");
    json_decref(doc);

    /* leave_lock: a crashed client's lock, visible in the model */
    doc = fault(200, "{\"op\": \"leave_lock\", \"keys\": 2}");
    uint64_t start_ts = (uint64_t)jint(doc, "start_ts");
    json_decref(doc);
    uint64_t cts;
    sim_model_lock(M);
    ck_assert_int_eq(sim_model_txn_status_locked(M, start_ts, &cts), SIM_TXN_LOCKED);
    sim_model_unlock(M);

    /* GC safepoint: explicit, then "a minute ago" never moves it back */
    uint64_t now = sim_model_tso(M);
    doc = fault(200, "{\"op\": \"gc_safepoint\", \"ts\": %" PRIu64 "}", now);
    ck_assert_int_eq(jint(doc, "gc_safepoint"), (int64_t)now);
    json_decref(doc);
    ck_assert_uint_eq(sim_model_gc_safepoint(M), now);
    doc = fault(200, "{\"op\": \"gc_safepoint\", \"ago_ms\": 60000}");
    ck_assert_int_eq(jint(doc, "gc_safepoint"), (int64_t)now);
    json_decref(doc);
    doc = fault(400, "{\"op\": \"gc_safepoint\"}");
    json_decref(doc);

    /* workload: resume at a rate, rows get committed, pause again */
    sim_workload_stats_t ws0, ws1;
    sim_workload_stats(W, &ws0);
    doc = fault(200, "{\"op\": \"set_rate\", \"rows_per_s\": 2000}");
    json_decref(doc);
    for (int i = 0; i < 300; i++) {
        sim_workload_stats(W, &ws1);
        if (ws1.rows_committed > ws0.rows_committed + 50)
            break;
        usleep(10000);
    }
    ck_assert_uint_gt(ws1.rows_committed, ws0.rows_committed + 50);
    doc = fault(200, "{\"op\": \"pause_workload\"}");
    json_decref(doc);
    ck_assert_int_eq(sim_workload_wait_idle(W, 10000), 0);

    doc = fault(200, "{\"op\": \"huge_txn\", \"keys\": 300, \"value_size\": 100}");
    ck_assert_int_gt(jint(doc, "commit_ts"), 0);
    json_decref(doc);
    sim_workload_stats(W, &ws1);
    ck_assert_uint_eq(ws1.huge_txns, 1);
}
END_TEST

START_TEST(test_control_scenario_file)
{
    char path[] = "/tmp/sim_scenario_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    uint64_t rid = region_id_at(5);
    uint64_t to = leader_of(rid) % NSTORES + 1;
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# move a leader, then take PD's leadership for a while\n\n");
    fprintf(f, "{\"at_ms\": 0, \"op\": \"transfer_leader\", \"region\": %" PRIu64
               ", \"store\": %" PRIu64 "}\n", rid, to);
    fprintf(f, "{\"at_ms\": 400, \"op\": \"pd_lose_leader\", \"ms\": 200}\n");
    fprintf(f, "{\"at_ms\": 100, \"op\": \"no_such_op\"}\n");
    fclose(f);
    char err[256];
    int64_t t0 = tkc_clock_mono_ms();
    ck_assert_int_eq(sim_control_run_scenario(C, path, err, sizeof(err)), 3);
    /* the transfer happens at once, the PD fault only after 400 ms */
    for (int i = 0; i < 100 && leader_of(rid) != to; i++)
        usleep(10000);
    ck_assert_uint_eq(leader_of(rid), to);
    json_t *pd = sim_pd_stats_json(PD);
    bool leader_early = json_is_true(json_object_get(pd, "leader"));
    json_decref(pd);
    if (tkc_clock_mono_ms() - t0 < 350)
        ck_assert(leader_early);
    json_t *doc = NULL;
    for (int i = 0; i < 300; i++) {
        json_decref(doc);
        doc = sim_control_stats(C);
        if (jint(json_object_get(doc, "control"), "scenario_ops") == 2)
            break;
        usleep(10000);
    }
    ck_assert_int_ge(tkc_clock_mono_ms() - t0, 400);
    ck_assert_int_eq(jint(json_object_get(doc, "control"), "scenario_ops"), 2);
    ck_assert_int_eq(jint(json_object_get(doc, "control"), "scenario_failed"), 1);
    json_decref(doc);

    /* a malformed file schedules nothing */
    f = fopen(path, "w");
    fprintf(f, "{\"at_ms\": 0, \"op\": \"pause_workload\"}\n{\"op\": \"x\"}\n");
    fclose(f);
    ck_assert_int_eq(sim_control_run_scenario(C, path, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ":2:"));
    unlink(path);
    ck_assert_int_eq(sim_control_run_scenario(C, "/nonexistent/x", err, sizeof(err)), -1);
}
END_TEST

static Suite *sim_control_suite(void)
{
    Suite *s = suite_create("sim_control");
    TCase *tc = tcase_create("control");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_control_http_basics);
    tcase_add_test(tc, test_control_topology_ops);
    tcase_add_test(tc, test_control_restart_store);
    tcase_add_test(tc, test_control_kill_and_move_store);
    tcase_add_test(tc, test_control_cdc_and_workload_ops);
    tcase_add_test(tc, test_control_scenario_file);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(sim_control_suite)
