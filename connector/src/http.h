/*
 * http.h: the operator's HTTP endpoint (libmicrohttpd, one internal thread).
 *
 *   GET /metrics   Prometheus text format 0.0.4 from a tkc_metrics_t
 *   GET /status    JSON from the status callback
 *   GET /healthz   200 "ok" when the health callback says healthy, else
 *                  503 with the reason
 *   GET /          a short index of the above
 * Anything else is 404; methods other than GET and HEAD are 405.
 *
 * Binds to the configured host:port only (127.0.0.1:8080 by default), never
 * to every interface unless told so. Port 0 binds a free port
 * (tkc_http_port() tells which), for tests and `lag --serve`.
 *
 * Thread: libmicrohttpd serves requests on its own thread; the callbacks
 * and the metrics render run there and must be safe to call concurrently
 * with the rest of the program (they read snapshots; see status.h).
 */
#ifndef TKC_HTTP_H
#define TKC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"

typedef struct tkc_http_s tkc_http_t;

typedef struct tkc_http_config_s {
    const char *listen;     /* "host:port" (IPv6 as "[::1]:port") */
    tkc_metrics_t *metrics; /* /metrics; NULL: 404 */
    /* /status: returns a NUL-terminated JSON text owned by the caller
     * (tkc_free()), or NULL for 503; NULL callback: 404 */
    char *(*status_json)(void *opaque);
    /* /healthz: true = healthy; otherwise a reason in why; NULL: always 200 */
    bool (*healthy)(void *opaque, char *why, size_t why_size);
    void *opaque;
} tkc_http_config_t;

/**
 * @brief Binds and starts serving.
 * @param cfg borrowed; the metrics registry and opaque must outlive the server.
 * @returns the server (stop with tkc_http_stop()), or NULL with @p errstr
 *          (bad address, address in use, ...).
 * @locality any
 */
tkc_http_t *tkc_http_start(const tkc_http_config_t *cfg, char *errstr, size_t errstr_size);

/** The bound port (useful with port 0). */
int tkc_http_port(const tkc_http_t *h);

/** Stops serving (waits for requests in progress) and frees. NULL is a no-op. */
void tkc_http_stop(tkc_http_t *h);

/**
 * @brief Splits "host:port" / "[v6]:port" into @p host and @p port.
 * @returns 0 or -1 if malformed.
 */
int tkc_http_split_hostport(const char *s, char *host, size_t host_size, int *port);

#endif
