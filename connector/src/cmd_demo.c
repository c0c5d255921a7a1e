/*
 * cmd_demo.c: `tikv-kafka-cdc demo` (what `make demo` runs): the whole
 * pipeline on one machine, narrated for someone who has never seen it.
 *
 *   tikv-sim (child)  simulated PD + TiKV stores, a steady workload, a
 *                     ground-truth file and an HTTP control endpoint
 *   tikv-kafka-cdc run --config config/demo.ini (child)
 *                     the real connector, with librdkafka's mock cluster
 *                     inside its process as the Kafka ([kafka]
 *                     embedded_mock_brokers)
 *   this process      starts both, samples the connector's /status four
 *                     times a second and redraws a one-line status every
 *                     second, restarts one store halfway through the sim's
 *                     control endpoint, and at the end reads the newest
 *                     messages back from the embedded Kafka, decodes them
 *                     and prints a summary.
 *
 * Why the connector is a child process and not threads in here: the demo
 * then shows exactly what `run` does in production (same code path, same
 * signals, same /status), the demo itself stays a plain client of the
 * connector's interfaces, and a crash or hang of either side cannot take
 * the other down. The price is that the demo must learn two addresses the
 * connector picks at run time: its HTTP port (the demo asks for port 0)
 * and the mock cluster's bootstrap (random ports in librdkafka 2.0.2).
 * Both are read from the connector's log: `event=http_listening ... port=N`
 * and librdkafka's MOCK notice "... replaced with HOST:PORT,...".
 *
 * Timeline: tikv-sim starts with its workload paused; the demo reads the
 * sim's TSO and uses it as the connector's start ts, then starts the
 * workload and waits --warmup seconds before starting the connector, so
 * the initial scan has history to catch up on and every row the workload
 * ever committed belongs to the feed. That makes the closing completeness
 * check exact: the truth file's rows with commit_ts <= the final
 * checkpoint must all have been delivered (more is fine: at-least-once).
 *
 * Stopping: children run in their own process groups, so Ctrl-C reaches
 * only the demo. The first Ctrl-C ends the run early but still shows the
 * ending (messages, clean stop, summary); the connector gets SIGTERM first
 * (final watermark and checkpoint need the simulated cluster), then
 * tikv-sim. A second Ctrl-C kills both at once. The children also die with
 * the demo (PR_SET_PDEATHSIG) if it is killed outright.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "avro_codec.h"
#include "cli.h"
#include "demo_http.h"
#include "demo_kafka.h"
#include "demo_proc.h"
#include "demo_watch.h"
#include "run.h"
#include "util/clock.h"
#include "util/keycodec.h"
#include "util/log.h"
#include "util/mem.h"

#ifndef TKC_DEMO_CONFIG
#define TKC_DEMO_CONFIG "config/demo.ini"
#endif

#define SAMPLE_MS 250
#define DEMO_EXIT_KILLED 130 /* a second Ctrl-C: everything killed (shell convention) */
#define REDRAW_MS 1000

/* ===== options ===== */

typedef struct demo_opts_s {
    int duration_s;
    int restart_at_s; /* 0: no restart; -1: half of duration */
    int restart_store;
    int down_ms;
    int election_ms;
    int stores;
    int regions;
    int rate;
    int warmup_s;
    int messages;
    const char *config;
    const char *sim;
    const char *truth;
    const char *dir;
    bool no_tty;
} demo_opts_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tikv-kafka-cdc demo [options]\n"
            "\n"
            "Runs the whole pipeline on this machine: tikv-sim (a simulated PD and TiKV\n"
            "cluster with a steady workload) feeds the connector ('run' with\n"
            "config/demo.ini), which writes Avro row changes to an embedded Kafka\n"
            "(librdkafka's mock cluster inside the connector). Shows a live status line,\n"
            "restarts one store halfway so the lag and its recovery are visible, then\n"
            "prints the newest messages, decoded, and a summary. 'make demo' runs this;\n"
            "'make demo DEMO_ARGS=\"--duration 30\"' passes options.\n"
            "\n"
            "options:\n"
            "  -d, --duration SEC       how long the connector runs (default 60)\n"
            "      --restart-at SEC     when to restart a store (default: half the duration;\n"
            "                           0: never)\n"
            "      --restart-store ID   which store (default 2; 1 with --stores 1)\n"
            "      --down-ms MS         how long it stays down (default 3000); its region\n"
            "                           leaders move to other stores after 1 s\n"
            "      --stores N           simulated TiKV stores (default 3)\n"
            "      --regions N          regions (default 256)\n"
            "      --rate ROWS          rows per second the workload writes (default 3000)\n"
            "      --warmup SEC         the workload writes this long before the connector\n"
            "                           starts; its initial scan catches up (default 3)\n"
            "      --messages N         decoded messages to print at the end (default 5)\n"
            "  -c, --config FILE        connector configuration (default %s)\n"
            "      --sim PATH           the tikv-sim binary (default: next to this binary in\n"
            "                           the build tree, else tikv-sim on PATH)\n"
            "      --truth FILE         tikv-sim's ground-truth file (default DIR/truth.jsonl)\n"
            "      --dir DIR            logs and files of this run (default: a new\n"
            "                           /tmp/tikv-kafka-cdc-demo.XXXXXX)\n"
            "      --no-tty             one status line per second instead of redrawing one\n"
            "                           line (the default when stdout is not a terminal)\n"
            "  -h, --help               this text\n"
            "\n"
            "Ctrl-C ends the run early and still stops everything cleanly; a second\n"
            "Ctrl-C kills tikv-sim and the connector at once.\n"
            "\n"
            "exit codes: 0 the demo ran (or was stopped with Ctrl-C) and everything stopped\n"
            "cleanly with no row missing; 1 something failed at run time (the connector or\n"
            "tikv-sim exited early, a row is missing); 2 usage or configuration error;\n"
            "3 tikv-sim not found; 130 a second Ctrl-C killed everything.\n",
            TKC_DEMO_CONFIG);
}

