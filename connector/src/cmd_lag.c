/*
 * cmd_lag.c: `tikv-kafka-cdc lag`: how far behind each feed is, judged from
 * outside the connector by what is in Kafka.
 *
 * It reads the watermark topic <prefix>.watermark (every partition, the last
 * --tail messages of each, read_committed so an aborted exactly-once batch
 * never counts), decodes each Avro Watermark with the codec, and keeps per
 * feed the highest resolved ts and the newest emitted-at time. Then:
 *   lag           = now - physical(resolved_ts)   (resolved_ts >> 18 is ms)
 *   watermark age = now - emitted_at of the newest watermark
 * "now" is this machine's clock: the point is to watch the connector from
 * where the consumers are, with no access to PD.
 *
 * A stuck connector shows both numbers growing; a connector that is alive
 * but behind (a stuck region, a slow catch-up) shows a small age and a large
 * lag. That distinction is why both are printed.
 *
 * Modes: one shot (print a table, exit 0 if any watermark was found, else
 * 1), --watch (re-print every --interval, reading new watermarks as they
 * arrive), --serve ADDR (the same numbers as Prometheus gauges on
 * /metrics, computed at scrape time). Watch and serve run until SIGINT or
 * SIGTERM and then exit 0.
 *
 * Threads: the main thread owns the consumer and the codec; in serve mode
 * the HTTP thread reads the per-feed table under a mutex.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "avro_codec.h"
#include "cli.h"
#include "http.h"
#include "metrics.h"
#include "run.h"
#include "schema_registry.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#ifndef TKC_DEFAULT_SCHEMA_DIR
#define TKC_DEFAULT_SCHEMA_DIR "/usr/share/tikv-kafka-cdc/schemas"
#endif

#define COMP "lag"
#define MAX_PARTITIONS 1024

typedef struct lag_feed_s {
    char *id;
    uint64_t resolved_ts;
    int64_t resolved_time_ms;
    int64_t emitted_at_ms;
    uint64_t count;
} lag_feed_t;

typedef struct lag_s {
    pthread_mutex_t lock;
    lag_feed_t *feeds;
    size_t n_feeds;
    uint64_t decode_errors;
    uint64_t messages;
    const char *only_feed;
    /* metrics (serve mode) */
    tkc_metric_t *f_resolved, *f_lag, *f_age, *f_count, *f_errors;
} lag_t;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tikv-kafka-cdc lag [--config FILE | --bootstrap-servers HOSTS] [options]\n"
            "\n"
            "Reads the watermark topic <prefix>.watermark and prints per feed its resolved\n"
            "ts, the time in it, the lag (now - that time) and the age of the newest\n"
            "watermark (now - when it was emitted).\n"
            "\n"
            "options:\n"
            "  -c, --config FILE             take Kafka, topic prefix, schema registry and\n"
            "                                librdkafka properties from the configuration\n"
            "      --env-file FILE           NAME=value lines applied like the environment\n"
            "  -b, --bootstrap-servers HOSTS Kafka brokers (overrides the configuration)\n"
            "      --topic-prefix PREFIX     default: the configuration's, else cdc\n"
            "      --topic TOPIC             the watermark topic (default <prefix>.watermark)\n"
            "      --schema-dir DIR          the .avsc files (default: the configuration's)\n"
            "      --schema-registry URL     to decode Confluent-framed messages\n"
            "      --feed ID                 only this feed\n"
            "      --tail N                  messages read back per partition (default 1000)\n"
            "      --timeout DURATION        to reach the end of the topic (default 10s)\n"
            "      --json                    one JSON object per feed instead of a table\n"
            "  -w, --watch                   print again every --interval until Ctrl-C\n"
            "      --interval DURATION       default 1s\n"
            "      --serve ADDR              serve the numbers as Prometheus metrics on\n"
            "                                http://ADDR/metrics until SIGINT/SIGTERM\n"
            "  -h, --help                    this text\n"
            "\n"
            "exit codes: 0 watermarks found (watch/serve: stopped by a signal), 1 no watermark\n"
            "or Kafka unreachable, 2 usage or configuration error.\n");
}

