/*
 * check_http.c: /metrics, /status and /healthz served by the real HTTP
 * module and status module, fed with fake feed and pipeline snapshots.
 *
 * /metrics is validated by a strict exposition-format checker written here
 * (format 0.0.4: HELP/TYPE before the samples of their family, families
 * contiguous, no duplicate series, label escaping, numeric values) and, when
 * Debian's promtool is installed, by `promtool check metrics` as well.
 */
#include <check.h>
#include <ctype.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "http.h"
#include "metrics.h"
#include "ops/ops_proc.h"
#include "status.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/mem.h"

/* ===== a strict Prometheus text-format checker ===== */

static bool metric_name_ok(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return false;
    return true;
}

/* Returns NULL if text is valid, else a description of the first problem
 * (static buffer). */
static const char *check_exposition(const char *text)
{
    static char why[512];
    char names_typed[256][128];
    size_t n_typed = 0;
    char seen_series[2048][256];
    size_t n_series = 0;
    char cur_family[128] = "";
    char finished[256][128];
    size_t n_finished = 0;
    int lineno = 0;
    const char *p = text;
    if (!*p)
        return "empty";
    while (*p) {
        lineno++;
        const char *nl = strchr(p, '\n');
        if (!nl) {
            snprintf(why, sizeof(why), "line %d: no final newline", lineno);
            return why;
        }
        char line[2048];
        size_t len = (size_t)(nl - p);
        if (len >= sizeof(line)) {
            snprintf(why, sizeof(why), "line %d: too long", lineno);
            return why;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        p = nl + 1;
        if (len == 0) {
            snprintf(why, sizeof(why), "line %d: empty line", lineno);
            return why;
        }
        if (line[0] == '#') {
            char kind[8], name[128], rest[1024] = "";
            if (sscanf(line, "# %7s %127s %1023[^\n]", kind, name, rest) < 2)
                continue; /* a plain comment */
            if (strcmp(kind, "HELP") != 0 && strcmp(kind, "TYPE") != 0)
                continue;
            if (!metric_name_ok(name, strlen(name))) {
                snprintf(why, sizeof(why), "line %d: bad name in %s", lineno, kind);
                return why;
            }
            if (strcmp(name, cur_family) != 0) {
                for (size_t i = 0; i < n_finished; i++)
                    if (strcmp(finished[i], name) == 0) {
                        snprintf(why, sizeof(why), "line %d: family %s is not contiguous",
                                 lineno, name);
                        return why;
                    }
                if (cur_family[0])
                    snprintf(finished[n_finished++], sizeof(finished[0]), "%s", cur_family);
                snprintf(cur_family, sizeof(cur_family), "%s", name);
            }
            if (strcmp(kind, "TYPE") == 0) {
                for (size_t i = 0; i < n_typed; i++)
                    if (strcmp(names_typed[i], name) == 0) {
                        snprintf(why, sizeof(why), "line %d: second TYPE for %s", lineno, name);
                        return why;
                    }
                if (strcmp(rest, "counter") && strcmp(rest, "gauge") && strcmp(rest, "histogram") &&
                    strcmp(rest, "summary") && strcmp(rest, "untyped")) {
                    snprintf(why, sizeof(why), "line %d: bad type '%s'", lineno, rest);
                    return why;
                }
                snprintf(names_typed[n_typed++], sizeof(names_typed[0]), "%s", name);
                if (strcmp(rest, "counter") == 0 &&
                    (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total") != 0)) {
                    snprintf(why, sizeof(why), "line %d: counter %s does not end in _total",
                             lineno, name);
                    return why;
                }
            } else if (!rest[0]) {
                snprintf(why, sizeof(why), "line %d: HELP without text", lineno);
                return why;
            }
            continue;
        }
        /* a sample: name{labels} value */
        size_t nlen = strcspn(line, "{ ");
        if (!metric_name_ok(line, nlen)) {
            snprintf(why, sizeof(why), "line %d: bad metric name", lineno);
            return why;
        }
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)nlen, line);
        if (strcmp(name, cur_family) != 0) {
            snprintf(why, sizeof(why), "line %d: sample %s outside its family's block (after %s)",
                     lineno, name, cur_family);
            return why;
        }
        bool typed = false;
        for (size_t i = 0; i < n_typed; i++)
            typed |= strcmp(names_typed[i], name) == 0;
        if (!typed) {
            snprintf(why, sizeof(why), "line %d: sample of %s before its TYPE", lineno, name);
            return why;
        }
        const char *q = line + nlen;
        char labels[64][64];
        size_t n_labels = 0;
        if (*q == '{') {
            q++;
            while (*q != '}') {
                const char *ln = q;
                while (isalnum((unsigned char)*q) || *q == '_')
                    q++;
                if (q == ln || *q != '=' || q[1] != '"') {
                    snprintf(why, sizeof(why), "line %d: bad label", lineno);
                    return why;
                }
                snprintf(labels[n_labels], sizeof(labels[0]), "%.*s", (int)(q - ln), ln);
                for (size_t i = 0; i < n_labels; i++)
                    if (strcmp(labels[i], labels[n_labels]) == 0) {
                        snprintf(why, sizeof(why), "line %d: label %s twice", lineno, labels[i]);
                        return why;
                    }
                n_labels++;
                q += 2;
                while (*q && *q != '"') {
                    if (*q == '\\') {
                        if (q[1] != '\\' && q[1] != '"' && q[1] != 'n') {
                            snprintf(why, sizeof(why), "line %d: bad escape", lineno);
                            return why;
                        }
                        q++;
                    }
                    q++;
                }
                if (*q != '"') {
                    snprintf(why, sizeof(why), "line %d: unterminated label value", lineno);
                    return why;
                }
                q++;
                if (*q == ',')
                    q++;
                else if (*q != '}') {
                    snprintf(why, sizeof(why), "line %d: expected , or }", lineno);
                    return why;
                }
            }
            q++;
        }
        char series[256];
        snprintf(series, sizeof(series), "%.*s", (int)(q - line), line);
        for (size_t i = 0; i < n_series; i++)
            if (strcmp(seen_series[i], series) == 0) {
                snprintf(why, sizeof(why), "line %d: duplicate series %s", lineno, series);
                return why;
            }
        if (n_series < 2048)
            snprintf(seen_series[n_series++], sizeof(seen_series[0]), "%s", series);
        if (*q != ' ') {
            snprintf(why, sizeof(why), "line %d: no space before the value", lineno);
            return why;
        }
        q++;
        char *end;
        double v = strtod(q, &end);
        if (end == q || (*end && *end != ' ')) {
            snprintf(why, sizeof(why), "line %d: bad value '%s'", lineno, q);
            return why;
        }
        if (isnan(v)) {
            snprintf(why, sizeof(why), "line %d: NaN", lineno);
            return why;
        }
        size_t L = strlen(name);
        if (L > 6 && strcmp(name + L - 6, "_total") == 0 && v < 0) {
            snprintf(why, sizeof(why), "line %d: negative counter", lineno);
            return why;
        }
    }
    return NULL;
}

