/*
 * conf.h: the connector's configuration: an INI file (libinih), overridden
 * key by key from the environment, validated as a whole.
 *
 *   [feed] [pd] [kafka] [schema_registry] [checkpoint] [http] [log]
 *
 * Every key is one row of the key table (conf_keys.c): section, name, type,
 * default, limits, documentation. The parser, the validation, the
 * environment names, `check-config`'s dump, docs/configuration.md and
 * config/reference.ini all follow that table (the unit tests compare the
 * last two with it).
 *
 * Sources, later wins:
 *   1. the defaults of the table;
 *   2. the file;
 *   3. the environment: TKC_<SECTION>_<KEY>, upper-cased, e.g.
 *      TKC_KAFKA_BOOTSTRAP_SERVERS, TKC_SCHEMA_REGISTRY_PASSWORD;
 *      librdkafka properties as TKC_RDKAFKA_<PROP> with '.' written '_' and
 *      '_' written '__' (TKC_RDKAFKA_SASL_PASSWORD -> sasl.password).
 *
 * [kafka] keys that are not in the table are librdkafka properties, passed
 * to the producer (and the lag reader) verbatim; they are validated with
 * rd_kafka_conf_set() when the file is loaded, so a typo of one of our keys
 * or of a librdkafka property is an error at check time, not at run time.
 * bootstrap.servers and transactional.id are ours to set and refused there
 * (the transactional id is derived from the feed id by the pipeline).
 *
 * Errors: every problem is collected (nothing stops at the first) and named
 * by source, line, section and key:
 *   config/local.ini:12: [kafka] partitons: unknown key (did you mean partitions?)
 *   env TKC_FEED_WORKERS: [feed] workers: invalid integer "two"
 * Secrets (keys flagged secret, and pass-through properties whose name holds
 * "password", "secret", "token", ...) are never printed: values are not part
 * of error messages for them, and the dump masks them.
 *
 * Thread: a loaded tkc_conf_t is immutable and may be read from any thread.
 */
#ifndef TKC_CONF_H
#define TKC_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* ===== value types held by the config ===== */

/** A list of strings (owned). */
typedef struct tkc_conf_strlist_s {
    char **v;
    size_t n;
} tkc_conf_strlist_t;

/** A list of int64 (owned). */
typedef struct tkc_conf_i64list_s {
    int64_t *v;
    size_t n;
} tkc_conf_i64list_t;

/** One raw key span [start, end); empty start = -inf, empty end = +inf. */
typedef struct tkc_conf_span_s {
    uint8_t *start; /* owned; NULL when empty */
    size_t start_len;
    uint8_t *end;   /* owned; NULL when empty */
    size_t end_len;
} tkc_conf_span_t;

typedef struct tkc_conf_spanlist_s {
    tkc_conf_span_t *v;
    size_t n;
} tkc_conf_spanlist_t;

/** One librdkafka property passed through verbatim (owned strings). */
typedef struct tkc_conf_prop_s {
    char *name;
    char *value;
} tkc_conf_prop_t;

typedef struct tkc_conf_proplist_s {
    tkc_conf_prop_t *v;
    size_t n;
} tkc_conf_proplist_t;

typedef enum {
    TKC_CONF_KV_API_TIDB = 0,
    TKC_CONF_KV_API_RAWKV = 1,
    TKC_CONF_KV_API_TXNKV = 2,
} tkc_conf_kv_api_t;

typedef enum {
    TKC_CONF_DELIVERY_AT_LEAST_ONCE = 0,
    TKC_CONF_DELIVERY_EXACTLY_ONCE = 1,
} tkc_conf_delivery_t;

typedef enum {
    TKC_CONF_CHECKPOINT_KAFKA = 0,
    TKC_CONF_CHECKPOINT_FILE = 1,
} tkc_conf_checkpoint_store_t;

/* ===== the sections ===== */

