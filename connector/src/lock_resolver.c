/*
 * lock_resolver.c: ScanLock -> CheckTxnStatus -> ResolveLock for one region
 * (tikv-cdc-protocol.md §5.5; the steps client-go's lock resolver takes for
 * TiCDC, written from the protocol notes).
 *
 * Why per region and not per key: TiKV's KvResolveLock without keys resolves
 * every lock of the transaction inside the region named by its Context, so
 * one call per (transaction, region) is enough, and the feed asks per stuck
 * region anyway.
 *
 * Keys: KvScanLock / KvCheckTxnStatus take RAW keys; PD region boundaries are
 * ENCODED, so the region's bounds are decoded before scanning and the
 * primary key is encoded before asking PD which region holds it.
 *
 * A live lock (CheckTxnStatus answers a non-zero lock_ttl) is never touched:
 * its transaction may still commit, and resolved ts rightly waits for it.
 * Only locks whose TTL ran out (TiKV rolls the primary back) or whose
 * primary is already decided are resolved.
 *
 * Thread: one owner thread; blocking calls, each bounded by timeout_ms.
 */
#include "lock_resolver.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kvrpcpb.pb-c.h"
#include "metapb.pb-c.h"
#include "util/keycodec.h"
#include "util/log.h"
#include "util/mem.h"

#define LR_DEFAULT_TIMEOUT_MS 5000
#define LR_DEFAULT_SCAN_LIMIT 1024
#define LR_MAX_REGION_RETRIES 3
#define LR_MAX_CHANNELS 64
#define LR_MAX_TXNS 256

typedef struct lr_chan_s {
    char addr[128];
    grpc_channel *ch;
} lr_chan_t;

/* The decision about one transaction during one resolution. */
typedef struct lr_txn_s {
    uint64_t start_ts;
    uint64_t commit_ts; /* 0: rolled back */
    bool alive;
    bool resolved; /* ResolveLock sent in the region being scanned */
} lr_txn_t;

struct tkc_lock_resolver_s {
    tkc_pd_client_t *pd;
    tkc_lock_resolver_config_t cfg;
    char *tls_ca, *tls_cert, *tls_key;
    lr_chan_t chans[LR_MAX_CHANNELS];
    size_t n_chans;
};

tkc_lock_resolver_t *tkc_lock_resolver_new(tkc_pd_client_t *pd,
                                           const tkc_lock_resolver_config_t *cfg)
{
    tkc_lock_resolver_t *lr = tkc_calloc(1, sizeof(*lr));
    lr->pd = pd;
    if (cfg)
        lr->cfg = *cfg;
    if (lr->cfg.timeout_ms <= 0)
        lr->cfg.timeout_ms = LR_DEFAULT_TIMEOUT_MS;
    if (lr->cfg.scan_limit == 0)
        lr->cfg.scan_limit = LR_DEFAULT_SCAN_LIMIT;
    lr->tls_ca = lr->cfg.tls.ca_path ? tkc_strdup(lr->cfg.tls.ca_path) : NULL;
    lr->tls_cert = lr->cfg.tls.cert_path ? tkc_strdup(lr->cfg.tls.cert_path) : NULL;
    lr->tls_key = lr->cfg.tls.key_path ? tkc_strdup(lr->cfg.tls.key_path) : NULL;
    lr->cfg.tls.ca_path = lr->tls_ca;
    lr->cfg.tls.cert_path = lr->tls_cert;
    lr->cfg.tls.key_path = lr->tls_key;
    return lr;
}

void tkc_lock_resolver_destroy(tkc_lock_resolver_t *lr)
{
    if (!lr)
        return;
    for (size_t i = 0; i < lr->n_chans; i++)
        grpc_channel_destroy(lr->chans[i].ch);
    tkc_free(lr->tls_ca);
    tkc_free(lr->tls_cert);
    tkc_free(lr->tls_key);
    tkc_free(lr);
}