static bool parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

/* @returns -1 to go on, else the exit code */
static int parse_opts(int argc, char **argv, demo_opts_t *o)
{
    enum {
        O_RESTART_AT = 256, O_RESTART_STORE, O_DOWN_MS, O_STORES, O_REGIONS, O_RATE, O_WARMUP,
        O_MESSAGES, O_SIM, O_TRUTH, O_DIR, O_NO_TTY
    };
    static const struct option opts[] = {
        {"duration", required_argument, NULL, 'd'},
        {"restart-at", required_argument, NULL, O_RESTART_AT},
        {"restart-store", required_argument, NULL, O_RESTART_STORE},
        {"down-ms", required_argument, NULL, O_DOWN_MS},
        {"stores", required_argument, NULL, O_STORES},
        {"regions", required_argument, NULL, O_REGIONS},
        {"rate", required_argument, NULL, O_RATE},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"messages", required_argument, NULL, O_MESSAGES},
        {"config", required_argument, NULL, 'c'},
        {"sim", required_argument, NULL, O_SIM},
        {"truth", required_argument, NULL, O_TRUTH},
        {"dir", required_argument, NULL, O_DIR},
        {"no-tty", no_argument, NULL, O_NO_TTY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    *o = (demo_opts_t){.duration_s = 60, .restart_at_s = -1, .restart_store = 0,
                       .down_ms = 3000, .election_ms = 1000, .stores = 3, .regions = 256,
                       .rate = 3000, .warmup_s = 3, .messages = 5, .config = TKC_DEMO_CONFIG};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "d:c:h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'd': ok = parse_int(optarg, 5, 86400, &o->duration_s); break;
        case O_RESTART_AT: ok = parse_int(optarg, 0, 86400, &o->restart_at_s); break;
        case O_RESTART_STORE: ok = parse_int(optarg, 1, 64, &o->restart_store); break;
        case O_DOWN_MS: ok = parse_int(optarg, 0, 600000, &o->down_ms); break;
        case O_STORES: ok = parse_int(optarg, 1, 64, &o->stores); break;
        case O_REGIONS: ok = parse_int(optarg, 1, 100000, &o->regions); break;
        case O_RATE: ok = parse_int(optarg, 1, 1000000, &o->rate); break;
        case O_WARMUP: ok = parse_int(optarg, 0, 3600, &o->warmup_s); break;
        case O_MESSAGES: ok = parse_int(optarg, 0, 1000, &o->messages); break;
        case 'c': o->config = optarg; break;
        case O_SIM: o->sim = optarg; break;
        case O_TRUTH: o->truth = optarg; break;
        case O_DIR: o->dir = optarg; break;
        case O_NO_TTY: o->no_tty = true; break;
        case 'h': usage(stdout); return TKC_EXIT_OK;
        default: usage(stderr); return TKC_EXIT_USAGE;
        }
        if (!ok) {
            fprintf(stderr, "tikv-kafka-cdc demo: invalid value '%s' (see --help)\n", optarg);
            return TKC_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tikv-kafka-cdc demo: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return TKC_EXIT_USAGE;
    }
    if (o->restart_at_s < 0)
        o->restart_at_s = o->duration_s / 2;
    if (o->restart_store == 0)
        o->restart_store = o->stores >= 2 ? 2 : 1;
    if (o->restart_at_s >= o->duration_s) {
        fprintf(stderr, "tikv-kafka-cdc demo: --restart-at must be before the end (--duration)\n");
        return TKC_EXIT_USAGE;
    }
    if (o->restart_at_s > 0 && o->restart_store > o->stores) {
        fprintf(stderr, "tikv-kafka-cdc demo: --restart-store %d: there are only %d stores\n",
                o->restart_store, o->stores);
        return TKC_EXIT_USAGE;
    }
    if (!isatty(STDOUT_FILENO))
        o->no_tty = true;
    return -1;
}

/* ===== signals ===== */

static volatile sig_atomic_t interrupts;

