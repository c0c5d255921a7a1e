/*
 * status.c: /status JSON, /healthz and the tikv_kafka_cdc_* metrics, all
 * computed at request time from the feed's and the pipeline's snapshots.
 *
 * Design:
 *  - Pull, not push. The feed keeps atomic counters and hands a copy out
 *    from any thread (tkc_feed_get_stats); the pipeline refreshes a
 *    snapshot every few ms (tkc_pipeline_metrics). A scrape copies both and
 *    derives everything else (lags, states), so the connector's threads do
 *    no extra work per row for monitoring, and nothing can drift between
 *    /metrics and /status: both come from the same read (read_all()).
 *  - Lag is measured against PD's clock when the feed has sampled it
 *    (tkc_feed_pd_now), the local wall clock otherwise: TiKV's resolved ts
 *    are PD timestamps, and a skewed local clock would show phantom lag.
 *    Before the frontier moves, the start ts stands in for the resolved ts
 *    and checkpoint, so a long initial scan shows a growing lag instead of
 *    nothing (the same convention as TiCDC's checkpoint lag).
 *  - A state the runner sets (starting, running, stopping, ...) is refined
 *    from the pipeline snapshot: RUNNING while the resolved ts is still the
 *    start ts is the initial scan (the frontier starts at the start ts and a
 *    region's resolved ts counts only after its INITIALIZED event, so the
 *    frontier's minimum moves only when every region of every span has
 *    finished its scan); a HELD or FAILED pipeline wins.
 *  - Initial-scan progress: the feed counts INITIALIZED events (cumulative)
 *    and live registrations (gauge). Their minimum is the number of regions
 *    initialized during the first scan; after re-subscriptions it can
 *    over-count, which is why /status says "estimate" and why the feed's
 *    own gauge should replace it (see the report to the lead).
 *  - Secrets never reach this module's output: the config summary is built
 *    from an allow-list of keys, pass-through properties with a secret name
 *    are masked, and URLs lose their user-info.
 */
#include "status.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/keycodec.h"
#include "util/log.h"
#include "util/mem.h"

#define MASK "******"

static const char *const state_names[TKC_STATUS_COUNT] = {
    "starting", "initial_scan", "running", "held", "stopping", "stopped", "failed"};

const char *tkc_status_state_name(int state)
{
    return state >= 0 && state < TKC_STATUS_COUNT ? state_names[state] : "?";
}

typedef struct fams_s {
    tkc_metric_t *build_info, *state, *up_seconds;
    tkc_metric_t *resolved_ts, *resolved_lag, *checkpoint_ts, *checkpoint_lag, *watermark_ts;
    tkc_metric_t *rows_produced, *bytes_produced, *rows_delivered;
    tkc_metric_t *watermarks, *checkpoints, *delivery_errors;
    tkc_metric_t *inflight_msgs, *inflight_bytes;
    tkc_metric_t *streams_opened, *streams_retired, *streams;
    tkc_metric_t *regions_subscribed, *regions_initialized, *region_inits, *region_errors;
    tkc_metric_t *lock_runs, *locks_resolved, *lock_errors;
    tkc_metric_t *mem_used, *mem_quota, *sorter_rows, *spilled_bytes, *spill_disk;
    tkc_metric_t *dups_dropped, *prewrite_pending, *prewrite_spilled;
    tkc_metric_t *feed_rows, *flow_pauses, *pd_errors, *gc_safepoint;
} fams_t;

struct tkc_status_s {
    pthread_mutex_t lock;
    tkc_status_sources_t src;
    tkc_status_state_t state;
    char error[512];
    char *feed_id;
    json_t *config; /* summary, no secrets */
    tkc_metrics_t *m;
    fams_t f;
    int64_t started_mono_ms;
};

/* ===== helpers ===== */

void tkc_status_strip_userinfo(const char *url, char *buf, size_t size)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');
    if (at && (!slash || at < slash))
        snprintf(buf, size, "%.*s%s", (int)(host - url), url, at + 1);
    else
        snprintf(buf, size, "%s", url);
}

