/*
 * check_sim_model.c: tests of tikv-sim's MVCC model and workload generator
 * (sim_model.c, sim_workload.c), no servers.
 *
 * An observer records every event the model reports, so the tests check the
 * event stream (kinds, fields, order) against what they did, and the truth
 * file against the recorded commits. Randomised tests use fixed seeds.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "sim_model.h"
#include "sim_workload.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/keycodec.h"

/* ===== helpers ===== */

/* check records every ck_assert (location message through its pipe), which
 * costs microseconds; invariant loops that assert millions of times use this
 * instead, which only reaches check when it fails. */
#define REQUIRE(c)                                                           \
    do {                                                                     \
        if (!(c))                                                            \
            ck_abort_msg("%s:%d: requirement failed: %s", __FILE__, __LINE__, #c); \
    } while (0)

typedef struct {
    sim_event_kind_t kind;
    uint64_t region_id, region2_id, old_store_id;
    uint8_t key[64];
    size_t key_len;
    sim_op_t op;
    bool has_value, has_old;
    size_t value_len, old_len;
    uint32_t value_crc, old_crc;
    uint64_t start_ts, commit_ts;
    uint64_t r_version, r2_version;
    uint64_t new_leader_store;
} rec_ev_t;

typedef struct {
    rec_ev_t *ev;
    size_t n, cap;
    sim_model_t *m;
    uint64_t overlaps; /* commits seen while an older txn held a lock */
} recorder_t;

static uint32_t crc_of(const sim_bytes_t *b)
{
    return b && b->len ? (uint32_t)crc32(0L, b->data, (uInt)b->len) : 0;
}

static void record(void *opaque, const sim_event_t *e)
{
    recorder_t *r = opaque;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->ev = realloc(r->ev, r->cap * sizeof(rec_ev_t));
    }
    rec_ev_t *x = &r->ev[r->n++];
    memset(x, 0, sizeof(*x));
    x->kind = e->kind;
    x->region_id = e->region_id;
    x->region2_id = e->region2_id;
    x->old_store_id = e->old_store_id;
    if (e->key) {
        REQUIRE(e->key->len <= sizeof(x->key));
        memcpy(x->key, e->key->data, e->key->len);
        x->key_len = e->key->len;
    }
    x->op = e->op;
    x->has_value = e->value != NULL;
    x->value_len = e->value ? e->value->len : 0;
    x->value_crc = crc_of(e->value);
    x->has_old = e->old_value != NULL;
    x->old_len = e->old_value ? e->old_value->len : 0;
    x->old_crc = crc_of(e->old_value);
    x->start_ts = e->start_ts;
    x->commit_ts = e->commit_ts;
    if (e->region) {
        x->r_version = e->region->version;
        x->new_leader_store = sim_region_leader_store(e->region);
    }
    if (e->region2)
        x->r2_version = e->region2->version;
    /* called under the model lock: *_locked reads are allowed */
    if (r->m && (e->kind == SIM_EV_COMMIT || e->kind == SIM_EV_COMMITTED)) {
        uint64_t min = sim_model_min_lock_ts_locked(r->m, NULL, NULL);
        if (min < e->start_ts)
            r->overlaps++;
    }
}

static size_t count_kind(const recorder_t *r, sim_event_kind_t kind, size_t from)
{
    size_t c = 0;
    for (size_t i = from; i < r->n; i++)
        c += r->ev[i].kind == kind;
    return c;
}

static sim_model_t *model_new(int stores, int regions, int64_t keys, FILE *truth)
{
    sim_model_config_t cfg = {0};
    cfg.cluster_id = 0;
    cfg.stores = stores;
    cfg.regions = regions;
    cfg.seed = 1;
    cfg.table_id = 42;
    cfg.key_count = keys;
    cfg.truth = truth;
    sim_model_t *m = sim_model_new(&cfg);
    ck_assert_ptr_nonnull(m);
    return m;
}

/* A raw key of the key set, in a caller-provided buffer. */
typedef struct {
    uint8_t buf[SIM_KEY_MAX];
    sim_bytes_t b;
} kbuf_t;

static void key_at(sim_model_t *m, int64_t i, kbuf_t *k)
{
    k->b.len = sim_model_key_raw(m, i, k->buf);
    k->b.data = k->buf;
}

static sim_mutation_t put(const kbuf_t *k, const char *v)
{
    return (sim_mutation_t){k->b.data, k->b.len, SIM_OP_PUT, (const uint8_t *)v, strlen(v)};
}

static sim_mutation_t del(const kbuf_t *k)
{
    return (sim_mutation_t){k->b.data, k->b.len, SIM_OP_DELETE, NULL, 0};
}

static uint64_t region_of(sim_model_t *m, const kbuf_t *k)
{
    sim_bytes_t e = sim_key_encode(k->b.data, k->b.len);
    sim_model_lock(m);
    sim_region_t *r = sim_model_region_by_key_locked(m, e.data, e.len);
    uint64_t id = r ? r->id : 0;
    sim_model_unlock(m);
    sim_bytes_free(&e);
    return id;
}

static bool same_key(const rec_ev_t *e, const kbuf_t *k)
{
    return e->key_len == k->b.len && memcmp(e->key, k->b.data, k->b.len) == 0;
}

typedef struct {
    size_t n;
    uint8_t keys[64][SIM_KEY_MAX];
    size_t lens[64];
    bool locked[64];
    size_t nvers[64];
    uint64_t vers_commit[64][8];
} scan_out_t;

static void scan_cb(void *opaque, const sim_bytes_t *raw, const sim_lock_t *lock,
                    const sim_version_t *v, size_t nv)
{
    scan_out_t *o = opaque;
    ck_assert_uint_lt(o->n, 64);
    memcpy(o->keys[o->n], raw->data, raw->len);
    o->lens[o->n] = raw->len;
    o->locked[o->n] = lock != NULL;
    o->nvers[o->n] = nv;
    for (size_t i = 0; i < nv && i < 8; i++)
        o->vers_commit[o->n][i] = v[i].commit_ts;
    o->n++;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Regions sorted, contiguous, covering, ids unique, peers sane. */
static void check_regions(sim_model_t *m, int stores)
{
    sim_model_lock(m);
    size_t n = sim_model_region_count_locked(m);
    REQUIRE((n) >= (1));
    REQUIRE((sim_model_region_at_locked(m, 0)->start.len) == (0));
    REQUIRE((sim_model_region_at_locked(m, n - 1)->end.len) == (0));
    uint64_t *ids = malloc(n * sizeof(uint64_t) * (1 + SIM_PEERS));
    size_t nids = 0;
    for (size_t i = 0; i < n; i++) {
        sim_region_t *r = sim_model_region_at_locked(m, i);
        if (i + 1 < n) {
            sim_region_t *nx = sim_model_region_at_locked(m, i + 1);
            REQUIRE((r->end.len) > (0));
            REQUIRE((sim_bytes_cmp(r->end.data, r->end.len, nx->start.data, nx->start.len)) == (0));
            REQUIRE((sim_bytes_cmp(r->start.data, r->start.len, r->end.data, r->end.len)) < (0));
        }
        REQUIRE((sim_model_region_by_id_locked(m, r->id)) == (r));
        REQUIRE((sim_model_region_by_key_locked(m, r->start.data, r->start.len)) == (r));
        REQUIRE((sim_model_region_lower_bound_locked(m, r->start.data, r->start.len)) == (i));
        REQUIRE((r->version) >= (1));
        REQUIRE((r->conf_ver) >= (1));
        REQUIRE((r->leader) >= (0));
        REQUIRE((r->leader) < (SIM_PEERS));
        ids[nids++] = r->id;
        for (int j = 0; j < SIM_PEERS; j++) {
            ids[nids++] = r->peers[j].id;
            REQUIRE((r->peers[j].store_id) >= (1));
            REQUIRE((r->peers[j].store_id) <= ((uint64_t)stores));
            for (int k = 0; k < j && stores >= SIM_PEERS; k++)
                REQUIRE((r->peers[j].store_id) != (r->peers[k].store_id));
        }
    }
    sim_model_unlock(m);
    /* region and peer ids are all distinct */
    qsort(ids, nids, sizeof(uint64_t), u64_cmp);
    for (size_t i = 1; i < nids; i++)
        REQUIRE((ids[i - 1]) != (ids[i]));
    free(ids);
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Reads every line of @p path. */
static char **read_lines(const char *path, size_t *n_out)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char **lines = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            lines = realloc(lines, cap * sizeof(char *));
        }
        ck_assert_int_eq(line[len - 1], '\n');
        line[len - 1] = 0;
        lines[n++] = strdup(line);
    }
    free(line);
    fclose(f);
    *n_out = n;
    return lines;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static FILE *truth_open(char *path_out)
{
    strcpy(path_out, "/tmp/sim_model_truth_XXXXXX");
    int fd = mkstemp(path_out);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    return f;
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = 0;
}

