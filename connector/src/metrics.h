/*
 * metrics.h: a registry of counters and gauges, rendered in the Prometheus
 * text exposition format 0.0.4.
 *
 *   m = tkc_metrics_new();
 *   fam = tkc_metrics_register(m, TKC_METRIC_COUNTER, "tikv_kafka_cdc_rows_produced_total",
 *                              "Rows produced to Kafka.", "feed,topic", 0);
 *   s = tkc_metric_get(fam, TKC_METRIC_LABELS("default", "cdc.t100"));  (once, at start)
 *   tkc_metric_add(s, 1);                                            (hot path: one atomic add)
 *   text = tkc_metrics_render(m, &len);                              (HTTP thread, per scrape)
 *
 * Two ways to feed it, both cheap for the code that is measured:
 *   - push: a module keeps the series handle it got at start and updates it
 *     with one relaxed atomic operation; no lock, no allocation;
 *   - pull: a collector callback runs at scrape time and copies values from
 *     a module's own stats snapshot (tkc_feed_get_stats, ...), so nothing is
 *     counted twice. Collectors run on the scraping thread.
 *
 * Values are int64 with a decimal scale per family: a gauge of milliseconds
 * registered with scale 3 renders as seconds with exact decimals
 * ("12.345"), so no floating point is involved anywhere.
 *
 * Thread: registration, lookup and rendering take the registry's mutex;
 * tkc_metric_add/set/value on a handle are lock-free and any-thread. Series
 * are never freed before the registry, so a handle stays valid for its
 * lifetime.
 */
#ifndef TKC_METRICS_H
#define TKC_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    TKC_METRIC_COUNTER = 1,
    TKC_METRIC_GAUGE = 2,
} tkc_metric_type_t;

typedef struct tkc_metrics_s tkc_metrics_t;
typedef struct tkc_metric_s tkc_metric_t;               /* a family: name, help, labels */
typedef struct tkc_metric_series_s tkc_metric_series_t; /* one label set of a family */

/** Label values as an array literal: TKC_METRIC_LABELS("a", "b"). */
#define TKC_METRIC_LABELS(...) ((const char *const[]){__VA_ARGS__})

/** Most labels a family may have. */
#define TKC_METRICS_MAX_LABELS 4

tkc_metrics_t *tkc_metrics_new(void);
/** Frees the registry, every family and series. NULL is a no-op. */
void tkc_metrics_destroy(tkc_metrics_t *m);

/**
 * @brief Registers a family (or returns the one already registered under
 *        @p name, which must have the same type and labels).
 * @param name a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*); counters end
 *             in _total by convention.
 * @param help one line; copied.
 * @param labels comma-separated label names ("feed,topic"), NULL or "" for none.
 * @param scale the rendered value is value / 10^scale (0..9).
 * @returns the family; NULL if the name or labels are invalid.
 * @locality any
 */
tkc_metric_t *tkc_metrics_register(tkc_metrics_t *m, tkc_metric_type_t type, const char *name,
                                   const char *help, const char *labels, int scale);

/**
 * @brief The series of @p fam with these label values, created on first use.
 * @param values one string per label of the family (ignored without labels);
 *               copied.
 * @locality any (takes the registry mutex: look series up once, keep the handle)
 */
tkc_metric_series_t *tkc_metric_get(tkc_metric_t *fam, const char *const *values);

/** Adds @p n (counters, gauges). @locality any, lock-free */
void tkc_metric_add(tkc_metric_series_t *s, int64_t n);
/** Sets the value (gauges; counters only from a monotonic source). @locality any, lock-free */
void tkc_metric_set(tkc_metric_series_t *s, int64_t v);
int64_t tkc_metric_value(const tkc_metric_series_t *s);

/**
 * @brief Hides every series of @p fam until it is set or added to again.
 *        For pull collectors whose label sets come and go (per store): call
 *        it, then set what the snapshot has. Handles stay valid.
 * @locality any
 */
void tkc_metric_hide_all(tkc_metric_t *fam);

/** Runs at every render, before the text is produced. */
typedef void tkc_metrics_collect_cb(void *opaque, tkc_metrics_t *m);

/** Adds a collector; they run in the order added. @locality any */
void tkc_metrics_add_collector(tkc_metrics_t *m, tkc_metrics_collect_cb *cb, void *opaque);

/**
 * @brief Runs the collectors and renders every visible series: a # HELP
 *        and # TYPE line per family, then one line per series.
 * @returns a NUL-terminated string owned by the caller (tkc_free());
 *          @p len (may be NULL) receives its length.
 * @locality any (renders are serialised)
 */
char *tkc_metrics_render(tkc_metrics_t *m, size_t *len);

/** Content-Type of the rendered text. */
#define TKC_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
