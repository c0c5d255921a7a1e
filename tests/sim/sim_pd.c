/*
 * sim_pd.c: pdpb.PD over the shared model (see sim_pd.h for the behaviour).
 *
 * Every unary handler decodes its request with protobuf-c, runs the PD checks
 * (injected failure, leadership, cluster id, in PD's order), reads the model
 * under its lock and packs the response while still holding it: the response
 * messages borrow key bytes and addresses straight from the model, so no copy
 * is made and nothing can change underneath the packer. Packing a few
 * thousand regions takes well under a millisecond; even a 100k-region
 * unlimited ScanRegions is a few tens of milliseconds.
 *
 * Tso is a bidi stream: one TsoResponse per TsoRequest, in order, sent from
 * the handler (the server thread). Open Tso calls are kept in a list under
 * pd->mu so a fault can end them from another thread; on_release removes a
 * call under the same mutex, so a call in the list is always alive.
 *
 * Faults and counters live under pd->mu, which is never held while calling
 * into the model or while packing.
 */
#include "sim_pd.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metapb.pb-c.h"
#include "pdpb.pb-c.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

typedef enum {
    M_GET_MEMBERS,
    M_GET_CLUSTER_INFO,
    M_TSO,
    M_GET_STORE,
    M_GET_ALL_STORES,
    M_GET_REGION,
    M_GET_REGION_BY_ID,
    M_SCAN_REGIONS,
    M_UPDATE_SERVICE_GC_SAFE_POINT,
    M_COUNT
} pd_method_t;

static const char *const method_names[M_COUNT] = {
    "GetMembers",    "GetClusterInfo", "Tso",         "GetStore",
    "GetAllStores",  "GetRegion",      "GetRegionByID", "ScanRegions",
    "UpdateServiceGCSafePoint",
};

typedef struct {
    int count;
    grpc_status_code status;
    char *details;
} pd_fail_t;

typedef struct {
    uint64_t region_id;
    int calls;
} pd_hole_t;

struct sim_pd_s {
    sim_model_t *m;
    sim_server_t *srv;
    uint64_t member_id;
    int64_t start_ts_s;

    pthread_mutex_t mu; /* faults, counters, tso call list */
    int64_t leader_lost_until_ms; /* monotonic */
    int leader_lost_calls;
    pd_fail_t fail[M_COUNT];
    pd_hole_t *holes;
    size_t n_holes;
    sim_call_t **tso_calls;
    size_t n_tso_calls;

    uint64_t calls[M_COUNT];
    uint64_t err_not_leader, err_cluster_mismatch, err_injected, err_tso_count, err_decode;
    uint64_t tso_requests, tso_timestamps, tso_streams_opened;
    uint64_t scan_holes_applied;
};

/* ===== helpers ===== */

static void pack_message(const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    *out = tkc_malloc(*len ? *len : 1);
    protobuf_c_message_pack(msg, *out);
}

static char *strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strfmt(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return tkc_strdup(buf);
}

static bool leader_lost_locked(const sim_pd_t *pd)
{
    return pd->leader_lost_calls > 0 || tkc_clock_mono_ms() < pd->leader_lost_until_ms;
}

/*
 * PD's checks, in PD's order. @p checked: false for the methods PD serves on
 * any member without a cluster check (GetMembers, GetClusterInfo), which can
 * still be failed by injection.
 */
static grpc_status_code pd_check(sim_pd_t *pd, pd_method_t method,
                                 const Pdpb__RequestHeader *hdr, bool checked, char **details)
{
    pthread_mutex_lock(&pd->mu);
    pd->calls[method]++;
    pd_fail_t *f = &pd->fail[method];
    if (f->count > 0) {
        f->count--;
        pd->err_injected++;
        grpc_status_code st = f->status;
        *details = tkc_strdup(f->details ? f->details : "injected failure");
        pthread_mutex_unlock(&pd->mu);
        return st;
    }
    if (checked && leader_lost_locked(pd)) {
        if (pd->leader_lost_calls > 0)
            pd->leader_lost_calls--;
        pd->err_not_leader++;
        pthread_mutex_unlock(&pd->mu);
        *details = tkc_strdup("not leader");
        return GRPC_STATUS_UNAVAILABLE;
    }
    pthread_mutex_unlock(&pd->mu);
    uint64_t want = sim_model_cluster_id(pd->m);
    uint64_t got = hdr ? hdr->cluster_id : 0;
    if (checked && got != want) {
        pthread_mutex_lock(&pd->mu);
        pd->err_cluster_mismatch++;
        pthread_mutex_unlock(&pd->mu);
        *details = strfmt("mismatch cluster id, need %" PRIu64 " but got %" PRIu64, want, got);
        return GRPC_STATUS_FAILED_PRECONDITION;
    }
    return GRPC_STATUS_OK;
}

