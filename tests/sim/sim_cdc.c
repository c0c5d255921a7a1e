/*
 * sim_cdc.c: tikv-sim's cdcpb.ChangeData service (see sim_cdc.h for the
 * behaviour it imitates and tikv-cdc-protocol.md §3 for why).
 *
 * DESIGN
 *
 * State. Everything here (stores, connections = calls, subscriptions = one
 * registration each, the region -> subscriptions index, queued output) is
 * protected by the MODEL lock. That is forced by the model: it reports every
 * change to our observer while holding its lock, in apply order, and a
 * registration must snapshot the model (incremental scan) and become visible
 * to live changes atomically, which is only possible under that same lock.
 *
 * Threads. Each store server has one thread that runs our stream handlers and
 * our tick; it is the only thread that touches its calls (sim_call_send,
 * finish, abort, stall) and it never does so while holding the model lock.
 * The observer (any mutating thread) and the fault functions (control
 * thread) only append to per-connection output queues or set flags; the tick
 * detaches the queues under the lock and packs + sends them outside it. A
 * call's memory is released by on_release on that same thread, so a call
 * pointer read by the tick is valid for the whole tick.
 *
 * Output. Queueing, packing and sending live in sim_cdc_out.c: rows are
 * copied into per-connection output items under the lock and packed and sent
 * by the store's thread outside it, in order, so whatever was queued for a
 * subscription before its error or before a resolved ts reaches the client
 * first.
 *
 * Invariants.
 *  - A subscription is in its region's list iff it is alive; its error event
 *    is the last thing queued for it (it is dropped right after).
 *  - Resolved ts never moves backwards per subscription, is only produced for
 *    NORMAL (initialized) subscriptions, and is computed under the model lock
 *    from a TSO taken there: every later commit allocates its commit_ts from
 *    the same TSO under the same lock, so it is strictly greater (see
 *    cdc_store_resolved_round for the full argument).
 */
#include "sim_cdc.h"
#include "sim_cdc_int.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdcpb.pb-c.h"
#include "errorpb.pb-c.h"
#include "metapb.pb-c.h"

#include "util/clock.h"
#include "util/keycodec.h"
#include "util/log.h"
#include "util/mem.h"

static const char FEATURE_MULTIPLEXING[] = "stream-multiplexing";

/* ===== helpers ===== */

static store_t *cdc_store(sim_cdc_t *cdc, uint64_t store_id)
{
    for (size_t i = 0; i < cdc->n_stores; i++)
        if (cdc->stores[i]->store_id == store_id)
            return cdc->stores[i];
    return NULL;
}

/* Strict semver MAJOR.MINOR.PATCH[-pre][+build], as TiKV's semver crate
 * wants it ("v8.5.0" does not parse there either). */
static bool semver_parse(const char *s, unsigned v[3])
{
    if (s == NULL)
        return false;
    for (int i = 0; i < 3; i++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned long x = 0;
        while (*s >= '0' && *s <= '9') {
            x = x * 10 + (unsigned long)(*s - '0');
            if (x > 1000000)
                return false;
            s++;
        }
        v[i] = (unsigned)x;
        if (i < 2) {
            if (*s != '.')
                return false;
            s++;
        }
    }
    return *s == '\0' || *s == '-' || *s == '+';
}

static bool semver_ge(const unsigned v[3], unsigned a, unsigned b, unsigned c)
{
    if (v[0] != a)
        return v[0] > a;
    if (v[1] != b)
        return v[1] > b;
    return v[2] >= c;
}

static inline bool sub_covers(const sub_t *s, const uint8_t *key, size_t len)
{
    if (tkc_keycodec_cmp(key, len, s->raw_start.data, s->raw_start.len) < 0)
        return false;
    return s->end_inf || tkc_keycodec_cmp(key, len, s->raw_end.data, s->raw_end.len) < 0;
}

/* metapb.Region of a model region, in caller storage. */
typedef struct {
    Metapb__Region r;
    Metapb__RegionEpoch e;
    Metapb__Peer p[SIM_PEERS];
    Metapb__Peer *pp[SIM_PEERS];
} region_pb_t;

static void region_pb_fill(region_pb_t *o, const sim_region_t *r)
{
    metapb__region__init(&o->r);
    metapb__region_epoch__init(&o->e);
    o->r.id = r->id;
    o->r.start_key.data = r->start.data;
    o->r.start_key.len = r->start.len;
    o->r.end_key.data = r->end.data;
    o->r.end_key.len = r->end.len;
    o->e.conf_ver = r->conf_ver;
    o->e.version = r->version;
    o->r.region_epoch = &o->e;
    for (int i = 0; i < SIM_PEERS; i++) {
        metapb__peer__init(&o->p[i]);
        o->p[i].id = r->peers[i].id;
        o->p[i].store_id = r->peers[i].store_id;
        o->pp[i] = &o->p[i];
    }
    o->r.n_peers = SIM_PEERS;
    o->r.peers = o->pp;
}

/* ===== subscriptions (model lock held) ===== */

static uint64_t sub_key_req(const sim_cdc_t *cdc, uint64_t request_id)
{
    /* Before TiKV 7.3 a connection keyed registrations by region alone. */
    return cdc->cfg.pre_7_3 ? 0 : request_id;
}

static void scan_free(scan_t *sc)
{
    if (!sc)
        return;
    cdc_arena_free(&sc->arena);
    tkc_free(sc->rows);
    tkc_free(sc);
}

static void fifo_remove(store_t *st, sub_t *s)
{
    if (!s->in_fifo)
        return;
    if (s->f_prev)
        s->f_prev->f_next = s->f_next;
    else
        st->fifo_head = s->f_next;
    if (s->f_next)
        s->f_next->f_prev = s->f_prev;
    else
        st->fifo_tail = s->f_prev;
    s->f_prev = s->f_next = NULL;
    s->in_fifo = false;
    st->n_scanning--;
}

static void fifo_push(store_t *st, sub_t *s)
{
    s->f_next = NULL;
    s->f_prev = st->fifo_tail;
    if (st->fifo_tail)
        st->fifo_tail->f_next = s;
    else
        st->fifo_head = s;
    st->fifo_tail = s;
    s->in_fifo = true;
    st->n_scanning++;
}

static void sub_free_ranges(sub_t *s);

/* Unlinks and frees a subscription; nothing more is ever queued for it. */
static void sub_drop(sub_t *s)
{
    conn_t *c = s->conn;
    store_t *st = c->st;
    sim_cdc_t *cdc = st->cdc;

    rsubs_t *rs = cdc_map_get(&cdc->regions, s->region_id, 0);
    if (s->r_prev)
        s->r_prev->r_next = s->r_next;
    else if (rs)
        rs->head = s->r_next;
    if (s->r_next)
        s->r_next->r_prev = s->r_prev;
    if (rs && rs->head == NULL) {
        cdc_map_del(&cdc->regions, s->region_id, 0);
        tkc_free(rs);
    }

    cdc_map_del(&c->subs, sub_key_req(cdc, s->request_id), s->region_id);
    if (s->c_prev)
        s->c_prev->c_next = s->c_next;
    else
        c->subs_head = s->c_next;
    if (s->c_next)
        s->c_next->c_prev = s->c_prev;
    c->n_subs--;

    fifo_remove(st, s);
    scan_free(s->scan);
    sub_free_ranges(s);
    st->stats.registrations_active--;
    tkc_free(s);
}

