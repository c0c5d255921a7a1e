/*
 * check_stream_table.c: unit tests of stream_table (architecture.md
 * invariant 1; tikv-cdc-protocol.md §6).
 *
 * This one source is built three times (tests/unit/feed_logic.cmake):
 *   unit.stream_table            product library, expects the id guard;
 *   unit.stream_table_addr_keyed library built with
 *                                TKC_TEST_ADDR_KEYED_STREAMS, expects the old
 *                                bug: a stale stream's retire deletes and
 *                                cancels the newer stream, and the simulated
 *                                store restart loops;
 *   unit.stream_table_guard_detects_addr_keyed
 *                                the id-guard expectations against the
 *                                address-keyed library: must FAIL (ctest
 *                                WILL_FAIL), proving these tests can fail.
 * TKC_EXPECT_ADDR_KEYED (0/1) selects the expectations.
 */
#include "stream_table.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "unit/check_main.h"
#include "util/mem.h"

#ifndef TKC_EXPECT_ADDR_KEYED
#define TKC_EXPECT_ADDR_KEYED 0
#endif
#define EXPECT_ADDR (TKC_EXPECT_ADDR_KEYED != 0)

/* ===== helpers ===== */

typedef struct call_s {
    int cancels; /* how often this stream's own call was cancelled */
} call_t;

static void on_cancel(tkc_stream_t *st, void *opaque)
{
    (void)st;
    ((call_t *)opaque)->cancels++;
}

static tkc_stream_t *create_ok(tkc_stream_table_t *tbl, uint64_t store, int64_t now, call_t *call)
{
    tkc_stream_t *st = NULL;
    int64_t retry = 0;
    tkc_stream_status_t s = tkc_stream_table_create(tbl, store, now, on_cancel, call, &st, &retry);
    ck_assert_msg(s == TKC_STREAM_OK, "create: %s", tkc_stream_status_name(s));
    ck_assert_ptr_nonnull(st);
    return st;
}

/* The stream the table holds for @p store (reference dropped at once). */
static tkc_stream_t *current(tkc_stream_table_t *tbl, uint64_t store)
{
    tkc_stream_t *st = tkc_stream_table_get(tbl, store);
    if (st)
        tkc_stream_release(st);
    return st;
}

static int state_a, state_b, state_c, state_d;

/* ===== the invariant ===== */

#ifndef TKC_SKIP_MODE_CHECK
/* the library was built in the mode this executable expects */
START_TEST(test_stream_table_mode)
{
    ck_assert_int_eq(tkc_stream_table_addr_keyed(), EXPECT_ADDR);
}
END_TEST
#endif

START_TEST(test_stream_table_ids_unique)
{
    tkc_stream_table_t *t1 = tkc_stream_table_new(0, NULL);
    tkc_stream_table_t *t2 = tkc_stream_table_new(0, NULL);
    call_t c = {0};
    uint64_t seen[40];
    size_t n = 0;
    for (int round = 0; round < 10; round++) {
        for (uint64_t store = 1; store <= 2; store++) {
            tkc_stream_t *a = create_ok(t1, store, round, &c);
            tkc_stream_t *b = create_ok(t2, store, round, &c);
            seen[n++] = tkc_stream_id(a);
            seen[n++] = tkc_stream_id(b);
            ck_assert_uint_eq(tkc_stream_store_id(a), store);
            ck_assert_int_eq(tkc_stream_table_retire(t1, a, round, NULL, NULL), TKC_STREAM_OK);
            ck_assert_int_eq(tkc_stream_table_retire(t2, b, round, NULL, NULL), TKC_STREAM_OK);
            tkc_stream_release(a);
            tkc_stream_release(b);
        }
    }
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_ne(seen[i], 0);
        for (size_t j = 0; j < i; j++)
            ck_assert_uint_ne(seen[i], seen[j]);
    }
    tkc_stream_table_destroy(t1);
    tkc_stream_table_destroy(t2);
}
END_TEST

/*
 * §6.3: S1 to store 1 breaks and is retired; S2 replaces it; then S1's late
 * second cleanup runs. With ids it is a no-op; keyed by address it removes
 * and cancels the healthy S2.
 */
