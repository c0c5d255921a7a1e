/*
 * conf.c: loading, validating and dumping the configuration.
 *
 * Flow of tkc_conf_load():
 *   1. defaults: every row of the key table is set from its default text
 *      through the same typed setter as a file value (a default the setter
 *      refuses is a bug and aborts);
 *   2. the file: libinih drives the parse, but through our own line reader
 *      (ini_parse_stream). The reader numbers lines (inih's handler gets no
 *      line number in Debian's build), reports every syntax error itself
 *      (inih only returns the first one), refuses lines longer than inih's
 *      fixed buffer instead of letting inih split them silently, and tells
 *      the handler whether a line is an indented continuation;
 *   3. the environment: TKC_<SECTION>_<KEY> for every key of the table, and
 *      TKC_RDKAFKA_<PROP> for librdkafka properties. Only known names are
 *      looked up, so the test harness' own TKC_KAFKA_* variables never
 *      collide; other TKC_<SECTION>_* names get a warning with a guess;
 *   4. validation of what needs more than one key or the outside world:
 *      librdkafka properties through rd_kafka_conf_set(), files and
 *      directories that must exist, and the cross-key rules.
 * Every problem found on the way is kept; the load fails at the end if any
 * was an error, so an operator fixes a file in one round.
 *
 * List keys (spans, tables, endpoints) may continue on indented lines
 * (configparser style); every other key may be set once per file. The
 * environment replaces a list whole.
 *
 * Typed values and the setter are in conf_value.c.
 *
 * Secrets: the setter never puts a value into a message for a secret key
 * or property, and the dump masks them. The raw text of every value is kept
 * (per key, with its source) so check-config prints what the operator
 * wrote, not a re-rendering.
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf_int.h"
#include "util/mem.h"

extern char **environ;

enum { SRC_DEFAULT = 0, SRC_FILE = 1, SRC_ENV = 2 };

typedef struct val_src_s {
    int kind;
    char *origin; /* file name or env variable name */
    int line;
    char *raw;    /* effective text of the value */
} val_src_t;

struct tkc_conf_src_s {
    size_t n_keys;
    val_src_t *keys;  /* parallel to the key table */
    val_src_t *props; /* parallel to conf->kafka.props */
    size_t props_cap;
};

#define MASK "******"

/* ===== small helpers ===== */

typedef struct sbuf_s {
    char *buf;
    size_t len, cap;
} sbuf_t;

static void sb_vprintf(sbuf_t *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_vprintf(sbuf_t *b, const char *fmt, va_list ap)
{
    for (;;) {
        va_list cp;
        va_copy(cp, ap);
        int w = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? b->cap - b->len : 0, fmt, cp);
        va_end(cp);
        if (w < 0)
            return;
        if (b->buf && (size_t)w < b->cap - b->len) {
            b->len += (size_t)w;
            return;
        }
        b->cap = (b->cap + (size_t)w + 64) * 2;
        b->buf = tkc_realloc(b->buf, b->cap);
    }
}

static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

static void push_msg(char ***arr, size_t *n, char *msg)
{
    *arr = tkc_realloc(*arr, (*n + 1) * sizeof(char *));
    (*arr)[(*n)++] = msg;
}

void tkc_conf_report_clear(tkc_conf_report_t *rep)
{
    if (!rep)
        return;
    for (size_t i = 0; i < rep->n_errors; i++)
        tkc_free(rep->errors[i]);
    for (size_t i = 0; i < rep->n_warnings; i++)
        tkc_free(rep->warnings[i]);
    tkc_free(rep->errors);
    tkc_free(rep->warnings);
    memset(rep, 0, sizeof(*rep));
}

char *conf_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Case-insensitive Levenshtein distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t cost = ca == cb ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* A guess is offered only when it is close: at most 2 edits, or a third
 * of the word for long names. */
static bool close_enough(const char *word, size_t d)
{
    size_t len = strlen(word);
    return d <= 2 || d <= len / 3;
}

bool tkc_conf_name_is_secret(const char *name)
{
    static const char *const words[] = {"password", "secret", "token", "credential",
                                        "key.pem", "oauthbearer.config", NULL};
    char low[128];
    size_t n = 0;
    for (; name[n] && n < sizeof(low) - 1; n++)
        low[n] = (char)tolower((unsigned char)name[n]);
    low[n] = '\0';
    for (const char *const *w = words; *w; w++)
        if (strstr(low, *w))
            return true;
    return false;
}

static bool key_is_secret(const tkc_conf_key_t *k)
{
    return (k->flags & TKC_CONF_F_SECRET) || tkc_conf_name_is_secret(k->name);
}

