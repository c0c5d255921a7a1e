/*
 * check_registry_client.c: the connector's schema registry client
 * (schema_registry.h) and the codec's Confluent path against the test
 * registry over HTTP on loopback, plus the test registry's REST API itself
 * and the test-registry binary.
 *
 * Each test starts its own in-process registry (checked fixture: inside the
 * forked child), so tests share no state.
 */
#include "schema_registry.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "avro_codec.h"
#include "registry/test_registry.h"
#include "unit/check_main.h"
#include "util/log.h"
#include "util/mem.h"

#define SV1 "{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"
#define SV2_COMPAT                                                                           \
    "{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"     \
    "{\"name\":\"b\",\"type\":\"int\",\"default\":0}]}"
#define SV2_INCOMPAT                                                                         \
    "{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"     \
    "{\"name\":\"b\",\"type\":\"int\"}]}"

static tkc_test_registry_t *reg;
static char err[2048];

static void setup(void)
{
    char e[256];
    reg = tkc_test_registry_start(0, e, sizeof(e));
    ck_assert_msg(reg != NULL, "%s", e);
}

static void teardown(void)
{
    tkc_test_registry_stop(reg);
}

static tkc_schema_registry_t *client_for(const char *url, int max_attempts)
{
    tkc_schema_registry_conf_t conf;
    tkc_schema_registry_conf_init(&conf);
    conf.url = url;
    conf.max_attempts = max_attempts;
    conf.backoff_initial_ms = 5;
    conf.backoff_max_ms = 20;
    conf.request_timeout_ms = 5000;
    char e[256];
    tkc_schema_registry_t *sr = tkc_schema_registry_new(&conf, e, sizeof(e));
    ck_assert_msg(sr != NULL, "%s", e);
    return sr;
}

/* ===== a raw HTTP helper for the REST API checks ===== */

typedef struct buf_s {
    char *p;
    size_t n;
} buf_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    buf_t *b = opaque;
    b->p = tkc_realloc(b->p, b->n + size * nmemb + 1);
    memcpy(b->p + b->n, ptr, size * nmemb);
    b->n += size * nmemb;
    b->p[b->n] = '\0';
    return size * nmemb;
}

/* @returns the parsed JSON answer (caller decrefs); *status the HTTP status. */
static json_t *http(const char *method, const char *path, const char *body, long *status)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", tkc_test_registry_url(reg), path);
    CURL *h = curl_easy_init();
    buf_t b = {NULL, 0};
    struct curl_slist *hdrs =
        curl_slist_append(NULL, "Content-Type: application/vnd.schemaregistry.v1+json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    json_error_t jerr;
    json_t *j = json_loads(b.p ? b.p : "", JSON_DECODE_ANY, &jerr);
    ck_assert_msg(j != NULL, "%s %s: not JSON: %s", method, path, b.p ? b.p : "");
    tkc_free(b.p);
    return j;
}

/* {"schema": text} as a request body (malloc'd). */
static char *schema_body(const char *text)
{
    json_t *j = json_pack("{s:s}", "schema", text);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static void expect_error(const char *method, const char *path, const char *body,
                         long want_status, int want_code)
{
    long status;
    json_t *j = http(method, path, body, &status);
    ck_assert_msg(status == want_status, "%s %s: HTTP %ld, want %ld", method, path, status,
                  want_status);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "error_code")), want_code);
    ck_assert(json_is_string(json_object_get(j, "message")));
    json_decref(j);
}

/* ===== the client ===== */

