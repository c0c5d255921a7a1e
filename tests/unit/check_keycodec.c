/*
 * check_keycodec.c: unit tests of util/keycodec (memcomparable encoding and
 * TiDB record keys).
 *
 * The worked examples are the byte strings of tikv-cdc-protocol.md §8.16
 * (from TiDB's codec and a span printed in tiflow#8242); the property tests
 * (round trip, order preservation) use a fixed-seed PRNG so a failure can be
 * reproduced, with enough iterations to hit prefixes and group boundaries.
 */
#include "util/keycodec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit/check_main.h"

/* ===== helpers ===== */

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (; hex[0] && hex[1]; hex += 2) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex, "%2x", &v), 1);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void tohex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02X", b[i]);
    out[2 * n] = 0;
}

/* Encodes @p raw and checks the result against @p want_hex (upper case). */
static void check_encodes_to(const uint8_t *raw, size_t len, const char *want_hex)
{
    uint8_t enc[256];
    char got[600];
    size_t elen = tkc_keycodec_encoded_len(len);
    ck_assert_uint_le(elen, sizeof(enc));
    tkc_keycodec_encode(raw, len, enc);
    tohex(enc, elen, got);
    ck_assert_str_eq(got, want_hex);

    /* and back */
    uint8_t dec[256];
    size_t dlen = 12345;
    ck_assert_int_eq(tkc_keycodec_decode(enc, elen, dec, &dlen), 0);
    ck_assert_uint_eq(dlen, len);
    ck_assert(len == 0 || memcmp(dec, raw, len) == 0);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    /* splitmix64: tiny, good enough for test data, fixed seed */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Random key of length 0..maxlen over a small alphabet (0x00, 0x01, 0xFE,
 * 0xFF, 'a'), so that prefixes, equal bytes and marker-like bytes are common. */
static size_t random_key(uint8_t *out, size_t maxlen)
{
    static const uint8_t alphabet[] = {0x00, 0x01, 0xFE, 0xFF, 'a'};
    size_t len = (size_t)(rng() % (maxlen + 1));
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rng() % sizeof(alphabet)];
    return len;
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

/* ===== worked examples (§8.16) ===== */

START_TEST(test_keycodec_examples)
{
    check_encodes_to(NULL, 0, "0000000000000000F7");
    const uint8_t k123[] = {1, 2, 3};
    check_encodes_to(k123, 3, "0102030000000000FA");

    /* exactly 8 bytes: one full group plus an all-pad group */
    const uint8_t k8[] = {1, 2, 3, 4, 5, 6, 7, 8};
    check_encodes_to(k8, 8, "0102030405060708FF0000000000000000F7");
}
END_TEST

START_TEST(test_keycodec_table_spans)
{
    uint8_t start[TKC_KEYCODEC_RECORD_PREFIX_LEN], end[TKC_KEYCODEC_RECORD_PREFIX_LEN];
    uint8_t want[32];

    /* table 36489 (tiflow#8242) */
    tkc_keycodec_table_record_span(36489, start, end);
    ck_assert_uint_eq(unhex("748000000000008E895F72", want), 11);
    ck_assert_mem_eq(start, want, 11);
    check_encodes_to(start, 11, "748000000000008EFF895F720000000000FA");
    check_encodes_to(end, 11, "748000000000008EFF895F730000000000FA");

    /* table 100 */
    tkc_keycodec_table_record_span(100, start, end);
    check_encodes_to(start, 11, "7480000000000000FF645F720000000000FA");
    check_encodes_to(end, 11, "7480000000000000FF645F730000000000FA");
}
END_TEST

START_TEST(test_keycodec_record_key)
{
    uint8_t raw[TKC_KEYCODEC_RECORD_KEY_LEN];
    char hex[64];
    tkc_keycodec_record_key(100, 1, raw);
    tohex(raw, sizeof(raw), hex);
    ck_assert_str_eq(hex, "7480000000000000645F728000000000000001");
    check_encodes_to(raw, sizeof(raw), "7480000000000000FF645F728000000000FF0000010000000000FA");

    int64_t t = 0, h = 0;
    ck_assert_int_eq(tkc_keycodec_parse_record_key(raw, sizeof(raw), &t, &h), 0);
    ck_assert_int_eq(t, 100);
    ck_assert_int_eq(h, 1);

    /* negative handles exist (signed int primary keys) and sort first */
    uint8_t neg[TKC_KEYCODEC_RECORD_KEY_LEN];
    tkc_keycodec_record_key(100, -5, neg);
    ck_assert_int_eq(tkc_keycodec_parse_record_key(neg, sizeof(neg), &t, &h), 0);
    ck_assert_int_eq(h, -5);
    ck_assert_int_lt(tkc_keycodec_cmp(neg, sizeof(neg), raw, sizeof(raw)), 0);

    /* every row key of the table lies inside its record span */
    uint8_t start[TKC_KEYCODEC_RECORD_PREFIX_LEN], end[TKC_KEYCODEC_RECORD_PREFIX_LEN];
    tkc_keycodec_table_record_span(100, start, end);
    const int64_t handles[] = {INT64_MIN, -1, 0, 1, INT64_MAX};
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++) {
        tkc_keycodec_record_key(100, handles[i], raw);
        ck_assert_int_gt(tkc_keycodec_cmp(raw, sizeof(raw), start, sizeof(start)), 0);
        ck_assert_int_lt(tkc_keycodec_cmp(raw, sizeof(raw), end, sizeof(end)), 0);
    }

    /* not record keys */
    ck_assert_int_eq(tkc_keycodec_parse_record_key(raw, 18, NULL, NULL), -1);
    raw[10] = 'i';
    ck_assert_int_eq(tkc_keycodec_parse_record_key(raw, sizeof(raw), NULL, NULL), -1);
}
END_TEST

