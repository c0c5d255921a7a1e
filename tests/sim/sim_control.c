/*
 * sim_control.c: the control endpoint (HTTP+JSON), the op table and the
 * scheduler of tikv-sim (see sim_control.h and README.md for the ops).
 *
 * DESIGN
 *  - Op table: name -> handler(c, op json, result json). Handlers validate
 *    their fields first and change nothing when a field is bad, so a 400
 *    answer means "nothing happened".
 *  - Ops are serialized by c->op_mu: a restart and a transfer of the same
 *    store's leaders cannot interleave. huge_txn is the exception (it runs
 *    for seconds and the workload functions are thread-safe).
 *  - Scheduler: one thread, a list of (due time, step) sorted by time, a
 *    condition variable. Scenario lines and the delayed halves of
 *    restart_store / kill_store (leader election after election_ms, coming
 *    back after down_ms) are steps. Each store has a generation number that
 *    every state change bumps; a step carries the generation it was
 *    scheduled under and does nothing if the store moved on (e.g. it was
 *    killed while a restart was pending).
 *  - Store restart order (sim_cdc.h): sim_cdc_store_down, model state DOWN,
 *    sim_server_stop (calls end UNAVAILABLE, port refuses connections);
 *    later sim_model_evacuate_leaders if still down; later
 *    sim_server_start on the same port, model state UP, sim_cdc_store_up.
 *    If the store is back before election_ms, its leaders stay (as when a
 *    TiKV restarts within the election timeout).
 *  - HTTP: libmicrohttpd with a thread per connection bound to 127.0.0.1.
 */
#include "sim_control.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "cdcpb.pb-c.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define CONTROL_MAX_BODY (1 << 20)
#define ERRLEN 256

typedef struct {
    uint64_t id;
    sim_server_t *srv;
    sim_lockrpc_t *lockrpc;
    bool down;
    bool killed;
    uint64_t gen;
    uint64_t restarts;
} ctl_store_t;

typedef struct sched_item_s {
    int64_t due_ms;
    uint64_t seq;
    void (*fn)(sim_control_t *c, void *arg);
    void *arg;
    void (*free_arg)(void *arg);
    struct sched_item_s *next;
} sched_item_t;

struct sim_control_s {
    sim_model_t *m;
    sim_workload_t *w;
    sim_cdc_t *cdc;
    sim_pd_t *pd;
    ctl_store_t *stores;
    size_t n_stores;
    int64_t start_ms;

    pthread_mutex_t op_mu;

    pthread_mutex_t sched_mu;
    pthread_cond_t sched_cv;
    sched_item_t *sched;
    uint64_t sched_seq;
    bool sched_stop;
    pthread_t sched_thread;

    struct MHD_Daemon *mhd;
    int port;

    atomic_uint_fast64_t ops_ok, ops_failed, scenario_ok, scenario_failed, http_requests;
};

/* ===== small helpers ===== */

static int64_t now_ms(void)
{
    return tkc_clock_mono_ms();
}

static ctl_store_t *find_store(sim_control_t *c, uint64_t id)
{
    for (size_t i = 0; i < c->n_stores; i++)
        if (c->stores[i].id == id)
            return &c->stores[i];
    return NULL;
}

static char *hex_encode(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *s = tkc_malloc(n * 2 + 1);
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[n * 2] = 0;
    return s;
}

