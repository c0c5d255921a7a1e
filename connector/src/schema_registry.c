/*
 * schema_registry.c: Confluent Schema Registry client (see schema_registry.h).
 *
 * Data flow: the Avro codec asks for the id of "<topic>-value" once per
 * topic and schema; consumers ask for a schema by id once per id. Both
 * answers are immutable in the registry (an id always names the same
 * schema; a subject keeps a registered schema's version), so they are
 * cached for the client's lifetime and never invalidated.
 *
 * Threads: any. http_lock serialises requests on the one curl easy handle
 * (which keeps the connection alive between requests); cache_lock guards the
 * two caches and the counters and is never held across I/O, so a thread
 * answered from the cache never waits for another thread's HTTP retries.
 *
 * Retries: connection-level failures (refused, reset, timeout, empty reply)
 * and HTTP 5xx/408/429 are transient; they are retried up to max_attempts
 * with exponential backoff (initial, doubling, capped, +-20% jitter so that
 * several connectors do not retry in lockstep). Everything else is an
 * answer: 409 incompatible, 422 invalid, 401/403 and other 4xx.
 *
 * Secrets: the password lives only in this struct and in curl's options.
 * Logged URLs come from the parsed URL with user-info removed.
 */
#include "schema_registry.h"
#include "util/err.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/mem.h"

#define SR_LOG "schema_registry"
/* A registry answer larger than this is treated as a broken peer. */
#define SR_MAX_RESPONSE (64u << 20)
#define SR_CONTENT_TYPE "Content-Type: application/vnd.schemaregistry.v1+json"
#define SR_ACCEPT                                                                              \
    "Accept: application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json; "    \
    "qs=0.9, application/json; qs=0.5"

struct tkc_schema_registry_s {
    char *url; /* base, no user-info, no trailing slash: safe to log */
    char *username, *password;
    char *ca_file, *ca_path, *cert_file, *key_file;
    bool insecure;
    int connect_timeout_ms, request_timeout_ms;
    int max_attempts, backoff_initial_ms, backoff_max_ms;

    pthread_mutex_t http_lock; /* curl, jitter */
    CURL *curl;
    struct curl_slist *headers;
    uint64_t jitter_state;

    pthread_mutex_t cache_lock; /* the caches and stats */
    tkc_hashmap_t *ids;         /* subject '\0' schema -> (id + 1) */
    tkc_hashmap_t *schemas;     /* id (u32) -> char * schema text */
    tkc_schema_registry_stats_t stats;
};

typedef struct body_s {
    char *data;
    size_t len, cap;
    bool too_big;
} body_t;

void tkc_schema_registry_conf_init(tkc_schema_registry_conf_t *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->connect_timeout_ms = 5000;
    conf->request_timeout_ms = 30000;
    conf->max_attempts = 6;
    conf->backoff_initial_ms = 100;
    conf->backoff_max_ms = 5000;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? tkc_strdup(s) : NULL;
}

/* Splits user-info off @p url; @returns the clean URL (malloc'd) or NULL. */
static char *parse_url(const char *url, char **user, char **pass, char *errstr,
                       size_t errstr_size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *clean = NULL, *out = NULL;
    if (!u)
        return NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        /* The URL may carry a password: never echo it. */
        tkc_err_set(errstr, errstr_size, "schema registry URL is not a valid URL (%s)",
               curl_url_strerror(uc));
        goto done;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        tkc_err_set(errstr, errstr_size, "schema registry URL must be http:// or https://");
        goto done;
    }
    char *v = NULL;
    if (curl_url_get(u, CURLUPART_USER, &v, CURLU_URLDECODE) == CURLUE_OK) {
        *user = tkc_strdup(v);
        curl_free(v);
    }
    v = NULL;
    if (curl_url_get(u, CURLUPART_PASSWORD, &v, CURLU_URLDECODE) == CURLUE_OK) {
        *pass = tkc_strdup(v);
        curl_free(v);
    }
    curl_url_set(u, CURLUPART_USER, NULL, 0);
    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
    curl_url_set(u, CURLUPART_QUERY, NULL, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    if (curl_url_get(u, CURLUPART_URL, &clean, 0) != CURLUE_OK) {
        tkc_err_set(errstr, errstr_size, "schema registry URL cannot be normalised");
        goto done;
    }
    size_t n = strlen(clean);
    while (n > 0 && clean[n - 1] == '/')
        n--;
    out = tkc_strndup(clean, n);
done:
    curl_free(scheme);
    curl_free(clean);
    curl_url_cleanup(u);
    return out;
}

