/*
 * feed_harness.c: the feed against an in-process tikv-sim, checked against
 * the simulator's truth file (see feed_harness.h for what is verified).
 *
 * The simulator is assembled the way tests/sim/sim_main.c does it (model,
 * PD server, one server per store with the lock RPCs and the CDC service,
 * workload, control), without the HTTP endpoint: faults go through
 * sim_control_exec_str() directly.
 *
 * The consumer thread is the only reader of the feed's queue and the only
 * writer of the recorded state; the test thread reads it under the mutex.
 */
#include "feed_harness.h"

#include <check.h>
#include <grpc/grpc.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "feed_event.h"
#include "frontier.h"
#include "sim_lockrpc.h"
#include "sim_server.h"
#include "sim_workload.h"
#include "util/clock.h"
#include "util/hashmap.h"
#include "util/keycodec.h"
#include "util/keyrange.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/msgq.h"

#define FH_MAX_STORES 8

/* one distinct (key, commit_ts) the feed emitted */
typedef struct emitted_s {
    uint64_t start_ts;
    int op;
    uint32_t crc;
    size_t len;
    bool has_old;
    uint32_t old_crc;
    size_t old_len;
    size_t count;
    uint64_t first_seq;
    bool matched;
} emitted_t;

typedef struct hist_s {
    uint64_t seq;
    uint64_t ts;
} hist_t;

struct fh_s {
    fh_opts_t o;
    /* simulator */
    char truth_path[64];
    FILE *truth;
    sim_model_t *m;
    sim_cdc_t *cdc;
    sim_server_t *pd_srv;
    sim_pd_t *pd;
    char pd_addr[64];
    sim_server_t *srv[FH_MAX_STORES];
    sim_lockrpc_t *lr[FH_MAX_STORES];
    uint64_t ids[FH_MAX_STORES];
    sim_workload_t *w;
    sim_control_t *ctl;
    tkc_feed_table_span_t span;

    /* feed + consumer */
    tkc_msgq_t *q;
    tkc_feed_t *feed;
    pthread_t consumer;
    bool consumer_running;
    atomic_bool consumer_stop;

    pthread_mutex_t mu;
    tkc_frontier_t *front;
    uint64_t start_ts;
    uint64_t resolved;
    uint64_t seq;
    tkc_hashmap_t *rows;     /* key + commit_ts(8) -> emitted_t */
    tkc_hashmap_t *region_ts;/* region id -> last ts (uint64 boxed) */
    hist_t *hist;
    size_t n_hist, cap_hist;
    size_t emitted, below_frontier, region_ts_back, resolved_events, wrong_span;
    int64_t lag_now, lag_max;
    char first_problem[512];
    char fatal[512];
    tkc_err_t fatal_err;
    bool has_fatal;
};

void fh_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void fh_opts_init(fh_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->stores = 3;
    o->regions = 64;
    o->keys = 10000;
    o->table_id = 100;
    o->rate = 2000;
    o->resolved_interval_ms = 200;
    o->scan_rows_per_tick = 8192;
    o->store_version = "8.5.0";
    o->cluster_id = 7001;
    o->value_min = 16;
    o->value_max = 128;
    o->keys_per_txn = 4;
    o->concurrency = 4;
    o->long_txn_ms = 2000;
    o->lock_ttl_ms = 3000;
    o->queue_bytes = 8 << 20;
}