void tkc_status_kafka_error_kind(int err, char *buf, size_t size)
{
    const char *name = rd_kafka_err2name((rd_kafka_resp_err_t)err);
    while (*name == '_')
        name++;
    size_t i = 0;
    for (; name[i] && i + 1 < size; i++)
        buf[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
    buf[i] = '\0';
}

/* ===== config summary ===== */

static json_t *strlist_json(const tkc_conf_strlist_t *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->v[i]));
    return a;
}

static json_t *config_summary(const tkc_conf_t *c)
{
    static const char *const kv_api[] = {"tidb", "rawkv", "txnkv"};
    static const char *const delivery[] = {"at-least-once", "exactly-once"};
    char buf[512];
    json_t *feed = json_object();
    json_object_set_new(feed, "id", json_string(c->feed.id));
    json_t *spans = json_array();
    for (size_t i = 0; i < c->feed.spans.n; i++) {
        const tkc_conf_span_t *sp = &c->feed.spans.v[i];
        char a[256], b[256], span[520];
        tkc_keycodec_hex(sp->start, sp->start_len, a, sizeof(a));
        tkc_keycodec_hex(sp->end, sp->end_len, b, sizeof(b));
        snprintf(span, sizeof(span), "%s..%s", a, b);
        json_array_append_new(spans, json_string(span));
    }
    json_object_set_new(feed, "spans", spans);
    json_t *tables = json_array();
    for (size_t i = 0; i < c->feed.tables.n; i++)
        json_array_append_new(tables, json_integer(c->feed.tables.v[i]));
    json_object_set_new(feed, "tables", tables);
    json_object_set_new(feed, "kv_api", json_string(kv_api[c->feed.kv_api]));
    json_object_set_new(feed, "delivery", json_string(delivery[c->feed.delivery]));
    tkc_conf_format_size(c->feed.memory_quota, buf, sizeof(buf));
    json_object_set_new(feed, "memory_quota", json_string(buf));
    json_object_set_new(feed, "workers", json_integer(c->feed.workers));
    json_object_set_new(feed, "spill_dir", json_string(c->feed.spill_dir));

    json_t *pd = json_object();
    json_object_set_new(pd, "endpoints", strlist_json(&c->pd.endpoints));
    json_object_set_new(pd, "tls", json_boolean(c->pd.ca[0] != '\0'));

    json_t *kafka = json_object();
    json_object_set_new(kafka, "bootstrap_servers", json_string(c->kafka.bootstrap_servers));
    json_object_set_new(kafka, "topic_prefix", json_string(c->kafka.topic_prefix));
    json_object_set_new(kafka, "partitions", json_integer(c->kafka.partitions));
    json_object_set_new(kafka, "replication_factor", json_integer(c->kafka.replication_factor));
    json_object_set_new(kafka, "embedded_mock_brokers",
                        json_integer(c->kafka.embedded_mock_brokers));
    json_t *props = json_object();
    for (size_t i = 0; i < c->kafka.props.n; i++) {
        const tkc_conf_prop_t *p = &c->kafka.props.v[i];
        json_object_set_new(props, p->name,
                            json_string(tkc_conf_name_is_secret(p->name) ? MASK : p->value));
    }
    json_object_set_new(kafka, "properties", props);

    json_t *sr = json_object();
    tkc_status_strip_userinfo(c->schema_registry.url, buf, sizeof(buf));
    json_object_set_new(sr, "url", json_string(buf));
    json_object_set_new(sr, "username", json_string(c->schema_registry.username));
    json_object_set_new(sr, "password_set", json_boolean(c->schema_registry.password[0] != '\0'));

    json_t *ck = json_object();
    json_object_set_new(ck, "store",
                        json_string(c->checkpoint.store == TKC_CONF_CHECKPOINT_FILE ? "file"
                                                                                    : "kafka"));
    json_object_set_new(ck, "path", json_string(c->checkpoint.path));

    json_t *cfg = json_object();
    json_object_set_new(cfg, "file", json_string(c->path));
    json_object_set_new(cfg, "feed", feed);
    json_object_set_new(cfg, "pd", pd);
    json_object_set_new(cfg, "kafka", kafka);
    json_object_set_new(cfg, "schema_registry", sr);
    json_object_set_new(cfg, "checkpoint", ck);
    json_object_set_new(cfg, "http_listen", json_string(c->http.listen));
    json_object_set_new(cfg, "log_level", json_string(tkc_log_level_name(c->log.level)));
    return cfg;
}