/* A channel per store address, kept for the resolver's lifetime. */
static grpc_channel *channel_for(tkc_lock_resolver_t *lr, const char *addr, char *errstr,
                                 size_t errstr_size)
{
    for (size_t i = 0; i < lr->n_chans; i++)
        if (strcmp(lr->chans[i].addr, addr) == 0)
            return lr->chans[i].ch;
    grpc_channel *ch = tkc_rpc_channel_new(addr, &lr->cfg.tls, &lr->cfg.chan_opts, errstr,
                                           errstr_size);
    if (!ch)
        return NULL;
    if (lr->n_chans == LR_MAX_CHANNELS) {
        /* more stores than slots: recycle the oldest */
        grpc_channel_destroy(lr->chans[0].ch);
        memmove(&lr->chans[0], &lr->chans[1], (LR_MAX_CHANNELS - 1) * sizeof(lr->chans[0]));
        lr->n_chans--;
    }
    snprintf(lr->chans[lr->n_chans].addr, sizeof(lr->chans[0].addr), "%s", addr);
    lr->chans[lr->n_chans++].ch = ch;
    return ch;
}

/* Where to send a request for region @p r: its leader's store. */
static grpc_channel *leader_channel(tkc_lock_resolver_t *lr, const tkc_pd_region_t *r,
                                    bool reload, char *errstr, size_t errstr_size)
{
    tkc_pd_store_t store;
    if (r->leader_store_id == 0) {
        snprintf(errstr, errstr_size, "region %" PRIu64 " has no leader", r->id);
        return NULL;
    }
    if (tkc_pd_client_get_store(lr->pd, r->leader_store_id, reload, &store, errstr,
                                errstr_size) != TKC_ERR_OK)
        return NULL;
    return channel_for(lr, store.address, errstr, errstr_size);
}

typedef struct lr_ctx_s {
    Kvrpcpb__Context ctx;
    Metapb__RegionEpoch epoch;
    Metapb__Peer peer;
} lr_ctx_t;

static void ctx_init(lr_ctx_t *c, const tkc_pd_region_t *r)
{
    kvrpcpb__context__init(&c->ctx);
    metapb__region_epoch__init(&c->epoch);
    metapb__peer__init(&c->peer);
    c->epoch.conf_ver = r->conf_ver;
    c->epoch.version = r->version;
    c->peer.id = r->leader_peer_id;
    c->peer.store_id = r->leader_store_id;
    c->ctx.region_id = r->id;
    c->ctx.region_epoch = &c->epoch;
    c->ctx.peer = &c->peer;
}

static tkc_err_t status_err(const tkc_rpc_status_t *st)
{
    return st->status == GRPC_STATUS_DEADLINE_EXCEEDED ? TKC_ERR_TIMED_OUT : TKC_ERR_TRANSPORT;
}

/* Decodes an encoded region bound into a raw key (empty stays empty). */
static bool decode_bound(const uint8_t *enc, size_t len, uint8_t **raw, size_t *raw_len)
{
    *raw = NULL;
    *raw_len = 0;
    if (len == 0)
        return true;
    *raw = tkc_malloc(len);
    if (tkc_keycodec_decode(enc, len, *raw, raw_len) != 0) {
        tkc_free(*raw);
        *raw = NULL;
        return false;
    }
    return true;
}

/*
 * The status of the transaction whose primary key is @p primary, locked at
 * @p lock_ts: fills @p t. TiKV rolls the primary back itself when its TTL
 * has run out against current_ts.
 */
