/*
 * run.c: the connector's main loop: configuration -> codec -> pipeline ->
 * feed, then wait for a signal or a fatal error, then shut down in order.
 *
 * Start-up order, and why:
 *   1. schema registry client and Avro codec: a broken schema directory or
 *      registry URL is a configuration problem; find it before touching
 *      Kafka or PD.
 *   2. a PD client, used only as the pipeline's clock (now_tso): start-ts
 *      "now" and lag must be PD time, not the local clock.
 *   3. the pipeline is created and opened: producer, topics, transactional
 *      fencing, and the checkpoint read. Its start ts (the checkpoint, else
 *      the configured start ts, else PD's now) is where the feed begins.
 *   4. the feed is created at that ts: it registers the service GC safepoint
 *      and refuses to start when PD's safepoint is already above it
 *      (history lost).
 *   5. pipeline thread, then feed threads, start; the status turns RUNNING.
 * While running, once a second the committed checkpoint is handed to the
 * feed (tkc_feed_set_checkpoint) so the GC safepoint follows it, and every
 * 10 s a progress line is logged (initial scan or lag), so a long initial
 * scan or catch-up is visible without a metrics stack; and when a
 * registration burst ends (every region initialized again) the freed heap
 * is returned to the OS once (util/heap.h).
 *
 * Shutdown (SIGINT/SIGTERM, or the pipeline stopped on its own): the feed is
 * stopped first so no new events arrive, then the pipeline drains: it
 * releases what the frontier allows, flushes, writes the final watermark
 * and checkpoint (tkc_pipeline_stop + join). Then everything is destroyed
 * in reverse order of creation. The status sources are cleared before the
 * objects they point to are destroyed, so a scrape never reads freed memory.
 *
 * Exit codes: 0 after a clean stop by signal, 1 when something failed at
 * run time, 2 for configuration problems found only now (schemas, an
 * invalid pipeline or feed configuration), 3 for a configured feature the
 * feed does not implement (kv_api other than tidb).
 */
#include "run.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avro_codec.h"
#include "feed_event.h"
#include "pd_client.h"
#include "pipeline_avro.h"
#include "util/clock.h"
#include "util/heap.h"
#include "util/keycodec.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/msgq.h"
#include "util/ratelimit.h"

#define COMP "run"

/* ===== configuration mapping ===== */

static uint8_t *encode(tkc_run_maps_t *maps, const uint8_t *raw, size_t len, size_t *out_len)
{
    if (len == 0) {
        *out_len = 0;
        return NULL;
    }
    size_t n = tkc_keycodec_encoded_len(len);
    uint8_t *enc = tkc_malloc(n);
    tkc_keycodec_encode(raw, len, enc);
    maps->enc_keys = tkc_realloc(maps->enc_keys, (maps->n_enc_keys + 1) * sizeof(uint8_t *));
    maps->enc_keys[maps->n_enc_keys++] = enc;
    *out_len = n;
    return enc;
}