static void on_signal(int sig)
{
    (void)sig;
    interrupts++;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Sleeps up to ms; returns early (false) on a Ctrl-C. */
static bool nap(int64_t ms)
{
    int64_t until = tkc_clock_mono_ms() + ms;
    while (!interrupts) {
        int64_t left = until - tkc_clock_mono_ms();
        if (left <= 0)
            return true;
        struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* ===== small helpers ===== */

static char *self_exe(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return tkc_strdup(buf);
}

static bool executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* tikv-sim next to us in the build tree (build/connector/ ->
 * build/tests/sim/), next to us when installed, else on PATH. */
static char *find_sim(const char *self)
{
    char buf[4096];
    if (self) {
        const char *slash = strrchr(self, '/');
        int dir_len = slash ? (int)(slash - self) : 0;
        static const char *const rel[] = {"/../tests/sim/tikv-sim", "/tikv-sim"};
        for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
            snprintf(buf, sizeof(buf), "%.*s%s", dir_len, self, rel[i]);
            if (executable(buf))
                return tkc_strdup(buf);
        }
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t len = strcspn(path, ":");
        snprintf(buf, sizeof(buf), "%.*s/tikv-sim", (int)len, path);
        if (len && executable(buf))
            return tkc_strdup(buf);
        path += len + (path[len] == ':');
    }
    return NULL;
}

/* The last line of a log file containing @p needle, into @p out. */
static bool log_find(const char *path, const char *needle, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[8192];
    bool found = false;
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, needle)) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(out, size, "%s", line);
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* Prints the last @p n lines of a log file, indented, to stderr. */
static void log_tail(const char *path, int n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char ring[16][1024];
    int count = 0;
    if (n > 16)
        n = 16;
    while (fgets(ring[count % n], sizeof(ring[0]), f))
        count++;
    fclose(f);
    fprintf(stderr, "  last lines of %s:\n", path);
    for (int i = count > n ? count - n : 0; i < count; i++)
        fprintf(stderr, "    %s%s", ring[i % n], strchr(ring[i % n], '\n') ? "" : "\n");
}

/* The value after "key=" in a key=value log line (up to a space or quote). */
static bool kv_value(const char *line, const char *key, char *out, size_t size)
{
    char pat[64];
    snprintf(pat, sizeof(pat), " %s=", key);
    const char *p = strstr(line, pat);
    if (!p)
        return false;
    p += strlen(pat);
    size_t len = strcspn(p, " \"\n");
    if (len == 0 || len >= size)
        return false;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

/* A TiDB record key t{table}_r{handle} (memcomparable int64s: big-endian
 * with the sign bit flipped) as text; anything else printable-escaped. */
static void pretty_key(const uint8_t *k, size_t n, char *out, size_t size)
{
    if (n == 19 && k[0] == 't' && k[9] == '_' && k[10] == 'r') {
        uint64_t t = 0, h = 0;
        for (int i = 0; i < 8; i++) {
            t = t << 8 | k[1 + i];
            h = h << 8 | k[11 + i];
        }
        snprintf(out, size, "t%" PRId64 "_r%" PRId64, (int64_t)(t ^ (1ULL << 63)),
                 (int64_t)(h ^ (1ULL << 63)));
        return;
    }
    size_t j = 0;
    for (size_t i = 0; i < n && j + 5 < size; i++) {
        if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '"' && k[i] != '\\')
            out[j++] = (char)k[i];
        else
            j += (size_t)snprintf(out + j, size - j, "\\x%02x", k[i]);
    }
    out[j] = '\0';
}

/* ===== the run ===== */

typedef struct demo_s {
    demo_opts_t o;
    tkc_conf_t *conf;
    char *self;
    char *sim_path;
    char dir[512];
    char sim_log[600], conn_log[600], truth[600], checkpoint[600];
    char row_topic[256], wm_topic[256];
    tkc_demo_proc_t *sim, *conn;
    char pd[128], control[128];
    int http_port;
    char bootstrap[1024];
    uint64_t start_ts;
    int64_t t0; /* connector start, monotonic ms */
    tkc_demo_watch_t *watch;
    bool line_open; /* a live line is on screen without its newline */
    bool restart_done, store_back;
    int conn_code, sim_code;
    uint64_t final_checkpoint, final_rows;
    bool have_final;
} demo_t;

static int64_t demo_now(const demo_t *d)
{
    return tkc_clock_mono_ms() - d->t0;
}

/* Ends a live line in place so the next output starts on a fresh line. */
static void break_line(demo_t *d)
{
    if (d->line_open) {
        fputs(d->o.no_tty ? "\n" : "\r\033[K", stdout);
        d->line_open = false;
    }
}

static void say(demo_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(demo_t *d, const char *fmt, ...)
{
    break_line(d);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static void draw_line(demo_t *d)
{
    char line[512];
    tkc_demo_watch_line(d->watch, line, sizeof(line));
    if (d->o.no_tty) {
        printf("%s\n", line);
    } else {
        /* A line wider than the terminal wraps, and \r then only returns to
         * the start of its last part: cut it to the width instead. */
        struct winsize ws;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 &&
            strlen(line) >= ws.ws_col)
            line[ws.ws_col - 1] = '\0';
        printf("\r%s\033[K", line);
        d->line_open = true;
    }
    fflush(stdout);
}

static int start_sim(demo_t *d)
{
    char stores[16], regions[16], table[32];
    snprintf(stores, sizeof(stores), "%d", d->o.stores);
    snprintf(regions, sizeof(regions), "%d", d->o.regions);
    snprintf(table, sizeof(table), "%lld",
             d->conf->feed.tables.n ? (long long)d->conf->feed.tables.v[0] : 100LL);
    const char *argv[] = {d->sim_path,   "--stores",  stores,   "--regions",      regions,
                          "--rate",      "0",         "--seed", "1",              "--table-id",
                          table,         "--truth",   d->truth, "--log-level",    "warn",
                          NULL};
    char err[512];
    d->sim = tkc_demo_proc_spawn(argv, NULL, d->sim_log, true, err, sizeof(err));
    if (!d->sim) {
        fprintf(stderr, "demo: cannot start tikv-sim: %s\n", err);
        return TKC_EXIT_RUNTIME;
    }
    char line[4096];
    if (tkc_demo_proc_read_line(d->sim, line, sizeof(line), 30000) != 0) {
        if (interrupts)
            return TKC_EXIT_OK;
        fprintf(stderr, "demo: tikv-sim did not print its addresses within 30 s\n");
        log_tail(d->sim_log, 10);
        return TKC_EXIT_RUNTIME;
    }
    json_error_t jerr;
    json_t *j = json_loads(line, 0, &jerr);
    const char *pd = json_string_value(json_object_get(j, "pd"));
    const char *ctl = json_string_value(json_object_get(j, "control"));
    if (!pd || !ctl) {
        fprintf(stderr, "demo: unexpected first line from tikv-sim: %s\n", line);
        json_decref(j);
        return TKC_EXIT_RUNTIME;
    }
    snprintf(d->pd, sizeof(d->pd), "%s", pd);
    snprintf(d->control, sizeof(d->control), "%s", ctl);
    json_t *sa = json_object_get(j, "stores");
    char list[512] = "";
    size_t i, n = 0;
    json_t *s;
    json_array_foreach(sa, i, s)
    {
        if (n < sizeof(list))
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%lld", i ? " " : "",
                                  (long long)json_integer_value(json_object_get(s, "id")));
    }
    json_decref(j);

    /* The feed starts at the sim's "now", before the workload writes anything. */
    char url[256], *body = NULL;
    snprintf(url, sizeof(url), "http://%s/stats", d->control);
    if (tkc_demo_http("GET", url, NULL, 5000, &body) == 200) {
        json_t *st = json_loads(body, 0, &jerr);
        json_t *tso = json_object_get(st, "tso");
        if (json_is_integer(tso))
            d->start_ts = (uint64_t)json_integer_value(tso);
        json_decref(st);
    }
    tkc_free(body);
    if (!d->start_ts) {
        fprintf(stderr, "demo: cannot read tikv-sim's TSO from %s\n", url);
        return TKC_EXIT_RUNTIME;
    }
    char req[128];
    snprintf(url, sizeof(url), "http://%s/fault", d->control);
    snprintf(req, sizeof(req), "{\"op\":\"set_rate\",\"rows_per_s\":%d}", d->o.rate);
    if (tkc_demo_http("POST", url, req, 5000, NULL) != 200) {
        fprintf(stderr, "demo: tikv-sim refused %s\n", req);
        return TKC_EXIT_RUNTIME;
    }
    say(d, "tikv-sim   started (pid %d): PD %s, stores %s, control %s",
        (int)tkc_demo_proc_pid(d->sim), d->pd, list, d->control);
    say(d, "           writes %d rows/s into table %s (record keys t%s_r1..t%s_r10000);", d->o.rate,
        table, table, table);
    say(d, "           every commit also goes to its ground-truth file %s", d->truth);
    return -1;
}

static int start_connector(demo_t *d)
{
    char pd_env[200], start_env[64], ck_env[700];
    snprintf(pd_env, sizeof(pd_env), "TKC_PD_ENDPOINTS=%s", d->pd);
    snprintf(start_env, sizeof(start_env), "TKC_FEED_START_TS=%" PRIu64, d->start_ts);
    snprintf(ck_env, sizeof(ck_env), "TKC_CHECKPOINT_PATH=%s", d->checkpoint);
    /* Port 0: never collide with another connector; the port is in the log.
     * kv at info: the two lines the demo reads from the log must be there. */
    const char *env[] = {pd_env,
                         start_env,
                         "TKC_HTTP_LISTEN=127.0.0.1:0",
                         "TKC_LOG_FORMAT=kv",
                         "TKC_LOG_LEVEL=info",
                         d->conf->checkpoint.store == TKC_CONF_CHECKPOINT_FILE ? ck_env : NULL,
                         NULL};
    const char *argv[] = {d->self, "run", "--config", d->o.config, NULL};
    char err[512];
    d->conn = tkc_demo_proc_spawn(argv, env, d->conn_log, false, err, sizeof(err));
    if (!d->conn) {
        fprintf(stderr, "demo: cannot start the connector: %s\n", err);
        return TKC_EXIT_RUNTIME;
    }
    d->t0 = tkc_clock_mono_ms();
    say(d, "connector  started (pid %d), from start ts %" PRIu64 "; log %s",
        (int)tkc_demo_proc_pid(d->conn), d->start_ts, d->conn_log);

    bool mock = d->conf->kafka.embedded_mock_brokers > 0;
    if (!mock)
        snprintf(d->bootstrap, sizeof(d->bootstrap), "%s", d->conf->kafka.bootstrap_servers);
    int64_t deadline = tkc_clock_mono_ms() + 60000;
    char line[8192], val[1024];
    while (d->http_port == 0 || !d->bootstrap[0]) {
        int code;
        if (!tkc_demo_proc_running(d->conn, &code)) {
            fprintf(stderr, "demo: the connector exited during start-up (exit code %d)\n", code);
            log_tail(d->conn_log, 12);
            return TKC_EXIT_RUNTIME;
        }
        if (interrupts)
            return TKC_EXIT_OK;
        if (tkc_clock_mono_ms() > deadline) {
            fprintf(stderr, "demo: the connector did not report its %s within 60 s\n",
                    d->http_port ? "Kafka bootstrap" : "HTTP port");
            log_tail(d->conn_log, 12);
            return TKC_EXIT_RUNTIME;
        }
        if (!d->http_port && log_find(d->conn_log, "event=http_listening", line, sizeof(line)) &&
            kv_value(line, "port", val, sizeof(val)))
            d->http_port = atoi(val);
        /* librdkafka's notice when test.mock.num.brokers is set (kafka_sink
         * forwards librdkafka's log): "... replaced with H:P,H:P,H:P" */
        if (mock && !d->bootstrap[0] &&
            log_find(d->conn_log, "Mock cluster enabled", line, sizeof(line))) {
            const char *p = strstr(line, "replaced with ");
            if (p) {
                p += strlen("replaced with ");
                size_t len = strcspn(p, " \"\n");
                snprintf(d->bootstrap, sizeof(d->bootstrap), "%.*s", (int)len, p);
            }
        }
        nap(100);
    }
    say(d, "           status: http://127.0.0.1:%d/status  (also /metrics, /healthz)",
        d->http_port);
    char first[256];
    snprintf(first, sizeof(first), "%.*s", (int)strcspn(d->bootstrap, ","), d->bootstrap);
    say(d, "kafka      %s %s", mock ? "embedded brokers" : "brokers", d->bootstrap);
    say(d, "           topics: %s (row changes), %s (watermarks)", d->row_topic, d->wm_topic);
    say(d, "           consume while it runs, from another terminal (kcat prints sizes; the");
    say(d, "           values are Avro):");
    say(d,
        "             kcat -C -b %s -t %s -o end -u -f '%%t [%%p] @%%o key %%K B, value %%S B\\n'",
        first, d->row_topic);
    say(d, "             kcat -L -b %s", first);
    say(d, "%s", "");
    return -1;
}

static void restart_store(demo_t *d)
{
    char url[256], req[256], *body = NULL, when[16];
    int64_t t = demo_now(d);
    tkc_demo_watch_fmt_time(t, when, sizeof(when));
    snprintf(url, sizeof(url), "http://%s/fault", d->control);
    snprintf(req, sizeof(req),
             "{\"op\":\"restart_store\",\"store\":%d,\"down_ms\":%d,\"election_ms\":%d}",
             d->o.restart_store, d->o.down_ms, d->o.election_ms);
    long st = tkc_demo_http("POST", url, req, 5000, &body);
    d->restart_done = true;
    if (st != 200) {
        say(d, "!!! %s tikv-sim refused to restart store %d: %ld %s", when, d->o.restart_store,
            st, body ? body : "(no answer)");
        tkc_free(body);
        return;
    }
    tkc_free(body);
    tkc_demo_watch_mark_restart(d->watch, t, (uint64_t)d->o.restart_store);
    say(d, ">>> %s restarting TiKV store %d (watch the lag): its streams break now, it is down",
        when, d->o.restart_store);
    if (d->o.election_ms < d->o.down_ms)
        say(d, "    for %.1f s, and after %.1f s its region leaders move to the other stores",
            d->o.down_ms / 1000.0, d->o.election_ms / 1000.0);
    else
        say(d, "    for %.1f s (shorter than an election: its leaders stay)",
            d->o.down_ms / 1000.0);
}

/* Asks tikv-sim whether the restarted store listens again. */
static void check_store_back(demo_t *d)
{
    char url[256], *body = NULL, when[16];
    snprintf(url, sizeof(url), "http://%s/stores", d->control);
    if (tkc_demo_http("GET", url, NULL, 1000, &body) != 200) {
        tkc_free(body);
        return;
    }
    json_error_t jerr;
    json_t *j = json_loads(body, 0, &jerr), *s;
    tkc_free(body);
    size_t i;
    json_array_foreach(json_object_get(j, "stores"), i, s)
    {
        if (json_integer_value(json_object_get(s, "id")) == d->o.restart_store &&
            json_is_string(json_object_get(s, "state")) &&
            strcmp(json_string_value(json_object_get(s, "state")), "up") == 0) {
            d->store_back = true;
            tkc_demo_watch_fmt_time(demo_now(d), when, sizeof(when));
            say(d, ">>> %s store %d is up again%s", when, d->o.restart_store,
                d->o.election_ms < d->o.down_ms ? " (its leaders stay where they moved)" : "");
        }
    }
    json_decref(j);
}

static void sample(demo_t *d)
{
    char url[128], *body = NULL, err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/status", d->http_port);
    int64_t t = demo_now(d);
    if (tkc_demo_http("GET", url, NULL, 1000, &body) == 200) {
        tkc_demo_sample_t s;
        if (tkc_demo_sample_parse(body, t, &s, err, sizeof(err)) == TKC_ERR_OK)
            tkc_demo_watch_add(d->watch, &s);
    }
    tkc_free(body);
}

/* @returns TKC_EXIT_OK, or TKC_EXIT_RUNTIME when a child died. */
static int live(demo_t *d)
{
    int64_t end = (int64_t)d->o.duration_s * 1000;
    int64_t restart_at = (int64_t)d->o.restart_at_s * 1000;
    int64_t next_draw = 0, restart_t = 0;
    char ev[320];
    while (!interrupts) {
        int64_t t = demo_now(d);
        if (t >= end)
            break;
        int code;
        if (!tkc_demo_proc_running(d->conn, &code)) {
            say(d, "!!! the connector exited on its own (exit code %d)", code);
            log_tail(d->conn_log, 12);
            return TKC_EXIT_RUNTIME;
        }
        if (!tkc_demo_proc_running(d->sim, &code)) {
            say(d, "!!! tikv-sim exited on its own (exit code %d)", code);
            log_tail(d->sim_log, 12);
            return TKC_EXIT_RUNTIME;
        }
        if (restart_at > 0 && !d->restart_done && t >= restart_at) {
            restart_store(d);
            restart_t = t;
        }
        if (d->restart_done && !d->store_back && t >= restart_t + d->o.down_ms - SAMPLE_MS)
            check_store_back(d);
        sample(d);
        while (tkc_demo_watch_event(d->watch, ev, sizeof(ev)))
            say(d, "--- %s", ev);
        if (t >= next_draw) {
            draw_line(d);
            next_draw += REDRAW_MS;
            if (next_draw <= t)
                next_draw = t + REDRAW_MS;
        }
        int64_t wait = SAMPLE_MS - (demo_now(d) - t);
        if (wait > 0)
            nap(wait);
    }
    if (d->line_open) { /* the last live line stays on screen */
        fputc('\n', stdout);
        d->line_open = false;
    }
    return TKC_EXIT_OK;
}

typedef struct shown_row_s {
    uint64_t commit_ts;
    size_t rec;
    tkc_avro_message_t msg;
} shown_row_t;

static int cmp_shown(const void *a, const void *b)
{
    const shown_row_t *x = a, *y = b;
    if (x->commit_ts != y->commit_ts)
        return x->commit_ts < y->commit_ts ? -1 : 1;
    return x->rec < y->rec ? -1 : x->rec > y->rec;
}

static void print_row(const tkc_demo_kafka_record_t *r, const tkc_avro_row_change_t *rc)
{
    const tkc_row_t *row = rc->row;
    char key[160], khex[160], when[40], old[32];
    pretty_key(row->key, row->key_len, key, sizeof(key));
    tkc_keycodec_hex(row->key, row->key_len, khex, sizeof(khex));
    tkc_clock_format_utc_ms(rc->commit_time_ms, when, sizeof(when));
    if (row->has_old_value)
        snprintf(old, sizeof(old), "%zu", row->old_value_len);
    else
        snprintf(old, sizeof(old), "null");
    bool put = row->op == TKC_ROW_OP_PUT;
    unsigned long crc = put ? crc32(0L, row->value, (uInt)row->value_len) : 0;
    printf("  {\"topic\":\"%s\",\"partition\":%d,\"offset\":%" PRId64 ",\"op\":\"%s\","
           "\"key\":\"%s\",\"value_bytes\":%zu,\"old_value_bytes\":%s,\"commit_ts\":%" PRIu64
           ",\"commit_time\":\"%s\",\"value_crc32\":%lu,\"key_hex\":\"%s\"}\n",
           r->topic, r->partition, r->offset, put ? "put" : "delete", key,
           put ? row->value_len : 0, old, row->commit_ts, when, crc, khex);
}

static void show_messages(demo_t *d)
{
    if (d->o.messages == 0 || !d->bootstrap[0])
        return;
    char err[512];
    tkc_avro_codec_t *codec = tkc_avro_codec_new(d->conf->kafka.schema_dir, NULL, err,
                                                 sizeof(err));
    if (!codec) {
        say(d, "(cannot decode messages: %s)", err);
        return;
    }
    tkc_demo_kafka_record_t *recs = NULL;
    size_t n = 0;
    /* Watermarks share the row partitions, so read a few more than needed. */
    tkc_err_t rc = tkc_demo_kafka_tail(d->bootstrap, d->row_topic, d->o.messages * 2 + 8,
                                       15000, &recs, &n, err, sizeof(err));
    if (rc != TKC_ERR_OK) {
        say(d, "(cannot read %s back from Kafka: %s)", d->row_topic, err);
        tkc_avro_codec_destroy(codec);
        return;
    }
    shown_row_t *rows = tkc_calloc(n ? n : 1, sizeof(*rows));
    size_t n_rows = 0;
    for (size_t i = 0; i < n; i++) {
        tkc_avro_message_t m;
        memset(&m, 0, sizeof(m));
        if (tkc_avro_codec_decode(codec, recs[i].value, recs[i].value_len, &m, err,
                                  sizeof(err)) != TKC_ERR_OK)
            continue;
        if (m.kind != TKC_AVRO_MSG_ROW_CHANGE) {
            tkc_avro_message_clear(&m);
            continue;
        }
        rows[n_rows] = (shown_row_t){m.row_change.row->commit_ts, i, m};
        n_rows++;
    }
    qsort(rows, n_rows, sizeof(*rows), cmp_shown);
    size_t from = n_rows > (size_t)d->o.messages ? n_rows - (size_t)d->o.messages : 0;
    say(d, "The newest row changes in %s, read back from the embedded Kafka and decoded",
        d->row_topic);
    say(d, "(Avro RowChange; the Kafka key is the TiKV row key, so a key stays in one partition):");
    for (size_t i = from; i < n_rows; i++)
        print_row(&recs[rows[i].rec], &rows[i].msg.row_change);
    if (n_rows > from) {
        char khex[160];
        const tkc_row_t *last = rows[n_rows - 1].msg.row_change.row;
        tkc_keycodec_hex(last->key, last->key_len, khex, sizeof(khex));
        say(d, "Each is in tikv-sim's ground truth too, e.g.: grep %s %s", khex, d->truth);
    } else {
        say(d, "  (no row changes found)");
    }
    for (size_t i = 0; i < n_rows; i++)
        tkc_avro_message_clear(&rows[i].msg);
    tkc_free(rows);
    tkc_demo_kafka_records_free(recs, n);

    /* The newest watermark: what a downstream consumer waits for. */
    if (tkc_demo_kafka_tail(d->bootstrap, d->wm_topic, 1, 10000, &recs, &n, err, sizeof(err)) ==
            TKC_ERR_OK &&
        n > 0) {
        tkc_avro_message_t m;
        memset(&m, 0, sizeof(m));
        if (tkc_avro_codec_decode(codec, recs[n - 1].value, recs[n - 1].value_len, &m, err,
                                  sizeof(err)) == TKC_ERR_OK &&
            m.kind == TKC_AVRO_MSG_WATERMARK) {
            char when[40];
            tkc_clock_format_utc_ms(m.watermark.resolved_time_ms, when, sizeof(when));
            say(d, "The newest watermark in %s (every row with commit_ts <= resolved_ts is in "
                   "Kafka before it):",
                d->wm_topic);
            say(d,
                "  {\"topic\":\"%s\",\"partition\":%d,\"offset\":%" PRId64
                ",\"feed\":\"%s\",\"resolved_ts\":%" PRIu64 ",\"resolved_time\":\"%s\"}",
                recs[n - 1].topic, recs[n - 1].partition, recs[n - 1].offset,
                m.watermark.feed_id, m.watermark.resolved_ts, when);
        }
        tkc_avro_message_clear(&m);
    }
    tkc_demo_kafka_records_free(recs, n);
    tkc_avro_codec_destroy(codec);
}

/* SIGTERM, then wait; a second Ctrl-C (or the timeout) escalates to SIGKILL.
 * @returns the exit code, -1 when it had to be killed. */
static int stop_child(tkc_demo_proc_t *p, int timeout_ms)
{
    int code;
    if (!tkc_demo_proc_running(p, &code))
        return code;
    if (interrupts >= 2)
        return tkc_demo_proc_stop(p, SIGKILL, 5000);
    tkc_demo_proc_signal(p, SIGTERM);
    int64_t deadline = tkc_clock_mono_ms() + timeout_ms;
    while (tkc_demo_proc_running(p, &code)) {
        if (interrupts >= 2 || tkc_clock_mono_ms() > deadline)
            return tkc_demo_proc_stop(p, SIGKILL, 5000);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return code;
}

static void print_stopped(int code)
{
    if (code == 0)
        printf("done\n");
    else if (code < 0)
        printf("killed\n");
    else
        printf("exit code %d\n", code);
}

static void stop_all(demo_t *d)
{
    if (d->conn) {
        if (tkc_demo_proc_running(d->conn, NULL)) {
            printf("stopping   the connector (SIGTERM: final watermark and checkpoint) ... ");
            fflush(stdout);
            d->conn_code = stop_child(d->conn, 30000);
            print_stopped(d->conn_code);
        } else {
            tkc_demo_proc_running(d->conn, &d->conn_code);
        }
        char line[8192], v[64];
        if (log_find(d->conn_log, "comp=run event=stopped ", line, sizeof(line)) &&
            kv_value(line, "checkpoint_ts", v, sizeof(v))) {
            d->final_checkpoint = strtoull(v, NULL, 10);
            if (kv_value(line, "rows_delivered", v, sizeof(v)))
                d->final_rows = strtoull(v, NULL, 10);
            d->have_final = true;
        }
    }
    if (d->sim) {
        if (tkc_demo_proc_running(d->sim, NULL)) {
            printf("           tikv-sim ... ");
            fflush(stdout);
            d->sim_code = stop_child(d->sim, 15000);
            print_stopped(d->sim_code);
        } else {
            tkc_demo_proc_running(d->sim, &d->sim_code);
        }
    }
    fflush(stdout);
}

/* Rows of the truth file with start_ts < commit_ts <= upto. */
static bool count_truth(const char *path, uint64_t start_ts, uint64_t upto, uint64_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[4096];
    *n = 0;
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "\"commit_ts\":");
        if (!p)
            continue;
        uint64_t ts = strtoull(p + strlen("\"commit_ts\":"), NULL, 10);
        if (ts > start_ts && ts <= upto)
            (*n)++;
    }
    fclose(f);
    return true;
}

