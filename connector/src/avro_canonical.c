/*
 * avro_canonical.c: Parsing Canonical Form (PCF) and CRC-64-AVRO, written on
 * jansson because avro-c has neither (and avro_schema_to_json() is not
 * canonical: it keeps namespaces and writes {"type":"long"}).
 *
 * The schema JSON is walked once, emitting the canonical text while a table
 * of defined full names grows. Named types are emitted in full at their first
 * (defining) occurrence and as their full name afterwards, exactly as the
 * specification's [FULLNAMES] and Java's SchemaNormalization do. Namespaces
 * follow the specification: a dotted name is a full name; otherwise the
 * type's "namespace" attribute applies, else the nearest enclosing named
 * type's namespace. A reference that does not resolve in the enclosing
 * namespace is tried in the null namespace (Java's lookup order).
 *
 * Names are checked against the Avro name grammar ([A-Za-z_][A-Za-z0-9_]*),
 * so they never need JSON escaping in the output and [STRINGS] holds
 * trivially.
 *
 * Pure functions of their input; the CRC table is built once (pthread_once),
 * so everything here may run on any thread.
 */
#include "avro_canonical.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/mem.h"

/* ===== CRC-64-AVRO ===== */

static uint64_t crc64_table[256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static void crc64_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint64_t fp = i;
        for (int j = 0; j < 8; j++)
            fp = (fp >> 1) ^ (TKC_AVRO_CANONICAL_CRC64_EMPTY & (0 - (fp & 1)));
        crc64_table[i] = fp;
    }
}

uint64_t tkc_avro_canonical_crc64(const void *data, size_t len)
{
    pthread_once(&crc64_once, crc64_init);
    const uint8_t *p = data;
    uint64_t fp = TKC_AVRO_CANONICAL_CRC64_EMPTY;
    for (size_t i = 0; i < len; i++)
        fp = (fp >> 8) ^ crc64_table[(fp ^ p[i]) & 0xff];
    return fp;
}

/* ===== output buffer and errors ===== */

typedef struct canon_s {
    char *out;
    size_t len, cap;
    char **names; /* defined full names, for references and redefinitions */
    size_t n_names, cap_names;
    char *errstr;
    size_t errstr_size;
    int depth;
} canon_t;

/* Nesting beyond this is rejected rather than risking the stack. */
#define CANON_MAX_DEPTH 200

__attribute__((format(printf, 2, 3))) static tkc_err_t fail(canon_t *c, const char *fmt, ...)
{
    if (c->errstr && c->errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->errstr, c->errstr_size, fmt, ap);
        va_end(ap);
    }
    return TKC_ERR_INVALID_ARG;
}

static void put(canon_t *c, const char *s, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        while (cap < c->len + n + 1)
            cap *= 2;
        c->out = tkc_realloc(c->out, cap);
        c->cap = cap;
    }
    memcpy(c->out + c->len, s, n);
    c->len += n;
    c->out[c->len] = '\0';
}

static void puts_(canon_t *c, const char *s)
{
    put(c, s, strlen(s));
}

static void put_quoted(canon_t *c, const char *s)
{
    put(c, "\"", 1);
    puts_(c, s);
    put(c, "\"", 1);
}

/* ===== names ===== */

static const char *const primitives[] = {"null",  "boolean", "int",    "long",
                                         "float", "double",  "bytes", "string"};

static bool is_primitive(const char *s)
{
    for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++)
        if (strcmp(s, primitives[i]) == 0)
            return true;
    return false;
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
        bool digit = ch >= '0' && ch <= '9';
        if (!(alpha || (i > 0 && digit)))
            return false;
    }
    return true;
}

/* A full name or namespace: names separated by single dots ("" allowed for a namespace). */
static bool valid_dotted(const char *s, bool allow_empty)
{
    if (!*s)
        return allow_empty;
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!valid_name(p, n))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

static bool name_defined(const canon_t *c, const char *full)
{
    for (size_t i = 0; i < c->n_names; i++)
        if (strcmp(c->names[i], full) == 0)
            return true;
    return false;
}

static void define_name(canon_t *c, char *full)
{
    if (c->n_names == c->cap_names) {
        c->cap_names = c->cap_names ? c->cap_names * 2 : 8;
        c->names = tkc_realloc(c->names, c->cap_names * sizeof(*c->names));
    }
    c->names[c->n_names++] = full;
}