/* ===== TSO ===== */

START_TEST(test_model_tso)
{
    sim_model_t *m = model_new(3, 1, 10, NULL);
    uint64_t prev = 0;
    for (int i = 0; i < 200000; i++) {
        uint64_t ts = sim_model_tso(m);
        REQUIRE(ts > prev);
        prev = ts;
    }
    int64_t wall = tkc_clock_wall_ms();
    int64_t phys = tkc_tso_physical_ms(prev);
    ck_assert_int_lt(llabs(wall - phys), 2000);

    sim_model_lock(m);
    uint64_t a = sim_model_tso_locked(m);
    uint64_t b = sim_model_tso_batch_locked(m, 10);
    /* the batch is b-9..b: all above a, b the largest */
    ck_assert_int_ge(tkc_tso_logical(b), 9);
    ck_assert_uint_gt(b - 9, a);
    uint64_t c = sim_model_tso_locked(m);
    ck_assert_uint_gt(c, b);
    ck_assert_uint_eq(sim_model_tso_batch_locked(m, 0), 0);
    ck_assert_uint_eq(sim_model_tso_batch_locked(m, (1u << 18) + 1), 0);
    /* two full logical spaces in a row must move physical forward */
    uint64_t d = sim_model_tso_batch_locked(m, 1u << 18);
    uint64_t e = sim_model_tso_batch_locked(m, 1u << 18);
    ck_assert_uint_gt(d, c);
    ck_assert_uint_gt(e, d);
    ck_assert_int_eq(tkc_tso_logical(e), (1 << 18) - 1);
    ck_assert_int_gt(tkc_tso_physical_ms(e), tkc_tso_physical_ms(d));
    sim_model_unlock(m);
    sim_model_destroy(m);
}
END_TEST

/* ===== transactions ===== */