START_TEST(test_stream_table_stale_retire_spares_newer)
{
    tkc_stream_table_t *tbl = tkc_stream_table_new(1000, NULL);
    call_t c1 = {0}, c2 = {0};
    tkc_stream_t *s1 = create_ok(tbl, 1, 0, &c1);
    ck_assert_int_eq(tkc_stream_add_region(s1, 1, 100, &state_a), TKC_ERR_OK);
    tkc_stream_region_list_t regs;
    ck_assert_int_eq(tkc_stream_table_retire(tbl, s1, 1000, &regs, NULL), TKC_STREAM_OK);
    ck_assert_uint_eq(regs.n, 1);
    tkc_stream_region_list_fini(&regs);
    ck_assert_int_eq(c1.cancels, 1);

    tkc_stream_t *s2 = create_ok(tbl, 1, 2000, &c2);
    ck_assert_uint_ne(tkc_stream_id(s2), tkc_stream_id(s1));
    ck_assert_int_eq(tkc_stream_add_region(s2, 1, 100, &state_a), TKC_ERR_OK);

    /* the late, second cleanup of S1 */
    tkc_stream_status_t st = tkc_stream_table_retire(tbl, s1, 3000, &regs, NULL);
    if (!EXPECT_ADDR) {
        ck_assert_int_eq(st, TKC_STREAM_ALREADY_RETIRED);
        ck_assert_ptr_eq(current(tbl, 1), s2);
        ck_assert_int_eq(c2.cancels, 0);
        ck_assert(!tkc_stream_cancelled(s2));
        ck_assert(!tkc_stream_retired(s2));
        ck_assert_uint_eq(tkc_stream_region_count(s2), 1);
        ck_assert_uint_eq(tkc_stream_table_count(tbl), 1);
    } else {
        /* the old bug, reproduced on purpose */
        ck_assert_int_eq(st, TKC_STREAM_OK);
        ck_assert_ptr_null(current(tbl, 1));
        ck_assert_int_eq(c2.cancels, 1);
        ck_assert_uint_eq(tkc_stream_table_count(tbl), 0);
    }
    ck_assert_uint_eq(regs.n, 0); /* S1's regions were handed back once */
    ck_assert_int_eq(c1.cancels, 1);
    tkc_stream_region_list_fini(&regs);
    tkc_stream_release(s1);
    tkc_stream_release(s2);
    tkc_stream_table_destroy(tbl);
}
END_TEST

/* Cancelling is bound to the stream object: S1's cancel never reaches S2. */
START_TEST(test_stream_table_cancel_is_own)
{
    tkc_stream_table_t *tbl = tkc_stream_table_new(0, NULL);
    call_t c1 = {0}, c2 = {0}, c3 = {0};
    tkc_stream_t *s1 = create_ok(tbl, 1, 0, &c1);
    ck_assert_int_eq(tkc_stream_table_retire(tbl, s1, 0, NULL, NULL), TKC_STREAM_OK);
    tkc_stream_t *s2 = create_ok(tbl, 1, 0, &c2);
    tkc_stream_t *s3 = create_ok(tbl, 2, 0, &c3);
    tkc_stream_cancel(s1); /* e.g. a prewrite-not-match on an old region state */
    tkc_stream_cancel(s1);
    ck_assert_int_eq(c1.cancels, 1);
    ck_assert_int_eq(c2.cancels, 0);
    ck_assert_int_eq(c3.cancels, 0);
    tkc_stream_cancel(s2);
    ck_assert_int_eq(c2.cancels, 1);
    ck_assert_int_eq(c3.cancels, 0);
    /* a cancelled stream still needs its retire to leave the table */
    ck_assert_ptr_eq(current(tbl, 1), s2);
    ck_assert_int_eq(tkc_stream_table_retire(tbl, s2, 0, NULL, NULL), TKC_STREAM_OK);
    ck_assert_int_eq(c2.cancels, 1); /* not twice */
    ck_assert_ptr_null(current(tbl, 1));
    ck_assert_ptr_eq(current(tbl, 2), s3);
    tkc_stream_release(s1);
    tkc_stream_release(s2);
    tkc_stream_release(s3);
    tkc_stream_table_destroy(tbl);
}
END_TEST

