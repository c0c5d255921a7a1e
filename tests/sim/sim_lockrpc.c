/*
 * sim_lockrpc.c: KvScanLock / KvCheckTxnStatus / KvResolveLock of one store
 * (see sim_lockrpc.h for the behaviour).
 *
 * Every handler decodes its request, takes the model lock, checks the region
 * named in the Context against this store (leader here, epoch, key range),
 * and either packs the answer under the lock (ScanLock: the LockInfos borrow
 * the model's bytes) or, for the mutating RPCs, decides under the lock and
 * then calls the model's own mutators (sim_model_rollback,
 * sim_model_resolve_lock_range), which take the lock themselves and report the
 * ROLLBACK / COMMIT rows to the CDC observer like any other change.
 *
 * Counters are atomics: they are only read by /stats.
 */
#include "sim_lockrpc.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "errorpb.pb-c.h"
#include "kvrpcpb.pb-c.h"
#include "metapb.pb-c.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

struct sim_lockrpc_s {
    sim_model_t *m;
    uint64_t store_id;
    sim_server_t *srv;
    atomic_uint_fast64_t scan_lock, locks_returned, check_txn_status, resolve_lock,
        locks_resolved, region_errors, key_errors, ttl_expire_rollbacks,
        not_exist_rollbacks;
};

/* ===== region check ===== */

typedef struct {
    Errorpb__Error err;
    Errorpb__NotLeader not_leader;
    Errorpb__RegionNotFound not_found;
    Errorpb__EpochNotMatch epoch;
    Errorpb__KeyNotInRegion key_range;
    Metapb__Region region;
    Metapb__RegionEpoch region_epoch;
    Metapb__Peer peers[SIM_PEERS];
    Metapb__Peer *peer_ptrs[SIM_PEERS];
    Metapb__Region *region_ptrs[1];
    char msg[160];
} region_err_t;

static void fill_region(region_err_t *e, const sim_region_t *r)
{
    metapb__region__init(&e->region);
    metapb__region_epoch__init(&e->region_epoch);
    e->region_epoch.conf_ver = r->conf_ver;
    e->region_epoch.version = r->version;
    e->region.id = r->id;
    e->region.start_key.data = r->start.data;
    e->region.start_key.len = r->start.len;
    e->region.end_key.data = r->end.data;
    e->region.end_key.len = r->end.len;
    e->region.region_epoch = &e->region_epoch;
    for (int i = 0; i < SIM_PEERS; i++) {
        metapb__peer__init(&e->peers[i]);
        e->peers[i].id = r->peers[i].id;
        e->peers[i].store_id = r->peers[i].store_id;
        e->peer_ptrs[i] = &e->peers[i];
    }
    e->region.n_peers = SIM_PEERS;
    e->region.peers = e->peer_ptrs;
}

/*
 * The checks TiKV's raftstore makes before a KV command runs. Model lock
 * held. @returns the region, or NULL with @p e filled (borrows model bytes:
 * pack before unlocking).
 */
static const sim_region_t *region_check_locked(sim_lockrpc_t *lr, const Kvrpcpb__Context *ctx,
                                               region_err_t *e)
{
    errorpb__error__init(&e->err);
    uint64_t region_id = ctx ? ctx->region_id : 0;
    const sim_region_t *r = sim_model_region_by_id_locked(lr->m, region_id);
    bool has_peer = false;
    if (r)
        for (int i = 0; i < SIM_PEERS; i++)
            has_peer |= r->peers[i].store_id == lr->store_id;
    if (!r || !has_peer) {
        errorpb__region_not_found__init(&e->not_found);
        e->not_found.region_id = region_id;
        snprintf(e->msg, sizeof(e->msg), "region %" PRIu64 " is missing", region_id);
        e->err.message = e->msg;
        e->err.region_not_found = &e->not_found;
        return NULL;
    }
    if (sim_region_leader_store(r) != lr->store_id) {
        fill_region(e, r);
        errorpb__not_leader__init(&e->not_leader);
        e->not_leader.region_id = region_id;
        e->not_leader.leader = &e->peers[r->leader];
        snprintf(e->msg, sizeof(e->msg), "peer is not leader for region %" PRIu64, region_id);
        e->err.message = e->msg;
        e->err.not_leader = &e->not_leader;
        return NULL;
    }
    /* A missing epoch compares as 0/0, i.e. stale, exactly as in TiKV. */
    uint64_t conf_ver = ctx->region_epoch ? ctx->region_epoch->conf_ver : 0;
    uint64_t version = ctx->region_epoch ? ctx->region_epoch->version : 0;
    if (conf_ver != r->conf_ver || version != r->version) {
        fill_region(e, r);
        errorpb__epoch_not_match__init(&e->epoch);
        e->region_ptrs[0] = &e->region;
        e->epoch.n_current_regions = 1;
        e->epoch.current_regions = e->region_ptrs;
        snprintf(e->msg, sizeof(e->msg),
                 "epoch not match for region %" PRIu64 ": current %" PRIu64 "/%" PRIu64
                 ", request %" PRIu64 "/%" PRIu64,
                 region_id, r->conf_ver, r->version, conf_ver, version);
        e->err.message = e->msg;
        e->err.epoch_not_match = &e->epoch;
        return NULL;
    }
    return r;
}

