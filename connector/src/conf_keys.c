/*
 * conf_keys.c: the table of every configuration key, and what is derived
 * from it alone (environment names, the Markdown reference).
 *
 * One row per key, librdkafka-property-table style: adding a key here makes
 * it parsed, validated by type and range, overridable from the environment,
 * dumped by check-config and listed by `tikv-kafka-cdc check-config
 * --keys-markdown` (docs/configuration.md embeds that output; a unit test
 * fails when they drift). Cross-key rules (exactly-once needs the Kafka
 * checkpoint store, ...) live in conf.c's validation pass.
 *
 * Defaults are text parsed by the same code as file values, so a default
 * can never be something the parser would refuse (conf.c asserts it).
 */
#include "conf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "util/mem.h"

#ifndef TKC_DEFAULT_SCHEMA_DIR
#define TKC_DEFAULT_SCHEMA_DIR "/usr/share/tikv-kafka-cdc/schemas"
#endif

#define MS(x) ((int64_t)(x))
#define SEC(x) (MS(x) * 1000)
#define MIN(x) (SEC(x) * 60)
#define HOUR(x) (MIN(x) * 60)
#define KIB(x) ((int64_t)(x) * 1024)
#define MIB(x) (KIB(x) * 1024)
#define GIB(x) (MIB(x) * 1024)
#define TIB(x) (GIB(x) * 1024)

#define OFF(field) offsetof(tkc_conf_t, field)