static void problem(fh_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(fh_t *h, const char *fmt, ...)
{
    if (h->first_problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->first_problem, sizeof(h->first_problem), fmt, ap);
    va_end(ap);
    fprintf(stderr, "feed_harness: PROBLEM: %s\n", h->first_problem);
}

/* ===== simulator ===== */

fh_t *fh_new(const fh_opts_t *o)
{
    grpc_init();
    const char *lvl = getenv("FH_LOG");
    tkc_log_level_t level = TKC_LOG_INFO;
    if (lvl)
        tkc_log_level_parse(lvl, &level);
    tkc_log_set_level(level);

    fh_t *h = tkc_calloc(1, sizeof(*h));
    h->o = *o;
    ck_assert_int_le(o->stores, FH_MAX_STORES);
    pthread_mutex_init(&h->mu, NULL);
    snprintf(h->truth_path, sizeof(h->truth_path), "/tmp/fh-truth-XXXXXX");
    int fd = mkstemp(h->truth_path);
    ck_assert_int_ge(fd, 0);
    h->truth = fdopen(fd, "w");
    ck_assert_ptr_nonnull(h->truth);

    sim_model_config_t mc = {
        .cluster_id = o->cluster_id, .stores = o->stores, .regions = o->regions, .seed = 1,
        .table_id = o->table_id, .key_count = o->keys, .store_version = o->store_version,
        .truth = h->truth,
    };
    h->m = sim_model_new(&mc);
    ck_assert_ptr_nonnull(h->m);
    sim_cdc_config_t cc;
    sim_cdc_config_defaults(&cc);
    cc.resolved_interval_ms = o->resolved_interval_ms;
    cc.pre_7_3 = o->pre_7_3;
    cc.incremental_scan_rows_per_tick = o->scan_rows_per_tick;
    h->cdc = sim_cdc_new(h->m, &cc);
    h->pd_srv = sim_server_new("pd", "127.0.0.1:0");
    h->pd = sim_pd_new(h->m, h->pd_srv);
    int port = sim_server_start(h->pd_srv);
    ck_assert_int_gt(port, 0);
    snprintf(h->pd_addr, sizeof(h->pd_addr), "127.0.0.1:%d", port);
    for (int i = 0; i < o->stores; i++) {
        sim_model_lock(h->m);
        h->ids[i] = sim_model_store_at_locked(h->m, i)->id;
        sim_model_unlock(h->m);
        char name[32];
        snprintf(name, sizeof(name), "store-%" PRIu64, h->ids[i]);
        h->srv[i] = sim_server_new(name, "127.0.0.1:0");
        h->lr[i] = sim_lockrpc_new(h->m, h->ids[i], h->srv[i]);
        sim_cdc_attach_store(h->cdc, h->ids[i], h->srv[i]);
        ck_assert_int_gt(sim_server_start(h->srv[i]), 0);
        sim_model_lock(h->m);
        snprintf(sim_model_store_by_id_locked(h->m, h->ids[i])->addr, 64, "%s",
                 sim_server_addr(h->srv[i]));
        sim_model_unlock(h->m);
    }
    sim_workload_config_t wc;
    sim_workload_config_default(&wc);
    wc.rate_rows_per_s = o->rate > 0 ? o->rate : 0;
    wc.keys_per_txn_max = o->keys_per_txn;
    wc.value_min = o->value_min;
    wc.value_max = o->value_max;
    wc.rollback_pct = o->rollback_pct;
    wc.onepc_pct = o->onepc_pct;
    wc.delete_pct = o->delete_pct;
    wc.long_txn_pct = o->long_txn_pct;
    wc.long_txn_ms = o->long_txn_ms;
    wc.concurrency = o->concurrency;
    wc.crashed_lock_ttl_ms = o->lock_ttl_ms;
    h->w = sim_workload_new(h->m, &wc, 1);
    ck_assert_ptr_nonnull(h->w);
    if (o->rate < 0)
        sim_workload_pause(h->w);
    ck_assert_int_eq(sim_workload_start(h->w), 0);
    sim_server_t *srvs[FH_MAX_STORES];
    sim_lockrpc_t *lrs[FH_MAX_STORES];
    for (int i = 0; i < o->stores; i++) {
        srvs[i] = h->srv[i];
        lrs[i] = h->lr[i];
    }
    sim_cluster_t cl = {
        .model = h->m, .workload = h->w, .cdc = h->cdc, .pd = h->pd,
        .n_stores = (size_t)o->stores, .store_ids = h->ids, .store_servers = srvs,
        .lockrpcs = lrs,
    };
    h->ctl = sim_control_new(&cl);
    tkc_feed_table_span(o->table_id, &h->span);
    h->rows = tkc_hashmap_new();
    h->region_ts = tkc_hashmap_new();
    return h;
}

static void free_box(void *p)
{
    tkc_free(p);
}

void fh_destroy(fh_t *h)
{
    fh_stop_feed(h);
    sim_control_destroy(h->ctl);
    sim_workload_destroy(h->w);
    for (int i = 0; i < h->o.stores; i++)
        sim_server_stop(h->srv[i]);
    sim_server_stop(h->pd_srv);
    for (int i = 0; i < h->o.stores; i++) {
        sim_server_destroy(h->srv[i]);
        sim_lockrpc_destroy(h->lr[i]);
    }
    sim_server_destroy(h->pd_srv);
    sim_pd_destroy(h->pd);
    sim_cdc_destroy(h->cdc);
    sim_model_truth_flush(h->m);
    sim_model_destroy(h->m);
    fclose(h->truth);
    unlink(h->truth_path);
    tkc_hashmap_destroy(h->rows, free_box);
    tkc_hashmap_destroy(h->region_ts, free_box);
    tkc_frontier_destroy(h->front);
    tkc_free(h->hist);
    pthread_mutex_destroy(&h->mu);
    tkc_free(h);
    grpc_shutdown_blocking();
}

sim_model_t *fh_model(fh_t *h)
{
    return h->m;
}
sim_cdc_t *fh_cdc(fh_t *h)
{
    return h->cdc;
}
sim_pd_t *fh_pd(fh_t *h)
{
    return h->pd;
}
sim_workload_t *fh_workload(fh_t *h)
{
    return h->w;
}
const char *fh_pd_addr(fh_t *h)
{
    return h->pd_addr;
}
tkc_feed_t *fh_feed(fh_t *h)
{
    return h->feed;
}
uint64_t fh_tso(fh_t *h)
{
    return sim_model_tso(h->m);
}

static json_t *op_v(fh_t *h, const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    json_t *res = NULL;
    int rc = sim_control_exec_str(h->ctl, buf, &res);
    if (rc != 0) {
        char *s = res ? json_dumps(res, JSON_COMPACT) : NULL;
        fprintf(stderr, "feed_harness: op %s failed: %s\n", buf, s ? s : "?");
        free(s);
        json_decref(res);
        return NULL;
    }
    return res;
}

int fh_op(fh_t *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *res = op_v(h, fmt, ap);
    va_end(ap);
    if (!res)
        return -1;
    json_decref(res);
    return 0;
}

json_t *fh_op_result(fh_t *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *res = op_v(h, fmt, ap);
    va_end(ap);
    return res;
}

void fh_sim_store_stats(fh_t *h, uint64_t store_id, sim_cdc_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    sim_cdc_stats_get(h->cdc, store_id, out);
}

void fh_sim_total_stats(fh_t *h, sim_cdc_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < h->o.stores; i++) {
        sim_cdc_stats_t s;
        sim_cdc_stats_get(h->cdc, h->ids[i], &s);
        uint64_t *a = (uint64_t *)out;
        const uint64_t *b = (const uint64_t *)&s;
        for (size_t k = 0; k < sizeof(s) / sizeof(uint64_t); k++)
            a[k] += b[k];
    }
}