/* Encoded key of a raw key inside region r? Fills key_not_in_region if not. */
static bool key_in_region(const sim_region_t *r, const uint8_t *raw, size_t len,
                          region_err_t *e)
{
    sim_bytes_t enc = sim_key_encode(raw, len);
    bool in = sim_bytes_cmp(enc.data, enc.len, r->start.data, r->start.len) >= 0 &&
              (r->end.len == 0 || sim_bytes_cmp(enc.data, enc.len, r->end.data, r->end.len) < 0);
    sim_bytes_free(&enc);
    if (!in) {
        errorpb__error__init(&e->err);
        errorpb__key_not_in_region__init(&e->key_range);
        e->key_range.key.data = (uint8_t *)raw;
        e->key_range.key.len = len;
        e->key_range.region_id = r->id;
        e->key_range.start_key.data = r->start.data;
        e->key_range.start_key.len = r->start.len;
        e->key_range.end_key.data = r->end.data;
        e->key_range.end_key.len = r->end.len;
        snprintf(e->msg, sizeof(e->msg), "key is not in region %" PRIu64, r->id);
        e->err.message = e->msg;
        e->err.key_not_in_region = &e->key_range;
    }
    return in;
}

static void pack_message(const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    *out = tkc_malloc(*len ? *len : 1);
    protobuf_c_message_pack(msg, *out);
}

static grpc_status_code decode_error(char **details)
{
    *details = tkc_strdup("cannot decode request");
    return GRPC_STATUS_INTERNAL;
}

/* Copies src into dst as encoded bytes, or dst empty if raw is empty. */
static sim_bytes_t encode_or_empty(const uint8_t *raw, size_t len)
{
    if (len == 0)
        return (sim_bytes_t){NULL, 0};
    return sim_key_encode(raw, len);
}

/* max of two encoded start keys (empty = -inf) */
static const sim_bytes_t *max_start(const sim_bytes_t *a, const sim_bytes_t *b)
{
    if (a->len == 0)
        return b;
    if (b->len == 0)
        return a;
    return sim_bytes_cmp(a->data, a->len, b->data, b->len) >= 0 ? a : b;
}

/* min of two encoded end keys (empty = +inf) */
static const sim_bytes_t *min_end(const sim_bytes_t *a, const sim_bytes_t *b)
{
    if (a->len == 0)
        return b;
    if (b->len == 0)
        return a;
    return sim_bytes_cmp(a->data, a->len, b->data, b->len) <= 0 ? a : b;
}

static void lock_info_fill(Kvrpcpb__LockInfo *li, const sim_bytes_t *key, const sim_lock_t *lk)
{
    kvrpcpb__lock_info__init(li);
    li->primary_lock.data = lk->primary.data;
    li->primary_lock.len = lk->primary.len;
    li->lock_version = lk->start_ts;
    li->key.data = key->data;
    li->key.len = key->len;
    li->lock_ttl = lk->ttl_ms;
    li->txn_size = 1;
    li->lock_type = lk->op == SIM_OP_DELETE ? KVRPCPB__OP__Del : KVRPCPB__OP__Put;
    li->min_commit_ts = lk->start_ts + 1;
}

/* ===== KvScanLock ===== */

typedef struct {
    uint64_t max_version;
    size_t limit; /* 0 = none */
    Kvrpcpb__LockInfo *infos;
    Kvrpcpb__LockInfo **ptrs;
    size_t n, cap;
} scan_acc_t;

static void scan_lock_cb(void *opaque, const sim_bytes_t *raw_key, const sim_lock_t *lock,
                         const sim_version_t *versions, size_t n_versions)
{
    scan_acc_t *a = opaque;
    if (!lock || lock->start_ts > a->max_version)
        return;
    if (a->limit && a->n >= a->limit)
        return;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->infos = tkc_realloc(a->infos, a->cap * sizeof(*a->infos));
    }
    /* the key pointer stays valid: the model lock is held until packing */
    lock_info_fill(&a->infos[a->n++], raw_key, lock);
}

