/*
 * check_registry_compat.c: the test registry's Avro compatibility decisions
 * (registry_compat.h), table-driven: each case is (level, old versions,
 * new schema, expected verdict and error type).
 *
 * The expectations are the Avro specification's resolution rules as
 * Confluent applies them: BACKWARD = new reads old, FORWARD = old reads new.
 */
#include "registry/registry_compat.h"

#include <stdio.h>
#include <string.h>

#include "unit/check_main.h"

/* A record "R" with the given fields JSON. */
#define REC(fields) "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"t\",\"fields\":[" fields "]}"
#define F(name, type) "{\"name\":\"" name "\",\"type\":" type "}"
#define FD(name, type, def) "{\"name\":\"" name "\",\"type\":" type ",\"default\":" def "}"

static tkc_registry_compat_schema_t *parse_ok(const char *text)
{
    char err[512] = "";
    tkc_registry_compat_schema_t *s = tkc_registry_compat_parse(text, strlen(text), err,
                                                                sizeof(err));
    ck_assert_msg(s != NULL, "parse failed: %s\n%s", err, text);
    return s;
}

typedef struct ccase_s {
    const char *what;
    tkc_registry_compat_level_t level;
    const char *old[3]; /* oldest first, NULL-terminated */
    const char *cand;
    bool compatible;
    const char *error_type; /* when incompatible */
} ccase_t;

#define B TKC_REGISTRY_COMPAT_BACKWARD
#define BT TKC_REGISTRY_COMPAT_BACKWARD_TRANSITIVE
#define FW TKC_REGISTRY_COMPAT_FORWARD
#define FT TKC_REGISTRY_COMPAT_FORWARD_TRANSITIVE
#define FU TKC_REGISTRY_COMPAT_FULL
#define FUT TKC_REGISTRY_COMPAT_FULL_TRANSITIVE
#define NONE TKC_REGISTRY_COMPAT_NONE

