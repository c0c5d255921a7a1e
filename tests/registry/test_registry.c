/*
 * test_registry.c: the test schema registry's HTTP server (see
 * test_registry.h for the API it serves).
 *
 * libmicrohttpd calls handle() on its one internal thread: first with no
 * request state (we allocate a body buffer), then once per body chunk, then
 * once more to answer. All registry state sits behind one mutex, taken only
 * while answering, so the test thread may inject faults or change levels at
 * any time.
 *
 * State is what Confluent keeps: global schemas by id (ids from 1, one per
 * distinct normalized schema), subjects with their version lists (version n
 * is versions[n-1], a schema id), per-subject and global compatibility
 * levels. Nothing is deleted.
 */
#include "registry/test_registry.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

#define REG_CONTENT_TYPE "application/vnd.schemaregistry.v1+json"
#define REG_MAX_BODY (16u << 20)

typedef struct schema_s {
    uint32_t id;
    char *text; /* as first registered */
    tkc_registry_compat_schema_t *parsed;
} schema_t;

typedef struct subject_s {
    char *name;
    uint32_t *versions; /* schema ids; version n = versions[n - 1] */
    size_t n_versions;
    bool has_level;
    tkc_registry_compat_level_t level;
} subject_t;

struct tkc_test_registry_s {
    struct MHD_Daemon *daemon;
    uint16_t port;
    char url[64];

    pthread_mutex_t lock;
    schema_t *schemas; /* index = id - 1 */
    size_t n_schemas;
    subject_t *subjects;
    size_t n_subjects;
    tkc_registry_compat_level_t level;
    unsigned fail_count, fail_status;
    char *auth_user, *auth_pass;
    uint64_t requests, failed;
    bool require_client_cert; /* https with a client CA: refuse requests without a valid cert */
};

typedef struct request_s {
    char *body;
    size_t len;
    bool too_big;
} request_t;

/* One answer: status + JSON (owned, freed after sending). */
typedef struct answer_s {
    unsigned status;
    json_t *json;
} answer_t;

static answer_t ok(json_t *j)
{
    return (answer_t){200, j};
}

__attribute__((format(printf, 3, 4))) static answer_t error(unsigned status, int code,
                                                            const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return (answer_t){status, json_pack("{s:i,s:s}", "error_code", code, "message", msg)};
}

/* ===== state helpers (lock held) ===== */

static subject_t *find_subject(tkc_test_registry_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_subjects; i++)
        if (strcmp(r->subjects[i].name, name) == 0)
            return &r->subjects[i];
    return NULL;
}

static subject_t *add_subject(tkc_test_registry_t *r, const char *name)
{
    r->subjects = tkc_realloc(r->subjects, (r->n_subjects + 1) * sizeof(*r->subjects));
    subject_t *s = &r->subjects[r->n_subjects++];
    memset(s, 0, sizeof(*s));
    s->name = tkc_strdup(name);
    return s;
}

static schema_t *schema_by_id(tkc_test_registry_t *r, uint32_t id)
{
    return id >= 1 && id <= r->n_schemas ? &r->schemas[id - 1] : NULL;
}

static tkc_registry_compat_level_t effective_level(tkc_test_registry_t *r, const subject_t *s)
{
    return s && s->has_level ? s->level : r->level;
}

static json_t *version_json(tkc_test_registry_t *r, const subject_t *s, size_t version)
{
    schema_t *sc = schema_by_id(r, s->versions[version - 1]);
    return json_pack("{s:s,s:i,s:i,s:s}", "subject", s->name, "version", (json_int_t)version,
                     "id", (json_int_t)sc->id, "schema", sc->text);
}

