/*
 * check_avro_canonical.c: Parsing Canonical Form and CRC-64-AVRO.
 *
 * The vectors are the Avro specification's share/test/data/schema-tests.txt
 * (all 34 cases; fingerprints there are Java's signed longs, cross-checked by
 * Java's slow direct implementation), plus namespace cases derived by hand
 * whose fingerprints were computed with an independent bit-by-bit CRC, our
 * own schemas' canonical forms (logicalType, doc, default stripped), and
 * invalid schemas that must be rejected with a message.
 */
#include "avro_canonical.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "unit/check_main.h"
#include "util/mem.h"
#include "../test_file.h"

typedef struct vec_s {
    const char *input;
    const char *canonical;
    bool has_fp;
    int64_t fp;
} vec_t;

#define FP(x) true, INT64_C(x)
#define NOFP false, 0

static const vec_t spec_vectors[] = {
    /* 000 */ {"\"null\"", "\"null\"", FP(7195948357588979594)},
    /* 001 */ {"{\"type\":\"null\"}", "\"null\"", NOFP},
    /* 002 */ {"\"boolean\"", "\"boolean\"", FP(-6970731678124411036)},
    /* 003 */ {"{\"type\":\"boolean\"}", "\"boolean\"", NOFP},
    /* 004 */ {"\"int\"", "\"int\"", FP(8247732601305521295)},
    /* 005 */ {"{\"type\":\"int\"}", "\"int\"", NOFP},
    /* 006 */ {"\"long\"", "\"long\"", FP(-3434872931120570953)},
    /* 007 */ {"{\"type\":\"long\"}", "\"long\"", NOFP},
    /* 008 */ {"\"float\"", "\"float\"", FP(5583340709985441680)},
    /* 009 */ {"{\"type\":\"float\"}", "\"float\"", NOFP},
    /* 010 */ {"\"double\"", "\"double\"", FP(-8181574048448539266)},
    /* 011 */ {"{\"type\":\"double\"}", "\"double\"", NOFP},
    /* 012 */ {"\"bytes\"", "\"bytes\"", FP(5746618253357095269)},
    /* 013 */ {"{\"type\":\"bytes\"}", "\"bytes\"", NOFP},
    /* 014 */ {"\"string\"", "\"string\"", FP(-8142146995180207161)},
    /* 015 */ {"{\"type\":\"string\"}", "\"string\"", NOFP},
    /* 016 */ {"[  ]", "[]", FP(-1241056759729112623)},
    /* 017 */ {"[ \"int\"  ]", "[\"int\"]", FP(-5232228896498058493)},
    /* 018 */ {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]",
               FP(5392556393470105090)},
    /* 019 */ {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
               "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", FP(-4824392279771201922)},
    /* 020 */ {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"namespace\":\"x.y\"}",
               "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}",
               FP(5916914534497305771)},
    /* 021 */ {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", \"namespace\":\"x.y\"}",
               "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}",
               FP(-4616218487480524110)},
    /* 022 */ {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"Useful info\"}",
               "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", FP(-4824392279771201922)},
    /* 023 */ {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"aliases\":[\"foo\",\"bar\"]}",
               "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", FP(-4824392279771201922)},
    /* 024 */ {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"foo\", "
               "\"aliases\":[\"foo\",\"bar\"]}",
               "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", FP(-4824392279771201922)},
    /* 025 */ {"{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], "
               "\"type\":\"record\", \"name\":\"foo\"}",
               "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":"
               "\"boolean\"}]}",
               FP(7843277075252814651)},
    /* 026 */ {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", "
               "\"default\":\"true\"},\n"
               "            {\"order\":\"descending\",\"name\":\"f2\",\"doc\":\"Hello\",\"type\":"
               "\"int\"}],\n"
               "  \"type\":\"record\", \"name\":\"foo\"\n}",
               "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":"
               "\"boolean\"},{\"name\":\"f2\",\"type\":\"int\"}]}",
               FP(-4860222112080293046)},
    /* 027 */ {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
               "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}",
               FP(-6342190197741309591)},
    /* 028 */ {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", \"doc\":\"foo "
               "bar\", \"symbols\":[\"A1\", \"A2\"]}",
               "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\",\"A2\"]}",
               FP(-4448647247586288245)},
    /* 029 */ {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
               "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", FP(1756455273707447556)},
    /* 030 */ {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", \"doc\":\"foo "
               "bar\", \"size\":32}",
               "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}",
               FP(-3064184465700546786)},
    /* 031 */ {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}",
               "{\"type\":\"array\",\"items\":\"null\"}", FP(-589620603366471059)},
    /* 032 */ {"{ \"values\":\"string\", \"type\":\"map\"}",
               "{\"type\":\"map\",\"values\":\"string\"}", FP(-8732877298790414990)},
    /* 033 */ {"  {\"name\":\"PigValue\",\"type\":\"record\",\n"
               "   \"fields\":[{\"name\":\"value\", \"type\":[\"null\", \"int\", \"long\", "
               "\"PigValue\"]}]}",
               "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":\"value\","
               "\"type\":[\"null\",\"int\",\"long\",\"PigValue\"]}]}",
               FP(-1759257747318642341)},
};

