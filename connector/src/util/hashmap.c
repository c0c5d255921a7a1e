/*
 * hashmap.c: byte-string keyed hash map (see hashmap.h).
 *
 * Design: separate chaining. Each entry is one allocation holding the link,
 * the cached full hash, the value and the key bytes, so a lookup touches one
 * bucket slot plus the entries of that chain. The bucket array doubles when
 * count reaches the bucket count (load factor 1) and never shrinks; the maps
 * we keep (prewrites per region, regions per stream, streams per store) grow
 * and drain repeatedly, and re-growing would cost more than the idle slots.
 *
 * Fixed-key maps (tkc_hashmap_new_fixed) are a second layout for the maps
 * that hold one entry per subscribed region with short fixed-size keys
 * (region ids, (span, region id), (request id, region id)): open
 * addressing with linear probing in Robin Hood order, the key and value
 * inline in one slot array, no per-entry allocation. A slot is empty when
 * its value is NULL (values are never NULL). Removal shifts the following
 * entries of the probe run back instead of leaving tombstones, so lookups
 * never slow down with churn. Robin Hood order keeps probe runs short up to
 * the 7/8 load at which the array doubles (it never shrinks). An entry costs
 * (8 + key rounded to 8) / load bytes, 16-24 B for an 8-byte key, against
 * 48 B + a bucket slot in the chained layout.
 *
 * The hash is seeded per map (address and a counter mixed), so keys that a
 * writer to the database chose cannot collide the same way in every map of
 * every process.
 *
 * Ownership: keys are copied; values are never touched except by the free
 * callback the caller passes. One owner thread at a time.
 */
#include "util/hashmap.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

#define INITIAL_BUCKETS 8

/*
 * 24 bytes of header: with the short keys most maps use (8-16 bytes) an
 * entry stays in glibc's 48-byte chunk class instead of 64. The hash is cut
 * to 32 bits (enough to pick among up to 2^32 buckets and to skip most
 * memcmp calls; equality is always decided by the key bytes).
 */
typedef struct entry_s {
    struct entry_s *next;
    void *val;
    uint32_t hash;
    uint32_t klen;
    uint8_t key[];
} entry_t;

struct tkc_hashmap_s {
    entry_t **buckets; /* chained layout */
    size_t nbuckets;   /* power of two; fixed layout: number of slots */
    size_t count;
    size_t key_bytes;
    uint64_t seed;
    uint8_t *slots;     /* fixed layout: nbuckets slots of slot_size bytes */
    uint32_t fixed_klen; /* 0: chained layout */
    uint32_t slot_size;  /* value pointer, then the key, rounded to 8 */
};

/* ===== fixed layout helpers ===== */

static inline uint8_t *slot_at(const tkc_hashmap_t *hm, size_t i)
{
    return hm->slots + i * hm->slot_size;
}

static inline void *slot_val(const uint8_t *slot)
{
    void *v;
    memcpy(&v, slot, sizeof(v));
    return v;
}

static inline void slot_set_val(uint8_t *slot, void *v)
{
    memcpy(slot, &v, sizeof(v));
}

static inline uint8_t *slot_key(uint8_t *slot)
{
    return slot + sizeof(void *);
}

static uint64_t mix64(uint64_t x)
{
    /* a bijective avalanche step: xor-shift, multiply by odd constants */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint32_t hash_bytes(uint64_t seed, const uint8_t *p, size_t len)
{
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mix64(w)) * 0x9e3779b97f4a7c15ULL;
        h = (h << 29) | (h >> 35);
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = (h ^ mix64(w ^ ((uint64_t)len << 56))) * 0x9e3779b97f4a7c15ULL;
    }
    return (uint32_t)mix64(h);
}

static uint64_t new_seed(const tkc_hashmap_t *hm)
{
    static atomic_uint_fast64_t counter;
    uint64_t n = atomic_fetch_add(&counter, 1);
    return mix64((uint64_t)(uintptr_t)hm ^ mix64(n + 0x632be59bd9b4e019ULL));
}

