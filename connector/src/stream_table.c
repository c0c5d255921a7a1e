/*
 * stream_table.c: store id -> current EventFeed stream, guarded by stream
 * ids (architecture.md invariant 1; tikv-cdc-protocol.md §6.3-§6.4).
 *
 * Why this module exists: TiCDC once kept its streams in maps keyed by store
 * address and deleted "whatever is under the address". A dead stream's
 * late, second cleanup therefore removed and cancelled its healthy
 * replacement, whose failure did the same to the next one: a reconnection
 * loop that kept resolved ts stuck for 12+ minutes after one TiKV restart.
 * Here:
 *   - every stream gets an id from a process-wide atomic counter, never
 *     reused;
 *   - retire(tbl, stream) removes the table entry only when the entry holds
 *     that id, and does everything (remove, cancel, hand back regions) once;
 *   - cancel is the callback stored in the stream object at creation;
 *   - create and retire are rate-limited per store through a caller-supplied
 *     clock, returning when to try again instead of sleeping.
 *
 * Threads: the owning feed worker normally does everything, but every entry
 * point is thread-safe (a table mutex, then a per-stream mutex, always in
 * that order) so a cleanup running elsewhere cannot corrupt the table; the
 * cancel callback runs with no lock held. Streams are reference counted:
 * the table holds one reference while the stream is its entry, the creator
 * holds one, tkc_stream_table_get() returns one.
 *
 * TKC_TEST_ADDR_KEYED_STREAMS (test-only) replaces the id guard by the old
 * address-keyed behaviour. Both paths are always compiled (a constant picks
 * one), so the test variant cannot rot.
 */
#include "stream_table.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/hashmap.h"
#include "util/mem.h"

#ifdef TKC_TEST_ADDR_KEYED_STREAMS
#define ADDR_KEYED 1
#else
#define ADDR_KEYED 0
#endif

/* ids start at 1; 0 never names a stream */
static atomic_uint_fast64_t g_last_stream_id;

struct tkc_stream_s {
    uint64_t id;
    uint64_t store_id;
    atomic_uint refs;
    atomic_bool cancelled;
    atomic_bool retired;  /* retire() has handled this stream (ID mode: also removed) */
    tkc_stream_cancel_cb *cancel;
    void *opaque;
    tkc_stream_state_free_cb *state_free;
    pthread_mutex_t mu;       /* protects regions and the retired transition */
    tkc_hashmap_t *regions;   /* 16-byte big-endian (request_id, region_id) -> state */
};

typedef struct slot_s {
    tkc_stream_t *cur; /* the table's reference, or NULL */
    int64_t last_alter_ms;
    bool altered;
} slot_t;

struct tkc_stream_table_s {
    pthread_mutex_t mu;
    int64_t interval_ms;
    tkc_stream_state_free_cb *state_free;
    tkc_hashmap_t *slots; /* store id (8 bytes) -> slot_t */
    size_t live;
};

const char *tkc_stream_status_name(int status)
{
    switch (status) {
    case TKC_STREAM_OK:
        return "OK";
    case TKC_STREAM_ALREADY_RETIRED:
        return "ALREADY_RETIRED";
    case TKC_STREAM_RATE_LIMITED:
        return "RATE_LIMITED";
    case TKC_STREAM_EXISTS:
        return "EXISTS";
    default:
        return "?";
    }
}

bool tkc_stream_table_addr_keyed(void)
{
    return ADDR_KEYED;
}

void tkc_stream_region_list_fini(tkc_stream_region_list_t *list)
{
    if (!list)
        return;
    tkc_free(list->v);
    list->v = NULL;
    list->n = 0;
}

/* ===== streams ===== */

