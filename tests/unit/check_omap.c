/*
 * check_omap.c: unit tests of util/omap (ordered map with subtree-minimum
 * weights), against a brute-force sorted-array model.
 *
 * Keys are short strings over {00, 01, 02, FF} of length 0-3, so the empty
 * key, prefixes and 0xFF bytes all occur; every operation is followed by the
 * structural check (AVL balance, order, parent links, submin).
 */
#include "util/omap.h"

#include <string.h>

#include "unit/check_main.h"
#include "util/keyrange.h"

#define MAXK 3
#define NKEYS 85 /* 1 + 4 + 16 + 64 */

typedef struct mkey_s {
    uint8_t b[MAXK];
    size_t len;
} mkey_t;

static mkey_t all_keys[NKEYS];

/* every key, in byte-wise order */
static void build_keys(void)
{
    static const uint8_t alpha[4] = {0x00, 0x01, 0x02, 0xFF};
    size_t n = 0;
    all_keys[n++].len = 0;
    for (size_t len = 1; len <= MAXK; len++) {
        size_t combos = 1;
        for (size_t i = 0; i < len; i++)
            combos *= 4;
        for (size_t c = 0; c < combos; c++) {
            size_t x = c;
            for (size_t i = len; i-- > 0;) {
                all_keys[n].b[i] = alpha[x % 4];
                x /= 4;
            }
            all_keys[n].len = len;
            n++;
        }
    }
    ck_assert_uint_eq(n, NKEYS);
    /* insertion sort into byte-wise order */
    for (size_t i = 1; i < NKEYS; i++)
        for (size_t j = i; j > 0 && tkc_key_cmp(all_keys[j - 1].b, all_keys[j - 1].len,
                                               all_keys[j].b, all_keys[j].len) > 0;
             j--) {
            mkey_t t = all_keys[j];
            all_keys[j] = all_keys[j - 1];
            all_keys[j - 1] = t;
        }
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static int idx_of(const tkc_omap_node_t *n)
{
    if (!n)
        return -1;
    size_t len;
    const uint8_t *k = tkc_omap_key(n, &len);
    for (int i = 0; i < NKEYS; i++)
        if (tkc_key_cmp(k, len, all_keys[i].b, all_keys[i].len) == 0)
            return i;
    ck_abort_msg("node with unknown key");
    return -1;
}

START_TEST(test_omap_model)
{
    build_keys();
    rng_state = 0xdeadbeefcafef00dULL;
    bool present[NKEYS] = {false};
    uint64_t weight[NKEYS] = {0};
    tkc_omap_node_t *nodes[NKEYS] = {NULL};
    tkc_omap_t *m = tkc_omap_new();
    for (int op = 0; op < 8000; op++) {
        int i = (int)(rnd() % NKEYS);
        int kind = (int)(rnd() % 4);
        if (kind == 0 || kind == 1) {
            bool existed = true;
            uint64_t w = rnd() % 1000;
            tkc_omap_node_t *n = tkc_omap_insert(m, all_keys[i].b, all_keys[i].len,
                                                 &present[i], w, &existed);
            ck_assert(existed == present[i]);
            if (!present[i]) {
                present[i] = true;
                weight[i] = w;
                nodes[i] = n;
            } else {
                ck_assert_ptr_eq(n, nodes[i]); /* handles are stable */
            }
        } else if (kind == 2 && present[i]) {
            ck_assert_ptr_eq(tkc_omap_remove(m, nodes[i]), &present[i]);
            present[i] = false;
            nodes[i] = NULL;
        } else if (kind == 3 && present[i]) {
            weight[i] = rnd() % 1000;
            tkc_omap_set_weight(m, nodes[i], weight[i]);
        }
        ck_assert(tkc_omap_check(m));

        /* lookups against the model */
        size_t count = 0;
        uint64_t minw = UINT64_MAX;
        for (int k = 0; k < NKEYS; k++) {
            if (present[k]) {
                count++;
                minw = weight[k] < minw ? weight[k] : minw;
            }
        }
        ck_assert_uint_eq(tkc_omap_count(m), count);
        ck_assert_uint_eq(tkc_omap_min_weight(m), minw);
        tkc_omap_node_t *mn = tkc_omap_min_weight_node(m);
        if (count)
            ck_assert_uint_eq(tkc_omap_weight(mn), minw);
        else
            ck_assert_ptr_null(mn);

        int q = (int)(rnd() % NKEYS);
        const mkey_t *qk = &all_keys[q];
        int want_floor = -1, want_ceil = -1;
        for (int k = 0; k <= q; k++)
            if (present[k])
                want_floor = k;
        for (int k = NKEYS - 1; k >= q; k--)
            if (present[k])
                want_ceil = k;
        ck_assert_int_eq(idx_of(tkc_omap_floor(m, qk->b, qk->len)), want_floor);
        ck_assert_int_eq(idx_of(tkc_omap_ceil(m, qk->b, qk->len)), want_ceil);
        ck_assert_int_eq(idx_of(tkc_omap_find(m, qk->b, qk->len)), present[q] ? q : -1);
        if (present[q]) {
            int nx = -1, pv = -1;
            for (int k = q + 1; k < NKEYS && nx < 0; k++)
                if (present[k])
                    nx = k;
            for (int k = q - 1; k >= 0 && pv < 0; k--)
                if (present[k])
                    pv = k;
            ck_assert_int_eq(idx_of(tkc_omap_next(nodes[q])), nx);
            ck_assert_int_eq(idx_of(tkc_omap_prev(nodes[q])), pv);
            ck_assert_ptr_eq(tkc_omap_value(nodes[q]), &present[q]);
        }

        /* range minimum over [lo, hi), hi empty = +inf */
        int lo = (int)(rnd() % NKEYS), hi = (int)(rnd() % NKEYS);
        bool hi_inf = all_keys[hi].len == 0;
        uint64_t want = UINT64_MAX;
        for (int k = lo; k < NKEYS; k++)
            if (present[k] && (hi_inf || k < hi))
                want = weight[k] < want ? weight[k] : want;
        ck_assert_uint_eq(tkc_omap_range_min(m, all_keys[lo].b, all_keys[lo].len, all_keys[hi].b,
                                             all_keys[hi].len),
                          want);
    }
    int first = -1, last = -1;
    for (int k = 0; k < NKEYS; k++)
        if (present[k]) {
            first = first < 0 ? k : first;
            last = k;
        }
    ck_assert_int_eq(idx_of(tkc_omap_first(m)), first);
    ck_assert_int_eq(idx_of(tkc_omap_last(m)), last);
    tkc_omap_destroy(m, NULL);
}
END_TEST

static int freed;

static void count_free(void *p)
{
    (void)p;
    freed++;
}

START_TEST(test_omap_sequential)
{
    /* ascending and descending inserts stay balanced; destroy frees all */
    tkc_omap_t *m = tkc_omap_new();
    for (uint32_t i = 0; i < 5000; i++) {
        uint8_t k[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        tkc_omap_insert(m, k, 4, &freed, i, NULL);
    }
    for (uint32_t i = 10000; i > 5000; i--) {
        uint8_t k[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        tkc_omap_insert(m, k, 4, &freed, i, NULL);
    }
    ck_assert(tkc_omap_check(m));
    ck_assert_uint_eq(tkc_omap_count(m), 10000);
    ck_assert_uint_eq(tkc_omap_min_weight(m), 0);
    ck_assert_uint_gt(tkc_omap_bytes(m), 10000 * 4);
    /* remove every other entry by walking */
    tkc_omap_node_t *n = tkc_omap_first(m);
    while (n) {
        tkc_omap_node_t *next = tkc_omap_next(n);
        tkc_omap_remove(m, n);
        n = next ? tkc_omap_next(next) : NULL;
    }
    ck_assert(tkc_omap_check(m));
    ck_assert_uint_eq(tkc_omap_count(m), 5000);
    ck_assert_uint_eq(tkc_omap_min_weight(m), 1);
    freed = 0;
    tkc_omap_destroy(m, count_free);
    ck_assert_int_eq(freed, 5000);
    tkc_omap_destroy(NULL, NULL);
}
END_TEST

static Suite *omap_suite(void)
{
    Suite *s = suite_create("omap");
    TCase *tc = tcase_create("omap");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_omap_model);
    tcase_add_test(tc, test_omap_sequential);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(omap_suite)
