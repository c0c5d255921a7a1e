/*
 * sim_model.c: the MVCC model behind tikv-sim (see sim_model.h).
 *
 * DESIGN
 * One mutex guards everything. Every mutation is applied and reported to the
 * observer under it, so the observer (the CDC service) sees changes in apply
 * order, and a resolved ts computed under the lock (TSO, then min lock ts)
 * can never be undercut by a later commit: commit_ts is allocated from the
 * same TSO under the same lock.
 *
 * Keys: a sorted array of pointers to key records (raw key, encoded key,
 * versions newest first, optional lock). The key set of the workload is
 * created up front, so the array rarely changes; keys outside it are
 * inserted in batches (sort + merge, O(K)). Records never move, so their
 * pointers stay valid; their index in the array is kept in the record.
 * Exact lookups (every mutation) use a hash index over raw keys, and each
 * record caches its region until the next split or merge: with both, the
 * generator commits ~400k rows/s on one core (Release build, no-op
 * observer, truth file on), against ~140k/s with binary searches.
 *
 * Min lock ts: the CDC service asks for the oldest lock of every subscribed
 * range every resolved-ts interval (100k regions per second in benchmarks),
 * so this must not walk keys. A bottom-up segment tree over key positions
 * holds min(lock start_ts) per node: a range query is two binary searches
 * over the key array plus O(log K) tree nodes, a lock change is O(log K),
 * independent of the number of locks or regions (a per-region lock count
 * would need rebalancing on every split/merge; a sorted lock set is O(L) per
 * insert when a huge transaction holds 100k locks). Inserting keys rebuilds
 * the tree (O(K), rare).
 *
 * Regions: a sorted array of pointers by encoded start key plus an id hash
 * map. Split/merge memmove the pointer array (O(R), rare); lookups by key are
 * binary searches. Ids (regions and peers) come from one counter, never
 * reused, like PD's id allocator.
 *
 * Transactions: a hash map start_ts -> status (locked, committed + commit_ts,
 * rolled back) with the primary key and the keys it locked (for resolving).
 * Finished transactions are kept in a FIFO and the oldest are forgotten
 * beyond TXN_KEEP, so memory is bounded; a txn is never forgotten while it
 * holds a lock.
 *
 * Truth: one JSON line per committed key, written under the lock in commit
 * order to the caller's FILE; a small thread flushes it every 50 ms when
 * something was written (stdio locks the FILE, so no model lock is needed).
 *
 * GC: versions at or below the GC safepoint except the newest (and that one
 * too if it is a delete) are dropped, for every key when the safepoint moves
 * and for a key whenever it gets a new version. Versions above it are kept
 * forever (as TiKV does), so memory grows with writes unless someone
 * advances the safepoint.
 */
#include "sim_model.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "util/clock.h"
#include "util/keycodec.h"
#include "util/mem.h"

#define TSO_LOGICAL_MAX (1 << TKC_TSO_LOGICAL_BITS)
#define TXN_KEEP 200000          /* finished txn records kept for status queries */
#define FIRST_ID 1000            /* region/peer ids start above any store id */
#define TRUTH_FLUSH_TICK_MS 50
#define MAX_REGIONS 100000

/* ===== small containers ===== */

/* uint64 -> pointer, open addressing with linear probing; key 0 = empty
 * (region ids and TSOs are never 0). Deletion shifts entries back, so no
 * tombstones accumulate. */
typedef struct {
    uint64_t *keys;
    void **vals;
    size_t cap; /* power of two */
    size_t n;
} u64map_t;

static size_t u64_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= UINT64_C(0xff51afd7ed558ccd);
    k ^= k >> 33;
    k *= UINT64_C(0xc4ceb9fe1a85ec53);
    k ^= k >> 33;
    return (size_t)k;
}

static void u64map_init(u64map_t *mp)
{
    mp->cap = 64;
    mp->n = 0;
    mp->keys = tkc_calloc(mp->cap, sizeof(uint64_t));
    mp->vals = tkc_calloc(mp->cap, sizeof(void *));
}

static void u64map_fini(u64map_t *mp)
{
    tkc_free(mp->keys);
    tkc_free(mp->vals);
    memset(mp, 0, sizeof(*mp));
}

static void *u64map_get(const u64map_t *mp, uint64_t k)
{
    size_t mask = mp->cap - 1;
    for (size_t i = u64_hash(k) & mask;; i = (i + 1) & mask) {
        if (mp->keys[i] == k)
            return mp->vals[i];
        if (mp->keys[i] == 0)
            return NULL;
    }
}

static void u64map_put(u64map_t *mp, uint64_t k, void *v);

static void u64map_grow(u64map_t *mp)
{
    u64map_t old = *mp;
    mp->cap = old.cap * 2;
    mp->n = 0;
    mp->keys = tkc_calloc(mp->cap, sizeof(uint64_t));
    mp->vals = tkc_calloc(mp->cap, sizeof(void *));
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i])
            u64map_put(mp, old.keys[i], old.vals[i]);
    tkc_free(old.keys);
    tkc_free(old.vals);
}

static void u64map_put(u64map_t *mp, uint64_t k, void *v)
{
    if ((mp->n + 1) * 2 > mp->cap)
        u64map_grow(mp);
    size_t mask = mp->cap - 1;
    for (size_t i = u64_hash(k) & mask;; i = (i + 1) & mask) {
        if (mp->keys[i] == k) {
            mp->vals[i] = v;
            return;
        }
        if (mp->keys[i] == 0) {
            mp->keys[i] = k;
            mp->vals[i] = v;
            mp->n++;
            return;
        }
    }
}

static void u64map_del(u64map_t *mp, uint64_t k)
{
    size_t mask = mp->cap - 1;
    size_t i = u64_hash(k) & mask;
    while (mp->keys[i] != k) {
        if (mp->keys[i] == 0)
            return;
        i = (i + 1) & mask;
    }
    /* backward shift: move later members of the probe run into the hole
     * unless their home slot lies cyclically in (hole, j] */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (mp->keys[j] == 0)
            break;
        size_t h = u64_hash(mp->keys[j]) & mask;
        bool stays = (i <= j) ? (i < h && h <= j) : (i < h || h <= j);
        if (!stays) {
            mp->keys[i] = mp->keys[j];
            mp->vals[i] = mp->vals[j];
            i = j;
        }
    }
    mp->keys[i] = 0;
    mp->vals[i] = NULL;
    mp->n--;
}

/* ===== records ===== */

struct txn_s;

typedef struct key_rec_s {
    sim_bytes_t raw; /* both point into this allocation */
    sim_bytes_t enc;
    size_t idx;      /* position in m->keys */
    uint64_t mark;   /* last operation that touched it (duplicate detection) */
    struct key_rec_s *hnext; /* hash chain of the exact-lookup index */
    struct region_rec_s *rcache; /* its region, valid while rgen == m->topo_gen */
    uint64_t rgen;
    sim_lock_t *lock;
    sim_version_t *vers; /* newest first */
    size_t nvers, capvers;
} key_rec_t;

typedef struct txn_s {
    uint64_t start_ts;
    uint64_t commit_ts;
    sim_txn_state_t state;
    sim_bytes_t primary;  /* owned; locks borrow it */
    key_rec_t **keys;     /* keys it locked (some may be resolved since) */
    size_t nkeys, capkeys;
    size_t nlocks;        /* locks it still holds */
    bool queued;          /* in the finished FIFO */
} txn_t;

typedef struct region_rec_s {
    sim_region_t r;       /* first: a region_rec_t * is a sim_region_t * */
    uint64_t resolved_noted;
} region_rec_t;

typedef struct {
    char *id;
    uint64_t safe_point;
    int64_t expire_ms;    /* wall clock */
} service_sp_t;

struct sim_model_s {
    pthread_mutex_t mu;
    uint64_t cluster_id;
    int64_t table_id;
    int64_t key_count;
    bool raw_keys;

    int64_t tso_physical;
    int64_t tso_logical;

    sim_store_t *stores;
    int nstores;

    key_rec_t **keys;
    size_t nkeys, capkeys;
    key_rec_t **hash;     /* raw key -> record, chained; nhash a power of two */
    size_t nhash;
    uint64_t *seg;        /* segment tree, 2 * nkeys entries */
    uint64_t mark_seq;