START_TEST(test_model_2pc_rollback_1pc)
{
    sim_model_t *m = model_new(3, 4, 100, NULL);
    recorder_t rec = {0};
    sim_model_set_observer(m, record, &rec);
    kbuf_t k1, k2, k3, knew;
    key_at(m, 10, &k1);
    key_at(m, 90, &k2);
    key_at(m, 50, &k3);
    key_at(m, 1000, &knew); /* outside the pre-created key set */
    uint64_t r1 = region_of(m, &k1), r2 = region_of(m, &k2), r3 = region_of(m, &k3);
    ck_assert_uint_ne(r1, r2);
    ck_assert_uint_ne(r3, r1);
    ck_assert_uint_ne(r3, r2);

    /* prewrite: one PREWRITE per key, no old value yet, locks visible */
    uint64_t s1 = sim_model_tso(m);
    sim_mutation_t mu[2] = {put(&k1, "v1"), put(&k2, "value-two")};
    ck_assert_int_eq(sim_model_prewrite(m, s1, mu, 2, k1.b.data, k1.b.len), 0);
    ck_assert_uint_eq(rec.n, 2);
    ck_assert_int_eq(rec.ev[0].kind, SIM_EV_PREWRITE);
    ck_assert(same_key(&rec.ev[0], &k1));
    ck_assert_uint_eq(rec.ev[0].region_id, r1);
    ck_assert_uint_eq(rec.ev[0].start_ts, s1);
    ck_assert_uint_eq(rec.ev[0].commit_ts, 0);
    ck_assert_int_eq(rec.ev[0].op, SIM_OP_PUT);
    ck_assert_uint_eq(rec.ev[0].value_len, 2);
    ck_assert(!rec.ev[0].has_old);
    ck_assert(same_key(&rec.ev[1], &k2));
    ck_assert_uint_eq(rec.ev[1].region_id, r2);
    ck_assert_uint_eq(rec.ev[1].value_len, 9);

    sim_model_lock(m);
    const sim_lock_t *lk = sim_model_lock_get_locked(m, k2.b.data, k2.b.len);
    ck_assert_ptr_nonnull(lk);
    ck_assert_uint_eq(lk->start_ts, s1);
    ck_assert_int_eq(sim_bytes_cmp(lk->primary.data, lk->primary.len, k1.b.data, k1.b.len), 0);
    sim_bytes_t prim;
    ck_assert(sim_model_txn_primary_locked(m, s1, &prim));
    ck_assert_int_eq(sim_bytes_cmp(prim.data, prim.len, k1.b.data, k1.b.len), 0);
    ck_assert_int_eq(sim_model_txn_status_locked(m, s1, NULL), SIM_TXN_LOCKED);
    sim_region_t *reg = sim_model_region_by_id_locked(m, r1);
    ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, &reg->start, &reg->end), s1);
    reg = sim_model_region_by_id_locked(m, r3);
    ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, &reg->start, &reg->end), UINT64_MAX);
    ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, NULL, NULL), s1);
    scan_out_t so = {0};
    sim_model_scan_locked(m, NULL, NULL, scan_cb, &so);
    ck_assert_uint_eq(so.n, 2);
    ck_assert(so.locked[0] && so.locked[1]);
    ck_assert_uint_eq(so.nvers[0], 0);
    sim_model_unlock(m);

    /* commit: COMMIT rows carry the value, not the old value */
    uint64_t c1 = sim_model_commit(m, s1, (sim_bytes_t[]){k1.b, k2.b}, 2);
    ck_assert_uint_gt(c1, s1);
    ck_assert_uint_eq(rec.n, 4);
    for (size_t i = 2; i < 4; i++) {
        ck_assert_int_eq(rec.ev[i].kind, SIM_EV_COMMIT);
        ck_assert_uint_eq(rec.ev[i].start_ts, s1);
        ck_assert_uint_eq(rec.ev[i].commit_ts, c1);
        ck_assert(!rec.ev[i].has_old);
    }
    ck_assert(same_key(&rec.ev[2], &k1));
    ck_assert_uint_eq(rec.ev[2].value_len, 2);
    ck_assert_uint_eq(rec.ev[2].region_id, r1);
    sim_model_lock(m);
    uint64_t cts = 0;
    ck_assert_int_eq(sim_model_txn_status_locked(m, s1, &cts), SIM_TXN_COMMITTED);
    ck_assert_uint_eq(cts, c1);
    ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, NULL, NULL), UINT64_MAX);
    sim_bytes_t ov;
    ck_assert(sim_model_old_value_locked(m, k1.b.data, k1.b.len, c1 + 1, &ov));
    ck_assert_uint_eq(ov.len, 2);
    ck_assert_mem_eq(ov.data, "v1", 2);
    ck_assert(!sim_model_old_value_locked(m, k1.b.data, k1.b.len, c1, &ov)); /* strictly before */
    sim_model_unlock(m);

    /* second 2PC on k1: its PREWRITE carries old value v1 */
    uint64_t s2 = sim_model_tso(m);
    sim_mutation_t mu2 = put(&k1, "v1b");
    ck_assert_int_eq(sim_model_prewrite(m, s2, &mu2, 1, k1.b.data, k1.b.len), 0);
    ck_assert_int_eq(rec.ev[4].kind, SIM_EV_PREWRITE);
    ck_assert(rec.ev[4].has_old);
    ck_assert_uint_eq(rec.ev[4].old_len, 2);
    ck_assert_uint_eq(rec.ev[4].old_crc, (uint32_t)crc32(0, (const uint8_t *)"v1", 2));
    uint64_t c2 = sim_model_commit(m, s2, &k1.b, 1);
    ck_assert_uint_gt(c2, c1);

    /* rollback: ROLLBACK row, lock gone, value unchanged */
    uint64_t s3 = sim_model_tso(m);
    sim_mutation_t mu3 = put(&k1, "never");
    ck_assert_int_eq(sim_model_prewrite(m, s3, &mu3, 1, k1.b.data, k1.b.len), 0);
    size_t before = rec.n;
    sim_model_rollback(m, s3, &k1.b, 1);
    ck_assert_uint_eq(rec.n, before + 1);
    ck_assert_int_eq(rec.ev[before].kind, SIM_EV_ROLLBACK);
    ck_assert_uint_eq(rec.ev[before].start_ts, s3);
    ck_assert_uint_eq(rec.ev[before].commit_ts, 0);
    sim_model_lock(m);
    ck_assert_int_eq(sim_model_txn_status_locked(m, s3, NULL), SIM_TXN_ROLLED_BACK);
    ck_assert_ptr_null(sim_model_lock_get_locked(m, k1.b.data, k1.b.len));
    ck_assert(sim_model_old_value_locked(m, k1.b.data, k1.b.len, UINT64_MAX, &ov));
    ck_assert_mem_eq(ov.data, "v1b", 3);
    sim_model_unlock(m);

    /* 1PC delete of k1 and put of a brand-new key: COMMITTED rows with old values */
    before = rec.n;
    sim_mutation_t mu4[2] = {del(&k1), put(&knew, "fresh")};
    uint64_t c4 = sim_model_commit_1pc(m, mu4, 2);
    ck_assert_uint_gt(c4, c2);
    ck_assert_uint_eq(rec.n, before + 2);
    ck_assert_int_eq(rec.ev[before].kind, SIM_EV_COMMITTED);
    ck_assert_int_eq(rec.ev[before].op, SIM_OP_DELETE);
    ck_assert_uint_eq(rec.ev[before].commit_ts, c4);
    ck_assert_uint_lt(rec.ev[before].start_ts, c4);
    ck_assert(rec.ev[before].has_old);
    ck_assert_uint_eq(rec.ev[before].old_len, 3);
    ck_assert_uint_eq(rec.ev[before].value_len, 0);
    ck_assert_int_eq(rec.ev[before + 1].kind, SIM_EV_COMMITTED);
    ck_assert(!rec.ev[before + 1].has_old);
    ck_assert(same_key(&rec.ev[before + 1], &knew));
    ck_assert_uint_eq(rec.ev[before + 1].region_id, region_of(m, &knew));

    sim_model_lock(m);
    /* deleted: no old value after it */
    ck_assert(!sim_model_old_value_locked(m, k1.b.data, k1.b.len, UINT64_MAX, &ov));
    /* versions newest first, keys ascending, the new key included */
    so.n = 0;
    sim_model_scan_locked(m, NULL, NULL, scan_cb, &so);
    ck_assert_uint_eq(so.n, 3);
    ck_assert_int_eq(sim_bytes_cmp(so.keys[0], so.lens[0], k1.b.data, k1.b.len), 0);
    ck_assert_uint_eq(so.nvers[0], 3);
    ck_assert_uint_eq(so.vers_commit[0][0], c4);
    ck_assert_uint_eq(so.vers_commit[0][1], c2);
    ck_assert_uint_eq(so.vers_commit[0][2], c1);
    ck_assert_int_eq(sim_bytes_cmp(so.keys[1], so.lens[1], k2.b.data, k2.b.len), 0);
    ck_assert_int_eq(sim_bytes_cmp(so.keys[2], so.lens[2], knew.b.data, knew.b.len), 0);
    /* a scan limited to k1's region sees k1 only */
    reg = sim_model_region_by_id_locked(m, r1);
    so.n = 0;
    sim_model_scan_locked(m, &reg->start, &reg->end, scan_cb, &so);
    ck_assert_uint_eq(so.n, 1);
    sim_model_unlock(m);

    /* rows report the key's region as of now: split k2's region at k2, then
     * merge the new part away again, writing k2 after each change */
    sim_mutation_t m5 = put(&k2, "after-split");
    sim_bytes_t e2 = sim_key_encode(k2.b.data, k2.b.len);
    uint64_t r2b = 0;
    ck_assert_int_eq(sim_model_split(m, r2, e2.data, e2.len, &r2b), 0);
    sim_bytes_free(&e2);
    before = rec.n;
    ck_assert_uint_gt(sim_model_commit_1pc(m, &m5, 1), 0);
    ck_assert_uint_eq(rec.ev[before].region_id, r2b);
    ck_assert_int_eq(sim_model_merge(m, r2b, r2), 0);
    before = rec.n;
    ck_assert_uint_gt(sim_model_commit_1pc(m, &m5, 1), 0);
    ck_assert_uint_eq(rec.ev[before].region_id, r2);

    sim_model_stats_t st;
    sim_model_stats(m, &st);
    ck_assert_uint_eq(st.keys, 101);
    ck_assert_uint_eq(st.locks, 0);
    ck_assert_uint_eq(st.versions, 7);
    ck_assert_uint_eq(st.commits, 7);

    sim_model_destroy(m);
    free(rec.ev);
}
END_TEST