static int hex_nibble(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* @returns 0 and malloc'd bytes, or -1 if @p s is not even-length hex. */
static int hex_decode(const char *s, sim_bytes_t *out)
{
    size_t n = strlen(s);
    if (n % 2)
        return -1;
    out->len = n / 2;
    out->data = tkc_malloc(out->len + 1);
    for (size_t i = 0; i < out->len; i++) {
        int hi = hex_nibble((unsigned char)s[2 * i]), lo = hex_nibble((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            sim_bytes_free(out);
            return -1;
        }
        out->data[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/*
 * Field readers: @returns 1 if present and valid, 0 if absent (default kept),
 * -1 if present but of the wrong type (err filled).
 */
static int get_int(json_t *op, const char *key, int64_t *out, char *err)
{
    json_t *v = json_object_get(op, key);
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        *out = (int64_t)json_real_value(v);
        return 1;
    }
    snprintf(err, ERRLEN, "field \"%s\" must be a number", key);
    return -1;
}

static int get_bool(json_t *op, const char *key, bool *out, char *err)
{
    json_t *v = json_object_get(op, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        snprintf(err, ERRLEN, "field \"%s\" must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

static int get_str(json_t *op, const char *key, const char **out, char *err)
{
    json_t *v = json_object_get(op, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        snprintf(err, ERRLEN, "field \"%s\" must be a string", key);
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

static int need_int(json_t *op, const char *key, int64_t *out, char *err)
{
    int rc = get_int(op, key, out, err);
    if (rc == 0)
        snprintf(err, ERRLEN, "field \"%s\" is required", key);
    return rc == 1 ? 0 : -1;
}

static const char *const status_names[] = {
    "OK",        "CANCELLED",         "UNKNOWN",           "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",      "UNAVAILABLE",       "DATA_LOSS",
    "UNAUTHENTICATED",
};

/* "UNAVAILABLE" / 14 -> status; @returns 0 or -1. */
static int get_status(json_t *op, const char *key, grpc_status_code *out, char *err)
{
    json_t *v = json_object_get(op, key);
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 16) {
        *out = (grpc_status_code)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        for (int i = 0; i <= 16; i++) {
            if (strcasecmp(status_names[i], json_string_value(v)) == 0) {
                *out = (grpc_status_code)i;
                return 0;
            }
        }
    }
    snprintf(err, ERRLEN, "field \"%s\" must be a gRPC status name or code", key);
    return -1;
}

/* The store named by field "store", required, known. */
static ctl_store_t *need_store(sim_control_t *c, json_t *op, char *err)
{
    int64_t id;
    if (need_int(op, "store", &id, err) != 0)
        return NULL;
    ctl_store_t *st = find_store(c, (uint64_t)id);
    if (!st)
        snprintf(err, ERRLEN, "unknown store %" PRId64, id);
    return st;
}

/* ===== scheduler ===== */

static void sched_add(sim_control_t *c, int64_t delay_ms, void (*fn)(sim_control_t *, void *),
                      void *arg, void (*free_arg)(void *))
{
    sched_item_t *it = tkc_calloc(1, sizeof(*it));
    it->due_ms = now_ms() + (delay_ms > 0 ? delay_ms : 0);
    it->fn = fn;
    it->arg = arg;
    it->free_arg = free_arg;
    pthread_mutex_lock(&c->sched_mu);
    it->seq = c->sched_seq++;
    sched_item_t **pp = &c->sched;
    while (*pp && ((*pp)->due_ms < it->due_ms ||
                   ((*pp)->due_ms == it->due_ms && (*pp)->seq < it->seq)))
        pp = &(*pp)->next;
    it->next = *pp;
    *pp = it;
    pthread_cond_signal(&c->sched_cv);
    pthread_mutex_unlock(&c->sched_mu);
}

static void sched_free_item(sched_item_t *it)
{
    if (it->free_arg)
        it->free_arg(it->arg);
    tkc_free(it);
}

static void *sched_main(void *arg)
{
    sim_control_t *c = arg;
    pthread_mutex_lock(&c->sched_mu);
    while (!c->sched_stop) {
        sched_item_t *it = c->sched;
        if (!it) {
            pthread_cond_wait(&c->sched_cv, &c->sched_mu);
            continue;
        }
        int64_t now = now_ms();
        if (it->due_ms > now) {
            /* the condvar uses CLOCK_MONOTONIC (see sim_control_new) */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = it->due_ms - now;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&c->sched_cv, &c->sched_mu, &ts);
            continue;
        }
        c->sched = it->next;
        pthread_mutex_unlock(&c->sched_mu);
        it->fn(c, it->arg);
        sched_free_item(it);
        pthread_mutex_lock(&c->sched_mu);
    }
    pthread_mutex_unlock(&c->sched_mu);
    return NULL;
}

/* ===== store steps ===== */

typedef struct {
    uint64_t store_id;
    uint64_t gen;
} store_step_t;

static store_step_t *store_step(const ctl_store_t *st)
{
    store_step_t *s = tkc_malloc(sizeof(*s));
    s->store_id = st->id;
    s->gen = st->gen;
    return s;
}

static void store_take_down(sim_control_t *c, ctl_store_t *st)
{
    /* sim_cdc.h: drop the store's registrations first, then stop the server
     * (never under the model lock) */
    if (c->cdc)
        sim_cdc_store_down(c->cdc, st->id);
    sim_model_set_store_state(c->m, st->id, SIM_STORE_DOWN);
    sim_server_stop(st->srv);
    st->down = true;
    st->gen++;
}

static int store_bring_up(sim_control_t *c, ctl_store_t *st, char *err)
{
    int port = sim_server_start(st->srv);
    if (port < 0) {
        snprintf(err, ERRLEN, "store %" PRIu64 " cannot bind %s", st->id,
                 sim_server_addr(st->srv));
        return -1;
    }
    sim_model_lock(c->m);
    sim_store_t *ms = sim_model_store_by_id_locked(c->m, st->id);
    if (ms)
        snprintf(ms->addr, sizeof(ms->addr), "%s", sim_server_addr(st->srv));
    sim_model_unlock(c->m);
    sim_model_set_store_state(c->m, st->id, SIM_STORE_UP);
    if (c->cdc)
        sim_cdc_store_up(c->cdc, st->id);
    st->down = false;
    st->gen++;
    return 0;
}

static void step_evacuate(sim_control_t *c, void *arg)
{
    store_step_t *s = arg;
    pthread_mutex_lock(&c->op_mu);
    ctl_store_t *st = find_store(c, s->store_id);
    if (st && st->gen == s->gen && st->down) {
        sim_model_evacuate_leaders(c->m, st->id);
        tkc_log(TKC_LOG_INFO, "sim_control", "event=leaders_evacuated store=%" PRIu64, st->id);
    }
    pthread_mutex_unlock(&c->op_mu);
}

static void step_up(sim_control_t *c, void *arg)
{
    store_step_t *s = arg;
    char err[ERRLEN];
    pthread_mutex_lock(&c->op_mu);
    ctl_store_t *st = find_store(c, s->store_id);
    if (st && st->gen == s->gen && st->down && !st->killed) {
        if (store_bring_up(c, st, err) != 0) {
            /* The old port may still be held for a moment; try again soon. */
            tkc_log(TKC_LOG_WARN, "sim_control", "event=store_up_retry store=%" PRIu64 " err=\"%s\"",
                    st->id, err);
            sched_add(c, 200, step_up, store_step(st), tkc_free);
        } else {
            tkc_log(TKC_LOG_INFO, "sim_control", "event=store_up store=%" PRIu64 " addr=%s",
                    st->id, sim_server_addr(st->srv));
        }
    }
    pthread_mutex_unlock(&c->op_mu);
}

/* ===== ops ===== */

typedef int (*op_fn)(sim_control_t *c, json_t *op, json_t *res, char *err);

static int op_restart_store(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    ctl_store_t *st = need_store(c, op, err);
    int64_t down_ms = 3000, election_ms = 1000;
    if (!st || get_int(op, "down_ms", &down_ms, err) < 0 ||
        get_int(op, "election_ms", &election_ms, err) < 0)
        return -1;
    if (st->down) {
        snprintf(err, ERRLEN, "store %" PRIu64 " is %s", st->id, st->killed ? "killed" : "down");
        return -1;
    }
    store_take_down(c, st);
    st->restarts++;
    /* election first on ties: a store that is still down when its election
     * timer fires loses its leaders */
    sched_add(c, election_ms, step_evacuate, store_step(st), tkc_free);
    sched_add(c, down_ms, step_up, store_step(st), tkc_free);
    json_object_set_new(res, "store", json_integer((json_int_t)st->id));
    json_object_set_new(res, "down_ms", json_integer(down_ms));
    json_object_set_new(res, "election_ms", json_integer(election_ms));
    return 0;
}

static int op_kill_store(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    ctl_store_t *st = need_store(c, op, err);
    int64_t election_ms = 1000;
    if (!st || get_int(op, "election_ms", &election_ms, err) < 0)
        return -1;
    if (st->killed) {
        snprintf(err, ERRLEN, "store %" PRIu64 " is already killed", st->id);
        return -1;
    }
    if (!st->down)
        store_take_down(c, st);
    else
        st->gen++; /* cancels a pending restart */
    st->killed = true;
    sched_add(c, election_ms, step_evacuate, store_step(st), tkc_free);
    json_object_set_new(res, "store", json_integer((json_int_t)st->id));
    return 0;
}

static int op_change_store_addr(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    ctl_store_t *st = need_store(c, op, err);
    if (!st)
        return -1;
    if (st->down) {
        snprintf(err, ERRLEN, "store %" PRIu64 " is down", st->id);
        return -1;
    }
    char *old = tkc_strdup(sim_server_addr(st->srv));
    store_take_down(c, st);
    sim_server_set_addr(st->srv, "127.0.0.1:0");
    int rc = store_bring_up(c, st, err);
    if (rc == 0) {
        json_object_set_new(res, "store", json_integer((json_int_t)st->id));
        json_object_set_new(res, "old_addr", json_string(old));
        json_object_set_new(res, "addr", json_string(sim_server_addr(st->srv)));
    }
    tkc_free(old);
    return rc;
}

static int op_transfer_leader(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    int64_t region, store;
    if (need_int(op, "region", &region, err) || need_int(op, "store", &store, err))
        return -1;
    if (sim_model_transfer_leader(c->m, (uint64_t)region, (uint64_t)store) != 0) {
        snprintf(err, ERRLEN, "cannot move region %" PRId64 "'s leader to store %" PRId64
                 " (unknown region, or no peer there)", region, store);
        return -1;
    }
    json_object_set_new(res, "region", json_integer(region));
    json_object_set_new(res, "store", json_integer(store));
    return 0;
}

/* The middle key of the model's key set that lies inside region r, encoded. */
static int middle_key_locked(sim_control_t *c, const sim_region_t *r, sim_bytes_t *out)
{
    int64_t n = sim_model_key_count(c->m);
    uint8_t buf[SIM_KEY_MAX];
    /* Keys 1..n ascend in raw (hence encoded) order: binary search for the
     * first key >= start and the first key >= end. */
    int64_t bounds[2];
    for (int b = 0; b < 2; b++) {
        const sim_bytes_t *edge = b == 0 ? &r->start : &r->end;
        int64_t lo = 1, hi = n + 1;
        if (b == 1 && edge->len == 0) {
            bounds[b] = n + 1;
            continue;
        }
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            size_t len = sim_model_key_raw(c->m, mid, buf);
            sim_bytes_t enc = sim_key_encode(buf, len);
            int cmp = sim_bytes_cmp(enc.data, enc.len, edge->data, edge->len);
            sim_bytes_free(&enc);
            if (cmp < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        bounds[b] = lo;
    }
    if (bounds[1] - bounds[0] < 2)
        return -1;
    int64_t mid = bounds[0] + (bounds[1] - bounds[0]) / 2;
    size_t len = sim_model_key_raw(c->m, mid, buf);
    *out = sim_key_encode(buf, len);
    return 0;
}

static int op_split(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    int64_t region;
    const char *key_hex = NULL, *ekey_hex = NULL;
    if (need_int(op, "region", &region, err) || get_str(op, "key_hex", &key_hex, err) < 0 ||
        get_str(op, "ekey_hex", &ekey_hex, err) < 0)
        return -1;
    sim_bytes_t ekey = {NULL, 0};
    if (ekey_hex) {
        if (hex_decode(ekey_hex, &ekey) != 0) {
            snprintf(err, ERRLEN, "ekey_hex is not hex");
            return -1;
        }
    } else if (key_hex) {
        sim_bytes_t raw;
        if (hex_decode(key_hex, &raw) != 0) {
            snprintf(err, ERRLEN, "key_hex is not hex");
            return -1;
        }
        ekey = sim_key_encode(raw.data, raw.len);
        sim_bytes_free(&raw);
    } else {
        sim_model_lock(c->m);
        const sim_region_t *r = sim_model_region_by_id_locked(c->m, (uint64_t)region);
        int rc = r ? middle_key_locked(c, r, &ekey) : -1;
        sim_model_unlock(c->m);
        if (rc != 0) {
            snprintf(err, ERRLEN,
                     r ? "region %" PRId64 " holds fewer than 2 keys of the key set; give key_hex"
                       : "unknown region %" PRId64,
                     region);
            return -1;
        }
    }
    uint64_t new_id = 0;
    int rc = sim_model_split(c->m, (uint64_t)region, ekey.data, ekey.len, &new_id);
    if (rc != 0) {
        snprintf(err, ERRLEN, "cannot split region %" PRId64 " there (unknown region, or the key "
                 "is not strictly inside it)", region);
    } else {
        char *hex = hex_encode(ekey.data, ekey.len);
        json_object_set_new(res, "region", json_integer(region));
        json_object_set_new(res, "new_region", json_integer((json_int_t)new_id));
        json_object_set_new(res, "split_ekey_hex", json_string(hex));
        tkc_free(hex);
    }
    sim_bytes_free(&ekey);
    return rc == 0 ? 0 : -1;
}

static int op_merge(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    int64_t source, target;
    if (need_int(op, "source", &source, err) || need_int(op, "target", &target, err))
        return -1;
    if (sim_model_merge(c->m, (uint64_t)source, (uint64_t)target) != 0) {
        snprintf(err, ERRLEN, "cannot merge %" PRId64 " into %" PRId64 " (unknown or not adjacent)",
                 source, target);
        return -1;
    }
    json_object_set_new(res, "target", json_integer(target));
    return 0;
}

static int need_cdc(sim_control_t *c, char *err)
{
    if (!c->cdc) {
        snprintf(err, ERRLEN, "no CDC service in this simulator");
        return -1;
    }
    return 0;
}

/* Stores named by optional field "store" (absent = every store). */
static int stores_of(sim_control_t *c, json_t *op, ctl_store_t **out, size_t *n, char *err)
{
    int64_t id;
    int rc = get_int(op, "store", &id, err);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        for (size_t i = 0; i < c->n_stores; i++)
            out[i] = &c->stores[i];
        *n = c->n_stores;
        return 0;
    }
    out[0] = find_store(c, (uint64_t)id);
    if (!out[0]) {
        snprintf(err, ERRLEN, "unknown store %" PRId64, id);
        return -1;
    }
    *n = 1;
    return 0;
}

static int op_busy_or_congested(sim_control_t *c, json_t *op, json_t *res, char *err,
                                bool busy)
{
    int64_t region = 0, count = 1, backoff_ms = 0;
    size_t n;
    ctl_store_t **sts = tkc_calloc(c->n_stores + 1, sizeof(*sts));
    int rc = -1;
    if (need_cdc(c, err) || stores_of(c, op, sts, &n, err) ||
        get_int(op, "region", &region, err) < 0 || get_int(op, "count", &count, err) < 0 ||
        get_int(op, "backoff_ms", &backoff_ms, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (busy)
            sim_cdc_fault_busy(c->cdc, sts[i]->id, (uint64_t)region, (int)count,
                               (uint64_t)backoff_ms);
        else
            sim_cdc_fault_congested(c->cdc, sts[i]->id, (uint64_t)region, (int)count);
    }
    json_object_set_new(res, "stores", json_integer((json_int_t)n));
    rc = 0;
out:
    tkc_free(sts);
    return rc;
}

static int op_busy(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    return op_busy_or_congested(c, op, res, err, true);
}

static int op_congested(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    return op_busy_or_congested(c, op, res, err, false);
}

static int op_stall_resolved(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    int64_t region, ms;
    if (need_cdc(c, err) || need_int(op, "region", &region, err) || need_int(op, "ms", &ms, err))
        return -1;
    sim_cdc_fault_stall_resolved(c->cdc, (uint64_t)region, (int)ms);
    json_object_set_new(res, "region", json_integer(region));
    return 0;
}

static int op_end_streams(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    const char *status = "UNAVAILABLE";
    bool stall = false;
    size_t n;
    ctl_store_t **sts = tkc_calloc(c->n_stores + 1, sizeof(*sts));
    int rc = -1;
    if (need_cdc(c, err) || stores_of(c, op, sts, &n, err) ||
        get_str(op, "status", &status, err) < 0 || get_bool(op, "silent_stall", &stall, err) < 0)
        goto out;
    sim_cdc_end_mode_t mode;
    if (stall)
        mode = SIM_CDC_END_STALL;
    else if (strcasecmp(status, "OK") == 0)
        mode = SIM_CDC_END_OK;
    else if (strcasecmp(status, "UNKNOWN") == 0)
        mode = SIM_CDC_END_UNKNOWN;
    else if (strcasecmp(status, "UNAVAILABLE") == 0)
        mode = SIM_CDC_END_UNAVAILABLE;
    else {
        snprintf(err, ERRLEN, "status must be OK, UNKNOWN or UNAVAILABLE");
        goto out;
    }
    int ended = 0;
    for (size_t i = 0; i < n; i++)
        ended += sim_cdc_end_streams(c->cdc, sts[i]->id, mode);
    json_object_set_new(res, "streams", json_integer(ended));
    rc = 0;
out:
    tkc_free(sts);
    return rc;
}

static int need_pd(sim_control_t *c, char *err)
{
    if (!c->pd) {
        snprintf(err, ERRLEN, "no PD in this simulator");
        return -1;
    }
    return 0;
}

static int op_pd_lose_leader(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    int64_t ms = 0, calls = 0;
    if (need_pd(c, err) || get_int(op, "ms", &ms, err) < 0 ||
        get_int(op, "calls", &calls, err) < 0)
        return -1;
    if (ms <= 0 && calls <= 0) {
        snprintf(err, ERRLEN, "give ms and/or calls");
        return -1;
    }
    sim_pd_fault_lose_leader(c->pd, (int)ms, (int)calls);
    return 0;
}

static int op_pd_fail(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    const char *method = NULL, *details = NULL;
    int64_t count = 1;
    grpc_status_code st = GRPC_STATUS_UNAVAILABLE;
    if (need_pd(c, err) || get_str(op, "method", &method, err) < 0 ||
        get_int(op, "count", &count, err) < 0 || get_status(op, "status", &st, err) < 0 ||
        get_str(op, "details", &details, err) < 0)
        return -1;
    if (!method) {
        snprintf(err, ERRLEN, "field \"method\" is required");
        return -1;
    }
    if (sim_pd_fault_fail(c->pd, method, (int)count, st, details) != 0) {
        snprintf(err, ERRLEN, "unknown PD method \"%s\"", method);
        return -1;
    }
    return 0;
}

static int op_pd_break_tso(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    grpc_status_code st = GRPC_STATUS_UNAVAILABLE;
    if (need_pd(c, err) || get_status(op, "status", &st, err) < 0)
        return -1;
    json_object_set_new(res, "streams", json_integer(sim_pd_fault_break_tso(c->pd, st, NULL)));
    return 0;
}

static int op_pd_scan_hole(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    int64_t region, calls = 1;
    if (need_pd(c, err) || need_int(op, "region", &region, err) ||
        get_int(op, "calls", &calls, err) < 0)
        return -1;
    sim_pd_fault_scan_hole(c->pd, (uint64_t)region, (int)calls);
    return 0;
}

static int need_workload(sim_control_t *c, char *err)
{
    if (!c->w) {
        snprintf(err, ERRLEN, "no workload in this simulator");
        return -1;
    }
    return 0;
}

static int op_leave_lock(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    int64_t keys = 1;
    bool commit_primary = false;
    if (need_workload(c, err) || get_int(op, "keys", &keys, err) < 0 ||
        get_bool(op, "commit_primary", &commit_primary, err) < 0)
        return -1;
    uint64_t ts = sim_workload_leave_lock(c->w, (int)(keys > 0 ? keys : 1), commit_primary);
    if (ts == 0) {
        snprintf(err, ERRLEN, "no key could be locked");
        return -1;
    }
    json_object_set_new(res, "start_ts", json_integer((json_int_t)ts));
    return 0;
}

static int op_huge_txn(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    int64_t keys = 1000, value_size = 64;
    if (need_workload(c, err) || get_int(op, "keys", &keys, err) < 0 ||
        get_int(op, "value_size", &value_size, err) < 0)
        return -1;
    uint64_t ts = sim_workload_huge_txn(c->w, (int)keys, (int)value_size);
    if (ts == 0) {
        snprintf(err, ERRLEN, "the huge transaction could not commit");
        return -1;
    }
    json_object_set_new(res, "commit_ts", json_integer((json_int_t)ts));
    return 0;
}

static int op_pause_workload(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    if (need_workload(c, err))
        return -1;
    sim_workload_pause(c->w);
    return 0;
}

static int op_resume_workload(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    if (need_workload(c, err))
        return -1;
    sim_workload_resume(c->w);
    return 0;
}

static int op_set_rate(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    json_t *v = json_object_get(op, "rows_per_s");
    if (need_workload(c, err))
        return -1;
    if (!v || !(json_is_number(v) || json_is_string(v))) {
        snprintf(err, ERRLEN, "field \"rows_per_s\" is required (a number, or \"max\")");
        return -1;
    }
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "max") != 0) {
            snprintf(err, ERRLEN, "rows_per_s must be a number or \"max\"");
            return -1;
        }
        sim_workload_set_rate(c->w, 0);
        sim_workload_resume(c->w);
    } else if (json_number_value(v) <= 0) {
        /* 0 = stop drawing transactions (the workload's own 0 means "max") */
        sim_workload_pause(c->w);
    } else {
        sim_workload_set_rate(c->w, json_number_value(v));
        sim_workload_resume(c->w);
    }
    return 0;
}

static int op_gc_safepoint(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    int64_t ts = -1, ago_ms = -1, advance_ms = -1;
    bool force = false;
    if (get_int(op, "ts", &ts, err) < 0 || get_int(op, "ago_ms", &ago_ms, err) < 0 ||
        get_int(op, "advance_ms", &advance_ms, err) < 0 || get_bool(op, "force", &force, err) < 0)
        return -1;
    uint64_t target;
    uint64_t cur = sim_model_gc_safepoint(c->m);
    if (ts >= 0) {
        target = (uint64_t)ts;
    } else if (ago_ms >= 0) {
        uint64_t now = sim_model_tso(c->m);
        target = tkc_tso_compose(tkc_tso_physical_ms(now) - ago_ms, 0);
    } else if (advance_ms >= 0) {
        /* from the current safepoint, or from the simulator's start */
        uint64_t base = cur ? cur : tkc_tso_compose(tkc_clock_wall_ms() -
                                                        (now_ms() - c->start_ms), 0);
        target = tkc_tso_compose(tkc_tso_physical_ms(base) + advance_ms, 0);
        uint64_t now = sim_model_tso(c->m);
        if (target > now)
            target = now;
    } else {
        snprintf(err, ERRLEN, "give ts, ago_ms or advance_ms");
        return -1;
    }
    uint64_t got;
    if (force) {
        sim_model_set_gc_safepoint(c->m, target);
        got = sim_model_gc_safepoint(c->m);
    } else {
        /* like TiDB's GC worker: never beyond a live service safepoint */
        got = sim_model_gc_advance(c->m, target);
    }
    json_object_set_new(res, "target", json_integer((json_int_t)target));
    json_object_set_new(res, "gc_safepoint", json_integer((json_int_t)got));
    return 0;
}

static int op_inject_resolved(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    int64_t ts, request_id = 0;
    ctl_store_t *st;
    if (need_cdc(c, err) || !(st = need_store(c, op, err)) || need_int(op, "ts", &ts, err) ||
        get_int(op, "request_id", &request_id, err) < 0)
        return -1;
    json_t *regions = json_object_get(op, "regions");
    if (!json_is_array(regions)) {
        snprintf(err, ERRLEN, "field \"regions\" must be an array of region ids");
        return -1;
    }
    size_t n = json_array_size(regions);
    uint64_t *ids = tkc_calloc(n + 1, sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = (uint64_t)json_integer_value(json_array_get(regions, i));
    int calls = sim_cdc_inject_resolved(c->cdc, st->id, ids, n, (uint64_t)ts,
                                        (uint64_t)request_id);
    tkc_free(ids);
    json_object_set_new(res, "streams", json_integer(calls));
    return 0;
}

static int op_inject_row(sim_control_t *c, json_t *op, json_t *res, char *err)
{
    int64_t region, type, row_op = 0, start_ts = 0, commit_ts = 0,
                              request_id = (int64_t)-1;
    const char *key_hex = "", *value_hex = "", *old_hex = "";
    ctl_store_t *st;
    if (need_cdc(c, err) || !(st = need_store(c, op, err)) ||
        need_int(op, "region", &region, err) || need_int(op, "type", &type, err) ||
        get_int(op, "op_type", &row_op, err) < 0 || get_int(op, "start_ts", &start_ts, err) < 0 ||
        get_int(op, "commit_ts", &commit_ts, err) < 0 ||
        get_int(op, "request_id", &request_id, err) < 0 ||
        get_str(op, "key_hex", &key_hex, err) < 0 ||
        get_str(op, "value_hex", &value_hex, err) < 0 ||
        get_str(op, "old_value_hex", &old_hex, err) < 0)
        return -1;
    sim_bytes_t key, value, old;
    if (hex_decode(key_hex, &key) != 0) {
        snprintf(err, ERRLEN, "key_hex is not hex");
        return -1;
    }
    if (hex_decode(value_hex, &value) != 0) {
        sim_bytes_free(&key);
        snprintf(err, ERRLEN, "value_hex is not hex");
        return -1;
    }
    if (hex_decode(old_hex, &old) != 0) {
        sim_bytes_free(&key);
        sim_bytes_free(&value);
        snprintf(err, ERRLEN, "old_value_hex is not hex");
        return -1;
    }
    sim_cdc_row_t row = {
        .type = (int)type, .op = (int)row_op,
        .key = key.data, .key_len = key.len,
        .value = value.data, .value_len = value.len,
        .old_value = old.data, .old_value_len = old.len,
        .start_ts = (uint64_t)start_ts, .commit_ts = (uint64_t)commit_ts,
    };
    uint64_t rid = request_id < 0 ? SIM_CDC_REQ_CURRENT : (uint64_t)request_id;
    int n = sim_cdc_inject_row(c->cdc, st->id, (uint64_t)region, rid, &row);
    sim_bytes_free(&key);
    sim_bytes_free(&value);
    sim_bytes_free(&old);
    json_object_set_new(res, "events", json_integer(n));
    return 0;
}

static const struct {
    const char *name;
    op_fn fn;
    bool serialized;
} op_table[] = {
    {"restart_store", op_restart_store, true},
    {"kill_store", op_kill_store, true},
    {"change_store_addr", op_change_store_addr, true},
    {"transfer_leader", op_transfer_leader, true},
    {"split", op_split, true},
    {"merge", op_merge, true},
    {"busy", op_busy, true},
    {"congested", op_congested, true},
    {"stall_resolved", op_stall_resolved, true},
    {"end_streams", op_end_streams, true},
    {"pd_lose_leader", op_pd_lose_leader, true},
    {"pd_fail", op_pd_fail, true},
    {"pd_break_tso", op_pd_break_tso, true},
    {"pd_scan_hole", op_pd_scan_hole, true},
    {"leave_lock", op_leave_lock, true},
    {"gc_safepoint", op_gc_safepoint, true},
    {"huge_txn", op_huge_txn, false},
    {"pause_workload", op_pause_workload, true},
    {"resume_workload", op_resume_workload, true},
    {"set_rate", op_set_rate, true},
    {"inject_resolved", op_inject_resolved, true},
    {"inject_row", op_inject_row, true},
};

int sim_control_exec(sim_control_t *c, json_t *op, json_t **result)
{
    char err[ERRLEN] = "";
    json_t *res = json_object();
    int rc = -1;
    const char *name = json_is_object(op) ? json_string_value(json_object_get(op, "op")) : NULL;
    if (!name) {
        snprintf(err, sizeof(err), "expected a JSON object with a string field \"op\"");
    } else {
        size_t i;
        for (i = 0; i < sizeof(op_table) / sizeof(op_table[0]); i++)
            if (strcmp(op_table[i].name, name) == 0)
                break;
        if (i == sizeof(op_table) / sizeof(op_table[0])) {
            snprintf(err, sizeof(err), "unknown op \"%s\"", name);
        } else {
            if (op_table[i].serialized)
                pthread_mutex_lock(&c->op_mu);
            rc = op_table[i].fn(c, op, res, err);
            if (op_table[i].serialized)
                pthread_mutex_unlock(&c->op_mu);
        }
    }
    if (rc == 0) {
        json_object_set_new(res, "ok", json_true());
        atomic_fetch_add(&c->ops_ok, 1);
        tkc_log(TKC_LOG_INFO, "sim_control", "event=op op=%s", name);
    } else {
        json_decref(res);
        res = json_pack("{s:b, s:s}", "ok", 0, "error", err[0] ? err : "failed");
        atomic_fetch_add(&c->ops_failed, 1);
        tkc_log(TKC_LOG_WARN, "sim_control", "event=op_failed op=%s error=\"%s\"",
                name ? name : "?", err);
    }
    *result = res;
    return rc;
}

int sim_control_exec_str(sim_control_t *c, const char *json_text, json_t **result)
{
    json_error_t jerr;
    json_t *op = json_loads(json_text, 0, &jerr);
    if (!op) {
        char msg[ERRLEN];
        snprintf(msg, sizeof(msg), "invalid JSON: %s", jerr.text);
        *result = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
        atomic_fetch_add(&c->ops_failed, 1);
        return -1;
    }
    int rc = sim_control_exec(c, op, result);
    json_decref(op);
    return rc;
}

/* ===== scenario ===== */

static void step_scenario_op(sim_control_t *c, void *arg)
{
    json_t *op = arg;
    json_t *res = NULL;
    if (sim_control_exec(c, op, &res) == 0)
        atomic_fetch_add(&c->scenario_ok, 1);
    else
        atomic_fetch_add(&c->scenario_failed, 1);
    json_decref(res);
}

static void json_free_arg(void *arg)
{
    json_decref(arg);
}

int sim_control_run_scenario(sim_control_t *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* parse everything first: a bad line schedules nothing */
    json_t *ops = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *p = line;
        while (*p && isspace((unsigned char)*p))
            p++;
        if (*p == 0 || *p == '#')
            continue;
        json_error_t jerr;
        json_t *op = json_loads(p, 0, &jerr);
        json_t *at = op ? json_object_get(op, "at_ms") : NULL;
        if (!op || !json_is_object(op) || !json_is_integer(at) || json_integer_value(at) < 0 ||
            !json_is_string(json_object_get(op, "op"))) {
            snprintf(err, errlen, "%s:%d: expected {\"at_ms\": N >= 0, \"op\": \"...\", ...}%s%s",
                     path, lineno, op ? "" : ": ", op ? "" : jerr.text);
            json_decref(op);
            rc = -1;
            break;
        }
        json_array_append_new(ops, op);
    }
    free(line); /* getline's buffer comes from libc malloc */
    fclose(f);
    if (rc == 0) {
        size_t i;
        json_t *op;
        json_array_foreach(ops, i, op) {
            json_incref(op);
            sched_add(c, json_integer_value(json_object_get(op, "at_ms")), step_scenario_op, op,
                      json_free_arg);
        }
        rc = (int)json_array_size(ops);
    }
    json_decref(ops);
    return rc;
}

/* ===== stats and listings ===== */

static const char *store_state_name(const ctl_store_t *st)
{
    return st->killed ? "killed" : st->down ? "down" : "up";
}

json_t *sim_control_stats(sim_control_t *c)
{
    json_t *cdc_stats = c->cdc ? sim_cdc_stats_json(c->cdc) : NULL;
    json_t *cdc_stores = cdc_stats ? json_object_get(cdc_stats, "stores") : NULL;
    json_t *stores = json_array();
    pthread_mutex_lock(&c->op_mu);
    for (size_t i = 0; i < c->n_stores; i++) {
        ctl_store_t *st = &c->stores[i];
        json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:I, s:I}", "store_id", (json_int_t)st->id,
                              "addr", sim_server_addr(st->srv), "state", store_state_name(st),
                              "calls_opened", (json_int_t)sim_server_calls_opened(st->srv),
                              "calls_closed", (json_int_t)sim_server_calls_closed(st->srv),
                              "restarts", (json_int_t)st->restarts);
        size_t k;
        json_t *cs;
        json_array_foreach(cdc_stores, k, cs) {
            json_t *id = json_object_get(cs, "store_id");
            if (json_is_integer(id) && (uint64_t)json_integer_value(id) == st->id)
                json_object_update_missing(o, cs);
        }
        if (st->lockrpc)
            json_object_set_new(o, "lockrpc", sim_lockrpc_stats_json(st->lockrpc));
        json_array_append_new(stores, o);
    }
    pthread_mutex_unlock(&c->op_mu);
    json_decref(cdc_stats);

    sim_model_stats_t ms;
    sim_model_stats(c->m, &ms);
    json_t *out = json_pack(
        "{s:I, s:I, s:I, s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, "
        "s:I}}",
        "cluster_id", (json_int_t)sim_model_cluster_id(c->m), "uptime_ms",
        (json_int_t)(now_ms() - c->start_ms), "tso", (json_int_t)sim_model_tso(c->m),
        "gc_safepoint", (json_int_t)sim_model_gc_safepoint(c->m), "stores", stores, "model",
        "keys", (json_int_t)ms.keys, "versions", (json_int_t)ms.versions, "locks",
        (json_int_t)ms.locks, "value_bytes", (json_int_t)ms.value_bytes, "txns_tracked",
        (json_int_t)ms.txns_tracked, "regions", (json_int_t)ms.regions, "commits",
        (json_int_t)ms.commits, "control", "ops", (json_int_t)atomic_load(&c->ops_ok),
        "ops_failed", (json_int_t)atomic_load(&c->ops_failed), "scenario_ops",
        (json_int_t)atomic_load(&c->scenario_ok), "scenario_failed",
        (json_int_t)atomic_load(&c->scenario_failed), "http_requests",
        (json_int_t)atomic_load(&c->http_requests));
    if (c->pd)
        json_object_set_new(out, "pd", sim_pd_stats_json(c->pd));
    if (c->w) {
        sim_workload_stats_t ws;
        sim_workload_stats(c->w, &ws);
        json_object_set_new(
            out, "workload",
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                      "txns_drawn", (json_int_t)ws.txns_drawn, "txns_committed",
                      (json_int_t)ws.txns_committed, "txns_1pc", (json_int_t)ws.txns_1pc,
                      "txns_long", (json_int_t)ws.txns_long, "txns_rolled_back",
                      (json_int_t)ws.txns_rolled_back, "rows_committed",
                      (json_int_t)ws.rows_committed, "rows_rolled_back",
                      (json_int_t)ws.rows_rolled_back, "conflicts", (json_int_t)ws.conflicts,
                      "locks_lost", (json_int_t)ws.locks_lost, "huge_txns",
                      (json_int_t)ws.huge_txns, "huge_rows", (json_int_t)ws.huge_rows,
                      "locks_left", (json_int_t)ws.locks_left, "in_flight",
                      (json_int_t)ws.in_flight));
    }
    return out;
}

static json_t *regions_json(sim_control_t *c, size_t start, size_t limit)
{
    json_t *arr = json_array();
    sim_model_lock(c->m);
    size_t total = sim_model_region_count_locked(c->m);
    for (size_t i = start; i < total && i - start < limit; i++) {
        const sim_region_t *r = sim_model_region_at_locked(c->m, i);
        char *s = hex_encode(r->start.data, r->start.len);
        char *e = hex_encode(r->end.data, r->end.len);
        json_t *peers = json_array();
        for (int p = 0; p < SIM_PEERS; p++)
            json_array_append_new(peers, json_pack("{s:I, s:I}", "id", (json_int_t)r->peers[p].id,
                                                   "store_id",
                                                   (json_int_t)r->peers[p].store_id));
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:o}", "id", (json_int_t)r->id,
                           "start", s, "end", e, "conf_ver", (json_int_t)r->conf_ver, "version",
                           (json_int_t)r->version, "leader_store",
                           (json_int_t)sim_region_leader_store(r), "peers", peers));
        tkc_free(s);
        tkc_free(e);
    }
    sim_model_unlock(c->m);
    return json_pack("{s:I, s:I, s:o}", "count", (json_int_t)total, "start", (json_int_t)start,
                     "regions", arr);
}

