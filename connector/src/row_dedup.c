/*
 * row_dedup.c: the keys of the current commit_ts group, to drop re-sent
 * copies at release (see row_dedup.h for why the current group is enough).
 *
 * Layout, chosen for the hot path where most groups hold one or a few rows:
 *   arena    the remembered keys back to back, each preceded by its 4-byte
 *            span index; one growable buffer, reused from group to group;
 *   entries  one 24-byte record per remembered row (key hash, arena offset,
 *            key length, content fingerprint), also reused;
 *   table    open addressing with linear probing over entry indexes; a
 *            slot is live only if its generation equals the current one,
 *            so forgetting a group is "generation++" and costs nothing, not
 *            a clear of the whole table (which may have grown for a big
 *            group earlier).
 * Nothing is allocated per row once the buffers have grown to the size of
 * the biggest group seen since the last shrink. Buffers grow by doubling
 * but never past what the memory limit leaves; when even the needed size
 * does not fit, the group is marked overflowed and its later rows are only
 * looked up, not remembered (row_dedup.h says what that means).
 *
 * The key hash is seeded per instance so that keys chosen by a database
 * client cannot be made to collide in every process the same way (a huge
 * group of colliding keys would make each lookup linear).
 */
#include "row_dedup.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "util/clock.h"
#include "util/mem.h"

#define INITIAL_SLOTS 16
#define INITIAL_ENTRIES 8
#define INITIAL_ARENA 512
/* buffers beyond this are freed when a group ends: a huge transaction's
 * key set is not kept for the rest of the process's life */
#define KEEP_BYTES ((size_t)256 * 1024)
#define SPAN_BYTES sizeof(uint32_t)

typedef struct entry_s {
    uint64_t hash;
    uint64_t off;     /* of the span index in the arena; the key follows */
    uint32_t key_len;
    uint32_t fp;      /* content fingerprint (diagnostic only) */
} entry_t;

typedef struct slot_s {
    uint32_t gen; /* live when equal to the dedup's gen */
    uint32_t idx; /* into entries */
} slot_t;

struct tkc_row_dedup_s {
    size_t limit;
    uint64_t seed;

    bool in_group;
    bool overflowed;
    uint64_t ts; /* commit_ts of the current group */
    uint32_t gen;

    uint8_t *arena;
    size_t arena_len, arena_cap;
    entry_t *entries;
    size_t n_entries, entries_cap;
    slot_t *slots;
    size_t slots_cap; /* power of two */

    tkc_row_dedup_stats_t st;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dULL;
    x ^= x >> 33;
    return x;
}

/*
 * 16 bytes per step, each folded in with one 64x64->128-bit multiply (the
 * high and low halves xored): few cycles per step, and a change of any input
 * bit reaches every output bit after the final mix.
 */
static uint64_t fold_mul(uint64_t a, uint64_t b)
{
    unsigned __int128 p = (unsigned __int128)a * b;
    return (uint64_t)p ^ (uint64_t)(p >> 64);
}

static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t len)
{
    h ^= (uint64_t)len * 0xd6e8feb86659fd93ULL;
    while (len >= 16) {
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + 8, 8);
        h = fold_mul(a ^ h ^ 0xa0761d6478bd642fULL, b ^ 0xe7037ed1a0b428dbULL);
        p += 16;
        len -= 16;
    }
    uint64_t a = 0, b = 0;
    if (len > 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + 8, len - 8);
    } else if (len) {
        memcpy(&a, p, len);
    }
    return fold_mul(a ^ h ^ 0x8ebc6af09c88c6e3ULL,
                    b ^ ((uint64_t)len << 56) ^ 0x589965cc75374cc3ULL);
}

static uint64_t key_hash(const tkc_row_dedup_t *d, const tkc_row_t *row)
{
    return mix(hash_bytes(d->seed ^ row->span_index, row->key, row->key_len));
}

/* The first and the last (up to) 8 bytes of a byte string, for the fingerprint. */
static void ends(const uint8_t *p, size_t len, uint64_t *first, uint64_t *last)
{
    *first = *last = 0;
    if (len >= 8) {
        memcpy(first, p, 8);
        memcpy(last, p + len - 8, 8);
    } else if (len) {
        memcpy(first, p, len);
    }
}