START_TEST(test_registry_client_register_and_cache)
{
    tkc_schema_registry_t *sr = client_for(tkc_test_registry_url(reg), 3);
    uint32_t id = 0, id2 = 0;
    ck_assert_msg(tkc_schema_registry_register(sr, "a-value", SV1, &id, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_uint_eq(id, 1);
    uint64_t n = tkc_test_registry_requests(reg);
    ck_assert_uint_eq(n, 1);
    /* Cached: no second request. */
    ck_assert_int_eq(tkc_schema_registry_register(sr, "a-value", SV1, &id2, err, sizeof(err)), 0);
    ck_assert_uint_eq(id2, id);
    ck_assert_uint_eq(tkc_test_registry_requests(reg), n);
    /* Same schema in another subject: a request, the same global id. */
    ck_assert_int_eq(tkc_schema_registry_register(sr, "b-value", SV1, &id2, err, sizeof(err)), 0);
    ck_assert_uint_eq(id2, id);
    ck_assert_uint_eq(tkc_test_registry_requests(reg), n + 1);
    /* Another schema: a new id. */
    ck_assert_int_eq(
        tkc_schema_registry_register(sr, "c-value", SV2_COMPAT, &id2, err, sizeof(err)), 0);
    ck_assert_uint_eq(id2, 2);
    /* Whitespace and key order do not make a new schema. */
    ck_assert_int_eq(tkc_schema_registry_register(
                         sr, "d-value",
                         "{ \"fields\": [ {\"type\": \"int\", \"name\": \"a\"} ], \"name\": "
                         "\"T\", \"type\": \"record\" }",
                         &id2, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(id2, 1);

    /* Lookup by id: answered from the cache for ids this client registered. */
    char *text = NULL;
    n = tkc_test_registry_requests(reg);
    ck_assert_int_eq(tkc_schema_registry_get_schema(sr, 1, &text, err, sizeof(err)), 0);
    ck_assert_str_eq(text, SV1);
    tkc_free(text);
    ck_assert_uint_eq(tkc_test_registry_requests(reg), n);
    tkc_schema_registry_stats_t st;
    tkc_schema_registry_stats(sr, &st);
    ck_assert_uint_eq(st.cache_hits, 2);
    ck_assert_uint_eq(st.retries, 0);

    /* A fresh client fetches, then caches. */
    tkc_schema_registry_t *sr2 = client_for(tkc_test_registry_url(reg), 3);
    ck_assert_int_eq(tkc_schema_registry_get_schema(sr2, 2, &text, err, sizeof(err)), 0);
    ck_assert_str_eq(text, SV2_COMPAT);
    tkc_free(text);
    ck_assert_int_eq(tkc_schema_registry_get_schema(sr2, 2, &text, err, sizeof(err)), 0);
    tkc_free(text);
    ck_assert_uint_eq(tkc_test_registry_requests(reg), n + 1);
    /* Unknown id: NOT_FOUND, not retried. */
    ck_assert_int_eq(tkc_schema_registry_get_schema(sr2, 77, &text, err, sizeof(err)),
                     TKC_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err, "40403"));
    ck_assert_uint_eq(tkc_test_registry_requests(reg), n + 2);
    tkc_schema_registry_destroy(sr2);
    tkc_schema_registry_destroy(sr);
}
END_TEST

START_TEST(test_registry_client_incompatible)
{
    tkc_schema_registry_t *sr = client_for(tkc_test_registry_url(reg), 5);
    uint32_t id;
    ck_assert_int_eq(tkc_schema_registry_register(sr, "t-value", SV1, &id, err, sizeof(err)), 0);
    uint64_t n = tkc_test_registry_requests(reg);
    ck_assert_int_eq(tkc_schema_registry_register(sr, "t-value", SV2_INCOMPAT, &id, err,
                                                  sizeof(err)),
                     TKC_ERR_INCOMPATIBLE);
    /* The message names the subject and carries the registry's reason. */
    ck_assert_ptr_nonnull(strstr(err, "\"t-value\""));
    ck_assert_ptr_nonnull(strstr(err, "incompatible"));
    ck_assert_ptr_nonnull(strstr(err, "HTTP 409"));
    ck_assert_ptr_nonnull(strstr(err, "READER_FIELD_MISSING_DEFAULT_VALUE"));
    ck_assert_ptr_nonnull(strstr(err, "'b'"));
    /* A 409 is an answer, not a failure: no retry. */
    ck_assert_uint_eq(tkc_test_registry_requests(reg), n + 1);
    /* A compatible evolution is accepted as version 2. */
    ck_assert_int_eq(
        tkc_schema_registry_register(sr, "t-value", SV2_COMPAT, &id, err, sizeof(err)), 0);
    /* With the subject at NONE the incompatible one is accepted too. */
    tkc_test_registry_set_level(reg, "t-value", TKC_REGISTRY_COMPAT_NONE);
    ck_assert_int_eq(
        tkc_schema_registry_register(sr, "t-value", SV2_INCOMPAT, &id, err, sizeof(err)), 0);
    /* An invalid schema is a 422: TKC_ERR_INVALID_ARG. */
    ck_assert_int_eq(tkc_schema_registry_register(sr, "t-value", "{\"type\":\"nope\"}", &id, err,
                                                  sizeof(err)),
                     TKC_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err, "42201"));
    tkc_schema_registry_destroy(sr);
}
END_TEST

START_TEST(test_registry_client_retries)
{
    tkc_schema_registry_t *sr = client_for(tkc_test_registry_url(reg), 4);
    uint32_t id;
    /* Three 500s, then success on the fourth attempt. */
    tkc_test_registry_fail_next(reg, 3, 500);
    ck_assert_msg(tkc_schema_registry_register(sr, "r-value", SV1, &id, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_uint_eq(tkc_test_registry_requests(reg), 4);
    tkc_schema_registry_stats_t st;
    tkc_schema_registry_stats(sr, &st);
    ck_assert_uint_eq(st.retries, 3);
    ck_assert_uint_eq(st.requests, 4);
    /* More failures than attempts: TRANSPORT after exactly max_attempts requests. */
    tkc_test_registry_fail_next(reg, 10, 503);
    ck_assert_int_eq(tkc_schema_registry_register(sr, "r2-value", SV1, &id, err, sizeof(err)),
                     TKC_ERR_TRANSPORT);
    ck_assert_uint_eq(tkc_test_registry_requests(reg), 8);
    ck_assert_ptr_nonnull(strstr(err, "4 attempts"));
    ck_assert_ptr_nonnull(strstr(err, "HTTP 503"));
    /* Nothing was cached: once the registry recovers the same call works. */
    tkc_test_registry_fail_next(reg, 0, 0);
    ck_assert_int_eq(tkc_schema_registry_register(sr, "r2-value", SV1, &id, err, sizeof(err)), 0);
    /* 429 is transient as well; lookups retry like registrations. */
    tkc_test_registry_fail_next(reg, 2, 429);
    char *text = NULL;
    tkc_schema_registry_t *sr2 = client_for(tkc_test_registry_url(reg), 4);
    ck_assert_int_eq(tkc_schema_registry_get_schema(sr2, id, &text, err, sizeof(err)), 0);
    ck_assert_str_eq(text, SV1);
    tkc_free(text);
    tkc_schema_registry_destroy(sr2);
    tkc_schema_registry_destroy(sr);
}
END_TEST

START_TEST(test_registry_client_connection_refused)
{
    /* A port nobody listens on: the registry's, after stopping it. */
    char url[64];
    snprintf(url, sizeof(url), "%s", tkc_test_registry_url(reg));
    tkc_test_registry_stop(reg);
    reg = NULL;
    tkc_schema_registry_t *sr = client_for(url, 3);
    uint32_t id;
    ck_assert_int_eq(tkc_schema_registry_register(sr, "x-value", SV1, &id, err, sizeof(err)),
                     TKC_ERR_TRANSPORT);
    ck_assert_ptr_nonnull(strstr(err, "3 attempts"));
    ck_assert_ptr_nonnull(strstr(err, "onnect"));
    tkc_schema_registry_stats_t st;
    tkc_schema_registry_stats(sr, &st);
    ck_assert_uint_eq(st.requests, 3);
    tkc_schema_registry_destroy(sr);
    /* Restart for the teardown. */
    char e[256];
    reg = tkc_test_registry_start(0, e, sizeof(e));
}
END_TEST

static bool file_contains(int fd, const char *needle)
{
    off_t size = lseek(fd, 0, SEEK_END);
    char *buf = tkc_malloc((size_t)size + 1);
    ck_assert_int_eq(pread(fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    bool found = strstr(buf, needle) != NULL;
    tkc_free(buf);
    return found;
}

START_TEST(test_registry_client_basic_auth)
{
    const char *secret = "s3cret-pw";
    tkc_test_registry_set_auth(reg, "alice", secret);
    /* Capture the log lines to check that the password never appears. */
    char logpath[] = "/tmp/tkc-registry-log-XXXXXX";
    int logfd = mkstemp(logpath);
    ck_assert_int_ge(logfd, 0);
    unlink(logpath);
    tkc_log_set_fd(logfd);
    tkc_log_set_level(TKC_LOG_DEBUG);

    uint32_t id;
    tkc_schema_registry_t *anon = client_for(tkc_test_registry_url(reg), 3);
    ck_assert_int_eq(tkc_schema_registry_register(anon, "s-value", SV1, &id, err, sizeof(err)),
                     TKC_ERR_CONF);
    ck_assert_ptr_nonnull(strstr(err, "authentication failed"));
    tkc_schema_registry_destroy(anon);

    tkc_schema_registry_conf_t conf;
    tkc_schema_registry_conf_init(&conf);
    conf.url = tkc_test_registry_url(reg);
    conf.username = "alice";
    conf.password = "wrong";
    tkc_schema_registry_t *sr = tkc_schema_registry_new(&conf, err, sizeof(err));
    ck_assert_int_eq(tkc_schema_registry_register(sr, "s-value", SV1, &id, err, sizeof(err)),
                     TKC_ERR_CONF);
    tkc_schema_registry_destroy(sr);

    conf.password = secret;
    sr = tkc_schema_registry_new(&conf, err, sizeof(err));
    ck_assert_msg(tkc_schema_registry_register(sr, "s-value", SV1, &id, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_ptr_null(strstr(err, secret));
    tkc_schema_registry_destroy(sr);

    /* Credentials in the URL work and are stripped from what the client shows. */
    char url[256];
    snprintf(url, sizeof(url), "http://alice:%s@127.0.0.1:%u/", secret,
             tkc_test_registry_port(reg));
    sr = client_for(url, 2);
    ck_assert_ptr_null(strstr(tkc_schema_registry_url(sr), secret));
    ck_assert_ptr_null(strstr(tkc_schema_registry_url(sr), "alice"));
    char *text = NULL;
    ck_assert_msg(tkc_schema_registry_get_schema(sr, id, &text, err, sizeof(err)) == 0, "%s",
                  err);
    tkc_free(text);
    /* A failure message with these credentials does not show them either. */
    ck_assert_int_eq(tkc_schema_registry_get_schema(sr, 999, &text, err, sizeof(err)),
                     TKC_ERR_NOT_FOUND);
    ck_assert_ptr_null(strstr(err, secret));
    tkc_schema_registry_destroy(sr);

    ck_assert(file_contains(logfd, "schema_registered")); /* the capture works */
    ck_assert(!file_contains(logfd, secret));
    tkc_log_set_fd(2);
    close(logfd);
}
END_TEST

START_TEST(test_registry_client_bad_config)
{
    tkc_schema_registry_conf_t conf;
    tkc_schema_registry_conf_init(&conf);
    ck_assert_ptr_null(tkc_schema_registry_new(&conf, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "empty"));
    conf.url = "ftp://127.0.0.1/";
    ck_assert_ptr_null(tkc_schema_registry_new(&conf, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "http"));
    conf.url = "http://user:hunter2@[::1";
    ck_assert_ptr_null(tkc_schema_registry_new(&conf, err, sizeof(err)));
    ck_assert_ptr_null(strstr(err, "hunter2"));
}
END_TEST

/* ===== the test registry's REST API ===== */

START_TEST(test_registry_rest_api)
{
    long st;
    char *b1 = schema_body(SV1), *b2 = schema_body(SV2_COMPAT), *bx = schema_body(SV2_INCOMPAT);
    json_t *j = http("POST", "/subjects/a-value/versions", b1, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "id")), 1);
    json_decref(j);
    json_decref(http("POST", "/subjects/b-value/versions", b1, &st));
    json_decref(http("POST", "/subjects/a-value/versions", b2, &st));
    ck_assert_int_eq(st, 200);

    j = http("GET", "/subjects", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(json_array_size(j), 2);
    ck_assert_str_eq(json_string_value(json_array_get(j, 0)), "a-value");
    json_decref(j);
    j = http("GET", "/subjects/a-value/versions", NULL, &st);
    ck_assert_int_eq(json_array_size(j), 2);
    ck_assert_int_eq(json_integer_value(json_array_get(j, 1)), 2);
    json_decref(j);
    j = http("GET", "/subjects/a-value/versions/latest", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "subject")), "a-value");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "version")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "id")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(j, "schema")), SV2_COMPAT);
    json_decref(j);
    j = http("GET", "/schemas/ids/1", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "schema")), SV1);
    json_decref(j);
    /* Lookup of a registered schema. */
    j = http("POST", "/subjects/a-value", b1, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "version")), 1);
    json_decref(j);

    /* Confluent's error bodies. */
    expect_error("GET", "/subjects/nope/versions", NULL, 404, 40401);
    expect_error("GET", "/subjects/a-value/versions/9", NULL, 404, 40402);
    expect_error("GET", "/subjects/a-value/versions/x", NULL, 422, 42202);
    expect_error("GET", "/schemas/ids/99", NULL, 404, 40403);
    expect_error("POST", "/subjects/a-value", bx, 404, 40403);
    expect_error("POST", "/subjects/a-value/versions", "{\"schema\":\"{\"}", 422,
                 42201);
    expect_error("POST", "/subjects/b-value/versions", bx, 409, 409);
    expect_error("GET", "/nowhere", NULL, 404, 404);

    /* Compatibility levels: global and per subject. */
    j = http("GET", "/config", NULL, &st);
    ck_assert_str_eq(json_string_value(json_object_get(j, "compatibilityLevel")), "BACKWARD");
    json_decref(j);
    j = http("PUT", "/config", "{\"compatibility\":\"FULL\"}", &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "compatibility")), "FULL");
    json_decref(j);
    expect_error("PUT", "/config", "{\"compatibility\":\"SIDEWAYS\"}", 422,
                 42203);
    expect_error("GET", "/config/a-value", NULL, 404, 40408);
    j = http("GET", "/config/a-value?defaultToGlobal=true", NULL, &st);
    ck_assert_str_eq(json_string_value(json_object_get(j, "compatibilityLevel")), "FULL");
    json_decref(j);
    json_decref(http("PUT", "/config/a-value", "{\"compatibility\":\"NONE\"}", &st));
    j = http("GET", "/config/a-value", NULL, &st);
    ck_assert_str_eq(json_string_value(json_object_get(j, "compatibilityLevel")), "NONE");
    json_decref(j);
    /* The compatibility endpoint follows the subject's level. */
    j = http("POST", "/compatibility/subjects/b-value/versions/latest", bx, &st);
    ck_assert_int_eq(st, 200);
    ck_assert(json_is_false(json_object_get(j, "is_compatible")));
    json_decref(j);
    j = http("POST", "/compatibility/subjects/a-value/versions/latest", bx, &st);
    ck_assert(json_is_true(json_object_get(j, "is_compatible")));
    json_decref(j);
    /* Now NONE: the incompatible schema registers in a-value. */
    j = http("POST", "/subjects/a-value/versions", bx, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "id")), 3);
    json_decref(j);

    /* Fault injection over HTTP, for other processes. */
    json_decref(http("POST", "/_test/fail", "{\"count\":2,\"status\":502}", &st));
    expect_error("GET", "/subjects", NULL, 502, 50001);
    expect_error("GET", "/subjects", NULL, 502, 50001);
    json_decref(http("GET", "/subjects", NULL, &st));
    ck_assert_int_eq(st, 200);
    j = http("GET", "/_test/stats", NULL, &st);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "failed")), 2);
    json_decref(j);
    free(b1);
    free(b2);
    free(bx);
}
END_TEST