static const ccase_t cases[] = {
    /* ---- records: added and removed fields ---- */
    {"add field with default, BACKWARD", B, {REC(F("a", "\"int\""))},
     REC(F("a", "\"int\"") "," FD("b", "\"int\"", "0")), true, NULL},
    {"add field without default, BACKWARD", B, {REC(F("a", "\"int\""))},
     REC(F("a", "\"int\"") "," F("b", "\"int\"")), false, "READER_FIELD_MISSING_DEFAULT_VALUE"},
    {"add field without default, FORWARD (old reader skips it)", FW, {REC(F("a", "\"int\""))},
     REC(F("a", "\"int\"") "," F("b", "\"int\"")), true, NULL},
    {"remove field, BACKWARD (new reader skips it)", B,
     {REC(F("a", "\"int\"") "," F("b", "\"int\""))}, REC(F("a", "\"int\"")), true, NULL},
    {"remove field without default, FORWARD", FW,
     {REC(F("a", "\"int\"") "," F("b", "\"int\""))}, REC(F("a", "\"int\"")), false,
     "READER_FIELD_MISSING_DEFAULT_VALUE"},
    {"remove field that had a default, FORWARD", FW,
     {REC(F("a", "\"int\"") "," FD("b", "\"int\"", "1"))}, REC(F("a", "\"int\"")), true, NULL},
    {"add optional field, FULL", FU, {REC(F("a", "\"int\""))},
     REC(F("a", "\"int\"") "," FD("b", "[\"null\",\"string\"]", "null")), true, NULL},
    {"add required field, FULL", FU, {REC(F("a", "\"int\""))},
     REC(F("a", "\"int\"") "," F("b", "\"string\"")), false,
     "READER_FIELD_MISSING_DEFAULT_VALUE"},
    {"anything goes with NONE", NONE, {REC(F("a", "\"int\""))}, REC(F("z", "\"string\"")), true,
     NULL},
    {"field renamed with an alias, BACKWARD", B, {REC(F("a", "\"int\""))},
     REC("{\"name\":\"b\",\"aliases\":[\"a\"],\"type\":\"int\"}"), true, NULL},
    {"field renamed without alias, BACKWARD", B, {REC(F("a", "\"int\""))},
     REC(F("b", "\"int\"")), false, "READER_FIELD_MISSING_DEFAULT_VALUE"},

    /* ---- type changes: promotions only ---- */
    {"int -> long, BACKWARD (promotion)", B, {REC(F("a", "\"int\""))}, REC(F("a", "\"long\"")),
     true, NULL},
    {"int -> long, FORWARD (long cannot be read as int)", FW, {REC(F("a", "\"int\""))},
     REC(F("a", "\"long\"")), false, "TYPE_MISMATCH"},
    {"long -> int, BACKWARD", B, {REC(F("a", "\"long\""))}, REC(F("a", "\"int\"")), false,
     "TYPE_MISMATCH"},
    {"int -> double, BACKWARD", B, {REC(F("a", "\"int\""))}, REC(F("a", "\"double\"")), true,
     NULL},
    {"float -> double, BACKWARD", B, {REC(F("a", "\"float\""))}, REC(F("a", "\"double\"")),
     true, NULL},
    {"double -> float, BACKWARD", B, {REC(F("a", "\"double\""))}, REC(F("a", "\"float\"")),
     false, "TYPE_MISMATCH"},
    {"string -> bytes, FULL", FU, {REC(F("a", "\"string\""))}, REC(F("a", "\"bytes\"")), true,
     NULL},
    {"string -> int, BACKWARD", B, {REC(F("a", "\"string\""))}, REC(F("a", "\"int\"")), false,
     "TYPE_MISMATCH"},
    {"logicalType change keeps the physical type", FU, {REC(F("a", "\"long\""))},
     REC(F("a", "{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}")), true, NULL},

    /* ---- unions ---- */
    {"int -> [null,int], BACKWARD", B, {REC(F("a", "\"int\""))},
     REC(FD("a", "[\"null\",\"int\"]", "null")), true, NULL},
    {"[null,int] -> int, BACKWARD (null cannot be read)", B,
     {REC(FD("a", "[\"null\",\"int\"]", "null"))}, REC(F("a", "\"int\"")), false,
     "TYPE_MISMATCH"},
    {"union gains a branch, BACKWARD", B, {REC(F("a", "[\"null\",\"int\"]"))},
     REC(F("a", "[\"null\",\"int\",\"string\"]")), true, NULL},
    {"union gains a branch, FORWARD", FW, {REC(F("a", "[\"null\",\"int\"]"))},
     REC(F("a", "[\"null\",\"int\",\"string\"]")), false, "MISSING_UNION_BRANCH"},
    {"union branch promoted, BACKWARD", B, {REC(F("a", "[\"null\",\"int\"]"))},
     REC(F("a", "[\"null\",\"long\"]")), true, NULL},
    {"union -> different union, BACKWARD", B, {REC(F("a", "[\"null\",\"int\"]"))},
     REC(F("a", "[\"null\",\"string\"]")), false, "MISSING_UNION_BRANCH"},

    /* ---- enums ---- */
    {"enum adds a symbol, BACKWARD", B,
     {REC(F("e", "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}"))},
     REC(F("e", "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"C\"]}")), true,
     NULL},
    {"enum adds a symbol, FORWARD", FW,
     {REC(F("e", "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}"))},
     REC(F("e", "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"C\"]}")), false,
     "MISSING_ENUM_SYMBOLS"},
    {"enum adds a symbol, FORWARD, old reader has an enum default", FW,
     {REC(F("e", "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"],\"default\":\"A\"}"))},
     REC(F("e", "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"C\"]}")), true,
     NULL},
    {"enum removes a symbol, BACKWARD", B,
     {REC(F("e", "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}"))},
     REC(F("e", "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}")), false,
     "MISSING_ENUM_SYMBOLS"},
    {"enum renamed, BACKWARD", B,
     {REC(F("e", "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}"))},
     REC(F("e", "{\"type\":\"enum\",\"name\":\"E2\",\"symbols\":[\"A\"]}")), false,
     "NAME_MISMATCH"},

    /* ---- fixed, names, containers ---- */
    {"fixed size change, BACKWARD", B,
     {REC(F("f", "{\"type\":\"fixed\",\"name\":\"X\",\"size\":4}"))},
     REC(F("f", "{\"type\":\"fixed\",\"name\":\"X\",\"size\":8}")), false,
     "FIXED_SIZE_MISMATCH"},
    {"record renamed, BACKWARD", B, {REC(F("a", "\"int\""))},
     "{\"type\":\"record\",\"name\":\"S\",\"namespace\":\"t\",\"fields\":[" F("a", "\"int\"") "]}",
     false, "NAME_MISMATCH"},
    {"record renamed with an alias, BACKWARD", B, {REC(F("a", "\"int\""))},
     "{\"type\":\"record\",\"name\":\"S\",\"namespace\":\"t\",\"aliases\":[\"R\"],\"fields\":["
     F("a", "\"int\"") "]}",
     true, NULL},
    {"namespace change only (unqualified names match)", B, {REC(F("a", "\"int\""))},
     "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"other\",\"fields\":[" F("a", "\"int\"") "]}",
     true, NULL},
    {"array items promoted, BACKWARD", B,
     {REC(F("a", "{\"type\":\"array\",\"items\":\"int\"}"))},
     REC(F("a", "{\"type\":\"array\",\"items\":\"long\"}")), true, NULL},
    {"map values changed, BACKWARD", B, {REC(F("m", "{\"type\":\"map\",\"values\":\"int\"}"))},
     REC(F("m", "{\"type\":\"map\",\"values\":\"string\"}")), false, "TYPE_MISMATCH"},
    {"array -> map, BACKWARD", B, {REC(F("a", "{\"type\":\"array\",\"items\":\"int\"}"))},
     REC(F("a", "{\"type\":\"map\",\"values\":\"int\"}")), false, "TYPE_MISMATCH"},
    {"nested record gains a required field, BACKWARD", B,
     {REC(F("n", "{\"type\":\"record\",\"name\":\"N\",\"fields\":[" F("x", "\"int\"") "]}"))},
     REC(F("n", "{\"type\":\"record\",\"name\":\"N\",\"fields\":[" F("x", "\"int\"") ","
                F("y", "\"int\"") "]}")),
     false, "READER_FIELD_MISSING_DEFAULT_VALUE"},
    {"recursive schema against itself terminates", FU,
     {"{\"type\":\"record\",\"name\":\"L\",\"fields\":[" F("v", "\"int\"") ","
      FD("next", "[\"null\",\"L\"]", "null") "]}"},
     "{\"type\":\"record\",\"name\":\"L\",\"fields\":[" F("v", "\"long\"") ","
     FD("next", "[\"null\",\"L\"]", "null") "]}",
     false, "TYPE_MISMATCH" /* FORWARD half: long cannot be read as int */},
    {"recursive schema, BACKWARD promotion inside the cycle", B,
     {"{\"type\":\"record\",\"name\":\"L\",\"fields\":[" F("v", "\"int\"") ","
      FD("next", "[\"null\",\"L\"]", "null") "]}"},
     "{\"type\":\"record\",\"name\":\"L\",\"fields\":[" F("v", "\"long\"") ","
     FD("next", "[\"null\",\"L\"]", "null") "]}",
     true, NULL},

    /* ---- transitive levels ---- */
    {"BACKWARD checks only the latest version", B,
     {REC(F("a", "\"int\"")), REC(F("a", "\"int\"") "," FD("b", "\"int\"", "0"))},
     REC(F("a", "\"int\"") "," F("b", "\"int\"")), true, NULL},
    {"BACKWARD_TRANSITIVE checks every version", BT,
     {REC(F("a", "\"int\"")), REC(F("a", "\"int\"") "," FD("b", "\"int\"", "0"))},
     REC(F("a", "\"int\"") "," F("b", "\"int\"")), false, "READER_FIELD_MISSING_DEFAULT_VALUE"},
    {"FORWARD_TRANSITIVE checks every version", FT,
     {REC(F("a", "\"int\"") "," F("b", "\"int\"")), REC(F("a", "\"int\"") "," FD("b", "\"int\"", "0"))},
     REC(F("a", "\"int\"")), false, "READER_FIELD_MISSING_DEFAULT_VALUE"},
    {"FULL_TRANSITIVE passes for optional additions", FUT,
     {REC(F("a", "\"int\"")), REC(F("a", "\"int\"") "," FD("b", "[\"null\",\"int\"]", "null"))},
     REC(F("a", "\"int\"") "," FD("b", "[\"null\",\"int\"]", "null") ","
         FD("c", "[\"null\",\"string\"]", "null")),
     true, NULL},
};