tkc_hashmap_t *tkc_hashmap_new(void)
{
    tkc_hashmap_t *hm = tkc_calloc(1, sizeof(*hm));
    hm->nbuckets = INITIAL_BUCKETS;
    hm->buckets = tkc_calloc(hm->nbuckets, sizeof(*hm->buckets));
    hm->seed = new_seed(hm);
    return hm;
}

tkc_hashmap_t *tkc_hashmap_new_fixed(size_t klen)
{
    if (klen == 0 || klen > TKC_HASHMAP_FIXED_MAX_KEY)
        abort(); /* a caller bug: use tkc_hashmap_new() */
    tkc_hashmap_t *hm = tkc_calloc(1, sizeof(*hm));
    hm->fixed_klen = (uint32_t)klen;
    hm->slot_size = (uint32_t)(sizeof(void *) + ((klen + 7) & ~(size_t)7));
    hm->nbuckets = INITIAL_BUCKETS;
    hm->slots = tkc_calloc(hm->nbuckets, hm->slot_size);
    hm->seed = new_seed(hm);
    return hm;
}

/* A fixed map is used with keys of another length: a caller bug. */
static void check_fixed_klen(const tkc_hashmap_t *hm, size_t klen)
{
    if (klen != hm->fixed_klen)
        abort();
}

/* How far the entry in slot @p i is from its home slot. */
static size_t fixed_dist(const tkc_hashmap_t *hm, size_t i, uint8_t *sl)
{
    size_t mask = hm->nbuckets - 1;
    size_t home = hash_bytes(hm->seed, slot_key(sl), hm->fixed_klen) & mask;
    return (i - home) & mask;
}

/*
 * Index of the slot holding the key, or SIZE_MAX. Robin Hood order (an entry
 * never sits behind one that is closer to its home) lets a miss stop as soon
 * as it meets an entry closer to home than the key would be.
 */
static size_t fixed_find(const tkc_hashmap_t *hm, const void *key)
{
    size_t mask = hm->nbuckets - 1;
    size_t i = hash_bytes(hm->seed, key, hm->fixed_klen) & mask;
    for (size_t d = 0;; i = (i + 1) & mask, d++) {
        uint8_t *sl = slot_at(hm, i);
        if (!slot_val(sl))
            return SIZE_MAX;
        if (memcmp(slot_key(sl), key, hm->fixed_klen) == 0)
            return i;
        if (fixed_dist(hm, i, sl) < d)
            return SIZE_MAX;
    }
}

/* Inserts a slot's bytes (key not present), displacing richer entries. */
static void fixed_insert(tkc_hashmap_t *hm, const uint8_t *entry)
{
    uint8_t carry[sizeof(void *) + TKC_HASHMAP_FIXED_MAX_KEY], tmp[sizeof(carry)];
    memcpy(carry, entry, hm->slot_size);
    size_t mask = hm->nbuckets - 1;
    size_t i = hash_bytes(hm->seed, slot_key(carry), hm->fixed_klen) & mask;
    for (size_t d = 0;; i = (i + 1) & mask, d++) {
        uint8_t *sl = slot_at(hm, i);
        if (!slot_val(sl)) {
            memcpy(sl, carry, hm->slot_size);
            return;
        }
        size_t sd = fixed_dist(hm, i, sl);
        if (sd < d) {
            memcpy(tmp, sl, hm->slot_size);
            memcpy(sl, carry, hm->slot_size);
            memcpy(carry, tmp, hm->slot_size);
            d = sd;
        }
    }
}

static void fixed_grow(tkc_hashmap_t *hm)
{
    uint8_t *old = hm->slots;
    size_t old_n = hm->nbuckets;
    hm->nbuckets = old_n * 2;
    hm->slots = tkc_calloc(hm->nbuckets, hm->slot_size);
    for (size_t i = 0; i < old_n; i++) {
        uint8_t *sl = old + i * hm->slot_size;
        if (slot_val(sl))
            fixed_insert(hm, sl);
    }
    tkc_free(old);
}