/* clang-format off */
static const tkc_conf_key_t keys[] = {
    /* ---------------------------------------------------------------- feed */
    {"feed", "id", TKC_CONF_T_ID, OFF(feed.id), "default", 0, 0, NULL, 0,
     "Feed id: names the checkpoint record, the PD service GC safepoint "
     "(tikv-kafka-cdc-<id>), the transactional id and the watermarks. 1-200 of [A-Za-z0-9._-]."},
    {"feed", "spans", TKC_CONF_T_SPANS, OFF(feed.spans), "", 0, 0, NULL, 0,
     "Raw key spans to capture, comma-separated, each hex start..end (end exclusive; an empty "
     "side is unbounded), e.g. 7480000000000000ff..7480000000000001. "
     "Row topic: <topic_prefix>.span<N>."},
    {"feed", "tables", TKC_CONF_T_I64LIST, OFF(feed.tables), "", 0, 0, NULL, 0,
     "TiDB table ids to capture, comma-separated; each becomes the span of the table's record "
     "keys. Row topic: <topic_prefix>.t<id>. At least one span or table is required."},
    {"feed", "kv_api", TKC_CONF_T_ENUM, OFF(feed.kv_api), "tidb", 0, 0, "tidb|rawkv|txnkv", 0,
     "Which TiKV key space the feed reads (cdcpb KvAPI): tidb (TiDB's transactional keys), "
     "rawkv or txnkv. tables needs tidb."},
    {"feed", "start_ts", TKC_CONF_T_TSO, OFF(feed.start_ts), "now", 0, 0, NULL, 0,
     "Where a feed without a checkpoint starts: a TSO, an RFC 3339 time "
     "(2026-11-26T15:00:00Z) or now. Ignored when a checkpoint exists (the feed resumes there)."},
    {"feed", "delivery", TKC_CONF_T_ENUM, OFF(feed.delivery), "at-least-once", 0, 0,
     "at-least-once|exactly-once", 0,
     "at-least-once: idempotent producer, duplicates possible after a restart. exactly-once: "
     "rows, watermark and checkpoint in one Kafka transaction (read_committed consumers see each "
     "change once); needs [checkpoint] store = kafka."},
    {"feed", "memory_quota", TKC_CONF_T_SIZE, OFF(feed.memory_quota), "512MiB", MIB(1), TIB(1),
     NULL, 0,
     "Bytes of changes the connector buffers in all: the feed queue (queue_size), the messages in "
     "flight to Kafka ([kafka] max_inflight) and the rows waiting for their resolved ts (the "
     "rest). When the rows reach their share they spill to spill_dir, or (without one) the feed "
     "stops reading from TiKV until memory is released."},
    {"feed", "workers", TKC_CONF_T_INT, OFF(feed.workers), "2", 1, 64, NULL, 0,
     "Feed worker threads; each owns one gRPC completion queue and at most one stream per store."},
    {"feed", "spill_dir", TKC_CONF_T_STRING, OFF(feed.spill_dir), "", 0, 0, NULL, TKC_CONF_F_PATH,
     "Existing writable directory for sorted run files when memory_quota is reached, and for the "
     "values of pending prewrites (transactions not yet committed) beyond their share of "
     "memory_quota (1/16, at most 64MiB); empty: never spill, and pending prewrites are not "
     "bounded. Files are unlinked at creation, so nothing is left behind after a crash."},
    {"feed", "spill_budget", TKC_CONF_T_SIZE, OFF(feed.spill_budget), "16GiB", MIB(1), TIB(64),
     NULL, 0, "Bytes of spill files at most; beyond it the feed applies flow control."},
    {"feed", "queue_size", TKC_CONF_T_SIZE, OFF(feed.queue_size), "0", 0, GIB(64), NULL, 0,
     "Bytes of rows in flight between the feed workers and the pipeline before flow control; part "
     "of memory_quota. 0: memory_quota / 16, at most 64MiB. At least 64KiB when set."},
    {"feed", "alter_interval", TKC_CONF_T_DURATION, OFF(feed.alter_interval_ms), "1s", 0,
     HOUR(1), NULL, 0,
     "Minimum time between two stream creations or retirements to one store (TiCDC: 1s)."},
    {"feed", "stuck_threshold", TKC_CONF_T_DURATION, OFF(feed.stuck_threshold_ms), "20s", SEC(1),
     HOUR(1), NULL, 0, "Region resolved-ts lag after which the feed resolves the region's locks."},
    {"feed", "stream_stall_timeout", TKC_CONF_T_DURATION, OFF(feed.stream_stall_timeout_ms),
     "30s", SEC(1), HOUR(1), NULL, 0,
     "A stream with initialized regions that receives nothing for this long is retired."},
    {"feed", "connect_timeout", TKC_CONF_T_DURATION, OFF(feed.connect_timeout_ms), "3s", MS(100),
     MIN(10), NULL, 0, "A new stream to a store must connect within this."},
    {"feed", "backoff_max", TKC_CONF_T_DURATION, OFF(feed.backoff_max_ms), "3s", MS(10), MIN(10),
     NULL, 0, "Cap of the region and stream retry backoff."},
    {"feed", "gc_ttl", TKC_CONF_T_DURATION, OFF(feed.gc_ttl_ms), "24h", MIN(1), HOUR(24 * 30),
     NULL, 0,
     "TTL of the PD service GC safepoint kept at the checkpoint: how long the feed may be down "
     "before TiKV may collect history it needs (TiCDC gc-ttl: 24h)."},

    /* ------------------------------------------------------------------ pd */
    {"pd", "endpoints", TKC_CONF_T_ENDPOINTS, OFF(pd.endpoints), "127.0.0.1:2379", 0, 0, NULL, 0,
     "PD endpoints, comma-separated host:port or http(s)://host:port."},
    {"pd", "ca", TKC_CONF_T_STRING, OFF(pd.ca), "", 0, 0, NULL, TKC_CONF_F_PATH,
     "PEM CA bundle for TLS to PD and TiKV; empty: plaintext."},
    {"pd", "cert", TKC_CONF_T_STRING, OFF(pd.cert), "", 0, 0, NULL, TKC_CONF_F_PATH,
     "PEM client certificate for mutual TLS (with key)."},
    {"pd", "key", TKC_CONF_T_STRING, OFF(pd.key), "", 0, 0, NULL, TKC_CONF_F_PATH,
     "PEM private key of cert."},
    {"pd", "timeout", TKC_CONF_T_DURATION, OFF(pd.timeout_ms), "5s", MS(100), MIN(10), NULL, 0,
     "Deadline of one PD call."},

    /* --------------------------------------------------------------- kafka */
    {"kafka", "bootstrap_servers", TKC_CONF_T_STRING, OFF(kafka.bootstrap_servers), "", 0, 0,
     NULL, 0,
     "Kafka bootstrap servers, host:port[,host:port...]. Required unless embedded_mock_brokers."},
    {"kafka", "topic_prefix", TKC_CONF_T_STRING, OFF(kafka.topic_prefix), "cdc", 0, 0, NULL, 0,
     "Topics: <prefix>.<span or table>, <prefix>.watermark, <prefix>.checkpoint."},
    {"kafka", "partitions", TKC_CONF_T_INT, OFF(kafka.partitions), "3", 1, 10000, NULL, 0,
     "Partitions of the topics the connector creates (existing topics keep theirs)."},
    {"kafka", "replication_factor", TKC_CONF_T_INT, OFF(kafka.replication_factor), "-1", -1,
     32767, NULL, 0,
     "Replication factor of the topics the connector creates; -1: the broker's default."},
    {"kafka", "watermark_all_partitions", TKC_CONF_T_BOOL, OFF(kafka.watermark_all_partitions),
     "true", 0, 0, NULL, 0,
     "Also write each watermark to every partition of every row topic, so a consumer of one "
     "partition sees the resolved ts in-line (TiCDC's resolved-event broadcast)."},
    {"kafka", "watermark_min_interval", TKC_CONF_T_DURATION,
     OFF(kafka.watermark_min_interval_ms), "1s", 0, HOUR(1), NULL, 0,
     "Minimum time between two watermarks (and checkpoints follow them)."},
    {"kafka", "embedded_mock_brokers", TKC_CONF_T_INT, OFF(kafka.embedded_mock_brokers), "0", 0,
     16, NULL, 0,
     "> 0: run librdkafka's mock cluster with this many brokers inside the process instead of a "
     "real Kafka (the demo; data is lost at exit)."},
    {"kafka", "max_inflight", TKC_CONF_T_SIZE, OFF(kafka.max_inflight), "0", 0, GIB(64), NULL, 0,
     "Bytes produced and not yet acknowledged before the pipeline waits (each message counts its "
     "key, value and about 384 bytes of bookkeeping); part of [feed] memory_quota, and librdkafka's "
     "queue.buffering.max.kbytes defaults to it. 0: memory_quota / 8, at most 256MiB. At least "
     "1MiB when set."},
    {"kafka", "timeout", TKC_CONF_T_DURATION, OFF(kafka.timeout_ms), "30s", SEC(1), HOUR(1), NULL,
     0, "Deadline of blocking admin and metadata calls (topic creation, checkpoint read)."},
    {"kafka", "schema_dir", TKC_CONF_T_STRING, OFF(kafka.schema_dir), TKC_DEFAULT_SCHEMA_DIR, 0,
     0, NULL, TKC_CONF_F_PATH | TKC_CONF_F_BUILD_DEFAULT,
     "Directory holding the Avro schemas (row_change.avsc, watermark.avsc, checkpoint.avsc)."},

    /* ----------------------------------------------------- schema_registry */
    {"schema_registry", "url", TKC_CONF_T_STRING, OFF(schema_registry.url), "", 0, 0, NULL, 0,
     "Confluent-compatible Schema Registry base URL; empty: no registry, messages use Avro "
     "single-object encoding."},
    {"schema_registry", "username", TKC_CONF_T_STRING, OFF(schema_registry.username), "", 0, 0,
     NULL, 0, "Basic-auth user."},
    {"schema_registry", "password", TKC_CONF_T_STRING, OFF(schema_registry.password), "", 0, 0,
     NULL, TKC_CONF_F_SECRET, "Basic-auth password (secret: never printed)."},
    {"schema_registry", "ca", TKC_CONF_T_STRING, OFF(schema_registry.ca), "", 0, 0, NULL,
     TKC_CONF_F_PATH, "PEM CA bundle for https; empty: the system's."},
    {"schema_registry", "cert", TKC_CONF_T_STRING, OFF(schema_registry.cert), "", 0, 0, NULL,
     TKC_CONF_F_PATH, "PEM client certificate for mutual TLS (with key)."},
    {"schema_registry", "key", TKC_CONF_T_STRING, OFF(schema_registry.key), "", 0, 0, NULL,
     TKC_CONF_F_PATH, "PEM private key of cert."},
    {"schema_registry", "timeout", TKC_CONF_T_DURATION, OFF(schema_registry.timeout_ms), "30s",
     SEC(1), MIN(10), NULL, 0, "Deadline of one registry request."},

    /* ---------------------------------------------------------- checkpoint */
    {"checkpoint", "store", TKC_CONF_T_ENUM, OFF(checkpoint.store), "kafka", 0, 0, "kafka|file",
     0,
     "kafka: compacted topic <topic_prefix>.checkpoint keyed by feed id (stateless container). "
     "file: a local file replaced atomically."},
    {"checkpoint", "path", TKC_CONF_T_STRING, OFF(checkpoint.path), "", 0, 0, NULL,
     TKC_CONF_F_PATH, "Checkpoint file for store = file; its directory must exist."},

    /* ---------------------------------------------------------------- http */
    {"http", "listen", TKC_CONF_T_LISTEN, OFF(http.listen), "127.0.0.1:8080", 0, 0, NULL, 0,
     "host:port of /metrics, /status and /healthz; port 0 picks a free port; empty or off: "
     "no HTTP server. Use 0.0.0.0:8080 in a container."},

    /* ----------------------------------------------------------------- log */
    {"log", "level", TKC_CONF_T_ENUM, OFF(log.level), "info", 0, 0, "error|warn|info|debug", 0,
     "Lines above this level are dropped."},
    {"log", "format", TKC_CONF_T_ENUM, OFF(log.format), "kv", 0, 0, "kv|json", 0,
     "kv: one key=value line per event; json: one JSON object per line."},
    {"log", "warn_interval", TKC_CONF_T_DURATION, OFF(log.warn_interval_ms), "10s", MS(100),
     HOUR(1), NULL, 0,
     "Repeated warnings of one kind are logged once per interval, then summarised with a count."},
};
/* clang-format on */

