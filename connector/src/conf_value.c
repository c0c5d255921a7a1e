/*
 * conf_value.c: the typed values of the configuration: parsers for
 * durations, sizes, timestamps, spans, endpoints and addresses, and the
 * setter that stores a key's text into tkc_conf_t by the key's type.
 *
 * Everything here is exact and allocation-light: durations and sizes are
 * parsed as decimal fixed point (no floating point, so "1.5s" is exactly
 * 1500 ms and "0.1GiB" is refused for not being a whole number of bytes),
 * and a setter either stores the whole value or leaves the config
 * untouched and says why (without the value, for secret keys: those are
 * plain strings and never fail).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf_int.h"
#include "util/mem.h"

/* ===== value parsers ===== */

static int fail(char *errstr, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *errstr, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* Parses a non-negative decimal with an optional fraction, scaled by
 * `mult`, exactly (no floating point): "1.5" x 1000 = 1500. */
static int parse_scaled(const char **pp, uint64_t mult, uint64_t *out, bool *exact)
{
    const char *p = *pp;
    if (!isdigit((unsigned char)*p))
        return -1;
    uint64_t ip = 0;
    for (; isdigit((unsigned char)*p); p++) {
        if (ip > (UINT64_MAX - 9) / 10)
            return -1;
        ip = ip * 10 + (uint64_t)(*p - '0');
    }
    if (mult && ip > UINT64_MAX / mult)
        return -1;
    uint64_t v = ip * mult;
    *exact = true;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        uint64_t scale = 1, frac = 0;
        for (; isdigit((unsigned char)*p); p++) {
            if (scale <= UINT64_MAX / 10 / (mult ? mult : 1)) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                scale *= 10;
            }
        }
        uint64_t add = frac * mult / scale;
        if (add * scale != frac * mult)
            *exact = false;
        if (v > UINT64_MAX - add)
            return -1;
        v += add;
    }
    *pp = p;
    *out = v;
    return 0;
}

int tkc_conf_parse_duration(const char *text, int64_t *ms, char *errstr, size_t errstr_size)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return fail(errstr, errstr_size, "empty duration (write e.g. 500ms, 2s, 1m)");
    if (strcmp(p, "0") == 0) {
        *ms = 0;
        return 0;
    }
    uint64_t total = 0;
    while (*p && !isspace((unsigned char)*p)) {
        const char *num = p;
        while (isdigit((unsigned char)*p) || *p == '.')
            p++;
        const char *u = p;
        while (isalpha((unsigned char)*p))
            p++;
        size_t ulen = (size_t)(p - u);
        if (u == num)
            return fail(errstr, errstr_size, "invalid duration \"%s\" (write e.g. 500ms, 2s, 1m)",
                        text);
        if (ulen == 0)
            return fail(errstr, errstr_size,
                        "duration \"%s\" has no unit (write e.g. 500ms, 2s, 1m, 1h)", text);
        uint64_t mult = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strlen(units[i].unit) == ulen && strncmp(u, units[i].unit, ulen) == 0)
                mult = units[i].ms;
        if (!mult)
            return fail(errstr, errstr_size,
                        "unknown unit \"%.*s\" in duration \"%s\" (ms, s, m, h, d)", (int)ulen, u,
                        text);
        const char *q = num;
        uint64_t v;
        bool exact;
        if (parse_scaled(&q, mult, &v, &exact) != 0 || q != u)
            return fail(errstr, errstr_size, "invalid duration \"%s\"", text);
        if (!exact)
            return fail(errstr, errstr_size, "duration \"%s\" is finer than a millisecond", text);
        if (total > (uint64_t)INT64_MAX - v)
            return fail(errstr, errstr_size, "duration \"%s\" is too large", text);
        total += v;
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return fail(errstr, errstr_size, "invalid duration \"%s\"", text);
    *ms = (int64_t)total;
    return 0;
}

