/*
 * sim_main.c: the tikv-sim executable.
 *
 * Assembles one simulated cluster in one process: the shared model, the PD
 * endpoint, N store endpoints (ChangeData + the lock RPCs), the workload
 * generator and the control endpoint, each gRPC/HTTP endpoint on its own
 * 127.0.0.1 port. The first line on stdout is one JSON object naming every
 * address (also written to --ports-file), so a test or tool can find them.
 * Runs until SIGTERM / SIGINT, then shuts everything down in dependency
 * order (control, workload, stores, PD, CDC, model: the truth file is flushed
 * last) and exits 0.
 *
 * Signals are blocked in every thread (the mask is set before grpc_init and
 * before any thread is created, so all threads inherit it) and received with
 * sigwait() on the main thread: no handler runs in a random thread.
 *
 * Exit codes: 0 clean shutdown, 1 start-up failure, 2 bad command line.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <jansson.h>

#include "sim_cdc.h"
#include "sim_control.h"
#include "sim_lockrpc.h"
#include "sim_model.h"
#include "sim_pd.h"
#include "sim_server.h"
#include "sim_workload.h"
#include "util/log.h"
#include "util/mem.h"

typedef struct {
    int stores, regions;
    uint64_t seed, cluster_id;
    double rate;          /* rows/s; 0 = paused; < 0 = as fast as possible */
    const char *truth, *scenario, *ports_file;
    int resolved_interval_ms;
    const char *tikv_version;
    bool pre_7_3, raw_keys;
    int64_t keys, table_id;
    int value_min, value_max;
    int control_port, pd_port, store_port;
    int rollback_pct, onepc_pct, delete_pct, long_txn_pct, long_txn_ms;
    int keys_per_txn, concurrency, lock_ttl_ms;
    uint64_t max_txns;
    int scan_rows_per_tick;
    int64_t gc_life_time_s; /* versions older than this are collected; 0 = never */
    const char *log_level;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
"usage: tikv-sim [options]\n"
"A simulated PD + TiKV change-feed cluster on 127.0.0.1 (see tests/sim/README.md).\n"
"\n"
"Cluster:\n"
"  --stores N                 stores (default 3)\n"
"  --regions R                initial regions, 1..100000 (default 16)\n"
"  --seed S                   workload / cluster-id seed (default 1)\n"
"  --cluster-id ID            PD cluster id (default: derived from the seed)\n"
"  --tikv-version V           semver every store reports (default 8.5.0)\n"
"  --pre-7-3                  key registrations by region_id alone (TiKV < 7.3)\n"
"  --resolved-interval-ms MS  resolved-ts interval, >= 50 (default 1000)\n"
"  --scan-rows-per-tick N     incremental-scan rows per store per tick (default 8192)\n"
"Keys and workload:\n"
"  --rate ROWS_PER_S          workload rate; 0 = start paused, max = unthrottled (default 1000)\n"
"  --keys N                   size of the key set (default 10000)\n"
"  --table-id ID              keys are t{ID}_r{1..N} (default 100)\n"
"  --raw-keys                 keys are \"k%%08d\" instead of record keys\n"
"  --value-size N|MIN-MAX     value sizes in bytes (default 16-128)\n"
"  --keys-per-txn N           keys per transaction, uniform 1..N (default 4)\n"
"  --concurrency N            transactions in flight (default 4)\n"
"  --rollback-pct P           %% of transactions rolled back (default 0)\n"
"  --onepc-pct P              %% committed in one phase (default 0)\n"
"  --delete-pct P             %% of mutations that delete (default 0)\n"
"  --long-txn-pct P           %% holding their locks --long-txn-ms (default 0)\n"
"  --long-txn-ms MS           (default 2000)\n"
"  --max-txns N               stop drawing after N transactions (default: no limit)\n"
"  --lock-ttl-ms MS           TTL of locks left by leave_lock (default 3000)\n"
"Outputs and endpoints:\n"
"  --truth FILE               ground truth: one JSON line per committed key\n"
"  --scenario FILE            JSON-lines fault script {\"at_ms\": N, \"op\": ...}\n"
"  --ports-file FILE          also write the start-up JSON line here\n"
"  --control-port P           control HTTP port (default 0 = a free port)\n"
"  --pd-port P                PD port (default 0 = a free port)\n"
"  --store-port P             first store port, then P+1, ... (default 0 = free ports)\n"
"  --gc-life-time-s S         GC worker: every minute, advance the GC safepoint to\n"
"                             now - S, held back by service safepoints (default 600;\n"
"                             0 = never collect)\n"
"  --log-level L              error|warn|info|debug, on stderr (default info)\n"
"  --help                     this text\n"
"\n"
"The first line on stdout is {\"cluster_id\": N, \"pd\": \"127.0.0.1:port\",\n"
"\"stores\": [{\"id\": N, \"addr\": \"127.0.0.1:port\"}, ...], \"control\": \"127.0.0.1:port\"}.\n"
"Runs until SIGTERM or SIGINT, then exits 0.\n");
}

