/*
 * sim_server.c: gRPC C-core server plumbing for tikv-sim (see sim_server.h).
 *
 * DESIGN
 * One sim_server_t = one grpc_server + one completion queue + one thread.
 * The thread is the only one that calls grpc_completion_queue_next(); it
 * keeps exactly one grpc_server_request_call() outstanding, dispatches every
 * completion to the call it belongs to, and runs the tick callback.
 *
 * Per call (sim_call_t) the batches are:
 *   - RECV_CLOSE_ON_SERVER, started as soon as the call arrives: its
 *     completion is the call's "done" signal (cancelled or not);
 *   - SEND_INITIAL_METADATA, at once, on its own;
 *   - one RECV_MESSAGE at a time (a NULL message = half-close or cancel,
 *     told apart with grpc_call_failed_before_recv_message());
 *   - a send queue with at most one SEND_MESSAGE in flight;
 *   - SEND_STATUS_FROM_SERVER once the queue has drained after
 *     sim_call_finish().
 * Every started batch yields exactly one completion, even after a cancel
 * (c-deps-notes §1.1), so each call counts its outstanding batches and is
 * released only when RECV_CLOSE_ON_SERVER has completed and the count is 0.
 *
 * Sends from other threads. grpc.h allows grpc_call_start_batch() from any
 * thread provided the calls on one grpc_call are serialized, so every batch
 * of a call is started under the call's mutex. sim_call_send() queues the
 * message and, if no SEND_MESSAGE is in flight, starts it right there on the
 * caller's thread; the completion arrives on the server thread, which starts
 * the next queued message. This is a deliberate departure from "queue, then
 * let the server thread poll for it every 2-5 ms": it adds no latency and no
 * busy wake-ups, and the server thread's wait is bounded only by the next
 * tick (or 100 ms without a tick, to notice nothing in particular but keep
 * the loop honest). Handler callbacks are always invoked on the server thread
 * and never with a call mutex held, so handlers may call sim_call_* freely.
 *
 * Stop / restart. sim_server_stop() (not from the server thread) calls
 * grpc_server_shutdown_and_notify() + grpc_server_cancel_all_calls() (every
 * open call ends with UNAVAILABLE "Cancelling all calls"), the thread drains
 * until the shutdown tag has arrived and every call is released, then the
 * server and queue are destroyed, so the listening socket is closed and
 * connections are refused. sim_server_start() binds the same port again.
 *
 * Server arguments follow TiKV (§8.1, §8.4 of the protocol notes):
 * unlimited send/receive message size, 1024 concurrent streams, keepalive
 * 10 s / 3 s, and a permissive ping policy (pings without calls allowed, no
 * ping strikes, 1 s minimum interval) so clients with 10 s / 3 s keepalive and
 * HTTP2_MAX_PINGS_WITHOUT_DATA = 0 never get "too many pings".
 */
#include "sim_server.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define SIM_SERVER_IDLE_WAIT_MS 100
#define SIM_SERVER_BIND_RETRIES 50
#define SIM_SERVER_BIND_RETRY_MS 40

typedef enum {
    TAG_NEW_CALL,
    TAG_SHUTDOWN,
    TAG_RECV_CLOSE,
    TAG_INITIAL,
    TAG_RECV_MSG,
    TAG_SEND_MSG,
    TAG_SEND_STATUS,
} tag_kind_t;

typedef struct {
    tag_kind_t kind;
    sim_call_t *call; /* NULL for server-level tags */
} sim_tag_t;

typedef struct {
    char *method;
    bool stream;
    sim_unary_fn unary;
    sim_stream_handler_t sh;
    void *opaque;
} handler_t;

typedef struct sendq_item_s {
    struct sendq_item_s *next;
    grpc_byte_buffer *bb;
    size_t len;
} sendq_item_t;

typedef struct {
    char *key;
    char *value;
} md_pair_t;

struct sim_call_s {
    sim_server_t *srv;
    uint64_t id;
    grpc_call *call;
    char *method;
    md_pair_t *md;
    size_t n_md;
    const handler_t *h; /* NULL: unknown method */
    void *opaque;

