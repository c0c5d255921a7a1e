/*
 * matcher.c: prewrite/commit pairing for one region registration
 * (tikv-cdc-protocol.md §4; TiCDC cdc/kv/matcher.go + handleEventEntry).
 *
 * Where the data comes from: the feed stream code translates every
 * Event.Row of the registration into a tkc_feed_row_t and calls
 * tkc_matcher_put(); committed changes leave as tkc_row_t through the emit
 * callback. Owned by the feed worker thread of the registration; no locks.
 *
 * Why it is needed: a COMMIT row carries no old value and often no value;
 * both come from the PREWRITE of the same (start_ts, key). During the
 * incremental scan real-time rows interleave with scan rows, so a COMMIT can
 * arrive before the PREWRITE the scan will send, hence the caches that wait
 * for INITIALIZED.
 *
 * Invariants:
 *   - a row is never emitted without its value: an unmatched COMMIT after
 *     INITIALIZED is an error, never a row with an empty value;
 *   - every emitted row has commit_ts > the region's resolved ts at the time
 *     of emission (violations are errors, §3.8 guarantee);
 *   - the resolved ts only moves after INITIALIZED and never backwards;
 *   - after an error the matcher refuses all input: the registration must be
 *     replaced, not continued.
 *
 * State: a hash map keyed by the 8-byte big-endian start_ts followed by the
 * raw key -> pending prewrite (value + old value); FIFO lists of COMMITs and
 * ROLLBACKs seen before INITIALIZED.
 *
 * Memory: there is one matcher per subscribed region, and most regions of a
 * large cluster are idle. So the matcher itself is small (the range is the
 * region's, borrowed, not copied; the feed even embeds the matcher in its
 * region block, tkc_matcher_init()), and the map and lists live in a separate
 * "pending" block that exists only while something is pending: created by
 * the first PREWRITE or cached row, freed when the last one is gone. An idle
 * region costs one small allocation here instead of four.
 *
 * Spilling: TiKV sends all PREWRITEs of a transaction before its COMMITs, so
 * a huge transaction would sit here whole. With a spill store (one per feed
 * worker, conf.spill) every pending prewrite is charged to the feed-wide
 * budget; one that does not fit keeps only a 32-byte stub (stub_t: lengths,
 * generation, op, file offset; the key is in the match key) and its bytes go
 * to the store. The COMMIT reads them back into a full row. The stub keeps
 * the real lengths, so the matching rules that look at value_len (fake
 * empty prewrites) see exactly what they would see in memory.
 */
#include "matcher.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hashmap.h"
#include "util/keycodec.h"
#include "util/keyrange.h"
#include "util/mem.h"

/*
 * A pending prewrite is the row it will become: key, value and old value
 * are copied once, at PREWRITE, and the COMMIT only fills in the
 * timestamps and hands the same allocation on (before, the value was copied
 * into a prewrite record and again into a new row at COMMIT: a second
 * malloc, copy and free per change on the feed thread). Until the COMMIT
 * the row's commit_ts is unknown, so that field holds the prewrite's
 * generation meanwhile (PW_GENERATION).
 */
typedef tkc_row_t prewrite_t;
#define PW_GENERATION(pw) ((pw)->commit_ts)

/*
 * A spilled prewrite: what the rules and the COMMIT need, without the key
 * (the match key holds start_ts and key, and the COMMIT brings both) and
 * without the bytes (in the spill file at off). 32 bytes instead of a
 * ~100-byte row header plus key: a huge transaction keeps one per key.
 *
 * The map holds either kind: a stub's pointer has its lowest bit set
 * (allocations are at least 8-aligned, so a row's never has).
 */
typedef struct stub_s {
    uint64_t off;
    uint64_t generation;
    uint32_t value_len, old_value_len;
    tkc_row_op_t op;
    bool has_old_value;
} stub_t;

static bool is_stub(const void *e)
{
    return ((uintptr_t)e & 1) != 0;
}

static stub_t *as_stub(const void *e)
{
    return (stub_t *)((uintptr_t)e & ~(uintptr_t)1);
}

static size_t entry_value_len(const void *e)
{
    return is_stub(e) ? as_stub(e)->value_len : ((const prewrite_t *)e)->value_len;
}

static uint64_t entry_generation(const void *e)
{
    return is_stub(e) ? as_stub(e)->generation : PW_GENERATION((const prewrite_t *)e);
}