void tkc_run_map_config(const tkc_conf_t *conf, tkc_run_maps_t *maps, tkc_feed_config_t *fcfg,
                        tkc_pipeline_config_t *pcfg, tkc_schema_registry_conf_t *srcfg)
{
    memset(maps, 0, sizeof(*maps));
    size_t n = tkc_conf_span_count(conf);
    maps->n_spans = n;
    maps->raw_spans = tkc_calloc(n, sizeof(tkc_keyrange_t));
    maps->pl_spans = tkc_calloc(n, sizeof(tkc_pipeline_span_t));
    maps->span_names = tkc_calloc(n, sizeof(char *));
    maps->table_spans = tkc_calloc(conf->feed.tables.n ? conf->feed.tables.n : 1,
                                   sizeof(tkc_feed_table_span_t));
    for (size_t i = 0; i < n; i++) {
        tkc_keyrange_t raw;
        if (i < conf->feed.spans.n) {
            const tkc_conf_span_t *sp = &conf->feed.spans.v[i];
            raw = (tkc_keyrange_t){sp->start, sp->start_len, sp->end, sp->end_len};
        } else {
            tkc_feed_table_span_t *ts = &maps->table_spans[i - conf->feed.spans.n];
            tkc_feed_table_span(conf->feed.tables.v[i - conf->feed.spans.n], ts);
            raw = ts->range;
        }
        maps->raw_spans[i] = raw;
        char name[64];
        tkc_conf_span_name(conf, i, name, sizeof(name));
        maps->span_names[i] = tkc_strdup(name);
        tkc_pipeline_span_t *ps = &maps->pl_spans[i];
        ps->name = maps->span_names[i];
        ps->range.start = encode(maps, raw.start, raw.start_len, &ps->range.start_len);
        ps->range.end = encode(maps, raw.end, raw.end_len, &ps->range.end_len);
    }
    maps->pd_endpoints = tkc_calloc(conf->pd.endpoints.n ? conf->pd.endpoints.n : 1,
                                    sizeof(char *));
    for (size_t i = 0; i < conf->pd.endpoints.n; i++)
        maps->pd_endpoints[i] = conf->pd.endpoints.v[i];
    maps->props = tkc_calloc(conf->kafka.props.n ? conf->kafka.props.n : 1,
                             sizeof(tkc_kafka_prop_t));
    for (size_t i = 0; i < conf->kafka.props.n; i++) {
        maps->props[i].name = conf->kafka.props.v[i].name;
        maps->props[i].value = conf->kafka.props.v[i].value;
    }

    /* [feed] + [pd] -> the feed */
    fcfg->feed_id = conf->feed.id;
    fcfg->pd_endpoints = maps->pd_endpoints;
    fcfg->n_pd_endpoints = conf->pd.endpoints.n;
    fcfg->tls.ca_path = *conf->pd.ca ? conf->pd.ca : NULL;
    fcfg->tls.cert_path = *conf->pd.cert ? conf->pd.cert : NULL;
    fcfg->tls.key_path = *conf->pd.key ? conf->pd.key : NULL;
    fcfg->spans = maps->raw_spans;
    fcfg->n_spans = n;
    fcfg->start_ts = conf->feed.start_ts;
    fcfg->workers = conf->feed.workers;
    fcfg->alter_interval_ms = conf->feed.alter_interval_ms;
    fcfg->stuck_threshold_ms = conf->feed.stuck_threshold_ms;
    fcfg->gc_ttl_s = conf->feed.gc_ttl_ms / 1000;
    fcfg->pd_timeout_ms = (int)conf->pd.timeout_ms;
    fcfg->stream_stall_timeout_ms = conf->feed.stream_stall_timeout_ms;
    fcfg->connect_timeout_ms = conf->feed.connect_timeout_ms;
    fcfg->backoff_max_ms = conf->feed.backoff_max_ms;
    fcfg->prewrite_spill_dir = *conf->feed.spill_dir ? conf->feed.spill_dir : NULL;

    /* [feed] + [kafka] + [checkpoint] -> the pipeline */
    pcfg->feed_id = conf->feed.id;
    pcfg->topic_prefix = conf->kafka.topic_prefix;
    pcfg->spans = maps->pl_spans;
    pcfg->n_spans = n;
    pcfg->partitions = conf->kafka.partitions;
    pcfg->replication = conf->kafka.replication_factor;
    pcfg->watermark_all_partitions = conf->kafka.watermark_all_partitions;
    pcfg->watermark_interval_ms = conf->kafka.watermark_min_interval_ms;
    pcfg->checkpoint_store = conf->checkpoint.store == TKC_CONF_CHECKPOINT_FILE
                                 ? TKC_CHECKPOINT_STORE_FILE
                                 : TKC_CHECKPOINT_STORE_KAFKA;
    pcfg->checkpoint_path = *conf->checkpoint.path ? conf->checkpoint.path : NULL;
    pcfg->delivery = conf->feed.delivery == TKC_CONF_DELIVERY_EXACTLY_ONCE
                         ? TKC_DELIVERY_EXACTLY_ONCE
                         : TKC_DELIVERY_AT_LEAST_ONCE;
    /* memory_quota is the whole budget: the sorter gets what the queue and
     * the Kafka in-flight budget leave (conf.h, tkc_conf_memory_budget) */
    tkc_conf_memory_t mem;
    tkc_conf_memory_budget(conf, &mem);
    pcfg->memory_quota = (size_t)mem.sorter;
    fcfg->prewrite_budget = (size_t)mem.prewrite;
    pcfg->spill_dir = *conf->feed.spill_dir ? conf->feed.spill_dir : NULL;
    pcfg->disk_budget = conf->feed.spill_budget;
    pcfg->kafka_bootstrap = conf->kafka.bootstrap_servers;
    pcfg->kafka_props = maps->props;
    pcfg->n_kafka_props = conf->kafka.props.n;
    pcfg->kafka_mock_brokers = conf->kafka.embedded_mock_brokers;
    pcfg->max_inflight_bytes = (size_t)mem.inflight;
    pcfg->kafka_timeout_ms = conf->kafka.timeout_ms;
    pcfg->start_ts = conf->feed.start_ts;

    /* [schema_registry] */
    tkc_schema_registry_conf_init(srcfg);
    const tkc_conf_schema_registry_t *sr = &conf->schema_registry;
    srcfg->url = *sr->url ? sr->url : NULL;
    srcfg->username = *sr->username ? sr->username : NULL;
    srcfg->password = *sr->password ? sr->password : NULL;
    srcfg->ca_file = *sr->ca ? sr->ca : NULL;
    srcfg->cert_file = *sr->cert ? sr->cert : NULL;
    srcfg->key_file = *sr->key ? sr->key : NULL;
    srcfg->request_timeout_ms = (int)sr->timeout_ms;
}

