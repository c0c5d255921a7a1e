/*
 * check_sim_cli.c: the real tikv-sim binary as a child process.
 *
 * Starts TIKV_SIM_BIN (the path CMake compiled in) with a pipe on stdout,
 * parses the first line, checks it against the ports file, talks to the
 * control endpoint (healthz, a fault) and to PD over gRPC (GetMembers gives
 * the same cluster id), then sends SIGTERM and expects exit status 0 and a
 * non-empty, well-formed truth file. Also --help, a bad option, and a
 * scenario given on the command line.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <jansson.h>

#include "pdpb.pb-c.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/mem.h"
#include "../test_file.h"

extern char **environ;

typedef struct {
    pid_t pid;
    int out_fd;
    char line[4096];
    json_t *hello;
} sim_proc_t;

/* Spawns tikv-sim with @p args (NULL-terminated, after argv[0]). */
static void sim_spawn(sim_proc_t *p, const char *const *args)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    const char *argv[40];
    int n = 0;
    argv[n++] = TIKV_SIM_BIN;
    for (int i = 0; args[i] && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    ck_assert_int_eq(posix_spawn(&p->pid, TIKV_SIM_BIN, &fa, NULL, (char *const *)argv, environ),
                     0);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    p->out_fd = fds[0];
    p->hello = NULL;
}

/* Reads the first stdout line within @p ms; @returns 0 or -1. */
static int sim_read_line(sim_proc_t *p, int ms)
{
    size_t len = 0;
    int64_t deadline = tkc_clock_mono_ms() + ms;
    while (len < sizeof(p->line) - 1) {
        struct pollfd pfd = {p->out_fd, POLLIN, 0};
        int left = (int)(deadline - tkc_clock_mono_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            return -1;
        ssize_t r = read(p->out_fd, p->line + len, 1);
        if (r <= 0)
            return -1;
        if (p->line[len] == '\n') {
            p->line[len] = 0;
            return 0;
        }
        len++;
    }
    return -1;
}

/* SIGTERM and wait up to @p ms; @returns the exit status, or -1. */
static int sim_stop(sim_proc_t *p, int sig, int ms)
{
    kill(p->pid, sig);
    int status = 0;
    for (int i = 0; i < ms / 10; i++) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            close(p->out_fd);
            json_decref(p->hello);
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            return 128 + WTERMSIG(status);
        }
        usleep(10000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    close(p->out_fd);
    json_decref(p->hello);
    return -1;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *opaque)
{
    char **b = opaque;
    size_t old = *b ? strlen(*b) : 0;
    *b = tkc_realloc(*b, old + size * n + 1);
    memcpy(*b + old, ptr, size * n);
    (*b)[old + size * n] = 0;
    return size * n;
}

static long http(const char *hostport, const char *method, const char *path, const char *body,
                 json_t **out)
{
    char url[256];
    snprintf(url, sizeof(url), "http://%s%s", hostport, path);
    CURL *h = curl_easy_init();
    char *b = NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    long code = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    if (out)
        *out = b ? json_loads(b, 0, NULL) : NULL;
    tkc_free(b);
    return code;
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void teardown(void)
{
    curl_global_cleanup();
}

/* GetMembers over gRPC (cluster id is learnt from it). */
static uint64_t pd_cluster_id(const char *pd_addr)
{
    grpc_init();
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(pd_addr, cr, NULL);
    grpc_channel_credentials_release(cr);
    grpc_call *call = grpc_channel_create_call(
        ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, grpc_slice_from_static_string("/pdpb.PD/GetMembers"),
        NULL, gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(10, GPR_TIMESPAN)),
        NULL);
    Pdpb__GetMembersRequest rq = PDPB__GET_MEMBERS_REQUEST__INIT;
    uint8_t buf[16];
    size_t n = pdpb__get_members_request__pack(&rq, buf);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, n);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array im, tm;
    grpc_metadata_array_init(&im);
    grpc_metadata_array_init(&tm);
    grpc_status_code st = GRPC_STATUS_UNKNOWN;
    grpc_slice details;
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &im;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.status = &st;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.trailing_metadata = &tm;
    int tag;
    ck_assert_int_eq(grpc_call_start_batch(call, ops, 6, &tag, NULL), GRPC_CALL_OK);
    grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    uint64_t cid = 0;
    if (st == GRPC_STATUS_OK && recv) {
        grpc_byte_buffer_reader rd;
        grpc_byte_buffer_reader_init(&rd, recv);
        grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        Pdpb__GetMembersResponse *resp = pdpb__get_members_response__unpack(
            NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
        grpc_slice_unref(all);
        if (resp) {
            cid = resp->header->cluster_id;
            pdpb__get_members_response__free_unpacked(resp, NULL);
        }
    }
    if (recv)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&im);
    grpc_metadata_array_destroy(&tm);
    grpc_call_unref(call);
    grpc_channel_destroy(ch);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    grpc_shutdown_blocking();
    return cid;
}

