/*
 * check_frontier.c: unit tests of frontier (tikv-cdc-protocol.md §5.3-§5.4).
 *
 * Keys are 4-byte big-endian numbers K(i). Cases: forward and minimum,
 * never backwards, splits, merges, holes, several spans, +inf ends; a
 * randomized comparison with a per-key model; and the scale test (100k
 * regions, 1M random forwards) that prints its rate.
 */
#include "frontier.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "unit/check_main.h"

typedef struct key_s {
    uint8_t b[4];
} key_t_;

static key_t_ K(uint32_t i)
{
    key_t_ k = {{(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i}};
    return k;
}

static uint32_t unK(const uint8_t *b, size_t len)
{
    ck_assert_uint_eq(len, 4);
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static tkc_frontier_t *new_frontier(uint32_t a, uint32_t b)
{
    key_t_ s = K(a), e = K(b);
    tkc_keyrange_t span = {s.b, 4, e.b, 4};
    tkc_frontier_t *f = tkc_frontier_new(&span, 1, 0);
    ck_assert_ptr_nonnull(f);
    return f;
}

static void fwd(tkc_frontier_t *f, uint32_t span, uint64_t region, uint32_t a, uint32_t b,
                uint64_t ts)
{
    key_t_ s = K(a), e = K(b);
    ck_assert_int_eq(tkc_frontier_forward(f, span, region, s.b, 4, e.b, 4, ts), TKC_ERR_OK);
    ck_assert(tkc_frontier_check(f));
}

typedef struct pieces_s {
    uint32_t a[16], b[16];
    uint64_t ts[16], region[16];
    size_t n;
} pieces_t;

static void collect(void *opaque, const tkc_frontier_piece_t *p)
{
    pieces_t *ps = opaque;
    ck_assert_uint_lt(ps->n, 16);
    ps->a[ps->n] = unK(p->range.start, p->range.start_len);
    ps->b[ps->n] = unK(p->range.end, p->range.end_len);
    ps->ts[ps->n] = p->ts;
    ps->region[ps->n] = p->region_id;
    ps->n++;
}

START_TEST(test_frontier_basic)
{
    tkc_frontier_t *f = new_frontier(0, 100);
    ck_assert_uint_eq(tkc_frontier_min(f), 0);
    fwd(f, 0, 1, 0, 50, 10);
    ck_assert_uint_eq(tkc_frontier_min(f), 0); /* [50,100) not reported yet */
    fwd(f, 0, 2, 50, 100, 20);
    ck_assert_uint_eq(tkc_frontier_min(f), 10);
    ck_assert_uint_eq(tkc_frontier_span_min(f, 0), 10);
    fwd(f, 0, 1, 0, 50, 30);
    ck_assert_uint_eq(tkc_frontier_min(f), 20);
    ck_assert_uint_eq(tkc_frontier_piece_count(f, 0), 2);
    tkc_frontier_piece_t p;
    ck_assert(tkc_frontier_slowest(f, 0, &p));
    ck_assert_uint_eq(p.region_id, 2);
    ck_assert_uint_eq(p.ts, 20);
    ck_assert_uint_eq(unK(p.range.start, p.range.start_len), 50);
    ck_assert_uint_eq(unK(p.range.end, p.range.end_len), 100);
    tkc_frontier_destroy(f);
}
END_TEST

START_TEST(test_frontier_monotonic)
{
    tkc_frontier_t *f = new_frontier(0, 100);
    fwd(f, 0, 1, 0, 100, 30);
    fwd(f, 0, 1, 0, 100, 25); /* a lower report changes nothing */
    ck_assert_uint_eq(tkc_frontier_min(f), 30);
    /* after a split the children register from a lower ts: no fall back */
    fwd(f, 0, 1, 0, 50, 20);
    fwd(f, 0, 3, 50, 100, 25);
    ck_assert_uint_eq(tkc_frontier_min(f), 30);
    pieces_t ps = {.n = 0};
    tkc_frontier_foreach(f, 0, collect, &ps);
    ck_assert_uint_eq(ps.n, 2);
    ck_assert_uint_eq(ps.ts[0], 30);
    ck_assert_uint_eq(ps.ts[1], 30);
    fwd(f, 0, 3, 50, 100, 40);
    fwd(f, 0, 1, 0, 50, 35);
    ck_assert_uint_eq(tkc_frontier_min(f), 35);
    tkc_frontier_destroy(f);
}
END_TEST

START_TEST(test_frontier_split)
{
    tkc_frontier_t *f = new_frontier(0, 100);
    fwd(f, 0, 1, 0, 100, 50);
    /* region 1 keeps [0,40), the new region 2 gets [40,100) */
    fwd(f, 0, 1, 0, 40, 60);
    ck_assert_uint_eq(tkc_frontier_min(f), 50); /* [40,100) still at 50 */
    pieces_t ps = {.n = 0};
    tkc_frontier_foreach(f, 0, collect, &ps);
    ck_assert_uint_eq(ps.n, 2);
    ck_assert_uint_eq(ps.a[1], 40);
    ck_assert_uint_eq(ps.ts[1], 50);
    ck_assert_uint_eq(ps.region[1], 0); /* cut piece: no region yet */
    fwd(f, 0, 2, 40, 100, 70);
    ck_assert_uint_eq(tkc_frontier_min(f), 60);
    /* split in the middle of a piece: three pieces, the outer ones keep ts */
    fwd(f, 0, 5, 60, 80, 90);
    ps.n = 0;
    tkc_frontier_foreach(f, 0, collect, &ps);
    ck_assert_uint_eq(ps.n, 4);
    ck_assert_uint_eq(ps.a[2], 60);
    ck_assert_uint_eq(ps.b[2], 80);
    ck_assert_uint_eq(ps.ts[2], 90);
    ck_assert_uint_eq(ps.a[3], 80);
    ck_assert_uint_eq(ps.ts[3], 70);
    ck_assert_uint_eq(ps.ts[1], 70);
    /* region 2's cached piece no longer matches [40,100): slow path */
    fwd(f, 0, 2, 40, 60, 95);
    fwd(f, 0, 7, 80, 100, 95);
    ck_assert_uint_eq(tkc_frontier_min(f), 60);
    fwd(f, 0, 1, 0, 40, 99);
    ck_assert_uint_eq(tkc_frontier_min(f), 90);
    tkc_frontier_destroy(f);
}
END_TEST

START_TEST(test_frontier_merge)
{
    tkc_frontier_t *f = new_frontier(0, 100);
    fwd(f, 0, 1, 0, 50, 60);
    fwd(f, 0, 2, 50, 100, 40);
    /* region 2 absorbs region 1, registered from min = 40, reports 45 */
    fwd(f, 0, 2, 0, 100, 45);
    ck_assert_uint_eq(tkc_frontier_piece_count(f, 0), 1);
    ck_assert_uint_eq(tkc_frontier_min(f), 45);
    /* a late report of the vanished region 1 splits again but cannot lower */
    fwd(f, 0, 1, 0, 50, 30);
    ck_assert_uint_eq(tkc_frontier_min(f), 45);
    /* a merged report below what the covered pieces know keeps their min */
    fwd(f, 0, 9, 0, 100, 10);
    ck_assert_uint_eq(tkc_frontier_min(f), 45);
    ck_assert_uint_eq(tkc_frontier_piece_count(f, 0), 1);
    tkc_frontier_destroy(f);
}
END_TEST

START_TEST(test_frontier_holes)
{
    tkc_frontier_t *f = new_frontier(0, 100);
    fwd(f, 0, 1, 0, 10, 100);
    fwd(f, 0, 2, 20, 30, 100);
    fwd(f, 0, 3, 40, 100, 100);
    /* [10,20) and [30,40) never reported: frontier held at 0 */
    ck_assert_uint_eq(tkc_frontier_min(f), 0);
    tkc_frontier_piece_t p;
    ck_assert(tkc_frontier_slowest(f, 0, &p));
    ck_assert_uint_eq(p.ts, 0);
    ck_assert_uint_eq(p.region_id, 0);
    fwd(f, 0, 4, 10, 20, 100);
    ck_assert_uint_eq(tkc_frontier_min(f), 0);
    fwd(f, 0, 5, 30, 40, 120);
    ck_assert_uint_eq(tkc_frontier_min(f), 100);
    /* ranges are clipped to the span */
    key_t_ a = K(90), b = K(500);
    ck_assert_int_eq(tkc_frontier_forward(f, 0, 3, a.b, 4, b.b, 4, 130), TKC_ERR_OK);
    ck_assert_int_eq(tkc_frontier_forward(f, 0, 3, a.b, 4, NULL, 0, 130), TKC_ERR_OK);
    ck_assert(tkc_frontier_check(f));
    /* entirely outside, empty, unknown span */
    key_t_ c = K(200);
    ck_assert_int_eq(tkc_frontier_forward(f, 0, 3, b.b, 4, c.b, 4, 130), TKC_ERR_INVALID_ARG);
    ck_assert_int_eq(tkc_frontier_forward(f, 0, 3, a.b, 4, a.b, 4, 130), TKC_ERR_INVALID_ARG);
    ck_assert_int_eq(tkc_frontier_forward(f, 1, 3, a.b, 4, b.b, 4, 130), TKC_ERR_INVALID_ARG);
    ck_assert_uint_eq(tkc_frontier_span_min(f, 1), UINT64_MAX);
    ck_assert(!tkc_frontier_slowest(f, 1, &p));
    tkc_frontier_destroy(f);
}
END_TEST

START_TEST(test_frontier_spans)
{
    key_t_ k[6] = {K(0), K(100), K(200), K(300), K(400), K(500)};
    tkc_keyrange_t spans[3] = {{k[0].b, 4, k[1].b, 4}, {k[2].b, 4, k[3].b, 4},
                               {k[4].b, 4, k[5].b, 4}};
    tkc_frontier_t *f = tkc_frontier_new(spans, 3, 5);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(tkc_frontier_span_count(f), 3);
    ck_assert_uint_eq(tkc_frontier_min(f), 5);
    fwd(f, 0, 1, 0, 100, 50);
    fwd(f, 2, 3, 400, 500, 70);
    ck_assert_uint_eq(tkc_frontier_min(f), 5);
    fwd(f, 1, 2, 200, 300, 60);
    ck_assert_uint_eq(tkc_frontier_min(f), 50);
    ck_assert_uint_eq(tkc_frontier_span_min(f, 1), 60);
    /* one region may intersect two spans: cached per (span, region) */
    fwd(f, 0, 9, 50, 100, 80);
    fwd(f, 1, 9, 200, 250, 80);
    fwd(f, 0, 1, 0, 50, 90);
    ck_assert_uint_eq(tkc_frontier_span_min(f, 0), 80);
    ck_assert_uint_eq(tkc_frontier_min(f), 60);
    tkc_frontier_destroy(f);
    /* invalid construction */
    ck_assert_ptr_null(tkc_frontier_new(spans, 0, 0));
    tkc_keyrange_t bad = {k[1].b, 4, k[0].b, 4};
    ck_assert_ptr_null(tkc_frontier_new(&bad, 1, 0));
}
END_TEST

START_TEST(test_frontier_infinite)
{
    tkc_keyrange_t all = {NULL, 0, NULL, 0};
    tkc_frontier_t *f = tkc_frontier_new(&all, 1, 0);
    ck_assert_ptr_nonnull(f);
    key_t_ m = K(50);
    ck_assert_int_eq(tkc_frontier_forward(f, 0, 1, NULL, 0, m.b, 4, 10), TKC_ERR_OK);
    ck_assert_int_eq(tkc_frontier_forward(f, 0, 2, m.b, 4, NULL, 0, 20), TKC_ERR_OK);
    ck_assert(tkc_frontier_check(f));
    ck_assert_uint_eq(tkc_frontier_min(f), 10);
    ck_assert_int_eq(tkc_frontier_forward(f, 0, 2, m.b, 4, NULL, 0, 30), TKC_ERR_OK); /* fast */
    ck_assert_int_eq(tkc_frontier_forward(f, 0, 1, NULL, 0, m.b, 4, 40), TKC_ERR_OK);
    ck_assert_uint_eq(tkc_frontier_min(f), 30);
    ck_assert_int_eq(tkc_frontier_forward(f, 0, 3, NULL, 0, NULL, 0, 35), TKC_ERR_OK);
    ck_assert_uint_eq(tkc_frontier_piece_count(f, 0), 1);
    ck_assert_uint_eq(tkc_frontier_min(f), 35);
    ck_assert(tkc_frontier_check(f));
    tkc_frontier_destroy(f);
}
END_TEST

/* ===== model ===== */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

typedef struct model_check_s {
    const uint64_t *ts;
    uint32_t base;
} model_check_t;

static void check_piece(void *opaque, const tkc_frontier_piece_t *p)
{
    const model_check_t *mc = opaque;
    uint32_t a = unK(p->range.start, p->range.start_len);
    uint32_t b = unK(p->range.end, p->range.end_len);
    for (uint32_t i = a; i < b; i++)
        ck_assert_uint_eq(mc->ts[i - mc->base], p->ts);
}

START_TEST(test_frontier_model)
{
    enum { MN = 64 };
    rng_state = 0x243f6a8885a308d3ULL;
    key_t_ k[4] = {K(0), K(MN), K(1000), K(1000 + MN)};
    tkc_keyrange_t spans[2] = {{k[0].b, 4, k[1].b, 4}, {k[2].b, 4, k[3].b, 4}};
    tkc_frontier_t *f = tkc_frontier_new(spans, 2, 0);
    uint64_t ts[2][MN];
    memset(ts, 0, sizeof(ts));
    /* a region keeps its last range for a while so the fast path is hit */
    uint32_t ra[2][8], rb[2][8];
    for (int s = 0; s < 2; s++)
        for (int r = 0; r < 8; r++) {
            ra[s][r] = (uint32_t)r * 8;
            rb[s][r] = ra[s][r] + 8;
        }
    for (int op = 0; op < 30000; op++) {
        uint32_t s = (uint32_t)(rnd() % 2), r = (uint32_t)(rnd() % 8);
        if (rnd() % 8 == 0) { /* the region's range changes */
            uint32_t a = (uint32_t)(rnd() % MN), b = (uint32_t)(rnd() % MN);
            if (a == b)
                continue;
            ra[s][r] = a < b ? a : b;
            rb[s][r] = a < b ? b : a;
        }
        uint64_t t = (uint64_t)op / 4 + rnd() % 64;
        uint32_t base = s ? 1000 : 0;
        fwd(f, s, r + 1, base + ra[s][r], base + rb[s][r], t);
        uint64_t m = UINT64_MAX;
        for (uint32_t i = ra[s][r]; i < rb[s][r]; i++)
            m = ts[s][i] < m ? ts[s][i] : m;
        uint64_t nt = t > m ? t : m;
        for (uint32_t i = ra[s][r]; i < rb[s][r]; i++)
            ts[s][i] = nt;
        uint64_t want[2] = {UINT64_MAX, UINT64_MAX};
        for (int q = 0; q < 2; q++)
            for (int i = 0; i < MN; i++)
                want[q] = ts[q][i] < want[q] ? ts[q][i] : want[q];
        ck_assert_uint_eq(tkc_frontier_span_min(f, 0), want[0]);
        ck_assert_uint_eq(tkc_frontier_span_min(f, 1), want[1]);
        ck_assert_uint_eq(tkc_frontier_min(f), want[0] < want[1] ? want[0] : want[1]);
        if (op % 97 == 0) {
            model_check_t mc = {ts[s], base};
            tkc_frontier_foreach(f, s, check_piece, &mc);
        }
    }
    tkc_frontier_destroy(f);
}
END_TEST

/* ===== scale ===== */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

START_TEST(test_frontier_100k)
{
    enum { N = 100000, F = 1000000, S = 20000 };
    const uint32_t step = 16;
    tkc_frontier_t *f = new_frontier(0, N * step);
    static key_t_ keys[N + 1];
    for (uint32_t i = 0; i <= N; i++)
        keys[i] = K(i * step);
    double t0 = now_s();
    /* no ck_assert in the loops: it writes to a pipe on every call */
    for (uint32_t i = 0; i < N; i++)
        if (tkc_frontier_forward(f, 0, i + 1, keys[i].b, 4, keys[i + 1].b, 4, 1) != TKC_ERR_OK)
            ck_abort_msg("forward %u failed", i);
    double t1 = now_s();
    ck_assert_uint_eq(tkc_frontier_piece_count(f, 0), N);
    ck_assert_uint_eq(tkc_frontier_min(f), 1);
    rng_state = 7;
    uint64_t last_min = 0;
    for (uint32_t k = 0; k < F; k++) {
        uint32_t i = (uint32_t)(rnd() % N);
        tkc_frontier_forward(f, 0, i + 1, keys[i].b, 4, keys[i + 1].b, 4, 2 + k);
        uint64_t m = tkc_frontier_min(f);
        if (m < last_min)
            ck_abort_msg("frontier went backwards: %llu < %llu", (unsigned long long)m,
                         (unsigned long long)last_min);
        last_min = m;
    }
    double t2 = now_s();
    /* splits and merges: region i splits at its middle, then merges back */
    for (uint32_t k = 0; k < S; k++) {
        uint32_t i = (uint32_t)(rnd() % N);
        key_t_ mid = K(i * step + step / 2);
        uint64_t t = 2 + F + k;
        tkc_frontier_forward(f, 0, i + 1, keys[i].b, 4, mid.b, 4, t);
        tkc_frontier_forward(f, 0, N + i + 1, mid.b, 4, keys[i + 1].b, 4, t);
        tkc_frontier_forward(f, 0, i + 1, keys[i].b, 4, keys[i + 1].b, 4, t + 1);
    }
    double t3 = now_s();
    ck_assert(tkc_frontier_check(f));
    ck_assert_uint_eq(tkc_frontier_piece_count(f, 0), N);
    fprintf(stderr,
            "frontier 100k regions: initial (split) forwards %.0f/s, "
            "1M random forwards in %.3f s = %.0f/s, split+merge %.0f ops/s\n",
            N / (t1 - t0), t2 - t1, F / (t2 - t1), 3.0 * S / (t3 - t2));
    tkc_frontier_destroy(f);
}
END_TEST

static Suite *frontier_suite(void)
{
    Suite *s = suite_create("frontier");
    TCase *tc = tcase_create("frontier");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_frontier_basic);
    tcase_add_test(tc, test_frontier_monotonic);
    tcase_add_test(tc, test_frontier_split);
    tcase_add_test(tc, test_frontier_merge);
    tcase_add_test(tc, test_frontier_holes);
    tcase_add_test(tc, test_frontier_spans);
    tcase_add_test(tc, test_frontier_infinite);
    suite_add_tcase(s, tc);

    tc = tcase_create("model");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_frontier_model);
    suite_add_tcase(s, tc);

    tc = tcase_create("scale");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_frontier_100k);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(frontier_suite)