static const tkc_conf_key_t *find_key(const char *section, const char *name)
{
    size_t n;
    const tkc_conf_key_t *keys = tkc_conf_keys(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static bool section_known(const char *section)
{
    for (const char *const *s = tkc_conf_sections(); *s; s++)
        if (strcmp(*s, section) == 0)
            return true;
    return false;
}

void *conf_field(tkc_conf_t *c, const tkc_conf_key_t *k)
{
    return (char *)c + k->offset;
}

/* ===== value sources ===== */

static void src_set(val_src_t *s, int kind, const char *origin, int line, const char *raw,
                    bool append)
{
    char *nraw;
    if (append && s->raw && s->raw[0]) {
        size_t n = strlen(s->raw) + strlen(raw) + 3;
        nraw = tkc_malloc(n);
        snprintf(nraw, n, "%s, %s", s->raw, raw);
    } else {
        nraw = tkc_strdup(raw);
    }
    tkc_free(s->raw);
    s->raw = nraw;
    if (!append) {
        tkc_free(s->origin);
        s->origin = origin ? tkc_strdup(origin) : NULL;
        s->kind = kind;
        s->line = line;
    }
}

static void src_free(val_src_t *s)
{
    tkc_free(s->origin);
    tkc_free(s->raw);
}

/* ===== the conf object ===== */

void tkc_conf_destroy(tkc_conf_t *c)
{
    if (!c)
        return;
    size_t n;
    const tkc_conf_key_t *keys = tkc_conf_keys(&n);
    for (size_t i = 0; i < n; i++)
        conf_key_free(c, &keys[i]);
    for (size_t i = 0; i < c->kafka.props.n; i++) {
        tkc_free(c->kafka.props.v[i].name);
        tkc_free(c->kafka.props.v[i].value);
        src_free(&c->src->props[i]);
    }
    tkc_free(c->kafka.props.v);
    for (size_t i = 0; i < c->src->n_keys; i++)
        src_free(&c->src->keys[i]);
    tkc_free(c->src->keys);
    tkc_free(c->src->props);
    tkc_free(c->src);
    tkc_free(c->path);
    tkc_free(c);
}

static tkc_conf_t *conf_defaults(void)
{
    tkc_conf_t *c = tkc_calloc(1, sizeof(*c));
    size_t n;
    const tkc_conf_key_t *keys = tkc_conf_keys(&n);
    c->src = tkc_calloc(1, sizeof(*c->src));
    c->src->n_keys = n;
    c->src->keys = tkc_calloc(n, sizeof(val_src_t));
    for (size_t i = 0; i < n; i++) {
        char err[256];
        if (conf_key_set(c, &keys[i], keys[i].def, false, err, sizeof(err)) != 0) {
            fprintf(stderr, "BUG: default of [%s] %s is invalid: %s\n", keys[i].section,
                    keys[i].name, err);
            abort();
        }
        src_set(&c->src->keys[i], SRC_DEFAULT, NULL, 0, keys[i].def, false);
    }
    return c;
}

/* ===== loading ===== */

typedef struct load_s {
    tkc_conf_t *conf;
    tkc_conf_report_t rep;
    const char *origin; /* file name for messages */
    /* reader state */
    const char *text;
    size_t len, pos;
    int line;
    bool cont_line;     /* the current line continues the previous key */
    bool have_prev_key; /* a key line since the last section header */
    bool in_section;    /* a section header was seen */
    int *seen_line;     /* per key: line of its first assignment in the file */
} load_t;

static void add_msg(load_t *ld, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Messages quote names and values from the input, which may hold control
 * characters (a value ending in CR, an environment value with a newline, a
 * librdkafka error text): they are escaped so that every message stays one
 * line of plain text in the report and the log. */
static char *escape_controls(const char *s)
{
    sbuf_t b = {0};
    sb_printf(&b, "%s", "");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            sb_printf(&b, "\\n");
        else if (*p == '\r')
            sb_printf(&b, "\\r");
        else if (*p == '\t')
            sb_printf(&b, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            sb_printf(&b, "\\x%02x", *p);
        else
            sb_printf(&b, "%c", *p);
    }
    return b.buf;
}

static void add_msg(load_t *ld, bool error, const char *fmt, ...)
{
    sbuf_t raw = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&raw, fmt, ap);
    va_end(ap);
    char *msg = escape_controls(raw.buf ? raw.buf : "(message could not be formatted)");
    tkc_free(raw.buf);
    if (error)
        push_msg(&ld->rep.errors, &ld->rep.n_errors, msg);
    else
        push_msg(&ld->rep.warnings, &ld->rep.n_warnings, msg);
}

/* "file:line" / "env NAME" / "file" of a value, for messages. */
static void loc_of(const load_t *ld, const val_src_t *s, char *buf, size_t size)
{
    if (s->kind == SRC_FILE)
        snprintf(buf, size, "%s:%d", s->origin, s->line);
    else if (s->kind == SRC_ENV)
        snprintf(buf, size, "env %s", s->origin);
    else
        snprintf(buf, size, "%s", ld->origin ? ld->origin : "(defaults)");
}

static size_t key_index(const tkc_conf_key_t *k)
{
    size_t n;
    return (size_t)(k - tkc_conf_keys(&n));
}

static val_src_t *src_of(const load_t *ld, const char *section, const char *name)
{
    const tkc_conf_key_t *k = find_key(section, name);
    return &ld->conf->src->keys[key_index(k)];
}

/* Guess for an unknown key: the closest key of the same section, or the
 * same name in another section. */
static void suggest_key(const char *section, const char *name, char *buf, size_t size)
{
    size_t n, best = SIZE_MAX;
    const tkc_conf_key_t *keys = tkc_conf_keys(&n), *bk = NULL;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].section, section) != 0)
            continue;
        size_t d = edit_distance(name, keys[i].name);
        if (d < best) {
            best = d;
            bk = &keys[i];
        }
    }
    if (bk && close_enough(name, best)) {
        snprintf(buf, size, " (did you mean %s?)", bk->name);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(keys[i].name, name) == 0) {
            snprintf(buf, size, " (%s is a key of [%s])", keys[i].name, keys[i].section);
            return;
        }
}