/* ===== consumer ===== */

static void row_key(const tkc_row_t *r, uint8_t *buf, size_t *len)
{
    memcpy(buf, r->key, r->key_len);
    for (int i = 0; i < 8; i++)
        buf[r->key_len + i] = (uint8_t)(r->commit_ts >> (56 - 8 * i));
    *len = r->key_len + 8;
}

static uint32_t crc_of(const uint8_t *p, size_t n)
{
    return n ? (uint32_t)crc32(0L, p, (uInt)n) : 0;
}

/* mu held */
static void take_rows(fh_t *h, tkc_feed_event_t *ev)
{
    uint64_t span_min = tkc_frontier_span_min(h->front, ev->span_index);
    for (tkc_row_t *r = ev->rows; r; r = r->next) {
        h->emitted++;
        h->seq++;
        if (r->commit_ts <= span_min) {
            h->below_frontier++;
            problem(h, "row commit_ts %" PRIu64 " (region %" PRIu64 ") arrived at or below the "
                       "span frontier %" PRIu64,
                    r->commit_ts, r->region_id, span_min);
        }
        uint8_t kb[512];
        size_t kl;
        if (r->key_len + 8 > sizeof(kb))
            continue;
        /* the row belongs to the span its event names (encoded compare) */
        tkc_keyrange_t sp;
        uint8_t enc[600];
        if (tkc_keycodec_encoded_len(r->key_len) <= sizeof(enc) &&
            tkc_feed_span_encoded(h->feed, ev->span_index, &sp)) {
            tkc_keycodec_encode(r->key, r->key_len, enc);
            if (!tkc_keyrange_contains(&sp, enc, tkc_keycodec_encoded_len(r->key_len))) {
                h->wrong_span++;
                problem(h, "a row of span %" PRIu32 " lies outside it", ev->span_index);
            }
        }
        row_key(r, kb, &kl);
        emitted_t *e = tkc_hashmap_get(h->rows, kb, kl);
        if (!e) {
            e = tkc_calloc(1, sizeof(*e));
            e->start_ts = r->start_ts;
            e->op = r->op;
            e->len = r->value_len;
            e->crc = crc_of(r->value, r->value_len);
            e->has_old = r->has_old_value;
            e->old_len = r->old_value_len;
            e->old_crc = crc_of(r->old_value, r->old_value_len);
            e->first_seq = h->seq;
            tkc_hashmap_put(h->rows, kb, kl, e);
        } else if (e->start_ts != r->start_ts || e->op != (int)r->op ||
                   e->crc != crc_of(r->value, r->value_len)) {
            problem(h, "a duplicate of (key, commit_ts %" PRIu64 ") differs from the first copy",
                    r->commit_ts);
            h->below_frontier++;
        }
        e->count++;
    }
}