/* Parses {"schema": "...", "schemaType": "AVRO"?}; on failure *err is the answer. */
static tkc_registry_compat_schema_t *body_schema(const request_t *req, const char **text,
                                                 json_t **body, answer_t *err)
{
    json_error_t jerr;
    *body = json_loadb(req->body ? req->body : "", req->len, 0, &jerr);
    if (!*body) {
        *err = error(400, 400, "Unexpected request body: %s", jerr.text);
        return NULL;
    }
    *text = json_string_value(json_object_get(*body, "schema"));
    const char *type = json_string_value(json_object_get(*body, "schemaType"));
    if (!*text) {
        *err = error(422, 42201, "Empty schema");
        return NULL;
    }
    if (type && strcmp(type, "AVRO") != 0) {
        *err = error(422, 42201, "Invalid schema type %s: this test registry knows only AVRO",
                     type);
        return NULL;
    }
    char perr[1024];
    tkc_registry_compat_schema_t *s = tkc_registry_compat_parse(*text, strlen(*text), perr,
                                                                sizeof(perr));
    if (!s)
        *err = error(422, 42201, "Invalid schema %s, details: %s", *text, perr);
    return s;
}

/* 0 when the path segment is not a positive decimal version, -1 for "latest". */
static long parse_version(const char *v)
{
    if (strcmp(v, "latest") == 0 || strcmp(v, "-1") == 0)
        return -1;
    char *end;
    long n = strtol(v, &end, 10);
    return *v && !*end && n > 0 ? n : 0;
}

/* ===== routes (lock held) ===== */

static answer_t register_schema(tkc_test_registry_t *r, const char *subject,
                                const request_t *req)
{
    const char *text;
    json_t *body;
    answer_t err;
    tkc_registry_compat_schema_t *cand = body_schema(req, &text, &body, &err);
    if (!cand) {
        json_decref(body);
        return err;
    }
    const char *norm = tkc_registry_compat_normalized(cand);
    subject_t *s = find_subject(r, subject);
    /* Already a version of this subject: same id, no check (Confluent). */
    for (size_t v = 0; s && v < s->n_versions; v++) {
        schema_t *sc = schema_by_id(r, s->versions[v]);
        if (strcmp(tkc_registry_compat_normalized(sc->parsed), norm) == 0) {
            tkc_registry_compat_schema_free(cand);
            json_decref(body);
            return ok(json_pack("{s:i}", "id", (json_int_t)sc->id));
        }
    }
    if (s && s->n_versions) {
        const tkc_registry_compat_schema_t **vers = tkc_calloc(s->n_versions, sizeof(*vers));
        for (size_t v = 0; v < s->n_versions; v++)
            vers[v] = schema_by_id(r, s->versions[v])->parsed;
        tkc_registry_compat_level_t level = effective_level(r, s);
        size_t bad = 0;
        const char *etype = NULL;
        char desc[2048] = "";
        bool compatible = tkc_registry_compat_check(level, cand, vers, s->n_versions, &bad,
                                                    &etype, desc, sizeof(desc));
        tkc_free(vers);
        if (!compatible) {
            schema_t *old = schema_by_id(r, s->versions[bad]);
            answer_t a = error(409, 409,
                               "Schema being registered is incompatible with an earlier schema "
                               "for subject \"%s\", details: [{errorType:'%s', description:'%s'}, "
                               "{oldSchemaVersion: %zu}, {oldSchema: '%s'}, {compatibility: "
                               "'%s'}]",
                               subject, etype, desc, bad + 1, old->text,
                               tkc_registry_compat_level_name(level));
            tkc_registry_compat_schema_free(cand);
            json_decref(body);
            return a;
        }
    }
    /* The same schema elsewhere keeps its global id. */
    schema_t *sc = NULL;
    for (size_t i = 0; i < r->n_schemas && !sc; i++)
        if (strcmp(tkc_registry_compat_normalized(r->schemas[i].parsed), norm) == 0)
            sc = &r->schemas[i];
    if (sc) {
        tkc_registry_compat_schema_free(cand);
    } else {
        r->schemas = tkc_realloc(r->schemas, (r->n_schemas + 1) * sizeof(*r->schemas));
        sc = &r->schemas[r->n_schemas++];
        sc->id = (uint32_t)r->n_schemas;
        sc->text = tkc_strdup(text);
        sc->parsed = cand;
    }
    json_decref(body);
    if (!s)
        s = add_subject(r, subject);
    s->versions = tkc_realloc(s->versions, (s->n_versions + 1) * sizeof(*s->versions));
    s->versions[s->n_versions++] = sc->id;
    return ok(json_pack("{s:i}", "id", (json_int_t)sc->id));
}