/* bytes of memory the entry takes (what the budget counts) */
static size_t entry_mem(const void *e)
{
    return is_stub(e) ? sizeof(stub_t) : tkc_row_size(e);
}

/* A COMMIT or ROLLBACK waiting for INITIALIZED; the raw key follows. */
typedef struct cached_s {
    struct cached_s *next;
    uint64_t start_ts;
    uint64_t commit_ts;
    tkc_row_op_t op;
    size_t alloc_size;
    size_t key_len;
    uint8_t key[];
} cached_t;

typedef struct cache_list_s {
    cached_t *head, *tail;
    size_t count;
} cache_list_t;

/* what is pending; allocated only while something is */
typedef struct pending_s {
    tkc_hashmap_t *prewrites; /* match key -> prewrite_t */
    cache_list_t commits;
    cache_list_t rollbacks;
    size_t held_bytes; /* prewrite_t + cached_t allocations */
    size_t charged;    /* prewrite_t bytes charged to the spill budget */
    size_t spilled;    /* live record bytes of this matcher in the spill file */
    size_t n_spilled;  /* stubs among the prewrites */
} pending_t;

struct tkc_matcher_s {
    uint64_t region_id;
    uint64_t span_start_ts;
    uint64_t resolved_ts;
    const uint8_t *start; /* encoded range, borrowed (see tkc_matcher_conf_t) */
    const uint8_t *end;
    uint32_t start_len, end_len;
    uint32_t span_index;
    bool initialized;
    bool failed;
    pending_t *p; /* NULL while nothing is pending */
    tkc_prewrite_spill_t *spill; /* borrowed; NULL: no budget, no spilling */
    struct {      /* the counters of tkc_matcher_stats_t (the rest is computed) */
        uint64_t dropped_out_of_range, dropped_before_start, ignored_unmatched, emitted;
    } stats;
};

/* ===== match keys ===== */

/*
 * A match key is start_ts (8 bytes big-endian) + raw key. Small keys are
 * built on the stack; TiDB keys are tens of bytes, but raw KV keys may be
 * large, hence the heap fallback.
 */
typedef struct match_key_s {
    uint8_t *p;
    size_t len;
    uint8_t stack[256];
} match_key_t;

static void match_key_init(match_key_t *mk, uint64_t start_ts, const uint8_t *key, size_t key_len)
{
    mk->len = 8 + key_len;
    mk->p = mk->len <= sizeof(mk->stack) ? mk->stack : tkc_malloc(mk->len);
    for (int i = 0; i < 8; i++)
        mk->p[i] = (uint8_t)(start_ts >> (56 - 8 * i));
    if (key_len)
        memcpy(mk->p + 8, key, key_len);
}

static void match_key_fini(match_key_t *mk)
{
    if (mk->p != mk->stack)
        tkc_free(mk->p);
}

/* ===== helpers ===== */

static void prewrite_free(void *e)
{
    if (is_stub(e))
        tkc_free(as_stub(e));
    else
        tkc_row_destroy(e);
}

static pending_t *pending_get(tkc_matcher_t *m)
{
    if (!m->p) {
        m->p = tkc_calloc(1, sizeof(*m->p));
        m->p->prewrites = tkc_hashmap_new();
    }
    return m->p;
}

static void cache_list_free(cache_list_t *l);

/* Gives back what this matcher's pending block holds in the spill store. */
static void pending_free(tkc_matcher_t *m, pending_t *p)
{
    if (!p)
        return;
    if (m->spill) {
        tkc_prewrite_spill_uncharge(m->spill, p->charged);
        tkc_prewrite_spill_release(m->spill, p->spilled);
    }
    tkc_hashmap_destroy(p->prewrites, prewrite_free);
    cache_list_free(&p->commits);
    cache_list_free(&p->rollbacks);
    tkc_free(p);
}

/* Frees the pending block once nothing is left in it. */
static void pending_release_if_empty(tkc_matcher_t *m)
{
    pending_t *p = m->p;
    if (p && !p->commits.head && !p->rollbacks.head && tkc_hashmap_count(p->prewrites) == 0) {
        pending_free(m, p);
        m->p = NULL;
    }
}

static void cache_list_free(cache_list_t *l)
{
    cached_t *c = l->head;
    while (c) {
        cached_t *next = c->next;
        tkc_free(c);
        c = next;
    }
    l->head = l->tail = NULL;
    l->count = 0;
}