static char *join_name(const char *ns, const char *name)
{
    if (!ns || !*ns)
        return tkc_strdup(name);
    size_t a = strlen(ns), b = strlen(name);
    char *s = tkc_malloc(a + 1 + b + 1);
    memcpy(s, ns, a);
    s[a] = '.';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

/* Resolves a type reference; @returns the defined full name (owned by the table) or NULL. */
static const char *resolve(const canon_t *c, const char *ref, const char *ns)
{
    if (strchr(ref, '.'))
        return name_defined(c, ref) ? ref : NULL;
    char *full = join_name(ns, ref);
    const char *hit = NULL;
    for (size_t i = 0; i < c->n_names && !hit; i++)
        if (strcmp(c->names[i], full) == 0)
            hit = c->names[i];
    tkc_free(full);
    if (!hit && ns && *ns) {
        for (size_t i = 0; i < c->n_names && !hit; i++)
            if (strcmp(c->names[i], ref) == 0)
                hit = c->names[i];
    }
    return hit;
}

/* ===== the walk ===== */

static tkc_err_t emit(canon_t *c, json_t *s, const char *ns);

static tkc_err_t emit_reference(canon_t *c, const char *ref, const char *ns)
{
    if (is_primitive(ref)) {
        put_quoted(c, ref);
        return TKC_ERR_OK;
    }
    const char *full = resolve(c, ref, ns);
    if (!full)
        return fail(c, "unknown type \"%s\"", ref);
    put_quoted(c, full);
    return TKC_ERR_OK;
}

/*
 * Defines the named type of @p s: computes its full name and namespace,
 * rejects bad or repeated names. On success *full is in the table (not
 * owned by the caller) and *space is a fresh string the caller frees.
 */
static tkc_err_t define_named(canon_t *c, json_t *s, const char *kind, const char *ns,
                              const char **full, char **space)
{
    const char *name = json_string_value(json_object_get(s, "name"));
    if (!name)
        return fail(c, "%s without a \"name\"", kind);
    char *fullname;
    const char *dot = strrchr(name, '.');
    if (dot) {
        if (!valid_dotted(name, false))
            return fail(c, "invalid %s name \"%s\"", kind, name);
        fullname = tkc_strdup(name);
        *space = tkc_strndup(name, (size_t)(dot - name));
    } else {
        json_t *jns = json_object_get(s, "namespace");
        const char *own = ns;
        if (jns && !json_is_null(jns)) {
            own = json_string_value(jns);
            if (!own || !valid_dotted(own, true))
                return fail(c, "invalid namespace of %s \"%s\"", kind, name);
        }
        if (!valid_name(name, strlen(name)))
            return fail(c, "invalid %s name \"%s\"", kind, name);
        fullname = join_name(own, name);
        *space = tkc_strdup(own ? own : "");
    }
    if (is_primitive(fullname) || name_defined(c, fullname)) {
        tkc_err_t err = fail(c, "%s \"%s\" %s", kind, fullname,
                             is_primitive(fullname) ? "redefines a primitive type"
                                                    : "is defined twice");
        tkc_free(fullname);
        tkc_free(*space);
        *space = NULL;
        return err;
    }
    define_name(c, fullname);
    *full = fullname;
    return TKC_ERR_OK;
}

static tkc_err_t emit_record(canon_t *c, json_t *s, const char *type, const char *ns)
{
    const char *full;
    char *space = NULL;
    tkc_err_t err = define_named(c, s, type, ns, &full, &space);
    if (err)
        return err;
    json_t *fields = json_object_get(s, "fields");
    if (!json_is_array(fields)) {
        tkc_free(space);
        return fail(c, "record \"%s\" without a \"fields\" array", full);
    }
    puts_(c, "{\"name\":");
    put_quoted(c, full);
    puts_(c, ",\"type\":");
    put_quoted(c, type);
    puts_(c, ",\"fields\":[");
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        const char *fname = json_string_value(json_object_get(f, "name"));
        json_t *ftype = json_object_get(f, "type");
        if (!fname || !valid_name(fname, strlen(fname)) || !ftype) {
            err = fail(c, "record \"%s\": field %zu needs a valid \"name\" and a \"type\"", full,
                       i);
            break;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(json_string_value(json_object_get(json_array_get(fields, k), "name")),
                       fname) == 0) {
                err = fail(c, "record \"%s\": field \"%s\" appears twice", full, fname);
                break;
            }
        }
        if (err)
            break;
        if (i)
            put(c, ",", 1);
        puts_(c, "{\"name\":");
        put_quoted(c, fname);
        puts_(c, ",\"type\":");
        if ((err = emit(c, ftype, space)))
            break;
        put(c, "}", 1);
    }
    tkc_free(space);
    if (err)
        return err;
    puts_(c, "]}");
    return TKC_ERR_OK;
}

