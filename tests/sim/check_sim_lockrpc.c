/*
 * check_sim_lockrpc.c: KvScanLock / KvCheckTxnStatus / KvResolveLock over
 * real gRPC on loopback.
 *
 * The fixture builds a model with 3 stores and 4 regions and serves the lock
 * RPCs of every store on its own port. Locks are left with the model's own
 * prewrite (a crashed client); the tests then resolve them through the RPCs
 * exactly as a CDC client would (ScanLock on the leader, CheckTxnStatus on
 * the primary, ResolveLock on the region) and check the model afterwards:
 * locks gone, txn status, committed versions.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <grpc/grpc.h>

#include "check_sim_rpc.h"
#include "kvrpcpb.pb-c.h"
#include "sim_lockrpc.h"
#include "sim_model.h"
#include "sim_server.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/mem.h"

#define NSTORES 3

static sim_model_t *M;
static sim_server_t *S[NSTORES];
static sim_lockrpc_t *L[NSTORES];
static grpc_channel *CH[NSTORES];

static void setup(void)
{
    grpc_init();
    sim_model_config_t mc = {.cluster_id = 99, .stores = NSTORES, .regions = 4, .seed = 3,
                             .table_id = 100, .key_count = 100};
    M = sim_model_new(&mc);
    ck_assert_ptr_nonnull(M);
    for (int i = 0; i < NSTORES; i++) {
        S[i] = sim_server_new("store", "127.0.0.1:0");
        L[i] = sim_lockrpc_new(M, (uint64_t)i + 1, S[i]);
        int port = sim_server_start(S[i]);
        ck_assert_int_gt(port, 0);
        CH[i] = crpc_channel(sim_server_addr(S[i]));
    }
}

static void teardown(void)
{
    for (int i = 0; i < NSTORES; i++) {
        grpc_channel_destroy(CH[i]);
        sim_server_destroy(S[i]);
        sim_lockrpc_destroy(L[i]);
    }
    sim_model_destroy(M);
    grpc_shutdown_blocking();
}

/* ===== helpers ===== */

typedef struct {
    uint8_t raw[SIM_KEY_MAX];
    size_t len;
} key_t_;

static key_t_ key_of(int64_t i)
{
    key_t_ k;
    k.len = sim_model_key_raw(M, i, k.raw);
    return k;
}

typedef struct {
    uint64_t id, conf_ver, version, leader_store;
} region_info_t;

static region_info_t region_of_key(const key_t_ *k)
{
    sim_bytes_t enc = sim_key_encode(k->raw, k->len);
    sim_model_lock(M);
    const sim_region_t *r = sim_model_region_by_key_locked(M, enc.data, enc.len);
    region_info_t ri = {r->id, r->conf_ver, r->version, sim_region_leader_store(r)};
    sim_model_unlock(M);
    sim_bytes_free(&enc);
    return ri;
}

typedef struct {
    Kvrpcpb__Context ctx;
    Metapb__RegionEpoch epoch;
} ctx_t;

static void ctx_fill(ctx_t *c, const region_info_t *r)
{
    kvrpcpb__context__init(&c->ctx);
    metapb__region_epoch__init(&c->epoch);
    c->ctx.region_id = r->id;
    c->epoch.conf_ver = r->conf_ver;
    c->epoch.version = r->version;
    c->ctx.region_epoch = &c->epoch;
}

static grpc_channel *leader_channel(const region_info_t *r)
{
    return CH[r->leader_store - 1];
}

static uint8_t *call(grpc_channel *ch, const char *method, const ProtobufCMessage *req,
                     size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = tkc_malloc(n + 1);
    protobuf_c_message_pack(req, buf);
    crpc_result_t r;
    ck_assert_int_eq(crpc_unary(ch, method, buf, n, 5000, &r), GRPC_STATUS_OK);
    tkc_free(buf);
    uint8_t *resp = r.resp;
    *len = r.resp_len;
    r.resp = NULL;
    crpc_result_free(&r);
    return resp;
}

