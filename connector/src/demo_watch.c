/*
 * demo_watch.c: turning /status samples into the demo's live line,
 * announcements and summary.
 *
 * Design:
 *  - The demo samples /status about four times a second but redraws once a
 *    second: the fast samples catch the peak of the lag and the moment it
 *    comes back, which a 1 s sampling would miss by up to a second.
 *  - rows/s is the difference of the delivered-rows counter over the last
 *    second of samples, so it shows what Kafka acknowledged, not what the
 *    connector received.
 *  - "Recovered" needs a definition a newcomer can check. The simulated
 *    stores send resolved ts once a second, so the resolved-ts lag of a
 *    healthy feed is a saw-tooth between about 0 and 1.x s. The baseline is
 *    the highest lag of the 5 s before the restart; the feed has recovered
 *    when the lag, after going above baseline + 0.5 s (at least 1 s), is
 *    back at or under it. Recovery time = that moment minus the restart.
 *    A restart that never lifts the lag over the threshold is reported as
 *    "no visible spike", not as a recovery of 0 s.
 *  - The initial scan is done when /status says so (the frontier moved
 *    past the start ts, which needs every region's INITIALIZED event).
 */
#include "demo_watch.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

#define HISTORY 64          /* samples kept: 16 s at 4 Hz */
#define BASELINE_MS 5000    /* lag window before the restart */
#define MAX_EVENTS 8

typedef struct hist_s {
    int64_t t_ms;
    uint64_t rows;
    bool have_lag;
    double lag_s;
} hist_t;

struct tkc_demo_watch_s {
    bool have_first;
    int64_t first_t_ms;
    tkc_demo_sample_t last;
    bool have_last;

    hist_t hist[HISTORY];
    size_t n_hist, next_hist;

    int64_t scan_ms;
    uint64_t scan_regions;

    bool restarted;
    uint64_t restart_store;
    int64_t restart_at_ms;
    double lag_before_s, threshold_s, lag_max_s;
    bool spiked, recovered;
    int64_t recovery_ms;
    uint64_t streams_opened_at_restart, stream_id_at_restart;

    char events[MAX_EVENTS][256];
    size_t n_events;
};

/* ===== parsing /status ===== */

static uint64_t u64_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static int cmp_store(const void *a, const void *b)
{
    const tkc_demo_store_t *x = a, *y = b;
    return x->store_id < y->store_id ? -1 : x->store_id > y->store_id;
}

tkc_err_t tkc_demo_sample_parse(const char *json, int64_t t_ms, tkc_demo_sample_t *out,
                                char *errstr, size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    out->t_ms = t_ms;
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    if (!root || !json_is_object(root)) {
        snprintf(errstr, errstr_size, "/status is not a JSON object: %s", root ? "" : jerr.text);
        json_decref(root);
        return TKC_ERR_CORRUPT;
    }
    json_t *state = json_object_get(root, "state");
    if (!json_is_string(state)) {
        snprintf(errstr, errstr_size, "/status has no state");
        json_decref(root);
        return TKC_ERR_CORRUPT;
    }
    snprintf(out->state, sizeof(out->state), "%s", json_string_value(state));

    json_t *res = json_object_get(root, "resolved"), *ck = json_object_get(root, "checkpoint");
    json_t *res_lag = json_object_get(res, "lag_seconds");
    json_t *ck_lag = json_object_get(ck, "lag_seconds");
    if (json_is_number(res_lag) && json_is_number(ck_lag)) {
        out->have_ts = true;
        out->resolved_ts = u64_of(res, "ts");
        out->checkpoint_ts = u64_of(ck, "ts");
        out->resolved_lag_s = json_number_value(res_lag);
        out->checkpoint_lag_s = json_number_value(ck_lag);
    }
    json_t *topics = json_object_get(json_object_get(root, "kafka"), "topics");
    size_t i;
    json_t *t;
    json_array_foreach(topics, i, t) out->rows_delivered += u64_of(t, "rows_delivered");

    json_t *scan = json_object_get(root, "initial_scan");
    out->regions_initialized = u64_of(scan, "regions_initialized");
    out->regions_total = u64_of(scan, "regions_total");
    out->scan_done = json_is_true(json_object_get(scan, "done"));

    json_t *stores = json_object_get(root, "stores");
    json_array_foreach(stores, i, t)
    {
        if (out->n_stores == TKC_DEMO_MAX_STORES)
            break;
        tkc_demo_store_t *s = &out->stores[out->n_stores++];
        s->store_id = u64_of(t, "store_id");
        s->stream_id = u64_of(t, "stream_id");
        s->streams_live = u64_of(t, "streams_live");
        s->streams_opened = u64_of(t, "streams_opened");
        s->streams_retired = u64_of(t, "streams_retired");
    }
    qsort(out->stores, out->n_stores, sizeof(out->stores[0]), cmp_store);
    json_decref(root);
    return TKC_ERR_OK;
}