/* @returns false when a row is missing. */
static bool summary(demo_t *d)
{
    tkc_demo_summary_t s;
    tkc_demo_watch_summary(d->watch, &s);
    bool ok = true;
    printf("\nsummary\n");
    uint64_t rows = d->have_final ? d->final_rows : s.rows_delivered;
    printf("  rows delivered     %" PRIu64 " in %.0f s (%.0f rows/s on average)\n", rows,
           s.elapsed_ms / 1000.0, s.rows_per_s);
    if (s.scan_ms >= 0)
        printf("  initial scan       %" PRIu64 " regions, done %.1f s after the start (it "
               "replayed the %d s of warm-up writes)\n",
               s.regions_total, s.scan_ms / 1000.0, d->o.warmup_s);
    if (s.restarted) {
        char when[16];
        tkc_demo_watch_fmt_time(s.restart_at_ms, when, sizeof(when));
        printf("  store %" PRIu64 " restart    at %s; resolved-ts lag before: at most %.1f s\n",
               s.restart_store, when, s.lag_before_s);
        if (!s.spiked)
            printf("  lag                no visible spike (never above %.1f s)\n", s.threshold_s);
        else if (s.recovery_ms >= 0)
            printf("  lag                max %.1f s; recovered (back under %.1f s) %.1f s after "
                   "the restart\n",
                   s.lag_max_s, s.threshold_s, s.recovery_ms / 1000.0);
        else
            printf("  lag                max %.1f s; NOT back under %.1f s by the end\n",
                   s.lag_max_s, s.threshold_s);
        uint64_t opened = s.streams_opened_end - s.streams_opened_at_restart;
        printf("  streams            %" PRIu64 " opened to store %" PRIu64
               " after the restart (its newest stream id %" PRIu64 " -> %" PRIu64 ")%s\n",
               opened, s.restart_store, s.stream_id_at_restart, s.stream_id_end,
               opened == 0 ? "; no stream goes to a store that refuses connections, and its "
                             "leaders had moved"
                           : "");
    }
    if (d->have_final) {
        char when[40];
        tkc_clock_format_utc_ms(tkc_tso_physical_ms(d->final_checkpoint), when, sizeof(when));
        printf("  final checkpoint   %" PRIu64 " (%s), committed at shutdown\n",
               d->final_checkpoint, when);
        uint64_t truth = 0;
        if (count_truth(d->truth, d->start_ts, d->final_checkpoint, &truth)) {
            if (rows >= truth)
                printf("  completeness       tikv-sim committed %" PRIu64
                       " rows up to the checkpoint; %" PRIu64 " were delivered%s\n",
                       truth, rows,
                       rows == truth ? ": every one, once" : " (the extra ones were sent again "
                                                            "after reconnects: at-least-once)");
            else {
                printf("  completeness       MISSING ROWS: tikv-sim committed %" PRIu64
                       " rows up to the checkpoint, only %" PRIu64 " were delivered\n",
                       truth, rows);
                ok = false;
            }
        }
    }
    printf("  files              %s/ (connector.log, tikv-sim.log, truth.jsonl)\n", d->dir);
    fflush(stdout);
    return ok;
}

