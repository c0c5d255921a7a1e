/*
 * http.c: /metrics, /status and /healthz on libmicrohttpd.
 *
 * The daemon runs with MHD_USE_AUTO_INTERNAL_THREAD: one thread of its own
 * polls the listening socket and the connections, so serving never touches
 * the feed or pipeline threads. Every handler builds its body into a fresh
 * buffer and hands it over with MHD_RESPMEM_MUST_FREE (MHD frees it with
 * free(); tkc_free is free()).
 *
 * The address is resolved with getaddrinfo and passed as MHD_OPTION_SOCK_ADDR,
 * because MHD's port-only form binds every interface, which is the wrong
 * default for a metrics endpoint with configuration in /status.
 *
 * MHD's own error messages go through tkc_log (MHD_OPTION_EXTERNAL_LOGGER)
 * instead of stderr, so they keep the log format.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/log.h"
#include "util/mem.h"

struct tkc_http_s {
    struct MHD_Daemon *d;
    tkc_http_config_t cfg;
    int port;
};

int tkc_http_split_hostport(const char *s, char *host, size_t host_size, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= host_size)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             char *body, size_t len)
{
    /* body: tkc_malloc'd (MUST_FREE) */
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        tkc_free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    size_t n = strlen(text);
    char *b = tkc_malloc(n + 1);
    memcpy(b, text, n + 1);
    return reply(conn, status, "text/plain; charset=utf-8", b, n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    tkc_http_t *h = cls;
    (void)version;
    (void)upload_data;
    /* First call per request: headers only. Answer on the second, after
     * any body (which we ignore) has been consumed. */
    if (*req_cls == NULL) {
        *req_cls = h;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");

    if (strcmp(url, "/metrics") == 0 && h->cfg.metrics) {
        size_t len;
        char *text = tkc_metrics_render(h->cfg.metrics, &len);
        return reply(conn, MHD_HTTP_OK, TKC_METRICS_CONTENT_TYPE, text, len);
    }
    if (strcmp(url, "/status") == 0 && h->cfg.status_json) {
        char *json = h->cfg.status_json(h->cfg.opaque);
        if (!json)
            return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "status not available\n");
        return reply(conn, MHD_HTTP_OK, "application/json", json, strlen(json));
    }
    if (strcmp(url, "/healthz") == 0) {
        char why[512] = "";
        if (!h->cfg.healthy || h->cfg.healthy(h->cfg.opaque, why, sizeof(why)))
            return reply_text(conn, MHD_HTTP_OK, "ok\n");
        char body[600];
        snprintf(body, sizeof(body), "unhealthy: %s\n", why[0] ? why : "unknown");
        return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
    }
    if (strcmp(url, "/") == 0)
        return reply_text(conn, MHD_HTTP_OK,
                          "tikv-kafka-cdc\n  /metrics  Prometheus metrics\n"
                          "  /status   feed status (JSON)\n  /healthz  health check\n");
    return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    for (char *p = msg; *p; p++)
        if (*p == '"')
            *p = '\'';
    tkc_log(TKC_LOG_WARN, "http", "event=mhd_error msg=\"%s\"", msg);
}

tkc_http_t *tkc_http_start(const tkc_http_config_t *cfg, char *errstr, size_t errstr_size)
{
    char host[256];
    int port;
    if (!cfg->listen || tkc_http_split_hostport(cfg->listen, host, sizeof(host), &port) != 0) {
        snprintf(errstr, errstr_size, "invalid listen address \"%s\" (host:port)",
                 cfg->listen ? cfg->listen : "");
        return NULL;
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(errstr, errstr_size, "cannot resolve %s: %s", host, gai_strerror(gai));
        return NULL;
    }
    tkc_http_t *h = tkc_calloc(1, sizeof(*h));
    h->cfg = *cfg;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
                            ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        snprintf(errstr, errstr_size, "cannot listen on %s (address in use or not local?)",
                 cfg->listen);
        tkc_free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    return h;
}

int tkc_http_port(const tkc_http_t *h)
{
    return h->port;
}

void tkc_http_stop(tkc_http_t *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    tkc_free(h);
}
