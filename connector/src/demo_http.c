/*
 * demo_http.c: a blocking libcurl request with the response in memory.
 *
 * The demo polls /status four times a second while the connector is busy,
 * so the handle is created per call with a short timeout and no proxy
 * (a proxy from the environment must never see loopback traffic); a slow
 * or missing answer is simply a missed sample, never a stall of the demo.
 */
#include "demo_http.h"

#include <curl/curl.h>
#include <string.h>

#include "util/mem.h"

typedef struct resp_buf_s {
    char *data;
    size_t len;
} resp_buf_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    resp_buf_t *b = opaque;
    size_t n = size * nmemb;
    b->data = tkc_realloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

long tkc_demo_http(const char *method, const char *url, const char *body, int timeout_ms,
                   char **resp)
{
    if (resp)
        *resp = NULL;
    CURL *h = curl_easy_init();
    if (!h)
        return 0;
    resp_buf_t b = {0};
    struct curl_slist *hdrs = NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (status && resp) {
        *resp = b.data ? b.data : tkc_strdup("");
        b.data = NULL;
    }
    tkc_free(b.data);
    return status;
}