/* ===== fake sources ===== */

#define START_TS ((uint64_t)1767323045000LL << 18)

typedef struct fake_s {
    uint64_t pd_now;
    tkc_pipeline_state_t pl_state;
    uint64_t resolved_ts, checkpoint_ts;
    char error[128];
} fake_t;

static void fake_feed(void *opaque, tkc_feed_stats_t *out)
{
    (void)opaque;
    memset(out, 0, sizeof(*out));
    out->regions_active = 12;
    out->regions_initialized = 9;
    out->rows_emitted = 1000;
    out->region_errors[TKC_FEED_REGION_ERR_NOT_LEADER] = 3;
    out->region_errors[TKC_FEED_REGION_ERR_EPOCH_NOT_MATCH] = 1;
    out->lock_resolve_runs = 2;
    out->prewrite_bytes = 4096;
    out->prewrite_spilled_bytes = 65536;
    out->locks_resolved = 5;
    out->n_stores = 2;
    out->stores[0] = (tkc_feed_store_stats_t){.store_id = 1, .streams_opened = 3,
                                              .streams_retired = 2, .streams_live = 1,
                                              .last_stream_id = 17};
    out->stores[1] = (tkc_feed_store_stats_t){.store_id = 4, .streams_opened = 1,
                                              .streams_live = 1, .last_stream_id = 21};
}