static grpc_status_code decode_error(sim_pd_t *pd, char **details)
{
    pthread_mutex_lock(&pd->mu);
    pd->err_decode++;
    pthread_mutex_unlock(&pd->mu);
    *details = tkc_strdup("cannot decode request");
    return GRPC_STATUS_INTERNAL;
}

/* A metapb.Region with its epoch and peers, borrowing the model's key bytes. */
typedef struct {
    Metapb__Region region;
    Metapb__RegionEpoch epoch;
    Metapb__Peer peers[SIM_PEERS];
    Metapb__Peer *peer_ptrs[SIM_PEERS];
    Pdpb__Region pd_region;
} pb_region_t;

static void pb_region_fill(pb_region_t *p, const sim_region_t *r)
{
    metapb__region__init(&p->region);
    metapb__region_epoch__init(&p->epoch);
    p->epoch.conf_ver = r->conf_ver;
    p->epoch.version = r->version;
    p->region.id = r->id;
    p->region.start_key.data = r->start.data;
    p->region.start_key.len = r->start.len;
    p->region.end_key.data = r->end.data;
    p->region.end_key.len = r->end.len;
    p->region.region_epoch = &p->epoch;
    for (int i = 0; i < SIM_PEERS; i++) {
        metapb__peer__init(&p->peers[i]);
        p->peers[i].id = r->peers[i].id;
        p->peers[i].store_id = r->peers[i].store_id;
        p->peers[i].role = METAPB__PEER_ROLE__Voter;
        p->peer_ptrs[i] = &p->peers[i];
    }
    p->region.n_peers = SIM_PEERS;
    p->region.peers = p->peer_ptrs;
    pdpb__region__init(&p->pd_region);
    p->pd_region.region = &p->region;
    p->pd_region.leader = &p->peers[r->leader];
}

static void pb_store_fill(Metapb__Store *ps, const sim_store_t *st, int64_t start_ts_s)
{
    metapb__store__init(ps);
    ps->id = st->id;
    ps->address = (char *)st->addr;
    ps->peer_address = (char *)st->addr;
    ps->version = (char *)st->version;
    ps->start_timestamp = start_ts_s;
    /* A stopped TiKV keeps state Up in PD's metadata (PD only notices that
     * its heartbeats stop); only a removed store is Tombstone. */
    if (st->state == SIM_STORE_TOMBSTONE) {
        ps->state = METAPB__STORE_STATE__Tombstone;
        ps->node_state = METAPB__NODE_STATE__Removed;
        ps->physically_destroyed = 1;
    } else {
        ps->state = METAPB__STORE_STATE__Up;
        ps->node_state = METAPB__NODE_STATE__Serving;
        if (st->state == SIM_STORE_UP)
            ps->last_heartbeat = tkc_clock_wall_ms() * 1000000;
    }
}

static bool region_is_hole(sim_pd_t *pd, uint64_t region_id)
{
    /* called with pd->mu held */
    for (size_t i = 0; i < pd->n_holes; i++)
        if (pd->holes[i].region_id == region_id && pd->holes[i].calls > 0)
            return true;
    return false;
}

/* ===== unary handlers ===== */

