/*
 * pd_client.c: PD leader discovery, TSO stream, store cache, region loading
 * and the service GC safepoint.
 *
 * Failures are classified once here: a transport error or a "not leader"
 * answer means the leader may have moved, so the leader is rediscovered with
 * GetMembers over every endpoint and the call is retried once; any other
 * failure goes back to the caller, who backs off (the feed retries region
 * loading every ~100 ms; nothing here loops).
 */
#include "pd_client.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "metapb.pb-c.h"
#include "pdpb.pb-c.h"
#include "util/log.h"
#include "util/mem.h"

#define PD_DEFAULT_TIMEOUT_MS 5000
#define PD_STORE_CACHE_MAX 4096

struct tkc_pd_client_s {
    tkc_pd_config_t cfg;
    char **endpoints;
    tkc_rpc_tls_t tls;
    char *caller_id;

    pthread_mutex_t lock; /* leader, channel, cluster id, store cache, stats */
    grpc_channel *ch;
    char leader[160];
    uint64_t cluster_id;

    tkc_pd_store_t *stores;
    size_t n_stores;

    /* ScanRegions pages are unpacked here (reset after each page): a page
     * of 1000 regions was ~10k mallocs and as many frees, most of the
     * scheduler's time while it re-divided a failed store's regions */
    pthread_mutex_t scan_lock;
    tkc_rpc_arena_t *scan_arena;

    pthread_mutex_t tso_lock; /* the TSO stream */
    grpc_completion_queue *tso_cq;
    grpc_call *tso_call;
    grpc_metadata_array tso_init_md, tso_trail_md;
    grpc_status_code tso_status;
    grpc_slice tso_details;

    tkc_pd_client_stats_t stats;
};

/* ===== helpers ===== */

/* "http://host:port" and "https://host:port" -> "host:port" */
static void url_to_target(const char *url, char *out, size_t out_size)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    snprintf(out, out_size, "%s", p);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

static void header_init(tkc_pd_client_t *pd, Pdpb__RequestHeader *h)
{
    pdpb__request_header__init(h);
    h->cluster_id = pd->cluster_id;
    h->caller_id = pd->caller_id;
}

static bool status_means_leader_change(const tkc_rpc_status_t *st)
{
    return st->status == GRPC_STATUS_UNAVAILABLE || st->status == GRPC_STATUS_DEADLINE_EXCEEDED ||
           strstr(st->details, "not leader") != NULL;
}

static bool header_error(const Pdpb__ResponseHeader *h, char *msg, size_t msg_size)
{
    if (!h || !h->error || h->error->type == PDPB__ERROR_TYPE__OK)
        return false;
    snprintf(msg, msg_size, "PD error %d: %s", (int)h->error->type,
             h->error->message ? h->error->message : "");
    return true;
}

static int timeout_ms(const tkc_pd_client_t *pd)
{
    return pd->cfg.timeout_ms > 0 ? pd->cfg.timeout_ms : PD_DEFAULT_TIMEOUT_MS;
}

/* ===== leader discovery ===== */