static uint64_t fake_pd_now(void *opaque)
{
    return ((fake_t *)opaque)->pd_now;
}

static void fake_pl(void *opaque, tkc_pipeline_metrics_t *out)
{
    fake_t *f = opaque;
    memset(out, 0, sizeof(*out));
    out->state = f->pl_state;
    snprintf(out->error, sizeof(out->error), "%s", f->error);
    out->start_ts = START_TS;
    out->resolved_ts = f->resolved_ts;
    out->checkpoint_ts = f->checkpoint_ts;
    out->watermark_ts = f->checkpoint_ts;
    out->watermarks = 7;
    out->checkpoints = 6;
    out->n_topics = 2;
    out->topics = tkc_calloc(2, sizeof(tkc_pipeline_topic_stats_t));
    snprintf(out->topics[0].topic, sizeof(out->topics[0].topic), "cdc.t100");
    out->topics[0].rows_produced = 42;
    out->topics[0].bytes_produced = 4200;
    out->topics[0].rows_delivered = 40;
    snprintf(out->topics[1].topic, sizeof(out->topics[1].topic), "cdc.span0");
    out->sink.inflight_msgs = 2;
    out->sink.inflight_bytes = 200;
    out->sink.n_error_kinds = 1;
    out->sink.errors[0].err = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
    out->sink.errors[0].count = 1;
    out->sorter.mem_bytes = 1024;
    out->sorter.memory_quota = 512u << 20;
    out->sorter.spilled_bytes_total = 77;
}

static void fake_pl_free(void *opaque, tkc_pipeline_metrics_t *m)
{
    (void)opaque;
    tkc_free(m->topics);
}

/* ===== the fixture: conf with secrets, status, HTTP on a free port ===== */

static tkc_conf_t *conf;
static tkc_metrics_t *m;
static tkc_status_t *st;
static tkc_http_t *http;
static fake_t fake;
static int port;

static void setup(void)
{
    char *const env[] = {"TKC_SCHEMA_REGISTRY_PASSWORD=s3cret-pw", NULL};
    tkc_conf_report_t rep = {0};
    conf = tkc_conf_load_string("h.ini",
                                "[feed]\nid = ops\ntables = 100\nspans = 7480..7481\n"
                                "[kafka]\nbootstrap_servers = k:9092\n"
                                "sasl.password = s3cret-sasl\nsasl.username = alice\n"
                                "[schema_registry]\nurl = https://bob:s3cret-url@sr:8081/x\n"
                                "username = bob\n",
                                env, &rep);
    ck_assert_ptr_nonnull(conf);
    tkc_conf_report_clear(&rep);
    m = tkc_metrics_new();
    st = tkc_status_new(conf, m);
    memset(&fake, 0, sizeof(fake));
    fake.pl_state = TKC_PIPELINE_RUNNING;
    fake.resolved_ts = START_TS + ((uint64_t)60000 << 18);   /* start + 60 s */
    fake.checkpoint_ts = START_TS + ((uint64_t)58000 << 18); /* start + 58 s */
    fake.pd_now = START_TS + ((uint64_t)61500 << 18);        /* start + 61.5 s */
    tkc_status_sources_t src = {fake_feed, fake_pd_now, fake_pl, fake_pl_free, &fake};
    tkc_status_set_sources(st, &src);
    tkc_status_set_state(st, TKC_STATUS_RUNNING, NULL);
    char err[256];
    tkc_http_config_t hc = {.listen = "127.0.0.1:0",
                            .metrics = m,
                            .status_json = tkc_status_http_json,
                            .healthy = tkc_status_http_healthy,
                            .opaque = st};
    http = tkc_http_start(&hc, err, sizeof(err));
    ck_assert_msg(http != NULL, "%s", err);
    port = tkc_http_port(http);
    ck_assert_int_gt(port, 0);
}

static void teardown(void)
{
    tkc_http_stop(http);
    tkc_status_destroy(st);
    tkc_metrics_destroy(m);
    tkc_conf_destroy(conf);
}

/* ===== tests ===== */

