/*
 * feed.c: the feed's public face — configuration, start-up checks (PD,
 * start ts, GC safepoint), the thread set (scheduler, resolver, workers),
 * stats, and the small helpers the other feed_*.c files share.
 *
 * Start-up order and why:
 *   1. validate the configuration and encode the spans (PD and requests use
 *      memcomparable keys, §8.16);
 *   2. connect to PD (GetMembers: leader and cluster id);
 *   3. fix the start ts (configured, or PD's TSO now);
 *   4. set the service GC safepoint at the start ts and refuse to start if
 *      PD's minimum is already above it (architecture invariant 4: the
 *      history is gone, replaying would silently miss changes, §5.6);
 *   5. only then create the threads (tkc_feed_start).
 *
 * The resolver thread lives here: it pops "resolve the locks of region R"
 * requests the workers send for stuck regions and runs lock_resolver.c.
 *
 * Thread: tkc_feed_new/start/stop/destroy on the owner's thread; the
 * helpers are safe from any thread (atomics, or a mutex for rare events).
 */
#include "feed.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed_int.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

static const char *const region_err_names[TKC_FEED_REGION_ERR_COUNT] = {
    "not_leader",  "epoch_not_match",     "region_not_found", "server_is_busy",
    "congested",   "duplicate_request",   "compatibility",    "cluster_id_mismatch",
    "unknown",     "stream",              "matcher",          "store",
};

const char *tkc_feed_region_err_name(int kind)
{
    if (kind >= 0 && kind < TKC_FEED_REGION_ERR_COUNT)
        return region_err_names[kind];
    return "?";
}

void tkc_feed_config_defaults(tkc_feed_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->feed_id = "default";
    cfg->workers = 2;
    cfg->alter_interval_ms = TKC_STREAM_TABLE_ALTER_INTERVAL_MS_DEFAULT;
    cfg->stuck_threshold_ms = 20000;
    cfg->stuck_check_interval_ms = 2000;
    cfg->resolve_lock_interval_ms = 10000;
    cfg->gc_ttl_s = 86400;
    cfg->gc_update_interval_ms = 30000;
    cfg->ticdc_version = "8.5.0";
    cfg->v2_features = "stream-multiplexing";
    cfg->grpc_window_bytes = 65535;
    cfg->max_recv_bytes = 256 << 20;
    cfg->keepalive_ms = 10000;
    cfg->keepalive_timeout_ms = 3000;
    cfg->pd_timeout_ms = 5000;
    cfg->kv_timeout_ms = 5000;
    cfg->region_scan_limit = 1024;
    cfg->region_retry_ms = 100;
    cfg->backoff_base_ms = 100;
    cfg->backoff_max_ms = 3000;
    cfg->connect_timeout_ms = 3000;
    cfg->stream_stall_timeout_ms = 30000;
    cfg->deregister_timeout_ms = 10000;
    cfg->poll_ms = 10;
}

void tkc_feed_table_span(int64_t table_id, tkc_feed_table_span_t *out)
{
    tkc_keycodec_table_record_span(table_id, out->start, out->end);
    out->range.start = out->start;
    out->range.start_len = sizeof(out->start);
    out->range.end = out->end;
    out->range.end_len = sizeof(out->end);
}

/* ===== shared helpers ===== */

int64_t tkc_feed_backoff_ms(const tkc_feed_t *f, int attempt, uint64_t *rng)
{
    if (attempt <= 0)
        return 0;
    int64_t d = f->cfg.backoff_base_ms;
    for (int i = 1; i < attempt && d < f->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > f->cfg.backoff_max_ms)
        d = f->cfg.backoff_max_ms;
    /* jitter: [d/2, d] so that many regions failing together spread out */
    return d / 2 + (int64_t)(tkc_feed_rand(rng) % (uint64_t)(d / 2 + 1));
}

bool tkc_feed_stopping(const tkc_feed_t *f)
{
    return atomic_load_explicit(&f->stop, memory_order_relaxed);
}

bool tkc_feed_is_fatal(const tkc_feed_t *f)
{
    return atomic_load_explicit(&f->fatal, memory_order_relaxed);
}

