/*
 * check_conf.c: the configuration module (connector/src/conf.c): every
 * error class names file, line and key; all errors come at once; the
 * environment overrides the file; secrets never show; units parse exactly;
 * the reference file and the docs list every key of the table.
 */
#include <check.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "unit/check_main.h"
#include "util/mem.h"
#include "../test_file.h"

#ifndef TKC_SOURCE_DIR
#error "TKC_SOURCE_DIR must name the source tree"
#endif

/* A minimal valid file body; tests append what they exercise. */
#define BASE "[feed]\ntables = 100\n[kafka]\nbootstrap_servers = 127.0.0.1:9092\n"

static char *const no_env[] = {NULL};

/* True if some error (or warning) contains every given fragment. */
static bool has_msg(char **msgs, size_t n, ...)
{
    for (size_t i = 0; i < n; i++) {
        va_list ap;
        va_start(ap, n);
        bool all = true;
        for (const char *frag = va_arg(ap, const char *); frag; frag = va_arg(ap, const char *))
            if (!strstr(msgs[i], frag))
                all = false;
        va_end(ap);
        if (all)
            return true;
    }
    return false;
}

#define HAS_ERROR(rep, ...) has_msg((rep).errors, (rep).n_errors, __VA_ARGS__, (const char *)NULL)
#define HAS_WARNING(rep, ...)                                                                   \
    has_msg((rep).warnings, (rep).n_warnings, __VA_ARGS__, (const char *)NULL)

static void dump_report(const tkc_conf_report_t *rep)
{
    for (size_t i = 0; i < rep->n_errors; i++)
        fprintf(stderr, "  error: %s\n", rep->errors[i]);
    for (size_t i = 0; i < rep->n_warnings; i++)
        fprintf(stderr, "  warning: %s\n", rep->warnings[i]);
}

/* Loads text that must be valid. */
static tkc_conf_t *load_ok(const char *text, char *const *env)
{
    tkc_conf_report_t rep = {0};
    tkc_conf_t *c = tkc_conf_load_string("t.ini", text, env ? env : no_env, &rep);
    if (!c)
        dump_report(&rep);
    ck_assert_msg(c != NULL, "expected a valid configuration");
    tkc_conf_report_clear(&rep);
    return c;
}

/* ===== defaults and basic values ===== */

START_TEST(test_conf_defaults)
{
    tkc_conf_t *c = load_ok(BASE, NULL);
    ck_assert_str_eq(c->feed.id, "default");
    ck_assert_int_eq(c->feed.delivery, TKC_CONF_DELIVERY_AT_LEAST_ONCE);
    ck_assert_uint_eq(c->feed.memory_quota, 512ULL << 20);
    ck_assert_int_eq(c->feed.workers, 2);
    ck_assert_uint_eq(c->feed.start_ts, 0);
    ck_assert_int_eq((int)c->feed.gc_ttl_ms / 1000, 86400);
    ck_assert_uint_eq(c->pd.endpoints.n, 1);
    ck_assert_str_eq(c->pd.endpoints.v[0], "127.0.0.1:2379");
    ck_assert_str_eq(c->kafka.topic_prefix, "cdc");
    ck_assert_int_eq(c->kafka.partitions, 3);
    ck_assert_int_eq(c->kafka.replication_factor, -1);
    ck_assert(c->kafka.watermark_all_partitions);
    ck_assert_int_eq(c->checkpoint.store, TKC_CONF_CHECKPOINT_KAFKA);
    ck_assert_str_eq(c->http.listen, "127.0.0.1:8080");
    ck_assert_int_eq(c->log.level, 2);
    ck_assert_str_eq(tkc_conf_source(c, "feed", "workers", NULL), "default");
    int line = 0;
    ck_assert_str_eq(tkc_conf_source(c, "feed", "tables", &line), "file");
    ck_assert_int_eq(line, 2);
    ck_assert_ptr_null(tkc_conf_source(c, "feed", "nope", NULL));
    tkc_conf_destroy(c);
}
END_TEST