/* Queues an error event for @p s, then drops it (errors are the last thing
 * a registration sees). */
static void sub_fail(sub_t *s, Cdcpb__Error *err, errkind_t kind)
{
    cdc_conn_queue_error(s->conn, s->region_id, s->request_id, err, kind);
    sub_drop(s);
}

static void sub_fail_region_not_found(sub_t *s)
{
    Cdcpb__Error err = CDCPB__ERROR__INIT;
    Errorpb__RegionNotFound rnf = ERRORPB__REGION_NOT_FOUND__INIT;
    rnf.region_id = s->region_id;
    err.region_not_found = &rnf;
    sub_fail(s, &err, ERR_REGION_NOT_FOUND);
}

static void sub_fail_congested(sub_t *s)
{
    Cdcpb__Error err = CDCPB__ERROR__INIT;
    Cdcpb__Congested cg = CDCPB__CONGESTED__INIT;
    cg.region_id = s->region_id;
    err.congested = &cg;
    sub_fail(s, &err, ERR_CONGESTED);
}

/* Drops every registration of @p c and all its queued output. */
static void conn_kill(conn_t *c)
{
    while (c->subs_head)
        sub_drop(c->subs_head);
    cdc_conn_drop_outs(c);
    c->dead = true;
}

/* ===== the observer (model lock held by the model) ===== */

static void observe_row(sim_cdc_t *cdc, const sim_event_t *ev)
{
    rsubs_t *rs = cdc_map_get(&cdc->regions, ev->region_id, 0);
    if (rs == NULL)
        return;

    rowspec_t r = {0};
    r.key = ev->key->data;
    r.klen = ev->key->len;
    r.start_ts = ev->start_ts;
    r.op = ev->op == SIM_OP_DELETE ? CDCPB__EVENT__ROW__OP_TYPE__DELETE
                                   : CDCPB__EVENT__ROW__OP_TYPE__PUT;
    const sim_bytes_t *val = ev->value, *old = ev->old_value;
    switch (ev->kind) {
    case SIM_EV_PREWRITE:
        r.type = CDCPB__EVENT__LOG_TYPE__PREWRITE;
        break;
    case SIM_EV_COMMIT:
        /* TiKV: a COMMIT carries no old value (take it from the PREWRITE)
         * and its value only when the write record holds a short value. */
        r.type = CDCPB__EVENT__LOG_TYPE__COMMIT;
        r.commit_ts = ev->commit_ts;
        old = NULL;
        if (val && val->len > SHORT_VALUE_MAX)
            val = NULL;
        break;
    case SIM_EV_ROLLBACK:
        r.type = CDCPB__EVENT__LOG_TYPE__ROLLBACK;
        r.op = CDCPB__EVENT__ROW__OP_TYPE__UNKNOWN;
        val = old = NULL;
        break;
    case SIM_EV_COMMITTED:
        r.type = CDCPB__EVENT__LOG_TYPE__COMMITTED;
        r.commit_ts = ev->commit_ts;
        break;
    default:
        return;
    }
    if (val) {
        r.val = val->data;
        r.vlen = val->len;
    }
    if (old) {
        r.old = old->data;
        r.olen = old->len;
    }

    for (sub_t *s = rs->head, *next; s; s = next) {
        next = s->r_next;
        if (!sub_covers(s, r.key, r.klen))
            continue;
        store_t *st = s->conn->st;
        /* TiKV's sink memory quota is shared by all connections of the store;
         * when a live event cannot be buffered the region's subscription is
         * dropped with Congested (§3.7, §3.9). */
        if (st->buffered > st->cdc->cfg.sink_memory_quota) {
            sub_fail_congested(s);
            continue;
        }
        cdc_sub_queue_row(s, &r);
    }
}

static void fail_region_subs(sim_cdc_t *cdc, uint64_t region_id, Cdcpb__Error *err,
                             errkind_t kind, uint64_t keep_store)
{
    rsubs_t *rs = cdc_map_get(&cdc->regions, region_id, 0);
    if (rs == NULL)
        return;
    sub_t *s = rs->head;
    while (s) {
        /* rs is freed when its last sub is dropped: read next first */
        sub_t *next = s->r_next;
        if (keep_store == 0 || s->conn->st->store_id != keep_store) {
            if (err->not_leader)
                err->not_leader->region_id = region_id;
            sub_fail(s, err, kind);
        }
        s = next;
    }
}

static void cdc_observe(void *opaque, const sim_event_t *ev)
{
    sim_cdc_t *cdc = opaque;
    switch (ev->kind) {
    case SIM_EV_PREWRITE:
    case SIM_EV_COMMIT:
    case SIM_EV_ROLLBACK:
    case SIM_EV_COMMITTED:
        observe_row(cdc, ev);
        break;
    case SIM_EV_SPLIT: {
        /* admin BatchSplit: every subscription of the parent learns both
         * halves through epoch_not_match and is dropped */
        region_pb_t l, r;
        region_pb_fill(&l, ev->region);
        region_pb_fill(&r, ev->region2);
        Metapb__Region *regs[2] = {&l.r, &r.r};
        Errorpb__EpochNotMatch enm = ERRORPB__EPOCH_NOT_MATCH__INIT;
        enm.n_current_regions = 2;
        enm.current_regions = regs;
        Cdcpb__Error err = CDCPB__ERROR__INIT;
        err.epoch_not_match = &enm;
        fail_region_subs(cdc, ev->region->id, &err, ERR_EPOCH_NOT_MATCH, 0);
        break;
    }
    case SIM_EV_MERGE: {
        /* PrepareMerge / CommitMerge: epoch_not_match with no regions to
         * both source and target */
        Errorpb__EpochNotMatch enm = ERRORPB__EPOCH_NOT_MATCH__INIT;
        Cdcpb__Error err = CDCPB__ERROR__INIT;
        err.epoch_not_match = &enm;
        fail_region_subs(cdc, ev->region2_id, &err, ERR_EPOCH_NOT_MATCH, 0);
        fail_region_subs(cdc, ev->region->id, &err, ERR_EPOCH_NOT_MATCH, 0);
        break;
    }
    case SIM_EV_LEADER: {
        const sim_region_t *rg = ev->region;
        Metapb__Peer leader = METAPB__PEER__INIT;
        leader.id = rg->peers[rg->leader].id;
        leader.store_id = rg->peers[rg->leader].store_id;
        Errorpb__NotLeader nl = ERRORPB__NOT_LEADER__INIT;
        nl.leader = &leader;
        Cdcpb__Error err = CDCPB__ERROR__INIT;
        err.not_leader = &nl;
        fail_region_subs(cdc, rg->id, &err, ERR_NOT_LEADER, leader.store_id);
        break;
    }
    default:
        break;
    }
}

/* ===== registration (model lock held) ===== */

typedef struct {
    scan_t *sc;
    uint64_t checkpoint_ts;
} scan_ctx_t;