static json_t *stores_json(sim_control_t *c)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&c->op_mu);
    for (size_t i = 0; i < c->n_stores; i++)
        json_array_append_new(arr, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)c->stores[i].id,
                                             "addr", sim_server_addr(c->stores[i].srv), "state",
                                             store_state_name(&c->stores[i])));
    pthread_mutex_unlock(&c->op_mu);
    return json_pack("{s:o}", "stores", arr);
}

/* ===== HTTP ===== */

typedef struct {
    char *body;
    size_t len;
    bool too_big;
} http_req_t;

static enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned int code, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    size_t n = strlen(text);
    /* newline-terminated, so shell tools print it nicely */
    char *body = tkc_malloc(n + 2);
    memcpy(body, text, n);
    body[n] = '\n';
    body[n + 1] = 0;
    free(text); /* jansson allocates with libc malloc */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(n + 1, body, MHD_RESPMEM_MUST_COPY);
    tkc_free(body);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    sim_control_t *c = cls;
    if (*con_cls == NULL) {
        *con_cls = tkc_calloc(1, sizeof(http_req_t));
        return MHD_YES;
    }
    http_req_t *rq = *con_cls;
    if (*upload_data_size > 0) {
        if (rq->len + *upload_data_size > CONTROL_MAX_BODY) {
            rq->too_big = true;
        } else {
            rq->body = tkc_realloc(rq->body, rq->len + *upload_data_size + 1);
            memcpy(rq->body + rq->len, upload_data, *upload_data_size);
            rq->len += *upload_data_size;
            rq->body[rq->len] = 0;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&c->http_requests, 1);
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (get && strcmp(url, "/healthz") == 0)
        return reply_json(conn, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1));
    if (get && strcmp(url, "/stats") == 0)
        return reply_json(conn, MHD_HTTP_OK, sim_control_stats(c));
    if (get && strcmp(url, "/stores") == 0)
        return reply_json(conn, MHD_HTTP_OK, stores_json(c));
    if (get && strcmp(url, "/regions") == 0) {
        const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "start");
        const char *l = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
        size_t start = s ? strtoull(s, NULL, 10) : 0;
        size_t limit = l ? strtoull(l, NULL, 10) : SIZE_MAX;
        return reply_json(conn, MHD_HTTP_OK, regions_json(c, start, limit));
    }
    if (post && strcmp(url, "/fault") == 0) {
        if (rq->too_big)
            return reply_json(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                              json_pack("{s:b, s:s}", "ok", 0, "error", "body too large"));
        json_t *res = NULL;
        int rc = sim_control_exec_str(c, rq->body ? rq->body : "", &res);
        return reply_json(conn, rc == 0 ? MHD_HTTP_OK : MHD_HTTP_BAD_REQUEST, res);
    }
    return reply_json(conn, MHD_HTTP_NOT_FOUND,
                      json_pack("{s:b, s:s}", "ok", 0, "error",
                                "routes: POST /fault, GET /stats /regions /stores /healthz"));
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    http_req_t *rq = *con_cls;
    if (rq) {
        tkc_free(rq->body);
        tkc_free(rq);
        *con_cls = NULL;
    }
}