START_TEST(test_conf_values_and_names)
{
    tkc_conf_t *c = load_ok("[feed]\nid = orders.v2\n"
                            "spans = 7480..7481, 7490..\n"
                            "tables = 100, 7\n"
                            "start_ts = 2026-01-02T03:04:05.678Z\n"
                            "memory_quota = 1.5GiB\nworkers = 8\n"
                            "[pd]\nendpoints = pd1:2379, http://pd2:2379, [::1]:2379\n"
                            "[kafka]\nbootstrap_servers = k:9092\ntopic_prefix = tidb\n"
                            "watermark_all_partitions = off\nwatermark_min_interval = 1m30s\n"
                            "[http]\nlisten = off\n"
                            "[log]\nformat = json\nlevel = debug\n",
                            NULL);
    ck_assert_str_eq(c->feed.id, "orders.v2");
    ck_assert_uint_eq(c->feed.spans.n, 2);
    ck_assert_uint_eq(c->feed.spans.v[0].start_len, 2);
    ck_assert_uint_eq(c->feed.spans.v[0].start[0], 0x74);
    ck_assert_uint_eq(c->feed.spans.v[0].end[1], 0x81);
    ck_assert_uint_eq(c->feed.spans.v[1].end_len, 0); /* +inf */
    ck_assert_uint_eq(c->feed.tables.n, 2);
    ck_assert_int_eq(c->feed.tables.v[1], 7);
    /* 2026-01-02T03:04:05.678Z = 1767323045678 ms */
    ck_assert_uint_eq(c->feed.start_ts, (uint64_t)1767323045678LL << 18);
    ck_assert_uint_eq(c->feed.memory_quota, 3ULL << 29);
    ck_assert_uint_eq(c->pd.endpoints.n, 3);
    ck_assert_str_eq(c->pd.endpoints.v[1], "http://pd2:2379");
    ck_assert(!c->kafka.watermark_all_partitions);
    ck_assert_int_eq(c->kafka.watermark_min_interval_ms, 90000);
    ck_assert_str_eq(c->http.listen, "");
    ck_assert_int_eq(c->log.format, 1);
    ck_assert_int_eq(c->log.level, 3);

    char buf[128];
    ck_assert_uint_eq(tkc_conf_span_count(c), 4);
    tkc_conf_topic_name(c, 0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "tidb.span0");
    tkc_conf_topic_name(c, 3, buf, sizeof(buf));
    ck_assert_str_eq(buf, "tidb.t7");
    tkc_conf_watermark_topic(c, buf, sizeof(buf));
    ck_assert_str_eq(buf, "tidb.watermark");
    tkc_conf_checkpoint_topic(c, buf, sizeof(buf));
    ck_assert_str_eq(buf, "tidb.checkpoint");
    tkc_conf_destroy(c);
}
END_TEST

/* ===== errors: file, line, key; all at once ===== */

typedef struct err_case_s {
    const char *line;     /* appended to BASE in its own section header */
    const char *expect[3];
} err_case_t;

/* Each case is one error class; the test puts them all in one file and
 * expects every one reported with its line. */
static const err_case_t err_cases[] = {
    {"[kafka]\npartitons = 3", {"[kafka] partitons", "unknown key", "did you mean partitions?"}},
    {"[feed]\nworkres = 3", {"[feed] workres", "unknown key", "did you mean workers?"}},
    {"[kafak]", {"[kafak]", "unknown section", "did you mean [kafka]?"}},
    {"[pd]\njust some words", {"expected key = value", "just some words", NULL}},
    {"[feed]\nworkers = two", {"[feed] workers", "invalid integer \"two\"", NULL}},
    {"[kafka]\npartitions = 0", {"[kafka] partitions", "out of range (1..10000)", NULL}},
    {"[feed]\nmemory_quota = 512M", {"[feed] memory_quota", "ambiguous unit", "MiB"}},
    {"[feed]\nspill_budget = 3 parsecs", {"[feed] spill_budget", "size", NULL}},
    {"[feed]\ngc_ttl = 10", {"[feed] gc_ttl", "has no unit", NULL}},
    {"[feed]\nalter_interval = 5 fortnights", {"[feed] alter_interval", "duration", NULL}},
    {"[feed]\nstuck_threshold = 2h", {"[feed] stuck_threshold", "out of range (1s..1h)", NULL}},
    {"[feed]\ndelivery = twice", {"[feed] delivery", "at-least-once,exactly-once", NULL}},
    {"[feed]\nstart_ts = 1716000000", {"[feed] start_ts", "not a TSO", NULL}},
    {"[feed]\nspans = 748..7481", {"[feed] spans", "even length", NULL}},
    {"[feed]\nid = no spaces", {"[feed] id", "invalid id", NULL}},
    {"[kafka]\nwatermark_all_partitions = maybe", {"[kafka] watermark_all_partitions", "boolean", NULL}},
    {"[pd]\nendpoints = pd1:2379, pd2", {"[pd] endpoints", "host:port", NULL}},
    {"[http]\nlisten = 127.0.0.1:99999", {"[http] listen", "port", NULL}},
    {"[log]\nlevel = verbose", {"[log] level", "error,warn,info,debug", NULL}},
    {"[kafka]\ncompression.type = zstdx", {"[kafka] compression.type", "zstdx", NULL}},
    {"[kafka]\nbootstrap.servers = x:1", {"[kafka] bootstrap.servers", "bootstrap_servers", NULL}},
    {"[kafka]\ntransactional.id = x", {"[kafka] transactional.id", "derived", NULL}},
};