static void intro(demo_t *d)
{
    char when[16];
    tkc_demo_watch_fmt_time((int64_t)d->o.restart_at_s * 1000, when, sizeof(when));
    say(d, "tikv-kafka-cdc demo: a TiKV change feed into Kafka, all on this machine");
    say(d, "  tikv-sim   simulates PD and %d TiKV stores holding %d regions, with a steady "
           "write workload",
        d->o.stores, d->o.regions);
    say(d, "  connector  'tikv-kafka-cdc run --config %s' subscribes to every region's",
        d->o.config);
    say(d, "             change feed and writes each committed row to Kafka as an Avro message,");
    say(d, "             in commit-ts order, then resolved-ts watermarks and a checkpoint");
    if (d->conf->kafka.embedded_mock_brokers > 0)
        say(d, "  kafka      embedded: librdkafka's mock cluster (%d brokers) inside the "
               "connector process:\n             nothing to install, and gone when it stops",
            d->conf->kafka.embedded_mock_brokers);
    else
        say(d, "  kafka      %s (from the configuration)", d->conf->kafka.bootstrap_servers);
    if (d->o.restart_at_s > 0)
        say(d, "  at %-7s TiKV store %d restarts, to show the lag rising and recovering", when,
            d->o.restart_store);
    say(d, "  It runs %d s; Ctrl-C ends it early (cleanly). Files: %s/", d->o.duration_s, d->dir);
    say(d, "%s", "");
}