START_TEST(test_keycodec_int64_order)
{
    const int64_t v[] = {INT64_MIN, INT64_MIN + 1, -256, -1, 0, 1, 255, 256, INT64_MAX};
    size_t n = sizeof(v) / sizeof(v[0]);
    for (size_t i = 0; i < n; i++) {
        uint8_t a[8];
        tkc_keycodec_put_int64(a, v[i]);
        ck_assert_int_eq(tkc_keycodec_get_int64(a), v[i]);
        for (size_t j = 0; j < n; j++) {
            uint8_t b[8];
            tkc_keycodec_put_int64(b, v[j]);
            int want = (v[i] > v[j]) - (v[i] < v[j]);
            ck_assert_int_eq(sign(memcmp(a, b, 8)), want);
        }
    }
}
END_TEST

/* ===== properties ===== */

START_TEST(test_keycodec_round_trip)
{
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t raw[40], enc[64], dec[64];
        size_t len = random_key(raw, 40);
        size_t elen = tkc_keycodec_encoded_len(len);
        ck_assert_uint_eq(elen % 9, 0);
        ck_assert_uint_gt(elen, len);
        tkc_keycodec_encode(raw, len, enc);
        size_t dlen = 0;
        ck_assert_int_eq(tkc_keycodec_decode(enc, elen, dec, &dlen), 0);
        ck_assert_uint_eq(dlen, len);
        ck_assert(len == 0 || memcmp(raw, dec, len) == 0);
        /* validate-only mode agrees */
        ck_assert_int_eq(tkc_keycodec_decode(enc, elen, NULL, &dlen), 0);
        ck_assert_uint_eq(dlen, len);
    }
}
END_TEST

START_TEST(test_keycodec_order_preserved)
{
    int seen[3] = {0, 0, 0};
    for (int iter = 0; iter < 50000; iter++) {
        uint8_t a[40], b[40], ea[64], eb[64];
        size_t alen = random_key(a, 20), blen = random_key(b, 20);
        if (iter % 4 == 0) {
            /* make prefix relations frequent */
            blen = alen + (size_t)(rng() % 3);
            if (blen > 20)
                blen = 20;
            memcpy(b, a, alen < blen ? alen : blen);
        }
        tkc_keycodec_encode(a, alen, ea);
        tkc_keycodec_encode(b, blen, eb);
        int raw = sign(tkc_keycodec_cmp(a, alen, b, blen));
        int enc = sign(tkc_keycodec_cmp(ea, tkc_keycodec_encoded_len(alen), eb,
                                        tkc_keycodec_encoded_len(blen)));
        ck_assert_int_eq(raw, enc);
        seen[raw + 1]++;
    }
    /* the generator must have exercised all three outcomes */
    ck_assert_int_gt(seen[0], 1000);
    ck_assert_int_gt(seen[1], 1000);
    ck_assert_int_gt(seen[2], 1000);
}
END_TEST

