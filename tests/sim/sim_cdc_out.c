/*
 * sim_cdc_out.c: the output path of tikv-sim's ChangeData service (see
 * sim_cdc.c for the whole design).
 *
 * Per connection, an ordered queue of items. An EVENTS item collects Events:
 * rows of a subscription are appended to that subscription's slot in the
 * newest item (one Event per subscription per item and per 32 KiB chunk),
 * errors and deprecated per-region resolved ts are pre-packed Events in their
 * own slot. A MSG item is one pre-packed ChangeDataEvent (a batched
 * ResolvedTs, always alone in its message, or an injected message). Rows are
 * copied into the item's arena as ready-made Cdcpb__Event__Row structs, so
 * queueing a row costs no malloc and packing is one protobuf-c pass per
 * chunk, framed by hand into ChangeDataEvent field 1.
 *
 * Queueing runs under the model lock (observer, registrations, rounds);
 * cdc_store_flush runs on the store's server thread, detaches the queues
 * under the lock and packs + sends outside it. A call whose gRPC send queue
 * is over the high-water mark (a slow reader) gets slices of its oldest item
 * at growing intervals, so the rest stays queued here where the sink memory
 * quota sees it; items go out in order, so what was queued for a
 * subscription before its error or a resolved ts reaches the client first.
 */
#include "sim_cdc_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/mem.h"

/* ===== small containers ===== */


void *cdc_arena_alloc(arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_chunk_t *c = a->head;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = a->next_cap ? a->next_cap : 4096;
        if (a->next_cap < (1u << 20))
            a->next_cap = cap * 2;
        if (cap < n)
            cap = n;
        c = tkc_malloc(sizeof(*c) + cap);
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = (uint8_t *)c->data + c->used;
    c->used += n;
    return p;
}

void cdc_arena_free(arena_t *a)
{
    arena_chunk_t *c = a->head;
    while (c) {
        arena_chunk_t *n = c->next;
        tkc_free(c);
        c = n;
    }
    a->head = NULL;
    a->next_cap = 0;
}


static inline size_t map_hash(uint64_t a, uint64_t b)
{
    uint64_t x = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (size_t)x;
}

void *cdc_map_get(const u2map_t *m, uint64_t a, uint64_t b)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = map_hash(a, b) & mask;; i = (i + 1) & mask) {
        const u2ent_t *e = &m->t[i];
        if (e->v == NULL)
            return NULL;
        if (e->a == a && e->b == b)
            return e->v;
    }
}

static void map_grow(u2map_t *m)
{
    u2map_t n = {.cap = m->cap ? m->cap * 2 : 64};
    n.t = tkc_calloc(n.cap, sizeof(*n.t));
    for (size_t i = 0; i < m->cap; i++)
        if (m->t[i].v)
            cdc_map_put(&n, m->t[i].a, m->t[i].b, m->t[i].v);
    tkc_free(m->t);
    *m = n;
}

/* Inserts or replaces. */
void cdc_map_put(u2map_t *m, uint64_t a, uint64_t b, void *v)
{
    if ((m->n + 1) * 10 > m->cap * 7)
        map_grow(m);
    size_t mask = m->cap - 1;
    for (size_t i = map_hash(a, b) & mask;; i = (i + 1) & mask) {
        u2ent_t *e = &m->t[i];
        if (e->v == NULL) {
            e->a = a;
            e->b = b;
            e->v = v;
            m->n++;
            return;
        }
        if (e->a == a && e->b == b) {
            e->v = v;
            return;
        }
    }
}