static Kvrpcpb__ScanLockResponse *scan_lock(grpc_channel *ch, const region_info_t *r,
                                            uint64_t max_version, uint32_t limit)
{
    ctx_t c;
    ctx_fill(&c, r);
    Kvrpcpb__ScanLockRequest rq = KVRPCPB__SCAN_LOCK_REQUEST__INIT;
    rq.context = &c.ctx;
    rq.max_version = max_version;
    rq.limit = limit;
    size_t n;
    uint8_t *b = call(ch, "/tikvpb.Tikv/KvScanLock", &rq.base, &n);
    Kvrpcpb__ScanLockResponse *resp = kvrpcpb__scan_lock_response__unpack(NULL, n, b);
    tkc_free(b);
    ck_assert_ptr_nonnull(resp);
    return resp;
}

static Kvrpcpb__CheckTxnStatusResponse *check_txn(const key_t_ *primary, uint64_t lock_ts,
                                                  uint64_t current_ts, bool rollback_if_not_exist)
{
    region_info_t r = region_of_key(primary);
    ctx_t c;
    ctx_fill(&c, &r);
    Kvrpcpb__CheckTxnStatusRequest rq = KVRPCPB__CHECK_TXN_STATUS_REQUEST__INIT;
    rq.context = &c.ctx;
    rq.primary_key.data = (uint8_t *)primary->raw;
    rq.primary_key.len = primary->len;
    rq.lock_ts = lock_ts;
    rq.caller_start_ts = current_ts;
    rq.current_ts = current_ts;
    rq.rollback_if_not_exist = rollback_if_not_exist;
    size_t n;
    uint8_t *b = call(leader_channel(&r), "/tikvpb.Tikv/KvCheckTxnStatus", &rq.base, &n);
    Kvrpcpb__CheckTxnStatusResponse *resp = kvrpcpb__check_txn_status_response__unpack(NULL, n, b);
    tkc_free(b);
    ck_assert_ptr_nonnull(resp);
    return resp;
}

static Kvrpcpb__ResolveLockResponse *resolve(const region_info_t *r, uint64_t start_ts,
                                             uint64_t commit_ts, const key_t_ *only_key)
{
    ctx_t c;
    ctx_fill(&c, r);
    Kvrpcpb__ResolveLockRequest rq = KVRPCPB__RESOLVE_LOCK_REQUEST__INIT;
    rq.context = &c.ctx;
    rq.start_version = start_ts;
    rq.commit_version = commit_ts;
    ProtobufCBinaryData keys[1];
    if (only_key) {
        keys[0].data = (uint8_t *)only_key->raw;
        keys[0].len = only_key->len;
        rq.n_keys = 1;
        rq.keys = keys;
    }
    size_t n;
    uint8_t *b = call(leader_channel(r), "/tikvpb.Tikv/KvResolveLock", &rq.base, &n);
    Kvrpcpb__ResolveLockResponse *resp = kvrpcpb__resolve_lock_response__unpack(NULL, n, b);
    tkc_free(b);
    ck_assert_ptr_nonnull(resp);
    return resp;
}

/* Two keys of the same region and one of another region; prewritten by one
 * txn whose client then "crashes". @returns start_ts. */
static uint64_t leave_locks(key_t_ *k1, key_t_ *k2, key_t_ *k3, uint64_t ttl_ms)
{
    *k1 = key_of(2);
    *k2 = key_of(3);
    *k3 = key_of(90);
    ck_assert_uint_eq(region_of_key(k1).id, region_of_key(k2).id);
    ck_assert_uint_ne(region_of_key(k1).id, region_of_key(k3).id);
    uint64_t start_ts = sim_model_tso(M);
    sim_mutation_t muts[3] = {
        {k1->raw, k1->len, SIM_OP_PUT, (const uint8_t *)"v1", 2},
        {k2->raw, k2->len, SIM_OP_PUT, (const uint8_t *)"v2", 2},
        {k3->raw, k3->len, SIM_OP_DELETE, NULL, 0},
    };
    ck_assert_int_eq(sim_model_prewrite_ex(M, start_ts, muts, 3, k1->raw, k1->len, ttl_ms, NULL,
                                           NULL),
                     SIM_PREWRITE_OK);
    return start_ts;
}

static bool locked(const key_t_ *k)
{
    sim_model_lock(M);
    bool l = sim_model_lock_get_locked(M, k->raw, k->len) != NULL;
    sim_model_unlock(M);
    return l;
}