/* ===== reading the sources ===== */

typedef struct snap_s {
    bool have_feed, have_pl;
    tkc_feed_stats_t feed;
    tkc_pipeline_metrics_t pl;
    tkc_status_state_t state;
    char error[512];
    int64_t now_ms;       /* PD's clock or the wall clock */
    bool now_from_pd;
    uint64_t resolved_ts; /* effective: start ts before the frontier moves */
    uint64_t checkpoint_ts;
} snap_t;

/* With st->lock held. */
static void read_all(tkc_status_t *st, snap_t *s)
{
    memset(s, 0, sizeof(*s));
    const tkc_status_sources_t *src = &st->src;
    if (src->feed_stats) {
        src->feed_stats(src->opaque, &s->feed);
        s->have_feed = true;
    }
    if (src->pipeline_metrics) {
        src->pipeline_metrics(src->opaque, &s->pl);
        s->have_pl = true;
    }
    uint64_t pd_now = src->pd_now ? src->pd_now(src->opaque) : 0;
    s->now_from_pd = pd_now != 0;
    s->now_ms = pd_now ? tkc_tso_physical_ms(pd_now) : tkc_clock_wall_ms();

    s->state = st->state;
    snprintf(s->error, sizeof(s->error), "%s", st->error);
    if (s->have_pl) {
        s->resolved_ts = s->pl.resolved_ts ? s->pl.resolved_ts : s->pl.start_ts;
        s->checkpoint_ts = s->pl.checkpoint_ts ? s->pl.checkpoint_ts : s->pl.start_ts;
        if (s->state == TKC_STATUS_RUNNING) {
            if (s->pl.state == TKC_PIPELINE_FAILED) {
                s->state = TKC_STATUS_FAILED;
            } else if (s->pl.state == TKC_PIPELINE_HELD) {
                s->state = TKC_STATUS_HELD;
            } else if (s->pl.resolved_ts <= s->pl.start_ts) {
                s->state = TKC_STATUS_INITIAL_SCAN;
            }
            if (s->state != TKC_STATUS_RUNNING && s->state != TKC_STATUS_INITIAL_SCAN &&
                !s->error[0])
                snprintf(s->error, sizeof(s->error), "%s", s->pl.error);
        }
    }
    if (s->have_feed && s->feed.fatal && s->state == TKC_STATUS_RUNNING)
        s->state = TKC_STATUS_FAILED;
}

static void release(tkc_status_t *st, snap_t *s)
{
    if (s->have_pl && st->src.pipeline_metrics_free)
        st->src.pipeline_metrics_free(st->src.opaque, &s->pl);
}

static int64_t lag_ms(const snap_t *s, uint64_t ts)
{
    int64_t lag = s->now_ms - tkc_tso_physical_ms(ts);
    return lag > 0 ? lag : 0;
}

static uint64_t initialized_estimate(const snap_t *s)
{
    if (!s->have_feed)
        return 0;
    uint64_t init = s->feed.regions_initialized, active = s->feed.regions_active;
    return init < active ? init : active;
}

/* ===== metrics ===== */

#define L1(a) TKC_METRIC_LABELS(a)
#define L2(a, b) TKC_METRIC_LABELS(a, b)