static void scan_push(scan_t *sc, const rowspec_t *r)
{
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? sc->cap * 2 : 16;
        sc->rows = tkc_realloc(sc->rows, sc->cap * sizeof(*sc->rows));
    }
    rowspec_t *d = &sc->rows[sc->n++];
    *d = *r;
    size_t total = r->klen + r->vlen + r->olen;
    uint8_t *p = total ? cdc_arena_alloc(&sc->arena, total) : NULL;
    if (r->klen) {
        memcpy(p, r->key, r->klen);
        d->key = p;
        p += r->klen;
    }
    if (r->vlen) {
        memcpy(p, r->val, r->vlen);
        d->val = p;
        p += r->vlen;
    }
    if (r->olen) {
        memcpy(p, r->old, r->olen);
        d->old = p;
    }
}

/* Delta scan of one key over (checkpoint_ts, +inf), as TiKV's
 * DeltaEntryPolicy: the lock first (PREWRITE, with the old value visible at
 * its start_ts), then COMMITTED rows for the versions newest first (write CF
 * order), each with the previous version's value as old value. The model
 * applies GC for real, so a version GC removed is simply not there. */
static void scan_cb(void *opaque, const sim_bytes_t *key, const sim_lock_t *lock,
                    const sim_version_t *v, size_t n)
{
    scan_ctx_t *ctx = opaque;

    if (lock && (lock->op == SIM_OP_PUT || lock->op == SIM_OP_DELETE)) {
        rowspec_t r = {0};
        r.type = CDCPB__EVENT__LOG_TYPE__PREWRITE;
        r.op = lock->op == SIM_OP_DELETE ? CDCPB__EVENT__ROW__OP_TYPE__DELETE
                                         : CDCPB__EVENT__ROW__OP_TYPE__PUT;
        r.key = key->data;
        r.klen = key->len;
        r.start_ts = lock->start_ts;
        if (lock->op == SIM_OP_PUT) {
            r.val = lock->value.data;
            r.vlen = lock->value.len;
        }
        for (size_t i = 0; i < n; i++) {
            if (v[i].commit_ts >= lock->start_ts)
                continue;
            if (v[i].op == SIM_OP_PUT) {
                r.old = v[i].value.data;
                r.olen = v[i].value.len;
            }
            break;
        }
        scan_push(ctx->sc, &r);
    }

    for (size_t i = 0; i < n; i++) {
        if (v[i].commit_ts <= ctx->checkpoint_ts)
            break; /* newest first: the rest is older still */
        rowspec_t r = {0};
        r.type = CDCPB__EVENT__LOG_TYPE__COMMITTED;
        r.op = v[i].op == SIM_OP_DELETE ? CDCPB__EVENT__ROW__OP_TYPE__DELETE
                                        : CDCPB__EVENT__ROW__OP_TYPE__PUT;
        r.key = key->data;
        r.klen = key->len;
        r.start_ts = v[i].start_ts;
        r.commit_ts = v[i].commit_ts;
        if (v[i].op == SIM_OP_PUT) {
            r.val = v[i].value.data;
            r.vlen = v[i].value.len;
        }
        if (i + 1 < n && v[i + 1].op == SIM_OP_PUT) {
            r.old = v[i + 1].value.data;
            r.olen = v[i + 1].value.len;
        }
        scan_push(ctx->sc, &r);
    }
}

/* Consumes one injected fault for @p region_id; fills @p backoff_ms. */
static bool fault_hit(fault_t **list, uint64_t region_id, uint64_t *backoff_ms)
{
    fault_t **best = NULL;
    for (fault_t **p = list; *p; p = &(*p)->next) {
        if ((*p)->region_id == region_id) {
            best = p;
            break;
        }
        if ((*p)->region_id == 0 && best == NULL)
            best = p;
    }
    if (best == NULL)
        return false;
    fault_t *f = *best;
    if (backoff_ms)
        *backoff_ms = f->backoff_ms;
    if (--f->count <= 0) {
        *best = f->next;
        tkc_free(f);
    }
    return true;
}

/* Decodes @p enc (len > 0) into a fresh buffer; @returns 0 or -1. */
static int decode_dup(const uint8_t *enc, size_t len, sim_bytes_t *out)
{
    uint8_t *buf = tkc_malloc(len / 9 * 8 + 1);
    size_t n = 0;
    if (tkc_keycodec_decode(enc, len, buf, &n) != 0) {
        tkc_free(buf);
        return -1;
    }
    out->data = buf;
    out->len = n;
    return 0;
}

static void sub_set_range(sub_t *s, const sim_region_t *rg, const Cdcpb__ChangeDataRequest *req)
{
    /* TiKV decodes the requested (encoded) keys; if either does not decode it
     * logs and observes the whole region (§3.2). */
    const uint8_t *rs = req->start_key.data, *re = req->end_key.data;
    size_t rsl = req->start_key.len, rel = req->end_key.len;
    if ((rsl && tkc_keycodec_decode(rs, rsl, NULL, NULL) != 0) ||
        (rel && tkc_keycodec_decode(re, rel, NULL, NULL) != 0)) {
        tkc_log(TKC_LOG_WARN, LOG_COMP,
                "event=invalid_observed_range region_id=%" PRIu64 " request_id=%" PRIu64,
                s->region_id, s->request_id);
        rsl = rel = 0;
    }

    /* clip to the region in encoded space (empty start = -inf, end = +inf) */
    const uint8_t *cs = rs, *ce = re;
    size_t csl = rsl, cel = rel;
    if (tkc_keycodec_cmp(rg->start.data, rg->start.len, cs, csl) > 0) {
        cs = rg->start.data;
        csl = rg->start.len;
    }
    if (rg->end.len && (cel == 0 || tkc_keycodec_cmp(rg->end.data, rg->end.len, ce, cel) < 0)) {
        ce = rg->end.data;
        cel = rg->end.len;
    }
    s->enc_start.data = csl ? tkc_memdup(cs, csl) : NULL;
    s->enc_start.len = csl;
    s->enc_end.data = cel ? tkc_memdup(ce, cel) : NULL;
    s->enc_end.len = cel;

    /* raw bounds filter live rows (raw and encoded orders agree); a region
     * boundary that is not a valid encoding cannot occur, but would leave
     * that side open rather than drop rows */
    s->end_inf = true;
    if (csl && decode_dup(cs, csl, &s->raw_start) != 0)
        s->raw_start = (sim_bytes_t){0};
    if (cel && decode_dup(ce, cel, &s->raw_end) == 0)
        s->end_inf = false;
}

static void sub_free_ranges(sub_t *s)
{
    tkc_free(s->enc_start.data);
    tkc_free(s->enc_end.data);
    tkc_free(s->raw_start.data);
    tkc_free(s->raw_end.data);
}

static void conn_reject(conn_t *c, const Cdcpb__ChangeDataRequest *req, Cdcpb__Error *err,
                        errkind_t kind)
{
    cdc_conn_queue_error(c, req->region_id, req->request_id, err, kind);
}