    pthread_mutex_t mu;      /* guards everything below and every start_batch */
    int outstanding;         /* batches started and not completed yet */
    bool opened;             /* stream handler accepted the call */
    bool completed;          /* RECV_CLOSE_ON_SERVER completed */
    bool close_delivered;    /* on_close has been called */
    bool recv_done;          /* no more RECV_MESSAGE will be started */
    bool stalled;
    bool finish_requested;   /* finish or abort asked; no more sends */
    bool status_sent;        /* SEND_STATUS started (or cancelled) */
    grpc_status_code fin_status;
    char *fin_details;
    sendq_item_t *q_head, *q_tail;
    size_t queued_bytes;     /* queued + in flight */
    grpc_byte_buffer *inflight_bb;
    size_t inflight_len;
    bool send_in_flight;

    /* buffers owned by in-flight receive batches (server thread only) */
    grpc_byte_buffer *recv_bb;
    int recv_close_cancelled;

    sim_tag_t t_recv_close, t_initial, t_recv_msg, t_send_msg, t_send_status;
    struct sim_call_s *prev, *next; /* server's live list (server thread) */
};

struct sim_server_s {
    char *name;
    char *addr; /* "127.0.0.1:port" once bound */
    int port;
    handler_t *handlers;
    size_t n_handlers;

    void (*tick)(void *opaque);
    void *tick_opaque;
    int tick_ms;

    grpc_server *gs;
    grpc_completion_queue *cq;
    pthread_t thread;
    atomic_bool running;
    atomic_bool stopping;

    /* request_call state (server thread) */
    grpc_call *new_call;
    grpc_call_details new_details;
    grpc_metadata_array new_md;
    bool request_outstanding;
    sim_tag_t t_new_call, t_shutdown;
    bool shutdown_done;
    sim_call_t *live;
    size_t live_count;

    atomic_uint_fast64_t calls_opened;
    atomic_uint_fast64_t calls_closed;
};

static atomic_uint_fast64_t next_call_id = 1;

/* ===== helpers ===== */

