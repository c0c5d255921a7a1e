/*
 * registry_compat.c: the test registry's Avro model and compatibility rules
 * (see registry_compat.h).
 *
 * A schema is parsed from JSON (jansson) into a graph of nodes: named types
 * are defined once and references point at the defining node, so recursive
 * schemas are cycles. Field defaults stay as json_t borrowed from the parsed
 * document, which the schema keeps.
 *
 * The check walks reader and writer together. Recursive schemas would make
 * it loop, so pairs of named nodes already under examination are assumed
 * compatible (the standard co-inductive answer, as Java's
 * SchemaCompatibility memoises pairs).
 *
 * Written for the tests: clarity over speed.
 */
#include "registry/registry_compat.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/mem.h"

typedef enum {
    K_NULL,
    K_BOOLEAN,
    K_INT,
    K_LONG,
    K_FLOAT,
    K_DOUBLE,
    K_BYTES,
    K_STRING,
    K_RECORD,
    K_ENUM,
    K_FIXED,
    K_ARRAY,
    K_MAP,
    K_UNION,
} kind_t;

static const char *const kind_names[] = {"null",  "boolean", "int",    "long",  "float",
                                         "double", "bytes",  "string", "record", "enum",
                                         "fixed", "array",   "map",    "union"};

typedef struct node_s node_t;

typedef struct field_s {
    const char *name;
    const char **aliases;
    size_t n_aliases;
    node_t *type;
    json_t *def; /* borrowed from the document; NULL: no default */
} field_t;

struct node_s {
    kind_t kind;
    char *fullname;     /* named types */
    const char *name;   /* unqualified, points into fullname */
    char **aliases;     /* full names */
    size_t n_aliases;
    field_t *fields;
    size_t n_fields;
    const char **symbols;
    size_t n_symbols;
    const char *enum_default;
    int64_t size;
    node_t *items; /* array items, map values */
    node_t **branches;
    size_t n_branches;
};

struct tkc_registry_compat_schema_s {
    json_t *doc;
    char *normalized;
    node_t *root;
    node_t **nodes; /* every node, for freeing and name lookup */
    size_t n_nodes, cap_nodes;
};

typedef struct parser_s {
    tkc_registry_compat_schema_t *s;
    char *errstr;
    size_t errstr_size;
    bool failed;
    int depth;
} parser_t;

__attribute__((format(printf, 2, 3))) static void perr(parser_t *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    if (p->errstr && p->errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->errstr, p->errstr_size, fmt, ap);
        va_end(ap);
    }
}

static node_t *new_node(parser_t *p, kind_t kind)
{
    tkc_registry_compat_schema_t *s = p->s;
    if (s->n_nodes == s->cap_nodes) {
        s->cap_nodes = s->cap_nodes ? s->cap_nodes * 2 : 16;
        s->nodes = tkc_realloc(s->nodes, s->cap_nodes * sizeof(*s->nodes));
    }
    node_t *n = tkc_calloc(1, sizeof(*n));
    n->kind = kind;
    s->nodes[s->n_nodes++] = n;
    return n;
}

static int primitive_kind(const char *t)
{
    for (int k = K_NULL; k <= K_STRING; k++)
        if (strcmp(t, kind_names[k]) == 0)
            return k;
    return -1;
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
        if (!(alpha || (i > 0 && ch >= '0' && ch <= '9')))
            return false;
    }
    return true;
}

static bool valid_dotted(const char *s, bool allow_empty)
{
    if (!*s)
        return allow_empty;
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!valid_name(p, n))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

static char *join(const char *ns, const char *name)
{
    if (strchr(name, '.') || !ns || !*ns)
        return tkc_strdup(name);
    size_t n = strlen(ns) + strlen(name) + 2;
    char *out = tkc_malloc(n);
    snprintf(out, n, "%s.%s", ns, name);
    return out;
}

static node_t *find_named(const tkc_registry_compat_schema_t *s, const char *full)
{
    for (size_t i = 0; i < s->n_nodes; i++)
        if (s->nodes[i]->fullname && strcmp(s->nodes[i]->fullname, full) == 0)
            return s->nodes[i];
    return NULL;
}

static node_t *parse(parser_t *p, json_t *j, const char *ns);