START_TEST(test_registry_compat_table)
{
    const ccase_t *c = &cases[_i];
    tkc_registry_compat_schema_t *old[3] = {NULL, NULL, NULL};
    size_t n_old = 0;
    while (n_old < 3 && c->old[n_old]) {
        old[n_old] = parse_ok(c->old[n_old]);
        n_old++;
    }
    tkc_registry_compat_schema_t *cand = parse_ok(c->cand);
    size_t bad = 99;
    const char *etype = NULL;
    char desc[1024] = "";
    bool got = tkc_registry_compat_check(c->level, cand,
                                         (const tkc_registry_compat_schema_t *const *)old, n_old,
                                         &bad, &etype, desc, sizeof(desc));
    ck_assert_msg(got == c->compatible, "%s: got %s (%s %s)", c->what,
                  got ? "compatible" : "incompatible", etype ? etype : "", desc);
    if (!c->compatible) {
        ck_assert_msg(etype && strcmp(etype, c->error_type) == 0, "%s: error type %s want %s",
                      c->what, etype ? etype : "(none)", c->error_type);
        ck_assert_msg(strstr(desc, "path") != NULL, "%s: description without path: %s",
                      c->what, desc);
        ck_assert_uint_lt(bad, n_old);
    }
    for (size_t i = 0; i < n_old; i++)
        tkc_registry_compat_schema_free(old[i]);
    tkc_registry_compat_schema_free(cand);
}
END_TEST