tkc_schema_registry_t *tkc_schema_registry_new(const tkc_schema_registry_conf_t *conf,
                                               char *errstr, size_t errstr_size)
{
    if (!conf || !conf->url || !*conf->url) {
        tkc_err_set(errstr, errstr_size, "schema registry URL is empty");
        return NULL;
    }
    if (conf->max_attempts < 0 || conf->backoff_initial_ms < 0 || conf->backoff_max_ms < 0 ||
        conf->connect_timeout_ms < 0 || conf->request_timeout_ms < 0) {
        tkc_err_set(errstr, errstr_size, "schema registry timeouts and retry counts must be >= 0");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tkc_err_set(errstr, errstr_size, "curl_global_init failed");
        return NULL;
    }
    char *url_user = NULL, *url_pass = NULL;
    char *url = parse_url(conf->url, &url_user, &url_pass, errstr, errstr_size);
    if (!url) {
        tkc_free(url_user);
        tkc_free(url_pass);
        curl_global_cleanup();
        return NULL;
    }
    tkc_schema_registry_t *sr = tkc_calloc(1, sizeof(*sr));
    sr->url = url;
    if (conf->username && *conf->username) {
        sr->username = tkc_strdup(conf->username);
        sr->password = tkc_strdup(conf->password ? conf->password : "");
        tkc_free(url_user);
        tkc_free(url_pass);
    } else {
        sr->username = url_user;
        sr->password = url_user ? (url_pass ? url_pass : tkc_strdup("")) : NULL;
        if (!url_user)
            tkc_free(url_pass);
    }
    sr->ca_file = dup_or_null(conf->ca_file);
    sr->ca_path = dup_or_null(conf->ca_path);
    sr->cert_file = dup_or_null(conf->cert_file);
    sr->key_file = dup_or_null(conf->key_file);
    sr->insecure = conf->insecure_skip_verify;
    tkc_schema_registry_conf_t def;
    tkc_schema_registry_conf_init(&def);
    sr->connect_timeout_ms = conf->connect_timeout_ms ? conf->connect_timeout_ms
                                                      : def.connect_timeout_ms;
    sr->request_timeout_ms = conf->request_timeout_ms ? conf->request_timeout_ms
                                                      : def.request_timeout_ms;
    sr->max_attempts = conf->max_attempts ? conf->max_attempts : def.max_attempts;
    sr->backoff_initial_ms = conf->backoff_initial_ms ? conf->backoff_initial_ms
                                                      : def.backoff_initial_ms;
    sr->backoff_max_ms = conf->backoff_max_ms ? conf->backoff_max_ms : def.backoff_max_ms;
    if (sr->backoff_max_ms < sr->backoff_initial_ms)
        sr->backoff_max_ms = sr->backoff_initial_ms;
    sr->jitter_state = (uint64_t)tkc_clock_mono_ms() * 0x9e3779b97f4a7c15ULL | 1;

    pthread_mutex_init(&sr->http_lock, NULL);
    pthread_mutex_init(&sr->cache_lock, NULL);
    sr->ids = tkc_hashmap_new();
    sr->schemas = tkc_hashmap_new();
    sr->curl = curl_easy_init();
    sr->headers = curl_slist_append(NULL, SR_ACCEPT);
    if (!sr->curl || !sr->headers) {
        tkc_err_set(errstr, errstr_size, "cannot create a curl handle");
        tkc_schema_registry_destroy(sr);
        return NULL;
    }
    tkc_log(TKC_LOG_INFO, SR_LOG, "event=registry_client url=%s auth=%s tls_verify=%s", sr->url,
            sr->username ? "basic" : "none", sr->insecure ? "off" : "on");
    return sr;
}

static void free_str(void *p)
{
    tkc_free(p);
}

void tkc_schema_registry_destroy(tkc_schema_registry_t *sr)
{
    if (!sr)
        return;
    if (sr->curl)
        curl_easy_cleanup(sr->curl);
    curl_slist_free_all(sr->headers);
    tkc_hashmap_destroy(sr->ids, NULL);
    tkc_hashmap_destroy(sr->schemas, free_str);
    pthread_mutex_destroy(&sr->http_lock);
    pthread_mutex_destroy(&sr->cache_lock);
    if (sr->password) /* do not leave the secret in freed memory */
        memset(sr->password, 0, strlen(sr->password));
    tkc_free(sr->url);
    tkc_free(sr->username);
    tkc_free(sr->password);
    tkc_free(sr->ca_file);
    tkc_free(sr->ca_path);
    tkc_free(sr->cert_file);
    tkc_free(sr->key_file);
    tkc_free(sr);
    curl_global_cleanup();
}