static void region_key(uint8_t out[16], uint64_t request_id, uint64_t region_id)
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(request_id >> (56 - 8 * i));
        out[8 + i] = (uint8_t)(region_id >> (56 - 8 * i));
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static tkc_stream_t *stream_new(uint64_t store_id, tkc_stream_cancel_cb *cancel, void *opaque,
                                tkc_stream_state_free_cb *state_free)
{
    tkc_stream_t *st = tkc_calloc(1, sizeof(*st));
    st->id = atomic_fetch_add(&g_last_stream_id, 1) + 1;
    st->store_id = store_id;
    atomic_init(&st->refs, 1);
    atomic_init(&st->cancelled, false);
    atomic_init(&st->retired, false);
    st->cancel = cancel;
    st->opaque = opaque;
    st->state_free = state_free;
    pthread_mutex_init(&st->mu, NULL);
    st->regions = tkc_hashmap_new_fixed(16); /* one entry per registration */
    return st;
}

uint64_t tkc_stream_id(const tkc_stream_t *st)
{
    return st->id;
}

uint64_t tkc_stream_store_id(const tkc_stream_t *st)
{
    return st->store_id;
}

bool tkc_stream_retired(const tkc_stream_t *st)
{
    return atomic_load(&st->retired);
}

bool tkc_stream_cancelled(const tkc_stream_t *st)
{
    return atomic_load(&st->cancelled);
}

void tkc_stream_cancel(tkc_stream_t *st)
{
    bool expected = false;
    if (atomic_compare_exchange_strong(&st->cancelled, &expected, true) && st->cancel)
        st->cancel(st, st->opaque);
}

void tkc_stream_keep(tkc_stream_t *st)
{
    atomic_fetch_add(&st->refs, 1);
}

void tkc_stream_release(tkc_stream_t *st)
{
    if (!st || atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    tkc_hashmap_destroy(st->regions, st->state_free);
    pthread_mutex_destroy(&st->mu);
    tkc_free(st);
}

tkc_err_t tkc_stream_add_region(tkc_stream_t *st, uint64_t request_id, uint64_t region_id,
                                void *state)
{
    if (!state)
        return TKC_ERR_INVALID_ARG;
    uint8_t k[16];
    region_key(k, request_id, region_id);
    tkc_err_t err = TKC_ERR_OK;
    pthread_mutex_lock(&st->mu);
    if (atomic_load(&st->retired))
        err = TKC_ERR_STOPPED;
    else if (tkc_hashmap_get(st->regions, k, sizeof(k)))
        err = TKC_ERR_INVALID_ARG;
    else
        tkc_hashmap_put(st->regions, k, sizeof(k), state);
    pthread_mutex_unlock(&st->mu);
    return err;
}

void *tkc_stream_get_region(tkc_stream_t *st, uint64_t request_id, uint64_t region_id)
{
    uint8_t k[16];
    region_key(k, request_id, region_id);
    pthread_mutex_lock(&st->mu);
    void *state = tkc_hashmap_get(st->regions, k, sizeof(k));
    pthread_mutex_unlock(&st->mu);
    return state;
}

void *tkc_stream_remove_region(tkc_stream_t *st, uint64_t request_id, uint64_t region_id)
{
    uint8_t k[16];
    region_key(k, request_id, region_id);
    pthread_mutex_lock(&st->mu);
    void *state = tkc_hashmap_remove(st->regions, k, sizeof(k));
    pthread_mutex_unlock(&st->mu);
    return state;
}

size_t tkc_stream_region_count(tkc_stream_t *st)
{
    pthread_mutex_lock(&st->mu);
    size_t n = tkc_hashmap_count(st->regions);
    pthread_mutex_unlock(&st->mu);
    return n;
}

static int region_cmp(const void *a, const void *b)
{
    const tkc_stream_region_t *x = a, *y = b;
    if (x->request_id != y->request_id)
        return x->request_id < y->request_id ? -1 : 1;
    if (x->region_id != y->region_id)
        return x->region_id < y->region_id ? -1 : 1;
    return 0;
}

/* Moves every registration of @p st into @p out. Caller holds st->mu. */
static void take_regions(tkc_stream_t *st, tkc_stream_region_list_t *out)
{
    out->n = tkc_hashmap_count(st->regions);
    out->v = out->n ? tkc_malloc(out->n * sizeof(*out->v)) : NULL;
    tkc_hashmap_iter_t it = TKC_HASHMAP_ITER_INIT;
    const void *key;
    size_t klen, i = 0;
    void *val;
    while (tkc_hashmap_next(st->regions, &it, &key, &klen, &val)) {
        out->v[i].request_id = get_be64(key);
        out->v[i].region_id = get_be64((const uint8_t *)key + 8);
        out->v[i].state = val;
        i++;
    }
    tkc_hashmap_clear(st->regions, NULL);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), region_cmp);
}

