/*
 * sim_cdc_bench.c: throughput of tikv-sim's ChangeData service (issue 3 §9).
 *
 *   sim-cdc-bench events   [--seconds S] [--stores N] [--regions R] [--batch B]
 *                          [--value BYTES] [--keys K]
 *   sim-cdc-bench register [--stores N] [--regions R] [--seconds S]
 *
 * "events": a generator thread writes 2PC transactions of B keys (B PREWRITE
 * + B COMMIT rows each) into the model as fast as it can; one client thread
 * per store holds one EventFeed call with every region led there registered
 * and only receives and decodes (protobuf-c unpack, count rows, free). The
 * rate is rows decoded by the clients per second, measured after a warm-up.
 *
 * "register": R regions (up to 100k) on N stores; one V2 multiplexing call
 * per store registers every region led there as fast as gRPC takes the
 * requests (retrying server_is_busy), and the rate is registrations per
 * second until every INITIALIZED has arrived. It then watches S seconds of
 * resolved-ts rounds and reports how many (region, ts) pairs arrived per
 * second, which shows whether rounds over all regions keep up.
 *
 * Everything runs in this one process on loopback, sharing the machine's
 * cores: generator, model, store servers and clients. Results are one JSON
 * line on stdout. No thresholds: this measures, it does not judge.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc.h>

#include "sim_cdc.h"
#include "sim_model.h"
#include "sim_server.h"
#include "sim_testclient.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define MAX_STORES 8

typedef struct {
    const char *mode;
    int seconds, stores, regions, batch, value;
    int64_t keys;
} opts_t;

typedef struct {
    sim_model_t *m;
    sim_cdc_t *cdc;
    sim_server_t *srv[MAX_STORES];
    char addr[MAX_STORES][64];
    int nstores;
} bench_t;

static void bench_up(bench_t *b, const opts_t *o, int resolved_ms)
{
    memset(b, 0, sizeof(*b));
    sim_model_config_t mc = {.stores = o->stores, .regions = o->regions, .seed = 1,
                             .table_id = 100, .key_count = o->keys, .store_version = "8.5.0"};
    b->m = sim_model_new(&mc);
    if (!b->m) {
        fprintf(stderr, "bad model config\n");
        exit(2);
    }
    sim_cdc_config_t cc;
    sim_cdc_config_defaults(&cc);
    cc.resolved_interval_ms = resolved_ms;
    b->cdc = sim_cdc_new(b->m, &cc);
    b->nstores = o->stores;
    for (int i = 0; i < o->stores; i++) {
        b->srv[i] = sim_server_new("store", "127.0.0.1:0");
        sim_cdc_attach_store(b->cdc, (uint64_t)i + 1, b->srv[i]);
        snprintf(b->addr[i], sizeof(b->addr[i]), "127.0.0.1:%d", sim_server_start(b->srv[i]));
    }
}

static void bench_down(bench_t *b)
{
    for (int i = 0; i < b->nstores; i++)
        sim_server_stop(b->srv[i]);
    for (int i = 0; i < b->nstores; i++)
        sim_server_destroy(b->srv[i]);
    sim_cdc_destroy(b->cdc);
    sim_model_destroy(b->m);
}

typedef struct {
    uint64_t id, conf_ver, version;
    uint8_t start[48], end[48];
    size_t sl, el;
    uint64_t leader;
} reg_t;

static reg_t *regions_of(bench_t *b, size_t *n)
{
    sim_model_lock(b->m);
    *n = sim_model_region_count_locked(b->m);
    reg_t *r = tkc_calloc(*n, sizeof(*r));
    for (size_t i = 0; i < *n; i++) {
        const sim_region_t *x = sim_model_region_at_locked(b->m, i);
        r[i].id = x->id;
        r[i].conf_ver = x->conf_ver;
        r[i].version = x->version;
        r[i].leader = sim_region_leader_store(x);
        if (x->start.len)
            memcpy(r[i].start, x->start.data, x->start.len);
        r[i].sl = x->start.len;
        if (x->end.len)
            memcpy(r[i].end, x->end.data, x->end.len);
        r[i].el = x->end.len;
    }
    sim_model_unlock(b->m);
    return r;
}

static int send_reg(sim_tc_stream_t *s, uint64_t cluster, const reg_t *r, uint64_t cp,
                    uint64_t req)
{
    sim_tc_reg_t reg = {.cluster_id = cluster, .region_id = r->id, .conf_ver = r->conf_ver,
                        .version_epoch = r->version, .checkpoint_ts = cp, .start_key = r->start,
                        .start_len = r->sl, .end_key = r->end, .end_len = r->el,
                        .request_id = req};
    return sim_tc_register(s, &reg);
}

/* ===== events ===== */