/* Which version a transitive check blames. */
START_TEST(test_registry_compat_blames_version)
{
    tkc_registry_compat_schema_t *v[3] = {
        parse_ok(REC(F("a", "\"int\""))),
        parse_ok(REC(F("a", "\"int\"") "," FD("b", "\"int\"", "0"))),
        parse_ok(REC(F("a", "\"int\"") "," FD("b", "\"int\"", "0"))),
    };
    tkc_registry_compat_schema_t *cand = parse_ok(REC(F("a", "\"int\"") "," F("b", "\"int\"")));
    size_t bad = 99;
    const char *etype = NULL;
    char desc[512];
    ck_assert(!tkc_registry_compat_check(BT, cand, (const tkc_registry_compat_schema_t *const *)v,
                                         3, &bad, &etype, desc, sizeof(desc)));
    ck_assert_uint_eq(bad, 0); /* only version 1 lacks b */
    ck_assert_ptr_nonnull(strstr(desc, "'b'"));
    for (int i = 0; i < 3; i++)
        tkc_registry_compat_schema_free(v[i]);
    tkc_registry_compat_schema_free(cand);
}
END_TEST

static char *slurp(const char *file)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", TKC_SCHEMA_DIR, file);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The project's own schemas parse (docs, defaults, logical types) and evolve as documented. */
START_TEST(test_registry_compat_project_schemas)
{
    static const char *files[] = {"row_change.avsc", "watermark.avsc", "checkpoint.avsc"};
    for (size_t i = 0; i < 3; i++) {
        tkc_registry_compat_schema_t *s = parse_ok(slurp(files[i]));
        /* Identical schemas are compatible at the strictest level. */
        const tkc_registry_compat_schema_t *v[1] = {s};
        ck_assert(tkc_registry_compat_check(FUT, s, v, 1, NULL, NULL, NULL, 0));
        tkc_registry_compat_schema_free(s);
    }
    /* Adding a nullable field with default null to RowChange is FULL compatible. */
    char *row = strdup(slurp("row_change.avsc"));
    const char *anchor = "\"fields\": [";
    char *at = strstr(row, anchor);
    ck_assert_ptr_nonnull(at);
    at += strlen(anchor);
    const char *extra = "{\"name\":\"table_id\",\"type\":[\"null\",\"long\"],\"default\":null},";
    char *evolved = malloc(strlen(row) + strlen(extra) + 1);
    sprintf(evolved, "%.*s%s%s", (int)(at - row), row, extra, at);
    tkc_registry_compat_schema_t *old = parse_ok(row), *neu = parse_ok(evolved);
    const tkc_registry_compat_schema_t *v[1] = {old};
    char desc[512] = "";
    ck_assert_msg(tkc_registry_compat_check(FU, neu, v, 1, NULL, NULL, desc, sizeof(desc)),
                  "%s", desc);
    tkc_registry_compat_schema_free(neu);
    /* Dropping "span" (no default) breaks FORWARD: old readers need it. */
    char *no_span = strdup(row);
    char *sp = strstr(no_span, "\"name\": \"span\"");
    ck_assert_ptr_nonnull(sp);
    memcpy(sp, "\"name\": \"spaX\"", strlen("\"name\": \"spaX\""));
    neu = parse_ok(no_span);
    const char *etype = NULL;
    ck_assert(!tkc_registry_compat_check(FW, neu, v, 1, NULL, &etype, desc, sizeof(desc)));
    ck_assert_str_eq(etype, "READER_FIELD_MISSING_DEFAULT_VALUE");
    ck_assert_ptr_nonnull(strstr(desc, "'span'"));
    tkc_registry_compat_schema_free(neu);
    tkc_registry_compat_schema_free(old);
    free(no_span);
    free(evolved);
    free(row);
}
END_TEST