/*
 * O(1) per row whatever the value size: op, has_old_value, start_ts, the
 * lengths and 8 bytes at each end of value and old value. The
 * fingerprint only decides between DUPLICATE and CONFLICT (a warning),
 * never whether a row is dropped, so a sample is enough.
 */
static uint32_t fingerprint(const tkc_row_t *row)
{
    uint64_t vf, vl, of, ol;
    ends(row->value, row->value_len, &vf, &vl);
    ends(row->old_value, row->old_value_len, &of, &ol);
    uint64_t h = mix(((uint64_t)row->op << 1 | (row->has_old_value ? 1 : 0)) ^ row->start_ts);
    h = fold_mul(vf ^ h ^ 0xa0761d6478bd642fULL,
                 vl ^ (uint64_t)row->value_len * 0xe7037ed1a0b428dbULL);
    h = fold_mul(of ^ h ^ 0x8ebc6af09c88c6e3ULL,
                 ol ^ (uint64_t)row->old_value_len * 0x589965cc75374cc3ULL);
    h = mix(h);
    return (uint32_t)(h ^ (h >> 32));
}

static size_t allocated(const tkc_row_dedup_t *d)
{
    return d->arena_cap + d->entries_cap * sizeof(entry_t) + d->slots_cap * sizeof(slot_t);
}

static void alloc_initial(tkc_row_dedup_t *d)
{
    d->arena_cap = INITIAL_ARENA;
    d->arena = tkc_malloc(d->arena_cap);
    d->entries_cap = INITIAL_ENTRIES;
    d->entries = tkc_malloc(d->entries_cap * sizeof(entry_t));
    d->slots_cap = INITIAL_SLOTS;
    d->slots = tkc_calloc(d->slots_cap, sizeof(slot_t));
    d->gen = 1;
}

static void free_buffers(tkc_row_dedup_t *d)
{
    tkc_free(d->arena);
    tkc_free(d->entries);
    tkc_free(d->slots);
    d->arena = NULL;
    d->entries = NULL;
    d->slots = NULL;
    d->arena_cap = d->entries_cap = d->slots_cap = 0;
}

tkc_row_dedup_t *tkc_row_dedup_new(size_t memory_limit)
{
    static atomic_uint_fast64_t counter;
    tkc_row_dedup_t *d = tkc_calloc(1, sizeof(*d));
    d->limit = memory_limit ? memory_limit : TKC_ROW_DEDUP_MEMORY_DEFAULT;
    d->seed = mix((uint64_t)(uintptr_t)d ^ mix(atomic_fetch_add(&counter, 1) +
                                               (uint64_t)tkc_clock_mono_ms()));
    alloc_initial(d);
    d->st.memory_limit = d->limit;
    return d;
}

void tkc_row_dedup_destroy(tkc_row_dedup_t *d)
{
    if (!d)
        return;
    free_buffers(d);
    tkc_free(d);
}

void tkc_row_dedup_reset(tkc_row_dedup_t *d)
{
    d->in_group = false;
    d->overflowed = false;
    d->arena_len = 0;
    d->n_entries = 0;
    if (allocated(d) > KEEP_BYTES) {
        free_buffers(d);
        alloc_initial(d);
        return;
    }
    if (++d->gen == 0) {
        /* wrapped after 2^32 groups: old slots could look live again */
        memset(d->slots, 0, d->slots_cap * sizeof(slot_t));
        d->gen = 1;
    }
}

/*
 * A capacity of at least @p need, doubling from @p cap, but never so big that
 * the total would pass the limit: @returns 0 when even @p need does not fit.
 */
static size_t grown_cap(const tkc_row_dedup_t *d, size_t cap, size_t need, size_t elem)
{
    size_t others = allocated(d) - cap * elem;
    if (d->limit < others || (d->limit - others) / elem < need)
        return 0;
    size_t room = (d->limit - others) / elem;
    size_t c = cap ? cap : 1;
    while (c < need)
        c = c > SIZE_MAX / 2 ? need : c * 2;
    return c <= room ? c : room;
}

static void table_insert(tkc_row_dedup_t *d, uint64_t hash, uint32_t idx)
{
    size_t mask = d->slots_cap - 1;
    size_t i = (size_t)hash & mask;
    while (d->slots[i].gen == d->gen)
        i = (i + 1) & mask;
    d->slots[i].gen = d->gen;
    d->slots[i].idx = idx;
}