static char *slice_to_str(grpc_slice s)
{
    return tkc_strndup((const char *)GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
}

static grpc_byte_buffer *bb_from_bytes(const uint8_t *data, size_t len)
{
    grpc_slice s = grpc_slice_malloc(len);
    if (len)
        memcpy(GRPC_SLICE_START_PTR(s), data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static const handler_t *find_handler(const sim_server_t *s, const char *method)
{
    for (size_t i = 0; i < s->n_handlers; i++)
        if (strcmp(s->handlers[i].method, method) == 0)
            return &s->handlers[i];
    return NULL;
}

/* Starts a batch under c->mu (caller holds it); counts it if accepted. */
static bool start_batch_locked(sim_call_t *c, const grpc_op *ops, size_t n, sim_tag_t *tag)
{
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        tkc_log(TKC_LOG_WARN, "sim_server",
                "event=start_batch_failed server=%s call=%" PRIu64 " tag=%d err=%d",
                c->srv->name, c->id, (int)tag->kind, (int)e);
        return false;
    }
    c->outstanding++;
    return true;
}

static void sendq_drop_locked(sim_call_t *c)
{
    sendq_item_t *it = c->q_head;
    while (it) {
        sendq_item_t *next = it->next;
        c->queued_bytes -= it->len;
        grpc_byte_buffer_destroy(it->bb);
        tkc_free(it);
        it = next;
    }
    c->q_head = c->q_tail = NULL;
}

static void start_status_locked(sim_call_t *c)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op.data.send_status_from_server.trailing_metadata_count = 0;
    op.data.send_status_from_server.status = c->fin_status;
    grpc_slice details = grpc_slice_from_copied_string(c->fin_details ? c->fin_details : "");
    op.data.send_status_from_server.status_details = &details;
    c->status_sent = true;
    start_batch_locked(c, &op, 1, &c->t_send_status);
    grpc_slice_unref(details);
}

/* Starts the next queued SEND_MESSAGE, or the status once the queue is empty. */
static void pump_locked(sim_call_t *c)
{
    if (c->send_in_flight || c->stalled || c->completed || c->status_sent)
        return;
    if (c->q_head) {
        sendq_item_t *it = c->q_head;
        c->q_head = it->next;
        if (!c->q_head)
            c->q_tail = NULL;
        grpc_op op;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_SEND_MESSAGE;
        op.data.send_message.send_message = it->bb;
        if (start_batch_locked(c, &op, 1, &c->t_send_msg)) {
            c->send_in_flight = true;
            c->inflight_bb = it->bb;
            c->inflight_len = it->len;
        } else {
            c->queued_bytes -= it->len;
            grpc_byte_buffer_destroy(it->bb);
        }
        tkc_free(it);
        return;
    }
    if (c->finish_requested)
        start_status_locked(c);
}

/* ===== call lifecycle (server thread) ===== */

static void call_free(sim_call_t *c)
{
    sendq_drop_locked(c);
    if (c->inflight_bb)
        grpc_byte_buffer_destroy(c->inflight_bb);
    if (c->recv_bb)
        grpc_byte_buffer_destroy(c->recv_bb);
    grpc_call_unref(c->call);
    for (size_t i = 0; i < c->n_md; i++) {
        tkc_free(c->md[i].key);
        tkc_free(c->md[i].value);
    }
    tkc_free(c->md);
    tkc_free(c->method);
    tkc_free(c->fin_details);
    pthread_mutex_destroy(&c->mu);
    tkc_free(c);
}

/* Releases the call once it is complete and no batch is pending. */
static void call_maybe_release(sim_call_t *c)
{
    pthread_mutex_lock(&c->mu);
    bool done = c->completed && c->outstanding == 0;
    pthread_mutex_unlock(&c->mu);
    if (!done)
        return;
    sim_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->live_count--;
    if (c->h && c->h->stream && c->opened && c->h->sh.on_release)
        c->h->sh.on_release(c->h->opaque, c);
    call_free(c);
}

static void deliver_close(sim_call_t *c, bool cancelled)
{
    if (c->close_delivered)
        return;
    c->close_delivered = true;
    if (c->h && c->h->stream && c->opened && c->h->sh.on_close)
        c->h->sh.on_close(c->h->opaque, c, cancelled);
}

static void start_recv_msg(sim_call_t *c)
{
    pthread_mutex_lock(&c->mu);
    if (!c->recv_done && !c->completed) {
        grpc_op op;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &c->recv_bb;
        if (!start_batch_locked(c, &op, 1, &c->t_recv_msg))
            c->recv_done = true;
    }
    pthread_mutex_unlock(&c->mu);
}

static void call_start(sim_server_t *s)
{
    sim_call_t *c = tkc_calloc(1, sizeof(*c));
    c->srv = s;
    c->id = atomic_fetch_add(&next_call_id, 1);
    c->call = s->new_call;
    c->method = slice_to_str(s->new_details.method);
    c->n_md = s->new_md.count;
    c->md = tkc_calloc(c->n_md ? c->n_md : 1, sizeof(md_pair_t));
    for (size_t i = 0; i < c->n_md; i++) {
        c->md[i].key = slice_to_str(s->new_md.metadata[i].key);
        c->md[i].value = slice_to_str(s->new_md.metadata[i].value);
    }
    pthread_mutex_init(&c->mu, NULL);
    c->t_recv_close = (sim_tag_t){TAG_RECV_CLOSE, c};
    c->t_initial = (sim_tag_t){TAG_INITIAL, c};
    c->t_recv_msg = (sim_tag_t){TAG_RECV_MSG, c};
    c->t_send_msg = (sim_tag_t){TAG_SEND_MSG, c};
    c->t_send_status = (sim_tag_t){TAG_SEND_STATUS, c};
    c->h = find_handler(s, c->method);

    /* the server owns the details/metadata arrays; reset them for reuse */
    grpc_call_details_destroy(&s->new_details);
    grpc_metadata_array_destroy(&s->new_md);
    s->new_call = NULL;

    c->next = s->live;
    if (s->live)
        s->live->prev = c;
    s->live = c;
    s->live_count++;
    atomic_fetch_add(&s->calls_opened, 1);

    pthread_mutex_lock(&c->mu);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->recv_close_cancelled;
    if (!start_batch_locked(c, &op, 1, &c->t_recv_close)) {
        /* cannot happen on a fresh call; treat it as completed */
        c->completed = true;
    }
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 0;
    size_t nops = 1;
    if (!c->h) {
        /* Unknown method: UNIMPLEMENTED, as any gRPC server answers. */
        c->finish_requested = true;
        c->status_sent = true;
        c->recv_done = true;
        ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[1].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
        grpc_slice d = grpc_slice_from_static_string("unknown method");
        ops[1].data.send_status_from_server.status_details = &d;
        nops = 2;
        start_batch_locked(c, ops, nops, &c->t_send_status);
        grpc_slice_unref(d);
        tkc_log(TKC_LOG_DEBUG, "sim_server", "event=unimplemented server=%s method=%s", s->name,
                c->method);
    } else {
        start_batch_locked(c, ops, nops, &c->t_initial);
    }
    pthread_mutex_unlock(&c->mu);

    if (!c->h) {
        call_maybe_release(c);
        return;
    }
    if (c->h->stream) {
        grpc_status_code st = GRPC_STATUS_OK;
        const char *details = NULL;
        if (c->h->sh.on_open && c->h->sh.on_open(c->h->opaque, c, &st, &details) != 0) {
            pthread_mutex_lock(&c->mu);
            c->finish_requested = true;
            c->recv_done = true;
            c->fin_status = st == GRPC_STATUS_OK ? GRPC_STATUS_UNAVAILABLE : st;
            c->fin_details = tkc_strdup(details ? details : "");
            pump_locked(c);
            pthread_mutex_unlock(&c->mu);
            call_maybe_release(c);
            return;
        }
        c->opened = true;
    }
    start_recv_msg(c);
    call_maybe_release(c);
}

static void on_unary_request(sim_call_t *c, const uint8_t *data, size_t len)
{
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    char *details = NULL;
    grpc_status_code st =
        c->h->unary(c->h->opaque, c, data, len, &resp, &resp_len, &details);

    pthread_mutex_lock(&c->mu);
    c->recv_done = true;
    if (!c->completed && !c->status_sent) {
        grpc_op ops[2];
        memset(ops, 0, sizeof(ops));
        size_t n = 0;
        grpc_byte_buffer *bb = NULL;
        if (st == GRPC_STATUS_OK) {
            bb = bb_from_bytes(resp, resp_len);
            ops[n].op = GRPC_OP_SEND_MESSAGE;
            ops[n].data.send_message.send_message = bb;
            n++;
        }
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = st;
        grpc_slice d = grpc_slice_from_copied_string(details ? details : "");
        ops[n].data.send_status_from_server.status_details = &d;
        n++;
        c->finish_requested = true;
        c->status_sent = true;
        if (start_batch_locked(c, ops, n, &c->t_send_status) && bb) {
            /* the byte buffer must live until the batch completes */
            c->inflight_bb = bb;
            bb = NULL;
        }
        if (bb)
            grpc_byte_buffer_destroy(bb);
        grpc_slice_unref(d);
    }
    pthread_mutex_unlock(&c->mu);
    tkc_free(resp);
    tkc_free(details);
}

static void on_recv_msg(sim_call_t *c, bool ok)
{
    pthread_mutex_lock(&c->mu);
    c->outstanding--;
    grpc_byte_buffer *bb = c->recv_bb;
    c->recv_bb = NULL;
    pthread_mutex_unlock(&c->mu);

    if (!ok || bb == NULL) {
        bool cancelled = !ok || grpc_call_failed_before_recv_message(c->call);
        pthread_mutex_lock(&c->mu);
        c->recv_done = true;
        bool unary_pending = !c->h->stream && !c->status_sent && !c->completed;
        pthread_mutex_unlock(&c->mu);
        if (c->h->stream) {
            deliver_close(c, cancelled);
        } else if (unary_pending && !cancelled) {
            /* a unary call needs exactly one request message */
            sim_call_finish(c, GRPC_STATUS_INTERNAL, "missing request message");
        }
        if (bb)
            grpc_byte_buffer_destroy(bb);
        return;
    }

    grpc_byte_buffer_reader rd;
    grpc_slice all;
    if (!grpc_byte_buffer_reader_init(&rd, bb)) {
        grpc_byte_buffer_destroy(bb);
        sim_call_abort(c, GRPC_STATUS_INTERNAL, "cannot read request");
        return;
    }
    all = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    grpc_byte_buffer_destroy(bb);
    const uint8_t *data = GRPC_SLICE_START_PTR(all);
    size_t len = GRPC_SLICE_LENGTH(all);
    if (!c->h->stream) {
        on_unary_request(c, data, len);
    } else {
        if (c->h->sh.on_message && !c->close_delivered)
            c->h->sh.on_message(c->h->opaque, c, data, len);
        start_recv_msg(c);
    }
    grpc_slice_unref(all);
}

static void on_call_event(sim_tag_t *tag, bool ok)
{
    sim_call_t *c = tag->call;
    switch (tag->kind) {
    case TAG_RECV_CLOSE: {
        pthread_mutex_lock(&c->mu);
        c->outstanding--;
        c->completed = true;
        c->recv_done = true;
        sendq_drop_locked(c);
        bool cancelled = c->recv_close_cancelled != 0 || !ok;
        pthread_mutex_unlock(&c->mu);
        atomic_fetch_add(&c->srv->calls_closed, 1);
        deliver_close(c, cancelled);
        break;
    }
    case TAG_RECV_MSG:
        on_recv_msg(c, ok);
        break;
    case TAG_SEND_MSG:
        pthread_mutex_lock(&c->mu);
        c->outstanding--;
        c->send_in_flight = false;
        c->queued_bytes -= c->inflight_len;
        if (c->inflight_bb)
            grpc_byte_buffer_destroy(c->inflight_bb);
        c->inflight_bb = NULL;
        c->inflight_len = 0;
        if (!ok)
            sendq_drop_locked(c); /* the stream is broken: nothing more gets out */
        else
            pump_locked(c);
        pthread_mutex_unlock(&c->mu);
        break;
    case TAG_INITIAL:
    case TAG_SEND_STATUS:
        pthread_mutex_lock(&c->mu);
        c->outstanding--;
        if (tag->kind == TAG_SEND_STATUS && c->inflight_bb && !c->send_in_flight) {
            grpc_byte_buffer_destroy(c->inflight_bb); /* unary response */
            c->inflight_bb = NULL;
        }
        pthread_mutex_unlock(&c->mu);
        break;
    default:
        break;
    }
    call_maybe_release(c);
}

/* ===== server thread ===== */

static void request_next_call(sim_server_t *s)
{
    if (atomic_load(&s->stopping))
        return;
    grpc_call_details_init(&s->new_details);
    grpc_metadata_array_init(&s->new_md);
    s->new_call = NULL;
    grpc_call_error e = grpc_server_request_call(s->gs, &s->new_call, &s->new_details,
                                                 &s->new_md, s->cq, s->cq, &s->t_new_call);
    if (e != GRPC_CALL_OK) {
        tkc_log(TKC_LOG_ERROR, "sim_server", "event=request_call_failed server=%s err=%d",
                s->name, (int)e);
        grpc_call_details_destroy(&s->new_details);
        grpc_metadata_array_destroy(&s->new_md);
        return;
    }
    s->request_outstanding = true;
}

static void *server_thread(void *arg)
{
    sim_server_t *s = arg;
    int64_t next_tick = s->tick ? tkc_clock_mono_ms() + s->tick_ms : 0;
    request_next_call(s);
    for (;;) {
        if (s->shutdown_done && s->live_count == 0 && !s->request_outstanding)
            break;
        int64_t now = tkc_clock_mono_ms();
        int64_t wait_ms = SIM_SERVER_IDLE_WAIT_MS;
        if (s->tick) {
            wait_ms = next_tick - now;
            if (wait_ms < 0)
                wait_ms = 0;
        }
        gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                             gpr_time_from_millis(wait_ms, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(s->cq, deadline, NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            sim_tag_t *tag = ev.tag;
            if (tag->kind == TAG_NEW_CALL) {
                s->request_outstanding = false;
                if (ev.success) {
                    call_start(s);
                } else {
                    /* shutting down: the pending request is cancelled */
                    grpc_call_details_destroy(&s->new_details);
                    grpc_metadata_array_destroy(&s->new_md);
                }
                request_next_call(s);
            } else if (tag->kind == TAG_SHUTDOWN) {
                s->shutdown_done = true;
            } else {
                on_call_event(tag, ev.success != 0);
            }
        } else if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            break;
        }
        /* Ticks run between events too, so a busy queue cannot starve them. */
        if (s->tick && !atomic_load(&s->stopping)) {
            now = tkc_clock_mono_ms();
            if (now >= next_tick) {
                s->tick(s->tick_opaque);
                next_tick += s->tick_ms;
                if (next_tick <= now)
                    next_tick = now + s->tick_ms;
            }
        }
    }
    return NULL;
}

/* ===== public API ===== */

const char *sim_call_metadata(const sim_call_t *call, const char *key)
{
    for (size_t i = 0; i < call->n_md; i++)
        if (strcasecmp(call->md[i].key, key) == 0)
            return call->md[i].value;
    return NULL;
}

const char *sim_call_method(const sim_call_t *call)
{
    return call->method;
}

void sim_call_set_opaque(sim_call_t *call, void *opaque)
{
    call->opaque = opaque;
}

void *sim_call_get_opaque(const sim_call_t *call)
{
    return call->opaque;
}

uint64_t sim_call_id(const sim_call_t *call)
{
    return call->id;
}

int sim_call_send(sim_call_t *c, const uint8_t *data, size_t len, size_t *queued_bytes_out)
{
    /* Build the buffer before taking the lock: the copy can be large. */
    grpc_byte_buffer *bb = bb_from_bytes(data, len);
    pthread_mutex_lock(&c->mu);
    if (c->completed || c->finish_requested) {
        if (queued_bytes_out)
            *queued_bytes_out = c->queued_bytes;
        pthread_mutex_unlock(&c->mu);
        grpc_byte_buffer_destroy(bb);
        return -1;
    }
    sendq_item_t *it = tkc_malloc(sizeof(*it));
    it->next = NULL;
    it->bb = bb;
    it->len = len;
    if (c->q_tail)
        c->q_tail->next = it;
    else
        c->q_head = it;
    c->q_tail = it;
    c->queued_bytes += len;
    pump_locked(c);
    if (queued_bytes_out)
        *queued_bytes_out = c->queued_bytes;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

size_t sim_call_queued_bytes(sim_call_t *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->queued_bytes;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void sim_call_finish(sim_call_t *c, grpc_status_code status, const char *details)
{
    pthread_mutex_lock(&c->mu);
    if (!c->finish_requested && !c->completed) {
        c->finish_requested = true;
        c->fin_status = status;
        c->fin_details = tkc_strdup(details ? details : "");
        pump_locked(c);
    }
    pthread_mutex_unlock(&c->mu);
}

void sim_call_abort(sim_call_t *c, grpc_status_code status, const char *details)
{
    pthread_mutex_lock(&c->mu);
    if (!c->completed && !c->status_sent) {
        c->finish_requested = true;
        c->status_sent = true;
        sendq_drop_locked(c);
        /* Thread-safe per grpc.h; ends the call at once with this status,
         * even with a message in flight (it is dropped). */
        grpc_call_cancel_with_status(c->call, status, details ? details : "", NULL);
    }
    pthread_mutex_unlock(&c->mu);
}

void sim_call_stall(sim_call_t *c, bool stalled)
{
    pthread_mutex_lock(&c->mu);
    c->stalled = stalled;
    if (!stalled)
        pump_locked(c);
    pthread_mutex_unlock(&c->mu);
}

sim_server_t *sim_server_new(const char *name, const char *addr)
{
    grpc_init(); /* refcounted; matched in sim_server_destroy */
    sim_server_t *s = tkc_calloc(1, sizeof(*s));
    s->name = tkc_strdup(name);
    s->addr = tkc_strdup(addr);
    s->t_new_call = (sim_tag_t){TAG_NEW_CALL, NULL};
    s->t_shutdown = (sim_tag_t){TAG_SHUTDOWN, NULL};
    atomic_init(&s->running, false);
    atomic_init(&s->stopping, false);
    atomic_init(&s->calls_opened, 0);
    atomic_init(&s->calls_closed, 0);
    return s;
}

static void add_handler(sim_server_t *s, const handler_t *h)
{
    s->handlers = tkc_realloc(s->handlers, (s->n_handlers + 1) * sizeof(*s->handlers));
    s->handlers[s->n_handlers++] = *h;
}

void sim_server_add_unary(sim_server_t *s, const char *method, sim_unary_fn fn, void *opaque)
{
    handler_t h = {.method = tkc_strdup(method), .stream = false, .unary = fn, .opaque = opaque};
    add_handler(s, &h);
}

void sim_server_add_stream(sim_server_t *s, const char *method, const sim_stream_handler_t *sh,
                           void *opaque)
{
    handler_t h = {.method = tkc_strdup(method), .stream = true, .sh = *sh, .opaque = opaque};
    add_handler(s, &h);
}

void sim_server_set_tick(sim_server_t *s, int interval_ms, void (*tick)(void *opaque),
                         void *opaque)
{
    s->tick = tick;
    s->tick_opaque = opaque;
    s->tick_ms = interval_ms > 0 ? interval_ms : 1;
}

static grpc_server *create_grpc_server(void)
{
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, .value.integer = -1},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_CONCURRENT_STREAMS, .value.integer = 1024},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIME_MS, .value.integer = 10000},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS, .value.integer = 3000},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         .value.integer = 1},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         .value.integer = 1000},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_HTTP2_MAX_PING_STRIKES, .value.integer = 0},
        /* a restarted store must get exactly its old port back, never share
         * it with a stale listener */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
    };
    grpc_channel_args ca = {.num_args = sizeof(args) / sizeof(args[0]), .args = args};
    return grpc_server_create(&ca, NULL);
}