static tkc_err_t emit_enum(canon_t *c, json_t *s, const char *ns)
{
    const char *full;
    char *space = NULL;
    tkc_err_t err = define_named(c, s, "enum", ns, &full, &space);
    tkc_free(space);
    if (err)
        return err;
    json_t *symbols = json_object_get(s, "symbols");
    if (!json_is_array(symbols))
        return fail(c, "enum \"%s\" without a \"symbols\" array", full);
    puts_(c, "{\"name\":");
    put_quoted(c, full);
    puts_(c, ",\"type\":\"enum\",\"symbols\":[");
    size_t i;
    json_t *sym;
    json_array_foreach(symbols, i, sym)
    {
        const char *v = json_string_value(sym);
        if (!v || !valid_name(v, strlen(v)))
            return fail(c, "enum \"%s\": invalid symbol at index %zu", full, i);
        for (size_t k = 0; k < i; k++)
            if (strcmp(json_string_value(json_array_get(symbols, k)), v) == 0)
                return fail(c, "enum \"%s\": symbol \"%s\" appears twice", full, v);
        if (i)
            put(c, ",", 1);
        put_quoted(c, v);
    }
    puts_(c, "]}");
    return TKC_ERR_OK;
}

static tkc_err_t emit_fixed(canon_t *c, json_t *s, const char *ns)
{
    const char *full;
    char *space = NULL;
    tkc_err_t err = define_named(c, s, "fixed", ns, &full, &space);
    tkc_free(space);
    if (err)
        return err;
    json_t *size = json_object_get(s, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return fail(c, "fixed \"%s\" needs a non-negative integer \"size\"", full);
    char num[32];
    snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(size));
    puts_(c, "{\"name\":");
    put_quoted(c, full);
    puts_(c, ",\"type\":\"fixed\",\"size\":");
    puts_(c, num);
    put(c, "}", 1);
    return TKC_ERR_OK;
}

static tkc_err_t emit_object(canon_t *c, json_t *s, const char *ns)
{
    json_t *jtype = json_object_get(s, "type");
    if (!jtype)
        return fail(c, "schema object without a \"type\"");
    /* Lenient like several implementations: {"type": <schema>} wraps a schema. */
    if (!json_is_string(jtype))
        return emit(c, jtype, ns);
    const char *type = json_string_value(jtype);
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0)
        return emit_record(c, s, type, ns);
    if (strcmp(type, "enum") == 0)
        return emit_enum(c, s, ns);
    if (strcmp(type, "fixed") == 0)
        return emit_fixed(c, s, ns);
    if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
        bool array = type[0] == 'a';
        json_t *sub = json_object_get(s, array ? "items" : "values");
        if (!sub)
            return fail(c, "%s without \"%s\"", type, array ? "items" : "values");
        puts_(c, array ? "{\"type\":\"array\",\"items\":" : "{\"type\":\"map\",\"values\":");
        tkc_err_t err = emit(c, sub, ns);
        if (err)
            return err;
        put(c, "}", 1);
        return TKC_ERR_OK;
    }
    /* A primitive (logicalType and other attributes stripped) or a reference. */
    return emit_reference(c, type, ns);
}

static tkc_err_t emit(canon_t *c, json_t *s, const char *ns)
{
    if (++c->depth > CANON_MAX_DEPTH) {
        c->depth--;
        return fail(c, "schema nested deeper than %d levels", CANON_MAX_DEPTH);
    }
    tkc_err_t err = TKC_ERR_OK;
    if (json_is_string(s)) {
        err = emit_reference(c, json_string_value(s), ns);
    } else if (json_is_array(s)) {
        put(c, "[", 1);
        size_t i;
        json_t *b;
        json_array_foreach(s, i, b)
        {
            if (json_is_array(b)) {
                err = fail(c, "a union may not directly contain a union");
                break;
            }
            if (i)
                put(c, ",", 1);
            if ((err = emit(c, b, ns)))
                break;
        }
        if (!err)
            put(c, "]", 1);
    } else if (json_is_object(s)) {
        err = emit_object(c, s, ns);
    } else {
        err = fail(c, "a schema must be a string, an array or an object");
    }
    c->depth--;
    return err;
}

tkc_err_t tkc_avro_canonical_form(const char *json, size_t len, char **out, size_t *out_len,
                                  char *errstr, size_t errstr_size)
{
    canon_t c = {.errstr = errstr, .errstr_size = errstr_size};
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(&c, "schema is not valid JSON: %s (line %d column %d)", jerr.text, jerr.line,
                    jerr.column);
    tkc_err_t err = emit(&c, root, "");
    json_decref(root);
    for (size_t i = 0; i < c.n_names; i++)
        tkc_free(c.names[i]);
    tkc_free(c.names);
    if (err) {
        tkc_free(c.out);
        return err;
    }
    *out = c.out;
    if (out_len)
        *out_len = c.len;
    return TKC_ERR_OK;
}

tkc_err_t tkc_avro_canonical_fingerprint(const char *json, size_t len, uint64_t *fp,
                                         char *errstr, size_t errstr_size)
{
    char *pcf;
    size_t pcf_len;
    tkc_err_t err = tkc_avro_canonical_form(json, len, &pcf, &pcf_len, errstr, errstr_size);
    if (err)
        return err;
    *fp = tkc_avro_canonical_crc64(pcf, pcf_len);
    tkc_free(pcf);
    return TKC_ERR_OK;
}