/* Asks one endpoint for the members; on success adopts its leader. Lock held. */
static bool discover_via(tkc_pd_client_t *pd, const char *target)
{
    char err[256];
    grpc_channel *ch = tkc_rpc_channel_new(target, &pd->tls, NULL, err, sizeof(err));
    if (!ch)
        return false;
    Pdpb__RequestHeader h;
    pdpb__request_header__init(&h);
    h.caller_id = pd->caller_id;
    Pdpb__GetMembersRequest req = PDPB__GET_MEMBERS_REQUEST__INIT;
    req.header = &h;
    Pdpb__GetMembersResponse *resp = NULL;
    tkc_rpc_status_t st;
    tkc_rpc_unary(ch, TKC_RPC_PD_GET_MEMBERS, &req.base, &pdpb__get_members_response__descriptor,
                  timeout_ms(pd), (ProtobufCMessage **)&resp, &st);
    bool ok = false;
    if (resp && resp->header && resp->leader && resp->leader->n_client_urls > 0) {
        char leader[160];
        url_to_target(resp->leader->client_urls[0], leader, sizeof(leader));
        uint64_t cid = resp->header->cluster_id;
        if (pd->cluster_id && cid != pd->cluster_id) {
            tkc_log(TKC_LOG_ERROR, "pd",
                    "event=cluster_id_changed endpoint=%s old=%" PRIu64 " new=%" PRIu64, target,
                    pd->cluster_id, cid);
        } else {
            pd->cluster_id = cid;
            if (strcmp(leader, pd->leader) != 0 || !pd->ch) {
                if (pd->leader[0] && strcmp(leader, pd->leader) != 0)
                    pd->stats.leader_changes++;
                tkc_log(TKC_LOG_INFO, "pd", "event=leader leader=%s cluster_id=%" PRIu64, leader,
                        cid);
                snprintf(pd->leader, sizeof(pd->leader), "%s", leader);
                if (pd->ch)
                    grpc_channel_destroy(pd->ch);
                pd->ch = strcmp(leader, target) == 0
                             ? ch
                             : tkc_rpc_channel_new(leader, &pd->tls, NULL, err, sizeof(err));
                if (pd->ch == ch)
                    ch = NULL;
            }
            ok = pd->ch != NULL;
        }
    } else if (resp) {
        tkc_log(TKC_LOG_WARN, "pd", "event=get_members_no_leader endpoint=%s", target);
    } else {
        tkc_log(TKC_LOG_WARN, "pd", "event=get_members_failed endpoint=%s status=%s details=\"%s\"",
                target, tkc_rpc_status_name(st.status), st.details);
    }
    if (resp)
        pdpb__get_members_response__free_unpacked(resp, NULL);
    if (ch)
        grpc_channel_destroy(ch);
    return ok;
}

/* Lock held. The current leader first, then every configured endpoint. */
static bool rediscover(tkc_pd_client_t *pd)
{
    if (pd->leader[0]) {
        char cur[160];
        snprintf(cur, sizeof(cur), "%s", pd->leader);
        if (discover_via(pd, cur))
            return true;
    }
    for (size_t i = 0; i < pd->cfg.n_endpoints; i++)
        if (discover_via(pd, pd->endpoints[i]))
            return true;
    return false;
}

/*
 * A unary call to the leader, with one rediscovery + retry when the
 * failure says the leader may have moved. Lock taken inside. The response
 * is unpacked into @p a (NULL: malloc'd, the caller frees it).
 */
static tkc_err_t pd_call_in(tkc_pd_client_t *pd, tkc_rpc_arena_t *a, const char *method,
                            ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                            ProtobufCMessage **resp)
{
    tkc_rpc_status_t st = {0};
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_mutex_lock(&pd->lock);
        pd->stats.calls++;
        if (!pd->ch && !rediscover(pd)) {
            pd->stats.errors++;
            pthread_mutex_unlock(&pd->lock);
            return TKC_ERR_TRANSPORT;
        }
        if (a)
            tkc_rpc_unary_in(a, pd->ch, method, req, resp_desc, timeout_ms(pd), resp, &st);
        else
            tkc_rpc_unary(pd->ch, method, req, resp_desc, timeout_ms(pd), resp, &st);
        if (st.status == GRPC_STATUS_OK) {
            pthread_mutex_unlock(&pd->lock);
            return TKC_ERR_OK;
        }
        pd->stats.errors++;
        tkc_log(TKC_LOG_WARN, "pd", "event=call_failed method=%s leader=%s status=%s details=\"%s\"",
                method, pd->leader, tkc_rpc_status_name(st.status), st.details);
        bool retry = status_means_leader_change(&st) && attempt == 0 && rediscover(pd);
        pthread_mutex_unlock(&pd->lock);
        if (!retry)
            break;
    }
    return st.status == GRPC_STATUS_DEADLINE_EXCEEDED ? TKC_ERR_TIMED_OUT : TKC_ERR_TRANSPORT;
}

static tkc_err_t pd_call(tkc_pd_client_t *pd, const char *method, ProtobufCMessage *req,
                         const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp)
{
    return pd_call_in(pd, NULL, method, req, resp_desc, resp);
}

/* ===== lifecycle ===== */