void tkc_run_maps_fini(tkc_run_maps_t *maps)
{
    for (size_t i = 0; i < maps->n_enc_keys; i++)
        tkc_free(maps->enc_keys[i]);
    for (size_t i = 0; i < maps->n_spans; i++)
        tkc_free(maps->span_names[i]);
    tkc_free(maps->enc_keys);
    tkc_free(maps->span_names);
    tkc_free(maps->raw_spans);
    tkc_free(maps->table_spans);
    tkc_free(maps->pl_spans);
    tkc_free(maps->pd_endpoints);
    tkc_free(maps->props);
    memset(maps, 0, sizeof(*maps));
}

/* ===== running ===== */

typedef struct run_ctx_s {
    tkc_pd_client_t *pd;
    tkc_feed_t *feed;
    tkc_pipeline_t *pl;
    atomic_bool pipeline_stopped;
} run_ctx_t;

static tkc_err_t hook_now_tso(void *opaque, uint64_t *out)
{
    run_ctx_t *c = opaque;
    return c->pd ? tkc_pd_client_get_ts(c->pd, out) : TKC_ERR_NOT_FOUND;
}

static void hook_stopped(void *opaque, tkc_err_t err, const char *message)
{
    run_ctx_t *c = opaque;
    (void)err;
    (void)message;
    atomic_store(&c->pipeline_stopped, true);
}

static void src_feed_stats(void *opaque, tkc_feed_stats_t *out)
{
    run_ctx_t *c = opaque;
    if (c->feed)
        tkc_feed_get_stats(c->feed, out);
}

static uint64_t src_pd_now(void *opaque)
{
    run_ctx_t *c = opaque;
    return c->feed ? tkc_feed_pd_now(c->feed) : 0;
}

static void src_pl_metrics(void *opaque, tkc_pipeline_metrics_t *out)
{
    run_ctx_t *c = opaque;
    tkc_pipeline_metrics(c->pl, out);
}

static void src_pl_metrics_free(void *opaque, tkc_pipeline_metrics_t *m)
{
    (void)opaque;
    tkc_pipeline_metrics_free(m);
}