/* ===== per-feed table ===== */

static lag_feed_t *feed_get(lag_t *l, const char *id)
{
    for (size_t i = 0; i < l->n_feeds; i++)
        if (strcmp(l->feeds[i].id, id) == 0)
            return &l->feeds[i];
    l->feeds = tkc_realloc(l->feeds, (l->n_feeds + 1) * sizeof(lag_feed_t));
    lag_feed_t *f = &l->feeds[l->n_feeds++];
    memset(f, 0, sizeof(*f));
    f->id = tkc_strdup(id);
    return f;
}

static void on_message(lag_t *l, tkc_avro_codec_t *codec, const rd_kafka_message_t *msg)
{
    tkc_avro_watermark_t wm = {0};
    char err[256];
    tkc_err_t e = tkc_avro_codec_decode_watermark(codec, msg->payload, msg->len, &wm, err,
                                                  sizeof(err));
    pthread_mutex_lock(&l->lock);
    l->messages++;
    if (e != TKC_ERR_OK) {
        l->decode_errors++;
        pthread_mutex_unlock(&l->lock);
        tkc_log(TKC_LOG_WARN, COMP,
                "event=decode_failed partition=%" PRId32 " offset=%" PRId64 " err=%s msg=\"%s\"",
                msg->partition, msg->offset, tkc_err2name(e), err);
        return;
    }
    if (!l->only_feed || strcmp(l->only_feed, wm.feed_id) == 0) {
        lag_feed_t *f = feed_get(l, wm.feed_id);
        if (wm.resolved_ts > f->resolved_ts) {
            f->resolved_ts = wm.resolved_ts;
            f->resolved_time_ms = wm.resolved_time_ms;
        }
        if (wm.emitted_at_ms > f->emitted_at_ms)
            f->emitted_at_ms = wm.emitted_at_ms;
        f->count++;
    }
    pthread_mutex_unlock(&l->lock);
    tkc_avro_watermark_clear(&wm);
}

static void print_table(lag_t *l, bool json, bool header)
{
    int64_t now = tkc_clock_wall_ms();
    pthread_mutex_lock(&l->lock);
    if (!json) {
        if (header) {
            char t[40];
            tkc_clock_format_utc_ms(now, t, sizeof(t));
            printf("# %s\n", t);
        }
        printf("%-24s %-20s %-26s %12s %14s\n", "FEED", "RESOLVED_TS", "RESOLVED_TIME", "LAG",
               "WATERMARK_AGE");
    }
    for (size_t i = 0; i < l->n_feeds; i++) {
        const lag_feed_t *f = &l->feeds[i];
        char t[40];
        tkc_clock_format_utc_ms(f->resolved_time_ms, t, sizeof(t));
        double lag = (double)(now - f->resolved_time_ms) / 1000.0;
        double age = (double)(now - f->emitted_at_ms) / 1000.0;
        if (json)
            printf("{\"feed\":\"%s\",\"resolved_ts\":%" PRIu64
                   ",\"resolved_time\":\"%s\",\"lag_seconds\":%.3f,"
                   "\"watermark_age_seconds\":%.3f,\"watermarks\":%" PRIu64 "}\n",
                   f->id, f->resolved_ts, t, lag, age, f->count);
        else
            printf("%-24s %-20" PRIu64 " %-26s %11.3fs %13.3fs\n", f->id, f->resolved_ts, t, lag,
                   age);
    }
    pthread_mutex_unlock(&l->lock);
    fflush(stdout);
}

/* ===== metrics (serve) ===== */