static int make_dir(demo_t *d, char *err, size_t err_size)
{
    if (d->o.dir) {
        if (mkdir(d->o.dir, 0755) != 0 && errno != EEXIST) {
            snprintf(err, err_size, "%s: %s", d->o.dir, strerror(errno));
            return -1;
        }
        snprintf(d->dir, sizeof(d->dir), "%s", d->o.dir);
    } else {
        snprintf(d->dir, sizeof(d->dir), "/tmp/tikv-kafka-cdc-demo.XXXXXX");
        if (!mkdtemp(d->dir)) {
            snprintf(err, err_size, "mkdtemp: %s", strerror(errno));
            return -1;
        }
    }
    snprintf(d->sim_log, sizeof(d->sim_log), "%s/tikv-sim.log", d->dir);
    snprintf(d->conn_log, sizeof(d->conn_log), "%s/connector.log", d->dir);
    snprintf(d->checkpoint, sizeof(d->checkpoint), "%s/checkpoint", d->dir);
    if (d->o.truth)
        snprintf(d->truth, sizeof(d->truth), "%s", d->o.truth);
    else
        snprintf(d->truth, sizeof(d->truth), "%s/truth.jsonl", d->dir);
    /* A previous run in the same directory must not leave a checkpoint
     * from another simulated cluster behind (the feed would resume there). */
    unlink(d->checkpoint);
    return 0;
}