static grpc_status_code kv_scan_lock(void *opaque, sim_call_t *call, const uint8_t *req,
                                     size_t len, uint8_t **resp, size_t *resp_len,
                                     char **details)
{
    sim_lockrpc_t *lr = opaque;
    Kvrpcpb__ScanLockRequest *rq = kvrpcpb__scan_lock_request__unpack(NULL, len, req);
    if (!rq)
        return decode_error(details);
    atomic_fetch_add(&lr->scan_lock, 1);
    Kvrpcpb__ScanLockResponse out = KVRPCPB__SCAN_LOCK_RESPONSE__INIT;
    region_err_t e;
    scan_acc_t a = {.max_version = rq->max_version, .limit = rq->limit};
    sim_bytes_t want_start = encode_or_empty(rq->start_key.data, rq->start_key.len);
    sim_bytes_t want_end = encode_or_empty(rq->end_key.data, rq->end_key.len);

    sim_model_lock(lr->m);
    const sim_region_t *r = region_check_locked(lr, rq->context, &e);
    if (!r) {
        atomic_fetch_add(&lr->region_errors, 1);
        out.region_error = &e.err;
    } else {
        const sim_bytes_t *start = max_start(&want_start, &r->start);
        const sim_bytes_t *end = min_end(&want_end, &r->end);
        bool empty = end->len > 0 &&
                     sim_bytes_cmp(start->data, start->len, end->data, end->len) >= 0;
        if (!empty)
            sim_model_scan_locked(lr->m, start, end, scan_lock_cb, &a);
        a.ptrs = tkc_calloc(a.n + 1, sizeof(*a.ptrs));
        for (size_t i = 0; i < a.n; i++)
            a.ptrs[i] = &a.infos[i];
        out.n_locks = a.n;
        out.locks = a.ptrs;
        atomic_fetch_add(&lr->locks_returned, a.n);
    }
    pack_message(&out.base, resp, resp_len);
    sim_model_unlock(lr->m);

    tkc_free(a.infos);
    tkc_free(a.ptrs);
    sim_bytes_free(&want_start);
    sim_bytes_free(&want_end);
    kvrpcpb__scan_lock_request__free_unpacked(rq, NULL);
    return GRPC_STATUS_OK;
}

/* ===== KvCheckTxnStatus ===== */

typedef enum { CTS_REGION_ERROR, CTS_LOCKED, CTS_EXPIRED, CTS_COMMITTED, CTS_ROLLED_BACK,
               CTS_NOT_EXIST_ROLLBACK, CTS_NOT_FOUND } cts_outcome_t;