static void collect(void *opaque, tkc_metrics_t *m)
{
    lag_t *l = opaque;
    (void)m;
    int64_t now = tkc_clock_wall_ms();
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->n_feeds; i++) {
        const lag_feed_t *f = &l->feeds[i];
        const char *const lab[] = {f->id};
        tkc_metric_set(tkc_metric_get(l->f_resolved, lab), (int64_t)f->resolved_ts);
        tkc_metric_set(tkc_metric_get(l->f_lag, lab), now - f->resolved_time_ms);
        tkc_metric_set(tkc_metric_get(l->f_age, lab), now - f->emitted_at_ms);
        tkc_metric_set(tkc_metric_get(l->f_count, lab), (int64_t)f->count);
    }
    tkc_metric_set(tkc_metric_get(l->f_errors, NULL), (int64_t)l->decode_errors);
    pthread_mutex_unlock(&l->lock);
}

static void register_metrics(lag_t *l, tkc_metrics_t *m)
{
    l->f_resolved =
        tkc_metrics_register(m, TKC_METRIC_GAUGE, "tikv_kafka_cdc_watermark_resolved_ts",
                             "Highest resolved ts (TSO) seen in the watermark topic.", "feed", 0);
    l->f_lag = tkc_metrics_register(m, TKC_METRIC_GAUGE, "tikv_kafka_cdc_watermark_lag_seconds",
                                    "Now minus the physical time of the highest watermark.",
                                    "feed", 3);
    l->f_age = tkc_metrics_register(m, TKC_METRIC_GAUGE, "tikv_kafka_cdc_watermark_age_seconds",
                                    "Now minus the emission time of the newest watermark.",
                                    "feed", 3);
    l->f_count = tkc_metrics_register(m, TKC_METRIC_COUNTER, "tikv_kafka_cdc_watermarks_read_total",
                                      "Watermarks read from the topic.", "feed", 0);
    l->f_errors = tkc_metrics_register(m, TKC_METRIC_COUNTER,
                                       "tikv_kafka_cdc_watermark_decode_errors_total",
                                       "Messages in the watermark topic that did not decode.",
                                       NULL, 0);
    tkc_metrics_add_collector(m, collect, l);
}

/* ===== Kafka ===== */

static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    tkc_log_level_t lv = level <= 3 ? TKC_LOG_ERROR : level <= 4 ? TKC_LOG_WARN : TKC_LOG_DEBUG;
    tkc_log(lv, COMP, "event=librdkafka fac=%s msg=\"%s\"", fac, buf);
}

static rd_kafka_t *consumer_new(const char *bootstrap, const tkc_conf_proplist_t *props,
                                char *err, size_t err_size)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char group[64];
    /* Required by the consumer API even with manual assignment; nothing is
     * committed under it (auto commit off). */
    snprintf(group, sizeof(group), "tikv-kafka-cdc-lag-%d", (int)getpid());
    const char *fixed[][2] = {{"enable.partition.eof", "true"},
                              {"enable.auto.commit", "false"},
                              {"enable.auto.offset.store", "false"},
                              {"isolation.level", "read_committed"},
                              {"reconnect.backoff.max.ms", "1000"},
                              {"group.id", group}};
    for (size_t i = 0; props && i < props->n; i++)
        if (rd_kafka_conf_set(kc, props->v[i].name, props->v[i].value, err, err_size) !=
            RD_KAFKA_CONF_OK)
            goto fail;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (rd_kafka_conf_set(kc, fixed[i][0], fixed[i][1], err, err_size) != RD_KAFKA_CONF_OK)
            goto fail;
    if (rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, err, err_size) != RD_KAFKA_CONF_OK)
        goto fail;
    rd_kafka_conf_set_log_cb(kc, kafka_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, err_size);
    if (!rk)
        goto fail;
    rd_kafka_poll_set_consumer(rk);
    return rk;
fail:
    rd_kafka_conf_destroy(kc);
    return NULL;
}

/* Assigns the last `tail` messages of every partition. @returns the
 * partition count, 0 if the topic does not exist, -1 on error. */