static void suggest_section(const char *name, char *buf, size_t size)
{
    size_t best = SIZE_MAX;
    const char *bs = NULL;
    buf[0] = '\0';
    for (const char *const *s = tkc_conf_sections(); *s; s++) {
        size_t d = edit_distance(name, *s);
        if (d < best) {
            best = d;
            bs = *s;
        }
    }
    if (bs && close_enough(name, best))
        snprintf(buf, size, " (did you mean [%s]?)", bs);
}

static void prop_set(load_t *ld, const char *name, const char *value, int kind, const char *origin,
                     int line)
{
    tkc_conf_t *c = ld->conf;
    tkc_conf_proplist_t *pl = &c->kafka.props;
    for (size_t i = 0; i < pl->n; i++) {
        if (strcmp(pl->v[i].name, name) != 0)
            continue;
        val_src_t *s = &c->src->props[i];
        if (kind == SRC_FILE && s->kind == SRC_FILE) {
            add_msg(ld, true, "%s:%d: [kafka] %s: duplicate key (first set on line %d)", origin,
                    line, name, s->line);
            return;
        }
        tkc_free(pl->v[i].value);
        pl->v[i].value = tkc_strdup(value);
        src_set(s, kind, origin, line, value, false);
        return;
    }
    pl->v = tkc_realloc(pl->v, (pl->n + 1) * sizeof(*pl->v));
    if (pl->n + 1 > c->src->props_cap) {
        c->src->props_cap = (pl->n + 1) * 2;
        c->src->props = tkc_realloc(c->src->props, c->src->props_cap * sizeof(val_src_t));
    }
    pl->v[pl->n].name = tkc_strdup(name);
    pl->v[pl->n].value = tkc_strdup(value);
    memset(&c->src->props[pl->n], 0, sizeof(val_src_t));
    src_set(&c->src->props[pl->n], kind, origin, line, value, false);
    pl->n++;
}

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
    load_t *ld = user;
    int line = ld->line;
    if (!*section) {
        add_msg(ld, true, "%s:%d: %s: key outside any section (put it under [feed], [kafka], ...)",
                ld->origin, line, name);
        return 1;
    }
    if (!section_known(section))
        return 1; /* reported once at the section header */
    const tkc_conf_key_t *k = find_key(section, name);
    if (!k) {
        if (strcmp(section, "kafka") == 0 && *name) {
            if (ld->cont_line) {
                add_msg(ld, true,
                        "%s:%d: [kafka] %s: continuation lines are only allowed for list keys "
                        "(is this line indented by mistake?)",
                        ld->origin, line, name);
                return 1;
            }
            /* A librdkafka property; validated after the environment. */
            prop_set(ld, name, value, SRC_FILE, ld->origin, line);
            return 1;
        }
        char hint[96];
        suggest_key(section, name, hint, sizeof(hint));
        add_msg(ld, true, "%s:%d: [%s] %s: unknown key%s", ld->origin, line, section, name, hint);
        return 1;
    }
    size_t idx = key_index(k);
    bool is_list = k->type == TKC_CONF_T_STRLIST || k->type == TKC_CONF_T_ENDPOINTS ||
                   k->type == TKC_CONF_T_SPANS || k->type == TKC_CONF_T_I64LIST;
    bool append = false;
    if (ld->seen_line[idx]) {
        if (!ld->cont_line) {
            add_msg(ld, true, "%s:%d: [%s] %s: duplicate key (first set on line %d)", ld->origin,
                    line, section, name, ld->seen_line[idx]);
            return 1;
        }
        if (!is_list) {
            add_msg(ld, true,
                    "%s:%d: [%s] %s: continuation lines are only allowed for list keys (is this "
                    "line indented by mistake?)",
                    ld->origin, line, section, name);
            return 1;
        }
        append = true;
    } else {
        ld->seen_line[idx] = line;
    }
    char err[512];
    if (conf_key_set(ld->conf, k, value, append, err, sizeof(err)) != 0) {
        add_msg(ld, true, "%s:%d: [%s] %s: %s", ld->origin, line, section, name, err);
        return 1;
    }
    src_set(&ld->conf->src->keys[idx], SRC_FILE, ld->origin, line, value, append);
    return 1;
}

/* inih's line buffer (INI_MAX_LINE) minus "\r\n\0". */
#define LINE_MAX_CHARS (INI_MAX_LINE - 3)

/* Mirrors inih's reading of one line, to number lines, report every
 * syntax error and flag continuation lines. */
static void classify_line(load_t *ld, const char *line, size_t len)
{
    char buf[LINE_MAX_CHARS + 1];
    if (len > LINE_MAX_CHARS)
        len = LINE_MAX_CHARS;
    memcpy(buf, line, len);
    buf[len] = '\0';
    char *s = buf;
    if (ld->line == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
        (unsigned char)s[2] == 0xBF)
        s += 3;
    bool indented = isspace((unsigned char)*s);
    char *t = conf_trim(s);
    ld->cont_line = false;
    if (!*t || *t == ';' || *t == '#')
        return;
    if (indented && ld->have_prev_key) {
        ld->cont_line = true;
        return;
    }
    if (*t == '[') {
        ld->have_prev_key = false;
        ld->in_section = true;
        char *rb = strchr(t, ']');
        if (!rb) {
            add_msg(ld, true, "%s:%d: missing ] in section header \"%s\"", ld->origin, ld->line, t);
            return;
        }
        *rb = '\0';
        if (!section_known(t + 1)) {
            char hint[64];
            suggest_section(t + 1, hint, sizeof(hint));
            add_msg(ld, true, "%s:%d: [%s]: unknown section%s", ld->origin, ld->line, t + 1, hint);
        }
        return;
    }
    /* inih splits at the first '=' or ':' before an inline " ;" comment. */
    char *eq = t + strcspn(t, "=:");
    char *cm = strstr(t, " ;");
    if (!*eq || (cm && cm < eq)) {
        add_msg(ld, true, "%s:%d: expected key = value, got \"%s\"", ld->origin, ld->line, t);
        return;
    }
    ld->have_prev_key = true;
}