static void collect(void *opaque, tkc_metrics_t *m)
{
    tkc_status_t *st = opaque;
    fams_t *f = &st->f;
    const char *id = st->feed_id;
    (void)m;
    pthread_mutex_lock(&st->lock);
    snap_t s;
    read_all(st, &s);

    for (int i = 0; i < TKC_STATUS_COUNT; i++)
        tkc_metric_set(tkc_metric_get(f->state, L2(id, state_names[i])), i == (int)s.state);
    tkc_metric_set(tkc_metric_get(f->up_seconds, L1(id)),
                   tkc_clock_mono_ms() - st->started_mono_ms);

    if (s.have_pl && s.resolved_ts) {
        tkc_metric_set(tkc_metric_get(f->resolved_ts, L1(id)), (int64_t)s.resolved_ts);
        tkc_metric_set(tkc_metric_get(f->resolved_lag, L1(id)), lag_ms(&s, s.resolved_ts));
    }
    if (s.have_pl && s.checkpoint_ts) {
        tkc_metric_set(tkc_metric_get(f->checkpoint_ts, L1(id)), (int64_t)s.checkpoint_ts);
        tkc_metric_set(tkc_metric_get(f->checkpoint_lag, L1(id)), lag_ms(&s, s.checkpoint_ts));
    }
    if (s.have_pl) {
        const tkc_pipeline_metrics_t *p = &s.pl;
        if (p->watermark_ts)
            tkc_metric_set(tkc_metric_get(f->watermark_ts, L1(id)), (int64_t)p->watermark_ts);
        for (size_t i = 0; i < p->n_topics; i++) {
            const tkc_pipeline_topic_stats_t *t = &p->topics[i];
            tkc_metric_set(tkc_metric_get(f->rows_produced, L2(id, t->topic)),
                           (int64_t)t->rows_produced);
            tkc_metric_set(tkc_metric_get(f->bytes_produced, L2(id, t->topic)),
                           (int64_t)t->bytes_produced);
            tkc_metric_set(tkc_metric_get(f->rows_delivered, L2(id, t->topic)),
                           (int64_t)t->rows_delivered);
        }
        tkc_metric_set(tkc_metric_get(f->watermarks, L1(id)), (int64_t)p->watermarks);
        tkc_metric_set(tkc_metric_get(f->checkpoints, L1(id)), (int64_t)p->checkpoints);
        /* Always present, so alerts on increase() see a 0 before the first error. */
        tkc_metric_get(f->delivery_errors, L2(id, "none"));
        for (size_t i = 0; i < p->sink.n_error_kinds; i++) {
            char kind[64];
            tkc_status_kafka_error_kind(p->sink.errors[i].err, kind, sizeof(kind));
            tkc_metric_set(tkc_metric_get(f->delivery_errors, L2(id, kind)),
                           (int64_t)p->sink.errors[i].count);
        }
        tkc_metric_set(tkc_metric_get(f->inflight_msgs, L1(id)), (int64_t)p->sink.inflight_msgs);
        tkc_metric_set(tkc_metric_get(f->inflight_bytes, L1(id)),
                       (int64_t)p->sink.inflight_bytes);
        tkc_metric_set(tkc_metric_get(f->mem_used, L1(id)), (int64_t)p->sorter.mem_bytes);
        tkc_metric_set(tkc_metric_get(f->mem_quota, L1(id)), (int64_t)p->sorter.memory_quota);
        tkc_metric_set(tkc_metric_get(f->sorter_rows, L1(id)), (int64_t)p->sorter.rows);
        tkc_metric_set(tkc_metric_get(f->spilled_bytes, L1(id)),
                       (int64_t)p->sorter.spilled_bytes_total);
        tkc_metric_set(tkc_metric_get(f->spill_disk, L1(id)), (int64_t)p->sorter.disk_bytes);
        tkc_metric_set(tkc_metric_get(f->dups_dropped, L1(id)), (int64_t)p->duplicates_dropped);
    }
    if (s.have_feed) {
        const tkc_feed_stats_t *fs = &s.feed;
        /* Stores come and go: show the ones in this snapshot only. */
        tkc_metric_hide_all(f->streams);
        for (size_t i = 0; i < fs->n_stores; i++) {
            const tkc_feed_store_stats_t *ss = &fs->stores[i];
            char store[24];
            snprintf(store, sizeof(store), "%llu", (unsigned long long)ss->store_id);
            tkc_metric_set(tkc_metric_get(f->streams_opened, L2(id, store)),
                           (int64_t)ss->streams_opened);
            tkc_metric_set(tkc_metric_get(f->streams_retired, L2(id, store)),
                           (int64_t)ss->streams_retired);
            tkc_metric_set(tkc_metric_get(f->streams, L2(id, store)), (int64_t)ss->streams_live);
        }
        tkc_metric_set(tkc_metric_get(f->regions_subscribed, L1(id)),
                       (int64_t)fs->regions_active);
        tkc_metric_set(tkc_metric_get(f->regions_initialized, L1(id)),
                       (int64_t)initialized_estimate(&s));
        tkc_metric_set(tkc_metric_get(f->region_inits, L1(id)), (int64_t)fs->regions_initialized);
        for (int k = 0; k < TKC_FEED_REGION_ERR_COUNT; k++)
            tkc_metric_set(tkc_metric_get(f->region_errors, L2(id, tkc_feed_region_err_name(k))),
                           (int64_t)fs->region_errors[k]);
        tkc_metric_set(tkc_metric_get(f->lock_runs, L1(id)), (int64_t)fs->lock_resolve_runs);
        tkc_metric_set(tkc_metric_get(f->locks_resolved, L1(id)), (int64_t)fs->locks_resolved);
        tkc_metric_set(tkc_metric_get(f->lock_errors, L1(id)), (int64_t)fs->lock_resolve_errors);
        tkc_metric_set(tkc_metric_get(f->feed_rows, L1(id)), (int64_t)fs->rows_emitted);
        tkc_metric_set(tkc_metric_get(f->flow_pauses, L1(id)), (int64_t)fs->flow_control_pauses);
        tkc_metric_set(tkc_metric_get(f->pd_errors, L1(id)), (int64_t)fs->pd_errors);
        tkc_metric_set(tkc_metric_get(f->prewrite_pending, L1(id)), (int64_t)fs->prewrite_bytes);
        tkc_metric_set(tkc_metric_get(f->prewrite_spilled, L1(id)),
                       (int64_t)fs->prewrite_spilled_bytes);
        if (fs->gc_safepoint)
            tkc_metric_set(tkc_metric_get(f->gc_safepoint, L1(id)), (int64_t)fs->gc_safepoint);
    }
    release(st, &s);
    pthread_mutex_unlock(&st->lock);
}