static void cache_push(pending_t *p, cache_list_t *l, const tkc_feed_row_t *row)
{
    size_t size = sizeof(cached_t) + row->key_len;
    cached_t *c = tkc_malloc(size);
    c->next = NULL;
    c->start_ts = row->start_ts;
    c->commit_ts = row->commit_ts;
    c->op = row->op;
    c->alloc_size = size;
    c->key_len = row->key_len;
    if (row->key_len)
        memcpy(c->key, row->key, row->key_len);
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    l->count++;
    p->held_bytes += size;
}

/* Writes at most 64 key bytes as hex, marking truncation. */
static void key_hex(const uint8_t *key, size_t len, char *out, size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = len > 64 ? 64 : len, o = 0;
    for (size_t i = 0; i < n && o + 3 < out_size; i++) {
        out[o++] = hex[key[i] >> 4];
        out[o++] = hex[key[i] & 15];
    }
    if (n < len && o + 4 < out_size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static tkc_err_t fail(tkc_matcher_t *m, tkc_err_t err, const char *what, const uint8_t *key,
                      size_t key_len, uint64_t start_ts, uint64_t commit_ts, char *errstr,
                      size_t errstr_size)
{
    m->failed = true;
    if (errstr && errstr_size) {
        char kh[140];
        key_hex(key, key_len, kh, sizeof(kh));
        snprintf(errstr, errstr_size,
                 "%s: region_id=%" PRIu64 " key=%s start_ts=%" PRIu64 " commit_ts=%" PRIu64
                 " resolved_ts=%" PRIu64,
                 what, m->region_id, kh, start_ts, commit_ts, m->resolved_ts);
    }
    return err;
}

static bool in_range(const tkc_matcher_t *m, const uint8_t *key, size_t key_len)
{
    uint8_t stack[512];
    size_t elen = tkc_keycodec_encoded_len(key_len);
    uint8_t *enc = elen <= sizeof(stack) ? stack : tkc_malloc(elen);
    tkc_keycodec_encode(key, key_len, enc);
    bool in = tkc_keycodec_cmp(enc, elen, m->start, m->start_len) >= 0 &&
              (m->end_len == 0 || tkc_keycodec_cmp(enc, elen, m->end, m->end_len) < 0);
    if (enc != stack)
        tkc_free(enc);
    return in;
}

/* ===== pending prewrite accounting and spilling ===== */

static size_t stub_record_size(const stub_t *st)
{
    return tkc_prewrite_spill_record_size(st->value_len, st->old_value_len);
}

/* Counts entry @p e as held by the pending block (and in the budget). */
static void pw_account_add(tkc_matcher_t *m, pending_t *p, const void *e)
{
    size_t size = entry_mem(e);
    p->held_bytes += size;
    if (m->spill) {
        tkc_prewrite_spill_charge(m->spill, size);
        p->charged += size;
    }
    if (is_stub(e)) {
        p->spilled += stub_record_size(as_stub(e));
        p->n_spilled++;
    }
}

/* Undoes pw_account_add(), except the spill record, which stays live for
 * pw_restore() or pw_discard(). */
static void pw_account_remove(tkc_matcher_t *m, pending_t *p, const void *e)
{
    size_t size = entry_mem(e);
    p->held_bytes -= size;
    if (m->spill) {
        tkc_prewrite_spill_uncharge(m->spill, size);
        p->charged -= size;
    }
    if (is_stub(e)) {
        p->spilled -= stub_record_size(as_stub(e));
        p->n_spilled--;
    }
}

/* Frees an entry already removed from the map and the accounting. */
static void pw_discard(tkc_matcher_t *m, void *e)
{
    if (is_stub(e))
        tkc_prewrite_spill_release(m->spill, stub_record_size(as_stub(e)));
    prewrite_free(e);
}

/*
 * Turns an entry taken out of the map into its full row: a stub's value and
 * old value are read back from the spill file (and the record released);
 * the key and start ts are the COMMIT's (the same as the match key's).
 * Takes ownership of @p e.
 * @returns TKC_ERR_OK with *@p out the row, or the store's error with the
 *          matcher failed and @p errstr set.
 */
static tkc_err_t pw_restore(tkc_matcher_t *m, void *e, const uint8_t *key, size_t key_len,
                            uint64_t start_ts, uint64_t commit_ts, prewrite_t **out, char *errstr,
                            size_t errstr_size)
{
    *out = NULL;
    if (!is_stub(e)) {
        *out = e;
        return TKC_ERR_OK;
    }
    stub_t *st = as_stub(e);
    size_t vlen = st->value_len, ovlen = st->old_value_len;
    /* the layout of tkc_row_new() (one block: key, value, old value), with
     * the two strings read straight from the file into it */
    size_t size = sizeof(tkc_row_t) + key_len + vlen + ovlen;
    tkc_row_t *r = tkc_malloc(size);
    memset(r, 0, sizeof(*r));
    r->op = st->op;
    r->alloc_size = size;
    uint8_t *d = r->data;
    r->key = d;
    r->key_len = key_len;
    if (key_len)
        memcpy(d, key, key_len);
    r->value = d + key_len;
    r->value_len = vlen;
    r->old_value = d + key_len + vlen;
    r->old_value_len = ovlen;
    r->has_old_value = st->has_old_value;
    r->start_ts = start_ts;
    char detail[160] = "";
    tkc_err_t err = tkc_prewrite_spill_get(m->spill, st->off, (uint8_t *)r->value, vlen,
                                           (uint8_t *)r->old_value, ovlen, detail, sizeof(detail));
    tkc_prewrite_spill_release(m->spill, stub_record_size(st));
    tkc_free(st);
    if (err != TKC_ERR_OK) {
        char what[224];
        snprintf(what, sizeof(what), "spilled prewrite unreadable (%s)", detail);
        fail(m, err, what, key, key_len, start_ts, commit_ts, errstr, errstr_size);
        tkc_row_destroy(r);
        return err;
    }
    *out = r;
    return TKC_ERR_OK;
}

/*
 * Looks up and, if usable, removes the prewrite of (start_ts, key).
 * Before INITIALIZED a prewrite with an empty value (maybe a heartbeat that
 * arrived before the real one) or with generation > 0 (pipelined DML, whose
 * generations may come out of order during the scan) is left in place.
 * @returns the map entry (owned by the caller; pw_restore() it) or NULL.
 */
static void *take_prewrite(tkc_matcher_t *m, uint64_t start_ts, const uint8_t *key,
                           size_t key_len)
{
    pending_t *p = m->p;
    if (!p)
        return NULL;
    match_key_t mk;
    match_key_init(&mk, start_ts, key, key_len);
    void *e = tkc_hashmap_get(p->prewrites, mk.p, mk.len);
    if (e && !m->initialized && (entry_value_len(e) == 0 || entry_generation(e) > 0))
        e = NULL;
    if (e) {
        tkc_hashmap_remove(p->prewrites, mk.p, mk.len);
        pw_account_remove(m, p, e);
    }
    match_key_fini(&mk);
    return e;
}

static void drop_prewrite(tkc_matcher_t *m, uint64_t start_ts, const uint8_t *key, size_t key_len)
{
    pending_t *p = m->p;
    if (!p)
        return;
    match_key_t mk;
    match_key_init(&mk, start_ts, key, key_len);
    void *e = tkc_hashmap_remove(p->prewrites, mk.p, mk.len);
    if (e) {
        pw_account_remove(m, p, e);
        pw_discard(m, e);
    }
    match_key_fini(&mk);
}

/* ===== rules ===== */

static tkc_err_t put_prewrite(tkc_matcher_t *m, const tkc_feed_row_t *row, char *errstr,
                              size_t errstr_size)
{
    pending_t *p = pending_get(m);
    match_key_t mk;
    match_key_init(&mk, row->start_ts, row->key, row->key_len);
    void *old = tkc_hashmap_get(p->prewrites, mk.p, mk.len);
    if (old) {
        /*
         * TiKV may send a "fake" prewrite with an empty value for the same
         * lock (txn heartbeat, min_commit_ts push); it must not overwrite the
         * real value. And for pipelined DML the newest generation wins, so a
         * late lower generation is ignored.
         */
        if (row->value_len == 0 || row->generation < entry_generation(old)) {
            match_key_fini(&mk);
            return TKC_ERR_OK;
        }
    }
    void *e;
    size_t payload = row->value_len + row->old_value_len;
    if (m->spill &&
        tkc_prewrite_spill_wanted(m->spill, sizeof(tkc_row_t) + row->key_len + payload, payload)) {
        uint64_t off = 0;
        char detail[160] = "";
        tkc_err_t err = tkc_prewrite_spill_put(m->spill, row->value, row->value_len,
                                               row->old_value, row->old_value_len, &off, detail,
                                               sizeof(detail));
        if (err != TKC_ERR_OK) {
            match_key_fini(&mk);
            pending_release_if_empty(m);
            char what[224];
            snprintf(what, sizeof(what), "prewrite spill failed (%s)", detail);
            return fail(m, err, what, row->key, row->key_len, row->start_ts, 0, errstr,
                        errstr_size);
        }
        stub_t *st = tkc_malloc(sizeof(*st));
        st->off = off;
        st->generation = row->generation;
        st->value_len = (uint32_t)row->value_len; /* < 4 GiB: checked by the store */
        st->old_value_len = (uint32_t)row->old_value_len;
        st->op = row->op;
        st->has_old_value = row->has_old_value;
        e = (void *)((uintptr_t)st | 1);
    } else {
        prewrite_t *pw = tkc_row_new(row->op, row->key, row->key_len, row->value,
                                     row->value_len, row->old_value, row->old_value_len);
        pw->has_old_value = row->has_old_value;
        pw->start_ts = row->start_ts;
        PW_GENERATION(pw) = row->generation;
        e = pw;
    }
    old = tkc_hashmap_put(p->prewrites, mk.p, mk.len, e);
    if (old) {
        pw_account_remove(m, p, old);
        pw_discard(m, old);
    }
    pw_account_add(m, p, e);
    match_key_fini(&mk);
    return TKC_ERR_OK;
}

/*
 * Emits a matched COMMIT after the start-ts and resolved-ts checks. Takes
 * ownership of @p pw.
 *
 * Commits replayed at INITIALIZED go through here too. TiCDC emits replayed
 * commits without these two checks; we apply them everywhere so that the
 * outcome of a commit never depends on whether its prewrite came before or
 * after it (before INITIALIZED the resolved ts is still the checkpoint ts, so
 * the check only catches what TiKV promised never to send).
 */
static tkc_err_t emit_commit(tkc_matcher_t *m, tkc_row_op_t op, const uint8_t *key,
                             size_t key_len, uint64_t start_ts, uint64_t commit_ts, prewrite_t *pw,
                             tkc_matcher_emit_cb *emit, void *opaque, char *errstr,
                             size_t errstr_size)
{
    /*
     * TiKV can send commits at or below the span's start ts (e.g. a lock
     * found by the scan whose commit belongs to the starting snapshot): the
     * prewrite is consumed above, the change itself is not ours to emit.
     */
    if (commit_ts <= m->span_start_ts) {
        tkc_row_destroy(pw);
        m->stats.dropped_before_start++;
        return TKC_ERR_OK;
    }
    if (commit_ts <= m->resolved_ts) {
        tkc_row_destroy(pw);
        return fail(m, TKC_MATCHER_ERR_RESOLVED_TS,
                    "commit_ts not above region resolved ts (COMMIT)", key, key_len, start_ts,
                    commit_ts, errstr, errstr_size);
    }
    if (op != TKC_ROW_OP_PUT && op != TKC_ROW_OP_DELETE) {
        tkc_row_destroy(pw);
        return fail(m, TKC_MATCHER_ERR_UNKNOWN_OP, "unknown op type (COMMIT)", key, key_len,
                    start_ts, commit_ts, errstr, errstr_size);
    }
    /* the prewrite's row, with the same key bytes (the match key), becomes
     * the change; has_old_value came with the prewrite */
    tkc_row_t *r = pw;
    r->next = NULL;
    r->op = op;
    r->start_ts = start_ts;
    r->commit_ts = commit_ts;
    r->region_id = m->region_id;
    r->span_index = m->span_index;
    m->stats.emitted++;
    emit(opaque, r);
    return TKC_ERR_OK;
}

static tkc_err_t put_commit(tkc_matcher_t *m, const tkc_feed_row_t *row, tkc_matcher_emit_cb *emit,
                            void *opaque, char *errstr, size_t errstr_size)
{
    /* matching always runs first, even for a stale commit, so that its
     * prewrite entry is consumed */
    void *e = take_prewrite(m, row->start_ts, row->key, row->key_len);
    if (!e) {
        if (!m->initialized) {
            pending_t *p = pending_get(m);
            cache_push(p, &p->commits, row);
            return TKC_ERR_OK;
        }
        return fail(m, TKC_MATCHER_ERR_PREWRITE_NOT_MATCH, "prewrite not match", row->key,
                    row->key_len, row->start_ts, row->commit_ts, errstr, errstr_size);
    }
    pending_release_if_empty(m);
    prewrite_t *pw;
    tkc_err_t err = pw_restore(m, e, row->key, row->key_len, row->start_ts, row->commit_ts, &pw,
                               errstr, errstr_size);
    if (err != TKC_ERR_OK)
        return err;
    return emit_commit(m, row->op, row->key, row->key_len, row->start_ts, row->commit_ts, pw, emit,
                       opaque, errstr, errstr_size);
}

static tkc_err_t put_committed(tkc_matcher_t *m, const tkc_feed_row_t *row,
                               tkc_matcher_emit_cb *emit, void *opaque, char *errstr,
                               size_t errstr_size)
{
    if (row->commit_ts <= m->resolved_ts)
        return fail(m, TKC_MATCHER_ERR_RESOLVED_TS,
                    "commit_ts not above region resolved ts (COMMITTED)", row->key, row->key_len,
                    row->start_ts, row->commit_ts, errstr, errstr_size);
    if (row->op != TKC_ROW_OP_PUT && row->op != TKC_ROW_OP_DELETE)
        return fail(m, TKC_MATCHER_ERR_UNKNOWN_OP, "unknown op type (COMMITTED)", row->key,
                    row->key_len, row->start_ts, row->commit_ts, errstr, errstr_size);
    tkc_row_t *r = tkc_row_new(row->op, row->key, row->key_len, row->value, row->value_len,
                               row->old_value, row->old_value_len);
    r->has_old_value = row->has_old_value;
    r->start_ts = row->start_ts;
    r->commit_ts = row->commit_ts;
    r->region_id = m->region_id;
    r->span_index = m->span_index;
    m->stats.emitted++;
    emit(opaque, r);
    return TKC_ERR_OK;
}

static tkc_err_t put_initialized(tkc_matcher_t *m, tkc_matcher_emit_cb *emit, void *opaque,
                                 char *errstr, size_t errstr_size)
{
    m->initialized = true;
    tkc_err_t err = TKC_ERR_OK;
    pending_t *p = m->p;
    if (!p)
        return TKC_ERR_OK;

    /* detach the lists first: an error below leaves nothing half-replayed */
    cached_t *c = p->commits.head;
    p->commits.head = p->commits.tail = NULL;
    p->commits.count = 0;
    while (c) {
        cached_t *next = c->next;
        if (err == TKC_ERR_OK) {
            void *e = take_prewrite(m, c->start_ts, c->key, c->key_len);
            prewrite_t *pw = NULL;
            if (e)
                err = pw_restore(m, e, c->key, c->key_len, c->start_ts, c->commit_ts, &pw, errstr,
                                 errstr_size);
            if (pw) {
                err = emit_commit(m, c->op, c->key, c->key_len, c->start_ts, c->commit_ts, pw,
                                  emit, opaque, errstr, errstr_size);
            } else if (!e) {
                /*
                 * A commit applied before the scan snapshot: the scan has
                 * already produced it as a COMMITTED row (TiCDC: "ignore
                 * commit event without prewrite").
                 */
                m->stats.ignored_unmatched++;
            }
        }
        p->held_bytes -= c->alloc_size;
        tkc_free(c);
        c = next;
    }

    c = p->rollbacks.head;
    p->rollbacks.head = p->rollbacks.tail = NULL;
    p->rollbacks.count = 0;
    while (c) {
        cached_t *next = c->next;
        if (err == TKC_ERR_OK)
            drop_prewrite(m, c->start_ts, c->key, c->key_len);
        p->held_bytes -= c->alloc_size;
        tkc_free(c);
        c = next;
    }
    pending_release_if_empty(m);
    return err;
}

/* ===== public ===== */

size_t tkc_matcher_size(void)
{
    return sizeof(tkc_matcher_t);
}

tkc_matcher_t *tkc_matcher_new(const tkc_matcher_conf_t *conf)
{
    return tkc_matcher_init(tkc_malloc(sizeof(tkc_matcher_t)), conf);
}

tkc_matcher_t *tkc_matcher_init(void *mem, const tkc_matcher_conf_t *conf)
{
    tkc_matcher_t *m = mem;
    memset(m, 0, sizeof(*m));
    m->region_id = conf->region_id;
    m->span_index = conf->span_index;
    m->span_start_ts = conf->span_start_ts;
    m->resolved_ts = conf->checkpoint_ts;
    if (conf->start_len > UINT32_MAX || conf->end_len > UINT32_MAX)
        abort(); /* keys are bounded far below this by TiKV */
    m->start = conf->start;
    m->start_len = (uint32_t)conf->start_len;
    m->end = conf->end;
    m->end_len = (uint32_t)conf->end_len;
    m->spill = conf->spill;
    return m;
}

void tkc_matcher_fini(tkc_matcher_t *m)
{
    if (!m)
        return;
    pending_free(m, m->p);
    m->p = NULL;
}

void tkc_matcher_destroy(tkc_matcher_t *m)
{
    if (!m)
        return;
    tkc_matcher_fini(m);
    tkc_free(m);
}

tkc_err_t tkc_matcher_put(tkc_matcher_t *m, const tkc_feed_row_t *row, tkc_matcher_emit_cb *emit,
                          void *opaque, char *errstr, size_t errstr_size)
{
    if (m->failed) {
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size, "matcher of region %" PRIu64 " already failed",
                     m->region_id);
        return TKC_MATCHER_ERR_FAILED;
    }
    if (row->type == TKC_FEED_LOG_INITIALIZED)
        return put_initialized(m, emit, opaque, errstr, errstr_size);
    if (row->type < TKC_FEED_LOG_PREWRITE || row->type > TKC_FEED_LOG_COMMITTED)
        return TKC_ERR_OK; /* unknown log type: nothing to do */

    /* older TiKV did not filter rows by the requested range (§7 #21) */
    if (!in_range(m, row->key, row->key_len)) {
        m->stats.dropped_out_of_range++;
        return TKC_ERR_OK;
    }

    switch (row->type) {
    case TKC_FEED_LOG_PREWRITE:
        return put_prewrite(m, row, errstr, errstr_size);
    case TKC_FEED_LOG_COMMIT:
        return put_commit(m, row, emit, opaque, errstr, errstr_size);
    case TKC_FEED_LOG_COMMITTED:
        return put_committed(m, row, emit, opaque, errstr, errstr_size);
    case TKC_FEED_LOG_ROLLBACK:
        if (!m->initialized) {
            pending_t *p = pending_get(m);
            cache_push(p, &p->rollbacks, row);
        } else {
            drop_prewrite(m, row->start_ts, row->key, row->key_len);
            pending_release_if_empty(m);
        }
        return TKC_ERR_OK;
    default:
        return TKC_ERR_OK;
    }
}

bool tkc_matcher_resolve(tkc_matcher_t *m, uint64_t ts)
{
    if (m->failed || !m->initialized || ts <= m->resolved_ts)
        return false;
    m->resolved_ts = ts;
    return true;
}

uint64_t tkc_matcher_resolved_ts(const tkc_matcher_t *m)
{
    return m->resolved_ts;
}

bool tkc_matcher_initialized(const tkc_matcher_t *m)
{
    return m->initialized;
}

bool tkc_matcher_failed(const tkc_matcher_t *m)
{
    return m->failed;
}

void tkc_matcher_get_stats(const tkc_matcher_t *m, tkc_matcher_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->dropped_out_of_range = m->stats.dropped_out_of_range;
    st->dropped_before_start = m->stats.dropped_before_start;
    st->ignored_unmatched = m->stats.ignored_unmatched;
    st->emitted = m->stats.emitted;
    st->prewrites = m->p ? tkc_hashmap_count(m->p->prewrites) : 0;
    st->cached_commits = m->p ? m->p->commits.count : 0;
    st->cached_rollbacks = m->p ? m->p->rollbacks.count : 0;
    st->spilled_prewrites = m->p ? m->p->n_spilled : 0;
}

size_t tkc_matcher_bytes(const tkc_matcher_t *m)
{
    size_t n = sizeof(*m);
    if (m->p)
        n += sizeof(*m->p) + tkc_hashmap_bytes(m->p->prewrites) + m->p->held_bytes;
    return n;
}