static char *line_reader(char *str, int num, void *stream)
{
    load_t *ld = stream;
    if (ld->pos >= ld->len)
        return NULL;
    const char *start = ld->text + ld->pos;
    const char *nl = memchr(start, '\n', ld->len - ld->pos);
    size_t len = nl ? (size_t)(nl - start) : ld->len - ld->pos;
    ld->pos += len + (nl ? 1 : 0);
    ld->line++;
    if (memchr(start, '\0', len)) {
        add_msg(ld, true, "%s:%d: NUL byte in line (is this a text file?)", ld->origin, ld->line);
        len = strnlen(start, len);
    }
    size_t max = num > 3 ? (size_t)num - 3 : 0;
    if (max > LINE_MAX_CHARS)
        max = LINE_MAX_CHARS;
    if (len > max) {
        add_msg(ld, true,
                "%s:%d: line longer than %zu characters; split a long list over indented "
                "continuation lines",
                ld->origin, ld->line, max);
        len = max;
    }
    classify_line(ld, start, len);
    memcpy(str, start, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* Variables of the project's own test tooling that share the TKC_KAFKA_
 * prefix but are not configuration keys (tests/kafka/CMakeLists.txt). */
static bool env_is_tooling(const char *name)
{
    static const char *const tooling[] = {"TKC_KAFKA_BOOTSTRAP_FILE", "TKC_KAFKA_BROKER_DIR",
                                          "TKC_KAFKA_BROKER_SCRIPT", "TKC_KAFKA_CACHE", NULL};
    for (const char *const *t = tooling; *t; t++)
        if (strcmp(name, *t) == 0)
            return true;
    return false;
}

#define RDKAFKA_ENV_PREFIX "TKC_RDKAFKA_"

static void apply_env(load_t *ld, char *const *envp)
{
    size_t n;
    const tkc_conf_key_t *keys = tkc_conf_keys(&n);
    for (size_t i = 0; i < n; i++) {
        char name[96];
        tkc_conf_key_env(&keys[i], name, sizeof(name));
        const char *v = env_get(envp, name);
        if (!v)
            continue;
        char err[512];
        if (conf_key_set(ld->conf, &keys[i], v, false, err, sizeof(err)) != 0) {
            add_msg(ld, true, "env %s: [%s] %s: %s", name, keys[i].section, keys[i].name, err);
            continue;
        }
        src_set(&ld->conf->src->keys[i], SRC_ENV, name, 0, v, false);
    }
    for (char *const *e = envp; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || strncmp(*e, "TKC_", 4) != 0)
            continue;
        char name[160];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - *e), *e);
        if (strncmp(name, RDKAFKA_ENV_PREFIX, strlen(RDKAFKA_ENV_PREFIX)) == 0) {
            /* SASL_PASSWORD -> sasl.password; a doubled '_' is a real '_'. */
            char prop[160];
            size_t j = 0;
            for (const char *p = name + strlen(RDKAFKA_ENV_PREFIX); *p && j < sizeof(prop) - 1;
                 p++) {
                if (p[0] == '_' && p[1] == '_') {
                    prop[j++] = '_';
                    p++;
                } else {
                    prop[j++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
                }
            }
            prop[j] = '\0';
            if (j)
                prop_set(ld, prop, eq + 1, SRC_ENV, name, 0);
            continue;
        }
        /* TKC_<SECTION>_...: not a key of ours? Warn with a guess. */
        bool known = false, in_section = false;
        for (const char *const *s = tkc_conf_sections(); *s && !known; s++) {
            char pre[64];
            snprintf(pre, sizeof(pre), "TKC_%s_", *s);
            for (char *q = pre; *q; q++)
                *q = (char)toupper((unsigned char)*q);
            if (strncmp(name, pre, strlen(pre)) == 0)
                in_section = true;
        }
        if (!in_section || env_is_tooling(name))
            continue;
        size_t best = SIZE_MAX;
        char bestname[96] = "";
        for (size_t i = 0; i < n; i++) {
            char kn[96];
            tkc_conf_key_env(&keys[i], kn, sizeof(kn));
            if (strcmp(kn, name) == 0)
                known = true;
            size_t d = edit_distance(name, kn);
            if (d < best) {
                best = d;
                snprintf(bestname, sizeof(bestname), "%s", kn);
            }
        }
        if (known)
            continue;
        if (best <= 2)
            add_msg(ld, false, "env %s: not a configuration key (did you mean %s?)", name,
                    bestname);
        else
            add_msg(ld, false, "env %s: not a configuration key", name);
    }
}

/* ===== validation ===== */