START_TEST(test_model_conflicts)
{
    sim_model_t *m = model_new(3, 4, 100, NULL);
    recorder_t rec = {0};
    sim_model_set_observer(m, record, &rec);
    kbuf_t k1, k5, k7;
    key_at(m, 1, &k1);
    key_at(m, 5, &k5);
    key_at(m, 7, &k7);

    uint64_t sa = sim_model_tso(m);
    sim_mutation_t ma = put(&k1, "a");
    ck_assert_int_eq(sim_model_prewrite(m, sa, &ma, 1, k1.b.data, k1.b.len), 0);

    /* another txn meets the lock: fails without any change */
    uint64_t sb = sim_model_tso(m);
    sim_mutation_t mb[2] = {put(&k5, "b"), put(&k1, "b")};
    size_t bad = 99;
    uint64_t cts = 0;
    size_t before = rec.n;
    ck_assert_int_eq(sim_model_prewrite_ex(m, sb, mb, 2, k5.b.data, k5.b.len, 1000, &bad, &cts),
                     SIM_PREWRITE_LOCKED);
    ck_assert_uint_eq(bad, 1);
    ck_assert_uint_eq(cts, sa);
    ck_assert_uint_eq(rec.n, before);
    sim_model_lock(m);
    ck_assert_ptr_null(sim_model_lock_get_locked(m, k5.b.data, k5.b.len));
    ck_assert_int_eq(sim_model_txn_status_locked(m, sb, NULL), SIM_TXN_UNKNOWN);
    sim_model_unlock(m);
    ck_assert_int_eq(sim_model_prewrite(m, sb, mb, 2, k5.b.data, k5.b.len), -1);

    /* re-prewriting our own lock is accepted and silent */
    ck_assert_int_eq(sim_model_prewrite(m, sa, &ma, 1, k1.b.data, k1.b.len), 0);
    ck_assert_uint_eq(rec.n, before);

    /* 1PC on a locked key fails without change */
    ck_assert_uint_eq(sim_model_commit_1pc(m, &mb[1], 1), 0);
    ck_assert_uint_eq(rec.n, before);

    /* a txn that started before a commit on its key loses: write conflict */
    uint64_t sc = sim_model_tso(m);
    uint64_t ca = sim_model_commit(m, sa, &k1.b, 1);
    ck_assert_uint_gt(ca, sc);
    sim_mutation_t mc = put(&k1, "c");
    ck_assert_int_eq(sim_model_prewrite_ex(m, sc, &mc, 1, k1.b.data, k1.b.len, 1000, &bad, &cts),
                     SIM_PREWRITE_WRITE_CONFLICT);
    ck_assert_uint_eq(cts, ca);
    ck_assert_uint_eq(bad, 0);

    /* committing twice is idempotent; committing an unknown txn fails */
    ck_assert_uint_eq(sim_model_commit(m, sa, &k1.b, 1), ca);
    ck_assert_uint_eq(sim_model_commit(m, sc, &k1.b, 1), 0);

    /* after a rollback the start_ts is dead: prewrite and commit refused */
    uint64_t sd = sim_model_tso(m);
    sim_mutation_t md = put(&k7, "d");
    ck_assert_int_eq(sim_model_prewrite(m, sd, &md, 1, k7.b.data, k7.b.len), 0);
    sim_model_rollback(m, sd, &k7.b, 1);
    ck_assert_int_eq(sim_model_prewrite_ex(m, sd, &md, 1, k7.b.data, k7.b.len, 1000, NULL, NULL),
                     SIM_PREWRITE_TXN_DONE);
    ck_assert_uint_eq(sim_model_commit(m, sd, &k7.b, 1), 0);
    /* a committed txn cannot be rolled back */
    before = rec.n;
    sim_model_rollback(m, sa, &k1.b, 1);
    ck_assert_uint_eq(rec.n, before);
    ck_assert_int_eq(sim_model_resolve_lock(m, sa, 0), -1);

    /* malformed requests */
    uint64_t se = sim_model_tso(m);
    sim_mutation_t dup[2] = {put(&k5, "x"), put(&k5, "y")};
    ck_assert_int_eq(sim_model_prewrite_ex(m, se, dup, 2, k5.b.data, k5.b.len, 1000, &bad, NULL),
                     SIM_PREWRITE_INVALID);
    ck_assert_uint_eq(bad, 1);
    kbuf_t n1, n2;
    key_at(m, 5000, &n1);
    key_at(m, 5000, &n2);
    sim_mutation_t dupnew[2] = {put(&n1, "x"), put(&n2, "y")};
    ck_assert_int_eq(sim_model_prewrite_ex(m, se, dupnew, 2, n1.b.data, n1.b.len, 1000, NULL, NULL),
                     SIM_PREWRITE_INVALID);
    ck_assert_uint_eq(sim_model_commit_1pc(m, dup, 2), 0);
    ck_assert_int_eq(sim_model_prewrite(m, se, dup, 0, k5.b.data, k5.b.len), -1);
    sim_model_stats_t st;
    sim_model_stats(m, &st);
    ck_assert_uint_eq(st.keys, 100); /* nothing was created by the failed attempts */
    ck_assert_uint_eq(st.locks, 0);

    sim_model_destroy(m);
    free(rec.ev);
}
END_TEST

typedef struct {
    const sim_bytes_t *start, *end;
    uint64_t min;
} brute_t;

static void brute_cb(void *opaque, const sim_bytes_t *raw, const sim_lock_t *lock,
                     const sim_version_t *v, size_t nv)
{
    brute_t *b = opaque;
    (void)raw;
    (void)v;
    (void)nv;
    if (lock && lock->start_ts < b->min)
        b->min = lock->start_ts;
}

START_TEST(test_model_min_lock_ts)
{
    rng_state = 11;
    sim_model_t *m = model_new(3, 20, 2000, NULL);
    uint64_t *starts = calloc(2001, sizeof(uint64_t));
    /* 150 single-key txns on random keys; then finish a third of them */
    for (int i = 0; i < 150; i++) {
        int64_t h = 1 + (int64_t)(rnd() % 2000);
        if (starts[h])
            continue;
        kbuf_t k;
        key_at(m, h, &k);
        uint64_t s = sim_model_tso(m);
        sim_mutation_t mu = put(&k, "x");
        ck_assert_int_eq(sim_model_prewrite(m, s, &mu, 1, k.b.data, k.b.len), 0);
        starts[h] = s;
    }
    for (int64_t h = 1; h <= 2000; h++) {
        if (!starts[h] || rnd() % 3)
            continue;
        kbuf_t k;
        key_at(m, h, &k);
        if (rnd() % 2)
            ck_assert_uint_gt(sim_model_commit(m, starts[h], &k.b, 1), 0);
        else
            sim_model_rollback(m, starts[h], &k.b, 1);
        starts[h] = 0;
    }
    sim_model_lock(m);
    /* every region, then random ranges, against a brute-force scan */
    for (size_t i = 0; i < sim_model_region_count_locked(m); i++) {
        sim_region_t *r = sim_model_region_at_locked(m, i);
        brute_t b = {&r->start, &r->end, UINT64_MAX};
        sim_model_scan_locked(m, &r->start, &r->end, brute_cb, &b);
        ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, &r->start, &r->end), b.min);
    }
    int nonempty = 0;
    for (int i = 0; i < 2000; i++) {
        int64_t a = 1 + (int64_t)(rnd() % 2100), z = 1 + (int64_t)(rnd() % 2100);
        if (a > z) {
            int64_t t = a;
            a = z;
            z = t;
        }
        kbuf_t ka, kz;
        key_at(m, a, &ka);
        key_at(m, z, &kz);
        sim_bytes_t ea = sim_key_encode(ka.b.data, ka.b.len);
        sim_bytes_t ez = sim_key_encode(kz.b.data, kz.b.len);
        sim_bytes_t empty = {0};
        const sim_bytes_t *s = rnd() % 10 == 0 ? &empty : &ea;
        const sim_bytes_t *e = rnd() % 10 == 0 ? &empty : &ez;
        brute_t b = {s, e, UINT64_MAX};
        sim_model_scan_locked(m, s, e, brute_cb, &b);
        REQUIRE(sim_model_min_lock_ts_locked(m, s, e) == b.min);
        nonempty += b.min != UINT64_MAX;
        sim_bytes_free(&ea);
        sim_bytes_free(&ez);
    }
    ck_assert_int_gt(nonempty, 500); /* the ranges did hit locks */
    sim_model_unlock(m);
    free(starts);
    sim_model_destroy(m);
}
END_TEST

/* ===== topology ===== */