static node_t *parse_ref(parser_t *p, const char *t, const char *ns)
{
    int k = primitive_kind(t);
    if (k >= 0)
        return new_node(p, (kind_t)k);
    char *full = join(ns, t);
    node_t *n = find_named(p->s, full);
    tkc_free(full);
    if (!n && !strchr(t, '.'))
        n = find_named(p->s, t);
    if (!n)
        perr(p, "Unknown type: %s", t);
    return n;
}

/* Defines a named node; @returns its namespace (malloc'd) or NULL on error. */
static char *define(parser_t *p, node_t *n, json_t *j, const char *ns)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    if (!name) {
        perr(p, "No name in schema: %s", kind_names[n->kind]);
        return NULL;
    }
    const char *own = ns;
    json_t *jns = json_object_get(j, "namespace");
    if (jns && !json_is_null(jns)) {
        own = json_string_value(jns);
        if (!own || !valid_dotted(own, true)) {
            perr(p, "Invalid namespace of %s", name);
            return NULL;
        }
    }
    const char *dot = strrchr(name, '.');
    if (dot ? !valid_dotted(name, false) : !valid_name(name, strlen(name))) {
        perr(p, "Illegal name: %s", name);
        return NULL;
    }
    n->fullname = join(own, name);
    n->name = strrchr(n->fullname, '.') ? strrchr(n->fullname, '.') + 1 : n->fullname;
    char *space = dot ? tkc_strndup(name, (size_t)(dot - name)) : tkc_strdup(own ? own : "");
    if (primitive_kind(n->fullname) >= 0) {
        perr(p, "Schemas may not be named after primitives: %s", n->fullname);
        tkc_free(space);
        return NULL;
    }
    for (size_t i = 0; i < p->s->n_nodes; i++) {
        if (p->s->nodes[i] != n && p->s->nodes[i]->fullname &&
            strcmp(p->s->nodes[i]->fullname, n->fullname) == 0) {
            perr(p, "Can't redefine: %s", n->fullname);
            tkc_free(space);
            return NULL;
        }
    }
    json_t *al = json_object_get(j, "aliases");
    if (json_is_array(al) && json_array_size(al)) {
        n->aliases = tkc_calloc(json_array_size(al), sizeof(char *));
        size_t i;
        json_t *a;
        json_array_foreach(al, i, a)
        {
            if (!json_is_string(a)) {
                perr(p, "Aliases of %s must be strings", n->fullname);
                break;
            }
            n->aliases[n->n_aliases++] = join(space, json_string_value(a));
        }
    }
    return space;
}

static bool default_ok(const node_t *n, json_t *d, int depth);

static node_t *parse_record(parser_t *p, json_t *j, const char *ns)
{
    node_t *n = new_node(p, K_RECORD);
    char *space = define(p, n, j, ns);
    if (!space)
        return NULL;
    json_t *fields = json_object_get(j, "fields");
    if (!json_is_array(fields)) {
        perr(p, "Record has no fields: %s", n->fullname);
        tkc_free(space);
        return NULL;
    }
    n->fields = tkc_calloc(json_array_size(fields) + 1, sizeof(field_t));
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        field_t *fd = &n->fields[i];
        fd->name = json_string_value(json_object_get(f, "name"));
        json_t *ft = json_object_get(f, "type");
        if (!fd->name || !valid_name(fd->name, strlen(fd->name)) || !ft) {
            perr(p, "Invalid field %zu of %s", i, n->fullname);
            break;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(n->fields[k].name, fd->name) == 0) {
                perr(p, "Duplicate field %s in record %s", fd->name, n->fullname);
                break;
            }
        }
        n->n_fields = i + 1;
        fd->type = parse(p, ft, space);
        if (!fd->type)
            break;
        fd->def = json_object_get(f, "default");
        if (fd->def && !default_ok(fd->type, fd->def, 0)) {
            perr(p, "Invalid default for field %s: %s not a %s", fd->name,
                 json_is_null(fd->def) ? "null" : "value", kind_names[fd->type->kind]);
            break;
        }
        json_t *al = json_object_get(f, "aliases");
        if (json_is_array(al) && json_array_size(al)) {
            fd->aliases = tkc_calloc(json_array_size(al), sizeof(char *));
            size_t k;
            json_t *a;
            json_array_foreach(al, k, a)
            {
                if (json_is_string(a))
                    fd->aliases[fd->n_aliases++] = json_string_value(a);
            }
        }
    }
    tkc_free(space);
    return p->failed ? NULL : n;
}