static int parse_int(const char *name, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "tikv-sim: --%s: expected an integer in [%" PRId64 ", %" PRId64 "], got \"%s\"\n",
                name, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

enum {
    O_STORES = 256, O_REGIONS, O_SEED, O_CLUSTER_ID, O_TIKV_VERSION, O_PRE73, O_RESOLVED,
    O_SCAN_ROWS, O_RATE, O_KEYS, O_TABLE_ID, O_RAW_KEYS, O_VALUE_SIZE, O_KEYS_PER_TXN,
    O_CONCURRENCY, O_ROLLBACK, O_ONEPC, O_DELETE, O_LONG_PCT, O_LONG_MS, O_MAX_TXNS,
    O_LOCK_TTL, O_TRUTH, O_SCENARIO, O_PORTS_FILE, O_CONTROL_PORT, O_PD_PORT, O_STORE_PORT,
    O_LOG_LEVEL, O_GC_LIFE, O_HELP,
};

static int parse_args(int argc, char **argv, opts_t *o)
{
    static const struct option longopts[] = {
        {"stores", required_argument, NULL, O_STORES},
        {"regions", required_argument, NULL, O_REGIONS},
        {"seed", required_argument, NULL, O_SEED},
        {"cluster-id", required_argument, NULL, O_CLUSTER_ID},
        {"tikv-version", required_argument, NULL, O_TIKV_VERSION},
        {"pre-7-3", no_argument, NULL, O_PRE73},
        {"resolved-interval-ms", required_argument, NULL, O_RESOLVED},
        {"scan-rows-per-tick", required_argument, NULL, O_SCAN_ROWS},
        {"rate", required_argument, NULL, O_RATE},
        {"keys", required_argument, NULL, O_KEYS},
        {"table-id", required_argument, NULL, O_TABLE_ID},
        {"raw-keys", no_argument, NULL, O_RAW_KEYS},
        {"value-size", required_argument, NULL, O_VALUE_SIZE},
        {"keys-per-txn", required_argument, NULL, O_KEYS_PER_TXN},
        {"concurrency", required_argument, NULL, O_CONCURRENCY},
        {"rollback-pct", required_argument, NULL, O_ROLLBACK},
        {"onepc-pct", required_argument, NULL, O_ONEPC},
        {"delete-pct", required_argument, NULL, O_DELETE},
        {"long-txn-pct", required_argument, NULL, O_LONG_PCT},
        {"long-txn-ms", required_argument, NULL, O_LONG_MS},
        {"max-txns", required_argument, NULL, O_MAX_TXNS},
        {"lock-ttl-ms", required_argument, NULL, O_LOCK_TTL},
        {"truth", required_argument, NULL, O_TRUTH},
        {"scenario", required_argument, NULL, O_SCENARIO},
        {"ports-file", required_argument, NULL, O_PORTS_FILE},
        {"control-port", required_argument, NULL, O_CONTROL_PORT},
        {"pd-port", required_argument, NULL, O_PD_PORT},
        {"store-port", required_argument, NULL, O_STORE_PORT},
        {"log-level", required_argument, NULL, O_LOG_LEVEL},
        {"gc-life-time-s", required_argument, NULL, O_GC_LIFE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    int64_t v;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *name = NULL;
        for (int i = 0; longopts[i].name; i++)
            if (longopts[i].val == c)
                name = longopts[i].name;
        switch (c) {
#define INT_OPT(code, field, lo, hi)                                                               \
    case code:                                                                                     \
        if (parse_int(name, optarg, lo, hi, &v))                                                   \
            return -1;                                                                             \
        o->field = v;                                                                              \
        break;
        INT_OPT(O_STORES, stores, 1, 64)
        INT_OPT(O_REGIONS, regions, 1, 100000)
        INT_OPT(O_SEED, seed, 0, INT64_MAX)
        INT_OPT(O_CLUSTER_ID, cluster_id, 0, INT64_MAX)
        INT_OPT(O_RESOLVED, resolved_interval_ms, 50, 3600000)
        INT_OPT(O_SCAN_ROWS, scan_rows_per_tick, 1, 100000000)
        INT_OPT(O_KEYS, keys, 1, 50000000)
        INT_OPT(O_TABLE_ID, table_id, 1, INT64_MAX / 2)
        INT_OPT(O_KEYS_PER_TXN, keys_per_txn, 1, 100000)
        INT_OPT(O_CONCURRENCY, concurrency, 1, 10000)
        INT_OPT(O_ROLLBACK, rollback_pct, 0, 100)
        INT_OPT(O_ONEPC, onepc_pct, 0, 100)
        INT_OPT(O_DELETE, delete_pct, 0, 100)
        INT_OPT(O_LONG_PCT, long_txn_pct, 0, 100)
        INT_OPT(O_LONG_MS, long_txn_ms, 0, 86400000)
        INT_OPT(O_MAX_TXNS, max_txns, 0, INT64_MAX)
        INT_OPT(O_LOCK_TTL, lock_ttl_ms, 1, 86400000)
        INT_OPT(O_CONTROL_PORT, control_port, 0, 65535)
        INT_OPT(O_PD_PORT, pd_port, 0, 65535)
        INT_OPT(O_STORE_PORT, store_port, 0, 65535)
#undef INT_OPT
        case O_TIKV_VERSION:
            o->tikv_version = optarg;
            break;
        case O_PRE73:
            o->pre_7_3 = true;
            break;
        case O_RAW_KEYS:
            o->raw_keys = true;
            break;
        case O_RATE:
            if (strcmp(optarg, "max") == 0) {
                o->rate = -1;
            } else {
                char *end;
                o->rate = strtod(optarg, &end);
                if (end == optarg || *end || o->rate < 0) {
                    fprintf(stderr, "tikv-sim: --rate: expected rows/s >= 0 or \"max\"\n");
                    return -1;
                }
            }
            break;
        case O_VALUE_SIZE: {
            int64_t a, b;
            char buf[64];
            snprintf(buf, sizeof(buf), "%s", optarg);
            char *dash = strchr(buf, '-');
            if (dash)
                *dash = 0;
            if (parse_int(name, buf, 0, 64 << 20, &a) ||
                parse_int(name, dash ? dash + 1 : buf, a, 64 << 20, &b))
                return -1;
            o->value_min = (int)a;
            o->value_max = (int)b;
            break;
        }
        case O_TRUTH:
            o->truth = optarg;
            break;
        case O_SCENARIO:
            o->scenario = optarg;
            break;
        case O_PORTS_FILE:
            o->ports_file = optarg;
            break;
        case O_LOG_LEVEL:
            o->log_level = optarg;
            break;
        case O_GC_LIFE:
            if (parse_int(name, optarg, 0, INT32_MAX, &o->gc_life_time_s))
                return -1;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tikv-sim: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if (o->pd_port && o->store_port &&
        o->pd_port >= o->store_port && o->pd_port < o->store_port + o->stores) {
        fprintf(stderr, "tikv-sim: --pd-port overlaps the store ports\n");
        return -1;
    }
    return 0;
}

/* Writes @p text to @p path atomically (temp file + rename). */
static int write_file_atomic(const char *path, const char *text)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o = {
        .stores = 3, .regions = 16, .seed = 1, .rate = 1000, .resolved_interval_ms = 1000,
        .tikv_version = "8.5.0", .keys = 10000, .table_id = 100, .value_min = 16,
        .value_max = 128, .keys_per_txn = 4, .concurrency = 4, .long_txn_ms = 2000,
        .lock_ttl_ms = 3000, .scan_rows_per_tick = 8192, .gc_life_time_s = 600,
        .log_level = "info",
    };
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    tkc_log_level_t lvl;
    if (tkc_log_level_parse(o.log_level, &lvl) != 0) {
        fprintf(stderr, "tikv-sim: --log-level: error, warn, info or debug\n");
        return 2;
    }
    tkc_log_set_level(lvl);

    /* Before any thread exists: every thread inherits this mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    grpc_init();
    int rc = 1;
    FILE *truth = NULL;
    sim_model_t *m = NULL;
    sim_cdc_t *cdc = NULL;
    sim_server_t *pd_srv = NULL;
    sim_pd_t *pd = NULL;
    sim_server_t **srv = tkc_calloc((size_t)o.stores, sizeof(*srv));
    sim_lockrpc_t **lr = tkc_calloc((size_t)o.stores, sizeof(*lr));
    uint64_t *ids = tkc_calloc((size_t)o.stores, sizeof(*ids));
    sim_workload_t *w = NULL;
    sim_control_t *ctl = NULL;
    char *line = NULL;

    if (o.truth && !(truth = fopen(o.truth, "w"))) {
        fprintf(stderr, "tikv-sim: --truth %s: %s\n", o.truth, strerror(errno));
        goto out;
    }
    if (o.cluster_id == 0) {
        /* Like PD's generated ids (unix seconds << 32 | random) these stay
         * below 2^63, so every JSON reader (jansson's signed integers
         * included) can take the start-up line. */
        uint64_t z = o.seed + UINT64_C(0x9E3779B97F4A7C15);
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        o.cluster_id = ((z ^ (z >> 31)) & (uint64_t)INT64_MAX) | (UINT64_C(1) << 62);
    }
    sim_model_config_t mc = {
        .cluster_id = o.cluster_id, .stores = o.stores, .regions = o.regions, .seed = o.seed,
        .table_id = o.table_id, .key_count = o.keys, .raw_keys = o.raw_keys,
        .store_version = o.tikv_version, .truth = truth,
    };
    m = sim_model_new(&mc);
    if (!m) {
        fprintf(stderr, "tikv-sim: invalid cluster settings (stores/regions/keys)\n");
        goto out;
    }
    sim_cdc_config_t cc;
    sim_cdc_config_defaults(&cc);
    cc.resolved_interval_ms = o.resolved_interval_ms;
    cc.pre_7_3 = o.pre_7_3;
    cc.incremental_scan_rows_per_tick = o.scan_rows_per_tick;
    cdc = sim_cdc_new(m, &cc);

    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", o.pd_port);
    pd_srv = sim_server_new("pd", addr);
    pd = sim_pd_new(m, pd_srv);
    if (sim_server_start(pd_srv) < 0) {
        fprintf(stderr, "tikv-sim: cannot bind the PD endpoint %s\n", addr);
        goto out;
    }
    for (int i = 0; i < o.stores; i++) {
        sim_model_lock(m);
        ids[i] = sim_model_store_at_locked(m, i)->id;
        sim_model_unlock(m);
        char name[32];
        snprintf(name, sizeof(name), "store-%" PRIu64, ids[i]);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", o.store_port ? o.store_port + i : 0);
        srv[i] = sim_server_new(name, addr);
        lr[i] = sim_lockrpc_new(m, ids[i], srv[i]);
        sim_cdc_attach_store(cdc, ids[i], srv[i]);
        if (sim_server_start(srv[i]) < 0) {
            fprintf(stderr, "tikv-sim: cannot bind store %" PRIu64 " at %s\n", ids[i], addr);
            goto out;
        }
        sim_model_lock(m);
        sim_store_t *st = sim_model_store_by_id_locked(m, ids[i]);
        snprintf(st->addr, sizeof(st->addr), "%s", sim_server_addr(srv[i]));
        sim_model_unlock(m);
    }

    sim_workload_config_t wc;
    sim_workload_config_default(&wc);
    wc.rate_rows_per_s = o.rate > 0 ? o.rate : 0;
    wc.keys_per_txn_max = o.keys_per_txn;
    wc.value_min = o.value_min;
    wc.value_max = o.value_max;
    wc.rollback_pct = o.rollback_pct;
    wc.onepc_pct = o.onepc_pct;
    wc.delete_pct = o.delete_pct;
    wc.long_txn_pct = o.long_txn_pct;
    wc.long_txn_ms = o.long_txn_ms;
    wc.concurrency = o.concurrency;
    wc.max_txns = o.max_txns;
    wc.crashed_lock_ttl_ms = o.lock_ttl_ms;
    w = sim_workload_new(m, &wc, o.seed);
    if (!w) {
        fprintf(stderr, "tikv-sim: cannot create the workload\n");
        goto out;
    }
    if (o.rate == 0)
        sim_workload_pause(w); /* --rate 0: start paused; set_rate starts it */
    if (sim_workload_start(w) != 0) {
        fprintf(stderr, "tikv-sim: cannot start the workload\n");
        goto out;
    }

    sim_cluster_t cl = {
        .model = m, .workload = w, .cdc = cdc, .pd = pd, .n_stores = (size_t)o.stores,
        .store_ids = ids, .store_servers = srv, .lockrpcs = lr,
    };
    ctl = sim_control_new(&cl);
    if (sim_control_start_http(ctl, o.control_port) < 0) {
        fprintf(stderr, "tikv-sim: cannot bind the control endpoint on port %d\n",
                o.control_port);
        goto out;
    }

    /* a bad scenario stops us before anyone is told we are up */
    if (o.scenario) {
        char err[512];
        int n = sim_control_run_scenario(ctl, o.scenario, err, sizeof(err));
        if (n < 0) {
            fprintf(stderr, "tikv-sim: --scenario: %s\n", err);
            goto out;
        }
        tkc_log(TKC_LOG_INFO, "sim_main", "event=scenario_loaded ops=%d", n);
    }

    /* the one start-up line: everything a client needs to find us */
    json_t *stores = json_array();
    for (int i = 0; i < o.stores; i++)
        json_array_append_new(stores, json_pack("{s:I, s:s}", "id", (json_int_t)ids[i], "addr",
                                                sim_server_addr(srv[i])));
    char control_addr[64];
    snprintf(control_addr, sizeof(control_addr), "127.0.0.1:%d", sim_control_port(ctl));
    json_t *hello = json_pack("{s:I, s:s, s:o, s:s}", "cluster_id",
                              (json_int_t)sim_model_cluster_id(m), "pd",
                              sim_server_addr(pd_srv), "stores", stores, "control",
                              control_addr);
    line = json_dumps(hello, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(hello);
    if (o.ports_file && write_file_atomic(o.ports_file, line) != 0) {
        fprintf(stderr, "tikv-sim: --ports-file %s: %s\n", o.ports_file, strerror(errno));
        goto out;
    }
    printf("%s\n", line);
    fflush(stdout);

    /* The main thread waits for a signal and, meanwhile, plays TiDB's GC
     * worker: without it the model keeps every version forever. */
    int sig = 0;
    int64_t next_gc_s = 60;
    for (int64_t waited_s = 0;; waited_s++) {
        struct timespec one_s = {1, 0};
        sig = sigtimedwait(&sigs, NULL, &one_s);
        if (sig > 0)
            break;
        if (o.gc_life_time_s > 0 && waited_s >= next_gc_s) {
            next_gc_s = waited_s + 60;
            uint64_t now = sim_model_tso(m);
            uint64_t life = (uint64_t)o.gc_life_time_s * 1000 << 18;
            if (now > life) {
                uint64_t sp = sim_model_gc_advance(m, now - life);
                tkc_log(TKC_LOG_INFO, "sim_main", "event=gc safepoint=%" PRIu64, sp);
            }
        }
    }
    tkc_log(TKC_LOG_INFO, "sim_main", "event=shutdown signal=%d", sig);
    rc = 0;

out:
    /* order: nothing may call into a part that is already gone */
    sim_control_destroy(ctl);
    if (w)
        sim_workload_destroy(w);
    for (int i = 0; i < o.stores; i++)
        if (srv[i])
            sim_server_stop(srv[i]);
    if (pd_srv)
        sim_server_stop(pd_srv);
    for (int i = 0; i < o.stores; i++) {
        sim_server_destroy(srv[i]);
        sim_lockrpc_destroy(lr[i]);
    }
    sim_server_destroy(pd_srv);
    sim_pd_destroy(pd);
    if (cdc)
        sim_cdc_destroy(cdc);
    if (m) {
        sim_model_truth_flush(m);
        sim_model_destroy(m);
    }
    if (truth && fclose(truth) != 0 && rc == 0) {
        fprintf(stderr, "tikv-sim: --truth: %s\n", strerror(errno));
        rc = 1;
    }
    free(line);
    tkc_free(srv);
    tkc_free(lr);
    tkc_free(ids);
    grpc_shutdown_blocking();
    return rc;
}