static grpc_status_code pd_get_members(void *opaque, sim_call_t *call, const uint8_t *req,
                                       size_t len, uint8_t **resp, size_t *resp_len,
                                       char **details)
{
    sim_pd_t *pd = opaque;
    Pdpb__GetMembersRequest *rq = pdpb__get_members_request__unpack(NULL, len, req);
    if (!rq)
        return decode_error(pd, details);
    grpc_status_code st = pd_check(pd, M_GET_MEMBERS, rq->header, false, details);
    pdpb__get_members_request__free_unpacked(rq, NULL);
    if (st != GRPC_STATUS_OK)
        return st;

    pthread_mutex_lock(&pd->mu);
    bool no_leader = leader_lost_locked(pd);
    pthread_mutex_unlock(&pd->mu);

    char url[96];
    snprintf(url, sizeof(url), "http://%s", sim_server_addr(pd->srv));
    char *urls[1] = {url};
    Pdpb__Member me = PDPB__MEMBER__INIT;
    me.name = "pd-sim";
    me.member_id = pd->member_id;
    me.n_peer_urls = 1;
    me.peer_urls = urls;
    me.n_client_urls = 1;
    me.client_urls = urls;
    me.binary_version = "8.5.0";
    Pdpb__Member *members[1] = {&me};
    Pdpb__ResponseHeader hdr = PDPB__RESPONSE_HEADER__INIT;
    hdr.cluster_id = sim_model_cluster_id(pd->m);
    Pdpb__GetMembersResponse out = PDPB__GET_MEMBERS_RESPONSE__INIT;
    out.header = &hdr;
    out.n_members = 1;
    out.members = members;
    /* While an election runs there is no leader to report; the client keeps
     * polling GetMembers until one shows up. */
    out.leader = no_leader ? NULL : &me;
    out.etcd_leader = no_leader ? NULL : &me;
    pack_message(&out.base, resp, resp_len);
    return GRPC_STATUS_OK;
}

static grpc_status_code pd_get_cluster_info(void *opaque, sim_call_t *call, const uint8_t *req,
                                            size_t len, uint8_t **resp, size_t *resp_len,
                                            char **details)
{
    sim_pd_t *pd = opaque;
    Pdpb__GetClusterInfoRequest *rq = pdpb__get_cluster_info_request__unpack(NULL, len, req);
    if (!rq)
        return decode_error(pd, details);
    pdpb__get_cluster_info_request__free_unpacked(rq, NULL);
    grpc_status_code st = pd_check(pd, M_GET_CLUSTER_INFO, NULL, false, details);
    if (st != GRPC_STATUS_OK)
        return st;
    Pdpb__ResponseHeader hdr = PDPB__RESPONSE_HEADER__INIT;
    hdr.cluster_id = sim_model_cluster_id(pd->m);
    Pdpb__ServiceMode modes[1] = {PDPB__SERVICE_MODE__PD_SVC_MODE};
    Pdpb__GetClusterInfoResponse out = PDPB__GET_CLUSTER_INFO_RESPONSE__INIT;
    out.header = &hdr;
    out.n_servicemodes = 1;
    out.servicemodes = modes;
    pack_message(&out.base, resp, resp_len);
    return GRPC_STATUS_OK;
}

static grpc_status_code pd_get_store(void *opaque, sim_call_t *call, const uint8_t *req,
                                     size_t len, uint8_t **resp, size_t *resp_len,
                                     char **details)
{
    sim_pd_t *pd = opaque;
    Pdpb__GetStoreRequest *rq = pdpb__get_store_request__unpack(NULL, len, req);
    if (!rq)
        return decode_error(pd, details);
    grpc_status_code st = pd_check(pd, M_GET_STORE, rq->header, true, details);
    uint64_t store_id = rq->store_id;
    pdpb__get_store_request__free_unpacked(rq, NULL);
    if (st != GRPC_STATUS_OK)
        return st;

    Pdpb__ResponseHeader hdr = PDPB__RESPONSE_HEADER__INIT;
    hdr.cluster_id = sim_model_cluster_id(pd->m);
    Pdpb__Error err = PDPB__ERROR__INIT;
    char msg[96];
    Pdpb__GetStoreResponse out = PDPB__GET_STORE_RESPONSE__INIT;
    out.header = &hdr;
    Metapb__Store ps;
    sim_model_lock(pd->m);
    sim_store_t *store = sim_model_store_by_id_locked(pd->m, store_id);
    if (store) {
        pb_store_fill(&ps, store, pd->start_ts_s);
        out.store = &ps;
    } else {
        /* PD: errs.ErrStoreNotFound wrapped as a header error of type UNKNOWN */
        snprintf(msg, sizeof(msg), "invalid store ID %" PRIu64 ", not found", store_id);
        err.type = PDPB__ERROR_TYPE__UNKNOWN;
        err.message = msg;
        hdr.error = &err;
    }
    pack_message(&out.base, resp, resp_len);
    sim_model_unlock(pd->m);
    return GRPC_STATUS_OK;
}

