/*
 * check_registry_tls.c: the schema registry client over https against the
 * test registry with real certificates: server verification with a CA file
 * and a hashed CA directory, refusal of an unknown or wrong CA (without
 * retrying, with a clear message), the explicit insecure switch, and mutual
 * TLS (client certificate and key).
 *
 * The certificates are made per test run with the openssl command-line tool
 * in a temporary directory: a CA, a server certificate for IP 127.0.0.1
 * signed by it, a client certificate signed by it, and a second CA that
 * signed nothing the server uses.
 */
#include "schema_registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry/test_registry.h"
#include "unit/check_main.h"
#include "util/mem.h"
#include "../test_file.h"

#define SV1 "{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"

static char dir[] = "/tmp/tkc-registry-tls-XXXXXX";
static char path_buf[8][512];
static char err[2048];

static const char *in_dir(int slot, const char *name)
{
    snprintf(path_buf[slot], sizeof(path_buf[slot]), "%s/%s", dir, name);
    return path_buf[slot];
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char full[4200];
    snprintf(full, sizeof(full), "cd %s && { %s; } >openssl.log 2>&1", dir, cmd);
    int rc = system(full);
    ck_assert_msg(rc == 0, "command failed (see %s/openssl.log): %s", dir, cmd);
}

static char *slurp(const char *path)
{
    char *text = tkc_test_read_file(path, NULL);
    ck_assert_msg(text != NULL, "cannot open %s", path);
    return text;
}

#define EC_KEY "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

/* A CA named @p name: <name>.pem / <name>.key. */
static void make_ca(const char *name)
{
    sh("openssl req -x509 " EC_KEY " -keyout %s.key -out %s.pem -days 2 -subj /CN=%s "
       "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
       name, name, name);
}

/* A leaf <name>.pem / <name>.key signed by @p ca with the extensions in @p ext. */
static void make_leaf(const char *name, const char *ca, const char *ext)
{
    sh("printf '%s\\n' > %s.ext && "
       "openssl req -new " EC_KEY " -keyout %s.key -out %s.csr -subj /CN=%s && "
       "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -out %s.pem "
       "-days 2 -extfile %s.ext",
       ext, name, name, name, name, name, ca, ca, name, name);
}

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_ca("ca");
    make_ca("other-ca");
    make_leaf("server", "ca", "subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth");
    make_leaf("client", "ca", "extendedKeyUsage=clientAuth");
    make_leaf("stranger", "other-ca", "extendedKeyUsage=clientAuth");
    /* a CA directory in OpenSSL's hashed layout for ca_path */
    sh("mkdir capath && cp ca.pem capath/ && openssl rehash capath");
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static tkc_test_registry_t *start_https(bool require_client_cert)
{
    char *cert = slurp(in_dir(0, "server.pem"));
    char *key = slurp(in_dir(0, "server.key"));
    char *ca = slurp(in_dir(0, "ca.pem"));
    tkc_test_registry_tls_t tls = {cert, key, require_client_cert ? ca : NULL};
    char e[256];
    tkc_test_registry_t *reg = tkc_test_registry_start_tls(0, &tls, e, sizeof(e));
    ck_assert_msg(reg != NULL, "%s", e);
    ck_assert_ptr_nonnull(strstr(tkc_test_registry_url(reg), "https://127.0.0.1:"));
    tkc_free(cert);
    tkc_free(key);
    tkc_free(ca);
    return reg;
}

static void conf_for(tkc_schema_registry_conf_t *conf, const tkc_test_registry_t *reg)
{
    tkc_schema_registry_conf_init(conf);
    conf->url = tkc_test_registry_url(reg);
    conf->max_attempts = 3;
    conf->backoff_initial_ms = 5;
    conf->backoff_max_ms = 20;
    conf->request_timeout_ms = 10000;
}

/* Registers SV1; @returns the client's result, *requests how many exchanges it made. */
static tkc_err_t try_register(const tkc_schema_registry_conf_t *conf, uint32_t *id,
                              uint64_t *requests)
{
    tkc_schema_registry_t *sr = tkc_schema_registry_new(conf, err, sizeof(err));
    ck_assert_msg(sr != NULL, "%s", err);
    tkc_err_t rc = tkc_schema_registry_register(sr, "tls-value", SV1, id, err, sizeof(err));
    tkc_schema_registry_stats_t st;
    tkc_schema_registry_stats(sr, &st);
    *requests = st.requests;
    if (rc == TKC_ERR_OK) {
        /* and the schema by id (from the client's cache) */
        char *text = NULL;
        ck_assert_msg(tkc_schema_registry_get_schema(sr, *id, &text, err, sizeof(err)) == 0,
                      "%s", err);
        ck_assert_ptr_nonnull(strstr(text, "\"T\""));
        tkc_free(text);
    }
    tkc_schema_registry_destroy(sr);
    return rc;
}