typedef struct {
    bench_t *b;
    const opts_t *o;
    atomic_bool stop;
    uint64_t rows_written;
    uint64_t failed;
} gen_t;

static void *generator(void *arg)
{
    gen_t *g = arg;
    int B = g->o->batch;
    sim_mutation_t *mu = tkc_calloc((size_t)B, sizeof(*mu));
    sim_bytes_t *kb = tkc_calloc((size_t)B, sizeof(*kb));
    uint8_t(*keys)[SIM_KEY_MAX] = tkc_calloc((size_t)B, SIM_KEY_MAX);
    uint8_t *val = tkc_malloc((size_t)g->o->value + 1);
    memset(val, 'v', (size_t)g->o->value);
    uint64_t x = 88172645463325252ull;
    while (!atomic_load_explicit(&g->stop, memory_order_relaxed)) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t first = 1 + (int64_t)(x % (uint64_t)(g->o->keys - B));
        for (int i = 0; i < B; i++) {
            size_t kl = sim_model_key_raw(g->b->m, first + i, keys[i]);
            mu[i] = (sim_mutation_t){.key = keys[i], .key_len = kl, .op = SIM_OP_PUT,
                                     .value = val, .value_len = (size_t)g->o->value};
            kb[i] = (sim_bytes_t){.data = keys[i], .len = kl};
        }
        uint64_t st = sim_model_tso(g->b->m);
        sim_prewrite_rc_t prc = sim_model_prewrite_ex(g->b->m, st, mu, (size_t)B, keys[0],
                                                      mu[0].key_len, SIM_LOCK_TTL_DEFAULT_MS,
                                                      NULL, NULL);
        if (prc != SIM_PREWRITE_OK) {
            g->failed++;
            if (g->failed < 5)
                fprintf(stderr, "prewrite failed: %d\n", (int)prc);
            continue;
        }
        sim_model_commit(g->b->m, st, kb, (size_t)B);
        g->rows_written += 2 * (uint64_t)B;
    }
    tkc_free(mu);
    tkc_free(kb);
    tkc_free(keys);
    tkc_free(val);
    return NULL;
}

typedef struct {
    bench_t *b;
    int store;
    reg_t *regs;
    size_t nregs;
    atomic_bool stop;
    atomic_uint_fast64_t rows, msgs, bytes;
    atomic_bool ready;
} client_t;