static void conn_register(conn_t *c, const Cdcpb__ChangeDataRequest *req, uint64_t gc_sp)
{
    store_t *st = c->st;
    sim_cdc_t *cdc = st->cdc;
    sim_model_t *m = cdc->m;
    Cdcpb__Error err = CDCPB__ERROR__INIT;
    uint64_t region_id = req->region_id;

    st->stats.register_requests++;

    /* 2. cluster id, for clients >= 5.3.0 */
    uint64_t req_cluster = req->header ? req->header->cluster_id : 0;
    if (c->check_cluster && req_cluster != cdc->cluster_id) {
        Cdcpb__ClusterIDMismatch cm = CDCPB__CLUSTER_IDMISMATCH__INIT;
        cm.current = cdc->cluster_id;
        cm.request = req_cluster;
        err.cluster_id_mismatch = &cm;
        conn_reject(c, req, &err, ERR_CLUSTER_ID_MISMATCH);
        return;
    }
    /* 3. kv_api: TiDB only (TxnKV never, RawKV needs api v2; we run v1) */
    if (req->kv_api != CDCPB__CHANGE_DATA_REQUEST__KV_API__TiDB) {
        Cdcpb__Compatibility cp = CDCPB__COMPATIBILITY__INIT;
        cp.required_version = "6.2.0";
        err.compatibility = &cp;
        conn_reject(c, req, &err, ERR_COMPATIBILITY);
        return;
    }
    /* 4. busy: injected, or too many pending incremental scans */
    uint64_t backoff = 0;
    if (fault_hit(&st->busy, region_id, &backoff) ||
        st->n_scanning >= (size_t)cdc->cfg.scan_concurrency_limit) {
        Errorpb__ServerIsBusy sb = ERRORPB__SERVER_IS_BUSY__INIT;
        sb.reason = "too many pending incremental scans";
        sb.backoff_ms = backoff;
        err.server_is_busy = &sb;
        conn_reject(c, req, &err, ERR_SERVER_IS_BUSY);
        return;
    }
    /* 5. the region must have its leader peer here */
    const sim_region_t *rg = sim_model_region_by_id_locked(m, region_id);
    bool has_peer = false;
    if (rg)
        for (int i = 0; i < SIM_PEERS; i++)
            if (rg->peers[i].store_id == st->store_id)
                has_peer = true;
    if (rg == NULL || !has_peer) {
        Errorpb__RegionNotFound rnf = ERRORPB__REGION_NOT_FOUND__INIT;
        rnf.region_id = region_id;
        err.region_not_found = &rnf;
        conn_reject(c, req, &err, ERR_REGION_NOT_FOUND);
        return;
    }
    if (sim_region_leader_store(rg) != st->store_id) {
        Metapb__Peer leader = METAPB__PEER__INIT;
        leader.id = rg->peers[rg->leader].id;
        leader.store_id = rg->peers[rg->leader].store_id;
        Errorpb__NotLeader nl = ERRORPB__NOT_LEADER__INIT;
        nl.region_id = region_id;
        nl.leader = &leader;
        err.not_leader = &nl;
        conn_reject(c, req, &err, ERR_NOT_LEADER);
        return;
    }
    /* 6. duplicate registration on this connection */
    uint64_t kreq = sub_key_req(cdc, req->request_id);
    sub_t *alive = cdc_map_get(&c->subs, kreq, region_id);
    if (alive) {
        Cdcpb__DuplicateRequest dr = CDCPB__DUPLICATE_REQUEST__INIT;
        dr.region_id = region_id;
        err.duplicate_request = &dr;
        conn_reject(c, req, &err, ERR_DUPLICATE_REQUEST);
        alive->slot_seq = 0; /* its later rows go after the error */
        return;
    }
    /* 7. epoch: version part only (compare_region_epoch, check_conf_ver off) */
    uint64_t want_ver = req->region_epoch ? req->region_epoch->version : 0;
    if (want_ver != rg->version) {
        region_pb_t cur;
        region_pb_fill(&cur, rg);
        Metapb__Region *regs[1] = {&cur.r};
        Errorpb__EpochNotMatch enm = ERRORPB__EPOCH_NOT_MATCH__INIT;
        enm.n_current_regions = 1;
        enm.current_regions = regs;
        err.epoch_not_match = &enm;
        conn_reject(c, req, &err, ERR_EPOCH_NOT_MATCH);
        return;
    }
    /* 8. congested: injected, or the store's sink memory quota is used up */
    if (fault_hit(&st->congested, region_id, NULL) ||
        st->buffered > cdc->cfg.sink_memory_quota) {
        Cdcpb__Congested cg = CDCPB__CONGESTED__INIT;
        cg.region_id = region_id;
        err.congested = &cg;
        conn_reject(c, req, &err, ERR_CONGESTED);
        return;
    }

    if (gc_sp && req->checkpoint_ts < gc_sp) {
        /* Not checked by TiKV either: the scan below just cannot see what GC
         * removed (see sim_cdc.h). Counted so tests can tell. */
        st->stats.gc_unsafe_registrations++;
        tkc_log(TKC_LOG_WARN, LOG_COMP,
                "event=checkpoint_below_gc_safepoint store_id=%" PRIu64 " region_id=%" PRIu64
                " checkpoint_ts=%" PRIu64 " gc_safepoint=%" PRIu64,
                st->store_id, region_id, req->checkpoint_ts, gc_sp);
    }

    sub_t *s = tkc_calloc(1, sizeof(*s));
    s->conn = c;
    s->region_id = region_id;
    s->request_id = req->request_id;
    s->checkpoint_ts = req->checkpoint_ts;
    s->state = SUB_INITIALIZING;
    sub_set_range(s, rg, req);

    /* Snapshot + incremental scan, under the same lock hold that makes the
     * subscription visible to live events: nothing is missed or doubled. */
    s->scan = tkc_calloc(1, sizeof(*s->scan));
    scan_ctx_t ctx = {.sc = s->scan, .checkpoint_ts = req->checkpoint_ts};
    bool empty = (s->enc_end.len && tkc_keycodec_cmp(s->enc_start.data, s->enc_start.len,
                                              s->enc_end.data, s->enc_end.len) >= 0);
    if (!empty)
        sim_model_scan_locked(m, &s->enc_start, &s->enc_end, scan_cb, &ctx);

    cdc_map_put(&c->subs, kreq, region_id, s);
    s->c_next = c->subs_head;
    if (c->subs_head)
        c->subs_head->c_prev = s;
    c->subs_head = s;
    c->n_subs++;

    rsubs_t *rs = cdc_map_get(&cdc->regions, region_id, 0);
    if (rs == NULL) {
        rs = tkc_calloc(1, sizeof(*rs));
        cdc_map_put(&cdc->regions, region_id, 0, rs);
    }
    s->r_next = rs->head;
    if (rs->head)
        rs->head->r_prev = s;
    rs->head = s;

    fifo_push(st, s);
    st->stats.registrations++;
    st->stats.registrations_active++;
    atomic_store_explicit(&st->dirty, true, memory_order_relaxed);
}

static void conn_deregister(conn_t *c, const Cdcpb__ChangeDataRequest *req)
{
    sim_cdc_t *cdc = c->st->cdc;
    if (req->region_id != 0) {
        sub_t *s = cdc_map_get(&c->subs, sub_key_req(cdc, req->request_id), req->region_id);
        if (s && s->request_id == req->request_id) {
            c->st->stats.deregistrations++;
            sub_fail_region_not_found(s);
        }
        return;
    }
    for (sub_t *s = c->subs_head, *next; s; s = next) {
        next = s->c_next;
        if (s->request_id == req->request_id) {
            c->st->stats.deregistrations++;
            sub_fail_region_not_found(s);
        }
    }
}