START_TEST(test_conf_errors_name_file_line_key)
{
    /* One file, every error class: each line is known, so each message must
     * carry exactly "t.ini:<its line>:". */
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof(text), "%s", BASE);
    int line = 4; /* BASE has 4 lines */
    int lines[sizeof(err_cases) / sizeof(err_cases[0])];
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\n", err_cases[i].line);
        int nl = 1;
        for (const char *p = err_cases[i].line; *p; p++)
            nl += *p == '\n';
        line += nl;
        lines[i] = line; /* the last line of the case holds the error */
    }
    tkc_conf_report_t rep = {0};
    tkc_conf_t *c = tkc_conf_load_string("t.ini", text, no_env, &rep);
    ck_assert_ptr_null(c);
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        char loc[32];
        snprintf(loc, sizeof(loc), "t.ini:%d:", lines[i]);
        const err_case_t *e = &err_cases[i];
        bool ok = has_msg(rep.errors, rep.n_errors, loc, e->expect[0],
                          e->expect[1] ? e->expect[1] : loc, e->expect[2] ? e->expect[2] : loc,
                          (const char *)NULL);
        if (!ok)
            dump_report(&rep);
        ck_assert_msg(ok, "case %zu (%s): no error with %s %s", i, e->line, loc, e->expect[0]);
    }
    ck_assert_uint_eq(rep.n_errors, sizeof(err_cases) / sizeof(err_cases[0]));
    /* Reading order: by line. */
    for (size_t i = 1; i < rep.n_errors; i++)
        ck_assert_int_le(atoi(strchr(rep.errors[i - 1], ':') + 1),
                         atoi(strchr(rep.errors[i], ':') + 1));
    tkc_conf_report_clear(&rep);
}
END_TEST

START_TEST(test_conf_error_each_case_fails_alone)
{
    /* Every case must be an error on its own too (no case is only caught
     * because of another one). */
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text), "%s%s\n", BASE, err_cases[i].line);
        tkc_conf_report_t rep = {0};
        tkc_conf_t *c = tkc_conf_load_string("t.ini", text, no_env, &rep);
        ck_assert_msg(c == NULL, "case %zu (%s) was accepted", i, err_cases[i].line);
        ck_assert_uint_eq(rep.n_errors, 1);
        tkc_conf_report_clear(&rep);
    }
}
END_TEST