START_TEST(test_stream_table_retire_idempotent)
{
    tkc_stream_table_t *tbl = tkc_stream_table_new(1000, NULL);
    call_t c = {0};
    tkc_stream_t *s = create_ok(tbl, 1, 0, &c);
    ck_assert_int_eq(tkc_stream_add_region(s, 5, 50, &state_a), TKC_ERR_OK);
    tkc_stream_region_list_t regs;
    ck_assert_int_eq(tkc_stream_table_retire(tbl, s, 1000, &regs, NULL), TKC_STREAM_OK);
    ck_assert_uint_eq(regs.n, 1);
    tkc_stream_region_list_fini(&regs);
    ck_assert(tkc_stream_retired(s));
    /* again, immediately: no rate limit, no effect */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(tkc_stream_table_retire(tbl, s, 1001, &regs, NULL),
                         TKC_STREAM_ALREADY_RETIRED);
        ck_assert_uint_eq(regs.n, 0);
    }
    ck_assert_int_eq(c.cancels, 1);
    ck_assert_uint_eq(tkc_stream_table_count(tbl), 0);
    /* regions cannot be added to a retired stream */
    ck_assert_int_eq(tkc_stream_add_region(s, 5, 51, &state_b), TKC_ERR_STOPPED);
    tkc_stream_release(s);
    tkc_stream_table_destroy(tbl);
}
END_TEST

START_TEST(test_stream_table_only_its_regions)
{
    tkc_stream_table_t *tbl = tkc_stream_table_new(0, NULL);
    call_t c1 = {0}, c2 = {0};
    tkc_stream_t *s1 = create_ok(tbl, 1, 0, &c1);
    tkc_stream_t *s2 = create_ok(tbl, 2, 0, &c2);
    ck_assert_int_eq(tkc_stream_add_region(s1, 2, 10, &state_a), TKC_ERR_OK);
    ck_assert_int_eq(tkc_stream_add_region(s1, 1, 11, &state_b), TKC_ERR_OK);
    ck_assert_int_eq(tkc_stream_add_region(s1, 1, 10, &state_c), TKC_ERR_OK);
    ck_assert_int_eq(tkc_stream_add_region(s2, 1, 12, &state_d), TKC_ERR_OK);
    /* the same (request_id, region_id) twice would be a DuplicateRequest */
    ck_assert_int_eq(tkc_stream_add_region(s1, 1, 10, &state_d), TKC_ERR_INVALID_ARG);
    ck_assert_int_eq(tkc_stream_add_region(s1, 9, 9, NULL), TKC_ERR_INVALID_ARG);
    /* the same region under another request id is a different registration */
    ck_assert_int_eq(tkc_stream_add_region(s1, 3, 10, &state_d), TKC_ERR_OK);
    ck_assert_ptr_eq(tkc_stream_remove_region(s1, 3, 10), &state_d);
    ck_assert_ptr_null(tkc_stream_remove_region(s1, 3, 10));
    ck_assert_ptr_eq(tkc_stream_get_region(s1, 1, 11), &state_b);
    ck_assert_ptr_null(tkc_stream_get_region(s1, 1, 12));
    ck_assert_uint_eq(tkc_stream_region_count(s1), 3);

    tkc_stream_region_list_t regs;
    ck_assert_int_eq(tkc_stream_table_retire(tbl, s1, 0, &regs, NULL), TKC_STREAM_OK);
    ck_assert_uint_eq(regs.n, 3);
    /* sorted by (request_id, region_id), each with its state */
    ck_assert_uint_eq(regs.v[0].request_id, 1);
    ck_assert_uint_eq(regs.v[0].region_id, 10);
    ck_assert_ptr_eq(regs.v[0].state, &state_c);
    ck_assert_uint_eq(regs.v[1].request_id, 1);
    ck_assert_uint_eq(regs.v[1].region_id, 11);
    ck_assert_ptr_eq(regs.v[1].state, &state_b);
    ck_assert_uint_eq(regs.v[2].request_id, 2);
    ck_assert_uint_eq(regs.v[2].region_id, 10);
    ck_assert_ptr_eq(regs.v[2].state, &state_a);
    tkc_stream_region_list_fini(&regs);
    ck_assert_uint_eq(tkc_stream_region_count(s1), 0);
    /* the other store's stream keeps its region */
    ck_assert_uint_eq(tkc_stream_region_count(s2), 1);
    ck_assert_ptr_eq(tkc_stream_get_region(s2, 1, 12), &state_d);
    ck_assert_int_eq(c2.cancels, 0);
    tkc_stream_release(s1);
    tkc_stream_release(s2);
    tkc_stream_table_destroy(tbl);
}
END_TEST