START_TEST(test_http_metrics_format_and_values)
{
    char *body, *ct;
    ck_assert_int_eq(ops_http("GET", port, "/metrics", &body, &ct), 200);
    ck_assert_msg(strncmp(ct, "text/plain; version=0.0.4", 25) == 0, "content type %s", ct);
    const char *why = check_exposition(body);
    ck_assert_msg(why == NULL, "invalid exposition: %s\n%s", why, body);

    static const char *const want[] = {
        "tikv_kafka_cdc_build_info{version=\"" TKC_VERSION "\"} 1\n",
        "tikv_kafka_cdc_feed_state{feed=\"ops\",state=\"running\"} 1\n",
        "tikv_kafka_cdc_feed_state{feed=\"ops\",state=\"failed\"} 0\n",
        "tikv_kafka_cdc_resolved_ts_lag_seconds{feed=\"ops\"} 1.5\n",
        "tikv_kafka_cdc_checkpoint_lag_seconds{feed=\"ops\"} 3.5\n",
        "tikv_kafka_cdc_rows_produced_total{feed=\"ops\",topic=\"cdc.t100\"} 42\n",
        "tikv_kafka_cdc_produced_bytes_total{feed=\"ops\",topic=\"cdc.t100\"} 4200\n",
        "tikv_kafka_cdc_rows_produced_total{feed=\"ops\",topic=\"cdc.span0\"} 0\n",
        "tikv_kafka_cdc_delivery_errors_total{feed=\"ops\",kind=\"none\"} 0\n",
        "tikv_kafka_cdc_delivery_errors_total{feed=\"ops\",kind=\"msg_size_too_large\"} 1\n",
        "tikv_kafka_cdc_kafka_inflight_messages{feed=\"ops\"} 2\n",
        "tikv_kafka_cdc_streams_opened_total{feed=\"ops\",store=\"1\"} 3\n",
        "tikv_kafka_cdc_streams_retired_total{feed=\"ops\",store=\"1\"} 2\n",
        "tikv_kafka_cdc_streams{feed=\"ops\",store=\"4\"} 1\n",
        "tikv_kafka_cdc_regions_subscribed{feed=\"ops\"} 12\n",
        "tikv_kafka_cdc_regions_initialized{feed=\"ops\"} 9\n",
        "tikv_kafka_cdc_region_errors_total{feed=\"ops\",kind=\"not_leader\"} 3\n",
        "tikv_kafka_cdc_region_errors_total{feed=\"ops\",kind=\"epoch_not_match\"} 1\n",
        "tikv_kafka_cdc_lock_resolutions_total{feed=\"ops\"} 2\n",
        "tikv_kafka_cdc_memory_quota_used_bytes{feed=\"ops\"} 1024\n",
        "tikv_kafka_cdc_spilled_bytes_total{feed=\"ops\"} 77\n",
        "tikv_kafka_cdc_prewrite_pending_bytes{feed=\"ops\"} 4096\n",
        "tikv_kafka_cdc_prewrite_spilled_bytes_total{feed=\"ops\"} 65536\n",
        "tikv_kafka_cdc_watermarks_total{feed=\"ops\"} 7\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(body, want[i]), "missing: %s", want[i]);
    ck_assert_ptr_null(strstr(body, "s3cret"));

    /* Every metric served is documented in docs/metrics.md. */
    FILE *df = fopen(TKC_SOURCE_DIR "/docs/metrics.md", "r");
    ck_assert_ptr_nonnull(df);
    static char doc[65536];
    size_t dn = fread(doc, 1, sizeof(doc) - 1, df);
    doc[dn] = '\0';
    fclose(df);
    int documented = 0;
    for (const char *t = strstr(body, "# TYPE "); t; t = strstr(t + 1, "# TYPE ")) {
        char name[128], want_doc[140];
        ck_assert_int_eq(sscanf(t, "# TYPE %127s", name), 1);
        snprintf(want_doc, sizeof(want_doc), "`%s`", name);
        ck_assert_msg(strstr(doc, want_doc), "%s is not in docs/metrics.md", name);
        documented++;
    }
    ck_assert_int_ge(documented, 30);

    /* promtool, when installed (Debian package prometheus) */
    if (access("/usr/bin/promtool", X_OK) == 0) {
        char *f = ops_temp_file(".prom", body);
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s 2>&1", f);
        FILE *pp = popen(cmd, "r");
        char out[4096] = "";
        size_t n = fread(out, 1, sizeof(out) - 1, pp);
        out[n] = '\0';
        int rc = pclose(pp);
        ck_assert_msg(rc == 0, "promtool check metrics failed:\n%s", out);
        unlink(f);
        free(f);
    } else {
        fprintf(stderr, "note: promtool not installed; the built-in checker alone was used\n");
    }
    free(body);
    free(ct);

    /* Stores come and go: a store missing from the snapshot disappears from
     * the gauge (its counters stay). */
    ck_assert_int_eq(ops_http("HEAD", port, "/metrics", &body, NULL), 200);
    free(body);
}
END_TEST

START_TEST(test_http_checker_catches_errors)
{
    /* The checker must be able to fail, or the test above proves nothing. */
    ck_assert_ptr_null(check_exposition("# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"));
    ck_assert_ptr_nonnull(check_exposition("a 1\n"));                      /* no TYPE */
    ck_assert_ptr_nonnull(check_exposition("# TYPE a gauge\na{x=\"1} 1\n")); /* bad label */
    ck_assert_ptr_nonnull(check_exposition("# TYPE a gauge\na 1\na 2\n"));  /* duplicate */
    ck_assert_ptr_nonnull(check_exposition("# TYPE a gauge\na one\n"));     /* value */
    ck_assert_ptr_nonnull(check_exposition("# TYPE a counter\na 1\n"));     /* _total */
    ck_assert_ptr_nonnull(check_exposition("# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n"));
    ck_assert_ptr_nonnull(
        check_exposition("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# HELP a A.\n"));
    ck_assert_ptr_nonnull(check_exposition("# TYPE a gauge\na{x=\"\\t\"} 1\n")); /* escape */
    ck_assert_ptr_nonnull(check_exposition("# TYPE a gauge\na 1"));              /* newline */
}
END_TEST

START_TEST(test_http_status_json_no_secrets)
{
    char *body, *ct;
    ck_assert_int_eq(ops_http("GET", port, "/status", &body, &ct), 200);
    ck_assert_str_eq(ct, "application/json");
    ck_assert_ptr_null(strstr(body, "s3cret"));
    json_error_t jerr;
    json_t *o = json_loads(body, 0, &jerr);
    ck_assert_msg(o != NULL, "not JSON: %s", jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(o, "state")), "running");
    ck_assert_str_eq(json_string_value(json_object_get(o, "feed_id")), "ops");
    ck_assert_str_eq(json_string_value(json_object_get(o, "clock")), "pd");
    json_t *res = json_object_get(o, "resolved");
    ck_assert_uint_eq((uint64_t)json_integer_value(json_object_get(res, "ts")), fake.resolved_ts);
    ck_assert(fabs(json_real_value(json_object_get(res, "lag_seconds")) - 1.5) < 1e-9);
    ck_assert_str_eq(json_string_value(json_object_get(res, "time")), "2026-01-02T03:05:05.000Z");
    json_t *ck = json_object_get(o, "checkpoint");
    ck_assert_uint_eq((uint64_t)json_integer_value(json_object_get(ck, "ts")), fake.checkpoint_ts);
    json_t *scan = json_object_get(o, "initial_scan");
    ck_assert(json_is_true(json_object_get(scan, "done")));
    ck_assert_int_eq(json_integer_value(json_object_get(scan, "regions_initialized")), 9);
    ck_assert_int_eq(json_integer_value(json_object_get(scan, "regions_total")), 12);
    json_t *stores = json_object_get(o, "stores");
    ck_assert_uint_eq(json_array_size(stores), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(stores, 0), "stream_id")), 17);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(stores, 1), "store_id")), 4);
    json_t *cfg = json_object_get(o, "config");
    json_t *props = json_object_get(json_object_get(cfg, "kafka"), "properties");
    ck_assert_str_eq(json_string_value(json_object_get(props, "sasl.password")), "******");
    ck_assert_str_eq(json_string_value(json_object_get(props, "sasl.username")), "alice");
    json_t *sr = json_object_get(cfg, "schema_registry");
    ck_assert_str_eq(json_string_value(json_object_get(sr, "url")), "https://sr:8081/x");
    ck_assert(json_is_true(json_object_get(sr, "password_set")));
    ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(cfg, "feed"), "tables")), 1);
    json_t *topics = json_object_get(json_object_get(o, "kafka"), "topics");
    ck_assert_uint_eq(json_array_size(topics), 2);
    json_decref(o);
    free(body);
    free(ct);
}
END_TEST