static node_t *parse_enum(parser_t *p, json_t *j, const char *ns)
{
    node_t *n = new_node(p, K_ENUM);
    char *space = define(p, n, j, ns);
    tkc_free(space);
    if (!space)
        return NULL;
    json_t *syms = json_object_get(j, "symbols");
    if (!json_is_array(syms)) {
        perr(p, "Enum has no symbols: %s", n->fullname);
        return NULL;
    }
    n->symbols = tkc_calloc(json_array_size(syms) + 1, sizeof(char *));
    size_t i;
    json_t *sym;
    json_array_foreach(syms, i, sym)
    {
        const char *v = json_string_value(sym);
        if (!v || !valid_name(v, strlen(v))) {
            perr(p, "Illegal enum symbol in %s", n->fullname);
            return NULL;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(n->symbols[k], v) == 0) {
                perr(p, "Duplicate enum symbol: %s", v);
                return NULL;
            }
        }
        n->symbols[n->n_symbols++] = v;
    }
    json_t *def = json_object_get(j, "default");
    if (def) {
        const char *v = json_string_value(def);
        bool found = false;
        for (size_t k = 0; v && k < n->n_symbols; k++)
            found |= strcmp(n->symbols[k], v) == 0;
        if (!found) {
            perr(p, "The Enum Default: %s is not in the enum symbol set", v ? v : "?");
            return NULL;
        }
        n->enum_default = v;
    }
    return n;
}

static node_t *parse(parser_t *p, json_t *j, const char *ns)
{
    if (p->failed)
        return NULL;
    if (++p->depth > 200) {
        perr(p, "Schema nested too deeply");
        return NULL;
    }
    node_t *n = NULL;
    if (json_is_string(j)) {
        n = parse_ref(p, json_string_value(j), ns);
    } else if (json_is_array(j)) {
        n = new_node(p, K_UNION);
        n->branches = tkc_calloc(json_array_size(j) + 1, sizeof(node_t *));
        size_t i;
        json_t *b;
        json_array_foreach(j, i, b)
        {
            node_t *bn = parse(p, b, ns);
            if (!bn)
                break;
            if (bn->kind == K_UNION) {
                perr(p, "Nested union");
                break;
            }
            /* Unnamed branch types must be unique, named ones by full name. */
            for (size_t k = 0; k < n->n_branches; k++) {
                node_t *o = n->branches[k];
                if (o->kind == bn->kind && (!o->fullname || o == bn ||
                                            strcmp(o->fullname, bn->fullname) == 0)) {
                    perr(p, "Duplicate in union: %s", bn->fullname ? bn->fullname
                                                                   : kind_names[bn->kind]);
                    break;
                }
            }
            n->branches[n->n_branches++] = bn;
        }
    } else if (json_is_object(j)) {
        json_t *jt = json_object_get(j, "type");
        const char *t = json_string_value(jt);
        if (!jt) {
            perr(p, "No type: %s", "schema object without \"type\"");
        } else if (!t) {
            n = parse(p, jt, ns);
        } else if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0) {
            n = parse_record(p, j, ns);
        } else if (strcmp(t, "enum") == 0) {
            n = parse_enum(p, j, ns);
        } else if (strcmp(t, "fixed") == 0) {
            n = new_node(p, K_FIXED);
            char *space = define(p, n, j, ns);
            tkc_free(space);
            json_t *size = json_object_get(j, "size");
            if (space && (!json_is_integer(size) || json_integer_value(size) < 0))
                perr(p, "Invalid or no size: %s", n->fullname);
            else if (space)
                n->size = json_integer_value(size);
        } else if (strcmp(t, "array") == 0 || strcmp(t, "map") == 0) {
            bool array = t[0] == 'a';
            json_t *sub = json_object_get(j, array ? "items" : "values");
            if (!sub) {
                perr(p, "%s has no %s", t, array ? "items" : "values");
            } else {
                n = new_node(p, array ? K_ARRAY : K_MAP);
                n->items = parse(p, sub, ns);
            }
        } else {
            n = parse_ref(p, t, ns);
        }
    } else {
        perr(p, "Schema must be a string, an array or an object");
    }
    p->depth--;
    return p->failed ? NULL : n;
}

