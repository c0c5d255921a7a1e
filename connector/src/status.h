/*
 * status.h: what the connector reports about itself: the /status JSON, the
 * /healthz verdict, and the tikv_kafka_cdc_* metrics (docs/metrics.md).
 *
 * Everything is pulled at request time from the snapshots the modules
 * already keep (tkc_feed_get_stats, tkc_feed_pd_now, tkc_pipeline_metrics),
 * through callbacks set with tkc_status_set_sources(): nothing is counted
 * twice and the measured threads never take a lock for it. The only state
 * held here is the lifecycle state set by the runner (starting, running,
 * stopping, ...) and the configuration summary, built once without secrets.
 *
 * Thread: any. Sources are called under the status mutex, so a runner that
 * clears them (tkc_status_set_sources(st, NULL)) before destroying the feed
 * or pipeline never races a scrape.
 */
#ifndef TKC_STATUS_H
#define TKC_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "feed.h"
#include "metrics.h"
#include "pipeline.h"

typedef struct tkc_status_s tkc_status_t;

/** Lifecycle as reported in /status "state" and tikv_kafka_cdc_feed_state. */
typedef enum {
    TKC_STATUS_STARTING = 0, /* connecting, reading the checkpoint */
    TKC_STATUS_INITIAL_SCAN, /* running; the feed's resolved ts has not moved yet */
    TKC_STATUS_RUNNING,
    TKC_STATUS_HELD,         /* a message was rejected: the watermark is held */
    TKC_STATUS_STOPPING,
    TKC_STATUS_STOPPED,
    TKC_STATUS_FAILED,
    TKC_STATUS_COUNT
} tkc_status_state_t;

/** "starting", "initial_scan", ... */
const char *tkc_status_state_name(int state);

/** Where the numbers come from; any callback may be NULL. */
typedef struct tkc_status_sources_s {
    void (*feed_stats)(void *opaque, tkc_feed_stats_t *out);
    uint64_t (*pd_now)(void *opaque); /* TSO, 0 if unknown: the wall clock is used */
    void (*pipeline_metrics)(void *opaque, tkc_pipeline_metrics_t *out);
    void (*pipeline_metrics_free)(void *opaque, tkc_pipeline_metrics_t *m);
    void *opaque;
} tkc_status_sources_t;

/**
 * @brief Creates the status of one feed and registers its metric families
 *        and collector in @p m.
 * @param conf borrowed for the call: the summary and names are copied.
 * @param m borrowed; must outlive the status (or at least every render).
 * @locality any
 */
tkc_status_t *tkc_status_new(const tkc_conf_t *conf, tkc_metrics_t *m);

/** Frees the status. Renders of @p m must have stopped (stop HTTP first). */
void tkc_status_destroy(tkc_status_t *st);

/** Replaces the sources (copied); NULL clears them. @locality any */
void tkc_status_set_sources(tkc_status_t *st, const tkc_status_sources_t *src);

/**
 * @brief Sets the runner's lifecycle state; @p error (may be NULL) is kept
 *        for /status and /healthz. RUNNING is refined at read time into
 *        INITIAL_SCAN / HELD / FAILED from the pipeline's snapshot.
 * @locality any
 */
void tkc_status_set_state(tkc_status_t *st, tkc_status_state_t state, const char *error);

/** The effective state now (after refinement). @locality any */
tkc_status_state_t tkc_status_state(tkc_status_t *st);

/**
 * @brief /status as JSON text (no secrets).
 * @returns a string owned by the caller (tkc_free()).
 * @locality any
 */
char *tkc_status_json(tkc_status_t *st);

/**
 * @brief /healthz: true while the feed is initial-scanning or running;
 *        otherwise false with the reason in @p why.
 * @locality any
 */
bool tkc_status_healthy(tkc_status_t *st, char *why, size_t why_size);

/** Adapters for tkc_http_config_t (opaque = the status). */
char *tkc_status_http_json(void *opaque);
bool tkc_status_http_healthy(void *opaque, char *why, size_t why_size);

/** "https://user:pw@host/x" -> "https://host/x" into @p buf (for logs and /status). */
void tkc_status_strip_userinfo(const char *url, char *buf, size_t size);

/** "msg_size_too_large" for RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, ... (metric label). */
void tkc_status_kafka_error_kind(int err, char *buf, size_t size);

#endif