START_TEST(test_stream_table_rate_limit)
{
    tkc_stream_table_t *tbl = tkc_stream_table_new(1000, NULL);
    call_t c1 = {0}, c2 = {0}, c3 = {0};
    int64_t retry = 0;
    tkc_stream_t *out = NULL;
    ck_assert(tkc_stream_table_next_alter_ms(tbl, 1) <= 0);
    tkc_stream_t *s1 = create_ok(tbl, 1, 0, &c1);
    ck_assert_int_eq(tkc_stream_table_create(tbl, 1, 5000, on_cancel, &c2, &out, &retry),
                     TKC_STREAM_EXISTS);
    ck_assert_int_eq(tkc_stream_add_region(s1, 1, 1, &state_a), TKC_ERR_OK);
    /* retire too soon after the create: nothing happens */
    tkc_stream_region_list_t regs;
    ck_assert_int_eq(tkc_stream_table_retire(tbl, s1, 500, &regs, &retry),
                     TKC_STREAM_RATE_LIMITED);
    ck_assert_int_eq(retry, 1000);
    ck_assert_uint_eq(regs.n, 0);
    ck_assert(!tkc_stream_retired(s1));
    ck_assert_int_eq(c1.cancels, 0);
    ck_assert_ptr_eq(current(tbl, 1), s1);
    ck_assert_uint_eq(tkc_stream_region_count(s1), 1);
    /* other stores are not held back */
    tkc_stream_t *s3 = create_ok(tbl, 2, 500, &c3);
    ck_assert_int_eq(tkc_stream_table_next_alter_ms(tbl, 2), 1500);
    ck_assert_int_eq(tkc_stream_table_next_alter_ms(tbl, 1), 1000);
    /* on time */
    ck_assert_int_eq(tkc_stream_table_retire(tbl, s1, 1000, &regs, &retry), TKC_STREAM_OK);
    ck_assert_uint_eq(regs.n, 1);
    tkc_stream_region_list_fini(&regs);
    ck_assert_int_eq(tkc_stream_table_next_alter_ms(tbl, 1), 2000);
    ck_assert_int_eq(tkc_stream_table_create(tbl, 1, 1999, on_cancel, &c2, &out, &retry),
                     TKC_STREAM_RATE_LIMITED);
    ck_assert_int_eq(retry, 2000);
    ck_assert_ptr_null(out);
    ck_assert_ptr_null(current(tbl, 1));
    tkc_stream_t *s2 = create_ok(tbl, 1, 2000, &c2);
    ck_assert_uint_eq(tkc_stream_table_count(tbl), 2);
    tkc_stream_release(s1);
    tkc_stream_release(s2);
    tkc_stream_release(s3);
    tkc_stream_table_destroy(tbl); /* drops live s2, s3 without cancelling */
    ck_assert_int_eq(c2.cancels, 0);
    ck_assert_int_eq(c3.cancels, 0);
}
END_TEST

static int freed_states;

static void free_state(void *p)
{
    (void)p;
    freed_states++;
}

START_TEST(test_stream_table_refs)
{
    freed_states = 0;
    tkc_stream_table_t *tbl = tkc_stream_table_new(0, free_state);
    call_t c = {0};
    tkc_stream_t *s = create_ok(tbl, 1, 0, &c);
    tkc_stream_t *g = tkc_stream_table_get(tbl, 1);
    ck_assert_ptr_eq(g, s);
    ck_assert_ptr_null(tkc_stream_table_get(tbl, 2));
    ck_assert_int_eq(tkc_stream_add_region(s, 1, 1, &state_a), TKC_ERR_OK);
    ck_assert_int_eq(tkc_stream_add_region(s, 1, 2, &state_b), TKC_ERR_OK);
    /* retire without taking the regions: they stay and are freed with it */
    ck_assert_int_eq(tkc_stream_table_retire(tbl, s, 0, NULL, NULL), TKC_STREAM_OK);
    tkc_stream_table_destroy(tbl);
    /* still valid: two references are held here */
    ck_assert_uint_eq(tkc_stream_region_count(g), 2);
    tkc_stream_release(s);
    ck_assert_int_eq(freed_states, 0);
    tkc_stream_release(g);
    ck_assert_int_eq(freed_states, 2);
    ck_assert_str_eq(tkc_stream_status_name(TKC_STREAM_RATE_LIMITED), "RATE_LIMITED");
}
END_TEST