typedef struct tkc_conf_feed_s {
    char *id;                    /* feed id: names the checkpoint, GC service id, txn id */
    tkc_conf_spanlist_t spans;   /* raw key spans */
    tkc_conf_i64list_t tables;   /* TiDB table ids (record spans) */
    int kv_api;                  /* tkc_conf_kv_api_t */
    uint64_t start_ts;           /* 0: now (PD's current TSO) */
    int delivery;                /* tkc_conf_delivery_t */
    uint64_t memory_quota;       /* bytes of changes buffered, all stages (tkc_conf_memory_budget) */
    int workers;                 /* feed worker threads */
    char *spill_dir;             /* "" : never spill */
    uint64_t spill_budget;       /* bytes of spill files */
    uint64_t queue_size;         /* bytes: feed -> pipeline hand-off budget; 0: derived */
    int64_t alter_interval_ms;   /* min time between stream changes per store */
    int64_t stuck_threshold_ms;  /* region resolved-ts lag that starts lock resolution */
    int64_t stream_stall_timeout_ms;
    int64_t connect_timeout_ms;
    int64_t backoff_max_ms;
    int64_t gc_ttl_ms;           /* PD service GC safepoint TTL */
} tkc_conf_feed_t;

typedef struct tkc_conf_pd_s {
    tkc_conf_strlist_t endpoints; /* host:port or http(s)://host:port */
    char *ca;                     /* PEM paths; "" = plaintext */
    char *cert;
    char *key;
    int64_t timeout_ms;           /* per PD call */
} tkc_conf_pd_t;

typedef struct tkc_conf_kafka_s {
    char *bootstrap_servers;
    char *topic_prefix;
    int partitions;              /* for topics the connector creates */
    int replication_factor;      /* -1: the broker's default */
    bool watermark_all_partitions;
    int64_t watermark_min_interval_ms;
    int embedded_mock_brokers;   /* > 0: librdkafka's mock cluster in-process */
    uint64_t max_inflight;       /* bytes produced and not yet acknowledged; 0: derived */
    int64_t timeout_ms;          /* admin and metadata calls */
    char *schema_dir;            /* the .avsc files */
    tkc_conf_proplist_t props;   /* librdkafka pass-through, file order, env last */
} tkc_conf_kafka_t;

typedef struct tkc_conf_schema_registry_s {
    char *url;       /* "" : no registry (Avro single-object framing) */
    char *username;
    char *password;  /* secret */
    char *ca;
    char *cert;
    char *key;
    int64_t timeout_ms;
} tkc_conf_schema_registry_t;

typedef struct tkc_conf_checkpoint_s {
    int store;            /* tkc_conf_checkpoint_store_t */
    char *path;           /* file store */
} tkc_conf_checkpoint_t;

typedef struct tkc_conf_http_s {
    char *listen;  /* "host:port"; "" or "off": no HTTP server */
} tkc_conf_http_t;

typedef struct tkc_conf_log_s {
    int level;                 /* tkc_log_level_t */
    int format;                /* tkc_log_format_t */
    int64_t warn_interval_ms;  /* window of rate-limited warnings */
} tkc_conf_log_t;

typedef struct tkc_conf_src_s tkc_conf_src_t;

/** A loaded configuration. Free with tkc_conf_destroy(). */
typedef struct tkc_conf_s {
    tkc_conf_feed_t feed;
    tkc_conf_pd_t pd;
    tkc_conf_kafka_t kafka;
    tkc_conf_schema_registry_t schema_registry;
    tkc_conf_checkpoint_t checkpoint;
    tkc_conf_http_t http;
    tkc_conf_log_t log;
    char *path;           /* the file it was loaded from ("" if none) */
    tkc_conf_src_t *src;  /* where each value came from (private) */
} tkc_conf_t;

/* ===== diagnostics ===== */

/** What a load found: every error and warning, in the order found. */
typedef struct tkc_conf_report_s {
    char **errors;
    size_t n_errors;
    char **warnings;
    size_t n_warnings;
} tkc_conf_report_t;

