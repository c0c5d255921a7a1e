/*
 * demo_watch.h: what `tikv-kafka-cdc demo` makes of the connector's /status
 * samples: the live one-line status, the announcements (initial scan done,
 * lag recovered after the store restart) and the closing summary (max lag
 * during the restart, recovery time, streams opened to the restarted store).
 *
 * Pure logic: JSON text and timestamps in, text and numbers out, so it is
 * tested without processes (tests/ops/check_demo.c).
 */
#ifndef TKC_DEMO_WATCH_H
#define TKC_DEMO_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define TKC_DEMO_MAX_STORES 16

/** One store as /status reports it. */
typedef struct tkc_demo_store_s {
    uint64_t store_id;
    uint64_t stream_id; /* id of the newest stream opened to it */
    uint64_t streams_live;
    uint64_t streams_opened;
    uint64_t streams_retired;
} tkc_demo_store_t;

/** One /status sample, taken at demo time t_ms. */
typedef struct tkc_demo_sample_s {
    int64_t t_ms;
    char state[24];            /* "initial_scan", "running", ... */
    bool have_ts;              /* resolved and checkpoint present */
    uint64_t resolved_ts;
    uint64_t checkpoint_ts;
    double resolved_lag_s;
    double checkpoint_lag_s;
    uint64_t rows_delivered;   /* row-change messages Kafka acknowledged, all topics */
    uint64_t regions_initialized;
    uint64_t regions_total;
    bool scan_done;
    size_t n_stores;           /* sorted by store id */
    tkc_demo_store_t stores[TKC_DEMO_MAX_STORES];
} tkc_demo_sample_t;

/**
 * @brief Parses the connector's /status JSON (status.c) into @p out.
 * @returns TKC_ERR_OK, or TKC_ERR_CORRUPT with @p errstr when the text is
 *          not JSON or lacks "state".
 * @locality any
 */
tkc_err_t tkc_demo_sample_parse(const char *json, int64_t t_ms, tkc_demo_sample_t *out,
                                char *errstr, size_t errstr_size);

typedef struct tkc_demo_watch_s tkc_demo_watch_t;

/** What the demo tells at the end. Times are demo times (ms). */
typedef struct tkc_demo_summary_s {
    int64_t elapsed_ms;         /* first to last sample */
    uint64_t rows_delivered;    /* at the last sample */
    double rows_per_s;          /* average over elapsed_ms */
    int64_t scan_ms;            /* until the initial scan was done; -1 if never */
    uint64_t regions_total;     /* at the end of the scan */
    bool restarted;
    uint64_t restart_store;
    int64_t restart_at_ms;
    double lag_before_s;        /* max resolved lag in the 5 s before the restart */
    double threshold_s;         /* "recovered" = back at or under this */
    double lag_max_s;           /* max resolved lag after the restart */
    int64_t recovery_ms;        /* restart to recovery; -1 if not (yet) recovered */
    bool spiked;                /* the lag went above the threshold at all */
    uint64_t streams_opened_at_restart; /* restarted store, cumulative */
    uint64_t streams_opened_end;
    uint64_t stream_id_at_restart;      /* newest stream id then and at the end */
    uint64_t stream_id_end;
} tkc_demo_summary_t;

/** @locality the demo's main thread (one watch, one thread) */
tkc_demo_watch_t *tkc_demo_watch_new(void);
void tkc_demo_watch_destroy(tkc_demo_watch_t *w);

/**
 * @brief Adds a sample (copied); samples come in time order. May queue
 *        announcements (see tkc_demo_watch_event()).
 */
void tkc_demo_watch_add(tkc_demo_watch_t *w, const tkc_demo_sample_t *s);

/**
 * @brief Records that @p store_id was restarted at @p t_ms: the lag seen
 *        before is the baseline, the lag after is measured against it.
 */
void tkc_demo_watch_mark_restart(tkc_demo_watch_t *w, int64_t t_ms, uint64_t store_id);

/**
 * @brief Pops the next announcement ("initial scan done ...", "lag back
 *        ...") into @p buf.
 * @returns false when there is none.
 */
bool tkc_demo_watch_event(tkc_demo_watch_t *w, char *buf, size_t size);

/**
 * @brief The live line for the newest sample, e.g.
 *   " 0:12  running   3012 rows/s  lag: resolved 0.6 s  checkpoint 1.1 s
 *    streams s1:2 s2:2 s3:2  36140 rows"
 *   (one line; "initial scan 133/256 regions" while scanning).
 */
void tkc_demo_watch_line(const tkc_demo_watch_t *w, char *buf, size_t size);

/** The newest sample, NULL before the first. */
const tkc_demo_sample_t *tkc_demo_watch_last(const tkc_demo_watch_t *w);

/** Fills @p out from what was seen so far. */
void tkc_demo_watch_summary(const tkc_demo_watch_t *w, tkc_demo_summary_t *out);

/** "m:ss" for a demo time. */
void tkc_demo_watch_fmt_time(int64_t t_ms, char *buf, size_t size);

#endif