static grpc_status_code pd_get_all_stores(void *opaque, sim_call_t *call, const uint8_t *req,
                                          size_t len, uint8_t **resp, size_t *resp_len,
                                          char **details)
{
    sim_pd_t *pd = opaque;
    Pdpb__GetAllStoresRequest *rq = pdpb__get_all_stores_request__unpack(NULL, len, req);
    if (!rq)
        return decode_error(pd, details);
    grpc_status_code st = pd_check(pd, M_GET_ALL_STORES, rq->header, true, details);
    bool exclude_tombstone = rq->exclude_tombstone_stores;
    pdpb__get_all_stores_request__free_unpacked(rq, NULL);
    if (st != GRPC_STATUS_OK)
        return st;

    Pdpb__ResponseHeader hdr = PDPB__RESPONSE_HEADER__INIT;
    hdr.cluster_id = sim_model_cluster_id(pd->m);
    int n = sim_model_store_count(pd->m);
    Metapb__Store *ps = tkc_calloc((size_t)n + 1, sizeof(*ps));
    Metapb__Store **pp = tkc_calloc((size_t)n + 1, sizeof(*pp));
    size_t k = 0;
    sim_model_lock(pd->m);
    for (int i = 0; i < n; i++) {
        sim_store_t *s = sim_model_store_at_locked(pd->m, i);
        if (exclude_tombstone && s->state == SIM_STORE_TOMBSTONE)
            continue;
        pb_store_fill(&ps[k], s, pd->start_ts_s);
        pp[k] = &ps[k];
        k++;
    }
    Pdpb__GetAllStoresResponse out = PDPB__GET_ALL_STORES_RESPONSE__INIT;
    out.header = &hdr;
    out.n_stores = k;
    out.stores = pp;
    pack_message(&out.base, resp, resp_len);
    sim_model_unlock(pd->m);
    tkc_free(ps);
    tkc_free(pp);
    return GRPC_STATUS_OK;
}

/* GetRegion and GetRegionByID share the response shape. */
static void pack_region_response(sim_pd_t *pd, const sim_region_t *r, uint8_t **resp,
                                 size_t *resp_len)
{
    Pdpb__ResponseHeader hdr = PDPB__RESPONSE_HEADER__INIT;
    hdr.cluster_id = sim_model_cluster_id(pd->m);
    Pdpb__GetRegionResponse out = PDPB__GET_REGION_RESPONSE__INIT;
    out.header = &hdr;
    pb_region_t p;
    if (r) {
        pb_region_fill(&p, r);
        out.region = &p.region;
        out.leader = &p.peers[r->leader];
    }
    pack_message(&out.base, resp, resp_len);
}

static grpc_status_code pd_get_region(void *opaque, sim_call_t *call, const uint8_t *req,
                                      size_t len, uint8_t **resp, size_t *resp_len,
                                      char **details)
{
    sim_pd_t *pd = opaque;
    Pdpb__GetRegionRequest *rq = pdpb__get_region_request__unpack(NULL, len, req);
    if (!rq)
        return decode_error(pd, details);
    grpc_status_code st = pd_check(pd, M_GET_REGION, rq->header, true, details);
    if (st == GRPC_STATUS_OK) {
        sim_model_lock(pd->m);
        const sim_region_t *r =
            sim_model_region_by_key_locked(pd->m, rq->region_key.data, rq->region_key.len);
        pack_region_response(pd, r, resp, resp_len);
        sim_model_unlock(pd->m);
    }
    pdpb__get_region_request__free_unpacked(rq, NULL);
    return st;
}