/* Concurrent cleanups of one stream: exactly one wins. */
typedef struct race_s {
    tkc_stream_table_t *tbl;
    tkc_stream_t *st;
    pthread_barrier_t *bar;
    int ok, already, regions;
} race_t;

static void *race_main(void *p)
{
    race_t *r = p;
    pthread_barrier_wait(r->bar);
    tkc_stream_region_list_t regs;
    tkc_stream_status_t s = tkc_stream_table_retire(r->tbl, r->st, 0, &regs, NULL);
    r->ok = s == TKC_STREAM_OK;
    r->already = s == TKC_STREAM_ALREADY_RETIRED;
    r->regions = (int)regs.n;
    tkc_stream_region_list_fini(&regs);
    return NULL;
}

START_TEST(test_stream_table_concurrent_retire)
{
    enum { T = 4, ROUNDS = 200 };
    tkc_stream_table_t *tbl = tkc_stream_table_new(0, NULL);
    for (int round = 0; round < ROUNDS; round++) {
        call_t c = {0};
        tkc_stream_t *st = create_ok(tbl, 1, 0, &c);
        for (uint64_t i = 0; i < 10; i++)
            ck_assert_int_eq(tkc_stream_add_region(st, 1, i + 1, &state_a), TKC_ERR_OK);
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, T);
        pthread_t th[T];
        race_t r[T];
        for (int i = 0; i < T; i++) {
            r[i] = (race_t){.tbl = tbl, .st = st, .bar = &bar};
            pthread_create(&th[i], NULL, race_main, &r[i]);
        }
        int ok = 0, already = 0, regions = 0;
        for (int i = 0; i < T; i++) {
            pthread_join(th[i], NULL);
            ok += r[i].ok;
            already += r[i].already;
            regions += r[i].regions;
        }
        pthread_barrier_destroy(&bar);
        ck_assert_int_eq(ok, 1);
        ck_assert_int_eq(already, T - 1);
        ck_assert_int_eq(regions, 10);
        ck_assert_int_eq(c.cancels, 1);
        tkc_stream_release(st);
    }
    tkc_stream_table_destroy(tbl);
}
END_TEST

/*
 * The seed's scenario on a simulated clock: store 1 restarts at t=0; every
 * failed stream is retired at once by its owner AND again 5 s later by a
 * delayed cleanup (PR 10559's manual test injected exactly that delay).
 * Regions handed back are re-registered on a new stream as soon as the rate
 * limit allows. Count the streams opened in 60 s.
 */
#define SIM_REGIONS 50
#define SIM_MAX_STREAMS 128

typedef struct sim_s {
    tkc_stream_table_t *tbl;
    tkc_stream_t *streams[SIM_MAX_STREAMS];
    call_t calls[SIM_MAX_STREAMS];
    int64_t failed_at[SIM_MAX_STREAMS];  /* -1: healthy */
    bool cleanup_done[SIM_MAX_STREAMS];
    size_t n_streams;
    int pending; /* regions waiting for a stream */
    int region_state[SIM_REGIONS];
} sim_t;

static void sim_handback(sim_t *sim, tkc_stream_region_list_t *regs)
{
    sim->pending += (int)regs->n;
    tkc_stream_region_list_fini(regs);
}

