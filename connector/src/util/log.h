/*
 * log.h: one line per event, key=value, thread-safe.
 *
 *   tkc_log(TKC_LOG_WARN, "feed", "event=stream_failed store_id=%" PRIu64, id);
 * prints
 *   ts=2026-11-26T15:12:03.123Z level=warn comp=feed event=stream_failed store_id=4
 *
 * Each line is formatted into a stack buffer and written with one write(2),
 * so lines from different threads never interleave. The level is checked
 * before the arguments are formatted.
 *
 * With tkc_log_set_format(TKC_LOG_FORMAT_JSON) the same call prints one JSON
 * object per line instead, built from the key=value pairs of the message:
 *   {"ts":"2026-11-26T15:12:03.123Z","level":"warn","comp":"feed",
 *    "event":"stream_failed","store_id":4}
 * Values written as "quoted strings" are unquoted and escaped; integers of
 * up to 15 digits and true/false stay JSON literals (longer integers, such
 * as TSOs, become strings so no JSON reader rounds them); words that are
 * not key=value pairs are collected into "msg" ("msg_extra" when the
 * message has its own msg=).
 *
 * Context fields: callers log the identity TiCDC's logs carry (store,
 * store_id, stream_id, region_id, request_id) with the format helpers
 * below, e.g.
 *   tkc_log(TKC_LOG_WARN, "feed", "event=region_error " TKC_LOG_REGION_FMT
 *           " kind=%s", region_id, request_id, kind);
 *
 * Repeated warnings: see util/ratelimit.h (tkc_log_rl).
 */
#ifndef TKC_UTIL_LOG_H
#define TKC_UTIL_LOG_H

#include <inttypes.h>
#include <stdarg.h>

/* Context field helpers: string literals to splice into a format. */
#define TKC_LOG_STORE_FMT "store=%s store_id=%" PRIu64
#define TKC_LOG_STREAM_FMT TKC_LOG_STORE_FMT " stream_id=%" PRIu64
#define TKC_LOG_REGION_FMT "region_id=%" PRIu64 " request_id=%" PRIu64

typedef enum {
    TKC_LOG_ERROR = 0,
    TKC_LOG_WARN = 1,
    TKC_LOG_INFO = 2,
    TKC_LOG_DEBUG = 3,
} tkc_log_level_t;

/** Lines above this level are dropped. Default: TKC_LOG_INFO. */
void tkc_log_set_level(tkc_log_level_t level);
tkc_log_level_t tkc_log_get_level(void);
/** Parses "error", "warn", "info" or "debug"; @returns 0, or -1 if unknown. */
int tkc_log_level_parse(const char *name, tkc_log_level_t *out);
/** Where lines go (default stderr). */
void tkc_log_set_fd(int fd);

typedef enum {
    TKC_LOG_FORMAT_KV = 0,   /* ts=... level=... comp=... key=value ... */
    TKC_LOG_FORMAT_JSON = 1, /* one JSON object per line */
} tkc_log_format_t;

/** Line format (default TKC_LOG_FORMAT_KV). @locality any */
void tkc_log_set_format(tkc_log_format_t format);
tkc_log_format_t tkc_log_get_format(void);
/** Parses "kv" or "json"; @returns 0, or -1 if unknown. */
int tkc_log_format_parse(const char *name, tkc_log_format_t *out);
/** "error", "warn", "info", "debug"; "?" otherwise. */
const char *tkc_log_level_name(int level);

void tkc_log_write(tkc_log_level_t level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** tkc_log_write() with a va_list. */
void tkc_log_vwrite(tkc_log_level_t level, const char *comp, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define tkc_log(level, comp, ...)                                            \
    do {                                                                     \
        if ((level) <= tkc_log_get_level())                                  \
            tkc_log_write((level), (comp), __VA_ARGS__);                     \
    } while (0)

#endif