    region_rec_t **regions;
    size_t nregions, capregions;
    u64map_t region_ids;
    uint64_t next_id;
    uint64_t topo_gen;    /* bumped by split/merge: invalidates key->region caches */

    u64map_t txns;
    uint64_t *done;       /* ring of finished start_ts, oldest at done_head */
    size_t done_head, done_len, done_cap;

    uint64_t gc_safepoint;
    service_sp_t *services;
    size_t nservices;

    sim_observer_cb obs;
    void *obs_opaque;

    FILE *truth;
    atomic_bool truth_dirty;
    char *line;           /* scratch for truth lines */
    size_t line_cap;

    pthread_t flusher;
    bool flusher_started;
    pthread_mutex_t fl_mu;
    pthread_cond_t fl_cv;
    bool fl_stop;

    uint64_t nversions, nlocks, value_bytes, ncommits;
};

/* ===== key codec wrappers (public) ===== */

sim_bytes_t sim_key_encode(const uint8_t *raw, size_t len)
{
    sim_bytes_t b;
    b.len = tkc_keycodec_encoded_len(len);
    b.data = tkc_malloc(b.len);
    tkc_keycodec_encode(raw, len, b.data);
    return b;
}

int sim_key_decode(const uint8_t *enc, size_t len, sim_bytes_t *raw_out)
{
    size_t n;
    if (tkc_keycodec_decode(enc, len, NULL, &n) != 0)
        return -1;
    raw_out->data = tkc_malloc(n ? n : 1);
    tkc_keycodec_decode(enc, len, raw_out->data, &raw_out->len);
    return 0;
}

sim_bytes_t sim_key_record(int64_t table_id, int64_t handle)
{
    sim_bytes_t b = {tkc_malloc(TKC_KEYCODEC_RECORD_KEY_LEN), TKC_KEYCODEC_RECORD_KEY_LEN};
    tkc_keycodec_record_key(table_id, handle, b.data);
    return b;
}

int sim_bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return tkc_keycodec_cmp(a, alen, b, blen);
}

void sim_bytes_free(sim_bytes_t *b)
{
    tkc_free(b->data);
    b->data = NULL;
    b->len = 0;
}

static sim_bytes_t bytes_dup(const uint8_t *p, size_t len)
{
    sim_bytes_t b = {tkc_malloc(len ? len : 1), len};
    if (len)
        memcpy(b.data, p, len);
    return b;
}

/* ===== TSO ===== */

/* Issues @p count consecutive timestamps and returns the largest. physical
 * follows the wall clock; when the clock stands still (or went back) the
 * logical part counts up, and when it would overflow 18 bits physical runs
 * one millisecond ahead (PD waits instead; running ahead keeps callers that
 * hold the lock from sleeping and still stays strictly increasing). */
static uint64_t tso_alloc(sim_model_t *m, uint32_t count)
{
    int64_t wall = tkc_clock_wall_ms();
    int64_t phys = m->tso_physical, logical;
    if (wall > phys) {
        phys = wall;
        logical = (int64_t)count - 1;
    } else if (m->tso_logical + (int64_t)count < TSO_LOGICAL_MAX) {
        logical = m->tso_logical + (int64_t)count;
    } else {
        phys = phys + 1;
        logical = (int64_t)count - 1;
    }
    m->tso_physical = phys;
    m->tso_logical = logical;
    return tkc_tso_compose(phys, logical);
}

uint64_t sim_model_tso_locked(sim_model_t *m)
{
    return tso_alloc(m, 1);
}

uint64_t sim_model_tso_batch_locked(sim_model_t *m, uint32_t count)
{
    /* PD fails a request with count 0; more than the logical space cannot
     * share one physical millisecond */
    if (count == 0 || count > TSO_LOGICAL_MAX)
        return 0;
    return tso_alloc(m, count);
}

uint64_t sim_model_tso(sim_model_t *m)
{
    sim_model_lock(m);
    uint64_t ts = tso_alloc(m, 1);
    sim_model_unlock(m);
    return ts;
}

/* ===== key set ===== */

static size_t key_raw_of(bool raw_keys, int64_t table_id, int64_t i, uint8_t out[SIM_KEY_MAX])
{
    if (raw_keys) {
        char buf[SIM_KEY_MAX];
        int n = snprintf(buf, sizeof(buf), "k%08" PRId64, i);
        memcpy(out, buf, (size_t)n);
        return (size_t)n;
    }
    tkc_keycodec_record_key(table_id, i, out);
    return TKC_KEYCODEC_RECORD_KEY_LEN;
}

int64_t sim_model_key_count(const sim_model_t *m)
{
    return m->key_count;
}

size_t sim_model_key_raw(const sim_model_t *m, int64_t i, uint8_t out[SIM_KEY_MAX])
{
    return key_raw_of(m->raw_keys, m->table_id, i, out);
}

static key_rec_t *key_rec_new(const uint8_t *raw, size_t len)
{
    size_t elen = tkc_keycodec_encoded_len(len);
    key_rec_t *k = tkc_calloc(1, sizeof(*k) + len + elen);
    k->raw.data = (uint8_t *)(k + 1);
    k->raw.len = len;
    if (len)
        memcpy(k->raw.data, raw, len);
    k->enc.data = k->raw.data + len;
    k->enc.len = elen;
    tkc_keycodec_encode(raw, len, k->enc.data);
    return k;
}