static grpc_status_code kv_check_txn_status(void *opaque, sim_call_t *call, const uint8_t *req,
                                            size_t len, uint8_t **resp, size_t *resp_len,
                                            char **details)
{
    sim_lockrpc_t *lr = opaque;
    Kvrpcpb__CheckTxnStatusRequest *rq = kvrpcpb__check_txn_status_request__unpack(NULL, len, req);
    if (!rq)
        return decode_error(details);
    atomic_fetch_add(&lr->check_txn_status, 1);
    const uint8_t *pk = rq->primary_key.data;
    size_t pk_len = rq->primary_key.len;
    uint64_t lock_ts = rq->lock_ts;

    Kvrpcpb__CheckTxnStatusResponse out = KVRPCPB__CHECK_TXN_STATUS_RESPONSE__INIT;
    Kvrpcpb__LockInfo li;
    Kvrpcpb__KeyError ke = KVRPCPB__KEY_ERROR__INIT;
    Kvrpcpb__TxnNotFound tnf = KVRPCPB__TXN_NOT_FOUND__INIT;
    region_err_t e;
    cts_outcome_t outcome;
    uint64_t commit_ts = 0;

    sim_model_lock(lr->m);
    const sim_region_t *r = region_check_locked(lr, rq->context, &e);
    if (r && !key_in_region(r, pk, pk_len, &e))
        r = NULL;
    if (!r) {
        outcome = CTS_REGION_ERROR;
    } else {
        const sim_lock_t *lk = sim_model_lock_get_locked(lr->m, pk, pk_len);
        if (lk && lk->start_ts == lock_ts) {
            /* TiKV: a lock is expired when its start physical time plus TTL
             * is not after the caller's current_ts physical time. */
            uint64_t expire_ms = (uint64_t)tkc_tso_physical_ms(lk->start_ts) + lk->ttl_ms;
            if ((uint64_t)tkc_tso_physical_ms(rq->current_ts) >= expire_ms) {
                outcome = CTS_EXPIRED;
            } else {
                outcome = CTS_LOCKED;
                sim_bytes_t key = {(uint8_t *)pk, pk_len};
                lock_info_fill(&li, &key, lk);
                out.lock_ttl = lk->ttl_ms;
                out.lock_info = &li;
                out.action = KVRPCPB__ACTION__NoAction;
            }
        } else {
            sim_txn_state_t st = sim_model_txn_status_locked(lr->m, lock_ts, &commit_ts);
            if (st == SIM_TXN_COMMITTED)
                outcome = CTS_COMMITTED;
            else if (st == SIM_TXN_ROLLED_BACK)
                outcome = CTS_ROLLED_BACK;
            else if (rq->rollback_if_not_exist)
                outcome = CTS_NOT_EXIST_ROLLBACK;
            else
                outcome = CTS_NOT_FOUND;
        }
    }
    if (outcome == CTS_REGION_ERROR || outcome == CTS_LOCKED) {
        if (outcome == CTS_REGION_ERROR) {
            atomic_fetch_add(&lr->region_errors, 1);
            out.region_error = &e.err;
        }
        pack_message(&out.base, resp, resp_len);
        sim_model_unlock(lr->m);
        kvrpcpb__check_txn_status_request__free_unpacked(rq, NULL);
        return GRPC_STATUS_OK;
    }
    sim_model_unlock(lr->m);

    /* The mutating outcomes call the model's own mutators, which take the
     * lock and report the ROLLBACK rows to the CDC observer. */
    sim_bytes_t key = {(uint8_t *)pk, pk_len};
    switch (outcome) {
    case CTS_EXPIRED:
        /* Like TiKV, only the primary is rolled back here; the client then
         * resolves the secondaries with ResolveLock(commit_version = 0). */
        sim_model_rollback(lr->m, lock_ts, &key, 1);
        atomic_fetch_add(&lr->ttl_expire_rollbacks, 1);
        out.action = KVRPCPB__ACTION__TTLExpireRollback;
        break;
    case CTS_COMMITTED:
        out.commit_version = commit_ts;
        break;
    case CTS_ROLLED_BACK:
        break;
    case CTS_NOT_EXIST_ROLLBACK:
        /* writes a rollback record so a late prewrite of it is refused */
        sim_model_rollback(lr->m, lock_ts, &key, 1);
        atomic_fetch_add(&lr->not_exist_rollbacks, 1);
        out.action = KVRPCPB__ACTION__LockNotExistRollback;
        break;
    case CTS_NOT_FOUND:
        tnf.start_ts = lock_ts;
        tnf.primary_key = rq->primary_key;
        ke.txn_not_found = &tnf;
        out.error = &ke;
        atomic_fetch_add(&lr->key_errors, 1);
        break;
    default:
        break;
    }
    pack_message(&out.base, resp, resp_len);
    kvrpcpb__check_txn_status_request__free_unpacked(rq, NULL);
    return GRPC_STATUS_OK;
}

/* ===== KvResolveLock ===== */