START_TEST(test_cli_run_and_sigterm)
{
    char dir[] = "/tmp/sim_cli_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char truth[256], ports[256];
    snprintf(truth, sizeof(truth), "%s/truth.jsonl", dir);
    snprintf(ports, sizeof(ports), "%s/ports.json", dir);
    const char *args[] = {"--stores", "3", "--regions", "12", "--seed", "5", "--rate", "3000",
                          "--truth", truth, "--ports-file", ports, "--resolved-interval-ms",
                          "100", "--log-level", "warn", NULL};
    sim_proc_t p;
    sim_spawn(&p, args);
    ck_assert_int_eq(sim_read_line(&p, 20000), 0);
    json_error_t jerr;
    p.hello = json_loads(p.line, 0, &jerr);
    ck_assert_msg(p.hello != NULL, "first line is not JSON: %s", p.line);
    json_t *stores = json_object_get(p.hello, "stores");
    ck_assert_uint_eq(json_array_size(stores), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *s = json_array_get(stores, i);
        ck_assert_int_eq(json_integer_value(json_object_get(s, "id")), (json_int_t)i + 1);
        ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(s, "addr")), "127.0.0.1:"));
    }
    const char *pd = json_string_value(json_object_get(p.hello, "pd"));
    const char *control = json_string_value(json_object_get(p.hello, "control"));
    ck_assert_ptr_nonnull(pd);
    ck_assert_ptr_nonnull(control);
    ck_assert(strncmp(pd, "127.0.0.1:", 10) == 0);
    ck_assert(strncmp(control, "127.0.0.1:", 10) == 0);
    json_int_t cid = json_integer_value(json_object_get(p.hello, "cluster_id"));
    ck_assert_int_gt(cid, 0);

    /* the ports file holds the same line */
    char *pf = tkc_test_read_file(ports, NULL);
    ck_assert_ptr_nonnull(pf);
    pf[strcspn(pf, "\n")] = 0;
    ck_assert_str_eq(pf, p.line);
    tkc_free(pf);

    json_t *doc;
    ck_assert_int_eq(http(control, "GET", "/healthz", NULL, &doc), 200);
    ck_assert(json_is_true(json_object_get(doc, "ok")));
    json_decref(doc);
    ck_assert_int_eq((json_int_t)pd_cluster_id(pd), cid);
    /* a fault through the endpoint, observed through the endpoint */
    ck_assert_int_eq(http(control, "GET", "/regions?limit=1", NULL, &doc), 200);
    json_t *r0 = json_array_get(json_object_get(doc, "regions"), 0);
    json_int_t rid = json_integer_value(json_object_get(r0, "id"));
    json_int_t to = json_integer_value(json_object_get(r0, "leader_store")) % 3 + 1;
    json_decref(doc);
    char body[128];
    snprintf(body, sizeof(body), "{\"op\": \"transfer_leader\", \"region\": %lld, \"store\": %lld}",
             (long long)rid, (long long)to);
    ck_assert_int_eq(http(control, "POST", "/fault", body, &doc), 200);
    json_decref(doc);
    ck_assert_int_eq(http(control, "GET", "/regions?limit=1", NULL, &doc), 200);
    r0 = json_array_get(json_object_get(doc, "regions"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r0, "leader_store")), to);
    json_decref(doc);

    /* let the workload commit something, then stop */
    usleep(1500000);
    ck_assert_int_eq(sim_stop(&p, SIGTERM, 30000), 0);

    char *t = tkc_test_read_file(truth, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_gt(strlen(t), 0);
    /* every line is a full truth record */
    int lines = 0;
    for (char *save = NULL, *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *rec = json_loads(l, 0, &jerr);
        ck_assert_msg(rec != NULL, "truth line not JSON: %s", l);
        ck_assert(json_is_string(json_object_get(rec, "key")));
        ck_assert(json_is_string(json_object_get(rec, "op")));
        ck_assert_int_gt(json_integer_value(json_object_get(rec, "commit_ts")),
                         json_integer_value(json_object_get(rec, "start_ts")));
        json_decref(rec);
        lines++;
    }
    ck_assert_int_gt(lines, 100);
    tkc_free(t);
    unlink(truth);
    rmdir(dir);
}
END_TEST

