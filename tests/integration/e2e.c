/*
 * e2e.c: the end-to-end harness (see e2e.h).
 *
 * Processes. tikv-sim and the connector are started with fork + execve,
 * with the environment minus the connector's config overrides
 * TKC_<SECTION>_* (the test's own variables, such as
 * TKC_KAFKA_BOOTSTRAP_FILE, would otherwise be read as such), stdout and
 * stderr appended to a log file in the work directory, and
 * PR_SET_PDEATHSIG(SIGKILL) so that they die with the test process whatever
 * happens to it (check kills a test child on timeout; a failed ck_assert
 * exits it without running our teardown). An atexit hook also kills them,
 * for the exit() path.
 *
 * Knowing the connector is up: it logs "event=http_listening ... port=N"
 * (we ask for port 0) and "event=running"; the harness reads the log from
 * the offset where the current run started, so an earlier run's lines never
 * count.
 *
 * Ending a run. After the process is gone the harness reads, from outside,
 * the checkpoint now stored (the compacted topic with the isolation level of
 * the delivery mode, or the file) and the row topic's end offsets, before
 * the next run starts. A checkpoint record or a transaction commit that was
 * already on its way when the process died may still land after that read,
 * so the value read is a lower bound of what the next run resumes from; the
 * checker's rules stay sound with a lower bound (it makes the duplicate and
 * checkpoint rules more lenient; losses are judged against the truth).
 */
#include "integration/e2e.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "avro_codec.h"
#include "kafka/kafka_test.h"
#include "util/clock.h"
#include "util/mem.h"

#ifndef TKC_CLI_PATH
#error "TKC_CLI_PATH must name the tikv-kafka-cdc binary"
#endif
#ifndef TKC_SIM_PATH
#error "TKC_SIM_PATH must name the tikv-sim binary"
#endif
#ifndef TKC_SCHEMA_DIR
#error "TKC_SCHEMA_DIR must name the schemas directory"
#endif

#define MAX_RUNS 256
#define FEED_ID "e2e"
#define TABLE_ID 100 /* tikv-sim's default --table-id */

extern char **environ;

struct tkc_e2e_s {
    tkc_e2e_opts_t o;
    char dir[256];
    char *bootstrap;
    char *prefix;
    char row_topic[320], wm_topic[320], ck_topic[320];
    char conf_path[300], ck_file[300], truth_path[300], sim_log[300], conn_log[300];
    /* tikv-sim */
    pid_t sim_pid;
    char pd_addr[64], control[64];
    /* connector */
    pid_t conn_pid;
    int http_port;
    tkc_e2e_run_t runs[MAX_RUNS];
    size_t n_runs;
    long run_log_offset; /* where the current run's log lines start */
    uint64_t start_ts;   /* the first run's */
    int unexpected_exits;
    bool want_running; /* started and not stopped by the harness */
    CURL *curl;
};

/* For the atexit hook: the processes of the (single) live harness. */
static tkc_e2e_t *live;

static void kill_children(void)
{
    if (!live)
        return;
    if (live->conn_pid > 0)
        kill(live->conn_pid, SIGKILL);
    if (live->sim_pid > 0)
        kill(live->sim_pid, SIGKILL);
}