void tkc_feed_set_fatal(tkc_feed_t *f, tkc_err_t err, const char *fmt, ...)
{
    pthread_mutex_lock(&f->fatal_mu);
    bool first = !atomic_load(&f->fatal);
    if (first) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->fatal_msg, sizeof(f->fatal_msg), fmt, ap);
        va_end(ap);
        f->fatal_err = err;
        atomic_store(&f->ctr.fatal, 1);
        atomic_store(&f->fatal, true);
    }
    pthread_mutex_unlock(&f->fatal_mu);
    if (first)
        tkc_log(TKC_LOG_ERROR, "feed", "event=feed_fatal err=%s msg=\"%s\"", tkc_err2name(err),
                f->fatal_msg);
}

void tkc_feed_fill_fatal_event(tkc_feed_t *f, tkc_feed_event_t *ev)
{
    pthread_mutex_lock(&f->fatal_mu);
    ev->kind = TKC_FEED_EVENT_ERROR;
    ev->err = f->fatal_err;
    snprintf(ev->message, sizeof(ev->message), "%s", f->fatal_msg);
    pthread_mutex_unlock(&f->fatal_mu);
}

void tkc_feed_note_pd_ts(tkc_feed_t *f, uint64_t ts)
{
    atomic_store(&f->pd_mono_ms, tkc_clock_mono_ms());
    atomic_store(&f->pd_ts, ts);
}

uint64_t tkc_feed_pd_now(const tkc_feed_t *f)
{
    uint64_t ts = atomic_load(&((tkc_feed_t *)f)->pd_ts);
    if (ts == 0)
        return 0;
    int64_t since = tkc_clock_mono_ms() - atomic_load(&((tkc_feed_t *)f)->pd_mono_ms);
    if (since < 0)
        since = 0;
    return tkc_tso_compose(tkc_tso_physical_ms(ts) + since, 0);
}

void tkc_feed_store_count(tkc_feed_t *f, uint64_t store_id, feed_store_counter_t c,
                          uint64_t stream_id)
{
    pthread_mutex_lock(&f->store_mu);
    tkc_feed_store_stats_t *s = NULL;
    for (size_t i = 0; i < f->n_store_stats && !s; i++)
        if (f->store_stats[i].store_id == store_id)
            s = &f->store_stats[i];
    if (!s && f->n_store_stats < TKC_FEED_MAX_STORES) {
        s = &f->store_stats[f->n_store_stats++];
        s->store_id = store_id;
    }
    if (s) {
        switch (c) {
        case FEED_STORE_OPENED:
            s->streams_opened++;
            s->streams_live++;
            if (stream_id > s->last_stream_id)
                s->last_stream_id = stream_id;
            break;
        case FEED_STORE_RETIRED:
            s->streams_retired++;
            if (s->streams_live > 0)
                s->streams_live--;
            break;
        case FEED_STORE_V1_FALLBACK:
            s->v1_fallbacks++;
            break;
        case FEED_STORE_CONNECT_TIMEOUT:
            s->connect_timeouts++;
            break;
        case FEED_STORE_STALL:
            s->stalls++;
            break;
        }
    }
    pthread_mutex_unlock(&f->store_mu);
}

void tkc_feed_msg_free(void *p)
{
    feed_msg_t *m = p;
    if (!m)
        return;
    tkc_feed_region_free_list(m->regions);
    tkc_free(m);
}

/* ===== configuration ===== */

/* "8.5.0", "v5.3.0-alpha" -> true when >= 5.3.0 (TiKV validates the cluster
 * id and batches resolved ts only for such clients, §3.11). */
static bool version_ok(const char *v)
{
    int a = 0, b = 0, c = 0;
    if (!v)
        return false;
    if (*v == 'v' || *v == 'V')
        v++;
    if (sscanf(v, "%d.%d.%d", &a, &b, &c) != 3)
        return false;
    return (long)a * 1000000 + (long)b * 1000 + c >= 5003000;
}

