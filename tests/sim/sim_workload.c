/*
 * sim_workload.c: the transaction generator (see sim_workload.h).
 *
 * DESIGN
 * One thread owns a few transaction slots and advances them in rounds; in
 * each round every slot takes one step:
 *   EMPTY      -> draw the next transaction from the PRNG (unless paused or
 *                 max_txns reached)                                -> PLANNED
 *   PLANNED    -> wait while one of its keys is locked by one of our own
 *                 transactions, or while the token bucket is short of its
 *                 rows; then 1PC commit (-> EMPTY) or prewrite    -> PREWRITTEN
 *                 (long transactions move to a separate list and free the
 *                 slot; they commit once their hold time is over)
 *   PREWRITTEN -> commit or roll back (the "short delay" between prewrite
 *                 and commit is the rest of the round)            -> EMPTY
 * So several transactions hold locks while others commit, and, without a
 * clock in the schedule, rate 0 gives the same interleaving every run.
 *
 * Which keys our own transactions lock is tracked per key number (own[],
 * own_long[]), so a transaction never even tries a key we hold: it waits
 * for a short transaction (gone next round) and gives up on a long one.
 * Locks we do not own (crashed clients, huge transactions, tests) make it
 * give up too, since waiting could last until someone resolves them.
 *
 * The on-demand actions (huge txn, leave a lock) run on the caller's thread
 * with their own PRNG under aux_mu; they only talk to the model, whose lock
 * serialises them with the generator.
 */
#include "sim_workload.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/mem.h"

#define HUGE_BATCH_KEYS 1024
#define HUGE_BATCH_BYTES (4u << 20)
#define HUGE_LOCK_TTL_MS 60000
#define MAX_LONG 1024
#define MAX_WRITE_CONFLICT_RETRIES 3
#define IDLE_WAIT_MS 50

typedef enum { KIND_2PC, KIND_ROLLBACK, KIND_1PC, KIND_LONG } txn_kind_t;
typedef enum { SLOT_EMPTY, SLOT_PLANNED, SLOT_PREWRITTEN } slot_state_t;

typedef struct {
    txn_kind_t kind;
    size_t n;
    int64_t *knum;               /* key numbers 1..key_count */
    uint8_t (*kbuf)[SIM_KEY_MAX];
    sim_bytes_t *keys;           /* raw keys, pointing into kbuf */
    sim_mutation_t *muts;
    uint8_t **values;
    uint64_t start_ts;
    int64_t due_ms;              /* long txns: commit time (monotonic) */
    bool in_long;                /* lives in the long list (its keys in own_long[]) */
    int write_conflicts;
} plan_t;

typedef struct {
    slot_state_t state;
    plan_t *plan;
} slot_t;

struct sim_workload_s {
    sim_model_t *m;
    sim_workload_config_t cfg;
    int64_t key_count;
    uint64_t rng;                /* generator thread only */

    pthread_mutex_t mu;          /* flags, rate, stats */
    pthread_cond_t cv;           /* wakes the thread (resume, stop, rate) */
    pthread_cond_t idle_cv;      /* wakes wait_idle() */
    bool started, stop, paused, idle;
    double rate;
    sim_workload_stats_t st;

    pthread_mutex_t aux_mu;      /* the on-demand actions' PRNG */
    uint64_t aux_rng;

    pthread_t thread;
    /* generator thread state */
    slot_t *slots;
    plan_t **longs;
    size_t nlongs;
    uint16_t *own;               /* per key number: our short txns locking it */
    uint16_t *own_long;          /* per key number: our long txns locking it */
    _Atomic uint16_t *reserved;  /* per key number: huge txns about to lock it */
    atomic_uint_fast64_t rounds; /* generator rounds done (huge txn handshake) */
    double tokens;
    int64_t tokens_ms;
};

/* ===== PRNG ===== */

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: one add and a mix, full period, plenty for test data */
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return n ? rng_next(s) % n : 0;
}