/* mu held */
static void take_resolved(fh_t *h, tkc_feed_event_t *ev)
{
    h->resolved_events++;
    for (size_t i = 0; i < ev->n_regions; i++) {
        tkc_feed_region_range_t *rr = &ev->regions[i];
        /* a region that straddles two spans is subscribed once per span, and each
         * subscription has its own resolved ts: monotonic per (span, region) */
        uint64_t rkey[2] = {(uint64_t)ev->span_index, rr->region_id};
        uint64_t *last = tkc_hashmap_get(h->region_ts, rkey, sizeof(rkey));
        if (!last) {
            last = tkc_calloc(1, sizeof(*last));
            tkc_hashmap_put(h->region_ts, rkey, sizeof(rkey), last);
        }
        if (ev->ts < *last) {
            h->region_ts_back++;
            problem(h, "span %u region %" PRIu64 " resolved ts went back from %" PRIu64 " to %" PRIu64,
                    (unsigned)ev->span_index, rr->region_id, *last, ev->ts);
        } else {
            *last = ev->ts;
        }
        tkc_frontier_forward(h->front, ev->span_index, rr->region_id, rr->start, rr->start_len,
                             rr->end, rr->end_len, ev->ts);
    }
    uint64_t min = tkc_frontier_min(h->front);
    if (min < h->resolved) {
        problem(h, "the frontier went back");
    } else if (min > h->resolved) {
        h->resolved = min;
        if (h->n_hist == h->cap_hist) {
            h->cap_hist = h->cap_hist ? h->cap_hist * 2 : 256;
            h->hist = tkc_realloc(h->hist, h->cap_hist * sizeof(*h->hist));
        }
        h->hist[h->n_hist++] = (hist_t){h->seq, min};
    }
}

static void update_lag(fh_t *h)
{
    int64_t lag = tkc_clock_wall_ms() - tkc_tso_physical_ms(h->resolved);
    h->lag_now = lag;
    if (lag > h->lag_max)
        h->lag_max = lag;
}

static void *consumer_main(void *arg)
{
    fh_t *h = arg;
    for (;;) {
        bool stop = atomic_load(&h->consumer_stop);
        tkc_feed_event_t *ev = tkc_msgq_pop(h->q, stop ? 0 : 20, NULL);
        pthread_mutex_lock(&h->mu);
        if (ev) {
            switch (ev->kind) {
            case TKC_FEED_EVENT_ROWS:
                take_rows(h, ev);
                break;
            case TKC_FEED_EVENT_RESOLVED:
                take_resolved(h, ev);
                break;
            case TKC_FEED_EVENT_ERROR:
                if (!h->has_fatal) {
                    h->has_fatal = true;
                    h->fatal_err = ev->err;
                    snprintf(h->fatal, sizeof(h->fatal), "%s", ev->message);
                }
                break;
            }
        }
        update_lag(h);
        pthread_mutex_unlock(&h->mu);
        if (ev) {
            tkc_feed_event_destroy(ev);
            if (h->o.consumer_delay_us > 0)
                usleep((useconds_t)h->o.consumer_delay_us);
        } else if (stop) {
            break;
        }
    }
    return NULL;
}

/* ===== feed ===== */