int tkc_conf_parse_size(const char *text, uint64_t *bytes, char *errstr, size_t errstr_size)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"b", 1},
                 {"kb", 1000ULL},
                 {"mb", 1000ULL * 1000},
                 {"gb", 1000ULL * 1000 * 1000},
                 {"tb", 1000ULL * 1000 * 1000 * 1000},
                 {"kib", 1ULL << 10},
                 {"mib", 1ULL << 20},
                 {"gib", 1ULL << 30},
                 {"tib", 1ULL << 40},
                 {"ki", 1ULL << 10},
                 {"mi", 1ULL << 20},
                 {"gi", 1ULL << 30},
                 {"ti", 1ULL << 40}};
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return fail(errstr, errstr_size, "empty size (write e.g. 512MiB, 64KB, 1048576)");
    const char *num = p;
    while (isdigit((unsigned char)*p) || *p == '.')
        p++;
    const char *numend = p;
    while (*p == ' ')
        p++;
    char unit[8];
    size_t ulen = 0;
    while (isalpha((unsigned char)*p) && ulen < sizeof(unit) - 1)
        unit[ulen++] = (char)tolower((unsigned char)*p++);
    unit[ulen] = '\0';
    while (isspace((unsigned char)*p))
        p++;
    if (num == numend || *p || isalpha((unsigned char)*p))
        return fail(errstr, errstr_size, "invalid size \"%s\" (write e.g. 512MiB, 64KB, 1048576)",
                    text);
    if (ulen == 1 && strchr("kmgt", unit[0]))
        return fail(errstr, errstr_size,
                    "ambiguous unit in size \"%s\": write %cB (10^%d) or %ciB (2^%d)", text,
                    toupper((unsigned char)unit[0]),
                    unit[0] == 'k' ? 3 : unit[0] == 'm' ? 6 : unit[0] == 'g' ? 9 : 12,
                    toupper((unsigned char)unit[0]),
                    unit[0] == 'k' ? 10 : unit[0] == 'm' ? 20 : unit[0] == 'g' ? 30 : 40);
    uint64_t mult = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(unit, units[i].unit) == 0)
            mult = units[i].mult;
    if (!mult)
        return fail(errstr, errstr_size,
                    "unknown unit \"%s\" in size \"%s\" (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)",
                    unit, text);
    const char *q = num;
    uint64_t v;
    bool exact;
    if (parse_scaled(&q, mult, &v, &exact) != 0 || q != numend)
        return fail(errstr, errstr_size, "invalid or too large size \"%s\"", text);
    if (!exact)
        return fail(errstr, errstr_size, "size \"%s\" is not a whole number of bytes", text);
    *bytes = v;
    return 0;
}

/* 2015-01-01T00:00:00Z: no TiKV cluster has a TSO older than this, so a
 * smaller number is a mistake (typically Unix seconds or milliseconds). */
#define TSO_MIN_PHYSICAL_MS 1420070400000LL

static int parse_rfc3339(const char *s, int64_t *ms_out)
{
    int Y, M, D, h, m, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &Y, &M, &D, &n) != 3 || n != 10)
        return -1;
    s += n;
    if (*s != 'T' && *s != 't' && *s != ' ')
        return -1;
    s++;
    n = 0;
    if (sscanf(s, "%2d:%2d:%2d%n", &h, &m, &sec, &n) != 3 || n != 8)
        return -1;
    s += n;
    int64_t frac_ms = 0;
    if (*s == '.') {
        s++;
        int digits = 0;
        if (!isdigit((unsigned char)*s))
            return -1;
        for (; isdigit((unsigned char)*s); s++, digits++)
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*s - '0');
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    int64_t off_s = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int oh, om;
        n = 0;
        if (sscanf(s + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 23 || om > 59)
            return -1;
        off_s = (int64_t)(oh * 3600 + om * 60) * (*s == '-' ? -1 : 1);
        s += 1 + n;
    } else {
        return -1;
    }
    if (*s || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    struct tm tm = {0};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *ms_out = ((int64_t)t - off_s) * 1000 + frac_ms;
    return 0;
}