START_TEST(test_model_topology_random)
{
    rng_state = 5;
    const int stores = 4;
    sim_model_t *m = model_new(stores, 50, 10000, NULL);
    recorder_t rec = {0};
    sim_model_set_observer(m, record, &rec);
    check_regions(m, stores);
    sim_model_lock(m);
    /* leaders start round-robin over the stores */
    int per_store[5] = {0};
    for (size_t i = 0; i < sim_model_region_count_locked(m); i++)
        per_store[sim_region_leader_store(sim_model_region_at_locked(m, i))]++;
    sim_model_unlock(m);
    for (int s = 1; s <= stores; s++)
        ck_assert_int_ge(per_store[s], 50 / stores - 1);

    uint64_t max_id = 0;
    sim_model_lock(m);
    for (size_t i = 0; i < sim_model_region_count_locked(m); i++) {
        sim_region_t *r = sim_model_region_at_locked(m, i);
        if (r->id > max_id)
            max_id = r->id;
        for (int j = 0; j < SIM_PEERS; j++)
            if (r->peers[j].id > max_id)
                max_id = r->peers[j].id;
    }
    sim_model_unlock(m);

    int done[4] = {0};
    for (int op = 0; op < 1000; op++) {
        size_t before = rec.n;
        int kind = (int)(rnd() % 4);
        sim_model_lock(m);
        size_t n = sim_model_region_count_locked(m);
        sim_region_t *r = sim_model_region_at_locked(m, rnd() % n);
        uint64_t rid = r->id, version = r->version;
        sim_model_unlock(m);
        if (kind == 0) { /* split at a random key inside the region */
            kbuf_t k;
            key_at(m, 1 + (int64_t)(rnd() % 20000), &k);
            sim_bytes_t e = sim_key_encode(k.b.data, k.b.len);
            sim_model_lock(m);
            sim_region_t *home = sim_model_region_by_key_locked(m, e.data, e.len);
            rid = home->id;
            version = home->version;
            bool at_start = sim_bytes_cmp(home->start.data, home->start.len, e.data, e.len) == 0;
            sim_model_unlock(m);
            uint64_t nid = 0;
            int rc = sim_model_split(m, rid, e.data, e.len, &nid);
            if (at_start) {
                ck_assert_int_eq(rc, -1);
                ck_assert_uint_eq(rec.n, before);
            } else {
                ck_assert_int_eq(rc, 0);
                ck_assert_uint_gt(nid, max_id); /* ids never reused */
                max_id = nid + SIM_PEERS;
                sim_model_lock(m);
                sim_region_t *l = sim_model_region_by_id_locked(m, rid);
                sim_region_t *rr = sim_model_region_by_id_locked(m, nid);
                ck_assert_uint_eq(l->version, version + 1);
                ck_assert_uint_eq(rr->version, version + 1);
                ck_assert_int_eq(sim_bytes_cmp(rr->start.data, rr->start.len, e.data, e.len), 0);
                ck_assert_uint_eq(sim_region_leader_store(l), sim_region_leader_store(rr));
                sim_model_unlock(m);
                ck_assert_uint_eq(rec.n, before + 1);
                ck_assert_int_eq(rec.ev[before].kind, SIM_EV_SPLIT);
                ck_assert_uint_eq(rec.ev[before].region_id, rid);
                ck_assert_uint_eq(rec.ev[before].region2_id, nid);
                done[0]++;
            }
            /* splitting at a non-encoded key or outside the region fails */
            ck_assert_int_eq(sim_model_split(m, rid, k.b.data, k.b.len, NULL), -1);
            sim_bytes_free(&e);
        } else if (kind == 1) { /* merge with a neighbour */
            if (n < 2)
                continue;
            sim_model_lock(m);
            size_t i = rnd() % (n - 1);
            sim_region_t *a = sim_model_region_at_locked(m, i);
            sim_region_t *b = sim_model_region_at_locked(m, i + 1);
            bool left_src = rnd() % 2;
            uint64_t src = left_src ? a->id : b->id, dst = left_src ? b->id : a->id;
            uint64_t vmax = a->version > b->version ? a->version : b->version;
            uint64_t far = i + 2 < n ? sim_model_region_at_locked(m, i + 2)->id : 0;
            sim_model_unlock(m);
            if (far) /* not adjacent: refused */
                ck_assert_int_eq(sim_model_merge(m, a->id == src ? src : dst, far), -1);
            ck_assert_int_eq(sim_model_merge(m, src, dst), 0);
            sim_model_lock(m);
            ck_assert_ptr_null(sim_model_region_by_id_locked(m, src));
            ck_assert_uint_eq(sim_model_region_by_id_locked(m, dst)->version, vmax + 1);
            ck_assert_uint_eq(sim_model_region_count_locked(m), n - 1);
            sim_model_unlock(m);
            ck_assert_uint_eq(rec.n, before + 1);
            ck_assert_int_eq(rec.ev[before].kind, SIM_EV_MERGE);
            ck_assert_uint_eq(rec.ev[before].region_id, dst);
            ck_assert_uint_eq(rec.ev[before].region2_id, src);
            done[1]++;
        } else if (kind == 2) { /* transfer leader */
            uint64_t to = 1 + rnd() % stores;
            sim_model_lock(m);
            sim_region_t *x = sim_model_region_by_id_locked(m, rid);
            uint64_t old = sim_region_leader_store(x);
            bool has_peer = false;
            for (int j = 0; j < SIM_PEERS; j++)
                has_peer |= x->peers[j].store_id == to;
            sim_model_unlock(m);
            int rc = sim_model_transfer_leader(m, rid, to);
            ck_assert_int_eq(rc, has_peer ? 0 : -1);
            sim_model_lock(m);
            x = sim_model_region_by_id_locked(m, rid);
            ck_assert_uint_eq(sim_region_leader_store(x), has_peer ? to : old);
            ck_assert_uint_eq(x->version, version); /* leadership is not an epoch change */
            sim_model_unlock(m);
            if (has_peer && to != old) {
                ck_assert_uint_eq(rec.n, before + 1);
                ck_assert_int_eq(rec.ev[before].kind, SIM_EV_LEADER);
                ck_assert_uint_eq(rec.ev[before].old_store_id, old);
                ck_assert_uint_eq(rec.ev[before].new_leader_store, to);
                done[2]++;
            } else {
                ck_assert_uint_eq(rec.n, before);
            }
        } else { /* a store fails: its leaders move to peers on UP stores */
            uint64_t s = 1 + rnd() % stores;
            /* sometimes a second store is down already: it must not win */
            uint64_t s2 = rnd() % 2 ? 1 + (s % stores) : 0;
            if (s2)
                sim_model_set_store_state(m, s2, SIM_STORE_DOWN);
            sim_model_set_store_state(m, s, SIM_STORE_DOWN);
            ck_assert_int_eq(sim_model_transfer_leader(m, rid, s), -1); /* not to a down store */
            sim_model_lock(m);
            size_t nr = sim_model_region_count_locked(m);
            uint64_t *was = malloc(nr * sizeof(uint64_t));
            for (size_t i = 0; i < nr; i++)
                was[i] = sim_region_leader_store(sim_model_region_at_locked(m, i));
            sim_model_unlock(m);
            sim_model_evacuate_leaders(m, s);
            sim_model_lock(m);
            for (size_t i = 0; i < nr; i++) {
                sim_region_t *x = sim_model_region_at_locked(m, i);
                uint64_t ls = sim_region_leader_store(x);
                if (was[i] != s) {
                    REQUIRE(ls == was[i]); /* only s's leaders move */
                    continue;
                }
                bool up_peer = false; /* a peer on a store that is neither s nor s2 */
                for (int j = 0; j < SIM_PEERS; j++)
                    up_peer |= x->peers[j].store_id != s && x->peers[j].store_id != s2;
                REQUIRE(up_peer ? ls != s && ls != s2 : ls == s);
            }
            sim_model_unlock(m);
            free(was);
            for (size_t i = before; i < rec.n; i++) {
                ck_assert_int_eq(rec.ev[i].kind, SIM_EV_LEADER);
                ck_assert_uint_eq(rec.ev[i].old_store_id, s);
                ck_assert_uint_ne(rec.ev[i].new_leader_store, s2);
            }
            sim_model_set_store_state(m, s, SIM_STORE_UP);
            if (s2) {
                sim_model_evacuate_leaders(m, s2); /* move them off before it comes back */
                sim_model_set_store_state(m, s2, SIM_STORE_UP);
            }
            done[3]++;
        }
        check_regions(m, stores);
    }
    /* the random mix did exercise every operation */
    for (int i = 0; i < 4; i++)
        ck_assert_int_gt(done[i], 50);
    sim_model_destroy(m);
    free(rec.ev);
}
END_TEST