START_TEST(test_cli_scenario_and_sigint)
{
    char dir[] = "/tmp/sim_cli_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char scen[256];
    snprintf(scen, sizeof(scen), "%s/scenario.jsonl", dir);
    FILE *f = fopen(scen, "w");
    fprintf(f, "{\"at_ms\": 0, \"op\": \"restart_store\", \"store\": 2, \"down_ms\": 60000}\n");
    fclose(f);
    const char *args[] = {"--stores", "2", "--regions", "4", "--rate", "0", "--scenario", scen,
                          "--log-level", "warn", NULL};
    sim_proc_t p;
    sim_spawn(&p, args);
    ck_assert_int_eq(sim_read_line(&p, 20000), 0);
    p.hello = json_loads(p.line, 0, NULL);
    ck_assert_ptr_nonnull(p.hello);
    const char *control = json_string_value(json_object_get(p.hello, "control"));
    json_t *doc = NULL;
    const char *state = NULL;
    for (int i = 0; i < 200; i++) {
        json_decref(doc);
        ck_assert_int_eq(http(control, "GET", "/stores", NULL, &doc), 200);
        state = json_string_value(
            json_object_get(json_array_get(json_object_get(doc, "stores"), 1), "state"));
        if (state && strcmp(state, "down") == 0)
            break;
        usleep(10000);
    }
    ck_assert_str_eq(state, "down");
    json_decref(doc);
    /* SIGINT works as well, even with a store down and a step pending */
    ck_assert_int_eq(sim_stop(&p, SIGINT, 30000), 0);
    unlink(scen);
    rmdir(dir);
}
END_TEST

START_TEST(test_cli_help_and_bad_args)
{
    const char *help[] = {"--help", NULL};
    sim_proc_t p;
    sim_spawn(&p, help);
    ck_assert_int_eq(sim_read_line(&p, 10000), 0);
    ck_assert_ptr_nonnull(strstr(p.line, "usage: tikv-sim"));
    int status;
    waitpid(p.pid, &status, 0);
    close(p.out_fd);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    const char *bad[] = {"--stores", "zero", NULL};
    sim_spawn(&p, bad);
    waitpid(p.pid, &status, 0);
    close(p.out_fd);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2);

    const char *bad_scen[] = {"--scenario", "/nonexistent/scenario", "--rate", "0", NULL};
    sim_spawn(&p, bad_scen);
    waitpid(p.pid, &status, 0);
    close(p.out_fd);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
}
END_TEST

static Suite *sim_cli_suite(void)
{
    Suite *s = suite_create("sim_cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_cli_run_and_sigterm);
    tcase_add_test(tc, test_cli_scenario_and_sigint);
    tcase_add_test(tc, test_cli_help_and_bad_args);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(sim_cli_suite)