static tkc_err_t check_txn(tkc_lock_resolver_t *lr, const uint8_t *primary, size_t primary_len,
                           uint64_t lock_ts, lr_txn_t *t, tkc_lock_resolver_result_t *res,
                           char *errstr, size_t errstr_size)
{
    size_t elen = tkc_keycodec_encoded_len(primary_len);
    uint8_t *enc = tkc_malloc(elen);
    tkc_keycodec_encode(primary, primary_len, enc);
    tkc_err_t err = TKC_ERR_REGION_STALE;
    for (int attempt = 0; attempt < LR_MAX_REGION_RETRIES; attempt++) {
        tkc_pd_region_t *rs = NULL;
        size_t n = 0;
        err = tkc_pd_client_scan_regions(lr->pd, enc, elen, NULL, 0, 1, &rs, &n);
        if (err != TKC_ERR_OK) {
            snprintf(errstr, errstr_size, "PD ScanRegions for a primary key failed");
            break;
        }
        if (n == 0 || tkc_keycodec_cmp(rs[0].start_key, rs[0].start_len, enc, elen) > 0) {
            tkc_pd_regions_free(rs, n);
            snprintf(errstr, errstr_size, "no region with a leader holds the primary key");
            err = TKC_ERR_REGION_STALE;
            continue;
        }
        grpc_channel *ch = leader_channel(lr, &rs[0], attempt > 0, errstr, errstr_size);
        if (!ch) {
            tkc_pd_regions_free(rs, n);
            err = TKC_ERR_TRANSPORT;
            break;
        }
        uint64_t now_ts = 0;
        if ((err = tkc_pd_client_get_ts(lr->pd, &now_ts)) != TKC_ERR_OK) {
            tkc_pd_regions_free(rs, n);
            snprintf(errstr, errstr_size, "PD TSO failed");
            break;
        }
        lr_ctx_t c;
        ctx_init(&c, &rs[0]);
        Kvrpcpb__CheckTxnStatusRequest req = KVRPCPB__CHECK_TXN_STATUS_REQUEST__INIT;
        req.context = &c.ctx;
        req.primary_key.data = (uint8_t *)primary;
        req.primary_key.len = primary_len;
        req.lock_ts = lock_ts;
        req.current_ts = now_ts;
        /* A primary with no lock and no record: the client crashed before
         * writing it; roll back so the secondaries can be cleaned up. */
        req.rollback_if_not_exist = 1;
        Kvrpcpb__CheckTxnStatusResponse *resp = NULL;
        tkc_rpc_status_t st;
        res->txns_checked++;
        tkc_rpc_unary(ch, TKC_RPC_KV_CHECK_TXN_STATUS, &req.base,
                      &kvrpcpb__check_txn_status_response__descriptor, lr->cfg.timeout_ms,
                      (ProtobufCMessage **)&resp, &st);
        tkc_pd_regions_free(rs, n);
        if (!resp) {
            snprintf(errstr, errstr_size, "KvCheckTxnStatus: %s %s",
                     tkc_rpc_status_name(st.status), st.details);
            err = status_err(&st);
            continue;
        }
        if (resp->region_error) {
            res->region_errors++;
            kvrpcpb__check_txn_status_response__free_unpacked(resp, NULL);
            snprintf(errstr, errstr_size, "KvCheckTxnStatus: region error");
            err = TKC_ERR_REGION_STALE;
            continue;
        }
        if (resp->error) {
            snprintf(errstr, errstr_size, "KvCheckTxnStatus: key error for txn %" PRIu64,
                     lock_ts);
            kvrpcpb__check_txn_status_response__free_unpacked(resp, NULL);
            err = TKC_ERR_CORRUPT;
            break;
        }
        t->start_ts = lock_ts;
        t->alive = resp->lock_ttl != 0;
        t->commit_ts = resp->commit_version;
        kvrpcpb__check_txn_status_response__free_unpacked(resp, NULL);
        err = TKC_ERR_OK;
        break;
    }
    tkc_free(enc);
    return err;
}