START_TEST(test_model_regions_100k)
{
    int64_t t0 = tkc_clock_mono_ms();
    sim_model_t *m = model_new(3, 100000, 200000, NULL);
    int64_t t1 = tkc_clock_mono_ms();
    check_regions(m, 3);
    /* a few locks, then min lock ts of every region, as the CDC service does */
    for (int64_t h = 1000; h <= 200000; h += 20000) {
        kbuf_t k;
        key_at(m, h, &k);
        sim_mutation_t mu = put(&k, "x");
        ck_assert_int_eq(sim_model_prewrite(m, sim_model_tso(m), &mu, 1, k.b.data, k.b.len), 0);
    }
    int64_t t2 = tkc_clock_mono_ms();
    sim_model_lock(m);
    size_t n = sim_model_region_count_locked(m), locked = 0;
    ck_assert_uint_eq(n, 100000);
    for (size_t i = 0; i < n; i++) {
        sim_region_t *r = sim_model_region_at_locked(m, i);
        locked += sim_model_min_lock_ts_locked(m, &r->start, &r->end) != UINT64_MAX;
    }
    sim_model_unlock(m);
    int64_t t3 = tkc_clock_mono_ms();
    ck_assert_uint_eq(locked, 10);
    printf("sim.model: 100k regions / 200k keys created in %" PRId64 " ms; "
           "min lock ts of all 100k regions in %" PRId64 " ms\n",
           t1 - t0, t3 - t2);
    sim_model_destroy(m);
}
END_TEST

/* ===== truth ===== */

static json_t *load_line(const char *line)
{
    json_error_t err;
    json_t *j = json_loads(line, 0, &err);
    ck_assert_msg(j != NULL, "bad truth line: %s (%s)", line, err.text);
    return j;
}

static uint64_t jnum(json_t *j, const char *name)
{
    json_t *v = json_object_get(j, name);
    ck_assert_msg(json_is_integer(v), "field %s missing", name);
    return (uint64_t)json_integer_value(v);
}

START_TEST(test_model_truth)
{
    char path[64];
    FILE *f = truth_open(path);
    sim_model_t *m = model_new(3, 4, 100, f);
    recorder_t rec = {0};
    sim_model_set_observer(m, record, &rec);
    kbuf_t k1, k2, k3;
    key_at(m, 3, &k1);
    key_at(m, 60, &k2);
    key_at(m, 99, &k3);
    uint64_t r2 = region_of(m, &k2);

    /* the CDC layer said it sent resolved ts R for k2's region */
    uint64_t R = sim_model_tso(m);
    sim_model_lock(m);
    sim_model_note_resolved_locked(m, r2, R);
    sim_model_note_resolved_locked(m, r2, R - 5); /* lower: ignored */
    sim_model_unlock(m);

    /* k2's region splits at k2: the new right part inherits what was noted */
    sim_bytes_t e2 = sim_key_encode(k2.b.data, k2.b.len);
    uint64_t r2b = 0;
    ck_assert_int_eq(sim_model_split(m, r2, e2.data, e2.len, &r2b), 0);
    sim_bytes_free(&e2);
    ck_assert_uint_eq(region_of(m, &k2), r2b);

    uint64_t s = sim_model_tso(m);
    sim_mutation_t mu[3] = {put(&k1, "one"), put(&k2, ""), del(&k3)};
    ck_assert_int_eq(sim_model_prewrite(m, s, mu, 3, k1.b.data, k1.b.len), 0);
    ck_assert_uint_gt(sim_model_commit(m, s, (sim_bytes_t[]){k1.b, k2.b, k3.b}, 3), 0);
    sim_mutation_t mu2[2] = {put(&k2, "two"), put(&k3, "three")};
    ck_assert_uint_gt(sim_model_commit_1pc(m, mu2, 2), 0);
    /* a rolled back txn leaves no truth line */
    uint64_t s3 = sim_model_tso(m);
    ck_assert_int_eq(sim_model_prewrite(m, s3, mu2, 2, k2.b.data, k2.b.len), 0);
    sim_model_rollback(m, s3, (sim_bytes_t[]){k2.b, k3.b}, 2);
    sim_model_truth_flush(m);

    size_t n;
    char **lines = read_lines(path, &n);
    size_t commits = count_kind(&rec, SIM_EV_COMMIT, 0) + count_kind(&rec, SIM_EV_COMMITTED, 0);
    ck_assert_uint_eq(commits, 5);
    ck_assert_uint_eq(n, commits);
    size_t li = 0, noted = 0;
    for (size_t i = 0; i < rec.n; i++) {
        const rec_ev_t *e = &rec.ev[i];
        if (e->kind != SIM_EV_COMMIT && e->kind != SIM_EV_COMMITTED)
            continue;
        json_t *j = load_line(lines[li++]);
        char hex[2 * sizeof(e->key) + 1];
        hex_of(e->key, e->key_len, hex);
        ck_assert_str_eq(json_string_value(json_object_get(j, "key")), hex);
        ck_assert_str_eq(json_string_value(json_object_get(j, "op")),
                         e->op == SIM_OP_DELETE ? "delete" : "put");
        ck_assert_uint_eq(jnum(j, "value_len"), e->value_len);
        ck_assert_uint_eq(jnum(j, "value_crc32"), e->value_crc);
        ck_assert_uint_eq(jnum(j, "start_ts"), e->start_ts);
        ck_assert_uint_eq(jnum(j, "commit_ts"), e->commit_ts);
        ck_assert_uint_eq(jnum(j, "region_id"), e->region_id);
        uint64_t rr = jnum(j, "region_resolved_ts");
        ck_assert_uint_eq(rr, e->region_id == r2 || e->region_id == r2b ? R : 0);
        noted += rr == R;
        ck_assert_uint_gt(jnum(j, "commit_ts"), rr);
        json_decref(j);
    }
    free_lines(lines, n);
    ck_assert_uint_eq(noted, 2); /* k2 twice */
    /* the known CRC of "three" checks the field is zlib's CRC-32 */
    ck_assert_uint_eq(rec.ev[rec.n - 3].value_crc, 0x46c5d8f5u);

    /* lines reach the file without an explicit flush, within ~100 ms */
    sim_mutation_t mu3 = put(&k1, "later");
    ck_assert_uint_gt(sim_model_commit_1pc(m, &mu3, 1), 0);
    int64_t deadline = tkc_clock_mono_ms() + 5000;
    size_t got = 0;
    while (got != commits + 1 && tkc_clock_mono_ms() < deadline) {
        usleep(20000);
        lines = read_lines(path, &got);
        free_lines(lines, got);
    }
    ck_assert_uint_eq(got, commits + 1);

    sim_model_destroy(m);
    fclose(f);
    unlink(path);
    free(rec.ev);
}
END_TEST

/* ===== lock resolution ===== */