/* Fixes the connection's features from its first request (§3.11). */
static void conn_set_features(conn_t *c, const Cdcpb__ChangeDataRequest *req)
{
    const char *ver = (req->header && req->header->ticdc_version) ? req->header->ticdc_version : "";
    unsigned v[3] = {0, 0, 0};
    if (!semver_parse(ver, v)) {
        v[0] = v[1] = v[2] = 0;
        tkc_log(TKC_LOG_WARN, LOG_COMP,
                "event=invalid_ticdc_version store_id=%" PRIu64 " call=%" PRIu64 " version=\"%s\"",
                c->st->store_id, c->id, ver);
    }
    c->batch_resolved = semver_ge(v, 4, 0, 8);
    c->check_cluster = semver_ge(v, 5, 3, 0);
    c->version = tkc_strdup(ver);
    c->features_set = true;
}

/* ===== tick work (model lock held) ===== */

/* Releases incremental-scan output: rows_per_tick rows per store per tick,
 * FIFO over the registrations (INITIALIZED counts as one row). */
void cdc_store_scan_progress(store_t *st)
{
    int budget = st->cdc->cfg.incremental_scan_rows_per_tick;
    while (budget > 0 && st->fifo_head) {
        sub_t *s = st->fifo_head;
        scan_t *sc = s->scan;
        while (budget > 0 && sc->pos < sc->n) {
            cdc_sub_queue_row(s, &sc->rows[sc->pos++]);
            budget--;
        }
        if (sc->pos < sc->n)
            break;
        if (budget <= 0)
            break;
        rowspec_t init = {0};
        init.type = CDCPB__EVENT__LOG_TYPE__INITIALIZED;
        cdc_sub_queue_row(s, &init);
        budget--;
        scan_free(sc);
        s->scan = NULL;
        s->state = SUB_NORMAL;
        fifo_remove(st, s);
    }
}

static int rts_cmp(const void *pa, const void *pb)
{
    const rts_ent_t *a = pa, *b = pb;
    if (a->request_id != b->request_id)
        return a->request_id < b->request_id ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->region_id != b->region_id)
        return a->region_id < b->region_id ? -1 : 1;
    return 0;
}

static bool region_stalled(sim_cdc_t *cdc, uint64_t region_id, int64_t now)
{
    if (cdc->stalls.n == 0)
        return false;
    void *v = cdc_map_get(&cdc->stalls, region_id, 0);
    if (v == NULL)
        return false;
    if ((int64_t)(uintptr_t)v > now)
        return true;
    cdc_map_del(&cdc->stalls, region_id, 0);
    return false;
}

/*
 * One resolved-ts round of a store (TiKV's on_min_ts, §3.8).
 *
 * Why a resolved ts sent here can never be undercut by a later commit: the
 * TSO and every lock are read under the model lock, and every commit of the
 * model allocates its commit_ts from the same TSO under that lock. A commit
 * after this round therefore has commit_ts > tso >= the value sent. A commit
 * of a lock that exists now has commit_ts > tso too, and until it happens
 * the lock pins the region at <= its start_ts. Rows applied before this round
 * were queued before the ResolvedTs item and reach the client first.
 */
void cdc_store_resolved_round(store_t *st, int64_t now)
{
    sim_cdc_t *cdc = st->cdc;
    sim_model_t *m = cdc->m;
    uint64_t tso = sim_model_tso_locked(m);

    for (conn_t *c = st->conns; c; c = c->next) {
        if (c->dead || c->n_subs == 0)
            continue;
        size_t n = 0;
        for (sub_t *s = c->subs_head; s; s = s->c_next) {
            if (s->state != SUB_NORMAL || region_stalled(cdc, s->region_id, now))
                continue;
            uint64_t lock_ts = sim_model_min_lock_ts_locked(m, &s->enc_start, &s->enc_end);
            uint64_t adv = lock_ts < tso ? lock_ts : tso;
            if (adv > s->resolved_ts)
                s->resolved_ts = adv;
            if (s->resolved_ts == 0)
                continue;
            if (!c->batch_resolved) {
                /* clients < 4.0.8: one deprecated per-region Event */
                Cdcpb__Event ev = CDCPB__EVENT__INIT;
                ev.region_id = s->region_id;
                ev.request_id = s->request_id;
                ev.event_case = CDCPB__EVENT__EVENT_RESOLVED_TS;
                /* the field is deprecated in the proto, on purpose: sending it
                 * to old clients is exactly what we imitate here */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
                ev.resolved_ts = s->resolved_ts;
#pragma GCC diagnostic pop
                cdc_conn_queue_event(c, &ev);
                s->slot_seq = 0; /* keep later rows behind it */
                sim_model_note_resolved_locked(m, s->region_id, s->resolved_ts);
                st->stats.resolved_ts_regions++;
                st->stats.resolved_ts_messages++;
                continue;
            }
            if (n == st->rts_cap) {
                st->rts_cap = st->rts_cap ? st->rts_cap * 2 : 1024;
                st->rts = tkc_realloc(st->rts, st->rts_cap * sizeof(*st->rts));
            }
            st->rts[n].request_id = c->multiplex ? s->request_id : 0;
            st->rts[n].ts = s->resolved_ts;
            st->rts[n].region_id = s->region_id;
            n++;
        }
        if (n == 0)
            continue;
        qsort(st->rts, n, sizeof(*st->rts), rts_cmp);

        /* per request_id group: batches of 8, 32, 128, ... regions, each with
         * the smallest ts of the batch (the first, as sorted) */
        size_t i = 0;
        uint64_t *ids = NULL;
        size_t ids_cap = 0;
        while (i < n) {
            size_t g_end = i;
            while (g_end < n && st->rts[g_end].request_id == st->rts[i].request_id)
                g_end++;
            size_t batch = 8;
            while (i < g_end) {
                size_t k = g_end - i < batch ? g_end - i : batch;
                if (k > ids_cap) {
                    ids_cap = k;
                    ids = tkc_realloc(ids, ids_cap * sizeof(*ids));
                }
                uint64_t ts = st->rts[i].ts;
                for (size_t j = 0; j < k; j++) {
                    ids[j] = st->rts[i + j].region_id;
                    sim_model_note_resolved_locked(m, ids[j], ts);
                }
                Cdcpb__ResolvedTs rt = CDCPB__RESOLVED_TS__INIT;
                rt.n_regions = k;
                rt.regions = ids;
                rt.ts = ts;
                rt.request_id = st->rts[i].request_id;
                Cdcpb__ChangeDataEvent cde = CDCPB__CHANGE_DATA_EVENT__INIT;
                cde.resolved_ts = &rt;
                size_t len = cdcpb__change_data_event__get_packed_size(&cde);
                out_t *o = tkc_calloc(1, sizeof(*o));
                o->kind = OUT_MSG;
                o->msg = tkc_malloc(len);
                o->msg_len = cdcpb__change_data_event__pack(&cde, o->msg);
                cdc_conn_push_out(c, o);
                cdc_conn_account(c, o, len);
                st->stats.resolved_ts_regions += k;
                st->stats.resolved_ts_messages++;
                i += k;
                batch *= 4;
            }
        }
        tkc_free(ids);
    }
}