/*
 * Derived cases: namespace inheritance and references. Fingerprints computed
 * from the canonical text with an independent bit-at-a-time CRC-64-AVRO.
 */
static const vec_t derived_vectors[] = {
    /* nested named types inherit the enclosing namespace; later uses are references */
    {"{\"type\":\"record\",\"name\":\"a\",\"namespace\":\"x\",\"fields\":["
     "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"b\",\"size\":1}},"
     "{\"name\":\"g\",\"type\":\"b\"}]}",
     "{\"name\":\"x.a\",\"type\":\"record\",\"fields\":[{\"name\":\"f\",\"type\":{\"name\":"
     "\"x.b\",\"type\":\"fixed\",\"size\":1}},{\"name\":\"g\",\"type\":\"x.b\"}]}",
     FP(658025983668141106)},
    /* an explicit namespace and a dotted name override the enclosing one */
    {"{\"type\":\"record\",\"name\":\"a\",\"namespace\":\"x\",\"fields\":["
     "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"namespace\":\"y\","
     "\"symbols\":[\"A\"]}},"
     "{\"name\":\"r\",\"type\":{\"type\":\"record\",\"name\":\"R\",\"fields\":["
     "{\"name\":\"e2\",\"type\":\"y.E\"}]}}]}",
     "{\"name\":\"x.a\",\"type\":\"record\",\"fields\":[{\"name\":\"e\",\"type\":{\"name\":"
     "\"y.E\",\"type\":\"enum\",\"symbols\":[\"A\"]}},{\"name\":\"r\",\"type\":{\"name\":\"x.R\","
     "\"type\":\"record\",\"fields\":[{\"name\":\"e2\",\"type\":\"y.E\"}]}}]}",
     FP(4143073259211176183)},
    /* logical types are stripped to the primitive (Java's behaviour) */
    {"{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}", "\"long\"",
     FP(-3434872931120570953)},
    /* nested containers, extra attributes dropped */
    {"{\"type\":\"map\",\"doc\":\"d\",\"values\":{\"type\":\"array\",\"items\":{\"type\":"
     "\"bytes\"}}}",
     "{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":\"bytes\"}}",
     FP(3725135920130360521)},
    /* a reference from inside a namespace falls back to the null namespace */
    {"{\"type\":\"record\",\"name\":\"top\",\"fields\":[{\"name\":\"a\",\"type\":{\"type\":"
     "\"fixed\",\"name\":\"F\",\"size\":2}},{\"name\":\"b\",\"type\":{\"type\":\"record\","
     "\"name\":\"in\",\"namespace\":\"n\",\"fields\":[{\"name\":\"c\",\"type\":\"F\"}]}}]}",
     "{\"name\":\"top\",\"type\":\"record\",\"fields\":[{\"name\":\"a\",\"type\":{\"name\":\"F\","
     "\"type\":\"fixed\",\"size\":2}},{\"name\":\"b\",\"type\":{\"name\":\"n.in\",\"type\":"
     "\"record\",\"fields\":[{\"name\":\"c\",\"type\":\"F\"}]}}]}",
     NOFP},
    /* a \u escape in a doc string does not matter; an "error" keeps its type name */
    {"{\"type\":\"error\",\"name\":\"Oops\",\"doc\":\"\\u00e9\",\"fields\":[]}",
     "{\"name\":\"Oops\",\"type\":\"error\",\"fields\":[]}", NOFP},
};