static void check_file(load_t *ld, const char *section, const char *name, const char *path)
{
    if (!path || !*path)
        return;
    char loc[256];
    loc_of(ld, src_of(ld, section, name), loc, sizeof(loc));
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0)
        add_msg(ld, true, "%s: [%s] %s: cannot read %s: %s", loc, section, name, path,
                strerror(errno));
    else if (!S_ISREG(st.st_mode))
        add_msg(ld, true, "%s: [%s] %s: %s is not a regular file", loc, section, name, path);
}

static void check_dir(load_t *ld, const char *section, const char *name, const char *path,
                      int mode)
{
    if (!path || !*path)
        return;
    char loc[256];
    loc_of(ld, src_of(ld, section, name), loc, sizeof(loc));
    struct stat st;
    if (stat(path, &st) != 0)
        add_msg(ld, true, "%s: [%s] %s: %s: %s", loc, section, name, path, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        add_msg(ld, true, "%s: [%s] %s: %s is not a directory", loc, section, name, path);
    else if (access(path, mode) != 0)
        add_msg(ld, true, "%s: [%s] %s: %s: %s", loc, section, name, path, strerror(errno));
}

static void err_at(load_t *ld, const char *section, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void err_at(load_t *ld, const char *section, const char *name, const char *fmt, ...)
{
    char loc[256];
    loc_of(ld, src_of(ld, section, name), loc, sizeof(loc));
    sbuf_t b = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    add_msg(ld, true, "%s: [%s] %s: %s", loc, section, name, b.buf);
    tkc_free(b.buf);
}

static void warn_at(load_t *ld, const char *section, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void warn_at(load_t *ld, const char *section, const char *name, const char *fmt, ...)
{
    char loc[256];
    loc_of(ld, src_of(ld, section, name), loc, sizeof(loc));
    sbuf_t b = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    add_msg(ld, false, "%s: [%s] %s: %s", loc, section, name, b.buf);
    tkc_free(b.buf);
}

/* Pass-through properties: ours to refuse, librdkafka's to judge. */
static void validate_props(load_t *ld)
{
    tkc_conf_t *c = ld->conf;
    rd_kafka_conf_t *rc = rd_kafka_conf_new();
    for (size_t i = 0; i < c->kafka.props.n; i++) {
        const tkc_conf_prop_t *p = &c->kafka.props.v[i];
        const val_src_t *s = &c->src->props[i];
        char loc[256];
        loc_of(ld, s, loc, sizeof(loc));
        if (strcmp(p->name, "bootstrap.servers") == 0 ||
            strcmp(p->name, "metadata.broker.list") == 0) {
            add_msg(ld, true, "%s: [kafka] %s: set the brokers with bootstrap_servers", loc,
                    p->name);
            continue;
        }
        if (strcmp(p->name, "transactional.id") == 0) {
            add_msg(ld, true,
                    "%s: [kafka] %s: derived from [feed] id in exactly-once delivery; not "
                    "settable",
                    loc, p->name);
            continue;
        }
        char err[512];
        rd_kafka_conf_res_t res = rd_kafka_conf_set(rc, p->name, p->value, err, sizeof(err));
        if (res == RD_KAFKA_CONF_UNKNOWN) {
            char hint[96];
            suggest_key("kafka", p->name, hint, sizeof(hint));
            add_msg(ld, true, "%s: [kafka] %s: unknown key%s", loc, p->name,
                    hint[0] ? hint : " (neither a key of ours nor a librdkafka property)");
        } else if (res != RD_KAFKA_CONF_OK) {
            if (tkc_conf_name_is_secret(p->name))
                add_msg(ld, true,
                        "%s: [kafka] %s: invalid value for librdkafka (not shown: secret)", loc,
                        p->name);
            else
                add_msg(ld, true, "%s: [kafka] %s: %s", loc, p->name, err);
        } else if (strcmp(p->name, "enable.idempotence") == 0 &&
                   (strcmp(p->value, "false") == 0 || strcmp(p->value, "0") == 0)) {
            add_msg(ld, false,
                    "%s: [kafka] %s: without idempotence a retried batch may land after a later "
                    "one: per-key order is no longer guaranteed",
                    loc, p->name);
        }
    }
    rd_kafka_conf_destroy(rc);
}

static bool topic_chars_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 200 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

void tkc_conf_memory_budget(const tkc_conf_t *c, tkc_conf_memory_t *out)
{
    uint64_t q = c->feed.memory_quota;
    /*
     * Defaults: 1/16 of the quota for the queue (a hand-off, it only needs
     * to absorb bursts) and 1/8 for Kafka (enough to keep a broker busy:
     * 64 MiB at the default 512 MiB quota, as before the budget was one),
     * the rest for the rows waiting for their resolved ts.
     */
    uint64_t queue = c->feed.queue_size;
    if (!queue) {
        queue = q / 16;
        if (queue > ((uint64_t)64 << 20))
            queue = (uint64_t)64 << 20;
        if (queue < ((uint64_t)64 << 10))
            queue = (uint64_t)64 << 10;
    }
    uint64_t inflight = c->kafka.max_inflight;
    if (!inflight) {
        inflight = q / 8;
        if (inflight > ((uint64_t)256 << 20))
            inflight = (uint64_t)256 << 20;
    }
    /*
     * Pending prewrites get 1/16 (at most 64 MiB) when they can spill: a
     * normal transaction stays in memory, a huge one keeps only small stubs.
     * Without a spill dir there is nowhere to put them, so no share is
     * taken from the sorter (and they are unbounded, as before).
     */
    uint64_t prewrite = 0;
    if (c->feed.spill_dir && *c->feed.spill_dir) {
        prewrite = q / 16;
        if (prewrite > ((uint64_t)64 << 20))
            prewrite = (uint64_t)64 << 20;
    }
    out->queue = queue;
    out->inflight = inflight;
    out->prewrite = prewrite;
    out->sorter = queue + inflight + prewrite < q ? q - queue - inflight - prewrite : 0;
}

static void validate_memory(load_t *ld)
{
    tkc_conf_t *c = ld->conf;
    if (c->feed.queue_size && c->feed.queue_size < ((uint64_t)64 << 10))
        err_at(ld, "feed", "queue_size", "at least 64KiB (or 0: derived from memory_quota)");
    if (c->kafka.max_inflight && c->kafka.max_inflight < ((uint64_t)1 << 20))
        err_at(ld, "kafka", "max_inflight", "at least 1MiB (or 0: derived from memory_quota)");
    tkc_conf_memory_t m;
    tkc_conf_memory_budget(c, &m);
    /* the derived parts are 3/16 of the quota; set ones must leave the
     * sorter at least half, or a burst could not be buffered at all */
    if (m.queue + m.inflight > c->feed.memory_quota / 2) {
        char q[32], i[32], t[32];
        tkc_conf_format_size(m.queue, q, sizeof(q));
        tkc_conf_format_size(m.inflight, i, sizeof(i));
        tkc_conf_format_size(c->feed.memory_quota, t, sizeof(t));
        err_at(ld, c->feed.queue_size ? "feed" : "kafka",
               c->feed.queue_size ? "queue_size" : "max_inflight",
               "queue_size (%s) + [kafka] max_inflight (%s) are part of [feed] memory_quota (%s) "
               "and may take at most half of it: lower them or raise memory_quota",
               q, i, t);
    }
}

static void validate(load_t *ld)
{
    tkc_conf_t *c = ld->conf;
    validate_props(ld);

    /* [feed] */
    if (c->feed.spans.n == 0 && c->feed.tables.n == 0)
        err_at(ld, "feed", "spans", "nothing to capture: set spans or tables");
    if (c->feed.tables.n && c->feed.kv_api != TKC_CONF_KV_API_TIDB)
        err_at(ld, "feed", "tables", "table ids need kv_api = tidb");
    for (size_t i = 0; i < c->feed.spans.n; i++)
        for (size_t j = i + 1; j < c->feed.spans.n; j++) {
            const tkc_conf_span_t *a = &c->feed.spans.v[i], *b = &c->feed.spans.v[j];
            /* [as, ae) and [bs, be) overlap iff as < be and bs < ae (empty end = +inf). */
            bool a_before_be =
                !b->end_len || conf_key_cmp_bytes(a->start, a->start_len, b->end, b->end_len) < 0;
            bool b_before_ae =
                !a->end_len || conf_key_cmp_bytes(b->start, b->start_len, a->end, a->end_len) < 0;
            if (a_before_be && b_before_ae)
                err_at(ld, "feed", "spans",
                       "spans %zu and %zu overlap (rows would be written twice)", i, j);
        }
    check_dir(ld, "feed", "spill_dir", c->feed.spill_dir, R_OK | W_OK | X_OK);
    validate_memory(ld);
    if (c->feed.delivery == TKC_CONF_DELIVERY_EXACTLY_ONCE &&
        c->checkpoint.store != TKC_CONF_CHECKPOINT_KAFKA)
        err_at(ld, "feed", "delivery",
               "exactly-once needs [checkpoint] store = kafka (the checkpoint is written in the "
               "same Kafka transaction as the rows)");

    /* [pd] */
    if (c->pd.endpoints.n == 0)
        err_at(ld, "pd", "endpoints", "required: at least one PD endpoint");
    check_file(ld, "pd", "ca", c->pd.ca);
    check_file(ld, "pd", "cert", c->pd.cert);
    check_file(ld, "pd", "key", c->pd.key);
    if (!!*c->pd.cert != !!*c->pd.key)
        err_at(ld, "pd", *c->pd.cert ? "cert" : "key", "cert and key go together: set %s too",
               *c->pd.cert ? "key" : "cert");

    /* [kafka] */
    if (c->kafka.embedded_mock_brokers == 0 && !*c->kafka.bootstrap_servers)
        err_at(ld, "kafka", "bootstrap_servers",
               "required (or embedded_mock_brokers > 0 for an in-process Kafka)");
    if (c->kafka.embedded_mock_brokers > 0 && *c->kafka.bootstrap_servers)
        warn_at(ld, "kafka", "bootstrap_servers", "ignored: embedded_mock_brokers is set");
    if (*c->kafka.bootstrap_servers) {
        char *copy = tkc_strdup(c->kafka.bootstrap_servers);
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char err[256];
            char *hp = conf_trim(t);
            /* librdkafka accepts PLAINTEXT://host:port style too. */
            char *scheme = strstr(hp, "://");
            if (scheme)
                hp = scheme + 3;
            if (conf_check_hostport(hp, 1, err, sizeof(err)) != 0)
                err_at(ld, "kafka", "bootstrap_servers", "%s", err);
        }
        tkc_free(copy);
    }
    if (!topic_chars_ok(c->kafka.topic_prefix))
        err_at(ld, "kafka", "topic_prefix",
               "\"%s\" is not a valid topic name prefix (1-200 of A-Z a-z 0-9 . _ -)",
               c->kafka.topic_prefix);
    if (c->kafka.replication_factor == 0)
        err_at(ld, "kafka", "replication_factor", "must be -1 (broker default) or at least 1");
    if (c->kafka.embedded_mock_brokers > 0 && c->feed.delivery == TKC_CONF_DELIVERY_EXACTLY_ONCE)
        warn_at(ld, "kafka", "embedded_mock_brokers",
                "librdkafka's mock cluster does not enforce read_committed: exactly-once is not "
                "observable with it");
    check_dir(ld, "kafka", "schema_dir", c->kafka.schema_dir, R_OK | X_OK);
    if (*c->kafka.schema_dir) {
        static const char *const files[] = {"row_change.avsc", "watermark.avsc",
                                            "checkpoint.avsc", NULL};
        struct stat st;
        if (stat(c->kafka.schema_dir, &st) == 0 && S_ISDIR(st.st_mode))
            for (const char *const *f = files; *f; f++) {
                char p[4096];
                snprintf(p, sizeof(p), "%s/%s", c->kafka.schema_dir, *f);
                if (access(p, R_OK) != 0)
                    err_at(ld, "kafka", "schema_dir", "cannot read %s: %s", p, strerror(errno));
            }
    } else {
        err_at(ld, "kafka", "schema_dir", "required");
    }

    /* [schema_registry] */
    const tkc_conf_schema_registry_t *sr = &c->schema_registry;
    if (*sr->url && strncmp(sr->url, "http://", 7) != 0 && strncmp(sr->url, "https://", 8) != 0)
        err_at(ld, "schema_registry", "url", "must start with http:// or https://");
    if (*sr->password && !*sr->username)
        err_at(ld, "schema_registry", "username", "required when a password is set");
    if (!*sr->url && (*sr->username || *sr->ca || *sr->cert))
        warn_at(ld, "schema_registry", "url",
                "empty: the registry settings are ignored (single-object framing)");
    check_file(ld, "schema_registry", "ca", sr->ca);
    check_file(ld, "schema_registry", "cert", sr->cert);
    check_file(ld, "schema_registry", "key", sr->key);
    if (!!*sr->cert != !!*sr->key)
        err_at(ld, "schema_registry", *sr->cert ? "cert" : "key",
               "cert and key go together: set %s too", *sr->cert ? "key" : "cert");

    /* [checkpoint] */
    if (c->checkpoint.store == TKC_CONF_CHECKPOINT_FILE) {
        if (!*c->checkpoint.path) {
            err_at(ld, "checkpoint", "path", "required when store = file");
        } else {
            char *dir = tkc_strdup(c->checkpoint.path);
            char *slash = strrchr(dir, '/');
            const char *d = ".";
            if (slash == dir)
                d = "/";
            else if (slash) {
                *slash = '\0';
                d = dir;
            }
            struct stat st;
            if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode) || access(d, W_OK | X_OK) != 0)
                err_at(ld, "checkpoint", "path", "directory %s does not exist or is not writable",
                       d);
            tkc_free(dir);
        }
    } else if (*c->checkpoint.path) {
        warn_at(ld, "checkpoint", "path", "ignored: store = kafka");
    }
}