tkc_pd_client_t *tkc_pd_client_new(const tkc_pd_config_t *cfg, char *errstr, size_t errstr_size)
{
    if (cfg->n_endpoints == 0) {
        snprintf(errstr, errstr_size, "no PD endpoints configured");
        return NULL;
    }
    tkc_pd_client_t *pd = tkc_calloc(1, sizeof(*pd));
    pd->cfg = *cfg;
    pd->endpoints = tkc_calloc(cfg->n_endpoints, sizeof(char *));
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        char t[160];
        url_to_target(cfg->endpoints[i], t, sizeof(t));
        pd->endpoints[i] = tkc_strdup(t);
    }
    pd->cfg.endpoints = NULL;
    pd->tls.ca_path = cfg->tls.ca_path ? tkc_strdup(cfg->tls.ca_path) : NULL;
    pd->tls.cert_path = cfg->tls.cert_path ? tkc_strdup(cfg->tls.cert_path) : NULL;
    pd->tls.key_path = cfg->tls.key_path ? tkc_strdup(cfg->tls.key_path) : NULL;
    pd->caller_id = tkc_strdup(cfg->caller_id ? cfg->caller_id : "tikv-kafka-cdc");
    pthread_mutex_init(&pd->lock, NULL);
    pthread_mutex_init(&pd->tso_lock, NULL);
    pthread_mutex_init(&pd->scan_lock, NULL);
    pd->scan_arena = tkc_rpc_arena_new();
    pd->tso_details = grpc_empty_slice();

    pthread_mutex_lock(&pd->lock);
    bool ok = rediscover(pd);
    pthread_mutex_unlock(&pd->lock);
    if (!ok) {
        snprintf(errstr, errstr_size, "no PD endpoint answered GetMembers (tried %zu, first %s)",
                 cfg->n_endpoints, pd->endpoints[0]);
        tkc_pd_client_destroy(pd);
        return NULL;
    }
    return pd;
}

static void tso_close(tkc_pd_client_t *pd);

void tkc_pd_client_destroy(tkc_pd_client_t *pd)
{
    if (!pd)
        return;
    pthread_mutex_lock(&pd->tso_lock);
    tso_close(pd);
    pthread_mutex_unlock(&pd->tso_lock);
    if (pd->ch)
        grpc_channel_destroy(pd->ch);
    for (size_t i = 0; i < pd->cfg.n_endpoints; i++)
        tkc_free(pd->endpoints[i]);
    tkc_free(pd->endpoints);
    tkc_free((char *)pd->tls.ca_path);
    tkc_free((char *)pd->tls.cert_path);
    tkc_free((char *)pd->tls.key_path);
    tkc_free(pd->caller_id);
    tkc_free(pd->stores);
    grpc_slice_unref(pd->tso_details);
    pthread_mutex_destroy(&pd->lock);
    pthread_mutex_destroy(&pd->tso_lock);
    tkc_rpc_arena_destroy(pd->scan_arena);
    pthread_mutex_destroy(&pd->scan_lock);
    tkc_free(pd);
}

uint64_t tkc_pd_client_cluster_id(const tkc_pd_client_t *pd)
{
    return pd->cluster_id;
}

void tkc_pd_client_leader(tkc_pd_client_t *pd, char *out, size_t out_size)
{
    pthread_mutex_lock(&pd->lock);
    snprintf(out, out_size, "%s", pd->leader);
    pthread_mutex_unlock(&pd->lock);
}

void tkc_pd_client_stats(tkc_pd_client_t *pd, tkc_pd_client_stats_t *out)
{
    pthread_mutex_lock(&pd->lock);
    *out = pd->stats;
    pthread_mutex_unlock(&pd->lock);
}

/* ===== TSO stream ===== */

enum { TSO_TAG_START = 1, TSO_TAG_STATUS, TSO_TAG_ROUND };

/*
 * Waits for @p tag. A batch that timed out is cancelled and then waited for
 * again: every started batch completes exactly once, and its buffers must
 * not be released before that.
 */