static bool config_check(const tkc_feed_config_t *c, char *errstr, size_t errstr_size)
{
    if (c->n_pd_endpoints == 0 || !c->pd_endpoints) {
        snprintf(errstr, errstr_size, "no PD endpoints configured");
        return false;
    }
    if (c->n_spans == 0 || !c->spans) {
        snprintf(errstr, errstr_size, "no spans to subscribe");
        return false;
    }
    for (size_t i = 0; i < c->n_spans; i++) {
        if (!tkc_keyrange_valid(&c->spans[i])) {
            snprintf(errstr, errstr_size, "span %zu is empty (start >= end)", i);
            return false;
        }
    }
    if (c->n_spans > UINT32_MAX - 1) {
        snprintf(errstr, errstr_size, "too many spans");
        return false;
    }
    if (c->workers < 1 || c->workers > TKC_FEED_MAX_WORKERS) {
        snprintf(errstr, errstr_size, "workers must be in 1..%d", TKC_FEED_MAX_WORKERS);
        return false;
    }
    if (!version_ok(c->ticdc_version)) {
        snprintf(errstr, errstr_size,
                 "ticdc_version \"%s\" must be a semver >= 5.3.0 (older versions get no "
                 "cluster-id check and per-region resolved ts)",
                 c->ticdc_version ? c->ticdc_version : "");
        return false;
    }
    if (c->alter_interval_ms < 0 || c->stuck_threshold_ms <= 0 ||
        c->stuck_check_interval_ms <= 0 || c->resolve_lock_interval_ms < 0 || c->gc_ttl_s <= 0 ||
        c->gc_update_interval_ms <= 0 || c->region_retry_ms <= 0 || c->backoff_base_ms <= 0 ||
        c->backoff_max_ms < c->backoff_base_ms || c->connect_timeout_ms <= 0 ||
        c->stream_stall_timeout_ms <= 0 || c->deregister_timeout_ms <= 0 || c->poll_ms <= 0 ||
        c->poll_ms > 1000 || c->region_scan_limit <= 0 || c->test_stream_cleanup_delay_ms < 0) {
        snprintf(errstr, errstr_size, "an interval, timeout or limit is out of range");
        return false;
    }
    if (c->feed_id && strlen(c->feed_id) > 200) {
        snprintf(errstr, errstr_size, "feed_id is too long");
        return false;
    }
    return true;
}

static uint8_t *encode_key(const uint8_t *raw, size_t len, size_t *out_len)
{
    *out_len = tkc_keycodec_encoded_len(len);
    uint8_t *enc = tkc_malloc(*out_len);
    tkc_keycodec_encode(raw, len, enc);
    return enc;
}

/* ===== lifecycle ===== */

static void *resolver_main(void *arg);

/* TEST ONLY: TKC_TEST_STREAM_CLEANUP_DELAY_MS (feed.h) sets
 * test_stream_cleanup_delay_ms when the configuration left it 0, so the
 * seed scenario can be run with the shipped binary. Loud, because a
 * production process must never have it. */
static void test_cleanup_delay_from_env(tkc_feed_config_t *c)
{
    const char *v = getenv("TKC_TEST_STREAM_CLEANUP_DELAY_MS");
    if (!v || !*v || c->test_stream_cleanup_delay_ms != 0)
        return;
    char *endp = NULL;
    long long ms = strtoll(v, &endp, 10);
    if (*endp != '\0' || ms < 0 || ms > 600000) {
        tkc_log(TKC_LOG_WARN, "feed",
                "event=test_env_ignored name=TKC_TEST_STREAM_CLEANUP_DELAY_MS value=\"%s\""
                " reason=\"not a number of ms in 0..600000\"",
                v);
        return;
    }
    if (ms == 0)
        return;
    c->test_stream_cleanup_delay_ms = ms;
    tkc_log(TKC_LOG_WARN, "feed",
            "event=test_stream_cleanup_delay_enabled delay_ms=%lld"
            " source=TKC_TEST_STREAM_CLEANUP_DELAY_MS note=\"TEST ONLY\"",
            ms);
}

static void feed_free(tkc_feed_t *f)
{
    for (int i = 0; i < f->n_workers; i++)
        tkc_feed_worker_destroy(f->workers[i]);
    tkc_feed_sched_destroy(f->sched);
    if (f->resolver_in)
        tkc_msgq_destroy(f->resolver_in, tkc_feed_msg_free);
    tkc_lock_resolver_destroy(f->resolver);
    tkc_pd_client_destroy(f->pd);
    /* last: every matcher (registered, pending or parked) is gone by now */
    for (int i = 0; i < TKC_FEED_MAX_WORKERS; i++)
        tkc_prewrite_spill_destroy(f->pw_spill[i]);
    for (size_t i = 0; i < f->n_spans; i++) {
        tkc_free(f->spans[i].enc_start);
        tkc_free(f->spans[i].enc_end);
    }
    tkc_free(f->spans);
    for (size_t i = 0; i < f->cfg.n_pd_endpoints; i++)
        tkc_free(f->pd_endpoints[i]);
    tkc_free(f->pd_endpoints);
    tkc_free(f->feed_id);
    tkc_free(f->ticdc_version);
    tkc_free(f->v2_features);
    tkc_free(f->service_id);
    tkc_free(f->tls_ca);
    tkc_free(f->tls_cert);
    tkc_free(f->tls_key);
    pthread_mutex_destroy(&f->fatal_mu);
    pthread_mutex_destroy(&f->store_mu);
    tkc_free(f);
}