static tkc_err_t resolve_in_region(tkc_lock_resolver_t *lr, grpc_channel *ch,
                                   const tkc_pd_region_t *r, const lr_txn_t *t, char *errstr,
                                   size_t errstr_size)
{
    lr_ctx_t c;
    ctx_init(&c, r);
    Kvrpcpb__ResolveLockRequest req = KVRPCPB__RESOLVE_LOCK_REQUEST__INIT;
    req.context = &c.ctx;
    req.start_version = t->start_ts;
    req.commit_version = t->commit_ts;
    Kvrpcpb__ResolveLockResponse *resp = NULL;
    tkc_rpc_status_t st;
    tkc_rpc_unary(ch, TKC_RPC_KV_RESOLVE_LOCK, &req.base,
                  &kvrpcpb__resolve_lock_response__descriptor, lr->cfg.timeout_ms,
                  (ProtobufCMessage **)&resp, &st);
    if (!resp) {
        snprintf(errstr, errstr_size, "KvResolveLock: %s %s", tkc_rpc_status_name(st.status),
                 st.details);
        return status_err(&st);
    }
    tkc_err_t err = TKC_ERR_OK;
    if (resp->region_error) {
        snprintf(errstr, errstr_size, "KvResolveLock: region error");
        err = TKC_ERR_REGION_STALE;
    } else if (resp->error) {
        snprintf(errstr, errstr_size, "KvResolveLock: key error for txn %" PRIu64, t->start_ts);
        err = TKC_ERR_CORRUPT;
    }
    kvrpcpb__resolve_lock_response__free_unpacked(resp, NULL);
    return err;
}

static lr_txn_t *txn_find(lr_txn_t *txns, size_t n, uint64_t start_ts)
{
    for (size_t i = 0; i < n; i++)
        if (txns[i].start_ts == start_ts)
            return &txns[i];
    return NULL;
}