static void *fixed_put(tkc_hashmap_t *hm, const void *key, void *val)
{
    size_t i = fixed_find(hm, key);
    if (i != SIZE_MAX) {
        uint8_t *sl = slot_at(hm, i);
        void *old = slot_val(sl);
        slot_set_val(sl, val);
        return old;
    }
    /* 7/8 at most: Robin Hood keeps probe runs short at that load */
    if ((hm->count + 1) * 8 > hm->nbuckets * 7)
        fixed_grow(hm);
    uint8_t entry[sizeof(void *) + TKC_HASHMAP_FIXED_MAX_KEY];
    memset(entry, 0, hm->slot_size);
    slot_set_val(entry, val);
    memcpy(slot_key(entry), key, hm->fixed_klen);
    fixed_insert(hm, entry);
    hm->count++;
    hm->key_bytes += hm->fixed_klen;
    return NULL;
}

static void *fixed_remove(tkc_hashmap_t *hm, const void *key)
{
    size_t i = fixed_find(hm, key);
    if (i == SIZE_MAX)
        return NULL;
    size_t mask = hm->nbuckets - 1;
    uint8_t *hole = slot_at(hm, i);
    void *val = slot_val(hole);
    /* backward shift: the following entries that are not at home move one
     * slot back, which keeps the Robin Hood order */
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        uint8_t *sl = slot_at(hm, j);
        if (!slot_val(sl) || fixed_dist(hm, j, sl) == 0)
            break;
        memcpy(hole, sl, hm->slot_size);
        hole = sl;
    }
    memset(hole, 0, hm->slot_size);
    hm->count--;
    hm->key_bytes -= hm->fixed_klen;
    return val;
}

void tkc_hashmap_clear(tkc_hashmap_t *hm, tkc_hashmap_free_cb *val_free)
{
    if (hm->fixed_klen) {
        for (size_t i = 0; i < hm->nbuckets; i++) {
            uint8_t *sl = slot_at(hm, i);
            void *v = slot_val(sl);
            if (v && val_free)
                val_free(v);
        }
        memset(hm->slots, 0, hm->nbuckets * hm->slot_size);
        hm->count = 0;
        hm->key_bytes = 0;
        return;
    }
    for (size_t i = 0; i < hm->nbuckets; i++) {
        entry_t *e = hm->buckets[i];
        while (e) {
            entry_t *next = e->next;
            if (val_free)
                val_free(e->val);
            tkc_free(e);
            e = next;
        }
        hm->buckets[i] = NULL;
    }
    hm->count = 0;
    hm->key_bytes = 0;
}

void tkc_hashmap_destroy(tkc_hashmap_t *hm, tkc_hashmap_free_cb *val_free)
{
    if (!hm)
        return;
    tkc_hashmap_clear(hm, val_free);
    tkc_free(hm->buckets);
    tkc_free(hm->slots);
    tkc_free(hm);
}