tkc_feed_t *tkc_feed_new(const tkc_feed_config_t *cfg, tkc_msgq_t *out, tkc_err_t *err_out,
                         char *errstr, size_t errstr_size)
{
    char scratch[1];
    if (!errstr) {
        errstr = scratch;
        errstr_size = sizeof(scratch);
    }
    tkc_err_t dummy;
    if (!err_out)
        err_out = &dummy;
    *err_out = TKC_ERR_CONF;
    if (!cfg || !out || !config_check(cfg, errstr, errstr_size)) {
        if (!cfg || !out)
            snprintf(errstr, errstr_size, "no configuration or no output queue");
        return NULL;
    }

    tkc_feed_t *f = tkc_calloc(1, sizeof(*f));
    pthread_mutex_init(&f->fatal_mu, NULL);
    pthread_mutex_init(&f->store_mu, NULL);
    f->cfg = *cfg;
    f->out = out;
    test_cleanup_delay_from_env(&f->cfg);
    f->feed_id = tkc_strdup(cfg->feed_id ? cfg->feed_id : "default");
    f->ticdc_version = tkc_strdup(cfg->ticdc_version);
    f->v2_features = tkc_strdup(cfg->v2_features ? cfg->v2_features : "");
    size_t sid_len = strlen(f->feed_id) + 32;
    f->service_id = tkc_malloc(sid_len);
    snprintf(f->service_id, sid_len, "tikv-kafka-cdc-%s", f->feed_id);
    f->pd_endpoints = tkc_calloc(cfg->n_pd_endpoints, sizeof(char *));
    for (size_t i = 0; i < cfg->n_pd_endpoints; i++)
        f->pd_endpoints[i] = tkc_strdup(cfg->pd_endpoints[i]);
    f->tls_ca = cfg->tls.ca_path ? tkc_strdup(cfg->tls.ca_path) : NULL;
    f->tls_cert = cfg->tls.cert_path ? tkc_strdup(cfg->tls.cert_path) : NULL;
    f->tls_key = cfg->tls.key_path ? tkc_strdup(cfg->tls.key_path) : NULL;
    f->cfg.feed_id = f->feed_id;
    f->cfg.ticdc_version = f->ticdc_version;
    f->cfg.v2_features = f->v2_features;
    f->cfg.pd_endpoints = (const char *const *)f->pd_endpoints;
    f->cfg.tls.ca_path = f->tls_ca;
    f->cfg.tls.cert_path = f->tls_cert;
    f->cfg.tls.key_path = f->tls_key;
    f->cfg.spans = NULL;

    f->n_spans = cfg->n_spans;
    f->spans = tkc_calloc(cfg->n_spans, sizeof(*f->spans));
    for (size_t i = 0; i < cfg->n_spans; i++) {
        const tkc_keyrange_t *r = &cfg->spans[i];
        /* empty raw bounds stay empty (-inf / +inf) in encoded form */
        if (r->start_len)
            f->spans[i].enc_start = encode_key(r->start, r->start_len, &f->spans[i].enc_start_len);
        if (r->end_len)
            f->spans[i].enc_end = encode_key(r->end, r->end_len, &f->spans[i].enc_end_len);
    }
    f->chan_opts = (tkc_rpc_channel_opts_t){
        .max_recv_bytes = cfg->max_recv_bytes,
        .keepalive_ms = cfg->keepalive_ms,
        .keepalive_timeout_ms = cfg->keepalive_timeout_ms,
        .stream_window_bytes = cfg->grpc_window_bytes,
        .connect_timeout_ms = (int)cfg->connect_timeout_ms,
        .max_backoff_ms = (int)cfg->backoff_max_ms,
    };
    atomic_init(&f->next_request_id, 1000000);

    tkc_pd_config_t pc = {
        .endpoints = (const char *const *)f->pd_endpoints,
        .n_endpoints = cfg->n_pd_endpoints,
        .tls = f->cfg.tls,
        .timeout_ms = cfg->pd_timeout_ms,
        .caller_id = "tikv-kafka-cdc",
    };
    f->pd = tkc_pd_client_new(&pc, errstr, errstr_size);
    if (!f->pd) {
        *err_out = TKC_ERR_TRANSPORT;
        goto fail;
    }
    f->cluster_id = tkc_pd_client_cluster_id(f->pd);

    f->start_ts = cfg->start_ts;
    if (f->start_ts == 0 && tkc_pd_client_get_ts(f->pd, &f->start_ts) != TKC_ERR_OK) {
        snprintf(errstr, errstr_size, "cannot get a start ts from PD's TSO");
        *err_out = TKC_ERR_TRANSPORT;
        goto fail;
    }
    atomic_store(&f->checkpoint, f->start_ts);

    uint64_t min_sp = 0;
    tkc_err_t err = tkc_pd_client_update_service_safepoint(f->pd, f->service_id, cfg->gc_ttl_s,
                                                           f->start_ts, &min_sp);
    if (err != TKC_ERR_OK) {
        snprintf(errstr, errstr_size, "cannot set the service GC safepoint %s at %" PRIu64 ": %s",
                 f->service_id, f->start_ts, tkc_err2str(err));
        *err_out = TKC_ERR_TRANSPORT;
        goto fail;
    }
    if (min_sp > f->start_ts) {
        snprintf(errstr, errstr_size,
                 "refusing to start: PD's GC safepoint %" PRIu64 " is above the start ts %" PRIu64
                 ", so TiKV may already have removed versions the feed must read (the history "
                 "is gone); start from a ts >= %" PRIu64 " or restore from a newer checkpoint",
                 min_sp, f->start_ts, min_sp);
        *err_out = TKC_FEED_ERR_SNAPSHOT_LOST;
        goto fail;
    }
    atomic_store(&f->ctr.gc_safepoint, f->start_ts);

    tkc_lock_resolver_config_t lc = {
        .tls = f->cfg.tls,
        .chan_opts = f->chan_opts,
        .timeout_ms = cfg->kv_timeout_ms,
    };
    f->resolver = tkc_lock_resolver_new(f->pd, &lc);
    f->resolver_in = tkc_msgq_new(SIZE_MAX / 4);
    f->n_workers = cfg->workers;
    atomic_init(&f->pw_bytes, 0);
    f->cfg.prewrite_spill_dir = NULL; /* borrowed: used only below */
    if (cfg->prewrite_spill_dir && *cfg->prewrite_spill_dir && cfg->prewrite_budget) {
        for (int i = 0; i < f->n_workers; i++) {
            f->pw_spill[i] = tkc_prewrite_spill_new(cfg->prewrite_spill_dir, &f->pw_bytes,
                                                    cfg->prewrite_budget, errstr, errstr_size);
            if (!f->pw_spill[i]) {
                *err_out = TKC_ERR_IO;
                goto fail;
            }
        }
    }
    for (int i = 0; i < f->n_workers; i++)
        f->workers[i] = tkc_feed_worker_new(f, i);
    f->sched = tkc_feed_sched_new(f);
    tkc_log(TKC_LOG_INFO, "feed",
            "event=feed_ready feed_id=%s cluster_id=%" PRIu64 " start_ts=%" PRIu64
            " spans=%zu workers=%d gc_service=%s",
            f->feed_id, f->cluster_id, f->start_ts, f->n_spans, f->n_workers, f->service_id);
    *err_out = TKC_ERR_OK;
    return f;
fail:
    feed_free(f);
    return NULL;
}