void cdc_map_del(u2map_t *m, uint64_t a, uint64_t b)
{
    if (m->cap == 0)
        return;
    size_t mask = m->cap - 1;
    size_t i = map_hash(a, b) & mask;
    for (;; i = (i + 1) & mask) {
        if (m->t[i].v == NULL)
            return;
        if (m->t[i].a == a && m->t[i].b == b)
            break;
    }
    m->n--;
    /* Backward shift: move later entries of the probe run into the hole
     * unless their home slot lies cyclically in (hole, j]. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->t[j].v != NULL; j = (j + 1) & mask) {
        size_t home = map_hash(m->t[j].a, m->t[j].b) & mask;
        bool stays = (hole <= j) ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            m->t[hole] = m->t[j];
            hole = j;
        }
    }
    m->t[hole].v = NULL;
}

void cdc_map_free(u2map_t *m)
{
    tkc_free(m->t);
    m->t = NULL;
    m->cap = m->n = 0;
}

void cdc_count_error(store_t *st, errkind_t k)
{
    sim_cdc_stats_t *s = &st->stats;
    switch (k) {
    case ERR_NOT_LEADER: s->err_not_leader++; break;
    case ERR_REGION_NOT_FOUND: s->err_region_not_found++; break;
    case ERR_EPOCH_NOT_MATCH: s->err_epoch_not_match++; break;
    case ERR_DUPLICATE_REQUEST: s->err_duplicate_request++; break;
    case ERR_COMPATIBILITY: s->err_compatibility++; break;
    case ERR_CLUSTER_ID_MISMATCH: s->err_cluster_id_mismatch++; break;
    case ERR_SERVER_IS_BUSY: s->err_server_is_busy++; break;
    case ERR_CONGESTED: s->err_congested++; break;
    }
}

void cdc_count_row(store_t *st, int type)
{
    switch (type) {
    case CDCPB__EVENT__LOG_TYPE__PREWRITE: st->stats.rows_prewrite++; break;
    case CDCPB__EVENT__LOG_TYPE__COMMIT: st->stats.rows_commit++; break;
    case CDCPB__EVENT__LOG_TYPE__ROLLBACK: st->stats.rows_rollback++; break;
    case CDCPB__EVENT__LOG_TYPE__COMMITTED: st->stats.rows_committed++; break;
    case CDCPB__EVENT__LOG_TYPE__INITIALIZED: st->stats.rows_initialized++; break;
    default: break;
    }
}

/* ===== output queue (model lock held) ===== */

void cdc_out_free(out_t *o)
{
    cdc_arena_free(&o->arena);
    tkc_free(o->slots);
    tkc_free(o->msg);
    tkc_free(o);
}

void cdc_conn_push_out(conn_t *c, out_t *o)
{
    /* output after a quiet spell: the last known queue size is stale, so
     * let the next flush try at once */
    if (c->out_head == NULL)
        c->probe_tick = 0;
    o->seq = ++c->out_seq;
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    atomic_store_explicit(&c->st->dirty, true, memory_order_relaxed);
}

void cdc_conn_account(conn_t *c, out_t *o, size_t sz)
{
    o->bytes += sz;
    c->out_bytes += sz;
    c->st->buffered += sz;
}

/* The newest EVENTS item, opening one when the tail is a message or full. */
static out_t *conn_events_tail(conn_t *c)
{
    out_t *t = c->out_tail;
    if (t && t->kind == OUT_EVENTS && !t->sealed && t->bytes < c->st->cdc->cfg.max_message_bytes)
        return t;
    t = tkc_calloc(1, sizeof(*t));
    t->kind = OUT_EVENTS;
    cdc_conn_push_out(c, t);
    return t;
}

static slot_t *out_new_slot(out_t *o, uint64_t region_id, uint64_t request_id)
{
    if (o->n_slots == o->cap_slots) {
        o->cap_slots = o->cap_slots ? o->cap_slots * 2 : 16;
        o->slots = tkc_realloc(o->slots, o->cap_slots * sizeof(*o->slots));
    }
    slot_t *s = &o->slots[o->n_slots++];
    memset(s, 0, sizeof(*s));
    s->region_id = region_id;
    s->request_id = request_id;
    return s;
}

static void slot_push_row(out_t *o, slot_t *s, Cdcpb__Event__Row *row)
{
    if (s->n == s->cap) {
        /* grow inside the arena: the old array is simply abandoned there */
        uint32_t ncap = s->cap ? s->cap * 2 : 8;
        Cdcpb__Event__Row **nr = cdc_arena_alloc(&o->arena, ncap * sizeof(*nr));
        if (s->n)
            memcpy(nr, s->rows, s->n * sizeof(*nr));
        s->rows = nr;
        s->cap = ncap;
    }
    s->rows[s->n++] = row;
}

static Cdcpb__Event__Row *out_copy_row(out_t *o, const rowspec_t *r)
{
    size_t need = sizeof(Cdcpb__Event__Row) + r->klen + r->vlen + r->olen;
    Cdcpb__Event__Row *row = cdc_arena_alloc(&o->arena, need);
    cdcpb__event__row__init(row);
    uint8_t *p = (uint8_t *)(row + 1);
    row->type = (Cdcpb__Event__LogType)r->type;
    row->op_type = (Cdcpb__Event__Row__OpType)r->op;
    row->start_ts = r->start_ts;
    row->commit_ts = r->commit_ts;
    row->generation = r->generation;
    if (r->klen) {
        memcpy(p, r->key, r->klen);
        row->key.data = p;
        row->key.len = r->klen;
        p += r->klen;
    }
    if (r->vlen) {
        memcpy(p, r->val, r->vlen);
        row->value.data = p;
        row->value.len = r->vlen;
        p += r->vlen;
    }
    if (r->olen) {
        memcpy(p, r->old, r->olen);
        row->old_value.data = p;
        row->old_value.len = r->olen;
    }
    return row;
}

/* Queues a row of subscription @p s (its own slot in the newest item). */
void cdc_sub_queue_row(sub_t *s, const rowspec_t *r)
{
    conn_t *c = s->conn;
    out_t *o = conn_events_tail(c);
    slot_t *slot;
    if (s->slot_seq == o->seq) {
        slot = &o->slots[s->slot_idx];
    } else {
        slot = out_new_slot(o, s->region_id, s->request_id);
        s->slot_seq = o->seq;
        s->slot_idx = (uint32_t)(o->n_slots - 1);
    }
    slot_push_row(o, slot, out_copy_row(o, r));
    cdc_conn_account(c, o, r->klen + r->vlen + r->olen + ROW_OVERHEAD);
    cdc_count_row(c->st, r->type);
}

/* Queues a row under an arbitrary request_id (injection), in its own slot. */
void cdc_conn_queue_row_as(conn_t *c, uint64_t region_id, uint64_t request_id,
                              const rowspec_t *r)
{
    out_t *o = conn_events_tail(c);
    slot_t *slot = out_new_slot(o, region_id, request_id);
    slot_push_row(o, slot, out_copy_row(o, r));
    cdc_conn_account(c, o, r->klen + r->vlen + r->olen + ROW_OVERHEAD);
    cdc_count_row(c->st, r->type);
}

/* Queues one pre-packed Event. */
void cdc_conn_queue_event(conn_t *c, const Cdcpb__Event *ev)
{
    out_t *o = conn_events_tail(c);
    slot_t *slot = out_new_slot(o, ev->region_id, ev->request_id);
    size_t n = cdcpb__event__get_packed_size(ev);
    slot->raw = cdc_arena_alloc(&o->arena, n ? n : 1);
    slot->raw_len = cdcpb__event__pack(ev, slot->raw);
    cdc_conn_account(c, o, n + 16);
}

void cdc_conn_queue_error(conn_t *c, uint64_t region_id, uint64_t request_id,
                             Cdcpb__Error *err, errkind_t kind)
{
    Cdcpb__Event ev = CDCPB__EVENT__INIT;
    ev.region_id = region_id;
    ev.request_id = request_id;
    ev.event_case = CDCPB__EVENT__EVENT_ERROR;
    ev.error = err;
    cdc_conn_queue_event(c, &ev);
    cdc_count_error(c->st, kind);
}

/* Queues one whole message (copied). */
void cdc_conn_queue_msg(conn_t *c, const uint8_t *data, size_t len)
{
    out_t *o = tkc_calloc(1, sizeof(*o));
    o->kind = OUT_MSG;
    o->msg = tkc_malloc(len ? len : 1);
    if (len)
        memcpy(o->msg, data, len);
    o->msg_len = len;
    cdc_conn_push_out(c, o);
    cdc_conn_account(c, o, len);
}

void cdc_conn_drop_outs(conn_t *c)
{
    out_t *o = c->out_head;
    while (o) {
        out_t *n = o->next;
        cdc_out_free(o);
        o = n;
    }
    c->out_head = c->out_tail = NULL;
    c->st->buffered -= c->out_bytes;
    c->out_bytes = 0;
    c->drop_gen++;
}

/* ===== sending (server thread, model lock NOT held) ===== */

static void pack_reserve(store_t *st, size_t need)
{
    if (st->pack_cap >= need)
        return;
    size_t cap = st->pack_cap ? st->pack_cap : 64 * 1024;
    while (cap < need)
        cap *= 2;
    st->pack = tkc_realloc(st->pack, cap);
    st->pack_cap = cap;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

typedef struct {
    store_t *st;
    sim_call_t *call;
    size_t len;
    uint64_t msgs, bytes;
    size_t queued;
    bool failed;
} sender_t;

static void sender_flush(sender_t *sd)
{
    if (sd->len == 0)
        return;
    if (!sd->failed) {
        size_t q = 0;
        if (sim_call_send(sd->call, sd->st->pack, sd->len, &q) != 0) {
            sd->failed = true;
        } else {
            sd->msgs++;
            sd->bytes += sd->len;
            sd->queued = q;
        }
    }
    sd->len = 0;
}

/* Appends one Event (field 1 of ChangeDataEvent) to the message being built,
 * sending the message first when the Event would push it past the limit. */
static void sender_add_event(sender_t *sd, const Cdcpb__Event *ev, const uint8_t *raw,
                             size_t raw_len)
{
    store_t *st = sd->st;
    size_t n = raw ? raw_len : cdcpb__event__get_packed_size(ev);
    size_t framed = 1 + 10 + n;
    if (sd->len > 0 && sd->len + framed > st->cdc->cfg.max_message_bytes)
        sender_flush(sd);
    pack_reserve(st, sd->len + framed);
    uint8_t *p = st->pack + sd->len;
    p[0] = 0x0a; /* field 1, length-delimited */
    size_t h = 1 + put_varint(p + 1, n);
    if (raw)
        memcpy(p + h, raw, raw_len);
    else
        cdcpb__event__pack(ev, p + h);
    sd->len += h + n;
}

/*
 * Packs and sends item @p o from where it stopped last time. With a
 * @p budget (probing a slow call) it stops after about that many bytes and
 * @returns false, recording the position and adding the accounted size of
 * what went out to *acct_sent; otherwise it sends everything and @returns
 * true.
 */
static bool send_out(sender_t *sd, out_t *o, size_t budget, size_t *acct_sent)
{
    if (o->kind == OUT_MSG) {
        sender_flush(sd);
        pack_reserve(sd->st, o->msg_len + 1);
        memcpy(sd->st->pack, o->msg, o->msg_len);
        sd->len = o->msg_len;
        /* an empty message is still one message on the wire */
        if (!sd->failed) {
            size_t q = 0;
            if (sim_call_send(sd->call, sd->st->pack, sd->len, &q) != 0) {
                sd->failed = true;
            } else {
                sd->msgs++;
                sd->bytes += sd->len;
                sd->queued = q;
            }
        }
        sd->len = 0;
        return true;
    }
    size_t chunk_max = sd->st->cdc->cfg.entries_chunk_bytes;
    size_t start_bytes = sd->bytes + sd->len;
    for (size_t i = o->pos_slot; i < o->n_slots; i++) {
        const slot_t *s = &o->slots[i];
        if (budget && sd->bytes + sd->len - start_bytes >= budget) {
            o->pos_slot = i;
            return false;
        }
        if (s->raw) {
            sender_add_event(sd, NULL, s->raw, s->raw_len);
            *acct_sent += s->raw_len + 16;
            o->pos_row = 0;
            continue;
        }
        size_t a = o->pos_row;
        while (a < s->n) {
            if (budget && sd->bytes + sd->len - start_bytes >= budget) {
                o->pos_slot = i;
                o->pos_row = a;
                return false;
            }
            size_t b = a, chunk = 0;
            while (b < s->n) {
                const Cdcpb__Event__Row *r = s->rows[b];
                size_t rs = r->key.len + r->value.len + r->old_value.len + ROW_OVERHEAD;
                if (b > a && chunk + rs > chunk_max)
                    break;
                chunk += rs;
                b++;
            }
            Cdcpb__Event__Entries en = CDCPB__EVENT__ENTRIES__INIT;
            en.n_entries = b - a;
            en.entries = &s->rows[a];
            Cdcpb__Event ev = CDCPB__EVENT__INIT;
            ev.region_id = s->region_id;
            ev.request_id = s->request_id;
            ev.event_case = CDCPB__EVENT__EVENT_ENTRIES;
            ev.entries = &en;
            sender_add_event(sd, &ev, NULL, 0);
            *acct_sent += chunk;
            a = b;
        }
        o->pos_row = 0;
    }
    o->pos_slot = o->n_slots;
    /* Events of one item may share messages with the next item; ResolvedTs
     * items (OUT_MSG) flush first, which keeps them alone in a message. */
    return true;
}

/* ===== tick and flushing (server thread) ===== */

void cdc_store_flush(store_t *st, bool tick)
{
    sim_cdc_t *cdc = st->cdc;
    int64_t now = tkc_clock_mono_ms();
    size_t n_jobs = 0;

    sim_model_lock(cdc->m);
    if (tick) {
        st->ticks++;
        if (st->fifo_head)
            cdc_store_scan_progress(st);
        if (!st->down && now >= atomic_load(&st->next_resolved_ms)) {
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            cdc_store_resolved_round(st, now);
            clock_gettime(CLOCK_MONOTONIC, &b);
            uint64_t us = (uint64_t)((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000);
            st->stats.resolved_round_us_last = us;
            if (us > st->stats.resolved_round_us_max)
                st->stats.resolved_round_us_max = us;
            atomic_store(&st->next_resolved_ms, now + cdc->cfg.resolved_interval_ms);
        }
    }
    atomic_store_explicit(&st->dirty, false, memory_order_relaxed);
    bool more = st->fifo_head != NULL; /* work left for the next tick */
    for (conn_t *c = st->conns; c; c = c->next) {
        if (c->finished || c->closed)
            continue;
        bool has_out = c->out_head != NULL;
        if (!has_out && c->end_req < 0)
            continue;
        out_t *take = NULL;
        size_t budget = 0;
        if (has_out) {
            if (c->call_queued > cdc->call_high_water) {
                /* slow reader: probe with a slice of the oldest item, every
                 * tick while its queue shrinks, at doubling intervals while
                 * it does not */
                if (st->ticks >= c->probe_tick) {
                    take = c->out_head;
                    c->out_head = take->next;
                    if (c->out_head == NULL)
                        c->out_tail = NULL;
                    take->next = NULL;
                    take->sealed = true;
                    budget = cdc->call_high_water / 4;
                }
            } else {
                take = c->out_head;
                c->out_head = c->out_tail = NULL;
            }
            for (out_t *o = take; o; o = o->next) {
                c->out_bytes -= o->bytes;
                st->buffered -= o->bytes;
            }
        }
        int end_mode = -1;
        if (c->end_req >= 0 && c->out_head == NULL && budget == 0) {
            end_mode = c->end_req;
            c->end_req = -1;
            if (end_mode != SIM_CDC_END_STALL)
                c->finished = true;
        }
        if (c->out_head != NULL || c->end_req >= 0)
            more = true;
        if (take == NULL && end_mode < 0)
            continue;
        if (n_jobs == st->jobs_cap) {
            st->jobs_cap = st->jobs_cap ? st->jobs_cap * 2 : 16;
            st->jobs = tkc_realloc(st->jobs, st->jobs_cap * sizeof(*st->jobs));
        }
        st->jobs[n_jobs++] = (flush_job_t){.conn = c, .call = c->call, .outs = take,
                                           .budget = budget, .drop_gen = c->drop_gen,
                                           .queued = SIZE_MAX, .end_mode = end_mode};
    }
    if (more)
        atomic_store_explicit(&st->dirty, true, memory_order_relaxed);
    sim_model_unlock(cdc->m);

    if (n_jobs == 0)
        return;

    uint64_t msgs = 0, bytes = 0;
    for (size_t j = 0; j < n_jobs; j++) {
        flush_job_t *job = &st->jobs[j];
        sender_t sd = {.st = st, .call = job->call, .queued = SIZE_MAX};
        for (out_t *o = job->outs; o;) {
            size_t sent = 0;
            out_t *n = o->next;
            if (send_out(&sd, o, job->budget, &sent)) {
                cdc_out_free(o);
            } else {
                /* the unsent part goes back to the head of the queue */
                o->bytes = o->bytes > sent ? o->bytes - sent : 0;
                o->next = NULL;
                job->rest = o;
            }
            o = n;
        }
        sender_flush(&sd);
        msgs += sd.msgs;
        bytes += sd.bytes;
        job->queued = sd.queued;
        switch (job->end_mode) {
        case SIM_CDC_END_OK:
            sim_call_finish(job->call, GRPC_STATUS_OK, NULL);
            break;
        case SIM_CDC_END_UNKNOWN:
            sim_call_abort(job->call, GRPC_STATUS_UNKNOWN, "connection cancelled");
            break;
        case SIM_CDC_END_UNAVAILABLE:
            sim_call_abort(job->call, GRPC_STATUS_UNAVAILABLE, "store unavailable");
            break;
        case SIM_CDC_END_STALL:
            sim_call_stall(job->call, true);
            break;
        default:
            break;
        }
    }

    sim_model_lock(cdc->m);
    st->stats.messages_sent += msgs;
    st->stats.bytes_sent += bytes;
    for (size_t j = 0; j < n_jobs; j++) {
        flush_job_t *job = &st->jobs[j];
        conn_t *c = job->conn;
        if (job->rest) {
            if (c->drop_gen == job->drop_gen && !c->closed && !c->finished) {
                job->rest->next = c->out_head;
                c->out_head = job->rest;
                if (c->out_tail == NULL)
                    c->out_tail = job->rest;
                c->out_bytes += job->rest->bytes;
                st->buffered += job->rest->bytes;
                atomic_store_explicit(&st->dirty, true, memory_order_relaxed);
            } else {
                cdc_out_free(job->rest); /* the connection's output was dropped */
            }
        }
        if (job->queued == SIZE_MAX)
            continue; /* nothing was sent */
        if (job->budget) {
            /* probing: go on every tick while the queue shrinks */
            if (job->queued < c->call_queued)
                c->probe_gap = 1;
            else
                c->probe_gap = c->probe_gap ? c->probe_gap * 2 : 2;
            if (c->probe_gap > PROBE_MAX_TICKS)
                c->probe_gap = PROBE_MAX_TICKS;
            c->probe_tick = st->ticks + c->probe_gap;
        } else {
            c->probe_gap = 0;
        }
        c->call_queued = job->queued;
    }
    sim_model_unlock(cdc->m);
}
