/*
 * check_hashmap.c: unit tests of util/hashmap against a direct-indexed
 * model: put/get/remove/replace over variable-length keys (including the
 * empty key), growth, iteration, byte accounting, clear and destroy; the
 * same for fixed-key (open addressing) maps, whose removal shifts entries
 * back and wraps around the end of the slot array.
 */
#include "util/hashmap.h"

#include <stdio.h>
#include <string.h>

#include "unit/check_main.h"

#define NK 3000

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

/* key i: its decimal digits repeated (i % 7) times; key 0 is empty */
static size_t make_key(int i, char *out)
{
    if (i == 0)
        return 0;
    char d[16];
    int n = snprintf(d, sizeof(d), "%d", i);
    size_t len = 0;
    for (int r = 0; r <= i % 7; r++) {
        memcpy(out + len, d, (size_t)n);
        len += (size_t)n;
    }
    return len;
}

static int vals[NK];

START_TEST(test_hashmap_model)
{
    rng_state = 12345;
    tkc_hashmap_t *hm = tkc_hashmap_new();
    bool present[NK] = {false};
    int *stored[NK] = {NULL};
    size_t count = 0, key_bytes = 0;
    char key[128];
    for (int op = 0; op < 100000; op++) {
        int i = (int)(rnd() % NK);
        size_t klen = make_key(i, key);
        int kind = (int)(rnd() % 3);
        int *got = tkc_hashmap_get(hm, key, klen);
        if (got != (present[i] ? stored[i] : NULL))
            ck_abort_msg("get %d: wrong value", i);
        if (kind < 2) {
            int *v = &vals[rnd() % NK];
            int *old = tkc_hashmap_put(hm, key, klen, v);
            if (old != (present[i] ? stored[i] : NULL))
                ck_abort_msg("put %d: wrong previous value", i);
            if (!present[i]) {
                count++;
                key_bytes += klen;
            }
            present[i] = true;
            stored[i] = v;
        } else {
            int *old = tkc_hashmap_remove(hm, key, klen);
            if (old != (present[i] ? stored[i] : NULL))
                ck_abort_msg("remove %d: wrong value", i);
            if (present[i]) {
                count--;
                key_bytes -= klen;
            }
            present[i] = false;
        }
        if (tkc_hashmap_count(hm) != count)
            ck_abort_msg("count %zu, want %zu", tkc_hashmap_count(hm), count);
    }
    /* bytes: the entries with their keys, plus the table itself */
    ck_assert_uint_ge(tkc_hashmap_bytes(hm),
                      count * tkc_hashmap_entry_bytes(0) + key_bytes);
    /* iteration visits every entry exactly once */
    bool seen[NK] = {false};
    tkc_hashmap_iter_t it = TKC_HASHMAP_ITER_INIT;
    const void *k;
    size_t kl;
    void *v;
    size_t visited = 0;
    while (tkc_hashmap_next(hm, &it, &k, &kl, &v)) {
        int found = -1;
        for (int i = 0; i < NK && found < 0; i++) {
            if (!present[i])
                continue;
            size_t l = make_key(i, key);
            if (l == kl && (l == 0 || memcmp(key, k, l) == 0))
                found = i;
        }
        ck_assert_int_ge(found, 0);
        ck_assert(!seen[found]);
        ck_assert_ptr_eq(v, stored[found]);
        seen[found] = true;
        visited++;
    }
    ck_assert_uint_eq(visited, count);
    ck_assert(!tkc_hashmap_next(hm, &it, &k, &kl, &v)); /* stays at the end */
    tkc_hashmap_clear(hm, NULL);
    ck_assert_uint_eq(tkc_hashmap_count(hm), 0);
    ck_assert_ptr_null(tkc_hashmap_get(hm, "1", 1));
    tkc_hashmap_destroy(hm, NULL);
}
END_TEST

static int freed;

static void count_free(void *p)
{
    ck_assert_ptr_nonnull(p);
    freed++;
}

START_TEST(test_hashmap_free)
{
    tkc_hashmap_t *hm = tkc_hashmap_new();
    for (int i = 0; i < 1000; i++)
        tkc_hashmap_put(hm, &i, sizeof(i), &vals[i]);
    freed = 0;
    tkc_hashmap_clear(hm, count_free);
    ck_assert_int_eq(freed, 1000);
    for (int i = 0; i < 10; i++)
        tkc_hashmap_put(hm, &i, sizeof(i), &vals[i]);
    freed = 0;
    tkc_hashmap_destroy(hm, count_free);
    ck_assert_int_eq(freed, 10);
    tkc_hashmap_destroy(NULL, NULL);
}
END_TEST