static int assign_tail(rd_kafka_t *rk, const char *topic, int64_t tail, int timeout_ms,
                       bool *eof, char *err, size_t err_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (e) {
        snprintf(err, err_size, "metadata: %s", rd_kafka_err2str(e));
        return -1;
    }
    int n = 0;
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        n = md->topics[0].partition_cnt;
    else if (md->topic_cnt == 1 && md->topics[0].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        snprintf(err, err_size, "metadata of %s: %s", topic, rd_kafka_err2str(md->topics[0].err));
        rd_kafka_metadata_destroy(md);
        return -1;
    }
    rd_kafka_metadata_destroy(md);
    if (n > MAX_PARTITIONS)
        n = MAX_PARTITIONS;
    if (n == 0)
        return 0;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++) {
        int64_t lo = 0, hi = 0;
        e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, timeout_ms);
        if (e) {
            snprintf(err, err_size, "offsets of %s [%d]: %s", topic, p, rd_kafka_err2str(e));
            rd_kafka_topic_partition_list_destroy(parts);
            return -1;
        }
        int64_t start = hi - tail > lo ? hi - tail : lo;
        eof[p] = start >= hi;
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = start;
    }
    e = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        snprintf(err, err_size, "assign: %s", rd_kafka_err2str(e));
        return -1;
    }
    return n;
}

/* Serves one poll; @returns true if a message or an event was handled. */
static bool poll_once(rd_kafka_t *rk, lag_t *l, tkc_avro_codec_t *codec, bool *eof, int n_parts,
                      int timeout_ms)
{
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, timeout_ms);
    if (!msg)
        return false;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (msg->partition >= 0 && msg->partition < n_parts)
            eof[msg->partition] = true;
    } else if (msg->err) {
        tkc_log(TKC_LOG_WARN, COMP, "event=consume_error err=\"%s\"",
                rd_kafka_message_errstr(msg));
    } else {
        on_message(l, codec, msg);
    }
    rd_kafka_message_destroy(msg);
    return true;
}

static bool all_eof(const bool *eof, int n)
{
    for (int i = 0; i < n; i++)
        if (!eof[i])
            return false;
    return true;
}

/* ===== the command ===== */

typedef struct lag_opts_s {
    const char *config, *env_file, *bootstrap, *prefix, *topic, *schema_dir, *registry, *feed,
        *serve;
    int64_t tail;
    int64_t timeout_ms, interval_ms;
    bool watch, json;
} lag_opts_t;