static entry_t **find_slot(const tkc_hashmap_t *hm, uint32_t h, const void *key, size_t klen)
{
    entry_t **pp = &hm->buckets[h & (hm->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        entry_t *e = *pp;
        if (e->hash == h && e->klen == klen && (klen == 0 || memcmp(e->key, key, klen) == 0))
            return pp;
    }
    return pp;
}

void *tkc_hashmap_get(const tkc_hashmap_t *hm, const void *key, size_t klen)
{
    if (hm->fixed_klen) {
        check_fixed_klen(hm, klen);
        size_t i = fixed_find(hm, key);
        return i == SIZE_MAX ? NULL : slot_val(slot_at(hm, i));
    }
    uint32_t h = hash_bytes(hm->seed, key, klen);
    entry_t **pp = find_slot(hm, h, key, klen);
    return *pp ? (*pp)->val : NULL;
}

static void grow(tkc_hashmap_t *hm)
{
    size_t nb = hm->nbuckets * 2;
    entry_t **b = tkc_calloc(nb, sizeof(*b));
    for (size_t i = 0; i < hm->nbuckets; i++) {
        entry_t *e = hm->buckets[i];
        while (e) {
            entry_t *next = e->next;
            entry_t **slot = &b[e->hash & (nb - 1)];
            e->next = *slot;
            *slot = e;
            e = next;
        }
    }
    tkc_free(hm->buckets);
    hm->buckets = b;
    hm->nbuckets = nb;
}

void *tkc_hashmap_put(tkc_hashmap_t *hm, const void *key, size_t klen, void *val)
{
    if (hm->fixed_klen) {
        check_fixed_klen(hm, klen);
        return fixed_put(hm, key, val);
    }
    uint32_t h = hash_bytes(hm->seed, key, klen);
    entry_t **pp = find_slot(hm, h, key, klen);
    if (*pp) {
        void *old = (*pp)->val;
        (*pp)->val = val;
        return old;
    }
    if (klen > UINT32_MAX)
        abort(); /* a 4 GiB key is a bug of the caller, not a case to handle */
    entry_t *e = tkc_malloc(sizeof(*e) + klen);
    e->next = NULL;
    e->hash = h;
    e->val = val;
    e->klen = (uint32_t)klen;
    if (klen)
        memcpy(e->key, key, klen);
    *pp = e;
    hm->count++;
    hm->key_bytes += klen;
    if (hm->count >= hm->nbuckets)
        grow(hm);
    return NULL;
}

void *tkc_hashmap_remove(tkc_hashmap_t *hm, const void *key, size_t klen)
{
    if (hm->fixed_klen) {
        check_fixed_klen(hm, klen);
        return fixed_remove(hm, key);
    }
    uint32_t h = hash_bytes(hm->seed, key, klen);
    entry_t **pp = find_slot(hm, h, key, klen);
    entry_t *e = *pp;
    if (!e)
        return NULL;
    void *val = e->val;
    *pp = e->next;
    hm->count--;
    hm->key_bytes -= klen;
    tkc_free(e);
    return val;
}

size_t tkc_hashmap_count(const tkc_hashmap_t *hm)
{
    return hm->count;
}

size_t tkc_hashmap_entry_bytes(size_t klen)
{
    return sizeof(entry_t) + klen;
}

size_t tkc_hashmap_bytes(const tkc_hashmap_t *hm)
{
    if (hm->fixed_klen)
        return sizeof(*hm) + hm->nbuckets * hm->slot_size;
    return sizeof(*hm) + hm->nbuckets * sizeof(*hm->buckets) + hm->count * sizeof(entry_t) +
           hm->key_bytes;
}

bool tkc_hashmap_next(const tkc_hashmap_t *hm, tkc_hashmap_iter_t *it, const void **key,
                      size_t *klen, void **val)
{
    if (hm->fixed_klen) {
        /* it->bucket: the next slot to look at */
        for (; it->bucket < hm->nbuckets; it->bucket++) {
            uint8_t *sl = slot_at(hm, it->bucket);
            void *v = slot_val(sl);
            if (!v)
                continue;
            it->bucket++;
            if (key)
                *key = slot_key(sl);
            if (klen)
                *klen = hm->fixed_klen;
            if (val)
                *val = v;
            return true;
        }
        return false;
    }
    entry_t *e = it->node;
    if (e) {
        e = e->next;
        if (!e)
            it->bucket++;
    }
    while (!e && it->bucket < hm->nbuckets) {
        e = hm->buckets[it->bucket];
        if (!e)
            it->bucket++;
    }
    it->node = e;
    if (!e)
        return false;
    if (key)
        *key = e->key;
    if (klen)
        *klen = e->klen;
    if (val)
        *val = e->val;
    return true;
}