/** Frees the messages and zeroes @p rep. */
void tkc_conf_report_clear(tkc_conf_report_t *rep);

/* ===== loading ===== */

/**
 * @brief Loads @p path, applies the environment and validates everything.
 *
 * @param path the INI file; NULL: defaults and environment only.
 * @param envp the environment ("NAME=value" strings, NULL-terminated);
 *             NULL: the process environment.
 * @param rep  receives every error and warning (clear it with
 *             tkc_conf_report_clear()); may be NULL.
 * @returns the configuration (free with tkc_conf_destroy()) when there was
 *          no error, else NULL (the errors are in @p rep).
 * @locality any
 */
tkc_conf_t *tkc_conf_load(const char *path, char *const *envp, tkc_conf_report_t *rep);

/**
 * @brief Like tkc_conf_load() for INI text in memory; @p name stands for
 *        the file name in messages. For tests and tools.
 */
tkc_conf_t *tkc_conf_load_string(const char *name, const char *text, char *const *envp,
                                 tkc_conf_report_t *rep);

/** Frees @p conf. NULL is a no-op. */
void tkc_conf_destroy(tkc_conf_t *conf);

/*
 * The memory budget: [feed] memory_quota bounds every change the connector
 * buffers, in three parts that add up to it: the feed -> pipeline queue,
 * the messages in flight to Kafka, and the sorter (the rest). queue_size
 * and max_inflight are carved out of the quota; 0 (their default) derives
 * them from it.
 */
typedef struct tkc_conf_memory_s {
    uint64_t queue;    /* the feed queue's byte budget */
    uint64_t inflight; /* the Kafka in-flight budget (also librdkafka's queue) */
    /* pending prewrites (transactions waiting for their COMMITs) held by the
     * feed's matchers; beyond it their values spill to spill_dir. 0 without
     * a spill_dir (then nothing bounds them, as before) */
    uint64_t prewrite;
    uint64_t sorter;   /* what the sorter may hold: memory_quota - queue - inflight - prewrite */
} tkc_conf_memory_t;

/** Fills @p out from the configuration (validated: the parts fit). */
void tkc_conf_memory_budget(const tkc_conf_t *conf, tkc_conf_memory_t *out);

/**
 * @brief The effective configuration as INI text: every key of the table
 *        and every pass-through property, secrets replaced by "******".
 *        With @p sources, each line is followed by a comment saying where
 *        the value came from ("# default", "# config/x.ini:12",
 *        "# env TKC_PD_ENDPOINTS").
 * @returns a string owned by the caller (tkc_free()).
 */
char *tkc_conf_dump(const tkc_conf_t *conf, bool sources);

/**
 * @brief Where the value of [section] name came from: "default", "file"
 *        or "env"; NULL for an unknown key. @p line receives the file line
 *        (0 unless "file"). For tests and messages.
 */
const char *tkc_conf_source(const tkc_conf_t *conf, const char *section, const char *name,
                            int *line);

/** True when a key or property of this name holds a secret. */
bool tkc_conf_name_is_secret(const char *name);

/** The row topic of span or table @p i, into @p buf: "<prefix>.<name>". */
void tkc_conf_topic_name(const tkc_conf_t *conf, size_t span_or_table, char *buf, size_t size);

/**
 * The name of span or table @p i as written into messages and topic names:
 * tables are "t<id>", spans "span<i>" (index among spans).
 */
void tkc_conf_span_name(const tkc_conf_t *conf, size_t span_or_table, char *buf, size_t size);

/** Spans followed by tables: the feed's span count. */
size_t tkc_conf_span_count(const tkc_conf_t *conf);

/** The watermark topic "<prefix>.watermark" and checkpoint topic "<prefix>.checkpoint". */
void tkc_conf_watermark_topic(const tkc_conf_t *conf, char *buf, size_t size);
void tkc_conf_checkpoint_topic(const tkc_conf_t *conf, char *buf, size_t size);