/* Messages in reading order: lines of the file first, by line; then what
 * concerns the file as a whole; then the environment. The stable sort keeps
 * the order in which they were found within each group. */
typedef struct msg_key_s {
    long key;
    size_t seq;
    char *msg;
} msg_key_t;

static int msg_key_cmp(const void *a, const void *b)
{
    const msg_key_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void sort_msgs(const char *origin, char **msgs, size_t n)
{
    if (n < 2)
        return;
    msg_key_t *k = tkc_malloc(n * sizeof(*k));
    size_t olen = origin ? strlen(origin) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *m = msgs[i];
        k[i] = (msg_key_t){LONG_MAX - 1, i, msgs[i]};
        if (strncmp(m, "env ", 4) == 0) {
            k[i].key = LONG_MAX;
        } else if (olen && strncmp(m, origin, olen) == 0 && m[olen] == ':') {
            char *end;
            long line = strtol(m + olen + 1, &end, 10);
            if (end != m + olen + 1 && *end == ':')
                k[i].key = line;
        }
    }
    qsort(k, n, sizeof(*k), msg_key_cmp);
    for (size_t i = 0; i < n; i++)
        msgs[i] = k[i].msg;
    tkc_free(k);
}

static tkc_conf_t *load(const char *origin, const char *text, size_t len, char *const *envp,
                        tkc_conf_report_t *rep, bool read_failed)
{
    load_t ld = {0};
    ld.conf = conf_defaults();
    ld.origin = origin;
    ld.conf->path = tkc_strdup(origin ? origin : "");
    size_t n;
    tkc_conf_keys(&n);
    ld.seen_line = tkc_calloc(n, sizeof(int));
    if (read_failed) {
        add_msg(&ld, true, "%s: cannot read: %s", origin, strerror(errno));
    } else if (text) {
        ld.text = text;
        ld.len = len;
        int rc = ini_parse_stream(line_reader, &ld, ini_cb, &ld);
        if (rc > 0 && ld.rep.n_errors == 0)
            add_msg(&ld, true, "%s:%d: syntax error", origin, rc);
    }
    apply_env(&ld, envp ? envp : environ);
    if (!read_failed)
        validate(&ld);
    tkc_free(ld.seen_line);
    sort_msgs(origin, ld.rep.errors, ld.rep.n_errors);
    sort_msgs(origin, ld.rep.warnings, ld.rep.n_warnings);
    tkc_conf_t *c = ld.conf;
    if (ld.rep.n_errors) {
        tkc_conf_destroy(c);
        c = NULL;
    }
    if (rep)
        *rep = ld.rep;
    else
        tkc_conf_report_clear(&ld.rep);
    return c;
}