int sim_control_start_http(sim_control_t *c, int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                  MHD_USE_ERROR_LOG,
                              (uint16_t)port, NULL, NULL, http_handler, c, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
                              http_completed, c, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
                              MHD_OPTION_END);
    if (!c->mhd) {
        tkc_log(TKC_LOG_ERROR, "sim_control", "event=http_failed port=%d", port);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(c->mhd, MHD_DAEMON_INFO_BIND_PORT);
    c->port = info ? info->port : port;
    tkc_log(TKC_LOG_INFO, "sim_control", "event=http_started addr=127.0.0.1:%d", c->port);
    return c->port;
}

int sim_control_port(const sim_control_t *c)
{
    return c->port;
}

/* ===== lifecycle ===== */

sim_control_t *sim_control_new(const sim_cluster_t *cl)
{
    sim_control_t *c = tkc_calloc(1, sizeof(*c));
    c->m = cl->model;
    c->w = cl->workload;
    c->cdc = cl->cdc;
    c->pd = cl->pd;
    c->n_stores = cl->n_stores;
    c->stores = tkc_calloc(cl->n_stores + 1, sizeof(*c->stores));
    for (size_t i = 0; i < cl->n_stores; i++) {
        c->stores[i].id = cl->store_ids[i];
        c->stores[i].srv = cl->store_servers[i];
        c->stores[i].lockrpc = cl->lockrpcs ? cl->lockrpcs[i] : NULL;
        c->stores[i].down = !sim_server_running(cl->store_servers[i]);
    }
    c->start_ms = now_ms();
    pthread_mutex_init(&c->op_mu, NULL);
    pthread_mutex_init(&c->sched_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->sched_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&c->sched_thread, NULL, sched_main, c) != 0)
        abort();
    return c;
}

void sim_control_destroy(sim_control_t *c)
{
    if (!c)
        return;
    if (c->mhd)
        MHD_stop_daemon(c->mhd);
    pthread_mutex_lock(&c->sched_mu);
    c->sched_stop = true;
    pthread_cond_signal(&c->sched_cv);
    pthread_mutex_unlock(&c->sched_mu);
    pthread_join(c->sched_thread, NULL);
    while (c->sched) {
        sched_item_t *it = c->sched;
        c->sched = it->next;
        sched_free_item(it);
    }
    pthread_cond_destroy(&c->sched_cv);
    pthread_mutex_destroy(&c->sched_mu);
    pthread_mutex_destroy(&c->op_mu);
    tkc_free(c->stores);
    tkc_free(c);
}