static void check_vectors(const vec_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char err[256] = "";
        char *pcf = NULL;
        size_t pcf_len = 0;
        tkc_err_t rc = tkc_avro_canonical_form(v[i].input, strlen(v[i].input), &pcf, &pcf_len,
                                               err, sizeof(err));
        ck_assert_msg(rc == TKC_ERR_OK, "vector %zu: %s", i, err);
        ck_assert_msg(strcmp(pcf, v[i].canonical) == 0, "vector %zu: got %s want %s", i, pcf,
                      v[i].canonical);
        ck_assert_uint_eq(pcf_len, strlen(pcf));
        if (v[i].has_fp) {
            uint64_t fp = 0;
            ck_assert_int_eq(tkc_avro_canonical_fingerprint(v[i].input, strlen(v[i].input), &fp,
                                                            err, sizeof(err)),
                             TKC_ERR_OK);
            ck_assert_msg((int64_t)fp == v[i].fp, "vector %zu: fingerprint %" PRId64
                          " want %" PRId64, i, (int64_t)fp, v[i].fp);
            ck_assert_uint_eq(fp, tkc_avro_canonical_crc64(pcf, pcf_len));
        }
        tkc_free(pcf);
    }
}

START_TEST(test_avro_canonical_spec_vectors)
{
    check_vectors(spec_vectors, sizeof(spec_vectors) / sizeof(spec_vectors[0]));
}
END_TEST

START_TEST(test_avro_canonical_derived_vectors)
{
    check_vectors(derived_vectors, sizeof(derived_vectors) / sizeof(derived_vectors[0]));
}
END_TEST

START_TEST(test_avro_canonical_crc64)
{
    /* The empty string's fingerprint is the seed itself. */
    ck_assert_uint_eq(tkc_avro_canonical_crc64("", 0), TKC_AVRO_CANONICAL_CRC64_EMPTY);
    /* One flipped bit changes the fingerprint. */
    ck_assert_uint_ne(tkc_avro_canonical_crc64("\"int\"", 5),
                      tkc_avro_canonical_crc64("\"inu\"", 5));
}
END_TEST

static char *read_file(const char *path, size_t *len)
{
    char *text = tkc_test_read_file(path, len);
    ck_assert_msg(text != NULL, "cannot open %s", path);
    return text;
}

/* The project's schemas reduce to exactly these parsing forms. */
START_TEST(test_avro_canonical_project_schemas)
{
    static const struct {
        const char *file, *canonical;
    } cases[] = {
        {"watermark.avsc",
         "{\"name\":\"io.tikvkafkacdc.Watermark\",\"type\":\"record\",\"fields\":["
         "{\"name\":\"feed_id\",\"type\":\"string\"},{\"name\":\"resolved_ts\",\"type\":\"long\"},"
         "{\"name\":\"resolved_time_ms\",\"type\":\"long\"},"
         "{\"name\":\"emitted_at_ms\",\"type\":\"long\"}]}"},
        {"checkpoint.avsc",
         "{\"name\":\"io.tikvkafkacdc.Checkpoint\",\"type\":\"record\",\"fields\":["
         "{\"name\":\"feed_id\",\"type\":\"string\"},{\"name\":\"checkpoint_ts\",\"type\":\"long\"},"
         "{\"name\":\"checkpoint_time_ms\",\"type\":\"long\"},"
         "{\"name\":\"committed_at_ms\",\"type\":\"long\"},{\"name\":\"epoch\",\"type\":\"long\"}]}"},
        {"row_change.avsc",
         "{\"name\":\"io.tikvkafkacdc.RowChange\",\"type\":\"record\",\"fields\":["
         "{\"name\":\"op\",\"type\":{\"name\":\"io.tikvkafkacdc.Op\",\"type\":\"enum\","
         "\"symbols\":[\"PUT\",\"DELETE\"]}},"
         "{\"name\":\"key\",\"type\":\"bytes\"},{\"name\":\"value\",\"type\":[\"null\",\"bytes\"]},"
         "{\"name\":\"old_value\",\"type\":[\"null\",\"bytes\"]},"
         "{\"name\":\"start_ts\",\"type\":\"long\"},{\"name\":\"commit_ts\",\"type\":\"long\"},"
         "{\"name\":\"commit_time_ms\",\"type\":\"long\"},{\"name\":\"span\",\"type\":\"string\"},"
         "{\"name\":\"region_id\",\"type\":\"long\"},"
         "{\"name\":\"columns\",\"type\":[\"null\",{\"type\":\"map\",\"values\":[\"null\","
         "\"boolean\",\"long\",\"double\",\"string\",\"bytes\"]}]}]}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", TKC_SCHEMA_DIR, cases[i].file);
        size_t len;
        char *text = read_file(path, &len);
        char err[256] = "", *pcf = NULL;
        ck_assert_msg(tkc_avro_canonical_form(text, len, &pcf, NULL, err, sizeof(err)) == 0,
                      "%s: %s", cases[i].file, err);
        ck_assert_msg(strcmp(pcf, cases[i].canonical) == 0, "%s: %s", cases[i].file, pcf);
        tkc_free(pcf);
        tkc_free(text);
    }
}
END_TEST