static grpc_status_code pd_get_region_by_id(void *opaque, sim_call_t *call, const uint8_t *req,
                                            size_t len, uint8_t **resp, size_t *resp_len,
                                            char **details)
{
    sim_pd_t *pd = opaque;
    Pdpb__GetRegionByIDRequest *rq = pdpb__get_region_by_idrequest__unpack(NULL, len, req);
    if (!rq)
        return decode_error(pd, details);
    grpc_status_code st = pd_check(pd, M_GET_REGION_BY_ID, rq->header, true, details);
    uint64_t id = rq->region_id;
    pdpb__get_region_by_idrequest__free_unpacked(rq, NULL);
    if (st != GRPC_STATUS_OK)
        return st;
    sim_model_lock(pd->m);
    /* unknown id: a header without region, as PD answers */
    const sim_region_t *r = sim_model_region_by_id_locked(pd->m, id);
    pack_region_response(pd, r, resp, resp_len);
    sim_model_unlock(pd->m);
    return GRPC_STATUS_OK;
}

static grpc_status_code pd_scan_regions(void *opaque, sim_call_t *call, const uint8_t *req,
                                        size_t len, uint8_t **resp, size_t *resp_len,
                                        char **details)
{
    sim_pd_t *pd = opaque;
    Pdpb__ScanRegionsRequest *rq = pdpb__scan_regions_request__unpack(NULL, len, req);
    if (!rq)
        return decode_error(pd, details);
    grpc_status_code st = pd_check(pd, M_SCAN_REGIONS, rq->header, true, details);
    if (st != GRPC_STATUS_OK) {
        pdpb__scan_regions_request__free_unpacked(rq, NULL);
        return st;
    }

    Pdpb__ResponseHeader hdr = PDPB__RESPONSE_HEADER__INIT;
    hdr.cluster_id = sim_model_cluster_id(pd->m);
    const uint8_t *end = rq->end_key.data;
    size_t end_len = rq->end_key.len;
    size_t limit = rq->limit > 0 ? (size_t)rq->limit : SIZE_MAX;

    sim_model_lock(pd->m);
    size_t total = sim_model_region_count_locked(pd->m);
    size_t first = sim_model_region_lower_bound_locked(pd->m, rq->start_key.data,
                                                       rq->start_key.len);
    size_t cap = total - (first < total ? first : total);
    if (cap > limit)
        cap = limit;
    pb_region_t *pr = tkc_calloc(cap + 1, sizeof(*pr));
    Metapb__Region **metas = tkc_calloc(cap + 1, sizeof(*metas));
    Metapb__Peer **leaders = tkc_calloc(cap + 1, sizeof(*leaders));
    Pdpb__Region **regions = tkc_calloc(cap + 1, sizeof(*regions));
    size_t n = 0;
    pthread_mutex_lock(&pd->mu);
    for (size_t i = first; i < total && n < cap; i++) {
        const sim_region_t *r = sim_model_region_at_locked(pd->m, i);
        /* PD returns regions whose start key is below end_key (empty = +inf) */
        if (end_len > 0 && sim_bytes_cmp(r->start.data, r->start.len, end, end_len) >= 0)
            break;
        if (region_is_hole(pd, r->id)) {
            for (size_t h = 0; h < pd->n_holes; h++)
                if (pd->holes[h].region_id == r->id && pd->holes[h].calls > 0)
                    pd->holes[h].calls--;
            pd->scan_holes_applied++;
            continue;
        }
        pb_region_fill(&pr[n], r);
        metas[n] = &pr[n].region;
        leaders[n] = &pr[n].peers[r->leader];
        regions[n] = &pr[n].pd_region;
        n++;
    }
    pthread_mutex_unlock(&pd->mu);
    Pdpb__ScanRegionsResponse out = PDPB__SCAN_REGIONS_RESPONSE__INIT;
    out.header = &hdr;
    /* both shapes, "to make it compatible with old client" (PD) */
    out.n_region_metas = n;
    out.region_metas = metas;
    out.n_leaders = n;
    out.leaders = leaders;
    out.n_regions = n;
    out.regions = regions;
    pack_message(&out.base, resp, resp_len);
    sim_model_unlock(pd->m);
    tkc_free(pr);
    tkc_free(metas);
    tkc_free(leaders);
    tkc_free(regions);
    pdpb__scan_regions_request__free_unpacked(rq, NULL);
    return GRPC_STATUS_OK;
}