int sim_server_start(sim_server_t *s)
{
    if (atomic_load(&s->running))
        return s->port;
    int port = 0;
    for (int attempt = 0; attempt < SIM_SERVER_BIND_RETRIES; attempt++) {
        s->gs = create_grpc_server();
        s->cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s->gs, s->cq, NULL);
        grpc_server_credentials *sc = grpc_insecure_server_credentials_create();
        port = grpc_server_add_http2_port(s->gs, s->addr, sc);
        grpc_server_credentials_release(sc);
        if (port > 0)
            break;
        /* An unstarted server can be destroyed directly. */
        grpc_server_destroy(s->gs);
        grpc_completion_queue_shutdown(s->cq);
        while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(s->cq);
        s->gs = NULL;
        s->cq = NULL;
        /* Port 0 never needs a retry; a fixed port may still be held briefly
         * by the listener of the previous incarnation. */
        const char *colon = strrchr(s->addr, ':');
        if (!colon || atoi(colon + 1) == 0)
            break;
        usleep(SIM_SERVER_BIND_RETRY_MS * 1000);
    }
    if (port <= 0) {
        tkc_log(TKC_LOG_ERROR, "sim_server", "event=bind_failed server=%s addr=%s", s->name,
                s->addr);
        return -1;
    }
    if (s->port != port) {
        /* Remember the port so that a restart binds the same address. */
        char buf[80];
        const char *colon = strrchr(s->addr, ':');
        int hostlen = colon ? (int)(colon - s->addr) : (int)strlen(s->addr);
        snprintf(buf, sizeof(buf), "%.*s:%d", hostlen, s->addr, port);
        tkc_free(s->addr);
        s->addr = tkc_strdup(buf);
        s->port = port;
    }
    grpc_server_start(s->gs);
    s->shutdown_done = false;
    s->request_outstanding = false;
    atomic_store(&s->stopping, false);
    atomic_store(&s->running, true);
    if (pthread_create(&s->thread, NULL, server_thread, s) != 0) {
        tkc_log(TKC_LOG_ERROR, "sim_server", "event=thread_failed server=%s", s->name);
        abort();
    }
    tkc_log(TKC_LOG_INFO, "sim_server", "event=started server=%s addr=%s", s->name, s->addr);
    return port;
}