static void store_tick(void *opaque)
{
    store_t *st = opaque;
    /* idle fast path: nothing queued, scanning or due, so skip the model
     * lock (ticks come every few ms on every store) */
    if (!atomic_load_explicit(&st->dirty, memory_order_relaxed) &&
        tkc_clock_mono_ms() < atomic_load(&st->next_resolved_ms)) {
        st->ticks++;
        return;
    }
    cdc_store_flush(st, true);
}

/* ===== stream handlers (server thread) ===== */

static int cdc_on_open(void *opaque, sim_call_t *call, grpc_status_code *status_out,
                       const char **details_out)
{
    store_t *st = opaque;
    sim_cdc_t *cdc = st->cdc;
    const char *method = sim_call_method(call);
    size_t ml = method ? strlen(method) : 0;
    bool v2 = ml >= 2 && strcmp(method + ml - 2, "V2") == 0;
    bool multiplex = false;

    if (v2) {
        /* TiKV: comma-separated, trimmed; any unknown name fails the call
         * with UNIMPLEMENTED listing the unknown names (§3.1). */
        const char *feat = sim_call_metadata(call, "features");
        char unknown[400] = "";
        size_t ul = 0;
        for (const char *p = feat; p && *p;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            const char *a = p, *b = p + len;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            size_t tl = (size_t)(b - a);
            if (tl == strlen(FEATURE_MULTIPLEXING) && memcmp(a, FEATURE_MULTIPLEXING, tl) == 0) {
                multiplex = true;
            } else if (tl > 0 && ul + tl + 3 < sizeof(unknown)) {
                if (ul)
                    ul += (size_t)snprintf(unknown + ul, sizeof(unknown) - ul, ", ");
                memcpy(unknown + ul, a, tl);
                ul += tl;
                unknown[ul] = '\0';
            }
            p = e ? e + 1 : NULL;
        }
        if (ul) {
            snprintf(st->refuse_details, sizeof(st->refuse_details),
                     "the cdc server does not support features: [%s]", unknown);
            *status_out = GRPC_STATUS_UNIMPLEMENTED;
            *details_out = st->refuse_details;
            sim_model_lock(cdc->m);
            st->stats.streams_refused++;
            sim_model_unlock(cdc->m);
            return -1;
        }
    }

    sim_model_lock(cdc->m);
    if (st->down) {
        st->stats.streams_refused++;
        sim_model_unlock(cdc->m);
        *status_out = GRPC_STATUS_UNAVAILABLE;
        *details_out = "store is down";
        return -1;
    }
    conn_t *c = tkc_calloc(1, sizeof(*c));
    c->st = st;
    c->call = call;
    c->id = ++cdc->next_conn_id;
    c->v2 = v2;
    c->multiplex = multiplex;
    c->end_req = -1;
    c->next = st->conns;
    if (st->conns)
        st->conns->prev = c;
    st->conns = c;
    st->n_conns++;
    st->stats.streams_opened++;
    st->stats.streams_active++;
    sim_call_set_opaque(call, c);
    sim_model_unlock(cdc->m);
    return 0;
}

static void cdc_on_message(void *opaque, sim_call_t *call, const uint8_t *data, size_t len)
{
    store_t *st = opaque;
    sim_cdc_t *cdc = st->cdc;
    conn_t *c = sim_call_get_opaque(call);
    if (c == NULL)
        return;
    Cdcpb__ChangeDataRequest *req = cdcpb__change_data_request__unpack(NULL, len, data);
    if (req == NULL) {
        tkc_log(TKC_LOG_WARN, LOG_COMP, "event=bad_request store_id=%" PRIu64 " len=%zu",
                st->store_id, len);
        return;
    }
    /* read before locking: the model's accessor takes the lock itself */
    uint64_t gc_sp = sim_model_gc_safepoint(cdc->m);
    bool abort_call = false;

    sim_model_lock(cdc->m);
    if (c->dead)
        goto out; /* connection already gone: drop silently (§3.3 step 1) */
    if (!c->features_set)
        conn_set_features(c, req);
    const char *ver = (req->header && req->header->ticdc_version) ? req->header->ticdc_version : "";
    if (cdc->cfg.pre_7_3 && strcmp(ver, c->version) != 0) {
        /* pre-7.3 TiKV refused a second version on one connection */
        Cdcpb__Error err = CDCPB__ERROR__INIT;
        Cdcpb__Compatibility cp = CDCPB__COMPATIBILITY__INIT;
        cp.required_version = c->version;
        err.compatibility = &cp;
        conn_reject(c, req, &err, ERR_COMPATIBILITY);
        goto out;
    }
    switch (req->request_case) {
    case CDCPB__CHANGE_DATA_REQUEST__REQUEST_DEREGISTER:
        conn_deregister(c, req);
        break;
    case CDCPB__CHANGE_DATA_REQUEST__REQUEST_NOTIFY_TXN_STATUS:
        /* TiKV has no handler for it and reaches an unreachable!() arm;
         * we end the call instead of crashing the simulator. */
        tkc_log(TKC_LOG_WARN, LOG_COMP, "event=notify_txn_status_received store_id=%" PRIu64,
                st->store_id);
        conn_kill(c);
        c->finished = true;
        abort_call = true;
        break;
    default: /* Register, or no oneof set: treated exactly like Register */
        conn_register(c, req, gc_sp);
        break;
    }
out:
    sim_model_unlock(cdc->m);
    cdcpb__change_data_request__free_unpacked(req, NULL);
    if (abort_call)
        sim_call_abort(call, GRPC_STATUS_INTERNAL, "notify_txn_status is not supported");
    else if (atomic_load_explicit(&st->dirty, memory_order_relaxed))
        cdc_store_flush(st, false);
}

static void cdc_on_close(void *opaque, sim_call_t *call, bool cancelled)
{
    store_t *st = opaque;
    conn_t *c = sim_call_get_opaque(call);
    if (c == NULL)
        return;
    bool finish;
    sim_model_lock(st->cdc->m);
    /* TiKV deregisters the whole connection when the request half ends,
     * then closes the response half with OK (§3.12). */
    conn_kill(c);
    c->closed = true;
    finish = !c->finished;
    c->finished = true;
    sim_model_unlock(st->cdc->m);
    if (finish)
        sim_call_finish(call, GRPC_STATUS_OK, NULL);
    (void)cancelled;
}