START_TEST(test_conf_structure_errors)
{
    tkc_conf_report_t rep = {0};
    tkc_conf_t *c = tkc_conf_load_string("s.ini",
                                         "orphan = 1\n"              /* 1 */
                                         "[feed]\n"                  /* 2 */
                                         "tables = 100\n"            /* 3 */
                                         "workers = 2\n"             /* 4 */
                                         "workers = 3\n"             /* 5: duplicate */
                                         "  4\n"                     /* 6: continuation of scalar */
                                         "[kafka\n"                  /* 7: no ] */
                                         "[kafka]\n"                 /* 8 */
                                         "bootstrap_servers = k:1\n" /* 9 */
                                         "linger.ms = 5\n"           /* 10 */
                                         "linger.ms = 6\n",          /* 11 */
                                         no_env, &rep);
    ck_assert_ptr_null(c);
    ck_assert(HAS_ERROR(rep, "s.ini:1:", "orphan", "outside any section"));
    ck_assert(HAS_ERROR(rep, "s.ini:5:", "[feed] workers", "duplicate key (first set on line 4)"));
    ck_assert(HAS_ERROR(rep, "s.ini:6:", "[feed] workers", "continuation lines"));
    ck_assert(HAS_ERROR(rep, "s.ini:7:", "missing ]"));
    ck_assert(HAS_ERROR(rep, "s.ini:11:", "[kafka] linger.ms", "duplicate key (first set on line 10)"));
    tkc_conf_report_clear(&rep);

    /* A line longer than inih's buffer is an error, not a silent split. */
    char text[1024];
    char longv[400];
    memset(longv, '1', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    snprintf(text, sizeof(text), "%s[feed]\nid = %s\n", BASE, longv);
    c = tkc_conf_load_string("l.ini", text, no_env, &rep);
    ck_assert_ptr_null(c);
    ck_assert(HAS_ERROR(rep, "l.ini:6:", "line longer than"));
    tkc_conf_report_clear(&rep);

    /* A missing file. */
    c = tkc_conf_load("/nonexistent/x.ini", no_env, &rep);
    ck_assert_ptr_null(c);
    ck_assert(HAS_ERROR(rep, "/nonexistent/x.ini", "cannot read"));
    tkc_conf_report_clear(&rep);
}
END_TEST

START_TEST(test_conf_cross_key_rules)
{
    tkc_conf_report_t rep = {0};
    tkc_conf_t *c = tkc_conf_load_string("x.ini",
                                         "[feed]\n"
                                         "spans = 7480..7490, 7485..7495\n" /* 2: overlap */
                                         "tables = 5\n"
                                         "kv_api = rawkv\n"         /* 4: tables need tidb */
                                         "delivery = exactly-once\n" /* 5: needs kafka store */
                                         "[pd]\ncert = " TKC_SOURCE_DIR "/README.md\n" /* 7: cert without key */
                                         "[kafka]\nreplication_factor = 0\n" /* 9 */
                                         "[schema_registry]\nurl = ftp://x\npassword = pw\n"
                                         "[checkpoint]\nstore = file\n",
                                         no_env, &rep);
    ck_assert_ptr_null(c);
    ck_assert(HAS_ERROR(rep, "x.ini:2:", "[feed] spans", "overlap"));
    ck_assert(HAS_ERROR(rep, "x.ini:3:", "[feed] tables", "kv_api = tidb"));
    ck_assert(HAS_ERROR(rep, "x.ini:5:", "[feed] delivery", "store = kafka"));
    ck_assert(HAS_ERROR(rep, "x.ini:7:", "cert and key go together"));
    ck_assert(HAS_ERROR(rep, "x.ini:9:", "[kafka] replication_factor"));
    ck_assert(HAS_ERROR(rep, "[kafka] bootstrap_servers", "required"));
    ck_assert(HAS_ERROR(rep, "x.ini:11:", "[schema_registry] url", "http://"));
    ck_assert(HAS_ERROR(rep, "[schema_registry] username", "required"));
    ck_assert(HAS_ERROR(rep, "[checkpoint] path", "required when store = file"));
    tkc_conf_report_clear(&rep);

    /* Nothing to capture. */
    c = tkc_conf_load_string("y.ini", "[kafka]\nbootstrap_servers = k:1\n", no_env, &rep);
    ck_assert_ptr_null(c);
    ck_assert(HAS_ERROR(rep, "y.ini: [feed] spans", "nothing to capture"));
    tkc_conf_report_clear(&rep);

    /* Warnings do not fail a load. */
    c = tkc_conf_load_string("w.ini",
                             BASE "embedded_mock_brokers = 3\n[checkpoint]\npath = /tmp/x\n",
                             no_env, &rep);
    ck_assert_ptr_nonnull(c);
    ck_assert(HAS_WARNING(rep, "[kafka] bootstrap_servers", "ignored"));
    ck_assert(HAS_WARNING(rep, "[checkpoint] path", "ignored"));
    tkc_conf_report_clear(&rep);
    tkc_conf_destroy(c);

    /* The embedded mock needs no bootstrap servers. */
    c = load_ok("[feed]\ntables = 1\n[kafka]\nembedded_mock_brokers = 1\n", NULL);
    tkc_conf_destroy(c);
}
END_TEST

START_TEST(test_conf_continuation_lines)
{
    tkc_conf_t *c = load_ok("[feed]\n"
                            "tables = 1, 2\n"
                            "   3,\n"
                            "\n"
                            "   4\n"
                            "[pd]\nendpoints = a:1\n  b:2\n"
                            "[kafka]\nbootstrap_servers = k:1\n",
                            NULL);
    ck_assert_uint_eq(c->feed.tables.n, 4);
    ck_assert_int_eq(c->feed.tables.v[3], 4);
    ck_assert_uint_eq(c->pd.endpoints.n, 2);
    tkc_conf_destroy(c);
}
END_TEST

/* ===== environment ===== */

START_TEST(test_conf_env_overrides)
{
    char *env[] = {"TKC_FEED_WORKERS=7",
                   "TKC_KAFKA_BOOTSTRAP_SERVERS=envhost:9092",
                   "TKC_PD_ENDPOINTS=e1:2379,e2:2379",
                   "TKC_SCHEMA_REGISTRY_URL=http://sr:8081",
                   "TKC_RDKAFKA_LINGER_MS=42",
                   "TKC_RDKAFKA_SASL_PASSWORD=envsecret",
                   "TKC_RDKAFKA_COMPRESSION_TYPE=zstd",
                   "TKC_KAFKA_BOOTSTRAP_FILE=/tmp/ignored", /* test tooling, not a key */
                   "UNRELATED=1",
                   NULL};
    tkc_conf_report_t rep = {0};
    tkc_conf_t *c = tkc_conf_load_string("e.ini",
                                         BASE "linger.ms = 5\ncompression.type = lz4\n"
                                              "[feed]\nworkers = 3\n",
                                         env, &rep);
    if (!c)
        dump_report(&rep);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(rep.n_warnings, 0); /* the tooling variable is not warned about */
    tkc_conf_report_clear(&rep);
    ck_assert_int_eq(c->feed.workers, 7);
    ck_assert_str_eq(tkc_conf_source(c, "feed", "workers", NULL), "env");
    ck_assert_str_eq(c->kafka.bootstrap_servers, "envhost:9092");
    ck_assert_uint_eq(c->pd.endpoints.n, 2); /* replaced whole, not appended */
    ck_assert_str_eq(c->pd.endpoints.v[1], "e2:2379");
    ck_assert_str_eq(c->schema_registry.url, "http://sr:8081");
    /* pass-through: env wins over the file, underscores become dots */
    int found = 0;
    for (size_t i = 0; i < c->kafka.props.n; i++) {
        const tkc_conf_prop_t *p = &c->kafka.props.v[i];
        if (strcmp(p->name, "linger.ms") == 0) {
            ck_assert_str_eq(p->value, "42");
            found++;
        } else if (strcmp(p->name, "sasl.password") == 0) {
            ck_assert_str_eq(p->value, "envsecret");
            found++;
        } else if (strcmp(p->name, "compression.type") == 0) {
            ck_assert_str_eq(p->value, "zstd");
            found++;
        }
    }
    ck_assert_int_eq(found, 3);
    ck_assert_str_eq(tkc_conf_source(c, "kafka", "linger.ms", NULL), "env");
    tkc_conf_destroy(c);
}
END_TEST

START_TEST(test_conf_env_errors_and_warnings)
{
    char *env[] = {"TKC_FEED_WORKERS=lots", "TKC_FEED_WORKRS=3", "TKC_RDKAFKA_NOT_A_PROP=1",
                   "TKC_RDKAFKA_ENABLE__FAKE_X=1", NULL};
    tkc_conf_report_t rep = {0};
    tkc_conf_t *c = tkc_conf_load_string("e.ini", BASE, env, &rep);
    ck_assert_ptr_null(c);
    ck_assert(HAS_ERROR(rep, "env TKC_FEED_WORKERS: [feed] workers", "invalid integer \"lots\""));
    ck_assert(HAS_ERROR(rep, "env TKC_RDKAFKA_NOT_A_PROP: [kafka] not.a.prop", "unknown key"));
    ck_assert(HAS_ERROR(rep, "env TKC_RDKAFKA_ENABLE__FAKE_X: [kafka] enable_fake.x"));
    ck_assert(HAS_WARNING(rep, "env TKC_FEED_WORKRS", "did you mean TKC_FEED_WORKERS?"));
    /* env errors come after the file's */
    ck_assert(strncmp(rep.errors[rep.n_errors - 1], "env ", 4) == 0);
    tkc_conf_report_clear(&rep);

    /* Environment only (no file). */
    char *env2[] = {"TKC_FEED_TABLES=9", "TKC_KAFKA_BOOTSTRAP_SERVERS=k:1", NULL};
    c = tkc_conf_load(NULL, env2, &rep);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->feed.tables.v[0], 9);
    tkc_conf_report_clear(&rep);
    tkc_conf_destroy(c);
}
END_TEST