/* ===== table ===== */

tkc_stream_table_t *tkc_stream_table_new(int64_t alter_interval_ms,
                                         tkc_stream_state_free_cb *state_free)
{
    tkc_stream_table_t *tbl = tkc_calloc(1, sizeof(*tbl));
    pthread_mutex_init(&tbl->mu, NULL);
    tbl->interval_ms = alter_interval_ms > 0 ? alter_interval_ms : 0;
    tbl->state_free = state_free;
    tbl->slots = tkc_hashmap_new();
    return tbl;
}

void tkc_stream_table_destroy(tkc_stream_table_t *tbl)
{
    if (!tbl)
        return;
    tkc_hashmap_iter_t it = TKC_HASHMAP_ITER_INIT;
    void *val;
    while (tkc_hashmap_next(tbl->slots, &it, NULL, NULL, &val)) {
        slot_t *slot = val;
        if (slot->cur)
            tkc_stream_release(slot->cur);
    }
    tkc_hashmap_destroy(tbl->slots, tkc_free);
    pthread_mutex_destroy(&tbl->mu);
    tkc_free(tbl);
}

static slot_t *slot_get(tkc_stream_table_t *tbl, uint64_t store_id, bool create)
{
    slot_t *slot = tkc_hashmap_get(tbl->slots, &store_id, sizeof(store_id));
    if (!slot && create) {
        slot = tkc_calloc(1, sizeof(*slot));
        tkc_hashmap_put(tbl->slots, &store_id, sizeof(store_id), slot);
    }
    return slot;
}

static int64_t slot_next_alter(const tkc_stream_table_t *tbl, const slot_t *slot)
{
    if (!slot || !slot->altered || tbl->interval_ms == 0)
        return INT64_MIN;
    return slot->last_alter_ms + tbl->interval_ms;
}

int64_t tkc_stream_table_next_alter_ms(tkc_stream_table_t *tbl, uint64_t store_id)
{
    pthread_mutex_lock(&tbl->mu);
    int64_t t = slot_next_alter(tbl, slot_get(tbl, store_id, false));
    pthread_mutex_unlock(&tbl->mu);
    return t;
}

tkc_stream_status_t tkc_stream_table_create(tkc_stream_table_t *tbl, uint64_t store_id,
                                            int64_t now_ms, tkc_stream_cancel_cb *cancel,
                                            void *opaque, tkc_stream_t **out,
                                            int64_t *retry_at_ms)
{
    *out = NULL;
    pthread_mutex_lock(&tbl->mu);
    slot_t *slot = slot_get(tbl, store_id, true);
    if (slot->cur) {
        pthread_mutex_unlock(&tbl->mu);
        return TKC_STREAM_EXISTS;
    }
    int64_t next = slot_next_alter(tbl, slot);
    if (now_ms < next) {
        pthread_mutex_unlock(&tbl->mu);
        if (retry_at_ms)
            *retry_at_ms = next;
        return TKC_STREAM_RATE_LIMITED;
    }
    tkc_stream_t *st = stream_new(store_id, cancel, opaque, tbl->state_free);
    tkc_stream_keep(st); /* the table's reference */
    slot->cur = st;
    slot->last_alter_ms = now_ms;
    slot->altered = true;
    tbl->live++;
    pthread_mutex_unlock(&tbl->mu);
    *out = st;
    return TKC_STREAM_OK;
}

tkc_stream_t *tkc_stream_table_get(tkc_stream_table_t *tbl, uint64_t store_id)
{
    pthread_mutex_lock(&tbl->mu);
    slot_t *slot = slot_get(tbl, store_id, false);
    tkc_stream_t *st = slot ? slot->cur : NULL;
    if (st)
        tkc_stream_keep(st);
    pthread_mutex_unlock(&tbl->mu);
    return st;
}