tkc_conf_t *tkc_conf_load_string(const char *name, const char *text, char *const *envp,
                                 tkc_conf_report_t *rep)
{
    return load(name, text, strlen(text), envp, rep, false);
}

tkc_conf_t *tkc_conf_load(const char *path, char *const *envp, tkc_conf_report_t *rep)
{
    if (!path)
        return load(NULL, NULL, 0, envp, rep, false);
    FILE *f = fopen(path, "rb");
    if (!f)
        return load(path, NULL, 0, envp, rep, true);
    sbuf_t b = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (!b.buf || b.len + got + 1 > b.cap) {
            b.cap = (b.len + got + 1) * 2;
            b.buf = tkc_realloc(b.buf, b.cap);
        }
        memcpy(b.buf + b.len, chunk, got);
        b.len += got;
    }
    int read_err = ferror(f);
    fclose(f);
    tkc_conf_t *c;
    if (read_err) {
        errno = EIO;
        c = load(path, NULL, 0, envp, rep, true);
    } else {
        c = load(path, b.buf ? b.buf : "", b.len, envp, rep, false);
    }
    tkc_free(b.buf);
    return c;
}

/* ===== queries and dump ===== */

const char *tkc_conf_source(const tkc_conf_t *conf, const char *section, const char *name,
                            int *line)
{
    static const char *const kinds[] = {"default", "file", "env"};
    const val_src_t *s = NULL;
    const tkc_conf_key_t *k = find_key(section, name);
    if (k) {
        s = &conf->src->keys[key_index(k)];
    } else if (strcmp(section, "kafka") == 0) {
        for (size_t i = 0; i < conf->kafka.props.n; i++)
            if (strcmp(conf->kafka.props.v[i].name, name) == 0)
                s = &conf->src->props[i];
    }
    if (!s)
        return NULL;
    if (line)
        *line = s->line;
    return kinds[s->kind];
}

