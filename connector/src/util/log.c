/*
 * log.c: key=value line logger. No locks and no FILE*: each line is built in
 * a stack buffer and written with a single write(2).
 *
 * The JSON format is derived from the key=value message rather than from a
 * second API, so every call site gets both formats for free and the kv form
 * stays the one thing callers write. The JSON object is built in a bounded
 * buffer; if the members do not fit, they are dropped and "truncated":true
 * is written, so a consumer never sees a half object.
 */
#include "util/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TKC_LOG_LINE_MAX 2048

static atomic_int log_level = TKC_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
static atomic_int log_format = TKC_LOG_FORMAT_KV;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void tkc_log_set_level(tkc_log_level_t level)
{
    atomic_store(&log_level, (int)level);
}

tkc_log_level_t tkc_log_get_level(void)
{
    return (tkc_log_level_t)atomic_load(&log_level);
}

int tkc_log_level_parse(const char *name, tkc_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (tkc_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void tkc_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

void tkc_log_set_format(tkc_log_format_t format)
{
    atomic_store(&log_format, (int)format);
}

tkc_log_format_t tkc_log_get_format(void)
{
    return (tkc_log_format_t)atomic_load(&log_format);
}

int tkc_log_format_parse(const char *name, tkc_log_format_t *out)
{
    if (strcmp(name, "kv") == 0) {
        *out = TKC_LOG_FORMAT_KV;
        return 0;
    }
    if (strcmp(name, "json") == 0) {
        *out = TKC_LOG_FORMAT_JSON;
        return 0;
    }
    return -1;
}

const char *tkc_log_level_name(int level)
{
    return level >= 0 && level < 4 ? level_names[level] : "?";
}

/* ===== JSON lines ===== */

/* A bounded output buffer: appends stop at the end instead of overflowing,
 * and `full` remembers that something was cut. */
typedef struct {
    char *buf;
    size_t cap, len;
    int full;
} jbuf_t;

static void jb_putc(jbuf_t *b, char c)
{
    if (b->len + 1 < b->cap)
        b->buf[b->len++] = c;
    else
        b->full = 1;
}

static void jb_puts(jbuf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        jb_putc(b, s[i]);
}

/* Appends s[0..n) as a JSON string body (without quotes), undoing the \"
 * and \\ escapes of a quoted kv value when `unquote` is set. */
static void jb_escaped(jbuf_t *b, const char *s, size_t n, int unquote)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unquote && c == '\\' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\'))
            c = (unsigned char)s[++i];
        if (c == '"' || c == '\\') {
            jb_putc(b, '\\');
            jb_putc(b, (char)c);
        } else if (c == '\n') {
            jb_puts(b, "\\n", 2);
        } else if (c == '\t') {
            jb_puts(b, "\\t", 2);
        } else if (c < 0x20) {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            jb_puts(b, u, 6);
        } else {
            jb_putc(b, (char)c);
        }
    }
}

static void jb_field(jbuf_t *b, const char *key, size_t klen)
{
    jb_puts(b, ",\"", 2);
    jb_escaped(b, key, klen, 0);
    jb_puts(b, "\":", 2);
}

/* Integers of up to 15 digits are exact in every JSON reader (doubles);
 * longer ones (TSOs are 19 digits) are written as strings. */
static int is_json_literal(const char *v, size_t n)
{
    if ((n == 4 && memcmp(v, "true", 4) == 0) || (n == 5 && memcmp(v, "false", 5) == 0))
        return 1;
    size_t i = (n > 0 && v[0] == '-') ? 1 : 0;
    if (i == n || n - i > 15 || (v[i] == '0' && n - i > 1))
        return 0;
    for (; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    return 1;
}

/* Turns "k=v k2=\"a b\" word" into JSON members; words that are not pairs
 * are gathered into one "msg" member at the end. */
static void json_members(jbuf_t *b, const char *m)
{
    char words[512];
    jbuf_t w = {words, sizeof(words), 0, 0};
    const char *p = m;
    int have_msg = 0;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *k = p;
        while (*p && *p != ' ' && *p != '=')
            p++;
        if (*p != '=' || p == k) { /* a bare word */
            while (*p && *p != ' ')
                p++;
            if (w.len)
                jb_putc(&w, ' ');
            jb_puts(&w, k, (size_t)(p - k));
            continue;
        }
        size_t klen = (size_t)(p - k);
        if (klen == 3 && memcmp(k, "msg", 3) == 0)
            have_msg = 1;
        p++; /* '=' */
        jb_field(b, k, klen);
        if (*p == '"') {
            const char *v = ++p;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
            jb_putc(b, '"');
            jb_escaped(b, v, (size_t)(p - v), 1);
            jb_putc(b, '"');
            if (*p == '"')
                p++;
        } else {
            const char *v = p;
            while (*p && *p != ' ')
                p++;
            size_t vlen = (size_t)(p - v);
            if (is_json_literal(v, vlen)) {
                jb_puts(b, v, vlen);
            } else {
                jb_putc(b, '"');
                jb_escaped(b, v, vlen, 0);
                jb_putc(b, '"');
            }
        }
    }
    if (w.len) {
        /* An explicit msg=... keeps its name; stray words then go beside it. */
        if (have_msg)
            jb_field(b, "msg_extra", 9);
        else
            jb_field(b, "msg", 3);
        jb_putc(b, '"');
        jb_escaped(b, words, w.len, 0);
        jb_putc(b, '"');
    }
}

/* ===== writing ===== */

static size_t format_ts(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int w = snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return w > 0 ? n + (size_t)w : n;
}

void tkc_log_vwrite(tkc_log_level_t level, const char *comp, const char *fmt, va_list ap)
{
    char line[TKC_LOG_LINE_MAX];
    char ts[40];
    format_ts(ts, sizeof(ts));
    size_t n;
    if (tkc_log_get_format() == TKC_LOG_FORMAT_JSON) {
        char msg[TKC_LOG_LINE_MAX];
        int w = vsnprintf(msg, sizeof(msg), fmt, ap);
        if (w < 0)
            msg[0] = '\0';
        jbuf_t b = {line, sizeof(line) - 2, 0, 0}; /* room for '}' and '\n' */
        jb_puts(&b, "{\"ts\":\"", 7);
        jb_puts(&b, ts, strlen(ts));
        jb_puts(&b, "\",\"level\":\"", 11);
        jb_puts(&b, level_names[level], strlen(level_names[level]));
        jb_puts(&b, "\",\"comp\":\"", 10);
        jb_escaped(&b, comp, strlen(comp), 0);
        jb_putc(&b, '"');
        size_t head = b.len;
        json_members(&b, msg);
        if (b.full) {
            /* Never emit broken JSON: drop the members and say so. */
            b.len = head;
            b.full = 0;
            jb_puts(&b, ",\"truncated\":true", 17);
        }
        n = b.len;
        line[n++] = '}';
    } else {
        int w = snprintf(line, sizeof(line), "ts=%s level=%s comp=%s ", ts, level_names[level],
                         comp);
        n = w > 0 ? (size_t)w : 0;
        if (n >= sizeof(line))
            n = sizeof(line) - 1;
        w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        if (w > 0)
            n += (size_t)w;
        if (n >= sizeof(line) - 1) /* truncated: keep the newline */
            n = sizeof(line) - 2;
    }
    line[n++] = '\n';
    if (write(atomic_load(&log_fd), line, n) < 0) {
        /* a logger has nowhere to report its own failure */
    }
}

void tkc_log_write(tkc_log_level_t level, const char *comp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tkc_log_vwrite(level, comp, fmt, ap);
    va_end(ap);
}