START_TEST(test_model_resolve_lock)
{
    char path[64];
    FILE *f = truth_open(path);
    sim_model_t *m = model_new(3, 8, 400, f);
    recorder_t rec = {0};
    sim_model_set_observer(m, record, &rec);
    sim_workload_config_t wc;
    sim_workload_config_default(&wc);
    sim_workload_t *w = sim_workload_new(m, &wc, 99);
    ck_assert_ptr_nonnull(w);

    /* a crashed client: locked, primary known, resolved ts pinned */
    uint64_t st = sim_workload_leave_lock(w, 3, false);
    ck_assert_uint_gt(st, 0);
    ck_assert_uint_eq(count_kind(&rec, SIM_EV_PREWRITE, 0), 3);
    sim_model_lock(m);
    ck_assert_int_eq(sim_model_txn_status_locked(m, st, NULL), SIM_TXN_LOCKED);
    ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, NULL, NULL), st);
    sim_bytes_t prim;
    ck_assert(sim_model_txn_primary_locked(m, st, &prim));
    const sim_lock_t *pl = sim_model_lock_get_locked(m, prim.data, prim.len);
    ck_assert_ptr_nonnull(pl);
    ck_assert_uint_eq(pl->start_ts, st);
    ck_assert_uint_eq(pl->ttl_ms, SIM_LOCK_TTL_DEFAULT_MS);
    sim_model_unlock(m);

    /* ResolveLock(rollback) */
    size_t before = rec.n;
    ck_assert_int_eq(sim_model_resolve_lock(m, st, 0), 3);
    ck_assert_uint_eq(count_kind(&rec, SIM_EV_ROLLBACK, before), 3);
    ck_assert_int_eq(sim_model_resolve_lock(m, st, 0), 0);
    ck_assert_int_eq(sim_model_resolve_lock(m, st, st + 1), -1); /* rolled back: can't commit */
    sim_model_lock(m);
    ck_assert_int_eq(sim_model_txn_status_locked(m, st, NULL), SIM_TXN_ROLLED_BACK);
    ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, NULL, NULL), UINT64_MAX);
    sim_model_unlock(m);

    /* died after committing the primary: secondaries resolved by commit */
    uint64_t st2 = sim_workload_leave_lock(w, 4, true);
    ck_assert_uint_gt(st2, 0);
    uint64_t cts = 0;
    sim_model_lock(m);
    ck_assert_int_eq(sim_model_txn_status_locked(m, st2, &cts), SIM_TXN_COMMITTED);
    ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, NULL, NULL), st2);
    sim_model_unlock(m);
    ck_assert_int_eq(sim_model_resolve_lock(m, st2, 0), -1);       /* committed: no rollback */
    ck_assert_int_eq(sim_model_resolve_lock(m, st2, cts + 1), -1); /* another commit ts */
    /* per region, as TiKV resolves: the first region's locks only */
    sim_model_lock(m);
    sim_region_t *r0 = sim_model_region_at_locked(m, 0);
    sim_bytes_t s0 = r0->start, e0 = r0->end;
    uint64_t min0 = sim_model_min_lock_ts_locked(m, &s0, &e0);
    sim_bytes_t e0copy = {malloc(e0.len), e0.len};
    memcpy(e0copy.data, e0.data, e0.len);
    sim_model_unlock(m);
    int in_r0 = sim_model_resolve_lock_range(m, st2, cts, NULL, &e0copy);
    ck_assert_int_eq(in_r0 > 0, min0 == st2);
    before = rec.n;
    int rest = sim_model_resolve_lock(m, st2, cts);
    ck_assert_int_eq(in_r0 + rest, 3);
    ck_assert_uint_eq(count_kind(&rec, SIM_EV_COMMIT, before), (size_t)rest);
    for (size_t i = before; i < rec.n; i++)
        ck_assert_uint_eq(rec.ev[i].commit_ts, cts);
    free(e0copy.data);
    sim_model_lock(m);
    ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, NULL, NULL), UINT64_MAX);
    sim_model_unlock(m);
    sim_model_truth_flush(m);
    size_t n;
    char **lines = read_lines(path, &n);
    ck_assert_uint_eq(n, 4); /* primary + 3 resolved secondaries */
    for (size_t i = 0; i < n; i++) {
        json_t *j = load_line(lines[i]);
        ck_assert_uint_eq(jnum(j, "start_ts"), st2);
        ck_assert_uint_eq(jnum(j, "commit_ts"), cts);
        json_decref(j);
    }
    free_lines(lines, n);
    sim_workload_stats_t ws;
    sim_workload_stats(w, &ws);
    ck_assert_uint_eq(ws.locks_left, 2);

    sim_workload_destroy(w);
    sim_model_destroy(m);
    fclose(f);
    unlink(path);
    free(rec.ev);
}
END_TEST

/* ===== GC ===== */

START_TEST(test_model_gc)
{
    sim_model_t *m = model_new(3, 2, 10, NULL);
    kbuf_t k;
    key_at(m, 4, &k);
    sim_mutation_t p1 = put(&k, "1"), p2 = put(&k, "2"), d3 = del(&k), p4 = put(&k, "4");
    uint64_t c1 = sim_model_commit_1pc(m, &p1, 1);
    uint64_t c2 = sim_model_commit_1pc(m, &p2, 1);
    uint64_t c3 = sim_model_commit_1pc(m, &d3, 1);
    uint64_t c4 = sim_model_commit_1pc(m, &p4, 1);
    ck_assert(c1 && c2 && c3 && c4);
    scan_out_t so = {0};

    sim_model_set_gc_safepoint(m, c2);
    sim_model_lock(m);
    sim_model_scan_locked(m, NULL, NULL, scan_cb, &so);
    sim_model_unlock(m);
    ck_assert_uint_eq(so.nvers[0], 3); /* 4, delete, 2: the 1 below the newest <= sp is gone */
    ck_assert_uint_eq(so.vers_commit[0][2], c2);

    sim_model_set_gc_safepoint(m, c3); /* newest <= sp is a delete: dropped too */
    so.n = 0;
    sim_model_lock(m);
    sim_model_scan_locked(m, NULL, NULL, scan_cb, &so);
    sim_model_unlock(m);
    ck_assert_uint_eq(so.nvers[0], 1);
    ck_assert_uint_eq(so.vers_commit[0][0], c4);

    sim_model_set_gc_safepoint(m, c1); /* never backwards */
    ck_assert_uint_eq(sim_model_gc_safepoint(m), c3);

    /* service safepoints: min over live services, never below GC */
    ck_assert_uint_eq(sim_model_update_service_safepoint(m, "a", 60, c3 + 10), c3 + 10);
    ck_assert_uint_eq(sim_model_update_service_safepoint(m, "b", 60, c3 + 5), c3 + 5);
    ck_assert_uint_eq(sim_model_update_service_safepoint(m, "late", 60, c1), c3 + 5); /* refused */
    ck_assert_uint_eq(sim_model_update_service_safepoint(m, "b", 0, 0), c3 + 10);     /* removed */
    ck_assert_uint_eq(sim_model_update_service_safepoint(m, "short", 1, c3 + 1), c3 + 1);
    /* the GC worker stops at the oldest service safepoint */
    ck_assert_uint_eq(sim_model_gc_advance(m, c4 + 100), c3 + 1);
    usleep(1100 * 1000); /* "short" expires after its 1 s TTL */
    ck_assert_uint_eq(sim_model_update_service_safepoint(m, "a", 60, c3 + 10), c3 + 10);
    ck_assert_uint_eq(sim_model_gc_advance(m, c4 + 100), c3 + 10);
    /* a client whose checkpoint fell behind GC learns it from the answer */
    ck_assert_uint_eq(sim_model_update_service_safepoint(m, "a", 0, 0), c3 + 10);
    ck_assert_uint_eq(sim_model_update_service_safepoint(m, "cdc", 60, c3), c3 + 10);
    sim_model_destroy(m);
}
END_TEST

/* ===== workload ===== */

/* Runs a workload of @p txns transactions at full speed and returns its
 * truth lines without the timestamps: key|op|len|crc|region. */