/* ===== tests ===== */

START_TEST(test_lockrpc_scan_lock)
{
    key_t_ k1, k2, k3;
    uint64_t start_ts = leave_locks(&k1, &k2, &k3, 60000);
    region_info_t r = region_of_key(&k1);

    Kvrpcpb__ScanLockResponse *resp = scan_lock(leader_channel(&r), &r, sim_model_tso(M), 0);
    ck_assert_ptr_null(resp->region_error);
    ck_assert_uint_eq(resp->n_locks, 2);
    /* ascending key order, both of our txn, primary named */
    ck_assert_uint_eq(resp->locks[0]->key.len, k1.len);
    ck_assert_int_eq(memcmp(resp->locks[0]->key.data, k1.raw, k1.len), 0);
    ck_assert_int_eq(memcmp(resp->locks[1]->key.data, k2.raw, k2.len), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_uint_eq(resp->locks[i]->lock_version, start_ts);
        ck_assert_uint_eq(resp->locks[i]->lock_ttl, 60000);
        ck_assert_int_eq(memcmp(resp->locks[i]->primary_lock.data, k1.raw, k1.len), 0);
    }
    kvrpcpb__scan_lock_response__free_unpacked(resp, NULL);

    /* max_version below the lock: nothing; limit 1: one */
    resp = scan_lock(leader_channel(&r), &r, start_ts - 1, 0);
    ck_assert_uint_eq(resp->n_locks, 0);
    kvrpcpb__scan_lock_response__free_unpacked(resp, NULL);
    resp = scan_lock(leader_channel(&r), &r, start_ts, 1);
    ck_assert_uint_eq(resp->n_locks, 1);
    kvrpcpb__scan_lock_response__free_unpacked(resp, NULL);

    /* the delete lock of the other region is found there, as a Del */
    region_info_t r3 = region_of_key(&k3);
    resp = scan_lock(leader_channel(&r3), &r3, start_ts, 0);
    ck_assert_uint_eq(resp->n_locks, 1);
    ck_assert_int_eq(resp->locks[0]->lock_type, KVRPCPB__OP__Del);
    kvrpcpb__scan_lock_response__free_unpacked(resp, NULL);

    /* a follower answers not_leader with the leader's peer */
    int follower = (int)(r.leader_store % NSTORES); /* index of another store */
    resp = scan_lock(CH[follower], &r, start_ts, 0);
    ck_assert_ptr_nonnull(resp->region_error);
    ck_assert_ptr_nonnull(resp->region_error->not_leader);
    ck_assert_uint_eq(resp->region_error->not_leader->region_id, r.id);
    ck_assert_uint_eq(resp->region_error->not_leader->leader->store_id, r.leader_store);
    kvrpcpb__scan_lock_response__free_unpacked(resp, NULL);

    /* a stale epoch: epoch_not_match with the current region */
    region_info_t stale = r;
    stale.version = r.version + 5;
    resp = scan_lock(leader_channel(&r), &stale, start_ts, 0);
    ck_assert_ptr_nonnull(resp->region_error);
    ck_assert_ptr_nonnull(resp->region_error->epoch_not_match);
    ck_assert_uint_eq(resp->region_error->epoch_not_match->n_current_regions, 1);
    ck_assert_uint_eq(resp->region_error->epoch_not_match->current_regions[0]->id, r.id);
    ck_assert_uint_eq(
        resp->region_error->epoch_not_match->current_regions[0]->region_epoch->version,
        r.version);
    kvrpcpb__scan_lock_response__free_unpacked(resp, NULL);

    /* an unknown region */
    region_info_t ghost = {123456789, 1, 1, r.leader_store};
    resp = scan_lock(leader_channel(&r), &ghost, start_ts, 0);
    ck_assert_ptr_nonnull(resp->region_error);
    ck_assert_ptr_nonnull(resp->region_error->region_not_found);
    ck_assert_uint_eq(resp->region_error->region_not_found->region_id, 123456789);
    kvrpcpb__scan_lock_response__free_unpacked(resp, NULL);
}
END_TEST

