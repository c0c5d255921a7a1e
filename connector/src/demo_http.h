/*
 * demo_http.h: the two HTTP calls of `tikv-kafka-cdc demo`: GET the
 * connector's /status and POST a fault to tikv-sim's control endpoint.
 * A thin libcurl wrapper; the caller must have run curl_global_init().
 */
#ifndef TKC_DEMO_HTTP_H
#define TKC_DEMO_HTTP_H

/**
 * @brief One HTTP/1.1 request to @p url (plain http, no proxy).
 *
 * @param method "GET" or "POST".
 * @param body request body (sent as application/json), NULL for none.
 * @param timeout_ms total time allowed for the request.
 * @param resp the response body, owned by the caller (tkc_free()); NULL
 *             when the request failed. May be NULL if not wanted.
 * @returns the HTTP status, or 0 when no response arrived (connection
 *          refused, timeout).
 * @locality any thread
 */
long tkc_demo_http(const char *method, const char *url, const char *body, int timeout_ms,
                   char **resp);

#endif