void sim_server_stop(sim_server_t *s)
{
    if (!atomic_load(&s->running))
        return;
    atomic_store(&s->stopping, true);
    grpc_server_shutdown_and_notify(s->gs, s->cq, &s->t_shutdown);
    grpc_server_cancel_all_calls(s->gs);
    pthread_join(s->thread, NULL);
    grpc_server_destroy(s->gs);
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(s->cq);
    s->gs = NULL;
    s->cq = NULL;
    atomic_store(&s->running, false);
    tkc_log(TKC_LOG_INFO, "sim_server", "event=stopped server=%s addr=%s", s->name, s->addr);
}

int sim_server_port(const sim_server_t *s)
{
    return s->port;
}

bool sim_server_running(const sim_server_t *s)
{
    return atomic_load(&((sim_server_t *)s)->running);
}

void sim_server_set_addr(sim_server_t *s, const char *addr)
{
    tkc_free(s->addr);
    s->addr = tkc_strdup(addr);
    s->port = 0;
}

const char *sim_server_addr(const sim_server_t *s)
{
    return s->addr;
}

const char *sim_server_name(const sim_server_t *s)
{
    return s->name;
}

uint64_t sim_server_calls_opened(const sim_server_t *s)
{
    return atomic_load(&((sim_server_t *)s)->calls_opened);
}

uint64_t sim_server_calls_closed(const sim_server_t *s)
{
    return atomic_load(&((sim_server_t *)s)->calls_closed);
}

void sim_server_destroy(sim_server_t *s)
{
    if (!s)
        return;
    sim_server_stop(s);
    for (size_t i = 0; i < s->n_handlers; i++)
        tkc_free(s->handlers[i].method);
    tkc_free(s->handlers);
    tkc_free(s->name);
    tkc_free(s->addr);
    tkc_free(s);
    grpc_shutdown();
}