static void msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The last @p max bytes of a file, for failure messages. */
static char *file_tail(const char *path, long max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return tkc_strdup("(no log)");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > max ? size - max : 0;
    fseek(f, from, SEEK_SET);
    char *buf = tkc_malloc((size_t)(size - from) + 1);
    size_t n = fread(buf, 1, (size_t)(size - from), f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static char *file_read_from(const char *path, long from)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return tkc_strdup("");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    if (from > size)
        from = size;
    fseek(f, from, SEEK_SET);
    char *buf = tkc_malloc((size_t)(size - from) + 1);
    size_t n = fread(buf, 1, (size_t)(size - from), f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* ------------------------------------------------------------ processes */

static pid_t spawn(const char *const argv[], const char *log_path)
{
    /* the child's environment: ours without the connector's config
     * overrides (TKC_<SECTION>_...), which the test's own variables such as
     * TKC_KAFKA_BOOTSTRAP_FILE would otherwise look like */
    static const char *const strip[] = {"TKC_FEED_",       "TKC_PD_",
                                        "TKC_KAFKA_",      "TKC_SCHEMA_REGISTRY_",
                                        "TKC_CHECKPOINT_", "TKC_HTTP_",
                                        "TKC_LOG_",        "TKC_RDKAFKA_"};
    size_t n = 0;
    for (char **e = environ; *e; e++)
        n++;
    char **env = tkc_calloc(n + 1, sizeof(char *));
    size_t k = 0;
    for (char **e = environ; *e; e++) {
        bool keep = true;
        for (size_t i = 0; i < sizeof(strip) / sizeof(strip[0]); i++)
            if (strncmp(*e, strip[i], strlen(strip[i])) == 0)
                keep = false;
        if (keep)
            env[k++] = *e;
    }
    env[k] = NULL;

    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "open %s: %s", log_path, strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, STDIN_FILENO);
        setpgid(0, 0);
        execve(argv[0], (char *const *)argv, env);
        dprintf(STDERR_FILENO, "e2e: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    tkc_free(env);
    return pid;
}

static int status_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Waits up to timeout_ms for pid; SIGKILLs it after. @returns its status code, or -1 on timeout. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int64_t deadline = tkc_clock_mono_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return status_code(st);
        if (r < 0)
            return -1;
        if (tkc_clock_mono_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        msleep(20);
    }
}

/* ------------------------------------------------------------ HTTP */

typedef struct buf_s {
    char *p;
    size_t n;
} buf_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
    buf_t *b = opaque;
    size_t len = size * nmemb;
    b->p = tkc_realloc(b->p, b->n + len + 1);
    memcpy(b->p + b->n, data, len);
    b->n += len;
    b->p[b->n] = 0;
    return len;
}

/* @returns the HTTP status (0: no answer); *body malloc'd (may be NULL). */
static long http(tkc_e2e_t *e, const char *method, const char *url, const char *body,
                 char **out)
{
    buf_t b = {NULL, 0};
    CURL *c = e->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    struct curl_slist *hdr = NULL;
    if (body) {
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    if (out)
        *out = b.p;
    else
        tkc_free(b.p);
    return status;
}

/* ------------------------------------------------------------ setup */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "create %s: %s", path, strerror(errno));
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_config(tkc_e2e_t *e)
{
    const tkc_e2e_opts_t *o = &e->o;
    char text[8192];
    int n = snprintf(
        text, sizeof(text),
        "; written by tests/integration/e2e.c\n"
        "[feed]\n"
        "id = " FEED_ID "\n"
        "tables = %d\n"
        "start_ts = now\n"
        "delivery = %s\n"
        "backoff_max = 1s\n"
        "%s"
        "[pd]\n"
        "endpoints = %s\n"
        "[kafka]\n"
        "bootstrap_servers = %s\n"
        "topic_prefix = %s\n"
        "partitions = %d\n"
        "replication_factor = 1\n"
        "watermark_min_interval = 500ms\n"
        "%s"
        "[checkpoint]\n"
        "store = %s\n"
        "%s%s%s"
        "[http]\n"
        "listen = 127.0.0.1:0\n"
        "[log]\n"
        "level = info\n",
        TABLE_ID, o->exactly_once ? "exactly-once" : "at-least-once",
        o->conf_feed ? o->conf_feed : "", e->pd_addr, e->bootstrap, e->prefix, o->partitions,
        o->conf_kafka ? o->conf_kafka : "",
        o->ckpt_store == TKC_E2E_CKPT_FILE ? "file" : "kafka",
        o->ckpt_store == TKC_E2E_CKPT_FILE ? "path = " : "",
        o->ckpt_store == TKC_E2E_CKPT_FILE ? e->ck_file : "",
        o->ckpt_store == TKC_E2E_CKPT_FILE ? "\n" : "");
    ck_assert(n > 0 && (size_t)n < sizeof(text));
    write_file(e->conf_path, text);
}

static void start_sim(tkc_e2e_t *e)
{
    const tkc_e2e_opts_t *o = &e->o;
    char stores[16], regions[16], seed[32], ports[300];
    snprintf(stores, sizeof(stores), "%d", o->stores);
    snprintf(regions, sizeof(regions), "%d", o->regions);
    snprintf(seed, sizeof(seed), "%" PRIu64, o->seed);
    snprintf(ports, sizeof(ports), "%s/sim.json", e->dir);
    const char *argv[64] = {TKC_SIM_PATH, "--stores", stores, "--regions", regions, "--seed",
                            seed, "--rate", "0", "--truth", e->truth_path, "--ports-file", ports};
    size_t n = 13;
    for (size_t i = 0; o->sim_args && o->sim_args[i] && n < 62; i++)
        argv[n++] = o->sim_args[i];
    argv[n] = NULL;
    e->sim_pid = spawn(argv, e->sim_log);

    int64_t deadline = tkc_clock_mono_ms() + 60000;
    json_t *j = NULL;
    while (!j) {
        int st;
        if (waitpid(e->sim_pid, &st, WNOHANG) == e->sim_pid) {
            e->sim_pid = 0;
            char *tail = file_tail(e->sim_log, 3000);
            ck_abort_msg("tikv-sim exited (%d) at start-up:\n%s", status_code(st), tail);
        }
        j = json_load_file(ports, 0, NULL);
        if (!j) {
            ck_assert_msg(tkc_clock_mono_ms() < deadline, "tikv-sim did not start (%s)", e->dir);
            msleep(50);
        }
    }
    const char *pd = json_string_value(json_object_get(j, "pd"));
    const char *ctl = json_string_value(json_object_get(j, "control"));
    ck_assert_msg(pd && ctl, "bad ports file %s", ports);
    snprintf(e->pd_addr, sizeof(e->pd_addr), "%s", pd);
    snprintf(e->control, sizeof(e->control), "%s", ctl);
    json_decref(j);
}

tkc_e2e_t *tkc_e2e_new(const tkc_e2e_opts_t *opts)
{
    ck_assert_msg(live == NULL, "one harness at a time");
    ck_assert(opts && opts->name);
    tkc_e2e_t *e = tkc_calloc(1, sizeof(*e));
    e->o = *opts;
    if (!e->o.stores)
        e->o.stores = 3;
    if (!e->o.regions)
        e->o.regions = 1000;
    if (!e->o.seed)
        e->o.seed = 1;
    if (!e->o.partitions)
        e->o.partitions = 3;
    ck_assert(e->o.partitions <= TKC_E2E_MAX_PARTITIONS);
    if (e->o.exactly_once)
        e->o.ckpt_store = TKC_E2E_CKPT_KAFKA; /* exactly-once needs it */
    live = e;
    static bool hooked;
    if (!hooked) {
        atexit(kill_children);
        hooked = true;
    }

    char err[512];
    e->bootstrap = tkc_kafka_test_bootstrap(err, sizeof(err));
    ck_assert_msg(e->bootstrap != NULL, "no Kafka broker: %s", err);

    snprintf(e->dir, sizeof(e->dir), "/tmp/tkc-e2e-%s-XXXXXX", opts->name);
    ck_assert_msg(mkdtemp(e->dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(e->conf_path, sizeof(e->conf_path), "%s/connector.ini", e->dir);
    snprintf(e->ck_file, sizeof(e->ck_file), "%s/checkpoint", e->dir);
    snprintf(e->truth_path, sizeof(e->truth_path), "%s/truth.jsonl", e->dir);
    snprintf(e->sim_log, sizeof(e->sim_log), "%s/sim.log", e->dir);
    snprintf(e->conn_log, sizeof(e->conn_log), "%s/connector.log", e->dir);

    char stem[64];
    snprintf(stem, sizeof(stem), "e2e-%s", opts->name);
    e->prefix = tkc_kafka_test_topic_name(stem);
    ck_assert(e->prefix != NULL);
    snprintf(e->row_topic, sizeof(e->row_topic), "%s.t%d", e->prefix, TABLE_ID);
    snprintf(e->wm_topic, sizeof(e->wm_topic), "%s.watermark", e->prefix);
    snprintf(e->ck_topic, sizeof(e->ck_topic), "%s.checkpoint", e->prefix);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    e->curl = curl_easy_init();
    ck_assert(e->curl != NULL);

    start_sim(e);
    write_config(e);
    printf("e2e %s: dir=%s topics=%s.* pd=%s control=%s\n", opts->name, e->dir, e->prefix,
           e->pd_addr, e->control);
    fflush(stdout);
    return e;
}

static void rm_rf(const char *dir)
{
    const char *argv[] = {"/bin/rm", "-rf", dir, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

void tkc_e2e_destroy(tkc_e2e_t *e)
{
    if (!e)
        return;
    if (e->conn_pid > 0) {
        kill(e->conn_pid, SIGKILL);
        waitpid(e->conn_pid, NULL, 0);
    }
    if (e->sim_pid > 0) {
        kill(e->sim_pid, SIGKILL);
        waitpid(e->sim_pid, NULL, 0);
    }
    const char *keep = getenv("TKC_E2E_KEEP");
    if (!(keep && strcmp(keep, "1") == 0))
        rm_rf(e->dir);
    curl_easy_cleanup(e->curl);
    curl_global_cleanup();
    free(e->bootstrap);
    free(e->prefix);
    if (live == e)
        live = NULL;
    tkc_free(e);
}

const char *tkc_e2e_dir(const tkc_e2e_t *e)
{
    return e->dir;
}

size_t tkc_e2e_runs(const tkc_e2e_t *e)
{
    return e->n_runs;
}

int tkc_e2e_unexpected_exits(const tkc_e2e_t *e)
{
    return e->unexpected_exits;
}

/* ------------------------------------------------------------ connector */

/* Value of "key=" in the first line after offset `from` that contains
 * `event`, parsed as u64; false if there is none yet. */
static bool log_find_u64(const char *log, const char *event, const char *key, uint64_t *out)
{
    const char *p = log;
    while ((p = strstr(p, event)) != NULL) {
        const char *eol = strchr(p, '\n');
        const char *k = strstr(p, key);
        if (k && (!eol || k < eol)) {
            *out = strtoull(k + strlen(key), NULL, 10);
            return true;
        }
        p += strlen(event);
    }
    return false;
}

static void end_run(tkc_e2e_t *e, int status, bool killed);

void tkc_e2e_connector_start(tkc_e2e_t *e)
{
    static int early_exits; /* consecutive, across the recursion below */
    ck_assert_msg(e->conn_pid <= 0, "connector already runs");
    ck_assert_msg(e->n_runs < MAX_RUNS, "too many runs");
    FILE *f = fopen(e->conn_log, "a");
    ck_assert(f != NULL);
    fprintf(f, "===== e2e: run %zu starts at %" PRId64 " =====\n", e->n_runs, tkc_clock_wall_ms());
    fclose(f);
    e->run_log_offset = file_size(e->conn_log);

    tkc_e2e_run_t *run = &e->runs[e->n_runs++];
    memset(run, 0, sizeof(*run));
    run->end_ms = INT64_MAX;
    for (int p = 0; p < TKC_E2E_MAX_PARTITIONS; p++)
        run->end_offsets[p] = -1;
    run->start_ms = tkc_clock_wall_ms();
    const char *bin = getenv("TKC_E2E_CONNECTOR");
    const char *argv[] = {bin && *bin ? bin : TKC_CLI_PATH, "run", "--config", e->conf_path, NULL};
    e->conn_pid = spawn(argv, e->conn_log);
    e->http_port = 0;
    e->want_running = true;

    /* up when it logged its HTTP port and event=running */
    int64_t deadline = tkc_clock_mono_ms() + 90000;
    for (;;) {
        char *log = file_read_from(e->conn_log, e->run_log_offset);
        uint64_t port = 0, ts = 0, from = 0;
        bool have_port = log_find_u64(log, "event=http_listening", "port=", &port);
        bool running = log_find_u64(log, "comp=run event=running", "start_ts=", &ts);
        bool opened = log_find_u64(log, "event=opened", "start_ts=", &from);
        tkc_free(log);
        if (have_port && running) {
            e->http_port = (int)port;
            if (e->n_runs == 1)
                e->start_ts = ts;
            run->resumed_from = opened ? from : ts;
            return;
        }
        int st;
        if (waitpid(e->conn_pid, &st, WNOHANG) == e->conn_pid) {
            if (e->o.restart_on_exit && ++early_exits <= 10) {
                printf("e2e: connector exited (%d) before running; starting it again\n",
                       status_code(st));
                fflush(stdout);
                e->unexpected_exits++;
                end_run(e, status_code(st), false);
                msleep(1000);
                tkc_e2e_connector_start(e);
                early_exits = 0;
                return;
            }
            e->conn_pid = 0;
            char *tail = file_tail(e->conn_log, 4000);
            ck_abort_msg("connector exited (%d) before running (%s):\n%s", status_code(st),
                         e->dir, tail);
        }
        if (tkc_clock_mono_ms() >= deadline) {
            char *tail = file_tail(e->conn_log, 4000);
            ck_abort_msg("connector not running after 90 s (%s):\n%s", e->dir, tail);
        }
        msleep(50);
    }
}


/* The newest checkpoint of the feed as stored now; 0 if there is none. */
static uint64_t stored_checkpoint(tkc_e2e_t *e)
{
    if (e->o.ckpt_store == TKC_E2E_CKPT_FILE) {
        FILE *f = fopen(e->ck_file, "r");
        if (!f)
            return 0;
        char buf[512] = "";
        uint64_t ts = 0;
        if (fgets(buf, sizeof(buf), f)) {
            const char *p = strstr(buf, " ts=");
            if (p)
                ts = strtoull(p + 4, NULL, 10);
        }
        fclose(f);
        return ts;
    }
    char err[512];
    tkc_avro_codec_t *codec = tkc_avro_codec_new(TKC_SCHEMA_DIR, NULL, err, sizeof(err));
    ck_assert_msg(codec != NULL, "%s", err);
    uint64_t ts = 0;
    /* the topic may not exist yet (killed early) or the broker may be slow
     * to answer: retry a while, then take "none" */
    for (int attempt = 0; attempt < 5; attempt++) {
        tkc_kafka_test_msgs_t msgs;
        if (tkc_kafka_test_consume_all(e->bootstrap, e->ck_topic,
                                       e->o.exactly_once ? TKC_KAFKA_TEST_READ_COMMITTED
                                                         : TKC_KAFKA_TEST_READ_UNCOMMITTED,
                                       30000, &msgs, err, sizeof(err)) != 0) {
            msleep(1000);
            continue;
        }
        for (size_t i = 0; i < msgs.count; i++) {
            const tkc_kafka_test_msg_t *m = &msgs.msgs[i];
            tkc_avro_checkpoint_t ck = {0};
            if (m->key && strcmp(m->key, FEED_ID) == 0 && m->value &&
                tkc_avro_codec_decode_checkpoint(codec, m->value, m->value_len, &ck, err,
                                                 sizeof(err)) == TKC_ERR_OK)
                ts = ck.checkpoint_ts;
            tkc_avro_checkpoint_clear(&ck);
        }
        tkc_kafka_test_msgs_free(&msgs);
        break;
    }
    tkc_avro_codec_destroy(codec);
    return ts;
}

static void read_end_offsets(tkc_e2e_t *e, int64_t *out)
{
    char err[512];
    rd_kafka_conf_t *kc = tkc_kafka_test_conf(e->bootstrap, err, sizeof(err));
    ck_assert_msg(kc != NULL, "%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    ck_assert_msg(rk != NULL, "%s", err);
    for (int p = 0; p < e->o.partitions; p++) {
        int64_t lo, hi;
        out[p] = rd_kafka_query_watermark_offsets(rk, e->row_topic, p, &lo, &hi, 30000) ==
                         RD_KAFKA_RESP_ERR_NO_ERROR
                     ? hi
                     : -1;
    }
    rd_kafka_destroy(rk);
}

/* Records the end of the current run; the process is already reaped. */
static void end_run(tkc_e2e_t *e, int status, bool killed)
{
    tkc_e2e_run_t *run = &e->runs[e->n_runs - 1];
    run->end_ms = tkc_clock_wall_ms();
    run->ended = true;
    run->killed = killed;
    run->exit_status = status;
    e->conn_pid = 0;
    e->http_port = 0;
    run->ckpt_at_end = stored_checkpoint(e);
    read_end_offsets(e, run->end_offsets);
    FILE *f = fopen(e->conn_log, "a");
    if (f) {
        fprintf(f, "===== e2e: run %zu ended at %" PRId64 " status=%d checkpoint=%" PRIu64
                   " =====\n",
                e->n_runs - 1, run->end_ms, status, run->ckpt_at_end);
        fclose(f);
    }
}

int tkc_e2e_connector_stop(tkc_e2e_t *e, int sig)
{
    ck_assert_msg(e->conn_pid > 0, "connector is not running");
    e->want_running = false;
    ck_assert_int_eq(kill(e->conn_pid, sig), 0);
    int status = wait_exit(e->conn_pid, sig == SIGKILL ? 10000 : 90000);
    if (status < 0) {
        e->conn_pid = 0;
        char *tail = file_tail(e->conn_log, 4000);
        ck_abort_msg("connector did not exit within 90 s of signal %d (%s):\n%s", sig, e->dir,
                     tail);
    }
    end_run(e, status, sig == SIGKILL);
    return status;
}

/* If the connector exited by itself, reaps it and ends its run. */
static bool reap_unexpected(tkc_e2e_t *e)
{
    if (e->conn_pid <= 0)
        return false;
    int st;
    if (waitpid(e->conn_pid, &st, WNOHANG) != e->conn_pid)
        return false;
    int status = status_code(st);
    e->unexpected_exits++;
    char *tail = file_tail(e->conn_log, 1500);
    printf("e2e: connector exited by itself with status %d. Log tail:\n%s\n", status, tail);
    fflush(stdout);
    tkc_free(tail);
    end_run(e, status, false);
    return true;
}

bool tkc_e2e_connector_alive(tkc_e2e_t *e)
{
    reap_unexpected(e);
    return e->conn_pid > 0;
}

bool tkc_e2e_connector_supervise(tkc_e2e_t *e)
{
    reap_unexpected(e);
    if (!e->want_running || e->conn_pid > 0)
        return false;
    tkc_e2e_connector_start(e);
    return true;
}

json_t *tkc_e2e_connector_status(tkc_e2e_t *e)
{
    if (e->http_port <= 0)
        return NULL;
    char url[128], *body = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/status", e->http_port);
    json_t *j = NULL;
    if (http(e, "GET", url, NULL, &body) == 200 && body)
        j = json_loads(body, 0, NULL);
    tkc_free(body);
    return j;
}

char *tkc_e2e_connector_metrics(tkc_e2e_t *e)
{
    if (e->http_port <= 0)
        return NULL;
    char url[128], *body = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", e->http_port);
    if (http(e, "GET", url, NULL, &body) == 200)
        return body;
    tkc_free(body);
    return NULL;
}

double tkc_e2e_metric(const char *text, const char *name, const char *label_match)
{
    if (!text)
        return -1;
    size_t nl = strlen(name);
    double sum = 0;
    bool any = false;
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (line[0] != '#' && len > nl && strncmp(line, name, nl) == 0 &&
            (line[nl] == '{' || line[nl] == ' ')) {
            const char *labels_end = line + nl;
            if (line[nl] == '{')
                labels_end = memchr(line, '}', len);
            bool match = true;
            if (label_match) {
                size_t ml = strlen(label_match);
                match = false;
                for (const char *q = line + nl; labels_end && q + ml <= labels_end; q++)
                    if (memcmp(q, label_match, ml) == 0) {
                        match = true;
                        break;
                    }
            }
            if (match && labels_end) {
                const char *v = memchr(labels_end, ' ', (size_t)(line + len - labels_end));
                if (v) {
                    sum += strtod(v + 1, NULL);
                    any = true;
                }
            }
        }
        line += len + (eol ? 1 : 0);
    }
    return any ? sum : -1;
}

void tkc_e2e_wait_checkpoint(tkc_e2e_t *e, int timeout_ms)
{
    int64_t deadline = tkc_clock_mono_ms() + timeout_ms;
    uint64_t from = e->runs[e->n_runs - 1].resumed_from, ck = 0;
    for (;;) {
        json_t *st = tkc_e2e_connector_status(e);
        json_t *v = json_object_get(json_object_get(st, "checkpoint"), "ts");
        if (json_is_integer(v))
            ck = (uint64_t)json_integer_value(v);
        json_decref(st);
        if (ck > from)
            return;
        ck_assert_msg(tkc_clock_mono_ms() < deadline,
                      "no checkpoint above %" PRIu64 " within %d ms (%s)", from, timeout_ms,
                      e->dir);
        msleep(100);
    }
}

/* ------------------------------------------------------------ simulator */

json_t *tkc_e2e_sim_op(tkc_e2e_t *e, const char *json_op)
{
    char url[128], *body = NULL;
    snprintf(url, sizeof(url), "http://%s/fault", e->control);
    long st = http(e, "POST", url, json_op, &body);
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    ck_assert_msg((st == 200 || st == 400) && j, "tikv-sim /fault %s: status %ld body %s", json_op,
                  st, body ? body : "(none)");
    tkc_free(body);
    return j;
}

json_t *tkc_e2e_sim_op_ok(tkc_e2e_t *e, const char *json_op)
{
    json_t *j = tkc_e2e_sim_op(e, json_op);
    if (!json_is_true(json_object_get(j, "ok"))) {
        char *s = json_dumps(j, 0);
        ck_abort_msg("tikv-sim refused %s: %s", json_op, s);
    }
    return j;
}

json_t *tkc_e2e_sim_get(tkc_e2e_t *e, const char *path)
{
    char url[256], *body = NULL;
    snprintf(url, sizeof(url), "http://%s%s", e->control, path);
    long st = http(e, "GET", url, NULL, &body);
    json_t *j = st == 200 && body ? json_loads(body, 0, NULL) : NULL;
    ck_assert_msg(j != NULL, "tikv-sim GET %s: status %ld", path, st);
    tkc_free(body);
    return j;
}

void tkc_e2e_workload(tkc_e2e_t *e, int rows_per_s)
{
    char op[128];
    snprintf(op, sizeof(op), "{\"op\":\"set_rate\",\"rows_per_s\":%d}", rows_per_s);
    json_decref(tkc_e2e_sim_op_ok(e, op));
}

/* ------------------------------------------------------------ broker */

void tkc_e2e_broker(tkc_e2e_t *e, const char *cmd)
{
    (void)e;
    const char *script = getenv("TKC_KAFKA_BROKER_SCRIPT");
    const char *dir = getenv("TKC_KAFKA_BROKER_DIR");
    ck_assert_msg(script && dir, "TKC_KAFKA_BROKER_SCRIPT / _DIR not set (ENV ${TKC_KAFKA_ENV})");
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        if (nul >= 0)
            dup2(nul, STDOUT_FILENO);
        execl(script, script, cmd, dir, (char *)NULL);
        _exit(127);
    }
    int st = wait_exit(pid, 180000);
    ck_assert_msg(st == 0, "kafka-broker.sh %s failed (%d)", cmd, st);
}

/* ------------------------------------------------------------ end */

static uint64_t truth_max_commit(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    uint64_t max = 0;
    while (getline(&line, &cap, f) > 0) {
        const char *p = strstr(line, "\"commit_ts\":");
        if (p) {
            uint64_t ts = strtoull(p + 12, NULL, 10);
            if (ts > max)
                max = ts;
        }
    }
    free(line);
    fclose(f);
    return max;
}

static json_int_t jpath_int(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(o, a), b);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

uint64_t tkc_e2e_drain(tkc_e2e_t *e, int timeout_ms)
{
    int64_t deadline = tkc_clock_mono_ms() + timeout_ms;
    json_decref(tkc_e2e_sim_op_ok(e, "{\"op\":\"pause_workload\"}"));
    json_int_t in_flight = -1, locks = -1;
    for (;;) {
        tkc_e2e_connector_supervise(e);
        json_t *st = tkc_e2e_sim_get(e, "/stats");
        in_flight = jpath_int(st, "workload", "in_flight");
        locks = jpath_int(st, "model", "locks");
        json_decref(st);
        if (in_flight == 0 && locks == 0)
            break;
        ck_assert_msg(tkc_clock_mono_ms() < deadline,
                      "drain: tikv-sim still has %lld transactions in flight and %lld locks (%s)",
                      (long long)in_flight, (long long)locks, e->dir);
        msleep(200);
    }
    msleep(400); /* the truth file is flushed every 100 ms */
    uint64_t last = truth_max_commit(e->truth_path);
    uint64_t ck = 0;
    for (;;) {
        tkc_e2e_connector_supervise(e);
        json_t *st = tkc_e2e_connector_status(e);
        json_t *v = json_object_get(json_object_get(st, "checkpoint"), "ts");
        if (json_is_integer(v))
            ck = (uint64_t)json_integer_value(v);
        json_decref(st);
        if (ck >= last)
            return last;
        if (tkc_clock_mono_ms() >= deadline) {
            char *tail = file_tail(e->conn_log, 3000);
            ck_abort_msg("drain: connector checkpoint %" PRIu64
                         " does not reach the last commit %" PRIu64 " (lag %.1f s) (%s):\n%s",
                         ck, last,
                         (double)(tkc_tso_physical_ms(last) - tkc_tso_physical_ms(ck)) / 1000.0,
                         e->dir, tail);
        }
        msleep(250);
    }
}

/* Sanitizer reports in a log: each is a bug, whatever the exit status says. */
static void assert_no_sanitizer_reports(const char *path)
{
    char *log = file_read_from(path, 0);
    static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                        "runtime error:", "WARNING: ThreadSanitizer"};
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        const char *p = strstr(log, marks[i]);
        if (p) {
            const char *from = p - log > 200 ? p - 200 : log;
            char excerpt[2400];
            snprintf(excerpt, sizeof(excerpt), "%s", from);
            ck_abort_msg("%s reports \"%s\":\n%s", path, marks[i], excerpt);
        }
    }
    tkc_free(log);
}

void tkc_e2e_finish(tkc_e2e_t *e, tkc_e2e_report_t *rep)
{
    if (e->conn_pid > 0) {
        int st = tkc_e2e_connector_stop(e, SIGTERM);
        if (st != 0) {
            char *tail = file_tail(e->conn_log, 3000);
            ck_abort_msg("graceful stop (SIGTERM) exited %d, not 0 (%s):\n%s", st, e->dir, tail);
        }
    }
    ck_assert_int_eq(kill(e->sim_pid, SIGTERM), 0);
    int sst = wait_exit(e->sim_pid, 60000);
    e->sim_pid = 0;
    if (sst != 0) {
        char *tail = file_tail(e->sim_log, 3000);
        ck_abort_msg("tikv-sim exited %d on SIGTERM (%s):\n%s", sst, e->dir, tail);
    }
    assert_no_sanitizer_reports(e->conn_log);
    assert_no_sanitizer_reports(e->sim_log);

    tkc_e2e_check_input_t in;
    tkc_e2e_check_input(e, &in);
    int rc = tkc_e2e_check(&in, rep);
    printf("e2e %s (%s):\n", e->o.name, e->dir);
    for (size_t r = 0; r < e->n_runs; r++)
        printf("e2e run %zu: %s, exit %d, resumed from %" PRIu64 ", checkpoint at end %" PRIu64
               "\n",
               r, e->runs[r].killed ? "killed" : "stopped", e->runs[r].exit_status,
               e->runs[r].resumed_from, e->runs[r].ckpt_at_end);
    tkc_e2e_report_print(rep, stdout);
    ck_assert_msg(rc == 0, "checker could not run: %s", rep->error_texts[0]);
}

void tkc_e2e_check_input(tkc_e2e_t *e, tkc_e2e_check_input_t *in)
{
    *in = (tkc_e2e_check_input_t){
        .truth_path = e->truth_path,
        .bootstrap = e->bootstrap,
        .schema_dir = TKC_SCHEMA_DIR,
        .feed_id = FEED_ID,
        .row_topic = e->row_topic,
        .watermark_topic = e->wm_topic,
        .checkpoint_topic = e->o.ckpt_store == TKC_E2E_CKPT_KAFKA ? e->ck_topic : NULL,
        .checkpoint_file = e->o.ckpt_store == TKC_E2E_CKPT_FILE ? e->ck_file : NULL,
        .partitions = e->o.partitions,
        .exactly_once = e->o.exactly_once,
        .start_ts = e->start_ts,
        .runs = e->runs,
        .n_runs = e->n_runs,
    };
}

const char *tkc_e2e_truth_path(const tkc_e2e_t *e)
{
    return e->truth_path;
}