START_TEST(test_lockrpc_expired_txn_rolled_back)
{
    key_t_ k1, k2, k3;
    uint64_t start_ts = leave_locks(&k1, &k2, &k3, 3000);
    uint64_t now = sim_model_tso(M);

    /* within the TTL: still locked, nothing changes */
    Kvrpcpb__CheckTxnStatusResponse *ct = check_txn(&k1, start_ts, now, false);
    ck_assert_ptr_null(ct->region_error);
    ck_assert_ptr_null(ct->error);
    ck_assert_uint_eq(ct->lock_ttl, 3000);
    ck_assert_uint_eq(ct->commit_version, 0);
    ck_assert_int_eq(ct->action, KVRPCPB__ACTION__NoAction);
    ck_assert_ptr_nonnull(ct->lock_info);
    ck_assert_uint_eq(ct->lock_info->lock_version, start_ts);
    kvrpcpb__check_txn_status_response__free_unpacked(ct, NULL);
    ck_assert(locked(&k1));

    /* the caller's clock past start + TTL: the primary is rolled back */
    uint64_t later = tkc_tso_compose(tkc_tso_physical_ms(start_ts) + 3001, 0);
    ct = check_txn(&k1, start_ts, later, false);
    ck_assert_ptr_null(ct->error);
    ck_assert_uint_eq(ct->lock_ttl, 0);
    ck_assert_uint_eq(ct->commit_version, 0);
    ck_assert_int_eq(ct->action, KVRPCPB__ACTION__TTLExpireRollback);
    kvrpcpb__check_txn_status_response__free_unpacked(ct, NULL);
    ck_assert(!locked(&k1));
    ck_assert(locked(&k2));
    uint64_t cts = 0;
    sim_model_lock(M);
    ck_assert_int_eq(sim_model_txn_status_locked(M, start_ts, &cts), SIM_TXN_ROLLED_BACK);
    sim_model_unlock(M);

    /* asking again: rolled back, no lock, no action */
    ct = check_txn(&k1, start_ts, later, false);
    ck_assert_uint_eq(ct->lock_ttl, 0);
    ck_assert_uint_eq(ct->commit_version, 0);
    ck_assert_ptr_null(ct->error);
    kvrpcpb__check_txn_status_response__free_unpacked(ct, NULL);

    /* the secondaries are resolved per region with commit_version 0 */
    region_info_t r = region_of_key(&k2);
    Kvrpcpb__ResolveLockResponse *rl = resolve(&r, start_ts, 0, NULL);
    ck_assert_ptr_null(rl->region_error);
    ck_assert_ptr_null(rl->error);
    kvrpcpb__resolve_lock_response__free_unpacked(rl, NULL);
    ck_assert(!locked(&k2));
    ck_assert(locked(&k3)); /* another region: not touched */
    region_info_t r3 = region_of_key(&k3);
    rl = resolve(&r3, start_ts, 0, NULL);
    ck_assert_ptr_null(rl->error);
    kvrpcpb__resolve_lock_response__free_unpacked(rl, NULL);
    ck_assert(!locked(&k3));

    /* nothing left for ScanLock, and the region's lock floor is gone */
    Kvrpcpb__ScanLockResponse *sl = scan_lock(leader_channel(&r), &r, sim_model_tso(M), 0);
    ck_assert_uint_eq(sl->n_locks, 0);
    kvrpcpb__scan_lock_response__free_unpacked(sl, NULL);

    /* committing a rolled-back txn is refused with a key error */
    rl = resolve(&r, start_ts, sim_model_tso(M), NULL);
    ck_assert_ptr_nonnull(rl->error);
    ck_assert_str_ne(rl->error->abort, "");
    kvrpcpb__resolve_lock_response__free_unpacked(rl, NULL);

    json_t *js = sim_lockrpc_stats_json(L[r.leader_store - 1]);
    ck_assert_int_ge(json_integer_value(json_object_get(js, "resolve_lock")), 1);
    json_decref(js);
}
END_TEST