static void register_families(tkc_status_t *st)
{
    tkc_metrics_t *m = st->m;
    fams_t *f = &st->f;
    const tkc_metric_type_t C = TKC_METRIC_COUNTER, G = TKC_METRIC_GAUGE;
#define REG(field, type, name, help, labels, scale)                                          \
    f->field = tkc_metrics_register(m, type, "tikv_kafka_cdc_" name, help, labels, scale)
    REG(build_info, G, "build_info", "Always 1; the version label says which build runs.",
        "version", 0);
    REG(state, G, "feed_state",
        "1 for the feed's current state (starting, initial_scan, running, held, stopping, "
        "stopped, failed), 0 for the others.",
        "feed,state", 0);
    REG(up_seconds, G, "uptime_seconds", "Seconds since the connector started.", "feed", 3);
    REG(resolved_ts, G, "resolved_ts",
        "The feed's resolved ts (TSO): every change with commit_ts <= it has been received. "
        "The start ts until the initial scan is done.",
        "feed", 0);
    REG(resolved_lag, G, "resolved_ts_lag_seconds",
        "PD time minus the physical time of the resolved ts.", "feed", 3);
    REG(checkpoint_ts, G, "checkpoint_ts",
        "The last committed checkpoint (TSO): every change with commit_ts <= it is in Kafka.",
        "feed", 0);
    REG(checkpoint_lag, G, "checkpoint_lag_seconds",
        "PD time minus the physical time of the checkpoint.", "feed", 3);
    REG(watermark_ts, G, "watermark_ts", "The newest watermark Kafka acknowledged (TSO).",
        "feed", 0);
    REG(rows_produced, C, "rows_produced_total", "Row-change messages produced, per topic.",
        "feed,topic", 0);
    REG(bytes_produced, C, "produced_bytes_total",
        "Bytes (key + value) of row-change messages produced, per topic.", "feed,topic", 0);
    REG(rows_delivered, C, "rows_delivered_total",
        "Row-change messages Kafka acknowledged, per topic.", "feed,topic", 0);
    REG(watermarks, C, "watermarks_total", "Watermarks acknowledged by Kafka.", "feed", 0);
    REG(checkpoints, C, "checkpoints_total", "Checkpoints committed.", "feed", 0);
    REG(delivery_errors, C, "delivery_errors_total",
        "Messages Kafka or librdkafka rejected, by error kind (librdkafka error name).",
        "feed,kind", 0);
    REG(inflight_msgs, G, "kafka_inflight_messages",
        "Messages produced and not yet acknowledged.", "feed", 0);
    REG(inflight_bytes, G, "kafka_inflight_bytes",
        "Bytes produced and not yet acknowledged (key + value + per-message overhead).",
        "feed", 0);
    REG(streams_opened, C, "streams_opened_total", "EventFeed streams opened, per TiKV store.",
        "feed,store", 0);
    REG(streams_retired, C, "streams_retired_total",
        "EventFeed streams retired, per TiKV store.", "feed,store", 0);
    REG(streams, G, "streams", "EventFeed streams open now, per TiKV store.", "feed,store", 0);
    REG(regions_subscribed, G, "regions_subscribed",
        "Region subscriptions currently registered on a stream.", "feed", 0);
    REG(regions_initialized, G, "regions_initialized",
        "Subscribed regions that finished their initial scan (estimate).", "feed", 0);
    REG(region_inits, C, "region_initializations_total",
        "INITIALIZED events received (a region finished a scan).", "feed", 0);
    REG(region_errors, C, "region_errors_total", "Region errors, by kind.", "feed,kind", 0);
    REG(lock_runs, C, "lock_resolutions_total",
        "Lock-resolution runs for regions whose resolved ts was stuck.", "feed", 0);
    REG(locks_resolved, C, "locks_resolved_total", "Locks resolved.", "feed", 0);
    REG(lock_errors, C, "lock_resolve_errors_total", "Lock-resolution runs that failed.", "feed",
        0);
    REG(mem_used, G, "memory_quota_used_bytes",
        "Bytes of rows the sorter holds, counted against its share of the memory quota.", "feed",
        0);
    REG(mem_quota, G, "memory_quota_bytes",
        "The sorter's share of the memory quota (memory_quota - queue - Kafka in flight).", "feed",
        0);
    REG(sorter_rows, G, "sorter_rows", "Rows waiting for their resolved ts (memory and disk).",
        "feed", 0);
    REG(spilled_bytes, C, "spilled_bytes_total", "Bytes of rows written to spill files.", "feed",
        0);
    REG(spill_disk, G, "spill_disk_bytes", "Bytes of spill files on disk now.", "feed", 0);
    REG(dups_dropped, C, "duplicates_dropped_total",
        "Re-sent copies of a (key, commit_ts) dropped at release (after re-subscriptions).",
        "feed", 0);
    REG(prewrite_pending, G, "prewrite_pending_bytes",
        "Bytes of prewritten values waiting in memory for their commit (counted with a "
        "spill_dir only).",
        "feed", 0);
    REG(prewrite_spilled, C, "prewrite_spilled_bytes_total",
        "Bytes of prewritten values written to the prewrite spill files (huge transactions).",
        "feed", 0);
    REG(feed_rows, C, "feed_rows_total", "Committed rows received from TiKV.", "feed", 0);
    REG(flow_pauses, C, "flow_control_pauses_total",
        "Times a feed worker stopped reading from TiKV because the pipeline was full.", "feed",
        0);
    REG(pd_errors, C, "pd_errors_total", "Failed PD calls.", "feed", 0);
    REG(gc_safepoint, G, "gc_safepoint_ts", "The service GC safepoint the feed holds (TSO).",
        "feed", 0);
#undef REG
    tkc_metric_set(tkc_metric_get(f->build_info, L1(TKC_VERSION)), 1);
}