static void set_sources(tkc_status_t *st, run_ctx_t *c, bool feed)
{
    if (!st)
        return;
    tkc_status_sources_t src = {
        .feed_stats = feed ? src_feed_stats : NULL,
        .pd_now = feed ? src_pd_now : NULL,
        .pipeline_metrics = src_pl_metrics,
        .pipeline_metrics_free = src_pl_metrics_free,
        .opaque = c,
    };
    tkc_status_set_sources(st, &src);
}

void tkc_run_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* After a registration burst (the initial scan, or the re-subscription of a
 * restarted store's regions) every subscribed region is initialized again:
 * the burst's request buffers are free now, give them back to the OS once. */
static void trim_after_burst(run_ctx_t *c, bool *burst)
{
    tkc_feed_stats_t fs;
    tkc_feed_get_stats(c->feed, &fs);
    bool open = fs.regions_initialized < fs.regions_active;
    if (*burst && !open && fs.regions_active > 0) {
        uint64_t released = tkc_heap_trim();
        tkc_log(TKC_LOG_INFO, COMP,
                "event=heap_trim regions=%" PRIu64 " rss_released_kib=%" PRIu64,
                fs.regions_active, released / 1024);
    }
    *burst = open;
}

static void log_progress(run_ctx_t *c)
{
    tkc_pipeline_metrics_t m;
    tkc_pipeline_metrics(c->pl, &m);
    tkc_feed_stats_t fs;
    tkc_feed_get_stats(c->feed, &fs);
    uint64_t now = tkc_feed_pd_now(c->feed);
    int64_t now_ms = now ? tkc_tso_physical_ms(now) : tkc_clock_wall_ms();
    if (m.resolved_ts <= m.start_ts) {
        tkc_log(TKC_LOG_INFO, COMP,
                "event=initial_scan regions_subscribed=%" PRIu64 " regions_initialized=%" PRIu64
                " rows=%" PRIu64 " elapsed_lag_ms=%" PRId64,
                fs.regions_active, fs.regions_initialized < fs.regions_active
                                       ? fs.regions_initialized
                                       : fs.regions_active,
                fs.rows_emitted, now_ms - tkc_tso_physical_ms(m.start_ts));
    } else {
        tkc_log(TKC_LOG_INFO, COMP,
                "event=progress resolved_ts=%" PRIu64 " resolved_lag_ms=%" PRId64
                " checkpoint_ts=%" PRIu64 " checkpoint_lag_ms=%" PRId64 " rows_delivered=%" PRIu64
                " inflight=%" PRIu64 " regions=%" PRIu64,
                m.resolved_ts, now_ms - tkc_tso_physical_ms(m.resolved_ts), m.checkpoint_ts,
                now_ms - tkc_tso_physical_ms(m.checkpoint_ts), m.rows_delivered,
                m.sink.inflight_msgs, fs.regions_active);
    }
    tkc_pipeline_metrics_free(&m);
}

int tkc_run(const tkc_conf_t *conf, tkc_status_t *st)
{
    char errstr[1024] = "";
    int rc = TKC_EXIT_RUNTIME;
    run_ctx_t ctx = {0};
    atomic_init(&ctx.pipeline_stopped, false);
    tkc_run_maps_t maps = {0};
    tkc_schema_registry_t *sr = NULL;
    tkc_avro_codec_t *codec = NULL;
    tkc_msgq_t *q = NULL;
    bool feed_started = false, pl_started = false, got_signal = false;

    if (conf->feed.kv_api != TKC_CONF_KV_API_TIDB) {
        tkc_log(TKC_LOG_ERROR, COMP,
                "event=unavailable msg=\"kv_api other than tidb is not implemented by the feed\"");
        return TKC_EXIT_UNAVAILABLE;
    }

    /* gRPC's global state: the PD client and the feed need it, and nothing
     * else in the process initialises it (tests do it in their own child). */
    grpc_init();
    tkc_feed_config_t fcfg;
    tkc_pipeline_config_t pcfg;
    tkc_schema_registry_conf_t srcfg;
    tkc_feed_config_defaults(&fcfg);
    tkc_pipeline_config_defaults(&pcfg);
    tkc_run_map_config(conf, &maps, &fcfg, &pcfg, &srcfg);

    /* 1. codec */
    if (srcfg.url) {
        sr = tkc_schema_registry_new(&srcfg, errstr, sizeof(errstr));
        if (!sr) {
            tkc_log(TKC_LOG_ERROR, COMP, "event=schema_registry_failed msg=\"%s\"", errstr);
            rc = TKC_EXIT_USAGE;
            goto out;
        }
    }
    codec = tkc_avro_codec_new(conf->kafka.schema_dir, sr, errstr, sizeof(errstr));
    if (!codec) {
        tkc_log(TKC_LOG_ERROR, COMP, "event=codec_failed schema_dir=\"%s\" msg=\"%s\"",
                conf->kafka.schema_dir, errstr);
        rc = TKC_EXIT_USAGE;
        goto out;
    }
    tkc_pipeline_codec_avro(&pcfg.codec, codec);

    /* 2. PD as the clock */
    tkc_pd_config_t pdcfg = {
        .endpoints = maps.pd_endpoints,
        .n_endpoints = conf->pd.endpoints.n,
        .tls = fcfg.tls,
        .timeout_ms = (int)conf->pd.timeout_ms,
    };
    ctx.pd = tkc_pd_client_new(&pdcfg, errstr, sizeof(errstr));
    if (!ctx.pd) {
        tkc_log(TKC_LOG_ERROR, COMP, "event=pd_unreachable msg=\"%s\"", errstr);
        goto out;
    }
    pcfg.now_tso = hook_now_tso;
    pcfg.stopped_cb = hook_stopped;
    pcfg.hook_opaque = &ctx;

    /* 3. pipeline */
    tkc_conf_memory_t mem;
    tkc_conf_memory_budget(conf, &mem);
    q = tkc_msgq_new((size_t)mem.queue);
    ctx.pl = tkc_pipeline_new(&pcfg, q, errstr, sizeof(errstr));
    if (!ctx.pl) {
        tkc_log(TKC_LOG_ERROR, COMP, "event=pipeline_invalid msg=\"%s\"", errstr);
        rc = TKC_EXIT_USAGE;
        goto out;
    }
    set_sources(st, &ctx, false);
    tkc_log(TKC_LOG_INFO, COMP, "event=opening kafka=\"%s\" topic_prefix=%s spans=%zu",
            conf->kafka.embedded_mock_brokers ? "(embedded mock)" : conf->kafka.bootstrap_servers,
            conf->kafka.topic_prefix, maps.n_spans);
    tkc_err_t err = tkc_pipeline_open(ctx.pl, errstr, sizeof(errstr));
    if (err != TKC_ERR_OK) {
        tkc_log(TKC_LOG_ERROR, COMP, "event=pipeline_open_failed err=%s msg=\"%s\"",
                tkc_err2name(err), errstr);
        if (st)
            tkc_status_set_state(st, TKC_STATUS_FAILED, errstr);
        goto out;
    }

    /* 4. feed, from the pipeline's start ts */
    fcfg.start_ts = tkc_pipeline_start_ts(ctx.pl);
    tkc_err_t ferr = TKC_ERR_OK;
    ctx.feed = tkc_feed_new(&fcfg, q, &ferr, errstr, sizeof(errstr));
    if (!ctx.feed) {
        tkc_log(TKC_LOG_ERROR, COMP, "event=feed_failed err=%s msg=\"%s\"", tkc_err2name(ferr),
                errstr);
        if (st)
            tkc_status_set_state(st, TKC_STATUS_FAILED, errstr);
        if (ferr == TKC_ERR_CONF)
            rc = TKC_EXIT_USAGE;
        goto out;
    }
    tkc_pd_client_destroy(ctx.pd); /* the feed keeps its own PD client */
    ctx.pd = NULL;
    set_sources(st, &ctx, true);

    /* 5. threads */
    if ((err = tkc_pipeline_start(ctx.pl, errstr, sizeof(errstr))) != TKC_ERR_OK) {
        tkc_log(TKC_LOG_ERROR, COMP, "event=pipeline_start_failed msg=\"%s\"", errstr);
        goto out;
    }
    pl_started = true;
    if ((err = tkc_feed_start(ctx.feed)) != TKC_ERR_OK) {
        tkc_log(TKC_LOG_ERROR, COMP, "event=feed_start_failed err=%s", tkc_err2name(err));
        goto out;
    }
    feed_started = true;
    if (st)
        tkc_status_set_state(st, TKC_STATUS_RUNNING, NULL);
    tkc_log(TKC_LOG_INFO, COMP, "event=running feed=%s start_ts=%" PRIu64, conf->feed.id,
            fcfg.start_ts);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int64_t last_tick = tkc_clock_mono_ms(), last_progress = last_tick;
    bool scan_burst = true;
    while (!atomic_load(&ctx.pipeline_stopped)) {
        struct timespec to = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&set, NULL, &to);
        if (sig == SIGINT || sig == SIGTERM) {
            tkc_log(TKC_LOG_INFO, COMP, "event=signal sig=%s msg=\"stopping: final watermark "
                                        "and checkpoint\"",
                    sig == SIGINT ? "SIGINT" : "SIGTERM");
            got_signal = true;
            break;
        }
        int64_t now = tkc_clock_mono_ms();
        if (now - last_tick >= 1000) {
            last_tick = now;
            tkc_pipeline_metrics_t m;
            tkc_pipeline_metrics(ctx.pl, &m);
            if (m.checkpoint_ts)
                tkc_feed_set_checkpoint(ctx.feed, m.checkpoint_ts);
            tkc_pipeline_metrics_free(&m);
            trim_after_burst(&ctx, &scan_burst);
            tkc_log_ratelimit_flush();
        }
        if (now - last_progress >= 10000) {
            last_progress = now;
            log_progress(&ctx);
        }
    }

out:
    if (st && (feed_started || pl_started))
        tkc_status_set_state(st, TKC_STATUS_STOPPING, NULL);
    if (ctx.feed)
        tkc_feed_stop(ctx.feed);
    if (ctx.pl && pl_started) {
        tkc_pipeline_stop(ctx.pl);
        char jerr[1024] = "";
        err = tkc_pipeline_join(ctx.pl, jerr, sizeof(jerr));
        if (err == TKC_ERR_OK && got_signal) {
            rc = TKC_EXIT_OK;
        } else if (err != TKC_ERR_OK) {
            tkc_log(TKC_LOG_ERROR, COMP, "event=stopped_on_error err=%s msg=\"%s\"",
                    tkc_err2name(err), jerr);
            snprintf(errstr, sizeof(errstr), "%s", jerr);
        }
        if (st)
            tkc_status_set_state(st, rc == TKC_EXIT_OK ? TKC_STATUS_STOPPED : TKC_STATUS_FAILED,
                                 rc == TKC_EXIT_OK ? NULL : errstr);
        if (ctx.pl) {
            tkc_pipeline_metrics_t m;
            tkc_pipeline_metrics(ctx.pl, &m);
            tkc_log(TKC_LOG_INFO, COMP,
                    "event=stopped checkpoint_ts=%" PRIu64 " rows_delivered=%" PRIu64, 
                    m.checkpoint_ts, m.rows_delivered);
            tkc_pipeline_metrics_free(&m);
        }
    }
    if (st)
        tkc_status_set_sources(st, NULL);
    tkc_feed_destroy(ctx.feed);
    if (ctx.pl)
        tkc_pipeline_destroy(ctx.pl);
    if (q)
        tkc_msgq_destroy(q, tkc_feed_event_free);
    tkc_pd_client_destroy(ctx.pd);
    tkc_avro_codec_destroy(codec);
    tkc_schema_registry_destroy(sr);
    tkc_run_maps_fini(&maps);
    grpc_shutdown();
    tkc_log_ratelimit_flush();
    return rc;
}