static char **run_workload(uint64_t seed, uint64_t txns, size_t *n_out, sim_workload_stats_t *st)
{
    char path[64];
    FILE *f = truth_open(path);
    sim_model_t *m = model_new(3, 16, 500, f);
    sim_workload_config_t wc;
    sim_workload_config_default(&wc);
    wc.max_txns = txns;
    wc.concurrency = 4;
    wc.keys_per_txn_max = 5;
    wc.value_min = 0;
    wc.value_max = 64;
    wc.rollback_pct = 10;
    wc.onepc_pct = 20;
    wc.delete_pct = 15;
    sim_workload_t *w = sim_workload_new(m, &wc, seed);
    ck_assert_int_eq(sim_workload_start(w), 0);
    ck_assert_int_eq(sim_workload_wait_idle(w, 60000), 0);
    sim_workload_stats(w, st);
    sim_model_lock(m);
    ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, NULL, NULL), UINT64_MAX);
    sim_model_unlock(m);
    sim_workload_destroy(w);
    sim_model_truth_flush(m);
    size_t n;
    char **lines = read_lines(path, &n);
    for (size_t i = 0; i < n; i++) {
        json_t *j = load_line(lines[i]);
        char buf[256];
        snprintf(buf, sizeof(buf), "%s|%s|%" PRIu64 "|%" PRIu64 "|%" PRIu64,
                 json_string_value(json_object_get(j, "key")),
                 json_string_value(json_object_get(j, "op")), jnum(j, "value_len"),
                 jnum(j, "value_crc32"), jnum(j, "region_id"));
        json_decref(j);
        free(lines[i]);
        lines[i] = strdup(buf);
    }
    sim_model_destroy(m);
    fclose(f);
    unlink(path);
    *n_out = n;
    return lines;
}

START_TEST(test_workload_deterministic)
{
    sim_workload_stats_t sa, sb, sc;
    size_t na, nb, nc;
    char **a = run_workload(7, 400, &na, &sa);
    char **b = run_workload(7, 400, &nb, &sb);
    char **c = run_workload(8, 400, &nc, &sc);
    ck_assert_uint_eq(sa.txns_drawn, 400);
    ck_assert_uint_eq(na, sa.rows_committed);
    ck_assert_uint_gt(sa.txns_1pc, 40);
    ck_assert_uint_gt(sa.txns_rolled_back, 10);
    ck_assert_uint_eq(sa.conflicts, 0);
    ck_assert_uint_eq(na, nb);
    for (size_t i = 0; i < na; i++)
        ck_assert_str_eq(a[i], b[i]);
    /* another seed: another sequence */
    size_t same = 0;
    for (size_t i = 0; i < na && i < nc; i++)
        same += strcmp(a[i], c[i]) == 0;
    ck_assert_uint_lt(same, na / 10);
    bool deletes = false;
    for (size_t i = 0; i < na; i++)
        deletes |= strstr(a[i], "|delete|") != NULL;
    ck_assert(deletes);
    free_lines(a, na);
    free_lines(b, nb);
    free_lines(c, nc);
}
END_TEST

START_TEST(test_workload_rate_pause_long)
{
    sim_model_t *m = model_new(3, 8, 1000, NULL);
    recorder_t rec = {0};
    rec.m = m;
    sim_model_set_observer(m, record, &rec);
    sim_workload_config_t wc;
    sim_workload_config_default(&wc);
    wc.rate_rows_per_s = 2000;
    wc.long_txn_pct = 20;
    wc.long_txn_ms = 300;
    wc.concurrency = 4;
    sim_workload_t *w = sim_workload_new(m, &wc, 3);
    int64_t t0 = tkc_clock_mono_ms();
    ck_assert_int_eq(sim_workload_start(w), 0);
    usleep(1200 * 1000);
    sim_workload_pause(w);
    ck_assert_int_eq(sim_workload_wait_idle(w, 10000), 0);
    int64_t elapsed = tkc_clock_mono_ms() - t0;
    sim_workload_stats_t s1;
    sim_workload_stats(w, &s1);
    uint64_t rows = s1.rows_committed + s1.rows_rolled_back;
    printf("sim.model: rate 2000 rows/s for %" PRId64 " ms: %" PRIu64 " rows, %" PRIu64
           " long txns\n",
           elapsed, rows, s1.txns_long);
    ck_assert_uint_gt(rows, 200);
    /* never above the rate (plus the bucket's 0.1 s of burst and slack) */
    ck_assert_uint_le(rows, (uint64_t)(2000.0 * (double)elapsed / 1000.0 * 1.2 + 200 + 8));
    ck_assert_uint_gt(s1.txns_long, 0);
    ck_assert_uint_eq(s1.in_flight, 0);
    /* several transactions were in flight together */
    ck_assert_uint_gt(rec.overlaps, 0);

    /* paused: no locks, no progress */
    sim_model_lock(m);
    ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, NULL, NULL), UINT64_MAX);
    sim_model_unlock(m);
    usleep(200 * 1000);
    sim_workload_stats_t s2;
    sim_workload_stats(w, &s2);
    ck_assert_uint_eq(s2.rows_committed, s1.rows_committed);

    sim_workload_set_rate(w, 0);
    sim_workload_resume(w);
    usleep(200 * 1000);
    sim_workload_stats(w, &s2);
    ck_assert_uint_gt(s2.rows_committed, s1.rows_committed);
    sim_workload_stop(w);
    sim_model_lock(m);
    ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, NULL, NULL), UINT64_MAX);
    sim_model_unlock(m);
    sim_workload_destroy(w);
    sim_model_destroy(m);
    free(rec.ev);
}
END_TEST

START_TEST(test_workload_huge_txn)
{
    sim_model_t *m = model_new(3, 100, 20000, NULL);
    recorder_t rec = {0};
    sim_model_set_observer(m, record, &rec);
    sim_workload_config_t wc;
    sim_workload_config_default(&wc);
    sim_workload_t *w = sim_workload_new(m, &wc, 21);
    /* the generator keeps running on the side */
    ck_assert_int_eq(sim_workload_start(w), 0);
    uint64_t cts = sim_workload_huge_txn(w, 5000, 32);
    ck_assert_uint_gt(cts, 0);
    sim_workload_stop(w);
    sim_workload_stats_t st;
    sim_workload_stats(w, &st);
    ck_assert_uint_eq(st.huge_txns, 1);
    /* it reserved its keys, so the generator never got in its way */
    ck_assert_uint_eq(st.huge_rows, 5000);
    ck_assert_uint_gt(st.rows_committed, 0);
    /* every row committed at cts, spread over (nearly) every region */
    size_t n = 0;
    uint64_t *regions = calloc(st.huge_rows, sizeof(uint64_t));
    for (size_t i = 0; i < rec.n; i++) {
        if (rec.ev[i].kind != SIM_EV_COMMIT || rec.ev[i].commit_ts != cts)
            continue;
        REQUIRE(rec.ev[i].value_len == 32);
        regions[n++] = rec.ev[i].region_id;
    }
    ck_assert_uint_eq(n, st.huge_rows);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = regions[j] == regions[i];
        distinct += !seen;
    }
    ck_assert_uint_ge(distinct, 95);
    free(regions);
    sim_model_lock(m);
    ck_assert_uint_eq(sim_model_min_lock_ts_locked(m, NULL, NULL), UINT64_MAX);
    sim_model_unlock(m);
    sim_workload_destroy(w);
    sim_model_destroy(m);
    free(rec.ev);
}
END_TEST

static Suite *sim_model_suite(void)
{
    Suite *s = suite_create("sim_model");
    TCase *tc = tcase_create("mvcc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_model_tso);
    tcase_add_test(tc, test_model_2pc_rollback_1pc);
    tcase_add_test(tc, test_model_conflicts);
    tcase_add_test(tc, test_model_min_lock_ts);
    tcase_add_test(tc, test_model_resolve_lock);
    tcase_add_test(tc, test_model_gc);
    tcase_add_test(tc, test_model_truth);
    suite_add_tcase(s, tc);

    tc = tcase_create("topology");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_model_topology_random);
    tcase_add_test(tc, test_model_regions_100k);
    suite_add_tcase(s, tc);

    tc = tcase_create("workload");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_workload_deterministic);
    tcase_add_test(tc, test_workload_rate_pause_long);
    tcase_add_test(tc, test_workload_huge_txn);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(sim_model_suite)