static void rng_fill(uint64_t *s, uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint64_t v = rng_next(s);
        memcpy(p, &v, 8);
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = rng_next(s);
        memcpy(p, &v, n);
    }
}

/* ===== plans ===== */

static plan_t *plan_alloc(size_t n)
{
    plan_t *p = tkc_calloc(1, sizeof(*p));
    p->n = n;
    p->knum = tkc_calloc(n, sizeof(int64_t));
    p->kbuf = tkc_calloc(n, SIM_KEY_MAX);
    p->keys = tkc_calloc(n, sizeof(sim_bytes_t));
    p->muts = tkc_calloc(n, sizeof(sim_mutation_t));
    p->values = tkc_calloc(n, sizeof(uint8_t *));
    return p;
}

static void plan_free(plan_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        tkc_free(p->values[i]);
    tkc_free(p->values);
    tkc_free(p->muts);
    tkc_free(p->keys);
    tkc_free(p->kbuf);
    tkc_free(p->knum);
    tkc_free(p);
}

/* Fills key i of @p p with key number @p knum, op and a random value. */
static void plan_set_key(sim_workload_t *w, plan_t *p, size_t i, int64_t knum, sim_op_t op,
                         size_t vlen, uint64_t *rng)
{
    p->knum[i] = knum;
    p->keys[i].data = p->kbuf[i];
    p->keys[i].len = sim_model_key_raw(w->m, knum, p->kbuf[i]);
    p->values[i] = tkc_malloc(vlen ? vlen : 1);
    rng_fill(rng, p->values[i], vlen);
    p->muts[i] = (sim_mutation_t){p->keys[i].data, p->keys[i].len, op,
                                  op == SIM_OP_DELETE ? NULL : p->values[i],
                                  op == SIM_OP_DELETE ? 0 : vlen};
}

static size_t value_len(const sim_workload_config_t *c, uint64_t *rng)
{
    return (size_t)c->value_min + rng_below(rng, (uint64_t)(c->value_max - c->value_min) + 1);
}

/* Draws the next transaction: everything comes from the generator PRNG, in
 * a fixed order, so the sequence depends on the seed and settings only. */
static plan_t *plan_draw(sim_workload_t *w)
{
    const sim_workload_config_t *c = &w->cfg;
    uint64_t *rng = &w->rng;
    uint64_t r = rng_below(rng, 100);
    txn_kind_t kind = KIND_2PC;
    if (r < (uint64_t)c->rollback_pct)
        kind = KIND_ROLLBACK;
    else if (r < (uint64_t)(c->rollback_pct + c->onepc_pct))
        kind = KIND_1PC;
    else if (r < (uint64_t)(c->rollback_pct + c->onepc_pct + c->long_txn_pct))
        kind = KIND_LONG;
    size_t n = 1 + (size_t)rng_below(rng, (uint64_t)c->keys_per_txn_max);
    if ((int64_t)n > w->key_count)
        n = (size_t)w->key_count;
    plan_t *p = plan_alloc(n);
    p->kind = kind;
    for (size_t i = 0; i < n; i++) {
        int64_t knum;
        bool dup;
        do { /* distinct keys; n is small, so a linear check is cheapest */
            knum = 1 + (int64_t)rng_below(rng, (uint64_t)w->key_count);
            dup = false;
            for (size_t j = 0; j < i; j++)
                dup |= p->knum[j] == knum;
        } while (dup);
        sim_op_t op = rng_below(rng, 100) < (uint64_t)c->delete_pct ? SIM_OP_DELETE : SIM_OP_PUT;
        plan_set_key(w, p, i, knum, op, value_len(c, rng), rng);
    }
    return p;
}

/* ===== generator thread ===== */

static void own_mark(sim_workload_t *w, const plan_t *p, int delta)
{
    uint16_t *own = p->in_long ? w->own_long : w->own;
    for (size_t i = 0; i < p->n; i++)
        own[p->knum[i]] = (uint16_t)(own[p->knum[i]] + delta);
}