/* Whether JSON @p d is a valid default for @p n (a union: its first branch). */
static bool default_ok(const node_t *n, json_t *d, int depth)
{
    if (depth > 64)
        return false;
    switch (n->kind) {
    case K_NULL:
        return json_is_null(d);
    case K_BOOLEAN:
        return json_is_boolean(d);
    case K_INT:
        return json_is_integer(d) && json_integer_value(d) >= INT32_MIN &&
               json_integer_value(d) <= INT32_MAX;
    case K_LONG:
        return json_is_integer(d);
    case K_FLOAT:
    case K_DOUBLE:
        return json_is_number(d);
    case K_BYTES:
    case K_STRING:
    case K_FIXED:
        return json_is_string(d);
    case K_ENUM:
        for (size_t i = 0; json_is_string(d) && i < n->n_symbols; i++)
            if (strcmp(n->symbols[i], json_string_value(d)) == 0)
                return true;
        return false;
    case K_ARRAY: {
        if (!json_is_array(d))
            return false;
        size_t i;
        json_t *v;
        json_array_foreach(d, i, v) if (!default_ok(n->items, v, depth + 1)) return false;
        return true;
    }
    case K_MAP: {
        if (!json_is_object(d))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach(d, k, v) if (!default_ok(n->items, v, depth + 1)) return false;
        return true;
    }
    case K_RECORD:
        if (!json_is_object(d))
            return false;
        for (size_t i = 0; i < n->n_fields; i++) {
            json_t *v = json_object_get(d, n->fields[i].name);
            if (v ? !default_ok(n->fields[i].type, v, depth + 1) : !n->fields[i].def)
                return false;
        }
        return true;
    case K_UNION:
        return n->n_branches > 0 && default_ok(n->branches[0], d, depth + 1);
    }
    return false;
}

tkc_registry_compat_schema_t *tkc_registry_compat_parse(const char *text, size_t len,
                                                        char *errstr, size_t errstr_size)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size, "Invalid schema JSON: %s", jerr.text);
        return NULL;
    }
    tkc_registry_compat_schema_t *s = tkc_calloc(1, sizeof(*s));
    s->doc = doc;
    parser_t p = {s, errstr, errstr_size, false, 0};
    s->root = parse(&p, doc, "");
    if (!s->root) {
        if (!p.failed && errstr && errstr_size)
            snprintf(errstr, errstr_size, "Invalid schema");
        tkc_registry_compat_schema_free(s);
        return NULL;
    }
    s->normalized = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    return s;
}

void tkc_registry_compat_schema_free(tkc_registry_compat_schema_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_nodes; i++) {
        node_t *n = s->nodes[i];
        for (size_t k = 0; k < n->n_aliases; k++)
            tkc_free(n->aliases[k]);
        tkc_free(n->aliases);
        for (size_t k = 0; k < n->n_fields; k++)
            tkc_free(n->fields[k].aliases);
        tkc_free(n->fields);
        tkc_free(n->symbols);
        tkc_free(n->branches);
        tkc_free(n->fullname);
        tkc_free(n);
    }
    tkc_free(s->nodes);
    tkc_free(s->normalized); /* jansson's malloc */
    json_decref(s->doc);
    tkc_free(s);
}

const char *tkc_registry_compat_normalized(const tkc_registry_compat_schema_t *s)
{
    return s->normalized;
}

/* ===== compatibility ===== */

typedef struct checker_s {
    const node_t *stack_r[256], *stack_w[256];
    int depth;
    const char *error_type;
    char *desc;
    size_t desc_size;
} checker_t;

__attribute__((format(printf, 4, 5))) static bool incompatible(checker_t *c, const char *type,
                                                              const char *path,
                                                              const char *fmt, ...)
{
    if (c->error_type)
        return false;
    c->error_type = type;
    if (c->desc && c->desc_size) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(c->desc, c->desc_size, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < c->desc_size)
            snprintf(c->desc + n, c->desc_size - (size_t)n, " (at path '%s')",
                     *path ? path : "/");
    }
    return false;
}