/* ===== the codec's Confluent path ===== */

static tkc_row_t *row(void)
{
    tkc_row_t *r = tkc_row_new(TKC_ROW_OP_PUT, (const uint8_t *)"k", 1, (const uint8_t *)"v", 1,
                               NULL, 0);
    r->has_old_value = true;
    r->commit_ts = 1u << 20;
    return r;
}

START_TEST(test_registry_codec_incompatible_stops)
{
    tkc_schema_registry_t *sr = client_for(tkc_test_registry_url(reg), 3);
    /* Someone registered an unrelated schema for the topic first. */
    uint32_t id;
    ck_assert_int_eq(tkc_schema_registry_register(sr, "p.orders-value", SV1, &id, err,
                                                  sizeof(err)), 0);
    tkc_avro_codec_t *c = tkc_avro_codec_new(TKC_SCHEMA_DIR, sr, err, sizeof(err));
    ck_assert_ptr_nonnull(c);
    tkc_row_t *r = row();
    uint8_t *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(tkc_avro_codec_encode_row(c, "p.orders", "orders", r, &out, &len, err,
                                               sizeof(err)),
                     TKC_ERR_INCOMPATIBLE);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(err, "\"p.orders-value\""));
    ck_assert_ptr_nonnull(strstr(err, "incompatible"));
    ck_assert_ptr_nonnull(strstr(err, "details"));
    /* Other topics are unaffected. */
    ck_assert_int_eq(tkc_avro_codec_encode_row(c, "p.other", "other", r, &out, &len, err,
                                               sizeof(err)), 0);
    tkc_free(out);
    /* The failure was not cached: once the operator allows it, the same row goes out. */
    tkc_test_registry_set_level(reg, "p.orders-value", TKC_REGISTRY_COMPAT_NONE);
    ck_assert_int_eq(tkc_avro_codec_encode_row(c, "p.orders", "orders", r, &out, &len, err,
                                               sizeof(err)), 0);
    tkc_avro_row_change_t rc;
    ck_assert_int_eq(tkc_avro_codec_decode_row(c, out, len, &rc, err, sizeof(err)), 0);
    ck_assert_uint_eq(rc.row->commit_ts, 1u << 20);
    tkc_avro_row_change_clear(&rc);
    tkc_free(out);
    tkc_row_destroy(r);
    tkc_avro_codec_destroy(c);
    tkc_schema_registry_destroy(sr);
}
END_TEST