/* Values can hold control characters (an environment value with a newline,
 * a file value with a CR or a tab): the message quotes them escaped, so that
 * every error stays one line of plain text (found by fuzz_config). */
START_TEST(test_conf_messages_are_one_line)
{
    char *env[] = {"TKC_FEED_WORKERS=4\nx", "TKC_KAFKA_TOPIC_PREFIX=a\x01" "b", NULL};
    tkc_conf_report_t rep = {0};
    tkc_conf_t *c =
        tkc_conf_load_string("e.ini", BASE "[pd]\nendpoints = a\tb:1\r\n", env, &rep);
    if (c)
        dump_report(&rep);
    ck_assert_ptr_null(c);
    ck_assert_uint_ge(rep.n_errors, 3);
    for (size_t i = 0; i < rep.n_errors; i++)
        for (const char *p = rep.errors[i]; *p; p++)
            ck_assert_msg((unsigned char)*p >= 0x20 && *p != 0x7f, "control byte in: %s",
                          rep.errors[i]);
    ck_assert(HAS_ERROR(rep, "env TKC_FEED_WORKERS: [feed] workers", "4\\nx"));
    ck_assert(HAS_ERROR(rep, "env TKC_KAFKA_TOPIC_PREFIX", "a\\x01b"));
    ck_assert(HAS_ERROR(rep, "e.ini:6: [pd] endpoints", "a\\tb:1"));
    tkc_conf_report_clear(&rep);
}
END_TEST
/* ===== secrets ===== */

START_TEST(test_conf_secrets_never_printed)
{
    char *env[] = {"TKC_SCHEMA_REGISTRY_PASSWORD=pw-from-env-77", NULL};
    /* A valid file with secrets, dumped. */
    tkc_conf_t *c = load_ok(BASE "sasl.password = pw-in-file-55\nsasl.username = bob\n"
                                 "ssl.key.password = pw-key-66\n"
                                 "[schema_registry]\nurl = http://sr:1\nusername = u\n",
                            env);
    char *dump = tkc_conf_dump(c, true);
    ck_assert_ptr_null(strstr(dump, "pw-"));
    ck_assert_ptr_nonnull(strstr(dump, "sasl.password = ******"));
    ck_assert_ptr_nonnull(strstr(dump, "password = ******"));
    ck_assert_ptr_nonnull(strstr(dump, "sasl.username = bob")); /* not a secret */
    ck_assert_ptr_nonnull(strstr(dump, "# env TKC_SCHEMA_REGISTRY_PASSWORD"));
    tkc_free(dump);
    tkc_conf_destroy(c);

    /* An invalid file with secrets: no message shows them. */
    tkc_conf_report_t rep = {0};
    c = tkc_conf_load_string("s.ini",
                             BASE "sasl.password = pw-in-file-55\nsasl.oauthbearer.token = t-88\n"
                                  "[feed]\nworkers = x\n",
                             env, &rep);
    ck_assert_ptr_null(c);
    ck_assert_uint_ge(rep.n_errors, 2);
    for (size_t i = 0; i < rep.n_errors; i++) {
        ck_assert_ptr_null(strstr(rep.errors[i], "pw-"));
        ck_assert_ptr_null(strstr(rep.errors[i], "t-88"));
    }
    tkc_conf_report_clear(&rep);

    ck_assert(tkc_conf_name_is_secret("sasl.password"));
    ck_assert(tkc_conf_name_is_secret("ssl.key.password"));
    ck_assert(tkc_conf_name_is_secret("sasl.oauthbearer.client.secret"));
    ck_assert(tkc_conf_name_is_secret("API_TOKEN"));
    ck_assert(!tkc_conf_name_is_secret("sasl.username"));
    ck_assert(!tkc_conf_name_is_secret("linger.ms"));
}
END_TEST