static void dump_source(sbuf_t *b, const val_src_t *s)
{
    if (s->kind == SRC_FILE)
        sb_printf(b, "# %s:%d\n", s->origin, s->line);
    else if (s->kind == SRC_ENV)
        sb_printf(b, "# env %s\n", s->origin);
}

char *tkc_conf_dump(const tkc_conf_t *conf, bool sources)
{
    sbuf_t b = {0};
    size_t n;
    const tkc_conf_key_t *keys = tkc_conf_keys(&n);
    sb_printf(&b, "# effective configuration%s%s; secrets are shown as %s\n",
              conf->path[0] ? " of " : "", conf->path, MASK);
    for (const char *const *sec = tkc_conf_sections(); *sec; sec++) {
        sb_printf(&b, "\n[%s]\n", *sec);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(keys[i].section, *sec) != 0)
                continue;
            const val_src_t *s = &conf->src->keys[i];
            if (sources)
                dump_source(&b, s);
            const char *raw = s->raw ? s->raw : "";
            sb_printf(&b, "%s =%s%s\n", keys[i].name, *raw ? " " : "",
                      key_is_secret(&keys[i]) && *raw ? MASK : raw);
        }
        if (strcmp(*sec, "kafka") == 0 && conf->kafka.props.n) {
            sb_printf(&b, "; librdkafka properties\n");
            for (size_t i = 0; i < conf->kafka.props.n; i++) {
                const tkc_conf_prop_t *p = &conf->kafka.props.v[i];
                if (sources)
                    dump_source(&b, &conf->src->props[i]);
                sb_printf(&b, "%s =%s%s\n", p->name, *p->value ? " " : "",
                          tkc_conf_name_is_secret(p->name) && *p->value ? MASK : p->value);
            }
        }
    }
    return b.buf;
}

size_t tkc_conf_span_count(const tkc_conf_t *conf)
{
    return conf->feed.spans.n + conf->feed.tables.n;
}

void tkc_conf_span_name(const tkc_conf_t *conf, size_t i, char *buf, size_t size)
{
    if (i < conf->feed.spans.n)
        snprintf(buf, size, "span%zu", i);
    else if (i - conf->feed.spans.n < conf->feed.tables.n)
        snprintf(buf, size, "t%lld", (long long)conf->feed.tables.v[i - conf->feed.spans.n]);
    else
        snprintf(buf, size, "?");
}

void tkc_conf_topic_name(const tkc_conf_t *conf, size_t i, char *buf, size_t size)
{
    char name[64];
    tkc_conf_span_name(conf, i, name, sizeof(name));
    snprintf(buf, size, "%s.%s", conf->kafka.topic_prefix, name);
}

void tkc_conf_watermark_topic(const tkc_conf_t *conf, char *buf, size_t size)
{
    snprintf(buf, size, "%s.watermark", conf->kafka.topic_prefix);
}

void tkc_conf_checkpoint_topic(const tkc_conf_t *conf, char *buf, size_t size)
{
    snprintf(buf, size, "%s.checkpoint", conf->kafka.topic_prefix);
}