static size_t sim_run(void)
{
    sim_t *sim = tkc_calloc(1, sizeof(*sim));
    sim->tbl = tkc_stream_table_new(TKC_STREAM_TABLE_ALTER_INTERVAL_MS_DEFAULT, NULL);
    /* steady state before the restart: one stream with every region */
    sim->streams[0] = create_ok(sim->tbl, 1, -10000, &sim->calls[0]);
    sim->n_streams = 1;
    for (int i = 0; i < SIM_REGIONS; i++)
        ck_assert_int_eq(tkc_stream_add_region(sim->streams[0], 1, (uint64_t)i + 1,
                                               &sim->region_state[i]),
                         TKC_ERR_OK);
    for (size_t i = 0; i < SIM_MAX_STREAMS; i++)
        sim->failed_at[i] = -1;
    sim->failed_at[0] = 0; /* TiKV restart: the call fails */

    for (int64_t now = 0; now <= 60000; now += 100) {
        for (size_t i = 0; i < sim->n_streams; i++) {
            tkc_stream_t *st = sim->streams[i];
            /* a cancelled call fails on its next completion */
            if (sim->failed_at[i] < 0 && sim->calls[i].cancels > 0)
                sim->failed_at[i] = now;
            if (sim->failed_at[i] < 0)
                continue;
            tkc_stream_region_list_t regs;
            /* the owner's retire, retried while rate-limited */
            if (!tkc_stream_retired(st) &&
                tkc_stream_table_retire(sim->tbl, st, now, &regs, NULL) == TKC_STREAM_OK)
                sim_handback(sim, &regs);
            /* the delayed second cleanup */
            if (!sim->cleanup_done[i] && now >= sim->failed_at[i] + 5000) {
                tkc_stream_status_t s = tkc_stream_table_retire(sim->tbl, st, now, &regs, NULL);
                if (s != TKC_STREAM_RATE_LIMITED) {
                    sim->cleanup_done[i] = true;
                    if (s == TKC_STREAM_OK)
                        sim_handback(sim, &regs);
                }
            }
        }
        /* re-register pending regions, opening a stream when allowed */
        if (sim->pending > 0) {
            tkc_stream_t *cur = tkc_stream_table_get(sim->tbl, 1);
            if (!cur && sim->n_streams < SIM_MAX_STREAMS) {
                size_t i = sim->n_streams;
                tkc_stream_t *st = NULL;
                if (tkc_stream_table_create(sim->tbl, 1, now, on_cancel, &sim->calls[i], &st,
                                            NULL) == TKC_STREAM_OK) {
                    sim->streams[i] = st;
                    sim->n_streams++;
                    cur = st;
                    tkc_stream_keep(cur);
                }
            }
            if (cur) {
                size_t idx = 0;
                while (sim->streams[idx] != cur)
                    idx++;
                for (int i = 0; i < SIM_REGIONS && sim->pending > 0; i++) {
                    if (tkc_stream_add_region(cur, 1, (uint64_t)i + 1, &sim->region_state[i]) ==
                        TKC_ERR_OK)
                        sim->pending--;
                }
                tkc_stream_release(cur);
            }
        }
    }
    size_t opened = sim->n_streams - 1;
    tkc_stream_t *last = tkc_stream_table_get(sim->tbl, 1);
    if (!EXPECT_ADDR) {
        ck_assert_ptr_nonnull(last);
        ck_assert_uint_eq(tkc_stream_region_count(last), SIM_REGIONS);
        ck_assert_int_eq(sim->pending, 0);
    }
    if (last)
        tkc_stream_release(last);
    for (size_t i = 0; i < sim->n_streams; i++)
        tkc_stream_release(sim->streams[i]);
    tkc_stream_table_destroy(sim->tbl);
    tkc_free(sim);
    return opened;
}

START_TEST(test_stream_table_restart_no_loop)
{
    size_t opened = sim_run();
    fprintf(stderr, "stream_table (%s): streams opened to the restarted store in 60 s: %zu\n",
            tkc_stream_table_addr_keyed() ? "address-keyed" : "id-guarded", opened);
    if (!EXPECT_ADDR)
        ck_assert_uint_eq(opened, 1); /* exactly one new stream per restart */
    else
        ck_assert_uint_ge(opened, 5); /* the downhill loop: one per cleanup delay */
}
END_TEST

static Suite *stream_table_suite(void)
{
    Suite *s = suite_create(EXPECT_ADDR ? "stream_table_addr_keyed" : "stream_table");
    TCase *tc = tcase_create("invariant");
    tcase_set_timeout(tc, 30);
#ifndef TKC_SKIP_MODE_CHECK
    tcase_add_test(tc, test_stream_table_mode);
#endif
    tcase_add_test(tc, test_stream_table_ids_unique);
    tcase_add_test(tc, test_stream_table_stale_retire_spares_newer);
    tcase_add_test(tc, test_stream_table_cancel_is_own);
    tcase_add_test(tc, test_stream_table_retire_idempotent);
    tcase_add_test(tc, test_stream_table_only_its_regions);
    tcase_add_test(tc, test_stream_table_rate_limit);
    tcase_add_test(tc, test_stream_table_refs);
    tcase_add_test(tc, test_stream_table_concurrent_retire);
    tcase_add_test(tc, test_stream_table_restart_no_loop);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(stream_table_suite)