START_TEST(test_registry_tls_verified_with_ca_file_and_ca_path)
{
    tkc_test_registry_t *reg = start_https(false);
    tkc_schema_registry_conf_t conf;
    uint32_t id = 0;
    uint64_t n;

    conf_for(&conf, reg);
    conf.ca_file = in_dir(1, "ca.pem");
    ck_assert_msg(try_register(&conf, &id, &n) == TKC_ERR_OK, "%s", err);
    ck_assert_uint_eq(id, 1);

    conf_for(&conf, reg);
    conf.ca_path = in_dir(1, "capath"); /* the hashed directory alone must carry it */
    uint32_t id2 = 0;
    ck_assert_msg(try_register(&conf, &id2, &n) == TKC_ERR_OK, "%s", err);
    ck_assert_uint_eq(id2, id);
    /* the server saw both registrations (reads are answered from the cache) */
    ck_assert_uint_eq(tkc_test_registry_requests(reg), 2);
    tkc_test_registry_stop(reg);
}
END_TEST

START_TEST(test_registry_tls_unknown_or_wrong_ca_refused)
{
    tkc_test_registry_t *reg = start_https(false);
    tkc_schema_registry_conf_t conf;
    uint32_t id;
    uint64_t n;

    /* the system bundle does not know our CA */
    conf_for(&conf, reg);
    ck_assert_int_eq(try_register(&conf, &id, &n), TKC_ERR_CONF);
    ck_assert_msg(strstr(err, "certificate") != NULL, "%s", err);
    ck_assert_uint_eq(n, 1); /* a verification failure is not retried */

    /* a CA that did not sign the server's certificate */
    conf_for(&conf, reg);
    conf.ca_file = in_dir(1, "other-ca.pem");
    ck_assert_int_eq(try_register(&conf, &id, &n), TKC_ERR_CONF);
    ck_assert_msg(strstr(err, "certificate") != NULL, "%s", err);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(tkc_test_registry_requests(reg), 0); /* no request got through */

    /* only the explicit switch skips verification */
    conf_for(&conf, reg);
    conf.insecure_skip_verify = true;
    ck_assert_msg(try_register(&conf, &id, &n) == TKC_ERR_OK, "%s", err);
    ck_assert_uint_eq(tkc_test_registry_requests(reg), 1);
    tkc_test_registry_stop(reg);
}
END_TEST

START_TEST(test_registry_tls_client_certificate)
{
    tkc_test_registry_t *reg = start_https(true);
    tkc_schema_registry_conf_t conf;
    uint32_t id;
    uint64_t n;

    /* no client certificate: refused as an authorization failure, not retried */
    conf_for(&conf, reg);
    conf.ca_file = in_dir(1, "ca.pem");
    ck_assert_int_eq(try_register(&conf, &id, &n), TKC_ERR_CONF);
    ck_assert_msg(strstr(err, "client certificate") != NULL, "%s", err);
    ck_assert_uint_eq(n, 1);

    /* a certificate from a CA the registry does not trust */
    conf.cert_file = in_dir(2, "stranger.pem");
    conf.key_file = in_dir(3, "stranger.key");
    ck_assert_int_eq(try_register(&conf, &id, &n), TKC_ERR_CONF);

    /* the right certificate and key */
    conf.cert_file = in_dir(2, "client.pem");
    conf.key_file = in_dir(3, "client.key");
    ck_assert_msg(try_register(&conf, &id, &n) == TKC_ERR_OK, "%s", err);
    ck_assert_uint_eq(n, 1);

    /* a key file that is missing is a configuration error with the reason */
    conf.key_file = in_dir(3, "missing.key");
    ck_assert_int_eq(try_register(&conf, &id, &n), TKC_ERR_CONF);
    ck_assert_uint_eq(n, 1);
    tkc_test_registry_stop(reg);
}
END_TEST

static Suite *registry_tls_suite(void)
{
    Suite *s = suite_create("registry_tls");
    TCase *tc = tcase_create("https");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_registry_tls_verified_with_ca_file_and_ca_path);
    tcase_add_test(tc, test_registry_tls_unknown_or_wrong_ca_refused);
    tcase_add_test(tc, test_registry_tls_client_certificate);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(registry_tls_suite)