static grpc_status_code kv_resolve_lock(void *opaque, sim_call_t *call, const uint8_t *req,
                                        size_t len, uint8_t **resp, size_t *resp_len,
                                        char **details)
{
    sim_lockrpc_t *lr = opaque;
    Kvrpcpb__ResolveLockRequest *rq = kvrpcpb__resolve_lock_request__unpack(NULL, len, req);
    if (!rq)
        return decode_error(details);
    atomic_fetch_add(&lr->resolve_lock, 1);
    Kvrpcpb__ResolveLockResponse out = KVRPCPB__RESOLVE_LOCK_RESPONSE__INIT;
    Kvrpcpb__KeyError ke = KVRPCPB__KEY_ERROR__INIT;
    region_err_t e;
    char abort_msg[160];

    /* Snapshot the region range under the lock, then resolve without it:
     * the model's resolver takes the lock itself. A concurrent split only
     * narrows what a real TiKV would have resolved in this request too. */
    sim_bytes_t rstart = {NULL, 0}, rend = {NULL, 0};
    sim_model_lock(lr->m);
    const sim_region_t *r = region_check_locked(lr, rq->context, &e);
    for (size_t i = 0; r && i < rq->n_keys; i++)
        if (!key_in_region(r, rq->keys[i].data, rq->keys[i].len, &e))
            r = NULL;
    if (!r) {
        atomic_fetch_add(&lr->region_errors, 1);
        out.region_error = &e.err;
        pack_message(&out.base, resp, resp_len);
        sim_model_unlock(lr->m);
        kvrpcpb__resolve_lock_request__free_unpacked(rq, NULL);
        return GRPC_STATUS_OK;
    }
    rstart.len = r->start.len;
    rstart.data = tkc_memdup(r->start.data, r->start.len);
    rend.len = r->end.len;
    rend.data = tkc_memdup(r->end.data, r->end.len);
    sim_model_unlock(lr->m);

    int failed = 0;
    uint64_t failed_ts = 0;
    int resolved = 0;
    if (rq->n_txn_infos > 0) {
        /* batch form: every txn with its final status (0 = rolled back) */
        for (size_t i = 0; i < rq->n_txn_infos; i++) {
            int n = sim_model_resolve_lock_range(lr->m, rq->txn_infos[i]->txn,
                                                 rq->txn_infos[i]->status, &rstart, &rend);
            if (n < 0 && !failed) {
                failed = 1;
                failed_ts = rq->txn_infos[i]->txn;
            } else if (n > 0) {
                resolved += n;
            }
        }
    } else if (rq->n_keys > 0) {
        /* "lite" form: only the listed keys, each as its own point range */
        for (size_t i = 0; i < rq->n_keys; i++) {
            sim_bytes_t ks = sim_key_encode(rq->keys[i].data, rq->keys[i].len);
            sim_bytes_t ke_end;
            ke_end.len = ks.len + 1;
            ke_end.data = tkc_malloc(ke_end.len);
            memcpy(ke_end.data, ks.data, ks.len);
            ke_end.data[ks.len] = 0; /* the smallest key above ks */
            int n = sim_model_resolve_lock_range(lr->m, rq->start_version, rq->commit_version,
                                                 &ks, &ke_end);
            if (n < 0 && !failed) {
                failed = 1;
                failed_ts = rq->start_version;
            } else if (n > 0) {
                resolved += n;
            }
            sim_bytes_free(&ks);
            sim_bytes_free(&ke_end);
        }
    } else {
        int n = sim_model_resolve_lock_range(lr->m, rq->start_version, rq->commit_version,
                                             &rstart, &rend);
        if (n < 0) {
            failed = 1;
            failed_ts = rq->start_version;
        } else {
            resolved += n;
        }
    }
    atomic_fetch_add(&lr->locks_resolved, (uint64_t)resolved);
    if (failed) {
        snprintf(abort_msg, sizeof(abort_msg),
                 "txn %" PRIu64 " cannot be resolved that way (already %s)", failed_ts,
                 rq->commit_version ? "rolled back or committed elsewhere" : "committed");
        ke.abort = abort_msg;
        out.error = &ke;
        atomic_fetch_add(&lr->key_errors, 1);
    }
    pack_message(&out.base, resp, resp_len);
    sim_bytes_free(&rstart);
    sim_bytes_free(&rend);
    kvrpcpb__resolve_lock_request__free_unpacked(rq, NULL);
    return GRPC_STATUS_OK;
}

/* ===== public API ===== */

sim_lockrpc_t *sim_lockrpc_new(sim_model_t *m, uint64_t store_id, sim_server_t *srv)
{
    sim_lockrpc_t *lr = tkc_calloc(1, sizeof(*lr));
    lr->m = m;
    lr->store_id = store_id;
    lr->srv = srv;
    sim_server_add_unary(srv, "/tikvpb.Tikv/KvScanLock", kv_scan_lock, lr);
    sim_server_add_unary(srv, "/tikvpb.Tikv/KvCheckTxnStatus", kv_check_txn_status, lr);
    sim_server_add_unary(srv, "/tikvpb.Tikv/KvResolveLock", kv_resolve_lock, lr);
    return lr;
}

void sim_lockrpc_destroy(sim_lockrpc_t *lr)
{
    tkc_free(lr);
}

json_t *sim_lockrpc_stats_json(sim_lockrpc_t *lr)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "scan_lock",
                     (json_int_t)atomic_load(&lr->scan_lock), "locks_returned",
                     (json_int_t)atomic_load(&lr->locks_returned), "check_txn_status",
                     (json_int_t)atomic_load(&lr->check_txn_status), "ttl_expire_rollbacks",
                     (json_int_t)atomic_load(&lr->ttl_expire_rollbacks), "not_exist_rollbacks",
                     (json_int_t)atomic_load(&lr->not_exist_rollbacks), "resolve_lock",
                     (json_int_t)atomic_load(&lr->resolve_lock), "locks_resolved",
                     (json_int_t)atomic_load(&lr->locks_resolved), "region_errors",
                     (json_int_t)atomic_load(&lr->region_errors), "key_errors",
                     (json_int_t)atomic_load(&lr->key_errors));
}