const char *tkc_schema_registry_url(const tkc_schema_registry_t *sr)
{
    return sr->url;
}

void tkc_schema_registry_stats(tkc_schema_registry_t *sr, tkc_schema_registry_stats_t *out)
{
    pthread_mutex_lock(&sr->cache_lock);
    *out = sr->stats;
    pthread_mutex_unlock(&sr->cache_lock);
}

/* ===== HTTP ===== */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    body_t *b = opaque;
    size_t n = size * nmemb;
    if (b->len + n > SR_MAX_RESPONSE) {
        b->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = tkc_realloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Errors worth another attempt: the registry may be restarting or overloaded. */
static bool curl_transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static bool status_transient(long status)
{
    return status >= 500 || status == 408 || status == 429;
}

/* Called with http_lock held. */
static void backoff_sleep(tkc_schema_registry_t *sr, int retry)
{
    int64_t ms = sr->backoff_initial_ms;
    for (int i = 1; i < retry && ms < sr->backoff_max_ms; i++)
        ms *= 2;
    if (ms > sr->backoff_max_ms)
        ms = sr->backoff_max_ms;
    /* xorshift64: +-20% jitter */
    uint64_t x = sr->jitter_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sr->jitter_state = x;
    ms = ms * (80 + (int64_t)(x % 41)) / 100;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* One exchange with the registry; @returns the curl code, *status the HTTP status. */
static CURLcode http_once(tkc_schema_registry_t *sr, const char *method, const char *url,
                          const char *req_body, long *status, body_t *resp, char *curl_err)
{
    CURL *h = sr->curl;
    curl_easy_reset(h); /* keeps the live connection and caches */
    struct curl_slist *hdrs = sr->headers;
    struct curl_slist *post_hdrs = NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)sr->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)sr->request_timeout_ms);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tikv-kafka-cdc/" TKC_VERSION);
    if (sr->username) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, sr->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, sr->password);
    }
    if (sr->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, sr->ca_file);
    if (sr->ca_path)
        curl_easy_setopt(h, CURLOPT_CAPATH, sr->ca_path);
    if (sr->cert_file)
        curl_easy_setopt(h, CURLOPT_SSLCERT, sr->cert_file);
    if (sr->key_file)
        curl_easy_setopt(h, CURLOPT_SSLKEY, sr->key_file);
    if (sr->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (req_body) {
        post_hdrs = curl_slist_append(NULL, SR_ACCEPT);
        post_hdrs = curl_slist_append(post_hdrs, SR_CONTENT_TYPE);
        hdrs = post_hdrs;
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req_body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(req_body));
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_err[0] = '\0';
    CURLcode cc = curl_easy_perform(h);
    *status = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(post_hdrs);
    return cc;
}

/* The registry's {"error_code": N, "message": "..."} (or the raw body). */
static void registry_error(const body_t *b, int *code, char *msg, size_t msg_size)
{
    *code = 0;
    snprintf(msg, msg_size, "%s", b->len ? b->data : "(empty body)");
    json_t *j = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    if (j) {
        json_t *c = json_object_get(j, "error_code");
        json_t *m = json_object_get(j, "message");
        if (json_is_integer(c))
            *code = (int)json_integer_value(c);
        if (json_is_string(m))
            snprintf(msg, msg_size, "%s", json_string_value(m));
        json_decref(j);
    }
}

/*
 * Performs @p method on @p path (already escaped) with retries. On
 * TKC_ERR_OK *status is a final (non-transient) HTTP status and *resp holds
 * its body; the caller interprets it.
 */