/* ===== public ===== */

tkc_status_t *tkc_status_new(const tkc_conf_t *conf, tkc_metrics_t *m)
{
    tkc_status_t *st = tkc_calloc(1, sizeof(*st));
    pthread_mutex_init(&st->lock, NULL);
    st->state = TKC_STATUS_STARTING;
    st->feed_id = tkc_strdup(conf->feed.id);
    st->config = config_summary(conf);
    st->m = m;
    st->started_mono_ms = tkc_clock_mono_ms();
    register_families(st);
    tkc_metrics_add_collector(m, collect, st);
    return st;
}

void tkc_status_destroy(tkc_status_t *st)
{
    if (!st)
        return;
    json_decref(st->config);
    tkc_free(st->feed_id);
    pthread_mutex_destroy(&st->lock);
    tkc_free(st);
}

void tkc_status_set_sources(tkc_status_t *st, const tkc_status_sources_t *src)
{
    pthread_mutex_lock(&st->lock);
    if (src)
        st->src = *src;
    else
        memset(&st->src, 0, sizeof(st->src));
    pthread_mutex_unlock(&st->lock);
}

void tkc_status_set_state(tkc_status_t *st, tkc_status_state_t state, const char *error)
{
    pthread_mutex_lock(&st->lock);
    st->state = state;
    snprintf(st->error, sizeof(st->error), "%s", error ? error : "");
    pthread_mutex_unlock(&st->lock);
}