typedef enum { OWN_FREE, OWN_WAIT, OWN_GIVE_UP } own_check_t;

/* A key held by one of our short txns is free again a round later: wait
 * (this keeps rate-0 runs deterministic). One held by a long txn may stay
 * locked for long_txn_ms: waiting would stall the slot and the rate, so the
 * transaction gives up as if it had met a foreign lock. */
static own_check_t own_blocked(const sim_workload_t *w, const plan_t *p)
{
    own_check_t r = OWN_FREE;
    for (size_t i = 0; i < p->n; i++) {
        if (w->own_long[p->knum[i]] ||
            atomic_load_explicit(&w->reserved[p->knum[i]], memory_order_relaxed))
            return OWN_GIVE_UP;
        if (w->own[p->knum[i]])
            r = OWN_WAIT;
    }
    return r;
}

/* Token bucket: refills at the current rate, holds a tenth of a second of
 * rows (at least one transaction), @returns true when @p rows may go. */
static bool tokens_take(sim_workload_t *w, double rate, size_t rows, int64_t now, int64_t *wait_ms)
{
    if (rate <= 0)
        return true;
    double cap = rate / 10;
    if (cap < (double)w->cfg.keys_per_txn_max)
        cap = (double)w->cfg.keys_per_txn_max;
    w->tokens += (double)(now - w->tokens_ms) * rate / 1000.0;
    w->tokens_ms = now;
    if (w->tokens > cap)
        w->tokens = cap;
    if (w->tokens >= (double)rows) {
        w->tokens -= (double)rows;
        return true;
    }
    int64_t ms = (int64_t)(((double)rows - w->tokens) * 1000.0 / rate) + 1;
    if (ms < *wait_ms)
        *wait_ms = ms;
    return false;
}

static void stats_add(sim_workload_t *w, uint64_t *field, uint64_t v)
{
    pthread_mutex_lock(&w->mu);
    *field += v;
    pthread_mutex_unlock(&w->mu);
}

/* Commits (or rolls back) a prewritten plan and releases its keys. */
static void plan_finish(sim_workload_t *w, plan_t *p, bool abort)
{
    if (abort || p->kind == KIND_ROLLBACK) {
        sim_model_rollback(w->m, p->start_ts, p->keys, p->n);
        if (!abort) {
            stats_add(w, &w->st.txns_rolled_back, 1);
            stats_add(w, &w->st.rows_rolled_back, p->n);
        }
    } else {
        /* primary first, then the rest, as a TiKV client does */
        uint64_t cts = sim_model_commit(w->m, p->start_ts, p->keys, 1);
        if (cts && p->n > 1)
            cts = sim_model_commit(w->m, p->start_ts, p->keys + 1, p->n - 1);
        pthread_mutex_lock(&w->mu);
        if (cts) {
            w->st.txns_committed++;
            w->st.rows_committed += p->n;
            if (p->kind == KIND_LONG)
                w->st.txns_long++;
        } else {
            w->st.locks_lost++;
        }
        pthread_mutex_unlock(&w->mu);
        if (!cts) /* whatever is left of it (nothing, normally) */
            sim_model_rollback(w->m, p->start_ts, p->keys, p->n);
    }
    own_mark(w, p, -1);
    plan_free(p);
}