static void *client(void *arg)
{
    client_t *c = arg;
    sim_tc_t *tc = sim_tc_new(c->b->addr[c->store]);
    sim_tc_stream_t *s = sim_tc_open(tc, false, NULL);
    uint64_t cluster = sim_model_cluster_id(c->b->m);
    uint64_t cp = sim_model_tso(c->b->m);
    size_t mine = 0;
    for (size_t i = 0; i < c->nregs; i++)
        if (c->regs[i].leader == (uint64_t)c->store + 1) {
            send_reg(s, cluster, &c->regs[i], cp, i + 1);
            mine++;
        }
    size_t inits = 0;
    while (!atomic_load(&c->stop)) {
        const uint8_t *d;
        size_t len;
        int rc = sim_tc_recv_raw(s, 100, &d, &len);
        if (rc < 0)
            break;
        if (rc == 0)
            continue;
        Cdcpb__ChangeDataEvent *ev = cdcpb__change_data_event__unpack(NULL, len, d);
        if (!ev) {
            fprintf(stderr, "undecodable message\n");
            exit(1);
        }
        uint64_t rows = 0;
        for (size_t i = 0; i < ev->n_events; i++)
            if (ev->events[i]->event_case == CDCPB__EVENT__EVENT_ENTRIES) {
                rows += ev->events[i]->entries->n_entries;
                for (size_t j = 0; j < ev->events[i]->entries->n_entries; j++)
                    if (ev->events[i]->entries->entries[j]->type ==
                        CDCPB__EVENT__LOG_TYPE__INITIALIZED)
                        inits++;
            }
        if (inits == mine)
            atomic_store(&c->ready, true);
        atomic_fetch_add(&c->rows, rows);
        atomic_fetch_add(&c->msgs, 1);
        atomic_fetch_add(&c->bytes, len);
        cdcpb__change_data_event__free_unpacked(ev, NULL);
    }
    sim_tc_stream_destroy(s);
    sim_tc_destroy(tc);
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run_events(const opts_t *o)
{
    bench_t b;
    bench_up(&b, o, 1000);
    size_t nregs;
    reg_t *regs = regions_of(&b, &nregs);
    client_t cl[MAX_STORES];
    pthread_t ct[MAX_STORES];
    for (int i = 0; i < o->stores; i++) {
        memset(&cl[i], 0, sizeof(cl[i]));
        cl[i].b = &b;
        cl[i].store = i;
        cl[i].regs = regs;
        cl[i].nregs = nregs;
        pthread_create(&ct[i], NULL, client, &cl[i]);
    }
    for (int i = 0; i < o->stores; i++)
        while (!atomic_load(&cl[i].ready))
            sleep_ms(10);
    gen_t g = {.b = &b, .o = o};
    atomic_init(&g.stop, false);
    pthread_t gt;
    pthread_create(&gt, NULL, generator, &g);
    sleep_ms(1000); /* warm-up */
    uint64_t r0 = 0, m0 = 0, y0 = 0;
    for (int i = 0; i < o->stores; i++) {
        r0 += atomic_load(&cl[i].rows);
        m0 += atomic_load(&cl[i].msgs);
        y0 += atomic_load(&cl[i].bytes);
    }
    uint64_t w0 = g.rows_written;
    int64_t t0 = tkc_clock_mono_ms();
    double c0 = cpu_s();
    sleep_ms(o->seconds * 1000);
    uint64_t r1 = 0, m1 = 0, y1 = 0;
    for (int i = 0; i < o->stores; i++) {
        r1 += atomic_load(&cl[i].rows);
        m1 += atomic_load(&cl[i].msgs);
        y1 += atomic_load(&cl[i].bytes);
    }
    uint64_t w1 = g.rows_written;
    double secs = (double)(tkc_clock_mono_ms() - t0) / 1000.0;
    double cpu = cpu_s() - c0;
    atomic_store(&g.stop, true);
    pthread_join(gt, NULL);
    for (int i = 0; i < o->stores; i++) {
        atomic_store(&cl[i].stop, true);
        pthread_join(ct[i], NULL);
    }
    printf("{\"mode\":\"events\",\"stores\":%d,\"regions\":%d,\"batch\":%d,\"value\":%d,"
           "\"seconds\":%.2f,\"rows_per_s\":%.0f,\"rows_written_per_s\":%.0f,"
           "\"msgs_per_s\":%.0f,\"mb_per_s\":%.1f,\"cpu_cores_used\":%.2f}\n",
           o->stores, o->regions, o->batch, o->value, secs, (double)(r1 - r0) / secs,
           (double)(w1 - w0) / secs, (double)(m1 - m0) / secs,
           (double)(y1 - y0) / secs / 1e6, cpu / secs);
    tkc_free(regs);
    bench_down(&b);
}

/* ===== registrations ===== */

typedef struct {
    bench_t *b;
    int store;
    reg_t *regs;
    size_t nregs;
    size_t mine, inits, busy;
    uint64_t rts_pairs, rts_msgs;
    int64_t t_start, t_sent, t_done;
    int watch_s;
} reg_client_t;

static void *reg_client(void *arg)
{
    reg_client_t *c = arg;
    sim_tc_t *tc = sim_tc_new(c->b->addr[c->store]);
    sim_tc_stream_t *s = sim_tc_open(tc, true, "stream-multiplexing");
    uint64_t cluster = sim_model_cluster_id(c->b->m);
    uint64_t cp = sim_model_tso(c->b->m);
    size_t *todo = tkc_malloc(c->nregs * sizeof(size_t));
    size_t ntodo = 0, next = 0;
    for (size_t i = 0; i < c->nregs; i++)
        if (c->regs[i].leader == (uint64_t)c->store + 1)
            todo[ntodo++] = i;
    c->mine = ntodo;
    c->t_start = tkc_clock_mono_ms();
    while (c->inits < c->mine) {
        /* send a burst, then drain what arrived */
        for (int k = 0; k < 256 && next < ntodo; k++, next++)
            send_reg(s, cluster, &c->regs[todo[next]], cp, 1);
        if (next == ntodo && c->t_sent == 0)
            c->t_sent = tkc_clock_mono_ms();
        for (;;) {
            const uint8_t *d;
            size_t len;
            int rc = sim_tc_recv_raw(s, next < ntodo ? 0 : 1000, &d, &len);
            if (rc != 1)
                break;
            Cdcpb__ChangeDataEvent *ev = cdcpb__change_data_event__unpack(NULL, len, d);
            for (size_t i = 0; ev && i < ev->n_events; i++) {
                const Cdcpb__Event *e = ev->events[i];
                if (e->event_case == CDCPB__EVENT__EVENT_ENTRIES) {
                    for (size_t j = 0; j < e->entries->n_entries; j++)
                        c->inits += e->entries->entries[j]->type ==
                                    CDCPB__EVENT__LOG_TYPE__INITIALIZED;
                } else if (e->event_case == CDCPB__EVENT__EVENT_ERROR) {
                    /* busy: queue it again (TiCDC retries the same region) */
                    for (size_t k = 0; k < c->nregs; k++)
                        if (c->regs[k].id == e->region_id) {
                            if (next > 0)
                                todo[--next] = k;
                            break;
                        }
                    c->busy++;
                }
            }
            if (ev)
                cdcpb__change_data_event__free_unpacked(ev, NULL);
            if (next < ntodo || c->inits >= c->mine)
                break;
        }
    }
    c->t_done = tkc_clock_mono_ms();
    if (getenv("BENCH_DEBUG"))
        fprintf(stderr, "store %d: sent all at +%lld ms, done at +%lld ms\n", c->store,
                (long long)(c->t_sent - c->t_start), (long long)(c->t_done - c->t_start));
    /* watch resolved-ts rounds over every region */
    int64_t end = c->t_done + (int64_t)c->watch_s * 1000;
    while (tkc_clock_mono_ms() < end) {
        Cdcpb__ChangeDataEvent *ev = sim_tc_recv(s, 100);
        if (!ev)
            continue;
        if (ev->resolved_ts) {
            c->rts_pairs += ev->resolved_ts->n_regions;
            c->rts_msgs++;
        }
        cdcpb__change_data_event__free_unpacked(ev, NULL);
    }
    tkc_free(todo);
    sim_tc_stream_destroy(s);
    sim_tc_destroy(tc);
    return NULL;
}

static void run_register(const opts_t *o)
{
    bench_t b;
    bench_up(&b, o, 1000);
    size_t nregs;
    reg_t *regs = regions_of(&b, &nregs);
    reg_client_t cl[MAX_STORES];
    pthread_t ct[MAX_STORES];
    int64_t t0 = tkc_clock_mono_ms();
    for (int i = 0; i < o->stores; i++) {
        memset(&cl[i], 0, sizeof(cl[i]));
        cl[i].b = &b;
        cl[i].store = i;
        cl[i].regs = regs;
        cl[i].nregs = nregs;
        cl[i].watch_s = o->seconds;
        pthread_create(&ct[i], NULL, reg_client, &cl[i]);
    }
    size_t total = 0, busy = 0;
    int64_t t_done = t0;
    uint64_t pairs = 0, msgs = 0;
    for (int i = 0; i < o->stores; i++) {
        pthread_join(ct[i], NULL);
        total += cl[i].inits;
        busy += cl[i].busy;
        if (cl[i].t_done > t_done)
            t_done = cl[i].t_done;
        pairs += cl[i].rts_pairs;
        msgs += cl[i].rts_msgs;
    }
    double secs = (double)(t_done - t0) / 1000.0;
    uint64_t round_max = 0, round_last = 0;
    for (int i = 0; i < o->stores; i++) {
        sim_cdc_stats_t st;
        sim_cdc_stats_get(b.cdc, (uint64_t)i + 1, &st);
        if (st.resolved_round_us_max > round_max)
            round_max = st.resolved_round_us_max;
        if (st.resolved_round_us_last > round_last)
            round_last = st.resolved_round_us_last;
    }
    printf("{\"mode\":\"register\",\"stores\":%d,\"regions\":%zu,\"registered\":%zu,"
           "\"busy_retries\":%zu,\"seconds\":%.2f,\"registrations_per_s\":%.0f,"
           "\"resolved_pairs_per_s\":%.0f,\"resolved_msgs_per_s\":%.1f,"
           "\"resolved_round_ms_last\":%.1f,\"resolved_round_ms_max\":%.1f}\n",
           o->stores, nregs, total, busy, secs, (double)total / secs,
           (double)pairs / o->seconds, (double)msgs / o->seconds, (double)round_last / 1000.0,
           (double)round_max / 1000.0);
    tkc_free(regs);
    bench_down(&b);
}

int main(int argc, char **argv)
{
    opts_t o = {.seconds = 5, .stores = 1, .regions = 64, .batch = 64, .value = 64,
                .keys = 100000};
    if (argc < 2 || (strcmp(argv[1], "events") != 0 && strcmp(argv[1], "register") != 0)) {
        fprintf(stderr, "usage: %s events|register [--seconds S] [--stores N] [--regions R] "
                        "[--batch B] [--value BYTES] [--keys K]\n", argv[0]);
        return 2;
    }
    o.mode = argv[1];
    static const struct option lo[] = {
        {"seconds", required_argument, NULL, 's'}, {"stores", required_argument, NULL, 'n'},
        {"regions", required_argument, NULL, 'r'}, {"batch", required_argument, NULL, 'b'},
        {"value", required_argument, NULL, 'v'},   {"keys", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0}};
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 's': o.seconds = atoi(optarg); break;
        case 'n': o.stores = atoi(optarg); break;
        case 'r': o.regions = atoi(optarg); break;
        case 'b': o.batch = atoi(optarg); break;
        case 'v': o.value = atoi(optarg); break;
        case 'k': o.keys = atoll(optarg); break;
        default: return 2;
        }
    }
    if (o.stores < 1 || o.stores > MAX_STORES || o.batch < 1 || o.keys <= o.batch) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    if (strcmp(o.mode, "register") == 0 && o.keys < o.regions)
        o.keys = o.regions * 2;
    tkc_log_set_level(TKC_LOG_WARN);
    grpc_init();
    if (strcmp(o.mode, "events") == 0)
        run_events(&o);
    else
        run_register(&o);
    grpc_shutdown();
    return 0;
}