tkc_err_t tkc_feed_start(tkc_feed_t *f)
{
    if (f->started)
        return TKC_ERR_INVALID_ARG;
    f->started = true;
    for (int i = 0; i < f->n_workers; i++)
        tkc_feed_worker_start(f->workers[i]);
    pthread_create(&f->resolver_thr, NULL, resolver_main, f);
    tkc_feed_sched_start(f->sched);
    return TKC_ERR_OK;
}

void tkc_feed_stop(tkc_feed_t *f)
{
    if (!f || !f->started || atomic_load(&f->stop))
        return;
    atomic_store(&f->stop, true);
    tkc_feed_sched_join(f->sched);
    pthread_join(f->resolver_thr, NULL);
    for (int i = 0; i < f->n_workers; i++)
        tkc_feed_worker_join(f->workers[i]);
    tkc_log(TKC_LOG_INFO, "feed", "event=feed_stopped feed_id=%s", f->feed_id);
}

void tkc_feed_destroy(tkc_feed_t *f)
{
    if (!f)
        return;
    tkc_feed_stop(f);
    feed_free(f);
}

uint64_t tkc_feed_start_ts(const tkc_feed_t *f)
{
    return f->start_ts;
}

uint64_t tkc_feed_cluster_id(const tkc_feed_t *f)
{
    return f->cluster_id;
}