/* PLANNED step. @returns true if the slot made progress. */
static bool slot_start(sim_workload_t *w, slot_t *s, double rate, int64_t now, int64_t *wait_ms)
{
    plan_t *p = s->plan;
    own_check_t own = own_blocked(w, p);
    if (own == OWN_WAIT)
        return false; /* one of ours holds a key: it finishes next round */
    if (own == OWN_GIVE_UP) {
        stats_add(w, &w->st.conflicts, 1);
        plan_free(p);
        *s = (slot_t){SLOT_EMPTY, NULL};
        return true;
    }
    if (!tokens_take(w, rate, p->n, now, wait_ms))
        return false;
    if (p->kind == KIND_1PC) {
        uint64_t cts = sim_model_commit_1pc(w->m, p->muts, p->n);
        pthread_mutex_lock(&w->mu);
        if (cts) {
            w->st.txns_committed++;
            w->st.txns_1pc++;
            w->st.rows_committed += p->n;
        } else {
            w->st.conflicts++;
        }
        pthread_mutex_unlock(&w->mu);
        plan_free(p);
        *s = (slot_t){SLOT_EMPTY, NULL};
        return true;
    }
    p->start_ts = sim_model_tso(w->m);
    uint64_t ttl = SIM_LOCK_TTL_DEFAULT_MS;
    if (p->kind == KIND_LONG)
        ttl = (uint64_t)w->cfg.long_txn_ms + SIM_LOCK_TTL_DEFAULT_MS;
    sim_prewrite_rc_t rc = sim_model_prewrite_ex(w->m, p->start_ts, p->muts, p->n,
                                                 p->keys[0].data, p->keys[0].len, ttl, NULL, NULL);
    if (rc == SIM_PREWRITE_WRITE_CONFLICT && ++p->write_conflicts <= MAX_WRITE_CONFLICT_RETRIES)
        return true; /* someone else committed after our start ts: retry with a new one */
    if (rc != SIM_PREWRITE_OK) {
        stats_add(w, &w->st.conflicts, 1);
        plan_free(p);
        *s = (slot_t){SLOT_EMPTY, NULL};
        return true;
    }
    if (p->kind == KIND_LONG && w->nlongs < MAX_LONG) {
        p->in_long = true;
        own_mark(w, p, +1);
        p->due_ms = now + w->cfg.long_txn_ms;
        w->longs[w->nlongs++] = p;
        *s = (slot_t){SLOT_EMPTY, NULL};
    } else {
        own_mark(w, p, +1);
        s->state = SLOT_PREWRITTEN;
    }
    return true;
}