int tkc_cmd_demo(int argc, char **argv)
{
    demo_t d;
    memset(&d, 0, sizeof(d));
    int rc = parse_opts(argc, argv, &d.o);
    if (rc >= 0)
        return rc;
    d.conf = tkc_cli_load_conf(d.o.config, NULL);
    if (!d.conf)
        return TKC_EXIT_USAGE;
    if (tkc_conf_span_count(d.conf) == 0) {
        fprintf(stderr, "demo: %s subscribes to nothing ([feed] tables or spans)\n",
                d.o.config);
        tkc_conf_destroy(d.conf);
        return TKC_EXIT_USAGE;
    }
    tkc_log_set_level(TKC_LOG_WARN); /* the demo's own log: problems only */
    d.self = self_exe();
    d.sim_path = d.o.sim ? tkc_strdup(d.o.sim) : find_sim(d.self);
    if (!d.self || !d.sim_path || !executable(d.sim_path)) {
        fprintf(stderr,
                "demo: %s%s not found; build it ('make build', or simply 'make demo') or "
                "pass --sim PATH\n",
                d.sim_path ? d.sim_path : "tikv-sim", d.self ? "" : " (or this binary)");
        rc = TKC_EXIT_UNAVAILABLE;
        goto out;
    }
    char err[512];
    if (make_dir(&d, err, sizeof(err)) != 0) {
        fprintf(stderr, "demo: %s\n", err);
        rc = TKC_EXIT_RUNTIME;
        goto out;
    }
    tkc_conf_topic_name(d.conf, 0, d.row_topic, sizeof(d.row_topic));
    tkc_conf_watermark_topic(d.conf, d.wm_topic, sizeof(d.wm_topic));
    setvbuf(stdout, NULL, _IOLBF, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    install_signals();
    d.watch = tkc_demo_watch_new();

    intro(&d);
    rc = start_sim(&d);
    if (rc < 0 && d.o.warmup_s > 0) {
        say(&d, "           warming up: the workload writes for %d s before the connector "
                "starts,", d.o.warmup_s);
        say(&d, "           so the connector's initial scan has history to catch up on");
        nap((int64_t)d.o.warmup_s * 1000);
    }
    if (rc < 0 && !interrupts)
        rc = start_connector(&d);
    if (rc < 0 && !interrupts)
        rc = live(&d);
    if (rc < 0)
        rc = TKC_EXIT_OK;
    if (interrupts)
        say(&d, "interrupted: stopping cleanly (Ctrl-C again to kill everything at once)");
    if (rc == TKC_EXIT_OK && interrupts < 2 && d.conn && tkc_demo_proc_running(d.conn, NULL))
        show_messages(&d);
    if (d.conn || d.sim)
        say(&d, "%s", "");
    stop_all(&d);
    if (d.conn && d.conn_code != 0 && rc == TKC_EXIT_OK) {
        fprintf(stderr, "demo: the connector did not stop cleanly (exit code %d)\n",
                d.conn_code);
        log_tail(d.conn_log, 12);
        rc = TKC_EXIT_RUNTIME;
    }
    if (d.sim && d.sim_code != 0 && rc == TKC_EXIT_OK) {
        fprintf(stderr, "demo: tikv-sim did not stop cleanly (exit code %d)\n", d.sim_code);
        rc = TKC_EXIT_RUNTIME;
    }
    if (interrupts >= 2)
        rc = DEMO_EXIT_KILLED;
    if (d.conn && !summary(&d))
        rc = TKC_EXIT_RUNTIME;
    if (d.conn && d.bootstrap[0] && d.conf->kafka.embedded_mock_brokers > 0)
        printf("\nThe embedded Kafka is gone with the connector. To watch the messages arrive,\n"
               "run kcat from another terminal during the next demo (broker from the 'kafka' "
               "line):\n  kcat -C -b 127.0.0.1:PORT -t %s -o end -u -f '%%t [%%p] @%%o key %%K B, "
               "value %%S B\\n'\n",
               d.row_topic);
    curl_global_cleanup();

out:
    tkc_demo_proc_destroy(d.conn);
    tkc_demo_proc_destroy(d.sim);
    tkc_demo_watch_destroy(d.watch);
    tkc_free(d.sim_path);
    tkc_free(d.self);
    tkc_conf_destroy(d.conf);
    return rc;
}
