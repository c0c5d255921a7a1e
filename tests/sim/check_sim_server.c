/*
 * check_sim_server.c: sim_server plumbing over real gRPC on loopback.
 *
 * Each test starts a server with a few handlers written here (echo stream,
 * echo unary), drives it with the client of check_sim_rpc.c and asserts what
 * the client sees and what the handlers were told: unknown methods, unary
 * status, metadata, ordered sends from a foreign thread, finish after the
 * queue drains, abort, stall, client cancel, stop/restart on the same port,
 * counters and the tick thread.
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "check_sim_rpc.h"
#include "sim_server.h"
#include "unit/check_main.h"
#include "util/clock.h"
#include "util/mem.h"

/* ===== handlers under test ===== */

typedef struct {
    pthread_mutex_t mu;
    sim_call_t *call;          /* the last opened stream */
    int opens, closes, releases, messages;
    bool last_close_cancelled;
    bool refuse;               /* on_open refuses with PERMISSION_DENIED */
    bool echo;                 /* on_message echoes */
    pthread_t server_thread;   /* thread that ran on_message */
    atomic_int ticks;
    pthread_t tick_thread;
    char features[64];
} th_t;

static void th_init(th_t *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    t->echo = true;
}

static int th_open(void *opaque, sim_call_t *call, grpc_status_code *st, const char **details)
{
    th_t *t = opaque;
    pthread_mutex_lock(&t->mu);
    t->opens++;
    const char *f = sim_call_metadata(call, "features");
    snprintf(t->features, sizeof(t->features), "%s", f ? f : "");
    if (t->refuse) {
        pthread_mutex_unlock(&t->mu);
        *st = GRPC_STATUS_PERMISSION_DENIED;
        *details = "refused by test";
        return -1;
    }
    t->call = call;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static void th_message(void *opaque, sim_call_t *call, const uint8_t *data, size_t len)
{
    th_t *t = opaque;
    pthread_mutex_lock(&t->mu);
    t->messages++;
    t->server_thread = pthread_self();
    bool echo = t->echo;
    pthread_mutex_unlock(&t->mu);
    if (echo)
        sim_call_send(call, data, len, NULL);
}

static void th_close(void *opaque, sim_call_t *call, bool cancelled)
{
    th_t *t = opaque;
    pthread_mutex_lock(&t->mu);
    t->closes++;
    t->last_close_cancelled = cancelled;
    pthread_mutex_unlock(&t->mu);
    /* as TiKV: a client half-close ends the stream with OK */
    sim_call_finish(call, GRPC_STATUS_OK, "bye");
}

static void th_release(void *opaque, sim_call_t *call)
{
    th_t *t = opaque;
    pthread_mutex_lock(&t->mu);
    t->releases++;
    if (t->call == call)
        t->call = NULL;
    pthread_mutex_unlock(&t->mu);
}

static const sim_stream_handler_t th_handler = {th_open, th_message, th_close, th_release};

static grpc_status_code th_unary(void *opaque, sim_call_t *call, const uint8_t *req,
                                 size_t len, uint8_t **resp, size_t *resp_len, char **details)
{
    if (len > 0 && req[0] == 'E') {
        *details = tkc_strdup("asked to fail");
        return GRPC_STATUS_FAILED_PRECONDITION;
    }
    /* reply with the request reversed, so the test can tell it was processed */
    *resp = tkc_malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        (*resp)[i] = req[len - 1 - i];
    *resp_len = len;
    return GRPC_STATUS_OK;
}

static void th_tick(void *opaque)
{
    th_t *t = opaque;
    t->tick_thread = pthread_self();
    atomic_fetch_add(&t->ticks, 1);
}

static th_t T;
static sim_server_t *S;
static grpc_channel *CH;

static void setup(void)
{
    grpc_init();
    th_init(&T);
    S = sim_server_new("test", "127.0.0.1:0");
    sim_server_add_stream(S, "/test.Svc/Stream", &th_handler, &T);
    sim_server_add_unary(S, "/test.Svc/Unary", th_unary, &T);
    sim_server_set_tick(S, 20, th_tick, &T);
    int port = sim_server_start(S);
    ck_assert_int_gt(port, 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    CH = crpc_channel(addr);
}

static void teardown(void)
{
    grpc_channel_destroy(CH);
    sim_server_destroy(S);
    pthread_mutex_destroy(&T.mu);
    grpc_shutdown_blocking();
}

static void wait_for(int *field, int want, int ms)
{
    for (int i = 0; i < ms / 5; i++) {
        pthread_mutex_lock(&T.mu);
        int v = *field;
        pthread_mutex_unlock(&T.mu);
        if (v >= want)
            return;
        usleep(5000);
    }
}

/* ===== tests ===== */

START_TEST(test_server_unary)
{
    crpc_result_t r;
    ck_assert_int_eq(crpc_unary(CH, "/test.Svc/Unary", (const uint8_t *)"abc", 3, 5000, &r),
                     GRPC_STATUS_OK);
    ck_assert_uint_eq(r.resp_len, 3);
    ck_assert_int_eq(memcmp(r.resp, "cba", 3), 0);
    crpc_result_free(&r);

    ck_assert_int_eq(crpc_unary(CH, "/test.Svc/Unary", (const uint8_t *)"E", 1, 5000, &r),
                     GRPC_STATUS_FAILED_PRECONDITION);
    ck_assert_str_eq(r.details, "asked to fail");
    crpc_result_free(&r);

    /* an empty request is a valid (empty) protobuf message */
    ck_assert_int_eq(crpc_unary(CH, "/test.Svc/Unary", NULL, 0, 5000, &r), GRPC_STATUS_OK);
    ck_assert_uint_eq(r.resp_len, 0);
    crpc_result_free(&r);

    ck_assert_int_eq(crpc_unary(CH, "/test.Svc/Nope", (const uint8_t *)"x", 1, 5000, &r),
                     GRPC_STATUS_UNIMPLEMENTED);
    crpc_result_free(&r);

    /* three calls reached a handler or the unknown-method path, all closed */
    for (int i = 0; i < 200 && sim_server_calls_closed(S) < 4; i++)
        usleep(5000);
    ck_assert_uint_eq(sim_server_calls_opened(S), 4);
    ck_assert_uint_eq(sim_server_calls_closed(S), 4);
}
END_TEST

START_TEST(test_server_stream_echo_and_half_close)
{
    crpc_stream_t *st = crpc_stream_open(CH, "/test.Svc/Stream", "features", "stream-multiplexing");
    for (int i = 0; i < 50; i++) {
        char msg[16];
        int n = snprintf(msg, sizeof(msg), "m%d", i);
        ck_assert_int_eq(crpc_stream_send(st, (const uint8_t *)msg, (size_t)n), 0);
        uint8_t *data = NULL;
        size_t len = 0;
        ck_assert_int_eq(crpc_stream_recv(st, 5000, &data, &len), 1);
        ck_assert_uint_eq(len, (size_t)n);
        ck_assert_int_eq(memcmp(data, msg, len), 0);
        tkc_free(data);
    }
    pthread_mutex_lock(&T.mu);
    ck_assert_str_eq(T.features, "stream-multiplexing");
    ck_assert_int_eq(T.opens, 1);
    pthread_mutex_unlock(&T.mu);

    crpc_stream_close_send(st);
    uint8_t *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(crpc_stream_recv(st, 5000, &data, &len), 0);
    grpc_status_code code;
    const char *details;
    ck_assert_int_eq(crpc_stream_status(st, 5000, &code, &details), 0);
    ck_assert_int_eq(code, GRPC_STATUS_OK);
    ck_assert_str_eq(details, "bye");
    crpc_stream_destroy(st);

    wait_for(&T.releases, 1, 5000);
    pthread_mutex_lock(&T.mu);
    ck_assert_int_eq(T.closes, 1);
    ck_assert(!T.last_close_cancelled);
    ck_assert_int_eq(T.releases, 1);
    ck_assert_int_eq(T.messages, 50);
    pthread_mutex_unlock(&T.mu);
}
END_TEST

typedef struct {
    sim_call_t *call;
    int n;
} sender_arg_t;

static void *sender_main(void *arg)
{
    sender_arg_t *a = arg;
    for (int i = 0; i < a->n; i++) {
        uint8_t msg[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        sim_call_send(a->call, msg, sizeof(msg), NULL);
    }
    sim_call_finish(a->call, GRPC_STATUS_UNKNOWN, "connection cancelled");
    return NULL;
}

START_TEST(test_server_foreign_thread_sends_in_order_then_finish)
{
    T.echo = false;
    crpc_stream_t *st = crpc_stream_open(CH, "/test.Svc/Stream", NULL, NULL);
    ck_assert_int_eq(crpc_stream_send(st, (const uint8_t *)"go", 2), 0);
    wait_for(&T.messages, 1, 5000);
    pthread_mutex_lock(&T.mu);
    sim_call_t *call = T.call;
    pthread_mutex_unlock(&T.mu);
    ck_assert_ptr_nonnull(call);

    const int n = 5000;
    sender_arg_t a = {call, n};
    pthread_t th;
    pthread_create(&th, NULL, sender_main, &a);
    for (int i = 0; i < n; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        ck_assert_int_eq(crpc_stream_recv(st, 10000, &data, &len), 1);
        ck_assert_uint_eq(len, 4);
        int v = (data[0] << 24) | (data[1] << 16) | (data[2] << 8) | data[3];
        ck_assert_int_eq(v, i);
        tkc_free(data);
    }
    pthread_join(th, NULL);
    uint8_t *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(crpc_stream_recv(st, 5000, &data, &len), 0);
    grpc_status_code code;
    const char *details;
    ck_assert_int_eq(crpc_stream_status(st, 5000, &code, &details), 0);
    ck_assert_int_eq(code, GRPC_STATUS_UNKNOWN);
    ck_assert_str_eq(details, "connection cancelled");
    crpc_stream_destroy(st);
    wait_for(&T.releases, 1, 5000);
    ck_assert_int_eq(T.releases, 1);
}
END_TEST

START_TEST(test_server_refuse_abort_stall)
{
    /* refused at open: the client sees the handler's status */
    T.refuse = true;
    crpc_stream_t *st = crpc_stream_open(CH, "/test.Svc/Stream", NULL, NULL);
    grpc_status_code code;
    const char *details;
    ck_assert_int_eq(crpc_stream_status(st, 5000, &code, &details), 0);
    ck_assert_int_eq(code, GRPC_STATUS_PERMISSION_DENIED);
    ck_assert_str_eq(details, "refused by test");
    crpc_stream_destroy(st);
    T.refuse = false;

    /* stall: queued messages are held back until the stall is lifted */
    T.echo = false;
    st = crpc_stream_open(CH, "/test.Svc/Stream", NULL, NULL);
    ck_assert_int_eq(crpc_stream_send(st, (const uint8_t *)"x", 1), 0);
    wait_for(&T.messages, 2, 5000);
    pthread_mutex_lock(&T.mu);
    sim_call_t *call = T.call;
    pthread_mutex_unlock(&T.mu);
    ck_assert_ptr_nonnull(call);
    sim_call_stall(call, true);
    size_t queued = 0;
    ck_assert_int_eq(sim_call_send(call, (const uint8_t *)"held", 4, &queued), 0);
    ck_assert_uint_eq(queued, 4);
    uint8_t *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(crpc_stream_recv(st, 300, &data, &len), -1);
    sim_call_stall(call, false);
    ck_assert_int_eq(crpc_stream_recv(st, 5000, &data, &len), 1);
    ck_assert_uint_eq(len, 4);
    ck_assert_int_eq(memcmp(data, "held", 4), 0);
    tkc_free(data);

    /* abort: queued messages are dropped and the status arrives at once */
    sim_call_stall(call, true);
    for (int i = 0; i < 10; i++)
        sim_call_send(call, (const uint8_t *)"dropped", 7, NULL);
    sim_call_abort(call, GRPC_STATUS_UNAVAILABLE, "store restarting");
    ck_assert_int_eq(crpc_stream_recv(st, 5000, &data, &len), 0);
    ck_assert_int_eq(crpc_stream_status(st, 5000, &code, &details), 0);
    ck_assert_int_eq(code, GRPC_STATUS_UNAVAILABLE);
    ck_assert_str_eq(details, "store restarting");
    /* a send after the end is refused */
    crpc_stream_destroy(st);
    wait_for(&T.releases, 1, 5000);
    ck_assert_int_eq(T.releases, 1);
    ck_assert_int_eq(T.closes, 1);
}
END_TEST

START_TEST(test_server_client_cancel)
{
    crpc_stream_t *st = crpc_stream_open(CH, "/test.Svc/Stream", NULL, NULL);
    ck_assert_int_eq(crpc_stream_send(st, (const uint8_t *)"x", 1), 0);
    wait_for(&T.messages, 1, 5000);
    crpc_stream_cancel(st);
    wait_for(&T.releases, 1, 5000);
    pthread_mutex_lock(&T.mu);
    ck_assert_int_eq(T.closes, 1);
    ck_assert(T.last_close_cancelled);
    ck_assert_int_eq(T.releases, 1);
    pthread_mutex_unlock(&T.mu);
    crpc_stream_destroy(st);
}
END_TEST

START_TEST(test_server_stop_restart_same_port)
{
    int port = sim_server_port(S);
    crpc_stream_t *st = crpc_stream_open(CH, "/test.Svc/Stream", NULL, NULL);
    ck_assert_int_eq(crpc_stream_send(st, (const uint8_t *)"x", 1), 0);
    uint8_t *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(crpc_stream_recv(st, 5000, &data, &len), 1);
    tkc_free(data);

    sim_server_stop(S);
    ck_assert(!sim_server_running(S));
    ck_assert_int_eq(crpc_stream_recv(st, 5000, &data, &len), 0);
    grpc_status_code code;
    const char *details;
    ck_assert_int_eq(crpc_stream_status(st, 5000, &code, &details), 0);
    ck_assert_int_eq(code, GRPC_STATUS_UNAVAILABLE);
    crpc_stream_destroy(st);
    ck_assert_int_eq(T.releases, 1);

    /* the port refuses connections while stopped */
    crpc_result_t r;
    ck_assert_int_eq(crpc_unary(CH, "/test.Svc/Unary", (const uint8_t *)"ab", 2, 2000, &r),
                     GRPC_STATUS_UNAVAILABLE);
    crpc_result_free(&r);

    ck_assert_int_eq(sim_server_start(S), port);
    ck_assert(sim_server_running(S));
    /* the channel reconnects on its own (short backoff in crpc_channel) */
    grpc_status_code rc = GRPC_STATUS_UNAVAILABLE;
    for (int i = 0; i < 50 && rc != GRPC_STATUS_OK; i++) {
        rc = crpc_unary(CH, "/test.Svc/Unary", (const uint8_t *)"ab", 2, 2000, &r);
        if (rc == GRPC_STATUS_OK)
            ck_assert_int_eq(memcmp(r.resp, "ba", 2), 0);
        crpc_result_free(&r);
        if (rc != GRPC_STATUS_OK)
            usleep(100000);
    }
    ck_assert_int_eq(rc, GRPC_STATUS_OK);
}
END_TEST

START_TEST(test_server_move_to_new_port)
{
    int port = sim_server_port(S);
    sim_server_stop(S);
    sim_server_set_addr(S, "127.0.0.1:0");
    int port2 = sim_server_start(S);
    ck_assert_int_gt(port2, 0);
    ck_assert_int_ne(port2, port);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", port2);
    ck_assert_str_eq(sim_server_addr(S), want);
    grpc_channel *ch2 = crpc_channel(want);
    crpc_result_t r;
    ck_assert_int_eq(crpc_unary(ch2, "/test.Svc/Unary", (const uint8_t *)"ab", 2, 5000, &r),
                     GRPC_STATUS_OK);
    crpc_result_free(&r);
    grpc_channel_destroy(ch2);
}
END_TEST

START_TEST(test_server_tick_on_server_thread)
{
    for (int i = 0; i < 200 && atomic_load(&T.ticks) < 3; i++)
        usleep(10000);
    ck_assert_int_ge(atomic_load(&T.ticks), 3);
    crpc_stream_t *st = crpc_stream_open(CH, "/test.Svc/Stream", NULL, NULL);
    ck_assert_int_eq(crpc_stream_send(st, (const uint8_t *)"x", 1), 0);
    uint8_t *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(crpc_stream_recv(st, 5000, &data, &len), 1);
    tkc_free(data);
    int before = atomic_load(&T.ticks);
    for (int i = 0; i < 200 && atomic_load(&T.ticks) < before + 2; i++)
        usleep(10000);
    pthread_mutex_lock(&T.mu);
    ck_assert(pthread_equal(T.server_thread, T.tick_thread));
    ck_assert(!pthread_equal(T.server_thread, pthread_self()));
    pthread_mutex_unlock(&T.mu);
    crpc_stream_destroy(st);
}
END_TEST

typedef struct {
    sim_call_t *call;
    int n;
    size_t size;
} bulk_arg_t;

static void *bulk_sender(void *arg)
{
    bulk_arg_t *a = arg;
    uint8_t *msg = tkc_calloc(1, a->size);
    for (int i = 0; i < a->n; i++) {
        msg[0] = (uint8_t)(i >> 24);
        msg[1] = (uint8_t)(i >> 16);
        msg[2] = (uint8_t)(i >> 8);
        msg[3] = (uint8_t)i;
        size_t queued = 0;
        sim_call_send(a->call, msg, a->size, &queued);
        /* crude flow control on the queued bytes, as a real producer does */
        while (queued > ((size_t)8 << 20)) {
            usleep(500);
            pthread_mutex_lock(&T.mu);
            bool alive = T.call == a->call;
            pthread_mutex_unlock(&T.mu);
            ck_assert(alive);
            queued = sim_call_queued_bytes(a->call);
        }
    }
    tkc_free(msg);
    sim_call_finish(a->call, GRPC_STATUS_OK, "");
    return NULL;
}

/*
 * Not a benchmark gate: asserts that bulk traffic from a foreign thread
 * arrives complete and in order, and prints the rate so the figure is on
 * record (messages/s and MB/s through one stream on loopback).
 */
START_TEST(test_server_bulk_throughput)
{
    T.echo = false;
    const size_t sizes[] = {1024, 65536};
    const int counts[] = {40000, 1500};
    for (int k = 0; k < 2; k++) {
        crpc_stream_t *st = crpc_stream_open(CH, "/test.Svc/Stream", NULL, NULL);
        ck_assert_int_eq(crpc_stream_send(st, (const uint8_t *)"go", 2), 0);
        wait_for(&T.messages, k + 1, 5000);
        pthread_mutex_lock(&T.mu);
        sim_call_t *call = T.call;
        pthread_mutex_unlock(&T.mu);
        ck_assert_ptr_nonnull(call);
        bulk_arg_t a = {call, counts[k], sizes[k]};
        int64_t t0 = tkc_clock_mono_ms();
        pthread_t th;
        pthread_create(&th, NULL, bulk_sender, &a);
        int got = 0, next = 0;
        size_t bytes = 0;
        for (;;) {
            uint8_t *data = NULL;
            size_t len = 0;
            int rc = crpc_stream_recv(st, 20000, &data, &len);
            ck_assert_int_ne(rc, -1);
            if (rc == 0)
                break;
            ck_assert_uint_eq(len, sizes[k]);
            int v = (data[0] << 24) | (data[1] << 16) | (data[2] << 8) | data[3];
            ck_assert_int_eq(v, next);
            next++;
            got++;
            bytes += len;
            tkc_free(data);
        }
        pthread_join(th, NULL);
        int64_t ms = tkc_clock_mono_ms() - t0;
        ck_assert_int_eq(got, a.n);
        fprintf(stderr, "sim_server bulk: %d msgs of %zu B in %" PRId64 " ms = %.0f msg/s, %.1f MB/s\n",
                got, sizes[k], ms, got * 1000.0 / (ms ? ms : 1),
                bytes / 1e6 * 1000.0 / (ms ? ms : 1));
        grpc_status_code code;
        ck_assert_int_eq(crpc_stream_status(st, 5000, &code, NULL), 0);
        ck_assert_int_eq(code, GRPC_STATUS_OK);
        crpc_stream_destroy(st);
    }
}
END_TEST

static Suite *sim_server_suite(void)
{
    Suite *s = suite_create("sim_server");
    TCase *tc = tcase_create("server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_server_unary);
    tcase_add_test(tc, test_server_stream_echo_and_half_close);
    tcase_add_test(tc, test_server_foreign_thread_sends_in_order_then_finish);
    tcase_add_test(tc, test_server_refuse_abort_stall);
    tcase_add_test(tc, test_server_client_cancel);
    tcase_add_test(tc, test_server_stop_restart_same_port);
    tcase_add_test(tc, test_server_move_to_new_port);
    tcase_add_test(tc, test_server_tick_on_server_thread);
    tcase_add_test(tc, test_server_bulk_throughput);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(sim_server_suite)