static void *workload_run(void *arg)
{
    sim_workload_t *w = arg;
    int conc = w->cfg.concurrency;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        bool paused = w->paused;
        double rate = w->rate;
        bool may_draw = !paused && (w->cfg.max_txns == 0 || w->st.txns_drawn < w->cfg.max_txns);
        pthread_mutex_unlock(&w->mu);

        int64_t now = tkc_clock_mono_ms();
        int64_t wait_ms = IDLE_WAIT_MS;
        bool progress = false;

        /* long transactions whose time is up */
        for (size_t i = 0; i < w->nlongs;) {
            if (w->longs[i]->due_ms <= now) {
                plan_finish(w, w->longs[i], false);
                w->longs[i] = w->longs[--w->nlongs];
                progress = true;
            } else {
                if (w->longs[i]->due_ms - now < wait_ms)
                    wait_ms = w->longs[i]->due_ms - now;
                i++;
            }
        }

        size_t busy = 0; /* slots holding locks after this round */
        bool planned = false;
        for (int i = 0; i < conc; i++) {
            slot_t *s = &w->slots[i];
            switch (s->state) {
            case SLOT_EMPTY:
                if (!may_draw)
                    break;
                s->plan = plan_draw(w);
                s->state = SLOT_PLANNED;
                progress = true;
                pthread_mutex_lock(&w->mu);
                w->st.txns_drawn++;
                may_draw = w->cfg.max_txns == 0 || w->st.txns_drawn < w->cfg.max_txns;
                pthread_mutex_unlock(&w->mu);
                /* fall through: a fresh plan may start this round */
                /* FALLTHROUGH */
            case SLOT_PLANNED:
                if (paused)
                    break; /* drawn but not started: holds nothing */
                if (slot_start(w, s, rate, now, &wait_ms))
                    progress = true;
                break;
            case SLOT_PREWRITTEN:
                plan_finish(w, s->plan, false);
                *s = (slot_t){SLOT_EMPTY, NULL};
                progress = true;
                break;
            }
            if (s->state == SLOT_PREWRITTEN)
                busy++;
            if (s->state == SLOT_PLANNED)
                planned = true;
        }

        atomic_fetch_add(&w->rounds, 1);
        pthread_mutex_lock(&w->mu);
        w->st.in_flight = busy + w->nlongs;
        bool no_more = w->paused ||
                       (w->cfg.max_txns && w->st.txns_drawn >= w->cfg.max_txns && !planned);
        w->idle = no_more && busy == 0 && w->nlongs == 0;
        if (w->idle)
            pthread_cond_broadcast(&w->idle_cv);
        if (!progress && !w->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (wait_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        }
    }
    pthread_mutex_unlock(&w->mu);

    /* leave nothing locked behind: roll back what is still in flight */
    for (int i = 0; i < conc; i++) {
        slot_t *s = &w->slots[i];
        if (s->state == SLOT_PREWRITTEN)
            plan_finish(w, s->plan, true);
        else
            plan_free(s->plan);
        *s = (slot_t){SLOT_EMPTY, NULL};
    }
    for (size_t i = 0; i < w->nlongs; i++)
        plan_finish(w, w->longs[i], true);
    w->nlongs = 0;
    pthread_mutex_lock(&w->mu);
    w->st.in_flight = 0;
    w->idle = true;
    pthread_cond_broadcast(&w->idle_cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ===== API ===== */

void sim_workload_config_default(sim_workload_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->keys_per_txn_max = 4;
    cfg->value_min = 16;
    cfg->value_max = 128;
    cfg->long_txn_ms = 2000;
    cfg->concurrency = 4;
    cfg->crashed_lock_ttl_ms = SIM_LOCK_TTL_DEFAULT_MS;
}

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

sim_workload_t *sim_workload_new(sim_model_t *model, const sim_workload_config_t *cfg,
                                 uint64_t seed)
{
    int64_t kc = sim_model_key_count(model);
    if (kc < 1)
        return NULL;
    sim_workload_t *w = tkc_calloc(1, sizeof(*w));
    w->m = model;
    w->cfg = *cfg;
    sim_workload_config_t *c = &w->cfg;
    c->keys_per_txn_max = clamp(c->keys_per_txn_max, 1, 100000);
    c->value_min = clamp(c->value_min, 0, 1 << 30);
    c->value_max = clamp(c->value_max, c->value_min, 1 << 30);
    c->rollback_pct = clamp(c->rollback_pct, 0, 100);
    c->onepc_pct = clamp(c->onepc_pct, 0, 100 - c->rollback_pct);
    c->long_txn_pct = clamp(c->long_txn_pct, 0, 100 - c->rollback_pct - c->onepc_pct);
    c->delete_pct = clamp(c->delete_pct, 0, 100);
    c->long_txn_ms = clamp(c->long_txn_ms, 0, 24 * 3600 * 1000);
    c->concurrency = clamp(c->concurrency, 1, 1024);
    if (c->crashed_lock_ttl_ms <= 0)
        c->crashed_lock_ttl_ms = SIM_LOCK_TTL_DEFAULT_MS;
    if (c->rate_rows_per_s < 0)
        c->rate_rows_per_s = 0;
    w->key_count = kc;
    w->rng = seed;
    w->aux_rng = seed ^ UINT64_C(0xA5A5A5A55A5A5A5A);
    w->rate = c->rate_rows_per_s;
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->aux_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_cond_init(&w->idle_cv, &ca);
    pthread_condattr_destroy(&ca);
    w->slots = tkc_calloc((size_t)c->concurrency, sizeof(slot_t));
    w->longs = tkc_calloc(MAX_LONG, sizeof(plan_t *));
    w->own = tkc_calloc((size_t)kc + 1, sizeof(uint16_t));
    w->own_long = tkc_calloc((size_t)kc + 1, sizeof(uint16_t));
    w->reserved = tkc_calloc((size_t)kc + 1, sizeof(*w->reserved));
    atomic_init(&w->rounds, 0);
    w->idle = true;
    return w;
}

int sim_workload_start(sim_workload_t *w)
{
    pthread_mutex_lock(&w->mu);
    if (w->started) {
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    w->started = true;
    w->stop = false;
    w->idle = false;
    pthread_mutex_unlock(&w->mu);
    w->tokens = 0;
    w->tokens_ms = tkc_clock_mono_ms();
    if (pthread_create(&w->thread, NULL, workload_run, w) != 0) {
        pthread_mutex_lock(&w->mu);
        w->started = false;
        w->idle = true;
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    return 0;
}

void sim_workload_stop(sim_workload_t *w)
{
    pthread_mutex_lock(&w->mu);
    bool was = w->started;
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (was)
        pthread_join(w->thread, NULL);
    pthread_mutex_lock(&w->mu);
    w->started = false;
    pthread_mutex_unlock(&w->mu);
}

void sim_workload_destroy(sim_workload_t *w)
{
    if (!w)
        return;
    sim_workload_stop(w);
    tkc_free(w->slots);
    tkc_free(w->longs);
    tkc_free(w->own);
    tkc_free(w->own_long);
    tkc_free((void *)w->reserved);
    pthread_cond_destroy(&w->cv);
    pthread_cond_destroy(&w->idle_cv);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->aux_mu);
    tkc_free(w);
}

void sim_workload_pause(sim_workload_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->paused = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void sim_workload_resume(sim_workload_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->paused = false;
    if (w->started)
        w->idle = false;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void sim_workload_set_rate(sim_workload_t *w, double rows_per_s)
{
    pthread_mutex_lock(&w->mu);
    w->rate = rows_per_s > 0 ? rows_per_s : 0;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int sim_workload_wait_idle(sim_workload_t *w, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    /* a pause or resume that the thread has not seen yet leaves a stale
     * idle flag: wake it so the flag is recomputed */
    pthread_cond_broadcast(&w->cv);
    int rc = 0;
    while (!w->idle && rc == 0)
        rc = pthread_cond_timedwait(&w->idle_cv, &w->mu, &ts);
    bool idle = w->idle;
    pthread_mutex_unlock(&w->mu);
    return idle ? 0 : -1;
}

void sim_workload_stats(sim_workload_t *w, sim_workload_stats_t *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->st;
    pthread_mutex_unlock(&w->mu);
}

/* ===== on-demand actions ===== */

/* Prewrites @p p's mutations [0, n) under one start ts, dropping keys that
 * meet a foreign lock or a newer commit. @returns the number kept (the first
 * p->n entries after compaction), or -1 if the txn was resolved away. */
static int prewrite_dropping(sim_workload_t *w, plan_t *p, uint64_t start_ts,
                             const sim_bytes_t *primary, uint64_t ttl)
{
    for (;;) {
        if (p->n == 0)
            return 0;
        size_t bad = 0;
        sim_prewrite_rc_t rc = sim_model_prewrite_ex(w->m, start_ts, p->muts, p->n, primary->data,
                                                     primary->len, ttl, &bad, NULL);
        if (rc == SIM_PREWRITE_OK)
            return (int)p->n;
        if (rc == SIM_PREWRITE_TXN_DONE)
            return -1;
        if (rc == SIM_PREWRITE_INVALID && bad >= p->n)
            return -1;
        /* drop the offending key: move the last one into its place */
        size_t last = p->n - 1;
        tkc_free(p->values[bad]);
        if (bad != last) {
            p->knum[bad] = p->knum[last];
            memcpy(p->kbuf[bad], p->kbuf[last], SIM_KEY_MAX);
            p->keys[bad] = (sim_bytes_t){p->kbuf[bad], p->keys[last].len};
            p->values[bad] = p->values[last];
            p->muts[bad] = p->muts[last];
            p->muts[bad].key = p->kbuf[bad];
        }
        p->values[last] = NULL;
        p->n--;
    }
}

uint64_t sim_workload_huge_txn(sim_workload_t *w, int n_keys, int value_size)
{
    int64_t kc = w->key_count;
    int64_t n = n_keys < 1 ? 0 : n_keys > kc ? kc : n_keys;
    if (n == 0 || value_size < 0)
        return 0;
    pthread_mutex_lock(&w->aux_mu);
    int64_t off = (int64_t)rng_below(&w->aux_rng, (uint64_t)kc);
    uint64_t vrng = rng_next(&w->aux_rng);
    pthread_mutex_unlock(&w->aux_mu);

    /* key j of the txn: spread evenly over the key set from a random offset */
#define HUGE_KEY(j) (1 + (off + ((j) * kc) / n) % kc)
    /* Keep the generator off our keys: once they are reserved and two of its
     * rounds have passed, none of its transactions holds or is about to
     * commit one of them, so a start ts taken now meets no write conflict
     * from it (a TiKV client would abort the whole txn instead). */
    for (int64_t q = 0; q < n; q++)
        atomic_fetch_add(&w->reserved[HUGE_KEY(q)], 1);
    pthread_mutex_lock(&w->mu);
    bool running = w->started && !w->stop;
    pthread_mutex_unlock(&w->mu);
    if (running) {
        uint64_t r0 = atomic_load(&w->rounds);
        int64_t deadline = tkc_clock_mono_ms() + 2000;
        while (atomic_load(&w->rounds) < r0 + 2 && tkc_clock_mono_ms() < deadline) {
            struct timespec d = {0, 1000000L};
            nanosleep(&d, NULL);
        }
    }
    uint64_t start_ts = sim_model_tso(w->m);
    int64_t *locked = tkc_malloc((size_t)n * sizeof(int64_t));
    int64_t nlocked = 0;
    uint8_t pbuf[SIM_KEY_MAX];
    sim_bytes_t primary = {pbuf, 0};
    uint64_t commit_ts = 0;

    /* the primary first, alone, so every other lock can point at a lock
     * that exists */
    int64_t j = 0;
    for (; j < n && nlocked == 0; j++) {
        plan_t *p = plan_alloc(1);
        plan_set_key(w, p, 0, HUGE_KEY(j), SIM_OP_PUT, (size_t)value_size, &vrng);
        memcpy(pbuf, p->kbuf[0], p->keys[0].len);
        primary.len = p->keys[0].len;
        int kept = prewrite_dropping(w, p, start_ts, &primary, HUGE_LOCK_TTL_MS);
        if (kept == 1)
            locked[nlocked++] = p->knum[0];
        plan_free(p);
        if (kept < 0)
            goto out;
    }
    if (nlocked == 0)
        goto out;
    while (j < n) {
        size_t cnt = 0, bytes = 0;
        while (j + (int64_t)cnt < n && cnt < HUGE_BATCH_KEYS &&
               (cnt == 0 || bytes + (size_t)value_size <= HUGE_BATCH_BYTES)) {
            cnt++;
            bytes += (size_t)value_size;
        }
        plan_t *p = plan_alloc(cnt);
        for (size_t i = 0; i < cnt; i++)
            plan_set_key(w, p, i, HUGE_KEY(j + (int64_t)i), SIM_OP_PUT, (size_t)value_size, &vrng);
        j += (int64_t)cnt;
        int kept = prewrite_dropping(w, p, start_ts, &primary, HUGE_LOCK_TTL_MS);
        for (int i = 0; i < kept; i++)
            locked[nlocked++] = p->knum[i];
        plan_free(p);
        if (kept < 0)
            goto rollback;
    }

    commit_ts = sim_model_commit(w->m, start_ts, &primary, 1);
    if (commit_ts == 0)
        goto rollback;
    for (int64_t i = 1; i < nlocked; i += HUGE_BATCH_KEYS) {
        int64_t cnt = nlocked - i < HUGE_BATCH_KEYS ? nlocked - i : HUGE_BATCH_KEYS;
        plan_t *p = plan_alloc((size_t)cnt);
        for (int64_t k = 0; k < cnt; k++) {
            p->keys[k].data = p->kbuf[k];
            p->keys[k].len = sim_model_key_raw(w->m, locked[i + k], p->kbuf[k]);
        }
        /* a resolver may have committed some already: commit tolerates that */
        sim_model_commit(w->m, start_ts, p->keys, (size_t)cnt);
        plan_free(p);
    }
    pthread_mutex_lock(&w->mu);
    w->st.huge_txns++;
    w->st.huge_rows += (uint64_t)nlocked;
    pthread_mutex_unlock(&w->mu);
    goto out;

rollback:
    commit_ts = 0;
    for (int64_t i = 0; i < nlocked; i += HUGE_BATCH_KEYS) {
        int64_t cnt = nlocked - i < HUGE_BATCH_KEYS ? nlocked - i : HUGE_BATCH_KEYS;
        plan_t *p = plan_alloc((size_t)cnt);
        for (int64_t k = 0; k < cnt; k++) {
            p->keys[k].data = p->kbuf[k];
            p->keys[k].len = sim_model_key_raw(w->m, locked[i + k], p->kbuf[k]);
        }
        sim_model_rollback(w->m, start_ts, p->keys, (size_t)cnt);
        plan_free(p);
    }
out:
    for (int64_t q = 0; q < n; q++)
        atomic_fetch_sub(&w->reserved[HUGE_KEY(q)], 1);
#undef HUGE_KEY
    tkc_free(locked);
    return commit_ts;
}

uint64_t sim_workload_leave_lock(sim_workload_t *w, int n_keys, bool commit_primary)
{
    if (n_keys < 1)
        return 0;
    if (n_keys > w->key_count)
        n_keys = (int)w->key_count;
    plan_t *p = plan_alloc((size_t)n_keys);
    pthread_mutex_lock(&w->aux_mu);
    size_t n = 0;
    for (int tries = 0; n < (size_t)n_keys && tries < n_keys * 20; tries++) {
        int64_t knum = 1 + (int64_t)rng_below(&w->aux_rng, (uint64_t)w->key_count);
        bool dup = false;
        for (size_t i = 0; i < n; i++)
            dup |= p->knum[i] == knum;
        if (dup)
            continue;
        plan_set_key(w, p, n, knum, SIM_OP_PUT, value_len(&w->cfg, &w->aux_rng), &w->aux_rng);
        n++;
    }
    pthread_mutex_unlock(&w->aux_mu);
    p->n = n;
    uint64_t start_ts = 0;
    /* retry with fresh timestamps while the chosen keys are busy: a
     * generator lock is gone a round later, so this ends quickly */
    for (int attempt = 0; attempt < 100 && p->n > 0; attempt++) {
        uint64_t ts = sim_model_tso(w->m);
        size_t bad = 0;
        sim_prewrite_rc_t rc = sim_model_prewrite_ex(w->m, ts, p->muts, p->n, p->keys[0].data,
                                                     p->keys[0].len,
                                                     (uint64_t)w->cfg.crashed_lock_ttl_ms, &bad,
                                                     NULL);
        if (rc == SIM_PREWRITE_OK) {
            start_ts = ts;
            break;
        }
        struct timespec d = {0, 2 * 1000000L};
        nanosleep(&d, NULL);
    }
    if (start_ts && commit_primary && p->n > 1)
        sim_model_commit(w->m, start_ts, p->keys, 1);
    if (start_ts)
        stats_add(w, &w->st.locks_left, 1);
    plan_free(p);
    return start_ts;
}