/* First key position whose encoded key is >= @p ekey. */
static size_t key_lower_bound(const sim_model_t *m, const uint8_t *ekey, size_t len)
{
    size_t lo = 0, hi = m->nkeys;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const key_rec_t *k = m->keys[mid];
        if (tkc_keycodec_cmp(k->enc.data, k->enc.len, ekey, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Exact lookups (every mutation, commit and lock query) go through a hash
 * index over raw keys: a binary search over encoded keys costs ~17 memcmps
 * of keys that share their first dozen bytes, which profiling showed as the
 * generator's largest cost. Range operations still use the sorted array. */
static size_t key_hash(const uint8_t *raw, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ raw[i]) * UINT64_C(0x100000001b3);
    return (size_t)(h ^ (h >> 29));
}

static void hash_insert(sim_model_t *m, key_rec_t *k)
{
    size_t b = key_hash(k->raw.data, k->raw.len) & (m->nhash - 1);
    k->hnext = m->hash[b];
    m->hash[b] = k;
}

/* Sizes the index for the current key count (power of two, load <= 1). */
static void hash_rebuild(sim_model_t *m)
{
    size_t want = 1024;
    while (want < m->nkeys)
        want *= 2;
    if (want == m->nhash)
        return;
    tkc_free(m->hash);
    m->nhash = want;
    m->hash = tkc_calloc(want, sizeof(key_rec_t *));
    for (size_t i = 0; i < m->nkeys; i++)
        hash_insert(m, m->keys[i]);
}

static key_rec_t *key_find(const sim_model_t *m, const uint8_t *raw, size_t len)
{
    for (key_rec_t *k = m->hash[key_hash(raw, len) & (m->nhash - 1)]; k; k = k->hnext)
        if (k->raw.len == len && (len == 0 || memcmp(k->raw.data, raw, len) == 0))
            return k;
    return NULL;
}

/* ----- segment tree of min lock start_ts over key positions ----- */

static uint64_t lock_ts_of(const key_rec_t *k)
{
    return k->lock ? k->lock->start_ts : UINT64_MAX;
}

static void seg_rebuild(sim_model_t *m)
{
    size_t n = m->nkeys;
    tkc_free(m->seg);
    m->seg = tkc_malloc(2 * (n ? n : 1) * sizeof(uint64_t));
    m->seg[0] = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        m->seg[n + i] = lock_ts_of(m->keys[i]);
    for (size_t i = n; i-- > 1;)
        m->seg[i] = m->seg[2 * i] < m->seg[2 * i + 1] ? m->seg[2 * i] : m->seg[2 * i + 1];
}

static void seg_update(sim_model_t *m, size_t idx)
{
    size_t n = m->nkeys;
    size_t i = idx + n;
    m->seg[i] = lock_ts_of(m->keys[idx]);
    for (i >>= 1; i >= 1; i >>= 1)
        m->seg[i] = m->seg[2 * i] < m->seg[2 * i + 1] ? m->seg[2 * i] : m->seg[2 * i + 1];
}

static uint64_t seg_min(const sim_model_t *m, size_t l, size_t r)
{
    size_t n = m->nkeys;
    uint64_t res = UINT64_MAX;
    for (l += n, r += n; l < r; l >>= 1, r >>= 1) {
        if (l & 1) {
            if (m->seg[l] < res)
                res = m->seg[l];
            l++;
        }
        if (r & 1) {
            --r;
            if (m->seg[r] < res)
                res = m->seg[r];
        }
    }
    return res;
}

static int key_rec_cmp(const void *a, const void *b)
{
    const key_rec_t *x = *(key_rec_t *const *)a, *y = *(key_rec_t *const *)b;
    return tkc_keycodec_cmp(x->enc.data, x->enc.len, y->enc.data, y->enc.len);
}

/* Merges @p n new records (sorted, distinct, absent from the array) into
 * the key array; reindexes and rebuilds the tree. */
static void keys_insert_sorted(sim_model_t *m, key_rec_t **add, size_t n)
{
    if (n == 0)
        return;
    if (m->nkeys + n > m->capkeys) {
        size_t cap = m->capkeys ? m->capkeys : 64;
        while (cap < m->nkeys + n)
            cap *= 2;
        m->keys = tkc_realloc(m->keys, cap * sizeof(key_rec_t *));
        m->capkeys = cap;
    }
    /* merge from the back so nothing is overwritten before it is moved */
    size_t i = m->nkeys, j = n, out = m->nkeys + n;
    while (j > 0) {
        if (i > 0 && key_rec_cmp(&m->keys[i - 1], &add[j - 1]) > 0)
            m->keys[--out] = m->keys[--i];
        else
            m->keys[--out] = add[--j];
    }
    m->nkeys += n;
    for (size_t k = 0; k < m->nkeys; k++)
        m->keys[k]->idx = k;
    seg_rebuild(m);
    size_t before = m->nhash;
    hash_rebuild(m);
    if (m->nhash == before) /* not rebuilt: add the new ones */
        for (size_t k = 0; k < n; k++)
            hash_insert(m, add[k]);
}

static void lock_set(sim_model_t *m, key_rec_t *k, sim_lock_t *lk)
{
    k->lock = lk;
    seg_update(m, k->idx);
}

/* ===== versions and GC ===== */

static void version_free(sim_model_t *m, sim_version_t *v)
{
    m->value_bytes -= v->value.len;
    m->nversions--;
    tkc_free(v->value.data);
}

/* Drops what TiKV's GC would: below the safepoint only the newest version
 * survives, and not even that one if it is a delete. */
static void key_prune(sim_model_t *m, key_rec_t *k, uint64_t safepoint)
{
    if (safepoint == 0)
        return;
    size_t i = 0;
    while (i < k->nvers && k->vers[i].commit_ts > safepoint)
        i++;
    if (i == k->nvers)
        return;
    size_t keep = k->vers[i].op == SIM_OP_PUT ? i + 1 : i;
    for (size_t j = keep; j < k->nvers; j++)
        version_free(m, &k->vers[j]);
    k->nvers = keep;
}

/* Adds a version (takes ownership of @p value), keeping newest-first order. */
static sim_version_t *version_add(sim_model_t *m, key_rec_t *k, uint64_t start_ts,
                                  uint64_t commit_ts, sim_op_t op, sim_bytes_t value)
{
    key_prune(m, k, m->gc_safepoint);
    if (k->nvers == k->capvers) {
        k->capvers = k->capvers ? k->capvers * 2 : 2;
        k->vers = tkc_realloc(k->vers, k->capvers * sizeof(sim_version_t));
    }
    /* normally at the front: a lock excludes newer commits on its key */
    size_t pos = 0;
    while (pos < k->nvers && k->vers[pos].commit_ts > commit_ts)
        pos++;
    memmove(&k->vers[pos + 1], &k->vers[pos], (k->nvers - pos) * sizeof(sim_version_t));
    k->vers[pos] = (sim_version_t){start_ts, commit_ts, op, value};
    k->nvers++;
    m->nversions++;
    m->value_bytes += value.len;
    return &k->vers[pos];
}

static const sim_version_t *version_before(const key_rec_t *k, uint64_t ts)
{
    for (size_t i = 0; i < k->nvers; i++)
        if (k->vers[i].commit_ts < ts)
            return &k->vers[i];
    return NULL;
}

static bool old_value_of(const key_rec_t *k, uint64_t ts, sim_bytes_t *out)
{
    const sim_version_t *v = version_before(k, ts);
    if (!v || v->op != SIM_OP_PUT)
        return false;
    *out = v->value;
    return true;
}

/* ===== regions ===== */

static bool bytes_empty(const sim_bytes_t *b)
{
    return b == NULL || b->len == 0;
}

/* Number of regions whose start is <= @p ekey. */
static size_t region_upper(const sim_model_t *m, const uint8_t *ekey, size_t len)
{
    size_t lo = 0, hi = m->nregions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sim_bytes_t *s = &m->regions[mid]->r.start;
        if (tkc_keycodec_cmp(s->data, s->len, ekey, len) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static region_rec_t *region_for_key(const sim_model_t *m, const uint8_t *ekey, size_t len)
{
    size_t u = region_upper(m, ekey, len);
    if (u == 0)
        return NULL;
    region_rec_t *r = m->regions[u - 1];
    if (!bytes_empty(&r->r.end) && tkc_keycodec_cmp(ekey, len, r->r.end.data, r->r.end.len) >= 0)
        return NULL;
    return r;
}

/* Index of a region in the sorted array (binary search by its start). */
static size_t region_index(const sim_model_t *m, const region_rec_t *r)
{
    size_t u = region_upper(m, r->r.start.data, r->r.start.len);
    return u - 1;
}

static void regions_reserve(sim_model_t *m, size_t n)
{
    if (n <= m->capregions)
        return;
    size_t cap = m->capregions ? m->capregions : 16;
    while (cap < n)
        cap *= 2;
    m->regions = tkc_realloc(m->regions, cap * sizeof(region_rec_t *));
    m->capregions = cap;
}

static void region_free(region_rec_t *r)
{
    sim_bytes_free(&r->r.start);
    sim_bytes_free(&r->r.end);
    tkc_free(r);
}

size_t sim_model_region_count_locked(const sim_model_t *m)
{
    return m->nregions;
}

sim_region_t *sim_model_region_at_locked(sim_model_t *m, size_t idx)
{
    return idx < m->nregions ? &m->regions[idx]->r : NULL;
}

sim_region_t *sim_model_region_by_id_locked(sim_model_t *m, uint64_t region_id)
{
    region_rec_t *r = region_id ? u64map_get(&m->region_ids, region_id) : NULL;
    return r ? &r->r : NULL;
}

sim_region_t *sim_model_region_by_key_locked(sim_model_t *m, const uint8_t *ekey, size_t len)
{
    region_rec_t *r = region_for_key(m, ekey, len);
    return r ? &r->r : NULL;
}

size_t sim_model_region_lower_bound_locked(sim_model_t *m, const uint8_t *ekey, size_t len)
{
    size_t lo = 0, hi = m->nregions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sim_bytes_t *e = &m->regions[mid]->r.end;
        if (bytes_empty(e) || tkc_keycodec_cmp(e->data, e->len, ekey, len) > 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The region of a key, for row events: cached in the key record until the
 * next split or merge (a binary search over 100k regions per row was the
 * generator's next cost after the key lookup). */
static uint64_t region_id_of_key(const sim_model_t *m, key_rec_t *k, uint64_t *resolved)
{
    if (k->rgen != m->topo_gen) {
        k->rcache = region_for_key(m, k->enc.data, k->enc.len);
        k->rgen = m->topo_gen;
    }
    region_rec_t *r = k->rcache;
    if (resolved)
        *resolved = r ? r->resolved_noted : 0;
    return r ? r->r.id : 0;
}

/* ===== observer and truth ===== */

static void emit(sim_model_t *m, const sim_event_t *ev)
{
    if (m->obs)
        m->obs(m->obs_opaque, ev);
}

static void emit_row(sim_model_t *m, sim_event_kind_t kind, key_rec_t *k, sim_op_t op,
                     const sim_bytes_t *value, const sim_bytes_t *old_value, uint64_t start_ts,
                     uint64_t commit_ts, uint64_t region_id)
{
    if (!m->obs)
        return;
    sim_event_t ev = {0};
    ev.kind = kind;
    ev.region_id = region_id;
    ev.key = &k->raw;
    ev.op = op;
    ev.value = value;
    ev.old_value = old_value;
    ev.start_ts = start_ts;
    ev.commit_ts = commit_ts;
    m->obs(m->obs_opaque, &ev);
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static void truth_write(sim_model_t *m, const key_rec_t *k, const sim_version_t *v,
                        uint64_t region_id, uint64_t resolved)
{
    m->ncommits++;
    if (!m->truth)
        return;
    size_t need = 2 * k->raw.len + 256;
    if (need > m->line_cap) {
        m->line_cap = need * 2;
        m->line = tkc_realloc(m->line, m->line_cap);
    }
    static const char hex[] = "0123456789abcdef";
    char *p = m->line;
    memcpy(p, "{\"key\":\"", 8);
    p += 8;
    for (size_t i = 0; i < k->raw.len; i++) {
        *p++ = hex[k->raw.data[i] >> 4];
        *p++ = hex[k->raw.data[i] & 15];
    }
    uLong crc = v->value.len ? crc32(0L, v->value.data, (uInt)v->value.len) : 0;
    /* by hand rather than snprintf: this runs for every committed row */
    p = put_str(p, v->op == SIM_OP_DELETE ? "\",\"op\":\"delete\",\"value_len\":"
                                          : "\",\"op\":\"put\",\"value_len\":");
    p = put_u64(p, v->value.len);
    p = put_str(p, ",\"value_crc32\":");
    p = put_u64(p, crc);
    p = put_str(p, ",\"start_ts\":");
    p = put_u64(p, v->start_ts);
    p = put_str(p, ",\"commit_ts\":");
    p = put_u64(p, v->commit_ts);
    p = put_str(p, ",\"region_id\":");
    p = put_u64(p, region_id);
    p = put_str(p, ",\"region_resolved_ts\":");
    p = put_u64(p, resolved);
    p = put_str(p, "}\n");
    fwrite(m->line, 1, (size_t)(p - m->line), m->truth);
    atomic_store_explicit(&m->truth_dirty, true, memory_order_relaxed);
}

void sim_model_truth_flush(sim_model_t *m)
{
    if (!m->truth)
        return;
    atomic_store(&m->truth_dirty, false);
    fflush(m->truth);
}

static void *truth_flusher(void *arg)
{
    sim_model_t *m = arg;
    pthread_mutex_lock(&m->fl_mu);
    while (!m->fl_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += TRUTH_FLUSH_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&m->fl_cv, &m->fl_mu, &ts);
        if (atomic_exchange(&m->truth_dirty, false)) {
            /* stdio locks the FILE, so committers may keep writing */
            pthread_mutex_unlock(&m->fl_mu);
            fflush(m->truth);
            pthread_mutex_lock(&m->fl_mu);
        }
    }
    pthread_mutex_unlock(&m->fl_mu);
    return NULL;
}

void sim_model_set_observer(sim_model_t *m, sim_observer_cb cb, void *opaque)
{
    sim_model_lock(m);
    m->obs = cb;
    m->obs_opaque = opaque;
    sim_model_unlock(m);
}

void sim_model_note_resolved_locked(sim_model_t *m, uint64_t region_id, uint64_t ts)
{
    region_rec_t *r = region_id ? u64map_get(&m->region_ids, region_id) : NULL;
    if (r && ts > r->resolved_noted)
        r->resolved_noted = ts;
}

/* ===== transactions ===== */

static txn_t *txn_get(const sim_model_t *m, uint64_t start_ts)
{
    return start_ts ? u64map_get(&m->txns, start_ts) : NULL;
}

static txn_t *txn_create(sim_model_t *m, uint64_t start_ts, const uint8_t *primary, size_t plen,
                         sim_txn_state_t state)
{
    txn_t *t = tkc_calloc(1, sizeof(*t));
    t->start_ts = start_ts;
    t->state = state;
    t->primary = bytes_dup(primary, plen);
    u64map_put(&m->txns, start_ts, t);
    return t;
}

static void txn_free(txn_t *t)
{
    sim_bytes_free(&t->primary);
    tkc_free(t->keys);
    tkc_free(t);
}

static void txn_add_key(txn_t *t, key_rec_t *k)
{
    if (t->nkeys == t->capkeys) {
        t->capkeys = t->capkeys ? t->capkeys * 2 : 4;
        t->keys = tkc_realloc(t->keys, t->capkeys * sizeof(key_rec_t *));
    }
    t->keys[t->nkeys++] = k;
}

/* A txn that holds no lock and is decided joins the FIFO of finished ones;
 * the oldest beyond TXN_KEEP are forgotten (their status turns UNKNOWN). */
static void txn_maybe_finish(sim_model_t *m, txn_t *t)
{
    if (t->nlocks || t->state == SIM_TXN_LOCKED || t->queued)
        return;
    tkc_free(t->keys);
    t->keys = NULL;
    t->nkeys = t->capkeys = 0;
    t->queued = true;
    if (m->done_len == m->done_cap) {
        size_t cap = m->done_cap ? m->done_cap * 2 : 1024;
        uint64_t *ring = tkc_malloc(cap * sizeof(uint64_t));
        for (size_t i = 0; i < m->done_len; i++)
            ring[i] = m->done[(m->done_head + i) % m->done_cap];
        tkc_free(m->done);
        m->done = ring;
        m->done_cap = cap;
        m->done_head = 0;
    }
    m->done[(m->done_head + m->done_len) % m->done_cap] = t->start_ts;
    m->done_len++;
    while (m->done_len > TXN_KEEP) {
        uint64_t old = m->done[m->done_head];
        m->done_head = (m->done_head + 1) % m->done_cap;
        m->done_len--;
        txn_t *o = txn_get(m, old);
        if (o && o->queued && o->nlocks == 0) {
            u64map_del(&m->txns, old);
            txn_free(o);
        }
    }
}

static void lock_free(sim_model_t *m, sim_lock_t *lk)
{
    m->value_bytes -= lk->value.len;
    tkc_free(lk->value.data);
    tkc_free(lk);
}

/* Turns the lock on @p k into a version at @p commit_ts, reports COMMIT and
 * writes the truth line. */
static void key_commit(sim_model_t *m, key_rec_t *k, txn_t *t, uint64_t commit_ts)
{
    sim_lock_t *lk = k->lock;
    sim_bytes_t value = lk->value;
    m->value_bytes -= value.len; /* version_add counts it again */
    const sim_version_t *v = version_add(m, k, lk->start_ts, commit_ts, lk->op, value);
    lk->value.data = NULL;
    lk->value.len = 0;
    lock_set(m, k, NULL);
    lock_free(m, lk);
    m->nlocks--;
    t->nlocks--;
    uint64_t resolved;
    uint64_t rid = region_id_of_key(m, k, &resolved);
    emit_row(m, SIM_EV_COMMIT, k, v->op, &v->value, NULL, v->start_ts, commit_ts, rid);
    truth_write(m, k, v, rid, resolved);
}

static void key_rollback(sim_model_t *m, key_rec_t *k, txn_t *t)
{
    sim_lock_t *lk = k->lock;
    lock_set(m, k, NULL);
    m->nlocks--;
    t->nlocks--;
    uint64_t rid = region_id_of_key(m, k, NULL);
    /* the wire says op UNKNOWN for rollbacks; the lock's op is passed for
     * information only */
    emit_row(m, SIM_EV_ROLLBACK, k, lk->op, NULL, NULL, lk->start_ts, 0, rid);
    lock_free(m, lk);
}

/* ----- mutation batches: find records, reject duplicates, create missing ----- */

typedef struct {
    const uint8_t *key;
    size_t len;
    size_t idx; /* index into the caller's mutation array */
} pending_key_t;

static int pending_cmp(const void *a, const void *b)
{
    const pending_key_t *x = a, *y = b;
    return tkc_keycodec_cmp(x->key, x->len, y->key, y->len);
}

/* Looks every mutation's key up. @returns -1 (with *bad set) on an empty or
 * duplicate key; otherwise 0, recs[i] NULL for keys not yet in the model
 * (listed in *missing, to create with keys_create()). */
static int muts_lookup(sim_model_t *m, const sim_mutation_t *muts, size_t n, key_rec_t **recs,
                       pending_key_t **missing, size_t *nmissing, size_t *bad)
{
    uint64_t mark = ++m->mark_seq;
    *missing = NULL;
    *nmissing = 0;
    for (size_t i = 0; i < n; i++) {
        if (muts[i].key_len == 0 || muts[i].key == NULL) {
            *bad = i;
            goto err;
        }
        recs[i] = key_find(m, muts[i].key, muts[i].key_len);
        if (recs[i]) {
            if (recs[i]->mark == mark) {
                *bad = i;
                goto err;
            }
            recs[i]->mark = mark;
        } else {
            if (*missing == NULL)
                *missing = tkc_malloc(n * sizeof(pending_key_t));
            (*missing)[(*nmissing)++] = (pending_key_t){muts[i].key, muts[i].key_len, i};
        }
    }
    if (*nmissing > 1) {
        qsort(*missing, *nmissing, sizeof(pending_key_t), pending_cmp);
        for (size_t i = 1; i < *nmissing; i++)
            if (pending_cmp(&(*missing)[i - 1], &(*missing)[i]) == 0) {
                *bad = (*missing)[i].idx;
                goto err;
            }
    }
    return 0;
err:
    tkc_free(*missing);
    *missing = NULL;
    *nmissing = 0;
    return -1;
}

static void keys_create(sim_model_t *m, pending_key_t *missing, size_t nmissing, key_rec_t **recs)
{
    if (nmissing == 0)
        return;
    key_rec_t **add = tkc_malloc(nmissing * sizeof(key_rec_t *));
    for (size_t i = 0; i < nmissing; i++) {
        add[i] = key_rec_new(missing[i].key, missing[i].len);
        recs[missing[i].idx] = add[i];
    }
    keys_insert_sorted(m, add, nmissing); /* missing[] is sorted already */
    tkc_free(add);
}

/* ===== MVCC operations ===== */

sim_prewrite_rc_t sim_model_prewrite_ex(sim_model_t *m, uint64_t start_ts,
                                        const sim_mutation_t *muts, size_t n,
                                        const uint8_t *primary, size_t primary_len,
                                        uint64_t ttl_ms, size_t *bad_index_out,
                                        uint64_t *conflict_ts_out)
{
    size_t bad = 0;
    uint64_t conflict = 0;
    sim_prewrite_rc_t rc = SIM_PREWRITE_OK;
    if (n == 0 || primary == NULL || primary_len == 0 || start_ts == 0)
        return SIM_PREWRITE_INVALID;

    key_rec_t **recs = tkc_calloc(n, sizeof(key_rec_t *));
    pending_key_t *missing = NULL;
    size_t nmissing = 0;
    sim_model_lock(m);
    txn_t *t = txn_get(m, start_ts);
    if (t && t->state != SIM_TXN_LOCKED) {
        /* TiKV finds the commit or rollback record of start_ts */
        rc = SIM_PREWRITE_TXN_DONE;
        conflict = t->commit_ts;
        goto out;
    }
    if (muts_lookup(m, muts, n, recs, &missing, &nmissing, &bad) != 0) {
        rc = SIM_PREWRITE_INVALID;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        key_rec_t *k = recs[i];
        if (!k)
            continue;
        if (k->lock && k->lock->start_ts != start_ts) {
            rc = SIM_PREWRITE_LOCKED;
            bad = i;
            conflict = k->lock->start_ts;
            goto out;
        }
        /* a commit at or after our start ts: the optimistic txn lost */
        if (!k->lock && k->nvers && k->vers[0].commit_ts >= start_ts) {
            rc = SIM_PREWRITE_WRITE_CONFLICT;
            bad = i;
            conflict = k->vers[0].commit_ts;
            goto out;
        }
    }
    keys_create(m, missing, nmissing, recs);
    if (!t)
        t = txn_create(m, start_ts, primary, primary_len, SIM_TXN_LOCKED);
    for (size_t i = 0; i < n; i++) {
        key_rec_t *k = recs[i];
        if (k->lock)
            continue; /* our own lock already: idempotent retry */
        sim_lock_t *lk = tkc_calloc(1, sizeof(*lk));
        lk->start_ts = start_ts;
        lk->op = muts[i].op == SIM_OP_DELETE ? SIM_OP_DELETE : SIM_OP_PUT;
        lk->value = lk->op == SIM_OP_DELETE ? bytes_dup(NULL, 0)
                                            : bytes_dup(muts[i].value, muts[i].value_len);
        lk->primary = t->primary;
        lk->ttl_ms = ttl_ms;
        m->value_bytes += lk->value.len;
        lock_set(m, k, lk);
        m->nlocks++;
        t->nlocks++;
        txn_add_key(t, k);
        sim_bytes_t old;
        bool has_old = old_value_of(k, start_ts, &old);
        emit_row(m, SIM_EV_PREWRITE, k, lk->op, &lk->value, has_old ? &old : NULL, start_ts, 0,
                 region_id_of_key(m, k, NULL));
    }
out:
    sim_model_unlock(m);
    tkc_free(missing);
    tkc_free(recs);
    if (rc != SIM_PREWRITE_OK) {
        if (bad_index_out)
            *bad_index_out = bad;
        if (conflict_ts_out)
            *conflict_ts_out = conflict;
    }
    return rc;
}

int sim_model_prewrite(sim_model_t *m, uint64_t start_ts, const sim_mutation_t *muts, size_t n,
                       const uint8_t *primary, size_t primary_len)
{
    return sim_model_prewrite_ex(m, start_ts, muts, n, primary, primary_len,
                                 SIM_LOCK_TTL_DEFAULT_MS, NULL, NULL) == SIM_PREWRITE_OK
               ? 0
               : -1;
}

static bool has_version_of(const key_rec_t *k, uint64_t start_ts)
{
    for (size_t i = 0; i < k->nvers; i++)
        if (k->vers[i].start_ts == start_ts)
            return true;
    return false;
}

uint64_t sim_model_commit(sim_model_t *m, uint64_t start_ts, const sim_bytes_t *keys, size_t n)
{
    if (n == 0)
        return 0;
    key_rec_t **recs = tkc_calloc(n, sizeof(key_rec_t *));
    uint64_t commit_ts = 0;
    sim_model_lock(m);
    txn_t *t = txn_get(m, start_ts);
    if (!t || t->state == SIM_TXN_ROLLED_BACK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        key_rec_t *k = key_find(m, keys[i].data, keys[i].len);
        if (k && k->lock && k->lock->start_ts == start_ts)
            recs[i] = k;
        else if (!(k && has_version_of(k, start_ts)))
            goto out; /* neither locked nor committed by us: resolved away */
    }
    /* secondaries committed after the primary share its commit_ts (their
     * locks kept their regions' resolved ts below it meanwhile) */
    commit_ts = t->state == SIM_TXN_COMMITTED ? t->commit_ts : tso_alloc(m, 1);
    t->state = SIM_TXN_COMMITTED;
    t->commit_ts = commit_ts;
    for (size_t i = 0; i < n; i++)
        if (recs[i] && recs[i]->lock && recs[i]->lock->start_ts == start_ts)
            key_commit(m, recs[i], t, commit_ts);
    txn_maybe_finish(m, t);
out:
    sim_model_unlock(m);
    tkc_free(recs);
    return commit_ts;
}

void sim_model_rollback(sim_model_t *m, uint64_t start_ts, const sim_bytes_t *keys, size_t n)
{
    sim_model_lock(m);
    txn_t *t = txn_get(m, start_ts);
    if (t && t->state == SIM_TXN_COMMITTED) {
        /* TiKV refuses to roll back a committed txn */
        sim_model_unlock(m);
        return;
    }
    if (!t) /* a rollback record protects against a late prewrite */
        t = txn_create(m, start_ts, n ? keys[0].data : NULL, n ? keys[0].len : 0,
                       SIM_TXN_ROLLED_BACK);
    t->state = SIM_TXN_ROLLED_BACK;
    for (size_t i = 0; i < n; i++) {
        key_rec_t *k = key_find(m, keys[i].data, keys[i].len);
        if (k && k->lock && k->lock->start_ts == start_ts)
            key_rollback(m, k, t);
    }
    txn_maybe_finish(m, t);
    sim_model_unlock(m);
}

uint64_t sim_model_commit_1pc(sim_model_t *m, const sim_mutation_t *muts, size_t n)
{
    if (n == 0)
        return 0;
    key_rec_t **recs = tkc_calloc(n, sizeof(key_rec_t *));
    pending_key_t *missing = NULL;
    size_t nmissing = 0, bad;
    uint64_t commit_ts = 0;
    sim_model_lock(m);
    if (muts_lookup(m, muts, n, recs, &missing, &nmissing, &bad) != 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (recs[i] && recs[i]->lock)
            goto out; /* 1PC prewrite meets a lock: the client would retry */
    keys_create(m, missing, nmissing, recs);
    uint64_t start_ts = tso_alloc(m, 1);
    commit_ts = tso_alloc(m, 1);
    txn_t *t = txn_create(m, start_ts, muts[0].key, muts[0].key_len, SIM_TXN_COMMITTED);
    t->commit_ts = commit_ts;
    for (size_t i = 0; i < n; i++) {
        key_rec_t *k = recs[i];
        sim_op_t op = muts[i].op == SIM_OP_DELETE ? SIM_OP_DELETE : SIM_OP_PUT;
        /* old value = the newest version before commit_ts, read before
         * adding. Its bytes stay put: version_add may move the version
         * array, not the value, and GC keeps the newest version if a put. */
        sim_bytes_t old;
        bool has_old = old_value_of(k, commit_ts, &old);
        const sim_version_t *v =
            version_add(m, k, start_ts, commit_ts, op,
                        op == SIM_OP_DELETE ? bytes_dup(NULL, 0)
                                            : bytes_dup(muts[i].value, muts[i].value_len));
        uint64_t resolved;
        uint64_t rid = region_id_of_key(m, k, &resolved);
        emit_row(m, SIM_EV_COMMITTED, k, op, &v->value, has_old ? &old : NULL, start_ts,
                 commit_ts, rid);
        truth_write(m, k, v, rid, resolved);
    }
    txn_maybe_finish(m, t);
out:
    sim_model_unlock(m);
    tkc_free(missing);
    tkc_free(recs);
    return commit_ts;
}

static bool in_range(const key_rec_t *k, const sim_bytes_t *start, const sim_bytes_t *end)
{
    if (!bytes_empty(start) &&
        tkc_keycodec_cmp(k->enc.data, k->enc.len, start->data, start->len) < 0)
        return false;
    if (!bytes_empty(end) && tkc_keycodec_cmp(k->enc.data, k->enc.len, end->data, end->len) >= 0)
        return false;
    return true;
}

int sim_model_resolve_lock_range(sim_model_t *m, uint64_t start_ts, uint64_t commit_ts,
                                 const sim_bytes_t *start, const sim_bytes_t *end)
{
    int resolved = 0;
    sim_model_lock(m);
    txn_t *t = txn_get(m, start_ts);
    if (commit_ts == 0) {
        if (t && t->state == SIM_TXN_COMMITTED) {
            resolved = -1;
            goto out;
        }
        if (!t) {
            t = txn_create(m, start_ts, NULL, 0, SIM_TXN_ROLLED_BACK);
            txn_maybe_finish(m, t);
            goto out;
        }
        t->state = SIM_TXN_ROLLED_BACK;
        for (size_t i = 0; i < t->nkeys; i++) {
            key_rec_t *k = t->keys[i];
            if (k->lock && k->lock->start_ts == start_ts && in_range(k, start, end)) {
                key_rollback(m, k, t);
                resolved++;
            }
        }
    } else {
        if (commit_ts <= start_ts || (t && t->state == SIM_TXN_ROLLED_BACK) ||
            (t && t->state == SIM_TXN_COMMITTED && t->commit_ts != commit_ts)) {
            resolved = -1;
            goto out;
        }
        if (!t)
            goto out; /* nothing locked under this start_ts */
        t->state = SIM_TXN_COMMITTED;
        t->commit_ts = commit_ts;
        for (size_t i = 0; i < t->nkeys; i++) {
            key_rec_t *k = t->keys[i];
            if (k->lock && k->lock->start_ts == start_ts && in_range(k, start, end)) {
                key_commit(m, k, t, commit_ts);
                resolved++;
            }
        }
    }
    txn_maybe_finish(m, t);
out:
    sim_model_unlock(m);
    return resolved;
}

int sim_model_resolve_lock(sim_model_t *m, uint64_t start_ts, uint64_t commit_ts)
{
    return sim_model_resolve_lock_range(m, start_ts, commit_ts, NULL, NULL);
}

/* ===== reads ===== */

static size_t range_lo(const sim_model_t *m, const sim_bytes_t *start)
{
    return bytes_empty(start) ? 0 : key_lower_bound(m, start->data, start->len);
}

static size_t range_hi(const sim_model_t *m, const sim_bytes_t *end)
{
    return bytes_empty(end) ? m->nkeys : key_lower_bound(m, end->data, end->len);
}

void sim_model_scan_locked(sim_model_t *m, const sim_bytes_t *start, const sim_bytes_t *end,
                           sim_scan_cb cb, void *opaque)
{
    size_t lo = range_lo(m, start), hi = range_hi(m, end);
    for (size_t i = lo; i < hi; i++) {
        const key_rec_t *k = m->keys[i];
        if (!k->lock && k->nvers == 0)
            continue; /* a pre-created key that was never written */
        cb(opaque, &k->raw, k->lock, k->vers, k->nvers);
    }
}

bool sim_model_old_value_locked(sim_model_t *m, const uint8_t *key, size_t len, uint64_t ts,
                                sim_bytes_t *out)
{
    const key_rec_t *k = key_find(m, key, len);
    return k ? old_value_of(k, ts, out) : false;
}

uint64_t sim_model_min_lock_ts_locked(sim_model_t *m, const sim_bytes_t *start,
                                      const sim_bytes_t *end)
{
    size_t lo = range_lo(m, start), hi = range_hi(m, end);
    return lo < hi ? seg_min(m, lo, hi) : UINT64_MAX;
}

const sim_lock_t *sim_model_lock_get_locked(sim_model_t *m, const uint8_t *key, size_t len)
{
    const key_rec_t *k = key_find(m, key, len);
    return k ? k->lock : NULL;
}

sim_txn_state_t sim_model_txn_status_locked(sim_model_t *m, uint64_t start_ts,
                                            uint64_t *commit_ts_out)
{
    const txn_t *t = txn_get(m, start_ts);
    if (!t)
        return SIM_TXN_UNKNOWN;
    if (commit_ts_out)
        *commit_ts_out = t->state == SIM_TXN_COMMITTED ? t->commit_ts : 0;
    return t->state;
}

bool sim_model_txn_primary_locked(sim_model_t *m, uint64_t start_ts, sim_bytes_t *out)
{
    const txn_t *t = txn_get(m, start_ts);
    if (!t)
        return false;
    *out = t->primary;
    return true;
}

/* ===== stores ===== */

int sim_model_store_count(const sim_model_t *m)
{
    return m->nstores;
}

sim_store_t *sim_model_store_at_locked(sim_model_t *m, int idx)
{
    return idx >= 0 && idx < m->nstores ? &m->stores[idx] : NULL;
}

sim_store_t *sim_model_store_by_id_locked(sim_model_t *m, uint64_t store_id)
{
    /* store ids are 1..N in index order */
    if (store_id == 0 || store_id > (uint64_t)m->nstores)
        return NULL;
    return &m->stores[store_id - 1];
}

void sim_model_set_store_state(sim_model_t *m, uint64_t store_id, sim_store_state_t st)
{
    sim_model_lock(m);
    sim_store_t *s = sim_model_store_by_id_locked(m, store_id);
    if (s)
        s->state = st;
    sim_model_unlock(m);
}

/* ===== topology ===== */

static region_rec_t *region_new(sim_model_t *m, sim_bytes_t start, sim_bytes_t end,
                                const uint64_t stores[SIM_PEERS], int leader)
{
    region_rec_t *r = tkc_calloc(1, sizeof(*r));
    r->r.id = m->next_id++;
    r->r.start = start;
    r->r.end = end;
    r->r.conf_ver = 1;
    r->r.version = 1;
    for (int j = 0; j < SIM_PEERS; j++) {
        r->r.peers[j].id = m->next_id++;
        r->r.peers[j].store_id = stores[j];
    }
    r->r.leader = leader;
    u64map_put(&m->region_ids, r->r.id, r);
    return r;
}

int sim_model_split(sim_model_t *m, uint64_t region_id, const uint8_t *ekey, size_t len,
                    uint64_t *new_region_id_out)
{
    /* TiKV splits at encoded keys of raw keys; anything else is a bug */
    if (len == 0 || tkc_keycodec_decode(ekey, len, NULL, NULL) != 0)
        return -1;
    sim_model_lock(m);
    region_rec_t *left = region_id ? u64map_get(&m->region_ids, region_id) : NULL;
    if (!left || tkc_keycodec_cmp(ekey, len, left->r.start.data, left->r.start.len) <= 0 ||
        (!bytes_empty(&left->r.end) &&
         tkc_keycodec_cmp(ekey, len, left->r.end.data, left->r.end.len) >= 0)) {
        sim_model_unlock(m);
        return -1;
    }
    size_t idx = region_index(m, left);
    uint64_t stores[SIM_PEERS];
    for (int j = 0; j < SIM_PEERS; j++)
        stores[j] = left->r.peers[j].store_id;
    /* the right part gets new region and peer ids on the same stores, the
     * same leader store, and the parent's epoch; both parts bump version */
    region_rec_t *right = region_new(m, bytes_dup(ekey, len), left->r.end, stores, left->r.leader);
    left->r.end = bytes_dup(ekey, len);
    left->r.version++;
    right->r.version = left->r.version;
    right->r.conf_ver = left->r.conf_ver;
    right->resolved_noted = left->resolved_noted;
    regions_reserve(m, m->nregions + 1);
    memmove(&m->regions[idx + 2], &m->regions[idx + 1],
            (m->nregions - idx - 1) * sizeof(region_rec_t *));
    m->regions[idx + 1] = right;
    m->nregions++;
    m->topo_gen++;
    if (new_region_id_out)
        *new_region_id_out = right->r.id;
    sim_event_t ev = {0};
    ev.kind = SIM_EV_SPLIT;
    ev.region_id = left->r.id;
    ev.region = &left->r;
    ev.region2 = &right->r;
    ev.region2_id = right->r.id;
    emit(m, &ev);
    sim_model_unlock(m);
    return 0;
}

int sim_model_merge(sim_model_t *m, uint64_t source_id, uint64_t target_id)
{
    sim_model_lock(m);
    region_rec_t *src = source_id ? u64map_get(&m->region_ids, source_id) : NULL;
    region_rec_t *dst = target_id ? u64map_get(&m->region_ids, target_id) : NULL;
    if (!src || !dst || src == dst) {
        sim_model_unlock(m);
        return -1;
    }
    size_t si = region_index(m, src), di = region_index(m, dst);
    if (si + 1 == di) {
        /* source on the left: the target now starts where the source did */
        sim_bytes_free(&dst->r.start);
        dst->r.start = src->r.start;
        src->r.start = (sim_bytes_t){0};
    } else if (di + 1 == si) {
        sim_bytes_free(&dst->r.end);
        dst->r.end = src->r.end;
        src->r.end = (sim_bytes_t){0};
    } else {
        sim_model_unlock(m);
        return -1;
    }
    /* CommitMerge: target version = max of both + 1 */
    uint64_t v = src->r.version > dst->r.version ? src->r.version : dst->r.version;
    dst->r.version = v + 1;
    if (src->resolved_noted > dst->resolved_noted)
        dst->resolved_noted = src->resolved_noted;
    memmove(&m->regions[si], &m->regions[si + 1], (m->nregions - si - 1) * sizeof(region_rec_t *));
    m->nregions--;
    m->topo_gen++;
    u64map_del(&m->region_ids, src->r.id);
    sim_event_t ev = {0};
    ev.kind = SIM_EV_MERGE;
    ev.region_id = dst->r.id;
    ev.region = &dst->r;
    ev.region2 = &src->r; /* valid during the callback only; its range is cleared */
    ev.region2_id = src->r.id;
    emit(m, &ev);
    region_free(src);
    sim_model_unlock(m);
    return 0;
}

static void leader_move(sim_model_t *m, region_rec_t *r, int peer)
{
    uint64_t old = sim_region_leader_store(&r->r);
    r->r.leader = peer;
    sim_event_t ev = {0};
    ev.kind = SIM_EV_LEADER;
    ev.region_id = r->r.id;
    ev.region = &r->r;
    ev.old_store_id = old;
    emit(m, &ev);
}

static bool store_up(sim_model_t *m, uint64_t store_id)
{
    sim_store_t *s = sim_model_store_by_id_locked(m, store_id);
    return s && s->state == SIM_STORE_UP;
}

int sim_model_transfer_leader(sim_model_t *m, uint64_t region_id, uint64_t store_id)
{
    int rc = -1;
    sim_model_lock(m);
    region_rec_t *r = region_id ? u64map_get(&m->region_ids, region_id) : NULL;
    if (r && store_up(m, store_id)) {
        for (int j = 0; j < SIM_PEERS; j++) {
            if (r->r.peers[j].store_id != store_id)
                continue;
            if (j != r->r.leader)
                leader_move(m, r, j);
            rc = 0;
            break;
        }
    }
    sim_model_unlock(m);
    return rc;
}

void sim_model_evacuate_leaders(sim_model_t *m, uint64_t store_id)
{
    sim_model_lock(m);
    for (size_t i = 0; i < m->nregions; i++) {
        region_rec_t *r = m->regions[i];
        if (sim_region_leader_store(&r->r) != store_id)
            continue;
        /* the next peer (in peer order) on another UP store wins the
         * election; without one the region stays leaderless here */
        for (int d = 1; d < SIM_PEERS; d++) {
            int j = (r->r.leader + d) % SIM_PEERS;
            uint64_t s = r->r.peers[j].store_id;
            if (s != store_id && store_up(m, s)) {
                leader_move(m, r, j);
                break;
            }
        }
    }
    sim_model_unlock(m);
}

/* ===== GC ===== */

uint64_t sim_model_gc_safepoint(sim_model_t *m)
{
    sim_model_lock(m);
    uint64_t sp = m->gc_safepoint;
    sim_model_unlock(m);
    return sp;
}

static void gc_set_locked(sim_model_t *m, uint64_t ts)
{
    if (ts <= m->gc_safepoint)
        return; /* never backwards */
    m->gc_safepoint = ts;
    for (size_t i = 0; i < m->nkeys; i++)
        key_prune(m, m->keys[i], ts);
}

void sim_model_set_gc_safepoint(sim_model_t *m, uint64_t ts)
{
    sim_model_lock(m);
    gc_set_locked(m, ts);
    sim_model_unlock(m);
}

static void services_purge(sim_model_t *m, int64_t now_ms)
{
    size_t w = 0;
    for (size_t i = 0; i < m->nservices; i++) {
        if (m->services[i].expire_ms <= now_ms) {
            tkc_free(m->services[i].id);
            continue;
        }
        m->services[w++] = m->services[i];
    }
    m->nservices = w;
}

static uint64_t services_min(const sim_model_t *m)
{
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < m->nservices; i++)
        if (m->services[i].safe_point < min)
            min = m->services[i].safe_point;
    return min;
}

/*
 * PD semantics as a client sees them: a service safepoint below the GC
 * safepoint is refused (those versions are gone); ttl <= 0 removes the
 * service; the answer is the minimum over live services, but never below the
 * GC safepoint, so a client whose checkpoint fell behind GC learns it from
 * min_safe_point > its own safepoint (TiCDC's "snapshot lost" check).
 */
uint64_t sim_model_update_service_safepoint(sim_model_t *m, const char *service_id,
                                            int64_t ttl_s, uint64_t safe_point)
{
    sim_model_lock(m);
    int64_t now = tkc_clock_wall_ms();
    services_purge(m, now);
    size_t i = 0;
    while (i < m->nservices && strcmp(m->services[i].id, service_id) != 0)
        i++;
    if (ttl_s <= 0) {
        if (i < m->nservices) {
            tkc_free(m->services[i].id);
            m->services[i] = m->services[--m->nservices];
        }
    } else if (safe_point >= m->gc_safepoint) {
        if (i == m->nservices) {
            m->services = tkc_realloc(m->services, (m->nservices + 1) * sizeof(service_sp_t));
            m->services[i].id = tkc_strdup(service_id);
            m->nservices++;
        }
        m->services[i].safe_point = safe_point;
        int64_t ttl_ms = ttl_s > INT64_MAX / 1000 - now ? INT64_MAX - now : ttl_s * 1000;
        m->services[i].expire_ms = now + ttl_ms;
    }
    uint64_t min = services_min(m);
    if (min == UINT64_MAX || min < m->gc_safepoint)
        min = m->gc_safepoint;
    sim_model_unlock(m);
    return min;
}

uint64_t sim_model_gc_advance(sim_model_t *m, uint64_t target)
{
    sim_model_lock(m);
    services_purge(m, tkc_clock_wall_ms());
    uint64_t min = services_min(m);
    gc_set_locked(m, target < min ? target : min);
    uint64_t sp = m->gc_safepoint;
    sim_model_unlock(m);
    return sp;
}

/* ===== lifecycle ===== */

void sim_model_lock(sim_model_t *m)
{
    pthread_mutex_lock(&m->mu);
}

void sim_model_unlock(sim_model_t *m)
{
    pthread_mutex_unlock(&m->mu);
}

uint64_t sim_model_cluster_id(const sim_model_t *m)
{
    return m->cluster_id;
}

void sim_model_stats(sim_model_t *m, sim_model_stats_t *out)
{
    sim_model_lock(m);
    out->keys = m->nkeys;
    out->versions = m->nversions;
    out->locks = m->nlocks;
    out->value_bytes = m->value_bytes;
    out->txns_tracked = m->txns.n;
    out->regions = m->nregions;
    out->commits = m->ncommits;
    sim_model_unlock(m);
}

/* Initial regions: boundaries at evenly spaced keys of the key set (key
 * numbers beyond it when there are more regions than keys), peers on
 * consecutive stores, leaders round-robin. */
static void regions_init(sim_model_t *m, int nregions)
{
    regions_reserve(m, (size_t)nregions);
    sim_bytes_t prev_end = {0};
    int64_t prev_h = 0;
    for (int i = 0; i < nregions; i++) {
        sim_bytes_t start = {0};
        if (prev_end.len)
            start = bytes_dup(prev_end.data, prev_end.len);
        sim_bytes_t end = {0};
        if (i + 1 < nregions) {
            int64_t h = 1 + ((int64_t)(i + 1) * m->key_count) / nregions;
            if (h <= prev_h)
                h = prev_h + 1;
            prev_h = h;
            uint8_t raw[SIM_KEY_MAX];
            size_t len = key_raw_of(m->raw_keys, m->table_id, h, raw);
            end = sim_key_encode(raw, len);
        }
        uint64_t stores[SIM_PEERS];
        for (int j = 0; j < SIM_PEERS; j++)
            stores[j] = (uint64_t)((i + j) % m->nstores) + 1;
        region_rec_t *r = region_new(m, start, end, stores, 0);
        m->regions[m->nregions++] = r;
        prev_end = r->r.end;
    }
}

sim_model_t *sim_model_new(const sim_model_config_t *cfg)
{
    if (cfg->stores < 1 || cfg->regions < 1 || cfg->regions > MAX_REGIONS || cfg->key_count < 0)
        return NULL;
    /* "k%08d" keys sort numerically only up to 8 digits */
    if (cfg->raw_keys && (cfg->key_count + cfg->regions > 99999999))
        return NULL;
    sim_model_t *m = tkc_calloc(1, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    m->cluster_id = cfg->cluster_id;
    if (m->cluster_id == 0) {
        /* PD cluster ids are large random numbers; derive one from the seed */
        uint64_t z = cfg->seed + UINT64_C(0x9E3779B97F4A7C15);
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        m->cluster_id = (z ^ (z >> 31)) | (UINT64_C(1) << 62);
    }
    m->table_id = cfg->table_id;
    m->key_count = cfg->key_count;
    m->raw_keys = cfg->raw_keys;

    m->nstores = cfg->stores;
    m->stores = tkc_calloc((size_t)cfg->stores, sizeof(sim_store_t));
    const char *ver = cfg->store_version && cfg->store_version[0] ? cfg->store_version : "8.5.0";
    for (int i = 0; i < cfg->stores; i++) {
        m->stores[i].id = (uint64_t)i + 1;
        snprintf(m->stores[i].version, sizeof(m->stores[i].version), "%s", ver);
        m->stores[i].state = SIM_STORE_UP;
    }

    /* the key set, created in key order (handles ascending = encoded order) */
    m->capkeys = cfg->key_count ? (size_t)cfg->key_count : 64;
    m->keys = tkc_malloc(m->capkeys * sizeof(key_rec_t *));
    for (int64_t i = 1; i <= cfg->key_count; i++) {
        uint8_t raw[SIM_KEY_MAX];
        size_t len = key_raw_of(m->raw_keys, m->table_id, i, raw);
        key_rec_t *k = key_rec_new(raw, len);
        k->idx = m->nkeys;
        m->keys[m->nkeys++] = k;
    }
    seg_rebuild(m);
    hash_rebuild(m);

    u64map_init(&m->region_ids);
    u64map_init(&m->txns);
    m->next_id = FIRST_ID + (uint64_t)cfg->stores;
    regions_init(m, cfg->regions);
    m->topo_gen = 1; /* key records start with rgen 0: nothing cached */

    m->truth = cfg->truth;
    atomic_init(&m->truth_dirty, false);
    if (m->truth) {
        pthread_mutex_init(&m->fl_mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&m->fl_cv, &ca);
        pthread_condattr_destroy(&ca);
        m->flusher_started = pthread_create(&m->flusher, NULL, truth_flusher, m) == 0;
    }
    return m;
}

void sim_model_destroy(sim_model_t *m)
{
    if (!m)
        return;
    if (m->truth) {
        if (m->flusher_started) {
            pthread_mutex_lock(&m->fl_mu);
            m->fl_stop = true;
            pthread_cond_signal(&m->fl_cv);
            pthread_mutex_unlock(&m->fl_mu);
            pthread_join(m->flusher, NULL);
        }
        fflush(m->truth);
        pthread_cond_destroy(&m->fl_cv);
        pthread_mutex_destroy(&m->fl_mu);
    }
    for (size_t i = 0; i < m->nkeys; i++) {
        key_rec_t *k = m->keys[i];
        for (size_t j = 0; j < k->nvers; j++)
            tkc_free(k->vers[j].value.data);
        tkc_free(k->vers);
        if (k->lock) {
            tkc_free(k->lock->value.data);
            tkc_free(k->lock);
        }
        tkc_free(k);
    }
    tkc_free(m->keys);
    tkc_free(m->hash);
    tkc_free(m->seg);
    for (size_t i = 0; i < m->nregions; i++)
        region_free(m->regions[i]);
    tkc_free(m->regions);
    u64map_fini(&m->region_ids);
    for (size_t i = 0; i < m->txns.cap; i++)
        if (m->txns.keys[i])
            txn_free(m->txns.vals[i]);
    u64map_fini(&m->txns);
    tkc_free(m->done);
    for (size_t i = 0; i < m->nservices; i++)
        tkc_free(m->services[i].id);
    tkc_free(m->services);
    tkc_free(m->line);
    tkc_free(m->stores);
    pthread_mutex_destroy(&m->mu);
    tkc_free(m);
}