static const char *label(const node_t *n)
{
    return n->fullname ? n->fullname : kind_names[n->kind];
}

static bool names_match(const node_t *r, const node_t *w)
{
    if (strcmp(r->name, w->name) == 0)
        return true;
    for (size_t i = 0; i < r->n_aliases; i++)
        if (strcmp(r->aliases[i], w->fullname) == 0)
            return true;
    return false;
}

static bool promotes(kind_t w, kind_t r)
{
    switch (w) {
    case K_INT:
        return r == K_LONG || r == K_FLOAT || r == K_DOUBLE;
    case K_LONG:
        return r == K_FLOAT || r == K_DOUBLE;
    case K_FLOAT:
        return r == K_DOUBLE;
    case K_STRING:
        return r == K_BYTES;
    case K_BYTES:
        return r == K_STRING;
    default:
        return false;
    }
}

static bool can_read(checker_t *c, const node_t *r, const node_t *w, const char *path);

/* Without recording an error: used to pick a reader union branch. */
static bool try_read(checker_t *c, const node_t *r, const node_t *w, const char *path)
{
    checker_t probe = *c;
    probe.error_type = NULL;
    probe.desc = NULL;
    probe.desc_size = 0;
    return can_read(&probe, r, w, path);
}

static bool can_read(checker_t *c, const node_t *r, const node_t *w, const char *path)
{
    char sub[1024];
    if (w->kind == K_UNION) {
        for (size_t i = 0; i < w->n_branches; i++) {
            snprintf(sub, sizeof(sub), "%s/%zu", path, i);
            if (r->kind == K_UNION) {
                bool found = false;
                for (size_t k = 0; k < r->n_branches && !found; k++)
                    found = try_read(c, r->branches[k], w->branches[i], sub);
                if (!found)
                    return incompatible(c, "MISSING_UNION_BRANCH", sub,
                                        "reader union lacks a branch that can read the "
                                        "writer's branch %s",
                                        label(w->branches[i]));
            } else if (!can_read(c, r, w->branches[i], sub)) {
                return false;
            }
        }
        return true;
    }
    if (r->kind == K_UNION) {
        for (size_t k = 0; k < r->n_branches; k++)
            if (try_read(c, r->branches[k], w, path))
                return true;
        return incompatible(c, "MISSING_UNION_BRANCH", path,
                            "reader union has no branch that can read writer type %s",
                            label(w));
    }
    if (r->kind != w->kind) {
        if (promotes(w->kind, r->kind))
            return true;
        return incompatible(c, "TYPE_MISMATCH", path,
                            "reader type %s cannot read writer type %s", label(r), label(w));
    }
    if (r->kind <= K_STRING)
        return true;
    if (r->kind == K_ARRAY || r->kind == K_MAP) {
        snprintf(sub, sizeof(sub), "%s/%s", path, r->kind == K_ARRAY ? "items" : "values");
        return can_read(c, r->items, w->items, sub);
    }
    /* named types */
    if (!names_match(r, w))
        return incompatible(c, "NAME_MISMATCH", path,
                            "reader's name %s does not match writer's name %s", r->fullname,
                            w->fullname);
    for (int i = 0; i < c->depth; i++)
        if (c->stack_r[i] == r && c->stack_w[i] == w)
            return true; /* recursion: assume compatible */
    if (c->depth == 256)
        return incompatible(c, "TYPE_MISMATCH", path, "schemas nest too deeply to compare");
    c->stack_r[c->depth] = r;
    c->stack_w[c->depth] = w;
    c->depth++;
    bool ok = true;
    if (r->kind == K_FIXED) {
        if (r->size != w->size)
            ok = incompatible(c, "FIXED_SIZE_MISMATCH", path,
                              "fixed %s: reader size %" PRId64 " but writer size %" PRId64,
                              r->fullname, r->size, w->size);
    } else if (r->kind == K_ENUM) {
        if (!r->enum_default) {
            for (size_t i = 0; ok && i < w->n_symbols; i++) {
                bool found = false;
                for (size_t k = 0; k < r->n_symbols && !found; k++)
                    found = strcmp(r->symbols[k], w->symbols[i]) == 0;
                if (!found) {
                    snprintf(sub, sizeof(sub), "%s/symbols", path);
                    ok = incompatible(c, "MISSING_ENUM_SYMBOLS", sub,
                                      "writer's enum %s has symbol %s, which the reader lacks "
                                      "(and the reader has no enum default)",
                                      w->fullname, w->symbols[i]);
                }
            }
        }
    } else { /* record */
        for (size_t i = 0; ok && i < r->n_fields; i++) {
            const field_t *rf = &r->fields[i];
            const field_t *wf = NULL;
            for (size_t k = 0; k < w->n_fields && !wf; k++) {
                if (strcmp(w->fields[k].name, rf->name) == 0)
                    wf = &w->fields[k];
                for (size_t a = 0; a < rf->n_aliases && !wf; a++)
                    if (strcmp(w->fields[k].name, rf->aliases[a]) == 0)
                        wf = &w->fields[k];
            }
            snprintf(sub, sizeof(sub), "%s/fields/%zu", path, i);
            if (wf) {
                ok = can_read(c, rf->type, wf->type, sub);
            } else if (!rf->def) {
                ok = incompatible(c, "READER_FIELD_MISSING_DEFAULT_VALUE", sub,
                                  "the reader's field '%s' of %s has no default value and is "
                                  "missing in the writer's schema",
                                  rf->name, r->fullname);
            }
        }
    }
    c->depth--;
    return ok;
}