static grpc_status_code pd_update_service_gc_safe_point(void *opaque, sim_call_t *call,
                                                        const uint8_t *req, size_t len,
                                                        uint8_t **resp, size_t *resp_len,
                                                        char **details)
{
    sim_pd_t *pd = opaque;
    Pdpb__UpdateServiceGCSafePointRequest *rq =
        pdpb__update_service_gcsafe_point_request__unpack(NULL, len, req);
    if (!rq)
        return decode_error(pd, details);
    grpc_status_code st =
        pd_check(pd, M_UPDATE_SERVICE_GC_SAFE_POINT, rq->header, true, details);
    if (st != GRPC_STATUS_OK) {
        pdpb__update_service_gcsafe_point_request__free_unpacked(rq, NULL);
        return st;
    }
    char *service = tkc_strndup((const char *)rq->service_id.data, rq->service_id.len);
    uint64_t min = sim_model_update_service_safepoint(pd->m, service, rq->ttl, rq->safe_point);
    Pdpb__ResponseHeader hdr = PDPB__RESPONSE_HEADER__INIT;
    hdr.cluster_id = sim_model_cluster_id(pd->m);
    Pdpb__UpdateServiceGCSafePointResponse out = PDPB__UPDATE_SERVICE_GCSAFE_POINT_RESPONSE__INIT;
    out.header = &hdr;
    out.service_id = rq->service_id;
    out.ttl = rq->ttl;
    out.min_safe_point = min;
    pack_message(&out.base, resp, resp_len);
    tkc_free(service);
    pdpb__update_service_gcsafe_point_request__free_unpacked(rq, NULL);
    return GRPC_STATUS_OK;
}

/* ===== Tso stream ===== */

static void tso_list_remove(sim_pd_t *pd, sim_call_t *call)
{
    for (size_t i = 0; i < pd->n_tso_calls; i++) {
        if (pd->tso_calls[i] == call) {
            pd->tso_calls[i] = pd->tso_calls[--pd->n_tso_calls];
            return;
        }
    }
}

static int tso_open(void *opaque, sim_call_t *call, grpc_status_code *status_out,
                    const char **details_out)
{
    sim_pd_t *pd = opaque;
    pthread_mutex_lock(&pd->mu);
    pd->calls[M_TSO]++;
    pd_fail_t *f = &pd->fail[M_TSO];
    if (f->count > 0) {
        f->count--;
        pd->err_injected++;
        *status_out = f->status;
        /* The server copies the details as soon as on_open returns; a
         * thread-local copy keeps them stable even if another thread
         * replaces the fault meanwhile. */
        static _Thread_local char details[128];
        snprintf(details, sizeof(details), "%s", f->details ? f->details : "injected failure");
        *details_out = details;
        pthread_mutex_unlock(&pd->mu);
        return -1;
    }
    pd->tso_calls = tkc_realloc(pd->tso_calls, (pd->n_tso_calls + 1) * sizeof(*pd->tso_calls));
    pd->tso_calls[pd->n_tso_calls++] = call;
    pd->tso_streams_opened++;
    pthread_mutex_unlock(&pd->mu);
    return 0;
}

