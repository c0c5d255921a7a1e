/*
 * pipeline.c: the pipeline thread (see pipeline.h).
 *
 * Data flow and ownership. The feed workers push tkc_feed_event_t items into
 * the msgq; this thread pops them. RESOLVED events move the frontier; ROWS
 * events hand their rows to the sorter (ownership moves with them). Rows the
 * frontier covers leave the sorter in (commit_ts, arrival) order, are encoded
 * (the encoded buffer goes to the sink, the row is freed) and produced. The
 * sink reports deliveries on this thread from tkc_kafka_sink_poll(). One
 * thread owns the frontier, the sorter, the sink and every counter below; the
 * only shared things are the stop flag (atomic) and the published metrics
 * snapshot (a mutex taken for a copy every few ms, never on a hot path).
 *
 * Batches ("bottledwater's xact_list, keyed by TSO"). Release works towards
 * a target ts T (the frontier when the previous target was done). Every row
 * message produced meanwhile counts in the open batch. When the sorter holds
 * no row <= T any more and nothing is waiting to be produced, the open batch
 * is sealed with ts T: it then holds every row with commit_ts in (previous T,
 * T] (rows <= the previous T were in earlier batches). Deliveries decrement
 * the batch's count; acked_ts is the ts of the newest sealed batch such that
 * it and every older batch are fully delivered. The target only moves once
 * the previous one is sealed, so seals happen even under a steady stream of
 * resolved-ts updates, and watermarks keep moving.
 *
 * Watermarks (at-least-once). When acked_ts > the last watermark and the
 * minimum interval passed, Watermark(acked_ts) is produced to the watermark
 * topic (key = feed id) and, when enabled, to every partition of every row
 * topic. Every row <= acked_ts was acknowledged before that produce, so in
 * every partition the watermark's offset is above the rows it covers. When
 * all watermark copies are acknowledged, watermark_ts moves and a checkpoint
 * follows (compacted topic record or file), committed only if it is above
 * the previous one. So checkpoint <= watermark <= acked <= released: the
 * checkpoint never runs ahead of Kafka (invariant 3).
 *
 * Exactly-once. One Kafka transaction per checkpoint: begun before the first
 * message after a commit, it holds the rows of the batches sealed since,
 * then Watermark(T) and the checkpoint record T for the newest sealed T, and
 * is committed only when the release stands exactly at a seal (nothing > T
 * was produced in it), so the checkpoint in the transaction names exactly
 * what the transaction contains. The checkpoint is read with read_committed
 * at start, after init_transactions() has fenced an older instance and
 * completed its last transaction: the coordinator answers InitProducerId
 * only once an open transaction is aborted and a commit's markers are in
 * every partition. Before that, a read_committed read could stall on the
 * open transaction's last stable offset, or miss a just-committed checkpoint
 * whose markers are still on their way (EndTxn returns before the markers
 * are written) and resume too early, duplicating a transaction. A restart
 * therefore resumes exactly after the last committed transaction and
 * read_committed consumers see every change once. Any delivery error or abortable transaction error aborts the
 * transaction and stops the pipeline (FAILED): the restart replays from the
 * checkpoint. Fenced (a newer instance took over) is fatal and says so.
 *
 * The first checkpoint. A feed without a checkpoint stores its resolved
 * start ts as its first checkpoint in tkc_pipeline_open(), before the feed
 * is created, so a kill before the first regular checkpoint resumes from
 * the same start ts (store_start_checkpoint() says how, per store); the
 * open fails if it cannot be stored.
 *
 * Re-sent copies. A re-subscription makes TiKV re-send changes that may
 * still wait in the sorter; the later copy of a (key, commit_ts) is dropped
 * as it leaves the sorter, before it is encoded (drop_copy(), row_dedup.h).
 *
 * Errors. A message Kafka rejects for good (too large, not authorised,
 * unknown topic) or that cannot be encoded puts the pipeline in HELD: the
 * batch it belongs to never completes, so neither the watermark nor the
 * checkpoint passes it; it is logged with what to fix, counted, and stays
 * visible in the metrics; nothing after it is released. A fatal producer
 * error (or a checkpoint that cannot be written) is FAILED: stop at once,
 * commit nothing more. Either way the restart replays from the checkpoint,
 * so the message is never skipped.
 *
 * Flow control and why it cannot deadlock. Reading the feed queue stops
 * (and the feed then stops reading its gRPC streams, so TiKV is throttled)
 * only while waiting frees room by itself:
 *   - the sorter refused a row (memory quota and disk budget both spent)
 *     and it holds a row <= the frontier: such rows leave the sorter as soon
 *     as Kafka takes them (the release does not depend on any input), so
 *     room comes back as long as Kafka makes progress; during a broker
 *     outage this is exactly the bounded-memory stall we want;
 *   - the pipeline is HELD or stopping: nothing more should be read.
 * If the sorter is full and holds no row <= the frontier, waiting could not
 * free anything: only a RESOLVED event still in the queue (behind rows we
 * cannot take) could release rows, and it is never readable while we wait.
 * Then the row is taken anyway beyond the disk budget (sorter "force", a
 * counted and logged overrun), so the RESOLVED event is always reached.
 * The overrun is bounded by the changes between the frontier and the next
 * resolved ts, i.e. the unresolved working set, which no budget can refuse
 * without losing liveness (short of a rewind: drop and resubscribe).
 *
 * Graceful stop. Reading stops; rows <= the frontier are released and
 * delivered; a final watermark and checkpoint are written regardless of the
 * interval; then the thread returns (bounded by kafka_timeout_ms).
 */
#include "pipeline.h"
#include "util/err.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "feed_event.h"
#include "frontier.h"
#include "row_dedup.h"
#include "util/clock.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/mem.h"

#define PUBLISH_INTERVAL_MS 20
#define IDLE_WAIT_MS 2
#define IDLE_LONG_WAIT_MS 20
#define BLOCKED_WAIT_MS 5
#define EVENTS_PER_STEP 64
#define OVERRUN_LOG_INTERVAL_MS 10000
#define HELD_LOG_INTERVAL_MS 60000
#define DEDUP_LOG_INTERVAL_MS 10000
#define DEDUP_MEMORY_MIN ((size_t)1024 * 1024)

typedef enum { BATCH_ROWS, BATCH_WATERMARK, BATCH_CHECKPOINT } batch_kind_t;

typedef struct batch_s {
    struct batch_s *next;
    batch_kind_t kind;
    uint64_t ts;
    uint64_t outstanding;
    bool sealed;
} batch_t;

struct tkc_pipeline_s {
    /* configuration (copies) */
    tkc_pipeline_config_t cfg;
    char *feed_id, *prefix, *checkpoint_path, *spill_dir, *bootstrap;
    size_t n_spans;
    char **span_names;
    tkc_keyrange_t *span_ranges;
    tkc_pipeline_span_t *spans;
    tkc_kafka_prop_t *props;
    size_t n_props;
    char **row_topics;
    char *wm_topic, *ck_topic;
    bool eos;

    tkc_msgq_t *q;
    tkc_sorter_t *sorter;
    tkc_row_dedup_t *dedup; /* re-sent copies, dropped at release */
    tkc_frontier_t *frontier;
    tkc_kafka_sink_t *sink;
    tkc_hashmap_t *topic_index; /* topic name -> index + 1 into topic_stats */
    tkc_pipeline_topic_stats_t *topic_stats;
    size_t n_topics;
    const char *last_topic; /* topic_idx() cache: the last name looked up, */
    size_t last_topic_idx;  /* by address (row topics and sink names are stable) */

    /* progress */
    uint64_t start_ts, target_ts, sealed_ts, acked_ts, watermark_ts, checkpoint_ts, epoch;
    batch_t *open;
    batch_t *sealed_head, *sealed_tail;
    tkc_feed_event_t *pending_ev; /* ROWS event partly handed to the sorter */
    tkc_row_t *pending_row;       /* released, encoded, not yet taken by the sink */
    uint8_t *pending_val;
    size_t pending_len;

    struct {
        bool active;
        bool produced; /* every copy handed to the sink */
        uint64_t ts;
        size_t next;   /* next target: 0 = watermark topic, then row partitions */
        uint8_t *val;
        size_t len;
        batch_t *batch;
    } wm;
    struct {
        bool active;
        uint64_t ts;
        batch_t *batch;
    } ck;
    batch_t *retired; /* watermark/checkpoint batches that must outlive the sink */
    int64_t last_wm_ms;

    bool meta_refused; /* a watermark/checkpoint message was refused: stop trying */
    int64_t held_log_ms;

    /* state */
    tkc_pipeline_state_t state;
    tkc_err_t err;
    char error[512];
    atomic_bool stop_req;
    int64_t stop_deadline;
    bool paused;
    int64_t last_overrun_log;
    int64_t last_dup_log, last_conflict_log;
    uint64_t dups_logged, overflows_logged;

    /* counters */
    uint64_t events_in, rows_in, rows_released, rows_delivered, late_rows, duplicates_dropped;
    uint64_t watermarks, checkpoints, txns, pauses;

    /* published snapshot */
    pthread_mutex_t mu;
    tkc_pipeline_metrics_t pub;
    int64_t last_pub;
    pthread_t thread;
    bool thread_started;
};