bool tkc_registry_compat_can_read(const tkc_registry_compat_schema_t *reader,
                                  const tkc_registry_compat_schema_t *writer,
                                  const char **error_type, char *desc, size_t desc_size)
{
    checker_t *c = tkc_calloc(1, sizeof(*c));
    c->desc = desc;
    c->desc_size = desc_size;
    bool ok = can_read(c, reader->root, writer->root, "");
    if (!ok && error_type)
        *error_type = c->error_type ? c->error_type : "TYPE_MISMATCH";
    tkc_free(c);
    return ok;
}

static const char *const level_names[] = {"NONE",    "BACKWARD", "BACKWARD_TRANSITIVE",
                                          "FORWARD", "FORWARD_TRANSITIVE", "FULL",
                                          "FULL_TRANSITIVE"};

const char *tkc_registry_compat_level_name(tkc_registry_compat_level_t level)
{
    return (unsigned)level < sizeof(level_names) / sizeof(level_names[0]) ? level_names[level]
                                                                          : "?";
}

int tkc_registry_compat_level_parse(const char *name, tkc_registry_compat_level_t *out)
{
    for (size_t i = 0; name && i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (tkc_registry_compat_level_t)i;
            return 0;
        }
    }
    return -1;
}

bool tkc_registry_compat_check(tkc_registry_compat_level_t level,
                               const tkc_registry_compat_schema_t *candidate,
                               const tkc_registry_compat_schema_t *const *versions,
                               size_t n_versions, size_t *bad_version, const char **error_type,
                               char *desc, size_t desc_size)
{
    if (level == TKC_REGISTRY_COMPAT_NONE || n_versions == 0)
        return true;
    bool transitive = level == TKC_REGISTRY_COMPAT_BACKWARD_TRANSITIVE ||
                      level == TKC_REGISTRY_COMPAT_FORWARD_TRANSITIVE ||
                      level == TKC_REGISTRY_COMPAT_FULL_TRANSITIVE;
    bool backward = level != TKC_REGISTRY_COMPAT_FORWARD &&
                    level != TKC_REGISTRY_COMPAT_FORWARD_TRANSITIVE;
    bool forward = level != TKC_REGISTRY_COMPAT_BACKWARD &&
                   level != TKC_REGISTRY_COMPAT_BACKWARD_TRANSITIVE;
    /* Newest first, as Confluent reports the latest conflicting version. */
    for (size_t k = n_versions; k-- > (transitive ? 0 : n_versions - 1);) {
        const tkc_registry_compat_schema_t *old = versions[k];
        if (backward && !tkc_registry_compat_can_read(candidate, old, error_type, desc,
                                                      desc_size)) {
            if (bad_version)
                *bad_version = k;
            return false;
        }
        if (forward && !tkc_registry_compat_can_read(old, candidate, error_type, desc,
                                                     desc_size)) {
            if (bad_version)
                *bad_version = k;
            return false;
        }
    }
    return true;
}