void fh_feed_config(fh_t *h, tkc_feed_config_t *cfg)
{
    static const char *eps[1];
    eps[0] = h->pd_addr;
    tkc_feed_config_defaults(cfg);
    cfg->pd_endpoints = eps;
    cfg->n_pd_endpoints = 1;
    cfg->spans = &h->span.range;
    cfg->n_spans = 1;
    cfg->workers = 2;
    cfg->pd_timeout_ms = 3000;
    cfg->kv_timeout_ms = 3000;
    cfg->gc_update_interval_ms = 2000;
    cfg->stuck_threshold_ms = 3000;
    cfg->stuck_check_interval_ms = 500;
    cfg->resolve_lock_interval_ms = 2000;
    cfg->stream_stall_timeout_ms = 4000;
}

tkc_err_t fh_start_feed(fh_t *h, const tkc_feed_config_t *cfg, char *errstr, size_t errstr_size)
{
    h->q = tkc_msgq_new(h->o.queue_bytes);
    tkc_err_t err = TKC_ERR_OK;
    h->feed = tkc_feed_new(cfg, h->q, &err, errstr, errstr_size);
    if (!h->feed) {
        tkc_msgq_destroy(h->q, tkc_feed_event_free);
        h->q = NULL;
        return err;
    }
    h->start_ts = tkc_feed_start_ts(h->feed);
    tkc_keyrange_t spans[16];
    size_t n = tkc_feed_span_count(h->feed);
    ck_assert_uint_le(n, 16);
    for (size_t i = 0; i < n; i++)
        tkc_feed_span_encoded(h->feed, i, &spans[i]);
    h->front = tkc_frontier_new(spans, n, h->start_ts);
    h->resolved = h->start_ts;
    h->lag_max = 0;
    atomic_store(&h->consumer_stop, false);
    pthread_create(&h->consumer, NULL, consumer_main, h);
    h->consumer_running = true;
    ck_assert_int_eq(tkc_feed_start(h->feed), TKC_ERR_OK);
    return TKC_ERR_OK;
}

void fh_stop_feed(fh_t *h)
{
    if (h->feed)
        tkc_feed_stop(h->feed);
    if (h->consumer_running) {
        atomic_store(&h->consumer_stop, true);
        pthread_join(h->consumer, NULL);
        h->consumer_running = false;
    }
    if (h->feed) {
        tkc_feed_destroy(h->feed);
        h->feed = NULL;
    }
    if (h->q) {
        tkc_msgq_destroy(h->q, tkc_feed_event_free);
        h->q = NULL;
    }
}

uint64_t fh_resolved(fh_t *h)
{
    pthread_mutex_lock(&h->mu);
    uint64_t r = h->resolved;
    pthread_mutex_unlock(&h->mu);
    return r;
}

int64_t fh_lag_ms(fh_t *h)
{
    pthread_mutex_lock(&h->mu);
    update_lag(h);
    int64_t l = h->lag_now;
    pthread_mutex_unlock(&h->mu);
    return l;
}

int64_t fh_max_lag_ms(fh_t *h)
{
    pthread_mutex_lock(&h->mu);
    update_lag(h);
    int64_t l = h->lag_max;
    pthread_mutex_unlock(&h->mu);
    return l;
}

void fh_mark_lag(fh_t *h)
{
    pthread_mutex_lock(&h->mu);
    update_lag(h);
    h->lag_max = h->lag_now;
    pthread_mutex_unlock(&h->mu);
}

size_t fh_rows_seen(fh_t *h)
{
    pthread_mutex_lock(&h->mu);
    size_t n = h->emitted;
    pthread_mutex_unlock(&h->mu);
    return n;
}

const char *fh_fatal(fh_t *h, tkc_err_t *err)
{
    pthread_mutex_lock(&h->mu);
    const char *m = h->has_fatal ? h->fatal : NULL;
    if (err)
        *err = h->fatal_err;
    pthread_mutex_unlock(&h->mu);
    return m;
}

bool fh_wait_fatal(fh_t *h, int timeout_ms)
{
    int64_t end = tkc_clock_mono_ms() + timeout_ms;
    while (tkc_clock_mono_ms() < end) {
        if (fh_fatal(h, NULL))
            return true;
        fh_sleep_ms(20);
    }
    return fh_fatal(h, NULL) != NULL;
}

bool fh_wait_resolved(fh_t *h, uint64_t ts, int timeout_ms)
{
    int64_t end = tkc_clock_mono_ms() + timeout_ms;
    while (tkc_clock_mono_ms() < end) {
        if (fh_resolved(h) >= ts)
            return true;
        fh_sleep_ms(20);
    }
    return fh_resolved(h) >= ts;
}