int tkc_conf_parse_tso(const char *text, uint64_t *tso, char *errstr, size_t errstr_size)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", text);
    char *s = conf_trim(buf);
    if (strcmp(s, "now") == 0 || strcmp(s, "0") == 0) {
        *tso = 0;
        return 0;
    }
    if (*s && strspn(s, "0123456789") == strlen(s)) {
        errno = 0;
        unsigned long long v = strtoull(s, NULL, 10);
        if (errno)
            return fail(errstr, errstr_size, "TSO \"%s\" is too large", text);
        if ((int64_t)(v >> 18) < TSO_MIN_PHYSICAL_MS)
            return fail(errstr, errstr_size,
                        "\"%s\" is not a TSO (its physical time is before 2015); give a TSO, an "
                        "RFC 3339 time such as 2026-11-26T15:00:00Z, or now",
                        text);
        *tso = v;
        return 0;
    }
    int64_t ms;
    if (parse_rfc3339(s, &ms) != 0)
        return fail(errstr, errstr_size,
                    "invalid start ts \"%s\": give a TSO, an RFC 3339 time such as "
                    "2026-11-26T15:00:00Z, or now",
                    text);
    if (ms < TSO_MIN_PHYSICAL_MS)
        return fail(errstr, errstr_size, "start time \"%s\" is before 2015", text);
    *tso = (uint64_t)ms << 18;
    return 0;
}

void tkc_conf_format_duration(int64_t ms, char *buf, size_t size)
{
    static const struct {
        const char *u;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    if (ms <= 0) {
        snprintf(buf, size, "0");
        return;
    }
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && ms > 0; i++) {
        if (ms >= units[i].ms) {
            int w = snprintf(buf + len, size - len, "%lld%s", (long long)(ms / units[i].ms),
                             units[i].u);
            if (w < 0 || (size_t)w >= size - len)
                return;
            len += (size_t)w;
            ms %= units[i].ms;
        }
    }
}

void tkc_conf_format_size(uint64_t bytes, char *buf, size_t size)
{
    static const char *const bin[] = {"TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; i < 4; i++) {
        uint64_t m = 1ULL << (10 * (4 - i));
        if (bytes >= m && bytes % m == 0) {
            snprintf(buf, size, "%llu%s", (unsigned long long)(bytes / m), bin[i]);
            return;
        }
    }
    snprintf(buf, size, "%llu", (unsigned long long)bytes);
}

/* ===== typed setters ===== */

void conf_strlist_free(tkc_conf_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        tkc_free(l->v[i]);
    tkc_free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void spanlist_free(tkc_conf_spanlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        tkc_free(l->v[i].start);
        tkc_free(l->v[i].end);
    }
    tkc_free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void i64list_free(tkc_conf_i64list_t *l)
{
    tkc_free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int parse_port(const char *p, int min, int *out)
{
    if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5)
        return -1;
    int v = atoi(p);
    if (v < min || v > 65535)
        return -1;
    *out = v;
    return 0;
}

/* host:port with an optional [IPv6] host; min_port 0 allows "any port". */
int conf_check_hostport(const char *s, int min_port, char *errstr, size_t errstr_size)
{
    const char *colon;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb == s + 1 || rb[1] != ':')
            return fail(errstr, errstr_size, "invalid address \"%s\" (write [v6addr]:port)", s);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || colon == s)
            return fail(errstr, errstr_size, "invalid address \"%s\" (write host:port)", s);
        if (memchr(s, ':', (size_t)(colon - s)))
            return fail(errstr, errstr_size,
                        "invalid address \"%s\" (write IPv6 hosts in brackets: [::1]:port)", s);
        for (const char *h = s; h < colon; h++)
            if (!isalnum((unsigned char)*h) && *h != '.' && *h != '-' && *h != '_')
                return fail(errstr, errstr_size, "invalid host in address \"%s\"", s);
    }
    int port;
    if (parse_port(colon + 1, min_port, &port) != 0)
        return fail(errstr, errstr_size, "invalid port in address \"%s\" (%d..65535)", s,
                    min_port);
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int hex_decode(const char *s, size_t n, uint8_t **out, size_t *out_len)
{
    if (n % 2)
        return -1;
    uint8_t *b = n ? tkc_malloc(n / 2) : NULL;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0) {
            tkc_free(b);
            return -1;
        }
        b[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *out_len = n / 2;
    return 0;
}

