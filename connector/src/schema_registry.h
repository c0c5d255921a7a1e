/*
 * schema_registry.h: a client of the Confluent Schema Registry REST API
 * (the subset the connector needs), on libcurl and jansson.
 *
 *   register  POST /subjects/{subject}/versions {"schema": "<avsc text>"} -> id
 *   lookup    GET  /schemas/ids/{id} -> schema text (for decoding)
 *
 * Results are cached: (subject, schema text) -> id and id -> schema text,
 * so the registry sees one request per subject and schema per process.
 * Transient failures (connection errors, timeouts, HTTP 5xx, 408, 429) are
 * retried with exponential backoff up to a bound; a 409 is never retried.
 * Credentials are never logged (URLs are logged without their user-info).
 *
 * Thread-safe: one client may be shared by several codecs on different
 * threads. Requests are serialised on one connection (registrations are
 * rare: once per subject); the caches are read under a mutex.
 */
#ifndef TKC_SCHEMA_REGISTRY_H
#define TKC_SCHEMA_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct tkc_schema_registry_s tkc_schema_registry_t;

/** Client settings; start from tkc_schema_registry_conf_init(). Strings are copied. */
typedef struct tkc_schema_registry_conf_s {
    /*
     * Base URL, e.g. "http://127.0.0.1:8081" or "https://sr.example:8081/prefix".
     * User-info in the URL (https://user:pass@host) is accepted and moved to
     * basic auth.
     */
    const char *url;
    const char *username; /* basic auth; NULL: none (or from the URL) */
    const char *password;
    const char *ca_file;   /* PEM CA bundle for https; NULL: libcurl's default */
    const char *ca_path;   /* directory of hashed CA certificates; NULL: default */
    const char *cert_file; /* client certificate (mutual TLS); NULL: none */
    const char *key_file;  /* its private key */
    bool insecure_skip_verify; /* do not verify the server certificate (tests only) */
    int connect_timeout_ms;    /* default 5000 */
    int request_timeout_ms;    /* whole request; default 30000 */
    int max_attempts;          /* per operation, first try included; default 6 */
    int backoff_initial_ms;    /* first retry delay, doubled per retry; default 100 */
    int backoff_max_ms;        /* cap of one delay; default 5000 */
} tkc_schema_registry_conf_t;

/** Fills @p conf with the defaults above and url = NULL. */
void tkc_schema_registry_conf_init(tkc_schema_registry_conf_t *conf);

/**
 * @brief Creates a client. No request is made yet.
 * @returns the client (destroy with tkc_schema_registry_destroy()), or NULL
 *          with a message in @p errstr (bad URL or settings).
 * @locality any thread
 */
tkc_schema_registry_t *tkc_schema_registry_new(const tkc_schema_registry_conf_t *conf,
                                               char *errstr, size_t errstr_size);

/** Frees the client (NULL is a no-op). No call may be running. */
void tkc_schema_registry_destroy(tkc_schema_registry_t *sr);

/**
 * @brief Registers @p schema (Avro schema JSON text, sent verbatim) under
 *        @p subject and returns its global id. Idempotent: a schema already
 *        registered there gets its existing id.
 *
 * @returns TKC_ERR_OK with *id set;
 *          TKC_ERR_INCOMPATIBLE when the registry refused the schema as
 *          incompatible (HTTP 409), errstr names the subject and carries the
 *          registry's message;
 *          TKC_ERR_INVALID_ARG when it refused the schema as invalid (422);
 *          TKC_ERR_CONF on authentication/authorization failures (401/403)
 *          and other 4xx answers;
 *          TKC_ERR_TRANSPORT when connection errors or 5xx answers outlasted
 *          the retries.
 * @locality any thread; blocks for the duration of the HTTP exchange and its
 *           retries (at most about max_attempts x request timeout + backoff)
 */
tkc_err_t tkc_schema_registry_register(tkc_schema_registry_t *sr, const char *subject,
                                       const char *schema, uint32_t *id, char *errstr,
                                       size_t errstr_size);

/**
 * @brief Fetches the schema text with global id @p id (GET /schemas/ids/{id}).
 *
 * @param schema on success a NUL-terminated copy owned by the caller, free
 *               with tkc_free()
 * @returns TKC_ERR_OK, TKC_ERR_NOT_FOUND (404 / error 40403), or the errors
 *          of tkc_schema_registry_register().
 * @locality any thread
 */
tkc_err_t tkc_schema_registry_get_schema(tkc_schema_registry_t *sr, uint32_t id, char **schema,
                                         char *errstr, size_t errstr_size);

/** Counters, for tests and metrics. */
typedef struct tkc_schema_registry_stats_s {
    uint64_t requests;   /* HTTP requests sent (retries included) */
    uint64_t retries;    /* requests that were retries of a failed one */
    uint64_t cache_hits; /* register/get_schema answered from the cache */
} tkc_schema_registry_stats_t;

void tkc_schema_registry_stats(tkc_schema_registry_t *sr, tkc_schema_registry_stats_t *out);

/** The base URL without user-info (safe to log); valid while @p sr lives. */
const char *tkc_schema_registry_url(const tkc_schema_registry_t *sr);

#endif