static const char *const sections[] = {"feed", "pd", "kafka", "schema_registry",
                                       "checkpoint", "http", "log", NULL};

const tkc_conf_key_t *tkc_conf_keys(size_t *n)
{
    *n = sizeof(keys) / sizeof(keys[0]);
    return keys;
}

const char *const *tkc_conf_sections(void)
{
    return sections;
}

void tkc_conf_key_env(const tkc_conf_key_t *key, char *buf, size_t size)
{
    int w = snprintf(buf, size, "TKC_%s_%s", key->section, key->name);
    size_t n = w < 0 ? 0 : (size_t)w < size ? (size_t)w : size - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)toupper((unsigned char)buf[i]);
}

const char *tkc_conf_type_name(tkc_conf_type_t type)
{
    switch (type) {
    case TKC_CONF_T_STRING: return "string";
    case TKC_CONF_T_BOOL: return "bool";
    case TKC_CONF_T_INT: return "integer";
    case TKC_CONF_T_SIZE: return "size";
    case TKC_CONF_T_DURATION: return "duration";
    case TKC_CONF_T_ENUM: return "enum";
    case TKC_CONF_T_STRLIST: return "list";
    case TKC_CONF_T_ENDPOINTS: return "endpoint list";
    case TKC_CONF_T_SPANS: return "span list";
    case TKC_CONF_T_I64LIST: return "id list";
    case TKC_CONF_T_TSO: return "timestamp";
    case TKC_CONF_T_LISTEN: return "address";
    case TKC_CONF_T_ID: return "id";
    }
    return "?";
}