static int parse_opts(int argc, char **argv, lag_opts_t *o)
{
    enum { O_ENV = 256, O_PREFIX, O_TOPIC, O_SCHEMA, O_REG, O_FEED, O_TAIL, O_TIMEOUT, O_JSON,
           O_INTERVAL, O_SERVE };
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"env-file", required_argument, NULL, O_ENV},
                                         {"bootstrap-servers", required_argument, NULL, 'b'},
                                         {"topic-prefix", required_argument, NULL, O_PREFIX},
                                         {"topic", required_argument, NULL, O_TOPIC},
                                         {"schema-dir", required_argument, NULL, O_SCHEMA},
                                         {"schema-registry", required_argument, NULL, O_REG},
                                         {"feed", required_argument, NULL, O_FEED},
                                         {"tail", required_argument, NULL, O_TAIL},
                                         {"timeout", required_argument, NULL, O_TIMEOUT},
                                         {"json", no_argument, NULL, O_JSON},
                                         {"watch", no_argument, NULL, 'w'},
                                         {"interval", required_argument, NULL, O_INTERVAL},
                                         {"serve", required_argument, NULL, O_SERVE},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof(*o));
    o->tail = 1000;
    o->timeout_ms = 10000;
    o->interval_ms = 1000;
    optind = 1;
    int c;
    char err[256];
    while ((c = getopt_long(argc, argv, "c:b:wh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case O_ENV: o->env_file = optarg; break;
        case 'b': o->bootstrap = optarg; break;
        case O_PREFIX: o->prefix = optarg; break;
        case O_TOPIC: o->topic = optarg; break;
        case O_SCHEMA: o->schema_dir = optarg; break;
        case O_REG: o->registry = optarg; break;
        case O_FEED: o->feed = optarg; break;
        case O_JSON: o->json = true; break;
        case 'w': o->watch = true; break;
        case O_SERVE: o->serve = optarg; break;
        case O_TAIL: {
            char *end;
            o->tail = strtoll(optarg, &end, 10);
            if (*end || o->tail < 1) {
                fprintf(stderr, "lag: --tail: a positive number of messages\n");
                return TKC_EXIT_USAGE;
            }
            break;
        }
        case O_TIMEOUT:
        case O_INTERVAL: {
            int64_t ms;
            if (tkc_conf_parse_duration(optarg, &ms, err, sizeof(err)) != 0 || ms <= 0) {
                fprintf(stderr, "lag: --%s: %s\n", c == O_TIMEOUT ? "timeout" : "interval",
                        ms <= 0 && !err[0] ? "must be positive" : err);
                return TKC_EXIT_USAGE;
            }
            if (c == O_TIMEOUT)
                o->timeout_ms = ms;
            else
                o->interval_ms = ms;
            break;
        }
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return TKC_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return TKC_EXIT_USAGE;
    }
    return TKC_EXIT_OK;
}

int tkc_cmd_lag(int argc, char **argv)
{
    lag_opts_t o;
    int rc = parse_opts(argc, argv, &o);
    if (rc < 0)
        return TKC_EXIT_OK; /* --help */
    if (rc != TKC_EXIT_OK)
        return rc;

    tkc_conf_t *conf = NULL;
    tkc_schema_registry_t *sr = NULL;
    tkc_avro_codec_t *codec = NULL;
    rd_kafka_t *rk = NULL;
    tkc_metrics_t *m = NULL;
    tkc_http_t *http = NULL;
    bool *eof = NULL;
    lag_t l = {0};
    pthread_mutex_init(&l.lock, NULL);
    l.only_feed = o.feed;
    char err[1024];
    char topic[512];
    rc = TKC_EXIT_RUNTIME;

    if (o.config) {
        conf = tkc_cli_load_conf(o.config, o.env_file);
        if (!conf) {
            rc = TKC_EXIT_USAGE;
            goto out;
        }
        tkc_cli_apply_log(conf);
        if (!o.bootstrap && conf->kafka.embedded_mock_brokers) {
            fprintf(stderr, "lag: %s uses the embedded mock Kafka, which lives inside the "
                            "connector process; give --bootstrap-servers\n",
                    o.config);
            rc = TKC_EXIT_USAGE;
            goto out;
        }
    }
    const char *bootstrap = o.bootstrap ? o.bootstrap : conf ? conf->kafka.bootstrap_servers : NULL;
    if (!bootstrap || !*bootstrap) {
        fprintf(stderr, "lag: give --config FILE or --bootstrap-servers HOSTS\n");
        rc = TKC_EXIT_USAGE;
        goto out;
    }
    const char *prefix = o.prefix ? o.prefix : conf ? conf->kafka.topic_prefix : "cdc";
    if (o.topic)
        snprintf(topic, sizeof(topic), "%s", o.topic);
    else
        snprintf(topic, sizeof(topic), "%s.watermark", prefix);
    const char *schema_dir = o.schema_dir ? o.schema_dir
                             : conf       ? conf->kafka.schema_dir
                                          : TKC_DEFAULT_SCHEMA_DIR;
    const char *reg_url = o.registry ? o.registry
                          : conf && conf->schema_registry.url[0] ? conf->schema_registry.url
                                                                 : NULL;
    if (reg_url) {
        tkc_schema_registry_conf_t rc_conf;
        tkc_schema_registry_conf_init(&rc_conf);
        rc_conf.url = reg_url;
        if (conf && !o.registry) {
            const tkc_conf_schema_registry_t *s = &conf->schema_registry;
            rc_conf.username = *s->username ? s->username : NULL;
            rc_conf.password = *s->password ? s->password : NULL;
            rc_conf.ca_file = *s->ca ? s->ca : NULL;
            rc_conf.cert_file = *s->cert ? s->cert : NULL;
            rc_conf.key_file = *s->key ? s->key : NULL;
        }
        sr = tkc_schema_registry_new(&rc_conf, err, sizeof(err));
        if (!sr) {
            fprintf(stderr, "lag: schema registry: %s\n", err);
            rc = TKC_EXIT_USAGE;
            goto out;
        }
    }
    codec = tkc_avro_codec_new(schema_dir, sr, err, sizeof(err));
    if (!codec) {
        fprintf(stderr, "lag: schemas in %s: %s\n", schema_dir, err);
        rc = TKC_EXIT_USAGE;
        goto out;
    }
    rk = consumer_new(bootstrap, conf ? &conf->kafka.props : NULL, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "lag: Kafka client: %s\n", err);
        rc = TKC_EXIT_USAGE;
        goto out;
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (o.serve) {
        m = tkc_metrics_new();
        register_metrics(&l, m);
        tkc_http_config_t hc = {.listen = o.serve, .metrics = m};
        http = tkc_http_start(&hc, err, sizeof(err));
        if (!http) {
            fprintf(stderr, "lag: --serve %s: %s\n", o.serve, err);
            rc = TKC_EXIT_USAGE;
            goto out;
        }
        char host[256];
        int port;
        tkc_http_split_hostport(o.serve, host, sizeof(host), &port);
        printf("lag: serving http://%s%s%s:%d/metrics for %s\n", strchr(host, ':') ? "[" : "",
               host, strchr(host, ':') ? "]" : "", tkc_http_port(http), topic);
        fflush(stdout);
    }

    /* Catch up: the last --tail messages of every partition. The topic may
     * not exist yet in watch/serve mode: then look again every interval. */
    eof = tkc_calloc(MAX_PARTITIONS, sizeof(bool));
    int n_parts = 0;
    int64_t deadline = tkc_clock_mono_ms() + o.timeout_ms;
    for (;;) {
        n_parts = assign_tail(rk, topic, o.tail, (int)o.timeout_ms, eof, err, sizeof(err));
        if (n_parts > 0)
            break;
        if (n_parts < 0)
            tkc_log(TKC_LOG_WARN, COMP, "event=kafka_error topic=%s msg=\"%s\"", topic, err);
        if (!o.watch && !o.serve) {
            if (n_parts == 0)
                fprintf(stderr, "lag: topic %s does not exist (has the connector run?)\n", topic);
            else
                fprintf(stderr, "lag: cannot read %s: %s\n", topic, err);
            goto out;
        }
        if (stop_signal) {
            rc = TKC_EXIT_OK;
            goto out;
        }
        struct timespec ts = {(time_t)(o.interval_ms / 1000),
                              (long)(o.interval_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    while (!all_eof(eof, n_parts) && tkc_clock_mono_ms() < deadline && !stop_signal)
        poll_once(rk, &l, codec, eof, n_parts, 100);
    if (!all_eof(eof, n_parts))
        tkc_log(TKC_LOG_WARN, COMP, "event=catch_up_incomplete topic=%s timeout_ms=%" PRId64,
                topic, o.timeout_ms);

    if (!o.watch && !o.serve) {
        if (l.n_feeds == 0) {
            fprintf(stderr, "lag: no watermark%s%s in %s yet\n", o.feed ? " of feed " : "",
                    o.feed ? o.feed : "", topic);
            goto out;
        }
        print_table(&l, o.json, false);
        rc = TKC_EXIT_OK;
        goto out;
    }

    int64_t next_print = tkc_clock_mono_ms();
    while (!stop_signal) {
        if (o.watch && tkc_clock_mono_ms() >= next_print) {
            next_print += o.interval_ms;
            print_table(&l, o.json, true);
        }
        poll_once(rk, &l, codec, eof, n_parts, 100);
    }
    rc = TKC_EXIT_OK;

out:
    tkc_http_stop(http);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    tkc_metrics_destroy(m);
    tkc_avro_codec_destroy(codec);
    tkc_schema_registry_destroy(sr);
    tkc_conf_destroy(conf);
    for (size_t i = 0; i < l.n_feeds; i++)
        tkc_free(l.feeds[i].id);
    tkc_free(l.feeds);
    tkc_free(eof);
    pthread_mutex_destroy(&l.lock);
    return rc;
}