static void cdc_on_release(void *opaque, sim_call_t *call)
{
    store_t *st = opaque;
    conn_t *c = sim_call_get_opaque(call);
    if (c == NULL)
        return;
    sim_model_lock(st->cdc->m);
    conn_kill(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        st->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    st->n_conns--;
    st->stats.streams_closed++;
    st->stats.streams_active--;
    sim_model_unlock(st->cdc->m);
    sim_call_set_opaque(call, NULL);
    cdc_map_free(&c->subs);
    tkc_free(c->version);
    tkc_free(c);
}

/* ===== lifecycle ===== */

void sim_cdc_config_defaults(sim_cdc_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->resolved_interval_ms = 1000;
    cfg->pre_7_3 = false;
    cfg->sink_memory_quota = (size_t)512 << 20;
    cfg->incremental_scan_rows_per_tick = 8192;
    cfg->max_message_bytes = (size_t)6 << 20;
    cfg->entries_chunk_bytes = (size_t)32 << 10;
    cfg->scan_concurrency_limit = 10000;
    cfg->tick_ms = 2;
}

sim_cdc_t *sim_cdc_new(sim_model_t *m, const sim_cdc_config_t *cfg)
{
    sim_cdc_t *cdc = tkc_calloc(1, sizeof(*cdc));
    cdc->m = m;
    sim_cdc_config_defaults(&cdc->cfg);
    if (cfg)
        cdc->cfg = *cfg;
    sim_cdc_config_t d;
    sim_cdc_config_defaults(&d);
    if (cdc->cfg.resolved_interval_ms <= 0)
        cdc->cfg.resolved_interval_ms = d.resolved_interval_ms;
    if (cdc->cfg.resolved_interval_ms < 50)
        cdc->cfg.resolved_interval_ms = 50;
    if (cdc->cfg.sink_memory_quota == 0)
        cdc->cfg.sink_memory_quota = d.sink_memory_quota;
    if (cdc->cfg.incremental_scan_rows_per_tick <= 0)
        cdc->cfg.incremental_scan_rows_per_tick = d.incremental_scan_rows_per_tick;
    if (cdc->cfg.max_message_bytes == 0)
        cdc->cfg.max_message_bytes = d.max_message_bytes;
    if (cdc->cfg.entries_chunk_bytes == 0)
        cdc->cfg.entries_chunk_bytes = d.entries_chunk_bytes;
    if (cdc->cfg.scan_concurrency_limit <= 0)
        cdc->cfg.scan_concurrency_limit = d.scan_concurrency_limit;
    if (cdc->cfg.tick_ms <= 0)
        cdc->cfg.tick_ms = d.tick_ms;
    cdc->call_high_water = cdc->cfg.sink_memory_quota / 4;
    if (cdc->call_high_water > CALL_HIGH_WATER_MAX)
        cdc->call_high_water = CALL_HIGH_WATER_MAX;
    if (cdc->call_high_water < CALL_HIGH_WATER_MIN)
        cdc->call_high_water = CALL_HIGH_WATER_MIN;
    cdc->cluster_id = sim_model_cluster_id(m);
    sim_model_set_observer(m, cdc_observe, cdc);
    return cdc;
}

void sim_cdc_attach_store(sim_cdc_t *cdc, uint64_t store_id, sim_server_t *srv)
{
    static const sim_stream_handler_t h = {
        .on_open = cdc_on_open,
        .on_message = cdc_on_message,
        .on_close = cdc_on_close,
        .on_release = cdc_on_release,
    };
    store_t *st = tkc_calloc(1, sizeof(*st));
    st->cdc = cdc;
    st->store_id = store_id;
    st->srv = srv;
    atomic_init(&st->dirty, false);
    atomic_init(&st->next_resolved_ms, tkc_clock_mono_ms() + cdc->cfg.resolved_interval_ms);

    sim_model_lock(cdc->m);
    cdc->stores = tkc_realloc(cdc->stores, (cdc->n_stores + 1) * sizeof(*cdc->stores));
    cdc->stores[cdc->n_stores++] = st;
    sim_model_unlock(cdc->m);

    sim_server_add_stream(srv, "/cdcpb.ChangeData/EventFeed", &h, st);
    sim_server_add_stream(srv, "/cdcpb.ChangeData/EventFeedV2", &h, st);
    sim_server_set_tick(srv, cdc->cfg.tick_ms, store_tick, st);
}

static void fault_list_free(fault_t *f)
{
    while (f) {
        fault_t *n = f->next;
        tkc_free(f);
        f = n;
    }
}

void sim_cdc_destroy(sim_cdc_t *cdc)
{
    if (cdc == NULL)
        return;
    sim_model_set_observer(cdc->m, NULL, NULL);
    for (size_t i = 0; i < cdc->n_stores; i++) {
        store_t *st = cdc->stores[i];
        /* calls still here were never released by their server */
        while (st->conns) {
            conn_t *c = st->conns;
            conn_kill(c);
            st->conns = c->next;
            cdc_map_free(&c->subs);
            tkc_free(c->version);
            tkc_free(c);
        }
        fault_list_free(st->busy);
        fault_list_free(st->congested);
        tkc_free(st->pack);
        tkc_free(st->jobs);
        tkc_free(st->rts);
        tkc_free(st);
    }
    tkc_free(cdc->stores);
    for (size_t i = 0; i < cdc->regions.cap; i++)
        tkc_free(cdc->regions.t[i].v);
    cdc_map_free(&cdc->regions);
    cdc_map_free(&cdc->stalls);
    tkc_free(cdc);
}

/* ===== faults ===== */

static void fault_add(fault_t **list, uint64_t region_id, int count, uint64_t backoff_ms)
{
    if (count <= 0)
        return;
    for (fault_t *f = *list; f; f = f->next)
        if (f->region_id == region_id) {
            f->count += count;
            f->backoff_ms = backoff_ms;
            return;
        }
    fault_t *f = tkc_calloc(1, sizeof(*f));
    f->region_id = region_id;
    f->count = count;
    f->backoff_ms = backoff_ms;
    /* region-specific entries first so they win over the wildcard */
    if (region_id == 0) {
        fault_t **p = list;
        while (*p)
            p = &(*p)->next;
        *p = f;
    } else {
        f->next = *list;
        *list = f;
    }
}

void sim_cdc_fault_busy(sim_cdc_t *cdc, uint64_t store_id, uint64_t region_id, int count,
                        uint64_t backoff_ms)
{
    sim_model_lock(cdc->m);
    store_t *st = cdc_store(cdc, store_id);
    if (st)
        fault_add(&st->busy, region_id, count, backoff_ms);
    sim_model_unlock(cdc->m);
}

void sim_cdc_fault_congested(sim_cdc_t *cdc, uint64_t store_id, uint64_t region_id, int count)
{
    sim_model_lock(cdc->m);
    store_t *st = cdc_store(cdc, store_id);
    if (st)
        fault_add(&st->congested, region_id, count, 0);
    sim_model_unlock(cdc->m);
}

void sim_cdc_fault_stall_resolved(sim_cdc_t *cdc, uint64_t region_id, int ms)
{
    int64_t until = tkc_clock_mono_ms() + ms;
    sim_model_lock(cdc->m);
    if (ms <= 0)
        cdc_map_del(&cdc->stalls, region_id, 0);
    else
        cdc_map_put(&cdc->stalls, region_id, 0, (void *)(uintptr_t)until);
    sim_model_unlock(cdc->m);
}

int sim_cdc_end_streams(sim_cdc_t *cdc, uint64_t store_id, sim_cdc_end_mode_t mode)
{
    int n = 0;
    sim_model_lock(cdc->m);
    store_t *st = cdc_store(cdc, store_id);
    for (conn_t *c = st ? st->conns : NULL; c; c = c->next) {
        if (c->finished || c->closed || c->end_req >= 0)
            continue;
        /* no registration survives; with OK what is already queued still
         * goes out before the status, the other modes drop it */
        while (c->subs_head)
            sub_drop(c->subs_head);
        if (mode != SIM_CDC_END_OK)
            cdc_conn_drop_outs(c);
        c->dead = true;
        c->end_req = (int)mode;
        n++;
    }
    if (st)
        atomic_store_explicit(&st->dirty, true, memory_order_relaxed);
    sim_model_unlock(cdc->m);
    return n;
}

void sim_cdc_store_down(sim_cdc_t *cdc, uint64_t store_id)
{
    sim_model_lock(cdc->m);
    store_t *st = cdc_store(cdc, store_id);
    if (st) {
        st->down = true;
        for (conn_t *c = st->conns; c; c = c->next)
            conn_kill(c);
    }
    sim_model_unlock(cdc->m);
}

void sim_cdc_store_up(sim_cdc_t *cdc, uint64_t store_id)
{
    sim_model_lock(cdc->m);
    store_t *st = cdc_store(cdc, store_id);
    if (st) {
        st->down = false;
        atomic_store(&st->next_resolved_ms, tkc_clock_mono_ms() + cdc->cfg.resolved_interval_ms);
    }
    sim_model_unlock(cdc->m);
}

/* ===== injection ===== */

int sim_cdc_inject_row(sim_cdc_t *cdc, uint64_t store_id, uint64_t region_id,
                       uint64_t request_id, const sim_cdc_row_t *row)
{
    rowspec_t r = {
        .type = row->type,
        .op = row->op,
        .key = row->key,
        .klen = row->key_len,
        .val = row->value,
        .vlen = row->value_len,
        .old = row->old_value,
        .olen = row->old_value_len,
        .start_ts = row->start_ts,
        .commit_ts = row->commit_ts,
        .generation = row->generation,
    };
    int n = 0;
    sim_model_lock(cdc->m);
    rsubs_t *rs = cdc_map_get(&cdc->regions, region_id, 0);
    for (sub_t *s = rs ? rs->head : NULL; s; s = s->r_next) {
        if (s->conn->st->store_id != store_id || s->conn->dead)
            continue;
        if (request_id == SIM_CDC_REQ_CURRENT) {
            cdc_sub_queue_row(s, &r);
        } else {
            cdc_conn_queue_row_as(s->conn, region_id, request_id, &r);
            s->slot_seq = 0; /* later rows of the sub go after this one */
        }
        n++;
    }
    sim_model_unlock(cdc->m);
    return n;
}

static int inject_msg(sim_cdc_t *cdc, uint64_t store_id, const uint8_t *data, size_t len)
{
    int n = 0;
    store_t *st = cdc_store(cdc, store_id);
    for (conn_t *c = st ? st->conns : NULL; c; c = c->next) {
        if (c->dead)
            continue;
        cdc_conn_queue_msg(c, data, len);
        n++;
    }
    return n;
}

int sim_cdc_inject_resolved(sim_cdc_t *cdc, uint64_t store_id, const uint64_t *regions,
                            size_t n_regions, uint64_t ts, uint64_t request_id)
{
    Cdcpb__ResolvedTs rt = CDCPB__RESOLVED_TS__INIT;
    rt.n_regions = n_regions;
    rt.regions = (uint64_t *)regions;
    rt.ts = ts;
    rt.request_id = request_id;
    Cdcpb__ChangeDataEvent cde = CDCPB__CHANGE_DATA_EVENT__INIT;
    cde.resolved_ts = &rt;
    size_t len = cdcpb__change_data_event__get_packed_size(&cde);
    uint8_t *buf = tkc_malloc(len ? len : 1);
    len = cdcpb__change_data_event__pack(&cde, buf);
    sim_model_lock(cdc->m);
    int n = inject_msg(cdc, store_id, buf, len);
    sim_model_unlock(cdc->m);
    tkc_free(buf);
    return n;
}

int sim_cdc_inject_raw(sim_cdc_t *cdc, uint64_t store_id, const uint8_t *data, size_t len)
{
    sim_model_lock(cdc->m);
    int n = inject_msg(cdc, store_id, data, len);
    sim_model_unlock(cdc->m);
    return n;
}

/* ===== stats ===== */

int sim_cdc_stats_get(sim_cdc_t *cdc, uint64_t store_id, sim_cdc_stats_t *out)
{
    int rc = -1;
    sim_model_lock(cdc->m);
    store_t *st = cdc_store(cdc, store_id);
    if (st) {
        *out = st->stats;
        out->buffered_bytes = st->buffered;
        rc = 0;
    }
    sim_model_unlock(cdc->m);
    return rc;
}

json_t *sim_cdc_stats_json(sim_cdc_t *cdc)
{
    json_t *arr = json_array();
    sim_model_lock(cdc->m);
    for (size_t i = 0; i < cdc->n_stores; i++) {
        const store_t *st = cdc->stores[i];
        const sim_cdc_stats_t *s = &st->stats;
        json_t *errs = json_pack(
            "{sI sI sI sI sI sI sI sI}", "not_leader", (json_int_t)s->err_not_leader,
            "region_not_found", (json_int_t)s->err_region_not_found, "epoch_not_match",
            (json_int_t)s->err_epoch_not_match, "duplicate_request",
            (json_int_t)s->err_duplicate_request, "compatibility",
            (json_int_t)s->err_compatibility, "cluster_id_mismatch",
            (json_int_t)s->err_cluster_id_mismatch, "server_is_busy",
            (json_int_t)s->err_server_is_busy, "congested", (json_int_t)s->err_congested);
        json_t *rows = json_pack("{sI sI sI sI sI}", "prewrite", (json_int_t)s->rows_prewrite,
                                 "commit", (json_int_t)s->rows_commit, "rollback",
                                 (json_int_t)s->rows_rollback, "committed",
                                 (json_int_t)s->rows_committed, "initialized",
                                 (json_int_t)s->rows_initialized);
        json_t *o = json_pack(
            "{sI sb sI sI sI sI sI sI sI sI sI so so sI sI sI sI sI sI sI}", "store_id",
            (json_int_t)st->store_id, "down", st->down, "streams_opened",
            (json_int_t)s->streams_opened, "streams_closed", (json_int_t)s->streams_closed,
            "streams_refused", (json_int_t)s->streams_refused, "streams_active",
            (json_int_t)s->streams_active, "registrations", (json_int_t)s->registrations,
            "registrations_active", (json_int_t)s->registrations_active, "register_requests",
            (json_int_t)s->register_requests, "deregistrations", (json_int_t)s->deregistrations,
            "gc_unsafe_registrations", (json_int_t)s->gc_unsafe_registrations, "errors", errs,
            "rows", rows, "resolved_ts_regions", (json_int_t)s->resolved_ts_regions,
            "resolved_ts_messages", (json_int_t)s->resolved_ts_messages,
            "resolved_round_us_last", (json_int_t)s->resolved_round_us_last,
            "resolved_round_us_max", (json_int_t)s->resolved_round_us_max, "messages_sent",
            (json_int_t)s->messages_sent, "bytes_sent", (json_int_t)s->bytes_sent,
            "buffered_bytes", (json_int_t)st->buffered);
        json_array_append_new(arr, o);
    }
    sim_model_unlock(cdc->m);
    return json_pack("{so}", "stores", arr);
}