static tkc_err_t request(tkc_schema_registry_t *sr, const char *method, const char *path,
                         const char *req_body, long *status, body_t *resp, char *errstr,
                         size_t errstr_size)
{
    size_t ulen = strlen(sr->url) + strlen(path) + 1;
    char *url = tkc_malloc(ulen);
    snprintf(url, ulen, "%s%s", sr->url, path);
    char curl_err[CURL_ERROR_SIZE];
    tkc_err_t err = TKC_ERR_TRANSPORT;
    pthread_mutex_lock(&sr->http_lock);
    for (int attempt = 1;; attempt++) {
        resp->len = 0;
        resp->too_big = false;
        if (resp->data)
            resp->data[0] = '\0';
        CURLcode cc = http_once(sr, method, url, req_body, status, resp, curl_err);
        pthread_mutex_lock(&sr->cache_lock);
        sr->stats.requests++;
        if (attempt > 1)
            sr->stats.retries++;
        pthread_mutex_unlock(&sr->cache_lock);

        char reason[CURL_ERROR_SIZE + 64];
        bool transient;
        if (cc != CURLE_OK) {
            transient = curl_transient(cc) && !resp->too_big;
            snprintf(reason, sizeof(reason), "%s%s%s",
                     resp->too_big ? "response larger than 64 MiB" : curl_easy_strerror(cc),
                     curl_err[0] ? ": " : "", curl_err);
        } else if (status_transient(*status)) {
            transient = true;
            int code;
            char msg[256];
            registry_error(resp, &code, msg, sizeof(msg));
            snprintf(reason, sizeof(reason), "HTTP %ld: %s", *status, msg);
        } else {
            err = TKC_ERR_OK;
            break;
        }
        if (!transient || attempt >= sr->max_attempts) {
            tkc_log(TKC_LOG_ERROR, SR_LOG,
                    "event=registry_request_failed method=%s url=%s%s attempts=%d reason=\"%s\"",
                    method, sr->url, path, attempt, reason);
            tkc_err_set(errstr, errstr_size,
                   "schema registry %s %s%s failed after %d attempt%s: %s", method, sr->url,
                   path, attempt, attempt == 1 ? "" : "s", reason);
            err = cc == CURLE_OK || transient ? TKC_ERR_TRANSPORT : TKC_ERR_CONF;
            break;
        }
        tkc_log(TKC_LOG_WARN, SR_LOG,
                "event=registry_retry method=%s url=%s%s attempt=%d reason=\"%s\"", method,
                sr->url, path, attempt, reason);
        backoff_sleep(sr, attempt);
    }
    pthread_mutex_unlock(&sr->http_lock);
    tkc_free(url);
    return err;
}

/* Maps a final non-2xx answer to an error and message. */
static tkc_err_t answer_error(tkc_schema_registry_t *sr, long status, const body_t *resp,
                              const char *what, const char *target, char *errstr,
                              size_t errstr_size)
{
    int code;
    char msg[1024];
    registry_error(resp, &code, msg, sizeof(msg));
    tkc_err_t err;
    if (status == 409)
        err = TKC_ERR_INCOMPATIBLE;
    else if (status == 422)
        err = TKC_ERR_INVALID_ARG;
    else if (status == 404)
        err = TKC_ERR_NOT_FOUND;
    else
        err = TKC_ERR_CONF;
    const char *verdict = status == 409   ? "is incompatible with the registered versions"
                          : status == 422 ? "was rejected as invalid"
                          : status == 401 ? "was refused: authentication failed"
                          : status == 403 ? "was refused: not authorized"
                          : status == 404 ? "was not found"
                                          : "was refused";
    tkc_err_set(errstr, errstr_size, "schema registry %s: %s %s (HTTP %ld, error_code %d): %s",
           sr->url, what, verdict, status, code, msg);
    tkc_log(TKC_LOG_ERROR, SR_LOG,
            "event=registry_refused url=%s %s status=%ld error_code=%d message=\"%.300s\"",
            sr->url, target, status, code, msg);
    return err;
}

/* ===== operations ===== */

static char *id_key(const char *subject, const char *schema, size_t *klen)
{
    size_t a = strlen(subject), b = strlen(schema);
    char *k = tkc_malloc(a + 1 + b);
    memcpy(k, subject, a);
    k[a] = '\0';
    memcpy(k + a + 1, schema, b);
    *klen = a + 1 + b;
    return k;
}

static void cache_schema(tkc_schema_registry_t *sr, uint32_t id, const char *schema)
{
    /* called with cache_lock held */
    if (!tkc_hashmap_get(sr->schemas, &id, sizeof(id)))
        tkc_hashmap_put(sr->schemas, &id, sizeof(id), tkc_strdup(schema));
}