START_TEST(test_registry_compat_parse_errors)
{
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"{", "Invalid schema JSON"},
        {"\"nope\"", "Unknown type: nope"},
        {REC(FD("a", "[\"bytes\",\"null\"]", "null")), "Invalid default for field a"},
        {REC(FD("a", "\"int\"", "\"x\"")), "Invalid default for field a"},
        {REC(FD("a", "\"int\"", "4294967296")), "Invalid default for field a"},
        {REC(F("a", "\"int\"") "," F("a", "\"long\"")), "Duplicate field a"},
        {"[\"int\",\"int\"]", "Duplicate in union"},
        {"[\"int\",[\"long\"]]", "Nested union"},
        {"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],\"default\":\"B\"}",
         "not in the enum symbol set"},
        {"{\"type\":\"fixed\",\"name\":\"long\",\"size\":1}", "named after primitives"},
        {"[{\"type\":\"fixed\",\"name\":\"X\",\"size\":1},{\"type\":\"fixed\",\"name\":\"X\","
         "\"size\":2}]",
         "Can't redefine: X"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[512] = "";
        tkc_registry_compat_schema_t *s = tkc_registry_compat_parse(bad[i].text,
                                                                    strlen(bad[i].text), err,
                                                                    sizeof(err));
        ck_assert_msg(s == NULL, "case %zu parsed: %s", i, bad[i].text);
        ck_assert_msg(strstr(err, bad[i].needle) != NULL, "case %zu: \"%s\" lacks \"%s\"", i,
                      err, bad[i].needle);
    }
    /* Valid defaults of every kind are accepted. */
    tkc_registry_compat_schema_t *s = parse_ok(
        REC(FD("a", "[\"null\",\"int\"]", "null") "," FD("b", "[\"int\",\"null\"]", "3") ","
            FD("c", "{\"type\":\"array\",\"items\":\"long\"}", "[1,2]") ","
            FD("d", "{\"type\":\"map\",\"values\":\"string\"}", "{\"k\":\"v\"}") ","
            FD("e", "\"double\"", "1.5") "," FD("f", "\"bytes\"", "\"\\u00ff\"") ","
            FD("g", "{\"type\":\"record\",\"name\":\"G\",\"fields\":[" FD("x", "\"int\"", "1") "]}",
               "{}")));
    tkc_registry_compat_schema_free(s);
}
END_TEST

START_TEST(test_registry_compat_identity)
{
    tkc_registry_compat_schema_t *a = parse_ok("{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}");
    tkc_registry_compat_schema_t *b =
        parse_ok("  { \"fields\" : [ ] ,\n \"name\":\"R\", \"type\":\"record\" }");
    tkc_registry_compat_schema_t *c =
        parse_ok("{\"type\":\"record\",\"name\":\"R\",\"doc\":\"d\",\"fields\":[]}");
    ck_assert_str_eq(tkc_registry_compat_normalized(a), tkc_registry_compat_normalized(b));
    ck_assert_str_ne(tkc_registry_compat_normalized(a), tkc_registry_compat_normalized(c));
    tkc_registry_compat_schema_free(a);
    tkc_registry_compat_schema_free(b);
    tkc_registry_compat_schema_free(c);

    tkc_registry_compat_level_t l;
    ck_assert_int_eq(tkc_registry_compat_level_parse("FULL_TRANSITIVE", &l), 0);
    ck_assert_int_eq(l, FUT);
    ck_assert_str_eq(tkc_registry_compat_level_name(l), "FULL_TRANSITIVE");
    ck_assert_int_eq(tkc_registry_compat_level_parse("SIDEWAYS", &l), -1);
}
END_TEST

static Suite *registry_compat_suite(void)
{
    Suite *s = suite_create("registry_compat");
    TCase *tc = tcase_create("compat");
    tcase_add_loop_test(tc, test_registry_compat_table, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, test_registry_compat_blames_version);
    tcase_add_test(tc, test_registry_compat_project_schemas);
    tcase_add_test(tc, test_registry_compat_parse_errors);
    tcase_add_test(tc, test_registry_compat_identity);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(registry_compat_suite)
