/*
 * test_registry.h: a Confluent-compatible schema registry for tests
 * (libmicrohttpd + jansson), in-process or as the binary `test-registry`.
 *
 * The subset of the REST API the connector and its tests use, with
 * Confluent's status codes and error bodies ({"error_code": 40401,
 * "message": ...}):
 *   GET  /subjects                                  ["a-value", ...]
 *   GET  /subjects/{s}/versions                     [1, 2]
 *   GET  /subjects/{s}/versions/{v|latest}          {"subject","version","id","schema"}
 *   POST /subjects/{s}/versions  {"schema": "..."}  {"id": N}   409 when incompatible
 *   POST /subjects/{s}           {"schema": "..."}  lookup: {"subject","version","id","schema"}
 *   GET  /schemas/ids/{id}                          {"schema": "..."}
 *   GET|PUT /config, /config/{s}                    {"compatibilityLevel"} / {"compatibility"}
 *   POST /compatibility/subjects/{s}/versions/{v|latest}  {"is_compatible": bool}
 * Compatibility levels NONE, BACKWARD (default), FORWARD, FULL and their
 * _TRANSITIVE forms, checked with real Avro resolution rules
 * (registry_compat.h). The same schema (same normalized JSON) gets the same
 * global id in every subject; re-registering it in a subject returns the
 * existing version's id without a compatibility check.
 *
 * Test hooks, also over HTTP for other processes:
 *   POST /_test/fail {"count": N, "status": 500}   fail the next N API requests
 *   GET  /_test/stats                               {"requests": N, "failed": N}
 * and optional basic authentication, and https (optionally requiring client
 * certificates) with tkc_test_registry_start_tls().
 *
 * Binds 127.0.0.1 only. Thread-safe: the server runs on libmicrohttpd's
 * internal thread; the functions below may be called from any thread.
 */
#ifndef TKC_TEST_REGISTRY_H
#define TKC_TEST_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "registry/registry_compat.h"

typedef struct tkc_test_registry_s tkc_test_registry_t;

/**
 * @brief Starts a registry on 127.0.0.1:@p port (0: any free port).
 * @returns the registry (stop with tkc_test_registry_stop()) or NULL with a
 *          message in @p errstr.
 */
tkc_test_registry_t *tkc_test_registry_start(uint16_t port, char *errstr, size_t errstr_size);

/** https settings: PEM texts (copied at start). */
typedef struct tkc_test_registry_tls_s {
    const char *cert_pem;      /* server certificate (chain) */
    const char *key_pem;       /* its private key */
    const char *client_ca_pem; /* non-NULL: every API request needs a client certificate
                                * that chains to this CA (403 otherwise) */
} tkc_test_registry_tls_t;

/** Like tkc_test_registry_start() over https; the URL is "https://127.0.0.1:PORT". */
tkc_test_registry_t *tkc_test_registry_start_tls(uint16_t port, const tkc_test_registry_tls_t *tls,
                                                 char *errstr, size_t errstr_size);

/** Stops the server and frees everything (NULL is a no-op). */
void tkc_test_registry_stop(tkc_test_registry_t *r);

/** "http://127.0.0.1:PORT", valid while @p r lives. */
const char *tkc_test_registry_url(const tkc_test_registry_t *r);
uint16_t tkc_test_registry_port(const tkc_test_registry_t *r);

/** The next @p count API requests answer HTTP @p status (e.g. 500) with error_code 50001. */
void tkc_test_registry_fail_next(tkc_test_registry_t *r, unsigned count, unsigned status);

/** Requires basic auth with these credentials from now on; NULL user: none. */
void tkc_test_registry_set_auth(tkc_test_registry_t *r, const char *user, const char *password);

/** Sets the compatibility level of @p subject, or the global one for NULL. */
void tkc_test_registry_set_level(tkc_test_registry_t *r, const char *subject,
                                 tkc_registry_compat_level_t level);

/** API requests received (injected failures and auth failures included). */
uint64_t tkc_test_registry_requests(tkc_test_registry_t *r);

#endif