START_TEST(test_registry_codec_transient)
{
    tkc_schema_registry_t *sr = client_for(tkc_test_registry_url(reg), 3);
    tkc_avro_codec_t *c = tkc_avro_codec_new(TKC_SCHEMA_DIR, sr, err, sizeof(err));
    tkc_row_t *r = row();
    uint8_t *out = NULL;
    size_t len;
    tkc_test_registry_fail_next(reg, 2, 500);
    ck_assert_int_eq(tkc_avro_codec_encode_row(c, "p.a", "a", r, &out, &len, err, sizeof(err)),
                     0);
    tkc_free(out);
    tkc_test_registry_fail_next(reg, 100, 500);
    out = NULL;
    ck_assert_int_eq(tkc_avro_codec_encode_watermark(c, "p.watermark", "f", 1, 2, &out, &len,
                                                     err, sizeof(err)),
                     TKC_ERR_TRANSPORT);
    ck_assert_ptr_null(out);
    /* The cached topic still encodes while the registry is down. */
    ck_assert_int_eq(tkc_avro_codec_encode_row(c, "p.a", "a", r, &out, &len, err, sizeof(err)),
                     0);
    tkc_free(out);
    tkc_test_registry_fail_next(reg, 0, 0);
    ck_assert_int_eq(tkc_avro_codec_encode_watermark(c, "p.watermark", "f", 1, 2, &out, &len,
                                                     err, sizeof(err)), 0);
    tkc_free(out);
    tkc_row_destroy(r);
    tkc_avro_codec_destroy(c);
    tkc_schema_registry_destroy(sr);
}
END_TEST