/* ===== the key table (for docs, tests and tools) ===== */

typedef enum {
    TKC_CONF_T_STRING = 1,
    TKC_CONF_T_BOOL,
    TKC_CONF_T_INT,       /* int, min..max */
    TKC_CONF_T_SIZE,      /* uint64 bytes: 512MiB, 64KB, 1048576 */
    TKC_CONF_T_DURATION,  /* int64 ms: 500ms, 2s, 1m, 1h */
    TKC_CONF_T_ENUM,      /* int index into choices "a|b|c" */
    TKC_CONF_T_STRLIST,   /* comma-separated strings */
    TKC_CONF_T_ENDPOINTS, /* comma-separated host:port / http(s)://host:port */
    TKC_CONF_T_SPANS,     /* comma-separated hex "start..end" */
    TKC_CONF_T_I64LIST,   /* comma-separated table ids */
    TKC_CONF_T_TSO,       /* start ts: TSO, RFC 3339 time or "now" */
    TKC_CONF_T_LISTEN,    /* host:port, or "" / "off" */
    TKC_CONF_T_ID,        /* 1..200 chars of [A-Za-z0-9._-] */
} tkc_conf_type_t;

#define TKC_CONF_F_SECRET 0x1u   /* never printed */
#define TKC_CONF_F_PATH 0x2u     /* a file or directory path */
#define TKC_CONF_F_BUILD_DEFAULT 0x4u /* default fixed at build time (docs say so) */

/** One row of the key table. */
typedef struct tkc_conf_key_s {
    const char *section;
    const char *name;
    tkc_conf_type_t type;
    size_t offset;       /* into tkc_conf_t */
    const char *def;     /* default, as text (parsed like a file value) */
    int64_t min, max;    /* INT, DURATION (ms), SIZE (bytes) */
    const char *choices; /* ENUM: "a|b|c" (index = value) */
    unsigned flags;
    const char *doc;     /* one or two sentences for docs and the reference */
} tkc_conf_key_t;

/** The key table, in section order; @p n receives its length. */
const tkc_conf_key_t *tkc_conf_keys(size_t *n);

/** The sections, in order, NULL-terminated. */
const char *const *tkc_conf_sections(void);

/** "TKC_<SECTION>_<NAME>" upper-cased, into @p buf. */
void tkc_conf_key_env(const tkc_conf_key_t *key, char *buf, size_t size);

/** A readable name of a type ("duration", "size", ...). */
const char *tkc_conf_type_name(tkc_conf_type_t type);

/**
 * @brief The key table as Markdown (one table per section: key, type,
 *        default, environment variable, description). docs/configuration.md
 *        embeds this text between marker lines; a unit test keeps them equal.
 * @returns a string owned by the caller (tkc_free()).
 */
char *tkc_conf_keys_markdown(void);

/* ===== value parsers (exported for the CLI and tests) ===== */

/** "500ms", "2s", "1m", "1h", "1h30m", "0" -> ms. @returns 0 or -1 (errstr). */
int tkc_conf_parse_duration(const char *text, int64_t *ms, char *errstr, size_t errstr_size);
/** "512MiB", "64KB", "1048576", "1.5GiB" -> bytes. @returns 0 or -1 (errstr). */
int tkc_conf_parse_size(const char *text, uint64_t *bytes, char *errstr, size_t errstr_size);
/** A TSO number, an RFC 3339 time or "now" (-> 0). @returns 0 or -1 (errstr). */
int tkc_conf_parse_tso(const char *text, uint64_t *tso, char *errstr, size_t errstr_size);
/** Formats @p ms as the shortest exact duration text ("1m30s", "250ms"). */
void tkc_conf_format_duration(int64_t ms, char *buf, size_t size);
/** Formats @p bytes as the shortest exact size text ("512MiB", "1000"). */
void tkc_conf_format_size(uint64_t bytes, char *buf, size_t size);

#endif