tkc_err_t tkc_lock_resolver_resolve_region(tkc_lock_resolver_t *lr, uint64_t region_id,
                                           uint64_t max_version, tkc_lock_resolver_result_t *res,
                                           char *errstr, size_t errstr_size)
{
    tkc_lock_resolver_result_t dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof(*res));
    char scratch[1];
    if (!errstr) {
        errstr = scratch;
        errstr_size = sizeof(scratch);
    }
    errstr[0] = '\0';

    tkc_pd_region_t r;
    memset(&r, 0, sizeof(r));
    uint8_t *cursor = NULL, *raw_end = NULL;
    size_t cursor_len = 0, raw_end_len = 0;
    lr_txn_t *txns = tkc_calloc(LR_MAX_TXNS, sizeof(*txns));
    size_t n_txns = 0;
    tkc_err_t err = TKC_ERR_OK;
    int region_retries = 0;
    bool have_region = false, reload_store = false;

    for (;;) {
        if (!have_region) {
            err = tkc_pd_client_get_region_by_id(lr->pd, region_id, &r);
            if (err == TKC_ERR_NOT_FOUND) {
                err = TKC_ERR_OK; /* merged away: nothing to pin any more */
                goto out;
            }
            if (err != TKC_ERR_OK) {
                snprintf(errstr, errstr_size, "PD GetRegionByID(%" PRIu64 ") failed", region_id);
                goto out;
            }
            have_region = true;
            /* Scan from the later of the cursor and the (possibly shrunk)
             * region start; what moved out of the region is another
             * region's business. */
            uint8_t *rs_raw;
            size_t rs_len;
            tkc_free(raw_end);
            if (!decode_bound(r.start_key, r.start_len, &rs_raw, &rs_len) ||
                !decode_bound(r.end_key, r.end_len, &raw_end, &raw_end_len)) {
                tkc_free(rs_raw);
                snprintf(errstr, errstr_size, "region %" PRIu64 " has undecodable bounds",
                         region_id);
                err = TKC_ERR_CORRUPT;
                goto out;
            }
            if (!cursor || tkc_keycodec_cmp(rs_raw, rs_len, cursor, cursor_len) > 0) {
                tkc_free(cursor);
                cursor = rs_raw;
                cursor_len = rs_len;
            } else {
                tkc_free(rs_raw);
            }
        }
        grpc_channel *ch = leader_channel(lr, &r, reload_store, errstr, errstr_size);
        if (!ch) {
            err = TKC_ERR_TRANSPORT;
            goto out;
        }
        lr_ctx_t c;
        ctx_init(&c, &r);
        Kvrpcpb__ScanLockRequest req = KVRPCPB__SCAN_LOCK_REQUEST__INIT;
        req.context = &c.ctx;
        req.max_version = max_version;
        req.start_key.data = cursor;
        req.start_key.len = cursor_len;
        req.end_key.data = raw_end;
        req.end_key.len = raw_end_len;
        req.limit = lr->cfg.scan_limit;
        Kvrpcpb__ScanLockResponse *resp = NULL;
        tkc_rpc_status_t st;
        res->pages++;
        tkc_rpc_unary(ch, TKC_RPC_KV_SCAN_LOCK, &req.base, &kvrpcpb__scan_lock_response__descriptor,
                      lr->cfg.timeout_ms, (ProtobufCMessage **)&resp, &st);
        if (!resp) {
            snprintf(errstr, errstr_size, "KvScanLock: %s %s", tkc_rpc_status_name(st.status),
                     st.details);
            err = status_err(&st);
            if (++region_retries >= LR_MAX_REGION_RETRIES)
                goto out;
            reload_store = true; /* the address may have changed */
            continue;
        }
        if (resp->region_error) {
            res->region_errors++;
            kvrpcpb__scan_lock_response__free_unpacked(resp, NULL);
            if (++region_retries >= LR_MAX_REGION_RETRIES) {
                snprintf(errstr, errstr_size, "KvScanLock: region errors persisted");
                err = TKC_ERR_REGION_STALE;
                goto out;
            }
            tkc_pd_region_free(&r);
            have_region = false;
            continue;
        }
        if (resp->error) {
            kvrpcpb__scan_lock_response__free_unpacked(resp, NULL);
            snprintf(errstr, errstr_size, "KvScanLock: key error");
            err = TKC_ERR_CORRUPT;
            goto out;
        }
        region_retries = 0;
        reload_store = false;
        for (size_t i = 0; i < resp->n_locks; i++) {
            const Kvrpcpb__LockInfo *l = resp->locks[i];
            res->locks_scanned++;
            lr_txn_t *t = txn_find(txns, n_txns, l->lock_version);
            if (!t) {
                if (n_txns == LR_MAX_TXNS)
                    continue; /* the next run takes the rest */
                lr_txn_t fresh = {0};
                const uint8_t *primary = l->primary_lock.len ? l->primary_lock.data : l->key.data;
                size_t plen = l->primary_lock.len ? l->primary_lock.len : l->key.len;
                err = check_txn(lr, primary, plen, l->lock_version, &fresh, res, errstr,
                                errstr_size);
                if (err != TKC_ERR_OK) {
                    kvrpcpb__scan_lock_response__free_unpacked(resp, NULL);
                    goto out;
                }
                txns[n_txns] = fresh;
                t = &txns[n_txns++];
                if (t->alive)
                    res->txns_alive++;
            }
            if (t->alive || t->resolved)
                continue;
            err = resolve_in_region(lr, ch, &r, t, errstr, errstr_size);
            if (err != TKC_ERR_OK) {
                kvrpcpb__scan_lock_response__free_unpacked(resp, NULL);
                goto out;
            }
            t->resolved = true;
            if (t->commit_ts)
                res->txns_committed++;
            else
                res->txns_rolled_back++;
        }
        bool more = resp->n_locks >= lr->cfg.scan_limit && resp->n_locks > 0;
        if (more) {
            /* next page: just after the last key seen */
            const Kvrpcpb__LockInfo *last = resp->locks[resp->n_locks - 1];
            tkc_free(cursor);
            cursor_len = last->key.len + 1;
            cursor = tkc_malloc(cursor_len);
            memcpy(cursor, last->key.data, last->key.len);
            cursor[last->key.len] = 0;
        }
        kvrpcpb__scan_lock_response__free_unpacked(resp, NULL);
        if (!more)
            break;
    }
out:
    if (have_region)
        tkc_pd_region_free(&r);
    tkc_free(cursor);
    tkc_free(raw_end);
    tkc_free(txns);
    if (err != TKC_ERR_OK)
        tkc_log(TKC_LOG_WARN, "lock_resolver",
                "event=resolve_failed region_id=%" PRIu64 " err=%s reason=\"%s\"", region_id,
                tkc_err2name(err), errstr);
    return err;
}