int conf_key_cmp_bytes(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (al < bl ? -1 : al > bl ? 1 : 0);
}

/* Splits a comma list into trimmed items; calls item() for each non-empty
 * one. An empty list is fine; an empty item between commas is not. */
typedef int item_fn(void *ctx, char *item, char *errstr, size_t errstr_size);

static int for_each_item(const char *raw, item_fn *fn, void *ctx, char *errstr, size_t errstr_size)
{
    char *copy = tkc_strdup(raw);
    char *t = conf_trim(copy);
    int rc = 0;
    if (*t) {
        /* Walked by hand, not with strtok_r, which would merge ",," and
         * hide an empty item. */
        char *p = t;
        for (;;) {
            char *comma = strchr(p, ',');
            if (comma)
                *comma = '\0';
            char *item = conf_trim(p);
            if (!*item) {
                /* "a, b," is fine: the list continues on the next line. */
                if (!comma && p != t)
                    break;
                rc = fail(errstr, errstr_size, "empty item in list \"%s\"", raw);
                break;
            }
            if ((rc = fn(ctx, item, errstr, errstr_size)) != 0)
                break;
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    tkc_free(copy);
    return rc;
}

static int strlist_item(void *ctx, char *item, char *errstr, size_t errstr_size)
{
    (void)errstr;
    (void)errstr_size;
    tkc_conf_strlist_t *l = ctx;
    l->v = tkc_realloc(l->v, (l->n + 1) * sizeof(char *));
    l->v[l->n++] = tkc_strdup(item);
    return 0;
}

static int endpoint_item(void *ctx, char *item, char *errstr, size_t errstr_size)
{
    const char *hp = item;
    if (strncmp(hp, "http://", 7) == 0)
        hp += 7;
    else if (strncmp(hp, "https://", 8) == 0)
        hp += 8;
    else if (strstr(hp, "://"))
        return fail(errstr, errstr_size, "endpoint \"%s\": only http:// or https:// (or none)",
                    item);
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s", hp);
    size_t n = strlen(tmp);
    if (n && tmp[n - 1] == '/')
        tmp[n - 1] = '\0';
    if (conf_check_hostport(tmp, 1, errstr, errstr_size) != 0)
        return -1;
    return strlist_item(ctx, item, errstr, errstr_size);
}

static int span_item(void *ctx, char *item, char *errstr, size_t errstr_size)
{
    tkc_conf_spanlist_t *l = ctx;
    char *dots = strstr(item, "..");
    if (!dots)
        return fail(errstr, errstr_size, "span \"%s\": write hex start..end", item);
    *dots = '\0';
    char *a = conf_trim(item), *b = conf_trim(dots + 2);
    tkc_conf_span_t sp = {0};
    if (hex_decode(a, strlen(a), &sp.start, &sp.start_len) != 0 ||
        hex_decode(b, strlen(b), &sp.end, &sp.end_len) != 0) {
        tkc_free(sp.start);
        return fail(errstr, errstr_size, "span \"%s..%s\": keys must be hex with an even length",
                    a, b);
    }
    if (sp.end_len && conf_key_cmp_bytes(sp.start, sp.start_len, sp.end, sp.end_len) >= 0) {
        tkc_free(sp.start);
        tkc_free(sp.end);
        return fail(errstr, errstr_size, "span \"%s..%s\": start must be below end", a, b);
    }
    l->v = tkc_realloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = sp;
    return 0;
}

static int i64_item(void *ctx, char *item, char *errstr, size_t errstr_size)
{
    tkc_conf_i64list_t *l = ctx;
    char *end;
    errno = 0;
    long long v = strtoll(item, &end, 10);
    if (errno || *end || v <= 0)
        return fail(errstr, errstr_size, "invalid table id \"%s\" (a positive integer)", item);
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == v)
            return fail(errstr, errstr_size, "table %lld is listed twice", v);
    l->v = tkc_realloc(l->v, (l->n + 1) * sizeof(int64_t));
    l->v[l->n++] = v;
    return 0;
}

static void fmt_limit(const tkc_conf_key_t *k, int64_t v, char *buf, size_t size)
{
    if (k->type == TKC_CONF_T_DURATION)
        tkc_conf_format_duration(v, buf, size);
    else if (k->type == TKC_CONF_T_SIZE)
        tkc_conf_format_size((uint64_t)v, buf, size);
    else
        snprintf(buf, size, "%lld", (long long)v);
}

static int range_error(const tkc_conf_key_t *k, const char *raw, char *errstr, size_t errstr_size)
{
    char lo[32], hi[32];
    fmt_limit(k, k->min, lo, sizeof(lo));
    fmt_limit(k, k->max, hi, sizeof(hi));
    return fail(errstr, errstr_size, "\"%s\" is out of range (%s..%s)", raw, lo, hi);
}

/*
 * Sets key k of c from raw. Lists: append (continuation lines) or replace.
 * On failure c is unchanged and errstr holds the reason (without location,
 * and without the value for secret keys: they are plain strings and cannot
 * fail).
 */
int conf_key_set(tkc_conf_t *c, const tkc_conf_key_t *k, const char *raw, bool append,
                   char *errstr, size_t errstr_size)
{
    void *f = conf_field(c, k);
    char *copy = tkc_strdup(raw);
    char *v = conf_trim(copy);
    int rc = 0;
    switch (k->type) {
    case TKC_CONF_T_STRING:
        tkc_free(*(char **)f);
        *(char **)f = tkc_strdup(v);
        break;
    case TKC_CONF_T_ID: {
        size_t n = strlen(v);
        if (n == 0 || n > 200 || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789._-") != n) {
            rc = fail(errstr, errstr_size, "invalid id \"%s\" (1-200 of A-Z a-z 0-9 . _ -)", v);
            break;
        }
        tkc_free(*(char **)f);
        *(char **)f = tkc_strdup(v);
        break;
    }
    case TKC_CONF_T_LISTEN:
        if (*v && strcmp(v, "off") != 0 && conf_check_hostport(v, 0, errstr, errstr_size) != 0) {
            rc = -1;
            break;
        }
        tkc_free(*(char **)f);
        *(char **)f = tkc_strdup(strcmp(v, "off") == 0 ? "" : v);
        break;
    case TKC_CONF_T_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1", NULL};
        static const char *const no[] = {"false", "no", "off", "0", NULL};
        int b = -1;
        for (int i = 0; yes[i]; i++) {
            if (strcasecmp(v, yes[i]) == 0)
                b = 1;
            if (strcasecmp(v, no[i]) == 0)
                b = 0;
        }
        if (b < 0) {
            rc = fail(errstr, errstr_size, "invalid boolean \"%s\" (true or false)", v);
            break;
        }
        *(bool *)f = b;
        break;
    }
    case TKC_CONF_T_INT: {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || errno) {
            rc = fail(errstr, errstr_size, "invalid integer \"%s\"", v);
            break;
        }
        if (n < k->min || n > k->max) {
            rc = range_error(k, v, errstr, errstr_size);
            break;
        }
        *(int *)f = (int)n;
        break;
    }
    case TKC_CONF_T_SIZE: {
        uint64_t b;
        if (tkc_conf_parse_size(v, &b, errstr, errstr_size) != 0) {
            rc = -1;
            break;
        }
        if (b < (uint64_t)k->min || b > (uint64_t)k->max) {
            rc = range_error(k, v, errstr, errstr_size);
            break;
        }
        *(uint64_t *)f = b;
        break;
    }
    case TKC_CONF_T_DURATION: {
        int64_t ms;
        if (tkc_conf_parse_duration(v, &ms, errstr, errstr_size) != 0) {
            rc = -1;
            break;
        }
        if (ms < k->min || ms > k->max) {
            rc = range_error(k, v, errstr, errstr_size);
            break;
        }
        *(int64_t *)f = ms;
        break;
    }
    case TKC_CONF_T_ENUM: {
        int idx = 0, found = -1;
        const char *p = k->choices;
        while (*p) {
            size_t n = strcspn(p, "|");
            if (strlen(v) == n && strncasecmp(v, p, n) == 0)
                found = idx;
            p += n;
            if (*p == '|')
                p++;
            idx++;
        }
        if (found < 0) {
            char choices[128];
            snprintf(choices, sizeof(choices), "%s", k->choices);
            for (char *q = choices; *q; q++)
                if (*q == '|')
                    *q = ',';
            rc = fail(errstr, errstr_size, "invalid value \"%s\" (one of: %s)", v, choices);
            break;
        }
        *(int *)f = found;
        break;
    }
    case TKC_CONF_T_STRLIST:
    case TKC_CONF_T_ENDPOINTS: {
        tkc_conf_strlist_t nl = {0};
        tkc_conf_strlist_t *cur = f;
        if (append)
            for (size_t i = 0; i < cur->n; i++)
                strlist_item(&nl, cur->v[i], NULL, 0);
        rc = for_each_item(v, k->type == TKC_CONF_T_ENDPOINTS ? endpoint_item : strlist_item, &nl,
                           errstr, errstr_size);
        if (rc) {
            conf_strlist_free(&nl);
            break;
        }
        conf_strlist_free(cur);
        *cur = nl;
        break;
    }
    case TKC_CONF_T_SPANS: {
        tkc_conf_spanlist_t nl = {0};
        tkc_conf_spanlist_t *cur = f;
        rc = for_each_item(v, span_item, &nl, errstr, errstr_size);
        if (rc) {
            spanlist_free(&nl);
            break;
        }
        if (append) {
            cur->v = tkc_realloc(cur->v, (cur->n + nl.n) * sizeof(*cur->v));
            memcpy(cur->v + cur->n, nl.v, nl.n * sizeof(*nl.v));
            cur->n += nl.n;
            tkc_free(nl.v);
        } else {
            spanlist_free(cur);
            *cur = nl;
        }
        break;
    }
    case TKC_CONF_T_I64LIST: {
        tkc_conf_i64list_t nl = {0};
        tkc_conf_i64list_t *cur = f;
        if (append)
            for (size_t i = 0; i < cur->n; i++) {
                nl.v = tkc_realloc(nl.v, (nl.n + 1) * sizeof(int64_t));
                nl.v[nl.n++] = cur->v[i];
            }
        rc = for_each_item(v, i64_item, &nl, errstr, errstr_size);
        if (rc) {
            i64list_free(&nl);
            break;
        }
        i64list_free(cur);
        *cur = nl;
        break;
    }
    case TKC_CONF_T_TSO:
        if (tkc_conf_parse_tso(v, (uint64_t *)f, errstr, errstr_size) != 0)
            rc = -1;
        break;
    }
    tkc_free(copy);
    return rc;
}

void conf_key_free(tkc_conf_t *c, const tkc_conf_key_t *k)
{
    void *f = conf_field(c, k);
    switch (k->type) {
    case TKC_CONF_T_STRING:
    case TKC_CONF_T_ID:
    case TKC_CONF_T_LISTEN:
        tkc_free(*(char **)f);
        *(char **)f = NULL;
        break;
    case TKC_CONF_T_STRLIST:
    case TKC_CONF_T_ENDPOINTS:
        conf_strlist_free(f);
        break;
    case TKC_CONF_T_SPANS:
        spanlist_free(f);
        break;
    case TKC_CONF_T_I64LIST:
        i64list_free(f);
        break;
    default:
        break;
    }
}