/* ===== the watch ===== */

tkc_demo_watch_t *tkc_demo_watch_new(void)
{
    tkc_demo_watch_t *w = tkc_calloc(1, sizeof(*w));
    w->scan_ms = -1;
    w->recovery_ms = -1;
    return w;
}

void tkc_demo_watch_destroy(tkc_demo_watch_t *w)
{
    tkc_free(w);
}

void tkc_demo_watch_fmt_time(int64_t t_ms, char *buf, size_t size)
{
    if (t_ms < 0)
        t_ms = 0;
    int64_t s = t_ms / 1000;
    unsigned min = s / 60 > 99999 ? 99999u : (unsigned)(s / 60), sec = (unsigned)(s % 60);
    snprintf(buf, size, "%u:%02u", min % 100000u, sec % 60u);
}

static void push_event(tkc_demo_watch_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void push_event(tkc_demo_watch_t *w, const char *fmt, ...)
{
    if (w->n_events == MAX_EVENTS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->events[w->n_events++], sizeof(w->events[0]), fmt, ap);
    va_end(ap);
}

bool tkc_demo_watch_event(tkc_demo_watch_t *w, char *buf, size_t size)
{
    if (w->n_events == 0)
        return false;
    snprintf(buf, size, "%s", w->events[0]);
    memmove(w->events[0], w->events[1], (w->n_events - 1) * sizeof(w->events[0]));
    w->n_events--;
    return true;
}

static const hist_t *hist_at(const tkc_demo_watch_t *w, size_t back)
{
    /* back 0 = newest */
    return &w->hist[(w->next_hist + HISTORY - 1 - back) % HISTORY];
}

static const tkc_demo_store_t *find_store(const tkc_demo_sample_t *s, uint64_t id)
{
    for (size_t i = 0; i < s->n_stores; i++)
        if (s->stores[i].store_id == id)
            return &s->stores[i];
    return NULL;
}

void tkc_demo_watch_add(tkc_demo_watch_t *w, const tkc_demo_sample_t *s)
{
    char when[16];
    tkc_demo_watch_fmt_time(s->t_ms, when, sizeof(when));
    if (!w->have_first) {
        w->have_first = true;
        w->first_t_ms = s->t_ms;
    }
    w->last = *s;
    w->have_last = true;
    w->hist[w->next_hist] = (hist_t){s->t_ms, s->rows_delivered, s->have_ts, s->resolved_lag_s};
    w->next_hist = (w->next_hist + 1) % HISTORY;
    if (w->n_hist < HISTORY)
        w->n_hist++;

    if (w->scan_ms < 0 && s->scan_done && strcmp(s->state, "initial_scan") != 0 &&
        strcmp(s->state, "starting") != 0) {
        w->scan_ms = s->t_ms;
        w->scan_regions = s->regions_total;
        push_event(w,
                   "%s initial scan done: %llu regions initialized in %.1f s; rows now flow in "
                   "commit-ts order",
                   when, (unsigned long long)s->regions_total, (double)s->t_ms / 1000.0);
    }

    if (w->restarted && s->have_ts && !w->recovered) {
        double lag = s->resolved_lag_s;
        if (lag > w->lag_max_s)
            w->lag_max_s = lag;
        if (lag > w->threshold_s) {
            w->spiked = true;
        } else if (w->spiked) {
            w->recovered = true;
            w->recovery_ms = s->t_ms - w->restart_at_ms;
            push_event(w,
                       "%s lag back to %.1f s (max %.1f s): recovered %.1f s after the restart "
                       "of store %llu",
                       when, lag, w->lag_max_s, (double)w->recovery_ms / 1000.0,
                       (unsigned long long)w->restart_store);
        }
    }
}

void tkc_demo_watch_mark_restart(tkc_demo_watch_t *w, int64_t t_ms, uint64_t store_id)
{
    w->restarted = true;
    w->restart_store = store_id;
    w->restart_at_ms = t_ms;
    double base = 0;
    for (size_t i = 0; i < w->n_hist; i++) {
        const hist_t *h = hist_at(w, i);
        if (h->t_ms < t_ms - BASELINE_MS)
            break;
        if (h->have_lag && h->lag_s > base)
            base = h->lag_s;
    }
    w->lag_before_s = base;
    w->threshold_s = base + 0.5 > 1.0 ? base + 0.5 : 1.0;
    w->lag_max_s = 0;
    const tkc_demo_store_t *st = w->have_last ? find_store(&w->last, store_id) : NULL;
    w->streams_opened_at_restart = st ? st->streams_opened : 0;
    w->stream_id_at_restart = st ? st->stream_id : 0;
}

const tkc_demo_sample_t *tkc_demo_watch_last(const tkc_demo_watch_t *w)
{
    return w->have_last ? &w->last : NULL;
}

/* Rows per second over the last second of samples (0 before two samples). */
static double rate(const tkc_demo_watch_t *w)
{
    if (w->n_hist < 2)
        return 0;
    const hist_t *now = hist_at(w, 0), *then = hist_at(w, 1);
    for (size_t i = 1; i < w->n_hist; i++) {
        then = hist_at(w, i);
        if (now->t_ms - then->t_ms >= 1000)
            break;
    }
    int64_t dt = now->t_ms - then->t_ms;
    if (dt <= 0 || now->rows < then->rows)
        return 0;
    return (double)(now->rows - then->rows) * 1000.0 / (double)dt;
}

void tkc_demo_watch_line(const tkc_demo_watch_t *w, char *buf, size_t size)
{
    if (size == 0)
        return;
    buf[0] = '\0';
    if (!w->have_last) {
        snprintf(buf, size, " 0:00  starting");
        return;
    }
    const tkc_demo_sample_t *s = &w->last;
    char when[16];
    tkc_demo_watch_fmt_time(s->t_ms, when, sizeof(when));
    size_t n = 0;
#define APPEND(...)                                                          \
    do {                                                                     \
        if (n < size)                                                        \
            n += (size_t)snprintf(buf + n, size - n, __VA_ARGS__);           \
    } while (0)
    APPEND("%5s  ", when);
    if (strcmp(s->state, "initial_scan") == 0) {
        APPEND("initial scan %llu/%llu regions", (unsigned long long)s->regions_initialized,
               (unsigned long long)s->regions_total);
        if (s->have_ts)
            APPEND("  lag %.1f s", s->resolved_lag_s);
    } else {
        APPEND("%-8s %6.0f rows/s", s->state, rate(w));
        if (s->have_ts)
            APPEND("  lag: resolved %4.1f s  checkpoint %4.1f s", s->resolved_lag_s,
                   s->checkpoint_lag_s);
    }
    APPEND("  streams");
    if (s->n_stores == 0)
        APPEND(" -");
    for (size_t i = 0; i < s->n_stores; i++)
        APPEND(" s%llu:%llu", (unsigned long long)s->stores[i].store_id,
               (unsigned long long)s->stores[i].streams_live);
    APPEND("  %llu rows", (unsigned long long)s->rows_delivered);
#undef APPEND
}

void tkc_demo_watch_summary(const tkc_demo_watch_t *w, tkc_demo_summary_t *out)
{
    memset(out, 0, sizeof(*out));
    out->scan_ms = w->scan_ms;
    out->regions_total = w->scan_regions;
    out->recovery_ms = -1;
    if (!w->have_last)
        return;
    out->elapsed_ms = w->last.t_ms - w->first_t_ms;
    out->rows_delivered = w->last.rows_delivered;
    if (out->elapsed_ms > 0)
        out->rows_per_s = (double)out->rows_delivered * 1000.0 / (double)out->elapsed_ms;
    out->restarted = w->restarted;
    if (!w->restarted)
        return;
    out->restart_store = w->restart_store;
    out->restart_at_ms = w->restart_at_ms;
    out->lag_before_s = w->lag_before_s;
    out->threshold_s = w->threshold_s;
    out->lag_max_s = w->lag_max_s;
    out->spiked = w->spiked;
    out->recovery_ms = w->recovered ? w->recovery_ms : -1;
    out->streams_opened_at_restart = w->streams_opened_at_restart;
    out->stream_id_at_restart = w->stream_id_at_restart;
    const tkc_demo_store_t *st = find_store(&w->last, w->restart_store);
    out->streams_opened_end = st ? st->streams_opened : w->streams_opened_at_restart;
    out->stream_id_end = st ? st->stream_id : w->stream_id_at_restart;
}