size_t tkc_feed_span_count(const tkc_feed_t *f)
{
    return f->n_spans;
}

bool tkc_feed_span_encoded(const tkc_feed_t *f, size_t i, tkc_keyrange_t *out)
{
    if (i >= f->n_spans)
        return false;
    out->start = f->spans[i].enc_start;
    out->start_len = f->spans[i].enc_start_len;
    out->end = f->spans[i].enc_end;
    out->end_len = f->spans[i].enc_end_len;
    return true;
}

void tkc_feed_set_checkpoint(tkc_feed_t *f, uint64_t ts)
{
    uint64_t cur = atomic_load(&f->checkpoint);
    while (ts > cur && !atomic_compare_exchange_weak(&f->checkpoint, &cur, ts)) {
    }
}

void tkc_feed_get_stats(tkc_feed_t *f, tkc_feed_stats_t *out)
{
    memset(out, 0, sizeof(*out));
#define X(name) out->name = atomic_load_explicit(&f->ctr.name, memory_order_relaxed);
    FEED_COUNTERS(X)
#undef X
    for (int i = 0; i < TKC_FEED_REGION_ERR_COUNT; i++)
        out->region_errors[i] = atomic_load_explicit(&f->ctr.region_errors[i], memory_order_relaxed);
    out->prewrite_bytes = atomic_load_explicit(&f->pw_bytes, memory_order_relaxed);
    for (int i = 0; i < TKC_FEED_MAX_WORKERS; i++)
        if (f->pw_spill[i])
            out->prewrite_spilled_bytes += tkc_prewrite_spill_written(f->pw_spill[i]);
    pthread_mutex_lock(&f->store_mu);
    out->n_stores = f->n_store_stats;
    memcpy(out->stores, f->store_stats, f->n_store_stats * sizeof(out->stores[0]));
    pthread_mutex_unlock(&f->store_mu);
}

const tkc_feed_store_stats_t *tkc_feed_stats_store(const tkc_feed_stats_t *st, uint64_t store_id)
{
    for (size_t i = 0; i < st->n_stores; i++)
        if (st->stores[i].store_id == store_id)
            return &st->stores[i];
    return NULL;
}

/* ===== resolver thread ===== */

static void *resolver_main(void *arg)
{
    tkc_feed_t *f = arg;
    pthread_setname_np(pthread_self(), "tkc-feed-lock");
    while (!tkc_feed_stopping(f)) {
        feed_msg_t *m = tkc_msgq_pop(f->resolver_in, 100, NULL);
        if (!m)
            continue;
        if (m->kind != FEED_MSG_RESOLVE || tkc_feed_is_fatal(f)) {
            tkc_feed_msg_free(m);
            continue;
        }
        FEED_COUNT(f, lock_resolve_runs);
        tkc_lock_resolver_result_t res;
        char errstr[256] = "";
        tkc_err_t err = tkc_lock_resolver_resolve_region(f->resolver, m->region_id, m->max_version,
                                                         &res, errstr, sizeof(errstr));
        if (err == TKC_ERR_OK) {
            FEED_ADD(f, locks_resolved, res.txns_committed + res.txns_rolled_back);
            tkc_log(res.txns_committed + res.txns_rolled_back ? TKC_LOG_INFO : TKC_LOG_DEBUG,
                    "feed",
                    "event=locks_resolved region_id=%" PRIu64 " max_version=%" PRIu64
                    " locks=%" PRIu64 " committed=%" PRIu64 " rolled_back=%" PRIu64
                    " alive=%" PRIu64,
                    m->region_id, m->max_version, res.locks_scanned, res.txns_committed,
                    res.txns_rolled_back, res.txns_alive);
        } else {
            FEED_COUNT(f, lock_resolve_errors);
        }
        tkc_feed_msg_free(m);
    }
    return NULL;
}