const char *tkc_pipeline_state_name(tkc_pipeline_state_t s)
{
    static const char *const names[] = {"new", "running", "stopping", "held", "failed", "stopped"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

void tkc_pipeline_config_defaults(tkc_pipeline_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->partitions = -1;
    cfg->replication = -1;
    cfg->watermark_all_partitions = true;
    cfg->watermark_interval_ms = 1000;
    cfg->checkpoint_store = TKC_CHECKPOINT_STORE_KAFKA;
    cfg->delivery = TKC_DELIVERY_AT_LEAST_ONCE;
    cfg->memory_quota = TKC_SORTER_MEMORY_QUOTA_DEFAULT;
    cfg->disk_budget = TKC_SORTER_DISK_BUDGET_DEFAULT;
    cfg->max_inflight_bytes = (size_t)64 * 1024 * 1024;
    cfg->kafka_timeout_ms = 30000;
    cfg->max_rows_per_step = 4096;
}

/* ===== helpers ===== */

static bool topic_chars_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static char *join_topic(const char *prefix, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(suffix) + 2;
    char *t = tkc_malloc(n);
    snprintf(t, n, "%s.%s", prefix, suffix);
    return t;
}

static batch_t *batch_new(batch_kind_t kind)
{
    batch_t *b = tkc_calloc(1, sizeof(*b));
    b->kind = kind;
    return b;
}

/*
 * A batch no step needs any more. It is freed once every message in it was
 * reported delivered (outstanding == 0: no report can arrive for it after
 * that); a batch with a failed message is kept until the end, which is
 * bounded because a failure holds or stops the pipeline.
 */
static void retire(tkc_pipeline_t *pl, batch_t *b)
{
    if (b->outstanding == 0) {
        tkc_free(b);
        return;
    }
    b->next = pl->retired;
    pl->retired = b;
}

static void sweep_retired(tkc_pipeline_t *pl)
{
    batch_t **pp = &pl->retired;
    while (*pp) {
        batch_t *b = *pp;
        if (b->outstanding == 0) {
            *pp = b->next;
            tkc_free(b);
        } else {
            pp = &b->next;
        }
    }
}

static size_t topic_idx(tkc_pipeline_t *pl, const char *topic)
{
    /* called twice per row (produce, report): skip the hash of the name
     * while the same string comes again */
    if (topic == pl->last_topic)
        return pl->last_topic_idx;
    void *v = tkc_hashmap_get(pl->topic_index, topic, strlen(topic));
    size_t idx = v ? (size_t)(uintptr_t)v - 1 : SIZE_MAX;
    pl->last_topic = topic;
    pl->last_topic_idx = idx;
    return idx;
}

/* Enters FAILED (sticky; the first reason wins). */
static void fail(tkc_pipeline_t *pl, tkc_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(tkc_pipeline_t *pl, tkc_err_t err, const char *fmt, ...)
{
    if (pl->state == TKC_PIPELINE_FAILED)
        return;
    if (pl->err == TKC_ERR_OK || pl->state != TKC_PIPELINE_HELD) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pl->error, sizeof(pl->error), fmt, ap);
        va_end(ap);
        pl->err = err;
    }
    pl->state = TKC_PIPELINE_FAILED;
    tkc_log(TKC_LOG_ERROR, "pipeline",
            "event=failed feed=%s err=%s checkpoint_ts=%" PRIu64 " reason=\"%s\"", pl->feed_id,
            tkc_err2name(pl->err), pl->checkpoint_ts, pl->error);
}

/* Enters HELD: the watermark cannot pass what failed; nothing more is released. */
static void hold(tkc_pipeline_t *pl, tkc_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void hold(tkc_pipeline_t *pl, tkc_err_t err, const char *fmt, ...)
{
    if (pl->state == TKC_PIPELINE_FAILED || pl->state == TKC_PIPELINE_HELD)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pl->error, sizeof(pl->error), fmt, ap);
    va_end(ap);
    pl->err = err;
    pl->state = TKC_PIPELINE_HELD;
    pl->held_log_ms = tkc_clock_mono_ms();
    tkc_log(TKC_LOG_ERROR, "pipeline",
            "event=held feed=%s err=%s acked_ts=%" PRIu64 " checkpoint_ts=%" PRIu64
            " reason=\"%s\" action=\"watermark and checkpoint stay below this message; fix the "
            "cause and restart: it is replayed from the checkpoint, never skipped\"",
            pl->feed_id, tkc_err2name(err), pl->acked_ts, pl->checkpoint_ts, pl->error);
}

/* The producer hit a fatal error: say what it means for the operator. */
static void fail_fatal(tkc_pipeline_t *pl, const char *reason)
{
    fail(pl, TKC_ERR_KAFKA_FATAL, "Kafka producer failed: %s%s", reason,
         strstr(reason, "FENCED") || strstr(reason, "fenced")
             ? " (fenced: a newer instance of this feed took over; this one stops)"
             : "");
}

/* A message could not be delivered: hold (at-least-once) or fail (exactly-once). */
static void undeliverable(tkc_pipeline_t *pl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void undeliverable(tkc_pipeline_t *pl, const char *fmt, ...)
{
    char msg[400];
    char fatal[512];
    if (pl->sink && tkc_kafka_sink_fatal(pl->sink, fatal, sizeof(fatal)) != TKC_ERR_OK) {
        /* the failed delivery is a consequence; report the cause */
        fail_fatal(pl, fatal);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (pl->eos)
        fail(pl, TKC_ERR_KAFKA_FATAL, "%s; transaction aborted", msg);
    else
        hold(pl, TKC_ERR_REJECTED, "%s", msg);
}

static bool releasing(const tkc_pipeline_t *pl)
{
    return pl->state == TKC_PIPELINE_RUNNING || pl->state == TKC_PIPELINE_STOPPING;
}

/* ===== delivery accounting ===== */

static void advance_acked(tkc_pipeline_t *pl)
{
    while (pl->sealed_head && pl->sealed_head->outstanding == 0) {
        batch_t *b = pl->sealed_head;
        pl->acked_ts = b->ts;
        pl->sealed_head = b->next;
        if (!pl->sealed_head)
            pl->sealed_tail = NULL;
        tkc_free(b);
    }
}

static void seal(tkc_pipeline_t *pl)
{
    batch_t *b = pl->open;
    b->ts = pl->target_ts;
    b->sealed = true;
    b->next = NULL;
    if (pl->sealed_tail)
        pl->sealed_tail->next = b;
    else
        pl->sealed_head = b;
    pl->sealed_tail = b;
    pl->open = batch_new(BATCH_ROWS);
    pl->sealed_ts = pl->target_ts;
    advance_acked(pl);
}

static void on_report(void *opaque, void *msg_opaque, const tkc_kafka_sink_report_t *r)
{
    tkc_pipeline_t *pl = opaque;
    batch_t *b = msg_opaque;
    size_t ti = topic_idx(pl, r->topic);
    if (r->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        b->outstanding--;
        if (b->kind == BATCH_ROWS) {
            pl->rows_delivered++;
            if (ti != SIZE_MAX)
                pl->topic_stats[ti].rows_delivered++;
            if (b->sealed && b == pl->sealed_head)
                advance_acked(pl);
        }
        return;
    }
    if (pl->state == TKC_PIPELINE_NEW) {
        /* the start checkpoint of tkc_pipeline_open(), which reports it */
        if (pl->err == TKC_ERR_OK) {
            pl->err = TKC_ERR_REJECTED;
            snprintf(pl->error, sizeof(pl->error), "Kafka rejected it: %s: %s",
                     rd_kafka_err2name(r->err), r->errstr ? r->errstr : "");
        }
        return;
    }
    undeliverable(pl,
                  "Kafka rejected a %s message to %s [%" PRId32 "] (%zu bytes): %s: %s",
                  b->kind == BATCH_ROWS ? "row" : b->kind == BATCH_WATERMARK ? "watermark"
                                                                             : "checkpoint",
                  r->topic, r->partition, r->bytes, rd_kafka_err2name(r->err),
                  r->errstr ? r->errstr : "");
}

/* ===== transactions ===== */

static bool txn_ensure(tkc_pipeline_t *pl)
{
    if (!pl->eos || tkc_kafka_sink_txn_open(pl->sink))
        return true;
    char e[512];
    tkc_err_t err = tkc_kafka_sink_txn_begin(pl->sink, e, sizeof(e));
    if (err != TKC_ERR_OK) {
        fail(pl, err == TKC_ERR_KAFKA_FATAL ? TKC_ERR_KAFKA_FATAL : TKC_ERR_IO,
             "cannot begin a transaction: %s", e);
        return false;
    }
    return true;
}

static void txn_abort_quietly(tkc_pipeline_t *pl)
{
    if (!pl->eos || !pl->sink || !tkc_kafka_sink_txn_open(pl->sink))
        return;
    char e[512];
    if (tkc_kafka_sink_txn_abort(pl->sink, e, sizeof(e)) != TKC_ERR_OK)
        tkc_log(TKC_LOG_WARN, "pipeline", "event=txn_abort_failed reason=\"%s\"", e);
    else
        tkc_log(TKC_LOG_WARN, "pipeline", "event=txn_aborted feed=%s", pl->feed_id);
}

/* ===== produce ===== */

/* A message the sink took: one more report owed to @p batch. */
static void count_produced(tkc_pipeline_t *pl, const char *topic, batch_t *batch, size_t bytes)
{
    batch->outstanding++;
    size_t ti = topic_idx(pl, topic);
    if (ti != SIZE_MAX) {
        if (batch->kind == BATCH_ROWS)
            pl->topic_stats[ti].rows_produced++;
        pl->topic_stats[ti].messages_produced++;
        pl->topic_stats[ti].bytes_produced += bytes;
    }
}

/* @returns OK, QUEUE_FULL (kept by the caller) or another error (handled here). */
static tkc_err_t produce(tkc_pipeline_t *pl, const char *topic, int32_t partition,
                         const void *key, size_t key_len, uint8_t *val, size_t len,
                         batch_t *batch)
{
    if (!txn_ensure(pl))
        return TKC_ERR_STOPPED;
    char e[512];
    tkc_err_t err = tkc_kafka_sink_produce(pl->sink, topic, partition, key, key_len, val, len,
                                           batch, e, sizeof(e));
    if (err == TKC_ERR_OK) {
        count_produced(pl, topic, batch, key_len + len);
        return TKC_ERR_OK;
    }
    if (err == TKC_ERR_QUEUE_FULL)
        return err;
    if (err == TKC_ERR_KAFKA_FATAL)
        fail_fatal(pl, e);
    else
        undeliverable(pl, "a message to %s cannot be produced: %s", topic, e);
    return err;
}

/* ===== input ===== */

static bool should_wait_for_room(tkc_pipeline_t *pl)
{
    if (pl->state != TKC_PIPELINE_RUNNING)
        return true;
    /* rows <= the frontier leave the sorter without any further input */
    return tkc_sorter_min_commit_ts(pl->sorter) <= tkc_frontier_min(pl->frontier);
}

/* Hands the event's rows to the sorter. @returns false when it must wait. */
static bool feed_rows(tkc_pipeline_t *pl, tkc_feed_event_t *ev)
{
    while (ev->rows) {
        tkc_row_t *row = ev->rows;
        tkc_row_t *next = row->next;
        if (row->span_index >= pl->n_spans) {
            fail(pl, TKC_ERR_INVALID_ARG, "feed sent a row of unknown span %" PRIu32,
                 row->span_index);
            return false;
        }
        char e[512];
        tkc_err_t err = tkc_sorter_add(pl->sorter, row, false, e, sizeof(e));
        if (err == TKC_ERR_QUEUE_FULL) {
            if (should_wait_for_room(pl))
                return false;
            int64_t now = tkc_clock_mono_ms();
            if (now - pl->last_overrun_log >= OVERRUN_LOG_INTERVAL_MS) {
                pl->last_overrun_log = now;
                tkc_log(TKC_LOG_WARN, "pipeline",
                        "event=sorter_budget_overrun feed=%s resolved_ts=%" PRIu64
                        " min_commit_ts=%" PRIu64
                        " reason=\"memory quota and disk budget are spent and no buffered row is "
                        "resolved yet: reading on past the budget, because only a resolved ts "
                        "still in the feed queue can release rows\"",
                        pl->feed_id, tkc_frontier_min(pl->frontier),
                        tkc_sorter_min_commit_ts(pl->sorter));
            }
            err = tkc_sorter_add(pl->sorter, row, true, e, sizeof(e));
        }
        if (err != TKC_ERR_OK) {
            /* the row stays in the event; freed with it */
            fail(pl, err, "sorter: %s", e);
            return false;
        }
        if (row->commit_ts <= pl->sealed_ts) {
            pl->late_rows++;
            tkc_log(TKC_LOG_WARN, "pipeline",
                    "event=late_row feed=%s commit_ts=%" PRIu64 " released_ts=%" PRIu64
                    " region_id=%" PRIu64,
                    pl->feed_id, row->commit_ts, pl->sealed_ts, row->region_id);
        }
        pl->rows_in++;
        ev->rows = next;
        ev->n_rows--;
        if (!next)
            ev->rows_tail = NULL;
    }
    return true;
}

static void on_resolved(tkc_pipeline_t *pl, const tkc_feed_event_t *ev)
{
    for (size_t i = 0; i < ev->n_regions; i++) {
        const tkc_feed_region_range_t *r = &ev->regions[i];
        tkc_err_t err = tkc_frontier_forward(pl->frontier, ev->span_index, r->region_id,
                                             r->start, r->start_len, r->end, r->end_len, ev->ts);
        if (err != TKC_ERR_OK)
            tkc_log(TKC_LOG_DEBUG, "pipeline",
                    "event=resolved_ignored span=%" PRIu32 " region_id=%" PRIu64 " ts=%" PRIu64,
                    ev->span_index, r->region_id, ev->ts);
    }
}

static void begin_stop(tkc_pipeline_t *pl, const char *why)
{
    if (pl->state == TKC_PIPELINE_RUNNING) {
        pl->state = TKC_PIPELINE_STOPPING;
        pl->stop_deadline = tkc_clock_mono_ms() + pl->cfg.kafka_timeout_ms;
        tkc_log(TKC_LOG_INFO, "pipeline",
                "event=stopping feed=%s reason=%s resolved_ts=%" PRIu64 " checkpoint_ts=%" PRIu64,
                pl->feed_id, why, tkc_frontier_min(pl->frontier), pl->checkpoint_ts);
    }
}

/* @returns true if anything was read. */
static bool input_step(tkc_pipeline_t *pl, int wait_ms)
{
    bool any = false;
    for (int i = 0; i < EVENTS_PER_STEP && pl->state == TKC_PIPELINE_RUNNING; i++) {
        if (pl->pending_ev) {
            if (!feed_rows(pl, pl->pending_ev)) {
                if (!pl->paused && pl->state == TKC_PIPELINE_RUNNING) {
                    pl->paused = true;
                    pl->pauses++;
                    tkc_log(TKC_LOG_DEBUG, "pipeline", "event=paused feed=%s", pl->feed_id);
                }
                return any;
            }
            tkc_feed_event_destroy(pl->pending_ev);
            pl->pending_ev = NULL;
            pl->paused = false;
        }
        tkc_feed_event_t *ev = tkc_msgq_pop(pl->q, i == 0 ? wait_ms : 0, NULL);
        if (!ev)
            break;
        any = true;
        pl->events_in++;
        switch (ev->kind) {
        case TKC_FEED_EVENT_ROWS:
            pl->pending_ev = ev; /* handled at the top of the next turn */
            break;
        case TKC_FEED_EVENT_RESOLVED:
            on_resolved(pl, ev);
            tkc_feed_event_destroy(ev);
            break;
        case TKC_FEED_EVENT_ERROR:
        default:
            if (pl->err == TKC_ERR_OK) {
                pl->err = ev->kind == TKC_FEED_EVENT_ERROR && ev->err ? ev->err : TKC_ERR_STOPPED;
                snprintf(pl->error, sizeof(pl->error), "feed stopped: %.480s", ev->message);
            }
            tkc_feed_event_destroy(ev);
            begin_stop(pl, "feed_error");
            return true;
        }
    }
    return any;
}

/* ===== release ===== */

static void advance_target(tkc_pipeline_t *pl)
{
    if (pl->target_ts != pl->sealed_ts || pl->pending_row)
        return; /* the current target is not done yet */
    uint64_t r = tkc_frontier_min(pl->frontier);
    if (r > pl->target_ts)
        pl->target_ts = r;
}

/* The first drop at once, then a count at most every DEDUP_LOG_INTERVAL_MS. */
static void dups_log(tkc_pipeline_t *pl, int64_t now, bool force)
{
    if (pl->duplicates_dropped == pl->dups_logged)
        return;
    if (!force && pl->last_dup_log && now - pl->last_dup_log < DEDUP_LOG_INTERVAL_MS)
        return;
    tkc_log(TKC_LOG_INFO, "pipeline",
            "event=duplicates_dropped feed=%s new=%" PRIu64 " total=%" PRIu64
            " reason=\"changes re-sent after a re-subscription met their first copy before "
            "release: only the first copy of each (key, commit_ts) is produced\"",
            pl->feed_id, pl->duplicates_dropped - pl->dups_logged, pl->duplicates_dropped);
    pl->last_dup_log = now;
    pl->dups_logged = pl->duplicates_dropped;
}

/*
 * Re-sent copies. A re-subscribed region makes TiKV re-send every change
 * above the range's resolved ts, so changes still waiting in the sorter can
 * arrive twice; both copies are then in the same commit_ts group at release
 * (row_dedup.h explains why nothing already released can come back). The
 * later copy is dropped here, in both delivery modes: in exactly-once mode
 * it would be a duplicate a read_committed consumer sees, in at-least-once
 * mode it is merely noise. Ties keep arrival order, so the copy kept is the
 * one that arrived first; copies are one change (TiKV writes one version of
 * a key per commit_ts), and if they differ anyway the first is still kept,
 * after a warning.
 * @returns true if @p row was a copy (then it is freed).
 */
static bool drop_copy(tkc_pipeline_t *pl, tkc_row_t *row)
{
    tkc_row_dedup_verdict_t v = tkc_row_dedup_check(pl->dedup, row);
    int64_t now;
    switch (v) {
    case TKC_ROW_DEDUP_NEW:
        return false;
    case TKC_ROW_DEDUP_UNTRACKED: {
        tkc_row_dedup_stats_t st;
        tkc_row_dedup_stats(pl->dedup, &st);
        if (st.groups_overflowed > pl->overflows_logged) {
            pl->overflows_logged = st.groups_overflowed;
            tkc_log(TKC_LOG_WARN, "pipeline",
                    "event=dedup_group_overflow feed=%s commit_ts=%" PRIu64
                    " limit_bytes=%zu reason=\"this transaction has more rows than the "
                    "duplicate filter remembers: its further rows are produced unchecked, so a "
                    "copy re-sent by a re-subscription could be delivered twice\"",
                    pl->feed_id, row->commit_ts, st.memory_limit);
        }
        return false;
    }
    case TKC_ROW_DEDUP_CONFLICT:
        now = tkc_clock_mono_ms();
        if (!pl->last_conflict_log || now - pl->last_conflict_log >= DEDUP_LOG_INTERVAL_MS) {
            tkc_row_dedup_stats_t st;
            tkc_row_dedup_stats(pl->dedup, &st);
            pl->last_conflict_log = now;
            tkc_log(TKC_LOG_WARN, "pipeline",
                    "event=duplicate_differs feed=%s commit_ts=%" PRIu64 " start_ts=%" PRIu64
                    " region_id=%" PRIu64 " key_len=%zu conflicts=%" PRIu64
                    " action=\"kept the copy that arrived first, dropped this one\"",
                    pl->feed_id, row->commit_ts, row->start_ts, row->region_id, row->key_len,
                    st.conflicts);
        }
        break;
    case TKC_ROW_DEDUP_DUPLICATE:
    default:
        break;
    }
    pl->duplicates_dropped++;
    tkc_log(TKC_LOG_DEBUG, "pipeline",
            "event=duplicate_dropped feed=%s commit_ts=%" PRIu64 " region_id=%" PRIu64
            " key_len=%zu",
            pl->feed_id, row->commit_ts, row->region_id, row->key_len);
    dups_log(pl, tkc_clock_mono_ms(), false);
    tkc_row_destroy(row);
    return true;
}

/* @returns true if it produced anything. */
static bool release_step(tkc_pipeline_t *pl)
{
    if (!releasing(pl))
        return false;
    bool any = false;
    char e[512];
    for (int n = 0; n < pl->cfg.max_rows_per_step && releasing(pl); n++) {
        if (!pl->pending_row) {
            tkc_row_t *row = NULL;
            tkc_err_t err = tkc_sorter_next(pl->sorter, pl->target_ts, &row, e, sizeof(e));
            if (err != TKC_ERR_OK) {
                fail(pl, err, "sorter: %s", e);
                return any;
            }
            if (!row) {
                if (pl->target_ts > pl->sealed_ts)
                    seal(pl);
                return any;
            }
            if (drop_copy(pl, row)) {
                any = true;
                continue;
            }
            const tkc_pipeline_span_t *sp = &pl->spans[row->span_index];
            uint8_t *val = NULL;
            size_t len = 0;
            err = pl->cfg.codec.encode_row(pl->cfg.codec.opaque, pl->row_topics[row->span_index],
                                           sp->name, row, &val, &len, e, sizeof(e));
            if (err != TKC_ERR_OK) {
                undeliverable(pl, "row of %s (commit_ts %" PRIu64 ") cannot be encoded: %s",
                              pl->row_topics[row->span_index], row->commit_ts, e);
                tkc_free(val);
                tkc_row_destroy(row);
                return any;
            }
            pl->pending_row = row;
            pl->pending_val = val;
            pl->pending_len = len;
        }
        tkc_row_t *row = pl->pending_row;
        tkc_err_t err = produce(pl, pl->row_topics[row->span_index], -1, row->key, row->key_len,
                                pl->pending_val, pl->pending_len, pl->open);
        if (err == TKC_ERR_QUEUE_FULL)
            return any;
        if (err != TKC_ERR_OK)
            tkc_free(pl->pending_val); /* not taken; the pipeline is held or failed */
        pl->pending_row = NULL;
        pl->pending_val = NULL;
        tkc_row_destroy(row);
        if (err != TKC_ERR_OK)
            return any;
        pl->rows_released++;
        any = true;
    }
    return any;
}

/* ===== watermarks and checkpoints ===== */

static size_t wm_targets(const tkc_pipeline_t *pl)
{
    size_t n = 1;
    if (pl->cfg.watermark_all_partitions)
        for (size_t i = 0; i < pl->n_spans; i++)
            n += (size_t)tkc_kafka_sink_partitions(pl->sink, pl->row_topics[i]);
    return n;
}

/* Target i: 0 = the watermark topic (by key), then every row topic partition. */
static void wm_target(const tkc_pipeline_t *pl, size_t i, const char **topic, int32_t *part)
{
    if (i == 0) {
        *topic = pl->wm_topic;
        *part = -1;
        return;
    }
    i--;
    for (size_t s = 0; s < pl->n_spans; s++) {
        size_t np = (size_t)tkc_kafka_sink_partitions(pl->sink, pl->row_topics[s]);
        if (i < np) {
            *topic = pl->row_topics[s];
            *part = (int32_t)i;
            return;
        }
        i -= np;
    }
    *topic = NULL;
    *part = -1;
}

static bool wm_start(tkc_pipeline_t *pl, uint64_t ts)
{
    char e[512];
    uint8_t *val = NULL;
    size_t len = 0;
    tkc_err_t err = pl->cfg.codec.encode_watermark(pl->cfg.codec.opaque, pl->wm_topic, pl->feed_id,
                                                   ts, tkc_clock_wall_ms(), &val, &len, e,
                                                   sizeof(e));
    if (err != TKC_ERR_OK) {
        tkc_free(val);
        undeliverable(pl, "watermark %" PRIu64 " cannot be encoded: %s", ts, e);
        return false;
    }
    pl->wm.active = true;
    pl->wm.produced = false;
    pl->wm.ts = ts;
    pl->wm.next = 0;
    pl->wm.val = val;
    pl->wm.len = len;
    pl->wm.batch = batch_new(BATCH_WATERMARK);
    pl->wm.batch->ts = ts;
    return true;
}

/* Produces the remaining watermark copies. @returns true once all are in the sink. */
static bool wm_produce(tkc_pipeline_t *pl)
{
    size_t n = wm_targets(pl);
    while (pl->wm.next < n) {
        const char *topic;
        int32_t part;
        wm_target(pl, pl->wm.next, &topic, &part);
        uint8_t *copy = tkc_memdup(pl->wm.val, pl->wm.len);
        tkc_err_t err = produce(pl, topic, part, pl->feed_id, strlen(pl->feed_id), copy,
                                pl->wm.len, pl->wm.batch);
        if (err != TKC_ERR_OK) {
            tkc_free(copy);
            if (err != TKC_ERR_QUEUE_FULL)
                pl->meta_refused = true;
            return false;
        }
        pl->wm.next++;
    }
    if (!pl->wm.produced) {
        pl->wm.produced = true;
        tkc_free(pl->wm.val);
        pl->wm.val = NULL;
    }
    return true;
}

static void wm_done(tkc_pipeline_t *pl)
{
    pl->watermark_ts = pl->wm.ts;
    pl->watermarks++;
    pl->last_wm_ms = tkc_clock_mono_ms();
    retire(pl, pl->wm.batch);
    pl->wm.batch = NULL;
    pl->wm.active = false;
    tkc_log(TKC_LOG_DEBUG, "pipeline", "event=watermark feed=%s ts=%" PRIu64, pl->feed_id,
            pl->watermark_ts);
}

static bool interval_passed(const tkc_pipeline_t *pl, int64_t now)
{
    return pl->state == TKC_PIPELINE_STOPPING ||
           now - pl->last_wm_ms >= pl->cfg.watermark_interval_ms;
}

/* at-least-once: Watermark(acked_ts) once every row <= it is acknowledged */
static void watermark_step(tkc_pipeline_t *pl, int64_t now)
{
    if (pl->eos || pl->state == TKC_PIPELINE_FAILED || pl->meta_refused)
        return;
    if (!pl->wm.active) {
        /* HELD still lets batches before the failed message through */
        if (pl->acked_ts <= pl->watermark_ts || !interval_passed(pl, now))
            return;
        if (!wm_start(pl, pl->acked_ts))
            return;
    }
    if (!pl->wm.produced && !wm_produce(pl))
        return;
    if (pl->wm.batch->outstanding == 0)
        wm_done(pl);
}

static void checkpoint_committed(tkc_pipeline_t *pl, uint64_t ts)
{
    pl->checkpoint_ts = ts;
    pl->checkpoints++;
    tkc_log(TKC_LOG_DEBUG, "pipeline", "event=checkpoint feed=%s ts=%" PRIu64, pl->feed_id, ts);
}

static tkc_err_t encode_checkpoint(tkc_pipeline_t *pl, uint64_t ts, uint8_t **val, size_t *len)
{
    char e[512];
    tkc_err_t err = pl->cfg.codec.encode_checkpoint(pl->cfg.codec.opaque, pl->ck_topic,
                                                    pl->feed_id, ts, tkc_clock_wall_ms(),
                                                    pl->epoch, val, len, e, sizeof(e));
    if (err != TKC_ERR_OK) {
        tkc_free(*val);
        *val = NULL;
        fail(pl, err, "checkpoint %" PRIu64 " cannot be encoded: %s", ts, e);
    }
    return err;
}

/* at-least-once: checkpoint R after Watermark(R) is acknowledged */
static void checkpoint_step(tkc_pipeline_t *pl)
{
    if (pl->eos || pl->state == TKC_PIPELINE_FAILED || pl->meta_refused)
        return;
    if (pl->ck.active) {
        if (pl->ck.batch->outstanding == 0) {
            checkpoint_committed(pl, pl->ck.ts);
            retire(pl, pl->ck.batch);
            pl->ck.batch = NULL;
            pl->ck.active = false;
        }
        return;
    }
    if (pl->watermark_ts <= pl->checkpoint_ts)
        return;
    uint64_t ts = pl->watermark_ts;
    if (pl->cfg.checkpoint_store == TKC_CHECKPOINT_STORE_FILE) {
        tkc_checkpoint_t cp = {
            .ts = ts, .epoch = pl->epoch, .committed_at_ms = tkc_clock_wall_ms()};
        char e[512];
        tkc_err_t err = tkc_checkpoint_file_write(pl->checkpoint_path, pl->feed_id, &cp, e,
                                                  sizeof(e));
        if (err != TKC_ERR_OK) {
            fail(pl, err, "cannot write the checkpoint: %s", e);
            return;
        }
        checkpoint_committed(pl, ts);
        return;
    }
    uint8_t *val = NULL;
    size_t len = 0;
    if (encode_checkpoint(pl, ts, &val, &len) != TKC_ERR_OK)
        return;
    batch_t *b = batch_new(BATCH_CHECKPOINT);
    b->ts = ts;
    tkc_err_t err = produce(pl, pl->ck_topic, -1, pl->feed_id, strlen(pl->feed_id), val, len, b);
    if (err != TKC_ERR_OK) {
        tkc_free(val);
        tkc_free(b); /* nothing references it */
        if (err != TKC_ERR_QUEUE_FULL)
            pl->meta_refused = true;
        return; /* QUEUE_FULL: again next turn */
    }
    pl->ck.active = true;
    pl->ck.ts = ts;
    pl->ck.batch = b;
}

/*
 * exactly-once: at a seal, after the interval, put Watermark(T) and
 * checkpoint T into the open transaction and commit it.
 */
static void commit_step(tkc_pipeline_t *pl, int64_t now)
{
    if (!pl->eos || !releasing(pl))
        return;
    if (pl->sealed_ts <= pl->checkpoint_ts || pl->target_ts != pl->sealed_ts || pl->pending_row)
        return;
    if (!interval_passed(pl, now))
        return;
    uint64_t ts = pl->sealed_ts;
    int64_t deadline = now + pl->cfg.kafka_timeout_ms;
    char e[512];

    if (!wm_start(pl, ts))
        return;
    while (!wm_produce(pl)) {
        if (!releasing(pl))
            return;
        if (tkc_clock_mono_ms() > deadline) {
            fail(pl, TKC_ERR_TIMED_OUT, "watermark %" PRIu64 " could not be queued in time", ts);
            return;
        }
        tkc_kafka_sink_poll(pl->sink, BLOCKED_WAIT_MS);
    }
    uint8_t *val = NULL;
    size_t len = 0;
    if (encode_checkpoint(pl, ts, &val, &len) != TKC_ERR_OK)
        return;
    batch_t *cb = batch_new(BATCH_CHECKPOINT);
    cb->ts = ts;
    for (;;) {
        tkc_err_t err = produce(pl, pl->ck_topic, -1, pl->feed_id, strlen(pl->feed_id), val, len,
                                cb);
        if (err == TKC_ERR_OK)
            break;
        if (err != TKC_ERR_QUEUE_FULL || tkc_clock_mono_ms() > deadline) {
            tkc_free(val);
            tkc_free(cb); /* nothing references it */
            if (err == TKC_ERR_QUEUE_FULL)
                fail(pl, TKC_ERR_TIMED_OUT, "checkpoint %" PRIu64 " could not be queued", ts);
            return;
        }
        tkc_kafka_sink_poll(pl->sink, BLOCKED_WAIT_MS);
    }
    /* from here on reports may reference it: freed when they are all in */
    retire(pl, cb);
    for (;;) {
        tkc_err_t err = tkc_kafka_sink_txn_commit(pl->sink, e, sizeof(e));
        if (!releasing(pl))
            return; /* a delivery report failed it meanwhile */
        if (err == TKC_ERR_OK)
            break;
        if (err == TKC_ERR_TIMED_OUT && tkc_clock_mono_ms() < deadline)
            continue;
        if (err == TKC_ERR_KAFKA_FATAL)
            fail_fatal(pl, e);
        else
            fail(pl, err == TKC_ERR_TIMED_OUT ? TKC_ERR_TIMED_OUT : TKC_ERR_IO,
                 "transaction commit failed: %s", e);
        return;
    }
    /* everything in the transaction is in Kafka now */
    tkc_kafka_sink_poll(pl->sink, 0);
    pl->acked_ts = ts;
    while (pl->sealed_head) {
        batch_t *b = pl->sealed_head;
        pl->sealed_head = b->next;
        if (b->outstanding == 0)
            tkc_free(b);
        else
            retire(pl, b); /* reports may still trickle in */
    }
    pl->sealed_tail = NULL;
    wm_done(pl);
    checkpoint_committed(pl, ts);
    pl->txns++;
}

/* ===== metrics ===== */

static void publish(tkc_pipeline_t *pl, bool force)
{
    int64_t now = tkc_clock_mono_ms();
    if (!force && now - pl->last_pub < PUBLISH_INTERVAL_MS)
        return;
    pl->last_pub = now;
    pthread_mutex_lock(&pl->mu);
    tkc_pipeline_metrics_t *m = &pl->pub;
    m->state = pl->state;
    m->err = pl->err;
    snprintf(m->error, sizeof(m->error), "%s", pl->error);
    m->start_ts = pl->start_ts;
    m->resolved_ts = pl->frontier ? tkc_frontier_min(pl->frontier) : 0;
    m->released_ts = pl->sealed_ts;
    m->acked_ts = pl->acked_ts;
    m->watermark_ts = pl->watermark_ts;
    m->checkpoint_ts = pl->checkpoint_ts;
    m->epoch = pl->epoch;
    m->events_in = pl->events_in;
    m->rows_in = pl->rows_in;
    m->rows_released = pl->rows_released;
    m->rows_delivered = pl->rows_delivered;
    m->late_rows = pl->late_rows;
    m->duplicates_dropped = pl->duplicates_dropped;
    m->watermarks = pl->watermarks;
    m->checkpoints = pl->checkpoints;
    m->txns_committed = pl->txns;
    m->paused = pl->paused;
    m->pauses = pl->pauses;
    m->n_topics = pl->n_topics;
    memcpy(m->topics, pl->topic_stats, pl->n_topics * sizeof(*m->topics));
    if (pl->sink)
        tkc_kafka_sink_stats(pl->sink, &m->sink);
    if (pl->sorter)
        tkc_sorter_stats(pl->sorter, &m->sorter);
    pthread_mutex_unlock(&pl->mu);
}

void tkc_pipeline_metrics(tkc_pipeline_t *pl, tkc_pipeline_metrics_t *out)
{
    pthread_mutex_lock(&pl->mu);
    *out = pl->pub;
    out->topics = tkc_malloc((pl->n_topics ? pl->n_topics : 1) * sizeof(*out->topics));
    memcpy(out->topics, pl->pub.topics, pl->n_topics * sizeof(*out->topics));
    pthread_mutex_unlock(&pl->mu);
}

void tkc_pipeline_metrics_free(tkc_pipeline_metrics_t *m)
{
    if (!m)
        return;
    tkc_free(m->topics);
    m->topics = NULL;
    m->n_topics = 0;
}

/* ===== construction ===== */

tkc_pipeline_t *tkc_pipeline_new(const tkc_pipeline_config_t *cfg, tkc_msgq_t *q, char *errstr,
                                 size_t errstr_size)
{
    const tkc_pipeline_codec_t *c = &cfg->codec;
    if (!tkc_checkpoint_feed_id_valid(cfg->feed_id)) {
        tkc_err_set(errstr, errstr_size, "feed id must be 1-200 characters of [A-Za-z0-9._-]");
        return NULL;
    }
    if (!topic_chars_ok(cfg->topic_prefix) || strlen(cfg->topic_prefix) > 200) {
        tkc_err_set(errstr, errstr_size, "topic prefix must be 1-200 characters of [A-Za-z0-9._-]");
        return NULL;
    }
    if (cfg->n_spans == 0 || !cfg->spans) {
        tkc_err_set(errstr, errstr_size, "at least one span is needed");
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_spans; i++) {
        if (!topic_chars_ok(cfg->spans[i].name) ||
            strlen(cfg->topic_prefix) + 1 + strlen(cfg->spans[i].name) > 249) {
            tkc_err_set(errstr, errstr_size,
                    "span %zu: its name must be characters of [A-Za-z0-9._-] and make a topic "
                    "name of at most 249 characters",
                    i);
            return NULL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->spans[i].name, cfg->spans[j].name) == 0) {
                tkc_err_set(errstr, errstr_size, "span name %s is used twice", cfg->spans[i].name);
                return NULL;
            }
    }
    bool kafka_store = cfg->checkpoint_store == TKC_CHECKPOINT_STORE_KAFKA;
    if (!c->encode_row || !c->encode_watermark ||
        (kafka_store && (!c->encode_checkpoint || !c->decode_checkpoint))) {
        tkc_err_set(errstr, errstr_size, "codec: encode_row, encode_watermark%s are required",
                kafka_store ? ", encode_checkpoint and decode_checkpoint" : "");
        return NULL;
    }
    if (!kafka_store && (!cfg->checkpoint_path || !*cfg->checkpoint_path)) {
        tkc_err_set(errstr, errstr_size, "the file checkpoint store needs a checkpoint path");
        return NULL;
    }
    if (cfg->delivery == TKC_DELIVERY_EXACTLY_ONCE && !kafka_store) {
        tkc_err_set(errstr, errstr_size,
                "exactly-once needs the kafka checkpoint store: the checkpoint must commit in "
                "the same transaction as the rows");
        return NULL;
    }
    if ((!cfg->kafka_bootstrap || !*cfg->kafka_bootstrap) && cfg->kafka_mock_brokers <= 0) {
        tkc_err_set(errstr, errstr_size, "kafka bootstrap servers are required");
        return NULL;
    }

    tkc_pipeline_t *pl = tkc_calloc(1, sizeof(*pl));
    pl->cfg = *cfg;
    if (pl->cfg.watermark_interval_ms < 0)
        pl->cfg.watermark_interval_ms = 0;
    if (pl->cfg.kafka_timeout_ms <= 0)
        pl->cfg.kafka_timeout_ms = 30000;
    if (pl->cfg.max_rows_per_step <= 0)
        pl->cfg.max_rows_per_step = 4096;
    pl->eos = cfg->delivery == TKC_DELIVERY_EXACTLY_ONCE;
    pl->q = q;
    pl->feed_id = tkc_strdup(cfg->feed_id);
    pl->prefix = tkc_strdup(cfg->topic_prefix);
    pl->checkpoint_path = cfg->checkpoint_path ? tkc_strdup(cfg->checkpoint_path) : NULL;
    pl->spill_dir = cfg->spill_dir ? tkc_strdup(cfg->spill_dir) : NULL;
    pl->bootstrap = cfg->kafka_bootstrap ? tkc_strdup(cfg->kafka_bootstrap) : NULL;
    pl->n_spans = cfg->n_spans;
    pl->spans = tkc_calloc(cfg->n_spans, sizeof(*pl->spans));
    pl->span_names = tkc_calloc(cfg->n_spans, sizeof(char *));
    pl->row_topics = tkc_calloc(cfg->n_spans, sizeof(char *));
    for (size_t i = 0; i < cfg->n_spans; i++) {
        const tkc_keyrange_t *r = &cfg->spans[i].range;
        pl->span_names[i] = tkc_strdup(cfg->spans[i].name);
        pl->spans[i].name = pl->span_names[i];
        pl->spans[i].range.start = tkc_memdup(r->start, r->start_len);
        pl->spans[i].range.start_len = r->start_len;
        pl->spans[i].range.end = tkc_memdup(r->end, r->end_len);
        pl->spans[i].range.end_len = r->end_len;
        pl->row_topics[i] = join_topic(cfg->topic_prefix, cfg->spans[i].name);
    }
    pl->wm_topic = join_topic(cfg->topic_prefix, "watermark");
    pl->ck_topic = join_topic(cfg->topic_prefix, "checkpoint");
    pl->n_props = cfg->n_kafka_props;
    pl->props = tkc_calloc(cfg->n_kafka_props + 1, sizeof(*pl->props));
    for (size_t i = 0; i < cfg->n_kafka_props; i++) {
        pl->props[i].name = tkc_strdup(cfg->kafka_props[i].name);
        pl->props[i].value = tkc_strdup(cfg->kafka_props[i].value);
    }
    /* the copies replace the caller's pointers */
    pl->cfg.feed_id = pl->feed_id;
    pl->cfg.topic_prefix = pl->prefix;
    pl->cfg.checkpoint_path = pl->checkpoint_path;
    pl->cfg.spill_dir = pl->spill_dir;
    pl->cfg.kafka_bootstrap = pl->bootstrap;
    pl->cfg.spans = pl->spans;
    pl->cfg.kafka_props = pl->props;

    pl->n_topics = cfg->n_spans + 2;
    pl->topic_stats = tkc_calloc(pl->n_topics, sizeof(*pl->topic_stats));
    pl->topic_index = tkc_hashmap_new();
    for (size_t i = 0; i < pl->n_topics; i++) {
        const char *t = i < cfg->n_spans ? pl->row_topics[i]
                        : i == cfg->n_spans ? pl->wm_topic
                                            : pl->ck_topic;
        snprintf(pl->topic_stats[i].topic, sizeof(pl->topic_stats[i].topic), "%s", t);
        tkc_hashmap_put(pl->topic_index, t, strlen(t), (void *)(uintptr_t)(i + 1));
    }
    pthread_mutex_init(&pl->mu, NULL);
    pl->pub.topics = tkc_calloc(pl->n_topics, sizeof(*pl->pub.topics));
    pl->state = TKC_PIPELINE_NEW;
    pl->open = batch_new(BATCH_ROWS);
    atomic_init(&pl->stop_req, false);
    return pl;
}

static tkc_err_t decode_cb_adapter(void *opaque, const char *topic, const uint8_t *buf,
                                   size_t len, tkc_checkpoint_t *out, char *errstr,
                                   size_t errstr_size)
{
    const tkc_pipeline_codec_t *c = opaque;
    return c->decode_checkpoint(c->opaque, topic, buf, len, out, errstr, errstr_size);
}

/*
 * The first checkpoint of a feed: its start ts, stored before the feed
 * reads anything. Without it, a process killed before its first regular
 * checkpoint resolved start-ts again at the restart (for "now": a later
 * ts), and every change committed in between was never delivered. With it,
 * the restart finds this checkpoint and resumes from the first start ts,
 * which is still checked against the GC safepoint like any checkpoint (and
 * the feed keeps its service GC safepoint there). The feed never runs
 * without it: when it cannot be stored, the start fails.
 *
 * File store: the atomic, durable file write. Kafka store: one record to
 * the compacted topic, waited for until acknowledged (acks=all); in
 * exactly-once mode in a transaction of its own, after init_transactions,
 * committed, so the read_committed read of a restart sees it.
 */
static tkc_err_t store_start_checkpoint(tkc_pipeline_t *pl, char *errstr, size_t errstr_size)
{
    static const char why[] = "refusing to start without it: a restart would not know where "
                              "this feed began and could skip changes";
    uint64_t ts = pl->start_ts;
    int64_t now_ms = tkc_clock_wall_ms();
    char e[512] = "";
    tkc_err_t err;
    if (pl->cfg.checkpoint_store == TKC_CHECKPOINT_STORE_FILE) {
        tkc_checkpoint_t cp = {.ts = ts, .epoch = pl->epoch, .committed_at_ms = now_ms};
        err = tkc_checkpoint_file_write(pl->checkpoint_path, pl->feed_id, &cp, e, sizeof(e));
        if (err != TKC_ERR_OK) {
            tkc_err_set(errstr, errstr_size,
                    "cannot store the start ts %" PRIu64 " as the first checkpoint: %s; %s", ts,
                    e, why);
            return err;
        }
        goto stored;
    }

    uint8_t *val = NULL;
    size_t len = 0;
    err = pl->cfg.codec.encode_checkpoint(pl->cfg.codec.opaque, pl->ck_topic, pl->feed_id, ts,
                                          now_ms, pl->epoch, &val, &len, e, sizeof(e));
    if (err != TKC_ERR_OK) {
        tkc_free(val);
        tkc_err_set(errstr, errstr_size, "cannot encode the first checkpoint %" PRIu64 ": %s; %s",
                ts, e, why);
        return err;
    }
    int64_t deadline = tkc_clock_mono_ms() + pl->cfg.kafka_timeout_ms;
    if (pl->eos) {
        err = tkc_kafka_sink_txn_begin(pl->sink, e, sizeof(e));
        if (err != TKC_ERR_OK) {
            tkc_free(val);
            goto failed;
        }
    }
    batch_t *b = batch_new(BATCH_CHECKPOINT);
    b->ts = ts;
    for (;;) {
        err = tkc_kafka_sink_produce(pl->sink, pl->ck_topic, -1, pl->feed_id,
                                     strlen(pl->feed_id), val, len, b, e, sizeof(e));
        if (err != TKC_ERR_QUEUE_FULL || tkc_clock_mono_ms() > deadline)
            break;
        tkc_kafka_sink_poll(pl->sink, BLOCKED_WAIT_MS);
    }
    if (err != TKC_ERR_OK) {
        tkc_free(val); /* not taken */
        tkc_free(b);   /* nothing references it */
        if (err == TKC_ERR_QUEUE_FULL) {
            err = TKC_ERR_TIMED_OUT;
            snprintf(e, sizeof(e), "not queued within %" PRId64 " ms", pl->cfg.kafka_timeout_ms);
        }
        goto failed;
    }
    count_produced(pl, pl->ck_topic, b, strlen(pl->feed_id) + len);
    if (pl->eos) {
        /* flushes: every report of the transaction is served first */
        do {
            err = tkc_kafka_sink_txn_commit(pl->sink, e, sizeof(e));
        } while (err == TKC_ERR_TIMED_OUT && pl->err == TKC_ERR_OK &&
                 tkc_clock_mono_ms() < deadline);
    } else {
        while (b->outstanding && pl->err == TKC_ERR_OK) {
            if ((err = tkc_kafka_sink_fatal(pl->sink, e, sizeof(e))) != TKC_ERR_OK)
                break;
            if (tkc_clock_mono_ms() > deadline) {
                err = TKC_ERR_TIMED_OUT;
                snprintf(e, sizeof(e), "not acknowledged within %" PRId64 " ms",
                         pl->cfg.kafka_timeout_ms);
                break;
            }
            tkc_kafka_sink_poll(pl->sink, 100);
        }
    }
    tkc_kafka_sink_poll(pl->sink, 0);
    if (pl->err != TKC_ERR_OK) {
        /* a failed delivery report (on_report keeps it while NEW) */
        err = pl->err;
        snprintf(e, sizeof(e), "%s", pl->error);
    }
    retire(pl, b); /* freed now, or with the sink if a report is still owed */
    if (err != TKC_ERR_OK)
        goto failed;

stored:
    pl->checkpoints++;
    tkc_log(TKC_LOG_INFO, "pipeline",
            "event=start_checkpoint feed=%s ts=%" PRIu64 " epoch=%" PRIu64 " store=%s",
            pl->feed_id, ts, pl->epoch,
            pl->cfg.checkpoint_store == TKC_CHECKPOINT_STORE_FILE ? "file" : pl->ck_topic);
    return TKC_ERR_OK;

failed:
    txn_abort_quietly(pl);
    tkc_err_set(errstr, errstr_size, "cannot store the start ts %" PRIu64
            " as the first checkpoint in %s: %s; %s", ts, pl->ck_topic, e, why);
    return err;
}

tkc_err_t tkc_pipeline_open(tkc_pipeline_t *pl, char *errstr, size_t errstr_size)
{
    if (pl->state != TKC_PIPELINE_NEW || pl->sink) {
        tkc_err_set(errstr, errstr_size, "pipeline already opened");
        return TKC_ERR_INVALID_ARG;
    }
    tkc_sorter_config_t scfg = {
        .memory_quota = pl->cfg.memory_quota,
        .spill_dir = pl->spill_dir,
        .disk_budget = pl->cfg.disk_budget,
    };
    pl->sorter = tkc_sorter_new(&scfg, errstr, errstr_size);
    if (!pl->sorter)
        return TKC_ERR_IO;
    /* an eighth of the sorter's quota for the keys of one commit_ts group
     * (64 MiB by default): see row_dedup.h for what happens beyond it */
    size_t quota = pl->cfg.memory_quota ? pl->cfg.memory_quota : TKC_SORTER_MEMORY_QUOTA_DEFAULT;
    size_t dedup_limit = quota / 8;
    pl->dedup = tkc_row_dedup_new(dedup_limit < DEDUP_MEMORY_MIN ? DEDUP_MEMORY_MIN : dedup_limit);

    char txn_id[TKC_CHECKPOINT_FEED_ID_MAX + 16];
    snprintf(txn_id, sizeof(txn_id), "tkc-%s", pl->feed_id);
    tkc_kafka_sink_config_t kcfg = {
        .bootstrap = pl->bootstrap,
        .props = pl->props,
        .n_props = pl->n_props,
        .transactional_id = pl->eos ? txn_id : NULL,
        .mock_brokers = pl->cfg.kafka_mock_brokers,
        .max_inflight_bytes = pl->cfg.max_inflight_bytes,
        .timeout_ms = pl->cfg.kafka_timeout_ms,
        .dr_cb = on_report,
        .opaque = pl,
    };
    pl->sink = tkc_kafka_sink_new(&kcfg, errstr, errstr_size);
    if (!pl->sink)
        return TKC_ERR_CONF;

    tkc_err_t err;
    for (size_t i = 0; i < pl->n_spans; i++) {
        err = tkc_kafka_sink_ensure_topic(pl->sink, pl->row_topics[i], pl->cfg.partitions,
                                          pl->cfg.replication, false, errstr, errstr_size);
        if (err != TKC_ERR_OK)
            return err;
    }
    err = tkc_kafka_sink_ensure_topic(pl->sink, pl->wm_topic, 1, pl->cfg.replication, false,
                                      errstr, errstr_size);
    if (err != TKC_ERR_OK)
        return err;
    bool kafka_store = pl->cfg.checkpoint_store == TKC_CHECKPOINT_STORE_KAFKA;
    if (kafka_store) {
        err = tkc_kafka_sink_ensure_topic(pl->sink, pl->ck_topic, 1, pl->cfg.replication, true,
                                          errstr, errstr_size);
        if (err != TKC_ERR_OK)
            return err;
    }
    if (pl->eos) {
        /* Before reading the checkpoint: fences an older instance and aborts
         * its open transaction, so the read_committed read below sees the
         * last committed checkpoint instead of stalling at its LSO. */
        for (int attempt = 0; attempt < 3; attempt++) {
            err = tkc_kafka_sink_txn_init(pl->sink, errstr, errstr_size);
            if (err != TKC_ERR_TIMED_OUT)
                break; /* retriable: again, a bounded number of times */
        }
        if (err != TKC_ERR_OK)
            return err;
    }

    tkc_checkpoint_t cp = {0};
    char e[512] = "";
    if (kafka_store) {
        rd_kafka_conf_t *conf = tkc_kafka_sink_client_conf(pl->sink, errstr, errstr_size);
        if (!conf)
            return TKC_ERR_CONF;
        err = tkc_checkpoint_kafka_read(conf, pl->ck_topic, pl->feed_id, pl->eos,
                                        (int)pl->cfg.kafka_timeout_ms, decode_cb_adapter,
                                        &pl->cfg.codec, &cp, e, sizeof(e));
        rd_kafka_conf_destroy(conf);
    } else {
        err = tkc_checkpoint_file_read(pl->checkpoint_path, pl->feed_id, &cp, e, sizeof(e));
    }
    bool have_cp = err == TKC_ERR_OK;
    if (err != TKC_ERR_OK && err != TKC_ERR_NOT_FOUND) {
        tkc_err_set(errstr, errstr_size, "cannot read the checkpoint: %s", e);
        return err;
    }
    if (have_cp) {
        pl->start_ts = cp.ts;
        pl->epoch = cp.epoch + 1;
    } else {
        pl->epoch = 1;
        pl->start_ts = pl->cfg.start_ts;
        if (!pl->start_ts) {
            if (pl->cfg.now_tso) {
                err = pl->cfg.now_tso(pl->cfg.hook_opaque, &pl->start_ts);
                if (err != TKC_ERR_OK) {
                    tkc_err_set(errstr, errstr_size, "cannot get the current TSO for start-ts=now: %s",
                            tkc_err2str(err));
                    return err;
                }
            } else {
                pl->start_ts = tkc_tso_compose(tkc_clock_wall_ms(), 0);
            }
        }
    }
    if (pl->cfg.gc_safepoint) {
        uint64_t sp = 0;
        err = pl->cfg.gc_safepoint(pl->cfg.hook_opaque, &sp);
        if (err != TKC_ERR_OK) {
            tkc_err_set(errstr, errstr_size, "cannot read the GC safepoint: %s", tkc_err2str(err));
            return err;
        }
        if (pl->start_ts < sp) {
            tkc_err_set(errstr, errstr_size,
                    "%s %" PRIu64 " is below the cluster's GC safepoint %" PRIu64
                    ": TiKV no longer has the history after it, so resuming would lose changes; "
                    "refusing to start (re-snapshot and start from a new start-ts)",
                    have_cp ? "the checkpoint" : "start-ts", pl->start_ts, sp);
            return TKC_ERR_INCOMPATIBLE;
        }
    }

    tkc_keyrange_t *ranges = tkc_calloc(pl->n_spans, sizeof(*ranges));
    for (size_t i = 0; i < pl->n_spans; i++)
        ranges[i] = pl->spans[i].range;
    pl->frontier = tkc_frontier_new(ranges, pl->n_spans, pl->start_ts);
    tkc_free(ranges);
    if (!pl->frontier) {
        tkc_err_set(errstr, errstr_size, "invalid span key ranges (empty span?)");
        return TKC_ERR_INVALID_ARG;
    }
    pl->target_ts = pl->sealed_ts = pl->acked_ts = pl->watermark_ts = pl->checkpoint_ts =
        pl->start_ts;
    if (!have_cp) {
        /* before the feed reads anything (it is created after this returns) */
        err = store_start_checkpoint(pl, errstr, errstr_size);
        if (err != TKC_ERR_OK)
            return err;
    }
    pl->last_wm_ms = tkc_clock_mono_ms() - pl->cfg.watermark_interval_ms;
    tkc_log(TKC_LOG_INFO, "pipeline",
            "event=opened feed=%s start_ts=%" PRIu64 " from=%s epoch=%" PRIu64
            " delivery=%s checkpoint_store=%s spans=%zu",
            pl->feed_id, pl->start_ts, have_cp ? "checkpoint" : "start_ts", pl->epoch,
            pl->eos ? "exactly-once" : "at-least-once", kafka_store ? "kafka" : "file",
            pl->n_spans);
    publish(pl, true);
    return TKC_ERR_OK;
}

uint64_t tkc_pipeline_start_ts(const tkc_pipeline_t *pl)
{
    return pl->start_ts;
}

tkc_kafka_sink_t *tkc_pipeline_sink(tkc_pipeline_t *pl)
{
    return pl->sink;
}

/* ===== the loop ===== */

static bool stop_complete(tkc_pipeline_t *pl)
{
    if (pl->target_ts != pl->sealed_ts || pl->pending_row ||
        tkc_frontier_min(pl->frontier) > pl->sealed_ts)
        return false;
    if (pl->eos)
        return pl->checkpoint_ts >= pl->sealed_ts;
    return pl->acked_ts >= pl->sealed_ts && pl->checkpoint_ts >= pl->sealed_ts;
}

tkc_err_t tkc_pipeline_run(tkc_pipeline_t *pl)
{
    if (!pl->sink || !pl->frontier) {
        tkc_err_set(pl->error, sizeof(pl->error), "pipeline not opened");
        return TKC_ERR_INVALID_ARG;
    }
    pl->state = TKC_PIPELINE_RUNNING;
    tkc_log(TKC_LOG_INFO, "pipeline", "event=running feed=%s", pl->feed_id);
    bool idle = false;
    for (;;) {
        int64_t now = tkc_clock_mono_ms();
        if (atomic_load(&pl->stop_req)) {
            if (pl->state == TKC_PIPELINE_HELD)
                break; /* nothing can be committed past the held message */
            begin_stop(pl, "requested");
        }
        tkc_kafka_sink_poll(pl->sink, 0);
        char e[512];
        if (tkc_kafka_sink_fatal(pl->sink, e, sizeof(e)) != TKC_ERR_OK)
            fail_fatal(pl, e);
        if (pl->state == TKC_PIPELINE_FAILED)
            break;

        /* Idle: wait on the feed queue; briefly while Kafka owes reports
         * (they are served at the top of the loop), longer when not. */
        int wait_ms = 0;
        if (idle && !pl->paused)
            wait_ms = tkc_kafka_sink_inflight(pl->sink) || pl->wm.active || pl->ck.active
                          ? IDLE_WAIT_MS
                          : IDLE_LONG_WAIT_MS;
        bool worked = input_step(pl, wait_ms);
        advance_target(pl);
        worked |= release_step(pl);
        watermark_step(pl, now);
        checkpoint_step(pl);
        commit_step(pl, now);
        sweep_retired(pl);
        dups_log(pl, now, false);
        if (pl->state == TKC_PIPELINE_HELD && now - pl->held_log_ms >= HELD_LOG_INTERVAL_MS) {
            /* stay loud: a held feed needs an operator */
            pl->held_log_ms = now;
            tkc_log(TKC_LOG_ERROR, "pipeline",
                    "event=still_held feed=%s checkpoint_ts=%" PRIu64 " resolved_ts=%" PRIu64
                    " reason=\"%s\"",
                    pl->feed_id, pl->checkpoint_ts, tkc_frontier_min(pl->frontier), pl->error);
        }
        publish(pl, false);

        if (pl->state == TKC_PIPELINE_FAILED)
            break;
        if (pl->state == TKC_PIPELINE_STOPPING) {
            if (stop_complete(pl))
                break;
            if (tkc_clock_mono_ms() > pl->stop_deadline) {
                fail(pl, TKC_ERR_TIMED_OUT,
                     "graceful stop timed out: checkpoint stays at %" PRIu64
                     " (released %" PRIu64 ", acknowledged %" PRIu64 ")",
                     pl->checkpoint_ts, pl->sealed_ts, pl->acked_ts);
                break;
            }
        }
        idle = !worked;
        if (idle && (pl->paused || pl->state != TKC_PIPELINE_RUNNING))
            tkc_kafka_sink_poll(pl->sink, BLOCKED_WAIT_MS);
    }

    dups_log(pl, tkc_clock_mono_ms(), true);
    if (pl->state == TKC_PIPELINE_FAILED)
        txn_abort_quietly(pl);
    else if (pl->state == TKC_PIPELINE_STOPPING || pl->state == TKC_PIPELINE_RUNNING)
        pl->state = TKC_PIPELINE_STOPPED;
    tkc_log(pl->err == TKC_ERR_OK ? TKC_LOG_INFO : TKC_LOG_ERROR, "pipeline",
            "event=stopped feed=%s state=%s err=%s checkpoint_ts=%" PRIu64
            " rows_delivered=%" PRIu64
            "%s%s%s",
            pl->feed_id, tkc_pipeline_state_name(pl->state), tkc_err2name(pl->err),
            pl->checkpoint_ts, pl->rows_delivered, pl->error[0] ? " reason=\"" : "", pl->error,
            pl->error[0] ? "\"" : "");
    publish(pl, true);
    if (pl->cfg.stopped_cb)
        pl->cfg.stopped_cb(pl->cfg.hook_opaque, pl->err, pl->error);
    return pl->err;
}

static void *thread_main(void *arg)
{
    tkc_pipeline_run(arg);
    return NULL;
}

tkc_err_t tkc_pipeline_start(tkc_pipeline_t *pl, char *errstr, size_t errstr_size)
{
    if (!pl->sink || !pl->frontier || pl->thread_started) {
        tkc_err_set(errstr, errstr_size, "pipeline not opened or already started");
        return TKC_ERR_INVALID_ARG;
    }
    if (pthread_create(&pl->thread, NULL, thread_main, pl) != 0) {
        tkc_err_set(errstr, errstr_size, "cannot start the pipeline thread");
        return TKC_ERR_IO;
    }
    pl->thread_started = true;
    return TKC_ERR_OK;
}

void tkc_pipeline_stop(tkc_pipeline_t *pl)
{
    atomic_store(&pl->stop_req, true);
}

tkc_err_t tkc_pipeline_join(tkc_pipeline_t *pl, char *errstr, size_t errstr_size)
{
    if (pl->thread_started) {
        pthread_join(pl->thread, NULL);
        pl->thread_started = false;
    }
    if (pl->err != TKC_ERR_OK)
        tkc_err_set(errstr, errstr_size, "%s", pl->error);
    return pl->err;
}

static void free_batches(batch_t *b)
{
    while (b) {
        batch_t *next = b->next;
        tkc_free(b);
        b = next;
    }
}

void tkc_pipeline_destroy(tkc_pipeline_t *pl)
{
    if (!pl)
        return;
    if (pl->thread_started) {
        tkc_pipeline_stop(pl);
        pthread_join(pl->thread, NULL);
    }
    /* the sink first: no report may arrive for a freed batch */
    tkc_kafka_sink_destroy(pl->sink);
    free_batches(pl->sealed_head);
    free_batches(pl->retired);
    tkc_free(pl->open);
    if (pl->wm.batch)
        tkc_free(pl->wm.batch);
    if (pl->ck.batch)
        tkc_free(pl->ck.batch);
    tkc_free(pl->wm.val);
    tkc_free(pl->pending_val);
    tkc_row_destroy(pl->pending_row);
    tkc_feed_event_destroy(pl->pending_ev);
    tkc_sorter_destroy(pl->sorter);
    tkc_row_dedup_destroy(pl->dedup);
    tkc_frontier_destroy(pl->frontier);
    tkc_hashmap_destroy(pl->topic_index, NULL);
    for (size_t i = 0; i < pl->n_spans; i++) {
        tkc_free(pl->span_names[i]);
        tkc_free((void *)pl->spans[i].range.start);
        tkc_free((void *)pl->spans[i].range.end);
        tkc_free(pl->row_topics[i]);
    }
    tkc_free(pl->span_names);
    tkc_free(pl->spans);
    tkc_free(pl->row_topics);
    for (size_t i = 0; i < pl->n_props; i++) {
        tkc_free((char *)pl->props[i].name);
        tkc_free((char *)pl->props[i].value);
    }
    tkc_free(pl->props);
    tkc_free(pl->wm_topic);
    tkc_free(pl->ck_topic);
    tkc_free(pl->topic_stats);
    tkc_free(pl->pub.topics);
    tkc_free(pl->feed_id);
    tkc_free(pl->prefix);
    tkc_free(pl->checkpoint_path);
    tkc_free(pl->spill_dir);
    tkc_free(pl->bootstrap);
    pthread_mutex_destroy(&pl->mu);
    tkc_free(pl);
}