/* One model run over a fixed-key map of @p klen byte keys drawn from @p nk ids. */
static void fixed_model(size_t klen, int nk, int ops, uint64_t seed)
{
    rng_state = seed;
    tkc_hashmap_t *hm = tkc_hashmap_new_fixed(klen);
    bool present[NK] = {false};
    int *stored[NK] = {NULL};
    size_t count = 0, max_count = 0;
    uint8_t key[32];
    for (int op = 0; op < ops; op++) {
        int i = (int)(rnd() % (uint64_t)nk);
        memset(key, 0xA5, sizeof(key));
        memcpy(key + klen - sizeof(i), &i, sizeof(i)); /* the id in the last bytes */
        int kind = (int)(rnd() % 3);
        int *got = tkc_hashmap_get(hm, key, klen);
        if (got != (present[i] ? stored[i] : NULL))
            ck_abort_msg("fixed %zu get %d at op %d: wrong value", klen, i, op);
        if (kind == 0) {
            int *v = &vals[rnd() % NK];
            int *old = tkc_hashmap_put(hm, key, klen, v);
            if (old != (present[i] ? stored[i] : NULL))
                ck_abort_msg("fixed put %d: wrong previous value", i);
            count += !present[i];
            present[i] = true;
            stored[i] = v;
        } else if (kind == 1 || (kind == 2 && op % 2)) {
            int *old = tkc_hashmap_remove(hm, key, klen);
            if (old != (present[i] ? stored[i] : NULL))
                ck_abort_msg("fixed remove %d: wrong value", i);
            count -= present[i];
            present[i] = false;
        }
        if (tkc_hashmap_count(hm) != count)
            ck_abort_msg("fixed count %zu, want %zu", tkc_hashmap_count(hm), count);
        if (count > max_count)
            max_count = count;
    }
    /* every present key is found, every absent one is not */
    for (int i = 0; i < nk; i++) {
        memset(key, 0xA5, sizeof(key));
        memcpy(key + klen - sizeof(i), &i, sizeof(i));
        ck_assert_ptr_eq(tkc_hashmap_get(hm, key, klen), present[i] ? stored[i] : NULL);
    }
    /* no allocation per entry: the bytes are the slot array, at most
     * 8/3 slots per entry the map ever held (it grows at 3/4, never shrinks) */
    ck_assert_uint_le(tkc_hashmap_bytes(hm),
                      256 + (max_count * 8 / 3 + 8) * (8 + ((klen + 7) & ~(size_t)7)));
    bool seen[NK] = {false};
    tkc_hashmap_iter_t it = TKC_HASHMAP_ITER_INIT;
    const void *k;
    size_t kl, visited = 0;
    void *v;
    while (tkc_hashmap_next(hm, &it, &k, &kl, &v)) {
        ck_assert_uint_eq(kl, klen);
        int i;
        memcpy(&i, (const uint8_t *)k + klen - sizeof(i), sizeof(i));
        ck_assert(i >= 0 && i < nk && present[i] && !seen[i]);
        ck_assert_ptr_eq(v, stored[i]);
        seen[i] = true;
        visited++;
    }
    ck_assert_uint_eq(visited, count);
    ck_assert(!tkc_hashmap_next(hm, &it, &k, &kl, &v));
    freed = 0;
    tkc_hashmap_clear(hm, count_free);
    ck_assert_int_eq(freed, (int)count);
    ck_assert_uint_eq(tkc_hashmap_count(hm), 0);
    it = (tkc_hashmap_iter_t)TKC_HASHMAP_ITER_INIT;
    ck_assert(!tkc_hashmap_next(hm, &it, &k, &kl, &v));
    tkc_hashmap_destroy(hm, NULL);
}

START_TEST(test_hashmap_fixed_model)
{
    static const size_t klens[] = {4, 8, 12, 16, 32};
    for (size_t k = 0; k < sizeof(klens) / sizeof(klens[0]); k++) {
        fixed_model(klens[k], 5, 2000, 7 + k);       /* a tiny table: runs wrap around */
        fixed_model(klens[k], 40, 20000, 11 + k);
        fixed_model(klens[k], NK, 100000, 13 + k);   /* growth */
    }
}
END_TEST

static Suite *hashmap_suite(void)
{
    Suite *s = suite_create("hashmap");
    TCase *tc = tcase_create("hashmap");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hashmap_model);
    tcase_add_test(tc, test_hashmap_free);
    tcase_add_test(tc, test_hashmap_fixed_model);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(hashmap_suite)