tkc_err_t tkc_schema_registry_register(tkc_schema_registry_t *sr, const char *subject,
                                       const char *schema, uint32_t *id, char *errstr,
                                       size_t errstr_size)
{
    if (!subject || !*subject || !schema) {
        tkc_err_set(errstr, errstr_size, "schema registry: empty subject or schema");
        return TKC_ERR_INVALID_ARG;
    }
    size_t klen;
    char *key = id_key(subject, schema, &klen);
    pthread_mutex_lock(&sr->cache_lock);
    void *hit = tkc_hashmap_get(sr->ids, key, klen);
    if (hit)
        sr->stats.cache_hits++;
    pthread_mutex_unlock(&sr->cache_lock);
    if (hit) {
        tkc_free(key);
        *id = (uint32_t)((uintptr_t)hit - 1);
        return TKC_ERR_OK;
    }

    char *esc = curl_easy_escape(NULL, subject, 0);
    size_t plen = strlen(esc) + 32;
    char *path = tkc_malloc(plen);
    snprintf(path, plen, "/subjects/%s/versions", esc);
    curl_free(esc);
    json_t *req = json_pack("{s:s}", "schema", schema);
    char *req_body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    body_t resp = {0};
    long status = 0;
    tkc_err_t err;
    if (!req_body) {
        tkc_err_set(errstr, errstr_size, "schema registry: schema for subject \"%s\" is not UTF-8",
               subject);
        err = TKC_ERR_INVALID_ARG;
        goto done;
    }
    err = request(sr, "POST", path, req_body, &status, &resp, errstr, errstr_size);
    if (err)
        goto done;
    char what[512];
    snprintf(what, sizeof(what), "schema for subject \"%s\"", subject);
    if (status < 200 || status > 299) {
        char target[300];
        snprintf(target, sizeof(target), "subject=%.256s", subject);
        err = answer_error(sr, status, &resp, what, target, errstr, errstr_size);
        goto done;
    }
    json_t *j = json_loadb(resp.data ? resp.data : "", resp.len, 0, NULL);
    json_t *jid = json_object_get(j, "id");
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
        json_integer_value(jid) > (json_int_t)UINT32_MAX) {
        tkc_err_set(errstr, errstr_size,
               "schema registry %s: registering the %s gave no valid id: %.200s", sr->url, what,
               resp.data ? resp.data : "");
        json_decref(j);
        err = TKC_ERR_CORRUPT;
        goto done;
    }
    *id = (uint32_t)json_integer_value(jid);
    json_decref(j);
    pthread_mutex_lock(&sr->cache_lock);
    if (!tkc_hashmap_get(sr->ids, key, klen))
        tkc_hashmap_put(sr->ids, key, klen, (void *)(uintptr_t)((uintptr_t)*id + 1));
    cache_schema(sr, *id, schema);
    pthread_mutex_unlock(&sr->cache_lock);
    tkc_log(TKC_LOG_INFO, SR_LOG, "event=schema_registered url=%s subject=\"%s\" id=%" PRIu32,
            sr->url, subject, *id);
done:
    tkc_free(req_body); /* from jansson, which allocates with malloc() like tkc_malloc */
    tkc_free(resp.data);
    tkc_free(path);
    tkc_free(key);
    return err;
}

tkc_err_t tkc_schema_registry_get_schema(tkc_schema_registry_t *sr, uint32_t id, char **schema,
                                         char *errstr, size_t errstr_size)
{
    pthread_mutex_lock(&sr->cache_lock);
    const char *hit = tkc_hashmap_get(sr->schemas, &id, sizeof(id));
    if (hit) {
        sr->stats.cache_hits++;
        *schema = tkc_strdup(hit);
    }
    pthread_mutex_unlock(&sr->cache_lock);
    if (hit)
        return TKC_ERR_OK;

    char path[64];
    snprintf(path, sizeof(path), "/schemas/ids/%" PRIu32, id);
    body_t resp = {0};
    long status = 0;
    tkc_err_t err = request(sr, "GET", path, NULL, &status, &resp, errstr, errstr_size);
    if (err)
        goto done;
    char what[64];
    snprintf(what, sizeof(what), "schema id %" PRIu32, id);
    if (status < 200 || status > 299) {
        char target[32];
        snprintf(target, sizeof(target), "schema_id=%" PRIu32, id);
        err = answer_error(sr, status, &resp, what, target, errstr, errstr_size);
        goto done;
    }
    json_t *j = json_loadb(resp.data ? resp.data : "", resp.len, 0, NULL);
    const char *text = json_string_value(json_object_get(j, "schema"));
    if (!text) {
        tkc_err_set(errstr, errstr_size, "schema registry %s: answer for %s has no \"schema\"",
               sr->url, what);
        json_decref(j);
        err = TKC_ERR_CORRUPT;
        goto done;
    }
    *schema = tkc_strdup(text);
    pthread_mutex_lock(&sr->cache_lock);
    cache_schema(sr, id, text);
    pthread_mutex_unlock(&sr->cache_lock);
    json_decref(j);
done:
    tkc_free(resp.data);
    return err;
}