/* Makes room for one more entry with a @p key_len byte key. */
static bool reserve(tkc_row_dedup_t *d, size_t key_len)
{
    if (key_len > UINT32_MAX || d->n_entries >= UINT32_MAX)
        return false;
    size_t arena_need = d->arena_len + SPAN_BYTES + key_len;
    if (arena_need > d->arena_cap) {
        size_t c = grown_cap(d, d->arena_cap, arena_need, 1);
        if (!c)
            return false;
        d->arena = tkc_realloc(d->arena, c);
        d->arena_cap = c;
    }
    if (d->n_entries + 1 > d->entries_cap) {
        size_t c = grown_cap(d, d->entries_cap, d->n_entries + 1, sizeof(entry_t));
        if (!c)
            return false;
        d->entries = tkc_realloc(d->entries, c * sizeof(entry_t));
        d->entries_cap = c;
    }
    /* load at most 1/2: short probe sequences */
    if ((d->n_entries + 1) * 2 > d->slots_cap) {
        size_t c = d->slots_cap * 2;
        size_t others = allocated(d) - d->slots_cap * sizeof(slot_t);
        if (d->limit < others || (d->limit - others) / sizeof(slot_t) < c)
            return false;
        tkc_free(d->slots);
        d->slots = tkc_calloc(c, sizeof(slot_t));
        d->slots_cap = c;
        d->gen = 1;
        for (size_t i = 0; i < d->n_entries; i++)
            table_insert(d, d->entries[i].hash, (uint32_t)i);
    }
    return true;
}

tkc_row_dedup_verdict_t tkc_row_dedup_check(tkc_row_dedup_t *d, const tkc_row_t *row)
{
    d->st.rows++;
    if (!d->in_group || row->commit_ts != d->ts) {
        if (d->in_group)
            tkc_row_dedup_reset(d);
        d->in_group = true;
        d->ts = row->commit_ts;
    }
    uint64_t h = key_hash(d, row);
    uint32_t fp = fingerprint(row);
    uint32_t span = row->span_index;

    size_t mask = d->slots_cap - 1;
    for (size_t i = (size_t)h & mask; d->slots[i].gen == d->gen; i = (i + 1) & mask) {
        const entry_t *e = &d->entries[d->slots[i].idx];
        if (e->hash != h || e->key_len != row->key_len)
            continue;
        const uint8_t *k = d->arena + e->off;
        /* the hash only narrows the search: equal span and key bytes decide */
        if (memcmp(k, &span, SPAN_BYTES) != 0 ||
            (row->key_len && memcmp(k + SPAN_BYTES, row->key, row->key_len) != 0))
            continue;
        if (e->fp != fp) {
            d->st.conflicts++;
            return TKC_ROW_DEDUP_CONFLICT;
        }
        d->st.duplicates++;
        return TKC_ROW_DEDUP_DUPLICATE;
    }

    if (d->overflowed || !reserve(d, row->key_len)) {
        if (!d->overflowed) {
            d->overflowed = true;
            d->st.groups_overflowed++;
        }
        d->st.untracked++;
        return TKC_ROW_DEDUP_UNTRACKED;
    }
    entry_t *e = &d->entries[d->n_entries];
    e->hash = h;
    e->off = d->arena_len;
    e->key_len = (uint32_t)row->key_len;
    e->fp = fp;
    memcpy(d->arena + d->arena_len, &span, SPAN_BYTES);
    if (row->key_len)
        memcpy(d->arena + d->arena_len + SPAN_BYTES, row->key, row->key_len);
    d->arena_len += SPAN_BYTES + row->key_len;
    table_insert(d, h, (uint32_t)d->n_entries);
    d->n_entries++;
    return TKC_ROW_DEDUP_NEW;
}

void tkc_row_dedup_stats(const tkc_row_dedup_t *d, tkc_row_dedup_stats_t *out)
{
    *out = d->st;
    out->bytes = allocated(d);
}

const char *tkc_row_dedup_verdict_name(tkc_row_dedup_verdict_t v)
{
    static const char *const names[] = {"NEW", "DUPLICATE", "CONFLICT", "UNTRACKED"};
    return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}