/* ===== Markdown ===== */

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (w < 0)
            return;
        if ((size_t)w < b->cap - b->len) {
            b->len += (size_t)w;
            return;
        }
        b->cap = (b->cap + (size_t)w + 1) * 2;
        b->buf = tkc_realloc(b->buf, b->cap);
    }
}

/* Markdown table cells must not contain a bare '|'. */
static void sb_cell(sbuf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            sb_printf(b, "\\|");
        else if (*s == '<')
            sb_printf(b, "&lt;");
        else if (*s == '>')
            sb_printf(b, "&gt;");
        else
            sb_printf(b, "%c", *s);
    }
}

char *tkc_conf_keys_markdown(void)
{
    sbuf_t b = {tkc_malloc(4096), 0, 4096};
    b.buf[0] = '\0';
    for (const char *const *sec = sections; *sec; sec++) {
        sb_printf(&b, "### [%s]\n\n| key | type | default | environment | description |\n"
                      "|---|---|---|---|---|\n",
                  *sec);
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            const tkc_conf_key_t *k = &keys[i];
            if (strcmp(k->section, *sec) != 0)
                continue;
            char env[96];
            tkc_conf_key_env(k, env, sizeof(env));
            sb_printf(&b, "| `%s` | ", k->name);
            if (k->type == TKC_CONF_T_ENUM) {
                sb_cell(&b, k->choices);
            } else {
                sb_printf(&b, "%s", tkc_conf_type_name(k->type));
                if (k->type == TKC_CONF_T_INT)
                    sb_printf(&b, " %lld..%lld", (long long)k->min, (long long)k->max);
            }
            sb_printf(&b, " | ");
            if (k->flags & TKC_CONF_F_BUILD_DEFAULT) {
                sb_printf(&b, "(the schemas/ directory of the build or install)");
            } else if (k->def[0]) {
                sb_printf(&b, "`");
                sb_cell(&b, k->def);
                sb_printf(&b, "`");
            } else {
                sb_printf(&b, "(empty)");
            }
            sb_printf(&b, " | `%s` | ", env);
            sb_cell(&b, k->doc);
            sb_printf(&b, " |\n");
        }
        sb_printf(&b, "\n");
    }
    return b.buf;
}