/* Two threads, one codec each, one shared client: registrations race on the same subjects. */
typedef struct worker_s {
    tkc_schema_registry_t *sr;
    int failures;
} worker_t;

static void *worker(void *opaque)
{
    worker_t *w = opaque;
    char e[512];
    tkc_avro_codec_t *c = tkc_avro_codec_new(TKC_SCHEMA_DIR, w->sr, e, sizeof(e));
    if (!c) {
        w->failures++;
        return NULL;
    }
    tkc_row_t *r = row();
    for (int i = 0; i < 200; i++) {
        char topic[32];
        snprintf(topic, sizeof(topic), "p.t%d", i % 8);
        uint8_t *out;
        size_t len;
        tkc_avro_row_change_t rc;
        if (tkc_avro_codec_encode_row(c, topic, "t", r, &out, &len, e, sizeof(e)) ||
            tkc_avro_codec_decode_row(c, out, len, &rc, e, sizeof(e))) {
            w->failures++;
            continue;
        }
        tkc_avro_row_change_clear(&rc);
        tkc_free(out);
    }
    tkc_row_destroy(r);
    tkc_avro_codec_destroy(c);
    return NULL;
}

START_TEST(test_registry_codec_threads_share_client)
{
    tkc_schema_registry_t *sr = client_for(tkc_test_registry_url(reg), 3);
    worker_t w[2] = {{sr, 0}, {sr, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, worker, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(w[0].failures + w[1].failures, 0);
    /* 8 subjects, each registered once or twice (both threads may miss the cache at once). */
    ck_assert_uint_le(tkc_test_registry_requests(reg), 16);
    tkc_schema_registry_destroy(sr);
}
END_TEST

/* ===== the binary ===== */

START_TEST(test_registry_binary)
{
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(TKC_TEST_REGISTRY_BIN, "test-registry", "--level", "FULL", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[256] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    line[strcspn(line, "\n")] = '\0';
    ck_assert_msg(strncmp(line, "http://127.0.0.1:", 17) == 0, "first line: %s", line);

    tkc_schema_registry_t *sr = client_for(line, 3);
    uint32_t id;
    ck_assert_msg(tkc_schema_registry_register(sr, "bin-value", SV1, &id, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_uint_eq(id, 1);
    /* FULL: a new required field is refused. */
    ck_assert_int_eq(tkc_schema_registry_register(sr, "bin-value", SV2_INCOMPAT, &id, err,
                                                  sizeof(err)),
                     TKC_ERR_INCOMPATIBLE);
    tkc_schema_registry_destroy(sr);

    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    fclose(f);
}
END_TEST

static Suite *registry_client_suite(void)
{
    Suite *s = suite_create("registry_client");
    TCase *tc = tcase_create("client");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_registry_client_register_and_cache);
    tcase_add_test(tc, test_registry_client_incompatible);
    tcase_add_test(tc, test_registry_client_retries);
    tcase_add_test(tc, test_registry_client_connection_refused);
    tcase_add_test(tc, test_registry_client_basic_auth);
    tcase_add_test(tc, test_registry_client_bad_config);
    tcase_add_test(tc, test_registry_rest_api);
    tcase_add_test(tc, test_registry_codec_incompatible_stops);
    tcase_add_test(tc, test_registry_codec_transient);
    tcase_add_test(tc, test_registry_codec_threads_share_client);
    tcase_add_test(tc, test_registry_binary);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(registry_client_suite)