tkc_status_state_t tkc_status_state(tkc_status_t *st)
{
    pthread_mutex_lock(&st->lock);
    snap_t s;
    read_all(st, &s);
    release(st, &s);
    pthread_mutex_unlock(&st->lock);
    return s.state;
}

static json_t *ts_json(const snap_t *s, uint64_t ts, const char *what)
{
    json_t *o = json_object();
    char t[40];
    json_object_set_new(o, what, ts ? json_integer((json_int_t)ts) : json_null());
    if (ts) {
        tkc_clock_format_utc_ms(tkc_tso_physical_ms(ts), t, sizeof(t));
        json_object_set_new(o, "time", json_string(t));
        json_object_set_new(o, "lag_seconds", json_real((double)lag_ms(s, ts) / 1000.0));
    }
    return o;
}

char *tkc_status_json(tkc_status_t *st)
{
    pthread_mutex_lock(&st->lock);
    snap_t s;
    read_all(st, &s);
    json_t *root = json_object();
    json_object_set_new(root, "version", json_string(TKC_VERSION));
    json_object_set_new(root, "feed_id", json_string(st->feed_id));
    json_object_set_new(root, "state", json_string(tkc_status_state_name(s.state)));
    json_object_set_new(root, "error", s.error[0] ? json_string(s.error) : json_null());
    json_object_set_new(root, "uptime_seconds",
                        json_real((double)(tkc_clock_mono_ms() - st->started_mono_ms) / 1000.0));
    json_object_set_new(root, "clock", json_string(s.now_from_pd ? "pd" : "local"));

    if (s.have_pl) {
        const tkc_pipeline_metrics_t *p = &s.pl;
        json_object_set_new(root, "pipeline_state",
                            json_string(tkc_pipeline_state_name(p->state)));
        json_object_set_new(root, "start_ts", json_integer((json_int_t)p->start_ts));
        json_object_set_new(root, "resolved", ts_json(&s, s.resolved_ts, "ts"));
        json_object_set_new(root, "checkpoint", ts_json(&s, s.checkpoint_ts, "ts"));
        json_object_set_new(root, "watermark", ts_json(&s, p->watermark_ts, "ts"));
        json_object_set_new(root, "epoch", json_integer((json_int_t)p->epoch));

        json_t *kafka = json_object();
        json_object_set_new(kafka, "inflight_messages",
                            json_integer((json_int_t)p->sink.inflight_msgs));
        json_object_set_new(kafka, "inflight_bytes",
                            json_integer((json_int_t)p->sink.inflight_bytes));
        json_object_set_new(kafka, "produced", json_integer((json_int_t)p->sink.produced));
        json_object_set_new(kafka, "delivered", json_integer((json_int_t)p->sink.delivered));
        json_object_set_new(kafka, "failed", json_integer((json_int_t)p->sink.failed));
        json_t *topics = json_array();
        for (size_t i = 0; i < p->n_topics; i++) {
            json_t *t = json_object();
            json_object_set_new(t, "topic", json_string(p->topics[i].topic));
            json_object_set_new(t, "rows_produced",
                                json_integer((json_int_t)p->topics[i].rows_produced));
            json_object_set_new(t, "bytes_produced",
                                json_integer((json_int_t)p->topics[i].bytes_produced));
            json_object_set_new(t, "rows_delivered",
                                json_integer((json_int_t)p->topics[i].rows_delivered));
            json_array_append_new(topics, t);
        }
        json_object_set_new(kafka, "topics", topics);
        json_object_set_new(root, "kafka", kafka);

        json_t *sorter = json_object();
        json_object_set_new(sorter, "rows", json_integer((json_int_t)p->sorter.rows));
        json_object_set_new(sorter, "memory_bytes", json_integer((json_int_t)p->sorter.mem_bytes));
        json_object_set_new(sorter, "memory_quota",
                            json_integer((json_int_t)p->sorter.memory_quota));
        json_object_set_new(sorter, "spilled_bytes_total",
                            json_integer((json_int_t)p->sorter.spilled_bytes_total));
        json_object_set_new(sorter, "disk_bytes", json_integer((json_int_t)p->sorter.disk_bytes));
        json_object_set_new(root, "sorter", sorter);
    }

    json_t *scan = json_object();
    json_object_set_new(scan, "done",
                        json_boolean(s.have_pl && s.pl.resolved_ts > s.pl.start_ts));
    json_object_set_new(scan, "regions_initialized",
                        json_integer((json_int_t)initialized_estimate(&s)));
    json_object_set_new(scan, "regions_total",
                        json_integer((json_int_t)(s.have_feed ? s.feed.regions_active : 0)));
    json_object_set_new(scan, "estimate", json_true());
    json_object_set_new(root, "initial_scan", scan);

    json_t *stores = json_array();
    if (s.have_feed) {
        for (size_t i = 0; i < s.feed.n_stores; i++) {
            const tkc_feed_store_stats_t *ss = &s.feed.stores[i];
            json_t *o = json_object();
            json_object_set_new(o, "store_id", json_integer((json_int_t)ss->store_id));
            json_object_set_new(o, "stream_id", json_integer((json_int_t)ss->last_stream_id));
            json_object_set_new(o, "streams_live", json_integer((json_int_t)ss->streams_live));
            json_object_set_new(o, "streams_opened",
                                json_integer((json_int_t)ss->streams_opened));
            json_object_set_new(o, "streams_retired",
                                json_integer((json_int_t)ss->streams_retired));
            json_object_set_new(o, "v1_fallbacks", json_integer((json_int_t)ss->v1_fallbacks));
            json_object_set_new(o, "stalls", json_integer((json_int_t)ss->stalls));
            json_array_append_new(stores, o);
        }
        json_t *feed = json_object();
        json_object_set_new(feed, "regions_subscribed",
                            json_integer((json_int_t)s.feed.regions_active));
        json_object_set_new(feed, "rows", json_integer((json_int_t)s.feed.rows_emitted));
        json_t *errs = json_object();
        for (int k = 0; k < TKC_FEED_REGION_ERR_COUNT; k++)
            if (s.feed.region_errors[k])
                json_object_set_new(errs, tkc_feed_region_err_name(k),
                                    json_integer((json_int_t)s.feed.region_errors[k]));
        json_object_set_new(feed, "region_errors", errs);
        json_object_set_new(feed, "locks_resolved",
                            json_integer((json_int_t)s.feed.locks_resolved));
        json_object_set_new(root, "feed", feed);
    }
    json_object_set_new(root, "stores", stores);
    json_object_set_new(root, "config", json_deep_copy(st->config));
    release(st, &s);
    pthread_mutex_unlock(&st->lock);

    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(root);
    /* jansson allocates with malloc; hand out a tkc-owned copy. */
    char *out = tkc_strdup(text ? text : "{}");
    free(text);
    return out;
}

bool tkc_status_healthy(tkc_status_t *st, char *why, size_t why_size)
{
    pthread_mutex_lock(&st->lock);
    snap_t s;
    read_all(st, &s);
    release(st, &s);
    pthread_mutex_unlock(&st->lock);
    if (s.state == TKC_STATUS_RUNNING || s.state == TKC_STATUS_INITIAL_SCAN)
        return true;
    snprintf(why, why_size, "%s%s%s", tkc_status_state_name(s.state), s.error[0] ? ": " : "",
             s.error);
    return false;
}

char *tkc_status_http_json(void *opaque)
{
    return tkc_status_json(opaque);
}

bool tkc_status_http_healthy(void *opaque, char *why, size_t why_size)
{
    return tkc_status_healthy(opaque, why, why_size);
}