START_TEST(test_lockrpc_committed_primary_commits_secondaries)
{
    key_t_ k1, k2, k3;
    uint64_t start_ts = leave_locks(&k1, &k2, &k3, 60000);
    /* the client committed the primary, then died */
    sim_bytes_t pk = {k1.raw, k1.len};
    uint64_t commit_ts = sim_model_commit(M, start_ts, &pk, 1);
    ck_assert_uint_gt(commit_ts, start_ts);

    Kvrpcpb__CheckTxnStatusResponse *ct = check_txn(&k1, start_ts, sim_model_tso(M), true);
    ck_assert_ptr_null(ct->error);
    ck_assert_uint_eq(ct->commit_version, commit_ts);
    ck_assert_uint_eq(ct->lock_ttl, 0);
    kvrpcpb__check_txn_status_response__free_unpacked(ct, NULL);

    /* lite form first: only k2 */
    region_info_t r = region_of_key(&k2);
    Kvrpcpb__ResolveLockResponse *rl = resolve(&r, start_ts, commit_ts, &k2);
    ck_assert_ptr_null(rl->error);
    ck_assert_ptr_null(rl->region_error);
    kvrpcpb__resolve_lock_response__free_unpacked(rl, NULL);
    ck_assert(!locked(&k2));
    ck_assert(locked(&k3));
    /* a key of another region in a lite request is out of that region */
    rl = resolve(&r, start_ts, commit_ts, &k3);
    ck_assert_ptr_nonnull(rl->region_error);
    ck_assert_ptr_nonnull(rl->region_error->key_not_in_region);
    kvrpcpb__resolve_lock_response__free_unpacked(rl, NULL);
    region_info_t r3 = region_of_key(&k3);
    rl = resolve(&r3, start_ts, commit_ts, NULL);
    ck_assert_ptr_null(rl->error);
    kvrpcpb__resolve_lock_response__free_unpacked(rl, NULL);
    ck_assert(!locked(&k3));

    /* the model has the versions at the txn's commit_ts */
    uint64_t got = 0;
    sim_model_lock(M);
    ck_assert_int_eq(sim_model_txn_status_locked(M, start_ts, &got), SIM_TXN_COMMITTED);
    sim_bytes_t old;
    /* k2's value "v2" is visible just after commit_ts, not before */
    ck_assert(sim_model_old_value_locked(M, k2.raw, k2.len, commit_ts + 1, &old));
    ck_assert_uint_eq(old.len, 2);
    ck_assert_int_eq(memcmp(old.data, "v2", 2), 0);
    sim_model_unlock(M);
    ck_assert_uint_eq(got, commit_ts);
}
END_TEST

START_TEST(test_lockrpc_txn_not_found)
{
    key_t_ k = key_of(10);
    uint64_t ghost_ts = sim_model_tso(M);
    Kvrpcpb__CheckTxnStatusResponse *ct = check_txn(&k, ghost_ts, sim_model_tso(M), false);
    ck_assert_ptr_nonnull(ct->error);
    ck_assert_ptr_nonnull(ct->error->txn_not_found);
    ck_assert_uint_eq(ct->error->txn_not_found->start_ts, ghost_ts);
    kvrpcpb__check_txn_status_response__free_unpacked(ct, NULL);

    ct = check_txn(&k, ghost_ts, sim_model_tso(M), true);
    ck_assert_ptr_null(ct->error);
    ck_assert_int_eq(ct->action, KVRPCPB__ACTION__LockNotExistRollback);
    kvrpcpb__check_txn_status_response__free_unpacked(ct, NULL);

    /* the rollback record stops a late prewrite of that txn */
    sim_mutation_t mu = {k.raw, k.len, SIM_OP_PUT, (const uint8_t *)"x", 1};
    ck_assert_int_ne(sim_model_prewrite_ex(M, ghost_ts, &mu, 1, k.raw, k.len, 3000, NULL, NULL),
                     SIM_PREWRITE_OK);
    ck_assert(!locked(&k));
}
END_TEST

static Suite *sim_lockrpc_suite(void)
{
    Suite *s = suite_create("sim_lockrpc");
    TCase *tc = tcase_create("lockrpc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_lockrpc_scan_lock);
    tcase_add_test(tc, test_lockrpc_expired_txn_rolled_back);
    tcase_add_test(tc, test_lockrpc_committed_primary_commits_secondaries);
    tcase_add_test(tc, test_lockrpc_txn_not_found);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(sim_lockrpc_suite)