START_TEST(test_avro_canonical_rejects)
{
    static const struct {
        const char *input, *needle;
    } bad[] = {
        {"", "not valid JSON"},
        {"\"nope\"", "unknown type \"nope\""},
        {"{\"type\":\"record\",\"fields\":[]}", "without a \"name\""},
        {"{\"type\":\"record\",\"name\":\"r\"}", "without a \"fields\""},
        {"{\"type\":\"record\",\"name\":\"1r\",\"fields\":[]}", "invalid record name"},
        {"{\"type\":\"record\",\"name\":\"r\",\"namespace\":\"a..b\",\"fields\":[]}",
         "invalid namespace"},
        {"{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
         "{\"name\":\"a\",\"type\":\"int\"}]}",
         "appears twice"},
        {"{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"a\"}]}", "needs a valid"},
        {"[{\"type\":\"fixed\",\"name\":\"f\",\"size\":1},{\"type\":\"fixed\",\"name\":\"f\","
         "\"size\":1}]",
         "defined twice"},
        {"{\"type\":\"fixed\",\"name\":\"int\",\"size\":1}", "redefines a primitive"},
        {"{\"type\":\"fixed\",\"name\":\"f\",\"size\":-1}", "non-negative integer"},
        {"{\"type\":\"enum\",\"name\":\"e\",\"symbols\":[\"A\",\"A\"]}", "appears twice"},
        {"{\"type\":\"enum\",\"name\":\"e\",\"symbols\":[\"A-B\"]}", "invalid symbol"},
        {"{\"type\":\"array\"}", "without \"items\""},
        {"[[\"int\"]]", "directly contain a union"},
        {"42", "must be a string"},
        {"{\"doc\":\"no type\"}", "without a \"type\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        char *pcf = NULL;
        ck_assert_int_eq(tkc_avro_canonical_form(bad[i].input, strlen(bad[i].input), &pcf, NULL,
                                                 err, sizeof(err)),
                         TKC_ERR_INVALID_ARG);
        ck_assert_ptr_null(pcf);
        ck_assert_msg(strstr(err, bad[i].needle) != NULL, "case %zu: \"%s\" lacks \"%s\"", i,
                      err, bad[i].needle);
    }
    /* Deep nesting is refused, not a stack overflow. */
    size_t depth = 1000; /* below jansson's own limit (2048), above ours */
    char *deep = tkc_malloc(depth * 40 + 16);
    size_t n = 0;
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(deep + n, "{\"type\":\"array\",\"items\":");
    n += (size_t)sprintf(deep + n, "\"int\"");
    for (size_t i = 0; i < depth; i++)
        deep[n++] = '}';
    char err[256] = "", *pcf = NULL;
    ck_assert_int_eq(tkc_avro_canonical_form(deep, n, &pcf, NULL, err, sizeof(err)),
                     TKC_ERR_INVALID_ARG);
    tkc_free(deep);
}
END_TEST

static Suite *avro_canonical_suite(void)
{
    Suite *s = suite_create("avro_canonical");
    TCase *tc = tcase_create("canonical");
    tcase_add_test(tc, test_avro_canonical_spec_vectors);
    tcase_add_test(tc, test_avro_canonical_derived_vectors);
    tcase_add_test(tc, test_avro_canonical_crc64);
    tcase_add_test(tc, test_avro_canonical_project_schemas);
    tcase_add_test(tc, test_avro_canonical_rejects);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(avro_canonical_suite)