START_TEST(test_keycodec_cmp)
{
    const uint8_t ab[] = {'a', 'b'}, abc[] = {'a', 'b', 'c'}, b[] = {'b'};
    ck_assert_int_eq(tkc_keycodec_cmp(ab, 2, ab, 2), 0);
    ck_assert_int_lt(tkc_keycodec_cmp(ab, 2, abc, 3), 0);
    ck_assert_int_gt(tkc_keycodec_cmp(abc, 3, ab, 2), 0);
    ck_assert_int_lt(tkc_keycodec_cmp(abc, 3, b, 1), 0);
    ck_assert_int_lt(tkc_keycodec_cmp(NULL, 0, b, 1), 0);
    ck_assert_int_eq(tkc_keycodec_cmp(NULL, 0, NULL, 0), 0);
}
END_TEST

/* ===== rejections ===== */

static int decode_hex(const char *hex)
{
    uint8_t enc[128], out[128];
    size_t n = unhex(hex, enc);
    return tkc_keycodec_decode(enc, n, out, NULL);
}

START_TEST(test_keycodec_decode_rejects)
{
    uint8_t dummy[1] = {0};
    /* empty input is not an encoding (even "" encodes to 9 bytes) */
    ck_assert_int_eq(tkc_keycodec_decode(dummy, 0, NULL, NULL), -1);
    /* length not a multiple of 9 */
    ck_assert_int_eq(decode_hex("0000000000000000"), -1);
    ck_assert_int_eq(decode_hex("0000000000000000F700"), -1);
    /* the raw key itself (a common mistake: sending a raw key as a boundary) */
    ck_assert_int_eq(decode_hex("7480000000000000645F72"), -1);
    /* a full group (marker FF) with nothing after it */
    ck_assert_int_eq(decode_hex("0102030405060708FF"), -1);
    /* a final marker below F7 = more than 8 pad bytes */
    ck_assert_int_eq(decode_hex("0000000000000000F6"), -1);
    ck_assert_int_eq(decode_hex("000000000000000000"), -1);
    /* a non-FF marker before the last group, i.e. bytes after the end */
    ck_assert_int_eq(decode_hex("010203000000000000FA" "0000000000000000F7"), -1);
    /* non-zero pad bytes */
    ck_assert_int_eq(decode_hex("010203000000000001FA"), -1);
    ck_assert_int_eq(decode_hex("0000000000000001F7"), -1);
    /* sanity: the valid neighbours of those inputs decode */
    ck_assert_int_eq(decode_hex("0000000000000000F7"), 0);
    ck_assert_int_eq(decode_hex("0100000000000000F8"), 0);
    ck_assert_int_eq(decode_hex("0102030405060708FF0000000000000000F7"), 0);
    ck_assert_int_eq(decode_hex("0102030405060708FF"), -1);
}
END_TEST

START_TEST(test_keycodec_decode_mutations)
{
    /* Flip single bytes of valid encodings: the result is either rejected or
     * decodes to a key that re-encodes to exactly the mutated bytes (a
     * strict decoder accepts only canonical encodings). */
    int rejected = 0, accepted = 0;
    for (int iter = 0; iter < 5000; iter++) {
        uint8_t raw[40], enc[64], dec[64], re[64];
        size_t len = random_key(raw, 30);
        size_t elen = tkc_keycodec_encoded_len(len);
        tkc_keycodec_encode(raw, len, enc);
        size_t pos = (size_t)(rng() % elen);
        enc[pos] ^= (uint8_t)(1u << (rng() % 8));
        size_t dlen;
        if (tkc_keycodec_decode(enc, elen, dec, &dlen) != 0) {
            rejected++;
            continue;
        }
        accepted++;
        ck_assert_uint_eq(tkc_keycodec_encoded_len(dlen), elen);
        tkc_keycodec_encode(dec, dlen, re);
        ck_assert_mem_eq(re, enc, elen);
    }
    ck_assert_int_gt(rejected, 100);
    ck_assert_int_gt(accepted, 100);
}
END_TEST

static Suite *keycodec_suite(void)
{
    Suite *s = suite_create("keycodec");
    TCase *tc = tcase_create("examples");
    tcase_add_test(tc, test_keycodec_examples);
    tcase_add_test(tc, test_keycodec_table_spans);
    tcase_add_test(tc, test_keycodec_record_key);
    tcase_add_test(tc, test_keycodec_int64_order);
    tcase_add_test(tc, test_keycodec_cmp);
    suite_add_tcase(s, tc);

    tc = tcase_create("properties");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_keycodec_round_trip);
    tcase_add_test(tc, test_keycodec_order_preserved);
    suite_add_tcase(s, tc);

    tc = tcase_create("rejections");
    tcase_add_test(tc, test_keycodec_decode_rejects);
    tcase_add_test(tc, test_keycodec_decode_mutations);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(keycodec_suite)