bool fh_wait_caught_up(fh_t *h, int timeout_ms)
{
    return fh_wait_resolved(h, fh_tso(h), timeout_ms);
}

bool fh_wait_lag_below(fh_t *h, int64_t lag_ms, int timeout_ms, int64_t *took_ms)
{
    int64_t start = tkc_clock_mono_ms(), end = start + timeout_ms;
    for (;;) {
        if (fh_lag_ms(h) < lag_ms) {
            if (took_ms)
                *took_ms = tkc_clock_mono_ms() - start;
            return true;
        }
        if (tkc_clock_mono_ms() >= end)
            break;
        fh_sleep_ms(20);
    }
    if (took_ms)
        *took_ms = tkc_clock_mono_ms() - start;
    return false;
}

/* ===== verification ===== */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (s[0] && s[1] && n < cap) {
        out[n++] = (uint8_t)(hexval(s[0]) << 4 | hexval(s[1]));
        s += 2;
    }
    return n;
}

/* The previous truth version of each key, in commit order. */
typedef struct prev_s {
    uint64_t commit_ts;
    bool is_put;
    uint32_t crc;
    size_t len;
} prev_t;

/* first history index whose ts >= @p ts, as a sequence number (or max) */
static uint64_t seq_resolved_at(const fh_t *h, uint64_t ts)
{
    size_t lo = 0, hi = h->n_hist;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->hist[mid].ts >= ts)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo < h->n_hist ? h->hist[lo].seq : UINT64_MAX;
}

void fh_check(fh_t *h, int catch_up_ms, fh_report_t *rep)
{
    memset(rep, 0, sizeof(*rep));
    sim_workload_pause(h->w);
    sim_workload_wait_idle(h->w, 20000);
    uint64_t end_ts = fh_tso(h);
    rep->caught_up = fh_wait_resolved(h, end_ts, catch_up_ms);
    fh_stop_feed(h);
    sim_model_truth_flush(h->m);

    pthread_mutex_lock(&h->mu);
    rep->final_resolved = h->resolved;
    rep->emitted = h->emitted;
    rep->unique = tkc_hashmap_count(h->rows);
    rep->duplicates = rep->emitted - rep->unique;
    rep->below_frontier = h->below_frontier;
    rep->region_ts_back = h->region_ts_back;
    rep->wrong_span = h->wrong_span;
    rep->resolved_events = h->resolved_events;

    FILE *tf = fopen(h->truth_path, "r");
    ck_assert_ptr_nonnull(tf);
    tkc_hashmap_t *prev = tkc_hashmap_new();
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, tf) > 0) {
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        if (!j)
            continue;
        const char *khex = json_string_value(json_object_get(j, "key"));
        const char *op = json_string_value(json_object_get(j, "op"));
        uint64_t vlen = (uint64_t)json_integer_value(json_object_get(j, "value_len"));
        uint32_t vcrc = (uint32_t)json_integer_value(json_object_get(j, "value_crc32"));
        uint64_t start_ts = (uint64_t)json_integer_value(json_object_get(j, "start_ts"));
        uint64_t commit_ts = (uint64_t)json_integer_value(json_object_get(j, "commit_ts"));
        uint8_t kb[512];
        size_t kl = khex ? unhex(khex, kb, sizeof(kb) - 8) : 0;
        bool is_put = op && strcmp(op, "put") == 0;
        json_decref(j);
        if (!tkc_keyrange_contains(&h->span.range, kb, kl))
            continue;
        /* previous version of this key in the truth, for the old value */
        prev_t *pv = tkc_hashmap_get(prev, kb, kl);
        prev_t before = pv ? *pv : (prev_t){0};
        bool have_before = pv != NULL;
        if (!pv) {
            pv = tkc_calloc(1, sizeof(*pv));
            tkc_hashmap_put(prev, kb, kl, pv);
        }
        *pv = (prev_t){commit_ts, is_put, vcrc, vlen};
        if (commit_ts <= h->start_ts)
            continue;
        rep->truth_rows++;
        for (int i = 0; i < 8; i++)
            kb[kl + i] = (uint8_t)(commit_ts >> (56 - 8 * i));
        emitted_t *e = tkc_hashmap_get(h->rows, kb, kl + 8);
        if (commit_ts > h->resolved) {
            if (e)
                e->matched = true; /* may or may not have arrived: fine */
            continue;
        }
        rep->truth_checked++;
        if (!e) {
            rep->missing++;
            problem(h, "missing: key %s commit_ts %" PRIu64 " (resolved %" PRIu64 ")",
                    khex ? khex : "?", commit_ts, h->resolved);
            continue;
        }
        e->matched = true;
        int want_op = is_put ? TKC_ROW_OP_PUT : TKC_ROW_OP_DELETE;
        if (e->start_ts != start_ts || e->op != want_op || e->len != vlen || e->crc != vcrc) {
            rep->mismatched++;
            problem(h,
                    "mismatch: key %s commit_ts %" PRIu64 ": start %" PRIu64 "/%" PRIu64
                    " op %d/%d len %zu/%" PRIu64,
                    khex ? khex : "?", commit_ts, e->start_ts, start_ts, e->op, want_op, e->len,
                    vlen);
        }
        if (e->first_seq > seq_resolved_at(h, commit_ts)) {
            rep->late++;
            problem(h, "late: key %s commit_ts %" PRIu64 " arrived after resolved passed it",
                    khex ? khex : "?", commit_ts);
        }
        if (have_before && e->has_old) {
            rep->old_value_checked++;
            uint32_t want_crc = before.is_put ? before.crc : 0;
            size_t want_len = before.is_put ? before.len : 0;
            if (e->old_crc != want_crc || e->old_len != want_len) {
                rep->old_value_mismatch++;
                problem(h, "old value: key %s commit_ts %" PRIu64 " old len %zu want %zu",
                        khex ? khex : "?", commit_ts, e->old_len, want_len);
            }
        }
    }
    free(line);
    fclose(tf);
    tkc_hashmap_destroy(prev, free_box);

    tkc_hashmap_iter_t it = TKC_HASHMAP_ITER_INIT;
    void *val;
    const void *key;
    size_t klen;
    while (tkc_hashmap_next(h->rows, &it, &key, &klen, &val)) {
        emitted_t *e = val;
        if (!e->matched) {
            rep->invented++;
            problem(h, "invented: a row with start_ts %" PRIu64 " is not in the truth",
                    e->start_ts);
        }
    }
    snprintf(rep->first_problem, sizeof(rep->first_problem), "%s", h->first_problem);
    pthread_mutex_unlock(&h->mu);
}