static void tso_message(void *opaque, sim_call_t *call, const uint8_t *data, size_t len)
{
    sim_pd_t *pd = opaque;
    Pdpb__TsoRequest *rq = pdpb__tso_request__unpack(NULL, len, data);
    if (!rq) {
        sim_call_finish(call, GRPC_STATUS_INTERNAL, "cannot decode request");
        return;
    }
    uint64_t want = sim_model_cluster_id(pd->m);
    uint64_t got = rq->header ? rq->header->cluster_id : 0;
    uint32_t count = rq->count;
    pdpb__tso_request__free_unpacked(rq, NULL);

    pthread_mutex_lock(&pd->mu);
    pd->tso_requests++;
    /* PD's Tso checks leadership per request ("not leader"), then the
     * cluster id, then the count. */
    if (leader_lost_locked(pd)) {
        if (pd->leader_lost_calls > 0)
            pd->leader_lost_calls--;
        pd->err_not_leader++;
        pthread_mutex_unlock(&pd->mu);
        sim_call_finish(call, GRPC_STATUS_UNAVAILABLE, "not leader");
        return;
    }
    if (got != want) {
        pd->err_cluster_mismatch++;
        pthread_mutex_unlock(&pd->mu);
        char msg[128];
        snprintf(msg, sizeof(msg), "mismatch cluster id, need %" PRIu64 " but got %" PRIu64, want,
                 got);
        sim_call_finish(call, GRPC_STATUS_FAILED_PRECONDITION, msg);
        return;
    }
    if (count == 0) {
        pd->err_tso_count++;
        pthread_mutex_unlock(&pd->mu);
        sim_call_finish(call, GRPC_STATUS_UNKNOWN, "tso count should be positive");
        return;
    }
    pd->tso_timestamps += count;
    pthread_mutex_unlock(&pd->mu);

    sim_model_lock(pd->m);
    uint64_t ts = sim_model_tso_batch_locked(pd->m, count);
    sim_model_unlock(pd->m);
    if (ts == 0) {
        /* more than one millisecond's logical space: PD retries, then gives up */
        sim_call_finish(call, GRPC_STATUS_UNKNOWN,
                        "generate tso maximum number of retries exceeded");
        return;
    }

    Pdpb__ResponseHeader hdr = PDPB__RESPONSE_HEADER__INIT;
    hdr.cluster_id = want;
    Pdpb__Timestamp t = PDPB__TIMESTAMP__INIT;
    t.physical = tkc_tso_physical_ms(ts);
    t.logical = tkc_tso_logical(ts);
    Pdpb__TsoResponse out = PDPB__TSO_RESPONSE__INIT;
    out.header = &hdr;
    out.count = count;
    out.timestamp = &t;
    uint8_t *buf;
    size_t n;
    pack_message(&out.base, &buf, &n);
    sim_call_send(call, buf, n, NULL);
    tkc_free(buf);
}

static void tso_close(void *opaque, sim_call_t *call, bool cancelled)
{
    /* the client closed its side: PD's loop sees EOF and returns nil (OK) */
    sim_call_finish(call, GRPC_STATUS_OK, "");
}

static void tso_release(void *opaque, sim_call_t *call)
{
    sim_pd_t *pd = opaque;
    pthread_mutex_lock(&pd->mu);
    tso_list_remove(pd, call);
    pthread_mutex_unlock(&pd->mu);
}

static const sim_stream_handler_t tso_handler = {tso_open, tso_message, tso_close, tso_release};

/* ===== public API ===== */

sim_pd_t *sim_pd_new(sim_model_t *m, sim_server_t *srv)
{
    sim_pd_t *pd = tkc_calloc(1, sizeof(*pd));
    pd->m = m;
    pd->srv = srv;
    /* any stable non-zero id; derived from the cluster id for readability */
    pd->member_id = (sim_model_cluster_id(m) ^ 0x9e3779b97f4a7c15ull) | 1;
    pd->start_ts_s = (int64_t)time(NULL);
    pthread_mutex_init(&pd->mu, NULL);
    sim_server_add_unary(srv, "/pdpb.PD/GetMembers", pd_get_members, pd);
    sim_server_add_unary(srv, "/pdpb.PD/GetClusterInfo", pd_get_cluster_info, pd);
    sim_server_add_stream(srv, "/pdpb.PD/Tso", &tso_handler, pd);
    sim_server_add_unary(srv, "/pdpb.PD/GetStore", pd_get_store, pd);
    sim_server_add_unary(srv, "/pdpb.PD/GetAllStores", pd_get_all_stores, pd);
    sim_server_add_unary(srv, "/pdpb.PD/GetRegion", pd_get_region, pd);
    sim_server_add_unary(srv, "/pdpb.PD/GetRegionByID", pd_get_region_by_id, pd);
    sim_server_add_unary(srv, "/pdpb.PD/ScanRegions", pd_scan_regions, pd);
    sim_server_add_unary(srv, "/pdpb.PD/UpdateServiceGCSafePoint",
                         pd_update_service_gc_safe_point, pd);
    return pd;
}