static answer_t lookup_schema(tkc_test_registry_t *r, const char *subject, const request_t *req)
{
    subject_t *s = find_subject(r, subject);
    if (!s)
        return error(404, 40401, "Subject '%s' not found.", subject);
    const char *text;
    json_t *body;
    answer_t err;
    tkc_registry_compat_schema_t *cand = body_schema(req, &text, &body, &err);
    if (!cand) {
        json_decref(body);
        return err;
    }
    answer_t a = error(404, 40403, "Schema not found");
    for (size_t v = 0; v < s->n_versions; v++) {
        schema_t *sc = schema_by_id(r, s->versions[v]);
        if (strcmp(tkc_registry_compat_normalized(sc->parsed),
                   tkc_registry_compat_normalized(cand)) == 0) {
            json_decref(a.json);
            a = ok(version_json(r, s, v + 1));
            break;
        }
    }
    tkc_registry_compat_schema_free(cand);
    json_decref(body);
    return a;
}

static answer_t check_compat(tkc_test_registry_t *r, const char *subject, const char *version,
                             const request_t *req)
{
    subject_t *s = find_subject(r, subject);
    if (!s)
        return error(404, 40401, "Subject '%s' not found.", subject);
    long v = parse_version(version);
    if (v == 0)
        return error(422, 42202, "The specified version '%s' is not a valid version id.",
                     version);
    if (v == -1)
        v = (long)s->n_versions;
    if ((size_t)v > s->n_versions)
        return error(404, 40402, "Version %ld not found.", v);
    const char *text;
    json_t *body;
    answer_t err;
    tkc_registry_compat_schema_t *cand = body_schema(req, &text, &body, &err);
    if (!cand) {
        json_decref(body);
        return err;
    }
    const tkc_registry_compat_schema_t *old = schema_by_id(r, s->versions[v - 1])->parsed;
    const char *etype = NULL;
    char desc[2048] = "";
    bool c = tkc_registry_compat_check(effective_level(r, s), cand, &old, 1, NULL, &etype, desc,
                                       sizeof(desc));
    tkc_registry_compat_schema_free(cand);
    json_decref(body);
    json_t *j = json_pack("{s:b}", "is_compatible", c);
    if (!c)
        json_object_set_new(j, "messages", json_pack("[s]", desc));
    return ok(j);
}

static answer_t config(tkc_test_registry_t *r, const char *method, const char *subject,
                       const request_t *req, bool default_to_global)
{
    subject_t *s = subject ? find_subject(r, subject) : NULL;
    if (strcmp(method, "GET") == 0) {
        if (subject && (!s || !s->has_level) && !default_to_global)
            return error(404, 40408,
                         "Subject '%s' does not have subject-level compatibility configured",
                         subject);
        return ok(json_pack("{s:s}", "compatibilityLevel",
                            tkc_registry_compat_level_name(effective_level(r, s))));
    }
    if (strcmp(method, "PUT") != 0)
        return error(405, 405, "HTTP 405 Method Not Allowed");
    json_t *body = json_loadb(req->body ? req->body : "", req->len, 0, NULL);
    const char *name = json_string_value(json_object_get(body, "compatibility"));
    tkc_registry_compat_level_t level;
    if (!name || tkc_registry_compat_level_parse(name, &level) != 0) {
        json_decref(body);
        return error(422, 42203, "Invalid compatibility level. Valid values are none, backward, "
                     "forward, full, backward_transitive, forward_transitive, and "
                     "full_transitive");
    }
    json_decref(body);
    if (subject) {
        if (!s)
            s = add_subject(r, subject); /* Confluent allows config before registration */
        s->has_level = true;
        s->level = level;
    } else {
        r->level = level;
    }
    return ok(json_pack("{s:s}", "compatibility", tkc_registry_compat_level_name(level)));
}