void fh_report_print(const char *title, const fh_report_t *r)
{
    fprintf(stderr,
            "== %s: truth=%zu checked=%zu emitted=%zu unique=%zu dups=%zu missing=%zu "
            "invented=%zu mismatched=%zu late=%zu below_frontier=%zu old_checked=%zu "
            "old_mismatch=%zu region_ts_back=%zu wrong_span=%zu resolved_events=%zu caught_up=%d%s%s\n",
            title, r->truth_rows, r->truth_checked, r->emitted, r->unique, r->duplicates,
            r->missing, r->invented, r->mismatched, r->late, r->below_frontier,
            r->old_value_checked, r->old_value_mismatch, r->region_ts_back, r->wrong_span,
            r->resolved_events,
            r->caught_up, r->first_problem[0] ? " first_problem: " : "", r->first_problem);
}

void fh_assert_clean(const fh_report_t *r, bool allow_dups)
{
    ck_assert_msg(r->caught_up, "resolved ts did not reach the end of the workload");
    ck_assert_msg(r->truth_checked > 0, "nothing to check");
    ck_assert_msg(r->missing == 0, "%zu rows missing: %s", r->missing, r->first_problem);
    ck_assert_msg(r->invented == 0, "%zu rows invented: %s", r->invented, r->first_problem);
    ck_assert_msg(r->mismatched == 0, "%zu rows differ: %s", r->mismatched, r->first_problem);
    ck_assert_msg(r->late == 0, "%zu rows late: %s", r->late, r->first_problem);
    ck_assert_msg(r->below_frontier == 0, "%zu rows below the frontier: %s", r->below_frontier,
                  r->first_problem);
    ck_assert_msg(r->old_value_mismatch == 0, "%zu old values wrong: %s", r->old_value_mismatch,
                  r->first_problem);
    ck_assert_msg(r->region_ts_back == 0, "region resolved ts went back: %s", r->first_problem);
    ck_assert_msg(r->wrong_span == 0, "rows in the wrong span: %s", r->first_problem);
    if (!allow_dups)
        ck_assert_msg(r->duplicates == 0, "%zu duplicates without a re-subscription",
                      r->duplicates);
}