size_t tkc_stream_table_count(tkc_stream_table_t *tbl)
{
    pthread_mutex_lock(&tbl->mu);
    size_t n = tbl->live;
    pthread_mutex_unlock(&tbl->mu);
    return n;
}

/*
 * The product behaviour: everything keyed by the stream's own id, once.
 * Called with tbl->mu held; returns with it released.
 */
static tkc_stream_status_t retire_by_id(tkc_stream_table_t *tbl, tkc_stream_t *st, int64_t now_ms,
                                        tkc_stream_region_list_t *regions, int64_t *retry_at_ms)
{
    pthread_mutex_lock(&st->mu);
    if (atomic_load(&st->retired)) {
        pthread_mutex_unlock(&st->mu);
        pthread_mutex_unlock(&tbl->mu);
        return TKC_STREAM_ALREADY_RETIRED;
    }
    slot_t *slot = slot_get(tbl, st->store_id, false);
    /* the guard: only an entry holding this very id is ours to remove */
    bool holds = slot && slot->cur && slot->cur->id == st->id;
    if (holds) {
        int64_t next = slot_next_alter(tbl, slot);
        if (now_ms < next) {
            pthread_mutex_unlock(&st->mu);
            pthread_mutex_unlock(&tbl->mu);
            if (retry_at_ms)
                *retry_at_ms = next;
            return TKC_STREAM_RATE_LIMITED;
        }
        slot->cur = NULL;
        slot->last_alter_ms = now_ms;
        slot->altered = true;
        tbl->live--;
    }
    atomic_store(&st->retired, true);
    if (regions)
        take_regions(st, regions);
    pthread_mutex_unlock(&st->mu);
    pthread_mutex_unlock(&tbl->mu);

    tkc_stream_cancel(st); /* its own call, no lock held */
    if (holds)
        tkc_stream_release(st); /* the table's reference */
    return TKC_STREAM_OK;
}

/*
 * TEST ONLY: the pre-PR-10559 behaviour. Whatever stream is stored for the
 * store is removed and cancelled, whichever stream asked; a second retire of
 * a dead stream therefore kills its replacement. Region hand-back stays per
 * stream object, as the old region workers evicted their own regions.
 * Called with tbl->mu held; returns with it released.
 */
static tkc_stream_status_t retire_by_addr(tkc_stream_table_t *tbl, tkc_stream_t *st,
                                          int64_t now_ms, tkc_stream_region_list_t *regions,
                                          int64_t *retry_at_ms)
{
    slot_t *slot = slot_get(tbl, st->store_id, false);
    tkc_stream_t *victim = slot ? slot->cur : NULL;
    if (victim) {
        int64_t next = slot_next_alter(tbl, slot);
        if (now_ms < next) {
            pthread_mutex_unlock(&tbl->mu);
            if (retry_at_ms)
                *retry_at_ms = next;
            return TKC_STREAM_RATE_LIMITED;
        }
        slot->cur = NULL;
        slot->last_alter_ms = now_ms;
        slot->altered = true;
        tbl->live--;
    }
    bool own = false;
    pthread_mutex_lock(&st->mu);
    if (!atomic_load(&st->retired)) {
        atomic_store(&st->retired, true);
        if (regions)
            take_regions(st, regions);
        own = true;
    }
    pthread_mutex_unlock(&st->mu);
    pthread_mutex_unlock(&tbl->mu);

    if (victim) {
        tkc_stream_cancel(victim); /* whoever is stored under the store */
        tkc_stream_release(victim);
    }
    return victim || own ? TKC_STREAM_OK : TKC_STREAM_ALREADY_RETIRED;
}

tkc_stream_status_t tkc_stream_table_retire(tkc_stream_table_t *tbl, tkc_stream_t *st,
                                            int64_t now_ms, tkc_stream_region_list_t *regions,
                                            int64_t *retry_at_ms)
{
    if (regions) {
        regions->n = 0;
        regions->v = NULL;
    }
    pthread_mutex_lock(&tbl->mu);
    if (ADDR_KEYED)
        return retire_by_addr(tbl, st, now_ms, regions, retry_at_ms);
    return retire_by_id(tbl, st, now_ms, regions, retry_at_ms);
}