START_TEST(test_http_healthz_and_states)
{
    char *body;
    ck_assert_int_eq(ops_http("GET", port, "/healthz", &body, NULL), 200);
    ck_assert_str_eq(body, "ok\n");
    free(body);

    /* initial scan: the frontier has not left the start ts; still healthy */
    fake.resolved_ts = START_TS;
    ck_assert_int_eq(ops_http("GET", port, "/healthz", &body, NULL), 200);
    free(body);
    ck_assert_int_eq(tkc_status_state(st), TKC_STATUS_INITIAL_SCAN);
    ck_assert_int_eq(ops_http("GET", port, "/metrics", &body, NULL), 200);
    ck_assert_ptr_nonnull(strstr(body, "state=\"initial_scan\"} 1\n"));
    free(body);

    /* the pipeline held the watermark: unhealthy, with the reason */
    fake.pl_state = TKC_PIPELINE_HELD;
    snprintf(fake.error, sizeof(fake.error), "message too large for cdc.t100");
    ck_assert_int_eq(ops_http("GET", port, "/healthz", &body, NULL), 503);
    ck_assert_ptr_nonnull(strstr(body, "held: message too large"));
    free(body);
    ck_assert_int_eq(ops_http("GET", port, "/status", &body, NULL), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"state\": \"held\""));
    free(body);

    fake.pl_state = TKC_PIPELINE_FAILED;
    ck_assert_int_eq(ops_http("GET", port, "/healthz", &body, NULL), 503);
    ck_assert_ptr_nonnull(strstr(body, "failed"));
    free(body);

    /* the runner's own states */
    fake.pl_state = TKC_PIPELINE_RUNNING;
    tkc_status_set_state(st, TKC_STATUS_STARTING, NULL);
    ck_assert_int_eq(ops_http("GET", port, "/healthz", &body, NULL), 503);
    free(body);
    tkc_status_set_state(st, TKC_STATUS_STOPPING, NULL);
    ck_assert_int_eq(ops_http("GET", port, "/healthz", &body, NULL), 503);
    free(body);
    tkc_status_set_state(st, TKC_STATUS_RUNNING, NULL);
    ck_assert_int_eq(ops_http("GET", port, "/healthz", &body, NULL), 200);
    free(body);

    /* no sources at all (before the pipeline exists): still answers */
    tkc_status_set_sources(st, NULL);
    tkc_status_set_state(st, TKC_STATUS_STARTING, NULL);
    ck_assert_int_eq(ops_http("GET", port, "/status", &body, NULL), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"state\": \"starting\""));
    free(body);
    ck_assert_int_eq(ops_http("GET", port, "/metrics", &body, NULL), 200);
    ck_assert_ptr_null(check_exposition(body));
    free(body);
}
END_TEST

START_TEST(test_http_routes)
{
    char *body;
    ck_assert_int_eq(ops_http("GET", port, "/nope", &body, NULL), 404);
    free(body);
    ck_assert_int_eq(ops_http("POST", port, "/metrics", &body, NULL), 405);
    free(body);
    ck_assert_int_eq(ops_http("GET", port, "/", &body, NULL), 200);
    ck_assert_ptr_nonnull(strstr(body, "/metrics"));
    free(body);

    /* a second server on the same port is refused with a reason */
    char addr[64], err[256];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    tkc_http_config_t hc = {.listen = addr, .metrics = m};
    ck_assert_ptr_null(tkc_http_start(&hc, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "cannot listen"));
    hc.listen = "no-port";
    ck_assert_ptr_null(tkc_http_start(&hc, err, sizeof(err)));
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_http_metrics_format_and_values);
    tcase_add_test(tc, test_http_status_json_no_secrets);
    tcase_add_test(tc, test_http_healthz_and_states);
    tcase_add_test(tc, test_http_routes);
    suite_add_tcase(s, tc);
    tc = tcase_create("checker");
    tcase_add_test(tc, test_http_checker_catches_errors);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(http_suite)