static bool tso_pluck(tkc_pd_client_t *pd, intptr_t tag, int64_t ms)
{
    grpc_event ev = grpc_completion_queue_pluck(pd->tso_cq, (void *)tag, tkc_rpc_deadline_ms(ms),
                                                NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
        grpc_call_cancel(pd->tso_call, NULL);
        ev = grpc_completion_queue_pluck(pd->tso_cq, (void *)tag,
                                         gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        return false;
    }
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* tso_lock held. Cancels the call and waits for its status. */
static void tso_close(tkc_pd_client_t *pd)
{
    if (!pd->tso_call)
        return;
    grpc_call_cancel(pd->tso_call, NULL);
    grpc_completion_queue_pluck(pd->tso_cq, (void *)(intptr_t)TSO_TAG_STATUS,
                                gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_call_unref(pd->tso_call);
    pd->tso_call = NULL;
    grpc_metadata_array_destroy(&pd->tso_init_md);
    grpc_metadata_array_destroy(&pd->tso_trail_md);
    grpc_slice_unref(pd->tso_details);
    pd->tso_details = grpc_empty_slice();
    grpc_completion_queue_shutdown(pd->tso_cq);
    while (grpc_completion_queue_pluck(pd->tso_cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(pd->tso_cq);
    pd->tso_cq = NULL;
}

/* tso_lock held. */
static bool tso_open(tkc_pd_client_t *pd)
{
    pthread_mutex_lock(&pd->lock);
    if (!pd->ch && !rediscover(pd)) {
        pthread_mutex_unlock(&pd->lock);
        return false;
    }
    pd->tso_cq = grpc_completion_queue_create_for_pluck(NULL);
    pd->tso_call = grpc_channel_create_call(pd->ch, NULL, GRPC_PROPAGATE_DEFAULTS, pd->tso_cq,
                                            grpc_slice_from_static_string(TKC_RPC_PD_TSO), NULL,
                                            gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    pd->stats.tso_stream_opens++;
    pthread_mutex_unlock(&pd->lock);

    grpc_metadata_array_init(&pd->tso_init_md);
    grpc_metadata_array_init(&pd->tso_trail_md);
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &pd->tso_trail_md;
    ops[0].data.recv_status_on_client.status = &pd->tso_status;
    ops[0].data.recv_status_on_client.status_details = &pd->tso_details;
    if (grpc_call_start_batch(pd->tso_call, ops, 1, (void *)(intptr_t)TSO_TAG_STATUS, NULL) !=
        GRPC_CALL_OK) {
        grpc_call_unref(pd->tso_call);
        pd->tso_call = NULL;
        grpc_completion_queue_shutdown(pd->tso_cq);
        grpc_completion_queue_destroy(pd->tso_cq);
        pd->tso_cq = NULL;
        return false;
    }
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    /* While PD restarts the channel sits in backoff; waiting for it (up to
     * the call timeout) beats failing at once and spinning. */
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &pd->tso_init_md;
    if (grpc_call_start_batch(pd->tso_call, ops, 2, (void *)(intptr_t)TSO_TAG_START, NULL) !=
            GRPC_CALL_OK ||
        !tso_pluck(pd, TSO_TAG_START, timeout_ms(pd))) {
        tso_close(pd);
        return false;
    }
    return true;
}

/* tso_lock held. One request/response round on the open stream. */
static bool tso_round(tkc_pd_client_t *pd, uint64_t *ts)
{
    Pdpb__RequestHeader h;
    header_init(pd, &h);
    Pdpb__TsoRequest req = PDPB__TSO_REQUEST__INIT;
    req.header = &h;
    req.count = 1;
    grpc_byte_buffer *send = tkc_rpc_pack(&req.base);
    grpc_byte_buffer *recv = NULL;
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_MESSAGE;
    ops[0].data.send_message.send_message = send;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &recv;
    bool ok = grpc_call_start_batch(pd->tso_call, ops, 2, (void *)(intptr_t)TSO_TAG_ROUND, NULL) ==
              GRPC_CALL_OK;
    if (ok && !tso_pluck(pd, TSO_TAG_ROUND, timeout_ms(pd)))
        ok = false;
    grpc_byte_buffer_destroy(send);
    if (!ok || !recv) {
        if (recv)
            grpc_byte_buffer_destroy(recv);
        return false;
    }
    Pdpb__TsoResponse *resp =
        (Pdpb__TsoResponse *)tkc_rpc_unpack(&pdpb__tso_response__descriptor, recv);
    grpc_byte_buffer_destroy(recv);
    char msg[256];
    ok = resp && resp->timestamp && resp->count == 1 && !header_error(resp->header, msg, sizeof(msg));
    if (ok)
        *ts = ((uint64_t)resp->timestamp->physical << 18) | (uint64_t)resp->timestamp->logical;
    if (resp)
        pdpb__tso_response__free_unpacked(resp, NULL);
    return ok;
}

tkc_err_t tkc_pd_client_get_ts(tkc_pd_client_t *pd, uint64_t *ts)
{
    pthread_mutex_lock(&pd->tso_lock);
    tkc_err_t err = TKC_ERR_TRANSPORT;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!pd->tso_call && !tso_open(pd))
            continue;
        if (tso_round(pd, ts)) {
            err = TKC_ERR_OK;
            break;
        }
        tkc_log(TKC_LOG_WARN, "pd", "event=tso_stream_failed attempt=%d", attempt);
        tso_close(pd);
        pthread_mutex_lock(&pd->lock);
        pd->stats.errors++;
        rediscover(pd);
        pthread_mutex_unlock(&pd->lock);
    }
    pthread_mutex_unlock(&pd->tso_lock);
    return err;
}

/* ===== regions ===== */

static void region_from_pb(const Metapb__Region *r, const Metapb__Peer *leader,
                           tkc_pd_region_t *out)
{
    memset(out, 0, sizeof(*out));
    out->id = r->id;
    out->start_len = r->start_key.len;
    out->start_key = tkc_memdup(r->start_key.data, r->start_key.len);
    out->end_len = r->end_key.len;
    out->end_key = tkc_memdup(r->end_key.data, r->end_key.len);
    if (r->region_epoch) {
        out->conf_ver = r->region_epoch->conf_ver;
        out->version = r->region_epoch->version;
    }
    if (leader) {
        out->leader_store_id = leader->store_id;
        out->leader_peer_id = leader->id;
    }
}

void tkc_pd_region_free(tkc_pd_region_t *r)
{
    tkc_free(r->start_key);
    tkc_free(r->end_key);
    r->start_key = r->end_key = NULL;
}

void tkc_pd_regions_free(tkc_pd_region_t *rs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tkc_pd_region_free(&rs[i]);
    tkc_free(rs);
}

tkc_err_t tkc_pd_client_scan_regions(tkc_pd_client_t *pd, const uint8_t *start, size_t start_len,
                                     const uint8_t *end, size_t end_len, int limit,
                                     tkc_pd_region_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    Pdpb__RequestHeader h;
    header_init(pd, &h);
    Pdpb__ScanRegionsRequest req = PDPB__SCAN_REGIONS_REQUEST__INIT;
    req.header = &h;
    req.start_key.data = (uint8_t *)start;
    req.start_key.len = start_len;
    req.end_key.data = (uint8_t *)end;
    req.end_key.len = end_len;
    req.limit = limit > 0 ? limit : 1024;
    Pdpb__ScanRegionsResponse *resp = NULL;
    pthread_mutex_lock(&pd->scan_lock);
    tkc_err_t err = pd_call_in(pd, pd->scan_arena, TKC_RPC_PD_SCAN_REGIONS, &req.base,
                               &pdpb__scan_regions_response__descriptor,
                               (ProtobufCMessage **)&resp);
    if (err != TKC_ERR_OK) {
        tkc_rpc_arena_reset(pd->scan_arena);
        pthread_mutex_unlock(&pd->scan_lock);
        return err;
    }
    char msg[256];
    if (header_error(resp->header, msg, sizeof(msg))) {
        tkc_log(TKC_LOG_WARN, "pd", "event=scan_regions_error msg=\"%s\"", msg);
        tkc_rpc_arena_reset(pd->scan_arena);
        pthread_mutex_unlock(&pd->scan_lock);
        return TKC_ERR_TRANSPORT;
    }
    /* Newer PDs fill `regions`; the legacy parallel arrays are the fallback. */
    size_t n = resp->n_regions ? resp->n_regions : resp->n_region_metas;
    tkc_pd_region_t *rs = tkc_calloc(n ? n : 1, sizeof(*rs));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const Metapb__Region *r;
        const Metapb__Peer *leader;
        if (resp->n_regions) {
            r = resp->regions[i]->region;
            leader = resp->regions[i]->leader;
        } else {
            r = resp->region_metas[i];
            leader = i < resp->n_leaders ? resp->leaders[i] : NULL;
        }
        /* client-go drops regions without a leader: the caller sees a hole. */
        if (!r || !leader || leader->id == 0)
            continue;
        region_from_pb(r, leader, &rs[k++]);
    }
    tkc_rpc_arena_reset(pd->scan_arena);
    pthread_mutex_unlock(&pd->scan_lock);
    *out = rs;
    *n_out = k;
    return TKC_ERR_OK;
}

tkc_err_t tkc_pd_client_get_region_by_id(tkc_pd_client_t *pd, uint64_t region_id,
                                         tkc_pd_region_t *out)
{
    Pdpb__RequestHeader h;
    header_init(pd, &h);
    Pdpb__GetRegionByIDRequest req = PDPB__GET_REGION_BY_IDREQUEST__INIT;
    req.header = &h;
    req.region_id = region_id;
    Pdpb__GetRegionResponse *resp = NULL;
    tkc_err_t err = pd_call(pd, TKC_RPC_PD_GET_REGION_BY_ID, &req.base,
                            &pdpb__get_region_response__descriptor, (ProtobufCMessage **)&resp);
    if (err != TKC_ERR_OK)
        return err;
    char msg[256];
    if (header_error(resp->header, msg, sizeof(msg)) || !resp->region)
        err = TKC_ERR_NOT_FOUND;
    else
        region_from_pb(resp->region, resp->leader, out);
    pdpb__get_region_response__free_unpacked(resp, NULL);
    return err;
}

/* ===== stores ===== */

/* Parses "v8.5.0-alpha+hash" leniently into major.minor.patch. */
static bool parse_semver(const char *v, int *maj, int *min, int *pat)
{
    if (!v || !*v)
        return false;
    if (*v == 'v' || *v == 'V')
        v++;
    return sscanf(v, "%d.%d.%d", maj, min, pat) == 3;
}

bool tkc_pd_store_version_supported(const char *version)
{
    int a, b, c;
    if (!parse_semver(version, &a, &b, &c))
        return false;
    /* Cluster-id validation needs 5.3; batched resolved ts 4.0.8. We read
     * from TiKV 5.3.0 up to (not including) 10.0.0, as TiCDC HEAD caps. */
    long v = (long)a * 1000000 + (long)b * 1000 + c;
    return v >= 5003000 && v < 10000000;
}

static void store_from_pb(const Metapb__Store *s, tkc_pd_store_t *out)
{
    memset(out, 0, sizeof(*out));
    out->id = s->id;
    snprintf(out->address, sizeof(out->address), "%s", s->address ? s->address : "");
    snprintf(out->version, sizeof(out->version), "%s", s->version ? s->version : "");
    out->state = (int)s->state;
    for (size_t i = 0; i < s->n_labels; i++)
        if (s->labels[i]->key && s->labels[i]->value && strcmp(s->labels[i]->key, "engine") == 0 &&
            strcmp(s->labels[i]->value, "tiflash") == 0)
            out->tiflash = true;
}

/* Lock held. */
static void cache_put(tkc_pd_client_t *pd, const tkc_pd_store_t *s)
{
    for (size_t i = 0; i < pd->n_stores; i++) {
        if (pd->stores[i].id == s->id) {
            pd->stores[i] = *s;
            return;
        }
    }
    if (pd->n_stores >= PD_STORE_CACHE_MAX)
        pd->n_stores = 0; /* a cluster this large is not expected; start over */
    pd->stores = tkc_realloc(pd->stores, (pd->n_stores + 1) * sizeof(*pd->stores));
    pd->stores[pd->n_stores++] = *s;
}

static void cache_drop(tkc_pd_client_t *pd, uint64_t store_id)
{
    for (size_t i = 0; i < pd->n_stores; i++) {
        if (pd->stores[i].id == store_id) {
            pd->stores[i] = pd->stores[--pd->n_stores];
            return;
        }
    }
}

tkc_err_t tkc_pd_client_get_store(tkc_pd_client_t *pd, uint64_t store_id, bool reload,
                                  tkc_pd_store_t *out, char *errstr, size_t errstr_size)
{
    if (!reload) {
        pthread_mutex_lock(&pd->lock);
        for (size_t i = 0; i < pd->n_stores; i++) {
            if (pd->stores[i].id == store_id) {
                *out = pd->stores[i];
                pthread_mutex_unlock(&pd->lock);
                return TKC_ERR_OK;
            }
        }
        pthread_mutex_unlock(&pd->lock);
    }
    Pdpb__RequestHeader h;
    header_init(pd, &h);
    Pdpb__GetStoreRequest req = PDPB__GET_STORE_REQUEST__INIT;
    req.header = &h;
    req.store_id = store_id;
    Pdpb__GetStoreResponse *resp = NULL;
    tkc_err_t err = pd_call(pd, TKC_RPC_PD_GET_STORE, &req.base,
                            &pdpb__get_store_response__descriptor, (ProtobufCMessage **)&resp);
    if (err != TKC_ERR_OK) {
        snprintf(errstr, errstr_size, "GetStore(%" PRIu64 ") failed", store_id);
        return err;
    }
    char msg[256];
    if (header_error(resp->header, msg, sizeof(msg)) || !resp->store ||
        resp->store->state == METAPB__STORE_STATE__Tombstone) {
        snprintf(errstr, errstr_size, "store %" PRIu64 " not found: %s", store_id,
                 resp->store ? "tombstone" : msg);
        pthread_mutex_lock(&pd->lock);
        cache_drop(pd, store_id);
        pthread_mutex_unlock(&pd->lock);
        pdpb__get_store_response__free_unpacked(resp, NULL);
        return TKC_ERR_NOT_FOUND;
    }
    store_from_pb(resp->store, out);
    pdpb__get_store_response__free_unpacked(resp, NULL);
    if (!tkc_pd_store_version_supported(out->version)) {
        snprintf(errstr, errstr_size,
                 "store %" PRIu64 " at %s runs TiKV version \"%s\", supported: [5.3.0, 10.0.0)",
                 store_id, out->address, out->version);
        return TKC_ERR_INCOMPATIBLE;
    }
    pthread_mutex_lock(&pd->lock);
    cache_put(pd, out);
    pthread_mutex_unlock(&pd->lock);
    return TKC_ERR_OK;
}

tkc_err_t tkc_pd_client_get_all_stores(tkc_pd_client_t *pd, tkc_pd_store_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    Pdpb__RequestHeader h;
    header_init(pd, &h);
    Pdpb__GetAllStoresRequest req = PDPB__GET_ALL_STORES_REQUEST__INIT;
    req.header = &h;
    req.exclude_tombstone_stores = 1;
    Pdpb__GetAllStoresResponse *resp = NULL;
    tkc_err_t err = pd_call(pd, TKC_RPC_PD_GET_ALL_STORES, &req.base,
                            &pdpb__get_all_stores_response__descriptor, (ProtobufCMessage **)&resp);
    if (err != TKC_ERR_OK)
        return err;
    char msg[256];
    if (header_error(resp->header, msg, sizeof(msg))) {
        pdpb__get_all_stores_response__free_unpacked(resp, NULL);
        return TKC_ERR_TRANSPORT;
    }
    tkc_pd_store_t *ss = tkc_calloc(resp->n_stores ? resp->n_stores : 1, sizeof(*ss));
    size_t k = 0;
    pthread_mutex_lock(&pd->lock);
    for (size_t i = 0; i < resp->n_stores; i++) {
        if (resp->stores[i]->state == METAPB__STORE_STATE__Tombstone)
            continue;
        store_from_pb(resp->stores[i], &ss[k]);
        if (!ss[k].tiflash && tkc_pd_store_version_supported(ss[k].version))
            cache_put(pd, &ss[k]);
        k++;
    }
    pthread_mutex_unlock(&pd->lock);
    pdpb__get_all_stores_response__free_unpacked(resp, NULL);
    *out = ss;
    *n_out = k;
    return TKC_ERR_OK;
}

/* ===== GC safepoint ===== */

tkc_err_t tkc_pd_client_update_service_safepoint(tkc_pd_client_t *pd, const char *service_id,
                                                 int64_t ttl_s, uint64_t safe_point,
                                                 uint64_t *min_out)
{
    Pdpb__RequestHeader h;
    header_init(pd, &h);
    Pdpb__UpdateServiceGCSafePointRequest req = PDPB__UPDATE_SERVICE_GCSAFE_POINT_REQUEST__INIT;
    req.header = &h;
    req.service_id.data = (uint8_t *)service_id;
    req.service_id.len = strlen(service_id);
    req.ttl = ttl_s;
    req.safe_point = safe_point;
    Pdpb__UpdateServiceGCSafePointResponse *resp = NULL;
    tkc_err_t err = pd_call(pd, TKC_RPC_PD_UPDATE_SERVICE_GC_SAFEPOINT, &req.base,
                            &pdpb__update_service_gcsafe_point_response__descriptor,
                            (ProtobufCMessage **)&resp);
    if (err != TKC_ERR_OK)
        return err;
    char msg[256];
    if (header_error(resp->header, msg, sizeof(msg))) {
        tkc_log(TKC_LOG_WARN, "pd", "event=gc_safepoint_error msg=\"%s\"", msg);
        err = TKC_ERR_TRANSPORT;
    } else {
        *min_out = resp->min_safe_point;
    }
    pdpb__update_service_gcsafe_point_response__free_unpacked(resp, NULL);
    return err;
}