/* Splits "/a/b/c" into at most 6 segments in place. */
static size_t split(char *path, char **seg, size_t max)
{
    size_t n = 0;
    for (char *p = path; *p && n < max;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        seg[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return n;
}

static answer_t route(tkc_test_registry_t *r, struct MHD_Connection *conn, const char *method,
                      const char *url, const request_t *req)
{
    char *path = tkc_strdup(url);
    char *seg[8];
    size_t n = split(path, seg, 8);
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    answer_t a;
    if (n == 1 && get && strcmp(seg[0], "subjects") == 0) {
        json_t *arr = json_array();
        for (size_t i = 0; i < r->n_subjects; i++)
            if (r->subjects[i].n_versions)
                json_array_append_new(arr, json_string(r->subjects[i].name));
        a = ok(arr);
    } else if (n == 2 && post && strcmp(seg[0], "subjects") == 0) {
        a = lookup_schema(r, seg[1], req);
    } else if (n >= 3 && strcmp(seg[0], "subjects") == 0 && strcmp(seg[2], "versions") == 0) {
        subject_t *s = find_subject(r, seg[1]);
        if (n == 3 && post) {
            a = register_schema(r, seg[1], req);
        } else if (!get || n > 4) {
            a = error(405, 405, "HTTP 405 Method Not Allowed");
        } else if (!s || !s->n_versions) {
            a = error(404, 40401, "Subject '%s' not found.", seg[1]);
        } else if (n == 3) {
            json_t *arr = json_array();
            for (size_t v = 1; v <= s->n_versions; v++)
                json_array_append_new(arr, json_integer((json_int_t)v));
            a = ok(arr);
        } else {
            long v = parse_version(seg[3]);
            if (v == -1)
                v = (long)s->n_versions;
            if (v == 0)
                a = error(422, 42202, "The specified version '%s' is not a valid version id.",
                          seg[3]);
            else if ((size_t)v > s->n_versions)
                a = error(404, 40402, "Version %ld not found.", v);
            else
                a = ok(version_json(r, s, (size_t)v));
        }
    } else if (n == 3 && get && strcmp(seg[0], "schemas") == 0 && strcmp(seg[1], "ids") == 0) {
        char *end;
        unsigned long id = strtoul(seg[2], &end, 10);
        schema_t *sc = *end || id > UINT32_MAX ? NULL : schema_by_id(r, (uint32_t)id);
        a = sc ? ok(json_pack("{s:s}", "schema", sc->text))
               : error(404, 40403, "Schema %s not found", seg[2]);
    } else if ((n == 1 || n == 2) && strcmp(seg[0], "config") == 0) {
        const char *dg = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                                     "defaultToGlobal");
        a = config(r, method, n == 2 ? seg[1] : NULL, req, dg && strcmp(dg, "true") == 0);
    } else if (n == 5 && post && strcmp(seg[0], "compatibility") == 0 &&
               strcmp(seg[1], "subjects") == 0 && strcmp(seg[3], "versions") == 0) {
        a = check_compat(r, seg[2], seg[4], req);
    } else {
        a = error(404, 404, "HTTP 404 Not Found");
    }
    tkc_free(path);
    return a;
}

static answer_t test_hook(tkc_test_registry_t *r, const char *method, const char *url,
                          const request_t *req)
{
    if (strcmp(url, "/_test/fail") == 0 && strcmp(method, "POST") == 0) {
        json_t *b = json_loadb(req->body ? req->body : "", req->len, 0, NULL);
        json_int_t count = json_integer_value(json_object_get(b, "count"));
        json_int_t status = json_integer_value(json_object_get(b, "status"));
        json_decref(b);
        r->fail_count = count > 0 ? (unsigned)count : 0;
        r->fail_status = status >= 400 && status <= 599 ? (unsigned)status : 500;
        return ok(json_pack("{s:i,s:i}", "count", (json_int_t)r->fail_count, "status",
                            (json_int_t)r->fail_status));
    }
    if (strcmp(url, "/_test/stats") == 0 && strcmp(method, "GET") == 0)
        return ok(json_pack("{s:I,s:I}", "requests", (json_int_t)r->requests, "failed",
                            (json_int_t)r->failed));
    return error(404, 404, "HTTP 404 Not Found");
}

/* Basic auth, when configured (a plain comparison: this is a test server). */
static bool authorized(tkc_test_registry_t *r, struct MHD_Connection *conn)
{
    if (!r->auth_user)
        return true;
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(conn, &pass);
    bool good = user && pass && strcmp(user, r->auth_user) == 0 &&
                strcmp(pass, r->auth_pass) == 0;
    if (user)
        MHD_free(user);
    if (pass)
        MHD_free(pass);
    return good;
}

static enum MHD_Result send_answer(struct MHD_Connection *conn, answer_t a, bool auth_challenge)
{
    char *text = json_dumps(a.json, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(a.json);
    size_t len = text ? strlen(text) : 0;
    /* json_dumps() allocates with malloc(): MHD frees it with free() */
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, text ? text : (void *)"", text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, REG_CONTENT_TYPE);
    if (auth_challenge)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Basic realm=\"test-registry\"");
    enum MHD_Result rc = MHD_queue_response(conn, a.status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/*
 * Over https with a client CA, gnutls only *requests* a client certificate;
 * the check that one was sent and chains to the CA is ours.
 */
static bool client_cert_ok(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return false;
    gnutls_session_t session = (gnutls_session_t)ci->tls_session;
    unsigned n = 0;
    if (!gnutls_certificate_get_peers(session, &n) || n == 0)
        return false;
    unsigned status = 0;
    return gnutls_certificate_verify_peers2(session, &status) == GNUTLS_E_SUCCESS &&
           status == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    tkc_test_registry_t *r = cls;
    request_t *req = *con_cls;
    if (!req) {
        *con_cls = tkc_calloc(1, sizeof(request_t));
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (req->len + *upload_data_size > REG_MAX_BODY) {
            req->too_big = true;
        } else {
            req->body = tkc_realloc(req->body, req->len + *upload_data_size + 1);
            memcpy(req->body + req->len, upload_data, *upload_data_size);
            req->len += *upload_data_size;
            req->body[req->len] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    answer_t a;
    bool challenge = false;
    pthread_mutex_lock(&r->lock);
    if (strncmp(url, "/_test/", 7) == 0) {
        a = test_hook(r, method, url, req);
    } else {
        r->requests++;
        if (r->fail_count) {
            r->fail_count--;
            r->failed++;
            a = error(r->fail_status, 50001, "Injected failure (test registry)");
        } else if (r->require_client_cert && !client_cert_ok(conn)) {
            a = error(403, 40301, "A valid client certificate is required");
        } else if (!authorized(r, conn)) {
            a = error(401, 401, "Unauthorized");
            challenge = true;
        } else if (req->too_big) {
            a = error(413, 413, "Request body larger than %u bytes", REG_MAX_BODY);
        } else {
            a = route(r, conn, method, url, req);
        }
    }
    pthread_mutex_unlock(&r->lock);
    return send_answer(conn, a, challenge);
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    request_t *req = *con_cls;
    if (req) {
        tkc_free(req->body);
        tkc_free(req);
        *con_cls = NULL;
    }
}

static tkc_test_registry_t *registry_start(uint16_t port, const tkc_test_registry_tls_t *tls,
                                           char *errstr, size_t errstr_size)
{
    tkc_test_registry_t *r = tkc_calloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->level = TKC_REGISTRY_COMPAT_BACKWARD;
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (tls) {
        /* gnutls copies the PEM texts into its credentials at start */
        r->require_client_cert = tls->client_ca_pem != NULL;
        struct MHD_OptionItem trust[] = {
            {tls->client_ca_pem ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0,
             (void *)tls->client_ca_pem},
            {MHD_OPTION_END, 0, NULL},
        };
        r->daemon = MHD_start_daemon(
            MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_TLS, port, NULL, NULL, handle, r,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
            request_done, r, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
            MHD_OPTION_HTTPS_MEM_CERT, tls->cert_pem, MHD_OPTION_HTTPS_MEM_KEY, tls->key_pem,
            MHD_OPTION_ARRAY, trust, MHD_OPTION_END);
    } else {
        r->daemon = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, port, NULL, NULL, handle, r,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                     MHD_OPTION_NOTIFY_COMPLETED, request_done, r,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                                     MHD_OPTION_END);
    }
    if (!r->daemon) {
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size, "cannot start the test registry on 127.0.0.1:%u%s",
                     port, tls ? " (https: bad certificate or key?)" : "");
        pthread_mutex_destroy(&r->lock);
        tkc_free(r);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r->daemon, MHD_DAEMON_INFO_BIND_PORT);
    r->port = info ? info->port : port;
    snprintf(r->url, sizeof(r->url), "%s://127.0.0.1:%u", tls ? "https" : "http", r->port);
    return r;
}

tkc_test_registry_t *tkc_test_registry_start(uint16_t port, char *errstr, size_t errstr_size)
{
    return registry_start(port, NULL, errstr, errstr_size);
}

tkc_test_registry_t *tkc_test_registry_start_tls(uint16_t port, const tkc_test_registry_tls_t *tls,
                                                 char *errstr, size_t errstr_size)
{
    return registry_start(port, tls, errstr, errstr_size);
}

void tkc_test_registry_stop(tkc_test_registry_t *r)
{
    if (!r)
        return;
    MHD_stop_daemon(r->daemon);
    for (size_t i = 0; i < r->n_schemas; i++) {
        tkc_free(r->schemas[i].text);
        tkc_registry_compat_schema_free(r->schemas[i].parsed);
    }
    tkc_free(r->schemas);
    for (size_t i = 0; i < r->n_subjects; i++) {
        tkc_free(r->subjects[i].name);
        tkc_free(r->subjects[i].versions);
    }
    tkc_free(r->subjects);
    tkc_free(r->auth_user);
    tkc_free(r->auth_pass);
    pthread_mutex_destroy(&r->lock);
    tkc_free(r);
}

const char *tkc_test_registry_url(const tkc_test_registry_t *r)
{
    return r->url;
}

uint16_t tkc_test_registry_port(const tkc_test_registry_t *r)
{
    return r->port;
}

void tkc_test_registry_fail_next(tkc_test_registry_t *r, unsigned count, unsigned status)
{
    pthread_mutex_lock(&r->lock);
    r->fail_count = count;
    r->fail_status = status;
    pthread_mutex_unlock(&r->lock);
}

void tkc_test_registry_set_auth(tkc_test_registry_t *r, const char *user, const char *password)
{
    pthread_mutex_lock(&r->lock);
    tkc_free(r->auth_user);
    tkc_free(r->auth_pass);
    r->auth_user = user ? tkc_strdup(user) : NULL;
    r->auth_pass = user ? tkc_strdup(password ? password : "") : NULL;
    pthread_mutex_unlock(&r->lock);
}

void tkc_test_registry_set_level(tkc_test_registry_t *r, const char *subject,
                                 tkc_registry_compat_level_t level)
{
    pthread_mutex_lock(&r->lock);
    if (subject) {
        subject_t *s = find_subject(r, subject);
        if (!s)
            s = add_subject(r, subject);
        s->has_level = true;
        s->level = level;
    } else {
        r->level = level;
    }
    pthread_mutex_unlock(&r->lock);
}

uint64_t tkc_test_registry_requests(tkc_test_registry_t *r)
{
    pthread_mutex_lock(&r->lock);
    uint64_t n = r->requests;
    pthread_mutex_unlock(&r->lock);
    return n;
}