/* ===== units ===== */

START_TEST(test_conf_durations)
{
    static const struct {
        const char *text;
        int64_t ms; /* -1: error */
    } cases[] = {{"0", 0},         {"500ms", 500},       {"2s", 2000},      {"1m", 60000},
                 {"1h", 3600000},  {"1d", 86400000},     {"1h30m", 5400000}, {"1.5s", 1500},
                 {" 3s ", 3000},   {"0.25m", 15000},     {"10", -1},        {"", -1},
                 {"s", -1},        {"5 s", -1},          {"1.5ms", -1},     {"2w", -1},
                 {"-1s", -1},      {"99999999999999999999s", -1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -7;
        char err[256] = "";
        int rc = tkc_conf_parse_duration(cases[i].text, &ms, err, sizeof(err));
        if (cases[i].ms < 0) {
            ck_assert_msg(rc != 0, "\"%s\" accepted as %" PRId64, cases[i].text, ms);
            ck_assert(err[0] != '\0');
        } else {
            ck_assert_msg(rc == 0, "\"%s\": %s", cases[i].text, err);
            ck_assert_int_eq(ms, cases[i].ms);
        }
    }
    char buf[32];
    tkc_conf_format_duration(5400000, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1h30m");
    tkc_conf_format_duration(1500, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1s500ms");
    tkc_conf_format_duration(0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "0");
}
END_TEST

START_TEST(test_conf_sizes)
{
    static const struct {
        const char *text;
        uint64_t bytes;
        int ok;
    } cases[] = {{"0", 0, 1},
                 {"1048576", 1048576, 1},
                 {"512MiB", 512ULL << 20, 1},
                 {"512 MiB", 512ULL << 20, 1},
                 {"64KB", 64000, 1},
                 {"64kib", 65536, 1},
                 {"1.5GiB", 3ULL << 29, 1},
                 {"2Gi", 2ULL << 30, 1},
                 {"1TB", 1000000000000ULL, 1},
                 {"100B", 100, 1},
                 {"512M", 0, 0},
                 {"1K", 0, 0},
                 {"1.5B", 0, 0},
                 {"12 apples", 0, 0},
                 {"MiB", 0, 0},
                 {"", 0, 0},
                 {"-1MiB", 0, 0},
                 {"99999999999TiB", 0, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t b = 7;
        char err[256] = "";
        int rc = tkc_conf_parse_size(cases[i].text, &b, err, sizeof(err));
        if (!cases[i].ok) {
            ck_assert_msg(rc != 0, "\"%s\" accepted", cases[i].text);
        } else {
            ck_assert_msg(rc == 0, "\"%s\": %s", cases[i].text, err);
            ck_assert_uint_eq(b, cases[i].bytes);
        }
    }
    char buf[32];
    tkc_conf_format_size(512ULL << 20, buf, sizeof(buf));
    ck_assert_str_eq(buf, "512MiB");
    tkc_conf_format_size(1000, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1000");
}
END_TEST

START_TEST(test_conf_tso)
{
    uint64_t t = 1;
    char err[256];
    ck_assert_int_eq(tkc_conf_parse_tso("now", &t, err, sizeof(err)), 0);
    ck_assert_uint_eq(t, 0);
    uint64_t real = (uint64_t)1767323045678LL << 18 | 5;
    char num[32];
    snprintf(num, sizeof(num), "%" PRIu64, real);
    ck_assert_int_eq(tkc_conf_parse_tso(num, &t, err, sizeof(err)), 0);
    ck_assert_uint_eq(t, real);
    ck_assert_int_eq(tkc_conf_parse_tso("2026-01-02T04:04:05.678+01:00", &t, err, sizeof(err)), 0);
    ck_assert_uint_eq(t, (uint64_t)1767323045678LL << 18);
    ck_assert_int_eq(tkc_conf_parse_tso("2026-01-02 03:04:05Z", &t, err, sizeof(err)), 0);
    ck_assert_uint_eq(t, (uint64_t)1767323045000LL << 18);
    /* Unix ms is not a TSO */
    ck_assert_int_ne(tkc_conf_parse_tso("1767323045678", &t, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "not a TSO"));
    ck_assert_int_ne(tkc_conf_parse_tso("2026-13-02T03:04:05Z", &t, err, sizeof(err)), 0);
    ck_assert_int_ne(tkc_conf_parse_tso("2026-01-02T03:04:05", &t, err, sizeof(err)), 0);
    ck_assert_int_ne(tkc_conf_parse_tso("1999-01-02T03:04:05Z", &t, err, sizeof(err)), 0);
    ck_assert_int_ne(tkc_conf_parse_tso("yesterday", &t, err, sizeof(err)), 0);
}
END_TEST

/* ===== the memory budget ===== */

#define MiB (1ULL << 20)

/* memory_quota is the whole budget: queue + in flight + sorter add up to it. */
START_TEST(test_conf_memory_budget)
{
    tkc_conf_memory_t m;
    tkc_conf_t *c = load_ok(BASE, NULL); /* 512 MiB: 1/16 and 1/8 */
    tkc_conf_memory_budget(c, &m);
    ck_assert_uint_eq(m.queue, 32 * MiB);
    ck_assert_uint_eq(m.inflight, 64 * MiB);
    ck_assert_uint_eq(m.sorter, 416 * MiB);
    tkc_conf_destroy(c);

    c = load_ok(BASE "[feed]\nmemory_quota = 64MiB\n", NULL);
    tkc_conf_memory_budget(c, &m);
    ck_assert_uint_eq(m.queue, 4 * MiB);
    ck_assert_uint_eq(m.inflight, 8 * MiB);
    ck_assert_uint_eq(m.queue + m.inflight + m.sorter, 64 * MiB);
    tkc_conf_destroy(c);

    c = load_ok(BASE "[feed]\nmemory_quota = 16GiB\n", NULL); /* capped parts */
    tkc_conf_memory_budget(c, &m);
    ck_assert_uint_eq(m.queue, 64 * MiB);
    ck_assert_uint_eq(m.inflight, 256 * MiB);
    ck_assert_uint_eq(m.sorter, 16384 * MiB - 320 * MiB);
    tkc_conf_destroy(c);

    c = load_ok(BASE "[feed]\nmemory_quota = 1MiB\n", NULL); /* the smallest quota */
    tkc_conf_memory_budget(c, &m);
    ck_assert_uint_eq(m.queue + m.inflight + m.sorter, MiB);
    ck_assert_uint_ge(m.sorter, MiB / 2);
    tkc_conf_destroy(c);

    /* set parts are carved out of the quota, not added to it */
    c = load_ok(BASE "[feed]\nmemory_quota = 100MiB\nqueue_size = 10MiB\n"
                     "[kafka]\nmax_inflight = 20MiB\n",
                NULL);
    tkc_conf_memory_budget(c, &m);
    ck_assert_uint_eq(m.queue, 10 * MiB);
    ck_assert_uint_eq(m.inflight, 20 * MiB);
    ck_assert_uint_eq(m.sorter, 70 * MiB);
    ck_assert_uint_eq(m.prewrite, 0); /* no spill_dir: nowhere to put them */
    tkc_conf_destroy(c);

    /* with a spill_dir, pending prewrites get 1/16 (at most 64 MiB), taken
     * from the sorter */
    c = load_ok(BASE "[feed]\nmemory_quota = 64MiB\nspill_dir = /tmp\n", NULL);
    tkc_conf_memory_budget(c, &m);
    ck_assert_uint_eq(m.prewrite, 4 * MiB);
    ck_assert_uint_eq(m.queue + m.inflight + m.prewrite + m.sorter, 64 * MiB);
    tkc_conf_destroy(c);
    c = load_ok(BASE "[feed]\nmemory_quota = 16GiB\nspill_dir = /tmp\n", NULL);
    tkc_conf_memory_budget(c, &m);
    ck_assert_uint_eq(m.prewrite, 64 * MiB);
    ck_assert_uint_eq(m.sorter, 16384 * MiB - 384 * MiB);
    tkc_conf_destroy(c);
}
END_TEST

START_TEST(test_conf_memory_budget_errors)
{
    static const struct {
        const char *text, *frag1, *frag2;
    } cases[] = {
        {BASE "[feed]\nmemory_quota = 64MiB\nqueue_size = 40MiB\n", "[feed] queue_size",
         "at most half"},
        {BASE "[feed]\nmemory_quota = 64MiB\n[kafka]\nmax_inflight = 30MiB\n",
         "[kafka] max_inflight", "at most half"},
        {BASE "[feed]\nqueue_size = 1KiB\n", "[feed] queue_size", "at least 64KiB"},
        {BASE "[kafka]\nmax_inflight = 100KiB\n", "[kafka] max_inflight", "at least 1MiB"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tkc_conf_report_t rep = {0};
        tkc_conf_t *c = tkc_conf_load_string("t.ini", cases[i].text, no_env, &rep);
        if (c || !HAS_ERROR(rep, cases[i].frag1, cases[i].frag2))
            dump_report(&rep);
        ck_assert_msg(c == NULL, "case %zu loaded", i);
        ck_assert_msg(HAS_ERROR(rep, cases[i].frag1, cases[i].frag2), "case %zu", i);
        tkc_conf_report_clear(&rep);
    }
}
END_TEST

/* ===== dump ===== */

START_TEST(test_conf_dump_round_trip)
{
    tkc_conf_t *a = load_ok("[feed]\nid = rt\nspans = 7480..7481\ntables = 3, 4\n"
                            "memory_quota = 64MiB\nstart_ts = 2026-01-02T03:04:05Z\n"
                            "[pd]\nendpoints = a:1, b:2\n"
                            "[kafka]\nbootstrap_servers = k:9092\nlinger.ms = 7\n"
                            "[log]\nformat = json\n",
                            NULL);
    char *d1 = tkc_conf_dump(a, true);
    tkc_conf_t *b = load_ok(d1, NULL); /* the dump is itself a valid file */
    char *d2 = tkc_conf_dump(b, false);
    char *d1_plain = tkc_conf_dump(a, false);
    /* Same values (the header names the origin, skip it). */
    ck_assert_str_eq(strchr(d1_plain, '\n'), strchr(d2, '\n'));
    ck_assert_uint_eq(b->feed.start_ts, a->feed.start_ts);
    ck_assert_uint_eq(b->feed.tables.n, 2);
    tkc_free(d1);
    tkc_free(d2);
    tkc_free(d1_plain);
    tkc_conf_destroy(a);
    tkc_conf_destroy(b);
}
END_TEST

/* ===== the table vs. the reference file and the docs ===== */

static char *slurp(const char *path)
{
    char *text = tkc_test_read_file(path, NULL);
    ck_assert_msg(text != NULL, "cannot open %s", path);
    return text;
}

START_TEST(test_conf_reference_lists_every_key)
{
    char *ref = slurp(TKC_SOURCE_DIR "/config/reference.ini");
    size_t n;
    const tkc_conf_key_t *keys = tkc_conf_keys(&n);
    for (size_t i = 0; i < n; i++) {
        char sec[64];
        snprintf(sec, sizeof(sec), "\n[%s]\n", keys[i].section);
        const char *s = strstr(ref, sec);
        ck_assert_msg(s != NULL, "reference.ini has no [%s]", keys[i].section);
        const char *next = strstr(s + 1, "\n[");
        char k1[96], k2[96];
        snprintf(k1, sizeof(k1), "\n%s =", keys[i].name);
        snprintf(k2, sizeof(k2), "\n;%s =", keys[i].name);
        const char *hit = strstr(s, k1);
        if (!hit || (next && hit > next))
            hit = strstr(s, k2);
        ck_assert_msg(hit && (!next || hit < next), "reference.ini lacks [%s] %s",
                      keys[i].section, keys[i].name);
    }
    tkc_free(ref);
    /* ... and it is a valid configuration. */
    tkc_conf_report_t rep = {0};
    tkc_conf_t *c = tkc_conf_load(TKC_SOURCE_DIR "/config/reference.ini", no_env, &rep);
    if (!c)
        dump_report(&rep);
    ck_assert_ptr_nonnull(c);
    tkc_conf_report_clear(&rep);
    tkc_conf_destroy(c);
}
END_TEST

START_TEST(test_conf_docs_match_table)
{
    char *doc = slurp(TKC_SOURCE_DIR "/docs/configuration.md");
    char *md = tkc_conf_keys_markdown();
    ck_assert_msg(strstr(doc, md) != NULL,
                  "docs/configuration.md does not contain the key table; regenerate it with "
                  "`tikv-kafka-cdc check-config --keys-markdown`");
    tkc_free(md);
    tkc_free(doc);
}
END_TEST

static Suite *conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("values");
    tcase_add_test(tc, test_conf_defaults);
    tcase_add_test(tc, test_conf_values_and_names);
    tcase_add_test(tc, test_conf_continuation_lines);
    tcase_add_test(tc, test_conf_dump_round_trip);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_conf_errors_name_file_line_key);
    tcase_add_test(tc, test_conf_error_each_case_fails_alone);
    tcase_add_test(tc, test_conf_structure_errors);
    tcase_add_test(tc, test_conf_cross_key_rules);
    suite_add_tcase(s, tc);
    tc = tcase_create("env");
    tcase_add_test(tc, test_conf_env_overrides);
    tcase_add_test(tc, test_conf_env_errors_and_warnings);
    tcase_add_test(tc, test_conf_messages_are_one_line);
    suite_add_tcase(s, tc);
    tc = tcase_create("secrets");
    tcase_add_test(tc, test_conf_secrets_never_printed);
    suite_add_tcase(s, tc);
    tc = tcase_create("units");
    tcase_add_test(tc, test_conf_durations);
    tcase_add_test(tc, test_conf_sizes);
    tcase_add_test(tc, test_conf_tso);
    suite_add_tcase(s, tc);
    tc = tcase_create("docs");
    tcase_add_test(tc, test_conf_memory_budget);
    tcase_add_test(tc, test_conf_memory_budget_errors);
    tcase_add_test(tc, test_conf_reference_lists_every_key);
    tcase_add_test(tc, test_conf_docs_match_table);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(conf_suite)