void sim_pd_destroy(sim_pd_t *pd)
{
    if (!pd)
        return;
    for (int i = 0; i < M_COUNT; i++)
        tkc_free(pd->fail[i].details);
    tkc_free(pd->holes);
    tkc_free(pd->tso_calls);
    pthread_mutex_destroy(&pd->mu);
    tkc_free(pd);
}

void sim_pd_fault_lose_leader(sim_pd_t *pd, int ms, int calls)
{
    pthread_mutex_lock(&pd->mu);
    if (ms > 0)
        pd->leader_lost_until_ms = tkc_clock_mono_ms() + ms;
    if (calls > 0)
        pd->leader_lost_calls = calls;
    pthread_mutex_unlock(&pd->mu);
    tkc_log(TKC_LOG_INFO, "sim_pd", "event=lose_leader ms=%d calls=%d", ms, calls);
}

static int method_index(const char *method)
{
    const char *slash = strrchr(method, '/');
    const char *name = slash ? slash + 1 : method;
    for (int i = 0; i < M_COUNT; i++)
        if (strcmp(method_names[i], name) == 0)
            return i;
    return -1;
}

int sim_pd_fault_fail(sim_pd_t *pd, const char *method, int count, grpc_status_code status,
                      const char *details)
{
    int i = method_index(method);
    if (i < 0)
        return -1;
    pthread_mutex_lock(&pd->mu);
    pd->fail[i].count = count;
    pd->fail[i].status = status;
    tkc_free(pd->fail[i].details);
    pd->fail[i].details = details ? tkc_strdup(details) : NULL;
    pthread_mutex_unlock(&pd->mu);
    return 0;
}

int sim_pd_fault_break_tso(sim_pd_t *pd, grpc_status_code status, const char *details)
{
    pthread_mutex_lock(&pd->mu);
    int n = (int)pd->n_tso_calls;
    /* on_release takes pd->mu, so every call in the list stays alive here */
    for (size_t i = 0; i < pd->n_tso_calls; i++)
        sim_call_abort(pd->tso_calls[i], status, details ? details : "tso stream broken");
    pthread_mutex_unlock(&pd->mu);
    return n;
}

void sim_pd_fault_scan_hole(sim_pd_t *pd, uint64_t region_id, int calls)
{
    pthread_mutex_lock(&pd->mu);
    for (size_t i = 0; i < pd->n_holes; i++) {
        if (pd->holes[i].region_id == region_id) {
            pd->holes[i].calls = calls;
            pthread_mutex_unlock(&pd->mu);
            return;
        }
    }
    pd->holes = tkc_realloc(pd->holes, (pd->n_holes + 1) * sizeof(*pd->holes));
    pd->holes[pd->n_holes++] = (pd_hole_t){region_id, calls};
    pthread_mutex_unlock(&pd->mu);
}

json_t *sim_pd_stats_json(sim_pd_t *pd)
{
    json_t *calls = json_object();
    pthread_mutex_lock(&pd->mu);
    for (int i = 0; i < M_COUNT; i++)
        json_object_set_new(calls, method_names[i], json_integer((json_int_t)pd->calls[i]));
    json_t *o = json_pack(
        "{s:s, s:o, s:{s:I, s:I, s:I, s:I, s:I}, s:I, s:I, s:I, s:I, s:I, s:b}", "addr",
        sim_server_addr(pd->srv), "calls", calls, "errors", "not_leader",
        (json_int_t)pd->err_not_leader, "cluster_id_mismatch",
        (json_int_t)pd->err_cluster_mismatch, "injected", (json_int_t)pd->err_injected,
        "tso_count", (json_int_t)pd->err_tso_count, "decode", (json_int_t)pd->err_decode,
        "tso_streams_opened", (json_int_t)pd->tso_streams_opened, "tso_streams_active",
        (json_int_t)pd->n_tso_calls, "tso_requests", (json_int_t)pd->tso_requests,
        "tso_timestamps", (json_int_t)pd->tso_timestamps, "scan_holes_applied",
        (json_int_t)pd->scan_holes_applied, "leader", !leader_lost_locked(pd));
    pthread_mutex_unlock(&pd->mu);
    return o;
}
